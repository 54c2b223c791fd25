"""A store's life on disk while rows are added to it: lock, journal, recovery, merges, resume.

``StoreSession`` is the one writer's hold on a store. Opening it takes the
store's lock, folds a stopped scan's journal into the store, reads which files
the store has done (resume compares path, size and mtime) and starts a new
journal. Rows added to it go to the journal in fsynced batches; at checkpoints
and at the end the journal is merged with the old store into a new file renamed
over it (scanner.store.hdf5). Nothing here knows how rows are measured: executors
(scanner.run.executors) do that, and scanner.run.sweep joins the two.

Crash safety: a store is never written in place, a journal record counts only
once it is fsynced, and the store records the id of the last journal merged
into it, so a kill at any point (even inside a merge) loses nothing reported
written and never merges a journal twice.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import signal
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import numpy as np

from scanner.core.constants import RETRY_STATUSES
from scanner.core.errors import InputError, ScanError, StoreError, StoreMismatch
from scanner.core.faults import kill_point
from scanner.core.schema import SCHEMA_VERSION, Measurement, Rows, full_paths
from scanner.store.hdf5 import CHUNK_ROWS, StoreHeader, StoreWriter, iter_rows, now_utc, read_header, store_attrs
from scanner.store.journal import Journal
from scanner.store.parts import Part, PartError, list_parts, parts_path, remove_directory, remove_parts, set_aside

log = logging.getLogger(__name__)


def journal_path(out: str) -> str:
    return f"{out}.journal"


def lock_path(out: str) -> str:
    return f"{out}.lock"


# --- identities of files: what resume compares -------------------------------------------


def _key(path: bytes, *extra: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(path + b"".join(extra), digest_size=8).digest(), "little")


def file_key(path: bytes, size: int, mtime: float) -> int:
    """64-bit identity of (path, size, mtime)."""
    return _key(path, b"\0", struct.pack("<qd", size, mtime))


def path_key(path: bytes) -> int:
    """64-bit identity of a path alone: which rows of a merge describe the same file."""
    return _key(path)


# --- the lock ---------------------------------------------------------------------------------


@contextmanager
def locked(out: str) -> Iterator[None]:
    """One writer per store at a time: an flock on STORE.lock, which is removed when released.

    Removing a lock file that others may open needs care: after taking the lock,
    the file we locked must still be the one at the path (a writer that was
    releasing may have just removed it); if not, take the lock again on the new
    file. The holder removes the path before it lets the lock go.
    """
    import fcntl  # imported here: importing scanner must not need it

    lock = lock_path(out)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ScanError(f"{out} is being written by another scan (lock {lock} is held)") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(lock)
        finally:
            os.close(fd)


# --- checks, recovery, merges ------------------------------------------------------------------


def check_store(out: str, measurement: Measurement) -> StoreHeader | None:
    """The existing store's header, or None; StoreMismatch if it cannot be resumed with this measurement."""
    if not os.path.exists(out):
        return None
    try:
        header = read_header(out)
    except StoreError as exc:
        raise StoreMismatch(f"{exc}. Choose another --out, or pass --overwrite to replace it.") from None
    check_compatible(out, header.measurement, measurement)
    return header


def measurement_to_resume(out: str | os.PathLike) -> Measurement | None:
    """How the rows already at `out` were measured: the store's (or, before its first merge, an
    unfinished scan's journal's); None when there is nothing to resume or it cannot be read."""
    out = os.path.abspath(os.fspath(out))
    try:
        return read_header(out).measurement
    except StoreError:
        pass
    header = Journal.header_of(journal_path(out))
    try:
        return Measurement.from_attrs(header) if header is not None and not header.get("replace") else None
    except InputError:
        return None


def check_compatible(what: str, found: Measurement, wanted: Measurement) -> None:
    """StoreMismatch, saying what to do, when rows measured as `found` cannot join rows measured as `wanted`."""
    differs = wanted.difference(found)
    if differs is None:
        return
    option, mine, theirs = differs
    resume, restart = (" ".join(filter(None, (option, value))) for value in (theirs, mine))
    raise StoreMismatch(
        f"{what} holds rows measured with {found.describe()}, not {wanted.describe()}: rerun with "
        f"{resume} to resume it, or pass --overwrite (or another --out) to scan with {restart}"
    )


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


def merge(out: str, journal: Journal, parts: Sequence[Part] = ()) -> int:
    """Rebuild the store from its old rows plus the part files' and the journal's; returns the row count.

    A path that appears more than once keeps its last row (a rescanned file
    replaces its old row). A journal started by --overwrite leaves the old rows
    out. The new file replaces the old one atomically and records the journal's
    id, so the same journal is never merged twice; part files merged again after a
    crash give the same rows again, so merging one twice changes nothing.
    """
    header = journal.header
    old = store_source(out) if os.path.exists(out) and not header.get("replace") else None
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
        if part.measurement != measurement or part.header.get("schema_version") != SCHEMA_VERSION:
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


