"""A failing machine: a full disk during a merge, Ctrl-C while workers start, workers killed again and again.

Each run is a real `scanner scan` in a subprocess with a timeout (tests/hostile.py).
"""

import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from helpers import Features, natural_image
from hostile import MEMORY_GIB, limited, scanner, text

from scanner.core.schema import make_table
from scanner.store.hdf5 import read_features, write_table


def images(directory, n, size=48, seed=0):
    directory.mkdir(parents=True, exist_ok=True)
    base = natural_image(size, size, seed=seed)[..., ::-1]
    rng = np.random.default_rng(seed)
    for i in range(n):
        noisy = np.clip(base.astype(np.int16) + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(directory / f"img{i:04d}.png"), noisy)
    return directory


def big_store(path, n=20000):
    table = make_table(
        [f"/nowhere/{i}.jpg" for i in range(n)],
        np.random.default_rng(0).random((n, 6)),
        format=["JPEG"] * n,
        size=list(range(n)),
        mtime=[1.0] * n,
    )
    write_table(path, table)
    return path


def store_rows(path):
    table = read_features(path)
    return {p: (table.status[i], Features(table.features[i])) for i, p in enumerate(table.path)}


def fsize_limit(limit):
    memory = limited(MEMORY_GIB * 2)

    def apply():
        memory()
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


# --- class 6: a full disk -------------------------------------------------------------------------


def test_a_merge_that_cannot_be_written_ends_with_exit_3_and_loses_nothing(tmp_path):
    """RLIMIT_FSIZE makes every write past the limit fail (EFBIG) as a full disk would (ENOSPC), in any
    environment: the journal is small and fits, the merged store does not."""
    store = big_store(tmp_path / "s.h5")
    before = store_rows(store)
    photos = images(tmp_path / "photos", 12)
    command = [sys.executable, "-m", "scanner", "scan", photos, "--out", store, "--planner", "estimate", "-j", "2"]
    limit = os.path.getsize(store) // 2
    failed = subprocess.run(command, capture_output=True, timeout=300, preexec_fn=fsize_limit(limit))
    err = failed.stderr.decode()
    assert failed.returncode == 3, text(failed)
    assert "Traceback" not in err and "Exception ignored" not in err
    *progress, last = err.strip().splitlines()
    assert last == (
        f"scanner scan: cannot write {store}: File too large; the rows of this scan are kept in "
        f"{store}.journal: rerun the same command to finish"
    )
    notices = ("first run only", "kernels compiled in")  # a fresh clone's first run compiles the kernels
    progress = [line for line in progress if not any(notice in line for notice in notices)]
    assert all(line.startswith("scan: ") for line in progress), err  # a slow machine's progress lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "s.h5", "s.h5.journal"]  # no .tmp, no lock
    assert store_rows(store) == before
    # Room again: the same command finishes, nothing lost, nothing measured twice.
    done = scanner(*command[3:], timeout=300)
    assert done.returncode == 0, text(done)
    after = store_rows(store)
    assert len(after) == len(before) + 12 and all(after[p] == v for p, v in before.items())
    assert "12 already in the store" in done.stdout.decode()


def _tmpfs_works() -> bool:
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", "/mnt"])
    return probe.returncode == 0


@pytest.mark.skipif(not _tmpfs_works(), reason="needs a private mount namespace and tmpfs (root, unshare)")
def test_a_real_full_disk_during_the_merge(tmp_path):
    """A tmpfs a little larger than the store: the journal fits, the merge runs out of space (ENOSPC)."""
    store = big_store(tmp_path / "s.h5")
    photos = images(tmp_path / "photos", 12)
    mount = tmp_path / "disk"
    mount.mkdir()
    size = os.path.getsize(store)
    script = (
        f'mount -t tmpfs -o size={size + 512 * 1024} tmpfs "{mount}" && cp "{store}" "{mount}/s.h5" && '
        f'"{sys.executable}" -m scanner scan "{photos}" --out "{mount}/s.h5" --planner estimate -j 2; '
        f'echo "exit=$?"; ls -a "{mount}"; "{sys.executable}" -m scanner info "{mount}/s.h5" | head -2'
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script], capture_output=True, timeout=300
    )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert "exit=3" in out, out + err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert f"scanner scan: cannot write {mount}/s.h5: " in err
    assert "No space left on device" in err or "not enough space" in err
    assert ".tmp" not in out and "s.h5.journal" in out
    assert "rows:           20,000" in out  # the old store, intact


