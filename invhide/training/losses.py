"""Hiding losses as composable modules.

HiNet trains with three terms (paper, section 3.4):

* the concealing loss ``L_con``: stego image against cover,
* the revealing loss ``L_rev``: recovered secret against secret,
* the low-frequency wavelet loss ``L_freq``: the LL subbands of stego and
  cover, so that the secret hides in the high frequencies,

summed with weights ``lambda_c``, ``lambda_r`` and ``lambda_f``. A fourth
term, :class:`ChromaLoss`, is not HiNet's: it charges the stego's change
of colour (JPEG's Cb and Cr), which a JPEG mostly discards, so that a model
trained through a JPEG channel hides more in luminance (it does; what that
bought is measured in its docstring). Each term is
an ``nn.Module`` whose ``forward`` takes keyword tensors from a shared batch
dictionary (``cover``, ``secret``, ``stego``, ``recovered``, ``lost``) and
ignores those it does not use, so one call feeds every term::

    loss = HidingLoss.paper()
    out = loss(cover=cover, secret=secret, stego=stego, recovered=recovered)
    out.total.backward()
    log(out.terms)  # each term, unweighted

A custom term is any ``nn.Module`` with such a ``forward`` returning a scalar,
for example ``forward(self, *, lost, **_)``; add it with
:meth:`HidingLoss.with_term`.

The pure math is in :func:`distance` and :func:`low_frequency_distance`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from invhide.checks import build_from_config, number, one_of, tensor
from invhide.errors import ConfigError, InputError, InputTypeError
from invhide.nn import functional

__all__ = [
    "KINDS",
    "REDUCTIONS",
    "ChromaLoss",
    "ConcealingLoss",
    "HidingLoss",
    "LossOutput",
    "LowFrequencyWaveletLoss",
    "RevealingLoss",
    "distance",
    "low_frequency_distance",
]

Kind = Literal["l1", "l2"]
Reduction = Literal["sum", "mean"]
KINDS: tuple[str, ...] = ("l1", "l2")
"""Distances of :func:`distance`: ``"l1"`` (absolute error) and ``"l2"`` (squared error)."""
REDUCTIONS: tuple[str, ...] = ("sum", "mean")
"""Reductions of :func:`distance` over all elements: ``"sum"`` (the reference code's) and ``"mean"``."""


# --------------------------------------------------------------------------
# Pure math
# --------------------------------------------------------------------------


def _check_pair(x: object, y: object, names: tuple[str, str] = ("x", "y")) -> None:
    """Refuse anything but two floating-point tensors of one shape (the math below trusts its callers)."""
    first, second = tensor(names[0], x), tensor(names[1], y)
    if first.shape != second.shape:
        raise InputError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(first.shape)} and {tuple(second.shape)}"
        )


def _distance(x: Tensor, y: Tensor, kind: str, reduction: str) -> Tensor:
    error = (x - y).square() if kind == "l2" else (x - y).abs()
    return error.sum() if reduction == "sum" else error.mean()


def _low_frequency_distance(x: Tensor, y: Tensor, wavelet: str, kind: str, reduction: str) -> Tensor:
    low_x = functional.dwt(x, wavelet)[:, : x.shape[1]]  # dwt refuses an odd or too small image
    low_y = functional.dwt(y, wavelet)[:, : y.shape[1]]
    return _distance(low_x, low_y, kind, reduction)


def distance(x: Tensor, y: Tensor, kind: Kind = "l2", reduction: Reduction = "sum") -> Tensor:
    """Elementwise distance between two tensors, reduced over every element.

    Args:
        x: any shape, floating point.
        y: the same shape as ``x``.
        kind: ``"l1"`` (absolute error) or ``"l2"`` (squared error, as in MSE).
        reduction: ``"sum"`` or ``"mean"`` over all elements, batch included.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: shapes differ, or an unknown ``kind`` or ``reduction``.
        TypeError: a non-tensor or non-float input.

    Example:
        >>> x, y = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])
        >>> distance(x, y).item(), distance(x, y, "l1", "mean").item()
        (5.0, 1.5)
    """
    _check_pair(x, y)
    return _distance(x, y, one_of("kind", kind, KINDS), one_of("reduction", reduction, REDUCTIONS))


