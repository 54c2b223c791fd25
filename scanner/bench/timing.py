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

The developer's harness (benchmarks/harness.py) builds on these pieces: the
FFT floor, the per-piece breakdown of the feature step, the authors' pipeline
and the project's targets.
"""

from __future__ import annotations

import ctypes
import glob
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from scanner import __version__
from scanner.bench.images import natural_image
from scanner.core.constants import DEFAULT_PRECISION, PRECISIONS
from scanner.core.featuresets import DEFAULT_FEATURE_SET, PAPER
from scanner.features.backends import (
    DEFAULT_BACKEND,
    DEFAULT_PLANNER,
    available_backends,
    backend_options,
    make_backend,
)
from scanner.features.extract import Extractor, make_extractor
from scanner.features.measure import measure_file
from scanner.images.decode import read_image
from scanner.io.walk import DEFAULT_EXTENSIONS

FORMATS = ("jpeg", "png")
JPEG_QUALITY = 90
PAPER_STAGE = "features_paper"  # decode + the paper's features, timed beside a wider feature set
SCAN_WORK_SECONDS = 3.0


# --- a realistic image set ------------------------------------------------------


def encode(rgb: np.ndarray, fmt: str) -> bytes:
    """The file bytes of an RGB image as JPEG (quality 90, 4:2:0) or PNG."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    ext, params = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]) if fmt == "jpeg" else (".png", [])
    ok, data = cv2.imencode(ext, rgb[..., ::-1], params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {fmt} image")
    return data.tobytes()


def write_image_set(directory: Path, count: int, size: int, fmt: str, seed: int = 0, first: int = 0) -> list[Path]:
    """Write `count` distinct size x size images into `directory`, numbered from `first`;
    returns their paths."""
    rng = np.random.default_rng((seed, first))
    suffix = ".jpg" if fmt == "jpeg" else ".png"
    paths = []
    for i in range(first, first + count):
        path = directory / f"img{i:07d}{suffix}"
        path.write_bytes(encode(natural_image(size, size, rng), fmt))
        paths.append(path)
    return paths


def image_files(directory: Path, limit: int | None = None) -> list[Path]:
    """Image files under `directory` (sorted, recursive), at most `limit`: those with an
    extension `scanner scan` takes from directories by default."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            if name.rpartition(".")[2].lower() in DEFAULT_EXTENSIONS:
                found.append(Path(root) / name)
                if limit is not None and len(found) >= limit:
                    return found
    return found


# --- timing -------------------------------------------------------------------------


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

    def to_dict(self) -> dict:
        return {**asdict(self), "ms_per_image": self.ms_per_image, "images_per_s": self.images_per_s}


def decode_files(paths: Sequence[Path]) -> None:
    """read_image: the file read, header checks and OpenCV decode every sweep pays."""
    for path in paths:
        read_image(path)


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


# --- processes: parallel features, the scan command, memory ----------------------


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
    return StageResult(
        f"features_x{workers}", len(paths), seconds, note=f"{workers} process{'es' if workers > 1 else ''}"
    )


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                kids += [int(k) for k in handle.read().split()]
    except (OSError, ValueError):
        pass
    return kids


def _memory_bytes(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process; PSS counts a page shared by n processes as 1/n of it,
    so forked workers sharing their parent's pages are not counted twice."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss, pss


def tree_memory_bytes(pid: int) -> tuple[int, int]:
    """(RSS, PSS) summed over a process and all its descendants now (Linux /proc; 0 elsewhere)."""
    rss = pss = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        one_rss, one_pss = _memory_bytes(current)
        rss += one_rss
        pss += one_pss
        stack += _children(current)
    return rss, pss


class TreeMemorySampler:
    """Samples the memory of a process tree in a background thread and keeps the largest
    totals seen (`peak_rss`, `peak_pss`, bytes). Sampling is coarse (every `interval` s),
    so short spikes can be missed; getrusage's ru_maxrss gives the exact peak of single
    processes."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = tree_memory_bytes(self.pid)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class ScanRun:
    workers: int
    seconds: float | None  # wall time of the whole command over all the files
    half_seconds: float | None  # the same over the first half of them
    images: int
    half_images: int
    peak_tree_rss_mb: float | None
    peak_tree_pss_mb: float | None
    error: str = ""

    @property
    def images_per_s(self) -> float | None:
        return None if not self.seconds else self.images / self.seconds

    @property
    def steady_images_per_s(self) -> float | None:
        """Throughput once running: the difference of the full and the half run, so the
        start-up and shut-down they share (interpreter, imports, workers, plans) cancel."""
        if not self.seconds or self.half_seconds is None or self.seconds <= self.half_seconds:
            return None
        return (self.images - self.half_images) / (self.seconds - self.half_seconds)

    @property
    def overhead_seconds(self) -> float | None:
        """Start-up and shut-down: the wall time the steady rate does not account for
        (None when run-to-run noise makes it come out negative)."""
        steady = self.steady_images_per_s
        overhead = None if not steady or self.seconds is None else self.seconds - self.images / steady
        return overhead if overhead is not None and overhead >= 0 else None

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "images_per_s": self.images_per_s,
            "steady_images_per_s": self.steady_images_per_s,
            "overhead_seconds": self.overhead_seconds,
        }


