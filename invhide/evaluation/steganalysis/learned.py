"""Training and running the learned detectors on cover/stego pairs.

:class:`LearnedDetector` trains :class:`~invhide.evaluation.steganalysis.networks.SRNet`
(``"srnet"``) or :class:`~invhide.evaluation.steganalysis.networks.SRMNet`
(``"srm-cnn"``) on pairs given to :meth:`~LearnedDetector.fit` and scores any
image with :meth:`~LearnedDetector.score`. Training draws pair-constrained
batches, as steganalysis does: each step takes ``batch_pairs`` pairs, the
same random crop and the same random rotation/flip (one of the 8 symmetries
of the square) for a cover and its stego image, so that the only difference
the network can learn from is the embedding. Every draw comes from a
generator seeded by ``seed``: the same pairs and seed give the same network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from invhide.checks import device as check_device
from invhide.checks import integer, non_negative_int, number, one_of, positive_int
from invhide.errors import InputError
from invhide.evaluation.steganalysis.classic import level_pairs, levels
from invhide.evaluation.steganalysis.networks import MIN_SIDE, SRMNet, SRNet
from invhide.io.progress import progress_bar

__all__ = [
    "DEFAULT_TRAINING",
    "LEARNED_DETECTORS",
    "LearnedDetector",
    "TrainingSettings",
    "build_network",
    "derive_seed",
]

LEARNED_DETECTORS: tuple[str, ...] = ("srnet", "srm-cnn")
"""Names of the learned detectors, as ``invhide steganalysis --detector`` takes them."""


@dataclass(frozen=True)
class TrainingSettings:
    """How a learned detector is trained.

    Attributes:
        steps: optimizer steps.
        batch_pairs: cover/stego pairs per step (twice as many images).
        crop: side of the square training crops (smaller when an image is).
        lr: peak learning rate of AdamW (linear warm-up over the first 5% of
            the steps, then a cosine decay to 0).
        weight_decay: AdamW's decoupled weight decay.
    """

    steps: int
    batch_pairs: int
    crop: int
    lr: float
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        positive_int("steps", self.steps)
        positive_int("batch_pairs", self.batch_pairs)
        integer("crop", self.crop, low=MIN_SIDE)
        number("lr", self.lr, low=0, low_open=True)
        number("weight_decay", self.weight_decay, low=0)

    def lr_at(self, step: int) -> float:
        """The learning rate of (0-based) step ``step``."""
        warmup = max(1, self.steps // 20)
        if step < warmup:
            return self.lr * (step + 1) / warmup
        return self.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, self.steps - warmup)))


DEFAULT_TRAINING: dict[str, TrainingSettings] = {
    "srm-cnn": TrainingSettings(steps=1000, batch_pairs=8, crop=128, lr=2e-3),
    "srnet": TrainingSettings(steps=2000, batch_pairs=8, crop=128, lr=1e-3),
}
"""Default settings per learned detector. ``"srnet"``'s steps are far below the paper's hundreds of
thousands: SRNet needs a GPU and many pairs to learn its residuals (see the Security page)."""


def build_network(name: str, channels: int = 3, *, generator: torch.Generator | None = None) -> nn.Module:
    """A freshly initialised network for the learned detector ``name``.

    Example:
        >>> type(build_network("srm-cnn")).__name__
        'SRMNet'
    """
    one_of("detector", name, LEARNED_DETECTORS)
    return SRNet(channels, generator=generator) if name == "srnet" else SRMNet(channels, generator=generator)


def derive_seed(*parts: int) -> int:
    """A seed in ``[0, 2^63)`` mixed from non-negative integers by numpy's ``SeedSequence``.

    Example:
        >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(1, 0)
        True
    """
    return int(np.random.SeedSequence(list(parts)).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


def _symmetry(image: Tensor, which: int) -> Tensor:
    """One of the 8 symmetries of the square: ``which // 4`` flips, ``which % 4`` quarter turns."""
    if which >= 4:
        image = image.flip(-1)
    return torch.rot90(image, which % 4, dims=(-2, -1))


