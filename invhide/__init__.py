"""invhide: deep image hiding with invertible neural networks.

The user-facing names live here; the building blocks are in
:mod:`invhide.functional` (pure math), :mod:`invhide.modules` (FrEIA
invertible modules), :mod:`invhide.subnets` (subnet constructors),
:mod:`invhide.graph`, :mod:`invhide.hider` and :mod:`invhide.hinet`.
"""

from invhide import functional, modules, subnets
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
    "functional",
    "modules",
    "subnets",
]

__version__ = "0.1.0"
