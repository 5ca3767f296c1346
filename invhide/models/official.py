"""The reference code's checkpoints: import into invhide and export back.

The reference code (TomTomTommi/HiNet) saves ``{'net': state_dict, 'opt': ...}``
(``train.py``, lines 207-212) with keys
``module.model.inv{i}.{f,r,y}.conv{j}.{weight,bias}``, where ``f`` is the
paper's phi, ``r`` its rho and ``y`` its eta. They map one to one onto
``nodes.coupling_{i}.{phi,rho,eta}.conv{j}.{weight,bias}`` of
:class:`~invhide.models.hinet.HiNet`.

:func:`load_official` reads the checkpoints the reference code writes and its
``load()`` reads (``train.py`` lines 63-70, ``test.py`` lines 16-23): a
``torch.save`` file, in the zip format or the legacy one of the PyTorch 1.0
the reference code names (its README, line 16), holding a dict whose
``'net'`` entry is the state dict. Like that ``load()``, it drops every key
containing ``tmp_var``; the optimizer state (``'opt'``) is not used. It also
accepts a bare state dict and keys without the ``module.`` (DataParallel) and
``model.`` prefixes.

Unlike that ``load()``, which unpickles with full trust, it refuses any file
that asks the unpickler to run code. And it refuses, with a
:class:`~invhide.errors.FileFormatError` naming the file and the tensor, what
would give a broken model even where the reference ``load_state_dict`` would
cast or copy it: weights that are not floating point, NaN or infinite weights
(a checkpoint saved after the training loss exploded may hold them), and
missing, extra or wrongly shaped tensors.
"""

from __future__ import annotations

import functools
import os
import pickle
import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from invhide.checks import device as check_device
from invhide.errors import FileFormatError, InputError, IsAFolderError, MissingPathError, describe, path_error
from invhide.io.checkpoint import state_mismatches
from invhide.models.hider import InvertibleHider
from invhide.models.hinet import HiNet

__all__ = ["from_official_state_dict", "load_official", "to_official_state_dict"]

_OFFICIAL_KEY = re.compile(r"^(?:module\.)?(?:model\.)?inv(\d+)\.([fry])\.(conv\d+\.(?:weight|bias))$")
_TO_OURS = {"f": "phi", "r": "rho", "y": "eta"}
_TO_OFFICIAL = {v: k for k, v in _TO_OURS.items()}
_OUR_KEY = re.compile(r"^nodes\.coupling_(\d+)\.(phi|rho|eta)\.(conv\d+\.(?:weight|bias))$")
# The reference load() keeps only the keys without this substring (train.py line 65, test.py line 18).
_IGNORED = "tmp_var"
# What torch's weights-only unpickler says when a pickle names a function or class it will not import.
_REFUSED_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)")


def load_official(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", cls: type[HiNet] = HiNet
) -> HiNet:
    """Load a checkpoint saved by the reference HiNet code: the one way to import one.

    The file is read with ``torch.load(weights_only=True)``, which builds
    tensors, numbers and containers and never runs code from the file. The
    number of blocks, the growth and the channels are read from the tensors;
    the model takes the checkpoint's floating-point dtype (the widest, when
    the tensors differ).

    Args:
        path: a ``.pt``/``.pth`` file holding ``{'net': state_dict, ...}``
            (what the reference ``train.py`` saves) or the bare state dict.
        map_location: the device the model goes to (the file is read on the CPU).
        cls: the class to build, :class:`~invhide.models.hinet.HiNet` or a
            subclass with the same constructor.

    Returns:
        A model of class ``cls`` in eval mode, in the checkpoint's dtype,
        whose hide/reveal match the reference code's for the same weights.

    Raises:
        MissingPathError: no such file.
        IsAFolderError: ``path`` is a folder.
        AccessError: the file cannot be read.
        InputError: ``map_location`` is not a device this machine has.
        FileFormatError: the file is not a PyTorch checkpoint, asks to run
            code, or does not hold a reference HiNet's weights (keys, shapes,
            a tensor that is not floating point or not finite; the message
            names it).

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.pt"
        >>> torch.save({"net": to_official_state_dict(HiNet(num_blocks=2)), "opt": {}}, path)
        >>> load_official(path).num_blocks
        2
    """
    device = check_device("map_location", map_location)
    path = os.fspath(path)
    checkpoint = _unpickle(path)
    if isinstance(checkpoint, Mapping) and "net" in checkpoint:
        checkpoint = checkpoint["net"]
    if not isinstance(checkpoint, Mapping):
        raise FileFormatError(
            f"{path}: expected a dict with a 'net' state dict (the reference train.py's format) or a bare state "
            f"dict, got {type(checkpoint).__name__}"
        )
    try:
        state = from_official_state_dict(checkpoint)
        model = cls(**_infer_official_config(state), init="identity")
        model.to(dtype=functools.reduce(torch.promote_types, (tensor.dtype for tensor in state.values())))
        _load_exact(model, state)
    except InputError as error:
        raise FileFormatError(f"{path}: {error}") from error
    return model.to(device).eval()


