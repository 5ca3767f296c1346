"""Invertibility assertions for people writing their own invertible modules.

A module that plugs into an invhide hider (or any FrEIA graph) promises four
things: ``reverse(forward(x)) == x`` up to float rounding, a per-sample
log-determinant of shape ``(B,)`` whose reverse is its negative, finite
outputs of the right shapes, and inputs left untouched. The functions here
check those promises and fail with an ``AssertionError`` that names the
output that broke one and by how much, so they drop into ``pytest`` (or
``unittest``) as they are. invhide's own tests use them on every module it
ships.

- :func:`assert_invertible`: round trip, log-det cancellation, finiteness,
  shapes, no in-place change; returns an :class:`InvertibilityReport`. It
  runs ``module(inputs, jac=True)`` and ``module(outputs, rev=True,
  jac=True)`` without gradients and asserts, in this order:

  1. neither direction changes its input tensors in place;
  2. every output is a finite tensor with the inputs' batch size, and, for
     a single FrEIA ``InvertibleModule``, of the shape its ``output_dims``
     announces;
  3. the forward outputs do not depend on ``jac`` (``jac=False`` gives the
     same tensors, up to ``atol``);
  4. the reverse returns one tensor per input, each of its input's shape,
     within ``atol`` of it (maximum absolute difference);
  5. with ``check_log_det``: both log-dets are finite per-sample tensors of
     shape ``(B,)`` on the inputs' dtype and device, and
     ``|log_det_forward + log_det_reverse| <= rtol * (1 + max |log_det_forward|)``.

  Default ``(atol, rtol)`` by the inputs' dtype: float64 ``(1e-10, 1e-10)``,
  float32 ``(1e-4, 1e-5)``, float16 ``(1e-2, 1e-2)``, bfloat16 ``(1e-1, 1e-2)``.
- :func:`assert_log_det_matches_jacobian`: the log-det against the
  brute-force autograd Jacobian (tiny inputs only).
- :func:`randomize_`: move the weights away from the identity
  initialisation first, or the tests prove nothing.

Anything that follows FrEIA's calling convention works:
``module(xs, rev=False, jac=True) -> (outputs, log_det)`` with ``xs`` a list
of ``(B, ...)`` tensors. That covers ``FrEIA.modules.InvertibleModule``
subclasses, ``GraphINN``, :class:`~invhide.nn.graph.InvertibleGraph` and
:class:`~invhide.models.hider.InvertibleHider`.

Example:
    >>> from invhide.nn.modules import AffineCoupling
    >>> from invhide.testing import assert_invertible, randomize_
    >>> block = randomize_(AffineCoupling([(4, 8, 8)], subnet="conv"), seed=0)
    >>> report = assert_invertible(block, [torch.rand(2, 4, 8, 8)])
    >>> report.round_trip_error < 1e-4
    True

References:
    C. Durkan, A. Bekasov, I. Murray, G. Papamakarios, "nflows: normalizing
    flows in PyTorch", 2020 (its ``TransformTest`` ships the same kind of
    assertions for people writing transforms).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from FrEIA.framework import GraphINN
from FrEIA.modules import InvertibleModule
from torch import Tensor, nn

from invhide.checks import integer, number, tensor
from invhide.errors import InputError, InputTypeError

__all__ = ["InvertibilityReport", "assert_invertible", "assert_log_det_matches_jacobian", "randomize_"]

_TOLERANCES = {  # (atol, rtol) by dtype, as the module's docstring lists them
    torch.float64: (1e-10, 1e-10),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (1e-1, 1e-2),
}


@dataclass(frozen=True)
class InvertibilityReport:
    """What :func:`assert_invertible` measured on a module that passed.

    Attributes:
        round_trip_errors: for each input ``i``, the largest absolute
            difference between ``inputs[i]`` and the ``i``-th tensor of
            ``reverse(forward(inputs))``.
        log_det_error: the largest ``|log_det_forward + log_det_reverse|``
            over the batch, or ``None`` when the log-det was not checked.
        log_det: the forward per-sample log-determinant, shape ``(B,)``, or
            ``None`` when it was not checked.
        output_shapes: the shape of each forward output.
    """

    round_trip_errors: tuple[float, ...]
    log_det_error: float | None
    log_det: Tensor | None
    output_shapes: tuple[torch.Size, ...]

    @property
    def round_trip_error(self) -> float:
        """The largest round-trip error over all inputs."""
        return max(self.round_trip_errors)


def randomize_(module: nn.Module, seed: int, gain: float = 0.1) -> nn.Module:
    """Move every parameter away from the identity initialisation, in place.

    A freshly built coupling is often the identity (HiNet's subnets end in a
    zero-initialised convolution), and an invertibility test on the identity
    proves nothing. Each parameter is drawn from
    ``N(0, (gain / sqrt(fan_in))^2)`` with a generator seeded by ``seed``
    (``fan_in`` is the number of elements of one output slice, 1 for biases),
    so every block really transforms its input and every failure replays;
    the default ``gain`` moves a deep HiNet far from the identity and keeps it
    well conditioned. Buffers and frozen parameters (``requires_grad=False``,
    such as FrEIA's ``PermuteRandom`` permutation matrices) are left alone.

    Args:
        module: any ``nn.Module``; its parameters are overwritten.
        seed: seed of the ``torch.Generator`` the values are drawn from.
        gain: scale of the values, a finite number ``> 0``.

    Returns:
        ``module`` itself, so the call can wrap the constructor.

    Raises:
        InputTypeError: ``module`` is not an ``nn.Module``.
        InputError: ``seed`` is not an integer or ``gain`` not ``> 0``.

    Example:
        >>> from invhide.nn.modules import HidingCoupling
        >>> block = HidingCoupling([(4, 4, 4), (4, 4, 4)])
        >>> x = [torch.rand(1, 4, 4, 4), torch.rand(1, 4, 4, 4)]
        >>> torch.equal(block(x)[0][1], x[1])  # the identity when fresh
        True
        >>> torch.equal(randomize_(block, seed=0)(x)[0][1], x[1])
        False
    """
    if not isinstance(module, nn.Module):
        raise InputTypeError(argument="module", problem=f"must be a torch.nn.Module, got {type(module).__name__}")
    seed = integer("seed", seed)
    gain = number("gain", gain, low=0, low_open=True)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            if not param.requires_grad:
                continue
            fan_in = param[0].numel() if param.dim() > 1 else 1
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float64)
            param.copy_(noise * gain / math.sqrt(fan_in))
    return module


def assert_invertible(
    module: nn.Module,
    inputs: Tensor | Sequence[Tensor],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    check_log_det: bool = True,
    conditions: Sequence[Tensor] | None = None,
) -> InvertibilityReport:
    """Assert that ``module`` is invertible on ``inputs``: the five checks of :mod:`invhide.testing`, in order.

    The module's mode is not changed: call ``module.eval()`` first if it has dropout or batch normalisation.

    Args:
        module: anything called as ``module(xs, rev=..., jac=...) -> (outputs, log_det)``.
        inputs: the tensors the module's forward direction takes, each ``(B, ...)`` with the same ``B`` (a
            single tensor is a list of one); for a hider ``[cover, secret]``, secrets concatenated along channels.
        atol: largest allowed absolute round-trip error (default by dtype).
        rtol: largest allowed log-det sum, relative to ``1 + max |log_det_forward|`` (default by dtype).
        check_log_det: also check the log-dets (check 5). FrEIA's own volume-preserving modules return a
            Python ``0.``: pass ``False`` for those, or better return ``torch.zeros(B)``.
        conditions: condition tensors for a conditional module, passed as
            ``c=`` in both directions (default: none, and no ``c`` argument).

    Returns:
        The errors measured, for further assertions.

    Raises:
        AssertionError: the module broke a promise; the message says which
            input or output, and by how much.
        InputTypeError: ``inputs`` holds something other than tensors.
        InputError: ``inputs`` is empty, or the tensors' batch sizes differ.

    Example:
        >>> from invhide.nn.modules import WaveletDownsampling
        >>> down = WaveletDownsampling([(3, 8, 8)], wavelet="haar")
        >>> report = assert_invertible(down, [torch.rand(2, 3, 8, 8, dtype=torch.float64)])
        >>> report.output_shapes, report.log_det_error
        ((torch.Size([2, 12, 4, 4]),), 0.0)
        >>> class Leaky(WaveletDownsampling):  # a reverse that is not the inverse fails, naming the input
        ...     def forward(self, x, c=None, rev=False, jac=True):
        ...         y, log_det = super().forward(x, rev=rev, jac=jac)
        ...         return ([y[0] * 1.01] if rev else y), log_det
        >>> assert_invertible(Leaky([(3, 8, 8)]), [torch.ones(2, 3, 8, 8)])
        Traceback (most recent call last):
        ...
        AssertionError: round trip: inputs[0] (shape (2, 3, 8, 8)) comes back off by up to 1.000e-02 (atol 1.0e-04), ...
    """
    inputs = _tensors("inputs", inputs)
    default_atol, default_rtol = _TOLERANCES.get(inputs[0].dtype, _TOLERANCES[torch.float32])
    atol = default_atol if atol is None else number("atol", atol, low=0)
    rtol = default_rtol if rtol is None else number("rtol", rtol, low=0)
    extra = _conditions(conditions)
    with torch.no_grad():
        outputs, log_det = _checked_forward(module, inputs, atol, extra)
        back, log_det_back = _checked_call("reverse", module, outputs, inputs[0].shape[0], extra)
    errors = _round_trip_errors(inputs, back, atol)
    log_det_error = _log_det_error(log_det, log_det_back, inputs[0], rtol) if check_log_det else None
    shapes = tuple(y.shape for y in outputs)
    return InvertibilityReport(errors, log_det_error, log_det if check_log_det else None, shapes)


def _checked_forward(
    module: nn.Module, inputs: list[Tensor], atol: float, extra: dict[str, Any]
) -> tuple[list[Tensor], Any]:
    """The forward outputs and log-det, after checks 1 to 3."""
    outputs, log_det = _checked_call("forward", module, inputs, inputs[0].shape[0], extra)
    _assert_output_dims(module, inputs, outputs)
    without_jac, _ = _call(module, inputs, rev=False, jac=False, extra=extra)
    _assert_close("forward with jac=False", "forward output", without_jac, outputs, atol)
    return outputs, log_det


def _checked_call(
    direction: str, module: nn.Module, xs: list[Tensor], batch: int, extra: dict[str, Any]
) -> tuple[list[Tensor], Any]:
    """One direction's outputs and log-det, its inputs unchanged and its outputs finite with ``batch`` samples."""
    before = [x.clone() for x in xs]
    outputs, log_det = _call(module, xs, rev=direction == "reverse", jac=True, extra=extra)
    _assert_unchanged(direction, xs, before)
    _assert_outputs(direction, outputs, batch)
    return outputs, log_det


