"""The developer's benchmark harness: the FFT floor, the feature step piece by piece, the
authors' pipeline, and the project's targets, on top of `scanner bench`'s measurements.

    python benchmarks/harness.py [DIRECTORY] [--size 256] [--format jpeg] [--spectrum log]
                                 [--images N] [--workers N] [--repeats 3] [--planner measure] [--json]

bench.sh runs it over the standard matrix and benchmarks/results_table.py turns its
JSON lines into a results page. Everything of one report is measured in one run (the
stages' passes interleaved), so its ratios hold even on a busy machine; see
scanner/bench/stages.py for how each stage is timed.

Beyond `scanner bench` it measures:

* decode + FFT: the decode and the engine's own three-channel rfft2 (its copy into the
  transform buffer and the cached plan): the floor the feature step is held to;
* the authors' pipeline: cv2.imread, then full complex fft2, np.percentile and
  np.corrcoef in float64 (scanner.features.reference: the authors' computation is the reference);
* the feature step after decode, piece by piece, timed inside the engine itself by
  wrapping the functions it calls (PieceClock), so the breakdown follows the engine as
  it is, with no copy of its logic;
* the ratios the project's targets are stated in, and each target with what holds it
  back when it is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from scanner.bench.files import JPEG_QUALITY, image_files, image_set
from scanner.bench.machine import machine_description, usable_cores
from scanner.bench.scans import SCAN_WORK_SECONDS, scan_image_count, scan_memory, time_scan
from scanner.bench.stages import (
    decode_files,
    features_files,
    median_pass_seconds,
    time_parallel_features,
    time_stages,
    worker_counts,
)
from scanner.bench.timing import BenchReport, describe_config
from scanner.core.constants import DEFAULT_PRECISION, PRECISIONS
from scanner.features import kernels, paper
from scanner.features.backends.base import STEADY_PLANNER, FFTBackend, Transform, make_backend
from scanner.features.extract import make_extractor
from scanner.features.percentile import PercentileSelector
from scanner.features.reference import reference_features
from scanner.images.decode import read_image

BREAKDOWN_PIECES = ("to_planar", "fft", "magnitude", "percentiles", "pair_sums", "finish")

# The targets (log mode, default precision, paper set, on the project's 2-core machine): issue 20's.
TARGET_AUTHORS_OVER_OURS = 10.0  # decode + features, and a 1-worker scan, against the authors' pipeline (1024 JPEG)
TARGET_OVER_FLOOR = {1024: 1.25, 256: 1.4}  # decode + features against decode + one float32 FFTW rfft2
TARGET_SCAN_OVER_FLOOR = 1.3  # a 1-worker scan's time an image against the floor (1024 JPEG)
TARGET_AUTHORS_SIZE = 1024
TARGET_SCAN_OVER_POOL = 0.9  # scan's steady rate against the same number of processes measuring alone
TARGET_SCAN_OF_TWO_CORE_FLOOR = 0.6  # a 2-worker scan against 2 / floor (256 JPEG)
TARGET_SCAN_SIZE = 256
TARGET_SCAN_MEMORY_MB = 400  # PSS of a scan's whole process tree


# --- the authors' pipeline and the FFT floor -------------------------------------------------


def authors_features_of_file(path: Path, spectrum: str = "log") -> np.ndarray:
    """The authors' published pipeline: cv2.imread, then the plain float64 numpy computation."""
    return reference_features(cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1], spectrum)


def authors_files(paths: Sequence[Path], spectrum: str) -> None:
    """cv2.imread plus the authors' numpy pipeline, per file."""
    for path in paths:
        authors_features_of_file(path, spectrum)


def decode_fft_files(paths: Sequence[Path], backend: FFTBackend) -> None:
    """The floor the features are held to: decode, then one planned FFTW rfft2 of the three
    channels (execute only: no copy of the pixels into its buffer). Give it a float32 backend."""
    for path in paths:
        pixels = read_image(path).pixels
        backend.transform(*pixels.shape[:2]).execute()


