"""Image files: read any common image as an RGB tensor; write stego images losslessly and atomically.

Reading (:func:`read_image`) is defensive: the declared size is checked
against a pixel budget before anything is decoded, the whole image is decoded
so that a truncated file fails at once, EXIF orientation is applied, and every
mode Pillow opens (grayscale, palette, alpha, CMYK, 16-bit, float) becomes a
``(3, H, W)`` float32 tensor in ``[0, 1]``; any conversion that is not a plain
8-bit RGB read raises an :class:`ImageConversionWarning` naming the file
(``warnings.filterwarnings("ignore", category=ImageConversionWarning)``
silences them). 16-bit grayscale keeps its 16-bit precision; Pillow decodes
16-bit colour files to 8 bits, and reading a 16-bit colour PNG or TIFF warns.

Writing (:func:`write_image`) stores 8-bit RGB, exactly
:func:`invhide.nn.functional.quantize_8bit` of the image, in lossless formats only (PNG,
TIFF, BMP): a lossy codec would destroy a hidden image. The file appears
in one step (temporary file in the same folder, ``fsync``, ``os.replace``), so
a failed or interrupted write never leaves a partial image behind.

Every error a user can cause (a missing file, a folder, an empty, corrupt,
truncated or oversized image) is raised with a one-line message that starts
with the path, so a command-line tool can print ``str(error)`` as is.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import struct
import warnings
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from invhide.checks import image_batch, integer, tensor
from invhide.errors import (
    AccessError,
    FileFormatError,
    InputError,
    InputTypeError,
    IsAFolderError,
    MissingPathError,
    NotAFolderError,
    describe,
    path_error,
)
from invhide.io.files import atomic_write
from invhide.nn.functional import levels_8bit, quantize_8bit  # noqa: F401 (the examples call quantize_8bit)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FILE_CHANNELS",
    "LOSSLESS_SUFFIXES",
    "ImageConversionWarning",
    "ImageError",
    "ImageFormat",
    "ImageInfo",
    "ImageTooLargeError",
    "channel_list",
    "decode_image",
    "encode_image",
    "image_format",
    "inspect_image",
    "is_channel_list",
    "read_compact",
    "read_image",
    "to_float",
    "to_uint8",
    "write_image",
]

PathLike = str | os.PathLike[str]

DEFAULT_MAX_PIXELS: int = 8192 * 8192
"""Default pixel budget of :func:`read_image`: 64 megapixels (8192x8192), 768 MiB as a float32 RGB tensor."""

LOSSLESS_SUFFIXES: tuple[str, ...] = (".bmp", ".png", ".tif", ".tiff")
"""File suffixes :func:`write_image` accepts."""

_LOSSY_SUFFIXES = (".avif", ".gif", ".heic", ".jfif", ".jp2", ".jpeg", ".jpg", ".webp")
_FORMATS = {".bmp": "BMP", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF"}
_GRAY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_TIFF_BITS_PER_SAMPLE = 258
_TIFF_LOSSY = {"jpeg": "jpeg", "tiff_jpeg": "jpeg", "webp": "webp"}  # Pillow's names of TIFF's lossy compressions


class ImageError(FileFormatError):
    """An image file that cannot be read or written (a ``ValueError``); ``str(error)`` starts with the path."""


class ImageTooLargeError(ImageError):
    """An image declaring more pixels than a limit allows (``max_pixels``, or Pillow's own), refused before decoding.

    The message's parts are attributes, so a caller with its own name for the
    limit rewords it with :meth:`renamed` instead of parsing the message.

    Attributes:
        path: the image file (a ``Path``).
        size: ``(width, height)`` as declared, or ``None`` when unknown.
        pixels: ``width * height``, or ``None`` when unknown.
        limit: the most pixels the limit allows.
        argument: the limit's name (``"max_pixels"``), or ``None`` for
            Pillow's (twice ``PIL.Image.MAX_IMAGE_PIXELS``); ``problem`` and
            ``advice`` as for :class:`~invhide.errors.InvhideError`.

    Example:
        >>> error = ImageTooLargeError(path="a.png", size=(16, 16), limit=100)
        >>> print(error)
        a.png: image declares 16x16 = 256 pixels, more than the limit of 100 pixels (max_pixels); pass a larger
        max_pixels (or None) to read it
        >>> print(error.renamed("--max-pixels", advice="pass a larger --max-pixels to read it"))
        a.png: image declares 16x16 = 256 pixels, more than the limit of 100 pixels (--max-pixels); pass a larger
        --max-pixels to read it
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        path: PathLike = "",
        size: tuple[int, int] | None = None,
        limit: int = 0,
        argument: str | None = "max_pixels",
        advice: str | None = "pass a larger max_pixels (or None) to read it",
    ) -> None:
        self.path, self.size, self.limit = Path(path), size, limit
        self.pixels = None if size is None else size[0] * size[1]
        declared = "too many pixels" if size is None else f"{size[0]}x{size[1]} = {self.pixels:,} pixels"
        whose = "the limit" if argument else "Pillow's decompression-bomb limit"
        problem = f"image declares {declared}, more than {whose} of {limit:,} pixels"
        if message is None:
            message = f"{path}: {problem}{f' ({argument})' if argument else ''}{f'; {advice}' if advice else ''}"
        super().__init__(message, argument=argument, problem=problem, advice=advice)

    def renamed(self, argument: str, *, advice: str | None = None) -> ImageTooLargeError:
        """The same error naming the limit ``argument`` (an option such as ``--max-pixels``), with ``advice``."""
        error = ImageTooLargeError(path=self.path, size=self.size, limit=self.limit, argument=argument, advice=advice)
        error.__cause__ = self.__cause__
        return error


