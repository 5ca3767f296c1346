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
  raise :class:`DivergenceError`.
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

import copy
import csv
import dataclasses
import hashlib
import json
import math
import os
import shutil
import statistics
import time
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from invhide import checkpoint as ckpt
from invhide._state import state_mismatches
from invhide.io import atomic_write
from invhide.losses import HidingLoss
from invhide.metrics import quantize_8bit

__all__ = [
    "DivergenceError",
    "HidingStep",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "round_ste",
]

SCHEDULES = ("constant", "step", "cosine")


class DivergenceError(RuntimeError):
    """The loss kept exploding after ``max_rollbacks`` rollbacks in a row."""


@dataclass
class TrainConfig:
    """Every setting of a training run.

    The optimiser defaults are the paper's and the reference code's (Adam, lr
    10^-4.5, betas (0.5, 0.999), eps 1e-6, weight decay 1e-5, learning rate
    halved every 50K steps); :func:`invhide.recipes.recipe` sets the rest of a
    recipe (crops, steps, 8-bit rounding).

    Attributes:
        steps: optimizer steps in total.
        batch_size: cover/secret pairs per step and process (2x images).
        crop: side of the square training crops (recorded with the run;
            the dataset makes the crops).
        lr: base learning rate.
        betas: Adam betas (paper: 0.5, 0.999).
        eps: Adam epsilon (paper: 1e-6).
        weight_decay: Adam weight decay (paper: 1e-5).
        schedule: ``"step"`` (multiply by ``lr_gamma`` every ``lr_step``
            steps), ``"cosine"`` (to zero at ``steps``) or ``"constant"``.
        lr_step: steps between decays of the ``"step"`` schedule.
        lr_gamma: decay factor of the ``"step"`` schedule (paper: 0.5).
        warmup_steps: linear warm-up from 0 over this many steps.
        grad_clip: clip the global gradient norm to this (``None``: no clipping).
        quantize: reveal during training from the stego rounded to 8 bits,
            with a straight-through gradient (:func:`round_ste`).
        amp: ``"bfloat16"`` or ``"float16"`` autocast on CUDA; ignored on CPU.
            Reduced precision breaks the exact inverse (a bfloat16 round trip
            of a 16-block HiNet is off by up to 0.87, ``invhide bench``), so
            it cannot be combined with ``memory_saving``.
        spike_factor: a loss above this times the median of the last
            ``spike_window`` losses counts as an explosion.
        spike_window: losses kept for the median.
        max_rollbacks: rollbacks in a row before :class:`DivergenceError`.
        rollback_lr_factor: learning-rate factor applied at each rollback.
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
            on CPUs and recent GPUs; the saved weights are the same).
        memory_saving: train without storing activations (the model's
            ``memory_saving`` switch, see :mod:`invhide.graph`).
        tensorboard: also log to TensorBoard when it is installed.
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
    amp: str | None = None
    spike_factor: float = 10.0
    spike_window: int = 50
    max_rollbacks: int = 5
    rollback_lr_factor: float = 0.5
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

    def __post_init__(self) -> None:
        positive = (
            "steps",
            "batch_size",
            "crop",
            "lr_step",
            "spike_window",
            "snapshot_every",
            "log_every",
            "keep_checkpoints",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("warmup_steps", "val_every", "checkpoint_every", "max_rollbacks", "num_workers", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if (
            not isinstance(self.keep_checkpoints, int)
            or isinstance(self.keep_checkpoints, bool)
            or self.keep_checkpoints < 1
        ):
            raise ValueError(f"keep_checkpoints must be a positive integer, got {self.keep_checkpoints!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 < self.lr_gamma <= 1 or not 0 < self.rollback_lr_factor < 1:
            raise ValueError(
                f"lr_gamma must be in (0, 1] and rollback_lr_factor in (0, 1), "
                f"got {self.lr_gamma!r} and {self.rollback_lr_factor!r}"
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip!r}")
        if self.spike_factor <= 1:
            raise ValueError(f"spike_factor must be > 1, got {self.spike_factor!r}")
        if self.amp not in (None, "bfloat16", "float16"):
            raise ValueError(f"amp must be None, 'bfloat16' or 'float16', got {self.amp!r}")
        if self.amp is not None and self.memory_saving:
            raise ValueError(
                "amp and memory_saving cannot be combined: memory saving rebuilds activations through the exact "
                "inverse, which reduced precision breaks"
            )
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        if not (isinstance(self.eps, (int, float)) and self.eps > 0):
            raise ValueError(f"eps must be a number > 0, got {self.eps!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return dataclasses.asdict(self)


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


def round_ste(x: Tensor) -> Tensor:
    """Round to 8 bits in the forward pass, identity in the backward pass (straight-through).

    Example:
        >>> x = torch.tensor([0.1, 0.5004], requires_grad=True)
        >>> y = round_ste(x)
        >>> (y * 255).round().tolist(), torch.autograd.grad(y.sum(), x)[0].tolist()
        ([26.0, 128.0], [1.0, 1.0])
    """
    return x + (quantize_8bit(x.detach()) - x.detach())


class HidingStep(nn.Module):
    """One training forward pass as a module: hide, optionally round, reveal.

    Wrapping the whole pass in one ``forward`` lets ``DistributedDataParallel``
    see every use of the parameters.

    Args:
        model: an :class:`~invhide.InvertibleHider`.
        quantize: reveal from :func:`round_ste` of the stego.
    """

    def __init__(self, model: nn.Module, quantize: bool = False) -> None:
        super().__init__()
        self.model = model
        self.quantize = quantize

    def forward(self, cover: Tensor, secret: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns ``(stego, lost, recovered)``."""
        stego, lost = self.model.hide(cover, *secret.chunk(self.model.num_secrets, dim=1))
        received = round_ste(stego) if self.quantize else stego
        recovered = self.model.reveal(received, z=z)
        return stego, lost, recovered


