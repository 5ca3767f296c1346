"""Subnetworks for the couplings, and the constructors that build them.

A subnet constructor is any callable ``(c_in, c_out) -> nn.Module`` whose
module maps ``(B, c_in, h, w)`` to ``(B, c_out, h, w)``. invhide ships three,
each with a final convolution that starts at zero, so a freshly built coupling
is the identity:

- :class:`DenseSubnet` (``"dense"``): HiNet's 5-convolution dense block.
- :class:`ResidualSubnet` (``"residual"``): a stem, residual blocks and a head.
- :class:`ConvSubnet` (``"conv"``): a plain stack of convolutions.

:func:`dense`, :func:`residual` and :func:`conv` return a
:class:`SubnetFactory`: a constructor that also records its options, so a model
built with it can be described in a JSON config and rebuilt. A name (``"dense"``)
stands for the factory with default options; :func:`register` adds your own
subnet class under a name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from invhide.checks import number, positive_int
from invhide.errors import InputError, InputTypeError

__all__ = [
    "ConvSubnet",
    "DenseSubnet",
    "ResidualSubnet",
    "Subnet",
    "SubnetConstructor",
    "SubnetFactory",
    "SubnetSpec",
    "conv",
    "dense",
    "register",
    "registered",
    "residual",
    "resolve",
]

SubnetConstructor = Callable[[int, int], nn.Module]
"""A callable ``(c_in, c_out) -> nn.Module`` whose module maps ``(B, c_in, h, w)`` to ``(B, c_out, h, w)``."""
SubnetSpec = str | SubnetConstructor
"""A registered subnet name (``"dense"``, ``"residual"``, ``"conv"``, ...) or a :data:`SubnetConstructor`."""


def _slope(value: object) -> float:
    return number("negative_slope", value, low=0, high=1, high_open=True)


class Subnet(nn.Module):
    """Base class of the shipped subnets.

    Subclasses name their last layer through :attr:`output_layer`; it is
    zero-initialised at construction (so couplings start as the identity) and
    :func:`invhide.models.hinet.reference_init_` keeps it at zero.

    Example:
        A subnet of your own follows the same contract:

        >>> class Tiny(Subnet):
        ...     def __init__(self, in_channels, out_channels):
        ...         super().__init__()
        ...         self.conv = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1)
        ...         self.zero_output_()
        ...     @property
        ...     def output_layer(self):
        ...         return self.conv
        ...     def forward(self, x):
        ...         return self.conv(x)
        >>> Tiny(4, 8)(torch.rand(1, 4, 5, 5)).abs().max().item()  # starts at zero
        0.0
    """

    @property
    def output_layer(self) -> nn.Conv2d:
        """The final convolution."""
        raise NotImplementedError

    def zero_output_(self) -> None:
        """Set the final convolution's weight and bias to zero, in place."""
        with torch.no_grad():
            self.output_layer.weight.zero_()
            if self.output_layer.bias is not None:
                self.output_layer.bias.zero_()


