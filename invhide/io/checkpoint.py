"""Model checkpoints that cannot run code: safetensors weights plus a JSON config.

A model file is one ``.safetensors`` file: the weights as tensors, and in
its header metadata the JSON config of the architecture (``model.config()``),
so :func:`load` rebuilds any hider without being told its class. Loading
never unpickles anything. A directory checkpoint (what the trainer writes)
holds ``model.safetensors`` and the same config as ``config.json`` for people
to read; :func:`load` accepts either.

Every write goes to a temporary file in the target folder first and is
renamed into place, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from invhide.errors import FileFormatError, InputError, MissingPathError
from invhide.io.files import atomic_write

__all__ = [
    "CONFIG_FILE",
    "MODEL_FILE",
    "CheckpointError",
    "load",
    "load_tensors",
    "model_from_config",
    "register_model",
    "registered_models",
    "save",
    "save_tensors",
    "state_mismatches",
]

MODEL_FILE = "model.safetensors"
"""File name of the weights in a directory checkpoint."""
CONFIG_FILE = "config.json"
"""File name of the config for people to read in a directory checkpoint (:func:`load` reads the weights file's copy)."""
_FORMAT = "invhide.model.v1"
# Filled by register_model: invhide.models registers its classes when it is imported.
_MODELS: dict[str, Callable[[Mapping[str, Any]], nn.Module]] = {}

PathLike = str | os.PathLike[str]


class CheckpointError(FileFormatError):
    """A checkpoint file that is unreadable, truncated or does not match its config (a ``ValueError``)."""


def register_model(name: str, from_config: Callable[[Mapping[str, Any]], nn.Module]) -> None:
    """Let :func:`load` rebuild models whose config has ``"class": name``.

    Example:
        >>> register_model("InvertibleHider", invhide.InvertibleHider.from_config)  # already registered
        >>> sorted(registered_models())
        ['HiNet', 'InvertibleHider']
    """
    if name in _MODELS and _MODELS[name] != from_config:
        raise InputError(f"model class {name!r} is already registered to {_MODELS[name]!r}")
    _MODELS[name] = from_config


def registered_models() -> tuple[str, ...]:
    """The model classes :func:`load` can rebuild, by the name in their config."""
    return tuple(_MODELS)


def model_from_config(config: Mapping[str, Any]) -> nn.Module:
    """Build a freshly initialised model from a config with a ``"class"`` key.

    Raises:
        CheckpointError: no or unknown class, or an invalid config.

    Example:
        >>> model_from_config({"class": "HiNet", "num_blocks": 2}).num_blocks
        2
    """
    if not isinstance(config, Mapping) or "class" not in config:
        raise CheckpointError(f"a model config must be a mapping with a 'class' key, got {config!r}")
    name = config["class"]
    if name not in _MODELS:
        raise CheckpointError(f"unknown model class {name!r}; known: {sorted(_MODELS)}")
    try:
        return _MODELS[name](config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"invalid {name} config: {error}") from error


def state_mismatches(expected: Mapping[str, Tensor], given: Mapping[str, Tensor]) -> list[str]:
    """Missing, unexpected and wrongly shaped tensors, each kind as one phrase with examples.

    Example:
        >>> model = {"a": torch.zeros(2), "b": torch.zeros(1)}
        >>> for problem in state_mismatches(model, {"a": torch.zeros(3), "c": torch.zeros(1)}):
        ...     print(problem)
        missing 1 tensor(s), e.g. ['b']
        1 unexpected tensor(s), e.g. ['c']
        1 with the wrong shape, e.g. ['a (3,), model (2,)']
    """
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong = [
        f"{key} {tuple(given[key].shape)}, model {tuple(value.shape)}"
        for key, value in expected.items()
        if key in given and given[key].shape != value.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s), e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[:3]}")
    if wrong:
        problems.append(f"{len(wrong)} with the wrong shape, e.g. {wrong[:3]}")
    return problems


