#!/usr/bin/env python
"""The default model as a user meets it: ``invhide hide`` and ``invhide reveal`` with no ``--model``, one process each.

For each kodak24 pair (image i hides image (i + 12) mod 24), both images
are centre-cropped to ``--size`` and saved as PNG; then, each in its own
process, ``invhide hide cover.png secret.png -o stego.png`` (the stego is
an 8-bit PNG) and ``invhide reveal stego.png -o recovered.png``, both
without ``--model``, so the default shipped model is used. The script
prints the line each command announces the model with, then the RGB PSNR
of every stego PNG against its cover and of every recovered PNG against
its secret, and their means::

    python benchmarks/default_model_cli.py                       # the invhide on PATH
    python benchmarks/default_model_cli.py --invhide /tmp/venv/bin/invhide --size 512

With ``--keys`` it is the keyed round trip of a key holder: per pair
``invhide keygen -o key`` and ``-o other`` (two fresh 32-byte keys), ``invhide
hide ... --key-file key``, then three reveals, each in its own process: with
``--key-file key`` (the receiver), with ``--key-file other`` (a wrong key) and
with no key (the published default key, which the command announces). It
prints the PSNR of each reveal against the secret, and the no-information
baseline (the better of the stego and mid-grey, per pair, as
``benchmarks/keys.py`` measures it)::

    python benchmarks/default_model_cli.py --invhide /tmp/venv/bin/invhide --size 512 --keys

Run it with the ``invhide`` of a fresh ``pip install .`` to check what a
new user gets.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _shared import data_folder
from PIL import Image

from invhide.evaluation import metrics
from invhide.io.images import read_image


def centre_crop(path: Path, size: int) -> Image.Image:
    image = Image.open(path).convert("RGB")
    width, height = image.size
    if min(width, height) < size:
        sys.exit(f"{path}: {width}x{height} is smaller than --size {size}")
    left, top = (width - size) // 2, (height - size) // 2
    return image.crop((left, top, left + size, top + size))


def psnr(a: Path, b: Path) -> float:
    """RGB PSNR of two image files, as invhide measures it (:func:`invhide.evaluation.metrics.psnr`)."""
    return metrics.psnr(read_image(a)[None], read_image(b)[None]).item()


def grey_psnr(a: Path) -> float:
    """RGB PSNR of an image file against mid-grey (0.5 everywhere), the guess made knowing nothing."""
    image = read_image(a)[None]
    return metrics.psnr(image, image.new_full(image.shape, 0.5)).item()


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invhide", default="invhide", help="the invhide command to run (default: the one on PATH)")
    parser.add_argument("--size", type=int, default=512, help="centre-crop side (default: 512)")
    parser.add_argument("--data", default="kodak24", help="image set in ../shared/data (default: kodak24)")
    parser.add_argument("--keys", action="store_true", help="hide under a fresh key; reveal with it, another, none")
    parser.add_argument("--keep", type=Path, help="keep the images in this folder (default: a temporary one)")
    args = parser.parse_args()
    command = shutil.which(args.invhide) or args.invhide
    paths = sorted(p for p in data_folder(args.data).iterdir() if p.suffix.lower() == ".png")
    n = len(paths)
    work = args.keep or Path(tempfile.mkdtemp(prefix="invhide-default-"))
    work.mkdir(parents=True, exist_ok=True)
    stego_db, secret_db, announced = [], [], set()
    wrong_db, keyless_db, baseline_db = [], [], []
    start = time.perf_counter()
    for i, path in enumerate(paths):
        secret_path = paths[(i + n // 2) % n]
        pair = work / f"{i:02d}"
        pair.mkdir(exist_ok=True)
        cover, secret = pair / "cover.png", pair / "secret.png"
        centre_crop(path, args.size).save(cover)
        centre_crop(secret_path, args.size).save(secret)
        stego, recovered = pair / "stego.png", pair / "recovered.png"
        key, other = pair / "key", pair / "other"
        keyed = []
        if args.keys:
            for key_path in (key, other):
                key_path.unlink(missing_ok=True)
                run([command, "keygen", "-o", str(key_path)])
            keyed = ["--key-file", str(key)]
        hidden = run([command, "hide", str(cover), str(secret), "-o", str(stego), "--force", *keyed])
        revealed = run([command, "reveal", str(stego), "-o", str(recovered), "--force", *keyed])
        notes = hidden.stderr + revealed.stderr
        stego_db.append(psnr(cover, stego))
        secret_db.append(psnr(secret, recovered))
        line = f"{path.name} hides {secret_path.name}: stego {stego_db[-1]:.2f} dB, recovered {secret_db[-1]:.2f} dB"
        if args.keys:
            wrong, keyless = pair / "wrong-key.png", pair / "no-key.png"
            notes += run([command, "reveal", str(stego), "-o", str(wrong), "--force", "--key-file", str(other)]).stderr
            notes += run([command, "reveal", str(stego), "-o", str(keyless), "--force"]).stderr
            wrong_db.append(psnr(secret, wrong))
            keyless_db.append(psnr(secret, keyless))
            baseline_db.append(max(psnr(secret, stego), grey_psnr(secret)))
            line += f", wrong key {wrong_db[-1]:.2f} dB, no key {keyless_db[-1]:.2f} dB, baseline {baseline_db[-1]:.2f}"
        announced |= {text for text in notes.splitlines() if "model" in text or "key" in text}
        print(f"{line} ({hidden.stdout.strip().splitlines()[-1] if hidden.stdout.strip() else ''})", flush=True)
    print("\n".join(sorted(announced)))
    print(
        f"\n{n} pairs of {args.data} at {args.size}x{args.size}, 8-bit PNG stego, RGB: mean stego PSNR "
        f"{np.mean(stego_db):.2f} dB, mean recovered PSNR {np.mean(secret_db):.2f} dB "
        f"({time.perf_counter() - start:.0f} s, {command})"
    )
    if args.keys:
        print(
            f"revealed against the secret, mean: right key {np.mean(secret_db):.2f} dB, another key "
            f"{np.mean(wrong_db):.2f} dB (at most {np.max(wrong_db):.2f}), no key {np.mean(keyless_db):.2f} dB "
            f"(at most {np.max(keyless_db):.2f}); no-information baseline {np.mean(baseline_db):.2f} dB"
        )
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
