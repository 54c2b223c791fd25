"""What each feature set costs: read, decode and measure with the paper, extended and residual sets.

Run (from the repository root, with the project's virtual environment):

    .venv/bin/python benchmarks/feature_sets.py [--sizes 256,1024] [--format jpeg|png] [--repeats 5] [--markdown]

For each size it writes distinct realistic images (about 32 megapixels' worth, at least 8) and times
`measure_file` (the per-file path a scan runs: bounded read, SHA-256, decode, features) with an
extractor of each feature set, single precision, log spectrum, all in one process with the sets'
passes interleaved in rounds (median of --repeats), and prints ms per image and each set's cost
against the paper set's. Issue 20's goals: the extended set <= 1.3 times the paper set's cost, and
the residual set (which adds the detection issue's Welch spectra) <= 1.6 times.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from scanner.bench.files import write_image_set
from scanner.bench.stages import features_files, time_stages
from scanner.core.featuresets import FEATURE_SETS
from scanner.features.extract import make_extractor

GOALS = {"extended": 1.3, "residual": 1.6}


def one_size(size: int, fmt: str, repeats: int) -> dict[str, float]:
    count = max(8, int(32e6 / (size * size)))
    with tempfile.TemporaryDirectory(prefix="scanner-feature-sets-") as tmp:
        paths = write_image_set(Path(tmp), count, size, fmt)
        stages = {}
        for name in FEATURE_SETS:
            extractor = make_extractor(name)
            stages[name] = (lambda files, extractor=extractor: features_files(files, extractor), paths)
        results = time_stages(stages, repeats, warm_up=None)
    return {name: results[name].ms_per_image or float("nan") for name in FEATURE_SETS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--format", default="jpeg", choices=("jpeg", "png"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="a Markdown section for a results page")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        ms = one_size(size, args.format, args.repeats)
        for name, value in ms.items():
            ratio = value / ms["paper"]
            goal = GOALS.get(name)
            verdict = "" if goal is None else ("met" if ratio <= goal else "**missed**")
            rows.append((f"{size}² {args.format.upper()}", name, value, ratio, goal, verdict))
    if args.markdown:
        print("\n## Feature sets: read, decode and measure (single precision, log), one process\n")
        print(f"Median of {args.repeats} interleaved passes (`python benchmarks/feature_sets.py`).\n")
        print("| images | feature set | ms/image | against the paper set | goal | verdict |")
        print("|---|---|---:|---:|---:|---|")
        for images, name, value, ratio, goal, verdict in rows:
            print(f"| {images} | {name} | {value:.3f} | {ratio:.2f} | {'' if goal is None else goal} | {verdict} |")
    else:
        for images, name, value, ratio, _goal, verdict in rows:
            print(f"{images:<12}{name:<10}{value:9.3f} ms  {ratio:5.2f}x the paper set  {verdict}")


if __name__ == "__main__":
    main()
