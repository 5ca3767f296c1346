"""Training: a robust, resumable, reproducible loop for any invertible hider.

:class:`Trainer` runs the paper's procedure (hide, reveal from the stego with
``z ~ N(0, 1)``, weighted hiding loss, Adam) and adds: exact resumption (the
batches and ``z`` of step ``s`` come from generators seeded with ``(seed, s,
rank, rollbacks)``, :mod:`~invhide.training.sampling`; on CUDA, bit for bit
only with ``torch.use_deterministic_algorithms(True)``), a loss-explosion
guard (:class:`~invhide.training.guard.ExplosionGuard`), atomic checkpoints
(:mod:`~invhide.training.checkpoints`), Ctrl-C that saves the last completed
step, logs (:class:`~invhide.training.logs.RunLog`) and a progress bar, training
through the 8-bit rounding (``quantize``, ``quantize_from``; the float model
before it kept in :data:`BEFORE_ROUNDING`), a moving average of the weights
(``ema_decay``), mixed precision (``amp``), gradient clipping, and
``DistributedDataParallel`` under ``torchrun``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from invhide.checks import tensor
from invhide.errors import ConfigError, InputError, InputTypeError, MissingPathError
from invhide.evaluation.metrics import SSIM_WINDOW, evaluate, psnr
from invhide.io import checkpoint
from invhide.io.progress import progress_bar
from invhide.models.hider import PublicKeyWarning
from invhide.nn.keys import KEY_BYTES
from invhide.training import distributed
from invhide.training.averaging import WeightAverage
from invhide.training.checkpoints import (
    AVERAGE_FILE,
    LOOP_FILE,
    latest_checkpoint,
    load_training_checkpoint,
    read_loop_state,
    save_training_checkpoint,
)
from invhide.training.config import TrainConfig
from invhide.training.guard import ExplosionGuard
from invhide.training.logs import RunLog
from invhide.training.losses import HidingLoss
from invhide.training.precision import resolve_amp
from invhide.training.sampling import StepBatches, mix_seed
from invhide.training.step import HidingStep

__all__ = ["BEFORE_ROUNDING", "TrainResult", "Trainer"]

BEFORE_ROUNDING = "before-rounding"
"""The folder of a run's output (``model.safetensors`` + ``config.json``) that keeps the float model of the
last step before ``quantize_from``, so that the fine-tune through the rounding can be judged against it."""

# Settings that may change between a run and its resumption without changing what it computes.
_BOOKKEEPING = ("val_every", "checkpoint_every", "log_every", "keep_checkpoints", "tensorboard", "num_workers")


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        steps: steps completed (the final step count).
        seconds: wall time of this call.
        rollbacks: loss-explosion rollbacks in the whole run.
        history: the logged training records of this call.
        validation: the last validation record, if any.
        model_path: the final model file, when an output folder was given.
        skipped: updates skipped for a loss spike in the whole run.
    """

    steps: int
    seconds: float
    rollbacks: int
    history: list[dict[str, float]] = field(default_factory=list)
    validation: dict[str, float] | None = None
    model_path: Path | None = None
    skipped: int = 0


class _Stop:
    """Everything about stopping a :meth:`Trainer.fit` early, in one object per call.

    While active (a context manager) in the main thread, the first SIGINT
    (Ctrl-C) only counts in :attr:`requests`, so that the step under way
    completes; the second raises ``KeyboardInterrupt`` at once. The handler
    is installed only in the main thread (the only one Python delivers
    signals to) and only over Python's default one, so an application's own
    SIGINT handler is left alone; the previous handler is restored on exit.

    Attributes:
        requests: Ctrl-Cs received by this process.
        agreed: some process asked to stop (under torchrun, learnt at each
            step's all-reduce, so that every process stops after the same step).
        updating: the model is between its optimizer update and the step
            count's increment: an exception now leaves it torn, and nothing is saved.
    """

    def __init__(self, notice: str | None = None, world_size: int = 1) -> None:
        self.notice = notice
        self.world_size = world_size
        self.requests = 0
        self.agreed = False
        self.updating = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requests += 1
        if self.requests > 1:
            raise KeyboardInterrupt
        if self.notice:
            with contextlib.suppress(OSError, ValueError, AttributeError):  # a stderr without a file descriptor
                os.write(sys.stderr.fileno(), self.notice.encode())  # no locks: safe inside a signal handler

    def __enter__(self) -> _Stop:
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def before_step(self) -> bool:
        """Whether to stop before the next step: a deferred Ctrl-C here or, under torchrun, on any process."""
        return self.agreed if self.world_size > 1 else self.requests > 0

    def after_run(self) -> bool:
        """Whether a Ctrl-C came during the last step (the run is complete; fit still raises ``KeyboardInterrupt``)."""
        return self.requests > 0 or self.agreed


