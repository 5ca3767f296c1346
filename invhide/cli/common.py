"""Pieces the ``invhide`` commands share: option types, the device, reading images, checks of the paths they write.

Each check raises an :class:`~invhide.errors.InvhideError` naming the
option at fault, before any work is done, so a command refuses bad input in
one line and leaves nothing half-written.

The output rules, the same for every command:

- **An output is never one of the command's inputs.** Paths are compared as
  files (``os.path.samefile``: the same device and inode), so ``-o
  ./x/../cover.png``, a hard link or a symbolic link to an input are all
  refused, whatever their spelling.
- **An existing output file is refused unless** ``--force`` is given; a
  folder is never replaced by a file, nor is anything that is not a regular
  file (a device such as ``/dev/null``, a pipe, a socket), ``--force`` or not.
- **A file output goes into a folder that exists**; a folder output
  (``train --out``, ``convert-official -o DIR``, ``eval --security
  --pairs-dir``) is created when missing.
- **Outputs are created, not overwritten, unless** ``--force``: a file
  written to a name that another process took meanwhile is not published
  (:func:`new_file`), and a folder output is held by one run at a time
  (:func:`held_folder`), so two commands writing the same output never both
  succeed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib.util
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch
from PIL import Image

from invhide import checks
from invhide.errors import (
    AccessError,
    InputError,
    InvhideError,
    IsAFolderError,
    MissingPathError,
    NotAFolderError,
    PathError,
    PathExistsError,
    describe,
    path_error,
)
from invhide.io.datasets import list_images
from invhide.io.files import atomic_path, locked_folder
from invhide.io.images import LOSSLESS_SUFFIXES, ImageError, ImageTooLargeError, read_image

__all__ = [
    "DEFAULT_MODEL_ENV",
    "Input",
    "check_file_output",
    "check_folder_output",
    "check_image_output",
    "check_not_an_input",
    "check_one_secret",
    "folder_images",
    "held_folder",
    "installed",
    "new_file",
    "option_type",
    "output_folder",
    "path_kind",
    "positive_option",
    "read_input_image",
    "resolve_device",
    "same_file",
    "seed_option",
]

T = TypeVar("T")

DEFAULT_MODEL_ENV = "INVHIDE_MODEL"
"""Environment variable: the model used when ``--model`` is not given."""

Input = tuple[str, Path]
"""A file a command reads, with how messages name it, e.g. ``("cover image a.png", Path("a.png"))``."""


# --------------------------------------------------------------------------
# Option types: argparse reports their errors (usage line, exit status 2)
# --------------------------------------------------------------------------


def option_type(parse: Callable[[str], Any], what: str, check: Callable[..., T], **bounds: Any) -> Callable[[str], T]:
    """An argparse ``type``: the text read by ``parse`` (``int``, ``float``), then ``check(name, value, **bounds)``.

    ``check`` is one of :mod:`invhide.checks`; a text that does not parse or
    a value the check refuses is argparse's one line ``argument --OPTION:
    expected WHAT, got 'TEXT'`` (after the usage, exit status 2).

    Example:
        >>> steps = option_type(int, "a positive integer", checks.positive_int)
        >>> steps("12")
        12
        >>> steps("0")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: expected a positive integer, got '0'
    """

    def convert(text: str) -> T:
        try:
            return check("option", parse(text), **bounds)
        except ValueError:  # the text is not a number, or the check's InputError (a ValueError) refuses it
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    return convert


positive_option = option_type(int, "a positive integer", checks.positive_int)
"""The argparse type of a count: an integer >= 1 (``--steps``, ``--tile``, ``--bootstrap``...)."""

seed_option = option_type(int, "an integer in [0, 2^63)", checks.integer, low=0, high=2**63 - 1)
"""The argparse type of ``--seed``: what ``torch.Generator.manual_seed`` takes."""


def resolve_device(name: str | None) -> torch.device:
    """The ``torch.device`` of ``--device``: CUDA when available if not given.

    Raises:
        invhide.errors.InputError: not a device name, or a device this
            PyTorch build or machine lacks (``cuda`` without a GPU, ``mps``
            off a Mac, ``cuda:3`` on a one-GPU machine...).

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return checks.device("--device", name)


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it), e.g. an optional dependency.

    Example:
        >>> installed("torch"), installed("no_such_module")
        (True, False)
    """
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that fails to import, or a module set to None in sys.modules
        return False


def check_one_secret(model: torch.nn.Module, described: str, command: str) -> None:
    """Refuse a model hiding several secrets per cover (named ``described``) in a ``command`` that takes one."""
    count = getattr(model, "num_secrets", 1)
    if count != 1:
        raise InputError(
            f"{described} hides {count} secrets per cover; invhide {command} takes a model of one secret image"
        )


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
        invhide.errors.PathError: ``path`` is not a regular file (a device,
            pipe or socket), which no ``--force`` replaces.
        invhide.errors.MissingPathError: its folder does not exist.
        invhide.errors.NotAFolderError: its "folder" is a file.
    """
    check_not_an_input(path, option, inputs)
    kind = path_kind(path, option)
    if kind == "folder":
        raise IsAFolderError(f"{option} {path}: is a folder; give a file name")
    if kind == "other":
        raise PathError(
            f"{option} {path}: not a regular file (a device, pipe or socket), which invhide never replaces; "
            f"give the name of a file"
        )
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
    kind = path_kind(existing, option)
    if kind != "folder":
        what = "a file" if kind == "file" else "a device, pipe or socket"
        where = f"is {what}" if existing == path else f"is below {existing}, which is {what}"
        raise NotAFolderError(f"{option} {path}: {where}, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AccessError(f"{option} {path}: cannot write in {existing}: permission denied")


@contextlib.contextmanager
def new_file(path: Path, option: str, *, force: bool) -> Iterator[Path]:
    """The temporary name to write the output ``path`` under; it takes the name ``path`` when the block succeeds.

    Without ``force``, a file that another process wrote at ``path`` while
    this one worked is left as it is and this output is not published (see
    :func:`invhide.io.files.atomic_path`): of two commands writing the same
    new file, one fails, in one line naming ``option``.

    Raises:
        invhide.errors.PathExistsError: ``path`` appeared meanwhile and ``force`` is false.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "r.json"
        >>> with new_file(target, "--json", force=False) as temporary:
        ...     _ = temporary.write_text("{}")
        >>> target.read_text()
        '{}'
    """
    try:
        with atomic_path(path, replace=force) as temporary:
            yield temporary
    except PathExistsError as error:
        if error.argument != str(path):
            raise
        raise PathExistsError(
            f"{option} {path}: was written by another process while this one ran; it was left as it is and nothing "
            f"was written: pass --force to replace it, or choose another name"
        ) from None


@contextlib.contextmanager
def held_folder(path: Path, option: str) -> Iterator[None]:
    """Hold the output folder ``path`` (it exists) for the block: a second command writing into it fails at once.

    See :func:`invhide.io.files.locked_folder`; the lock file is removed when
    the block ends.

    Raises:
        invhide.errors.PathError: another run holds the folder (the message names ``option`` and the process).
    """
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locked_folder(path))
        except PathError as error:
            if error.argument != str(path):
                raise
            raise error.renamed(f"{option} {path}", advice=f"wait for it to end, or choose another {option}") from None
        yield


