"""FFTW batched plans: is one plan over the planes of several same-size images faster per image?

Run (from the repository root, with the project's virtual environment):

    .venv/bin/python benchmarks/batched_plans.py [--sizes 64,128,256,512] [--planes 3,6,12,24] [--repeats 5]

The engine plans one in-place float32 r2c transform of the three colour planes of an image
(scanner.features.backends.fftw.FFTWTransform, planes = 3). This plans the same transform over 3, 6,
12 and 24 planes (1, 2, 4 and 8 images) with the project's planner effort and wisdom, fills each with
photo-like planes, and prints the time per image (three planes), median of --repeats rounds in which
every plan runs in turn. A batch would only pay if its time per image were clearly below the single
image's: images would then have to be decoded ahead and held until a batch is full.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from scanner.bench.images import natural_image
from scanner.features.backends.base import STEADY_PLANNER
from scanner.features.backends.fftw import FFTWTransform, load_wisdom


def per_image_ms(size: int, planes: list[int], repeats: int) -> dict[int, float]:
    plans = {p: FFTWTransform(size, size, np.dtype(np.float32), STEADY_PLANNER, p) for p in planes}
    images = [natural_image(size, size, seed).transpose(2, 0, 1) / np.float32(255) for seed in range(max(planes) // 3)]
    inputs = {p: np.concatenate(images[: p // 3]).astype(np.float32) for p in planes}
    runs = max(3, int(2e7 / (size * size * 3)))  # about 20 M planes' pixels a round per plan
    times: dict[int, list[float]] = {p: [] for p in planes}
    for _ in range(repeats):
        for p, plan in plans.items():
            count = max(1, runs * 3 // p)
            start = time.perf_counter()
            for _ in range(count):
                plan.pixels[...] = inputs[p]  # in place: the input is refilled each time
                plan.execute()
            times[p].append((time.perf_counter() - start) / count / (p // 3) * 1e3)
    return {p: statistics.median(v) for p, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="64,128,256,512")
    parser.add_argument("--planes", default="3,6,12,24")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    load_wisdom()
    planes = [int(p) for p in args.planes.split(",")]
    print("ms per image (three planes: copy into the plan's buffer + execute), and against one image a plan:")
    for size in (int(s) for s in args.sizes.split(",")):
        ms = per_image_ms(size, planes, args.repeats)
        cells = "  ".join(
            f"{p // 3} image{'s' if p > 3 else ' '}: {ms[p]:7.3f} ({ms[p] / ms[planes[0]]:.2f}x)" for p in planes
        )
        print(f"  {size:>5}  {cells}")


if __name__ == "__main__":
    main()
