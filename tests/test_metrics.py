import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import images

import invhide
from invhide.errors import InputError
from invhide.evaluation.metrics import (
    CHANNELS,
    METRICS,
    ROWS,
    SSIM_WINDOW,
    Evaluation,
    evaluate,
    mae,
    psnr,
    rgb_to_y,
    rmse,
    ssim,
)
from invhide.nn.functional import quantize_8bit
from invhide.testing import randomize_

skimage_metrics = pytest.importorskip("skimage.metrics", reason="the metric comparisons need scikit-image")
skimage_color = pytest.importorskip("skimage.color", reason="the metric comparisons need scikit-image")

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak24"
SSIM_TOLERANCE = 1e-10


def to_numpy(x):
    """(3, H, W) in [0, 1] -> (H, W, 3) float64 on 0..255."""
    return x.double().permute(1, 2, 0).numpy() * 255


def smooth_images(seed, batch, height, width):
    """Random smooth images in [0, 1]: noise upsampled bilinearly, plus a little fine noise."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, height // 8 + 2, width // 8 + 2, generator=generator, dtype=torch.float64)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    fine = 0.03 * torch.randn(batch, 3, height, width, generator=generator, dtype=torch.float64)
    return (smooth + fine).clamp(0, 1)


def kodak_crops(height=96, width=128):
    """Centre crops of four Kodak images, (4, 3, H, W) float64 in [0, 1]."""
    if not KODAK.is_dir():
        pytest.skip(f"Kodak images not found at {KODAK} (the shared data folder is absent)")
    from PIL import Image

    crops = []
    for name in ("kodim01.png", "kodim05.png", "kodim13.png", "kodim23.png"):
        array = np.asarray(Image.open(KODAK / name).convert("RGB"), dtype=np.float64) / 255
        top, left = (array.shape[0] - height) // 2, (array.shape[1] - width) // 2
        crops.append(torch.from_numpy(array[top : top + height, left : left + width]).permute(2, 0, 1))
    return torch.stack(crops)


def skimage_ssim(x, y, channel):
    """scikit-image's SSIM with the settings of Wang et al. 2004, per image."""
    values = []
    for a, b in zip(x, y):
        if channel == "y":
            a = rgb_to_y(a[None].double())[0, 0].numpy()
            b = rgb_to_y(b[None].double())[0, 0].numpy()
            axis = None
        else:
            a, b, axis = to_numpy(a), to_numpy(b), 2
        values.append(
            skimage_metrics.structural_similarity(
                a,
                b,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=255,
                channel_axis=axis,
            )
        )
    return torch.tensor(values, dtype=torch.float64)


class TestConversions:
    def test_y_by_hand(self):
        x = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64).reshape(1, 3, 1, 1)
        expected = 16 + 65.481 * 1.0 + 128.553 * 0.5 + 24.966 * 0.25
        assert rgb_to_y(x).item() == pytest.approx(expected, rel=1e-15)

    def test_y_matches_skimage_rgb2ycbcr(self):
        x = images(0, 2, 3, 9, 7, dtype=torch.float64)
        y = rgb_to_y(x)
        assert y.shape == (2, 1, 9, 7)
        for image, luma in zip(x, y):
            expected = skimage_color.rgb2ycbcr(image.permute(1, 2, 0).numpy())[..., 0]
            np.testing.assert_allclose(luma[0].numpy(), expected, rtol=1e-12)

    def test_y_range(self):
        black_white = torch.stack([torch.zeros(3, 1, 1), torch.ones(3, 1, 1)])
        assert rgb_to_y(black_white).flatten().tolist() == pytest.approx([16.0, 235.0])

    def test_quantize_values(self):
        x = torch.tensor([-0.5, 0.0, 0.2, 0.9999, 1.0, 1.3, 0.3 / 255, 0.7 / 255], dtype=torch.float64)
        levels = quantize_8bit(x) * 255
        assert levels.tolist() == pytest.approx([0.0, 0.0, 51.0, 255.0, 255.0, 255.0, 0.0, 1.0], abs=1e-12)

    def test_quantize_rounds_halves_to_even(self):
        x = torch.tensor([0.5, 0.5 / 255 * 5, 0.5 / 255], dtype=torch.float64)
        assert (x * 255).tolist() == [127.5, 2.5, 0.5], "precondition: exact halves"
        assert (quantize_8bit(x) * 255).round().tolist() == [128.0, 2.0, 0.0]

    @pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
    def test_quantize_is_on_the_8bit_grid(self, dtype):
        x = images(1, 2, 3, 8, 8, dtype=torch.float64) * 1.4 - 0.2
        q = quantize_8bit(x.to(dtype))
        assert q.dtype == dtype and q.shape == x.shape
        levels = q.double() * 255
        torch.testing.assert_close(levels, levels.round(), rtol=0, atol=0.1 if dtype == torch.float16 else 1e-4)
        assert q.min() >= 0 and q.max() <= 1
        assert torch.equal(quantize_8bit(q), q)
        # The nearest level: never more than half a level away inside [0, 1].
        inside = (x >= 0) & (x <= 1)
        if dtype == torch.float64:
            assert ((q - x).abs()[inside] <= 0.5 / 255 + 1e-12).all()

    def test_quantize_does_not_modify_its_input(self):
        x = torch.tensor([1.5, 0.3])
        quantize_8bit(x)
        assert x.tolist() == pytest.approx([1.5, 0.3])

    def test_quantize_matches_8bit_png_round_trip(self):
        from PIL import Image

        x = images(2, 1, 3, 8, 8)
        array = np.rint(x[0].permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8)
        back = torch.from_numpy(np.asarray(Image.fromarray(array)).copy()).permute(2, 0, 1)[None].float() / 255
        assert torch.equal(quantize_8bit(x), back)


