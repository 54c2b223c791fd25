"""`scanner export`: a feature store as CSV, JSON lines or Parquet, optionally joined with verdicts and filtered.

The columns are the store's exported columns (schema.COLUMNS, those marked export,
``path`` as a usable path, then one column per feature), followed, with a verdicts
file, by ``verdict``, ``score``, ``threshold`` and ``probability``.

Rows go out sorted by root, then by relative path (its bytes), so that two exports of one
tree diff cleanly whatever order the files were measured in; sorting holds the rows kept
in memory. ``sort=False`` (``--store-order``) streams them in store order, chunk by
chunk, so memory stays flat at a million rows.

Missing values are nulls, never the store's sentinels (``schema.missing``): a feature that is
NaN, ``height``/``width`` 0 (unknown), ``jpeg_quality`` 0 (not a JPEG, or no estimate),
an empty ``error`` (an ok row), ``format``, ``jpeg_subsampling``, ``sha256`` (a file
not read), ``declared`` (nothing declared) or ``verdict``, and a number a verdicts file does not give.

- CSV: features and floats written exactly (shortest round-trip form), an empty
  field for a null; a file name that is not UTF-8 is written as its original bytes.
- JSON lines: one object per row, null where missing; a name that is not
  UTF-8 is written with ``\\udcXX`` escapes (Python's json reads it back exactly).
- Parquet (pyarrow): typed columns, null where missing, ``mtime`` a UTC timestamp (microseconds);
  a name that is not UTF-8 has its undecodable bytes as backslash escapes (``\\xff``).

Light: pyarrow is imported only for Parquet, and nothing of numba, FFTW, OpenCV,
scikit-learn or matplotlib.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any, Literal, get_args

import numpy as np

from scanner.core.constants import STATUSES
from scanner.core.errors import InputError
from scanner.core.schema import (
    COLUMN_BY_NAME,
    Measurement,
    Rows,
    arrow_text,
    export_arrays,
    export_columns_of,
    missing,
)
from scanner.detect.verdicts import VerdictFile, read_verdicts
from scanner.io.outputs import table_format
from scanner.store.hdf5 import CHUNK_ROWS, iter_rows, read_header

ExportFormat = Literal["csv", "jsonl", "parquet"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
VERDICT_EXPORT = ("verdict", "score", "threshold", "probability")  # columns a verdicts file adds


def parse_statuses(text: str | None) -> frozenset[str] | None:
    """'ok,truncated' -> {'ok', 'truncated'}; None keeps every row. InputError for a status that does not exist."""
    if text is None:
        return None
    wanted = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(wanted - set(STATUSES))
    if not wanted or unknown:
        raise InputError(f"unknown status {', '.join(unknown) or repr(text)}; the statuses are {', '.join(STATUSES)}")
    return wanted


def sorted_order(rows: Rows, roots: Sequence[str]) -> np.ndarray:
    """Positions of the rows sorted by root (its name), then by relative path (its bytes)."""
    names = [os.fsencode(root) for root in roots]
    keys = list(zip((names[r] for r in rows.root.tolist()), rows.path.tolist(), strict=True))
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def export_chunks(
    store: str | os.PathLike[str],
    verdicts: VerdictFile | None = None,
    statuses: frozenset[str] | None = None,
    *,
    sort: bool = True,
) -> tuple[list[str], Iterator[dict[str, np.ndarray]]]:
    """The export's column names, and its rows chunk by chunk (column name -> array), filtered, joined, and
    missing values as None: sorted by root and path, or (sort=False) in store order."""
    header = read_header(store)
    names = list(export_columns_of(header.measurement)) + (list(VERDICT_EXPORT) if verdicts is not None else [])

    def kept() -> Iterator[Rows]:
        for rows in iter_rows(store):
            if statuses is not None:
                rows = rows.take(np.isin(rows.status, list(statuses)))
            if len(rows):
                yield rows

    def in_order() -> Iterator[Rows]:
        if not sort:
            yield from kept()
            return
        every = Rows.concat(list(kept()), header.measurement.n_features)
        every = every.take(sorted_order(every, header.roots))
        for start in range(0, len(every), CHUNK_ROWS):
            yield every.take(np.arange(start, min(len(every), start + CHUNK_ROWS)))

    def chunks() -> Iterator[dict[str, np.ndarray]]:
        for rows in in_order():
            columns = export_arrays(rows, header.roots, header.measurement)
            if verdicts is not None:
                found = [verdicts.find(p) for p in columns["path"].tolist()]
                columns["verdict"] = np.array(
                    [verdicts.verdict[j] if j is not None else "" for j in found], dtype=object
                )
                for field in ("score", "threshold", "probability"):
                    values = getattr(verdicts, field)
                    columns[field] = np.array([values[j] if j is not None else math.nan for j in found])
            yield missing(columns)

    return names, chunks()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def write_csv(handle: IO[str], names: list[str], chunks: Iterable[dict[str, np.ndarray]]) -> int:
    writer = csv.writer(handle, lineterminator="\n")
    # QUOTE_MINIMAL quotes only the line terminator's characters: a name holding a carriage return
    # would read back as two records, so a row with one is written with every field quoted.
    quoted = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(names)
    n = 0
    for columns in chunks:
        lists = [columns[name].tolist() for name in names]
        for row in zip(*lists, strict=True):
            values = [_csv_value(v) for v in row]
            (quoted if any(isinstance(v, str) and "\r" in v for v in values) else writer).writerow(values)
        n += len(lists[0])
    return n


def export_csv(store: str | os.PathLike[str], handle: IO[str], *, sort: bool = True) -> int:
    """The whole store as CSV (every exported column, sorted by root and path unless `sort` is false) to an
    open text handle; the number of rows."""
    names, chunks = export_chunks(store, None, None, sort=sort)
    return write_csv(handle, names, chunks)


def _json_value(value: Any) -> Any:
    """JSON has no NaN or infinity: null for them, as for a value that is missing."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_jsonl(handle: IO[str], names: list[str], chunks: Iterable[dict[str, np.ndarray]]) -> int:
    n = 0
    for columns in chunks:
        lists = [columns[name].tolist() for name in names]
        for row in zip(*lists, strict=True):
            record = {name: _json_value(v) for name, v in zip(names, row, strict=True)}
            try:
                line = json.dumps(record, ensure_ascii=False, allow_nan=False)
                line.encode("utf-8")
            except UnicodeEncodeError:  # a name that is not UTF-8: escaped, so the line stays valid UTF-8
                line = json.dumps(record, ensure_ascii=True, allow_nan=False)
            handle.write(line + "\n")
        n += len(lists[0])
    return n


