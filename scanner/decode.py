"""Reading image files into (H, W, 3) uint8 BGR arrays, with a reason for every failure.

Files are read as bytes and judged by their content, never their extension:
the header gives the true format, the dimensions (so that decompression bombs
are refused before any pixel is decoded) and, for JPEG, the chroma subsampling
and an estimate of the quality (compression is a confound for this detector).
Truncation is also judged from the content: a JPEG must have an end-of-image
marker after its last scan and a PNG must reach its IEND chunk.

OpenCV decodes with IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION: 16-bit images
come out 8-bit, alpha is dropped, CMYK and palette images are converted, and
the EXIF orientation is ignored (it does not change these statistics).
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass

import numpy as np

from scanner.constants import DEFAULT_MAX_PIXELS, MIN_SIDE, Status

# OpenCV reads its own pixel limit once, when loaded; ours is checked from the
# header before decoding, so OpenCV's only has to be above it.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 34))
import cv2

cv2.utils.logging.setLogLevel(
    cv2.utils.logging.LOG_LEVEL_SILENT
)  # corrupt files are reported as statuses, not as stderr noise

_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


@dataclass(frozen=True)
class ImageInfo:
    """What the header says about a file (None where the format does not say)."""

    format: str | None = None
    width: int | None = None
    height: int | None = None
    jpeg_subsampling: str | None = None
    jpeg_quality: int | None = None


class UnusableImage(Exception):
    """A file the method cannot judge: the status to record, why, and what its
    header said (so a refused file still has its format and size on record)."""

    def __init__(self, status: Status, reason: str, info: ImageInfo | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.info = info or ImageInfo()


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # (H, W, 3) uint8, B, G, R
    info: ImageInfo


def sniff_format(data: bytes) -> str | None:
    """The image format from the file's first bytes, or None if not recognised."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or data[:4] == b"\xff\x4f\xff\x51":
        return "JPEG2000"
    if data[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6") and data[2:3].isspace():
        return "PNM"
    if data[:4] == b"\x76\x2f\x31\x01":
        return "EXR"
    if data[:10] in (b"#?RADIANCE", b"#?RGBE\n\n\n\n"[:10]):
        return "HDR"
    return None


# libjpeg's standard luminance quantisation table (quality 50), in zigzag order
# as stored in DQT segments.
_STD_LUMA = np.array(
    [
        16,
        11,
        12,
        14,
        12,
        10,
        16,
        14,
        13,
        14,
        18,
        17,
        16,
        19,
        24,
        40,
        26,
        24,
        22,
        22,
        24,
        49,
        35,
        37,
        29,
        40,
        58,
        51,
        61,
        60,
        57,
        51,
        56,
        55,
        64,
        72,
        92,
        78,
        64,
        68,
        87,
        69,
        55,
        56,
        80,
        109,
        81,
        87,
        95,
        98,
        103,
        104,
        103,
        62,
        77,
        113,
        121,
        112,
        100,
        120,
        92,
        101,
        103,
        99,
    ],
    dtype=np.int64,
)


def _libjpeg_tables() -> np.ndarray:
    """The luminance table libjpeg writes at each quality 1..100 (row q-1)."""
    q = np.arange(1, 101)
    scale = np.where(q < 50, 5000 // q, 200 - 2 * q)
    tables = (_STD_LUMA[None, :] * scale[:, None] + 50) // 100
    return np.clip(tables, 1, 255)


_LIBJPEG_TABLES = _libjpeg_tables()


def estimate_jpeg_quality(luma_table: np.ndarray) -> int:
    """The libjpeg quality (1-100) whose luminance table is closest to this one.

    Exact for files written by libjpeg and its descendants (most encoders); for
    other encoders it is the nearest libjpeg equivalent.
    """
    distance = np.abs(_LIBJPEG_TABLES - luma_table[None, :].astype(np.int64)).sum(axis=1)
    return int(np.argmin(distance)) + 1


_SUBSAMPLING = {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (1, 2): "4:4:0", (4, 1): "4:1:1"}


def _jpeg_header(data: bytes) -> ImageInfo:
    """Walk JPEG marker segments up to the first scan: size, sampling, quality."""
    width = height = None
    subsampling = None
    luma = None
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segment = data[pos + 4 : pos + 2 + length]
        if marker == 0xDB:  # quantisation tables
            off = 0
            while off < len(segment):
                precision, table_id = segment[off] >> 4, segment[off] & 15
                size = 128 if precision else 64
                values = segment[off + 1 : off + 1 + size]
                if table_id == 0 and len(values) == size:
                    dtype = ">u2" if precision else "u1"
                    luma = np.frombuffer(values, dtype=dtype).astype(np.int64)
                off += 1 + size
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and len(segment) >= 6:
            height, width = struct.unpack(">HH", segment[1:5])
            components = segment[5]
            factors = [
                (segment[6 + 3 * c + 1] >> 4, segment[6 + 3 * c + 1] & 15)
                for c in range(components)
                if 6 + 3 * c + 2 < len(segment)
            ]
            if components == 1:
                subsampling = "gray"
            elif components == 3 and len(factors) == 3:
                (h0, v0), (h1, v1) = factors[0], factors[1]
                ratio = (h0 // max(h1, 1), v0 // max(v1, 1))
                subsampling = _SUBSAMPLING.get(ratio, f"{h0}x{v0},{h1}x{v1}")
            elif components == 4:
                subsampling = "cmyk"
        elif marker == 0xDA:  # start of scan: the header is over
            break
        pos += 2 + length
    quality = estimate_jpeg_quality(luma) if luma is not None else None
    return ImageInfo("JPEG", width, height, subsampling, quality)


def probe(data: bytes) -> ImageInfo:
    """Format and dimensions from the header alone (no pixel is decoded)."""
    fmt = sniff_format(data)
    try:
        if fmt == "JPEG":
            return _jpeg_header(data)
        if fmt == "PNG" and len(data) >= 24:
            width, height = struct.unpack(">II", data[16:24])
            return ImageInfo(fmt, width, height)
        if fmt == "GIF" and len(data) >= 10:
            width, height = struct.unpack("<HH", data[6:10])
            return ImageInfo(fmt, width, height)
        if fmt == "BMP" and len(data) >= 26:
            width, height = struct.unpack("<ii", data[18:26])
            return ImageInfo(fmt, abs(width), abs(height))
        if fmt == "WEBP" and len(data) >= 30:
            kind = data[12:16]
            if kind == b"VP8X":
                width = 1 + int.from_bytes(data[24:27], "little")
                height = 1 + int.from_bytes(data[27:30], "little")
                return ImageInfo(fmt, width, height)
            if kind == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return ImageInfo(fmt, 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF))
            if kind == b"VP8 ":
                width, height = struct.unpack("<HH", data[26:30])
                return ImageInfo(fmt, width & 0x3FFF, height & 0x3FFF)
    except (struct.error, IndexError, ValueError):
        pass
    return ImageInfo(fmt)


def _png_complete(data: bytes) -> bool:
    """True when the PNG's chunks run, whole, up to an IEND chunk."""
    pos = 8
    n = len(data)
    while pos + 8 <= n:
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > n:
            return False
        if kind == b"IEND":
            return True
        pos = end
    return False


def _jpeg_complete(data: bytes) -> bool:
    """True when an end-of-image marker follows the last start-of-scan marker.

    Inside entropy-coded data 0xFF is always followed by 0x00 or a restart
    marker, so these two byte pairs cannot occur there by chance.
    """
    last_scan = data.rfind(b"\xff\xda")
    return last_scan >= 0 and data.rfind(b"\xff\xd9") > last_scan


def truncation(data: bytes, fmt: str | None) -> str | None:
    """Why the content is cut short, or None if it looks complete."""
    if fmt == "JPEG" and not _jpeg_complete(data):
        return "JPEG data ends before its end-of-image marker"
    if fmt == "PNG" and not _png_complete(data):
        return "PNG data ends before its IEND chunk"
    return None


def decode_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode an image file's bytes; raises UnusableImage with a status and reason."""
    if not data:
        raise UnusableImage(Status.UNREADABLE, "empty file (0 bytes)")
    info = probe(data)
    if info.format is not None and info.width is not None and info.height is not None:
        _check_size(info, max_pixels)
    cut = truncation(data, info.format)
    if cut:
        raise UnusableImage(Status.TRUNCATED, cut, info)
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _READ_FLAGS)
    if pixels is None:
        if info.format is None:
            raise UnusableImage(Status.NOT_IMAGE, "not an image format OpenCV can decode")
        raise UnusableImage(Status.UNREADABLE, f"corrupt {info.format} data: OpenCV could not decode it", info)
    if pixels.ndim == 2:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    height, width = pixels.shape[:2]
    info = ImageInfo(info.format, width, height, info.jpeg_subsampling, info.jpeg_quality)
    if pixels.dtype != np.uint8:
        raise UnusableImage(Status.UNREADABLE, f"decoded to {pixels.dtype}, expected 8-bit", info)
    _check_size(info, max_pixels)
    return DecodedImage(pixels, info)


def _check_size(info: ImageInfo, max_pixels: int) -> None:
    width, height = info.width or 0, info.height or 0
    if min(width, height) < MIN_SIDE:
        raise UnusableImage(Status.TOO_SMALL, f"{width}x{height} px: needs at least {MIN_SIDE} px a side", info)
    if width * height > max_pixels:
        raise UnusableImage(
            Status.TOO_LARGE, f"{width}x{height} px is over the {max_pixels:,}-pixel cap (--max-pixels)", info
        )


def read_image(path: str | bytes | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Read and decode one file; every failure is an UnusableImage, never an OSError."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        if os.path.islink(path):
            raise UnusableImage(Status.UNREADABLE, "broken symbolic link") from None
        raise UnusableImage(Status.VANISHED, "no such file (moved or deleted?)") from None
    except PermissionError:
        raise UnusableImage(Status.PERMISSION, "permission denied") from None
    except IsADirectoryError:
        raise UnusableImage(Status.NOT_IMAGE, "is a directory") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnusableImage(Status.UNREADABLE, "symbolic link loop") from None
        raise UnusableImage(Status.UNREADABLE, exc.strerror or str(exc)) from None
    return decode_bytes(data, max_pixels)
