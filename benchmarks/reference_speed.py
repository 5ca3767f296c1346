#!/usr/bin/env python
"""invhide's HiNet against the reference code's forward pass, side by side in one process.

Three models with the same weights hide one cover/secret pair and reveal the
secret from the stego image with a fixed ``z``:

* ``reference``: the transcription of the reference code (TomTomTommi/HiNet) in
  ``tests/reference_hinet.py``, run as its ``test.py`` runs it: NCHW, the 16
  blocks on the concatenated DWT, the reveal from the float DWT-domain stego;
* ``invhide NCHW``: ``invhide.HiNet()`` moved back to the default layout with
  ``.to(memory_format=torch.contiguous_format)``;
* ``invhide default``: ``invhide.HiNet()`` as built, nothing done to it but
  loading the weights.

The weights are the reference model's, drawn at random away from the identity
(a fresh HiNet is the identity map) and mapped onto invhide's names with
``invhide.models.official.from_official_state_dict``. Everything runs in
float32 under ``torch.no_grad()``, batch 1. The timed rounds interleave the
three sides (the order rotating from round to round) so that a change in the
machine's load hits all of them alike; the figures are medians over the rounds
after a warm-up. FLOPs are counted by ``torch.utils.flop_counter`` (2 per
multiply-add).

A benchmark measures and prints; it never asserts a time.

python benchmarks/reference_speed.py               # 256x256, 7 rounds
python benchmarks/reference_speed.py --size 512 --repeat 5
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the transcription lives beside the tests

from reference_hinet import ReferenceModel
from test_functional import reference_dwt

import invhide
from invhide.evaluation.speed import flops_per_call
from invhide.models.official import from_official_state_dict
from invhide.testing import randomize_

Pair = Callable[[], tuple[torch.Tensor, torch.Tensor]]


def cpu_name() -> str:
    """The ``Model name`` line of ``lscpu`` (or ``/proc/cpuinfo``), else the platform's processor."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    try:
        with open("/proc/cpuinfo") as file:
            return next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def conv_layout(model: torch.nn.Module) -> str:
    """``"channels-last"`` or ``"NCHW"``: how the model's convolution weights are stored."""
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in weights):
        return "channels-last"
    return "NCHW" if all(w.is_contiguous() for w in weights) else "mixed"


def seconds(function: Pair) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="image height and width (even; default 256)")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds, each timing every side once (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights and the images (default 0)")
    args = parser.parse_args()
    if args.size < 2 or args.size % 2 or args.repeat < 1 or args.warmup < 0:
        parser.error("--size must be even and at least 2, --repeat at least 1, --warmup at least 0")

    print(
        f"machine: {cpu_name()}; {os.cpu_count()} logical CPUs; torch {torch.__version__}; "
        f"{torch.get_num_threads()} torch threads; float32; batch 1; {args.size}x{args.size}"
    )

    reference = ReferenceModel(num_blocks=16).eval()
    randomize_(reference, args.seed)
    model = invhide.HiNet()  # as a user builds it; only the weights are loaded into it
    model.load_state_dict(from_official_state_dict(reference.state_dict()))
    model.eval()
    nchw = copy.deepcopy(model).to(memory_format=torch.contiguous_format)

    generator = torch.Generator().manual_seed(args.seed)
    cover, secret, z = torch.rand(3, 1, 3, args.size, args.size, generator=generator)
    z = z * 2 - 1  # a fixed stand-in for the lost part, image domain for invhide
    z_dwt = reference_dwt(z)  # and the same z in the DWT domain, where the reference code draws it

    def reference_pair() -> tuple[torch.Tensor, torch.Tensor]:
        stego, stego_dwt, _ = reference.hide(cover, secret)
        return stego, reference.reveal(stego_dwt, z_dwt)

    def invhide_pair(hider: invhide.HiNet) -> Pair:
        def pair() -> tuple[torch.Tensor, torch.Tensor]:
            stego, _ = hider.hide(cover, secret)
            return stego, hider.reveal(stego, z=z)

        return pair

    sides: dict[str, tuple[Pair, str]] = {
        "reference": (reference_pair, conv_layout(reference)),
        "invhide NCHW": (invhide_pair(nchw), conv_layout(nchw)),
        "invhide default": (invhide_pair(model), conv_layout(model)),
    }
    names = list(sides)
    with torch.no_grad():
        outputs = {name: function() for name, (function, _) in sides.items()}
        flops = {name: flops_per_call(function) for name, (function, _) in sides.items()}
        for _ in range(args.warmup):
            for name in names:
                sides[name][0]()
        times: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(args.repeat):
            for name in names[round_ % 3 :] + names[: round_ % 3]:
                times[name].append(seconds(sides[name][0]))

    print(f"hide + reveal of one pair; median of {args.repeat} interleaved rounds after {args.warmup} warm-up rounds")
    base, base_min = statistics.median(times["reference"]), min(times["reference"])
    print(
        f"{'side':<16} {'weights':<14} {'ms/pair':>8} {'GFLOP':>7} {'GFLOP/s':>8} {'speedup':>8}"
        f" {'min ms':>8} {'GFLOP/s':>8} {'speedup':>8}   (median, then fastest round)"
    )
    for name in names:
        median, fastest = statistics.median(times[name]), min(times[name])
        print(
            f"{name:<16} {sides[name][1]:<14} {median * 1e3:8.1f} {flops[name] / 1e9:7.2f} "
            f"{flops[name] / median / 1e9:8.1f} {base / median:7.2f}x {fastest * 1e3:8.1f} "
            f"{flops[name] / fastest / 1e9:8.1f} {base_min / fastest:7.2f}x"
        )
    ref_stego, ref_recovered = outputs["reference"]
    for name in names[1:]:
        stego, recovered = outputs[name]
        print(
            f"max |{name} - reference|: stego {(stego - ref_stego).abs().max().item():.2e}, "
            f"revealed secret {(recovered - ref_recovered).abs().max().item():.2e}"
        )
    print(f"(stego differs from the cover by up to {(ref_stego - cover).abs().max().item():.2f}: the weights do work)")


if __name__ == "__main__":
    main()
