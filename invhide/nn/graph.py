"""InvertibleGraph: FrEIA nodes run as one invertible module, keyed by node name, with memory-free backpropagation.

The graph is described with FrEIA's public node classes (``InputNode``,
``Node``, ``ConditionNode``, ``OutputNode``) and run by invhide itself, in the
order the nodes were listed (a stable topological order), so the run and the
checkpoint keys are the same in every process (FrEIA 0.2's ``GraphINN`` orders
parallel nodes by ``id`` hashes, FrEIA issue #168). Every module is registered
under its node's name: ``nodes.<name>.<parameter>``.

The inputs are checked once, at the graph's edge: their number, dimensions and
channels, and, running forward, every module's ``output_dims`` for the given
spatial size (so an odd size is refused before any computation). The modules
then run unchecked.

With ``memory_saving=True`` the graph trains without storing activations: the
forward pass keeps only the graph's outputs, and the backward pass walks the
nodes in reverse, recomputing each node's inputs from its outputs through the
node's exact inverse, then re-running that one node with autograd for its
gradients (the reversible backpropagation of Gomez et al., "The Reversible
Residual Network", NeurIPS 2017). Activation memory is then that of one node,
whatever the depth, for one inverse and one more forward pass per node.
Conditions are constants there (no gradient reaches them). Parameter
gradients are accumulated into ``.grad`` node by node (returned to autograd
under ``torch.distributed``, for ``DistributedDataParallel``), so the mode
supports ``loss.backward()``, not ``torch.autograd.grad`` with respect to the
parameters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from FrEIA.framework import ConditionNode, InputNode, Node, OutputNode
from FrEIA.modules import InvertibleModule
from torch import Tensor, nn

from invhide import checks
from invhide.errors import InputError

__all__ = ["InvertibleGraph"]

Edge = tuple[Node, int]
"""One value of a run: output ``j`` of a node (the same key in both directions)."""


@dataclass(frozen=True)
class _Step:
    """One node of a run: the edges it reads, the edges it writes, its conditions' positions in ``c``."""

    node: Node
    consumed: tuple[Edge, ...]
    produced: tuple[Edge, ...]
    conditions: tuple[int, ...]


@dataclass(frozen=True)
class _Plan:
    """A run in one direction: its steps, the edges fed by its inputs, the edges holding its outputs."""

    steps: tuple[_Step, ...]
    start: tuple[Edge, ...]
    end: tuple[Edge, ...]


def _stable_order(nodes: Sequence[Node]) -> list[Node]:
    """The nodes in a topological order that keeps the listed order wherever the edges allow it."""
    listed = {id(node): i for i, node in enumerate(nodes)}
    for node in nodes:
        for source in [producer for producer, _ in node.inputs] + list(node.conditions):
            if id(source) not in listed:
                raise InputError(f"node {node.name!r} reads node {source.name!r}, which is not in the graph's list")
    done: set[int] = set()
    order: list[Node] = []
    while len(order) < len(nodes):
        ready = [
            n
            for n in nodes
            if id(n) not in done
            and all(id(p) in done for p, _ in n.inputs)
            and all(id(c) in done for c in n.conditions)
        ]
        if not ready:
            raise InputError(f"the graph has a cycle through {[n.name for n in nodes if id(n) not in done]}")
        order.append(ready[0])
        done.add(id(ready[0]))
    return order


def _plan(order: list[Node], conditions: list[Node], rev: bool) -> _Plan:
    """The steps of a run through ``order`` forward, or backward with ``rev``."""
    position = {id(node): i for i, node in enumerate(conditions)}
    steps = []
    for node in order[::-1] if rev else order:
        if isinstance(node, (InputNode, OutputNode, ConditionNode)):
            continue
        inputs = tuple(tuple(edge) for edge in node.inputs)
        outputs = tuple((node, j) for j in range(len(node.output_dims)))
        used = tuple(position[id(c)] for c in node.conditions)
        steps.append(_Step(node, outputs if rev else inputs, inputs if rev else outputs, used))  # type: ignore[arg-type]
    sources = tuple((node, 0) for node in order if isinstance(node, InputNode))
    sinks = tuple(tuple(node.inputs[0]) for node in order if isinstance(node, OutputNode))
    return _Plan(tuple(steps), sinks if rev else sources, sources if rev else sinks)  # type: ignore[arg-type]


