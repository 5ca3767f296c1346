"""What each ``invhide`` command does, given its parsed options.

Each ``run_*`` function checks the options that name files, devices and sizes
first (raising an :class:`~invhide.errors.InvhideError` that names the
option), then calls the library: :mod:`invhide.models.inference` for
``hide`` and ``reveal``, :mod:`invhide.training.recipes` for ``train``,
:func:`invhide.evaluation.metrics.evaluate` for ``eval``,
:func:`invhide.evaluation.speed.run` for ``bench`` and
:mod:`invhide.models.official` for ``convert-official``. The parser is
:func:`invhide.cli.main.build_parser`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path
from typing import Any

from invhide.cli.common import (
    check_file_output,
    check_folder_output,
    check_image_output,
    load_model,
    resolve_device,
)
from invhide.errors import InputError

__all__ = ["run_bench", "run_convert", "run_eval", "run_hide", "run_reveal", "run_train", "tiling"]


def tiling(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """``tile``, ``overlap`` and ``progress`` for :mod:`invhide.models.inference` from ``--tile``/``--overlap``.

    Both are rounded up to the multiple of the model's wavelet step that
    tiling needs (2 for Haar).

    Raises:
        invhide.errors.InputError: ``--tile`` not more than twice ``--overlap``.
    """
    step = 2 * max(1, math.ceil(getattr(model, "min_size", 2) / 2))
    tile, overlap = (step * math.ceil(value / step) for value in (args.tile, args.overlap))
    if tile - 2 * overlap < step:
        raise InputError(
            f"--tile {args.tile} must exceed twice --overlap {args.overlap} by at least {step} "
            f"(each tile keeps its centre); pass a larger --tile or a smaller --overlap"
        )
    return {"tile": tile, "overlap": overlap, "progress": not args.quiet}


def _max_pixels(args: argparse.Namespace) -> int:
    from invhide.io.images import DEFAULT_MAX_PIXELS

    return args.max_pixels or DEFAULT_MAX_PIXELS


def run_hide(args: argparse.Namespace) -> None:
    """``invhide hide COVER SECRET -o STEGO.png``: :func:`invhide.models.inference.hide`, written as an 8-bit PNG."""
    from invhide.evaluation.metrics import psnr
    from invhide.io.images import read_image, write_image
    from invhide.models.inference import hide
    from invhide.nn.functional import quantize_8bit

    check_image_output(args.output)
    device = resolve_device(args.device)
    cover = read_image(args.cover, max_pixels=_max_pixels(args)).to(device)
    secret = read_image(args.secret, max_pixels=_max_pixels(args)).to(device)
    model = load_model(args.model, device)
    stego = hide(model, cover, secret, fit=args.fit, **tiling(args, model))
    write_image(stego, args.output)
    if not args.quiet:
        quality = psnr(quantize_8bit(stego)[None].float(), cover[None].float()).item()
        height, width = stego.shape[-2:]
        print(f"wrote {args.output} ({width}x{height}); cover/stego PSNR {quality:.2f} dB as saved (8-bit)")


def run_reveal(args: argparse.Namespace) -> None:
    """``invhide reveal STEGO -o SECRET.png``: :func:`invhide.models.inference.reveal`, ``z`` seeded by ``--seed``."""
    import torch

    from invhide.io.images import read_image, write_image
    from invhide.models.inference import reveal

    check_image_output(args.output)
    device = resolve_device(args.device)
    stego = read_image(args.stego, max_pixels=_max_pixels(args)).to(device)
    model = load_model(args.model, device)
    generator = torch.Generator(device).manual_seed(args.seed)
    secret = reveal(model, stego, generator=generator, **tiling(args, model))
    write_image(secret, args.output)
    if not args.quiet:
        print(f"wrote {args.output} ({secret.shape[-1]}x{secret.shape[-2]})")


def run_train(args: argparse.Namespace) -> None:
    """``invhide train``: :func:`invhide.training.recipes.recipe` and ``train_and_evaluate``, then the results."""
    import torch.distributed as dist

    from invhide.training.recipes import recipe, train_and_evaluate

    overrides = dict(steps=args.steps, crop=args.crop, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    if args.quantize is not None:
        overrides["quantize"] = args.quantize
    if args.memory_saving:
        overrides["memory_saving"] = True
    chosen = recipe("quick" if args.quick else args.preset, num_workers=args.workers, **overrides)
    for option, folder in (("--train-dir", args.train_dir), ("--val-dir", args.val_dir)):
        if folder is None and importlib.util.find_spec("skimage") is None:
            raise InputError(
                f"no {option} given, and the sample photographs used without it ship with scikit-image, which "
                f'is not installed: pass {option} FOLDER or pip install "invhide[samples]"'
            )
    check_folder_output(args.out, "--out")
    device = resolve_device(args.device) if args.device else None  # None: the trainer picks the local rank's GPU
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
    """``invhide eval FOLDER``: :func:`invhide.evaluation.metrics.evaluate` on the folder's pairs."""
    import torch

    from invhide.evaluation.metrics import evaluate
    from invhide.io.datasets import evaluation_pairs

    if args.json is not None:
        check_file_output(args.json, "--json")
    device = resolve_device(args.device)
    model = load_model(args.model, device)
    pairs = evaluation_pairs(args.folder, size=args.size)
    generator = torch.Generator(device).manual_seed(args.seed)
    evaluation = evaluate(model, pairs, batch_size=args.batch_size, device=device, generator=generator)
    print(evaluation.format())
    if args.json is not None:
        from invhide.io.files import atomic_write

        with atomic_write(args.json, "w") as file:
            json.dump(evaluation.to_dict(per_image=True), file, indent=2)


def run_convert(args: argparse.Namespace) -> None:
    """``invhide convert-official model.pt -o OUT``: import a reference checkpoint and save it as safetensors."""
    from invhide.io.checkpoint import save
    from invhide.models.hinet import HiNet

    output: Path = args.output
    if output.suffix == ".safetensors":
        check_file_output(output, "-o")
    else:
        check_folder_output(output, "-o")
    model = HiNet.from_official_checkpoint(args.checkpoint)
    path = save(model, output)
    print(f"wrote {path} ({model.num_blocks} blocks); use it with --model {output}")


def run_bench(args: argparse.Namespace) -> None:
    """``invhide bench``: :func:`invhide.evaluation.speed.run` with the command's options."""
    from invhide.evaluation.speed import run

    if args.json is not None:
        check_file_output(args.json, "--json")
    run(
        sizes=args.sizes,
        blocks=args.blocks,
        batch=args.batch,
        train_crop=args.train_crop,
        train_batch=args.train_batch,
        depths=args.depths,
        crops=args.crops,
        repeat=args.repeat,
        dtype=args.dtype,
        threads=args.threads,
        compile_subnets=args.compile,
        autocast=args.autocast,
        skip=args.skip,
        device=resolve_device(args.device),
        json_path=args.json,
    )
