"""Rows that should clear do: `scan --retry STATUSES` re-measures them, and a scan never takes the
store's own files (the store, its journal, lock, part files and temporaries) as files to scan."""

import json
import os

import cv2
import numpy as np
from helpers import natural_image
from hostile import scanner, text

from scanner.store.hdf5 import read_features

SCAN = ("--planner", "estimate", "-j", "1")


def jpeg_bytes(seed=0, size=64):
    image = natural_image(size, size, seed=seed)[..., ::-1]
    return cv2.imencode(".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def scan_json(*args):
    result = scanner("scan", *args, *SCAN, "--json")
    assert result.returncode in (0, 1), text(result)
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def statuses(store):
    table = read_features(store)
    assert len(set(table.path)) == len(table.path), "duplicate rows"
    return dict(zip((os.path.basename(p) for p in table.path), table.status, strict=True))


def restore(path, data, stat):
    """Write `data` to `path` and give it back the size and mtime it had (`stat`)."""
    assert len(data) == stat.st_size
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_truncated_file_put_right_is_measured_again_with_retry_truncated(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    good = jpeg_bytes()
    damaged = good[: len(good) // 2] + bytes(len(good) - len(good) // 2)  # the same size, its end lost
    (photos / "a.jpg").write_bytes(damaged)
    (photos / "b.jpg").write_bytes(jpeg_bytes(seed=1))
    out = tmp_path / "s.h5"
    scan_json(photos, "--out", out)
    assert statuses(out) == {"a.jpg": "truncated", "b.jpg": "ok"}
    restore(photos / "a.jpg", good, os.stat(photos / "a.jpg"))  # put right: same size, same mtime
    again = scan_json(photos, "--out", out)
    assert again["scanned"] == 0 and statuses(out)["a.jpg"] == "truncated"  # the file counts as done
    retried = scan_json(photos, "--out", out, "--retry", "truncated")
    assert retried["scanned"] == 1 and retried["skipped"] == 1, retried
    assert statuses(out) == {"a.jpg": "ok", "b.jpg": "ok"}


def test_retry_all_measures_every_row_that_is_not_ok_once(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        (photos / f"ok{i}.jpg").write_bytes(jpeg_bytes(seed=i))
    good = jpeg_bytes(seed=9)
    (photos / "cut.jpg").write_bytes(good[: len(good) // 2])
    (photos / "notes.jpg").write_bytes(b"these are not pixels")
    (photos / "empty.jpg").write_bytes(b"")
    cv2.imwrite(str(photos / "dot.png"), np.zeros((1, 1, 3), np.uint8))
    out = tmp_path / "s.h5"
    first = scan_json(photos, "--out", out)
    bad = {name for name, status in statuses(out).items() if status != "ok"}
    assert first["scanned"] == 7 and len(bad) == 4, statuses(out)
    retried = scan_json(photos, "--out", out, "--retry", "all")
    assert retried["scanned"] == len(bad) and retried["skipped"] == 3, retried
    assert retried["rows"] == 7 and len(statuses(out)) == 7
    some = scan_json(photos, "--out", out, "--retry", "not_image,too_small")
    assert some["scanned"] == 2, some


def test_retry_refuses_a_status_it_does_not_know(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    result = scanner("scan", photos, "--out", tmp_path / "s.h5", *SCAN, "--retry", "truncatd")
    assert result.returncode == 2, text(result)
    assert "truncatd" in result.stderr.decode()
    assert not (tmp_path / "s.h5").exists()


def test_a_scan_of_every_file_never_takes_the_store_s_own_files(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(jpeg_bytes())
    out = photos / "s.h5"
    (photos / ".s.h5.scanner-tmp.1@elsewhere").write_bytes(b"x")  # another machine's temporary
    (photos / "s.h5.tmp").write_bytes(b"x")
    scan_json(photos, "--out", out, "--ext", "*")
    (photos / "s.h5.lock").write_bytes(b"")  # as a killed scan leaves them
    (photos / "s.h5.journal").write_bytes(b"")
    again = scan_json(photos, "--out", out, "--ext", "*")
    names = set(statuses(out))
    assert names == {"a.jpg"}, names
    assert again["rows"] == 1


def test_a_directory_that_lists_again_loses_its_permission_row_and_its_files_get_rows(tmp_path):
    """A directory that could not be listed has a row of its own; once it lists, no scan writes that row
    again, so the resuming scan drops it (as root no directory is unreadable: the row is crafted)."""
    from scanner.core.schema import make_table
    from scanner.store.hdf5 import write_table

    root = tmp_path / "tree"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "a.jpg").write_bytes(jpeg_bytes(1))
    (root / "b.jpg").write_bytes(jpeg_bytes(2))
    outside = tmp_path / "elsewhere"  # a directory row outside the scan's roots is not this scan's to clear
    outside.mkdir()
    store = tmp_path / "s.h5"
    paths = [str(root / "locked"), str(outside)]
    error = ["permission denied: cannot list the directory"] * 2
    old = make_table(paths, np.full((2, 6), np.nan), status=["permission"] * 2, error=error, roots=[str(tmp_path)])
    write_table(store, old)
    assert scan_json(str(root), "--out", str(store))["scanned"] == 2
    table = read_features(store)
    assert dict(zip(table.path, table.status, strict=True)) == {
        str(root / "locked" / "a.jpg"): "ok",
        str(root / "b.jpg"): "ok",
        str(outside): "permission",
    }
