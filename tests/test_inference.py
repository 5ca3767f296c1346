import io

import numpy as np
import pytest
import torch
from helpers import images, shared
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from invhide import HiNet, InvertibleHider
from invhide.errors import InputError, InputTypeError
from invhide.evaluation.metrics import psnr
from invhide.io.datasets import evaluation_pairs
from invhide.models import inference, zoo
from invhide.models.inference import LOW_STEGO_PSNR, fit_secret, hide, hides_nothing, pad_to, reveal, tiles
from invhide.nn import subnets
from invhide.nn.functional import quantize_8bit
from invhide.testing import randomize_


def model(wavelet="haar", blocks=2):
    return randomize_(InvertibleHider(num_blocks=blocks, subnet=subnets.conv(hidden=8, depth=2), wavelet=wavelet), 0)


@settings(max_examples=25)
@given(height=st.integers(1, 21), width=st.integers(1, 21), wavelet=st.sampled_from(["haar", "db2"]))
def test_any_size_gives_the_padded_computation_whole(height, width, wavelet):
    """The stego is the padded cover's, padding included: even sides of at least the wavelet's minimum."""
    hider = model(wavelet)
    cover, secret = images(height, 3, height, width), images(width, 3, height, width)
    stego = hide(hider, cover, secret)
    padded_cover, size = pad_to(cover[None], hider.min_size)
    padded_secret, _ = pad_to(secret[None], hider.min_size)
    assert (
        size == (height, width) and padded_cover.shape[-1] % 2 == 0 and min(padded_cover.shape[-2:]) >= hider.min_size
    )
    assert stego.shape == padded_cover.shape[1:] == (3, *inference.padded_size((height, width), hider.min_size))
    with torch.no_grad():
        expected, _ = hider.hide(padded_cover, padded_secret)
    assert torch.equal(stego, expected[0])
    recovered = reveal(hider, stego.clamp(0, 1), generator=torch.Generator().manual_seed(0))
    assert recovered.shape == stego.shape and recovered.min() >= 0 and recovered.max() <= 1
    odd = reveal(hider, cover, generator=torch.Generator().manual_seed(0))  # a stego of another size: its own size
    assert odd.shape == cover.shape


def test_odd_size_333x517_round_trip():
    hider = model()
    cover, secret = images(0, 3, 333, 517), images(1, 3, 333, 517)
    stego = hide(hider, cover, secret)
    recovered = reveal(hider, stego, generator=torch.Generator().manual_seed(0))
    assert stego.shape == recovered.shape == (3, 334, 518)


@pytest.fixture(scope="module")
def default_model():
    name = zoo.default_name(zoo.SHIPPED)
    if name is None:
        pytest.skip("no default model ships in invhide/models/trained")
    return zoo.load(name, folder=zoo.SHIPPED)


def edge_psnrs(recovered, secret):
    """PSNR (dB) of the last row and of the last column of ``(3, H, W)`` images."""
    mse = (recovered - secret).square()
    return [(-10 * torch.log10(part.mean())).item() for part in (mse[:, -1], mse[:, :, -1])]


def round_trip(hider, cover, secret):
    """The secret revealed from the stego as saved in an 8-bit PNG, on the secret's pixels, and the stego's shape."""
    stego = quantize_8bit(hide(hider, cover, secret))
    recovered = quantize_8bit(reveal(hider, stego, generator=torch.Generator().manual_seed(0)))
    return recovered[:, : secret.shape[-2], : secret.shape[-1]], tuple(stego.shape)


