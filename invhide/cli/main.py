"""The ``invhide`` command: hide, reveal, train, eval, bench, convert-official.

Every subcommand has ``--help``. A user error (a missing or unreadable file,
a bad size, a wrong checkpoint...) ends the command with one line on stderr,
``invhide: error: ...``, and exit status 2; nothing is left half-written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_train_arguments", "main", "resolve_model", "run_reporting_errors", "run_train"]

_MODELS_ENV = "INVHIDE_MODELS"
_DEFAULT_MODEL_ENV = "INVHIDE_MODEL"


class UserError(Exception):
    """A problem with the user's input, reported as one line."""


# --------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _device(name: str | None) -> Any:
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r}: not a device (expected cpu, cuda, cuda:1, mps, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    return device


def _models_folder() -> Path:
    return Path(os.environ.get(_MODELS_ENV, Path.home() / ".cache" / "invhide" / "models"))


def resolve_model(spec: str | None) -> Path:
    """Find a model from ``--model``: a file or run folder, or a name in ``$INVHIDE_MODELS``.

    Without ``--model``, ``$INVHIDE_MODEL`` is used.

    Raises:
        UserError: nothing given, or nothing found.
    """
    spec = spec or os.environ.get(_DEFAULT_MODEL_ENV)
    if not spec:
        raise UserError(
            "no model given: pass --model PATH (a .safetensors file or a training run's folder) or set "
            f"${_DEFAULT_MODEL_ENV}; train one with `invhide train --quick --out runs/quick`"
        )
    path = Path(spec).expanduser()
    if path.exists():
        return path
    folder = _models_folder()
    for candidate in (folder / spec, folder / f"{spec}.safetensors"):
        if candidate.exists():
            return candidate
    raise UserError(f"--model {spec}: no such file or folder, and no model named {spec!r} in {folder}")


def _load_model(spec: str | None, device: Any) -> Any:
    from invhide.io.checkpoint import load

    path = resolve_model(spec)
    if path.suffix in (".pt", ".pth"):
        raise UserError(
            f"{path}: a PyTorch pickle, which invhide does not load (it could run code); "
            f"if it is a reference HiNet checkpoint, convert it: invhide convert-official {path} -o DIR"
        )
    return load(path, map_location=device)


def _read(path: Path, max_pixels: int | None) -> Any:
    from invhide.io.images import read_image

    return read_image(path, max_pixels=max_pixels)


def _check_output(path: Path) -> None:
    if path.suffix.lower() != ".png":
        raise UserError(f"{path}: write the image as .png (lossless); other formats would destroy hidden data")
    _check_folder(path)


def _add_common(parser: argparse.ArgumentParser, seed: bool = False) -> None:
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    if seed:
        parser.add_argument("--seed", type=int, default=0, help="seeds the random z of the reveal (default: 0)")


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model file, training-run folder or name (default: $INVHIDE_MODEL)")
    parser.add_argument(
        "--tile", type=_positive, default=1024, help="process in tiles of this side, bounding memory (default: 1024)"
    )
    parser.add_argument("--overlap", type=int, default=64, help="context pixels around each tile (default: 64)")
    parser.add_argument(
        "--max-pixels", type=_positive, default=None, help="refuse larger images before decoding (default: 67 MP)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress or summary output")


# --------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------


def _max_pixels(args: argparse.Namespace) -> int:
    from invhide.io.images import DEFAULT_MAX_PIXELS

    return args.max_pixels or DEFAULT_MAX_PIXELS


def run_hide(args: argparse.Namespace) -> None:
    from invhide.evaluation.metrics import psnr
    from invhide.io.images import write_image
    from invhide.models.inference import hide
    from invhide.nn.functional import quantize_8bit

    _check_output(args.output)
    device = _device(args.device)
    cover = _read(args.cover, _max_pixels(args)).to(device)
    secret = _read(args.secret, _max_pixels(args)).to(device)
    model = _load_model(args.model, device)
    tiling = dict(tile=_even(args.tile), overlap=_even(args.overlap), progress=not args.quiet)
    stego = hide(model, cover, secret, fit=args.fit, **tiling)
    write_image(stego, args.output)
    if not args.quiet:
        quality = psnr(quantize_8bit(stego)[None].float(), cover[None].float()).item()
        height, width = stego.shape[-2:]
        print(f"wrote {args.output} ({width}x{height}); cover/stego PSNR {quality:.2f} dB as saved (8-bit)")


def _even(value: int) -> int:
    return value + value % 2


def run_reveal(args: argparse.Namespace) -> None:
    import torch

    from invhide.io.images import write_image
    from invhide.models.inference import reveal

    _check_output(args.output)
    device = _device(args.device)
    stego = _read(args.stego, _max_pixels(args)).to(device)
    model = _load_model(args.model, device)
    generator = torch.Generator(device).manual_seed(args.seed)
    tiling = dict(tile=_even(args.tile), overlap=_even(args.overlap), progress=not args.quiet)
    secret = reveal(model, stego, generator=generator, **tiling)
    write_image(secret, args.output)
    if not args.quiet:
        print(f"wrote {args.output} ({secret.shape[-1]}x{secret.shape[-2]})")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``invhide train`` and ``examples/hinet_div2k.py``."""
    parser.add_argument("--train-dir", type=Path, help="folder of training photos (default: scikit-image samples)")
    parser.add_argument("--val-dir", type=Path, help="folder of evaluation photos (default: held-out samples)")
    parser.add_argument(
        "--preset", choices=("paper", "reference-code"), default="paper", help="loss weights and crops (default: paper)"
    )
    parser.add_argument("--quick", action="store_true", help="a small model trained in minutes on a CPU")
    parser.add_argument("--steps", type=_positive, help="optimizer steps (default: the recipe's)")
    parser.add_argument("--crop", type=_positive, help="training crop side (default: the recipe's)")
    parser.add_argument("--batch-size", type=_positive, help="cover/secret pairs per step (default: the recipe's)")
    parser.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    rounding = parser.add_mutually_exclusive_group()
    rounding.add_argument(
        "--quantize",
        dest="quantize",
        action="store_true",
        default=None,
        help="train the reveal on the stego rounded to 8 bits (default for the HiNet presets)",
    )
    rounding.add_argument(
        "--no-quantize",
        dest="quantize",
        action="store_false",
        help="train the reveal on the float stego (default for --quick)",
    )
    parser.add_argument("--memory-saving", action="store_true", help="recompute activations through the inverse")
    parser.add_argument("--eval-size", type=_positive, default=256, help="evaluation centre-crop side (default: 256)")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes (default: 0)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the model, the data and z (default: 0)")
    parser.add_argument("--out", type=Path, default=Path("runs/hinet"), help="output folder (default: runs/hinet)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")


def run_train(args: argparse.Namespace) -> None:
    """Train and evaluate as ``invhide train`` / ``examples/hinet_div2k.py`` do."""
    from invhide.training.recipes import recipe, train_and_evaluate

    overrides = dict(steps=args.steps, crop=args.crop, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    if args.quantize is not None:
        overrides["quantize"] = args.quantize
    if args.memory_saving:
        overrides["memory_saving"] = True
    chosen = recipe("quick" if args.quick else args.preset, num_workers=args.workers, **overrides)
    device = _device(args.device) if args.device else None
    import torch.distributed as dist

    try:
        report = train_and_evaluate(
            chosen, args.out, train_source=args.train_dir, val_source=args.val_dir, eval_size=args.eval_size,
            device=device, resume=args.resume,
        )  # fmt: skip
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if report.evaluation is None:  # a rank other than 0 under torchrun
        return
    print(f"\nevaluation on {report.evaluation.num_pairs} held-out pairs ({report.evaluation_seconds:.0f} s):")
    print(report.evaluation.format())
    print("\nwrote " + ", ".join(str(path) for path in report.files.values()))


def run_eval(args: argparse.Namespace) -> None:
    import torch

    from invhide.evaluation.metrics import evaluate
    from invhide.io.datasets import evaluation_pairs

    device = _device(args.device)
    model = _load_model(args.model, device)
    pairs = evaluation_pairs(args.folder, size=args.size)
    generator = torch.Generator(device).manual_seed(args.seed)
    evaluation = evaluate(model, pairs, batch_size=args.batch_size, device=device, generator=generator)
    print(evaluation.format())
    if args.json is not None:
        from invhide.io.files import atomic_write

        with atomic_write(args.json, "w") as file:
            json.dump(evaluation.to_dict(per_image=True), file, indent=2)


def run_convert(args: argparse.Namespace) -> None:
    from invhide.io.checkpoint import save
    from invhide.models.hinet import HiNet

    model = HiNet.from_official_checkpoint(args.checkpoint)
    path = save(model, args.output)
    print(f"wrote {path} ({model.num_blocks} blocks); use it with --model {args.output}")


def run_bench(args: argparse.Namespace) -> None:
    from invhide.evaluation.speed import main as bench_main

    args.device = str(_device(args.device))
    if args.json is not None:
        _check_folder(Path(args.json))
    bench_main(args)


def _check_folder(path: Path) -> None:
    if not path.parent.is_dir():
        raise UserError(f"{path}: output folder {path.parent} does not exist")


# --------------------------------------------------------------------------
# Parser and entry point
# --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from invhide import __version__

    parser = argparse.ArgumentParser(
        prog="invhide", description="Hide an image inside another with an invertible neural network (HiNet)."
    )
    parser.add_argument("--version", action="version", version=f"invhide {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    hide = commands.add_parser(
        "hide",
        help="hide SECRET in COVER and write the stego PNG",
        description="Hide SECRET in COVER and write the stego PNG.",
    )
    hide.add_argument("cover", type=Path, help="cover image")
    hide.add_argument("secret", type=Path, help="secret image")
    hide.add_argument("-o", "--output", type=Path, required=True, help="stego image to write (.png)")
    hide.add_argument(
        "--fit",
        choices=("refuse", "resize", "crop"),
        default="refuse",
        help="a secret of another size than the cover: refuse (default), resize or centre-crop it",
    )
    _add_image_options(hide)
    _add_common(hide)
    hide.set_defaults(run=run_hide)

    reveal = commands.add_parser(
        "reveal", help="recover the secret from a stego PNG", description="Recover the secret from a stego PNG."
    )
    reveal.add_argument("stego", type=Path, help="stego image")
    reveal.add_argument("-o", "--output", type=Path, required=True, help="recovered secret to write (.png)")
    _add_image_options(reveal)
    _add_common(reveal, seed=True)
    reveal.set_defaults(run=run_reveal)

    train = commands.add_parser(
        "train",
        help="train and evaluate a hider (same options as examples/hinet_div2k.py)",
        description="Train and evaluate a hider (same options as examples/hinet_div2k.py).",
    )
    add_train_arguments(train)
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser(
        "eval",
        help="Table 2 results of a model on a folder of images",
        description="Table 2 results of a model on a folder of images.",
    )
    evaluate.add_argument("folder", type=Path, help="folder of test images, paired i with (i + n/2) mod n")
    evaluate.add_argument("--model", help="model file, training-run folder or name (default: $INVHIDE_MODEL)")
    evaluate.add_argument("--size", type=_positive, default=256, help="centre-crop side (default: 256)")
    evaluate.add_argument("--batch-size", type=_positive, default=4, help="pairs per forward pass (default: 4)")
    evaluate.add_argument("--json", type=Path, help="also write every metric, per image, to this JSON file")
    _add_common(evaluate, seed=True)
    evaluate.set_defaults(run=run_eval)

    bench = commands.add_parser(
        "bench",
        help="speed and memory figures of hide, reveal and a training step",
        description="Speed and memory figures of hide, reveal and a training step.",
    )
    from invhide.evaluation.speed import add_arguments

    add_arguments(bench)
    bench.set_defaults(run=run_bench)

    convert = commands.add_parser(
        "convert-official",
        help="import a reference HiNet checkpoint (model.pt)",
        description="Import a reference HiNet checkpoint (model.pt).",
    )
    convert.add_argument("checkpoint", type=Path, help="the reference code's .pt file")
    convert.add_argument("-o", "--output", type=Path, required=True, help="output folder or .safetensors file")
    convert.set_defaults(run=run_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``invhide`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    return run_reporting_errors(args.run, args)


def run_reporting_errors(run: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> int:
    """Run a command; a user error becomes one ``invhide: error: ...`` line and status 2, never a traceback.

    Warnings (image conversions...) are printed as one ``invhide: warning: ...``
    line each. Returns the exit status: 0, 2, or 130 when interrupted.
    """
    import torch

    from invhide.errors import DivergenceError
    from invhide.io.checkpoint import CheckpointError
    from invhide.io.images import ImageError

    out_of_memory = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    user_errors = (
        UserError,
        ImageError,
        CheckpointError,
        DivergenceError,
        out_of_memory,
        OSError,
        ValueError,
        ImportError,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _one_line_warning  # type: ignore[assignment]
        try:
            run(args)
        except KeyboardInterrupt:
            print("invhide: interrupted", file=sys.stderr)
            return 130
        except user_errors as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if isinstance(error, OSError) and error.filename and str(error.filename) not in message:
                message = f"{error.filename}: {error.strerror or message}"
            print(f"invhide: error: {message}", file=sys.stderr)
            return 2
    return 0


def _one_line_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    print(f"invhide: warning: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
