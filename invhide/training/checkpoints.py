"""Training checkpoints: model, optimizer and loop state, written atomically, read back exactly.

A checkpoint is a folder ``checkpoints/step_XXXXXXXX/`` holding the model
(:func:`invhide.io.checkpoint.save`: safetensors plus ``config.json``), the
optimizer state (``optimizer.safetensors``) and the loop state
(``trainer.json``). It is written to a temporary folder and renamed into
place, so a crash leaves the previous checkpoints as they were.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from invhide.io import checkpoint
from invhide.io.files import atomic_write

__all__ = ["LOOP_FILE", "OPTIMIZER_FILE", "latest_checkpoint", "load_training_checkpoint", "save_training_checkpoint"]

LOOP_FILE = "trainer.json"
"""The loop state of a training checkpoint (JSON)."""
OPTIMIZER_FILE = "optimizer.safetensors"
"""The optimizer tensors of a training checkpoint."""


def save_training_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loop: Mapping[str, Any],
    keep: int,
) -> Path:
    """Write ``run_dir/checkpoints/step_XXXXXXXX/`` atomically and keep only the ``keep`` newest.

    Args:
        run_dir: the run folder.
        step: the completed step count the checkpoint holds.
        model: the model (saved with its config).
        optimizer: its state tensors go to safetensors, its param groups to the loop state.
        loop: JSON-ready loop state (step, rollbacks, ...).
        keep: checkpoints to keep.

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
        checkpoint.save(model, temporary)
        state = optimizer.state_dict()
        tensors = {
            f"state.{index}.{name}": value
            for index, entries in state["state"].items()
            for name, value in entries.items()
        }
        checkpoint.save_tensors(tensors, temporary / OPTIMIZER_FILE)
        with atomic_write(temporary / LOOP_FILE, "w") as file:
            json.dump({**loop, "param_groups": state["param_groups"]}, file, indent=2)
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    for old in sorted(root.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path | None) -> Path | None:
    """The newest complete checkpoint folder of a run, if any."""
    if run_dir is None:
        return None
    found = sorted(p for p in (run_dir / "checkpoints").glob("step_*") if (p / LOOP_FILE).is_file())
    return found[-1] if found else None


def load_training_checkpoint(
    folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> dict[str, Any]:
    """Load a checkpoint's model and optimizer state in place; return its loop state.

    Raises:
        invhide.io.checkpoint.CheckpointError: the checkpoint does not fit this model.
    """
    tensors, _ = checkpoint.load_tensors(folder / checkpoint.MODEL_FILE, device)
    problems = checkpoint.state_mismatches(model.state_dict(), tensors)
    if problems:
        raise checkpoint.CheckpointError(f"{folder}: the checkpoint does not fit this model: " + "; ".join(problems))
    model.load_state_dict(tensors)
    loop = json.loads((folder / LOOP_FILE).read_text())
    optimizer_tensors, _ = checkpoint.load_tensors(folder / OPTIMIZER_FILE, device)
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in optimizer_tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value.cpu() if name == "step" else value
    optimizer.load_state_dict({"state": state, "param_groups": loop["param_groups"]})
    return loop
