"""`scanner scan`: stream walked files through an executor into a crash-safe store.

Three pieces meet here and nowhere else: the walk (scanner.io.walk) lists files;
the store session (scanner.store.session) says which are done and keeps the rows;
the executor (scanner.run.executors; by default a local process pool, or a Dask
cluster with ``cluster``) measures the rest. The walk is consumed lazily, chunk
by chunk as workers have room, so a million-file tree is never held in memory.

``shard=(I, N)`` scans only the I-th of N shards of the listing: a file belongs
to the shard its full path hashes to (scanner.store.keys.path_key), so the shards
of one listing are disjoint, cover it, and do not depend on the walk's order or on
the machine; with ``scanner merge`` their stores make one.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial

from scanner.core.constants import DEFAULT_FILE_TIMEOUT, DEFAULT_LIMITS, STATUSES, ReadLimits, Status
from scanner.core.errors import InputError, ScanError, StoreMismatch
from scanner.core.schema import Measurement
from scanner.features.backends.base import DEFAULT_BACKEND, DEFAULT_PLANNER, backend_options
from scanner.features.extract import ExtractorSpec, extractor_spec
from scanner.features.measure import problem_rows
from scanner.io.walk import Found, Walk
from scanner.run.executors.base import Chunk, Executor, MeasureSpec, PartDone
from scanner.run.warmup import warm_up
from scanner.store.keys import path_key
from scanner.store.session import CommitPolicy, StoreSession, journal_path, measurement_to_resume

__all__ = [
    "MeasureOptions",
    "Progress",
    "ScanError",
    "ScanOptions",
    "ScanSummary",
    "StoreMismatch",
    "journal_path",
    "scan",
    "shard_files",
]

LOOK_AHEAD = 4096  # walk entries examined per step while skipping done files


@dataclass(frozen=True)
class MeasureOptions:
    """How to measure; None: as the rows already in the store were measured, else the default."""

    feature_set: str | None = None
    spectrum: str | None = None
    precision: str | None = None
    canonical: bool | None = None  # re-encode each image as JPEG q90 4:2:0 in memory before measuring
    backend: str = DEFAULT_BACKEND
    planner: str = DEFAULT_PLANNER  # fftw backend only

    def extractor_spec(self, resume: Measurement | None = None) -> ExtractorSpec:
        """The extractor to measure with: the options given, else those of the rows to resume, else the defaults."""
        options = backend_options(self.backend, planner=self.planner)
        base = resume or Measurement()
        return extractor_spec(
            self.feature_set or base.feature_set,
            self.spectrum or base.spectrum,
            self.precision or base.precision,
            self.backend,
            canonical=base.canonical if self.canonical is None else self.canonical,
            **options,
        )


@dataclass
class ScanOptions:
    """A scan's options: how to measure, the bounds on reading a file, when rows are committed, and
    where and how the work runs."""

    measure: MeasureOptions = field(default_factory=MeasureOptions)
    limits: ReadLimits = DEFAULT_LIMITS  # pixels (from the header) and bytes (files are never read past them)
    commit: CommitPolicy = field(default_factory=CommitPolicy)
    workers: int | None = None  # None: every core this process may use
    overwrite: bool = False
    chunk_files: int = 16  # files per task sent to a worker
    file_timeout: float = DEFAULT_FILE_TIMEOUT  # seconds of reading and decoding per file (0: no limit)
    shard: tuple[int, int] | None = None  # (I, N): only the I-th of N shards of the listing
    cluster: str | None = None  # a Dask scheduler's address, or "local"; None: the local process pool
    task_files: int | None = None  # files per Dask task at most (None: the executor's default)
    dashboard: bool = False  # with cluster: serve Dask's dashboard (a local cluster's) and say where
    retry: frozenset[str] = frozenset()  # statuses whose rows are measured again (parse_retry)

    def __post_init__(self) -> None:
        if self.shard is not None:
            i, n = self.shard
            if not 1 <= i <= n:
                raise InputError(f"shard {i}/{n}: I must be from 1 to N")
        if self.file_timeout < 0:
            raise InputError("the time limit per file cannot be negative (0: no limit)")


@dataclass
class Progress:
    """A snapshot for progress displays."""

    written: int  # rows durably written this run
    skipped: int  # files already in the store
    total: int | None  # files expected, when known
    elapsed: float
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class ScanSummary:
    out: str
    counts: Counter[str]  # rows written this run, per status
    skipped: int
    elapsed: float
    store_rows: int
    workers: int
    interrupted: bool = False  # stopped by Ctrl-C; what finished is in the store
    compile_seconds: float = 0.0  # of elapsed, the time spent compiling the kernels (a first run only)
    # From the first result back from the workers to the last: the rows that came back in between (those of
    # the first result left out) and the seconds, so start-up (interpreter, imports, workers, plans) and
    # shut-down (the store's finish) are not in the rate.
    running_rows: int = 0
    running_seconds: float = 0.0

    @property
    def written(self) -> int:
        return sum(self.counts.values())

    @property
    def running_images_per_second(self) -> float | None:
        """Rows a second once the workers were running (None when fewer than two results came back)."""
        if self.running_rows <= 0 or self.running_seconds <= 0:
            return None
        return self.running_rows / self.running_seconds

    @property
    def images_per_second(self) -> float:
        return self.written / self.elapsed if self.elapsed > 0 else 0.0


def parse_shard(text: str) -> tuple[int, int]:
    """'2/8' -> (2, 8); InputError unless 1 <= I <= N."""
    i, slash, n = text.partition("/")
    try:
        shard = (int(i), int(n))
    except ValueError:
        shard = (0, 0)
    if not slash or not 1 <= shard[0] <= shard[1]:
        raise InputError(f"--shard takes I/N with 1 <= I <= N (e.g. 2/8), not {text!r}")
    return shard


def parse_retry(text: str | None) -> frozenset[str]:
    """--retry: 'truncated,corrupt' -> those statuses; 'all' -> every status but ok; None -> none.
    InputError for a status that does not exist, or for ok (--overwrite measures everything again)."""
    if text is None:
        return frozenset()
    wanted = frozenset(part.strip() for part in text.split(",") if part.strip())
    if wanted == {"all"}:
        return frozenset(STATUSES) - {Status.OK}
    if Status.OK in wanted:
        raise InputError("--retry ok would measure every file again: that is --overwrite")
    unknown = sorted(wanted - set(STATUSES))
    if not wanted or unknown:
        raise InputError(
            f"--retry: unknown status {', '.join(unknown) or repr(text)}; give 'all' or some of "
            f"{', '.join(s for s in STATUSES if s != Status.OK)}"
        )
    return wanted


def shard_of(path: bytes, n: int) -> int:
    """The shard (1 to n) a file's full path belongs to: the same on every machine and in every walk order."""
    return path_key(path) % n + 1


