#!/usr/bin/env python
"""Where a reveal goes wrong: the squared error on the 8x8 tile borders a key shuffles, against the rest.

A keyed hider's key shuffles the secret's 8x8-pixel tiles before the
couplings, whose convolutions then mix each tile with random neighbours. This
measures, on kodak24 (24 pairs, 256x256 centre crops, image ``i`` hiding
image ``i + 12``, the stego rounded to 8 bits, revealed with ``z = 0``, a
random key per batch), the mean squared error of the revealed secret on the
pixels of each tile's first and last row and column (7/16 of the pixels) and
on the others, for each model, with and without its refiner::

    python benchmarks/tile_borders.py conv8-photos49-v2 conv8-photos49-keyed

Pooled over all pairs (so the PSNRs printed are of the pooled error, not
the mean over pairs that the tables elsewhere give). Measures and prints;
asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import os

import torch
from _shared import data_folder

import invhide
from invhide.io.datasets import evaluation_pairs
from invhide.nn.functional import quantize_8bit
from invhide.nn.refiners import tile_borders

TILE = 8


def squared_errors(model: torch.nn.Module, cover: torch.Tensor, secret: torch.Tensor, refine: bool) -> torch.Tensor:
    """``(H, W)`` mean squared error of the revealed secrets per pixel position."""
    errors = []
    for start in range(0, cover.shape[0], 8):
        options = {"key": os.urandom(32)} if model.keyed else {}
        stego, _ = model.hide(cover[start : start + 8], secret[start : start + 8], **options)
        revealed = model.reveal(quantize_8bit(stego), refine=refine, **options).clamp(0, 1)
        errors.append((revealed - secret[start : start + 8]) ** 2)
    return torch.cat(errors).mean(dim=(0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="shipped names or paths")
    args = parser.parse_args()
    pairs = evaluation_pairs(data_folder("kodak24"), size=256)
    cover, secret = torch.stack([p.cover for p in pairs]), torch.stack([p.secret for p in pairs])
    border = tile_borders(256, 256, TILE, cover).amax(dim=1)[0].bool()
    print(f"kodak24, {len(pairs)} pairs at 256x256; tile-border pixels: {border.float().mean().item():.4f} of all")
    print("| model | refiner | pooled PSNR (dB) | border MSE | interior MSE | border / interior |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    with torch.no_grad():
        for name in args.models:
            model = invhide.load(name).float().eval()
            for refine in (False, True) if model.refiner is not None else (False,):
                error = squared_errors(model, cover, secret, refine)
                edge, inner = error[border].mean().item(), error[~border].mean().item()
                pooled = -10 * math.log10(error.mean().item())
                print(
                    f"| {name} | {'yes' if refine else 'no'} | {pooled:.2f} | {edge * 1e4:.2f}e-4 | "
                    f"{inner * 1e4:.2f}e-4 | {edge / inner:.2f} |"
                )


if __name__ == "__main__":
    main()
