"""A FrEIA ``GraphINN`` whose parameters are keyed by node name.

FrEIA 0.2's ``GraphINN`` keeps its modules in a ``ModuleList`` in topological
order, and that order is built from sets of nodes hashed by ``id``: two
processes can order parallel nodes differently (FrEIA issue #168), so
``module_list.3.*`` keys of a saved ``state_dict`` may point at another module
when loaded elsewhere. :class:`InvertibleGraph` registers every module under
its node's name instead, so checkpoint keys depend only on names.
"""

from __future__ import annotations

from collections.abc import Sequence

from FrEIA.framework import GraphINN, Node
from torch import Tensor, nn

__all__ = ["InvertibleGraph"]


class InvertibleGraph(GraphINN):
    """``GraphINN`` with modules registered by node name, always returning tuples.

    Args:
        nodes: every node of the graph (``InputNode``, ``Node``,
            ``OutputNode``), each with a unique name without dots. The order
            of this list fixes the order of the outputs and of the
            ``state_dict``.

    Raises:
        ValueError: a name is missing, repeated or contains a dot.

    Example:
        >>> from FrEIA.framework import InputNode, Node, OutputNode
        >>> from invhide.modules import AffineCoupling
        >>> x = InputNode(4, 8, 8, name="x")
        >>> block = Node(x, AffineCoupling, {"subnet": "conv"}, name="block")
        >>> graph = InvertibleGraph([x, block, OutputNode(block, name="z")])
        >>> next(iter(graph.state_dict()))
        'nodes.block.phi.layers.0.weight'
        >>> (z,), log_det = graph([torch.rand(2, 4, 8, 8)])
        >>> tuple(z.shape)
        (2, 4, 8, 8)
    """

    def __init__(self, nodes: Sequence[Node]) -> None:
        nodes = list(nodes)
        names = [node.name for node in nodes]
        for name in names:
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(f"every node needs a name without dots, got {name!r}")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"node names must be unique, repeated: {repeated}")
        super().__init__(nodes, force_tuple_output=True)
        del self.module_list
        self.nodes = nn.ModuleDict({node.name: node.module for node in nodes if node.module is not None})

    def forward(  # type: ignore[override]
        self,
        x_or_z: Tensor | Sequence[Tensor],
        c: Sequence[Tensor] | None = None,
        rev: bool = False,
        jac: bool = True,
        intermediate_outputs: bool = False,
        x: None = None,
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        """Run the graph forward (or backward with ``rev=True``).

        Returns:
            ``(outputs, log_det)``: a tuple with one tensor per output node
            (per input node when ``rev=True``) and the summed per-sample
            log-determinant of shape ``(B,)``.
        """
        try:
            return super().forward(x_or_z, c, rev=rev, jac=jac, intermediate_outputs=intermediate_outputs, x=x)
        except RuntimeError as error:
            # FrEIA wraps every module error in "RuntimeError: Node ... encountered an error";
            # let a module's ValueError/TypeError (bad input) reach the caller as it is.
            if isinstance(error.__cause__, (ValueError, TypeError)):
                raise error.__cause__ from None
            raise
