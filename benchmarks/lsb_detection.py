#!/usr/bin/env python
"""Steganalysis benchmark: every detector against LSB replacement made from the shared photographs.

The covers are centre crops of the photographs of ../shared/data (photos49,
kodak24, mcmaster and cbsd68 by default: 159 photographs); each stego image
is its cover with LSB replacement at ``--rate`` bits per channel (0.4 by
default) at random positions. Every detector of
:mod:`invhide.evaluation.steganalysis` runs under its protocol (2-fold
cross-validation by pair, 95% bootstrap intervals), then again on covers
against other covers (the pool shuffled and cut in two halves), which must
give chance. It prints accuracy, AUC and the time per image of each detector,
and the accuracy on each image set::

    python benchmarks/lsb_detection.py                       # every set, every default detector
    python benchmarks/lsb_detection.py --roc docs/figures/lsb-roc.png --json runs/lsb.json
    python benchmarks/lsb_detection.py --sets kodak24 --crop 256 --detectors spa fused

It never asserts a time; the figures are what this machine measured.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _shared import data_folder

from invhide.evaluation.speed import machine
from invhide.evaluation.steganalysis import DEFAULT_DETECTORS, DETECTORS, evaluate_detectors, lsb_replacement
from invhide.evaluation.steganalysis.classic import levels
from invhide.evaluation.steganalysis.learned import DEFAULT_TRAINING
from invhide.evaluation.steganalysis.protocol import SecurityReport, fold_of_pairs
from invhide.io.datasets import center_crop, list_images
from invhide.io.images import read_image

SETS = ("photos49", "kodak24", "mcmaster", "cbsd68")


def per_set(report: SecurityReport, tags: list[str]) -> dict[str, dict[str, float]]:
    """Accuracy of each detector on the pairs of each image set (from the report's scores and thresholds)."""
    fold = fold_of_pairs(report.pairs, report.folds, report.seed)
    names = np.array(tags)
    table = {}
    for name, result in report.detectors.items():
        cuts = np.asarray(result.thresholds)[fold]
        correct = np.stack((result.cover_scores <= cuts, result.stego_scores > cuts))
        table[name] = {tag: float(correct[:, names == tag].mean()) for tag in dict.fromkeys(tags)}
    return table


def load_covers(sets: list[str], crop: int) -> tuple[list[torch.Tensor], list[str]]:
    """The photographs of ``sets`` as 8-bit levels (centre crops of ``crop``, 0: whole), and each one's set."""
    covers, tags = [], []
    for name in sets:
        for path in list_images(data_folder(name)):
            image = read_image(path)
            if crop:
                if min(image.shape[-2:]) < crop:
                    continue
                image = center_crop(image, crop)
            covers.append(levels(image))
            tags.append(name)
    return covers, tags


def lsb_run(args: argparse.Namespace, covers: list, tags: list[str], common: dict) -> tuple[SecurityReport, dict]:
    """Covers against their LSB stego images: the report, printed with its accuracy per image set."""
    generator = torch.Generator().manual_seed(args.seed)
    stegos = [lsb_replacement(cover, args.rate, generator=generator) for cover in covers]
    report = evaluate_detectors(covers, stegos, args.detectors, log=print, **common)
    print(f"\ncovers against their stego images ({report.pairs} pairs, {report.folds}-fold by pair):")
    print(report.format())
    table = per_set(report, tags)
    print("\naccuracy per image set:")
    print(f"{'':<14}" + "".join(f"{name:>10}" for name in dict.fromkeys(tags)))
    for name, row in table.items():
        print(f"{name:<14}" + "".join(f"{value:>10.1%}" for value in row.values()))
    return report, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=list(SETS), help=f"image sets (default: {' '.join(SETS)})")
    parser.add_argument("--crop", type=int, default=320, help="centre-crop side; 0 for whole images (default: 320)")
    parser.add_argument("--rate", type=float, default=0.4, help="LSB replacement, bits per channel (default: 0.4)")
    parser.add_argument("--detectors", nargs="+", choices=DETECTORS, default=list(DEFAULT_DETECTORS))
    parser.add_argument("--folds", type=int, default=2, help="cross-validation folds by pair (default: 2)")
    parser.add_argument("--cnn-steps", type=int, help="training steps of the learned detectors (default: theirs)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-chance", action="store_true", help="skip the cover-against-cover run")
    parser.add_argument("--roc", type=Path, help="write the ROC curves of the LSB run to this PNG")
    parser.add_argument("--json", type=Path, help="write both reports to this JSON file")
    args = parser.parse_args()
    start = time.perf_counter()
    covers, tags = load_covers(args.sets, args.crop)
    training = None
    if args.cnn_steps:
        training = {name: replace(settings, steps=args.cnn_steps) for name, settings in DEFAULT_TRAINING.items()}
    counts = ", ".join(f"{tags.count(name)} {name}" for name in dict.fromkeys(tags))
    side = f"{args.crop}x{args.crop} centre crops" if args.crop else "whole images"
    print(f"machine: {machine(torch.device(args.device))}")
    print(f"{len(covers)} photographs ({counts}), {side}; LSB replacement at {args.rate} bits per channel\n")

    common = dict(folds=args.folds, seed=args.seed, resamples=args.bootstrap, training=training, device=args.device)
    report, table = lsb_run(args, covers, tags, common)
    results = {"lsb": report.to_dict(), "lsb_per_set": table}
    results["lsb"]["rate"] = args.rate
    if not args.no_chance:  # covers against other covers: the pool shuffled and cut in two halves
        order = np.random.default_rng(args.seed).permutation(len(covers))
        half = len(covers) // 2
        first, second = [covers[i] for i in order[:half]], [covers[i] for i in order[half : 2 * half]]
        chance = evaluate_detectors(first, second, args.detectors, log=print, **common)
        print(f"\ncovers against other covers ({chance.pairs} pairs, {chance.folds}-fold by pair; chance is 50%):")
        print(chance.format())
        results["cover_vs_cover"] = chance.to_dict()

    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    results["lsb"]["roc"] = {
        name: {"fpr": result.fpr.tolist(), "tpr": result.tpr.tolist()} for name, result in report.detectors.items()
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.roc is not None:
        args.roc.parent.mkdir(parents=True, exist_ok=True)
        title = f"LSB replacement at {args.rate} bpc, {report.pairs} photographs ({side}), {report.folds}-fold by pair"
        report.roc_figure(args.roc, title=title)
        print(f"wrote {args.roc}")


if __name__ == "__main__":
    main()
