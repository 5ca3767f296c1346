#!/usr/bin/env python
"""The paper's Table 4 direction at a small budget: what the wavelet domain and L_freq do to detectability.

Three hiders are trained with the same budget (``--steps`` optimizer steps of
the quick recipe: 4 coupling blocks with convolutional subnets, 64x64 crops
of ../shared/data/photos49, batch 8, its learning-rate schedule and loss):

- ``pixel``: no wavelet transform (:class:`~invhide.evaluation.steganalysis.ablation.PixelDomainHider`,
  an invertible space-to-depth with the same channel count), no L_freq;
- ``dwt``: the wavelet transform, no L_freq (weight 0);
- ``dwt+freq``: the wavelet transform and L_freq (the recipe's weight, or
  ``--freq-weight``).

Each hides image ``(i + n/2) mod n`` in image ``i`` of kodak24 and cbsd68
(centre crops of ``--size``); the stego images are rounded to 8 bits, as a PNG
stores them. The script prints the PSNRs (cover/stego as saved, and the
secret revealed from the 8-bit stego), the detection accuracy and AUC of the
learned detector (``srm-cnn``, 2-fold by pair, 95% bootstrap intervals) and
of StegExpose's fused score, and, as the paper's Fig. 5, the learned
detector's accuracy on fixed held-out pairs against the number of pairs it
was trained on::

    python benchmarks/security.py          # the default budget (the Security page's run)
    python benchmarks/security.py --device cuda --json runs/security.json --figure docs/figures/detection-vs-pairs.png
    python benchmarks/security.py --steps 20 --detector-steps 20 --curve 4 8 --size 64   # a smoke run, minutes

With ``--out DIR`` the run is resumable: each hider's figures and 8-bit stego
pairs (``DIR/<hider>.json``, ``DIR/<hider>.npz``) and each point of the curve
(``DIR/curve-<pairs>-<hider>.json``) are written as soon as they are measured,
and a rerun with the same settings reads them instead of training again (a
rerun with other settings stops, naming the difference). The curve is measured
size by size, every hider at one size before the next, so a run cut short
leaves a complete curve over the smaller sizes.

It prints what it measured; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _shared import data_folder

from invhide.evaluation.figures import pyplot, save_figure
from invhide.evaluation.metrics import psnr
from invhide.evaluation.speed import machine
from invhide.evaluation.steganalysis import PixelDomainHider, evaluate_detectors
from invhide.evaluation.steganalysis.learned import DEFAULT_TRAINING, LearnedDetector, TrainingSettings
from invhide.evaluation.steganalysis.protocol import fold_of_pairs
from invhide.evaluation.steganalysis.statistics import accuracy, auc
from invhide.io.datasets import ImageDataset, evaluation_pairs, list_images
from invhide.io.files import atomic_write
from invhide.models.hider import InvertibleHider
from invhide.nn import subnets
from invhide.nn.functional import quantize_8bit
from invhide.training.recipes import recipe
from invhide.training.trainer import Trainer

HIDERS = ("pixel", "dwt", "dwt+freq")


def build(kind: str, seed: int) -> torch.nn.Module:
    """The quick recipe's architecture, in the pixel or the wavelet domain, seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "pixel":
            return PixelDomainHider(num_blocks=4, subnet=subnets.conv(hidden=64, depth=3))
        return InvertibleHider(num_blocks=4, subnet=subnets.conv(hidden=64, depth=3), layout="hinet")


@torch.no_grad()
def stego_pairs(model: torch.nn.Module, pairs: list, device: torch.device, seed: int) -> dict:
    """8-bit covers and stego images as uint8 levels, and the PSNRs of the saved stego and of the secret from it."""
    model.eval()
    generator = torch.Generator(device).manual_seed(seed)
    covers, stegos, stego_psnr, secret_psnr = [], [], [], []
    for start in range(0, len(pairs), 8):
        batch = pairs[start : start + 8]
        cover = torch.stack([p.cover for p in batch]).to(device)
        secret = torch.stack([p.secret for p in batch]).to(device)
        stego = quantize_8bit(model.hide(cover, secret)[0])
        recovered = model.reveal(stego, generator=generator).clamp(0, 1)
        stego_psnr += psnr(stego, cover).tolist()
        secret_psnr += psnr(quantize_8bit(recovered), secret).tolist()
        covers += [torch.round(c * 255).to(torch.uint8).cpu() for c in cover]
        stegos += [torch.round(s * 255).to(torch.uint8).cpu() for s in stego]
    return {
        "covers": covers,
        "stegos": stegos,
        "stego_psnr": float(np.mean(stego_psnr)),
        "secret_psnr": float(np.mean(secret_psnr)),
    }


