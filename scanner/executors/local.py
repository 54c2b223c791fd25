"""The single-machine executor: worker processes fed over pipes, a few chunks in flight each.

Each worker builds one extractor from the MeasureSpec, so FFT plans and buffers
are reused image after image. Workers come from a fork server that has already
imported the engine. Chunks are handed out as workers have room (at most
``IN_FLIGHT`` per worker), so nothing piles up however large the listing.

A worker that dies (a decoder crash on a hostile file) is replaced. Its
unfinished files are retried one by one; a file that crashes a worker on its own
twice (SIGSEGV, SIGABRT, ...), or that is alone in a worker killed from outside
five times (SIGKILL: the OOM killer, or a person), gets an ``unreadable`` row
instead of stopping the sweep. A worker that
dies before it is ready blames no file, and repeated deaths with nothing
finished in between stop the scan.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from typing import Any

from scanner.backends import BACKENDS
from scanner.constants import Status
from scanner.executors import Chunk, Executor, MeasureSpec
from scanner.featuresets import get_feature_set
from scanner.lifecycle import ScanError
from scanner.measure import measure_files, problem_rows
from scanner.schema import Rows

IN_FLIGHT = 2  # chunks outstanding per worker: one working, one queued
READY = "ready"  # a worker's first message: it started and holds its extractor
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


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _worker_main(conn: Connection, spec: MeasureSpec) -> None:
    """Measure chunks of files until told to stop (None) or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C does
    crash_on = os.environ.get("SCANNER_TEST_CRASH_ON", "").encode()  # crash-test hook: a file that "crashes"
    extractor = spec.extractor.build()
    try:
        conn.send(READY)
        while True:
            task = conn.recv()
            if task is None:
                return
            chunk_id, files = task
            if crash_on and any(f.relpath.endswith(crash_on) for f in files):
                os.abort()
            conn.send((chunk_id, measure_files(files, spec.roots, extractor, spec.max_pixels, spec.max_bytes)))
    except (EOFError, OSError):  # the parent is gone: nothing to report to
        return


@contextmanager
def _sigint_blocked() -> Iterator[None]:
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
        self.process = ctx.Process(target=_worker_main, daemon=True, args=(child, spec))
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

    def stop(self) -> None:
        with suppress(OSError):
            self.conn.send(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class LocalPool(Executor):
    """Worker processes on this machine (default: one per usable core)."""

    def __init__(self, spec: MeasureSpec, workers: int | None = None) -> None:
        self.spec = spec
        self.workers = workers or default_workers()
        self._ctx = mp.get_context("forkserver")
        feature_module = get_feature_set(spec.extractor.measurement.feature_set).engine.partition(":")[0]
        backend_module = BACKENDS[spec.extractor.backend].target.partition(":")[0]
        self._ctx.set_forkserver_preload(["scanner.measure", feature_module, backend_module])
        self._pool: list[_Worker] = []
        self._retry: deque[Chunk] = deque()
        self._lone_crashes: Counter[tuple[int, bytes]] = Counter()  # crashes of a worker reading the file alone
        self._lone_kills: Counter[tuple[int, bytes]] = Counter()  # outside kills of one reading it alone
        self._crashes = 0
        self._next_id = 0

    def _start(self, n: int) -> list[_Worker]:
        # multiprocessing's resource tracker, when it starts, unblocks SIGINT in this thread (it blocks it
        # only around its own start): started before the block, it cannot let Ctrl-C into the fork server.
        resource_tracker.ensure_running()
        with _sigint_blocked():
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
        chunk_id, rows = message
        worker.chunks.pop(chunk_id)
        self._crashes = 0
        return True, rows

    def _replace(self, dead: _Worker) -> Iterator[Rows]:
        """A worker died: retry its files one by one; a lone file that kills it twice gets a row."""
        dead.stop()
        code = dead.process.exitcode
        self._crashes += 1
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
        for chunk in dead.chunks.values():
            if not dead.ready:
                self._retry.appendleft(chunk)
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
