"""The model zoo: trained models shipped with invhide, loaded by name, each with the record of how it was made.

A model folder holds two files for each published model ``NAME``:

- ``NAME.safetensors``: the weights, written by :func:`invhide.io.checkpoint.save`
  (float32, or float16 / bfloat16 to halve the file);
- ``NAME.json``: its :class:`ModelRecord`: the architecture config, the
  training data, steps and wall time, the hardware, the exact command that
  reproduces it, its measured tables, the SHA-256 of the weights file, a
  one-line headline, and whether it is the default model.

:func:`load` (the package's :func:`invhide.load`) takes a model's name or a
path, which :func:`find` resolves: a published name has its weights checked
against the SHA-256 of its record; a path goes to
:func:`invhide.io.checkpoint.load`; a bare name that is neither finds a model
file ``NAME.safetensors`` or a training run's folder ``NAME/`` in the model
folder (no record to check). A string is a published name first, so
``"./NAME"`` means a path; a :class:`~pathlib.Path` is always a path.

The model folder is, in this order: the ``folder`` argument of each
function; ``$INVHIDE_MODELS_DIR`` (:data:`MODELS_DIR_ENV`); the package's
own ``invhide/models/trained/`` (:data:`SHIPPED`). Messages about it name the
variable when it is set. Nothing here writes into a folder it was not given:
:func:`publish` and :func:`set_default` take the folder explicitly.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> hider = invhide.InvertibleHider(num_blocks=1, subnet="conv")
    >>> fields = dict(headline="a one-block example", default=True, training={"data": "none"}, steps=1,
    ...               wall_seconds=0.0, hardware=hardware(), command="python -c ...", tables={})
    >>> published = publish(hider, "tiny", folder, fields)
    >>> [(r.name, r.default) for r in available(folder)], default_name(folder)
    ([('tiny', True)], 'tiny')
    >>> type(load("tiny", folder=folder)).__name__
    'InvertibleHider'
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import platform
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from invhide.checks import one_of
from invhide.errors import ConfigError, InputError, InputTypeError, MissingPathError, NotAFolderError, PathExistsError
from invhide.io import checkpoint
from invhide.io.checkpoint import CheckpointError
from invhide.io.files import atomic_write
from invhide.io.images import FILE_CHANNELS, channel_list, is_channel_list
from invhide.models.inference import trained_channels

__all__ = [
    "DTYPES",
    "MAX_RECORD_BYTES",
    "MODELS_DIR_ENV",
    "NAME_PATTERN",
    "RECORD_FORMAT",
    "SHIPPED",
    "ModelRecord",
    "available",
    "contents",
    "cpu_model",
    "default_name",
    "file_sha256",
    "find",
    "hardware",
    "load",
    "models_dir",
    "names",
    "publish",
    "record",
    "remeasure",
    "set_default",
]

MODELS_DIR_ENV = "INVHIDE_MODELS_DIR"
"""Environment variable: a model folder read instead of the shipped one (your own models, tests)."""
SHIPPED = Path(__file__).resolve().parent / "trained"
"""The model folder inside the package: the models that ship with invhide."""
RECORD_FORMAT = "invhide.trained-model.v1"
"""The ``format`` field of every record."""
NAME_PATTERN = r"[a-z0-9]+(?:[-_][a-z0-9]+)*"
"""What a model name looks like: lower-case letters and digits, words joined by ``-`` or ``_`` (64 at most)."""
DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")
"""Precisions the weights may be stored in; :func:`load` always returns a float32 model."""
MAX_RECORD_BYTES = 8 << 20
"""Largest record file read (the tables of a model fill a few kB)."""

_NAME = re.compile(NAME_PATTERN)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_NAME = 64
_MAX_HEADLINE = 200
# Fields publish computes; record_fields may not set them.
_COMPUTED = ("format", "name", "weights", "sha256", "dtype", "architecture", "trained_channels")
_GIVEN = ("headline", "default", "training", "steps", "wall_seconds", "hardware", "command", "tables")
# Fields a record may leave out (one written before they existed), with what leaving one out means.
_OPTIONAL: dict[str, Any] = {"trained_channels": ["lossless"]}


@dataclass(frozen=True)
class ModelRecord:
    """What is known about a shipped model: how it was made and what it measures.

    Every field but :attr:`path` is a field of the record's JSON file, which
    :meth:`to_dict` returns. The mapping fields are plain JSON objects; treat
    them as read-only.

    Attributes:
        name: the model's name (the stem of both of its files).
        headline: one line of its measured quality and cost, shown by
            ``invhide models``.
        default: whether ``invhide hide``, ``reveal`` and ``eval`` use it when
            neither ``--model`` nor ``$INVHIDE_MODEL`` is given (one per folder
            at most).
        weights: the weights file's name, ``NAME.safetensors``, beside the record.
        sha256: SHA-256 of the weights file, checked by :func:`load`.
        dtype: precision the weights are stored in (:data:`DTYPES`).
        architecture: the model's config (``model.config()``), with its ``"class"``.
        training: what it was trained on and how: at least ``"data"``; also,
            for example, the validation data, the recipe and every
            :class:`~invhide.training.config.TrainConfig` setting, and the
            compute of each session when a run was resumed.
        steps: optimizer steps in total.
        wall_seconds: wall time of the training in total, in seconds.
        hardware: where it was trained: at least ``"cpu"`` (the CPU model),
            ``"threads"`` (torch threads) and ``"gpu"`` (its name, or
            ``None``); :func:`hardware` describes this machine so.
        command: the exact command that reproduces the model.
        tables: its measured results, e.g. one
            :meth:`~invhide.evaluation.metrics.Evaluation.to_dict` per test set.
        trained_channels: the files it was trained to reveal from, by the
            names of :attr:`invhide.io.images.ImageFormat.channel`, always
            with ``"lossless"``: the model's own
            (:func:`invhide.models.inference.trained_channels`, which its
            weights file stores), checked again by :func:`load`; a record
            without the field means ``["lossless"]``.
        path: the record file it was read from (not part of the JSON).
    """

    name: str
    headline: str
    default: bool
    weights: str
    sha256: str
    dtype: str
    architecture: Mapping[str, Any] = field(hash=False)
    training: Mapping[str, Any] = field(hash=False)
    steps: int
    wall_seconds: float
    hardware: Mapping[str, Any] = field(hash=False)
    command: str
    tables: Mapping[str, Any] = field(hash=False)
    trained_channels: tuple[str, ...]
    path: Path = field(compare=False)

    @property
    def weights_path(self) -> Path:
        """The weights file, beside the record."""
        return self.path.parent / self.weights

    def to_dict(self) -> dict[str, Any]:
        """The record as its JSON file holds it (a deep copy).

        Example:
            >>> import tempfile
            >>> fields = dict(headline="h", default=False, training={"data": "d"}, steps=1, wall_seconds=1.0,
            ...               hardware={"cpu": "c", "threads": 1, "gpu": None}, command="c", tables={})
            >>> r = publish(invhide.InvertibleHider(num_blocks=1, subnet="conv"), "t", tempfile.mkdtemp(), fields)
            >>> list(r.to_dict())[:4]
            ['format', 'name', 'headline', 'default']
        """
        data: dict[str, Any] = {"format": RECORD_FORMAT}
        for item in dataclasses.fields(self):
            if item.name != "path":
                data[item.name] = copy.deepcopy(getattr(self, item.name))
        data["trained_channels"] = list(self.trained_channels)
        return data


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise InputTypeError(argument="name", problem=f"must be a string, got {type(name).__name__}")
    if len(name) > _MAX_NAME or not _NAME.fullmatch(name):
        raise InputError(
            argument="name",
            problem=f"must be lower-case letters and digits, words joined by '-' or '_', at most {_MAX_NAME} "
            f"characters (e.g. 'hinet-cpu'), got {name!r}",
        )
    return name


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hardware(value: Any, data: Mapping[str, Any]) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("cpu"), str)
        and _is_count(value.get("threads"))
        and value["threads"] >= 1
        and "gpu" in value
        and (value["gpu"] is None or isinstance(value["gpu"], str))
    )


# What each field of a record must be, checked in this order: (field, test of (value, record), expectation).
_RULES: tuple[tuple[str, Callable[[Any, Mapping[str, Any]], bool], str], ...] = (
    ("format", lambda v, d: v == RECORD_FORMAT, repr(RECORD_FORMAT)),
    ("name", lambda v, d: isinstance(v, str) and len(v) <= _MAX_NAME and bool(_NAME.fullmatch(v)),
     "lower-case words joined by '-' or '_'"),
    ("headline", lambda v, d: isinstance(v, str) and bool(v.strip()) and len(v) <= _MAX_HEADLINE,
     f"a non-empty string of at most {_MAX_HEADLINE} characters"),
    ("headline", lambda v, d: "\n" not in v and "\r" not in v, "one line"),
    ("default", lambda v, d: isinstance(v, bool), "true or false"),
    ("weights", lambda v, d: v == f"{d['name']}.safetensors", "'{name}.safetensors' (the file beside the record)"),
    ("sha256", lambda v, d: isinstance(v, str) and bool(_SHA256.fullmatch(v)), "64 lower-case hexadecimal digits"),
    ("dtype", lambda v, d: v in DTYPES, f"one of {list(DTYPES)}"),
    ("architecture", lambda v, d: isinstance(v, dict) and isinstance(v.get("class"), str),
     "a model config: a JSON object with a 'class' name"),
    ("training", lambda v, d: isinstance(v, dict) and isinstance(v.get("data"), str) and bool(v["data"]),
     "a JSON object whose 'data' names the training images"),
    ("steps", lambda v, d: _is_count(v) and v >= 1, "a positive integer"),
    ("wall_seconds", lambda v, d: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
     and v >= 0, "a finite number >= 0"),
    ("hardware", _is_hardware,
     "a JSON object with 'cpu' (a string), 'threads' (a positive integer) and 'gpu' (a string or null)"),
    ("command", lambda v, d: isinstance(v, str) and bool(v.strip()),
     "the non-empty command line that reproduces the model"),
    ("tables", lambda v, d: isinstance(v, dict), "a JSON object"),
    ("trained_channels", lambda v, d: is_channel_list(v),
     f"a list of distinct names from {list(FILE_CHANNELS)}, 'lossless' among them"),
)  # fmt: skip


def _record_from(data: object, where: str, error: type[InputError]) -> ModelRecord:
    """A record from its JSON data, every field checked; ``where`` names the file (or the argument) in errors."""
    if not isinstance(data, dict):
        raise error(f"{where}: a model record must be a JSON object, got {type(data).__name__}")
    expected = {"format", *_COMPUTED, *_GIVEN}
    unknown, missing = sorted(set(data) - expected), sorted(expected - set(data) - set(_OPTIONAL))
    if unknown:
        raise error(f"{where}: unknown field(s) {unknown} in a model record; its fields are {sorted(expected)}")
    if missing:
        raise error(f"{where}: missing field(s) {missing} in a model record")
    data = {**copy.deepcopy(_OPTIONAL), **data}
    for key, valid, expectation in _RULES:
        if not valid(data[key], data):
            raise error(f"{where}: {key} must be {expectation.format(name=data['name'])}, got {data[key]!r:.120}")
    values = {key: data[key] for key in (*_COMPUTED, *_GIVEN) if key != "format"}
    values["wall_seconds"] = float(values["wall_seconds"])
    values["trained_channels"] = tuple(values["trained_channels"])
    return ModelRecord(**values, path=Path(where))


def _read_record(path: Path) -> ModelRecord:
    """The record in ``path``, validated, its name matching the file's."""
    try:
        size = path.stat().st_size
        if size > MAX_RECORD_BYTES:
            raise CheckpointError(f"{path}: {size} bytes, more than a model record may hold ({MAX_RECORD_BYTES})")
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise MissingPathError(f"{path}: no such model record") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"{path}: not a JSON model record ({' '.join(str(error).split())})") from None
    record = _record_from(data, str(path), CheckpointError)
    if record.name != path.stem:
        raise CheckpointError(f"{path}: its name {record.name!r} differs from its file name ({path.name})")
    return record


