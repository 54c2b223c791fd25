"""Reading image files into (H, W, 3) uint8 BGR arrays, with a reason for every failure.

Files are read through scanner.io.safeio (regular files only, never blocking, never
more than ``max_bytes``) and judged by their content, never their extension: the
header gives the true format, the dimensions (so that decompression bombs are
refused before any pixel is decoded; scanner.images.headers reads them for every format
the decoder accepts, and a file whose header cannot be read is refused, never
decoded blind) and, for JPEG, the chroma subsampling and an estimate of the
quality (compression is a confound for this detector). Truncation is also judged
from the content: a JPEG must have an end-of-image marker after its last scan, a
PNG must reach its IEND chunk, a TIFF's strips must lie inside the file.

What the C decoders write on stderr while decoding (libjpeg's "Corrupt JPEG data:
premature end of data segment", libpng's warnings) is captured, never shown: a
message saying that data is missing makes the file ``truncated``, one saying that
data is damaged makes it ``corrupt``, with the message as the reason.

OpenCV decodes with IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION: 16-bit images
come out 8-bit, alpha is dropped, CMYK and palette images are converted, and
the EXIF orientation is ignored (it does not change these statistics).
"""

from __future__ import annotations

import errno
import os
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scanner.core.constants import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, MIN_SIDE, Status
from scanner.images.headers import JPEG_FILL, PARSERS, BadHeader, CutShort
from scanner.images.limits import PIXEL_LIMIT_VARIABLE
from scanner.io import safeio


def _opencv_pixel_limit() -> int:
    """OpenCV's own pixel limit, which it reads once, when it loads.

    It is kept at the tool's cap: the default cap, or the cap a command asked
    for before the decoder loaded (scanner.images.limits.use_pixel_cap). Our header
    check comes first; this one is OpenCV's second look at the size, from its own
    parse of the header.
    """
    try:
        value = int(os.environ.get(PIXEL_LIMIT_VARIABLE, ""))
    except ValueError:
        value = 0
    if value < 1:
        value = DEFAULT_MAX_PIXELS
        os.environ[PIXEL_LIMIT_VARIABLE] = str(value)
    return value


OPENCV_PIXEL_LIMIT = _opencv_pixel_limit()
import cv2  # noqa: E402 - after its pixel limit is set

cv2.utils.logging.setLogLevel(
    cv2.utils.logging.LOG_LEVEL_SILENT
)  # corrupt files are reported as statuses, not as stderr noise

_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION

Data = bytes | bytearray


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
    pixels: npt.NDArray[np.uint8]  # (H, W, 3) uint8, B, G, R
    info: ImageInfo


# Formats recognised by content but not decoded by this OpenCV build: refused, never handed over.
NOT_DECODED = {"EXR": "OpenEXR"}


def sniff_format(data: Data) -> str | None:
    """The image format from the file's first bytes, or None if not recognised.

    These are the signatures OpenCV's decoders accept; bytes that match none of
    them are never given to the decoder.
    """
    head = bytes(data[:32])
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or head[:4] == b"\xff\x4f\xff\x51":
        return "JPEG2000"
    if head[:1] == b"P" and head[2:3].isspace():
        kind = head[1:2]
        if kind in b"123456":
            return "PNM"
        if kind == b"7":
            return "PAM"
        if kind in (b"F", b"f"):
            return "PFM"
    if head[:4] == b"\x59\xa6\x6a\x95":
        return "SUNRASTER"
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        return "HDR"
    if head[:4] == b"\x76\x2f\x31\x01":
        return "EXR"
    if head[4:8] == b"ftyp" and _avif_brand(data):
        return "AVIF"
    return None


def _avif_brand(data: Data) -> bool:
    """True when the file type box lists the AVIF brands (as libavif checks)."""
    (size,) = struct.unpack_from(">I", data, 0)
    brands = bytes(data[8 : min(size, len(data), 4096)])
    return any(brands[i : i + 4] in (b"avif", b"avis") for i in range(0, len(brands) - 3, 4))


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


