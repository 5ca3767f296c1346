"""Training: a robust, resumable, reproducible loop for any invertible hider.

:class:`Trainer` runs the paper's procedure (hide, reveal from the stego with
``z ~ N(0, 1)``, weighted hiding loss, Adam) and adds what the reference code
lacks:

- **Reproducibility by construction.** The images, crops, flips and ``z`` of
  step ``s`` are drawn from generators seeded with ``(seed, s, rank,
  rollbacks)``, and the learning rate is a function of ``s``. A run resumed
  from a checkpoint therefore continues exactly as if it had not stopped (on
  the same machine and device; CUDA kernels are deterministic only with
  ``torch.use_deterministic_algorithms(True)``).
- **A loss-explosion guard.** A non-finite loss or gradient, or a loss above
  ``spike_factor`` times the median of the recent ones, rolls the model and
  optimizer back to the last good snapshot, multiplies the learning rate by
  ``rollback_lr_factor`` and goes on (logged). Too many rollbacks in a row
  raise :class:`~invhide.errors.DivergenceError`.
- **Atomic checkpoints.** ``checkpoints/step_XXXXXXXX/`` holds the model
  (safetensors + ``config.json``), the optimizer (safetensors) and the loop
  state (JSON), written to a temporary folder and renamed into place.
- **Logs.** ``log.jsonl`` (every record), ``train.csv`` and ``val.csv``, and
  TensorBoard when it is installed; a tqdm bar shows live losses and PSNRs.
- **Differentiable 8-bit rounding** (``quantize=True``): the reveal starts
  from the stego rounded to 8 bits, with a straight-through gradient, so the
  model learns to reveal from a PNG.
- **Mixed precision** on CUDA (``amp="bfloat16"`` or ``"float16"``),
  gradient clipping, and multi-GPU / multi-node training through PyTorch's
  ``DistributedDataParallel`` when launched with ``torchrun``.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from invhide.errors import ConfigError, InputError, InputTypeError
from invhide.evaluation.metrics import evaluate
from invhide.io import checkpoint
from invhide.training import distributed
from invhide.training.checkpoints import latest_checkpoint, load_training_checkpoint, save_training_checkpoint
from invhide.training.config import TrainConfig
from invhide.training.guard import ExplosionGuard
from invhide.training.logs import RunLog
from invhide.training.losses import HidingLoss
from invhide.training.sampling import StepBatches, mix_seed
from invhide.training.step import HidingStep

__all__ = ["TrainResult", "Trainer"]

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
    """

    steps: int
    seconds: float
    rollbacks: int
    history: list[dict[str, float]] = field(default_factory=list)
    validation: dict[str, float] | None = None
    model_path: Path | None = None


def _psnr(x: Tensor, y: Tensor) -> float:
    """Mean per-image PSNR in dB for images in [0, 1], any number of channels (float stego, for logs)."""
    mse = (x.detach().float() - y.detach().float()).square().flatten(1).mean(dim=1)
    return (-10 * torch.log10(mse)).mean().item()


