"""Hiding and revealing whole images of any size: padding, size matching and tiling.

:meth:`InvertibleHider.hide` needs even sizes of at least ``model.min_size``
and cover and secret of one size. The functions here take images as they
come:

- **Any size.** Images are padded (reflect, or replicate where an image is
  too small to reflect) to an even size of at least the wavelet's minimum.
  :func:`hide` returns the stego at that padded size (:func:`padded_size`):
  the padding carries part of the secret, and cropping it away would lose
  the secret's last row and column (they came back 8 to 13 dB worse than
  those of an even image, measured with ``conv8-photos49-v2``). For a cover of
  even sides of at least the minimum, the stego has the cover's size.
  :func:`reveal` of a stego of any other size pads it the same way and crops
  the result back to the stego's size.
- **Cover and secret of different sizes** are refused unless ``fit`` says
  what to do: ``"resize"`` (bicubic, the secret's aspect ratio is not kept)
  or ``"crop"`` (centre crop, padding first where the secret is smaller).
- **Tiling.** With ``tile=N`` the image is processed in ``N x N`` windows
  that overlap by ``overlap`` pixels on every side; only each window's centre
  is kept, so memory stays bounded and, with enough overlap, the result
  matches the whole-image computation (``benchmarks/tiling.py`` measures how
  closely; the Results page has its figures). The auxiliary ``z`` of
  :func:`reveal` is drawn once for the whole image, so tiling does not change
  it. This holds for Haar; other wavelets wrap around each window's edge
  (periodisation), so a window edge that is not an image edge differs from
  the whole-image result within the overlap, which the kept centres then
  discard only if the overlap exceeds the wavelet's reach.

These functions check what only they know (an image with or without its
batch dimension, the cover's and secret's ``[0, 1]`` range, tiling, ``z``);
the model checks the rest of each window (dtype, device, finite values) and
refuses a NaN or infinite result. Everything runs under
``torch.inference_mode()`` and leaves the model's train/eval mode as it found
it. An empty batch (``B = 0``) is valid and gives an empty result.

Checks for tools that use a model they did not train:

- :func:`hides_nothing` tells a model whose stego ignores the secret (a
  freshly initialised hider is the identity), cheaply, before any image is
  read.
- :func:`verify` reveals a stego as its receiver will (from the 8-bit file,
  with ``z`` as it reveals) and measures what comes back: a stego identical to its
  cover, or a secret below :data:`MIN_SECRET_PSNR`, means the secret does
  not survive. A stego whose PSNR against its cover is below
  :data:`LOW_STEGO_PSNR` shows the hiding.
- :func:`blur_agreement` tells, cheaply, an image that carries nothing the
  model hid (a plain photograph, a re-encoded stego): at or above
  :data:`NOT_A_STEGO_PSNR`, blurring it hardly changes what it reveals.
- :func:`trained_channels` says which files a model was trained to reveal
  from (lossless ones, for every model so far), to compare with
  :func:`invhide.io.images.image_format`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invhide.checks import image_batch, integer, non_negative_int, one_of, positive_int, tensor
from invhide.errors import InputError, InputTypeError
from invhide.io.progress import progress_bar
from invhide.models.hider import PUBLIC_KEY, Key, public_key
from invhide.nn.functional import even_step, quantize_8bit

__all__ = [
    "FITS",
    "LOW_STEGO_PSNR",
    "MIN_SECRET_PSNR",
    "NOT_A_STEGO_PSNR",
    "Verification",
    "blur_agreement",
    "fit_secret",
    "hide",
    "hides_nothing",
    "pad_to",
    "padded_size",
    "reveal",
    "seeded_generator",
    "tiles",
    "trained_channels",
    "verify",
    "window_step",
]

FITS: tuple[str, ...] = ("refuse", "resize", "crop")

LOW_STEGO_PSNR = 20.0
"""Stego PSNR (dB) below which a stego visibly differs from its cover; a trained hider stays far above it."""

MIN_SECRET_PSNR = 20.0
"""Secret PSNR (dB), revealed from the 8-bit stego, below which :func:`verify` finds that the secret does not survive.

