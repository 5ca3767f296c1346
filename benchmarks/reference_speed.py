#!/usr/bin/env python
"""invhide's HiNet against the reference code's forward pass, side by side in one process.

Three models with the same weights hide one cover/secret pair, and reveal the
secret from the stego image with a fixed ``z``; hide and reveal are timed
separately:

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


def seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


Side = dict[str, Callable[[], torch.Tensor]]
"""One model's two timed calls: ``{"hide": ..., "reveal": ...}``, each returning its result."""
OPERATIONS = ("hide", "reveal")


def build_sides(seed: int, size: int) -> tuple[dict[str, Side], dict[str, str], torch.Tensor]:
    """The three models with the same weights, as ``{name: {"hide": f, "reveal": f}}``, their layouts, the cover."""
    reference = randomize_(ReferenceModel(num_blocks=16).eval(), seed)
    model = invhide.HiNet()  # as a user builds it; only the weights are loaded into it
    model.load_state_dict(from_official_state_dict(reference.state_dict()))
    model.eval()
    nchw = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    generator = torch.Generator().manual_seed(seed)
    cover, secret, z = torch.rand(3, 1, 3, size, size, generator=generator)
    z = z * 2 - 1  # a fixed stand-in for the lost part, image domain for invhide
    z_dwt = reference_dwt(z)  # and the same z in the DWT domain, where the reference code draws it
    with torch.no_grad():
        _, ref_stego_dwt, _ = reference.hide(cover, secret)
        stego, _ = model.hide(cover, secret)
    sides: dict[str, Side] = {
        "reference": {
            "hide": lambda: reference.hide(cover, secret)[0],
            "reveal": lambda: reference.reveal(ref_stego_dwt, z_dwt),
        }
    }
    for name, hider in (("invhide NCHW", nchw), ("invhide default", model)):
        sides[name] = {
            "hide": lambda hider=hider: hider.hide(cover, secret)[0],
            "reveal": lambda hider=hider: hider.reveal(stego, z=z),
        }
    layouts = {
        "reference": conv_layout(reference),
        "invhide NCHW": conv_layout(nchw),
        "invhide default": conv_layout(model),
    }
    return sides, layouts, cover


def timed(sides: dict[str, Side], repeat: int, warmup: int) -> dict[tuple[str, str], list[float]]:
    """Seconds per call of every side and operation, the rounds interleaving the sides in a rotating order."""
    names = list(sides)
    for _ in range(warmup):
        for name in names:
            for operation in OPERATIONS:
                sides[name][operation]()
    times: dict[tuple[str, str], list[float]] = {(n, o): [] for n in names for o in OPERATIONS}
    for round_ in range(repeat):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            for operation in OPERATIONS:
                times[name, operation].append(seconds(sides[name][operation]))
    return times


def report(
    times: dict[tuple[str, str], list[float]], flops: dict[tuple[str, str], float], layouts: dict[str, str]
) -> None:
    """One row per side and operation: median and fastest round, GFLOP/s and the speed-up over the reference."""
    print(
        f"{'side':<16} {'weights':<14} {'call':<7} {'ms':>8} {'GFLOP':>7} {'GFLOP/s':>8} {'speedup':>8}"
        f" {'min ms':>8} {'speedup':>8}   (median, then fastest round)"
    )
    for (name, operation), values in times.items():
        median, fastest = statistics.median(values), min(values)
        base = times["reference", operation]
        print(
            f"{name:<16} {layouts[name]:<14} {operation:<7} {median * 1e3:8.1f} {flops[name, operation] / 1e9:7.2f} "
            f"{flops[name, operation] / median / 1e9:8.1f} {statistics.median(base) / median:7.2f}x "
            f"{fastest * 1e3:8.1f} {min(base) / fastest:7.2f}x"
        )


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
    sides, layouts, cover = build_sides(args.seed, args.size)
    with torch.no_grad():
        outputs = {(n, o): side[o]() for n, side in sides.items() for o in OPERATIONS}
        flops = {(n, o): flops_per_call(side[o]) for n, side in sides.items() for o in OPERATIONS}
        times = timed(sides, args.repeat, args.warmup)
    print(f"hide, then reveal with a fixed z; median of {args.repeat} interleaved rounds after {args.warmup} warm-up")
    report(times, flops, layouts)
    for name in list(sides)[1:]:
        differences = [(outputs[name, o] - outputs["reference", o]).abs().max().item() for o in OPERATIONS]
        print(f"max |{name} - reference|: stego {differences[0]:.2e}, revealed secret {differences[1]:.2e}")
    stego = outputs["reference", "hide"]
    print(f"(stego differs from the cover by up to {(stego - cover).abs().max().item():.2f}: the weights do work)")


if __name__ == "__main__":
    main()
