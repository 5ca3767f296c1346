"""Lossy channels: the differentiable stand-ins (invhide.training.channels) and the real codecs (invhide.evaluation.channels).

The key checks compare each stand-in with the real channel it replaces on
real photographs (Kodak crops), with floors measured on these crops.
"""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest
import torch
from helpers import images, shared
from PIL import Image

from invhide.evaluation import channels as real
from invhide.evaluation.metrics import psnr
from invhide.io.datasets import center_crop, list_images
from invhide.io.images import decode_image, encode_image, read_image
from invhide.nn.functional import quantize_8bit
from invhide.training import channels as train
from invhide.training.channels import (
    JPEG,
    GaussianNoise,
    Identity,
    OneOf,
    Resize,
    Rounding8Bit,
    Sequence,
)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def kornia_jpeg(quality) -> JPEG:
    pytest.importorskip("kornia")
    return JPEG(quality)


# Every differentiable channel, built lazily (JPEG needs kornia: skipped without it).
FACTORIES = {
    "identity": Identity,
    "round-ste": lambda: Rounding8Bit("ste"),
    "round-sine": lambda: Rounding8Bit("sine"),
    "round-cubic": lambda: Rounding8Bit("cubic"),
    "noise": lambda: GaussianNoise((1, 10)),
    "jpeg": lambda: kornia_jpeg((50, 95)),
    "resize-bicubic": lambda: Resize((0.5, 0.9)),
    "resize-bilinear": lambda: Resize((0.5, 0.9), mode="bilinear"),
    "resize-area": lambda: Resize(0.6, mode="area"),
    "resize-nearest": lambda: Resize(0.6, mode="nearest"),
    "one-of": lambda: OneOf([GaussianNoise(3), Resize(0.5), Rounding8Bit()]),
    "sequence": lambda: Sequence(GaussianNoise(2), Resize(0.75), Rounding8Bit("sine")),
}
RANDOM = ["noise", "jpeg", "resize-bicubic", "one-of", "sequence"]  # outputs that depend on the seed


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Four Kodak photographs, 128x128 centre crops, ``(4, 3, 128, 128)`` in [0, 1] (8-bit values)."""
    files = list_images(shared("kodak24"))[:4]
    return torch.stack([center_crop(read_image(path), 128) for path in files])


# --------------------------------------------------------------------------
# The differentiable channels
# --------------------------------------------------------------------------


class TestContract:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
    @pytest.mark.parametrize("name", list(FACTORIES))
    def test_shape_and_dtype_kept(self, name, dtype):
        x = images(0, 3, 3, 20, 28, dtype=dtype)  # not a multiple of 16 (JPEG pads and crops)
        y = FACTORIES[name]()(x, generator=seeded(0))
        assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
        assert y.float().isfinite().all()

    @pytest.mark.parametrize("name", list(FACTORIES))
    def test_gradient_reaches_every_pixel_region(self, name):
        x = images(1, 2, 3, 24, 24, dtype=torch.float64).requires_grad_()
        y = FACTORIES[name]()(x, seeded(1))
        weights = images(2, *y.shape, dtype=torch.float64)  # a generic loss, not only the sum
        (gradient,) = torch.autograd.grad((y * weights).sum(), x)
        assert gradient.isfinite().all()
        assert gradient.abs().sum() > 0
        assert (gradient.abs().sum(dim=(1, 2, 3)) > 0).all()  # every image gets a gradient

    @pytest.mark.parametrize("name", list(FACTORIES))
    def test_input_untouched(self, name):
        x = images(3, 2, 3, 16, 16)
        before = x.clone()
        FACTORIES[name]()(x, seeded(0))
        assert torch.equal(x, before)

    @pytest.mark.parametrize("name", RANDOM)
    def test_seeded_generator_replays_and_seeds_differ(self, name):
        channel = FACTORIES[name]()
        x = images(4, 6, 3, 16, 16)
        first, again = channel(x, seeded(7)), channel(x, seeded(7))
        assert torch.equal(first, again)
        assert not torch.equal(first, channel(x, seeded(8)))

    def test_global_generator_used_without_one(self):
        x = images(5, 2, 3, 8, 8)
        torch.manual_seed(3)
        first = GaussianNoise((1, 5))(x)
        torch.manual_seed(3)
        assert torch.equal(first, GaussianNoise((1, 5))(x))

    @pytest.mark.parametrize("name", ["noise", "jpeg", "resize-bicubic"])
    def test_forward_is_apply_of_sample(self, name):
        channel = FACTORIES[name]()
        x = images(6, 5, 3, 16, 16)
        generator = seeded(11)
        strength = channel.sample(len(x), generator)
        assert torch.equal(channel(x, seeded(11)), channel.apply(x, strength, generator))


class TestStrengths:
    @pytest.mark.parametrize(
        ("channel", "low", "high"),
        [(lambda: GaussianNoise((1, 10)), 1, 10), (lambda: Resize((0.3, 0.8)), 0.3, 0.8)],
    )
    def test_uniform_draws_fill_the_range(self, channel, low, high):
        drawn = channel().sample(4000, seeded(0))
        assert drawn.shape == (4000,)
        assert drawn.min() >= low and drawn.max() <= high
        assert drawn.min() < low + 0.01 * (high - low) and drawn.max() > high - 0.01 * (high - low)
        assert abs(drawn.mean().item() - (low + high) / 2) < 0.02 * (high - low)  # 4.4 standard errors

    def test_jpeg_qualities_are_whole_and_cover_the_range(self):
        pytest.importorskip("kornia")
        drawn = JPEG((90, 93)).sample(400, seeded(0))
        assert torch.equal(drawn, drawn.round())
        assert set(drawn.tolist()) == {90.0, 91.0, 92.0, 93.0}

    def test_one_strength_draws_nothing(self):
        generator = seeded(0)
        state = generator.get_state()
        assert torch.equal(GaussianNoise(4).sample(3, generator), torch.full((3,), 4.0))
        assert torch.equal(generator.get_state(), state)

    def test_noise_strength_is_per_image(self):
        """The measured noise of each image matches the sigma drawn for it, and the sigmas differ."""
        noise = GaussianNoise((1, 10))
        x = torch.full((6, 3, 64, 64), 0.5)
        sigma = noise.sample(6, seeded(5))
        measured = ((noise(x, seeded(5)) - x) * 255).std(dim=(1, 2, 3))
        torch.testing.assert_close(measured, sigma, rtol=0.03, atol=0)
        assert sigma.max() - sigma.min() > 2

    def test_resize_strength_is_per_image(self):
        """Each image of a batch equals that image resized alone at its own drawn scale."""
        resize = Resize((0.3, 0.9))
        x = images(8, 5, 3, 32, 32)
        scale = resize.sample(5, seeded(2))
        assert len({real.scaled_size(32, s) for s in scale.tolist()}) > 1  # several groups
        y = resize(x, seeded(2))
        for i in range(5):
            alone = resize.apply(x[i : i + 1], scale[i : i + 1])
            torch.testing.assert_close(y[i : i + 1], alone, rtol=0, atol=1e-6)

    def test_jpeg_strength_is_per_image(self):
        pytest.importorskip("kornia")
        ramp = torch.linspace(0, 1, 32)
        x = (ramp.view(1, 1, 1, 32) * ramp.view(1, 1, 32, 1)).expand(2, 3, 32, 32)  # smooth: JPEG keeps it well
        jpeg = JPEG((10, 95))
        quality = torch.tensor([10.0, 95.0])
        y = jpeg.apply(x, quality)
        assert psnr(y[:1], x[:1]) < psnr(y[1:], x[1:]) - 5
        torch.testing.assert_close(y[1:], jpeg.apply(x[1:], quality[1:]), rtol=0, atol=1e-5)


class TestRounding:
    def test_ste_and_sine_round_exactly(self):
        x = torch.linspace(-0.2, 1.2, 1001).view(1, 1, 7, 143)
        for mode in ("ste", "sine"):
            assert torch.equal(Rounding8Bit(mode)(x), quantize_8bit(x))

    def test_cubic_stays_within_an_eighth_of_a_level(self):
        x = torch.linspace(-0.2, 1.2, 1001, dtype=torch.float64).view(1, 1, 7, 143)
        error = (Rounding8Bit("cubic")(x) - quantize_8bit(x)).abs().max().item() * 255
        assert 0.12 < error <= 0.125 + 1e-9

    @pytest.mark.parametrize(
        ("mode", "slope"),
        [
            ("ste", lambda r: torch.ones_like(r)),
            ("sine", lambda r: math.pi / 2 * torch.sin(math.pi * r).abs()),
            ("cubic", lambda r: 3 * r**2),
        ],
    )
    def test_gradient_is_the_stated_surrogate(self, mode, slope):
        y = torch.linspace(0.01, 254.99, 997, dtype=torch.float64)  # inside [0, 255], 255 x
        x = (y / 255).view(1, 1, 1, -1).requires_grad_()
        (gradient,) = torch.autograd.grad(Rounding8Bit(mode)(x).sum(), x)
        torch.testing.assert_close(gradient.flatten(), slope(y - torch.round(y)))

    def test_sine_gradient_averages_one(self):
        x = torch.linspace(0, 1, 255 * 64 + 1, dtype=torch.float64).view(1, 1, 1, -1).requires_grad_()
        (gradient,) = torch.autograd.grad(Rounding8Bit("sine")(x).sum(), x)
        assert abs(gradient.mean().item() - 1) < 1e-3

    def test_clamp_is_straight_through(self):
        x = torch.tensor([[[[-0.3, 1.4]]]], requires_grad=True)
        for mode in ("ste", "sine", "cubic"):
            y = Rounding8Bit(mode)(x)
            assert y.flatten().tolist() == [0.0, 1.0]
        assert torch.autograd.grad(Rounding8Bit("ste")(x).sum(), x)[0].flatten().tolist() == [1.0, 1.0]


class TestCombinators:
    def test_one_of_follows_its_probabilities(self):
        x = torch.full((4000, 1, 2, 2), 0.5)
        y = OneOf([Identity(), GaussianNoise(5)], probabilities=[0.2, 0.8])(x, seeded(0))
        noisy = (y != x).flatten(1).any(dim=1).float().mean().item()
        assert abs(noisy - 0.8) < 0.03  # binomial standard error 0.0063

    def test_one_of_uniform_by_default(self):
        x = torch.full((3000, 1, 1, 1), 0.5)
        channels = [Identity(), GaussianNoise(50), Sequence(GaussianNoise(50), Rounding8Bit())]
        y = OneOf(channels)(x, seeded(1))
        identity = (y == x).flatten().float().mean().item()
        rounded = ((y != x) & (y * 255 == torch.round(y * 255))).flatten().float().mean().item()
        assert abs(identity - 1 / 3) < 0.035 and abs(rounded - 1 / 3) < 0.035

    def test_one_of_keeps_each_image_in_place(self):
        x = images(2, 64, 3, 4, 4)
        y = OneOf([Identity(), Rounding8Bit()])(x, seeded(2))
        kept = [torch.equal(y[i], x[i]) for i in range(64)]
        rounded = [torch.equal(y[i], quantize_8bit(x[i])) for i in range(64)]
        assert all(k != r for k, r in zip(kept, rounded))
        assert 10 < sum(kept) < 54

    def test_one_of_zero_probability_never_picked(self):
        x = images(3, 200, 1, 2, 2)
        y = OneOf([GaussianNoise(10), Identity()], probabilities=[0.0, 1.0])(x, seeded(3))
        assert torch.equal(y, x)

    def test_sequence_applies_in_order(self):
        x = images(4, 2, 3, 8, 8)
        then_round = Sequence(GaussianNoise(5), Rounding8Bit())(x, seeded(4))
        assert torch.equal(then_round, quantize_8bit(then_round))
        round_then = Sequence(Rounding8Bit(), GaussianNoise(5))(x, seeded(4))
        assert not torch.equal(round_then, quantize_8bit(round_then))
        by_hand = Rounding8Bit()(GaussianNoise(5)(x, seeded(4)))
        assert torch.equal(then_round, by_hand)


class TestSpecs:
    @pytest.mark.parametrize(
        ("spec", "cls", "strength"),
        [
            ("noise:2", GaussianNoise, (2, 2)),
            ("noise:1-10", GaussianNoise, (1, 10)),
            ("resize:0.75", Resize, (0.75, 0.75)),
            (" Resize:.5-0.9 ", Resize, (0.5, 0.9)),
        ],
    )
    def test_training_parser(self, spec, cls, strength):
        built = train.channel(spec)
        assert type(built) is cls and built.strength == strength

    def test_training_parser_jpeg(self):
        pytest.importorskip("kornia")
        assert train.channel("jpeg:90").quality == (90, 90)
        assert train.channel("JPEG:50-95").quality == (50, 95)

    @pytest.mark.parametrize("spec", ["round", "png", "lossless"])
    def test_lossless_specs(self, spec):
        built = train.channel(spec)
        assert type(built) is Rounding8Bit and built.mode == "ste"
        channel = real.parse(spec)
        assert channel.name == "round"
        x = images(0, 3, 8, 8)
        assert torch.equal(channel(x), quantize_8bit(x))

    @pytest.mark.parametrize(
        ("spec", "name"),
        [("jpeg:90", "jpeg:90"), ("WEBP:80", "webp:80"), ("noise:2.5", "noise:2.5"), ("resize:0.75", "resize:0.75")],
    )
    def test_evaluation_parser_names(self, spec, name):
        channel = real.parse(spec)
        assert channel.name == name == real.read_spec(spec).name
        assert channel(images(1, 3, 16, 16), seeded(0)).shape == (3, 16, 16)

    def test_evaluation_parser_builds_the_named_channel(self):
        x = images(2, 2, 3, 16, 16)
        assert torch.equal(real.parse("jpeg:60")(x), real.jpeg(x, 60))
        assert torch.equal(real.parse("webp:60")(x), real.webp(x, 60))
        assert torch.equal(real.parse("resize:0.5")(x), real.resize(x, 0.5))
        assert torch.equal(real.parse("noise:3")(x, seeded(1)), real.gaussian_noise(x, 3, seeded(1)))


# --------------------------------------------------------------------------
# The real channels
# --------------------------------------------------------------------------


def pillow_round_trip(image: torch.Tensor, **save) -> torch.Tensor:
    """Encode ``(3, H, W)`` with Pillow's ``save`` options, decode; by hand, to check the module."""
    array = (image * 255).round().byte().permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, **save)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).float() / 255


