"""The machine a report was measured on: CPU and its SIMD, usable cores, memory, library versions."""

from __future__ import annotations

import ctypes
import glob
import os
import platform
from pathlib import Path

import cv2
import numpy as np

from scanner.core.version import __version__


def fftw_build() -> str:
    """FFTW's own version string (it names the SIMD it was built with), as pyfftw loads it."""
    from scanner.features.backends.fftw import pyfftw  # loaded without interfaces the backend never uses

    libs = Path(pyfftw.__file__ or ".").parent.parent / "pyfftw.libs"
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

    from scanner.features.backends.fftw import pyfftw  # loaded without interfaces the backend never uses

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