class DenseSubnet(Subnet):
    """HiNet's dense block: ``depth`` 3x3 convolutions with dense connections.

    Convolution ``i`` (named ``conv{i}``, 1-based, as in the reference code)
    sees the input and every earlier feature map; all but the last are
    followed by LeakyReLU. The last maps to ``out_channels`` and starts at zero.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        growth: channels each hidden convolution adds (HiNet: 32).
        depth: number of convolutions, ``>= 2`` (HiNet: 5).
        negative_slope: LeakyReLU slope (HiNet: 0.01).
        bias: convolutions have a bias (HiNet: yes).

    Example:
        >>> net = DenseSubnet(12, 12)
        >>> [name for name, _ in net.named_children()]
        ['conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'act']
        >>> net(torch.rand(1, 12, 8, 8)).abs().max().item()  # zero last layer
        0.0
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        growth: int = 32,
        depth: int = 5,
        negative_slope: float = 0.01,
        bias: bool = True,
    ) -> None:
        super().__init__()
        positive_int("in_channels", in_channels)
        positive_int("out_channels", out_channels)
        positive_int("growth", growth)
        if positive_int("depth", depth) < 2:
            raise InputError(f"depth must be at least 2, got {depth}")
        self.depth = depth
        for i in range(depth):
            out = out_channels if i == depth - 1 else growth
            self.add_module(f"conv{i + 1}", nn.Conv2d(in_channels + i * growth, out, 3, padding=1, bias=bias))
        slope = _slope(negative_slope)
        # In place on each convolution's fresh output (autograd needs a positive slope to undo it).
        self.act = nn.LeakyReLU(slope, inplace=slope > 0)
        self.zero_output_()

    @property
    def output_layer(self) -> nn.Conv2d:
        return getattr(self, f"conv{self.depth}")

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for i in range(1, self.depth):
            conv = getattr(self, f"conv{i}")
            features.append(self.act(conv(torch.cat(features, dim=1))))
        return self.output_layer(torch.cat(features, dim=1))


class ResidualSubnet(Subnet):
    """A 3x3 stem, ``depth`` residual blocks (conv, LeakyReLU, conv, skip), a 3x3 head.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        hidden: width of the residual trunk.
        depth: number of residual blocks (0 allowed: stem, activation, head).
        negative_slope: LeakyReLU slope.

    Example:
        >>> net = ResidualSubnet(12, 24, hidden=16, depth=1)
        >>> tuple(net(torch.rand(2, 12, 4, 4)).shape)
        (2, 24, 4, 4)
    """

    def __init__(
        self, in_channels: int, out_channels: int, hidden: int = 64, depth: int = 2, negative_slope: float = 0.01
    ) -> None:
        super().__init__()
        positive_int("in_channels", in_channels)
        positive_int("out_channels", out_channels)
        positive_int("hidden", hidden)
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
            raise InputError(f"depth must be a non-negative integer, got {depth!r}")
        self.stem = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(hidden, hidden, 3, padding=1),
                nn.LeakyReLU(_slope(negative_slope)),
                nn.Conv2d(hidden, hidden, 3, padding=1),
            )
            for _ in range(depth)
        )
        self.act = nn.LeakyReLU(_slope(negative_slope))
        self.head = nn.Conv2d(hidden, out_channels, 3, padding=1)
        self.zero_output_()

    @property
    def output_layer(self) -> nn.Conv2d:
        return self.head

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(self.act(h))
        return self.head(self.act(h))


class ConvSubnet(Subnet):
    """A plain stack of ``depth`` convolutions with LeakyReLU between them.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        hidden: width of the hidden convolutions.
        depth: number of convolutions, ``>= 1``.
        kernel_size: odd kernel size.
        negative_slope: LeakyReLU slope.

    Example:
        >>> net = ConvSubnet(4, 8, hidden=16, depth=2)
        >>> tuple(net(torch.rand(1, 4, 5, 5)).shape)
        (1, 8, 5, 5)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int = 64,
        depth: int = 3,
        kernel_size: int = 3,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        positive_int("in_channels", in_channels)
        positive_int("out_channels", out_channels)
        positive_int("hidden", hidden)
        positive_int("depth", depth)
        if positive_int("kernel_size", kernel_size) % 2 == 0:
            raise InputError(f"kernel_size must be odd so the spatial size is kept, got {kernel_size}")
        layers: list[nn.Module] = []
        width = in_channels
        for i in range(depth):
            out = out_channels if i == depth - 1 else hidden
            layers.append(nn.Conv2d(width, out, kernel_size, padding=kernel_size // 2))
            if i < depth - 1:
                layers.append(nn.LeakyReLU(_slope(negative_slope)))
            width = out
        self.layers = nn.Sequential(*layers)
        self.zero_output_()

    @property
    def output_layer(self) -> nn.Conv2d:
        return self.layers[-1]  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "conv": ConvSubnet,
    "dense": DenseSubnet,
    "residual": ResidualSubnet,
}


def register(name: str, cls: Callable[..., nn.Module]) -> None:
    """Register a subnet class under ``name`` for :func:`resolve` and configs.

    ``cls(in_channels, out_channels, **options)`` must return the module.
    Registered subnets can be named in :class:`~invhide.InvertibleHider` and
    survive a save/load through the JSON config.

    Raises:
        ValueError: ``name`` is already registered to another class.

    Example:
        >>> class Tiny(torch.nn.Conv2d):
        ...     def __init__(self, c_in, c_out, kernel_size=3):
        ...         super().__init__(c_in, c_out, kernel_size, padding=kernel_size // 2)
        >>> register("tiny", Tiny)
        >>> SubnetFactory("tiny", {"kernel_size": 1})(4, 8)
        Tiny(4, 8, kernel_size=(1, 1), stride=(1, 1))
    """
    if not isinstance(name, str) or not name:
        raise InputError(f"subnet name must be a non-empty string, got {name!r}")
    if not callable(cls):
        raise InputTypeError(f"subnet class must be callable, got {type(cls).__name__}")
    if _REGISTRY.get(name, cls) is not cls:
        raise InputError(f"subnet name {name!r} is already registered to {_REGISTRY[name]!r}")
    _REGISTRY[name] = cls


def registered() -> tuple[str, ...]:
    """Names :func:`resolve` accepts, sorted.

    Example:
        >>> {"conv", "dense", "residual"} <= set(registered())
        True
    """
    return tuple(sorted(_REGISTRY))


@dataclass(frozen=True)
class SubnetFactory:
    """A subnet constructor that remembers its options.

    Calling it with ``(c_in, c_out)`` builds ``registered_class(c_in, c_out,
    **options)``. :meth:`config` gives a JSON-ready description.

    Attributes:
        name: registered subnet name.
        options: keyword arguments for the subnet class.

    Example:
        >>> factory = SubnetFactory("dense", {"growth": 16})
        >>> factory.config()
        {'name': 'dense', 'growth': 16}
        >>> factory(12, 12).conv1.out_channels
        16
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or self.name not in _REGISTRY:
            raise InputError(f"unknown subnet {self.name!r}; registered subnets are {registered()}")
        object.__setattr__(self, "options", dict(self.options))

    def __call__(self, in_channels: int, out_channels: int) -> nn.Module:
        return _REGISTRY[self.name](in_channels, out_channels, **self.options)

    def config(self) -> dict[str, Any]:
        """``{"name": name, **options}``, the inverse of :meth:`from_config`."""
        return {"name": self.name, **self.options}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SubnetFactory:
        """Rebuild a factory from :meth:`config`'s output.

        Raises:
            ValueError: ``config`` has no ``"name"`` or names an unknown subnet.
        """
        if not isinstance(config, Mapping) or "name" not in config:
            raise InputError(f"subnet config must be a mapping with a 'name', got {config!r}")
        options = {k: v for k, v in config.items() if k != "name"}
        return cls(config["name"], options)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.options.items()))))


def dense(growth: int = 32, depth: int = 5, negative_slope: float = 0.01, bias: bool = True) -> SubnetFactory:
    """Constructor of :class:`DenseSubnet` (HiNet's defaults).

    Example:
        >>> dense(growth=16, depth=3)(12, 12).conv3.in_channels
        44
    """
    DenseSubnet(1, 1, growth, depth, negative_slope, bias)  # validate now, not at build time
    return SubnetFactory("dense", {"growth": growth, "depth": depth, "negative_slope": negative_slope, "bias": bias})


def residual(hidden: int = 64, depth: int = 2, negative_slope: float = 0.01) -> SubnetFactory:
    """Constructor of :class:`ResidualSubnet`.

    Example:
        >>> residual(hidden=32)(12, 12).stem.out_channels
        32
    """
    ResidualSubnet(1, 1, hidden, depth, negative_slope)
    return SubnetFactory("residual", {"hidden": hidden, "depth": depth, "negative_slope": negative_slope})


def conv(hidden: int = 64, depth: int = 3, kernel_size: int = 3, negative_slope: float = 0.01) -> SubnetFactory:
    """Constructor of :class:`ConvSubnet`.

    Example:
        >>> len(conv(hidden=8, depth=2)(4, 4).layers)
        3
    """
    ConvSubnet(1, 1, hidden, depth, kernel_size, negative_slope)
    return SubnetFactory(
        "conv", {"hidden": hidden, "depth": depth, "kernel_size": kernel_size, "negative_slope": negative_slope}
    )


def resolve(spec: SubnetSpec) -> SubnetConstructor:
    """Turn a name or a constructor into a constructor.

    Args:
        spec: a registered name (default options) or any callable
            ``(c_in, c_out) -> nn.Module``.

    Raises:
        ValueError: unknown name.
        TypeError: neither a string nor a callable.

    Example:
        >>> resolve("dense")
        SubnetFactory(name='dense', options={})
        >>> resolve("dense")(12, 4).conv5.out_channels
        4
    """
    if isinstance(spec, str):
        return SubnetFactory(spec)
    if callable(spec):
        return spec
    raise InputTypeError(
        f"subnet must be a registered name {registered()} or a callable (c_in, c_out) -> nn.Module, "
        f"got {type(spec).__name__}"
    )