class TestRealChannels:
    @pytest.mark.parametrize(
        ("function", "kwargs"),
        [
            (real.jpeg, {"quality": 70}),
            (real.webp, {"quality": 70}),
            (real.resize, {"scale": 0.6}),
            (real.gaussian_noise, {"sigma": 3.0}),
            (real.round8, {}),
        ],
    )
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_shape_dtype_levels(self, function, kwargs, dtype):
        x = images(0, 2, 3, 20, 28, dtype=dtype) * 1.2 - 0.1  # overshoots: clamped like a file
        for image in (x, x[0]):
            y = function(image, **kwargs)
            assert y.shape == image.shape and y.dtype == dtype
            assert torch.equal(y, quantize_8bit(y))  # 8-bit values in [0, 1]

    def test_jpeg_is_pillow_420(self):
        x = images(1, 3, 24, 40)
        expected = pillow_round_trip(quantize_8bit(x), format="JPEG", quality=80)  # Pillow's default subsampling
        assert torch.equal(real.jpeg(x, 80), expected)
        explicit = pillow_round_trip(quantize_8bit(x), format="JPEG", quality=80, subsampling="4:2:0")
        assert torch.equal(real.jpeg(x, 80), explicit)
        full_chroma = pillow_round_trip(quantize_8bit(x), format="JPEG", quality=80, subsampling="4:4:4")
        assert not torch.equal(real.jpeg(x, 80), full_chroma)

    def test_webp_is_pillow_lossy(self):
        x = images(2, 3, 24, 40)
        assert torch.equal(real.webp(x, 50), pillow_round_trip(quantize_8bit(x), format="WEBP", quality=50))

    def test_batch_is_each_image(self):
        x = images(3, 3, 3, 16, 24)
        for function in (lambda v: real.jpeg(v, 60), lambda v: real.webp(v, 60), lambda v: real.resize(v, 0.5)):
            batch = function(x)
            for i in range(3):
                assert torch.equal(batch[i], function(x[i]))

    def test_round8_is_a_png_round_trip(self):
        x = images(4, 3, 8, 12)
        assert torch.equal(real.round8(x), decode_image(encode_image(x)))

    def test_quality_orders_the_loss(self, photos):
        for function in (real.jpeg, real.webp):
            scores = [psnr(function(photos, q), photos).mean().item() for q in (30, 60, 95)]
            assert scores[0] < scores[1] < scores[2], (function.__name__, scores)

    def test_noise_statistics_and_seed(self):
        x = torch.full((2, 3, 64, 64), 128 / 255)
        y = real.gaussian_noise(x, 6.0, seeded(0))
        assert torch.equal(y, quantize_8bit(y))
        residual = torch.round(y * 255) - 128
        assert abs(residual.std().item() - math.sqrt(36 + 1 / 12)) < 0.15  # rounding adds 1/12 level^2
        assert abs(residual.mean().item()) < 0.1
        assert torch.equal(y, real.gaussian_noise(x, 6.0, seeded(0)))
        assert not torch.equal(y, real.gaussian_noise(x, 6.0, seeded(1)))
        assert torch.equal(real.gaussian_noise(x, 0.0), quantize_8bit(x))

    def test_resize_by_pillow_bicubic(self):
        x = images(5, 1, 1, 10, 14)
        levels = (quantize_8bit(x[0, 0]) * 255).round().byte().numpy()
        small = Image.fromarray(levels).resize((7, 5), Image.Resampling.BICUBIC)  # scaled_size(14, .5), (10, .5)
        expected = np.asarray(small.resize((14, 10), Image.Resampling.BICUBIC))
        assert torch.equal(real.resize(x, 0.5)[0, 0], torch.from_numpy(expected.copy()).float() / 255)
        assert torch.equal(real.resize(x, 1.0), quantize_8bit(x))
        assert not torch.equal(real.resize(x, 0.5, filter="lanczos"), real.resize(x, 0.5))

    def test_scaled_size(self):
        assert [real.scaled_size(100, s) for s in (0.5, 0.755, 0.004, 1.0)] == [50, 76, 1, 100]
        assert real.scaled_size(5, 0.5) == 3  # half up


