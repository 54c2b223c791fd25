"""Reading a Parquet table from elsewhere (a verdicts file) within a bound on what it expands to.

A Parquet file is small for what it holds: 400 paths of 10 MB each compress to
135 KB, and a dictionary-encoded column may repeat one long value on every row
while storing it once. ``pyarrow.parquet.read_table`` expands all of it, then
``to_pylist`` copies it again (10.5 GB for that 135 KB file). So:

1. only the columns asked for are read, and each must be of a kind a table of
   text and numbers holds (text, numbers, booleans, nulls, lists of text): a
   struct, a fixed-size binary or a view is refused before any page is read;
2. the column chunks' uncompressed sizes, as the file's footer declares them, must
   be within the bound before any page is read;
3. text, in lists too, is read as dictionaries, so a value repeated on many rows is
   held once, and the table a batch of rows at a time;
4. each batch's size as Python would hold it (every value's text expanded, and a
   fixed cost a cell) is counted before it is converted, and the reading stops as
   soon as the file's total passes the bound.

The rows come as a stream: a batch is converted only when the one before has been used.
What is left: a page's own header may declare up to 2 GiB uncompressed (the format's
limit), which pyarrow allocates to read it, whatever the footer said.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from typing import Any

from scanner.core.errors import InputError

BATCH_ROWS = 1024
CELL_COST = 8  # bytes counted for each cell besides its text


def read_parquet_records(
    path: str | os.PathLike[str], max_bytes: int, error: type[InputError], columns: Collection[str] | None = None
) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """The names of the columns read (those of `columns` the file has, or all) and its rows, as dicts of
    Python values, a batch at a time; `error` when it is not a readable Parquet file, holds a column
    of another kind, or would expand past `max_bytes`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = os.fspath(path)
    try:
        footer = pq.ParquetFile(name)
        schema = footer.schema_arrow
        wanted = [n for n in schema.names if columns is None or n in columns]
        for field in (schema.field(n) for n in wanted):
            if not _allowed(pa, field.type):
                kind = f"{field.name!r} holds {field.type}"
                raise error(f"{name}: a Parquet file whose column {kind}, not text or numbers")
        leaves = [footer.schema.column(i) for i in range(len(footer.schema))]
        chosen = [i for i, leaf in enumerate(leaves) if leaf.path.split(".")[0] in wanted]
        meta = footer.metadata
        groups = (meta.row_group(g) for g in range(meta.num_row_groups))
        declared = sum(group.column(i).total_uncompressed_size for group in groups for i in chosen)
        if declared > max_bytes:
            raise _too_big(error, name, declared, max_bytes, "whose columns declare")
        text = [leaves[i].path for i in chosen if leaves[i].physical_type == "BYTE_ARRAY"]
        source = pq.ParquetFile(name, read_dictionary=text)
        batches = source.iter_batches(batch_size=BATCH_ROWS, columns=wanted)
    except (pa.ArrowException, ValueError, OSError, TypeError) as exc:
        raise _unreadable(error, name, exc) from None

    def records() -> Iterator[dict[str, Any]]:
        held = 0
        try:
            for batch in batches:
                held += _expanded_bytes(pa, batch) + CELL_COST * batch.num_rows * max(1, batch.num_columns)
                if held > max_bytes:
                    raise _too_big(error, name, held, max_bytes, "that expands to at least")
                yield from batch.to_pylist()
        except (pa.ArrowException, ValueError, OSError, TypeError, OverflowError) as exc:
            raise _unreadable(error, name, exc) from None

    return wanted, records()


def _too_big(error: type[InputError], name: str, size: int, most: int, how: str) -> InputError:
    return error(f"{name}: a Parquet file {how} {size:,} bytes, over the {most:,} read at most")


def _unreadable(error: type[InputError], name: str, exc: BaseException) -> InputError:
    if isinstance(exc, InputError):
        return exc
    return error(f"{name}: not a readable Parquet file: {' '.join(str(exc).split())[:200]}")


def _is_text(pa: Any, kind: Any) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _allowed(pa: Any, kind: Any) -> bool:
    """Text (or bytes), numbers, booleans, nulls, or a list of text: what a verdicts file holds."""
    types = pa.types
    if types.is_dictionary(kind):
        kind = kind.value_type
    if types.is_list(kind) or types.is_large_list(kind):
        leaf = kind.value_type
        return _is_text(pa, leaf.value_type if types.is_dictionary(leaf) else leaf)
    simple = (_is_text(pa, kind), types.is_binary(kind), types.is_large_binary(kind), types.is_null(kind))
    return any(simple) or types.is_floating(kind) or types.is_integer(kind) or types.is_boolean(kind)


def _expanded_bytes(pa: Any, batch: Any) -> int:
    """The bytes a batch's values take once every cell holds its own copy: a dictionary column's values
    counted per row through its indices (a list's, per element), any other column as Arrow holds it."""
    import pyarrow.compute as pc

    total = 0
    for column in batch.columns:
        values = column
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            values = column.flatten()
            total += column.offsets.nbytes
        if pa.types.is_dictionary(values.type):
            lengths = pc.take(pc.binary_length(values.dictionary), values.indices)
            total += int(pc.sum(lengths).as_py() or 0) + values.indices.nbytes
        else:
            total += values.nbytes
    return total
