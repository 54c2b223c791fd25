"""Crafted feature stores and models: nothing is read from outside the file, nothing hangs, no traceback.

Each hostile file is built here with h5py, then every command that reads it runs
in a subprocess with a timeout and a memory limit (tests/hostile.py): it must end
with the documented one-line message and exit code 2.
"""

import os
import shutil
import zlib

import h5py
import numpy as np
import pytest
from hostile import assert_message, scanner, scanner_batch, text

from scanner.core.errors import ModelError, StoreError
from scanner.core.schema import make_table
from scanner.detect.model import bundled_model_path, load_model
from scanner.store.hdf5 import read_features, read_header, write_table

SECRET = b"secret-content-of-another-file-0123456789" * 4


def good_store(path):
    rng = np.random.default_rng(0)
    table = make_table(
        [f"/data/{i}.jpg" for i in range(40)],
        rng.random((40, 6)),
        format=["JPEG"] * 40,
        size=list(range(40)),
        mtime=[1.0] * 40,
        roots=["/data"],
    )
    write_table(path, table)
    return path


def rebuilt(path, change):
    """A copy of the good store with `change(f)` applied to it (h5py, file opened for writing)."""
    with h5py.File(path, "a") as f:
        change(f)
    return path


def replace_dataset(f, name, **create):
    attrs = dict(f[name].attrs)
    del f[name]
    dataset = f.create_dataset(name, **create)
    for key, value in attrs.items():
        dataset.attrs[key] = value


def _external_link(f, tmp):
    del f["features"]
    f["features"] = h5py.ExternalLink(str(tmp / "other.h5"), "/features")


def _external_link_to_fifo(f, tmp):
    del f["status"]
    f["status"] = h5py.ExternalLink(str(tmp / "fifo.h5"), "/status")


def _external_storage(f, tmp):
    replace_dataset(f, "features", shape=(40, 6), dtype="<f8", external=[(str(tmp / "secret.txt"), 0, 40 * 6 * 8)])


def _virtual(f, tmp):
    layout = h5py.VirtualLayout(shape=(40, 6), dtype="f8")
    layout[:] = h5py.VirtualSource(str(tmp / "other.h5"), "features", shape=(40, 6))
    attrs = dict(f["features"].attrs)
    del f["features"]
    f.create_virtual_dataset("features", layout, fillvalue=np.nan)
    for key, value in attrs.items():
        f["features"].attrs[key] = value


def _soft_loop(f, tmp):
    del f["features"]
    f["a"] = h5py.SoftLink("/b")
    f["b"] = h5py.SoftLink("/a")
    f["features"] = h5py.SoftLink("/a")


def _declared_rows(f, tmp):
    for column in list(f):
        dtype, shape = f[column].dtype, f[column].shape
        replace_dataset(f, column, shape=(1 << 40, *shape[1:]), dtype=dtype, chunks=(1 << 14, *shape[1:]))


def _declared_rows_contiguous(f, tmp):
    replace_dataset(f, "size", shape=(1 << 25,), dtype="<i8")  # never written: no storage at all


def _gigabyte_chunk(f, tmp):  # 40 rows in a 1 MB file, but HDF5 would hold a 1 GB chunk to read them
    replace_dataset(f, "size", data=np.arange(40), maxshape=(None,), chunks=(1 << 27,), compression="gzip")


def _unknown_filter(f, tmp):
    replace_dataset(f, "size", data=np.arange(40), chunks=(40,), compression=32001, allow_unknown_filter=True)


def _wrong_type_column(f, tmp):
    replace_dataset(f, "status", data=np.arange(40))


def _features_of_three(f, tmp):
    replace_dataset(f, "features", data=np.zeros((40, 3)))


def _wrong_type_attribute(f, tmp):
    f.attrs["schema_version"] = "abc"


def _roots_not_text(f, tmp):
    f.attrs["roots"] = np.arange(3)


def _reference_attribute(f, tmp):
    f.attrs["command"] = f["size"].ref


def _root_past_roots(f, tmp):
    f["root"][5] = 7  # the store has 2 roots ('' and /data)


def _root_negative(f, tmp):
    f["root"][3] = -1


def _root_wrapping(f, tmp):
    replace_dataset(f, "root", data=np.full(40, (1 << 32) + 1, np.int64))  # 1 once cut to 32 bits