# --------------------------------------------------------------------------
# Each stand-in against the real channel it replaces, on photographs
# --------------------------------------------------------------------------

# Mean PSNR (dB) between stand-in and real output on the four 128x128 Kodak crops of `photos`, measured with
# kornia 0.8.2, Pillow 13 (libjpeg-turbo) and torch 2.13 on the CPU; floors are 1.3 to 1.9 dB below.
JPEG_FLOORS = {50: 41.0, 75: 41.5, 90: 43.5, 95: 44.5}  # measured 42.32, 43.16, 44.88, 46.02
RESIZE_FLOORS = {0.5: 52.5, 0.75: 52.5}  # bicubic, measured 54.35, 54.42 (bilinear 39.62, 40.73)


class TestFidelity:
    @pytest.mark.parametrize("quality", list(JPEG_FLOORS))
    def test_jpeg_close_to_pillow(self, photos, quality):
        pytest.importorskip("kornia")
        surrogate = JPEG(quality)(photos)
        pillow = real.jpeg(photos, quality)
        agreement = psnr(surrogate, pillow).mean().item()
        loss_surrogate, loss_real = psnr(surrogate, photos).mean().item(), psnr(pillow, photos).mean().item()
        print(
            f"jpeg:{quality} surrogate vs Pillow {agreement:.2f} dB; vs input: surrogate {loss_surrogate:.2f} dB, "
            f"Pillow {loss_real:.2f} dB"
        )
        assert agreement >= JPEG_FLOORS[quality]
        assert abs(loss_surrogate - loss_real) < 2.0  # the stand-in loses about as much as the real codec
        # Closer to the real JPEG than the input is: it models the codec, not only passes the image through.
        assert agreement > loss_real + 3

    @pytest.mark.parametrize("scale", list(RESIZE_FLOORS))
    def test_resize_close_to_pillow(self, photos, scale):
        pillow = real.resize(photos, scale)
        bicubic = psnr(Resize(scale)(photos), pillow).mean().item()
        bilinear = psnr(Resize(scale, mode="bilinear")(photos), pillow).mean().item()
        print(f"resize:{scale} bicubic surrogate vs Pillow {bicubic:.2f} dB (bilinear {bilinear:.2f} dB)")
        assert bicubic >= RESIZE_FLOORS[scale]
        assert bilinear < bicubic - 5  # the default mode is the one that matches

    @pytest.mark.parametrize("sigma", [2.0, 10.0])
    def test_noise_statistics_match(self, photos, sigma):
        """Stand-in noise, rounded like a file, has the real channel's residual distribution."""
        surrogate = Sequence(GaussianNoise(sigma), Rounding8Bit())(photos, seeded(0))
        pillow = real.gaussian_noise(photos, sigma, seeded(1))
        residuals = [(y - photos) * 255 for y in (surrogate, pillow)]
        stds = [r.std().item() for r in residuals]
        print(f"noise:{sigma:g} residual std: surrogate {stds[0]:.3f}, real {stds[1]:.3f} grey levels")
        assert abs(stds[0] / stds[1] - 1) < 0.02
        assert all(abs(r.mean().item()) < 0.05 for r in residuals)
        quantiles = torch.tensor([0.01, 0.1, 0.5, 0.9, 0.99])
        q = [torch.quantile(r.flatten()[::7], quantiles) for r in residuals]
        assert (q[0] - q[1]).abs().max() <= 1.0  # within one grey level at every quantile

    @pytest.mark.parametrize("mode", ["ste", "sine"])
    def test_rounding_is_the_real_rounding(self, photos, mode):
        x = photos + images(6, *photos.shape) / 255  # off the 8-bit grid
        assert torch.equal(Rounding8Bit(mode)(x), real.round8(x))