def low_frequency_distance(
    x: Tensor, y: Tensor, wavelet: str = "haar", kind: Kind = "l2", reduction: Reduction = "sum"
) -> Tensor:
    """:func:`distance` between the low-pass (LL) wavelet subbands of two images.

    The LL band is channels ``[0:C]`` of :func:`invhide.nn.functional.dwt`, the
    same in both layouts; for Haar it is ``(a + b + c + d) / 2`` over each
    2x2 block.

    Args:
        x: ``(B, C, H, W)``, H and W even and at least
            :func:`~invhide.nn.functional.min_wavelet_size`.
        y: the same shape as ``x``.
        wavelet: an orthogonal wavelet name.
        kind: ``"l1"`` or ``"l2"``.
        reduction: ``"sum"`` or ``"mean"`` over the ``(B, C, H/2, W/2)`` LL elements.

    Returns:
        A scalar tensor.

    Example:
        >>> x = torch.zeros(1, 1, 2, 2)
        >>> low_frequency_distance(x + 1, x).item()  # LL = (1 + 1 + 1 + 1) / 2 = 2
        4.0
        >>> checkerboard = torch.tensor([[[[1.0, -1.0], [-1.0, 1.0]]]])
        >>> low_frequency_distance(checkerboard, x).item()
        0.0
    """
    _check_pair(x, y)
    return _low_frequency_distance(
        x, y, wavelet, one_of("kind", kind, KINDS), one_of("reduction", reduction, REDUCTIONS)
    )


# --------------------------------------------------------------------------
# Loss terms
# --------------------------------------------------------------------------


def _take(tensors: Mapping[str, Any], names: tuple[str, ...], owner: str) -> list[Tensor]:
    missing = [name for name in names if name not in tensors]
    if missing:
        raise InputTypeError(
            f"{owner} needs the keyword tensor(s) {missing}; got keywords {sorted(tensors)} "
            f"(expected among cover, secret, stego, recovered, lost)"
        )
    return [tensors[name] for name in names]


