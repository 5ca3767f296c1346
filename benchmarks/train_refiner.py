#!/usr/bin/env python
"""Train a refiner beside a frozen hider and measure the reveal with and without it on kodak24 (real 8-bit PNGs).

A keyed hider's reveal is wrong mostly along the 8x8 tile borders its key
shuffles (see :mod:`invhide.nn.refiners`); a refiner told where those
borders are learns to mend them. This trains one with
:func:`invhide.training.refine.train_refiner` on ``--train-dir`` crops, then
evaluates the model without and with it on ``--val-dir`` (24 pairs, image
``i`` hiding image ``i + n/2``, 256x256 centre crops, the stego rounded to
8 bits, revealed with ``z = 0``, a keyed model under the public key, which
measures as any key does), and saves the refined model (``model.safetensors``
and ``config.json``) and both evaluations (``results.json``) under ``--out``::

    python benchmarks/train_refiner.py --model conv8-photos49-keyed --out runs/refined \\
        --train-dir ../shared/data/photos49 --val-dir ../shared/data/kodak24

Measures and prints; asserts nothing. The hider's own weights are never changed.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

import invhide
from invhide.evaluation.metrics import evaluate
from invhide.io.checkpoint import save
from invhide.io.datasets import evaluation_pairs
from invhide.models.hider import PublicKeyWarning
from invhide.training.refine import train_refiner, with_refiner, without_refiner


def _measure(model: torch.nn.Module, pairs: list) -> dict:
    with warnings.catch_warnings():  # the public key measures as any key does
        warnings.simplefilter("ignore", PublicKeyWarning)
        evaluation = evaluate(model, pairs)
    print(evaluation.format())
    return evaluation.to_dict(per_image=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="conv8-photos49-keyed", help="the hider (name or path)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the refined model and results")
    parser.add_argument("--train-dir", type=Path, required=True)
    parser.add_argument("--val-dir", type=Path, required=True)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=768)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=False)
    model = without_refiner(invhide.load(args.model).float()).eval()  # a shipped refiner is replaced, not stacked
    pairs = evaluation_pairs(args.val_dir, size=256)
    print(f"{args.model} without a refiner, {args.val_dir.name} ({len(pairs)} pairs):")
    before = _measure(model, pairs)
    refined = with_refiner(model, hidden=args.hidden, depth=args.depth)
    print(f"refiner: {refined.refiner}")
    started = time.perf_counter()
    report = train_refiner(
        refined,
        args.train_dir,
        pairs=args.pairs,
        crop=args.crop,
        window=args.window,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        progress=False,
    )
    minutes = (time.perf_counter() - started) / 60
    print(f"with the refiner ({minutes:.1f} min to train, pool included):")
    after = _measure(refined.eval(), pairs)
    save(refined, args.out / "model.safetensors")
    results = {
        "command": vars(args) | {"out": str(args.out), "train_dir": str(args.train_dir), "val_dir": str(args.val_dir)},
        "training": {**report.__dict__, "minutes": minutes},
        "without": before,
        "with": after,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
