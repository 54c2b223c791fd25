"""What a SIGKILLed command leaves behind (temporaries, lock files) is found and removed by the next run.

Each run is a real command in a subprocess (tests/hostile.py), killed at the store's own kill
points (scanner/core/faults.py) or left with a temporary of a process that is gone.
"""

import os
import signal
import subprocess
import sys

import numpy as np
from hostile import limited, scanner, text

from scanner.core.schema import make_table
from scanner.io.temporaries import this_host
from scanner.store.hdf5 import read_features, write_table


def two_stores(tmp_path, n=3000):
    paths = []
    for k in range(2):
        table = make_table(
            [f"/nowhere/{k}/{i}.jpg" for i in range(n)],
            np.random.default_rng(k).random((n, 6)),
            format=["JPEG"] * n,
            size=list(range(n)),
            mtime=[1.0] * n,
        )
        path = tmp_path / f"in{k}.h5"
        write_table(path, table)
        paths.append(path)
    return paths


def killed_at(point, *args):
    """`scanner ARGS...` SIGKILLed (with its whole process group, its own) at the kill point."""
    return subprocess.run(
        [sys.executable, "-m", "scanner", *map(str, args)],
        env={**os.environ, "SCANNER_TEST_KILL_AT": point},
        start_new_session=True,
        capture_output=True,
        timeout=120,
        preexec_fn=limited(2),
    )


def dead_pid():
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def leftovers(directory, *keep):
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_a_killed_merge_leaves_a_temporary_that_info_names_and_the_next_merge_removes(tmp_path):
    a, b = two_stores(tmp_path)
    out = tmp_path / "all.h5"
    killed = killed_at("merge-writing", "merge", a, b, "--out", out)
    assert killed.returncode == -signal.SIGKILL, text(killed)
    left = leftovers(tmp_path, "in0.h5", "in1.h5")
    assert left and not out.exists(), left
    assert any(name.startswith(".all.h5.") for name in left), left
    info = scanner("info", a)
    assert info.returncode == 0, text(info)
    done = scanner("merge", a, b, "--out", out)
    assert done.returncode == 0, text(done)
    assert len(read_features(out).path) == 6000
    assert leftovers(tmp_path, "in0.h5", "in1.h5") == ["all.h5"]  # no temporary, no lock file


def test_info_names_a_leftover_temporary_in_one_line_and_a_scan_of_the_store_removes_it(tmp_path):
    a, b = two_stores(tmp_path)
    killed = killed_at("merge-writing", "merge", a, b, "--out", a.with_name("all.h5"))
    assert killed.returncode == -signal.SIGKILL, text(killed)
    os.replace(a, tmp_path / "all.h5")  # a store beside the killed merge's temporaries
    store = tmp_path / "all.h5"
    info = scanner("info", store)
    assert info.returncode == 0, text(info)
    notes = [line for line in info.stdout.decode().splitlines() if "temporary" in line]
    assert len(notes) == 1, text(info)
    assert ".all.h5.scanner-tmp." in notes[0] and "process that is gone" in notes[0], notes
    photos = tmp_path / "photos"
    photos.mkdir()
    scanned = scanner("scan", photos, "--out", store, "--planner", "estimate", "-j", "1")
    assert scanned.returncode == 0, text(scanned)
    assert not [p for p in os.listdir(tmp_path) if "scanner-tmp" in p]
    info = scanner("info", store)
    assert "temporary" not in info.stdout.decode(), text(info)


def test_export_removes_a_dead_process_temporary_and_never_a_live_one(tmp_path):
    a, _ = two_stores(tmp_path, n=50)
    out = tmp_path / "rows.csv"
    host = this_host()
    dead = tmp_path / f".rows.csv.scanner-tmp.{dead_pid()}@{host}"
    live = tmp_path / f".rows.csv.scanner-tmp.{os.getpid()}@{host}"
    elsewhere = tmp_path / f".rows.csv.scanner-tmp.{dead_pid()}@another-machine"
    for path in (dead, live, elsewhere):
        path.write_bytes(b"x" * 1000)
    done = scanner("export", a, "--out", out)
    assert done.returncode == 0, text(done)
    assert out.exists() and not dead.exists()
    assert live.exists() and elsewhere.exists()  # a live process's, and one this host cannot ask about


def test_lock_files_of_a_killed_merge_go_with_the_next_merge(tmp_path):
    a, b = two_stores(tmp_path, n=50)
    out = tmp_path / "all.h5"
    killed = killed_at("merge-writing", "merge", a, b, "--out", out)
    assert killed.returncode == -signal.SIGKILL, text(killed)
    assert {"all.h5.lock", "in0.h5.lock", "in1.h5.lock"} <= set(os.listdir(tmp_path))
    done = scanner("merge", a, b, "--out", out)
    assert done.returncode == 0, text(done)
    assert leftovers(tmp_path) == ["all.h5", "in0.h5", "in1.h5"]