class ImageConversionWarning(UserWarning):
    """:func:`read_image` converted an image that is not plain 8-bit RGB (the message names the file and the change)."""


class ImageInfo(NamedTuple):
    """What :func:`inspect_image` learns from an image file's header, without decoding it.

    Attributes:
        path: the file.
        width: stored width in pixels (before any EXIF rotation).
        height: stored height in pixels (before any EXIF rotation).
        mode: Pillow's mode, e.g. ``"RGB"``, ``"L"``, ``"P"``, ``"I;16"``.
        format: Pillow's format name, e.g. ``"PNG"`` or ``"JPEG"``.
        conversion: what :func:`read_image` will do to make it 8-bit-or-better
            RGB (the text of its warning), or ``None`` for a plain RGB image.
    """

    path: Path
    width: int
    height: int
    mode: str
    format: str | None
    conversion: str | None


FILE_CHANNELS: tuple[str, ...] = ("lossless", "jpeg", "webp", "jpeg2000", "avif", "heif", "palette")
"""The names of :attr:`ImageFormat.channel`: what a file can have done to the pixels."""


def channel_list(names: Iterable[str]) -> list[str]:
    """``names`` (of :data:`FILE_CHANNELS`) as stored in a weights file or a model record: in that order, once each.

    Example:
        >>> channel_list({"jpeg", "lossless"})
        ['lossless', 'jpeg']
    """
    given = set(names)
    return [name for name in FILE_CHANNELS if name in given]


def is_channel_list(value: object) -> bool:
    """Whether ``value`` is a stored list of trained channels: distinct names of :data:`FILE_CHANNELS`, with
    ``"lossless"`` among them (every model reveals from a lossless file)."""
    return (
        isinstance(value, list)
        and "lossless" in value
        and len(set(value)) == len(value)
        and all(name in FILE_CHANNELS for name in value)
    )


class ImageFormat(NamedTuple):
    """How an image file stores its pixels, as its header says (never its name): see :func:`image_format`.

    Attributes:
        format: Pillow's format name, e.g. ``"PNG"``, ``"JPEG"``, ``"WEBP"``.
        codec: the coding in words, e.g. ``"PNG"``, ``"JPEG"``, ``"VP8 WebP"``
            (lossy), ``"VP8L WebP"`` (lossless), ``"TIFF with JPEG compression"``.
        lossy: whether storing an image in it changes its pixels: a lossy
            codec, or a palette of at most 256 colours.
        channel: what the file did to the pixels, by name: ``"lossless"``,
            else ``"jpeg"``, ``"webp"``, ``"jpeg2000"``, ``"avif"``, ``"heif"``
            or ``"palette"`` (a model trained to reveal through one of them
            says so, see :func:`invhide.models.inference.trained_channels`).
    """

    format: str
    codec: str
    lossy: bool
    channel: str


# --------------------------------------------------------------------------
# Opening and validating
# --------------------------------------------------------------------------


