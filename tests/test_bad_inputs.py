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
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import images

from invhide import InvertibleHider
from invhide.errors import (
    FileFormatError,
    InputError,
    InputTypeError,
    InvhideError,
    IsAFolderError,
    MissingPathError,
    ModelError,
    NotAFolderError,
    PathError,
    PathExistsError,
)
from invhide.evaluation.figures import training_curves
from invhide.evaluation.metrics import evaluate, psnr, ssim
from invhide.evaluation.steganalysis import evaluate_detectors, rs_analysis
from invhide.io import images as image_io
from invhide.io.checkpoint import CheckpointError, load, save, save_tensors
from invhide.io.files import atomic_write
from invhide.io.images import write_image
from invhide.io.keyfiles import write_key_file
from invhide.models import inference, zoo
from invhide.nn import subnets
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


def a_pipe(name: str) -> Callable[[Path], Path]:
    """A named pipe ``name`` in the folder: not a regular file, never to be replaced by one."""

    def make(folder: Path) -> Path:
        os.mkfifo(folder / name)
        return folder / name

    return make


def write_atomically(path: Path) -> None:
    with atomic_write(path, "w") as file:
        file.write("{}")


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
        lambda args: args[0].hide(args[1], args[2], check_finite=True),
        InputError,
        r"^cover holds 1 NaN or infinite value\(s\) among 768",
    ),
    ApiCase(
        "hide-infinite-secret",
        lambda folder: (tiny_model(), pair()[0], with_value(pair()[1], float("inf"))),
        lambda args: args[0].hide(args[1], args[2], check_finite=True),
        InputError,
        r"^secret holds 1 NaN or infinite value\(s\)",
    ),
    ApiCase(
        "reveal-nan-stego",
        lambda folder: (tiny_model(), with_value(pair()[0], float("nan"))),
        lambda args: args[0].reveal(args[1], check_finite=True),
        InputError,
        r"^stego holds 1 NaN or infinite value\(s\)",
    ),
    ApiCase(
        "reveal-infinite-z",
        lambda folder: (tiny_model(), pair()[0], with_value(pair()[1], float("-inf"))),
        lambda args: args[0].reveal(args[1], z=args[2], check_finite=True),
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
        lambda args: args[0].hide(args[1], args[2], check_finite=True),
        ModelError,
        r"^the model turned finite inputs into \d+ NaN or infinite value\(s\) in the stego: its weights are "
        r"corrupt or diverged",
    ),
    ApiCase(
        "reveal-with-diverged-weights",
        lambda folder: (diverged(tiny_model(), "eta"), pair()[0]),
        lambda args: args[0].reveal(args[1], generator=torch.Generator().manual_seed(0), check_finite=True),
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
    ApiCase(
        "inference-verify-a-stego-smaller-than-its-cover",
        lambda folder: (tiny_model(), *pair()),
        lambda args: inference.verify(*args, args[1][..., :8, :8]),
        InputError,
        r"^stego must be a batch of 1 at least the cover's size 16x16 \(height x width\), got shape \(1, 3, 8, 8\)$",
    ),
    ApiCase(
        "inference-blur-agreement-window-0",
        lambda folder: (tiny_model(), pair()[0]),
        lambda args: inference.blur_agreement(*args, window=0),
        InputError,
        r"^window must be a positive integer, got 0$",
    ),
    ApiCase(
        "image-format-of-a-text-file",
        lambda folder: a_file("notes.png", b"not a picture")(folder),
        lambda path: image_io.image_format(path),
        image_io.ImageError,
        r"notes.png: not an image file \(Pillow does not recognise its format\)$",
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
    ApiCase(
        "save-a-string",
        lambda folder: ("not a model", folder / "m.safetensors"),
        lambda args: save(*args),
        InputTypeError,
        r"^model must be an invhide model \(a torch.nn.Module with a config\(\) method, such as invhide.HiNet\), "
        r"got str$",
    ),
    ApiCase(
        "save-a-plain-module",
        lambda folder: (torch.nn.Linear(2, 2), folder / "m.safetensors"),
        lambda args: save(*args),
        InputTypeError,
        r"^model must be an invhide model .*, got Linear$",
    ),
    ApiCase(
        "save-over-a-file-taken-for-a-folder",
        lambda folder: (tiny_model(), a_file("weights", b"precious")(folder)),
        lambda args: save(*args),
        NotAFolderError,
        r"weights: is a file, not a folder; save to a folder, or to a file whose name ends in .safetensors$",
    ),
    ApiCase(
        "save-diverged-weights",
        lambda folder: (diverged(tiny_model()), folder / "diverged.safetensors"),
        lambda args: save(*args),
        ModelError,
        r"diverged.safetensors: not written: the model's tensor nodes.coupling_1.phi.\S+ holds 1 NaN or infinite "
        r"value\(s\) \(diverged weights\?\), which invhide.load refuses$",
    ),
    ApiCase(
        "save-without-replace-over-a-model",
        lambda folder: (tiny_model(1), model_file(folder)),
        lambda args: save(*args, replace=False),
        PathExistsError,
        r"model.safetensors exists; pass replace=True to replace it$",
    ),
    ApiCase(
        "atomic-write-over-a-pipe",
        a_pipe("pipe.json"),
        write_atomically,
        PathError,
        r"pipe.json: not a regular file \(a device, pipe or socket\), which invhide never replaces; choose a file "
        r"name$",
    ),
    ApiCase(
        "inference-reveal-generator-a-string",
        lambda folder: (tiny_model(), pair()[0]),
        lambda args: inference.reveal(*args, generator="seed"),
        InputTypeError,
        r"^generator must be a torch.Generator, got str$",
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
        "train-with-validation-pairs-below-the-ssim-window",
        lambda folder: [images(i, 3, 16, 16) for i in range(4)],
        lambda data: Trainer(
            tiny_model(),
            HidingLoss.paper(),
            data,
            config(),
            val_pairs=[(data[0][..., :8, :8], data[1][..., :8, :8])],
            out_dir=None,
            progress=False,
        ),
        InputError,
        r"^val_pairs\[0\] must be at least 11x11 \(SSIM's window\), got 8x8$",
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
    ApiCase(
        "curves-of-a-log-without-a-step",
        lambda folder: (folder / "train.csv").write_text("step,loss,skipped\nloss spike,1,\n") and folder,
        training_curves,
        FileFormatError,
        r"train.csv: no row with a numeric step, so no training log to plot$",
    ),
    # -- evaluation: sizes the metrics and detectors cannot measure -------------------------------------------
    ApiCase(
        "ssim-smaller-than-its-window",
        lambda folder: pair(size=10),
        lambda args: ssim(*args),
        InputError,
        r"^x and y must be at least 11x11 \(SSIM's window\), got 10x10$",
    ),
    ApiCase(
        "evaluate-pairs-smaller-than-the-ssim-window",
        lambda folder: (tiny_model(), [pair(size=8)]),
        lambda args: evaluate(*args),
        InputError,
        r"^cover and secret of pair 0 must be at least 11x11 \(SSIM's window\), got 8x8$",
    ),
    ApiCase(
        "rs-analysis-of-a-1x1-image",
        lambda folder: torch.zeros(3, 1, 1),
        rs_analysis,
        InputError,
        r"^image has shape \(3, 1, 1\), too small for rs, which needs at least 4 pixels along a row or a column$",
    ),
    ApiCase(
        "detectors-on-a-pair-of-1x1-images",
        lambda folder: (
            [images(i, 3, 8, 8) for i in range(2)] + [images(2, 3, 1, 1)],
            [images(i, 3, 8, 8) for i in range(3, 5)] + [images(5, 3, 1, 1)],
        ),
        lambda args: evaluate_detectors(*args, ["rs"]),
        InputError,
        r"^pair 2 has images of shape \(3, 1, 1\), too small for rs, which needs at least 4 pixels along a row or a "
        r"column; leave rs out or use larger images$",
    ),
    ApiCase(
        "detectors-on-stegos-equal-to-their-covers",
        lambda folder: [images(i, 3, 8, 8) for i in range(3)],
        lambda covers: evaluate_detectors(covers, [cover.clone() for cover in covers], ["spa"]),
        InputError,
        r"^stegos are their covers, level for level, in every pair: there is nothing to tell apart; pass each "
        r"cover's stego image",
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
    assert psnr(cover, stego).item() > 0
    assert psnr(cover, inference.hide(fresh, cover, secret)).item() > 100  # the identity, up to rounding


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


Make = Callable[[Path], Any]  # builds an input in the case's folder and returns it (a path, usually)


def hide_case(
    *extra: str,
    cover: Make | None = None,
    secret: Make | None = None,
    output: Make | None = None,
    model: Make | None = None,
) -> Callable[[Path], list[str]]:
    """``invhide hide COVER SECRET -o OUTPUT --model MODEL EXTRA...``.

    By default ``cover.png`` and ``secret.png`` (16x16), ``-o out/stego.png``
    and a small model away from the identity; each ``Make`` replaces one.
    """

    def argv(folder: Path) -> list[str]:
        cover_, secret_, out = image_files(folder)
        chosen = [
            make(folder) if make is not None else default
            for make, default in ((cover, cover_), (secret, secret_), (output, out / "stego.png"))
        ]
        found = model(folder) if model is not None else model_file(folder)
        return ["hide", *map(str, chosen[:2]), "-o", str(chosen[2]), "--model", str(found), *extra]

    return argv


def hide_with(model: Make) -> Callable[[Path], list[str]]:
    """``invhide hide cover.png secret.png -o out/stego.png --model <model(folder)>``."""
    return hide_case(model=model)


def hide_into(output: Make, *extra: str) -> Callable[[Path], list[str]]:
    """``invhide hide cover.png secret.png -o <output(folder)> --model model.safetensors EXTRA...``."""
    return hide_case(*extra, output=output)


def without_model_option(arrange: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
    """The command of ``arrange`` without its final ``--model M`` (the model then comes from the environment)."""

    def argv(folder: Path) -> list[str]:
        full = arrange(folder)
        assert full[-2] == "--model"
        return full[:-2]

    return argv


def reveal_with(model: Make, output: str = "out/secret.png") -> Callable[[Path], list[str]]:
    """``invhide reveal cover.png -o <output> --model <model(folder)>`` (the cover stands for a stego)."""

    def argv(folder: Path) -> list[str]:
        cover, _, _ = image_files(folder)
        return ["reveal", str(cover), "-o", str(folder / output), "--model", str(model(folder))]

    return argv


def photos(folder: Path, count: int = 4, size: int = 16) -> Path:
    """A folder ``photos`` of ``count`` seeded ``size x size`` PNGs."""
    (folder / "photos").mkdir()
    for i in range(count):
        write_image(images(20 + i, 3, size, size), folder / "photos" / f"{i}.png")
    return folder / "photos"


def tiny_pairs(folder: Path) -> list[str]:
    """Folders ``covers`` and ``stegos`` of three 1x1 PNGs each: ``[covers, stegos]``."""
    for name in ("covers", "stegos"):
        (folder / name).mkdir()
        for i in range(3):
            write_image(images(40 + i, 3, 1, 1), folder / name / f"{i}.png")
    return [str(folder / "covers"), str(folder / "stegos")]


def made(values: tuple[str | Make, ...], folder: Path) -> list[str]:
    return [str(value(folder)) if callable(value) else value for value in values]


def eval_with(*extra: str | Make, model: Make = model_file, size: int = 16) -> Callable[[Path], list[str]]:
    """``invhide eval photos --model <model> --size SIZE EXTRA...`` (callables in ``extra`` get the folder)."""

    def argv(folder: Path) -> list[str]:
        found = photos(folder)
        return ["eval", str(found), "--model", str(model(folder)), "--size", str(size), *made(extra, folder)]

    return argv


def train_with(
    *extra: str | Make, out: Make | None = None, train_dir: Make | None = None, eval_size: int = 16
) -> Callable[[Path], list[str]]:
    """``invhide train --recipe quick`` on a folder of 16x16 photos (``--train-dir`` and ``--val-dir``) into ``run``."""

    def argv(folder: Path) -> list[str]:
        found = photos(folder)
        sources = ["--train-dir", str(train_dir(folder) if train_dir else found), "--val-dir", str(found)]
        target = out(folder) if out is not None else folder / "run"
        sizes = ["--eval-size", str(eval_size), "--crop", "16"]
        return ["train", "--recipe", "quick", *sources, *sizes, "--out", str(target), *made(extra, folder)]

    return argv


def small_image(name: str, size: int = 8) -> Make:
    def make(folder: Path) -> Path:
        write_image(images(30, 3, size, size), folder / name)
        return folder / name

    return make


def fresh_model(folder: Path) -> Path:
    return model_file(folder, InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2)))


def faint_model(folder: Path) -> Path:
    """A fresh model whose only moved weight is one value of 1e-3: it passes hides_nothing, its PNG stego is the cover."""
    model = InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2))
    with torch.no_grad():
        model.nodes.coupling_1.phi.output_layer.weight[0, 0, 0, 0] = 1e-3
    return save(model, folder / "faint.safetensors")


def shipped_default(folder: Path) -> Path:
    """The default shipped model's file (by path: the cases' model folder is empty)."""
    name = zoo.default_name(zoo.SHIPPED)
    if name is None:
        pytest.skip("no default model ships in invhide/models/trained")
    return zoo.SHIPPED / f"{name}.safetensors"


def with_its_key(arrange: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
    """The command of ``arrange`` with ``--key-file`` when its model is the keyed default, so that the case's one
    line is its error, not the note that a keyed model without a key uses the public key."""

    def argv(folder: Path) -> list[str]:
        command = arrange(folder)
        name = zoo.default_name(zoo.SHIPPED)
        if name is None or not zoo.record(name, zoo.SHIPPED).architecture.get("keyed"):
            return command
        write_key_file(folder / "my.key", bytes(range(32)))
        return [*command, "--key-file", str(folder / "my.key")]

    return argv


def two_secret_model(folder: Path) -> Path:
    model = randomize_(InvertibleHider(num_secrets=2, num_blocks=1, subnet=subnets.conv(hidden=8, depth=2)), 0)
    return model_file(folder, model)


def overflowing_model(folder: Path) -> Path:
    """Finite weights (the loader accepts them) so large that the stego overflows to infinity."""
    model = tiny_model()
    with torch.no_grad():
        model.nodes.coupling_1.phi.output_layer.weight.fill_(3e38)
    return save(model, folder / "overflow.safetensors")


def a_file(name: str, data: bytes = b"") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    return make


def a_folder(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).mkdir(exist_ok=True)
        return folder / name

    return make


def linked(target: str, name: str, symbolic: bool) -> Callable[[Path], Path]:
    """``name`` as a hard or symbolic link to ``target`` (inside the case's folder)."""

    def make(folder: Path) -> Path:
        link = folder / name
        if symbolic:
            link.symlink_to(target)
        else:
            link.hardlink_to(folder / target)
        return link

    return make


def existing(name: str) -> Callable[[Path], Path]:
    """An output file that exists already (``name`` under the case's folder)."""
    return a_file(name, b"precious")


def malicious_pickle(folder: Path) -> Path:
    """A pickle whose loading would run code: it would create ``PWNED`` in the folder (the snapshot sees it)."""
    import os
    import pickle

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str, ...]]:
            return (os.system, (f"touch {folder / 'PWNED'}",))

    (folder / "evil.pt").write_bytes(pickle.dumps({"net": Payload()}, protocol=2))
    return folder / "evil.pt"


