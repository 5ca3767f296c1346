"""The real lossy channels a stego image meets after it leaves the hider, for evaluation.

Each function takes what the sender publishes, an image in ``[0, 1]``, and
returns what the receiver reads back, as 8-bit values ``k / 255`` of the
input's shape, dtype and device. The input is first rounded to 8 bits
(:func:`~invhide.nn.functional.quantize_8bit`, as saving it would), so a
float stego and its PNG give the same result:

============================== ==================================================
channel                        what the receiver reads
============================== ==================================================
:func:`jpeg`                   a Pillow (libjpeg) JPEG at ``quality``, baseline,
                               4:2:0 chroma subsampling (Pillow's default, passed
                               explicitly), decoded by Pillow
:func:`webp`                   a lossy Pillow (libwebp) WebP at ``quality``
                               (libwebp's 4:2:0 YUV, Pillow's default ``method=4``)
:func:`gaussian_noise`         ``image + sigma / 255 * N(0, 1)``, then clamped and
                               rounded to 8 bits
:func:`resize`                 down to ``scale`` times the size and back up with
                               Pillow's bicubic filter (antialiased when shrinking),
                               8 bits in between, as a resized file would hold
:func:`round8`                 the image saved losslessly (PNG) and read back
============================== ==================================================

These are the channels to evaluate on; the differentiable stand-ins that
training backpropagates through are in :mod:`invhide.training.channels`,
which reads the same specs (:func:`read_spec`). :func:`parse` turns a spec
such as ``"jpeg:90"`` into a :class:`RealChannel` with a readable ``name``::

    channel = parse("jpeg:90")
    received = channel(stego)  # (B, 3, H, W) in [0, 1]
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import torch
from PIL import Image, features
from torch import Tensor

from invhide.checks import image_batch, integer, number, one_of
from invhide.errors import InputError, InputTypeError
from invhide.nn.functional import levels_8bit, quantize_8bit

__all__ = [
    "KINDS",
    "RESIZE_FILTERS",
    "ChannelSpec",
    "RealChannel",
    "gaussian_noise",
    "jpeg",
    "parse",
    "read_spec",
    "resize",
    "round8",
    "scaled_size",
    "webp",
]

KINDS: tuple[str, ...] = ("jpeg", "webp", "noise", "resize", "round")
"""The channel kinds of a spec: ``jpeg:Q``, ``webp:Q``, ``noise:S``, ``resize:F`` and ``round`` (also ``png``,
``lossless``)."""
RESIZE_FILTERS: tuple[str, ...] = ("bicubic", "bilinear", "lanczos")
"""Pillow filters of :func:`resize`; ``"bicubic"`` is the one :class:`invhide.training.channels.Resize` reproduces."""

ResizeFilter = Literal["bicubic", "bilinear", "lanczos"]
_PILLOW_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
}
_LOSSLESS_NAMES = ("round", "png", "lossless")  # one channel: the image stored as 8 bits without loss
_STRENGTHS = {"jpeg": "Q", "webp": "Q", "noise": "S", "resize": "F"}  # kind -> placeholder in messages
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_SPEC = re.compile(rf"(?P<kind>[a-z]+)(?::(?P<low>{_NUMBER})(?:-(?P<high>{_NUMBER}))?)?")


# --------------------------------------------------------------------------
# 8-bit levels in and out
# --------------------------------------------------------------------------


def _batch(image: object, name: str = "image") -> tuple[Tensor, bool]:
    """``image`` as a finite ``(B, C, H, W)`` float tensor, and whether it came as one ``(C, H, W)`` image."""
    if isinstance(image, Tensor) and image.dim() == 3:
        return image_batch(name, image[None], finite=True), True
    if isinstance(image, Tensor) and image.dim() != 4:
        raise InputError(argument=name, problem=f"must have shape (C, H, W) or (B, C, H, W), got {tuple(image.shape)}")
    return image_batch(name, image, finite=True), False


def _levels(batch: Tensor) -> np.ndarray:
    """The 8-bit levels of ``quantize_8bit(batch)`` as a ``(B, H, W, C)`` uint8 array on the CPU."""
    return np.ascontiguousarray(levels_8bit(batch.detach()).permute(0, 2, 3, 1).cpu().numpy())


def _from_levels(levels: np.ndarray, like: Tensor, single: bool) -> Tensor:
    """``(B, H, W, C)`` uint8 levels as ``k / 255`` in ``like``'s dtype and device, as ``quantize_8bit`` gives."""
    work = torch.float32 if like.dtype in (torch.float16, torch.bfloat16) else like.dtype
    out = (torch.from_numpy(levels).permute(0, 3, 1, 2).to(like.device, work) / 255).to(like.dtype)
    return out[0] if single else out


