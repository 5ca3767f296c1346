"""Training recipes, each exactly what its name says: the paper's, the reference code's, and two small ones.

A :class:`Recipe` bundles a model constructor, a loss and a
:class:`~invhide.training.config.TrainConfig`; :func:`recipe` returns one by
name, with any setting overridden, and :meth:`Recipe.summary` prints every
setting of it.

- ``"paper"``: HiNet trained as the paper writes it (Jing et al., ICCV 2021,
  Sec. 4.1): 80K iterations, Adam "with standard parameters" (betas (0.9,
  0.999), eps 1e-8, no weight decay), learning rate 10^-4.5 halved every 10K
  iterations, 256x256 crops, lambda_c 10, lambda_r 1, lambda_f 10, and a
  pre-training stage with lambda_f = 0 before the low-frequency wavelet loss
  is added (:data:`PAPER_PRETRAIN_STEPS`). The paper gives no batch size;
  the recipe takes the reference code's (16 images = 8 cover/secret pairs).
- ``"reference-code"``: HiNet trained as the reference code's ``config.py``
  and ``train.py`` (TomTomTommi/HiNet) run: 1000 epochs of 800 // 16 = 50
  steps on DIV2K, so 50K steps; 224x224 crops; guide 1, reconstruction 5,
  low-frequency 1; summed squared errors; Adam lr 10^-4.5, betas (0.5,
  0.999), eps 1e-6, weight decay 1e-5. Its ``StepLR(optim, 1000,
  gamma=0.5)`` is stepped once per epoch, so inside the run the rate never
  drops: the recipe's ``"step"`` schedule halves it every 50K steps.
  Validation and checkpoints every 50 epochs = 2500 steps. (The settings'
  comments cite each file and line.)
- ``"paper-png"`` and ``"reference-code-png"``: the same, except that the
  reveal during training starts from the stego rounded to 8 bits, with a
  straight-through gradient (``quantize=True``), so that the model learns to
  reveal from a PNG. Neither the paper nor the reference code does this.
- ``"quick"``: not HiNet; a 4-block hider with plain convolutional subnets,
  small enough to train on a CPU.
- ``"cpu"``: not HiNet; the recipe of the default shipped model's base: the
  quick recipe's loss and optimiser with :data:`CPU_BLOCKS` coupling blocks,
  bfloat16 autocast where the device computes it natively (``amp="auto"``),
  and the last steps (from :data:`CPU_FINETUNE_FROM` of them on) revealing
  from the 8-bit stego (``quantize_from``) with the concealing weight raised
  to :data:`CPU_FINETUNE_CONCEALING`. The float model of the step before the
  fine-tune is kept in the run's ``before-rounding/`` folder. The Results
  and Trained models pages say how it was chosen and what it measures.

Every setting that the recipes set (the rest are
:class:`~invhide.training.config.TrainConfig`'s defaults: the explosion guard,
logging, seeds):

======================= ======================= ======================= =======================
setting                 ``"paper"``             ``"reference-code"``    ``"quick"``
======================= ======================= ======================= =======================
model                   HiNet, 16 blocks        HiNet, 16 blocks        4 blocks, conv subnets
loss weights c, r, f    10, 1, 10               1, 5, 1                 1, 5, 1
loss reduction          sum                     sum                     mean
weight_schedule         f = 0 until step 10K    none                    none
steps                   80,000                  50,000                  1,200
batch_size (pairs)      8                       8                       8
crop                    256                     224                     64
lr                      10^-4.5                 10^-4.5                 2e-3
betas                   (0.9, 0.999)            (0.5, 0.999)            (0.9, 0.999)
eps                     1e-8                    1e-6                    1e-6
weight_decay            0                       1e-5                    1e-5
schedule                step: x0.5 every 10K    step: x0.5 every 50K    cosine
warmup_steps            0                       0                       20
grad_clip               none                    none                    10
quantize                False                   False                   False
val_every               1,000                   2,500                   400
checkpoint_every        1,000                   2,500                   400
======================= ======================= ======================= =======================

``"cpu"`` differs from ``"quick"`` in its model (:data:`CPU_BLOCKS` blocks),
``steps`` 21,500, ``warmup_steps`` 200, ``amp`` ``"auto"``, ``quantize_from``
85% of the steps, ``weight_schedule`` concealing 4 from ``quantize_from`` on,
``val_every`` 2,000, ``checkpoint_every`` 500 and ``log_every`` 20.

``"paper-png"`` and ``"reference-code-png"`` differ from ``"paper"`` and
``"reference-code"`` only in ``quantize=True``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from invhide.checks import non_negative_int, one_of
from invhide.errors import ConfigError
from invhide.evaluation.metrics import Evaluation, evaluate
from invhide.io.datasets import SAMPLE_TEST, SAMPLE_TRAIN, ImageDataset, ImagePair, evaluation_pairs, sample_image_paths
from invhide.io.files import atomic_write
from invhide.models.hider import InvertibleHider, public_key
from invhide.models.hinet import HiNet
from invhide.nn import subnets
from invhide.training.config import TrainConfig
from invhide.training.losses import HidingLoss
from invhide.training.trainer import Trainer, TrainResult

__all__ = [
    "CPU_BLOCKS",
    "CPU_FINETUNE_CONCEALING",
    "CPU_FINETUNE_FROM",
    "PAPER_PRETRAIN_STEPS",
    "RECIPES",
    "Recipe",
    "Report",
    "recipe",
    "train_and_evaluate",
]

RECIPES: tuple[str, ...] = ("paper", "paper-png", "reference-code", "reference-code-png", "quick", "cpu")
"""The names :func:`recipe` knows."""

CPU_BLOCKS: int = 8
"""Coupling blocks of the ``"cpu"`` recipe's model (picked by the learning-speed study, ``benchmarks/learning.py``)."""

