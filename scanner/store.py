"""The HDF5 feature store: one row per scanned file, written atomically.

Layout (schema version 1), every dataset has one entry per row:

* ``path``: the file's path relative to its root, as a variable-length string
  tagged UTF-8. The stored bytes are exactly the file name's bytes, so a name
  that is not valid UTF-8 is kept losslessly (read it with
  ``.asstr(errors="surrogateescape")`` or ``os.fsdecode`` of the bytes).
* ``root``: int32 index into the file attribute ``roots`` (a JSON list of
  absolute directories; ``""`` for files named on the command line or in a list,
  whose ``path`` is then absolute). The usable path is ``join(roots[root], path)``.
* ``status``, ``error``: one of scanner.decode.STATUSES and why ('' when ok).
* ``features``: (N, 6) float64, column names in its attribute ``columns``;
  NaN where status is not ok.
* ``height``, ``width``, ``jpeg_quality``, ``size`` (bytes): int64, 0 when unknown;
  ``format``, ``jpeg_subsampling``: strings, '' when unknown; ``mtime``: float64.

File attributes: ``tool_version``, ``schema_version``, ``spectrum``, ``created``,
``updated``, ``command``, ``roots``, ``journal_id`` (the last scan journal merged
into this file, see scanner.journal).

A store is only ever written to a temporary file next to its destination,
flushed to disk and renamed over it, so a reader sees the old file or the new
one, never half of one.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

import h5py
import numpy as np

from scanner import __version__
from scanner.decode import STATUSES
from scanner.features import FEATURE_NAMES, SPECTRUM_MODES

SCHEMA_VERSION = 1

_STR = h5py.string_dtype("utf-8")
_CHUNK_ROWS = 16384
# Columns of per-row strings and numbers, in the order they are written.
_TEXT_COLUMNS = ("status", "error", "format", "jpeg_subsampling")
_NUMBER_COLUMNS = {
    "height": np.int64,
    "width": np.int64,
    "jpeg_quality": np.int64,
    "size": np.int64,
    "mtime": np.float64,
}


class StoreError(Exception):
    """A file that is not a usable feature store, with what to do about it."""


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Rows:
    """A batch of rows in storage form: relative path bytes plus a root index."""

    root: np.ndarray  # (N,) int32 index into the roots list
    relpath: list[bytes]
    status: list[str]
    error: list[str]
    features: np.ndarray  # (N, 6) float64
    height: np.ndarray
    width: np.ndarray
    format: list[str]
    jpeg_subsampling: list[str]
    jpeg_quality: np.ndarray
    size: np.ndarray
    mtime: np.ndarray

    def __len__(self) -> int:
        return len(self.relpath)

    def take(self, index: np.ndarray) -> Rows:
        """The rows at these positions (an int array or a boolean mask)."""
        positions = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index)
        values = {}
        for f in fields(self):
            column = getattr(self, f.name)
            values[f.name] = column[positions] if isinstance(column, np.ndarray) else [column[i] for i in positions]
        return Rows(**values)

    @staticmethod
    def concat(batches: Sequence[Rows]) -> Rows:
        if not batches:
            return Rows.empty()
        values = {}
        for f in fields(Rows):
            columns = [getattr(b, f.name) for b in batches]
            if isinstance(columns[0], np.ndarray):
                values[f.name] = np.concatenate(columns)
            else:
                values[f.name] = [x for column in columns for x in column]
        return Rows(**values)

    @staticmethod
    def empty() -> Rows:
        ints = {name: np.zeros(0, np.int64) for name in ("height", "width", "jpeg_quality", "size")}
        return Rows(
            root=np.zeros(0, np.int32),
            relpath=[],
            status=[],
            error=[],
            features=np.zeros((0, len(FEATURE_NAMES))),
            format=[],
            jpeg_subsampling=[],
            mtime=np.zeros(0),
            **ints,
        )


@dataclass
class FeatureTable:
    """A whole store in memory: one entry per row in every column."""

    path: list[str]  # usable path: root joined with the stored relative path
    status: list[str]
    error: list[str]
    features: np.ndarray  # (N, 6) float64, columns FEATURE_NAMES
    height: np.ndarray
    width: np.ndarray
    format: list[str]
    jpeg_subsampling: list[str]
    jpeg_quality: np.ndarray
    size: np.ndarray
    mtime: np.ndarray
    spectrum: str = "log"
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.path)


def make_table(
    paths: Sequence[str],
    features: np.ndarray | None,
    *,
    spectrum: str = "log",
    status: Sequence[str] | None = None,
    **columns,
) -> FeatureTable:
    """A FeatureTable with every column not given filled with its default.

    Defaults: status 'ok'; error, format, jpeg_subsampling ''; numbers 0;
    features NaN where the status is not ok (or where none are given).
    """
    n = len(paths)
    status = list(status) if status is not None else ["ok"] * n
    values = np.full((n, len(FEATURE_NAMES)), np.nan) if features is None else np.array(features, np.float64)
    if values.shape != (n, len(FEATURE_NAMES)) or len(status) != n:
        raise ValueError(f"{n} paths need {n} statuses and an ({n}, {len(FEATURE_NAMES)}) feature array")
    values[np.array([s != "ok" for s in status], dtype=bool)] = np.nan
    table = FeatureTable(
        path=[os.fsdecode(p) for p in paths],
        status=status,
        error=list(columns.pop("error", [""] * n)),
        features=values,
        height=np.asarray(columns.pop("height", np.zeros(n)), np.int64),
        width=np.asarray(columns.pop("width", np.zeros(n)), np.int64),
        format=list(columns.pop("format", [""] * n)),
        jpeg_subsampling=list(columns.pop("jpeg_subsampling", [""] * n)),
        jpeg_quality=np.asarray(columns.pop("jpeg_quality", np.zeros(n)), np.int64),
        size=np.asarray(columns.pop("size", np.zeros(n)), np.int64),
        mtime=np.asarray(columns.pop("mtime", np.zeros(n)), np.float64),
        spectrum=spectrum,
        attrs=dict(columns.pop("attrs", {})),
    )
    if columns:
        raise TypeError(f"unknown columns: {', '.join(sorted(columns))}")
    return table


def store_attrs(
    spectrum: str, command: Sequence[str], roots: Sequence[str], journal_id: str = "", created: str | None = None
) -> dict:
    """The file attributes of a store written now."""
    if spectrum not in SPECTRUM_MODES:
        raise ValueError(f"spectrum must be one of {', '.join(SPECTRUM_MODES)}, not {spectrum!r}")
    stamp = now_utc()
    return {
        "tool_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "spectrum": spectrum,
        "created": created or stamp,
        "updated": stamp,
        "command": " ".join(command),
        "roots": list(roots),
        "journal_id": journal_id,
    }


def split_path(path: str, roots: Sequence[str]) -> tuple[int, bytes]:
    """(root index, path bytes relative to it): the longest root the path lies under."""
    best, rel = 0 if roots and roots[0] == "" else -1, path
    best_len = -1
    for i, root in enumerate(roots):
        if root and len(root) > best_len and path.startswith(root.rstrip("/") + "/"):
            best, rel, best_len = i, path[len(root.rstrip("/")) + 1 :], len(root)
    if best < 0:
        raise ValueError(f"{path!r} lies under none of the roots and there is no '' root")
    return best, os.fsencode(rel)


def table_rows(table: FeatureTable, roots: Sequence[str]) -> Rows:
    """A FeatureTable in storage form, paths made relative to these roots."""
    split = [split_path(p, roots) for p in table.path]
    return Rows(
        root=np.array([r for r, _ in split], np.int32),
        relpath=[rel for _, rel in split],
        status=list(table.status),
        error=list(table.error),
        features=table.features,
        height=table.height,
        width=table.width,
        format=list(table.format),
        jpeg_subsampling=list(table.jpeg_subsampling),
        jpeg_quality=table.jpeg_quality,
        size=table.size,
        mtime=table.mtime,
    )


def joined_paths(rows: Rows, roots: Sequence[str]) -> list[str]:
    """Usable paths: root joined with the relative bytes, decoded losslessly."""
    encoded = [os.fsencode(r) for r in roots]
    return [os.fsdecode(os.path.join(encoded[r], rel)) for r, rel in zip(rows.root.tolist(), rows.relpath)]


class StoreWriter:
    """Streams rows into a temporary file; commit() renames it over the destination."""

    def __init__(self, path: str | os.PathLike, attrs: dict) -> None:
        self.path = os.fspath(path)
        self.tmp = f"{self.path}.tmp"
        self._file = h5py.File(self.tmp, "w")
        self._n = 0
        f = self._file
        for name, value in attrs.items():
            f.attrs[name] = json.dumps(value) if name == "roots" else value
        f.create_dataset("path", (0,), _STR, maxshape=(None,), chunks=(_CHUNK_ROWS,))
        f.create_dataset("root", (0,), np.int32, maxshape=(None,), chunks=(_CHUNK_ROWS,))
        for name in _TEXT_COLUMNS:
            f.create_dataset(name, (0,), _STR, maxshape=(None,), chunks=(_CHUNK_ROWS,))
        f.create_dataset(
            "features",
            (0, len(FEATURE_NAMES)),
            np.float64,
            maxshape=(None, len(FEATURE_NAMES)),
            chunks=(_CHUNK_ROWS, len(FEATURE_NAMES)),
        )
        f["features"].attrs["columns"] = list(FEATURE_NAMES)
        for name, dtype in _NUMBER_COLUMNS.items():
            f.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(_CHUNK_ROWS,))

    def append(self, rows: Rows) -> None:
        if not len(rows):
            return
        start, end = self._n, self._n + len(rows)
        f = self._file
        for name in ("path", "root", *_TEXT_COLUMNS, "features", *_NUMBER_COLUMNS):
            dataset = f[name]
            dataset.resize(end, axis=0)
            column = rows.relpath if name == "path" else getattr(rows, name)
            if isinstance(column, list):
                column = np.array(column, dtype=object)
            dataset[start:end] = column
        self._n = end

    def commit(self) -> None:
        """Flush to disk and atomically replace the destination."""
        self._file.close()
        with open(self.tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(self.tmp, self.path)
        fsync_directory(self.path)

    def abort(self) -> None:
        self._file.close()
        os.unlink(self.tmp)


def fsync_directory(path: str) -> None:
    """Make a rename in path's directory durable."""
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_table(path: str | os.PathLike, table: FeatureTable) -> None:
    """Write a complete, valid store file holding this table (atomically)."""
    attrs = dict(table.attrs)
    roots = list(attrs.get("roots") or [""])
    if "" not in roots:
        roots.insert(0, "")
    base = store_attrs(table.spectrum, [], roots)
    base.update({k: v for k, v in attrs.items() if k not in ("schema_version", "tool_version", "roots", "spectrum")})
    base["roots"] = roots
    writer = StoreWriter(path, base)
    try:
        writer.append(table_rows(table, roots))
    except BaseException:
        writer.abort()
        raise
    writer.commit()


