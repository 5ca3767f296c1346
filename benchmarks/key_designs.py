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
- ``every-flip``: the same with key-dependent sign flips per tile and channel;
- ``input-flip``: one keyed permutation with sign flips, before the first
  coupling only (the flips without their cost in every block?);
- ``key-subnets``: one keyed permutation before the first coupling, and
  every coupling's subnets read 16 constant channels of +1 or -1 drawn from
  the key, so that a wrong key runs other functions backwards;
- ``input-colours``: one keyed permutation before the first coupling, then a
  keyed order of each tile's three colour channels (one of the six, the same
  in the four subbands): a wrong key shuffles the blocks *and* their colours,
  aimed at the leak of a secret that is mostly one colour.

Figures: stego and secret PSNR under the right key; the mean PSNR of a
wrong-key reveal against the secret and the no-information baseline, and
the largest excess of a wrong-key reveal over its pair's baseline (the
worst pair, one wrong key each); the
oracle jigsaw of one wrong-key reveal, unclamped as an attacker who has the
model computes it (``benchmarks/keys.py``; the ``wrong`` figure is the
clamped reveal that ``invhide reveal`` writes): its 8x8
tiles placed onto the secret at the least squared error, also with each
tile's colour channels in the best of their six orders
(``jigsaw_colours``, the attack on ``input-colours``), or with its 4x4
wavelet tiles placed and each channel's sign chosen (``jigsaw_signs``, the
attack on the flips); and how often one wrong-key reveal tells which of the
test secrets a stego hides, by each oracle.
These are research models for this comparison only; they live in this
script, not in the library (a key inside the network cannot be windowed).

python benchmarks/key_designs.py --train-dir ../shared/data/photos49 --pairs-dir ../shared/data/kodak24

A benchmark measures and prints; it never asserts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from FrEIA.framework import ConditionNode, InputNode, Node, OutputNode
from FrEIA.modules import InvertibleModule
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from invhide.evaluation.metrics import psnr
from invhide.io.datasets import ImageDataset, evaluation_pairs
from invhide.nn import functional, subnets
from invhide.nn.functional import haar_dwt, haar_idwt, quantize_8bit
from invhide.nn.graph import InvertibleGraph
from invhide.nn.keys import KEY_BYTES, KeyedPermutation, expand, key_tensor, signs
from invhide.nn.modules import HidingCoupling, WaveletDownsampling, WaveletUpsampling
from invhide.training import Trainer
from invhide.training.recipes import recipe

sys.path.insert(0, str(Path(__file__).parent))
from keys import jigsaw_oracle

DESIGNS = ("input", "every", "every-flip", "input-flip", "input-colours", "key-subnets")

KEY_FEATURES = 16
"""Channels of the key given to every subnet of ``key-subnets``: per image, +1 or -1 each, constant over the image."""


class KeyedSubnetCoupling(HidingCoupling):
    """:class:`HidingCoupling` whose three subnets also read the key: ``KEY_FEATURES`` constant channels of +1 or
    -1 drawn from it (:func:`invhide.nn.keys.signs`), so that a wrong key runs other functions, not another order.
    Exactly invertible under one key (the subnets see the same key both ways)."""

    def __init__(self, dims_in, dims_c=None, subnet="conv", clamp=2.0, clamp_activation="sigmoid", label="k"):
        constructor = subnets.resolve(subnet)
        super().__init__(dims_in, None, lambda c_in, c_out: constructor(c_in + KEY_FEATURES, c_out), clamp,
                         clamp_activation)  # fmt: skip
        self.dims_c = [(KEY_BYTES,)]  # HidingCoupling takes no condition; this one takes the key
        self.label = label

    def forward(self, x_or_z, c=None, rev=False, jac=True):
        a, b = x_or_z
        (keys,) = c
        features = torch.stack([signs(key.tobytes(), self.label, KEY_FEATURES) for key in keys.cpu().numpy()])
        features = features.to(a.device, a.dtype)[:, :, None, None].expand(-1, -1, *a.shape[2:])

        def keyed(net):
            return lambda x: net(torch.cat((x, features.to(x.dtype)), dim=1))

        step = functional.coupling_inverse if rev else functional.coupling_forward
        out1, out2, log_det = step(
            a, b, keyed(self.phi), keyed(self.rho), keyed(self.eta), self.clamp, self.clamp_activation
        )
        return (out1, out2), (log_det if jac else None)