def reference_checkpoint(folder: Path) -> Path:
    """A reference-code checkpoint (``{"net": state_dict}``) of a two-block HiNet."""
    from test_hinet import far_from_identity_checkpoint

    _, state = far_from_identity_checkpoint(2)
    torch.save({"net": state}, folder / "model.pt")
    return folder / "model.pt"


def convert(output: Callable[[Path], str | Path], source: Callable[[Path], Path] = reference_checkpoint) -> Callable:
    return lambda folder: ["convert-official", str(source(folder)), "-o", str(output(folder))]


def bench_into(output: Callable[[Path], str | Path]) -> Callable[[Path], list[str]]:
    return lambda folder: ["bench", "--sizes", "16", "--blocks", "1", "--json", str(output(folder))]


def previous_run(folder: Path) -> Path:
    shutil.copytree(RUN["template"], folder / "old_run")
    return folder / "old_run"


def out_with_a_model(folder: Path) -> Path:
    """A folder ``converted`` holding a model (``model.safetensors`` and ``config.json``), as convert-official writes."""
    save(tiny_model(), folder / "converted")
    return folder / "converted"


def security_into(pairs_dir: Make, *extra: str, images: Make | None = None) -> Callable[[Path], list[str]]:
    """``invhide eval IMAGES --security --detector rs --pairs-dir <pairs_dir(folder)> EXTRA...`` (16x16 photos)."""

    def argv(folder: Path) -> list[str]:
        found = photos(folder) if images is None else images(folder)
        return ["eval", str(found), "--model", str(model_file(folder)), "--size", "16", "--security", "--detector",
                "rs", "--pairs-dir", str(pairs_dir(folder)), *extra]  # fmt: skip

    return argv


