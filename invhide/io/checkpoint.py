"""Model checkpoints that cannot run code: safetensors weights plus a JSON config.

A model file is one ``.safetensors`` file: the weights as tensors, and in
its header metadata the JSON config of the architecture (``model.config()``),
so :func:`load` rebuilds any hider without being told its class. Loading
never unpickles anything. A directory checkpoint (what the trainer writes)
holds ``model.safetensors`` and the same config as ``config.json`` for people
to read; :func:`load` accepts either.

Every write goes to a temporary file in the target folder first and is
renamed into place, so a crash never leaves a half-written checkpoint.

:func:`load` reads a file or folder; :func:`invhide.load` also takes the name
of a shipped model (:mod:`invhide.models.zoo`) and calls :func:`load` for paths.

A model file from anywhere is safe to load: the header is read and checked
first (:func:`read_header`: names, dtypes and shapes, no data), the config's
sizes are bounded by the tensors present, and the architecture is built on
the ``meta`` device and compared with the header before anything is
allocated (see :func:`load`), so a few hundred hostile bytes cannot ask for
gigabytes or hours.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import safetensors.torch
import torch
from torch import Tensor, nn

from invhide.checks import device as check_device
from invhide.errors import (
    ConfigError,
    FileFormatError,
    InputError,
    InputTypeError,
    IsAFolderError,
    MissingPathError,
    ModelError,
    NotAFolderError,
    describe,
    path_error,
)
from invhide.io.files import atomic_write

__all__ = [
    "CONFIG_FILE",
    "MAX_HEADER_BYTES",
    "MAX_TENSORS",
    "MODEL_FILE",
    "CheckpointError",
    "TensorInfo",
    "load",
    "load_tensors",
    "model_classes",
    "model_from_config",
    "read_header",
    "register_model_class",
    "save",
    "save_tensors",
    "state_mismatches",
]

MODEL_FILE = "model.safetensors"
"""File name of the weights in a directory checkpoint."""
CONFIG_FILE = "config.json"
"""File name of the config for people to read in a directory checkpoint (:func:`load` reads the weights file's copy)."""
MAX_HEADER_BYTES = 16 << 20
"""Largest safetensors header accepted (a 16-block HiNet's is 60 kB)."""
MAX_TENSORS = 16384
"""Most tensors a checkpoint file may hold (a 16-block HiNet has 480)."""
_FORMAT = "invhide.model.v1"
# Bytes per element of each safetensors dtype.
_ITEM_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
_FLOATING = ("F16", "BF16", "F32", "F64")
# Filled by register_model_class: invhide.models registers its classes when it is imported.
_MODELS: dict[str, Callable[[Mapping[str, Any]], nn.Module]] = {}

PathLike = str | os.PathLike[str]


class CheckpointError(FileFormatError):
    """A checkpoint file that is unreadable, truncated or does not match its config (a ``ValueError``)."""


def register_model_class(name: str, from_config: Callable[[Mapping[str, Any]], nn.Module]) -> None:
    """Add a model class: let :func:`load` rebuild models whose config has ``"class": name``.

    ``from_config`` must build the model under ``torch.device("meta")`` too
    (:func:`load` checks the architecture there first), and every positive
    integer in a config it accepts must be at most the number of tensors in
    the model's file or the largest dimension of one of them (true of block
    counts, widths and channels; :func:`load` refuses larger ones unbuilt).

    Example:
        >>> register_model_class("InvertibleHider", invhide.InvertibleHider.from_config)  # already registered
        >>> {"HiNet", "InvertibleHider"} <= set(model_classes())
        True
    """
    if name in _MODELS and _MODELS[name] != from_config:
        raise InputError(f"model class {name!r} is already registered to {_MODELS[name]!r}")
    _MODELS[name] = from_config


def model_classes() -> tuple[str, ...]:
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
    except ConfigError as error:  # already says "invalid <class> config ..."
        raise CheckpointError(describe(error)) from error
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"invalid {name} config: {describe(error)}") from error


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


