import json

import pytest
import torch
from helpers import images

from invhide.io.images import write_image
from invhide.training.recipes import RECIPES, recipe, train_and_evaluate


def test_recipes():
    paper, reference, quick = (recipe(name) for name in RECIPES)
    assert paper.config.lr == reference.config.lr == 10**-4.5 and paper.config.betas == (0.5, 0.999)
    assert paper.build_loss().weights == {"concealing": 10.0, "revealing": 1.0, "low_frequency": 10.0}
    assert reference.build_loss().weights == {"concealing": 1.0, "revealing": 5.0, "low_frequency": 1.0}
    assert (paper.config.crop, reference.config.crop, paper.config.steps) == (256, 224, 80_000)
    assert paper.config.quantize and reference.config.quantize and not quick.config.quantize
    assert recipe("quick", quantize=True, steps=5).config.quantize
    assert quick.build_model().num_blocks == 4 and paper.build_model().num_blocks == 16
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        recipe("fast")
    with pytest.raises(ValueError, match="unknown training setting\\(s\\) \\['stepz'\\]"):
        recipe("quick", stepz=3)


@pytest.mark.parametrize("eval_size", [16, None])
def test_train_and_evaluate_writes_results_and_figures(tmp_path, eval_size):
    pytest.importorskip("matplotlib")
    train, test = tmp_path / "train", tmp_path / "test"
    train.mkdir()
    test.mkdir()
    for i in range(4):
        write_image(images(i, 3, 24, 20), train / f"{i}.png")
        write_image(images(10 + i, 3, 16 + 2 * i, 18), test / f"{i}.png")  # sizes vary: eval_size=None crops per pair
    chosen = recipe("quick", steps=3, crop=16, batch_size=2, val_every=0, checkpoint_every=0, tensorboard=False)
    state = torch.random.get_rng_state()
    report = train_and_evaluate(
        chosen,
        tmp_path / "run",
        train_source=train,
        val_source=test,
        eval_size=eval_size,
        progress=False,
        log=lambda _: None,
    )
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's generator is left alone
    assert report.training.steps == 3 and report.evaluation.num_pairs == 4
    assert json.loads((tmp_path / "run" / "results.json").read_text())["num_pairs"] == 4
    for role in ("model", "results", "figure", "curves"):
        assert report.files[role].is_file(), role
    validation = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()][-1]
    assert validation["kind"] == "val"
    assert validation["psnr_recovered_float"] == pytest.approx(report.evaluation.mean("secret/recovery", "psnr"))