class Store:
    """Figures already measured, under ``--out``: read back on a rerun with the same settings, written as made."""

    def __init__(self, folder: Path | None, settings: dict) -> None:
        self.folder = folder
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        before = self.get("settings")
        if before is None:
            self.put("settings", settings)
            return
        changed = sorted(key for key in before.keys() | settings.keys() if before.get(key) != settings.get(key))
        if changed:
            raise SystemExit(
                f"{folder}: its figures were measured with other settings ({', '.join(changed)}: "
                f"{[before.get(key) for key in changed]} there, {[settings.get(key) for key in changed]} now); "
                "use another --out or the same settings"
            )

    def get(self, name: str) -> dict | None:
        if self.folder is None or not (self.folder / f"{name}.json").exists():
            return None
        return json.loads((self.folder / f"{name}.json").read_text())

    def put(self, name: str, figures: dict) -> None:
        if self.folder is not None:
            with atomic_write(self.folder / f"{name}.json", "w") as file:
                file.write(json.dumps(figures, indent=2) + "\n")

    def get_pairs(self, name: str) -> dict | None:
        if self.folder is None or not (self.folder / f"{name}.npz").exists():
            return None
        with np.load(self.folder / f"{name}.npz") as arrays:
            return {key: [torch.from_numpy(image) for image in arrays[key]] for key in ("covers", "stegos")}

    def put_pairs(self, name: str, made: dict) -> None:
        if self.folder is not None:
            with atomic_write(self.folder / f"{name}.npz") as file:
                np.savez(file, **{key: torch.stack(made[key]).numpy() for key in ("covers", "stegos")})


def hider_figures(kind: str, args: argparse.Namespace, setup: dict, store: Store) -> tuple[dict, dict]:
    """Train one hider, make its 8-bit pairs and run the detectors on them (or read all that from ``store``)."""
    done, pairs_done = store.get(kind), store.get_pairs(kind)
    if done is not None and pairs_done is not None:
        print(f"\n{kind}: read from {args.out} (trained {done['steps']} steps in {done['training_seconds']:.0f} s)")
        return done, pairs_done
    chosen, device = setup["recipe"], setup["device"]
    loss = chosen.build_loss()
    if kind != "dwt+freq":
        loss = loss.with_weights({"low_frequency": 0.0})
    elif args.freq_weight is not None:
        loss = loss.with_weights({"low_frequency": args.freq_weight})
    trainer = Trainer(build(kind, args.seed), loss, setup["train_data"], chosen.config, device=device, progress=False)
    trained = trainer.fit()
    made = stego_pairs(trainer.model, setup["pairs"], device, args.seed)
    print(
        f"\n{kind}: trained {trained.steps} steps in {trained.seconds:.0f} s (loss weights {loss.weights}); "
        f"cover/stego {made['stego_psnr']:.2f} dB, secret {made['secret_psnr']:.2f} dB (8-bit)"
    )
    report = evaluate_detectors(
        made["covers"], made["stegos"], args.detectors, seed=args.seed,
        resamples=args.bootstrap, training=setup["settings"], device=device,
    )  # fmt: skip
    print(report.format())
    result = {"steps": trained.steps, "training_seconds": trained.seconds, "loss_weights": loss.weights,
              "stego_psnr_db": made["stego_psnr"], "secret_psnr_db": made["secret_psnr"],
              "detection": report.to_dict()}  # fmt: skip
    store.put_pairs(kind, made)
    store.put(kind, result)
    return result, made


def print_table(results: dict[str, dict], detectors: list[str]) -> None:
    print("\nTable 4 direction (detection: 2-fold by pair; 95% bootstrap intervals):")
    header = "".join(f"{name + ' accuracy':>22}" for name in detectors)
    print(f"{'hider':<10}{'stego dB':>10}{'secret dB':>11}{header}")
    for kind, row in results.items():
        cells = ""
        for name in detectors:
            entry = row["detection"]["detectors"][name]
            lo, hi = entry["accuracy_ci"]
            cells += f"{entry['accuracy']:>8.1%} [{lo:.0%}, {hi:.0%}]".rjust(22)
        print(f"{kind:<10}{row['stego_psnr_db']:>10.2f}{row['secret_psnr_db']:>11.2f}{cells}")


def curve_point(
    made: dict, train: np.ndarray, test: np.ndarray, settings: TrainingSettings, seed: int, device: torch.device
) -> dict:
    """``srm-cnn`` trained on the pairs ``train``: its accuracy and AUC on the pairs ``test``."""
    covers, stegos = made["covers"], made["stegos"]
    detector = LearnedDetector("srm-cnn", settings=settings, seed=seed, device=device)
    began = time.perf_counter()
    detector.fit([covers[i] for i in train], [stegos[i] for i in train])
    trained_in = time.perf_counter() - began
    scores = np.r_[detector.score([covers[i] for i in test]), detector.score([stegos[i] for i in test])]
    labels = np.r_[np.zeros(test.size), np.ones(test.size)]
    return {"pairs": train.size, "accuracy": float(accuracy(labels, scores, 0.0)), "auc": float(auc(labels, scores)),
            "training_seconds": trained_in}  # fmt: skip