# --- class 7: Ctrl-C while the workers start; no BrokenPipeError from workers when killed ----------


def start_scan(tmp_path, photos, *extra, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "scanner", "scan", photos, "--out", tmp_path / "s.h5", "--planner", "estimate", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group, as a terminal makes: Ctrl-C reaches every process in it
        preexec_fn=limited(MEMORY_GIB),
        env=None if env is None else {**os.environ, **env},
    )


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_ctrl_c_while_the_workers_start_stops_the_scan(tmp_path, delay):
    photos = images(tmp_path / "photos", 300, size=32)
    process = start_scan(tmp_path, photos, "-j", "2")
    wait_for(lambda: (tmp_path / "s.h5.lock").exists())  # the store is held: workers start now
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, (out + err).decode()
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert b"interrupted" in err
    if delay == 0.0:  # what finished is kept (possibly nothing), and the same command goes on
        done = scanner("scan", photos, "--out", tmp_path / "s.h5", "--planner", "estimate", "-q", timeout=300)
        assert done.returncode == 0 and len(read_features(tmp_path / "s.h5")) == 300


@pytest.mark.parametrize("how", ["SIGKILL to the scan", "SIGTERM to the scan", "SIGTERM to the group"])
def test_killing_a_scan_prints_no_traceback_from_its_workers(tmp_path, how):
    photos = images(tmp_path / "photos", 300, size=64)
    process = start_scan(tmp_path, photos, "-j", "2")
    wait_for(lambda: (tmp_path / "s.h5.journal").exists() and os.path.getsize(tmp_path / "s.h5.journal") > 2000)
    if how == "SIGTERM to the group":
        os.killpg(process.pid, signal.SIGTERM)
    else:
        os.kill(process.pid, signal.SIGKILL if how.startswith("SIGKILL") else signal.SIGTERM)
    # The workers notice their parent is gone and leave quietly; stderr closes when the last one has.
    _, err = process.communicate(timeout=60)
    assert b"Traceback" not in err and b"Error" not in err, err.decode()
    with pytest.raises(ProcessLookupError):
        for _ in range(600):  # the whole group is gone within a minute
            os.killpg(process.pid, 0)
            time.sleep(0.1)


# --- class 8: workers killed again and again never mark a good file -------------------------------


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            found = [int(c) for c in handle.read().split()]
    except OSError:
        return []
    return found + [g for c in found for g in children(c)]


