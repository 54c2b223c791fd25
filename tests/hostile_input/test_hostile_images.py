"""Hostile image files: FIFOs, devices, huge files, decompression bombs, corrupt data.

Every case that could hang or allocate without bound runs in a subprocess with a
timeout and an address-space limit (tests/hostile.py), so that a regression fails
the test instead of the test run.
"""

import json
import os
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from helpers import natural_image
from hostile import MEMORY_GIB, assert_message, limited, scanner, text, unprompted

import scanner.images.decode as decode
from scanner.core.constants import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from scanner.core.schema import make_table
from scanner.images.decode import UnusableImage, decode_bytes, probe, read_image
from scanner.images.headers import BadHeader
from scanner.store.hdf5 import write_table


def jpeg(seed=0, size=(96, 128), **params) -> bytes:
    bgr = natural_image(*size, seed=seed)[..., ::-1]
    flags = [cv2.IMWRITE_JPEG_QUALITY, 90]
    if params.get("progressive"):
        flags += [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
    return cv2.imencode(".jpg", bgr, flags)[1].tobytes()


def png(seed=0, size=(96, 128)) -> bytes:
    return cv2.imencode(".png", natural_image(*size, seed=seed)[..., ::-1])[1].tobytes()


def features_json(result) -> dict[str, dict]:
    return {os.path.basename(r["path"]): r for r in map(json.loads, result.stdout.decode().splitlines())}


# --- class 1: what is not a regular file, and what is too big, is never read ---------------------


@pytest.fixture
def specials(tmp_path):
    """A FIFO named like an image, links to /dev/zero and to a FIFO, a 1.5 GB sparse file, a good image."""
    os.mkfifo(tmp_path / "x.jpg")
    (tmp_path / "z.jpg").symlink_to("/dev/zero")
    (tmp_path / "to-fifo.png").symlink_to(tmp_path / "x.jpg")
    with open(tmp_path / "huge.jpg", "wb") as handle:
        handle.write(jpeg())
        handle.truncate(1_500_000_000)
    (tmp_path / "good.png").write_bytes(png())
    return tmp_path


def test_features_never_opens_a_fifo_or_device_and_never_reads_past_the_cap(specials):
    names = ["x.jpg", "z.jpg", "to-fifo.png", "huge.jpg", "good.png"]
    result = scanner("features", "--json", "--planner", "estimate", *[specials / n for n in names], timeout=60)
    assert result.returncode == 1 and "Traceback" not in text(result), text(result)
    rows = features_json(result)
    assert (rows["x.jpg"]["status"], rows["x.jpg"]["error"]) == (
        "not_image",
        "not a regular file (a FIFO), never opened",
    )
    assert rows["to-fifo.png"]["error"] == "not a regular file (a FIFO), never opened"
    assert rows["z.jpg"]["error"] == "not a regular file (a character device), never opened"
    assert rows["huge.jpg"]["status"] == "too_large"
    assert rows["huge.jpg"]["error"] == (
        f"1,500,000,000 bytes is over the {DEFAULT_MAX_BYTES:,}-byte cap (--max-bytes): not read"
    )
    assert rows["good.png"]["status"] == "ok"
    capped = scanner("features", "--json", "--max-bytes", "1000", "--planner", "estimate", specials / "good.png")
    assert features_json(capped)["good.png"]["status"] == "too_large"


def test_spectrum_and_report_refuse_them_too(specials, tmp_path):
    out = tmp_path / "fig.png"
    names = ["x.jpg", "z.jpg", "huge.jpg", "good.png"]
    result = scanner("spectrum", *[specials / n for n in names], "--out", out, "--planner", "estimate", timeout=120)
    assert result.returncode == 1 and "Traceback" not in text(result), text(result)
    assert out.exists() and "1 of 4 images drawn" in result.stdout.decode()
    assert "not a regular file (a FIFO)" in result.stderr.decode()
    # The report draws the spectra of its most suspicious files from the files as they are now.
    paths = [str(specials / n) for n in ("x.jpg", "z.jpg", "huge.jpg")]
    store, verdicts = tmp_path / "s.h5", tmp_path / "v.csv"
    write_table(store, make_table(paths, np.random.default_rng(0).random((3, 6)), format=["JPEG"] * 3))
    verdicts.write_text("path,status,verdict,score\n" + "".join(f"{p},ok,fake,{i + 1}\n" for i, p in enumerate(paths)))
    report = tmp_path / "r.html"
    result = scanner("report", store, "--verdicts", verdicts, "--out", report, timeout=120)
    assert result.returncode == 0 and "Traceback" not in text(result), text(result)
    html = report.read_text()
    assert html.count("spectra not drawn") == 3 and "a FIFO" in html and "a character device" in html


def test_real_anchors_that_are_fifos_or_devices_are_never_read(specials, tmp_path):
    rng = np.random.default_rng(1)
    features = np.vstack([rng.normal(0, 1, (30, 6)), rng.normal(3, 1, (30, 6))])
    store = tmp_path / "s.h5"
    write_table(store, make_table([f"/d/{i}.jpg" for i in range(60)], features))
    anchors = ["--real-anchor", specials / "x.jpg", "--real-anchor", specials / "z.jpg"]
    for command in (
        ["classify", store, "--unsupervised", *anchors, "--out", tmp_path / "v.csv"],
        ["train", store, "--method", "gmm", *anchors, "--out", tmp_path / "m.h5"],
    ):
        result = scanner(*command, timeout=120)
        assert_message(result, 2, "none of the real anchors has usable features")
        assert "real anchor not used" in result.stderr.decode() or result.returncode == 2


_SWAP = """
import os, sys
from scanner.run.executors.base import MeasureSpec
from scanner.run.executors.local import LocalPool
from scanner.features.extract import extractor_spec
from scanner.io.walk import Walk

root = sys.argv[1]
found = [f for f in Walk([root])]
target = next(f for f in found if f.relpath == b"swapped.png")
os.unlink(os.path.join(root, "swapped.png"))
os.mkfifo(os.path.join(root, "swapped.png"))  # after the walk, before any worker opens it
spec = MeasureSpec(extractor_spec(planner="estimate"), (b"", os.fsencode(root)))
with LocalPool(spec, 2) as pool:
    rows = [r for r in pool.map(iter([found])) if r is not None]
for rows_ in rows:
    for path, status, error in zip(rows_.path, rows_.status, rows_.error):
        print(path.decode(), status, error, sep="|")
"""


def test_a_file_swapped_for_a_fifo_after_the_walk_does_not_block_a_worker(tmp_path):
    for i in range(6):
        (tmp_path / f"{i}.png").write_bytes(png(seed=i, size=(24, 32)))
    (tmp_path / "swapped.png").write_bytes(png(seed=9, size=(24, 32)))
    done = subprocess.run(
        [sys.executable, "-c", _SWAP, str(tmp_path)],
        capture_output=True,
        timeout=120,
        preexec_fn=limited(MEMORY_GIB),
    )
    assert done.returncode == 0, done.stderr.decode()
    rows = dict(line.split("|", 1) for line in done.stdout.decode().splitlines())
    assert rows["swapped.png"] == "not_image|not a regular file (a FIFO), never opened"
    assert sorted(v for k, v in rows.items() if k != "swapped.png") == ["ok|"] * 6


def test_a_link_swapped_in_after_the_walk_is_not_followed(tmp_path):
    (tmp_path / "a.png").write_bytes(png())
    os.symlink(tmp_path / "a.png", tmp_path / "b.png")
    with pytest.raises(UnusableImage, match="a symbolic link"):
        read_image(tmp_path / "b.png", follow=False)
    assert read_image(tmp_path / "b.png").pixels.shape == (96, 128, 3)


def test_a_file_growing_while_read_is_read_to_the_size_it_had(tmp_path, monkeypatch):
    import scanner.io.safeio as safeio

    path = tmp_path / "growing.png"
    data = png()
    path.write_bytes(data)
    real_fstat = os.fstat
    calls = []

    def fstat_then_grow(fd):
        info = real_fstat(fd)
        calls.append(info.st_size)
        with open(path, "ab") as handle:  # the file grows as soon as its size has been looked at
            handle.write(b"\0" * 100_000)
        return info

    monkeypatch.setattr(safeio.os, "fstat", fstat_then_grow)
    got = bytes(safeio.read_bounded(path, 10**9))
    assert len(got) == calls[-1] and got.startswith(data)  # what it had when its size was taken, not more


# --- class 2: decompression bombs are refused from the header ----------------------------------


def tiff_bomb(width=20000, height=20000) -> bytes:
    """An 18-byte-strip TIFF whose header asks for width x height (OpenCV decodes it at a small size)."""
    body = zlib.compress(b"\0" * 1000)
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 1), (273, 4, 0)]
    return tiff_file([*tags, (277, 3, 1), (278, 4, height), (279, 4, len(body))], body)


