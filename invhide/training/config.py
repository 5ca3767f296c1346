"""The settings of a training run: :class:`TrainConfig`, with its learning-rate and loss-weight schedules."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from invhide.checks import non_negative_int, number, one_of, positive_int
from invhide.errors import ConfigError, InvhideError
from invhide.training.precision import AMP_CHOICES

__all__ = ["SCHEDULES", "TrainConfig"]

SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine")
"""Learning-rate schedules of :class:`TrainConfig`."""

_POSITIVE = (
    "steps", "batch_size", "crop", "lr_step", "spike_window", "spike_patience", "snapshot_every", "log_every",
    "keep_checkpoints",
)  # fmt: skip
_NON_NEGATIVE = (
    "warmup_steps", "val_every", "checkpoint_every", "max_rollbacks", "lr_recovery_steps", "num_workers", "seed",
)  # fmt: skip
# The real-valued settings and their bounds (checks.number's keywords); those in _OPTIONAL may also be None.
_NUMBERS: dict[str, dict[str, Any]] = {
    "lr": {"low": 0, "low_open": True},
    "lr_gamma": {"low": 0, "high": 1, "low_open": True},
    "rollback_lr_factor": {"low": 0, "high": 1, "low_open": True, "high_open": True},
    "grad_clip": {"low": 0, "low_open": True},
    "spike_factor": {"low": 1, "low_open": True},
    "ema_decay": {"low": 0, "high": 1, "low_open": True, "high_open": True},
    "eps": {"low": 0, "low_open": True},
    "weight_decay": {"low": 0},
}
_OPTIONAL = ("grad_clip", "ema_decay")


@dataclass
class TrainConfig:
    """Every setting of a training run.

    The optimiser defaults are the reference code's (Adam, lr 10^-4.5, betas
    (0.5, 0.999), eps 1e-6, weight decay 1e-5; learning rate halved every 50K
    steps); a named recipe (:func:`invhide.training.recipes.recipe`) sets every
    setting it depends on explicitly, the paper's own Adam parameters included.

    Attributes:
        steps: optimizer steps in total.
        batch_size: cover/secret pairs per step and process (2x images).
        crop: side of the square training crops (recorded with the run;
            the dataset makes the crops).
        lr: base learning rate.
        betas: Adam betas (reference code: 0.5, 0.999; the paper: Adam's standard 0.9, 0.999).
        eps: Adam epsilon (reference code: 1e-6).
        weight_decay: Adam weight decay (reference code: 1e-5).
        schedule: ``"step"`` (multiply by ``lr_gamma`` every ``lr_step``
            steps), ``"cosine"`` (to zero at ``steps``) or ``"constant"``.
        lr_step: steps between decays of the ``"step"`` schedule.
        lr_gamma: decay factor of the ``"step"`` schedule (paper and reference code: 0.5).
        warmup_steps: linear warm-up from 0 over this many steps.
        grad_clip: clip the global gradient norm to this (``None``: no clipping).
        quantize: reveal during training from the stego rounded to 8 bits,
            with a straight-through gradient (:func:`~invhide.training.step.round_ste`).
        quantize_from: reveal from the rounded stego from this (0-based)
            step on, and from the float stego before it: float training, then
            fine-tuning through the rounding (``None``: as ``quantize`` says
            for the whole run; ``quantize=True`` is ``quantize_from=0``).
        channels: lossy channels to train through (specs of
            :func:`invhide.training.channels.channel`, such as
            ``"jpeg:50-95"``, ``"noise:1-10"``, ``"resize:0.5-0.9"``,
            ``"round"``): where the reveal would start from the rounded stego,
            it starts from the stego after one of them, drawn per image with
            equal chances, then rounded to 8 bits (straight-through). They
            imply ``quantize=True`` unless ``quantize_from`` says when they start.
        amp: autocast the hide and reveal of training in reduced precision
            (the loss, the optimizer and validation stay float32):
            ``"bfloat16"``, ``"float16"`` (GPU only), ``"auto"`` (bfloat16
            where the device computes it natively, see
            :func:`~invhide.training.precision.native_bfloat16`, float32
            elsewhere), or ``None`` or ``"float32"`` (no autocast). Reduced
            precision breaks the exact inverse, so it cannot be combined with
            ``memory_saving``.
        ema_decay: keep an exponential moving average of the weights with
            this decay (:class:`~invhide.training.averaging.WeightAverage`);
            validation, the final model and :attr:`Trainer.trained_model
            <invhide.training.trainer.Trainer.trained_model>` use the average,
            and checkpoints keep it. ``None``: no average.
        spike_factor: a loss above this times the median of the last
            ``spike_window`` healthy losses is a spike: its update is
            skipped (:class:`~invhide.training.guard.ExplosionGuard`).
        spike_window: losses kept for the median.
        spike_patience: spikes in a row that count as an explosion and roll
            back (1: every spike rolls back). A non-finite loss or gradient
            always rolls back.
        max_rollbacks: rollbacks in a row before :class:`~invhide.errors.DivergenceError`.
        rollback_lr_factor: learning-rate factor applied at each rollback.
        lr_recovery_steps: healthy steps after which one rollback's
            learning-rate cut is undone, until the rate is back to the
            schedule's (0: cuts last for the rest of the run).
        snapshot_every: steps between in-memory snapshots of a good state.
        log_every: steps between log records.
        val_every: steps between validations (0: only at the end).
        checkpoint_every: steps between checkpoints (0: only at the end);
            a checkpoint is also a snapshot, so that a resumed run rolls back
            to the same states as an uninterrupted one.
        keep_checkpoints: most recent checkpoints kept on disk.
        seed: seeds every random draw of the run.
        num_workers: DataLoader worker processes.
        channels_last: store the convolution weights channels-last (faster
            on CPUs and recent GPUs; the saved weights are the same);
            ``False`` stores them NCHW.
        memory_saving: train without storing activations (the model's
            ``memory_saving`` switch, see :mod:`invhide.nn.graph`).
        tensorboard: also log to TensorBoard when it is installed.
        weight_schedule: changes of loss-term weights during the run, as
            ``(step, term, weight)`` triples: from (0-based) step ``step`` on,
            the term named ``term`` of the loss has weight ``weight``. The
            paper's pre-training without the low-frequency loss is
            ``((0, "low_frequency", 0.0), (N, "low_frequency", 10.0))``.
    """

    steps: int = 80_000
    batch_size: int = 8
    crop: int = 256
    lr: float = 10**-4.5
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-6
    weight_decay: float = 1e-5
    schedule: str = "step"
    lr_step: int = 50_000
    lr_gamma: float = 0.5
    warmup_steps: int = 0
    grad_clip: float | None = None
    quantize: bool = False
    quantize_from: int | None = None
    amp: str | None = None
    ema_decay: float | None = None
    spike_factor: float = 10.0
    spike_window: int = 50
    spike_patience: int = 3
    max_rollbacks: int = 5
    rollback_lr_factor: float = 0.5
    lr_recovery_steps: int = 1000
    snapshot_every: int = 50
    log_every: int = 10
    val_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    seed: int = 0
    num_workers: int = 0
    channels_last: bool = True
    memory_saving: bool = False
    tensorboard: bool = True
    weight_schedule: tuple[tuple[int, str, float], ...] = ()
    channels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in _POSITIVE:
            positive_int(name, getattr(self, name))
        for name in _NON_NEGATIVE:
            non_negative_int(name, getattr(self, name))
        if self.quantize_from is not None:
            non_negative_int("quantize_from", self.quantize_from)
        for name, bounds in _NUMBERS.items():
            if getattr(self, name) is not None or name not in _OPTIONAL:
                setattr(self, name, number(name, getattr(self, name), **bounds))
        one_of("schedule", self.schedule, SCHEDULES)
        one_of("amp", self.amp, AMP_CHOICES)
        self.betas = _betas(self.betas)
        self.weight_schedule = _weight_schedule(self.weight_schedule)
        self.channels = _channels(self.channels)
        if self.channels and self.quantize_from is None:
            self.quantize = True
        self._check_combination()

    def _check_combination(self) -> None:
        """Refuse settings that are each valid but cannot go together."""
        if self.quantize_from is not None and self.quantize:
            raise ConfigError(
                f"quantize=True rounds from step 0 and quantize_from={self.quantize_from} from a later step: "
                f"pass one of them"
            )
        if self.amp is not None and self.memory_saving:
            raise ConfigError(
                "amp and memory_saving cannot be combined: memory saving rebuilds activations through the exact "
                "inverse, which reduced precision breaks"
            )

    def lr_at(self, step: int) -> float:
        """The scheduled learning rate of (0-based) step ``step``, before rollback factors.

        Example:
            >>> TrainConfig(lr=1.0, schedule="step", lr_step=10, lr_gamma=0.5).lr_at(25)
            0.25
        """
        factor = 1.0
        if self.warmup_steps and step < self.warmup_steps:
            factor = (step + 1) / self.warmup_steps
        if self.schedule == "step":
            factor *= self.lr_gamma ** (step // self.lr_step)
        elif self.schedule == "cosine":
            start = min(self.warmup_steps, self.steps - 1)
            progress = (step - start) / max(1, self.steps - start) if step >= start else 0.0
            factor *= 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return self.lr * factor

    def quantize_at(self, step: int) -> bool:
        """Whether (0-based) step ``step`` reveals from the stego rounded to 8 bits.

        Example:
            >>> config = TrainConfig(quantize_from=100)
            >>> config.quantize_at(99), config.quantize_at(100)
            (False, True)
        """
        if self.quantize_from is not None:
            return step >= self.quantize_from
        return self.quantize

    def weights_at(self, step: int, weights: Mapping[str, float]) -> dict[str, float]:
        """The loss-term weights of (0-based) step ``step``: ``weights`` with :attr:`weight_schedule` applied.

        Example:
            >>> config = TrainConfig(weight_schedule=((0, "f", 0.0), (100, "f", 10.0)))
            >>> config.weights_at(99, {"c": 1.0, "f": 10.0}), config.weights_at(100, {"c": 1.0, "f": 10.0})
            ({'c': 1.0, 'f': 0.0}, {'c': 1.0, 'f': 10.0})
        """
        current = dict(weights)
        for start, term, weight in self.weight_schedule:
            if start <= step:
                current[term] = weight
        return current

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return dataclasses.asdict(self)


def _channels(specs: object) -> tuple[str, ...]:
    """The channel specs, each checked by building its channel (a JPEG needs kornia), as a tuple of strings."""
    from invhide.training.channels import channel  # here: the channels module imports the training step

    if isinstance(specs, str) or not isinstance(specs, Sequence):
        raise ConfigError(
            argument="channels", problem=f"must be a sequence of channel specs such as ('jpeg:50-95',), got {specs!r}"
        )
    for spec in specs:
        try:
            channel(spec)
        except InvhideError as error:
            raise error.renamed("channels") from None
    return tuple(specs)


def _betas(betas: object) -> tuple[float, float]:
    """Adam's two betas, each in ``[0, 1)``."""
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Sequence) or len(betas) != 2:
        raise ConfigError(f"betas must be two numbers in [0, 1), got {betas!r}")
    first, second = (number(f"betas[{i}]", b, low=0, high=1, high_open=True) for i, b in enumerate(betas))
    return first, second


def _weight_schedule(schedule: object) -> tuple[tuple[int, str, float], ...]:
    """Check ``(step, term, weight)`` triples and sort them by step (the order of equal steps is kept)."""
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence):
        raise ConfigError(f"weight_schedule must be a sequence of (step, term, weight) triples, got {schedule!r}")
    checked = []
    for entry in schedule:
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) != 3:
            raise ConfigError(f"weight_schedule entries must be (step, term, weight) triples, got {entry!r}")
        step, term, weight = entry
        if not isinstance(term, str) or not term:
            raise ConfigError(f"weight_schedule names a term by a non-empty string, got {term!r}")
        checked.append(
            (non_negative_int("weight_schedule step", step), term, number(f"weight of {term!r}", weight, low=0))
        )
    return tuple(sorted(checked, key=lambda entry: entry[0]))
