#!/usr/bin/env python
"""Where should the key act? A short study of keyed designs: quality, and what a wrong key leaves.

Each design is the ``quick`` recipe's 4-block hider (conv subnets, Haar,
``hinet`` layout) with keyed permutations (:class:`~invhide.nn.keys.KeyedPermutation`)
of the secret branch's 4x4 wavelet tiles (8x8 pixels) as FrEIA nodes keyed
at call time, trained for ``--steps`` steps of the ``quick`` recipe with a
fresh random key per pair and step, then measured on ``--pairs-dir`` pairs
at ``--size`` (8-bit PNG stego, a random key per pair):

- ``input``: one keyed permutation before the first coupling (the shipped
  keyed model's design);
- ``every``: a keyed permutation before every coupling (DKiS's place);
- ``every-flip``: the same with key-dependent sign flips per tile and channel.

Figures: stego and secret PSNR under the right key; the mean PSNR of a
wrong-key reveal against the secret and the no-information baseline; the
oracle jigsaw of one wrong-key reveal (``benchmarks/keys.py``): its 8x8
tiles placed onto the secret at the least squared error; and how often one
wrong-key reveal tells which of the test secrets a stego hides.
These are research models for this comparison only; they live in this
script, not in the library (a key inside the network cannot be windowed).

python benchmarks/key_designs.py --train-dir ../shared/data/photos49 --pairs-dir ../shared/data/kodak24

A benchmark measures and prints; it never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from FrEIA.framework import ConditionNode, InputNode, Node, OutputNode
from torch import Tensor

from invhide.evaluation.metrics import psnr
from invhide.io.datasets import ImageDataset, evaluation_pairs
from invhide.nn import subnets
from invhide.nn.functional import quantize_8bit
from invhide.nn.graph import InvertibleGraph
from invhide.nn.keys import KEY_BYTES, KeyedPermutation, key_tensor
from invhide.nn.modules import HidingCoupling, WaveletDownsampling, WaveletUpsampling
from invhide.training import Trainer
from invhide.training.recipes import recipe

sys.path.insert(0, str(Path(__file__).parent))
from keys import jigsaw_oracle

DESIGNS = ("input", "every", "every-flip")


class KeyedStudyHider(InvertibleGraph):
    """A 4-block hider whose secret branch is permuted by the key where ``design`` says."""

    keyed, num_secrets, channels, min_size = True, 1, 3, 2

    def __init__(self, design: str, blocks: int = 4) -> None:
        wavelet = {"wavelet": "haar", "layout": "hinet", "backend": "auto"}
        coupling = {"subnet": subnets.conv(hidden=64, depth=3), "clamp": 2.0, "clamp_activation": "sigmoid"}
        cover, secret, key = InputNode(3, 2, 2, name="cover"), InputNode(3, 2, 2, name="secret"), ConditionNode(32)
        nodes = [cover, secret, key]
        branches = [(Node(cover, WaveletDownsampling, wavelet), 0), (Node(secret, WaveletDownsampling, wavelet), 0)]
        nodes += [branches[0][0], branches[1][0]]
        for i in range(blocks):
            if design != "input" or i == 0:
                flip = design == "every-flip"
                keyed = Node(
                    branches[1], KeyedPermutation, {"tile": 4, "flip": flip, "label": f"block{i}"}, conditions=key
                )
                nodes.append(keyed)
                branches[1] = (keyed, 0)
            block = Node(branches, HidingCoupling, coupling, name=f"coupling_{i}")
            nodes.append(block)
            branches = [(block, 0), (block, 1)]
        stego, lost = Node(branches[0], WaveletUpsampling, wavelet), Node(branches[1], WaveletUpsampling, wavelet)
        nodes += [stego, lost, OutputNode(stego, name="stego"), OutputNode(lost, name="lost")]
        super().__init__(nodes)

    def hide(self, cover: Tensor, secret: Tensor, key: Tensor, check_finite: bool = False) -> tuple[Tensor, Tensor]:
        (stego, lost), _ = self([cover, secret], c=[key], jac=False)
        return stego, lost

    def reveal(self, stego: Tensor, z: Tensor, key: Tensor, check_finite: bool = False) -> Tensor:
        (_, secret), _ = self([stego, z], c=[key], rev=True, jac=False)
        return secret


def random_keys(count: int) -> Tensor:
    return key_tensor([os.urandom(KEY_BYTES) for _ in range(count)])


def measure(model: KeyedStudyHider, pairs: list[tuple[Tensor, Tensor]]) -> dict[str, float]:
    """Right-key quality, the wrong-key reveal against the baseline, the oracle jigsaw, identification."""
    model.eval()
    rows: dict[str, list[float]] = {k: [] for k in ("stego", "right", "wrong", "baseline", "jigsaw", "jigsaw_stego")}
    wrong_reveals, secrets = [], []
    with torch.no_grad():
        for cover, secret in pairs:
            cover, secret, key = cover[None], secret[None], random_keys(1)
            stego = quantize_8bit(model.hide(cover, secret, key)[0])
            z = torch.randn(stego.shape, generator=torch.Generator().manual_seed(0))
            right = model.reveal(stego, z, key).clamp(0, 1)
            wrong = model.reveal(stego, z, random_keys(1)).clamp(0, 1)
            grey = torch.full_like(secret, 0.5)
            rows["stego"].append(psnr(stego, cover).item())
            rows["right"].append(psnr(right, secret).item())
            rows["wrong"].append(psnr(wrong, secret).item())
            rows["baseline"].append(max(psnr(stego, secret).item(), psnr(grey, secret).item()))
            rows["jigsaw"].append(psnr(jigsaw_oracle(wrong, secret), secret).item())
            rows["jigsaw_stego"].append(psnr(jigsaw_oracle(stego, secret), secret).item())
            wrong_reveals.append(wrong)
            secrets.append(secret)
    hits = 0
    for i, wrong in enumerate(wrong_reveals):
        fits = [psnr(jigsaw_oracle(wrong, s), s).item() for s in secrets]
        hits += max(range(len(fits)), key=fits.__getitem__) == i
    out = {k: statistics.fmean(v) for k, v in rows.items()}
    out["identified"] = hits / len(pairs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dir", type=Path, required=True)
    parser.add_argument("--pairs-dir", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    chosen = recipe("quick", steps=args.steps, val_every=10**9, checkpoint_every=10**9, tensorboard=False)
    data = ImageDataset(args.train_dir, crop=chosen.config.crop, cache=True)
    pairs = evaluation_pairs(args.pairs_dir, size=args.size)
    results = {}
    for design in args.designs:
        torch.manual_seed(0)
        model = KeyedStudyHider(design)
        started = time.perf_counter()
        Trainer(model, chosen.build_loss(), data, chosen.config, progress=False).fit()
        results[design] = {**measure(model, pairs), "train_seconds": time.perf_counter() - started}
        print(design, json.dumps({k: round(v, 3) for k, v in results[design].items()}), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "size": args.size, "results": results}, indent=1))


if __name__ == "__main__":
    main()
