"""Measuring hiders: image-quality metrics, the paper's Table 2, figures and speed benchmarks.

- :mod:`invhide.evaluation.metrics`: PSNR, SSIM, MAE, RMSE on RGB and Y;
  :func:`~invhide.evaluation.metrics.evaluate` in the layout of Table 2.
- :mod:`invhide.evaluation.figures`: the paper's Fig. 3 layout and training curves (matplotlib).
- :mod:`invhide.evaluation.speed`: the library side of ``invhide bench``.
"""

from invhide.evaluation import figures, metrics, speed
from invhide.evaluation.metrics import Evaluation, evaluate

__all__ = ["Evaluation", "evaluate", "figures", "metrics", "speed"]