class TestPSNRMAERMSE:
    def test_by_hand(self):
        x = torch.zeros(2, 3, 2, 2, dtype=torch.float64)
        y = x.clone()
        y[0, 0, 0, 0] = 10 / 255  # one red value off by 10 levels
        # RGB: MSE = 100 / 12, MAE = 10 / 12. Y: that pixel off by 65.481 * 10 / 255, over 4 pixels.
        torch.testing.assert_close(psnr(x, y), torch.tensor([10 * math.log10(255**2 * 12 / 100), math.inf]).double())
        torch.testing.assert_close(mae(x, y), torch.tensor([10 / 12, 0.0]).double())
        torch.testing.assert_close(rmse(x, y), torch.tensor([math.sqrt(100 / 12), 0.0]).double())
        dy = 65.481 * 10 / 255
        torch.testing.assert_close(psnr(x, y, "y")[0].item(), 10 * math.log10(255**2 * 4 / dy**2))
        torch.testing.assert_close(mae(x, y, "y")[0].item(), dy / 4)
        torch.testing.assert_close(rmse(x, y, "y")[0].item(), math.sqrt(dy**2 / 4))

    def test_identical_images_give_inf_psnr(self):
        x = images(3, 2, 3, 8, 8)
        assert torch.isinf(psnr(x, x)).all() and torch.isinf(psnr(x, x, "y")).all()
        assert (mae(x, x) == 0).all() and (rmse(x, x) == 0).all()

    def test_psnr_matches_skimage(self):
        x = images(4, 3, 3, 16, 12)
        y = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(5))).clamp(0, 1)
        expected = [
            skimage_metrics.peak_signal_noise_ratio(to_numpy(a), to_numpy(b), data_range=255) for a, b in zip(x, y)
        ]
        np.testing.assert_allclose(psnr(x, y).numpy(), expected, rtol=1e-12)
        expected_y = [
            skimage_metrics.peak_signal_noise_ratio(
                rgb_to_y(a[None].double()).numpy(), rgb_to_y(b[None].double()).numpy(), data_range=255
            )
            for a, b in zip(x, y)
        ]
        np.testing.assert_allclose(psnr(x, y, "y").numpy(), expected_y, rtol=1e-12)

    @pytest.mark.parametrize("channel", CHANNELS)
    def test_mae_rmse_match_numpy(self, channel):
        x, y = images(6, 3, 3, 10, 8), images(7, 3, 3, 10, 8)
        for i, (a, b) in enumerate(zip(x, y)):
            if channel == "y":
                a, b = rgb_to_y(a[None].double())[0].numpy(), rgb_to_y(b[None].double())[0].numpy()
            else:
                a, b = to_numpy(a), to_numpy(b)
            assert mae(x, y, channel)[i].item() == pytest.approx(np.abs(a - b).mean(), rel=1e-12)
            assert rmse(x, y, channel)[i].item() == pytest.approx(np.sqrt(np.square(a - b).mean()), rel=1e-12)

    def test_values_outside_the_unit_range_are_not_clamped(self):
        x = torch.zeros(1, 3, 4, 4)
        y = x + 1.5  # a float stego may overshoot; clamping would make the error 255, not 382.5
        assert mae(x, y).item() == pytest.approx(382.5)
        assert psnr(x, y).item() == pytest.approx(20 * math.log10(255 / 382.5))

    @pytest.mark.parametrize("metric", [psnr, ssim, mae, rmse])
    def test_returns_float64_per_image(self, metric):
        x, y = images(8, 2, 3, 16, 16), images(9, 2, 3, 16, 16)
        value = metric(x, y)
        assert value.shape == (2,) and value.dtype == torch.float64

    @pytest.mark.parametrize("metric", [psnr, ssim, mae, rmse])
    def test_validation(self, metric):
        x = torch.zeros(1, 3, 16, 16)
        with pytest.raises(ValueError, match=r"same shape, got \(1, 3, 16, 16\) and \(1, 3, 16, 14\)"):
            metric(x, torch.zeros(1, 3, 16, 14))
        with pytest.raises(ValueError, match=r"\(B, C, H, W\), got shape \(3, 16, 16\)"):
            metric(x[0], x[0])
        with pytest.raises(ValueError, match=r"\(B, 3, H, W\), got shape \(1, 1, 16, 16\)"):
            metric(x[:, :1], x[:, :1], "y")  # Y needs RGB; "rgb" measures every channel as given
        assert metric(x[:, :1], x[:, :1]).shape == (1,)
        with pytest.raises(TypeError, match="floating-point"):
            metric(x, x.to(torch.uint8))
        with pytest.raises(TypeError, match=r"x must be a torch\.Tensor, got ndarray"):
            metric(x.numpy(), x)
        with pytest.raises(ValueError, match=r"channel must be one of \('rgb', 'y'\), got 'ycbcr'"):
            metric(x, x, "ycbcr")


