"""The scan journal: an append-only, checksummed record of finished rows.

HDF5 cannot promise a usable file after a SIGKILL in the middle of a write, so a
scan never writes its store in place. Finished rows are appended to
``STORE.journal`` as records (magic, kind, length, CRC-32, payload), each
written with one write() and fsync()ed before it counts as written. After a
crash the journal is read back up to the last whole record and the torn tail,
if any, is cut off. The store is then rebuilt from the old store plus the
journal into a temporary file renamed over it (scanner.store.hdf5), and the journal
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
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import numpy as np

from scanner.core.errors import InputError
from scanner.core.schema import COLUMN_BY_NAME, COLUMN_NAMES, Measurement, Rows
from scanner.io import safeio
from scanner.store.hdf5 import fsync_directory

_MAGIC = b"SCJ1"
_HEAD = struct.Struct("<4scII")  # magic, kind, payload length, CRC-32 of the payload
_HEADER, _ROWS = b"H", b"R"

# The order in which a rows record holds the columns: fixed-width ones as raw
# little-endian arrays, variable ones as a length and their values joined by NUL
# (which no file name and no message holds). A journal's header names its
# layout; journals of store schema 1 name none and used this one.
_LAYOUT_V1 = (
    "features",
    "root",
    "height",
    "width",
    "jpeg_quality",
    "size",
    "mtime",
    "path",
    "status",
    "error",
    "format",
    "jpeg_subsampling",
)
LAYOUT: tuple[str, ...] = (
    *(n for n in COLUMN_NAMES if not COLUMN_BY_NAME[n].variable),
    *(n for n in COLUMN_NAMES if COLUMN_BY_NAME[n].variable),
)


def _fixed_dtype(name: str) -> np.dtype:
    return COLUMN_BY_NAME[name].dtype.newbyteorder("<")


def encode_rows(rows: Rows, layout: Sequence[str] = LAYOUT) -> bytes:
    """Rows as a record payload: the count, then each column of the layout."""
    parts = [struct.pack("<I", len(rows))]
    for name in layout:
        column = rows[name]
        if COLUMN_BY_NAME[name].variable:
            items = column.tolist()
            # NUL is a whole character in UTF-8: joining then encoding equals encoding then joining.
            blob = (
                b"\0".join(items)
                if COLUMN_BY_NAME[name].kind == "bytes"
                else "\0".join(items).encode("utf-8", "surrogateescape")
            )
            parts += [struct.pack("<I", len(blob)), blob]
        else:
            parts.append(np.ascontiguousarray(column, _fixed_dtype(name)).tobytes())
    return b"".join(parts)


def decode_rows(payload: bytes, width: int, layout: Sequence[str] = LAYOUT) -> Rows:
    """The rows of a record payload written with this layout and feature width."""
    (n,) = struct.unpack_from("<I", payload)
    pos = 4
    columns: dict[str, np.ndarray] = {}
    for name in layout:
        column = COLUMN_BY_NAME[name]
        if column.variable:
            (length,) = struct.unpack_from("<I", payload, pos)
            blob = payload[pos : pos + 4 + length][4:]
            pos += 4 + length
            texts: list = (
                (blob.split(b"\0") if column.kind == "bytes" else blob.decode("utf-8", "surrogateescape").split("\0"))
                if n
                else []
            )
            columns[name] = np.array(texts, dtype=object) if texts else np.empty(0, dtype=object)
        else:
            count = n * width if column.kind == "features" else n
            dtype = _fixed_dtype(name)
            values = np.frombuffer(payload, dtype, count, pos).astype(column.dtype)
            columns[name] = values.reshape(n, width) if column.kind == "features" else values
            pos += dtype.itemsize * count
    return Rows(columns, width)


def _record(kind: bytes, payload: bytes) -> bytes:
    return _HEAD.pack(_MAGIC, kind, len(payload), zlib.crc32(payload)) + payload


def _records(handle: BinaryIO) -> Iterator[tuple[bytes, bytes, int]]:
    """(kind, payload, end offset) of each whole, intact record; stops at the first torn one."""
    pos = 0
    size = os.fstat(handle.fileno()).st_size
    while True:
        head = handle.read(_HEAD.size)
        if len(head) < _HEAD.size:
            return
        magic, kind, length, crc = _HEAD.unpack(head)
        if magic != _MAGIC or pos + _HEAD.size + length > size:  # a length past the end: torn, not read
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
        return str(self.header["journal_id"])

    @property
    def measurement(self) -> Measurement:
        return Measurement.from_attrs(self.header)

    @property
    def layout(self) -> tuple[str, ...]:
        return tuple(self.header.get("layout", _LAYOUT_V1))

    @classmethod
    def create(cls, path: str, header: dict) -> Journal:
        """A new, empty journal (atomically replacing any old one) with this header."""
        header = dict(header, journal_id=uuid.uuid4().hex, layout=list(LAYOUT))
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "wb") as handle:
                handle.write(_record(_HEADER, json.dumps(header).encode()))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:  # Ctrl-C, a full disk: no half-made journal left behind
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
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
            fd = safeio.open_regular(path)  # never a FIFO planted where the journal should be
        except FileNotFoundError:
            return None
        except safeio.NotRegularFile as exc:
            raise InputError(f"{path} is {exc.kind}, not a scan journal: remove it") from None
        with os.fdopen(fd, "rb") as handle:
            for kind, payload, end in _records(handle):
                if kind == _HEADER and header is None:
                    header = json.loads(payload)
                elif kind == _ROWS and header is not None:
                    (n,) = struct.unpack_from("<I", payload)
                    rows += n
                else:
                    break
                good = end
        if header is None:
            return None
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        if good < os.fstat(fd).st_size:
            os.ftruncate(fd, good)
            os.fsync(fd)
        return cls(path, header, fd, rows)

    @staticmethod
    def header_of(path: str) -> dict | None:
        """A journal's header, read only (None when there is none or it never got started)."""
        try:
            with open(path, "rb") as handle:
                for kind, payload, _ in _records(handle):
                    return json.loads(payload) if kind == _HEADER else None
        except (FileNotFoundError, ValueError):
            return None
        return None

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
        width, layout = self.measurement.n_features, self.layout
        with open(self.path, "rb") as handle:
            for kind, payload, _ in _records(handle):
                if kind == _ROWS:
                    yield decode_rows(payload, width, layout)

    def append(self, rows: Rows) -> None:
        """Write one batch durably: when this returns the rows survive a crash."""
        if not len(rows):
            return
        record = memoryview(_record(_ROWS, encode_rows(rows, self.layout)))
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
