"""Identities of files and of measurements: what resume and merges compare.

``file_key`` names a file as a scan last saw it (path, size, mtime): a resumed scan
skips the files whose key the store holds. ``path_key`` names a path alone (which
shard of a distributed scan a file goes to). ``check_compatible`` says whether rows
measured one way may join rows measured another.
"""

from __future__ import annotations

import hashlib
import struct

from scanner.core.errors import StoreMismatch
from scanner.core.schema import Measurement


def _key(path: bytes, *extra: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(path + b"".join(extra), digest_size=8).digest(), "little")


def file_key(path: bytes, size: int, mtime: float) -> int:
    """64-bit identity of (path, size, mtime)."""
    return _key(path, b"\0", struct.pack("<qd", size, mtime))


def path_key(path: bytes) -> int:
    """64-bit identity of a path alone: which rows of a merge describe the same file."""
    return _key(path)


def check_compatible(what: str, found: Measurement, wanted: Measurement) -> None:
    """StoreMismatch, saying what to do, when rows measured as `found` cannot join rows measured as `wanted`."""
    differs = wanted.difference(found)
    if differs is None:
        return
    option, mine, theirs = differs
    resume, restart = (" ".join(filter(None, (option, value))) for value in (theirs, mine))
    raise StoreMismatch(
        f"{what} holds rows measured with {found.describe()}, not {wanted.describe()}: rerun with "
        f"{resume} to resume it, or pass --overwrite (or another --out) to scan with {restart}"
    )