def _rgb(batch: Tensor, what: str) -> None:
    if batch.shape[1] != 3:
        raise InputError(argument="image", problem=f"must be RGB (3 channels) for {what}, got {batch.shape[1]}")


def _through_codec(levels: np.ndarray, save: Callable[[Image.Image, io.BytesIO], None]) -> np.ndarray:
    """Encode each ``(H, W, 3)`` image of ``levels`` to bytes in memory with ``save`` and decode it with Pillow."""
    decoded = []
    for array in levels:
        buffer = io.BytesIO()
        save(Image.fromarray(array), buffer)  # (H, W, 3) uint8: RGB
        buffer.seek(0)
        with Image.open(buffer) as image:
            decoded.append(np.asarray(image.convert("RGB")))
    return np.stack(decoded)


# --------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------


def jpeg(image: Tensor, quality: int) -> Tensor:
    """The image after a JPEG round trip through Pillow, in memory.

    Baseline JPEG by Pillow's libjpeg at ``quality`` (the libjpeg scaling of
    the standard tables), 4:2:0 chroma subsampling (Pillow's default, passed
    explicitly), no optimisation; decoded by Pillow (libjpeg's default
    "islow" integer IDCT and fancy chroma upsampling).

    Args:
        image: ``(3, H, W)`` or ``(B, 3, H, W)`` floats in ``[0, 1]`` (clamped
            and rounded to 8 bits first), any device.
        quality: an integer in ``[1, 100]``.

    Returns:
        The decoded image, ``k / 255`` values of ``image``'s shape, dtype and device.

    Raises:
        ValueError: not RGB, a wrong shape, NaN or infinite values, a bad ``quality``.
        TypeError: not a float tensor.

    Example:
        >>> image = torch.rand(3, 16, 24)
        >>> received = jpeg(image, 90)
        >>> received.shape, bool(torch.equal(received, jpeg(image, 90)))
        (torch.Size([3, 16, 24]), True)
    """
    quality = integer("quality", quality, low=1, high=100)
    batch, single = _batch(image)
    _rgb(batch, "JPEG")

    def save(picture: Image.Image, buffer: io.BytesIO) -> None:
        picture.save(buffer, format="JPEG", quality=quality, subsampling=2)  # 2: 4:2:0

    return _from_levels(_through_codec(_levels(batch), save), batch, single)


def webp(image: Tensor, quality: int) -> Tensor:
    """The image after a lossy WebP round trip through Pillow, in memory.

    Lossy WebP by Pillow's libwebp at ``quality`` (libwebp's 4:2:0 YUV,
    Pillow's default ``method=4``). No differentiable WebP exists; train
    through :class:`invhide.training.channels.JPEG` and evaluate here.

    Args:
        image: ``(3, H, W)`` or ``(B, 3, H, W)`` floats in ``[0, 1]`` (clamped
            and rounded to 8 bits first), any device.
        quality: an integer in ``[0, 100]``.

    Returns:
        The decoded image, ``k / 255`` values of ``image``'s shape, dtype and device.

    Raises:
        ValueError: not RGB, a wrong shape, NaN or infinite values, a bad
            ``quality``, or a Pillow built without WebP.
        TypeError: not a float tensor.

    Example:
        >>> webp(torch.rand(2, 3, 16, 16), 80).shape
        torch.Size([2, 3, 16, 16])
    """
    quality = integer("quality", quality, low=0, high=100)
    batch, single = _batch(image)
    _rgb(batch, "WebP")
    if not features.check("webp"):
        raise InputError("the webp channel needs a Pillow built with WebP (libwebp); this one has none")

    def save(picture: Image.Image, buffer: io.BytesIO) -> None:
        picture.save(buffer, format="WEBP", quality=quality, lossless=False)

    return _from_levels(_through_codec(_levels(batch), save), batch, single)


