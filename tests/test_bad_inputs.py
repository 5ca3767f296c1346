"""Every bad input gets a clear answer: table-driven cases for the Python API and the command line.

Each case writes its inputs into a fresh folder (``arrange``), then makes one
call that must be refused (``act``). Every case asserts the same things:

- the exception is exactly the expected :class:`~invhide.errors.InvhideError`
  subclass (on the command line: exit status 2 and one ``invhide: error:``
  line);
- the message is one line and matches the case's pattern, which names the
  input as the user gave it (the argument's name, the file's path);
- the folder holds exactly the files it held before the call, byte for byte:
  no output or partial file was left, no input file was changed;
- tensors passed in are unchanged (nothing was modified in place).

To add a case, append a row to :data:`API_CASES` or :data:`CLI_CASES`; the
``arrange`` helpers below build the usual inputs (a small trained-looking
model, images, a training run).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import images

from invhide import InvertibleHider, subnets
from invhide.errors import (
    InputError,
    InputTypeError,
    InvhideError,
    IsAFolderError,
    MissingPathError,
    ModelError,
)
from invhide.io.checkpoint import CheckpointError, load, save, save_tensors
from invhide.io.images import write_image
from invhide.models import inference
from invhide.testing import randomize_
from invhide.training import TrainConfig, Trainer
from invhide.training.losses import HidingLoss

# ----------------------------------------------------------------------
# Shared assertions
# ----------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden and temporary ones included) with the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """The tensors inside nested tuples, lists and dicts."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)


def same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values, NaNs in the same places (meta tensors: same shape)."""
    if a.device.type == "meta":
        return a.shape == b.shape
    return a.shape == b.shape and torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


def assert_one_line(message: str, pattern: str) -> None:
    assert message.strip() == message and message, f"empty or padded message {message!r}"
    assert "\n" not in message, f"more than one line: {message!r}"
    assert re.search(pattern, message), f"{message!r} does not match {pattern!r}"


def assert_nothing_written(folder: Path, before: dict[str, str]) -> None:
    after = snapshot(folder)
    assert after.keys() == before.keys(), f"files added {sorted(after.keys() - before.keys())}, removed " + str(
        sorted(before.keys() - after.keys())
    )
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"input files changed: {changed}"


# ----------------------------------------------------------------------
# Inputs the cases share
# ----------------------------------------------------------------------


def tiny_model(seed: int = 0) -> InvertibleHider:
    """A one-block hider moved away from the identity, in eval mode."""
    model = InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2))
    return randomize_(model, seed, gain=0.05).eval()


def pair(size: int = 16, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    return images(0, 1, 3, size, size, dtype=dtype), images(1, 1, 3, size, size, dtype=dtype)


def with_value(tensor: torch.Tensor, value: float) -> torch.Tensor:
    """A copy of ``tensor`` with its first element set to ``value``."""
    out = tensor.clone()
    out.view(-1)[0] = value
    return out


def model_file(folder: Path, model: torch.nn.Module | None = None) -> Path:
    return save(model if model is not None else tiny_model(), folder / "model.safetensors")


def hostile_file(folder: Path, tensors: dict[str, torch.Tensor], config: Any, name: str = "hostile") -> Path:
    path = folder / f"{name}.safetensors"
    save_tensors(tensors, path, {"format": "invhide.model.v1", "config": json.dumps(config)})
    return path


def int_weights_file(folder: Path) -> Path:
    model = tiny_model()
    return hostile_file(folder, {k: v.long() for k, v in model.state_dict().items()}, model.config(), "int64")


def diverged(model: InvertibleHider, subnet: str = "phi") -> InvertibleHider:
    """``model`` with one infinite weight in a subnet, as after a training explosion.

    ``phi`` feeds the stego (hiding), ``eta`` the secret branch (both ways).
    """
    with torch.no_grad():
        getattr(model.nodes.coupling_1, subnet).output_layer.bias[0] = float("inf")
    return model


def config(**overrides: Any) -> TrainConfig:
    settings: dict[str, Any] = dict(
        steps=2, batch_size=2, crop=16, lr=1e-3, log_every=1, val_every=0, checkpoint_every=1, tensorboard=False
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def trainer(out_dir: Path | None, steps: int = 2) -> Trainer:
    data = [images(i, 3, 16, 16) for i in range(4)]
    return Trainer(tiny_model(), HidingLoss.paper(), data, config(steps=steps), out_dir=out_dir, progress=False)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-step run with checkpoints at steps 1 and 2, trained once for the module."""
    folder = tmp_path_factory.mktemp("run") / "run"
    trainer(folder).fit()
    return folder


