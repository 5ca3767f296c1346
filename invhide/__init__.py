"""invhide: deep image hiding with invertible neural networks.

The user-facing names live here. The package is layered; each layer imports
only from the layers listed before it (see the architecture page of the
documentation):

1. :mod:`invhide.errors` and :mod:`invhide.checks`: the exceptions for user
   errors and the shared argument checks.
2. :mod:`invhide.nn`: the math and the invertible parts (wavelets, couplings,
   subnets, the FrEIA graph).
3. :mod:`invhide.io`: image files, atomic writes, safetensors model files,
   image folders as data.
4. :mod:`invhide.models`: :class:`InvertibleHider`, :class:`HiNet`, the
   reference checkpoints, inference on images of any size.
5. :mod:`invhide.evaluation`: metrics, the paper's Table 2, figures, speed.
6. :mod:`invhide.training`: losses, the trainer, recipes.
7. :mod:`invhide.cli`: the ``invhide`` command (not imported here).

:mod:`invhide.testing` holds invertibility assertions for people writing
their own modules.
"""

from invhide import checks, errors, evaluation, io, models, nn, training
from invhide.errors import InvhideError
from invhide.evaluation import metrics
from invhide.io import checkpoint
from invhide.io import datasets as data
from invhide.io.checkpoint import save
from invhide.models import HiNet, InvertibleHider
from invhide.models.registry import load
from invhide.nn import (
    AffineCoupling,
    HidingCoupling,
    InvertibleGraph,
    WaveletDownsampling,
    WaveletUpsampling,
    functional,
    modules,
    subnets,
)
from invhide.training import losses

__all__ = [
    "AffineCoupling",
    "HiNet",
    "HidingCoupling",
    "InvertibleGraph",
    "InvertibleHider",
    "InvhideError",
    "WaveletDownsampling",
    "WaveletUpsampling",
    "__version__",
    "checkpoint",
    "checks",
    "data",
    "errors",
    "evaluation",
    "functional",
    "io",
    "load",
    "losses",
    "metrics",
    "models",
    "modules",
    "nn",
    "save",
    "subnets",
    "training",
]

__version__ = "0.1.0"