def photos_as_covers_of(folder: Path) -> Path:
    """The photos in ``pairs/covers``: the folder ``--pairs-dir pairs`` would write its covers into."""
    (folder / "pairs").mkdir()
    return photos(folder).rename(folder / "pairs" / "covers")


def covers_linked_to_the_photos(folder: Path) -> Path:
    """A folder ``pairs`` whose ``covers`` is a symbolic link to ``photos`` (made by the case)."""
    (folder / "pairs").mkdir()
    (folder / "pairs" / "covers").symlink_to(folder / "photos", target_is_directory=True)
    return folder / "pairs"


def pair_file_linked_to_a_photo(folder: Path) -> Path:
    """A folder ``pairs/covers`` whose first pair file is a hard link to the first photo."""
    (folder / "pairs" / "covers").mkdir(parents=True)
    (folder / "pairs" / "covers" / "0000_0.png").hardlink_to(folder / "photos" / "0.png")
    return folder / "pairs"


def stegos_like(folder: Path, link: bool = False) -> list[str]:
    """``[photos, stegos]``: ``stegos`` a copy of the photos, or hard links to them (each pair one file)."""
    found = photos(folder)
    (folder / "stegos").mkdir()
    for path in sorted(found.iterdir()):
        if link:
            (folder / "stegos" / path.name).hardlink_to(path)
        else:
            shutil.copy(path, folder / "stegos")
    return [str(found), str(folder / "stegos")]


