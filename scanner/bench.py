"""Throughput of the scanner against its own decode floor and the authors' numpy pipeline.

A shared or busy machine makes timings from separate runs incomparable, so every
figure of one report is measured in the same run, on the same files, with the
stages' passes interleaved in rounds: decode alone; decode plus the three-channel FFTW rfft2 the engine
runs (the floor the feature step is held to); the full features; the whole
``scanner scan`` pipeline into HDF5 (as a subprocess, with 1..N workers); and the
authors' plain numpy pipeline on a sample. Each stage gets a warm-up pass (numba
cache loading, FFTW planning, the page cache) and then the median of several
timed passes.

Without a directory of images, a realistic set is generated in a temporary
directory: smooth multi-scale luminance, softer chroma fields, per-channel tints
and per-channel sensor noise, so the three channels are correlated but not
identical, as in photographs (constants or pure noise would time different code
paths: constant planes and flat spectra).
"""

from __future__ import annotations

import ctypes
import glob
import math
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

import cv2
import numpy as np

from scanner import __version__, kernels
from scanner import features as features_module
from scanner.decode import read_image
from scanner.features import FeatureExtractor, features_of_file
from scanner.percentile import PercentileSelector
from scanner.spectrum import ChannelTransform, PlanCache
from scanner.walk import DEFAULT_EXTENSIONS

FORMATS = ("jpeg", "png")
JPEG_QUALITY = 90
BREAKDOWN_PIECES = ("to_planar", "fft", "magnitude", "percentiles", "pair_sums", "finish")

# Targets of issues 2, 3 and 5 (log mode, on the project's 2-core machine).
TARGET_FEATURE_OVER_DECODE_FFT = 1.3
TARGET_AUTHORS_OVER_OURS = 8.0
TARGET_AUTHORS_SIZE = 1024
TARGET_SCAN_RATE = 2500.0
TARGET_SCAN_RATE_SIZE = 256
TARGET_TWO_WORKER_SPEEDUP = 1.8

SCAN_WORK_SECONDS = 3.0


# --- a realistic image set ------------------------------------------------------


def _field(rng: np.random.Generator, height: int, width: int, octaves: int, base_cells: int) -> np.ndarray:
    """Multi-scale smooth noise (amplitude halving per octave, roughly 1/f), in [-1, 1]."""
    total = np.zeros((height, width), np.float32)
    amplitude = 1.0
    for k in range(octaves):
        cells = base_cells << k
        if cells > max(height, width):
            break
        grid = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
        total += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        amplitude *= 0.5
    return total / max(float(np.abs(total).max()), 1e-6)


