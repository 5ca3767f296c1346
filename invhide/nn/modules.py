"""FrEIA invertible modules: wavelet down/upsampling and affine couplings.

Each class follows FrEIA's ``InvertibleModule`` contract: it is built from the
shapes of its inputs (``dims_in``, without the batch dimension), and
``module(xs, rev=False, jac=True)`` returns ``(outputs, log_det)`` with
``log_det`` of shape ``(B,)`` (the negative in the reverse direction), so the
classes plug into ``FrEIA.framework.Node`` graphs. The math lives in
:mod:`invhide.nn.functional`. The spatial size in ``dims_in`` is only used to
check the graph when it is built: every module accepts any valid height and
width at run time. Arguments are checked when a module is built and shapes by
``output_dims`` (which :class:`~invhide.nn.graph.InvertibleGraph` calls at its
edge); ``forward`` trusts its inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from FrEIA.modules import InvertibleModule
from torch import Tensor

from invhide.checks import integer, number, one_of
from invhide.errors import InputError
from invhide.nn import functional
from invhide.nn.subnets import SubnetSpec, resolve

__all__ = ["AffineCoupling", "HidingCoupling", "WaveletDownsampling", "WaveletUpsampling"]

Dims = Sequence[tuple[int, ...]]


def _check_dims(cls: str, dims_in: Dims, count: int, dims_c: Dims | None) -> list[tuple[int, ...]]:
    dims = [tuple(int(v) for v in d) for d in dims_in]
    if len(dims) != count or any(len(d) != 3 for d in dims):
        raise InputError(f"{cls} takes {count} input(s) of shape (C, H, W), got dims_in={list(dims_in)!r}")
    if dims_c:
        raise InputError(f"{cls} takes no conditions, got dims_c={list(dims_c)!r}")
    return dims


class _WaveletTransform(InvertibleModule):
    """Shared body of the two wavelet modules; ``_down`` says which way is forward."""

    _down: bool

    def __init__(
        self,
        dims_in: Dims,
        dims_c: Dims | None = None,
        wavelet: str = "haar",
        layout: functional.Layout = "subband",
        backend: functional.Backend = "auto",
    ) -> None:
        name = type(self).__name__
        (dims,) = _check_dims(name, dims_in, 1, dims_c)
        functional.validate_wavelet(wavelet)
        one_of("layout", layout, functional.LAYOUTS)
        haar = functional.resolve_backend(wavelet, backend) == "haar"
        super().__init__([dims])
        self.wavelet = wavelet
        self.layout = layout
        self.backend = backend
        self._shape(dims, self._down)
        if haar:
            self._analysis = functools.partial(functional.haar_dwt, layout=layout)
            self._synthesis = functools.partial(functional.haar_idwt, layout=layout)
        else:
            self._analysis = functools.partial(functional.filter_bank_dwt, wavelet=wavelet, layout=layout)
            self._synthesis = functools.partial(functional.filter_bank_idwt, wavelet=wavelet, layout=layout)

    def _shape(self, dims: tuple[int, ...], down: bool) -> tuple[int, int, int]:
        c, h, w = dims
        low = functional.min_wavelet_size(self.wavelet)
        if down:
            if h % 2 or w % 2 or h < low or w < low:
                raise InputError(
                    f"{type(self).__name__}(wavelet={self.wavelet!r}) needs an even height and width "
                    f"of at least {low}, got dims {dims}"
                )
            return (4 * c, h // 2, w // 2)
        if c % 4 or 2 * h < low or 2 * w < low:
            raise InputError(
                f"{type(self).__name__}(wavelet={self.wavelet!r}) needs 4*C channels and subbands of at "
                f"least {low // 2}x{low // 2}, got dims {dims}"
            )
        return (c // 4, 2 * h, 2 * w)

    def forward(
        self, x_or_z: Sequence[Tensor], c: Sequence[Tensor] | None = None, rev: bool = False, jac: bool = True
    ) -> tuple[tuple[Tensor], Tensor | None]:
        (x,) = x_or_z
        y = (self._analysis if self._down != rev else self._synthesis)(x)
        # Orthonormal transform: |det J| = 1.
        return (y,), (x.new_zeros(x.shape[0]) if jac else None)

    def output_dims(self, input_dims: Dims) -> list[tuple[int, ...]]:
        return [self._shape(tuple(input_dims[0]), self._down)]

    def extra_repr(self) -> str:
        return f"wavelet={self.wavelet!r}, layout={self.layout!r}, backend={self.backend!r}"


class WaveletDownsampling(_WaveletTransform):
    """Orthonormal one-level 2-D DWT as an invertible FrEIA module.

    Maps ``(B, C, H, W)`` to ``(B, 4C, H/2, W/2)`` (subband-major, LL first, see
    :mod:`invhide.nn.functional` for the layouts); the log-determinant is zero.
    Its reverse is :class:`WaveletUpsampling`'s forward.

    Args:
        dims_in: ``[(C, H, W)]`` with H and W even (FrEIA passes this).
        dims_c: must be empty.
        wavelet: orthogonal PyWavelets name: ``"haar"`` (default), ``"db2"``,
            ``"sym4"``, ...; periodised, so exactly invertible.
        layout: ``"subband"`` (pytorch-wavelets' order and signs) or
            ``"hinet"`` (the reference HiNet code's ``dwt_init``).
        backend: ``"auto"`` (direct Haar arithmetic for Haar, which is exact
            and several times faster; pytorch-wavelets otherwise), ``"haar"``
            or ``"pytorch_wavelets"``.

    Raises:
        ValueError: odd or too small spatial size, unknown or non-orthogonal
            wavelet, unknown layout.

    Example:
        >>> dwt = WaveletDownsampling([(3, 8, 8)], wavelet="db2")
        >>> x = torch.rand(2, 3, 8, 8)
        >>> (y,), log_det = dwt([x])
        >>> tuple(y.shape), log_det.tolist()
        ((2, 12, 4, 4), [0.0, 0.0])
        >>> (x_back,), _ = dwt([y], rev=True)
        >>> bool(torch.allclose(x_back, x, atol=1e-6))
        True
    """

    _down = True


class WaveletUpsampling(_WaveletTransform):
    """Inverse DWT as an invertible FrEIA module: :class:`WaveletDownsampling` reversed.

    Maps ``(B, 4C, h, w)`` to ``(B, C, 2h, 2w)``; the log-determinant is zero.
    Arguments as for :class:`WaveletDownsampling`, with ``dims_in = [(4C, h, w)]``.

    Example:
        >>> up = WaveletUpsampling([(12, 4, 4)])
        >>> (x,), _ = up([torch.rand(1, 12, 4, 4)])
        >>> tuple(x.shape)
        (1, 3, 8, 8)
    """

    _down = False


class HidingCoupling(InvertibleModule):
    """Two-stream affine coupling of HiNet, equations (1) and (2) of the paper.

    With ``x1`` the cover branch and ``x2`` the secret branch (in any domain,
    usually wavelet subbands)::

        y1 = x1 + phi(x2)
        y2 = x2 * exp(alpha(rho(y1))) + eta(y1)

    and the exact inverse with ``rev=True``. ``alpha`` is a soft clamp into
    ``(-clamp, clamp)`` (see :func:`invhide.nn.functional.soft_clamp`). The
    log-determinant is the per-sample sum of ``alpha(rho(y1))``. The branch
    widths come from ``dims_in``, so the secret branch can carry several
    images (``C2 = k * C1``).

    Args:
        dims_in: ``[(C1, h, w), (C2, h, w)]``: cover and secret branch shapes.
        dims_c: must be empty.
        subnet: subnet constructor ``(c_in, c_out) -> nn.Module`` or a
            registered name (``"dense"``, ``"residual"``, ``"conv"``); see
            :mod:`invhide.nn.subnets`. Built three times: ``phi`` (C2 to C1),
            ``rho`` and ``eta`` (C1 to C2).
        clamp: soft-clamp bound, ``> 0`` (HiNet: 2.0).
        clamp_activation: ``"sigmoid"`` (HiNet), ``"tanh"`` or ``"atan"``.

    Example:
        >>> block = HidingCoupling([(12, 8, 8), (12, 8, 8)], subnet="conv")
        >>> x1, x2 = torch.rand(2, 12, 8, 8), torch.rand(2, 12, 8, 8)
        >>> (y1, y2), log_det = block([x1, x2])
        >>> log_det.shape
        torch.Size([2])
        >>> (z1, z2), inv_log_det = block([y1, y2], rev=True)
        >>> bool(torch.allclose(z1, x1, atol=1e-5) and torch.allclose(z2, x2, atol=1e-5))
        True

    References:
        Jing et al., "HiNet: Deep Image Hiding by Invertible Network", ICCV 2021.
    """

    def __init__(
        self,
        dims_in: Dims,
        dims_c: Dims | None = None,
        subnet: SubnetSpec = "dense",
        clamp: float = 2.0,
        clamp_activation: str = "sigmoid",
    ) -> None:
        cover, secret = _check_dims("HidingCoupling", dims_in, 2, dims_c)
        HidingCoupling.output_dims(self, [cover, secret])
        super().__init__([cover, secret])
        self.clamp = number("clamp", clamp, low=0, low_open=True)
        self.clamp_activation = one_of("clamp_activation", clamp_activation, functional.CLAMP_ACTIVATIONS)
        constructor = resolve(subnet)
        c1, c2 = cover[0], secret[0]
        self.phi = constructor(c2, c1)
        self.rho = constructor(c1, c2)
        self.eta = constructor(c1, c2)

    def forward(
        self, x_or_z: Sequence[Tensor], c: Sequence[Tensor] | None = None, rev: bool = False, jac: bool = True
    ) -> tuple[tuple[Tensor, Tensor], Tensor | None]:
        a, b = x_or_z
        step = functional.coupling_inverse if rev else functional.coupling_forward
        out1, out2, log_det = step(a, b, self.phi, self.rho, self.eta, self.clamp, self.clamp_activation)
        return (out1, out2), (log_det if jac else None)

    def output_dims(self, input_dims: Dims) -> list[tuple[int, ...]]:
        cover, secret = (tuple(d) for d in input_dims)
        if cover[1:] != secret[1:]:
            raise InputError(f"HidingCoupling needs both branches at the same spatial size, got {cover} and {secret}")
        return [cover, secret]

    def extra_repr(self) -> str:
        return f"clamp={self.clamp}, clamp_activation={self.clamp_activation!r}"


class AffineCoupling(HidingCoupling):
    """One-stream version of :class:`HidingCoupling` for general use.

    Splits one input along channels into ``x1 = x[:, :split]`` and
    ``x2 = x[:, split:]``, applies HiNet's coupling equations and concatenates
    the result, so it drops into any FrEIA graph like FrEIA's own couplings.

    Args:
        dims_in: ``[(C, H, W)]`` with ``C >= 2``.
        dims_c: must be empty.
        subnet: subnet constructor or registered name.
        clamp: soft-clamp bound, ``> 0``.
        clamp_activation: ``"sigmoid"``, ``"tanh"`` or ``"atan"``.
        split: channels in the first part, default ``C // 2``.

    Example:
        >>> block = AffineCoupling([(4, 6, 6)], subnet="conv")
        >>> x = torch.rand(3, 4, 6, 6)
        >>> (y,), log_det = block([x])
        >>> (x_back,), _ = block([y], rev=True)
        >>> bool(torch.allclose(x_back, x, atol=1e-5))
        True
    """

    def __init__(
        self,
        dims_in: Dims,
        dims_c: Dims | None = None,
        subnet: SubnetSpec = "dense",
        clamp: float = 2.0,
        clamp_activation: str = "sigmoid",
        split: int | None = None,
    ) -> None:
        ((channels, h, w),) = _check_dims("AffineCoupling", dims_in, 1, dims_c)
        split = integer("split", channels // 2 if split is None else split, low=1, high=channels - 1)
        super().__init__([(split, h, w), (channels - split, h, w)], None, subnet, clamp, clamp_activation)
        self.dims_in = [(channels, h, w)]
        self.split = split

    def forward(  # type: ignore[override]
        self, x_or_z: Sequence[Tensor], c: Sequence[Tensor] | None = None, rev: bool = False, jac: bool = True
    ) -> tuple[tuple[Tensor], Tensor | None]:
        (x,) = x_or_z
        halves = (x[:, : self.split], x[:, self.split :])
        (out1, out2), log_det = super().forward(halves, rev=rev, jac=jac)
        return (torch.cat((out1, out2), dim=1),), log_det

    def output_dims(self, input_dims: Dims) -> list[tuple[int, ...]]:
        (dims,) = input_dims
        if dims[0] != self.dims_in[0][0]:
            raise InputError(f"AffineCoupling expects {self.dims_in[0][0]} channels, got dims {tuple(dims)}")
        return [tuple(dims)]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, split={self.split}"
