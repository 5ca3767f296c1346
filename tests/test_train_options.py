"""The trainer's options for learning more per unit of compute: weight average, CPU bfloat16, rounding fine-tune."""

import json

import pytest
import torch
from test_train import Crop, Injected, config, params, tiny_data, tiny_model

from invhide.errors import ConfigError
from invhide.io import checkpoint
from invhide.training import TrainConfig, Trainer
from invhide.training.averaging import WeightAverage
from invhide.training.checkpoints import AVERAGE_FILE
from invhide.training.losses import HidingLoss
from invhide.training.precision import native_bfloat16, resolve_amp
from invhide.training.trainer import BEFORE_ROUNDING

# ----------------------------------------------------------------------
# Weight average
# ----------------------------------------------------------------------


def test_weight_average_follows_the_warm_up_formula():
    model = torch.nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.99)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    for n in range(1, 30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=generator))
        decay = min(0.99, (1 + n) / (10 + n))
        assert average.current_decay() == pytest.approx(decay)
        average.update(model)
        for key, value in model.state_dict().items():
            expected[key] = decay * expected[key] + (1 - decay) * value
    for key, value in average.module.state_dict().items():
        assert torch.allclose(value, expected[key], atol=1e-6), key
    assert average.updates == 29
    assert not any(p.requires_grad for p in average.module.parameters())


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, float("nan")])
def test_weight_average_refuses_a_decay_outside_0_1(decay):
    with pytest.raises(ValueError, match="ema_decay must be a finite number in \\(0, 1\\)"):
        WeightAverage(torch.nn.Linear(1, 1), decay)
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=decay)


def test_training_with_an_average_saves_and_validates_the_average(tmp_path):
    model = tiny_model()
    pairs = [(tiny_data(2)[0][:, :16, :16], tiny_data(2)[1][:, :16, :16])]
    trainer = Trainer(
        model, HidingLoss.paper(), Crop(tiny_data()), config(ema_decay=0.9), val_pairs=pairs, out_dir=tmp_path,
        progress=False,
    )  # fmt: skip
    result = trainer.fit()
    average = trainer.trained_model
    assert average is trainer.average.module and average is not model
    raw, averaged = params(model), params(average)
    assert any(not torch.equal(raw[k], averaged[k]) for k in raw), "the average should lag the trained weights"
    saved, _ = checkpoint.load_tensors(tmp_path / "model.safetensors")
    assert all(torch.equal(saved[k], averaged[k]) for k in averaged)  # the final model is the average
    last = sorted((tmp_path / "checkpoints").glob("step_*"))[-1]
    assert (last / AVERAGE_FILE).is_file()
    assert json.loads((last / "trainer.json").read_text())["average_updates"] == 6
    assert result.validation is not None


def test_without_an_average_the_trained_model_is_the_model():
    model = tiny_model()
    trainer = Trainer(model, HidingLoss.paper(), Crop(tiny_data()), config(steps=2), progress=False)
    trainer.fit()
    assert trainer.trained_model is model and trainer.average is None


