#!/usr/bin/env python
"""Can the hidden signal live in luminance only? A stego that keeps its cover's colour, fine-tuned through JPEG.

``benchmarks/hidden_signal.py`` found that a JPEG of quality 90 keeps the
luminance part of the robust model's hidden signal almost whole and its
colour detail not at all (4:2:0, then coarse quantisation), and that the
reveal depends on the stego's colour: the colour part alone, sent through the
JPEG, costs the robust model's secret more than the luminance part does.
This study tries the next design's core idea without building it: a hider
whose stego *is* its cover in colour. :class:`LumaLocked` wraps a hider and
replaces its stego's chroma (JPEG's Cb and Cr, kornia's conversion) with the
cover's before anything else sees the stego, so that the secret can only
travel in luminance (the reveal is the wrapped hider's, unchanged; a
research model, not a library part: it breaks exact inversion from the
clean stego).

The robust model wrapped so is fine-tuned for ``--steps`` steps (``--rounds``
times in a row, each with its own warm-up and cosine schedule) exactly as
the robust README's "same mix" lever continuation was (the ``cpu`` recipe,
lr 5e-5 after 100 warm-up steps, concealing weight 10, 64x64 ``photos49``
crops, a fresh channel per image and step: kornia's JPEG 70-95, noise
sigma 1-10 or rounding, then 8 bits), then measured on kodak24 (24 pairs,
256x256, real Pillow files, ``z = 0``) beside the robust model as shipped
and the robust model wrapped before any fine-tuning.

python benchmarks/luma_only.py --train-dir ../shared/data/photos49 --pairs-dir ../shared/data/kodak24 \\
    --steps 3000 --rounds 3 --json benchmarks/results/luma-only.json

A benchmark measures and prints; it never asserts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from kornia.color import rgb_to_ycbcr, ycbcr_to_rgb
from torch import Tensor, nn

import invhide
from invhide.evaluation.channels import parse
from invhide.evaluation.metrics import evaluate
from invhide.io.datasets import ImageDataset, evaluation_pairs
from invhide.training import Trainer
from invhide.training.recipes import recipe

CHANNELS = ("jpeg:90", "jpeg:75", "noise:2")
"""The real channels measured (the issue's goals), beside the lossless PNG."""
TRAINING_CHANNELS = ("jpeg:70-95", "noise:1-10", "round")
"""The shipped robust model's training mix."""


def with_colour_of(stego: Tensor, cover: Tensor) -> Tensor:
    """``stego``'s luminance (Y) with ``cover``'s chroma (Cb, Cr); differentiable in ``stego``'s luminance."""
    stego_ycc, cover_ycc = rgb_to_ycbcr(stego), rgb_to_ycbcr(cover)
    return ycbcr_to_rgb(torch.cat([stego_ycc[:, :1], cover_ycc[:, 1:]], dim=1))


class LumaLocked(nn.Module):
    """A hider whose stego keeps the cover's colour: the wrapped hider's stego with its chroma replaced."""

    keyed, num_secrets, channels, min_size = False, 1, 3, 2

    def __init__(self, hider: nn.Module) -> None:
        super().__init__()
        self.hider = hider

    def hide(self, cover: Tensor, secret: Tensor, **options: object) -> tuple[Tensor, Tensor]:
        stego, lost = self.hider.hide(cover, secret, **options)
        return with_colour_of(stego, cover), lost

    def reveal(self, stego: Tensor, z: Tensor | None = None, **options: object) -> Tensor:
        return self.hider.reveal(stego, z=z, **options)


def measure(model: nn.Module, pairs: list) -> dict[str, float]:
    """kodak24's stego (8-bit PNG) and secret PSNRs (RGB, dB) from the PNG and after each of :data:`CHANNELS`."""
    result = evaluate(model, pairs, quantize=(True,), channels=[parse(spec) for spec in CHANNELS])
    found = {"stego": result.mean("cover/stego", "psnr", stego="8-bit")}
    for setting in ("8-bit", *CHANNELS):
        found[f"secret {setting}"] = result.mean("secret/recovery", "psnr", stego=setting)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", default="conv8-photos49-robust", help="the hider to wrap and fine-tune")
    parser.add_argument("--train-dir", type=Path, required=True)
    parser.add_argument("--pairs-dir", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=3000, help="steps of each round")
    parser.add_argument("--rounds", type=int, default=1, help="fine-tunes in a row, each measured (default 1)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    pairs = evaluation_pairs(args.pairs_dir, size=256)
    results: dict[str, dict[str, float]] = {}
    results["as shipped"] = measure(invhide.load(args.init).eval(), pairs)
    print("as shipped", json.dumps({k: round(v, 2) for k, v in results["as shipped"].items()}), flush=True)
    model = LumaLocked(invhide.load(args.init))
    results["colour locked, before"] = measure(model.eval(), pairs)
    print("colour locked, before", json.dumps({k: round(v, 2) for k, v in results["colour locked, before"].items()}))
    chosen = recipe(
        "cpu",
        steps=args.steps,
        lr=5e-5,
        warmup_steps=100,
        quantize_from=0,
        val_every=10**9,
        checkpoint_every=10**9,
        tensorboard=False,
        weight_schedule=((0, "concealing", 10.0),),
        crop=64,
        channels=TRAINING_CHANNELS,
    )
    data = ImageDataset(args.train_dir, crop=chosen.config.crop, cache=True)
    seconds = 0.0
    for round_ in range(1, args.rounds + 1):  # each round a fresh schedule (warm-up, cosine) from the last weights
        started = time.perf_counter()
        Trainer(model.train(), chosen.build_loss(), data, chosen.config, progress=False).fit()
        seconds += time.perf_counter() - started
        name = f"colour locked, + {round_ * args.steps} steps"
        results[name] = measure(model.eval(), pairs)
        print(name, json.dumps({k: round(v, 2) for k, v in results[name].items()}), f"({seconds:.0f} s)", flush=True)
        if args.json:
            record = {"init": args.init, "steps": args.steps, "rounds": round_, "train_seconds": seconds}
            args.json.write_text(json.dumps({**record, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