Measured with the default shipped model (``conv8-photos49-keyed``, under
the public key), the worst pair of kodak24, cbsd68, mcmaster and photos49 at
256x256 comes back at 23.4 dB (80% of the 159 between 30.8 and 39.3 dB;
``benchmarks/stand_in.py --checks``; the unkeyed ``conv8-photos49-v2``: 22.9,
and 29.6 to 40.6 dB); models that hide nothing, or barely trained ones, give 5 to
10 dB. Below 20 dB a photograph is badly degraded.
"""

NOT_A_STEGO_PSNR = 28.0
""":func:`blur_agreement` (dB) at or above which an image carries nothing the model hid.

Measured with the default shipped model (``conv8-photos49-keyed``, under
the public key) on 256x256 centre crops (kodak24, cbsd68, mcmaster,
photos49; ``benchmarks/stand_in.py --checks``): its 8-bit stegos give 7.5 to
18.8 dB, and those of uniform secrets (black, grey, white, a solid colour)
5.0 to 24.6 dB; the same stegos re-encoded as JPEG (quality 95 or 100) or
lossy WebP (quality 90) give 27.1 to 42.3 dB (471 of 477 at 28 dB or more);
135 of the 159 plain photographs give 28 dB or more, the others, richly
textured, down to 15.0 dB: for those the test stays silent. (The unkeyed
``conv8-photos49-v2``: stegos 7.5 to 19.4 dB, uniform secrets 4.8 to 22.9,
re-encoded 30.0 to 43.9, photographs 141 of 159.)
"""


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _batch(name: str, image: object, channels: int, bounded: bool = True) -> tuple[Tensor, bool]:
    """``image`` as a float ``(B, C, H, W)`` batch (in ``[0, 1]`` if ``bounded``), and whether it was ``(C, H, W)``."""
    single = isinstance(image, Tensor) and image.dim() == 3 and image.shape[0] == channels
    batch = image_batch(name, image[None] if single else image, channels=channels)  # type: ignore[index]
    if bounded and batch.numel():
        low, high = (value.item() for value in torch.aminmax(batch))
        if low < 0 or high > 1:  # NaN passes here: the model refuses it, naming the input
            raise InputError(
                argument=name, problem=f"must have values in [0, 1], got values in [{low:.4g}, {high:.4g}]"
            )
    return batch, single


def _check_tiling(tile: object, overlap: object) -> None:
    if tile is not None:
        positive_int("tile", tile)
    non_negative_int("overlap", overlap)


def padded_size(size: tuple[int, int], min_size: int = 2) -> tuple[int, int]:
    """``(H, W)`` rounded up to even sides of at least ``min_size``: the size of :func:`hide`'s stego.

    Example:
        >>> padded_size((65, 63)), padded_size((1, 1), min_size=4)
        ((66, 64), (4, 4))
    """
    return max(min_size, size[0] + size[0] % 2), max(min_size, size[1] + size[1] % 2)


def pad_to(image: Tensor, min_size: int = 2) -> tuple[Tensor, tuple[int, int]]:
    """Pad the bottom and right of ``(B, C, H, W)`` to even sides of at least ``min_size``.

    Reflect padding where the image is large enough, replicate otherwise.

    Returns:
        ``(padded, (H, W))``: crop ``padded[..., :H, :W]`` to undo.

    Example:
        >>> padded, size = pad_to(torch.rand(1, 3, 5, 8), min_size=4)
        >>> tuple(padded.shape), size
        ((1, 3, 6, 8), (5, 8))
    """
    height, width = image.shape[-2:]
    target_h, target_w = padded_size((height, width), min_size)
    pad_h, pad_w = target_h - height, target_w - width
    if pad_h == 0 and pad_w == 0:
        return image, (height, width)
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode), (height, width)


def fit_secret(secret: Tensor, size: tuple[int, int], fit: str = "refuse") -> Tensor:
    """Bring a secret to the cover's ``size``.

    Args:
        secret: ``(B, C, h, w)``.
        size: the cover's ``(H, W)``.
        fit: ``"refuse"`` (raise unless the sizes agree), ``"resize"``
            (bicubic, clamped to ``[0, 1]``) or ``"crop"`` (centre crop; a
            side that is too short is padded by reflection first).

    Raises:
        ValueError: sizes differ and ``fit="refuse"``, or an unknown ``fit``.

    Example:
        >>> tuple(fit_secret(torch.rand(1, 3, 10, 20), (8, 8), "crop").shape)
        (1, 3, 8, 8)
    """
    one_of("fit", fit, FITS)
    height, width = size
    if tuple(secret.shape[-2:]) == (height, width):
        return secret
    if fit == "refuse":
        raise InputError(
            f"the secret is {secret.shape[-1]}x{secret.shape[-2]} but the cover is {width}x{height} (width x "
            f"height); pass fit='resize' or fit='crop' (--fit on the command line) to adapt the secret"
        )
    if fit == "resize":
        return F.interpolate(secret, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
    pad_h, pad_w = max(0, height - secret.shape[-2]), max(0, width - secret.shape[-1])
    if pad_h or pad_w:
        top, left = pad_h // 2, pad_w // 2
        reflect = pad_h < secret.shape[-2] and pad_w < secret.shape[-1]
        padding = (left, pad_w - left, top, pad_h - top)
        secret = F.pad(secret, padding, mode="reflect" if reflect else "replicate")
    top = (secret.shape[-2] - height) // 2
    left = (secret.shape[-1] - width) // 2
    return secret[..., top : top + height, left : left + width]


def tiles(length: int, tile: int, overlap: int, step: int = 2) -> list[tuple[int, int, int, int]]:
    """Windows along one axis: ``(start, stop, keep_start, keep_stop)``, all multiples of ``step``.

    The kept parts ``[keep_start, keep_stop)`` cover ``[0, length)`` exactly
    once; each window extends up to ``overlap`` beyond its kept part.

    Example:
        >>> tiles(10, 6, 2)
        [(0, 6, 0, 4), (2, 8, 4, 6), (4, 10, 6, 10)]
    """
    if tile >= length:
        return [(0, length, 0, length)]
    if tile - 2 * overlap < step:
        raise InputError(f"tile {tile} must exceed twice the overlap {overlap} by at least {step}")
    out = []
    keep = 0
    while keep < length:
        start = max(0, keep - overlap)
        start -= start % step
        stop = min(length, start + tile)
        keep_stop = length if stop == length else stop - overlap
        out.append((start, stop, keep, keep_stop))
        keep = keep_stop
    return out


def _tiled(
    function: Callable[[Tensor, Tensor], Tensor],
    first: Tensor,
    second: Tensor,
    tile: int | None,
    overlap: int,
    step: int,
    progress: bool = False,
) -> Tensor:
    """Apply a size-preserving two-input function window by window and stitch the kept parts."""
    height, width = first.shape[-2:]
    if tile is None or (tile >= height and tile >= width):
        return function(first, second)
    if tile % step or overlap % step:
        raise InputError(f"tile and overlap must be non-negative multiples of {step}, got {tile} and {overlap}")
    windows = [(r, c) for r in tiles(height, tile, overlap, step) for c in tiles(width, tile, overlap, step)]
    output: Tensor | None = None
    for (top, bottom, keep_top, keep_bottom), (left, right, keep_left, keep_right) in progress_bar(
        windows, desc="tiles", unit="tile", leave=False, enabled=progress and len(windows) > 1
    ):
        result = function(first[..., top:bottom, left:right], second[..., top:bottom, left:right])
        if output is None:
            output = result.new_empty(*result.shape[:2], height, width)
        inner = (..., slice(keep_top - top, keep_bottom - top), slice(keep_left - left, keep_right - left))
        output[..., keep_top:keep_bottom, keep_left:keep_right] = result[inner]
    assert output is not None  # tiles() gives at least one window
    return output


def _working_dtype(model: nn.Module, fallback: torch.dtype) -> torch.dtype:
    """The dtype of the model's weights (a float64 or bfloat16 model gets inputs of its own dtype)."""
    param = next(model.parameters(), None)
    return param.dtype if param is not None else fallback


