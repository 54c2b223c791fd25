"""Showing a long scan's progress: a bar on a terminal, plain lines in a log, or nothing.

The bar (rich) shows files done, images per second and, when the number of
files is known in advance (--from-list), the ETA; during a streaming walk the
total is unknown, so it shows the count and the rate. When stderr is not a
terminal a line is printed every `every` seconds, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as Bar

from scanner.scan import Progress


def _rate(p: Progress) -> float:
    return p.written / p.elapsed if p.elapsed > 0 else 0.0


class ScanDisplay:
    """Context manager; pass `update` to scanner.scan.scan as on_progress."""

    def __init__(
        self, quiet: bool = False, total: int | None = None, stream: TextIO | None = None, every: float = 10.0
    ) -> None:
        self.stream = stream or sys.stderr
        self.mode = "quiet" if quiet else "bar" if self.stream.isatty() else "lines"
        self.total = total
        self.every = every
        self._last_line = time.monotonic()
        self._bar: Bar | None = None

    def __enter__(self) -> ScanDisplay:
        if self.mode == "bar":
            columns: list[ProgressColumn] = [
                TextColumn("[bold]scan"),
                BarColumn() if self.total else TextColumn(""),
                TextColumn("{task.completed:,} files"),
                TextColumn("{task.fields[rate]:,.0f} images/s"),
                TimeElapsedColumn(),
            ]
            if self.total:
                columns.append(TimeRemainingColumn())
            self._bar = Bar(*columns, console=Console(file=self.stream), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("scan", total=self.total, rate=0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, p: Progress) -> None:
        done = p.written + p.skipped
        if self._bar is not None:
            self._bar.update(self._task, completed=done, rate=_rate(p))
        elif self.mode == "lines" and time.monotonic() - self._last_line >= self.every:
            self._last_line = time.monotonic()
            of = f" of {self.total:,}" if self.total else ""
            skipped = f" ({p.skipped:,} already in the store)" if p.skipped else ""
            print(
                f"scan: {done:,}{of} files{skipped}, {_rate(p):,.0f} images/s, {p.elapsed:,.0f} s",
                file=self.stream,
                flush=True,
            )
