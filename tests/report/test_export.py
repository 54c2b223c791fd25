"""`scanner export`: CSV, JSON lines and Parquet of every column, joined with verdicts, filtered by status;
FeatureTable.to_arrow and to_pandas."""

import csv
import hashlib
import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.core.schema import SCHEMA_VERSION, export_columns_of, make_table
from scanner.store.hdf5 import read_features, write_table

runner = CliRunner()
NON_UTF8 = "/data/b\udcff.png"  # a file name whose bytes are not UTF-8


@pytest.fixture()
def store(tmp_path):
    rng = np.random.default_rng(4)
    paths = ["/data/a.jpg", NON_UTF8, "/data/sub/c.png", '/elsewhere/d,"quoted".png', "/data/e.jpg"]
    table = make_table(
        paths,
        rng.random((5, 6)) / 10,
        status=["ok", "ok", "truncated", "ok", "not_image"],
        error=["", "", "PNG data ends early", "", "not an image"],
        height=[10, 20, 30, 40, 0],
        width=[11, 21, 31, 41, 0],
        format=["JPEG", "PNG", "PNG", "PNG", ""],
        jpeg_subsampling=["4:2:0", "", "", "", ""],
        jpeg_quality=[75, 0, 0, 0, 0],
        size=[100, 200, 300, 400, 5],
        mtime=[1.5e9 + 0.25, 2.5, 3.5, 4.5, 5.5],
        sha256=[hashlib.sha256(bytes([i])).hexdigest() for i in range(4)] + [""],
        declared=["c2pa;exif-software:Midjourney", "", "png-text:parameters", "", ""],
        roots=["/data"],
    )
    write_table(tmp_path / "s.h5", table)
    return tmp_path / "s.h5", read_features(tmp_path / "s.h5")


# Sorted by root ('' first: files named directly), then by relative path.
SORTED = ['/elsewhere/d,"quoted".png', "/data/a.jpg", NON_UTF8, "/data/e.jpg", "/data/sub/c.png"]


def export(*args):
    return runner.invoke(app, ["export", *map(str, args)])


def read_csv(path):
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        return list(csv.DictReader(handle))


def test_csv_has_every_column_exactly(store, tmp_path):
    path, table = store
    result = export(path, "--out", tmp_path / "s.csv")
    assert result.exit_code == 0 and f"wrote 5 rows to {tmp_path / 's.csv'}" in result.output
    rows = read_csv(tmp_path / "s.csv")
    assert list(rows[0]) == list(export_columns_of(table.measurement))
    assert [r["path"] for r in rows] == SORTED  # the non-UTF-8 name comes back byte for byte
    for row in rows:
        i = table.path.index(row["path"])
        for name in ("height", "width", "jpeg_quality", "size"):
            value = table.rows[name][i]
            assert (row[name] == "") if value == 0 and name != "size" else (int(row[name]) == value)
        assert float(row["mtime"]) == table.mtime[i]
        assert row["jpeg_subsampling"] == table.jpeg_subsampling[i] and row["format"] == table.format[i]
        assert row["sha256"] == table.sha256[i] and row["error"] == table.error[i]
        assert row["declared"] == table.declared[i]
        for k, name in enumerate(table.feature_names):
            value = table.features[i, k]
            assert (row[name] == "") if math.isnan(value) else (float(row[name]) == value)


def test_parquet_reads_back_as_the_csv(store, tmp_path):
    path, table = store
    assert export(path, "--out", tmp_path / "s.csv").exit_code == 0
    result = export(path, "--out", tmp_path / "s.parquet")
    assert result.exit_code == 0 and "wrote 5 rows" in result.output
    parquet = pq.read_table(tmp_path / "s.parquet")
    assert parquet.column_names == list(export_columns_of(table.measurement))
    assert str(parquet.schema.field("height").type) == "int64" and str(parquet.schema.field("mean").type) == "double"
    as_csv = read_csv(tmp_path / "s.csv")
    for row, record in zip(as_csv, parquet.to_pylist(), strict=True):
        for name, text in row.items():
            value = record[name]
            if name == "path" and text == NON_UTF8:
                assert value == "/data/b\\xff.png"  # Arrow strings are UTF-8: the odd byte as an escape
            elif value is None:
                assert text == ""  # NaN: empty in CSV, null in Parquet
            elif name == "mtime":
                assert abs(value - datetime.fromtimestamp(float(text), UTC)) <= timedelta(microseconds=1)
            elif isinstance(value, float):
                assert float(text) == value
            else:
                assert str(value) == text
    assert parquet.schema.metadata[b"scanner.measurement"] == b"paper features, log spectrum, single precision"