class _PairLoss(nn.Module):
    """A :func:`distance` between two keyword tensors of the batch dictionary."""

    prediction: ClassVar[str]
    target: ClassVar[str]

    def __init__(self, kind: Kind = "l2", reduction: Reduction = "sum") -> None:
        super().__init__()
        self.kind = one_of("kind", kind, KINDS)
        self.reduction = one_of("reduction", reduction, REDUCTIONS)

    def _compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        return _distance(prediction, target, self.kind, self.reduction)

    def forward(self, **tensors: Tensor) -> Tensor:
        """Compute the loss from keyword tensors, ignoring those it does not use.

        Returns:
            A scalar tensor.

        Raises:
            TypeError: a required keyword is missing, or a non-float tensor.
            ValueError: the two tensors have different shapes.
        """
        prediction, target = _take(tensors, (self.prediction, self.target), type(self).__name__)
        _check_pair(prediction, target, (self.prediction, self.target))
        return self._compute(prediction, target)

    def config(self) -> dict[str, Any]:
        """A JSON-ready description from which :meth:`from_config` rebuilds this term."""
        return {"class": type(self).__name__, "kind": self.kind, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> _PairLoss:
        """Rebuild a term from :meth:`config`'s output.

        Raises:
            ValueError: the config names another class or has unknown keys.
        """
        return build_from_config(cls, config)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, reduction={self.reduction!r}"


class ConcealingLoss(_PairLoss):
    """Concealing loss ``L_con``: the stego image against the cover.

    Uses the keywords ``stego`` and ``cover``, both ``(B, C, H, W)``.

    Args:
        kind: ``"l1"`` or ``"l2"`` (squared error, HiNet's).
        reduction: ``"sum"`` (HiNet's) or ``"mean"`` over all elements.

    References:
        Jing et al., "HiNet: Deep Image Hiding by Invertible Network", ICCV
        2021, equation (6).

    Example:
        >>> cover = torch.zeros(1, 1, 2, 2)
        >>> stego = torch.tensor([[[[1.0, 2.0], [0.0, 0.0]]]])
        >>> ConcealingLoss()(cover=cover, stego=stego, secret=cover).item()  # 1^2 + 2^2
        5.0
    """

    prediction = "stego"
    target = "cover"


class RevealingLoss(_PairLoss):
    """Revealing loss ``L_rev``: the recovered secret against the secret.

    Uses the keywords ``recovered`` and ``secret``, both ``(B, kC, H, W)``
    (several secrets concatenated along channels).

    Args:
        kind: ``"l1"`` or ``"l2"`` (squared error, HiNet's).
        reduction: ``"sum"`` (HiNet's) or ``"mean"`` over all elements.

    References:
        Jing et al., "HiNet: Deep Image Hiding by Invertible Network", ICCV
        2021, equation (7).

    Example:
        >>> secret = torch.ones(1, 1, 2, 2)
        >>> recovered = torch.tensor([[[[1.0, 0.0], [1.0, 3.0]]]])
        >>> RevealingLoss(kind="l1", reduction="mean")(secret=secret, recovered=recovered).item()  # (0+1+0+2)/4
        0.75
    """

    prediction = "recovered"
    target = "secret"


class LowFrequencyWaveletLoss(_PairLoss):
    """Low-frequency wavelet loss ``L_freq``: LL subbands of stego and cover.

    Uses the keywords ``stego`` and ``cover``, both ``(B, C, H, W)`` with H
    and W even and at least :func:`~invhide.nn.functional.min_wavelet_size`.
    Differences that live only in the detail bands (a checkerboard, say) cost
    nothing, which pushes the hidden information into the high frequencies.

    Args:
        wavelet: an orthogonal wavelet name (HiNet: ``"haar"``).
        kind: ``"l1"`` or ``"l2"`` (squared error, HiNet's).
        reduction: ``"sum"`` (HiNet's) or ``"mean"`` over all LL elements.

    Raises:
        ValueError: unknown or non-orthogonal wavelet, unknown kind or reduction.

    References:
        Jing et al., "HiNet: Deep Image Hiding by Invertible Network", ICCV
        2021, equation (8).

    Example:
        >>> cover = torch.zeros(1, 1, 2, 2)
        >>> stego = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        >>> LowFrequencyWaveletLoss()(cover=cover, stego=stego).item()  # LL = (1+2+3+4)/2 = 5
        25.0
    """

    prediction = "stego"
    target = "cover"

    def __init__(self, wavelet: str = "haar", kind: Kind = "l2", reduction: Reduction = "sum") -> None:
        super().__init__(kind, reduction)
        functional.validate_wavelet(wavelet)
        self.wavelet = wavelet

    def _compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        return _low_frequency_distance(prediction, target, self.wavelet, self.kind, self.reduction)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "wavelet": self.wavelet}

    def extra_repr(self) -> str:
        return f"wavelet={self.wavelet!r}, {super().extra_repr()}"


_CHROMA = (  # JPEG's Cb and Cr rows of RGB -> YCbCr (ITU-T T.871), without the offsets, which cancel
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)