def window_step(model: nn.Module) -> int:
    """The multiple of pixels that windows start on, and that ``tile`` and ``overlap`` must be multiples of.

    A model's own ``window_step`` (:attr:`InvertibleHider.window_step
    <invhide.models.hider.InvertibleHider.window_step>`), else the even
    number of at least its ``min_size``: every window then sees the same
    wavelet blocks as the whole image.

    Example:
        >>> window_step(invhide.InvertibleHider(num_blocks=1, subnet="conv", keyed=True, refiner=True))
        8
    """
    step = getattr(model, "window_step", None)
    return step if isinstance(step, int) else even_step(getattr(model, "min_size", 2))


def _windowed(
    model: nn.Module,
    function: Callable[[Tensor, Tensor], Tensor],
    inputs: tuple[Tensor, Tensor],
    size: tuple[int, int],
    tile: int | None,
    overlap: int,
    progress: bool,
) -> Tensor:
    """``function`` of the padded ``inputs``, in eval mode and window by window, cropped back to ``size``."""
    with _evaluating(model):
        result = _tiled(function, *inputs, tile, overlap, window_step(model), progress)
    return result[..., : size[0], : size[1]]


def hide(
    model: nn.Module,
    cover: Tensor,
    secret: Tensor,
    *,
    fit: str = "refuse",
    key: Key | None = None,
    tile: int | None = None,
    overlap: int = 64,
    progress: bool = False,
) -> Tensor:
    """Hide ``secret`` in ``cover`` at any size; the stego has the cover's size, made even.

    An odd side gains a row or a column (a side under ``min_size`` grows to
    it, :func:`padded_size`), which carries part of the secret: crop
    ``stego[..., :H, :W]`` for the cover's exact size, at that cost.

    Args:
        model: a trained hider with one secret.
        cover: ``(B, C, H, W)`` or ``(C, H, W)`` in ``[0, 1]``, any H, W >= 1.
        secret: the same, of the cover's size unless ``fit`` says otherwise.
        fit: ``"refuse"``, ``"resize"`` or ``"crop"``, see :func:`fit_secret`.
        key: a keyed model's key (``None``: the public key, with a warning),
            which locks the whole secret once (:meth:`InvertibleHider.lock
            <invhide.models.hider.InvertibleHider.lock>`); an unkeyed model refuses one.
        tile: process in windows of this side (even); ``None``: whole image.
        overlap: context pixels around each window's kept centre (even).
        progress: show a progress bar over the windows.

    Returns:
        The float stego (not clamped or rounded), shaped like ``cover`` but
        ``padded_size((H, W), model.min_size)``; empty for an empty batch.

    Raises:
        invhide.errors.InputError: values outside ``[0, 1]`` or NaN, mismatched
            sizes with ``fit="refuse"``, bad tiling arguments, a key the model cannot use.
        invhide.errors.InputTypeError: a non-tensor or non-float input, or a
            cover on another device than the model.
        invhide.errors.ModelError: finite inputs gave NaN or infinite values.

    Example:
        >>> model = invhide.InvertibleHider(num_blocks=1, subnet="conv")
        >>> stego = hide(model, torch.rand(3, 33, 17), torch.rand(3, 33, 17))
        >>> tuple(stego.shape)
        (3, 34, 18)
    """
    cover, secret, single = _hide_inputs(model, cover, secret, fit, tile, overlap)
    size, min_size = (cover.shape[-2], cover.shape[-1]), getattr(model, "min_size", 2)
    if cover.shape[0] == 0:  # an empty batch: an empty stego, once the sizes are known to fit
        if fit == "refuse":
            fit_secret(secret, size)  # raises unless the sizes agree
        return cover.new_empty((*cover.shape[:-2], *padded_size(size, min_size)))
    dtype, options = _working_dtype(model, cover.dtype), _locking(model, key)
    padded = pad_to(cover.to(dtype), min_size)[0], pad_to(fit_secret(secret, size, fit).to(dtype), min_size)[0]
    if options:  # a keyed model: lock the whole secret once (a permutation across the image is not windowed)
        padded = padded[0], model.lock(padded[1], key)
    whole = padded_size(size, min_size)  # the stego keeps what the padding carries
    hiding = lambda c, s: model.hide(c, s, check_finite=True, **options)[0]  # noqa: E731
    stego = _windowed(model, hiding, padded, whole, tile, overlap, progress).to(cover.dtype)
    return stego[0] if single else stego


