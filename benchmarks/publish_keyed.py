#!/usr/bin/env python
"""Publish the keyed fine-tune of ``benchmarks/keyed_finetune.py`` into the model zoo, with its measured record.

Reads the finished run's folder (weights, ``log.jsonl``) and, when given, the
key measurements of ``benchmarks/keys.py`` (``--keys``); evaluates the model on
kodak24 and cbsd68 (256x256 centre crops, image i hiding image i + n/2, the
8-bit PNG stego and the float stego, under the public key: any key measures
alike, see the Keys page), in float32 and from float16-rounded weights, and
publishes it as a non-default model of ``invhide/models/trained``: float16
when that costs under 0.05 dB.

python benchmarks/publish_keyed.py --run benchmarks/trained/keyed-conv8-wip --name conv8-photos49-keyed \\
    --keys benchmarks/trained/keyed-conv8-wip/keys.json

A benchmark measures and prints; it never asserts.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

import invhide
from invhide.evaluation.metrics import evaluate
from invhide.io.datasets import evaluation_pairs
from invhide.models import zoo
from invhide.training.recipes import recipe

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BASE = "conv8-photos49-v2"
COMMAND = (
    "python benchmarks/keyed_finetune.py --out runs/keyed-v1 --steps 4000 --lr 3e-4 "
    "--train-dir ../shared/data/photos49 --val-dir ../shared/data/kodak24"
)


def tables(model: torch.nn.Module) -> dict[str, Any]:
    """Table 2 figures on kodak24 and cbsd68 at 256x256, and what float16 storage costs on kodak24."""
    found: dict[str, Any] = {}
    for name in ("kodak24", "cbsd68"):
        found[f"{name}@256"] = evaluate(model, evaluation_pairs(DATA / name, size=256)).to_dict(per_image=False)
    rounded = copy.deepcopy(model).half().float()
    half = evaluate(rounded, evaluation_pairs(DATA / "kodak24", size=256)).to_dict(per_image=False)
    loss = {
        row: found["kodak24@256"]["results"]["8-bit"][row]["rgb"]["psnr"]["mean"]
        - half["results"]["8-bit"][row]["rgb"]["psnr"]["mean"]
        for row in ("cover/stego", "secret/recovery")
    }
    found["float16_storage"] = {"kodak24@256 8-bit RGB PSNR lost (dB)": loss}
    return found


def fine_tune(run: Path) -> tuple[dict[str, Any], int, float, dict[str, Any]]:
    """The fine-tune's settings, steps, wall seconds (from its log) and the explosion guard's events."""
    config = recipe(
        "cpu", steps=4000, lr=3e-4, warmup_steps=100, quantize_from=0, val_every=1000, checkpoint_every=250
    ).config
    steps, guard = run_log(run)
    return dataclasses.asdict(config), steps, 75 * 60 + 488.4, guard  # wall time as the run's README records it


def run_log(run: Path) -> tuple[int, dict[str, int]]:
    """A finished run's last training step and its explosion guard's events, from its ``log.jsonl``."""
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    events = [r for r in records if r.get("kind") == "event"]
    steps = max(r["step"] for r in records if r.get("kind") == "train")
    guard = {
        "rollbacks": sum(e["event"] == "rollback" for e in events),
        "skipped": sum(e["event"] == "skipped" for e in events),
    }
    return steps, guard


def publish_measured(model: torch.nn.Module, name: str, fields: dict[str, Any]) -> None:
    """Publish ``model`` with its record ``fields`` into the shipped folder: float16 when ``fields["tables"]``
    measured that to cost under 0.05 dB, else float32; prints what it wrote."""
    lost = max(fields["tables"]["float16_storage"]["kodak24@256 8-bit RGB PSNR lost (dB)"].values())
    dtype = "float16" if lost < 0.05 else "float32"
    published = zoo.publish(model, name, ROOT / "invhide" / "models" / "trained", fields, dtype=dtype, overwrite=True)
    print(f"published {published.name} ({published.dtype}, sha256 {published.sha256[:12]}...) -> {published.path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="the finished keyed fine-tune's folder")
    parser.add_argument("--name", required=True)
    parser.add_argument("--keys", type=Path, help="keys.json of benchmarks/keys.py for this model")
    parser.add_argument("--dry-run", action="store_true", help="measure and print, publish nothing")
    args = parser.parse_args()
    model = invhide.load(args.run).eval()
    base = zoo.record(BASE)
    measured = tables(model)
    if args.keys is not None:
        keys = json.loads(args.keys.read_text())
        measured["keys"] = {k: v for k, v in keys.items() if k != "rows"}
    config, steps, seconds, guard = fine_tune(args.run)
    kodak = measured["kodak24@256"]["results"]["8-bit"]
    stego, secret = (kodak[row]["rgb"]["psnr"]["mean"] for row in ("cover/stego", "secret/recovery"))
    headline = (
        f"its key hides the order of 8x8 blocks, not their content (see the Keys page); kodak24 8-bit: "
        f"{stego:.2f} dB stego, {secret:.2f} dB secret (RGB, 256x256); {BASE} made keyed + {steps} steps"
    )
    fields = {
        "headline": headline,
        "default": False,
        "training": {
            "data": "../shared/data/photos49 (49 photographs)",
            "validation": "../shared/data/kodak24 (24 pairs, 256x256)",
            "recipe": "cpu",
            "config": config,
            "model": "final",
            "guard": guard,
            "base": {"name": BASE, "steps": base.steps, "wall_seconds": base.wall_seconds, "command": base.command},
            "this_run": {"steps": steps, "wall_seconds": seconds, "keys": "a fresh random key per pair and step"},
        },
        "steps": base.steps + steps,
        "wall_seconds": base.wall_seconds + seconds,
        "hardware": zoo.hardware("cpu"),
        "command": f"{base.command} && {COMMAND}",
        "tables": measured,
    }
    print(json.dumps({k: v for k, v in fields.items() if k != "tables"}, indent=1))
    print(json.dumps(measured["float16_storage"]), json.dumps({k: measured[k]["results"]["8-bit"] for k in measured
                                                               if k.endswith("@256")})[:2000])  # fmt: skip
    if not args.dry_run:
        publish_measured(model, args.name, fields)


if __name__ == "__main__":
    main()
