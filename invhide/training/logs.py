"""The records of a training run: ``log.jsonl``, ``train.csv``, ``val.csv`` and TensorBoard."""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

from invhide.errors import PathExistsError
from invhide.io.files import atomic_write

__all__ = ["RunLog"]


class RunLog:
    """Where a run's records go; every method is a no-op without a folder (in memory, or off rank 0).

    ``log.jsonl`` gets every record; records of kind ``"train"`` and
    ``"val"`` also go to ``train.csv`` and ``val.csv`` and, when asked for and
    installed, to TensorBoard. Records of kind ``"event"`` (rollbacks,
    interruptions) stay in ``log.jsonl`` for good; the others can be cut back
    to a step (:meth:`truncate`), so that a resumed or rolled-back run logs
    each step once.

    Args:
        folder: the run folder, or ``None``.
        tensorboard: also write TensorBoard scalars when
            ``torch.utils.tensorboard`` imports.

    Example:
        >>> import tempfile, pathlib
        >>> log = RunLog(pathlib.Path(tempfile.mkdtemp()), tensorboard=False)
        >>> log.open(step=0)
        >>> log.write({"kind": "train", "step": 1, "loss": 2.0})
        >>> log.write({"kind": "train", "step": 2, "loss": 1.0})
        >>> log.truncate(1)
        >>> (log.folder / "train.csv").read_text().splitlines()
        ['step,loss', '1,2.0']
    """

    def __init__(self, folder: str | os.PathLike[str] | None, tensorboard: bool = True) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.tensorboard = tensorboard
        self._board: Any = None

    def check_fresh(self) -> None:
        """Refuse to start a new run over a previous one's logs and checkpoints.

        Raises:
            PathExistsError: the folder holds ``log.jsonl`` or ``checkpoints``.
        """
        if self.folder is None:
            return
        previous = [p.name for p in (self.folder / "log.jsonl", self.folder / "checkpoints") if p.exists()]
        if previous:
            raise PathExistsError(
                f"{self.folder} holds a previous run ({', '.join(previous)}); resume it (resume=True, --resume) "
                f"or choose another output folder"
            )

    def open(self, step: int) -> None:
        """Create the folder, drop records after ``step`` (a resumed run rewrites them) and start TensorBoard."""
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.truncate(step)
        if self.tensorboard and self._board is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                pass  # optional: the records are in log.jsonl and the CSV files
            else:
                self._board = SummaryWriter(str(self.folder / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (a JSON-ready dict with a ``"kind"``)."""
        if self.folder is None:
            return
        with (self.folder / "log.jsonl").open("a") as file:
            file.write(json.dumps(record) + "\n")
        kind = record.get("kind")
        if kind not in ("train", "val"):
            return
        path = self.folder / f"{kind}.csv"
        new = not path.exists() or path.stat().st_size == 0
        if new:
            fields = [k for k in record if k != "kind"]
        else:  # a resumed run appends under the columns the file already has
            with path.open(newline="", errors="replace") as file:
                fields = next(csv.reader(file), [])
        with path.open("a", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=fields, extrasaction="ignore", restval="")
            if new:
                writer.writeheader()
            writer.writerow(record)
        if self._board is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "kind"):
                    self._board.add_scalar(f"{kind}/{key}", value, record["step"])

    def truncate(self, step: int) -> None:
        """Drop the train and val records past ``step`` (events are kept).

        Lines that do not parse (the torn last line of a run that was killed
        mid-write, or a hand edit) are dropped with a warning that names the
        file and the lines.
        """
        if self.folder is None:
            return
        jsonl = self.folder / "log.jsonl"
        if jsonl.is_file():
            kept, bad = [], []
            for number, line in enumerate(jsonl.read_text(errors="replace").splitlines(), start=1):
                record = _record(line)
                if record is None:
                    bad.append(number)
                elif record.get("kind") == "event" or _step(record) <= step:
                    kept.append(line)
            _warn_dropped(jsonl, bad)
            with atomic_write(jsonl, "w") as file:
                file.write("".join(line + "\n" for line in kept))
        for kind in ("train", "val"):
            path = self.folder / f"{kind}.csv"
            if not path.is_file():
                continue
            with path.open(newline="", errors="replace") as file:
                reader = csv.DictReader(file)
                fields = list(reader.fieldnames or [])
                rows, bad = [], []
                for number, row in enumerate(reader, start=2):
                    row_step = _number(row.get("step"))
                    if row_step is None or None in row:  # no step, or more cells than the header has
                        bad.append(number)
                    elif row_step <= step:
                        rows.append(row)
            _warn_dropped(path, bad)
            with atomic_write(path, "w") as file:
                writer = csv.DictWriter(file, fieldnames=fields, restval="")
                if fields:
                    writer.writeheader()
                writer.writerows(rows)

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._board is not None:
            self._board.close()
            self._board = None


def _record(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _step(record: dict[str, Any]) -> float:
    """A record's step; one without a readable step sorts first, so it is kept."""
    return _number(record.get("step", 0)) or 0.0


def _warn_dropped(path: Path, lines: list[int]) -> None:
    if lines:
        shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
        warnings.warn(
            f"{path}: dropped {len(lines)} unreadable line(s) ({shown}): torn by a crash or edited",
            UserWarning,
            stacklevel=3,
        )
