"""Train a hider's :class:`~invhide.nn.refiners.Refiner` beside its frozen invertible network.

A refiner learns what the reveal from the stego alone gets wrong (see
:mod:`invhide.nn.refiners`). It needs no change to the hider: the stego is
what it was, and only :meth:`InvertibleHider.reveal
<invhide.models.hider.InvertibleHider.reveal>` gains a step. Training makes
a pool of pairs once, as a receiver would see them: random crops of the
training photographs hidden under a fresh random key each (a keyed hider),
rounded to 8 bits (the PNG the receiver reads), revealed with ``z = 0``, the
reveal's default, and kept still locked, beside the locked secret they should
be. Crops should be as large as the images the model will reveal, since a
key shuffles tiles across the whole image and a small crop holds more
similar neighbours. The refiner then trains on windows of the pool that start
on its tile grid, with a mean squared error (the PSNR's), and the pairs held
out of training measure it.

Example:
    >>> hider = invhide.InvertibleHider(num_blocks=1, subnet="conv", keyed=True)
    >>> refined = with_refiner(hider, hidden=8, depth=2)
    >>> report = train_refiner(refined, sample_image_paths(SAMPLE_TRAIN)[:4], pairs=4, crop=32, window=16,
    ...                        steps=2, batch_size=2, progress=False, log=lambda line: None)
    >>> report.steps, refined.refiner is not None
    (2, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from invhide.checks import integer, number, positive_int
from invhide.errors import InputError, InputTypeError
from invhide.evaluation.metrics import psnr
from invhide.io.datasets import SAMPLE_TRAIN, ImageDataset, Source, sample_image_paths  # noqa: F401 (doctest)
from invhide.io.progress import progress_bar
from invhide.models.hider import InvertibleHider
from invhide.nn.functional import quantize_8bit
from invhide.nn.keys import KEY_BYTES

__all__ = ["RefinerTraining", "train_refiner", "with_refiner", "without_refiner"]


@dataclass(frozen=True)
class RefinerTraining:
    """What :func:`train_refiner` did and measured.

    Attributes:
        steps: optimizer steps taken.
        seconds: wall-clock time of the training (the pool not counted).
        pool_seconds: time to make the pool of pairs.
        held_out: pairs kept out of training to measure on.
        psnr_before: mean PSNR (dB) of the held-out reveals against their secrets, unrefined.
        psnr_after: the same through the trained refiner.
        mse_before: mean squared error of the held-out reveals, unrefined (what the refiner minimises).
        mse_after: the same through the trained refiner.
    """

    steps: int
    seconds: float
    pool_seconds: float
    held_out: int
    psnr_before: float
    psnr_after: float
    mse_before: float
    mse_after: float

    def __str__(self) -> str:
        return (
            f"refiner: {self.steps} steps in {self.seconds:.0f} s (pool {self.pool_seconds:.0f} s); "
            f"{self.held_out} held-out pairs: {self.psnr_before:.2f} -> {self.psnr_after:.2f} dB"
        )


def with_refiner(model: InvertibleHider, **options: Any) -> InvertibleHider:
    """A copy of ``model`` with its weights and a new (identity) refiner of these options.

    Args:
        model: an :class:`~invhide.models.hider.InvertibleHider`, with or without a refiner.
        **options: :class:`~invhide.nn.refiners.Refiner`'s options but ``channels``.

    Raises:
        invhide.errors.InputTypeError: ``model`` is not an InvertibleHider.
        invhide.errors.InputError: a subclass that takes no refiner (HiNet).
    """
    return _rebuilt(model, options or True)


def without_refiner(model: InvertibleHider) -> InvertibleHider:
    """A copy of ``model`` with its hider's weights and no refiner: what it reveals without one.

    Raises:
        invhide.errors.InputTypeError: ``model`` is not an InvertibleHider.
        invhide.errors.InputError: a subclass that takes no refiner (HiNet).
    """
    return _rebuilt(model, None)


def _rebuilt(model: InvertibleHider, refiner: bool | dict[str, Any] | None) -> InvertibleHider:
    """``model``'s hider, its weights copied, with a new refiner of these options (``None``: none)."""
    if not isinstance(model, InvertibleHider):
        raise InputTypeError(argument="model", problem=f"must be an InvertibleHider, got {type(model).__name__}")
    config = model.config()
    if config.get("class") != "InvertibleHider":
        raise InputError(
            argument="model", problem=f"is a {config.get('class')}, which takes no refiner; an InvertibleHider does"
        )
    config.pop("refiner", None)
    if refiner is not None:
        config["refiner"] = refiner
    rebuilt = InvertibleHider.from_config(config)
    hider = {name: value for name, value in model.state_dict().items() if not name.startswith("refiner.")}
    fresh = {name: value for name, value in rebuilt.state_dict().items() if name.startswith("refiner.")}
    rebuilt.load_state_dict({**hider, **fresh})  # strict: every weight of the hider lands, or this fails
    param = next(model.parameters())
    return rebuilt.to(device=param.device, dtype=param.dtype).train(model.training)