CPU_FINETUNE_FROM: float = 0.85
"""The ``"cpu"`` recipe reveals from the 8-bit stego over the last 15% of its steps (``quantize_from``)."""

CPU_FINETUNE_CONCEALING: float = 4.0
"""The concealing weight of the ``"cpu"`` recipe's 8-bit fine-tune (1 before it): the reveal's error from the
rounded stego is larger than from the float one, and at the float phase's weights it pulls the stego away from
the cover."""

PAPER_PRETRAIN_STEPS: int = 10_000
"""Steps of the ``"paper"`` recipes' pre-training with lambda_f = 0, before the low-frequency loss is added.

The paper (Sec. 4.1) pre-trains without the low-frequency wavelet loss and
then adds it, but does not say for how long. invhide takes 10K iterations,
the paper's own unit of schedule: the first learning-rate period (the rate
halves every 10K iterations), so the loss is added with the first halving,
once hiding and revealing have been learnt, and 70K of the 80K iterations
(seven eighths) train on the full loss that Table 2 reports. Adding the term
cannot set off the explosion guard: with summed squared errors and the
orthonormal Haar transform the LL band carries at most the whole
stego-cover error (``L_freq <= L_con``), so ``lambda_f L_freq`` at most
doubles the ``lambda_c L_con`` part of the loss, below the guard's
``spike_factor`` of 10. Override it with ``recipe("paper", pretrain_steps=N)``
(0: no pre-training) or any ``weight_schedule``.
"""