class TestSSIM:
    # Apples to apples with scikit-image: its Gaussian filter (truncate 3.5 sigma) has radius
    # int(3.5 * 1.5 + 0.5) = 5, i.e. the same 11-tap window; it filters the whole image with reflect
    # padding and then crops (win_size - 1) // 2 = 5 pixels off every border before averaging, which
    # leaves exactly the (H - 10) x (W - 10) pixels whose window lies inside the image: the "valid"
    # region pytorch-msssim computes without padding. With use_sample_covariance=False neither applies
    # the N / (N - 1) correction, and both average the per-channel means over RGB.

    @pytest.mark.parametrize("channel", CHANNELS)
    def test_matches_skimage_on_smooth_images(self, channel):
        x = smooth_images(10, 3, 48, 40)
        noisy = (x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(11), dtype=x.dtype)).clamp(
            0, 1
        )
        other = smooth_images(12, 3, 48, 40)
        for y in (noisy, other, quantize_8bit(x)):
            ours, theirs = ssim(x, y, channel), skimage_ssim(x, y, channel)
            difference = (ours - theirs).abs().max().item()
            assert difference < SSIM_TOLERANCE, f"SSIM ({channel}) differs from scikit-image by {difference:.3e}"

    @pytest.mark.parametrize("channel", CHANNELS)
    def test_matches_skimage_on_kodak(self, channel):
        x = kodak_crops()
        y = x.roll(1, dims=0)  # different photographs: SSIM far from 1
        stego_like = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(13), dtype=x.dtype)
        for other in (y, stego_like):
            ours, theirs = ssim(x, other, channel), skimage_ssim(x, other, channel)
            difference = (ours - theirs).abs().max().item()
            assert difference < SSIM_TOLERANCE, f"SSIM ({channel}) differs from scikit-image by {difference:.3e}"
        assert ssim(x, stego_like, channel).min() > 0.9 > ssim(x, y, channel).max()

    def test_float32_input_is_measured_in_float64(self):
        x = smooth_images(14, 2, 32, 32)
        y = (x + 0.01).clamp(0, 1)
        difference = (ssim(x.float(), y.float()) - skimage_ssim(x.float(), y.float(), "rgb")).abs().max().item()
        assert difference < SSIM_TOLERANCE, f"float32 SSIM differs from scikit-image by {difference:.3e}"

    def test_identical_images(self):
        x = smooth_images(15, 2, 16, 16)
        torch.testing.assert_close(ssim(x, x), torch.ones(2, dtype=torch.float64))
        torch.testing.assert_close(ssim(x, x, "y"), torch.ones(2, dtype=torch.float64))

    def test_too_small(self):
        with pytest.raises(
            InputError, match=r"^x and y must be at least 11x11 \(SSIM's window\), got 10x16$"
        ) as caught:
            ssim(torch.zeros(1, 3, 10, 16), torch.zeros(1, 3, 10, 16))
        # The error carries its parts, so that a caller can name its own option.
        assert (caught.value.argument, SSIM_WINDOW) == ("x and y", 11)
        assert str(caught.value.renamed("--size")) == "--size must be at least 11x11 (SSIM's window), got 10x16"