RUN: dict[str, Path] = {}  # "template": the finished run, set by the test before a case is arranged


def run_with(folder: Path, edit: Callable[[Path], None]) -> Path:
    """A copy of the finished run in ``folder/run`` whose newest checkpoint ``edit`` spoils."""
    run = folder / "run"
    shutil.copytree(RUN["template"], run)
    edit(run / "checkpoints" / "step_00000002")
    return run


def loop_state(edit: Callable[[Any], Any]) -> Callable[[Path], None]:
    """Rewrite a checkpoint's ``trainer.json`` through ``edit`` (which gets and returns the parsed JSON)."""

    def spoil(checkpoint: Path) -> None:
        path = checkpoint / "trainer.json"
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))

    return spoil


def write(name: str, data: bytes) -> Callable[[Path], None]:
    def spoil(checkpoint: Path) -> None:
        (checkpoint / name).write_bytes(data)

    return spoil


def dropped(key: str) -> Callable[[Any], Any]:
    return lambda state: {k: v for k, v in state.items() if k != key}


def replaced(key: str, value: Any) -> Callable[[Any], Any]:
    return lambda state: {**state, key: value}


def resume(run: Path) -> None:
    trainer(run).fit(resume=True)


# ----------------------------------------------------------------------
# The Python API
# ----------------------------------------------------------------------


@dataclass(frozen=True)
class ApiCase:
    """One refused call: ``act(arrange(folder))`` must raise ``error`` with a message matching ``message``."""

    id: str
    arrange: Callable[[Path], Any]
    act: Callable[[Any], object]
    error: type[InvhideError]
    message: str


