import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import images

from invhide import InvertibleHider
from invhide.errors import ConfigError, DivergenceError, FileFormatError, InputError, MissingPathError
from invhide.evaluation.figures import training_curves
from invhide.io.datasets import ImageDataset
from invhide.io.images import write_image
from invhide.nn import subnets
from invhide.testing import randomize_
from invhide.training import TrainConfig, Trainer
from invhide.training.guard import NON_FINITE, SPIKE, ExplosionGuard
from invhide.training.logs import RunLog
from invhide.training.losses import HidingLoss
from invhide.training.sampling import StepBatches
from invhide.training.step import HidingStep, round_ste

ROOT = Path(__file__).resolve().parents[1]


def tiny_model(seed=0, num_secrets=1):
    model = InvertibleHider(num_secrets=num_secrets, num_blocks=2, subnet=subnets.conv(hidden=8, depth=2))
    return randomize_(model, seed, gain=0.05)


def tiny_data(count=6, size=24):
    return [images(i, 3, size, size) for i in range(count)]


def config(**overrides):
    settings = dict(
        steps=6, batch_size=2, crop=16, lr=1e-3, schedule="step", lr_step=4, log_every=1, val_every=0,
        checkpoint_every=0, snapshot_every=2, tensorboard=False,
    )  # fmt: skip
    settings.update(overrides)
    return TrainConfig(**settings)