@dataclass(frozen=True)
class Recipe:
    """A model, a loss and training settings that belong together.

    Attributes:
        name: the recipe's name.
        build_model: returns a freshly initialised model.
        build_loss: returns the loss, with the weights it has before
            ``config.weight_schedule`` changes them.
        config: the training settings.
        about: one line on what the recipe is and where its settings come from.
    """

    name: str
    build_model: Callable[[], nn.Module]
    build_loss: Callable[[], HidingLoss]
    config: TrainConfig
    about: str = ""

    def describe(self) -> dict[str, Any]:
        """Every setting of the recipe, JSON-ready: the model's and the loss's configs and the training settings.

        Builds the model once (without touching the caller's random generator) to read its config.

        Example:
            >>> described = recipe("reference-code").describe()
            >>> described["model"]["num_blocks"], described["train"]["steps"], described["train"]["eps"]
            (16, 50000, 1e-06)
            >>> described["loss"]["terms"]["revealing"]["weight"]
            5.0
        """
        with torch.random.fork_rng(devices=[]):
            model = self.build_model()
        config = getattr(model, "config", None)
        return {
            "name": self.name,
            "about": self.about,
            "model": config() if callable(config) else {"class": type(model).__name__},
            "loss": self.build_loss().config(),
            "train": self.config.to_dict(),
        }

    def starting_from(self, model: nn.Module, label: str | None = None) -> Recipe:
        """This recipe with ``model``'s architecture and weights in place of its own: a fine-tune.

        Every :meth:`build_model` call returns a fresh deep copy of ``model``,
        so the trainer's updates never reach the caller's module; the loss and
        the training settings stay the recipe's.

        Args:
            model: the trained model to start from (for example
                :func:`invhide.load`'s).
            label: what :attr:`about` names as the starting point (default:
                the model's class).

        Example:
            >>> base = InvertibleHider(num_blocks=2, subnet="conv")
            >>> tuned = recipe("quick").starting_from(base, "a 2-block model")
            >>> tuned.build_model().config()["num_blocks"], tuned.build_model() is base
            (2, False)
            >>> tuned.about.endswith("starting from a 2-block model")
            True
        """
        label = type(model).__name__ if label is None else label
        return dataclasses.replace(
            self, build_model=lambda: copy.deepcopy(model), about=f"{self.about}; starting from {label}"
        )

    def summary(self) -> str:
        """:meth:`describe` as lines of text, one setting a line.

        Example:
            >>> print(recipe("paper").summary())  # doctest: +ELLIPSIS
            recipe 'paper': HiNet as the paper trains it (...)
              model: HiNet, num_blocks=16, num_secrets=1, channels=3, clamp=2.0, growth=32
              loss: concealing 10 (l2, sum), revealing 1 (l2, sum), low_frequency 10 (l2, sum)
              steps: 80000
              ...
              eps: 1e-08
              ...
              weight_schedule: ((0, 'low_frequency', 0.0), (10000, 'low_frequency', 10.0))
              channels: ()
        """
        described = self.describe()
        model = dict(described["model"])
        name = model.pop("class", "model")
        terms = described["loss"]["terms"]
        lines = [
            f"recipe {self.name!r}: {self.about}" if self.about else f"recipe {self.name!r}",
            f"  model: {name}" + "".join(f", {key}={value!r}" for key, value in model.items()),
            "  loss: "
            + ", ".join(
                f"{term} {entry['weight']:g} ({entry['loss']['kind']}, {entry['loss']['reduction']})"
                for term, entry in terms.items()
            ),
        ]
        lines += [f"  {key}: {getattr(self.config, key)!r}" for key in described["train"]]
        return "\n".join(lines)


def _quick_model() -> InvertibleHider:
    return InvertibleHider(num_blocks=4, subnet=subnets.conv(hidden=64, depth=3), layout="hinet")


def _quick_loss() -> HidingLoss:
    return HidingLoss.reference_code(reduction="mean")


def _cpu_model() -> InvertibleHider:
    return InvertibleHider(num_blocks=CPU_BLOCKS, subnet=subnets.conv(hidden=64, depth=3), layout="hinet")