# --------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------


def tiny_hider(seed=None):
    hider = invhide.InvertibleHider(num_blocks=1, subnet="conv")
    return hider if seed is None else randomize_(hider, seed, gain=0.3)


def pairs(seed, count, size=(16, 16), batched=False):
    data = images(seed, 2, count, 3, *size)
    if batched:
        return [(data[0], data[1])]
    return list(zip(data[0], data[1]))


class TestEvaluate:
    def test_identity_hider_gives_inf_cover_psnr(self):
        # A fresh hider is the identity; on images of multiples of 1/256 even float32 round-off vanishes
        # (the Haar sums and halvings are exact), so the float stego equals the cover bit for bit.
        hider = tiny_hider()
        levels = torch.randint(0, 256, (2, 3, 3, 16, 16), generator=torch.Generator().manual_seed(0))
        data = levels.float() / 256
        with torch.no_grad():
            stego, _ = hider.hide(data[0], data[1])
        assert torch.equal(stego, data[0])
        result = evaluate(hider, [(data[0], data[1])])
        assert math.isinf(result.mean("cover/stego", "psnr", "rgb", "float"))
        assert math.isinf(result.mean("cover/stego", "psnr", "y", "float"))
        assert result.mean("cover/stego", "ssim", "rgb", "float") == pytest.approx(1.0)
        assert result.mean("cover/stego", "mae", "rgb", "float") == 0.0
        # Levels k / 256 are not on the 8-bit grid, so the rounded stego differs a little.
        assert 45 < result.mean("cover/stego", "psnr", "rgb", "8-bit") < math.inf
        text = result.format()
        assert "inf" in text and "3 of 3 stego images equal their cover exactly" in text
        encoded = json.dumps(result.to_dict(), allow_nan=False)
        decoded = json.loads(encoded)["results"]["float"]["cover/stego"]["rgb"]["psnr"]
        assert decoded == {"mean": "inf", "per_image": ["inf", "inf", "inf"]}

    def test_numbers_equal_direct_computation(self):
        hider = tiny_hider(seed=1)
        data = pairs(2, 3)
        result = evaluate(hider, data, generator=torch.Generator().manual_seed(5))
        cover = torch.stack([c for c, _ in data])
        secret = torch.stack([s for _, s in data])
        with torch.no_grad():
            stego, lost = hider.hide(cover, secret)
            z = torch.randn(lost.shape, generator=torch.Generator().manual_seed(5))
            recovered = {"float": hider.reveal(stego, z=z), "8-bit": hider.reveal(quantize_8bit(stego), z=z)}
        shown = {"float": stego, "8-bit": quantize_8bit(stego)}
        functions = {"psnr": psnr, "ssim": ssim, "mae": mae, "rmse": rmse}
        for setting in ("float", "8-bit"):
            for channel in CHANNELS:
                for metric, function in functions.items():
                    expected = function(cover, shown[setting], channel)
                    torch.testing.assert_close(result.per_image("cover/stego", metric, channel, setting), expected)
                    expected = function(secret, recovered[setting], channel)
                    torch.testing.assert_close(result.per_image("secret/recovery", metric, channel, setting), expected)
        assert result.mean("cover/stego", "psnr") == pytest.approx(psnr(cover, stego).mean().item())
        assert not torch.equal(stego, quantize_8bit(stego))

    def test_structure_and_shapes(self):
        result = evaluate(tiny_hider(seed=2), pairs(3, 5), batch_size=2)
        assert result.num_pairs == 5 and result.sizes == ((16, 16),)
        assert result.stego_settings == ("float", "8-bit")
        assert len(result.values) == 2 * len(ROWS) * len(CHANNELS) * len(METRICS)
        for values in result.values.values():
            assert values.shape == (5,) and values.dtype == torch.float64
            assert torch.isfinite(values).all()
            assert not values.is_inference()
        table = result.format()
        for text in ("5 cover/secret pairs, 16x16", "not rounded", "rounded to 8 bits", "cover/stego", "PSNR"):
            assert text in table
        assert table.count("\nRGB") == 2 and table.count("\nY ") == 2
        data = result.to_dict(per_image=False)
        assert data["num_pairs"] == 5 and data["sizes"] == [[16, 16]]
        assert set(data["results"]) == {"float", "8-bit"}
        assert set(data["results"]["float"]["secret/recovery"]["y"]) == set(METRICS)
        assert "per_image" not in data["results"]["float"]["secret/recovery"]["y"]["psnr"]
        json.dumps(result.to_dict(), allow_nan=False)

    def test_batched_and_single_pairs_and_batch_size_agree(self):
        hider = tiny_hider(seed=3)
        single = evaluate(hider, pairs(4, 4), batch_size=4)
        batched = evaluate(hider, pairs(4, 4, batched=True), batch_size=4)
        small = evaluate(hider, pairs(4, 4), batch_size=1)
        for key, values in single.values.items():
            assert torch.equal(values, batched.values[key]), key
            if key[1] == "cover/stego":  # does not depend on how z is drawn
                torch.testing.assert_close(values, small.values[key], rtol=1e-6, atol=1e-6)

    def test_mixed_sizes(self):
        data = pairs(5, 2, size=(16, 16)) + pairs(6, 1, size=(12, 20)) + pairs(7, 1, size=(16, 16))
        result = evaluate(tiny_hider(seed=4), data, batch_size=8)
        assert result.num_pairs == 4 and result.sizes == ((16, 16), (12, 20))
        assert "16x16, 12x20" in result.format()

    def test_reproducible(self):
        hider = tiny_hider(seed=5)
        data = pairs(8, 3)
        first = evaluate(hider, data, generator=torch.Generator().manual_seed(1))
        again = evaluate(hider, data, generator=torch.Generator().manual_seed(1))
        other = evaluate(hider, data, generator=torch.Generator().manual_seed(2))
        default, default_again = evaluate(hider, data), evaluate(hider, data)
        key = ("float", "secret/recovery", "rgb", "psnr")
        assert all(torch.equal(first.values[k], again.values[k]) for k in first.values)
        assert all(torch.equal(default.values[k], default_again.values[k]) for k in default.values)
        assert not torch.equal(first.values[key], other.values[key])

    def test_only_one_setting(self):
        result = evaluate(tiny_hider(seed=6), pairs(9, 2), quantize=(True,))
        assert result.stego_settings == ("8-bit",)
        assert "not rounded" not in result.format()
        with pytest.raises(ValueError, match=r"stego must be one of \('8-bit',\), got 'float'"):
            result.mean("cover/stego", "psnr")

    @pytest.mark.parametrize("training", [True, False])
    def test_model_mode_restored(self, training):
        hider = tiny_hider(seed=7).train(training)
        first = next(iter(hider.nodes.values()))
        first.train(not training)  # a mixed state is restored module by module
        before = {name: p.clone() for name, p in hider.named_parameters()}
        seen = []

        original_hide = hider.hide

        def spy(cover, secret):
            seen.append((hider.training, torch.is_inference_mode_enabled()))
            return original_hide(cover, secret)

        hider.hide = spy
        evaluate(hider, pairs(10, 2))
        assert seen == [(False, True)]
        assert hider.training is training and first.training is (not training)
        assert all(torch.equal(p, before[name]) for name, p in hider.named_parameters())

    def test_mode_restored_after_an_error(self):
        hider = tiny_hider(seed=8).train()
        bad = [(torch.rand(3, 16, 16), torch.rand(3, 16, 16)), (torch.rand(3, 16, 16), torch.rand(3, 16, 16) + 1)]
        with pytest.raises(ValueError, match=r"secret of pair 1 must have values in \[0, 1\]"):
            evaluate(hider, bad, batch_size=1)
        assert hider.training

    def test_bad_arguments(self):
        hider = tiny_hider(seed=9)
        data = pairs(11, 1)
        with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
            evaluate(hider, data, batch_size=0)
        with pytest.raises(ValueError, match="quantize must hold False and/or True"):
            evaluate(hider, data, quantize=(True, True))
        with pytest.raises(ValueError, match="quantize must hold"):
            evaluate(hider, data, quantize=())
        with pytest.raises(TypeError, match="quantize must be a sequence of booleans"):
            evaluate(hider, data, quantize=True)
        with pytest.raises(ValueError, match="at least one cover/secret pair"):
            evaluate(hider, [])
        with pytest.raises(ValueError, match="one secret image, got num_secrets=2"):
            evaluate(invhide.InvertibleHider(num_secrets=2, num_blocks=1, subnet="conv"), data)
        with pytest.raises(ValueError, match="must have the same shape"):
            evaluate(hider, [(torch.rand(3, 16, 16), torch.rand(3, 16, 12))])
        with pytest.raises(
            ValueError, match=r"cover of pair 0 must have shape \(B, 3, H, W\), got shape \(1, 1, 16, 16\)"
        ):
            evaluate(hider, [(torch.rand(1, 16, 16), torch.rand(1, 16, 16))])
        with pytest.raises(TypeError, match="floating-point"):
            evaluate(hider, [(torch.zeros(3, 16, 16, dtype=torch.uint8),) * 2])
        with pytest.raises(TypeError, match=r"pair 0 must be a \(cover, secret\) pair"):
            evaluate(hider, [torch.rand(2, 3, 16, 16)])
        with pytest.raises(ValueError, match="the model is on cpu, not on the requested device meta"):
            evaluate(hider, data, device="meta")
        with pytest.raises(ValueError, match="generator must live on cpu"):
            evaluate(hider, data, generator=SimpleNamespace(device=torch.device("meta")))  # no meta generators

    def test_pairs_smaller_than_the_ssim_window_are_named(self):
        data = [*pairs(13, 1), (torch.rand(3, 16, 10), torch.rand(3, 16, 10))]
        with pytest.raises(
            InputError, match=r"^cover and secret of pair 1 must be at least 11x11 .*got 16x10$"
        ) as caught:
            evaluate(tiny_hider(seed=9), data)
        assert caught.value.argument == "cover and secret of pair 1" and "SSIM" in caught.value.problem

    def test_accessor_validation(self):
        result = evaluate(tiny_hider(seed=10), pairs(12, 1))
        with pytest.raises(ValueError, match="row must be one of"):
            result.mean("stego/cover", "psnr")
        with pytest.raises(ValueError, match="metric must be one of"):
            result.mean("cover/stego", "lpips")
        with pytest.raises(ValueError, match="channel must be one of"):
            result.mean("cover/stego", "psnr", channel="Y")

    def test_format_and_to_dict_of_a_handmade_evaluation(self):
        keys = [("float", row, channel, metric) for row in ROWS for channel in CHANNELS for metric in METRICS]
        values = {key: torch.tensor([30.0, 50.0], dtype=torch.float64) for key in keys}
        values[("float", "secret/recovery", "rgb", "psnr")] = torch.tensor([40.0, math.inf], dtype=torch.float64)
        result = Evaluation(values, 2, ((8, 8),), ("float",))
        assert result.mean("cover/stego", "psnr") == 40.0
        assert math.isinf(result.mean("secret/recovery", "psnr"))
        rgb_line = next(line for line in result.format().splitlines() if line.startswith("RGB"))
        assert rgb_line.split() == ["RGB", "40.00", "40.0000", "40.00", "40.00", "inf", "40.0000", "40.00", "40.00"]
        cell = result.to_dict()["results"]["float"]["secret/recovery"]["rgb"]["psnr"]
        assert cell == {"mean": "inf", "per_image": [40.0, "inf"]}
        assert "Evaluation(num_pairs=2" in repr(result)