class Crop:
    """A dataset of random 16x16 crops with the ``item(index, generator)`` protocol."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def item(self, index, generator=None):
        top, left = torch.randint(0, 9, (2,), generator=generator).tolist()
        return self.data[index][:, top : top + 16, left : left + 16].clone()

    def __getitem__(self, index):
        return self.item(index)


class Injected(torch.nn.Module):
    """A loss term that is zero except on chosen calls, where it returns a chosen value (or raises)."""

    def __init__(self, at, value):
        super().__init__()
        self.calls = 0
        self.at = set(at)
        self.value = value

    def forward(self, *, stego, **_):
        self.calls += 1
        if self.calls in self.at:
            if isinstance(self.value, BaseException):
                raise self.value
            return stego.sum() * 0 + self.value
        return stego.sum() * 0


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_same_seed_same_result_and_training_learns():
    losses = HidingLoss.paper(reduction="mean")
    a, b = tiny_model(), tiny_model()
    Trainer(a, losses, Crop(tiny_data()), config(steps=20), progress=False).fit()
    result = Trainer(b, losses, Crop(tiny_data()), config(steps=20), progress=False).fit()
    assert all(torch.equal(x, y) for x, y in zip(params(a).values(), params(b).values()))
    first, last = result.history[0], result.history[-1]
    assert last["loss"] < first["loss"], (first["loss"], last["loss"])
    assert {"concealing", "revealing", "low_frequency", "psnr_stego", "psnr_recovered", "lr"} <= set(last)


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    data = Crop(tiny_data())
    uninterrupted = tiny_model()
    Trainer(uninterrupted, HidingLoss.paper(), data, config(), progress=False).fit()

    crashing = HidingLoss.paper().with_term("crash", 0.0, Injected(at=[5], value=KeyboardInterrupt()))
    interrupted = tiny_model()
    with pytest.raises(KeyboardInterrupt):
        Trainer(interrupted, crashing, data, config(checkpoint_every=2), out_dir=tmp_path, progress=False).fit()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000002", "step_00000004"]

    resumed = tiny_model(seed=99)  # different start: everything must come from the checkpoint
    trainer = Trainer(resumed, HidingLoss.paper(), data, config(checkpoint_every=2), out_dir=tmp_path, progress=False)
    result = trainer.fit(resume=True)
    assert result.steps == 6
    want, got = params(uninterrupted), params(resumed)
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(want[key], got[key]), key
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()


@pytest.mark.parametrize(("value", "problem"), [(float("nan"), "non-finite"), (1e9, "loss spike")])
def test_explosion_is_rolled_back_and_training_goes_on(tmp_path, value, problem):
    bomb = Injected(at=[9], value=value)
    loss = HidingLoss.paper(reduction="mean").with_term("bomb", 1.0, bomb)
    model = tiny_model()
    settings = config(steps=12, spike_window=10, spike_patience=1, lr_recovery_steps=0)
    trainer = Trainer(model, loss, Crop(tiny_data()), settings, out_dir=tmp_path, progress=False)
    result = trainer.fit()
    assert result.steps == 12 and result.rollbacks == 1
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    rollbacks = [e for e in events if e.get("event") == "rollback"]
    assert len(rollbacks) == 1
    assert rollbacks[0]["at_step"] == 9 and rollbacks[0]["back_to_step"] == 8 and problem in rollbacks[0]["problem"]
    assert rollbacks[0]["lr_scale"] == 0.5
    train_rows = [e for e in events if e["kind"] == "train"]
    assert [e["step"] for e in train_rows] == list(range(1, 13))  # the rolled-back step 9 is logged once, after
    assert [int(row.split(",")[0]) for row in (tmp_path / "train.csv").read_text().splitlines()[1:]] == list(
        range(1, 13)
    )
    assert [r["step"] for r in result.history] == list(range(1, 13))
    assert math.isclose(train_rows[-1]["lr"], 1e-3 * 0.5 * 0.5**2)  # schedule x rollback factor
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_lone_spike_skips_its_update_and_nothing_else(tmp_path):
    # 8 steps whose last one spikes end where 7 clean steps end: the spike's update is dropped.
    loss = HidingLoss.paper(reduction="mean").with_term("bomb", 1.0, Injected(at=[8], value=1e9))
    spiked = Trainer(tiny_model(), loss, Crop(tiny_data()), config(steps=8, spike_window=10), out_dir=tmp_path,
                     progress=False)  # fmt: skip
    result = spiked.fit()
    clean = Trainer(tiny_model(), HidingLoss.paper(reduction="mean"), Crop(tiny_data()), config(steps=7),
                    progress=False)  # fmt: skip
    clean.fit()
    want, got = params(clean.model), params(spiked.model)
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert (result.steps, result.rollbacks, result.skipped, spiked.lr_scale) == (8, 0, 1, 1.0)
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    skipped = [e for e in events if e.get("event") == "skipped"]
    assert len(skipped) == 1 and skipped[0]["at_step"] == 8 and skipped[0]["loss"] > 1e8
    assert 0 < skipped[0]["median"] < 1e3
    assert [e["step"] for e in events if e["kind"] == "train"] == list(range(1, 9))


def test_spikes_in_a_row_roll_back():
    loss = HidingLoss.paper(reduction="mean").with_term("bomb", 1.0, Injected(at=[7, 8, 9], value=1e9))
    trainer = Trainer(tiny_model(), loss, Crop(tiny_data()), config(steps=12, spike_window=10, spike_patience=3),
                      progress=False)  # fmt: skip
    result = trainer.fit()
    # calls 7 and 8 are skipped, the third in a row rolls back (to the snapshot of step 8) and halves the rate
    assert (result.steps, result.skipped, result.rollbacks, trainer.lr_scale) == (12, 2, 1, 0.5)


def test_a_snapshot_that_fails_again_at_once_gives_way_to_the_one_before(tmp_path):
    # The state of step 8 fails at once after being restored (as a slowly degraded model does): back to step 6.
    loss = HidingLoss.paper(reduction="mean").with_term("bomb", 1.0, Injected(at=[9, 10], value=float("nan")))
    settings = config(steps=12, snapshot_every=2, lr_recovery_steps=0)
    trainer = Trainer(tiny_model(), loss, Crop(tiny_data()), settings, out_dir=tmp_path, progress=False)
    result = trainer.fit()
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(e["at_step"], e["back_to_step"]) for e in events if e.get("event") == "rollback"] == [(9, 8), (9, 6)]
    assert (result.steps, result.rollbacks, trainer.lr_scale) == (12, 2, 0.25)
    assert [e["step"] for e in events if e["kind"] == "train"] == list(range(1, 13))


def test_a_learning_rate_cut_recovers_after_healthy_steps():
    loss = HidingLoss.paper(reduction="mean").with_term("bomb", 1.0, Injected(at=[3], value=float("nan")))
    settings = config(steps=10, schedule="constant", lr_recovery_steps=4)
    trainer = Trainer(tiny_model(), loss, Crop(tiny_data()), settings, progress=False)
    lrs = [r["lr"] for r in trainer.fit().history]
    assert trainer.rollbacks == 1 and trainer.lr_scale == 1.0
    # steps 1-2 at the rate, rolled back to step 2; steps 3-6 at half of it; then back to the full rate
    assert lrs == [1e-3] * 2 + [5e-4] * 4 + [1e-3] * 4


def test_the_guard_alone():
    guard = ExplosionGuard(spike_factor=10, spike_window=10, max_rollbacks=2, lr_factor=0.5, spike_patience=2,
                           lr_recovery_steps=2)  # fmt: skip
    for _ in range(5):
        guard.accept(1.0)
    assert guard.problem(11.0, 1.0) == SPIKE and guard.problem(9.0, 1.0) is None
    assert not guard.should_roll_back(SPIKE)
    guard.skip()
    assert guard.should_roll_back(SPIKE) and guard.should_roll_back(NON_FINITE)
    guard.reject("x")
    guard.reject("x")
    assert guard.lr_scale == 0.25
    with pytest.raises(DivergenceError, match="3 rollbacks in a row"):
        guard.reject("x")
    state = guard.state()
    copy = ExplosionGuard(10, 10, 2, 0.5, spike_patience=2, lr_recovery_steps=2)
    copy.load_state(**state)
    assert copy.state() == state
    for _ in range(4):
        copy.accept(1.0)
    assert copy.lr_scale == 0.5  # one cut undone per 2 healthy steps: 0.125 -> 0.25 -> 0.5
    old = ExplosionGuard(10, 10, 2, 0.5)
    old.load_state(1, 0.5, [1.0])  # a checkpoint from before skipping and recovery
    assert old.state()["skipped"] == 0 and old.lr_scale == 0.5


def test_endless_explosions_give_up():
    loss = HidingLoss.paper().with_term("bomb", 1.0, Injected(at=range(3, 100), value=float("inf")))
    with pytest.raises(DivergenceError, match="3 rollbacks in a row"):
        Trainer(tiny_model(), loss, Crop(tiny_data()), config(max_rollbacks=2), progress=False).fit()


def test_logs_checkpoints_and_validation(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        write_image(images(i, 3, 20, 20), folder / f"{i}.png")
    dataset = ImageDataset(folder, crop=16)
    pairs = [(images(10, 3, 16, 16), images(11, 3, 16, 16))]
    settings = config(steps=4, val_every=2, checkpoint_every=2, keep_checkpoints=1, quantize=True)
    result = Trainer(
        tiny_model(), HidingLoss.paper(), dataset, settings, val_pairs=pairs, out_dir=tmp_path, progress=False
    ).fit()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_00000004"]
    header = (tmp_path / "train.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["step", "lr", "loss"] and "psnr_recovered" in header
    assert len((tmp_path / "val.csv").read_text().splitlines()) == 3  # header + steps 2 and 4
    assert {"psnr_stego_float", "psnr_recovered_8bit"} <= set(result.validation)
    loop = json.loads((tmp_path / "checkpoints" / "step_00000004" / "trainer.json").read_text())
    assert loop["step"] == 4 and loop["config"]["quantize"] is True


def test_the_curves_of_a_run_that_skipped_an_update(tmp_path):
    """``invhide train --lr 1e30``: a skipped update leaves text (its ``skipped`` cell) in train.csv; the curves
    figure reads past it, and past event-like, torn and non-finite cells, instead of dying after the training."""
    pytest.importorskip("matplotlib")
    log = RunLog(tmp_path, tensorboard=False)
    log.open(step=0)
    terms = {"lr": 1e-3, "concealing": 1.0, "revealing": 2.0, "low_frequency": 0.5, "grad_norm": 1.0}
    psnrs = {"psnr_stego": 20.0, "psnr_recovered": 18.0}
    log.write({"kind": "train", "step": 1, "loss": 1.6e11, **terms, "skipped": SPIKE, **psnrs})  # sets the columns
    log.write({"kind": "event", "event": "skipped", "at_step": 1, "problem": SPIKE, "loss": 1.6e11})
    log.write({"kind": "train", "step": 2, "loss": 3.0, **terms, **psnrs})
    log.write({"kind": "train", "step": 3, "loss": float("inf"), **terms, "skipped": SPIKE, **psnrs})
    log.write({"kind": "val", "step": 2, "psnr_stego_float": float("nan"), "psnr_recovered_float": 20.0})
    with (tmp_path / "train.csv").open("a") as file:
        file.write("4,0.001,2.5,event,,,,,,\nnot a row\n")  # an edited row and a torn line
    assert "loss spike" in (tmp_path / "train.csv").read_text()
    path = training_curves(tmp_path)
    assert path == tmp_path / "curves.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingPathError, match=r"empty/train.csv: no such file, so no training log to plot$"):
        training_curves(empty)
    (empty / "train.csv").write_text("step,loss\nnot a step,1\n")
    with pytest.raises(FileFormatError, match=r"train.csv: no row with a numeric step, so no training log to plot$"):
        training_curves(empty)
    assert not (empty / "curves.png").exists()


def test_training_writes_plain_progress_lines_into_a_log(capsys):
    """With stderr not a terminal (``invhide train ... > log 2>&1``), a line every few seconds, not a redraw per step."""
    start = time.monotonic()
    Trainer(tiny_model(), HidingLoss.paper(), Crop(tiny_data()), config(steps=40), progress=True).fit()
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err, repr(err[:300])
    lines = err.splitlines()
    assert 1 <= len(lines) <= 1 + elapsed / 10, lines  # one line per 10 s and one at the end
    assert lines[-1].startswith("training: 40/40 steps (100%), ") and "loss=" in lines[-1], lines


def test_a_fresh_run_does_not_overwrite_a_previous_one(tmp_path):
    Trainer(
        tiny_model(), HidingLoss.paper(), Crop(tiny_data()), config(steps=2), out_dir=tmp_path, progress=False
    ).fit()
    with pytest.raises(FileExistsError, match="holds a previous run"):
        Trainer(
            tiny_model(), HidingLoss.paper(), Crop(tiny_data()), config(steps=2), out_dir=tmp_path, progress=False
        ).fit()


def test_resume_needs_a_checkpoint_unless_auto(tmp_path):
    def trainer(folder, out=True):
        return Trainer(
            tiny_model(), HidingLoss.paper(), Crop(tiny_data()), config(steps=3), out_dir=folder if out else None,
            progress=False,
        )  # fmt: skip

    with pytest.raises(MissingPathError, match=r"empty: no checkpoint to resume.*resume='auto'"):
        trainer(tmp_path / "empty").fit(resume=True)
    assert not (tmp_path / "empty").exists()  # nothing created by a refused resume
    with pytest.raises(InputError, match="resume=True needs an output folder"):
        trainer(None, out=False).fit(resume=True)
    with pytest.raises(InputError, match="resume must be False, True or 'auto', got 'yes'"):
        trainer(tmp_path / "x").fit(resume="yes")
    # a run that left logs but no checkpoint (killed hard): refused by resume=True, restarted by "auto"
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "log.jsonl").write_text('{"kind": "train", "step": 7, "loss": 1.0}\n')
    with pytest.raises(MissingPathError, match="no checkpoint to resume"):
        trainer(stale).fit(resume=True)
    result = trainer(stale).fit(resume="auto")
    steps = [json.loads(line)["step"] for line in (stale / "log.jsonl").read_text().splitlines()]
    assert result.steps == 3 and steps == [1, 2, 3]
    # "auto" with a checkpoint resumes: nothing left to do
    again = trainer(stale).fit(resume="auto")
    assert again.steps == 3 and again.history == []


def events(folder, name):
    return [r for r in map(json.loads, (folder / "log.jsonl").read_text().splitlines()) if r.get("event") == name]


def assert_resumes_bit_exactly(folder, steps=6):
    uninterrupted = tiny_model()
    Trainer(uninterrupted, HidingLoss.paper(), Crop(tiny_data()), config(steps=steps), progress=False).fit()
    resumed = tiny_model(seed=99)  # a different start: everything must come from the checkpoint
    trainer = Trainer(
        resumed, HidingLoss.paper(), Crop(tiny_data()), config(steps=steps), out_dir=folder, progress=False
    )
    result = trainer.fit(resume=True)
    assert result.steps == steps
    want, got = params(uninterrupted), params(resumed)
    for key in want:
        assert torch.equal(want[key], got[key]), key
    rows = [int(row.split(",")[0]) for row in (folder / "train.csv").read_text().splitlines()[1:]]
    assert rows == list(range(1, steps + 1))


class Interrupting(Crop):
    """:class:`Crop` whose ``item`` raises ``KeyboardInterrupt`` on call ``at`` once :attr:`armed` (not before)."""

    def __init__(self, data, at):
        super().__init__(data)
        self.calls, self.at, self.armed = 0, at, False

    def item(self, index, generator=None):
        if self.armed:
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
        return super().item(index, generator)


@pytest.mark.parametrize("source", ["loss term", "data set"])
def test_interruption_before_the_first_checkpoint_saves_the_last_completed_step(tmp_path, source):
    # checkpoint_every=0: no periodic checkpoint; steps 1 and 2 complete, step 3 is interrupted
    if source == "loss term":
        loss = HidingLoss.paper().with_term("crash", 0.0, Injected(at=[3], value=KeyboardInterrupt()))
        data = Crop(tiny_data())
    else:
        loss, data = HidingLoss.paper(), Interrupting(tiny_data(), at=2 * 2 * 2 + 1)  # 4 images a step
    trainer = Trainer(tiny_model(), loss, data, config(checkpoint_every=0), out_dir=tmp_path, progress=False)
    if isinstance(data, Interrupting):
        data.armed = True  # the trainer looked at one image when it was built
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_00000002"]
    loop = json.loads((tmp_path / "checkpoints" / "step_00000002" / "trainer.json").read_text())
    assert loop["step"] == 2
    (event,) = events(tmp_path, "interrupted")
    assert event["at_step"] == 2 and event["checkpoint"].endswith("step_00000002")
    assert not (tmp_path / "model.safetensors").exists()  # not finished
    assert_resumes_bit_exactly(tmp_path)


class Signalling(torch.nn.Module):
    """A loss term that sends this process ``count`` SIGINTs (Ctrl-C) during call ``at``."""

    def __init__(self, at, count=1):
        super().__init__()
        self.calls, self.at, self.count = 0, at, count

    def forward(self, *, stego, **_):
        self.calls += 1
        if self.calls == self.at:
            for _ in range(self.count):
                signal.raise_signal(signal.SIGINT)
        return stego.sum() * 0


@pytest.fixture
def interactive_sigint():
    """SIGINT as an interactive Python process has it (a background job, like CI under nohup, starts ignoring it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_finishes_the_step_saves_it_and_a_second_one_stops_at_once(tmp_path, interactive_sigint):
    before = signal.getsignal(signal.SIGINT)
    loss = HidingLoss.paper().with_term("ctrl_c", 0.0, Signalling(at=3))
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_model(), loss, Crop(tiny_data()), config(), out_dir=tmp_path / "once", progress=False).fit()
    assert signal.getsignal(signal.SIGINT) is before  # the handler lives only while fitting
    # the first Ctrl-C is deferred: step 3, under way, completes and is saved
    assert [p.name for p in (tmp_path / "once" / "checkpoints").iterdir()] == ["step_00000003"]
    assert events(tmp_path / "once", "interrupted")[0]["at_step"] == 3
    assert_resumes_bit_exactly(tmp_path / "once")

    twice = HidingLoss.paper().with_term("ctrl_c", 0.0, Signalling(at=3, count=2))
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_model(), twice, Crop(tiny_data()), config(), out_dir=tmp_path / "twice", progress=False).fit()
    assert not (tmp_path / "twice" / "checkpoints").exists()  # at once: nothing more is written
    (event,) = events(tmp_path / "twice", "interrupted")
    assert event["checkpoint"] is None and "at once" in event["note"]
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_during_the_last_step_completes_the_run(tmp_path, interactive_sigint):
    loss = HidingLoss.paper().with_term("ctrl_c", 0.0, Signalling(at=6))
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_model(), loss, Crop(tiny_data()), config(), out_dir=tmp_path, progress=False).fit()
    assert (tmp_path / "model.safetensors").is_file()
    assert events(tmp_path, "interrupted")[0]["at_step"] == 6


