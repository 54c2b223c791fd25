"""The single-machine executor: worker processes fed over pipes, a few chunks in flight each.

Each worker builds one extractor from the MeasureSpec, so FFT plans and buffers
are reused image after image. Workers come from a fork server that has already
imported the engine. Chunks are handed out as workers have room (at most
``IN_FLIGHT`` per worker), so nothing piles up however large the listing.

A worker that dies (a decoder crash on a hostile file) is replaced. Its
unfinished files are retried one by one; a file that crashes a worker reading it
alone twice (SIGSEGV, SIGABRT, ...), or that was being read alone in a worker
killed from outside five times (SIGKILL: the OOM killer, or a person), gets an
``unreadable`` row instead of stopping the sweep. Only the file being read is
blamed: one the worker held but had not begun is retried as it was. A worker that
dies before it is ready blames no file, and repeated deaths with nothing
finished in between stop the scan.

A worker that spends more than ``MeasureSpec.file_timeout`` seconds reading and
decoding one file (a decoder that hangs rather than crashes) is killed and
replaced: that file gets an ``unreadable`` row saying it timed out, and the
other files it held go to the other workers as they were (they are not suspects).
Each worker tells the parent which file it is on through a few shared numbers,
so watching costs no message per file.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from typing import Any

from scanner.core.constants import Status
from scanner.core.errors import ScanError
from scanner.core.featuresets import get_feature_set
from scanner.core.schema import Rows
from scanner.features.backends.base import BACKENDS
from scanner.features.extract import build_extractor
from scanner.features.measure import measure_files, problem_rows
from scanner.run.executors.base import Chunk, Executor, MeasureSpec, timed_out_error

IN_FLIGHT = 2  # chunks outstanding per worker: one working, one queued
READY = "ready"  # a worker's first message: it started and holds its extractor
LOG = "log"  # a worker's log record: ("log", level, logger name, message), logged again by the parent
MAX_CRASHES = 8  # worker deaths in a row, with no chunk finished between, before giving up
LONE_CRASHES = 2  # times a file alone in a worker must crash it before it is marked unreadable
# A worker killed by a signal from outside (SIGKILL: the OOM killer or a person; SIGTERM, SIGHUP) may have
# died for reasons of its own, not the file's: a file alone in it is marked only after this many.
LONE_KILLS = 5
# Signals a process raises on itself when the code it runs fails: a decoder crash.
CRASH_SIGNALS = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL, signal.SIGSYS, signal.SIGTRAP}
)
POLL_SECONDS = 0.5

log = logging.getLogger(__name__)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class _ToParent(logging.Handler):
    """Sends a worker's log records (info and up) to the parent, which shows them."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(logging.INFO)
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        with suppress(Exception):  # the parent is gone, or the message cannot be sent: nothing to do
            self.conn.send((LOG, record.levelno, record.name, record.getMessage()))


class _SharedClock:
    """The worker's side of the time limit, and of whom its death blames: which chunk and file it is decoding,
    and since when (cells: chunk id, file index, start on the monotonic clock, 0 when not decoding)."""

    def __init__(self, cells: Any) -> None:
        self.cells = cells
        self.chunk_id = 0

    def start(self, index: int) -> None:
        cells = self.cells
        cells[2] = 0.0
        cells[0], cells[1] = self.chunk_id, index
        cells[2] = time.monotonic()

    def stop(self) -> None:
        self.cells[2] = 0.0


