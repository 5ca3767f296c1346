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
  matches the whole-image computation (measured in ``benchmarks/tiling.py``).
  The auxiliary ``z`` of :func:`reveal` is drawn once for the whole image, so
  tiling does not change it. Measured on a trained 4-block hider
  (``benchmarks/tiling.py``, 512x512): with 32 pixels of overlap the tiled
  stego and recovery differ from the whole-image ones by at most 3.4e-7, with
  no visible seam; without overlap the recovery is off by up to 0.24 at the
  seams. The default overlap, 64, leaves room for deeper models. This holds
  for Haar; other wavelets wrap around each window's edge (periodisation), so
  a window edge that is not an image edge differs from the whole-image result
  within the overlap, which the kept centres then discard only if the
  overlap exceeds the wavelet's reach.

Everything runs under ``torch.inference_mode()`` and leaves the model's
train/eval mode as it found it. An empty batch (``B = 0``) is valid and
gives an empty result.

Two checks for tools that use a model they did not train:
:func:`hides_nothing` tells a model whose stego ignores the secret (a
freshly initialised hider is the identity), and :func:`stego_psnr` measures
how far a stego is from its cover, to compare with :data:`LOW_STEGO_PSNR`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invhide.checks import integer, non_negative_int, positive_int
from invhide.errors import InputError, InputTypeError

__all__ = ["FITS", "LOW_STEGO_PSNR", "fit_secret", "hide", "hides_nothing", "pad_to", "reveal", "stego_psnr", "tiles"]

FITS: tuple[str, ...] = ("refuse", "resize", "crop")


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _check_batch(name: str, image: object, channels: int, bounded: bool = True) -> tuple[Tensor, bool]:
    """``image`` as a finite float ``(B, C, H, W)`` batch (in ``[0, 1]`` if ``bounded``); was it one image?"""
    if not isinstance(image, Tensor):
        raise InputTypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() not in (3, 4) or image.shape[-3] != channels:
        expected = f"({channels}, H, W) or (B, {channels}, H, W)"
        raise InputError(f"{name} must have shape {expected}, got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise InputTypeError(f"{name} must be a floating-point tensor, got dtype {image.dtype}")
    single = image.dim() == 3
    batch = image.unsqueeze(0) if single else image
    if not image.numel():
        return batch, single
    bad = int((~torch.isfinite(image)).sum())
    if bad:
        raise InputError(f"{name} holds {bad} NaN or infinite value(s); expected finite values")
    low, high = image.min().item(), image.max().item()
    if bounded and (low < 0 or high > 1):
        raise InputError(f"{name} must have values in [0, 1], got values in [{low:.4g}, {high:.4g}]")
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
    if fit not in FITS:
        raise InputError(f"fit must be one of {FITS}, got {fit!r}")
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
    function: Callable[[Tensor, Tensor], tuple[Tensor, ...]],
    first: Tensor,
    second: Tensor,
    tile: int | None,
    overlap: int,
    step: int,
    progress: bool = False,
) -> tuple[Tensor, ...]:
    """Apply a size-preserving two-input function window by window and stitch the kept parts."""
    height, width = first.shape[-2:]
    if tile is None or (tile >= height and tile >= width):
        return function(first, second)
    if tile % step or overlap % step or tile <= 0 or overlap < 0:
        raise InputError(f"tile and overlap must be non-negative multiples of {step}, got {tile} and {overlap}")
    windows = [(r, c) for r in tiles(height, tile, overlap, step) for c in tiles(width, tile, overlap, step)]
    if progress and len(windows) > 1:
        from tqdm.auto import tqdm

        windows = tqdm(windows, desc="tiles", unit="tile", leave=False)
    outputs: list[Tensor] | None = None
    for (top, bottom, keep_top, keep_bottom), (left, right, keep_left, keep_right) in windows:
        window = (..., slice(top, bottom), slice(left, right))
        results = function(first[window], second[window])
        if outputs is None:
            outputs = [r.new_empty(*r.shape[:2], height, width) for r in results]
        inner = (..., slice(keep_top - top, keep_bottom - top), slice(keep_left - left, keep_right - left))
        kept = (..., slice(keep_top, keep_bottom), slice(keep_left, keep_right))
        for output, result in zip(outputs, results, strict=True):
            output[kept] = result[inner]
    return tuple(outputs or ())


def _working_dtype(model: nn.Module, fallback: torch.dtype) -> torch.dtype:
    """The dtype of the model's weights (a float64 or bfloat16 model gets inputs of its own dtype)."""
    param = next(model.parameters(), None)
    return param.dtype if param is not None else fallback


