"""Pieces the ``invhide`` commands share: the device, reading images, and checks of the paths they will write.

Each check raises an :class:`~invhide.errors.InvhideError` naming the
option at fault, before any work is done, so a command refuses bad input in
one line and leaves nothing half-written.

The output rules, the same for every command:

- **An output is never one of the command's inputs.** Paths are compared as
  files (``os.path.samefile``: the same device and inode), so ``-o
  ./x/../cover.png``, a hard link or a symbolic link to an input are all
  refused, whatever their spelling.
- **An existing output file is refused unless** ``--force`` is given; a
  folder is never replaced by a file.
- **A file output goes into a folder that exists**; a folder output
  (``train --out``, ``convert-official -o DIR``) is created when missing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from invhide.errors import (
    AccessError,
    InputError,
    InvhideError,
    IsAFolderError,
    MissingPathError,
    NotAFolderError,
    PathExistsError,
    describe,
    path_error,
)

__all__ = [
    "DEFAULT_MODEL_ENV",
    "MODELS_ENV",
    "Input",
    "check_file_output",
    "check_folder_output",
    "check_image_output",
    "check_not_an_input",
    "folder_images",
    "in_command_words",
    "models_folder",
    "output_folder",
    "path_kind",
    "read_input_image",
    "resolve_device",
    "same_file",
]

MODELS_ENV = "INVHIDE_MODELS"
"""Environment variable: the folder where ``--model NAME`` is looked up (default ``~/.cache/invhide/models``)."""

DEFAULT_MODEL_ENV = "INVHIDE_MODEL"
"""Environment variable: the model used when ``--model`` is not given."""

Input = tuple[str, Path]
"""A file a command reads, with how messages name it, e.g. ``("cover image a.png", Path("a.png"))``."""


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


# --------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------


def path_kind(path: Path, option: str) -> str | None:
    """What ``path`` is: ``"folder"``, ``"file"``, ``"other"`` (a device, pipe or socket) or ``None`` (nothing).

    A path the system cannot even look up (a name too long, a loop of links)
    is an error naming ``option``, not a missing path.

    Raises:
        invhide.errors.PathError: ``path`` cannot be looked up.

    Example:
        >>> path_kind(Path("/"), "-o"), path_kind(Path("/no/such/thing"), "-o")
        ('folder', None)
    """
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        if error.errno == errno.ENOENT:
            return None
        shown = f"{option} {path}" if option else str(path)
        raise path_error(error, f"{shown}: cannot look it up: {error.strerror or describe(error)}") from None
    if stat.S_ISDIR(info.st_mode):
        return "folder"
    return "file" if stat.S_ISREG(info.st_mode) else "other"


@contextlib.contextmanager
def output_folder(path: Path, option: str) -> Iterator[None]:
    """Create the folder ``path`` (and missing parents) for the block; if the block fails, remove those still empty.

    Raises:
        invhide.errors.PathError: the folder cannot be created (named with ``option``).
    """
    created = []
    missing = path
    while path_kind(missing, option) is None and missing != missing.parent:
        created.append(missing)
        missing = missing.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise path_error(
            error, f"{option} {path}: cannot create the folder: {error.strerror or describe(error)}"
        ) from None
    try:
        yield
    except BaseException:
        for folder in created:  # deepest first; a folder the block wrote into stays
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file: the same inode when both exist, else the same resolved path.

    Example:
        >>> same_file(Path("/tmp/x/../y.png"), Path("/tmp/y.png"))
        True
    """
    if os.path.lexists(a) and os.path.lexists(b):
        with contextlib.suppress(OSError):
            return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def check_not_an_input(output: Path, option: str, inputs: Iterable[Input]) -> None:
    """Refuse an output that is one of the command's inputs (by file identity, not spelling).

    Args:
        output: the path the command will write.
        option: how it was given, e.g. ``"-o"``.
        inputs: the files the command reads, each with how to name it.

    Raises:
        invhide.errors.InputError: ``output`` is one of ``inputs``.
    """
    for shown, path in inputs:
        if same_file(output, path):
            raise InputError(
                f"{option} {output}: is the {shown}; writing it would destroy an input: choose another output name"
            )


def check_file_output(path: Path, option: str, *, force: bool = False, inputs: Iterable[Input] = ()) -> None:
    """A file the command will write: not an input, new (or ``force``), not a folder, in a folder that exists.

    Args:
        path: the file to write.
        option: how it was given, e.g. ``"--json"``.
        force: an existing file may be replaced (``--force``).
        inputs: the command's inputs, never to be written.

    Raises:
        invhide.errors.InputError: ``path`` is an input, or its name is empty.
        invhide.errors.IsAFolderError: ``path`` is a folder.
        invhide.errors.PathExistsError: ``path`` exists and ``force`` is false.
        invhide.errors.MissingPathError: its folder does not exist.
        invhide.errors.NotAFolderError: its "folder" is a file.
    """
    check_not_an_input(path, option, inputs)
    if path_kind(path, option) == "folder":
        raise IsAFolderError(f"{option} {path}: is a folder; give a file name")
    parent = path.parent
    kind = path_kind(parent, option)
    if kind is None:
        raise MissingPathError(f"{option} {path}: the folder {parent} does not exist (create it first)")
    if kind != "folder":
        raise NotAFolderError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AccessError(f"{option} {path}: cannot write in {parent}: permission denied")
    if os.path.lexists(path) and not force:
        raise PathExistsError(f"{option} {path}: exists; pass --force to replace it, or choose another name")


