"""What each ``invhide`` command does, given its parsed options.

Each ``run_*`` function checks everything it can before any expensive work
(raising an :class:`~invhide.errors.InvhideError` that names the option, the
variable or the path as the user gave it): its outputs (never one of its
inputs, never an existing file without ``--force``,
:mod:`invhide.cli.common`), the device, the model (found, then loaded and
refused when it hides nothing, :mod:`invhide.cli.models`), sizes against the
model and the images' headers. Then it calls the library:
:mod:`invhide.models.inference` for ``hide`` and ``reveal``,
:mod:`invhide.training.recipes` for ``train``,
:func:`invhide.evaluation.metrics.evaluate` for ``eval``,
:func:`invhide.evaluation.speed.run` for ``bench`` and
:func:`invhide.models.official.load_official` for ``convert-official``. The
parser is :func:`invhide.cli.main.build_parser`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from invhide.cli.common import (
    Input,
    check_file_output,
    check_folder_output,
    check_image_output,
    check_not_an_input,
    check_one_secret,
    folder_images,
    held_folder,
    installed,
    new_file,
    output_folder,
    read_input_image,
    resolve_device,
)
from invhide.cli.keys import command_key
from invhide.cli.models import FoundModel, blaming, find_model
from invhide.cli.steganalysis import check_no_security_options, run_security
from invhide.errors import (
    ConfigError,
    InputError,
    InvhideError,
    MissingPathError,
    ModelError,
    PathExistsError,
    describe,
)
from invhide.evaluation import speed
from invhide.evaluation.metrics import SSIM_WINDOW, evaluate, psnr
from invhide.io.checkpoint import save
from invhide.io.datasets import IMAGE_SUFFIXES, SAMPLE_TEST, evaluation_pairs, sample_image_paths
from invhide.io.files import atomic_write
from invhide.io.images import (
    DEFAULT_MAX_PIXELS,
    ImageFormat,
    ImageInfo,
    ImageTooLargeError,
    decode_image,
    encode_image,
    image_format,
    inspect_image,
    write_image,
)
from invhide.models import inference, zoo
from invhide.models.official import load_official
from invhide.nn.functional import quantize_8bit
from invhide.training import recipes
from invhide.training.checkpoints import latest_checkpoint, read_loop_state
from invhide.training.precision import resolve_amp

__all__ = [
    "BENCH_DEFAULTS",
    "TRAIN_OUTPUTS",
    "run_bench",
    "run_convert",
    "run_eval",
    "run_hide",
    "run_reveal",
    "run_train",
    "tiling",
]

TRAIN_OUTPUTS: tuple[str, ...] = ("model.safetensors", "config.json", "results.json", "figure.png", "curves.png")
"""Files ``invhide train`` writes at the top of ``--out`` (besides the run's logs and checkpoints)."""

_PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl")
_RESUME_FLAGS = ("--resume", "--resume-or-start")


def tiling(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """``tile``, ``overlap`` and ``progress`` for :mod:`invhide.models.inference` from ``--tile``/``--overlap``.

    Both are rounded up to the multiple of the model's window step that
    tiling needs (:func:`invhide.models.inference.window_step`: 2 for Haar, 8
    with a keyed model's refiner).

    Raises:
        invhide.errors.InputError: ``--tile`` not more than twice ``--overlap``.

    Example:
        >>> tiling(argparse.Namespace(tile=511, overlap=63, quiet=True), invhide.HiNet(num_blocks=1))
        {'tile': 512, 'overlap': 64, 'progress': False}
    """
    step = inference.window_step(model)
    tile, overlap = (step * math.ceil(value / step) for value in (args.tile, args.overlap))
    if tile - 2 * overlap < step:
        raise InputError(
            f"--tile {args.tile} must exceed twice --overlap {args.overlap} by at least {step} "
            f"(each tile keeps its centre); pass a larger --tile or a smaller --overlap"
        )
    return {"tile": tile, "overlap": overlap, "progress": not args.quiet}


def _even_size(option: str, value: int, model: Any) -> None:
    """Refuse a crop side the model's wavelet cannot take (the parser already made it even)."""
    least = getattr(model, "min_size", 2)
    if value < least:
        raise InputError(f"{option} {value}: the model's wavelet needs at least {least} pixels a side")


def _measurable(option: str, value: int) -> None:
    """Refuse an evaluation crop smaller than SSIM's window (Table 2 measures SSIM)."""
    if value < SSIM_WINDOW:
        raise InputError(
            argument=option,
            problem=f"must be at least {SSIM_WINDOW} (SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window), got {value}",
            advice=f"pass {option} {SSIM_WINDOW + SSIM_WINDOW % 2} or more",
        )


def _headers(inputs: Sequence[Input]) -> list[ImageInfo]:
    """The headers of images a command will read (nothing decoded).

    Raises:
        invhide.io.images.ImageError: not an image.
        invhide.io.images.ImageTooLargeError: larger than the library's
            default limit, which these commands have no option to raise.
    """
    try:
        return [inspect_image(path) for _, path in inputs]
    except ImageTooLargeError as error:
        raise error.renamed("the most this command reads", advice="downscale or crop it first") from None


def _at_least(option: str, size: int, inputs: Sequence[Input], advice: str) -> None:
    """Refuse, from the headers alone, an image smaller than the crop ``size``."""
    for (_, path), info in zip(inputs, _headers(inputs), strict=True):
        if min(info.width, info.height) < size:
            raise InputError(
                f"{option} {size}: {path} is {info.width}x{info.height}, smaller than the {size}x{size} crop; {advice}"
            )


# --------------------------------------------------------------------------
# invhide hide, reveal
# --------------------------------------------------------------------------


def _saved_psnr(cover: torch.Tensor, stego: torch.Tensor) -> float:
    """PSNR in dB of the ``(3, H', W')`` stego as saved (rounded to 8 bits) against its ``(3, H, W)`` cover."""
    height, width = cover.shape[-2:]
    return psnr(quantize_8bit(stego[..., :height, :width].float()).cpu()[None], cover.float().cpu()[None]).item()


def _verified(
    found: FoundModel, model: Any, images: tuple[torch.Tensor, ...], args: argparse.Namespace, options: dict[str, Any]
) -> inference.Verification:
    """:func:`invhide.models.inference.verify` of ``(cover, secret, stego)``, the stego as ``-o`` will hold it.

    The stego is encoded as ``write_image`` will write it (the same bytes)
    and decoded back, then revealed as ``invhide reveal`` will (``z`` zeros).

    Raises:
        invhide.errors.ModelError: the stego is its cover, or the secret comes
            back below :data:`~invhide.models.inference.MIN_SECRET_PSNR`; the
            message names the model as the user gave it and the figure.
    """
    cover, secret, stego = images
    received = decode_image(encode_image(stego, args.output.suffix)).to(stego.device)
    with blaming(found.choice):
        figures = inference.verify(model, cover, secret, received, fit=args.fit, **options)
    if figures.passed:
        return figures
    height, width = cover.shape[-2:]
    if figures.identical:
        problem = (
            f"hides nothing: the stego as saved is the cover, to within rounding (cover/stego PSNR "
            f"{figures.stego_psnr:.2f} dB)"
        )
        cause = "train the model first"
    else:
        problem = (
            f"does not hide this secret: revealed from the stego as saved, as `invhide reveal` will, it "
            f"comes back at {figures.secret_psnr:.2f} dB PSNR, below {inference.MIN_SECRET_PSNR:g} dB (cover/stego "
            f"PSNR {figures.stego_psnr:.2f} dB)"
        )
        small = min(height, width) < 16
        cause = f"a {width}x{height} image is too small for it" if small else "an untrained or undertrained model?"
    raise ModelError(
        f"{found.choice.described} {problem}; nothing written ({cause}; --no-check writes the stego anyway)"
    )


def _hide_summary(
    args: argparse.Namespace, cover: torch.Tensor, stego: torch.Tensor, quality: float, figures: Any
) -> str:
    """The line ``invhide hide`` prints: what it wrote, the stego's PSNR, the verified secret's (or that it was not)."""
    height, width = stego.shape[-2:]
    size = f"{width}x{height}"
    if (height, width) != tuple(cover.shape[-2:]):
        size += f": the {cover.shape[-1]}x{cover.shape[-2]} cover made even"
    text = f"wrote {args.output} ({size}); cover/stego PSNR {quality:.2f} dB as saved (8-bit)"
    if figures is None:
        return f"{text}; the secret's recovery was not verified (--no-check)"
    return f"{text}; secret/recovery PSNR {figures.secret_psnr:.2f} dB, revealed from it as `invhide reveal` will"


def _hide_warning(found: FoundModel, quality: float) -> None:
    if quality < inference.LOW_STEGO_PSNR:
        print(
            f"invhide: warning: the stego differs visibly from the cover (PSNR {quality:.2f} dB as saved, below "
            f"{inference.LOW_STEGO_PSNR:g} dB): {found.choice.described} hides poorly (undertrained or diverged?)",
            file=sys.stderr,
        )


def run_hide(args: argparse.Namespace) -> None:
    """``invhide hide COVER SECRET -o STEGO.png``: :func:`invhide.models.inference.hide`, written as 8 bits a channel.

    Unless ``--no-check``, the stego as it will be saved is revealed first
    (:func:`_verified`), and refused, nothing written, when the secret does
    not survive. Warns (one line) when the saved stego is far from its cover
    (PSNR below :data:`~invhide.models.inference.LOW_STEGO_PSNR`).
    """
    found = find_model(args.model)
    inputs = [(f"cover image {args.cover}", args.cover), (f"secret image {args.secret}", args.secret), *found.files]
    check_image_output(args.output, "-o", force=args.force, inputs=inputs)
    device = resolve_device(args.device)
    model = found.load(device)
    check_one_secret(model, found.choice.described, "hide")
    options = {**tiling(args, model), "key": command_key(args, model, found.choice.described, confirm=True)}
    max_pixels = args.max_pixels or DEFAULT_MAX_PIXELS
    cover = read_input_image(args.cover, max_pixels).to(device)
    secret = read_input_image(args.secret, max_pixels).to(device)
    if args.fit == "refuse" and secret.shape[-2:] != cover.shape[-2:]:
        raise InputError(
            f"the secret image {args.secret} is {secret.shape[-1]}x{secret.shape[-2]} but the cover image "
            f"{args.cover} is {cover.shape[-1]}x{cover.shape[-2]}; pass --fit resize or --fit crop to adapt the "
            f"secret to the cover"
        )
    with blaming(found.choice):
        stego = inference.hide(model, cover, secret, fit=args.fit, **options)
    figures = None if args.no_check else _verified(found, model, (cover, secret, stego), args, options)
    with new_file(args.output, "-o", force=args.force) as target:  # never over a file written meanwhile
        write_image(stego, target)
    quality = _saved_psnr(cover, stego) if figures is None else figures.stego_psnr
    _hide_warning(found, quality)
    if not args.quiet:
        print(_hide_summary(args, cover, stego, quality, figures))


_SUFFIX_FORMATS = {".bmp": "BMP", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG"}
_SUFFIX_FORMATS |= {".webp": "WEBP", ".gif": "GIF", ".jp2": "JPEG2000", ".j2k": "JPEG2000", ".avif": "AVIF"}


def _stored_as(path: Path) -> ImageFormat | None:
    """:func:`invhide.io.images.image_format` of a file already read; ``None`` past Pillow's guard (--max-pixels)."""
    try:
        return image_format(path)
    except ImageTooLargeError:
        return None


def _reveal_warning(found: FoundModel, model: Any, args: argparse.Namespace, stego: torch.Tensor) -> str | None:
    """What ``invhide reveal`` cannot know about the secret it writes, in one line, or ``None``.

    A lossy file (as its header says) that the model was not trained to
    reveal from (:func:`invhide.models.inference.trained_channels`); else,
    unless ``--no-check``, an image that holds nothing this model hid, as far
    as :func:`invhide.models.inference.blur_agreement` tells.
    """
    stored, trained = _stored_as(args.stego), inference.trained_channels(model)
    if stored is not None and stored.lossy and stored.channel not in trained:
        suffix = args.stego.suffix.lower()
        named = _SUFFIX_FORMATS.get(suffix, stored.format) != stored.format
        robust = [entry.name for entry in zoo.available(found.folder) if stored.channel in entry.trained_channels]
        instead = f", or hide with a model trained for {stored.channel} files: {', '.join(robust)}" if robust else ""
        outcome = "is likely noise" if trained == {"lossless"} else "may be degraded or noise (see Robustness)"
        return (
            f"{args.stego} is a lossy file ({stored.codec}{f' by its header, though named {suffix}' if named else ''})"
            f" and {found.choice.described} was trained to reveal from {' or '.join(sorted(trained))} files only: "
            f"the secret written {outcome}; reveal from the lossless file that invhide hide wrote{instead}"
        )
    if args.no_check:
        return None
    agreement = inference.blur_agreement(model, stego, seed=args.seed)
    if agreement < inference.NOT_A_STEGO_PSNR:
        return None
    return (
        f"{args.stego} does not look like a stego image of {found.choice.described}: blurring it hardly changes what "
        f"it reveals (the two agree at {agreement:.1f} dB, {inference.NOT_A_STEGO_PSNR:g} dB or more), so it holds "
        f"nothing this model hid (a plain photograph, or a stego re-encoded by another program?); the secret written "
        f"is likely noise"
    )


def run_reveal(args: argparse.Namespace) -> None:
    """``invhide reveal STEGO -o SECRET.png``: :func:`invhide.models.inference.reveal`; ``z`` zeros, or drawn with
    ``--seed``.

    Warns in one line when the file is lossy (by its header) and the model
    was not trained for it, or when the image holds nothing this model hid
    (:func:`_reveal_warning`); the secret is written all the same.
    """
    found = find_model(args.model)
    inputs = [(f"stego image {args.stego}", args.stego), *found.files]
    check_image_output(args.output, "-o", force=args.force, inputs=inputs)
    device = resolve_device(args.device)
    model = found.load(device)
    check_one_secret(model, found.choice.described, "reveal")
    options = {**tiling(args, model), "key": command_key(args, model, found.choice.described, confirm=False)}
    stego = read_input_image(args.stego, args.max_pixels or DEFAULT_MAX_PIXELS).to(device)
    generator = inference.seeded_generator(args.seed, device)
    with blaming(found.choice):
        secret = inference.reveal(model, stego, generator=generator, **options)
        warning = _reveal_warning(found, model, args, stego)
    if warning is not None:
        print(f"invhide: warning: {warning}", file=sys.stderr)
    with new_file(args.output, "-o", force=args.force) as target:  # never over a file written meanwhile
        write_image(secret, target)
    if not args.quiet:
        print(f"wrote {args.output} ({secret.shape[-1]}x{secret.shape[-2]})")


# --------------------------------------------------------------------------
# invhide train
# --------------------------------------------------------------------------


def _previous_run(out: Path) -> list[str]:
    """What in ``out`` belongs to a previous training run (the trainer refuses to start over it)."""
    return [name for name in ("log.jsonl", "checkpoints") if (out / name).exists()]


def _resume_command(args: argparse.Namespace, flag: str) -> str:
    """The command line that continues this run: the user's own, with ``flag`` for the resume option."""
    argv = [a for a in getattr(args, "argv", None) or ["train", "--out", str(args.out)] if a not in _RESUME_FLAGS]
    return shlex.join(["invhide", *argv, flag])


def _interrupted(args: argparse.Namespace) -> KeyboardInterrupt:
    """The ``KeyboardInterrupt`` to re-raise after Ctrl-C: where the checkpoint is, and how to resume."""
    saved = latest_checkpoint(args.out) if args.out.is_dir() else None
    if saved is not None:
        return KeyboardInterrupt(
            f"the checkpoint of step {int(saved.name.removeprefix('step_'))} is in {saved}; resume with: "
            f"{_resume_command(args, '--resume')}"
        )
    if _previous_run(args.out):
        return KeyboardInterrupt(
            f"no checkpoint was saved; start again with: {_resume_command(args, '--resume-or-start')}"
        )
    return KeyboardInterrupt("before training started; nothing was saved")


def _train_recipe(args: argparse.Namespace) -> recipes.Recipe:
    """``--recipe`` with the settings the options override, started from ``--init`` when given."""
    overrides = dict(steps=args.steps, crop=args.crop, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    overrides["checkpoint_every"] = args.checkpoint_every
    optional = {"quantize": args.quantize, "amp": args.amp, "ema_decay": args.ema}
    optional["memory_saving"] = args.memory_saving or None
    optional["channels"] = tuple(args.channel) if args.channel else None
    overrides.update((key, value) for key, value in optional.items() if value is not None)
    if args.quantize_from is not None:
        overrides["quantize"], overrides["quantize_from"] = False, args.quantize_from
    chosen = recipes.recipe(args.recipe, num_workers=args.workers, **overrides)
    if args.concealing is not None:  # the recipe's schedule, its concealing entries replaced by this one
        start = chosen.config.quantize_from or 0
        kept = tuple(entry for entry in chosen.config.weight_schedule if entry[1] != "concealing")
        schedule = (*kept, (start, "concealing", args.concealing))
        chosen = dataclasses.replace(chosen, config=dataclasses.replace(chosen.config, weight_schedule=schedule))
    if args.init is not None:
        chosen = chosen.starting_from(_init_model(args.init), args.init)
    config = chosen.config
    if config.quantize_from is not None and config.quantize_from >= config.steps:
        raise InputError(
            f"--quantize-from {config.quantize_from}: the run has {config.steps} steps, so it would never round; "
            f"pass a step below --steps"
        )
    return chosen


def _init_inputs(spec: str | None) -> list[Input]:
    """The files ``--init`` reads (and its folder, for a run folder), as inputs that ``--out`` must not replace."""
    if spec is None:
        return []
    source, shown = zoo.find(spec), f"--init model {spec}"
    if isinstance(source, str):
        entry = zoo.models_dir() / source
        return [(shown, entry.with_suffix(".safetensors")), (shown, entry.with_suffix(".json"))]
    if source.is_dir():
        return [
            (f"--init folder {source}", source),
            (shown, source / "model.safetensors"),
            (shown, source / "config.json"),
        ]
    return [(shown, source)]


def _init_model(spec: str) -> torch.nn.Module:
    """The trained model of ``--init`` (loaded before anything else, so that a bad one fails first)."""
    try:
        return zoo.load(spec)
    except (InvhideError, OSError) as error:
        raise InputError(f"--init {spec}: {describe(error)}") from None


def _check_train_folders(args: argparse.Namespace) -> list[Input]:
    """``--train-dir`` and ``--val-dir`` (their images, as inputs), or the sample photographs without them."""
    inputs: list[Input] = []
    for option, folder in (("--train-dir", args.train_dir), ("--val-dir", args.val_dir)):
        if folder is None:
            if not installed("skimage"):
                raise InputError(
                    f"no {option} given, and the sample photographs used without it ship with scikit-image, which "
                    f'is not installed: pass {option} FOLDER or pip install "invhide[samples]"'
                )
            continue
        found = folder_images(folder, option)
        if not found:
            raise InputError(f"{option} {folder}: holds no images ({', '.join(IMAGE_SUFFIXES)} files)")
        inputs += found
        inputs.append((f"{option} folder {folder}", folder))
    return inputs


def _check_crop(option: str, side: int | None, model: Any) -> None:
    if side is None:
        return
    _even_size(option, side, model)
    if side * side > DEFAULT_MAX_PIXELS:
        raise InputError(
            f"{option} {side}: {side * side:,} pixels a crop, more than {DEFAULT_MAX_PIXELS:,} (8192x8192); pass a "
            f"smaller {option}"
        )


def _check_batch_memory(batch_size: int, crop: int, option: str = "--batch-size", side: str = "--crop") -> None:
    """Refuse a batch whose images alone (``2 * batch_size`` float32 crops) exceed this machine's memory.

    ``option`` and ``side`` are how the command names the batch size and the crop side.
    """
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # not a POSIX system: the allocation itself will tell
        return
    needed = 2 * batch_size * 3 * crop * crop * 4
    if needed > memory:
        raise InputError(
            f"{option} {batch_size} with {crop}x{crop} crops: one batch of images alone is {needed / 2**30:,.1f} "
            f"GiB, more than this machine's {memory / 2**30:,.1f} GiB of memory; pass a smaller {option} or {side}"
        )


def _check_train_data(args: argparse.Namespace, chosen: recipes.Recipe) -> list[Input]:
    """The folders and their images' headers, ``--crop``, ``--batch-size`` and ``--eval-size``; returns the inputs."""
    inputs = _check_train_folders(args)
    _headers([entry for entry in inputs if not entry[0].startswith("--")])  # every training image is an image
    with torch.random.fork_rng(devices=[]):
        probe = chosen.build_model()  # only its wavelet's minimum size is read
    _check_crop("--crop", args.crop, probe)
    _check_batch_memory(chosen.config.batch_size, chosen.config.crop)
    _even_size("--eval-size", args.eval_size, probe)
    _measurable("--eval-size", args.eval_size)
    if args.val_dir is not None:
        validation = folder_images(args.val_dir, "--val-dir")
    else:
        validation = [("sample", path) for path in sample_image_paths(SAMPLE_TEST)]
    _at_least("--eval-size", args.eval_size, validation, "pass a smaller --eval-size")
    return inputs


def _check_train_out(args: argparse.Namespace, inputs: list[Input], steps: int) -> None:
    """``--out`` (held by this run): a previous run only with a resume option; no stray outputs, none an input.

    A run to resume must not be past ``steps`` already. The files the run
    writes at the top of ``--out`` are none of ``inputs`` (``--init``'s
    model, the photographs), ``--force`` or not.
    """
    out: Path = args.out
    for name in TRAIN_OUTPUTS:
        check_not_an_input(out / name, "--out", inputs)
    if args.resume and (not out.is_dir() or latest_checkpoint(out) is None):
        raise MissingPathError(
            f"--out {out}: no checkpoint to resume (no checkpoints/step_*/trainer.json); drop --resume to start a "
            f"new run there, or pass --resume-or-start to resume only when there is a checkpoint"
        )
    latest = latest_checkpoint(out) if out.is_dir() else None
    if latest is not None and (args.resume or args.resume_or_start):
        saved = read_loop_state(latest)["step"]
        if saved > steps:
            raise InputError(
                f"--out {out}: its newest checkpoint, {latest.name}, is at step {saved}, past --steps {steps}: pass "
                f"a --steps above {saved} to train further, or use the model as it is (--model {out})"
            )
        return
    if not out.is_dir():
        return
    previous = _previous_run(out)
    if previous and not args.resume_or_start:
        raise PathExistsError(
            f"--out {out}: holds a previous run ({', '.join(previous)}); continue it with --resume, or choose "
            f"another --out"
        )
    stray = [name for name in TRAIN_OUTPUTS if (out / name).exists()]
    if stray and not args.force:
        raise PathExistsError(
            f"--out {out}: holds {', '.join(stray)}, which this run would replace; pass --force to replace "
            f"{'them' if len(stray) > 1 else 'it'}, or choose another --out"
        )


def _train_device(args: argparse.Namespace, chosen: recipes.Recipe) -> torch.device | None:
    """``--device`` (``None``: the trainer picks the local rank's GPU), checked to run the recipe's ``--amp``."""
    device = resolve_device(args.device) if args.device else None
    if chosen.config.amp is not None:
        try:  # float16 on a CPU is refused here, before the photographs are read
            resolve_amp(chosen.config.amp, device or ("cuda" if torch.cuda.is_available() else "cpu"))
        except ConfigError as error:
            raise InputError(f"--amp {args.amp}: {error}" if args.amp else str(error)) from None
    return device


def _holding(out: Path) -> contextlib.AbstractContextManager[None]:
    """Hold ``--out`` for the run (:func:`~invhide.cli.common.held_folder`); under torchrun, rank 0 holds it for all."""
    if os.environ.get("RANK", "0").strip() not in ("", "0"):
        return contextlib.nullcontext()
    return held_folder(out, "--out")


def _train(args: argparse.Namespace, chosen: recipes.Recipe, device: torch.device | None) -> Any:
    """:func:`invhide.training.recipes.train_and_evaluate` into ``--out``; Ctrl-C says how to resume."""
    resume: bool | str = True if args.resume else "auto" if args.resume_or_start else False
    try:
        return recipes.train_and_evaluate(
            chosen, args.out, train_source=args.train_dir, val_source=args.val_dir,
            eval_size=args.eval_size, device=device, resume=resume,
        )  # fmt: skip
    except KeyboardInterrupt:
        raise _interrupted(args) from None
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def run_train(args: argparse.Namespace) -> None:
    """``invhide train``: :func:`invhide.training.recipes.recipe` and ``train_and_evaluate``, then the results.

    Every option is checked before the photographs are read: the recipe's
    settings, the folders, ``--crop`` and ``--eval-size`` against the model
    and the evaluation images' headers, ``--out`` (see
    :func:`_check_train_out`) and the device. ``--out`` is created when
    missing (and removed again if the run writes nothing) and held for the
    run, so a second run into it fails at once. Ctrl-C saves the last
    completed step (the trainer does) and ends with the command that resumes
    it.
    """
    chosen = _train_recipe(args)
    inputs = _check_train_data(args, chosen) + _init_inputs(args.init)
    check_folder_output(args.out, "--out", inputs=[entry for entry in inputs if entry[0].startswith("--")])
    with output_folder(args.out, "--out"), _holding(args.out):
        _check_train_out(args, inputs, chosen.config.steps)
        device = _train_device(args, chosen)
        if chosen.config.tensorboard and not installed("tensorboard"):
            print("note: no TensorBoard logs (pip install tensorboard); the records are in log.jsonl and the CSV files")
        report = _train(args, chosen, device)
    if report.evaluation is None:  # a rank other than 0 under torchrun
        return
    print(f"\nevaluation on {report.evaluation.num_pairs} held-out pairs ({report.evaluation_seconds:.0f} s):")
    print(report.evaluation.format())
    print("\nwrote " + ", ".join(str(path) for path in report.files.values()))


# --------------------------------------------------------------------------
# invhide eval, convert-official, bench
# --------------------------------------------------------------------------


def run_eval(args: argparse.Namespace) -> None:
    """``invhide eval FOLDER``: Table 2 on the folder's pairs; with ``--security``, the steganalysis detectors."""
    if getattr(args, "security", False):
        if args.channel:
            raise InputError("--channel measures Table 2 after a real channel; --security does not take it (drop one)")
        run_security(args)
        return
    check_no_security_options(args)
    images = folder_images(args.folder)
    if len(images) < 2:
        raise InputError(
            f"{args.folder}: holds {len(images)} image(s); eval pairs images, so it needs at least two "
            f"({', '.join(IMAGE_SUFFIXES)} files)"
        )
    _measurable("--size", args.size)
    found = find_model(args.model)
    if args.json is not None:
        check_file_output(args.json, "--json", force=args.force, inputs=[*images, *found.files])
    device = resolve_device(args.device)
    model = found.load(device)
    check_one_secret(model, found.choice.described, "eval")
    _even_size("--size", args.size, model)
    _at_least("--size", args.size, images, "pass a smaller --size")
    pairs = evaluation_pairs(args.folder, size=args.size)
    generator = inference.seeded_generator(args.seed, device)
    with blaming(found.choice):
        evaluation = evaluate(
            model, pairs, batch_size=args.batch_size, device=device, generator=generator, channels=args.channel or ()
        )
    if args.json is not None:
        with new_file(args.json, "--json", force=args.force) as target, atomic_write(target, "w") as file:
            json.dump(evaluation.to_dict(per_image=True), file, indent=2)
    print(evaluation.format())


def _convert_outputs(output: Path, inputs: list[Input]) -> list[Path]:
    """The files ``convert-official -o OUTPUT`` will write, after checking ``OUTPUT`` (a file or a folder)."""
    if output.suffix.lower() in _PICKLE_SUFFIXES:
        raise InputError(
            f"-o {output}: a {output.suffix} name would be taken for a PyTorch pickle, which --model refuses; "
            f"write {output.with_suffix('.safetensors')} or a folder"
        )
    if output.suffix == ".safetensors":  # as invhide.io.checkpoint.save tells a file from a folder
        return [output] + ([output.parent / "config.json"] if output.name == "model.safetensors" else [])
    check_folder_output(output, "-o", inputs=inputs)
    return [output / "model.safetensors", output / "config.json"] if output.is_dir() else []


def run_convert(args: argparse.Namespace) -> None:
    """``invhide convert-official model.pt -o OUT``: import a reference checkpoint and save it as safetensors.

    ``OUT`` is a ``.safetensors`` file (its folder must exist) or a folder
    (created) that receives ``model.safetensors`` and ``config.json``; either
    loads with ``--model OUT``. A ``.pt`` name is refused: ``--model`` takes
    such a file for a PyTorch pickle.
    """
    output: Path = args.output
    inputs = [(f"checkpoint {args.checkpoint}", args.checkpoint)]
    for path in _convert_outputs(output, inputs):
        check_file_output(path, "-o", force=args.force, inputs=inputs)
    with contextlib.ExitStack() as stack, warnings.catch_warnings():
        if output.suffix != ".safetensors":  # a folder: created when missing, held while the files are written
            stack.enter_context(output_folder(output, "-o"))
            stack.enter_context(held_folder(output, "-o"))
        warnings.filterwarnings("ignore", message="Detected pickle protocol")  # torch's advice, for its developers
        model = load_official(args.checkpoint)
        try:
            path = save(model, output, replace=args.force)
        except PathExistsError as error:  # written by another process since the check
            if error.argument is None:
                raise
            raise error.renamed(f"-o {error.argument}", advice="pass --force to replace it") from None
    print(f"wrote {path} ({model.num_blocks} blocks); use it with --model {output}")


BENCH_DEFAULTS: dict[str, Any] = {
    "sizes": [256, 1024],
    "blocks": 16,
    "batch": 1,
    "train_crop": 128,
    "train_batch": 4,
    "depths": [4, 8, 16],
    "crops": [64, 128],
    "repeat": 3,
    "autocast": ["bfloat16"],
}
"""What ``invhide bench`` measures with when an option is not given (the parser's defaults are ``None``)."""

# The parts of invhide bench each option sets: given while --skip leaves out all of them, it would do nothing.
_BENCH_PARTS: dict[str, tuple[str, ...]] = {
    "sizes": ("inference",),
    "batch": ("inference",),
    "compile": ("inference",),
    "blocks": ("inference", "training", "autocast"),
    "repeat": ("inference", "training"),
    "train_crop": ("training",),
    "train_batch": ("training", "memory"),
    "depths": ("memory",),
    "crops": ("memory",),
    "autocast": ("autocast",),
}


def _bench_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of :func:`invhide.evaluation.speed.run` from the options, refusing options that would do nothing.

    Raises:
        invhide.errors.InputError: every part skipped; an option given for
            parts that ``--skip`` all leaves out (named); a batch whose images
            alone exceed this machine's memory.
    """
    skipped = set(args.skip)
    running = [part for part in speed.PARTS if part not in skipped]
    if not running or (running == ["autocast"] and args.autocast == []):
        raise InputError(f"--skip {' '.join(args.skip)}: every part is skipped, so nothing would be measured")
    given = [name for name in _BENCH_PARTS if getattr(args, name) not in (None, False)]
    idle = [name for name in given if skipped.issuperset(_BENCH_PARTS[name])]
    if idle:
        options = ", ".join("--" + name.replace("_", "-") for name in idle)
        parts = [part for part in speed.PARTS if any(part in _BENCH_PARTS[name] for name in idle)]
        they, them, sets = ("they", "them", "set") if len(idle) > 1 else ("it", "it", "sets")
        what = f"the {' and '.join(parts)} part{'s' if len(parts) > 1 else ''}"
        raise InputError(
            f"{options}: {sets} only {what}, which --skip leaves out, so {they} would do nothing; drop {them}, or "
            f"do not skip {what}"
        )
    settings = {name: getattr(args, name) for name in ("dtype", "threads", "skip")}
    for name, default in BENCH_DEFAULTS.items():
        value = getattr(args, name)
        settings[name] = default if value is None else value
    if "inference" in running:
        _check_batch_memory(settings["batch"], max(settings["sizes"]), "--batch", "--sizes")
    if "training" in running or "memory" in running:
        largest = max([settings["train_crop"]] * ("training" in running) + settings["crops"] * ("memory" in running))
        _check_batch_memory(settings["train_batch"], largest, "--train-batch", "--train-crop or --crops")
    return settings


def run_bench(args: argparse.Namespace) -> None:
    """``invhide bench``: :func:`invhide.evaluation.speed.run` with the command's options.

    Options that only set parts ``--skip`` leaves out are refused, as is a
    ``--skip`` of every part.
    """
    settings = _bench_settings(args)
    if args.json is None:
        speed.run(**settings, compile_subnets=args.compile, device=resolve_device(args.device))
        return
    check_file_output(args.json, "--json", force=args.force)
    with new_file(args.json, "--json", force=args.force) as target:
        speed.run(**settings, compile_subnets=args.compile, device=resolve_device(args.device), json_path=target)
