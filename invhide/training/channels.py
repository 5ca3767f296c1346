"""Differentiable lossy channels for training: what a stego image may suffer before the receiver reveals it.

Each channel is an ``nn.Module`` whose ``forward(x, generator=None)`` takes
a ``(B, C, H, W)`` float stego (values about ``[0, 1]``, possibly
overshooting a little) and returns the received stego of the same shape and
dtype, with a gradient (exact, or a stated surrogate) so that the hider can
train through it. A channel with a strength draws it per image, uniformly
from its range, from ``generator`` (torch's global generator without one), so
a seeded generator replays a batch exactly:

* :class:`Rounding8Bit`: 8-bit rounding, what a PNG keeps, with a
  straight-through gradient (``"ste"``), PRIS's sine surrogate (``"sine"``)
  or Shin and Song's cubic rounding (``"cubic"``, which also changes the
  forward value by up to 1/8 of a level);
* :class:`GaussianNoise`: ``x + sigma / 255 * N(0, 1)``, ``sigma`` in grey
  levels; exact gradient;
* :class:`JPEG`: kornia's differentiable JPEG (4:2:0) at an integer
  quality; kornia's gradient (cubic rounding of the DCT coefficients);
* :class:`Resize`: shrink to ``scale`` times the size and back
  (``interpolate``, bicubic by default); exact gradient;
* :class:`OneOf` (one of several channels per image), :class:`Sequence`
  (channels in order) and :class:`Identity`.

Channels compose::

    channel = Sequence(OneOf([JPEG((50, 95)), GaussianNoise((1, 10)), Identity()]), Rounding8Bit())
    received = channel(stego, generator=torch.Generator().manual_seed(0))

:func:`channel` builds one from a spec such as ``"jpeg:50-95"`` (the grammar
of :func:`invhide.evaluation.channels.read_spec`). Evaluate on the real
codecs of :mod:`invhide.evaluation.channels`, never on these stand-ins.
A custom channel subclasses :class:`Channel` and implements
:meth:`~Channel.transmit`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invhide.checks import image_batch, integer, number, one_of, tensor
from invhide.errors import InputError, InputTypeError
from invhide.evaluation.channels import read_spec, scaled_size
from invhide.training.step import round_ste

__all__ = [
    "JPEG",
    "RESIZE_MODES",
    "ROUNDING_MODES",
    "Channel",
    "GaussianNoise",
    "Identity",
    "OneOf",
    "RangedChannel",
    "Resize",
    "Rounding8Bit",
    "Sequence",
    "channel",
    "file_channels",
]

RoundingMode = Literal["ste", "sine", "cubic"]
ROUNDING_MODES: tuple[str, ...] = ("ste", "sine", "cubic")
"""Gradients of :class:`Rounding8Bit`: straight-through, PRIS's sine surrogate, Shin and Song's cubic."""
ResizeMode = Literal["bicubic", "bilinear", "area", "nearest"]
RESIZE_MODES: tuple[str, ...] = ("bicubic", "bilinear", "area", "nearest")
"""``torch.nn.functional.interpolate`` modes of :class:`Resize` (bicubic and bilinear antialiased when shrinking)."""

Range = float | tuple[float, float]
_ANTIALIASED = ("bicubic", "bilinear")
_JPEG_BLOCK = 16  # a 4:2:0 JPEG codes 16x16 macroblocks


def _working(x: Tensor) -> Tensor:
    """``x`` in float32 when it is half precision (codecs and filters lose too much in 16 bits), else as is."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _clamp_through(x: Tensor) -> Tensor:
    """``x`` clamped to ``[0, 1]`` in value, with gradient 1 everywhere (straight-through, as :func:`round_ste`)."""
    return x + (x.detach().clamp(0, 1) - x.detach())


def _check_generator(generator: object) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InputTypeError(argument="generator", problem=f"must be a torch.Generator or None, got {generator!r}")


def _assemble(parts: list[Tensor], indices: list[list[int]], like: Tensor) -> Tensor:
    """The batch whose images ``indices[k]`` are ``parts[k]``, in the original order."""
    if len(parts) == 1:
        return parts[0]
    order = torch.tensor([i for group in indices for i in group], device=like.device)
    return torch.cat(parts)[torch.argsort(order)]