def merge_stores(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, command: str = "") -> MergeResult:
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
        tmp = stack.enter_context(output_path(target, inputs=names))
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


def recover(out: str, measurement: Measurement) -> None:
    """Fold a stopped scan's journal into the store (or drop it if it was already merged).

    A journal of an interrupted --overwrite replaces the store, whatever the store holds.
    """
    path = journal_path(out)
    journal = Journal.recover(path)
    if journal is None:
        if os.path.exists(path):
            os.unlink(path)
        return
    try:
        replaces = bool(journal.header.get("replace"))
        header = _readable_header(out) if replaces else check_store(out, measurement)
        merged = header is not None and header.attrs.get("journal_id") == journal.id
        if not merged and (journal.rows or replaces):
            check_compatible(f"{out} (an unfinished scan, {path})", journal.measurement, measurement)
            log.info("finishing an interrupted scan: %d rows from its journal go into %s", journal.rows, out)
            merge(out, journal)
    finally:
        journal.close()
    journal.retire()


def _readable_header(out: str) -> StoreHeader | None:
    try:
        return read_header(out) if os.path.exists(out) else None
    except StoreError:
        return None


def done_keys(out: str) -> tuple[np.ndarray, int]:
    """Sorted identities of the files the store has done, and its row count.

    Rows with a status that may clear up by itself (RETRY_STATUSES) are not
    done: their files are tried again.
    """
    if not os.path.exists(out):
        return np.zeros(0, np.uint64), 0
    roots = read_header(out).roots
    chunks, rows_seen = [np.zeros(0, np.uint64)], 0
    for rows in iter_rows(out):
        rows_seen += len(rows)
        keep = ~np.isin(rows.status, list(RETRY_STATUSES))
        chunks.append(
            np.array(
                [
                    file_key(p, size, mtime)
                    for p, size, mtime, wanted in zip(
                        full_paths(rows, roots), rows.size.tolist(), rows.mtime.tolist(), keep.tolist(), strict=True
                    )
                    if wanted
                ],
                np.uint64,
            )
        )
    done = np.concatenate(chunks)
    done.sort()
    return done, rows_seen


# --- the session -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommitPolicy:
    commit_rows: int = 1024  # journal batch size ...
    commit_seconds: float = 1.0  # ... or age, whichever comes first
    checkpoint_rows: int = 50_000  # merge into the store after this many new rows (or the store's size)


