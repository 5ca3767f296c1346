import copy
import weakref

import pytest
import torch
from helpers import WAVELETS, images
from hypothesis import given, settings
from hypothesis import strategies as st

from invhide import HiNet, InvertibleHider
from invhide.models.hinet import reference_init_
from invhide.nn import functional, subnets
from invhide.testing import assert_invertible, randomize_

TINY = subnets.conv(hidden=8, depth=2)


@st.composite
def hider_cases(draw):
    wavelet = draw(st.sampled_from(WAVELETS))
    low = functional.min_wavelet_size(wavelet)
    return {
        "seed": draw(st.integers(0, 2**31)),
        "batch": draw(st.integers(1, 3)),
        "channels": draw(st.integers(1, 3)),
        "num_secrets": draw(st.integers(1, 2)),
        "height": max(low, 2 * draw(st.integers(1, 12))),
        "width": max(low, 2 * draw(st.integers(1, 12))),
        "num_blocks": draw(st.integers(1, 4)),
        "clamp": draw(st.floats(0.5, 3.0)),
        "activation": draw(st.sampled_from(functional.CLAMP_ACTIVATIONS)),
        "wavelet": wavelet,
        "layout": draw(st.sampled_from(functional.LAYOUTS)),
        "subnet": draw(st.sampled_from([TINY, subnets.dense(growth=4, depth=3), subnets.residual(hidden=8, depth=1)])),
    }


def _build(case, dtype=torch.float32):
    hider = InvertibleHider(
        num_secrets=case["num_secrets"],
        num_blocks=case["num_blocks"],
        subnet=case["subnet"],
        wavelet=case["wavelet"],
        clamp=case["clamp"],
        clamp_activation=case["activation"],
        channels=case["channels"],
        layout=case["layout"],
    )
    return randomize_(hider, case["seed"], gain=0.3).to(dtype)


def _images(case, dtype=torch.float32):
    shape = (case["batch"], case["channels"], case["height"], case["width"])
    cover = images(case["seed"], *shape, dtype=dtype)
    secrets = [images(case["seed"] + 1 + i, *shape, dtype=dtype) for i in range(case["num_secrets"])]
    return cover, secrets


class TestRoundTrip:
    @settings(max_examples=60)
    @given(case=hider_cases())
    def test_reveal_with_true_lost_part_is_exact_float32(self, case):
        hider = _build(case)
        cover, secrets = _images(case)
        with torch.no_grad():
            stego, lost = hider.hide(cover, *secrets)
            recovered = hider.reveal(stego, z=lost)
        assert (stego - cover).abs().max() > 1e-3, "weights were not moved off the identity"
        error = (recovered - torch.cat(secrets, 1)).abs().max().item()
        assert error < 1e-4, f"float32 secret round-trip max abs error {error:.3e}"
        assert_invertible(hider, [cover, torch.cat(secrets, 1)], atol=1e-4, rtol=1e-5)

    @settings(max_examples=40)
    @given(case=hider_cases())
    def test_round_trip_float64(self, case):
        hider = _build(case, torch.float64)
        cover, secrets = _images(case, torch.float64)
        assert_invertible(hider, [cover, torch.cat(secrets, 1)], atol=1e-10, rtol=1e-12)

    @settings(max_examples=20)
    @given(case=hider_cases())
    def test_gradients_reach_every_parameter(self, case):
        hider = _build(case)
        cover, secrets = _images(case)
        stego, lost = hider.hide(cover, *secrets)
        recovered = hider.reveal(stego, generator=torch.Generator().manual_seed(0))
        loss = (stego - cover).square().mean() + (recovered - torch.cat(secrets, 1)).square().mean()
        loss.backward()
        for name, param in hider.named_parameters():
            assert param.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
            assert param.grad.abs().sum() > 0, f"{name} has a zero gradient"

    def test_any_size_after_construction(self):
        hider = randomize_(InvertibleHider(num_blocks=2, subnet=TINY), 0)
        for batch, height, width in [(1, 2, 2), (3, 8, 30), (2, 64, 18)]:
            cover, secret = images(1, batch, 3, height, width), images(2, batch, 3, height, width)
            with torch.no_grad():
                stego, lost = hider.hide(cover, secret)
                assert stego.shape == lost.shape == cover.shape
                assert (hider.reveal(stego, z=lost) - secret).abs().max() < 1e-5

    def test_several_secrets_come_back_in_order(self):
        hider = randomize_(InvertibleHider(num_secrets=3, num_blocks=2, subnet=TINY), 0)
        cover, *secrets = (images(i, 1, 3, 8, 8) for i in range(4))
        with torch.no_grad():
            stego, lost = hider.hide(cover, *secrets)
            recovered = hider.reveal(stego, z=lost).chunk(3, dim=1)
        for got, want in zip(recovered, secrets):
            assert (got - want).abs().max() < 1e-5


