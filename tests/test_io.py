import contextlib
import errno
import os
import re
import stat
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import images, shared
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

import invhide.io.images
from invhide.io.images import (
    ImageConversionWarning,
    ImageError,
    ImageTooLargeError,
    inspect_image,
    read_image,
    to_uint8,
    write_image,
)
from invhide.nn.functional import quantize_8bit


def rgb_array(seed: int, height: int = 6, width: int = 10) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def as_tensor(array: np.ndarray, top: int = 255) -> torch.Tensor:
    """(H, W, C) integers -> (C, H, W) float32 divided as read_image does."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float() / top


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG (gray, gray+alpha, RGB or RGBA by channel count) with unfiltered scanlines.

    Written by hand: Pillow cannot write 16-bit colour PNGs.
    """
    height, width, channels = array.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = np.ascontiguousarray(array, dtype=">u2").view(np.uint8).reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def patch_png_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite a PNG's IHDR width and height (and its CRC) without touching the pixel data."""
    assert data[12:16] == b"IHDR"
    body = struct.pack(">II", width, height) + data[24:29]
    return data[:16] + body + struct.pack(">I", zlib.crc32(b"IHDR" + body)) + data[33:]


def tiny_png(tmp_path: Path, name: str = "tiny.png") -> Path:
    path = tmp_path / name
    Image.fromarray(rgb_array(0, 4, 4)).save(path)
    return path


@contextlib.contextmanager
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


class TestRoundTrip:
    @pytest.mark.parametrize("suffix", [".png", ".PNG", ".tif", ".tiff", ".bmp"])
    @pytest.mark.parametrize("shape", [(3, 5, 7), (1, 3, 8, 6), (3, 1, 1)])
    def test_8_bit_exact(self, tmp_path, suffix, shape):
        x = images(0, *shape)
        path = tmp_path / f"x{suffix}"
        write_image(x, path)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = read_image(path)
        assert y.dtype == torch.float32 and y.shape == shape[-3:]
        assert torch.equal(y, quantize_8bit(x).reshape(shape[-3:]))

    @settings(max_examples=25)
    @given(seed=st.integers(0, 2**31), height=st.integers(1, 17), width=st.integers(1, 17))
    def test_exact_for_any_shape(self, seed, height, width):
        x = images(seed, 3, height, width) * 1.4 - 0.2  # out-of-range values are clamped
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "x.png"
            write_image(x, path)
            assert torch.equal(read_image(path), quantize_8bit(x))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_rounds_exact_halves_as_quantize_8bit(self, tmp_path, dtype):
        x = (torch.arange(512, dtype=torch.float64) / 510).reshape(1, 16, 32).expand(3, 16, 32)  # 255 x = k + 0.5
        write_image(x.to(dtype), tmp_path / "x.png")
        assert torch.equal(read_image(tmp_path / "x.png"), quantize_8bit(x.to(dtype)).float())

    def test_clamps_and_rounds(self, tmp_path):
        x = torch.tensor([-1.0, 0.0, 0.5 / 255 + 1e-4, 1.0, 3.0]).reshape(1, 1, 5).expand(3, 1, 5)
        write_image(x, tmp_path / "x.png")
        assert (read_image(tmp_path / "x.png")[0, 0] * 255).round().tolist() == [0, 0, 1, 255, 255]

    def test_accepts_grad_half_and_float64(self, tmp_path):
        for dtype in (torch.float16, torch.bfloat16, torch.float64):
            x = images(3, 3, 4, 4).to(dtype).requires_grad_(True)
            write_image(x, tmp_path / "x.png")
            assert torch.equal(read_image(tmp_path / "x.png"), quantize_8bit(x.detach().float()))

    def test_to_uint8(self):
        x = images(5, 1, 3, 4, 6)
        array = to_uint8(x)
        assert array.shape == (4, 6, 3) and array.dtype == np.uint8
        assert np.array_equal(array, (quantize_8bit(x)[0] * 255).round().byte().permute(1, 2, 0).numpy())
        with pytest.raises(ValueError, match=r"\(3, H, W\)"):
            to_uint8(torch.rand(4, 4))

    def test_inspect_image_reads_header_only(self, tmp_path):
        path = tmp_path / "gray.png"
        Image.fromarray(rgb_array(0, 50, 70)[..., 0]).save(path)
        info = inspect_image(path)
        assert (info.path, info.width, info.height, info.mode, info.format) == (path, 70, 50, "L", "PNG")
        assert "grayscale" in info.conversion
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        assert inspect_image(path).width == 70  # header intact: truncation shows only on decoding
        with pytest.warns(UserWarning, match="grayscale"), pytest.raises(ImageError, match="truncated"):
            read_image(path)


