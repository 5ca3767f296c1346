"""Training checkpoints: model, optimizer and loop state, written atomically, read back exactly.

A checkpoint is a folder ``checkpoints/step_XXXXXXXX/`` holding the model
(:func:`invhide.io.checkpoint.save`: safetensors plus ``config.json``), the
optimizer state (``optimizer.safetensors``) and the loop state
(``trainer.json``), and with a weight average (``ema_decay``) the averaged
tensors (``average.safetensors``). It is written to a temporary folder and renamed into
place, so a crash leaves the previous checkpoints as they were.

Example:
    >>> import pathlib, tempfile
    >>> run, model = pathlib.Path(tempfile.mkdtemp()), invhide.InvertibleHider(num_blocks=1, subnet="conv")
    >>> optimizer = torch.optim.Adam(model.parameters())
    >>> loop = {"step": 5, "rollbacks": 0, "lr_scale": 1.0, "recent": [], "config": {}}
    >>> folder = save_training_checkpoint(run, 5, model, optimizer, loop, keep=3)
    >>> latest_checkpoint(run) == folder, read_loop_state(folder)["step"]
    (True, 5)
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from invhide.errors import MissingPathError, describe
from invhide.io import checkpoint
from invhide.io.files import atomic_write

__all__ = [
    "AVERAGE_FILE",
    "LOOP_FILE",
    "OPTIMIZER_FILE",
    "latest_checkpoint",
    "load_training_checkpoint",
    "read_loop_state",
    "save_training_checkpoint",
]

LOOP_FILE = "trainer.json"
"""The loop state of a training checkpoint (JSON)."""
OPTIMIZER_FILE = "optimizer.safetensors"
"""The optimizer tensors of a training checkpoint."""
AVERAGE_FILE = "average.safetensors"
"""The weight average's tensors of a training checkpoint (runs with ``ema_decay``)."""


def save_training_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loop: Mapping[str, Any],
    keep: int,
    *,
    average: nn.Module | None = None,
) -> Path:
    """Write ``run_dir/checkpoints/step_XXXXXXXX/`` atomically and keep only the ``keep`` newest.

    Args:
        run_dir: the run folder.
        step: the completed step count the checkpoint holds.
        model: the model (saved with its config).
        optimizer: its state tensors go to safetensors, its param groups to the loop state.
        loop: JSON-ready loop state (step, rollbacks, ...).
        keep: checkpoints to keep.
        average: the weight average's model, saved as :data:`AVERAGE_FILE`.

    Returns:
        The checkpoint folder.
    """
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    temporary = root / f".tmp-step_{step:08d}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        _write(temporary, model, optimizer, loop, average)
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    for old in sorted(root.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _write(
    folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, loop: Mapping[str, Any], average: nn.Module | None
) -> None:
    """The files of a checkpoint: the model, the optimizer's tensors, the average's, and the loop state."""
    checkpoint.save(model, folder)
    state = optimizer.state_dict()
    tensors = {
        f"state.{index}.{name}": value for index, entries in state["state"].items() for name, value in entries.items()
    }
    checkpoint.save_tensors(tensors, folder / OPTIMIZER_FILE)
    if average is not None:
        checkpoint.save_tensors(average.state_dict(), folder / AVERAGE_FILE)
    with atomic_write(folder / LOOP_FILE, "w") as file:
        json.dump({**loop, "param_groups": state["param_groups"]}, file, indent=2)


def latest_checkpoint(run_dir: Path | None) -> Path | None:
    """The newest complete checkpoint folder of a run, if any."""
    if run_dir is None:
        return None
    found = sorted(p for p in (run_dir / "checkpoints").glob("step_*") if (p / LOOP_FILE).is_file())
    return found[-1] if found else None


def _corrupt(file: Path, why: str) -> checkpoint.CheckpointError:
    """A corrupt or edited checkpoint file."""
    return checkpoint.CheckpointError(f"{file}: {why}; the checkpoint is corrupt or was edited")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Each field of the loop state the trainer reads: (its test, what it must be); those in _OPTIONAL_FIELDS may be
# missing (checkpoints written before they were added).
_LOOP_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "step": (_is_count, "a non-negative integer"),
    "rollbacks": (_is_count, "a non-negative integer"),
    "lr_scale": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "recent": (lambda v: isinstance(v, list) and all(_is_number(x) for x in v), "a list of numbers"),
    "config": (lambda v: isinstance(v, dict), "an object"),
    "param_groups": (lambda v: isinstance(v, list) and all(isinstance(g, dict) for g in v), "a list of objects"),
    "world_size": (lambda v: _is_count(v) and v > 0, "a positive integer"),
    "grad_scaler": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "average_updates": (lambda v: v is None or _is_count(v), "a non-negative integer or null"),
    "skipped": (_is_count, "a non-negative integer"),
    "spikes_in_a_row": (_is_count, "a non-negative integer"),
    "healthy_since_cut": (_is_count, "a non-negative integer"),
}
_OPTIONAL_FIELDS = ("world_size", "grad_scaler", "average_updates", "skipped", "spikes_in_a_row", "healthy_since_cut")


