"""The ``invhide`` command: hide, reveal, train, eval, bench, convert-official, models, steganalysis.

Every subcommand has ``--help``. What goes wrong is reported in one of four
ways:

- **A user error**, an :class:`~invhide.errors.InvhideError` (a missing or
  unreadable file, a bad size, a wrong checkpoint, a device this machine
  lacks, a run that diverged...): one line on stderr, ``invhide: error: ...``,
  and exit status 2; nothing is left half-written. ``--debug`` (or
  ``INVHIDE_DEBUG=1``) prints its traceback first.
- **Out of memory**: one line with what to change (``--tile``,
  ``--batch-size``...), exit status 2.
- **Ctrl-C**: ``invhide: interrupted``, exit status 130; ``invhide train``
  adds where the checkpoint of the last completed step was saved and the
  command that resumes it.
- **Anything else is a bug**, in invhide or below it: the full traceback and
  exit status 1.

Options that argparse itself refuses (an unknown option, ``--tile abc``)
print the usage and exit with status 2, as argparse does. Warnings (an image
converted from grayscale...) are printed as one ``invhide: warning: ...`` line
each.

No command writes over one of its inputs, and none replaces an existing
output file without ``--force`` (:mod:`invhide.cli.common`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

import invhide
from invhide import checks
from invhide.cli import commands, keys, models, steganalysis
from invhide.cli.common import option_type, positive_option, seed_option
from invhide.errors import InputError, InvhideError, describe
from invhide.evaluation.channels import parse as parse_channel
from invhide.evaluation.speed import AUTOCAST_DTYPES, DTYPES, PARTS
from invhide.models.inference import MIN_SECRET_PSNR
from invhide.training.channels import channel as training_channel
from invhide.training.recipes import RECIPES

__all__ = [
    "DEBUG_ENV",
    "MAX_BENCH_BLOCKS",
    "MAX_BENCH_REPEAT",
    "MAX_BENCH_SIDE",
    "MAX_PROCESSES",
    "MAX_STEPS",
    "build_parser",
    "is_out_of_memory",
    "main",
    "run_reporting_errors",
]

DEBUG_ENV = "INVHIDE_DEBUG"
"""Environment variable: set to ``1`` to show the traceback of user errors too (as ``--debug`` does)."""


# --------------------------------------------------------------------------
# Option types: argparse reports their errors (usage line, exit status 2)
# --------------------------------------------------------------------------


def _even_integer(name: str, value: int) -> int:
    """``value`` if it is an even integer >= 2 (an image or crop side)."""
    if checks.integer(name, value, low=2) % 2:
        raise InputError(argument=name, problem=f"must be even, got {value}")
    return value


def _spec(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type``: a channel spec read by ``parse``; its error is argparse's one line for the option."""

    def read(text: str) -> Any:
        try:
            return parse(text)
        except InvhideError as error:
            raise argparse.ArgumentTypeError(describe(error)) from None
        except ImportError as error:  # kornia, for a differentiable JPEG
            raise argparse.ArgumentTypeError(str(error)) from None

    return read


_channel = _spec(parse_channel)
"""``eval --channel``: a real channel (:func:`invhide.evaluation.channels.parse`)."""


def _training_spec(text: str) -> str:
    """The spec of a channel to train through, once :func:`invhide.training.channels.channel` builds it."""
    training_channel(text)
    return text


_training_channel = _spec(_training_spec)
"""``train --channel``: a checked spec of a channel to train through."""


def _path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return Path(text)


def _even_side_within(name: str, value: int, *, high: int) -> int:
    """``value`` if it is an even integer in ``[2, high]`` (an image side a benchmark allocates)."""
    return _even_integer(name, checks.integer(name, value, low=2, high=high))


