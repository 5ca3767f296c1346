#!/usr/bin/env python
"""Write your own loss term and train with it next to HiNet's three terms.

A term of ``invhide.training.losses.HidingLoss`` is any ``nn.Module`` whose ``forward``
takes keyword tensors (``cover``, ``secret``, ``stego``, ``recovered``,
``lost``), uses those it needs and returns a scalar. ``HidingLoss.with_term``
returns a new loss with the term added; the trainer logs every term, weighted
or not.

The term written here pulls the lost information ``r`` towards the
distribution that ``z`` is drawn from when revealing: it matches the mean and
variance of each channel of ``lost`` to those of ``N(0, 1)``. It illustrates
the mechanics; whether it helps is a question for a long run. A second term
of weight 0 is only logged: the L1 distance between stego and cover.

Without arguments it trains on random smooth synthetic images in well under a
minute on a laptop CPU::

    python examples/custom_loss.py
    python examples/custom_loss.py --weight 0.5 --steps 300
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import invhide
from invhide.training import TrainConfig, Trainer
from invhide.training.losses import ConcealingLoss, HidingLoss


class LostGaussianLoss(nn.Module):
    """Match the per-channel mean and variance of the lost part ``r`` to those of ``N(0, 1)``.

    ``sum over channels of mean^2 + (variance - 1)^2``; zero when every channel
    of ``lost`` has mean 0 and variance 1, as ``z ~ N(0, 1)`` has.
    """

    def forward(self, *, lost: Tensor, **_: Tensor) -> Tensor:
        mean = lost.mean(dim=(0, 2, 3))
        variance = lost.var(dim=(0, 2, 3), unbiased=False)
        return (mean.square() + (variance - 1).square()).sum()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weight", type=float, default=0.1, help="weight of the new term (default: 0.1)")
    parser.add_argument("--steps", type=int, default=150, help="training steps (default: 150)")
    parser.add_argument("--crop", type=int, default=32, help="side of the square training crops (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the model, the data and z (default: 0)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    return parser.parse_args()


def smooth_images(count: int, size: int, generator: torch.Generator) -> Tensor:
    """``(count, 3, size, size)`` random smooth colour images in ``[0, 1]``: upsampled noise at three scales."""
    images = torch.zeros(count, 3, size, size)
    for cells, weight in ((2, 0.5), (4, 0.3), (8, 0.2)):
        noise = torch.rand(count, 3, cells, cells, generator=generator)
        images += weight * F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=True)
    return images.clamp(0, 1)


def main() -> None:
    args = parse_args()

    # HiNet's three terms (mean-reduced) plus ours, plus one that is only logged (weight 0).
    loss = (
        HidingLoss.paper(reduction="mean")
        .with_term("lost_gaussian", args.weight, LostGaussianLoss())
        .with_term("stego_l1", 0.0, ConcealingLoss(kind="l1", reduction="mean"))
    )
    print(f"loss weights: {loss.weights}")

    # One call evaluates every term on the same keyword tensors.
    cover, secret = smooth_images(2, args.crop, torch.Generator().manual_seed(1)).unsqueeze(1)
    lost = torch.randn(1, 3, args.crop, args.crop, generator=torch.Generator().manual_seed(2))
    out = loss(cover=cover, secret=secret, stego=cover, recovered=secret, lost=lost)
    print("on a perfect hider whose lost part is N(0, 1) noise:", {k: round(v, 4) for k, v in out.to_floats().items()})

    # Train with it: the trainer passes cover, secret, stego, recovered and lost to the loss.
    torch.manual_seed(args.seed)
    hider = invhide.InvertibleHider(num_blocks=4, subnet=invhide.nn.subnets.conv(hidden=48))
    images = smooth_images(64, args.crop, torch.Generator().manual_seed(args.seed))
    config = TrainConfig(
        steps=args.steps,
        batch_size=4,
        crop=args.crop,
        lr=2e-3,
        betas=(0.9, 0.999),
        schedule="cosine",
        warmup_steps=10,
        grad_clip=10.0,
        log_every=max(1, args.steps // 5),
        val_every=0,
        checkpoint_every=0,
        seed=args.seed,
        tensorboard=False,
    )
    result = Trainer(hider, loss, list(images), config, device=args.device, progress=False).fit()
    print(
        f"{'step':>5} {'total':>8} {'concealing':>11} {'revealing':>10} {'low_freq':>9} {'lost_gaussian':>14} "
        f"{'stego_l1':>9}"
    )
    for record in result.history:  # every term, unweighted, as the trainer logged it
        print(
            f"{record['step']:>5} {record['loss']:>8.4f} {record['concealing']:>11.5f} {record['revealing']:>10.5f} "
            f"{record['low_frequency']:>9.5f} {record['lost_gaussian']:>14.4f} {record['stego_l1']:>9.5f}"
        )

    # A loss with a custom term cannot describe itself in a JSON config (the shipped terms can).
    try:
        loss.config()
    except TypeError as error:
        print(f"loss.config(): {error}")


if __name__ == "__main__":
    main()
