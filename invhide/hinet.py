"""The HiNet preset and the import of the reference code's checkpoints.

:class:`HiNet` is an :class:`~invhide.InvertibleHider` with the paper's
configuration, assembled from the same public pieces: Haar wavelet in the
reference code's layout, 16 :class:`~invhide.modules.HidingCoupling` blocks,
:class:`~invhide.subnets.DenseSubnet` subnets, sigmoid soft clamp 2.0 and the
reference initialisation (every parameter ``0.01 * N(0, 1)``, the last
convolution of every subnet zero).

The reference code (TomTomTommi/HiNet) saves ``{'net': state_dict, 'opt': ...}``
with keys ``module.model.inv{i}.{f,r,y}.conv{j}.{weight,bias}``, where ``f``
is the paper's phi, ``r`` its rho and ``y`` its eta. They map one to one onto
``nodes.coupling_{i}.{phi,rho,eta}.conv{j}.{weight,bias}``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from invhide._state import build_from_config, state_mismatches
from invhide.hider import InvertibleHider
from invhide.subnets import Subnet, dense

__all__ = ["HiNet", "from_official_state_dict", "reference_init_", "to_official_state_dict"]

_OFFICIAL_KEY = re.compile(r"^(?:module\.)?(?:model\.)?inv(\d+)\.([fry])\.(conv\d+\.(?:weight|bias))$")
_TO_OURS = {"f": "phi", "r": "rho", "y": "eta"}
_TO_OFFICIAL = {v: k for k, v in _TO_OURS.items()}
_OUR_KEY = re.compile(r"^nodes\.coupling_(\d+)\.(phi|rho|eta)\.(conv\d+\.(?:weight|bias))$")


def reference_init_(module: nn.Module, scale: float = 0.01, generator: torch.Generator | None = None) -> None:
    """The reference HiNet initialisation, in place.

    Every parameter becomes ``scale * N(0, 1)``, drawn in ``named_parameters``
    order, then the output layer of every :class:`~invhide.subnets.Subnet` is
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
            raise ValueError(f"init must be 'reference' or 'identity', got {init!r}")
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

    @classmethod
    def from_official_checkpoint(cls, path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> HiNet:
        """Load a checkpoint saved by the reference HiNet code.

        The file is read with ``torch.load(weights_only=True)``, which refuses
        to run code. The number of blocks, the growth and the channels are
        read from the tensors.

        Args:
            path: a ``.pt``/``.pth`` file holding ``{'net': state_dict, ...}``
                or the bare state dict.
            map_location: where to load the tensors.

        Returns:
            A HiNet in eval mode, in the checkpoint's dtype, whose hide/reveal
            match the reference code's for the same weights.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not a PyTorch checkpoint, or its keys or
                shapes are not those of a reference HiNet.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        try:
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as error:  # garbage makes the weights-only unpickler raise almost anything
            raise ValueError(f"{path}: not a readable PyTorch checkpoint ({error})") from error
        if isinstance(checkpoint, Mapping) and "net" in checkpoint:
            checkpoint = checkpoint["net"]
        if not isinstance(checkpoint, Mapping):
            raise ValueError(f"{path}: expected a dict with a 'net' state dict, got {type(checkpoint).__name__}")
        try:
            state = from_official_state_dict(checkpoint)
            model = cls(**_infer_official_config(state), init="identity")
            model.to(dtype=next(iter(state.values())).dtype)
            _load_exact(model, state)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
        return model.to(map_location).eval()


def from_official_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a reference-code state dict to invhide's keys.

    Accepts keys with or without the ``module.`` (DataParallel) and ``model.``
    prefixes.

    Raises:
        ValueError: a key that is not a reference HiNet parameter, or a value
            that is not a tensor.

    Example:
        >>> from_official_state_dict({"module.model.inv3.y.conv2.bias": torch.zeros(1)}).keys()
        dict_keys(['nodes.coupling_3.eta.conv2.bias'])
    """
    out: dict[str, Tensor] = {}
    unknown = []
    for key, value in state.items():
        match = _OFFICIAL_KEY.match(str(key))
        if match is None:
            unknown.append(key)
            continue
        if not isinstance(value, Tensor):
            raise ValueError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
        out[f"nodes.coupling_{int(match[1])}.{_TO_OURS[match[2]]}.{match[3]}"] = value
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:5])
        raise ValueError(
            f"{len(unknown)} key(s) are not reference HiNet parameters (expected "
            f"'module.model.inv<i>.<f|r|y>.conv<j>.<weight|bias>'), e.g. {shown}"
        )
    if not out:
        raise ValueError("the state dict holds no HiNet parameters")
    return out


def to_official_state_dict(model: InvertibleHider) -> dict[str, Tensor]:
    """The reference code's keys (``module.model.inv{i}.{f,r,y}...``) for a HiNet's weights.

    Example:
        >>> sorted(to_official_state_dict(HiNet(num_blocks=1)))[:2]
        ['module.model.inv1.f.conv1.bias', 'module.model.inv1.f.conv1.weight']
    """
    out = {}
    for key, value in model.state_dict().items():
        match = _OUR_KEY.match(key)
        if match is None:
            raise ValueError(f"parameter {key!r} has no counterpart in the reference HiNet")
        out[f"module.model.inv{match[1]}.{_TO_OFFICIAL[match[2]]}.{match[3]}"] = value
    return out


def _infer_official_config(state: Mapping[str, Tensor]) -> dict[str, int]:
    blocks = sorted({int(_OUR_KEY.match(k)[1]) for k in state})  # type: ignore[index]
    if blocks != list(range(1, len(blocks) + 1)):
        raise ValueError(f"blocks must be numbered 1..N without gaps, found {blocks}")
    try:
        phi_out = state["nodes.coupling_1.phi.conv5.weight"]
        rho_out = state["nodes.coupling_1.rho.conv5.weight"]
        growth = state["nodes.coupling_1.phi.conv1.weight"].shape[0]
    except KeyError as error:
        raise ValueError(f"missing tensor {error.args[0]!r}") from error
    cover = phi_out.shape[0]
    if cover % 4 or rho_out.shape[0] % cover:
        raise ValueError(f"branch widths {cover} and {rho_out.shape[0]} are not those of a wavelet-domain hider")
    return {
        "num_blocks": len(blocks),
        "channels": cover // 4,
        "num_secrets": rho_out.shape[0] // cover,
        "growth": int(growth),
    }


def _load_exact(model: nn.Module, state: Mapping[str, Tensor]) -> None:
    """``load_state_dict(strict=True)`` with one clear message for every mismatch."""
    problems = state_mismatches(model.state_dict(), state)
    if problems:
        raise ValueError("checkpoint does not match the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