MAX_PROCESSES = max(64, 4 * (os.cpu_count() or 1))
"""Most data-loading processes (``--workers``) and torch threads (``bench --threads``): 4 per CPU, at least 64."""
MAX_STEPS = 10**8 - 1
"""Most training steps (``train --steps``): checkpoint folders are named with 8 digits, ``step_00001234``."""
MAX_BENCH_SIDE = 8192
"""Largest image side ``invhide bench`` allocates (``--sizes``, ``--train-crop``, ``--crops``)."""
MAX_BENCH_BLOCKS = 1024
"""Most coupling blocks ``invhide bench`` builds (``--blocks``, ``--depths``)."""
MAX_BENCH_REPEAT = 1000
"""Most timed calls per figure ``invhide bench`` makes (``--repeat``)."""

_non_negative = option_type(int, "a non-negative integer", checks.non_negative_int)
_even_side = option_type(int, "an even integer >= 2", _even_integer)
_steps = option_type(int, f"an integer in [1, {MAX_STEPS}]", checks.integer, low=1, high=MAX_STEPS)
_threads = option_type(int, f"an integer in [1, {MAX_PROCESSES}]", checks.integer, low=1, high=MAX_PROCESSES)
_bench_side = option_type(int, f"an even integer in [2, {MAX_BENCH_SIDE}]", _even_side_within, high=MAX_BENCH_SIDE)
_blocks = option_type(int, f"an integer in [1, {MAX_BENCH_BLOCKS}]", checks.integer, low=1, high=MAX_BENCH_BLOCKS)
_repeat = option_type(int, f"an integer in [1, {MAX_BENCH_REPEAT}]", checks.integer, low=1, high=MAX_BENCH_REPEAT)
_positive_float = option_type(float, "a positive finite number", checks.number, low=0, low_open=True)
_decay = option_type(float, "a number in (0, 1)", checks.number, low=0, high=1, low_open=True, high_open=True)
_workers = option_type(
    int, f"an integer in [0, {MAX_PROCESSES}] (data-loading processes)", checks.integer, low=0, high=MAX_PROCESSES
)


# --------------------------------------------------------------------------
# The parser: one function per command
# --------------------------------------------------------------------------

_DEVICE_HELP = "cpu, cuda, cuda:1, mps, ... (default: cuda when available)"
_MODEL_HELP = "model name, file or training-run folder (default: $INVHIDE_MODEL, else the default shipped model)"
_FORCE_HELP = "replace an existing output file (default: refuse); an input is never overwritten"
_IMAGE_OUTPUT = "(.png; also .tif, .tiff, .bmp: lossless formats only)"
_SEED_HELP = (
    "reveal with z drawn from N(0, 1) with this seed, as HiNet's reference code does (default: z zeros, the mean of "
    "those draws, which measures better)"
)
_TILE_ADVICE = "try a smaller --tile (e.g. --tile 512) or --device cpu"
_Subparsers = Any  # what ArgumentParser.add_subparsers() returns


def _command(
    subparsers: _Subparsers, name: str, summary: str, run: Callable[[argparse.Namespace], None], advice: str
) -> argparse.ArgumentParser:
    """Register the subcommand ``name``; it runs ``run``, and ``advice`` is what to do when memory runs out."""
    parser = subparsers.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    parser.set_defaults(run=run, memory_advice=advice)
    return parser


