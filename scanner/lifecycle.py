"""A store's life on disk while rows are added to it: lock, journal, recovery, merges, resume.

``StoreSession`` is the one writer's hold on a store. Opening it takes the
store's lock, folds a stopped scan's journal into the store, reads which files
the store has done (resume compares path, size and mtime) and starts a new
journal. Rows added to it go to the journal in fsynced batches; at checkpoints
and at the end the journal is merged with the old store into a new file renamed
over it (scanner.store). Nothing here knows how rows are measured: executors
(scanner.executors) do that, and scanner.scan joins the two.

Crash safety: a store is never written in place, a journal record counts only
once it is fsynced, and the store records the id of the last journal merged
into it, so a kill at any point (even inside a merge) loses nothing reported
written and never merges a journal twice.
"""

from __future__ import annotations

import hashlib
import os
import signal
import struct
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from scanner.constants import RETRY_STATUSES
from scanner.errors import FatalError, InputError
from scanner.journal import Journal
from scanner.schema import SCHEMA_VERSION, Measurement, Rows, full_paths
from scanner.store import StoreError, StoreHeader, StoreWriter, iter_rows, now_utc, read_header, store_attrs


class ScanError(FatalError):
    """The scan cannot start or go on (for example an unwritable output)."""


class StoreMismatch(InputError):
    """The output exists but cannot be resumed with these options; the message says what to do."""


def kill_point(name: str) -> None:
    """Crash-test hook: with SCANNER_TEST_KILL_AT=name, SIGKILL the whole process group here.

    The tests use it to stop a real scan at the exact moments a crash is most
    dangerous (inside a merge, between a merge and retiring its journal).
    """
    if os.environ.get("SCANNER_TEST_KILL_AT") == name:
        os.killpg(os.getpgid(0), signal.SIGKILL)


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


def merge(out: str, journal: Journal) -> int:
    """Rebuild the store from its old rows plus the journal's; returns the row count.

    A path that appears more than once keeps its last row (a rescanned file
    replaces its old row). A journal started by --overwrite leaves the old rows
    out. The new file replaces the old one atomically and records the journal's
    id, so the same journal is never merged twice.
    """
    header = journal.header
    old = read_header(out) if os.path.exists(out) and not header.get("replace") else None
    roots = list(old.roots) if old else [""]
    roots += [r for r in header["roots"] if r not in roots]
    remap = np.array([roots.index(r) for r in header["roots"]], np.int32)

    def batches() -> Iterator[Rows]:
        if old:
            yield from iter_rows(out)
        for rows in journal.read_rows():
            yield rows.replace(root=remap[rows.root])

    total = (old.rows if old else 0) + journal.rows
    keys = np.fromiter((path_key(p) for rows in batches() for p in full_paths(rows, roots)), np.uint64, total)
    keep = _last_occurrences(keys)
    del keys
    attrs = store_attrs(
        journal.measurement,
        str(header.get("command", "")),
        roots,
        journal.id,
        created=old.attrs.get("created") if old else header.get("created"),
        backend=str(header.get("backend", "")),
    )
    writer = StoreWriter(out, attrs)
    try:
        start = 0
        for rows in batches():
            writer.append(rows.take(keep[start : start + len(rows)]))
            start += len(rows)
            kill_point("merge-writing")
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    kill_point("merge-replaced")
    return int(keep.sum())


def _last_occurrences(keys: np.ndarray) -> np.ndarray:
    """Mask of the last occurrence of each key (the temporaries go when this returns)."""
    _, last_in_reversed = np.unique(keys[::-1], return_index=True)
    keep = np.zeros(len(keys), bool)
    keep[len(keys) - 1 - last_in_reversed] = True
    return keep


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
            self.header["replace"] = True
        else:
            recover(out, self.measurement)
            check_store(out, self.measurement)
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

    def tick(self) -> None:
        """Commit what waits once it is older than the policy allows."""
        if self._pending and time.monotonic() - self._last_commit >= self.policy.commit_seconds:
            self._commit_and_maybe_checkpoint()

    def _commit_and_maybe_checkpoint(self) -> None:
        self.commit()
        assert self._journal is not None
        if self._journal.rows >= max(self.policy.checkpoint_rows, self.store_rows):
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
        self.store_rows = merge(self.out, self._journal)
        self.header.pop("replace", None)
        self._journal = Journal.create(journal_path(self.out), self.header)

    def finish(self) -> int:
        """Commit, merge the journal into the store, retire it; the store's row count."""
        self.commit()
        journal = self._journal
        assert journal is not None
        journal.close()
        if journal.rows or not os.path.exists(self.out) or journal.header.get("replace"):
            self.store_rows = merge(self.out, journal)
        journal.retire()
        self._journal = None
        return self.store_rows
