"""``invhide steganalysis`` and ``invhide eval --security``: how detectable stego images are.

``invhide steganalysis COVER_DIR STEGO_DIR`` pairs the images of the two
folders by sorted name and runs the detectors of
:mod:`invhide.evaluation.steganalysis` under its protocol (cross-validation
by pair, bootstrap intervals), printing accuracy and AUC of each detector on
one line. ``invhide eval --security --model M DIR`` first makes the pairs:
each image of ``DIR`` hides another (the pairing of ``invhide eval``), both
centre-cropped to ``--size``, and the stego image is saved as an 8-bit PNG, as
a user would send it, in a temporary folder (or ``--pairs-dir``).

Every option is checked, and every image header read, before anything
expensive runs. The parser hooks: :func:`add_parser` registers the
subcommand, :func:`add_security_options` adds the options to ``eval``'s
parser, and :func:`run_security` is what ``eval`` runs when ``--security`` is
given.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from invhide import checks
from invhide.cli.common import (
    Input,
    check_file_output,
    check_folder_output,
    check_one_secret,
    folder_images,
    held_folder,
    installed,
    new_file,
    option_type,
    output_folder,
    positive_option,
    resolve_device,
    same_file,
    seed_option,
)
from invhide.cli.models import FoundModel, blaming, find_model
from invhide.errors import InputError
from invhide.evaluation.metrics import psnr
from invhide.evaluation.steganalysis.classic import levels
from invhide.evaluation.steganalysis.learned import DEFAULT_TRAINING
from invhide.evaluation.steganalysis.protocol import DEFAULT_DETECTORS, DETECTORS, evaluate_detectors, too_small
from invhide.io.datasets import ImagePair, evaluation_pairs
from invhide.io.images import inspect_image, read_image, write_image
from invhide.models.hider import public_key

__all__ = [
    "MAX_BOOTSTRAP",
    "add_parser",
    "add_security_options",
    "check_no_security_options",
    "run_security",
    "run_steganalysis",
]

MAX_BOOTSTRAP = 100_000
"""Most bootstrap resamples ``--bootstrap`` takes (100 times the default; each is a pass over the scores)."""

_MEMORY_ADVICE = "try fewer or smaller images, or --device cpu"
_FOLDS, _BOOTSTRAP = 2, 1000
_folds = option_type(int, "an integer >= 2", checks.integer, low=2)
_bootstrap = option_type(int, f"an integer in [1, {MAX_BOOTSTRAP}]", checks.integer, low=1, high=MAX_BOOTSTRAP)
# The options of --security, with the attribute each sets: without --security, they would do nothing.
_SECURITY_OPTIONS = {
    "--detector": "detectors",
    "--roc": "roc",
    "--folds": "folds",
    "--bootstrap": "bootstrap",
    "--train-steps": "train_steps",
    "--pairs-dir": "pairs_dir",
}


def _add_detector_options(parser: argparse.ArgumentParser | Any, *, json_option: bool) -> None:
    """The detector options; ``invhide eval`` (``json_option`` false) leaves their defaults to :func:`run_security`."""
    defaults = json_option
    parser.add_argument(
        "--detector",
        dest="detectors",
        nargs="+",
        action="extend",
        choices=DETECTORS,
        metavar="NAME",
        help=f"detectors to run, any of {', '.join(DETECTORS)} (default: {' '.join(DEFAULT_DETECTORS)}; srnet "
        f"needs a GPU and many pairs)",
    )
    parser.add_argument("--roc", type=Path, metavar="OUT.png", help="also draw the ROC curves to this PNG (matplotlib)")
    parser.add_argument(
        "--folds",
        type=_folds,
        default=_FOLDS if defaults else None,
        help=f"cross-validation folds by pair (default: {_FOLDS})",
    )
    parser.add_argument(
        "--bootstrap",
        type=_bootstrap,
        default=_BOOTSTRAP if defaults else None,
        help=f"bootstrap resamples for the 95%% intervals, at most {MAX_BOOTSTRAP} (default: {_BOOTSTRAP})",
    )
    parser.add_argument(
        "--train-steps", type=positive_option, help="training steps of the learned detectors (default: each one's own)"
    )
    if json_option:
        parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results to this JSON file")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``invhide steganalysis`` on the ``invhide`` command's subparsers.

    Args:
        commands: what ``parser.add_subparsers()`` returned.

    Returns:
        The subcommand's parser (its ``run`` default is :func:`run_steganalysis`).
    """
    summary = "how well steganalysis detectors tell stego images from their covers"
    parser = commands.add_parser(
        "steganalysis",
        help=summary,
        description=(
            "Pair the images of COVER_DIR and STEGO_DIR by sorted name and measure, per detector, the accuracy and "
            "AUC of telling them apart: cross-validation by pair (no image of a tested pair is trained on), with "
            "95% bootstrap intervals."
        ),
    )
    parser.set_defaults(run=run_steganalysis, memory_advice=_MEMORY_ADVICE)
    parser.add_argument("cover_dir", type=Path, help="folder of cover images")
    parser.add_argument("stego_dir", type=Path, help="folder of their stego images (same count, same sizes)")
    _add_detector_options(parser, json_option=True)
    parser.add_argument("--seed", type=seed_option, default=0, help="seeds the split, the training and the bootstrap")
    parser.add_argument("--force", action="store_true", help="replace existing --json and --roc files")
    parser.add_argument("--device", help="where the learned detectors train: cpu, cuda, ... (default: cuda if any)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def add_security_options(eval_parser: argparse.ArgumentParser) -> None:
    """Add ``--security`` and its options to ``invhide eval``'s parser.

    ``eval`` already has ``--model``, ``--size``, ``--batch-size``,
    ``--json``, ``--force``, ``--seed`` and ``--device``; with ``--security``,
    ``--json`` receives the steganalysis results and ``--seed`` seeds the
    detectors (default 0). Without ``--security`` its options would do nothing, so
    ``eval`` refuses them (:func:`check_no_security_options`).
    """
    group = eval_parser.add_argument_group("security (with --security)")
    group.add_argument(
        "--security",
        action="store_true",
        help="instead of Table 2, hide each image in another, save the stego images as 8-bit PNGs and run the "
        "steganalysis detectors on cover/stego pairs",
    )
    _add_detector_options(group, json_option=False)
    group.add_argument(
        "--pairs-dir", type=Path, help="keep the cover and stego PNGs in this folder (default: temporary)"
    )


def check_no_security_options(args: argparse.Namespace) -> None:
    """Refuse, in ``invhide eval`` without ``--security``, the options that only ``--security`` uses (named).

    Raises:
        invhide.errors.InputError: ``--roc``, ``--pairs-dir``, ``--detector``,
            ``--folds``, ``--bootstrap`` or ``--train-steps`` given.

    Example:
        >>> check_no_security_options(argparse.Namespace(roc=Path("r.png"), folds=3, detectors=None,
        ...                                              bootstrap=None, train_steps=None, pairs_dir=None))
        Traceback (most recent call last):
        ...
        invhide.errors.InputError: --roc, --folds: used only with --security (...), and do nothing without it; ...
    """
    given = [option for option, name in _SECURITY_OPTIONS.items() if getattr(args, name, None) is not None]
    if given:
        do, them = ("do", "them") if len(given) > 1 else ("does", "it")
        raise InputError(
            f"{', '.join(given)}: used only with --security (the steganalysis of the model's stego images), and "
            f"{do} nothing without it; add --security, or drop {them}"
        )


def _check_outputs(args: argparse.Namespace, inputs: Sequence[Input]) -> None:
    """``--json`` and ``--roc``: new files (or ``--force``) that are none of the inputs; matplotlib for ``--roc``."""
    if args.json is not None:
        check_file_output(args.json, "--json", force=args.force, inputs=inputs)
    if args.roc is None:
        return
    if not installed("matplotlib"):
        raise InputError(f'--roc {args.roc}: drawing ROC curves needs matplotlib: pip install "invhide[plot]"')
    if args.roc.suffix.lower() != ".png":
        raise InputError(f"--roc {args.roc}: the figure is written as PNG; name it *.png")
    if args.json is not None and same_file(args.roc, args.json):
        raise InputError(f"--roc {args.roc}: is also the --json file; give the two outputs different names")
    check_file_output(args.roc, "--roc", force=args.force, inputs=inputs)


def _detectors(args: argparse.Namespace) -> list[str]:
    return list(dict.fromkeys(args.detectors or DEFAULT_DETECTORS))


def _training(args: argparse.Namespace, detectors: Sequence[str]) -> dict[str, Any]:
    if args.train_steps is None:
        return {}
    return {
        name: replace(DEFAULT_TRAINING[name], steps=args.train_steps) for name in detectors if name in DEFAULT_TRAINING
    }


def _check_common(args: argparse.Namespace, pairs: int, detectors: Sequence[str]) -> None:
    if pairs < 2:
        raise InputError(f"steganalysis needs at least 2 cover/stego pairs, got {pairs}")
    if args.folds > pairs:
        raise InputError(f"--folds {args.folds}: more folds than the {pairs} pairs")
    if args.train_steps is not None and not any(name in DEFAULT_TRAINING for name in detectors):
        raise InputError(
            f"--train-steps {args.train_steps}: only the learned detectors ({', '.join(DEFAULT_TRAINING)}) train, "
            f"and --detector {' '.join(detectors)} has none, so it would do nothing; drop it, or add one of them"
        )


def _fits(detectors: Sequence[str], height: int, width: int, argument: str, shown: str, advice: str) -> None:
    """Refuse an image size a detector cannot score; ``argument`` is the file or option, ``shown`` its size."""
    for name in detectors:
        reason = too_small(name, height, width)
        if reason is not None:
            raise InputError(
                argument=argument,
                problem=f"{shown}, too small for {reason}",
                advice=f"{advice} or run --detector without {name}",
            )


def _report(args: argparse.Namespace, covers: list[Any], stegos: list[Any], detectors: list[str], device: Any) -> Any:
    quiet = getattr(args, "quiet", False)
    return evaluate_detectors(
        covers,
        stegos,
        detectors,
        folds=args.folds,
        seed=0 if args.seed is None else args.seed,  # invhide eval --security without --seed
        resamples=args.bootstrap,
        training=_training(args, detectors),
        device=device,
        progress=not quiet,
        log=None if quiet else print,
    )


def _finish(args: argparse.Namespace, report: Any, json_path: Path | None) -> None:
    print(f"{report.pairs} cover/stego pairs, {report.folds}-fold cross-validation by pair, seed {report.seed}; "
          f"95% bootstrap intervals over pairs")  # fmt: skip
    print(report.format())
    if json_path is not None:
        with new_file(json_path, "--json", force=args.force) as target:
            report.write_json(target)
        print(f"wrote {json_path}")
    if args.roc is not None:
        with new_file(args.roc, "--roc", force=args.force) as target:
            report.roc_figure(target)
        print(f"wrote {args.roc}")


def _check_sizes(covers: Sequence[Input], stegos: Sequence[Input], detectors: Sequence[str]) -> None:
    """From the headers: a stego of another size than its cover, or a pair too small for a detector, is refused."""
    for (_, cover_path), (_, stego_path) in zip(covers, stegos, strict=True):
        cover, stego = inspect_image(cover_path), inspect_image(stego_path)
        if (cover.width, cover.height) != (stego.width, stego.height):
            raise InputError(
                f"{cover_path} is {cover.width}x{cover.height} but {stego_path}, its pair by sorted name, is "
                f"{stego.width}x{stego.height}"
            )
        shown = f"is {cover.width}x{cover.height}"
        _fits(detectors, cover.height, cover.width, str(cover_path), shown, "use larger images")


def run_steganalysis(args: argparse.Namespace) -> None:
    """``invhide steganalysis COVER_DIR STEGO_DIR``: the detectors on the folders' pairs."""
    detectors = _detectors(args)
    covers_in, stegos_in = folder_images(args.cover_dir), folder_images(args.stego_dir)
    if same_file(args.cover_dir, args.stego_dir):
        raise InputError(
            f"{args.stego_dir}: is the folder of covers {args.cover_dir}; steganalysis tells covers from their "
            f"stego images, so give the folder of stego images second"
        )
    _check_outputs(args, [*covers_in, *stegos_in])
    if len(covers_in) != len(stegos_in):
        raise InputError(
            f"{args.cover_dir} holds {len(covers_in)} images but {args.stego_dir} holds {len(stegos_in)}: "
            f"images are paired by sorted name, so the counts must be equal"
        )
    for (_, cover), (_, stego) in zip(covers_in, stegos_in, strict=True):
        if same_file(cover, stego):
            raise InputError(f"{stego}: is its cover {cover} (the same file); a pair must be a cover and its stego")
    _check_sizes(covers_in, stegos_in, detectors)
    _check_common(args, len(covers_in), detectors)
    device = resolve_device(args.device)
    covers = [levels(read_image(path)) for _, path in covers_in]
    stegos = [levels(read_image(path)) for _, path in stegos_in]
    try:
        report = _report(args, covers, stegos, detectors, device)
    except InputError as error:  # the library's "stegos": the images of STEGO_DIR
        if error.argument != "stegos":
            raise
        raise error.renamed(f"the images of {args.stego_dir}", advice="pass the folder of their stego images") from None
    _finish(args, report, args.json)


def _pair_name(index: int, cover: Path) -> str:
    """The file name of pair ``index`` (its cover ``cover``) in ``--pairs-dir``'s ``covers`` and ``stegos``."""
    return f"{index:04d}_{cover.stem}.png"


def _check_pairs_dir(args: argparse.Namespace, inputs: Sequence[Input], images: Sequence[Input]) -> None:
    """``--pairs-dir``: a folder to create or fill whose files would replace none of ``inputs``, ``--force`` or not.

    Neither it nor its ``covers`` and ``stegos`` folders may be the folder of
    test images, and none of the pair files it would receive (one per image
    of ``images``) may be an input (by file identity, as every output).
    """
    pairs_dir = args.pairs_dir
    folder_input = [(f"folder of test images {args.folder}", args.folder)]
    check_folder_output(pairs_dir, "--pairs-dir", inputs=folder_input)
    names = [_pair_name(index, path) for index, (_, path) in enumerate(images)]
    for sub in ("covers", "stegos"):
        folder = pairs_dir / sub
        if same_file(folder, args.folder):
            raise InputError(
                f"--pairs-dir {pairs_dir}: its {sub} folder {folder} is the folder of test images {args.folder}; "
                f"the pairs would replace its images: choose another --pairs-dir"
            )
        check_folder_output(folder, "--pairs-dir", inputs=folder_input)
        for name in names if folder.is_dir() else ():
            check_file_output(folder / name, "--pairs-dir", force=True, inputs=inputs)


def _check_no_earlier_pairs(args: argparse.Namespace) -> None:
    """Without ``--force``, refuse a ``--pairs-dir`` whose ``covers`` or ``stegos`` already hold files."""
    for sub in ("covers", "stegos"):
        folder = args.pairs_dir / sub
        if folder.is_dir() and any(folder.iterdir()) and not args.force:
            raise InputError(
                f"--pairs-dir {args.pairs_dir}: {folder} already holds files; pass --force to replace them, or "
                f"choose another folder"
            )


def _check_crops(size: int, images: Sequence[Input]) -> None:
    """Refuse, from the headers, an image smaller than the ``--size`` crop (named as the user gave it)."""
    for _, path in images:
        info = inspect_image(path)
        if min(info.width, info.height) < size:
            raise InputError(
                f"--size {size}: {path} is {info.width}x{info.height}, smaller than the {size}x{size} crop; pass a "
                f"smaller --size"
            )


@contextlib.contextmanager
def _pairs_folder(args: argparse.Namespace) -> Iterator[Path]:
    """Where the pairs go: ``--pairs-dir`` (created when missing, held for the run), else a temporary folder."""
    if args.pairs_dir is None:
        with tempfile.TemporaryDirectory(prefix="invhide-security-") as temporary:
            yield Path(temporary)
        return
    with output_folder(args.pairs_dir, "--pairs-dir"), held_folder(args.pairs_dir, "--pairs-dir"):
        _check_no_earlier_pairs(args)
        yield args.pairs_dir


def _save_pairs(
    args: argparse.Namespace, found: FoundModel, model: Any, pairs: Sequence[ImagePair], folder: Path
) -> tuple[list[torch.Tensor], list[torch.Tensor], float]:
    """Hide each pair's secret in its cover, save both as 8-bit PNGs in ``folder/covers`` and ``folder/stegos``.

    Returns:
        The saved covers and stegos as read back (as a user would read
        them), as :func:`~invhide.evaluation.steganalysis.classic.levels`,
        and their mean PSNR in dB.
    """
    (folder / "covers").mkdir(parents=True, exist_ok=True)
    (folder / "stegos").mkdir(exist_ok=True)
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    covers, stegos, quality = [], [], []
    for start in range(0, len(pairs), args.batch_size):
        batch = pairs[start : start + args.batch_size]
        cover = torch.stack([pair.cover for pair in batch]).to(device, dtype)
        secret = torch.stack([pair.secret for pair in batch]).to(device, dtype)
        with torch.no_grad(), blaming(found.choice):
            stego, _ = model.hide(cover, secret, **public_key(model))
        for offset, pair in enumerate(batch):
            name = _pair_name(start + offset, pair.cover_path)
            write_image(pair.cover, folder / "covers" / name)
            write_image(stego[offset].float().cpu(), folder / "stegos" / name)
            saved_cover, saved_stego = read_image(folder / "covers" / name), read_image(folder / "stegos" / name)
            quality.append(psnr(saved_stego[None], saved_cover[None]).item())
            covers.append(levels(saved_cover))
            stegos.append(levels(saved_stego))
    return covers, stegos, sum(quality) / len(quality)


def run_security(args: argparse.Namespace) -> None:
    """``invhide eval --security --model M DIR``: make cover/stego PNG pairs with the model, then run the detectors."""
    if args.folds is None:
        args.folds = _FOLDS
    if args.bootstrap is None:
        args.bootstrap = _BOOTSTRAP
    detectors = _detectors(args)
    images = folder_images(args.folder)
    found = find_model(args.model)
    _check_outputs(args, [*images, *found.files])
    if args.pairs_dir is not None:
        _check_pairs_dir(args, [*images, *found.files], images)
        _check_no_earlier_pairs(args)  # again once the folder is held, before the pairs are written
    _check_common(args, len(images), detectors)
    crops = f"{args.size} makes {args.size}x{args.size} crops"
    _fits(detectors, args.size, args.size, "--size", crops, "pass a larger --size")
    _check_crops(args.size, images)
    device = resolve_device(args.device)
    model = found.load(device)
    check_one_secret(model, found.choice.described, "eval --security")
    pairs = evaluation_pairs(args.folder, size=args.size)
    with _pairs_folder(args) as folder:
        covers, stegos, mean_psnr = _save_pairs(args, found, model, pairs, folder)
        where = f", in {args.pairs_dir}" if args.pairs_dir is not None else ""
        print(f"{len(pairs)} stego images saved as 8-bit PNG ({args.size}x{args.size}), cover/stego PSNR "
              f"{mean_psnr:.2f} dB as saved{where}")  # fmt: skip
        report = _report(args, covers, stegos, detectors, device)
    report.extra = {
        "model": found.choice.described,
        "folder": str(args.folder),
        "size": args.size,
        "stego_psnr_db": mean_psnr,
    }
    _finish(args, report, args.json)