def _add_debug(parser: argparse.ArgumentParser, default: Any) -> None:
    text = f"show the traceback of a user error too (also: {DEBUG_ENV}=1)"
    parser.add_argument("--debug", action="store_true", default=default, help=text)


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    """The options ``hide`` and ``reveal`` share: the model, tiling, the size limit, --force, --quiet, --device."""
    parser.add_argument("--model", help=_MODEL_HELP)
    parser.add_argument(
        "--tile",
        type=positive_option,
        default=1024,
        help="process in tiles of this side, bounding memory (default: 1024)",
    )
    parser.add_argument(
        "--overlap", type=_non_negative, default=64, help="context pixels around each tile (default: 64)"
    )
    parser.add_argument(
        "--max-pixels",
        type=positive_option,
        default=None,
        help="refuse larger images before decoding (default: 67108864, 8192x8192)",
    )
    parser.add_argument("--force", action="store_true", help=_FORCE_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress or summary output (warnings still show)")
    parser.add_argument("--device", help=_DEVICE_HELP)


def _add_hide(subparsers: _Subparsers) -> None:
    hide = _command(subparsers, "hide", "hide SECRET in COVER and write the stego PNG", commands.run_hide, _TILE_ADVICE)
    hide.add_argument("cover", type=_path, help="cover image")
    hide.add_argument("secret", type=_path, help="secret image")
    hide.add_argument(
        "-o",
        "--output",
        type=_path,
        required=True,
        help=f"stego image to write {_IMAGE_OUTPUT}, the cover's size made even: an odd side gains a row or "
        f"column, which carries part of the secret (reveal gives the secret at that size)",
    )
    hide.add_argument(
        "--fit",
        choices=("refuse", "resize", "crop"),
        default="refuse",
        help="a secret of another size than the cover: refuse (default), resize or centre-crop it",
    )
    hide.add_argument(
        "--no-check",
        action="store_true",
        help=f"skip the check (default: reveal the stego as saved, as `invhide reveal` will, and refuse, writing "
        f"nothing, when the stego is its cover or the secret comes back below {MIN_SECRET_PSNR:g} dB PSNR)",
    )
    _add_image_options(hide)
    keys.add_key_options(hide)


def _add_reveal(subparsers: _Subparsers) -> None:
    reveal = _command(subparsers, "reveal", "recover the secret from a stego PNG", commands.run_reveal, _TILE_ADVICE)
    reveal.add_argument("stego", type=_path, help="stego image")
    reveal.add_argument("-o", "--output", type=_path, required=True, help=f"recovered secret to write {_IMAGE_OUTPUT}")
    _add_image_options(reveal)
    reveal.add_argument("--seed", type=seed_option, help=_SEED_HELP)
    reveal.add_argument(
        "--no-check",
        action="store_true",
        help="skip the test that warns when the image holds nothing this model hid (two small reveals; a lossy "
        "file is told from its header all the same)",
    )
    keys.add_key_options(reveal)


def _add_train_recipe_options(parser: argparse.ArgumentParser) -> None:
    """The data, the recipe and the settings that override it."""
    group = parser.add_argument_group("data and recipe")
    group.add_argument("--train-dir", type=_path, help="folder of training photos (default: scikit-image samples)")
    group.add_argument("--val-dir", type=_path, help="folder of evaluation photos (default: held-out samples)")
    group.add_argument(
        "--recipe",
        choices=RECIPES,
        default="paper",
        help="training recipe (default: paper; quick: a small model trained in minutes)",
    )
    group.add_argument("--steps", type=_steps, help=f"optimizer steps, at most {MAX_STEPS} (default: the recipe's)")
    group.add_argument("--crop", type=_even_side, help="training crop side, even (default: the recipe's)")
    group.add_argument("--batch-size", type=positive_option, help="cover/secret pairs per step (default: the recipe's)")
    group.add_argument("--lr", type=_positive_float, help="learning rate (default: the recipe's)")
    group.add_argument(
        "--init",
        metavar="MODEL",
        help="start from this model's weights instead of a fresh model (a fine-tune): a shipped model's name, a "
        "model file or a run folder; its architecture replaces the recipe's",
    )


def _add_train_precision_options(parser: argparse.ArgumentParser) -> None:
    """Rounding to 8 bits, mixed precision, the weight average and memory saving."""
    group = parser.add_argument_group("rounding, precision and memory")
    rounding = group.add_mutually_exclusive_group()
    rounding.add_argument(
        "--quantize",
        dest="quantize",
        action="store_true",
        default=None,
        help="train the reveal on the stego rounded to 8 bits (default for the *-png recipes)",
    )
    rounding.add_argument(
        "--no-quantize",
        dest="quantize",
        action="store_false",
        help="train the reveal on the float stego (default for the other recipes)",
    )
    rounding.add_argument(
        "--quantize-from",
        type=_non_negative,
        metavar="STEP",
        help="train the reveal on the float stego until STEP, then on the stego rounded to 8 bits (a fine-tune)",
    )
    group.add_argument(
        "--channel",
        action="append",
        type=_training_channel,
        metavar="SPEC",
        help="train through a lossy channel in place of the plain rounding (from --quantize-from, else from the "
        "start): jpeg:Q or jpeg:LO-HI (kornia's differentiable JPEG), noise:SIGMA or LO-HI, resize:SCALE or LO-HI, "
        "round; repeat it for one channel per image, drawn with equal chances; evaluate on the real ones "
        "(invhide eval --channel)",
    )
    group.add_argument(
        "--concealing",
        type=_positive_float,
        metavar="WEIGHT",
        help="the concealing loss's weight from the step the reveal starts rounding on (--quantize-from, or the "
        "recipe's; else from the start), in place of the recipe's; a --channel needs more than the cpu recipe's 4 "
        "(the robust model: 16, then 10)",
    )
    group.add_argument(
        "--amp",
        choices=("float32", "bfloat16", "float16", "auto"),
        help="precision of the hide and reveal while training: bfloat16, float16 (GPU only), auto (bfloat16 where "
        "the device computes it natively) or float32 (default: the recipe's)",
    )
    group.add_argument(
        "--ema",
        type=_decay,
        metavar="DECAY",
        help="keep a moving average of the weights with this decay, e.g. 0.999; the average is validated and "
        "saved (default: the recipe's)",
    )
    group.add_argument("--memory-saving", action="store_true", help="recompute activations through the inverse")


def _add_train_run_options(parser: argparse.ArgumentParser) -> None:
    """Evaluation, seeding, the output folder, checkpoints and resuming, the device."""
    group = parser.add_argument_group("run")
    group.add_argument(
        "--eval-size", type=_even_side, default=256, help="evaluation centre-crop side, even (default: 256)"
    )
    group.add_argument("--workers", type=_workers, default=0, help="data-loading processes (default: 0)")
    group.add_argument("--seed", type=seed_option, default=0, help="seeds the model, the data and z (default: 0)")
    group.add_argument("--out", type=_path, default=Path("runs/hinet"), help="output folder (default: runs/hinet)")
    group.add_argument(
        "--checkpoint-every",
        type=_non_negative,
        help="save a checkpoint every N steps; 0: only at the end (and on Ctrl-C) (default: the recipe's)",
    )
    resuming = group.add_mutually_exclusive_group()
    resuming.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in --out; refused when --out holds none",
    )
    resuming.add_argument(
        "--resume-or-start",
        action="store_true",
        help="continue from the newest checkpoint in --out when there is one, else start a new run there",
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="replace model.safetensors, config.json, results.json or figures in --out that no run there wrote "
        "(default: refuse); a previous run's logs and checkpoints are never replaced: --resume continues them",
    )
    group.add_argument("--device", help=_DEVICE_HELP)


