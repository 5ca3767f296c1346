import json
import math

import pytest
import torch
from helpers import WAVELETS, images
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from invhide.errors import InputError
from invhide.nn import functional
from invhide.training.losses import (
    ChromaLoss,
    ConcealingLoss,
    HidingLoss,
    LossOutput,
    LowFrequencyWaveletLoss,
    RevealingLoss,
    distance,
    low_frequency_distance,
)

# A 1x1x2x2 pair whose differences are [1, 0, 2, -3]:
# l2 sum 1 + 0 + 4 + 9 = 14, l2 mean 3.5, l1 sum 6, l1 mean 1.5.
PREDICTION = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
TARGET = torch.tensor([[[[0.0, 2.0], [1.0, 7.0]]]], dtype=torch.float64)
BY_HAND = {("l2", "sum"): 14.0, ("l2", "mean"): 3.5, ("l1", "sum"): 6.0, ("l1", "mean"): 1.5}
PAIR_LOSSES = [(ConcealingLoss, "stego", "cover"), (RevealingLoss, "recovered", "secret")]


def haar_ll(x):
    """The Haar LL band by hand: (a + b + c + d) / 2 over each 2x2 block."""
    return (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]) / 2


def batch(seed, shape=(2, 3, 8, 8), dtype=torch.float64):
    cover, secret, stego, recovered = (images(seed + i, *shape, dtype=dtype) for i in range(4))
    return {"cover": cover, "secret": secret, "stego": stego, "recovered": recovered}


class TestPairLosses:
    @pytest.mark.parametrize(("kind", "reduction"), list(BY_HAND))
    @pytest.mark.parametrize(("cls", "prediction", "target"), PAIR_LOSSES)
    def test_hand_computation(self, cls, prediction, target, kind, reduction):
        loss = cls(kind=kind, reduction=reduction)
        value = loss(**{prediction: PREDICTION, target: TARGET})
        assert value.dim() == 0
        assert value.item() == BY_HAND[(kind, reduction)]

    @pytest.mark.parametrize(("kind", "reduction"), list(BY_HAND))
    def test_distance_by_hand(self, kind, reduction):
        assert distance(PREDICTION, TARGET, kind, reduction).item() == BY_HAND[(kind, reduction)]

    def test_l2_sum_is_mse_times_numel(self):
        tensors = batch(0)
        expected = nn.functional.mse_loss(tensors["stego"], tensors["cover"], reduction="sum")
        torch.testing.assert_close(ConcealingLoss()(**tensors), expected)
        expected = nn.functional.l1_loss(tensors["recovered"], tensors["secret"], reduction="mean")
        torch.testing.assert_close(RevealingLoss("l1", "mean")(**tensors), expected)

    @pytest.mark.parametrize(("cls", "prediction", "target"), PAIR_LOSSES)
    def test_uses_only_its_own_keywords(self, cls, prediction, target):
        tensors = batch(1)
        expected = distance(tensors[prediction], tensors[target])
        # Every other keyword (lost included, with another shape) is ignored.
        value = cls()(**tensors, lost=torch.zeros(5))
        assert value.item() == expected.item()

    def test_concealing_and_revealing_are_different_pairs(self):
        tensors = batch(2)
        assert ConcealingLoss()(**tensors).item() != RevealingLoss()(**tensors).item()

    @pytest.mark.parametrize(
        ("loss", "missing"),
        [
            (ConcealingLoss(), "stego"),
            (ConcealingLoss(), "cover"),
            (RevealingLoss(), "recovered"),
            (RevealingLoss(), "secret"),
            (LowFrequencyWaveletLoss(), "stego"),
        ],
    )
    def test_missing_keyword_is_a_type_error_naming_it(self, loss, missing):
        tensors = batch(3)
        del tensors[missing]
        with pytest.raises(TypeError, match=f"'{missing}'"):
            loss(**tensors)

    @pytest.mark.parametrize("cls", [ConcealingLoss, LowFrequencyWaveletLoss])
    def test_shape_mismatch_names_both_shapes(self, cls):
        with pytest.raises(ValueError, match=r"\(1, 3, 8, 8\) and \(1, 3, 8, 6\)"):
            cls()(stego=torch.zeros(1, 3, 8, 8), cover=torch.zeros(1, 3, 8, 6))

    def test_non_float_and_non_tensor_inputs(self):
        with pytest.raises(TypeError, match="floating-point"):
            ConcealingLoss()(stego=torch.zeros(1, 3, 4, 4, dtype=torch.long), cover=torch.zeros(1, 3, 4, 4))
        with pytest.raises(TypeError, match=r"cover must be a torch\.Tensor, got list"):
            ConcealingLoss()(stego=torch.zeros(1), cover=[0.0])

    @pytest.mark.parametrize("cls", [ConcealingLoss, RevealingLoss, LowFrequencyWaveletLoss])
    def test_bad_kind_and_reduction(self, cls):
        with pytest.raises(ValueError, match=r"kind must be one of \('l1', 'l2'\), got 'mse'"):
            cls(kind="mse")
        with pytest.raises(ValueError, match=r"reduction must be one of \('sum', 'mean'\), got 'none'"):
            cls(reduction="none")

    def test_repr(self):
        assert repr(ConcealingLoss("l1", "mean")) == "ConcealingLoss(kind='l1', reduction='mean')"
        assert "wavelet='db2'" in repr(LowFrequencyWaveletLoss("db2"))


