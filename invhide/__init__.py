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
   reference checkpoints, the model zoo (the shipped trained models),
   inference on images of any size.
5. :mod:`invhide.evaluation`: metrics, the paper's Table 2, figures, speed.
6. :mod:`invhide.training`: losses, the trainer, recipes.
7. :mod:`invhide.cli`: the ``invhide`` command (not imported here).

:mod:`invhide.testing` holds invertibility assertions for people writing
their own modules. Every other module is reached through its layer
(``invhide.nn.subnets``, ``invhide.io.checkpoint``...).

:func:`load` takes a shipped model's name or the path of a model file or
training run; :func:`save` writes a model file.

Example:
    >>> import tempfile, pathlib
    >>> path = invhide.save(invhide.HiNet(num_blocks=1), pathlib.Path(tempfile.mkdtemp()) / "m.safetensors")
    >>> type(invhide.load(path)).__name__
    'HiNet'
"""

from invhide import checks, errors, evaluation, io, models, nn, training
from invhide.errors import InvhideError
from invhide.io.checkpoint import save
from invhide.models import HiNet, InvertibleHider
from invhide.models.zoo import load
from invhide.nn import AffineCoupling, HidingCoupling, InvertibleGraph, WaveletDownsampling, WaveletUpsampling

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
    "checks",
    "errors",
    "evaluation",
    "io",
    "load",
    "models",
    "nn",
    "save",
    "training",
]

__version__ = "0.1.0"