def tiff_file(tags, body) -> bytes:
    """A little-endian TIFF of one strip, `body`, with these (tag, type, value) entries in this order (the
    StripOffsets value, tag 273, is set to where the body lies)."""
    data_at = 8 + 2 + 12 * len(tags) + 4
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        value = data_at if tag == 273 else value
        ifd += struct.pack("<HHII", tag, kind, 1, value) if kind == 4 else struct.pack("<HHIHH", tag, kind, 1, value, 0)
    return b"II*\0" + struct.pack("<I", 8) + ifd + b"\0\0\0\0" + body


def bigtiff_bomb(width=30000, height=30000) -> bytes:
    tags = [(256, 16, width), (257, 16, height), (273, 16, 0), (279, 16, 1)]
    data_at = 16 + 8 + 20 * len(tags) + 8
    ifd = struct.pack("<Q", len(tags))
    for tag, kind, value in tags:
        ifd += struct.pack("<HHQQ", tag, kind, 1, data_at if tag == 273 else value)
    return b"II+\0" + struct.pack("<HHQ", 8, 0, 16) + ifd + b"\0" * 8 + b"\0"


def j2k(width, height, components=3) -> bytes:
    siz = struct.pack(">HHIIIIIIIIH", 38 + 3 * components, 0, width, height, 0, 0, width, height, 0, 0, components)
    return b"\xff\x4f\xff\x51" + siz + b"\x07\x01\x01" * components + b"\xff\xd9"