def _tile_step(model: nn.Module) -> int:
    # Windows start on even pixels so that every window sees the same 2x2 wavelet blocks as the whole image.
    return 2 * max(1, math.ceil(getattr(model, "min_size", 2) / 2))


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
        The float stego, shaped like ``cover`` (not clamped or rounded). An
        empty batch (``B = 0``) gives an empty stego of the cover's shape,
        once the inputs' shapes are checked.

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
    cover, single = _check_batch("cover", cover, channels)
    secret, _ = _check_batch("secret", secret, channels)
    if secret.shape[0] != cover.shape[0]:
        raise InputError(f"cover and secret batches differ: {cover.shape[0]} and {secret.shape[0]}")
    if cover.shape[0] == 0:  # an empty batch: an empty stego, once the sizes are known to fit
        if fit == "refuse" or fit not in FITS:
            fit_secret(secret, tuple(cover.shape[-2:]), fit)
        return cover.new_empty(cover.shape)
    secret = fit_secret(secret, tuple(cover.shape[-2:]), fit)
    dtype = _working_dtype(model, cover.dtype)
    cover, secret, result_dtype = cover.to(dtype), secret.to(dtype), cover.dtype
    padded_cover, (height, width) = pad_to(cover, getattr(model, "min_size", 2))
    padded_secret, _ = pad_to(secret, getattr(model, "min_size", 2))
    with _evaluating(model):
        (stego,) = _tiled(
            lambda c, s: model.hide(c, s)[:1], padded_cover, padded_secret, tile, overlap, _tile_step(model), progress
        )
    stego = stego[..., :height, :width].to(result_dtype)
    return stego[0] if single else stego


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
        stego: ``(B, C, H, W)`` or ``(C, H, W)``, e.g. read from an 8-bit PNG.
        z: stand-in for the lost part, shaped like the padded stego;
            ``N(0, 1)`` from ``generator`` when not given.
        generator: seeds ``z``.
        tile: process in windows of this side (even); ``None``: whole image.
        overlap: context pixels around each window's kept centre (even).
        progress: show a progress bar over the windows.

    Returns:
        The recovered secret, clamped to ``[0, 1]``, shaped like ``stego``
        (``C * num_secrets`` channels). An empty batch (``B = 0``) gives an
        empty result.

    Raises:
        invhide.errors.InputError: NaN or infinite values, a ``z`` of the
            wrong shape, bad tiling arguments.
        invhide.errors.InputTypeError: a non-tensor or non-float input, or a
            stego on another device than the model.
        invhide.errors.ModelError: the model turned the finite inputs into
            NaN or infinite values (corrupt or diverged weights).

    Example:
        >>> model = invhide.InvertibleHider(num_blocks=1, subnet="conv")
        >>> tuple(reveal(model, torch.rand(3, 9, 10)).shape)
        (3, 9, 10)
    """
    _check_tiling(tile, overlap)
    channels = getattr(model, "channels", 3)
    stego, single = _check_batch("stego", stego, channels, bounded=False)  # a float stego may overshoot [0, 1]
    result_dtype = stego.dtype
    stego = stego.to(_working_dtype(model, stego.dtype))
    padded, (height, width) = pad_to(stego, getattr(model, "min_size", 2))
    lost_channels = channels * getattr(model, "num_secrets", 1)
    shape = (padded.shape[0], lost_channels, *padded.shape[-2:])
    if z is None:
        z = torch.randn(shape, generator=generator, device=stego.device, dtype=stego.dtype)
    elif not isinstance(z, Tensor):
        raise InputTypeError(f"z must be a torch.Tensor, got {type(z).__name__}")
    elif tuple(z.shape) != shape:
        raise InputError(f"z must have shape {shape} (the padded stego's), got {tuple(z.shape)}")
    elif not z.is_floating_point():
        raise InputTypeError(f"z must be a floating-point tensor, got dtype {z.dtype}")
    if stego.shape[0] == 0:  # an empty batch: an empty result
        return stego.new_empty((0, lost_channels, height, width), dtype=result_dtype)
    z = z.to(stego.dtype)
    with _evaluating(model):
        (secret,) = _tiled(lambda s, n: (model.reveal(s, z=n),), padded, z, tile, overlap, _tile_step(model), progress)
    secret = secret[..., :height, :width].clamp(0, 1).to(result_dtype)
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


LOW_STEGO_PSNR = 20.0
"""Stego PSNR (dB) below which a stego visibly differs from its cover: trained hiders reach 30 to 49 dB."""


def stego_psnr(cover: Tensor, stego: Tensor) -> float:
    """PSNR in dB of a stego image against its cover, as written: clamped to ``[0, 1]``.

    One number for the whole batch (from the mean squared error over every
    pixel); ``math.inf`` when the two are equal. Compare it with
    :data:`LOW_STEGO_PSNR` to warn about a stego that shows the hiding.

    Args:
        cover: ``(B, C, H, W)`` or ``(C, H, W)`` in ``[0, 1]``.
        stego: the same shape; values outside ``[0, 1]`` are clamped, as an
            image file would.

    Example:
        >>> cover = torch.full((3, 8, 8), 0.5)
        >>> round(stego_psnr(cover, cover + 0.01), 2)
        40.0
        >>> stego_psnr(cover, cover)
        inf
    """
    for name, value in (("cover", cover), ("stego", stego)):
        if not isinstance(value, Tensor):
            raise InputTypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if not value.is_floating_point():
            raise InputTypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if cover.shape != stego.shape or not cover.numel():
        raise InputError(
            f"cover and stego must have the same non-empty shape, got {tuple(cover.shape)} and {tuple(stego.shape)}"
        )
    mse = (stego.detach().double().clamp(0, 1) - cover.detach().double()).square().mean().item()
    if not math.isfinite(mse):
        raise InputError("cover or stego holds NaN or infinite values")
    return math.inf if mse == 0 else -10 * math.log10(mse)