def _open(path: str | os.PathLike) -> h5py.File:
    """Open a store for reading, checked; StoreError says why it cannot be used."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise StoreError(f"{name}: no such file")
    try:
        f = h5py.File(name, "r")
    except OSError as exc:
        raise StoreError(f"{name}: not a readable HDF5 file (damaged, or not a feature store): {exc}") from None
    try:
        version = f.attrs.get("schema_version")
        if version is None:
            raise StoreError(f"{name}: an HDF5 file, but not a scanner feature store (no schema_version)")
        if int(version) > SCHEMA_VERSION:
            raise StoreError(
                f"{name}: written by a newer scanner (store schema {int(version)}, this scanner reads "
                f"up to {SCHEMA_VERSION}); upgrade scanner to read it"
            )
        missing = [c for c in ("path", "root", *_TEXT_COLUMNS, "features", *_NUMBER_COLUMNS) if c not in f]
        if missing:
            raise StoreError(f"{name}: damaged feature store, missing {', '.join(missing)}")
        lengths = {f[c].shape[0] for c in ("path", "root", *_TEXT_COLUMNS, "features", *_NUMBER_COLUMNS)}
        if len(lengths) != 1:
            raise StoreError(f"{name}: damaged feature store, columns of different lengths")
    except BaseException:
        f.close()
        raise
    return f


def read_attrs(path: str | os.PathLike) -> dict:
    """The file attributes of a store (roots decoded to a list)."""
    with _open(path) as f:
        return _attrs(f)


def _attrs(f: h5py.File) -> dict:
    attrs = {}
    for key, value in f.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        attrs[key] = value
    attrs["roots"] = json.loads(attrs.get("roots", '[""]'))
    return attrs


def store_length(path: str | os.PathLike) -> int:
    with _open(path) as f:
        return f["path"].shape[0]


def iter_rows(path: str | os.PathLike, chunk_rows: int = _CHUNK_ROWS) -> Iterator[Rows]:
    """The store's rows, chunk by chunk (constant memory)."""
    try:
        with _open(path) as f:
            n = f["path"].shape[0]
            for start in range(0, n, chunk_rows):
                yield _read_rows(f, slice(start, min(n, start + chunk_rows)))
    except (OSError, KeyError, ValueError) as exc:
        raise StoreError(f"{os.fspath(path)}: damaged feature store: {exc}") from None


