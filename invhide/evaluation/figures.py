"""Figures: the paper's Fig. 3 layout and training curves (needs matplotlib: ``pip install "invhide[plot]"``).

Both figures, and every other figure invhide draws, come from :func:`pyplot`
and are written by :func:`save_figure`: a PNG written atomically, its path
returned.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from invhide.errors import MissingPathError
from invhide.io.files import atomic_write

__all__ = ["hiding_figure", "pyplot", "save_figure", "training_curves"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or an ``ImportError`` saying how to install it."""
    try:  # imported on first use: matplotlib is an optional extra, and slow to import
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError('figures need matplotlib: pip install "invhide[plot]"') from error
    return plt


def save_figure(figure: Any, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Write a matplotlib figure to ``path`` as a PNG, atomically, and close it.

    Example:
        >>> import tempfile, pathlib
        >>> figure, axes = pyplot().subplots()
        >>> save_figure(figure, pathlib.Path(tempfile.mkdtemp()) / "empty.png").suffix
        '.png'
    """
    path = Path(path)
    try:
        with atomic_write(path) as file:
            figure.savefig(file, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        pyplot().close(figure)
    return path


def _show(image: Tensor) -> Any:
    return image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def hiding_figure(
    cover: Tensor,
    stego: Tensor,
    secret: Tensor,
    recovered: Tensor,
    path: str | os.PathLike[str],
    *,
    amplify: float = 10.0,
    titles: Sequence[str] | None = None,
) -> Path:
    """Cover, stego, amplified residual, secret, recovery, amplified residual: one row per image.

    The residuals are ``amplify * |stego - cover|`` and ``amplify *
    |recovered - secret|``, clipped to ``[0, 1]``, as in Fig. 3 of the paper.

    Args:
        cover: ``(B, 3, H, W)`` in ``[0, 1]``.
        stego: ``(B, 3, H, W)``.
        secret: ``(B, 3, H, W)``.
        recovered: ``(B, 3, H, W)``.
        path: the PNG to write (its folder must exist).
        amplify: residual gain.
        titles: optional label per row (e.g. the image names).

    Returns:
        ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> images = torch.rand(4, 1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> hiding_figure(*images, pathlib.Path(tempfile.mkdtemp()) / "fig3.png").name
        'fig3.png'
    """
    plt = pyplot()
    rows = cover.shape[0]
    columns = [
        ("cover", cover),
        ("stego", stego),
        (f"|stego - cover| x{amplify:g}", (stego - cover).abs() * amplify),
        ("secret", secret),
        ("recovery", recovered),
        (f"|recovery - secret| x{amplify:g}", (recovered - secret).abs() * amplify),
    ]
    figure, axes = plt.subplots(rows, len(columns), figsize=(2.2 * len(columns), 2.3 * rows), squeeze=False)
    for row in range(rows):
        for column, (name, images) in enumerate(columns):
            axis = axes[row][column]
            axis.imshow(_show(images[row]))
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(name, fontsize=9)
        if titles is not None:
            axes[row][0].set_ylabel(titles[row], fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def _read_csv(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(file)]


def training_curves(run_dir: str | os.PathLike[str], path: str | os.PathLike[str] | None = None) -> Path:
    """Plot the loss and the PSNRs of a run from its ``train.csv`` and ``val.csv``.

    Args:
        run_dir: the trainer's output folder.
        path: the PNG to write; ``run_dir/curves.png`` by default.

    Returns:
        The PNG path.

    Raises:
        FileNotFoundError: the folder has no ``train.csv``.

    Example:
        >>> import tempfile, pathlib
        >>> run = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (run / "train.csv").write_text("step,loss,psnr_stego,psnr_recovered\\n1,0.5,20,18\\n2,0.4,22,19\\n")
        >>> training_curves(run).name
        'curves.png'
    """
    run_dir = Path(run_dir)
    train = _read_csv(run_dir / "train.csv")
    if not train:
        raise MissingPathError(f"{run_dir / 'train.csv'}: no training log to plot")
    val = _read_csv(run_dir / "val.csv")
    figure, (loss_axis, psnr_axis) = pyplot().subplots(1, 2, figsize=(11, 5))
    steps = [r["step"] for r in train]
    loss_axis.plot(steps, [r["loss"] for r in train], label="total", color="black", linewidth=1)
    for name in ("concealing", "revealing", "low_frequency"):
        if name in train[0]:
            loss_axis.plot(steps, [r.get(name, float("nan")) for r in train], label=name, linewidth=0.8)
    loss_axis.set_yscale("log")
    loss_axis.set_xlabel("step")
    loss_axis.set_title("training loss (unweighted terms)")
    loss_axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)  # below: no data hidden
    for key, label in (
        ("psnr_stego", "stego vs cover (train batch)"),
        ("psnr_recovered", "recovery vs secret (train batch)"),
    ):
        psnr_axis.plot(steps, [r[key] for r in train], label=label, linewidth=0.8, alpha=0.6)
    for key, label in (
        ("psnr_stego_float", "stego vs cover (validation)"),
        ("psnr_recovered_float", "recovery vs secret (validation, float stego)"),
        ("psnr_recovered_8bit", "recovery vs secret (validation, 8-bit stego)"),
    ):
        points = [(r["step"], r[key]) for r in val if key in r and math.isfinite(r[key])]
        if points:
            psnr_axis.plot(*zip(*points, strict=True), marker="o", label=label)
    psnr_axis.set_xlabel("step")
    psnr_axis.set_ylabel("PSNR (dB, RGB)")
    psnr_axis.set_title("PSNR")
    psnr_axis.grid(alpha=0.3)
    psnr_axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    figure.tight_layout()
    return save_figure(figure, path if path is not None else run_dir / "curves.png")