COLOUR_ORDERS = torch.tensor(list(itertools.permutations(range(3))))
"""The six orders of three colour channels, one per row."""
INVERSE_ORDERS = torch.argsort(COLOUR_ORDERS, dim=1)


class KeyedColourPermutation(InvertibleModule):
    """Each ``tile x tile`` wavelet tile's colour channels put in one of the six orders, drawn from the key.

    The input is a subband-major wavelet image, ``(B, 4 * 3, H, W)``; one
    tile's order is the same in its four subbands, so that an 8x8 pixel block
    keeps its picture and changes its colours. Sides must be multiples of
    ``tile`` (this study's sizes are). An orthogonal map: log-determinant 0.
    """

    def __init__(self, dims_in, dims_c=None, tile: int = 4, label: str = "colours") -> None:
        super().__init__(dims_in, dims_c)
        self.tile, self.label = tile, label

    def forward(self, x_or_z, c=None, rev=False, jac=True):
        (x,), (keys,) = x_or_z, c
        b, channels, h, w = x.shape
        t = self.tile
        nh, nw = h // t, w // t
        table = INVERSE_ORDERS if rev else COLOUR_ORDERS
        orders = []
        for key in keys.cpu().numpy():
            drawn = np.frombuffer(expand(key.tobytes(), f"{self.label}/{nh}x{nw}", 2 * nh * nw), dtype="<u2") % 6
            orders.append(table[torch.from_numpy(drawn.astype(np.int64))])
        index = torch.stack(orders).to(x.device).view(b, nh, nw, 3).permute(0, 3, 1, 2)
        index = index[:, None, :, :, None, :, None].expand(b, channels // 3, 3, nh, t, nw, t)
        tiles = x.reshape(b, channels // 3, 3, nh, t, nw, t)
        return (torch.gather(tiles, 2, index).reshape(x.shape),), x.new_zeros(b)

    def output_dims(self, input_dims):
        return [tuple(input_dims[0])]


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
            if design.startswith("every") or i == 0:
                flip = design in ("every-flip", "input-flip")
                keyed = Node(
                    branches[1], KeyedPermutation, {"tile": 4, "flip": flip, "label": f"block{i}"}, conditions=key
                )
                nodes.append(keyed)
                branches[1] = (keyed, 0)
            if design == "input-colours" and i == 0:
                coloured = Node(branches[1], KeyedColourPermutation, {"tile": 4}, conditions=key)
                nodes.append(coloured)
                branches[1] = (coloured, 0)
            if design == "key-subnets":
                block = Node(
                    branches,
                    KeyedSubnetCoupling,
                    {**coupling, "label": f"block{i}"},
                    conditions=key,
                    name=f"coupling_{i}",
                )
            else:
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


def jigsaw_oracle_signs(guess: Tensor, secret: Tensor, tile: int = 4) -> Tensor:
    """The oracle against keyed tile permutations *and* sign flips: ``guess``'s wavelet tiles placed, and each
    channel's sign chosen, at the least squared error to the secret's (Haar, the study's ``hinet`` layout).

    For a target tile ``t`` and a piece ``p`` the best signs cost, channel by
    channel, ``|t|^2 + |p|^2 - 2 |<t, p>|``; the Hungarian method places the
    pieces. What an attacker who knows the design and the secret rebuilds
    from a wrong-key reveal of ``input-flip``.
    """
    coefficients, target_coefficients = haar_dwt(guess, layout="hinet"), haar_dwt(secret, layout="hinet")
    c, h, w = coefficients.shape[1:]

    def tiles(x: Tensor) -> Tensor:  # (n, c, tile * tile)
        return x[0].reshape(c, h // tile, tile, w // tile, tile).permute(1, 3, 0, 2, 4).reshape(-1, c, tile * tile)

    pieces, targets = tiles(coefficients).double(), tiles(target_coefficients).double()
    dots = torch.einsum("ick,jck->ijc", targets, pieces)
    norms = targets.square().sum(-1)[:, None, :] + pieces.square().sum(-1)[None, :, :]
    rows, cols = linear_sum_assignment((norms - 2 * dots.abs()).sum(-1).numpy())
    rows_t, cols_t = torch.from_numpy(rows), torch.from_numpy(np.asarray(cols))
    signs = torch.where(dots[rows_t, cols_t] < 0, -1.0, 1.0).to(pieces.dtype)
    placed = torch.empty_like(pieces)
    placed[rows_t] = pieces[cols_t] * signs[..., None]
    placed = placed.reshape(h // tile, w // tile, c, tile, tile).permute(2, 0, 3, 1, 4).reshape(1, c, h, w)
    return haar_idwt(placed.to(guess.dtype), layout="hinet")


def fit(guess: Tensor, secret: Tensor) -> float:
    """PSNR (dB) of an attacker's final image, clamped to [0, 1] as any image file holds it, against the secret."""
    return psnr(guess.clamp(0, 1), secret).item()


def random_keys(count: int) -> Tensor:
    return key_tensor([os.urandom(KEY_BYTES) for _ in range(count)])


def measure(model: KeyedStudyHider, pairs: list[tuple[Tensor, Tensor]]) -> dict[str, float]:
    """Right-key quality, the wrong-key reveal against the baseline, the oracle jigsaw, identification."""
    model.eval()
    names = ("stego", "right", "wrong", "baseline", "jigsaw", "jigsaw_colours", "jigsaw_signs", "jigsaw_stego")
    rows: dict[str, list[float]] = {k: [] for k in names}
    wrong_reveals, secrets = [], []
    with torch.no_grad():
        for cover, secret in pairs:
            cover, secret, key = cover[None], secret[None], random_keys(1)
            stego = quantize_8bit(model.hide(cover, secret, key)[0])
            z = torch.randn(stego.shape, generator=torch.Generator().manual_seed(0))
            right = model.reveal(stego, z, key).clamp(0, 1)
            raw = model.reveal(stego, z, random_keys(1))  # what an attacker with the model computes, unclamped
            wrong = raw.clamp(0, 1)  # what `invhide reveal` would write
            grey = torch.full_like(secret, 0.5)
            rows["stego"].append(psnr(stego, cover).item())
            rows["right"].append(psnr(right, secret).item())
            rows["wrong"].append(psnr(wrong, secret).item())
            rows["baseline"].append(max(psnr(stego, secret).item(), psnr(grey, secret).item()))
            rows["jigsaw"].append(fit(jigsaw_oracle(raw, secret), secret))
            rows["jigsaw_colours"].append(fit(jigsaw_oracle(raw, secret, colour_orders=True), secret))
            rows["jigsaw_signs"].append(fit(jigsaw_oracle_signs(raw, secret), secret))
            rows["jigsaw_stego"].append(psnr(jigsaw_oracle(stego, secret), secret).item())
            wrong_reveals.append(raw)
            secrets.append(secret)
    hits, colour_hits, sign_hits = 0, 0, 0
    for i, wrong in enumerate(wrong_reveals):
        fits = [fit(jigsaw_oracle(wrong, s), s) for s in secrets]
        hits += max(range(len(fits)), key=fits.__getitem__) == i
        fits = [fit(jigsaw_oracle(wrong, s, colour_orders=True), s) for s in secrets]
        colour_hits += max(range(len(fits)), key=fits.__getitem__) == i
        fits = [fit(jigsaw_oracle_signs(wrong, s), s) for s in secrets]
        sign_hits += max(range(len(fits)), key=fits.__getitem__) == i
    out = {k: statistics.fmean(v) for k, v in rows.items()}
    out["worst_over_baseline"] = max(w - b for w, b in zip(rows["wrong"], rows["baseline"], strict=True))
    out["identified"] = hits / len(pairs)
    out["identified_colours"] = colour_hits / len(pairs)
    out["identified_signs"] = sign_hits / len(pairs)
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