def _libjpeg_tables() -> npt.NDArray[np.int64]:
    """The luminance table libjpeg writes at each quality 1..100 (row q-1)."""
    q = np.arange(1, 101)
    scale = np.where(q < 50, 5000 // q, 200 - 2 * q)
    tables = (_STD_LUMA[None, :] * scale[:, None] + 50) // 100
    return np.clip(tables, 1, 255)


_LIBJPEG_TABLES = _libjpeg_tables()


def estimate_jpeg_quality(luma_table: npt.NDArray[np.int64]) -> int:
    """The libjpeg quality (1-100) whose luminance table is closest to this one.

    Exact for files written by libjpeg and its descendants (most encoders); for
    other encoders it is the nearest libjpeg equivalent.
    """
    distance = np.abs(_LIBJPEG_TABLES - luma_table[None, :].astype(np.int64)).sum(axis=1)
    return int(np.argmin(distance)) + 1


# A collection's JPEGs share a few luminance tables: their qualities, by the table's bytes and precision.
_QUALITIES: dict[tuple[bytes, int], int] = {}
_QUALITIES_KEPT = 1024


def _quality_of_table(values: bytes, precision: int) -> int:
    """estimate_jpeg_quality of a DQT table as stored (8-bit, or 16-bit big-endian when precision is 1)."""
    key = (values, precision)
    quality = _QUALITIES.get(key)
    if quality is None:
        table = np.frombuffer(values, dtype=">u2" if precision else "u1").astype(np.int64)
        quality = estimate_jpeg_quality(table)
        if len(_QUALITIES) >= _QUALITIES_KEPT:
            _QUALITIES.clear()
        _QUALITIES[key] = quality
    return quality


_SUBSAMPLING = {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (1, 2): "4:4:0", (4, 1): "4:1:1"}


# Segments before the first scan (a fill-byte run or standalone marker counts one): real files have tens to
# thousands; 10^8 two-byte markers would hold this walk in Python for a minute.
MAX_JPEG_SEGMENTS = 1 << 20
# libjpeg goes over the whole image once a scan (6.5 ns a pixel a scan: 2,000 scans of 8000 x 8000 took 289 s),
# so scans x pixels <= JPEG_SCAN_PIXELS, within 32 (a progressive image and its MPF previews) to 256 scans.
JPEG_SCAN_PIXELS, MIN_JPEG_SCANS, MAX_JPEG_SCANS = 1 << 30, 32, 256


def _jpeg_header(data: Data) -> ImageInfo:
    """Walk JPEG marker segments up to the first scan: size, sampling, quality (BadHeader past MAX_JPEG_SEGMENTS)."""
    width = height = None
    subsampling = None
    quality = None
    pos = 2
    n = len(data)
    walked = 0
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            break
        walked += 1
        if walked > MAX_JPEG_SEGMENTS:
            raise BadHeader(f"more than {MAX_JPEG_SEGMENTS:,} marker segments before the first scan")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill bytes: a run of them is skipped at once
            match = JPEG_FILL.match(data, pos)
            assert match is not None
            pos = match.end() - 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = (data[pos + 2] << 8) | data[pos + 3]
        if marker == 0xDB:  # quantisation tables
            segment = data[pos + 4 : pos + 2 + length]
            off = 0
            while off < len(segment):
                precision, table_id = segment[off] >> 4, segment[off] & 15
                size = 128 if precision else 64
                values = bytes(segment[off + 1 : off + 1 + size])
                if table_id == 0 and len(values) == size:
                    quality = _quality_of_table(values, precision)
                off += 1 + size
        elif marker == 0xDA:  # start of scan: the header is over
            break
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header
            segment = data[pos + 4 : pos + 2 + length]
            if len(segment) >= 6:
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
        pos += 2 + length
    return ImageInfo("JPEG", width, height, subsampling, quality)


def _header(data: Data) -> tuple[ImageInfo, str | None, str | None]:
    """The header's facts, why it cannot be used (None if it can), and why the data is cut short (None if not)."""
    fmt = sniff_format(data)
    if fmt is None or fmt in NOT_DECODED:
        return ImageInfo(fmt), None, None
    if fmt == "JPEG":
        try:
            info = _jpeg_header(data)
        except BadHeader as exc:
            return ImageInfo(fmt), str(exc), None
        cut = None if _jpeg_complete(data) else "JPEG data ends before its end-of-image marker"
        if (info.width is None or info.height is None) and not cut:
            return info, "JPEG without a frame header before its first scan", None
        allowed = jpeg_scans_allowed((info.width or 0) * (info.height or 0))
        if _more_scans_than(data, allowed):
            return info, f"more than {allowed} scans for {info.width}x{info.height} px (at most {allowed})", cut
        return info, None, cut
    try:
        header = PARSERS[fmt](data)
    except CutShort:
        return ImageInfo(fmt), None, f"{fmt} data ends inside its header"
    except (BadHeader, struct.error, IndexError, ValueError) as exc:
        return ImageInfo(fmt), str(exc) or "unreadable header", None
    cut = header.truncated
    if fmt == "PNG" and not _png_complete(data):
        cut = "PNG data ends before its IEND chunk"
    return ImageInfo(fmt, header.width, header.height), None, cut


def probe(data: Data) -> ImageInfo:
    """Format and dimensions from the header alone (no pixel is decoded; None where unreadable)."""
    return _header(data)[0]


def _png_complete(data: Data) -> bool:
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


def jpeg_scans_allowed(pixels: int) -> int:  # the most scans a JPEG of this many pixels is decoded with
    return max(MIN_JPEG_SCANS, min(MAX_JPEG_SCANS, JPEG_SCAN_PIXELS // max(pixels, 1)))


def _more_scans_than(data: Data, most: int) -> bool:
    """More than `most` start-of-scan markers? (FF DA cannot occur in entropy-coded data, as FF 00 can.)"""
    pos = data.find(b"\xff\xda")
    for _ in range(most):
        if pos < 0:
            return False
        pos = data.find(b"\xff\xda", pos + 2)
    return pos >= 0


def _jpeg_complete(data: Data) -> bool:
    """True when an end-of-image marker follows the last start-of-scan marker.

    Inside entropy-coded data 0xFF is always followed by 0x00 or a restart
    marker, so these two byte pairs cannot occur there by chance.
    """
    last_scan = data.rfind(b"\xff\xda")
    return last_scan >= 0 and data.rfind(b"\xff\xd9") > last_scan


# --- what the decoders say --------------------------------------------------------------------

# Decoder messages that mean pixel data is missing (truncated) or damaged (corrupt).
# libjpeg prints the first warning of each image; libpng prefixes its own.
_MISSING = re.compile(r"premature end|not enough image data|truncated|unexpected end", re.IGNORECASE)
_DAMAGED = re.compile(
    r"corrupt jpeg data|invalid sos parameters|inconsistent progression|unknown adobe color transform"
    r"|too many scanlines|too much image data|extra compressed data|IDAT: CRC error|damaged|bad huffman|bad arithmetic",
    re.IGNORECASE,
)
# libpng's warnings about a text chunk (a zTXt or iTXt over libpng's own inflate bound says "truncated"): the
# metadata is cut, no pixel is lost (scanner.images.declared reads what files declare, bounded, on its own).
_TEXT_CHUNK = re.compile(r"libpng warning: [tiz]TXt: ", re.IGNORECASE)
MESSAGE_BYTES = 1 << 16  # what is kept of one decode's messages

_capture_lock = threading.Lock()
_capture: tuple[int, int] | None = None  # (process id, descriptor): one capture file per process


def _capture_fd() -> int:
    global _capture
    if _capture is None or _capture[0] != os.getpid():
        try:
            fd = os.memfd_create("scanner-decoder-messages", os.MFD_CLOEXEC)
        except (AttributeError, OSError):  # pragma: no cover - systems without memfd
            fd, name = tempfile.mkstemp(prefix="scanner-decoder-")
            os.unlink(name)
        _capture = (os.getpid(), fd)
    return _capture[1]


@contextmanager
def decoder_messages() -> Iterator[list[str]]:
    """Capture what C libraries write on stderr (file descriptor 2) inside the block, instead of showing it.

    The list it gives is filled with the captured lines when the block ends. The
    decoders write on the descriptor, below Python, so the descriptor itself is
    pointed at an in-memory file for the duration; a lock keeps two threads of
    one process from doing so at once.
    """
    messages: list[str] = []
    with _capture_lock:
        fd = _capture_fd()
        for stream in (sys.stderr, sys.__stderr__):
            if stream is not None:
                with suppress(OSError, ValueError):
                    stream.flush()
        try:
            saved: int | None = os.dup(2)
        except OSError:
            saved = None
        os.dup2(fd, 2)
        try:
            yield messages
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
            else:  # pragma: no cover - stderr was closed
                os.close(2)
            size = os.fstat(fd).st_size
            text = os.pread(fd, min(size, MESSAGE_BYTES), 0) if size else b""
            if size:
                os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            messages.extend(line.strip() for line in text.decode("utf-8", "replace").splitlines() if line.strip())


def judge_messages(messages: list[str]) -> tuple[Status, str] | None:
    """The status and reason that decoder messages call for, or None if they report nothing lost."""
    for pattern, status in ((_MISSING, Status.TRUNCATED), (_DAMAGED, Status.CORRUPT)):
        for message in messages:
            if pattern.search(message) and not _TEXT_CHUNK.match(message):
                return status, f"the decoder reports: {message}"
    return None


def _imdecode(data: Data, info: ImageInfo) -> npt.NDArray[Any]:
    """OpenCV's decode of the bytes (of whatever dtype: the caller checks it), its messages captured;
    UnusableImage when it fails."""
    with decoder_messages() as messages:
        try:
            pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _READ_FLAGS)
            error = ""
        except cv2.error as exc:
            pixels, error = None, str(exc).strip().splitlines()[-1] if str(exc).strip() else "decoder error"
    if pixels is None:
        said = messages[-1] if messages else error
        if "CV_IO_MAX_IMAGE_PIXELS" in error or "CV_IO_MAX_IMAGE_PIXELS" in said:
            raise UnusableImage(
                Status.TOO_LARGE,
                f"over the decoder's own limit of {OPENCV_PIXEL_LIMIT:,} pixels ({PIXEL_LIMIT_VARIABLE})",
                info,
            )
        detail = f": {said}" if said else ""
        raise UnusableImage(
            Status.UNREADABLE, f"corrupt {info.format} data: the decoder could not read it{detail}", info
        )
    judged = judge_messages(messages)
    if judged is not None:
        raise UnusableImage(judged[0], judged[1], info)
    return pixels


def decode_bytes(data: Data, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode an image file's bytes; raises UnusableImage with a status and reason."""
    if not data:
        raise UnusableImage(Status.UNREADABLE, "empty file (0 bytes)")
    info, problem, cut = _header(data)
    if info.format is None:
        raise UnusableImage(Status.NOT_IMAGE, "not an image format this tool decodes")
    if info.format in NOT_DECODED:
        raise UnusableImage(Status.NOT_IMAGE, f"{NOT_DECODED[info.format]} images are not decoded by this build", info)
    if problem is not None:
        raise UnusableImage(Status.UNREADABLE, f"unusable {info.format} header: {problem} (not decoded)", info)
    if cut and (info.width is None or info.height is None):
        raise UnusableImage(Status.TRUNCATED, cut, info)
    _check_size(info, max_pixels)
    if cut:
        raise UnusableImage(Status.TRUNCATED, cut, info)
    pixels = _imdecode(data, info)
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
    if width * height > OPENCV_PIXEL_LIMIT:
        raise UnusableImage(
            Status.TOO_LARGE,
            f"{width}x{height} px is over the decoder's limit of {OPENCV_PIXEL_LIMIT:,} pixels, fixed when it "
            f"loaded ({PIXEL_LIMIT_VARIABLE}; the command line sets it from --max-pixels)",
            info,
        )


def read_file(path: safeio.AnyPath, max_bytes: int = DEFAULT_MAX_BYTES, *, follow: bool = True) -> Data:
    """A file's bytes through scanner.io.safeio; every failure an UnusableImage with its status."""
    try:
        return safeio.read_bounded(path, max_bytes, follow=follow)
    except safeio.NotRegularFile as exc:
        raise UnusableImage(Status.NOT_IMAGE, safeio.not_regular(exc.kind)) from None
    except safeio.TooManyBytes as exc:
        raise UnusableImage(
            Status.TOO_LARGE, f"{exc.size:,} bytes is over the {exc.cap:,}-byte cap (--max-bytes): not read"
        ) from None
    except FileNotFoundError:
        if os.path.islink(path):
            raise UnusableImage(Status.UNREADABLE, "broken symbolic link") from None
        raise UnusableImage(Status.VANISHED, "no such file (moved or deleted?)") from None
    except PermissionError:
        raise UnusableImage(Status.PERMISSION, "permission denied") from None
    except OSError as exc:
        raise UnusableImage(Status.UNREADABLE, os_reason(exc)) from None


def os_reason(exc: OSError) -> str:
    """Why the system would not give a file, in words (the walk and the reader say it alike)."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno == errno.ENAMETOOLONG:
        return safeio.PATH_TOO_LONG
    return exc.strerror or str(exc)


def read_image(
    path: safeio.AnyPath,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    follow: bool = True,
) -> DecodedImage:
    """Read and decode one file; every failure is an UnusableImage, never an OSError.

    follow=False refuses a symbolic link in the path's last component (the scan
    uses it for files it found as regular files when links are not followed).
    """
    return decode_bytes(read_file(path, max_bytes, follow=follow), max_pixels)
