"""The store's lifecycle apart from any executor: sessions, overwrite, the lock, schema migration."""

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from helpers import Features, natural_image

from scanner.core.errors import ScanError, StoreMismatch
from scanner.core.schema import SCHEMA_VERSION, Measurement, Rows
from scanner.io.walk import Walk
from scanner.run.executors.inline import InProcess
from scanner.run.sweep import MeasureOptions, ScanOptions, scan
from scanner.store.hdf5 import read_features, read_header
from scanner.store.journal import Journal
from scanner.store.lock import locked
from scanner.store.session import StoreSession, journal_path

OPTIONS = dict(measure=MeasureOptions(planner="estimate"), workers=2)


def write_images(directory, n, seed=0):
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(directory / f"img{i:03d}.png"), natural_image(24 + i, 32, seed=seed + i)[..., ::-1])


def rows_by_path(store):
    table = read_features(store)
    return {p: (table.status[i], Features(table.features[i]), int(table.size[i])) for i, p in enumerate(table.path)}


def test_a_second_executor_plugs_in_and_gives_the_same_store(tmp_path):
    images = tmp_path / "images"
    write_images(images, 7)
    (images / "bad.png").write_bytes(b"not an image")
    pool = scan(Walk([images]), tmp_path / "pool.h5", ScanOptions(**OPTIONS))
    inline = scan(Walk([images]), tmp_path / "inline.h5", ScanOptions(**OPTIONS), executor=InProcess)
    assert (pool.written, inline.written, inline.workers) == (8, 8, 1)
    assert rows_by_path(tmp_path / "pool.h5") == rows_by_path(tmp_path / "inline.h5")


def test_session_resumes_by_path_size_and_mtime(tmp_path):
    out = tmp_path / "s.h5"
    roots = ["", "/data"]
    rows = Rows.build(
        2,
        6,
        path=[b"a.png", b"b.png"],
        root=[1, 1],
        size=[10, 20],
        mtime=[1.0, 2.0],
        status=["ok", "vanished"],
        features=np.ones((2, 6)),
    )
    with StoreSession(out, Measurement(), roots) as session:
        session.add(rows)
        assert session.finish() == 2
    with StoreSession(out, Measurement(), roots) as session:
        assert session.is_done(b"/data/a.png", 10, 1.0)
        assert not session.is_done(b"/data/a.png", 11, 1.0)  # changed size
        assert not session.is_done(b"/data/b.png", 20, 2.0)  # vanished rows are retried
        assert session.skipped == 1
        assert session.finish() == 2
    assert not os.path.exists(journal_path(str(out)))


def test_another_measurement_is_refused_with_what_to_do(tmp_path):
    out = tmp_path / "s.h5"
    with StoreSession(out, Measurement(precision="double"), [""]) as session:
        session.finish()
    with pytest.raises(StoreMismatch, match="rerun with --precision double to resume it"):
        StoreSession(out, Measurement(precision="single"), [""]).__enter__()


def test_schema_1_store_is_migrated_when_a_resume_adds_rows(tmp_path):
    from helpers import write_schema_1_store

    from scanner.core.schema import make_table

    images = tmp_path / "images"
    write_images(images, 3)
    out = tmp_path / "s.h5"
    scan(Walk([images]), out, ScanOptions(**OPTIONS))
    before = rows_by_path(out)
    table = read_features(out)
    write_schema_1_store(out, make_table(table.path, table.features, size=table.size, mtime=table.mtime))
    assert read_header(out).schema_version == 1
    write_images(images / "more", 1, seed=9)
    summary = scan(Walk([images]), out, ScanOptions(**OPTIONS))
    assert (summary.skipped, summary.written) == (3, 1)
    assert read_header(out).schema_version == SCHEMA_VERSION
    after = rows_by_path(out)
    assert {p: after[p] for p in before} == before and len(after) == 4


