"""Training precision: which autocast dtype a device runs natively, and the ``amp`` setting resolved for it.

Autocast in bfloat16 speeds a CPU up only where the CPU computes bfloat16
itself (AVX-512-BF16 or AMX-BF16) and torch's oneDNN uses it; elsewhere it is
emulated and slower than float32. :func:`native_bfloat16` says which, and
why; :func:`resolve_amp` turns :attr:`TrainConfig.amp
<invhide.training.config.TrainConfig.amp>` (``None`` or ``"float32"``,
``"bfloat16"``, ``"float16"`` or ``"auto"``) into the dtype a :class:`~invhide.training.trainer.Trainer`
autocasts to on a device, or ``None`` for float32.
"""

from __future__ import annotations

import functools

import torch

from invhide.checks import one_of
from invhide.errors import ConfigError

__all__ = ["AMP_CHOICES", "cpu_flags", "native_bfloat16", "resolve_amp"]

AMP_CHOICES: tuple[str | None, ...] = (None, "float32", "bfloat16", "float16", "auto")
"""The values of :attr:`TrainConfig.amp <invhide.training.config.TrainConfig.amp>`."""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none to read, as on macOS)."""
    try:
        with open("/proc/cpuinfo") as file:
            line = next((line for line in file if line.startswith(("flags", "Features"))), "")
    except OSError:
        return frozenset()
    return frozenset(line.split(":", 1)[-1].split())


def native_bfloat16(device: str | torch.device = "cpu") -> tuple[bool, str]:
    """Whether ``device`` computes bfloat16 natively under autocast, and why (not).

    Example:
        >>> supported, why = native_bfloat16("cpu")
        >>> isinstance(supported, bool) and bool(why)
        True
    """
    device = torch.device(device)
    if device.type == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"CUDA device {torch.cuda.get_device_name(device)}"
        return False, "this CUDA device has no native bfloat16"
    if device.type != "cpu":
        return False, f"unknown for device type {device.type!r}"
    native = sorted(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    if not native:
        return False, "the CPU has neither avx512_bf16 nor amx_bf16 (bfloat16 would be emulated, slower than float32)"
    if not torch.backends.mkldnn.is_available():
        return False, "this torch build has no oneDNN"
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if supported is not None and not supported():
        return False, "torch's oneDNN reports no bfloat16 support"
    return True, f"CPU flags {' '.join(native)}, torch oneDNN bfloat16"


def resolve_amp(amp: str | None, device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype of ``amp`` on ``device``; ``None`` for float32 (``amp`` ``None`` or ``"float32"``).

    ``"auto"`` is bfloat16 where :func:`native_bfloat16` says the device runs
    it natively, float32 elsewhere.

    Raises:
        invhide.errors.ConfigError: ``"float16"`` on a CPU (autocast in float16
            is emulated there and slower than float32).
        invhide.errors.InputError: a value not in :data:`AMP_CHOICES`.

    Example:
        >>> resolve_amp(None, "cpu") is None, resolve_amp("bfloat16", "cpu")
        (True, torch.bfloat16)
    """
    device = torch.device(device)
    if one_of("amp", amp, AMP_CHOICES) in (None, "float32"):
        return None
    if amp == "auto":
        return torch.bfloat16 if native_bfloat16(device)[0] else None
    if amp == "float16" and device.type == "cpu":
        raise ConfigError('amp="float16" needs a GPU; on a CPU use amp="bfloat16" or "auto"')
    return torch.float16 if amp == "float16" else torch.bfloat16
