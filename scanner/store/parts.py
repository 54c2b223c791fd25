"""Part files: the rows of one task of a distributed scan, written by the worker that measured them.

A distributed scan's workers never send rows back through the scheduler: each
task writes its shard's rows to a part file in ``STORE.h5.parts/`` (next to the
store, on storage that the client and every worker see at the same path) and
returns only counts. The client, which alone holds the store's lock, merges the
part files into the store at checkpoints and at the end (scanner.store.merge), and
a scan that starts on a store with part files left by a stopped one merges them
first, so a part file is done work that is never measured again.

A part file uses the journal's checksummed records (scanner.store.records): a header
record (how the rows were measured, the roots their paths are relative to, the
shard's id, the row count and the counts per status) and one record of rows. It
is written whole to a temporary name, fsynced and renamed, so a part file that
exists is complete; one whose records do not check out (damaged storage) is set
aside as ``NAME.damaged`` and its files are measured again.

The shard id derives from the shard's contents (its sorted paths, sizes and
mtimes, and the measurement), so the same shard always gets the same file name.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from scanner.core.schema import SCHEMA_VERSION, Measurement, Rows
from scanner.core.version import __version__
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

SUFFIX = ".part"
# The store schemas whose part files merge: each names its layout, and a schema-2 part (from before file
# hashes) reads with sha256 '' (scanner.store.records.decode_rows).
PART_SCHEMAS = (2, SCHEMA_VERSION)
TIMED_OUT = "timed-out"  # the subdirectory of markers left by workers stopped on a file that hung
RUNNING = "running"  # the subdirectory of markers of tasks that started and have not finished


class PartError(Exception):
    """A part file that cannot be read back whole."""


def parts_path(out: str) -> str:
    """The directory of a store's part files."""
    return f"{out}.parts"


def shard_id(paths: Sequence[bytes], sizes: Sequence[int], mtimes: Sequence[float], measurement: Measurement) -> str:
    """A shard's identity from its contents: its files (in sorted order) and how they are measured."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(measurement.attrs(), sort_keys=True).encode())
    for path, size, mtime in sorted(zip(paths, sizes, mtimes, strict=True)):
        digest.update(struct.pack("<Iqd", len(path), size, mtime))
        digest.update(path)
    return digest.hexdigest()


def part_file(directory: str, shard: str) -> str:
    return os.path.join(directory, shard + SUFFIX)


def list_parts(directory: str) -> list[str]:
    """The part files in a directory, by name (none when there is no directory)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return [os.path.join(directory, n) for n in sorted(names) if n.endswith(SUFFIX) and not n.startswith(".")]


def write_part(
    path: str, rows: Rows, measurement: Measurement, roots: Sequence[str], shard: str, **extra: Any
) -> dict[str, Any]:
    """Write a part file atomically (temporary name, fsync, rename, fsync of the directory); its header."""
    header = {
        "part": 1,
        "shard": shard,
        **measurement.attrs(),
        "schema_version": SCHEMA_VERSION,
        "tool_version": __version__,
        "roots": list(roots),
        "layout": list(LAYOUT),
        "rows": len(rows),
        "counts": dict(Counter(rows.status.tolist())),
        "host": socket.gethostname(),
        **extra,
    }
    blob = encode_record(HEADER_RECORD, json.dumps(header).encode())
    blob += encode_record(ROWS_RECORD, encode_rows(rows, LAYOUT))
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_directory(path)
    return header


def read_part_header(path: str) -> dict[str, Any]:
    """A part file's header (PartError when it has none)."""
    try:
        with open(path, "rb") as handle:
            for kind, payload, _ in read_records(handle):
                if kind == HEADER_RECORD:
                    header: dict[str, Any] = json.loads(payload)
                    return header
                break
    except (OSError, ValueError) as exc:
        raise PartError(f"{path}: {exc}") from None
    raise PartError(f"{path}: not a part file (no header record)")


@dataclass
class Part:
    """A part file checked whole: its header and its rows (read again on each iteration)."""

    path: str
    header: dict[str, Any]

    @classmethod
    def open(cls, path: str) -> Part:
        """Read a part file's header and check that its records hold exactly the rows it announces."""
        header = read_part_header(path)
        rows = 0
        try:
            with open(path, "rb") as handle:
                for kind, payload, _ in read_records(handle):
                    if kind == ROWS_RECORD:
                        rows += row_count(payload)
        except OSError as exc:
            raise PartError(f"{path}: {exc}") from None
        if rows != header.get("rows"):
            raise PartError(f"{path}: holds {rows} whole rows of the {header.get('rows')} it announces")
        return cls(path, header)

    @property
    def rows(self) -> int:
        return int(self.header["rows"])

    @property
    def roots(self) -> list[str]:
        return list(self.header["roots"])

    @property
    def measurement(self) -> Measurement:
        return Measurement.from_attrs(self.header)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.header.get("counts", {}))

    def batches(self) -> Iterator[Rows]:
        width, layout = self.measurement.n_features, tuple(self.header["layout"])
        with open(self.path, "rb") as handle:
            for kind, payload, _ in read_records(handle):
                if kind == ROWS_RECORD:
                    yield decode_rows(payload, width, layout)


def set_aside(path: str) -> str:
    """Move a damaged part file out of the way (kept for inspection); its files are measured again."""
    target = path + ".damaged"
    os.replace(path, target)
    return target


def remove_parts(paths: Sequence[str]) -> None:
    """Delete part files whose rows are in the store (already gone is fine)."""
    for path in paths:
        with suppress(FileNotFoundError):
            os.unlink(path)
    if paths:
        fsync_directory(paths[0])


def remove_directory(directory: str) -> None:
    """Remove the parts directory once it holds nothing left to merge: the timed-out markers
    (their files have rows in the store by then) and temporaries of tasks that died."""
    if not os.path.isdir(directory) or list_parts(directory):
        return
    markers = (os.path.join(directory, TIMED_OUT), os.path.join(directory, RUNNING))
    for folder in (*markers, directory):
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and (folder in markers or name.endswith(".tmp")):
                os.unlink(path)
        with suppress(OSError):  # something else lives there (a late task's part): left for the next scan
            os.rmdir(folder)
