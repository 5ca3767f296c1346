import math

import pytest
import torch
from helpers import WAVELETS, images
from hypothesis import given
from hypothesis import strategies as st

from invhide.nn import functional as F


def reference_dwt(x: torch.Tensor) -> torch.Tensor:
    """The reference HiNet code's dwt_init, transcribed from DESIGN.md."""
    x01 = x[:, :, 0::2, :] / 2
    x02 = x[:, :, 1::2, :] / 2
    x1 = x01[:, :, :, 0::2]
    x2 = x02[:, :, :, 0::2]
    x3 = x01[:, :, :, 1::2]
    x4 = x02[:, :, :, 1::2]
    return torch.cat((x1 + x2 + x3 + x4, -x1 - x2 + x3 + x4, -x1 + x2 - x3 + x4, x1 - x2 - x3 + x4), 1)


def reference_iwt(x: torch.Tensor) -> torch.Tensor:
    """The reference HiNet code's iwt_init."""
    b, c4, h, w = x.shape
    c = c4 // 4
    x1, x2, x3, x4 = (x[:, i * c : (i + 1) * c] / 2 for i in range(4))
    out = torch.zeros(b, c, 2 * h, 2 * w, dtype=x.dtype)
    out[:, :, 0::2, 0::2] = x1 - x2 - x3 + x4
    out[:, :, 1::2, 0::2] = x1 - x2 + x3 - x4
    out[:, :, 0::2, 1::2] = x1 + x2 - x3 - x4
    out[:, :, 1::2, 1::2] = x1 + x2 + x3 + x4
    return out


even = st.integers(1, 6).map(lambda n: 2 * n)


class TestHaarLayouts:
    def test_hinet_layout_equals_reference_formulas_exactly(self):
        # Integer inputs make every sum exact, so equality must hold bit for bit
        # whatever the order of additions.
        x = torch.randint(-1000, 1000, (2, 3, 8, 10)).double()
        assert torch.equal(F.haar_dwt(x, "hinet"), reference_dwt(x))
        assert torch.equal(F.haar_idwt(reference_dwt(x), "hinet"), x)
        assert torch.equal(F.haar_idwt(reference_dwt(x), "hinet"), reference_iwt(reference_dwt(x)))

    @given(seed=st.integers(0, 2**32 - 1), h=even, w=even)
    def test_hinet_layout_matches_reference_on_random_floats(self, seed, h, w):
        x = images(seed, 2, 3, h, w, dtype=torch.float64)
        assert (F.haar_dwt(x, "hinet") - reference_dwt(x)).abs().max() < 1e-15
        y = reference_dwt(x)
        assert (F.haar_idwt(y, "hinet") - reference_iwt(y)).abs().max() < 1e-15

    def test_single_block_values(self):
        # a=0, b=2, c=1, d=3 (b is the row below a, c the column right of a)
        x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
        assert F.haar_dwt(x, "hinet").flatten().tolist() == [3.0, 1.0, 2.0, 0.0]
        assert F.haar_dwt(x, "subband").flatten().tolist() == [3.0, -2.0, -1.0, 0.0]

    @pytest.mark.parametrize("layout", F.LAYOUTS)
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_direct_haar_agrees_with_pytorch_wavelets(self, layout, dtype):
        x = images(0, 2, 3, 16, 12, dtype=dtype)
        fast = F.dwt(x, "haar", layout, backend="haar")
        library = F.dwt(x, "haar", layout, backend="pytorch_wavelets")
        tol = 1e-15 if dtype == torch.float64 else 1e-6
        assert (fast - library).abs().max() <= tol
        assert (
            F.idwt(fast, "haar", layout, "haar") - F.idwt(fast, "haar", layout, "pytorch_wavelets")
        ).abs().max() <= tol

    def test_subband_layout_is_pytorch_wavelets_own_output(self):
        from invhide.nn.backends import pytorch_wavelets_lowlevel

        pytorch_wavelets_lowlevel()
        from pytorch_wavelets import DWTForward

        x = images(1, 1, 2, 8, 8)
        low, (highs,) = DWTForward(J=1, wave="haar", mode="periodization")(x)
        expected = torch.cat((low, highs[:, :, 0], highs[:, :, 1], highs[:, :, 2]), 1)
        assert (F.haar_dwt(x) - expected).abs().max() < 1e-6


