"""Merges: rows of stores, journals and part files written into a new store, one row per path.

``merge_sources`` is the one merge: a scan's checkpoints and end (``merge``: the
old store, part files and the journal), a stopped distributed scan's part files
(``ingest_parts``) and ``scanner merge`` (``merge_stores``) all go through it. It
writes a temporary file in a child process and renames it over the store
(scanner.store.hdf5), so a store is never written in place and a failed write
(a full disk) loses nothing: the sources are as they were.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any, Literal, NoReturn

import numpy as np

from scanner.core.errors import InputError, ScanError, StoreError, StoreMismatch
from scanner.core.faults import kill_point
from scanner.core.schema import SCHEMA_VERSION, Measurement, Rows, full_paths
from scanner.store.hdf5 import CHUNK_ROWS, StoreWriter, iter_rows, read_header, store_attrs
from scanner.store.journal import Journal
from scanner.store.keys import check_compatible
from scanner.store.lock import locked
from scanner.store.parts import PART_SCHEMAS, Part, PartError, list_parts, parts_path, remove_parts, set_aside


@dataclass
class RowSource:
    """Rows to merge: a store, a journal or a part file, read in batches (twice: keys, then rows)."""

    name: str
    roots: list[str]
    rows: int
    measurement: Measurement
    batches: Callable[[], Iterator[Rows]]
    schema_version: int = SCHEMA_VERSION
    disk_bytes: int = 0  # about what its rows take in a store (to refuse a merge that cannot fit)


def store_source(path: str) -> RowSource:
    header = read_header(path)
    return RowSource(
        path,
        list(header.roots),
        header.rows,
        header.measurement,
        lambda: iter_rows(path),
        header.schema_version,
        _size(path),
    )


def journal_source(journal: Journal) -> RowSource:
    return RowSource(
        journal.path,
        list(journal.header["roots"]),
        journal.rows,
        journal.measurement,
        journal.read_rows,
        disk_bytes=_size(journal.path) // 2,
    )


def part_source(part: Part) -> RowSource:
    return RowSource(part.path, part.roots, part.rows, part.measurement, part.batches, disk_bytes=_size(part.path) // 2)


@dataclass(frozen=True)
class MergeResult:
    rows: int  # rows in the merged store
    duplicates: int  # rows left out because another row of the same path was kept


Keep = Literal["last", "newest"]


def merge_sources(
    dest: str,
    sources: Sequence[RowSource],
    measurement: Measurement,
    *,
    command: str = "",
    journal_id: str = "",
    created: str | None = None,
    backend: str = "",
    keep: Keep = "last",
    kept_note: str = "nothing was changed",
) -> MergeResult:
    """Write the rows of all sources into the store `dest` (temporary file, then rename), one row per path.

    A path present more than once keeps one row: with ``keep="last"`` the last one in
    source order (a scan: a rescanned file replaces its old row), with ``"newest"`` the
    one with the newest mtime, the later source winning a tie (``scanner merge``). Paths
    are compared by a 128-bit hash of their full bytes. The sources' roots are joined
    into one list and each row's root remapped to it. Memory: about 40 bytes per row.

    The new file is written by a child process (fork): what HDF5 does when a
    write fails (a full disk: errors at every later call, and at times a crash
    when the file is closed) happens there. This process removes the temporary
    file and raises ScanError (exit code 3) saying what happened and, in
    `kept_note`, where the rows are kept: the sources are as they were, so
    nothing is lost and the same command, rerun once there is room, finishes.
    A merge that clearly cannot fit in the free space is refused before it starts.
    """
    args = (dest, sources, measurement)
    options: dict[str, Any] = dict(command=command, journal_id=journal_id, created=created, backend=backend, keep=keep)
    needed = sum(source.disk_bytes for source in sources)
    free = _free_bytes(dest)
    if free is not None and free < needed:
        raise ScanError(
            f"cannot write {dest}: not enough space (it needs about {needed / 1e6:,.1f} MB, "
            f"{free / 1e6:,.1f} MB are free); {kept_note}"
        )
    if not hasattr(os, "fork"):  # pragma: no cover - systems without fork
        return _merge_sources_here(*args, **options)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (its outcome is checked through the parent)
        os.close(read_end)
        _merge_child(lambda failed: _merge_sources_here(*args, **options, failed=failed), write_end)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read().decode("utf-8", "replace")
        _, status = os.waitpid(pid, 0)
    except BaseException:  # Ctrl-C while the child writes: stop it, keep the store and the sources
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        _remove(f"{dest}.tmp")
        raise
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        rows, duplicates = (int(n) for n in message.split())
        return MergeResult(rows, duplicates)
    _remove(f"{dest}.tmp")
    if code == _CHILD_STORE_ERROR:
        raise StoreError(message)
    if code < 0:
        name = signal.Signals(-code).name
        free = _free_bytes(dest)
        full = f", with {free / 1e6:,.1f} MB left on its disk" if free is not None and free < needed else ""
        raise ScanError(f"cannot write {dest}: the process writing it died ({name}{full}); {kept_note}")
    raise ScanError(f"cannot write {dest}: {message}; {kept_note}")


_CHILD_STORE_ERROR = 2
_CHILD_FAILED = 3


def _merge_child(
    merge_here: Callable[[Callable[[BaseException], NoReturn]], MergeResult], write_end: int
) -> NoReturn:  # pragma: no cover - runs in the child
    """The merge's child process: do it, send the counts or what went wrong, and exit at once (no
    cleanup: HDF5 may crash closing a file whose writes failed; the parent removes it)."""

    def leave(code: int, message: str) -> NoReturn:
        try:
            os.write(write_end, message.encode("utf-8", "replace"))
        finally:
            os._exit(code)

    def unraisable(report: Any) -> None:
        # h5py meets HDF5's write errors first where it cannot raise them (freeing an object), then
        # HDF5 may crash: the first such error is the reason, and the child leaves with it at once.
        if report.exc_value is not None and _write_failure(report.exc_value) in _WRITE_ERRORS:
            leave(_CHILD_FAILED, _write_failure(report.exc_value))

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # HDF5's complaints after a failed write are not for the terminal
        sys.unraisablehook = unraisable
        result = merge_here(lambda exc: leave(_CHILD_FAILED, _write_failure(exc)))
    except StoreError as exc:
        leave(_CHILD_STORE_ERROR, str(exc))
    except BaseException as exc:
        leave(_CHILD_FAILED, _write_failure(exc))
    leave(0, f"{result.rows} {result.duplicates}")


_WRITE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO)
_WRITE_ERRORS = frozenset(os.strerror(code) for code in _WRITE_ERRNOS)


def _write_failure(exc: BaseException) -> str:
    """What a failed write says, in words: the system's reason (No space left on device, File too large)."""
    number = getattr(exc, "errno", None)
    text = str(exc)
    for code in _WRITE_ERRNOS:
        if number == code or f"errno = {code}," in text:
            return os.strerror(code)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _free_bytes(path: str) -> int | None:
    """Bytes this user may still write in path's directory, or None if the system will not say."""
    try:
        info = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except (OSError, AttributeError):
        return None
    return info.f_bavail * info.f_frsize


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _remove(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def _merge_sources_here(
    dest: str,
    sources: Sequence[RowSource],
    measurement: Measurement,
    *,
    command: str = "",
    journal_id: str = "",
    created: str | None = None,
    backend: str = "",
    keep: Keep = "last",
    failed: Callable[[BaseException], NoReturn] | None = None,
) -> MergeResult:
    """merge_sources(), in this process. `failed`, if given, is called (and never returns) as soon as
    writing fails, before HDF5 is asked to close or free anything of a file whose writes failed."""
    roots = [""]
    for source in sources:
        roots += [r for r in source.roots if r not in roots]
    remaps = [np.array([roots.index(r) for r in source.roots], np.int32) for source in sources]
    total = sum(source.rows for source in sources)

    def batches() -> Iterator[Rows]:
        for source, remap in zip(sources, remaps, strict=True):
            seen = 0
            for rows in source.batches():
                seen += len(rows)
                if seen > source.rows:
                    break
                if len(remap):
                    rows.root[:] = remap[rows.root]  # each batch is read anew: changed in place
                yield rows
            if seen != source.rows:
                raise ScanError(
                    f"{source.name} changed during the merge ({seen:,} rows read, {source.rows:,} announced): "
                    "is something writing it? Nothing was written; run the merge again"
                )

    # A row's full path is its root joined with its relative path (as os.path.join; a path under
    # the '' root is absolute).
    prefixes = [os.fsencode(r).rstrip(b"/") + b"/" if r else b"" for r in roots]
    keys = np.empty((total, 2), np.uint64)
    mtimes = np.empty(total, np.float64) if keep == "newest" else None
    start = 0
    for rows in batches():
        end = start + len(rows)
        digests = b"".join(
            hashlib.blake2b(prefixes[r] + p, digest_size=16).digest()
            for r, p in zip(rows.root.tolist(), rows.path.tolist(), strict=True)
        )
        keys[start:end] = np.frombuffer(digests, "<u8").reshape(-1, 2)
        if mtimes is not None:
            mtimes[start:end] = rows.mtime
        start = end
    kept = _kept_rows(keys, mtimes)
    del keys, mtimes
    attrs = store_attrs(measurement, command, roots, journal_id, created=created, backend=backend)
    try:
        writer = StoreWriter(dest, attrs, expected_rows=int(kept.sum()))
        try:
            start, waiting, n_waiting = 0, [], 0
            for rows in batches():
                taken = rows.take(kept[start : start + len(rows)])
                start += len(rows)
                waiting.append(taken)
                n_waiting += len(taken)
                if n_waiting >= CHUNK_ROWS:  # whole chunks: far fewer HDF5 calls than one per small batch
                    writer.append(Rows.concat(waiting))
                    waiting, n_waiting = [], 0
                kill_point("merge-writing")
            if waiting:
                writer.append(Rows.concat(waiting))
        except BaseException as exc:
            if failed is not None:
                failed(exc)
            writer.abort()
            raise
        writer.commit()
    except (OSError, RuntimeError) as exc:
        if failed is not None:
            failed(exc)
        raise
    kill_point("merge-replaced")
    n = int(kept.sum())
    return MergeResult(n, total - n)


def _kept_rows(keys: np.ndarray, mtimes: np.ndarray | None) -> np.ndarray:
    """Mask of the row kept for each key: the last one, or the newest (mtimes given), the last of equals."""
    n = len(keys)
    order_keys = (np.arange(n),) if mtimes is None else (np.arange(n), mtimes)
    order = np.lexsort((*order_keys, keys[:, 1], keys[:, 0]))  # by key, then mtime, then position
    ordered = keys[order]
    last_of_group = np.ones(n, bool)
    if n > 1:
        last_of_group[:-1] = np.any(ordered[1:] != ordered[:-1], axis=1)
    kept = np.zeros(n, bool)
    kept[order[last_of_group]] = True
    return kept


def _store_without(path: str, forget: frozenset[bytes]) -> RowSource:
    """The store's rows less those of the paths in `forget` (each path has one row in a store)."""
    source = store_source(path)
    if not forget:
        return source
    roots = source.roots

    def batches() -> Iterator[Rows]:
        for rows in iter_rows(path):
            keep = np.array([p not in forget for p in full_paths(rows, roots)], bool)
            yield rows if keep.all() else rows.take(keep)

    gone = 0
    for rows in iter_rows(path):
        gone += sum(p in forget for p in full_paths(rows, roots))
    return replace(source, rows=source.rows - gone, batches=batches)


def merge(out: str, journal: Journal, parts: Sequence[Part] = (), forget: frozenset[bytes] = frozenset()) -> int:
    """Rebuild the store from its old rows plus the part files' and the journal's; returns the row count.

    A path that appears more than once keeps its last row (a rescanned file
    replaces its old row); the old rows of the paths in `forget` are left out. A
    journal started by --overwrite leaves the old rows out. The new file replaces
    the old one atomically and records the journal's id, so the same journal is
    never merged twice; part files merged again after a crash give the same rows
    again, so merging one twice changes nothing.
    """
    header = journal.header
    old = _store_without(out, forget) if os.path.exists(out) and not header.get("replace") else None
    created = read_header(out).attrs.get("created") if old else header.get("created")
    sources = [*([old] if old else []), *(part_source(p) for p in parts), journal_source(journal)]
    result = merge_sources(
        out,
        sources,
        journal.measurement,
        command=str(header.get("command", "")),
        journal_id=journal.id,
        created=created,
        backend=str(header.get("backend", "")),
        kept_note=f"the rows of this scan are kept in {journal.path}: rerun the same command to finish",
    )
    return result.rows


def ingest_parts(out: str, measurement: Measurement, *, strict: bool = True) -> tuple[list[Part], int]:
    """Merge the part files next to the store into it (a stopped distributed scan's finished tasks).

    Part files measured another way are refused (StoreMismatch) when `strict`, else
    deleted (a task of an earlier scan that finished after the store was overwritten).
    Returns the merged parts (deleted once the store holds their rows) and the store's row count.
    """
    directory = parts_path(out)
    parts = open_parts(directory, measurement, strict=strict)
    if not parts:
        return [], read_header(out).rows if os.path.exists(out) else 0
    old = read_header(out) if os.path.exists(out) else None
    sources = [*([store_source(out)] if old else []), *(part_source(p) for p in parts)]
    result = merge_sources(
        out,
        sources,
        measurement,
        command=str(old.attrs.get("command", "")) if old else str(parts[0].header.get("command", "")),
        journal_id=str(old.attrs.get("journal_id", "")) if old else "",
        created=old.attrs.get("created") if old else None,
        backend=str(old.attrs.get("backend", "")) if old else str(parts[0].header.get("backend", "")),
        kept_note=f"the rows are kept in the part files in {directory}: rerun the same command to finish",
    )
    remove_parts([p.path for p in parts])
    return parts, result.rows


def open_parts(directory: str, measurement: Measurement, *, strict: bool = True) -> list[Part]:
    """The usable part files of a directory: damaged ones are set aside, others measured differently
    refused (strict) or deleted."""
    parts = []
    for path in list_parts(directory):
        try:
            part = Part.open(path)
        except PartError:
            set_aside(path)
            continue
        if part.measurement != measurement or part.header.get("schema_version") not in PART_SCHEMAS:
            if strict:
                what = f"{directory} (an unfinished distributed scan's part files)"
                check_compatible(what, part.measurement, measurement)
                raise StoreMismatch(
                    f"{path} was written by a scanner of another store schema "
                    f"({part.header.get('schema_version')}); pass --overwrite to start over"
                )
            remove_parts([path])
            continue
        parts.append(part)
    return parts


def merge_stores(
    inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], command: str = ""
) -> MergeResult:
    """``scanner merge``: the rows of several stores in one new store `out` (never one of the inputs).

    The stores must be measured the same way (feature set, spectrum, precision) and
    be of the same store schema; a path present in more than one keeps the row with
    the newest mtime (the later input on a tie), and the result counts the rows left
    out. The same merge as a scan's (merge_sources); `out` is written to a temporary
    file and renamed, under its lock, and each input's lock is held while it is read.
    """
    from contextlib import ExitStack, suppress

    from scanner.io.outputs import output_path, refuse_inputs

    names = [os.fspath(p) for p in inputs]
    if not names:
        raise InputError("nothing to merge: give the stores to merge")
    headers = [read_header(name) for name in names]
    first = headers[0]
    for header in headers[1:]:
        differs = first.measurement.difference(header.measurement)
        if differs is not None:
            option, mine, theirs = differs
            raise StoreMismatch(
                f"{header.path} was measured with {header.measurement.describe()}, {first.path} with "
                f"{first.measurement.describe()} ({option} {theirs} and {mine}): only stores measured the same "
                "way can be merged; rescan one of them with the other's options"
            )
        if header.schema_version != first.schema_version:
            raise StoreMismatch(
                f"{header.path} is store schema {header.schema_version}, {first.path} schema "
                f"{first.schema_version}: resume the older one with this scanner's `scanner scan` to bring it to "
                f"schema {SCHEMA_VERSION}, then merge"
            )
    target = os.path.abspath(os.fspath(out))
    if not os.path.isdir(os.path.dirname(target)):
        raise ScanError(f"cannot write {target}: no directory {os.path.dirname(target)}")
    backends = sorted({str(h.attrs.get("backend", "")) for h in headers} - {""})
    refuse_inputs(target, names)
    with ExitStack() as stack:
        stack.enter_context(locked(target))
        for name in sorted({os.path.realpath(n) for n in names}):
            with suppress(PermissionError):  # a store in a read-only directory: no scan can be writing it
                stack.enter_context(locked(name))
        tmp = stack.enter_context(output_path(target, inputs=names, replaces=""))  # a store: no format
        sources = [store_source(name) for name in names]
        return merge_sources(
            tmp,
            sources,
            first.measurement,
            command=command,
            backend=",".join(backends),
            keep="newest",
            kept_note="the stores merged are unchanged and nothing was written",
        )
