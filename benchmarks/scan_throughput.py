"""`scanner scan` throughput: where the time goes, worker scaling, memory, walk rate.

Run (from the repository root, with the project's virtual environment):

    .venv/bin/python benchmarks/scan_throughput.py [--images 4000] [--sizes 10000,200000] [--workers 1,2]
                                                   [--only stages,scaling,memory,walk]

Everything runs on generated images in a temporary directory, removed at the end. It prints:

1. stages: per 256x256 JPEG (quality 90, 4:2:0), in one process: reading the bytes, decoding,
   the features, and features_of_file end to end; the single-core ceiling that implies.
2. scaling: scan() over --images 256x256 JPEGs with each worker count: steady images/s
   (between 10% and 90% of the rows written, so start-up and the final merge do not
   count), wall time, and the parent's CPU time per image (walk, pipes, journal, merge).
3. memory: `python -m scanner scan` over a tree of small JPEGs (32x32, 1,000 per
   directory) grown to each --sizes, the peak memory of the whole process tree (sum of
   PSS, which counts pages shared by the fork server and its workers once; and sum of RSS).
4. walk: scanner.io.walk.Walk over the largest tree from a warm cache (files/s), next to a
   bare os.scandir + stat loop (the floor of any walker that needs sizes and mtimes).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from scanner.bench.memory import TreeMemorySampler
from scanner.features.extract import make_extractor
from scanner.features.measure import features_of_file
from scanner.images.decode import decode_bytes
from scanner.io.walk import Walk
from scanner.run.sweep import ScanOptions, scan
from scanner.store.session import CommitPolicy

PER_DIRECTORY = 1000


def distinct_jpegs(directory: Path, n: int, size: int, seed: int = 0) -> None:
    """n different JPEGs (a smooth image plus fresh noise each), 250 per subdirectory."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([128 + 60 * np.sin(6 * x + k) * np.cos(4 * y - k) for k in (0.0, 0.7, 1.4)], axis=-1)
    for i in range(n):
        sub = directory / f"d{i // 250:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        image = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(sub / f"{i:07d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def grow_small_tree(directory: Path, start: int, stop: int, blobs: list[bytes]) -> None:
    """Files start..stop-1 of a tree of small JPEGs (a few distinct ones written over and over)."""
    for i in range(start, stop):
        sub = directory / f"d{i // PER_DIRECTORY:04d}"
        if i % PER_DIRECTORY == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:07d}.jpg").write_bytes(blobs[i % len(blobs)])


def stages(directory: Path) -> None:
    files = sorted(directory.rglob("*.jpg"))[:500]
    extractor = make_extractor(planner="measure")
    data = [f.read_bytes() for f in files]
    pixels = [decode_bytes(d).pixels for d in data]
    extractor.from_bgr(pixels[0])  # plan once

    def per_image(fn, items) -> float:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            for item in items:
                fn(item)
            best = min(best, (time.perf_counter() - t) / len(items))
        return best * 1e3

    read = per_image(lambda f: f.read_bytes(), files)
    decode = per_image(decode_bytes, data)
    feats = per_image(extractor.from_bgr, pixels)
    whole = per_image(lambda f: features_of_file(f, extractor), files)
    print("1. stages, ms per 256x256 JPEG in one process (best of 3 over 500 files)")
    print(f"   read bytes {read:.3f}   decode {decode:.3f}   features {feats:.3f}   features_of_file {whole:.3f}")
    print(
        f"   ceiling: {1e3 / whole:,.0f} images/s per core; 2,500 images/s on 2 cores needs "
        f"{2e3 / 2500:.2f} ms per image per core"
    )