def natural_image(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A photo-like (H, W, 3) uint8 RGB image with correlated, not identical, channels."""
    luminance = 0.5 + 0.3 * _field(rng, height, width, octaves=7, base_cells=2)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(3):  # a few soft-edged blobs, like a face or objects against a background
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(0.1, 0.35) * min(height, width)
        edge = (np.hypot(yy - cy, xx - cx) - radius) / (0.05 * radius + 1.0)
        blob = 0.5 - 0.5 * np.tanh(0.5 * edge)  # a logistic step, without exp overflow
        luminance += rng.uniform(-0.2, 0.2) * blob
    chroma_rb = 0.06 * _field(rng, height, width, octaves=4, base_cells=2)
    chroma_gm = 0.04 * _field(rng, height, width, octaves=4, base_cells=2)
    tint = rng.uniform(0.8, 1.15, size=3)
    planes = (
        luminance * tint[0] + chroma_rb + chroma_gm,
        luminance * tint[1] - chroma_gm,
        luminance * tint[2] - chroma_rb + chroma_gm,
    )
    noisy = [p + rng.normal(0.0, 0.012, p.shape).astype(np.float32) for p in planes]
    return (np.clip(np.stack(noisy, axis=-1), 0.0, 1.0) * 255.0).round().astype(np.uint8)


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


# --- the authors' pipeline --------------------------------------------------------


def authors_features(rgb: np.ndarray, spectrum: str = "log") -> np.ndarray:
    """The six features as the authors compute them: full complex fft2 per channel,
    np.percentile, np.corrcoef, all in float64 numpy (the baseline, not the engine)."""
    x = rgb.astype(np.float64)
    if spectrum == "log":
        x /= 255.0
    spectra = []
    for c in range(3):
        s = np.abs(np.fft.fft2(x[..., c]))
        if spectrum == "log":
            s = np.log(s + 1e-3)
            p1, p99 = np.percentile(s, [1, 99])
            with np.errstate(divide="ignore", invalid="ignore"):
                s = np.clip((s - p1) / (p99 - p1), 0.0, 1.0)
        spectra.append(s.ravel())
    pairs = ((0, 1), (0, 2), (1, 2))
    d = np.array([np.mean(np.abs(spectra[a] - spectra[b])) for a, b in pairs])
    with np.errstate(divide="ignore", invalid="ignore"):
        icorr = [1.0 - np.corrcoef(spectra[a], spectra[b])[0, 1] for a, b in pairs]
    return np.array([d.mean(), d.max(), d.min(), *icorr])


def authors_features_of_file(path: Path, spectrum: str = "log") -> np.ndarray:
    return authors_features(cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1], spectrum)


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


def decode_fft_files(paths: Sequence[Path], plans: PlanCache) -> None:
    """Decode, then the engine's own three-channel rfft2: its to_planar copy into the
    plan's aligned buffer and the cached FFTW plan. The floor the features are held to."""
    for path in paths:
        pixels = read_image(path).pixels
        plan = plans.get(*pixels.shape[:2])
        kernels.to_planar(pixels, plan.pixels, 1.0 / 255.0, 2)
        plan.execute()


def features_files(paths: Sequence[Path], extractor: FeatureExtractor) -> None:
    """features_of_file: decode plus the six features, as the sweep runs it."""
    for path in paths:
        features_of_file(path, extractor)


def authors_files(paths: Sequence[Path], spectrum: str) -> None:
    """cv2.imread plus the authors' numpy pipeline, per file."""
    for path in paths:
        authors_features_of_file(path, spectrum)


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


def time_authors_step(images: Sequence[np.ndarray], spectrum: str, repeats: int) -> float:
    """ms/image of the authors' numpy pipeline alone, on already decoded BGR images."""
    rgb = [image[..., ::-1] for image in images]

    def one_pass() -> None:
        for image in rgb:
            authors_features(image, spectrum)

    authors_features(rgb[0], spectrum)
    return 1e3 * median_pass_seconds(one_pass, repeats) / len(rgb)


class PieceClock:
    """Times the engine's own pieces while FeatureExtractor runs, by wrapping them.

    The wrapped callables are the ones the extractor looks up at call time
    (scanner.kernels functions, the plan's execute, PercentileSelector, and
    features_from_sums), so the breakdown follows the engine as it is, with no
    copy of its logic to drift. A piece called from inside another counts as
    the outer one. Inside `with clock:` only; the originals are put back after.
    """

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(BREAKDOWN_PIECES, 0.0)
        self._active = False
        self._saved: list[tuple[object, str, object]] = []

    def _wrap(self, piece: str, function: Callable) -> Callable:
        seconds = self.seconds
        clock = time.perf_counter

        def timed(*args, **kwargs):
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
        targets = (
            (kernels, "to_planar", "to_planar"),
            (ChannelTransform, "execute", "fft"),
            (kernels, "log_magnitude", "magnitude"),
            (kernels, "magnitude", "magnitude"),
            (PercentileSelector, "__call__", "percentiles"),
            (kernels, "pair_sums", "pair_sums"),
            (features_module, "features_from_sums", "finish"),
        )
        for owner, name, piece in targets:
            original = vars(owner).get(name)
            if original is not None:
                self._saved.append((owner, name, original))
                setattr(owner, name, self._wrap(piece, original))
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()


def feature_breakdown(
    images: Sequence[np.ndarray], spectrum: str, repeats: int, planner: str = "measure"
) -> tuple[dict[str, float], float]:
    """ms/image of each piece of the feature step on decoded BGR images ("other" is
    the Python between them), and of FeatureExtractor.from_bgr left alone (medians)."""
    extractor = FeatureExtractor(spectrum, planner=planner)
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


# --- processes: parallel features, the scan command, memory ----------------------


_POOL_EXTRACTOR: FeatureExtractor | None = None


def _pool_init(spectrum: str, planner: str) -> None:
    global _POOL_EXTRACTOR
    _POOL_EXTRACTOR = FeatureExtractor(spectrum, planner=planner)


def _pool_features(paths: Sequence[Path]) -> None:
    features_files(paths, _POOL_EXTRACTOR)


def time_parallel_features(
    paths: Sequence[Path], workers: int, spectrum: str, repeats: int, planner: str = "measure"
) -> StageResult:
    """features_of_file in `workers` processes, each taking an equal share of the files:
    what the cores can do with no pipeline around them (no walk, queue or HDF5)."""
    shares = [list(paths[w::workers]) for w in range(workers)]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(workers, initializer=_pool_init, initargs=(spectrum, planner)) as pool:
        pool.map(_pool_features, [share[:4] for share in shares], chunksize=1)  # warm-up in every worker
        seconds = median_pass_seconds(lambda: pool.map(_pool_features, shares, chunksize=1), repeats)
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

    def __exit__(self, *exc) -> None:
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
        overhead = None if not steady else self.seconds - self.images / steady
        return overhead if overhead is not None and overhead >= 0 else None

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "images_per_s": self.images_per_s,
            "steady_images_per_s": self.steady_images_per_s,
            "overhead_seconds": self.overhead_seconds,
        }