# --------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------

X = torch.rand(2, 3, 8, 8)

BAD = [
    (lambda: JPEG(0), ValueError, "quality must be an integer in [1, 100], got 0"),
    (lambda: JPEG(90.5), ValueError, "quality must be an integer in [1, 100], got 90.5"),
    (lambda: JPEG((95, 50)), ValueError, "quality must be a (low, high) pair with low <= high, got (95, 50)"),
    (lambda: GaussianNoise(-1), ValueError, "sigma must be a finite number >= 0, got -1"),
    (lambda: GaussianNoise(math.nan), ValueError, "sigma must be a finite number >= 0, got nan"),
    (lambda: GaussianNoise((1, 2, 3)), ValueError, "sigma must be a number or a (low, high) pair, got (1, 2, 3)"),
    (lambda: GaussianNoise("2"), ValueError, "sigma must be a finite number >= 0, got '2'"),
    (lambda: Resize(0), ValueError, "scale must be a finite number in (0, 1], got 0"),
    (lambda: Resize((0.5, 1.5)), ValueError, "scale must be a finite number in (0, 1], got 1.5"),
    (lambda: Resize(0.5, mode="lanczos"), ValueError, "mode must be one of ('bicubic', 'bilinear', 'area', 'nearest')"),
    (lambda: Rounding8Bit("floor"), ValueError, "mode must be one of ('ste', 'sine', 'cubic'), got 'floor'"),
    (lambda: OneOf([]), ValueError, "channels of a OneOf must hold at least one channel, got none"),
    (lambda: OneOf([Identity(), "jpeg"]), TypeError, "channels[1] must be an invhide.training.channels.Channel"),
    (lambda: OneOf([Identity(), Identity()], [0.5, 0.6]), ValueError, "probabilities must sum to 1, got [0.5, 0.6]"),
    (lambda: OneOf([Identity()], [0.5, 0.5]), ValueError, "probabilities must hold one number per channel, 1, got 2"),
    (lambda: OneOf([Identity(), Identity()], [-0.5, 1.5]), ValueError, "probabilities must be a finite number >= 0"),
    (lambda: OneOf([Identity()], 1.0), TypeError, "probabilities must be a sequence of numbers, got float"),
    (lambda: Sequence(), ValueError, "channels of a Sequence must hold at least one channel"),
    (lambda: Sequence(torch.nn.Identity()), TypeError, "channels[0] must be an invhide.training.channels.Channel"),
    (lambda: Identity()(X[0]), ValueError, "x must have shape (B, C, H, W), got shape (3, 8, 8)"),
    (lambda: Identity()(X.to(torch.uint8)), TypeError, "x must be a floating-point tensor, got dtype torch.uint8"),
    (lambda: GaussianNoise(1)(X, generator=0), TypeError, "generator must be a torch.Generator or None, got 0"),
    (
        lambda: GaussianNoise(1).apply(X, torch.ones(3)),
        ValueError,
        "strength must hold one strength per image, 2, got 3",
    ),
    (lambda: GaussianNoise(1).apply(X, torch.tensor([1.0, -1.0])), ValueError, "strength must lie in [0, inf), got -1"),
    (lambda: Resize(1).apply(X, torch.tensor([0.5, 0.0])), ValueError, "strength must lie in (0, 1], got 0 to 0.5"),
    (lambda: GaussianNoise(1).sample(-1), ValueError, "batch_size must be an integer >= 0, got -1"),
    (lambda: train.channel("webp:80"), ValueError, "spec 'webp:80' names WebP, which has no differentiable stand-in"),
    (lambda: train.channel("jpeg:101"), ValueError, "spec 'jpeg:101': quality must be an integer in [1, 100], got 101"),
    (lambda: train.channel("resize:2"), ValueError, "spec 'resize:2': scale must be a finite number in (0, 1], got 2"),
    (lambda: train.channel("blur:3"), ValueError, "spec 'blur:3' names an unknown channel 'blur'; expected jpeg:Q"),
    (lambda: train.channel("jpeg"), ValueError, "spec 'jpeg' needs a strength written jpeg:Q or jpeg:LOW-HIGH"),
    (lambda: train.channel("noise:-1"), ValueError, "spec 'noise:-1' needs a strength written noise:S"),
    (lambda: train.channel("noise:1e-3"), ValueError, "spec 'noise:1e-3' needs a strength"),
    (lambda: train.channel("round:3"), ValueError, "spec 'round:3' gives a strength to round, which takes none"),
    (lambda: train.channel("jpeg:95-50"), ValueError, "spec 'jpeg:95-50' gives a reversed range 95-50"),
    (lambda: train.channel(90), TypeError, "spec must be a string such as 'jpeg:90', got int"),
    (lambda: real.parse("jpeg:50-95"), ValueError, "spec 'jpeg:50-95' gives a range; evaluation measures one strength"),
    (lambda: real.parse("webp:101"), ValueError, "spec 'webp:101': quality must be an integer in [0, 100], got 101"),
    (lambda: real.parse("noise"), ValueError, "spec 'noise' needs a strength written noise:S or noise:LOW-HIGH"),
    (lambda: real.jpeg(X, 0), ValueError, "quality must be an integer in [1, 100], got 0"),
    (lambda: real.jpeg(X[:, :1], 90), ValueError, "image must be RGB (3 channels) for JPEG, got 1"),
    (lambda: real.webp(X, 101), ValueError, "quality must be an integer in [0, 100], got 101"),
    (lambda: real.webp(X[:, :2], 90), ValueError, "image must be RGB (3 channels) for WebP, got 2"),
    (lambda: real.gaussian_noise(X, -1), ValueError, "sigma must be a finite number >= 0, got -1"),
    (lambda: real.gaussian_noise(X, 1, 7), TypeError, "generator must be a torch.Generator or None, got 7"),
    (lambda: real.resize(X, 0), ValueError, "scale must be a finite number in (0, 1], got 0"),
    (lambda: real.resize(X, 0.5, filter="box"), ValueError, "filter must be one of ('bicubic', 'bilinear', 'lanczos')"),
    (lambda: real.round8(X[0, 0]), ValueError, "image must have shape (C, H, W) or (B, C, H, W), got (8, 8)"),
    (lambda: real.round8(X.numpy()), TypeError, "image must be a torch.Tensor, got ndarray"),
    (lambda: real.jpeg(X * math.nan, 90), ValueError, "NaN or infinite"),
]


