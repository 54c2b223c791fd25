"""`scanner scan`: stream files through worker processes into a crash-safe store.

The parent walks (scanner.walk), skips files already in the store, hands small
chunks of paths to worker processes over one pipe each (at most two chunks in
flight per worker, so nothing piles up in memory however large the tree), and
appends finished rows to the journal (scanner.journal) in fsynced batches. At
the end, at checkpoints, and when a stopped scan is restarted, the journal is
merged with the old store into a new file renamed over it (scanner.store).

Each worker keeps one FeatureExtractor, so FFTW plans and buffers are reused
image after image. Workers come from a fork server that has already imported
the feature engine. A worker that dies (a decoder crash on a hostile file) is
replaced; its unfinished files are retried one by one, and a file that kills a
worker on its own gets an `unreadable` row instead of stopping the sweep.
"""

from __future__ import annotations

import fcntl
import hashlib
import multiprocessing as mp
import os
import signal
import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

import numpy as np

from scanner.decode import DEFAULT_MAX_PIXELS, ImageInfo
from scanner.features import FEATURE_NAMES, FeatureExtractor, features_of_file
from scanner.journal import Journal
from scanner.store import (
    SCHEMA_VERSION,
    Rows,
    StoreError,
    StoreWriter,
    iter_rows,
    now_utc,
    read_attrs,
    store_attrs,
    store_length,
)
from scanner.walk import Found, Walk

_IN_FLIGHT = 2  # chunks outstanding per worker: one working, one queued
_LOOK_AHEAD = 4096  # walk entries examined per step while skipping done files
RETRY_STATUSES = ("permission", "vanished")  # tried again on resume: fixed permissions, a file back
_READY = "ready"  # a worker's first message: it started and holds its extractor
_MAX_CRASHES = 8  # worker deaths in a row, with no chunk finished between, before giving up


class ScanError(Exception):
    """The scan cannot start or go on (for example an unwritable output)."""


class StoreMismatch(ScanError):
    """The output exists but cannot be resumed with these options; the message says what to do."""


@dataclass
class ScanOptions:
    spectrum: str = "log"
    planner: str = "measure"
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int | None = None  # None: every core this process may use
    overwrite: bool = False
    chunk_files: int = 16  # files per task sent to a worker
    commit_rows: int = 1024  # journal batch size ...
    commit_seconds: float = 1.0  # ... or age, whichever comes first
    checkpoint_rows: int = 50_000  # merge into the store after this many new rows (or the store's size)


@dataclass
class Progress:
    """A snapshot for progress displays."""

    written: int  # rows durably written this run
    skipped: int  # files already in the store
    total: int | None  # files expected, when known
    elapsed: float
    counts: Counter = field(default_factory=Counter)


@dataclass
class ScanSummary:
    out: str
    counts: Counter  # rows written this run, per status
    skipped: int
    elapsed: float
    store_rows: int
    workers: int
    interrupted: bool = False  # stopped by Ctrl-C; what finished is in the store

    @property
    def written(self) -> int:
        return sum(self.counts.values())

    @property
    def images_per_second(self) -> float:
        return self.written / self.elapsed if self.elapsed > 0 else 0.0


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _kill_point(name: str) -> None:
    """Crash-test hook: with SCANNER_TEST_KILL_AT=name, SIGKILL the whole process group here.

    The tests use it to stop a real scan at the exact moments a crash is most
    dangerous (inside a merge, between a merge and retiring its journal).
    """
    if os.environ.get("SCANNER_TEST_KILL_AT") == name:
        os.killpg(os.getpgid(0), signal.SIGKILL)


def _key(path: bytes, *extra: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(path + b"".join(extra), digest_size=8).digest(), "little")


def file_key(path: bytes, size: int, mtime: float) -> int:
    """64-bit identity of (path, size, mtime): what resume compares."""
    return _key(path, b"\0", struct.pack("<qd", size, mtime))


def _full_paths(rows: Rows, roots: list[bytes]) -> Iterator[bytes]:
    return (os.path.join(roots[r], rel) for r, rel in zip(rows.root.tolist(), rows.relpath))


