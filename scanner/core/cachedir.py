"""Where scanner keeps per-machine state (FFT wisdom, the warm-up stamp). Light: platformdirs only."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """$SCANNER_CACHE_DIR, else the platform's user cache (platformdirs: $XDG_CACHE_HOME/scanner or
    ~/.cache/scanner on Linux, ~/Library/Caches/scanner on macOS)."""
    explicit = os.environ.get("SCANNER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_cache_dir("scanner", appauthor=False))
