"""Scaling out without Dask: --shard, `scanner merge`, part files, and the time limit per file in the
local pool. (The Dask cluster itself is tested in test_cluster.py.)"""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import export, natural_image, write_tree
from typer.testing import CliRunner

from scanner.cli import app
from scanner.core.errors import InputError, StoreMismatch
from scanner.core.schema import Measurement, Rows, make_table
from scanner.features.extract import extractor_spec
from scanner.io.walk import Found
from scanner.run.executors.base import MeasureSpec, timed_out_error
from scanner.run.sweep import parse_shard, shard_of
from scanner.store.hdf5 import read_features, write_table
from scanner.store.keys import file_key
from scanner.store.parts import TIMED_OUT, Part, PartError, list_parts, parts_path, write_part
from scanner.store.session import StoreSession

runner = CliRunner()


def scan_args(tree, out, *extra):
    return ["scan", str(tree), "--out", str(out), "--planner", "estimate", "--quiet", "--strict", *extra]


def scan_process(tree, out, *extra, env=None):
    command = [sys.executable, "-m", "scanner", *scan_args(tree, out, *extra)]
    return subprocess.run(
        command, env={**os.environ, **(env or {})}, capture_output=True, timeout=300, start_new_session=True
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    images = root / "images"
    write_tree(images, 60)
    result = runner.invoke(app, scan_args(images, root / "reference.h5", "--workers", "2"))
    assert result.exit_code == 1, result.output
    return images, export(root / "reference.h5")


# --- --shard I/N -------------------------------------------------------------------------------


def test_shards_are_disjoint_cover_the_listing_and_merge_to_the_full_scan(tree, tmp_path):
    images, reference = tree
    stores = [tmp_path / f"shard{i}.h5" for i in (1, 2, 3)]
    for i, store in enumerate(stores, 1):
        result = runner.invoke(app, scan_args(images, store, "--workers", "1", "--shard", f"{i}/3"))
        assert result.exit_code in (0, 1), result.output
    paths = [set(read_features(store).path) for store in stores]
    assert all(paths) and sum(map(len, paths)) == len(set.union(*paths)) == len(reference) - 1
    for i, found in enumerate(paths, 1):
        assert all(shard_of(os.fsencode(p), 3) == i for p in found)
    merged = tmp_path / "all.h5"
    result = runner.invoke(app, ["merge", *map(str, stores), "--out", str(merged)])
    assert result.exit_code == 0, result.output
    assert f"{len(reference) - 1} rows from 3 stores" in result.output and "left out" not in result.output
    assert export(merged) == reference


def test_shard_is_the_same_whatever_the_walk_order_and_a_bad_shard_is_refused():
    paths = [f"/data/{i}.jpg".encode() for i in range(3000)]
    shards = [shard_of(p, 7) for p in paths]
    assert shards == [shard_of(p, 7) for p in reversed(paths)][::-1]
    counts = np.bincount(shards, minlength=8)[1:]
    assert counts.min() > 300  # about 3000 / 7 each
    assert parse_shard("2/7") == (2, 7)
    for bad in ("0/3", "4/3", "a/b", "3", "1/0"):
        with pytest.raises(InputError, match="I/N"):
            parse_shard(bad)
    result = runner.invoke(app, ["scan", "/tmp", "--out", "/tmp/x.h5", "--shard", "4/3"])
    assert result.exit_code == 2 and "1 <= I <= N" in result.output


# --- scanner merge -----------------------------------------------------------------------------


def store_of(path, files, measurement=None, roots=()):
    """A store of (path, mtime, feature value) rows."""
    table = make_table(
        [f for f, _, _ in files],
        [[v] * 6 for _, _, v in files],
        measurement=measurement or Measurement(),
        roots=roots,
        mtime=[m for _, m, _ in files],
        size=[100] * len(files),
    )
    write_table(path, table)
    return path


def test_merge_keeps_the_newest_mtime_and_counts_the_rows_left_out(tmp_path):
    a = store_of(tmp_path / "a.h5", [("/x/a.png", 10.0, 1.0), ("/x/c.png", 5.0, 1.0)], roots=["/x"])
    b = store_of(tmp_path / "b.h5", [("/x/a.png", 20.0, 2.0), ("/x/b.png", 7.0, 2.0)])
    c = store_of(tmp_path / "c.h5", [("/x/b.png", 7.0, 3.0), ("/y/d.png", 1.0, 3.0)], roots=["/y"])
    out = tmp_path / "all.h5"
    result = runner.invoke(app, ["merge", str(a), str(b), str(c), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 rows from 3 stores; 2 rows of paths present more than once left out" in result.output
    table = read_features(out)
    got = {p: (float(table.mtime[i]), float(table.features[i, 0])) for i, p in enumerate(table.path)}
    # a.png: b's row is newer; b.png: same mtime in b and c, the later input wins.
    assert got == {"/x/a.png": (20.0, 2.0), "/x/b.png": (7.0, 3.0), "/x/c.png": (5.0, 1.0), "/y/d.png": (1.0, 3.0)}
    assert read_features(out).roots[0] == ""


def test_merge_refuses_stores_measured_differently_and_never_writes_over_an_input(tmp_path):
    from helpers import write_schema_1_store

    a = store_of(tmp_path / "a.h5", [("/x/a.png", 1.0, 1.0)])
    b = store_of(tmp_path / "b.h5", [("/x/b.png", 1.0, 1.0)], measurement=Measurement(spectrum="modulus"))
    result = runner.invoke(app, ["merge", str(a), str(b), "--out", str(tmp_path / "all.h5")])
    assert result.exit_code == 2 and "only stores measured the same way can be merged" in result.output
    assert "--spectrum" in result.output and not (tmp_path / "all.h5").exists()
    old = tmp_path / "old.h5"
    write_schema_1_store(old, make_table(["/x/c.png"], [[1.0] * 6], measurement=Measurement()))
    double = store_of(tmp_path / "d.h5", [("/x/d.png", 1.0, 1.0)], measurement=Measurement(precision="double"))
    result = runner.invoke(app, ["merge", str(double), str(old), "--out", str(tmp_path / "all.h5")])
    assert result.exit_code == 2 and "store schema 1" in result.output
    before = a.read_bytes()
    result = runner.invoke(app, ["merge", str(a), str(a), "--out", str(a)])
    assert result.exit_code == 2 and "is also an input" in result.output and a.read_bytes() == before
    (tmp_path / "text.h5").write_text("not a store")
    result = runner.invoke(app, ["merge", str(a), str(tmp_path / "text.h5"), "--out", str(tmp_path / "all.h5")])
    assert result.exit_code == 2 and not (tmp_path / "all.h5").exists()
    assert not list(tmp_path.glob("*.lock")) and not list(tmp_path.glob(".*tmp"))


# --- part files ----------------------------------------------------------------------------------


def part_rows(paths, value=1.0):
    n = len(paths)
    return Rows.build(n, 6, path=paths, root=[1] * n, size=[10] * n, mtime=[1.0] * n, features=np.full((n, 6), value))


def test_a_part_file_reads_back_exactly_and_a_damaged_one_is_refused(tmp_path):
    rows = part_rows([b"a.png", b"b\xe9.png"]).replace(status=["ok", "truncated"], error=["", "cut"])
    path = str(tmp_path / "x.part")
    write_part(path, rows, Measurement(), ["", "/data"], "x")
    part = Part.open(path)
    assert (part.rows, part.roots, part.counts) == (2, ["", "/data"], {"ok": 1, "truncated": 1})
    (back,) = part.batches()
    for name in ("path", "status", "error", "root", "size", "mtime"):
        assert back[name].tolist() == rows[name].tolist()
    np.testing.assert_array_equal(back.features, rows.features)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:-5])
    with pytest.raises(PartError, match="whole rows"):
        Part.open(path)


def test_a_session_merges_part_files_left_by_a_stopped_scan_first(tmp_path):
    out = tmp_path / "s.h5"
    directory = parts_path(str(out))
    os.makedirs(directory)
    write_part(os.path.join(directory, "a.part"), part_rows([b"a.png", b"b.png"]), Measurement(), ["", "/d"], "a")
    write_part(os.path.join(directory, "b.part"), part_rows([b"c.png"]), Measurement(), ["", "/e", "/d"], "b")
    Path(directory, "c.part").write_bytes(b"SCJ1 torn")  # damaged: set aside, its files measured again
    with StoreSession(out, Measurement(), ["", "/d"]) as session:
        assert session.store_rows == 3 and list_parts(directory) == []
        assert session.is_done(b"/d/a.png", 10, 1.0) and session.is_done(b"/e/c.png", 10, 1.0)
        session.finish()
    assert sorted(read_features(out).path) == ["/d/a.png", "/d/b.png", "/e/c.png"]
    assert os.listdir(directory) == ["c.part.damaged"]
    # Part files measured another way are refused, with what to do; --overwrite drops them.
    other = parts_path(str(tmp_path / "t.h5"))
    os.makedirs(other)
    write_part(os.path.join(other, "m.part"), part_rows([b"x.png"]), Measurement(spectrum="modulus"), [""], "m")
    with pytest.raises(StoreMismatch, match="part files.*rerun with --spectrum modulus to resume it"):
        StoreSession(tmp_path / "t.h5", Measurement(), [""]).__enter__()
    with StoreSession(tmp_path / "t.h5", Measurement(), [""], overwrite=True) as session:
        session.finish()
    assert len(read_features(tmp_path / "t.h5")) == 0 and not os.path.exists(parts_path(str(tmp_path / "t.h5")))


def test_a_dask_task_writes_its_part_and_a_timed_out_file_gets_its_row(tmp_path):
    """The task function alone, in this process: no Dask needed."""
    from scanner.run.executors.dask_worker import ShardTask, WorkerProblem, _marker, run_shard

    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.png"), natural_image(24, 24, seed=i)[..., ::-1])
    roots = (b"", os.fsencode(images))
    stats = [os.stat(images / f"{i}.png") for i in range(3)]
    files = tuple(Found(1, f"{i}.png".encode(), st.st_size, st.st_mtime) for i, st in enumerate(stats))
    spec = MeasureSpec(extractor_spec(planner="estimate"), roots, file_timeout=5.0)
    directory = tmp_path / "s.h5.parts"
    task = ShardTask("abc", files, str(directory / "abc.part"))
    with pytest.raises(WorkerProblem, match="cannot see"):
        run_shard(spec, task)
    os.makedirs(directory / TIMED_OUT)
    marker = _marker(task, files[1], roots)
    assert os.path.basename(marker) == f"{file_key(os.fsencode(images / '1.png'), files[1].size, files[1].mtime):016x}"
    Path(marker).write_text('{"seconds": 7}')
    result = run_shard(spec, task)
    assert result["rows"] == 3 and result["counts"] == {"ok": 2, "unreadable": 1}
    (rows,) = Part.open(result["part"]).batches()
    table = {p: (s, e) for p, s, e in zip(rows.path.tolist(), rows.status.tolist(), rows.error.tolist(), strict=True)}
    assert table[b"1.png"] == ("unreadable", timed_out_error(7))
    assert run_shard(spec, task)["rows"] == 3  # run again (its worker lost): the part file is the answer
    with pytest.raises(WorkerProblem, match="runs scanner"):
        run_shard(spec, ShardTask("abc", files, task.part, version="0.0.1"))


def test_tasks_shrink_on_a_cluster_so_large_that_files_in_flight_would_exceed_the_bound():
    import time

    from scanner.run.executors.dask import IN_FLIGHT, MAX_FILES_IN_FLIGHT, DaskExecutor

    executor = DaskExecutor.__new__(DaskExecutor)  # no cluster: only the sizing
    executor.chunk_files, executor._threads_checked = 2048, time.monotonic()
    for threads, size in ((2, 2048), (64, 2048), (160, 1562), (3200, 78), (100_000, 64)):
        executor._threads = threads
        assert executor._task_size() == size
        assert size == 64 or IN_FLIGHT * threads * size <= MAX_FILES_IN_FLIGHT


# --- the time limit and crashes in the local pool -----------------------------------------------------


def test_a_hanging_decode_hits_the_time_limit_in_the_local_pool(tmp_path):
    images = tmp_path / "images"
    write_tree(images, 20)
    cv2.imwrite(str(images / "d0" / "hang-me.png"), natural_image(32, 32, seed=5)[..., ::-1])
    out = tmp_path / "s.h5"
    result = scan_process(images, out, "--workers", "2", "--file-timeout", "1", env={"SCANNER_TEST_HANG_ON": "hang-me"})
    assert result.returncode == 1, result.stderr.decode()
    table = read_features(out)
    rows = {p: (s, e) for p, s, e in zip(table.path, table.status, table.error, strict=True)}
    assert rows.pop(str(images / "d0" / "hang-me.png")) == ("unreadable", timed_out_error(1))
    assert sum(s == "ok" for s, _ in rows.values()) == 20 and len(rows) == 27  # the others: measured as usual


def test_a_file_that_crashes_its_worker_alone_gets_a_row_in_the_local_pool(tmp_path):
    images = tmp_path / "images"
    write_tree(images, 20)
    cv2.imwrite(str(images / "d1" / "crash-me.png"), natural_image(32, 32, seed=5)[..., ::-1])
    out = tmp_path / "s.h5"
    result = scan_process(images, out, "--workers", "2", env={"SCANNER_TEST_CRASH_ON": "crash-me"})
    assert result.returncode == 1, result.stderr.decode()
    table = read_features(out)
    row = table.path.index(str(images / "d1" / "crash-me.png"))
    assert table.status[row] == "unreadable" and "the decoder crashed on this file" in table.error[row]
    assert sum(s == "ok" for s in table.status) == 20


def test_info_and_merge_say_when_part_files_wait_next_to_a_store(tmp_path):
    store = store_of(tmp_path / "a.h5", [("/x/a.png", 1.0, 1.0)])
    directory = parts_path(str(store))
    os.makedirs(directory)
    write_part(os.path.join(directory, "p.part"), part_rows([b"x.png"]), Measurement(), ["", "/d"], "p")
    result = runner.invoke(app, ["info", str(store)])
    assert result.exit_code == 0 and "distributed scan's part files are next to it" in result.output
    result = runner.invoke(app, ["merge", str(store), "--out", str(tmp_path / "all.h5")])
    assert result.exit_code == 0 and "has an unfinished scan next to it" in result.output
    assert len(read_features(tmp_path / "all.h5")) == 1


_FAULTS = """
import resource, sys
from scanner.features.extract import make_extractor
from scanner.features.measure import measure_file
extractor = make_extractor(planner="estimate")
files = sys.argv[1:]
for f in files[:3]:
    measure_file(f, extractor)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for f in files:
    measure_file(f, extractor)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / len(files))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc")
def test_dask_workers_undo_the_nannys_malloc_trim_threshold(tmp_path):
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536: every decoded image would then be
    mapped afresh (page faults); building the extractor sets the thresholds (scanner.core.allocator)."""
    files = []
    for i in range(12):
        files.append(str(tmp_path / f"{i}.jpg"))
        cv2.imwrite(files[-1], natural_image(256, 256, seed=i)[..., ::-1])
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    env.pop("MALLOC_MMAP_THRESHOLD_", None)

    def faults(**extra):
        result = subprocess.run(
            [sys.executable, "-c", _FAULTS, *files], env=env | extra, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return float(result.stdout)

    assert faults(SCANNER_MALLOC="default") > 40  # the nanny's setting left alone: a fresh mapping per image
    assert faults() < 5
