"""The HDF5 feature store: one row per scanned file, written atomically.

The datasets are the columns of scanner.core.schema.COLUMNS, each with one entry per
row (``features`` is N x the feature set's width, its column names in the
attribute ``columns``). File attributes: ``tool_version``, ``schema_version``,
``feature_set``, ``spectrum``, ``precision``, ``backend``, ``created``,
``updated``, ``command``, ``roots`` (a JSON list; index 0 is '' for files named
directly) and ``journal_id`` (the last scan journal merged into it, see
scanner.store.journal). docs/store.md describes the format for readers in other tools.

A store is only ever written to a temporary file next to its destination,
flushed to disk and renamed over it, so a reader sees the old file or the new
one, never half of one. Every read goes through one opener that checks the
schema version, the columns, their lengths and the feature names before any row
is read, and every chunk of rows read is checked before it is used: each root
index within the roots attribute, each status among the known ones (a check up
front would read every row twice; a chunk is what is held in memory anyway).
StoreError says what is wrong and what to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from scanner.core.constants import STATUSES
from scanner.core.echo import echoed
from scanner.core.errors import InputError, StoreError
from scanner.core.featuresets import feature_set_of_names
from scanner.core.schema import (
    COLUMN_BY_NAME,
    COLUMNS,
    READABLE_SCHEMAS,
    SCHEMA_VERSION,
    Column,
    FeatureTable,
    Measurement,
    Rows,
    joined_paths,
)
from scanner.core.version import __version__
from scanner.io.h5safe import CheckedFile, errors_as

_STR = h5py.string_dtype("utf-8")
CHUNK_ROWS = 16384  # rows per chunk of a large store, and per read of iter_rows


@dataclass(frozen=True)
class Layout:
    """How a store's datasets are laid out on disk: chunks sized to the rows, compressed.

    A chunk holds at most ``chunk_rows`` rows, and no more than the store has, so
    a small store is small. ``compression`` is an h5py filter: gzip (deflate) is
    the default because every HDF5 reader has it (h5py's lzf is faster but only
    h5py reads it); the shuffle filter groups the bytes of each number, which
    lets deflate find the repeats in integer and float columns. The layout never
    changes what is read back, and stores of any layout are read alike.
    benchmarks/store_layout.py measures size and reading speed of the choices.
    """

    chunk_rows: int = CHUNK_ROWS
    compression: str | None = "gzip"
    compression_opts: int | None = 1  # level 4 compresses these columns no better, and writes slower
    shuffle: bool = True

    def chunks(self, expected_rows: int | None) -> int:
        """Rows per chunk for a store expected to hold this many rows (None: unknown)."""
        return self.chunk_rows if expected_rows is None else max(1, min(self.chunk_rows, expected_rows))

    def options(self, column: Column, expected_rows: int | None, width: int) -> dict[str, Any]:
        """create_dataset keywords for one column."""
        rows = self.chunks(expected_rows)
        options: dict[str, Any] = {"chunks": (rows, width) if column.kind == "features" else (rows,)}
        if self.compression:
            options["compression"] = self.compression
            if self.compression_opts is not None:
                options["compression_opts"] = self.compression_opts
            # Shuffling the bytes of variable-length strings would shuffle heap references, to no gain.
            options["shuffle"] = self.shuffle and not column.variable
        return options


LAYOUT = Layout()
UNCOMPRESSED = Layout(compression=None, compression_opts=None, shuffle=False)  # stores written before 0.3


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def store_attrs(
    measurement: Measurement,
    command: Sequence[str] | str,
    roots: Sequence[str],
    journal_id: str = "",
    created: str | None = None,
    backend: str = "",
) -> dict[str, Any]:
    """The file attributes of a store written now."""
    stamp = now_utc()
    return {
        "tool_version": __version__,
        "schema_version": SCHEMA_VERSION,
        **measurement.attrs(),
        "backend": backend,
        "created": created or stamp,
        "updated": stamp,
        "command": command if isinstance(command, str) else " ".join(command),
        "roots": list(roots),
        "journal_id": journal_id,
    }


@dataclass(frozen=True)
class StoreHeader:
    """What a store says about itself, read and checked without reading its rows."""

    path: str
    schema_version: int
    measurement: Measurement
    roots: list[str]
    rows: int
    attrs: dict[str, Any]
    absent: tuple[str, ...] = ()  # columns newer than the store's schema: read as their defaults


# --- writing ---------------------------------------------------------------------------


class StoreWriter:
    """Streams rows into a temporary file; commit() renames it over the destination.

    ``expected_rows`` (when known) sizes the chunks to the store, so a store of
    eight rows takes kilobytes, not the megabytes of a full chunk per column.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        attrs: Mapping[str, Any],
        expected_rows: int | None = None,
        layout: Layout = LAYOUT,
    ) -> None:
        self.path = os.fspath(path)
        self.tmp = f"{self.path}.tmp"
        self.measurement = Measurement.from_attrs(attrs)
        width = self.measurement.n_features
        self._file = h5py.File(self.tmp, "w")
        self._n = 0
        f = self._file
        for name, value in attrs.items():
            f.attrs[name] = json.dumps(value) if name == "roots" else value
        for column in COLUMNS:
            options = layout.options(column, expected_rows, width)
            if column.kind == "features":
                dataset = f.create_dataset(column.name, (0, width), np.float64, maxshape=(None, width), **options)
                dataset.attrs["columns"] = list(self.measurement.feature_names)
            else:
                dtype = _STR if column.variable else column.dtype
                f.create_dataset(column.name, (0,), dtype, maxshape=(None,), **options)

    def append(self, rows: Rows) -> None:
        if not len(rows):
            return
        if rows.n_features != self.measurement.n_features:
            raise ValueError(f"rows of {rows.n_features} features for a store of {self.measurement.n_features}")
        start, end = self._n, self._n + len(rows)
        for column in COLUMNS:
            dataset = self._file[column.name]
            dataset.resize(end, axis=0)
            dataset[start:end] = rows[column.name]
        self._n = end

    def commit(self) -> None:
        """Flush to disk and atomically replace the destination."""
        self._file.close()
        with open(self.tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(self.tmp, self.path)
        fsync_directory(self.path)

    def abort(self) -> None:
        """Remove the temporary file; a file HDF5 cannot close (a full disk) is removed all the same."""
        try:
            self._file.close()
        except Exception:
            pass
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)