def _round_trip_errors(inputs: list[Tensor], back: list[Tensor], atol: float) -> tuple[float, ...]:
    """The largest ``|back[i] - inputs[i]|`` for each input, after check 4."""
    if len(back) != len(inputs):
        raise AssertionError(f"reverse returned {len(back)} tensor(s) for {len(inputs)} input(s)")
    errors = []
    for i, (x, x_back) in enumerate(zip(inputs, back, strict=True)):
        if x_back.shape != x.shape:
            raise AssertionError(
                f"round trip: reverse output {i} has shape {tuple(x_back.shape)}, "
                f"expected inputs[{i}]'s {tuple(x.shape)}"
            )
        error, where = _max_difference(x_back, x)
        if error > atol:
            raise AssertionError(
                f"round trip: inputs[{i}] (shape {tuple(x.shape)}) comes back off by up to {error:.3e} "
                f"(atol {atol:.1e}), at index {where}"
            )
        errors.append(error)
    return tuple(errors)


def _log_det_error(log_det: object, log_det_back: object, like: Tensor, rtol: float) -> float:
    """The largest ``|log_det + log_det_back|`` over the batch, after check 5."""
    forward, reverse = _assert_log_det("forward", log_det, like), _assert_log_det("reverse", log_det_back, like)
    total = (forward + reverse).abs()
    error = total.max().item()
    bound = rtol * (1 + forward.abs().max().item())
    if error > bound:
        sample = int(total.argmax())
        raise AssertionError(
            f"log-dets do not cancel: forward + reverse = {error:.3e} for sample {sample} "
            f"(forward {forward[sample].item():.6g}, reverse {reverse[sample].item():.6g}; "
            f"bound {bound:.1e} = rtol {rtol:.1e} * (1 + max |forward|))"
        )
    return error


