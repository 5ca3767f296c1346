"""``invhide models``, and which model ``hide``, ``reveal`` and ``eval`` use.

- :func:`add_parser` registers the ``invhide models`` command, which lists
  the models of the model zoo (:mod:`invhide.models.zoo`): name, whether it
  is keyed, headline, and which is the default.
- :func:`choose_model` decides which model a command uses: ``--model`` when
  given, else ``$INVHIDE_MODEL``, else the default shipped model, else it
  refuses in one line that says how to get a model.
- :func:`find_model` finds that choice (:func:`invhide.models.zoo.find`: a
  published name, a path, or a model file or run folder in
  ``$INVHIDE_MODELS_DIR``) without loading it, so that a command can check
  its outputs against the model's files first; :meth:`FoundModel.load` loads
  it, refuses a model that hides nothing, and announces on stderr, in one
  line, when it falls back to the default model. Their errors name where
  the model came from: ``--model``, ``$INVHIDE_MODEL`` or the default;
  :func:`blaming` names it as the cause of a
  :class:`~invhide.errors.ModelError` (NaN outputs) too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from invhide.cli.common import DEFAULT_MODEL_ENV
from invhide.errors import FileFormatError, InputError, InvhideError, MissingPathError, ModelError, describe
from invhide.models import zoo
from invhide.models.inference import hides_nothing

__all__ = [
    "NO_MODEL_HINT",
    "FoundModel",
    "ModelChoice",
    "add_parser",
    "blaming",
    "choose_model",
    "find_model",
    "run_models",
]

NO_MODEL_HINT = "train one with `invhide train --recipe quick --out runs/quick` and pass --model runs/quick"
"""What to do when no model is given and none ships, as the end of a message."""

Origin = Literal["--model", "$INVHIDE_MODEL", "default"]


@dataclass(frozen=True)
class ModelChoice:
    """The model a command will use, and where that choice came from.

    Attributes:
        spec: a shipped model's name, or a path (as given).
        origin: ``"--model"``, ``"$INVHIDE_MODEL"`` or ``"default"`` (the
            default shipped model).
    """

    spec: str
    origin: Origin

    @property
    def described(self) -> str:
        """The choice as error messages name it: ``--model X``, ``$INVHIDE_MODEL=X`` or ``the default model X``.

        Example:
            >>> ModelChoice("runs/quick", "$INVHIDE_MODEL").described
            '$INVHIDE_MODEL=runs/quick'
        """
        if self.origin == "--model":
            return f"--model {self.spec}"
        if self.origin == "default":
            return f"the default model {self.spec}"
        return f"{self.origin}={self.spec}"


def choose_model(
    option: str | None, *, environ: Mapping[str, str] | None = None, folder: str | os.PathLike[str] | None = None
) -> ModelChoice:
    """The model of a command: ``--model``, else ``$INVHIDE_MODEL``, else the default shipped model.

    An empty or blank ``$INVHIDE_MODEL`` counts as unset.

    Args:
        option: the value of ``--model`` (``None`` when not given).
        environ: the environment (default: ``os.environ``).
        folder: the model folder (default: :func:`invhide.models.zoo.models_dir`).

    Raises:
        invhide.errors.InputError: ``--model`` is empty, or nothing was given
            and no default model ships (the message says how to train one).
        invhide.io.checkpoint.CheckpointError: a shipped record is not valid.

    Example:
        >>> choose_model("runs/quick")
        ModelChoice(spec='runs/quick', origin='--model')
        >>> choose_model(None, environ={"INVHIDE_MODEL": "m.safetensors"})
        ModelChoice(spec='m.safetensors', origin='$INVHIDE_MODEL')
    """
    if option is not None:
        if not option.strip():
            raise InputError("--model is empty: pass a shipped model's name, a .safetensors file or a run folder")
        return ModelChoice(option, "--model")
    environ = os.environ if environ is None else environ
    value = environ.get(DEFAULT_MODEL_ENV, "")
    if value.strip():
        return ModelChoice(value, "$INVHIDE_MODEL")
    name = zoo.default_name(folder)
    if name is not None:
        return ModelChoice(name, "default")
    raise InputError(
        f"no model given, and no default model ({zoo.contents(folder)}): pass --model NAME_OR_PATH "
        f"(a .safetensors file or a training run's folder) or set ${DEFAULT_MODEL_ENV}; {NO_MODEL_HINT}"
    )


def _looks_like_a_path(spec: str) -> bool:
    """Whether ``spec`` cannot be a model name: it has a folder separator, a suffix or a ``~``."""
    return "/" in spec or os.sep in spec or "." in spec or spec.startswith("~")


def _find(choice: ModelChoice, folder: str | os.PathLike[str] | None) -> str | Path:
    """:func:`invhide.models.zoo.find` for ``choice``, refusing what cannot be a model file; errors name the choice."""
    spec = choice.spec
    path = Path(spec).expanduser()
    if spec not in zoo.names(folder):
        if os.path.lexists(path) and not path.exists():
            raise MissingPathError(f"{choice.described}: a symbolic link to nothing ({os.readlink(path)})")
        if path.exists() and not path.is_file() and not path.is_dir():
            raise FileFormatError(f"{choice.described}: not a regular file (a device, pipe or socket)")
        if _looks_like_a_path(spec) and not path.exists():
            raise MissingPathError(f"{choice.described}: no such file or folder")
    try:
        return zoo.find(spec, folder)
    except MissingPathError:
        where = zoo.contents(folder)
        raise MissingPathError(f"{choice.described}: not a model name ({where}), nor a file or folder") from None


_PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl")


@dataclass(frozen=True)
class FoundModel:
    """A model that exists, not yet loaded: where the choice came from and what it names.

    Attributes:
        choice: the :class:`ModelChoice`.
        source: a shipped model's name (a string), or an existing file or folder.
        folder: the model folder (``None``: :func:`invhide.models.zoo.models_dir`).
    """

    choice: ModelChoice
    source: str | Path
    folder: str | os.PathLike[str] | None = None

    @property
    def files(self) -> list[tuple[str, Path]]:
        """The files loading reads, each with how messages name it (for the no-overwrite check).

        A shipped model's weights and record, a file itself, or a run
        folder's ``model.safetensors`` and ``config.json``.
        """
        shown = f"model ({self.choice.described})"
        if isinstance(self.source, str):
            entry = zoo.models_dir(self.folder) / f"{self.source}"
            return [(shown, entry.with_suffix(".safetensors")), (shown, entry.with_suffix(".json"))]
        if self.source.is_dir():
            return [(shown, self.source / "model.safetensors"), (shown, self.source / "config.json")]
        return [(shown, self.source)]

    def load(self, device: Any, *, stderr: TextIO | None = None) -> Any:
        """The model on ``device``, in eval mode, refused when it hides nothing.

        Raises:
            invhide.errors.InvhideError: a PyTorch pickle, a model file that
                is not valid (named after :attr:`choice`), or a model whose
                stego ignores the secret
                (:func:`invhide.models.inference.hides_nothing`, a
                :class:`~invhide.errors.ModelError`).
        """
        choice, found = self.choice, self.source
        try:
            if isinstance(found, Path) and found.suffix.lower() in _PICKLE_SUFFIXES:
                raise FileFormatError(
                    f"{found}: a PyTorch pickle, which invhide does not load (it could run code); if it is a "
                    f"reference HiNet checkpoint, convert it: invhide convert-official {found} -o "
                    f"{found.with_suffix('.safetensors')}"
                )
            model = zoo.load(found, map_location=device, folder=self.folder)
        except InvhideError as error:
            raise type(error)(_naming_origin(describe(error), choice)) from error
        with blaming(choice):  # a model whose outputs overflow fails the probe already
            nothing = hides_nothing(model)
        if nothing:
            raise ModelError(
                f"{choice.described} hides nothing: its weights leave hide the identity (a freshly initialised "
                f"model?); train it first"
            )
        if choice.origin == "default":
            headline = zoo.record(choice.spec, self.folder).headline
            print(
                f"invhide: using the default model {choice.spec} ({headline}); choose another with --model or "
                f"${DEFAULT_MODEL_ENV}",
                file=stderr if stderr is not None else sys.stderr,
            )
        return model


def find_model(
    option: str | None,
    *,
    environ: Mapping[str, str] | None = None,
    folder: str | os.PathLike[str] | None = None,
) -> FoundModel:
    """The model a command will use (:func:`choose_model`), found but not loaded.

    A published name, else a path, else a model file ``NAME.safetensors`` or
    a run folder ``NAME/`` in the model folder (``$INVHIDE_MODELS_DIR``), as
    :func:`invhide.models.zoo.find` decides; :meth:`FoundModel.load` loads it.

    Raises:
        invhide.errors.InputError: nothing given and no default model.
        invhide.errors.MissingPathError: nothing found; the message starts
            with where the model came from (``--model X``,
            ``$INVHIDE_MODEL=X`` or ``the default model X``).
    """
    choice = choose_model(option, environ=environ, folder=folder)
    return FoundModel(choice, _find(choice, folder), folder)


@contextmanager
def blaming(choice: ModelChoice) -> Iterator[None]:
    """Name the model as the cause of a :class:`~invhide.errors.ModelError` raised in the block.

    Example:
        >>> with blaming(ModelChoice("m.safetensors", "--model")):
        ...     raise ModelError("the model turned finite inputs into NaN")
        Traceback (most recent call last):
        ...
        invhide.errors.ModelError: --model m.safetensors: the model turned finite inputs into NaN
    """
    try:
        yield
    except ModelError as error:
        raise ModelError(f"{choice.described}: {describe(error)}") from error


def _naming_origin(message: str, choice: ModelChoice) -> str:
    """``message`` prefixed with where the model came from, the spec not repeated when the message starts with it."""
    if message.startswith(choice.described):
        return message
    if choice.origin != "default" and message.startswith(str(Path(choice.spec).expanduser())):
        return f"{choice.origin}: {message}"
    return f"{choice.described}: {message}"


def run_models(args: argparse.Namespace) -> None:
    """``invhide models [NAME] [--json]``: list the shipped models, or print one model's record."""
    if args.name is not None:
        print(json.dumps(zoo.record(args.name).to_dict(), indent=2))
        return
    records = zoo.available()
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return
    if not records:
        print(f"{zoo.contents()}; {NO_MODEL_HINT}")
        return
    width = max(len(r.name) for r in records)
    files = {r.name: "+".join(r.trained_channels) for r in records}
    files_width = max(len(f) for f in files.values())
    for entry in records:
        keyed = "keyed  " if entry.architecture.get("keyed", False) else "no key "
        shown = f"{entry.name:<{width}}  {keyed} {files[entry.name]:<{files_width}}  {entry.headline}"
        print(f"{'*' if entry.default else ' '} {shown}")
    if any(r.default for r in records):
        print(f"* the default of hide, reveal and eval (when neither --model nor ${DEFAULT_MODEL_ENV} is given)")
    print("keyed: hides under a key (invhide keygen, --key-file); no key: anyone with invhide can reveal its secrets")
    print("lossless, jpeg: the stego files it was trained to reveal from (see the Robustness page)")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``invhide models`` on ``commands``, what ``parser.add_subparsers()`` returned; returns its parser.

    Example:
        >>> parser = argparse.ArgumentParser(prog="invhide")
        >>> sub = add_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["models", "--json"])
        >>> args.run is run_models, args.json, args.name
        (True, True, None)
    """
    summary = "list the trained models that ship with invhide, or show one's record"
    sub = commands.add_parser("models", help=summary, description=summary[0].upper() + summary[1:] + ".")
    sub.set_defaults(run=run_models, memory_advice="")
    sub.add_argument("name", nargs="?", help="a model's name: print its whole record (JSON)")
    sub.add_argument("--json", action="store_true", help="print every record as JSON")
    return sub