def read_loop_state(folder: Path) -> dict[str, Any]:
    """The loop state (``trainer.json``) of a checkpoint folder, every field the trainer reads checked.

    Returns:
        A dict with at least ``step`` and ``rollbacks`` (non-negative
        integers), ``lr_scale`` (a positive number), ``recent`` (a list of
        numbers), ``config`` (an object) and ``param_groups`` (a list of
        objects); ``world_size`` (a positive integer), ``grad_scaler`` (an
        object or ``null``), ``average_updates`` (a non-negative integer
        or ``null``) and the guard's ``skipped``, ``spikes_in_a_row`` and
        ``healthy_since_cut`` (non-negative integers) when present.

    Raises:
        FileNotFoundError: no ``trainer.json`` in ``folder``.
        invhide.io.checkpoint.CheckpointError: not JSON, or a field missing
            or of the wrong type (named, with the file).
    """
    file = folder / LOOP_FILE
    loop = _read_json(file, folder)
    for key, (ok, what) in _LOOP_FIELDS.items():
        if key not in loop and key not in _OPTIONAL_FIELDS:
            raise _corrupt(file, f"no {key!r} entry")
        if key in loop and not ok(loop[key]):
            raise _corrupt(file, f"{key!r} must be {what}, got {loop[key]!r:.60}")
    expected = folder.name.removeprefix("step_")
    if expected.isdigit() and int(expected) != loop["step"]:
        raise _corrupt(file, f"'step' is {loop['step']} but the folder is {folder.name}")
    return loop


def _read_json(file: Path, folder: Path) -> dict[str, Any]:
    """``file`` as a JSON object, or the error that says why it is none."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissingPathError(f"{file}: no such file; {folder} is not a complete training checkpoint") from None
    except (OSError, UnicodeDecodeError) as error:
        raise checkpoint.CheckpointError(f"{file}: unreadable ({describe(error)})") from None
    try:
        loop = json.loads(text)
    except (ValueError, RecursionError):
        raise _corrupt(file, "not JSON") from None
    if not isinstance(loop, dict):
        raise _corrupt(file, f"expected a JSON object, got a {type(loop).__name__}")
    return loop


def load_training_checkpoint(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    *,
    average: nn.Module | None = None,
) -> dict[str, Any]:
    """Load a checkpoint's model and optimizer state (and weight average) in place; return its loop state.

    Everything is read and checked before ``model``, ``optimizer`` or
    ``average`` is touched, so a bad checkpoint leaves them as they were. A
    checkpoint without :data:`AVERAGE_FILE` leaves ``average`` as it is.

    Raises:
        FileNotFoundError: a file of the checkpoint is missing.
        invhide.io.checkpoint.CheckpointError: the checkpoint does not fit
            this model or optimizer, or a file is corrupt (named).
    """
    loop = read_loop_state(folder)
    tensors = _read_state(folder / checkpoint.MODEL_FILE, model, device, f"{folder}: the checkpoint")
    average_file = folder / AVERAGE_FILE
    averaged = None
    if average is not None and average_file.is_file():
        averaged = _read_state(average_file, average, device, f"{average_file}:")
    state = _read_optimizer_state(folder / OPTIMIZER_FILE, optimizer, loop["param_groups"], device)
    scratch = copy.deepcopy(optimizer.state_dict())  # restored if the saved state does not fit
    try:
        optimizer.load_state_dict({"state": state, "param_groups": loop["param_groups"]})
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        optimizer.load_state_dict(scratch)
        raise checkpoint.CheckpointError(
            f"{folder}: the optimizer state does not fit this model's optimizer ({describe(error)})"
        ) from None
    model.load_state_dict(tensors)
    if average is not None and averaged is not None:
        average.load_state_dict(averaged)
    return loop


def _read_state(file: Path, model: nn.Module, device: torch.device, what: str) -> dict[str, Tensor]:
    """The finite float tensors of ``file``, refused unless they are ``model``'s state (``what`` names them)."""
    tensors, _ = checkpoint.load_tensors(file, device, floating=True, finite=True)
    problems = checkpoint.state_mismatches(model.state_dict(), tensors)
    if problems:
        raise checkpoint.CheckpointError(f"{what} does not fit this model: " + "; ".join(problems))
    return tensors


def _read_optimizer_state(
    file: Path, optimizer: torch.optim.Optimizer, param_groups: list[dict[str, Any]], device: torch.device
) -> dict[int, dict[str, Tensor]]:
    """The per-parameter state of :data:`OPTIMIZER_FILE`, refused unless each tensor fits its parameter's shape."""
    tensors, _ = checkpoint.load_tensors(file, device)
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        parts = key.split(".", 2)
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise _corrupt(file, f"unexpected tensor {key!r} (expected state.<index>.<name>)")
        _, index, name = parts
        state.setdefault(int(index), {})[name] = value.cpu() if name == "step" else value
    saved_ids = [i for group in param_groups for i in group.get("params", [])]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    by_id = dict(zip(saved_ids, params, strict=False))
    for index, entries in state.items():
        param = by_id.get(index)
        for name, value in entries.items():
            if param is not None and value.dim() > 0 and value.shape != param.shape:
                raise checkpoint.CheckpointError(
                    f"{file}: state.{index}.{name} has shape {tuple(value.shape)} but its parameter "
                    f"{tuple(param.shape)}; the checkpoint does not fit this model"
                )
    return state
