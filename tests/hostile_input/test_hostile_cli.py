"""The command line meeting hostile input: messages instead of tracebacks, names that cannot hurt a
terminal or a CSV, NUL-separated lists, links, long paths, and a large tree with traps in it."""

import contextlib
import csv
import os
import shutil
import stat

import cv2
from helpers import Features, natural_image
from hostile import assert_message, scanner, scanner_batch, text
from test_hostile_images import BOMBS, corrupt_files, png
from test_hostile_stores import MODELS, STORES, crafted_model, good_store, rebuilt

from scanner.cli.text import shown
from scanner.store.hdf5 import read_features

ESC = "\x1b"
EVIL = "evil\x1b[31mred\x1b]0;pwned\x07\u202etxt.png"  # colours, a window title, a bell, right-to-left


def write_png(path, seed=0, size=(40, 48)):
    path.write_bytes(png(seed=seed, size=size))
    return path


# --- class 5: input files that used to end in tracebacks ----------------------------------------


def test_a_binary_labels_file_is_a_message(tmp_path):
    store = good_store(tmp_path / "s.h5")
    labels = tmp_path / "labels.csv"
    labels.write_bytes(os.urandom(4096).replace(b"\n", b"\0"))
    result = scanner("train", store, "--labels", labels, "--out", tmp_path / "m.h5")
    assert_message(result, 2, f"{labels}: not a UTF-8 CSV labels file")
    assert not (tmp_path / "m.h5").exists()