def _check_path(path: object) -> None:
    if not isinstance(path, str | os.PathLike):
        raise InputTypeError(argument="path", problem=f"must be a str or os.PathLike, got {type(path).__name__}")


def _declared_size(file: BinaryIO) -> tuple[int, int] | None:
    """The size in the header of a file Pillow refused as a decompression bomb (its plugins skip the check), or None."""
    try:
        file.seek(0)
        prefix = file.read(16)
        for name in Image.ID:
            factory, accept = Image.OPEN[name]
            accepted = True if accept is None else accept(prefix)
            if not accepted or isinstance(accepted, str):
                continue
            file.seek(0)
            with contextlib.suppress(Exception):
                return factory(file, "").size
    except Exception:  # the size only improves a message: never let finding it fail
        return None
    return None


def _too_large(path: PathLike, size: tuple[int, int] | None, max_pixels: int | None) -> ImageTooLargeError:
    """Pillow's DecompressionBombError in the words of our own size check, when ours refuses the image too."""
    if max_pixels is not None and (size is None or size[0] * size[1] > max_pixels):
        return ImageTooLargeError(path=path, size=size, limit=max_pixels)
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)  # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that
    return ImageTooLargeError(
        path=path, size=size, limit=limit, argument=None, advice="raise PIL.Image.MAX_IMAGE_PIXELS to read it"
    )