@dataclass(frozen=True)
class CliCase:
    """One refused command: ``invhide <arrange(folder)>`` must exit with status 2 and print one matching line.

    ``env`` sets environment variables (given the folder); ``fresh`` runs it
    in a new ``python -m invhide.cli`` process instead of through ``main()``.
    """

    id: str
    arrange: Callable[[Path], list[str]]
    message: str
    env: Callable[[Path], dict[str, str]] | None = None
    fresh: bool = False


CLI_CASES: list[CliCase] = [
    # -- hide: outputs that are inputs or exist, models that do not hide ----------------------------------------
    CliCase(
        "hide-output-is-the-secret",
        hide_into(lambda f: f / "secret.png"),
        r"^-o \S+/secret.png: is the secret image \S+/secret.png; writing it would destroy an input",
        fresh=True,
    ),
    CliCase(
        "hide-output-is-the-cover-spelt-otherwise",
        hide_into(lambda f: f"{f}/./out/../cover.png"),
        r"^-o \S+/out/../cover.png: is the cover image \S+/cover.png; writing it would destroy an input",
    ),
    CliCase(
        "hide-output-is-a-hard-link-to-the-cover",
        hide_into(linked("cover.png", "hard.png", symbolic=False)),
        r"^-o \S+/hard.png: is the cover image \S+/cover.png;",
    ),
    CliCase(
        "hide-output-is-a-symlink-to-the-secret",
        hide_into(linked("secret.png", "link.png", symbolic=True)),
        r"^-o \S+/link.png: is the secret image \S+/secret.png;",
    ),
    CliCase(
        "hide-output-exists",
        hide_into(existing("out/stego.png")),
        r"^-o \S+/out/stego.png: exists; pass --force to replace it, or choose another name$",
    ),
    CliCase(
        "hide-with-a-fresh-model",
        hide_with(fresh_model),
        r"^--model \S+/model.safetensors hides nothing: its weights leave hide the identity \(a freshly "
        r"initialised model\?\); train it first$",
    ),
    CliCase(
        "hide-with-a-model-whose-secret-does-not-come-back",
        hide_case(),
        r"^--model \S+/model.safetensors does not hide this secret: revealed from the stego as saved, as `invhide "
        r"reveal` will, it comes back at \d+\.\d\d dB PSNR, below 20 dB \(cover/stego PSNR \d+\.\d\d dB\); "
        r"nothing written \(an untrained or undertrained model\?; --no-check writes the stego anyway\)$",
    ),
    CliCase(
        "hide-with-one-weight-of-1e-3",
        hide_with(faint_model),
        r"^--model \S+/faint.safetensors hides nothing: the stego as saved is the cover, to within rounding "
        r"\(cover/stego PSNR inf dB\); nothing written \(train the model first; --no-check writes the stego anyway\)$",
    ),
    CliCase(
        "hide-a-1x1-image-with-the-default-model",
        with_its_key(
            hide_case(cover=small_image("dot.png", 1), secret=small_image("dot2.png", 1), model=shipped_default)
        ),
        r"^--model \S+\.safetensors does not hide this secret: .* below 20 dB .*; nothing written \(a 1x1 image is too "
        r"small for it; --no-check writes the stego anyway\)$",
    ),
    CliCase(
        "hide-with-a-two-secret-model",
        hide_with(two_secret_model),
        r"^--model \S+ hides 2 secrets per cover; invhide hide takes a model of one secret image$",
    ),
    CliCase(
        "hide-with-an-overflowing-model",
        hide_with(overflowing_model),
        r"^--model \S+/overflow.safetensors: the model turned finite inputs into \d+ NaN or infinite value\(s\) "
        r"in the stego: its weights are corrupt or diverged",
    ),
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
    CliCase(
        "hide-model-is-a-folder-without-one",
        hide_with(a_folder("empty_run")),
        r"^--model: \S+/empty_run: a folder without model.safetensors",
    ),
    CliCase(
        "hide-model-from-env-points-nowhere",
        without_model_option(hide_with(model_file)),
        r"^\$INVHIDE_MODEL=\S+/nowhere.safetensors: no such file or folder$",
        env=lambda f: {"INVHIDE_MODEL": str(f / "nowhere.safetensors")},
    ),
    CliCase(
        "hide-model-from-env-is-a-pickle",
        without_model_option(hide_with(model_file)),
        r"^\$INVHIDE_MODEL: \S+/model.pt: a PyTorch pickle, which invhide does not load \(it could run code\); "
        r"if it is a reference HiNet checkpoint, convert it: invhide convert-official \S+/model.pt -o "
        r"\S+/model.safetensors$",
        env=lambda f: {"INVHIDE_MODEL": str(reference_checkpoint(f))},
    ),
    CliCase(
        "hide-cover-above-max-pixels",
        hide_into(lambda f: f / "out" / "stego.png", "--max-pixels", "100"),
        r"^\S+/cover.png: image declares 16x16 = 256 pixels, more than the limit of 100 pixels \(--max-pixels\); "
        r"pass a larger --max-pixels to read it$",
    ),
    CliCase(
        "hide-secret-of-another-size",
        hide_case(secret=small_image("small.png")),
        r"^the secret image \S+/small.png is 8x8 but the cover image \S+/cover.png is 16x16; pass --fit resize or "
        r"--fit crop",
    ),
    CliCase(
        "hide-lossy-output",
        hide_into(lambda f: f / "out" / "stego.jpg"),
        r"^-o \S+/stego.jpg: .jpg is lossy or reduces colours, which would destroy the hidden image; write a "
        r"lossless .bmp, .png, .tif or .tiff file",
    ),
    CliCase(
        "hide-output-in-a-missing-folder",
        hide_into(lambda f: f / "missing" / "stego.png"),
        r"^-o \S+/missing/stego.png: the folder \S+/missing does not exist \(create it first\)$",
    ),
    CliCase(
        "hide-output-under-a-file",  # root may write anywhere: a path below a regular file is unwritable for all
        hide_into(lambda f: f / "cover.png" / "stego.png"),
        r"^-o \S+/cover.png/stego.png: \S+/cover.png is a file, not a folder$",
    ),
    CliCase(
        "hide-cover-is-text",
        hide_case(cover=a_file("notes.png", b"not a picture")),
        r"^\S+/notes.png: not an image file \(Pillow does not recognise its format\)$",
    ),
    CliCase(
        "hide-unicode-cover-missing",
        hide_case(cover=lambda f: f / "çövér ü.png"),
        r"^\S+/çövér ü.png: no such file$",
    ),
    CliCase(
        "hide-tile-not-above-twice-overlap",
        hide_into(lambda f: f / "out" / "stego.png", "--tile", "8", "--overlap", "100"),
        r"^--tile 8 must exceed twice --overlap 100 by at least 2",
    ),
    # -- reveal ------------------------------------------------------------------------------------------------
    CliCase(
        "reveal-output-is-the-stego",
        reveal_with(model_file, "cover.png"),
        r"^-o \S+/cover.png: is the stego image \S+/cover.png; writing it would destroy an input",
    ),
    CliCase(
        "reveal-output-is-the-model",
        reveal_with(lambda f: model_file(f).rename(f / "weights.png"), "weights.png"),
        r"^-o \S+/weights.png: is the model \(--model \S+/weights.png\); writing it would destroy an input",
    ),
    CliCase("reveal-with-a-fresh-model", reveal_with(fresh_model), r"^--model \S+ hides nothing"),
    CliCase(
        "reveal-with-a-two-secret-model",
        reveal_with(two_secret_model),
        r"^--model \S+ hides 2 secrets per cover; invhide reveal takes a model of one secret image$",
    ),
    # -- eval --------------------------------------------------------------------------------------------------
    CliCase(
        "eval-json-is-an-input-image",
        eval_with("--json", lambda f: f / "photos" / "0.png", "--force"),
        r"^--json \S+/photos/0.png: is the image 0.png of \S+/photos; writing it would destroy an input",
    ),
    CliCase(
        "eval-json-exists",
        eval_with("--json", existing("results.json")),
        r"^--json \S+/results.json: exists; pass --force to replace it",
    ),
    CliCase(
        "eval-json-under-a-file",
        eval_with("--json", lambda f: f / "photos" / "0.png" / "r.json"),
        r"^--json \S+/0.png/r.json: \S+/0.png is a file, not a folder$",
    ),
    CliCase(
        "eval-size-above-the-images",
        eval_with(size=64),
        r"^--size 64: \S+/photos/0.png is 16x16, smaller than the 64x64 crop; pass a smaller --size$",
    ),
    CliCase(
        "eval-a-folder-of-one-image",
        lambda f: ["eval", str(photos(f, count=1)), "--model", str(model_file(f))],
        r"^\S+/photos: holds 1 image\(s\); eval pairs images, so it needs at least two",
    ),
    CliCase("eval-with-a-fresh-model", eval_with(model=fresh_model), r"^--model \S+ hides nothing"),
    CliCase(
        "eval-roc-without-security",
        eval_with("--roc", lambda f: f / "roc.png"),
        r"^--roc: used only with --security \(the steganalysis of the model's stego images\), and does nothing "
        r"without it; add --security, or drop it$",
    ),
    CliCase(
        "eval-security-options-without-security",
        eval_with("--pairs-dir", lambda f: f / "pairs", "--detector", "rs", "--folds", "3"),
        r"^--detector, --folds, --pairs-dir: used only with --security .*, and do nothing without it; add "
        r"--security, or drop them$",
    ),
    CliCase(
        "eval-security-pairs-dir-covers-is-the-images-folder-forced",
        security_into(lambda f: f / "pairs", "--force", images=photos_as_covers_of),
        r"^--pairs-dir \S+/pairs: its covers folder \S+/pairs/covers is the folder of test images \S+/pairs/covers; "
        r"the pairs would replace its images: choose another --pairs-dir$",
    ),
    CliCase(
        "eval-security-pairs-dir-covers-is-the-images-folder",
        security_into(lambda f: f / "pairs", images=photos_as_covers_of),
        r"^--pairs-dir \S+/pairs: its covers folder \S+/pairs/covers is the folder of test images \S+/pairs/covers; "
        r"the pairs would replace its images: choose another --pairs-dir$",
    ),
    CliCase(
        "eval-security-pairs-dir-covers-links-to-the-images",
        security_into(covers_linked_to_the_photos, "--force"),
        r"^--pairs-dir \S+/pairs: its covers folder \S+/pairs/covers is the folder of test images \S+/photos; the "
        r"pairs would replace its images: choose another --pairs-dir$",
    ),
    CliCase(
        "eval-security-pair-file-is-an-input-image",
        security_into(pair_file_linked_to_a_photo, "--force"),
        r"^--pairs-dir \S+/pairs/covers/0000_0.png: is the image 0.png of \S+/photos; writing it would destroy an "
        r"input",
    ),
    CliCase(
        "eval-security-size-above-the-images",
        eval_with("--security", "--detector", "rs", size=64),
        r"^--size 64: \S+/photos/0.png is 16x16, smaller than the 64x64 crop; pass a smaller --size$",
    ),
    CliCase(
        "eval-security-roc-is-the-json",
        eval_with("--security", "--json", lambda f: f / "r.png", "--roc", lambda f: f / "r.png"),
        r"^--roc \S+/r.png: is also the --json file; give the two outputs different names$",
    ),
    CliCase(
        "eval-json-is-a-pipe-forced",
        eval_with("--json", a_pipe("pipe.json"), "--force"),
        r"^--json \S+/pipe.json: not a regular file \(a device, pipe or socket\), which invhide never replaces; "
        r"give the name of a file$",
    ),
    CliCase(
        "steganalysis-the-same-folder-twice",
        lambda f: ["steganalysis", str(photos(f)), str(f / "photos")],
        r"^\S+/photos: is the folder of covers \S+/photos; steganalysis tells covers from their stego images, so "
        r"give the folder of stego images second$",
    ),
    CliCase(
        "steganalysis-the-same-folder-through-a-link",
        lambda f: ["steganalysis", str(photos(f)), str(linked("photos", "again", symbolic=True)(f))],
        r"^\S+/again: is the folder of covers \S+/photos; steganalysis tells covers",
    ),
    CliCase(
        "steganalysis-pairs-of-one-file",
        lambda f: ["steganalysis", *stegos_like(f, link=True)],
        r"^\S+/stegos/0.png: is its cover \S+/photos/0.png \(the same file\); a pair must be a cover and its stego$",
    ),
    CliCase(
        "steganalysis-train-steps-without-a-learned-detector",
        lambda f: ["steganalysis", *stegos_like(f), "--detector", "rs", "--train-steps", "5"],
        r"^--train-steps 5: only the learned detectors \(.+\) train, and --detector rs has none, so it would do "
        r"nothing; drop it, or add one of them$",
    ),
    CliCase(
        "eval-size-below-the-ssim-window",
        eval_with(size=8),
        r"^--size must be at least 11 \(SSIM's 11x11 window\), got 8; pass --size 12 or more$",
    ),
    CliCase(
        "eval-security-size-too-small-for-rs",
        eval_with("--security", "--detector", "rs", size=2),
        r"^--size 2 makes 2x2 crops, too small for rs, which needs at least 4 pixels along a row or a column; pass a "
        r"larger --size or run --detector without rs$",
    ),
    CliCase(
        "steganalysis-rs-on-1x1-images",
        lambda f: ["steganalysis", *tiny_pairs(f), "--detector", "rs"],
        r"^\S+/covers/0.png is 1x1, too small for rs, which needs at least 4 pixels along a row or a column; use "
        r"larger images or run --detector without rs$",
    ),
    CliCase(
        "steganalysis-of-a-copy-of-the-covers",
        lambda f: ["steganalysis", str(photos(f)), str(shutil.copytree(f / "photos", f / "copy")), "--detector", "spa"],
        r"^the images of \S+/copy are their covers, level for level, in every pair: there is nothing to tell apart; "
        r"pass the folder of their stego images$",
    ),
    CliCase(
        "steganalysis-spa-on-1x1-images",
        lambda f: ["steganalysis", *tiny_pairs(f), "--detector", "spa", "chi2"],
        r"^\S+/covers/0.png is 1x1, too small for spa, which needs at least 2 pixels along a row or a column; use "
        r"larger images or run --detector without spa$",
    ),
    # -- train -------------------------------------------------------------------------------------------------
    CliCase(
        "train-resume-without-a-checkpoint",
        train_with("--resume"),
        r"^--out \S+/run: no checkpoint to resume \(no checkpoints/step_\*/trainer.json\); drop --resume to start "
        r"a new run there, or pass --resume-or-start to resume only when there is a checkpoint$",
        fresh=True,
    ),
    CliCase(
        "train-over-a-previous-run",
        train_with(out=previous_run),
        r"^--out \S+/old_run: holds a previous run \(log.jsonl, checkpoints\); continue it with --resume, or "
        r"choose another --out$",
    ),
    CliCase(
        "train-out-holds-a-model",
        train_with(out=out_with_a_model),
        r"^--out \S+/converted: holds model.safetensors, config.json, which this run would replace; pass --force",
    ),
    CliCase(
        "train-out-is-the-train-dir",
        train_with(out=lambda f: f / "photos"),
        r"^--out \S+/photos: is the --train-dir folder \S+/photos; choose another folder",
    ),
    CliCase(
        "train-out-under-a-file",
        train_with(out=lambda f: f / "photos" / "0.png" / "run"),
        r"^--out \S+/0.png/run: is below \S+/0.png, which is a file, not a folder$",
    ),
    CliCase(
        "train-eval-size-above-the-images",
        train_with(eval_size=32),
        r"^--eval-size 32: \S+/photos/0.png is 16x16, smaller than the 32x32 crop; pass a smaller --eval-size$",
    ),
    CliCase(
        "train-eval-size-below-the-ssim-window",
        train_with(eval_size=8),
        r"^--eval-size must be at least 11 \(SSIM's 11x11 window\), got 8; pass --eval-size 12 or more$",
    ),
    CliCase(
        "train-batch-beyond-memory",
        train_with("--batch-size", "1000000000"),
        r"^--batch-size 1000000000 with 16x16 crops: one batch of images alone is [\d,.]+ GiB, more than this "
        r"machine's [\d,.]+ GiB of memory",
    ),
    CliCase(
        "train-quantize-from-past-the-steps",
        train_with("--steps", "10", "--quantize-from", "10"),
        r"^--quantize-from 10: the run has 10 steps, so it would never round; pass a step below --steps$",
    ),
    CliCase(
        "train-float16-on-a-cpu",
        train_with("--amp", "float16", "--device", "cpu"),
        r'^--amp float16: amp="float16" needs a GPU; on a CPU use amp="bfloat16" or "auto"$',
    ),
    CliCase(
        "train-dir-missing",
        train_with(train_dir=lambda f: f / "nothing"),
        r"^--train-dir \S+/nothing: no such folder$",
    ),
    CliCase(
        "train-init-is-the-out-folder-forced",
        train_with("--init", out_with_a_model, "--force", "--steps", "2", out=lambda f: f / "converted"),
        r"^--out \S+/converted: is the --init folder \S+/converted; choose another folder for what the command "
        r"writes$",
    ),
    CliCase(
        "train-init-model-in-the-out-folder-forced",
        train_with(
            "--init",
            lambda f: out_with_a_model(f) / "model.safetensors",
            "--force",
            "--steps",
            "2",
            out=lambda f: f / "converted",
        ),
        r"^--out \S+/converted/model.safetensors: is the --init model \S+/converted/model.safetensors; writing it "
        r"would destroy an input",
    ),
    CliCase(
        "train-out-is-a-pipe",
        train_with("--steps", "2", out=a_pipe("pipe")),
        r"^--out \S+/pipe: is a device, pipe or socket, not a folder$",
    ),
    # -- bench -------------------------------------------------------------------------------------------------
    CliCase("bench-json-exists", bench_into(existing("bench.json")), r"^--json \S+/bench.json: exists; pass --force"),
    CliCase("bench-json-is-a-folder", bench_into(a_folder("figures")), r"^--json \S+/figures: is a folder"),
    CliCase(
        "bench-json-in-a-missing-folder",
        bench_into(lambda f: f / "missing" / "b.json"),
        r"^--json \S+/missing/b.json: the folder \S+/missing does not exist",
    ),
    CliCase(
        "bench-json-is-a-pipe-forced",
        lambda f: [*bench_into(a_pipe("pipe.json"))(f), "--force"],
        r"^--json \S+/pipe.json: not a regular file \(a device, pipe or socket\), which invhide never replaces",
    ),
    CliCase(
        "bench-option-of-a-skipped-part",
        lambda f: ["bench", "--skip", "inference", "--sizes", "16"],
        r"^--sizes: sets only the inference part, which --skip leaves out, so it would do nothing; drop it, or do not "
        r"skip the inference part$",
    ),
    CliCase(
        "bench-every-part-skipped",
        lambda f: ["bench", "--skip", "inference", "training", "memory", "autocast"],
        r"^--skip inference training memory autocast: every part is skipped, so nothing would be measured$",
    ),
    CliCase(
        "bench-batch-beyond-memory",
        lambda f: ["bench", "--batch", "1000000000", "--sizes", "1024", "--skip", "training", "memory", "autocast"],
        r"^--batch 1000000000 with 1024x1024 crops: one batch of images alone is [\d,.]+ GiB, more than this "
        r"machine's [\d,.]+ GiB of memory; pass a smaller --batch or --sizes$",
    ),
    # -- convert-official --------------------------------------------------------------------------------------
    CliCase(
        "convert-to-a-pt-name",
        convert(lambda f: f / "m.pt"),
        r"^-o \S+/m.pt: a .pt name would be taken for a PyTorch pickle, which --model refuses; write "
        r"\S+/m.safetensors or a folder$",
    ),
    CliCase(
        "convert-over-its-input",
        convert(lambda f: f / "model.safetensors", source=lambda f: model_file(f)),
        r"^-o \S+/model.safetensors: is the checkpoint \S+/model.safetensors; writing it would destroy an input",
    ),
    CliCase(
        "convert-into-a-folder-holding-a-model",
        convert(out_with_a_model),
        r"^-o \S+/converted/model.safetensors: exists; pass --force to replace it",
    ),
    CliCase(
        "convert-a-malicious-pickle",
        convert(lambda f: f / "converted", source=malicious_pickle),
        r"^\S+/evil.pt: not a plain tensor checkpoint: it asks to run '\w+.system' when loaded, and invhide "
        r"refuses to run code from a checkpoint file$",
        fresh=True,
    ),
    CliCase(
        "convert-a-text-file",
        convert(lambda f: f / "converted", source=a_file("notes.pt", b"just some notes\n")),
        r"^\S+/notes.pt: not a readable PyTorch checkpoint",
    ),
    # -- models ------------------------------------------------------------------------------------------------
    CliCase(
        "models-unknown-name",
        lambda f: ["models", "nope"],
        r"^no model named 'nope'; \$INVHIDE_MODELS_DIR=\S+ holds no models$",
    ),
    CliCase("models-not-a-name", lambda f: ["models", "../etc"], r"^name must be lower-case letters and digits"),
    CliCase(
        "models-folder-missing",
        lambda f: ["models"],
        r"^\$INVHIDE_MODELS_DIR=\S+/missing: no such model folder$",
        env=lambda f: {"INVHIDE_MODELS_DIR": str(f / "missing")},
    ),
]


