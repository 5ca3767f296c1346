import pytest
import torch
from FrEIA.framework import GraphINN, InputNode, Node, OutputNode
from helpers import WAVELETS, images
from hypothesis import given
from hypothesis import strategies as st

from invhide.nn import functional, subnets
from invhide.nn.modules import AffineCoupling, HidingCoupling, WaveletDownsampling, WaveletUpsampling
from invhide.testing import assert_invertible, assert_log_det_matches_jacobian, randomize_

SMALL_SUBNETS = (subnets.conv(hidden=8, depth=2), subnets.dense(growth=4, depth=3), subnets.residual(hidden=8, depth=1))


class TestWaveletModules:
    @given(
        seed=st.integers(0, 2**32 - 1),
        wavelet=st.sampled_from(WAVELETS),
        layout=st.sampled_from(functional.LAYOUTS),
        channels=st.integers(1, 4),
        half=st.integers(2, 6),
        dtype=st.sampled_from([torch.float32, torch.float64]),
    )
    def test_invertible(self, seed, wavelet, layout, channels, half, dtype):
        size = max(2 * half, functional.min_wavelet_size(wavelet))
        down = WaveletDownsampling([(channels, size, size)], wavelet=wavelet, layout=layout)
        x = images(seed, 2, channels, size, size, dtype=dtype)
        atol = 1e-10 if dtype == torch.float64 else 2e-6
        assert assert_invertible(down, [x], atol=atol, rtol=1e-6).log_det_error == 0.0
        up = WaveletUpsampling([(4 * channels, size // 2, size // 2)], wavelet=wavelet, layout=layout)
        assert_invertible(up, [down([x])[0][0]], atol=atol, rtol=1e-6)

    @pytest.mark.parametrize("wavelet", WAVELETS)
    def test_jacobian_is_orthogonal(self, wavelet):
        size = functional.min_wavelet_size(wavelet)
        down = WaveletDownsampling([(1, size, size)], wavelet=wavelet)
        x = images(0, 1, 1, size, size, dtype=torch.float64)
        jacobian = torch.autograd.functional.jacobian(lambda v: down([v])[0][0], x).reshape(size * size, -1)
        assert torch.allclose(jacobian @ jacobian.T, torch.eye(size * size, dtype=torch.float64), atol=1e-10)

    def test_up_is_down_reversed(self):
        x = images(1, 2, 3, 8, 8)
        down = WaveletDownsampling([(3, 8, 8)], wavelet="db2")
        up = WaveletUpsampling([(12, 4, 4)], wavelet="db2")
        (y,), _ = down([x])
        assert torch.equal(up([x], rev=True)[0][0], y)
        assert torch.equal(up([y])[0][0], down([y], rev=True)[0][0])

    def test_runs_at_any_size_after_construction(self):
        down = WaveletDownsampling([(3, 2, 2)])
        (y,), _ = down([torch.rand(1, 3, 30, 14)])
        assert y.shape == (1, 12, 15, 7)

    def test_output_dims_and_errors(self):
        assert WaveletDownsampling([(3, 8, 6)]).output_dims([(3, 8, 6)]) == [(12, 4, 3)]
        assert WaveletUpsampling([(12, 4, 3)]).output_dims([(12, 4, 3)]) == [(3, 8, 6)]
        with pytest.raises(ValueError, match="even height and width of at least 2, got dims"):
            WaveletDownsampling([(3, 7, 8)])
        with pytest.raises(ValueError, match="needs 4\\*C channels"):
            WaveletUpsampling([(6, 4, 4)])
        with pytest.raises(ValueError, match="takes 1 input"):
            WaveletDownsampling([(3, 8, 8), (3, 8, 8)])
        with pytest.raises(ValueError, match="takes no conditions"):
            WaveletDownsampling([(3, 8, 8)], dims_c=[(1,)])
        with pytest.raises(ValueError, match="at least 8, got dims"):
            WaveletDownsampling([(3, 6, 6)], wavelet="sym4")
        with pytest.raises(ValueError, match="even height and width of at least 2, got dims \\(3, 5, 8\\)"):
            WaveletDownsampling([(3, 8, 8)]).output_dims([(3, 5, 8)])


def _coupling(kind, c1, c2, subnet, clamp, activation, size):
    if kind == "hiding":
        return HidingCoupling(
            [(c1, size, size), (c2, size, size)], subnet=subnet, clamp=clamp, clamp_activation=activation
        )
    return AffineCoupling([(c1 + c2, size, size)], subnet=subnet, clamp=clamp, clamp_activation=activation, split=c1)


def _inputs(kind, seed, batch, c1, c2, size, dtype):
    if kind == "hiding":
        return [images(seed, batch, c1, size, size, dtype=dtype), images(seed + 1, batch, c2, size, size, dtype=dtype)]
    return [images(seed, batch, c1 + c2, size, size, dtype=dtype)]


coupling_cases = dict(
    kind=st.sampled_from(["hiding", "affine"]),
    seed=st.integers(0, 2**31),
    batch=st.integers(1, 3),
    c1=st.integers(1, 6),
    c2=st.integers(1, 6),
    size=st.integers(1, 5),
    subnet=st.sampled_from(SMALL_SUBNETS),
    clamp=st.floats(0.25, 3.0),
    activation=st.sampled_from(functional.CLAMP_ACTIVATIONS),
)


class TestCouplings:
    @given(**coupling_cases, dtype=st.sampled_from([torch.float32, torch.float64]))
    def test_invertible(self, kind, seed, batch, c1, c2, size, subnet, clamp, activation, dtype):
        block = randomize_(_coupling(kind, c1, c2, subnet, clamp, activation, size), seed, gain=0.5).to(dtype)
        x = _inputs(kind, seed, batch, c1, c2, size, dtype)
        atol = 1e-12 if dtype == torch.float64 else 1e-5
        outputs, log_det = block(x)
        assert max((y - v).abs().max().item() for y, v in zip(outputs, x)) > 1e-3, "block is still the identity"
        assert (log_det.abs() <= clamp * sum(v[0].numel() for v in x)).all()
        assert_invertible(block, x, atol=atol, rtol=1e-12 if dtype == torch.float64 else 1e-5)

    @given(**coupling_cases)
    def test_log_det_is_the_log_abs_det_of_the_jacobian(
        self, kind, seed, batch, c1, c2, size, subnet, clamp, activation
    ):
        size, batch = min(size, 3), min(batch, 2)
        block = randomize_(_coupling(kind, c1, c2, subnet, clamp, activation, size), seed, gain=0.5).double()
        x = _inputs(kind, seed, batch, c1, c2, size, torch.float64)
        assert_log_det_matches_jacobian(block, x, atol=1e-9)

    def test_fresh_block_is_identity(self):
        block = HidingCoupling([(12, 4, 4), (12, 4, 4)])
        x = [torch.rand(2, 12, 4, 4), torch.rand(2, 12, 4, 4)]
        (y1, y2), log_det = block(x)
        assert torch.equal(y1, x[0]) and torch.equal(y2, x[1])
        assert torch.equal(log_det, torch.zeros(2))

    def test_gradients_reach_every_parameter(self):
        block = randomize_(HidingCoupling([(4, 4, 4), (8, 4, 4)], subnet="dense"), 0)
        (y1, y2), log_det = block([torch.rand(2, 4, 4, 4), torch.rand(2, 8, 4, 4)])
        (y1.square().sum() + y2.square().sum() + log_det.sum()).backward()
        for name, param in block.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, name

    def test_subnet_widths_follow_branches(self):
        block = HidingCoupling([(12, 4, 4), (24, 4, 4)], subnet=subnets.conv(depth=1))
        assert (block.phi.layers[0].in_channels, block.phi.layers[0].out_channels) == (24, 12)
        assert (block.rho.layers[0].in_channels, block.rho.layers[0].out_channels) == (12, 24)
        assert (block.eta.layers[0].in_channels, block.eta.layers[0].out_channels) == (12, 24)

    def test_plugs_into_a_plain_freia_graph(self):
        x = InputNode(3, 8, 8, name="x")
        down = Node(x, WaveletDownsampling, {"wavelet": "db2"}, name="down")
        block = Node(down, AffineCoupling, {"subnet": "conv", "clamp": 1.0}, name="block")
        up = Node(block, WaveletUpsampling, {"wavelet": "db2"}, name="up")
        graph = randomize_(GraphINN([x, down, block, up, OutputNode(up, name="z")], force_tuple_output=True), 1)
        assert_invertible(graph, [images(2, 2, 3, 8, 8)], atol=1e-5, rtol=1e-6)

    def test_errors(self):
        with pytest.raises(ValueError, match="same spatial size"):
            HidingCoupling([(4, 4, 4), (4, 8, 8)])
        with pytest.raises(ValueError, match="takes 2 input"):
            HidingCoupling([(4, 4, 4)])
        with pytest.raises(ValueError, match="clamp must be a finite number > 0, got 0"):
            HidingCoupling([(4, 4, 4), (4, 4, 4)], clamp=0)
        with pytest.raises(ValueError, match="clamp must be a finite number > 0, got inf"):
            HidingCoupling([(4, 4, 4), (4, 4, 4)], clamp=float("inf"))
        with pytest.raises(ValueError, match="clamp_activation must be one of"):
            HidingCoupling([(4, 4, 4), (4, 4, 4)], clamp_activation="softplus")
        with pytest.raises(ValueError, match="unknown subnet 'mlp'"):
            HidingCoupling([(4, 4, 4), (4, 4, 4)], subnet="mlp")
        with pytest.raises(ValueError, match="split must be an integer in \\[1, 3\\], got 4"):
            AffineCoupling([(4, 4, 4)], split=4)
        # Run-time shapes are checked by output_dims, which InvertibleGraph calls at its edge.
        block = HidingCoupling([(4, 4, 4), (4, 4, 4)], subnet="conv")
        with pytest.raises(ValueError, match="same spatial size"):
            block.output_dims([(4, 4, 4), (4, 8, 8)])
        with pytest.raises(ValueError, match="expects 4 channels, got dims \\(5, 4, 4\\)"):
            AffineCoupling([(4, 4, 4)], subnet="conv").output_dims([(5, 4, 4)])
