#!/usr/bin/env python
"""Fine-tune a trained unkeyed model into a keyed one, and measure it on real 8-bit PNG round trips.

A keyed hider has the same parameters as its unkeyed twin (the key's
permutation has none), so a keyed model can start from the shipped default's
weights: it then has to learn to hide secrets whose wavelet tiles arrive in a
key-dependent order, a fresh random key per pair and step. The run trains with
the ``cpu`` recipe's loss and settings, overridden as given, revealing from
the 8-bit stego from the first step (``quantize_from=0``, with the recipe's
fine-tune concealing weight), validates on ``--val-dir`` and writes
everything under ``--out`` (resumable: run the same command again). With
``--channel`` it trains through lossy channels as ``invhide train --channel``
does; ``--init`` may name a keyed model too (keying it again changes nothing).
``--chroma WEIGHT`` adds :class:`invhide.training.losses.ChromaLoss` to the
loss with that weight, reduced as the concealing term is (the stego's colour
change charged on top of the concealing loss).

python benchmarks/keyed_finetune.py --out runs/keyed --steps 4000 --lr 3e-4 \\
    --train-dir ../shared/data/photos49 --val-dir ../shared/data/kodak24

A benchmark measures and prints; it never asserts.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import invhide
from invhide.models.hider import InvertibleHider
from invhide.training.losses import ChromaLoss, HidingLoss
from invhide.training.recipes import recipe, train_and_evaluate


def keyed_copy(model: InvertibleHider) -> InvertibleHider:
    """A keyed hider with ``model``'s architecture and weights."""
    keyed = InvertibleHider.from_config({**model.config(), "keyed": True})
    keyed.load_state_dict(model.state_dict())
    return keyed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", default="conv8-photos49-v2", help="the unkeyed model to start from (name or path)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (resumed when it holds a run)")
    parser.add_argument("--train-dir", type=Path, required=True)
    parser.add_argument("--val-dir", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--val-every", type=int, default=1000)
    parser.add_argument(
        "--concealing",
        type=float,
        default=None,
        help="concealing weight throughout (default: the recipe's fine-tune 4)",
    )
    parser.add_argument(
        "--no-key", action="store_true", help="fine-tune the model as it is, unkeyed (e.g. through --channel only)"
    )
    parser.add_argument("--crop", type=int, default=None, help="training crop side (default: the recipe's 64)")
    parser.add_argument(
        "--channel",
        action="append",
        default=[],
        help="train through this lossy channel (invhide train --channel), repeatable: one per image",
    )
    parser.add_argument(
        "--chroma", type=float, default=None, help="add invhide.training.losses.ChromaLoss with this weight"
    )
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    base = invhide.load(args.init)
    chosen = recipe(
        "cpu",
        steps=args.steps,
        lr=args.lr,
        warmup_steps=args.warmup,
        quantize_from=0,
        val_every=args.val_every,
        checkpoint_every=250,
        weight_schedule=None if args.concealing is None else ((0, "concealing", args.concealing),),
        crop=args.crop,
        channels=tuple(args.channel),
    ).starting_from(base if args.no_key else keyed_copy(base), args.init if args.no_key else f"{args.init}, keyed")
    if args.chroma is not None:
        build_loss = chosen.build_loss

        def with_chroma() -> HidingLoss:  # reduced as the concealing term is, so that the weights compare
            loss = build_loss()
            return loss.with_term("chroma", args.chroma, ChromaLoss(reduction=loss.terms["concealing"].reduction))

        chosen = dataclasses.replace(chosen, build_loss=with_chroma)
    print(chosen.summary())
    report = train_and_evaluate(
        chosen,
        args.out,
        train_source=args.train_dir,
        val_source=args.val_dir,
        device=args.device,
        resume="auto",
        progress=False,
    )
    print(report)


if __name__ == "__main__":
    main()
