#!/usr/bin/env python
"""Train and evaluate HiNet with the paper's protocol.

On DIV2K (or any folders of photographs)::

    python examples/hinet_div2k.py --train-dir DIV2K_train_HR --val-dir DIV2K_valid_HR --eval-size 1024

Without any data: trains on the natural photographs that ship inside
scikit-image and evaluates on held-out ones (``pip install "invhide[samples,plot]"``);
``--quick`` is a small model that trains in a few minutes on a laptop CPU::

    python examples/hinet_div2k.py --quick --out runs/quick

What happens (the same as ``invhide train``):

1. :func:`invhide.training.recipes.recipe` picks the model, loss and
   :class:`~invhide.training.trainer.TrainConfig` of ``--preset paper`` (HiNet, lambda_c
   10, lambda_r 1, lambda_f 10), ``--preset reference-code`` (the reference
   code's loss weights) or ``--quick``; ``--steps``, ``--crop``,
   ``--batch-size`` and ``--lr`` override it.
2. :func:`invhide.training.recipes.train_and_evaluate` trains with
   :class:`invhide.training.trainer.Trainer` (checkpoints, logs, a progress bar, resume
   with ``--resume``), then evaluates on cover/secret pairs (image ``i`` hides
   image ``(i + n/2) mod n``, both centre-cropped to ``--eval-size``).
3. The results are printed in the layout of the paper's Table 2, for the
   float stego and for the stego rounded to 8 bits (a PNG); ``--out`` receives
   ``model.safetensors``, ``results.json``, ``figure.png`` (the paper's Fig. 3
   layout) and ``curves.png``.
"""

import argparse
import sys

from invhide.cli.main import add_train_arguments, run_reporting_errors, run_train


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser)
    # A bad folder or a previous run in --out ends with one line, as with `invhide train`.
    return run_reporting_errors(run_train, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