def shard_files(walk: Walk, shard: tuple[int, int] | None) -> Iterator[Found]:
    """What the walk yields that is in the shard (I, N) (all of it for None): the files a sharded scan goes
    through, for its progress total."""
    roots = [os.fsencode(root) for root in walk.roots]
    for found in walk:
        if shard is None or shard_of(os.path.join(roots[found.root], found.relpath), shard[1]) == shard[0]:
            yield found


def _chunks(
    walk: Walk,
    session: StoreSession,
    size: int,
    width: int,
    shard: tuple[int, int] | None = None,
    max_bytes: int | None = None,
) -> Iterator[Chunk]:
    """The walk in chunks of files to measure: done files skipped, the walk's own problems recorded.

    A chunk ends at `size` files or at `max_bytes` bytes of files. An empty chunk
    means nothing is ready yet (a long run of done files): the executor looks at
    its workers before asking again.
    """
    roots = session.roots
    entries = iter(walk)
    while True:
        chunk: Chunk = []
        problems: list[Found] = []
        exhausted = True
        nbytes = 0
        for examined, found in enumerate(entries, 1):
            path = os.path.join(roots[found.root], found.relpath)
            elsewhere = shard is not None and shard_of(path, shard[1]) != shard[0]
            if elsewhere or session.is_own(path) or session.is_done(path, found.size, found.mtime):
                pass
            elif found.status:
                problems.append(found)
            else:
                chunk.append(found)
                nbytes += found.size
                if len(chunk) >= size or (max_bytes is not None and nbytes >= max_bytes):
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


