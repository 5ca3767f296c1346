"""Hiders: the invertible networks users train and apply.

- :mod:`invhide.models.hider`: :class:`~invhide.models.hider.InvertibleHider`,
  a hider assembled from FrEIA nodes.
- :mod:`invhide.models.hinet`: the :class:`~invhide.models.hinet.HiNet`
  preset and the reference code's initialisation.
- :mod:`invhide.models.official`: import and export of the reference code's
  checkpoints.
- :mod:`invhide.models.inference`: hiding and revealing images of any size,
  in tiles.
- :mod:`invhide.models.zoo`: the model zoo, the trained models shipped in the
  package, loaded by name with their SHA-256 checked.

Importing this package registers its model classes with
:func:`invhide.io.checkpoint.register_model_class`, so :func:`invhide.load`
rebuilds them from their config.
"""

from invhide.models import hider, hinet, inference, official, zoo
from invhide.models.hider import InvertibleHider
from invhide.models.hinet import HiNet

__all__ = ["HiNet", "InvertibleHider", "hider", "hinet", "inference", "official", "zoo"]