def _hide_inputs(
    model: nn.Module, cover: object, secret: object, fit: str, tile: object, overlap: object
) -> tuple[Tensor, Tensor, bool]:
    """:func:`hide`'s checked cover and secret batches, and whether the cover was one image, not a batch."""
    if getattr(model, "num_secrets", 1) != 1:
        raise InputError(
            f"this model hides {model.num_secrets} secrets per cover; hide() takes one secret (use "
            f"model.hide(cover, *secrets) for several)"
        )
    _check_tiling(tile, overlap)
    channels = getattr(model, "channels", 3)
    cover, single = _batch("cover", cover, channels)
    secret, _ = _batch("secret", secret, channels)
    one_of("fit", fit, FITS)
    if secret.shape[0] != cover.shape[0]:
        raise InputError(f"cover and secret batches differ: {cover.shape[0]} and {secret.shape[0]}")
    return cover, secret, single


def _locking(model: nn.Module, key: Key | None) -> dict[str, bool]:
    """The options of ``model.hide`` and ``model.reveal`` for windows of an image locked as a whole with ``key``.

    ``{"locked": True}`` for a keyed model; ``{}`` for an unkeyed one, which refuses a key.
    """
    if getattr(model, "keyed", False):
        return {"locked": True}
    if key is not None:
        raise InputError(argument="key", problem="was given, but this model is not keyed: it hides without a key")
    return {}


