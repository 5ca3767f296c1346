"""Training recipes: each pinned against the paper's Sec. 4.1 or the reference code's config.py and train.py."""

import dataclasses
import json

import pytest
import torch
from helpers import images

from invhide import HiNet, InvertibleHider
from invhide.errors import ConfigError, InputError
from invhide.io.images import write_image
from invhide.nn import subnets
from invhide.training.config import TrainConfig
from invhide.training.losses import HidingLoss
from invhide.training.recipes import PAPER_PRETRAIN_STEPS, RECIPES, recipe, train_and_evaluate
from invhide.training.trainer import Trainer

# The values each recipe must have, with where they come from.
# Paper: Jing et al., "HiNet: Deep Image Hiding by Invertible Network", ICCV 2021, Sec. 4.1.
# Reference: TomTomTommi/HiNet at 5c2682a, file and line as cited.
PAPER = {
    "steps": 80_000,  # Sec. 4.1: 80K iterations
    "crop": 256,  # Sec. 4.1: 256x256 training patches
    "lr": 10**-4.5,  # Sec. 4.1: initial learning rate 10^-4.5 ...
    "schedule": "step",
    "lr_step": 10_000,  # ... halved every 10K iterations
    "lr_gamma": 0.5,
    "betas": (0.9, 0.999),  # Sec. 4.1: Adam "with standard parameters" (torch.optim.Adam's defaults)
    "eps": 1e-8,
    "weight_decay": 0.0,
    "warmup_steps": 0,
    "grad_clip": None,
    "quantize": False,  # the stego is revealed as the network outputs it; no rounding in the paper
    "batch_size": 8,  # not in the paper text: the reference code's 16 images = 8 pairs (config.py:16)
}
PAPER_WEIGHTS = {"concealing": 10.0, "revealing": 1.0, "low_frequency": 10.0}  # Sec. 4.1: lambda_c, lambda_r, lambda_f
REFERENCE = {
    "steps": 1000
    * (800 // 16),  # config.py:6 epochs = 1000; DIV2K's 800 images, batch 16, drop_last (datasets.py:59-66)
    "batch_size": 16 // 2,  # config.py:16 batch_size = 16 images; train.py:106-107 halves them into covers and secrets
    "crop": 224,  # config.py:17 cropsize = 224
    "lr": 10**-4.5,  # config.py:4-5 lr = 10 ** -4.5
    "betas": (0.5, 0.999),  # config.py:18
    "eps": 1e-6,  # train.py:84 Adam(..., eps=1e-6, ...)
    "weight_decay": 1e-5,  # config.py:7, train.py:84
    # StepLR(optim, weight_step=1000, gamma=0.5) (config.py:19-20, train.py:85) stepped once per epoch (train.py:209):
    # the first decay would come after 1000 epochs = 50K steps, when the run is over.
    "schedule": "step",
    "lr_step": 1000 * (800 // 16),
    "lr_gamma": 0.5,
    "warmup_steps": 0,
    "grad_clip": None,  # train.py:143-145: backward, step, no clipping
    "quantize": False,  # train.py:117-128: the reveal starts from the float DWT-domain stego
    "val_every": 50 * 50,  # config.py:26 val_freq = 50 epochs
    "checkpoint_every": 50 * 50,  # config.py:47 SAVE_freq = 50 epochs
    "weight_schedule": (),  # one loss from the first step (train.py:142)
}
# config.py:10-12 lamda_guide 1, lamda_reconstruction 5, lamda_low_frequency 1 (train.py:142)
REFERENCE_WEIGHTS = {"concealing": 1.0, "revealing": 5.0, "low_frequency": 1.0}


@pytest.mark.parametrize("name", ["paper", "paper-png"])
def test_paper_recipes_are_the_paper_section_4_1(name):
    chosen = recipe(name)
    settings = chosen.config.to_dict()
    assert {key: settings[key] for key in PAPER} == {**PAPER, "quantize": name == "paper-png"}
    loss = chosen.build_loss()
    assert loss.weights == PAPER_WEIGHTS
    assert {term.reduction for term in loss.terms.values()} == {"sum"}
    assert {term.kind for term in loss.terms.values()} == {"l2"}
    model = chosen.build_model()
    assert isinstance(model, HiNet) and model.num_blocks == 16  # Sec. 4.1: M = 16 invertible blocks
    # Sec. 4.1: pre-trained with lambda_f = 0, then the low-frequency wavelet loss is added.
    config = chosen.config
    assert config.weight_schedule == ((0, "low_frequency", 0.0), (PAPER_PRETRAIN_STEPS, "low_frequency", 10.0))
    assert config.weights_at(0, loss.weights) == {**PAPER_WEIGHTS, "low_frequency": 0.0}
    assert config.weights_at(PAPER_PRETRAIN_STEPS - 1, loss.weights)["low_frequency"] == 0.0
    assert config.weights_at(PAPER_PRETRAIN_STEPS, loss.weights) == PAPER_WEIGHTS
    assert 0 < PAPER_PRETRAIN_STEPS < config.steps
    # The learning rate halves every 10K iterations: 7 halvings in 80K.
    assert [config.lr_at(s) / 10**-4.5 for s in (0, 9_999, 10_000, 25_000, 79_999)] == [1, 1, 0.5, 0.25, 0.5**7]


@pytest.mark.parametrize("name", ["reference-code", "reference-code-png"])
def test_reference_code_recipes_are_its_config_and_train_py(name):
    chosen = recipe(name)
    settings = chosen.config.to_dict()
    assert {key: settings[key] for key in REFERENCE} == {**REFERENCE, "quantize": name == "reference-code-png"}
    loss = chosen.build_loss()
    assert loss.weights == REFERENCE_WEIGHTS
    # train.py:27-42: MSELoss(reduce=True, size_average=False), a sum of squared errors.
    assert {(term.kind, term.reduction) for term in loss.terms.values()} == {("l2", "sum")}
    model = chosen.build_model()
    # hinet.py:10-26 sixteen INV_blocks; invblock.py:9 clamp = config.py:2 clamp 2.0.
    assert isinstance(model, HiNet) and model.num_blocks == 16 and model.clamp == 2.0
    # model.py:24-30: every parameter 0.01 * randn, conv5 zero (config.py:8 init_scale = 0.01).
    weights = dict(model.named_parameters())
    assert torch.count_nonzero(weights["nodes.coupling_1.phi.conv5.weight"]) == 0
    assert 0.009 < weights["nodes.coupling_1.phi.conv2.weight"].std().item() < 0.011
    # The learning rate never drops inside the run.
    config = chosen.config
    assert {config.lr_at(s) for s in (0, 1, 25_000, config.steps - 1)} == {10**-4.5}


def test_png_variants_differ_only_in_the_rounding():
    for base in ("paper", "reference-code"):
        plain, png = recipe(base).config.to_dict(), recipe(f"{base}-png").config.to_dict()
        assert {key for key in plain if plain[key] != png[key]} == {"quantize"}
        assert recipe(f"{base}-png").build_loss().weights == recipe(base).build_loss().weights


def test_quick_recipe_is_unchanged():
    chosen = recipe("quick")
    settings = chosen.config.to_dict()
    expected = dict(steps=1200, batch_size=8, crop=64, lr=2e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=1e-5)
    expected |= dict(schedule="cosine", warmup_steps=20, grad_clip=10.0, quantize=False, weight_schedule=())
    expected |= dict(val_every=400, checkpoint_every=400, log_every=10)
    assert {key: settings[key] for key in expected} == expected
    assert chosen.build_model().num_blocks == 4
    loss = chosen.build_loss()
    assert loss.weights == REFERENCE_WEIGHTS and {t.reduction for t in loss.terms.values()} == {"mean"}


def test_cpu_recipe_fine_tunes_through_the_rounding_over_its_last_steps():
    chosen = recipe("cpu")
    assert chosen.config.amp == "auto" and not chosen.config.quantize
    assert chosen.config.steps == 21_500 and chosen.config.quantize_from == int(0.85 * chosen.config.steps)
    assert chosen.build_model().num_blocks == 8
    weights = chosen.build_loss().weights
    assert weights == REFERENCE_WEIGHTS
    # The fine-tune raises the concealing weight from its first step on.
    start = chosen.config.quantize_from
    assert chosen.config.weights_at(start - 1, weights) == weights
    assert chosen.config.weights_at(start, weights) == {**weights, "concealing": 4.0}
    # The fine-tune follows --steps; an explicit rounding setting replaces it.
    assert recipe("cpu", steps=1000).config.quantize_from == 850
    assert recipe("cpu", steps=1000).config.weight_schedule == ((850, "concealing", 4.0),)
    assert recipe("cpu", quantize_from=10).config.weight_schedule == ((10, "concealing", 4.0),)
    assert recipe("cpu", quantize=True).config.quantize_from is None
    assert recipe("cpu", quantize=False).config.weight_schedule == ()
    assert not recipe("cpu", quantize=False).config.quantize_at(10**9)
    assert recipe("cpu", weight_schedule=()).config.weight_schedule == ()


def test_recipes_lists_every_name_and_each_describes_every_setting():
    assert RECIPES == ("paper", "paper-png", "reference-code", "reference-code-png", "quick", "cpu")
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    for name in RECIPES:
        chosen = recipe(name)
        described = chosen.describe()
        assert described["name"] == name and described["about"]
        assert list(described["train"]) == fields
        assert json.loads(json.dumps(described))["loss"] == chosen.build_loss().config()
        lines = chosen.summary().splitlines()
        assert lines[0].startswith(f"recipe {name!r}: ")
        for field_name in fields:
            assert f"  {field_name}: {getattr(chosen.config, field_name)!r}" in lines, (name, field_name)
    assert "  model: HiNet, num_blocks=16, num_secrets=1, channels=3, clamp=2.0, growth=32" in recipe("paper").summary()
    state = torch.random.get_rng_state()
    recipe("paper").describe()
    assert torch.equal(state, torch.random.get_rng_state())  # building the model to describe it draws nothing


def test_overrides():
    assert recipe("quick", quantize=True, steps=5).config.quantize
    assert recipe("paper", steps=None, crop=None).config.crop == 256  # unset command-line options
    assert recipe("paper", weight_schedule=()).config.weight_schedule == ()
    custom = ((0, "revealing", 0.5), (7, "revealing", 1.0))
    assert recipe("paper", weight_schedule=custom).config.weight_schedule == custom
    assert recipe("paper", pretrain_steps=0).config.weight_schedule == ()
    assert recipe("paper-png", pretrain_steps=500).config.weight_schedule == (
        (0, "low_frequency", 0.0),
        (500, "low_frequency", 10.0),
    )
    # Any recipe can pre-train; the low-frequency weight comes back at the recipe's value.
    assert recipe("reference-code", pretrain_steps=3).config.weight_schedule[-1] == (3, "low_frequency", 1.0)
    with pytest.raises(ConfigError, match="pretrain_steps or weight_schedule, not both"):
        recipe("paper", pretrain_steps=5, weight_schedule=())
    with pytest.raises(ValueError, match="pretrain_steps must be a non-negative integer, got -1"):
        recipe("paper", pretrain_steps=-1)
    with pytest.raises(ConfigError, match="weight_schedule names term\\(s\\) \\['nope'\\] that the 'paper' loss lacks"):
        recipe("paper", weight_schedule=((0, "nope", 1.0),))
    with pytest.raises(InputError, match="^recipe must be one of \\('paper', .*\\), got 'fast'$"):
        recipe("fast")
    with pytest.raises(ConfigError, match="unknown training setting\\(s\\) \\['stepz'\\]"):
        recipe("quick", stepz=3)


def test_starting_from_fine_tunes_a_copy_with_the_recipes_loss_and_settings():
    base = InvertibleHider(num_blocks=2, subnet=subnets.conv(hidden=8, depth=1))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # trained-looking weights: a fresh hider is the identity
        for parameter in base.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    before = {k: v.clone() for k, v in base.state_dict().items()}
    settings = dict(steps=2, batch_size=2, crop=16, log_every=1, val_every=0, checkpoint_every=0, tensorboard=False)
    chosen = recipe("quick", **settings).starting_from(base, "base-model")
    assert chosen.about == recipe("quick").about + "; starting from base-model"
    assert chosen.config == recipe("quick", **settings).config
    assert chosen.build_loss().config() == recipe("quick").build_loss().config()
    model = chosen.build_model()
    assert model is not base and model.config() == base.config()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())  # starts from the base's weights
    Trainer(model, chosen.build_loss(), [images(i, 3, 16, 16) for i in range(4)], chosen.config, progress=False).fit()
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in before.items())  # the copy was trained
    assert all(torch.equal(base.state_dict()[k], v) for k, v in before.items())  # the base was not
    assert chosen.build_model() is not model  # each call a fresh copy
    assert recipe("quick").starting_from(base).about.endswith("starting from InvertibleHider")


