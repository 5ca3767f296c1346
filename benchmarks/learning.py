#!/usr/bin/env python
"""Learning speed: the quality each training configuration reaches in the same wall-clock budget on this machine.

Every configuration of the table ``CONFIGS`` below is trained with invhide's
own :class:`~invhide.training.trainer.Trainer` on ``../shared/data/photos49``
for ``--budget-minutes`` of training, then measured on
``../shared/data/kodak24`` by the test protocol of ``../shared/data/README.md``
(image i hides image (i + 12) mod 24, 24 pairs, both centre-cropped to 256x256):
PSNR on RGB of cover/stego and secret/recovery, from the float stego and from
the stego rounded to 8 bits (what a PNG holds). Run every configuration in one
session on one machine, with nothing else running, so the rows compare::

    python benchmarks/learning.py --budget-minutes 10                  # every configuration, 10 min each
    python benchmarks/learning.py --budget-minutes 30 --configs quick ema
    python benchmarks/learning.py --list                               # the configurations
    python benchmarks/learning.py --budget-minutes 0.3 --configs quick ema --out runs/learning-smoke

How the budget is kept. The Trainer counts steps, and the cosine schedule
needs the number of steps before the first one, so each configuration is
first calibrated: a throwaway copy of it (same model, data, precision, weight
average) trains for a few seconds (``--calibration-seconds``, by default 5%
of the budget, 5 to 60 s), the steps after the first two are timed, and
the run gets ``budget x steps/s`` steps. Calibration and evaluation are not
counted in the budget; the table shows the steps/s the run itself achieved,
so a machine that got busier shows as a run that took longer than its budget
(column ``train s``). On a CPU that other jobs share, pass ``--threads 1``.

Two configurations use the Trainer's options for more learning per second:

- ``ema``: ``TrainConfig(ema_decay=0.999)``, an exponential moving average
  of the weights (:class:`invhide.training.averaging.WeightAverage`, with
  the warm-up ``decay_n = min(decay, (1 + n) / (10 + n))``); the average is
  what is measured and saved, and the raw weights are measured too.
- ``bf16``: ``TrainConfig(amp="bfloat16")``, bfloat16 autocast of the hide
  and reveal of training (the loss, the optimizer and the evaluation stay
  float32). It runs only where the CPU computes bfloat16 natively
  (:func:`invhide.training.precision.native_bfloat16`; otherwise the row
  says why it was skipped).

Resumable per configuration: ``OUT/<budget>min/<config>/result.json`` (every
figure, the settings, the machine, the loss curve) and ``model.safetensors``
(the measured weights) are written when a configuration finishes, and a
configuration whose ``result.json`` exists is not run again. The table of the
budget is printed at the end and written to ``OUT/<budget>min/summary.json``
(and to ``--json``); ``--markdown`` prints it as the results page's table
too. Run again with the same ``--out``, the finished rows are only read, so
``--markdown`` on a finished study trains nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from _shared import data_folder
from torch import nn

from invhide.evaluation.metrics import Evaluation, evaluate
from invhide.evaluation.speed import machine
from invhide.io import checkpoint
from invhide.io.datasets import ImageDataset, ImagePair, evaluation_pairs
from invhide.io.files import atomic_write
from invhide.training.precision import native_bfloat16
from invhide.training.recipes import Recipe, recipe
from invhide.training.trainer import Trainer

# --------------------------------------------------------------------------
# The configurations
# --------------------------------------------------------------------------

QUICK_MODEL: dict[str, Any] = {  # the quick recipe's model, as its config
    "class": "InvertibleHider",
    "num_blocks": 4,
    "subnet": {"name": "conv", "hidden": 64, "depth": 3},
    "layout": "hinet",
}


@dataclass(frozen=True)
class Config:
    """One row of the study.

    Attributes:
        name: the row's name (``--configs``).
        about: what it changes against the quick recipe.
        recipe: the recipe that gives the loss and every training setting
            not overridden (:func:`invhide.training.recipes.recipe`).
        model: the model's config (:func:`invhide.io.checkpoint.model_from_config`);
            ``None`` for the recipe's own model.
        settings: :class:`~invhide.training.config.TrainConfig` overrides
            (``steps`` is set from the budget).
        ema: decay of an exponential moving average of the weights
            (``TrainConfig.ema_decay``), which is then what is measured;
            ``None`` for none.
        precision: ``"float32"``, or ``"bfloat16"`` for autocast in the
            model's hide and reveal while training (``TrainConfig.amp``).
    """

    name: str
    about: str
    recipe: str = "quick"
    model: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    ema: float | None = None
    precision: str = "float32"


def _quick(**changes: Any) -> dict[str, Any]:
    return {**QUICK_MODEL, **changes}


CONFIGS: tuple[Config, ...] = (
    Config(
        "quick", "the quick recipe as it ships: 4 conv blocks (hidden 64, depth 3), crop 64, 8 pairs, lr 2e-3 cosine"
    ),
    Config("blocks-2", "2 blocks instead of 4", model=_quick(num_blocks=2)),
    Config("blocks-8", "8 blocks instead of 4", model=_quick(num_blocks=8)),
    Config("conv-32", "conv subnets of width 32", model=_quick(subnet={"name": "conv", "hidden": 32, "depth": 3})),
    Config("conv-128", "conv subnets of width 128", model=_quick(subnet={"name": "conv", "hidden": 128, "depth": 3})),
    Config("dense", "HiNet's dense subnets (growth 32, 5 convs)", model=_quick(subnet={"name": "dense", "growth": 32})),
    Config(
        "residual",
        "residual subnets (hidden 64, 2 blocks)",
        model=_quick(subnet={"name": "residual", "hidden": 64, "depth": 2}),
    ),
    Config(
        "crop-128", "crops of 128 in batches of 4 pairs (2x the pixels a step)", settings={"crop": 128, "batch_size": 4}
    ),
    Config(
        "crop-32",
        "crops of 32 in batches of 16 pairs (half the pixels a step)",
        settings={"crop": 32, "batch_size": 16},
    ),
    Config("lr-4e-3", "learning rate 4e-3 (cosine)", settings={"lr": 4e-3}),
    Config("lr-constant", "constant learning rate 2e-3 after the warm-up", settings={"schedule": "constant"}),
    Config("ema", "an exponential moving average of the weights (decay 0.999) is measured", ema=0.999),
    Config("bf16", "bfloat16 autocast on the CPU for the hide and reveal of training", precision="bfloat16"),
    Config(
        "reference-code",
        "anchor: the reference code's recipe (HiNet, 16 dense blocks, crop 224, 8 pairs, lr 10^-4.5, summed MSE)",
        recipe="reference-code",
    ),
)
"""The rows of the study, the quick recipe first and the reference code's recipe, the anchor, last."""