def _open_header(path: PathLike, file: BinaryIO, max_pixels: int | None) -> Image.Image:
    """``Image.open(file)``: reads the header only; Pillow's errors become one-line :class:`ImageError` s."""
    try:
        # Pillow warns above PIL.Image.MAX_IMAGE_PIXELS; our own limit is checked with the exact size,
        # and max_pixels=None is an explicit opt-out, so the warning says nothing new.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(file)
    except Image.DecompressionBombError:
        raise _too_large(path, _declared_size(file), max_pixels) from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (Pillow does not recognise its format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as error:
        raise ImageError(f"{path}: corrupt image header: {describe(error)}") from None


@contextlib.contextmanager
def _open(path: PathLike, max_pixels: int | None) -> Iterator[tuple[Image.Image, BinaryIO]]:
    """Open ``path`` and read its header: every failure becomes a one-line error naming the file.

    Yields the lazily opened image (nothing decoded yet) and its file object.
    """
    if max_pixels is not None:
        integer("max_pixels", max_pixels, low=1, what="a positive integer or None (no limit)")
    _check_path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise MissingPathError(f"{path}: no such file") from None
    except PermissionError:
        raise AccessError(f"{path}: permission denied") from None
    except OSError as error:
        raise path_error(error, f"{path}: cannot access: {error.strerror or describe(error)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise IsAFolderError(f"{path}: is a folder, not an image file")
    if info.st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes), not an image")
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed by the with block below
    except PermissionError:
        raise AccessError(f"{path}: permission denied") from None
    except OSError as error:
        raise path_error(error, f"{path}: cannot open: {error.strerror or describe(error)}") from None
    with file, _open_header(path, file, max_pixels) as image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise ImageError(f"{path}: image has zero size ({width}x{height})")
        if max_pixels is not None and width * height > max_pixels:
            raise ImageTooLargeError(path=path, size=(width, height), limit=max_pixels)
        yield image, file


def _narrowed_to_8_bits(image: Image.Image, file: BinaryIO) -> bool:
    """Whether the file stores 16-bit samples that Pillow decodes to 8 bits (anything but 16-bit grayscale).

    Read from public information only: a PNG's IHDR chunk, which the format
    requires first, holds the bit depth at byte 24 of the file; a TIFF's
    ``BitsPerSample`` tag is in Pillow's ``tag_v2``. Other formats: ``False``.
    """
    if image.mode in (*_GRAY16_MODES, "I", "F"):
        return False
    if image.format == "PNG":
        position = file.tell()
        file.seek(0)
        header = file.read(26)
        file.seek(position)
        return header[12:16] == b"IHDR" and header[24] == 16
    if image.format == "TIFF":
        bits = getattr(image, "tag_v2", {}).get(_TIFF_BITS_PER_SAMPLE, ())
        return any(value > 8 for value in (bits if isinstance(bits, tuple) else (bits,)))
    return False


_CONVERSIONS = {
    **dict.fromkeys(("RGBA", "RGBa"), "RGBA image converted to RGB: alpha dropped"),
    "1": "1-bit black-and-white image converted to RGB",
    "L": "grayscale image (mode L) converted to RGB by repeating its channel",
    "LA": "grayscale image with alpha (mode LA) converted to RGB: alpha dropped, gray repeated",
    **dict.fromkeys(
        _GRAY16_MODES,
        "16-bit grayscale image (mode {mode}) converted to RGB by repeating its channel (16-bit precision kept)",
    ),
    "I": "32-bit integer grayscale image (mode I) read as 16-bit values (0..65535 to [0, 1]) and converted to RGB",
    "F": "floating-point grayscale image (mode F) read as values in [0, 1] and converted to RGB",
    "P": "palette image (mode P) converted to RGB through its palette",
    "PA": "palette image with transparency (mode {mode}) converted to RGB: transparency dropped",
    "CMYK": "CMYK image converted to RGB with Pillow's uncalibrated formula (no ICC colour management)",
    **dict.fromkeys(("YCbCr", "LAB", "HSV"), "{mode} image converted to RGB"),
}
"""What :func:`read_image` says it does to each Pillow mode but plain RGB (``"RGB"``, ``"RGBX"``)."""


def _conversion(image: Image.Image, file: BinaryIO, path: PathLike) -> str | None:
    """What reading ``image`` as RGB will do to it, from its header alone; ``None`` for plain RGB.

    Raises:
        ImageError: a mode that :func:`read_image` cannot convert.
    """
    mode = image.mode
    if mode not in _CONVERSIONS and mode not in ("RGB", "RGBX"):
        raise ImageError(
            f"{path}: unsupported image mode {mode!r} ({image.format}); expected an RGB, gray or palette image"
        )
    key = "PA" if mode == "P" and "transparency" in image.info else mode
    notes = [_CONVERSIONS[key].format(mode=mode)] if key in _CONVERSIONS else []
    if _narrowed_to_8_bits(image, file):
        notes.append(
            "16-bit colour or alpha samples read at 8-bit precision "
            "(Pillow decodes them to 8 bits; only 16-bit grayscale keeps its precision)"
        )
    if getattr(image, "is_animated", False):
        notes.append("only its first frame read")
    return "; ".join(notes) if notes else None


def inspect_image(path: PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """An :class:`ImageInfo` from the file's header only: size, mode, format, the conversion :func:`read_image` does.

    Cheap (no pixel data is decoded), so a dataset can validate all its files
    up front. A truncated file is not detected here; :func:`read_image` finds it.

    Args:
        path: image file.
        max_pixels: refuse images declaring more pixels than this (``None``: no limit).

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a folder.
        ImageTooLargeError: more than ``max_pixels`` pixels (or Pillow's limit).
        ImageError: empty file, not an image, corrupt header or zero size.

    Example:
        >>> import tempfile, pathlib
        >>> folder = tempfile.TemporaryDirectory()
        >>> path = pathlib.Path(folder.name) / "gray.png"
        >>> write_image(torch.full((3, 4, 6), 0.5), path)
        >>> info = inspect_image(path)
        >>> info.width, info.height, info.mode, info.format, info.conversion
        (6, 4, 'RGB', 'PNG', None)
        >>> folder.cleanup()
    """
    with _open(path, max_pixels) as (image, file):
        width, height = image.size
        return ImageInfo(Path(path), width, height, image.mode, image.format, _conversion(image, file, path))


def _webp_chunk(file: BinaryIO) -> bytes | None:
    """The first image chunk of a WebP file: ``b"VP8 "`` (lossy) or ``b"VP8L"`` (lossless), or ``None``.

    A WebP file is a RIFF container of chunks (``VP8X`` extended header,
    ``ALPH``, ``ANMF`` animation frames holding chunks of their own...); the
    first ``VP8 `` or ``VP8L`` chunk codes the first frame, the one
    :func:`read_image` reads.
    """
    file.seek(0)
    header = file.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:] != b"WEBP":
        return None
    position, end = 12, 8 + struct.unpack("<I", header[4:8])[0]
    while position + 8 <= end:
        file.seek(position)
        chunk = file.read(8)
        if len(chunk) < 8:
            return None
        name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if name in (b"VP8 ", b"VP8L"):
            return name
        # an animation frame: 16 bytes of frame header, then the frame's own chunks
        position += 8 + 16 if name == b"ANMF" else 8 + size + size % 2
    return None


def _jpeg2000_reversible(file: BinaryIO) -> bool:
    """Whether a JPEG 2000 codestream uses the reversible 5/3 wavelet (lossless coding), from its COD segment."""
    file.seek(0)
    data = file.read(1 << 16)
    start = data.find(b"\xff\x4f\xff\x51")  # SOC then SIZ: the codestream, bare (.j2k) or in a .jp2 box
    position = start + 2
    while start >= 0 and position + 4 <= len(data) and data[position] == 0xFF:
        if data[position + 1] == 0x52:  # COD: Lcod, Scod, SGcod (4 bytes), then levels, block sizes, style, transform
            return position + 13 < len(data) and data[position + 13] == 1
        position += 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
    return False


def _format_of(image: Image.Image, file: BinaryIO) -> ImageFormat:
    """The :class:`ImageFormat` of an opened image (its header and, for some formats, a few of its bytes)."""
    name = image.format or "unknown"
    if name in ("JPEG", "MPO"):
        return ImageFormat(name, "JPEG", True, "jpeg")
    if name == "WEBP":
        lossless = _webp_chunk(file) == b"VP8L"
        return ImageFormat(name, "VP8L WebP" if lossless else "VP8 WebP", not lossless, "webp")
    if name == "JPEG2000":
        if _jpeg2000_reversible(file):
            return ImageFormat(name, "JPEG 2000, reversible wavelet", False, "lossless")
        return ImageFormat(name, "JPEG 2000, irreversible wavelet", True, "jpeg2000")
    if name in ("AVIF", "HEIF"):
        return ImageFormat(name, name, True, name.lower())
    compression = image.info.get("compression") if name == "TIFF" else None
    if compression in _TIFF_LOSSY:
        codec = "JPEG" if _TIFF_LOSSY[compression] == "jpeg" else "WebP"
        return ImageFormat(name, f"TIFF with {codec} compression", True, _TIFF_LOSSY[compression])
    if name == "GIF" or image.mode in ("P", "PA"):
        return ImageFormat(name, f"{name} with a palette of at most 256 colours", True, "palette")
    return ImageFormat(name, name, False, "lossless")


def image_format(path: PathLike) -> ImageFormat:
    """How the image file ``path`` stores its pixels: which codec, and whether it is lossy, from its header.

    The header decides, never the name: a JPEG renamed ``.png`` is a JPEG.
    Lossy are JPEG, lossy WebP (a ``VP8`` chunk; ``VP8L`` is lossless WebP),
    JPEG 2000 with the irreversible wavelet, AVIF, HEIF, TIFF with JPEG or
    WebP compression, and palette images (GIF, or a PNG, BMP or TIFF of at
    most 256 colours). Nothing is decoded, and no size limit of invhide's
    applies (Pillow's decompression-bomb guard does).

    Args:
        path: an image file.

    Returns:
        An :class:`ImageFormat`.

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a folder.
        ImageTooLargeError: beyond Pillow's decompression-bomb guard.
        ImageError: empty file, not an image, corrupt header or zero size.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (8, 8)).save(folder / "photo.png", format="JPEG")  # a JPEG named .png
        >>> image_format(folder / "photo.png")
        ImageFormat(format='JPEG', codec='JPEG', lossy=True, channel='jpeg')
        >>> Image.new("RGB", (8, 8)).save(folder / "x.webp", lossless=True)
        >>> image_format(folder / "x.webp").lossy
        False
    """
    with _open(path, None) as (image, file):
        return _format_of(image, file)


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------


def _load(image: Image.Image, path: PathLike, max_pixels: int | None) -> None:
    """Decode all pixel data, so that a truncated or corrupt file fails here."""
    try:
        image.load()
    except Image.DecompressionBombError:
        raise _too_large(path, image.size, max_pixels) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error) as error:
        raise ImageError(f"{path}: truncated or corrupt image data: {describe(error)}") from None


