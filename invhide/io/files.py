"""Files that appear whole or not at all, never over a file that appeared meanwhile, and folders held by one run.

:func:`atomic_write` is the one way invhide writes a file: images, model
files, checkpoints, logs that are rewritten and JSON results all go through
it, so a crash, a full disk or Ctrl-C never leaves a half-written file, and a
file that existed keeps its old content. :func:`atomic_path` is the same for
a writer that takes a path (it gets a temporary one).

Both publish the finished file in one step. With ``replace=False`` that step
creates the file or fails (a hard link, which the system refuses when the
name exists), so of two processes writing the same new file one succeeds and
the other is told, instead of the second silently replacing the first. A
path that is not a regular file (a device such as ``/dev/null``, a pipe or a
socket) is never replaced.

:func:`locked_folder` holds a folder for one run: a second run into it is
refused at once instead of mixing its files with the first's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from invhide.errors import (
    AccessError,
    IsAFolderError,
    MissingPathError,
    PathError,
    PathExistsError,
    describe,
    path_error,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the lock file is created exclusively instead
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "atomic_path", "atomic_write", "locked_folder"]

PathLike = str | os.PathLike[str]

LOCK_FILE = ".invhide.lock"
"""The file :func:`locked_folder` holds in the folder (it is removed when the run ends)."""

# Errors of os.link on a file system without hard links: the file is then created exclusively, then renamed over.
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _check_target(path: Path, shown: str) -> None:
    """Refuse to publish over a folder or over something that is not a regular file (followed through links)."""
    try:
        mode = path.stat().st_mode
    except OSError:  # nothing there (or a link to nothing): the publish step decides
        return
    if stat.S_ISDIR(mode):
        raise IsAFolderError(f"{shown}: is a folder, not a file name")
    if not stat.S_ISREG(mode):
        raise PathError(
            f"{shown}: not a regular file (a device, pipe or socket), which invhide never replaces; choose a file name"
        )


def _appeared(shown: str) -> PathExistsError:
    return PathExistsError(
        argument=shown,
        problem="appeared while it was being written (another process?) and was left as it is; nothing was written",
    )


def _publish(temporary: Path, path: Path, shown: str, replace: bool) -> None:
    """Give the finished ``temporary`` the name ``path``: replacing what is there, or only when nothing is."""
    _check_target(path, shown)
    if replace:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise _appeared(shown) from None
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        try:  # no hard links here: claim the name exclusively, then rename over the claim
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise _appeared(shown) from None
        os.replace(temporary, path)
        return
    os.unlink(temporary)


def _temporary_name(path: Path) -> Path:
    """A new hidden name beside ``path`` with its suffix (a writer may choose its format by the suffix)."""
    return path.parent / f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}"


def _check_folder(path: Path, shown: str) -> Path:
    folder = path.parent
    if not folder.is_dir():
        raise MissingPathError(f"{shown}: the output folder {folder} does not exist (folders are not created)")
    return folder


@contextlib.contextmanager
def atomic_path(path: PathLike, *, replace: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that takes a path; it becomes ``path`` when the block succeeds.

    The temporary name is hidden (it starts with a dot) and keeps the
    suffix of ``path``. When the block succeeds, the file written there
    takes the name ``path`` in one step (then the folder is fsynced); when
    it fails, Ctrl-C included, or writes nothing, the temporary file is
    removed and ``path`` is left as it was.

    Args:
        path: the file to write; its folder must exist.
        replace: replace a file that exists at ``path`` when the block ends;
            ``False``: create ``path`` or fail, so a file that appeared there
            meanwhile (written by another process) is never replaced.

    Raises:
        FileNotFoundError: the folder does not exist.
        invhide.errors.PathExistsError: ``replace`` is false and ``path``
            exists when the block starts or ends.
        IsADirectoryError: ``path`` is a folder.
        invhide.errors.PathError: ``path`` is not a regular file (a device,
            pipe or socket); never replaced.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
        >>> with atomic_path(target, replace=False) as temporary:
        ...     _ = temporary.write_text("hello")
        >>> target.read_text()
        'hello'
        >>> other = target.with_name("other.txt")
        >>> with atomic_path(other, replace=False) as temporary:
        ...     _ = temporary.write_text("mine")
        ...     _ = other.write_text("another process's")  # written meanwhile: kept
        Traceback (most recent call last):
        ...
        invhide.errors.PathExistsError: ...other.txt appeared while it was being written ...
        >>> other.read_text()
        "another process's"
    """
    shown = os.fspath(path)
    path = Path(path)
    folder = _check_folder(path, shown)
    _check_target(path, shown)
    if not replace and os.path.lexists(path):
        raise PathExistsError(argument=shown, problem="exists", advice="pass replace=True to replace it")
    temporary = _temporary_name(path)
    try:
        yield temporary
        if not os.path.lexists(temporary):
            return
        _publish(temporary, path, shown, replace)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError) and not isinstance(error, PathError):
            raise path_error(error, f"{shown}: could not write: {error.strerror or describe(error)}") from error
        raise
    _fsync_folder(folder)


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", *, replace: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; it becomes ``path`` when the block succeeds.

    The file is created with mode ``0o666`` (the umask applies, as for any new
    file), flushed and fsynced before it takes its name, and the folder is
    fsynced after. On any exception, Ctrl-C included, the temporary file is
    removed and ``path`` keeps its old content, if it had one.

    Args:
        path: the file to write; its folder must exist.
        mode: ``"wb"`` or ``"w"``.
        replace: replace a file that exists at ``path``; ``False``: create
            ``path`` or fail, so that of two processes writing the same new
            file, one succeeds and the other is told (see :func:`atomic_path`).

    Raises:
        FileNotFoundError: the folder does not exist.
        PermissionError: the folder is not writable.
        invhide.errors.PathExistsError: ``replace`` is false and ``path`` exists.
        invhide.errors.PathError: ``path`` is not a regular file (a device,
            pipe or socket), or the write failed (disk full...); the message
            names ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
        >>> with atomic_write(target, "w") as file:
        ...     _ = file.write("hello")
        >>> target.read_text()
        'hello'
    """
    shown = os.fspath(path)
    folder = _check_folder(Path(path), shown)
    with atomic_path(path, replace=replace) as temporary:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            descriptor = os.open(temporary, flags, 0o666)  # the umask applies, as for an ordinary new file
        except PermissionError:
            raise AccessError(f"{shown}: cannot write in folder {folder}: permission denied") from None
        except OSError as error:
            raise path_error(
                error, f"{shown}: cannot create a file in {folder}: {error.strerror or describe(error)}"
            ) from None
        with os.fdopen(descriptor, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())


def _holder(lock: Path) -> str:
    """Who holds ``lock``, as the process id it holds, for messages."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(lock.read_text().split()[0])
        return f"process {pid}"
    return "another process"