def _after(first: Callable[[], None], chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """The chunks, once `first` has run: an executor starts its workers before it asks for the first
    chunk, so the workers start up while `first` (the kernels' warm-up) runs."""
    first()
    yield from chunks


def scan(
    walk: Walk,
    out: str | os.PathLike[str],
    options: ScanOptions,
    command: Iterable[str] = (),
    on_progress: Callable[[Progress], None] | None = None,
    total: int | None = None,
    executor: Callable[[MeasureSpec, int | None], Executor] | None = None,
) -> ScanSummary:
    """Scan every file the walk yields into the store `out`, resuming what is there.

    The default executor's workers come from a fork server, so, as with
    multiprocessing's spawn, a script that calls this must do so under
    ``if __name__ == "__main__":`` (so must one that starts a local Dask cluster).
    Raises StoreMismatch when `out` cannot be resumed with these options, and
    ScanError when the scan cannot start or go on.
    """
    from scanner.run.executors.local import LocalPool

    started = time.monotonic()
    spec = options.measure.extractor_spec(None if options.overwrite else measurement_to_resume(out))
    session = StoreSession(
        out,
        spec.measurement,
        walk.roots,
        list(command),
        overwrite=options.overwrite,
        backend=spec.backend,
        policy=options.commit,
        retry=options.retry,
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
        measure = MeasureSpec(spec, tuple(session.roots), options.limits, options.file_timeout)
        compile_seconds = 0.0

        def warm() -> None:  # once per installation: compile the kernels here, so the workers load them
            nonlocal compile_seconds
            began = time.monotonic()
            if warm_up(spec):
                compile_seconds = time.monotonic() - began

        if executor is None and options.cluster:
            from scanner.run.executors.dask import TASK_FILES, DaskExecutor

            executor = partial(
                DaskExecutor,
                address=options.cluster,
                parts_dir=session.parts_dir,
                task_files=options.task_files or TASK_FILES,
                dashboard=options.dashboard,
            )
        pool = (executor or LocalPool)(measure, options.workers)
        running = _RunningClock()
        interrupted = False
        try:
            with pool:
                size = pool.chunk_files or options.chunk_files
                chunks = _chunks(walk, session, size, measure.n_features, options.shard, pool.chunk_bytes)
                for result in pool.map(_after(warm, chunks)):
                    if isinstance(result, PartDone):
                        session.add_part(result.path, result.rows, result.counts)
                    elif result is not None:
                        session.add(result)
                    if result is not None:
                        running.result(result.rows if isinstance(result, PartDone) else len(result))
                    session.tick()
                    report()
        except KeyboardInterrupt:
            interrupted = True  # keep what is finished: it is merged below
        except ScanError:  # the workers cannot go on (a lost cluster): what finished goes into the store
            if not session.written:  # nothing finished: no store is made (workers that never started)
                session.commit()
                raise
            try:
                session.finish()
            except Exception:
                session.commit()  # what finished stays in the journal (and part files) for the rerun
            raise
        except BaseException:
            session.commit()  # rows finished before the failure stay in the journal for the rerun
            raise
        store_rows = session.finish()
    report(force=True)
    return ScanSummary(
        session.out,
        session.counts,
        session.skipped,
        time.monotonic() - started,
        store_rows,
        pool.workers,
        interrupted,
        compile_seconds,
        running.rows,
        running.seconds,
    )


class _RunningClock:
    """When the results came back: the rows and seconds from the first to the last (ScanSummary.running_rows)."""

    def __init__(self) -> None:
        self.first_at = self.last_at = 0.0
        self.rows = 0  # rows of the results after the first

    def result(self, rows: int) -> None:
        now = time.monotonic()
        if self.first_at:
            self.rows += rows
        else:
            self.first_at = now
        self.last_at = now

    @property
    def seconds(self) -> float:
        return self.last_at - self.first_at
