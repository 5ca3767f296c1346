"""Pieces the ``invhide`` commands share: the device, the model, and checks of the paths they will write.

Each function raises an :class:`~invhide.errors.InvhideError` naming the
option at fault, before any work is done, so a command refuses bad input in
one line and leaves nothing half-written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from invhide.errors import (
    AccessError,
    FileFormatError,
    InputError,
    IsAFolderError,
    MissingPathError,
    NotAFolderError,
)

__all__ = [
    "DEFAULT_MODEL_ENV",
    "MODELS_ENV",
    "check_file_output",
    "check_folder_output",
    "check_image_output",
    "load_model",
    "models_folder",
    "resolve_device",
    "resolve_model",
]

MODELS_ENV = "INVHIDE_MODELS"
"""Environment variable: the folder where ``--model NAME`` is looked up (default ``~/.cache/invhide/models``)."""

DEFAULT_MODEL_ENV = "INVHIDE_MODEL"
"""Environment variable: the model used when ``--model`` is not given."""


def resolve_device(name: str | None) -> Any:
    """The ``torch.device`` of ``--device``: CUDA when available if not given.

    Raises:
        invhide.errors.InputError: not a device name, or a device this
            PyTorch build or machine lacks (``cuda`` without a GPU, ``mps``
            off a Mac, ``cuda:3`` on a one-GPU machine...).
    """
    import torch

    from invhide import checks

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return checks.device("--device", name)


def models_folder() -> Path:
    """Where ``--model NAME`` is looked up: ``$INVHIDE_MODELS`` or ``~/.cache/invhide/models``."""
    return Path(os.environ.get(MODELS_ENV, Path.home() / ".cache" / "invhide" / "models"))


def resolve_model(spec: str | None) -> Path:
    """Find a model from ``--model``: a file or run folder, or a name in ``$INVHIDE_MODELS``.

    Without ``--model``, ``$INVHIDE_MODEL`` is used.

    Raises:
        invhide.errors.InputError: no model given.
        invhide.errors.MissingPathError: nothing found.
    """
    spec = spec or os.environ.get(DEFAULT_MODEL_ENV)
    if not spec:
        raise InputError(
            "no model given: pass --model PATH (a .safetensors file or a training run's folder) or set "
            f"${DEFAULT_MODEL_ENV}; train one with `invhide train --quick --out runs/quick`"
        )
    path = Path(spec).expanduser()
    if path.exists():
        return path
    folder = models_folder()
    for candidate in (folder / spec, folder / f"{spec}.safetensors"):
        if candidate.exists():
            return candidate
    raise MissingPathError(f"--model {spec}: no such file or folder, and no model named {spec!r} in {folder}")


def load_model(spec: str | None, device: Any) -> Any:
    """The model of ``--model`` (see :func:`resolve_model`) on ``device``, in eval mode.

    Raises:
        invhide.errors.FileFormatError: a PyTorch pickle (``.pt``), which is
            never unpickled; or any :class:`~invhide.io.checkpoint.CheckpointError`.
    """
    from invhide.io.checkpoint import load

    path = resolve_model(spec)
    if path.suffix in (".pt", ".pth"):
        raise FileFormatError(
            f"{path}: a PyTorch pickle, which invhide does not load (it could run code); "
            f"if it is a reference HiNet checkpoint, convert it: invhide convert-official {path} -o DIR"
        )
    return load(path, map_location=device)


def check_file_output(path: Path, option: str) -> None:
    """A file the command will write: not a folder, in a folder that exists.

    Raises:
        invhide.errors.IsAFolderError: ``path`` is a folder.
        invhide.errors.MissingPathError: its folder does not exist.
        invhide.errors.NotAFolderError: its "folder" is a file.
    """
    if path.is_dir():
        raise IsAFolderError(f"{path}: is a folder, not a file name ({option})")
    if not path.parent.exists():
        raise MissingPathError(f"{path}: output folder {path.parent} does not exist ({option})")
    if not path.parent.is_dir():
        raise NotAFolderError(f"{path}: {path.parent} is a file, not a folder ({option})")


def check_image_output(path: Path, option: str = "-o") -> None:
    """An image the command will write: a ``.png`` (lossless) file in a folder that exists.

    Raises:
        invhide.errors.InputError: another suffix.
        invhide.errors.PathError: see :func:`check_file_output`.
    """
    if path.suffix.lower() != ".png":
        raise InputError(
            f"{path}: write the image as .png (lossless); other formats would destroy hidden data ({option})"
        )
    check_file_output(path, option)


def check_folder_output(path: Path, option: str) -> None:
    """A folder the command will create or write into.

    It may exist (as a folder) or not; the nearest existing folder above it
    must be writable, so that creating it later cannot fail for that reason.

    Raises:
        invhide.errors.NotAFolderError: ``path`` or a parent is a file.
        invhide.errors.AccessError: the nearest existing folder is not writable.
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == path else f"is below {existing}, which is a file"
        raise NotAFolderError(f"{path}: {where}, not a folder ({option})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AccessError(f"{path}: cannot write in {existing}: permission denied ({option})")
