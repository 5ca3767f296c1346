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

from invhide.checks import integer, non_negative_int, positive_int
from invhide.errors import InputError
from invhide.evaluation.figures import pyplot, save_figure
from invhide.evaluation.steganalysis.classic import CLASSIC_DETECTORS, MIN_LENGTH, classic_scores, level_pairs
from invhide.evaluation.steganalysis.learned import LEARNED_DETECTORS, LearnedDetector, TrainingSettings, derive_seed
from invhide.evaluation.steganalysis.networks import MIN_SIDE
from invhide.evaluation.steganalysis.statistics import ROC_GRID, auc, best_threshold, pair_bootstrap, roc_curve
from invhide.io.files import atomic_write

__all__ = [
    "DEFAULT_DETECTORS",
    "DETECTORS",
    "DetectorResult",
    "SecurityReport",
    "evaluate_detectors",
    "fold_of_pairs",
    "too_small",
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
        return save_figure(figure, path, dpi=120)


def too_small(detector: str, height: int, width: int) -> str | None:
    """Why ``detector`` cannot score a ``height x width`` image, as a phrase that names it; ``None`` if it can.

    A classic detector needs
    :data:`~invhide.evaluation.steganalysis.classic.MIN_LENGTH` samples along
    a row or a column (4 for RS analysis), a learned one
    :data:`~invhide.evaluation.steganalysis.networks.MIN_SIDE` on both sides.

    Example:
        >>> too_small("rs", 1, 3)
        'rs, which needs at least 4 pixels along a row or a column'
        >>> too_small("spa", 1, 2) is None
        True
    """
    if detector in MIN_LENGTH and max(height, width) < MIN_LENGTH[detector]:
        return f"{detector}, which needs at least {MIN_LENGTH[detector]} pixels along a row or a column"
    if detector in LEARNED_DETECTORS and min(height, width) < MIN_SIDE:
        return f"{detector}, which needs at least {MIN_SIDE}x{MIN_SIDE} pixels"
    return None


def _check_pairs(covers: Sequence[Tensor], stegos: Sequence[Tensor], names: Sequence[str]) -> None:
    """Refuse, before any work, stego images that all equal their covers, or a pair too small for a detector."""
    if all(torch.equal(cover, stego) for cover, stego in zip(covers, stegos, strict=True)):
        raise InputError(
            argument="stegos",
            problem="are their covers, level for level, in every pair: there is nothing to tell apart",
            advice="pass each cover's stego image (the same images twice measure nothing)",
        )
    for index, cover in enumerate(covers):
        for name in names:
            reason = too_small(name, *cover.shape[-2:])
            if reason is not None:
                raise InputError(
                    argument=f"pair {index}",
                    problem=f"has images of shape {tuple(cover.shape)}, too small for {reason}",
                    advice=f"leave {name} out or use larger images",
                )


def fold_of_pairs(pairs: int, folds: int, seed: int) -> np.ndarray:
    """The fold of each pair: a seeded permutation cut into ``folds`` parts of (nearly) equal size.

    Example:
        >>> fold = fold_of_pairs(10, 2, seed=0)
        >>> sorted(np.bincount(fold).tolist())
        [5, 5]
    """
    pairs = positive_int("pairs", pairs)
    folds = integer("folds", folds, low=2, high=pairs, what=f"an integer from 2 to the number of pairs ({pairs})")
    order = np.random.default_rng(derive_seed(seed, 3)).permutation(pairs)
    fold = np.empty(pairs, dtype=np.int64)
    fold[order] = np.arange(pairs) % folds
    return fold


@dataclass
class _Scores:
    """One detector's scores on every pair, ``(2, N)`` (covers, then stego images), and what it took."""

    scores: np.ndarray
    thresholds: list[float]
    seconds_per_image: float
    training_seconds: float = 0.0


@dataclass
class _Protocol:
    """Checked pairs and their folds: scores each detector and turns its scores into a :class:`DetectorResult`."""

    covers: list[Tensor]
    stegos: list[Tensor]
    fold: np.ndarray
    folds: int
    seed: int
    say: Callable[[str], None]

    def classic(self, names: Sequence[str]) -> dict[str, _Scores]:
        """Each classic detector's scores; its threshold per fold maximises accuracy on the other folds."""
        if not names:
            return {}
        self.say(f"classic detectors ({', '.join(names)}) on {2 * len(self.covers)} images")
        seconds = dict.fromkeys(names, 0.0)
        rows = [classic_scores(image, names, seconds=seconds) for image in [*self.covers, *self.stegos]]
        results = {}
        for name in names:
            scores = np.array([row[name] for row in rows]).reshape(2, -1)
            thresholds = []
            for part in range(self.folds):
                train = self.fold != part
                labels = np.r_[np.zeros(int(train.sum())), np.ones(int(train.sum()))]
                thresholds.append(best_threshold(labels, np.r_[scores[0][train], scores[1][train]]))
            results[name] = _Scores(scores, thresholds, seconds[name] / len(rows))
        return results

    def learned(
        self, name: str, settings: TrainingSettings | None, device: str | torch.device, progress: bool
    ) -> _Scores:
        """A learned detector trained from scratch per fold on the other folds, scoring its own fold."""
        scores, thresholds, seconds, trained = np.empty((2, len(self.covers))), [], 0.0, 0.0
        for part in range(self.folds):
            train, test = np.nonzero(self.fold != part)[0], np.nonzero(self.fold == part)[0]
            self.say(f"{name}, fold {part + 1} of {self.folds}: training on {train.size} pairs, testing on {test.size}")
            seed = derive_seed(self.seed, part)
            detector = LearnedDetector(name, settings=settings, seed=seed, device=device, progress=progress)
            detector.fit([self.covers[i] for i in train], [self.stegos[i] for i in train])
            start = time.perf_counter()
            scores[0, test] = detector.score([self.covers[i] for i in test])
            scores[1, test] = detector.score([self.stegos[i] for i in test])
            seconds += time.perf_counter() - start
            trained += detector.training_seconds
            thresholds.append(detector.threshold)
        return _Scores(scores, thresholds, seconds / (2 * len(self.covers)), trained)

    def result(self, name: str, scored: _Scores, resamples: int) -> DetectorResult:
        """Accuracy, AUC and ROC of the pooled scores, with pair-bootstrap intervals."""
        cover_scores, stego_scores = scored.scores
        labels = np.r_[np.zeros(len(cover_scores)), np.ones(len(cover_scores))]
        cuts = np.asarray(scored.thresholds)[self.fold]
        correct = np.stack((cover_scores <= cuts, stego_scores > cuts))
        pooled = np.r_[cover_scores, stego_scores]
        fpr, tpr, _ = roc_curve(labels, pooled)
        boot = pair_bootstrap(cover_scores, stego_scores, correct, resamples=resamples, seed=derive_seed(self.seed, 4))
        return DetectorResult(
            name=name,
            accuracy=float(correct.mean()),
            auc=auc(labels, pooled),
            accuracy_ci=boot.accuracy,
            auc_ci=boot.auc,
            fpr=fpr,
            tpr=tpr,
            tpr_band=boot.tpr_band,
            thresholds=[float(value) for value in scored.thresholds],
            cover_scores=cover_scores,
            stego_scores=stego_scores,
            seconds_per_image=scored.seconds_per_image,
            training_seconds=scored.training_seconds,
        )


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
        invhide.errors.InputError: unknown detectors, fewer than 2 pairs, unequal counts, a pair of two
            sizes, stegos all equal to their covers, a pair too small for a detector, bad folds.

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
    covers, stegos = level_pairs(covers, stegos, at_least=2)
    _check_pairs(covers, stegos, names)
    fold = fold_of_pairs(len(covers), folds, seed)
    protocol = _Protocol(covers, stegos, fold, int(folds), seed, log or (lambda _line: None))
    scored = protocol.classic([name for name in names if name in CLASSIC_DETECTORS])
    for name in (name for name in names if name in LEARNED_DETECTORS):
        scored[name] = protocol.learned(name, (training or {}).get(name), device, progress)
    results = {name: protocol.result(name, scored[name], resamples) for name in names}
    return SecurityReport(pairs=len(covers), folds=folds, seed=seed, resamples=resamples, detectors=results)
