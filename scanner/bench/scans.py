"""`scanner scan` as a user runs it, timed in a subprocess over all the files and over half of them,
with the memory of its process tree."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scanner.bench.memory import TreeMemorySampler, peak_rss_mb

SCAN_WORK_SECONDS = 8.0  # of one core's work: enough chunks for each worker that the rate once running holds


@dataclass
class ScanRun:
    workers: int
    seconds: float | None  # wall time of the whole command over all the files
    images: int
    running_rows: int  # what the scan itself reports (its --json): rows back from the workers once running,
    running_seconds: float  # and the seconds they took, from the first result to the last
    peak_tree_rss_mb: float | None
    peak_tree_pss_mb: float | None
    error: str = ""

    @property
    def images_per_s(self) -> float | None:
        return None if not self.seconds else self.images / self.seconds

    @property
    def steady_images_per_s(self) -> float | None:
        """Throughput once running, as the scan measured it: start-up (interpreter, imports, workers, plans)
        and shut-down (the store's finish) are outside its window."""
        if self.running_rows <= 0 or self.running_seconds <= 0:
            return None
        return self.running_rows / self.running_seconds

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
    """`python -m scanner scan` as a user runs it (fresh store, no progress output), ending with its JSON line."""
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
        "--json",
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


def _running(result: subprocess.CompletedProcess[str]) -> tuple[int, float]:
    """The running rows and seconds of a scan's --json line (0, 0.0 when it has none)."""
    for line in reversed(result.stdout.splitlines()):
        try:
            summary = json.loads(line)
        except ValueError:
            continue
        if isinstance(summary, dict):
            return int(summary.get("running_rows") or 0), float(summary.get("running_seconds") or 0.0)
    return 0, 0.0


def time_scan(
    paths: Sequence[Path],
    root: Path | None,
    worker_counts: Sequence[int],
    spectrum: str,
    work_dir: Path,
    extra: Sequence[str] = (),
) -> list[ScanRun]:
    """Wall time of `scanner scan` over the files for each worker count, and its rate once running
    (the scan's own figure: from the first result back from its workers to the last). With `root`, it
    scans that directory (which must hold exactly `paths`), as a user would; otherwise the paths go in
    by --from-list. An exit status of 0 or 1 (some files unusable) counts as a finished scan.
    """
    full_list = work_dir / "scan-all.txt"
    if root is None:
        full_list.write_text("".join(f"{p}\n" for p in paths))
    runs: list[ScanRun] = []
    for workers in worker_counts:
        out = work_dir / f"scan-{workers}.h5"
        command = scan_command(root, out, workers, spectrum, None if root else full_list, extra)
        seconds, memory, result = _run_timed(command)
        if result.returncode not in (0, 1):
            message = _last_message(result)
            if "no such command" in message.lower():
                message = "`scanner scan` does not exist in this version; row skipped"
            else:
                message = f"`scanner scan` failed (exit {result.returncode}): {message}"
            return [*runs, ScanRun(workers, None, len(paths), 0, 0.0, None, None, error=message)]
        rows, running_seconds = _running(result)
        runs.append(
            ScanRun(
                workers,
                seconds,
                len(paths),
                rows,
                running_seconds,
                memory.peak_rss / 2**20,
                memory.peak_pss / 2**20,
            )
        )
        out.unlink(missing_ok=True)
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
