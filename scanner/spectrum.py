"""Cached pyFFTW plans: one real 2-D transform of the three channels per image shape.

Planning is the expensive part of FFTW (FFTW_MEASURE times candidate algorithms),
so each process keeps its plans and their aligned buffers per image shape and
reuses them image after image; this also keeps glibc from mapping and unmapping
large buffers for every image. Wisdom (what the planner learned) is saved in the
user's cache directory and loaded by the next run, so planning is paid once per
machine, not once per run.
"""

from __future__ import annotations

import os
import platform
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyfftw

PLANNER_EFFORTS = ("estimate", "measure", "patient", "exhaustive")
_FLAGS = {
    "estimate": "FFTW_ESTIMATE",
    "measure": "FFTW_MEASURE",
    "patient": "FFTW_PATIENT",
    "exhaustive": "FFTW_EXHAUSTIVE",
}
_WISDOM_PARTS = ("double", "single", "longdouble")


def cache_dir() -> Path:
    """Where scanner keeps per-machine state: $SCANNER_CACHE_DIR, else the XDG cache."""
    explicit = os.environ.get("SCANNER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "scanner"


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
        for name, blob in zip(_WISDOM_PARTS, pyfftw.export_wisdom()):
            tmp = directory / f".{name}.wisdom.{os.getpid()}"
            tmp.write_bytes(blob)
            os.replace(tmp, directory / f"{name}.wisdom")
    except OSError:
        return False
    return True


class ChannelTransform:
    """Aligned buffers and an in-place FFTW r2c plan for three float64 planes.

    Write the (3, H, W) input into `pixels`; after `execute()` the half spectra
    (3, H, W//2 + 1), complex128, are in `spectrum`, which shares its memory
    (`interleaved` is the same memory as one flat run of real, imaginary pairs).
    In place halves the working set (at 1024 x 1024: 25 MB instead of 49 MB),
    which makes both the transform and the passes after it faster. `values`
    is a separate float32 (3, H, W//2 + 1) buffer for per-bin values.

    The transform runs in double precision: in single precision its rounding
    alone moves the log-mode features of a 1024 x 1024 photograph by up to 5e-5
    (relative), while double keeps them within 1e-7 of a float64 reference.
    """

    def __init__(self, height: int, width: int, effort: str = "measure") -> None:
        if effort not in _FLAGS:
            raise ValueError(f"planner effort must be one of {', '.join(PLANNER_EFFORTS)}")
        self.height = height
        self.width = width
        half = width // 2 + 1
        buffer = pyfftw.empty_aligned((3, height, 2 * half), dtype=np.float64)
        self.pixels = buffer[:, :, :width]
        self.spectrum = buffer.view(np.complex128)
        self.interleaved = buffer.reshape(-1)
        self.values = pyfftw.empty_aligned((3, height, half), dtype=np.float32)
        self._plan = pyfftw.FFTW(
            self.pixels,
            self.spectrum,
            axes=(1, 2),
            direction="FFTW_FORWARD",
            flags=(_FLAGS[effort], "FFTW_DESTROY_INPUT"),
            threads=1,
        )

    def execute(self) -> None:
        self._plan.execute()


class PlanCache:
    """Per-process plans by image shape, least recently used dropped beyond `size`.

    With effort above "estimate", wisdom is loaded before the first plan and
    saved after each new plan, so later processes plan instantly.
    """

    def __init__(self, effort: str = "measure", size: int = 8, use_wisdom: bool = True) -> None:
        if effort not in _FLAGS:
            raise ValueError(f"planner effort must be one of {', '.join(PLANNER_EFFORTS)}")
        self.effort = effort
        self.size = size
        self.use_wisdom = use_wisdom and effort != "estimate"
        self._plans: OrderedDict[tuple[int, int], ChannelTransform] = OrderedDict()
        self._wisdom_loaded = False

    def get(self, height: int, width: int) -> ChannelTransform:
        key = (height, width)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan
        if self.use_wisdom and not self._wisdom_loaded:
            load_wisdom()
            self._wisdom_loaded = True
        plan = ChannelTransform(height, width, self.effort)
        if self.use_wisdom:
            save_wisdom()
        self._plans[key] = plan
        if len(self._plans) > self.size:
            self._plans.popitem(last=False)
        return plan