# --- workers -------------------------------------------------------------------


def _worker_main(conn: Connection, spectrum: str, planner: str, max_pixels: int) -> None:
    """Measure chunks of files until told to stop (None) or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C does
    extractor = FeatureExtractor(spectrum, planner=planner)
    conn.send(_READY)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        chunk_id, paths = task
        conn.send((chunk_id, [_measure(os.fsdecode(p), extractor, max_pixels) for p in paths]))


def _measure(path: str, extractor: FeatureExtractor, max_pixels: int) -> tuple:
    """(status, error, features, info) of one file; an unexpected error is that file's row, not the end of the sweep."""
    try:
        r = features_of_file(path, extractor, max_pixels)
    except Exception as exc:  # features_of_file turns bad files into statuses; this is a bug or MemoryError
        return "unreadable", f"internal error: {exc!r}", None, ImageInfo()
    return r.status, r.error, r.features, r.info


class _Worker:
    def __init__(self, ctx, options: ScanOptions) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker_main, daemon=True, args=(child, options.spectrum, options.planner, options.max_pixels)
        )
        self.process.start()
        child.close()
        self.chunks: dict[int, list[Found]] = {}
        self.ready = False  # started up: from then on, a death is blamed on the files it was given

    def send(self, chunk_id: int, chunk: list[Found], roots: list[bytes]) -> bool:
        """Hand over a chunk; False if the worker is gone (the chunk is retried when it is replaced)."""
        self.chunks[chunk_id] = chunk
        try:
            self.conn.send((chunk_id, [os.path.join(roots[f.root], f.relpath) for f in chunk]))
        except OSError:
            return False
        return True

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _start_workers(ctx, options: ScanOptions, n: int) -> list[_Worker]:
    """Start n workers with SIGINT ignored, so that the fork server (started with the
    first one) inherits that and a Ctrl-C reaches only the parent, which stops cleanly."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return [_Worker(ctx, options) for _ in range(n)]
    finally:
        signal.signal(signal.SIGINT, previous)


def _result_rows(chunk: list[Found], results: list) -> Rows:
    n = len(chunk)
    features = np.full((n, len(FEATURE_NAMES)), np.nan)
    for i, (status, _, values, _) in enumerate(results):
        if status == "ok":
            features[i] = values
    infos = [r[3] for r in results]
    return Rows(
        root=np.array([f.root for f in chunk], np.int32),
        relpath=[f.relpath for f in chunk],
        status=[r[0] for r in results],
        error=[r[1] for r in results],
        features=features,
        height=np.array([i.height or 0 for i in infos], np.int64),
        width=np.array([i.width or 0 for i in infos], np.int64),
        format=[i.format or "" for i in infos],
        jpeg_subsampling=[i.jpeg_subsampling or "" for i in infos],
        jpeg_quality=np.array([i.jpeg_quality or 0 for i in infos], np.int64),
        size=np.array([f.size for f in chunk], np.int64),
        mtime=np.array([f.mtime for f in chunk], np.float64),
    )


def _problem_rows(found: list[Found]) -> Rows:
    """Rows for what the walk itself could not read (no worker involved)."""
    return _result_rows(found, [(f.status, f.error, None, ImageInfo()) for f in found])


# --- the store, its journal and their lock ---------------------------------------


def journal_path(out: str) -> str:
    return f"{out}.journal"


@contextmanager
def _locked(out: str) -> Iterator[None]:
    """One scan per store at a time."""
    lock = f"{out}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScanError(f"{out} is being written by another scan (lock {lock} is held)") from None
        try:
            yield
        finally:
            os.unlink(lock)
    finally:
        os.close(fd)


def _check_store(out: str, spectrum: str) -> dict | None:
    """The existing store's attributes, or None; ScanError if it cannot be resumed."""
    if not os.path.exists(out):
        return None
    try:
        attrs = read_attrs(out)
    except StoreError as exc:
        raise StoreMismatch(f"{exc}. Choose another --out, or pass --overwrite to replace it.") from None
    _check_compatible(out, attrs, spectrum)
    return attrs