def _many_attributes(f, tmp):
    for i in range(5000):
        f.attrs[f"x{i}"] = i


def _unknown_status(f, tmp):
    f["status"][2] = "bogus"


def _feature_names_of_seven(f, tmp):
    f["features"].attrs["columns"] = [*f["features"].attrs["columns"], "extra"]


STORES = {
    "external link": (_external_link, "external link"),
    "external link to a FIFO": (_external_link_to_fifo, "external link"),
    "external raw storage": (_external_storage, "external files"),
    "virtual dataset": (_virtual, "virtual dataset"),
    "soft-link loop": (_soft_loop, "soft link"),
    "2^40 declared rows": (_declared_rows, "holds the data of fewer"),
    "2^25 rows never written": (_declared_rows_contiguous, "declares 33,554,432 rows"),
    "a 1 GB chunk": (_gigabyte_chunk, "/size has chunks of 1,073,741,824 bytes"),
    "unknown filter (a plugin)": (_unknown_filter, "filter 32001"),
    "status of integers": (_wrong_type_column, "/status holds integers, not text"),
    "features of 3 columns": (_features_of_three, "features has 3 columns"),
    "schema_version 'abc'": (_wrong_type_attribute, "schema_version 'abc'"),
    "roots of integers": (_roots_not_text, "attribute roots is not text"),
    "an attribute that is a reference": (_reference_attribute, "attribute command holds references"),
    "root index past the roots": (_root_past_roots, "root index 7, and it has 2 roots"),
    "negative root index": (_root_negative, "root index -1, and it has 2 roots"),
    "root index of 2^32 + 1": (_root_wrapping, "root index 4294967297, and it has 2 roots"),
    "5,000 attributes": (_many_attributes, "the file has 5,011 attributes"),
    "unknown status": (_unknown_status, "unknown status 'bogus'"),
    "7 feature names for 6 columns": (_feature_names_of_seven, "are not those of the paper feature set"),
}
INDEXES = ("root index past the roots", "negative root index", "root index of 2^32 + 1", "unknown status")


@pytest.fixture
def outside(tmp_path):
    (tmp_path / "secret.txt").write_bytes(SECRET * 10)
    good_store(tmp_path / "other.h5")
    os.mkfifo(tmp_path / "fifo.h5")
    return tmp_path


@pytest.mark.parametrize("name", list(STORES))
def test_crafted_store_is_refused_by_the_opener(outside, tmp_path, name):
    change, needle = STORES[name]
    store = rebuilt(good_store(tmp_path / "crafted.h5"), lambda f: change(f, outside))
    with pytest.raises(StoreError, match=needle):
        read_features(store)


def test_crafted_stores_are_refused_by_every_command(outside, tmp_path):
    """info, export, report and classify on every crafted store, in one subprocess (timeout, memory limit)."""
    commands, needles = [], []
    for i, (change, needle) in enumerate(STORES.values()):
        store = rebuilt(good_store(tmp_path / f"crafted{i}.h5"), lambda f, c=change: c(f, outside))
        for command in (
            ["info", store],
            ["export", store, "--out", tmp_path / "out.csv"],
            ["report", store, "--out", tmp_path / "r.html"],
            ["classify", store, "--out", tmp_path / "v.csv"],
        ):
            commands.append(command)
            needles.append(needle)
    results = scanner_batch(commands, timeout=300)
    for result, needle in zip(results, needles, strict=True):
        assert_message(result, 2, needle)
    assert not any((tmp_path / name).exists() for name in ("out.csv", "r.html", "v.csv"))
    assert SECRET[:20] not in b"".join(r.stdout + r.stderr for r in results)


def test_scan_resuming_a_crafted_store_says_what_to_do(outside, tmp_path):
    store = rebuilt(good_store(tmp_path / "crafted.h5"), lambda f: _external_storage(f, outside))
    (tmp_path / "images").mkdir()
    result = scanner("scan", tmp_path / "images", "--out", store, "--planner", "estimate", timeout=120)
    assert_message(result, 2, "external files", "--overwrite")


