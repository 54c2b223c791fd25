"""Store layout: file size and reading speed of a feature store, per chunking and compression.

Run (from the repository root, with the project's virtual environment):

    .venv/bin/python benchmarks/store_layout.py [--rows 1000000] [--repeats 3] [--dir DIR]

It builds one synthetic sweep of --rows rows (paths like a camera dump, mostly `ok`, a few
problem rows with reasons, the paper's six features as float64 with full mantissas, realistic
sizes, formats, JPEG qualities and modification times) and writes it with each layout:

- fixed 16,384-row chunks and no filter (how stores were written before);
- the default layout (scanner.store.hdf5.LAYOUT: chunks sized to the rows, gzip level 1, shuffle);
- gzip level 4 and lzf, both with shuffle and sized chunks, for comparison;

then, in interleaved rounds so that a busy machine moves them all alike, times reading the whole
store back (`scanner.read_features`, what classify and report do) and streaming it chunk by chunk
(`scanner.store.hdf5.iter_rows`, what export and a resumed scan do). It also writes an 8-row store with
each layout and prints its size. Prints one line per layout: size, write time, median read times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scanner.core.schema import FeatureTable, Measurement, Rows
from scanner.store.hdf5 import LAYOUT, UNCOMPRESSED, Layout, StoreWriter, iter_rows, read_features, store_attrs

# name: (layout, whether its chunks are sized to the rows)
LAYOUTS = {
    "uncompressed, 16384-row chunks": (UNCOMPRESSED, False),
    "default (gzip 1, shuffle)": (LAYOUT, True),
    "gzip 4, shuffle": (Layout(compression="gzip", compression_opts=4), True),
    "lzf, shuffle": (Layout(compression="lzf", compression_opts=None), True),
}


def sweep(n: int, seed: int = 0) -> FeatureTable:
    rng = np.random.default_rng(seed)
    width = Measurement().n_features
    bad = rng.random(n) < 0.002
    status = np.where(bad, "truncated", "ok").astype(object)
    error = np.where(bad, "the file ends before the image data does (truncated?)", "").astype(object)
    features = 0.05 + 0.02 * rng.standard_normal((n, width))
    features[bad] = np.nan
    paths = np.array([f"2026/{i // 1000:04d}/IMG_{i:08d}.jpg".encode() for i in range(n)], dtype=object)
    height = rng.choice([3024, 4032, 1080, 1920], n)
    rows = Rows.build(
        n,
        width,
        path=paths,
        root=np.ones(n, np.int32),
        status=status,
        error=error,
        features=features,
        height=height,
        width=height * 4 // 3,
        format=np.where(rng.random(n) < 0.9, "JPEG", "PNG").astype(object),
        jpeg_subsampling=np.full(n, "4:2:0", dtype=object),
        jpeg_quality=rng.integers(70, 98, n),
        size=rng.integers(200_000, 5_000_000, n),
        mtime=1.7e9 + rng.random(n) * 1e7,
    )
    return FeatureTable(rows, ["", "/data/photos"], Measurement())


def write(path: str, table: FeatureTable, layout: Layout, sized: bool) -> tuple[float, float]:
    """Wall and CPU seconds to write the table as a store with this layout."""
    wall, cpu = time.perf_counter(), time.process_time()
    expected = len(table) if sized else None
    writer = StoreWriter(path, store_attrs(table.measurement, "bench", table.roots), expected, layout)
    for start in range(0, len(table), 50_000):
        writer.append(table.rows.take(np.arange(start, min(len(table), start + 50_000))))
    writer.commit()
    return time.perf_counter() - wall, time.process_time() - cpu


def timed(function, *args) -> tuple[float, float]:
    """Wall and CPU seconds of one call (reading is single-threaded: the CPU time is its cost on a busy machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def stream(path: str) -> None:
    for _ in iter_rows(path):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    table = sweep(args.rows)
    small = sweep(8, seed=1)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        files = {name: os.path.join(tmp, f"{i}.h5") for i, name in enumerate(LAYOUTS)}
        written: dict[str, list[tuple[float, float]]] = {name: [] for name in LAYOUTS}
        for _ in range(args.repeats):
            for name, how in LAYOUTS.items():
                written[name].append(write(files[name], table, *how))
        small_sizes = {}
        for i, (name, how) in enumerate(LAYOUTS.items()):
            write(os.path.join(tmp, f"small{i}.h5"), small, *how)
            small_sizes[name] = os.path.getsize(os.path.join(tmp, f"small{i}.h5"))
        reads: dict[str, list[tuple[float, float]]] = {name: [] for name in LAYOUTS}
        streams: dict[str, list[tuple[float, float]]] = {name: [] for name in LAYOUTS}
        for name in LAYOUTS:  # a warm-up pass: the page cache holds every file from here on
            read_features(files[name])
        for _ in range(args.repeats):
            for name in LAYOUTS:
                reads[name].append(timed(read_features, files[name]))
                streams[name].append(timed(stream, files[name]))
        print(f"{args.rows:,} rows; median of {args.repeats} writes and reads (after a warm-up), layouts interleaved")
        print("times: wall seconds (CPU seconds)")
        print(f"{'layout':<32}{'size':>10}{'8 rows':>10}{'write':>18}{'read_features':>18}{'iter_rows':>18}")

        def median(times: list[tuple[float, float]]) -> str:
            wall, cpu = (statistics.median(t[k] for t in times) for k in (0, 1))
            return f"{wall:>9.2f} ({cpu:5.2f})"

        for name in LAYOUTS:
            print(
                f"{name:<32}{os.path.getsize(files[name]) / 1e6:>8.1f}MB{small_sizes[name] / 1e3:>8.1f}kB"
                f"{median(written[name]):>18}{median(reads[name]):>18}{median(streams[name]):>18}"
            )


if __name__ == "__main__":
    main()
