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

from invhide.errors import FileFormatError, MissingPathError
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


def _number(text: object) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _read_log(path: str | os.PathLike[str]) -> tuple[list[dict[str, float]], list[float]]:
    """The numbers of a run's ``train.csv`` or ``val.csv``, and the steps whose update was skipped.

    A log is read as a log reader would: each row keeps its finite numeric
    cells; text (the ``skipped`` column's ``loss spike``), empty and
    non-finite cells are left out, and a row without a numeric ``step``
    (a torn or edited line) is dropped. A row whose ``skipped`` cell holds
    text is a step whose update was skipped; its step is listed apart.

    Args:
        path: the CSV file; a missing file reads as no rows.

    Returns:
        ``(rows, skipped)``: one ``{column: value}`` per row with a step, in
        file order, and the steps of the skipped updates.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.csv"
        >>> _ = path.write_text("step,loss,skipped\\n1,0.5,\\n2,9e9,loss spike\\nnot a row\\n")
        >>> _read_log(path)
        ([{'step': 1.0, 'loss': 0.5}, {'step': 2.0, 'loss': 9000000000.0}], [2.0])
    """
    path = Path(path)
    if not path.is_file():
        return [], []
    rows, skipped = [], []
    with path.open(newline="", errors="replace") as file:
        for row in csv.DictReader(file):
            cells = ((key, _number(text)) for key, text in row.items() if key is not None)  # None: surplus cells
            numbers = {key: value for key, value in cells if value is not None}
            if "step" not in numbers:
                continue
            rows.append(numbers)
            if (row.get("skipped") or "").strip() and "skipped" not in numbers:
                skipped.append(numbers["step"])
    return rows, skipped


def _plot_losses(axis: Any, train: list[dict[str, float]], skipped: list[float]) -> None:
    """The total loss and its unweighted terms on a log scale; the skipped updates marked."""
    steps = [r["step"] for r in train]
    axis.plot(steps, [r.get("loss", math.nan) for r in train], label="total", color="black", linewidth=1)
    for name in ("concealing", "revealing", "low_frequency"):
        if any(name in r for r in train):
            axis.plot(steps, [r.get(name, math.nan) for r in train], label=name, linewidth=0.8)
    losses = {r["step"]: r["loss"] for r in train if "loss" in r}
    marked = [step for step in skipped if step in losses]
    if marked:
        axis.plot(marked, [losses[step] for step in marked], "x", color="red", label="update skipped (loss spike)")
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_title("training loss (unweighted terms)")
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)  # below: no data hidden


def _plot_psnrs(axis: Any, train: list[dict[str, float]], val: list[dict[str, float]]) -> None:
    """The training batches' PSNRs as lines, the validations' as points."""
    steps = [r["step"] for r in train]
    for key, label in (
        ("psnr_stego", "stego vs cover (train batch)"),
        ("psnr_recovered", "recovery vs secret (train batch)"),
    ):
        axis.plot(steps, [r.get(key, math.nan) for r in train], label=label, linewidth=0.8, alpha=0.6)
    for key, label in (
        ("psnr_stego_float", "stego vs cover (validation)"),
        ("psnr_recovered_float", "recovery vs secret (validation, float stego)"),
        ("psnr_recovered_8bit", "recovery vs secret (validation, 8-bit stego)"),
    ):
        points = [(r["step"], r[key]) for r in val if key in r]
        if points:
            axis.plot(*zip(*points, strict=True), marker="o", label=label)
    axis.set_xlabel("step")
    axis.set_ylabel("PSNR (dB, RGB)")
    axis.set_title("PSNR")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)


def training_curves(run_dir: str | os.PathLike[str], path: str | os.PathLike[str] | None = None) -> Path:
    """Plot the loss and the PSNRs of a run from its ``train.csv`` and ``val.csv``.

    The logs are read cell by cell: a step whose update was skipped (its
    ``skipped`` cell says why) is marked on the loss curve; text, empty and
    non-finite cells leave a gap; a row without a numeric step is left out.

    Args:
        run_dir: the trainer's output folder.
        path: the PNG to write; ``run_dir/curves.png`` by default.

    Returns:
        The PNG path.

    Raises:
        invhide.errors.MissingPathError: the folder has no ``train.csv``
            (a ``FileNotFoundError``).
        invhide.errors.FileFormatError: ``train.csv`` holds no row with a
            numeric step.

    Example:
        >>> import tempfile, pathlib
        >>> run = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (run / "train.csv").write_text("step,loss,psnr_stego,psnr_recovered\\n1,0.5,20,18\\n2,0.4,22,19\\n")
        >>> training_curves(run).name
        'curves.png'
    """
    run_dir = Path(run_dir)
    log = run_dir / "train.csv"
    if not log.is_file():
        raise MissingPathError(f"{log}: no such file, so no training log to plot")
    train, skipped = _read_log(log)
    if not train:
        raise FileFormatError(f"{log}: no row with a numeric step, so no training log to plot")
    val, _ = _read_log(run_dir / "val.csv")
    figure, (loss_axis, psnr_axis) = pyplot().subplots(1, 2, figsize=(11, 5))
    _plot_losses(loss_axis, train, skipped)
    _plot_psnrs(psnr_axis, train, val)
    figure.tight_layout()
    return save_figure(figure, path if path is not None else run_dir / "curves.png")
