"""`scanner scan` as a user runs it, timed in a subprocess over all the files and over half of them,
with the memory of its process tree."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scanner.bench.memory import TreeMemorySampler, peak_rss_mb

SCAN_WORK_SECONDS = 3.0


@dataclass
class ScanRun:
    workers: int
    seconds: float | None  # wall time of the whole command over all the files
    half_seconds: float | None  # the same over the first half of them
    images: int
    half_images: int
    peak_tree_rss_mb: float | None
    peak_tree_pss_mb: float | None
    error: str = ""

    @property
    def images_per_s(self) -> float | None:
        return None if not self.seconds else self.images / self.seconds

    @property
    def steady_images_per_s(self) -> float | None:
        """Throughput once running: the difference of the full and the half run, so the
        start-up and shut-down they share (interpreter, imports, workers, plans) cancel."""
        if not self.seconds or self.half_seconds is None or self.seconds <= self.half_seconds:
            return None
        return (self.images - self.half_images) / (self.seconds - self.half_seconds)

    @property
    def overhead_seconds(self) -> float | None:
        """Start-up and shut-down: the wall time the steady rate does not account for
        (None when run-to-run noise makes it come out negative)."""
        steady = self.steady_images_per_s
        overhead = None if not steady or self.seconds is None else self.seconds - self.images / steady
        return overhead if overhead is not None and overhead >= 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "images_per_s": self.images_per_s,
            "steady_images_per_s": self.steady_images_per_s,
            "overhead_seconds": self.overhead_seconds,
        }


def scan_command(
    target: Path | None,
    out: Path,
    workers: int,
    spectrum: str,
    from_list: Path | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """`python -m scanner scan` as a user runs it (fresh store, no progress output)."""
    source = ["--from-list", str(from_list)] if from_list else [str(target)]
    return [
        sys.executable,
        "-m",
        "scanner",
        "scan",
        *source,
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--spectrum",
        spectrum,
        *extra,
        "--quiet",
    ]


def _last_message(result: subprocess.CompletedProcess[str]) -> str:
    """The last line of a failed command's output that says something (no box drawing)."""
    for line in reversed((result.stderr or result.stdout or "").splitlines()):
        text = line.strip(" │╭╮╰╯─|")
        if any(ch.isalnum() for ch in text):
            return text
    return "no message"


def _run_timed(command: list[str]) -> tuple[float, TreeMemorySampler, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeMemorySampler(process.pid) as memory:
        stdout, stderr = process.communicate()
    seconds = time.perf_counter() - start
    return seconds, memory, subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def time_scan(
    paths: Sequence[Path],
    root: Path | None,
    worker_counts: Sequence[int],
    spectrum: str,
    work_dir: Path,
    extra: Sequence[str] = (),
) -> list[ScanRun]:
    """Wall time of `scanner scan` over the files, and over their first half, for each
    worker count. With `root`, the full run scans that directory (which must hold
    exactly `paths`), as a user would; otherwise the paths go in by --from-list.
    An exit status of 0 or 1 (some files unusable) counts as a finished scan.
    """
    half = max(1, len(paths) // 2)
    half_list, full_list = work_dir / "scan-half.txt", work_dir / "scan-all.txt"
    half_list.write_text("".join(f"{p}\n" for p in paths[:half]))
    if root is None:
        full_list.write_text("".join(f"{p}\n" for p in paths))
    runs = []
    for workers in worker_counts:
        half_out, out = work_dir / f"half-{workers}.h5", work_dir / f"scan-{workers}.h5"
        half_seconds, _, first = _run_timed(scan_command(None, half_out, workers, spectrum, half_list, extra))
        if first.returncode not in (0, 1):
            message = _last_message(first)
            if "no such command" in message.lower():
                message = "`scanner scan` does not exist in this version; row skipped"
            else:
                message = f"`scanner scan` failed (exit {first.returncode}): {message}"
            return [ScanRun(workers, None, None, len(paths), half, None, None, error=message)]
        command = scan_command(root, out, workers, spectrum, None if root else full_list, extra)
        seconds, memory, result = _run_timed(command)
        error = (
            ""
            if result.returncode in (0, 1)
            else f"`scanner scan` failed (exit {result.returncode}): {_last_message(result)}"
        )
        runs.append(
            ScanRun(
                workers,
                None if error else seconds,
                half_seconds,
                len(paths),
                half,
                memory.peak_rss / 2**20,
                memory.peak_pss / 2**20,
                error,
            )
        )
        for store in (half_out, out):
            store.unlink(missing_ok=True)
    return runs


def scan_image_count(count: int, seconds_per_image: float, work_seconds: float = SCAN_WORK_SECONDS) -> int:
    """Images for the scan runs: about `work_seconds` of one core's work (at least
    `count`, at most 8 times it or 8192), since each run also pays a start-up of a
    few seconds that varies from run to run."""
    return int(min(8 * count, 8192, max(count, work_seconds / max(seconds_per_image, 1e-6))))


def scan_memory(scan: Sequence[ScanRun]) -> dict[str, float | None]:
    memory: dict[str, float | None] = dict(peak_rss_mb())
    memory["scan_tree_peak_rss_mb"] = max((r.peak_tree_rss_mb or 0 for r in scan), default=None) or None
    memory["scan_tree_peak_pss_mb"] = max((r.peak_tree_pss_mb or 0 for r in scan), default=None) or None
    return memory
