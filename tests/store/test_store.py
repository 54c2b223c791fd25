import hashlib
import json
import os

import h5py
import numpy as np
import pytest
from helpers import write_schema_1_store, write_schema_2_store

from scanner.core.errors import StoreError, StoreMismatch
from scanner.core.featuresets import FEATURE_NAMES
from scanner.core.schema import COLUMNS, SCHEMA_VERSION, Measurement, Rows, export_columns_of, make_table
from scanner.core.version import __version__
from scanner.store.hdf5 import column_counts, iter_rows, read_attrs, read_features, read_header, write_table


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
        sha256=[hashlib.sha256(bytes([i])).hexdigest() for i in range(4)],
        declared=["c2pa;iptc:trainedAlgorithmicMedia", "png-text:parameters", "", ""],
        roots=["/data"],
        attrs={"command": "scan /data"},
    )


def test_round_trip_is_exact(tmp_path):
    table = sample_table()
    write_table(tmp_path / "s.h5", table)
    back = read_features(tmp_path / "s.h5")
    assert len(back) == 4
    assert back.path == table.path
    assert list(back.status) == list(table.status) and list(back.error) == list(table.error)
    np.testing.assert_array_equal(back.features[[0, 1, 3]], table.features[[0, 1, 3]])
    assert np.isnan(back.features[2]).all()
    for name in ("height", "width", "jpeg_quality", "size", "mtime"):
        np.testing.assert_array_equal(getattr(back, name), getattr(table, name))
        assert getattr(back, name).dtype == (np.float64 if name == "mtime" else np.int64)
    assert list(back.format) == list(table.format) and list(back.jpeg_subsampling) == list(table.jpeg_subsampling)
    assert back.spectrum == "modulus"
    assert back.attrs["schema_version"] == SCHEMA_VERSION and back.attrs["tool_version"] == __version__
    assert back.attrs["roots"] == ["", "/data"] and back.attrs["command"] == "scan /data"
    assert not os.path.exists(tmp_path / "s.h5.tmp")


def test_layout_is_plain_h5py(tmp_path):
    write_table(tmp_path / "s.h5", sample_table())
    with h5py.File(tmp_path / "s.h5") as f:
        assert list(f["features"].attrs["columns"]) == list(FEATURE_NAMES)
        roots = json.loads(f.attrs["roots"])
        paths = [os.path.join(os.fsencode(roots[r]), p) for r, p in zip(f["root"][:], f["path"][:], strict=True)]
    # Non-UTF-8 names are kept byte for byte, relative to their root.
    assert paths == [b"/data/a.jpg", b"/data/sub/b\xff.png", b"/elsewhere/c.png", b"relative/d.png"]


def test_make_table_defaults():
    table = make_table(["x.png", "y.png"], [[1.0] * 6, [2.0] * 6], status=["ok", "grayscale"])
    assert list(table.error) == ["", ""] and list(table.format) == ["", ""]
    np.testing.assert_array_equal(table.features[0], np.ones(6))
    assert np.isnan(table.features[1]).all()
    assert table.height.dtype == np.int64 and table.spectrum == "log"
    assert list(make_table(["z.png"], None).status) == ["ok"]
    with pytest.raises(ValueError):
        make_table(["x.png"], np.zeros((2, 6)))
    with pytest.raises(ValueError, match="unknown columns: colour"):
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
    assert rows.path.tolist() == [f"/r/{i}.png".encode() for i in range(n)]
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


def test_every_column_of_the_schema_is_a_dataset_and_comes_back(tmp_path):
    write_table(tmp_path / "s.h5", sample_table())
    with h5py.File(tmp_path / "s.h5") as f:
        assert sorted(name for name in f) == sorted(c.name for c in COLUMNS)
        assert f.attrs["feature_set"] == "paper" and f.attrs["precision"] == "single"
    rows = next(iter_rows(tmp_path / "s.h5"))
    for column in COLUMNS:
        assert rows[column.name].dtype == column.dtype, column.name
    assert export_columns_of(Measurement()) == (
        *("path", "status", "error", "height", "width", "format", "jpeg_subsampling", "jpeg_quality", "size", "mtime"),
        "sha256",
        "declared",
        *FEATURE_NAMES,
    )


