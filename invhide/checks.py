"""Shared argument checks: one place for every "must be a positive integer" and "must be a (B, C, H, W) tensor".

Each check returns the value it accepted (normalised where that helps, e.g.
an ``int`` as a ``float``) and raises an :class:`~invhide.errors.InputError`
(a ``ValueError``) or :class:`~invhide.errors.InputTypeError` (a
``TypeError``) whose message names the argument, says what was expected and
shows what was received.

Example:
    >>> positive_int("num_blocks", 16)
    16
    >>> positive_int("num_blocks", 0)
    Traceback (most recent call last):
    ...
    invhide.errors.InputError: num_blocks must be a positive integer, got 0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

import torch
from torch import Tensor

from invhide.errors import ConfigError, InputError, InputTypeError, describe

__all__ = [
    "build_from_config",
    "device",
    "image_batch",
    "integer",
    "non_negative_int",
    "number",
    "one_of",
    "positive_int",
    "tensor",
]

T = TypeVar("T")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(name: str, value: object, *, low: int | None = None, high: int | None = None, what: str = "") -> int:
    """``value`` as an ``int`` if it is an integer (not a ``bool``) in ``[low, high]``.

    Args:
        name: the argument's name, as the caller knows it.
        value: what was given.
        low: smallest allowed value (``None``: no bound).
        high: largest allowed value (``None``: no bound).
        what: how to describe the expectation, e.g. ``"a positive integer"``
            (default: derived from the bounds).

    Example:
        >>> integer("tile", 512, low=2, high=1 << 15)
        512
    """
    if not what:
        what = "an integer"
        if low is not None and high is not None:
            what = f"an integer in [{low}, {high}]"
        elif low is not None:
            what = f"an integer >= {low}"
        elif high is not None:
            what = f"an integer <= {high}"
    if not _is_int(value) or (low is not None and value < low) or (high is not None and value > high):  # type: ignore[operator]
        raise InputError(argument=name, problem=f"must be {what}, got {value!r}")
    return int(value)  # type: ignore[arg-type]


def positive_int(name: str, value: object, *, high: int | None = None) -> int:
    """``value`` if it is a positive ``int`` (not a ``bool``) and at most ``high``.

    Example:
        >>> positive_int("depth", 3)
        3
    """
    what = "a positive integer" if high is None else f"a positive integer of at most {high}"
    return integer(name, value, low=1, high=high, what=what)


def non_negative_int(name: str, value: object) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) ``>= 0``.

    Example:
        >>> non_negative_int("warmup_steps", 0)
        0
    """
    return integer(name, value, low=0, what="a non-negative integer")