def _busy(folder: Path, lock: Path) -> PathError:
    return PathError(
        argument=str(folder),
        problem=f"is in use by another invhide run ({_holder(lock)} holds {lock})",
        advice="wait for it to end, or choose another folder",
    )


def _acquire(folder: Path, lock: Path) -> int:
    """Open and lock ``lock`` (created when missing); the descriptor that holds it."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    if fcntl is None:  # pragma: no cover - Windows: whoever creates the file holds the folder
        try:
            return os.open(lock, flags | os.O_EXCL, 0o666)
        except FileExistsError:
            raise _busy(folder, lock) from None
    while True:
        descriptor = os.open(lock, flags, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise _busy(folder, lock) from None
        with contextlib.suppress(FileNotFoundError):  # its holder may have removed it between our open and lock
            if os.path.samestat(os.fstat(descriptor), os.stat(lock)):
                return descriptor
        os.close(descriptor)


@contextlib.contextmanager
def locked_folder(folder: PathLike) -> Iterator[Path]:
    """Hold ``folder`` for the block: another :func:`locked_folder` on it, in any process, is refused at once.

    The lock is the file :data:`LOCK_FILE` in ``folder``, holding the
    process id, locked with ``flock`` (released by the system if the process
    dies, so a lock file left by a killed run does not block the next one)
    and removed when the block ends.

    Yields:
        The lock file's path.

    Raises:
        invhide.errors.PathError: another block holds the folder (the
            message names it and the process holding it).
        FileNotFoundError: the folder does not exist.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with locked_folder(folder):
        ...     with locked_folder(folder):
        ...         pass
        Traceback (most recent call last):
        ...
        invhide.errors.PathError: ... is in use by another invhide run (process ... holds ...); wait for it to end...
    """
    folder = Path(folder)
    lock = folder / LOCK_FILE
    try:
        descriptor = _acquire(folder, lock)
    except PathError:
        raise
    except OSError as error:
        raise path_error(error, f"{folder}: cannot lock the folder: {error.strerror or describe(error)}") from None
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)  # still locked: a process that opened it meanwhile sees it gone and starts again
        os.close(descriptor)
