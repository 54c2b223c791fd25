"""`scanner features` and `scanner scan`: measuring images."""

from __future__ import annotations

import json
import math
import os
import shlex
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from scanner.cli import options
from scanner.cli.base import Quiet, command
from scanner.cli.text import chatty, counts_lines, say, shown
from scanner.core.constants import (
    DEFAULT_FILE_TIMEOUT,
    DEFAULT_FOLLOW_LINKS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_PRECISION,
    DEFAULT_SPECTRUM,
    ExitCode,
    ReadLimits,
    Status,
)
from scanner.core.errors import FatalError, InputError, ScanError
from scanner.core.featuresets import DEFAULT_FEATURE_SET, FEATURE_NAMES
from scanner.features.backends.base import DEFAULT_BACKEND, DEFAULT_PLANNER, backend_options
from scanner.images.limits import use_pixel_cap

if TYPE_CHECKING:
    from scanner.features.measure import FileRecord
    from scanner.run.sweep import ScanSummary


def _json_number(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _feature_record(result: FileRecord, names: tuple[str, ...]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "path": result.path,
        "status": str(result.status),
        "error": result.error or None,
        "height": result.info.height,
        "width": result.info.width,
        "sha256": result.sha256 or None,
        "declared": result.declared or None,
    }
    values = result.features if result.features is not None else [math.nan] * len(names)
    record.update({name: _json_number(v) for name, v in zip(names, values, strict=True)})
    return record


SHA256_SHOWN = 12  # hex digits of a file's SHA-256 the table shows


def _feature_row(result: FileRecord, width: int, names: tuple[str, ...] = FEATURE_NAMES) -> str:
    """The paper's six in columns; a wider set's other features below, a few name=value per line; what the
    file declares about its making on a line of its own (files that declare nothing have none). The
    SHA-256 shows its first 12 hex digits (--json gives it whole)."""
    size = f"{result.info.width}x{result.info.height}" if result.info.width else "-"
    digest = result.sha256[:SHA256_SHOWN] or "-"
    head = f"{shown(result.path):<{width}}  {result.status:<10}  {size:>9}  {digest:<{SHA256_SHOWN}}"
    declared = [f"    declared: {result.declared}"] if result.declared else []
    if result.features is None:
        return "\n".join([f"{head}  {result.error}", *declared])
    first = len(FEATURE_NAMES)
    lines = [head + "".join(f"  {v:>9.6f}" for v in result.features[:first])]
    rest = [f"{name}={value:.6f}" for name, value in zip(names[first:], result.features[first:], strict=True)]
    lines += ["    " + "  ".join(rest[k : k + 6]) for k in range(0, len(rest), 6)]
    return "\n".join([*lines, *declared])


@command("features", "Measure")
def features(
    images: Annotated[
        list[Path], typer.Argument(help="Image files to measure.", metavar="IMAGE...", show_default=False)
    ],
    spectrum: options.Spectrum = DEFAULT_SPECTRUM,
    precision: options.Precision = DEFAULT_PRECISION,
    feature_set: options.FeatureSet = DEFAULT_FEATURE_SET,
    canonical: options.Canonical = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
    planner: options.Planner = DEFAULT_PLANNER,
    fft: options.FFT = DEFAULT_BACKEND,
    max_pixels: options.MaxPixels = DEFAULT_MAX_PIXELS,
    max_bytes: options.MaxBytes = DEFAULT_MAX_BYTES,
    strict: options.Strict = False,
) -> None:
    """Print the features of a few images: a quick look before a sweep."""
    use_pixel_cap(max_pixels)
    from scanner.features.extract import make_extractor
    from scanner.features.measure import measure_file

    extractor = make_extractor(
        feature_set,
        spectrum=spectrum,
        precision=precision,
        backend=fft,
        canonical=canonical,
        **backend_options(fft, planner=planner),
    )
    names = extractor.names
    width = max(len(shown(p)) for p in images)
    if not as_json:
        say(
            f"{'path':<{width}}  {'status':<10}  {'size':>9}  {'sha256':<{SHA256_SHOWN}}"
            + "".join(f"  {n:>9}" for n in names[: len(FEATURE_NAMES)])
        )
    unusable = 0
    for path in images:
        result = measure_file(path, extractor, max_pixels, max_bytes)
        unusable += result.status != Status.OK
        say(json.dumps(_feature_record(result, names)) if as_json else _feature_row(result, width, names))
    raise typer.Exit(ExitCode.SOME_UNUSABLE if strict and unusable else ExitCode.OK)


PROBLEMS_SHOWN = 5  # problem files the summary names; `scanner export --status` lists them all


def _rate_words(summary: ScanSummary) -> str:
    """How fast, in words: the rate after any first-run compiling, and the workers."""
    from scanner.core.words import plural
    from scanner.run.progress import format_rate

    measuring = summary.elapsed - summary.compile_seconds
    rate = format_rate(summary.written / measuring if measuring > 0 and summary.written else 0.0)
    workers = plural(summary.workers, "worker")
    if summary.compile_seconds:
        return f": {summary.compile_seconds:,.1f} s compiling kernels (first run only), then {rate} with {workers}"
    return f" ({rate}, {workers})"


def _summary(summary: ScanSummary, counts: dict[str, int], problems: list[tuple[str, str, str]]) -> str:
    from scanner.core.words import plural

    skipped = f"; {summary.skipped:,} already in the store" if summary.skipped else ""
    lines = [
        f"scanned {plural(summary.written, 'file')} in {summary.elapsed:,.1f} s{_rate_words(summary)}{skipped}",
        f"{shown(summary.out)}: {plural(summary.store_rows, 'row')}",
        *counts_lines(counts),
    ]
    unusable = {status: n for status, n in counts.items() if status != Status.OK}
    if unusable:
        n = sum(unusable.values())
        lines.append(f"{plural(n, 'file')} could not be judged{'; the first' if n > len(problems) else ''}:")
        lines += [f"  {path}: {status} ({error or 'no reason recorded'})" for path, status, error in problems]
        if n > len(problems):
            lines.append(
                f"list them all: scanner export {shlex.quote(summary.out)} --status {','.join(sorted(unusable))} "
                "--out problems.csv"
            )
    return "\n".join(lines)


def _summary_json(summary: ScanSummary, counts: dict[str, int], problems: list[tuple[str, str, str]]) -> str:
    return json.dumps(
        {
            "store": summary.out,
            "rows": summary.store_rows,
            "scanned": summary.written,
            "skipped": summary.skipped,
            "seconds": round(summary.elapsed, 3),
            "compile_seconds": round(summary.compile_seconds, 3),
            "running_rows": summary.running_rows,
            "running_seconds": round(summary.running_seconds, 3),
            "workers": summary.workers,
            "status": dict(sorted(counts.items())),
            "problems": [{"path": p, "status": s, "error": e} for p, s, e in problems],
            "interrupted": summary.interrupted,
        }
    )


WHAT_TO_SCAN = "What to scan"


def resume_command(argv: list[str]) -> str:
    """The command line that goes on with an interrupted scan: `argv` (sys.argv) without --overwrite,
    which would start over again, quoted for a shell."""
    ended = False  # after `--` every word is a path, even one named --overwrite
    words = ["scanner"]
    for word in argv[1:]:
        if word == "--overwrite" and not ended:
            continue
        ended = ended or word == "--"
        words.append(word)
    return shlex.join(words)


def _list_entries(path: Path, null: bool) -> Iterator[bytes]:
    """Paths of a list file (or stdin for '-'), as bytes so any file name survives."""
    from scanner.io.walk import list_entries

    try:
        check_list(path)
        if str(path) == "-":
            handle: BinaryIO = sys.stdin.buffer
        else:
            handle = open(path, "rb")  # noqa: SIM115 (closed below, whichever it is)
            _check_list_source(os.fstat(handle.fileno()), str(path), False)  # the file that was checked
        with handle:
            yield from list_entries(handle, null)
    except OSError as exc:
        raise InputError(f"cannot read the list {path}: {exc.strerror or exc}") from None


def check_list(path: Path) -> None:
    """InputError if the list (or stdin for '-') is a device that would never end, or unreadable."""
    try:
        if str(path) == "-":
            if sys.stdin is None:  # started with standard input closed (<&-)
                raise InputError("cannot read the list -: standard input is closed")
            _check_list_source(os.fstat(sys.stdin.fileno()), "standard input", sys.stdin.isatty())
        else:
            _check_list_source(os.stat(path), str(path), False)
    except OSError as exc:
        raise InputError(f"cannot read the list {path}: {exc.strerror or exc}") from None


def _check_list_source(status: os.stat_result, name: str, terminal: bool) -> None:
    """A list is a file, a pipe (--from-list <(find ...)) or a terminal; a device such as /dev/zero or
    /dev/urandom never ends (/dev/null, which is empty, is read as the empty list it is)."""
    from scanner.io.safeio import kind_of

    if stat.S_ISREG(status.st_mode) or stat.S_ISFIFO(status.st_mode) or terminal:
        return
    if stat.S_ISCHR(status.st_mode) and status.st_rdev == os.stat(os.devnull).st_rdev:
        return
    raise InputError(f"the list {name} is {kind_of(status.st_mode)}, not a file or a pipe")


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
        typer.Argument(help="Directories and files to scan.", metavar="PATH...", show_default=False),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-j", min=1, metavar="N", help="Worker processes (default: the cores this process may use)."
        ),
    ] = None,
    spectrum: options.ResumableSpectrum = None,
    feature_set: options.ResumableFeatureSet = None,
    canonical: options.ResumableCanonical = None,
    precision: options.ResumablePrecision = None,
    fft: options.FFT = DEFAULT_BACKEND,
    recursive: Annotated[
        bool,
        typer.Option("--recursive/--no-recursive", help="Descend into subdirectories.", rich_help_panel=WHAT_TO_SCAN),
    ] = True,
    ext: Annotated[
        str | None,
        typer.Option(
            "--ext",
            metavar="EXT,...",
            rich_help_panel=WHAT_TO_SCAN,
            help="Extensions to take from directories, e.g. jpg,png ('*': every file; default: the "
            "common image extensions).",
        ),
    ] = None,
    from_list: Annotated[
        Path | None,
        typer.Option(
            "--from-list",
            metavar="FILE",
            rich_help_panel=WHAT_TO_SCAN,
            help="Also scan the paths in this file, one per line, or NUL-separated as find -print0 writes (a list "
            "holding a NUL is read so) ('-': stdin).",
        ),
    ] = None,
    null: Annotated[
        bool,
        typer.Option(
            "--null",
            "-0",
            help="Paths in the --from-list file end only at NUL bytes, from the start (like xargs -0).",
            rich_help_panel=WHAT_TO_SCAN,
        ),
    ] = False,
    follow_links: Annotated[
        bool,
        typer.Option(
            "--follow-links/--no-follow-links",
            rich_help_panel=WHAT_TO_SCAN,
            help="Follow symbolic links met inside the directories (paths named directly are always followed).",
        ),
    ] = DEFAULT_FOLLOW_LINKS,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start over instead of resuming.")] = False,
    quiet: Quiet = False,
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
    strict: options.Strict = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="End with one JSON line on stdout (counts, problems) instead of words.")
    ] = False,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            metavar="ADDRESS",
            help="Run on a Dask cluster: a scheduler's address (tcp://host:8786), or 'local' for --workers "
            "processes on this machine (docs/cluster.md).",
            show_default=False,
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="I/N",
            help="Scan only the I-th of N shards of the listing (disjoint, covering; by path), e.g. for an "
            "array job; join the stores with `scanner merge`.",
            show_default=False,
        ),
    ] = None,
    file_timeout: Annotated[
        float,
        typer.Option(
            "--file-timeout",
            min=0,
            metavar="SECONDS",
            help="Stop a worker that spends longer reading and decoding one file; the file gets an unreadable "
            "row (0: no limit).",
        ),
    ] = DEFAULT_FILE_TIMEOUT,
    retry: Annotated[
        str | None,
        typer.Option(
            "--retry",
            metavar="STATUS,...",
            help="Measure again, on resume, the files whose rows have these statuses (e.g. truncated, or 'all' "
            "for every status but ok); each new row replaces the old one.",
            show_default=False,
        ),
    ] = None,
    task_files: Annotated[
        int | None,
        typer.Option(
            "--task-files", min=1, metavar="N", help="With --cluster: files per task at most (default 2,048)."
        ),
    ] = None,
    dashboard: Annotated[
        bool,
        typer.Option(
            "--dashboard",
            help="With --cluster: serve Dask's dashboard (for --cluster local, on port 8787 or a free one; "
            "it needs the bokeh package) and print its address.",
        ),
    ] = False,
) -> None:
    """Scan directories into a crash-safe, resumable HDF5 feature store."""
    use_pixel_cap(max_pixels)  # before the decoder loads, here and in the workers
    from contextlib import nullcontext

    from scanner.io.walk import Walk, parse_extensions
    from scanner.run.progress import ScanDisplay, TotalCount
    from scanner.run.sweep import MeasureOptions, ScanOptions, parse_retry, parse_shard, shard_files
    from scanner.run.sweep import scan as run_scan
    from scanner.store.hdf5 import column_counts, first_problems
    from scanner.store.session import CommitPolicy

    paths = paths or []
    quiet = quiet or not chatty()  # --log-level warning says as little as --quiet
    if str(out) == "-":
        raise InputError("a feature store is a file that scans resume and commands read: give a file name, not '-'")
    if not paths and from_list is None:
        raise InputError("nothing to scan: give directories or files, or --from-list FILE")
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if from_list is not None and str(from_list) != "-" and (not from_list.exists() or from_list.is_dir()):
        missing.append(str(from_list))  # a pipe is fine: --from-list <(find ...)
    if missing:
        raise InputError(f"no such file or directory: {', '.join(missing)}")
    if from_list is not None:
        check_list(from_list)
    try:
        extensions = parse_extensions(ext)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if task_files is not None and cluster is None:
        raise InputError("--task-files sets the size of a Dask task: it goes with --cluster")
    if dashboard and cluster is None:
        raise InputError("--dashboard shows a Dask cluster at work: it goes with --cluster")
    if workers is not None and cluster not in (None, "local"):
        raise InputError(
            "--workers sets the processes of the local pool or of --cluster local; a running Dask "
            "cluster has the workers started for it"
        )

    def walk_of(from_list: Path | None) -> Walk:
        entries = _list_entries(from_list, null) if from_list is not None else None
        return Walk(paths, recursive=recursive, extensions=extensions, from_list=entries, follow_links=follow_links)

    walk = walk_of(from_list)
    # The total (for the bar and the time left) comes from a second walk counted in the background (of
    # the shard's files only, with --shard); a list that cannot be read twice (stdin, a pipe) shows no total.
    countable = not quiet and (from_list is None or (str(from_list) != "-" and from_list.is_file()))
    scan_options = ScanOptions(
        MeasureOptions(feature_set, spectrum, precision, canonical, fft, planner),
        ReadLimits(max_pixels, max_bytes),
        CommitPolicy(checkpoint_rows=checkpoint_rows),
        workers=workers,
        overwrite=overwrite,
        file_timeout=file_timeout,
        shard=parse_shard(shard) if shard is not None else None,
        cluster=cluster,
        task_files=task_files,
        retry=parse_retry(retry),
        dashboard=dashboard,
    )
    try:
        with (
            ScanDisplay(quiet=quiet) as display,
            TotalCount(lambda: shard_files(walk_of(from_list), scan_options.shard), display.set_total)
            if countable
            else nullcontext(),
        ):
            summary = run_scan(walk, out, scan_options, ["scanner", *sys.argv[1:]], display.update)
        counts = column_counts(summary.out)
        problems = first_problems(summary.out, PROBLEMS_SHOWN)
    except OSError as exc:
        raise FatalError(f"{exc.strerror or exc}: {exc.filename or out}") from None
    except ScanError as exc:
        if overwrite:  # "rerun the same command" would start over again
            raise ScanError(f"{exc}; to resume, leave out --overwrite: {resume_command(sys.argv)}") from None
        raise
    if as_json:
        typer.echo(_summary_json(summary, counts, problems))
    elif not quiet:
        say(_summary(summary, counts, problems))
    if summary.interrupted:
        if overwrite:  # the same command would start over again
            say(f"interrupted: what finished is in the store; to go on, run: {resume_command(sys.argv)}", err=True)
        else:
            say("interrupted: what finished is in the store; run the same command again to go on", err=True)
        raise typer.Exit(ExitCode.INTERRUPTED)
    unusable = any(s != Status.OK for s in counts)
    raise typer.Exit(ExitCode.SOME_UNUSABLE if strict and unusable else ExitCode.OK)
