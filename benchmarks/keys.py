#!/usr/bin/env python
"""What a key protects: a keyed model's stego images revealed without the right key, against guesses without it.

The threat: an attacker who has invhide, the keyed model and a stego image
(an 8-bit PNG), but not the key. For every pair (image ``i`` of ``--pairs-dir``
hides image ``i + n/2``, centre crops of ``--size``), hidden under a fresh
random key, the benchmark measures PSNR and SSIM against the secret of:

- the no-information baselines: the stego itself and a mid-grey image (the
  best of the two per pair is "baseline");
- the reveal with the right key (the receiver);
- ``--wrong`` random keys, and the 256 keys one bit away from the right key:
  mean and maximum per pair, then over the pairs;
- what a wrong key leaves: the reveal under any wrong key is the secret's
  8x8 tiles in another order, so the benchmark also rearranges the tiles of
  one wrong-key reveal onto the secret's positions at the least squared error
  (an assignment that knows the secret: the bound of a perfect jigsaw
  solver), and does the same to the stego's tiles (the baseline of that
  bound: how close any image's tiles can be rearranged to the secret);
- with ``--identify``, a confirmation attack that needs no oracle: the
  attacker holds candidate images (here: every secret of ``--pairs-dir``) and
  asks which one a stego hides, by rearranging one wrong-key reveal onto each
  candidate and taking the closest;
- with ``--attack-minutes``, a learned attack: the model's own reverse pass
  fine-tuned to map stego images to secrets over random keys it is never
  told, and a small U-Net trained on the same, each for the given CPU time on
  ``--attack-pairs`` pairs of ``--attack-dir`` crops (fresh keys), then tested
  on the pairs above (keys it never saw).

python benchmarks/keys.py --model runs/keyed-v1 --pairs-dir ../shared/data/kodak24 --json runs/keys.json
python benchmarks/keys.py --model runs/keyed-v1 --pairs-dir ../shared/data/kodak24 \\
    --attack-dir ../shared/data/photos49 --attack-minutes 60 --figure docs/figures/keys-attack.png

``--attack-minutes`` is process CPU time (all threads) per attack.

A benchmark measures and prints; it never asserts.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

import invhide
from invhide.evaluation.metrics import psnr, ssim
from invhide.io.datasets import ImageDataset, evaluation_pairs
from invhide.models.hider import InvertibleHider
from invhide.nn.functional import quantize_8bit
from invhide.nn.keys import KEY_BYTES, key_tensor

Scores = dict[str, list[float]]


def scores(guess: Tensor, secret: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image PSNR and SSIM (RGB) of ``(B, 3, H, W)`` guesses against the secret(s), both clamped to [0, 1]."""
    guess, secret = guess.clamp(0, 1), secret.expand_as(guess)
    return psnr(guess, secret), ssim(guess, secret)


def reveal(model: InvertibleHider, stego: Tensor, keys: list[bytes], batch: int = 64) -> Tensor:
    """The reveal of one ``(1, 3, H, W)`` stego under each key, ``z`` zeros (as ``invhide reveal`` gives it).

    The key enters a keyed hider only through :meth:`~InvertibleHider.unlock`
    of what the network reveals (:meth:`~InvertibleHider.lock`), so the network
    runs once and each key costs one unlock: exactly ``model.reveal(stego,
    key=key)`` for every key.
    """
    with torch.no_grad():
        locked = model.reveal(stego, locked=True)
        outputs = [
            model.unlock(locked.expand(len(keys[i : i + batch]), -1, -1, -1), key_tensor(keys[i : i + batch]))
            for i in range(0, len(keys), batch)
        ]
    return torch.cat(outputs)