def _check_compatible(what: str, attrs: dict, spectrum: str) -> None:
    if int(attrs.get("schema_version", -1)) != SCHEMA_VERSION:
        raise StoreMismatch(
            f"{what} was written with store schema {attrs.get('schema_version')}, this scanner writes "
            f"{SCHEMA_VERSION}: pass --overwrite to rescan into a new store, or use another --out"
        )
    if attrs.get("spectrum") != spectrum:
        raise StoreMismatch(
            f"{what} holds --spectrum {attrs.get('spectrum')} features, not {spectrum}: rerun with "
            f"--spectrum {attrs.get('spectrum')} to resume it, or pass --overwrite (or another --out) "
            f"to scan with {spectrum}"
        )


def merge(out: str, journal: Journal) -> int:
    """Rebuild the store from its old rows plus the journal's; returns the row count.

    A path that appears more than once keeps its last row (a rescanned file
    replaces its old row). The new file replaces the old one atomically and
    records the journal's id, so the same journal is never merged twice.
    """
    old = read_attrs(out) if os.path.exists(out) else None
    roots = list(old["roots"]) if old else [""]
    roots += [r for r in journal.header["roots"] if r not in roots]
    remap = np.array([roots.index(r) for r in journal.header["roots"]], np.int32)
    encoded = [os.fsencode(r) for r in roots]

    def batches() -> Iterator[Rows]:
        if old:
            yield from iter_rows(out)
        for rows in journal.read_rows():
            rows.root = remap[rows.root]
            yield rows

    total = (store_length(out) if old else 0) + journal.rows
    keep = _last_occurrences(
        np.fromiter((_key(p) for rows in batches() for p in _full_paths(rows, encoded)), np.uint64, total)
    )
    header = journal.header
    attrs = store_attrs(header["spectrum"], [], roots, journal.id, created=old["created"] if old else header["created"])
    attrs["command"] = header["command"]
    writer = StoreWriter(out, attrs)
    try:
        start = 0
        for rows in batches():
            writer.append(rows.take(keep[start : start + len(rows)]))
            start += len(rows)
            _kill_point("merge-writing")
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    _kill_point("merge-replaced")
    return int(keep.sum())


def _last_occurrences(keys: np.ndarray) -> np.ndarray:
    """Mask of the last occurrence of each key (the temporaries go when this returns)."""
    _, last_in_reversed = np.unique(keys[::-1], return_index=True)
    keep = np.zeros(len(keys), bool)
    keep[len(keys) - 1 - last_in_reversed] = True
    return keep


def _recover(out: str, attrs: dict | None, spectrum: str) -> None:
    """Fold a stopped scan's journal into the store (or drop it if already merged)."""
    path = journal_path(out)
    journal = Journal.recover(path)
    if journal is None:
        if os.path.exists(path):
            os.unlink(path)
        return
    try:
        merged = attrs is not None and attrs.get("journal_id") == journal.id
        if not merged and journal.rows:
            _check_compatible(f"{out} (an unfinished scan, {path})", journal.header, spectrum)
            merge(out, journal)
    finally:
        journal.close()
    journal.retire()


def _done_keys(out: str) -> tuple[np.ndarray, int]:
    """Sorted identities of the files the store has done, and its row count.

    Rows with a status that may clear up by itself (RETRY_STATUSES) are not
    done: their files are tried again.
    """
    if not os.path.exists(out):
        return np.zeros(0, np.uint64), 0
    encoded = [os.fsencode(r) for r in read_attrs(out)["roots"]]
    chunks, rows_seen = [np.zeros(0, np.uint64)], 0
    for rows in iter_rows(out):
        rows_seen += len(rows)
        chunks.append(
            np.array(
                [
                    file_key(p, size, mtime)
                    for p, size, mtime, status in zip(
                        _full_paths(rows, encoded), rows.size.tolist(), rows.mtime.tolist(), rows.status
                    )
                    if status not in RETRY_STATUSES
                ],
                np.uint64,
            )
        )
    done = np.concatenate(chunks)
    done.sort()
    return done, rows_seen