def _stand_in(z: object, generator: torch.Generator | None, like: Tensor, channels: int) -> Tensor:
    """``z`` for the padded stego ``like``, checked; drawn from ``N(0, 1)`` with ``generator``; or zeros."""
    shape = (like.shape[0], channels, *like.shape[-2:])
    if z is None:
        if generator is None:
            return like.new_zeros(shape)
        if not isinstance(generator, torch.Generator):
            raise InputTypeError(
                argument="generator", problem=f"must be a torch.Generator, got {type(generator).__name__}"
            )
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
    z = tensor("z", z)
    if tuple(z.shape) != shape:
        raise InputError(argument="z", problem=f"must have shape {shape} (the padded stego's), got {tuple(z.shape)}")
    return z.to(like.dtype)


def reveal(
    model: nn.Module,
    stego: Tensor,
    *,
    z: Tensor | None = None,
    generator: torch.Generator | None = None,
    key: Key | None = None,
    tile: int | None = None,
    overlap: int = 64,
    progress: bool = False,
) -> Tensor:
    """Recover the secret from a stego image of any size; the result has the stego's size.

    Args:
        model: the hider that made the stego.
        stego: ``(B, C, H, W)`` or ``(C, H, W)``, e.g. read from an 8-bit PNG
            (a float stego may overshoot ``[0, 1]``).
        z: stand-in for the lost part, shaped like the padded stego;
            zeros when not given (see :class:`~invhide.models.hider.InvertibleHider`'s reveal).
        generator: draw ``z`` from ``N(0, 1)`` with it instead of zeros.
        key: the key of :func:`hide` (``None``: the public key, with a warning); a
            wrong one is not detected: it reveals the secret's tiles in another order.
        tile: process in windows of this side (even); ``None``: whole image.
        overlap: context pixels around each window's kept centre (even).
        progress: show a progress bar over the windows.

    Returns:
        The recovered secret, clamped to ``[0, 1]``, shaped like ``stego``
        (``C * num_secrets`` channels). An empty batch gives an empty result.

    Raises:
        invhide.errors.InputError: NaN or infinite values, a ``z`` of the
            wrong shape, bad tiling arguments.
        invhide.errors.InputTypeError: a non-tensor or non-float input, a ``generator``
            that is not one, or a stego on another device than the model.
        invhide.errors.ModelError: finite inputs gave NaN or infinite values.

    Example:
        >>> model = invhide.InvertibleHider(num_blocks=1, subnet="conv")
        >>> tuple(reveal(model, torch.rand(3, 9, 10)).shape)
        (3, 9, 10)
    """
    _check_tiling(tile, overlap)
    channels = getattr(model, "channels", 3)
    stego, single = _batch("stego", stego, channels, bounded=False)
    padded, size = pad_to(stego.to(_working_dtype(model, stego.dtype)), getattr(model, "min_size", 2))
    lost_channels = channels * getattr(model, "num_secrets", 1)
    z = _stand_in(z, generator, padded, lost_channels)
    if stego.shape[0] == 0:  # an empty batch: an empty result
        return stego.new_empty((0, lost_channels, *size))
    options = _locking(model, key)

    def step(window: Tensor, latent: Tensor) -> Tensor:
        return model.reveal(window, z=latent, check_finite=True, **options)

    secret = _windowed(model, step, (padded, z), tuple(padded.shape[-2:]), tile, overlap, progress)
    if options:  # the windows give the whole secret locked
        secret = model.unlock(secret, key)
    secret = secret[..., : size[0], : size[1]].clamp(0, 1).to(stego.dtype)
    return secret[0] if single else secret


