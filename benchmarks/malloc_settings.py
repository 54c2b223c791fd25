"""glibc malloc settings: page faults and time of the decode + features loop under each.

Run (from the repository root, with the project's virtual environment):

    .venv/bin/python benchmarks/malloc_settings.py [--sizes 256,1024] [--images 32] [--passes 3]

Every decoded image is a fresh array (OpenCV allocates it), a few hundred kB to several MB. By
default glibc serves blocks over its mmap threshold with mmap and gives them back with munmap, so
each image can pay fresh zero-filled pages (minor page faults) unless the dynamic threshold rises.
For each size this runs the same loop (scanner.images.decode.decode_bytes + an extractor's from_bgr on
in-memory JPEGs, so no disk I/O) in a subprocess under several environment settings, and prints
ms/image, minor page faults per image (resource.getrusage ru_minflt, over the timed passes only)
and the subprocess's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SETTINGS = {
    "glibc default": {},
    "MALLOC_ARENA_MAX=1": {"MALLOC_ARENA_MAX": "1"},
    "MALLOC_MMAP_THRESHOLD_=32M": {"MALLOC_MMAP_THRESHOLD_": str(32 << 20)},
    "MALLOC_TRIM_THRESHOLD_=1G": {"MALLOC_TRIM_THRESHOLD_": str(1 << 30)},
    "MMAP_THRESHOLD_=32M + TRIM_THRESHOLD_=1G": {
        "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
        "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
    },
    "MALLOC_MMAP_THRESHOLD_=128K (no dynamic rise)": {"MALLOC_MMAP_THRESHOLD_": str(128 << 10)},
}


def child(size: int, images: int, passes: int) -> dict:
    """The feature loop in this process: warm-up, then the timed passes."""
    import numpy as np

    from scanner.bench.files import encode
    from scanner.bench.images import natural_image
    from scanner.features.extract import make_extractor
    from scanner.images.decode import decode_bytes

    rng = np.random.default_rng(0)
    files = [encode(natural_image(size, size, rng), "jpeg") for _ in range(images)]
    extractor = make_extractor(spectrum="log")
    for data in files[:2]:
        extractor.from_bgr(decode_bytes(data).pixels)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for _ in range(passes):
        for data in files:
            extractor.from_bgr(decode_bytes(data).pixels)
    seconds = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    n = passes * images
    return {
        "ms_per_image": 1e3 * seconds / n,
        "minflt_per_image": faults / n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--child", type=int, metavar="SIZE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.images, args.passes)))
        return

    print(f"{'size':>6}  {'setting':<46} {'ms/image':>9} {'faults/image':>13} {'peak MB':>8}")
    for size in (int(s) for s in args.sizes.split(",")):
        for label, env in SETTINGS.items():
            command = [
                sys.executable,
                __file__,
                "--child",
                str(size),
                "--images",
                str(args.images),
                "--passes",
                str(args.passes),
            ]
            clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
            done = subprocess.run(command, capture_output=True, text=True, env={**clean, **env})
            if done.returncode:
                print(f"{size:>6}  {label:<46} failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = json.loads(done.stdout)
            print(
                f"{size:>6}  {label:<46} {r['ms_per_image']:>9.3f} {r['minflt_per_image']:>13.1f} "
                f"{r['peak_rss_mb']:>8.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
