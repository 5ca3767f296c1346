"""Shared test helpers: weight randomisation and the invertibility assertion."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

WAVELETS = ("haar", "db2", "sym2", "coif1")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared(folder: str) -> Path:
    """``../shared/data/<folder>`` beside the checkout, or skip the test when it is absent."""
    path = SHARED_DATA / folder
    if not path.is_dir():
        pytest.skip(f"shared image set {path} is absent (it ships beside the repository, not with the package)")
    return path


def randomize_(module: nn.Module, seed: int, gain: float = 0.1) -> nn.Module:
    """Move every parameter away from the identity initialisation.

    Each parameter is drawn from ``N(0, (gain / sqrt(fan_in))^2)`` with a seeded
    generator, the zero-initialised output layers included, so every coupling
    really transforms its input. With ``gain=0.1`` a 16-block HiNet changes its
    cover by about 0.8 at most: far from the identity, still well conditioned.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            fan_in = param[0].numel() if param.dim() > 1 else 1
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float64)
            param.copy_(noise * gain / math.sqrt(fan_in))
    return module


def images(seed: int, *shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniform ``[0, 1)`` tensor from a seeded generator."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def max_error(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


def assert_invertible(
    module: nn.Module, inputs: Sequence[Tensor], atol: float, rtol_log_det: float = 1e-6
) -> tuple[float, float]:
    """Check a FrEIA module: shapes, finiteness, exact round trip, log-dets that cancel.

    Also checks that neither direction modifies its inputs in place.

    Returns:
        ``(max abs round-trip error, max abs log-det sum)``.
    """
    inputs = list(inputs)
    before = [x.clone() for x in inputs]
    with torch.no_grad():
        outputs, log_det = module(inputs, jac=True)
        outputs = list(outputs)
        after_forward = [y.clone() for y in outputs]
        back, log_det_back = module(outputs, rev=True, jac=True)
    assert all(torch.equal(x, x0) for x, x0 in zip(inputs, before)), "forward modified its input in place"
    assert all(torch.equal(y, y0) for y, y0 in zip(outputs, after_forward)), "reverse modified its input in place"
    for y in outputs:
        assert torch.isfinite(y).all(), "non-finite output"
    assert log_det.shape == (inputs[0].shape[0],), f"log-det shape {tuple(log_det.shape)}"
    assert log_det.dtype == inputs[0].dtype and log_det.device == inputs[0].device
    assert torch.isfinite(log_det).all()
    assert [x.shape for x in back] == [x.shape for x in inputs]
    error = max_error(back, inputs)
    assert error <= atol, f"round-trip max abs error {error:.3e} > {atol:.1e}"
    log_det_sum = (log_det + log_det_back).abs().max().item()
    bound = rtol_log_det * (1 + log_det.abs().max().item())
    assert log_det_sum <= bound, f"log-det forward + reverse = {log_det_sum:.3e} (bound {bound:.1e})"
    return error, log_det_sum


def brute_force_log_det(module: nn.Module, inputs: Sequence[Tensor]) -> Tensor:
    """Per-sample log |det J| of a FrEIA module from the full autograd Jacobian (tiny inputs only)."""
    sizes = [x[0].numel() for x in inputs]
    shapes = [x.shape[1:] for x in inputs]
    result = []
    for b in range(inputs[0].shape[0]):
        flat = torch.cat([x[b].reshape(-1) for x in inputs])

        def f(v: Tensor, shapes=shapes, sizes=sizes) -> Tensor:
            parts = [p.reshape(1, *s) for p, s in zip(v.split(sizes), shapes)]
            outputs, _ = module(parts, jac=False)
            return torch.cat([y.reshape(-1) for y in outputs])

        jacobian = torch.autograd.functional.jacobian(f, flat)
        result.append(torch.linalg.slogdet(jacobian).logabsdet)
    return torch.stack(result)
