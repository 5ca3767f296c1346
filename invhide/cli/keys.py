"""Keys on the command line: ``invhide keygen``, and the key of ``hide`` and ``reveal``.

A key never appears in a command's arguments (where other users see it in
the process list and the shell keeps it in its history). ``hide`` and
``reveal`` take it from, in this order:

- ``--key-file FILE``: a key file made by ``invhide keygen`` (32 random
  bytes, mode ``0600``; :func:`invhide.io.keyfiles.read_key_file` refuses one
  that others may read);
- ``--passphrase``: a passphrase typed at a prompt (or one line of standard
  input when it is not a terminal), stretched with scrypt
  (:func:`invhide.nn.keys.from_passphrase`);
- ``$INVHIDE_KEY_FILE``: a key file, when neither option is given.

A keyed model given no key uses the published
:data:`~invhide.models.hider.PUBLIC_KEY` and says so in one line: anyone can
then reveal. An unkeyed model given a key refuses in one line: the key would
protect nothing. A wrong key is never detected: it reveals an image unrelated
to the secret, and the command succeeds, so that a reveal tells no one whether
a key was right.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from invhide.errors import InputError, InvhideError, describe
from invhide.io.keyfiles import read_key_file, write_key_file
from invhide.models.hider import PUBLIC_KEY
from invhide.nn.keys import from_passphrase, generate

__all__ = ["KEY_FILE_ENV", "add_key_options", "add_keygen", "command_key", "run_keygen"]

KEY_FILE_ENV = "INVHIDE_KEY_FILE"
"""Environment variable: the key file of ``hide`` and ``reveal`` when neither ``--key-file`` nor ``--passphrase``."""

_KEY_OPTIONS = f"--key-file, --passphrase or ${KEY_FILE_ENV}"


def add_key_options(parser: argparse.ArgumentParser) -> None:
    """``--key-file`` and ``--passphrase`` (one or the other) on ``hide`` or ``reveal``."""
    group = parser.add_argument_group("key (keyed models; `invhide models` marks them)")
    given = group.add_mutually_exclusive_group()
    given.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help=f"the key, a file made by `invhide keygen` (default: ${KEY_FILE_ENV} when set, else the public key, "
        f"with which anyone can reveal)",
    )
    given.add_argument(
        "--passphrase",
        action="store_true",
        help="ask for a passphrase (read from the terminal, or one line of standard input) and stretch it into "
        "the key with scrypt",
    )


def add_keygen(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``invhide keygen -o FILE`` on ``subparsers``; returns its parser."""
    summary = "make a random 32-byte key file for keyed hiding (mode 0600, never over an existing file)"
    keygen = subparsers.add_parser("keygen", help=summary, description=summary[0].upper() + summary[1:] + ".")
    keygen.set_defaults(run=run_keygen, memory_advice="")
    keygen.add_argument("-o", "--output", type=Path, required=True, help="the key file to create")
    keygen.add_argument("--quiet", action="store_true", help="print nothing on success")
    return keygen


def run_keygen(args: argparse.Namespace) -> None:
    """``invhide keygen -o FILE``: 32 bytes from the operating system's CSPRNG, written to a new ``0600`` file."""
    write_key_file(args.output, generate())
    if not args.quiet:
        print(
            f"wrote {args.output}: a random 32-byte key that only you can read (mode 0600); hide and reveal with "
            f"--key-file {args.output}, and give it to the receiver by a channel no one else can read"
        )


def _passphrase(confirm: bool, stdin: TextIO) -> bytes:
    """The key of a passphrase typed at the terminal (twice with ``confirm``), or read as one line of ``stdin``."""
    if stdin.isatty():
        text = getpass.getpass("invhide: passphrase: ")
        if confirm and getpass.getpass("invhide: the passphrase again: ") != text:
            raise InputError(argument="--passphrase", problem="the two passphrases typed differ; nothing was done")
    else:
        text = stdin.readline().rstrip("\n").rstrip("\r")
    if not text:
        raise InputError(argument="--passphrase", problem="is empty; type a passphrase, or use --key-file")
    return from_passphrase(text)


def _key_source(
    args: argparse.Namespace, environ: Mapping[str, str], confirm: bool, stdin: TextIO
) -> tuple[str, Callable[[], bytes]] | None:
    """Where the key comes from, as messages name it, and how to read it; ``None`` when no key is given."""
    if args.key_file is not None:
        return f"--key-file {args.key_file}", lambda: read_key_file(args.key_file)
    if args.passphrase:
        return "--passphrase", lambda: _passphrase(confirm, stdin)
    value = environ.get(KEY_FILE_ENV, "")
    if not value.strip():
        return None

    def read() -> bytes:
        try:
            return read_key_file(value)
        except InvhideError as error:
            raise type(error)(f"${KEY_FILE_ENV}: {describe(error)}") from None

    return f"${KEY_FILE_ENV}={value}", read


def command_key(
    args: argparse.Namespace,
    model: Any,
    described: str,
    *,
    confirm: bool,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
) -> bytes | None:
    """The key ``hide`` (``confirm``: a passphrase is typed twice) or ``reveal`` uses with ``model``.

    ``None`` for an unkeyed model; for a keyed one, the key given, or
    :data:`~invhide.models.hider.PUBLIC_KEY` with a one-line note on stderr
    when none is.

    Raises:
        invhide.errors.InputError: a key for an unkeyed model (named by where
            it came from), an empty or mistyped passphrase.
        invhide.errors.InvhideError: a key file that is missing, readable by
            others, or not 32 bytes (:func:`~invhide.io.keyfiles.read_key_file`).
    """
    environ = os.environ if environ is None else environ
    source = _key_source(args, environ, confirm, sys.stdin if stdin is None else stdin)
    if not getattr(model, "keyed", False):
        if source is not None:
            raise InputError(
                f"{source[0]}: {described} is not keyed: it hides without a key, so a key would protect nothing "
                f"(drop the key, or choose a keyed model: `invhide models` marks them)"
            )
        return None
    if source is None:
        print(
            f"invhide: note: {described} is keyed and no key was given ({_KEY_OPTIONS}): it uses the public key, "
            f"with which anyone can reveal",
            file=sys.stderr,
        )
        return PUBLIC_KEY
    return source[1]()
