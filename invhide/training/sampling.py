"""What each training step sees, as a pure function of ``(seed, step, rank, rollbacks)``.

Drawing every batch from a generator seeded by the step makes a resumed run
repeat an uninterrupted one exactly, whatever the data-loader workers do.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["StepBatches", "mix_seed"]


def mix_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (stable across processes and platforms).

    Example:
        >>> mix_seed(0, 1) == mix_seed(0, 1) != mix_seed(1, 0)
        True
    """
    digest = hashlib.blake2b(",".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class StepBatches(Dataset[Tensor]):
    """Item ``s`` is the image batch of step ``s``, drawn from ``(seed, s, rank, rollbacks)``.

    A batch is ``covers * secrets`` secret images followed by ``covers`` cover
    images, drawn with replacement, except that a cover is never the same
    image as the first of its secrets (when the dataset has two images or more):
    ``(covers * (secrets + 1), C, H, W)``, stacked from ``images``.

    Example:
        >>> batches = StepBatches(list(torch.rand(6, 3, 8, 8)), covers=2, secrets=1, seed=0, rank=0, rollbacks=0)
        >>> batches[7].shape, torch.equal(batches[7], batches[7])
        (torch.Size([4, 3, 8, 8]), True)
    """

    def __init__(
        self, images: Dataset[Tensor], covers: int, secrets: int, seed: int, rank: int, rollbacks: int
    ) -> None:
        self.images = images
        self.covers = covers
        self.secrets = secrets
        self.salt = (seed, rank, rollbacks)

    def __len__(self) -> int:  # pragma: no cover - indexed through a sampler
        return 2**62

    def indices(self, step: int, generator: torch.Generator) -> list[int]:
        """The data set indices of step ``step``'s batch, secrets first, drawn from ``generator``."""
        count = len(self.images)  # type: ignore[arg-type]
        secret = torch.randint(count, (self.covers * self.secrets,), generator=generator)
        if count < 2:
            return secret.tolist() + [0] * self.covers
        offset = torch.randint(1, count, (self.covers,), generator=generator)
        cover = (secret[:: self.secrets] + offset) % count
        return secret.tolist() + cover.tolist()

    def __getitem__(self, step: int) -> Tensor:
        generator = torch.Generator().manual_seed(mix_seed(*self.salt, step))
        indices = self.indices(step, generator)
        item = getattr(self.images, "item", None)
        if item is None:
            return torch.stack([self.images[i] for i in indices])
        seeds = torch.randint(2**62, (len(indices),), generator=generator).tolist()
        return torch.stack([item(i, torch.Generator().manual_seed(s)) for i, s in zip(indices, seeds, strict=True)])