def _unpickle(path: str) -> object:
    """What ``torch.load(weights_only=True)`` reads from the file ``path``, on the CPU; one-line errors."""
    if os.path.isdir(path):
        raise IsAFolderError(f"{path}: a folder, not a reference HiNet checkpoint file")
    if not os.path.exists(path):
        raise MissingPathError(f"{path}: no such checkpoint file")
    if os.path.getsize(path) == 0:
        raise FileFormatError(f"{path}: an empty file, not a PyTorch checkpoint")
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below; only open()'s errors are about the path
    except OSError as error:
        raise path_error(error, f"{path}: cannot read the checkpoint ({describe(error)})") from error
    try:
        with file:
            # On the CPU first: the reference code saves CUDA tensors, and a bad device is not a bad file.
            return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _REFUSED_GLOBAL.search(str(error))
        if refused is not None:
            raise FileFormatError(
                f"{path}: not a plain tensor checkpoint: it asks to run {refused[1]!r} when loaded, and invhide "
                "refuses to run code from a checkpoint file"
            ) from None
        raise FileFormatError(f"{path}: not a readable PyTorch checkpoint ({_unpickler_reason(error)})") from None
    except Exception as error:  # garbage makes torch.load raise almost anything (EOFError, OSError, RuntimeError...)
        reason = describe(error)
        if reason != type(error).__name__:
            reason = f"{type(error).__name__}: {reason}"
        raise FileFormatError(f"{path}: not a readable PyTorch checkpoint ({reason})") from None


def from_official_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a reference-code state dict to invhide's keys.

    Accepts keys with or without the ``module.`` (DataParallel) and ``model.``
    prefixes, and drops every key containing ``tmp_var``, as the reference
    ``load()`` does (``train.py`` line 65).

    Args:
        state: ``{'module.model.inv{i}.{f,r,y}.conv{j}.{weight,bias}': tensor}``.

    Returns:
        ``{'nodes.coupling_{i}.{phi,rho,eta}.conv{j}.{weight,bias}': tensor}``,
        the same tensors (not copies).

    Raises:
        InputError: a key that is not a reference HiNet parameter, a value
            that is not a tensor, a tensor that is not floating point or
            holds NaN or infinite values, or no parameters at all.

    Example:
        >>> from_official_state_dict({"module.model.inv3.y.conv2.bias": torch.zeros(1), "tmp_var": 0}).keys()
        dict_keys(['nodes.coupling_3.eta.conv2.bias'])
    """
    out: dict[str, Tensor] = {}
    unknown = []
    for key, value in state.items():
        match = _OFFICIAL_KEY.match(str(key))
        if match is not None:
            out[f"nodes.coupling_{int(match[1])}.{_TO_OURS[match[2]]}.{match[3]}"] = _weight(key, value)
        elif _IGNORED not in str(key):
            unknown.append(key)
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:5])
        raise InputError(
            f"{len(unknown)} key(s) are not reference HiNet parameters (expected "
            f"'module.model.inv<i>.<f|r|y>.conv<j>.<weight|bias>'), e.g. {shown}"
        )
    if not out:
        raise InputError("the state dict holds no HiNet parameters")
    return out


def _weight(key: str, value: object) -> Tensor:
    """``value`` if it is a finite floating-point tensor; the errors name the checkpoint's ``key``."""
    if not isinstance(value, Tensor):
        raise InputError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
    if not value.is_floating_point():
        raise InputError(
            f"checkpoint tensor {key!r} holds {value.dtype} values; a reference HiNet's weights are floating point"
        )
    if not bool(torch.isfinite(value).all()):
        raise InputError(
            f"checkpoint tensor {key!r} holds NaN or infinite values (saved after the training loss exploded?)"
        )
    return value


def to_official_state_dict(model: InvertibleHider) -> dict[str, Tensor]:
    """The reference code's keys (``module.model.inv{i}.{f,r,y}...``) for a HiNet's weights.

    Raises:
        InputError: a parameter with no counterpart in the reference HiNet
            (another subnet or layout).

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


def _unpickler_reason(error: pickle.UnpicklingError) -> str:
    """The unpickler's own reason, without torch's advice to load with ``weights_only=False``."""
    advice = ("weights_only", "Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [line.strip() for line in str(error).splitlines()]
    reason = " ".join(line for line in lines if line and not any(words in line for words in advice))
    return reason or "unreadable pickle data"


def _conv_weight(state: Mapping[str, Tensor], key: str) -> Tensor:
    """``state[key]``, checked to be a non-empty 4-D convolution weight; messages name the reference key."""
    match = _OUR_KEY.match(key)
    official = f"module.model.inv{match[1]}.{_TO_OFFICIAL[match[2]]}.{match[3]}"  # type: ignore[index]
    if key not in state:
        raise InputError(f"missing tensor {official!r} ({key!r} in invhide)")
    weight = state[key]
    if weight.dim() != 4 or 0 in weight.shape:
        raise InputError(f"tensor {official!r} has shape {tuple(weight.shape)}, not that of a convolution weight")
    return weight


def _infer_official_config(state: Mapping[str, Tensor]) -> dict[str, int]:
    blocks = sorted({int(_OUR_KEY.match(k)[1]) for k in state})  # type: ignore[index]
    if blocks != list(range(1, len(blocks) + 1)):
        raise InputError(f"blocks must be numbered 1..N without gaps, found {blocks}")
    phi_out = _conv_weight(state, "nodes.coupling_1.phi.conv5.weight")
    rho_out = _conv_weight(state, "nodes.coupling_1.rho.conv5.weight")
    growth = _conv_weight(state, "nodes.coupling_1.phi.conv1.weight").shape[0]
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
