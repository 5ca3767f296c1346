#!/usr/bin/env python
"""Hide several secret images in one cover, train briefly and reveal each secret.

With ``num_secrets=k`` the secret branch of ``invhide.InvertibleHider`` is
``k`` times as wide (``4kC`` wavelet channels, as in ISN, Lu et al., CVPR
2021): ``hide(cover, s1, ..., sk)`` returns the stego and a lost part of
``kC`` channels, and ``reveal(stego)`` returns the ``k`` secrets concatenated
along channels, which ``chunk(k, dim=1)`` splits. The trainer handles any
``k``: each step draws ``k`` secrets per cover.

Without arguments it trains on random smooth synthetic images in well under a
minute on a laptop CPU; ``--images DIR`` uses a folder of your photos::

    python examples/multiple_secrets.py
    python examples/multiple_secrets.py --secrets 3 --steps 400

A few hundred steps teach a hider very little: more secrets per cover cost
quality, and only a long run shows how much.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

import invhide
from invhide.evaluation.metrics import psnr
from invhide.io.datasets import ImageDataset, evaluation_pairs
from invhide.nn.functional import quantize_8bit
from invhide.training import TrainConfig, Trainer
from invhide.training.losses import HidingLoss


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, help="folder of photos (default: synthetic images)")
    parser.add_argument("--secrets", type=int, default=2, help="secret images per cover (default: 2)")
    parser.add_argument("--blocks", type=int, default=4, help="coupling blocks (default: 4)")
    parser.add_argument("--steps", type=int, default=150, help="training steps (default: 150)")
    parser.add_argument("--crop", type=int, default=32, help="side of the square training crops (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the model, the data and training's z (default: 0)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    return parser.parse_args()


def smooth_images(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``(count, 3, size, size)`` random smooth colour images in ``[0, 1]``: upsampled noise at three scales."""
    images = torch.zeros(count, 3, size, size)
    for cells, weight in ((2, 0.5), (4, 0.3), (8, 0.2)):
        noise = torch.rand(count, 3, cells, cells, generator=generator)
        images += weight * F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=True)
    return images.clamp(0, 1)


def main() -> None:
    args = parse_args()
    k = args.secrets
    torch.manual_seed(args.seed)  # the model's initialisation
    hider = invhide.InvertibleHider(num_secrets=k, num_blocks=args.blocks, subnet=invhide.nn.subnets.conv(hidden=48))
    print(f"hider: {k} secrets per cover, {sum(p.numel() for p in hider.parameters()):,} parameters")

    # Training images: single images; each step takes k secrets and one cover per pair.
    if args.images is not None:
        train_data = ImageDataset(args.images, crop=args.crop, cache=True)
        test = torch.stack([pair.cover for pair in evaluation_pairs(args.images, size=args.crop)])
    else:
        images = smooth_images(64 + 4 * (k + 1), args.crop, torch.Generator().manual_seed(args.seed))
        train_data, test = list(images[:64]), images[64:]
    if len(test) < k + 1:
        raise SystemExit(f"need at least {k + 1} test images for {k} secrets, got {len(test)}")

    config = TrainConfig(
        steps=args.steps,
        batch_size=4,  # covers per step; 4 * k secrets
        crop=args.crop,
        lr=2e-3,
        betas=(0.9, 0.999),
        schedule="cosine",
        warmup_steps=10,
        grad_clip=10.0,
        quantize=True,
        log_every=max(1, args.steps // 3),
        val_every=0,
        checkpoint_every=0,
        seed=args.seed,
        tensorboard=False,
    )
    # The revealing term compares all k secrets at once: (B, kC, H, W) against (B, kC, H, W).
    loss = HidingLoss.reference_code(reduction="mean")
    trainer = Trainer(hider, loss, train_data, config, device=args.device, progress=False)
    result = trainer.fit()
    print(f"trained {result.steps} steps in {result.seconds:.1f} s; last loss {result.history[-1]['loss']:.4f}")

    # Hide k test images in another one, save the stego as 8 bits, reveal with z = 0.
    groups = len(test) // (k + 1)
    test = test[: groups * (k + 1)].to(trainer.device).reshape(groups, k + 1, *test.shape[1:])
    cover, secrets = test[:, 0], test[:, 1:].unbind(dim=1)
    hider.eval()
    with torch.inference_mode():
        stego, lost = hider.hide(cover, *secrets)
        print(
            f"cover {tuple(cover.shape)} + {k} x secret {tuple(secrets[0].shape)} -> "
            f"stego {tuple(stego.shape)}, lost {tuple(lost.shape)}"
        )
        stego_png = quantize_8bit(stego)  # what an 8-bit PNG of the stego holds
        recovered = hider.reveal(stego_png).chunk(k, dim=1)  # z = 0 stands in for lost
        exact = hider.reveal(stego, z=lost).chunk(k, dim=1)  # with the true lost part: exact

    print(f"cover/stego PSNR (8-bit stego): {psnr(cover, stego_png).mean():.2f} dB")
    for index, (secret, found, back) in enumerate(zip(secrets, recovered, exact, strict=True), start=1):
        print(
            f"secret {index}: recovery PSNR {psnr(secret, found.clamp(0, 1)).mean():.2f} dB from the PNG and z = 0; "
            f"max error with the true lost part {(back - secret).abs().max():.1e}"
        )


if __name__ == "__main__":
    main()
