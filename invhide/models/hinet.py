"""The HiNet preset: the paper's configuration, assembled from the public pieces.

:class:`HiNet` is an :class:`~invhide.InvertibleHider` with the paper's
configuration, assembled from the same public pieces: Haar wavelet in the
reference code's layout, 16 :class:`~invhide.nn.modules.HidingCoupling` blocks,
:class:`~invhide.nn.subnets.DenseSubnet` subnets, sigmoid soft clamp 2.0 and the
reference initialisation (every parameter ``0.01 * N(0, 1)``, the last
convolution of every subnet zero).

The reference code's checkpoints load through :func:`invhide.models.official.load_official`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from invhide.checks import build_from_config
from invhide.errors import InputError
from invhide.io.checkpoint import register_model_class
from invhide.models.hider import InvertibleHider
from invhide.nn.subnets import Subnet, dense

__all__ = ["HiNet", "reference_init_"]


def reference_init_(module: nn.Module, scale: float = 0.01, generator: torch.Generator | None = None) -> None:
    """The reference HiNet initialisation, in place.

    Every parameter becomes ``scale * N(0, 1)``, drawn in ``named_parameters``
    order, then the output layer of every :class:`~invhide.nn.subnets.Subnet` is
    zeroed so each coupling starts as the identity.

    Args:
        module: any module; usually a hider.
        scale: standard deviation (reference: 0.01).
        generator: CPU generator for reproducible draws.

    Example:
        >>> net = HiNet(num_blocks=1, init="identity")
        >>> reference_init_(net, generator=torch.Generator().manual_seed(0))
        >>> round(net.nodes.coupling_1.phi.conv1.weight.std().item(), 3)
        0.01
        >>> net.nodes.coupling_1.phi.conv5.weight.abs().max().item()
        0.0
    """
    with torch.no_grad():
        for param in module.parameters():
            noise = torch.randn(param.shape, generator=generator)
            param.copy_(noise * scale)
        for sub in module.modules():
            if isinstance(sub, Subnet):
                sub.zero_output_()


class HiNet(InvertibleHider):
    """HiNet (Jing et al., ICCV 2021) with the paper's configuration.

    Args:
        num_blocks: coupling blocks (paper: 16).
        num_secrets: secret images per cover (paper: 1).
        channels: image channels (paper: 3).
        clamp: soft-clamp bound (paper: 2.0).
        growth: dense-block growth (paper: 32).
        init: ``"reference"`` (the reference code's initialisation) or
            ``"identity"`` (PyTorch's default initialisation with zeroed
            output layers).
        generator: seeds the reference initialisation.
        memory_saving: recompute activations through the inverse when
            training (see :class:`~invhide.InvertibleHider`).

    Example:
        >>> model = HiNet(num_blocks=2, generator=torch.Generator().manual_seed(0))
        >>> cover, secret = torch.rand(2, 1, 3, 32, 32)
        >>> stego, lost = model.hide(cover, secret)
        >>> bool(torch.allclose(model.reveal(stego, z=lost), secret, atol=1e-5))
        True

    References:
        Jing, Deng, Xu, Zhang, Wei: "HiNet: Deep Image Hiding by Invertible
        Network", ICCV 2021; code at github.com/TomTomTommi/HiNet.
    """

    def __init__(
        self,
        num_blocks: int = 16,
        num_secrets: int = 1,
        channels: int = 3,
        clamp: float = 2.0,
        growth: int = 32,
        init: str = "reference",
        generator: torch.Generator | None = None,
        memory_saving: bool = False,
    ) -> None:
        if init not in ("reference", "identity"):
            raise InputError(f"init must be 'reference' or 'identity', got {init!r}")
        super().__init__(
            num_secrets=num_secrets,
            num_blocks=num_blocks,
            subnet=dense(growth=growth, depth=5, negative_slope=0.01),
            wavelet="haar",
            clamp=clamp,
            clamp_activation="sigmoid",
            channels=channels,
            layout="hinet",
            memory_saving=memory_saving,
        )
        self.growth = growth
        if init == "reference":
            reference_init_(self, generator=generator)

    def config(self) -> dict[str, Any]:
        """A JSON-ready description; :meth:`from_config` rebuilds the architecture.

        Example:
            >>> HiNet(num_blocks=4, init="identity").config()
            {'class': 'HiNet', 'num_blocks': 4, 'num_secrets': 1, 'channels': 3, 'clamp': 2.0, 'growth': 32}
        """
        return {
            "class": "HiNet",
            "num_blocks": self.num_blocks,
            "num_secrets": self.num_secrets,
            "channels": self.channels,
            "clamp": self.clamp,
            "growth": self.growth,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HiNet:
        """Build a HiNet from :meth:`config`'s output (identity-initialised: load weights next)."""
        return build_from_config(cls, config, init="identity")


register_model_class("HiNet", HiNet.from_config)