def _worker_main(conn: Connection, spec: MeasureSpec, cells: Any) -> None:
    """Measure chunks of files until told to stop (None) or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C does
    logger = logging.getLogger("scanner")
    logger.setLevel(logging.INFO)
    logger.addHandler(_ToParent(conn))
    logger.propagate = False
    extractor = build_extractor(spec.extractor)
    clock = _SharedClock(cells)  # the parent's view of what is read: its time limit, and whom a death blames
    try:
        conn.send(READY)
        while True:
            task = conn.recv()
            if task is None:
                return
            chunk_id, files = task
            clock.chunk_id = chunk_id
            conn.send(
                (
                    chunk_id,
                    measure_files(files, spec.roots, extractor, spec.limits.max_pixels, spec.limits.max_bytes, clock),
                )
            )
    except (EOFError, OSError):  # the parent is gone: nothing to report to
        return


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """Hold Ctrl-C back while workers start: the fork server inherits the blocked signal (so it
    never sees one), and an interrupt that came meanwhile is delivered to this process afterwards."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Worker:
    def __init__(self, ctx: Any, spec: MeasureSpec) -> None:
        self.conn, child = ctx.Pipe()
        self.cells = ctx.RawArray("d", 3)
        self.process = ctx.Process(target=_worker_main, daemon=True, args=(child, spec, self.cells))
        self.process.start()
        child.close()
        self.chunks: dict[int, Chunk] = {}
        self.ready = False  # started up: from then on, a death is blamed on the files it was given

    def send(self, chunk_id: int, chunk: Chunk) -> bool:
        """Hand over a chunk; False if the worker is gone (the chunk is retried when it is replaced)."""
        self.chunks[chunk_id] = chunk
        try:
            self.conn.send((chunk_id, chunk))
        except OSError:
            return False
        return True

    def overdue(self, timeout: float) -> tuple[int, int] | None:
        """(chunk id, file index) of a file this worker has been decoding for over `timeout` seconds."""
        started = self.cells[2]
        if timeout <= 0 or not started or time.monotonic() - started <= timeout:
            return None
        chunk_id, index = int(self.cells[0]), int(self.cells[1])
        return (chunk_id, index) if self.cells[2] == started and chunk_id in self.chunks else None

    def stop(self, now: bool = False) -> None:
        """Stop the worker: asked to finish, or (now) killed at once. A process stuck in the kernel
        (a hung network read) may outlive SIGKILL for a while: it is not waited for."""
        if not now:
            with suppress(OSError):
                self.conn.send(None)
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


