#!/usr/bin/env python
"""Learning-quality benchmark: train on ../shared/data/photos49, evaluate on ../shared/data/kodak24.

Trains a recipe (``quick`` by default) for a fixed number of steps on the 49
training photographs, then evaluates on the 24 Kodak images with the test
protocol of ../shared/data/README.md (image i hides image (i + 12) mod 24,
both centre-cropped to 256x256), and prints PSNR and SSIM of both pairs on RGB
and Y, for the float stego and the stego rounded to 8 bits, plus steps/s::

    python benchmarks/quality.py                      # the quick recipe (timings: docs/results.md)
    python benchmarks/quality.py --recipe paper --steps 2000 --device cuda

It writes its run (model, logs, results.json, figures) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from _shared import data_folder

from invhide.evaluation.speed import machine
from invhide.training.recipes import RECIPES, recipe, train_and_evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", choices=RECIPES, default="quick", help="training recipe (default: quick)")
    parser.add_argument("--steps", type=int, help="optimizer steps (default: the recipe's)")
    parser.add_argument("--eval-size", type=int, default=256, help="evaluation crop (default: 256)")
    rounding = parser.add_mutually_exclusive_group()
    rounding.add_argument(
        "--quantize", dest="quantize", action="store_true", default=None, help="train on the rounded stego"
    )
    rounding.add_argument("--no-quantize", dest="quantize", action="store_false", help="train on the float stego")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/quality"), help="output folder (default: runs/quality)")
    args = parser.parse_args()

    overrides = {"steps": args.steps, "seed": args.seed}
    if args.quantize is not None:
        overrides["quantize"] = args.quantize
    chosen = recipe(args.recipe, **overrides)
    report = train_and_evaluate(
        chosen,
        args.out,
        train_source=data_folder("photos49"),
        val_source=data_folder("kodak24"),
        eval_size=args.eval_size,
        device=args.device,
    )
    evaluation = report.evaluation
    if evaluation is None:  # a rank other than 0 under torchrun
        return
    speed = report.training.steps / report.training.seconds
    print(f"\nmachine: {machine(torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu')))}")
    print(
        f"recipe {chosen.name!r}, {report.training.steps} steps of {chosen.config.batch_size} pairs of "
        f"{chosen.config.crop}x{chosen.config.crop} crops, quantize={chosen.config.quantize}: "
        f"{report.training.seconds:.0f} s, {speed:.2f} steps/s"
    )
    print(f"kodak24, {evaluation.num_pairs} pairs, centre crops {args.eval_size}x{args.eval_size}:")
    print(f"{'stego':<7}{'pair':<17}{'PSNR RGB':>10}{'PSNR Y':>9}{'SSIM RGB':>10}{'SSIM Y':>9}")
    summary = {}
    for stego in evaluation.stego_settings:
        for row in ("cover/stego", "secret/recovery"):
            cells = [
                evaluation.mean(row, metric, channel, stego) for metric in ("psnr", "ssim") for channel in ("rgb", "y")
            ]
            summary[f"{stego} {row}"] = cells
            print(f"{stego:<7}{row:<17}{cells[0]:>10.2f}{cells[1]:>9.2f}{cells[2]:>10.4f}{cells[3]:>9.4f}")
    (args.out / "quality.json").write_text(
        json.dumps({"steps_per_s": speed, "seconds": report.training.seconds, "summary": summary}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
