"""Collection size: listing rate, steady throughput and peak memory from 10k to 1M small files.

Run (from the repository root, with the project's virtual environment):

    .venv/bin/python benchmarks/collection_size.py [--sizes 10000,50000,200000,1000000] [--image-size 32]
                                                   [--workers N] [--dir DIR] [--keep]

It builds one synthetic tree of small JPEGs (1,000 per directory; 64 distinct generated images
written over and over, so building is disk-bound, not encoder-bound) and grows it to each size in
turn. For each size it prints:

- the listing rate from a warm cache (files/s) of a plain os.scandir walk, the floor of any
  walker, and of scanner.io.walk.Walk, the walker `scanner scan` streams from;
- `scanner scan` over the tree with --workers N (default: usable cores): wall time, steady
  images/s (from the difference with a scan of half the files, so start-up cancels) and the
  peak PSS of its whole process tree (sampled from /proc; pages shared by forked workers
  counted once), which should stay flat as the tree grows;
- when `scanner scan` is not available, the same walk feeding features_of_file in one process
  instead (its rate and peak RSS), so the engine's own memory is still measured.

Writing files costs time and inodes (here about 2,000 to 5,000 small files per second on this machine's
disk), so the default stops at 200k; pass 1000000 when the disk and the time allow. The tree is
removed afterwards unless --keep.
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
from collections.abc import Callable, Iterable
from pathlib import Path

PER_DIRECTORY = 1000


def walk(root: str):
    """Every file under root, depth first, by os.scandir (what a streaming walker does)."""
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    yield entry.path


def grow_tree(root: Path, have: int, want: int, blobs: list[bytes]) -> None:
    for i in range(have, want):
        directory = root / f"d{i // PER_DIRECTORY:05d}"
        if i % PER_DIRECTORY == 0:
            directory.mkdir(exist_ok=True)
        (directory / f"img{i:07d}.jpg").write_bytes(blobs[i % len(blobs)])


def listing_rate(files: Callable[[], Iterable]) -> tuple[int, float]:
    sum(1 for _ in files())  # warm the dentry and inode caches
    start = time.perf_counter()
    count = sum(1 for _ in files())
    return count, count / (time.perf_counter() - start)


def feature_loop(root: str) -> dict:
    """The fallback: walk + features_of_file in this process, streaming."""
    from scanner.features.extract import make_extractor
    from scanner.features.measure import features_of_file

    extractor = make_extractor(spectrum="log")
    start = time.perf_counter()
    count = sum(features_of_file(path, extractor).status == "ok" for path in walk(root))
    return {
        "images": count,
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="where to build the tree (default: a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep the tree afterwards")
    parser.add_argument("--loop", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop:
        print(json.dumps(feature_loop(args.loop)))
        return

    import numpy as np

    from scanner.bench.files import encode
    from scanner.bench.images import natural_image
    from scanner.bench.machine import usable_cores
    from scanner.bench.scans import time_scan
    from scanner.io.walk import Walk

    workers = args.workers or usable_cores()
    rng = np.random.default_rng(0)
    blobs = [encode(natural_image(args.image_size, args.image_size, rng), "jpeg") for _ in range(64)]
    base = Path(tempfile.mkdtemp(prefix="scanner-collection-", dir=args.dir))
    root = base / "tree"
    root.mkdir()
    print(
        f"collection size study: {args.image_size}x{args.image_size} JPEG, scan with {workers} workers, "
        f"tree under {root}"
    )
    print(
        f"{'files':>9} {'build s':>8} {'scandir/s':>10} {'Walk/s':>10} {'scan s':>8} {'steady img/s':>13} "
        f"{'tree PSS MB':>13}  note"
    )
    have = 0
    try:
        for size in sorted(int(s) for s in args.sizes.split(",")):
            start = time.perf_counter()
            grow_tree(root, have, size, blobs)
            have = size
            build = time.perf_counter() - start
            count, rate = listing_rate(lambda: walk(str(root)))
            _, walk_rate = listing_rate(lambda: Walk([root]))
            scan = time_scan([Path(p) for p in walk(str(root))], root, [workers], "log", base)[0]
            if scan.error:
                loop = subprocess.run(
                    [sys.executable, __file__, "--loop", str(root)], capture_output=True, text=True, check=True
                )
                r = json.loads(loop.stdout)
                print(
                    f"{count:>9} {build:>8.1f} {rate:>10.0f} {walk_rate:>10.0f} {r['seconds']:>8.1f} "
                    f"{r['images'] / r['seconds']:>13.0f} {r['peak_rss_mb']:>13.0f}  "
                    f"features loop in 1 process, its peak RSS ({scan.error})",
                    flush=True,
                )
            else:
                print(
                    f"{count:>9} {build:>8.1f} {rate:>10.0f} {walk_rate:>10.0f} {scan.seconds:>8.1f} "
                    f"{scan.steady_images_per_s or float('nan'):>13.0f} {scan.peak_tree_pss_mb:>13.0f}  "
                    f"scanner scan, start-up and shut-down {scan.overhead_seconds or float('nan'):.2f} s",
                    flush=True,
                )
    finally:
        if args.keep:
            print(f"tree kept under {root}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