# --------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------


def _gradient(height: int = 6, width: int = 10) -> np.ndarray:
    return (np.arange(height * width).reshape(height, width) * 4 % 256).astype(np.uint8)


class TestConversions:
    def test_rgb_8_bit_no_warning(self, tmp_path):
        array = rgb_array(6)
        Image.fromarray(array).save(tmp_path / "x.png")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert torch.equal(read_image(tmp_path / "x.png"), as_tensor(array))

    def test_grayscale_l(self, tmp_path):
        gray = _gradient()
        path = tmp_path / "gray.png"
        Image.fromarray(gray).save(path)
        with pytest.warns(UserWarning, match=r"gray\.png: grayscale image \(mode L\) converted to RGB"):
            x = read_image(path)
        assert torch.equal(x, as_tensor(np.repeat(gray[..., None], 3, axis=2)))

    def test_bilevel(self, tmp_path):
        path = tmp_path / "bw.png"
        Image.fromarray(_gradient() > 100).save(path)
        with pytest.warns(ImageConversionWarning, match="bw.png: 1-bit"):
            x = read_image(path)
        assert set(x.unique().tolist()) == {0.0, 1.0}
        assert torch.equal(x[0], torch.from_numpy(_gradient() > 100).float())

    def test_palette(self, tmp_path):
        array = rgb_array(7)
        palette_image = Image.fromarray(array).quantize(colors=8)
        path = tmp_path / "palette.png"
        palette_image.save(path)
        with pytest.warns(
            UserWarning, match=r"palette\.png: palette image \(mode P\) converted to RGB through its palette"
        ):
            x = read_image(path)
        assert torch.equal(x, as_tensor(np.asarray(palette_image.convert("RGB"))))

    def test_palette_with_transparency(self, tmp_path):
        palette_image = Image.fromarray(rgb_array(8)).quantize(colors=4)
        path = tmp_path / "transparent.png"
        palette_image.save(path, transparency=0)
        with Image.open(path) as reopened:
            assert reopened.mode == "P" and "transparency" in reopened.info
        with pytest.warns(
            UserWarning, match="transparent.png: palette image with transparency .* transparency dropped"
        ):
            x = read_image(path)
        assert torch.equal(x, as_tensor(np.asarray(palette_image.convert("RGB"))))

    def test_rgba_drops_alpha_without_compositing(self, tmp_path):
        array = np.concatenate([rgb_array(9), np.zeros((6, 10, 1), np.uint8)], axis=2)  # fully transparent
        path = tmp_path / "rgba.png"
        Image.fromarray(array).save(path)
        with pytest.warns(UserWarning, match="rgba.png: RGBA image converted to RGB: alpha dropped"):
            x = read_image(path)
        assert torch.equal(x, as_tensor(array[..., :3]))

    def test_la(self, tmp_path):
        gray = _gradient()
        path = tmp_path / "la.png"
        Image.merge("LA", [Image.fromarray(gray), Image.fromarray(255 - gray)]).save(path)
        with pytest.warns(UserWarning, match=r"la.png: grayscale image with alpha \(mode LA\) .* alpha dropped"):
            x = read_image(path)
        assert torch.equal(x, as_tensor(np.repeat(gray[..., None], 3, axis=2)))

    def test_16_bit_grayscale(self, tmp_path):
        values = np.random.default_rng(10).integers(0, 65536, (5, 7)).astype(np.uint16)
        path = tmp_path / "gray16.png"
        Image.fromarray(values).save(path)
        with Image.open(path) as image:
            assert image.mode.startswith("I;16")
        with pytest.warns(UserWarning, match=r"gray16.png: 16-bit grayscale .* \(16-bit precision kept\)"):
            x = read_image(path)
        assert torch.equal(x, as_tensor(np.repeat(values[..., None], 3, axis=2), 65535))
        assert "8-bit" not in inspect_image(path).conversion

    @pytest.mark.parametrize(
        ("channels", "alpha"), [(3, ""), (4, "RGBA image converted to RGB: alpha dropped; "), (2, "RGBA .*; ")]
    )
    def test_16_bit_colour_png_is_read_at_8_bits_and_says_so(self, tmp_path, channels, alpha):
        values = np.random.default_rng(11).integers(0, 65536, (4, 6, channels)).astype(np.uint16)
        path = tmp_path / "x16.png"
        path.write_bytes(png16(values))
        message = rf"x16.png: {alpha}16-bit colour or alpha samples read at 8-bit precision"
        assert re.match(message, f"{path.name}: {inspect_image(path).conversion}")
        with pytest.warns(ImageConversionWarning, match=message) as caught:
            x = read_image(path)
        assert len(caught) == 1
        high_bytes = (values >> 8).astype(np.uint8)
        colour = high_bytes[..., :3] if channels > 2 else np.repeat(high_bytes[..., :1], 3, axis=2)
        assert torch.equal(x, as_tensor(colour))  # Pillow keeps the high byte of each sample

    def test_16_bit_colour_tiff_is_read_at_8_bits_and_says_so(self, tmp_path):
        tifffile = pytest.importorskip("tifffile")
        values = np.random.default_rng(12).integers(0, 65536, (4, 6, 3)).astype(np.uint16)
        tifffile.imwrite(tmp_path / "x16.tif", values, photometric="rgb")
        with pytest.warns(ImageConversionWarning, match="x16.tif: 16-bit colour or alpha samples read at 8-bit"):
            x = read_image(tmp_path / "x16.tif")
        assert torch.equal(x, as_tensor((values >> 8).astype(np.uint8)))

    def test_32_bit_integer(self, tmp_path):
        values = (np.arange(12, dtype=np.int32).reshape(3, 4) * 5000).astype(np.int32)
        Image.fromarray(values).save(tmp_path / "int.tif")
        with pytest.warns(UserWarning, match=r"int.tif: 32-bit integer grayscale image \(mode I\)"):
            x = read_image(tmp_path / "int.tif")
        assert torch.equal(x[1], torch.from_numpy(values).float() / 65535)
        Image.fromarray(values - 1).save(tmp_path / "negative.tif")
        with pytest.warns(UserWarning), pytest.raises(ImageError, match=r"negative.tif: .* values in \[-1, 54999\]"):
            read_image(tmp_path / "negative.tif")

    def test_float(self, tmp_path):
        values = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
        Image.fromarray(values).save(tmp_path / "float.tif")
        with pytest.warns(UserWarning, match=r"float.tif: floating-point grayscale image \(mode F\)"):
            x = read_image(tmp_path / "float.tif")
        assert torch.equal(x[2], torch.from_numpy(values))
        Image.fromarray(values * 255).save(tmp_path / "float255.tif")
        with (
            pytest.warns(UserWarning),
            pytest.raises(ImageError, match=r"float255.tif: .* expected values in \[0, 1\]"),
        ):
            read_image(tmp_path / "float255.tif")

    def test_cmyk_jpeg(self, tmp_path):
        path = tmp_path / "cmyk.jpg"
        Image.new("CMYK", (8, 6), (10, 60, 120, 30)).save(path)
        with pytest.warns(UserWarning, match="cmyk.jpg: CMYK image converted to RGB"):
            x = read_image(path)
        with Image.open(path) as image:
            assert image.mode == "CMYK"
            assert torch.equal(x, as_tensor(np.asarray(image.convert("RGB"))))

    def test_animated_gif_first_frame(self, tmp_path):
        frames = [Image.new("RGB", (4, 4), (80 * i, 0, 0)) for i in range(3)]
        frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
        with pytest.warns(UserWarning, match="a.gif: .*only its first frame read"):
            x = read_image(tmp_path / "a.gif")
        assert x.abs().max() == 0

    @pytest.mark.parametrize("orientation", range(1, 9))
    def test_exif_orientation_png(self, tmp_path, orientation):
        array = rgb_array(13, 4, 6)
        t = as_tensor(array)
        expected = {
            1: t,
            2: t.flip(-1),
            3: t.flip(-1, -2),
            4: t.flip(-2),
            5: t.transpose(-1, -2),
            6: torch.rot90(t, -1, (-2, -1)),  # stored rotated: turn clockwise to display
            7: t.flip(-1, -2).transpose(-1, -2),
            8: torch.rot90(t, 1, (-2, -1)),
        }[orientation]
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(array).save(tmp_path / "o.png", exif=exif)
        with no_warnings():
            assert torch.equal(read_image(tmp_path / "o.png"), expected)

    @pytest.mark.parametrize("orientation", [3, 6, 8])
    def test_exif_orientation_jpeg(self, tmp_path, orientation):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / "photo.jpg"
        Image.fromarray(rgb_array(14, 8, 16)).save(path, exif=exif, quality=95)
        x = read_image(path)
        assert x.shape == ((3, 16, 8) if orientation in (6, 8) else (3, 8, 16))
        with Image.open(path) as image:
            assert torch.equal(x, as_tensor(np.asarray(ImageOps.exif_transpose(image))))


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------


