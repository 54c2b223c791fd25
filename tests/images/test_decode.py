import io
import os
import struct
import zlib

import cv2
import numpy as np
import pytest
from helpers import natural_image
from PIL import Image

from scanner.features.extract import make_extractor
from scanner.features.measure import features_of_file
from scanner.images.decode import (
    DEFAULT_MAX_PIXELS,
    UnusableImage,
    decode_bytes,
    estimate_jpeg_quality,
    probe,
    read_image,
    sniff_format,
)


def encode(ext: str, bgr: np.ndarray, params=()) -> bytes:
    ok, buf = cv2.imencode(ext, bgr, list(params))
    assert ok
    return buf.tobytes()


def status_of(data: bytes, **kw) -> str:
    with pytest.raises(UnusableImage) as info:
        decode_bytes(data, **kw)
    return info.value.status


@pytest.fixture(scope="module")
def bgr():
    return natural_image(48, 64, seed=1)[..., ::-1].copy()


@pytest.mark.parametrize("quality", [30, 75, 90, 100])
@pytest.mark.parametrize(
    "sampling,name",
    [
        (cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "4:2:0"),
        (cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422, "4:2:2"),
        (cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444, "4:4:4"),
    ],
)
def test_jpeg_header_gives_quality_and_subsampling(bgr, quality, sampling, name):
    data = encode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling])
    image = decode_bytes(data)
    assert image.info.format == "JPEG"
    assert (image.info.width, image.info.height) == (64, 48)
    assert image.info.jpeg_quality == quality
    assert image.info.jpeg_subsampling == name


def test_png_round_trip_is_exact(bgr):
    image = decode_bytes(encode(".png", bgr))
    np.testing.assert_array_equal(image.pixels, bgr)
    assert image.info.format == "PNG" and image.info.jpeg_quality is None


def test_sixteen_bit_png_is_read_as_8_bit(bgr):
    deep = bgr.astype(np.uint16) * 257
    image = decode_bytes(encode(".png", deep))
    np.testing.assert_array_equal(image.pixels, bgr)


def test_alpha_is_dropped(bgr):
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 128, np.uint8)])
    np.testing.assert_array_equal(decode_bytes(encode(".png", bgra)).pixels, bgr)


def test_palette_png_is_expanded(bgr):
    rgb = Image.fromarray(bgr[..., ::-1].copy()).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    pixels = decode_bytes(buf.getvalue()).pixels
    np.testing.assert_array_equal(pixels[..., ::-1], np.asarray(rgb.convert("RGB")))


def test_cmyk_jpeg_is_converted(bgr):
    buf = io.BytesIO()
    Image.fromarray(bgr[..., ::-1].copy()).convert("CMYK").save(buf, format="JPEG", quality=95)
    image = decode_bytes(buf.getvalue())
    assert image.pixels.shape == bgr.shape
    assert image.info.jpeg_subsampling == "cmyk"
    assert np.abs(image.pixels.astype(int) - bgr).mean() < 12


@pytest.mark.parametrize("ext,fmt", [(".bmp", "BMP"), (".webp", "WEBP"), (".tiff", "TIFF"), (".ppm", "PNM")])
def test_other_formats(bgr, ext, fmt):
    data = encode(ext, bgr)
    image = decode_bytes(data)
    assert image.info.format == fmt
    assert image.pixels.shape == bgr.shape
    assert sniff_format(data) == fmt


def test_format_is_judged_by_content_not_extension(bgr, tmp_path):
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(encode(".png", bgr))
    assert read_image(path).info.format == "PNG"


@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_truncated_jpeg(bgr, fraction):
    data = encode(".jpg", bgr)
    assert status_of(data[: int(len(data) * fraction)]) == "truncated"


def test_jpeg_missing_only_its_end_marker_is_truncated(bgr):
    data = encode(".jpg", bgr)
    assert data.endswith(b"\xff\xd9")
    assert status_of(data[:-2]) == "truncated"


def test_jpeg_with_trailing_bytes_is_fine(bgr):
    assert decode_bytes(encode(".jpg", bgr) + b"\x00" * 16).pixels.shape == bgr.shape


