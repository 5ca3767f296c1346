#!/usr/bin/env python
"""Where a model puts the hidden signal, in JPEG's terms, and how much of each part a real JPEG keeps.

The hidden signal is ``stego - cover`` (the stego rounded to 8 bits, as a
PNG holds it), on kodak24's 24 pairs at 256x256. It is split as a JPEG
splits an image: JPEG's YCbCr (ITU-T T.871), then the 8x8 block DCT; each
of Y, Cb and Cr in two parts, the lowest 3x3 of the 64 frequencies and the
rest. For each part the table gives its share of the signal's energy and
how much of it survives Pillow's JPEG at ``--quality`` (4:2:0), measured as
the coherent gain ``<k, r> / <r, r>``, where ``r`` is the hidden signal and
``k = jpeg(stego) - jpeg(cover)``: 1 when the part passes unchanged, 0 when
nothing of it is left (quantisation noise, uncorrelated with ``r``, does
not count). A second table sends only one part of the stego through the
JPEG, luminance or colour (the other kept as sent; YCbCr, then back to RGB,
not rounded again), and gives the secret revealed (``z = 0``) from each,
which says which part of the codec's change the reveal cannot take::

    python benchmarks/hidden_signal.py --models conv8-photos49-v2 conv8-photos49-robust

Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from _shared import data_folder
from torch import Tensor

from invhide.evaluation import channels as real
from invhide.evaluation.metrics import psnr
from invhide.io.datasets import evaluation_pairs
from invhide.models import zoo

YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
LOW = 3  # the lowest LOW x LOW DCT frequencies of each 8x8 block


def _dct_matrix(n: int = 8) -> Tensor:
    """The orthonormal DCT-II matrix, ``D @ block @ D.T`` transforms a block."""
    k, i = torch.arange(n, dtype=torch.float64)[:, None], torch.arange(n, dtype=torch.float64)[None]
    matrix = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    matrix[0] /= math.sqrt(2)
    return matrix


def block_dct(image: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB differences on the 0-1 scale -> ``(B, 3, H/8, W/8, 8, 8)`` YCbCr DCT on the 0-255 scale."""
    ycbcr = torch.einsum("ij,bjhw->bihw", YCBCR.to(image), image) * 255
    b, c, h, w = ycbcr.shape
    blocks = ycbcr.reshape(b, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)
    matrix = _dct_matrix().to(image)
    return matrix @ blocks @ matrix.T


def _mixed(luminance: Tensor, colour: Tensor) -> Tensor:
    """RGB with the Y of ``luminance`` and the Cb, Cr of ``colour``."""
    ycbcr = YCBCR.to(luminance)
    y = torch.einsum("ij,bjhw->bihw", ycbcr[:1], luminance)
    cbcr = torch.einsum("ij,bjhw->bihw", ycbcr[1:], colour)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(ycbcr), torch.cat([y, cbcr], dim=1))


def split_reveal(model: torch.nn.Module, stego: Tensor, received: Tensor, secret: Tensor) -> dict[str, float]:
    """Secret PSNR (dB, mean) when the whole stego (``received``: its JPEG), only its colour or only its luminance
    goes through the JPEG."""
    z = torch.zeros_like(secret)
    cases = {
        "png": stego,
        "jpeg": received,
        "only colour through jpeg": _mixed(stego, received),
        "only luminance through jpeg": _mixed(received, stego),
    }
    return {case: psnr(model.reveal(x, z=z).clamp(0, 1), secret).mean().item() for case, x in cases.items()}


def measure(name: str, cover: Tensor, cover_jpeg: Tensor, secret: Tensor, quality: int) -> dict[str, dict[str, float]]:
    """Energy share and coherent JPEG gain of each part (Y/Cb/Cr x low/rest) of one model's hidden signal, and
    :func:`split_reveal`; ``cover_jpeg`` is the covers' JPEG at ``quality``."""
    model = zoo.load(name).to(torch.float64).eval()
    with torch.no_grad():
        stego = real.round8(model.hide(cover, secret)[0].clamp(0, 1))
        received = real.jpeg(stego, quality)
        reveals = split_reveal(model, stego, received, secret)
    hidden = block_dct(stego - cover)
    kept = block_dct(received - cover_jpeg)
    energy, coherent = (hidden**2).sum(dim=(0, 2, 3)), (hidden * kept).sum(dim=(0, 2, 3))  # (3, 8, 8)
    low = torch.zeros(8, 8, dtype=torch.bool)
    low[:LOW, :LOW] = True
    total = energy.sum().item()
    parts = {}
    for index, component in enumerate(("Y", "Cb", "Cr")):
        for part, mask in (("low", low), ("rest", ~low)):
            e, c = energy[index][mask].sum().item(), coherent[index][mask].sum().item()
            parts[f"{component} {part}"] = {"share": e / total, "kept": c / e}
    return {"parts": parts, "secret_psnr": reveals}


def main() -> None:
    """Measure each model and print the table; optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["conv8-photos49-v2", "conv8-photos49-robust"])
    parser.add_argument("--quality", type=int, default=90, help="Pillow JPEG quality")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pairs = evaluation_pairs(data_folder("kodak24"), size=256)
    cover = real.round8(torch.stack([p.cover for p in pairs]).double())
    secret = torch.stack([p.secret for p in pairs]).double()
    cover_jpeg = real.jpeg(cover, args.quality)
    results = {name: measure(name, cover, cover_jpeg, secret, args.quality) for name in args.models}
    print(
        f"kodak24, 24 pairs, 256x256: hidden signal (8-bit stego - cover) in YCbCr 8x8 DCT; 'low' = lowest {LOW}x{LOW}"
    )
    print(f"share: of the signal's energy; kept: coherent gain through Pillow JPEG q{args.quality} (1 = intact)")
    for name, result in results.items():
        parts = result["parts"]
        print(f"\n{name}")
        print(f"{'part':<10}{'share':>8}{'kept':>8}")
        for part, row in parts.items():
            print(f"{part:<10}{row['share']:>8.1%}{row['kept']:>8.2f}")
        colour = sum(row["share"] for part, row in parts.items() if not part.startswith("Y"))
        print(f"{'colour':<10}{colour:>8.1%}")
        print("secret PSNR, dB: " + ", ".join(f"{case} {value:.2f}" for case, value in result["secret_psnr"].items()))
    if args.json:
        args.json.write_text(json.dumps({"quality": args.quality, "models": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