def number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a ``float`` if it is a finite real number (not a ``bool``) within the bounds.

    Args:
        name: the argument's name.
        value: what was given.
        low: lower bound (``None``: none).
        high: upper bound (``None``: none).
        low_open: exclude ``low`` itself.
        high_open: exclude ``high`` itself.

    Example:
        >>> number("clamp", 2, low=0, low_open=True)
        2.0
        >>> number("negative_slope", 1.0, low=0, high=1, high_open=True)
        Traceback (most recent call last):
        ...
        invhide.errors.InputError: negative_slope must be a finite number in [0, 1), got 1.0
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        below = low is not None and (value < low or (low_open and value == low))  # type: ignore[operator]
        above = high is not None and (value > high or (high_open and value == high))  # type: ignore[operator]
        ok = not (below or above)
    if not ok:
        if low is not None and high is not None:
            bounds = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            bounds = f" {'>' if low_open else '>='} {low:g}"
        elif high is not None:
            bounds = f" {'<' if high_open else '<='} {high:g}"
        else:
            bounds = ""
        raise InputError(argument=name, problem=f"must be a finite number{bounds}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def one_of(name: str, value: object, choices: Collection[T]) -> T:
    """``value`` if it is one of ``choices``.

    Example:
        >>> one_of("layout", "hinet", ("subband", "hinet"))
        'hinet'
    """
    try:
        found = value in choices
    except TypeError:  # an unhashable value against a set
        found = False
    if not found:
        raise InputError(argument=name, problem=f"must be one of {tuple(choices)}, got {value!r}")
    return value  # type: ignore[return-value]


def tensor(name: str, value: object, *, dims: int | None = None, floating: bool = True) -> Tensor:
    """``value`` if it is a ``torch.Tensor`` with ``dims`` dimensions and, if ``floating``, a float dtype.

    Example:
        >>> import torch
        >>> tensor("x", torch.zeros(2, 3)).shape
        torch.Size([2, 3])
        >>> tensor("x", torch.zeros(2, dtype=torch.int64))
        Traceback (most recent call last):
        ...
        invhide.errors.InputTypeError: x must be a floating-point tensor, got dtype torch.int64
    """
    if not isinstance(value, Tensor):
        raise InputTypeError(argument=name, problem=f"must be a torch.Tensor, got {type(value).__name__}")
    if dims is not None and value.dim() != dims:
        raise InputError(argument=name, problem=f"must have {dims} dimensions, got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise InputTypeError(argument=name, problem=f"must be a floating-point tensor, got dtype {value.dtype}")
    return value


def image_batch(
    name: str,
    value: object,
    *,
    channels: int | None = None,
    even: bool = False,
    min_size: int = 1,
    finite: bool = False,
) -> Tensor:
    """``value`` if it is a float ``(B, C, H, W)`` tensor (``C == channels`` when given).

    Args:
        name: the argument's name.
        value: what was given.
        channels: the required ``C`` (``None``: any).
        even: also require an even height and width.
        min_size: the smallest height and width allowed.
        finite: also refuse NaN and infinite values (one pass over the data,
            and on an accelerator one wait for it: off unless asked for).

    Example:
        >>> import torch
        >>> image_batch("cover", torch.zeros(1, 3, 8, 8), channels=3, even=True).shape
        torch.Size([1, 3, 8, 8])
        >>> image_batch("cover", torch.zeros(3, 8, 8))
        Traceback (most recent call last):
        ...
        invhide.errors.InputError: cover must have shape (B, C, H, W), got shape (3, 8, 8)
        >>> image_batch("cover", torch.zeros(1, 3, 7, 8), even=True, min_size=2)
        Traceback (most recent call last):
        ...
        invhide.errors.InputError: cover must have an even height and width of at least 2, got 7x8
    """
    if not isinstance(value, Tensor):
        raise InputTypeError(argument=name, problem=f"must be a torch.Tensor, got {type(value).__name__}")
    shape = "(B, C, H, W)" if channels is None else f"(B, {channels}, H, W)"
    if value.dim() != 4 or (channels is not None and value.shape[1] != channels):
        raise InputError(argument=name, problem=f"must have shape {shape}, got shape {tuple(value.shape)}")
    if not value.is_floating_point():
        raise InputTypeError(argument=name, problem=f"must be a floating-point tensor, got dtype {value.dtype}")
    h, w = value.shape[-2:]
    if (even and (h % 2 or w % 2)) or h < min_size or w < min_size:
        what = "an even height and width" if even else "a height and width"
        raise InputError(argument=name, problem=f"must have {what} of at least {min_size}, got {h}x{w}")
    if finite and value.numel():
        bad = int((~value.isfinite()).sum())
        if bad:
            raise InputError(
                argument=name,
                problem=f"holds {bad} NaN or infinite value(s) among {value.numel()}; expected finite values",
            )
    return value


def build_from_config(cls: type[T], config: Mapping[str, Any], **extra: Any) -> T:
    """``cls(**config, **extra)`` for a config written by ``cls.config()``, with clear errors.

    The optional ``"class"`` key must name ``cls``; unknown keys and bad
    values become a :class:`~invhide.errors.ConfigError` naming the config.

    Example:
        >>> build_from_config(dict, {"class": "dict", "a": 1})
        {'a': 1}
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"a {cls.__name__} config must be a JSON object, got {type(config).__name__}")
    options = dict(config)
    name = options.pop("class", cls.__name__)
    if name != cls.__name__:
        raise ConfigError(f"config describes a {name}, not a {cls.__name__}")
    try:
        return cls(**options, **extra)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid {cls.__name__} config {options!r}: {error}") from error


def device(name: str, value: object) -> torch.device:
    """``value`` as a ``torch.device`` that this PyTorch build and machine can run on.

    A string must parse as a device (``"cpu"``, ``"cuda"``, ``"cuda:1"``,
    ``"mps"``...); a CUDA index must exist; any other accelerator is tried
    with a one-element tensor and a random generator, so a device type this
    build lacks (``mps`` or ``xpu`` on a CUDA or CPU build, ``meta``) is
    refused here rather than deep inside a computation.

    Args:
        name: the argument's name, e.g. ``"device"`` or ``"--device"``.
        value: a ``torch.device`` or a device string.

    Example:
        >>> device("device", "cpu")
        device(type='cpu')
        >>> device("device", "gpu")
        Traceback (most recent call last):
        ...
        invhide.errors.InputError: device must name a device such as 'cpu', 'cuda', 'cuda:1' or 'mps', got 'gpu'
    """
    if isinstance(value, torch.device):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = torch.device(value)
        except RuntimeError:
            raise InputError(
                f"{name} must name a device such as 'cpu', 'cuda', 'cuda:1' or 'mps', got {value!r}"
            ) from None
    else:
        raise InputTypeError(f"{name} must be a torch.device or a device name such as 'cuda', got {value!r}")
    if parsed.type == "cpu":
        return parsed
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            why = "no CUDA GPU is visible" if torch.backends.cuda.is_built() else "this PyTorch build has no CUDA"
            raise InputError(f"{name} must be a device this machine has, got {str(value)!r}: {why}")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise InputError(
                f"{name} must be a device this machine has, got {str(value)!r}: "
                f"it has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(
            f"{name} must be a device this machine has, got {str(value)!r}: MPS needs macOS on Apple silicon "
            f"and a PyTorch build with MPS"
        )
    try:
        torch.empty(1, device=parsed)
        torch.Generator(parsed)
    except Exception as error:  # a backend this build lacks raises almost anything (Assertion, NotImplemented...)
        first = describe(error).split(". ")[0][:160]
        raise InputError(
            f"{name} must be a device this PyTorch build and machine can use, got {str(value)!r}: {first}"
        ) from None
    return parsed