def hides_nothing(model: nn.Module, *, size: int = 16, seed: int = 0) -> bool:
    """Whether ``model``'s stego ignores the secret, so that it hides nothing.

    A freshly initialised hider is the identity (the last layer of every
    subnet starts at zero), so its stego is the cover whatever the secret; a
    model saved before training, or whose cover-branch subnets were zeroed,
    is the same. The probe hides one seeded random cover with two different
    seeded random secrets (``1 x C x size x size``, in the model's dtype and
    on its device) and compares the two stegos bit for bit: a model that
    hides anything makes them differ. It costs two small hides.

    Args:
        model: a hider (``hide(cover, *secrets) -> (stego, lost)``).
        size: side of the probe images (raised to the wavelet's minimum and
            made even).
        seed: seeds the probe images.

    Returns:
        ``True`` when the two stegos are identical: refuse to use the model
        (train it first); ``False`` otherwise.

    Example:
        >>> fresh = invhide.InvertibleHider(num_blocks=1, subnet="conv")
        >>> hides_nothing(fresh)
        True
        >>> with torch.no_grad():  # one step of training would do the same
        ...     _ = fresh.nodes.coupling_1.phi.output_layer.weight.fill_(0.01)
        >>> hides_nothing(fresh)
        False
    """
    side = max(positive_int("size", size), getattr(model, "min_size", 2))
    side += side % 2
    weight = next((p for p in model.parameters() if p.is_floating_point()), None)
    dtype = weight.dtype if weight is not None else torch.float32
    device = weight.device if weight is not None else torch.device("cpu")
    channels, count = getattr(model, "channels", 3), getattr(model, "num_secrets", 1)
    generator = torch.Generator().manual_seed(integer("seed", seed))
    probe = list(torch.rand(1 + 2 * count, 1, channels, side, side, generator=generator).to(device, dtype))
    with _evaluating(model):
        stego_a, _ = model.hide(probe[0], *probe[1 : 1 + count], **public_key(model))
        stego_b, _ = model.hide(probe[0], *probe[1 + count :], **public_key(model))
    return torch.equal(stego_a, stego_b)


def _psnr(x: Tensor, y: Tensor) -> Tensor:
    """Per-image RGB PSNR in dB of ``(B, C, H, W)`` images in ``[0, 1]`` (``inf`` where identical), float64."""
    mse = (x.double() - y.double()).square().flatten(1).mean(1)
    return -10 * torch.log10(mse)


class Verification(NamedTuple):
    """What :func:`verify` measured: how far the stego is from its cover, and how the secret comes back.

    For a batch, each figure is the batch's worst: the highest stego PSNR
    (closest to its cover), the lowest secret PSNR, ``identical`` for any
    image.

    Attributes:
        stego_psnr: PSNR (dB) of the stego against the cover, on the cover's
            pixels; ``inf`` when they are identical.
        secret_psnr: PSNR (dB) of the secret revealed from the stego (rounded
            to 8 bits, as a receiver saves it) against the secret, on the
            secret's pixels.
        identical: the stego is the cover to within 8-bit rounding: no
            value is as much as 3/4 of a level (``0.75 / 255``) from the
            cover's, so the model hid nothing in it (its PSNR is ``inf``
            where the cover is 8-bit too).
    """

    stego_psnr: float
    secret_psnr: float
    identical: bool

    @property
    def passed(self) -> bool:
        """The secret survives: the stego is not its cover, the secret comes back at :data:`MIN_SECRET_PSNR` or up."""
        return not self.identical and self.secret_psnr >= MIN_SECRET_PSNR


