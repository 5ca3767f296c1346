#!/usr/bin/env python
"""Does a learned enhancer beside the exact reveal recover more of the secret after a real JPEG? (PRIS's lever)

PRIS (Yang et al., 2024) puts enhancement networks before and after its
invertible reveal. This study trains two such enhancers beside a frozen
hider and measures them on real files:

* ``pre``: received stego -> restored stego, trained with an L1 loss to the
  clean 8-bit stego; the restored stego is then revealed exactly;
* ``post``: (revealed secret, received stego) -> secret, trained with an L1
  loss to the secret.

Each is the same small U-Net (two poolings, widths 32/64/128, about 0.47 M
parameters) whose last convolution starts at zero, so it begins as the
identity and can only learn to help. Training triples come from the real
codec, not a stand-in: ``--pairs`` random crops of ``--crop`` from the
training photographs, hidden by the model, rounded to 8 bits, sent through
Pillow's JPEG at a quality drawn per image from ``--quality``, and revealed
(``z = 0``); each enhancer then trains for ``--minutes`` on ``--train-crop``
sub-crops placed on JPEG's 16-pixel grid. Evaluation: kodak24 (24 pairs,
256x256), the stego written as Pillow JPEG q90 / q75, WebP q90 and the
lossless PNG, secret PSNR (RGB, dB, mean) with and without each enhancer::

    python benchmarks/enhancers.py --model conv8-photos49-robust --json benchmarks/results/enhancers.json

Measures and prints; asserts nothing. The model is never changed.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from _shared import data_folder
from torch import Tensor, nn

from invhide.evaluation import channels as real
from invhide.evaluation.metrics import psnr
from invhide.io.datasets import ImageDataset, evaluation_pairs
from invhide.models import zoo

CHANNELS: dict[str, Callable[[Tensor], Tensor]] = {
    "jpeg:90": lambda x: real.jpeg(x, 90),
    "jpeg:75": lambda x: real.jpeg(x, 75),
    "webp:90": lambda x: real.webp(x, 90),
    "png": lambda x: x,
}


def _stage(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
    )


class UNet(nn.Module):
    """``base + residual(inputs)``: a two-pooling U-Net whose zero-initialised output makes it start as the identity."""

    def __init__(self, inputs: int, width: int = 32) -> None:
        super().__init__()
        self.down0, self.down1 = _stage(inputs, width), _stage(width, 2 * width)
        self.down2 = _stage(2 * width, 4 * width)
        self.up1, self.merge1 = nn.ConvTranspose2d(4 * width, 2 * width, 2, 2), _stage(4 * width, 2 * width)
        self.up0, self.merge0 = nn.ConvTranspose2d(2 * width, width, 2, 2), _stage(2 * width, width)
        self.out = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, base: Tensor, *context: Tensor) -> Tensor:
        x0 = self.down0(torch.cat([base, *context], dim=1))
        x1 = self.down1(F.avg_pool2d(x0, 2))
        x2 = self.down2(F.avg_pool2d(x1, 2))
        y1 = self.merge1(torch.cat([self.up1(x2), x1], dim=1))
        y0 = self.merge0(torch.cat([self.up0(y1), x0], dim=1))
        return base + self.out(y0)


def triples(model: nn.Module, folder: Path, count: int, crop: int, quality: tuple[int, int]) -> dict[str, Tensor]:
    """``count`` (clean 8-bit stego, received JPEG, revealed secret, secret) from random crops, via Pillow's JPEG."""
    dataset = ImageDataset(folder, crop=crop, train=True, cache=True)
    parts: dict[str, list[Tensor]] = {"clean": [], "received": [], "revealed": [], "secret": []}
    batch, made = 16, 0
    with torch.no_grad():
        while made < count:
            images = torch.stack([dataset[int(i)] for i in torch.randint(len(dataset), (2 * batch,))])
            cover, secret = images[:batch], images[batch:]
            clean = real.round8(model.hide(cover, secret)[0].clamp(0, 1))
            qualities = torch.randint(quality[0], quality[1] + 1, (batch,)).tolist()
            received = torch.cat([real.jpeg(clean[i : i + 1], q) for i, q in enumerate(qualities)])
            revealed = model.reveal(received, z=torch.zeros_like(secret))
            for name, value in zip(parts, (clean, received, revealed, secret), strict=True):
                parts[name].append(value)
            made += batch
    return {name: torch.cat(values)[:count] for name, values in parts.items()}


