"""The scan journal: an append-only, checksummed record of finished rows.

HDF5 cannot promise a usable file after a SIGKILL in the middle of a write, so a
scan never writes its store in place. Finished rows are appended to
``STORE.journal`` as records (magic, kind, length, CRC-32, payload), each
written with one write() and fsync()ed before it counts as written. After a
crash the journal is read back up to the last whole record and the torn tail,
if any, is cut off. The store is then rebuilt from the old store plus the
journal into a temporary file renamed over it (scanner.store), and the journal
is retired. The journal's first record names it (a random id) and the store
records the id of the last journal merged into it, so a crash between the
rename and retiring the journal cannot merge the same rows twice.
"""

from __future__ import annotations

import json
import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from scanner.features import FEATURE_NAMES
from scanner.store import Rows, fsync_directory

_MAGIC = b"SCJ1"
_HEAD = struct.Struct("<4scII")  # magic, kind, payload length, CRC-32 of the payload
_HEADER, _ROWS = b"H", b"R"
_NUMBERS = (
    ("root", np.int32),
    ("height", np.int64),
    ("width", np.int64),
    ("jpeg_quality", np.int64),
    ("size", np.int64),
    ("mtime", np.float64),
)
_TEXTS = ("status", "error", "format", "jpeg_subsampling")


def encode_rows(rows: Rows) -> bytes:
    """Rows as a record payload: the count, the numeric columns raw, the strings NUL-joined."""
    n = len(rows)
    parts = [struct.pack("<I", n), np.ascontiguousarray(rows.features, np.float64).tobytes()]
    parts += [np.ascontiguousarray(getattr(rows, name), dtype).tobytes() for name, dtype in _NUMBERS]
    texts = [b"\0".join(rows.relpath)]
    texts += [b"\0".join(s.encode("utf-8", "surrogateescape") for s in getattr(rows, name)) for name in _TEXTS]
    for blob in texts:
        parts += [struct.pack("<I", len(blob)), blob]
    return b"".join(parts)


def decode_rows(payload: bytes) -> Rows:
    (n,) = struct.unpack_from("<I", payload)
    pos = 4
    width = len(FEATURE_NAMES)
    features = np.frombuffer(payload, np.float64, n * width, pos).reshape(n, width).copy()
    pos += 8 * n * width
    numbers = {}
    for name, dtype in _NUMBERS:
        numbers[name] = np.frombuffer(payload, dtype, n, pos).copy()
        pos += np.dtype(dtype).itemsize * n
    texts = []
    for _ in range(1 + len(_TEXTS)):
        (length,) = struct.unpack_from("<I", payload, pos)
        blob = payload[pos + 4 : pos + 4 + length]
        pos += 4 + length
        texts.append(blob.split(b"\0") if n else [])
    relpath, *columns = texts
    strings = {name: [b.decode("utf-8", "surrogateescape") for b in col] for name, col in zip(_TEXTS, columns)}
    return Rows(relpath=relpath, features=features, **numbers, **strings)


def _record(kind: bytes, payload: bytes) -> bytes:
    return _HEAD.pack(_MAGIC, kind, len(payload), zlib.crc32(payload)) + payload


def _records(handle: BinaryIO) -> Iterator[tuple[bytes, bytes, int]]:
    """(kind, payload, end offset) of each whole, intact record; stops at the first torn one."""
    pos = 0
    while True:
        head = handle.read(_HEAD.size)
        if len(head) < _HEAD.size:
            return
        magic, kind, length, crc = _HEAD.unpack(head)
        if magic != _MAGIC:
            return
        payload = handle.read(length)
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        pos += _HEAD.size + length
        yield kind, payload, pos


class Journal:
    """An open journal, appended to by the one scan that holds the store's lock."""

    def __init__(self, path: str, header: dict, fd: int, rows: int) -> None:
        self.path = path
        self.header = header
        self.rows = rows
        self._fd = fd

    @property
    def id(self) -> str:
        return self.header["journal_id"]

    @classmethod
    def create(cls, path: str, header: dict) -> Journal:
        """A new, empty journal (atomically replacing any old one) with this header."""
        header = dict(header, journal_id=uuid.uuid4().hex)
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(_record(_HEADER, json.dumps(header).encode()))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_directory(path)
        return cls(path, header, os.open(path, os.O_WRONLY | os.O_APPEND), 0)

    @classmethod
    def recover(cls, path: str) -> Journal | None:
        """Reopen a journal after a stop, its torn tail (if any) cut off.

        None when there is no journal or no usable header (it never got started).
        """
        header = None
        rows = good = 0
        try:
            with open(path, "rb") as handle:
                for kind, payload, end in _records(handle):
                    if kind == _HEADER and header is None:
                        header = json.loads(payload)
                    elif kind == _ROWS and header is not None:
                        (n,) = struct.unpack_from("<I", payload)
                        rows += n
                    else:
                        break
                    good = end
        except FileNotFoundError:
            return None
        if header is None:
            return None
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        if good < os.fstat(fd).st_size:
            os.ftruncate(fd, good)
            os.fsync(fd)
        return cls(path, header, fd, rows)

    @staticmethod
    def committed_rows(path: str) -> int:
        """Rows durably in a journal on disk (read only; 0 when there is none)."""
        try:
            with open(path, "rb") as handle:
                return sum(
                    struct.unpack_from("<I", payload)[0] for kind, payload, _ in _records(handle) if kind == _ROWS
                )
        except FileNotFoundError:
            return 0

    def read_rows(self) -> Iterator[Rows]:
        """The committed rows, batch by batch as written (constant memory)."""
        with open(self.path, "rb") as handle:
            for kind, payload, _ in _records(handle):
                if kind == _ROWS:
                    yield decode_rows(payload)

    def append(self, rows: Rows) -> None:
        """Write one batch durably: when this returns the rows survive a crash."""
        if not len(rows):
            return
        record = memoryview(_record(_ROWS, encode_rows(rows)))
        while record:
            record = record[os.write(self._fd, record) :]
        os.fsync(self._fd)
        self.rows += len(rows)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def retire(self) -> None:
        """Delete the journal once its rows are safely in the store."""
        self.close()
        os.unlink(self.path)
        fsync_directory(self.path)