def _read_rows(f: h5py.File, where: slice) -> Rows:
    def text(name: str) -> list[str]:
        return f[name].asstr(errors="surrogateescape")[where].tolist()

    return Rows(
        root=f["root"][where].astype(np.int32),
        relpath=f["path"][where].tolist(),
        status=text("status"),
        error=text("error"),
        features=f["features"][where].astype(np.float64),
        height=f["height"][where],
        width=f["width"][where],
        format=text("format"),
        jpeg_subsampling=text("jpeg_subsampling"),
        jpeg_quality=f["jpeg_quality"][where],
        size=f["size"][where],
        mtime=f["mtime"][where],
    )


def read_features(path: str | os.PathLike) -> FeatureTable:
    """Read a whole store; StoreError for a non-store, a newer schema or a damaged file."""
    try:
        with _open(path) as f:
            attrs = _attrs(f)
            rows = _read_rows(f, slice(None))
        paths = joined_paths(rows, attrs["roots"])
    except (OSError, KeyError, ValueError, IndexError, TypeError) as exc:
        raise StoreError(f"{os.fspath(path)}: damaged feature store: {exc}") from None
    unknown = set(rows.status) - set(STATUSES)
    if unknown:
        raise StoreError(f"{os.fspath(path)}: damaged feature store, unknown statuses {sorted(unknown)}")
    return FeatureTable(
        path=paths,
        status=rows.status,
        error=rows.error,
        features=rows.features,
        height=rows.height,
        width=rows.width,
        format=rows.format,
        jpeg_subsampling=rows.jpeg_subsampling,
        jpeg_quality=rows.jpeg_quality,
        size=rows.size,
        mtime=rows.mtime,
        spectrum=attrs.get("spectrum", "log"),
        attrs=attrs,
    )


