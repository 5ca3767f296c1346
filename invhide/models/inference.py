"""Hiding and revealing whole images of any size: padding, size matching and tiling.

:meth:`InvertibleHider.hide` needs even sizes of at least ``model.min_size``
and cover and secret of one size. The functions here take images as they
come:

- **Any size.** Images are padded (reflect, or replicate where an image is
  too small to reflect) to an even size of at least the wavelet's minimum,
  and the result is cropped back, so the output has exactly the input's size.
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

Two checks for tools that use a model they did not train:
:func:`hides_nothing` tells a model whose stego ignores the secret (a
freshly initialised hider is the identity), and a stego whose
:func:`invhide.evaluation.metrics.psnr` against its cover is below
:data:`LOW_STEGO_PSNR` shows the hiding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from invhide.checks import image_batch, integer, non_negative_int, one_of, positive_int, tensor
from invhide.errors import InputError, InputTypeError

__all__ = ["FITS", "LOW_STEGO_PSNR", "fit_secret", "hide", "hides_nothing", "pad_to", "reveal", "tiles"]

FITS: tuple[str, ...] = ("refuse", "resize", "crop")

LOW_STEGO_PSNR = 20.0
"""Stego PSNR (dB) below which a stego visibly differs from its cover; a trained hider stays far above it."""


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
    target_h = max(min_size, height + height % 2)
    target_w = max(min_size, width + width % 2)
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
    for (top, bottom, keep_top, keep_bottom), (left, right, keep_left, keep_right) in tqdm(
        windows, desc="tiles", unit="tile", leave=False, disable=not progress or len(windows) < 2
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
    # Windows start on even pixels so that every window sees the same 2x2 wavelet blocks as the whole image.
    step = 2 * max(1, math.ceil(getattr(model, "min_size", 2) / 2))
    with _evaluating(model):
        result = _tiled(function, *inputs, tile, overlap, step, progress)
    return result[..., : size[0], : size[1]]


def hide(
    model: nn.Module,
    cover: Tensor,
    secret: Tensor,
    *,
    fit: str = "refuse",
    tile: int | None = None,
    overlap: int = 64,
    progress: bool = False,
) -> Tensor:
    """Hide ``secret`` in ``cover`` at any size; the stego has the cover's size.

    Args:
        model: a trained hider with one secret.
        cover: ``(B, C, H, W)`` or ``(C, H, W)`` in ``[0, 1]``, any H, W >= 1.
        secret: the same, of the cover's size unless ``fit`` says otherwise.
        fit: ``"refuse"``, ``"resize"`` or ``"crop"``, see :func:`fit_secret`.
        tile: process in windows of this side (even); ``None``: whole image.
        overlap: context pixels around each window's kept centre (even).
        progress: show a progress bar over the windows.

    Returns:
        The float stego, shaped like ``cover`` (not clamped or rounded); empty for an empty batch.

    Raises:
        invhide.errors.InputError: values outside ``[0, 1]`` or NaN,
            mismatched sizes with ``fit="refuse"``, bad tiling arguments.
        invhide.errors.InputTypeError: a non-tensor or non-float input, or a
            cover on another device than the model.
        invhide.errors.ModelError: the model turned the finite inputs into
            NaN or infinite values (corrupt or diverged weights).

    Example:
        >>> model = invhide.InvertibleHider(num_blocks=1, subnet="conv")
        >>> stego = hide(model, torch.rand(3, 33, 17), torch.rand(3, 33, 17))
        >>> tuple(stego.shape)
        (3, 33, 17)
    """
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
    size = (cover.shape[-2], cover.shape[-1])
    if cover.shape[0] == 0:  # an empty batch: an empty stego, once the sizes are known to fit
        if fit == "refuse":
            fit_secret(secret, size)  # raises unless the sizes agree
        return cover.new_empty(cover.shape)
    dtype, min_size = _working_dtype(model, cover.dtype), getattr(model, "min_size", 2)
    padded = pad_to(cover.to(dtype), min_size)[0], pad_to(fit_secret(secret, size, fit).to(dtype), min_size)[0]
    stego = _windowed(model, lambda c, s: model.hide(c, s, check_finite=True)[0], padded, size, tile, overlap, progress)
    stego = stego.to(cover.dtype)
    return stego[0] if single else stego


def _stand_in(z: object, generator: torch.Generator | None, like: Tensor, channels: int) -> Tensor:
    """``z`` for the padded stego ``like``, checked, or drawn from ``N(0, 1)`` with ``generator``."""
    shape = (like.shape[0], channels, *like.shape[-2:])
    if z is None:
        if generator is not None and not isinstance(generator, torch.Generator):
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
            ``N(0, 1)`` from ``generator`` when not given.
        generator: seeds ``z``.
        tile: process in windows of this side (even); ``None``: whole image.
        overlap: context pixels around each window's kept centre (even).
        progress: show a progress bar over the windows.

    Returns:
        The recovered secret, clamped to ``[0, 1]``, shaped like ``stego``
        (``C * num_secrets`` channels). An empty batch gives an empty result.

    Raises:
        invhide.errors.InputError: NaN or infinite values, a ``z`` of the
            wrong shape, bad tiling arguments.
        invhide.errors.InputTypeError: a non-tensor or non-float input, a
            ``generator`` that is not one, or a stego on another device than
            the model.
        invhide.errors.ModelError: the model turned the finite inputs into
            NaN or infinite values (corrupt or diverged weights).

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
    secret = _windowed(
        model, lambda s, n: model.reveal(s, z=n, check_finite=True), (padded, z), size, tile, overlap, progress
    )
    secret = secret.clamp(0, 1).to(stego.dtype)
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
        stego_a, _ = model.hide(probe[0], *probe[1 : 1 + count])
        stego_b, _ = model.hide(probe[0], *probe[1 + count :])
    return torch.equal(stego_a, stego_b)
