import re
from pathlib import Path

import pytest
import torch
from FrEIA.framework import ConditionNode, GraphINN, InputNode, Node, OutputNode
from FrEIA.modules import GLOWCouplingBlock, InvertibleModule, PermuteRandom
from helpers import images
from torch import nn

from invhide import InvertibleGraph, InvertibleHider
from invhide.errors import InputError, InputTypeError
from invhide.nn import subnets
from invhide.nn.modules import AffineCoupling, HidingCoupling, WaveletDownsampling
from invhide.testing import InvertibilityReport, assert_invertible, assert_log_det_matches_jacobian, randomize_

ROOT = Path(__file__).resolve().parents[1]


class Scale(InvertibleModule):
    """``y = x * exp(s)`` per feature, with switches that break one promise each."""

    def __init__(self, dims_in, dims_c=None, bug=None):
        super().__init__(dims_in, dims_c)
        self.s = nn.Parameter(torch.zeros(dims_in[0]))
        self.bug = bug

    def forward(self, x, c=None, rev=False, jac=True):
        (x,) = x
        s = -self.s if rev else self.s
        if self.bug == "inverse" and rev:
            s = s * 0.9
        if self.bug == "in_place" and not rev:
            x.mul_(1.0)
            x[0, 0] += 1.0
            return [x * s.exp()], s.sum().expand(x.shape[0])
        y = x * s.exp()
        if self.bug == "nan" and not rev:
            y = y.clone()
            y[1, 0] = float("nan")
        if self.bug == "jac" and not jac:
            y = y + 1.0
        if self.bug == "shape" and rev:
            y = y[:, :-1]
        log_det = s.sum().expand(x.shape[0]).clone()
        if self.bug == "log_det_sign" and rev:
            log_det = -log_det
        if self.bug == "log_det_float":
            return [y], 0.0
        if self.bug == "log_det_shape":
            return [y], log_det[:1]
        if self.bug == "log_det_wrong":
            log_det = log_det + (0.5 if not rev else -0.5)
        return [y], log_det

    def output_dims(self, input_dims):
        return [(input_dims[0][0] + 1,)] if self.bug == "output_dims" else list(input_dims)


def scale(bug=None, features=5):
    return randomize_(Scale([(features,)], bug=bug), seed=0, gain=0.5).double()


def x64(seed=0, *shape):
    return images(seed, *(shape or (3, 5)), dtype=torch.float64)