class ChromaLoss(_PairLoss):
    """Chroma loss: the colour (JPEG's Cb and Cr) of the stego against the cover's.

    Uses the keywords ``stego`` and ``cover``, both ``(B, 3, H, W)`` RGB
    batches.
    A JPEG keeps little of an image's colour detail: it halves the
    resolution of Cb and Cr (4:2:0) and quantises them more coarsely than
    luminance, so whatever a hider puts into the stego's colour mostly does
    not survive the codec (``benchmarks/hidden_signal.py`` measures this for
    a model). Added with a weight beside :class:`ConcealingLoss`, which
    charges every RGB change alike, it makes a colour change cost more than
    the same change in luminance, pushing the hidden information to where a
    JPEG keeps it. Not a HiNet term. Measured (Robustness page): at weight 20
    beside concealing 10, 3,000 steps on the robust model moved the colour
    share of its hidden signal from 46% to 31%, yet bought only 0.1 dB of
    the secret after a JPEG of quality 90, for 1.4 dB of the lossless one.

    Args:
        kind: ``"l1"`` or ``"l2"`` (squared error).
        reduction: ``"sum"`` or ``"mean"`` over the ``2 * B * H * W`` chroma
            elements.

    Raises:
        invhide.errors.InputError: (when called) anything but ``(B, 3, H, W)``
            batches.

    Example:
        >>> cover = torch.zeros(1, 3, 2, 2)
        >>> grey = cover + 0.1  # the same change in R, G and B: no colour
        >>> ChromaLoss()(cover=cover, stego=grey).item() < 1e-12
        True
        >>> blue = torch.zeros(1, 3, 2, 2); blue[:, 2] = 0.1  # blue only: a colour change
        >>> ChromaLoss()(cover=cover, stego=blue).item() > 0
        True
    """

    prediction = "stego"
    target = "cover"

    def _compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.dim() != 4 or prediction.shape[1] != 3:
            raise InputError(
                f"ChromaLoss needs RGB image batches (B, 3, H, W), got stego and cover of shape "
                f"{tuple(prediction.shape)}"
            )
        rows = prediction.new_tensor(_CHROMA)
        chroma = torch.einsum("ij,bjhw->bihw", rows, prediction - target)
        return _distance(chroma, chroma.new_zeros(()).expand_as(chroma), self.kind, self.reduction)


_SHIPPED_TERMS: dict[str, type[_PairLoss]] = {
    cls.__name__: cls for cls in (ConcealingLoss, RevealingLoss, LowFrequencyWaveletLoss, ChromaLoss)
}


# --------------------------------------------------------------------------
# Weighted sum
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LossOutput:
    """What :class:`HidingLoss` returns.

    Attributes:
        total: the weighted sum, a scalar tensor to call ``backward()`` on.
        terms: each term's unweighted value by name, scalar tensors.
    """

    total: Tensor
    terms: dict[str, Tensor]

    def to_floats(self) -> dict[str, float]:
        """``{"total": ..., **terms}`` as Python floats, for logging (synchronises with the device).

        Example:
            >>> out = LossOutput(torch.tensor(3.0), {"a": torch.tensor(1.0)})
            >>> out.to_floats()
            {'total': 3.0, 'a': 1.0}
        """
        return {"total": self.total.item(), **{name: value.item() for name, value in self.terms.items()}}


def _checked_term(name: object, term: object) -> tuple[float, nn.Module]:
    """A ``(weight, module)`` term of :class:`HidingLoss`, its weight as a ``float``."""
    if not isinstance(name, str) or not name or "." in name:
        raise InputError(f"term names must be non-empty strings without dots, got {name!r}")
    if not isinstance(term, tuple) or len(term) != 2:
        raise InputTypeError(f"term {name!r} must be a (weight, module) pair, got {term!r}")
    weight, module = term
    if not isinstance(module, nn.Module):
        raise InputTypeError(f"term {name!r} must be an nn.Module, got {type(module).__name__}")
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
        raise InputTypeError(f"the weight of term {name!r} must be a real number, got {type(weight).__name__}")
    return number(f"the weight of term {name!r}", weight, low=0), module