def gaussian_noise(image: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """The image plus Gaussian noise of ``sigma`` grey levels, then clamped and rounded to 8 bits.

    The noise is drawn as float32 (float64 for a float64 image) on the
    generator's device (``image``'s without one) and moved to ``image``'s.

    Args:
        image: ``(C, H, W)`` or ``(B, C, H, W)`` floats in ``[0, 1]`` (rounded to 8 bits first), any device.
        sigma: standard deviation on the 0..255 scale, ``>= 0``.
        generator: the random generator (``None``: torch's global one).

    Returns:
        ``quantize_8bit(quantize_8bit(image) + sigma / 255 * noise)``, of ``image``'s shape, dtype and device.

    Raises:
        ValueError: a wrong shape, NaN or infinite values, a negative ``sigma``.
        TypeError: not a float tensor, or ``generator`` not a ``torch.Generator``.

    Example:
        >>> image = torch.full((1, 3, 64, 64), 0.5)
        >>> noisy = gaussian_noise(image, 4.0, torch.Generator().manual_seed(0))
        >>> round(((noisy - image) * 255).std().item())
        4
    """
    sigma = number("sigma", sigma, low=0)
    batch, single = _batch(image)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InputTypeError(argument="generator", problem=f"must be a torch.Generator or None, got {generator!r}")
    device = generator.device if generator is not None else batch.device
    noise_dtype = torch.float64 if batch.dtype == torch.float64 else torch.float32
    noise = torch.randn(batch.shape, generator=generator, device=device, dtype=noise_dtype).to(batch.device)
    work = batch.detach().to(noise_dtype)
    out = quantize_8bit(quantize_8bit(work) + noise * (sigma / 255)).to(batch.dtype)
    return out[0] if single else out


def scaled_size(size: int, scale: float) -> int:
    """The side that :func:`resize` and :class:`invhide.training.channels.Resize` shrink ``size`` to.

    ``size * scale`` rounded half up, at least 1.

    Example:
        >>> scaled_size(256, 0.75), scaled_size(5, 0.5), scaled_size(3, 0.01)
        (192, 3, 1)
    """
    return max(1, math.floor(size * scale + 0.5))


def resize(image: Tensor, scale: float, filter: ResizeFilter = "bicubic") -> Tensor:
    """The image shrunk to ``scale`` times its size and enlarged back with Pillow, 8 bits in between.

    Each side goes to :func:`scaled_size` and back, each channel resized as
    an 8-bit grey image (Pillow resizes RGB band by band, so this equals an
    RGB resize). Pillow widens the filter when shrinking (antialiasing).

    Args:
        image: ``(C, H, W)`` or ``(B, C, H, W)`` floats in ``[0, 1]`` (rounded to 8 bits first), any device.
        scale: the shrink factor, in ``(0, 1]``.
        filter: ``"bicubic"`` (the default, which the training
            :class:`~invhide.training.channels.Resize` reproduces to about 54 dB),
            ``"bilinear"`` or ``"lanczos"``.

    Returns:
        ``k / 255`` values of ``image``'s shape, dtype and device.

    Raises:
        ValueError: a wrong shape, NaN or infinite values, a bad ``scale`` or ``filter``.
        TypeError: not a float tensor.

    Example:
        >>> image = torch.rand(3, 20, 30)
        >>> resize(image, 0.5).shape, bool(torch.equal(resize(image, 1.0), round8(image)))
        (torch.Size([3, 20, 30]), True)
    """
    scale = number("scale", scale, low=0, high=1, low_open=True)
    resample = _PILLOW_FILTERS[one_of("filter", filter, RESIZE_FILTERS)]
    batch, single = _batch(image)
    levels = _levels(batch)
    height, width = levels.shape[1:3]
    small = (scaled_size(width, scale), scaled_size(height, scale))  # Pillow sizes are (width, height)
    out = np.empty_like(levels)
    for index, array in enumerate(levels):
        for channel in range(array.shape[2]):
            plane = Image.fromarray(np.ascontiguousarray(array[:, :, channel]))  # (H, W) uint8: L
            out[index, :, :, channel] = np.asarray(plane.resize(small, resample).resize((width, height), resample))
    return _from_levels(out, batch, single)


def round8(image: Tensor) -> Tensor:
    """The image stored losslessly as 8 bits (a PNG) and read back: :func:`~invhide.nn.functional.quantize_8bit`.

    Args:
        image: ``(C, H, W)`` or ``(B, C, H, W)`` floats, any device.

    Returns:
        ``k / 255`` values of ``image``'s shape, dtype and device.

    Raises:
        ValueError: a wrong shape, NaN or infinite values.
        TypeError: not a float tensor.

    Example:
        >>> (round8(torch.tensor([[[0.1, 1.2]]])) * 255).tolist()
        [[[26.0, 255.0]]]
    """
    batch, single = _batch(image)
    out = quantize_8bit(batch.detach())
    return out[0] if single else out


# --------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelSpec:
    """A channel spec read by :func:`read_spec`: the kind and its strength range.

    Attributes:
        kind: one of :data:`KINDS`.
        low: the smallest strength (``None`` for ``round``); an ``int`` when written without a decimal point.
        high: the largest strength, equal to ``low`` for one strength.
    """

    kind: str
    low: float | None = None
    high: float | None = None

    @property
    def name(self) -> str:
        """The spec written canonically: ``"jpeg:90"``, ``"noise:1-10"``, ``"round"``.

        Example:
            >>> read_spec(" JPEG:50-95 ").name, read_spec("png").name
            ('jpeg:50-95', 'round')
        """
        if self.low is None:
            return self.kind
        strength = f"{self.low:g}" if self.low == self.high else f"{self.low:g}-{self.high:g}"
        return f"{self.kind}:{strength}"


def _spec_error(spec: str, problem: str) -> InputError:
    return InputError(argument="spec", problem=f"{spec!r} {problem}")


def _value(text: str) -> float:
    return int(text) if text.isdigit() else float(text)


def read_spec(spec: str) -> ChannelSpec:
    """Read a channel spec: ``kind`` or ``kind:STRENGTH`` or ``kind:LOW-HIGH`` (case and spaces ignored).

    ======================= =================================================
    spec                    channel
    ======================= =================================================
    ``jpeg:Q``              JPEG at quality ``Q`` (an integer, 1..100)
    ``webp:Q``              lossy WebP at quality ``Q`` (0..100; evaluation only)
    ``noise:S``             Gaussian noise of ``S`` grey levels (0..255 scale)
    ``resize:F``            shrink to ``F`` times the size and back, ``F`` in (0, 1]
    ``round``               8-bit rounding (``png`` and ``lossless`` name it too)
    ======================= =================================================

    A range ``LOW-HIGH`` (``jpeg:50-95``) lets training draw a strength per
    image; :func:`parse` (evaluation) needs one strength. Strengths are plain
    decimal numbers; their bounds are checked by the channels that use them.

    Raises:
        ValueError: an unknown kind, a missing, malformed or reversed strength,
            or a strength given to ``round``.
        TypeError: ``spec`` is not a string.

    Example:
        >>> read_spec("jpeg:90"), read_spec("noise:1-10.5")
        (ChannelSpec(kind='jpeg', low=90, high=90), ChannelSpec(kind='noise', low=1, high=10.5))
        >>> read_spec("blur:3")
        Traceback (most recent call last):
        ...
        invhide.errors.InputError: spec 'blur:3' names an unknown channel 'blur'; expected jpeg:Q, webp:Q, ...
    """
    if not isinstance(spec, str):
        raise InputTypeError(argument="spec", problem=f"must be a string such as 'jpeg:90', got {type(spec).__name__}")
    text = "".join(spec.split()).lower()
    kind = text.split(":", 1)[0]
    if kind in _LOSSLESS_NAMES:
        if text != kind:
            raise _spec_error(spec, f"gives a strength to {kind}, which takes none; write {kind}")
        return ChannelSpec("round")
    if kind not in _STRENGTHS:
        raise _spec_error(
            spec,
            f"names an unknown channel {kind!r}; expected jpeg:Q, webp:Q, noise:S, resize:F or round "
            f"(also png, lossless), with a range such as jpeg:50-95 for training",
        )
    letter = _STRENGTHS[kind]
    match = _SPEC.fullmatch(text)
    if match is None or match["low"] is None:
        raise _spec_error(
            spec, f"needs a strength written {kind}:{letter} or {kind}:LOW-HIGH with plain decimal numbers"
        )
    low = _value(match["low"])
    high = low if match["high"] is None else _value(match["high"])
    if low > high:
        raise _spec_error(spec, f"gives a reversed range {low:g}-{high:g}; write the smaller strength first")
    return ChannelSpec(kind, low, high)


@dataclass(frozen=True)
class RealChannel:
    """One real channel from :func:`parse`: call it on images; ``name`` says which (``"jpeg:90"``).

    Attributes:
        name: the canonical spec, for tables and logs.
        function: ``function(image, generator)``, one of this module's channels at a fixed strength.
    """

    name: str
    function: Callable[[Tensor, torch.Generator | None], Tensor]

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """What the receiver reads after this channel, for ``(C, H, W)`` or ``(B, C, H, W)`` images in ``[0, 1]``;
        ``generator`` drives the random channels (noise) and is ignored by the others."""
        return self.function(image, generator)


def parse(spec: str) -> RealChannel:
    """The real channel a spec names, at one strength (see :func:`read_spec` for the grammar).

    Args:
        spec: ``"jpeg:Q"``, ``"webp:Q"``, ``"noise:S"``, ``"resize:F"`` or
            ``"round"`` (also ``"png"``, ``"lossless"``).

    Returns:
        A :class:`RealChannel`; its strength was checked here, so calling it
        fails only on a bad image.

    Raises:
        ValueError: a malformed spec, a range (``jpeg:50-95``: evaluation
            measures one strength at a time) or a strength out of bounds.
        TypeError: ``spec`` is not a string.

    Example:
        >>> channel = parse("JPEG:75")
        >>> channel.name, channel(torch.rand(3, 16, 16)).shape
        ('jpeg:75', torch.Size([3, 16, 16]))
        >>> parse("jpeg:101")
        Traceback (most recent call last):
        ...
        invhide.errors.InputError: spec 'jpeg:101': quality must be an integer in [1, 100], got 101
    """
    found = read_spec(spec)
    if found.kind == "round":
        return RealChannel(found.name, _fixed(round8))
    if found.low != found.high:
        raise _spec_error(
            spec,
            f"gives a range; evaluation measures one strength at a time, "
            f"e.g. {found.kind}:{found.low:g} or {found.kind}:{found.high:g}",
        )
    value = found.low
    try:
        if found.kind == "jpeg":
            function = _fixed(jpeg, quality=integer("quality", value, low=1, high=100))
        elif found.kind == "webp":
            function = _fixed(webp, quality=integer("quality", value, low=0, high=100))
        elif found.kind == "noise":
            function = partial(_noise, sigma=number("sigma", value, low=0))
        else:
            function = _fixed(resize, scale=number("scale", value, low=0, high=1, low_open=True))
    except InputError as error:
        raise InputError(argument="spec", problem=f"{spec!r}: {error}") from None
    return RealChannel(found.name, function)


def _fixed(function: Callable[..., Tensor], **strength: float) -> Callable[[Tensor, torch.Generator | None], Tensor]:
    """``function`` at one strength, called as ``(image, generator)`` with the generator unused."""

    def channel(image: Tensor, generator: torch.Generator | None) -> Tensor:
        return function(image, **strength)

    return channel


def _noise(image: Tensor, generator: torch.Generator | None, *, sigma: float) -> Tensor:
    return gaussian_noise(image, sigma, generator)
