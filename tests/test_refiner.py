"""The refiner of revealed secrets: identity when new, never in the invertible path, aligned in windows, trainable."""

from __future__ import annotations

import argparse

import pytest
import torch

from invhide.cli.commands import tiling
from invhide.errors import ConfigError, InputError, InputTypeError
from invhide.io.checkpoint import load, save
from invhide.io.datasets import SAMPLE_TRAIN, sample_image_paths
from invhide.models import inference
from invhide.models.hider import InvertibleHider
from invhide.models.hinet import HiNet
from invhide.nn.refiners import Refiner, tile_borders
from invhide.testing import randomize_
from invhide.training.refine import train_refiner, with_refiner, without_refiner

KEY, OTHER = bytes(range(32)), bytes(range(1, 33))


def hider(keyed: bool = True, refiner: object = True, seed: int = 0, **options: object) -> InvertibleHider:
    model = randomize_(InvertibleHider(num_blocks=2, subnet="conv", keyed=keyed, refiner=refiner, **options), seed)
    if model.refiner is not None:  # far enough from the identity to show where it is told the borders are
        randomize_(model.refiner, seed + 1, gain=2.0)
    return model.eval()


def images(seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    cover, secret = torch.rand(2, 2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return cover, secret


@pytest.mark.parametrize("keyed", [True, False])
def test_a_new_refiner_changes_nothing(keyed):
    model = InvertibleHider(num_blocks=2, subnet="conv", keyed=keyed, refiner=True)
    randomize_(model, 0)
    torch.nn.init.zeros_(model.refiner.net[-1].weight)  # randomize_ moved the refiner too: back to a new one
    torch.nn.init.zeros_(model.refiner.net[-1].bias)
    cover, secret = images()
    options = {"key": KEY} if keyed else {}
    stego, _ = model.hide(cover, secret, **options)
    assert torch.equal(model.reveal(stego, **options), model.reveal(stego, refine=False, **options))


@pytest.mark.parametrize("keyed", [True, False])
def test_the_invertible_path_stays_exact_and_the_refiner_acts(keyed):
    model = hider(keyed)
    cover, secret = images()
    options = {"key": KEY} if keyed else {}
    stego, lost = model.hide(cover, secret, **options)
    exact = model.reveal(stego, z=lost, refine=False, **options)
    torch.testing.assert_close(exact, secret, atol=1e-5, rtol=0)
    refined = model.reveal(stego, z=lost, **options)
    assert (refined - exact).abs().max() > 1e-3


def test_hiding_never_uses_the_refiner():
    plain = hider(refiner=False)
    refined = with_refiner(plain, hidden=8, depth=2)
    randomize_(refined.refiner, 5)
    cover, secret = images()
    assert torch.equal(plain.hide(cover, secret, key=KEY)[0], refined.hide(cover, secret, key=KEY)[0])


def test_the_refiner_works_locked_so_a_wrong_key_still_shuffles_its_output():
    model = hider()
    cover, secret = images()
    stego, _ = model.hide(cover, secret, key=KEY)
    locked = model.reveal(stego, locked=True)  # refined, still locked
    torch.testing.assert_close(model.unlock(locked, KEY), model.reveal(stego, key=KEY))
    torch.testing.assert_close(model.unlock(locked, OTHER), model.reveal(stego, key=OTHER))


def test_config_and_file_round_trip(tmp_path):
    model = hider()
    config = model.config()
    assert config["refiner"] == {"hidden": 48, "depth": 5, "period": 8, "negative_slope": 0.2}
    assert "refiner.net.0.weight" in model.state_dict()
    path = save(model, tmp_path / "refined")
    again = load(path)
    assert again.refiner is not None and again.config() == config
    cover, secret = images()
    stego, _ = model.hide(cover, secret, key=KEY)
    torch.testing.assert_close(again.reveal(stego, key=KEY), model.reveal(stego, key=KEY))
    assert "refiner" not in hider(refiner=False).config()


def test_period_defaults_to_the_key_tile_and_can_be_set():
    assert hider(keyed=True).refiner.period == 8
    assert hider(keyed=False).refiner.period is None
    assert hider(keyed=False, refiner={"period": 8}).refiner.period == 8
    assert hider(keyed=True, refiner={"period": None}).refiner.period is None


@pytest.mark.parametrize(
    ("options", "step"),
    [
        ({"refiner": False}, 2),
        ({"refiner": {"period": None}}, 2),
        ({"refiner": True}, 8),
        ({"refiner": {"period": 6}}, 6),
        ({"refiner": {"period": 6}, "wavelet": "db2"}, 12),
    ],
)
def test_window_step(options, step):
    model = InvertibleHider(num_blocks=1, subnet="conv", keyed=True, **options)
    assert model.window_step == step == inference.window_step(model)


def test_windows_start_on_the_tile_grid_so_tiled_and_whole_reveals_agree(monkeypatch):
    model = hider()
    cover, secret = images(size=96)
    stego, _ = model.hide(cover, secret, key=KEY)
    whole = inference.reveal(model, stego, key=KEY)
    tiled = inference.reveal(model, stego, key=KEY, tile=72, overlap=24)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)
    # The same windows on the wavelet's 2-pixel step alone would start off the tile grid: the refiner would see
    # borders where there are none, and the tiles would not agree.
    monkeypatch.setattr(InvertibleHider, "window_step", property(lambda self: 2))
    misaligned = inference.reveal(model, stego, key=KEY, tile=70, overlap=22)
    assert (misaligned - whole).abs().max() > 1e-3


def test_the_command_line_rounds_tiles_to_the_window_step():
    options = tiling(argparse.Namespace(tile=100, overlap=20, quiet=True), hider())
    assert options == {"tile": 104, "overlap": 24, "progress": False}


def test_tile_borders():
    borders = tile_borders(16, 8, 8, torch.zeros(1))
    assert borders.shape == (1, 4, 16, 8)
    assert borders[0, 0, :, 0].nonzero().flatten().tolist() == [0, 8]
    assert borders[0, 1, :, 0].nonzero().flatten().tolist() == [7, 15]
    assert borders[0, 2, 0].nonzero().flatten().tolist() == [0]
    assert borders[0, 3, 0].nonzero().flatten().tolist() == [7]


@pytest.mark.parametrize(
    ("refiner", "error", "message"),
    [
        ("yes", InputTypeError, "refiner"),
        ({"channels": 3}, InputError, "channels"),
        ({"depth": 1}, InputError, "depth"),
        ({"period": 1}, InputError, "period"),
        ({"hidden": 0}, InputError, "hidden"),
        ({"width": 8}, TypeError, "width"),
    ],
)
def test_bad_refiner_options(refiner, error, message):
    with pytest.raises(error, match=message):
        InvertibleHider(num_blocks=1, subnet="conv", refiner=refiner)


def test_a_bad_refiner_config_names_it():
    config = {**hider().config(), "refiner": {"depth": 0}}
    with pytest.raises(ConfigError, match="depth"):
        InvertibleHider.from_config(config)


def test_with_refiner_keeps_the_weights_and_adds_an_identity():
    plain = hider(refiner=False)
    refined = with_refiner(plain, hidden=8, depth=3)
    assert refined.refiner.config()["hidden"] == 8 and plain.refiner is None
    cover, secret = images()
    stego, _ = plain.hide(cover, secret, key=KEY)
    torch.testing.assert_close(refined.reveal(stego, key=KEY), plain.reveal(stego, key=KEY))
    with pytest.raises(InputTypeError, match="InvertibleHider"):
        with_refiner(torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(InputError, match="HiNet, which takes no refiner"):
        with_refiner(HiNet(num_blocks=1))


@pytest.mark.parametrize("keyed", [True, False])
def test_training_improves_the_held_out_reveals_and_touches_nothing_else(keyed):
    model = with_refiner(hider(keyed, refiner=False), hidden=16, depth=3)
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not name.startswith("refiner.")}
    report = train_refiner(
        model,
        sample_image_paths(SAMPLE_TRAIN)[:6],
        pairs=24,
        crop=32,
        window=16,
        steps=60,
        batch_size=8,
        lr=3e-3,
        held_out=0.25,
        progress=False,
        log=lambda line: None,
    )
    assert report.steps == 60 and report.held_out == 6
    # A random hider reveals little, so the refiner learns little more than the secrets' colours: less squared
    # error on pairs it never saw (its objective), though not more PSNR on every dark image.
    assert report.mse_after < 0.8 * report.mse_before
    for name, p in model.named_parameters():
        assert p.requires_grad
        if name in frozen:
            assert torch.equal(p, frozen[name]) and p.grad is None, name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window": 12}, "multiples"),
        ({"crop": 36}, "multiples"),
        ({"window": 64}, "window <= crop"),
        ({"pairs": 1}, "pairs"),
        ({"held_out": 0.99, "pairs": 2}, "held_out"),
        ({"steps": 0}, "steps"),
    ],
)
def test_bad_training_options(options, message):
    model = hider()
    settings = {"pairs": 4, "crop": 32, "window": 16, "steps": 1, "progress": False, **options}
    with pytest.raises(InputError, match=message):
        train_refiner(model, sample_image_paths(SAMPLE_TRAIN)[:2], **settings)


def test_training_needs_a_refiner():
    with pytest.raises(InputError, match="with_refiner"):
        train_refiner(hider(refiner=False), sample_image_paths(SAMPLE_TRAIN)[:2], progress=False)


def test_refiner_alone():
    refiner = Refiner(6, hidden=4, depth=2, period=4)
    x = torch.rand(2, 6, 8, 8)
    assert torch.equal(refiner(x), x)
    assert refiner.config() == {"channels": 6, "hidden": 4, "depth": 2, "period": 4, "negative_slope": 0.2}


def test_without_refiner_reveals_as_refine_false_and_keeps_the_original():
    model = hider()
    bare = without_refiner(model)
    assert bare.refiner is None and model.refiner is not None and "refiner" not in bare.config()
    cover, secret = images()
    stego, _ = model.hide(cover, secret, key=KEY)
    torch.testing.assert_close(bare.reveal(stego, key=KEY), model.reveal(stego, key=KEY, refine=False))
    assert without_refiner(bare).refiner is None
    with pytest.raises(InputError, match="HiNet, which takes no refiner"):
        without_refiner(HiNet(num_blocks=1))