def models_dir(folder: str | os.PathLike[str] | None = None) -> Path:
    """The model folder: ``folder``, else ``$INVHIDE_MODELS_DIR``, else :data:`SHIPPED`.

    Example:
        >>> models_dir("/tmp/models")
        PosixPath('/tmp/models')
    """
    if folder is not None:
        return Path(folder)
    override = os.environ.get(MODELS_DIR_ENV, "").strip()
    return Path(override).expanduser() if override else SHIPPED


def _named(folder: str | os.PathLike[str] | None, where: Path) -> str:
    """The model folder as messages name it: ``$INVHIDE_MODELS_DIR=...`` when the variable chose it."""
    return f"${MODELS_DIR_ENV}={where}" if folder is None and where != SHIPPED else str(where)


def _record_paths(folder: str | os.PathLike[str] | None) -> tuple[Path, list[Path]]:
    """The model folder and its record files, sorted (hidden files, such as half-written ones, skipped)."""
    where = models_dir(folder)
    if not where.exists():
        if where == SHIPPED:  # an installation without the data folder: nothing ships
            return where, []
        raise MissingPathError(f"{_named(folder, where)}: no such model folder")
    if not where.is_dir():
        raise NotAFolderError(f"{_named(folder, where)}: a file, not a model folder")
    return where, sorted(p for p in where.glob("*.json") if not p.name.startswith(".") and p.is_file())