def time_authors_step(images: Sequence[np.ndarray], spectrum: str, repeats: int) -> float:
    """ms/image of the authors' numpy pipeline alone, on already decoded BGR images."""
    rgb = [image[..., ::-1] for image in images]

    def one_pass() -> None:
        for image in rgb:
            reference_features(image, spectrum)

    reference_features(rgb[0], spectrum)
    return 1e3 * median_pass_seconds(one_pass, repeats) / len(rgb)


# --- the feature step piece by piece ---------------------------------------------------------


def _transform_classes() -> list[type[Transform]]:
    """Every transform class of the registered backends (their modules imported now)."""
    classes: list[type[Transform]] = []
    stack: list[type[Transform]] = [Transform]
    for name in ("fftw", "numpy"):
        make_backend(name)
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            classes.append(sub)
            stack.append(sub)
    return classes


class PieceClock:
    """Times the engine's own pieces while an extractor runs, by wrapping them.

    The wrapped callables are the ones the engine looks up at call time
    (scanner.features.kernels functions, the transform's execute, PercentileSelector, and
    scanner.features.paper.features_from_sums), so the breakdown follows the engine as it
    is, with no copy of its logic to drift. A piece called from inside another
    counts as the outer one. Inside `with clock:` only; the originals are put back after.
    """

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(BREAKDOWN_PIECES, 0.0)
        self._active = False
        self._saved: list[tuple[object, str, object]] = []

    def _wrap(self, piece: str, function: Callable[..., Any]) -> Callable[..., Any]:
        seconds = self.seconds
        clock = time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._active:
                return function(*args, **kwargs)
            self._active = True
            start = clock()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[piece] += clock() - start
                self._active = False

        return timed

    def __enter__(self) -> PieceClock:
        targets: list[tuple[object, str, str]] = [
            (kernels, "to_planar", "to_planar"),
            *((cls, "execute", "fft") for cls in _transform_classes()),
            (kernels, "log_magnitude", "magnitude"),
            (kernels, "magnitude", "magnitude"),
            (PercentileSelector, "__call__", "percentiles"),
            (kernels, "pair_sums", "pair_sums"),
            (paper, "features_from_sums", "finish"),
        ]
        for owner, name, piece in targets:
            original = vars(owner).get(name)
            if original is not None:
                self._saved.append((owner, name, original))
                setattr(owner, name, self._wrap(piece, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()


def feature_breakdown(
    images: Sequence[np.ndarray],
    spectrum: str,
    repeats: int,
    planner: str = STEADY_PLANNER,
    precision: str = DEFAULT_PRECISION,
) -> tuple[dict[str, float], float]:
    """ms/image of each piece of the feature step on decoded BGR images ("other" is
    the Python between them), and of the extractor's from_bgr left alone (medians)."""
    extractor = make_extractor(spectrum=spectrum, planner=planner, precision=precision)
    for image in images:  # warm-up
        extractor.from_bgr(image)
    per_piece: dict[str, list[float]] = {piece: [] for piece in (*BREAKDOWN_PIECES, "other")}
    whole = []
    for _ in range(max(1, repeats)):
        with PieceClock() as clock:
            start = time.perf_counter()
            for image in images:
                extractor.from_bgr(image)
            instrumented = time.perf_counter() - start
        for piece in BREAKDOWN_PIECES:
            per_piece[piece].append(clock.seconds[piece])
        per_piece["other"].append(max(0.0, instrumented - sum(clock.seconds.values())))
        start = time.perf_counter()
        for image in images:
            extractor.from_bgr(image)
        whole.append(time.perf_counter() - start)
    scale = 1e3 / len(images)
    return ({p: statistics.median(v) * scale for p, v in per_piece.items()}, statistics.median(whole) * scale)


def authors_sample_size(paths: Sequence[Path], count: int) -> int:
    """The authors' pipeline is slow and its cost per image steady: about 4 megapixels
    of it is enough."""
    pixels = max(1, _pixels(paths[0]))
    return max(2, min(count, (4 << 20) // pixels))


def breakdown_sample_size(paths: Sequence[Path], count: int) -> int:
    """Decoded images held in memory for the breakdown: about 64 MB of them."""
    return max(2, min(count, (64 << 20) // (3 * max(1, _pixels(paths[0])))))


def _pixels(path: Path) -> int:
    image = read_image(path).pixels
    return image.shape[0] * image.shape[1]


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def compute_ratios(report: BenchReport) -> dict[str, float | None]:
    """The ratios the targets are stated in, all from this one run's medians."""
    ms = {name: stage.ms_per_image for name, stage in report.stages.items()}
    extract_ms, breakdown_ms, authors_step_ms = (
        report.extra[k] for k in ("extract_ms", "breakdown_ms", "authors_step_ms")
    )
    pool = {s.name: s.images_per_s for s in report.scaling}
    scan_by_workers = {run.workers: run for run in report.scan if run.seconds}
    return {
        "features_over_decode_fft": _ratio(ms.get("features"), ms.get("decode_fft")),
        "feature_step_over_fft": _ratio(extract_ms, breakdown_ms.get("fft")),
        "authors_over_features": _ratio(ms.get("authors"), ms.get("features")),
        "authors_step_over_features": _ratio(authors_step_ms, ms.get("features")),
        "authors_step_over_feature_step": _ratio(authors_step_ms, extract_ms),
        "decode_share_of_features": _ratio(ms.get("decode"), ms.get("features")),
        "parallel_speedup_2_over_1": _ratio(pool.get("features_x2"), pool.get("features_x1")),
        "scan_speedup_2_over_1": _ratio(
            scan_by_workers[2].steady_images_per_s if 2 in scan_by_workers else None,
            scan_by_workers[1].steady_images_per_s if 1 in scan_by_workers else None,
        ),
        **{
            f"scan_over_pool_{n}": _ratio(
                scan_by_workers[n].steady_images_per_s if n in scan_by_workers else None, pool.get(f"features_x{n}")
            )
            for n in (1, 2)
        },
        "double_over_single": _ratio(ms.get("features_double"), ms.get("features"))
        if "features_double" in ms
        else _ratio(ms.get("features"), ms.get("features_single")),
    }


def _biggest_extra_piece(breakdown_ms: dict[str, float]) -> str:
    extra = {p: v for p, v in breakdown_ms.items() if p not in ("fft", "to_planar", "other")}
    piece = max(extra, key=lambda p: extra[p])
    return f"{piece} ({extra[piece]:.3f} ms/image of {sum(breakdown_ms.values()):.3f})"


def judge_targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets that apply to a configuration, met or not, and what holds each back, from a report's
    JSON form (BenchReport.to_dict() with the harness's extras), so that results_table.py can judge the
    reports of an earlier run by the rules of today."""
    config, ratios, breakdown_ms = data["config"], data["ratios"], data["breakdown_ms"]
    ms = {name: stage["ms_per_image"] for name, stage in data["stages"].items()}
    pool = {s["name"]: s["images_per_s"] for s in data["scaling"]}
    steady = {run["workers"]: run["steady_images_per_s"] for run in data["scan"] if run["seconds"]}
    floor, authors = ms.get("decode_fft"), ms.get("authors")
    targets: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: float, higher_is_better: bool, held_back_by: str) -> None:
        met = None if value is None else (value >= goal if higher_is_better else value <= goal)
        targets.append(
            {"target": name, "value": value, "goal": goal, "met": met, "held_back_by": "" if met else held_back_by}
        )

    size, jpeg = config["size"], config["format"] == "jpeg"
    if config["spectrum"] != "log" or config.get("precision", "single") != "single" or size not in TARGET_OVER_FLOOR:
        return targets  # the targets are stated for 256 and 1024 px, log mode, single precision
    if size == TARGET_AUTHORS_SIZE and jpeg:
        add(
            f"decode + features >= {TARGET_AUTHORS_OVER_OURS:g}x faster than the authors' pipeline",
            ratios["authors_over_features"],
            TARGET_AUTHORS_OVER_OURS,
            True,
            f"the floor alone (decode + float32 FFT, {floor or float('nan'):.1f} ms) is "
            f"{_ratio(authors, floor) or float('nan'):.1f}x under the authors' {authors or float('nan'):.0f} ms; "
            f"beyond it, {_biggest_extra_piece(breakdown_ms)}",
        )
        scan_ms = 1e3 / steady[1] if steady.get(1) else None
        add(
            f"scan, 1 worker, >= {TARGET_AUTHORS_OVER_OURS:g}x faster than the authors' pipeline",
            _ratio(authors, scan_ms),
            TARGET_AUTHORS_OVER_OURS,
            True,
            "the feature step (see above) and the floor",
        )
        add(
            f"scan, 1 worker, <= {TARGET_SCAN_OVER_FLOOR:g}x the floor an image",
            _ratio(scan_ms, floor),
            TARGET_SCAN_OVER_FLOOR,
            False,
            f"the passes after the transform: {_biggest_extra_piece(breakdown_ms)}",
        )
    if size in TARGET_OVER_FLOOR:
        add(
            f"decode + features <= {TARGET_OVER_FLOOR[size]:g}x the floor (decode + one float32 FFTW rfft2)",
            ratios["features_over_decode_fft"],
            TARGET_OVER_FLOOR[size],
            False,
            _biggest_extra_piece(breakdown_ms),
        )
    for n in (1, 2):
        if n in steady and pool.get(f"features_x{n}"):
            add(
                f"scan with {n} worker{'s' if n > 1 else ''} >= {TARGET_SCAN_OVER_POOL:g}x {n} process"
                f"{'es' if n > 1 else ''} measuring alone (steady)",
                ratios[f"scan_over_pool_{n}"],
                TARGET_SCAN_OVER_POOL,
                True,
                f"the pipeline around the workers: {steady[n] or float('nan'):.0f} against "
                f"{pool[f'features_x{n}']:.0f} images/s",
            )
    if size == TARGET_SCAN_SIZE and jpeg and floor:
        add(
            f"scan with 2 workers >= {TARGET_SCAN_OF_TWO_CORE_FLOOR:g} of the two-core floor (2 / floor)",
            _ratio(steady.get(2), 2e3 / floor),
            TARGET_SCAN_OF_TWO_CORE_FLOOR,
            True,
            f"the feature step: {_biggest_extra_piece(breakdown_ms)}",
        )
    pss = data["memory"].get("scan_tree_peak_pss_mb")
    if pss:
        add(
            f"a scan's memory, all its processes (PSS) <= {TARGET_SCAN_MEMORY_MB} MB",
            pss,
            TARGET_SCAN_MEMORY_MB,
            False,
            "the workers' plans, buffers and decoded images",
        )
    return targets


def run_harness(
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
) -> BenchReport:
    """Measure every stage on one set of files; a generated set is removed afterwards."""
    workers = workers or usable_cores()
    work_dir = Path(tempfile.mkdtemp(prefix="scanner-harness-"))
    other = next(p for p in PRECISIONS if p != precision)
    try:
        files = image_set(directory, work_dir, size, fmt, images, seed)
        paths = list(files.paths)
        config = describe_config(directory, size, fmt, len(paths), workers, spectrum, repeats, planner)
        config["precision"] = precision
        extractor = make_extractor(spectrum=spectrum, planner=planner, precision=precision)
        other_extractor = make_extractor(spectrum=spectrum, planner=planner, precision=other)
        floor_backend = make_backend("fftw", "single", planner=planner)
        sample = paths[: authors_sample_size(paths, len(paths))]
        progress(f"decode, the floor, features, and the authors' pipeline on {len(sample)} of the images")
        stages = time_stages(
            {
                "decode": (decode_files, paths),
                "decode_fft": (lambda p: decode_fft_files(p, floor_backend), paths),
                "features": (lambda p: features_files(p, extractor), paths),
                f"features_{other}": (lambda p: features_files(p, other_extractor), paths),
                "authors": (lambda p: authors_files(p, spectrum), sample),
            },
            repeats,
            warm_up=None if directory is not None else 8,
        )
        stages["authors"].note = f"sample of {len(sample)}"
        decoded = [read_image(p).pixels for p in paths[: breakdown_sample_size(paths, len(paths))]]
        progress("per-piece breakdown")
        breakdown_ms, extract_ms = feature_breakdown(decoded, spectrum, repeats, planner, precision)
        authors_step_ms = time_authors_step(decoded[: len(sample)], spectrum, repeats)
        del decoded
        scaling = []
        for n in worker_counts(workers):
            progress(f"features in {n} processes")
            scaling.append(
                time_parallel_features(paths, n, repeats, spectrum=spectrum, planner=planner, precision=precision)
            )
        scan = []
        if include_scan:
            wanted = scan_image_count(len(paths), (stages["features"].seconds or 0.0) / len(paths), scan_work_seconds)
            progress(f"scan of {wanted} images")
            scan_paths = files.top_up(wanted)
            whole_root = files.root if len(image_files(files.root)) == len(scan_paths) else None
            scan = time_scan(
                scan_paths, whole_root, worker_counts(workers), spectrum, work_dir, ["--precision", precision]
            )
        report = BenchReport(
            config,
            machine_description(),
            stages,
            scaling,
            scan,
            scan_memory(scan),
            {"breakdown_ms": breakdown_ms, "extract_ms": extract_ms, "authors_step_ms": authors_step_ms},
        )
        report.extra["ratios"] = compute_ratios(report)
        report.extra["targets"] = judge_targets(report.to_dict())
        return report
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


# --- text ----------------------------------------------------------------------------


STAGE_LABELS = {
    "decode": "decode (read + checks + OpenCV)",
    "decode_fft": "floor: decode + float32 FFTW rfft2",
    "features": "decode + features",
    "features_double": "decode + features, double",
    "features_single": "decode + features, single",
    "authors": "authors' numpy pipeline",
}


RATIO_LABELS = {
    "features_over_decode_fft": "(decode + features) / floor",
    "feature_step_over_fft": "feature step after decode / FFT alone",
    "authors_over_features": "authors' pipeline / ours, both decoding",
    "authors_step_over_features": "authors' numpy step / our decode + features",
    "authors_step_over_feature_step": "authors' numpy step / our feature step",
    "decode_share_of_features": "decode share of decode + features",
    "parallel_speedup_2_over_1": "features, 2 processes / 1",
    "scan_speedup_2_over_1": "scan, 2 workers / 1 (steady)",
    "scan_over_pool_1": "scan, 1 worker / 1 process alone",
    "scan_over_pool_2": "scan, 2 workers / 2 processes alone",
    "double_over_single": "double precision / single (time)",
}


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        width = spec.split(".")[0]
        return "-".rjust(int(width) if width.isdigit() else 1)
    return format(value, spec)


def format_report(report: BenchReport) -> str:
    """The report as the terminal shows it."""
    c = report.config
    source = c["directory"] or f"generated {c['size']}x{c['size']} {c['format'].upper()}" + (
        f" (quality {JPEG_QUALITY})" if c["format"] == "jpeg" else ""
    )
    lines = [
        f"scanner bench: {c['images']} images, {source}; spectrum {c['spectrum']}; "
        f"median of {c['repeats']} passes after a warm-up",
        f"machine: {report.machine['cpu']}, {report.machine['cores']} cores, {report.machine['fftw']}",
        "",
        f"{'stage':<42} {'images/s':>10} {'ms/image':>10}",
    ]
    for name, label in STAGE_LABELS.items():
        if name not in report.stages:
            continue
        stage = report.stages[name]
        if name == "features":
            label += f", {report.config.get('precision', DEFAULT_PRECISION)}"
        extra = f"   ({stage.note})" if stage.note else ""
        lines.append(f"{label:<42} {_fmt(stage.images_per_s, '10.1f')} {_fmt(stage.ms_per_image, '10.3f')}{extra}")
    breakdown_ms, extract_ms = report.extra["breakdown_ms"], report.extra["extract_ms"]
    for run in report.scan:
        if run.error:
            lines.append(f"{'scan -> HDF5':<42} {'skipped':>10}   {run.error}")
            continue
        label = f"scan -> HDF5, {run.workers} worker{'s' if run.workers > 1 else ''}"
        lines.append(
            f"{label:<42} {_fmt(run.images_per_s, '10.1f')} {_fmt(1e3 / run.images_per_s, '10.3f')}"
            f"   (steady {_fmt(run.steady_images_per_s, '.1f')} images/s; start-up and "
            f"shut-down {_fmt(run.overhead_seconds, '.2f')} s)"
        )
    lines += ["", "feature step after decode, ms/image:"]
    total = sum(breakdown_ms.values())
    for piece, value in breakdown_ms.items():
        lines.append(f"  {piece:<14} {value:8.3f}  {100 * value / total:5.1f}%")
    lines.append(
        f"  {'sum':<14} {total:8.3f}   (from_bgr alone: {extract_ms:.3f}; "
        f"the authors' numpy step: {report.extra['authors_step_ms']:.3f})"
    )
    lines += ["", "worker scaling (features in N processes, no pipeline):"]
    base = report.scaling[0].images_per_s if report.scaling else None
    for stage in report.scaling:
        lines.append(
            f"  {stage.note:<14} {_fmt(stage.images_per_s, '10.1f')} images/s  "
            f"{_fmt(_ratio(stage.images_per_s, base), '.2f')}x"
        )
    lines += ["", "ratios (this run):"]
    for key, label in RATIO_LABELS.items():
        lines.append(f"  {label:<48} {_fmt(report.extra['ratios'][key], '6.2f')}")
    m = report.memory
    lines += [
        "",
        f"peak memory: bench process {m['self_mb']:.0f} MB; largest child {m['largest_child_mb']:.0f} MB; "
        f"scan process tree {_fmt(m['scan_tree_peak_rss_mb'], '.0f')} MB RSS, "
        f"{_fmt(m['scan_tree_peak_pss_mb'], '.0f')} MB PSS (shared pages counted once)",
    ]
    if report.extra["targets"]:
        lines += ["", "targets:"]
        for t in report.extra["targets"]:
            verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
            lines.append(
                f"  {verdict:<7} {t['target']}: {_fmt(t['value'], '.2f')} (goal {t['goal']:g})"
                + (f"; held back by {t['held_back_by']}" if t["held_back_by"] else "")
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, help="images to time (default: a generated set)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--format", dest="fmt", choices=("jpeg", "png"), default="jpeg")
    parser.add_argument("--images", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--spectrum", choices=("log", "modulus"), default="log")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--planner", default=STEADY_PLANNER)
    parser.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION)
    parser.add_argument("--json", action="store_true", help="one JSON object with every figure")
    args = parser.parse_args()

    def progress(message: str) -> None:
        if sys.stderr.isatty():
            print(f"harness: {message}...", file=sys.stderr)

    report = run_harness(
        args.directory,
        args.size,
        args.fmt,
        args.images,
        args.workers,
        args.spectrum,
        args.repeats,
        args.planner,
        progress=progress,
        precision=args.precision,
    )
    print(json.dumps(report.to_dict()) if args.json else format_report(report))


if __name__ == "__main__":
    main()