def column_counts(path: str | os.PathLike, name: str = "status") -> dict[str, int]:
    """How many rows hold each value of a text column, read chunk by chunk."""
    counts: dict[str, int] = {}
    with _open(path) as f:
        dataset = f[name]
        for start in range(0, dataset.shape[0], _CHUNK_ROWS):
            values, n = np.unique(dataset[start : start + _CHUNK_ROWS], return_counts=True)
            for value, count in zip(values.tolist(), n.tolist()):
                key = value.decode("utf-8", "surrogateescape")
                counts[key] = counts.get(key, 0) + count
    return counts


CSV_COLUMNS = ("path", "status", "error", "height", "width", "format", *FEATURE_NAMES)


def export_csv(path: str | os.PathLike, handle) -> int:
    """Write the store as CSV (CSV_COLUMNS) to a text handle; returns the row count.

    Paths are usable file paths; open the handle with errors="surrogateescape"
    so that a name that is not UTF-8 is written back as its original bytes.
    Features are written exactly (shortest round-trip form); NaN is empty.
    """
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    roots = read_attrs(path)["roots"]
    n = 0
    for rows in iter_rows(path):
        for i, full in enumerate(joined_paths(rows, roots)):
            values = ["" if np.isnan(v) else repr(v) for v in rows.features[i].tolist()]
            writer.writerow(
                [full, rows.status[i], rows.error[i], rows.height[i], rows.width[i], rows.format[i], *values]
            )
        n += len(rows)
    return n