def test_fifos_and_devices_are_never_read_as_tables_nor_replaced_as_outputs(tmp_path):
    """A labels or verdicts file that is a FIFO hung the command (plain open()), /dev/zero grew until a
    MemoryError traceback; an output that was a device, a FIFO or a symbolic link was renamed over (as root,
    `export --out /dev/null` replaced the system's node with a CSV). Each is now one line, exit 2."""
    store = good_store(tmp_path / "s.h5")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "elsewhere.csv")
    (tmp_path / "adir").mkdir()
    result = scanner("train", store, "--labels", fifo, "--out", tmp_path / "m.h5", timeout=60)
    assert_message(result, 2, f"{fifo}: the labels file is a FIFO, not a regular file")
    result = scanner("train", store, "--labels", "/dev/zero", "--out", tmp_path / "m.h5", timeout=60)
    assert_message(result, 2, "/dev/zero: the labels file is a character device, not a regular file")
    result = scanner("export", store, "--verdicts", fifo, "--out", tmp_path / "e.csv", timeout=60)
    assert_message(result, 2, f"{fifo}: the verdicts file is a FIFO, not a regular file")
    for out, kind in ((fifo, "a FIFO"), (link, "a symbolic link"), (tmp_path / "adir", "a directory")):
        result = scanner("export", store, "--out", out, timeout=60)
        assert_message(result, 2, f"the output {out} is {kind}, not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink() and not (tmp_path / "elsewhere.csv").exists()


def test_a_parquet_verdicts_file_that_expands_past_the_bound_is_one_line(tmp_path):
    """400 paths of 10 MB compress to a 135 KB Parquet file, which export expanded to 10.5 GB; one
    1 MB path repeated on 5,000 rows of a dictionary-encoded column declares only its 1 MB. Both are
    refused before they are expanded, in a 2 GiB address space; a good file is read as before."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = good_store(tmp_path / "s.h5")
    plain, repeated = tmp_path / "plain.parquet", tmp_path / "repeated.parquet"
    rows = 400
    table = pa.table({"path": ["/" + "p" * (10 << 20)] * rows, "verdict": ["real"] * rows, "score": [0.0] * rows})
    pq.write_table(table, plain, compression="zstd", use_dictionary=False)
    rows = 5000
    table = pa.table({"path": ["/" + "q" * (1 << 20)] * rows, "verdict": ["real"] * rows, "score": [0.0] * rows})
    pq.write_table(table, repeated, compression="zstd", use_dictionary=True, dictionary_pagesize_limit=4 << 20)
    assert plain.stat().st_size < 1 << 20 and repeated.stat().st_size < 1 << 20
    del table
    # the anchors' paths, a list of text: one 1 MB path 600 times on one row, stored once
    anchors = tmp_path / "anchors.parquet"
    table = pa.table(
        {
            "path": ["/data/0.jpg"],
            "verdict": ["real"],
            "score": [0.0],
            "real_anchor_paths": pa.array([["/" + "a" * (1 << 20)] * 600], pa.list_(pa.string())),
        }
    )
    pq.write_table(table, anchors, compression="zstd", use_dictionary=True, dictionary_pagesize_limit=4 << 20)
    # a column of a kind no verdicts file holds: refused before it is read, whatever its size
    struct = tmp_path / "struct.parquet"
    pq.write_table(pa.table({"path": [{"inner": "/data/0.jpg"}], "verdict": ["real"], "score": [0.0]}), struct)
    del table
    cases = (
        (plain, "whose columns declare 4,194,"),
        (repeated, "that expands to at least"),
        (anchors, "that expands to at least 629,"),
        (struct, "whose column 'path' holds struct<inner: string>, not text or numbers"),
    )
    for verdicts, needle in cases:
        result = scanner("export", store, "--verdicts", verdicts, "--out", tmp_path / "e.csv", timeout=120)
        assert_message(result, 2, f"{verdicts}: a Parquet file {needle}")
    assert not (tmp_path / "e.csv").exists()
    # a column the verdicts reader does not know is never read: 1 MB fixed-size values on 400 rows
    extra = tmp_path / "extra.parquet"
    rows = 400
    junk = pa.array([b"j" * (1 << 20)] * rows, pa.binary(1 << 20))
    table = pa.table({"path": ["/x"] * rows, "verdict": ["real"] * rows, "score": [0.0] * rows, "junk": junk})
    pq.write_table(table, extra, compression="zstd")
    del junk, table
    result = scanner("export", store, "--verdicts", extra, "--out", tmp_path / "e.csv", timeout=120, memory_gib=1)
    assert result.returncode == 0, text(result)
    good = tmp_path / "good.parquet"
    assert scanner("classify", store, "--out", good).returncode == 0
    assert scanner("export", store, "--verdicts", good, "--out", tmp_path / "e.csv").returncode == 0
    with open(tmp_path / "e.csv", newline="") as handle:
        assert len([row for row in csv.DictReader(handle) if row["verdict"]]) == 40


def test_a_jsonl_verdicts_line_past_its_bound_is_one_line(tmp_path):
    """A JSONL verdicts file of one 300 MB line was read whole, then parsed: 2 GB, and a MemoryError
    traceback under a limit. A line is read within 16 Mi characters."""
    import json

    store = good_store(tmp_path / "s.h5")
    verdicts = tmp_path / "v.jsonl"
    line = json.dumps({"path": "/data/0.jpg", "verdict": "real", "score": 0.5})
    with open(verdicts, "w") as handle:
        handle.write(line + "\n\n" + json.dumps({"path": "/" + "x" * (17 << 20), "verdict": "real"}) + "\n")
    result = scanner("export", store, "--verdicts", verdicts, "--out", tmp_path / "e.csv", memory_gib=1)
    assert_message(result, 2, f"{verdicts}, line 3: longer than 16,777,216 characters")
    verdicts.write_text(line + "\n")
    assert scanner("export", store, "--verdicts", verdicts, "--out", tmp_path / "e.csv").returncode == 0


def test_running_out_of_memory_is_one_line_and_exit_code_3(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from scanner.cli import app, stores

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(stores, "read_header", exhausted)
    result = CliRunner().invoke(app, ["info", str(good_store(tmp_path / "s.h5"))])
    assert result.exit_code == 3
    assert result.output == "scanner info: ran out of memory (no output is left half-written)\n"


def test_an_empty_store_is_a_message_or_an_empty_result(tmp_path):
    """A store of no rows (a scan of an empty directory) made classify and train print a traceback
    (usable_rows reshaped 0 values to (0, -1))."""
    (tmp_path / "empty").mkdir()
    assert scanner("scan", tmp_path / "empty", "--out", tmp_path / "e.h5").returncode == 0
    result = scanner("classify", tmp_path / "e.h5", "--out", tmp_path / "v.csv")
    assert result.returncode == 0 and "Traceback" not in text(result), text(result)
    assert (tmp_path / "v.csv").read_text().count("\n") == 1  # the header alone
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n")
    result = scanner("train", tmp_path / "e.h5", "--labels", labels, "--out", tmp_path / "m.h5")
    assert_message(result, 2, "needs both classes; got 0 real and 0 fake rows")


def test_find_print0_lists_are_read_and_null_keeps_newlines_in_names(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    names = ["a.png", "b c.png", "d\ne.png"]
    for i, name in enumerate(names):
        write_png(photos / name, seed=i)
    listing = b"".join(bytes(photos / n) + b"\0" for n in names[:2])
    result = scanner("scan", "--from-list", "-", "--out", tmp_path / "s.h5", "--planner", "estimate", stdin=listing)
    assert result.returncode == 0, text(result)
    assert sorted(read_features(tmp_path / "s.h5").path) == sorted(str(photos / n) for n in names[:2])
    # A name holding a newline needs -0 (like xargs -0): NUL alone ends a name.
    listing = b"".join(bytes(photos / n) + b"\0" for n in names)
    out = tmp_path / "t.h5"
    result = scanner("scan", "--from-list", "-", "-0", "--out", out, "--planner", "estimate", stdin=listing)
    assert result.returncode == 0, text(result)
    assert sorted(read_features(out).path) == sorted(str(photos / n) for n in names)
    # The same list from a file: counted first (for the ETA), then read.
    (tmp_path / "list0").write_bytes(listing)
    out = tmp_path / "u.h5"
    result = scanner("scan", "--from-list", tmp_path / "list0", "--null", "--out", out, "--planner", "estimate")
    assert result.returncode == 0 and len(read_features(out)) == 3, text(result)


def test_a_report_with_a_thin_image_among_the_top_files(tmp_path):
    thin = tmp_path / "thin.png"
    cv2.imwrite(str(thin), natural_image(8, 4000, seed=3)[..., ::-1])
    wide = write_png(tmp_path / "wide.png", seed=4, size=(4000, 8))
    store, verdicts = tmp_path / "s.h5", tmp_path / "v.csv"
    assert scanner("scan", thin, wide, "--out", store, "--planner", "estimate").returncode == 0
    verdicts.write_text(f"path,status,verdict,score\n{thin},ok,fake,2\n{wide},ok,fake,1\n")
    result = scanner("report", store, "--verdicts", verdicts, "--thumbnails", "--out", tmp_path / "r.html")
    assert result.returncode == 0, text(result)
    html = (tmp_path / "r.html").read_text()
    assert html.count('<img alt="spectra of') == 2


def test_no_command_prints_a_traceback_for_any_hostile_input(tmp_path):
    """Every command, on every kind of hostile file this suite builds, in one batch."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret" * 100)
    good_store(outside / "other.h5")
    os.mkfifo(outside / "fifo.h5")
    images = tmp_path / "images"
    images.mkdir()
    for name, (data, *_) in BOMBS.items():
        (images / name).write_bytes(data)
    corrupt_files(images)
    os.mkfifo(images / "pipe.jpg")
    (images / "zero.jpg").symlink_to("/dev/zero")
    stores = []
    for i, (change, _) in enumerate(STORES.values()):
        stores.append(rebuilt(good_store(tmp_path / f"store{i}.h5"), lambda f, c=change: c(f, outside)))
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(good_store(tmp_path / "g.h5").read_bytes()[:3000])
    stores.append(damaged)
    models = []
    for i, name in enumerate(MODELS):
        (tmp_path / f"m{i}").mkdir()
        models.append(crafted_model(tmp_path / f"m{i}", name))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    good = good_store(tmp_path / "good.h5")
    every_image = sorted(images.iterdir())
    out = tmp_path / "out"
    commands = [
        ["features", *every_image],
        ["spectrum", *every_image, "--out", out / "f.png"],
        ["scan", images, "--out", tmp_path / "scan.h5", "--ext", "*", "-q", "--follow-links"],
        ["scan", "--from-list", binary, "--out", tmp_path / "list.h5", "-q"],
        ["train", good, "--labels", binary, "--out", out / "m.h5"],
        ["classify", good, "--unsupervised", "--real-anchor", images, "--out", out / "v.csv"],
        ["report", good, "--verdicts", binary, "--out", out / "r.html"],
    ]
    for store in stores:
        commands += [["info", store], ["export", store, "--out", out / "e.csv"], ["report", store, "--out", out / "r"]]
        commands += [["classify", store, "--out", out / "v.csv"], ["scan", images, "--out", store, "-q"]]
    for model in models:
        commands += [["classify", good, "--model", model, "--out", out / "v.csv"]]
        commands += [["spectrum", every_image[0], "--model", model, "--out", out / "s.png"]]
    out.mkdir()
    results = scanner_batch(commands, timeout=600)
    for result in results:
        assert "Traceback" not in text(result), (result.args, text(result))
        assert result.returncode in (0, 1, 2), (result.args, text(result))