def _pool(
    model: InvertibleHider,
    images: ImageDataset,
    pairs: int,
    generator: torch.Generator,
    device: torch.device,
    progress: bool,
) -> tuple[Tensor, Tensor]:
    """``pairs`` reveals (8-bit stego, ``z = 0``, unrefined, still locked) and what they should be."""
    revealed, targets = [], []
    batch = 8
    for start in progress_bar(range(0, pairs, batch), desc="pool", unit="batch", enabled=progress):
        count = min(batch, pairs - start)
        chosen = torch.randint(0, len(images), (2 * count,), generator=generator).tolist()
        stack = torch.stack([images[i] for i in chosen]).to(device)
        cover, secret = stack[:count], stack[count:]
        if model.keyed:
            keys = torch.randint(0, 256, (count, KEY_BYTES), generator=generator).to(torch.uint8)
            secret = model.lock(secret, keys)
        options = {"locked": True} if model.keyed else {}
        stego, _ = model.hide(cover, secret, **options)
        revealed.append(model.reveal(quantize_8bit(stego), refine=False, **options))
        targets.append(secret)
    return torch.cat(revealed), torch.cat(targets)


def train_refiner(
    model: InvertibleHider,
    source: Source,
    *,
    pairs: int = 768,
    crop: int = 256,
    window: int = 64,
    steps: int = 6000,
    batch_size: int = 16,
    lr: float = 1e-3,
    held_out: float = 0.1,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> RefinerTraining:
    """Train ``model.refiner`` in place, the rest of the model frozen; see the module docstring.

    Args:
        model: an :class:`~invhide.models.hider.InvertibleHider` with a
            refiner (:func:`with_refiner` adds one), on the device to train on.
        source: a folder of training photographs, or their paths.
        pairs: pairs in the pool (held-out ones included).
        crop: side of the crops hidden (even; a multiple of the window step).
        window: side of the training windows cut from the pool (a multiple
            of the model's window step, at most ``crop``).
        steps: optimizer steps (Adam, cosine decay to zero).
        batch_size: windows per step.
        lr: peak learning rate.
        held_out: share of the pool kept out of training to measure on (at least one pair).
        seed: fixes the crops, pairs, keys and windows.
        progress: show progress bars.
        log: where the one-line summary goes.

    Returns:
        A :class:`RefinerTraining`.

    Raises:
        invhide.errors.InputError: a model without a refiner, or an option out of range.
    """
    if not isinstance(model, InvertibleHider) or model.refiner is None:
        raise InputError(
            argument="model", problem="must be an InvertibleHider with a refiner: add one with with_refiner(model)"
        )
    step = model.window_step
    pairs = integer("pairs", pairs, low=2, what="an integer of at least 2")
    crop, window = positive_int("crop", crop), positive_int("window", window)
    if crop % step or window % step or window > crop:
        raise InputError(
            f"crop {crop} and window {window} must be multiples of the model's window step {step}, window <= crop"
        )
    steps, batch_size = positive_int("steps", steps), positive_int("batch_size", batch_size)
    lr = number("lr", lr, low=0, low_open=True)
    held = max(1, round(number("held_out", held_out, low=0, high=1, high_open=True) * pairs))
    if held >= pairs:
        raise InputError(argument="held_out", problem=f"leaves no pair of {pairs} to train on")
    param = next(model.parameters())
    device = param.device
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)  # ImageDataset's crops draw from the global generator
        images = ImageDataset(source, crop=crop, train=True, flips=True)
        revealed, targets = _pool(model, images, pairs, generator, device, progress)
    pool_seconds = time.perf_counter() - started
    train_x, train_y = revealed[held:], targets[held:]
    # The pool was made without gradients and only the refiner's parameters are optimised: the hider is frozen
    # without touching its requires_grad flags.
    refiner = model.refiner
    optimizer = torch.optim.Adam(refiner.parameters(), lr=lr)
    offsets = (crop - window) // step + 1
    started = time.perf_counter()
    refiner.train()
    try:
        for i in progress_bar(range(steps), desc="refiner", unit="step", enabled=progress):
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * i / steps))
            chosen = torch.randint(0, train_x.shape[0], (batch_size,), generator=generator)
            top, left = (int(v) * step for v in torch.randint(0, offsets, (2,), generator=generator))
            x = train_x[chosen, :, top : top + window, left : left + window]
            y = train_y[chosen, :, top : top + window, left : left + window]
            loss = F.mse_loss(refiner(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - started
        refiner.eval()
        with torch.no_grad():
            held_x, held_y = revealed[:held], targets[:held]
            refined = torch.cat([refiner(held_x[i : i + 8]) for i in range(0, held, 8)]).clamp(0, 1)
            before, after = psnr(held_x.clamp(0, 1), held_y).mean().item(), psnr(refined, held_y).mean().item()
            mse_before = F.mse_loss(held_x.clamp(0, 1), held_y).item()
            mse_after = F.mse_loss(refined, held_y).item()
    finally:
        model.train(was_training)
    report = RefinerTraining(steps, seconds, pool_seconds, held, before, after, mse_before, mse_after)
    log(str(report))
    return report