def test_resume_with_an_average_equals_an_uninterrupted_run(tmp_path):
    data = Crop(tiny_data())
    settings = dict(ema_decay=0.8, checkpoint_every=2)
    whole = Trainer(tiny_model(), HidingLoss.paper(), data, config(**settings), progress=False)
    whole.fit()

    crashing = HidingLoss.paper().with_term("crash", 0.0, Injected(at=[5], value=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_model(), crashing, data, config(**settings), out_dir=tmp_path, progress=False).fit()
    resumed = Trainer(tiny_model(seed=99), HidingLoss.paper(), data, config(**settings), out_dir=tmp_path,
                      progress=False)  # fmt: skip
    resumed.fit(resume=True)
    want, got = params(whole.trained_model), params(resumed.trained_model)
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert resumed.average.updates == whole.average.updates == 6


def test_a_rollback_restores_the_average_too():
    bomb = Injected(at=[7], value=float("nan"))  # step 7 fails: back to the snapshot of step 4
    data = Crop(tiny_data())
    loss = HidingLoss.paper(reduction="mean").with_term("bomb", 1.0, bomb)
    rolled = Trainer(tiny_model(), loss, data, config(steps=8, ema_decay=0.8, snapshot_every=4), progress=False)
    rolled.fit()
    assert rolled.rollbacks == 1
    # 8 updates, one per step of the final history; without the restore, steps 5 and 6 would count twice (10).
    assert rolled.average.updates == 8


# ----------------------------------------------------------------------
# Precision
# ----------------------------------------------------------------------


def test_amp_resolves_per_device():
    assert resolve_amp(None, "cpu") is None and resolve_amp("float32", "cpu") is None
    assert resolve_amp("bfloat16", "cpu") is torch.bfloat16
    native, why = native_bfloat16("cpu")
    assert resolve_amp("auto", "cpu") is (torch.bfloat16 if native else None), why
    with pytest.raises(ConfigError, match='amp="float16" needs a GPU'):
        resolve_amp("float16", "cpu")
    with pytest.raises(ValueError, match="amp must be one of"):
        TrainConfig(amp="int8")


def test_bfloat16_on_the_cpu_trains_and_keeps_the_loss_in_float32():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, *, stego, recovered, **_):
            seen.append((stego.dtype, recovered.dtype))
            return stego.sum() * 0

    loss = HidingLoss.paper(reduction="mean").with_term("spy", 1.0, Spy())
    model = tiny_model()
    before = params(model)
    trainer = Trainer(model, loss, Crop(tiny_data()), config(steps=3, amp="bfloat16"), progress=False)
    assert trainer.precision == "bfloat16"
    result = trainer.fit()
    assert result.steps == 3 and result.rollbacks == 0
    assert seen == [(torch.float32, torch.float32)] * 3  # the loss sees float32 outputs
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(before[k], v) for k, v in params(model).items())


def test_bfloat16_really_autocasts_the_model():
    dtypes = []
    model = tiny_model()
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    Trainer(model, HidingLoss.paper(), Crop(tiny_data()), config(steps=1, amp="bfloat16"), progress=False).fit()
    assert dtypes and set(dtypes) == {torch.bfloat16}
    dtypes.clear()
    Trainer(tiny_model(), HidingLoss.paper(), Crop(tiny_data()), config(steps=1), progress=False).fit()
    assert not dtypes  # the hook is on the first model only; float32 runs are untouched


# ----------------------------------------------------------------------
# Fine-tuning through the rounding
# ----------------------------------------------------------------------


def test_quantize_from_switches_the_reveal_to_the_rounded_stego_at_that_step():
    rounded = []

    class Watch(torch.nn.Module):
        def forward(self, *, stego, **_):
            return stego.sum() * 0

    model = tiny_model()
    original = model.reveal

    def reveal(stego, *args, **kwargs):
        levels = stego.detach() * 255
        rounded.append(bool((levels - levels.round()).abs().max() < 1e-3))  # on the 8-bit grid
        return original(stego, *args, **kwargs)

    model.reveal = reveal
    Trainer(model, HidingLoss.paper(), Crop(tiny_data()), config(steps=6, quantize_from=4), progress=False).fit()
    assert rounded == [False, False, False, False, True, True]


def test_quantize_and_quantize_from_together_are_refused():
    with pytest.raises(ConfigError, match="pass one of them"):
        TrainConfig(quantize=True, quantize_from=10)
    with pytest.raises(ValueError, match="quantize_from must be a non-negative integer"):
        TrainConfig(quantize_from=-1)


def test_the_float_model_before_the_rounding_fine_tune_is_kept(tmp_path):
    data = Crop(tiny_data())
    tuned = Trainer(tiny_model(), HidingLoss.paper(), data, config(steps=4, quantize_from=2), out_dir=tmp_path / "a",
                    progress=False)  # fmt: skip
    tuned.fit()
    float_only = Trainer(tiny_model(), HidingLoss.paper(), data, config(steps=2), progress=False)
    float_only.fit()
    kept = checkpoint.load(tmp_path / "a" / BEFORE_ROUNDING)  # model.safetensors + config.json
    want, got = params(float_only.model), params(kept)
    assert all(torch.equal(want[k], got[k]) for k in want)
    final = params(checkpoint.load(tmp_path / "a" / "model.safetensors"))
    assert any(not torch.equal(final[k], got[k]) for k in got)  # the fine-tune went on from it
    plain = tmp_path / "b"
    Trainer(tiny_model(), HidingLoss.paper(), data, config(steps=2), out_dir=plain, progress=False).fit()
    assert not (plain / BEFORE_ROUNDING).exists()