def available(folder: str | os.PathLike[str] | None = None) -> list[ModelRecord]:
    """Every published model in the model folder, by name.

    Args:
        folder: the model folder (default: :func:`models_dir`).

    Returns:
        Their records, sorted by name; empty when no model ships.

    Raises:
        invhide.io.checkpoint.CheckpointError: a record that is not valid
            (named), or two records marked default.
        invhide.errors.MissingPathError: ``folder`` or ``$INVHIDE_MODELS_DIR``
            names no folder.
    """
    _, paths = _record_paths(folder)
    records = [_read_record(path) for path in paths]
    defaults = [r for r in records if r.default]
    if len(defaults) > 1:
        raise CheckpointError(
            f"{defaults[0].path} and {defaults[1].path} are both marked default; a folder has at most one default "
            f"model (set_default makes one the only one)"
        )
    return records


def names(folder: str | os.PathLike[str] | None = None) -> list[str]:
    """The names of the published models in the model folder, read from its file names (no record is parsed).

    For messages and quick existence checks: a name listed here may still
    have a record that is not valid (:func:`available` checks them all).

    Returns:
        The names, sorted; empty when the folder does not exist or holds no model.

    Example:
        >>> import tempfile
        >>> names(tempfile.mkdtemp())
        []
    """
    try:
        _, paths = _record_paths(folder)
    except (MissingPathError, NotAFolderError):
        return []
    return [path.stem for path in paths]


