"""The loss-explosion guard: detect a diverging step, roll back to a good state, lower the learning rate."""

from __future__ import annotations

import copy
import math
import statistics
from collections import deque
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from invhide.errors import DivergenceError
from invhide.training.averaging import WeightAverage

__all__ = ["ExplosionGuard"]


class ExplosionGuard:
    """Watches each step's loss; keeps a snapshot of a good state to roll back to.

    A step is unhealthy when its loss or gradient norm is not finite, or when
    its loss exceeds ``spike_factor`` times the median of the last
    ``spike_window`` healthy losses (once a fifth of the window, at least 5,
    is filled). After an unhealthy step the trainer restores the snapshot and
    the learning rate is multiplied by ``lr_factor``; more than
    ``max_rollbacks`` unhealthy steps in a row raise
    :class:`~invhide.errors.DivergenceError`.

    Args:
        spike_factor: how far above the median a loss counts as a spike.
        spike_window: healthy losses kept for the median.
        max_rollbacks: unhealthy steps in a row that are tolerated.
        lr_factor: learning-rate factor applied at each rollback.

    Example:
        >>> guard = ExplosionGuard(spike_factor=10, spike_window=10, max_rollbacks=1, lr_factor=0.5)
        >>> for loss in [1.0, 1.1, 0.9, 1.0, 1.2]:
        ...     guard.accept(loss)
        >>> guard.problem(50.0, 1.0), guard.problem(float("nan"), 1.0), guard.problem(1.0, 1.0)
        ('loss spike', 'non-finite loss or gradient', None)
    """

    def __init__(self, spike_factor: float, spike_window: int, max_rollbacks: int, lr_factor: float) -> None:
        self.spike_factor = spike_factor
        self.max_rollbacks = max_rollbacks
        self.lr_factor = lr_factor
        self.recent: deque[float] = deque(maxlen=spike_window)
        self.rollbacks = 0
        self.lr_scale = 1.0
        self.in_a_row = 0
        self.snapshot: dict[str, Any] = {}

    def problem(self, loss: float, grad_norm: float, scaled_gradients: bool = False) -> str | None:
        """Why the step is unhealthy, or ``None``.

        Args:
            loss: the step's loss (averaged over processes).
            grad_norm: its global gradient norm.
            scaled_gradients: a GradScaler is active, which handles
                non-finite gradients itself.
        """
        if not math.isfinite(loss) or not (scaled_gradients or math.isfinite(grad_norm)):
            return "non-finite loss or gradient"
        window = self.recent.maxlen or 1
        if len(self.recent) >= max(5, window // 5) and loss > self.spike_factor * statistics.median(self.recent):
            return "loss spike"
        return None

    def accept(self, loss: float) -> None:
        """Record a healthy step."""
        self.recent.append(loss)
        self.in_a_row = 0

    def reject(self, message: str) -> None:
        """Count an unhealthy step and lower the learning rate.

        Raises:
            DivergenceError: more than ``max_rollbacks`` in a row.
        """
        self.in_a_row += 1
        self.rollbacks += 1
        self.lr_scale *= self.lr_factor
        if self.in_a_row > self.max_rollbacks:
            raise DivergenceError(f"{message}; {self.in_a_row} rollbacks in a row, giving up")

    def take_snapshot(
        self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, average: WeightAverage | None = None
    ) -> None:
        """Remember ``step``'s model, optimizer (and weight average) state in memory as the state to roll back to."""
        self.snapshot = {
            "step": step,
            "model": copy.deepcopy(model.state_dict()),
            "optimizer": copy.deepcopy(optimizer.state_dict()),
            "average": average.state() if average is not None else None,
        }

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer, average: WeightAverage | None = None) -> int:
        """Load the snapshot into ``model``, ``optimizer`` (and ``average``); return its step."""
        model.load_state_dict(self.snapshot["model"])
        optimizer.load_state_dict(self.snapshot["optimizer"])
        if average is not None and self.snapshot.get("average") is not None:
            average.load_state(self.snapshot["average"])
        return int(self.snapshot["step"])

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the guard (JSON-ready)."""
        return {"rollbacks": self.rollbacks, "lr_scale": self.lr_scale, "recent": list(self.recent)}

    def load_state(self, rollbacks: int, lr_scale: float, recent: Iterable[float]) -> None:
        """Restore :meth:`state`'s values."""
        self.rollbacks = int(rollbacks)
        self.lr_scale = float(lr_scale)
        self.recent = deque((float(v) for v in recent), maxlen=self.recent.maxlen)