class TestDWT:
    @given(
        seed=st.integers(0, 2**32 - 1),
        wavelet=st.sampled_from(WAVELETS),
        layout=st.sampled_from(F.LAYOUTS),
        h=st.integers(2, 8).map(lambda n: 2 * n),
        w=st.integers(2, 8).map(lambda n: 2 * n),
        channels=st.integers(1, 3),
    )
    def test_round_trip_and_orthonormality_float64(self, seed, wavelet, layout, h, w, channels):
        h, w = max(h, F.min_wavelet_size(wavelet)), max(w, F.min_wavelet_size(wavelet))
        x = images(seed, 2, channels, h, w, dtype=torch.float64)
        y = F.dwt(x, wavelet, layout)
        assert y.shape == (2, 4 * channels, h // 2, w // 2)
        assert y.dtype == torch.float64
        error = (F.idwt(y, wavelet, layout) - x).abs().max().item()
        assert error < 1e-10, f"{wavelet} round trip error {error:.2e}"
        # Orthonormal: energy is preserved and the LL band of a constant image is 2x it.
        assert torch.allclose(y.square().sum(), x.square().sum(), rtol=1e-10)

    @pytest.mark.parametrize("wavelet", WAVELETS)
    def test_round_trip_float32(self, wavelet):
        x = images(3, 2, 3, 16, 16)
        error = (F.idwt(F.dwt(x, wavelet), wavelet) - x).abs().max().item()
        assert error < 2e-6, f"{wavelet} float32 round trip error {error:.2e}"

    @pytest.mark.parametrize("wavelet", WAVELETS)
    def test_constant_image_goes_to_ll_only(self, wavelet):
        x = torch.full((1, 1, 8, 8), 0.25, dtype=torch.float64)
        y = F.dwt(x, wavelet)
        assert torch.allclose(y[:, 0], torch.full_like(y[:, 0], 0.5), atol=1e-10)
        assert y[:, 1:].abs().max() < 1e-10

    @pytest.mark.parametrize("wavelet", WAVELETS)
    def test_gradient_is_the_inverse_transform(self, wavelet):
        # For an orthonormal transform the adjoint is the inverse: d<dwt(x), v>/dx = idwt(v).
        x = images(4, 1, 2, 8, 8, dtype=torch.float64).requires_grad_()
        v = images(5, 1, 8, 4, 4, dtype=torch.float64)
        (F.dwt(x, wavelet) * v).sum().backward()
        assert (x.grad - F.idwt(v, wavelet)).abs().max() < 1e-10

    def test_does_not_modify_input(self):
        x = images(6, 1, 3, 8, 8)
        y = F.dwt(x, "db2")
        x0, y0 = x.clone(), y.clone()
        F.idwt(y, "db2")
        F.haar_idwt(F.haar_dwt(x))
        assert torch.equal(x, x0) and torch.equal(y, y0)

    @pytest.mark.parametrize(
        ("shape", "wavelet", "message"),
        [
            ((1, 3, 7, 8), "haar", "even height and width of at least 2, got 7x8"),
            ((1, 3, 8, 9), "db2", "got 8x9"),
            ((1, 3, 2, 2), "db2", "at least 4, got 2x2"),
            ((1, 3, 6, 6), "sym4", "at least 8, got 6x6"),
            ((3, 8, 8), "haar", r"shape \(B, C, H, W\)"),
        ],
    )
    def test_bad_sizes(self, shape, wavelet, message):
        with pytest.raises(ValueError, match=message):
            F.dwt(torch.zeros(shape), wavelet)

    def test_bad_arguments(self):
        x = torch.zeros(1, 3, 8, 8)
        with pytest.raises(ValueError, match="unknown wavelet 'nope'"):
            F.dwt(x, "nope")
        with pytest.raises(ValueError, match="not orthogonal"):
            F.dwt(x, "bior2.2")
        with pytest.raises(ValueError, match="layout must be one of"):
            F.dwt(x, "haar", "rows")
        with pytest.raises(ValueError, match="backend 'haar' computes only the Haar"):
            F.dwt(x, "db2", backend="haar")
        with pytest.raises(ValueError, match="4\\*C channels"):
            F.idwt(torch.zeros(1, 3, 4, 4))
        with pytest.raises(TypeError, match="floating-point"):
            F.dwt(torch.zeros(1, 3, 8, 8, dtype=torch.int64))
        with pytest.raises(TypeError, match="torch.Tensor"):
            F.dwt([[0.0]])


class TestSoftClamp:
    @pytest.mark.parametrize("activation", F.CLAMP_ACTIVATIONS)
    @given(clamp=st.floats(0.1, 5.0), seed=st.integers(0, 1000))
    def test_bounds_zero_and_monotone(self, activation, clamp, seed):
        s = torch.linspace(-50, 50, 1001, dtype=torch.float64) * (1 + seed / 1000)
        a = F.soft_clamp(s, clamp, activation)
        assert a.abs().max() <= clamp
        assert F.soft_clamp(torch.zeros(1, dtype=torch.float64), clamp, activation).item() == 0.0
        assert (a.diff() >= 0).all()

    def test_formulas(self):
        s = torch.tensor([0.3, -1.7], dtype=torch.float64)
        assert torch.allclose(F.soft_clamp(s, 2.0, "sigmoid"), 2.0 * 2 * (torch.sigmoid(s) - 0.5))
        assert torch.allclose(F.soft_clamp(s, 2.0, "tanh"), 2.0 * torch.tanh(s / 2.0))
        assert torch.allclose(F.soft_clamp(s, 2.0, "atan"), 2.0 * 2 / math.pi * torch.atan(s / 2.0))
        with pytest.raises(ValueError, match="activation must be one of"):
            F.soft_clamp(s, 2.0, "relu")


class TestCoupling:
    def test_equations_by_hand(self):
        x1 = torch.tensor([[[[1.0]]]], dtype=torch.float64)
        x2 = torch.tensor([[[[2.0]]]], dtype=torch.float64)

        def phi(t):
            return 3 * t

        def rho(t):
            return t - 5

        def eta(t):
            return t * t

        y1, y2, log_det = F.coupling_forward(x1, x2, phi, rho, eta, clamp=2.0)
        scale = 2.0 * 2 * (torch.sigmoid(torch.tensor(7.0 - 5, dtype=torch.float64)) - 0.5)
        assert y1.item() == 7.0
        assert y2.item() == pytest.approx(2.0 * math.exp(scale.item()) + 49.0)
        assert log_det.item() == pytest.approx(scale.item())
        z1, z2, inverse_log_det = F.coupling_inverse(y1, y2, phi, rho, eta, clamp=2.0)
        assert z1.item() == pytest.approx(1.0) and z2.item() == pytest.approx(2.0)
        assert inverse_log_det.item() == pytest.approx(-scale.item())