# The optimiser and schedule settings are written out in full, so that a change of TrainConfig's
# defaults cannot change a recipe.
_PAPER: dict[str, Any] = dict(  # the paper, Sec. 4.1
    steps=80_000,
    batch_size=8,  # not in the paper: the reference code's 16 images (config.py line 16)
    crop=256,
    lr=10**-4.5,
    betas=(0.9, 0.999),  # Adam "with standard parameters": torch's defaults
    eps=1e-8,
    weight_decay=0.0,
    schedule="step",
    lr_step=10_000,
    lr_gamma=0.5,
    warmup_steps=0,
    grad_clip=None,
    quantize=False,
)
_REFERENCE_CODE: dict[str, Any] = dict(  # TomTomTommi/HiNet config.py and train.py
    steps=50_000,  # epochs = 1000 (config.py line 6) of 800 // 16 = 50 batches (datasets.py lines 59-66)
    batch_size=8,  # batch_size = 16 images (config.py line 16), halves paired (train.py lines 106-107)
    crop=224,  # cropsize (config.py line 17)
    lr=10**-4.5,  # log10_lr (config.py lines 4-5)
    betas=(0.5, 0.999),  # config.py line 18
    eps=1e-6,  # train.py line 84
    weight_decay=1e-5,  # config.py line 7
    schedule="step",  # StepLR(weight_step=1000 epochs, gamma=0.5) stepped once per epoch (train.py lines 85, 209)
    lr_step=50_000,
    lr_gamma=0.5,
    warmup_steps=0,
    grad_clip=None,
    quantize=False,  # the reveal starts from the float DWT-domain stego (train.py lines 117-128)
    val_every=2_500,  # val_freq = 50 epochs (config.py line 26)
    checkpoint_every=2_500,  # SAVE_freq = 50 epochs (config.py line 47)
)
_QUICK: dict[str, Any] = dict(
    steps=1200,
    batch_size=8,
    crop=64,
    lr=2e-3,
    betas=(0.9, 0.999),
    eps=1e-6,
    weight_decay=1e-5,
    schedule="cosine",
    lr_step=50_000,
    lr_gamma=0.5,
    warmup_steps=20,
    grad_clip=10.0,
    quantize=False,
    val_every=400,
    checkpoint_every=400,
    log_every=10,
)

_CPU: dict[str, Any] = dict(
    _QUICK,
    steps=21_500,
    warmup_steps=200,
    amp="auto",
    val_every=2000,
    checkpoint_every=500,
    log_every=20,
)

_PAPER_ABOUT = "HiNet as the paper trains it (Jing et al., ICCV 2021, Sec. 4.1)"
_REFERENCE_ABOUT = "HiNet as the reference code's config.py and train.py train it (TomTomTommi/HiNet)"
_PNG_ABOUT = ", revealing during training from the stego rounded to 8 bits"
# name: (model, loss, settings, pre-training steps without the low-frequency loss, description)
_RECIPES: dict[str, tuple[Callable[[], nn.Module], Callable[[], HidingLoss], dict[str, Any], int, str]] = {
    "paper": (HiNet, HidingLoss.paper, _PAPER, PAPER_PRETRAIN_STEPS, _PAPER_ABOUT),
    "paper-png": (
        HiNet,
        HidingLoss.paper,
        {**_PAPER, "quantize": True},
        PAPER_PRETRAIN_STEPS,
        _PAPER_ABOUT + _PNG_ABOUT,
    ),
    "reference-code": (HiNet, HidingLoss.reference_code, _REFERENCE_CODE, 0, _REFERENCE_ABOUT),
    "reference-code-png": (
        HiNet,
        HidingLoss.reference_code,
        {**_REFERENCE_CODE, "quantize": True},
        0,
        _REFERENCE_ABOUT + _PNG_ABOUT,
    ),
    "quick": (_quick_model, _quick_loss, _QUICK, 0, "a small hider: 4 blocks with conv subnets; not HiNet"),
    "cpu": (
        _cpu_model,
        _quick_loss,
        _CPU,
        0,
        "the default shipped model's base: 8 conv blocks, bfloat16 where the CPU has it, float training then an "
        "8-bit fine-tune; not HiNet",
    ),
}

# Recipes that fine-tune through the 8-bit rounding over the last part of the run: (the fraction of the
# steps from which on the reveal learns from the rounded stego (quantize_from), whatever steps= says; the
# concealing weight of that fine-tune, from whichever quantize_from on: the reveal's error from the PNG is
# about 3x its float error, which, at the float phase's weights, pulls the stego away from the cover).
_FINETUNE: dict[str, tuple[float, float]] = {"cpu": (CPU_FINETUNE_FROM, CPU_FINETUNE_CONCEALING)}