class StoreSession:
    """One writer's hold on a store while rows are added: use as a context manager.

    ``is_done`` says whether a file is already in the store (same path, size and
    mtime); ``add`` takes finished rows; ``tick`` commits what waits once it is
    old enough; ``finish`` commits the rest, merges the journal into the store
    and returns the store's row count. Leaving the context without ``finish``
    (a crash, an error) leaves the committed rows in the journal, for the next
    session on the same store to recover.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        measurement: Measurement,
        roots: Sequence[str],
        command: Sequence[str] = (),
        *,
        overwrite: bool = False,
        backend: str = "",
        policy: CommitPolicy | None = None,
    ) -> None:
        self.out = os.path.abspath(os.fspath(out))
        self.measurement = measurement
        self.roots = [os.fsencode(r) for r in roots]
        self.overwrite = overwrite
        self.policy = policy or CommitPolicy()
        self.header: dict[str, Any] = {
            **measurement.attrs(),
            "schema_version": SCHEMA_VERSION,
            "command": " ".join(command),
            "created": now_utc(),
            "roots": list(roots),
            "backend": backend,
        }
        self.counts: Counter[str] = Counter()  # rows committed this session, per status
        self.skipped = 0
        self.store_rows = 0
        self.parts_dir = parts_path(self.out)  # where a distributed scan's workers write their rows
        self._part_rows = 0  # rows in part files reported finished and not yet merged
        self._reported: set[str] = set()  # those part files
        self._pending: list[Rows] = []
        self._pending_rows = 0
        self._last_commit = time.monotonic()
        self._done = np.zeros(0, np.uint64)
        self._journal: Journal | None = None
        self._lock: Any = None

    @property
    def written(self) -> int:
        return sum(self.counts.values())

    def __enter__(self) -> StoreSession:
        directory = os.path.dirname(self.out)
        if not os.path.isdir(directory):
            raise ScanError(f"cannot write {self.out}: no directory {directory}")
        if not os.access(directory, os.W_OK):
            raise ScanError(f"cannot write {self.out}: directory {directory} is not writable")
        self._lock = locked(self.out)
        self._lock.__enter__()
        try:
            self._open()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def _open(self) -> None:
        out = self.out
        if os.path.exists(f"{out}.tmp"):
            os.unlink(f"{out}.tmp")  # a merge that was cut short; its sources are intact
        if self.overwrite:
            # The old store stays until the new one replaces it: a journal that says so.
            if os.path.exists(journal_path(out)):
                os.unlink(journal_path(out))
            shutil.rmtree(self.parts_dir, ignore_errors=True)  # an earlier distributed scan's rows
            self.header["replace"] = True
        else:
            recover(out, self.measurement)
            check_store(out, self.measurement)
            ingest_parts(out, self.measurement)  # a stopped distributed scan's finished tasks are done
            self._done, self.store_rows = done_keys(out)
        self._journal = Journal.create(journal_path(out), self.header)

    def __exit__(self, *exc: object) -> None:
        try:
            if self._journal is not None:
                self._journal.close()
        finally:
            self._lock.__exit__(None, None, None)

    def is_done(self, path: bytes, size: int, mtime: float) -> bool:
        if not len(self._done):
            return False
        key = np.uint64(file_key(path, size, mtime))
        at = np.searchsorted(self._done, key)
        done = bool(at < len(self._done) and self._done[at] == key)
        self.skipped += done
        return done

    def add(self, rows: Rows) -> None:
        if len(rows):
            self._pending.append(rows)
            self._pending_rows += len(rows)
        # Batches stay well under a checkpoint, so that checkpoints come when asked for.
        batch = min(self.policy.commit_rows, max(1, self.policy.checkpoint_rows // 8))
        if self._pending_rows >= batch:
            self._commit_and_maybe_checkpoint()

    def add_part(self, path: str, rows: int, counts: dict[str, int]) -> None:
        """A worker wrote `rows` rows to the part file `path` in parts_dir (merged at the next checkpoint)."""
        self.counts.update(counts)
        self._part_rows += rows
        self._reported.add(os.path.abspath(path))
        if self._journal is not None and self._journal.rows + self._part_rows >= max(
            self.policy.checkpoint_rows, self.store_rows
        ):
            self.commit()
            self._checkpoint()

    def tick(self) -> None:
        """Commit what waits once it is older than the policy allows."""
        if self._pending and time.monotonic() - self._last_commit >= self.policy.commit_seconds:
            self._commit_and_maybe_checkpoint()

    def _commit_and_maybe_checkpoint(self) -> None:
        self.commit()
        assert self._journal is not None
        if self._journal.rows + self._part_rows >= max(self.policy.checkpoint_rows, self.store_rows):
            self._checkpoint()

    def commit(self) -> None:
        """Write the waiting rows to the journal durably."""
        if not self._pending:
            return
        assert self._journal is not None
        rows = Rows.concat(self._pending)
        self._journal.append(rows)
        kill_point("journal-appended")
        self.counts.update(rows.status.tolist())
        self._pending, self._pending_rows = [], 0
        self._last_commit = time.monotonic()

    def _checkpoint(self) -> None:
        """Bring the store up to date and start a new journal (no longer one that replaces the store)."""
        assert self._journal is not None
        self._journal.close()
        parts = self._parts_to_merge()
        self.store_rows = merge(self.out, self._journal, parts)
        remove_parts([p.path for p in parts])
        self._part_rows = 0
        log.debug("checkpoint: %s brought up to date (%d rows)", self.out, self.store_rows)
        self.header.pop("replace", None)
        self._journal = Journal.create(journal_path(self.out), self.header)

    def _parts_to_merge(self) -> list[Part]:
        """The part files in parts_dir; the rows of those not reported yet (a task that finished as the
        scan was stopped, or one handed out by an earlier, stopped client) count as written now."""
        parts = open_parts(self.parts_dir, self.measurement, strict=False)
        for part in parts:
            if os.path.abspath(part.path) not in self._reported:
                self.counts.update(part.counts)
        self._reported.clear()
        return parts

    def finish(self) -> int:
        """Commit, merge the journal into the store, retire it; the store's row count."""
        self.commit()
        journal = self._journal
        assert journal is not None
        journal.close()
        parts = self._parts_to_merge()
        if journal.rows or parts or not os.path.exists(self.out) or journal.header.get("replace"):
            self.store_rows = merge(self.out, journal, parts)
        remove_parts([p.path for p in parts])
        journal.retire()
        remove_directory(self.parts_dir)
        self._journal = None
        return self.store_rows