class TestReveal:
    def test_z_is_zeros_or_drawn_and_seeded(self):
        hider = randomize_(InvertibleHider(num_blocks=2, subnet=TINY), 0)
        stego = images(0, 2, 3, 8, 8)
        with torch.no_grad():
            default, zeros = hider.reveal(stego), hider.reveal(stego, z=torch.zeros(2, 3, 8, 8))
            a = hider.reveal(stego, generator=torch.Generator().manual_seed(5))
            b = hider.reveal(stego, generator=torch.Generator().manual_seed(5))
            c = hider.reveal(stego, generator=torch.Generator().manual_seed(6))
            z = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
            d = hider.reveal(stego, z=z)
        assert torch.equal(default, zeros) and not torch.equal(default, a)
        assert torch.equal(a, b) and not torch.equal(a, c)
        assert torch.equal(a, d)

    def test_inputs_are_not_modified(self):
        hider = randomize_(InvertibleHider(num_blocks=2, subnet=TINY, wavelet="db2"), 0)
        cover, secret, z = images(0, 1, 3, 8, 8), images(1, 1, 3, 8, 8), images(2, 1, 3, 8, 8)
        copies = [t.clone() for t in (cover, secret, z)]
        with torch.no_grad():
            stego, _ = hider.hide(cover, secret)
            stego_copy = stego.clone()
            hider.reveal(stego, z=z)
        assert all(torch.equal(t, c) for t, c in zip((cover, secret, z), copies))
        assert torch.equal(stego, stego_copy)


class TestErrors:
    hider = InvertibleHider(num_blocks=1, subnet=TINY, wavelet="db2")
    x = torch.zeros(1, 3, 8, 8)

    @pytest.mark.parametrize(
        ("call", "error", "message"),
        [
            (lambda h, x: h.hide(x), ValueError, "takes 1 secret image\\(s\\), got 0"),
            (lambda h, x: h.hide(x, x, x), ValueError, "got 2"),
            (
                lambda h, x: h.hide(x[:, :2], x),
                ValueError,
                "cover must have shape \\(B, 3, H, W\\), got shape \\(1, 2, 8, 8\\)",
            ),
            (lambda h, x: h.hide(x, x[:, :, :6]), ValueError, "secret must match the cover's batch and size"),
            (lambda h, x: h.hide(x, x.double()), ValueError, "secret must be on the cover's device and dtype"),
            (lambda h, x: h.hide(x[..., :7], x[..., :7]), ValueError, "even height and width of at least 4"),
            (lambda h, x: h.hide(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)), ValueError, "at least 4"),
            (lambda h, x: h.hide(x.long(), x.long()), TypeError, "floating-point"),
            (lambda h, x: h.hide(x.numpy(), x), TypeError, "cover must be a torch.Tensor, got ndarray"),
            (lambda h, x: h.reveal(x, z=x[:, :1]), ValueError, "z must have shape \\(B, 3, H, W\\)"),
            (lambda h, x: h.reveal(x[0]), ValueError, "stego must have shape"),
        ],
    )
    def test_bad_input(self, call, error, message):
        with pytest.raises(error, match=message):
            call(self.hider, self.x)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"num_blocks": 0}, "num_blocks must be a positive integer, got 0"),
            ({"num_secrets": 1.5}, "num_secrets must be a positive integer"),
            ({"channels": -3}, "channels must be a positive integer"),
            ({"wavelet": "bior1.3"}, "not orthogonal"),
            ({"clamp": -1.0}, "clamp must be a finite number > 0"),
            ({"layout": "pywt"}, "layout must be one of"),
            ({"subnet": "gru"}, "unknown subnet 'gru'"),
        ],
    )
    def test_bad_construction(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            InvertibleHider(**kwargs)


class TestConfig:
    def test_round_trip(self):
        hider = InvertibleHider(
            num_secrets=2, num_blocks=3, subnet=subnets.residual(hidden=16), wavelet="sym2", clamp=1.5
        )
        rebuilt = InvertibleHider.from_config(hider.config())
        assert rebuilt.config() == hider.config()
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
            k: v.shape for k, v in hider.state_dict().items()
        }

    def test_custom_callable_cannot_be_described(self):
        hider = InvertibleHider(num_blocks=1, subnet=lambda c_in, c_out: torch.nn.Conv2d(c_in, c_out, 3, padding=1))
        with pytest.raises(TypeError, match="register its class"):
            hider.config()

    def test_bad_configs(self):
        with pytest.raises(ValueError, match="config describes a HiNet, not a InvertibleHider"):
            InvertibleHider.from_config({"class": "HiNet"})
        with pytest.raises(ValueError, match="invalid InvertibleHider config"):
            InvertibleHider.from_config({"blocks": 3})