def recipe(name: str, *, pretrain_steps: int | None = None, **overrides: Any) -> Recipe:
    """The named recipe, with ``TrainConfig`` fields overridden.

    Args:
        name: one of :data:`RECIPES`.
        pretrain_steps: train this many steps without the low-frequency
            wavelet loss (weight 0), then with the recipe's weight for it; 0
            for no pre-training. Default: the recipe's own
            (:data:`PAPER_PRETRAIN_STEPS` for the ``"paper"`` recipes, none
            for the others). A shorthand for ``weight_schedule``; give one or
            the other.
        **overrides: ``TrainConfig`` fields, e.g. ``steps=100``,
            ``quantize=True`` or ``weight_schedule=()``; ``None`` values are
            ignored (the command line passes unset options so).

    Raises:
        InputError: an unknown recipe, or a setting out of bounds.
        ConfigError: an unknown setting, a ``weight_schedule`` naming a term
            the recipe's loss lacks, or both ``pretrain_steps`` and
            ``weight_schedule``.

    Example:
        >>> r = recipe("paper", steps=10)
        >>> r.config.steps, r.config.lr == 10**-4.5, r.config.betas, r.build_loss().weights["low_frequency"]
        (10, True, (0.9, 0.999), 10.0)
        >>> r.config.weight_schedule
        ((0, 'low_frequency', 0.0), (10000, 'low_frequency', 10.0))
        >>> recipe("paper", pretrain_steps=0).config.weight_schedule
        ()
    """
    model, loss, base, pretrain, about = _RECIPES[one_of("recipe", name, RECIPES)]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"unknown training setting(s) {unknown}; TrainConfig has {sorted(fields)}")
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if pretrain_steps is not None:
        if "weight_schedule" in overrides:
            raise ConfigError("give pretrain_steps or weight_schedule, not both (pretrain_steps sets weight_schedule)")
        pretrain = non_negative_int("pretrain_steps", pretrain_steps)
    terms = loss().weights
    schedule = ((0, "low_frequency", 0.0), (pretrain, "low_frequency", terms["low_frequency"])) if pretrain else ()
    settings = {**base, "weight_schedule": schedule, **overrides}
    if name in _FINETUNE:
        settings = _with_finetune(settings, overrides, *_FINETUNE[name])
    config = TrainConfig(**settings)
    missing = sorted({term for _, term, _ in config.weight_schedule} - set(terms))
    if missing:
        raise ConfigError(f"weight_schedule names term(s) {missing} that the {name!r} loss lacks; terms: {list(terms)}")
    return Recipe(name, model, loss, config, about)


def _with_finetune(
    settings: dict[str, Any], overrides: dict[str, Any], fraction: float, concealing: float
) -> dict[str, Any]:
    """``settings`` with the 8-bit fine-tune over the last ``1 - fraction`` of the steps, at concealing weight
    ``concealing``, unless the overrides set the rounding (``quantize``, ``quantize_from``) or the schedule."""
    settings = dict(settings)
    if "quantize" not in overrides and "quantize_from" not in overrides:
        settings["quantize_from"] = math.floor(fraction * settings["steps"])
    if settings.get("quantize_from") is not None and "weight_schedule" not in overrides:
        entry = (settings["quantize_from"], "concealing", concealing)
        settings["weight_schedule"] = (*settings["weight_schedule"], entry)
    return settings


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
_Source = PathLike | Sequence[PathLike] | None
_Log = Callable[[str], None]