class TestLowFrequencyWaveletLoss:
    def test_one_block_by_hand(self):
        # LL of [[1, 2], [3, 4]] is (1 + 2 + 3 + 4) / 2 = 5; of the zero cover 0.
        stego = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        cover = torch.zeros_like(stego)
        assert LowFrequencyWaveletLoss()(stego=stego, cover=cover).item() == 25.0
        assert LowFrequencyWaveletLoss(kind="l1")(stego=stego, cover=cover).item() == 5.0

    @pytest.mark.parametrize(("kind", "reduction"), list(BY_HAND))
    def test_equals_loss_on_hand_computed_haar_ll(self, kind, reduction):
        tensors = batch(4, shape=(2, 3, 6, 8))
        expected = distance(haar_ll(tensors["stego"]), haar_ll(tensors["cover"]), kind, reduction)
        value = LowFrequencyWaveletLoss(kind=kind, reduction=reduction)(**tensors)
        torch.testing.assert_close(value, expected, rtol=1e-13, atol=0)

    def test_mean_is_over_ll_elements(self):
        tensors = batch(5, shape=(2, 3, 8, 8))
        total = LowFrequencyWaveletLoss()(**tensors)
        mean = LowFrequencyWaveletLoss(reduction="mean")(**tensors)
        torch.testing.assert_close(mean, total / (2 * 3 * 4 * 4))

    @settings(max_examples=30)
    @given(
        seed=st.integers(0, 2**31),
        batch_size=st.integers(1, 3),
        channels=st.integers(1, 3),
        height=st.integers(1, 6),
        width=st.integers(1, 6),
        kind=st.sampled_from(["l1", "l2"]),
        reduction=st.sampled_from(["sum", "mean"]),
    )
    def test_property_haar_ll(self, seed, batch_size, channels, height, width, kind, reduction):
        shape = (batch_size, channels, 2 * height, 2 * width)
        x, y = images(seed, *shape, dtype=torch.float64), images(seed + 1, *shape, dtype=torch.float64)
        expected = distance(haar_ll(x), haar_ll(y), kind, reduction)
        torch.testing.assert_close(low_frequency_distance(x, y, "haar", kind, reduction), expected, rtol=1e-12, atol=0)

    @pytest.mark.parametrize("wavelet", WAVELETS)
    def test_detail_only_differences_cost_nothing(self, wavelet):
        cover = images(6, 1, 3, 8, 8, dtype=torch.float64)
        rows = torch.arange(8, dtype=torch.float64).reshape(8, 1)
        cols = torch.arange(8, dtype=torch.float64).reshape(1, 8)
        loss = LowFrequencyWaveletLoss(wavelet)
        for pattern in ((-1) ** (rows + cols), (-1) ** rows + 0 * cols, 0 * rows + (-1) ** cols):
            value = loss(stego=cover + 0.05 * pattern, cover=cover)
            assert value.item() < 1e-24, f"{wavelet}: a pure detail difference costs {value.item():.3e}"

    @pytest.mark.parametrize("wavelet", WAVELETS)
    def test_constant_difference_costs_its_ll_energy(self, wavelet):
        # An orthonormal lowpass filter sums to sqrt(2), so a constant c has LL = 2c in 2-D:
        # sum over (B, C, H/2, W/2) LL elements of (2c)^2 = B C H W c^2.
        cover = images(7, 2, 3, 8, 8, dtype=torch.float64)
        c = 0.1
        value = LowFrequencyWaveletLoss(wavelet)(stego=cover + c, cover=cover)
        assert value.item() == pytest.approx(2 * 3 * 8 * 8 * c**2, rel=1e-12)

    @pytest.mark.parametrize("wavelet", WAVELETS)
    def test_ll_is_the_same_in_both_layouts(self, wavelet):
        x = images(8, 1, 2, 8, 8, dtype=torch.float64)
        subband = functional.dwt(x, wavelet, layout="subband")[:, :2]
        hinet = functional.dwt(x, wavelet, layout="hinet")[:, :2]
        assert torch.equal(subband, hinet)

    def test_bad_wavelet_and_size(self):
        with pytest.raises(ValueError, match="not orthogonal"):
            LowFrequencyWaveletLoss("bior2.2")
        with pytest.raises(ValueError, match="unknown wavelet"):
            LowFrequencyWaveletLoss("nope")
        with pytest.raises(ValueError, match="even height and width"):
            LowFrequencyWaveletLoss()(stego=torch.zeros(1, 3, 5, 4), cover=torch.zeros(1, 3, 5, 4))


