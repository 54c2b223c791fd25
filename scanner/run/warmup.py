"""The first run: compiling the numba kernels, said out loud, and done once before a scan's workers start.

numba compiles the kernels the first time they run and caches them on disk
(``cache=True``); later runs load them in well under a second. Compiling takes
half a minute or so, which without a word looks like a hang. Two pieces:

- ``install_compile_notice`` (scanner.features.notice; called whenever an extractor
  is built) listens to numba's documented event API in this process. The ``numba:compile`` event fires
  only when numba really compiles, never for a cache hit, so the message
  "compiling the feature kernels, first run only" is logged exactly when it is true. In a
  worker process it reaches the user through the worker's log forwarding.
- ``warm_up`` runs an extractor's kernels once on a tiny image in this process,
  through the same entry as the workers (``from_bgr``: a decoded file is BGR).
  A scan calls it while its workers start up and before it hands them any file,
  so that they load the freshly cached kernels instead of each compiling them at
  once (on many cores that is many copies of the compiler's time and memory). A stamp in the user's cache
  directory remembers that the kernels of this installation were warmed, so a
  scan pays nothing for the check afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import platform
import sys
import time

import numpy as np

from scanner.core.cachedir import cache_dir
from scanner.core.version import __version__
from scanner.features.backends.base import backend_options
from scanner.features.extract import ExtractorSpec, build_extractor
from scanner.features.notice import install_compile_notice

log = logging.getLogger(__name__)


def tiny_image(side: int = 16) -> np.ndarray:
    """A small RGB image whose channels differ (a grey one would stop before the kernels)."""
    return np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)


def _stamp_path(spec: ExtractorSpec) -> str:
    """A file named after everything the compiled kernels depend on: versions, machine, the package's sources."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # scanner/
    key = hashlib.blake2b(digest_size=12)
    for part in (__version__, sys.version, platform.machine(), repr(spec.measurement), spec.backend):
        key.update(part.encode() + b"\0")
    with contextlib.suppress(Exception):  # numba is a dependency; its version is part of the key
        key.update(importlib.metadata.version("numba").encode())
    for directory, _, names in sorted(os.walk(package)):
        for name in sorted(n for n in names if n.endswith(".py")):
            info = os.stat(os.path.join(directory, name))
            key.update(f"{name}:{info.st_mtime_ns}:{info.st_size}".encode())
    return os.path.join(cache_dir(), f"kernels-warm-{key.hexdigest()}")


def warm_up(spec: ExtractorSpec) -> bool:
    """Make sure the kernels of `spec`'s extractor are compiled and cached; True if this run compiled them.

    Does nothing when this installation already warmed them (a stamp in the cache
    directory). Otherwise runs them once here (compiling, announced, or loading
    from numba's cache) with the FFT planned at the lowest effort and no saved plans
    touched: the kernels depend on the feature set, spectrum and precision only.
    """
    stamp = _stamp_path(spec)
    if os.path.exists(stamp):
        return False
    options = backend_options(spec.backend, planner="estimate", use_wisdom=False)
    extractor = build_extractor(ExtractorSpec(spec.measurement, spec.backend, options))
    notice = install_compile_notice()
    before, began = notice.compiled, time.monotonic()
    extractor.from_bgr(tiny_image())  # as the workers measure files (decoded as BGR): the same kernels
    compiled = notice.compiled > before
    if compiled:
        log.info("kernels compiled in %.0f s", time.monotonic() - began)
    try:
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        with open(stamp, "w") as handle:
            handle.write(f"{spec.measurement.describe()}, {spec.backend}\n")
    except OSError:  # an unwritable cache: warm up again next time, nothing worse
        pass
    return compiled