def contents(folder: str | os.PathLike[str] | None = None) -> str:
    """The model folder and the names of its published models, as one phrase for messages.

    Example:
        >>> import tempfile
        >>> contents(tempfile.mkdtemp())
        '/tmp/... holds no models'
    """
    try:
        where, paths = _record_paths(folder)
    except (MissingPathError, NotAFolderError) as error:
        return str(error)
    listed = ", ".join(p.stem for p in paths)
    if folder is None and where == SHIPPED:
        return f"shipped: {listed}" if listed else "no trained models ship with this installation yet"
    return f"models in {_named(folder, where)}: {listed}" if listed else f"{_named(folder, where)} holds no models"


def record(name: str, folder: str | os.PathLike[str] | None = None) -> ModelRecord:
    """The record of the published model ``name``.

    Raises:
        invhide.errors.MissingPathError: no model of that name (the message
            lists the available ones).
        invhide.io.checkpoint.CheckpointError: its record is not valid (named).
        invhide.errors.InputError: ``name`` is not a model name.

    Example:
        >>> import tempfile
        >>> record("nothing", folder=tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        invhide.errors.MissingPathError: no model named 'nothing'; /tmp/... holds no models
    """
    _check_name(name)
    where, _ = _record_paths(folder)
    path = where / f"{name}.json"
    if not path.is_file():
        raise MissingPathError(f"no model named {name!r}; {contents(folder)}")
    return _read_record(path)