@pytest.mark.filterwarnings("ignore::invhide.models.hider.PublicKeyWarning")  # a keyed default, used as a user would
def test_odd_sizes_bring_their_last_row_and_column_back(default_model):
    """Issue 20: a 65x63 stego cropped to its cover's size lost what the padding carried (edges at 21-26 dB).

    The last row and column of a 65x63 image come back as well as those of
    a 64x62 one (the border is a little worse than the interior in both).
    """
    odd, even = [], []
    for cover, secret in evaluation_pairs(shared("kodak24"), size=96)[::6]:
        recovered, shape = round_trip(default_model, cover[:, :65, :63], secret[:, :65, :63])
        odd.append(edge_psnrs(recovered, secret[:, :65, :63]))
        recovered, _ = round_trip(default_model, cover[:, :64, :62], secret[:, :64, :62])
        even.append(edge_psnrs(recovered, secret[:, :64, :62]))
    (odd_row, odd_column), (even_row, even_column) = np.mean(odd, axis=0), np.mean(even, axis=0)
    print(f"\nlast row, column: 65x63 {odd_row:.2f}, {odd_column:.2f} dB; 64x62 {even_row:.2f}, {even_column:.2f} dB")
    assert odd_row > even_row - 4 and odd_column > even_column - 4  # measured: 35.0, 31.3 and 34.0, 33.4 dB
    assert shape == (3, 66, 64)  # the padded size: what the padding carries is kept


def test_tiling_matches_whole_image_with_enough_overlap():
    hider = randomize_(HiNet(num_blocks=2, init="identity"), 0, gain=0.1)
    cover, secret = images(0, 1, 3, 96, 80), images(1, 1, 3, 96, 80)
    whole = hide(hider, cover, secret)
    tiled = hide(hider, cover, secret, tile=48, overlap=16)
    assert (whole - tiled).abs().max() < 1e-4
    generator = lambda: torch.Generator().manual_seed(3)
    whole_secret = reveal(hider, whole, generator=generator())
    tiled_secret = reveal(hider, whole, generator=generator(), tile=48, overlap=16)
    assert (whole_secret - tiled_secret).abs().max() < 1e-4
    no_overlap = reveal(hider, whole, generator=generator(), tile=32, overlap=0)
    assert (whole_secret - no_overlap).abs().max() > 1e-3  # without context the seams show


def test_tiles_cover_each_pixel_once():
    for length, tile, overlap in [(10, 6, 2), (100, 32, 8), (7, 8, 2), (64, 16, 0)]:
        kept = [i for _, _, a, b in tiles(length, tile, overlap) for i in range(a, b)]
        assert kept == list(range(length))
        for start, stop, keep_start, keep_stop in tiles(length, tile, overlap):
            assert start % 2 == 0 and start <= keep_start and keep_stop <= stop and stop - start <= tile
    with pytest.raises(ValueError, match="must exceed twice the overlap"):
        tiles(100, 16, 8)


def test_fit_secret():
    secret = images(0, 1, 3, 20, 30)
    assert fit_secret(secret, (20, 30)) is secret
    with pytest.raises(ValueError, match="the secret is 30x20 but the cover is 16x16.*fit='resize' or fit='crop'"):
        fit_secret(secret, (16, 16))
    assert fit_secret(secret, (16, 16), "resize").shape[-2:] == (16, 16)
    cropped = fit_secret(secret, (16, 16), "crop")
    assert torch.equal(cropped, secret[..., 2:18, 7:23])
    assert fit_secret(secret, (24, 24), "crop").shape[-2:] == (24, 24)
    with pytest.raises(ValueError, match="fit must be one of"):
        fit_secret(secret, (16, 16), "stretch")


@pytest.mark.parametrize(
    ("cover", "message"),
    [
        (torch.full((3, 8, 8), float("nan")), "cover holds 192 NaN or infinite value"),
        (torch.full((3, 8, 8), 1.5), "values in \\[0, 1\\]"),
        (torch.zeros(4, 8, 8), "cover must have shape \\(B, 3, H, W\\), got shape \\(4, 8, 8\\)"),
    ],
)
def test_bad_images(cover, message):
    with pytest.raises(ValueError, match=message):
        hide(model(), cover, torch.zeros(3, 8, 8))


