"""Planner effort: what FFTW_ESTIMATE, MEASURE and PATIENT cost to plan and buy at run time.

Run (from the repository root, with the project's virtual environment):

    .venv/bin/python benchmarks/planner_effort.py [--sizes 256,1024,4096] [--efforts estimate,measure,patient]
                                                  [--timeout 120] [--repeats 20]

Each (size, effort) cell runs in a fresh subprocess, so no wisdom leaks between cells. It prints:
the time to plan the engine's three-channel r2c transform (scanner.features.backends.fftw.FFTWTransform)
from no wisdom; the time to plan it again from the wisdom just saved (what every later run pays,
since scanner keeps wisdom in its cache directory); and the median execute time of the plan.
A cell whose planning runs past --timeout seconds is killed and reported as skipped (PATIENT at
4096 x 4096 can take many minutes on two cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cell(size: int, effort: str, repeats: int) -> dict:
    """Plan from nothing, plan again from saved wisdom, and time execute (in this process)."""
    import numpy as np
    import pyfftw

    from scanner.features.backends.fftw import FFTWTransform, load_wisdom, save_wisdom

    pyfftw.forget_wisdom()
    start = time.perf_counter()
    plan = FFTWTransform(size, size, np.dtype(np.float64), effort)
    cold = time.perf_counter() - start
    plan.pixels[...] = np.random.default_rng(0).random(plan.pixels.shape)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        plan.execute()
        times.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        save_wisdom(Path(tmp))
        pyfftw.forget_wisdom()
        load_wisdom(Path(tmp))
        start = time.perf_counter()
        FFTWTransform(size, size, np.dtype(np.float64), effort)
        warm = time.perf_counter() - start
    return {"plan_s": cold, "plan_with_wisdom_s": warm, "execute_ms": 1e3 * statistics.median(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="256,1024,4096")
    parser.add_argument("--efforts", default="estimate,measure,patient")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cell", nargs=2, metavar=("SIZE", "EFFORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        print(json.dumps(cell(int(args.cell[0]), args.cell[1], args.repeats)))
        return

    print(f"{'size':>6} {'effort':>9} {'plan s':>10} {'plan s (wisdom)':>16} {'execute ms':>11}")
    for size in (int(s) for s in args.sizes.split(",")):
        for effort in args.efforts.split(","):
            command = [sys.executable, __file__, "--cell", str(size), effort, "--repeats", str(args.repeats)]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=True)
            except subprocess.TimeoutExpired:
                print(f"{size:>6} {effort:>9}   skipped: planning took over {args.timeout:g} s", flush=True)
                continue
            except subprocess.CalledProcessError as exc:
                print(f"{size:>6} {effort:>9}   failed: {exc.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = json.loads(done.stdout)
            print(
                f"{size:>6} {effort:>9} {r['plan_s']:>10.3f} {r['plan_with_wisdom_s']:>16.4f} {r['execute_ms']:>11.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