def _orientation(image: Image.Image, path: PathLike) -> int:
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error) as error:
        warnings.warn(
            f"{path}: unreadable EXIF data ({describe(error)}); orientation ignored", ImageConversionWarning, 4
        )
        return 1
    return value if isinstance(value, int) and 2 <= value <= 8 else 1


def _gray(array: np.ndarray) -> np.ndarray:
    return np.repeat(array[..., None], 3, axis=-1)


def _to_array(image: Image.Image, path: PathLike) -> np.ndarray:
    """``(H, W, 3)`` uint8 for 8-bit sources, float32 in ``[0, 1]`` for anything finer."""
    mode = image.mode
    if mode in ("RGB", "RGBX", "RGBA"):
        return np.asarray(image)[..., :3]
    if mode in ("1", "L"):
        return _gray(np.asarray(image.convert("L")))
    if mode == "LA":
        return _gray(np.asarray(image)[..., 0])
    if mode in _GRAY16_MODES:
        return _gray(np.asarray(image).astype(np.float32) / 65535)
    if mode == "I":
        values = np.asarray(image)
        low_value, high_value = int(values.min()), int(values.max())
        if low_value < 0 or high_value > 65535:
            raise ImageError(
                f"{path}: 32-bit integer image with values in [{low_value}, {high_value}]; "
                f"expected 16-bit values in [0, 65535]"
            )
        return _gray(values.astype(np.float32) / 65535)
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if not np.isfinite(values).all():
            raise ImageError(f"{path}: floating-point image contains NaN or infinite values")
        low_value, high_value = float(values.min()), float(values.max())
        if low_value < 0 or high_value > 1:
            raise ImageError(
                f"{path}: floating-point image with values in [{low_value:g}, {high_value:g}]; "
                f"expected values in [0, 1]"
            )
        return _gray(values)
    if mode in ("P", "PA", "RGBa"):
        return np.asarray(image.convert("RGBA"))[..., :3]
    return np.asarray(image.convert("RGB"))  # CMYK, YCbCr, LAB, HSV: _conversion refused any other mode


