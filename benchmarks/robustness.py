#!/usr/bin/env python
"""What a hider's secret survives, on real files: the Robustness page's table, PRIS's five attacks and a figure.

For each model, kodak24's pairs (image i hiding image i + n/2, 256x256 centre
crops): the stego as the 8-bit PNG ``invhide hide`` writes, then through each
real channel (Pillow's JPEG 4:2:0 and WebP, Gaussian noise on the 0-255 scale
then 8 bits, Pillow's bicubic resize and back), revealed from what comes back
(:func:`invhide.evaluation.metrics.evaluate` with ``channels``). Prints one
Markdown table per model with the issue's goals beside it, and the average
over PRIS's five attacks (8-bit rounding, noise sigma 1 and 10, JPEG 90 and
80) beside PRIS's published 34.28 / 32.96 dB (one model per attack there; one
model for all of them here). ``--figure`` draws one pair of the first model
after each channel, with what it reveals.

python benchmarks/robustness.py --model conv8-photos49-robust \\
    --json benchmarks/results/robustness-conv8-photos49-robust.json --figure docs/figures/robustness.png

A benchmark measures and prints; it never asserts. Keyed models are measured
under the public key (any key measures alike: the Keys page).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _shared import data_folder

import invhide
from invhide.evaluation.channels import parse
from invhide.evaluation.figures import pyplot, save_figure
from invhide.evaluation.metrics import evaluate, psnr
from invhide.io.datasets import evaluation_pairs
from invhide.models import inference
from invhide.models.hider import public_key
from invhide.nn.functional import quantize_8bit

CHANNELS = (
    "jpeg:95", "jpeg:90", "jpeg:80", "jpeg:75", "jpeg:50", "webp:90", "webp:80",
    "noise:1", "noise:2", "noise:10", "resize:0.75",
)  # fmt: skip
PRIS_ATTACKS = ("8-bit", "noise:1", "noise:10", "jpeg:90", "jpeg:80")
PRIS_AVERAGE = (34.28, 32.96)  # stego, secret dB: PRIS (Yang et al., EAAI 2024), the mean of its five attacks
GOALS = {"8-bit": 34.0, "jpeg:90": 30.0, "jpeg:75": 28.0, "noise:2": 30.0}  # issue 22: secret dB; stego >= 33
STEGO_GOAL = 33.0
FIGURE_CHANNELS = ("8-bit", "jpeg:90", "jpeg:75", "webp:80", "noise:2", "noise:10", "resize:0.75")


def measure(model: torch.nn.Module, pairs: list) -> dict:
    """The Table 2 figures of ``model`` on ``pairs`` for the 8-bit PNG and every channel (per image kept)."""
    started = time.perf_counter()
    result = evaluate(model, pairs, quantize=(True,), channels=[parse(spec) for spec in CHANNELS])
    data = result.to_dict()
    data["seconds"] = time.perf_counter() - started
    return data


def rows(data: dict) -> list[tuple[str, float, float]]:
    """``(setting, stego dB, secret dB)``, RGB PSNR means, in the table's order."""
    found = data["results"]
    return [
        (setting, *(found[setting][row]["rgb"]["psnr"]["mean"] for row in ("cover/stego", "secret/recovery")))
        for setting in ("8-bit", *CHANNELS)
    ]


def table(name: str, data: dict) -> str:
    """The Markdown table of one model, its goals and its PRIS five-attack average."""
    lines = [
        f"### {name}",
        "",
        "| channel (real) | stego as received | secret recovered | goal |",
        "| --- | ---: | ---: | --- |",
    ]
    stego_png = data["results"]["8-bit"]["cover/stego"]["rgb"]["psnr"]["mean"]
    for setting, stego, secret in rows(data):
        goal = GOALS.get(setting)
        mark = "" if goal is None else f">= {goal:g}: {'met' if secret >= goal else f'missed by {goal - secret:.2f}'}"
        if setting == "8-bit":
            mark += f"; stego >= {STEGO_GOAL:g}: {'met' if stego_png >= STEGO_GOAL else 'missed'}"
        lines.append(
            f"| {'lossless PNG (8-bit)' if setting == '8-bit' else setting} | {stego:.2f} | {secret:.2f} | {mark} |"
        )
    pris = {setting: (stego, secret) for setting, stego, secret in rows(data) if setting in PRIS_ATTACKS}
    secret_mean = sum(secret for _, secret in pris.values()) / len(pris)
    lines += [
        "",
        f"PRIS's five attacks, average: stego {stego_png:.2f} dB as sent (the same stego for every attack), "
        f"secret {secret_mean:.2f} dB (PRIS: {PRIS_AVERAGE[0]} / {PRIS_AVERAGE[1]} dB, a model per attack). "
        f"{data['num_pairs']} pairs, {data['seconds']:.0f} s.",
    ]
    return "\n".join(lines)


def figure(model: torch.nn.Module, cover: torch.Tensor, secret: torch.Tensor, path: Path) -> None:
    """The cover and secret, then one stego after each channel of :data:`FIGURE_CHANNELS` (a row each): as received,
    its difference from the cover x10, and what it reveals, with their PSNRs."""
    plt = pyplot()
    with torch.inference_mode():
        stego = quantize_8bit(inference.hide(model, cover[None], secret[None], **public_key(model)))
        figure_, axes = plt.subplots(len(FIGURE_CHANNELS) + 1, 3, figsize=(6.6, 2.35 * (len(FIGURE_CHANNELS) + 1)))
        for axis, (image, title) in zip(axes[0][:2], [(cover, "cover"), (secret, "secret")], strict=True):
            axis.imshow(image.permute(1, 2, 0).float().numpy())
            axis.set_title(title, fontsize=9)
        for axis in axes[0]:
            axis.set_xticks([])
            axis.set_yticks([])
        axes[0][2].axis("off")
        for row, setting in enumerate(FIGURE_CHANNELS, start=1):
            received = stego if setting == "8-bit" else parse(setting)(stego, torch.Generator().manual_seed(0))
            revealed = inference.reveal(model, received, **public_key(model)).clamp(0, 1)
            shown = [
                (received[0], f"{setting}: {psnr(received, cover[None]).item():.1f} dB"),
                (((received - cover[None]).abs() * 10).clamp(0, 1)[0], "|received - cover| x10"),
                (revealed[0], f"revealed: {psnr(revealed, secret[None]).item():.1f} dB"),
            ]
            for column, (image, title) in enumerate(shown):
                axis = axes[row][column]
                axis.imshow(image.permute(1, 2, 0).float().numpy())
                axis.set_xticks([])
                axis.set_yticks([])
                axis.set_title(title, fontsize=9)
    figure_.tight_layout()
    save_figure(figure_, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a model name or path (repeatable)")
    parser.add_argument("--pairs-dir", type=Path, default=None, help="default: ../shared/data/kodak24")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--json", type=Path, help="write every figure, per image, of the first model here")
    parser.add_argument("--figure", type=Path, help="draw the first model's figure here (a PNG)")
    parser.add_argument("--figure-pair", type=int, default=3, help="which pair the figure shows")
    args = parser.parse_args()
    pairs = evaluation_pairs(args.pairs_dir or data_folder("kodak24"), size=args.size)
    for index, name in enumerate(args.model):
        model = invhide.load(name).eval()
        data = measure(model, pairs)
        print(table(name, data), flush=True)
        if index == 0 and args.json is not None:
            args.json.write_text(json.dumps({"model": name, "channels": list(CHANNELS), **data}, indent=1))
        if index == 0 and args.figure is not None:
            figure(model, *pairs[args.figure_pair], args.figure)
            print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