def assert_log_det_matches_jacobian(
    module: nn.Module,
    inputs: Tensor | Sequence[Tensor],
    *,
    atol: float = 1e-6,
    conditions: Sequence[Tensor] | None = None,
) -> Tensor:
    """Assert that the module's forward log-det is ``log |det J|`` of its full Jacobian.

    The Jacobian of one sample's flattened inputs to its flattened outputs is
    built with autograd, one sample at a time, and its log-absolute
    determinant compared with the log-det the module returns. It has ``D x D``
    entries for ``D`` numbers per sample: keep the inputs tiny (``D`` in the
    hundreds) and the module in float64 for a tight ``atol``. Samples must not
    influence each other (no batch statistics).

    Args:
        module: as for :func:`assert_invertible`.
        inputs: as for :func:`assert_invertible`.
        atol: largest allowed absolute difference per sample.
        conditions: as for :func:`assert_invertible`.

    Returns:
        The brute-force per-sample log-dets, shape ``(B,)``.

    Raises:
        AssertionError: the module's log-det differs from the Jacobian's for
            some sample (the message names it and both values), it is not a
            per-sample tensor, or the module changes the number of values
            (then it is not a bijection).
        InputTypeError: ``inputs`` holds something other than tensors.
        InputError: ``inputs`` is empty, or the tensors' batch sizes differ.

    Example:
        >>> from invhide.nn.modules import AffineCoupling
        >>> block = randomize_(AffineCoupling([(2, 2, 2)], subnet="conv"), seed=0, gain=0.5).double()
        >>> x = torch.rand(3, 2, 2, 2, dtype=torch.float64)
        >>> assert_log_det_matches_jacobian(block, [x], atol=1e-9).shape
        torch.Size([3])
    """
    inputs = _tensors("inputs", inputs)
    atol = number("atol", atol, low=0)
    extra = _conditions(conditions)
    with torch.no_grad():
        _, log_det = _call(module, inputs, rev=False, jac=True, extra=extra)
    log_det = _assert_log_det("forward", log_det, inputs[0])
    samples = [_jacobian_log_det(module, [x[b : b + 1] for x in inputs], extra, b) for b in range(len(log_det))]
    brute_force = torch.stack(samples).to(log_det.dtype)
    difference = (log_det - brute_force).abs()
    if difference.max().item() > atol:
        sample = int(difference.argmax())
        raise AssertionError(
            f"log-det of sample {sample} is {log_det[sample].item():.10g}, but log |det J| of the autograd "
            f"Jacobian is {brute_force[sample].item():.10g} (difference {difference[sample].item():.3e} > atol "
            f"{atol:.1e})"
        )
    return brute_force


