"""The reference code's checkpoints: import into invhide and export back.

The reference code (TomTomTommi/HiNet) saves ``{'net': state_dict, 'opt': ...}``
with keys ``module.model.inv{i}.{f,r,y}.conv{j}.{weight,bias}``, where ``f``
is the paper's phi, ``r`` its rho and ``y`` its eta. They map one to one onto
``nodes.coupling_{i}.{phi,rho,eta}.conv{j}.{weight,bias}`` of
:class:`~invhide.models.hinet.HiNet`. As the reference ``load()`` does, keys
containing ``tmp_var`` are dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from invhide.errors import InputError, MissingPathError
from invhide.io.checkpoint import state_mismatches
from invhide.models.hider import InvertibleHider
from invhide.models.hinet import HiNet

__all__ = ["from_official_state_dict", "load_official", "to_official_state_dict"]

_OFFICIAL_KEY = re.compile(r"^(?:module\.)?(?:model\.)?inv(\d+)\.([fry])\.(conv\d+\.(?:weight|bias))$")
_TO_OURS = {"f": "phi", "r": "rho", "y": "eta"}
_TO_OFFICIAL = {v: k for k, v in _TO_OURS.items()}
_OUR_KEY = re.compile(r"^nodes\.coupling_(\d+)\.(phi|rho|eta)\.(conv\d+\.(?:weight|bias))$")
# The reference load() filters these out of every checkpoint before load_state_dict.
_IGNORED = "tmp_var"


def load_official(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", cls: type[HiNet] = HiNet
) -> HiNet:
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
        raise MissingPathError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # garbage makes the weights-only unpickler raise almost anything
        raise InputError(f"{path}: not a readable PyTorch checkpoint ({error})") from error
    if isinstance(checkpoint, Mapping) and "net" in checkpoint:
        checkpoint = checkpoint["net"]
    if not isinstance(checkpoint, Mapping):
        raise InputError(f"{path}: expected a dict with a 'net' state dict, got {type(checkpoint).__name__}")
    try:
        state = from_official_state_dict(checkpoint)
        model = cls(**_infer_official_config(state), init="identity")
        model.to(dtype=next(iter(state.values())).dtype)
        _load_exact(model, state)
    except ValueError as error:
        raise InputError(f"{path}: {error}") from error
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
            if _IGNORED not in str(key):
                unknown.append(key)
            continue
        if not isinstance(value, Tensor):
            raise InputError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
        out[f"nodes.coupling_{int(match[1])}.{_TO_OURS[match[2]]}.{match[3]}"] = value
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:5])
        raise InputError(
            f"{len(unknown)} key(s) are not reference HiNet parameters (expected "
            f"'module.model.inv<i>.<f|r|y>.conv<j>.<weight|bias>'), e.g. {shown}"
        )
    if not out:
        raise InputError("the state dict holds no HiNet parameters")
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
            raise InputError(f"parameter {key!r} has no counterpart in the reference HiNet")
        out[f"module.model.inv{match[1]}.{_TO_OFFICIAL[match[2]]}.{match[3]}"] = value
    return out


def _infer_official_config(state: Mapping[str, Tensor]) -> dict[str, int]:
    blocks = sorted({int(_OUR_KEY.match(k)[1]) for k in state})  # type: ignore[index]
    if blocks != list(range(1, len(blocks) + 1)):
        raise InputError(f"blocks must be numbered 1..N without gaps, found {blocks}")
    try:
        phi_out = state["nodes.coupling_1.phi.conv5.weight"]
        rho_out = state["nodes.coupling_1.rho.conv5.weight"]
        growth = state["nodes.coupling_1.phi.conv1.weight"].shape[0]
    except KeyError as error:
        raise InputError(f"missing tensor {error.args[0]!r}") from error
    cover = phi_out.shape[0]
    if cover % 4 or rho_out.shape[0] % cover:
        raise InputError(f"branch widths {cover} and {rho_out.shape[0]} are not those of a wavelet-domain hider")
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
        raise InputError("checkpoint does not match the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