def _execute(
    plan: _Plan, inputs: Sequence[Tensor], conditions: Sequence[Tensor], rev: bool, jac: bool
) -> tuple[tuple[Tensor, ...], Tensor]:
    """Run ``plan``, letting go of every value after its last use; ``(outputs, summed log_det)``."""
    uses = Counter(edge for step in plan.steps for edge in step.consumed)
    uses.update(plan.end)
    values: dict[Edge, Tensor] = dict(zip(plan.start, inputs, strict=True))
    log_det = inputs[0].new_zeros(inputs[0].shape[0])
    for step in plan.steps:
        node_inputs = [values[edge] for edge in step.consumed]
        for edge in step.consumed:
            uses[edge] -= 1
            if not uses[edge]:
                del values[edge]
        c = [conditions[i] for i in step.conditions]
        outputs, node_log_det = step.node.module(node_inputs, c=c, rev=rev, jac=jac)
        del node_inputs
        values.update(zip(step.produced, outputs, strict=True))
        if jac:
            log_det = log_det + node_log_det
    return tuple(values[edge] for edge in plan.end), log_det


class _MemorySavingRun(torch.autograd.Function):
    """Runs a plan keeping only its outputs; the backward pass recomputes each node's inputs through its inverse."""

    @staticmethod
    def forward(ctx: Any, plan: _Plan, rev: bool, jac: bool, counts: tuple[int, int], *tensors: Tensor) -> Any:
        n_in, n_c = counts
        conditions = tensors[n_in : n_in + n_c]
        with torch.no_grad():
            outputs, log_det = _execute(plan, tensors[:n_in], conditions, rev, jac)
        ctx.plan, ctx.rev, ctx.jac, ctx.n_in = plan, rev, jac, n_in
        ctx.params = tensors[n_in + n_c :]
        ctx.conditions = [c.detach() for c in conditions]
        # Gradients go straight into .grad, node by node, so no second copy of every gradient waits for the end of
        # the backward pass; under torch.distributed they are returned, so DDP sees each parameter become ready.
        ctx.accumulate = not (torch.distributed.is_available() and torch.distributed.is_initialized())
        ctx.save_for_backward(*outputs)
        return (*outputs, log_det)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> Any:
        values: dict[Edge, Tensor] = dict(zip(ctx.plan.end, ctx.saved_tensors, strict=True))
        grad_values: dict[Edge, Tensor | None] = dict(zip(ctx.plan.end, grads[:-1], strict=True))
        grad_log_det = grads[-1] if ctx.jac else None
        param_grads: dict[nn.Parameter, Tensor] = {}
        for step in reversed(ctx.plan.steps):
            inputs, found, params = _node_backward(ctx, step, values, grad_values, grad_log_det)
            for edge, value, grad in zip(step.consumed, inputs, found[: len(inputs)], strict=True):
                values[edge] = value.detach()
                grad_values[edge] = grad
            for param, grad in zip(params, found[len(inputs) :], strict=True):
                if grad is not None:
                    param_grads[param] = param_grads[param] + grad if param in param_grads else grad
        input_grads = [grad_values.get(edge) for edge in ctx.plan.start]
        no_conditions = [None] * len(ctx.conditions)
        return (None, None, None, None, *input_grads, *no_conditions, *(param_grads.get(p) for p in ctx.params))