def _missing(tmp_path):
    return tmp_path / "missing.png"


def _folder(tmp_path):
    path = tmp_path / "folder.png"
    path.mkdir()
    return path


def _empty(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    return path


def _text(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    return path


def _truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(rgb_array(16, 64, 64)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(rgb_array(17, 64, 64)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt_png(tmp_path):
    path = tmp_path / "corrupt.png"
    Image.fromarray(rgb_array(18, 32, 32)).save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 4
    data[start : start + 40] = bytes(40)  # zero the start of the zlib stream
    path.write_bytes(bytes(data))
    return path


def _zero_width(tmp_path):
    path = tmp_path / "zero.png"
    path.write_bytes(patch_png_size(tiny_png(tmp_path, "src.png").read_bytes(), 0, 4))
    return path


def _huge(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(patch_png_size(tiny_png(tmp_path, "src.png").read_bytes(), 100_000, 100_000))
    return path


BAD_INPUTS = [
    (_missing, FileNotFoundError, "no such file"),
    (_folder, IsADirectoryError, "is a folder"),
    (_empty, ImageError, r"empty file \(0 bytes\)"),
    (_text, ImageError, "not an image file"),
    (_truncated_png, ImageError, "truncated or corrupt image data"),
    (_truncated_jpeg, ImageError, "truncated or corrupt image data"),
    (_corrupt_png, ImageError, "truncated or corrupt image data"),
    (_zero_width, ImageError, "not an image file|zero size"),
    (_huge, ImageError, r"declares 100000x100000 = 10,000,000,000 pixels, more than the limit of 67,108,864 pixels"),
]


class TestBadInput:
    @pytest.mark.parametrize(("make", "error", "message"), BAD_INPUTS, ids=[case[0].__name__ for case in BAD_INPUTS])
    def test_one_line_error_starting_with_the_path(self, tmp_path, make, error, message):
        path = make(tmp_path)
        for reader in (read_image, inspect_image):
            if reader is inspect_image and make in (_truncated_png, _truncated_jpeg, _corrupt_png):
                continue  # the header is intact
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                with pytest.raises(error, match=message) as caught:
                    reader(path)
            text = str(caught.value)
            assert text.startswith(str(path) + ": ") and "\n" not in text, text
            assert caught.value.__traceback__ is not None

    def test_permission_denied_message(self, tmp_path, monkeypatch):
        path = tiny_png(tmp_path)

        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(invhide.io.images, "open", denied, raising=False)
        with pytest.raises(PermissionError, match="tiny.png: permission denied$"):
            read_image(path)

    def test_image_error_is_a_value_error(self):
        assert issubclass(ImageError, ValueError)

    def test_str_paths_work(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="^" + str(tmp_path)):
            read_image(str(tmp_path / "missing.png"))

    def test_huge_image_is_refused_before_decoding(self, tmp_path, monkeypatch):
        path = _huge(tmp_path)

        def forbidden(*args, **kwargs):
            raise AssertionError("decoded a refused image")

        monkeypatch.setattr(Image.Image, "load", forbidden)
        monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)
        with pytest.raises(ImageError, match="more than the limit"):
            read_image(path)

    def test_pillow_bomb_error_becomes_the_same_error(self, tmp_path):
        # 10^10 pixels is beyond Pillow's own hard limit: its DecompressionBombError is rephrased
        path = _huge(tmp_path)
        declared = r"bomb.png: image declares 100000x100000 = 10,000,000,000 pixels, more than "
        with pytest.raises(
            ImageTooLargeError, match=declared + "Pillow's decompression-bomb limit of .*MAX_IMAGE_PIXELS"
        ):
            read_image(path, max_pixels=None)
        with pytest.raises(ImageTooLargeError, match=declared + r"the limit of 5 pixels \(max_pixels\); pass a larger"):
            read_image(path, max_pixels=5)
        with pytest.raises(ImageTooLargeError, match=declared + "Pillow's") as caught:
            read_image(path, max_pixels=10**11)  # our limit allows it; Pillow's global one does not
        error = caught.value
        assert (error.path, error.pixels, error.limit) == (path, 10**10, 2 * Image.MAX_IMAGE_PIXELS)
        assert error.argument is None and error.__cause__ is None

    def test_too_large_error_carries_its_parts(self, tmp_path):
        path = tiny_png(tmp_path)
        with pytest.raises(ImageTooLargeError) as caught:
            inspect_image(path, max_pixels=15)
        error = caught.value
        assert isinstance(error, ImageError) and isinstance(error, ValueError)
        assert (error.path, error.size, error.pixels, error.limit, error.argument) == (
            path,
            (4, 4),
            16,
            15,
            "max_pixels",
        )
        assert str(error) == f"{path}: {error.problem} (max_pixels); {error.advice}"
        renamed = error.renamed("--max-pixels", advice="pass a larger --max-pixels to read it")
        assert type(renamed) is ImageTooLargeError and (renamed.path, renamed.limit) == (path, 15)
        assert str(renamed) == (
            f"{path}: image declares 4x4 = 16 pixels, more than the limit of 15 pixels (--max-pixels); "
            "pass a larger --max-pixels to read it"
        )

    def test_pillow_bomb_warning_is_not_leaked(self, tmp_path):
        # 10^8 pixels: above Pillow's warning threshold, below its error threshold
        path = tmp_path / "big.png"
        path.write_bytes(patch_png_size(tiny_png(tmp_path).read_bytes(), 10_000, 10_000))
        assert Image.MAX_IMAGE_PIXELS < 10_000 * 10_000
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ImageError, match="10000x10000 = 100,000,000 pixels, more than the limit"):
                read_image(path)
            # no limit of ours: Pillow's warning is not raised; decoding finds the missing data
            with pytest.raises(ImageError, match="big.png: truncated"):
                read_image(path, max_pixels=None)

    def test_tiny_images_are_allowed(self, tmp_path):
        Image.new("RGB", (1, 1), (1, 2, 3)).save(tmp_path / "one.png")
        assert (read_image(tmp_path / "one.png") * 255).round().flatten().tolist() == [1, 2, 3]

    def test_max_pixels_boundary(self, tmp_path):
        path = tiny_png(tmp_path)
        assert read_image(path, max_pixels=16).shape == (3, 4, 4)
        with pytest.raises(ImageError, match="4x4 = 16 pixels, more than the limit of 15"):
            read_image(path, max_pixels=15)

    @pytest.mark.parametrize("max_pixels", [0, -1, 1.5, True, "64"])
    def test_bad_max_pixels(self, tmp_path, max_pixels):
        with pytest.raises(ValueError, match="max_pixels must be a positive integer or None"):
            read_image(tiny_png(tmp_path), max_pixels=max_pixels)

    def test_bad_path_type(self):
        with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
            read_image(3)

    @pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
    def test_unreadable_file(self, tmp_path):
        path = tiny_png(tmp_path)
        path.chmod(0)
        with pytest.raises(PermissionError, match="tiny.png: permission denied"):
            read_image(path)


# --------------------------------------------------------------------------
# Writing: validation and atomicity
# --------------------------------------------------------------------------


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


class TestWrite:
    @pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
    def test_non_finite_refused(self, tmp_path, value):
        x = torch.rand(3, 4, 4)
        x[1, 2, 3] = value
        path = tmp_path / "x.png"
        with pytest.raises(ValueError, match=r"x.png: image holds 1 NaN or infinite value"):
            write_image(x, path)
        assert leftovers(tmp_path) == []

    @pytest.mark.parametrize("suffix", [".jpg", ".JPEG", ".webp", ".gif"])
    def test_lossy_refused(self, tmp_path, suffix):
        with pytest.raises(ValueError, match=f"x{suffix}: .* lossy .* would destroy the hidden image; .*png"):
            write_image(torch.rand(3, 4, 4), tmp_path / f"x{suffix}")
        assert leftovers(tmp_path) == []

    @pytest.mark.parametrize("name", ["x.xyz", "x"])
    def test_unknown_suffix_refused(self, tmp_path, name):
        with pytest.raises(ValueError, match="unsupported file suffix"):
            write_image(torch.rand(3, 4, 4), tmp_path / name)

    @pytest.mark.parametrize("shape", [(4, 4), (1, 4, 4), (4, 4, 4), (2, 3, 4, 4), (3, 0, 4)])
    def test_bad_shape(self, tmp_path, shape):
        with pytest.raises(ValueError, match=r"x.png: image must have shape \(3, H, W\) or \(1, 3, H, W\), got"):
            write_image(torch.rand(shape), tmp_path / "x.png")

    def test_bad_type(self, tmp_path):
        with pytest.raises(TypeError, match="floating-point"):
            write_image(torch.zeros(3, 4, 4, dtype=torch.uint8), tmp_path / "x.png")
        with pytest.raises(TypeError, match="must be a torch.Tensor, got ndarray"):
            write_image(np.zeros((3, 4, 4)), tmp_path / "x.png")

    def test_missing_folder_not_created(self, tmp_path):
        path = tmp_path / "no" / "such" / "x.png"
        with pytest.raises(FileNotFoundError, match=f"the output folder {tmp_path / 'no' / 'such'} does not exist"):
            write_image(torch.rand(3, 4, 4), path)
        assert not (tmp_path / "no").exists()

    def test_target_is_a_folder(self, tmp_path):
        (tmp_path / "x.png").mkdir()
        with pytest.raises(IsADirectoryError, match="x.png: is a folder"):
            write_image(torch.rand(3, 4, 4), tmp_path / "x.png")

    def test_parent_is_a_file(self, tmp_path):
        (tmp_path / "file").write_text("")
        with pytest.raises(NotADirectoryError, match="is not a folder"):
            write_image(torch.rand(3, 4, 4), tmp_path / "file" / "x.png")

    @pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
    def test_unwritable_folder(self, tmp_path):
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
        try:
            with pytest.raises(PermissionError, match="cannot write in folder .*locked: permission denied"):
                write_image(torch.rand(3, 4, 4), folder / "x.png")
        finally:
            folder.chmod(stat.S_IRWXU)

    def test_permission_denied_message(self, tmp_path, monkeypatch):
        # the same path as test_unwritable_folder, reachable when the tests run as root
        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(os, "open", denied)
        with pytest.raises(PermissionError, match=r"x.png: cannot write in folder .*: permission denied$"):
            write_image(torch.rand(3, 4, 4), tmp_path / "x.png")

    @pytest.mark.parametrize("failing", ["fsync", "replace"])
    def test_failed_write_leaves_nothing(self, tmp_path, monkeypatch, failing):
        def disk_full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, failing, disk_full)
        with pytest.raises(OSError, match="x.png: could not write: No space left on device"):
            write_image(torch.rand(3, 8, 8), tmp_path / "x.png")
        assert leftovers(tmp_path) == []

    def test_failed_overwrite_keeps_the_old_file(self, tmp_path, monkeypatch):
        old = torch.zeros(3, 4, 4)
        write_image(old, tmp_path / "x.png")
        before = (tmp_path / "x.png").read_bytes()

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(os, "fsync", interrupted)
        with pytest.raises(KeyboardInterrupt):
            write_image(torch.ones(3, 4, 4), tmp_path / "x.png")
        assert leftovers(tmp_path) == ["x.png"]
        assert (tmp_path / "x.png").read_bytes() == before

    def test_failed_encoding_creates_nothing(self, tmp_path, monkeypatch):
        def broken(*args, **kwargs):
            raise RuntimeError("encoder failed")

        monkeypatch.setattr(Image.Image, "save", broken)
        with pytest.raises(RuntimeError, match="encoder failed"):
            write_image(torch.rand(3, 4, 4), tmp_path / "x.png")
        assert leftovers(tmp_path) == []

    def test_overwrite_and_permissions(self, tmp_path):
        write_image(torch.zeros(3, 4, 4), tmp_path / "x.png")
        write_image(torch.ones(3, 4, 4), tmp_path / "x.png")
        assert read_image(tmp_path / "x.png").min() == 1
        assert leftovers(tmp_path) == ["x.png"]
        if os.name == "posix":
            umask = os.umask(0o022)
            os.umask(umask)
            assert stat.S_IMODE((tmp_path / "x.png").stat().st_mode) == 0o666 & ~umask


# --------------------------------------------------------------------------
# What a file's coding did to its pixels: from its header, never its name
# --------------------------------------------------------------------------


def save_as(folder: Path, name: str, mode: str = "RGB", frames: int = 1, **options) -> Path:
    """A 16x16 photograph-like image saved as ``name`` with Pillow's ``options`` (``format=`` overrides the name)."""
    image = Image.fromarray(rgb_array(0, 16, 16)).convert(mode)
    more = [Image.fromarray(rgb_array(i, 16, 16)).convert(mode) for i in range(1, frames)]
    image.save(folder / name, **({"save_all": True, "append_images": more} if more else {}), **options)
    return folder / name


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("x.png", {}, ("PNG", "PNG", False, "lossless")),
        ("gray.png", {"mode": "L"}, ("PNG", "PNG", False, "lossless")),
        ("x.bmp", {}, ("BMP", "BMP", False, "lossless")),
        ("lzw.tif", {"compression": "tiff_lzw"}, ("TIFF", "TIFF", False, "lossless")),
        ("x.jpg", {"quality": 95}, ("JPEG", "JPEG", True, "jpeg")),
        ("q100.jpg", {"quality": 100}, ("JPEG", "JPEG", True, "jpeg")),
        ("jpeg.png", {"format": "JPEG"}, ("JPEG", "JPEG", True, "jpeg")),  # the header decides, not the name
        ("x.webp", {"quality": 90}, ("WEBP", "VP8 WebP", True, "webp")),
        ("alpha.webp", {"mode": "RGBA", "quality": 90}, ("WEBP", "VP8 WebP", True, "webp")),  # VP8X, ALPH, VP8
        ("lossless.webp", {"lossless": True}, ("WEBP", "VP8L WebP", False, "webp")),
        ("webp.png", {"format": "WEBP", "lossless": True}, ("WEBP", "VP8L WebP", False, "webp")),
        ("animated.webp", {"frames": 2, "quality": 90}, ("WEBP", "VP8 WebP", True, "webp")),  # ANMF frames
        ("animated_lossless.webp", {"frames": 2, "lossless": True}, ("WEBP", "VP8L WebP", False, "webp")),
        ("jpeg.tif", {"compression": "jpeg"}, ("TIFF", "TIFF with JPEG compression", True, "jpeg")),
        ("palette.png", {"mode": "P"}, ("PNG", "PNG with a palette of at most 256 colours", True, "palette")),
        ("x.gif", {}, ("GIF", "GIF with a palette of at most 256 colours", True, "palette")),
        ("x.jp2", {"irreversible": True}, ("JPEG2000", "JPEG 2000, irreversible wavelet", True, "jpeg2000")),
        ("x.j2k", {"irreversible": False}, ("JPEG2000", "JPEG 2000, reversible wavelet", False, "lossless")),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_image_format_tells_lossy_files_by_their_header(tmp_path, name, options, expected):
    path = save_as(tmp_path, name, **options)
    found = invhide.io.images.image_format(path)
    assert (found.format, found.codec, found.lossy, found.channel) == expected
    if not found.lossy:  # the pixels read back are the ones saved (gray repeated in R, G, B)
        saved = Image.fromarray(rgb_array(0, 16, 16)).convert(options.get("mode", "RGB")).convert("RGB")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImageConversionWarning)
            assert torch.equal(read_image(path), as_tensor(np.asarray(saved)))


def test_image_format_refuses_what_is_no_image(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ImageError, match=r"notes.png: not an image file"):
        invhide.io.images.image_format(tmp_path / "notes.png")


def test_encode_image_gives_the_bytes_write_image_stores(tmp_path):
    x = torch.rand(3, 7, 9, generator=torch.Generator().manual_seed(0))
    for suffix in invhide.io.images.LOSSLESS_SUFFIXES:
        write_image(x, tmp_path / f"x{suffix}")
        data = invhide.io.images.encode_image(x, suffix.upper())
        assert (tmp_path / f"x{suffix}").read_bytes() == data
        decoded = invhide.io.images.decode_image(data)
        assert torch.equal(decoded, read_image(tmp_path / f"x{suffix}")) and torch.equal(decoded, quantize_8bit(x))
    with pytest.raises(ValueError, match=r"^suffix: .jpg is a lossy or colour-reducing format"):
        invhide.io.images.encode_image(x, ".jpg")
    with pytest.raises(ImageError, match=r"^in-memory image: not an image write_image stores"):
        invhide.io.images.decode_image(b"not an image")


# --------------------------------------------------------------------------
# Real photographs
# --------------------------------------------------------------------------


class TestSharedData:
    def test_kodak_reads_as_rgb_without_warnings(self):
        folder = shared("kodak24")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            x = read_image(folder / "kodim01.png")
            y = read_image(folder / "kodim04.png")  # one of the portrait images
        assert x.shape == (3, 512, 768) and y.shape == (3, 768, 512)
        assert x.min() >= 0 and x.max() <= 1 and x.std() > 0.05

    def test_set14_bridge_is_grayscale(self):
        path = shared("set14") / "bridge.png"
        with pytest.warns(UserWarning, match=r"bridge.png: grayscale image \(mode L\) converted to RGB"):
            x = read_image(path)
        assert x.shape == (3, 512, 512)
        assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])

    def test_real_photo_round_trip(self, tmp_path):
        x = read_image(shared("kodak24") / "kodim23.png")
        write_image(x, tmp_path / "copy.png")
        assert torch.equal(read_image(tmp_path / "copy.png"), x)
