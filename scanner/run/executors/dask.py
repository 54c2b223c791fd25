"""The distributed executor: shards of files as Dask tasks, rows written by the workers to part files.

``scanner scan --cluster ADDRESS`` runs here: ADDRESS is a running Dask scheduler
(``tcp://host:8786``), or ``local`` for a LocalCluster of ``--workers`` processes
(one thread each) on this machine. Dask is imported only when this executor is
built, so nothing else in scanner needs it installed.

The client (this process) lists the files, drops those the store has done, and
cuts the rest into shards of up to ``task_files`` files or ``task_bytes`` bytes,
sorted, each named by its contents (scanner.store.parts.shard_id). At most
``IN_FLIGHT`` shards per worker thread are submitted at a time, so the client
holds only those whatever the listing's size; on a cluster so large that they
would hold more than ``MAX_FILES_IN_FLIGHT`` files, the tasks get smaller. A task measures its shard with an
extractor kept by its worker thread (FFT plans and buffers reused from task to
task) and writes the rows to ``STORE.h5.parts/SHARD.part`` (atomically); it
returns only counts, so rows never travel through the scheduler. The scan's
store session (scanner.store.session) merges the part files into the store.

Faults:

* a worker killed mid-task loses nothing: the scheduler runs the task again on
  another worker; a task that fails with an error is retried ``TASK_RETRIES`` times;
* a shard that keeps killing workers (Dask's ``allowed-failures``, 3 by default)
  is split and its files retried one per task; a file that kills workers on its
  own gets an ``unreadable`` row, as in the local pool;
* a file whose reading and decoding outlasts ``--file-timeout``: a watchdog thread
  in the worker leaves a marker naming the file in ``STORE.h5.parts/timed-out/``
  and kills its own process; the nanny starts a new worker, the task runs again,
  and the file gets an ``unreadable`` row saying it timed out.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any

from scanner.core.cachedir import cache_dir
from scanner.core.constants import Status
from scanner.core.errors import ScanError
from scanner.core.schema import Rows
from scanner.core.version import __version__
from scanner.features.extract import build_extractor
from scanner.io.walk import Found
from scanner.run.executors.base import Chunk, Executor, MeasureSpec, PartDone, timed_out_error
from scanner.store.keys import file_key
from scanner.store.parts import RUNNING, TIMED_OUT, part_file, read_part_header, shard_id, write_part

TASK_FILES = 2048  # files per task at most ...
TASK_BYTES = 256 << 20  # ... and bytes of files per task at most (large images make short tasks)
IN_FLIGHT = 2  # tasks submitted per worker thread: one running, one waiting on the worker
MAX_FILES_IN_FLIGHT = 500_000  # about 100 MB of file names in the client; tasks shrink on big clusters
MIN_TASK_FILES = 64
TASK_RETRIES = 2  # a task that raised is run again this many times before the scan stops
REQUEUES = 3  # times a task whose workers died before it started is submitted again before it is a suspect
POLL_SECONDS = 0.5
CAPACITY_SECONDS = 5.0  # how often the client asks the scheduler how many worker threads there are
CONNECT_SECONDS = 30
# The LocalCluster of `--cluster local` shares this machine's cores with the scan: Dask's
# statistical profiler and its frequent monitors cost its idle processes about 13 % of a core
# (2 workers, measured), 3 % with these settings.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.memory.monitor-interval": "1s",
}

log = logging.getLogger(__name__)


class WorkerProblem(ScanError):
    """A worker cannot do the work at all (it cannot see the shared storage, or runs another scanner)."""


# --- the worker's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class ShardTask:
    """One task: its files (sorted), where their rows go, and the client's scanner version."""

    shard: str
    files: tuple[Found, ...]
    part: str
    version: str = __version__
    attempt: int = 0  # resubmissions after its worker died before the task started

    @property
    def parts_dir(self) -> str:
        return os.path.dirname(self.part)

    @property
    def running_marker(self) -> str:
        """Exists while the task runs: a worker that died with the task only queued on it blames it not."""
        return os.path.join(self.parts_dir, RUNNING, self.shard)


_NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "glusterfs", "ceph", "cephfs", "panfs"}
    | {"afs", "9p", "fuse.sshfs", "fuse.glusterfs", "fuse.ceph", "fuse.s3fs", "fuse.gcsfuse", "davfs", "ncpfs"}
)