class LearnedDetector:
    """A learned detector: a network, trained on pairs, that scores images by its logit.

    Args:
        name: ``"srnet"`` or ``"srm-cnn"``.
        settings: training settings (default: :data:`DEFAULT_TRAINING` for ``name``).
        seed: seeds the initial weights and every draw of the training.
        device: where to train and run (``"cpu"``, ``"cuda"``...).
        progress: show a progress bar while training.

    Attributes:
        network: the network (after :meth:`fit`, in eval mode).
        training_seconds: how long :meth:`fit` took.
        threshold: scores above it are called stego (0: the logit's sign).

    Example:
        >>> covers = [torch.full((3, 32, 32), 100, dtype=torch.uint8)] * 2
        >>> stegos = [torch.full((3, 32, 32), 101, dtype=torch.uint8)] * 2
        >>> settings = TrainingSettings(steps=2, batch_pairs=2, crop=16, lr=1e-3)
        >>> detector = LearnedDetector("srm-cnn", settings=settings).fit(covers, stegos)
        >>> detector.score(covers).shape
        (2,)
    """

    threshold: float = 0.0

    def __init__(
        self,
        name: str,
        *,
        settings: TrainingSettings | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        progress: bool = False,
    ) -> None:
        self.name = one_of("detector", name, LEARNED_DETECTORS)
        self.settings = settings if settings is not None else DEFAULT_TRAINING[name]
        if not isinstance(self.settings, TrainingSettings):
            raise InputError(f"settings must be a TrainingSettings, got {type(self.settings).__name__}")
        self.seed = non_negative_int("seed", seed)
        self.device = check_device("device", device)
        self.progress = progress
        self.network: nn.Module | None = None
        self.training_seconds = 0.0

    def fit(self, covers: Sequence[Tensor], stegos: Sequence[Tensor]) -> LearnedDetector:
        """Train a fresh network on the pairs ``(covers[i], stegos[i])``.

        Args:
            covers: ``(C, H, W)`` images (uint8 levels or floats in ``[0, 1]``).
            stegos: their stego images, each the size of its cover.

        Returns:
            ``self``, trained and in eval mode.

        Raises:
            invhide.errors.InputError: no pairs, unequal counts, a pair of two
                sizes, or an image smaller than the networks take.
        """
        covers, stegos = level_pairs(covers, stegos)
        for index, cover in enumerate(covers):
            self._check_size(f"pair {index}", "has images of shape", cover)
        smallest = min(min(image.shape[-2:]) for image in covers)
        start = time.perf_counter()
        self.network = self._train(covers, stegos, replace(self.settings, crop=min(self.settings.crop, smallest)))
        self.training_seconds = time.perf_counter() - start
        return self

    def _check_size(self, name: str, has: str, image: Tensor) -> None:
        """Refuse an image smaller than :data:`~invhide.evaluation.steganalysis.networks.MIN_SIDE` a side."""
        if min(image.shape[-2:]) < MIN_SIDE:
            raise InputError(
                argument=name,
                problem=f"{has} {tuple(image.shape)}, too small for {self.name}, which needs at least "
                f"{MIN_SIDE}x{MIN_SIDE} pixels",
            )

    def _train(self, covers: list[Tensor], stegos: list[Tensor], settings: TrainingSettings) -> nn.Module:
        """A fresh network trained with AdamW on pair-constrained batches, returned in eval mode."""
        init = torch.Generator().manual_seed(derive_seed(self.seed, 1))
        network = build_network(self.name, covers[0].shape[0], generator=init).to(self.device)
        optimizer = torch.optim.AdamW(network.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        draws = torch.Generator().manual_seed(derive_seed(self.seed, 2))
        labels = torch.cat((torch.zeros(settings.batch_pairs), torch.ones(settings.batch_pairs))).to(self.device)
        network.train()
        name = f"training {self.name}"
        with progress_bar(total=settings.steps, desc=name, unit="step", enabled=self.progress) as bar:
            for step in range(settings.steps):
                batch = self._batch(covers, stegos, settings, draws).to(self.device)
                for group in optimizer.param_groups:
                    group["lr"] = settings.lr_at(step)
                loss = nn.functional.binary_cross_entropy_with_logits(network(batch), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                bar.update(1)
                if self.progress:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
        return network.eval()

    @staticmethod
    def _batch(
        covers: Sequence[Tensor], stegos: Sequence[Tensor], settings: TrainingSettings, draws: torch.Generator
    ) -> Tensor:
        """Pair-constrained crops: ``(2 batch_pairs, C, crop, crop)`` floats, covers first."""
        crop = settings.crop
        chosen = torch.randint(len(covers), (settings.batch_pairs,), generator=draws).tolist()
        cover_crops, stego_crops = [], []
        for index in chosen:
            height, width = covers[index].shape[-2:]
            top = int(torch.randint(height - crop + 1, (1,), generator=draws))
            left = int(torch.randint(width - crop + 1, (1,), generator=draws))
            which = int(torch.randint(8, (1,), generator=draws))
            for source, crops in ((covers, cover_crops), (stegos, stego_crops)):
                crops.append(_symmetry(source[index][:, top : top + crop, left : left + crop], which))
        return torch.stack(cover_crops + stego_crops).float() / 255

    @torch.no_grad()
    def score(self, images: Sequence[Tensor], *, tile: int = 512) -> np.ndarray:
        """The network's logit for each image (positive: stego).

        Images larger than ``tile`` are cut into tiles of at most ``tile`` a
        side; their logits are averaged, weighted by area.

        Args:
            images: ``(C, H, W)`` images (uint8 levels or floats in ``[0, 1]``).
            tile: largest tile side (bounds the memory of a large image).

        Returns:
            ``(N,)`` float64 logits.

        Raises:
            invhide.errors.InputError: called before :meth:`fit`, or a bad image.
        """
        if self.network is None:
            raise InputError(f"{self.name} must be trained (fit) before it scores images")
        tile = integer("tile", tile, low=MIN_SIDE)
        scores = []
        for index, image in enumerate(images):
            image = levels(image, name=f"images[{index}]")
            self._check_size(f"images[{index}]", "has shape", image)
            height, width = image.shape[-2:]
            total = weight = 0.0
            for top in _starts(height, tile):
                for left in _starts(width, tile):
                    part = image[:, top : top + tile, left : left + tile]
                    logit = float(self.network(part[None].float().to(self.device) / 255)[0])
                    area = part.shape[-2] * part.shape[-1]
                    total, weight = total + logit * area, weight + area
            scores.append(total / weight)
        return np.asarray(scores, dtype=np.float64)


def _starts(length: int, tile: int) -> list[int]:
    """Tile starts covering ``length``; the last tile is moved back so that no tile is shorter than ``MIN_SIDE``."""
    if length <= tile:
        return [0]
    starts = list(range(0, length, tile))
    if length - starts[-1] < MIN_SIDE:
        starts[-1] = length - MIN_SIDE
    return starts
