"""Steganalysis: how detectable a hider's stego images are, by the detectors the literature uses.

- :mod:`~invhide.evaluation.steganalysis.classic`: the structural detectors of
  LSB replacement that StegExpose fuses (sample pair analysis, RS analysis,
  the chi-square attack, primary sets) and the fused score, per colour
  channel; and :func:`~invhide.evaluation.steganalysis.classic.lsb_replacement`,
  the embedding they target, for ground truth.
- :mod:`~invhide.evaluation.steganalysis.networks`: SRNet and a small CNN on
  fixed SRM residuals (``"srm-cnn"``).
- :mod:`~invhide.evaluation.steganalysis.learned`: training them on
  pair-constrained batches.
- :mod:`~invhide.evaluation.steganalysis.statistics`: AUC by the rank
  statistic, ROC curves, thresholds, pair-bootstrap intervals.
- :mod:`~invhide.evaluation.steganalysis.protocol`: cross-validation by
  cover/stego pair and the report behind ``invhide steganalysis``.
- :mod:`~invhide.evaluation.steganalysis.ablation`: the pixel-domain hider of
  the paper's Table 4 ablation.

Example:
    >>> from invhide.evaluation.steganalysis import evaluate_detectors, lsb_replacement
    >>> g = torch.Generator().manual_seed(0)
    >>> covers = [torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8) for _ in range(4)]
    >>> stegos = [lsb_replacement(cover, 1.0, generator=g) for cover in covers]
    >>> report = evaluate_detectors(covers, stegos, ["spa", "fused"], resamples=20)
    >>> sorted(report.to_dict()["detectors"])
    ['fused', 'spa']
"""

from invhide.evaluation.steganalysis import ablation, classic, learned, networks, protocol, statistics
from invhide.evaluation.steganalysis.ablation import PixelDomainHider, SpaceToDepth
from invhide.evaluation.steganalysis.classic import (
    CLASSIC_DETECTORS,
    chi_square_attack,
    fused,
    lsb_replacement,
    primary_sets,
    rs_analysis,
    sample_pair_analysis,
)
from invhide.evaluation.steganalysis.learned import LEARNED_DETECTORS, LearnedDetector, TrainingSettings
from invhide.evaluation.steganalysis.networks import SRMNet, SRNet, srm_kernels
from invhide.evaluation.steganalysis.protocol import (
    DEFAULT_DETECTORS,
    DETECTORS,
    DetectorResult,
    SecurityReport,
    evaluate_detectors,
)
from invhide.evaluation.steganalysis.statistics import auc, roc_curve

__all__ = [
    "CLASSIC_DETECTORS",
    "DEFAULT_DETECTORS",
    "DETECTORS",
    "LEARNED_DETECTORS",
    "DetectorResult",
    "LearnedDetector",
    "PixelDomainHider",
    "SRMNet",
    "SRNet",
    "SecurityReport",
    "SpaceToDepth",
    "TrainingSettings",
    "ablation",
    "auc",
    "chi_square_attack",
    "classic",
    "evaluate_detectors",
    "fused",
    "learned",
    "lsb_replacement",
    "networks",
    "primary_sets",
    "protocol",
    "roc_curve",
    "rs_analysis",
    "sample_pair_analysis",
    "srm_kernels",
    "statistics",
]
