#!/usr/bin/env python
"""Which ``z`` should the reveal stand in for the lost part? Zeros, one draw of N(0, 1), or the mean of draws.

The receiver does not have ``lost``; training reveals with ``z ~ N(0, 1)``
(HiNet's protocol), so the reverse pass learns to answer any draw. This
benchmark reveals every shipped model's 8-bit PNG stegos of ``--pairs-dir``
(kodak24 by default, 256x256 centre crops, a keyed model under the public
key) three ways and prints the secret's mean RGB PSNR for each, clamped to
``[0, 1]`` as :func:`invhide.models.inference.reveal` returns it and
``invhide reveal`` writes it (the evaluation tables measure unclamped):

- ``zeros``: ``z = 0``, the mean of the training draws (the reveal's default);
- ``one draw``: ``z`` from ``N(0, 1)``, one seeded draw per pair (the default before);
- ``mean of N draws``: the average of ``--draws`` reveals, each with its own draw
  (a Monte Carlo estimate of the least-squares reveal over the draws).

With ``--checks``, it also measures, for the default model over the
``--check-sets`` image sets (256x256 centre crops), what the commands' checks
see now that they reveal with zeros: the secret's PSNR from each 8-bit stego
(:func:`invhide.models.inference.verify`, ``invhide hide``'s self-check), and
:func:`invhide.models.inference.blur_agreement` (``invhide reveal``'s test for
an image that holds nothing the model hid) of the stegos, of the same stegos
re-encoded as JPEG (quality 95 and 100) and lossy WebP (quality 90), of
the plain photographs (the covers), and of the stegos of uniform secrets
(black, grey, white, a solid colour, in each set's first six covers), as :data:`NOT_A_STEGO_PSNR`'s docstring
reports them.

python benchmarks/stand_in.py --checks --json benchmarks/results/stand-in.json

A benchmark measures and prints; it never asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings
from pathlib import Path

import numpy as np
import torch
from _shared import data_folder

import invhide
from invhide.evaluation import channels as real
from invhide.evaluation.metrics import psnr
from invhide.io.datasets import evaluation_pairs
from invhide.models import inference, zoo
from invhide.models.hider import PublicKeyWarning
from invhide.nn.functional import quantize_8bit


def reveals(model: torch.nn.Module, pairs: list, draws: int) -> dict[str, float]:
    """Mean secret PSNR (RGB, dB) over ``pairs`` for zeros, one draw, and the mean of ``draws`` draws."""
    rows: dict[str, list[float]] = {"zeros": [], "one draw": [], f"mean of {draws} draws": []}
    for index, (cover, secret) in enumerate(pairs):
        stego = quantize_8bit(inference.hide(model, cover, secret))
        drawn = [
            inference.reveal(model, stego, generator=torch.Generator().manual_seed(1000 * index + d))
            for d in range(draws)
        ]
        rows["zeros"].append(psnr(inference.reveal(model, stego)[None], secret[None]).item())
        rows["one draw"].append(psnr(drawn[0][None], secret[None]).item())
        rows[f"mean of {draws} draws"].append(psnr(torch.stack(drawn).mean(0)[None], secret[None]).item())
    return {name: statistics.fmean(values) for name, values in rows.items()}


UNIFORM_COVERS = 6
"""Covers of each set that also hide each of :data:`UNIFORM_SECRETS` in the checks."""
UNIFORM_SECRETS = ((0.0, 0.0, 0.0), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), (0.8, 0.2, 0.1))
"""Flat secrets (RGB levels): black, mid-grey, white, a solid orange-red."""


def checks_table(model: torch.nn.Module, sets: list[str]) -> dict[str, dict[str, float]]:
    """What ``invhide hide``'s self-check and ``invhide reveal``'s test measure: the secret's PSNR (dB) revealed from
    each 8-bit stego (:func:`verify`), and :func:`blur_agreement` (dB) of the stegos, their lossy re-encodes and
    plain photographs; min, deciles, max, and how many reach :data:`NOT_A_STEGO_PSNR`."""
    found: dict[str, list[float]] = {
        "verify: secret from the 8-bit stego": [],
        "blur_agreement: stego (8-bit PNG)": [],
        "blur_agreement: stego as JPEG 95 or 100, WebP 90": [],
        "blur_agreement: photograph": [],
        "blur_agreement: stego of a uniform secret": [],
    }
    for name in sets:
        pairs = evaluation_pairs(data_folder(name), size=256)
        for cover, secret in pairs:
            stego = quantize_8bit(inference.hide(model, cover, secret))
            checked = inference.verify(model, cover, secret, stego)
            found["verify: secret from the 8-bit stego"].append(checked.secret_psnr)
            found["blur_agreement: stego (8-bit PNG)"].append(inference.blur_agreement(model, stego))
            for codec, quality in ((real.jpeg, 95), (real.jpeg, 100), (real.webp, 90)):
                found["blur_agreement: stego as JPEG 95 or 100, WebP 90"].append(
                    inference.blur_agreement(model, codec(stego, quality))
                )
            found["blur_agreement: photograph"].append(inference.blur_agreement(model, cover))
        for cover, _ in pairs[:UNIFORM_COVERS]:
            for level in UNIFORM_SECRETS:
                uniform = torch.tensor(level).view(3, 1, 1).expand_as(cover)
                stego = quantize_8bit(inference.hide(model, cover, uniform))
                found["blur_agreement: stego of a uniform secret"].append(inference.blur_agreement(model, stego))
    threshold = inference.NOT_A_STEGO_PSNR
    return {
        kind: {
            "count": len(v),
            "min": min(v),
            "10th percentile": float(np.percentile(v, 10)),
            "90th percentile": float(np.percentile(v, 90)),
            "max": max(v),
            "at_or_above_not_a_stego_psnr": sum(x >= threshold for x in v),
        }
        for kind, v in found.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs-dir", type=Path, help="default: ../shared/data/kodak24")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--draws", type=int, default=8)
    parser.add_argument("--checks", action="store_true", help="also measure verify and blur_agreement (minutes)")
    parser.add_argument("--check-sets", nargs="+", default=["kodak24", "cbsd68", "mcmaster", "photos49"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore", PublicKeyWarning)  # keyed models are measured under the public key, said above
    torch.set_grad_enabled(False)
    pairs = evaluation_pairs(args.pairs_dir or data_folder("kodak24"), size=args.size)
    results: dict[str, object] = {"pairs": f"{len(pairs)} pairs at {args.size}x{args.size}, 8-bit PNG stego"}
    for entry in zoo.available():
        model = invhide.load(entry.name).eval()
        results[entry.name] = reveals(model, pairs, args.draws)
        print(entry.name, json.dumps({k: round(v, 2) for k, v in results[entry.name].items()}), flush=True)
    if args.checks:
        default = zoo.default_name()
        results["checks"] = {"model": default, **checks_table(invhide.load(default).eval(), args.check_sets)}
        print(json.dumps(results["checks"], indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