def read_compact(path: PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, warn: bool = True) -> Tensor:
    """Decode ``path`` as :func:`read_image` does, into the most compact exact ``(3, H, W)`` tensor.

    8-bit sources give uint8 levels, others float32 in ``[0, 1]``: a dataset
    can cache the uint8 form (a quarter of the memory) and crop before
    converting with :func:`to_float`.

    Args:
        path: the image file.
        max_pixels: refuse larger images before decoding (``None``: no limit).
        warn: raise an :class:`ImageConversionWarning` for a conversion (a
            caller that announced it already passes ``False``).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.png"
        >>> write_image(torch.ones(3, 2, 2), path)
        >>> read_compact(path).dtype, to_float(read_compact(path)).max().item()
        (torch.uint8, 1.0)
    """
    with _open(path, max_pixels) as (image, file):
        note = _conversion(image, file, path)
        if note is not None and warn:
            warnings.warn(f"{path}: {note}", ImageConversionWarning, stacklevel=3)
        _load(image, path, max_pixels)
        if _orientation(image, path) != 1:
            image = ImageOps.exif_transpose(image)
        array = _to_array(image, path)
    planar = np.ascontiguousarray(array.transpose(2, 0, 1))
    return torch.from_numpy(planar if planar.flags.writeable else planar.copy())


def to_float(image: Tensor, copy: bool = False) -> Tensor:
    """A tensor from :func:`read_compact` (or a crop of it) as contiguous float32 in ``[0, 1]``.

    A uint8 input always gives a new tensor; a float32 one is copied only when
    it is not contiguous or ``copy`` is set (for callers that keep ``image``,
    such as a dataset's cache).
    """
    if image.dtype == torch.uint8:
        return image.float().div_(255)
    return image.to(torch.float32, memory_format=torch.contiguous_format, copy=copy)