def scan_command(
    target: Path | None,
    out: Path,
    workers: int,
    spectrum: str,
    from_list: Path | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """`python -m scanner scan` as a user runs it (fresh store, no progress output)."""
    source = ["--from-list", str(from_list)] if from_list else [str(target)]
    return [
        sys.executable,
        "-m",
        "scanner",
        "scan",
        *source,
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--spectrum",
        spectrum,
        *extra,
        "--quiet",
    ]


def _last_message(result: subprocess.CompletedProcess) -> str:
    """The last line of a failed command's output that says something (no box drawing)."""
    for line in reversed((result.stderr or result.stdout or "").splitlines()):
        text = line.strip(" │╭╮╰╯─|")
        if any(ch.isalnum() for ch in text):
            return text
    return "no message"


def _run_timed(command: list[str]) -> tuple[float, TreeMemorySampler, subprocess.CompletedProcess]:
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeMemorySampler(process.pid) as memory:
        stdout, stderr = process.communicate()
    seconds = time.perf_counter() - start
    return seconds, memory, subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def time_scan(
    paths: Sequence[Path],
    root: Path | None,
    worker_counts: Sequence[int],
    spectrum: str,
    work_dir: Path,
    extra: Sequence[str] = (),
) -> list[ScanRun]:
    """Wall time of `scanner scan` over the files, and over their first half, for each
    worker count. With `root`, the full run scans that directory (which must hold
    exactly `paths`), as a user would; otherwise the paths go in by --from-list.
    An exit status of 0 or 1 (some files unusable) counts as a finished scan.
    """
    half = max(1, len(paths) // 2)
    half_list, full_list = work_dir / "scan-half.txt", work_dir / "scan-all.txt"
    half_list.write_text("".join(f"{p}\n" for p in paths[:half]))
    if root is None:
        full_list.write_text("".join(f"{p}\n" for p in paths))
    runs = []
    for workers in worker_counts:
        half_out, out = work_dir / f"half-{workers}.h5", work_dir / f"scan-{workers}.h5"
        half_seconds, _, first = _run_timed(scan_command(None, half_out, workers, spectrum, half_list, extra))
        if first.returncode not in (0, 1):
            message = _last_message(first)
            if "no such command" in message.lower():
                message = "`scanner scan` does not exist in this version; row skipped"
            else:
                message = f"`scanner scan` failed (exit {first.returncode}): {message}"
            return [ScanRun(workers, None, None, len(paths), half, None, None, error=message)]
        command = scan_command(root, out, workers, spectrum, None if root else full_list, extra)
        seconds, memory, result = _run_timed(command)
        error = (
            ""
            if result.returncode in (0, 1)
            else f"`scanner scan` failed (exit {result.returncode}): {_last_message(result)}"
        )
        runs.append(
            ScanRun(
                workers,
                None if error else seconds,
                half_seconds,
                len(paths),
                half,
                memory.peak_rss / 2**20,
                memory.peak_pss / 2**20,
                error,
            )
        )
        for store in (half_out, out):
            store.unlink(missing_ok=True)
    return runs


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory so far: this process, and the largest finished child."""
    to_mb = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return {
        "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_mb,
        "largest_child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * to_mb,
    }


# --- the machine --------------------------------------------------------------------


def fftw_build() -> str:
    """FFTW's own version string (it names the SIMD it was built with), as pyfftw loads it."""
    import pyfftw

    libs = Path(pyfftw.__file__).parent.parent / "pyfftw.libs"
    candidates = sorted(glob.glob(str(libs / "libfftw3-*.so*"))) or ["libfftw3.so.3"]
    try:
        lib = ctypes.CDLL(candidates[0])
        return (ctypes.c_char * 128).in_dll(lib, "fftw_version").value.decode()
    except (OSError, ValueError):
        return "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_description() -> dict[str, str]:
    """What the figures depend on: CPU, cores, memory, Python and library versions."""
    import numba
    import pyfftw

    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == platform.machine():
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = " ".join(f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f") if f in have)
    except OSError:
        pass
    try:
        memory = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB"
    except (ValueError, OSError):
        memory = "unknown"
    return {
        "host": platform.node(),
        "cpu": cpu,
        "simd": flags,
        "cores": f"{usable_cores()} usable of {os.cpu_count()}",
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "scanner": __version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "pyfftw": pyfftw.__version__,
        "fftw": fftw_build(),
        "opencv": cv2.__version__,
    }


# --- one report ---------------------------------------------------------------------


@dataclass
class BenchReport:
    config: dict
    machine: dict
    stages: dict[str, StageResult]
    scaling: list[StageResult]
    scan: list[ScanRun]
    memory: dict[str, float | None]
    extra: dict[str, Any] = field(default_factory=dict)  # what a harness adds (benchmarks/harness.py)

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "machine": self.machine,
            "stages": {name: stage.to_dict() for name, stage in self.stages.items()},
            "scaling": [s.to_dict() for s in self.scaling],
            "scan": [s.to_dict() for s in self.scan],
            "memory": self.memory,
            **self.extra,
        }


def worker_counts(workers: int) -> list[int]:
    """1 to N: every count up to 4, then 1, 2, N/2 and N."""
    if workers <= 4:
        return list(range(1, workers + 1))
    return sorted({1, 2, workers // 2, workers})


def scan_image_count(count: int, seconds_per_image: float, work_seconds: float = SCAN_WORK_SECONDS) -> int:
    """Images for the scan runs: about `work_seconds` of one core's work (at least
    `count`, at most 8 times it or 8192), since each run also pays a start-up of a
    few seconds that varies from run to run."""
    return int(min(8 * count, 8192, max(count, work_seconds / max(seconds_per_image, 1e-6))))


def default_image_count(size: int) -> int:
    """Enough images for stable passes (about 32 megapixels), at least 16."""
    return max(16, min(2048, (32 << 20) // (size * size)))


@dataclass
class ImageSet:
    """The files a bench times: generated (removed afterwards) or the user's (read, never changed)."""

    root: Path
    paths: list[Path]
    generated: bool
    size: int
    fmt: str
    seed: int = 0

    def top_up(self, wanted: int) -> list[Path]:
        """A generated set grown to `wanted` images (a user's set is used as it is)."""
        if self.generated and wanted > len(self.paths):
            self.paths += write_image_set(
                self.root, wanted - len(self.paths), self.size, self.fmt, self.seed, first=len(self.paths)
            )
        return self.paths


def image_set(
    directory: Path | None, work_dir: Path, size: int, fmt: str, images: int | None, seed: int = 0
) -> ImageSet:
    if directory is None:
        root = work_dir / "images"
        root.mkdir()
        count = images or default_image_count(size)
        return ImageSet(root, write_image_set(root, count, size, fmt, seed), True, size, fmt, seed)
    paths = image_files(directory, images or default_image_count(size))
    if not paths:
        raise ValueError(f"no image files under {directory}")
    return ImageSet(directory, paths, False, size, fmt, seed)


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
) -> dict:
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


def fft_libraries(height: int, width: int, repeats: int, planner: str = DEFAULT_PLANNER) -> list[dict[str, Any]]:
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


def run_bench(
    directory: Path | None = None,
    size: int = 256,
    fmt: str = "jpeg",
    images: int | None = None,
    workers: int | None = None,
    spectrum: str = "log",
    repeats: int = 3,
    planner: str = DEFAULT_PLANNER,
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
        progress(f"decode, and decode + features in {precision} and {other} precision")
        timed: dict[str, tuple[Callable[[Sequence[Path]], None], Sequence[Path]]] = {
            "decode": (decode_files, paths),
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


def scan_memory(scan: Sequence[ScanRun]) -> dict[str, float | None]:
    memory: dict[str, float | None] = dict(peak_rss_mb())
    memory["scan_tree_peak_rss_mb"] = max((r.peak_tree_rss_mb or 0 for r in scan), default=None) or None
    memory["scan_tree_peak_pss_mb"] = max((r.peak_tree_pss_mb or 0 for r in scan), default=None) or None
    return memory


# --- text ----------------------------------------------------------------------------


def source_text(config: dict) -> str:
    if config["directory"]:
        return f"{config['images']} images from {config['directory']}"
    quality = f" (quality {JPEG_QUALITY})" if config["format"] == "jpeg" else ""
    return f"{config['images']} generated {config['size']}x{config['size']} {config['format'].upper()} images{quality}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def _rate(images_per_s: float | None) -> str:
    """A rate as a user reads it, right-aligned: '4,481 images/s', '3.5 images/s', '2.5 s per image'."""
    from scanner.run.progress import format_rate

    return f"{format_rate(images_per_s or 0.0):>18}"


def format_report(report: BenchReport) -> str:
    """The report in a user's words: images per second per stage, scaling, memory, what a million would take."""
    c, m = report.config, report.machine
    feature_set = c.get("feature_set", DEFAULT_FEATURE_SET)
    lines = [
        f"scanner bench: {source_text(c)}, {feature_set} features, {c['spectrum']} spectrum; "
        f"median of {c['repeats']} timed pass{'es' if c['repeats'] != 1 else ''}",
        f"this machine: {m['cpu']}, {m['cores']} cores, {m['memory']} memory",
        "",
    ]
    lines.append("one core, one image after another:")
    precision = c.get("precision", DEFAULT_PRECISION)
    labels = {"decode": "read and decode", "features": f"read, decode, measure ({precision})"}
    labels.update(
        {
            name: f"the same in {name.split('_', 1)[1]} precision"
            for name in report.stages
            if name.removeprefix("features_") in PRECISIONS
        }
    )
    base_ms = report.stages["features"].ms_per_image
    for name, label in labels.items():
        stage = report.stages[name]
        relative = (
            f", {stage.ms_per_image / base_ms:.2f} times as long"
            if name.removeprefix("features_") in PRECISIONS and stage.ms_per_image and base_ms
            else ""
        )
        each = f"  ({stage.ms_per_image:.2f} ms an image{relative})" if stage.ms_per_image else ""
        lines.append(f"  {label:<30}{_rate(stage.images_per_s)}{each}")
    paper = report.stages.get(PAPER_STAGE)
    if paper is not None:
        ours = report.stages["features"]
        ratio = ours.seconds / paper.seconds if ours.seconds and paper.seconds else None
        ratio_words = f"; the {feature_set} set costs {ratio:.2f}x" if ratio else ""
        each = f"{paper.ms_per_image:.2f} ms an image" if paper.ms_per_image else "-"
        lines.append(f"  {'... with the paper set':<30}{_rate(paper.images_per_s)}  ({each}{ratio_words})")
    libraries = report.extra.get("fft_libraries")
    if libraries:
        height, width = report.extra["fft_shape"]
        lines += ["", f"FFT libraries, one transform of the three channels of a {width}x{height} image:"]
        best = min(entry["ms"] for entry in libraries)
        for name in dict.fromkeys(entry["library"] for entry in libraries):
            cells = "   ".join(f"{e['precision']} {e['ms']:8.3f} ms" for e in libraries if e["library"] == name)
            mark = "   (fastest)" if any(e["ms"] == best for e in libraries if e["library"] == name) else ""
            chosen = " *" if name == c.get("fft") else "  "
            lines.append(f"  {name:<8}{chosen} {cells}{mark}")
        lines.append("  (* the library this run measured with; --fft chooses another)")
    lines += ["", "measuring in parallel (no store, no walk):"]
    base = report.scaling[0].images_per_s if report.scaling else None
    for k, stage in enumerate(report.scaling):
        speedup = stage.images_per_s / base if stage.images_per_s and base else None
        times = f"  ({speedup:.1f} times {report.scaling[0].note})" if k and speedup else ""
        lines.append(f"  {stage.note:<28}{_rate(stage.images_per_s)}{times}")
    best = None
    if report.scan:
        lines += ["", "scanner scan into a store, once running (its start-up left out):"]
        for run in report.scan:
            label = f"{run.workers} worker{'s' if run.workers != 1 else ''}"
            if run.error:
                lines.append(f"  {label:<28}not measured: {run.error}")
            elif not run.steady_images_per_s:
                lines.append(
                    f"  {label:<28}not measured: too few images to tell the rate from start-up (give --images 2000)"
                )
            else:
                start = f"  (start-up and shut-down {run.overhead_seconds:.1f} s)" if run.overhead_seconds else ""
                lines.append(f"  {label:<28}{_rate(run.steady_images_per_s)}{start}")
                best = max(best or 0.0, run.steady_images_per_s)
    pss = report.memory.get("scan_tree_peak_pss_mb")
    if pss:
        lines += ["", f"peak memory of a scan: {pss:,.0f} MB for all its processes (shared pages counted once)"]
    if best:
        lines += ["", f"at that rate a million such images take about {_duration(1e6 / best)}."]
    return "\n".join(lines)