@pytest.mark.parametrize(("call", "error", "message"), BAD, ids=[case[2][:48] for case in BAD])
def test_bad_arguments(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value)


def test_jpeg_refuses_grey():
    pytest.importorskip("kornia")
    with pytest.raises(ValueError, match=r"x must be RGB \(3 channels\) for a JPEG, got 1"):
        JPEG(90)(X[:, :1])


def test_missing_kornia_is_a_clear_import_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "kornia", None)  # makes "import kornia" raise ImportError
    monkeypatch.setitem(sys.modules, "kornia.enhance", None)
    with pytest.raises(ImportError, match=r'needs kornia: pip install "invhide\[jpeg\]"'):
        JPEG(90)


# --------------------------------------------------------------------------
# invhide eval --channel: the real channels in Table 2
# --------------------------------------------------------------------------


def test_evaluate_measures_the_stego_after_each_real_channel():
    from invhide import InvertibleHider
    from invhide.evaluation.channels import parse
    from invhide.evaluation.metrics import evaluate, psnr
    from invhide.nn.functional import quantize_8bit
    from invhide.testing import randomize_

    model = randomize_(InvertibleHider(num_blocks=1, subnet="conv"), seed=0, gain=0.05).eval()
    cover, secret = torch.rand(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    channels = [parse("jpeg:90"), parse("noise:2")]
    result = evaluate(model, [(cover, secret)], channels=channels)
    drawn = evaluate(model, [(cover, secret)], channels=channels, generator=torch.Generator().manual_seed(0))
    assert result.stego_settings == ("float", "8-bit", "jpeg:90", "noise:2")
    with torch.no_grad():
        stego, lost = model.hide(cover, secret)
        received = parse("jpeg:90")(quantize_8bit(stego))
        expected = psnr(model.reveal(received, z=torch.zeros_like(lost)), secret)  # z zeros without a generator
        z = torch.randn(lost.shape, generator=torch.Generator().manual_seed(0))
        expected_drawn = psnr(model.reveal(received, z=z), secret)
    assert torch.allclose(result.per_image("secret/recovery", "psnr", stego="jpeg:90"), expected.double(), atol=1e-4)
    assert torch.allclose(
        drawn.per_image("secret/recovery", "psnr", stego="jpeg:90"), expected_drawn.double(), atol=1e-4
    )
    assert not torch.allclose(expected, expected_drawn)
    assert torch.allclose(result.per_image("cover/stego", "psnr", stego="jpeg:90"), psnr(received, cover).double())
    assert "then jpeg:90 for real" in result.format()
    with pytest.raises(ValueError, match="twice"):
        evaluate(model, [(cover, secret)], channels=[parse("jpeg:90"), parse("JPEG:90")])


def test_eval_command_takes_channels_and_refuses_bad_ones(tmp_path, capsys):
    from invhide import InvertibleHider, save
    from invhide.cli.main import main
    from invhide.io.images import write_image
    from invhide.testing import randomize_

    save(randomize_(InvertibleHider(num_blocks=1, subnet="conv"), seed=0, gain=0.05), tmp_path / "m")
    for i in range(2):
        write_image(torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(i)), tmp_path / f"{i}.png")
    argv = ["eval", str(tmp_path), "--model", str(tmp_path / "m"), "--size", "32"]
    assert main([*argv, "--channel", "webp:80", "--channel", "resize:0.75"]) == 0
    out = capsys.readouterr().out
    assert "then webp:80 for real" in out and "then resize:0.75 for real" in out
    with pytest.raises(SystemExit):
        main([*argv, "--channel", "jpeg:50-95"])
    assert "--channel" in capsys.readouterr().err