class LocalPool(Executor):
    """Worker processes on this machine (default: one per usable core)."""

    def __init__(self, spec: MeasureSpec, workers: int | None = None) -> None:
        self.spec = spec
        self.workers = workers or default_workers()
        self._ctx = mp.get_context("forkserver")
        feature_module = get_feature_set(spec.extractor.measurement.feature_set).engine.partition(":")[0]
        backend_module = BACKENDS[spec.extractor.backend].target.partition(":")[0]
        self._ctx.set_forkserver_preload(["scanner.features.measure", feature_module, backend_module])
        self._pool: list[_Worker] = []
        self._retry: deque[Chunk] = deque()
        self._lone_crashes: Counter[tuple[int, bytes]] = Counter()  # crashes of a worker reading the file alone
        self._lone_kills: Counter[tuple[int, bytes]] = Counter()  # outside kills of one reading it alone
        self._crashes = 0
        self._next_id = 0
        self._said: set[tuple[int, str]] = set()  # workers' messages already shown (each says it once)

    def _start(self, n: int) -> list[_Worker]:
        # multiprocessing's resource tracker, when it starts, unblocks SIGINT in this thread (it blocks it
        # only around its own start): started before the block, it cannot let Ctrl-C into the fork server.
        resource_tracker.ensure_running()
        with sigint_blocked():
            return [_Worker(self._ctx, self.spec) for _ in range(n)]

    def map(self, chunks: Iterator[Chunk]) -> Iterator[Rows | None]:
        if not self._pool:
            self._pool = self._start(self.workers)
        exhausted = False
        while True:
            for worker in self._pool:
                while len(worker.chunks) < IN_FLIGHT:
                    chunk = self._retry.popleft() if self._retry else next(chunks, None)
                    if chunk is None:
                        exhausted = True
                        break
                    if not chunk:  # the listing has nothing ready now: look at the workers first
                        break
                    self._next_id += 1
                    if not worker.send(self._next_id, chunk):
                        break
            busy = [w for w in self._pool if w.chunks]
            if not busy and exhausted and not self._retry:
                return
            if not busy:
                yield None
                continue
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=POLL_SECONDS)
            for worker in busy:
                if worker.conn in ready:
                    alive, rows = self._receive(worker)
                    if rows is not None:
                        yield rows
                    if alive:
                        continue
                elif worker.process.sentinel not in ready:
                    continue
                yield from self._replace(worker)
            for worker in list(self._pool):
                hung = worker.overdue(self.spec.file_timeout)
                if hung is not None:
                    yield from self._replace(worker, hung)
            yield None

    def _receive(self, worker: _Worker) -> tuple[bool, Rows | None]:
        """One message from a worker: whether it is still there, and a finished chunk's rows (None for
        its ready message)."""
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            return False, None
        if message == READY:
            worker.ready = True
            return True, None
        if len(message) == 4 and message[0] == LOG:
            _, level, name, text = message
            if (level, text) not in self._said:
                self._said.add((level, text))
                logging.getLogger(name).log(level, text)
            return True, None
        chunk_id, rows = message
        worker.chunks.pop(chunk_id)
        self._crashes = 0
        return True, rows

    def _replace(self, dead: _Worker, hung: tuple[int, int] | None = None) -> Iterator[Rows]:
        """A worker died: retry its files one by one; a lone file that kills it twice gets a row.

        A worker stuck on file `hung` (chunk id, index) is killed: that file gets its row, and
        the rest of its files are retried as they were.
        """
        if hung is not None:
            dead.stop(now=True)
            chunk_id, index = hung
            for cid, chunk in dead.chunks.items():
                if cid == chunk_id:
                    f = chunk[index]
                    yield problem_rows(
                        [f._replace(status=Status.UNREADABLE.value, error=timed_out_error(self.spec.file_timeout))],
                        self.spec.n_features,
                    )
                    chunk = chunk[:index] + chunk[index + 1 :]
                if chunk:
                    self._retry.appendleft(chunk)
            dead.chunks.clear()
            self._pool[self._pool.index(dead)] = self._start(1)[0]
            return
        dead.stop()
        code = dead.process.exitcode
        self._crashes += 1
        log.warning(
            "a worker process died (exit code %s); %s",
            code,
            "its files are tried again one by one" if dead.ready else "starting another",
        )
        if self._crashes > MAX_CRASHES:
            hint = (
                ""
                if dead.ready
                else (" (at start-up: when calling scan() from a script, guard it with if __name__ == '__main__')")
            )
            raise ScanError(
                f"worker processes keep dying (last exit code {code}){hint}; the rows finished so far "
                "are saved: rerun the same command to resume"
            )
        reading = int(dead.cells[0])  # the chunk whose file it was reading last (0: none begun)
        for chunk_id, chunk in dead.chunks.items():
            if not dead.ready or (len(chunk) == 1 and chunk_id != reading):
                self._retry.appendleft(chunk)  # never begun: the death is not this file's doing
            elif len(chunk) == 1:
                f = chunk[0]
                key = (f.root, f.relpath)
                crashed = code is None or code > 0 or -code in CRASH_SIGNALS
                (self._lone_crashes if crashed else self._lone_kills)[key] += 1
                if self._lone_crashes[key] < LONE_CRASHES and self._lone_kills[key] < LONE_KILLS:
                    self._retry.appendleft(chunk)
                else:
                    times = self._lone_crashes[key] if crashed else self._lone_kills[key]
                    how = "the decoder crashed on this file" if crashed else "a worker reading this file was killed"
                    error = f"{how} (worker exit code {code}, {times} times)"
                    yield problem_rows([f._replace(status=Status.UNREADABLE.value, error=error)], self.spec.n_features)
            else:
                self._retry.extend([f] for f in chunk)
        dead.chunks.clear()
        self._pool[self._pool.index(dead)] = self._start(1)[0]

    def close(self) -> None:
        for worker in self._pool:
            worker.stop()
        self._pool = []