def ycbcr(x):
    """RGB -> JPEG's YCbCr (ITU-T T.871, without offsets) pixel by pixel, written out term by term."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    return torch.stack([y, cb, cr], dim=1)


class TestChromaLoss:
    @pytest.mark.parametrize(("kind", "reduction"), list(BY_HAND))
    def test_equals_distance_of_hand_computed_cb_cr(self, kind, reduction):
        tensors = batch(40, shape=(2, 3, 6, 4))
        expected = distance(ycbcr(tensors["stego"])[:, 1:], ycbcr(tensors["cover"])[:, 1:], kind, reduction)
        value = ChromaLoss(kind=kind, reduction=reduction)(**tensors)
        torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-15)

    def test_a_grey_change_costs_nothing_and_a_colour_change_does(self):
        cover = images(41, 1, 3, 8, 8, dtype=torch.float64)
        grey = cover + 0.05 * torch.randn(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        assert ChromaLoss()(stego=grey, cover=cover).item() < 1e-24  # the same change in R, G and B: luminance only
        colour = cover.clone()
        colour[:, 2] += 0.05  # blue only
        # Cb changes by 0.5 * 0.05 and Cr by -0.081312 * 0.05 at each of the 64 pixels.
        expected = 64 * ((0.5 * 0.05) ** 2 + (0.081312 * 0.05) ** 2)
        assert ChromaLoss()(stego=colour, cover=cover).item() == pytest.approx(expected, rel=1e-12)

    def test_gradient_reaches_the_stego_only_through_colour(self):
        cover = images(42, 1, 3, 4, 4, dtype=torch.float64)
        stego = (cover + 0.1 * images(43, 1, 3, 4, 4, dtype=torch.float64)).requires_grad_()
        ChromaLoss()(stego=stego, cover=cover).backward()
        # d/d(stego) of sum(chroma^2) is 2 * rows^T chroma at every pixel: in the span of the Cb and Cr rows.
        rows = torch.tensor([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=torch.float64)
        chroma = torch.einsum("ij,bjhw->bihw", rows, stego.detach() - cover)
        torch.testing.assert_close(stego.grad, 2 * torch.einsum("ij,bihw->bjhw", rows, chroma))

    def test_refuses_non_rgb_and_unbatched_naming_the_shape(self):
        with pytest.raises(InputError, match=r"\(B, 3, H, W\), got stego and cover of shape \(1, 1, 4, 4\)"):
            ChromaLoss()(stego=torch.zeros(1, 1, 4, 4), cover=torch.zeros(1, 1, 4, 4))
        with pytest.raises(InputError, match=r"of shape \(3, 4, 4\)"):  # one unbatched image
            ChromaLoss()(stego=torch.zeros(3, 4, 4), cover=torch.zeros(3, 4, 4))

    def test_missing_keyword_and_bad_options(self):
        with pytest.raises(TypeError, match="'cover'"):
            ChromaLoss()(stego=torch.zeros(1, 3, 4, 4))
        with pytest.raises(ValueError, match="kind must be one of"):
            ChromaLoss(kind="mse")


class TestHidingLoss:
    def test_named_losses_weights(self):
        assert HidingLoss.paper().weights == {"concealing": 10.0, "revealing": 1.0, "low_frequency": 10.0}
        assert HidingLoss.reference_code().weights == {"concealing": 1.0, "revealing": 5.0, "low_frequency": 1.0}

    @pytest.mark.parametrize("reduction", ["sum", "mean"])
    @pytest.mark.parametrize(("named", "weights"), [("paper", (10, 1, 10)), ("reference_code", (1, 5, 1))])
    def test_named_loss_totals(self, named, weights, reduction):
        tensors = batch(9)
        out = getattr(HidingLoss, named)(reduction=reduction)(**tensors)
        concealing = distance(tensors["stego"], tensors["cover"], "l2", reduction)
        revealing = distance(tensors["recovered"], tensors["secret"], "l2", reduction)
        low = distance(haar_ll(tensors["stego"]), haar_ll(tensors["cover"]), "l2", reduction)
        assert isinstance(out, LossOutput)
        assert list(out.terms) == ["concealing", "revealing", "low_frequency"]
        torch.testing.assert_close(out.terms["concealing"], concealing)
        torch.testing.assert_close(out.terms["revealing"], revealing)
        torch.testing.assert_close(out.terms["low_frequency"], low)
        expected = weights[0] * concealing + weights[1] * revealing + weights[2] * low
        torch.testing.assert_close(out.total, expected)

    def test_named_loss_terms_are_l2(self):
        for module in HidingLoss.paper(reduction="mean").terms.values():
            assert (module.kind, module.reduction) == ("l2", "mean")
        assert HidingLoss.paper().terms["low_frequency"].wavelet == "haar"

    def test_gradients_reach_stego_and_recovered(self):
        tensors = batch(10)
        stego = tensors["stego"].clone().requires_grad_(True)
        recovered = tensors["recovered"].clone().requires_grad_(True)
        cover, secret = tensors["cover"], tensors["secret"]
        out = HidingLoss.paper()(cover=cover, secret=secret, stego=stego, recovered=recovered)
        out.total.backward()
        # d/ds [10 sum (s - c)^2 + 10 sum LL(s - c)^2] = 20 (s - c) + 10 LL(s - c) on each pixel of its block,
        # since each pixel enters its block's LL with weight 1/2.
        ll = haar_ll(stego.detach() - cover).repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
        torch.testing.assert_close(stego.grad, 20 * (stego.detach() - cover) + 10 * ll)
        torch.testing.assert_close(recovered.grad, 2 * (recovered.detach() - secret))

    def test_custom_term(self):
        class LostNorm(nn.Module):
            def forward(self, *, lost, **_):
                return lost.square().mean()

        paper = HidingLoss.paper()
        loss = paper.with_term("lost_norm", 0.1, LostNorm())
        assert list(loss.weights) == ["concealing", "revealing", "low_frequency", "lost_norm"]
        assert "lost_norm" not in paper.weights, "with_term changed the original loss"
        tensors = batch(11)
        lost = torch.full((2, 3, 8, 8), 2.0, dtype=torch.float64)
        out = loss(**tensors, lost=lost)
        assert out.terms["lost_norm"].item() == 4.0
        torch.testing.assert_close(out.total, paper(**tensors).total + 0.1 * 4.0)
        with pytest.raises(TypeError, match="'lost'"):
            loss(**tensors)  # the shipped terms do not need lost, the custom one does

    def test_custom_only_loss(self):
        loss = HidingLoss({"l1_conceal": (2, ConcealingLoss("l1")), "mine": (1.5, RevealingLoss("l1", "mean"))})
        out = loss(**batch(12))
        torch.testing.assert_close(out.total, 2 * out.terms["l1_conceal"] + 1.5 * out.terms["mine"])
        assert all(isinstance(weight, float) for weight in loss.weights.values())

    def test_zero_weight_term_is_reported_not_added(self):
        class Infinite(nn.Module):
            def forward(self, **_):
                return torch.tensor(math.inf)

        loss = HidingLoss.reference_code().with_term("watch", 0, Infinite())
        out = loss(**batch(13))
        assert math.isinf(out.terms["watch"].item())
        torch.testing.assert_close(out.total, HidingLoss.reference_code()(**batch(13)).total)

    def test_all_zero_weights_give_zero(self):
        out = HidingLoss({"c": (0.0, ConcealingLoss())})(**batch(14))
        assert out.total.item() == 0.0 and out.terms["c"].item() > 0

    def test_non_scalar_term(self):
        class PerSample(nn.Module):
            def forward(self, *, stego, **_):
                return stego.flatten(1).sum(1)

        with pytest.raises(ValueError, match=r"term 'per_sample' must return a scalar tensor, got \(2,\)"):
            HidingLoss({"per_sample": (1.0, PerSample())})(**batch(15))

    def test_to_floats(self):
        out = HidingLoss.paper()(**batch(16))
        floats = out.to_floats()
        assert list(floats) == ["total", "concealing", "revealing", "low_frequency"]
        assert floats["total"] == pytest.approx(out.total.item())

    def test_result_is_frozen(self):
        out = HidingLoss.paper()(**batch(17))
        with pytest.raises(AttributeError):
            out.total = torch.tensor(0.0)

    @pytest.mark.parametrize("weight", [-1.0, math.inf, math.nan])
    def test_bad_weight_values(self, weight):
        with pytest.raises(ValueError, match="finite number >= 0"):
            HidingLoss({"c": (weight, ConcealingLoss())})

    @pytest.mark.parametrize("weight", [True, "1", None, torch.tensor(1.0)])
    def test_bad_weight_types(self, weight):
        with pytest.raises(TypeError, match="real number"):
            HidingLoss({"c": (weight, ConcealingLoss())})

    def test_bad_terms(self):
        with pytest.raises(ValueError, match="at least one term"):
            HidingLoss({})
        with pytest.raises(ValueError, match="without dots"):
            HidingLoss({"a.b": (1.0, ConcealingLoss())})
        with pytest.raises(TypeError, match=r"\(weight, module\) pair"):
            HidingLoss({"c": ConcealingLoss()})
        with pytest.raises(TypeError, match="must be an nn.Module, got function"):
            HidingLoss({"c": (1.0, lambda **_: torch.tensor(0.0))})
        with pytest.raises(TypeError, match="must be a mapping"):
            HidingLoss([("c", (1.0, ConcealingLoss()))])
        with pytest.raises(ValueError, match="already has a term named 'revealing'"):
            HidingLoss.paper().with_term("revealing", 1.0, RevealingLoss())

    def test_weights_are_a_copy(self):
        loss = HidingLoss.paper()
        loss.weights["concealing"] = 0.0
        assert loss.weights["concealing"] == 10.0

    def test_is_a_module(self):
        loss = HidingLoss.paper().to(torch.float64)
        assert isinstance(loss.terms["concealing"], ConcealingLoss)
        assert loss.state_dict() == {}
        assert "concealing=10" in repr(loss)


class TestConfig:
    @pytest.mark.parametrize(
        "loss",
        [
            HidingLoss.paper(),
            HidingLoss.reference_code(reduction="mean"),
            HidingLoss({"low": (0.5, LowFrequencyWaveletLoss("db2", "l1", "mean")), "rev": (2, RevealingLoss())}),
            HidingLoss.paper().with_term("chroma", 20, ChromaLoss(reduction="mean")),
        ],
    )
    def test_round_trip(self, loss):
        config = json.loads(json.dumps(loss.config()))
        rebuilt = HidingLoss.from_config(config)
        assert rebuilt.weights == loss.weights
        assert rebuilt.config() == loss.config()
        tensors = batch(18)
        assert rebuilt(**tensors).total.item() == loss(**tensors).total.item()

    def test_custom_term_cannot_be_described(self):
        class Subclass(ConcealingLoss):
            pass

        for module in (nn.Identity(), Subclass()):
            loss = HidingLoss.paper().with_term("mine", 1.0, module)
            with pytest.raises(TypeError, match="cannot describe the custom term 'mine'"):
                loss.config()

    @pytest.mark.parametrize(
        "config",
        [
            {"class": "InvertibleHider", "terms": {}},
            {"class": "HidingLoss"},
            {"class": "HidingLoss", "terms": {}, "extra": 1},
            {"terms": {"c": {"weight": 1.0}}},
            {"terms": {"c": {"weight": 1.0, "loss": {"class": "MSELoss"}}}},
            {"terms": {"c": {"weight": 1.0, "loss": {"class": "ConcealingLoss", "wavelet": "haar"}}}},
            {"terms": {"c": {"weight": 1.0, "loss": {"class": "ConcealingLoss", "kind": "l3"}}}},
        ],
    )
    def test_bad_configs(self, config):
        with pytest.raises(ValueError):
            HidingLoss.from_config(config)