def _seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (stable across processes and platforms)."""
    digest = hashlib.blake2b(",".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class _StepBatches(Dataset[Tensor]):
    """Item ``s`` is the image batch of step ``s``, drawn from ``(seed, s, rank, rollbacks)``.

    A batch is ``covers * secrets`` secret images followed by ``covers`` cover
    images, drawn with replacement, except that a cover is never the same
    image as the first of its secrets (when the dataset has two images or more).
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
        count = len(self.images)  # type: ignore[arg-type]
        secret = torch.randint(count, (self.covers * self.secrets,), generator=generator)
        if count < 2:
            return secret.tolist() + [0] * self.covers
        offset = torch.randint(1, count, (self.covers,), generator=generator)
        cover = (secret[:: self.secrets] + offset) % count
        return secret.tolist() + cover.tolist()

    def __getitem__(self, step: int) -> Tensor:
        generator = torch.Generator().manual_seed(_seed(*self.salt, step))
        indices = self.indices(step, generator)
        item = getattr(self.images, "item", None)
        if item is None:
            return torch.stack([self.images[i] for i in indices])
        seeds = torch.randint(2**62, (len(indices),), generator=generator).tolist()
        return torch.stack([item(i, torch.Generator().manual_seed(s)) for i, s in zip(indices, seeds, strict=True)])


def _psnr(x: Tensor, y: Tensor) -> float:
    """Mean per-image PSNR in dB for images in [0, 1], any number of channels (float stego, for logs)."""
    mse = (x.detach().float() - y.detach().float()).square().flatten(1).mean(dim=1)
    return (-10 * torch.log10(mse)).mean().item()


def _world(device: str | torch.device | None) -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``; under torchrun, also binds the GPU and starts the process group.

    The device defaults to the local rank's GPU when CUDA is available; the
    backend follows the device (NCCL for CUDA, gloo for the CPU).
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), device
    return 0, 1, device