def save_tensors(
    tensors: Mapping[str, Tensor],
    path: PathLike,
    metadata: Mapping[str, str] | None = None,
    *,
    replace: bool = True,
) -> None:
    """Write tensors to a safetensors file atomically (contiguous CPU copies).

    Args:
        tensors: ``{name: tensor}``, any devices and dtypes.
        path: the ``.safetensors`` file to write; its folder must exist.
        metadata: strings stored in the file's header.
        replace: replace an existing file; ``False``: create it or fail
            (:func:`invhide.io.files.atomic_write`).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.safetensors"
        >>> save_tensors({"w": torch.ones(2)}, path, {"note": "hi"})
        >>> tensors, metadata = load_tensors(path)
        >>> tensors["w"].tolist(), metadata
        ([1.0, 1.0], {'note': 'hi'})
    """
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    # safetensors 0.8 writes a broken header for no tensors with an empty metadata dict: pass None instead.
    data = safetensors.torch.save(cpu, metadata=dict(metadata or {}) or None)
    with atomic_write(path, replace=replace) as file:
        file.write(data)


class TensorInfo(NamedTuple):
    """One tensor as a safetensors header describes it, read without its data.

    Attributes:
        dtype: the safetensors dtype name (``"F32"``, ``"BF16"``, ``"I64"``...).
        shape: its shape.
    """

    dtype: str
    shape: torch.Size

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


def _fail(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path}: {why}")


