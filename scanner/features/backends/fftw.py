"""The FFTW backend (pyFFTW): one planned real 2-D transform of the three channels per image shape.

Planning is the expensive part of FFTW (FFTW_MEASURE times candidate algorithms),
so each process keeps its plans and their aligned buffers per image shape and
reuses them image after image; this also keeps glibc from mapping and unmapping
large buffers for every image. Wisdom (what the planner learned) is saved in the
user's cache directory and loaded by the next run, so planning is paid once per
machine, not once per run.

The default effort, "auto", measures a size only once it has earned it. Measuring costs
0.3 to 2.7 s a size here (256 x 256 to 1013 x 1019) and makes each transform 1.0 to 2.6
times faster than FFTW_ESTIMATE's plan, which takes milliseconds to make. Measuring every
new size made a scan of 40 JPEGs of 40 different sizes (about 500 x 400) take 27.5 s
against 3.3 s for 40 of one size. So a size without saved wisdom gets an estimated plan,
and a measured one once its transforms in this process have taken AUTO_MEASURE_AFTER
seconds: a size seen once costs nothing to plan, and a size seen often loses at most
about that much before it runs at the measured speed (as with rent or buy, never much
more than twice the better of the two choices made in hindsight).
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from collections import OrderedDict
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from scanner.core.cachedir import cache_dir
from scanner.core.constants import DEFAULT_PRECISION
from scanner.core.errors import InputError
from scanner.features.backends.base import DEFAULT_PLANNER, PLANNER_EFFORTS, FFTBackend, Transform

# What pyfftw's package imports eagerly through pyfftw.interfaces when it can, and this backend never uses (it
# needs only pyfftw.FFTW, aligned arrays and wisdom): its scipy.fftpack and dask.array interfaces.
_UNUSED_INTERFACES = ("scipy.fftpack", "dask.array")


def _import_pyfftw() -> ModuleType:
    """pyfftw, without importing scipy.fftpack and dask.array for interfaces this backend never calls: they
    were 0.87 s of the 1.0 s that `import pyfftw` took (python -X importtime), in every measuring process.
    A None in sys.modules makes an import fail, so pyfftw.interfaces leaves those two out; the entries are
    removed once pyfftw is loaded, and importing either later works as ever (pyfftw.interfaces then lacks
    only its scipy_fftpack, scipy_fft and dask_fft attributes; importing those submodules still works)."""
    if "pyfftw" in sys.modules:
        return sys.modules["pyfftw"]
    blocked = [name for name in _UNUSED_INTERFACES if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import pyfftw  # noqa: F401 - loaded here, returned from sys.modules
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return sys.modules["pyfftw"]


pyfftw = _import_pyfftw()

_FLAGS = {
    "estimate": "FFTW_ESTIMATE",
    "measure": "FFTW_MEASURE",
    "patient": "FFTW_PATIENT",
    "exhaustive": "FFTW_EXHAUSTIVE",
}
_WISDOM_PARTS = ("double", "single", "longdouble")
# "auto": seconds of estimated-plan transforms of one size, in one process, after which the size is measured;
# about what measuring a size costs (0.3 s at 256 x 256, 0.9 s at 1024 x 1024, 2.7 s at 1013 x 1019).
AUTO_MEASURE_AFTER = 1.0
# The sizes whose seconds are kept (those planned first dropped beyond it).
_LEDGER_SIZE = 4096

log = logging.getLogger(__name__)


def wisdom_dir() -> Path:
    """Wisdom is only valid for one FFTW build on one kind of CPU."""
    return cache_dir() / f"fftw-wisdom-{pyfftw.__version__}-{platform.machine()}"


def load_wisdom(directory: Path | None = None) -> bool:
    """Import saved FFTW wisdom; False when there is none or it cannot be read."""
    directory = directory or wisdom_dir()
    try:
        parts = tuple((directory / f"{name}.wisdom").read_bytes() for name in _WISDOM_PARTS)
    except OSError:
        return False
    return all(pyfftw.import_wisdom(parts))


def save_wisdom(directory: Path | None = None) -> bool:
    """Write this process's FFTW wisdom atomically; False when the cache is not writable."""
    directory = directory or wisdom_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, blob in zip(_WISDOM_PARTS, pyfftw.export_wisdom(), strict=True):
            tmp = directory / f".{name}.wisdom.{os.getpid()}"
            tmp.write_bytes(blob)
            os.replace(tmp, directory / f"{name}.wisdom")
    except OSError:
        return False
    return True


