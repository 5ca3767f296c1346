"""Test-only helpers: seeded images, the shared photographs, the wavelets to sweep.

The invertibility assertions and weight randomisation are public, in
:mod:`invhide.testing`; the tests import them from there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

WAVELETS = ("haar", "db2", "sym2", "coif1")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared(folder: str) -> Path:
    """``../shared/data/<folder>`` beside the checkout, or skip the test when it is absent."""
    path = SHARED_DATA / folder
    if not path.is_dir():
        pytest.skip(f"shared image set {path} is absent (it ships beside the repository, not with the package)")
    return path


def images(seed: int, *shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniform ``[0, 1)`` tensor from a seeded generator."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)
