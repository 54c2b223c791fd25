"""`scanner export`, `scanner info` and `scanner merge`: reading and joining feature stores.

Light: no numba, FFTW, OpenCV, scikit-learn or matplotlib; pyarrow only for a Parquet export.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from scanner.cli import options
from scanner.cli.base import command
from scanner.cli.text import chatter, counts_lines, say
from scanner.core.errors import InputError
from scanner.core.words import plural
from scanner.io.outputs import refuse_inputs
from scanner.io.temporaries import describe as describe_leftovers
from scanner.io.temporaries import leftovers
from scanner.report.export import ExportFormat
from scanner.store.hdf5 import column_counts, read_header
from scanner.store.merge import merge_stores
from scanner.store.parts import list_parts, parts_path
from scanner.store.session import journal_path

__all__ = ["export", "info", "merge"]


@command("export", "Measure")
def export(
    store: options.StoreArgument,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The file to write ('-': stdout); its suffix (.csv, .jsonl, .parquet) sets the format.",
            metavar="FILE",
            show_default=False,
        ),
    ],
    file_format: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format", help="csv, jsonl or parquet (default: from --out's suffix, else csv).", metavar="FORMAT"
        ),
    ] = None,
    verdicts: Annotated[
        Path | None,
        typer.Option(
            "--verdicts",
            help="Join the verdicts of scanner classify: verdict, score, threshold, probability.",
            metavar="VERDICTS.csv",
            show_default=False,
        ),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only rows of these statuses, e.g. ok, or truncated,not_image for the problem files.",
            metavar="STATUS,...",
            show_default=False,
        ),
    ] = None,
    store_order: Annotated[
        bool,
        typer.Option(
            "--store-order",
            help="Rows in the store's order, streamed in flat memory (default: sorted by root and path).",
        ),
    ] = False,
) -> None:
    """Write a feature store as CSV, JSON lines or Parquet: every column, optionally with verdicts."""
    from scanner.report.export import export as write_export
    from scanner.report.export import parse_statuses

    try:
        n = write_export(
            store, out, file_format, verdicts=verdicts, statuses=parse_statuses(status), sort=not store_order
        )
    except BrokenPipeError:  # `scanner export ... --out - | head` is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    to_stdout = str(out) == "-"
    chatter(f"wrote {plural(n, 'row')} to {'standard output' if to_stdout else out}", err=to_stdout)


@command("info", "Measure")
def info(
    store: options.StoreArgument,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of text.")] = False,
) -> None:
    """Describe a feature store: rows, counts per status, how it was measured, versions, roots, command."""
    header = read_header(store)
    attrs, m = header.attrs, header.measurement
    counts = column_counts(store)
    formats = column_counts(store, "format")
    contents = _contents(column_counts(store, "sha256"))
    declarations = _declarations(column_counts(store, "declared"))
    under = column_counts(store, "root")
    per_root = [under.get(str(index), 0) for index in range(len(header.roots))]
    unfinished = os.path.exists(journal_path(os.path.abspath(store)))
    if as_json:
        described = {
            "store": str(store),
            "rows": header.rows,
            **m.attrs(),
            "feature_names": list(m.feature_names),
            "schema_version": header.schema_version,
            **{key: attrs.get(key) for key in ("tool_version", "backend", "created", "updated", "command")},
            "roots": header.roots,
            "rows_per_root": per_root,
            "formats": dict(sorted(formats.items())),
            "status": dict(sorted(counts.items())),
            "contents": contents,
            "declared": declarations,
            "unfinished_journal": unfinished,
            "leftover_temporaries": [f.path for f in leftovers(os.path.abspath(store))],
        }
        typer.echo(json.dumps(described))
        return
    lines = [
        f"store:          {store}",
        f"rows:           {header.rows:,}",
        f"feature set:    {m.feature_set}",
        f"spectrum:       {m.spectrum}",
        f"precision:      {m.precision}",
        f"canonicalised:  {'yes (re-encoded as JPEG q90 4:2:0 before measuring)' if m.canonical else 'no'}",
        f"schema version: {header.schema_version}",
        f"tool version:   {attrs.get('tool_version')}",
        f"created:        {attrs.get('created')}",
        f"updated:        {attrs.get('updated')}",
        f"command:        {attrs.get('command')}",
        "roots:          " + _roots_words(header.roots, per_root),
        "formats:        " + ", ".join(f"{name or 'unknown'} {n:,}" for name, n in sorted(formats.items())),
        "contents:       " + _contents_words(contents, header.schema_version),
        "declared:       " + _declarations_words(declarations),
        "status:",
        *counts_lines(counts),
    ]
    if unfinished:
        lines.append("note: an unfinished scan's journal is next to it; rerun that scan to finish and merge it")
    if list_parts(parts_path(os.path.abspath(store))):
        lines.append("note: an unfinished distributed scan's part files are next to it; rerun that scan to merge them")
    leftover = describe_leftovers(os.path.abspath(store))
    if leftover:
        lines.append(leftover)
    say("\n".join(lines))


def _roots_words(roots: list[str], per_root: list[int]) -> str:
    """Each root with its rows; '' (files named directly) only when some row uses it."""
    named = []
    for root, n in zip(roots, per_root, strict=True):
        if root:
            named.append(f"{root!r} ({plural(n, 'row')})")
        elif n:
            named.append(f"'' (files named directly: absolute paths; {plural(n, 'row')})")
    return ", ".join(named) or "none"


def _contents(hashes: dict[str, int]) -> dict[str, int]:
    """How many rows hold a SHA-256, how many distinct ones, how many repeat another's bytes, how many have
    none (files not read), from the counts of each sha256 value."""
    hashed = sum(n for digest, n in hashes.items() if digest)
    distinct = sum(1 for digest in hashes if digest)
    return {
        "hashed": hashed,
        "distinct_contents": distinct,
        "repeats": hashed - distinct,
        "not_hashed": hashes.get("", 0),
    }


def _declarations(values: dict[str, int]) -> dict[str, Any]:
    """How many rows declare something about their making (scanner.images.declared), and how many rows hold
    each declaration (a row may hold several), from the counts of each declared value."""
    each: dict[str, int] = {}
    for value, n in values.items():
        for item in filter(None, value.split(";")):
            each[item] = each.get(item, 0) + n
    return {"files": sum(n for value, n in values.items() if value), "each": dict(sorted(each.items()))}


def _declarations_words(declarations: dict[str, Any]) -> str:
    """e.g. "3 files declare their making (c2pa 2, png-text:parameters 1)", or "no file declares its making"."""
    files: int = declarations["files"]
    if not files:
        return "no file declares its making (C2PA, IPTC digital source type, generator metadata)"
    each = ", ".join(f"{name} {n:,}" for name, n in declarations["each"].items())
    return f"{files:,} file{'s declare their' if files != 1 else ' declares its'} making ({each})"


def _contents_words(contents: dict[str, int], schema_version: int) -> str:
    """e.g. "1,000 files hashed, 987 distinct contents (13 files repeat another's bytes); 2 not read"."""
    if not contents["hashed"]:
        older = " (the store predates file hashes: rescan with --overwrite to hash its files)"
        return "no file hashed" + (older if schema_version < 3 and contents["not_hashed"] else "")
    repeats = contents["repeats"]
    words = (
        f"{plural(contents['hashed'], 'file')} hashed, "
        f"{plural(contents['distinct_contents'], 'distinct content')} "
        f"({repeats:,} file{' repeats' if repeats == 1 else 's repeat'} another's bytes)"
    )
    if contents["not_hashed"]:
        words += f"; {contents['not_hashed']:,} not read (no SHA-256)"
    return words


@command("merge", "Measure")
def merge(
    stores: options.StoresArgument,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="The store to write.", metavar="ALL.h5", show_default=False),
    ],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace ALL.h5 if it exists.")] = False,
) -> None:
    """Merge feature stores measured the same way (e.g. the shards of a scan) into one."""
    refuse_inputs(out, stores)  # the more telling message when the output is one of the stores
    if os.path.lexists(out) and not overwrite:
        raise InputError(f"{out} exists: give --overwrite to replace it, or another --out")
    for store in stores:
        name = os.path.abspath(store)
        if os.path.exists(journal_path(name)) or list_parts(parts_path(name)):
            say(
                f"note: {store} has an unfinished scan next to it; its latest rows are not in the store yet "
                "(rerun that scan to finish it)",
                err=True,
            )
    result = merge_stores(stores, out, " ".join(["scanner", *sys.argv[1:]]))
    duplicates = (
        f"; {result.duplicates:,} rows of paths present more than once left out (the newest mtime kept)"
        if result.duplicates
        else ""
    )
    chatter(f"{out}: {result.rows:,} rows from {len(stores)} stores{duplicates}")
    chatter("\n".join(counts_lines(column_counts(out))))