def fsync_directory(path: str) -> None:
    """Make a rename in path's directory durable."""
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_table(path: str | os.PathLike[str], table: FeatureTable) -> None:
    """Write a complete, valid store file holding this table (atomically)."""
    attrs = store_attrs(
        table.measurement,
        str(table.attrs.get("command", "")),
        table.roots,
        created=table.attrs.get("created"),
        backend=str(table.attrs.get("backend", "")),
    )
    writer = StoreWriter(path, attrs, expected_rows=len(table))
    try:
        writer.append(table.rows)
    except BaseException:
        writer.abort()
        raise
    writer.commit()


# --- reading ---------------------------------------------------------------------------


# Columns added to schema 3 before its release: a schema-3 store of a development build that predates them
# reads them as their defaults (as an older schema's store does), rather than as damaged.
_LATE_IN_SCHEMA_3 = ("declared",)


def _header(store: CheckedFile) -> StoreHeader:
    """Check a store's attributes and columns (never its rows); StoreError says what is wrong."""
    name, f = store.name, store.file
    attrs = store.attributes(f)
    version = attrs.get("schema_version")
    if version is None:
        raise StoreError(f"{name}: an HDF5 file, but not a scanner feature store (no schema_version)")
    if isinstance(version, bool) or not isinstance(version, int | float | str):
        raise StoreError(f"{name}: damaged feature store (schema_version {echoed(version)})")
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise StoreError(f"{name}: damaged feature store (schema_version {echoed(version)})") from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{name}: written by a newer scanner (store schema {version}, this scanner reads "
            f"up to {SCHEMA_VERSION}); upgrade scanner to read it"
        )
    if version not in READABLE_SCHEMAS:
        raise StoreError(f"{name}: store schema {version} is not one this scanner reads ({READABLE_SCHEMAS})")
    wrong = [key for key in TEXT_ATTRIBUTES if key in attrs and not isinstance(attrs[key], str)]
    if wrong:
        raise StoreError(f"{name}: damaged feature store (attribute {wrong[0]} is not text)")
    try:
        measurement = Measurement.from_attrs(attrs)
        attrs["roots"] = roots = json.loads(attrs.get("roots", '[""]'))
    except (InputError, ValueError) as exc:
        raise StoreError(f"{name}: damaged feature store attributes: {exc}") from None
    if not isinstance(roots, list) or not roots or not all(isinstance(r, str) for r in roots):
        raise StoreError(f"{name}: damaged feature store (roots is not a list of directories)")
    absent = [c.name for c in COLUMNS if store.member(f, c.name) is None]
    missing = [n for n in absent if COLUMN_BY_NAME[n].since <= version and n not in _LATE_IN_SCHEMA_3]
    if missing:
        raise StoreError(f"{name}: damaged feature store, missing {', '.join(missing)}")
    datasets = {
        c.name: store.dataset(f, c.name, _KINDS[c.kind], 2 if c.kind == "features" else 1)
        for c in COLUMNS
        if c.name not in absent
    }
    lengths = {d.shape[0] for d in datasets.values() if d is not None}
    if len(lengths) != 1:
        raise StoreError(f"{name}: damaged feature store, columns of different lengths")
    features = datasets["features"]
    assert features is not None
    columns = store.attributes(features, ("columns",)).get("columns", [])
    names = [str(n) for n in columns] if isinstance(columns, list) else [str(columns)]
    if features.shape[1] != measurement.n_features:
        raise StoreError(
            f"{name}: damaged feature store: features has {features.shape[1]} columns, the "
            f"{measurement.feature_set} feature set it declares has {measurement.n_features}"
        )
    if tuple(names) != measurement.feature_names:
        found = feature_set_of_names(names)
        what = f"the {found.name} feature set" if found else f"features {echoed(names)}"
        raise StoreError(
            f"{name}: its features ({what}) are not those of the {measurement.feature_set} feature set "
            "it declares: a damaged or hand-edited store"
        )
    return StoreHeader(name, version, measurement, roots, lengths.pop(), attrs, tuple(absent))