def test_mode_is_restored():
    hider = model().train()
    hide(hider, images(0, 3, 8, 8), images(1, 3, 8, 8))
    assert hider.training


def test_empty_batches_give_empty_results():
    hider = model()
    empty = torch.zeros(0, 3, 9, 10)
    stego = hide(hider, empty, empty)
    assert stego.shape == (0, 3, 10, 10) and stego.dtype == empty.dtype
    assert reveal(hider, empty).shape == (0, 3, 9, 10)
    assert reveal(hider, empty, z=torch.zeros(0, 3, 10, 10)).shape == (0, 3, 9, 10)
    assert hide(hider, empty, torch.zeros(0, 3, 4, 4), fit="crop").shape == (0, 3, 10, 10)
    with pytest.raises(ValueError, match="the secret is 4x4 but the cover is 10x9"):
        hide(hider, empty, torch.zeros(0, 3, 4, 4))
    with pytest.raises(ValueError, match="cover and secret batches differ: 0 and 1"):
        hide(hider, empty, torch.zeros(1, 3, 9, 10))


@pytest.mark.parametrize("num_secrets", [1, 2])
def test_hides_nothing_tells_the_identity_from_a_trained_model(num_secrets):
    fresh = InvertibleHider(num_secrets=num_secrets, num_blocks=2, subnet=subnets.conv(hidden=8, depth=2))
    assert hides_nothing(fresh)
    assert hides_nothing(HiNet(num_blocks=1, generator=torch.Generator().manual_seed(0)))  # reference init: zero output
    moved = randomize_(fresh, 0, gain=0.05)
    assert not hides_nothing(moved)
    # the stego ignores the secret when only the cover branch's subnets (phi) are zero, whatever rho and eta do
    with torch.no_grad():
        for i in (1, 2):
            getattr(moved.nodes, f"coupling_{i}").phi.zero_output_()
    assert hides_nothing(moved)
    assert hides_nothing(moved.double()) and moved.training  # any dtype; the mode is left as it was


def test_low_stego_psnr_tells_a_stego_that_shows_the_hiding():
    cover = images(0, 2, 3, 16, 16)
    assert (psnr(cover, 1 - cover) < LOW_STEGO_PSNR).all() and (psnr(cover, cover + 0.01) > LOW_STEGO_PSNR).all()


def test_reveal_checks_what_the_model_never_sees():
    hider, stego = model(), images(0, 3, 9, 10)
    with pytest.raises(InputTypeError, match="^generator must be a torch.Generator, got int$"):
        reveal(hider, stego, generator=42)
    with pytest.raises(
        ValueError, match=r"^z must have shape \(1, 3, 10, 10\) \(the padded stego's\), got \(1, 3, 9, 10\)$"
    ):
        reveal(hider, stego, z=torch.zeros(1, 3, 9, 10))
    with pytest.raises(ValueError, match="^tile and overlap must be non-negative multiples of 2, got 5 and 0$"):
        reveal(hider, images(0, 3, 16, 16), tile=5, overlap=0)


def one_weight(value):
    """A fresh hider whose only moved weight is one value of ``value`` (issue 20: 1e-3 passed hides_nothing)."""
    hider = InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2))
    with torch.no_grad():
        hider.nodes.coupling_1.phi.output_layer.weight[0, 0, 0, 0] = value
    return hider.eval()