def detection_curve(args: argparse.Namespace, setup: dict, made: dict[str, dict], store: Store) -> dict:
    """The Fig. 5 curve: ``srm-cnn`` accuracy on fixed held-out pairs against its number of training pairs."""
    fold = fold_of_pairs(len(setup["pairs"]), 2, args.seed)
    test, pool = np.nonzero(fold == 0)[0], np.nonzero(fold == 1)[0]
    sizes = sorted({min(size, pool.size) for size in args.curve})
    print(f"\nsrm-cnn accuracy on {test.size} held-out pairs against the number of training pairs (Fig. 5):")
    curve: dict[str, list] = {kind: [] for kind in HIDERS}
    for size in sizes:
        for kind in HIDERS:
            point = store.get(f"curve-{size}-{kind}")
            if point is None:
                settings = setup["settings"]["srm-cnn"]
                point = curve_point(made[kind], pool[:size], test, settings, args.seed, setup["device"])
                store.put(f"curve-{size}-{kind}", point)
            curve[kind].append(point)
            figures = f"accuracy {point['accuracy']:6.1%}  AUC {point['auc']:.3f}"
            print(f"  {size:>3} training pairs, {kind:<9} {figures}")
    print(f"{'hider':<10}" + "".join(f"{size:>10}" for size in sizes))
    for kind, row in curve.items():
        print(f"{kind:<10}" + "".join(f"{point['accuracy']:>10.1%}" for point in row))
    if args.figure is not None:
        draw_curve(curve, test.size, args.figure)
    return {"test_pairs": int(test.size), "points": curve}


def draw_curve(curve: dict[str, list], test_pairs: int, path: Path) -> None:
    figure, axes = pyplot().subplots(figsize=(5.2, 3.8))
    for kind, row in curve.items():
        axes.plot([p["pairs"] for p in row], [p["accuracy"] for p in row], marker="o", label=kind)
    axes.axhline(0.5, color="0.6", linestyle="--", linewidth=1, label="chance")
    axes.set(xlabel="training pairs of the detector", ylabel=f"srm-cnn accuracy ({test_pairs} pairs)")
    axes.set_ylim(0.4, 1.02)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    save_figure(figure, path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1200, help="training steps of each hider (default: 1200)")
    parser.add_argument("--freq-weight", type=float, help="L_freq weight of dwt+freq (default: the recipe's)")
    parser.add_argument("--size", type=int, default=256, help="test centre-crop side (default: 256)")
    parser.add_argument("--detectors", nargs="+", default=["srm-cnn", "fused"], help="(default: srm-cnn fused)")
    parser.add_argument("--detector-steps", type=int, help="training steps of the learned detectors")
    parser.add_argument(
        "--curve", type=int, nargs="*", default=[2, 4, 8], help="training pairs of the Fig. 5 curve (default: 2 4 8)"
    )
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--figure", type=Path, help="write the Fig. 5 curve to this PNG")
    parser.add_argument("--out", type=Path, help="keep each figure here as it is measured, and resume from it")
    args = parser.parse_args()
    device = torch.device(args.device)
    start = time.perf_counter()
    chosen = recipe("quick", steps=args.steps, seed=args.seed, val_every=0, checkpoint_every=0, tensorboard=False)
    test_paths = list_images(data_folder("kodak24")) + list_images(data_folder("cbsd68"))
    settings = dict(DEFAULT_TRAINING)
    if args.detector_steps:
        settings = {name: replace(value, steps=args.detector_steps) for name, value in settings.items()}
    setup = {
        "recipe": chosen,
        "device": device,
        "train_data": ImageDataset(data_folder("photos49"), crop=chosen.config.crop, cache=True),
        "pairs": evaluation_pairs(test_paths, size=args.size),
        "settings": settings,
    }
    print(f"machine: {machine(device)}")
    print(
        f"hiders: the quick recipe, {args.steps} steps each ({chosen.config.batch_size} pairs of "
        f"{chosen.config.crop}x{chosen.config.crop} crops of photos49); test: {len(setup['pairs'])} pairs of kodak24 "
        f"and cbsd68, {args.size}x{args.size}; detector steps: "
        + ", ".join(f"{name} {value.steps}" for name, value in settings.items())
    )
    options = ("steps", "freq_weight", "size", "detectors", "detector_steps", "seed", "bootstrap")
    store = Store(args.out, {key: getattr(args, key) for key in options} | {"device_type": device.type})
    results: dict[str, dict] = {}
    made: dict[str, dict] = {}
    for kind in HIDERS:
        results[kind], made[kind] = hider_figures(kind, args, setup, store)
    print_table(results, args.detectors)
    if args.curve:
        results["curve"] = detection_curve(args, setup, made, store)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