def verify(
    model: nn.Module,
    cover: Tensor,
    secret: Tensor,
    stego: Tensor,
    *,
    fit: str = "refuse",
    key: Key | None = None,
    seed: int | None = None,
    tile: int | None = None,
    overlap: int = 64,
    progress: bool = False,
) -> Verification:
    """Reveal ``stego`` as its receiver will and measure what comes back, to check a hide before keeping it.

    ``stego`` is what the receiver gets, e.g. ``quantize_8bit(hide(...))``
    for a PNG (the float stego would overstate the secret's PSNR), revealed
    as :func:`reveal` and ``invhide reveal`` do it (``z`` zeros; with ``seed``,
    drawn as ``invhide reveal --seed SEED`` draws it). Refuse the stego unless
    :attr:`Verification.passed`: a stego identical to its cover hides
    nothing, whatever its PSNR (``inf``).

    Args:
        model: the hider that made ``stego``.
        cover: as given to :func:`hide`: ``(B, C, H, W)`` or ``(C, H, W)`` in ``[0, 1]``.
        secret: as given to :func:`hide`, brought to the cover's size by ``fit``.
        stego: ``(B, C, H', W')`` or ``(C, H', W')``, at least the cover's size.
        fit: as given to :func:`hide`.
        key: as given to :func:`hide`.
        seed: draw ``z`` of the reveal from ``N(0, 1)`` with this seed instead of zeros.
        tile: as :func:`reveal` takes it.
        overlap: as :func:`reveal` takes it.
        progress: as :func:`reveal` takes it.

    Returns:
        A :class:`Verification`.

    Raises:
        invhide.errors.InputError: as :func:`hide`, or a stego smaller than the cover or of another batch.
        invhide.errors.ModelError: as :func:`reveal` (and its InputTypeError).

    Example:
        >>> fresh = invhide.InvertibleHider(num_blocks=1, subnet="conv")  # the identity: it hides nothing
        >>> cover, secret = torch.rand(2, 3, 16, 16)
        >>> figures = verify(fresh, cover, secret, quantize_8bit(hide(fresh, cover, secret)))
        >>> figures.secret_psnr < MIN_SECRET_PSNR, figures.passed
        (True, False)
    """
    covers, secrets, stegos = _verify_inputs(model, cover, secret, stego)
    height, width = covers.shape[-2:]
    generator = seeded_generator(seed, stegos.device)
    expected = fit_secret(secrets, (height, width), fit).to(stegos.device)
    if covers.shape[0] == 0:
        return Verification(math.nan, math.nan, False)
    revealed = reveal(model, stegos, generator=generator, key=key, tile=tile, overlap=overlap, progress=progress)
    revealed = quantize_8bit(revealed[..., :height, :width])
    received, reference = stegos[..., :height, :width], covers.to(stegos.device)
    identical = bool(((received.float() - reference.float()).abs().flatten(1).amax(1) < 0.75 / 255).any())
    stego_db = _psnr(received, reference).max().item()
    return Verification(stego_db, _psnr(revealed, expected).min().item(), identical)