def folder_images(folder: Path, option: str | None = None) -> list[Input]:
    """The images of a folder a command reads, as inputs; ``option`` (e.g. ``"--train-dir"``) prefixes errors.

    Raises:
        invhide.errors.MissingPathError: no such folder.
        invhide.errors.NotAFolderError: a file, not a folder.
    """
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


@contextlib.contextmanager
def _pillow_allows(pixels: int) -> Iterator[None]:
    """Lift Pillow's decompression-bomb limit to ``pixels`` for the block, so ``--max-pixels`` is the one limit."""
    before = Image.MAX_IMAGE_PIXELS
    if before is not None and pixels > before:
        Image.MAX_IMAGE_PIXELS = pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def read_input_image(path: Path, max_pixels: int) -> torch.Tensor:
    """:func:`invhide.io.images.read_image` with ``--max-pixels``, its size limit named as that option.

    Returns:
        ``(3, H, W)`` float32 in ``[0, 1]``.

    Raises:
        invhide.io.images.ImageTooLargeError: more pixels than ``max_pixels``,
            refused before decoding, the message naming ``--max-pixels``.
        invhide.io.images.ImageError: not an image file, or not a regular file.
        invhide.errors.PathError: a missing or unreadable file.
    """
    if path_kind(path, "") == "other":
        raise ImageError(f"{path}: not a regular file (a device, pipe or socket), not an image file")
    with _pillow_allows(max_pixels):
        try:
            return read_image(path, max_pixels=max_pixels)
        except ImageTooLargeError as error:
            raise error.renamed("--max-pixels", advice="pass a larger --max-pixels to read it") from None