CONFIG_NAMES = tuple(c.name for c in CONFIGS)
BASE_SETTINGS = dict(val_every=0, checkpoint_every=0, tensorboard=False, num_workers=0)
"""What every run changes against its recipe: no periodic validation or checkpoints (measured after the budget)."""


# --------------------------------------------------------------------------
# One configuration
# --------------------------------------------------------------------------


@dataclass
class Setup:
    """What every configuration shares: data, device, seed."""

    device: torch.device
    seed: int
    photos: Path
    pairs: list[ImagePair]
    datasets: dict[int, ImageDataset] = field(default_factory=dict)
    progress: bool = False

    def dataset(self, crop: int) -> ImageDataset:
        if crop not in self.datasets:
            self.datasets[crop] = ImageDataset(self.photos, crop=crop, cache=True)
        return self.datasets[crop]


def _recipe(config: Config, steps: int, **extra: Any) -> Recipe:
    extra = {**extra, "ema_decay": config.ema, "amp": config.precision}
    chosen = recipe(config.recipe, **{**BASE_SETTINGS, **config.settings, **extra, "steps": steps})
    if chosen.config.warmup_steps >= steps:  # a calibration run, or a budget of a few steps
        chosen = recipe(config.recipe, **{**BASE_SETTINGS, **config.settings, **extra, "steps": steps,
                                          "warmup_steps": steps // 10})  # fmt: skip
    return chosen


def _build(config: Config, chosen: Recipe, setup: Setup) -> Trainer:
    """A Trainer for ``config``; its :attr:`~invhide.training.trainer.Trainer.trained_model` is what is measured."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(setup.seed)
        model = checkpoint.model_from_config(config.model) if config.model is not None else chosen.build_model()
    return Trainer(
        model,
        chosen.build_loss(),
        setup.dataset(chosen.config.crop),
        chosen.config,
        val_pairs=None,
        out_dir=None,
        device=setup.device,
        progress=setup.progress,
    )


def calibrate(config: Config, setup: Setup, seconds: float) -> dict[str, float]:
    """Steps per second of ``config`` on this machine now, from a throwaway run of about ``seconds``."""

    def timed(steps: int) -> tuple[float, int]:
        trainer = _build(config, _recipe(config, steps, log_every=1), setup)
        history = trainer.fit().history
        times = [record["time"] for record in history]
        skip = 2  # the first steps warm the allocator and oneDNN's kernel cache: timed from the end of step 2
        return (times[-1] - times[skip - 1]) / (len(times) - skip), steps

    per_step, steps = timed(4)
    wanted = int(min(200, max(4, seconds / max(per_step, 1e-9))))
    if wanted > 6:
        per_step, steps = timed(wanted)
    return {"steps": steps, "seconds_per_step": per_step, "steps_per_s": 1 / per_step}


def psnr_table(evaluation: Evaluation) -> dict[str, dict[str, float]]:
    """Mean RGB PSNR of cover/stego and secret/recovery for each stego setting."""
    return {
        stego: {
            "stego": evaluation.mean("cover/stego", "psnr", "rgb", stego),
            "recovered": evaluation.mean("secret/recovery", "psnr", "rgb", stego),
        }
        for stego in evaluation.stego_settings
    }


def measure(model: nn.Module, setup: Setup) -> tuple[Evaluation, float]:
    start = time.perf_counter()
    generator = torch.Generator(setup.device).manual_seed(setup.seed)
    evaluation = evaluate(model.eval(), setup.pairs, device=setup.device, generator=generator)
    return evaluation, time.perf_counter() - start


def run_config(config: Config, setup: Setup, budget: float, calibration_seconds: float, folder: Path) -> dict[str, Any]:
    """Calibrate, train for ``budget`` seconds' worth of steps, measure on kodak24; write the result and the model."""
    rate = calibrate(config, setup, calibration_seconds)
    steps = max(1, math.floor(budget * rate["steps_per_s"]))
    chosen = _recipe(config, steps, log_every=max(1, steps // 200))
    print(
        f"[{config.name}] calibrated {rate['steps_per_s']:.3g} steps/s over {rate['steps']} steps: "
        f"{steps} steps for {budget:.0f} s",
        flush=True,
    )
    trainer = _build(config, chosen, setup)
    trained = trainer.fit()
    model, measured = trainer.model, trainer.trained_model
    evaluation, eval_seconds = measure(measured, setup)
    result: dict[str, Any] = {
        "name": config.name,
        "about": config.about,
        "budget_seconds": budget,
        "steps": trained.steps,
        "train_seconds": trained.seconds,
        "steps_per_s": trained.steps / trained.seconds,
        "rollbacks": trained.rollbacks,
        "skipped_updates": trained.skipped,
        "calibration": rate,
        "kodak24": psnr_table(evaluation),
        "evaluation": evaluation.to_dict(per_image=False),
        "evaluation_seconds": eval_seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
        "settings": {
            "recipe": chosen.name,
            "model": model.config(),
            "loss": chosen.build_loss().config(),
            "train": chosen.config.to_dict(),
            "ema": config.ema,
            "precision": config.precision,
        },
        "history": trained.history,
    }
    if measured is not model:  # what the average adds: the raw weights measured the same way
        result["kodak24_raw_weights"] = psnr_table(measure(model, setup)[0])
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint.save(measured, folder / "model.safetensors")
    return result


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------

# (header, width, format, cell): the cells of one row of the table.
COLUMNS: tuple[tuple[str, int, str, Callable[[dict[str, Any]], Any]], ...] = (
    ("config", 15, "<", lambda r: r["name"]),
    ("steps", 7, ">", lambda r: r["steps"]),
    ("steps/s", 8, ">.2f", lambda r: r["steps_per_s"]),
    ("train s", 8, ">.0f", lambda r: r["train_seconds"]),
    ("stego float", 12, ">.2f", lambda r: r["kodak24"]["float"]["stego"]),
    ("secret float", 13, ">.2f", lambda r: r["kodak24"]["float"]["recovered"]),
    ("stego 8-bit", 12, ">.2f", lambda r: r["kodak24"]["8-bit"]["stego"]),
    ("secret 8-bit", 13, ">.2f", lambda r: r["kodak24"]["8-bit"]["recovered"]),
    ("rollbacks", 10, ">", lambda r: r["rollbacks"]),
)


def table(results: list[dict[str, Any]]) -> str:
    """The results as a text table, one row per configuration (skipped ones say why)."""
    lines = ["".join(f"{name:{'<' if i == 0 else '>'}{width}}" for i, (name, width, _, _) in enumerate(COLUMNS))]
    for result in results:
        if "skipped" in result:
            lines.append(f"{result['name']:<15}skipped: {result['skipped']}")
        else:
            lines.append("".join(f"{cell(result):{fmt[0]}{width}{fmt[1:]}}" for _, width, fmt, cell in COLUMNS))
    return "\n".join(lines)


def markdown(results: list[dict[str, Any]]) -> str:
    """The results as the docs' Markdown table (results page): :data:`COLUMNS`, with what each row changes."""
    header = ["configuration", "what changes against the quick recipe", *(name for name, *_ in COLUMNS[1:])]
    lines = ["| " + " | ".join(header) + " |", "| --- | --- |" + " ---: |" * (len(COLUMNS) - 1)]
    about = {c.name: c.about for c in CONFIGS}
    for r in results:
        cells = [f"`{r['name']}`", r.get("about", about.get(r["name"], ""))]
        if "skipped" in r:
            cells += [f"not run: {r['skipped']}"] + [""] * (len(COLUMNS) - 2)
        else:
            cells += [f"{cell(r):{fmt[1:]}}" for _, _, fmt, cell in COLUMNS[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=_positive, default=10.0, help="training time per configuration")
    parser.add_argument(
        "--configs", nargs="+", metavar="NAME", help=f"rows to run (default: all): {', '.join(CONFIG_NAMES)}"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/learning"), help="output folder (runs/learning)")
    parser.add_argument("--json", type=Path, help="also write the table's results to this JSON file")
    parser.add_argument("--calibration-seconds", type=_positive, help="calibration (5%% of the budget, 5-60 s)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default: cpu)")
    parser.add_argument(
        "--threads", type=int, help="torch threads (default: torch's choice; 1 on a CPU other jobs share)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the models, the data and z (default: 0)")
    parser.add_argument("--progress", action="store_true", help="show the Trainer's progress bar")
    parser.add_argument("--list", action="store_true", help="print the configurations and exit")
    parser.add_argument("--markdown", action="store_true", help="also print the table as the results page's Markdown")
    return parser


def run_all(
    chosen: list[Config], setup: Setup, budget: float, calibration: float, folder: Path, here: str
) -> list[dict[str, Any]]:
    """Each row read back when its ``result.json`` exists, skipped for ``bf16`` without native bfloat16, else run."""
    bf16_ok, bf16_why = native_bfloat16(setup.device)
    results = []
    for config in chosen:
        target = folder / config.name / "result.json"
        if target.exists():
            result = json.loads(target.read_text())
            note = "" if result.get("machine") == here else f" (measured on another machine: {result.get('machine')})"
            print(f"[{config.name}] done before: {target}{note}", flush=True)
        elif config.precision == "bfloat16" and not bf16_ok:
            result = {"name": config.name, "skipped": bf16_why}
            print(f"[{config.name}] skipped: {bf16_why}", flush=True)
        else:
            result = run_config(config, setup, budget, calibration, folder / config.name)
            result.update(machine=here, command=shlex.join([sys.executable, *sys.argv]), bfloat16=bf16_why)
            with atomic_write(target, "w") as file:
                file.write(json.dumps(result, indent=2) + "\n")
            print(f"[{config.name}] {table([result]).splitlines()[1]}", flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        for config in CONFIGS:
            print(f"{config.name:<15}{config.about}")
        return
    unknown = sorted(set(args.configs or ()) - set(CONFIG_NAMES))
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIG_NAMES)}")
    chosen = [c for c in CONFIGS if args.configs is None or c.name in args.configs]
    budget = args.budget_minutes * 60
    calibration = args.calibration_seconds or min(60.0, max(5.0, 0.05 * budget))
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    pairs = evaluation_pairs(data_folder("kodak24"), size=256)
    setup = Setup(device, args.seed, data_folder("photos49"), pairs, progress=args.progress)
    here = machine(device)
    bf16_ok, bf16_why = native_bfloat16(device)
    print(f"machine: {here}\nbfloat16: {'yes' if bf16_ok else 'no'} ({bf16_why})")
    print(f"budget: {budget:.0f} s of training per configuration; calibration {calibration:.0f} s", flush=True)
    folder = args.out / f"{args.budget_minutes:g}min"
    results = run_all(chosen, setup, budget, calibration, folder, here)
    print(f"\nkodak24, 24 pairs, 256x256 centre crops, RGB PSNR (dB); {args.budget_minutes:g} min of training each")
    print(f"machine: {here}")
    print(table(results))
    if args.markdown:
        print("\n" + markdown(results))
    summary = [{k: v for k, v in r.items() if k not in ("history", "evaluation")} for r in results]
    folder.mkdir(parents=True, exist_ok=True)
    for path in (folder / "summary.json", args.json):
        if path is not None:
            with atomic_write(path, "w") as file:
                file.write(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