def _add_train(subparsers: _Subparsers) -> None:
    train = _command(
        subparsers,
        "train",
        "train a hider with a named recipe and evaluate it (examples/hinet_div2k.py runs this command)",
        commands.run_train,
        "try a smaller --batch-size or --crop, or --memory-saving",
    )
    _add_train_recipe_options(train)
    _add_train_precision_options(train)
    _add_train_run_options(train)


def _add_eval(subparsers: _Subparsers) -> None:
    evaluate = _command(
        subparsers,
        "eval",
        "Table 2 results of a model on a folder of images",
        commands.run_eval,
        "try a smaller --batch-size or --size",
    )
    evaluate.add_argument("folder", type=_path, help="folder of test images, paired i with (i + n/2) mod n")
    evaluate.add_argument("--model", help=_MODEL_HELP)
    evaluate.add_argument("--size", type=_even_side, default=256, help="centre-crop side, even (default: 256)")
    evaluate.add_argument("--batch-size", type=positive_option, default=4, help="pairs per forward pass (default: 4)")
    evaluate.add_argument("--json", type=_path, help="also write every metric, per image, to this JSON file")
    evaluate.add_argument("--force", action="store_true", help=_FORCE_HELP)
    evaluate.add_argument("--device", help=_DEVICE_HELP)
    evaluate.add_argument(
        "--seed", type=seed_option, help=f"{_SEED_HELP}; with --security, seeds the detectors (default: 0)"
    )
    evaluate.add_argument(
        "--channel",
        action="append",
        type=_channel,
        metavar="SPEC",
        help="also measure the stego after a real channel, read back as a receiver would: jpeg:Q, webp:Q (Pillow), "
        "noise:SIGMA (0-255 scale, then 8 bits), resize:SCALE (down and back, bicubic), round; repeatable",
    )
    steganalysis.add_security_options(evaluate)