def train(kind: str, data: dict[str, Tensor], minutes: float, crop: int) -> tuple[UNet, int, float]:
    """Adam, lr 2e-4 on a cosine over the time budget, batches of 16; returns the net, its steps and last loss ratio."""
    net = UNet(3 if kind == "pre" else 6)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4)
    side = data["secret"].shape[-1]
    budget, start, steps, ratio = minutes * 60, time.perf_counter(), 0, float("nan")
    while (elapsed := time.perf_counter() - start) < budget:
        for group in optimizer.param_groups:
            group["lr"] = 2e-4 * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        index = torch.randint(len(data["secret"]), (16,))
        i, j = (torch.randint(0, side - crop + 1, (2,)) // 16 * 16).tolist()
        part = {name: value[index, :, i : i + crop, j : j + crop] for name, value in data.items()}
        if kind == "pre":
            output, target, unchanged = net(part["received"]), part["clean"], part["received"]
        else:
            output, target, unchanged = net(part["revealed"], part["received"]), part["secret"], part["revealed"]
        loss = F.l1_loss(output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
        if steps % 1000 == 0:
            ratio = loss.item() / F.l1_loss(unchanged, target).item()
            print(f"  {kind} step {steps} ({elapsed:.0f} s): L1 {loss.item():.4f}, {ratio:.3f} of the input's")
    return net.eval(), steps, ratio


def evaluate(model: nn.Module, enhancers: dict[str, UNet], folder: Path) -> dict[str, dict[str, float]]:
    """Secret PSNR per channel, plain and through each enhancer; for ``pre`` also the stego's PSNR to the clean one."""
    pairs = evaluation_pairs(folder, size=256)
    cover, secret = torch.stack([p.cover for p in pairs]), torch.stack([p.secret for p in pairs])
    results: dict[str, dict[str, float]] = {}
    z = torch.zeros_like(secret)

    def mean(x: Tensor, y: Tensor) -> float:
        return psnr(x.clamp(0, 1), y).mean().item()

    def chunks(net: UNet, *inputs: Tensor) -> Tensor:
        return torch.cat([net(*(x[i : i + 8] for x in inputs)) for i in range(0, len(inputs[0]), 8)])

    with torch.no_grad():
        clean = real.round8(model.hide(cover, secret)[0].clamp(0, 1))
        for name, channel in CHANNELS.items():
            received = channel(clean)
            revealed = model.reveal(received, z=z)
            row = {"reveal": mean(revealed, secret)}
            if "pre" in enhancers:
                restored = chunks(enhancers["pre"], received)
                row["pre"] = mean(model.reveal(restored, z=z), secret)
                row["stego_received"], row["stego_restored"] = mean(received, clean), mean(restored, clean)
            if "post" in enhancers:
                row["post"] = mean(chunks(enhancers["post"], revealed, received), secret)
            results[name] = row
    return results


def main() -> None:
    """Make the triples, train each enhancer, measure on kodak24, print and optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="conv8-photos49-robust", help="a model name or path (frozen)")
    parser.add_argument("--kinds", nargs="+", choices=("pre", "post"), default=["pre", "post"])
    parser.add_argument("--pairs", type=int, default=6144, help="training triples")
    parser.add_argument("--crop", type=int, default=96, help="side of the training crops (a multiple of 16)")
    parser.add_argument("--train-crop", type=int, default=64, help="side of the sub-crops each step trains on")
    parser.add_argument("--quality", type=int, nargs=2, default=(70, 95), metavar=("LOW", "HIGH"))
    parser.add_argument("--minutes", type=float, default=10.0, help="training time per enhancer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the settings and results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = zoo.load(args.model).float().eval()
    start = time.perf_counter()
    data = triples(model, data_folder("photos49"), args.pairs, args.crop, tuple(args.quality))
    made = time.perf_counter() - start
    agreement = psnr(data["received"], data["clean"]).mean()
    print(f"{args.pairs} triples in {made:.0f} s; received vs clean stego {agreement:.2f} dB")
    enhancers, training = {}, {}
    for kind in args.kinds:
        enhancers[kind], steps, ratio = train(kind, data, args.minutes, args.train_crop)
        training[kind] = {"steps": steps, "last_l1_ratio": ratio}
    results = evaluate(model, enhancers, data_folder("kodak24"))

    print(f"\nkodak24, 24 pairs, 256x256, real files; secret PSNR dB (mean), {args.model} frozen")
    print(f"{'channel':<10}{'reveal':>8}" + "".join(f"{kind:>8}" for kind in args.kinds) + "  stego vs clean (pre)")
    for name, row in results.items():
        line = f"{name:<10}{row['reveal']:>8.2f}" + "".join(f"{row[kind]:>8.2f}" for kind in args.kinds)
        if "pre" in row:
            line += f"  {row['stego_received']:.2f} -> {row['stego_restored']:.2f}"
        print(line)
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        record = {"settings": settings, "triples_seconds": made, "training": training, "kodak24": results}
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