# --------------------------------------------------------------------------
# Training through channels: TrainConfig.channels, HidingStep, invhide train --channel
# --------------------------------------------------------------------------


def _fit(config, seed=0):
    from invhide import InvertibleHider
    from invhide.training import Trainer
    from invhide.training.losses import HidingLoss

    torch.manual_seed(seed)
    hider = InvertibleHider(num_blocks=1, subnet="conv")
    data = list(torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(seed)))
    result = Trainer(hider, HidingLoss.reference_code(reduction="mean"), data, config, progress=False).fit()
    return [record["loss"] for record in result.history if record.get("kind") == "train"]


@pytest.mark.parametrize(("specs", "files"), [
    ((), {"lossless"}),
    (("noise:1-10", "resize:0.5", "round"), {"lossless"}),
    (("JPEG:70-95", "noise:2"), {"lossless", "jpeg"}),
])  # fmt: skip
def test_a_model_trained_through_jpeg_says_so_in_its_file(tmp_path, specs, files):
    """Issue 22: what the trainer trained the reveal for reaches the saved model, so invhide reveal need not warn."""
    from invhide import InvertibleHider
    from invhide.io import checkpoint
    from invhide.models.inference import trained_channels
    from invhide.training import TrainConfig, Trainer
    from invhide.training.losses import HidingLoss

    hider = InvertibleHider(num_blocks=1, subnet="conv")
    hider.trained_channels = {"lossless", "webp"}  # what a run says replaces what the model said before it
    config = TrainConfig(steps=1, batch_size=2, crop=16, tensorboard=False, channels=specs)
    data = list(torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    Trainer(hider, HidingLoss.reference_code(reduction="mean"), data, config, progress=False).fit()
    assert trained_channels(hider) == files
    assert trained_channels(checkpoint.load(checkpoint.save(hider, tmp_path / "m.safetensors"))) == files


def test_train_config_channels_imply_rounding_and_are_checked():
    from invhide.training import TrainConfig

    config = TrainConfig(channels=["noise:1-10", "resize:0.5-0.9"])
    assert config.channels == ("noise:1-10", "resize:0.5-0.9") and config.quantize and config.quantize_at(0)
    later = TrainConfig(channels=("noise:2",), quantize_from=5)
    assert not later.quantize and not later.quantize_at(4) and later.quantize_at(5)
    with pytest.raises(ValueError, match="channels 'webp:80' names WebP"):
        TrainConfig(channels=("webp:80",))
    with pytest.raises(ValueError, match="channels must be a sequence"):
        TrainConfig(channels="noise:2")
    assert TrainConfig(**dataclasses.asdict(config)) == config  # as a checkpoint's config comes back


def test_training_through_channels_is_seeded_and_is_not_plain_rounding():
    from invhide.training import TrainConfig

    settings = {"steps": 3, "batch_size": 2, "crop": 16, "lr": 1e-3, "tensorboard": False, "log_every": 1}
    through = TrainConfig(**settings, channels=("noise:5-10", "resize:0.5"))
    first, again = _fit(through), _fit(through)
    assert first == again and len(first) == 3
    assert first[1:] != _fit(TrainConfig(**settings, quantize=True))[1:]


def test_hiding_step_reveals_from_the_channel_and_passes_gradients():
    from invhide import InvertibleHider
    from invhide.testing import randomize_
    from invhide.training.channels import GaussianNoise
    from invhide.training.step import HidingStep

    seen = []

    class Recording(GaussianNoise):
        def forward(self, x, generator=None):
            seen.append((x.detach().clone(), generator))
            return super().forward(x, generator=generator)

    model = randomize_(InvertibleHider(num_blocks=1, subnet="conv"), seed=1, gain=0.5)
    step = HidingStep(model, quantize=True, channel=Recording((20, 20)))
    cover, secret, z = torch.rand(3, 2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    step.generator = torch.Generator().manual_seed(3)
    stego, _, recovered = step(cover, secret, z)
    assert len(seen) == 1 and torch.equal(seen[0][0], stego.detach()) and seen[0][1] is step.generator
    plain = HidingStep(model, quantize=True)(cover, secret, z)[2]
    assert not torch.allclose(recovered, plain)
    recovered.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_train_command_channel_option(tmp_path, capsys, monkeypatch):
    import invhide.training.recipes as recipes
    from invhide.cli.main import main
    from invhide.io.images import write_image

    for i in range(4):
        write_image(torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(i)), tmp_path / f"{i}.png")
    seen = {}

    def capture(chosen, *args, **kwargs):
        seen["config"] = chosen.config
        raise KeyboardInterrupt  # stop before any training

    monkeypatch.setattr(recipes, "train_and_evaluate", capture)
    argv = ["train", "--recipe", "quick", "--train-dir", str(tmp_path), "--val-dir", str(tmp_path), "--eval-size",
            "16", "--crop", "16", "--steps", "4", "--out", str(tmp_path / "run")]  # fmt: skip
    main([*argv, "--channel", "noise:1-10", "--channel", "resize:0.75"])
    assert seen["config"].channels == ("noise:1-10", "resize:0.75") and seen["config"].quantize
    main([*argv, "--channel", "jpeg:70-95", "--quantize-from", "2", "--concealing", "16"])
    assert seen["config"].weight_schedule == ((2, "concealing", 16.0),) and seen["config"].quantize_from == 2
    main([*argv[:2], "cpu", *argv[3:], "--quantize-from", "0", "--concealing", "10"])  # replaces the recipe's 4
    assert seen["config"].weight_schedule == ((0, "concealing", 10.0),)
    with pytest.raises(SystemExit):
        main([*argv, "--channel", "webp:80"])
    assert "argument --channel: spec 'webp:80' names WebP" in capsys.readouterr().err