def _channel(specs: tuple[str, ...]) -> nn.Module | None:
    """What the stego passes before the reveal for :attr:`TrainConfig.channels`: one of them per image, then 8 bits."""
    if not specs:
        return None
    from invhide.training.channels import OneOf, Rounding8Bit, Sequence, channel

    return Sequence(OneOf([channel(spec) for spec in specs]), Rounding8Bit())


def _ignore_sigint(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process, which stops the run cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_setup(
    model: nn.Module, loss: HidingLoss, train_data: Any, config: TrainConfig, val_pairs: Any, out_dir: Any
) -> None:
    """Refuse, before anything is built, what the first step, validation or checkpoint would fail on."""
    if not isinstance(config, TrainConfig):
        raise InputTypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if len(train_data) == 0:
        raise InputError("train_data holds no images")
    num_secrets, channels = getattr(model, "num_secrets", 1), getattr(model, "channels", 3)
    _check_first_image(train_data, channels, config.crop)
    unknown = sorted({term for _, term, _ in config.weight_schedule} - set(loss.weights))
    if unknown:
        raise ConfigError(f"weight_schedule names term(s) {unknown} that the loss lacks; terms: {list(loss.weights)}")
    if out_dir is not None:
        model.config()  # a model that cannot describe itself fails now, not at the first checkpoint
    if val_pairs and (num_secrets != 1 or channels != 3):
        raise InputError(
            f"validation (invhide.evaluation.metrics.evaluate) measures one RGB secret per cover; this model hides "
            f"{num_secrets} secret(s) of {channels} channel(s): pass val_pairs=None and evaluate it yourself"
        )
    if config.memory_saving and not hasattr(model, "memory_saving"):
        raise InputTypeError(f"memory_saving needs an InvertibleGraph model, got {type(model).__name__}")
    for i, (cover, _) in enumerate(val_pairs or ()):
        if min(cover.shape[-2:]) < SSIM_WINDOW:  # validation measures SSIM: fail now, not at its first run
            raise InputError(
                argument=f"val_pairs[{i}]",
                problem=f"must be at least {SSIM_WINDOW}x{SSIM_WINDOW} (SSIM's window), got "
                f"{cover.shape[-2]}x{cover.shape[-1]}",
            )


def _check_first_image(train_data: Any, channels: int, crop: int) -> None:
    """Refuse a data set whose first image the training step could not use (a cheap look at one image)."""
    item = getattr(train_data, "item", None)
    first = item(0, torch.Generator().manual_seed(0)) if item is not None else train_data[0]
    if isinstance(first, (tuple, list)) and len(first) == 1:  # a TensorDataset row
        raise InputTypeError(
            f"train_data[0] is a {type(first).__name__} of one tensor; pass the images themselves "
            f"(e.g. [x for (x,) in dataset])"
        )
    tensor("train_data[0]", first, floating=False)
    if first.dim() != 3 or first.shape[0] != channels or not first.is_floating_point():
        raise InputError(
            f"train_data[0] must be a float ({channels}, {crop}, {crop}) image in [0, 1], got shape "
            f"{tuple(first.shape)} and dtype {first.dtype}"
        )


class Trainer:
    """Train a hider on single images paired as cover/secret.

    Args:
        model: an :class:`~invhide.InvertibleHider` (or anything with its
            ``hide``/``reveal``/``config`` interface).
        loss: a :class:`~invhide.training.losses.HidingLoss`; gets the keywords
            ``cover``, ``secret``, ``stego``, ``recovered`` and ``lost``.
        train_data: a dataset of ``(C, crop, crop)`` float images in ``[0, 1]``
            (``C`` the model's channels, 3 for RGB); an
            :class:`~invhide.io.datasets.ImageDataset` makes its crops and flips
            reproducible per step through its ``item(index, generator)``.
        config: a :class:`~invhide.training.config.TrainConfig`.
        val_pairs: ``(cover, secret)`` pairs for periodic validation with
            :func:`invhide.evaluation.metrics.evaluate`.
        out_dir: folder for checkpoints, logs and the final model (created);
            ``None`` keeps everything in memory.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; under torchrun on
            CUDA, the local rank's GPU. Default: CUDA when available.
        progress: show a progress bar (rank 0 only; plain lines when stderr is not a terminal).

    Raises:
        TypeError: a ``config`` that is not a ``TrainConfig``, data set rows
            that are not image tensors, or ``memory_saving`` for a model without it.
        ValueError: no images, a first image of the wrong shape, a
            ``weight_schedule`` naming a term the loss lacks, or validation
            pairs for a model that hides several or non-RGB secrets.

    Example:
        >>> model = invhide.InvertibleHider(num_blocks=2, subnet=invhide.nn.subnets.conv(hidden=16))
        >>> data = list(torch.rand(8, 3, 32, 32))
        >>> config = TrainConfig(steps=3, batch_size=2, crop=32, lr=1e-3, tensorboard=False)
        >>> result = Trainer(model, HidingLoss.paper(reduction="mean"), data, config, progress=False).fit()
        >>> result.steps, result.rollbacks
        (3, 0)
    """

    def __init__(
        self,
        model: nn.Module,
        loss: HidingLoss,
        train_data: Dataset[Tensor] | Sequence[Tensor],
        config: TrainConfig,
        *,
        val_pairs: Sequence[tuple[Tensor, Tensor]] | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
    ) -> None:
        _check_setup(model, loss, train_data, config, val_pairs, out_dir)
        self.rank, self.world_size, self.device = distributed.setup(device)
        self.config, self.train_data, self.val_pairs = config, train_data, val_pairs
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress and self.rank == 0
        self.model = model.to(self.device)
        self.model.to(memory_format=torch.channels_last if config.channels_last else torch.contiguous_format)
        if config.memory_saving:
            self.model.memory_saving = True
        self.loss = loss.to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay
        )
        self.step = 0
        self.guard = ExplosionGuard(
            config.spike_factor, config.spike_window, config.max_rollbacks, config.rollback_lr_factor,
            spike_patience=config.spike_patience, lr_recovery_steps=config.lr_recovery_steps,
        )  # fmt: skip
        self.log = RunLog(self.out_dir if self.rank == 0 else None, tensorboard=config.tensorboard)
        self._amp = resolve_amp(config.amp, self.device)
        self._scaler = torch.amp.GradScaler("cuda") if self._amp == torch.float16 else None
        # The files this run trains the reveal for (saved with the model; invhide reveal warns about the others).
        from invhide.training.channels import file_channels  # here: the channels module imports the training step

        self.model.trained_channels = file_channels(config.channels)
        self.average = WeightAverage(self.model, config.ema_decay) if config.ema_decay is not None else None
        self._hiding = HidingStep(self.model, config.quantize_at(0), _channel(config.channels))
        self._step_module: nn.Module = self._hiding
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._step_module = nn.parallel.DistributedDataParallel(self._hiding, device_ids=ids)
        self._losses: dict[tuple[tuple[str, float], ...], HidingLoss] = {}
        self._stop = _Stop(world_size=self.world_size)
        self._final_validation: dict[str, float] | None = None

    @property
    def trained_model(self) -> nn.Module:
        """The model training makes: the weight average with ``ema_decay``, else :attr:`model` itself."""
        return self.average.module if self.average is not None else self.model

    @property
    def precision(self) -> str:
        """The dtype the hide and reveal of training run in (``"float32"`` without autocast)."""
        return str(self._amp or torch.float32).removeprefix("torch.")

    @property
    def rollbacks(self) -> int:
        """Loss-explosion rollbacks in the whole run."""
        return self.guard.rollbacks

    @property
    def skipped(self) -> int:
        """Updates skipped for a loss spike in the whole run."""
        return self.guard.skipped

    @property
    def lr_scale(self) -> float:
        """The learning-rate factor left by rollbacks (1 once every cut is recovered)."""
        return self.guard.lr_scale

    # ------------------------------------------------------------------
    # Checkpoints
    # ------------------------------------------------------------------

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step_XXXXXXXX/`` atomically (rank 0) and prune old ones.

        Returns:
            The checkpoint folder, or ``None`` without an output folder or off rank 0.
        """
        if self.out_dir is None or self.rank != 0:
            return None
        loop = {
            "step": self.step,
            **self.guard.state(),
            "world_size": self.world_size,
            "config": self.config.to_dict(),
            "grad_scaler": self._scaler.state_dict() if self._scaler is not None else None,
            "average_updates": self.average.updates if self.average is not None else None,
        }
        average = self.average.module if self.average is not None else None
        return save_training_checkpoint(
            self.out_dir, self.step, self.model, self.optimizer, loop, self.config.keep_checkpoints, average=average
        )

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder in ``out_dir``, if any."""
        return latest_checkpoint(self.out_dir)

    def load_checkpoint(self, folder: str | os.PathLike[str]) -> None:
        """Restore model, optimizer and loop state from a checkpoint folder.

        Raises:
            invhide.errors.MissingPathError: no such folder, or a file of the
                checkpoint is missing.
            invhide.io.checkpoint.CheckpointError: the checkpoint does not fit
                this model, or a file is corrupt or was edited (named).
        """
        path = Path(folder)
        if not path.is_dir():
            raise MissingPathError(f"{os.fspath(folder)}: no such checkpoint folder")
        average = self.average.module if self.average is not None else None
        loop = load_training_checkpoint(path, self.model, self.optimizer, self.device, average=average)
        self.step = loop["step"]
        if self.average is not None:
            if (path / AVERAGE_FILE).is_file():
                self.average.updates = int(loop.get("average_updates") or 0)
            else:  # the run had no average: start one from the resumed weights
                self.average.reset(self.model)
        guard_state = ("rollbacks", "lr_scale", "recent", "skipped", "spikes_in_a_row", "healthy_since_cut")
        self.guard.load_state(**{key: loop[key] for key in guard_state if key in loop})
        if self._scaler is not None and loop.get("grad_scaler"):
            try:
                self._scaler.load_state_dict(loop["grad_scaler"])
            except (KeyError, TypeError, ValueError, RuntimeError) as error:
                raise checkpoint.CheckpointError(
                    f"{path / LOOP_FILE}: unusable 'grad_scaler' state ({error!r:.80}); the checkpoint is "
                    f"corrupt or was edited"
                ) from None
        self._warn_if_changed(path, loop)

    def _warn_if_changed(self, folder: Path, loop: dict[str, Any]) -> None:
        """Warn when the run resumes with settings (or processes) that change what it computes."""
        saved = {k: v for k, v in loop["config"].items() if k not in _BOOKKEEPING}
        current = {k: v for k, v in self.config.to_dict().items() if k in saved}
        changed = {k: (saved[k], current[k]) for k in saved if json.dumps(saved[k]) != json.dumps(current[k])}
        if changed or loop.get("world_size", 1) != self.world_size:
            warnings.warn(
                f"resuming {folder} with different settings {changed} (world size {loop.get('world_size', 1)} -> "
                f"{self.world_size}); the run will not repeat the original exactly",
                UserWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------
    # One step
    # ------------------------------------------------------------------

    def _loader(self) -> DataLoader:
        secrets = getattr(self.model, "num_secrets", 1)
        batches = StepBatches(
            self.train_data, self.config.batch_size, secrets, self.config.seed, self.rank, self.guard.rollbacks
        )
        return DataLoader(
            batches,
            batch_size=None,
            sampler=range(self.step, self.config.steps),
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
            # The batches are seeded per step; this generator only keeps DataLoader from drawing its worker
            # base seed from torch's global generator.
            generator=torch.Generator().manual_seed(self.config.seed),
            persistent_workers=False,
            worker_init_fn=_ignore_sigint if self.config.num_workers else None,
        )

    def _batches(self) -> Iterator[Tensor]:
        """The loader's batches; before each one, stop (``KeyboardInterrupt``) if a Ctrl-C was deferred."""
        iterator = iter(self._loader())
        while self.step < self.config.steps:
            if self._stop.before_step():
                raise KeyboardInterrupt
            try:
                images = next(iterator)
            except StopIteration:
                return
            yield images

    def _loss_at(self, step: int) -> HidingLoss:
        """The loss with the weights :attr:`TrainConfig.weight_schedule` gives step ``step``."""
        if not self.config.weight_schedule:
            return self.loss
        weights = self.config.weights_at(step, self.loss.weights)
        key = tuple(weights.items())
        if key not in self._losses:
            self._losses[key] = self.loss.with_weights(weights)
        return self._losses[key]

    def _train_step(self, images: Tensor) -> dict[str, Any]:
        """One optimizer step on a batch of images; returns its record, with a ``"problem"`` to roll back."""
        cover, secrets = self._split(images)
        lr = self.config.lr_at(self.step) * self.guard.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        stego, lost, recovered = self._forward(cover, secrets)
        out = self._loss_at(self.step)(cover=cover, secret=secrets, stego=stego, recovered=recovered, lost=lost)
        total = out.total.float()
        loss, grad_norm = self._health(total, self._backward(total))
        terms = {name: value.item() for name, value in out.terms.items()}
        record = {"kind": "train", "step": self.step + 1, "lr": lr, "loss": loss, **terms, "grad_norm": grad_norm}
        problem = self.guard.problem(loss, grad_norm, scaled_gradients=self._scaler is not None)
        if problem is None:
            self._stop.updating = True  # an exception from here to the step's end leaves the model half-updated
            self._update(loss)
        else:
            if self._scaler is not None:
                self._scaler.update()  # unscale_ was called: close the step (and lower the scale on inf)
            if self.guard.should_roll_back(problem):
                return {**record, "problem": problem}
            self._skip(record, problem, loss)  # a lone spike: drop this batch's update, keep the model
        record["psnr_stego"] = psnr(stego.detach(), cover).mean().item()
        record["psnr_recovered"] = psnr(recovered.detach(), secrets).mean().item()
        self.step += 1
        self._stop.updating = False
        return record

    def _split(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(cover, secrets)`` of a step's ``(B (k + 1), C, H, W)`` images, on the device: ``(B, C, H, W)`` and
        ``(B, kC, H, W)``. As in the reference code, the first images are the secrets (``k`` in a row per cover)."""
        images = images.to(self.device, non_blocking=True)
        covers = self.config.batch_size
        secrets = images[: images.shape[0] - covers].reshape(covers, -1, *images.shape[2:])
        return images[images.shape[0] - covers :], secrets

    def _forward(self, cover: Tensor, secrets: Tensor) -> tuple[Tensor, ...]:
        """``(stego, lost, recovered)`` in float32: hide, then reveal with the step's ``z`` (autocast with ``amp``)."""
        noise_seed = mix_seed(self.config.seed, self.step, self.rank, self.guard.rollbacks, 1)
        generator = torch.Generator(self.device).manual_seed(noise_seed)
        z = torch.randn(secrets.shape, generator=generator, device=self.device, dtype=cover.dtype)
        # A keyed hider learns to hide under any key: a fresh one per pair and step, from the step's generator.
        keys = None
        if getattr(self.model, "keyed", False):
            keys = torch.randint(0, 256, (cover.shape[0], KEY_BYTES), generator=generator, device=self.device)
            keys = keys.to(torch.uint8)
        self.model.train()
        self._hiding.quantize, self._hiding.generator = self.config.quantize_at(self.step), generator
        autocast = torch.autocast(self.device.type, dtype=self._amp) if self._amp else contextlib.nullcontext()
        with autocast:
            outputs = self._step_module(cover, secrets, z, keys)
        return tuple(t.float() for t in outputs)  # the loss is float32 (a no-op without amp)

    def _backward(self, total: Tensor) -> Tensor:
        """Back-propagate ``total`` (scaled with float16) and clip the gradients; returns their norm before clipping."""
        self.optimizer.zero_grad(set_to_none=True)
        if self._scaler is not None:
            self._scaler.scale(total).backward()
            self._scaler.unscale_(self.optimizer)
        else:
            total.backward()
        clip = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        return torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)

    def _health(self, total: Tensor, grad_norm: Tensor) -> tuple[float, float]:
        """The step's loss and gradient norm, averaged over the processes, which also agree on a deferred Ctrl-C."""
        asked = float(self._stop.requests > 0)
        health = torch.stack([total.detach(), grad_norm.detach().float(), total.new_tensor(asked)])
        if self.world_size > 1:
            dist.all_reduce(health)  # every process stops after the same step when any was interrupted
            health /= self.world_size
        loss, norm, stop = health.tolist()
        self._stop.agreed = self._stop.agreed or stop > 0
        return loss, norm

    def _update(self, loss: float) -> None:
        """Take the optimizer step (through the GradScaler with float16), move the average, count a healthy step."""
        if self._scaler is not None:
            self._scaler.step(self.optimizer)
            self._scaler.update()
        else:
            self.optimizer.step()
        if self.average is not None:
            self.average.update(self.model)
        self.guard.accept(loss)

    def _skip(self, record: dict[str, Any], problem: str, loss: float) -> None:
        """Log a step whose update is dropped for a lone loss spike, and count it."""
        record["skipped"] = problem
        event = {"kind": "event", "event": "skipped", "at_step": self.step + 1, "problem": problem, "loss": loss}
        self.log.write({**event, "median": self.guard.median()})
        self.guard.skip()

    def _roll_back(self, record: dict[str, Any], bar: Any) -> None:
        """Log the unhealthy step, restore the snapshot and lower the learning rate (or give up)."""
        back_to = self.guard.target()["step"]
        message = (
            f"step {record['step']}: {record['problem']} (loss {record['loss']:.4g}); rolled back to step {back_to}"
        )
        event = {"kind": "event", "event": "rollback", "at_step": record["step"], "problem": record["problem"]}
        try:
            self.guard.reject(message)
        finally:
            guard = {"back_to_step": back_to, "lr_scale": self.guard.lr_scale, "rollbacks": self.guard.rollbacks}
            self.log.write({**event, "loss": record["loss"], **guard})
        if bar is not None:
            bar.write(f"{message}, learning rate x{self.guard.lr_scale:g}")
        self._stop.updating = True
        self.step = self.guard.restore(self.model, self.optimizer, self.average)
        self._stop.updating = False
        self.log.truncate(self.step)  # the steps after the snapshot will be logged again
        if bar is not None:
            bar.n = self.step
            bar.refresh()

    def validate(self) -> dict[str, float] | None:
        """Evaluate :attr:`trained_model` on ``val_pairs`` (float and 8-bit stego).

        Returns ``None`` without pairs or off rank 0.
        """
        if not self.val_pairs or self.rank != 0:
            return None
        with warnings.catch_warnings():  # a keyed hider is validated under the public key: any key measures alike
            warnings.simplefilter("ignore", PublicKeyWarning)
            result = evaluate(self.trained_model, self.val_pairs, device=self.device)  # z zeros, as reveal gives it
        record: dict[str, Any] = {"kind": "val", "step": self.step}
        for stego in result.stego_settings:
            tag = "float" if stego == "float" else "8bit"
            for row, name in (("cover/stego", "stego"), ("secret/recovery", "recovered")):
                record[f"psnr_{name}_{tag}"] = result.mean(row, "psnr", "rgb", stego)
                record[f"ssim_{name}_{tag}"] = result.mean(row, "ssim", "rgb", stego)
        self.log.write(record)
        return record

    # ------------------------------------------------------------------
    # The loop
    # ------------------------------------------------------------------

    def fit(self, resume: bool | Literal["auto"] = False) -> TrainResult:
        """Train until ``config.steps`` steps are done.

        Ctrl-C stops the run cleanly: in the main thread the first one is
        deferred until the step under way completes (a second one interrupts
        at once, saving nothing more); then a checkpoint of the last completed
        step is written (unless one exists), an ``"interrupted"`` event is
        logged and ``KeyboardInterrupt`` is raised. A ``KeyboardInterrupt``
        raised from inside a step (a loss term, a data set) is handled the
        same way. ``fit(resume=True)`` continues the run bit for bit.

        Args:
            resume: ``False`` starts a new run (refused when ``out_dir``
                holds a previous one); ``True`` continues from the newest
                checkpoint in ``out_dir`` and refuses a folder without one;
                ``"auto"`` continues when there is a checkpoint and starts
                afresh otherwise (dropping a previous run's train and val
                records, which no checkpoint backs).

        Returns:
            A :class:`TrainResult`.

        Raises:
            KeyboardInterrupt: Ctrl-C, after the checkpoint is written.
            invhide.errors.DivergenceError: ``max_rollbacks`` rollbacks in a row.
            invhide.errors.PathExistsError: ``resume=False`` and the output
                folder holds a previous run's logs or checkpoints.
            invhide.errors.MissingPathError: ``resume=True`` and the output
                folder holds no checkpoint.
            invhide.io.checkpoint.CheckpointError: the checkpoint to resume
                is corrupt or does not fit this model (named).
        """
        start = time.perf_counter()
        self._begin(resume)
        history: list[dict[str, Any]] = []
        with self._progress_bar() as bar, _Stop(self._interrupt_notice(), self.world_size) as self._stop:
            try:
                validation = self._loop(bar, history, start)
                model_path = self._finish()
            except KeyboardInterrupt:
                self._save_interrupted()
                raise
            if self._stop.after_run():  # Ctrl-C during the last step: the run is complete
                self._log_interrupted(model_path, f"the run was complete at step {self.step}")
                raise KeyboardInterrupt
        validation = self._final_validation or validation
        return TrainResult(
            self.step, time.perf_counter() - start, self.rollbacks, history, validation, model_path, self.skipped
        )

    def _loop(self, bar: Any, history: list[dict[str, Any]], start: float) -> dict[str, float] | None:
        """Train until ``config.steps``, appending the logged records to ``history``; the last validation."""
        validation = None
        while self.step < self.config.steps:
            for images in self._batches():
                record = self._train_step(images)
                if "problem" in record:
                    self._roll_back(record, bar)
                    history[:] = [r for r in history if r["step"] <= self.step]
                    break  # a fresh loader: the steps after a rollback draw new seeds
                self._show(bar, record)
                if self.step % self.config.log_every == 0 or self.step == self.config.steps:
                    history.append({**record, "time": time.perf_counter() - start})
                    self.log.write(history[-1])
                validation = self._periodic() or validation
        return validation

    def _interrupt_notice(self) -> str | None:
        """What the first Ctrl-C prints (with a progress bar and an output folder)."""
        if not self.progress or self.out_dir is None:
            return None
        return (
            f"\ninvhide: interrupted: finishing the current step, then saving a checkpoint in {self.out_dir} "
            f"(Ctrl-C again to stop at once)\n"
        )

    def _save_interrupted(self) -> None:
        """After a ``KeyboardInterrupt``: checkpoint the last completed step (unless torn or asked to hurry), log it."""
        saved: Path | None = None
        if self._stop.updating:
            note = "interrupted during the optimizer update; the newest checkpoint on disk is the one to resume"
        elif self._stop.requests > 1:
            note = "interrupted at once (second Ctrl-C); the newest checkpoint on disk is the one to resume"
        elif self.out_dir is None:
            note = f"no output folder: nothing saved; the model in memory is at step {self.step}"
        else:
            note = f"saved the last completed step, {self.step}"
            saved = self.latest_checkpoint()
            if saved is None or saved.name != f"step_{self.step:08d}":
                saved = self.save_checkpoint()
        self._log_interrupted(saved, note)
        self.log.close()

    def _log_interrupted(self, saved: Path | None, note: str) -> None:
        event = {"kind": "event", "event": "interrupted", "at_step": self.step}
        self.log.write({**event, "checkpoint": str(saved) if saved is not None else None, "note": note})

    def _begin(self, resume: bool | str) -> None:
        """Resume, or check that a new run does not overwrite another; open the logs and take the first snapshot."""
        if resume not in (False, True, "auto") or not isinstance(resume, (bool, str)):
            raise InputError(f"resume must be False, True or 'auto', got {resume!r}")
        latest = self.latest_checkpoint() if resume else None
        if resume is True and latest is None and self.step == 0:
            if self.out_dir is None:
                raise InputError("resume=True needs an output folder (out_dir) holding the run to resume")
            raise MissingPathError(
                f"{self.out_dir}: no checkpoint to resume (no checkpoints/step_*/{LOOP_FILE}); start a new run "
                f"with resume=False, or pass resume='auto' to resume only when there is a checkpoint"
            )
        if latest is not None:
            self._resume(latest)
        elif self.step == 0 and resume is False:
            self.log.check_fresh()
        self.log.open(self.step)
        self.guard.take_snapshot(self.step, self.model, self.optimizer, self.average)
        self._final_validation = None

    def _resume(self, latest: Path) -> None:
        """Load the newest checkpoint, naming the one before it when it is unusable."""
        try:
            saved_step = read_loop_state(latest)["step"]
            if saved_step > self.config.steps:
                raise ConfigError(
                    f"{latest} holds step {saved_step}, past steps={self.config.steps}: raise steps to go on "
                    f"training, or use the model as it is"
                )
            self.load_checkpoint(latest)
        except (checkpoint.CheckpointError, MissingPathError) as error:
            older = [p.name for p in sorted(latest.parent.glob("step_*")) if p != latest]
            if not older:
                raise
            raise type(error)(f"{error}; to resume from {older[-1]} instead, delete {latest}") from None

    @contextmanager
    def _progress_bar(self) -> Iterator[Any]:
        if not self.progress:
            yield None
            return
        bar = progress_bar(total=self.config.steps, initial=self.step, desc="training", unit="step")
        try:
            yield bar
        finally:
            bar.close()

    @staticmethod
    def _show(bar: Any, record: dict[str, Any]) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                loss=f"{record['loss']:.4g}",
                stego=f"{record['psnr_stego']:.2f}dB",
                secret=f"{record['psnr_recovered']:.2f}dB",
            )

    def _periodic(self) -> dict[str, float] | None:
        """Snapshot, validation and checkpoint when the step count calls for them."""
        config, step = self.config, self.step
        at_checkpoint = bool(config.checkpoint_every) and step % config.checkpoint_every == 0
        if step % config.snapshot_every == 0 or at_checkpoint:
            self.guard.take_snapshot(step, self.model, self.optimizer, self.average)
        validation = None
        if config.val_every and step % config.val_every == 0 and step < config.steps:
            validation = self.validate()
        if at_checkpoint:
            self.save_checkpoint()
        if config.quantize_from and step == config.quantize_from and self.out_dir is not None and self.rank == 0:
            checkpoint.save(self.trained_model, self.out_dir / BEFORE_ROUNDING)
        return validation

    def _finish(self) -> Path | None:
        """At the last step: validate, checkpoint and save the model; close the logs."""
        model_path = None
        if self.step == self.config.steps:
            self._final_validation = self.validate()
            if self.save_checkpoint() is not None and self.out_dir is not None:
                model_path = checkpoint.save(self.trained_model, self.out_dir)
        self.log.close()
        return model_path
