"""Detection statistics: AUC by the rank statistic, ROC curves, thresholds, and pair-bootstrap intervals.

Labels are 0 for covers and 1 for stego images; a higher score means "more
likely stego". Everything is numpy; the bootstrap resamples cover/stego
*pairs* (a cover and its stego are drawn together), from a seeded
``numpy.random.Generator``, so an interval replays exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from invhide.checks import number, positive_int
from invhide.errors import InputError

__all__ = [
    "ROC_GRID",
    "PairBootstrap",
    "accuracy",
    "auc",
    "best_threshold",
    "pair_bootstrap",
    "roc_curve",
    "tpr_at",
]

ROC_GRID: np.ndarray = np.linspace(0.0, 1.0, 101)
"""False-positive rates at which ROC bands are given (0, 0.01, ..., 1)."""

ArrayLike = Sequence[float] | np.ndarray


def _scores_and_labels(labels: ArrayLike, scores: ArrayLike, what: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Labels as booleans (stego: ``True``) and scores as float64, checked; with ``what``, both classes present."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise InputError(f"labels and scores must be 1-D of the same length, got {labels.shape} and {scores.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise InputError("labels must be 0 (cover) or 1 (stego)")
    if not np.isfinite(scores).all():
        raise InputError(f"scores must be finite, got {int((~np.isfinite(scores)).sum())} NaN or infinite value(s)")
    positive = labels.astype(bool)
    if what and (positive.all() or not positive.any()):
        counts = f"{int((~positive).sum())} cover(s) and {int(positive.sum())} stego image(s)"
        raise InputError(f"{what} needs covers and stego images, got {counts}")
    return positive, scores


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2)[inverse.reshape(-1)]


def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve, by the rank (Mann-Whitney) statistic: ``P(stego score > cover score)``.

    Ties count one half, so a constant score gives 0.5.

    Args:
        labels: ``(N,)`` 0 for covers, 1 for stego images (both present).
        scores: ``(N,)`` finite scores, higher for stego.

    Returns:
        The AUC in ``[0, 1]``.

    Example:
        >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    return _auc(*_scores_and_labels(labels, scores, "AUC"))


def _auc(positive: np.ndarray, scores: np.ndarray) -> float:
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = _average_ranks(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve: false- and true-positive rates as the threshold falls through the scores.

    An image is called stego when its score is strictly above the threshold.

    Args:
        labels: ``(N,)`` 0 for covers, 1 for stego images (both present).
        scores: ``(N,)`` finite scores.

    Returns:
        ``(fpr, tpr, thresholds)``, each ``(K + 1,)`` for ``K`` distinct
        scores, from ``(0, 0)`` (threshold ``inf``) to ``(1, 1)``.

    Example:
        >>> fpr, tpr, _ = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> fpr.tolist(), tpr.tolist()
        ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    return _roc_curve(*_scores_and_labels(labels, scores, "a ROC curve"))


def _roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_positive = scores[order], positive[order]
    last_of_each = np.r_[np.nonzero(np.diff(sorted_scores))[0], scores.size - 1]
    tp = np.cumsum(sorted_positive)[last_of_each]
    fp = (last_of_each + 1) - tp
    fpr = np.r_[0.0, fp / n_neg]
    tpr = np.r_[0.0, tp / n_pos]
    # Each point calls stego every image at or above its score: the threshold just below that score.
    thresholds = np.r_[np.inf, np.nextafter(sorted_scores[last_of_each], -np.inf)]
    return fpr, tpr, thresholds


def tpr_at(fpr: np.ndarray, tpr: np.ndarray, grid: np.ndarray = ROC_GRID) -> np.ndarray:
    """The best true-positive rate reachable at each false-positive rate of ``grid`` (the ROC as a step function).

    Example:
        >>> tpr_at(np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.8, 1.0]), np.array([0.25, 0.5, 1.0])).tolist()
        [0.0, 0.8, 1.0]
    """
    index = np.searchsorted(fpr, grid, side="right") - 1
    return np.maximum.accumulate(tpr)[np.clip(index, 0, len(tpr) - 1)]


def best_threshold(labels: ArrayLike, scores: ArrayLike) -> float:
    """The threshold that maximises accuracy on these scores (calls stego above it).

    The candidates are the midpoints between consecutive distinct scores,
    and one below the lowest and one above the highest score (call
    everything stego, or everything cover); the lowest of the most accurate
    candidates is returned. A midpoint classifies a new score like its
    nearer training scores.

    Args:
        labels: ``(N,)`` 0 for covers, 1 for stego images.
        scores: ``(N,)`` finite scores.

    Returns:
        A finite threshold.

    Example:
        >>> best_threshold([0, 0, 1, 1], [0.1, 0.2, 0.6, 0.8])
        0.4
    """
    positive, scores = _scores_and_labels(labels, scores)
    if scores.size == 0:
        raise InputError("a threshold needs at least one score")
    values = np.unique(scores)
    cuts = np.r_[values[0] - 1.0, (values[:-1] + values[1:]) / 2, values[-1] + 1.0]
    correct = [np.count_nonzero((scores > cut) == positive) for cut in cuts]
    return float(cuts[int(np.argmax(correct))])


def accuracy(labels: ArrayLike, scores: ArrayLike, threshold: float) -> float:
    """The fraction of images classified right when stego means ``score > threshold``.

    Example:
        >>> accuracy([0, 0, 1, 1], [0.1, 0.5, 0.4, 0.8], 0.45)
        0.5
    """
    positive, scores = _scores_and_labels(labels, scores)
    return float(np.mean((scores > threshold) == positive))


@dataclass(frozen=True)
class PairBootstrap:
    """Percentile bootstrap intervals over resampled cover/stego pairs.

    Attributes:
        accuracy: ``(lo, hi)`` of the accuracy.
        auc: ``(lo, hi)`` of the AUC.
        tpr_band: ``(2, len(ROC_GRID))``: the pointwise ``lo`` and ``hi`` of the
            true-positive rate at each false-positive rate of :data:`ROC_GRID`.
        resamples: how many resamples were drawn.
        level: the confidence level, e.g. 0.95.
    """

    accuracy: tuple[float, float]
    auc: tuple[float, float]
    tpr_band: np.ndarray
    resamples: int
    level: float


def pair_bootstrap(
    cover_scores: ArrayLike,
    stego_scores: ArrayLike,
    correct: np.ndarray,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> PairBootstrap:
    """Bootstrap intervals of accuracy, AUC and ROC, resampling pairs with replacement.

    Args:
        cover_scores: ``(N,)`` scores of the covers of the tested pairs.
        stego_scores: ``(N,)`` scores of their stego images, in the same order.
        correct: ``(2, N)`` booleans: whether each cover (row 0) and each stego
            image (row 1) was classified right (each pair may have its own
            threshold, as in cross-validation).
        resamples: bootstrap resamples.
        level: confidence level of the percentile intervals, in ``(0, 1)``.
        seed: seeds the resampling.

    Returns:
        A :class:`PairBootstrap`.

    Example:
        >>> covers, stegos = np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.6, 0.25])
        >>> correct = np.array([covers <= 0.27, stegos > 0.27])
        >>> result = pair_bootstrap(covers, stegos, correct, resamples=200, seed=0)
        >>> 0 <= result.auc[0] <= result.auc[1] <= 1
        True
    """
    covers = np.asarray(cover_scores, dtype=np.float64)
    stegos = np.asarray(stego_scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if covers.ndim != 1 or covers.shape != stegos.shape or correct.shape != (2, covers.size) or not covers.size:
        raise InputError(
            f"expected (N,) cover and stego scores and (2, N) correctness, N >= 1; got {covers.shape}, "
            f"{stegos.shape} and {correct.shape}"
        )
    _scores_and_labels(np.r_[np.zeros(covers.size), np.ones(covers.size)], np.r_[covers, stegos])
    resamples = positive_int("resamples", resamples)
    level = number("level", level, low=0, high=1, low_open=True, high_open=True)
    accuracies, aucs, bands = _resample(covers, stegos, correct, resamples, np.random.default_rng(seed))
    tail = (1 - level) / 2 * 100
    low, high = tail, 100 - tail
    return PairBootstrap(
        accuracy=(float(np.percentile(accuracies, low)), float(np.percentile(accuracies, high))),
        auc=(float(np.percentile(aucs, low)), float(np.percentile(aucs, high))),
        tpr_band=np.stack((np.percentile(bands, low, axis=0), np.percentile(bands, high, axis=0))),
        resamples=resamples,
        level=level,
    )


def _resample(
    covers: np.ndarray, stegos: np.ndarray, correct: np.ndarray, resamples: int, generator: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accuracy ``(R,)``, AUC ``(R,)`` and ROC band ``(R, len(ROC_GRID))`` of ``R`` resamples of the pairs."""
    count = covers.size
    positive = np.r_[np.zeros(count), np.ones(count)].astype(bool)
    accuracies, aucs, bands = np.empty(resamples), np.empty(resamples), np.empty((resamples, ROC_GRID.size))
    for index in range(resamples):
        chosen = generator.integers(0, count, count)
        scores = np.r_[covers[chosen], stegos[chosen]]
        accuracies[index] = correct[:, chosen].mean()
        aucs[index] = _auc(positive, scores)
        fpr, tpr, _ = _roc_curve(positive, scores)
        bands[index] = tpr_at(fpr, tpr)
    return accuracies, aucs, bands