LAYOUT_CASES = {
    "hinet": lambda: HiNet(num_blocks=2),
    "conv": lambda: InvertibleHider(num_blocks=2, subnet="conv"),
    "residual_db2_two_secrets": lambda: InvertibleHider(
        num_secrets=2, num_blocks=1, subnet=subnets.residual(hidden=8), wavelet="db2"
    ),
    "custom_callable": lambda: InvertibleHider(
        num_blocks=1, subnet=lambda c_in, c_out: torch.nn.Conv2d(c_in, c_out, 3, padding=1)
    ),
}


def _convs(model):
    return [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def _layout(tensor):
    if tensor.is_contiguous(memory_format=torch.channels_last) and not tensor.is_contiguous():
        return "channels-last"
    return "NCHW" if tensor.is_contiguous() else "other"


class TestMemoryLayout:
    """A hider is built channels-last (the fast layout); hide and reveal follow the weights' layout."""

    @pytest.mark.parametrize("build", LAYOUT_CASES.values(), ids=LAYOUT_CASES.keys())
    def test_fresh_convolution_weights_are_channels_last(self, build):
        convs = _convs(build())
        assert convs
        assert {_layout(conv.weight) for conv in convs} == {"channels-last"}

    @pytest.mark.parametrize("build", LAYOUT_CASES.values(), ids=LAYOUT_CASES.keys())
    def test_both_layouts_hide_and_reveal_alike_float64(self, build):
        hider = randomize_(build(), seed=5, gain=0.3).double()
        nchw = copy.deepcopy(hider).to(memory_format=torch.contiguous_format)
        assert {_layout(conv.weight) for conv in _convs(hider)} == {"channels-last"}, ".double() lost the layout"
        assert {_layout(conv.weight) for conv in _convs(nchw)} == {"NCHW"}
        k = hider.num_secrets
        cover = images(0, 2, 3, 16, 12, dtype=torch.float64)
        secrets = [images(1 + i, 2, 3, 16, 12, dtype=torch.float64) for i in range(k)]
        z = images(9, 2, 3 * k, 16, 12, dtype=torch.float64)
        with torch.no_grad():
            fast, slow = hider.hide(cover, *secrets), nchw.hide(cover, *secrets)
            fast, slow = (*fast, hider.reveal(fast[0], z=z)), (*slow, nchw.reveal(slow[0], z=z))
            # Results come back in the inputs' layout, whatever the layout inside.
            stego_cl = hider.hide(*(x.to(memory_format=torch.channels_last) for x in (cover, *secrets)))[0]
            recovered_cl = hider.reveal(stego_cl, z=z)
        assert (fast[0] - cover).abs().max() > 1e-2, "weights were not moved off the identity"
        for name, a, b in zip(("stego", "lost", "recovered"), fast, slow, strict=True):
            assert _layout(a) == _layout(b) == "NCHW", name
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0, msg=name)
        assert _layout(stego_cl) == _layout(recovered_cl) == "channels-last"
        torch.testing.assert_close(recovered_cl, fast[2], atol=1e-12, rtol=0)

    def test_convolutions_run_in_the_weights_layout(self):
        seen = []

        def layouts(model):
            seen.clear()
            hooks = [
                conv.register_forward_pre_hook(lambda _, args: seen.append(_layout(args[0]))) for conv in _convs(model)
            ]
            dtype = next(model.parameters()).dtype
            cover, secret = images(0, 1, 3, 16, 16, dtype=dtype), images(1, 1, 3, 16, 16, dtype=dtype)
            with torch.no_grad():
                stego, lost = model.hide(cover, secret)
                model.reveal(stego, z=lost)
            for hook in hooks:
                hook.remove()
            assert len(seen) == 2 * len(_convs(model))
            return set(seen)

        hider = randomize_(HiNet(num_blocks=2), seed=0)
        assert layouts(hider) == {"channels-last"}
        hider.double()
        assert layouts(hider) == {"channels-last"}
        hider.to("cpu", torch.float32)
        assert layouts(hider) == {"channels-last"}
        other = randomize_(HiNet(num_blocks=2), seed=1).to(memory_format=torch.contiguous_format)
        state = {key: value.contiguous() for key, value in other.state_dict().items()}
        hider.load_state_dict(state)  # copies NCHW tensors into the channels-last weights
        assert all(torch.equal(a, b) for a, b in zip(hider.state_dict().values(), state.values(), strict=True))
        assert layouts(hider) == {"channels-last"}
        reference_init_(hider, generator=torch.Generator().manual_seed(0))
        assert layouts(hider) == {"channels-last"}
        assert layouts(copy.deepcopy(hider)) == {"channels-last"}
        hider.to(memory_format=torch.contiguous_format)  # the user's choice of NCHW is kept
        assert layouts(hider) == {"NCHW"}
        hider.load_state_dict(randomize_(HiNet(num_blocks=2), seed=2).state_dict())
        assert layouts(hider) == {"NCHW"}
        hider.to(memory_format=torch.channels_last)
        assert layouts(hider) == {"channels-last"}

    def test_config_and_checkpoint_keys_do_not_depend_on_the_layout(self):
        hider = InvertibleHider(num_secrets=2, num_blocks=2, subnet="conv")
        nchw = copy.deepcopy(hider).to(memory_format=torch.contiguous_format)
        assert hider.config() == nchw.config()
        assert list(hider.state_dict()) == list(nchw.state_dict())


class TestRun:
    @pytest.mark.parametrize("rev", [False, True], ids=["hide", "reveal"])
    def test_a_run_lets_go_of_values_it_no_longer_needs(self, rev):
        # FrEIA's GraphINN keeps every intermediate value until the run ends; invhide's run releases each
        # value after its last use (faster: the allocator reuses cache-warm memory). When a coupling starts,
        # only its own inputs (the previous coupling's two outputs) may still be alive.
        hider = randomize_(InvertibleHider(num_blocks=4, subnet="conv"), seed=0)
        outputs, alive = [], []
        for coupling in (hider.nodes[f"coupling_{i}"] for i in range(1, 5)):
            coupling.register_forward_pre_hook(lambda _, args: alive.append(sum(r() is not None for r in outputs)))
            coupling.register_forward_hook(lambda _, args, out: outputs.extend(weakref.ref(t) for t in out[0]))
        cover, secret = images(0, 1, 3, 16, 16), images(1, 1, 3, 16, 16)
        with torch.no_grad():
            hider.reveal(cover, z=secret) if rev else hider.hide(cover, secret)
        assert alive == [0, 2, 2, 2]