class Trainer:
    """Train a hider on single images paired as cover/secret.

    Args:
        model: an :class:`~invhide.InvertibleHider` (or anything with its
            ``hide``/``reveal``/``config`` interface).
        loss: a :class:`~invhide.training.losses.HidingLoss`; gets the keywords
            ``cover``, ``secret``, ``stego``, ``recovered`` and ``lost``.
        train_data: a dataset of ``(3, crop, crop)`` images; an
            :class:`~invhide.io.datasets.ImageDataset` makes its crops and flips
            reproducible per step through its ``item(index, generator)``.
        config: a :class:`~invhide.training.config.TrainConfig`.
        val_pairs: ``(cover, secret)`` pairs for periodic validation with
            :func:`invhide.evaluation.metrics.evaluate`.
        out_dir: folder for checkpoints, logs and the final model (created);
            ``None`` keeps everything in memory.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; under torchrun on
            CUDA, the local rank's GPU. Default: CUDA when available.
        progress: show a tqdm progress bar (rank 0 only).

    Example:
        >>> import tempfile
        >>> from invhide.io.datasets import ImageDataset, sample_image_paths  # doctest: +SKIP
        >>> model = invhide.InvertibleHider(num_blocks=2, subnet=invhide.nn.subnets.conv(hidden=16))
        >>> images = torch.utils.data.TensorDataset(torch.rand(8, 3, 32, 32))
        >>> data = [x for (x,) in images]
        >>> trainer = Trainer(model, invhide.training.losses.HidingLoss.paper(reduction="mean"), data,
        ...                   TrainConfig(steps=3, batch_size=2, crop=32, lr=1e-3, tensorboard=False), progress=False)
        >>> result = trainer.fit()
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
        if not isinstance(config, TrainConfig):
            raise InputTypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if len(train_data) == 0:  # type: ignore[arg-type]
            raise InputError("train_data holds no images")
        unknown = sorted({term for _, term, _ in config.weight_schedule} - set(loss.weights))
        if unknown:
            raise ConfigError(
                f"weight_schedule names term(s) {unknown} that the loss lacks; terms: {list(loss.weights)}"
            )
        self.rank, self.world_size, self.device = distributed.setup(device)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.out_dir is not None:
            model.config()  # a model that cannot describe itself fails now, not at the first checkpoint
        num_secrets, channels = getattr(model, "num_secrets", 1), getattr(model, "channels", 3)
        if val_pairs and (num_secrets != 1 or channels != 3):
            raise InputError(
                f"validation (invhide.evaluation.metrics.evaluate) measures one RGB secret per cover; this model hides "
                f"{num_secrets} secret(s) of {channels} channel(s): pass val_pairs=None and evaluate it yourself"
            )
        self.model = model.to(self.device)
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if config.memory_saving:
            if not hasattr(model, "memory_saving"):
                raise InputTypeError(f"memory_saving needs an InvertibleGraph model, got {type(model).__name__}")
            model.memory_saving = True
        self.loss = loss.to(self.device)
        self.train_data = train_data
        self.config = config
        self.val_pairs = val_pairs
        self.progress = progress and self.rank == 0
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay
        )
        self.step = 0
        self.guard = ExplosionGuard(
            config.spike_factor, config.spike_window, config.max_rollbacks, config.rollback_lr_factor
        )
        self.log = RunLog(self.out_dir if self.rank == 0 else None, tensorboard=config.tensorboard)
        self._amp = config.amp if self.device.type == "cuda" else None
        self._scaler = torch.amp.GradScaler("cuda") if self._amp == "float16" else None
        hiding = HidingStep(self.model, config.quantize)
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._step_module: nn.Module = nn.parallel.DistributedDataParallel(hiding, device_ids=ids)
        else:
            self._step_module = hiding
        self._losses: dict[tuple[tuple[str, float], ...], HidingLoss] = {}

    @property
    def rollbacks(self) -> int:
        """Loss-explosion rollbacks in the whole run."""
        return self.guard.rollbacks

    @property
    def lr_scale(self) -> float:
        """The product of the rollbacks' learning-rate factors."""
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
        }
        return save_training_checkpoint(
            self.out_dir, self.step, self.model, self.optimizer, loop, self.config.keep_checkpoints
        )

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder in ``out_dir``, if any."""
        return latest_checkpoint(self.out_dir)

    def load_checkpoint(self, folder: str | os.PathLike[str]) -> None:
        """Restore model, optimizer and loop state from a checkpoint folder.

        Raises:
            invhide.io.checkpoint.CheckpointError: the checkpoint does not fit this model.
        """
        folder = Path(folder)
        loop = load_training_checkpoint(folder, self.model, self.optimizer, self.device)
        self.step = int(loop["step"])
        self.guard.load_state(loop["rollbacks"], loop["lr_scale"], loop["recent"])
        if self._scaler is not None and loop.get("grad_scaler"):
            self._scaler.load_state_dict(loop["grad_scaler"])
        saved = {k: v for k, v in loop["config"].items() if k not in _BOOKKEEPING}
        current = {k: v for k, v in self.config.to_dict().items() if k in saved}
        changed = {k: (saved[k], current[k]) for k in saved if json.dumps(saved[k]) != json.dumps(current[k])}
        if changed or loop.get("world_size", 1) != self.world_size:
            warnings.warn(
                f"resuming {folder} with different settings {changed} (world size {loop.get('world_size', 1)} -> "
                f"{self.world_size}); the run will not repeat the original exactly",
                UserWarning,
                stacklevel=2,
            )

    # ------------------------------------------------------------------
    # One step
    # ------------------------------------------------------------------

    def _loader(self) -> DataLoader:
        batches = StepBatches(
            self.train_data,
            self.config.batch_size,
            getattr(self.model, "num_secrets", 1),
            self.config.seed,
            self.rank,
            self.guard.rollbacks,
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
        )

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
        """One optimizer step; returns its record, with a ``"problem"`` when it was not taken."""
        config = self.config
        images = images.to(self.device, non_blocking=True)
        # As the reference code: the first images are the secrets, the rest the covers
        # (k consecutive secrets per cover when the model hides k).
        covers = config.batch_size
        secrets = images[: images.shape[0] - covers].reshape(covers, -1, *images.shape[2:])
        cover = images[images.shape[0] - covers :]
        noise_seed = mix_seed(config.seed, self.step, self.rank, self.guard.rollbacks, 1)
        generator = torch.Generator(self.device).manual_seed(noise_seed)
        z = torch.randn(secrets.shape, generator=generator, device=self.device, dtype=cover.dtype)
        lr = config.lr_at(self.step) * self.guard.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        with torch.autocast(self.device.type, dtype=getattr(torch, self._amp or "float32"), enabled=bool(self._amp)):
            stego, lost, recovered = self._step_module(cover, secrets, z)
            out = self._loss_at(self.step)(cover=cover, secret=secrets, stego=stego, recovered=recovered, lost=lost)
        total = out.total.float()
        self.optimizer.zero_grad(set_to_none=True)
        if self._scaler is not None:
            self._scaler.scale(total).backward()
            self._scaler.unscale_(self.optimizer)
        else:
            total.backward()
        clip = config.grad_clip if config.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        health = torch.stack([total.detach(), grad_norm.detach().float()])
        if self.world_size > 1:
            dist.all_reduce(health)
            health /= self.world_size
        loss_value, norm_value = health.tolist()
        record: dict[str, Any] = {
            "kind": "train",
            "step": self.step + 1,
            "lr": lr,
            "loss": loss_value,
            **{name: value.item() for name, value in out.terms.items()},
            "grad_norm": norm_value,
        }
        problem = self.guard.problem(loss_value, norm_value, scaled_gradients=self._scaler is not None)
        if problem is not None:
            record["problem"] = problem
            if self._scaler is not None:
                self._scaler.update()  # unscale_ was called: close the step (and lower the scale on inf)
            return record
        if self._scaler is not None:
            self._scaler.step(self.optimizer)
            self._scaler.update()
        else:
            self.optimizer.step()
        self.guard.accept(loss_value)
        with torch.no_grad():
            record["psnr_stego"] = _psnr(stego, cover)
            record["psnr_recovered"] = _psnr(recovered, secrets)
        self.step += 1
        return record

    def _roll_back(self, record: dict[str, Any], bar: Any) -> None:
        """Log the unhealthy step, restore the snapshot and lower the learning rate (or give up)."""
        back_to = self.guard.snapshot["step"]
        message = (
            f"step {record['step']}: {record['problem']} (loss {record['loss']:.4g}); rolled back to step {back_to}"
        )
        try:
            self.guard.reject(message)
        finally:
            self.log.write(
                {
                    "kind": "event",
                    "event": "rollback",
                    "at_step": record["step"],
                    "problem": record["problem"],
                    "loss": record["loss"],
                    "back_to_step": back_to,
                    "lr_scale": self.guard.lr_scale,
                    "rollbacks": self.guard.rollbacks,
                }
            )
        if bar is not None:
            bar.write(f"{message}, learning rate x{self.guard.lr_scale:g}")
        self.step = self.guard.restore(self.model, self.optimizer)
        self.log.truncate(self.step)  # the steps after the snapshot will be logged again
        if bar is not None:
            bar.n = self.step
            bar.refresh()

    def validate(self) -> dict[str, float] | None:
        """Evaluate on ``val_pairs`` (float and 8-bit stego); ``None`` without pairs or off rank 0."""
        if not self.val_pairs or self.rank != 0:
            return None
        generator = torch.Generator(self.device).manual_seed(self.config.seed)
        result = evaluate(self.model, self.val_pairs, device=self.device, generator=generator)
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

    def fit(self, resume: bool = False) -> TrainResult:
        """Train until ``config.steps`` steps are done.

        Args:
            resume: continue from the newest checkpoint in ``out_dir`` when
                there is one.

        Returns:
            A :class:`TrainResult`.

        Raises:
            invhide.errors.DivergenceError: ``max_rollbacks`` rollbacks in a row.
            invhide.errors.PathExistsError: a fresh run (no checkpoint to
                resume) whose output folder holds a previous run's logs or
                checkpoints.
        """
        start = time.perf_counter()
        self._begin(resume)
        history: list[dict[str, Any]] = []
        validation = None
        with self._progress_bar() as bar:
            while self.step < self.config.steps:
                for images in self._loader():
                    record = self._train_step(images)
                    if "problem" in record:
                        self._roll_back(record, bar)
                        history = [r for r in history if r["step"] <= self.step]
                        break  # a fresh loader: the steps after a rollback draw new seeds
                    self._show(bar, record)
                    if self.step % self.config.log_every == 0 or self.step == self.config.steps:
                        history.append({**record, "time": time.perf_counter() - start})
                        self.log.write(history[-1])
                    validation = self._periodic() or validation
        model_path = self._finish()
        validation = self._final_validation or validation
        return TrainResult(self.step, time.perf_counter() - start, self.rollbacks, history, validation, model_path)

    def _begin(self, resume: bool) -> None:
        latest = self.latest_checkpoint() if resume else None
        if latest is not None:
            self.load_checkpoint(latest)
        elif self.step == 0 and not resume:
            self.log.check_fresh()
        self.log.open(self.step)
        self.guard.take_snapshot(self.step, self.model, self.optimizer)
        self._final_validation: dict[str, float] | None = None

    @contextmanager
    def _progress_bar(self) -> Iterator[Any]:
        if not self.progress:
            yield None
            return
        from tqdm.auto import tqdm

        bar = tqdm(total=self.config.steps, initial=self.step, desc="training", unit="step", dynamic_ncols=True)
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
            self.guard.take_snapshot(step, self.model, self.optimizer)
        validation = None
        if config.val_every and step % config.val_every == 0 and step < config.steps:
            validation = self.validate()
        if at_checkpoint:
            self.save_checkpoint()
        return validation

    def _finish(self) -> Path | None:
        """At the last step: validate, checkpoint and save the model; close the logs."""
        model_path = None
        if self.step == self.config.steps:
            self._final_validation = self.validate()
            if self.save_checkpoint() is not None and self.out_dir is not None:
                model_path = checkpoint.save(self.model, self.out_dir)
        self.log.close()
        return model_path
