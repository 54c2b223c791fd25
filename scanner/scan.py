"""`scanner scan`: stream walked files through an executor into a crash-safe store.

Three pieces meet here and nowhere else: the walk (scanner.walk) lists files;
the store session (scanner.lifecycle) says which are done and keeps the rows;
the executor (scanner.executors; by default a local process pool) measures the
rest. The walk is consumed lazily, chunk by chunk as workers have room, so a
million-file tree is never held in memory.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from scanner.backends import DEFAULT_BACKEND, DEFAULT_PLANNER
from scanner.constants import DEFAULT_MAX_PIXELS, DEFAULT_PRECISION, DEFAULT_SPECTRUM
from scanner.executors import Chunk, Executor, MeasureSpec
from scanner.extract import ExtractorSpec, extractor_spec
from scanner.featuresets import DEFAULT_FEATURE_SET
from scanner.lifecycle import CommitPolicy, ScanError, StoreMismatch, StoreSession, journal_path
from scanner.measure import problem_rows
from scanner.walk import Found, Walk

__all__ = ["Progress", "ScanError", "ScanOptions", "ScanSummary", "StoreMismatch", "journal_path", "scan"]

LOOK_AHEAD = 4096  # walk entries examined per step while skipping done files


@dataclass
class ScanOptions:
    feature_set: str = DEFAULT_FEATURE_SET
    spectrum: str = DEFAULT_SPECTRUM
    precision: str = DEFAULT_PRECISION
    canonical: bool = False  # re-encode each image as JPEG q90 4:2:0 in memory before measuring
    backend: str = DEFAULT_BACKEND
    planner: str = DEFAULT_PLANNER  # fftw backend only
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int | None = None  # None: every core this process may use
    overwrite: bool = False
    chunk_files: int = 16  # files per task sent to a worker
    commit_rows: int = 1024  # journal batch size ...
    commit_seconds: float = 1.0  # ... or age, whichever comes first
    checkpoint_rows: int = 50_000  # merge into the store after this many new rows (or the store's size)

    def extractor_spec(self) -> ExtractorSpec:
        options: dict[str, Any] = {"planner": self.planner} if self.backend == "fftw" else {}
        return extractor_spec(
            self.feature_set, self.spectrum, self.precision, self.backend, canonical=self.canonical, **options
        )

    def policy(self) -> CommitPolicy:
        return CommitPolicy(self.commit_rows, self.commit_seconds, self.checkpoint_rows)


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


def _chunks(walk: Walk, session: StoreSession, size: int, width: int) -> Iterator[Chunk]:
    """The walk in chunks of files to measure: done files skipped, the walk's own problems recorded.

    An empty chunk means nothing is ready yet (a long run of done files): the
    executor looks at its workers before asking again.
    """
    roots = session.roots
    entries = iter(walk)
    while True:
        chunk: Chunk = []
        problems: list[Found] = []
        exhausted = True
        for examined, found in enumerate(entries, 1):
            if session.is_done(os.path.join(roots[found.root], found.relpath), found.size, found.mtime):
                pass
            elif found.status:
                problems.append(found)
            else:
                chunk.append(found)
                if len(chunk) >= size:
                    exhausted = False
                    break
            if examined >= LOOK_AHEAD:
                exhausted = False
                break
        if problems:
            session.add(problem_rows(problems, width))
        if exhausted:
            if chunk:
                yield chunk
            return
        yield chunk


def scan(
    walk: Walk,
    out: str | os.PathLike,
    options: ScanOptions,
    command: Iterable[str] = (),
    on_progress: Callable[[Progress], None] | None = None,
    total: int | None = None,
    executor: Callable[[MeasureSpec, int | None], Executor] | None = None,
) -> ScanSummary:
    """Scan every file the walk yields into the store `out`, resuming what is there.

    The default executor's workers come from a fork server, so, as with
    multiprocessing's spawn, a script that calls this must do so under
    ``if __name__ == "__main__":``. Raises StoreMismatch when `out` cannot be
    resumed with these options, and ScanError when the scan cannot start or go on.
    """
    from scanner.executors.local import LocalPool

    started = time.monotonic()
    spec = options.extractor_spec()
    session = StoreSession(
        out,
        spec.measurement,
        walk.roots,
        list(command),
        overwrite=options.overwrite,
        backend=spec.backend,
        policy=options.policy(),
    )
    progress = Progress(0, 0, total, 0.0)
    last_report = 0.0

    def report(force: bool = False) -> None:
        nonlocal last_report
        now = time.monotonic()
        if on_progress and (force or now - last_report >= 0.1):
            last_report = now
            progress.written, progress.skipped, progress.counts = session.written, session.skipped, session.counts
            progress.elapsed = now - started
            on_progress(progress)

    with session:
        measure = MeasureSpec(spec, tuple(session.roots), options.max_pixels)
        pool = (executor or LocalPool)(measure, options.workers)
        interrupted = False
        try:
            with pool:
                for rows in pool.map(_chunks(walk, session, options.chunk_files, measure.n_features)):
                    if rows is not None:
                        session.add(rows)
                    session.tick()
                    report()
        except KeyboardInterrupt:
            interrupted = True  # keep what is finished: it is merged below
        except BaseException:
            session.commit()  # rows finished before the failure stay in the journal for the rerun
            raise
        store_rows = session.finish()
    report(force=True)
    return ScanSummary(
        session.out, session.counts, session.skipped, time.monotonic() - started, store_rows, pool.workers, interrupted
    )
