"""Checksummed records: the framing shared by the scan journal (scanner.store.journal) and part files
(scanner.store.parts).

A record is a head (magic, kind, payload length, CRC-32 of the payload) followed by
its payload, written with one write(). Reading stops at the first record that is
not whole and intact (the torn tail a crash leaves, damaged storage), so a reader
sees exactly the records that were written whole. Two kinds of record: a header
(JSON) and a batch of rows (``encode_rows``: the count, then each column of a
layout, which the header names).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import numpy as np

from scanner.core.schema import COLUMN_BY_NAME, COLUMN_NAMES, Rows

_MAGIC = b"SCJ1"
_HEAD = struct.Struct("<4scII")  # magic, kind, payload length, CRC-32 of the payload
HEADER_RECORD, ROWS_RECORD = b"H", b"R"  # the kinds of record: a JSON header, a batch of rows

# The order in which a rows record holds the columns: fixed-width ones as raw
# little-endian arrays, variable ones as a length and their values joined by NUL
# (which no file name and no message holds). A journal's or part file's header
# names the layout its rows records were written with.
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
    """The rows of a record payload written with this layout and feature width; columns the layout lacks (a
    journal or part file of an older scanner) get their default values."""
    (n,) = struct.unpack_from("<I", payload)
    pos = 4
    columns: dict[str, np.ndarray] = {}
    for name in layout:
        column = COLUMN_BY_NAME[name]
        if column.variable:
            (length,) = struct.unpack_from("<I", payload, pos)
            blob = payload[pos : pos + 4 + length][4:]
            pos += 4 + length
            texts: list[bytes] | list[str] = (
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
    for name in COLUMN_NAMES:  # a layout of an older scanner lacks the newer columns: their defaults
        if name not in columns:
            columns[name] = COLUMN_BY_NAME[name].filled(n, width)
    return Rows(columns, width)


def encode_record(kind: bytes, payload: bytes) -> bytes:
    """A whole record (head and payload), to be written with one write()."""
    return _HEAD.pack(_MAGIC, kind, len(payload), zlib.crc32(payload)) + payload


def read_records(handle: BinaryIO) -> Iterator[tuple[bytes, bytes, int]]:
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


def row_count(payload: bytes) -> int:
    """How many rows a rows record's payload holds (read from its first field, nothing decoded)."""
    (n,) = struct.unpack_from("<I", payload)
    return int(n)