def test_schema_1_stores_are_read_as_they_are(tmp_path):
    table = sample_table()
    write_schema_1_store(tmp_path / "old.h5", table)
    back = read_features(tmp_path / "old.h5")
    assert back.measurement == Measurement("paper", "modulus", "double")
    assert back.path == table.path
    np.testing.assert_array_equal(back.features, table.features)
    assert read_header(tmp_path / "old.h5").schema_version == 1
    assert back.sha256.tolist() == [""] * len(table)  # older than file hashes: none recorded
    assert back.declared.tolist() == [""] * len(table)


def test_schema_2_stores_read_with_empty_hashes_and_a_current_one_needs_its_column(tmp_path):
    table = sample_table()
    write_schema_2_store(tmp_path / "old.h5", table)
    back = read_features(tmp_path / "old.h5")
    assert back.path == table.path and back.sha256.tolist() == [""] * len(table)
    assert [len(rows) for rows in iter_rows(tmp_path / "old.h5", chunk_rows=2)] == [2] * (len(table) // 2) + (
        [1] if len(table) % 2 else []
    )
    assert column_counts(tmp_path / "old.h5", "sha256") == {"": len(table)}
    assert back.declared.tolist() == [""] * len(table)
    assert column_counts(tmp_path / "old.h5", "declared") == {"": len(table)}
    write_table(tmp_path / "new.h5", table)
    with h5py.File(tmp_path / "new.h5", "a") as f:
        del f["sha256"]
    with pytest.raises(StoreError, match="missing sha256"):
        read_features(tmp_path / "new.h5")


def test_a_schema_3_store_from_before_the_declared_column_reads_it_as_empty(tmp_path):
    """declared joined schema 3 before its release: a schema-3 store of a development build without it reads
    with declared '' (not as damaged); every other column of schema 3 is still required."""
    table = sample_table()
    write_table(tmp_path / "s.h5", table)
    with h5py.File(tmp_path / "s.h5", "a") as f:
        assert f.attrs["schema_version"] == 3
        assert [v.decode() if isinstance(v, bytes) else v for v in f["declared"][:]] == table.declared.tolist()
        del f["declared"]
    back = read_features(tmp_path / "s.h5")
    assert back.declared.tolist() == [""] * len(table) and back.sha256.tolist() == table.sha256.tolist()
    assert column_counts(tmp_path / "s.h5", "declared") == {"": len(table)}


def test_feature_columns_must_be_those_of_the_declared_set(tmp_path):
    write_table(tmp_path / "s.h5", sample_table())
    with h5py.File(tmp_path / "s.h5", "a") as f:
        f["features"].attrs["columns"] = ["a", "b", "c", "d", "e", "f"]
    with pytest.raises(StoreError, match="not those of the paper feature set"):
        read_features(tmp_path / "s.h5")


def test_rows_take_concat_and_replace_keep_every_column():
    rows = Rows.build(3, 6, path=[b"a", b"b", b"c"], size=[1, 2, 3])
    assert rows.status.tolist() == ["ok"] * 3 and np.isnan(rows.features).all()
    picked = Rows.concat([rows.take(np.array([2])), rows.take(np.array([True, False, False]))])
    assert picked.path.tolist() == [b"c", b"a"] and picked.size.tolist() == [3, 1]
    assert rows.replace(status=["vanished"] * 3).status.tolist() == ["vanished"] * 3
    with pytest.raises(ValueError, match="3 values for 2 rows"):
        Rows.build(2, 6, path=[b"a", b"b"], size=[1, 2, 3])


def eight_rows():
    rng = np.random.default_rng(1)
    return make_table([f"/data/{i}.jpg" for i in range(8)], rng.random((8, 6)), roots=["/data"])


def test_a_small_store_is_small_and_compressed(tmp_path):
    write_table(tmp_path / "s.h5", eight_rows())
    assert os.path.getsize(tmp_path / "s.h5") < 100_000  # fixed 16,384-row chunks made it 2.85 MB
    with h5py.File(tmp_path / "s.h5") as f:
        for column in COLUMNS:
            dataset = f[column.name]
            assert dataset.chunks[0] == 8 and dataset.compression == "gzip", column.name
            assert dataset.shuffle == (not column.variable), column.name