def _on_network_filesystem(path: str) -> bool:
    """Whether a path lies on a network filesystem (Linux: the longest mount point above it)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as handle:
            mounts = [line.split()[1:3] for line in handle if len(line.split()) >= 3]
    except OSError:
        return False
    real = os.path.realpath(path)
    best, kind = "", ""
    for point, fstype in mounts:
        point = point.replace("\\040", " ")
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, fstype
    return kind in _NETWORK_FILESYSTEMS


_caches_ready = False


def _node_local_caches() -> None:
    """Keep FFTW wisdom and numba's compiled kernels on this node's own disk, once per worker process.

    Both are per machine; where their default place is on a network filesystem
    (a home directory or an installation shared by the nodes), they go to
    $TMPDIR/scanner-UID instead. SCANNER_CACHE_DIR and NUMBA_CACHE_DIR set in the
    worker's environment are left as they are.
    """
    global _caches_ready
    if _caches_ready:
        return
    _caches_ready = True
    local = os.path.join(tempfile.gettempdir(), f"scanner-{os.getuid()}")
    if "SCANNER_CACHE_DIR" not in os.environ and _on_network_filesystem(str(cache_dir().parent)):
        os.environ["SCANNER_CACHE_DIR"] = os.path.join(local, "cache")
    if "NUMBA_CACHE_DIR" not in os.environ and "numba" not in sys.modules:
        package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # scanner/
        if _on_network_filesystem(package):
            os.environ["NUMBA_CACHE_DIR"] = os.path.join(local, "numba")


_malloc_ready = False
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def _malloc_as_elsewhere() -> None:
    """Undo the nanny's MALLOC_TRIM_THRESHOLD_, once per worker process (glibc only).

    Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 (to give memory back to
    the system), which also turns off glibc's adaptive mmap threshold: every decoded image
    is then mapped and unmapped anew, about 160 page faults and 1 ms of CPU per 256x256
    image (40 % more than the same work in the local pool). Our workers hold a bounded
    working set, so they take the thresholds the adaptive scheme reaches: mmap above
    32 MiB, trim above 64 MiB. A MALLOC_MMAP_THRESHOLD_ set by the user is left alone.
    """
    global _malloc_ready
    if _malloc_ready:
        return
    _malloc_ready = True
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)
    except (OSError, AttributeError):  # not glibc
        return


_threads = threading.local()


def _extractor(spec: MeasureSpec) -> Any:
    """This worker thread's extractor for the spec, built on its first task and kept (plans, buffers)."""
    cache: dict[str, Any] | None = getattr(_threads, "extractors", None)
    if cache is None:
        cache = _threads.extractors = {}
    key = repr(spec.extractor)
    if key not in cache:
        _node_local_caches()
        _malloc_as_elsewhere()
        cache[key] = build_extractor(spec.extractor)
    return cache[key]


def _marker(task: ShardTask, f: Found, roots: Sequence[bytes]) -> str:
    """The timed-out marker of a file: named by its path, size and mtime (a changed file is tried anew)."""
    key = file_key(os.path.join(roots[f.root], f.relpath), f.size, f.mtime)
    return os.path.join(task.parts_dir, TIMED_OUT, f"{key:016x}")


class _Watchdog:
    """One per worker process: kills the process when a thread's file outlasts its time limit, after
    leaving a marker that names the file for the task's next run."""

    def __init__(self) -> None:
        self._clocks: dict[int, tuple[float, _TaskClock, int]] = {}  # thread: (deadline, its task's clock, file)
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name="scanner-file-timeout", daemon=True).start()

    def set(self, deadline: float, clock: _TaskClock, index: int) -> None:
        with self._lock:
            self._clocks[threading.get_ident()] = (deadline, clock, index)

    def clear(self) -> None:
        with self._lock:
            self._clocks.pop(threading.get_ident(), None)

    def _watch(self) -> None:
        while True:
            time.sleep(0.2)
            now = time.monotonic()
            with self._lock:
                overdue = [(clock, index) for deadline, clock, index in self._clocks.values() if now > deadline]
            if overdue:
                for clock, index in overdue:
                    _write_marker(clock.marker(index), clock.seconds)
                os.kill(os.getpid(), signal.SIGKILL)