def test_jsonl_with_verdicts_and_a_status_filter(store, tmp_path):
    path, table = store
    with open(tmp_path / "v.csv", "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "status", "verdict", "score", "threshold", "probability"])
        writer.writerow(["/data/a.jpg", "ok", "fake", "0.75", "0.5", "0.9"])
        writer.writerow([NON_UTF8, "ok", "real", "-1.5", "0.5", ""])
    result = export(path, "--out", "-", "--format", "jsonl", "--verdicts", tmp_path / "v.csv", "--status", "ok")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert "wrote 3 rows to standard output" in result.stderr
    assert [r["path"] for r in records] == ['/elsewhere/d,"quoted".png', "/data/a.jpg", NON_UTF8]
    assert (records[1]["verdict"], records[1]["score"], records[1]["threshold"], records[1]["probability"]) == (
        "fake",
        0.75,
        0.5,
        0.9,
    )
    assert records[2]["probability"] is None and records[0]["verdict"] is None and records[0]["score"] is None
    problems = export(path, "--out", tmp_path / "p.csv", "--status", "truncated,not_image")
    assert problems.exit_code == 0 and [r["status"] for r in read_csv(tmp_path / "p.csv")] == ["not_image", "truncated"]
    as_stored = export(path, "--out", tmp_path / "q.csv", "--status", "truncated,not_image", "--store-order")
    assert as_stored.exit_code == 0 and [r["path"] for r in read_csv(tmp_path / "q.csv")] == [
        "/data/sub/c.png",
        "/data/e.jpg",
    ]


def test_export_refusals(store, tmp_path):
    path, _ = store
    result = export(path, "--out", tmp_path / "x.csv", "--status", "ok,broken")
    assert result.exit_code == 2 and "unknown status broken" in result.output
    assert export(path, "--out", tmp_path / "x.csv", "--format", "xlsx").exit_code == 2
    (tmp_path / "bad.csv").write_text("name,what\na,b\n")
    result = export(path, "--out", tmp_path / "x.csv", "--verdicts", tmp_path / "bad.csv")
    assert result.exit_code == 2 and "path,verdict" in result.output
    assert not (tmp_path / "x.csv").exists()
    empty = export(path, "--out", tmp_path / "none.parquet", "--status", "grayscale")
    assert empty.exit_code == 0 and pq.read_table(tmp_path / "none.parquet").num_rows == 0


def test_to_arrow_and_to_pandas(store):
    _, table = store
    arrow = table.to_arrow()
    assert arrow.column_names == list(export_columns_of(table.measurement)) and arrow.num_rows == 5
    assert arrow.column("mean").null_count == 2  # the two rows that are not ok
    # The store's sentinels of unknown (0, '') are nulls, as in `scanner export`'s Parquet; types stay.
    assert arrow.column("jpeg_quality").to_pylist() == [75, None, None, None, None]
    assert str(arrow.column("jpeg_quality").type) == "int64" and str(arrow.column("error").type) == "string"
    errors, statuses = arrow.column("error").to_pylist(), arrow.column("status").to_pylist()
    assert [e is None for e in errors] == [s == "ok" for s in statuses]
    frame = table.to_pandas()
    assert list(frame.columns) == arrow.column_names and list(frame["path"]) == table.path
    np.testing.assert_array_equal(frame[list(table.feature_names)].to_numpy(), table.features)
    assert frame["jpeg_quality"].tolist() == [75, 0, 0, 0, 0]


def test_info_json(store):
    path, table = store
    result = runner.invoke(app, ["info", str(path), "--json"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.stdout)
    assert described["rows"] == 5 and described["status"] == {"not_image": 1, "ok": 3, "truncated": 1}
    assert described["feature_names"] == list(table.feature_names) and described["spectrum"] == "log"
    assert described["formats"] == {"": 1, "JPEG": 1, "PNG": 3} and described["roots"] == ["", "/data"]
    assert described["rows_per_root"] == [1, 4]  # /elsewhere/d,"quoted".png named directly; 4 under /data
    text = runner.invoke(app, ["info", str(path)])
    roots_line = next(line for line in text.output.splitlines() if line.startswith("roots:"))
    assert roots_line.split(None, 1)[1] == "'' (files named directly: absolute paths; 1 row), '/data' (4 rows)"
    assert described["unfinished_journal"] is False and described["schema_version"] == SCHEMA_VERSION


def test_info_leaves_out_the_root_of_files_named_directly_when_none_was(tmp_path):
    """A scan of one directory: its store's roots attribute still starts with '' (index 0 is kept for files
    named directly), and info showed it as if some were; now the roots that hold rows, with their counts."""
    table = make_table(["/data/a.png", "/data/b.png"], roots=["/data"])
    write_table(tmp_path / "s.h5", table)
    result = runner.invoke(app, ["info", str(tmp_path / "s.h5")])
    assert result.exit_code == 0, result.output
    assert "roots:          '/data' (2 rows)\n" in result.output


def test_missing_values_are_nulls_in_every_format(store, tmp_path):
    """The store's sentinels of a missing value (0, '', NaN) go out as nulls: an empty field in CSV, null in
    JSON lines and Parquet; Parquet's mtime is a UTC timestamp."""
    path, table = store
    for suffix in ("csv", "jsonl", "parquet"):
        assert export(path, "--out", tmp_path / f"s.{suffix}").exit_code == 0
    as_csv = read_csv(tmp_path / "s.csv")
    with open(tmp_path / "s.jsonl", encoding="utf-8") as handle:
        as_json = [json.loads(line) for line in handle]
    parquet = pq.read_table(tmp_path / "s.parquet")
    as_parquet = parquet.to_pylist()
    assert [r["path"] for r in as_json] == SORTED and len(as_parquet) == len(as_csv) == 5
    ok_jpeg, png, not_image = ("/data/a.jpg", "/data/sub/c.png", "/data/e.jpg")
    for rows, null in ((as_csv, ""), (as_json, None), (as_parquet, None)):
        by_path = {r["path"].replace("\\xff", "\udcff"): r for r in rows}
        assert by_path[ok_jpeg]["error"] is null and by_path[ok_jpeg]["jpeg_quality"] in (75, "75")
        assert by_path[png]["jpeg_quality"] is null and by_path[png]["jpeg_subsampling"] is null
        assert by_path[png]["error"] == "PNG data ends early"
        assert by_path[png]["mean"] is null  # a feature of a row that is not ok
        gone = by_path[not_image]
        assert gone["width"] is null and gone["height"] is null and gone["format"] is null and gone["sha256"] is null
        assert gone["size"] in (5, "5")  # an empty file's size 0 would be a value, not a missing one
        assert by_path[ok_jpeg]["sha256"] == hashlib.sha256(bytes([0])).hexdigest()
        assert by_path[ok_jpeg]["declared"] == "c2pa;exif-software:Midjourney" and gone["declared"] is null
        assert by_path[png]["declared"] == "png-text:parameters"  # kept on a row that is not ok
    assert {type(r["error"]) for r in as_json} == {str, type(None)}  # text or null, never '' for ok rows
    assert str(parquet.schema.field("mtime").type) == "timestamp[us, tz=UTC]"
    assert str(parquet.schema.field("jpeg_quality").type) == "int64" and parquet.column("jpeg_quality").null_count == 4
    first = next(r for r in as_parquet if r["path"] == ok_jpeg)["mtime"]
    assert first == datetime(2017, 7, 14, 2, 40, 0, 250000, tzinfo=UTC)  # 1.5e9 + 0.25 seconds


def test_json_lines_write_null_for_nan_and_infinity():
    """JSON has no NaN or infinity: json.dumps(allow_nan=False) raised on an infinite feature (a traceback
    from export and classify); every non-finite value is null now, as NaN was."""
    import io

    from scanner.report.export import write_jsonl

    handle = io.StringIO()
    columns = {"path": np.array(["a", "b", "c"], dtype=object), "mean": np.array([np.inf, -np.inf, 0.5])}
    assert write_jsonl(handle, ["path", "mean"], [columns]) == 3
    rows = [json.loads(line) for line in handle.getvalue().splitlines()]
    assert [row["mean"] for row in rows] == [None, None, 0.5]
