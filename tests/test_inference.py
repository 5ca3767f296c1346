import pytest
import torch
from helpers import images
from hypothesis import given, settings
from hypothesis import strategies as st

from invhide import HiNet, InvertibleHider
from invhide.errors import InputTypeError
from invhide.evaluation.metrics import psnr
from invhide.models.inference import LOW_STEGO_PSNR, fit_secret, hide, hides_nothing, pad_to, reveal, tiles
from invhide.nn import subnets
from invhide.testing import randomize_


def model(wavelet="haar", blocks=2):
    return randomize_(InvertibleHider(num_blocks=blocks, subnet=subnets.conv(hidden=8, depth=2), wavelet=wavelet), 0)


@settings(max_examples=25)
@given(height=st.integers(1, 21), width=st.integers(1, 21), wavelet=st.sampled_from(["haar", "db2"]))
def test_any_size_keeps_its_size_and_matches_the_padded_computation(height, width, wavelet):
    hider = model(wavelet)
    cover, secret = images(height, 3, height, width), images(width, 3, height, width)
    stego = hide(hider, cover, secret)
    assert stego.shape == cover.shape
    padded_cover, size = pad_to(cover[None], hider.min_size)
    padded_secret, _ = pad_to(secret[None], hider.min_size)
    assert (
        size == (height, width) and padded_cover.shape[-1] % 2 == 0 and min(padded_cover.shape[-2:]) >= hider.min_size
    )
    with torch.no_grad():
        expected, _ = hider.hide(padded_cover, padded_secret)
    assert torch.equal(stego, expected[0, :, :height, :width])
    recovered = reveal(hider, stego.clamp(0, 1), generator=torch.Generator().manual_seed(0))
    assert recovered.shape == cover.shape and recovered.min() >= 0 and recovered.max() <= 1


def test_odd_size_333x517_round_trip():
    hider = model()
    cover, secret = images(0, 3, 333, 517), images(1, 3, 333, 517)
    stego = hide(hider, cover, secret)
    recovered = reveal(hider, stego, generator=torch.Generator().manual_seed(0))
    assert stego.shape == recovered.shape == (3, 333, 517)


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
    assert stego.shape == (0, 3, 9, 10) and stego.dtype == empty.dtype
    assert reveal(hider, empty).shape == (0, 3, 9, 10)
    assert reveal(hider, empty, z=torch.zeros(0, 3, 10, 10)).shape == (0, 3, 9, 10)
    assert hide(hider, empty, torch.zeros(0, 3, 4, 4), fit="crop").shape == (0, 3, 9, 10)
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
