"""Memory of a process tree (Linux /proc: RSS and PSS of every descendant) and peak RSS (getrusage)."""

from __future__ import annotations

import os
import resource
import sys
import threading


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                kids += [int(k) for k in handle.read().split()]
    except (OSError, ValueError):
        pass
    return kids


def _memory_bytes(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process; PSS counts a page shared by n processes as 1/n of it,
    so forked workers sharing their parent's pages are not counted twice."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss, pss


def tree_memory_bytes(pid: int) -> tuple[int, int]:
    """(RSS, PSS) summed over a process and all its descendants now (Linux /proc; 0 elsewhere)."""
    rss = pss = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        one_rss, one_pss = _memory_bytes(current)
        rss += one_rss
        pss += one_pss
        stack += _children(current)
    return rss, pss


class TreeMemorySampler:
    """Samples the memory of a process tree in a background thread and keeps the largest
    totals seen (`peak_rss`, `peak_pss`, bytes). Sampling is coarse (every `interval` s),
    so short spikes can be missed; getrusage's ru_maxrss gives the exact peak of single
    processes."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = tree_memory_bytes(self.pid)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory so far: this process, and the largest finished child. On Linux a child's figure is
    at least the RSS of the process it was forked from (the kernel keeps the peak across fork and exec);
    /proc/PID/status's VmHWM is a process's own."""
    to_mb = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return {
        "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_mb,
        "largest_child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * to_mb,
    }
