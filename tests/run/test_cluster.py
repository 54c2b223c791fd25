"""The distributed scan on a real Dask cluster: a `dask scheduler` and `dask worker` processes on
127.0.0.1, started and stopped by these tests (by process id), and real `scanner scan` clients,
SIGKILLed midway. Every result is compared with the single-machine scan of the same tree."""

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import cv2
import pytest
from helpers import export, natural_image, sha256sum, write_tree

pytest.importorskip("distributed")


from scanner.store.hdf5 import read_features
from scanner.store.parts import parts_path

DELAY = 0.01  # seconds added to each imgNNN file's decode on the test workers: a scan lasts long enough to stop
WORKER_ENV = {
    "SCANNER_TEST_DELAY": f"img:{DELAY}",
    "SCANNER_TEST_HANG_ON": "hang-me",
    "SCANNER_TEST_CRASH_ON": "crash-me",
}
START_SECONDS = 90


def dask_command(*args):
    return [sys.executable, "-m", "dask", *args]


def stop(process, grace=10):
    """Stop a process and its group (it was started in a session of its own), by its id."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # what is left of the group (a worker under its nanny)
    process.wait()


class Cluster:
    """A scheduler and workers on 127.0.0.1, each in its own process group."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.scheduler_file = directory / "scheduler.json"
        self.workers: list[subprocess.Popen] = []
        self.started = 0
        env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
        self.scheduler = self._spawn(
            "scheduler",
            dask_command(
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(self.scheduler_file),
            ),
            env,
        )
        deadline = time.monotonic() + START_SECONDS
        while not self.scheduler_file.exists():
            assert self.scheduler.poll() is None, self.log("scheduler")
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole, but give it a moment
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        assert self.address.startswith("tcp://127.0.0.1:")

    def _spawn(self, name, command, env):
        log = open(self.directory / f"{name}.log", "wb")  # noqa: SIM115 - closed by the process's end
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self, name):
        return (self.directory / f"{name}.log").read_text(errors="replace")[-3000:]

    def start_worker(self, **env):
        self.started += 1
        command = dask_command(
            "worker",
            "--scheduler-file",
            str(self.scheduler_file),
            "--host",
            "127.0.0.1",
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--name",
            f"w{self.started}",
            "--local-directory",
            str(self.directory / f"w{self.started}"),
        )
        self.workers.append(self._spawn(f"w{self.started}", command, {**os.environ, **WORKER_ENV, **env}))

    def wait_for_workers(self, n):
        from distributed import Client

        with Client(self.address, timeout=START_SECONDS) as client:
            client.wait_for_workers(n, timeout=START_SECONDS)

    def kill_worker(self, index):
        """SIGKILL a worker's whole process group (its nanny and the worker process)."""
        process = self.workers.pop(index)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def close(self):
        for process in [*self.workers, self.scheduler]:
            stop(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dask")
    running = Cluster(directory)
    try:
        running.start_worker()
        running.start_worker()
        running.wait_for_workers(2)
        yield running
    finally:
        running.close()


def scan_command(tree, out, *extra):
    return [
        sys.executable,
        "-m",
        "scanner",
        "scan",
        str(tree),
        "--out",
        str(out),
        "--planner",
        "estimate",
        "--strict",
        *extra,
    ]


def run(command, **kwargs):
    return subprocess.run(command, capture_output=True, timeout=300, start_new_session=True, **kwargs)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The tree every test scans, and its export from the single-machine scan (the local pool)."""
    root = tmp_path_factory.mktemp("tree")
    images = root / "images"
    write_tree(images, 240)
    result = run(scan_command(images, root / "reference.h5", "--workers", "2", "--quiet"))
    assert result.returncode == 1, result.stderr.decode()  # some files are not usable
    reference = export(root / "reference.h5")
    assert len(reference) == 1 + 240 + 7
    return images, reference


def parts_in(out):
    directory = parts_path(str(out))
    try:
        return [n for n in os.listdir(directory) if n.endswith(".part")]
    except FileNotFoundError:
        return []


def start_scan(command):
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def wait_for_parts(process, out, n):
    deadline = time.monotonic() + START_SECONDS
    while len(parts_in(out)) < n:
        assert process.poll() is None, process.communicate()[1].decode()
        assert time.monotonic() < deadline, "no part file appeared"
        time.sleep(0.01)


def test_a_scan_on_a_dask_cluster_equals_the_local_scan(cluster, tree, tmp_path):
    images, reference = tree
    out = tmp_path / "s.h5"
    result = run(scan_command(images, out, "--cluster", cluster.address, "--task-files", "16"))
    assert result.returncode == 1, result.stderr.decode()
    assert "scanned 247 files" in result.stdout.decode()
    assert export(out) == reference
    table = read_features(out)  # the workers' part files carry each file's SHA-256, as sha256sum gives it
    hashed = {p: h for p, h in zip(table.path, table.sha256.tolist(), strict=True) if "/d0/" in p}
    assert len(hashed) == 80 and list(hashed.values()) == sha256sum(*hashed)
    assert not os.path.exists(parts_path(str(out)))  # every part file merged, the directory gone
    # Run again: everything is done, nothing is measured.
    again = run(scan_command(images, out, "--cluster", cluster.address))
    assert again.returncode == 1 and "247 already in the store" in again.stdout.decode(), again.stdout.decode()
    assert export(out) == reference


def test_a_worker_killed_midway_loses_nothing(cluster, tree, tmp_path):
    images, reference = tree
    out = tmp_path / "s.h5"
    process = start_scan(scan_command(images, out, "--cluster", cluster.address, "--task-files", "8", "--quiet"))
    try:
        wait_for_parts(process, out, 1)
        cluster.kill_worker(0)
        assert process.poll() is None, "the scan finished before the worker was killed"
        cluster.start_worker()
        _, err = process.communicate(timeout=300)
    finally:
        stop(process)
    assert process.returncode == 1, err.decode()
    assert export(out) == reference
    cluster.wait_for_workers(2)


def test_a_client_killed_midway_is_resumed_by_the_same_command(cluster, tree, tmp_path):
    images, reference = tree
    out = tmp_path / "s.h5"
    command = scan_command(images, out, "--cluster", cluster.address, "--task-files", "8")
    process = start_scan(command)
    try:
        wait_for_parts(process, out, 3)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        stop(process)
    assert not out.exists() and parts_in(out)  # the finished tasks wait in part files
    result = run(command)
    assert result.returncode == 1, result.stderr.decode()
    assert "already in the store" in result.stdout.decode()  # the part files were done work
    assert export(out) == reference
    assert not os.path.exists(parts_path(str(out)))


def test_a_hanging_decode_hits_the_time_limit_on_dask(cluster, tmp_path):
    images = tmp_path / "images"
    write_tree(images, 6)
    cv2.imwrite(str(images / "hang-me.png"), natural_image(32, 32, seed=5)[..., ::-1])
    out = tmp_path / "s.h5"
    command = scan_command(images, out, "--cluster", cluster.address, "--task-files", "4", "--file-timeout", "2")
    result = run(command)
    assert result.returncode == 1, result.stderr.decode()
    rows = {line.split(",")[0]: line.split(",")[1:3] for line in export(out)[1:]}
    assert rows.pop(str(images / "hang-me.png")) == [
        "unreadable",
        "timed out: reading and decoding took over 2 s (--file-timeout); the worker was stopped",
    ]
    assert sum(status == "ok" for status, _ in rows.values()) == 6
    assert not os.path.exists(parts_path(str(out)))  # the marker went with the part files
    cluster.wait_for_workers(2)


def test_a_file_that_kills_workers_gets_a_row_and_the_rest_of_its_shard_is_measured(cluster, tmp_path):
    images = tmp_path / "images"
    write_tree(images, 6)
    cv2.imwrite(str(images / "crash-me.png"), natural_image(32, 32, seed=5)[..., ::-1])
    out = tmp_path / "s.h5"
    result = run(scan_command(images, out, "--cluster", cluster.address, "--task-files", "16"))
    assert result.returncode == 1, result.stderr.decode()
    rows = {line.split(",")[0]: line.split(",")[1:3] for line in export(out)[1:]}
    status, error = rows.pop(str(images / "crash-me.png"))
    assert status == "unreadable" and error.startswith("the decoder crashed on this file (it killed 2 Dask worker")
    assert sum(status == "ok" for status, _ in rows.values()) == 6
    cluster.wait_for_workers(2)


def test_a_local_dask_cluster_equals_the_local_scan(tree, tmp_path):
    images, reference = tree
    out = tmp_path / "s.h5"
    result = run(scan_command(images, out, "--cluster", "local", "--workers", "2", "--quiet"))
    assert result.returncode == 1, result.stderr.decode()
    assert export(out) == reference
