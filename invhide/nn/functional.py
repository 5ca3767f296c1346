"""Pure tensor math: wavelet layouts, soft clamps and the coupling equations.

Everything here is a plain function of tensors (and, for the couplings, of
the subnetworks to apply); the :mod:`invhide.nn.modules` classes are thin FrEIA
wrappers around these functions.

Wavelet layouts. A one-level 2-D DWT maps ``(B, C, H, W)`` to four subbands of
``(B, C, H/2, W/2)`` each, concatenated subband-major into ``(B, 4C, H/2, W/2)``
(channels ``[0:C]`` are the low-pass LL band). With ``a = x[..., 0::2, 0::2]``,
``b = x[..., 1::2, 0::2]``, ``c = x[..., 0::2, 1::2]`` and
``d = x[..., 1::2, 1::2]``, the Haar bands are, in order:

=========== ======================= =========================
 block       ``layout="subband"``    ``layout="hinet"``
=========== ======================= =========================
 ``[0:C]``   ``( a + b + c + d)/2``  ``( a + b + c + d)/2``
 ``[C:2C]``  ``( a - b + c - d)/2``  ``(-a - b + c + d)/2``
 ``[2C:3C]`` ``( a + b - c - d)/2``  ``(-a + b - c + d)/2``
 ``[3C:4C]`` ``( a - b - c + d)/2``  ``( a - b - c + d)/2``
=========== ======================= =========================

``"subband"`` is the order and sign convention of pytorch-wavelets and
PyWavelets (LL, then the three detail bands as ``DWTForward`` returns them);
``"hinet"`` is the reference HiNet code's ``dwt_init`` (LL, HL, LH, HH), so its
weights load unchanged. For other wavelets, ``"hinet"`` applies the same
permutation and signs to the detail bands of that wavelet.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from invhide.checks import image_batch, one_of, tensor
from invhide.errors import InputError, InputTypeError
from invhide.nn.backends import pytorch_wavelets_lowlevel

__all__ = [
    "CLAMP_ACTIVATIONS",
    "LAYOUTS",
    "coupling_forward",
    "coupling_inverse",
    "dwt",
    "even_step",
    "filter_bank_dwt",
    "filter_bank_idwt",
    "haar_dwt",
    "haar_idwt",
    "idwt",
    "levels_8bit",
    "min_wavelet_size",
    "quantize_8bit",
    "resolve_backend",
    "soft_clamp",
    "validate_wavelet",
]

Layout = Literal["subband", "hinet"]
Backend = Literal["auto", "haar", "pytorch_wavelets"]
LAYOUTS: tuple[str, ...] = ("subband", "hinet")
"""Subband layouts of :func:`dwt`: ``"subband"`` (pytorch-wavelets') and ``"hinet"`` (the reference HiNet code's)."""
CLAMP_ACTIVATIONS: tuple[str, ...] = ("sigmoid", "tanh", "atan")
"""Shapes of :func:`soft_clamp`: ``"sigmoid"`` (HiNet's), ``"tanh"`` and ``"atan"``."""
_HAAR_NAMES = ("haar", "db1")
# pytorch-wavelets encodes its padding modes as integers; 2 is periodization.
_PERIODIZATION = 2


# --------------------------------------------------------------------------
# Wavelets
# --------------------------------------------------------------------------


def validate_wavelet(wavelet: str) -> int:
    """Check that ``wavelet`` names an orthogonal discrete wavelet.

    Args:
        wavelet: a PyWavelets name such as ``"haar"``, ``"db2"`` or ``"sym4"``.

    Returns:
        The length of its filters (2 for Haar).

    Raises:
        TypeError: ``wavelet`` is not a string.
        ValueError: the name is unknown or the wavelet is not orthogonal (a
            biorthogonal wavelet is invertible but not orthonormal, so its
            log-determinant would not be zero).
        ImportError: a non-Haar wavelet was asked for and PyWavelets is
            missing.

    Example:
        >>> validate_wavelet("db2")
        4
    """
    if not isinstance(wavelet, str):
        raise InputTypeError(
            argument="wavelet", problem=f"must be a string such as 'haar', got {type(wavelet).__name__}"
        )
    return _filter_length(wavelet)


@functools.cache
def _filter_length(wavelet: str) -> int:
    if wavelet in _HAAR_NAMES:
        return 2
    try:
        import pywt
    except ModuleNotFoundError as error:  # pragma: no cover - pywt is a dependency
        raise ImportError(f"wavelet {wavelet!r} needs PyWavelets (pip install PyWavelets)") from error
    if wavelet not in pywt.wavelist(kind="discrete"):
        raise InputError(
            f"unknown wavelet {wavelet!r}; expected a discrete PyWavelets name such as 'haar', 'db2', 'sym4' or 'coif1'"
        )
    info = pywt.Wavelet(wavelet)
    if not info.orthogonal:
        raise InputError(
            f"wavelet {wavelet!r} is not orthogonal; invertible hiding needs an orthogonal "
            f"wavelet (haar, db*, sym*, coif*) so that the transform is orthonormal"
        )
    return int(info.dec_len)


def min_wavelet_size(wavelet: str) -> int:
    """Smallest height and width a one-level periodised DWT inverts exactly.

    A periodised transform with filters of length ``L`` reconstructs exactly
    only when each side is even and at least ``L``.

    Example:
        >>> min_wavelet_size("haar"), min_wavelet_size("db2"), min_wavelet_size("sym4")
        (2, 4, 8)
    """
    return max(2, validate_wavelet(wavelet))


def even_step(min_size: int) -> int:
    """The even number of pixels, at least ``min_size``, that windows of a large image start on.

    Every window then sees the same 2x2 wavelet blocks as the whole image.

    Example:
        >>> even_step(1), even_step(2), even_step(3), even_step(8)
        (2, 2, 4, 8)
    """
    return 2 * max(1, math.ceil(min_size / 2))


def _check(name: str, x: Tensor, wavelet: str, layout: str, backend: str, down: bool) -> str:
    """The backend :func:`dwt` (``down``) or :func:`idwt` uses for ``x``, after refusing what it cannot take."""
    validate_wavelet(wavelet)
    one_of("layout", layout, LAYOUTS)
    resolved = resolve_backend(wavelet, backend)
    image_batch(name, x)
    low = min_wavelet_size(wavelet)
    h, w = x.shape[-2:]
    if down and (h % 2 or w % 2 or h < low or w < low):
        raise InputError(f"the {wavelet!r} DWT needs an even height and width of at least {low}, got {h}x{w}")
    if not down and (x.shape[1] % 4 or 2 * h < low or 2 * w < low):
        raise InputError(
            f"the inverse {wavelet!r} DWT needs 4*C channels and subbands of at least {low // 2}x{low // 2}, "
            f"got shape {tuple(x.shape)}"
        )
    return resolved


def haar_dwt(x: Tensor, layout: Layout = "subband") -> Tensor:
    """Orthonormal one-level Haar DWT by direct polyphase arithmetic.

    The kernel behind :func:`dwt` for Haar; it trusts its caller (nothing
    is checked).

    Args:
        x: ``(B, C, H, W)``, H and W even.
        layout: subband order and signs, see the module docstring.

    Returns:
        ``(B, 4C, H/2, W/2)``, subband-major, LL first.

    Example:
        >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)  # a=0, b=2, c=1, d=3
        >>> haar_dwt(x).flatten().tolist()
        [3.0, -2.0, -1.0, 0.0]
        >>> haar_dwt(x, layout="hinet").flatten().tolist()
        [3.0, 1.0, 2.0, 0.0]
    """
    a = x[..., 0::2, 0::2]
    b = x[..., 1::2, 0::2]
    c = x[..., 0::2, 1::2]
    d = x[..., 1::2, 1::2]
    # Butterflies: two additions per output instead of three.
    ab, cd = a + b, c + d
    ba, dc = b - a, d - c
    ll = (ab + cd) * 0.5
    col = (cd - ab) * 0.5  # (-a - b + c + d) / 2
    row = (ba + dc) * 0.5  # (-a + b - c + d) / 2
    diag = (dc - ba) * 0.5  # (a - b - c + d) / 2
    if layout == "hinet":
        return torch.cat((ll, col, row, diag), dim=1)
    return torch.cat((ll, -row, -col, diag), dim=1)


def haar_idwt(y: Tensor, layout: Layout = "subband") -> Tensor:
    """Exact inverse of :func:`haar_dwt` (unchecked, like it).

    Args:
        y: ``(B, 4C, h, w)`` in the given layout.
        layout: subband order and signs, see the module docstring.

    Returns:
        ``(B, C, 2h, 2w)``.

    Example:
        >>> x = torch.rand(2, 3, 8, 6, dtype=torch.float64)
        >>> bool(torch.allclose(haar_idwt(haar_dwt(x)), x, atol=1e-15))
        True
    """
    ll, band1, band2, diag = y.chunk(4, dim=1)
    if layout == "hinet":
        col, row = band1, band2
    else:
        col, row = -band2, -band1
    ab, cd = ll - col, ll + col  # a + b, c + d
    ba, dc = row - diag, row + diag  # b - a, d - c
    a, b = (ab - ba) * 0.5, (ab + ba) * 0.5
    c, d = (cd - dc) * 0.5, (cd + dc) * 0.5
    # (B, C, h, 2, w, 2): [i, 0, j, 0] = a, [i, 0, j, 1] = c, [i, 1, j, 0] = b, [i, 1, j, 1] = d
    out = torch.stack((torch.stack((a, c), dim=-1), torch.stack((b, d), dim=-1)), dim=3)
    batch, channels, h, _, w, _ = out.shape
    return out.reshape(batch, channels, 2 * h, 2 * w)


@functools.cache
def _coefficients(wavelet: str) -> tuple[tuple[float, ...], ...]:
    """PyWavelets' float64 filter coefficients: ``(dec_lo, dec_hi, rec_lo, rec_hi)``."""
    import pywt

    info = pywt.Wavelet(wavelet)
    return tuple(tuple(float(v) for v in f) for f in (info.dec_lo, info.dec_hi, info.rec_lo, info.rec_hi))


def _filters(wavelet: str, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, ...]:
    """Analysis and synthesis filters in the shapes pytorch-wavelets expects.

    Built from PyWavelets' float64 coefficients directly in ``dtype``, so a
    float64 transform is exact to float64 precision (pytorch-wavelets' own
    modules keep float32 buffers). Only the Python numbers are cached: the
    tensors are made per call (eight tiny ones), so none of them is ever an
    inference-mode tensor reused by a later call that needs gradients.
    """
    dec_lo, dec_hi, rec_lo, rec_hi = _coefficients(wavelet)

    def column(values: tuple[float, ...], reverse: bool) -> Tensor:
        ordered = values[::-1] if reverse else values
        return torch.tensor(ordered, dtype=dtype, device=device).reshape(1, 1, -1, 1)

    h0, h1 = column(dec_lo, True), column(dec_hi, True)
    g0, g1 = column(rec_lo, False), column(rec_hi, False)
    # (h0_row, h1_row, h0_col, h1_col, g0_row, g1_row, g0_col, g1_col)
    return (h0.transpose(2, 3), h1.transpose(2, 3), h0, h1, g0.transpose(2, 3), g1.transpose(2, 3), g0, g1)


def resolve_backend(wavelet: str, backend: str) -> str:
    """The DWT implementation ``backend`` means for ``wavelet``: ``"haar"`` or ``"pytorch_wavelets"``.

    Raises:
        ValueError: an unknown backend, or ``"haar"`` for another wavelet.

    Example:
        >>> resolve_backend("haar", "auto"), resolve_backend("db2", "auto")
        ('haar', 'pytorch_wavelets')
    """
    one_of("backend", backend, ("auto", "haar", "pytorch_wavelets"))
    if backend == "haar" and wavelet not in _HAAR_NAMES:
        raise InputError(f"backend 'haar' computes only the Haar wavelet, got wavelet {wavelet!r}")
    if backend == "auto":
        return "haar" if wavelet in _HAAR_NAMES else "pytorch_wavelets"
    return backend


def dwt(x: Tensor, wavelet: str = "haar", layout: Layout = "subband", backend: Backend = "auto") -> Tensor:
    """Orthonormal one-level 2-D DWT with periodisation.

    Args:
        x: ``(B, C, H, W)``, H and W even and at least :func:`min_wavelet_size`.
        wavelet: an orthogonal PyWavelets wavelet name.
        layout: subband order and signs (module docstring).
        backend: ``"auto"`` (direct Haar arithmetic for Haar, pytorch-wavelets
            otherwise), ``"haar"`` or ``"pytorch_wavelets"``.

    Returns:
        ``(B, 4C, H/2, W/2)``, subband-major, LL first.

    Raises:
        ValueError: odd or too small spatial size, unknown layout or wavelet.

    Example:
        >>> x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
        >>> y = dwt(x, "db2")
        >>> tuple(y.shape), bool(torch.allclose(idwt(y, "db2"), x, atol=1e-12))
        ((1, 12, 8, 8), True)
    """
    if _check("x", x, wavelet, layout, backend, down=True) == "haar":
        return haar_dwt(x, layout)
    return filter_bank_dwt(x, wavelet, layout)


def filter_bank_dwt(x: Tensor, wavelet: str, layout: Layout = "subband") -> Tensor:
    """The kernel behind :func:`dwt` for any orthogonal wavelet (pytorch-wavelets' filter bank); unchecked.

    Args:
        x: ``(B, C, H, W)``, H and W even and at least :func:`min_wavelet_size`.
        wavelet: an orthogonal PyWavelets wavelet name.
        layout: subband order and signs (module docstring).

    Returns:
        ``(B, 4C, H/2, W/2)``, subband-major, LL first.

    Example:
        >>> x = torch.rand(1, 1, 4, 4, dtype=torch.float64)
        >>> bool(torch.allclose(filter_bank_dwt(x, "haar"), haar_dwt(x)))
        True
    """
    lowlevel = pytorch_wavelets_lowlevel()
    filters = _filters(wavelet, x.dtype, x.device)
    low, highs = lowlevel.AFB2D.apply(x, *filters[:4], _PERIODIZATION)
    band1, band2, diag = highs.unbind(dim=2)
    if layout == "hinet":
        return torch.cat((low, -band2, -band1, diag), dim=1)
    return torch.cat((low, band1, band2, diag), dim=1)


def idwt(y: Tensor, wavelet: str = "haar", layout: Layout = "subband", backend: Backend = "auto") -> Tensor:
    """Exact inverse of :func:`dwt`.

    Args:
        y: ``(B, 4C, h, w)`` in the given layout.
        wavelet: the wavelet used by :func:`dwt`.
        layout: the layout used by :func:`dwt`.
        backend: as in :func:`dwt`.

    Returns:
        ``(B, C, 2h, 2w)``.

    Example:
        >>> y = torch.zeros(1, 4, 2, 2)
        >>> y[:, 0] = 2.0  # a constant LL band of 2 is a constant image of 1
        >>> idwt(y).unique().tolist()
        [1.0]
    """
    if _check("y", y, wavelet, layout, backend, down=False) == "haar":
        return haar_idwt(y, layout)
    return filter_bank_idwt(y, wavelet, layout)


def filter_bank_idwt(y: Tensor, wavelet: str, layout: Layout = "subband") -> Tensor:
    """Exact inverse of :func:`filter_bank_dwt` (unchecked, like it).

    Example:
        >>> x = torch.rand(1, 2, 8, 8, dtype=torch.float64)
        >>> bool(torch.allclose(filter_bank_idwt(filter_bank_dwt(x, "db2"), "db2"), x))
        True
    """
    lowlevel = pytorch_wavelets_lowlevel()
    filters = _filters(wavelet, y.dtype, y.device)
    ll, band1, band2, diag = y.chunk(4, dim=1)
    if layout == "hinet":
        band1, band2 = -band2, -band1
    highs = torch.stack((band1, band2, diag), dim=2)
    return lowlevel.SFB2D.apply(ll, highs, *filters[4:], _PERIODIZATION)


# --------------------------------------------------------------------------
# Rounding
# --------------------------------------------------------------------------

_LEVELS = 255.0  # an 8-bit image has 256 levels, 0..255


def quantize_8bit(x: Tensor) -> Tensor:
    """What a float image becomes when saved as an 8-bit PNG and read back.

    Clamps to ``[0, 1]`` and rounds to the nearest multiple of ``1/255``,
    halves to even (``torch.round``, as invhide's image writer rounds;
    ``torchvision.utils.save_image``, which the reference code uses, rounds
    halves up, which differs only where ``255 x`` is exactly ``k + 0.5``).
    Half-precision inputs are rounded in float32. NaN stays NaN.

    Args:
        x: any shape, floating point.

    Returns:
        A new tensor of ``x``'s shape and dtype with values ``k / 255``,
        ``k`` in ``0..255``.

    Raises:
        TypeError: a non-tensor or non-float input.

    Example:
        >>> x = torch.tensor([-0.2, 0.25, 0.5, 1.7], dtype=torch.float64)
        >>> (quantize_8bit(x) * 255).tolist()  # 0.5 * 255 = 127.5 rounds to the even 128
        [0.0, 64.0, 128.0, 255.0]
    """
    tensor("x", x)
    work = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    return (torch.round(work.clamp(0, 1) * _LEVELS) / _LEVELS).to(x.dtype)


# --------------------------------------------------------------------------
# Soft clamps and coupling equations
# --------------------------------------------------------------------------


def levels_8bit(x: Tensor) -> Tensor:
    """The levels ``k`` of :func:`quantize_8bit` of ``x`` (its values ``k / 255``), as ``torch.uint8``.

    What an 8-bit image file stores; half-precision inputs are rounded in
    float32 (``k / 255`` in 16 bits would not always scale back to ``k``).

    Args:
        x: any shape, floating point, finite.

    Returns:
        ``torch.uint8`` of ``x``'s shape, on its device.

    Example:
        >>> levels_8bit(torch.tensor([-0.2, 0.5, 1.7], dtype=torch.bfloat16)).tolist()
        [0, 128, 255]
    """
    work = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    return torch.round(quantize_8bit(work) * 255).to(torch.uint8)


def soft_clamp(s: Tensor, clamp: float, activation: str = "sigmoid") -> Tensor:
    """Squash log-scales ``s`` smoothly into ``(-clamp, clamp)``.

    ``"sigmoid"`` is HiNet's ``clamp * 2 * (sigmoid(s) - 0.5)`` (slope
    ``clamp / 2`` at 0); ``"tanh"`` is ``clamp * tanh(s / clamp)`` and
    ``"atan"`` is ``clamp * (2 / pi) * atan(s / clamp)`` (both slope 1 at 0).
    All map 0 to 0, so a zero subnet output means unit scale.

    Args:
        s: raw log-scales, any shape.
        clamp: bound, ``> 0``.
        activation: ``"sigmoid"``, ``"tanh"`` or ``"atan"``.

    Returns:
        Tensor of ``s``'s shape with values in ``(-clamp, clamp)``.

    Example:
        >>> s = torch.tensor([-100.0, 0.0, 100.0])
        >>> soft_clamp(s, 2.0).tolist()
        [-2.0, 0.0, 2.0]
    """
    if activation == "sigmoid":
        return clamp * 2 * (torch.sigmoid(s) - 0.5)
    if activation == "tanh":
        return clamp * torch.tanh(s / clamp)
    if activation == "atan":
        return clamp * (2 / math.pi) * torch.atan(s / clamp)
    one_of("activation", activation, CLAMP_ACTIVATIONS)
    raise AssertionError("unreachable")


Subnet = Callable[[Tensor], Tensor]


def coupling_forward(
    x1: Tensor,
    x2: Tensor,
    phi: Subnet,
    rho: Subnet,
    eta: Subnet,
    clamp: float = 2.0,
    activation: str = "sigmoid",
) -> tuple[Tensor, Tensor, Tensor]:
    """HiNet's affine coupling, equation (1) of the paper.

    ``y1 = x1 + phi(x2)`` and ``y2 = x2 * exp(alpha(rho(y1))) + eta(y1)``, with
    ``alpha`` the :func:`soft_clamp`.

    Args:
        x1: cover branch ``(B, C1, h, w)``.
        x2: secret branch ``(B, C2, h, w)``.
        phi: maps ``C2`` to ``C1`` channels.
        rho: maps ``C1`` to ``C2`` channels (log-scale).
        eta: maps ``C1`` to ``C2`` channels (shift).
        clamp: soft-clamp bound of the log-scale.
        activation: soft-clamp shape, see :func:`soft_clamp`.

    Returns:
        ``(y1, y2, log_det)`` with ``log_det`` of shape ``(B,)``: the sum of the
        clamped log-scales (the ``phi`` step is volume-preserving).

    Example:
        >>> zero = lambda t: torch.zeros(t.shape[0], 2, *t.shape[2:])
        >>> x1, x2 = torch.rand(1, 2, 4, 4), torch.rand(1, 2, 4, 4)
        >>> y1, y2, log_det = coupling_forward(x1, x2, zero, zero, zero)
        >>> bool(torch.equal(y1, x1) and torch.equal(y2, x2)), log_det.tolist()
        (True, [0.0])
    """
    y1 = x1 + phi(x2)
    log_scale = soft_clamp(rho(y1), clamp, activation)
    y2 = x2 * torch.exp(log_scale) + eta(y1)
    return y1, y2, log_scale.flatten(1).sum(dim=1)


def coupling_inverse(
    y1: Tensor,
    y2: Tensor,
    phi: Subnet,
    rho: Subnet,
    eta: Subnet,
    clamp: float = 2.0,
    activation: str = "sigmoid",
) -> tuple[Tensor, Tensor, Tensor]:
    """Exact inverse of :func:`coupling_forward`, equation (2) of the paper.

    ``x2 = (y2 - eta(y1)) * exp(-alpha(rho(y1)))`` and ``x1 = y1 - phi(x2)``.

    Returns:
        ``(x1, x2, log_det)`` with ``log_det`` of shape ``(B,)``, the negative
        of the forward log-determinant.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> conv = torch.nn.Conv2d(2, 2, 3, padding=1)
        >>> x1, x2 = torch.rand(1, 2, 4, 4), torch.rand(1, 2, 4, 4)
        >>> y1, y2, ld = coupling_forward(x1, x2, conv, conv, conv)
        >>> z1, z2, ld_inv = coupling_inverse(y1, y2, conv, conv, conv)
        >>> bool(torch.allclose(z1, x1, atol=1e-6) and torch.allclose(z2, x2, atol=1e-6))
        True
        >>> bool(torch.allclose(ld + ld_inv, torch.zeros(1)))
        True
    """
    log_scale = soft_clamp(rho(y1), clamp, activation)
    x2 = (y2 - eta(y1)) * torch.exp(-log_scale)
    x1 = y1 - phi(x2)
    return x1, x2, -log_scale.flatten(1).sum(dim=1)
