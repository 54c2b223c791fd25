"""Hostile C2PA manifest stores through the command line, validated by the optional extra's native parser inside
the scan's workers: garbage, cut short, nested deep, lying about their lengths. The scan ends in a subprocess of
bounded memory and time, without a traceback, each file ok (its pixels decode) with c2pa:invalid or the plain c2pa.
Skipped where the extra is not installed."""

import json
import struct

import pytest

pytest.importorskip("c2pa")
pytest.importorskip("cryptography")

from declared_files import app11, box, chunk, jpeg, jumd, png, segment, with_chunks, with_segments
from hostile import scanner, text
from signed_files import chain, signed


def riff_webp_with(kind: bytes, body: bytes) -> bytes:
    """A lossless 1x1 WebP with one more chunk."""
    vp8l = b"\x2f\x00\x00\x00\x00\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
    chunks = struct.pack("<4sI", b"VP8L", len(vp8l)) + vp8l + struct.pack("<4sI", kind, len(body)) + body
    chunks += b"\0" * (len(body) & 1)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def test_a_scan_of_hostile_manifest_stores_is_bounded(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    nested = box(b"jumb", jumd("urn:uuid:x"))
    for _ in range(3000):  # superboxes 3,000 deep under the c2pa label (the presence scan stops at 8)
        nested = box(b"jumb", nested)
    deep = box(b"jumb", jumd("c2pa") + nested)
    real = signed("jpeg", chain())
    start = real.index(b"\xff\xeb")  # the first APP11 segment of a real store
    (length,) = struct.unpack_from(">H", real, start + 2)
    middle = start + 4 + length // 2
    files = {
        "garbage.jpg": with_segments(jpeg(0), app11(box(b"jumb", jumd("c2pa") + bytes(range(256)) * 64))),
        "deep.png": with_chunks(png(1), chunk(b"caBX", deep)),
        # A box under the label that says it runs 2^62 bytes, in a segment of a few dozen.
        "lying.jpg": with_segments(
            jpeg(2), app11(box(b"jumb", jumd("c2pa") + struct.pack(">I4sQ", 1, b"cbor", 1 << 62)))
        ),
        # A real, signed store with the second half of its first segment overwritten.
        "scrambled.jpg": real[:middle] + bytes(length // 2 - 8) + real[middle + length // 2 - 8 :],
        # The first 200 bytes of a real store's first segment, alone in a segment of its own: the store cut short.
        "cut.jpg": with_segments(jpeg(5), segment(0xEB, real[start + 4 : start + 4 + 200])),
        "garbage.webp": riff_webp_with(b"C2PA", box(b"jumb", jumd("c2pa") + b"\xff" * 300)),
        "empty-label.png": with_chunks(png(3), chunk(b"caBX", box(b"jumb", jumd("c2pa")))),
        "many-segments.jpg": with_segments(jpeg(4), *[app11(box(b"jumb", jumd("c2pa")), i) for i in range(1, 300)]),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    out = tmp_path / "s.h5"
    result = scanner("scan", root, "--out", out, "-j", "2", "--planner", "estimate", "--quiet", timeout=180)
    assert "Traceback" not in text(result), text(result)
    exported = scanner("export", out, "--out", "-", "--format", "jsonl")
    assert exported.returncode == 0, text(exported)
    rows = {json.loads(line)["path"].rsplit("/", 1)[1]: json.loads(line) for line in exported.stdout.splitlines()}
    assert set(rows) == set(files)
    for name, row in rows.items():
        assert row["declared"] in ("c2pa:invalid", "c2pa"), (name, row)
        assert row["status"] == "ok" or name == "garbage.webp", (name, row)
    assert result.returncode in (0, 1), text(result)
