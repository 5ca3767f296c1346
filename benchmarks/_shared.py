"""Where the benchmarks find the shared image sets (``../shared/data`` beside the checkout)."""

from __future__ import annotations

import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_folder(name: str) -> Path:
    """``../shared/data/<name>``, or exit with a clear message when it is absent."""
    folder = DATA / name
    if not folder.is_dir():
        sys.exit(
            f"{folder}: not found; this benchmark reads the shared image sets from ../shared/data beside the checkout"
        )
    return folder