def cli_environment(monkeypatch: pytest.MonkeyPatch, folder: Path, case: CliCase) -> dict[str, str]:
    """The case's environment: no model or debug setting from the caller, an empty model folder."""
    import os

    (folder / ".registry").mkdir()
    for name in ("INVHIDE_MODEL", "INVHIDE_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INVHIDE_MODELS_DIR", str(folder / ".registry"))
    for key, value in (case.env(folder) if case.env is not None else {}).items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_refuses_bad_input(
    case: CliCase, tmp_path: Path, finished_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import subprocess
    import sys

    from invhide.cli.main import main

    RUN["template"] = finished_run
    folder = tmp_path / "case"
    folder.mkdir()
    environment = cli_environment(monkeypatch, folder, case)
    argv = case.arrange(folder)
    assert argv, "the case arranged nothing"
    before = snapshot(folder)
    if case.fresh:
        done = subprocess.run(
            [sys.executable, "-m", "invhide.cli", *argv], capture_output=True, text=True, env=environment, cwd=tmp_path
        )
        status, err = done.returncode, done.stderr
    else:
        status = main(argv)
        err = capsys.readouterr().err
    assert status == 2, err
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, f"not one line: {err!r}"
    assert err.startswith("invhide: error: "), err
    assert_one_line(err.removeprefix("invhide: error: ").rstrip("\n"), case.message)
    assert_nothing_written(folder, before)


def test_there_are_enough_cli_cases() -> None:
    assert len(CLI_CASES) >= 30 and len({c.id for c in CLI_CASES}) == len(CLI_CASES)
    assert {c.id.split("-")[0] for c in CLI_CASES} >= {"hide", "reveal", "train", "eval", "bench", "convert", "models"}