def _jacobian_log_det(module: nn.Module, sample: list[Tensor], extra: dict[str, Any], b: int) -> Tensor:
    """``log |det J|`` of the module's forward at one sample (the ``b``-th of each input and condition)."""
    sample_extra = {"c": [c[b : b + 1] for c in extra["c"]]} if extra else {}
    sizes, shapes = [x.numel() for x in sample], [x.shape for x in sample]

    def flat_forward(v: Tensor) -> Tensor:
        parts = [p.reshape(s) for p, s in zip(v.split(sizes), shapes, strict=True)]
        outputs, _ = _call(module, parts, rev=False, jac=False, extra=sample_extra)
        return torch.cat([y.reshape(-1) for y in outputs])

    jacobian = torch.autograd.functional.jacobian(flat_forward, torch.cat([x.reshape(-1) for x in sample]))
    if jacobian.shape[0] != jacobian.shape[1]:
        raise AssertionError(
            f"the module maps {jacobian.shape[1]} numbers per sample to {jacobian.shape[0]}: not a bijection"
        )
    return torch.linalg.slogdet(jacobian).logabsdet


def _conditions(conditions: Sequence[Tensor] | None) -> dict[str, Any]:
    """The keyword arguments that pass ``conditions`` (checked) as ``c=``, or none."""
    return {} if conditions is None else {"c": list(_tensors("conditions", conditions))}


def _tensors(name: str, value: Tensor | Sequence[Tensor]) -> list[Tensor]:
    """``value`` as a non-empty list of tensors with one batch size."""
    tensors = [value] if isinstance(value, Tensor) else value
    if isinstance(tensors, (str, bytes)) or not isinstance(tensors, Sequence):
        raise InputTypeError(f"{name} must be a tensor or a sequence of tensors, got {type(value).__name__}")
    tensors = [tensor(f"{name}[{i}]", x, floating=False) for i, x in enumerate(tensors)]
    if not tensors:
        raise InputError(f"{name} must hold at least one tensor, got an empty {type(value).__name__}")
    for i, x in enumerate(tensors):
        if x.dim() == 0:
            raise InputError(f"{name}[{i}] must have a batch dimension, got a 0-dimensional tensor")
    batches = [x.shape[0] for x in tensors]
    if len(set(batches)) > 1:
        raise InputError(f"{name} must share one batch size, got batch sizes {batches}")
    return tensors