def scan_command(
    target: Path | None, out: Path, workers: int, spectrum: str, from_list: Path | None = None
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
    paths: Sequence[Path], root: Path | None, worker_counts: Sequence[int], spectrum: str, work_dir: Path
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
        half_seconds, _, first = _run_timed(scan_command(None, half_out, workers, spectrum, half_list))
        if first.returncode not in (0, 1):
            message = _last_message(first)
            if "no such command" in message.lower():
                message = "`scanner scan` does not exist in this version; row skipped"
            else:
                message = f"`scanner scan` failed (exit {first.returncode}): {message}"
            return [ScanRun(workers, None, None, len(paths), half, None, None, error=message)]
        command = scan_command(root, out, workers, spectrum, None if root else full_list)
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
    breakdown_ms: dict[str, float]
    extract_ms: float
    authors_step_ms: float
    scaling: list[StageResult]
    scan: list[ScanRun]
    memory: dict[str, float | None]
    ratios: dict[str, float | None] = field(default_factory=dict)
    targets: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "machine": self.machine,
            "stages": {k: v.to_dict() for k, v in self.stages.items()},
            "breakdown_ms": self.breakdown_ms,
            "extract_ms": self.extract_ms,
            "authors_step_ms": self.authors_step_ms,
            "scaling": [s.to_dict() for s in self.scaling],
            "scan": [s.to_dict() for s in self.scan],
            "memory": self.memory,
            "ratios": self.ratios,
            "targets": self.targets,
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
    pool = {s.name: s.images_per_s for s in report.scaling}
    scan_by_workers = {run.workers: run for run in report.scan if run.seconds}
    return {
        "features_over_decode_fft": _ratio(ms.get("features"), ms.get("decode_fft")),
        "feature_step_over_fft": _ratio(report.extract_ms, report.breakdown_ms.get("fft")),
        "authors_over_features": _ratio(ms.get("authors"), ms.get("features")),
        "authors_step_over_features": _ratio(report.authors_step_ms, ms.get("features")),
        "authors_step_over_feature_step": _ratio(report.authors_step_ms, report.extract_ms),
        "decode_share_of_features": _ratio(ms.get("decode"), ms.get("features")),
        "parallel_speedup_2_over_1": _ratio(pool.get("features_x2"), pool.get("features_x1")),
        "scan_speedup_2_over_1": _ratio(
            scan_by_workers[2].steady_images_per_s if 2 in scan_by_workers else None,
            scan_by_workers[1].steady_images_per_s if 1 in scan_by_workers else None,
        ),
    }


def _biggest_extra_piece(breakdown_ms: dict[str, float]) -> str:
    extra = {p: v for p, v in breakdown_ms.items() if p not in ("fft", "to_planar", "other")}
    piece = max(extra, key=extra.get)
    return f"{piece} ({extra[piece]:.3f} ms/image of {sum(breakdown_ms.values()):.3f})"


def judge_targets(report: BenchReport) -> list[dict]:
    """The targets that apply to this configuration, met or not, and what holds each back."""
    config, ratios = report.config, report.ratios
    targets = []
    if config["spectrum"] != "log":
        return targets

    def add(name: str, value: float | None, goal: float, higher_is_better: bool, held_back_by: str) -> None:
        met = None if value is None else (value >= goal if higher_is_better else value <= goal)
        targets.append(
            {"target": name, "value": value, "goal": goal, "met": met, "held_back_by": "" if met else held_back_by}
        )

    add(
        "features <= 1.3x (decode + FFT)",
        ratios["features_over_decode_fft"],
        TARGET_FEATURE_OVER_DECODE_FFT,
        False,
        _biggest_extra_piece(report.breakdown_ms),
    )
    add(
        "feature step after decode <= 1.3x FFT (issue 2's wording)",
        ratios["feature_step_over_fft"],
        TARGET_FEATURE_OVER_DECODE_FFT,
        False,
        _biggest_extra_piece(report.breakdown_ms),
    )
    if config["size"] == TARGET_AUTHORS_SIZE:
        floor = report.stages["decode_fft"].ms_per_image
        authors = report.stages["authors"].ms_per_image
        held_back = (
            f"the floor: decode + FFT alone take {floor:.1f} ms/image, only {authors / floor:.1f}x less than the "
            f"authors' {authors:.0f} ms; beyond it, {_biggest_extra_piece(report.breakdown_ms)}"
        )
        add(
            "decode + features >= 8x faster than the authors' pipeline at 1024x1024 (both decode)",
            ratios["authors_over_features"],
            TARGET_AUTHORS_OVER_OURS,
            True,
            held_back,
        )
        add(
            "decode + features >= 8x faster than the authors' numpy step (issue 2's ~130 ms, no decode)",
            ratios["authors_step_over_features"],
            TARGET_AUTHORS_OVER_OURS,
            True,
            held_back,
        )
    runs = {run.workers: run for run in report.scan if run.seconds}
    pools = {s.name: s for s in report.scaling}
    if config["size"] == TARGET_SCAN_RATE_SIZE and config["format"] == "jpeg" and 2 in runs:
        pool = pools.get("features_x2")
        ceiling = pool.images_per_s if pool else None
        cost = (
            f"decode {report.stages['decode'].ms_per_image:.2f} + feature step {report.extract_ms:.2f} "
            "ms per image on one core"
        )
        where = (
            (f"the per-image cost ({cost}): features alone in 2 processes reach {ceiling:.0f} images/s")
            if ceiling and ceiling < TARGET_SCAN_RATE
            else (
                f"the scan pipeline (walk, queue, HDF5 writes): features alone in 2 processes reach "
                f"{ceiling or float('nan'):.0f} images/s"
            )
        )
        add(
            "scan of 256x256 JPEG >= 2,500 images/s with 2 workers (steady)",
            runs[2].steady_images_per_s,
            TARGET_SCAN_RATE,
            True,
            where,
        )
    if 1 in runs and 2 in runs:
        pool_speedup = ratios["parallel_speedup_2_over_1"]
        where = (
            f"the scan pipeline: features alone scale {pool_speedup:.2f}x"
            if pool_speedup and pool_speedup >= TARGET_TWO_WORKER_SPEEDUP
            else f"the cores: features alone in 2 processes scale only {pool_speedup or float('nan'):.2f}x "
            "(shared or busy cores, memory bandwidth)"
        )
        add("scan with 2 workers >= 1.8x one", ratios["scan_speedup_2_over_1"], TARGET_TWO_WORKER_SPEEDUP, True, where)
    return targets


def run_bench(
    directory: Path | None = None,
    size: int = 256,
    fmt: str = "jpeg",
    images: int | None = None,
    workers: int | None = None,
    spectrum: str = "log",
    repeats: int = 3,
    planner: str = "measure",
    include_scan: bool = True,
    scan_work_seconds: float = SCAN_WORK_SECONDS,
    seed: int = 0,
    progress: Callable[[str], None] = lambda message: None,
) -> BenchReport:
    """Measure every stage on one set of files; the generated set is removed afterwards.

    A generated set is topped up for the scan runs to about `scan_work_seconds` of
    one core's work; a user's directory is scanned as far as `images` goes.
    """
    workers = workers or usable_cores()
    work_dir = Path(tempfile.mkdtemp(prefix="scanner-bench-"))
    try:
        if directory is None:
            count = images or default_image_count(size)
            progress(f"writing {count} {size}x{size} {fmt} images")
            root = work_dir / "images"
            root.mkdir()
            paths = write_image_set(root, count, size, fmt, seed)
        else:
            root = directory
            paths = image_files(directory, images or default_image_count(size))
            if not paths:
                raise ValueError(f"no image files under {directory}")
        config = {
            "directory": None if directory is None else str(directory),
            "size": size if directory is None else None,
            "format": fmt if directory is None else None,
            "images": len(paths),
            "workers": workers,
            "spectrum": spectrum,
            "repeats": repeats,
            "planner": planner,
        }
        extractor = FeatureExtractor(spectrum, planner=planner)
        sample = paths[: authors_sample_size(paths, len(paths))]
        progress(f"decode, decode + FFT, features, and the authors' pipeline on {len(sample)} of the images")
        stages = time_stages(
            {
                "decode": (decode_files, paths),
                "decode_fft": (lambda p: decode_fft_files(p, extractor.plans), paths),
                "features": (lambda p: features_files(p, extractor), paths),
                "authors": (lambda p: authors_files(p, spectrum), sample),
            },
            repeats,
            warm_up=None if directory is not None else 8,
        )
        stages["authors"].note = f"sample of {len(sample)}"
        decoded = [read_image(p).pixels for p in paths[: breakdown_sample_size(paths, len(paths))]]
        progress("per-piece breakdown")
        breakdown_ms, extract_ms = feature_breakdown(decoded, spectrum, repeats, planner)
        authors_step_ms = time_authors_step(decoded[: len(sample)], spectrum, repeats)
        del decoded
        scaling = []
        for n in worker_counts(workers):
            progress(f"features in {n} processes")
            scaling.append(time_parallel_features(paths, n, spectrum, repeats, planner))
        scan: list[ScanRun] = []
        if include_scan:
            scan_paths = list(paths)
            if directory is None:  # enough work that the scan's start-up noise does not swamp it
                wanted = scan_image_count(len(paths), stages["features"].seconds / len(paths), scan_work_seconds)
                progress(f"writing {wanted - len(paths)} more images for the scan")
                scan_paths += write_image_set(root, wanted - len(paths), size, fmt, seed, first=len(paths))
            progress(f"scan of {len(scan_paths)} images")
            whole_root = root if len(image_files(root)) == len(scan_paths) else None
            scan = time_scan(scan_paths, whole_root, worker_counts(workers), spectrum, work_dir)
        memory: dict[str, float | None] = peak_rss_mb()
        memory["scan_tree_peak_rss_mb"] = max((r.peak_tree_rss_mb or 0 for r in scan), default=None) or None
        memory["scan_tree_peak_pss_mb"] = max((r.peak_tree_pss_mb or 0 for r in scan), default=None) or None
        report = BenchReport(
            config, machine_description(), stages, breakdown_ms, extract_ms, authors_step_ms, scaling, scan, memory
        )
        report.ratios = compute_ratios(report)
        report.targets = judge_targets(report)
        return report
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


# --- text ----------------------------------------------------------------------------


STAGE_LABELS = {
    "decode": "decode (read + checks + OpenCV)",
    "decode_fft": "decode + FFT (3-channel rfft2)",
    "features": "decode + features",
    "authors": "authors' numpy pipeline",
}


RATIO_LABELS = {
    "features_over_decode_fft": "(decode + features) / (decode + FFT)",
    "feature_step_over_fft": "feature step after decode / FFT alone",
    "authors_over_features": "authors' pipeline / ours, both decoding",
    "authors_step_over_features": "authors' numpy step / our decode + features",
    "authors_step_over_feature_step": "authors' numpy step / our feature step",
    "decode_share_of_features": "decode share of decode + features",
    "parallel_speedup_2_over_1": "features, 2 processes / 1",
    "scan_speedup_2_over_1": "scan, 2 workers / 1 (steady)",
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
        stage = report.stages[name]
        extra = f"   ({stage.note})" if stage.note else ""
        lines.append(f"{label:<42} {_fmt(stage.images_per_s, '10.1f')} {_fmt(stage.ms_per_image, '10.3f')}{extra}")
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
    total = sum(report.breakdown_ms.values())
    for piece, value in report.breakdown_ms.items():
        lines.append(f"  {piece:<14} {value:8.3f}  {100 * value / total:5.1f}%")
    lines.append(
        f"  {'sum':<14} {total:8.3f}   (FeatureExtractor.from_bgr alone: {report.extract_ms:.3f}; "
        f"the authors' numpy step: {report.authors_step_ms:.3f})"
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
        lines.append(f"  {label:<48} {_fmt(report.ratios[key], '6.2f')}")
    m = report.memory
    lines += [
        "",
        f"peak memory: bench process {m['self_mb']:.0f} MB; largest child {m['largest_child_mb']:.0f} MB; "
        f"scan process tree {_fmt(m['scan_tree_peak_rss_mb'], '.0f')} MB RSS, "
        f"{_fmt(m['scan_tree_peak_pss_mb'], '.0f')} MB PSS (shared pages counted once)",
    ]
    if report.targets:
        lines += ["", "targets:"]
        for t in report.targets:
            verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
            lines.append(
                f"  {verdict:<7} {t['target']}: {_fmt(t['value'], '.2f')} (goal {t['goal']:g})"
                + (f"; held back by {t['held_back_by']}" if t["held_back_by"] else "")
            )
    return "\n".join(lines)
