"""Facts every layer shares: statuses, exit codes, spectrum modes, precisions, limits.

This module imports nothing heavy, so that light commands (``--help``, ``info``,
``export``) and the option declarations of the command line can use it without
loading numba, pyFFTW or OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Literal, get_args


class Status(StrEnum):
    """What became of one file. ``ok`` is the only status with features (docs/method.md says what each means)."""

    OK = "ok"
    UNREADABLE = "unreadable"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    GRAYSCALE = "grayscale"
    TOO_SMALL = "too_small"
    TOO_LARGE = "too_large"
    NOT_IMAGE = "not_image"
    VANISHED = "vanished"
    PERMISSION = "permission"


STATUSES: tuple[str, ...] = tuple(Status)

# Rows with these statuses are tried again when a scan resumes: the cause may have
# cleared up by itself (permissions fixed, a file put back).
RETRY_STATUSES: frozenset[str] = frozenset({Status.VANISHED, Status.PERMISSION})


class ExitCode(IntEnum):
    """Exit codes of every command."""

    OK = 0  # done; every file usable
    SOME_UNUSABLE = 1  # done, but some files could not be used (each reported with a reason)
    USAGE = 2  # a bad option, argument or input file
    FATAL = 3  # the work cannot be done (for example an output that cannot be written)
    INTERRUPTED = 130  # Ctrl-C; what was finished is kept


# Fixed choices are declared as Literal types (the command line's options use
# them directly); the tuples of names derive from them.
SpectrumMode = Literal["log", "modulus"]
SPECTRUM_MODES: tuple[str, ...] = get_args(SpectrumMode)
DEFAULT_SPECTRUM: SpectrumMode = "log"

Precision = Literal["double", "single"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
DEFAULT_PRECISION: Precision = "single"

# Symbolic links inside scanned directories are not followed unless asked (docs/hostile-input.md says why).
DEFAULT_FOLLOW_LINKS = False
DEFAULT_MAX_PIXELS = 100_000_000
# Files are never read past this many bytes: more than any image of DEFAULT_MAX_PIXELS
# pixels stored uncompressed at 8 bits a channel with alpha (400 MB) needs.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MIN_SIDE = 8
DEFAULT_FILE_TIMEOUT = 60.0  # seconds one file may take to be read and decoded before its worker is stopped


@dataclass(frozen=True)
class ReadLimits:
    """The bounds on reading one image: pixels (from the header, before decoding) and bytes (before reading)."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES


DEFAULT_LIMITS = ReadLimits()