_STATUSES = np.array(STATUSES, dtype=object)
# The kinds of dataset each kind of column may be stored as ('T': text).
_KINDS = {"bytes": "T", "text": "T", "int32": "iu", "int64": "iu", "float64": "f", "features": "f"}
TEXT_ATTRIBUTES = (
    "tool_version",
    "feature_set",
    "spectrum",
    "precision",
    "backend",
    "created",
    "updated",
    "command",
    "roots",
    "journal_id",
)


class _OpenStore:
    """A store opened for reading through the checking opener (scanner.io.h5safe): the file and its header."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.checked = CheckedFile(path, "feature store", StoreError)
        self.file = self.checked.file
        try:
            with errors_as(StoreError, self.checked.name, "feature store"):
                self.header = _header(self.checked)
        except BaseException:
            self.checked.close()
            raise

    def __enter__(self) -> _OpenStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.checked.close()

    def rows(self, where: slice) -> Rows:
        """The rows of `where` (a slice with a start), their root indexes and statuses checked first."""
        f = self.file
        columns: dict[str, Any] = {}
        start = where.start or 0
        with errors_as(StoreError, self.checked.name, "feature store"):
            for column in COLUMNS:
                if column.name in self.header.absent:  # a column newer than the store's schema
                    n = len(range(*where.indices(self.header.rows)))
                    columns[column.name] = column.filled(n, self.header.measurement.n_features)
                elif column.kind == "bytes":
                    columns[column.name] = self.checked.text(f[column.name], where, as_bytes=True)
                elif column.kind == "text":
                    columns[column.name] = self.checked.text(f[column.name], where)
                else:
                    values = f[column.name][where]
                    if column.name == "root":
                        self.check_roots(values, start)
                    columns[column.name] = values.astype(column.dtype, copy=False)
        self.check_statuses(columns["status"], start)
        return Rows(columns, self.header.measurement.n_features)

    def check_roots(self, values: npt.NDArray[Any], start: int) -> None:
        """Refuse root indexes (as stored, before any cast) outside the roots attribute; `start`: the first
        row's index, for the message."""
        n = len(self.header.roots)
        bad = np.flatnonzero((values < 0) | (values >= n))
        if len(bad):
            row, value = start + int(bad[0]) + 1, int(values[bad[0]])
            raise StoreError(
                f"{self.checked.name}: damaged feature store: row {row:,} holds root index {value}, and it has "
                f"{n} roots"
            )

    def check_statuses(self, values: npt.NDArray[Any], start: int) -> None:
        """Refuse statuses that are not among scanner.core.constants.STATUSES."""
        bad = np.flatnonzero(~np.isin(values, _STATUSES))
        if len(bad):
            row, value = start + int(bad[0]) + 1, str(values[bad[0]])
            raise StoreError(
                f"{self.checked.name}: damaged feature store: row {row:,} holds unknown status {echoed(value)}"
            )


