"""The distributed scan's costs: Dask against the local pool, the overhead of a task, merge and client memory.

Run (from the repository root, with the project's virtual environment and dask[distributed]):

    .venv/bin/python benchmarks/cluster.py [--images 16000] [--size 256] [--workers 2] [--repeats 2]
                                           [--rows 1000000] [--only throughput,overhead,merge]

Everything runs on generated files in a temporary directory, removed at the end. It prints:

1. throughput: scan() of --images JPEGs (quality 90) with the local pool and with `--cluster local`
   (a LocalCluster of --workers processes, one thread each), interleaved, --repeats times each, from
   a warm start (kernels compiled, FFTW wisdom saved). Steady rate: the rows written between the moments
   10% and 90% of them had arrived, over that time (a Dask scan's rows arrive a task at a time, so the
   listing should make several tasks per worker: 16,000 files are 8 tasks of 2,048); also end to end
   (start-up and the final merge included). The target: Dask >= 0.9x the local pool's steady rate.
2. overhead: what a task costs beyond measuring its files, piece by piece: a scheduler round trip (a
   task that does nothing, through the LocalCluster, one at a time), writing a part file of K rows
   (encode, write, fsync, rename), and merging one row into the store (from part 3); against the time
   to measure one file in one process. For each task size K: the overhead as a share of the task's
   measuring time. The default task size (scanner.run.executors.dask.TASK_FILES) should keep it under 2%.
3. merge: a synthetic listing of --rows files (no images: Found entries made up in memory), in
   separate processes so that each peak memory is its own: (a) the client's listing: the rows run
   through the scan's chunking and shard naming (done-file check against an empty store) at shard
   size TASK_FILES, as `--cluster` does before submitting; (b) part files of TASK_FILES rows written,
   then merged into a new store by the session's merge (rows/s, peak RSS); (c) the store's done keys
   read back, as a resumed scan does first (s, peak RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def distinct_jpegs(directory: Path, n: int, size: int, seed: int = 0) -> None:
    """n different JPEGs (a smooth image plus fresh noise each), 1,000 per subdirectory."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([128 + 60 * np.sin(6 * x + k) * np.cos(4 * y - k) for k in (0.0, 0.7, 1.4)], axis=-1)
    for i in range(n):
        sub = directory / f"d{i // 1000:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        image = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(sub / f"{i:07d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


# --- 1. throughput ---------------------------------------------------------------------------


def timed_scan(directory: Path, out: Path, workers: int, cluster: str | None) -> tuple[float, float, int, float, float]:
    """(steady images/s, wall s, rows, this process's CPU s, other processes' CPU s) of one scan from scratch
    (scan_throughput.timed_scan: CPU time is far less disturbed by other jobs on the machine than wall time)."""
    from scan_throughput import timed_scan as timed

    steady, wall, own, others, n = timed(directory, workers, out, cluster)
    return steady, wall, n, own, others


def throughput(directory: Path, work: Path, workers: int, repeats: int) -> None:
    from scanner.run.executors.dask import TASK_FILES

    n = sum(1 for _ in directory.rglob("*.jpg"))
    print(
        f"1. throughput: {n:,} JPEGs, {workers} workers, tasks of {TASK_FILES:,} files; steady images/s "
        "(10% to 90% of the rows) and end to end; runs interleaved"
    )
    timed_scan(directory, work / "warm.h5", workers, None)  # compile, plan, fill the page cache
    results: dict[str, list[tuple[float, float, int, float, float]]] = {"local pool": [], "dask local": []}
    for _ in range(repeats):
        results["local pool"].append(timed_scan(directory, work / "a.h5", workers, None))
        results["dask local"].append(timed_scan(directory, work / "b.h5", workers, "local"))
    for name, runs in results.items():
        text = "; ".join(
            f"steady {s:,.0f}, end to end {r / w:,.0f} ({w:.2f} s), CPU per image {(own + others) / r * 1e3:.3f} ms "
            f"(this process {own / r * 1e3:.3f})"
            for s, w, r, own, others in runs
        )
        print(f"   {name}: {text}")
    best_local = max(run[0] for run in results["local pool"])
    best_dask = max(run[0] for run in results["dask local"])
    cpu_local = min((run[3] + run[4]) / run[2] for run in results["local pool"])
    cpu_dask = min((run[3] + run[4]) / run[2] for run in results["dask local"])
    print(
        f"   dask / local pool: best steady rates {best_dask / best_local:.2f}x (target >= 0.9); least CPU per "
        f"image {cpu_dask / cpu_local:.2f}x; load average now {os.getloadavg()[0]:.1f}"
    )


# --- 2. overhead per task --------------------------------------------------------------------


def _noop(x: int) -> int:
    return x


def overhead(directory: Path, work: Path, merge_row_seconds: float | None) -> None:
    from distributed import Client, LocalCluster

    from scanner.core.schema import Measurement, Rows
    from scanner.features.extract import make_extractor
    from scanner.features.measure import measure_files
    from scanner.io.walk import Walk
    from scanner.run.executors.dask import TASK_FILES
    from scanner.store.parts import write_part

    walk = Walk([directory])
    files = [f for _, f in zip(range(1000), walk, strict=False)]
    roots = tuple(os.fsencode(r) for r in walk.roots)
    extractor = make_extractor()
    measure_files(files[:20], roots, extractor)
    t = time.perf_counter()
    measure_files(files, roots, extractor)
    per_file = (time.perf_counter() - t) / len(files)

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as c:
        c.submit(_noop, 0, pure=False).result()
        t = time.perf_counter()
        rounds = 200
        for i in range(rounds):
            c.submit(_noop, i, pure=False).result()
        round_trip = (time.perf_counter() - t) / rounds

    def part_seconds(k: int) -> float:
        rows = Rows.build(
            k,
            6,
            path=[f"d0000/{i:07d}.jpg".encode() for i in range(k)],
            root=[1] * k,
            features=np.random.default_rng(0).random((k, 6)),
            size=[10_000] * k,
            mtime=[1.7e9] * k,
            format=["JPEG"] * k,
            jpeg_subsampling=["4:2:0"] * k,
            jpeg_quality=[90] * k,
            height=[256] * k,
            width=[256] * k,
        )
        best = float("inf")
        for i in range(5):
            t = time.perf_counter()
            write_part(str(work / f"p{k}-{i}.part"), rows, Measurement(), ["", str(directory)], "x")
            best = min(best, time.perf_counter() - t)
        return best

    print(
        f"2. overhead per task: measuring one file {per_file * 1e3:.3f} ms (one process, 1,000 files); "
        f"scheduler round trip {round_trip * 1e3:.2f} ms (LocalCluster, a no-op task, one at a time)"
        + (f"; merging one row {merge_row_seconds * 1e6:.2f} us (part 3)" if merge_row_seconds else "")
    )
    for k in (128, 512, 1024, 2048, 4096):
        write = part_seconds(k)
        task = k * per_file
        share = (round_trip + write) / task
        merge_share = (merge_row_seconds or 0.0) / per_file
        mark = "  <- default" if k == TASK_FILES else ""
        print(
            f"   {k:>5} files: task {task:6.2f} s; part file {write * 1e3:6.2f} ms; scheduling + part "
            f"{share * 100:5.2f}%, + merge {(share + merge_share) * 100:5.2f}% of the measuring time{mark}"
        )


# --- 3. merge and client memory at a million files ----------------------------------------------------


_CHILD = r"""
import json, os, resource, sys, time
import numpy as np
part, rows, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
from scanner.run.executors.dask import TASK_FILES
from scanner.core.schema import Measurement, Rows
from scanner.io.walk import Found

def listing():
    for i in range(rows):
        yield Found(1, b"d%05d/%08d.jpg" % (i // 1000, i), 20_000 + i % 1000, 1.7e9 + i)

class FakeWalk:
    roots = ["", "/data/photos"]
    def __iter__(self):
        return listing()

out = os.path.join(work, "million.h5")
result = {}
if part == "listing":
    from scanner.store.parts import shard_id
    from scanner.store.session import StoreSession
    from scanner.run.sweep import _chunks
    t = time.perf_counter()
    shards = 0
    with StoreSession(os.path.join(work, "listing.h5"), Measurement(), FakeWalk.roots) as session:
        roots = session.roots
        for chunk in _chunks(FakeWalk(), session, TASK_FILES, 6):
            if chunk:
                paths = [os.path.join(roots[f.root], f.relpath) for f in chunk]
                shard_id(paths, [f.size for f in chunk], [f.mtime for f in chunk], Measurement())
                shards += 1
    result = {"seconds": time.perf_counter() - t, "shards": shards}
elif part == "merge":
    from scanner.store.parts import parts_path, write_part
    from scanner.store.merge import ingest_parts
    directory = parts_path(out)
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    batch = []
    for n, f in enumerate(listing(), 1):
        batch.append(f)
        if len(batch) == TASK_FILES or n == rows:
            k = len(batch)
            r = Rows.build(k, 6, path=[f.relpath for f in batch], root=[1] * k, size=[f.size for f in batch],
                           mtime=[f.mtime for f in batch], features=rng.random((k, 6)), format=["JPEG"] * k,
                           jpeg_subsampling=["4:2:0"] * k, jpeg_quality=[90] * k, height=[256] * k, width=[256] * k)
            write_part(os.path.join(directory, "%08d.part" % n), r, Measurement(), FakeWalk.roots, str(n))
            batch = []
    written = time.perf_counter() - t
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    parts, store_rows = ingest_parts(out, Measurement())
    result = {"write_seconds": written, "seconds": time.perf_counter() - t, "parts": len(parts),
              "store_rows": store_rows, "rss_before_mb": base / 1024, "bytes": os.path.getsize(out)}
elif part == "done":
    from scanner.store.session import done_keys
    t = time.perf_counter()
    keys, n = done_keys(out)
    result = {"seconds": time.perf_counter() - t, "rows": n}
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def million(rows: int, work: Path) -> float:
    """Part 3; returns the merge's seconds per row (for part 2)."""

    def child(part: str) -> dict:
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, part, str(rows), str(work)], capture_output=True, text=True, check=False
        )
        if result.returncode:
            raise SystemExit(result.stderr)
        return json.loads(result.stdout.splitlines()[-1])

    print(f"3. a synthetic listing of {rows:,} files (no images), each step in a process of its own")
    listing = child("listing")
    print(
        f"   (a) listing, done check and shard naming: {rows / listing['seconds']:,.0f} files/s "
        f"({listing['seconds']:.1f} s, {listing['shards']} shards); peak RSS {listing['peak_rss_mb']:.0f} MB"
    )
    merged = child("merge")
    print(
        f"   (b) {merged['parts']} part files written in {merged['write_seconds']:.1f} s "
        f"({rows / merged['write_seconds']:,.0f} rows/s); merged into a new store in {merged['seconds']:.1f} s: "
        f"{rows / merged['seconds']:,.0f} rows/s; store {merged['bytes'] / 1e6:,.0f} MB; peak RSS "
        f"{merged['peak_rss_mb']:.0f} MB (before the merge {merged['rss_before_mb']:.0f} MB)"
    )
    done = child("done")
    print(
        f"   (c) done keys of the {done['rows']:,}-row store (a resume's start): {done['seconds']:.1f} s "
        f"({done['rows'] / done['seconds']:,.0f} rows/s); peak RSS {done['peak_rss_mb']:.0f} MB"
    )
    return float(merged["seconds"]) / rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", default="throughput,overhead,merge")
    args = parser.parse_args()
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="scanner-cluster-bench-"))
    print(
        f"benchmarks/cluster.py on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}; maxrss of this process so far "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    try:
        merge_row = million(args.rows, work) if "merge" in only else None
        if only & {"throughput", "overhead"}:
            images = work / "images"
            distinct_jpegs(images, args.images, args.size)
            if "throughput" in only:
                throughput(images, work, args.workers, args.repeats)
            if "overhead" in only:
                overhead(images, work, merge_row)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
