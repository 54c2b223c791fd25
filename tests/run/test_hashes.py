"""Every scanned file's SHA-256 in the store: taken from the bytes read for decoding, equal to `sha256sum`'s,
whatever executor measured the file; '' for a file that could not be read."""

import os
import shutil

import cv2
import pytest
from helpers import invoke, natural_image, read_csv, sha256sum, write_schema_2_store

from scanner.core.constants import ReadLimits
from scanner.core.schema import make_table
from scanner.io.walk import Walk
from scanner.run.executors.inline import InProcess
from scanner.run.sweep import MeasureOptions, ScanOptions, scan
from scanner.store.hdf5 import read_features

OPTIONS = dict(measure=MeasureOptions(planner="estimate"), limits=ReadLimits(max_bytes=4096))


@pytest.fixture
def tree(tmp_path):
    """Images (one a byte-for-byte copy of another), files that read but do not decode, and files that
    cannot be read at all (a FIFO, a broken link, one over --max-bytes)."""
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(root / f"img{i}.png"), natural_image(24, 28 + i, seed=i)[..., ::-1])
    shutil.copyfile(root / "img0.png", root / "sub" / "copy-of-img0.png")
    (root / "notes.jpg").write_bytes(b"these are not pixels")
    (root / "empty.jpg").write_bytes(b"")
    (root / "huge.png").write_bytes(b"\x89PNG" + bytes(8192))  # over the 4,096-byte cap: never read
    os.mkfifo(root / "pipe.jpg")
    (root / "broken.jpg").symlink_to(root / "nowhere.jpg")
    return root


READ = ("img0.png", "img1.png", "img2.png", "img3.png", "sub/copy-of-img0.png", "notes.jpg", "empty.jpg")
NOT_READ = ("huge.png", "pipe.jpg", "broken.jpg")


def hashes_of(store, root):
    table = read_features(store)
    return {os.path.relpath(p, root): h for p, h in zip(table.path, table.sha256.tolist(), strict=True)}


def expected(root):
    digests = sha256sum(*(root / name for name in READ))
    return {**dict(zip(READ, digests, strict=True)), **dict.fromkeys(NOT_READ, "")}


def test_the_inline_executor_and_the_pool_store_sha256sum_digests(tree, tmp_path):
    want = expected(tree)
    assert want["img0.png"] == want["sub/copy-of-img0.png"] and want["empty.jpg"] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    scan(Walk([tree]), tmp_path / "inline.h5", ScanOptions(**OPTIONS), executor=InProcess)
    assert hashes_of(tmp_path / "inline.h5", tree) == want
    result = invoke("scan", tree, "--out", tmp_path / "pool.h5", "-j", "2", "--max-bytes", "4096", "--quiet")
    assert result.exit_code == 0, result.output
    assert hashes_of(tmp_path / "pool.h5", tree) == want


def test_exports_carry_the_hash_and_info_counts_distinct_contents(tree, tmp_path):
    store = tmp_path / "s.h5"
    scan(Walk([tree]), store, ScanOptions(**OPTIONS), executor=InProcess)
    assert invoke("export", store, "--out", tmp_path / "s.csv").exit_code == 0
    want = expected(tree)
    exported = {os.path.relpath(r["path"], tree): r["sha256"] for r in read_csv(tmp_path / "s.csv")}
    assert exported == want
    info = invoke("info", store)
    assert info.exit_code == 0, info.output
    # Seven files read, six distinct contents: the copy repeats img0.png; three files were not read.
    assert "contents:       7 files hashed, 6 distinct contents (1 file repeats another's bytes)" in info.output
    assert "3 not read" in info.output
    described = invoke("info", store, "--json")
    assert '"hashed": 7' in described.output and '"distinct_contents": 6' in described.output


def test_info_on_a_store_older_than_hashes_says_none_were_hashed(tree, tmp_path):
    store = tmp_path / "s.h5"
    scan(Walk([tree]), store, ScanOptions(**OPTIONS), executor=InProcess)
    table = read_features(store)
    write_schema_2_store(store, make_table(table.path, table.features, size=table.size, mtime=table.mtime))
    info = invoke("info", store)
    assert info.exit_code == 0, info.output
    assert "contents:       no file hashed (the store predates file hashes" in info.output