def test_stores_with_bad_indexes_are_refused_by_merge_and_a_resumed_scan(outside, tmp_path):
    """The rows' references into the store (root indexes, statuses) are checked as they are read: merge
    blames the input, not its output, and a resumed scan names the store; exit 2, one line, no traceback."""
    (tmp_path / "images").mkdir()
    good = good_store(tmp_path / "good.h5")
    commands, needles = [], []
    for i, name in enumerate(INDEXES):
        change, needle = STORES[name]
        store = rebuilt(good_store(tmp_path / f"crafted{i}.h5"), lambda f, c=change: c(f, outside))
        commands += [
            ["merge", good, store, "--out", tmp_path / "merged.h5"],
            ["scan", tmp_path / "images", "--out", store, "--planner", "estimate"],
        ]
        needles += [(str(store), needle)] * 2
    results = scanner_batch(commands, timeout=300)
    for result, needle in zip(results, needles, strict=True):
        err = assert_message(result, 2, *needle)
        assert "cannot write" not in err
    assert not (tmp_path / "merged.h5").exists()


def test_a_bad_root_index_in_a_later_chunk_is_refused_by_a_chunked_read(tmp_path):
    from scanner.store.hdf5 import iter_rows

    store = rebuilt(good_store(tmp_path / "s.h5"), lambda f: f["root"].__setitem__(39, 9))
    chunks = iter_rows(store, chunk_rows=16)
    assert len(next(chunks)) == 16
    with pytest.raises(StoreError, match="row 40 holds root index 9, and it has 2 roots"):
        list(chunks)


def _rows_naming_one_string(path, rows, length, compression=None):
    """A store of `rows` rows whose path column's descriptors all name one heap object of `length`
    bytes: the file stays small, the text it makes HDF5 copy is rows x length."""
    rng = np.random.default_rng(0)
    write_table(path, make_table([f"/d/{i}" for i in range(rows)], rng.random((rows, 6)), roots=["/d"]))
    with h5py.File(path, "a") as f:
        values = np.array(["P" * length] + [""] * (rows - 1), dtype=object)
        replace_dataset(f, "path", data=values, dtype=h5py.string_dtype(), chunks=(rows,), compression=compression)
        _, raw = f["path"].id.read_direct_chunk((0,))
        raw = zlib.compress(zlib.decompress(raw)[:16] * rows) if compression else raw[:16] * rows
        f["path"].id.write_direct_chunk((0,), raw)
    return path


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_text_rows_that_all_name_one_large_string_are_refused_before_they_are_read(tmp_path, compression):
    """4,096 rows naming one 2 MB string: HDF5 copied it for each row of a slice before its length
    could be counted (8 GB). The lengths are read from the rows' descriptors first."""
    store = _rows_naming_one_string(tmp_path / "heap.h5", 4096, 1 << 21, compression)
    assert store.stat().st_size < 3 << 20
    with h5py.File(store) as f:  # the crafted file is what it says: every row the same 2 MB
        assert len(f["path"][4095]) == 1 << 21
    for command in (["export", store, "--out", tmp_path / "out.csv"], ["classify", store, "--out", tmp_path / "v.csv"]):
        assert_message(scanner(*command, timeout=120, memory_gib=1.5), 2, "/path holds more text than the file could")
    with pytest.raises(StoreError, match="more text than the file could"):
        read_features(_rows_naming_one_string(tmp_path / "small.h5", 64, 1 << 20, compression))