@pytest.mark.parametrize("cut", [30, -12, -1])
def test_truncated_png(bgr, cut):
    data = encode(".png", bgr)
    assert status_of(data[:cut]) == "truncated"


def test_corrupt_jpeg_body_is_unreadable_or_decodes(bgr):
    data = bytearray(encode(".jpg", bgr))
    data[20:200] = b"\x00" * 180  # wreck the tables
    try:
        decode_bytes(bytes(data))
    except UnusableImage as exc:
        assert exc.status == "unreadable"


def test_empty_and_non_images():
    assert status_of(b"") == "unreadable"
    assert status_of(b"just some text, not pixels\n" * 10) == "not_image"


def test_too_small(bgr):
    assert status_of(encode(".png", bgr[:1, :1])) == "too_small"
    assert status_of(encode(".png", bgr[:, :7])) == "too_small"


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims a size, with a tiny IDAT: a decompression bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def test_huge_dimensions_are_refused_before_decoding():
    data = png_header_only(100_000, 100_000)
    assert probe(data).width == 100_000
    assert status_of(data) == "too_large"


def test_pixel_cap_is_settable(bgr):
    data = encode(".png", bgr)
    assert status_of(data, max_pixels=48 * 64 - 1) == "too_large"
    assert decode_bytes(data, max_pixels=48 * 64).pixels.shape == bgr.shape
    assert DEFAULT_MAX_PIXELS == 100_000_000


def test_quality_estimate_of_nonstandard_table_is_nearest():
    table = np.full(64, 1)
    assert estimate_jpeg_quality(table) == 100


def test_file_errors_become_statuses(tmp_path, bgr):
    with pytest.raises(UnusableImage) as info:
        read_image(tmp_path / "missing.png")
    assert info.value.status == "vanished"
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(UnusableImage) as info:
        read_image(tmp_path / "dangling.png")
    assert info.value.status == "unreadable" and "broken symbolic link" in info.value.reason
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    with pytest.raises(UnusableImage) as info:
        read_image(tmp_path / "loop_a")
    assert info.value.status == "unreadable" and "loop" in info.value.reason
    with pytest.raises(UnusableImage) as info:
        read_image(tmp_path)
    assert info.value.status == "not_image"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied(tmp_path, bgr):
    path = tmp_path / "secret.png"
    path.write_bytes(encode(".png", bgr))
    path.chmod(0)
    with pytest.raises(UnusableImage) as info:
        read_image(path)
    assert info.value.status == "permission"


def test_features_of_file_reports_grey_and_ok(tmp_path, bgr):
    ex = make_extractor(planner="estimate")
    grey = tmp_path / "grey.png"
    grey.write_bytes(encode(".png", np.repeat(bgr[..., :1], 3, axis=2)))
    colour = tmp_path / "colour.png"
    colour.write_bytes(encode(".png", bgr))
    g = features_of_file(grey, ex)
    c = features_of_file(colour, ex)
    assert (g.status, g.features) == ("grayscale", None)
    assert c.status == "ok" and c.features.shape == (6,) and c.info.width == 64
    np.testing.assert_array_equal(c.features, ex.from_bgr(bgr))


def test_refused_files_keep_their_header_facts(bgr, tmp_path):
    with pytest.raises(UnusableImage) as info:
        decode_bytes(png_header_only(100_000, 90_000))
    assert (info.value.info.format, info.value.info.width, info.value.info.height) == ("PNG", 100_000, 90_000)
    data = encode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])
    with pytest.raises(UnusableImage) as info:
        decode_bytes(data[: len(data) // 2])
    assert info.value.status == "truncated"
    assert (info.value.info.format, info.value.info.width, info.value.info.jpeg_quality) == ("JPEG", 64, 80)
    thin = tmp_path / "thin.img"
    thin.write_bytes(encode(".png", bgr[:4]))
    result = features_of_file(thin, make_extractor(planner="estimate"))
    assert (result.status, result.info.format, result.info.height, result.info.width) == ("too_small", "PNG", 4, 64)