class TestAssertInvertible:
    def test_passes_and_reports(self):
        module = scale()
        x = x64()
        report = assert_invertible(module, [x])
        assert isinstance(report, InvertibilityReport)
        assert report.round_trip_error == max(report.round_trip_errors) <= 1e-10
        assert report.output_shapes == (torch.Size([3, 5]),)
        assert torch.allclose(report.log_det, module.s.sum().expand(3))
        assert report.log_det_error <= 1e-10
        # a single tensor is a list of one
        assert assert_invertible(module, x).round_trip_errors == report.round_trip_errors

    @pytest.mark.parametrize(
        ("bug", "message"),
        [
            ("inverse", r"round trip: inputs\[0\] \(shape \(3, 5\)\) comes back off by up to \d\.\d{3}e[-+]\d+ "),
            ("in_place", r"forward modified its input 0 in place \(by up to 1\.000e\+00, at index \(0, 0\)\)"),
            ("nan", r"forward output 0 \(shape \(3, 5\)\) has 1 non-finite value"),
            ("jac", r"forward with jac=False: forward output 0 differs by up to 1\.000e\+00"),
            ("shape", r"round trip: reverse output 0 has shape \(3, 4\), expected inputs\[0\]'s \(3, 5\)"),
            (
                "output_dims",
                r"forward outputs have shapes \[\(5,\)\] \(without batch\), but output_dims says \[\(6,\)\]",
            ),
            ("log_det_sign", r"log-dets do not cancel: forward \+ reverse = .* for sample 0"),
            ("log_det_float", r"forward log-det must be a per-sample tensor of shape \(3,\), got float 0\.0"),
            ("log_det_shape", r"forward log-det must have shape \(3,\) \(one value per sample\), got \(1,\)"),
        ],
    )
    def test_names_what_broke(self, bug, message):
        with pytest.raises(AssertionError, match=message):
            assert_invertible(scale(bug), [x64()])

    def test_tolerances(self):
        module = scale("inverse")
        x = x64()
        with pytest.raises(AssertionError, match="atol 1.0e-10"):
            assert_invertible(module, [x])
        error = (module([module([x])[0][0]], rev=True)[0][0] - x).abs().max().item()
        report = assert_invertible(module, [x], atol=2 * error, check_log_det=False)
        assert report.round_trip_error == pytest.approx(error)
        assert report.log_det_error is None and report.log_det is None
        # a log-det sum within rtol * (1 + max |log det|) passes
        wrong = scale("log_det_sign")
        total = 2 * wrong.s.sum().abs().item()
        assert_invertible(wrong, [x], rtol=1.01 * total / (1 + total / 2))
        with pytest.raises(AssertionError, match="do not cancel"):
            assert_invertible(wrong, [x], rtol=0.99 * total / (1 + total / 2))

    def test_float32_defaults_are_looser(self):
        module = scale().float()
        assert assert_invertible(module, [images(0, 3, 5)]).round_trip_error <= 1e-4

    def test_log_det_must_match_the_inputs_dtype(self):
        with pytest.raises(
            AssertionError, match="forward log-det is torch.float32 on cpu, expected the inputs' torch.float64"
        ):
            assert_invertible(PermuteLike(), [x64()])

    def test_argument_errors(self):
        with pytest.raises(InputError, match="inputs must hold at least one tensor, got an empty list"):
            assert_invertible(scale(), [])
        with pytest.raises(InputTypeError, match=r"inputs\[1\] must be a torch.Tensor, got ndarray"):
            assert_invertible(scale(), [x64(), x64().numpy()])
        with pytest.raises(InputError, match=r"inputs must share one batch size, got batch sizes \[3, 2\]"):
            assert_invertible(scale(), [x64(), x64(1, 2, 5)])
        with pytest.raises(InputError, match="atol must be a finite number >= 0, got -1"):
            assert_invertible(scale(), [x64()], atol=-1)

    def test_works_on_the_modules_invhide_ships(self):
        hiding = randomize_(HidingCoupling([(4, 4, 4), (8, 4, 4)], subnet="dense"), 0, gain=0.5).double()
        report = assert_invertible(hiding, [x64(0, 2, 4, 4, 4), x64(1, 2, 8, 4, 4)])
        assert report.output_shapes == (torch.Size([2, 4, 4, 4]), torch.Size([2, 8, 4, 4]))
        down = WaveletDownsampling([(3, 8, 8)], wavelet="db2")
        assert assert_invertible(down, [images(0, 2, 3, 8, 8)]).log_det_error == 0.0

    def test_works_on_graphs_and_hiders(self):
        x = InputNode(4, 6, 6, name="x")
        block = Node(x, AffineCoupling, {"subnet": "conv"}, name="block")
        graph = randomize_(InvertibleGraph([x, block, OutputNode(block, name="z")]), 0, gain=0.5).double()
        assert_invertible(graph, [x64(0, 2, 4, 6, 6)])
        hider = randomize_(InvertibleHider(num_secrets=2, num_blocks=2, subnet=subnets.conv(hidden=8, depth=1)), 1)
        cover, secrets = images(0, 2, 3, 8, 8), images(1, 2, 6, 8, 8)
        report = assert_invertible(hider.double(), [cover.double(), secrets.double()])
        assert report.output_shapes == (torch.Size([2, 3, 8, 8]), torch.Size([2, 6, 8, 8]))
        assert (hider.hide(cover.double(), *secrets.double().chunk(2, 1))[0] - cover).abs().max() > 1e-3

    def test_works_on_plain_freia_graphs_with_conditions(self):
        def subnet(n_in, n_out):
            return nn.Sequential(nn.Linear(n_in, 16), nn.Tanh(), nn.Linear(16, n_out))

        x, c = InputNode(6, name="x"), ConditionNode(3, name="c")
        glow = Node(x, GLOWCouplingBlock, {"subnet_constructor": subnet}, conditions=c, name="glow")
        permute = Node(glow, PermuteRandom, {"seed": 0}, name="permute")
        # force_tuple_output=False: the graph returns one tensor, not a tuple
        graph = GraphINN([x, c, glow, permute, OutputNode(permute, name="z")])
        graph = randomize_(graph, 0, gain=0.5).double()
        xs, cs = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
        report = assert_invertible(graph, [xs], conditions=[cs])
        assert report.log_det.abs().min() > 1e-3
        assert torch.allclose(assert_log_det_matches_jacobian(graph, [xs], conditions=[cs], atol=1e-9), report.log_det)
        # FrEIA's volume-preserving modules return a Python 0.
        with pytest.raises(AssertionError, match="got float 0.0"):
            assert_invertible(PermuteRandom([(6,)], seed=0), [xs])
        assert_invertible(PermuteRandom([(6,)], seed=0), [xs], check_log_det=False)