def default_name(folder: str | os.PathLike[str] | None = None) -> str | None:
    """The name of the default model, or ``None`` when no model is marked default.

    Raises:
        invhide.io.checkpoint.CheckpointError: see :func:`available`.
    """
    return next((r.name for r in available(folder) if r.default), None)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, as 64 lower-case hexadecimal digits.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "empty"
        >>> path.write_bytes(b"")
        0
        >>> file_sha256(path)[:16]
        'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _load_record(entry: ModelRecord, map_location: str | torch.device, channels_last: bool) -> nn.Module:
    weights = entry.weights_path
    if not weights.is_file():
        raise MissingPathError(f"{weights}: the weights of model {entry.name!r} are missing (record {entry.path})")
    digest = file_sha256(weights)
    if digest != entry.sha256:
        raise CheckpointError(
            f"{weights}: SHA-256 {digest[:16]}... differs from the {entry.sha256[:16]}... of its record "
            f"{entry.path}; the file is corrupt or was replaced: not loaded"
        )
    model = checkpoint.load(weights, map_location=map_location, channels_last=channels_last)
    config = model.config() if callable(getattr(model, "config", None)) else None
    if config != entry.architecture:
        raise CheckpointError(f"{entry.path}: its architecture differs from the model config stored in {weights}")
    if trained_channels(model) != set(entry.trained_channels):
        raise CheckpointError(f"{entry.path}: its trained_channels differ from those stored in {weights}")
    return model.to(dtype=torch.float32).eval()


def find(name_or_path: str | os.PathLike[str], folder: str | os.PathLike[str] | None = None) -> str | Path:
    """What :func:`load` loads, without loading it: a published model's name (a string), or a path.

    A published name first; then an existing file or folder (``~``
    expanded); then, for a bare name (:data:`NAME_PATTERN`), a model file
    ``NAME.safetensors`` or a run folder ``NAME/`` in the model folder
    (``folder``, default :func:`models_dir`).

    Raises:
        invhide.errors.InputTypeError: neither a string nor a path.
        invhide.errors.MissingPathError: none of these (the message lists
            the published models).

    Example:
        >>> import tempfile
        >>> find("no-such-model", folder=tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        invhide.errors.MissingPathError: no-such-model: not a model name (... holds no models), nor a file or folder
    """
    if isinstance(name_or_path, str) and name_or_path in names(folder):
        return name_or_path
    if not isinstance(name_or_path, str | os.PathLike):
        problem = f"must be a model name or a path, got {type(name_or_path).__name__}"
        raise InputTypeError(argument="name_or_path", problem=problem)
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    if isinstance(name_or_path, str) and _NAME.fullmatch(name_or_path):
        where = models_dir(folder)
        for candidate in (where / f"{name_or_path}.safetensors", where / name_or_path):
            if candidate.exists():
                return candidate
    raise MissingPathError(f"{os.fspath(name_or_path)}: not a model name ({contents(folder)}), nor a file or folder")


def load(
    name_or_path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    *,
    folder: str | os.PathLike[str] | None = None,
    channels_last: bool = True,
) -> nn.Module:
    """A model by name, or a model file or training-run folder by path, in eval mode: :func:`invhide.load`.

    :func:`find` decides what ``name_or_path`` names. A published model has
    the SHA-256 of its weights file checked against its record first, and is
    returned in float32 whatever precision it is stored in; a path goes to
    :func:`invhide.io.checkpoint.load`.

    Args:
        name_or_path: a model's name, a ``.safetensors`` file or a folder
            holding ``model.safetensors``.
        map_location: device for the weights.
        folder: the model folder (default: :func:`models_dir`).
        channels_last: see :func:`invhide.io.checkpoint.load`.

    Returns:
        The model, in eval mode.

    Raises:
        invhide.errors.MissingPathError: neither a model name nor an
            existing path (the message lists the published names).
        invhide.io.checkpoint.CheckpointError: the weights do not match the
            SHA-256 of their record (the file is named), a record that is
            not valid, or a file that is not an invhide model.

    Example:
        >>> import tempfile, pathlib
        >>> path = invhide.save(invhide.HiNet(num_blocks=1), pathlib.Path(tempfile.mkdtemp()) / "m.safetensors")
        >>> load(path).num_blocks
        1
    """
    found = find(name_or_path, folder)
    if isinstance(found, str):
        return _load_record(record(found, folder), map_location, channels_last)
    return checkpoint.load(found, map_location=map_location, channels_last=channels_last)


