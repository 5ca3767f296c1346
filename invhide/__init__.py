"""invhide: deep image hiding with invertible neural networks.

The user-facing names live here; the building blocks are in
:mod:`invhide.functional` (pure math), :mod:`invhide.modules` (FrEIA
invertible modules), :mod:`invhide.subnets` (subnet constructors),
:mod:`invhide.graph`, :mod:`invhide.hider` and :mod:`invhide.hinet`; training
and evaluation in :mod:`invhide.losses`, :mod:`invhide.metrics`,
:mod:`invhide.data` and :mod:`invhide.train`; files in :mod:`invhide.io` and
:mod:`invhide.checkpoint`.
"""

from invhide import checkpoint, data, functional, io, losses, metrics, modules, subnets, train
from invhide.checkpoint import load, save
from invhide.graph import InvertibleGraph
from invhide.hider import InvertibleHider
from invhide.hinet import HiNet
from invhide.modules import AffineCoupling, HidingCoupling, WaveletDownsampling, WaveletUpsampling

__all__ = [
    "AffineCoupling",
    "HiNet",
    "HidingCoupling",
    "InvertibleGraph",
    "InvertibleHider",
    "WaveletDownsampling",
    "WaveletUpsampling",
    "__version__",
    "checkpoint",
    "data",
    "functional",
    "io",
    "load",
    "losses",
    "metrics",
    "modules",
    "save",
    "subnets",
    "train",
]

__version__ = "0.1.0"