# --- the scan ------------------------------------------------------------------------


def scan(
    walk: Walk,
    out: str | os.PathLike,
    options: ScanOptions,
    command: Iterable[str] = (),
    on_progress: Callable[[Progress], None] | None = None,
    total: int | None = None,
) -> ScanSummary:
    """Scan every file the walk yields into the store `out`, resuming what is there.

    Workers come from a fork server, so, as with multiprocessing's spawn, a
    script that calls this must do so under ``if __name__ == "__main__":``.
    Raises StoreMismatch when `out` cannot be resumed with these options, and
    ScanError when the scan cannot start or go on.
    """
    out = os.path.abspath(os.fspath(out))
    directory = os.path.dirname(out)
    if not os.path.isdir(directory):
        raise ScanError(f"cannot write {out}: no directory {directory}")
    if not os.access(directory, os.W_OK):
        raise ScanError(f"cannot write {out}: directory {directory} is not writable")
    started = time.monotonic()
    with _locked(out):
        if options.overwrite:
            for stale in (out, journal_path(out)):
                if os.path.exists(stale):
                    os.unlink(stale)
        if os.path.exists(f"{out}.tmp"):
            os.unlink(f"{out}.tmp")  # a merge that was cut short; its sources are intact
        _recover(out, _check_store(out, options.spectrum), options.spectrum)
        run = _Run(walk, out, options, list(command), on_progress, total, started)
        return run.execute()