def check_image_output(path: Path, option: str = "-o", *, force: bool = False, inputs: Iterable[Input] = ()) -> None:
    """An image the command will write: a lossless file (``.png``, ``.tif``, ``.tiff``, ``.bmp``), see above.

    Raises:
        invhide.errors.InputError: a lossy or unknown suffix, or ``path`` is an input.
        invhide.errors.PathError: see :func:`check_file_output`.
    """
    from invhide.io.images import LOSSLESS_SUFFIXES

    check_not_an_input(path, option, inputs)
    suffix = path.suffix.lower()
    if suffix not in LOSSLESS_SUFFIXES and path_kind(path, option) != "folder":
        lossless = ", ".join(LOSSLESS_SUFFIXES[:-1]) + " or " + LOSSLESS_SUFFIXES[-1]
        if suffix in (".jpg", ".jpeg", ".webp", ".gif", ".avif", ".heic", ".jfif", ".jp2"):
            why = f"{suffix} is lossy or reduces colours, which would destroy the hidden image"
        else:
            why = f"the suffix {suffix or '(none)'!r} names no lossless image format"
        raise InputError(f"{option} {path}: {why}; write a lossless {lossless} file (.png recommended)")
    check_file_output(path, option, force=force)


def check_folder_output(path: Path, option: str, *, inputs: Iterable[Input] = ()) -> None:
    """A folder the command will create or write into.

    It may exist (as a folder) or not; the nearest existing folder above it
    must be writable, so that creating it later cannot fail for that reason.
    Which files inside it may be replaced is the command's business.

    Raises:
        invhide.errors.InputError: ``path`` is one of ``inputs`` (a folder the command reads).
        invhide.errors.NotAFolderError: ``path`` or a parent is a file.
        invhide.errors.AccessError: the nearest existing folder is not writable.
    """
    for shown, folder in inputs:
        if same_file(path, folder):
            raise InputError(f"{option} {path}: is the {shown}; choose another folder for what the command writes")
    existing = path
    while path_kind(existing, option) is None and existing != existing.parent:
        existing = existing.parent
    if path_kind(existing, option) != "folder":
        where = "is a file" if existing == path else f"is below {existing}, which is a file"
        raise NotAFolderError(f"{option} {path}: {where}, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AccessError(f"{option} {path}: cannot write in {existing}: permission denied")


def folder_images(folder: Path, option: str | None = None) -> list[Input]:
    """The images of a folder a command reads, as inputs; ``option`` (e.g. ``"--train-dir"``) prefixes errors.

    Raises:
        invhide.errors.MissingPathError: no such folder.
        invhide.errors.NotAFolderError: a file, not a folder.
    """
    from invhide.io.datasets import list_images

    try:
        path_kind(folder, "")
        paths = list_images(folder)
    except InvhideError as error:
        if option is None:
            raise
        raise type(error)(f"{option} {error}") from None
    return [(f"image {path.name} of {option + ' ' if option else ''}{folder}", path) for path in paths]


# --------------------------------------------------------------------------
# Reading images in the command's words
# --------------------------------------------------------------------------

_LIBRARY_LIMIT = re.compile(r"\(max_pixels\)(; pass a larger max_pixels \(or None\) to read it)?$")
_PILLOW_LIMIT = re.compile(r"Pillow's decompression-bomb limit of ([\d,]+) pixels; raise PIL.Image.MAX_IMAGE_PIXELS.*$")


@contextlib.contextmanager
def _pillow_allows(pixels: int) -> Iterator[None]:
    """Lift Pillow's decompression-bomb limit to ``pixels`` for the block, so ``--max-pixels`` is the one limit."""
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    if before is not None and pixels > before:
        Image.MAX_IMAGE_PIXELS = pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def in_command_words(error: Exception, advice: str = "pass a larger --max-pixels to read it") -> Exception:
    """An image error whose size-limit advice speaks of the command's options, not of the library's arguments.

    Args:
        error: an error of :mod:`invhide.io.images`.
        advice: what the user can do, e.g. ``"pass a larger --max-pixels to read it"``.

    Returns:
        ``error`` itself when it says nothing of the limit, else an
        ``ImageError`` naming the limit as ``--max-pixels`` (or the command's
        own limit) with ``advice``.

    Example:
        >>> from invhide.io.images import ImageError
        >>> str(in_command_words(ImageError("a.png: ... more than the limit of 10 pixels (max_pixels)")))
        'a.png: ... more than the limit of 10 pixels (--max-pixels); pass a larger --max-pixels to read it'
    """
    from invhide.io.images import ImageError

    message = str(error)
    limit = "(--max-pixels)" if "--max-pixels" in advice else "(the most this command reads)"
    words = _LIBRARY_LIMIT.sub(f"{limit}; {advice}", message)
    words = _PILLOW_LIMIT.sub(rf"the limit of \1 pixels; {advice}", words)
    return error if words == message else ImageError(words)


def read_input_image(path: Path, max_pixels: int) -> Any:
    """:func:`invhide.io.images.read_image` with ``--max-pixels``, its size limit named as that option.

    Raises:
        invhide.io.images.ImageError: as ``read_image``; a file larger than
            ``max_pixels`` is refused before decoding, the message saying
            ``--max-pixels`` rather than the library's argument.
        invhide.errors.PathError: a missing or unreadable file.
    """
    from invhide.io.images import ImageError, read_image

    if path_kind(path, "") == "other":
        raise ImageError(f"{path}: not a regular file (a device, pipe or socket), not an image file")
    with _pillow_allows(max_pixels):
        try:
            return read_image(path, max_pixels=max_pixels)
        except ImageError as error:
            worded = in_command_words(error)
            if worded is error:
                raise
            raise worded from None
