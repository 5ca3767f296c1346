"""Progress output: a tqdm bar on a terminal, a plain line every few seconds in a log.

A tqdm bar redraws itself with carriage returns; written to a file or a pipe
(``invhide steganalysis ... > log 2>&1``), every redraw stays in the log.
:func:`progress_bar`, the one way invhide shows progress, keeps the bar where
the output is a terminal (or a Jupyter notebook) and elsewhere writes a
:class:`PlainProgress`: one line every :data:`LOG_INTERVAL` seconds and one
at the end, each ending in a newline.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm.auto import tqdm

from invhide.checks import number

__all__ = ["LOG_INTERVAL", "PlainProgress", "progress_bar"]

LOG_INTERVAL = 10.0
"""Seconds between two lines of progress written to a file or a pipe."""

# tqdm.auto picks the notebook widget in Jupyter, whose output is not a terminal but shows a bar well.
_NOTEBOOK = any(base.__module__ == "tqdm.notebook" for base in tqdm.__mro__)


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _is_terminal(file: TextIO) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed file
        return False


class PlainProgress:
    """Progress as plain lines (``desc: n/total units (p%), elapsed, rate, time left, postfix``).

    It offers the part of tqdm's interface invhide uses: iteration,
    :meth:`update`, :meth:`set_postfix`, :meth:`write`, :meth:`refresh`,
    :meth:`close`, the attribute ``n`` and use as a context manager. Lines
    are written when an update comes at least ``interval`` seconds after the
    previous line, and at :meth:`close` (with ``leave=False``, only when a
    line was already written): never a carriage return.

    Args:
        iterable: what to iterate over, or ``None`` (call :meth:`update`).
        total: the expected number of updates; ``len(iterable)`` when it has one.
        desc: the name printed first.
        unit: what one update counts (``"step"``, ``"tile"``).
        initial: the count to start from (a resumed run).
        leave: write the final line at :meth:`close` even if no line was written before.
        file: the stream (default ``sys.stderr`` at creation).
        interval: seconds between lines (``>= 0``; 0 writes one line per update).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> with PlainProgress(total=1000, desc="training", unit="step", file=out) as bar:
        ...     for _ in range(1000):
        ...         bar.update(1)
        >>> out.getvalue().count("\\n"), "\\r" in out.getvalue(), out.getvalue().startswith("training: 1000/1000 steps")
        (1, False, True)
    """

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        leave: bool = True,
        file: TextIO | None = None,
        interval: float = LOG_INTERVAL,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit, self.leave = total, desc, unit, leave
        self.n = self.initial = initial
        self.file = file if file is not None else sys.stderr
        self.interval = number("interval", interval, low=0.0)
        self.postfix = ""
        self.lines = 0
        self.closed = False
        self._start = self._last = time.monotonic()

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self.iterable if self.iterable is not None else ():
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more; write a line when ``interval`` seconds have passed since the last one."""
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._emit(now)

    def set_postfix(self, **values: Any) -> None:
        """Show ``key=value`` pairs at the end of the next lines (as tqdm's ``set_postfix``)."""
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def write(self, message: str) -> None:
        """Write a line of its own (as tqdm's ``write``)."""
        print(message, file=self.file, flush=True)

    def refresh(self) -> None:
        """Nothing to redraw: the next line shows the new count."""

    def close(self) -> None:
        """Write the final line (see ``leave``); later calls do nothing."""
        if self.closed:
            return
        self.closed = True
        if self.leave or self.lines:
            self._emit(time.monotonic())

    def line(self, now: float | None = None) -> str:
        """The progress line as it would be written now.

        Example:
            >>> PlainProgress(total=4, desc="tiles", unit="tile").line()[:22]
            'tiles: 0/4 tiles (0%),'
        """
        elapsed = (time.monotonic() if now is None else now) - self._start
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        parts = [f"{self.desc + ': ' if self.desc else ''}{done} {self.unit}s"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts.append(_duration(elapsed))
        if elapsed > 0 and self.n > self.initial:
            rate = (self.n - self.initial) / elapsed
            parts.append(f"{rate:.3g} {self.unit}s/s")
            if self.total and self.n < self.total:
                parts.append(f"about {_duration((self.total - self.n) / rate)} left")
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def _emit(self, now: float) -> None:
        print(self.line(now), file=self.file, flush=True)
        self.lines += 1
        self._last = now


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    initial: int = 0,
    leave: bool = True,
    enabled: bool = True,
    file: TextIO | None = None,
    interval: float = LOG_INTERVAL,
) -> Any:
    """A progress display: a tqdm bar on a terminal or in a notebook, a :class:`PlainProgress` elsewhere.

    Use it as tqdm: iterate over it, or call ``update(n)`` (and
    ``set_postfix(...)``, ``write(...)``, ``close()``), or use it in a
    ``with`` block. Where ``file`` is not a terminal (a log file, a pipe,
    ``io.StringIO``), a line is written every ``interval`` seconds and at the
    end instead of a redraw per update.

    Args:
        iterable: what to iterate over, or ``None``.
        total: the expected number of updates (``len(iterable)`` by default).
        desc: the bar's name.
        unit: what one update counts.
        initial: the count to start from.
        leave: keep the finished bar (on a terminal), write the final line (elsewhere).
        enabled: ``False`` gives a silent tqdm (every method a no-op).
        file: the stream, default ``sys.stderr``.
        interval: seconds between two plain lines.

    Returns:
        A ``tqdm`` or a :class:`PlainProgress`.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> for _ in progress_bar(range(500), desc="tiles", unit="tile", file=out):
        ...     pass
        >>> out.getvalue().splitlines()[-1].startswith("tiles: 500/500 tiles (100%)"), "\\r" in out.getvalue()
        (True, False)
    """
    file = file if file is not None else sys.stderr
    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if _NOTEBOOK or _is_terminal(file):
        return tqdm(
            iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave, file=file, dynamic_ncols=True
        )
    return PlainProgress(
        iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave, file=file, interval=interval
    )
