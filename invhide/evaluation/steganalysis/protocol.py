"""The evaluation protocol: cross-validation by cover/stego pair, accuracy, AUC and ROC with bootstrap intervals.

:func:`evaluate_detectors` takes ``N`` pairs (a cover and its stego image)
and splits the *pairs* into ``folds`` disjoint parts with a seeded
permutation. Each part is tested by detectors fitted on the other parts
only, so no image of a tested pair was seen in training, and every pair is
tested exactly once:

- a classic detector's score needs no training; its accuracy threshold is the
  one that maximises accuracy on the training pairs
  (:func:`~invhide.evaluation.steganalysis.statistics.best_threshold`);
- a learned detector is trained from scratch on the training pairs (its seed
  mixed with the fold's number) and calls stego a positive logit.

Accuracy is over the ``2N`` tested images; AUC and the ROC curve come from
their pooled scores; each has a percentile bootstrap interval over resampled
pairs (:func:`~invhide.evaluation.steganalysis.statistics.pair_bootstrap`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from invhide.checks import non_negative_int, positive_int
from invhide.errors import InputError
from invhide.evaluation.steganalysis.classic import CLASSIC_DETECTORS, classic_scores, levels
from invhide.evaluation.steganalysis.learned import LEARNED_DETECTORS, LearnedDetector, TrainingSettings, derive_seed
from invhide.evaluation.steganalysis.statistics import (
    ROC_GRID,
    auc,
    best_threshold,
    pair_bootstrap,
    roc_curve,
)
from invhide.io.files import atomic_write

__all__ = [
    "DEFAULT_DETECTORS",
    "DETECTORS",
    "DetectorResult",
    "SecurityReport",
    "evaluate_detectors",
    "fold_of_pairs",
]

DETECTORS: tuple[str, ...] = CLASSIC_DETECTORS + LEARNED_DETECTORS
"""Every detector name: ``spa``, ``rs``, ``chi2``, ``primary-sets``, ``fused``, ``srnet``, ``srm-cnn``."""

DEFAULT_DETECTORS: tuple[str, ...] = ("spa", "rs", "chi2", "primary-sets", "fused", "srm-cnn")
"""The detectors run when none are named: all but SRNet, which needs a GPU and long training."""


@dataclass
class DetectorResult:
    """One detector's results on the tested pairs.

    Attributes:
        name: the detector.
        accuracy: fraction of the ``2N`` tested images classified right.
        auc: area under the ROC curve of the pooled scores.
        accuracy_ci: ``(lo, hi)`` bootstrap interval of ``accuracy``.
        auc_ci: ``(lo, hi)`` bootstrap interval of ``auc``.
        fpr: ``(K,)`` false-positive rates of the ROC curve.
        tpr: ``(K,)`` true-positive rates of the ROC curve.
        tpr_band: ``(2, len(ROC_GRID))`` bootstrap band of the true-positive
            rate at the false-positive rates of
            :data:`~invhide.evaluation.steganalysis.statistics.ROC_GRID`.
        thresholds: the decision threshold of each fold.
        cover_scores: ``(N,)`` the covers' scores, in pair order.
        stego_scores: ``(N,)`` the stego images' scores, in pair order.
        seconds_per_image: time to score one image (training excluded).
        training_seconds: time spent training, all folds (0 for classic detectors).
    """

    name: str
    accuracy: float
    auc: float
    accuracy_ci: tuple[float, float]
    auc_ci: tuple[float, float]
    fpr: np.ndarray
    tpr: np.ndarray
    tpr_band: np.ndarray
    thresholds: list[float]
    cover_scores: np.ndarray
    stego_scores: np.ndarray
    seconds_per_image: float
    training_seconds: float = 0.0

    def format(self, width: int = 12) -> str:
        """One line: accuracy and AUC with their intervals, and the time per image."""
        (alo, ahi), (ulo, uhi) = self.accuracy_ci, self.auc_ci
        timing = f"{self.seconds_per_image * 1000:.1f} ms/image"
        if self.training_seconds:
            timing += f", trained in {self.training_seconds:.0f} s"
        return (
            f"{self.name:<{width}} accuracy {self.accuracy:6.1%} [{alo:.1%}, {ahi:.1%}]   "
            f"AUC {self.auc:.3f} [{ulo:.3f}, {uhi:.3f}]   ({timing})"
        )


@dataclass
class SecurityReport:
    """What :func:`evaluate_detectors` measured.

    Attributes:
        pairs: number of cover/stego pairs (all tested once).
        folds: cross-validation folds.
        seed: the seed of the split, the training and the bootstrap.
        resamples: bootstrap resamples.
        detectors: ``{name: DetectorResult}`` in the order asked.
        extra: anything the caller adds to the JSON (e.g. the stego PSNR).
    """

    pairs: int
    folds: int
    seed: int
    resamples: int
    detectors: dict[str, DetectorResult]
    extra: dict[str, Any] = field(default_factory=dict)

    def format(self) -> str:
        """One line per detector (see :meth:`DetectorResult.format`)."""
        width = max(len(name) for name in self.detectors) + 1
        return "\n".join(result.format(width) for result in self.detectors.values())

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout of ``invhide steganalysis --json``.

        ``{"pairs": N, "detectors": {NAME: {"accuracy": A, "auc": U,
        "accuracy_ci": [lo, hi], "auc_ci": [lo, hi], ...}}, ...}``, accuracy
        and AUC as fractions in ``[0, 1]``; each detector also has its
        thresholds and timings, and the report its protocol.
        """
        return {
            "pairs": self.pairs,
            "detectors": {
                name: {
                    "accuracy": result.accuracy,
                    "auc": result.auc,
                    "accuracy_ci": list(result.accuracy_ci),
                    "auc_ci": list(result.auc_ci),
                    "thresholds": result.thresholds,
                    "seconds_per_image": result.seconds_per_image,
                    "training_seconds": result.training_seconds,
                }
                for name, result in self.detectors.items()
            },
            "protocol": {
                "folds": self.folds,
                "split": "by cover/stego pair",
                "seed": self.seed,
                "bootstrap_resamples": self.resamples,
                "confidence": 0.95,
            },
            **self.extra,
        }

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` to ``path`` atomically."""
        with atomic_write(path, "w") as file:
            json.dump(self.to_dict(), file, indent=2)
            file.write("\n")

    def roc_figure(self, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
        """Plot every detector's ROC curve with its bootstrap band and write it as a PNG (needs matplotlib).

        Raises:
            ImportError: matplotlib is not installed (``pip install "invhide[plot]"``).
        """
        plt = pyplot()
        figure, axes = plt.subplots(figsize=(5.2, 5.0))
        axes.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="chance")
        for result in self.detectors.values():
            (line,) = axes.step(
                result.fpr, result.tpr, where="post", linewidth=1.6, label=f"{result.name} (AUC {result.auc:.3f})"
            )
            axes.fill_between(ROC_GRID, *result.tpr_band, step="post", alpha=0.15, color=line.get_color())
        axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false-positive rate (covers called stego)")
        axes.set_ylabel("true-positive rate (stego images found)")
        axes.set_title(title or f"{self.pairs} pairs, {self.folds}-fold by pair; bands: 95% bootstrap")
        axes.legend(loc="lower right", fontsize=8)
        axes.grid(alpha=0.3)
        path = Path(path)
        with atomic_write(path) as file:
            figure.savefig(file, format="png", dpi=120, bbox_inches="tight")
        plt.close(figure)
        return path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or an ImportError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError('ROC figures need matplotlib: pip install "invhide[plot]"') from error
    return plt


def fold_of_pairs(pairs: int, folds: int, seed: int) -> np.ndarray:
    """The fold of each pair: a seeded permutation cut into ``folds`` parts of (nearly) equal size.

    Example:
        >>> fold = fold_of_pairs(10, 2, seed=0)
        >>> sorted(np.bincount(fold).tolist())
        [5, 5]
    """
    positive_int("pairs", pairs)
    folds = positive_int("folds", folds)
    if folds < 2 or folds > pairs:
        raise InputError(f"folds must be from 2 to the number of pairs ({pairs}), got {folds}")
    order = np.random.default_rng(derive_seed(seed, 3)).permutation(pairs)
    fold = np.empty(pairs, dtype=np.int64)
    fold[order] = np.arange(pairs) % folds
    return fold


def _check_pairs(covers: Sequence[Tensor], stegos: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    if len(covers) != len(stegos):
        raise InputError(f"expected as many covers as stego images, got {len(covers)} and {len(stegos)}")
    if len(covers) < 2:
        raise InputError(f"the protocol needs at least 2 cover/stego pairs, got {len(covers)}")
    cover_levels, stego_levels = [], []
    for index, (cover, stego) in enumerate(zip(covers, stegos, strict=True)):
        cover, stego = levels(cover), levels(stego)
        if cover.shape != stego.shape:
            raise InputError(
                f"pair {index}: the cover is {tuple(cover.shape)} but its stego image is {tuple(stego.shape)}"
            )
        cover_levels.append(cover)
        stego_levels.append(stego)
    return cover_levels, stego_levels


def _classic(
    names: Sequence[str], covers: Sequence[Tensor], stegos: Sequence[Tensor]
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Scores ``(2, N)`` of each classic detector (covers, stegos) and its seconds per image."""
    images = list(covers) + list(stegos)
    scores = {name: np.empty(len(images)) for name in names}
    seconds = dict.fromkeys(names, 0.0)
    parts = ("spa", "rs", "chi2", "primary-sets")
    for index, image in enumerate(images):
        estimates = {}
        for name in parts if "fused" in names else [name for name in names if name != "fused"]:
            start = time.perf_counter()
            estimates[name] = classic_scores(image, [name])[name]
            elapsed = time.perf_counter() - start
            if name in seconds:
                seconds[name] += elapsed
            if "fused" in seconds:
                seconds["fused"] += elapsed
        if "fused" in names:
            estimates["fused"] = sum(min(abs(estimates[part]), 1.0) for part in parts) / len(parts)
        for name in names:
            scores[name][index] = estimates[name]
    count = len(images)
    return {name: value.reshape(2, -1) for name, value in scores.items()}, {
        name: total / count for name, total in seconds.items()
    }


def evaluate_detectors(
    covers: Sequence[Tensor],
    stegos: Sequence[Tensor],
    detectors: Sequence[str] = DEFAULT_DETECTORS,
    *,
    folds: int = 2,
    seed: int = 0,
    resamples: int = 1000,
    training: Mapping[str, TrainingSettings] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> SecurityReport:
    """Measure how well each detector tells the stego images from their covers (see the module docstring).

    Args:
        covers: ``N >= 2`` cover images, ``(C, H, W)`` uint8 levels or floats in ``[0, 1]``.
        stegos: their stego images, in the same order, each the size of its cover.
        detectors: names from :data:`DETECTORS`.
        folds: cross-validation folds by pair (2 to ``N``).
        seed: seeds the split, the learned detectors and the bootstrap.
        resamples: bootstrap resamples for the 95% intervals.
        training: training settings per learned detector (default:
            :data:`~invhide.evaluation.steganalysis.learned.DEFAULT_TRAINING`).
        device: where the learned detectors train and run.
        progress: progress bars while training.
        log: called with a line at each stage (e.g. ``print``).

    Returns:
        A :class:`SecurityReport`.

    Raises:
        invhide.errors.InputError: unknown detectors, fewer than 2 pairs,
            unequal counts, a pair of two sizes, bad folds.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> covers = [torch.randint(0, 256, (3, 24, 24), generator=g, dtype=torch.uint8) for _ in range(6)]
        >>> from invhide.evaluation.steganalysis.classic import lsb_replacement
        >>> stegos = [lsb_replacement(cover, 1.0, generator=g) for cover in covers]
        >>> report = evaluate_detectors(covers, stegos, ["spa"], resamples=50)
        >>> report.pairs, sorted(report.to_dict()["detectors"]["spa"])[:3]
        (6, ['accuracy', 'accuracy_ci', 'auc'])
    """
    names = list(dict.fromkeys(detectors))
    unknown = [name for name in names if name not in DETECTORS]
    if unknown or not names:
        raise InputError(f"unknown or no detector(s) {unknown}; choose from {DETECTORS}")
    seed = non_negative_int("seed", seed)
    resamples = positive_int("resamples", resamples)
    covers, stegos = _check_pairs(covers, stegos)
    count = len(covers)
    fold = fold_of_pairs(count, folds, seed)
    training = dict(training or {})
    say = log or (lambda _line: None)

    classic = [name for name in names if name in CLASSIC_DETECTORS]
    scores: dict[str, np.ndarray] = {}
    thresholds: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    trained: dict[str, float] = {}
    if classic:
        say(f"classic detectors ({', '.join(classic)}) on {2 * count} images")
        classic_results, classic_seconds = _classic(classic, covers, stegos)
        for name in classic:
            scores[name] = classic_results[name]
            seconds[name] = classic_seconds[name]
            thresholds[name] = []
            for part in range(folds):
                train = fold != part
                train_labels = np.r_[np.zeros(int(train.sum())), np.ones(int(train.sum()))]
                train_scores = np.r_[scores[name][0][train], scores[name][1][train]]
                thresholds[name].append(best_threshold(train_labels, train_scores))
    for name in (name for name in names if name in LEARNED_DETECTORS):
        scores[name] = np.empty((2, count))
        thresholds[name], seconds[name], trained[name] = [], 0.0, 0.0
        for part in range(folds):
            train, test = np.nonzero(fold != part)[0], np.nonzero(fold == part)[0]
            say(f"{name}, fold {part + 1} of {folds}: training on {train.size} pairs, testing on {test.size}")
            detector = LearnedDetector(
                name, settings=training.get(name), seed=derive_seed(seed, part), device=device, progress=progress
            )
            detector.fit([covers[i] for i in train], [stegos[i] for i in train])
            start = time.perf_counter()
            scores[name][0, test] = detector.score([covers[i] for i in test])
            scores[name][1, test] = detector.score([stegos[i] for i in test])
            seconds[name] += time.perf_counter() - start
            trained[name] += detector.training_seconds
            thresholds[name].append(detector.threshold)
        seconds[name] /= 2 * count

    results = {}
    labels = np.r_[np.zeros(count), np.ones(count)]
    for name in names:
        cover_scores, stego_scores = scores[name]
        cuts = np.asarray(thresholds[name])[fold]
        correct = np.stack((cover_scores <= cuts, stego_scores > cuts))
        pooled = np.r_[cover_scores, stego_scores]
        fpr, tpr, _ = roc_curve(labels, pooled)
        boot = pair_bootstrap(cover_scores, stego_scores, correct, resamples=resamples, seed=derive_seed(seed, 4))
        results[name] = DetectorResult(
            name=name,
            accuracy=float(correct.mean()),
            auc=auc(labels, pooled),
            accuracy_ci=boot.accuracy,
            auc_ci=boot.auc,
            fpr=fpr,
            tpr=tpr,
            tpr_band=boot.tpr_band,
            thresholds=[float(value) for value in thresholds[name]],
            cover_scores=cover_scores,
            stego_scores=stego_scores,
            seconds_per_image=seconds[name],
            training_seconds=trained.get(name, 0.0),
        )
    return SecurityReport(pairs=count, folds=folds, seed=seed, resamples=resamples, detectors=results)