def test_a_shuffle_filter_written_by_hand_cannot_hide_the_text_rows_name(tmp_path):
    """HDF5 skips shuffle on text (its chunks' mask says so); a pipeline rewritten to apply it with an
    element size of 1 leaves the bytes as they are, and the count unshuffled them by 16: it read the
    lengths of empty rows while the rest named one large string (1.27 GB for a 1.1 MB file)."""
    rows, length = 4096, 500_000
    store = tmp_path / "shuffled.h5"
    write_table(store, make_table([f"/d/{i}" for i in range(rows)], np.zeros((rows, 6)), roots=["/d"]))
    with h5py.File(store, "a", libver=("earliest", "latest")) as f:
        big = f.create_dataset("big", data=np.array(["B" * length], dtype=object), dtype=h5py.string_dtype())
        f.flush()
        with open(store, "rb") as raw_file:
            raw_file.seek(big.id.get_offset())
            named = raw_file.read(16)
        attrs = dict(f["error"].attrs)
        del f["error"]
        error = f.create_dataset(
            "error", (rows,), h5py.string_dtype(), chunks=(rows,), maxshape=(None,), shuffle=True, compression="gzip"
        )
        for key, value in attrs.items():
            error.attrs[key] = value
        error.id.write_direct_chunk((0,), zlib.compress(bytes(16 * (rows // 4)) + named * (rows - rows // 4)))
    pipeline = (
        bytes.fromhex("01 02 00 00 00 00 00 00 02 00 08 00 01 00 00 00")
        + b"shuffle\0"
        + bytes.fromhex("01 00 08 00 01 00 01 00")
        + b"deflate\0"
        + bytes.fromhex("04 00 00 00 00 00 00 00")
    )
    by_hand = (  # shuffle with one value, an element size of 1; deflate at level 4; the same size
        bytes.fromhex("01 02 00 00 00 00 00 00 02 00 00 00 01 00 01 00 01 00 00 00 00 00 00 00")
        + bytes.fromhex("01 00 00 00 01 00 01 00 04 00 00 00 00 00 00 00")
        + bytes(8)
    )
    data = store.read_bytes()
    assert data.count(pipeline) == 1 and len(by_hand) == len(pipeline)
    store.write_bytes(data.replace(pipeline, by_hand))
    with h5py.File(store) as f:  # HDF5 reads it as crafted: three quarters of the rows name the string
        assert len(f["error"][rows - 1]) == length and f["error"][0] == b""
    result = scanner("export", store, "--out", tmp_path / "out.csv", timeout=120, memory_gib=1.5)
    assert_message(result, 2, "/error holds more text than the file could")


def test_text_in_chunks_of_many_rows_and_long_text_attributes_are_refused(tmp_path):
    """A text column in chunks of a million rows was inflated again for every slice read (minutes for
    a 727 KB file); a text attribute of 4,000 values, each a copy of the one string it names, took
    1.24 GB for a 305 KB file. Stores write 16,384-row chunks and at most 131 names in a list."""
    rows = 1 << 17
    chunked = tmp_path / "chunked.h5"
    write_table(chunked, make_table([f"/d/{i}" for i in range(rows)], np.zeros((rows, 6)), roots=["/d"]))
    values = np.array([f"/d/{i}" for i in range(rows)], dtype=object)
    rebuilt(
        chunked,
        lambda f: replace_dataset(f, "path", data=values, dtype=h5py.string_dtype(), chunks=(rows,), maxshape=(None,)),
    )
    with pytest.raises(StoreError, match="/path has chunks of 131,072 rows of text"):
        read_features(chunked)
    listed = rebuilt(good_store(tmp_path / "listed.h5"), lambda f: f.attrs.__setitem__("junk", ["x"] * 300))
    with pytest.raises(StoreError, match="attribute junk holds 300 values"):
        read_features(listed)


def test_a_path_holding_a_nul_byte_is_refused_as_the_input_it_is(tmp_path):
    """A path column of fixed-length bytes may hold a NUL inside a value; no path can. merge read it
    and failed writing its output (exit 3, 'cannot write'): the input store is the one to blame."""

    def nul_path(f):
        paths = [p.encode() for p in f["path"].asstr()[()]]
        paths[3] = b"/data/a\x00b.jpg"
        replace_dataset(f, "path", data=np.array(paths, dtype="S40"))

    store = rebuilt(good_store(tmp_path / "nul.h5"), nul_path)
    with pytest.raises(StoreError, match="/path, row 3, holds a NUL byte"):
        read_features(store)
    result = scanner("merge", good_store(tmp_path / "good.h5"), store, "--out", tmp_path / "merged.h5")
    assert_message(result, 2, str(store), "/path, row 3, holds a NUL byte")
    assert not (tmp_path / "merged.h5").exists()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:512] + os.urandom(len(data) - 512), id="random bytes after the superblock"),
        pytest.param(lambda data: data[: len(data) // 2], id="cut in half"),
        pytest.param(lambda data: b"\x89HDF\r\n\x1a\n" + os.urandom(2000), id="a signature and noise"),
    ],
)
def test_damaged_store_bytes_give_a_message(tmp_path, damage):
    data = good_store(tmp_path / "good.h5").read_bytes()
    store = tmp_path / "damaged.h5"
    store.write_bytes(damage(data))
    commands = [["info", store], ["export", store, "--out", "-"], ["report", store, "--out", tmp_path / "r.html"]]
    for result in scanner_batch(commands, timeout=120):
        assert result.returncode == 2, text(result)
        assert "Traceback" not in text(result)


NOT_STORES = {
    "empty.h5": lambda good: b"",
    "text.h5": lambda good: b"path,label\n/data/0.jpg,fake\n",
    "damaged-signature.hdf5": lambda good: b"\0" * 8 + good[8:],
    "UPPER.H5": lambda good: b"GIF89a" + bytes(100),
}


def test_a_file_named_h5_is_a_store_or_a_refusal_for_every_command(tmp_path):
    """A .h5 or .hdf5 file that is not a readable store is refused (exit 2, one line), never measured as
    an image: classify and train take images too, and must not take it for one."""
    good = good_store(tmp_path / "good.h5").read_bytes()
    commands, names = [], []
    for name, contents in NOT_STORES.items():
        bad = tmp_path / name
        bad.write_bytes(contents(good))
        for command in (
            ["info", bad],
            ["export", bad, "--out", tmp_path / "out.csv"],
            ["report", bad, "--out", tmp_path / "r.html"],
            ["classify", bad, "--out", tmp_path / "v.csv"],
            ["classify", tmp_path / "good.h5", bad, "--out", tmp_path / "v.csv"],
            ["train", bad, "--out", tmp_path / "m.h5"],
            ["evaluate", bad],
            ["merge", bad, "--out", tmp_path / "merged.h5"],
        ):
            commands.append(command)
            names.append(str(bad))
    for result, name in zip(scanner_batch(commands, timeout=300), names, strict=True):
        assert_message(result, 2, name, "not a usable feature store")
    assert not any((tmp_path / name).exists() for name in ("out.csv", "r.html", "v.csv", "m.h5", "merged.h5"))


def test_a_store_that_is_a_fifo_or_a_link_to_one_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.h5")
    (tmp_path / "link.h5").symlink_to(tmp_path / "pipe.h5")
    for name in ("pipe.h5", "link.h5"):
        assert_message(scanner("info", tmp_path / name, timeout=30), 2, "not a regular file (a FIFO)")
    with pytest.raises(StoreError, match="a FIFO"):
        read_header(tmp_path / "link.h5")


def test_infinite_features_are_read_and_judged_unusable(tmp_path):
    store = rebuilt(good_store(tmp_path / "inf.h5"), lambda f: f["features"].__setitem__(slice(0, 5), np.inf))
    out = tmp_path / "v.csv"
    info, classify, report, export = scanner_batch(
        [
            ["info", store],
            ["classify", store, "--out", out],
            ["report", store, "--out", tmp_path / "r.html"],
            ["export", store, "--out", tmp_path / "e.csv"],
        ]
    )
    assert [r.returncode for r in (info, classify, report, export)] == [0, 1, 0, 0]
    assert all("Traceback" not in text(r) for r in (info, classify, report, export))
    assert out.read_text().count(",ok,,") == 5  # five rows without a verdict


# --- models -------------------------------------------------------------------------------


def model_copy(tmp_path, change):
    path = tmp_path / "model.h5"
    shutil.copy(bundled_model_path("paper"), path)
    with h5py.File(path, "a") as f:
        change(f)
    return path


def _set(path, name, value):
    def change(f):
        obj = f[path] if path else f
        obj.attrs[name] = value

    return change


def _dataset(path, values):
    def change(f):
        del f[path]
        f[path] = values

    return change


def _model_method(f):
    return f.attrs["method"] if isinstance(f.attrs["method"], str) else f.attrs["method"].decode()


MODELS = {
    "gamma 'abc'": (lambda f: _set("svm", "gamma", "abc")(f), "attribute gamma"),
    "gamma 0": (lambda f: _set("svm", "gamma", 0.0)(f), "gamma must be positive"),
    "a mixture weight of 0": (None, "weights must be positive"),
    "fake component 'x'": (None, "fake_component"),
    "schema_version 'abc'": (_set("", "schema_version", "abc"), "schema version 'abc'"),
    "format of integers": (_set("", "format", np.arange(3)), "not a scanner model file"),
    "provenance not an object": (_set("", "provenance", "[1, 2]"), "not a JSON object"),
    "support vectors of text": (_dataset("svm/support_vectors", np.array([b"a", b"b"])), "support_vectors"),
    "support vectors with NaN": (None, "non-finite"),
    "an intercept array": (lambda f: _set("svm", "intercept", np.arange(3.0))(f), "attribute intercept"),
    "external link for the method": (None, "external link"),
    "2^30 support vectors declared": (None, "holds the data of fewer"),
    "gamma 1e308": (lambda f: _set("svm", "gamma", 1e308)(f), "308 is outside what a fit gives"),
    "gamma 1e-9": (lambda f: _set("svm", "gamma", 1e-9)(f), "gamma 1e-09 is outside"),
    "gamma inf": (lambda f: _set("svm", "gamma", np.inf)(f), "attribute gamma is missing or not a finite number"),
    "an infinite intercept": (lambda f: _set("svm", "intercept", -np.inf)(f), "attribute intercept"),
    "one dual coefficient fewer": (None, "svm/dual_coef has shape"),
    "dual coefficients not summing to 0": (None, "svm/dual_coef must sum to 0"),
    "a dual coefficient of 0": (None, "svm/dual_coef holds 0"),
    "mixture weights summing to 1.5": (None, "weights must be positive and sum to 1"),
    "covariances not symmetric": (None, "not symmetric"),
    "covariances of 1e-12": (None, "not positive definite"),
}


def _gmm_model(tmp_path, change):
    """A model file of the gmm method, built from the bundled one's measurement, then changed."""
    from scanner.detect.decisions import GMMDecision
    from scanner.detect.model import Model

    base = load_model(bundled_model_path("paper"))  # 6 features
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    gmm = GMMDecision(np.array([0.4, 0.6]), rng.normal(size=(2, 6)), np.stack([a @ a.T + 6 * np.eye(6)] * 2), 1)
    path = tmp_path / "gmm.h5"
    Model(base.measurement, gmm).save(path)
    with h5py.File(path, "a") as f:
        change(f)
    return path


def crafted_model(tmp_path, name):
    change, _ = MODELS[name]
    if change is not None:
        return model_copy(tmp_path, change)
    if name == "a mixture weight of 0":
        return _gmm_model(tmp_path, _dataset("gmm/weights", np.array([0.0, 1.0])))
    if name == "fake component 'x'":
        return _gmm_model(tmp_path, _set("gmm", "fake_component", "x"))
    if name == "mixture weights summing to 1.5":
        return _gmm_model(tmp_path, _dataset("gmm/weights", np.array([0.5, 1.0])))
    if name in ("covariances not symmetric", "covariances of 1e-12"):

        def covariances(f):
            values = f["gmm/covariances"][()]
            if name == "covariances not symmetric":
                values[0, 0, 1] += 1.0
            else:
                values[1] = 1e-12 * np.eye(6)
            _dataset("gmm/covariances", values)(f)

        return _gmm_model(tmp_path, covariances)
    if name in ("one dual coefficient fewer", "dual coefficients not summing to 0", "a dual coefficient of 0"):

        def coefficients(f):
            values = f["svm/dual_coef"][()]
            if name == "one dual coefficient fewer":
                values = values[:-1]
            elif name == "dual coefficients not summing to 0":
                values[0] += 5.0
            else:
                values[[0, 1]] = values[[0, 1]].sum(), 0.0  # the sum kept
            _dataset("svm/dual_coef", values)(f)

        return model_copy(tmp_path, coefficients)
    if name == "support vectors with NaN":

        def nan(f):
            values = f["svm/support_vectors"][()]
            values[0, 0] = np.nan
            _dataset("svm/support_vectors", values)(f)

        return model_copy(tmp_path, nan)
    if name == "external link for the method":

        def link(f):
            del f["svm"]
            f["svm"] = h5py.ExternalLink(str(bundled_model_path("paper")), "/svm")

        return model_copy(tmp_path, link)

    def declared(f):
        del f["svm/support_vectors"]
        f["svm"].create_dataset("support_vectors", shape=(1 << 30, 6), dtype="f8", chunks=(1024, 6))

    return model_copy(tmp_path, declared)


@pytest.mark.parametrize("name", list(MODELS))
def test_malformed_model_is_refused_by_the_loader(tmp_path, name):
    with pytest.raises(ModelError, match=MODELS[name][1]):
        load_model(crafted_model(tmp_path, name))


def test_malformed_models_are_one_line_and_exit_2(tmp_path):
    store = good_store(tmp_path / "s.h5")
    models = []
    for i, name in enumerate(MODELS):
        (tmp_path / f"m{i}").mkdir()
        models.append(crafted_model(tmp_path / f"m{i}", name))
    commands = [["classify", store, "--model", model, "--out", tmp_path / "v.csv"] for model in models]
    for result, model, (_, needle) in zip(scanner_batch(commands, timeout=300), models, MODELS.values(), strict=True):
        assert_message(result, 2, needle, str(model))
    assert not (tmp_path / "v.csv").exists()


def test_a_fit_gives_no_gamma_that_a_model_file_may_not_hold():
    from scanner.core.errors import DetectorError
    from scanner.detect.fit import resolve_gamma

    x = np.random.default_rng(0).normal(size=(50, 6))
    assert resolve_gamma("scale", x) == pytest.approx(1 / (6 * x.var()))
    for gamma, x_used in ((1e308, x), (1e-9, x), ("scale", x * 1e-5)):
        with pytest.raises(DetectorError, match="is outside 1e-06 to 1e\\+06"):
            resolve_gamma(gamma, x_used)


LONG = "x" * 60_000


def test_values_from_files_are_echoed_cut_short(tmp_path):
    """A value read from a model, store, labels or verdicts file is shown in at most 80 characters."""
    store = good_store(tmp_path / "s.h5")
    models = []
    for attribute in ("method", "feature_names", "schema_version", "spectrum"):
        (tmp_path / attribute).mkdir()
        models.append(model_copy(tmp_path / attribute, _set("", attribute, LONG)))
    stores = {
        "spectrum": rebuilt(good_store(tmp_path / "s1.h5"), lambda f: f.attrs.__setitem__("spectrum", LONG)),
        "schema": rebuilt(good_store(tmp_path / "s2.h5"), lambda f: f.attrs.__setitem__("schema_version", LONG)),
        "names": rebuilt(
            good_store(tmp_path / "s3.h5"), lambda f: f["features"].attrs.__setitem__("columns", [LONG] * 6)
        ),
        "feature set": rebuilt(good_store(tmp_path / "s4.h5"), lambda f: f.attrs.__setitem__("feature_set", LONG)),
    }
    (tmp_path / "labels.csv").write_text(f"path,label\n/data/0.jpg,{LONG}\n")
    (tmp_path / "verdicts.csv").write_text(f"path,verdict,score\n/data/0.jpg,{LONG},1\n")
    (tmp_path / "scores.csv").write_text(f"path,verdict,score\n/data/0.jpg,fake,{LONG}\n")
    commands = [["classify", store, "--model", model, "--out", tmp_path / "v.csv"] for model in models]
    commands += [["info", s] for s in stores.values()]
    commands += [
        ["train", store, "--labels", tmp_path / "labels.csv", "--out", tmp_path / "m.h5"],
        ["export", store, "--verdicts", tmp_path / "verdicts.csv", "--out", tmp_path / "e.csv"],
        ["export", store, "--verdicts", tmp_path / "scores.csv", "--out", tmp_path / "e.csv"],
    ]
    for result in scanner_batch(commands, timeout=300):
        err = assert_message(result, 2, "xxxx…")
        assert len(err) < 400, (result.args, len(err), err[:400])


def test_a_model_that_is_a_fifo_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "model.h5")
    result = scanner("classify", good_store(tmp_path / "s.h5"), "--model", tmp_path / "model.h5", "--out", "-")
    assert_message(result, 2, "not a regular file (a FIFO)")


def test_a_fifo_where_the_journal_should_be_is_never_opened(tmp_path):
    store = good_store(tmp_path / "s.h5")
    os.mkfifo(tmp_path / "s.h5.journal")
    (tmp_path / "images").mkdir()
    result = scanner("scan", tmp_path / "images", "--out", store, "--planner", "estimate", timeout=60)
    assert_message(result, 2, f"{store}.journal is a FIFO, not a scan journal: remove it")