def test_resume_survives_torn_and_edited_logs(tmp_path):
    crashing = HidingLoss.paper().with_term("crash", 0.0, Injected(at=[4], value=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_model(), crashing, Crop(tiny_data()), config(), out_dir=tmp_path, progress=False).fit()
    with (tmp_path / "log.jsonl").open("a") as file:
        file.write('{"kind": "train", "step": 4, "lo')  # killed in the middle of a write
    with (tmp_path / "train.csv").open("a") as file:
        file.write("four,1.0\n")
    with pytest.warns(UserWarning) as caught:
        assert_resumes_bit_exactly(tmp_path)
    messages = sorted(str(w.message).removeprefix(str(tmp_path)) for w in caught)
    assert messages == [
        "/log.jsonl: dropped 1 unreadable line(s) (5): torn by a crash or edited",
        "/train.csv: dropped 1 unreadable line(s) (5): torn by a crash or edited",
    ]
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == list(range(1, 7))


def test_resuming_past_the_configured_steps_is_refused(tmp_path):
    Trainer(
        tiny_model(), HidingLoss.paper(), Crop(tiny_data()), config(steps=4), out_dir=tmp_path, progress=False
    ).fit()
    trainer = Trainer(tiny_model(), HidingLoss.paper(), Crop(tiny_data()), config(steps=2), out_dir=tmp_path)
    with pytest.raises(ConfigError, match="step_00000004 holds step 4, past steps=2"):
        trainer.fit(resume=True)


def test_several_secrets():
    model = tiny_model(num_secrets=2)
    before = params(model)
    result = Trainer(model, HidingLoss.paper(), Crop(tiny_data()), config(steps=2), progress=False).fit()
    assert result.steps == 2 and any(not torch.equal(before[k], v) for k, v in params(model).items())
    assert {"revealing", "psnr_recovered"} <= set(result.history[-1])
    pairs = [(images(0, 3, 16, 16), images(1, 3, 16, 16))]
    with pytest.raises(ValueError, match="one RGB secret per cover; this model hides 2 secret"):
        Trainer(tiny_model(num_secrets=2), HidingLoss.paper(), Crop(tiny_data()), config(), val_pairs=pairs)


def test_a_cover_never_hides_itself():
    for count, secrets in ((2, 1), (6, 1), (6, 3)):
        batches = StepBatches(list(range(count)), covers=64, secrets=secrets, seed=0, rank=0, rollbacks=0)
        indices = batches.indices(0, torch.Generator().manual_seed(0))
        secret, cover = indices[: 64 * secrets], indices[64 * secrets :]
        assert len(cover) == 64 and all(c != s for c, s in zip(cover, secret[::secrets]))
        assert set(cover) == set(range(count)) and set(secret) == set(range(count))


def test_custom_subnet_fails_before_training(tmp_path):
    model = InvertibleHider(num_blocks=1, subnet=lambda c_in, c_out: torch.nn.Conv2d(c_in, c_out, 3, padding=1))
    with pytest.raises(TypeError, match="register its class"):
        Trainer(model, HidingLoss.paper(), Crop(tiny_data()), config(), out_dir=tmp_path)
    Trainer(model, HidingLoss.paper(), Crop(tiny_data()), config(steps=1), progress=False).fit()  # in memory: fine


def test_training_after_inference_mode_with_a_non_haar_wavelet():
    model = randomize_(InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2), wavelet="db2"), 0)
    with torch.inference_mode():
        model.hide(images(0, 1, 3, 16, 16), images(1, 1, 3, 16, 16))
    Trainer(model, HidingLoss.paper(), Crop(tiny_data()), config(steps=2), progress=False).fit()