API_CASES: list[ApiCase] = [
    # -- hide and reveal: dtypes, devices, values -------------------------------------------------------------
    ApiCase(
        "hide-float64-cover",
        lambda folder: (tiny_model(), *pair(dtype=torch.float64)),
        lambda args: args[0].hide(args[1], args[2]),
        InputTypeError,
        r"^cover has dtype torch.float64 but the model's weights are torch.float32: convert the input "
        r"\(cover.float\(\)\) or the model \(model.double\(\)\)$",
    ),
    ApiCase(
        "hide-float16-cover",
        lambda folder: (tiny_model(), *pair(dtype=torch.float16)),
        lambda args: args[0].hide(args[1], args[2]),
        InputTypeError,
        r"^cover has dtype torch.float16 .* \(cover.float\(\)\) or the model \(model.half\(\)\)$",
    ),
    ApiCase(
        "hide-secret-of-another-dtype",
        lambda folder: (tiny_model(), pair()[0], pair(dtype=torch.float64)[1]),
        lambda args: args[0].hide(args[1], args[2]),
        InputError,
        r"^secret must be on the cover's device and dtype \(cpu, torch.float32\), got \(cpu, torch.float64\): "
        r"convert it with secret.to\(cover\)$",
    ),
    ApiCase(
        "reveal-float64-stego",
        lambda folder: (tiny_model(), pair(dtype=torch.float64)[0]),
        lambda args: args[0].reveal(args[1]),
        InputTypeError,
        r"^stego has dtype torch.float64 but the model's weights are torch.float32",
    ),
    ApiCase(
        "hide-cover-on-another-device",
        lambda folder: (
            tiny_model(),
            torch.empty(1, 3, 16, 16, device="meta"),
            torch.empty(1, 3, 16, 16, device="meta"),
        ),
        lambda args: args[0].hide(args[1], args[2]),
        InputTypeError,
        r"^cover is on meta but the model is on cpu: move the input \(cover.to\('cpu'\)\) or the model "
        r"\(model.to\('meta'\)\)$",
    ),
    ApiCase(
        "hide-nan-cover",
        lambda folder: (tiny_model(), with_value(pair()[0], float("nan")), pair()[1]),
        lambda args: args[0].hide(args[1], args[2]),
        InputError,
        r"^cover holds 1 NaN or infinite value\(s\) among 768",
    ),
    ApiCase(
        "hide-infinite-secret",
        lambda folder: (tiny_model(), pair()[0], with_value(pair()[1], float("inf"))),
        lambda args: args[0].hide(args[1], args[2]),
        InputError,
        r"^secret holds 1 NaN or infinite value\(s\)",
    ),
    ApiCase(
        "reveal-nan-stego",
        lambda folder: (tiny_model(), with_value(pair()[0], float("nan"))),
        lambda args: args[0].reveal(args[1]),
        InputError,
        r"^stego holds 1 NaN or infinite value\(s\)",
    ),
    ApiCase(
        "reveal-infinite-z",
        lambda folder: (tiny_model(), pair()[0], with_value(pair()[1], float("-inf"))),
        lambda args: args[0].reveal(args[1], z=args[2]),
        InputError,
        r"^z holds 1 NaN or infinite value\(s\)",
    ),
    ApiCase(
        "reveal-z-of-another-size",
        lambda folder: (tiny_model(), pair()[0], pair(size=8)[1]),
        lambda args: args[0].reveal(args[1], z=args[2]),
        InputError,
        r"^z must match the stego's batch and size \(1, 16, 16\), got shape \(1, 3, 8, 8\)$",
    ),
    ApiCase(
        "reveal-generator-not-a-generator",
        lambda folder: (tiny_model(), pair()[0]),
        lambda args: args[0].reveal(args[1], generator=42),
        InputTypeError,
        r"^generator must be a torch.Generator, got int$",
    ),
    ApiCase(
        "hide-with-diverged-weights",
        lambda folder: (diverged(tiny_model()), *pair()),
        lambda args: args[0].hide(args[1], args[2]),
        ModelError,
        r"^the model turned finite inputs into \d+ NaN or infinite value\(s\) in the stego: its weights are "
        r"corrupt or diverged",
    ),
    ApiCase(
        "reveal-with-diverged-weights",
        lambda folder: (diverged(tiny_model(), "eta"), pair()[0]),
        lambda args: args[0].reveal(args[1], generator=torch.Generator().manual_seed(0)),
        ModelError,
        r"^the model turned finite inputs into \d+ NaN or infinite value\(s\) in the recovered secret",
    ),
    # -- any-size inference --------------------------------------------------------------------------------------
    ApiCase(
        "inference-cover-not-a-tensor",
        lambda folder: (tiny_model(), pair()[0].numpy(), pair()[1]),
        lambda args: inference.hide(*args),
        InputTypeError,
        r"^cover must be a torch.Tensor, got ndarray$",
    ),
    ApiCase(
        "inference-cover-out-of-range",
        lambda folder: (tiny_model(), pair()[0] * 2, pair()[1]),
        lambda args: inference.hide(*args),
        InputError,
        r"^cover must have values in \[0, 1\], got values in \[[\d.e-]+, 1\.\d+\]$",
    ),
    ApiCase(
        "inference-secret-of-another-size",
        lambda folder: (tiny_model(), pair()[0], pair(size=8)[1]),
        lambda args: inference.hide(*args),
        InputError,
        r"^the secret is 8x8 but the cover is 16x16 .*fit='resize' or fit='crop'",
    ),
    ApiCase(
        "inference-tile-zero",
        lambda folder: (tiny_model(), *pair()),
        lambda args: inference.hide(*args, tile=0),
        InputError,
        r"^tile must be a positive integer, got 0$",
    ),
    ApiCase(
        "inference-overlap-a-string",
        lambda folder: (tiny_model(), pair()[0]),
        lambda args: inference.reveal(*args, tile=8, overlap="2"),
        InputError,
        r"^overlap must be a non-negative integer, got '2'$",
    ),
    ApiCase(
        "inference-z-not-a-tensor",
        lambda folder: (tiny_model(), pair()[0]),
        lambda args: inference.reveal(*args, z=[0.0]),
        InputTypeError,
        r"^z must be a torch.Tensor, got list$",
    ),
    ApiCase(
        "inference-diverged-model",
        lambda folder: (diverged(tiny_model()), *pair()),
        lambda args: inference.hide(*args),
        ModelError,
        r"in the stego: its weights are corrupt or diverged",
    ),
    # -- model files -------------------------------------------------------------------------------------------
    ApiCase(
        "load-num-blocks-1e9",
        lambda folder: hostile_file(folder, {"w": torch.zeros(3)}, {"class": "HiNet", "num_blocks": 10**9}),
        load,
        CheckpointError,
        r"hostile.safetensors: the model config sets num_blocks = 1000000000, more than its 1 tensor\(s\) "
        r"could hold",
    ),
    ApiCase(
        "load-growth-200000",
        lambda folder: hostile_file(folder, {"w": torch.zeros(3)}, {"class": "HiNet", "growth": 200000}),
        load,
        CheckpointError,
        r"hostile.safetensors: the model config sets growth = 200000",
    ),
    ApiCase(
        "load-int64-weights",
        int_weights_file,
        load,
        CheckpointError,
        r"int64.safetensors: tensor nodes.coupling_1.\w+.layers.0.bias has dtype I64; model weights must be "
        r"floating-point",
    ),
    ApiCase(
        "load-string-for-a-count",
        lambda folder: hostile_file(folder, {"w": torch.zeros(3)}, {"class": "HiNet", "num_blocks": "16"}),
        load,
        CheckpointError,
        r"hostile.safetensors: invalid HiNet config .*num_blocks must be a positive integer, got '16'",
    ),
    ApiCase(
        "load-tensors-of-another-model",
        lambda folder: hostile_file(
            folder, dict(tiny_model().state_dict()), {**tiny_model().config(), "num_blocks": 2}, "two_blocks"
        ),
        load,
        CheckpointError,
        r"two_blocks.safetensors: tensors do not match the InvertibleHider config: missing 12 tensor\(s\)",
    ),
    ApiCase(
        "load-text-file",
        lambda folder: (folder / "notes.safetensors").write_text("not weights at all") and folder / "notes.safetensors",
        load,
        CheckpointError,
        r"notes.safetensors: not a safetensors file",
    ),
    ApiCase(
        "load-missing-file",
        lambda folder: folder / "absent.safetensors",
        load,
        MissingPathError,
        r"absent.safetensors: no such checkpoint file$",
    ),
    ApiCase(
        "load-folder-without-a-model",
        lambda folder: (folder / "empty").mkdir() or folder / "empty",
        load,
        MissingPathError,
        r"empty: a folder without model.safetensors",
    ),
    ApiCase(
        "save-into-a-missing-folder",
        lambda folder: (tiny_model(), folder / "missing" / "model.safetensors"),
        lambda args: save(*args),
        MissingPathError,
        r"missing/model.safetensors: the output folder .*missing does not exist",
    ),
    ApiCase(
        "save-over-a-folder",
        lambda folder: (tiny_model(), (folder / "taken.safetensors").mkdir() or folder / "taken.safetensors"),
        lambda args: save(*args),
        IsAFolderError,
        r"taken.safetensors",
    ),
    ApiCase(
        "load-onto-a-device-that-is-no-device",
        model_file,
        lambda path: load(path, map_location="gpu"),
        InputError,
        r"^map_location must name a device such as 'cpu', 'cuda', 'cuda:1' or 'mps', got 'gpu'$",
    ),
    # -- training runs -------------------------------------------------------------------------------------------
    ApiCase(
        "train-on-grayscale-images",
        lambda folder: [images(i, 1, 16, 16) for i in range(4)],
        lambda data: Trainer(tiny_model(), HidingLoss.paper(), data, config(), out_dir=None, progress=False),
        InputError,
        r"^train_data\[0\] must be a float \(3, 16, 16\) image in \[0, 1\], got shape \(1, 16, 16\)",
    ),
    ApiCase(
        "train-on-tensor-dataset-rows",
        lambda folder: torch.utils.data.TensorDataset(torch.rand(4, 3, 16, 16)),
        lambda data: Trainer(tiny_model(), HidingLoss.paper(), data, config(), out_dir=None, progress=False),
        InputTypeError,
        r"^train_data\[0\] is a tuple of one tensor; pass the images themselves",
    ),
    ApiCase(
        "resume-without-a-checkpoint",
        lambda folder: folder / "new_run",
        resume,
        MissingPathError,
        r"new_run: no checkpoint to resume .*resume=False.*resume='auto'",
    ),
    ApiCase(
        "resume-mode-misspelt",
        lambda folder: folder / "new_run",
        lambda run: trainer(run).fit(resume="yes"),
        InputError,
        r"^resume must be False, True or 'auto', got 'yes'$",
    ),
    ApiCase(
        "trainer-json-a-list",
        lambda folder: run_with(folder, loop_state(lambda state: [state])),
        resume,
        CheckpointError,
        r"step_00000002/trainer.json: expected a JSON object, got a list; the checkpoint is corrupt or was edited",
    ),
    ApiCase(
        "trainer-json-without-step",
        lambda folder: run_with(folder, loop_state(dropped("step"))),
        resume,
        CheckpointError,
        r"step_00000002/trainer.json: no 'step' entry",
    ),
    ApiCase(
        "trainer-json-string-for-a-number",
        lambda folder: run_with(folder, loop_state(replaced("lr_scale", "0.5"))),
        resume,
        CheckpointError,
        r"step_00000002/trainer.json: 'lr_scale' must be a positive number, got '0.5'",
    ),
    ApiCase(
        "trainer-json-not-json",
        lambda folder: run_with(folder, write("trainer.json", b'{"step": 2, "rollb')),
        resume,
        CheckpointError,
        r"step_00000002/trainer.json: not JSON",
    ),
    ApiCase(
        "trainer-json-step-of-another-folder",
        lambda folder: run_with(folder, loop_state(replaced("step", 1))),
        resume,
        CheckpointError,
        r"trainer.json: 'step' is 1 but the folder is step_00000002",
    ),
    ApiCase(
        "checkpoint-optimizer-truncated",
        lambda folder: run_with(folder, write("optimizer.safetensors", b"\x10\0\0\0\0\0\0\0{}")),
        resume,
        CheckpointError,
        r"step_00000002/optimizer.safetensors: not a safetensors file",
    ),
    ApiCase(
        "checkpoint-model-missing",
        lambda folder: run_with(folder, lambda checkpoint: (checkpoint / "model.safetensors").unlink()),
        resume,
        MissingPathError,
        r"step_00000002/model.safetensors: no such checkpoint file",
    ),
]


