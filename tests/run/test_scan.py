"""The scan pipeline: real files, real worker processes, real SIGKILLs."""

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import Features, natural_image
from PIL import Image
from typer.testing import CliRunner

from scanner.cli import app
from scanner.core.errors import ScanError, StoreMismatch
from scanner.core.schema import SCHEMA_VERSION
from scanner.features.extract import make_extractor
from scanner.features.measure import features_of_file
from scanner.io.walk import Walk
from scanner.run.sweep import MeasureOptions, ScanOptions, scan
from scanner.store.hdf5 import read_features
from scanner.store.journal import Journal
from scanner.store.merge import merge
from scanner.store.session import journal_path

runner = CliRunner()
OPTIONS = dict(measure=MeasureOptions(planner="estimate"), workers=2)


def write_jpegs(directory, n, size=96, seed=0):
    """n distinct JPEGs in two subdirectories (distinct content: a wrong path-row pairing shows)."""
    base = natural_image(size, size, seed=seed)[..., ::-1]
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = directory / f"part{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        noisy = np.clip(base.astype(np.int16) + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(sub / f"img{i:04d}.jpg"), noisy, [cv2.IMWRITE_JPEG_QUALITY, 90])


def rows_by_path(store):
    table = read_features(store)
    assert len(set(table.path)) == len(table.path), "duplicate rows"
    return {
        p: (
            table.status[i],
            table.error[i],
            Features(table.features[i]),
            int(table.height[i]),
            int(table.width[i]),
            table.format[i],
            table.jpeg_subsampling[i],
            int(table.jpeg_quality[i]),
            int(table.size[i]),
            float(table.mtime[i]),
        )
        for i, p in enumerate(table.path)
    }


# --- one scan, checked file by file ------------------------------------------------


