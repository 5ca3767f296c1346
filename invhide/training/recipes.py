"""Training recipes: the paper's, the reference code's, and a quick one for a laptop CPU.

A :class:`Recipe` bundles a model constructor, a loss and a
:class:`~invhide.training.trainer.TrainConfig`; :func:`recipe` returns one by name,
with any setting overridden.

=================== ======================================================
``"paper"``         HiNet (16 blocks, dense subnets), lambda_c 10,
                    lambda_r 1, lambda_f 10, Adam lr 10^-4.5, betas
                    (0.5, 0.999), eps 1e-6, weight decay 1e-5, 8 pairs of
                    256x256 crops, 80K steps, lr halved every 50K steps
                    (the reference code halves every 1000 epochs of 50
                    steps on DIV2K).
``"reference-code"`` as ``"paper"`` with the reference code's loss weights
                    (guide 1, reconstruction 5, low-frequency 1) and
                    224x224 crops.
``"quick"``         a 4-block hider with plain convolutional subnets,
                    trained with a higher learning rate on a cosine
                    schedule, Adam betas (0.9, 0.999), mean-reduced
                    losses and 64x64 crops, 1200 steps: about 7 minutes
                    on a 2-core CPU.
=================== ======================================================

The HiNet recipes train with the differentiable 8-bit rounding
(``quantize=True``): a model that reaches the paper's 45 to 50 dB changes its
cover by about one grey level, the size of the rounding error of a PNG, and
must learn to reveal from the rounded stego. The quick recipe does not: at its
29 to 36 dB the stego differs from the cover by several grey levels, so
rounding costs little; on kodak24 (``benchmarks/quality.py`` with and without
``--quantize``, 1200 steps each on photos49) training through the rounding
narrowed the float-to-8-bit recovery gap from 0.69 to 0.21 dB but cost 2.5 dB
of stego PSNR and 1.0 dB of 8-bit recovery. ``quantize=`` overrides either
choice.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from invhide.errors import InputError
from invhide.evaluation.metrics import Evaluation, evaluate
from invhide.io.datasets import SAMPLE_TEST, SAMPLE_TRAIN, ImageDataset, evaluation_pairs, sample_image_paths
from invhide.io.files import atomic_write
from invhide.models.hider import InvertibleHider
from invhide.models.hinet import HiNet
from invhide.nn import subnets
from invhide.training.config import TrainConfig
from invhide.training.losses import HidingLoss
from invhide.training.trainer import Trainer, TrainResult

__all__ = ["RECIPES", "Recipe", "Report", "recipe", "train_and_evaluate"]

RECIPES: tuple[str, ...] = ("paper", "reference-code", "quick")


@dataclass(frozen=True)
class Recipe:
    """A model, a loss and training settings that belong together.

    Attributes:
        name: the recipe's name.
        build_model: returns a freshly initialised model.
        build_loss: returns the loss.
        config: the training settings.
    """

    name: str
    build_model: Callable[[], nn.Module]
    build_loss: Callable[[], HidingLoss]
    config: TrainConfig


def _quick_model() -> InvertibleHider:
    return InvertibleHider(num_blocks=4, subnet=subnets.conv(hidden=64, depth=3), layout="hinet")


_QUICK = dict(
    steps=1200,
    batch_size=8,
    crop=64,
    lr=2e-3,
    betas=(0.9, 0.999),
    schedule="cosine",
    warmup_steps=20,
    grad_clip=10.0,
    val_every=400,
    checkpoint_every=400,
    log_every=10,
)


def recipe(name: str, **overrides: Any) -> Recipe:
    """The named recipe, with ``TrainConfig`` fields overridden.

    Args:
        name: one of :data:`RECIPES`.
        **overrides: ``TrainConfig`` fields, e.g. ``steps=100``.

    Raises:
        ValueError: unknown recipe or invalid setting.

    Example:
        >>> r = recipe("paper", steps=10)
        >>> r.config.steps, r.config.lr == 10**-4.5, r.build_loss().weights["concealing"]
        (10, True, 10.0)
    """
    if name == "paper":
        base: dict[str, Any] = dict(steps=80_000, batch_size=8, crop=256, schedule="step", lr_step=50_000)
        model, loss = HiNet, HidingLoss.paper
    elif name == "reference-code":
        base = dict(steps=80_000, batch_size=8, crop=224, schedule="step", lr_step=50_000)
        model, loss = HiNet, HidingLoss.reference_code
    elif name == "quick":
        base = dict(_QUICK)
        model, loss = _quick_model, lambda: HidingLoss.reference_code(reduction="mean")
    else:
        raise InputError(f"unknown recipe {name!r}; choose one of {RECIPES}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise InputError(f"unknown training setting(s) {unknown}; TrainConfig has {sorted(fields)}")
    settings = {"quantize": name != "quick", **base, **{k: v for k, v in overrides.items() if v is not None}}
    return Recipe(name, model, loss, TrainConfig(**settings))


@dataclass
class Report:
    """What :func:`train_and_evaluate` produced.

    Attributes:
        model: the trained model (eval mode).
        training: the :class:`~invhide.training.trainer.TrainResult`.
        evaluation: Table 2 results on the evaluation pairs (float and 8-bit
            stego); ``None`` on the ranks other than 0 under ``torchrun``.
        evaluation_seconds: time the evaluation took.
        files: what was written, by role (``model``, ``results``, ``figure``, ``curves``).
    """

    model: nn.Module
    training: TrainResult
    evaluation: Evaluation | None
    evaluation_seconds: float
    files: dict[str, Path] = field(default_factory=dict)


PathLike = str | os.PathLike[str]


def train_and_evaluate(
    chosen: Recipe,
    out_dir: PathLike,
    *,
    train_source: PathLike | Sequence[PathLike] | None = None,
    val_source: PathLike | Sequence[PathLike] | None = None,
    eval_size: int | None = 256,
    device: str | torch.device | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Report:
    """Train a recipe, evaluate it with the paper's protocol and write results and figures.

    Training images get random crops and flips; the evaluation pairs image
    ``i`` with image ``(i + n/2) mod n`` of ``val_source``, both centre-cropped
    to ``eval_size``. Without sources, the natural photographs shipped in
    scikit-image are used: :data:`~invhide.io.datasets.SAMPLE_TRAIN` for training and
    the held-out :data:`~invhide.io.datasets.SAMPLE_TEST` for evaluation.

    Writes, under ``out_dir``: checkpoints and logs (see
    :class:`~invhide.training.trainer.Trainer`), ``model.safetensors`` and
    ``config.json``, ``results.json`` (every metric, per image), and, when
    matplotlib is installed, ``figure.png`` (the paper's Fig. 3 layout) and
    ``curves.png``.

    Args:
        chosen: a :class:`Recipe`.
        out_dir: output folder (created).
        train_source: folder or image paths for training.
        val_source: folder or image paths for evaluation.
        eval_size: evaluation crop side (``None``: largest even square per pair).
        device: where to train and evaluate.
        resume: continue from the newest checkpoint in ``out_dir``.
        progress: show the training progress bar.
        log: where progress messages go.

    Returns:
        A :class:`Report`.
    """
    config = chosen.config
    out_dir = Path(out_dir)
    train_data = ImageDataset(
        train_source if train_source is not None else sample_image_paths(SAMPLE_TRAIN), crop=config.crop, cache=True
    )
    pairs = evaluation_pairs(val_source if val_source is not None else sample_image_paths(SAMPLE_TEST), size=eval_size)
    log(f"recipe {chosen.name!r}: {len(train_data)} training images, {len(pairs)} evaluation pairs")

    with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the caller's generator
        torch.manual_seed(config.seed)
        model = chosen.build_model()
    log(f"model: {json.dumps(model.config())} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(
        model,
        chosen.build_loss(),
        train_data,
        config,
        val_pairs=pairs,
        out_dir=out_dir,
        device=device,
        progress=progress,
    )
    training = trainer.fit(resume=resume)
    log(
        f"trained {training.steps} steps in {training.seconds:.0f} s "
        f"({training.steps / max(training.seconds, 1e-9):.2f} steps/s), {training.rollbacks} rollback(s)"
    )

    model.eval()
    if trainer.rank != 0:  # under torchrun, rank 0 evaluates and writes the files
        return Report(model, training, None, 0.0)
    start = time.perf_counter()
    # The same z as the trainer's own validation, so results.json and the last row of val.csv agree.
    generator = torch.Generator(trainer.device).manual_seed(config.seed)
    evaluation = evaluate(model, pairs, device=trainer.device, generator=generator)
    report = Report(model, training, evaluation, time.perf_counter() - start)
    report.files["model"] = out_dir / "model.safetensors"
    report.files["results"] = out_dir / "results.json"
    with atomic_write(report.files["results"], "w") as file:
        file.write(json.dumps(evaluation.to_dict(per_image=True), indent=2) + "\n")
    try:
        from invhide.evaluation.figures import hiding_figure, training_curves
    except ImportError:  # pragma: no cover - matplotlib is optional
        log('no figures: pip install "invhide[plot]"')
        return report
    shown = [p for p in pairs if p.cover.shape == pairs[0].cover.shape][:3]  # one size: eval_size=None varies
    cover = torch.stack([p.cover for p in shown]).to(trainer.device)
    secret = torch.stack([p.secret for p in shown]).to(trainer.device)
    with torch.inference_mode():
        stego, _ = model.hide(cover, secret)
        recovered = model.reveal(stego, generator=torch.Generator(trainer.device).manual_seed(config.seed))
    titles = [f"{p.names[0]} / {p.names[1]}" for p in shown]
    report.files["figure"] = hiding_figure(cover, stego, secret, recovered, out_dir / "figure.png", titles=titles)
    report.files["curves"] = training_curves(out_dir)
    return report
