import json
import os

import h5py
import numpy as np
import pytest

from scanner import __version__
from scanner.features import FEATURE_NAMES
from scanner.store import (
    SCHEMA_VERSION,
    Rows,
    StoreError,
    iter_rows,
    make_table,
    read_attrs,
    read_features,
    write_table,
)


def sample_table():
    rng = np.random.default_rng(0)
    paths = ["/data/a.jpg", "/data/sub/b\udcff.png", "/elsewhere/c.png", "relative/d.png"]
    return make_table(
        paths,
        rng.random((4, 6)),
        spectrum="modulus",
        status=["ok", "ok", "truncated", "ok"],
        error=["", "", "JPEG data ends early", ""],
        height=[10, 20, 0, 40],
        width=[11, 21, 0, 41],
        format=["JPEG", "PNG", "", "PNG"],
        jpeg_subsampling=["4:2:0", "", "", ""],
        jpeg_quality=[75, 0, 0, 0],
        size=[100, 200, 300, 400],
        mtime=[1.5, 2.5, 3.5, 4.5],
        attrs={"roots": ["/data"], "command": "scan /data"},
    )


def test_round_trip_is_exact(tmp_path):
    table = sample_table()
    write_table(tmp_path / "s.h5", table)
    back = read_features(tmp_path / "s.h5")
    assert len(back) == 4
    assert back.path == table.path
    assert back.status == table.status and back.error == table.error
    np.testing.assert_array_equal(back.features[[0, 1, 3]], table.features[[0, 1, 3]])
    assert np.isnan(back.features[2]).all()
    for name in ("height", "width", "jpeg_quality", "size", "mtime"):
        np.testing.assert_array_equal(getattr(back, name), getattr(table, name))
        assert getattr(back, name).dtype == (np.float64 if name == "mtime" else np.int64)
    assert back.format == table.format and back.jpeg_subsampling == table.jpeg_subsampling
    assert back.spectrum == "modulus"
    assert back.attrs["schema_version"] == SCHEMA_VERSION and back.attrs["tool_version"] == __version__
    assert back.attrs["roots"] == ["", "/data"] and back.attrs["command"] == "scan /data"
    assert not os.path.exists(tmp_path / "s.h5.tmp")


def test_layout_is_plain_h5py(tmp_path):
    write_table(tmp_path / "s.h5", sample_table())
    with h5py.File(tmp_path / "s.h5") as f:
        assert list(f["features"].attrs["columns"]) == list(FEATURE_NAMES)
        roots = json.loads(f.attrs["roots"])
        paths = [os.path.join(os.fsencode(roots[r]), p) for r, p in zip(f["root"][:], f["path"][:])]
    # Non-UTF-8 names are kept byte for byte, relative to their root.
    assert paths == [b"/data/a.jpg", b"/data/sub/b\xff.png", b"/elsewhere/c.png", b"relative/d.png"]


def test_make_table_defaults():
    table = make_table(["x.png", "y.png"], [[1.0] * 6, [2.0] * 6], status=["ok", "grayscale"])
    assert table.error == ["", ""] and table.format == ["", ""]
    np.testing.assert_array_equal(table.features[0], np.ones(6))
    assert np.isnan(table.features[1]).all()
    assert table.height.dtype == np.int64 and table.spectrum == "log"
    assert make_table(["z.png"], None).status == ["ok"]
    with pytest.raises(ValueError):
        make_table(["x.png"], np.zeros((2, 6)))
    with pytest.raises(TypeError):
        make_table(["x.png"], None, colour=["red"])


def test_empty_store(tmp_path):
    write_table(tmp_path / "s.h5", make_table([], None))
    back = read_features(tmp_path / "s.h5")
    assert len(back) == 0 and back.features.shape == (0, 6)
    assert list(iter_rows(tmp_path / "s.h5")) == []


def test_iter_rows_chunks(tmp_path):
    n = 10
    write_table(tmp_path / "s.h5", make_table([f"/r/{i}.png" for i in range(n)], np.arange(60.0).reshape(n, 6)))
    chunks = list(iter_rows(tmp_path / "s.h5", chunk_rows=4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    rows = Rows.concat(chunks)
    assert rows.relpath == [f"/r/{i}.png".encode() for i in range(n)]
    np.testing.assert_array_equal(rows.features, np.arange(60.0).reshape(n, 6))


def test_not_a_store(tmp_path):
    (tmp_path / "notes.h5").write_text("hello")
    with pytest.raises(StoreError, match="not a readable HDF5"):
        read_features(tmp_path / "notes.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(StoreError, match="not a scanner feature store"):
        read_features(tmp_path / "other.h5")
    with pytest.raises(StoreError, match="no such file"):
        read_attrs(tmp_path / "absent.h5")


def test_newer_schema_is_refused(tmp_path):
    write_table(tmp_path / "s.h5", sample_table())
    with h5py.File(tmp_path / "s.h5", "a") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(StoreError, match="newer scanner"):
        read_features(tmp_path / "s.h5")


def test_damaged_store_is_refused(tmp_path):
    write_table(tmp_path / "s.h5", sample_table())
    data = (tmp_path / "s.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError):
        read_features(tmp_path / "cut.h5")
    with h5py.File(tmp_path / "s.h5", "a") as f:
        del f["status"]
    with pytest.raises(StoreError, match="missing status"):
        read_features(tmp_path / "s.h5")
