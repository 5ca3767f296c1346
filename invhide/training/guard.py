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

__all__ = ["NON_FINITE", "SPIKE", "ExplosionGuard"]

NON_FINITE = "non-finite loss or gradient"
"""The problem of a step whose loss or gradient norm is not finite."""
SPIKE = "loss spike"
"""The problem of a step whose loss is far above the recent median."""


class ExplosionGuard:
    """Watches each step's loss; skips lone spikes, rolls back real explosions.

    A step is unhealthy when its loss or gradient norm is not finite, or when
    its loss exceeds ``spike_factor`` times the median of the last
    ``spike_window`` healthy losses (once a fifth of the window, at least 5,
    is filled). A loss spike alone is usually a hard batch, not a broken
    model: its update is skipped and training goes on. A non-finite step, or
    the ``spike_patience``-th spike in a row, is an explosion: the trainer
    restores the snapshot and the learning rate is multiplied by
    ``lr_factor``. The cut is undone, one factor at a time, after each
    ``lr_recovery_steps`` healthy steps (0: cuts are permanent). The guard
    keeps the two newest snapshots: a model can degrade slowly, below the
    spike threshold, so that the newest snapshot is already bad; when the
    state restored from it fails again before a single healthy step, the
    next rollback goes to the older one. More than ``max_rollbacks``
    rollbacks in a row raise :class:`~invhide.errors.DivergenceError`.

    Args:
        spike_factor: how far above the median a loss counts as a spike.
        spike_window: healthy losses kept for the median.
        max_rollbacks: rollbacks in a row that are tolerated.
        lr_factor: learning-rate factor applied at each rollback.
        spike_patience: spikes in a row that count as an explosion (1: every
            spike rolls back).
        lr_recovery_steps: healthy steps after which one rollback's
            learning-rate cut is undone (0: never).

    Example:
        >>> guard = ExplosionGuard(spike_factor=10, spike_window=10, max_rollbacks=1, lr_factor=0.5, spike_patience=3)
        >>> for loss in [1.0, 1.1, 0.9, 1.0, 1.2]:
        ...     guard.accept(loss)
        >>> guard.problem(50.0, 1.0), guard.problem(float("nan"), 1.0), guard.problem(1.0, 1.0)
        ('loss spike', 'non-finite loss or gradient', None)
        >>> guard.should_roll_back("loss spike"), guard.should_roll_back("non-finite loss or gradient")
        (False, True)
    """

    def __init__(
        self,
        spike_factor: float,
        spike_window: int,
        max_rollbacks: int,
        lr_factor: float,
        spike_patience: int = 1,
        lr_recovery_steps: int = 0,
    ) -> None:
        self.spike_factor = spike_factor
        self.max_rollbacks = max_rollbacks
        self.lr_factor = lr_factor
        self.spike_patience = spike_patience
        self.lr_recovery_steps = lr_recovery_steps
        self.recent: deque[float] = deque(maxlen=spike_window)
        self.rollbacks = 0
        self.skipped = 0
        self.lr_scale = 1.0
        self.in_a_row = 0
        self.spikes_in_a_row = 0
        self.healthy_since_cut = 0
        self.snapshots: deque[dict[str, Any]] = deque(maxlen=2)

    def problem(self, loss: float, grad_norm: float, scaled_gradients: bool = False) -> str | None:
        """Why the step is unhealthy, or ``None``.

        Args:
            loss: the step's loss (averaged over processes).
            grad_norm: its global gradient norm.
            scaled_gradients: a GradScaler is active, which handles
                non-finite gradients itself.
        """
        if not math.isfinite(loss) or not (scaled_gradients or math.isfinite(grad_norm)):
            return NON_FINITE
        if self.is_spike(loss):
            return SPIKE
        return None

    def is_spike(self, loss: float) -> bool:
        """Whether ``loss`` is above ``spike_factor`` times the median of the recent healthy losses."""
        window = self.recent.maxlen or 1
        return len(self.recent) >= max(5, window // 5) and loss > self.spike_factor * self.median()

    def median(self) -> float:
        """The median of the recent healthy losses (``nan`` before the first)."""
        return statistics.median(self.recent) if self.recent else math.nan

    def should_roll_back(self, problem: str) -> bool:
        """Whether the unhealthy step of ``problem`` needs a rollback, or only skipping its update.

        A non-finite step always does; a spike does when it would be the
        ``spike_patience``-th in a row (asking counts nothing: :meth:`skip` does).
        """
        if problem != SPIKE:
            return True
        return self.spikes_in_a_row + 1 >= self.spike_patience

    def skip(self) -> None:
        """Count a spike whose update is skipped (the step is not rolled back)."""
        self.spikes_in_a_row += 1
        self.skipped += 1

    def accept(self, loss: float) -> None:
        """Record a healthy step; undo one learning-rate cut after ``lr_recovery_steps`` of them."""
        self.recent.append(loss)
        self.in_a_row = 0
        self.spikes_in_a_row = 0
        if self.lr_scale < 1.0 and self.lr_recovery_steps:
            self.healthy_since_cut += 1
            if self.healthy_since_cut >= self.lr_recovery_steps:
                self.lr_scale = min(1.0, self.lr_scale / self.lr_factor)
                self.healthy_since_cut = 0

    def reject(self, message: str) -> None:
        """Count a rollback and lower the learning rate.

        Raises:
            DivergenceError: more than ``max_rollbacks`` in a row.
        """
        self.in_a_row += 1
        self.rollbacks += 1
        self.spikes_in_a_row = 0
        self.healthy_since_cut = 0
        self.lr_scale *= self.lr_factor
        if self.in_a_row > self.max_rollbacks:
            raise DivergenceError(f"{message}; {self.in_a_row} rollbacks in a row, giving up")

    def take_snapshot(
        self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, average: WeightAverage | None = None
    ) -> None:
        """Remember ``step``'s model, optimizer (and weight average) state in memory as the state to roll back to."""
        snapshot = {
            "step": step,
            "model": copy.deepcopy(model.state_dict()),
            "optimizer": copy.deepcopy(optimizer.state_dict()),
            "average": average.state() if average is not None else None,
        }
        if self.snapshots and self.snapshots[-1]["step"] == step:
            self.snapshots[-1] = snapshot  # the same step again (a rollback's target, or resume): keep one
        else:
            self.snapshots.append(snapshot)

    @property
    def snapshot(self) -> dict[str, Any]:
        """The newest snapshot (empty before the first)."""
        return self.snapshots[-1] if self.snapshots else {}

    def target(self) -> dict[str, Any]:
        """The snapshot the next rollback restores: the newest, or the older one when the state restored
        from the newest failed again before a healthy step."""
        if self.in_a_row >= 1 and len(self.snapshots) > 1:
            return self.snapshots[-2]
        return self.snapshot

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer, average: WeightAverage | None = None) -> int:
        """Load :meth:`target`'s snapshot (as it was before :meth:`reject`) into ``model``, ``optimizer``
        (and ``average``), dropping the newest when it failed twice; return its step."""
        if self.in_a_row >= 2 and len(self.snapshots) > 1:
            self.snapshots.pop()
        snapshot = self.snapshot
        model.load_state_dict(snapshot["model"])
        optimizer.load_state_dict(snapshot["optimizer"])
        if average is not None and snapshot.get("average") is not None:
            average.load_state(snapshot["average"])
        return int(snapshot["step"])

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the guard (JSON-ready)."""
        return {
            "rollbacks": self.rollbacks,
            "lr_scale": self.lr_scale,
            "recent": list(self.recent),
            "skipped": self.skipped,
            "spikes_in_a_row": self.spikes_in_a_row,
            "healthy_since_cut": self.healthy_since_cut,
        }

    def load_state(
        self,
        rollbacks: int,
        lr_scale: float,
        recent: Iterable[float],
        skipped: int = 0,
        spikes_in_a_row: int = 0,
        healthy_since_cut: int = 0,
    ) -> None:
        """Restore :meth:`state`'s values (checkpoints from before skipping and recovery lack the last three)."""
        self.rollbacks = int(rollbacks)
        self.lr_scale = float(lr_scale)
        self.recent = deque((float(v) for v in recent), maxlen=self.recent.maxlen)
        self.skipped = int(skipped)
        self.spikes_in_a_row = int(spikes_in_a_row)
        self.healthy_since_cut = int(healthy_since_cut)
