#!/usr/bin/env python
"""8-bit PNG round trip through the ``invhide`` command, each step in a new process.

For the first ``--pairs`` Kodak pairs (image i hides image (i + 12) mod 24,
centre-cropped to ``--size``): writes cover and secret as PNGs, runs
``invhide hide`` (one process) to write the stego PNG, then ``invhide reveal``
(another process) to recover the secret from that PNG, and compares the
recovered PSNR with the one obtained from the float stego, in memory, with the
same z (seed 0)::

    python benchmarks/png_roundtrip.py --model runs/quality
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from _shared import data_folder

import invhide
from invhide.evaluation.metrics import psnr
from invhide.io.datasets import evaluation_pairs
from invhide.io.images import read_image, write_image
from invhide.nn.functional import quantize_8bit


def image_psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """RGB PSNR in dB of two ``(3, H, W)`` images (:func:`invhide.evaluation.metrics.psnr`)."""
    return psnr(x[None], y[None]).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained model (file or run folder)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args()

    model = invhide.load(args.model)  # on the CPU, like the commands below: the same z from the same seed
    pairs = evaluation_pairs(data_folder("kodak24"), size=args.size)[: args.pairs]
    command = [sys.executable, "-m", "invhide.cli"]
    print(
        f"{'cover':<12}{'secret':<12}{'stego PSNR (PNG)':>17}{'secret PSNR float':>19}{'secret PSNR PNG':>17}{'gap':>7}"
    )
    gaps = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for pair in pairs:
            write_image(pair.cover, folder / "cover.png")
            write_image(pair.secret, folder / "secret.png")
            cover, secret = read_image(folder / "cover.png"), read_image(folder / "secret.png")
            subprocess.run([*command, "hide", folder / "cover.png", folder / "secret.png", "-o", folder / "stego.png",
                            "--model", args.model, "--device", "cpu", "--quiet", "--force"], check=True)  # fmt: skip
            subprocess.run([*command, "reveal", folder / "stego.png", "-o", folder / "recovered.png",
                            "--model", args.model, "--seed", "0", "--device", "cpu", "--quiet", "--force"],
                           check=True)  # fmt: skip
            stego_png, recovered_png = read_image(folder / "stego.png"), read_image(folder / "recovered.png")
            with torch.inference_mode():
                stego, _ = model.hide(cover[None], secret[None])
                z = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
                # written to a PNG, the recovered secret is rounded to 8 bits too: compare like with like
                recovered = quantize_8bit(model.reveal(stego, z=z).clamp(0, 1)[0])
            from_float, from_png = image_psnr(recovered, secret), image_psnr(recovered_png, secret)
            gaps.append(from_float - from_png)
            print(f"{pair.names[0]:<12}{pair.names[1]:<12}{image_psnr(stego_png, cover):>17.2f}{from_float:>19.2f}"
                  f"{from_png:>17.2f}{gaps[-1]:>7.2f}")  # fmt: skip
    print(
        f"mean gap (float stego minus PNG stego): {sum(gaps) / len(gaps):.2f} dB "
        f"over {len(gaps)} pairs, {args.size}x{args.size}"
    )


if __name__ == "__main__":
    main()