def test_schema_2_store_resumed_gets_hashes_for_its_new_rows_and_none_for_its_old(tmp_path):
    """A store from before file hashes reads with sha256 '' in every row; a resume that adds rows rewrites it
    as the current schema: the new rows hashed, the old ones still '' (their bytes were not read again)."""
    from helpers import sha256sum, write_schema_2_store

    from scanner.core.schema import make_table

    images = tmp_path / "images"
    write_images(images, 3)
    out = tmp_path / "s.h5"
    scan(Walk([images]), out, ScanOptions(**OPTIONS))
    table = read_features(out)
    write_schema_2_store(out, make_table(table.path, table.features, size=table.size, mtime=table.mtime))
    old = read_features(out)
    assert read_header(out).schema_version == 2 and old.sha256.tolist() == ["", "", ""]
    write_images(images / "more", 1, seed=9)
    summary = scan(Walk([images]), out, ScanOptions(**OPTIONS))
    assert (summary.skipped, summary.written) == (3, 1)
    assert read_header(out).schema_version == SCHEMA_VERSION
    after = read_features(out)
    hashes = dict(zip(after.path, after.sha256.tolist(), strict=True))
    new = str(images / "more" / "img000.png")
    assert hashes.pop(new) == sha256sum(new)
    assert sorted(hashes) == sorted(old.path) and set(hashes.values()) == {""}


def test_overwrite_keeps_the_old_store_until_the_new_one_replaces_it(tmp_path):
    images = tmp_path / "images"
    write_images(images, 6)
    out = tmp_path / "s.h5"
    scan(Walk([images]), out, ScanOptions(**OPTIONS))
    old = rows_by_path(out)
    command = [
        sys.executable,
        "-m",
        "scanner",
        "scan",
        str(images),
        "--out",
        str(out),
        "--planner",
        "estimate",
        "--workers",
        "1",
        "--overwrite",
        "--spectrum",
        "modulus",
        "--quiet",
    ]
    result = subprocess.run(
        command,
        env={**os.environ, "SCANNER_TEST_KILL_AT": "journal-appended"},
        start_new_session=True,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL
    assert rows_by_path(out) == old and read_header(out).measurement.spectrum == "log"  # killed: the old store
    assert Journal.committed_rows(journal_path(str(out))) > 0
    # The same command without --overwrite finishes the interrupted overwrite.
    result = subprocess.run(command[:-4] + ["--spectrum", "modulus", "--quiet"], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    table = read_features(out)
    assert table.measurement.spectrum == "modulus" and len(table) == 6


def _contend(lock_dir, rounds, violations):
    out = os.path.join(lock_dir, "s.h5")
    marker = os.path.join(lock_dir, "holder")
    done = 0
    while done < rounds:
        try:
            with locked(out):
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    with violations.get_lock():
                        violations.value += 1
                    continue
                time.sleep(0.0005)
                os.close(fd)
                os.unlink(marker)
                done += 1
        except ScanError:
            time.sleep(0.0001)


def test_the_lock_admits_one_holder_at_a_time(tmp_path):
    ctx = mp.get_context("fork")
    violations = ctx.Value("i", 0)
    workers = [ctx.Process(target=_contend, args=(str(tmp_path), 150, violations)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    assert violations.value == 0
    assert not (tmp_path / "s.h5.lock").exists()


def test_a_held_lock_refuses_a_second_writer(tmp_path):
    with locked(str(tmp_path / "s.h5")), pytest.raises(ScanError, match="being written by another scan"):
        StoreSession(tmp_path / "s.h5", Measurement(), [""]).__enter__()


def test_a_resume_measures_as_the_store_did_unless_told_otherwise(tmp_path):
    images = tmp_path / "images"
    write_images(images, 3)
    out = tmp_path / "s.h5"
    scan(
        Walk([images]),
        out,
        ScanOptions(MeasureOptions(spectrum="modulus", precision="single", planner="estimate"), workers=2),
    )
    write_images(images / "more", 1, seed=5)
    summary = scan(Walk([images]), out, ScanOptions(**OPTIONS))  # no measurement options: the store's
    assert (summary.skipped, summary.written) == (3, 1)
    assert read_header(out).measurement == Measurement(spectrum="modulus", precision="single")
    with pytest.raises(StoreMismatch, match="rerun with --precision single to resume it"):
        scan(Walk([images]), out, ScanOptions(MeasureOptions(precision="double", planner="estimate"), workers=2))