def _tree(pid: int) -> list[int]:
    """A process and all its descendants (for a scan: the fork server and its workers)."""
    found, stack = [], [pid]
    while stack:
        p = stack.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                stack += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_scan(
    directory: Path, workers: int, out: Path, cluster: str | None = None
) -> tuple[float, float, float, float, int]:
    """(steady images/s, wall s, this process's CPU s, other processes' CPU s, rows) of one scan() from scratch.

    Steady: the rate between the moments 10% and 90% of the rows were written,
    from the progress samples, so start-up and the final merge do not count.
    This process's CPU time is from rusage (with `cluster="local"` it includes the
    scheduler and the nannies); its descendants' (workers, fork server) is sampled
    from /proc every 20 ms while they run.
    """
    samples: list[tuple[float, int]] = []
    children_cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in _tree(os.getpid())[1:]:
                children_cpu[pid] = max(children_cpu.get(pid, 0.0), _cpu_seconds(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    try:
        summary = scan(
            Walk([directory]),
            out,
            ScanOptions(commit=CommitPolicy(commit_rows=100), workers=workers, overwrite=True, cluster=cluster),
            on_progress=lambda p: samples.append((time.perf_counter(), p.written)),
        )
    finally:
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_SELF)
        done.set()
        sampler.join()
    out.unlink()
    n = summary.written
    t10, w10 = next(s for s in samples if s[1] >= 0.1 * n)
    t90, w90 = next(s for s in samples if s[1] >= 0.9 * n)
    steady = (w90 - w10) / (t90 - t10) if t90 > t10 else float("nan")
    parent = (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
    return steady, wall, parent, sum(children_cpu.values()), n


def scaling(directory: Path, worker_counts: list[int], work: Path, repeats: int = 3) -> None:
    print(
        f"2. scaling: scan() over 256x256 JPEGs (planner measure, wisdom warm); steady rate between 10% and "
        f"90% of the rows written; best of {repeats}, worker counts interleaved; CPU per image from rusage "
        f"and /proc (parent, fork server + workers)"
    )
    best: dict[int, tuple[float, float, float, float, int]] = {}
    for _ in range(repeats):
        for workers in worker_counts:
            result = timed_scan(directory, workers, work / "scaling.h5")
            if workers not in best or result[0] > best[workers][0]:
                best[workers] = result
    for workers, (steady, wall, parent, others, n) in best.items():
        print(
            f"   {workers} worker(s): steady {steady:,.0f} images/s; {n:,} files in {wall:.2f} s "
            f"({n / wall:,.0f} images/s end to end); CPU per image: parent {parent / n * 1e3:.3f} ms, "
            f"fork server + workers {others / n * 1e3:.3f} ms"
        )
    if len(best) > 1:
        low, high = min(best), max(best)
        print(
            f"   {high} workers / {low}: steady {best[high][0] / best[low][0]:.2f}x, "
            f"end to end {best[low][1] / best[high][1]:.2f}x (load average now {os.getloadavg()[0]:.1f})"
        )


def memory(directory: Path, sizes: list[int], work: Path) -> None:
    print("3. memory: `python -m scanner scan` over small JPEGs (32x32), peak of the whole process tree")
    rng = np.random.default_rng(1)
    blobs = [cv2.imencode(".jpg", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))[1].tobytes() for _ in range(64)]
    have = 0
    for size in sizes:
        t = time.perf_counter()
        grow_small_tree(directory, have, size, blobs)
        have = size
        built = time.perf_counter() - t
        out = work / "memory.h5"
        process = subprocess.Popen(
            [sys.executable, "-m", "scanner", "scan", str(directory), "--out", str(out), "--overwrite", "--quiet"],
            stdout=subprocess.DEVNULL,
        )
        t = time.perf_counter()
        with TreeMemorySampler(process.pid) as sampler:
            process.wait()
        peak = [sampler.peak_pss, sampler.peak_rss]
        wall = time.perf_counter() - t
        print(
            f"   {size:>9,} files: peak PSS {peak[0] / 2**20:,.0f} MiB, peak RSS sum {peak[1] / 2**20:,.0f} MiB, "
            f"scan {wall:.1f} s ({size / wall:,.0f} files/s with start-up), tree built in {built:.0f} s"
        )
        out.unlink()


def walk_rate(directory: Path) -> None:
    def bare() -> int:
        n = 0
        stack = [str(directory)]
        while stack:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir():
                        stack.append(entry.path)
                    else:
                        entry.stat()
                        n += 1
        return n

    def ours() -> int:
        return sum(1 for _ in Walk([directory]))

    print("4. walk, warm cache (best of 3)")
    for name, fn in (("os.scandir + stat", bare), ("scanner.io.walk.Walk", ours)):
        best, n = float("inf"), 0
        for _ in range(3):
            t = time.perf_counter()
            n = fn()
            best = min(best, time.perf_counter() - t)
        print(f"   {name:<18} {n:,} files in {best:.3f} s: {n / best:,.0f} files/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4000, help="256x256 JPEGs for stages and scaling")
    parser.add_argument("--sizes", default="10000,200000", help="small-file tree sizes for memory and walk")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    parser.add_argument("--only", default="stages,scaling,memory,walk", help="which parts to run")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as tmp:
        work = Path(tmp)
        if parts & {"stages", "scaling"}:
            jpegs = work / "jpeg256"
            distinct_jpegs(jpegs, args.images, 256)
            if "stages" in parts:
                stages(jpegs)
            if "scaling" in parts:
                scaling(jpegs, [int(w) for w in args.workers.split(",")], work)
            shutil.rmtree(jpegs)
        if parts & {"memory", "walk"}:
            small = work / "small"
            if "memory" in parts:
                memory(small, sizes, work)
            else:
                grow_small_tree(small, 0, sizes[-1], [b"\xff\xd8\xff"])
            if "walk" in parts:
                walk_rate(small)


if __name__ == "__main__":
    main()
