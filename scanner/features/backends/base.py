"""FFT backends: the real 2-D transform of an image's three colour planes.

A backend plans one ``Transform`` per image shape (kept in a small cache and
reused image after image) in the precision asked for. The feature sets read the
transform's half spectrum; they never see which library computed it. The
registry below names each backend's class, which is imported only when an
extractor is built, so naming the choices costs nothing.

Adding a backend (another FFT library, a GPU) is a new module with a subclass
of FFTBackend and a line in BACKENDS; the engine's test suite runs over every
registered backend.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

import numpy as np

from scanner.core.constants import DEFAULT_PRECISION, PRECISIONS
from scanner.core.errors import InputError


@dataclass(frozen=True)
class BackendInfo:
    name: str
    target: str  # "module:Class", imported when a backend is built
    options: tuple[str, ...]  # keyword options its constructor takes besides the precision
    summary: str


BACKENDS: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo(
            "fftw",
            "scanner.features.backends.fftw:FFTWBackend",
            ("planner", "use_wisdom"),
            "FFTW through pyFFTW: planned per image shape, wisdom cached per machine",
        ),
        BackendInfo(
            "numpy",
            "scanner.features.backends.pocketfft:NumpyBackend",
            (),
            "numpy's pocketfft: no planning, nothing beyond numpy",
        ),
        BackendInfo(
            "scipy", "scanner.features.backends.scipy_fft:SciPyBackend", (), "SciPy's pocketfft (optional: scipy)"
        ),
        BackendInfo(
            "mkl", "scanner.features.backends.mkl:MKLBackend", (), "Intel MKL through mkl_fft (optional: mkl_fft)"
        ),
    )
}
BackendName = Literal["fftw", "numpy", "scipy", "mkl"]
assert get_args(BackendName) == tuple(BACKENDS)
DEFAULT_BACKEND: BackendName = "fftw"

# FFTW's planner efforts (an option of the fftw backend only). "auto" plans a new image size at once
# (FFTW_ESTIMATE) and measures it (FFTW_MEASURE) once its transforms have taken long enough to pay for that
# (fftw.AUTO_MEASURE_AFTER): a collection of many sizes is not held up by a second of planning per size.
PlannerEffort = Literal["auto", "estimate", "measure", "patient", "exhaustive"]
PLANNER_EFFORTS: tuple[str, ...] = get_args(PlannerEffort)
DEFAULT_PLANNER: PlannerEffort = "auto"
# What "auto" settles on for a size it sees often: what the benchmarks time.
STEADY_PLANNER: PlannerEffort = "measure"

REAL_DTYPES = {"double": np.float64, "single": np.float32}


class Transform(ABC):
    """A planned transform of P (H, W) real planes to their (H, W//2 + 1) half spectra: the three colour
    planes of an image (P = 3), or a batch of small planes (``FFTBackend.batch``).

    Write the input into ``pixels`` (P, H, W); after ``execute()`` the half
    spectra are in ``spectrum`` (complex), which may share memory with
    ``pixels``; ``interleaved`` is the same memory as one flat run of (real,
    imaginary) pairs, plane after plane and row after row (W//2 + 1 pairs a row).
    ``rows`` is the C-contiguous (P, H, S) array, S >= W, whose first W columns are
    ``pixels`` (an in-place transform pads its rows): compiled loops write through it,
    since a loop over a strided view does not vectorise (4 times slower at 256 x 256).
    """

    height: int
    width: int
    pixels: np.ndarray
    rows: np.ndarray
    spectrum: np.ndarray
    interleaved: np.ndarray

    @abstractmethod
    def execute(self) -> None: ...

    @property
    def nbytes(self) -> int:
        """The memory its buffers hold (the input's padded rows, and the spectrum where it has its own)."""
        rows, spectrum = self.rows, self.spectrum
        return int(rows.nbytes + (0 if np.may_share_memory(rows, spectrum) else spectrum.nbytes))


class OutOfPlaceTransform(Transform):
    """A transform with an input buffer and a half-spectrum buffer of its own (libraries with no
    in-place real transform): subclasses give `execute`, writing `spectrum` from `pixels`."""

    def __init__(self, height: int, width: int, dtype: np.dtype, planes: int = 3) -> None:
        self.height = height
        self.width = width
        self.pixels = np.zeros((planes, height, width), dtype=dtype)
        self.rows = self.pixels
        self.spectrum = np.empty((planes, height, width // 2 + 1), dtype=np.result_type(dtype, np.complex64))
        self.interleaved = self.spectrum.view(dtype).reshape(-1)


# What one cache of per-shape buffers may keep beyond its newest entry. Eight 1024 x 1024 plans (float32,
# 12.6 MB each) fit; eight plans of 12-megapixel photos in both orientations kept 1.2 GB in every worker.
CACHE_BYTES = 128 << 20


def cached_nbytes(value: Any) -> int:
    """The memory of a cached value's arrays: an array's, or what a value with `nbytes` (a Transform) says."""
    if isinstance(value, tuple):
        return sum(cached_nbytes(v) for v in value)
    return int(getattr(value, "nbytes", 0))


class ShapeCache(OrderedDict[tuple[int, int], Any]):
    """Per image shape objects (plans, buffers): the least recently used dropped beyond `size` entries, or
    while the entries' arrays hold more than `max_bytes` (the newest is always kept)."""

    def __init__(self, size: int = 8, max_bytes: int = CACHE_BYTES) -> None:
        super().__init__()
        self.size = size
        self.max_bytes = max_bytes

    def get_or_make(self, height: int, width: int, make: Any) -> Any:
        key = (height, width)
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
            return value
        self.keep(key, make(height, width))
        return self[key]

    def keep(self, key: tuple[int, int], value: Any) -> None:
        """Cache value under key (as the newest), then drop the oldest entries beyond the limits."""
        self[key] = value
        self.move_to_end(key)
        held = sum(cached_nbytes(v) for v in self.values())
        while len(self) > 1 and (len(self) > self.size or held > self.max_bytes):
            _, dropped = self.popitem(last=False)
            held -= cached_nbytes(dropped)


class FFTBackend(ABC):
    """Plans and caches one Transform per image shape, least recently used dropped beyond `cache_size`;
    and batches of small planes of one shape (the residual set's windows), one plan per batch size and shape."""

    name: ClassVar[str]

    def __init__(self, precision: str = DEFAULT_PRECISION, cache_size: int = 8) -> None:
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.precision = precision
        self.dtype = np.dtype(REAL_DTYPES[precision])
        self._plans = ShapeCache(cache_size)
        self._batches: dict[int, ShapeCache] = {}

    def transform(self, height: int, width: int) -> Transform:
        return self._cached(self._plans, height, width, 3)

    def batch(self, planes: int, height: int, width: int) -> Transform:
        """A transform of `planes` (H, W) planes at once."""
        return self._cached(self._batches.setdefault(planes, ShapeCache(2)), height, width, planes)

    def _cached(self, cache: ShapeCache, height: int, width: int, planes: int) -> Transform:
        plan: Transform = cache.get_or_make(height, width, lambda h, w: self._plan(h, w, planes))
        if self._replan(plan):
            del cache[(height, width)], plan  # its buffers go before the new plan's are made
            plan = self._plan(height, width, planes)
            cache.keep((height, width), plan)
        return plan

    def _replan(self, plan: Transform) -> bool:
        """Whether a cached plan is to be made again, better, before its next use (FFTW's "auto")."""
        return False

    @property
    def planned_shapes(self) -> list[tuple[int, int]]:
        return list(self._plans)

    @abstractmethod
    def _plan(self, height: int, width: int, planes: int = 3) -> Transform: ...

    def describe(self) -> str:
        return self.name


def check_backend(name: str, options: Mapping[str, Any]) -> BackendInfo:
    """The registered backend `name`; InputError for an unknown name or an option it does not take."""
    info = BACKENDS.get(name)
    if info is None:
        raise InputError(f"unknown FFT backend {name!r}; choose from {', '.join(BACKENDS)}")
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        allowed = ", ".join(info.options) or "none"
        raise InputError(f"the {name} backend has no option {', '.join(unknown)} (its options: {allowed})")
    return info


def backend_options(name: str, **candidates: Any) -> dict[str, Any]:
    """Of the options a caller has for every backend (the planner, ...), those backend `name` takes."""
    info = check_backend(name, {})
    return {key: value for key, value in candidates.items() if key in info.options}


def backend_class(name: str) -> type[FFTBackend]:
    """The class of the registered backend `name`, its library imported now; InputError saying what to
    install when the library is missing."""
    info = check_backend(name, {})
    module, _, cls = info.target.partition(":")
    try:
        backend: type[FFTBackend] = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise InputError(
            f"the {name} FFT backend needs {exc.name or 'a library'}, which is not installed "
            f"(pip install {exc.name}); or choose another backend"
        ) from None
    return backend


def available_backends() -> list[str]:
    """The registered backends whose libraries can be imported here."""
    found = []
    for name in BACKENDS:
        try:
            backend_class(name)
        except InputError:
            continue
        found.append(name)
    return found


def make_backend(name: str, precision: str = DEFAULT_PRECISION, **options: Any) -> FFTBackend:
    """A backend by name, with its own options (e.g. planner for fftw); the library is imported now."""
    check_backend(name, options)
    return backend_class(name)(precision, **options)