def near_keys(key: bytes) -> list[bytes]:
    """The 256 keys one bit away from ``key``."""
    found = []
    for bit in range(8 * KEY_BYTES):
        near = bytearray(key)
        near[bit // 8] ^= 1 << (bit % 8)
        found.append(bytes(near))
    return found


def _tiles(image: Tensor, tile: int) -> Tensor:
    """``(1, C, H, W)`` as ``(H/t * W/t, C*t*t)`` rows, row-major (H and W multiples of ``tile``)."""
    c, h, w = image.shape[1:]
    return image[0].reshape(c, h // tile, tile, w // tile, tile).permute(1, 3, 0, 2, 4).reshape(-1, c * tile * tile)


def jigsaw_oracle(guess: Tensor, secret: Tensor, tile: int = 8, colour_orders: bool = False) -> Tensor:
    """``guess``'s ``tile x tile`` tiles moved to the secret's positions at the least total squared error.

    An assignment that knows the secret (the Hungarian method on the
    tile-to-tile distances): no jigsaw solver, which must work without the
    secret, rearranges better. With ``colour_orders`` each tile may also take
    any of the six orders of its three colour channels (the one nearest the
    secret's tile), the oracle against a key that also reorders colours.
    """
    c, h, w = secret.shape[1:]
    h, w = h - h % tile, w - w % tile
    pieces, target = _tiles(guess[..., :h, :w], tile), _tiles(secret[..., :h, :w], tile)
    orders = list(itertools.permutations(range(c))) if colour_orders else [tuple(range(c))]
    variants = torch.stack([pieces.view(len(pieces), c, -1)[:, list(o)].reshape(len(pieces), -1) for o in orders])
    costs = torch.stack([torch.cdist(target.double(), v.double()).square() for v in variants])  # (orders, n, n)
    cost, best = costs.min(dim=0)
    rows, cols = linear_sum_assignment(cost.numpy())
    rows_t, cols_t = torch.from_numpy(rows), torch.from_numpy(np.asarray(cols))
    placed = torch.empty_like(pieces)
    placed[rows_t] = variants[best[rows_t, cols_t], cols_t]
    image = placed.reshape(h // tile, w // tile, c, tile, tile).permute(2, 0, 3, 1, 4).reshape(1, c, h, w)
    out = secret.clone()
    out[..., :h, :w] = image
    return out


def measure_pair(
    model: InvertibleHider, cover: Tensor, secret: Tensor, wrong: int, shown: dict[str, Tensor] | None = None
) -> dict[str, float]:
    """Every figure of one pair, hidden under a fresh random key; the images of the figure go into ``shown``."""
    key = os.urandom(KEY_BYTES)
    with torch.no_grad():
        stego, _ = model.hide(cover, secret, key=key)
    stego = quantize_8bit(stego)
    row: dict[str, float] = {"cover_stego_psnr": psnr(stego, cover).item()}
    guesses = {"stego": stego, "grey": torch.full_like(secret, 0.5), "right": reveal(model, stego, [key])}
    for name, guess in guesses.items():
        p, s = scores(guess, secret)
        row[f"{name}_psnr"], row[f"{name}_ssim"] = p.item(), s.item()
    best = max(("stego", "grey"), key=lambda name: row[f"{name}_psnr"])
    row["baseline_psnr"], row["baseline_ssim"] = row[f"{best}_psnr"], row[f"{best}_ssim"]
    one_wrong = reveal(model, stego, [os.urandom(KEY_BYTES)])
    rebuilt = {"jigsaw_wrong": jigsaw_oracle(one_wrong, secret), "jigsaw_stego": jigsaw_oracle(stego, secret)}
    for name, guess in rebuilt.items():
        p, s = scores(guess, secret)
        row[f"{name}_psnr"], row[f"{name}_ssim"] = p.item(), s.item()
    if shown is not None:
        shown.update(secret=secret, stego=stego, right=guesses["right"], wrong=one_wrong, **rebuilt)
    for name, keys in (("wrong", [os.urandom(KEY_BYTES) for _ in range(wrong)]), ("near", near_keys(key))):
        if keys:
            p, s = scores(reveal(model, stego, keys), secret)
            row[f"{name}_psnr_mean"], row[f"{name}_psnr_max"] = p.mean().item(), p.max().item()
            row[f"{name}_ssim_mean"], row[f"{name}_ssim_max"] = s.mean().item(), s.max().item()
    return row


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    """Means over the pairs, and for the ``..._max`` figures the maximum over them too."""
    out = {name: statistics.fmean(r[name] for r in rows) for name in rows[0]}
    out.update({f"{name}_worst": max(r[name] for r in rows) for name in rows[0] if name.endswith("_max")})
    return out


class UNet(nn.Module):
    """A small U-Net (two scales, 32 and 64 channels): the attacker's own stego-to-secret network."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1))

        self.down = block(3, width)
        self.middle = block(width, 2 * width)
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.out = nn.Sequential(block(2 * width, width), nn.ReLU(), nn.Conv2d(width, 3, 1))

    def forward(self, x: Tensor) -> Tensor:
        skip = self.down(x)
        middle = self.middle(nn.functional.max_pool2d(torch.relu(skip), 2))
        return self.out(torch.cat((torch.relu(self.up(middle)), skip), dim=1))


ATTACKS = {"reverse": "reverse pass fine-tuned", "unet": "U-Net"}
"""The learned attacks, by option and by name: the model's own reverse pass (with its refiner, if any) fine-tuned,
and a small U-Net."""


def attack_data(model: InvertibleHider, folder: Path, pairs: int, crop: int) -> tuple[Tensor, Tensor]:
    """``pairs`` stego images (8-bit, fresh random keys) of random crops of ``folder``'s photographs, and secrets."""
    data = ImageDataset(folder, crop=crop)
    generator = torch.Generator().manual_seed(1)
    stegos, secrets = [], []
    for start in range(0, pairs, 16):
        count = min(16, pairs - start)
        images = torch.stack([data.item(int(i), generator) for i in torch.randint(len(data), (2 * count,))])
        cover, secret = images[:count], images[count:]
        keys = [os.urandom(KEY_BYTES) for _ in range(count)]
        with torch.no_grad():
            stego, _ = model.hide(cover, secret, key=key_tensor(keys))
        stegos.append(quantize_8bit(stego))
        secrets.append(secret)
    return torch.cat(stegos), torch.cat(secrets)


def train_attacker(
    predict: Callable[[Tensor], Tensor], params: list[Tensor], data: tuple[Tensor, Tensor], seconds: float
) -> tuple[int, float]:
    """Adam on the mean squared error of ``predict(stego)`` against the secret, for ``seconds`` of process time;
    the steps taken and the mean loss of the last 100."""
    stegos, secrets = data
    optimizer = torch.optim.Adam(params, lr=1e-3)
    generator = torch.Generator().manual_seed(2)
    start, steps, recent = time.process_time(), 0, []
    while time.process_time() - start < seconds:
        index = torch.randint(len(stegos), (16,), generator=generator)
        loss = nn.functional.mse_loss(predict(stegos[index]), secrets[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
        recent = [*recent[-99:], loss.item()]
    return steps, statistics.fmean(recent) if recent else math.nan


def learned_attacks(
    model: InvertibleHider, args: argparse.Namespace
) -> tuple[dict[str, Callable[[Tensor], Tensor]], dict[str, dict[str, float]]]:
    """The two trained attackers, each as a function from ``(B, 3, H, W)`` stego images to guesses, and how each
    was trained (steps, CPU and wall seconds, the last loss)."""
    data = attack_data(model, args.attack_dir, args.attack_pairs, args.attack_crop)
    reverse = copy.deepcopy(model)
    public = torch.zeros(KEY_BYTES, dtype=torch.uint8)

    def reverse_predict(stego: Tensor) -> Tensor:
        keys = public.expand(stego.shape[0], -1)
        return reverse.reveal(stego, z=torch.zeros_like(stego), key=keys)

    unet = UNet()
    attackers: dict[str, tuple[Callable[[Tensor], Tensor], list[Tensor]]] = {
        "reverse pass fine-tuned": (reverse_predict, list(reverse.parameters())),
        "U-Net": (unet, list(unet.parameters())),
    }
    attackers = {ATTACKS[choice]: attackers[ATTACKS[choice]] for choice in ATTACKS if choice in args.attacks}
    training = {}
    for name, (predict, params) in attackers.items():
        wall = time.perf_counter()
        steps, loss = train_attacker(predict, params, data, 60 * args.attack_minutes)
        wall = time.perf_counter() - wall
        training[name] = {"steps": steps, "cpu_seconds": 60 * args.attack_minutes, "wall_seconds": wall, "loss": loss}
        print(
            f"attack {name!r}: {steps} steps, {args.attack_minutes} CPU minutes ({wall:.0f} s wall) on "
            f"{args.attack_pairs} pairs; last training loss {loss:.4f}",
            flush=True,
        )
    return {name: predict for name, (predict, _) in attackers.items()}, training


def identify(model: InvertibleHider, pairs: list) -> dict[str, Any]:
    """Which candidate each stego hides, told from one wrong-key reveal: the candidate its tiles rearrange closest to.

    Every pair is hidden under a fresh random key and revealed under another
    random key; the reveal's tiles are placed onto each candidate secret (all
    the secrets of the pairs) by :func:`jigsaw_oracle`, and the attacker picks
    the candidate with the highest PSNR. The oracle here is legitimate: the
    candidates are the attacker's own images.
    """
    candidates = [secret[None] for _, secret in pairs]
    hits, margins = 0, []
    for i, (cover, secret) in enumerate(pairs):
        with torch.no_grad():
            stego = quantize_8bit(model.hide(cover[None], secret[None], key=os.urandom(KEY_BYTES))[0])
        wrong = reveal(model, stego, [os.urandom(KEY_BYTES)])
        fits = [scores(jigsaw_oracle(wrong, c), c)[0].item() for c in candidates]
        best = max(range(len(fits)), key=fits.__getitem__)
        hits += best == i
        margins.append(fits[i] - max(f for j, f in enumerate(fits) if j != i))
        print(f"identify {i + 1}/{len(pairs)}: picked {best}, true {i}, margin {margins[-1]:.2f} dB", flush=True)
    return {"candidates": len(candidates), "correct": hits, "margin_db_mean": statistics.fmean(margins),
            "margin_db_min": min(margins)}  # fmt: skip


def figure(panels: list[dict[str, Tensor]], path: Path) -> None:
    """One row per pair: the secret, the stego, the reveals under the right and a wrong key, the oracle jigsaw of
    the wrong-key reveal, and each learned attack's guess."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {
        "secret": "secret",
        "stego": "stego (8-bit PNG)",
        "right": "right key",
        "wrong": "a wrong key",
        "jigsaw_wrong": "wrong key, tiles placed\nby an oracle",
    }
    names = [n for n in panels[0] if n in titles or n.startswith("attack: ")]
    fig, axes = plt.subplots(len(panels), len(names), figsize=(2.2 * len(names), 2.4 * len(panels)), squeeze=False)
    for row, panel in zip(axes, panels, strict=True):
        for ax, name in zip(row, names, strict=True):
            image = panel[name][0].clamp(0, 1).permute(1, 2, 0).numpy()
            ax.imshow(image)
            p = scores(panel[name], panel["secret"])[0].item()
            label = titles.get(name, name.removeprefix("attack: "))
            ax.set_title(label if name == "secret" else f"{label}\n{p:.1f} dB", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a keyed model: a shipped name, a file or a run folder")
    parser.add_argument("--pairs-dir", type=Path, required=True, help="test photographs (pairs i, i + n/2)")
    parser.add_argument("--size", type=int, default=256, help="centre-crop side of the test pairs (default 256)")
    parser.add_argument("--wrong", type=int, default=200, help="random wrong keys per pair (default 200)")
    parser.add_argument("--attack-dir", type=Path, help="photographs the learned attacks train on")
    parser.add_argument("--attack-pairs", type=int, default=2000, help="pairs the attacks train on (default 2000)")
    parser.add_argument("--attack-crop", type=int, default=128, help="their crop side (default 128)")
    parser.add_argument("--attack-minutes", type=float, default=0, help="CPU minutes per attack (0: no attack)")
    parser.add_argument(
        "--attacks", nargs="+", choices=list(ATTACKS), default=list(ATTACKS), help="learned attacks (default: both)"
    )
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--figure", type=Path, help="draw the first two pairs (and the attacks' guesses) here")
    parser.add_argument("--identify", action="store_true", help="also run the confirmation attack (identify())")
    parser.add_argument("--skip-keys", action="store_true", help="skip the wrong and near keys (with --identify)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = invhide.load(args.model).eval()
    if not getattr(model, "keyed", False):
        parser.error(f"--model {args.model}: not a keyed model")
    pairs = evaluation_pairs(args.pairs_dir, size=args.size)
    panels: list[dict[str, Tensor]] = [{} for _ in range(min(2, len(pairs)))]
    rows = []
    for i, (cover, secret) in enumerate([] if args.skip_keys else pairs):
        rows.append(measure_pair(model, cover[None], secret[None], args.wrong, panels[i] if i < 2 else None))
        print(f"pair {i + 1}/{len(pairs)}: {json.dumps({k: round(v, 2) for k, v in rows[-1].items()})}", flush=True)
    result = {"pairs": len(rows), "size": args.size, "rows": rows, "summary": summary(rows) if rows else {}}
    if args.identify:
        result["identify"] = identify(model, pairs)
    result["measure_seconds"] = time.perf_counter() - started
    if args.json:  # the key figures, kept even if the attacks are stopped
        args.json.write_text(json.dumps(result, indent=1))
    if args.attack_minutes > 0 and args.attack_dir is not None:
        attacks, result["attack_training"] = learned_attacks(model, args)
        result["attacks"] = {}
        for name, predict in attacks.items():
            result["attacks"][name] = attack_scores(model, predict, pairs)
            for panel in (p for p in panels if "stego" in p):  # none with --skip-keys
                with torch.no_grad():
                    panel[f"attack: {name}"] = predict(panel["stego"]).clamp(0, 1)
    result["seconds"] = time.perf_counter() - started
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.figure:
        figure(panels, args.figure)


def attack_scores(model: InvertibleHider, predict: Callable[[Tensor], Tensor], pairs: list) -> dict[str, float]:
    """Mean PSNR and SSIM of an attacker's guesses on the test pairs, hidden under keys it never saw."""
    found: Scores = {"psnr": [], "ssim": []}
    for cover, secret in pairs:
        with torch.no_grad():
            stego, _ = model.hide(cover[None], secret[None], key=os.urandom(KEY_BYTES))
            p, s = scores(predict(quantize_8bit(stego)), secret[None])
        found["psnr"].append(p.item())
        found["ssim"].append(s.item())
    return {name: statistics.fmean(values) for name, values in found.items()}


if __name__ == "__main__":
    main()