def _verify_inputs(model: nn.Module, cover: object, secret: object, stego: object) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`verify`'s checked batches: covers and secrets in ``[0, 1]``, stegos as many, at least the covers' size."""
    channels = getattr(model, "channels", 3)
    covers, _ = _batch("cover", cover, channels)
    secrets, _ = _batch("secret", secret, channels)
    stegos, _ = _batch("stego", stego, channels, bounded=False)
    height, width = covers.shape[-2:]
    if stegos.shape[0] != covers.shape[0] or stegos.shape[-2] < height or stegos.shape[-1] < width:
        raise InputError(
            argument="stego",
            problem=f"must be a batch of {covers.shape[0]} at least the cover's size {height}x{width} (height x "
            f"width), got shape {tuple(stegos.shape)}",
        )
    return covers, secrets, stegos


def _centre(image: Tensor, side: int) -> Tensor:
    """The centre window of ``(B, C, H, W)``, at most ``side`` on each side, starting on even pixels."""
    height, width = image.shape[-2:]
    top, left = max(0, (height - side) // 4 * 2), max(0, (width - side) // 4 * 2)
    return image[..., top : top + side, left : left + side]


def seeded_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator | None:
    """A generator on ``device`` seeded with ``seed`` (checked), or ``None`` (``z`` zeros) without one.

    What a reveal draws its stand-in ``z`` from when given a seed, as
    ``invhide reveal --seed`` and ``invhide eval --seed`` do.

    Example:
        >>> seeded_generator(None) is None, seeded_generator(3).initial_seed()
        (True, 3)
    """
    return None if seed is None else torch.Generator(device).manual_seed(integer("seed", seed))


def blur_agreement(model: nn.Module, image: Tensor, *, window: int = 256, seed: int | None = None) -> float:
    """PSNR (dB) between what ``image`` reveals and what it reveals blurred: high when it carries nothing.

    A stego of ``model`` holds its secret in its finest detail, so a 3x3
    box blur changes what it reveals completely (the two reveals, rounded to
    8 bits, agree at 5 to 25 dB for the stegos of ``conv8-photos49-keyed``
    and ``conv8-photos49-v2``, uniform secrets included); an image that holds nothing of the model's, such as a
    plain photograph or a stego re-encoded as JPEG, reveals a faint ghost of
    itself that blurring hardly changes (most agree at 28 dB or more). At or
    above
    :data:`NOT_A_STEGO_PSNR`, ``image`` cannot be a stego of ``model``, as
    far as this test tells; below it, it may be one. Both reveals use the
    same ``z`` and the image's centre window, so the test costs two reveals
    of at most ``window x window`` pixels. It needs no key: a keyed model's
    reveals are compared under :data:`~invhide.models.hider.PUBLIC_KEY`,
    and any one key permutes both alike, which leaves their PSNR as it is.

    Args:
        model: a hider.
        image: ``(B, C, H, W)`` or ``(C, H, W)`` floats, e.g. read from a file.
        window: side of the centre window tested (the whole image when smaller).
        seed: draw ``z`` of both reveals from ``N(0, 1)`` with this seed instead of zeros.

    Returns:
        The PSNR in dB (for a batch, the lowest); ``inf`` when the reveals are identical.

    Raises:
        invhide.errors.InputError: as :func:`reveal`, or a bad ``window``.
        invhide.errors.InputTypeError: as :func:`reveal`.

    Example:
        >>> photo = torch.rand(3, 32, 32)
        >>> blur_agreement(invhide.InvertibleHider(num_blocks=1, subnet="conv"), photo) >= NOT_A_STEGO_PSNR
        True
    """
    batch, _ = _batch("image", image, getattr(model, "channels", 3), bounded=False)
    part = _centre(batch, positive_int("window", window))
    if part.shape[0] == 0:
        return math.inf
    blurred = F.avg_pool2d(F.pad(part, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    key = PUBLIC_KEY if getattr(model, "keyed", False) else None
    seed = None if seed is None else integer("seed", seed)
    revealed = [
        quantize_8bit(reveal(model, x, generator=seeded_generator(seed, part.device), key=key)) for x in (part, blurred)
    ]
    return _psnr(*revealed).min().item()


def trained_channels(model: nn.Module) -> frozenset[str]:
    """The files ``model`` was trained to reveal from, by the names of :attr:`invhide.io.images.ImageFormat.channel`.

    A model that declares them has a ``trained_channels`` attribute (a
    collection of names such as ``"lossless"``, ``"jpeg"``, ``"webp"``):
    the trainer sets it from the channels it trains through
    (:attr:`invhide.training.TrainConfig.channels`: a JPEG one adds
    ``"jpeg"``), its weights file stores it, and :func:`invhide.load` sets
    it again (a published model's record shows it too,
    :attr:`invhide.models.zoo.ModelRecord.trained_channels`). Without it
    the answer is ``{"lossless"}``: exact or 8-bit-rounded stegos only.
    ``invhide reveal`` warns when the file's channel is not among them.

    Example:
        >>> sorted(trained_channels(invhide.InvertibleHider(num_blocks=1)))
        ['lossless']
    """
    declared = getattr(model, "trained_channels", None)
    if declared is None:
        return frozenset({"lossless"})
    if isinstance(declared, str):
        return frozenset({declared})
    return frozenset(declared)
