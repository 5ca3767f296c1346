#!/usr/bin/env python
"""How close each differentiable channel (invhide.training.channels) comes to the real one it stands in for.

On the first ``--images`` Kodak photographs (centre crops of ``--size``, the
covers of :func:`invhide.io.datasets.evaluation_pairs`), prints the mean PSNR
in dB between the stand-in's output and the real channel's
(:mod:`invhide.evaluation.channels`: Pillow's JPEG and resize, 8-bit noise),
and each one's PSNR against the input, so the two losses can be compared
(for noise, whose draws are independent, only the latter and the residual
standard deviations)::

    python benchmarks/channel_fidelity.py --images 24

Measures and prints; asserts nothing. The JPEG rows need kornia.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import torch
from _shared import data_folder

from invhide.evaluation import channels as real
from invhide.evaluation.metrics import psnr
from invhide.io.datasets import evaluation_pairs
from invhide.training import channels as train

JPEG_QUALITIES = (50, 75, 90, 95)
RESIZE_SCALES = (0.5, 0.75)
NOISE_SIGMAS = (2.0, 10.0)


def mean_psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over the batch of the per-image RGB PSNR in dB."""
    return psnr(x, y).mean().item()


def row(name: str, surrogate: torch.Tensor, reference: torch.Tensor, photos: torch.Tensor, paired: bool = True) -> None:
    """One table row; ``paired=False`` for independent random draws, which are not compared pixel by pixel."""
    agreement = f"{mean_psnr(surrogate, reference):>12.2f}" if paired else f"{'-':>12}"
    print(f"{name:<28}{agreement}{mean_psnr(surrogate, photos):>14.2f}{mean_psnr(reference, photos):>12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=24, help="how many Kodak photographs (1 to 24)")
    parser.add_argument("--size", type=int, default=256, help="side of the centre crops")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    pairs = evaluation_pairs(data_folder("kodak24"), size=args.size)[: args.images]
    photos = torch.stack([pair.cover for pair in pairs])
    print(f"{len(photos)} Kodak photographs, {args.size}x{args.size} centre crops; mean PSNR in dB")
    print(f"{'channel':<28}{'stand-in vs':>12}{'stand-in vs':>14}{'real vs':>12}")
    print(f"{'':<28}{'real':>12}{'input':>14}{'input':>12}")

    if importlib.util.find_spec("kornia") is None:
        print("jpeg: skipped, kornia is not installed (pip install kornia)")
    else:
        for quality in JPEG_QUALITIES:
            surrogate = train.JPEG(quality)(photos)
            reference = real.jpeg(photos, quality)
            row(f"jpeg:{quality} (kornia)", surrogate, reference, photos)
            row(f"jpeg:{quality} (kornia, rounded)", train.Rounding8Bit()(surrogate), reference, photos)

    for scale in RESIZE_SCALES:
        reference = real.resize(photos, scale)
        for mode in ("bicubic", "bilinear"):
            row(f"resize:{scale:g} ({mode})", train.Resize(scale, mode=mode)(photos), reference, photos)

    for sigma in NOISE_SIGMAS:
        generator = torch.Generator().manual_seed(args.seed)
        surrogate = train.Sequence(train.GaussianNoise(sigma), train.Rounding8Bit())(photos, generator)
        reference = real.gaussian_noise(photos, sigma, torch.Generator().manual_seed(args.seed + 1))
        row(f"noise:{sigma:g} (rounded)", surrogate, reference, photos, paired=False)
        stds = [((y - photos) * 255).std().item() for y in (surrogate, reference)]
        print(f"{'':<4}residual std: stand-in {stds[0]:.3f}, real {stds[1]:.3f} grey levels")

    print(f"({time.perf_counter() - start:.1f} s, {args.threads} thread(s))")


if __name__ == "__main__":
    main()
