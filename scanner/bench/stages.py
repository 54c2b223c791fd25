"""Timing of the stages in this process: median passes, stages interleaved in rounds, features in
N processes, and the FFT libraries."""

from __future__ import annotations

import hashlib
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scanner.core.constants import PRECISIONS
from scanner.core.words import plural
from scanner.features.backends.base import STEADY_PLANNER, available_backends, backend_options, make_backend
from scanner.features.extract import Extractor, make_extractor
from scanner.features.measure import measure_file
from scanner.images.decode import read_image

PAPER_STAGE = "features_paper"  # decode + the paper's features, timed beside a wider feature set
HASH_STAGE = "sha256"  # SHA-256 of the bytes read, timed beside read and decode


def median_pass_seconds(one_pass: Callable[[], None], repeats: int) -> float:
    """Median wall time of `repeats` calls of one_pass (warm-up is the caller's job)."""
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass
class StageResult:
    """One stage's median time for a pass over `images` files (None: skipped, see note)."""

    name: str
    images: int
    seconds: float | None
    note: str = ""

    @property
    def ms_per_image(self) -> float | None:
        return None if self.seconds is None else 1e3 * self.seconds / self.images

    @property
    def images_per_s(self) -> float | None:
        return None if not self.seconds else self.images / self.seconds

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ms_per_image": self.ms_per_image, "images_per_s": self.images_per_s}


def decode_files(paths: Sequence[Path]) -> None:
    """read_image: the file read, header checks and OpenCV decode every sweep pays."""
    for path in paths:
        read_image(path)


def hash_files(paths: Sequence[Path], contents: dict[Path, bytes]) -> None:
    """SHA-256 of each file's bytes, already read (what a sweep adds to each read: the `sha256` column)."""
    for path in paths:
        hashlib.sha256(contents[path]).digest()


def features_files(paths: Sequence[Path], extractor: Extractor) -> None:
    """measure_file: decode plus the features, as the sweep runs it."""
    for path in paths:
        measure_file(path, extractor)


def time_stages(
    stages: dict[str, tuple[Callable[[Sequence[Path]], None], Sequence[Path]]], repeats: int, warm_up: int | None = 8
) -> dict[str, StageResult]:
    """Median seconds per pass of each stage over its files.

    Each stage is warmed up on its first `warm_up` files (None: all of them, so
    every image shape is planned before timing). Then the passes are timed in
    rounds, one pass of every stage per round, so that a change in the machine's
    load falls on all the stages alike rather than on whichever ran then.
    """
    for run, paths in stages.values():
        run(paths if warm_up is None else paths[:warm_up])
    times: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(max(1, repeats)):
        for name, (run, paths) in stages.items():
            start = time.perf_counter()
            run(paths)
            times[name].append(time.perf_counter() - start)
    return {name: StageResult(name, len(paths), statistics.median(times[name])) for name, (_, paths) in stages.items()}


_POOL_EXTRACTOR: Extractor | None = None


def _pool_init(options: dict[str, Any]) -> None:
    global _POOL_EXTRACTOR
    _POOL_EXTRACTOR = make_extractor(**options)


def _pool_features(paths: Sequence[Path]) -> None:
    assert _POOL_EXTRACTOR is not None
    features_files(paths, _POOL_EXTRACTOR)


def time_parallel_features(paths: Sequence[Path], workers: int, repeats: int, **extractor: Any) -> StageResult:
    """measure_file in `workers` processes, each taking an equal share of the files:
    what the cores can do with no pipeline around them (no walk, queue or HDF5)."""
    shares = [list(paths[w::workers]) for w in range(workers)]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(workers, initializer=_pool_init, initargs=(extractor,)) as pool:
        pool.map(_pool_features, [share[:4] for share in shares], chunksize=1)  # warm-up in every worker
        seconds = median_pass_seconds(lambda: None if pool.map(_pool_features, shares, chunksize=1) else None, repeats)
    return StageResult(f"features_x{workers}", len(paths), seconds, note=plural(workers, "process", "processes"))


def worker_counts(workers: int) -> list[int]:
    """1 to N: every count up to 4, then 1, 2, N/2 and N."""
    if workers <= 4:
        return list(range(1, workers + 1))
    return sorted({1, 2, workers // 2, workers})


def fft_libraries(height: int, width: int, repeats: int, planner: str = STEADY_PLANNER) -> list[dict[str, Any]]:
    """Median ms of one three-channel transform of an H x W image, per FFT library installed here and
    precision, the passes interleaved in rounds (what `--fft` and `--precision` choose between)."""
    transforms = {}
    rng = np.random.default_rng(0)
    for name in available_backends():
        for precision in PRECISIONS:
            options = backend_options(name, planner=planner)
            transform = make_backend(name, precision, **options).transform(height, width)
            transform.pixels[...] = rng.random(transform.pixels.shape)
            transform.execute()  # warm-up (plans are made above)
            transforms[(name, precision)] = transform
    reps = max(1, int(4e6 // (height * width)))
    times: dict[tuple[str, str], list[float]] = {key: [] for key in transforms}
    for _ in range(max(3, repeats)):
        for key, transform in transforms.items():
            start = time.perf_counter()
            for _ in range(reps):
                transform.execute()
            times[key].append((time.perf_counter() - start) / reps * 1e3)
    return [
        {"library": name, "precision": precision, "ms": statistics.median(times[(name, precision)])}
        for name, precision in transforms
    ]
