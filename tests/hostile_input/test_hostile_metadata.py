"""Hostile metadata through the command line: a scan of files whose metadata is a bomb, nested past every
bound, cut short or lying about its lengths ends in a subprocess of bounded memory and time, without a
traceback, each file with a sensible `declared` value and an ok status where its pixels decode."""

import json
import struct

from declared_files import (
    app11,
    box,
    c2pa_store,
    jpeg,
    jumd,
    png,
    segment,
    text_chunk,
    with_chunks,
    with_segments,
    zlib_bomb,
    ztxt_chunk,
)
from hostile import scanner, text


def test_a_scan_of_hostile_metadata_is_bounded(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    nested = box(b"jumb", jumd("c2pa"))
    for _ in range(5000):
        nested = box(b"jumb", nested)
    files = {
        "bomb.png": with_chunks(png(0), text_chunk("prompt", "{}"), ztxt_chunk("XML:com.adobe.xmp", zlib_bomb(2))),
        "nested.jpg": with_segments(jpeg(1), app11(nested)),
        "many.jpg": with_segments(jpeg(2), app11(c2pa_store()), segment(0xE2, b"") * 100_000),
        "lying.png": with_chunks(png(3), text_chunk("parameters", "x"), struct.pack(">I4s", 0x7FFFFFF0, b"zTXt")),
        "cut.jpg": with_segments(jpeg(4), app11(c2pa_store()))[:60],
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    out = tmp_path / "s.h5"
    result = scanner("scan", root, "--out", out, "-j", "2", "--planner", "estimate", "--quiet", timeout=180)
    assert "Traceback" not in text(result), text(result)
    assert result.returncode == 1, text(result)  # --strict: lying.png and cut.jpg are not whole images
    exported = scanner("export", out, "--out", "-", "--format", "jsonl")
    assert exported.returncode == 0, text(exported)
    rows = {json.loads(line)["path"].rsplit("/", 1)[1]: json.loads(line) for line in exported.stdout.splitlines()}
    assert {name: (r["status"], r["declared"]) for name, r in rows.items() if r["status"] == "ok"} == {
        "bomb.png": ("ok", "png-text:prompt"),
        "nested.jpg": ("ok", None),
        "many.jpg": ("ok", "c2pa"),
    }
    assert rows["lying.png"]["declared"] == "png-text:parameters" and rows["lying.png"]["status"] != "ok"
    assert rows["cut.jpg"]["declared"] is None and rows["cut.jpg"]["status"] != "ok"
