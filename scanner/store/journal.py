"""The scan journal: an append-only, checksummed record of finished rows.

HDF5 cannot promise a usable file after a SIGKILL in the middle of a write, so a
scan never writes its store in place. Finished rows are appended to
``STORE.journal`` as checksummed records (scanner.store.records: magic, kind,
length, CRC-32, payload), each written with one write() and fsync()ed before it
counts as written. After a crash the journal is read back up to the last whole
record and the torn tail, if any, is cut off. The store is then rebuilt from the
old store plus the journal into a temporary file renamed over it
(scanner.store.hdf5), and the journal is retired. The journal's first record
names it (a random id) and the store records the id of the last journal merged
into it, so a crash between the rename and retiring the journal cannot merge the
same rows twice.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

from scanner.core.errors import InputError
from scanner.core.schema import Measurement, Rows
from scanner.io import safeio
from scanner.store.hdf5 import fsync_directory
from scanner.store.records import (
    HEADER_RECORD,
    LAYOUT,
    ROWS_RECORD,
    decode_rows,
    encode_record,
    encode_rows,
    read_records,
    row_count,
)

# Journals of store schema 1 name no layout in their header: their rows records used this one.
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


class Journal:
    """An open journal, appended to by the one scan that holds the store's lock."""

    def __init__(self, path: str, header: dict[str, Any], fd: int, rows: int) -> None:
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
    def create(cls, path: str, header: dict[str, Any]) -> Journal:
        """A new, empty journal (atomically replacing any old one) with this header."""
        header = dict(header, journal_id=uuid.uuid4().hex, layout=list(LAYOUT))
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "wb") as handle:
                handle.write(encode_record(HEADER_RECORD, json.dumps(header).encode()))
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
            for kind, payload, end in read_records(handle):
                if kind == HEADER_RECORD and header is None:
                    header = json.loads(payload)
                elif kind == ROWS_RECORD and header is not None:
                    rows += row_count(payload)
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
    def header_of(path: str) -> dict[str, Any] | None:
        """A journal's header, read only (None when there is none or it never got started)."""
        try:
            with open(path, "rb") as handle:
                for kind, payload, _ in read_records(handle):
                    return json.loads(payload) if kind == HEADER_RECORD else None
        except (FileNotFoundError, ValueError):
            return None
        return None

    @staticmethod
    def committed_rows(path: str) -> int:
        """Rows durably in a journal on disk (read only; 0 when there is none)."""
        try:
            with open(path, "rb") as handle:
                return sum(row_count(payload) for kind, payload, _ in read_records(handle) if kind == ROWS_RECORD)
        except FileNotFoundError:
            return 0

    def read_rows(self) -> Iterator[Rows]:
        """The committed rows, batch by batch as written (constant memory)."""
        width, layout = self.measurement.n_features, self.layout
        with open(self.path, "rb") as handle:
            for kind, payload, _ in read_records(handle):
                if kind == ROWS_RECORD:
                    yield decode_rows(payload, width, layout)

    def append(self, rows: Rows) -> None:
        """Write one batch durably: when this returns the rows survive a crash."""
        if not len(rows):
            return
        record = memoryview(encode_record(ROWS_RECORD, encode_rows(rows, self.layout)))
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