def read_image(path: PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Tensor:
    """Read an image file as an RGB float tensor: size checked from the header, then decoded whole.

    A truncated file is an error, never a partly grey image. EXIF orientation
    is applied and every mode converted to RGB:

    ============================== ===============================================
    file                           result
    ============================== ===============================================
    8-bit RGB                      as is (no warning)
    16-bit colour PNG / TIFF       8-bit precision (Pillow decodes it so)
    grayscale L, 1-bit             gray repeated in R, G, B
    16-bit grayscale (I;16)        gray repeated, 16-bit precision kept
    32-bit integer (I)             values 0..65535 read as 16-bit, else an error
    float (F)                      values in ``[0, 1]`` as is, else an error
    palette P (with transparency)  colours looked up; transparency dropped
    RGBA, LA                       alpha dropped (not composited on a background)
    CMYK, YCbCr, LAB, HSV          Pillow's conversion (no ICC colour management)
    animated / multi-page          first frame
    ============================== ===============================================

    Every conversion (all rows but 8-bit RGB) raises an
    :class:`ImageConversionWarning` naming the file and what was done. ICC
    profiles are not applied: stored values are read as they are.

    Args:
        path: image file (any format Pillow reads).
        max_pixels: refuse images declaring more than this many pixels,
            before decoding them (``None``: no limit of ours; Pillow's guard,
            twice ``PIL.Image.MAX_IMAGE_PIXELS``, still applies).

    Returns:
        ``(3, H, W)`` float32 in ``[0, 1]``, any size from 1x1 up.

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a folder.
        PermissionError: the file cannot be read.
        ImageTooLargeError: more pixels than ``max_pixels`` or Pillow's guard.
        ImageError: (a ``ValueError``) empty file, not an image, corrupt
            header, truncated or corrupt data, zero size, unsupported mode,
            or out-of-range integer or float values.

    Example:
        >>> import tempfile, pathlib
        >>> folder = tempfile.TemporaryDirectory()
        >>> path = pathlib.Path(folder.name) / "x.png"
        >>> x = torch.rand(3, 8, 12)
        >>> write_image(x, path)
        >>> y = read_image(path)
        >>> tuple(y.shape), y.dtype, bool(torch.equal(y, quantize_8bit(x)))
        ((3, 8, 12), torch.float32, True)
        >>> read_image(path, max_pixels=64)
        Traceback (most recent call last):
        ...
        invhide.io.images.ImageTooLargeError: ...x.png: image declares 12x8 = 96 pixels, more than the limit of 64 ...
        >>> folder.cleanup()
    """
    return to_float(read_compact(path, max_pixels=max_pixels))


# --------------------------------------------------------------------------
# Quantising and writing
# --------------------------------------------------------------------------


def _levels(image: object, name: str) -> Tensor:
    """The 8-bit levels of :func:`~invhide.nn.functional.quantize_8bit` as ``(3, H, W)`` uint8.

    ``image`` must be a finite float ``(3, H, W)`` or ``(1, 3, H, W)`` tensor.
    """
    image = tensor(name, image)
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3 or image.shape[1] < 1 or image.shape[2] < 1:
        raise InputError(argument=name, problem=f"must have shape (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
    return levels_8bit(image_batch(name, image.detach()[None], finite=True)[0])


def to_uint8(image: Tensor) -> np.ndarray:
    """An RGB image as a ``(H, W, 3)`` uint8 numpy array (clamped to ``[0, 1]``, rounded).

    Args:
        image: ``(3, H, W)`` or ``(1, 3, H, W)`` floats in ``[0, 1]``, any device.

    Returns:
        ``(H, W, 3)`` uint8, ready for ``PIL.Image.fromarray`` or matplotlib.

    Raises:
        TypeError: not a float tensor.
        ValueError: wrong shape, NaN or infinite values.

    Example:
        >>> to_uint8(torch.ones(3, 2, 4)).shape
        (2, 4, 3)
    """
    return _levels(image, "image").permute(1, 2, 0).cpu().numpy()


def _encode(levels: Tensor, suffix: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(levels.permute(1, 2, 0).cpu().numpy())).save(buffer, format=_FORMATS[suffix])
    return buffer.getvalue()


def _check_suffix(shown: str, suffix: str) -> None:
    if suffix in _LOSSY_SUFFIXES:
        raise InputError(
            f"{shown}: {suffix} is a lossy or colour-reducing format that would destroy the hidden image; "
            f"write a lossless {', '.join(LOSSLESS_SUFFIXES)} file (.png recommended)"
        )
    if suffix not in LOSSLESS_SUFFIXES:
        raise InputError(
            f"{shown}: unsupported file suffix {suffix or '(none)'!r}; expected one of {', '.join(LOSSLESS_SUFFIXES)}"
        )


def encode_image(image: Tensor, suffix: str = ".png") -> bytes:
    """The bytes :func:`write_image` stores for ``image`` in a file with this ``suffix``, in memory.

    Encoding is deterministic: a file that :func:`write_image` writes holds
    exactly these bytes, so a caller can check what a reader will get
    (:func:`decode_image`) before writing anything.

    Args:
        image: ``(3, H, W)`` or ``(1, 3, H, W)`` float tensor, any device
            (clamped to ``[0, 1]`` and rounded to 8 bits, as :func:`write_image` does).
        suffix: ``.png``, ``.tif``, ``.tiff`` or ``.bmp`` (any case).

    Raises:
        TypeError: not a float tensor.
        ValueError: wrong shape, NaN or infinite values, a lossy or unknown suffix.

    Example:
        >>> x = torch.rand(3, 4, 6)
        >>> bool(torch.equal(decode_image(encode_image(x)), quantize_8bit(x)))
        True
    """
    suffix = suffix.lower() if isinstance(suffix, str) else suffix
    _check_suffix("suffix", suffix)
    return _encode(_levels(image, "image"), suffix)


def decode_image(data: bytes) -> Tensor:
    """The image in bytes from :func:`encode_image` (a file :func:`write_image` wrote), as :func:`read_image` reads it.

    Args:
        data: the bytes of an 8-bit RGB PNG, TIFF or BMP.

    Returns:
        ``(3, H, W)`` float32 in ``[0, 1]``.

    Raises:
        ImageError: the bytes are not such an image.

    Example:
        >>> decode_image(encode_image(torch.ones(3, 2, 2))).shape
        torch.Size([3, 2, 2])
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            mode, array = image.mode, np.array(image)
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error) as error:
        raise ImageError(f"in-memory image: not an image write_image stores: {describe(error)}") from None
    if mode != "RGB":
        raise ImageError(f"in-memory image: mode {mode}, not the 8-bit RGB that write_image stores")
    return to_float(torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))))


def _check_target(path: Path, shown: str, suffix: str) -> None:
    _check_suffix(shown, suffix)
    folder = path.parent
    if not folder.exists():
        raise MissingPathError(f"{shown}: the output folder {folder} does not exist (folders are not created)")
    if not folder.is_dir():
        raise NotAFolderError(f"{shown}: {folder} is not a folder")
    if path.is_dir():
        raise IsAFolderError(f"{shown}: is a folder, not a file name")


def write_image(image: Tensor, path: PathLike) -> None:
    """Write an RGB image as an 8-bit lossless file, atomically.

    Values are clamped to ``[0, 1]`` (a stego image straight from the network
    may overshoot slightly) and rounded to 256 levels, half to even:
    :func:`invhide.nn.functional.quantize_8bit` gives the stored values, and
    :func:`read_image` returns them bit for bit. The format follows the
    suffix: ``.png`` (recommended), ``.tif``/``.tiff`` or ``.bmp``. Lossy
    formats (``.jpg``, ``.webp``, ``.gif`` ...) are refused: compression would
    destroy the hidden image.

    The file is written to a temporary name in the same folder, flushed to
    disk and renamed over ``path`` in one step, so readers never see a partial
    image and a failed write leaves any previous file untouched and no
    temporary file behind. The output folder must exist.

    Args:
        image: ``(3, H, W)`` or ``(1, 3, H, W)`` float tensor, any device.
        path: output file.

    Raises:
        TypeError: not a float tensor.
        ValueError: wrong shape, NaN or infinite values, a lossy or unknown
            suffix.
        FileNotFoundError: the output folder does not exist.
        IsADirectoryError: ``path`` is a folder.
        PermissionError: the folder is not writable.
        OSError: the write failed (disk full ...); nothing is left behind.

    Example:
        >>> import tempfile, pathlib
        >>> folder = tempfile.TemporaryDirectory()
        >>> x = torch.rand(1, 3, 4, 4, dtype=torch.float64)
        >>> write_image(x, pathlib.Path(folder.name) / "x.png")
        >>> y = read_image(pathlib.Path(folder.name) / "x.png")
        >>> bool(torch.equal(y, quantize_8bit(x[0]).float()))
        True
        >>> write_image(x, pathlib.Path(folder.name) / "x.jpg")
        Traceback (most recent call last):
        ...
        invhide.errors.InputError: ...x.jpg: .jpg is a lossy or colour-reducing format ...
        >>> folder.cleanup()
    """
    _check_path(path)
    target, shown = Path(path), os.fspath(path)
    suffix = target.suffix.lower()
    _check_target(target, shown, suffix)
    data = _encode(_levels(image, f"{shown}: image"), suffix)  # in memory first: a failed encode creates nothing
    with atomic_write(target) as file:
        file.write(data)