@pytest.mark.parametrize("case", API_CASES, ids=[c.id for c in API_CASES])
def test_api_refuses_bad_input(case: ApiCase, tmp_path: Path, finished_run: Path) -> None:
    RUN["template"] = finished_run
    args = case.arrange(tmp_path)
    before = snapshot(tmp_path)
    tensors = [t.clone() for t in tensors_in(args)]
    with pytest.raises(InvhideError) as caught:
        case.act(args)
    error = caught.value
    assert type(error) is case.error, f"{type(error).__name__}: {error}"
    assert_one_line(str(error), case.message)
    assert_nothing_written(tmp_path, before)
    assert all(same_tensor(a, b) for a, b in zip(tensors, tensors_in(args), strict=True)), "an input tensor changed"


def test_there_are_enough_api_cases() -> None:
    assert len(API_CASES) >= 20 and len({c.id for c in API_CASES}) == len(API_CASES)


def test_a_model_that_hides_nothing_is_told() -> None:
    fresh = InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2))
    assert inference.hides_nothing(fresh)
    assert not inference.hides_nothing(tiny_model())
    cover, secret = pair()
    stego = inference.hide(tiny_model(), cover, secret)
    assert inference.stego_psnr(cover, stego) > 0
    assert inference.stego_psnr(cover, inference.hide(fresh, cover, secret)) > 100  # the identity, up to rounding