def test_the_trainer_adds_the_low_frequency_loss_after_the_pre_training():
    settings = dict(batch_size=2, crop=16, log_every=1, val_every=0, checkpoint_every=0, tensorboard=False)
    chosen = recipe("paper", steps=3, pretrain_steps=2, **settings)
    model = HiNet(num_blocks=1, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # away from the identity, so that every term is large
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    data = [images(i, 3, 16, 16) for i in range(4)]
    history = Trainer(model, chosen.build_loss(), data, chosen.config, progress=False).fit().history
    assert [record["step"] for record in history] == [1, 2, 3]
    for record in history:
        lambda_f = 0.0 if record["step"] <= 2 else 10.0
        expected = 10 * record["concealing"] + record["revealing"] + lambda_f * record["low_frequency"]
        assert record["loss"] == pytest.approx(expected, rel=1e-5)
        assert 10 * record["low_frequency"] > 1e-3 * record["loss"]  # the two cases differ measurably
        assert record["lr"] == 10**-4.5


def test_adding_the_low_frequency_loss_at_most_doubles_the_paper_loss():
    # PAPER_PRETRAIN_STEPS's docstring: with summed squared errors and the orthonormal Haar DWT, L_freq <= L_con,
    # so adding lambda_f L_freq (lambda_f = lambda_c) cannot make a loss spike that the guard would roll back.
    loss = HidingLoss.paper()
    for seed in range(5):
        cover, stego = images(seed, 2, 3, 32, 32), images(100 + seed, 2, 3, 32, 32)
        smooth = cover + 0.1 * (seed + 1)  # a difference that is all low frequency
        for candidate in (stego, smooth):
            terms = loss(cover=cover, secret=cover, stego=candidate, recovered=cover).terms
            assert terms["low_frequency"] <= terms["concealing"] * (1 + 1e-6)
        assert terms["low_frequency"] == pytest.approx(terms["concealing"].item(), rel=1e-4)  # the bound is tight


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