def _call(module: nn.Module, xs: list[Tensor], *, rev: bool, jac: bool, extra: dict[str, Any]) -> Any:
    """``module(xs, rev=rev, jac=jac)`` with its outputs as a list (a GraphINN may return one tensor)."""
    result = module(list(xs), rev=rev, jac=jac, **extra)
    direction = "reverse" if rev else "forward"
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError(f"{direction} must return (outputs, log_det), got {type(result).__name__}")
    outputs, log_det = result
    if isinstance(outputs, Tensor):
        outputs = [outputs]
    if not isinstance(outputs, (tuple, list)) or not all(isinstance(y, Tensor) for y in outputs):
        raise AssertionError(f"{direction} outputs must be a tuple of tensors, got {outputs!r:.200}")
    return list(outputs), log_det


def _max_difference(a: Tensor, b: Tensor) -> tuple[float, tuple[int, ...]]:
    """The largest ``|a - b|`` (``inf`` where either is not finite) and the index where it is."""
    difference = (a.double() - b.double()).abs().nan_to_num(nan=math.inf).reshape(-1)
    flat = int(difference.argmax())
    return difference[flat].item(), tuple(int(i) for i in np.unravel_index(flat, tuple(a.shape)))


def _assert_unchanged(direction: str, tensors: list[Tensor], before: list[Tensor]) -> None:
    for i, (x, x0) in enumerate(zip(tensors, before, strict=True)):
        if not torch.equal(x, x0):
            change, where = _max_difference(x, x0)
            raise AssertionError(
                f"{direction} modified its input {i} in place (by up to {change:.3e}, at index {where})"
            )


def _assert_outputs(direction: str, outputs: list[Tensor], batch: int) -> None:
    for i, y in enumerate(outputs):
        if y.dim() == 0 or y.shape[0] != batch:
            raise AssertionError(f"{direction} output {i} has shape {tuple(y.shape)}, expected batch size {batch}")
        bad = int((~torch.isfinite(y)).sum())
        if bad:
            raise AssertionError(f"{direction} output {i} (shape {tuple(y.shape)}) has {bad} non-finite value(s)")


def _assert_output_dims(module: nn.Module, inputs: list[Tensor], outputs: list[Tensor]) -> None:
    """A single FrEIA module's outputs have the shapes its ``output_dims`` gives (a graph's are fixed at build)."""
    if not isinstance(module, InvertibleModule) or isinstance(module, GraphINN):
        return
    try:
        announced = module.output_dims([tuple(x.shape[1:]) for x in inputs])
    except NotImplementedError:
        return
    got = [tuple(y.shape[1:]) for y in outputs]
    if [tuple(d) for d in announced] != got:
        raise AssertionError(f"forward outputs have shapes {got} (without batch), but output_dims says {announced}")


def _assert_close(what: str, name: str, actual: list[Tensor], expected: list[Tensor], atol: float) -> None:
    if len(actual) != len(expected):
        raise AssertionError(f"{what} returned {len(actual)} tensor(s), expected {len(expected)}")
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        if a.shape != e.shape:
            raise AssertionError(f"{what}: {name} {i} has shape {tuple(a.shape)}, expected {tuple(e.shape)}")
        error, where = _max_difference(a, e)
        if error > atol:
            raise AssertionError(f"{what}: {name} {i} differs by up to {error:.3e} (atol {atol:.1e}), at index {where}")


def _assert_log_det(direction: str, log_det: object, like: Tensor) -> Tensor:
    """``log_det`` if it is a finite ``(B,)`` tensor of ``like``'s dtype and device (check 5)."""
    batch = like.shape[0]
    if not isinstance(log_det, Tensor):
        raise AssertionError(
            f"{direction} log-det must be a per-sample tensor of shape ({batch},), got {type(log_det).__name__} "
            f"{log_det!r:.40} (return torch.zeros(B) for a volume-preserving module, or pass check_log_det=False)"
        )
    if log_det.shape != (batch,):
        raise AssertionError(
            f"{direction} log-det must have shape ({batch},) (one value per sample), got {tuple(log_det.shape)}"
        )
    if log_det.dtype != like.dtype or log_det.device != like.device:
        raise AssertionError(
            f"{direction} log-det is {log_det.dtype} on {log_det.device}, expected the inputs' "
            f"{like.dtype} on {like.device}"
        )
    bad = int((~torch.isfinite(log_det)).sum())
    if bad:
        raise AssertionError(f"{direction} log-det has {bad} non-finite value(s): {log_det.tolist()}")
    return log_det
