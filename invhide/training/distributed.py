"""Where a training process runs: its device, and its rank under ``torchrun``."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from invhide import checks

__all__ = ["setup"]


def setup(device: str | torch.device | None) -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``; under torchrun, also binds the GPU and starts the process group.

    The device defaults to the local rank's GPU when CUDA is available; the
    backend follows the device (NCCL for CUDA, gloo for the CPU).

    Raises:
        invhide.errors.InputError: a device this PyTorch build or machine lacks.

    Example:
        >>> setup("cpu")  # a process started without torchrun
        (0, 1, device(type='cpu'))
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = checks.device("device", device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), device
    return 0, 1, device