# --- class 8: export keeps every name one record -------------------------------------------------


def test_export_quotes_names_with_carriage_returns_and_newlines(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    names = ["plain.png", "cr\rname.png", "nl\nname.png", 'quote",comma.png']
    for i, name in enumerate(names):
        write_png(photos / name, seed=i)
    store = tmp_path / "s.h5"
    assert scanner("scan", photos, "--out", store, "--planner", "estimate").returncode == 0
    csv_out = tmp_path / "s.csv"
    assert scanner("export", store, "--out", csv_out).returncode == 0
    with open(csv_out, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        records = list(csv.DictReader(handle))
    assert sorted(r["path"] for r in records) == sorted(str(photos / n) for n in names)
    assert {r["status"] for r in records} == {"ok"}


# --- class 9: terminal escapes, resume of truncated files, links, long paths ----------------------


def test_shown_escapes_what_could_drive_a_terminal():
    assert shown("plain name.png") == "plain name.png"
    assert shown(EVIL) == "evil\\x1b[31mred\\x1b]0;pwned\\x07\\u202etxt.png"
    assert shown("back\\slash\x1b") == "back\\\\slash\\x1b"  # escaped lines double their backslashes
    assert shown("caf\udce9.png") == "caf\\xe9.png"  # a byte that is not UTF-8


def test_no_raw_escape_sequence_reaches_the_terminal(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    evil = write_png(photos / EVIL, seed=1)
    write_png(photos / "fine.png", seed=2)
    store = tmp_path / f"store{ESC}[2J.h5"
    scan = scanner("scan", photos, "--out", store, "--planner", "estimate")
    results = [
        scan,
        *scanner_batch(
            [
                ["features", evil, photos / "nothing\x1b[5m.png"],
                ["info", store],
                ["classify", store, "--out", tmp_path / "v.csv"],
                ["spectrum", photos / "gone\x1b[8m.png", "--out", tmp_path / "f.png"],
                ["info", tmp_path / "missing\x1b[2J.h5"],
            ]
        ),
    ]
    for result in results:
        out = text(result)
        assert ESC not in out and "\x07" not in out and "\u202e" not in out, repr(out)
        assert "Traceback" not in out
    assert "evil\\x1b[31mred" in text(results[1])
    assert "evil\\x1b[31mred" in text(results[3])  # classify lists the files it judged
    # Data outputs stay exact: the CSV holds the name as it is.
    assert EVIL in (tmp_path / "v.csv").read_text(encoding="utf-8", errors="surrogateescape")


def test_truncated_rows_are_tried_again_once_the_file_changed(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    whole = cv2.imencode(".jpg", natural_image(64, 64, seed=6)[..., ::-1])[1].tobytes()
    (photos / "growing.jpg").write_bytes(whole[: len(whole) // 2])  # still being copied
    write_png(photos / "done.png")
    store = tmp_path / "s.h5"
    args = ("scan", photos, "--out", store, "--planner", "estimate")
    assert scanner(*args).returncode == 1
    table = read_features(store)
    assert table.status[table.path.index(str(photos / "growing.jpg"))] == "truncated"
    # Unchanged, it is not read again; complete (new size and mtime), it is.
    result = scanner(*args)
    assert result.returncode == 1 and "2 already in the store" in result.stdout.decode()
    (photos / "growing.jpg").write_bytes(whole)
    result = scanner(*args)
    assert result.returncode == 0 and "1 already in the store" in result.stdout.decode(), text(result)
    table = read_features(store)
    assert sorted(table.status) == ["ok", "ok"] and len(table) == 2


def test_links_out_of_the_tree_are_followed_only_when_asked(tmp_path):
    photos, elsewhere = tmp_path / "photos", tmp_path / "elsewhere"
    photos.mkdir()
    elsewhere.mkdir()
    write_png(photos / "mine.png", seed=1)
    write_png(elsewhere / "theirs.png", seed=2)
    (photos / "link").symlink_to(elsewhere)
    default, followed = tmp_path / "a.h5", tmp_path / "b.h5"
    assert scanner("scan", photos, "--out", default, "--planner", "estimate").returncode == 1
    table = read_features(default)
    rows = dict(zip(table.path, zip(table.status, table.error, strict=True), strict=True))
    assert rows[str(photos / "mine.png")][0] == "ok"
    assert rows[str(photos / "link")] == (
        "not_image",
        "a symbolic link to a directory, not followed (--follow-links follows links)",
    )
    assert len(rows) == 2
    result = scanner("scan", photos, "--out", followed, "--follow-links", "--planner", "estimate")
    assert result.returncode == 0, text(result)
    assert sorted(read_features(followed).path) == [str(photos / "link" / "theirs.png"), str(photos / "mine.png")]


def test_a_path_too_long_for_the_system_is_one_clear_row(tmp_path):
    top = tmp_path / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    depth = 0
    try:
        while len(bytes(top)) + depth * 201 < 4200:  # each level adds 200 bytes and a slash
            os.mkdir("d" * 200, dir_fd=fd)
            deeper = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, depth = deeper, depth + 1
        with open(os.open("x.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as handle:
            handle.write(png())
    finally:
        os.close(fd)
    write_png(top / "short.png")
    store = tmp_path / "s.h5"
    result = scanner("scan", top, "--out", store, "--planner", "estimate")
    assert result.returncode == 1 and "Traceback" not in text(result), text(result)
    table = read_features(store)
    rows = dict(zip(table.status, table.error, strict=True))
    assert rows["ok"] == "" and len(table) == 2
    assert "path too long for the system" in rows["unreadable"]
    shutil.rmtree(top, ignore_errors=True)


# --- the whole: traps in the middle of a large tree change no other row ---------------------------


def test_a_large_tree_with_traps_in_it_gives_the_same_rows_for_every_other_file(tmp_path):
    clean, trapped = tmp_path / "clean", tmp_path / "trapped"
    for root in (clean, trapped):
        for i in range(240):
            sub = root / f"part{i % 6}"
            sub.mkdir(parents=True, exist_ok=True)
            write_png(sub / f"img{i:03d}.png", seed=i, size=(24 + i % 7, 32))
    middle = trapped / "part3"
    os.mkfifo(middle / "fifo.jpg")
    (middle / "zero.jpg").symlink_to("/dev/zero")
    (middle / "bomb.tif").write_bytes(BOMBS["tiff.tif"][0])
    (middle / "bomb.png").write_bytes(BOMBS["png16.png"][0])
    (tmp_path / "corrupt").mkdir()
    corrupt = corrupt_files(tmp_path / "corrupt")
    (middle / "cut.jpg").write_bytes(corrupt["cut.jpg"])
    (middle / "damaged.jpg").write_bytes(corrupt["damaged.jpg"])
    expected = {"fifo.jpg": "not_image", "zero.jpg": "not_image", "bomb.tif": "too_large", "bomb.png": "too_large"}
    expected.update({"cut.jpg": "truncated", "damaged.jpg": "corrupt"})
    if os.geteuid() == 0:  # a device node (mknod needs root, and more than root in a user namespace)
        with contextlib.suppress(PermissionError):
            os.mknod(middle / "device.jpg", stat.S_IFCHR | 0o600, os.makedev(1, 5))
            expected["device.jpg"] = "not_image"
    stores = {}
    for root in (clean, trapped):
        stores[root] = tmp_path / f"{root.name}.h5"
        args = ("scan", root, "--out", stores[root], "--follow-links", "--ext", "*", "--planner", "estimate", "-j", "2")
        result = scanner(*args, timeout=600)
        assert result.returncode == (0 if root == clean else 1) and "Traceback" not in text(result), text(result)

    def rows(store):
        table = read_features(store)
        return {
            os.path.relpath(p, root): (table.status[i], table.error[i], Features(table.features[i]), table.size[i])
            for root in (clean, trapped)
            for i, p in enumerate(table.path)
            if p.startswith(str(root) + os.sep)
        }

    mine, theirs = rows(stores[trapped]), rows(stores[clean])
    traps = {os.path.join("part3", name) for name in expected}
    assert {k: v for k, v in mine.items() if k not in traps} == theirs
    assert {os.path.basename(k): v[0] for k, v in mine.items() if k in traps} == expected
