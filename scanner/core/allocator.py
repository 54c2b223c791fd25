"""glibc malloc settings for a process that measures images: freed image buffers stay mapped.

Every decoded image is a fresh array of a few hundred kB to tens of MB, and OpenCV
allocates a second buffer of the same size while it decodes. By default glibc hands
blocks that large back to the system when they are freed (it trims the top of the heap
once over twice its dynamic mmap threshold), so the next image faults the same memory
in again, page by page: at 1024 x 1024 about 1,500 minor page faults an image, and
on the virtual machines measured here (benchmarks/malloc_settings.py) 10 to 15% of
the time of read, decode and measure. With blocks up to 64 MB taken from the heap and
up to 256 MB of freed heap kept, the next image reuses the pages: no fault at all, for
a few MB more resident memory.

``keep_freed_memory()`` applies the settings once per process; building an extractor
(scanner.features.extract.build_extractor) calls it, so every process that measures
(the scan's workers, Dask workers, ``scanner features``, ``scanner bench``) runs alike.
It also undoes what Dask's nanny starts its workers with, MALLOC_TRIM_THRESHOLD_=65536
(give memory back at once), which made every decoded image a fresh mapping there.
Elsewhere than glibc it does nothing, and it leaves malloc as it is when the environment
says how it should be: ``SCANNER_MALLOC=default`` (for a program that embeds scanner and
tunes its own) or a MALLOC_MMAP_THRESHOLD_ of the user's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

MMAP_THRESHOLD = 64 << 20  # blocks up to this size come from the heap, not their own mapping
TRIM_THRESHOLD = 256 << 20  # freed memory at the heap's top kept up to this size
ENVIRONMENT_VARIABLE = "SCANNER_MALLOC"

# mallopt's parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_applied: int | None = None  # the process the settings were applied in


def keep_freed_memory() -> bool:
    """Apply the settings in this process (once); False where they do not apply or the call fails."""
    global _applied
    if _applied == os.getpid():
        return True
    if not sys.platform.startswith("linux") or os.environ.get(ENVIRONMENT_VARIABLE, "") == "default":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:  # the user's own setting
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if not (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return False
    _applied = os.getpid()
    return True
