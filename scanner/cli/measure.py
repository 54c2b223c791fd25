"""`scanner features` and `scanner scan`: measuring images."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scanner.backends import DEFAULT_PLANNER
from scanner.cli import options
from scanner.cli.app import command
from scanner.cli.text import say, shown
from scanner.constants import (
    DEFAULT_FOLLOW_LINKS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_SPECTRUM,
    ExitCode,
    Status,
)
from scanner.errors import FatalError, InputError
from scanner.limits import use_pixel_cap

if TYPE_CHECKING:
    from scanner.measure import FileRecord
    from scanner.scan import ScanSummary


def _json_number(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _feature_record(result: FileRecord, names: tuple[str, ...]) -> dict:
    record: dict = {
        "path": result.path,
        "status": str(result.status),
        "error": result.error or None,
        "height": result.info.height,
        "width": result.info.width,
    }
    values = result.features if result.features is not None else [math.nan] * len(names)
    record.update({name: _json_number(v) for name, v in zip(names, values, strict=True)})
    return record


def _feature_row(result: FileRecord, width: int) -> str:
    size = f"{result.info.width}x{result.info.height}" if result.info.width else "-"
    head = f"{shown(result.path):<{width}}  {result.status:<10}  {size:>9}"
    if result.features is None:
        return f"{head}  {result.error}"
    return head + "".join(f"  {v:>9.6f}" for v in result.features)


@command("features", "Measure")
def features(
    images: Annotated[list[Path], typer.Argument(help="Image files to measure.", show_default=False)],
    spectrum: options.Spectrum = DEFAULT_SPECTRUM,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
    planner: options.Planner = DEFAULT_PLANNER,
    max_pixels: options.MaxPixels = DEFAULT_MAX_PIXELS,
    max_bytes: options.MaxBytes = DEFAULT_MAX_BYTES,
) -> None:
    """Print the six features of a few images: a quick look before a sweep."""
    use_pixel_cap(max_pixels)
    from scanner.extract import make_extractor
    from scanner.measure import measure_file

    extractor = make_extractor(spectrum=spectrum, planner=planner)
    names = extractor.names
    width = max(len(shown(p)) for p in images)
    if not as_json:
        say(f"{'path':<{width}}  {'status':<10}  {'size':>9}" + "".join(f"  {n:>9}" for n in names))
    unusable = 0
    for path in images:
        result = measure_file(path, extractor, max_pixels, max_bytes)
        unusable += result.status != Status.OK
        say(json.dumps(_feature_record(result, names)) if as_json else _feature_row(result, width))
    raise typer.Exit(ExitCode.SOME_UNUSABLE if unusable else ExitCode.OK)


def counts_lines(counts: dict[str, int]) -> list[str]:
    return [f"  {status:<11} {n:>12,}" for status, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0]))]


def _summary(summary: ScanSummary, counts: dict[str, int]) -> str:
    skipped = f"; {summary.skipped:,} already in the store" if summary.skipped else ""
    lines = [
        f"scanned {summary.written:,} files in {summary.elapsed:,.1f} s "
        f"({summary.images_per_second:,.0f} images/s, {summary.workers} workers){skipped}",
        f"{shown(summary.out)}: {summary.store_rows:,} rows",
    ]
    return "\n".join(lines + counts_lines(counts))


def _list_entries(path: Path, null: bool) -> Iterator[bytes]:
    """Paths of a list file (or stdin for '-'), as bytes so any file name survives."""
    from scanner.walk import list_entries

    try:
        with sys.stdin.buffer if str(path) == "-" else open(path, "rb") as handle:
            yield from list_entries(handle, null)
    except OSError as exc:
        raise InputError(f"cannot read the list {path}: {exc.strerror or exc}") from None


@command("scan", "Measure")
def scan(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The HDF5 feature store to write (resumed if it exists).",
            metavar="FEATURES.h5",
            show_default=False,
        ),
    ],
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Directories and files to scan.", metavar="PATH", show_default=False),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-j", min=1, metavar="N", help="Worker processes (default: the cores this process may use)."
        ),
    ] = None,
    spectrum: options.Spectrum = DEFAULT_SPECTRUM,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", help="Descend into subdirectories.")] = True,
    ext: Annotated[
        str | None,
        typer.Option(
            "--ext",
            metavar="EXT,...",
            help="Extensions to take from directories, e.g. jpg,png ('*': every file; default: the "
            "common image extensions).",
        ),
    ] = None,
    from_list: Annotated[
        Path | None,
        typer.Option(
            "--from-list",
            metavar="FILE",
            help="Also scan the paths in this file, one per line or NUL-separated as find -print0 writes ('-': stdin).",
        ),
    ] = None,
    null: Annotated[
        bool,
        typer.Option("--null", "-0", help="Paths in the --from-list file end only at NUL bytes (names with newlines)."),
    ] = False,
    follow_links: Annotated[
        bool,
        typer.Option(
            "--follow-links/--no-follow-links",
            help="Follow symbolic links met inside the directories (paths named directly are always followed).",
        ),
    ] = DEFAULT_FOLLOW_LINKS,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start over instead of resuming.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary.")] = False,
    planner: options.Planner = DEFAULT_PLANNER,
    max_pixels: options.MaxPixels = DEFAULT_MAX_PIXELS,
    max_bytes: options.MaxBytes = DEFAULT_MAX_BYTES,
    checkpoint_rows: Annotated[
        int,
        typer.Option(
            "--checkpoint-rows",
            min=1,
            metavar="N",
            help="Bring the store up to date after this many new rows (or as many as it holds, if more).",
        ),
    ] = 50_000,
) -> None:
    """Scan directories into a crash-safe, resumable HDF5 feature store."""
    use_pixel_cap(max_pixels)  # before the decoder loads, here and in the workers
    from scanner.progress import ScanDisplay
    from scanner.scan import ScanOptions
    from scanner.scan import scan as run_scan
    from scanner.store import column_counts
    from scanner.walk import Walk, parse_extensions

    paths = paths or []
    if not paths and from_list is None:
        raise InputError("nothing to scan: give directories or files, or --from-list FILE")
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if from_list is not None and str(from_list) != "-" and (not from_list.exists() or from_list.is_dir()):
        missing.append(str(from_list))  # a pipe is fine: --from-list <(find ...)
    if missing:
        raise InputError(f"no such file or directory: {', '.join(missing)}")
    try:
        extensions = parse_extensions(ext)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    total = None
    if not paths and from_list is not None and from_list.is_file():  # counted only if it can be read twice
        total = sum(1 for _ in _list_entries(from_list, null))
    walk = Walk(
        paths,
        recursive=recursive,
        extensions=extensions,
        from_list=_list_entries(from_list, null) if from_list is not None else None,
        follow_links=follow_links,
    )
    scan_options = ScanOptions(
        spectrum=spectrum,
        planner=planner,
        max_pixels=max_pixels,
        max_bytes=max_bytes,
        workers=workers,
        overwrite=overwrite,
        checkpoint_rows=checkpoint_rows,
    )
    try:
        with ScanDisplay(quiet=quiet, total=total) as display:
            summary = run_scan(walk, out, scan_options, ["scanner", *sys.argv[1:]], display.update, total)
        counts = column_counts(summary.out)
    except OSError as exc:
        raise FatalError(f"{exc.strerror or exc}: {exc.filename or out}") from None
    if not quiet:
        say(_summary(summary, counts))
    if summary.interrupted:
        say("interrupted: what finished is in the store; run the same command again to go on", err=True)
        raise typer.Exit(ExitCode.INTERRUPTED)
    raise typer.Exit(ExitCode.SOME_UNUSABLE if any(s != Status.OK for s in counts) else ExitCode.OK)