def _damaged(path: str | os.PathLike[str], exc: Exception) -> StoreError:
    return StoreError(f"{os.fspath(path)}: damaged feature store: {exc}")


def read_header(path: str | os.PathLike[str]) -> StoreHeader:
    """A store's checked header: schema, measurement, roots, row count and attributes."""
    with _OpenStore(path) as store:
        return store.header


def read_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file attributes of a store (roots decoded to a list)."""
    return read_header(path).attrs


def iter_rows(path: str | os.PathLike[str], chunk_rows: int = CHUNK_ROWS) -> Iterator[Rows]:
    """The store's rows, chunk by chunk (constant memory)."""
    try:
        with _OpenStore(path) as store:
            n = store.header.rows
            for start in range(0, n, chunk_rows):
                yield store.rows(slice(start, min(n, start + chunk_rows)))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, InputError):
            raise
        raise _damaged(path, exc) from None


def read_features(path: str | os.PathLike[str]) -> FeatureTable:
    """Read a whole store; StoreError for a non-store, a newer schema or a damaged file."""
    try:
        with _OpenStore(path) as store:
            header = store.header
            rows = store.rows(slice(None))
        table = FeatureTable(rows, header.roots, header.measurement, header.attrs)
    except (OSError, KeyError, ValueError, IndexError, TypeError) as exc:
        if isinstance(exc, InputError):
            raise
        raise _damaged(path, exc) from None
    return table


def column_counts(path: str | os.PathLike[str], name: str = "status") -> dict[str, int]:
    """How many rows hold each value of a text column, or of ``root`` (its indexes as text: '0' for files
    named directly), read chunk by chunk (the root indexes of every row, and counting statuses the statuses,
    are checked as rows() checks them)."""
    counts: dict[str, int] = {}
    with _OpenStore(path) as store, errors_as(StoreError, store.checked.name, "feature store"):
        if name in store.header.absent:  # a column newer than the store's schema: every row at its default
            rows = store.header.rows
            return {str(COLUMN_BY_NAME[name].default): rows} if rows else {}
        dataset, roots = store.file[name], store.file["root"]
        for start in range(0, dataset.shape[0], CHUNK_ROWS):
            where = slice(start, start + CHUNK_ROWS)
            indexes = roots[where]
            store.check_roots(indexes, start)  # every row is looked at: its references are checked
            text = indexes if name == "root" else store.checked.text(dataset, where)
            if name == "status":
                store.check_statuses(text, start)
            values, n = np.unique(text, return_counts=True)
            for value, count in zip(values.tolist(), n.tolist(), strict=True):
                counts[str(value)] = counts.get(str(value), 0) + count
    return counts


def first_problems(path: str | os.PathLike[str], limit: int = 5) -> list[tuple[str, str, str]]:
    """(path, status, reason) of the store's first `limit` rows whose status is not ok, in store order."""
    found: list[tuple[str, str, str]] = []
    if limit <= 0:
        return found
    with _OpenStore(path) as store:
        status = store.file["status"]
        for start in range(0, status.shape[0], CHUNK_ROWS):
            values = status[start : start + CHUNK_ROWS]
            for i in np.flatnonzero(values != b"ok")[: limit - len(found)].tolist():
                rows = store.rows(slice(start + i, start + i + 1))
                found.append((joined_paths(rows, store.header.roots)[0], str(rows.status[0]), str(rows.error[0])))
            if len(found) >= limit:
                break
    return found