def test_ten_rapid_worker_kills_leave_no_good_file_unreadable(tmp_path):
    photos = images(tmp_path / "photos", 600, size=64)
    # Each file takes 20 ms more to decode, so the scan lasts at least 6 s: time for ten kills 0.3 s apart on
    # any machine (a fast CI machine finished the 600 files after four).
    process = start_scan(tmp_path, photos, "-j", "2", env={"SCANNER_TEST_DELAY": "img:0.02"})
    wait_for(lambda: (tmp_path / "s.h5.journal").exists())
    kills = 0
    while kills < 10 and process.poll() is None:
        workers = [c for c in children(process.pid) if c != process.pid]
        # The scan's own children are the fork server and the workers it forks; kill a worker.
        targets = [w for w in workers if any(w in children(server) for server in children(process.pid))]
        if targets:
            try:
                os.kill(targets[kills % len(targets)], signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
        # Apart enough that a kill does not land again and again on the replacement worker retrying one
        # file alone (five such kills mark the file, as an OOM-killed decoder's would be): stray kills,
        # not a siege of one file. At 0.15 s two files were marked in one CI run of several.
        time.sleep(0.3)
    out, err = process.communicate(timeout=300)
    assert b"Traceback" not in err, err.decode()
    if process.returncode != 0:  # killed faster than it could finish a chunk: it stops, keeping its rows
        assert process.returncode == 3 and b"rerun the same command" in err, err.decode()
        done = scanner("scan", photos, "--out", tmp_path / "s.h5", "--planner", "estimate", "-q", timeout=300)
        assert done.returncode in (0, 1), text(done)
    assert kills >= 5
    table = read_features(tmp_path / "s.h5")
    assert len(table) == 600
    assert set(table.status) == {"ok"}, [
        (p, e) for p, s, e in zip(table.path, table.status, table.error, strict=True) if s != "ok"
    ]


def test_a_file_that_crashes_the_decoder_is_marked_after_two_lone_crashes(tmp_path):
    """The other side of the rule: a real crash (here SIGABRT, through the crash-test hook) on a file
    alone in a worker, twice, gives it an unreadable row, and every other file is measured."""
    photos = images(tmp_path / "photos", 40, size=32)
    (photos / "img0013.png").rename(photos / "crash.png")
    result = scanner(
        "scan",
        photos,
        "--out",
        tmp_path / "s.h5",
        "--planner",
        "estimate",
        "-j",
        "2",
        env={"SCANNER_TEST_CRASH_ON": "crash.png"},
        timeout=300,
    )
    assert result.returncode == 1 and "Traceback" not in text(result), text(result)
    table = read_features(tmp_path / "s.h5")
    rows = dict(zip(table.path, zip(table.status, table.error, strict=True), strict=True))
    assert rows.pop(str(photos / "crash.png")) == (
        "unreadable",
        "the decoder crashed on this file (worker exit code -6, 2 times)",
    )
    assert len(rows) == 39 and {s for s, _ in rows.values()} == {"ok"}


_KILLS_WHILE_READING = """
import os, signal, sys
from scanner.features.extract import extractor_spec
from scanner.io.walk import Walk
from scanner.run.executors.base import MeasureSpec
from scanner.run.executors.local import LocalPool

root = sys.argv[1]
found = sorted(Walk([root]), key=lambda f: f.relpath)
spec = MeasureSpec(extractor_spec(planner="estimate"), (b"", os.fsencode(root)))
kills, rows = 0, []
with LocalPool(spec, 1) as pool:
    for out in pool.map(iter([[f] for f in found])):  # one file a chunk: the worker holds both, reads one
        if out is not None:
            rows.append(out)
        worker = pool._pool[0]
        if kills < 5 and worker.ready and worker.cells[2]:  # in the middle of reading a file
            os.kill(worker.process.pid, signal.SIGKILL)
            worker.process.join()
            kills += 1
for part in rows:
    for path, status, error in zip(part.path, part.status, part.error):
        print(path.decode(), status, error, sep="|")
"""


def test_a_kill_counts_only_against_the_file_being_read(tmp_path):
    # The fault: a worker holds two lone files (one it reads, one queued), and a kill from outside was
    # counted against both; five kills marked a file unreadable that no worker had even begun to read.
    photos = images(tmp_path / "photos", 2, size=32)
    done = subprocess.run(
        [sys.executable, "-c", _KILLS_WHILE_READING, str(photos)],
        capture_output=True,
        timeout=240,
        preexec_fn=limited(MEMORY_GIB),
        env={**os.environ, "SCANNER_TEST_DELAY": "img:0.6"},
    )
    assert done.returncode == 0, done.stderr.decode()
    rows = dict(line.split("|", 1) for line in done.stdout.decode().splitlines())
    assert sorted(rows) == ["img0000.png", "img0001.png"], rows
    # Five kills, each while one file was being read: at most that file reaches the five that mark it.
    statuses = sorted(value.split("|")[0] for value in rows.values())
    assert statuses in (["ok", "ok"], ["ok", "unreadable"]), rows
    for value in rows.values():
        if value.startswith("unreadable"):
            assert "a worker reading this file was killed" in value and "5 times" in value, value