class FFTWTransform(Transform):
    """An in-place FFTW r2c plan for three planes (or a batch of P), in aligned buffers.

    In place halves the working set (at 1024 x 1024 in double precision: 25 MB
    instead of 49 MB), which makes both the transform and the passes after it
    faster. Planned single-threaded: the parallelism is one process per core.

    With effort "auto": from saved wisdom when FFTW_MEASURE has planned this size before,
    else estimated and `provisional`, its transforms timed into ``ledger[key]``.
    """

    def __init__(
        self,
        height: int,
        width: int,
        dtype: np.dtype[Any],
        effort: str = DEFAULT_PLANNER,
        planes: int = 3,
        ledger: dict[Any, float] | None = None,
    ) -> None:
        self.height = height
        self.width = width
        half = width // 2 + 1
        buffer = pyfftw.zeros_aligned((planes, height, 2 * half), dtype=dtype)
        self.pixels = buffer[:, :, :width]
        self.rows = buffer
        self.spectrum = buffer.view(np.result_type(dtype, np.complex64))
        self.interleaved = buffer.reshape(-1)
        self.key = (planes, height, width)
        self.provisional = False
        self._ledger = ledger if ledger is not None else {}
        flags = (_FLAGS["measure" if effort == "auto" else effort], "FFTW_DESTROY_INPUT")
        self.new_wisdom = False  # whether planning learnt something worth saving
        try:  # from saved wisdom, at once, when this machine has planned this size before
            self._plan = self._planned(flags + ("FFTW_WISDOM_ONLY",))
        except RuntimeError:
            if effort == "auto":
                self.provisional = True
                self._plan = self._planned((_FLAGS["estimate"], "FFTW_DESTROY_INPUT"))
                return
            self.new_wisdom = True
            if effort != "estimate":
                log.info("planning FFTs for %dx%d (once per image size on this machine)", width, height)
            self._plan = self._planned(flags)

    def _planned(self, flags: tuple[str, ...]) -> Any:
        return pyfftw.FFTW(self.pixels, self.spectrum, axes=(1, 2), direction="FFTW_FORWARD", flags=flags, threads=1)

    def execute(self) -> None:
        if not self.provisional:
            self._plan.execute()
            return
        start = time.perf_counter()
        self._plan.execute()
        self._ledger[self.key] = self._ledger.get(self.key, 0.0) + time.perf_counter() - start


class FFTWBackend(FFTBackend):
    """pyFFTW plans per image shape; with an effort above "estimate", wisdom is loaded
    before the first plan and saved after each one that was not in it, so later processes plan instantly."""

    name = "fftw"

    def __init__(
        self,
        precision: str = DEFAULT_PRECISION,
        planner: str = DEFAULT_PLANNER,
        use_wisdom: bool = True,
        cache_size: int = 8,
    ) -> None:
        if planner not in PLANNER_EFFORTS:
            raise InputError(f"planner effort must be one of {', '.join(PLANNER_EFFORTS)}, not {planner!r}")
        super().__init__(precision, cache_size)
        self.planner = planner
        self.use_wisdom = use_wisdom and planner != "estimate"
        self._wisdom_loaded = False
        # "auto": seconds of estimated-plan transforms per (planes, height, width).
        self._ledger: OrderedDict[tuple[int, int, int], float] = OrderedDict()

    def _plan(self, height: int, width: int, planes: int = 3) -> Transform:
        if self.use_wisdom and not self._wisdom_loaded:
            load_wisdom()
            self._wisdom_loaded = True
        effort = self.planner
        if effort == "auto" and self._earned((planes, height, width)):
            if self.use_wisdom:
                load_wisdom()  # another process may have measured this size meanwhile
            effort = "measure"
        plan = FFTWTransform(height, width, self.dtype, effort, planes, self._ledger)
        if plan.provisional and plan.key not in self._ledger:
            self._ledger[plan.key] = 0.0
            if len(self._ledger) > _LEDGER_SIZE:
                self._ledger.popitem(last=False)
        if self.use_wisdom and plan.new_wisdom:  # a plan from saved wisdom adds nothing to save
            save_wisdom()
        return plan

    def _earned(self, key: tuple[int, int, int]) -> bool:
        """Whether the estimated plans of this size have taken long enough to measure it."""
        return self._ledger.get(key, 0.0) >= AUTO_MEASURE_AFTER

    def _replan(self, plan: Transform) -> bool:
        return isinstance(plan, FFTWTransform) and plan.provisional and self._earned(plan.key)

    def describe(self) -> str:
        return f"fftw ({self.planner})"
