#!/usr/bin/env python
"""Tiling benchmark: does processing in tiles change the stego or leave seams in the recovered secret?

Hides a 512x768 Kodak image in another with a trained model, once on the whole
image and once per tile, for several tile sizes and overlaps, and reveals both
ways with the same z. Prints, against the whole-image computation: the max and
mean absolute difference of the stego and of the recovered secret, the PSNR of
the tiled recovery against the whole-image one, and a seam ratio: the mean
absolute difference within 2 pixels of a tile boundary divided by the mean
elsewhere (1 means no seam)::

    python benchmarks/tiling.py --model runs/quality
"""

from __future__ import annotations

import argparse

import torch
from _shared import data_folder

import invhide
from invhide.evaluation.metrics import psnr
from invhide.io.datasets import evaluation_pairs
from invhide.models.inference import hide, reveal, tiles


def boundary_mask(height: int, width: int, tile: int, overlap: int) -> torch.Tensor:
    mask = torch.zeros(height, width, dtype=torch.bool)
    for _, _, start, _ in tiles(height, tile, overlap)[1:]:
        mask[max(0, start - 2) : start + 2] = True
    for _, _, start, _ in tiles(width, tile, overlap)[1:]:
        mask[:, max(0, start - 2) : start + 2] = True
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained model (file or run folder)")
    parser.add_argument("--tiles", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 8, 16, 32, 64])
    args = parser.parse_args()

    model = invhide.load(args.model)
    pair = evaluation_pairs(data_folder("kodak24"), size=None)[0]
    cover, secret = pair.cover[:, :512, :768], pair.secret[:, :512, :768]
    height, width = cover.shape[-2:]
    z = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    whole_stego = hide(model, cover, secret)
    whole_secret = reveal(model, whole_stego, z=z)
    print(f"{pair.names[0]} hides {pair.names[1]}, {width}x{height}, model {args.model}")
    print(f"{'tile':>5}{'overlap':>8}{'stego max':>11}{'stego mean':>12}{'secret max':>12}{'secret mean':>13}"
          f"{'PSNR vs whole':>15}{'seam ratio':>12}")  # fmt: skip
    for tile in args.tiles:
        for overlap in args.overlaps:
            if tile - 2 * overlap < 2:
                continue
            stego = hide(model, cover, secret, tile=tile, overlap=overlap)
            recovered = reveal(model, stego, z=z, tile=tile, overlap=overlap)
            stego_diff = (stego - whole_stego).abs()
            secret_diff = (recovered - whole_secret).abs().mean(0)
            versus_whole = psnr(recovered[None], whole_secret[None]).item()
            mask = boundary_mask(height, width, tile, overlap)
            ratio = secret_diff[mask].mean().item() / max(secret_diff[~mask].mean().item(), 1e-12)
            print(
                f"{tile:>5}{overlap:>8}{stego_diff.max().item():>11.2e}{stego_diff.mean().item():>12.2e}"
                f"{secret_diff.max().item():>12.2e}{secret_diff.mean().item():>13.2e}{versus_whole:>15.2f}{ratio:>12.2f}"
            )


if __name__ == "__main__":
    main()
