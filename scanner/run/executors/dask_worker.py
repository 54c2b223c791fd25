"""The distributed executor's worker side: the task that measures a shard and writes its part file.

Everything here runs in a Dask worker process (scanner.run.executors.dask is the client's side):
the checks that the worker can do the work at all, the extractor each worker thread keeps, the
node-local caches, and the watchdog that holds each file to ``--file-timeout``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from scanner.core.cachedir import cache_dir
from scanner.core.constants import Status
from scanner.core.errors import ScanError
from scanner.core.schema import Rows
from scanner.core.version import __version__
from scanner.features.extract import build_extractor
from scanner.io.walk import Found
from scanner.run.executors.base import MeasureSpec, timed_out_error
from scanner.store.keys import file_key
from scanner.store.parts import RUNNING, TIMED_OUT, read_part_header, write_part


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


_threads = threading.local()


def _extractor(spec: MeasureSpec) -> Any:
    """This worker thread's extractor for the spec, built on its first task and kept (plans, buffers)."""
    cache: dict[str, Any] | None = getattr(_threads, "extractors", None)
    if cache is None:
        cache = _threads.extractors = {}
    key = repr(spec.extractor)
    if key not in cache:
        _node_local_caches()
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
    return {
        "part": task.part,
        "rows": header["rows"],
        "counts": header["counts"],
        "seconds": seconds,
        "host": host,
        "worker": _worker_address(),
    }


def _worker_address() -> str:
    """The address of the Dask worker running this task ('' outside one)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return ""


def dask_setup(worker: Any) -> None:
    """Preload of the workers of `--cluster local`: Ctrl-C in the terminal is for the scan's own
    process, which stops them; a worker that took it would die with a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