def _add_bench(subparsers: _Subparsers) -> None:
    bench = _command(
        subparsers,
        "bench",
        "speed and memory figures of hide, reveal and a training step",
        commands.run_bench,
        "try smaller --sizes, --batch, --train-crop, --train-batch or --crops",
    )
    bench.add_argument(
        "--sizes", type=_bench_side, nargs="+", help="inference sizes, even, at most 8192 (default: 256 1024)"
    )
    bench.add_argument("--blocks", type=_blocks, help="coupling blocks for speed, at most 1024 (default: 16)")
    bench.add_argument("--batch", type=positive_option, help="images per inference call (default: 1)")
    bench.add_argument("--train-crop", type=_bench_side, help="training crop side, even (default: 128)")
    bench.add_argument("--train-batch", type=positive_option, help="pairs per training step (default: 4)")
    bench.add_argument("--depths", type=_blocks, nargs="+", help="depths for memory (default: 4 8 16)")
    bench.add_argument("--crops", type=_bench_side, nargs="+", help="crops for memory, even (default: 64 128)")
    bench.add_argument("--repeat", type=_repeat, help="timed calls per figure (median), at most 1000 (default: 3)")
    bench.add_argument("--dtype", choices=DTYPES, default="float32", help="weights and inputs (default: float32)")
    bench.add_argument(
        "--threads", type=_threads, help="torch threads, at most 4 per CPU or 64 (default: torch's choice)"
    )
    bench.add_argument("--compile", action="store_true", help="torch.compile the subnets for the inference figures")
    bench.add_argument(
        "--autocast",
        nargs="*",
        choices=AUTOCAST_DTYPES,
        help="autocast dtypes whose invertibility error to report, none for none (default: bfloat16)",
    )
    bench.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=PARTS,
        help="parts to skip; an option that only sets skipped parts is refused",
    )
    bench.add_argument("--json", type=_path, help="also write the figures to this JSON file")
    bench.add_argument("--force", action="store_true", help=_FORCE_HELP)
    bench.add_argument("--device", help=_DEVICE_HELP)