def _write(entry: ModelRecord, *, replace: bool = True) -> None:
    with atomic_write(entry.path, "w", replace=replace) as file:
        file.write(json.dumps(entry.to_dict(), indent=2) + "\n")


def remeasure(name: str, folder: str | os.PathLike[str], *, headline: str, tables: Mapping[str, Any]) -> ModelRecord:
    """Replace a published model's measured ``headline`` and ``tables``, its weights untouched.

    For a change in how models are measured (say, the reveal's stand-in for
    the lost part): the model is measured again and only what was measured
    changes. The weights file must still match the record's SHA-256, and the
    new record is checked as :func:`publish` checks one, before it is
    written (atomically).

    Args:
        name: a model of ``folder``.
        folder: the model folder (``invhide/models/trained`` of a source checkout).
        headline: the new one-line summary.
        tables: the new measured results.

    Returns:
        The record as written.

    Raises:
        invhide.errors.MissingPathError: no model ``name`` in ``folder``.
        invhide.errors.CheckpointError: its weights file no longer matches its record.
        invhide.errors.ConfigError: a headline or tables a record cannot hold.

    Example:
        >>> import tempfile
        >>> fields = dict(headline="old", default=False, training={"data": "d"}, steps=1, wall_seconds=1.0,
        ...               hardware={"cpu": "c", "threads": 1, "gpu": None}, command="c", tables={})
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = publish(invhide.InvertibleHider(num_blocks=1), "tiny", folder, fields)
        ...     remeasure("tiny", folder, headline="new", tables={"x": 1}).headline
        'new'
    """
    entry = record(name, folder)
    weights = entry.path.parent / entry.weights
    if file_sha256(weights) != entry.sha256:
        raise CheckpointError(f"{weights}: does not match the SHA-256 of its record {entry.path}; publish it again")
    data = {**entry.to_dict(), "headline": headline, "tables": copy.deepcopy(dict(tables))}
    updated = _checked(data, "tables", str(entry.path))
    _write(updated)
    return updated


def set_default(name: str, folder: str | os.PathLike[str]) -> ModelRecord:
    """Make ``name`` the only default model of ``folder``, rewriting the records whose flag changes.

    Only the ``default`` field of the records changes (the weights and their
    SHA-256 stay as they are); the others are demoted before ``name`` is
    promoted, so the folder never has two defaults.

    Returns:
        The new default's record.

    Raises:
        invhide.errors.MissingPathError: no model ``name`` in ``folder``.
    """
    records = available(folder)
    if name not in {r.name for r in records}:
        raise MissingPathError(f"no model named {name!r}; {contents(folder)}")
    for entry in records:
        if entry.default and entry.name != name:
            _write(dataclasses.replace(entry, default=False))
    chosen = next(r for r in records if r.name == name)
    if not chosen.default:
        chosen = dataclasses.replace(chosen, default=True)
        _write(chosen)
    return chosen