def _node_backward(
    ctx: Any, step: _Step, values: dict[Edge, Tensor], grad_values: dict[Edge, Tensor | None], grad_log_det: Any
) -> tuple[list[Tensor], Sequence[Tensor | None], list[nn.Parameter]]:
    """One node of the memory-saving backward pass: its inputs recomputed, their and its parameters' gradients."""
    module, c = step.node.module, [ctx.conditions[i] for i in step.conditions]
    with torch.no_grad():  # the node's inputs, from its outputs, through its exact inverse
        inputs, _ = module([values.pop(edge) for edge in step.produced], c=c, rev=not ctx.rev, jac=False)
    inputs = [x.detach().requires_grad_(True) for x in inputs]
    with torch.enable_grad():
        recomputed, node_log_det = module(inputs, c=c, rev=ctx.rev, jac=ctx.jac and grad_log_det is not None)
    targets, target_grads = [], []
    for edge, value in zip(step.produced, recomputed, strict=True):
        grad = grad_values.pop(edge, None)
        if grad is not None and value.requires_grad:
            targets.append(value)
            target_grads.append(grad)
    if grad_log_det is not None and node_log_det is not None and node_log_det.requires_grad:
        targets.append(node_log_det)
        target_grads.append(grad_log_det)
    params = [p for p in module.parameters() if p.requires_grad]
    if not targets:
        return inputs, (None,) * (len(inputs) + len(params)), params
    if ctx.accumulate:
        torch.autograd.backward(targets, target_grads, inputs=[*inputs, *params])
        return inputs, [x.grad for x in inputs] + [None] * len(params), params
    return inputs, torch.autograd.grad(targets, [*inputs, *params], target_grads, allow_unused=True), params


