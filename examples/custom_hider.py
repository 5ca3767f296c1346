#!/usr/bin/env python
"""Compose a custom invertible hider, train it for a few steps and evaluate it.

HiNet is one configuration of ``invhide.InvertibleHider``; this script builds
another from the same parts: 4 coupling blocks instead of 16, residual subnets
instead of HiNet's dense blocks, and the Daubechies-2 wavelet instead of Haar.
It trains the hider briefly with ``invhide.training.trainer.Trainer``, evaluates it the
way the paper's Table 2 does (float stego and stego rounded to 8 bits), and
saves and reloads it.

Without arguments it trains on random smooth synthetic images, in well under a
minute on a laptop CPU; ``--images DIR`` uses a folder of your photos instead::

    python examples/custom_hider.py
    python examples/custom_hider.py --images ~/Pictures --steps 500 --crop 64

A few hundred steps teach a hider very little: the point here is the API, not
the figures (``examples/hinet_div2k.py`` trains in earnest).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

import invhide
from invhide.evaluation.metrics import evaluate
from invhide.io.datasets import ImageDataset, evaluation_pairs
from invhide.training import TrainConfig, Trainer
from invhide.training.losses import HidingLoss


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, help="folder of photos (default: synthetic images)")
    parser.add_argument("--blocks", type=int, default=4, help="coupling blocks (default: 4; HiNet: 16)")
    parser.add_argument("--hidden", type=int, default=32, help="width of the residual subnets (default: 32)")
    parser.add_argument("--wavelet", default="db2", help="orthogonal wavelet: haar, db2, sym4, ... (default: db2)")
    parser.add_argument("--steps", type=int, default=150, help="training steps (default: 150)")
    parser.add_argument("--crop", type=int, default=32, help="side of the square training crops (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the model, the data and z (default: 0)")
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
    torch.manual_seed(args.seed)  # the model's initialisation

    # 1. Compose the hider: every argument is a part a user can swap.
    hider = invhide.InvertibleHider(
        num_blocks=args.blocks,
        subnet=invhide.nn.subnets.residual(hidden=args.hidden, depth=1),
        wavelet=args.wavelet,
        clamp=2.0,
    )
    print(f"hider: {hider.config()}")
    print(f"{sum(p.numel() for p in hider.parameters()):,} parameters; images must be even and >= {hider.min_size}")

    # A fresh hider is the identity (every subnet's last layer starts at zero), and with the
    # true lost part r it is exactly invertible whatever its weights.
    cover, secret = smooth_images(2, args.crop, torch.Generator().manual_seed(1)).unsqueeze(1)
    stego, lost = hider.hide(cover, secret)
    print(
        f"untrained: stego == cover: {torch.allclose(stego, cover, atol=1e-6)}; "
        f"reveal(stego, z=lost) == secret: {torch.allclose(hider.reveal(stego, z=lost), secret, atol=1e-5)}"
    )

    # 2. Data: single images; the trainer pairs them as covers and secrets.
    if args.images is not None:
        train_data = ImageDataset(args.images, crop=args.crop, cache=True)
        pairs = [(pair.cover, pair.secret) for pair in evaluation_pairs(args.images, size=args.crop)]
    else:
        images = smooth_images(72, args.crop, torch.Generator().manual_seed(args.seed))
        train_data = list(images[:64])
        pairs = list(zip(images[64:68], images[68:72], strict=True))

    # 3. Train: the mean-reduced reference-code loss and a short cosine schedule, as the
    # "quick" recipe; here the reveal starts from the stego rounded to 8 bits (quantize=True),
    # as in the HiNet recipes.
    config = TrainConfig(
        steps=args.steps,
        batch_size=4,
        crop=args.crop,
        lr=2e-3,
        betas=(0.9, 0.999),
        schedule="cosine",
        warmup_steps=10,
        grad_clip=10.0,
        quantize=True,
        log_every=max(1, args.steps // 5),
        val_every=0,
        checkpoint_every=0,
        seed=args.seed,
        tensorboard=False,
    )
    loss = HidingLoss.reference_code(reduction="mean")
    trainer = Trainer(hider, loss, train_data, config, device=args.device, progress=False)
    result = trainer.fit()
    for record in result.history:
        print(
            f"step {record['step']:4d}  loss {record['loss']:.4f}  "
            f"stego {record['psnr_stego']:.2f} dB  recovered {record['psnr_recovered']:.2f} dB"
        )
    print(f"trained {result.steps} steps in {result.seconds:.1f} s, {result.rollbacks} rollback(s)")

    # 4. Evaluate as in the paper's Table 2, from the float stego and from the stego rounded to 8 bits.
    print(evaluate(hider, pairs).format())

    # 5. Save and reload: the JSON config in the safetensors file rebuilds the architecture.
    cover, secret = cover.to(trainer.device), secret.to(trainer.device)
    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        path = invhide.save(hider, Path(folder) / "custom.safetensors")
        again = invhide.load(path, map_location=trainer.device)
        same = torch.equal(again.hide(cover, secret)[0], hider.hide(cover, secret)[0])
        print(f"saved and reloaded {path.name}: {type(again).__name__}, same stego: {same}")


if __name__ == "__main__":
    main()
