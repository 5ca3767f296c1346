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

import os as _os
import signal as _signal
import sys as _sys


def _exit_interrupted(signum: int, frame: object) -> None:
    """Ctrl-C while the `invhide` command loads: nothing was done yet, so end at once, in one line.

    The process ends killed by SIGINT, as an interrupted program should (a
    shell reports status 130). Raising KeyboardInterrupt there instead could
    leave a half-imported module behind it (numpy, scipy), whose next import
    fails with another error and a long traceback.
    :func:`invhide.cli.main.main` puts the default handler back as it starts.
    """
    print("invhide: interrupted", file=_sys.stderr, flush=True)
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    _os.kill(_os.getpid(), _signal.SIGINT)


# The `invhide` command (its console script, or `python -m invhide.cli`: argv[0] is "-m" while the package loads),
# where SIGINT has its default handler (not ignored, not the caller's own): Ctrl-C ends it at once until it runs.
_argv0 = (getattr(_sys, "argv", None) or [""])[0]
if (_argv0 == "-m" or _os.path.basename(_argv0).partition(".")[0] in ("invhide", "invhide-script")) and (
    _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler
):
    _signal.signal(_signal.SIGINT, _exit_interrupted)

from invhide import checks, errors, evaluation, io, models, nn, training  # noqa: E402
from invhide.errors import InvhideError  # noqa: E402
from invhide.io.checkpoint import save  # noqa: E402
from invhide.models import HiNet, InvertibleHider  # noqa: E402
from invhide.models.zoo import load  # noqa: E402
from invhide.nn import (  # noqa: E402
    AffineCoupling,
    HidingCoupling,
    InvertibleGraph,
    WaveletDownsampling,
    WaveletUpsampling,
)

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