def png_with_size(width, height):
    """A valid tiny PNG whose header claims width x height (a decompression bomb's header)."""
    data = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def pil_bytes(image, fmt):
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def odd_tree(tmp_path_factory):
    """Every bad and odd input the issue lists, with the status and format each must get.

    features_of_file gives no header facts for an unusable file, so its format is empty.
    """
    root = tmp_path_factory.mktemp("odd")
    rgb = natural_image(40, 48, seed=3)
    bgr = rgb[..., ::-1]
    jpeg = cv2.imencode(".jpg", bgr)[1].tobytes()
    expected = {}

    def put(name, data, status, fmt=""):
        path = root / os.fsdecode(name) if isinstance(name, bytes) else root / name
        path.write_bytes(data)
        expected[os.fsdecode(bytes(path)) if isinstance(name, bytes) else str(path)] = (status, fmt)

    put("good.png", cv2.imencode(".png", bgr)[1].tobytes(), "ok", "PNG")
    put("empty.jpg", b"", "unreadable")
    put("truncated.jpg", jpeg[: len(jpeg) // 2], "truncated", "JPEG")
    put("notes.jpg", b"these are not pixels", "not_image")
    put("grey.png", cv2.imencode(".png", np.full((20, 20, 3), 128, np.uint8))[1].tobytes(), "grayscale", "PNG")
    put("dot.png", cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes(), "too_small", "PNG")
    put("bomb.png", png_with_size(100_000, 100_000), "too_large", "PNG")
    put("actually-jpeg.png", jpeg, "ok", "JPEG")
    put("deep16.png", cv2.imencode(".png", (bgr.astype(np.uint16) * 257))[1].tobytes(), "ok", "PNG")
    put(
        "alpha.png",
        cv2.imencode(".png", np.dstack([bgr, np.full(bgr.shape[:2], 200, np.uint8)]))[1].tobytes(),
        "ok",
        "PNG",
    )
    put("cmyk.jpg", pil_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG"), "ok", "JPEG")
    put("palette.png", pil_bytes(Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE), "PNG"), "ok", "PNG")
    put("visage-é.png", cv2.imencode(".png", bgr)[1].tobytes(), "ok", "PNG")
    put(b"latin1-\xe9.png", cv2.imencode(".png", bgr)[1].tobytes(), "ok", "PNG")
    (root / "readme.txt").write_text("not scanned: extension not in the filter")
    # Links inside the tree are not followed (the default): each gets a row saying so.
    (root / "broken.jpg").symlink_to(root / "nowhere.jpg")
    expected[str(root / "broken.jpg")] = ("not_image", "")
    (root / "loop.jpg").symlink_to(root / "loop.jpg")
    expected[str(root / "loop.jpg")] = ("not_image", "")
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to(root)
    expected[str(root / "sub" / "up")] = ("not_image", "")
    os.mkfifo(root / "pipe.jpg")
    expected[str(root / "pipe.jpg")] = ("not_image", "")
    if os.geteuid() != 0:
        put("locked.jpg", jpeg, "permission")
        os.chmod(root / "locked.jpg", 0)
    return root, expected


def test_every_bad_and_odd_file_gets_its_row(odd_tree, tmp_path):
    root, expected = odd_tree
    summary = scan(Walk([root]), tmp_path / "s.h5", ScanOptions(**OPTIONS))
    table = read_features(tmp_path / "s.h5")
    got = {p: (table.status[i], table.format[i]) for i, p in enumerate(table.path)}
    assert got == expected
    assert summary.written == len(expected) and summary.store_rows == len(expected)
    for i, status in enumerate(table.status):
        assert (table.error[i] == "") == (status == "ok"), table.path[i]
        assert np.isnan(table.features[i]).all() == (status != "ok"), table.path[i]
    assert "not followed" in table.error[table.path.index(str(root / "sub" / "up"))]
    assert "not followed" in table.error[table.path.index(str(root / "broken.jpg"))]
    scan(Walk([root], follow_links=True), tmp_path / "followed.h5", ScanOptions(**OPTIONS))
    followed = read_features(tmp_path / "followed.h5")
    assert "loop" in followed.error[followed.path.index(str(root / "sub" / "up"))]
    assert "broken symbolic link" in followed.error[followed.path.index(str(root / "broken.jpg"))]
    assert followed.status[followed.path.index(str(root / "loop.jpg"))] == "unreadable"


def test_rows_match_features_of_file(odd_tree, tmp_path):
    """Every column of a row is what features_of_file and stat say about that file."""
    root, _ = odd_tree
    scan(Walk([root]), tmp_path / "s.h5", ScanOptions(**OPTIONS))
    table = read_features(tmp_path / "s.h5")
    extractor = make_extractor(planner="estimate")
    checked = 0
    for i, path in enumerate(table.path):
        if not os.path.isfile(path) or path.endswith("pipe.jpg"):
            continue
        want = features_of_file(path, extractor)
        info = os.stat(path)
        assert (table.status[i], table.error[i]) == (want.status, want.error)
        assert (table.height[i], table.width[i]) == (want.info.height or 0, want.info.width or 0)
        assert table.jpeg_subsampling[i] == (want.info.jpeg_subsampling or "")
        assert table.jpeg_quality[i] == (want.info.jpeg_quality or 0)
        assert (table.size[i], table.mtime[i]) == (info.st_size, info.st_mtime)
        if want.features is not None:
            assert Features(table.features[i]) == Features(want.features)
        checked += 1
    assert checked >= 14


def test_file_vanishing_between_walk_and_read(tmp_path):
    """A file deleted after it was listed but before a worker read it: status vanished."""
    images = tmp_path / "images"
    write_jpegs(images, 3)
    files = sorted(images.rglob("*.jpg"))

    class VanishingWalk(Walk):
        def __iter__(self):
            for item in super().__iter__():
                yield item
                if item.relpath.endswith(b"img0001.jpg"):
                    (images / "part1" / "img0001.jpg").unlink()

    scan(VanishingWalk([images]), tmp_path / "s.h5", ScanOptions(**OPTIONS))
    table = read_features(tmp_path / "s.h5")
    status = dict(zip(table.path, table.status, strict=True))
    assert status == {str(files[0]): "ok", str(files[1]): "ok", str(images / "part1" / "img0001.jpg"): "vanished"}


def test_resume_skips_done_files_and_rescans_changed_ones(tmp_path):
    images = tmp_path / "images"
    write_jpegs(images, 6)
    out = tmp_path / "s.h5"
    first = scan(Walk([images]), out, ScanOptions(**OPTIONS))
    assert (first.written, first.skipped) == (6, 0)
    changed = images / "part0" / "img0000.jpg"
    changed.write_bytes(cv2.imencode(".jpg", natural_image(50, 70, seed=9)[..., ::-1])[1].tobytes())
    cv2.imwrite(str(images / "new.jpg"), natural_image(30, 30, seed=4)[..., ::-1])
    second = scan(Walk([images]), out, ScanOptions(**OPTIONS))
    assert (second.written, second.skipped, second.store_rows) == (2, 5, 7)
    table = read_features(out)
    assert len(table) == 7 and len(set(table.path)) == 7
    row = table.path.index(str(changed))
    assert (table.height[row], table.width[row]) == (50, 70)
    assert table.size[row] == changed.stat().st_size


def test_refuses_another_spectrum_then_overwrite_starts_over(tmp_path):
    images = tmp_path / "images"
    write_jpegs(images, 2)
    out = tmp_path / "s.h5"
    scan(Walk([images]), out, ScanOptions(**OPTIONS))
    with pytest.raises(StoreMismatch, match="--spectrum log to resume"):
        scan(Walk([images]), out, ScanOptions(MeasureOptions(spectrum="modulus", planner="estimate"), workers=2))
    summary = scan(
        Walk([images]),
        out,
        ScanOptions(MeasureOptions(spectrum="modulus", planner="estimate"), workers=2, overwrite=True),
    )
    assert summary.written == 2 and read_features(out).spectrum == "modulus"


def open_journal_beside(out: str, table) -> Journal:
    """A fresh journal next to the store, as a scan of that store would start one."""
    return Journal.create(
        journal_path(out),
        {
            **table.measurement.attrs(),
            "schema_version": 2,
            "command": "scanner scan",
            "created": "now",
            "roots": table.roots,
        },
    )


def test_merge_keeps_last_row_per_path_and_never_merges_a_journal_twice(tmp_path):
    images = tmp_path / "images"
    write_jpegs(images, 2)
    out = str(tmp_path / "s.h5")
    scan(Walk([images]), out, ScanOptions(**OPTIONS))
    before = rows_by_path(out)
    # A journal holding a newer row for a file already in the store.
    table = read_features(out)
    journal = open_journal_beside(out, table)
    rows = table.rows.take(np.array([0])).replace(status=["unreadable"], error=["changed"])
    journal.append(rows)
    journal.close()
    assert merge(out, journal) == 2
    after = rows_by_path(out)
    assert after[table.path[0]][:2] == ("unreadable", "changed")
    assert after[table.path[1]] == before[table.path[1]]
    # A crash before the journal was retired: the next scan must not apply it again.
    again = scan(Walk([images]), out, ScanOptions(**OPTIONS))
    assert not os.path.exists(journal_path(out))
    assert (again.skipped, again.written, again.store_rows) == (2, 0, 2)
    assert rows_by_path(out) == after


def test_torn_journal_record_is_cut_off(tmp_path):
    images = tmp_path / "images"
    write_jpegs(images, 3)
    out = str(tmp_path / "s.h5")
    scan(Walk([images]), out, ScanOptions(**OPTIONS))
    clean = rows_by_path(out)
    table = read_features(out)
    journal = open_journal_beside(out, table)
    journal.append(table.rows.take(np.array([0, 1])))
    journal.close()
    os.unlink(out)
    with open(journal_path(out), "ab") as handle:  # half a record, as a kill mid-write leaves it
        handle.write(b"SCJ1R" + struct.pack("<II", 500, 0) + b"\0" * 40)
    assert Journal.committed_rows(journal_path(out)) == 2
    scan(Walk([images]), out, ScanOptions(**OPTIONS))
    assert rows_by_path(out) == clean


# --- crash safety: a real `python -m scanner scan`, SIGKILLed with its workers ------------


def scan_command(images, out, *extra):
    return [
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
        "2",
        "--quiet",
        "--strict",  # exit 1 when a file is unusable, as each crash test's broken file is
        *extra,
    ]


def run_scan(images, out, *extra, env=None):
    return subprocess.run(
        scan_command(images, out, *extra),
        env={**os.environ, **(env or {})},
        start_new_session=True,
        capture_output=True,
        timeout=120,
    )


def kill_when(images, out, ready, *extra):
    """Start a scan in its own process group and SIGKILL the group once ready() is true."""
    process = subprocess.Popen(
        scan_command(images, out, *extra), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, "the scan finished before the kill point: " + process.stderr.read().decode()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def crash_images(tmp_path_factory):
    """Enough images that a scan runs for a few seconds, and the store a clean run gives."""
    root = tmp_path_factory.mktemp("crash")
    images = root / "images"
    write_jpegs(images, 900, size=128)
    (images / "part0" / "broken.jpg").write_bytes(b"\xff\xd8\xff truncated")
    result = run_scan(images, root / "clean.h5")
    assert result.returncode == 1, result.stderr.decode()
    clean = rows_by_path(root / "clean.h5")
    assert len(clean) == 901
    return images, clean


def test_kill_right_after_rows_are_reported_written(crash_images, tmp_path):
    images, clean = crash_images
    out = tmp_path / "s.h5"
    result = run_scan(images, out, env={"SCANNER_TEST_KILL_AT": "journal-appended"})
    assert result.returncode == -signal.SIGKILL
    written = Journal.committed_rows(journal_path(str(out)))
    assert 0 < written < len(clean) and not out.exists()
    result = run_scan(images, out)
    assert result.returncode == 1, result.stderr.decode()
    assert rows_by_path(out) == clean
    assert not os.path.exists(journal_path(str(out)))


def test_killed_after_a_checkpoint_then_with_rows_in_the_journal(crash_images, tmp_path):
    """SIGKILLed from outside just after a checkpoint (the partial store holds exactly
    clean rows), then again while rows wait in the journal, then finished."""
    images, clean = crash_images
    out = tmp_path / "s.h5"
    journal = journal_path(str(out))
    every = ("--checkpoint-rows", "200")
    kill_when(images, out, lambda: out.exists(), *every)
    first = rows_by_path(out)
    assert 200 <= len(first) < len(clean) and all(clean[p] == row for p, row in first.items())
    kill_when(images, out, lambda: Journal.committed_rows(journal) >= 1, *every)
    result = run_scan(images, out, *every)
    assert result.returncode == 1, result.stderr.decode()
    assert rows_by_path(out) == clean


@pytest.mark.parametrize("point", ["merge-writing", "merge-replaced"])
def test_kill_during_the_final_merge(crash_images, tmp_path, point):
    images, clean = crash_images
    out = tmp_path / "s.h5"
    result = run_scan(images, out, env={"SCANNER_TEST_KILL_AT": point})
    assert result.returncode == -signal.SIGKILL
    assert os.path.exists(journal_path(str(out)))  # the rows survive in the journal
    if point == "merge-replaced":
        assert rows_by_path(out) == clean  # already merged: the rerun must not add them again
    result = run_scan(images, out)
    assert result.returncode == 1, result.stderr.decode()
    assert rows_by_path(out) == clean
    assert not os.path.exists(f"{out}.tmp")


# --- the command line ----------------------------------------------------------------


def test_cli_scan_export_info(odd_tree, tmp_path):
    root, expected = odd_tree
    out = tmp_path / "s.h5"
    result = runner.invoke(app, ["scan", str(root), "--out", str(out), "--planner", "estimate", "--workers", "1"])
    assert result.exit_code == 0, result.output  # a finished sweep exits 0, whatever it found
    assert f"scanned {len(expected)} files" in result.output and "grayscale" in result.output
    assert "1 worker)" in result.output  # singular
    bad = sorted({status for status, _ in expected.values() if status != "ok"})
    assert "could not be judged; the first:" in result.output
    assert f"list them all: scanner export {out} --status {','.join(bad)} --out problems.csv" in result.output
    shown = [line for line in result.output.splitlines() if line.startswith("  /")]
    assert len(shown) == 5 and all(": " in line and "(" in line for line in shown)
    result = runner.invoke(app, ["scan", str(root), "--out", str(out), "--strict", "--json"])
    assert result.exit_code == 1, result.output  # nothing new, but the store holds unusable files
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["skipped"] == len(expected) and summary["scanned"] == 0 and summary["rows"] == len(expected)
    assert sum(summary["status"].values()) == len(expected) and len(summary["problems"]) == 5

    result = runner.invoke(app, ["export", str(out), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "s.csv", encoding="utf-8", errors="surrogateescape") as handle:
        lines = handle.read().splitlines()
    assert lines[0] == (
        "path,status,error,height,width,format,jpeg_subsampling,jpeg_quality,size,mtime,sha256,declared,"
        "mean,max,min,icorr_rg,icorr_rb,icorr_gb"
    )
    table = read_features(out)
    assert len(lines) == len(table) + 1
    good = table.path.index(str(root / "good.png"))
    fields = next(line for line in lines if line.startswith(f"{root / 'good.png'},")).split(",")
    assert fields[:2] == [str(root / "good.png"), "ok"] and fields[3:6] == ["40", "48", "PNG"]
    assert fields[10] == table.sha256[good] and len(fields[10]) == 64
    assert fields[11] == "" == table.declared[good]  # an image OpenCV wrote declares nothing
    np.testing.assert_array_equal(np.array(fields[12:], float), table.features[good])
    assert any(os.path.isfile(line.split(",")[0]) and "latin1-" in line for line in lines)

    result = runner.invoke(app, ["info", str(out)])
    assert result.exit_code == 0, result.output
    assert f"rows:           {len(expected)}" in result.output
    assert "spectrum:       log" in result.output and f"schema version: {SCHEMA_VERSION}" in result.output
    assert str(root) in result.output and "grayscale" in result.output


def test_cli_usage_and_fatal_errors(tmp_path):
    images = tmp_path / "images"
    write_jpegs(images, 2)
    assert runner.invoke(app, ["scan", "--out", str(tmp_path / "s.h5")]).exit_code == 2
    assert runner.invoke(app, ["scan", str(tmp_path / "missing"), "--out", str(tmp_path / "s.h5")]).exit_code == 2
    assert runner.invoke(app, ["scan", str(images), "--out", str(tmp_path / "no" / "s.h5")]).exit_code == 3
    (tmp_path / "text.h5").write_text("not a store")
    result = runner.invoke(app, ["scan", str(images), "--out", str(tmp_path / "text.h5")])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert runner.invoke(app, ["info", str(tmp_path / "text.h5")]).exit_code == 2
    out = tmp_path / "s.h5"
    assert runner.invoke(app, ["scan", str(images), "--out", str(out), "--planner", "estimate", "-q"]).exit_code == 0
    result = runner.invoke(app, ["scan", str(images), "--out", str(out), "--spectrum", "modulus"])
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_cli_from_list_and_extension_filter(tmp_path):
    images = tmp_path / "images"
    write_jpegs(images, 2)
    odd = images / "photo.data"
    cv2.imwrite(str(tmp_path / "x.png"), natural_image(20, 20, seed=1)[..., ::-1])
    os.replace(tmp_path / "x.png", odd)
    listed = tmp_path / "list.txt"
    listed.write_bytes(bytes(odd) + b"\n" + bytes(tmp_path / "gone.jpg") + b"\n\n")
    out = tmp_path / "s.h5"
    result = runner.invoke(app, ["scan", "--from-list", str(listed), "--out", str(out), "--planner", "estimate"])
    assert result.exit_code == 0, result.output
    assert f"1 file could not be judged:\n  {tmp_path / 'gone.jpg'}: vanished" in result.output
    table = read_features(out)
    assert dict(zip(table.path, table.status, strict=True)) == {str(odd): "ok", str(tmp_path / "gone.jpg"): "vanished"}
    assert table.format[table.path.index(str(odd))] == "PNG"
    # A vanished file is tried again on resume (and a file done is not).
    cv2.imwrite(str(tmp_path / "gone.jpg"), natural_image(24, 24, seed=2)[..., ::-1])
    result = runner.invoke(app, ["scan", "--from-list", str(listed), "--out", str(out), "--planner", "estimate"])
    assert result.exit_code == 0 and "1 already in the store" in result.output, result.output
    table = read_features(out)
    assert dict(zip(table.path, table.status, strict=True)) == {str(odd): "ok", str(tmp_path / "gone.jpg"): "ok"}
    # From a directory, photo.data is found only when the filter takes it.
    out = tmp_path / "t.h5"
    runner.invoke(app, ["scan", str(images), "--out", str(out), "--planner", "estimate"])
    assert len(read_features(out)) == 2
    runner.invoke(app, ["scan", str(images), "--out", str(out), "--planner", "estimate", "--ext", "*"])
    assert len(read_features(out)) == 3


def test_a_worker_killed_mid_scan_is_replaced(crash_images, tmp_path):
    """A worker dying (as on a decoder crash) costs nothing: its files are retried."""
    images, clean = crash_images
    out = tmp_path / "s.h5"
    process = subprocess.Popen(
        scan_command(images, out, "--checkpoint-rows", "200"),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def children(pid):
        try:
            return [
                int(c)
                for task in os.listdir(f"/proc/{pid}/task")
                for c in open(f"/proc/{pid}/task/{task}/children").read().split()
            ]
        except FileNotFoundError:
            return []

    deadline = time.monotonic() + 60
    while not out.exists() and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    server = [c for c in children(process.pid) if b"forkserver" in Path(f"/proc/{c}/cmdline").read_bytes()]
    workers = children(server[0])
    assert process.poll() is None and len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err.decode()
    assert b"warning: a worker process died (exit code -9); its files are tried again one by one" in err
    assert rows_by_path(out) == clean


def test_an_unexpected_error_is_that_files_row(monkeypatch):
    import scanner.features.measure as measure_module

    def broken(*args, **kwargs):
        raise MemoryError("out of memory")

    monkeypatch.setattr(measure_module, "measure_file", broken)
    record = measure_module._measured(b"x.jpg", None, 100, 100, True)
    assert (record.status, record.features, record.info.format) == ("unreadable", None, None)
    assert record.error == "internal error: MemoryError('out of memory')"


def test_workers_failing_at_start_up_blame_no_file(tmp_path):
    images = tmp_path / "images"
    write_jpegs(images, 3)
    with pytest.raises(ScanError, match="keep dying .*at start-up"):
        scan(Walk([images]), tmp_path / "s.h5", ScanOptions(MeasureOptions(planner="no-such-effort"), workers=1))
    assert not (tmp_path / "s.h5").exists()
    assert Journal.committed_rows(journal_path(str(tmp_path / "s.h5"))) == 0


def test_summary_counts_the_rows_and_seconds_once_running(tmp_path):
    """The rate once running leaves out the first result (start-up) and everything after the last one."""
    from scanner.run.executors.inline import InProcess

    write_jpegs(tmp_path / "tree", 20)
    options = ScanOptions(MeasureOptions(planner="estimate"), chunk_files=4)
    summary = scan(Walk([str(tmp_path / "tree")]), tmp_path / "s.h5", options, executor=InProcess)
    assert summary.written == 20
    assert summary.running_rows == 16  # the four rows of the first result are start-up's
    assert 0 < summary.running_seconds <= summary.elapsed
    assert summary.running_images_per_second == pytest.approx(16 / summary.running_seconds)
    again = scan(Walk([str(tmp_path / "tree")]), tmp_path / "s.h5", options, executor=InProcess)
    assert again.written == 0 and again.running_rows == 0 and again.running_images_per_second is None