class _Run:
    """One scan's state: the walk, the workers, the journal and the counters."""

    def __init__(
        self,
        walk: Walk,
        out: str,
        options: ScanOptions,
        command: list[str],
        on_progress: Callable[[Progress], None] | None,
        total: int | None,
        started: float,
    ) -> None:
        self.walk, self.out, self.options = walk, out, options
        self.on_progress = on_progress
        self.started = started
        self.roots = [os.fsencode(r) for r in walk.roots]
        self.done, self.store_rows = _done_keys(out)
        self.header = {
            "spectrum": options.spectrum,
            "schema_version": SCHEMA_VERSION,
            "command": " ".join(command),
            "created": now_utc(),
            "roots": list(walk.roots),
        }
        self.progress = Progress(0, 0, total, 0.0)
        self.pending: list[Rows] = []
        self.pending_rows = 0
        self.last_commit = time.monotonic()
        self.last_report = 0.0
        self.retry: deque[list[Found]] = deque()
        self.found = iter(walk)
        self.walk_done = False
        self.chunk_ids = 0
        self.crashes = 0

    def execute(self) -> ScanSummary:
        self.journal = Journal.create(journal_path(self.out), self.header)
        n_workers = self.options.workers or default_workers()
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["scanner.features"])
        workers = _start_workers(ctx, self.options, n_workers)
        interrupted = False
        try:
            self._loop(ctx, workers)
        except KeyboardInterrupt:
            interrupted = True  # keep what is finished: commit and merge it below
        finally:
            for worker in workers:
                worker.stop()
            self._commit()
            self.journal.close()
        store_rows = (
            merge(self.out, self.journal) if self.journal.rows or not os.path.exists(self.out) else self.store_rows
        )
        self.journal.retire()
        self._report(force=True)
        return ScanSummary(
            self.out,
            self.progress.counts,
            self.progress.skipped,
            time.monotonic() - self.started,
            store_rows,
            n_workers,
            interrupted,
        )

    def _loop(self, ctx, workers: list[_Worker]) -> None:
        while True:
            for worker in workers:
                while len(worker.chunks) < _IN_FLIGHT:
                    chunk = self._next_chunk()
                    if not chunk:
                        break
                    self.chunk_ids += 1
                    if not worker.send(self.chunk_ids, chunk, self.roots):
                        break
            busy = [i for i, w in enumerate(workers) if w.chunks]
            if not busy and self.walk_done and not self.retry:
                return
            if busy:
                ready = wait([workers[i].conn for i in busy] + [workers[i].process.sentinel for i in busy], timeout=0.5)
                for i in busy:
                    worker = workers[i]
                    if worker.conn in ready:
                        if self._receive(worker):
                            continue
                    elif worker.process.sentinel not in ready:
                        continue
                    workers[i] = self._replace(ctx, worker)
            self._maybe_commit()
            self._report()

    def _next_chunk(self) -> list[Found]:
        """The next files for a worker: retries first, then the walk; [] if none ready now."""
        if self.retry:
            return self.retry.popleft()
        chunk: list[Found] = []
        problems: list[Found] = []
        for _ in range(_LOOK_AHEAD):
            found = next(self.found, None)
            if found is None:
                self.walk_done = True
                break
            if len(self.done) and self._is_done(found):
                self.progress.skipped += 1
                continue
            if found.status:
                problems.append(found)
            else:
                chunk.append(found)
                if len(chunk) >= self.options.chunk_files:
                    break
        if problems:
            self._add(_problem_rows(problems))
        return chunk

    def _is_done(self, found: Found) -> bool:
        key = file_key(os.path.join(self.roots[found.root], found.relpath), found.size, found.mtime)
        at = np.searchsorted(self.done, np.uint64(key))
        return bool(at < len(self.done) and self.done[at] == key)

    def _receive(self, worker: _Worker) -> bool:
        """Take one finished chunk from a worker; False if the worker is gone."""
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            return False
        if message == _READY:
            worker.ready = True
            return True
        chunk_id, results = message
        self.crashes = 0
        self._add(_result_rows(worker.chunks.pop(chunk_id), results))
        return True

    def _replace(self, ctx, dead: _Worker) -> _Worker:
        """A worker died: retry its files one by one; a lone file that kills it gets a row.

        A worker that died before it was ready blames no file: its chunks are
        retried as they are, and repeated start-up failures stop the scan.
        """
        dead.stop()
        code = dead.process.exitcode
        self.crashes += 1
        if self.crashes > _MAX_CRASHES:
            hint = (
                ""
                if dead.ready
                else " (at start-up: when calling scan() from a script, guard it with if __name__ == '__main__')"
            )
            raise ScanError(
                f"worker processes keep dying (last exit code {code}){hint}; {self.progress.written} "
                f"rows are saved: rerun the same command to resume"
            )
        for chunk in dead.chunks.values():
            if not dead.ready:
                self.retry.appendleft(chunk)
            elif len(chunk) == 1:
                f = chunk[0]
                self._add(
                    _problem_rows(
                        [
                            f._replace(
                                status="unreadable", error=f"the decoder crashed on this file (worker exit code {code})"
                            )
                        ]
                    )
                )
            else:
                self.retry.extend([f] for f in chunk)
        dead.chunks.clear()
        return _start_workers(ctx, self.options, 1)[0]

    def _add(self, rows: Rows) -> None:
        self.pending.append(rows)
        self.pending_rows += len(rows)

    def _maybe_commit(self) -> None:
        # Batches stay well under a checkpoint, so that checkpoints come when asked for.
        batch = min(self.options.commit_rows, max(1, self.options.checkpoint_rows // 8))
        if self.pending_rows >= batch or (
            self.pending and time.monotonic() - self.last_commit >= self.options.commit_seconds
        ):
            self._commit()
            if self.journal.rows >= max(self.options.checkpoint_rows, self.store_rows):
                self._checkpoint()

    def _commit(self) -> None:
        if not self.pending:
            return
        rows = Rows.concat(self.pending)
        self.journal.append(rows)
        _kill_point("journal-appended")
        self.progress.counts.update(rows.status)
        self.progress.written += len(rows)
        self.pending, self.pending_rows = [], 0
        self.last_commit = time.monotonic()

    def _checkpoint(self) -> None:
        """Bring the store up to date and start a new journal."""
        self.journal.close()
        self.store_rows = merge(self.out, self.journal)
        self.journal = Journal.create(journal_path(self.out), self.header)

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress and (force or now - self.last_report >= 0.1):
            self.last_report = now
            self.progress.elapsed = now - self.started
            self.on_progress(self.progress)
