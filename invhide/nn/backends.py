"""Imports of third-party packages that need help to import.

pytorch-wavelets 1.3 imports ``pkg_resources`` (through its dual-tree
sub-package) without declaring setuptools, and ``pkg_resources`` is gone from
setuptools 82 and from fresh Python 3.12 virtual environments. invhide only
needs the separable DWT of pytorch-wavelets, so when ``pkg_resources`` is not
already imported, a minimal stand-in offering the one function pytorch-wavelets
calls (``resource_stream``) is made visible for the duration of that import
and removed again right after, leaving ``sys.modules`` as it was. This works
with every setuptools version and never downgrades the user's setuptools.
"""

from __future__ import annotations

import functools
import importlib
import importlib.resources
import sys
import types
from typing import IO

__all__ = ["pytorch_wavelets_lowlevel"]


def _resource_stream(package: str, resource: str) -> IO[bytes]:
    """``pkg_resources.resource_stream`` on top of ``importlib.resources``."""
    return importlib.resources.files(package).joinpath(resource).open("rb")


@functools.cache
def pytorch_wavelets_lowlevel() -> types.ModuleType:
    """Return ``pytorch_wavelets.dwt.lowlevel``, importing it on first use.

    Raises:
        ImportError: pytorch-wavelets or PyWavelets is not installed.
    """
    name = "pytorch_wavelets.dwt.lowlevel"
    if sys.modules.get("pkg_resources") is not None:
        return importlib.import_module(name)
    missing = object()
    previous = sys.modules.get("pkg_resources", missing)
    shim = types.ModuleType("pkg_resources")
    shim.resource_stream = _resource_stream  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = shim
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        raise ImportError(
            f"non-Haar wavelets need pytorch-wavelets and PyWavelets "
            f"(pip install pytorch-wavelets PyWavelets); import failed: {error}"
        ) from error
    finally:
        if previous is missing:
            del sys.modules["pkg_resources"]
        else:
            sys.modules["pkg_resources"] = previous  # type: ignore[assignment]
