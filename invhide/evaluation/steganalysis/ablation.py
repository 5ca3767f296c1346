"""The pixel-domain hider of the paper's ablation (Table 4): HiNet without the wavelet transform.

HiNet hides in the wavelet domain: a Haar DWT turns each ``(C, H, W)`` image
into ``4C`` subbands of half the size before the couplings. Its ablation
replaces the DWT by a transform that keeps the pixels as they are but has
the same shape: :class:`SpaceToDepth` moves each 2x2 block of pixels into 4
channels (a permutation, so exactly invertible with log-determinant 0), and
:class:`PixelDomainHider` is :class:`~invhide.models.hider.InvertibleHider`
with it in place of both wavelet transforms. Training the two with the same
budget isolates what the wavelet domain buys (``benchmarks/security.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from FrEIA.framework import InputNode, Node, OutputNode
from FrEIA.modules import InvertibleModule
from torch import Tensor

from invhide.checks import image_batch, positive_int
from invhide.errors import InputError, InputTypeError
from invhide.io.checkpoint import register_model_class
from invhide.models.hider import InvertibleHider
from invhide.nn.graph import InvertibleGraph
from invhide.nn.modules import HidingCoupling
from invhide.nn.subnets import SubnetFactory, SubnetSpec, resolve

__all__ = ["DepthToSpace", "PixelDomainHider", "SpaceToDepth", "depth_to_space", "space_to_depth"]

Dims = Sequence[tuple[int, ...]]


def space_to_depth(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` to ``(B, 4C, H/2, W/2)``: the four pixels of each 2x2 block, position-major.

    The channels are ``cat(a, b, c, d)`` with ``a = x[..., 0::2, 0::2]``,
    ``b = x[..., 1::2, 0::2]``, ``c = x[..., 0::2, 1::2]``,
    ``d = x[..., 1::2, 1::2]``: the polyphase components from which the Haar
    DWT's subbands are sums and differences, in the same order.

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> space_to_depth(x)[0, :, 0, 0].tolist()
        [0.0, 4.0, 1.0, 5.0]
    """
    image_batch("x", x, even=True)
    return torch.cat((x[..., 0::2, 0::2], x[..., 1::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 1::2]), dim=1)


def depth_to_space(y: Tensor) -> Tensor:
    """The exact inverse of :func:`space_to_depth`: ``(B, 4C, h, w)`` to ``(B, C, 2h, 2w)``.

    Example:
        >>> x = torch.rand(2, 3, 6, 8)
        >>> bool(torch.equal(depth_to_space(space_to_depth(x)), x))
        True
    """
    if image_batch("y", y).shape[1] % 4:
        raise InputError(argument="y", problem=f"must have shape (B, 4C, h, w), got shape {tuple(y.shape)}")
    a, b, c, d = y.chunk(4, dim=1)
    batch, channels, height, width = a.shape
    x = y.new_empty(batch, channels, 2 * height, 2 * width)
    x[..., 0::2, 0::2], x[..., 1::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 1::2] = a, b, c, d
    return x