class HidingLoss(nn.Module):
    """Weighted sum of named loss terms that reports each term.

    Every term receives all keyword tensors given to :meth:`forward` and
    uses those it needs. A term of weight 0 is still computed and reported
    but left out of the total (so a term can be logged without training on
    it, and a non-finite value of it cannot spoil the total); if every
    weight is 0 the total is a constant zero. The loss is immutable: :meth:`with_term` returns a new one, which
    shares the term modules with this one.

    Args:
        terms: ``{name: (weight, module)}``; names are non-empty strings
            without dots, weights finite and ``>= 0``, modules ``nn.Module``
            instances whose ``forward(**tensors)`` returns a scalar tensor.

    Raises:
        ValueError: no terms, a bad name or a negative or non-finite weight.
        TypeError: a term that is not a ``(weight, nn.Module)`` pair.

    Example:
        >>> loss = HidingLoss.paper()
        >>> loss.weights
        {'concealing': 10.0, 'revealing': 1.0, 'low_frequency': 10.0}
        >>> cover, secret = torch.zeros(2, 1, 3, 4, 4)
        >>> out = loss(cover=cover, secret=secret, stego=cover + 0.1, recovered=secret)
        >>> sorted(out.terms), round(out.total.item(), 4)  # 10 * 0.48 + 1 * 0 + 10 * 0.48
        (['concealing', 'low_frequency', 'revealing'], 9.6)
    """

    def __init__(self, terms: Mapping[str, tuple[float, nn.Module]]) -> None:
        super().__init__()
        if not isinstance(terms, Mapping):
            raise InputTypeError(f"terms must be a mapping {{name: (weight, module)}}, got {type(terms).__name__}")
        if not terms:
            raise InputError("a HidingLoss needs at least one term, got none")
        checked = {name: _checked_term(name, term) for name, term in terms.items()}
        self._weights = {name: weight for name, (weight, _) in checked.items()}
        self.terms = nn.ModuleDict({name: module for name, (_, module) in checked.items()})

    @property
    def weights(self) -> dict[str, float]:
        """Each term's weight by name (a copy)."""
        return dict(self._weights)

    def forward(self, **tensors: Tensor) -> LossOutput:
        """Evaluate every term on the keyword tensors and sum them with their weights.

        Args:
            **tensors: any of ``cover``, ``secret``, ``stego``, ``recovered``,
                ``lost`` (and whatever custom terms need).

        Returns:
            A :class:`LossOutput` with the total and each unweighted term.

        Raises:
            TypeError: a term's keyword is missing.
            ValueError: a term returned something other than a scalar tensor.
        """
        values: dict[str, Tensor] = {}
        total: Tensor | None = None
        for name, module in self.terms.items():
            value = module(**tensors)
            if not isinstance(value, Tensor) or value.dim() != 0:
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise InputError(f"term {name!r} must return a scalar tensor, got {shape}")
            values[name] = value
            weight = self._weights[name]
            if weight > 0:
                total = weight * value if total is None else total + weight * value
        if total is None:  # every weight is zero: a constant zero, with nothing to back-propagate
            total = next(iter(values.values())).new_zeros(())
        return LossOutput(total=total, terms=values)

    def with_term(self, name: str, weight: float, module: nn.Module) -> HidingLoss:
        """A new loss with one more term.

        Raises:
            ValueError: a term of that name exists already.

        Example:
            >>> class LostNorm(torch.nn.Module):
            ...     def forward(self, *, lost, **_):
            ...         return lost.square().mean()
            >>> loss = HidingLoss.paper().with_term("lost_norm", 0.1, LostNorm())
            >>> list(loss.weights)
            ['concealing', 'revealing', 'low_frequency', 'lost_norm']
        """
        if name in self._weights:
            raise InputError(f"this loss already has a term named {name!r}; terms: {list(self._weights)}")
        terms = {key: (self._weights[key], self.terms[key]) for key in self._weights}
        return HidingLoss({**terms, name: (weight, module)})

    def with_weights(self, weights: Mapping[str, float]) -> HidingLoss:
        """A new loss with some term weights changed; the term modules are shared with this one.

        Raises:
            ValueError: a name that is not a term of this loss, or a bad weight.

        Example:
            >>> HidingLoss.paper().with_weights({"low_frequency": 0.0}).weights
            {'concealing': 10.0, 'revealing': 1.0, 'low_frequency': 0.0}
        """
        unknown = sorted(set(weights) - set(self._weights))
        if unknown:
            raise InputError(f"this loss has no term(s) {unknown}; terms: {list(self._weights)}")
        return HidingLoss({key: (weights.get(key, value), self.terms[key]) for key, value in self._weights.items()})

    # ------------------------------------------------------------------
    # The paper's and the reference code's losses
    # ------------------------------------------------------------------

    @classmethod
    def paper(cls, *, reduction: Reduction = "sum") -> HidingLoss:
        """HiNet as published: ``lambda_c = 10``, ``lambda_r = 1``, ``lambda_f = 10``.

        All terms squared error (``"l2"``), Haar LL band for the low-frequency
        term.

        Args:
            reduction: ``"sum"`` (the reference code's) or ``"mean"``.

        References:
            Jing et al., "HiNet: Deep Image Hiding by Invertible Network",
            ICCV 2021, equation (9) and section 4.1.
        """
        return cls._hinet(10.0, 1.0, 10.0, reduction)

    @classmethod
    def reference_code(cls, *, reduction: Reduction = "sum") -> HidingLoss:
        """The official HiNet code's weights: guide 1, reconstruction 5, low-frequency 1.

        ``"guide"`` is the concealing term and ``"reconstruction"`` the
        revealing term; all squared error (``"l2"``).

        Args:
            reduction: ``"sum"`` (the reference code's) or ``"mean"``.

        Example:
            >>> HidingLoss.reference_code().weights
            {'concealing': 1.0, 'revealing': 5.0, 'low_frequency': 1.0}
        """
        return cls._hinet(1.0, 5.0, 1.0, reduction)

    @classmethod
    def _hinet(cls, concealing: float, revealing: float, low_frequency: float, reduction: Reduction) -> HidingLoss:
        return cls(
            {
                "concealing": (concealing, ConcealingLoss(reduction=reduction)),
                "revealing": (revealing, RevealingLoss(reduction=reduction)),
                "low_frequency": (low_frequency, LowFrequencyWaveletLoss(reduction=reduction)),
            }
        )

    # ------------------------------------------------------------------
    # Configuration
    # ------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """A JSON-ready description from which :meth:`from_config` rebuilds this loss.

        Raises:
            TypeError: a custom term, which cannot be described (only
                ``ConcealingLoss``, ``RevealingLoss`` and
                ``LowFrequencyWaveletLoss`` can).

        Example:
            >>> HidingLoss.reference_code().config()["terms"]["revealing"]
            {'weight': 5.0, 'loss': {'class': 'RevealingLoss', 'kind': 'l2', 'reduction': 'sum'}}
        """
        terms: dict[str, Any] = {}
        for name, module in self.terms.items():
            if _SHIPPED_TERMS.get(type(module).__name__) is not type(module):
                raise InputTypeError(
                    f"cannot describe the custom term {name!r} ({type(module).__name__}) in a config; "
                    f"only {', '.join(_SHIPPED_TERMS)} can be described"
                )
            terms[name] = {"weight": self._weights[name], "loss": module.config()}
        return {"class": type(self).__name__, "terms": terms}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HidingLoss:
        """Rebuild a loss from :meth:`config`'s output.

        Raises:
            ValueError: the config names another class, has unknown keys or
                an unknown term class.
        """
        if isinstance(config, Mapping) and isinstance(config.get("terms"), Mapping):
            terms = {name: _term_from_config(name, term) for name, term in config["terms"].items()}
            config = {**config, "terms": terms}
        return build_from_config(cls, config)

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={weight:g}" for name, weight in self._weights.items())


def _term_from_config(name: str, term: object) -> tuple[float, nn.Module]:
    """One ``{"weight": ..., "loss": {...}}`` entry of :meth:`HidingLoss.config`, rebuilt."""
    if not isinstance(term, Mapping) or set(term) != {"weight", "loss"} or not isinstance(term["loss"], Mapping):
        raise ConfigError(f"term {name!r} must be {{'weight': ..., 'loss': {{...}}}}, got {term!r}")
    term_class = _SHIPPED_TERMS.get(term["loss"].get("class"))
    if term_class is None:
        raise ConfigError(
            f"term {name!r} has unknown class {term['loss'].get('class')!r}; expected one of {list(_SHIPPED_TERMS)}"
        )
    return term["weight"], build_from_config(term_class, term["loss"])