def _add_convert(subparsers: _Subparsers) -> None:
    convert = _command(
        subparsers,
        "convert-official",
        "import a reference HiNet checkpoint (model.pt)",
        commands.run_convert,
        "free some memory or convert on a machine with more",
    )
    convert.add_argument("checkpoint", type=_path, help="the reference code's .pt file")
    convert.add_argument(
        "-o",
        "--output",
        type=_path,
        required=True,
        help="a .safetensors file, or a folder (created) that receives model.safetensors and config.json",
    )
    convert.add_argument("--force", action="store_true", help=_FORCE_HELP)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``invhide`` command; each subcommand sets ``run`` and ``memory_advice`` defaults.

    Example:
        >>> args = build_parser().parse_args(["train", "--recipe", "quick", "--out", "runs/quick"])
        >>> args.recipe, args.out, args.run.__name__
        ('quick', PosixPath('runs/quick'), 'run_train')
    """
    parser = argparse.ArgumentParser(
        prog="invhide", description="Hide an image inside another with an invertible neural network (HiNet)."
    )
    parser.add_argument("--version", action="version", version=f"invhide {invhide.__version__}")
    _add_debug(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_hide, _add_reveal, _add_train, _add_eval, _add_bench, _add_convert):
        add(subparsers)
    models.add_parser(subparsers)
    keys.add_keygen(subparsers)
    steganalysis.add_parser(subparsers)
    for sub in subparsers.choices.values():  # `invhide hide --debug ...` works too
        _add_debug(sub, default=argparse.SUPPRESS)
    return parser


# --------------------------------------------------------------------------
# Entry point and error policy
# --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``invhide`` command; returns the exit status (0, 1, 2 or 130).

    Example:
        >>> main(["hide", "missing.png", "secret.png", "-o", "stego.png", "--model", "m"])
        2
    """
    if getattr(signal.getsignal(signal.SIGINT), "__module__", None) == "invhide":  # set while the modules loaded
        signal.signal(signal.SIGINT, signal.default_int_handler)  # from here, Ctrl-C is a KeyboardInterrupt
    try:  # Ctrl-C while the parser is built or reads the options: one line too
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.argv = argv  # `invhide train` prints the command that resumes an interrupted run
        debug = args.debug or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    except KeyboardInterrupt:
        print("invhide: interrupted", file=sys.stderr)
        return 130
    return run_reporting_errors(args.run, args, debug=debug, memory_advice=args.memory_advice)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, then each error in its chain of causes (once each, outermost first)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _failed_allocation(error: BaseException) -> bool:
    text = str(error)
    if isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower()):
        return True
    return isinstance(error, torch.OutOfMemoryError | MemoryError)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error``, or an error it wraps, is a failed allocation.

    That is torch's ``OutOfMemoryError``, ``MemoryError`` or the CPU
    allocator's ``RuntimeError``; FrEIA wraps a module's error in a
    ``RuntimeError`` of its own, so the chain of causes is searched too.

    Example:
        >>> is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"))
        True
    """
    return any(_failed_allocation(cause) for cause in _causes(error))


def run_reporting_errors(
    run: Callable[[argparse.Namespace], None],
    args: argparse.Namespace,
    *,
    debug: bool = False,
    memory_advice: str = "",
) -> int:
    """Run a command under the error policy of the module docstring; returns the exit status.

    Args:
        run: the command.
        args: its parsed options.
        debug: also print the traceback of user errors and of running out of memory.
        memory_advice: what to tell the user when memory runs out, e.g.
            ``"try a smaller --tile"``.

    Returns:
        0 on success, 2 for a user error or running out of memory, 130 when
        interrupted, 1 for anything else (after printing its traceback).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _one_line_warning  # type: ignore[assignment]
        try:
            run(args)
        except KeyboardInterrupt as interrupt:
            if debug:
                traceback.print_exc()
            details = " ".join(str(interrupt).split())
            print("invhide: interrupted" + (f": {details}" if details else ""), file=sys.stderr)
            return 130
        except InvhideError as error:
            if debug:
                traceback.print_exc()
            print(f"invhide: error: {describe(error)}", file=sys.stderr)
            return 2
        except Exception as error:
            return _report_failure(error, debug=debug, memory_advice=memory_advice)
    return 0


def _report_failure(error: Exception, *, debug: bool, memory_advice: str) -> int:
    """An error that is no user error: out of memory (one line, status 2) or a bug (the traceback, status 1)."""
    if not is_out_of_memory(error):
        traceback.print_exc()
        print(
            "invhide: unexpected error (the traceback above shows where); "
            "if it looks like a bug in invhide, please report it with that traceback",
            file=sys.stderr,
        )
        return 1
    if debug:
        traceback.print_exc()
    innermost = [cause for cause in _causes(error) if _failed_allocation(cause)][-1]
    first = ". ".join(describe(innermost).split(". ")[:2]).rstrip(".")
    advice = f"; {memory_advice}" if memory_advice else ""
    print(f"invhide: error: out of memory ({first}){advice}", file=sys.stderr)
    return 2


def _one_line_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    print(f"invhide: warning: {describe(message) if isinstance(message, BaseException) else message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
