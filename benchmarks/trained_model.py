#!/usr/bin/env python
"""Measure a trained run and publish it as a shipped model, with its record, figures and tables.

Takes a training run's folder (what ``invhide train --out RUN`` writes) and:

1. loads its final model (``RUN/model.safetensors``), or with
   ``--before-rounding`` the float model of the step before its 8-bit
   fine-tune (``RUN/before-rounding/``);
2. measures the paper's Table 2 on kodak24, cbsd68 and mcmaster from
   ``../shared/data`` (image i hides image (i + n/2) mod n), at 256x256 centre
   crops and at full size (the largest even square that fits both images of
   a pair), RGB and Y, PSNR / SSIM / MAE / RMSE, for the float stego and the
   stego rounded to 8 bits (a PNG);
3. measures what storing the weights in float16 changes, on kodak24 at 256
   (the largest difference of stego and recovery, and the PSNRs), and stores
   float16 only when no mean PSNR moves by 0.01 dB or more;
4. times hide and reveal on this CPU (images/s at 256x256 and 512x512,
   batch 1, median of 5);
5. writes the Fig. 3-style figure (3 kodak24 pairs, residuals x10) and the
   training curves into ``docs/figures/``;
6. publishes it into ``invhide/models/trained/`` (:func:`invhide.models.zoo.publish`)
   with the record: architecture, training data and settings, the sessions
   of compute read from the run's logs, hardware, the command, the tables;
7. prints the Markdown tables for the Trained models page and the README.

Usage::

    python benchmarks/trained_model.py RUN --name NAME --default \\
        --command "invhide train ..." [--base NAME] [--before-rounding] \\
        [--security-json FILE --security-command "invhide eval --security ..."] [--dry-run]

``--dry-run`` measures and prints without publishing or writing figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _shared import data_folder

from invhide.evaluation.metrics import Evaluation, evaluate
from invhide.evaluation.speed import time_call
from invhide.io import checkpoint
from invhide.io.datasets import evaluation_pairs
from invhide.models import zoo
from invhide.training.checkpoints import latest_checkpoint, read_loop_state
from invhide.training.trainer import BEFORE_ROUNDING

ROOT = Path(__file__).resolve().parents[1]
TEST_SETS = ("kodak24", "cbsd68", "mcmaster")
SIZES: tuple[int | None, ...] = (256, None)


def size_name(size: int | None) -> str:
    return f"{size}" if size is not None else "full"


def measure(model: torch.nn.Module, pairs: list[Any]) -> Evaluation:
    """Table 2 of ``pairs``, revealed as users reveal (``z`` zeros); one pair per pass above 256x256."""
    return evaluate(model, pairs, batch_size=1 if pairs and pairs[0].cover.shape[-1] > 256 else 4)


def table_markdown(evaluations: dict[str, Evaluation], stego: str) -> str:
    """The paper's Table 2 layout, one row per test set and channel, for one stego setting."""
    lines = [
        "| test set | size | channel | stego PSNR | stego SSIM | stego MAE | stego RMSE "
        "| secret PSNR | secret SSIM | secret MAE | secret RMSE |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, evaluation in evaluations.items():
        data, size = key.split("@")
        for channel in ("rgb", "y"):
            cells = []
            for row in ("cover/stego", "secret/recovery"):
                for metric in ("psnr", "ssim", "mae", "rmse"):
                    value = evaluation.mean(row, metric, channel, stego)
                    cells.append(f"{value:.4f}" if metric == "ssim" else f"{value:.2f}")
            lines.append(
                f"| {data} ({evaluation.num_pairs} pairs) | {size} | {channel.upper()} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def speeds(model: torch.nn.Module) -> dict[str, Any]:
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "batch": 1, "repeat": 5}
    device = torch.device("cpu")
    for side in (256, 512):
        generator = torch.Generator().manual_seed(side)
        cover, secret = torch.rand(2, 1, 3, side, side, generator=generator)
        with torch.inference_mode():
            stego, _ = model.hide(cover, secret)
            hide = time_call(lambda c=cover, s=secret: model.hide(c, s), device, repeat=5)
            reveal = time_call(lambda s=stego: model.reveal(s, generator=torch.Generator().manual_seed(0)), device, 5)
        out[f"{side}"] = {"hide_images_per_s": 1 / hide, "reveal_images_per_s": 1 / reveal,
                          "hide_s": hide, "reveal_s": reveal}  # fmt: skip
    return out


def sessions(run: Path, up_to: int | None = None) -> tuple[list[dict[str, Any]], int, float]:
    """The run's training sessions from ``log.jsonl``: (sessions, steps, training seconds in total).

    A session is a stretch of train records whose ``time`` grows; a resumed
    run starts its clock again at 0. ``up_to`` counts only the records up to
    that step (a model taken from the middle of the run).
    """
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    found: list[dict[str, Any]] = []
    last_time = None
    for record in records:
        if record.get("kind") != "train" or (up_to is not None and record["step"] > up_to):
            continue
        if last_time is None or record["time"] < last_time:
            found.append({"first_step": record["step"], "last_step": record["step"], "seconds": record["time"]})
        found[-1]["last_step"], found[-1]["seconds"] = record["step"], record["time"]
        last_time = record["time"]
    steps = found[-1]["last_step"] if found else 0
    return found, steps, sum(s["seconds"] for s in found)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the training run's folder")
    parser.add_argument("--name", required=True, help="the shipped model's name")
    parser.add_argument("--default", action="store_true", help="make it the default model")
    parser.add_argument("--command", required=True, help="the exact command that reproduced the run")
    parser.add_argument("--recipe", help="the recipe's name, for the record")
    parser.add_argument("--dry-run", action="store_true", help="measure and print; publish nothing")
    parser.add_argument("--json", type=Path, help="also write every measured figure here")
    parser.add_argument(
        "--before-rounding",
        action="store_true",
        help="take the run's float model of the step before its 8-bit fine-tune (RUN/before-rounding/) instead of its "
        "final model; steps and time are counted up to that step",
    )
    parser.add_argument(
        "--base",
        help="the model the run fine-tuned (invhide train --init): a shipped model's name or its record's JSON "
        "file; the record's steps, time and command are added to this one's",
    )
    parser.add_argument(
        "--security-json",
        type=Path,
        help="the --json output of `invhide eval --security --model NAME DIR` for this model: stored in the record "
        "as tables.security, with the command given by --security-command",
    )
    parser.add_argument("--security-command", help="the command that wrote --security-json")
    args = parser.parse_args()
    if (args.security_json is None) != (args.security_command is None):
        parser.error("--security-json and --security-command go together")
    if args.before_rounding and not run_config(args.run).get("quantize_from"):
        parser.error(f"{args.run}: the run has no quantize_from, so no model before the rounding")
    return args


def loop_state(run: Path) -> dict[str, Any]:
    """The loop state of the run's last checkpoint (settings, guard), or nothing when it kept no checkpoint."""
    latest = latest_checkpoint(run)
    return read_loop_state(latest) if latest is not None else {}


def run_config(run: Path) -> dict[str, Any]:
    return loop_state(run).get("config", {})


def load_run(args: argparse.Namespace) -> tuple[torch.nn.Module, list[dict[str, Any]], int, float]:
    """The run's model, sessions, steps and training seconds (up to the rounding with ``--before-rounding``)."""
    if args.before_rounding:
        model = checkpoint.load(args.run / BEFORE_ROUNDING / "model.safetensors").eval()
        return (model, *sessions(args.run, up_to=run_config(args.run)["quantize_from"]))
    return (checkpoint.load(args.run / "model.safetensors").eval(), *sessions(args.run))


def read_base(name_or_record: str | None) -> dict[str, Any] | None:
    """Name, steps, time, command and sessions of the model the run fine-tuned (``--base``)."""
    if name_or_record is None:
        return None
    if Path(name_or_record).is_file():  # the record of a model that no longer ships
        parent = json.loads(Path(name_or_record).read_text())
    else:
        parent = zoo.record(name_or_record).to_dict()
    base = {key: parent[key] for key in ("name", "steps", "wall_seconds", "command")}
    base["sessions"] = parent["training"].get("sessions")
    print(f"base: {base['name']}, {base['steps']} steps, {base['wall_seconds']:.0f} s")
    return base


def evaluate_all(model: torch.nn.Module) -> dict[str, Evaluation]:
    """The paper's Table 2 on every test set and size, printed as it goes."""
    start = time.perf_counter()
    evaluations: dict[str, Evaluation] = {}
    for name in TEST_SETS:
        folder = data_folder(name)
        for size in SIZES:
            e = evaluations[f"{name}@{size_name(size)}"] = measure(model, evaluation_pairs(folder, size=size))
            print(
                f"{name} {size_name(size)}: stego {e.mean('cover/stego', 'psnr'):.2f} / "
                f"{e.mean('cover/stego', 'psnr', stego='8-bit'):.2f} dB (float / 8-bit), secret "
                f"{e.mean('secret/recovery', 'psnr'):.2f} / {e.mean('secret/recovery', 'psnr', stego='8-bit'):.2f} dB",
                flush=True,
            )
    print(f"evaluation: {time.perf_counter() - start:.0f} s")
    return evaluations


def float16_storage(model: torch.nn.Module, full_eval: Evaluation) -> tuple[dict[str, Any], str]:
    """What float16 weights change on kodak24 at 256, and the dtype to store (float16 only if no PSNR moves 0.01 dB)."""
    half = copy.deepcopy(model).to(torch.float16).to(torch.float32)
    pairs = evaluation_pairs(data_folder("kodak24"), size=256)
    half_eval = measure(half, pairs)
    shifts = {
        f"{row} {stego}": half_eval.mean(row, "psnr", "rgb", stego) - full_eval.mean(row, "psnr", "rgb", stego)
        for row in ("cover/stego", "secret/recovery")
        for stego in ("float", "8-bit")
    }
    cover, secret = torch.stack([p.cover for p in pairs[:4]]), torch.stack([p.secret for p in pairs[:4]])
    with torch.inference_mode():
        s32, _ = model.hide(cover, secret)
        s16, _ = half.hide(cover, secret)
        r32, r16 = model.reveal(s32), half.reveal(s16)
    float16 = {
        "psnr_shift_db": shifts,
        "max_abs_stego": (s32 - s16).abs().max().item(),
        "max_abs_recovered": (r32 - r16).abs().max().item(),
    }
    dtype = "float16" if all(abs(v) < 0.01 for v in shifts.values()) else "float32"
    print(f"float16 storage: {json.dumps(float16)} -> store {dtype}")
    return float16, dtype


def headline(
    model: torch.nn.Module, k: Evaluation, steps: int, seconds: float, base: dict | None, run_steps: int
) -> str:
    """The record's one line: kodak24 8-bit PSNRs at 256, blocks, steps and training time."""
    return (
        f"kodak24 8-bit: {k.mean('cover/stego', 'psnr', stego='8-bit'):.2f} dB stego, "
        f"{k.mean('secret/recovery', 'psnr', stego='8-bit'):.2f} dB secret (RGB, 256x256); "
        f"{getattr(model, 'num_blocks', '?')} blocks, {steps} steps"
        + (f" ({base['steps']} of {base['name']} + {run_steps} fine-tuning)" if base is not None else "")
        + f", {seconds / 60:.0f} min on a {torch.get_num_threads()}-thread CPU"
    )


def security_tables(args: argparse.Namespace) -> dict[str, Any]:
    if args.security_json is None:
        return {}
    found = json.loads(args.security_json.read_text())
    print(f"security: {json.dumps({k: v for k, v in found.items() if k != 'per_image'})[:400]}")
    return {"security": {"command": args.security_command, **found}}


def write_figures(model: torch.nn.Module, run: Path, name: str) -> None:
    """The Fig. 3-style figure of three kodak24 pairs and the training curves, into ``docs/figures/``."""
    from invhide.evaluation.figures import hiding_figure, training_curves  # matplotlib: only when publishing

    figures = ROOT / "docs" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    shown = evaluation_pairs(data_folder("kodak24"), size=256)[:3]
    cover, secret = torch.stack([p.cover for p in shown]), torch.stack([p.secret for p in shown])
    with torch.inference_mode():
        stego, _ = model.hide(cover, secret)
        png = torch.round(stego.clamp(0, 1) * 255) / 255
        recovered = model.reveal(png, generator=torch.Generator().manual_seed(0))
    titles = [f"{p.names[0]} / {p.names[1]} (8-bit stego)" for p in shown]
    print("wrote", hiding_figure(cover, png, secret, recovered, figures / f"{name}-figure.png", titles=titles))
    print("wrote", training_curves(run, figures / f"{name}-curves.png"))


def guard_of(loop: dict[str, Any]) -> dict[str, Any]:
    """What the explosion guard did in the whole run, from its loop state."""
    return {"rollbacks": loop.get("rollbacks"), "skipped_updates": loop.get("skipped"),
            "final_lr_scale": loop.get("lr_scale")}  # fmt: skip


def record_fields(
    args: argparse.Namespace,
    model: torch.nn.Module,
    run: tuple[list[dict[str, Any]], int, float],
    base: dict[str, Any] | None,
    tables: dict[str, Any],
) -> dict[str, Any]:
    """The fields of the model's record (:func:`invhide.models.zoo.publish`); steps and time include the base's."""
    run_sessions, run_steps, run_seconds = run
    steps = run_steps + (base["steps"] if base is not None else 0)
    seconds = run_seconds + (base["wall_seconds"] if base is not None else 0.0)
    line = headline(model, tables["kodak24@256"], steps, seconds, base, run_steps)
    print(f"headline: {line}")
    loop = loop_state(args.run)
    chosen = (
        "before-rounding: the float model of the step before the 8-bit fine-tune" if args.before_rounding else "final"
    )
    training = {
        "data": "../shared/data/photos49 (49 photographs)",
        "validation": "../shared/data/kodak24 (24 pairs, 256x256)",
        "recipe": args.recipe,
        "config": loop.get("config", {}),
        "sessions": run_sessions,
        "model": chosen,
        "guard": guard_of(loop),
        "base": base,
        "this_run": {"steps": run_steps, "wall_seconds": run_seconds},
    }
    return {
        "headline": line,
        "default": args.default,
        "training": training,
        "steps": steps,
        "wall_seconds": seconds,
        "hardware": zoo.hardware("cpu"),
        "command": args.command if base is None else f"{base['command']} && {args.command}",
        "tables": {key: e.to_dict(per_image=False) if isinstance(e, Evaluation) else e for key, e in tables.items()},
    }


def main() -> None:
    args = parse_args()
    model, *run = load_run(args)
    print(f"guard (whole run): {json.dumps(guard_of(loop_state(args.run)))}")
    base = read_base(args.base)
    print(f"model: {json.dumps(model.config())}, {sum(p.numel() for p in model.parameters()):,} parameters")
    print(f"training: {run[1]} steps, {run[2]:.0f} s in {len(run[0])} session(s)")
    evaluations = evaluate_all(model)
    float16, dtype = float16_storage(model, evaluations["kodak24@256"])
    speed = speeds(model)
    timings = {k: v for k, v in speed.items() if k[0].isdigit()}
    print(f"speed (batch 1, {speed['threads']} threads): {json.dumps(timings)}")
    tables = {**evaluations, "float16_storage": float16, "speed": speed, **security_tables(args)}
    fields = record_fields(args, model, (run[0], run[1], run[2]), base, tables)
    for stego in ("8-bit", "float"):
        print(f"\n### {'8-bit PNG stego' if stego == '8-bit' else 'float stego'}\n")
        print(table_markdown(evaluations, stego))
    if args.json is not None:
        args.json.write_text(json.dumps(fields, indent=2) + "\n")
    if args.dry_run:
        return
    write_figures(model, args.run, args.name)
    published = zoo.publish(model, args.name, ROOT / "invhide" / "models" / "trained", fields, dtype=dtype,
                            overwrite=True)  # fmt: skip
    print(f"published {published.name} ({published.dtype}, sha256 {published.sha256[:12]}...) -> {published.path}")


if __name__ == "__main__":
    sys.exit(main())
