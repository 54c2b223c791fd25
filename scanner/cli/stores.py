"""`scanner export` and `scanner info`: reading feature stores (light: no numba, FFTW or OpenCV)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from scanner.cli import options
from scanner.cli.app import command
from scanner.cli.measure import counts_lines
from scanner.lifecycle import journal_path
from scanner.outputs import output_file
from scanner.store import column_counts, export_csv, read_header

__all__ = ["export", "info"]


@command("export", "Measure")
def export(
    store: options.StoreArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="The CSV file to write ('-': stdout).", metavar="FILE.csv")],
) -> None:
    """Write a feature store as CSV: path, status, error, height, width, format and the features."""
    read_header(store)  # a store that cannot be read leaves nothing behind
    try:
        with output_file(out, inputs=[store]) as handle:
            export_csv(store, handle)
    except BrokenPipeError:  # `scanner export ... --out - | head` is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@command("info", "Measure")
def info(store: options.StoreArgument) -> None:
    """Describe a feature store: rows, counts per status, how it was measured, versions, roots, command."""
    header = read_header(store)
    attrs, m = header.attrs, header.measurement
    counts = column_counts(store)
    formats = column_counts(store, "format")
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
        "roots:          "
        + ", ".join(repr(r) if r else "'' (files named directly: absolute paths)" for r in header.roots),
        "formats:        " + ", ".join(f"{name or 'unknown'} {n:,}" for name, n in sorted(formats.items())),
        "status:",
        *counts_lines(counts),
    ]
    if os.path.exists(journal_path(os.path.abspath(store))):
        lines.append("note: an unfinished scan's journal is next to it; rerun that scan to finish and merge it")
    typer.echo("\n".join(lines))