def test_a_model_file_that_would_hide_nothing_is_told(tmp_path: Path) -> None:
    fresh = InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2))
    assert inference.hides_nothing(load(model_file(tmp_path, fresh)))
    assert not inference.hides_nothing(load(model_file(tmp_path, tiny_model())))


# ----------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------


def image_files(folder: Path) -> tuple[Path, Path, Path]:
    """``cover.png`` and ``secret.png`` (16x16) in ``folder``, and an empty output folder ``out``."""
    cover, secret = pair()
    write_image(cover[0], folder / "cover.png")
    write_image(secret[0], folder / "secret.png")
    (folder / "out").mkdir()
    return folder / "cover.png", folder / "secret.png", folder / "out"


def hide_with(model: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    """``invhide hide cover.png secret.png -o out/stego.png --model <model(folder)>``."""

    def argv(folder: Path) -> list[str]:
        cover, secret, out = image_files(folder)
        return ["hide", str(cover), str(secret), "-o", str(out / "stego.png"), "--model", str(model(folder))]

    return argv


@dataclass(frozen=True)
class CliCase:
    """One refused command: ``invhide <arrange(folder)>`` must exit with status 2 and one matching error line."""

    id: str
    arrange: Callable[[Path], list[str]]
    message: str


CLI_CASES: list[CliCase] = [
    CliCase(
        "hide-with-a-hostile-model",
        hide_with(lambda f: hostile_file(f, {"w": torch.zeros(3)}, {"class": "HiNet", "num_blocks": 10**9})),
        r"hostile.safetensors: the model config sets num_blocks = 1000000000",
    ),
    CliCase(
        "hide-with-integer-weights",
        hide_with(int_weights_file),
        r"int64.safetensors: tensor nodes.coupling_1.\w+.layers.0.bias has dtype I64",
    ),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_refuses_bad_input(case: CliCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from invhide.cli.main import main

    argv = case.arrange(tmp_path)
    before = snapshot(tmp_path)
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [line for line in err.splitlines() if line.startswith("invhide: error: ")]
    assert len(lines) == 1, err
    assert_one_line(lines[0].removeprefix("invhide: error: "), case.message)
    assert_nothing_written(tmp_path, before)
