"""Showing a long scan's progress: a bar on a terminal, plain lines in a log, or nothing.

Both show files done, the rate and the time elapsed; once the total is known,
also "N of TOTAL" and, once the rate has settled (``TimeLeft``), the time left.
The total comes from a list file at once, or from counting the tree in a
background thread (``TotalCount``: the walk lists hundreds of thousands of files
a second, far faster than they are measured), and is shown as soon as the count
is done. Rates below 10 images/s keep a decimal,
and below 1 image/s read as seconds per image. When stderr is not a terminal a
line is printed every `every` seconds, so logs stay readable. Log messages
(compiling kernels, planning FFTs) appear above the bar, which stays whole.
"""

from __future__ import annotations

import collections
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar

from scanner.core.words import plural

if TYPE_CHECKING:
    from scanner.run.sweep import Progress

RATE_WINDOW = 30.0  # seconds of recent progress the rate and the time left are taken from
SETTLE_SECONDS = 5.0  # no time left is shown before this many seconds of measuring ...
SETTLE_FILES = 20  # ... and this many files measured: the first files' rate says little
SMOOTHING_SECONDS = 10.0  # time constant of the smoothed rate the time left is taken from


def format_rate(images_per_second: float) -> str:
    """'1,234 images/s', '3.5 images/s', or '2.4 s per image' below one a second; '-' before any."""
    if not images_per_second > 0:
        return "- images/s"
    if images_per_second >= 10:
        return f"{images_per_second:,.0f} images/s"
    if images_per_second >= 1:
        return f"{images_per_second:.1f} images/s"
    return f"{1 / images_per_second:.1f} s per image"


def format_duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '2 h 07 min'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class _Rate:
    """Images per second over the last RATE_WINDOW seconds (start-up and skipped files left out)."""

    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def add(self, elapsed: float, written: int) -> float:
        samples = self._samples
        samples.append((elapsed, written))
        while len(samples) > 2 and samples[1][0] < elapsed - RATE_WINDOW:
            samples.popleft()
        # From the last moment nothing was done yet (the end of start-up), else from the window's start.
        start = next((s for s in reversed(samples) if s[1] == 0), samples[0])
        if elapsed > start[0] and written > start[1]:
            return (written - start[1]) / (elapsed - start[0])
        return written / elapsed if elapsed > 0 and written else 0.0


class TimeLeft:
    """The time left, held back until the rate has settled, then from a smoothed rate.

    In a scan's first seconds the rate comes from a handful of files (the first of
    them slowed by the workers' start-up), and the time left it gives can be many
    times the truth. None is given until SETTLE_SECONDS of measuring (counted from
    the end of start-up, the last moment no file was done) and SETTLE_FILES files
    have passed; from then on the rate is smoothed (an exponential average with a
    time constant of SMOOTHING_SECONDS), so that one burst or lull does not make it jump.
    """

    def __init__(self) -> None:
        self._started = 0.0  # elapsed at the end of start-up
        self._smooth: float | None = None
        self._last = 0.0

    def update(self, elapsed: float, written: int, rate: float, remaining: int) -> float | None:
        """Seconds left for `remaining` files, at `elapsed` seconds with `written` files measured at `rate`
        files a second; None while the rate has not settled."""
        if written == 0:
            self._started, self._smooth = elapsed, None
            return None
        if self._smooth is None:
            if elapsed - self._started < SETTLE_SECONDS or written < SETTLE_FILES or not rate > 0:
                return None
            self._smooth = rate  # a rate over several seconds already
        else:
            weight = 1.0 - math.exp(-max(elapsed - self._last, 0.0) / SMOOTHING_SECONDS)
            self._smooth += (rate - self._smooth) * weight
        self._last = elapsed
        return remaining / self._smooth if self._smooth > 0 and remaining > 0 else None


class ScanDisplay:
    """Context manager; pass `update` to scanner.run.sweep.scan as on_progress, and `set_total` the total when known."""

    def __init__(
        self, quiet: bool = False, total: int | None = None, stream: TextIO | None = None, every: float = 10.0
    ) -> None:
        self.stream = stream or sys.stderr
        self.mode = "quiet" if quiet else "bar" if self.stream.isatty() else "lines"
        self.total = total
        self.every = every
        self._last_line = time.monotonic()
        self._bar: Bar | None = None
        self._rate = _Rate()
        self._left = TimeLeft()
        self._last: Progress | None = None

    def __enter__(self) -> ScanDisplay:
        if self.mode == "bar":
            columns: list[ProgressColumn] = [
                TextColumn("[bold]scan"),
                BarColumn(),
                TextColumn("{task.fields[files]}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[left]}"),
            ]
            # redirect_stderr: log messages written to stderr meanwhile are shown above the bar.
            self._bar = Bar(*columns, console=Console(file=self.stream), transient=True, redirect_stderr=True)
            self._bar.start()
            self._task = self._bar.add_task("scan", total=self.total, files="0 files", rate="", left="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def set_total(self, total: int) -> None:
        """The number of files the scan will go through (from a background count); safe from any thread."""
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def words(self, p: Progress) -> tuple[str, str, str]:
        """What to show: files ('1,234 of 10,000 files (12%)'), the rate, and the time left ('' when unknown)."""
        done = p.written + p.skipped
        rate = self._rate.add(p.elapsed, p.written)
        total = self.total
        skipped = f", {p.skipped:,} already in the store" if p.skipped else ""
        if total:
            files = f"{done:,} of {plural(total, 'file')} ({100 * min(done, total) / total:.0f}%){skipped}"
        else:
            files = f"{plural(done, 'file')}{skipped}"
        seconds = self._left.update(p.elapsed, p.written, rate, max((total or 0) - done, 0))
        left = f"about {format_duration(seconds)} left" if total and seconds is not None else ""
        return files, format_rate(rate) if p.written else "starting", left

    def update(self, p: Progress) -> None:
        self._last = p
        if self.mode == "quiet":
            return
        files, rate, left = self.words(p)
        if self._bar is not None:
            self._bar.update(self._task, completed=p.written + p.skipped, files=files, rate=rate, left=left)
        elif self.mode == "lines" and time.monotonic() - self._last_line >= self.every:
            self._last_line = time.monotonic()
            parts = [files, rate, f"{format_duration(p.elapsed)} elapsed", left]
            print("scan: " + ", ".join(part for part in parts if part), file=self.stream, flush=True)


class TotalCount:
    """Counts what a walk yields in a background thread; calls `on_total(n)` when the count is done.

    Use as a context manager: leaving it stops a count that has not finished (the
    scan may end first, for example on a resume where every file is done).
    """

    def __init__(self, entries: Callable[[], Iterable[object]], on_total: Callable[[int], None]) -> None:
        self._entries = entries
        self._on_total = on_total
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._count, name="scanner-count", daemon=True)
        self.total: int | None = None

    def _count(self) -> None:
        n = 0
        try:
            for _ in self._entries():
                n += 1
                if self._stop.is_set():
                    return
        except Exception:  # a tree that cannot be listed: the scan itself records why, and shows no total
            return
        self.total = n
        self._on_total(n)

    def __enter__(self) -> TotalCount:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