def publish(
    model: nn.Module,
    name: str,
    folder: str | os.PathLike[str],
    record_fields: Mapping[str, Any],
    *,
    dtype: str = "float32",
    overwrite: bool = False,
) -> ModelRecord:
    """Write a model's weights and record into a model folder, ready to ship.

    The record is checked before anything is written. The weights are
    written by :func:`invhide.io.checkpoint.save` from a copy of the model in
    ``dtype`` (``model`` itself is not changed), then hashed, then the
    record is written beside them, each file atomically. A model published
    as the default becomes the only default of the folder
    (:func:`set_default`).

    Args:
        model: a hider with a ``config()`` (any invhide model).
        name: the model's name (:data:`NAME_PATTERN`); its files are
            ``NAME.safetensors`` and ``NAME.json``.
        folder: the model folder (created if missing); the package's
            ``invhide/models/trained/`` of a source checkout to ship it.
        record_fields: the record's fields that describe the model:
            ``headline``, ``default``, ``training``, ``steps``,
            ``wall_seconds``, ``hardware``, ``command`` and ``tables`` (see
            :class:`ModelRecord`); the others are computed.
        dtype: precision to store the weights in (:data:`DTYPES`); float16
            halves the file, to be measured before shipping (the loaded
            model computes in float32 from the rounded weights).
        overwrite: replace a model of the same name.

    Returns:
        The record as written.

    Raises:
        invhide.errors.InputError: a bad name or dtype, a field that is
            missing, unknown, computed here or of the wrong shape, or weights
            that do not fit ``dtype`` (beyond its range).
        invhide.errors.PathExistsError: a model of that name exists and
            ``overwrite`` is false.
        TypeError: the model cannot describe itself (no config).
    """
    data = _new_record(model, name, record_fields, dtype)
    folder = Path(folder)
    weights, path = folder / data["weights"], folder / f"{name}.json"
    if not overwrite and (weights.exists() or path.exists()):
        raise PathExistsError(f"{folder}: a model named {name!r} exists; pass overwrite=True to replace it")
    stored = _in_dtype(model, dtype)
    if folder.exists() and not folder.is_dir():
        raise NotAFolderError(f"{folder}: is a file, not a model folder")
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint.save(stored, weights, replace=overwrite)  # without overwrite, never over a file written meanwhile
    entry = _record_from({**data, "sha256": file_sha256(weights), "default": False}, str(path), ConfigError)
    _write(entry, replace=overwrite)
    return set_default(name, folder) if data["default"] else entry


def _new_record(model: nn.Module, name: str, record_fields: Mapping[str, Any], dtype: str) -> dict[str, Any]:
    """The JSON data of ``model``'s record from the caller's fields, all checked (its SHA-256 a placeholder)."""
    _check_name(name)
    one_of("dtype", dtype, DTYPES)
    if not callable(getattr(model, "config", None)):
        problem = f"must describe itself with config() (an invhide model), got {type(model).__name__}"
        raise InputTypeError(argument="model", problem=problem)
    if not isinstance(record_fields, Mapping):
        problem = f"must be a mapping of record fields, got {type(record_fields).__name__}"
        raise InputTypeError(argument="record_fields", problem=problem)
    computed = sorted(set(record_fields) & set(_COMPUTED))
    if computed:
        raise InputError(argument="record_fields", problem=f"must not set {computed}: publish computes them")
    data: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "name": name,
        **copy.deepcopy(dict(record_fields)),
        "weights": f"{name}.safetensors",
        "sha256": "0" * 64,  # replaced once the weights are written
        "dtype": dtype,
        "architecture": model.config(),  # type: ignore[operator]
        "trained_channels": channel_list(trained_channels(model)),
    }
    _checked(data, "record_fields", "record_fields")
    return data


def _checked(data: dict[str, Any], given: str, where: str) -> ModelRecord:
    """The record of ``data``, refused (:class:`ConfigError`) unless it is plain JSON and every field is valid;
    ``given`` names what the caller passed, ``where`` the record in errors."""
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{given} must hold JSON values only (no NaN or infinity): {error}") from None
    return _record_from(data, where, ConfigError)


def _in_dtype(model: nn.Module, dtype: str) -> nn.Module:
    """A copy of ``model`` in ``dtype``, refused when a weight overflows it."""
    stored = copy.deepcopy(model).to(dtype=getattr(torch, dtype))
    for key, value in stored.state_dict().items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise InputError(f"{key}: the model's weights do not fit {dtype} (values beyond its range); store float32")
    return stored


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` knows).

    Example:
        >>> isinstance(cpu_model(), str)
        True
    """
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as file:
            name = next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return name


def hardware(device: str | torch.device | None = None) -> dict[str, Any]:
    """This machine as a record's ``hardware`` field: CPU model, logical CPUs, torch threads, GPU, torch version.

    Args:
        device: the training device; a CUDA device's name is recorded as the GPU.

    Example:
        >>> sorted(hardware())
        ['cpu', 'gpu', 'logical_cpus', 'threads', 'torch']
    """
    device = torch.device(device) if device is not None else None
    gpu = torch.cuda.get_device_name(device) if device is not None and device.type == "cuda" else None
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "gpu": gpu,
        "torch": torch.__version__,
    }