def _entry(path: Path, name: str, entry: object) -> tuple[TensorInfo, int, int]:
    """One header entry as ``(info, start, end)``, every field checked (the data is not read)."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _fail(path, f"not a safetensors file (header entry {name!r} is not a tensor description)")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _ITEM_SIZES:
        raise _fail(path, f"tensor {name!r} has the unknown dtype {dtype!r}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(_is_count(n) for n in shape):
        raise _fail(path, f"tensor {name!r} has the malformed shape {shape!r}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(n) for n in offsets):
        raise _fail(path, f"tensor {name!r} has malformed data offsets {offsets!r}")
    start, stop = offsets
    info = TensorInfo(dtype, torch.Size(shape))
    if stop - start != info.numel * _ITEM_SIZES[dtype]:
        raise _fail(
            path,
            f"tensor {name!r}: its shape {tuple(shape)} of {dtype} needs {info.numel * _ITEM_SIZES[dtype]} bytes "
            f"but its data offsets span {stop - start}",
        )
    return info, start, stop


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62


def _parse_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """The tensors and metadata of a safetensors file's header, checked against the file size; no data read."""
    size = path.stat().st_size
    if size == 0:
        raise _fail(path, "empty file, not a safetensors checkpoint")
    with path.open("rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            raise _fail(path, f"too short ({size} bytes) to be a safetensors checkpoint")
        length = int.from_bytes(prefix, "little")
        if length > size - 8 or length > MAX_HEADER_BYTES:
            raise _fail(path, f"not a safetensors file (header length {length} for a {size}-byte file)")
        raw = file.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError: bad JSON, or a 5000-digit number
        raise _fail(path, "not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise _fail(path, "not a safetensors file (its header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _fail(path, "not a safetensors file (its metadata is not a map of strings)")
    if len(header) > MAX_TENSORS:
        raise _fail(path, f"{len(header)} tensors, more than the {MAX_TENSORS} an invhide file may hold")
    infos: dict[str, TensorInfo] = {}
    spans = []
    for name, entry in header.items():
        infos[name], start, stop = _entry(path, name, entry)
        spans.append((start, stop, name))
    spans.sort()
    end = 0
    for start, stop, name in spans:
        if start != end:
            raise _fail(path, f"not a safetensors file (the data of tensor {name!r} overlaps or leaves a gap)")
        end = stop
    if 8 + length + end > size:
        raise _fail(path, f"truncated: the header describes {8 + length + end} bytes, the file has {size}")
    return infos, dict(metadata)


def read_header(path: PathLike) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """The names, dtypes and shapes of a safetensors file's tensors, and its metadata, without reading any data.

    Every entry is checked: known dtype, a shape whose size matches its byte
    range, byte ranges that tile the data exactly and fit in the file.

    Returns:
        ``({name: TensorInfo}, metadata)``.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: empty, truncated, malformed, or more than
            :data:`MAX_TENSORS` tensors.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.safetensors"
        >>> save_tensors({"w": torch.ones(2, 3)}, path)
        >>> read_header(path)
        ({'w': TensorInfo(dtype='F32', shape=torch.Size([2, 3]))}, {})
    """
    path = Path(path)
    if path.is_dir():
        raise IsAFolderError(f"{path}: a folder, not a safetensors checkpoint file")
    if not path.is_file():
        raise MissingPathError(f"{path}: no such checkpoint file")
    return _parse_header(path)


def load_tensors(
    path: PathLike, device: str | torch.device = "cpu", *, floating: bool = False, finite: bool = False
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a safetensors file: ``(tensors, metadata)``. Never unpickles.

    The header is checked (:func:`read_header`) before any data is read.

    Args:
        path: the ``.safetensors`` file.
        device: where the tensors go.
        floating: refuse tensors that are not floating-point (names the first).
        finite: refuse tensors holding NaN or infinite values (names the first).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: empty, truncated or not a safetensors file; a
            non-float or non-finite tensor when asked to refuse those.
    """
    path = Path(path)
    infos, metadata = read_header(path)
    if floating:
        _check_floating(path, infos)
    try:
        tensors = safetensors.torch.load_file(path, device=str(device))
    except (safetensors.SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable safetensors file ({error})") from error
    if finite:
        for key, value in tensors.items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise CheckpointError(f"{path}: tensor {key} holds NaN or infinite values")
    return tensors, metadata


def _check_floating(path: Path, infos: Mapping[str, TensorInfo]) -> None:
    for name, info in infos.items():
        if info.dtype not in _FLOATING:
            raise CheckpointError(
                f"{path}: tensor {name} has dtype {info.dtype}; model weights must be floating-point "
                f"({', '.join(_FLOATING)})"
            )


def _non_finite(model: nn.Module) -> tuple[str, int] | None:
    """The first floating-point tensor of ``model``'s state holding NaN or infinite values, and how many."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            bad = int((~torch.isfinite(tensor.detach())).sum())
            if bad:
                return name, bad
    return None


def _save_target(path: Path) -> Path:
    """The ``.safetensors`` file :func:`save` writes for ``path``, its folder created when ``path`` names a folder."""
    if path.suffix == ".safetensors":
        return path
    if path.exists() and not path.is_dir():
        raise NotAFolderError(
            f"{path}: is a file, not a folder; save to a folder, or to a file whose name ends in .safetensors"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise path_error(error, f"{path}: cannot create the folder: {error.strerror or describe(error)}") from None
    return path / MODEL_FILE


def save(model: nn.Module, path: PathLike, *, replace: bool = True) -> Path:
    """Save a model's weights and config.

    Nothing is written for a model that is not an invhide model or whose
    weights hold NaN or infinite values (:func:`load` would refuse them).

    Args:
        model: a hider with a ``config()`` method (any invhide model).
        path: a ``.safetensors`` file, or a folder (created if missing) that
            receives ``model.safetensors`` and ``config.json``.
        replace: replace existing files; ``False``: create them or fail
            (:func:`invhide.io.files.atomic_write`).

    Returns:
        The path of the written ``.safetensors`` file.

    Raises:
        invhide.errors.InputTypeError: not a ``torch.nn.Module`` with a
            ``config()`` method, or a model that cannot describe itself
            (custom subnet callable).
        invhide.errors.ModelError: a weight holds NaN or infinite values.
        invhide.errors.NotAFolderError: ``path`` is an existing file whose
            name does not end in ``.safetensors`` (taken for a folder).
        invhide.errors.PathExistsError: ``replace`` is false and a file exists.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> path = save(invhide.HiNet(num_blocks=2), folder / "hinet.safetensors")
        >>> load(path).config() == invhide.HiNet(num_blocks=2).config()
        True
    """
    if not isinstance(model, nn.Module) or not callable(getattr(model, "config", None)):
        raise InputTypeError(
            f"model must be an invhide model (a torch.nn.Module with a config() method, such as invhide.HiNet), "
            f"got {type(model).__name__}"
        )
    config = model.config()  # type: ignore[operator]
    path = Path(path)
    bad = _non_finite(model)
    if bad is not None:
        raise ModelError(
            f"{path}: not written: the model's tensor {bad[0]} holds {bad[1]} NaN or infinite value(s) (diverged "
            f"weights?), which invhide.load refuses"
        )
    text = json.dumps(config, indent=2, sort_keys=True)
    file = _save_target(path)
    metadata = {"format": _FORMAT, "config": text}
    trained = getattr(model, "trained_channels", None)
    if trained is not None and set(trained) != {"lossless"}:  # see invhide.models.inference.trained_channels
        from invhide.io.images import channel_list  # here: images is heavier than saving a model needs

        metadata["trained_channels"] = json.dumps(channel_list(trained))
    save_tensors(model.state_dict(), file, metadata, replace=replace)
    if file.name == MODEL_FILE:
        with atomic_write(file.parent / CONFIG_FILE, "w", replace=replace) as handle:
            handle.write(text + "\n")
    return file


def _config_sizes(config: object, where: str = "") -> Iterator[tuple[str, int]]:
    """Every positive integer in a JSON config, with its dotted path (``subnet.growth``)."""
    stack: list[tuple[str, object]] = [(where, config)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool) and value > 0:
            yield path, value


def _check_config_sizes(file: Path, config: Mapping[str, Any], infos: Mapping[str, TensorInfo]) -> None:
    """Refuse a config whose sizes the file's tensors cannot back, before anything is built.

    A block count, width or channel count of a model that matches its file
    is at most the number of its tensors or the largest dimension of one of
    them, so any larger integer in the config describes a model the file
    cannot hold: refused before it is built, whatever it would cost.
    """
    dims = [n for info in infos.values() if info.numel > 0 for n in info.shape]
    bound = max([len(infos), *dims])
    for field_path, value in _config_sizes(config):
        if value > bound:
            raise CheckpointError(
                f"{file}: the model config sets {field_path} = {value}, more than its {len(infos)} tensor(s) "
                f"could hold (largest dimension {max(dims, default=0)}): a corrupt or hostile file, not loaded"
            )


class _TooLargeError(Exception):
    """Raised from inside a meta build that outgrows the file (not a ValueError: no config check may catch it)."""


class _Budget:
    """Parameter and module registration hooks that stop a build outgrowing the file it is checked against.

    The limits leave room for what a build registers and throws away (a
    subnet factory validates its options by building one small subnet), so
    they stop a runaway build early, not a model one tensor too large: the
    exact comparison with the header comes after. Active only in the thread
    that entered it, and only inside the ``with``.
    """

    def __init__(self, infos: Mapping[str, TensorInfo]) -> None:
        self.tensors = len(infos)
        self.max_parameters = len(infos) + 256
        self.file_values = sum(info.numel for info in infos.values())
        self.max_values = 2 * self.file_values + (1 << 24)
        self.max_modules = 8 * len(infos) + 256  # containers and parameter-free layers (activations) included
        self.parameters = self.values = self.modules = 0
        self.thread = threading.get_ident()

    def _parameter(self, module: nn.Module, name: str, param: Tensor | None) -> None:
        if param is None or threading.get_ident() != self.thread:
            return
        self.parameters += 1
        self.values += param.numel()
        if self.parameters > self.max_parameters:
            raise _TooLargeError(f"far more parameter tensors than the file's {self.tensors}")
        if self.values > self.max_values:
            raise _TooLargeError(f"far more parameters than the file's {self.file_values} values")

    def _module(self, module: nn.Module, name: str, child: nn.Module | None) -> None:
        if threading.get_ident() == self.thread:
            self.modules += 1
            if self.modules > self.max_modules:
                limit = f"more than {self.max_modules} modules for the file's {self.tensors} tensors"
                raise _TooLargeError(limit)

    def __enter__(self) -> _Budget:
        hooks = torch.nn.modules.module
        self._handles = [
            hooks.register_module_parameter_registration_hook(self._parameter),  # type: ignore[arg-type]
            hooks.register_module_module_registration_hook(self._module),  # type: ignore[arg-type]
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()


def _check_architecture(file: Path, config: Mapping[str, Any], infos: Mapping[str, TensorInfo]) -> None:
    """Build the config's model on the meta device (nothing allocated) and compare it with the header."""
    try:
        with _Budget(infos), torch.device("meta"):
            skeleton = model_from_config(config)
    except _TooLargeError as error:
        raise CheckpointError(
            f"{file}: the {config['class']} config describes a model larger than the file ({error}); "
            f"a corrupt or hostile file, not loaded"
        ) from None
    except CheckpointError as error:
        raise CheckpointError(f"{file}: {error}") from None
    problems = state_mismatches(skeleton.state_dict(), infos)  # type: ignore[arg-type]
    if problems:
        raise CheckpointError(f"{file}: tensors do not match the {config['class']} config: " + "; ".join(problems))


def load(path: PathLike, map_location: str | torch.device = "cpu", channels_last: bool = True) -> nn.Module:
    """Rebuild a model saved by :func:`save`, in eval mode.

    An untrusted file is safe to load: nothing is built and no data read
    until the header has been checked. Every positive integer in the config
    (block counts, widths, channels, nested subnet options included) must be
    at most the number of tensors in the file or the largest dimension of one
    of them; the architecture is then built on the ``meta`` device, which
    allocates nothing, under a budget of as many parameters as the file
    holds, and its tensor names and shapes are compared with the header. The
    weights must be floating-point and finite. Only then is the model built
    for real and the data read, so memory and time stay proportional to the
    file's size.

    Args:
        path: a ``.safetensors`` file or a folder holding ``model.safetensors``.
        map_location: device for the weights.
        channels_last: store convolution weights channels-last, as a freshly
            built :class:`~invhide.InvertibleHider` does, which makes its
            ``hide`` and ``reveal`` faster on a CPU (the values are the same
            up to float rounding; see the Results page); ``False`` stores
            them NCHW.

    Returns:
        The model, of the class named in its config (:func:`register_model_class`
        adds classes), in eval mode.

    Raises:
        FileNotFoundError: no such file or folder.
        invhide.errors.InputError: ``map_location`` is not a device this
            machine has.
        CheckpointError: not an invhide checkpoint, truncated, a config out
            of bounds or not matching the tensors (named), non-float or
            non-finite weights (named).

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> hider = invhide.InvertibleHider(num_blocks=1, subnet="conv")
        >>> _ = save(hider, folder)  # folder/model.safetensors and folder/config.json
        >>> type(load(folder)).__name__, load(folder).training
        ('InvertibleHider', False)
    """
    map_location = check_device("map_location", map_location)
    file = _model_file(Path(path))
    infos, metadata = read_header(file)
    config = _stored_config(file, metadata)
    _check_floating(file, infos)
    _check_config_sizes(file, config, infos)
    _check_architecture(file, config, infos)
    tensors, _ = load_tensors(file, map_location, finite=True)
    model = model_from_config(config)
    dtypes = {t.dtype for t in tensors.values()}
    if len(dtypes) == 1:
        model.to(dtype=dtypes.pop())
    model.load_state_dict(tensors, strict=True)
    if "trained_channels" in metadata:
        model.trained_channels = _stored_channels(file, metadata["trained_channels"])
    model.to(map_location)
    model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return model.eval()


def _model_file(path: Path) -> Path:
    """``path`` itself, or the ``model.safetensors`` of the folder ``path``."""
    if not path.is_dir():
        return path
    if not (path / MODEL_FILE).is_file():
        raise MissingPathError(f"{path}: a folder without {MODEL_FILE}, so not a model or a finished training run")
    return path / MODEL_FILE


def _stored_channels(file: Path, text: str) -> frozenset[str]:
    """The files a stored model was trained to reveal from (its ``trained_channels`` metadata), checked."""
    from invhide.io.images import FILE_CHANNELS, is_channel_list  # here: images is heavier than loading needs

    try:
        channels = json.loads(text)
    except (ValueError, RecursionError):
        channels = None
    if not is_channel_list(channels):
        raise CheckpointError(
            f"{file}: trained_channels in the metadata must be a JSON list of distinct names from "
            f"{list(FILE_CHANNELS)} with 'lossless' among them, got {text!r:.80}"
        )
    return frozenset(channels)


def _stored_config(file: Path, metadata: Mapping[str, str]) -> dict[str, Any]:
    """The model config in a safetensors file's metadata, a JSON object with a ``"class"`` name."""
    if metadata.get("format") != _FORMAT or "config" not in metadata:
        raise CheckpointError(
            f"{file}: a safetensors file but not an invhide model (no invhide config in its metadata); "
            f"reference HiNet .pt files are imported with `invhide convert-official`"
        )
    try:
        config = json.loads(metadata["config"])
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{file}: corrupt model config in the metadata ({describe(error)})") from None
    if not isinstance(config, dict) or not isinstance(config.get("class"), str):
        raise CheckpointError(f"{file}: the model config must be a JSON object with a 'class' name, got {config!r:.80}")
    return config
