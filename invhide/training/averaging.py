"""An exponential moving average of a model's weights, the usual way to get a better model from the same steps.

After each optimizer step, :meth:`WeightAverage.update` moves every averaged
parameter towards the trained one: ``average = decay_n * average + (1 -
decay_n) * weight``, with the warm-up ``decay_n = min(decay, (1 + n) / (10 +
n))`` at the ``n``-th update, so the first updates follow the weights closely
and early weights are not averaged in for long. Buffers are copied, not
averaged. The average is a full copy of the model (:attr:`WeightAverage.module`),
so it hides, reveals and saves like any model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from invhide.checks import number

__all__ = ["WeightAverage"]


class WeightAverage:
    """An exponential moving average of ``model``'s parameters.

    Args:
        model: the model being trained (copied; the copy is the average).
        decay: the average's decay, in (0, 1); 0.999 averages over about the
            last 1000 steps.

    Example:
        >>> model = torch.nn.Linear(2, 1)
        >>> average = WeightAverage(model, decay=0.9)
        >>> with torch.no_grad():
        ...     _ = model.weight.add_(1.0)
        >>> average.update(model)  # first update: decay_1 = min(0.9, 2 / 11)
        >>> torch.allclose(average.module.weight, model.weight - 2 / 11)
        True
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = number("ema_decay", decay, low=0, high=1, low_open=True, high_open=True)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    def current_decay(self) -> float:
        """The decay the next update uses (the warm-up's, until it reaches :attr:`decay`)."""
        n = self.updates + 1
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights (after an optimizer step)."""
        decay = self.current_decay()
        for average, current in zip(self.module.parameters(), model.parameters(), strict=True):
            average.lerp_(current.detach(), 1 - decay)
        for average, current in zip(self.module.buffers(), model.buffers(), strict=True):
            average.copy_(current)
        self.updates += 1

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Start the average again from ``model``'s weights (update count 0)."""
        self.module.load_state_dict(model.state_dict())
        self.updates = 0

    def state(self) -> dict[str, Any]:
        """A copy of the average's tensors and update count (for a rollback snapshot)."""
        return {"tensors": copy.deepcopy(self.module.state_dict()), "updates": self.updates}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state`."""
        self.load(state["tensors"], state["updates"])

    @torch.no_grad()
    def load(self, tensors: Mapping[str, Tensor], updates: int) -> None:
        """Load averaged tensors (a checkpoint's) and their update count."""
        self.module.load_state_dict(tensors)
        self.updates = int(updates)
