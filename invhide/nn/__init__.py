"""The math and the invertible parts: everything a hider is built from.

Inside this layer the imports run one way, down this list:

- :mod:`invhide.nn.backends`: the one third-party import that needs help
  (pytorch-wavelets' low-level DWT).
- :mod:`invhide.nn.functional`: pure tensor math (wavelet layouts, soft
  clamps, the coupling equations, 8-bit rounding); no modules.
- :mod:`invhide.nn.subnets`: the subnetworks of the couplings and the
  constructors that build them.
- :mod:`invhide.nn.keys`: keys expanded with SHAKE-256 into permutations and
  sign flips; :class:`~invhide.nn.keys.KeyedPermutation`, keyed at call time.
- :mod:`invhide.nn.modules`: FrEIA ``InvertibleModule`` wrappers of the math
  (wavelet down/upsampling, affine couplings).
- :mod:`invhide.nn.graph`: FrEIA nodes run as one module, with name-keyed
  parameters, conditions and memory-saving backpropagation.
- :mod:`invhide.nn.refiners`: the one part that is not invertible, an optional
  learned refiner of revealed secrets (beside the graph, never in it).
"""

from invhide.nn import backends, functional, graph, keys, modules, refiners, subnets
from invhide.nn.graph import InvertibleGraph
from invhide.nn.modules import AffineCoupling, HidingCoupling, WaveletDownsampling, WaveletUpsampling

__all__ = [
    "AffineCoupling",
    "HidingCoupling",
    "InvertibleGraph",
    "WaveletDownsampling",
    "WaveletUpsampling",
    "backends",
    "functional",
    "graph",
    "keys",
    "modules",
    "refiners",
    "subnets",
]