def save_tensors(tensors: Mapping[str, Tensor], path: PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write tensors to a safetensors file atomically (contiguous CPU copies).

    Args:
        tensors: ``{name: tensor}``, any devices and dtypes.
        path: the ``.safetensors`` file to write; its folder must exist.
        metadata: strings stored in the file's header.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.safetensors"
        >>> save_tensors({"w": torch.ones(2)}, path, {"note": "hi"})
        >>> tensors, metadata = load_tensors(path)
        >>> tensors["w"].tolist(), metadata
        ([1.0, 1.0], {'note': 'hi'})
    """
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=dict(metadata or {}))
    with atomic_write(path) as file:
        file.write(data)


def _read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, checked against the file size."""
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file, not a safetensors checkpoint")
    with path.open("rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{path}: too short ({size} bytes) to be a safetensors checkpoint")
        length = int.from_bytes(prefix, "little")
        if length > size - 8 or length > 100_000_000:
            raise CheckpointError(f"{path}: not a safetensors file (header length {length} for a {size}-byte file)")
        raw = file.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (its header is not a JSON object)")
    try:
        end = max((int(entry["data_offsets"][1]) for k, entry in header.items() if k != "__metadata__"), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        raise CheckpointError(f"{path}: not a safetensors file (malformed tensor entries in its header)") from None
    if 8 + length + end > size:
        raise CheckpointError(f"{path}: truncated: the header describes {8 + length + end} bytes, the file has {size}")
    return header


def load_tensors(path: PathLike, device: str | torch.device = "cpu") -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a safetensors file: ``(tensors, metadata)``. Never unpickles.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: empty, truncated or not a safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"{path}: no such checkpoint file")
    header = _read_header(path)
    metadata = header.get("__metadata__") or {}
    try:
        tensors = load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable safetensors file ({error})") from error
    return tensors, dict(metadata)


def save(model: nn.Module, path: PathLike) -> Path:
    """Save a model's weights and config.

    Args:
        model: a hider with a ``config()`` method (any invhide model).
        path: a ``.safetensors`` file, or a folder (created if missing) that
            receives ``model.safetensors`` and ``config.json``.

    Returns:
        The path of the written ``.safetensors`` file.

    Raises:
        TypeError: the model cannot describe itself (custom subnet callable).

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> path = save(invhide.HiNet(num_blocks=2), folder / "hinet.safetensors")
        >>> load(path).config() == invhide.HiNet(num_blocks=2).config()
        True
    """
    config = model.config()  # type: ignore[operator]
    path = Path(path)
    text = json.dumps(config, indent=2, sort_keys=True)
    metadata = {"format": _FORMAT, "config": text}
    if path.suffix == ".safetensors":
        file = path
    else:
        path.mkdir(parents=True, exist_ok=True)
        file = path / MODEL_FILE
    save_tensors(model.state_dict(), file, metadata)
    if file.name == MODEL_FILE:
        with atomic_write(file.parent / CONFIG_FILE, "w") as handle:
            handle.write(text + "\n")
    return file


def load(path: PathLike, map_location: str | torch.device = "cpu", channels_last: bool = True) -> nn.Module:
    """Rebuild a model saved by :func:`save`, in eval mode.

    Args:
        path: a ``.safetensors`` file or a folder holding ``model.safetensors``.
        map_location: device for the weights.
        channels_last: store convolution weights channels-last, which makes
            :meth:`~invhide.InvertibleHider.hide` and ``reveal`` about 1.4x
            faster on a CPU (the values are the same).

    Returns:
        The model, of the class named in its config (:func:`register_model`
        adds classes), in eval mode.

    Raises:
        FileNotFoundError: no such file or folder.
        CheckpointError: not an invhide checkpoint, truncated, or tensors
            that do not match the architecture in the config (named).

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> hider = invhide.InvertibleHider(num_blocks=1, subnet="conv")
        >>> _ = save(hider, folder)  # folder/model.safetensors and folder/config.json
        >>> type(load(folder)).__name__, load(folder).training
        ('InvertibleHider', False)
    """
    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    tensors, metadata = load_tensors(file, map_location)
    if metadata.get("format") != _FORMAT or "config" not in metadata:
        raise CheckpointError(
            f"{file}: a safetensors file but not an invhide model (no invhide config in its metadata); "
            f"reference HiNet .pt files are imported with `invhide convert-official`"
        )
    try:
        config = json.loads(metadata["config"])
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{file}: corrupt model config in the metadata ({error})") from None
    model = model_from_config(config)
    problems = state_mismatches(model.state_dict(), tensors)
    if problems:
        raise CheckpointError(f"{file}: tensors do not match the {config['class']} config: " + "; ".join(problems))
    dtypes = {t.dtype for t in tensors.values()}
    if len(dtypes) == 1:
        model.to(dtype=dtypes.pop())
    for key, value in tensors.items():
        if not torch.isfinite(value).all():
            raise CheckpointError(f"{file}: tensor {key} holds NaN or infinite values")
    model.load_state_dict(tensors, strict=True)
    model.to(map_location)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model.eval()