class PermuteLike(InvertibleModule):
    """Reverses the features; returns its log-det in float32 whatever the input."""

    def __init__(self):
        super().__init__([(5,)])

    def forward(self, x, c=None, rev=False, jac=True):
        return [x[0].flip(1)], torch.zeros(x[0].shape[0])

    def output_dims(self, input_dims):
        return list(input_dims)


class TestLogDetMatchesJacobian:
    def test_passes_on_a_correct_log_det(self):
        block = randomize_(HidingCoupling([(2, 2, 2), (3, 2, 2)], subnet="conv"), 3, gain=0.5).double()
        x = [x64(0, 2, 2, 2, 2), x64(1, 2, 3, 2, 2)]
        brute_force = assert_log_det_matches_jacobian(block, x, atol=1e-9)
        assert brute_force.shape == (2,) and brute_force.abs().min() > 1e-3
        assert torch.allclose(brute_force, block(x)[1], atol=1e-9)

    def test_names_the_sample_that_differs(self):
        message = (
            r"log-det of sample \d is .*, but log \|det J\| of the autograd Jacobian is .* \(difference 5\.000e-01"
        )
        with pytest.raises(AssertionError, match=message):
            assert_log_det_matches_jacobian(scale("log_det_wrong"), [x64()], atol=1e-6)

    def test_a_module_that_changes_the_size_is_no_bijection(self):
        class Drop(Scale):
            def forward(self, x, c=None, rev=False, jac=True):
                return [x[0][:, :-1]], torch.zeros(x[0].shape[0], dtype=x[0].dtype)

        with pytest.raises(AssertionError, match="maps 5 numbers per sample to 4: not a bijection"):
            assert_log_det_matches_jacobian(Drop([(5,)]).double(), [x64()])


class TestRandomize:
    def test_moves_trainable_parameters_off_the_identity_reproducibly(self):
        block = HidingCoupling([(4, 4, 4), (4, 4, 4)])
        x = [images(0, 1, 4, 4, 4), images(1, 1, 4, 4, 4)]
        assert torch.equal(block(x)[0][1], x[1])
        assert randomize_(block, seed=3, gain=0.2) is block
        assert (block(x)[0][1] - x[1]).abs().max() > 1e-3
        again = randomize_(HidingCoupling([(4, 4, 4), (4, 4, 4)]), seed=3, gain=0.2)
        other = randomize_(HidingCoupling([(4, 4, 4), (4, 4, 4)]), seed=4, gain=0.2)
        for (name, p), q, r in zip(block.named_parameters(), again.parameters(), other.parameters()):
            assert torch.equal(p, q), name
            assert not torch.equal(p, r), name
            assert p.abs().max() > 0, name

    def test_scale_follows_gain_and_fan_in(self):
        layer = randomize_(nn.Conv2d(16, 64, 3), seed=0, gain=2.0)
        assert layer.weight.std().item() == pytest.approx(2.0 / (16 * 9) ** 0.5, rel=0.05)
        assert layer.bias.std().item() == pytest.approx(2.0, rel=0.3)

    def test_leaves_frozen_parameters_alone(self):
        permute = PermuteRandom([(6,)], seed=0)
        before = {name: p.clone() for name, p in permute.named_parameters()}
        assert before, "PermuteRandom keeps its permutation as frozen parameters"
        randomize_(permute, seed=0)
        for name, p in permute.named_parameters():
            assert torch.equal(p, before[name]), name

    def test_errors(self):
        with pytest.raises(InputTypeError, match="module must be a torch.nn.Module, got list"):
            randomize_([], seed=0)
        with pytest.raises(InputError, match="gain must be a finite number > 0, got 0"):
            randomize_(nn.Linear(2, 2), seed=0, gain=0)
        with pytest.raises(InputError, match="seed must be an integer, got 1.5"):
            randomize_(nn.Linear(2, 2), seed=1.5)


def test_the_tutorial_runs():
    """The code blocks of docs/tutorials/custom-module.md run as one script and their checks pass."""
    text = (ROOT / "docs" / "tutorials" / "custom-module.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)
    assert len(blocks) >= 3
    namespace: dict = {}
    exec(compile("\n".join(blocks), "custom-module.md", "exec"), namespace)
    assert isinstance(namespace["report"], InvertibilityReport)
    for dtype in (torch.float32, torch.float64):
        namespace["test_channel_affine_is_invertible"](dtype, seed=0)