def jp2(width, height) -> bytes:
    code = j2k(width, height)
    return (
        b"\x00\x00\x00\x0cjP  \r\n\x87\n"
        + struct.pack(">I4s4sI4s", 20, b"ftyp", b"jp2 ", 0, b"jp2 ")
        + struct.pack(">I4s", 8 + len(code), b"jp2c")
        + code
    )


def avif(width, height) -> bytes:
    def box(kind, body):
        return struct.pack(">I4s", 8 + len(body), kind) + body

    ispe = box(b"ispe", b"\0\0\0\0" + struct.pack(">II", width, height))
    meta = box(b"meta", b"\0\0\0\0" + box(b"iprp", box(b"ipco", ispe)))
    return box(b"ftyp", b"avif\0\0\0\0avifmif1") + meta


def png_header(width, height) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


BOMBS = {
    "tiff.tif": (tiff_bomb(), "TIFF", 20000, 20000),
    "bigtiff.tif": (bigtiff_bomb(), "TIFF", 30000, 30000),
    "png16.png": (png_header(60000, 60000), "PNG", 60000, 60000),
    "jpeg.jpg": (
        b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xd9",
        "JPEG",
        65535,
        65535,
    ),
    "gif.gif": (b"GIF89a\xff\xff\xff\xff\x00\x00\x00" + b"\0" * 20, "GIF", 65535, 65535),
    "bmp.bmp": (b"BM" + b"\0" * 12 + struct.pack("<IiiHH", 40, 50000, -50000, 1, 24) + b"\0" * 40, "BMP", 50000, 50000),
    "webp.webp": (b"RIFF\0\0\0\0WEBPVP8X" + b"\0" * 8 + b"\xff\x3f\x00\xff\x3f\x00", "WEBP", 16384, 16384),
    "j2k.j2k": (j2k(40000, 40000), "JPEG2000", 40000, 40000),
    "jp2.jp2": (jp2(40000, 40000), "JPEG2000", 40000, 40000),
    "ppm.ppm": (b"P6\n# a comment\n40000 40000\n255\n" + b"\0" * 64, "PNM", 40000, 40000),
    "pam.pam": (b"P7\nWIDTH 40000\nHEIGHT 40000\nDEPTH 3\nMAXVAL 255\nENDHDR\n" + b"\0" * 64, "PAM", 40000, 40000),
    "pfm.pfm": (b"PF\n40000 40000\n-1\n" + b"\0" * 64, "PFM", 40000, 40000),
    "sun.ras": (
        b"\x59\xa6\x6a\x95" + struct.pack(">7I", 40000, 40000, 24, 0, 1, 0, 0) + b"\0" * 64,
        "SUNRASTER",
        40000,
        40000,
    ),
    "hdr.hdr": (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 40000 +X 30000\n" + b"\0" * 64, "HDR", 30000, 40000),
    "avif.avif": (avif(40000, 40000), "AVIF", 40000, 40000),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_header_of_every_decoded_format_gives_its_size(name):
    data, fmt, width, height = BOMBS[name]
    assert (probe(data).format, probe(data).width, probe(data).height) == (fmt, width, height)


def test_bombs_are_refused_before_decoding_under_a_memory_limit(tmp_path):
    for name, (data, *_) in BOMBS.items():
        (tmp_path / name).write_bytes(data)
    result = scanner("features", "--json", "--planner", "estimate", *sorted(tmp_path.iterdir()), timeout=60)
    assert result.returncode == 1 and "Traceback" not in text(result), text(result)
    rows = features_json(result)
    for name, (_, _fmt, width, height) in BOMBS.items():
        assert rows[name]["status"] == "too_large", (name, rows[name])
        assert rows[name]["error"] == f"{width}x{height} px is over the {DEFAULT_MAX_PIXELS:,}-pixel cap (--max-pixels)"
    # The same in a scan, whose workers inherit the memory limit.
    scan = scanner("scan", tmp_path, "--out", tmp_path / "s.h5", "--ext", "*", "--planner", "estimate", timeout=120)
    assert scan.returncode == 1 and "Traceback" not in text(scan), text(scan)


def test_a_header_that_cannot_be_read_is_never_decoded(monkeypatch):
    def never(*args):
        raise AssertionError("decoded blind")

    monkeypatch.setattr(decode.cv2, "imdecode", never)
    unreadable = {
        "TIFF directory without entries": b"II*\0" + struct.pack("<I", 8) + b"\0" * 64,
        "JPEG without a frame header": b"\xff\xd8\xff\xda\x00\x02" + b"\0" * 64 + b"\xff\xd9",
        "AVIF without image size": avif(8, 8).replace(b"ispe", b"xxxx"),
        "JPEG 2000 image with 7 components": j2k(64, 64, components=7),
        "TIFF with 9 samples per pixel": tiff_bomb(64, 64).replace(
            struct.pack("<HHIHH", 277, 3, 1, 1, 0), struct.pack("<HHIHH", 277, 3, 1, 9, 0)
        ),
        "'abc' where a size was expected": b"P6\nabc 12\n255\n" + b"\0" * 64,
    }
    for reason, data in unreadable.items():
        with pytest.raises(UnusableImage) as info:
            decode_bytes(data)
        assert info.value.status == "unreadable" and reason in info.value.reason, (reason, info.value.reason)
    with pytest.raises(UnusableImage) as info:
        decode_bytes(b"\x76\x2f\x31\x01" + b"\0" * 64)  # OpenEXR: this OpenCV build does not read it
    assert (info.value.status, info.value.reason) == ("not_image", "OpenEXR images are not decoded by this build")
    with pytest.raises(UnusableImage) as info:
        decode_bytes(b"just text, no image format at all")
    assert info.value.status == "not_image"


def test_data_that_ends_inside_the_header_or_before_the_strips_is_truncated():
    strips_last = tiff_bomb(64, 48)
    with pytest.raises(UnusableImage) as info:
        decode_bytes(strips_last[:-5])
    assert (info.value.status, info.value.reason) == (
        "truncated",
        "TIFF data ends before the last of its strips or tiles",
    )
    directory_last = cv2.imencode(".tiff", natural_image(64, 64)[..., ::-1])[1].tobytes()  # OpenCV writes it last
    for data, fmt in ((directory_last[: len(directory_last) // 2], "TIFF"), (b"P6\n40000", "PNM")):
        with pytest.raises(UnusableImage) as info:
            decode_bytes(data)
        assert (info.value.status, info.value.reason) == ("truncated", f"{fmt} data ends inside its header")


_OPENCV_LIMIT = """
from scanner.images.limits import use_pixel_cap
assert use_pixel_cap(1000)
from scanner.images.decode import OPENCV_PIXEL_LIMIT, UnusableImage, decode_bytes
import cv2, numpy as np
assert OPENCV_PIXEL_LIMIT == 1000
data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))[1].tobytes()
try:
    decode_bytes(data, max_pixels=10**6)
except UnusableImage as exc:
    print(exc.status, exc.reason)
"""


def test_opencvs_own_limit_is_the_cap_the_command_was_given():
    done = subprocess.run([sys.executable, "-c", _OPENCV_LIMIT], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    status, reason = done.stdout.decode().strip().split(" ", 1)
    assert status == "too_large" and "decoder's limit of 1,000 pixels" in reason
    assert decode.OPENCV_PIXEL_LIMIT == DEFAULT_MAX_PIXELS  # never above the default cap in this process


# --- class 3: decoder warnings about lost data make the row truncated or corrupt, silently -------


def corrupt_files(directory):
    good = jpeg(seed=4, size=(200, 240))
    cut = good[: len(good) // 2] + b"\xff\xd9"  # cut in half, an end-of-image marker appended
    half = len(good) // 2
    damaged = good[:half] + b"\0" * 3000 + good[half:]  # more entropy-coded data than the image holds
    raw = b"".join(b"\0" + row.tobytes() for row in natural_image(40, 48, seed=5))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 48, 40, 8, 2, 0, 0, 0)
    extra = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw + b"\0" * 999))
    files = {
        "cut.jpg": cut,
        "damaged.jpg": damaged,
        "extra.png": extra + chunk(b"IEND", b""),
        "good.jpg": good,
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return files


def test_corrupt_data_is_truncated_or_corrupt_with_the_decoders_words_and_no_noise(tmp_path):
    corrupt_files(tmp_path)
    names = ["cut.jpg", "damaged.jpg", "extra.png", "good.jpg"]
    result = scanner("features", "--json", "--planner", "estimate", *[tmp_path / n for n in names], timeout=60)
    assert result.returncode == 1
    assert unprompted(result.stderr) == b""  # libjpeg's and libpng's warnings never reach the terminal
    rows = features_json(result)
    assert rows["cut.jpg"]["status"] == "truncated"
    assert rows["cut.jpg"]["error"] == "the decoder reports: Corrupt JPEG data: premature end of data segment"
    assert rows["damaged.jpg"]["status"] == "corrupt" and "Corrupt JPEG data" in rows["damaged.jpg"]["error"]
    assert rows["extra.png"]["status"] == "corrupt" and "Too much image data" in rows["extra.png"]["error"]
    assert rows["good.jpg"]["status"] == "ok"
    scan = scanner("scan", tmp_path, "--out", tmp_path / "s.h5", "--planner", "estimate", "-q", timeout=120)
    assert scan.returncode == 1 and unprompted(scan.stderr) == b"", text(scan)


def _limited_json(script: str, *args: str, timeout: float) -> dict:
    """What `script` prints as JSON, run with `args` in a subprocess under the hostile tests' time and memory
    limits."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, timeout=timeout, preexec_fn=limited(MEMORY_GIB)
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


_MARKER_WALKS = r"""
import json, struct, sys
import cv2, numpy as np
from scanner.images.decode import UnusableImage, decode_bytes, probe, jpeg_scans_allowed
from scanner.images.declared import declared

def status(data):
    try:
        decode_bytes(bytearray(data))
    except UnusableImage as exc:
        return [exc.status, exc.reason]
    return ["ok", ""]

out = {}
# millions of standalone markers, and 32 MiB of fill bytes, before any segment
out["soi"] = status(b"\xff\xd8" * (4 << 20) + b"\xff\xd9")
out["fill"] = status(b"\xff\xd8" + b"\xff" * (32 << 20) + b"\xd9")
xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta Iptc4xmpExt:DigitalSourceType='trainedAlgorithmicMedia'/>"
app1 = b"\xff\xe1" + struct.pack(">H", len(xmp) + 2) + xmp
out["declared_after_markers"] = declared(b"\xff\xd8" + b"\xff\xd8" * 20000 + app1 + b"\xff\xd9")
out["declared_after_fill"] = declared(b"\xff\xd8" + b"\xff" * (32 << 20) + app1 + b"\xff\xd9")
out["declared_plain"] = declared(b"\xff\xd8" + app1 + b"\xff\xd9")
# a progressive JPEG whose last scan is repeated 300 times
image = np.full((512, 512), 128, np.uint8)
progressive = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
last_scan = progressive[progressive.rindex(b"\xff\xda") : -2]
out["progressive"] = status(progressive)
out["scans"] = status(progressive[:-2] + last_scan * 300 + b"\xff\xd9")
out["allowed"] = [jpeg_scans_allowed(p) for p in (1, 512 * 512, 4000 * 4000, 100_000_000)]
# TIFF: a tag given twice (libtiff keeps the first), and 65,535 copies of a 1 MiB strip list
tiff_twice = open(sys.argv[1], "rb").read()  # ImageWidth 64, then 9000
out["tiff_twice"] = [probe(tiff_twice).width, status(tiff_twice)[0]]
size, n = 1 << 20, 65535
repeated = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", n) + struct.pack("<HHII", 273, 1, size, 0) * n
out["tiff_repeated"] = status(repeated + b"\0" * (size - len(repeated)))
print(json.dumps(out))
"""


def test_marker_walks_scans_and_repeated_tags_are_bounded(tmp_path):
    """JPEG marker walks count fill-byte runs and standalone markers (a file of them once held the header walk
    and the metadata scan in Python for seconds); a progressive JPEG of too many scans for its size is refused
    before libjpeg spends minutes on them; a repeated TIFF tag is read once, its first copy, as libtiff does
    (each copy of a 1 MiB strip list was converted again: 58 s for a 1 MiB file)."""
    pixels = bytes(64 * 64 * 3)
    tags = [(256, 4, 64), (257, 4, 64), (258, 3, 8), (259, 3, 1), (262, 3, 2), (273, 4, 0), (277, 3, 3)]
    tags += [(278, 4, 64), (279, 4, len(pixels))]
    (tmp_path / "twice.tif").write_bytes(tiff_file([tags[0], (256, 4, 9000), *tags[1:]], pixels))
    out = _limited_json(_MARKER_WALKS, str(tmp_path / "twice.tif"), timeout=60)
    assert out["soi"] == [
        "unreadable",
        "unusable JPEG header: more than 1,048,576 marker segments before the first scan (not decoded)",
    ]
    assert out["fill"][0] == "truncated"
    # the metadata scan ends when its segment budget does, whatever the segments are
    assert out["declared_plain"] == "iptc:trainedAlgorithmicMedia"
    assert out["declared_after_markers"] == ""
    assert out["declared_after_fill"] == "iptc:trainedAlgorithmicMedia"  # one run of fill bytes, one segment
    assert out["progressive"] == ["ok", ""]
    assert out["scans"] == [
        "unreadable",
        "unusable JPEG header: more than 256 scans for 512x512 px (at most 256) (not decoded)",
    ]
    assert out["allowed"] == [256, 256, 67, 32]
    assert out["tiff_twice"] == [64, "ok"]
    assert out["tiff_repeated"] == ["unreadable", "unusable TIFF header: TIFF without tag 256 (not decoded)"]


_AVIF_FRAMES = r"""
import json, struct
import cv2, numpy as np
from scanner.images.decode import UnusableImage, decode_bytes, probe

def status(data):
    try:
        image = decode_bytes(bytearray(data))
    except UnusableImage as exc:
        return [exc.status, exc.reason]
    return ["ok", list(image.pixels.shape)]

out = {}
coded = cv2.imencode(".avif", np.full((2048, 2048, 3), 100, np.uint8), [cv2.IMWRITE_AVIF_SPEED, 10])[1].tobytes()
at = coded.index(b"ispe")
out["lying"] = status(coded[: at + 8] + struct.pack(">II", 64, 64) + coded[at + 16 :])  # declares 64 x 64
rng = np.random.default_rng(0)
image = rng.integers(0, 255, (64, 71, 3), dtype=np.uint8)
out["rgb"] = status(cv2.imencode(".avif", image)[1].tobytes())
out["rgba"] = status(cv2.imencode(".avif", np.dstack([image, np.full((64, 71), 200, np.uint8)]))[1].tobytes())
print(json.dumps(out))
"""


@pytest.mark.skipif(not cv2.haveImageWriter(".avif"), reason="this OpenCV build writes no AVIF")
def test_an_avif_that_codes_more_pixels_than_it_declares_is_never_decoded():
    """libavif decodes the size the AV1 data codes, not the 'ispe' the pixel cap reads: a 1.6 KB file that
    declared 1000 x 1000 px and coded 10240 x 10240 px passed the cap and took 1.4 GB and 5 s to decode (and
    came out ok, cropped). Now every AV1 item's sequence header is read and checked against 'ispe'."""
    out = _limited_json(_AVIF_FRAMES, timeout=120)
    assert out["lying"] == [
        "unreadable",
        "unusable AVIF header: AVIF coding 2048x2048 px where it declares at most 64x64 (not decoded)",
    ]
    assert out["rgb"] == ["ok", [64, 71, 3]]
    assert out["rgba"] == ["ok", [64, 71, 3]]


class _BitWriter:
    def __init__(self):
        self.bits = []

    def f(self, n, value):
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def bytes(self):
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def test_av1_sequence_headers_with_timing_decoder_models_and_operating_points():
    """The sequence header's fields before the frame size, as the AV1 specification (5.5.1) lays them out:
    timing info with an equal picture interval (uvlc), a decoder model, two operating points."""
    from scanner.images.headers import _sequence_header_size

    w = _BitWriter()
    w.f(3, 0)  # seq_profile
    w.f(1, 0)  # still_picture
    w.f(1, 0)  # reduced_still_picture_header
    w.f(1, 1)  # timing_info_present_flag
    w.f(32, 1001)
    w.f(32, 60000)
    w.f(1, 1)  # equal_picture_interval
    w.f(5, 0)  # uvlc: 2 leading zeros ...
    w.bits = w.bits[:-5] + [0, 0, 1, 1, 0]  # ... then 1, then "10": value 2 + 3 = 5
    w.f(1, 1)  # decoder_model_info_present_flag
    w.f(5, 9)  # buffer_delay_length_minus_1: 10-bit delays
    w.f(32, 7)
    w.f(5, 3)
    w.f(5, 4)
    w.f(1, 1)  # initial_display_delay_present_flag
    w.f(5, 1)  # two operating points
    for level in (9, 4):
        w.f(12, 0x101)
        w.f(5, level)
        if level > 7:
            w.f(1, 1)  # seq_tier
        w.f(1, 1)  # decoder_model_present_for_this_op
        w.f(10, 300)
        w.f(10, 200)
        w.f(1, 0)
        w.f(1, 1)  # initial_display_delay_present_for_this_op
        w.f(4, 9)
    w.f(4, 12)  # frame_width_bits_minus_1
    w.f(4, 10)
    w.f(13, 4999)  # max_frame_width_minus_1
    w.f(11, 1999)
    w.f(8, 0)
    data = w.bytes()
    assert _sequence_header_size(data, 0, len(data)) == (5000, 2000)
    reduced = _BitWriter()
    for n, value in ((3, 0), (1, 1), (1, 1), (5, 8), (4, 15), (4, 15), (16, 65535), (16, 0)):
        reduced.f(n, value)
    data = reduced.bytes()
    assert _sequence_header_size(data, 0, len(data)) == (65536, 1)
    with pytest.raises(BadHeader):
        _sequence_header_size(data, 0, 4)  # cut short