def _groups(keys: list[Any]) -> dict[Any, list[int]]:
    """The indices of each distinct key, in first-seen order."""
    groups: dict[Any, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    return groups


def _strength_range(
    name: str, value: object, *, low: float, high: float | None = None, low_open: bool = False, whole: bool = False
) -> tuple[float, float]:
    """``value`` (a number, or a ``(low, high)`` pair) as a ``(low, high)`` pair of checked numbers."""
    pair = value if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise InputError(argument=name, problem=f"must be a number or a (low, high) pair, got {value!r}")
    if whole:
        checked = tuple(
            float(integer(name, item, low=int(low), high=None if high is None else int(high))) for item in pair
        )
    else:
        checked = tuple(number(name, item, low=low, high=high, low_open=low_open) for item in pair)
    if checked[0] > checked[1]:
        raise InputError(argument=name, problem=f"must be a (low, high) pair with low <= high, got {value!r}")
    return checked  # type: ignore[return-value]


def _format_range(pair: tuple[float, float]) -> str:
    return f"{pair[0]:g}" if pair[0] == pair[1] else f"({pair[0]:g}, {pair[1]:g})"


# --------------------------------------------------------------------------
# Base classes
# --------------------------------------------------------------------------


class Channel(nn.Module):
    """A lossy channel: ``forward(x, generator=None)`` checks its inputs and returns :meth:`transmit`.

    Subclasses implement :meth:`transmit`; combinators call their channels'
    :meth:`transmit` directly, so the inputs are checked once, at the edge.
    """

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The received stego.

        Args:
            x: ``(B, C, H, W)`` floats, about ``[0, 1]``.
            generator: the random generator that draws strengths and noise
                (``None``: torch's global one). Draws happen on its device;
                one on ``x``'s device avoids copies.

        Returns:
            ``(B, C, H, W)`` of ``x``'s dtype and device.

        Raises:
            ValueError: ``x`` is not ``(B, C, H, W)`` (or not RGB for a JPEG).
            TypeError: ``x`` is not a float tensor, or ``generator`` not a ``torch.Generator``.
        """
        image_batch("x", x)
        _check_generator(generator)
        return self.transmit(x, generator)

    def transmit(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """:meth:`forward` without the checks: ``x`` is a float ``(B, C, H, W)`` tensor."""
        raise NotImplementedError(f"{type(self).__name__} must implement transmit(x, generator)")


class RangedChannel(Channel):
    """A channel with a strength per image, drawn uniformly from ``self.strength``, a ``(low, high)`` pair.

    ``forward(x, generator)`` is ``apply(x, sample(len(x), generator), generator)``: the strengths are drawn
    first, then any noise, from the same generator. :meth:`apply` sets the strengths by hand (to measure a
    surrogate at one strength).
    """

    strength: tuple[float, float]
    bounds: ClassVar[tuple[float, float | None, bool]] = (0.0, None, False)
    """The strengths the channel accepts: ``(low, high, low_open)``, ``high`` ``None`` for none."""
    whole_strengths: ClassVar[bool] = False  # draw integers (JPEG qualities)

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """``batch_size`` strengths drawn uniformly from ``self.strength`` (whole numbers for a JPEG quality).

        Args:
            batch_size: how many.
            generator: the random generator (``None``: torch's global one);
                nothing is drawn when the range is one value.
            device: where to draw (default: the generator's device, else the CPU).

        Returns:
            ``(batch_size,)`` float32 strengths.

        Example:
            >>> noise = GaussianNoise((1, 10))
            >>> [round(sigma, 2) for sigma in noise.sample(3, torch.Generator().manual_seed(0)).tolist()]
            [9.73, 7.37, 5.13]
        """
        batch_size = integer("batch_size", batch_size, low=0)
        _check_generator(generator)
        if device is None:
            device = generator.device if generator is not None else "cpu"
        low, high = self.strength
        if low == high:
            return torch.full((batch_size,), low, device=device)
        if self.whole_strengths:
            drawn = torch.randint(int(low), int(high) + 1, (batch_size,), generator=generator, device=device)
            return drawn.float()
        drawn = torch.rand(batch_size, generator=generator, device=device, dtype=torch.float64)
        return (low + (high - low) * drawn).float()

    def apply(self, x: Tensor, strength: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The received stego with the given per-image strengths, which may lie outside ``self.strength``.

        ``forward(x, generator)`` is ``apply(x, sample(len(x), generator), generator)``.

        Args:
            x: ``(B, C, H, W)`` floats, about ``[0, 1]``.
            strength: ``(B,)`` strengths, any device, within the bounds the constructor accepts.
            generator: the random generator of a random channel's noise (``None``: torch's global one).

        Returns:
            ``(B, C, H, W)`` of ``x``'s dtype and device.

        Raises:
            ValueError: a wrong shape or a strength out of bounds.
            TypeError: a non-float ``x``, a non-tensor ``strength`` or a bad ``generator``.
        """
        image_batch("x", x)
        _check_generator(generator)
        tensor("strength", strength, dims=1, floating=False)
        if len(strength) != len(x):
            raise InputError(
                argument="strength", problem=f"must hold one strength per image, {len(x)}, got {len(strength)}"
            )
        strength = strength.detach().to(x.device, torch.float64)
        self._check_bounds(strength)
        return self._apply(x, strength, generator)

    def _check_bounds(self, strength: Tensor) -> None:
        if not len(strength):
            return
        low, high, low_open = self.bounds
        smallest, largest = strength.min().item(), strength.max().item()
        below = not math.isfinite(smallest) or smallest < low or (low_open and smallest == low)
        above = not math.isfinite(largest) or (high is not None and largest > high)
        if below or above:
            bounds = f"{'(' if low_open else '['}{low:g}, {'inf)' if high is None else f'{high:g}]'}"
            raise InputError(argument="strength", problem=f"must lie in {bounds}, got {smallest:g} to {largest:g}")

    def transmit(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        # The strengths, then any noise, come from the same generator: a seed replays both.
        return self._apply(x, self.sample(len(x), generator).to(x.device, torch.float64), generator)

    def _apply(self, x: Tensor, strength: Tensor, generator: torch.Generator | None) -> Tensor:
        """The channel at ``(B,)`` float64 strengths on ``x``'s device, unchecked."""
        raise NotImplementedError


# --------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------


class Identity(Channel):
    """The lossless channel: returns ``x`` itself.

    Example:
        >>> x = torch.rand(1, 3, 4, 4)
        >>> Identity()(x) is x
        True
    """

    def transmit(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        return x


class Rounding8Bit(Channel):
    """8-bit rounding: what saving the stego as a PNG keeps, with a gradient surrogate.

    Every mode clamps to ``[0, 1]`` with a straight-through gradient (1
    everywhere, as :func:`~invhide.training.step.round_ste`), then, with
    ``y = 255 x``:

    * ``"ste"``: forward ``round(y) / 255`` exactly
      (:func:`~invhide.nn.functional.quantize_8bit`), gradient 1
      (:func:`~invhide.training.step.round_ste`).
    * ``"sine"``: forward ``round(y) / 255`` exactly, gradient
      ``(pi / 2) |sin(pi y)|``: 0 on the 8-bit levels, ``pi / 2`` halfway
      between them, 1 on average (PRIS's ``round_diff``).
    * ``"cubic"``: forward ``(round(y) + (y - round(y))^3) / 255``, within
      1/8 of a level of the rounded value (``r^3`` with ``|r| <= 1/2``),
      gradient ``3 (y - round(y))^2``, between 0 and 3/4 (Shin and Song's
      polynomial rounding, also kornia's ``differentiable_polynomial_rounding``
      and the DiffJPEG that PRIS uses).

    Args:
        mode: ``"ste"``, ``"sine"`` or ``"cubic"``.

    Raises:
        ValueError: an unknown ``mode``.

    References:
        Shin and Song, "JPEG-resistant Adversarial Images", NIPS 2017 Workshop
        on Machine Learning and Computer Security. Yang et al., "PRIS:
        Practical robust invertible network for image steganography",
        Engineering Applications of Artificial Intelligence, 2024.

    Example:
        >>> x = torch.tensor([[[[0.1, 0.5004, 1.2]]]], requires_grad=True)
        >>> y = Rounding8Bit()(x)
        >>> (y * 255).round().tolist(), torch.autograd.grad(y.sum(), x)[0].tolist()
        ([[[[26.0, 128.0, 255.0]]]], [[[[1.0, 1.0, 1.0]]]])
        >>> x = torch.tensor([[[[0.5 / 255, 1.25 / 255]]]], requires_grad=True)
        >>> y = Rounding8Bit("cubic")(x)
        >>> gradient = torch.autograd.grad(y.sum(), x)[0]
        >>> [round(v, 4) for v in (y * 255).flatten().tolist()], [round(v, 4) for v in gradient.flatten().tolist()]
        ([0.125, 1.0156], [0.75, 0.1875])
    """

    def __init__(self, mode: RoundingMode = "ste") -> None:
        super().__init__()
        self.mode = one_of("mode", mode, ROUNDING_MODES)

    def transmit(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        if self.mode == "ste":
            return round_ste(x)
        y = _clamp_through(_working(x)) * 255
        level = torch.round(y.detach())
        if self.mode == "cubic":
            out = level + (y - level) ** 3
        else:
            # A smooth staircase through the levels' midpoints: derivative (pi/2)|sin(pi y)|; its value is not used.
            stairs = (1 - torch.cos(math.pi * (y - torch.floor(y.detach())))) / 2
            out = level + (stairs - stairs.detach())
        return (out / 255).to(x.dtype)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class GaussianNoise(RangedChannel):
    """Additive Gaussian noise of ``sigma`` grey levels, ``sigma`` drawn uniformly per image.

    Returns ``x + sigma / 255 * N(0, 1)``, neither clamped nor rounded:
    follow it with :class:`Rounding8Bit` to model what an 8-bit file holds
    (as :func:`invhide.evaluation.channels.gaussian_noise` does). The noise
    is drawn as float32 (float64 for a float64 ``x``) on the generator's
    device and moved to ``x``'s.

    Args:
        sigma: the standard deviation on the 0..255 scale, ``>= 0``: one
            value, or a ``(low, high)`` range.

    Raises:
        ValueError: a negative or non-finite ``sigma``, or ``low > high``.

    Example:
        >>> x = torch.full((2, 3, 64, 64), 0.5)
        >>> noise = GaussianNoise((2, 8))
        >>> y = noise(x, torch.Generator().manual_seed(0))
        >>> strengths = noise.sample(2, torch.Generator().manual_seed(0))
        >>> ((y - x) * 255).std(dim=(1, 2, 3)).div(strengths).round(decimals=1).tolist()
        [1.0, 1.0]
    """

    def __init__(self, sigma: Range = (1.0, 10.0)) -> None:
        super().__init__()
        self.strength = _strength_range("sigma", sigma, low=0)

    @property
    def sigma(self) -> tuple[float, float]:
        """The ``(low, high)`` range of ``sigma`` in grey levels."""
        return self.strength

    def _apply(self, x: Tensor, strength: Tensor, generator: torch.Generator | None) -> Tensor:
        device = generator.device if generator is not None else x.device
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        noise = torch.randn(x.shape, generator=generator, device=device, dtype=dtype).to(x.device)
        return x + (noise * (strength.to(dtype) / 255).view(-1, 1, 1, 1)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"sigma={_format_range(self.strength)}"


def _kornia_jpeg() -> Callable[[Tensor, Tensor], Tensor]:
    """``kornia.enhance.jpeg_codec_differentiable``, or an ``ImportError`` saying how to install kornia."""
    try:  # imported on first use: kornia is an optional extra
        from kornia.enhance import jpeg_codec_differentiable
    except ImportError as error:
        raise ImportError(
            'the differentiable JPEG channel needs kornia: pip install "invhide[jpeg]" (or pip install "kornia>=0.8.2")'
        ) from error
    return jpeg_codec_differentiable


class JPEG(RangedChannel):
    """Differentiable JPEG (kornia's) at an integer quality drawn uniformly per image.

    The stego is clamped to ``[0, 1]`` (straight-through gradient), padded on
    the bottom and right by edge replication to a multiple of 16 (a 4:2:0
    JPEG's macroblock, as libjpeg pads), coded by
    ``kornia.enhance.jpeg_codec_differentiable`` (standard tables scaled by
    quality as libjpeg does, 4:2:0 chroma, DCT coefficients and table
    entries rounded by Shin and Song's cubic polynomial; Reich et al.) and
    cropped back. kornia's decoder clamps its output to ``[0, 1]`` (zero
    gradient where it clips). Half-precision inputs are coded in float32.

    On 256x256 Kodak crops the output is about 42 dB (quality 50) to 46 dB
    (quality 95) PSNR from Pillow's real JPEG at the same quality, and about
    0.9 dB closer to the input than Pillow's (``benchmarks/channel_fidelity.py``).

    Args:
        quality: an integer in ``[1, 100]``, or a ``(low, high)`` range of them.

    Raises:
        ValueError: a quality that is not an integer in ``[1, 100]``, or ``low > high``.
        ImportError: kornia is not installed.

    References:
        Reich et al., "Differentiable JPEG: The Devil is in the Details",
        WACV 2024.

    Example:
        >>> import pytest; _ = pytest.importorskip("kornia")
        >>> x = torch.rand(2, 3, 20, 28, requires_grad=True)
        >>> y = JPEG((50, 95))(x, torch.Generator().manual_seed(0))
        >>> y.shape, bool(torch.autograd.grad(y.sum(), x)[0].abs().sum() > 0)
        (torch.Size([2, 3, 20, 28]), True)
    """

    bounds = (1.0, 100.0, False)
    whole_strengths = True

    def __init__(self, quality: int | tuple[int, int] = (50, 95)) -> None:
        super().__init__()
        self.strength = _strength_range("quality", quality, low=1, high=100, whole=True)
        self._codec = _kornia_jpeg()

    @property
    def quality(self) -> tuple[int, int]:
        """The ``(low, high)`` range of the quality."""
        return int(self.strength[0]), int(self.strength[1])

    def _apply(self, x: Tensor, strength: Tensor, generator: torch.Generator | None) -> Tensor:
        if x.shape[1] != 3:
            raise InputError(argument="x", problem=f"must be RGB (3 channels) for a JPEG, got {x.shape[1]}")
        work = _clamp_through(_working(x))
        height, width = x.shape[-2:]
        pad_height, pad_width = -height % _JPEG_BLOCK, -width % _JPEG_BLOCK
        if pad_height or pad_width:
            work = F.pad(work, (0, pad_width, 0, pad_height), mode="replicate")
        with warnings.catch_warnings():  # kornia 0.8's torch.meshgrid without indexing=: its deprecation, not ours
            warnings.filterwarnings("ignore", message="torch.meshgrid: in an upcoming release", category=UserWarning)
            coded = self._codec(work, strength.to(work.dtype))
        return coded[..., :height, :width].to(x.dtype)

    def extra_repr(self) -> str:
        return f"quality={_format_range(self.strength)}"


class Resize(RangedChannel):
    """Shrink to ``scale`` times the size and enlarge back, ``scale`` drawn uniformly per image.

    Each side goes to :func:`~invhide.evaluation.channels.scaled_size` (as the
    real :func:`~invhide.evaluation.channels.resize` does) with
    ``torch.nn.functional.interpolate`` (``align_corners=False``; antialiased
    when shrinking for bicubic and bilinear) and back to the original size.
    Not clamped or rounded (bicubic overshoots a little); follow it with
    :class:`Rounding8Bit` for an 8-bit file. Images drawn to the same
    shrunk size are resized together. Half-precision inputs are resized in float32.

    ``"bicubic"`` (the default) reproduces Pillow's bicubic resize, the real
    channel's, to about 54 dB PSNR on 256x256 Kodak crops (to over 130 dB
    against Pillow resizing in float: the rest is the real channel's 8-bit
    rounding); ``"bilinear"`` is only about 36 to 37 dB from it.

    Args:
        scale: the shrink factor in ``(0, 1]``, or a ``(low, high)`` range.
        mode: ``"bicubic"``, ``"bilinear"``, ``"area"`` or ``"nearest"``.

    Raises:
        ValueError: a scale outside ``(0, 1]``, ``low > high``, or an unknown mode.

    Example:
        >>> x = torch.rand(3, 3, 24, 20, requires_grad=True)
        >>> y = Resize((0.5, 0.9))(x, torch.Generator().manual_seed(0))
        >>> y.shape, bool(torch.autograd.grad(y.sum(), x)[0].abs().sum() > 0)
        (torch.Size([3, 3, 24, 20]), True)
    """

    bounds = (0.0, 1.0, True)

    def __init__(self, scale: Range = (0.5, 1.0), mode: ResizeMode = "bicubic") -> None:
        super().__init__()
        self.strength = _strength_range("scale", scale, low=0, high=1, low_open=True)
        self.mode = one_of("mode", mode, RESIZE_MODES)

    @property
    def scale(self) -> tuple[float, float]:
        """The ``(low, high)`` range of the scale."""
        return self.strength

    def _resized(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        options: dict[str, Any] = {"mode": self.mode}
        if self.mode in _ANTIALIASED:
            options.update(align_corners=False, antialias=True)
        return F.interpolate(F.interpolate(x, size=size, **options), size=x.shape[-2:], **options)

    def _apply(self, x: Tensor, strength: Tensor, generator: torch.Generator | None) -> Tensor:
        work = _working(x)
        height, width = x.shape[-2:]
        sizes = [(scaled_size(height, scale), scaled_size(width, scale)) for scale in strength.tolist()]
        groups = _groups(sizes)
        parts = [self._resized(work[indices], size) for size, indices in groups.items()]
        return _assemble(parts, list(groups.values()), x).to(x.dtype)

    def extra_repr(self) -> str:
        return f"scale={_format_range(self.strength)}, mode={self.mode!r}"


# --------------------------------------------------------------------------
# Combinators
# --------------------------------------------------------------------------


def _checked_channels(channels: Iterable[object], owner: str) -> list[Channel]:
    found = list(channels)
    if not found:
        raise InputError(argument="channels", problem=f"of a {owner} must hold at least one channel, got none")
    for index, item in enumerate(found):
        if not isinstance(item, Channel):
            raise InputTypeError(
                argument=f"channels[{index}]",
                problem=f"must be an invhide.training.channels.Channel, got {type(item).__name__}",
            )
    return found  # type: ignore[return-value]


class OneOf(Channel):
    """One of several channels per image, picked at random.

    The picks are drawn first (``torch.multinomial`` from ``generator``), then
    each picked channel transmits its images in the order of ``channels``,
    drawing its own strengths from the same generator.

    Args:
        channels: the channels to pick from, at least one.
        probabilities: each channel's probability, ``>= 0`` and summing to 1
            (``None``: equal).

    Raises:
        ValueError: no channels, or probabilities of another length, negative,
            or not summing to 1 (within 1e-6).
        TypeError: an item that is not a :class:`Channel`.

    Example:
        >>> x = torch.rand(4, 3, 8, 8)
        >>> y = OneOf([Identity(), GaussianNoise(5)], probabilities=[1.0, 0.0])(x)
        >>> bool(torch.equal(x, y))
        True
    """

    def __init__(self, channels: Iterable[Channel], probabilities: Iterable[float] | None = None) -> None:
        super().__init__()
        self.channels = nn.ModuleList(_checked_channels(channels, "OneOf"))
        count = len(self.channels)
        if probabilities is None:
            self.probabilities: tuple[float, ...] = (1.0 / count,) * count
            return
        if isinstance(probabilities, (str, bytes)) or not isinstance(probabilities, Iterable):
            raise InputTypeError(
                argument="probabilities", problem=f"must be a sequence of numbers, got {type(probabilities).__name__}"
            )
        given = list(probabilities)
        if len(given) != count:
            raise InputError(
                argument="probabilities", problem=f"must hold one number per channel, {count}, got {len(given)}"
            )
        checked = tuple(number("probabilities", value, low=0) for value in given)
        if abs(math.fsum(checked) - 1) > 1e-6:
            raise InputError(argument="probabilities", problem=f"must sum to 1, got {given!r} (sum {sum(checked):g})")
        self.probabilities = checked

    def transmit(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        device = generator.device if generator is not None else "cpu"
        weights = torch.tensor(self.probabilities, dtype=torch.float64, device=device)
        picks = torch.multinomial(weights, len(x), replacement=True, generator=generator).tolist()
        groups = _groups(picks)
        order = sorted(groups)  # channels in their given order
        parts = [self.channels[pick].transmit(x[groups[pick]], generator) for pick in order]
        return _assemble(parts, [groups[pick] for pick in order], x)

    def extra_repr(self) -> str:
        return "probabilities=(" + ", ".join(f"{p:g}" for p in self.probabilities) + ")"


class Sequence(Channel):
    """Channels applied in order (the first one's output feeds the second).

    Args:
        *channels: at least one :class:`Channel`.

    Raises:
        ValueError: no channels.
        TypeError: an argument that is not a :class:`Channel`.

    Example:
        >>> x = torch.full((1, 3, 8, 8), 0.5)
        >>> y = Sequence(GaussianNoise(3), Rounding8Bit())(x, torch.Generator().manual_seed(0))
        >>> bool(torch.equal(y, torch.round(y * 255) / 255))
        True
    """

    def __init__(self, *channels: Channel) -> None:
        super().__init__()
        self.channels = nn.ModuleList(_checked_channels(channels, "Sequence"))

    def transmit(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        for item in self.channels:
            x = item.transmit(x, generator)
        return x


# --------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------


def channel(spec: str) -> Channel:
    """The training channel a spec names (the grammar of :func:`invhide.evaluation.channels.read_spec`).

    ======================= =============================================
    spec                    channel
    ======================= =============================================
    ``jpeg:Q``              ``JPEG(Q)``, ``jpeg:50-95``: ``JPEG((50, 95))``
    ``noise:S``             ``GaussianNoise(S)``, ``noise:1-10`` a range
    ``resize:F``            ``Resize(F)`` (bicubic), ``resize:0.5-0.9`` a range
    ``round``               ``Rounding8Bit()`` (straight-through); also ``png``, ``lossless``
    ``webp:Q``              refused: no differentiable WebP exists
    ======================= =============================================

    Raises:
        ValueError: a malformed spec, a strength out of bounds, or ``webp``.
        TypeError: ``spec`` is not a string.
        ImportError: a ``jpeg`` spec without kornia installed.

    Example:
        >>> channel("noise:1-10")
        GaussianNoise(sigma=(1, 10))
        >>> channel("webp:80")
        Traceback (most recent call last):
        ...
        invhide.errors.InputError: spec 'webp:80' names WebP, which has no differentiable stand-in to train ...
    """
    found = read_spec(spec)
    if found.kind == "webp":
        raise InputError(
            argument="spec",
            problem=f"{spec!r} names WebP, which has no differentiable stand-in to train through; "
            f"train with jpeg:Q and evaluate on the real webp:Q (invhide.evaluation.channels)",
        )
    if found.kind == "round":
        return Rounding8Bit()
    strength = (found.low, found.high)
    builders: dict[str, Callable[[Any], Channel]] = {"jpeg": JPEG, "noise": GaussianNoise, "resize": Resize}
    try:
        return builders[found.kind](strength)
    except InputError as error:
        raise InputError(argument="spec", problem=f"{spec!r}: {error}") from None


def file_channels(specs: Iterable[str]) -> frozenset[str]:
    """The image files a reveal trained through ``specs`` is fit for, by :attr:`invhide.io.images.ImageFormat.channel`.

    Lossless files always; JPEG files when a spec is JPEG (kornia's stands
    in for libjpeg). Noise, resizing and rounding are not file formats, and
    no training channel stands for WebP. The trainer gives its model this
    as ``trained_channels`` (:func:`invhide.models.inference.trained_channels`).

    Example:
        >>> sorted(file_channels(["jpeg:70-95", "noise:1-10"])), sorted(file_channels(["round"]))
        (['jpeg', 'lossless'], ['lossless'])
    """
    kinds = {read_spec(spec).kind for spec in specs}
    return frozenset({"lossless", *(kinds & {"jpeg"})})
