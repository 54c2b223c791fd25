"""Reading a Parquet table from elsewhere (a verdicts file) within a bound on what it expands to.

A Parquet file is small for what it holds: 400 paths of 10 MB each compress to
135 KB, and a dictionary-encoded column may repeat one long value on every row
while storing it once. ``pyarrow.parquet.read_table`` expands all of it, then
``to_pylist`` copies it again (10.5 GB for that 135 KB file). So:

1. the column chunks' uncompressed sizes, as the file's footer declares them, must
   be within the bound before any page is read;
2. text columns are read as dictionaries, so a value repeated on many rows is held
   once, and the table is read a batch of rows at a time;
3. each batch's size as Python would hold it (every row's text expanded, and a
   fixed cost a row) is counted before it is converted, and the reading stops as
   soon as the total passes the bound.
"""

from __future__ import annotations

import os
from typing import Any

from scanner.core.errors import InputError

BATCH_ROWS = 4096
ROW_COST = 64  # bytes counted for each row besides its text: a million rows hold 64 MB of it


def read_parquet_records(
    path: str | os.PathLike[str], max_bytes: int, error: type[InputError]
) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and the rows (as dicts of Python values) of a Parquet file; `error` when it is
    not a readable Parquet file or would expand past `max_bytes`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = os.fspath(path)

    def too_big(size: int, how: str) -> InputError:
        return error(f"{name}: a Parquet file {how} {size:,} bytes, over the {max_bytes:,} read at most")

    try:
        source = pq.ParquetFile(name)
        footer = source.metadata
        declared = sum(
            footer.row_group(g).column(c).total_uncompressed_size
            for g in range(footer.num_row_groups)
            for c in range(footer.num_columns)
        )
        if declared > max_bytes:
            raise too_big(declared, "whose columns declare")
        schema = source.schema_arrow
        text = [f.name for f in schema if _is_text(pa, f.type)]
        source = pq.ParquetFile(name, read_dictionary=text)
        records: list[dict[str, Any]] = []
        held = 0
        for batch in source.iter_batches(batch_size=BATCH_ROWS):
            held += _expanded_bytes(pa, batch) + ROW_COST * batch.num_rows
            if held > max_bytes:
                raise too_big(held, "that expands to at least")
            records.extend(batch.to_pylist())
    except (pa.ArrowException, ValueError, OSError) as exc:
        if isinstance(exc, InputError):
            raise
        raise error(f"{name}: not a readable Parquet file: {' '.join(str(exc).split())[:200]}") from None
    return list(schema.names), records


def _is_text(pa: Any, kind: Any) -> bool:
    checks = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    return any(check(kind) for check in checks)


def _expanded_bytes(pa: Any, batch: Any) -> int:
    """The bytes a batch's values take once every row holds its own copy: a dictionary column's values
    counted per row through its indices, any other column as Arrow holds it."""
    import pyarrow.compute as pc

    total = 0
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            values = column.dictionary
            if _is_text(pa, values.type):
                lengths = pc.take(pc.binary_length(values), column.indices)
                total += int(pc.sum(lengths).as_py() or 0) + column.indices.nbytes
                continue
        total += column.nbytes
    return total