class InvertibleGraph(InvertibleModule):
    """FrEIA nodes run as one invertible module, with modules registered by node name.

    Args:
        nodes: every node of the graph (``InputNode``, ``ConditionNode``,
            ``Node``, ``OutputNode``), each with a unique name without dots.
            The order of this list fixes the order of the inputs, conditions
            and outputs, of the run and of the ``state_dict``.
        memory_saving: when gradients are needed, store no activations and
            recompute them through the inverse in the backward pass (see the
            module docstring); needs modules whose reverse is their exact
            inverse. Can be switched at any time through the attribute of the
            same name.

    Attributes:
        node_list: the nodes in the order they run forward.
        nodes: the modules, by node name.

    Raises:
        ValueError: a name is missing, repeated or contains a dot; a node
            reads a node that is not listed; the nodes form a cycle.

    Example:
        >>> from FrEIA.framework import InputNode, Node, OutputNode
        >>> from invhide.nn.modules import AffineCoupling
        >>> x = InputNode(4, 8, 8, name="x")
        >>> block = Node(x, AffineCoupling, {"subnet": "conv"}, name="block")
        >>> graph = InvertibleGraph([x, block, OutputNode(block, name="z")])
        >>> next(iter(graph.state_dict()))
        'nodes.block.phi.layers.0.weight'
        >>> (z,), log_det = graph([torch.rand(2, 4, 8, 8)])
        >>> tuple(z.shape), tuple(log_det.shape)
        ((2, 4, 8, 8), (2,))
    """

    def __init__(self, nodes: Sequence[Node], memory_saving: bool = False) -> None:
        nodes = list(nodes)
        names = [node.name for node in nodes]
        for name in names:
            if not isinstance(name, str) or not name or "." in name:
                raise InputError(f"every node needs a name without dots, got {name!r}")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise InputError(f"node names must be unique, repeated: {repeated}")
        self.node_list = _stable_order(nodes)
        self.in_nodes = [n for n in self.node_list if isinstance(n, InputNode)]
        self.out_nodes = [n for n in self.node_list if isinstance(n, OutputNode)]
        self.condition_nodes = [n for n in self.node_list if isinstance(n, ConditionNode)]
        super().__init__([n.output_dims[0] for n in self.in_nodes], [n.output_dims[0] for n in self.condition_nodes])
        self.nodes = nn.ModuleDict({node.name: node.module for node in nodes if node.module is not None})
        self.memory_saving = memory_saving
        self._plans = {rev: _plan(self.node_list, self.condition_nodes, rev) for rev in (False, True)}
        self._checked_shapes: set[tuple[Any, ...]] = set()

    def forward(  # type: ignore[override]
        self, x_or_z: Tensor | Sequence[Tensor], c: Sequence[Tensor] | None = None, rev: bool = False, jac: bool = True
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        """Run the graph forward (or backward with ``rev=True``).

        Args:
            x_or_z: one tensor per input node (per output node when
                ``rev=True``), each ``(B, *dims)`` with the node's channels.
            c: one tensor per condition node, ``(B, *dims)``.
            rev: run the inverse.
            jac: sum the log-determinants (zeros otherwise).

        Returns:
            ``(outputs, log_det)``: a tuple with one tensor per output node
            (per input node when ``rev=True``) and the summed per-sample
            log-determinant of shape ``(B,)``.

        Raises:
            ValueError: a wrong number of inputs or conditions, or a shape
                some node cannot take (named).
            TypeError: an input that is not a floating-point tensor.
        """
        inputs = [x_or_z] if isinstance(x_or_z, Tensor) else list(x_or_z)
        conditions = list(c or [])
        self._check(inputs, conditions, rev)
        return self._run(inputs, conditions, rev, jac)

    def _run(
        self, inputs: Sequence[Tensor], conditions: Sequence[Tensor], rev: bool, jac: bool
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        """The run itself, for inputs already checked (by :meth:`forward`, or by a subclass's own edge)."""
        plan = self._plans[rev]
        if self.memory_saving and torch.is_grad_enabled():
            params = [p for p in self.parameters() if p.requires_grad]
            if params or any(t.requires_grad for t in inputs):
                counts = (len(inputs), len(conditions))
                *outputs, log_det = _MemorySavingRun.apply(plan, rev, jac, counts, *inputs, *conditions, *params)
                return tuple(outputs), log_det
        return _execute(plan, inputs, conditions, rev, jac)

    def _check(self, inputs: list[Any], conditions: list[Any], rev: bool) -> None:
        """Refuse inputs or conditions this graph cannot run, naming them; shapes seen before pass at once."""
        edge_nodes = self.out_nodes if rev else self.in_nodes
        for what, given, nodes in (("inputs", inputs, edge_nodes), ("conditions", conditions, self.condition_nodes)):
            if len(given) != len(nodes):
                raise InputError(f"got {len(given)} {what}, but expected {len(nodes)}")
        named = [*zip(edge_nodes, inputs, strict=True), *zip(self.condition_nodes, conditions, strict=True)]
        for node, value in named:
            dims = node.input_dims[0] if isinstance(node, OutputNode) else node.output_dims[0]
            checks.tensor(node.name, value, dims=len(dims) + 1, floating=not isinstance(node, ConditionNode))
        key = (rev, *(tuple(value.shape) for _, value in named))
        if key in self._checked_shapes:
            return
        for node, value in named:
            dims = node.input_dims[0] if isinstance(node, OutputNode) else node.output_dims[0]
            if value.shape[1] != dims[0] or value.shape[0] != inputs[0].shape[0]:
                raise InputError(
                    f"{node.name} must have shape (B, {dims[0]}, ...) with the batch size of the first input, "
                    f"got {tuple(value.shape)}"
                )
        if not rev:
            self.output_dims([tuple(x.shape[1:]) for x in inputs])
        if len(self._checked_shapes) < 64:
            self._checked_shapes.add(key)

    def output_dims(self, input_dims: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """The output shapes (without batch) for these input shapes, through every module's ``output_dims``."""
        dims: dict[Edge, tuple[int, ...]] = {(n, 0): tuple(d) for n, d in zip(self.in_nodes, input_dims, strict=True)}
        for step in self._plans[False].steps:
            module = step.node.module
            try:
                found = module.output_dims([dims[edge] for edge in step.consumed])
            except (ValueError, TypeError) as error:
                raise InputError(f"node {step.node.name!r} cannot take its input: {error}") from None
            dims.update(zip(step.produced, (tuple(d) for d in found), strict=True))
        return [dims[edge] for edge in self._plans[False].end]
