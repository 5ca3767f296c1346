#!/usr/bin/env python
"""Publish a shipped model again with the refiner ``benchmarks/train_refiner.py`` trained for it, measured anew.

The hider's weights are the shipped model's, untouched (checked here): stegos
made with the model before reveal with it after, better. The record keeps the
model's training and adds the refiner's (from the run's ``results.json``);
its tables are measured again on kodak24 and cbsd68 (256x256, the 8-bit PNG
stego and the float stego, ``z = 0``, a keyed model under the public key,
which measures as any key does), with ``--keys``' key measurements when
given. float16 when that costs under 0.05 dB::

    python benchmarks/publish_refined.py --run runs/refined --name conv8-photos49-keyed \\
        --keys benchmarks/trained/keyed-conv8-wip/keys-refined.json

A benchmark measures and prints; it never asserts.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch
from publish_keyed import publish_measured, tables

import invhide
from invhide.models import zoo
from invhide.models.hider import PublicKeyWarning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="the finished train_refiner.py folder")
    parser.add_argument("--name", required=True, help="the shipped model it refines (published again under it)")
    parser.add_argument("--keys", type=Path, help="keys.json of benchmarks/keys.py for the refined model")
    parser.add_argument("--default", action="store_true", help="make it the default model")
    parser.add_argument("--dry-run", action="store_true", help="measure and print, publish nothing")
    args = parser.parse_args()
    base, shipped = zoo.record(args.name), invhide.load(args.name).float()
    model = invhide.load(args.run).eval()
    hider = {k: v for k, v in model.state_dict().items() if not k.startswith("refiner.")}
    for name, value in shipped.state_dict().items():
        if not torch.equal(value, hider[name].to(value.dtype)):
            raise SystemExit(f"{args.run}: {name} differs from {args.name}'s: not a refiner of the shipped hider")
    run = json.loads((args.run / "results.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PublicKeyWarning)
        measured = tables(model)
    if args.keys is not None:
        measured["keys"] = {k: v for k, v in json.loads(args.keys.read_text()).items() if k != "rows"}
    kodak = measured["kodak24@256"]["results"]["8-bit"]
    stego, secret = (kodak[row]["rgb"]["psnr"]["mean"] for row in ("cover/stego", "secret/recovery"))
    options = run["command"]
    command = (
        f"python benchmarks/train_refiner.py --model {args.name} --out runs/refined "
        f"--train-dir ../shared/data/photos49 --val-dir ../shared/data/kodak24 --hidden {options['hidden']} "
        f"--depth {options['depth']} --pairs {options['pairs']} --crop {options['crop']} "
        f"--window {options['window']} --steps {options['steps']} --batch-size {options['batch_size']} "
        f"--lr {options['lr']} --seed {options['seed']}"
    )
    seconds = 60 * run["training"]["minutes"]
    previous = base.headline.split("; kodak24 8-bit:")[0]
    steps = base.steps
    headline = (
        f"{previous}; kodak24 8-bit: {stego:.2f} dB stego, {secret:.2f} dB secret (RGB, 256x256); "
        f"8 blocks, {steps} steps, and a refiner of the revealed secret"
    )
    refiner = {
        "architecture": model.config()["refiner"],
        "data": f"{options['pairs']} pairs of {options['crop']}x{options['crop']} photos49 crops, one key each",
        "steps": options["steps"],
        "wall_seconds": seconds,
        "held_out": {k: run["training"][k] for k in ("held_out", "psnr_before", "psnr_after")},
        "command": command,
    }
    fields = {
        "headline": headline,
        "default": bool(args.default or base.default),
        "training": {**base.training, "refiner": refiner},
        "steps": steps,
        "wall_seconds": base.wall_seconds + seconds,
        "hardware": base.hardware,
        "command": f"{base.command} && {command}",
        "tables": measured,
    }
    print(json.dumps({k: v for k, v in fields.items() if k not in ("tables", "training")}, indent=1))
    print(json.dumps(measured["float16_storage"]))
    for name in ("kodak24@256", "cbsd68@256"):
        rows = measured[name]["results"]
        print(name, {kind: {row: round(rows[kind][row]["rgb"]["psnr"]["mean"], 2) for row in rows[kind]}
                     for kind in rows})  # fmt: skip
    if not args.dry_run:
        publish_measured(model, args.name, fields)


if __name__ == "__main__":
    main()
