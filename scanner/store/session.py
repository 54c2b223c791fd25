"""A store's life on disk while rows are added to it: journal, recovery, checkpoints, resume.

``StoreSession`` is the one writer's hold on a store. Opening it takes the
store's lock (scanner.store.lock), folds a stopped scan's journal into the store,
reads which files the store has done (resume compares path, size and mtime:
scanner.store.keys) and starts a new journal. Rows added to it go to the journal
in fsynced batches; at checkpoints and at the end the journal is merged with the
old store into a new file renamed over it (scanner.store.merge). Nothing here
knows how rows are measured: executors (scanner.run.executors) do that, and
scanner.run.sweep joins the two.

Crash safety: a store is never written in place, a journal record counts only
once it is fsynced, and the store records the id of the last journal merged
into it, so a kill at any point (even inside a merge) loses nothing reported
written and never merges a journal twice.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scanner.core.constants import RETRY_STATUSES
from scanner.core.errors import InputError, ScanError, StoreError, StoreMismatch
from scanner.core.faults import kill_point
from scanner.core.schema import SCHEMA_VERSION, Measurement, Rows, full_paths
from scanner.io.temporaries import remove_stale
from scanner.store.hdf5 import StoreHeader, iter_rows, now_utc, read_header
from scanner.store.journal import Journal
from scanner.store.keys import check_compatible, file_key
from scanner.store.lock import locked
from scanner.store.merge import ingest_parts, merge, open_parts
from scanner.store.parts import Part, parts_path, remove_directory, remove_parts

log = logging.getLogger(__name__)


def journal_path(out: str) -> str:
    return f"{out}.journal"


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


def measurement_to_resume(out: str | os.PathLike[str]) -> Measurement | None:
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


def done_keys(
    out: str, retry: Collection[str] = (), scope: Sequence[bytes] = ()
) -> tuple[np.ndarray, int, frozenset[bytes]]:
    """Sorted identities of the files the store has done, its row count, and the directories cleared.

    Rows with a status that may clear up by itself (RETRY_STATUSES), or one of
    `retry` (``scan --retry``), are not done: their files are measured again, and
    the new row replaces the old one. A directory's row of that kind (one that could
    not be listed) is never written again once the directory lists: such a
    directory under one of the walk's roots (`scope`) that lists now is returned, so
    that its row leaves the store at the next merge and its files get rows of their own.
    """
    if not os.path.exists(out):
        return np.zeros(0, np.uint64), 0, frozenset()
    roots = read_header(out).roots
    chunks, rows_seen, cleared = [np.zeros(0, np.uint64)], 0, set[bytes]()
    for rows in iter_rows(out):
        rows_seen += len(rows)
        keep = ~np.isin(rows.status, sorted(RETRY_STATUSES | set(retry)))
        paths = full_paths(rows, roots)
        chunks.append(
            np.array(
                [
                    file_key(p, size, mtime)
                    for p, size, mtime, wanted in zip(
                        paths, rows.size.tolist(), rows.mtime.tolist(), keep.tolist(), strict=True
                    )
                    if wanted
                ],
                np.uint64,
            )
        )
        cleared.update(p for p, wanted in zip(paths, keep.tolist(), strict=True) if not wanted and _lists_now(p, scope))
    done = np.concatenate(chunks)
    done.sort()
    return done, rows_seen, frozenset(cleared)


def _lists_now(path: bytes, scope: Sequence[bytes]) -> bool:
    """Whether `path` is a directory under one of `scope` that can be listed now (never following a link)."""
    inside = any(path == root or path.startswith(root.rstrip(b"/") + b"/") for root in scope)
    if not inside or not os.path.isdir(path) or os.path.islink(path):
        return False
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except OSError:
        return False
    return True


class OwnFiles:
    """Recognises a store's own files by name (cheap), then by the real path of their directory (so a
    directory reached through a symbolic link is recognised too)."""

    def __init__(self, out: str) -> None:
        directory, name = os.path.split(os.fsencode(out))
        self.base = name
        self.names = {name + suffix for suffix in (b"", b".journal", b".lock", b".tmp", b".journal.tmp")}
        self.parts = os.fsencode(os.path.basename(parts_path(out)))
        self.directory = os.path.realpath(directory)
        self._seen: tuple[bytes, bool] = (b"", False)  # the last directory looked at (the walk goes by directory)

    def _in(self, directory: bytes, expected: bytes) -> bool:
        if self._seen[0] != directory:
            self._seen = (directory, os.path.realpath(directory) == expected)
        return self._seen[1]

    def match(self, path: bytes) -> bool:
        directory, name = os.path.split(path)
        if name in self.names or name.startswith(b"." + self.base + b"."):
            return self._in(directory, self.directory)
        if b"/" + self.parts + b"/" in path:
            at = path.rindex(b"/" + self.parts + b"/")
            return os.path.realpath(path[:at]) == self.directory
        return False


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
        out: str | os.PathLike[str],
        measurement: Measurement,
        roots: Sequence[str],
        command: Sequence[str] = (),
        *,
        overwrite: bool = False,
        backend: str = "",
        policy: CommitPolicy | None = None,
        retry: Collection[str] = (),
    ) -> None:
        self.out = os.path.abspath(os.fspath(out))
        self.retry = frozenset(retry)
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
        self._cleared: frozenset[bytes] = frozenset()  # directory rows to drop at the next merge
        self._journal: Journal | None = None
        self._lock: Any = None
        self._own = OwnFiles(self.out)

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
        remove_stale(out)  # temporaries of a `scanner merge --out` (or other writer) that was killed
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
            scope = [os.path.abspath(r) for r in self.roots if r]
            self._done, self.store_rows, self._cleared = done_keys(out, self.retry, scope)
        self._journal = Journal.create(journal_path(out), self.header)

    def __exit__(self, *exc: object) -> None:
        try:
            if self._journal is not None:
                self._journal.close()
        finally:
            self._lock.__exit__(None, None, None)

    def is_own(self, path: bytes) -> bool:
        """Whether `path` is one of the store's own files (the store, its journal, lock, part files and
        temporaries), which a scan never takes as files to scan, whatever the walk found."""
        return self._own.match(path)

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
        self.store_rows = merge(self.out, self._journal, parts, self._cleared)
        self._cleared = frozenset()
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
        if journal.rows or parts or self._cleared or not os.path.exists(self.out) or journal.header.get("replace"):
            self.store_rows = merge(self.out, journal, parts, self._cleared)
            self._cleared = frozenset()
        remove_parts([p.path for p in parts])
        journal.retire()
        remove_directory(self.parts_dir)
        self._journal = None
        return self.store_rows
