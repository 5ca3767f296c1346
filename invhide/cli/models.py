"""``invhide models``, and which model ``hide``, ``reveal`` and ``eval`` use.

- :func:`add_parser` registers the ``invhide models`` command, which lists
  the trained models that ship with invhide (:mod:`invhide.models.registry`):
  name, headline, and which is the default.
- :func:`choose_model` decides which model a command uses: ``--model`` when
  given, else ``$INVHIDE_MODEL``, else the default shipped model, else it
  refuses in one line that says how to get a model.
- :func:`load_model` loads that choice, a shipped name or a path (or a name in
  ``$INVHIDE_MODELS``), and announces on stderr, in one line, when it falls
  back to the default model. Its errors name where the model came from:
  ``--model``, ``$INVHIDE_MODEL`` or the default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from invhide.cli.common import DEFAULT_MODEL_ENV, MODELS_ENV, models_folder
from invhide.errors import FileFormatError, InputError, InvhideError, MissingPathError, describe

__all__ = ["NO_MODEL_HINT", "ModelChoice", "add_parser", "choose_model", "load_model", "run_models"]

NO_MODEL_HINT = "train one with `invhide train --quick --out runs/quick` and pass --model runs/quick"
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
        folder: the registry folder (default:
            :func:`invhide.models.registry.models_dir`).

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
    from invhide.models.registry import default_name

    if option is not None:
        if not option.strip():
            raise InputError("--model is empty: pass a shipped model's name, a .safetensors file or a run folder")
        return ModelChoice(option, "--model")
    environ = os.environ if environ is None else environ
    value = environ.get(DEFAULT_MODEL_ENV, "")
    if value.strip():
        return ModelChoice(value, "$INVHIDE_MODEL")
    name = default_name(folder)
    if name is not None:
        return ModelChoice(name, "default")
    raise InputError(
        f"no model given, and no trained model ships with this installation yet: pass --model NAME_OR_PATH "
        f"(a .safetensors file or a training run's folder) or set ${DEFAULT_MODEL_ENV}; {NO_MODEL_HINT}"
    )


def _find(choice: ModelChoice, folder: str | os.PathLike[str] | None) -> str | Path:
    """A shipped name (as a string) or an existing path for ``choice``; raises when there is neither."""
    from invhide.models import registry

    spec = choice.spec
    if spec in registry.names(folder):
        return spec
    path = Path(spec).expanduser()
    if path.exists():
        return path
    cache = models_folder()
    for candidate in (cache / spec, cache / f"{spec}.safetensors"):
        if candidate.exists():
            return candidate
    shipped = ", ".join(registry.names(folder)) or "none yet"
    raise MissingPathError(
        f"{choice.described}: no model named {spec!r} ships with invhide (shipped: {shipped}) or is in {cache} "
        f"(${MODELS_ENV}), and no such file or folder"
    )


def load_model(
    option: str | None,
    device: Any,
    *,
    environ: Mapping[str, str] | None = None,
    folder: str | os.PathLike[str] | None = None,
    stderr: TextIO | None = None,
) -> Any:
    """The model of a command (:func:`choose_model`) on ``device``, in eval mode.

    A shipped name is loaded by :func:`invhide.models.registry.load` (its
    SHA-256 checked); anything else is a path, or a name in
    ``$INVHIDE_MODELS`` (default ``~/.cache/invhide/models``), loaded by
    :func:`invhide.io.checkpoint.load`. Falling back to the default model is
    announced in one line on ``stderr``.

    Args:
        option: the value of ``--model`` (``None`` when not given).
        device: where the weights go.
        environ: the environment (default: ``os.environ``).
        folder: the registry folder (default:
            :func:`invhide.models.registry.models_dir`).
        stderr: where the announcement goes (default: ``sys.stderr``).

    Raises:
        invhide.errors.InvhideError: nothing to load, nothing found, a PyTorch
            pickle, or a model file that is not valid; the message starts
            with where the model came from (``--model X``,
            ``$INVHIDE_MODEL=X`` or ``the default model X``).
    """
    from invhide.io.checkpoint import load as load_path
    from invhide.models import registry

    choice = choose_model(option, environ=environ, folder=folder)
    try:
        found = _find(choice, folder)
        if isinstance(found, str):
            model = registry.load(found, map_location=device, folder=folder)
        elif found.suffix in (".pt", ".pth"):
            raise FileFormatError(
                f"{found}: a PyTorch pickle, which invhide does not load (it could run code); if it is a reference "
                f"HiNet checkpoint, convert it: invhide convert-official {found} -o DIR"
            )
        else:
            model = load_path(found, map_location=device)
    except InvhideError as error:
        raise type(error)(_naming_origin(describe(error), choice)) from error
    if choice.origin == "default":
        headline = registry.record(choice.spec, folder).headline
        print(
            f"invhide: using the default model {choice.spec} ({headline}); choose another with --model or "
            f"${DEFAULT_MODEL_ENV}",
            file=stderr if stderr is not None else sys.stderr,
        )
    return model


def _naming_origin(message: str, choice: ModelChoice) -> str:
    """``message`` prefixed with where the model came from, the spec not repeated when the message starts with it."""
    if message.startswith(choice.described):
        return message
    if choice.origin != "default" and message.startswith(str(Path(choice.spec).expanduser())):
        return f"{choice.origin}: {message}"
    return f"{choice.described}: {message}"


def run_models(args: argparse.Namespace) -> None:
    """``invhide models [NAME] [--json]``: list the shipped models, or print one model's record."""
    from invhide.models import registry

    if args.name is not None:
        print(json.dumps(registry.record(args.name).to_dict(), indent=2))
        return
    records = registry.available()
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return
    if not records:
        print(f"no trained models ship with this installation yet (none in {registry.models_dir()}); {NO_MODEL_HINT}")
        return
    width = max(len(r.name) for r in records)
    for entry in records:
        print(f"{'*' if entry.default else ' '} {entry.name:<{width}}  {entry.headline}")
    if any(r.default for r in records):
        print(f"* the default of hide, reveal and eval (when neither --model nor ${DEFAULT_MODEL_ENV} is given)")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``invhide models`` on the ``invhide`` command's subparsers; returns its parser.

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
