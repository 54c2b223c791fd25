"""`scanner bench`: how fast this machine measures images, stage by stage, in one run.

What a user wants to know before a sweep: how many images per second this
machine decodes, measures, and scans into a store, with one worker and with
all of them, and how much memory the scan takes. Every figure of one report is
measured in the same run, on the same files, with the stages' passes
interleaved in rounds, so a shared or busy machine moves them all alike. Each
stage gets a warm-up pass (compiled kernels, FFT plans, the page cache) and
then the median of several timed passes.

Without a directory of images, a realistic set is generated in a temporary
directory and removed afterwards (scanner.bench.images: smooth multi-scale
luminance, softer chroma fields, per-channel tints and per-channel sensor noise,
so the three channels are correlated but not identical, as in photographs).

The pieces: images.py and files.py (the image set), stages.py (timing in this
process), scans.py (`scanner scan` in a subprocess), memory.py (a process tree's
memory: the report prints the scan's peak), machine.py (the report prints the CPU,
cores and memory; --json the whole description) and text.py (format_report).
The developer's harness (benchmarks/harness.py) builds on them: the FFT floor,
the per-piece breakdown of the feature step, the authors' pipeline and the
project's targets.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.bench.files import default_image_count, image_files, image_set
from scanner.bench.machine import machine_description, usable_cores
from scanner.bench.scans import SCAN_WORK_SECONDS, ScanRun, scan_image_count, scan_memory, time_scan
from scanner.bench.stages import (
    HASH_STAGE,
    PAPER_STAGE,
    StageResult,
    decode_files,
    features_files,
    fft_libraries,
    hash_files,
    time_parallel_features,
    time_stages,
    worker_counts,
)
from scanner.core.constants import DEFAULT_PRECISION, PRECISIONS
from scanner.core.featuresets import DEFAULT_FEATURE_SET, PAPER
from scanner.features.backends.base import DEFAULT_BACKEND, STEADY_PLANNER, backend_options
from scanner.features.extract import make_extractor
from scanner.images.decode import read_image


@dataclass
class BenchReport:
    config: dict[str, Any]
    machine: dict[str, Any]
    stages: dict[str, StageResult]
    scaling: list[StageResult]
    scan: list[ScanRun]
    memory: dict[str, float | None]
    extra: dict[str, Any] = field(default_factory=dict)  # what a harness adds (benchmarks/harness.py)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "machine": self.machine,
            "stages": {name: stage.to_dict() for name, stage in self.stages.items()},
            "scaling": [s.to_dict() for s in self.scaling],
            "scan": [s.to_dict() for s in self.scan],
            "memory": self.memory,
            **self.extra,
        }


def describe_config(
    directory: Path | None,
    size: int,
    fmt: str,
    count: int,
    workers: int,
    spectrum: str,
    repeats: int,
    planner: str,
    feature_set: str = DEFAULT_FEATURE_SET,
) -> dict[str, Any]:
    return {
        "feature_set": feature_set,
        "directory": None if directory is None else str(directory),
        "size": size if directory is None else None,
        "format": fmt if directory is None else None,
        "images": count,
        "workers": workers,
        "spectrum": spectrum,
        "repeats": repeats,
        "planner": planner,
    }


def run_bench(
    directory: Path | None = None,
    size: int = 256,
    fmt: str = "jpeg",
    images: int | None = None,
    workers: int | None = None,
    spectrum: str = "log",
    repeats: int = 3,
    planner: str = STEADY_PLANNER,
    include_scan: bool = True,
    scan_work_seconds: float = SCAN_WORK_SECONDS,
    seed: int = 0,
    progress: Callable[[str], None] = lambda message: None,
    precision: str = DEFAULT_PRECISION,
    fft: str = DEFAULT_BACKEND,
    feature_set: str = DEFAULT_FEATURE_SET,
) -> BenchReport:
    """Time decode, decode + features in both precisions, the FFT libraries, features in 1..N
    processes, and `scanner scan` with 1..N workers.

    A generated set is topped up for the scan runs to about `scan_work_seconds`
    of one core's work; a user's directory is scanned as far as `images` goes.
    With a feature set other than the paper's, decode + the paper's features is
    timed too, in the same rounds, so that the report gives what the wider set costs.
    """
    workers = workers or usable_cores()
    work_dir = Path(tempfile.mkdtemp(prefix="scanner-bench-"))
    options: dict[str, Any] = {"spectrum": spectrum, "backend": fft, **backend_options(fft, planner=planner)}
    other = next(p for p in PRECISIONS if p != precision)
    try:
        if directory is None:
            progress(f"writing {images or default_image_count(size)} {size}x{size} {fmt} images")
        files = image_set(directory, work_dir, size, fmt, images, seed)
        paths = list(files.paths)
        config = describe_config(directory, size, fmt, len(paths), workers, spectrum, repeats, planner, feature_set)
        config.update(precision=precision, fft=fft)
        extractor = make_extractor(feature_set, precision=precision, **options)
        other_extractor = make_extractor(feature_set, precision=other, **options)
        progress(f"decode, SHA-256, and decode + features in {precision} and {other} precision")
        contents = {path: path.read_bytes() for path in paths}  # hashed in memory: the read is decode's
        timed: dict[str, tuple[Callable[[Sequence[Path]], None], Sequence[Path]]] = {
            "decode": (decode_files, paths),
            HASH_STAGE: (lambda p: hash_files(p, contents), paths),
            "features": (lambda p: features_files(p, extractor), paths),
            f"features_{other}": (lambda p: features_files(p, other_extractor), paths),
        }
        if feature_set != PAPER.name:
            paper = make_extractor(PAPER.name, precision=precision, **options)
            timed[PAPER_STAGE] = (lambda p: features_files(p, paper), paths)
        stages = time_stages(timed, repeats, warm_up=None if directory is not None else 8)
        progress("the FFT libraries")
        first = read_image(paths[0]).pixels.shape[:2]
        libraries = fft_libraries(first[0], first[1], repeats, planner)
        scaling = []
        for n in worker_counts(workers):
            progress(f"features in {n} processes")
            scaling.append(
                time_parallel_features(paths, n, repeats, feature_set=feature_set, precision=precision, **options)
            )
        scan: list[ScanRun] = []
        if include_scan:
            features_seconds = stages["features"].seconds or 0.0
            wanted = scan_image_count(len(paths), features_seconds / len(paths), scan_work_seconds)
            progress(f"scan of {wanted} images")
            scan_paths = files.top_up(wanted)
            whole_root = files.root if len(image_files(files.root)) == len(scan_paths) else None
            scan = time_scan(
                scan_paths,
                whole_root,
                worker_counts(workers),
                spectrum,
                work_dir,
                ["--feature-set", feature_set, "--precision", precision, "--fft", fft, "--planner", planner],
            )
        return BenchReport(
            config,
            machine_description(),
            stages,
            scaling,
            scan,
            scan_memory(scan),
            {"fft_libraries": libraries, "fft_shape": list(first)},
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
