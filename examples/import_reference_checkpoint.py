#!/usr/bin/env python
"""Import a checkpoint of the reference HiNet code and save it as an invhide model.

The reference code (TomTomTommi/HiNet) saves ``torch.save({'net': state_dict,
'opt': ...})`` with keys ``module.model.inv{i}.{f,r,y}.conv{j}.{weight,bias}``
(``f``, ``r`` and ``y`` are the paper's phi, rho and eta).
``invhide.models.official.load_official`` reads such a file with
``torch.load(weights_only=True)``, which runs no code, drops the ``tmp_var``
keys as the reference ``load()`` does, infers the number of blocks from the
tensors, and returns a ``HiNet`` whose hide and reveal match the reference
code's for the same weights. ``invhide.save`` then writes the model as
safetensors with its config, a file that never unpickles anything. A file
that is not a reference checkpoint (or asks to run code) is reported in one
line.

Without a checkpoint the script first writes a stand-in: a randomly
perturbed HiNet saved in the reference code's layout, so that every step can
be checked against the model it came from::

    python examples/import_reference_checkpoint.py                    # a stand-in checkpoint
    python examples/import_reference_checkpoint.py model.pt --out runs/hinet-official

The command line does the same in one step::

    invhide convert-official model.pt -o runs/hinet-official
    invhide hide cover.png secret.png -o stego.png --model runs/hinet-official
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

import invhide
from invhide.errors import InvhideError, describe
from invhide.models.official import load_official, to_official_state_dict


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, nargs="?", help="the reference code's .pt file (default: a stand-in)")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/hinet-official"), help="output folder (default: runs/hinet-official)"
    )
    parser.add_argument("--blocks", type=int, default=16, help="blocks of the stand-in checkpoint (default: 16)")
    parser.add_argument("--size", type=int, default=64, help="side of the test images (default: 64)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the stand-in weights and the images (default: 0)")
    return parser.parse_args()


def write_stand_in(path: Path, blocks: int, seed: int) -> invhide.HiNet:
    """Save a HiNet with random weights in the reference code's format; return the model."""
    generator = torch.Generator().manual_seed(seed)
    model = invhide.HiNet(num_blocks=blocks, generator=generator)
    with torch.no_grad():  # away from the identity initialisation, so the check below means something
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn(parameter.shape, generator=generator))
    torch.save({"net": to_official_state_dict(model), "opt": {}}, path)
    return model.eval()


def convert(args: argparse.Namespace) -> None:
    generator = torch.Generator().manual_seed(args.seed)
    cover, secret = torch.rand(2, 1, 3, args.size, args.size, generator=generator)

    with tempfile.TemporaryDirectory() as folder:
        original = None
        path = args.checkpoint
        if path is None:
            path = Path(folder) / "model.pt"
            original = write_stand_in(path, args.blocks, args.seed)
            print(f"wrote a stand-in reference checkpoint with {args.blocks} blocks: {path.name}")

        # 1. Import: keys renamed (f -> phi, r -> rho, y -> eta), shapes checked, eval mode.
        model = load_official(path)
        print(f"imported {model.num_blocks} blocks, {sum(p.numel() for p in model.parameters()):,} parameters")

    with torch.inference_mode():
        stego, lost = model.hide(cover, secret)
        exact = model.reveal(stego, z=lost)
        print(f"reveal(stego, z=lost) gives the secret back: max error {(exact - secret).abs().max():.1e}")
        if original is not None:
            same = torch.equal(original.hide(cover, secret)[0], stego)
            print(f"same stego as the model the checkpoint came from: {same}")

    # 2. Save as safetensors + JSON config, and load it back.
    saved = invhide.save(model, args.out)
    print(f"wrote {saved} and {saved.parent / 'config.json'}")
    again = invhide.load(args.out)
    with torch.inference_mode():
        print(f"reloaded {type(again).__name__}: same stego: {torch.equal(again.hide(cover, secret)[0], stego)}")
    print(f"use it with: invhide hide cover.png secret.png -o stego.png --model {args.out}")


def main() -> int:
    args = parse_args()
    try:
        convert(args)
    except InvhideError as error:  # a missing file, or one that is not a reference checkpoint: one line
        print(f"import_reference_checkpoint.py: error: {describe(error)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
