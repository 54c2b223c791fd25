"""The distributed executor: shards of files as Dask tasks, rows written by the workers to part files.

``scanner scan --cluster ADDRESS`` runs here: ADDRESS is a running Dask scheduler
(``tcp://host:8786``), or ``local`` for a LocalCluster of ``--workers`` processes
(one thread each) on this machine. Dask is imported only when this executor is
built, so nothing else in scanner needs it installed. This module is the client's
side; the task itself (``run_shard``) is in scanner.run.executors.dask_worker.

The client (this process) lists the files, drops those the store has done, and
cuts the rest into shards, sorted, each named by its contents
(scanner.store.parts.shard_id). Shards are sized by ``task_size``: small first
(every worker thread gets work at once), growing as the walk runs ahead of the
workers, up to ``task_files`` files or ``task_bytes`` bytes, and shrinking again
at the end of the walk so that the last files are spread over every thread. At
most ``IN_FLIGHT`` shards per worker thread are submitted at a time, so the client
holds only those whatever the listing's size; on a cluster so large that they
would hold more than ``MAX_FILES_IN_FLIGHT`` files, the tasks get smaller. A task
writes its rows to ``STORE.h5.parts/SHARD.part`` (atomically) and returns only
counts, so rows never travel through the scheduler. The scan's store session
(scanner.store.session) merges the part files into the store.

Faults:

* a worker killed mid-task loses nothing: the scheduler runs the task again on
  another worker; a task that fails with an error is retried ``TASK_RETRIES`` times;
* a shard that keeps killing workers (Dask's ``allowed-failures``, 3 by default)
  is split and its files retried one per task; a file that kills workers on its
  own gets an ``unreadable`` row, as in the local pool;
* a file whose reading and decoding outlasts ``--file-timeout``: a watchdog thread
  in the worker leaves a marker naming the file in ``STORE.h5.parts/timed-out/``
  and kills its own process; the nanny starts a new worker, the task runs again,
  and the file gets an ``unreadable`` row saying it timed out;
* a worker that holds tasks of this scan and has not been heard from (no heartbeat
  reached the scheduler) for longer than ``--file-timeout`` plus ``STALL_MARGIN``
  seconds (paused, hung with the interpreter locked, cut off by the network): the
  client has its nanny restart it, and the scheduler removes it if that gets no
  answer; its tasks run again elsewhere (and a lone file that keeps doing it gets
  its ``unreadable`` row);
* the scheduler lost, the client cut off from it, no worker left for
  ``NO_WORKERS_SECONDS`` (or ``$SCANNER_DASK_NO_WORKERS_SECONDS``; a worker paused or restarting
  over its memory limit is none): the scan stops
  with one ScanError (what finished is saved; rerun to resume).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
import warnings
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any

from scanner.core.constants import Status
from scanner.core.errors import ScanError, ScannerError
from scanner.core.faults import pause_point
from scanner.core.schema import Rows
from scanner.core.words import plural
from scanner.io.walk import Found
from scanner.run.executors.base import Chunk, Executor, MeasureSpec, PartDone
from scanner.run.executors.dask_worker import ShardTask, WorkerProblem, run_shard
from scanner.store.parts import RUNNING, TIMED_OUT, part_file, read_part_header, shard_id

__all__ = ["DaskExecutor"]

TASK_FILES = 2048  # files per task at most ...
TASK_BYTES = 256 << 20  # ... and bytes of files per task at most (large images make short tasks)
FIRST_TASK_FILES = 8  # files in each worker thread's first task (tasks then double, round by round)
IN_FLIGHT = 2  # tasks submitted per worker thread: one running, one waiting on the worker
MAX_FILES_IN_FLIGHT = 500_000  # about 100 MB of file names in the client; tasks shrink on big clusters
MIN_TASK_FILES = 64
TASK_RETRIES = 2  # a task that raised is run again this many times before the scan stops
REQUEUES = 3  # times a task whose workers died before it started is submitted again before it is a suspect
POLL_SECONDS = 0.5
RESULT_SECONDS = 5.0  # the longest wait for a finished task's result (lost with its worker: computed again)
CAPACITY_SECONDS = 2.0  # how often the client asks the scheduler about its workers (threads, heartbeats)
STALL_MARGIN = 10.0  # seconds beyond --file-timeout that a worker holding our tasks may go unheard
RESTART_SECONDS = 10.0  # how long its nanny has to restart a stalled worker before the scheduler drops it
NO_WORKERS_SECONDS = 120.0  # a cluster without a worker for this long, with work to do, stops the scan ...
NO_WORKERS_VARIABLE = "SCANNER_DASK_NO_WORKERS_SECONDS"  # ... unless this environment variable says otherwise
CONNECT_SECONDS = 5  # the first contact with a scheduler: a wrong address is said at once, not after 30 s
DASHBOARD = "127.0.0.1:8787"  # --dashboard on a local cluster (Dask's port; another if that one is taken)
NO_DASHBOARD = "127.0.0.1:0"  # the scheduler's HTTP routes without the dashboard, on a free local port
TASKS_LOG_SECONDS = 30.0  # with --verbose, how often the tasks submitted and finished are logged
# The LocalCluster of `--cluster local` shares this machine's cores with the scan: Dask's
# statistical profiler and its frequent monitors cost its idle processes about 13 % of a core
# (2 workers, measured), 3 % with these settings.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.memory.monitor-interval": "1s",
}
SAVED = "the rows finished so far are saved: rerun the same command to resume"

log = logging.getLogger(__name__)


def task_size(threads: int, backlog: int, submitted: int, cap: int, first: int = FIRST_TASK_FILES) -> int:
    """Files for the next task, from the cluster's worker threads and the walk so far.

    ``backlog``: files walked and not yet in a task; ``submitted``: files handed out in
    tasks so far; ``cap``: the most files a task may hold. No task is larger than what
    each thread has been given so far (at least ``first``), so every thread gets a small
    task before any task is large, and sizes double round by round; nor larger than an
    even share of the backlog over every task slot (at least ``first``), so that the
    last files of the walk are spread over all the threads.
    """
    threads = max(threads, 1)
    grown = max(first, submitted // threads)
    spread = max(first, -(-backlog // (IN_FLIGHT * threads)))
    return max(1, min(cap, grown, spread))


def no_workers_seconds() -> float:
    """How long the scan waits for a worker when the cluster has none: $SCANNER_DASK_NO_WORKERS_SECONDS,
    else NO_WORKERS_SECONDS."""
    text = os.environ.get(NO_WORKERS_VARIABLE, "").strip()
    if not text:
        return NO_WORKERS_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise ScanError(f"{NO_WORKERS_VARIABLE}={text!r}: give the seconds to wait for a worker (a number, 0 or more)")
    return seconds


def _quiet_dask_logs() -> None:
    """Dask's own log lines (a closed connection, with its traceback) are not for the scan's user: the
    scan says what went wrong in one line. With the scan's messages at debug level they are shown.

    asyncio's too: the scan runs no event loop of its own, only the Dask client's, whose
    Client._gather leaves a task per future behind when future.result(timeout=...) gives up; once
    every worker is gone that task ends in AllExit, and asyncio logs "Task exception was never
    retrieved" with its traceback when the task is collected."""
    if logging.getLogger("scanner").isEnabledFor(logging.DEBUG):
        return
    for name in ["distributed", "asyncio", *list(logging.root.manager.loggerDict)]:
        if name in ("distributed", "asyncio") or name.startswith("distributed."):  # Dask sets some levels
            logging.getLogger(name).setLevel(logging.CRITICAL)


@contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """SIGINT ignored while a local cluster starts its processes: a process started meanwhile keeps it
    ignored from its first instruction (Python leaves an ignored SIGINT ignored), so a Ctrl-C cannot
    end one with a traceback while it imports. With SIGINT also blocked here, one that comes meanwhile
    waits, and reaches this process once its handler is back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class DaskExecutor(Executor):
    """Shards of files as tasks on a Dask cluster; yields PartDone for each finished shard."""

    def __init__(
        self,
        spec: MeasureSpec,
        workers: int | None = None,
        *,
        address: str,
        parts_dir: str,
        task_files: int = TASK_FILES,
        task_bytes: int = TASK_BYTES,
        dashboard: bool = False,
    ) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise ScanError("--cluster needs Dask's distributed scheduler: pip install 'dask[distributed]'") from None
        from scanner.run.executors.local import default_workers, sigint_blocked

        self.spec = spec
        self.parts_dir = parts_dir
        self.chunk_files = task_files
        self.chunk_bytes = task_bytes
        self.address = address
        self._cluster: Any = None
        self._client: Any = None
        self._threads = 0
        self._threads_checked = 0.0
        self._heard: dict[str, tuple[Any, float]] = {}  # worker: (its last heartbeat, when we saw it change)
        self._stalled: set[str] = set()  # workers being restarted or removed for not answering
        self._stalled_keys: set[str] = set()  # keys of tasks that were on such workers
        self._no_workers_since: float | None = None
        self._able: set[str] = set()  # workers running (not paused, not closing) at the last poll
        self._unable_seen: set[str] = set()  # workers seen meanwhile that never stayed able to run tasks
        self.no_workers_seconds = no_workers_seconds()
        self._walked: deque[Found] = deque()  # files walked and not yet in a task
        self._submitted = 0  # files handed out in tasks so far
        self._pending: deque[ShardTask] = deque()  # split shards, waiting to be submitted first
        self.tasks_per_worker: Counter[str] = Counter()  # finished tasks by worker address
        self._known: dict[str, int] | None = None  # workers (address: threads) last logged; None: none yet
        self._tasks = Counter[str]()  # tasks submitted and finished, logged every TASKS_LOG_SECONDS
        self._tasks_logged = time.monotonic()
        os.makedirs(os.path.join(parts_dir, TIMED_OUT), exist_ok=True)
        running = os.path.join(parts_dir, RUNNING)
        shutil.rmtree(running, ignore_errors=True)  # markers of tasks handed out by a stopped client
        os.makedirs(running, exist_ok=True)
        _quiet_dask_logs()
        try:
            # Ctrl-C is this process's to handle: held back while the cluster starts (an interrupt
            # that came meanwhile arrives after, when close() below can stop what was started), and
            # ignored by the workers of a local cluster (dask_setup), which are stopped by closing it.
            with sigint_blocked(), _sigint_ignored_by_children(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Dask's version warnings: a worker that cannot work says why
                if address == "local":
                    with dask.config.set(LOCAL_CLUSTER_CONFIG):
                        self._cluster = LocalCluster(  # type: ignore[no-untyped-call, unused-ignore]
                            n_workers=workers or default_workers(),
                            threads_per_worker=1,
                            processes=True,
                            # Without a dashboard address the scheduler's HTTP server still takes port 8787
                            # (a second scan on the machine printed Dask's "port already in use" warning).
                            dashboard_address=DASHBOARD if dashboard else NO_DASHBOARD,
                            scheduler_kwargs={"dashboard": dashboard},
                            silence_logs=logging.CRITICAL,  # a heartbeat cut by the close is not news
                            preload=["scanner.run.executors.dask_worker"],
                        )
                        self._client = Client(self._cluster)  # type: ignore[no-untyped-call, unused-ignore]
                else:
                    log.info("connecting to the Dask scheduler at %s", address)
                    self._client = Client(address, timeout=CONNECT_SECONDS)  # type: ignore[no-untyped-call, unused-ignore]
            self.workers = self._capacity()
            if dashboard:
                self._say_dashboard()
        except (OSError, ValueError, TypeError) as exc:  # refused, timed out; not an address at all
            self.close()
            raise ScanError(
                f"cannot reach the Dask scheduler at {address}: {exc}. Start one (docs/cluster.md) or check the "
                "address (tcp://HOST:PORT, or local)"
            ) from None
        except BaseException:  # Ctrl-C while starting: stop what was started
            self.close()
            raise

    @contextmanager
    def _talking(self) -> Iterator[None]:
        """Around every call to the scheduler: losing it (or the connection to it) is one ScanError."""
        from asyncio import CancelledError

        try:
            yield
        except ScannerError:
            raise
        except (CancelledError, Exception) as exc:  # a cancelled future, a closed comm, a timed-out call
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ScanError(
                f"lost the Dask scheduler at {self.address} ({type(exc).__name__}: {reason[:200]}); {SAVED} "
                "(on the cluster once it is back, on another, or without --cluster)"
            ) from None

    def _capacity(self, running: dict[Any, ShardTask] | None = None) -> int:
        """Worker threads in the cluster now (asked of the scheduler every few seconds, with the workers'
        heartbeats: a worker that holds our tasks and has stalled is restarted)."""
        now = time.monotonic()
        if now - self._threads_checked < CAPACITY_SECONDS:
            return self._threads
        self._threads_checked = now
        with self._talking():
            workers = self._client.scheduler_info(n_workers=-1).get("workers", {})
        self._threads = sum(int(w.get("nthreads", 0)) for addr, w in workers.items() if addr not in self._stalled)
        able = {a for a, w in workers.items() if w.get("status", "running") == "running" and a not in self._stalled}
        steady, self._able = able & self._able, able
        for addr, about in workers.items():
            seen = about.get("last_seen")
            if addr not in self._heard or self._heard[addr][0] != seen:
                self._heard[addr] = (seen, now)
        for addr in set(self._heard) - set(workers):
            del self._heard[addr]
            self._stalled.discard(addr)
        self._log_workers(workers)
        self._log_tasks(now, running)
        if running:
            self._no_workers(now, steady, set(workers))
            self._watch(running, now)
        return self._threads

    def _no_workers(self, now: float, steady: set[str], present: set[str]) -> None:
        """Stop the scan when, for no_workers_seconds, no worker has stayed able to run tasks (running at two
        polls in a row: one paused over its memory limit, or restarted by its nanny again and again, is not)."""
        if steady:
            self._no_workers_since = None
            self._unable_seen.clear()
            return
        self._unable_seen |= present
        if self._no_workers_since is None:
            self._no_workers_since = now
        elif now - self._no_workers_since > self.no_workers_seconds:
            what = "had no workers"
            if self._unable_seen:
                what = (
                    f"had no worker able to run tasks ({len(self._unable_seen)} seen, each paused or restarted: "
                    "over its memory limit? see their logs, and dask worker --memory-limit)"
                )
            raise ScanError(
                f"the Dask cluster at {self.address} has {what} for {self.no_workers_seconds:g} s: start "
                f"workers (docs/cluster.md), then rerun the same command; {SAVED.split(': ')[0]}"
            )

    def _say_dashboard(self) -> None:
        """--dashboard: where Dask's dashboard is (the local cluster's, or the scheduler's own)."""
        link = getattr(self._client, "dashboard_link", None)
        if link:
            log.info("Dask dashboard: %s", link)
        else:
            log.info("the Dask scheduler at %s serves no dashboard", self.address)

    def _log_workers(self, workers: dict[str, Any]) -> None:
        """With --verbose: the workers and their threads at the start; then each worker lost or joined."""
        now = {addr: int(about.get("nthreads", 0)) for addr, about in workers.items()}
        known, self._known = self._known, now
        if not log.isEnabledFor(logging.DEBUG):
            return
        threads = sum(now.values())
        total = f"{plural(len(now), 'worker')}, {plural(threads, 'thread')}"
        if known is None:
            cluster = "the local Dask cluster" if self.address == "local" else f"the Dask cluster at {self.address}"
            listed = ", ".join(f"{addr} ({plural(n, 'thread')})" for addr, n in sorted(now.items()))
            log.debug("%s has %s: %s", cluster, total, listed or "none yet")
            return
        for addr in sorted(set(known) - set(now)):
            log.debug("Dask worker %s lost (%s left)", addr, total)
        for addr in sorted(set(now) - set(known)):
            log.debug("Dask worker %s joined with %s (%s now)", addr, plural(now[addr], "thread"), total)

    def _log_tasks(self, now: float, running: dict[Any, ShardTask] | None) -> None:
        """With --verbose, every TASKS_LOG_SECONDS: the tasks submitted and finished so far, and running now."""
        if now - self._tasks_logged < TASKS_LOG_SECONDS or not log.isEnabledFor(logging.DEBUG):
            return
        self._tasks_logged = now
        log.debug(
            "Dask tasks: %d submitted, %d finished, %d in flight",
            self._tasks["submitted"],
            self._tasks["finished"],
            len(running or ()),
        )

    def progress(self) -> None:
        """A task finished: the cluster is working, whatever the last polls saw of its workers."""
        self._no_workers_since = None
        self._unable_seen.clear()

    def _watch(self, running: dict[Any, ShardTask], now: float) -> None:
        """Restart the workers that hold our tasks and have not been heard from for too long."""
        if self.spec.file_timeout <= 0:  # no time limit: a file may take as long as it takes
            return
        limit = self.spec.file_timeout + STALL_MARGIN
        silent = {addr for addr, (_, since) in self._heard.items() if now - since > limit} - self._stalled
        if not silent:
            return
        ours = {future.key for future in running}
        with self._talking():
            processing = self._client.processing(workers=sorted(silent))
        for addr, keys in processing.items():
            if ours.intersection(keys):
                self._stalled_keys.update(ours.intersection(keys))
                log.warning(
                    "the Dask worker %s has not answered for %.0f s (over the time limit of a file): restarting "
                    "it; its tasks go to the other workers",
                    addr,
                    now - self._heard[addr][1],
                )
                self._stalled.add(addr)
                threading.Thread(target=self._restart, args=(addr,), name="scanner-restart", daemon=True).start()

    def _restart(self, addr: str) -> None:
        """Have the nanny restart a stalled worker; the scheduler removes it if that gets no answer."""
        client = self._client
        if client is None:
            return
        try:
            client.restart_workers([addr], timeout=RESTART_SECONDS, raise_for_error=False)
        except Exception as exc:  # the scan goes on; the scheduler's own time-out is the last resort
            log.debug("restarting the Dask worker %s: %s", addr, exc)

    def _task_size(self) -> int:
        """The most files per task: the chunk as it comes, unless so many worker threads would hold more than
        MAX_FILES_IN_FLIGHT files (then smaller tasks, so that every thread still has work)."""
        share = MAX_FILES_IN_FLIGHT // (IN_FLIGHT * max(self._capacity(), 1))
        return max(MIN_TASK_FILES, min(self.chunk_files or TASK_FILES, share))

    def _task(self, files: Sequence[Found]) -> ShardTask:
        roots = self.spec.roots
        ordered = sorted(files, key=lambda f: os.path.join(roots[f.root], f.relpath))
        paths = [os.path.join(roots[f.root], f.relpath) for f in ordered]
        shard = shard_id(paths, [f.size for f in ordered], [f.mtime for f in ordered], self.spec.extractor.measurement)
        return ShardTask(shard, tuple(ordered), part_file(self.parts_dir, shard))

    def _cut(self) -> ShardTask:
        """The next task from the walked files: task_size files, or fewer where they pass task_bytes."""
        cap = self._task_size()
        size = task_size(self._threads, len(self._walked), self._submitted, cap)
        files: list[Found] = []
        nbytes = 0
        while self._walked and len(files) < size and nbytes < (self.chunk_bytes or TASK_BYTES):
            f = self._walked.popleft()
            files.append(f)
            nbytes += f.size
        self._submitted += len(files)
        return self._task(files)

    @staticmethod
    def _key(task: ShardTask) -> str:
        return f"scanner-shard-{task.shard}" + (f"-{task.attempt}" if task.attempt else "")

    def _submit(self, task: ShardTask) -> Any:
        self._tasks["submitted"] += 1
        with self._talking():
            return self._client.submit(
                run_shard, self.spec, task, key=self._key(task), pure=False, retries=TASK_RETRIES
            )

    def map(self, chunks: Iterator[Chunk]) -> Iterator[Rows | PartDone | None]:
        from distributed import wait

        running: dict[Any, ShardTask] = {}
        exhausted = False
        while True:
            room = max(IN_FLIGHT * self._capacity(running), IN_FLIGHT)
            ahead = min(room * (self.chunk_files or TASK_FILES), MAX_FILES_IN_FLIGHT)
            while len(running) < room:
                if self._pending:
                    task = self._pending.popleft()
                else:
                    # One chunk of the walk per task cut, while the walk is not far enough ahead: the first
                    # tasks go out at once, and the walk runs ahead as they run.
                    if not exhausted and len(self._walked) < ahead:
                        chunk = next(chunks, None)
                        exhausted = chunk is None
                        self._walked.extend(chunk or ())  # an empty chunk: nothing ready in the listing now
                    if not self._walked:
                        break
                    task = self._cut()
                    if os.path.exists(task.part):  # done by an earlier run: merged with the others
                        header = read_part_header(task.part)
                        yield PartDone(task.part, int(header["rows"]), dict(header["counts"]))
                        continue
                running[self._submit(task)] = task
            if not running:
                if exhausted and not self._pending and not self._walked:
                    return
                yield None
                continue
            with self._talking():
                try:
                    done, _ = wait(list(running), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")  # type: ignore[no-untyped-call, unused-ignore]
                except TimeoutError:
                    done = set()
            for future in done:
                task = running.pop(future)
                with self._talking():  # a future cancelled, or a result lost with the scheduler
                    pause_point("dask-result")
                    try:
                        error = future.exception(timeout=RESULT_SECONDS)
                        result = None if error is not None else future.result(timeout=RESULT_SECONDS)
                    except TimeoutError:
                        # Finished, then its result was lost with the worker that held it: the scheduler
                        # computes it again, and the watch above stops the scan if no worker is left to.
                        running[future] = task
                        continue
                    future.release()
                if error is not None:
                    yield from self._failed(task, error)
                elif result is not None:
                    self.tasks_per_worker[str(result.get("worker", ""))] += 1
                    self._tasks["finished"] += 1
                    self.progress()
                    yield PartDone(result["part"], int(result["rows"]), dict(result["counts"]))
            yield None

    def _failed(self, task: ShardTask, exc: BaseException) -> Iterator[Rows]:
        """A task that failed: split a shard that kills workers, give a lone file that does its row,
        stop the scan on anything else."""
        from distributed.scheduler import KilledWorker

        from scanner.features.measure import problem_rows

        if not isinstance(exc, KilledWorker):
            if isinstance(exc, WorkerProblem):
                raise ScanError(f"{exc}; the rows finished so far are saved") from None
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ScanError(f"a task failed on a Dask worker ({type(exc).__name__}: {text[:300]}); {SAVED}") from None
        started = os.path.exists(task.running_marker)
        with suppress(OSError):
            os.unlink(task.running_marker)
        if not started and task.attempt < REQUEUES:
            # Only queued on the workers that died (Dask counts those too): not a suspect.
            self._pending.appendleft(replace(task, attempt=task.attempt + 1))
            return
        if len(task.files) > 1:
            log.info("shard %s kept killing workers: retrying its %d files one by one", task.shard, len(task.files))
            self._pending.extendleft(self._task([f]) for f in reversed(task.files))
            return
        deaths = getattr(exc, "allowed_failures", 0) + 1
        error = f"the decoder crashed on this file (it killed {deaths} Dask worker processes)"
        if self._key(task) in self._stalled_keys:
            error = f"a Dask worker reading this file stopped answering ({deaths} times); it was restarted"
        yield problem_rows([task.files[0]._replace(status=Status.UNREADABLE.value, error=error)], self.spec.n_features)

    def close(self) -> None:
        if getattr(self, "_client", None) is not None:
            self._log_tasks(float("inf"), None)  # with --verbose, the tasks of the whole scan
        client, cluster = getattr(self, "_client", None), getattr(self, "_cluster", None)
        self._client, self._cluster = None, None
        from scanner.run.executors.local import sigint_blocked

        with sigint_blocked():  # a second Ctrl-C must not leave a half-closed cluster behind
            if client is not None:
                try:
                    client.close(timeout=10)
                except Exception as exc:  # closing must not hide why the scan stopped
                    log.debug("closing the Dask client: %s", exc)
            if cluster is not None:
                try:
                    cluster.close(timeout=10)
                except Exception as exc:
                    log.debug("closing the local Dask cluster: %s", exc)