class Trainer:
    """Train a hider on single images paired as cover/secret.

    Args:
        model: an :class:`~invhide.InvertibleHider` (or anything with its
            ``hide``/``reveal``/``config`` interface).
        loss: a :class:`~invhide.losses.HidingLoss`; gets the keywords
            ``cover``, ``secret``, ``stego``, ``recovered`` and ``lost``.
        train_data: a dataset of ``(3, crop, crop)`` images; an
            :class:`~invhide.data.ImageDataset` makes its crops and flips
            reproducible per step through its ``item(index, generator)``.
        config: a :class:`TrainConfig`.
        val_pairs: ``(cover, secret)`` pairs for periodic validation with
            :func:`invhide.metrics.evaluate`.
        out_dir: folder for checkpoints, logs and the final model (created);
            ``None`` keeps everything in memory.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; under torchrun on
            CUDA, the local rank's GPU. Default: CUDA when available.
        progress: show a tqdm progress bar (rank 0 only).

    Example:
        >>> import tempfile
        >>> from invhide.data import ImageDataset, sample_image_paths  # doctest: +SKIP
        >>> model = invhide.InvertibleHider(num_blocks=2, subnet=invhide.subnets.conv(hidden=16))
        >>> images = torch.utils.data.TensorDataset(torch.rand(8, 3, 32, 32))
        >>> data = [x for (x,) in images]
        >>> trainer = Trainer(model, invhide.losses.HidingLoss.paper(reduction="mean"), data,
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
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if len(train_data) == 0:  # type: ignore[arg-type]
            raise ValueError("train_data holds no images")
        self.rank, self.world_size, self.device = _world(device)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.out_dir is not None:
            model.config()  # a model that cannot describe itself fails now, not at the first checkpoint
        num_secrets, channels = getattr(model, "num_secrets", 1), getattr(model, "channels", 3)
        if val_pairs and (num_secrets != 1 or channels != 3):
            raise ValueError(
                f"validation (invhide.metrics.evaluate) measures one RGB secret per cover; this model hides "
                f"{num_secrets} secret(s) of {channels} channel(s): pass val_pairs=None and evaluate it yourself"
            )
        self.model = model.to(self.device)
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if config.memory_saving:
            if not hasattr(model, "memory_saving"):
                raise TypeError(f"memory_saving needs an InvertibleGraph model, got {type(model).__name__}")
            model.memory_saving = True
        self.loss = loss.to(self.device)
        self.train_data = train_data
        self.config = config
        self.val_pairs = val_pairs
        self.progress = progress and self.rank == 0
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=config.lr,
            betas=config.betas,
            eps=config.eps,
            weight_decay=config.weight_decay,
        )
        self.step = 0
        self.rollbacks = 0
        self.lr_scale = 1.0
        self.recent: deque[float] = deque(maxlen=config.spike_window)
        self._amp = config.amp if self.device.type == "cuda" else None
        self._scaler = torch.amp.GradScaler("cuda") if self._amp == "float16" else None
        hiding = HidingStep(self.model, config.quantize)
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._step_module: nn.Module = nn.parallel.DistributedDataParallel(hiding, device_ids=ids)
        else:
            self._step_module = hiding
        self._writers: list[Callable[[dict[str, Any]], None]] = []
        self._tensorboard: Any = None

    # ------------------------------------------------------------------
    # State
    # ------------------------------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": copy.deepcopy(self.model.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def _restore(self, snapshot: Mapping[str, Any]) -> None:
        self.step = snapshot["step"]
        self.model.load_state_dict(snapshot["model"])
        self.optimizer.load_state_dict(snapshot["optimizer"])

    def _loop_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "rollbacks": self.rollbacks,
            "lr_scale": self.lr_scale,
            "recent": list(self.recent),
            "world_size": self.world_size,
            "config": self.config.to_dict(),
            "grad_scaler": self._scaler.state_dict() if self._scaler is not None else None,
        }

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step_XXXXXXXX/`` atomically (rank 0) and prune old ones.

        Returns:
            The checkpoint folder, or ``None`` without an output folder or off rank 0.
        """
        if self.out_dir is None or self.rank != 0:
            return None
        root = self.out_dir / "checkpoints"
        root.mkdir(parents=True, exist_ok=True)
        final = root / f"step_{self.step:08d}"
        temporary = root / f".tmp-step_{self.step:08d}-{os.getpid()}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        try:
            ckpt.save(self.model, temporary)
            state = self.optimizer.state_dict()
            tensors = {
                f"state.{index}.{name}": value
                for index, entries in state["state"].items()
                for name, value in entries.items()
            }
            ckpt.save_tensors(tensors, temporary / "optimizer.safetensors")
            loop = {**self._loop_state(), "param_groups": state["param_groups"]}
            with atomic_write(temporary / "trainer.json", "w") as file:
                json.dump(loop, file, indent=2)
            if final.exists():
                shutil.rmtree(final)
            os.replace(temporary, final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        for old in sorted(root.glob("step_*"))[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder in ``out_dir``, if any."""
        if self.out_dir is None:
            return None
        found = sorted(p for p in (self.out_dir / "checkpoints").glob("step_*") if (p / "trainer.json").is_file())
        return found[-1] if found else None

    def load_checkpoint(self, folder: str | os.PathLike[str]) -> None:
        """Restore model, optimizer and loop state from a checkpoint folder.

        Raises:
            invhide.checkpoint.CheckpointError: the checkpoint does not fit this model.
        """
        folder = Path(folder)
        tensors, _ = ckpt.load_tensors(folder / ckpt.MODEL_FILE, self.device)
        problems = state_mismatches(self.model.state_dict(), tensors)
        if problems:
            raise ckpt.CheckpointError(f"{folder}: the checkpoint does not fit this model: " + "; ".join(problems))
        self.model.load_state_dict(tensors)
        loop = json.loads((folder / "trainer.json").read_text())
        optimizer_tensors, _ = ckpt.load_tensors(folder / "optimizer.safetensors", self.device)
        state: dict[int, dict[str, Tensor]] = {}
        for key, value in optimizer_tensors.items():
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value.cpu() if name == "step" else value
        self.optimizer.load_state_dict({"state": state, "param_groups": loop["param_groups"]})
        self.step = int(loop["step"])
        self.rollbacks = int(loop["rollbacks"])
        self.lr_scale = float(loop["lr_scale"])
        self.recent = deque(loop["recent"], maxlen=self.config.spike_window)
        if self._scaler is not None and loop.get("grad_scaler"):
            self._scaler.load_state_dict(loop["grad_scaler"])
        saved = {k: v for k, v in loop["config"].items() if k not in ("val_every", "checkpoint_every", "log_every")}
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
    # Logging
    # ------------------------------------------------------------------

    def _open_logs(self) -> None:
        if self.out_dir is None or self.rank != 0:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        jsonl = self.out_dir / "log.jsonl"
        self._truncate_logs()

        def write_jsonl(record: dict[str, Any]) -> None:
            with jsonl.open("a") as file:
                file.write(json.dumps(record) + "\n")

        def write_csv(record: dict[str, Any]) -> None:
            kind = record.get("kind")
            if kind not in ("train", "val"):
                return
            path = self.out_dir / f"{kind}.csv"  # type: ignore[operator]
            fields = [k for k in record if k != "kind"]
            new = not path.exists()
            with path.open("a", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=fields, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow(record)

        self._writers = [write_jsonl, write_csv]
        if self.config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                pass  # optional: logs are in log.jsonl and the CSV files
            else:
                self._tensorboard = SummaryWriter(str(self.out_dir / "tensorboard"))

    def _truncate_logs(self) -> None:
        """Drop log records past the current step: a resumed run rewrites what the interrupted one logged after
        its last checkpoint."""
        assert self.out_dir is not None
        jsonl = self.out_dir / "log.jsonl"
        if not jsonl.is_file():
            return
        kept = []
        for line in jsonl.read_text().splitlines():
            record = json.loads(line)
            if record.get("kind") == "event" or record.get("step", 0) <= self.step:
                kept.append(line)
        with atomic_write(jsonl, "w") as file:
            file.write("".join(line + "\n" for line in kept))
        for kind in ("train", "val"):
            path = self.out_dir / f"{kind}.csv"
            if path.is_file():
                with path.open(newline="") as file:
                    rows = list(csv.DictReader(file))
                fields = list(rows[0]) if rows else []
                with atomic_write(path, "w") as file:
                    writer = csv.DictWriter(file, fieldnames=fields)
                    if fields:
                        writer.writeheader()
                    writer.writerows(row for row in rows if int(float(row["step"])) <= self.step)

    def _check_fresh(self) -> None:
        """Refuse to start a new run over a previous one's logs and checkpoints."""
        if self.out_dir is None or self.rank != 0:
            return
        previous = [p.name for p in (self.out_dir / "log.jsonl", self.out_dir / "checkpoints") if p.exists()]
        if previous:
            raise FileExistsError(
                f"{self.out_dir} holds a previous run ({', '.join(previous)}); resume it (resume=True, --resume) "
                f"or choose another output folder"
            )

    def _log(self, record: dict[str, Any]) -> None:
        for write in self._writers:
            write(record)
        if self._tensorboard is not None and record.get("kind") in ("train", "val"):
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "kind"):
                    self._tensorboard.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------

    def _set_lr(self) -> float:
        lr = self.config.lr_at(self.step) * self.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _loader(self) -> DataLoader:
        batches = _StepBatches(
            self.train_data,
            self.config.batch_size,
            getattr(self.model, "num_secrets", 1),
            self.config.seed,
            self.rank,
            self.rollbacks,
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

    def _train_step(self, images: Tensor) -> tuple[dict[str, Any], bool]:
        """One optimizer step. Returns its record and whether it was healthy."""
        config = self.config
        images = images.to(self.device, non_blocking=True)
        # As the reference code: the first images are the secrets, the rest the covers
        # (k consecutive secrets per cover when the model hides k).
        covers = config.batch_size
        secrets = images[: images.shape[0] - covers].reshape(covers, -1, *images.shape[2:])
        cover = images[images.shape[0] - covers :]
        noise_seed = _seed(config.seed, self.step, self.rank, self.rollbacks, 1)
        generator = torch.Generator(self.device).manual_seed(noise_seed)
        z = torch.randn(secrets.shape, generator=generator, device=self.device, dtype=cover.dtype)
        lr = self._set_lr()
        self.model.train()
        with torch.autocast(self.device.type, dtype=getattr(torch, self._amp or "float32"), enabled=bool(self._amp)):
            stego, lost, recovered = self._step_module(cover, secrets, z)
            out = self.loss(cover=cover, secret=secrets, stego=stego, recovered=recovered, lost=lost)
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
        finite = math.isfinite(loss_value) and (self._scaler is not None or math.isfinite(norm_value))
        spike = (
            finite
            and len(self.recent) >= max(5, config.spike_window // 5)
            and loss_value > config.spike_factor * statistics.median(self.recent)
        )
        record: dict[str, Any] = {
            "kind": "train",
            "step": self.step + 1,
            "lr": lr,
            "loss": loss_value,
            **{name: value.item() for name, value in out.terms.items()},
            "grad_norm": norm_value,
        }
        if not finite or spike:
            record["problem"] = "non-finite loss or gradient" if not finite else "loss spike"
            if self._scaler is not None:
                self._scaler.update()  # unscale_ was called: close the step (and lower the scale on inf)
            return record, False
        if self._scaler is not None:
            self._scaler.step(self.optimizer)
            self._scaler.update()
        else:
            self.optimizer.step()
        self.recent.append(loss_value)
        with torch.no_grad():
            record["psnr_stego"] = _psnr(stego, cover)
            record["psnr_recovered"] = _psnr(recovered, secrets)
        self.step += 1
        return record, True

    def validate(self) -> dict[str, float] | None:
        """Evaluate on ``val_pairs`` (float and 8-bit stego); ``None`` without pairs or off rank 0."""
        if not self.val_pairs or self.rank != 0:
            return None
        from invhide.metrics import evaluate

        generator = torch.Generator(self.device).manual_seed(self.config.seed)
        result = evaluate(self.model, self.val_pairs, device=self.device, generator=generator)
        record: dict[str, Any] = {"kind": "val", "step": self.step}
        for stego in result.stego_settings:
            tag = "float" if stego == "float" else "8bit"
            for row, name in (("cover/stego", "stego"), ("secret/recovery", "recovered")):
                record[f"psnr_{name}_{tag}"] = result.mean(row, "psnr", "rgb", stego)
                record[f"ssim_{name}_{tag}"] = result.mean(row, "ssim", "rgb", stego)
        self._log(record)
        return record

    def fit(self, resume: bool = False) -> TrainResult:
        """Train until ``config.steps`` steps are done.

        Args:
            resume: continue from the newest checkpoint in ``out_dir`` when
                there is one.

        Returns:
            A :class:`TrainResult`.

        Raises:
            DivergenceError: ``max_rollbacks`` rollbacks in a row.
            FileExistsError: a fresh run (no checkpoint to resume) whose
                output folder holds a previous run's logs or checkpoints.
        """
        start_time = time.perf_counter()
        latest = self.latest_checkpoint() if resume else None
        if latest is not None:
            self.load_checkpoint(latest)
        elif self.step == 0 and not resume:
            self._check_fresh()
        self._open_logs()
        config = self.config
        history: list[dict[str, Any]] = []
        validation = None
        snapshot = self._snapshot()
        in_a_row = 0
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=config.steps, initial=self.step, desc="training", unit="step", dynamic_ncols=True)
        try:
            while self.step < config.steps:
                restarted = False
                for images in self._loader():
                    record, healthy = self._train_step(images)
                    if not healthy:
                        in_a_row += 1
                        self.rollbacks += 1
                        self.lr_scale *= config.rollback_lr_factor
                        event = {
                            "kind": "event",
                            "event": "rollback",
                            "at_step": record["step"],
                            "problem": record["problem"],
                            "loss": record["loss"],
                            "back_to_step": snapshot["step"],
                            "lr_scale": self.lr_scale,
                            "rollbacks": self.rollbacks,
                        }
                        self._log(event)
                        message = (
                            f"step {record['step']}: {record['problem']} (loss {record['loss']:.4g}); rolled back "
                            f"to step {snapshot['step']}, learning rate x{self.lr_scale:g}"
                        )
                        if bar is not None:
                            bar.write(message)
                        if in_a_row > config.max_rollbacks:
                            raise DivergenceError(f"{message}; {in_a_row} rollbacks in a row, giving up")
                        self._restore(snapshot)
                        history = [r for r in history if r["step"] <= self.step]
                        if self.out_dir is not None and self.rank == 0:
                            self._truncate_logs()  # the steps after the snapshot will be logged again
                        if bar is not None:
                            bar.n = self.step
                            bar.refresh()
                        restarted = True  # new seeds for the steps after the rollback
                        break
                    in_a_row = 0
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(
                            loss=f"{record['loss']:.4g}",
                            stego=f"{record['psnr_stego']:.2f}dB",
                            secret=f"{record['psnr_recovered']:.2f}dB",
                        )
                    if self.step % config.log_every == 0 or self.step == config.steps:
                        record["time"] = time.perf_counter() - start_time
                        history.append(record)
                        self._log(record)
                    at_checkpoint = bool(config.checkpoint_every) and self.step % config.checkpoint_every == 0
                    if self.step % config.snapshot_every == 0 or at_checkpoint:
                        snapshot = self._snapshot()
                    if config.val_every and self.step % config.val_every == 0 and self.step < config.steps:
                        validation = self.validate() or validation
                    if at_checkpoint:
                        self.save_checkpoint()
                if not restarted:
                    break
        finally:
            if bar is not None:
                bar.close()
        model_path = None
        if self.step == config.steps:
            validation = self.validate() or validation
            if self.save_checkpoint() is not None and self.out_dir is not None:
                model_path = ckpt.save(self.model, self.out_dir)
        if self._tensorboard is not None:
            self._tensorboard.close()
        return TrainResult(
            steps=self.step,
            seconds=time.perf_counter() - start_time,
            rollbacks=self.rollbacks,
            history=history,
            validation=validation,
            model_path=model_path,
        )
