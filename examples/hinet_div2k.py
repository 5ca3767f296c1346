#!/usr/bin/env python
"""Train and evaluate HiNet with the paper's protocol.

On DIV2K (or any folders of photographs)::

    python examples/hinet_div2k.py --train-dir DIV2K_train_HR --val-dir DIV2K_valid_HR --eval-size 1024

Without any data: trains on the natural photographs that ship inside
scikit-image and evaluates on held-out ones (``pip install "invhide[samples,plot]"``);
``--quick`` is a small model that trains in a few minutes on a laptop CPU::

    python examples/hinet_div2k.py --quick --out runs/quick

What happens (the same as ``invhide train``, which takes the same options):

1. :func:`invhide.training.recipes.recipe` picks the model, loss and
   :class:`~invhide.training.config.TrainConfig` of ``--preset``, one of
   :data:`~invhide.training.recipes.RECIPES`: ``paper`` (HiNet as the paper
   trains it: lambda_c 10, lambda_r 1, lambda_f 10), ``reference-code`` (as
   the reference code runs), their ``-png`` variants (the reveal learns from
   the stego rounded to 8 bits) or ``quick`` (also ``--quick``); ``--steps``,
   ``--crop``, ``--batch-size``, ``--lr`` and the other options override it.
2. :func:`invhide.training.recipes.train_and_evaluate` trains with
   :class:`invhide.training.trainer.Trainer` (checkpoints, logs, a progress bar, resume
   with ``--resume``), then evaluates on cover/secret pairs (image ``i`` hides
   image ``(i + n/2) mod n``, both centre-cropped to ``--eval-size``).
3. The results are printed in the layout of the paper's Table 2, for the
   float stego and for the stego rounded to 8 bits (a PNG); ``--out`` receives
   ``model.safetensors``, ``results.json``, ``figure.png`` (the paper's Fig. 3
   layout) and ``curves.png``.

A mistake in the options (a missing folder, a previous run in ``--out``, a
device this machine lacks) is reported in one line; ``--debug`` shows its
traceback too.
"""

import argparse
import os
import sys
import traceback
from pathlib import Path

import torch.distributed as dist

import invhide
from invhide.errors import InvhideError, describe
from invhide.training.recipes import RECIPES, recipe, train_and_evaluate


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dir", type=Path, help="folder of training photos (default: scikit-image samples)")
    parser.add_argument("--val-dir", type=Path, help="folder of evaluation photos (default: held-out samples)")
    parser.add_argument("--preset", choices=RECIPES, default="paper", help="training recipe (default: paper)")
    parser.add_argument("--quick", action="store_true", help="the quick recipe: a small model trained in minutes")
    parser.add_argument("--steps", type=int, help="optimizer steps (default: the recipe's)")
    parser.add_argument("--crop", type=int, help="training crop side (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, help="cover/secret pairs per step (default: the recipe's)")
    parser.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    rounding = parser.add_mutually_exclusive_group()
    rounding.add_argument(
        "--quantize", action="store_true", default=None, help="train on the 8-bit stego (default: *-png recipes)"
    )
    rounding.add_argument(
        "--no-quantize", dest="quantize", action="store_false", help="train on the float stego (default: the others)"
    )
    rounding.add_argument(
        "--quantize-from", type=int, metavar="STEP", help="train on the float stego until STEP, then on the 8-bit one"
    )
    parser.add_argument(
        "--amp",
        choices=("float32", "bfloat16", "float16", "auto"),
        help="precision of hide and reveal while training; auto: bfloat16 where native (default: the recipe's)",
    )
    parser.add_argument("--ema", type=float, metavar="DECAY", help="keep a moving average of the weights (e.g. 0.999)")
    parser.add_argument("--init", metavar="MODEL", help="start from this trained model's weights (a fine-tune)")
    parser.add_argument("--memory-saving", action="store_true", help="recompute activations through the inverse")
    parser.add_argument("--eval-size", type=int, default=256, help="evaluation centre-crop side (default: 256)")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes (default: 0)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the model, the data and z (default: 0)")
    parser.add_argument("--out", type=Path, default=Path("runs/hinet"), help="output folder (default: runs/hinet)")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        help="save a checkpoint every N steps; 0: only at the end (default: the recipe's)",
    )
    resuming = parser.add_mutually_exclusive_group()
    resuming.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    resuming.add_argument(
        "--resume-or-start", action="store_true", help="resume when --out holds a checkpoint, else start a new run"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error in the options too (also: INVHIDE_DEBUG=1)"
    )
    return parser.parse_args()


def train(args: argparse.Namespace) -> None:
    # The recipe checks every setting (a TrainConfig refuses steps=0, a negative lr...).
    settings = dict(steps=args.steps, crop=args.crop, batch_size=args.batch_size, lr=args.lr, quantize=args.quantize)
    settings["checkpoint_every"] = args.checkpoint_every
    if args.memory_saving:
        settings["memory_saving"] = True
    if args.quantize_from is not None:
        settings["quantize"], settings["quantize_from"] = False, args.quantize_from
    settings["amp"] = args.amp
    settings["ema_decay"] = args.ema
    chosen = recipe("quick" if args.quick else args.preset, seed=args.seed, num_workers=args.workers, **settings)
    if args.init is not None:  # fine-tune a trained model: its architecture replaces the recipe's
        chosen = chosen.starting_from(invhide.load(args.init), args.init)
    report = train_and_evaluate(
        chosen,
        args.out,
        train_source=args.train_dir,
        val_source=args.val_dir,
        eval_size=args.eval_size,
        device=args.device,
        resume="auto" if args.resume_or_start else args.resume,
    )
    if report.evaluation is None:  # a rank other than 0 under torchrun
        return
    print(f"\nevaluation on {report.evaluation.num_pairs} held-out pairs ({report.evaluation_seconds:.0f} s):")
    print(report.evaluation.format())
    print("\nwrote " + ", ".join(str(path) for path in report.files.values()))


def main() -> int:
    args = parse_args()
    try:
        train(args)
    except InvhideError as error:  # a problem with the options or the data: one line, as `invhide train` does
        if args.debug or os.environ.get("INVHIDE_DEBUG") == "1":
            traceback.print_exc()
        print(f"hinet_div2k.py: error: {describe(error)}", file=sys.stderr)
        return 2
    finally:
        if dist.is_available() and dist.is_initialized():  # launched by torchrun
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
