"""Key files: a key's 32 raw bytes in a file only its owner can read.

:func:`write_key_file` creates the file exclusively (it never replaces one)
with mode ``0600``; :func:`read_key_file` refuses a file that other users may
read or write, or that does not hold exactly 32 bytes, so a key that leaked
through its permissions is not used unnoticed. Keys are never logged, printed
or written anywhere else by invhide.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "key"
    >>> write_key_file(path, bytes(range(32)))
    >>> oct(path.stat().st_mode & 0o777), read_key_file(path) == bytes(range(32))
    ('0o600', True)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from invhide.errors import AccessError, FileFormatError, PathExistsError, path_error
from invhide.nn.keys import KEY_BYTES

__all__ = ["read_key_file", "write_key_file"]


def write_key_file(path: str | os.PathLike[str], key: bytes) -> None:
    """Write ``key`` to a new file of mode ``0600``; an existing path is never replaced.

    Raises:
        invhide.errors.PathExistsError: ``path`` exists (a file, a folder or a link).
        invhide.errors.InputError: ``key`` is not 32 bytes.
        invhide.errors.PathError: the folder is missing or not writable.
    """
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise FileFormatError(f"a key must be {KEY_BYTES} bytes")
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise PathExistsError(f"{path}: already exists; a key file is never replaced (choose another name)") from None
    except OSError as error:
        raise path_error(error, f"{path}: cannot create the key file ({error.strerror})") from None
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        written = os.write(descriptor, key)
        os.fsync(descriptor)
    except OSError as error:
        os.close(descriptor)
        path.unlink(missing_ok=True)
        raise path_error(error, f"{path}: cannot write the key file ({error.strerror})") from None
    os.close(descriptor)
    if written != KEY_BYTES:  # pragma: no cover - a short write of 32 bytes to a regular file
        path.unlink(missing_ok=True)
        raise FileFormatError(f"{path}: the key file was not written whole")


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The key in ``path``: a regular file of exactly 32 bytes that only its owner may read or write.

    Raises:
        invhide.errors.MissingPathError: no such file.
        invhide.errors.AccessError: group or others may read or write it
            (``chmod 600`` it, or make a new key: it may have leaked).
        invhide.errors.FileFormatError: not a regular file, or not 32 bytes.
    """
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise path_error(error, f"{path}: cannot open the key file ({error.strerror})") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise FileFormatError(f"{path}: not a regular file, so not a key file")
        if info.st_mode & 0o077:
            raise AccessError(
                f"{path}: other users may read or change this key file (mode {oct(info.st_mode & 0o777)}); "
                f"run chmod 600 on it, or make a new key if it may have leaked"
            )
        data = os.read(descriptor, KEY_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) != KEY_BYTES:
        what = f"{KEY_BYTES + 1} or more" if len(data) > KEY_BYTES else str(len(data))
        raise FileFormatError(f"{path}: a key file holds exactly {KEY_BYTES} bytes, this one {what}")
    return data