def _write_marker(path: str, seconds: float) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "w") as handle:
        json.dump({"seconds": seconds, "host": socket.gethostname()}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


_watchdog: _Watchdog | None = None
_watchdog_lock = threading.Lock()


class _TaskClock:
    """A FileClock for one task's files, watched by the process's watchdog."""

    def __init__(self, task: ShardTask, files: Sequence[Found], roots: Sequence[bytes], seconds: float) -> None:
        global _watchdog
        with _watchdog_lock:
            if _watchdog is None:
                _watchdog = _Watchdog()
        self.watchdog = _watchdog
        self.task, self.files, self.roots, self.seconds = task, files, roots, seconds

    def start(self, index: int) -> None:
        self.watchdog.set(time.monotonic() + self.seconds, self, index)

    def marker(self, index: int) -> str:
        return _marker(self.task, self.files[index], self.roots)

    def stop(self) -> None:
        self.watchdog.clear()


def _timed_out(task: ShardTask, roots: Sequence[bytes]) -> dict[int, float]:
    """Files of the task that timed out on an earlier run (index: the limit they outlasted)."""
    directory = os.path.join(task.parts_dir, TIMED_OUT)
    try:
        names = set(os.listdir(directory))
    except FileNotFoundError:
        return {}
    found = {}
    for i, f in enumerate(task.files):
        marker = _marker(task, f, roots)
        if os.path.basename(marker) in names:
            try:
                with open(marker) as handle:
                    found[i] = float(json.load(handle).get("seconds", 0.0))
            except (OSError, ValueError):
                found[i] = 0.0
    return found


def run_shard(spec: MeasureSpec, task: ShardTask) -> dict[str, Any]:
    """A Dask task: measure a shard's files and write their rows to its part file; only counts return."""
    from scanner.features.measure import measure_files, problem_rows

    host = socket.gethostname()
    if task.version != __version__:
        raise WorkerProblem(
            f"the worker on {host} runs scanner {__version__}, the client {task.version}: install the same "
            "version everywhere"
        )
    if not os.path.isdir(task.parts_dir):
        raise WorkerProblem(
            f"the worker on {host} cannot see {task.parts_dir}: the store's directory must be on storage that "
            "the client and every worker see at the same path (docs/cluster.md)"
        )
    missing = [os.fsdecode(r) for r in spec.roots if r and not os.path.isdir(r)]
    if missing:
        raise WorkerProblem(
            f"the worker on {host} cannot see {', '.join(missing)}: the images must be on storage that the client "
            "and every worker see at the same path (docs/cluster.md)"
        )
    started = time.monotonic()
    if os.path.exists(task.part):  # an earlier run of this task wrote it, then lost its worker
        header = read_part_header(task.part)
        return {"part": task.part, "rows": header["rows"], "counts": header["counts"], "seconds": 0.0, "host": host}
    with suppress(OSError), open(task.running_marker, "wb"):
        pass
    extractor = _extractor(spec)
    timed_out = _timed_out(task, spec.roots)
    todo = [f for i, f in enumerate(task.files) if i not in timed_out]
    clock = _TaskClock(task, todo, spec.roots, spec.file_timeout) if spec.file_timeout > 0 else None
    rows = measure_files(todo, spec.roots, extractor, spec.limits.max_pixels, spec.limits.max_bytes, clock)
    if timed_out:
        hung = [
            task.files[i]._replace(status=Status.UNREADABLE.value, error=timed_out_error(seconds or spec.file_timeout))
            for i, seconds in sorted(timed_out.items())
        ]
        rows = Rows.concat([rows, problem_rows(hung, spec.n_features)])
    roots = [os.fsdecode(r) for r in spec.roots]
    header = write_part(
        task.part, rows, spec.extractor.measurement, roots, task.shard, backend=spec.extractor.backend, host=host
    )
    with suppress(OSError):
        os.unlink(task.running_marker)
    seconds = time.monotonic() - started
    return {"part": task.part, "rows": header["rows"], "counts": header["counts"], "seconds": seconds, "host": host}


def dask_setup(worker: Any) -> None:
    """Preload of the workers of `--cluster local`: Ctrl-C in the terminal is for the scan's own
    process, which stops them; a worker that took it would die with a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# --- the client's side ---------------------------------------------------------------------


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
        os.makedirs(os.path.join(parts_dir, TIMED_OUT), exist_ok=True)
        running = os.path.join(parts_dir, RUNNING)
        shutil.rmtree(running, ignore_errors=True)  # markers of tasks handed out by a stopped client
        os.makedirs(running, exist_ok=True)
        try:
            if address == "local":
                # Ctrl-C is this process's to handle: held back while the cluster starts, and
                # ignored by its workers (dask_setup below), which are stopped by closing it.
                with sigint_blocked(), dask.config.set(LOCAL_CLUSTER_CONFIG):
                    self._cluster = LocalCluster(  # type: ignore[no-untyped-call, unused-ignore]
                        n_workers=workers or default_workers(),
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.CRITICAL,  # a heartbeat cut by the close is not news
                        preload=[__name__],
                    )
                    self._client = Client(self._cluster)  # type: ignore[no-untyped-call, unused-ignore]
            else:
                self._client = Client(address, timeout=CONNECT_SECONDS)  # type: ignore[no-untyped-call, unused-ignore]
        except (OSError, ValueError, TypeError) as exc:  # refused, timed out; not an address at all
            self.close()
            raise ScanError(
                f"cannot reach the Dask scheduler at {address}: {exc}. Start one (docs/cluster.md) or check the "
                "address (tcp://HOST:PORT, or local)"
            ) from None
        self._threads = 0
        self._threads_checked = 0.0
        self.workers = self._capacity()
        self._pending: deque[ShardTask] = deque()  # split shards, waiting to be submitted first

    def _capacity(self) -> int:
        """Worker threads in the cluster now (asked of the scheduler every few seconds)."""
        now = time.monotonic()
        if now - self._threads_checked >= CAPACITY_SECONDS:
            self._threads = sum(self._client.nthreads().values())
            self._threads_checked = now
        return self._threads

    def _task_size(self) -> int:
        """Files per task: the chunk as it comes, unless so many worker threads would hold more than
        MAX_FILES_IN_FLIGHT files (then smaller tasks, so that every thread still has work)."""
        share = MAX_FILES_IN_FLIGHT // (IN_FLIGHT * max(self._capacity(), 1))
        return max(MIN_TASK_FILES, min(self.chunk_files or TASK_FILES, share))

    def _task(self, files: Sequence[Found]) -> ShardTask:
        roots = self.spec.roots
        ordered = sorted(files, key=lambda f: os.path.join(roots[f.root], f.relpath))
        paths = [os.path.join(roots[f.root], f.relpath) for f in ordered]
        shard = shard_id(paths, [f.size for f in ordered], [f.mtime for f in ordered], self.spec.extractor.measurement)
        return ShardTask(shard, tuple(ordered), part_file(self.parts_dir, shard))

    def _submit(self, task: ShardTask) -> Any:
        key = f"scanner-shard-{task.shard}" + (f"-{task.attempt}" if task.attempt else "")
        return self._client.submit(run_shard, self.spec, task, key=key, pure=False, retries=TASK_RETRIES)

    def map(self, chunks: Iterator[Chunk]) -> Iterator[Rows | PartDone | None]:
        from distributed import wait
        from distributed.client import FutureCancelledError

        running: dict[Any, ShardTask] = {}
        exhausted = False
        while True:
            room = max(IN_FLIGHT * self._capacity(), IN_FLIGHT)
            while len(running) < room:
                if self._pending:
                    task = self._pending.popleft()
                elif exhausted:
                    break
                else:
                    chunk = next(chunks, None)
                    if chunk is None:
                        exhausted = True
                        break
                    if not chunk:  # nothing ready in the listing now
                        break
                    size = self._task_size()
                    pieces = [chunk[i : i + size] for i in range(0, len(chunk), size)]
                    self._pending.extend(self._task(piece) for piece in pieces[1:])
                    task = self._task(pieces[0])
                    if os.path.exists(task.part):  # done by an earlier run: merged with the others
                        header = read_part_header(task.part)
                        yield PartDone(task.part, int(header["rows"]), dict(header["counts"]))
                        continue
                running[self._submit(task)] = task
            if not running:
                if exhausted and not self._pending:
                    return
                yield None
                continue
            try:
                done, _ = wait(list(running), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")  # type: ignore[no-untyped-call, unused-ignore]
            except TimeoutError:
                done = set()
            for future in done:
                task = running.pop(future)
                try:
                    result = future.result()
                except FutureCancelledError:
                    raise ScanError(
                        f"the Dask scheduler at {self.address} dropped a task (did it restart?); the rows "
                        "finished so far are saved: rerun the same command to resume"
                    ) from None
                except Exception as exc:
                    yield from self._failed(task, exc)
                else:
                    yield PartDone(result["part"], int(result["rows"]), dict(result["counts"]))
                finally:
                    future.release()
            yield None

    def _failed(self, task: ShardTask, exc: BaseException) -> Iterator[Rows]:
        """A task that failed: split a shard that kills workers, give a lone file that does its row,
        stop the scan on anything else."""
        from distributed.scheduler import KilledWorker

        from scanner.features.measure import problem_rows

        if not isinstance(exc, KilledWorker):
            if isinstance(exc, WorkerProblem):
                raise ScanError(f"{exc}; the rows finished so far are saved") from None
            raise ScanError(
                f"a task failed on a Dask worker ({type(exc).__name__}: {exc}); the rows finished so far are "
                "saved: rerun the same command to resume"
            ) from None
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
        yield problem_rows([task.files[0]._replace(status=Status.UNREADABLE.value, error=error)], self.spec.n_features)

    def close(self) -> None:
        client, cluster = getattr(self, "_client", None), self._cluster
        self._client, self._cluster = None, None
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
