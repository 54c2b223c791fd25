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
from scanner.constants import DEFAULT_MAX_PIXELS, DEFAULT_SPECTRUM, ExitCode, Status
from scanner.errors import FatalError, InputError
from scanner.featuresets import DEFAULT_FEATURE_SET, FEATURE_NAMES

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


def _feature_row(result: FileRecord, width: int, names: tuple[str, ...] = FEATURE_NAMES) -> str:
    """The paper's six in columns; a wider set's other features below, a few name=value per line."""
    size = f"{result.info.width}x{result.info.height}" if result.info.width else "-"
    head = f"{result.path:<{width}}  {result.status:<10}  {size:>9}"
    if result.features is None:
        return f"{head}  {result.error}"
    shown = len(FEATURE_NAMES)
    lines = [head + "".join(f"  {v:>9.6f}" for v in result.features[:shown])]
    rest = [f"{name}={value:.6f}" for name, value in zip(names[shown:], result.features[shown:], strict=True)]
    lines += ["    " + "  ".join(rest[k : k + 6]) for k in range(0, len(rest), 6)]
    return "\n".join(lines)


@command("features", "Measure")
def features(
    images: Annotated[list[Path], typer.Argument(help="Image files to measure.", show_default=False)],
    spectrum: options.Spectrum = DEFAULT_SPECTRUM,
    feature_set: options.FeatureSet = DEFAULT_FEATURE_SET,
    canonical: options.Canonical = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
    planner: options.Planner = DEFAULT_PLANNER,
    max_pixels: options.MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Print the features of a few images: a quick look before a sweep."""
    from scanner.extract import make_extractor
    from scanner.measure import measure_file

    extractor = make_extractor(feature_set, spectrum=spectrum, planner=planner, canonical=canonical)
    names = extractor.names
    width = max(len(str(p)) for p in images)
    if not as_json:
        typer.echo(
            f"{'path':<{width}}  {'status':<10}  {'size':>9}"
            + "".join(f"  {n:>9}" for n in names[: len(FEATURE_NAMES)])
        )
    unusable = 0
    for path in images:
        result = measure_file(path, extractor, max_pixels)
        unusable += result.status != Status.OK
        typer.echo(json.dumps(_feature_record(result, names)) if as_json else _feature_row(result, width, names))
    raise typer.Exit(ExitCode.SOME_UNUSABLE if unusable else ExitCode.OK)


def counts_lines(counts: dict[str, int]) -> list[str]:
    return [f"  {status:<11} {n:>12,}" for status, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0]))]


def _summary(summary: ScanSummary, counts: dict[str, int]) -> str:
    skipped = f"; {summary.skipped:,} already in the store" if summary.skipped else ""
    lines = [
        f"scanned {summary.written:,} files in {summary.elapsed:,.1f} s "
        f"({summary.images_per_second:,.0f} images/s, {summary.workers} workers){skipped}",
        f"{summary.out}: {summary.store_rows:,} rows",
    ]
    return "\n".join(lines + counts_lines(counts))


def _list_lines(path: Path) -> Iterator[bytes]:
    """Lines of a list file (or stdin for '-'), as bytes so any file name survives."""
    with sys.stdin.buffer if str(path) == "-" else open(path, "rb") as handle:
        yield from handle


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
    feature_set: options.FeatureSet = DEFAULT_FEATURE_SET,
    canonical: options.Canonical = False,
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
            "--from-list", metavar="FILE", help="Also scan the paths in this file, one per line ('-': stdin)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start over instead of resuming.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary.")] = False,
    planner: options.Planner = DEFAULT_PLANNER,
    max_pixels: options.MaxPixels = DEFAULT_MAX_PIXELS,
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
    from scanner.progress import ScanDisplay
    from scanner.scan import ScanOptions
    from scanner.scan import scan as run_scan
    from scanner.store import column_counts
    from scanner.walk import Walk, parse_extensions

    paths = paths or []
    if not paths and from_list is None:
        raise InputError("nothing to scan: give directories or files, or --from-list FILE")
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if from_list is not None and str(from_list) != "-" and not from_list.is_file():
        missing.append(str(from_list))
    if missing:
        raise InputError(f"no such file or directory: {', '.join(missing)}")
    try:
        extensions = parse_extensions(ext)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    total = None
    if not paths and from_list is not None and str(from_list) != "-":
        with open(from_list, "rb") as handle:
            total = sum(1 for line in handle if line.strip())
    walk = Walk(
        paths,
        recursive=recursive,
        extensions=extensions,
        from_list=_list_lines(from_list) if from_list is not None else None,
    )
    scan_options = ScanOptions(
        feature_set=feature_set,
        canonical=canonical,
        spectrum=spectrum,
        planner=planner,
        max_pixels=max_pixels,
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
        typer.echo(_summary(summary, counts))
    if summary.interrupted:
        typer.echo("interrupted: what finished is in the store; run the same command again to go on", err=True)
        raise typer.Exit(ExitCode.INTERRUPTED)
    raise typer.Exit(ExitCode.SOME_UNUSABLE if any(s != Status.OK for s in counts) else ExitCode.OK)