def test_round_ste_rounds_forward_and_passes_gradients():
    x = torch.tensor([0.1, 0.7, 1.2, -0.3], requires_grad=True)
    y = round_ste(x)
    assert torch.equal(y.detach(), torch.round(x.detach().clamp(0, 1) * 255) / 255)
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(4))


def test_hiding_step_reveals_from_the_rounded_stego():
    model = tiny_model()
    cover, secret, z = images(0, 1, 3, 8, 8), images(1, 1, 3, 8, 8), images(2, 1, 3, 8, 8)
    with torch.no_grad():
        stego, _, recovered = HidingStep(model, quantize=True)(cover, secret, z)
        expected = model.reveal(torch.round(stego.clamp(0, 1) * 255) / 255, z=z)
    assert torch.equal(recovered, expected)


def test_learning_rate_schedules():
    assert TrainConfig(lr=1.0, schedule="constant").lr_at(10_000) == 1.0
    assert TrainConfig(lr=1.0, schedule="step", lr_step=100, lr_gamma=0.5).lr_at(250) == 0.25
    cosine = TrainConfig(lr=1.0, steps=100, schedule="cosine", warmup_steps=10)
    assert cosine.lr_at(0) == pytest.approx(0.1) and cosine.lr_at(10) == pytest.approx(1.0)
    assert cosine.lr_at(55) == pytest.approx(0.5) and cosine.lr_at(100) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"schedule": "linear"}, "schedule must be one of"),
        ({"grad_clip": 0.0}, "grad_clip must be a finite number > 0"),
        ({"amp": "int8"}, "amp must be one of \\(None, .float32., .bfloat16., .float16., .auto.\\)"),
        ({"spike_factor": 1.0}, "spike_factor must be a finite number > 1"),
        ({"amp": "bfloat16", "memory_saving": True}, "amp and memory_saving cannot be combined"),
        ({"betas": (0.9, 1.5)}, "betas\\[1\\] must be a finite number in \\[0, 1\\)"),
        ({"eps": 0}, "eps must be a finite number > 0"),
        ({"keep_checkpoints": 0}, "keep_checkpoints must be a positive integer"),
    ],
)
def test_bad_config(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)


def run_ddp(folder, mode):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(ROOT / "tests" / "scripts" / "ddp_train.py"), str(folder), mode,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    folder.mkdir()
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return [torch.load(folder / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def test_ddp_two_processes_gloo_keeps_replicas_identical(tmp_path):
    """torchrun, 2 processes, gloo: replicas stay identical, with and without memory saving, and agree."""
    ordinary = run_ddp(tmp_path / "ordinary", "ordinary")
    saving = run_ddp(tmp_path / "memory_saving", "memory_saving")
    for rank0, rank1 in (ordinary, saving):
        assert rank0.keys() == rank1.keys()
        for key in rank0:
            assert torch.equal(rank0[key], rank1[key]), key
    for key in ordinary[0]:
        assert torch.allclose(ordinary[0][key], saving[0][key], atol=1e-6), key
    start = torch.load(tmp_path / "ordinary" / "start.pt", weights_only=True)
    assert any(not torch.equal(start[k], ordinary[0][k]) for k in start), "no training happened"
    run = tmp_path / "ordinary" / "run"
    assert (run / "model.safetensors").is_file()
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps[-1] == 4