class _Rearrangement(InvertibleModule):
    """Shared body of the two modules; ``_down`` says which way is forward."""

    _down: bool

    def __init__(self, dims_in: Dims, dims_c: Dims | None = None) -> None:
        dims = [tuple(int(v) for v in d) for d in dims_in]
        if len(dims) != 1 or len(dims[0]) != 3:
            raise InputError(f"{type(self).__name__} takes 1 input of shape (C, H, W), got dims_in={list(dims_in)!r}")
        if dims_c:
            raise InputError(f"{type(self).__name__} takes no conditions, got dims_c={list(dims_c)!r}")
        super().__init__(dims)
        self._out = self._shape(dims[0])

    def _shape(self, dims: tuple[int, ...]) -> tuple[int, int, int]:
        c, h, w = dims
        if self._down:
            if h % 2 or w % 2 or h < 2 or w < 2:
                raise InputError(f"{type(self).__name__} needs an even height and width, got dims {dims}")
            return (4 * c, h // 2, w // 2)
        if c % 4:
            raise InputError(f"{type(self).__name__} needs 4*C channels, got dims {dims}")
        return (c // 4, 2 * h, 2 * w)

    def forward(
        self, x_or_z: Sequence[Tensor], c: Sequence[Tensor] | None = None, rev: bool = False, jac: bool = True
    ) -> tuple[tuple[Tensor], Tensor | None]:
        if len(x_or_z) != 1:
            raise InputError(f"{type(self).__name__} takes 1 input tensor, got {len(x_or_z)}")
        (x,) = x_or_z
        y = space_to_depth(x) if self._down != rev else depth_to_space(x)
        # A permutation of the entries: |det J| = 1.
        return (y,), (x.new_zeros(x.shape[0]) if jac else None)

    def output_dims(self, input_dims: Dims) -> list[tuple[int, ...]]:
        return [self._shape(tuple(input_dims[0]))]


class SpaceToDepth(_Rearrangement):
    """:func:`space_to_depth` as an invertible FrEIA module (log-determinant 0): the DWT's shape, no transform.

    Example:
        >>> module = SpaceToDepth([(3, 8, 8)])
        >>> x = torch.rand(2, 3, 8, 8)
        >>> (y,), log_det = module([x])
        >>> tuple(y.shape), log_det.tolist()
        ((2, 12, 4, 4), [0.0, 0.0])
        >>> (back,), _ = module([y], rev=True)
        >>> bool(torch.equal(back, x))
        True
    """

    _down = True


class DepthToSpace(_Rearrangement):
    """:class:`SpaceToDepth` reversed: ``(B, 4C, h, w)`` to ``(B, C, 2h, 2w)``, log-determinant 0."""

    _down = False


class PixelDomainHider(InvertibleHider):
    """:class:`~invhide.models.hider.InvertibleHider` in the pixel domain: :class:`SpaceToDepth` for the DWT.

    The graph is the hider's with ``cover_s2d``/``secret_s2d`` and
    ``stego_d2s``/``lost_d2s`` nodes in place of the wavelet nodes; hide,
    reveal, the checks and training are the hider's.

    Args:
        num_secrets: secret images per cover.
        num_blocks: coupling blocks.
        subnet: subnet constructor or registered name.
        clamp: soft-clamp bound of the log-scales.
        clamp_activation: ``"sigmoid"``, ``"tanh"`` or ``"atan"``.
        channels: image channels.
        memory_saving: train without storing activations.

    Example:
        >>> hider = PixelDomainHider(num_blocks=2, subnet=invhide.nn.subnets.conv(hidden=8))
        >>> cover, secret = torch.rand(2, 1, 3, 16, 16)
        >>> stego, lost = hider.hide(cover, secret)
        >>> bool(torch.allclose(hider.reveal(stego, z=lost), secret, atol=1e-5))
        True
    """

    def __init__(
        self,
        num_secrets: int = 1,
        num_blocks: int = 16,
        subnet: SubnetSpec = "dense",
        clamp: float = 2.0,
        clamp_activation: str = "sigmoid",
        channels: int = 3,
        memory_saving: bool = False,
    ) -> None:
        self.keyed = False  # the hider's graph is built here, not by InvertibleHider.__init__: set what it sets
        self.num_secrets = positive_int("num_secrets", num_secrets)
        self.num_blocks = positive_int("num_blocks", num_blocks)
        self.channels = positive_int("channels", channels)
        self.subnet = resolve(subnet)
        self.wavelet = "none (pixel domain)"
        self.min_size = 2
        self.clamp = clamp
        self.clamp_activation = clamp_activation
        self.layout = "pixel"
        self.wavelet_backend = "none"
        coupling_args = {"subnet": self.subnet, "clamp": clamp, "clamp_activation": clamp_activation}
        cover = InputNode(channels, 2, 2, name="cover")
        secret = InputNode(num_secrets * channels, 2, 2, name="secret")
        cover_s2d = Node(cover, SpaceToDepth, {}, name="cover_s2d")
        secret_s2d = Node(secret, SpaceToDepth, {}, name="secret_s2d")
        nodes: list[Node] = [cover, secret, cover_s2d, secret_s2d]
        branches = [(cover_s2d, 0), (secret_s2d, 0)]
        for i in range(1, num_blocks + 1):
            block = Node(branches, HidingCoupling, coupling_args, name=f"coupling_{i}")
            nodes.append(block)
            branches = [(block, 0), (block, 1)]
        stego = Node(branches[0], DepthToSpace, {}, name="stego_d2s")
        lost = Node(branches[1], DepthToSpace, {}, name="lost_d2s")
        nodes += [stego, lost, OutputNode(stego, name="stego"), OutputNode(lost, name="lost")]
        InvertibleGraph.__init__(self, nodes, memory_saving=memory_saving)
        self.refiner = None
        self.to(memory_format=torch.channels_last)

    def config(self) -> dict[str, Any]:
        """A JSON-ready description from which :meth:`from_config` rebuilds the architecture."""
        if not isinstance(self.subnet, SubnetFactory):
            raise InputTypeError(f"cannot describe the custom subnet {self.subnet!r} in a config")
        return {
            "class": "PixelDomainHider",
            "num_secrets": self.num_secrets,
            "num_blocks": self.num_blocks,
            "subnet": self.subnet.config(),
            "clamp": self.clamp,
            "clamp_activation": self.clamp_activation,
            "channels": self.channels,
        }

    def extra_repr(self) -> str:
        return f"num_secrets={self.num_secrets}, num_blocks={self.num_blocks}, pixel domain, clamp={self.clamp}"


register_model_class("PixelDomainHider", PixelDomainHider.from_config)