def train_and_evaluate(
    chosen: Recipe,
    out_dir: PathLike,
    *,
    train_source: PathLike | Sequence[PathLike] | None = None,
    val_source: PathLike | Sequence[PathLike] | None = None,
    eval_size: int | None = 256,
    device: str | torch.device | None = None,
    resume: bool | Literal["auto"] = False,
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
    ``curves.png`` (without matplotlib, a one-line note to ``log`` instead).

    Args:
        chosen: a :class:`Recipe`.
        out_dir: output folder (created).
        train_source: folder or image paths for training.
        val_source: folder or image paths for evaluation.
        eval_size: evaluation crop side (``None``: largest even square per pair).
        device: where to train and evaluate.
        resume: ``False``, ``True`` or ``"auto"``, as :meth:`Trainer.fit <invhide.training.trainer.Trainer.fit>`.
        progress: show the training progress bar.
        log: where progress messages go.

    Returns:
        A :class:`Report`.

    Example:
        >>> report = train_and_evaluate(recipe("quick"), "runs/quick")  # doctest: +SKIP
        >>> report.evaluation.mean("secret/recovery", "psnr")  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    train_data, pairs = _data(chosen, train_source, val_source, eval_size)
    log(f"recipe {chosen.name!r}: {len(train_data)} training images, {len(pairs)} evaluation pairs")
    trainer = _trainer(chosen, train_data, pairs, out_dir, device, progress, log)
    training = trainer.fit(resume=resume)
    log(
        f"trained {training.steps} steps in {training.seconds:.0f} s "
        f"({training.steps / max(training.seconds, 1e-9):.2f} steps/s), {training.rollbacks} rollback(s), "
        f"{training.skipped} update(s) skipped for a loss spike"
    )
    return _report(trainer, training, pairs, out_dir, log)


def _data(chosen: Recipe, train: _Source, test: _Source, size: int | None) -> tuple[ImageDataset, list[ImagePair]]:
    """The training images (random crops of the recipe's size) and the evaluation pairs; scikit-image's by default."""
    train = train if train is not None else sample_image_paths(SAMPLE_TRAIN)
    test = test if test is not None else sample_image_paths(SAMPLE_TEST)
    return ImageDataset(train, crop=chosen.config.crop, cache=True), evaluation_pairs(test, size=size)


def _trainer(
    chosen: Recipe, data: ImageDataset, pairs: list[ImagePair], out_dir: Path, device: Any, progress: bool, log: _Log
) -> Trainer:
    """The recipe's model (initialised from its seed, the caller's generator left alone), loss and trainer."""
    config = chosen.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = chosen.build_model()
    log(f"model: {json.dumps(model.config())} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(
        model, chosen.build_loss(), data, config, val_pairs=pairs, out_dir=out_dir, device=device, progress=progress
    )
    average = f"; weight average, decay {config.ema_decay:g}" if config.ema_decay is not None else ""
    log(f"precision: {trainer.precision} (amp={config.amp!r}){average}")
    return trainer


def _report(trainer: Trainer, trained: TrainResult, pairs: list[ImagePair], out: Path, log: _Log) -> Report:
    """The report of a finished run; on rank 0, with the trained model's evaluation, ``results.json`` and, with
    matplotlib, the figures written into ``out``. The evaluation reveals as the trainer's own validation does
    (``z`` zeros), so ``results.json`` and the last row of ``val.csv`` agree."""
    model = trainer.trained_model.eval()  # the weight average when the run keeps one
    if trainer.rank != 0:  # under torchrun, rank 0 evaluates and writes the files
        return Report(model, trained, None, 0.0)
    start, device = time.perf_counter(), trainer.device
    evaluation = evaluate(model, pairs, device=device)
    report = Report(model, trained, evaluation, time.perf_counter() - start)
    report.files = {"model": out / "model.safetensors", "results": out / "results.json"}
    with atomic_write(report.files["results"], "w") as file:
        file.write(json.dumps(evaluation.to_dict(per_image=True), indent=2) + "\n")
    try:
        report.files.update(_figures(model, pairs, out, device))
    except ImportError as error:  # matplotlib is optional: the figures are extras, the run succeeded
        log(f"note: no figures ({' '.join(str(error).split()) or type(error).__name__})")
    return report


def _figures(model: nn.Module, pairs: Sequence[Any], out_dir: Path, device: torch.device) -> dict[str, Path]:
    """``figure.png`` (the paper's Fig. 3 layout, three pairs) and ``curves.png``.

    Raises:
        ImportError: matplotlib is not installed (raised by the figures' first line, before they write anything).
    """
    from invhide.evaluation.figures import hiding_figure, training_curves

    shown = [p for p in pairs if p.cover.shape == pairs[0].cover.shape][:3]  # one size: eval_size=None varies
    cover = torch.stack([p.cover for p in shown]).to(device)
    secret = torch.stack([p.secret for p in shown]).to(device)
    with torch.inference_mode():
        stego, _ = model.hide(cover, secret, **public_key(model))
        recovered = model.reveal(stego, **public_key(model))
    titles = [f"{p.names[0]} / {p.names[1]}" for p in shown]
    return {
        "figure": hiding_figure(cover, stego, secret, recovered, out_dir / "figure.png", titles=titles),
        "curves": training_curves(out_dir),
    }
