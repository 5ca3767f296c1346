"""Files that appear whole or not at all.

:func:`atomic_write` is the one way invhide writes a file: images, model
files, checkpoints, logs that are rewritten and JSON results all go through
it, so a crash, a full disk or Ctrl-C never leaves a half-written file, and a
file that existed keeps its old content.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from invhide.errors import AccessError, MissingPathError, describe, path_error

__all__ = ["atomic_write"]

PathLike = str | os.PathLike[str]


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it to ``path`` when the block succeeds.

    The file is created with mode ``0o666`` (the umask applies, as for any new
    file), flushed and fsynced before the rename, and the folder is fsynced
    after it. On any exception, Ctrl-C included, the temporary file is removed
    and ``path`` keeps its old content, if it had one.

    Args:
        path: the file to write; its folder must exist.
        mode: ``"wb"`` or ``"w"``.

    Raises:
        FileNotFoundError: the folder does not exist.
        PermissionError: the folder is not writable.
        OSError: the write failed (disk full...); the message names ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
        >>> with atomic_write(target, "w") as file:
        ...     _ = file.write("hello")
        >>> target.read_text()
        'hello'
    """
    shown = os.fspath(path)
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise MissingPathError(f"{shown}: the output folder {folder} does not exist (folders are not created)")
    temporary = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(temporary, flags, 0o666)  # the umask applies, as for an ordinary new file
    except PermissionError:
        raise AccessError(f"{shown}: cannot write in folder {folder}: permission denied") from None
    except OSError as error:
        raise path_error(
            error, f"{shown}: cannot create a file in {folder}: {error.strerror or describe(error)}"
        ) from None
    try:
        with os.fdopen(descriptor, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError) and not str(error).startswith(shown):
            raise path_error(error, f"{shown}: could not write: {error.strerror or describe(error)}") from error
        raise
    _fsync_folder(folder)