def test_chunks_never_exceed_the_chunk_size(tmp_path):
    from scanner.store.hdf5 import CHUNK_ROWS, LAYOUT

    assert LAYOUT.chunks(None) == LAYOUT.chunks(10**7) == CHUNK_ROWS
    assert LAYOUT.chunks(0) == 1 and LAYOUT.chunks(100) == 100


def test_stores_of_the_old_layout_read_the_same(tmp_path):
    """Stores written before compression (16,384-row chunks, no filter) read back exactly as new ones."""
    from scanner.store.hdf5 import UNCOMPRESSED, StoreWriter, store_attrs

    table = sample_table()
    writer = StoreWriter(tmp_path / "old.h5", store_attrs(table.measurement, "scan", table.roots), None, UNCOMPRESSED)
    writer.append(table.rows)
    writer.commit()
    write_table(tmp_path / "new.h5", table)
    with h5py.File(tmp_path / "old.h5") as f:
        assert f["features"].chunks == (16384, 6) and f["features"].compression is None
    old, new = read_features(tmp_path / "old.h5"), read_features(tmp_path / "new.h5")
    assert old.path == new.path
    for column in COLUMNS:
        a, b = old.rows[column.name], new.rows[column.name]
        assert a.dtype == b.dtype and len(a) == len(b), column.name
        np.testing.assert_array_equal(np.where(a == a, a, 0), np.where(b == b, b, 0))
    assert [len(r) for r in iter_rows(tmp_path / "old.h5", 3)] == [3, 1]


def test_records_of_an_older_layout_read_with_the_newer_columns_at_their_defaults():
    """A journal or part file written before file hashes names a layout without sha256: its rows read back
    whole, with sha256 ''."""
    from scanner.store.records import LAYOUT, decode_rows, encode_rows

    rows = sample_table().rows
    assert "sha256" in LAYOUT
    older = tuple(name for name in LAYOUT if name not in ("sha256", "declared"))
    back = decode_rows(encode_rows(rows, older), rows.n_features, older)
    assert back.sha256.tolist() == [""] * len(rows) and back.declared.tolist() == [""] * len(rows)
    assert back.path.tolist() == rows.path.tolist() and back.error.tolist() == rows.error.tolist()
    np.testing.assert_array_equal(back.features, rows.features)
    assert decode_rows(encode_rows(rows), rows.n_features).sha256.tolist() == rows.sha256.tolist()
    assert decode_rows(encode_rows(rows), rows.n_features).declared.tolist() == rows.declared.tolist()


def test_a_part_file_from_before_hashes_merges_with_empty_hashes(tmp_path):
    """A stopped distributed scan of the previous schema left a part file: it is merged (not refused), its rows
    with sha256 ''."""
    from scanner.store.merge import open_parts
    from scanner.store.parts import part_file, write_part
    from scanner.store.records import HEADER_RECORD, LAYOUT, ROWS_RECORD, encode_record, encode_rows

    table = sample_table()
    directory = tmp_path / "s.h5.parts"
    directory.mkdir()
    path = part_file(str(directory), "a" * 32)
    header = write_part(path, table.rows, table.measurement, table.roots, "a" * 32)
    older = [name for name in LAYOUT if name not in ("sha256", "declared")]
    header.update(schema_version=2, layout=older)
    with open(path, "wb") as handle:
        handle.write(encode_record(HEADER_RECORD, json.dumps(header).encode()))
        handle.write(encode_record(ROWS_RECORD, encode_rows(table.rows, older)))
    (part,) = open_parts(str(directory), table.measurement)
    (rows,) = part.batches()
    assert rows.path.tolist() == table.rows.path.tolist() and rows.sha256.tolist() == [""] * len(table)
    header.update(schema_version=1)
    with open(path, "wb") as handle:
        handle.write(encode_record(HEADER_RECORD, json.dumps(header).encode()))
        handle.write(encode_record(ROWS_RECORD, encode_rows(table.rows, older)))
    with pytest.raises(StoreMismatch, match="another store schema"):
        open_parts(str(directory), table.measurement)