@pytest.mark.filterwarnings("ignore::invhide.models.hider.PublicKeyWarning")  # a keyed default, used as a user would
def test_verify_measures_what_the_receiver_gets(default_model):
    cover, secret = evaluation_pairs(shared("kodak24"), size=64)[0]
    stego = quantize_8bit(hide(default_model, cover, secret))
    figures = inference.verify(default_model, cover, secret, stego)
    recovered = quantize_8bit(reveal(default_model, stego))  # z zeros, as invhide reveal gives it
    assert figures.secret_psnr == pytest.approx(psnr(recovered[None], secret[None]).item(), abs=1e-6)
    assert figures.stego_psnr == pytest.approx(psnr(stego[None], cover[None]).item(), abs=1e-6)
    assert figures.passed and not figures.identical and figures.secret_psnr > 30 and figures.stego_psnr > 30
    seeded = inference.verify(default_model, cover, secret, stego, seed=1)
    drawn = quantize_8bit(reveal(default_model, stego, generator=torch.Generator().manual_seed(1)))
    assert seeded.secret_psnr == pytest.approx(psnr(drawn[None], secret[None]).item(), abs=1e-6)
    assert seeded.secret_psnr != figures.secret_psnr  # the seed reaches z


@pytest.mark.filterwarnings("ignore::invhide.models.hider.PublicKeyWarning")  # a keyed default, used as a user would
def test_verify_refuses_what_does_not_hide(default_model):
    cover, secret = images(0, 3, 32, 32), images(1, 3, 32, 32)
    faint = one_weight(1e-3)
    assert not hides_nothing(faint)  # the cheap probe sees the float stego move...
    figures = inference.verify(faint, cover, secret, quantize_8bit(hide(faint, cover, secret)))
    assert figures.identical and not figures.passed  # ...the 8-bit stego does not
    levels = quantize_8bit(cover)  # a cover read from a file: the stego is that file, level for level
    figures = inference.verify(faint, levels, secret, quantize_8bit(hide(faint, levels, secret)))
    assert figures.identical and figures.stego_psnr == float("inf") and not figures.passed
    untrained = model()  # far from the identity, but the secret does not come back
    figures = inference.verify(untrained, cover, secret, quantize_8bit(hide(untrained, cover, secret)))
    assert not figures.identical and figures.secret_psnr < inference.MIN_SECRET_PSNR and not figures.passed
    dot, other = cover[:, :1, :1], secret[:, :1, :1]  # too small to carry a secret: refused, not garbage
    figures = inference.verify(default_model, dot, other, quantize_8bit(hide(default_model, dot, other)))
    assert not figures.passed
    with pytest.raises(InputError, match=r"^stego must be a batch of 1 at least the cover's size 32x32"):
        inference.verify(untrained, cover, secret, cover[:, :30])


def jpeg(image, quality=95):
    """``image`` saved as a JPEG of this quality and read back."""
    buffer = io.BytesIO()
    Image.fromarray((quantize_8bit(image) * 255).round().byte().permute(1, 2, 0).numpy()).save(
        buffer, format="JPEG", quality=quality
    )
    return torch.from_numpy(np.array(Image.open(buffer).convert("RGB"))).permute(2, 0, 1).float() / 255


@pytest.mark.filterwarnings("ignore::invhide.models.hider.PublicKeyWarning")  # a keyed default, used as a user would
def test_blur_agreement_tells_a_stego_from_what_holds_nothing(default_model):
    figures = {"stego": [], "photo": [], "jpeg": []}
    for cover, secret in evaluation_pairs(shared("kodak24"), size=96)[::6]:
        stego = quantize_8bit(hide(default_model, cover, secret))
        for name, image in (("stego", stego), ("photo", cover), ("jpeg", jpeg(stego))):
            figures[name].append(inference.blur_agreement(default_model, image))
    print("\n" + "; ".join(f"{k}: {min(v):.1f} to {max(v):.1f} dB" for k, v in figures.items()))
    assert max(figures["stego"]) < inference.NOT_A_STEGO_PSNR - 2
    assert min(figures["photo"]) >= inference.NOT_A_STEGO_PSNR and min(figures["jpeg"]) >= inference.NOT_A_STEGO_PSNR


def test_trained_channels_is_lossless_unless_a_model_says_otherwise():
    hider = model()
    assert inference.trained_channels(hider) == {"lossless"}
    hider.trained_channels = ("lossless", "jpeg")
    assert inference.trained_channels(hider) == {"lossless", "jpeg"}
