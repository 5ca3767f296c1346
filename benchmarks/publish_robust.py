#!/usr/bin/env python
"""Publish a fine-tune trained through lossy channels (``invhide train --channel``) into the model zoo.

Reads the finished run's folder (weights, ``log.jsonl``, ``train.csv``) and
the per-channel measurements of ``benchmarks/robustness.py`` on it
(``--robustness``, real Pillow files); evaluates the model on kodak24 and
cbsd68 as ``benchmarks/publish_keyed.py`` does (8-bit PNG and float stego,
float16 storage cost), and publishes it as a non-default model of
``invhide/models/trained`` whose record declares the files it was trained to
reveal from (``trained_channels``, from the run's channels: ``invhide reveal`` then
reads those without a warning, and its warning for other models names this
one).

python benchmarks/publish_robust.py --run runs/robust-c16 --run runs/robust-c10 --name conv8-photos49-robust \\
    --robustness benchmarks/results/robustness-conv8-photos49-robust.json --base conv8-photos49-v2 \\
    --command "$FIRST && $SECOND" --config '{"steps": 5000, "lr": 5e-5, "crop": 64, "warmup_steps": 100, \\
    "quantize_from": 0, "weight_schedule": [[0, "concealing", 10.0]], "channels": ["jpeg:70-95", "noise:1-10", \\
    "round"]}' --headline "secret survives JPEG 70-95 and noise, partly: kodak24 JPEG q90 {jpeg90:.2f} dB, noise 2 \\
    {noise2:.2f}; PNG {stego:.2f} dB stego, {secret:.2f} secret; v2 + {steps} steps through channels"

($FIRST and $SECOND: the two commands of benchmarks/trained/conv8-photos49-robust/README.md.)

A benchmark measures and prints; it never asserts.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from publish_keyed import publish_measured, run_log, tables
from robustness import CHANNELS, PRIS_ATTACKS, rows

import invhide
from invhide.models import zoo
from invhide.training.channels import file_channels
from invhide.training.config import TrainConfig


def run_facts(run: Path) -> tuple[int, float, dict[str, int]]:
    """The run's steps and explosion guard events (:func:`publish_keyed.run_log`) and its training seconds (the
    last ``time`` of its ``train.csv``)."""
    steps, guard = run_log(run)
    with open(run / "train.csv", newline="") as file:
        seconds = float(list(csv.DictReader(file))[-1]["time"])
    return steps, seconds, guard


def channel_table(robustness: dict[str, Any]) -> dict[str, Any]:
    """The record's per-channel table: RGB PSNR means of stego and secret per real channel, and PRIS's average."""
    found = {setting: {"stego": stego, "secret": secret} for setting, stego, secret in rows(robustness)}
    return {
        "data": "kodak24, 24 pairs, 256x256 centre crops, real Pillow files (benchmarks/robustness.py)",
        "rgb_psnr_db": found,
        "pris_five_attacks_secret_db": sum(found[a]["secret"] for a in PRIS_ATTACKS) / len(PRIS_ATTACKS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--run", type=Path, action="append", required=True,
        help="the finished run's folder; repeat it for runs that continued each other, first to last (the model)",
    )  # fmt: skip
    parser.add_argument("--name", required=True)
    parser.add_argument("--robustness", type=Path, required=True, help="benchmarks/robustness.py's JSON of this run")
    parser.add_argument("--base", required=True, help="the shipped model the run started from (--init)")
    parser.add_argument("--command", required=True, help="the training command, as run")
    parser.add_argument(
        "--config", type=json.loads, required=True, help="the (last) run's TrainConfig settings, as JSON"
    )
    parser.add_argument("--headline", required=True, help="the record's one line; {stego}, {secret}, {jpeg90} ...")
    parser.add_argument("--dry-run", action="store_true", help="measure and print, publish nothing")
    args = parser.parse_args()
    robustness = json.loads(args.robustness.read_text())
    if robustness.get("channels") != list(CHANNELS):
        raise SystemExit(f"{args.robustness}: measured other channels than benchmarks/robustness.py's {CHANNELS}")
    model = invhide.load(args.run[-1]).eval()
    base = zoo.record(args.base)
    measured = {**tables(model), "channels": channel_table(robustness)}
    facts = [run_facts(run) for run in args.run]
    steps, seconds = sum(f[0] for f in facts), sum(f[1] for f in facts)
    guard = {kind: sum(f[2][kind] for f in facts) for kind in facts[0][2]}
    config = TrainConfig(**args.config)  # checked as the trainer checks it
    model.trained_channels = file_channels(config.channels)  # as the trainer sets it (a run may predate that)
    found = measured["channels"]["rgb_psnr_db"]
    headline = args.headline.format(
        stego=found["8-bit"]["stego"], secret=found["8-bit"]["secret"], steps=steps,
        **{setting.replace(":", ""): found[setting]["secret"] for setting in CHANNELS},
    )  # fmt: skip
    fields = {
        "headline": headline,
        "default": False,
        "training": {
            "data": "../shared/data/photos49 (49 photographs)",
            "validation": "../shared/data/kodak24 (24 pairs, 256x256)",
            "recipe": "cpu",
            "config": {key: getattr(config, key) for key in args.config},
            "model": "final",
            "guard": guard,
            "base": {key: getattr(base, key) for key in ("name", "steps", "wall_seconds", "command")},
            "this_run": {
                "steps": steps,
                "wall_seconds": seconds,
                "command": args.command,
                "runs": [{"steps": f[0], "wall_seconds": f[1]} for f in facts],
            },
        },
        "steps": base.steps + steps,
        "wall_seconds": base.wall_seconds + seconds,
        "hardware": zoo.hardware("cpu"),
        "command": f"{base.command} && {args.command}",
        "tables": measured,
    }
    print(json.dumps({k: v for k, v in fields.items() if k != "tables"}, indent=1))
    print(json.dumps(measured["float16_storage"]), json.dumps(measured["channels"], indent=1))
    if not args.dry_run:
        publish_measured(model, args.name, fields)


if __name__ == "__main__":
    main()