def arrow_schema(names: list[str]) -> Any:
    """The Parquet schema: strings, 64-bit integers and doubles, as the store's columns are; mtime a UTC
    timestamp in microseconds."""
    import pyarrow as pa

    types = {"bytes": pa.string(), "text": pa.string(), "int32": pa.int64(), "int64": pa.int64()}
    fields = []
    for name in names:
        column = COLUMN_BY_NAME.get(name)
        if name == "verdict":
            kind = pa.string()
        elif name == "mtime":
            kind = pa.timestamp("us", tz="UTC")
        elif column is None or column.kind in ("float64", "features"):
            kind = pa.float64()
        else:
            kind = types[column.kind]
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def write_parquet(
    path: str, names: list[str], chunks: Iterable[dict[str, np.ndarray]], measurement: Measurement
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(names).with_metadata({"scanner.measurement": measurement.describe()})
    n = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for columns in chunks:
            arrays = []
            for field in schema:
                values = columns[field.name]
                if field.name == "path":
                    values = np.array([arrow_text(p) for p in values.tolist()], dtype=object)
                elif field.name == "mtime":  # seconds (float) to whole microseconds since the epoch
                    values = np.round(values.astype(np.float64) * 1e6).astype(np.int64)
                arrays.append(pa.array(values, type=field.type, from_pandas=True))  # NaN -> null
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            n += len(arrays[0])
        if not n:
            writer.write_table(schema.empty_table())
    return n


def export(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    file_format: str | None = None,
    *,
    verdicts: str | os.PathLike[str] | None = None,
    statuses: frozenset[str] | None = None,
    sort: bool = True,
) -> int:
    """Write the store (joined with a verdicts file, keeping only rows of `statuses`) to `out`, whole or not at
    all and never over an input (`-`: standard output), sorted by root and path unless `sort` is false (store
    order); the number of rows written."""
    from scanner.io.outputs import output_file, output_path

    chosen = table_format(out, file_format)
    if chosen not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {chosen!r}; choose {', '.join(EXPORT_FORMATS)}")
    header = read_header(store)  # a store that cannot be read leaves nothing behind
    joined = read_verdicts(verdicts) if verdicts is not None else None
    names, chunks = export_chunks(store, joined, statuses, sort=sort)
    inputs = [store, verdicts]
    if chosen == "parquet":
        with output_path(out, inputs=inputs) as tmp:
            return write_parquet(tmp, names, chunks, header.measurement)
    with output_file(out, inputs=inputs) as handle:
        return (write_csv if chosen == "csv" else write_jsonl)(handle, names, chunks)
