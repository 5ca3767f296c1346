#!/usr/bin/env python
"""Train and evaluate HiNet with the paper's protocol: ``invhide train`` as a script.

On DIV2K (or any folders of photographs)::

    python examples/hinet_div2k.py --train-dir DIV2K_train_HR --val-dir DIV2K_valid_HR --eval-size 1024

Without any data: trains on the natural photographs that ship inside
scikit-image and evaluates on held-out ones (``pip install "invhide[samples,plot]"``);
``--recipe quick`` is a small model that trains in a few minutes on a laptop CPU::

    python examples/hinet_div2k.py --recipe quick --out runs/quick

The script runs ``invhide train`` with its own arguments, so it takes every
option of that command (``--help`` lists them) and checks them the same way.
What happens:

1. :func:`invhide.training.recipes.recipe` picks the model, loss and
   :class:`~invhide.training.config.TrainConfig` of ``--recipe``, one of
   :data:`~invhide.training.recipes.RECIPES`: ``paper`` (HiNet as the paper
   trains it: lambda_c 10, lambda_r 1, lambda_f 10), ``reference-code`` (as
   the reference code runs), their ``-png`` variants (the reveal learns from
   the stego rounded to 8 bits), ``quick`` or ``cpu``; ``--steps``,
   ``--crop``, ``--batch-size``, ``--lr`` and the other options override it.
2. :func:`invhide.training.recipes.train_and_evaluate` trains with
   :class:`invhide.training.trainer.Trainer` (checkpoints, logs, a progress bar, resume
   with ``--resume``), then evaluates on cover/secret pairs (image ``i`` hides
   image ``(i + n/2) mod n``, both centre-cropped to ``--eval-size``).
3. The results are printed in the layout of the paper's Table 2, for the
   float stego and for the stego rounded to 8 bits (a PNG); ``--out`` receives
   ``model.safetensors``, ``results.json``, ``figure.png`` (the paper's Fig. 3
   layout) and ``curves.png``.

The same two calls in Python, without the command's checks of the options::

    from invhide.training.recipes import recipe, train_and_evaluate

    report = train_and_evaluate(recipe("quick", steps=600), "runs/quick", eval_size=256)
    print(report.evaluation.format())

A mistake in the options (a missing folder, a previous run in ``--out``, a
device this machine lacks) is reported in one line; ``--debug`` shows its
traceback too.
"""

import sys

from invhide.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
