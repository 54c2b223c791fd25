"""Image dimensions from file headers, for every format the decoder reads, without decoding a pixel.

A decompression bomb is a small file whose header asks for a huge image; the only
defence that costs nothing is to read the size from the header and refuse before
the decoder allocates. So every format OpenCV would decode has a parser here,
written for hostile input (every offset and count checked against the data, every
loop bounded by the data's length), and a file whose header cannot be read is
refused rather than decoded blind (scanner.images.decode).

Each parser takes the file's bytes and returns ``Header``, or raises ``BadHeader``
saying why the header cannot be used. JPEG's header (which also gives the chroma
subsampling and quality) is read in scanner.images.decode.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Header text (PNM comments, Radiance lines) is looked for in this many bytes at most.
TEXT_HEADER_BYTES = 1 << 16
# A TIFF tile larger than its image and than this many pixels is refused: libtiff
# allocates a whole tile, so a tiny image with a huge tile is a bomb of its own.
MAX_TILE_PIXELS = 1 << 20
MAX_COMPONENTS = 4  # OpenCV decodes 1 to 4 channels; more only costs memory
# A run of JPEG fill bytes (any number of 0xFF may precede a marker): skipped at once by the marker walks.
JPEG_FILL = re.compile(rb"\xff+")


class BadHeader(ValueError):
    """The header cannot be read, or asks for something the decoder must not be given."""


class CutShort(BadHeader):
    """The data ends inside the header (or before a part of it that the header points to)."""


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    truncated: str | None = None  # why the data stops before what the header says it holds


def _u(data: bytes | bytearray, fmt: str, at: int) -> tuple[int, ...]:
    """struct.unpack_from of an integer format, after checking the data holds it."""
    size = struct.calcsize(fmt)
    if at < 0:
        raise BadHeader("a negative offset")
    if at + size > len(data):
        raise CutShort("header cut short")
    return struct.unpack_from(fmt, data, at)


# --- TIFF (classic and BigTIFF) -----------------------------------------------------------

_TIFF_TYPES = {1: (1, "B"), 3: (2, "H"), 4: (4, "I"), 16: (8, "Q")}  # BYTE, SHORT, LONG, LONG8
_TIFF_WIDTH, _TIFF_LENGTH, _TIFF_BITS, _TIFF_SAMPLES = 256, 257, 258, 277
_TIFF_STRIP_OFFSETS, _TIFF_STRIP_COUNTS = 273, 279
_TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH, _TIFF_TILE_OFFSETS, _TIFF_TILE_COUNTS = 322, 323, 324, 325


def tiff(data: bytes | bytearray) -> Header:
    """The first image file directory (the page OpenCV decodes): size, samples, tiles, and whether the
    strips or tiles it points to lie inside the file."""
    order = "<" if data[:2] == b"II" else ">"
    (magic,) = _u(data, order + "H", 2)
    if magic == 42:
        (ifd,) = _u(data, order + "I", 4)
        count_fmt, entry_size, value_size, entry_fmt, value_at = "H", 12, 4, "HHII", 8
    elif magic == 43:
        offset_size, _ = _u(data, order + "HH", 4)
        if offset_size != 8:
            raise BadHeader("BigTIFF header with an offset size other than 8")
        (ifd,) = _u(data, order + "Q", 8)
        count_fmt, entry_size, value_size, entry_fmt, value_at = "Q", 20, 8, "HHQQ", 12
    else:
        raise BadHeader("not a TIFF header")
    (entries,) = _u(data, order + count_fmt, ifd)
    first = ifd + struct.calcsize(count_fmt)
    if entries == 0:
        raise BadHeader("TIFF directory without entries")
    if first + entries * entry_size > len(data):
        raise CutShort("TIFF directory past the end of the data")
    tags: dict[int, npt.NDArray[np.uint64]] = {}
    for i in range(entries):
        tag, kind, count, value = _u(data, order + entry_fmt, first + i * entry_size)
        if tag in tags:  # a repeated tag: libtiff keeps the first and ignores the others, as this does
            continue
        if tag not in (
            _TIFF_WIDTH,
            _TIFF_LENGTH,
            _TIFF_BITS,
            _TIFF_SAMPLES,
            _TIFF_STRIP_OFFSETS,
            _TIFF_STRIP_COUNTS,
            _TIFF_TILE_WIDTH,
            _TIFF_TILE_LENGTH,
            _TIFF_TILE_OFFSETS,
            _TIFF_TILE_COUNTS,
        ):
            continue
        if kind not in _TIFF_TYPES or count == 0:
            raise BadHeader(f"TIFF tag {tag} of type {kind} with {count} values")
        size, code = _TIFF_TYPES[kind]
        at = first + i * entry_size + value_at if count * size <= value_size else value  # in the entry, or elsewhere
        if at + count * size > len(data):
            raise CutShort(f"TIFF tag {tag} points past the end of the data")
        tags[tag] = np.frombuffer(data, np.dtype(order + code), count, at).astype(np.uint64)

    def one(tag: int, default: int | None = None) -> int:
        if tag in tags:
            return int(tags[tag][0])
        if default is None:
            raise BadHeader(f"TIFF without tag {tag}")
        return default

    width, height = one(_TIFF_WIDTH), one(_TIFF_LENGTH)
    samples, bits = one(_TIFF_SAMPLES, 1), int(tags[_TIFF_BITS].max()) if _TIFF_BITS in tags else 1
    if not 1 <= samples <= MAX_COMPONENTS:
        raise BadHeader(f"TIFF with {samples} samples per pixel (at most {MAX_COMPONENTS} are decoded)")
    if not 1 <= bits <= 64:
        raise BadHeader(f"TIFF with {bits} bits per sample")
    if _TIFF_TILE_WIDTH in tags or _TIFF_TILE_LENGTH in tags:
        tile = one(_TIFF_TILE_WIDTH) * one(_TIFF_TILE_LENGTH)
        if tile > max(width * height, MAX_TILE_PIXELS):
            raise BadHeader(
                f"TIFF tiles of {one(_TIFF_TILE_WIDTH)}x{one(_TIFF_TILE_LENGTH)} px for a {width}x{height} image"
            )
        offsets, counts = tags.get(_TIFF_TILE_OFFSETS), tags.get(_TIFF_TILE_COUNTS)
    else:
        offsets, counts = tags.get(_TIFF_STRIP_OFFSETS), tags.get(_TIFF_STRIP_COUNTS)
    truncated = None
    if offsets is None or counts is None or len(offsets) != len(counts):
        raise BadHeader("TIFF without a consistent list of strips or tiles")
    if len(offsets) and int((offsets + counts).max()) > len(data):
        truncated = "TIFF data ends before the last of its strips or tiles"
    return Header(width, height, truncated)


# --- JPEG 2000 -------------------------------------------------------------------------------


def _boxes(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, content start, content end) of the ISO base media / JP2 boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            (size,) = _u(data, ">Q", pos + 8)
            head = 16
        elif size == 0:
            size = end - pos
        if size < head:
            raise BadHeader(f"box {kind!r} of {size} bytes")
        if pos + size > end:
            raise CutShort(f"box {kind!r} runs past the end of the data")
        yield kind, pos + head, pos + size
        pos += size


def _siz(data: bytes | bytearray, at: int) -> Header:
    """The SIZ segment of a JPEG 2000 codestream starting at `at` (after SOC)."""
    if data[at : at + 4] != b"\xff\x4f\xff\x51":
        raise BadHeader("JPEG 2000 codestream without a SIZ segment")
    _, _, xsiz, ysiz, xo, yo, _, _, _, _, components = _u(data, ">HHIIIIIIIIH", at + 4)
    if not 1 <= components <= MAX_COMPONENTS:
        raise BadHeader(f"JPEG 2000 image with {components} components (at most {MAX_COMPONENTS} are decoded)")
    if xsiz <= xo or ysiz <= yo:
        raise BadHeader("JPEG 2000 image of no size")
    return Header(xsiz - xo, ysiz - yo)


def jpeg2000(data: bytes | bytearray) -> Header:
    if data[:4] == b"\xff\x4f\xff\x51":
        return _siz(data, 0)
    for kind, start, _ in _boxes(data, 0, len(data)):
        if kind == b"jp2c":  # the codestream: its size is what the decoder uses
            return _siz(data, start)
    raise BadHeader("JP2 file without a codestream")


# --- PNM, PAM, PFM ------------------------------------------------------------------------------

_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n\r]*[\n\r])*(\S+)")


def _tokens(data: bytes | bytearray, start: int) -> Iterator[bytes]:
    head = bytes(data[:TEXT_HEADER_BYTES])
    pos = start
    while True:
        match = _PNM_TOKEN.match(head, pos)
        if not match:
            raise CutShort("header cut short") if len(data) <= TEXT_HEADER_BYTES else BadHeader("header too long")
        pos = match.end()
        yield match.group(1)


def _number(token: bytes) -> int:
    if not token.isdigit() or len(token) > 10:
        raise BadHeader(f"{token[:20]!r} where a size was expected")
    return int(token)


def pnm(data: bytes | bytearray) -> Header:
    """P1-P6 and PFM (PF, Pf): the width and height after the magic number."""
    tokens = _tokens(data, 2)
    return Header(_number(next(tokens)), _number(next(tokens)))


def pam(data: bytes | bytearray) -> Header:
    """P7: WIDTH, HEIGHT and DEPTH lines up to ENDHDR."""
    fields: dict[bytes, int] = {}
    tokens = _tokens(data, 2)
    for token in tokens:
        if token == b"ENDHDR":
            break
        if token in (b"WIDTH", b"HEIGHT", b"DEPTH", b"MAXVAL"):
            fields[token] = _number(next(tokens))
    if b"WIDTH" not in fields or b"HEIGHT" not in fields:
        raise BadHeader("PAM header without WIDTH and HEIGHT")
    if not 1 <= fields.get(b"DEPTH", 1) <= MAX_COMPONENTS:
        raise BadHeader(f"PAM of depth {fields[b'DEPTH']} (at most {MAX_COMPONENTS} are decoded)")
    return Header(fields[b"WIDTH"], fields[b"HEIGHT"])


# --- the others ----------------------------------------------------------------------------------


def sun_raster(data: bytes | bytearray) -> Header:
    _, width, height = _u(data, ">III", 0)
    return Header(width, height)


_RADIANCE_SIZE = re.compile(rb"([-+])([XY]) +(\d{1,10}) +([-+])([XY]) +(\d{1,10})")


def radiance(data: bytes | bytearray) -> Header:
    """Radiance HDR: header lines, a blank line, then the resolution line ('-Y H +X W')."""
    head = bytes(data[:TEXT_HEADER_BYTES])
    blank = head.find(b"\n\n")
    if blank < 0:
        if len(data) <= TEXT_HEADER_BYTES:
            raise CutShort("header cut short")
        raise BadHeader("Radiance header without its end (a blank line)")
    match = _RADIANCE_SIZE.match(head, blank + 2)
    if not match or match.group(2) == match.group(5):
        raise BadHeader("Radiance header without a resolution line")
    first, second = int(match.group(3)), int(match.group(6))
    return Header(second, first) if match.group(2) == b"Y" else Header(first, second)


def gif(data: bytes | bytearray) -> Header:
    width, height = _u(data, "<HH", 6)
    return Header(width, height)


def bmp(data: bytes | bytearray) -> Header:
    (header_size,) = _u(data, "<I", 14)
    if header_size == 12:  # OS/2 1.x: 16-bit sizes
        width, height = _u(data, "<HH", 18)
    elif header_size >= 40:
        width, height = _u(data, "<ii", 18)
    else:
        raise BadHeader(f"BMP header of {header_size} bytes")
    if width <= 0:
        raise BadHeader(f"BMP of width {width}")
    return Header(width, abs(height))


def webp(data: bytes | bytearray) -> Header:
    kind = bytes(data[12:16])
    if kind == b"VP8X":  # the canvas
        raw = _u(data, "<6B", 24)
        return Header(1 + (raw[0] | raw[1] << 8 | raw[2] << 16), 1 + (raw[3] | raw[4] << 8 | raw[5] << 16))
    if kind == b"VP8L":
        (bits,) = _u(data, "<I", 21)
        return Header(1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF))
    if kind == b"VP8 ":
        width, height = _u(data, "<HH", 26)
        return Header(width & 0x3FFF, height & 0x3FFF)
    raise BadHeader(f"WebP of unknown kind {kind!r}")


def png(data: bytes | bytearray) -> Header:
    if data[12:16] != b"IHDR":
        raise BadHeader("PNG without IHDR first")
    width, height = _u(data, ">II", 16)
    return Header(width, height)


_AVIF_CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0}  # box type: bytes before its children
MAX_AVIF_ITEMS = 1 << 16  # items of one file (a grid of 256 x 256 tiles)
MAX_AV1_OBUS = 64  # OBUs of an AV1 item looked through for its sequence header (it comes first or second)


def avif(data: bytes | bytearray) -> Header:
    """The size of an AVIF: the largest image spatial extent ('ispe': the primary image, its tiles, its
    alpha), checked against the frame size that each AV1 image item's own sequence header codes.

    libavif decodes the AV1 data at the size the data codes, whatever 'ispe' says: a file that declares
    1000 x 1000 px and codes 16384 x 16384 px would pass a pixel cap read from 'ispe' alone and make the
    decoder allocate gigabytes. So every 'av01' item (found through 'iinf' and 'iloc') has its sequence
    header read, and a coded size larger than every declared one is refused."""
    best: tuple[int, int] | None = None
    coded: list[tuple[int, int]] = []
    av01: set[int] = set()
    places: dict[int, tuple[int, int, int]] = {}  # item: (construction method, offset, length) of its first extent
    idat: tuple[int, int] | None = None
    stack = [(0, len(data), 0)]
    while stack:
        start, end, depth = stack.pop()
        for kind, content, stop in _boxes(data, start, end):
            if kind in _AVIF_CONTAINERS and depth < 4:
                stack.append((content + _AVIF_CONTAINERS[kind], stop, depth + 1))
            elif kind == b"ispe":
                width, height = _u(data, ">II", content + 4)
                if best is None or width * height > best[0] * best[1]:
                    best = (width, height)
            elif kind == b"av1C" and stop - content > 4:  # its configOBUs may hold the sequence header
                coded += _sequence_sizes(data, content + 4, stop)
            elif kind == b"iinf":
                av01 |= _av01_items(data, content, stop)
            elif kind == b"iloc":
                places.update(_item_places(data, content, stop))
            elif kind == b"idat":
                idat = (content, stop)
    if best is None:
        raise BadHeader("AVIF without image size ('ispe') properties")
    for item in sorted(av01):
        if item not in places:
            raise BadHeader(f"AVIF image item {item} without a location")
        method, offset, length = places[item]
        if method == 0:
            start, end = offset, (len(data) if length == 0 else offset + length)
        elif method == 1 and idat is not None:
            start, end = idat[0] + offset, (idat[1] if length == 0 else idat[0] + offset + length)
        else:
            raise BadHeader(f"AVIF image item {item} stored by reference (construction method {method})")
        if end > len(data) or (method == 1 and idat is not None and end > idat[1]):
            raise CutShort(f"AVIF image item {item} runs past the end of the data")
        sizes = _sequence_sizes(data, start, end)
        if not sizes:
            raise BadHeader(f"AVIF image item {item} without an AV1 sequence header in its first OBUs")
        coded += sizes
    for width, height in coded:
        if width > best[0] or height > best[1]:
            raise BadHeader(f"AVIF coding {width}x{height} px where it declares at most {best[0]}x{best[1]}")
    return Header(*best)


def _av01_items(data: bytes | bytearray, content: int, stop: int) -> set[int]:
    """The IDs of the 'av01' items of an 'iinf' box (item info entries of version 2 or 3)."""
    (version,) = _u(data, ">B", content)
    (count,) = _u(data, ">H" if version == 0 else ">I", content + 4)
    if count > MAX_AVIF_ITEMS:
        raise BadHeader(f"AVIF with {count:,} items (at most {MAX_AVIF_ITEMS:,})")
    items = set()
    for kind, at, _ in _boxes(data, content + (6 if version == 0 else 8), stop):
        if kind != b"infe":
            continue
        (entry_version,) = _u(data, ">B", at)
        if entry_version < 2:
            continue  # no item type before version 2
        (item,) = _u(data, ">H" if entry_version == 2 else ">I", at + 4)
        type_at = at + (8 if entry_version == 2 else 10)  # after the item ID and its protection index
        _u(data, ">I", type_at)
        if bytes(data[type_at : type_at + 4]) == b"av01":
            items.add(item)
    return items


def _item_places(data: bytes | bytearray, content: int, stop: int) -> dict[int, tuple[int, int, int]]:
    """Item ID: (construction method, offset, length) of the item's first extent, from an 'iloc' box."""
    version, _, sizes, more = _u(data, ">B3sBB", content)
    offset_size, length_size, base_size = sizes >> 4, sizes & 15, more >> 4
    index_size = more & 15 if version in (1, 2) else 0
    if any(size not in (0, 4, 8) for size in (offset_size, length_size, base_size, index_size)):
        raise BadHeader("AVIF item locations with field sizes other than 0, 4 or 8 bytes")
    at = content + 6
    (count,) = _u(data, ">H" if version < 2 else ">I", at)
    at += 2 if version < 2 else 4
    if count > MAX_AVIF_ITEMS:
        raise BadHeader(f"AVIF with {count:,} item locations (at most {MAX_AVIF_ITEMS:,})")

    def field(size: int) -> int:
        nonlocal at
        if size == 0:
            return 0
        (value,) = _u(data, ">I" if size == 4 else ">Q", at)
        at += size
        return int(value)

    places = {}
    for _ in range(count):
        (item,) = _u(data, ">H" if version < 2 else ">I", at)
        at += 2 if version < 2 else 4
        method = int(_u(data, ">H", at)[0]) & 15 if version in (1, 2) else 0
        at += 2 if version in (1, 2) else 0
        at += 2  # data reference index
        base = field(base_size)
        (extents,) = _u(data, ">H", at)
        at += 2
        first: tuple[int, int] | None = None
        for _ in range(extents):
            field(index_size)
            offset, length = field(offset_size), field(length_size)
            if first is None:
                first = (base + offset, length)
        if at > stop:
            raise CutShort("AVIF item locations run past their box")
        if first is not None and item not in places:
            places[item] = (method, *first)
    return places


def _sequence_sizes(data: bytes | bytearray, start: int, end: int) -> list[tuple[int, int]]:
    """The largest frame size of the first AV1 sequence header among the first MAX_AV1_OBUS OBUs of
    data[start:end] ([] when there is none)."""
    pos = start
    for _ in range(MAX_AV1_OBUS):
        if pos >= end:
            break
        (header,) = _u(data, ">B", pos)
        if header & 0x80:
            raise BadHeader("AV1 data with an invalid OBU header")
        kind, extension, has_size = (header >> 3) & 15, (header >> 2) & 1, (header >> 1) & 1
        pos += 1 + extension
        size = end - pos
        if has_size:
            size, pos = _leb128(data, pos)
        if pos + size > end:
            raise CutShort("AV1 data ends inside an OBU")
        if kind == 1:  # OBU_SEQUENCE_HEADER
            return [_sequence_header_size(data, pos, pos + size)]
        pos += size
    return []


def _leb128(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        (byte,) = _u(data, ">B", pos + i)
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise BadHeader("AV1 OBU size longer than 8 bytes")


class _Bits:
    """An MSB-first bit reader over data[start:end] (the AV1 specification's f(n) and uvlc())."""

    def __init__(self, data: bytes | bytearray, start: int, end: int) -> None:
        self.data, self.pos, self.end = data, start * 8, end * 8

    def f(self, n: int) -> int:
        if self.pos + n > self.end:
            raise CutShort("AV1 sequence header cut short")
        value = 0
        for _ in range(n):
            value = (value << 1) | ((self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def uvlc(self) -> int:
        zeros = 0
        while not self.f(1):
            zeros += 1
            if zeros >= 32:
                raise BadHeader("AV1 sequence header with an invalid variable-length code")
        return self.f(zeros) + (1 << zeros) - 1


def _sequence_header_size(data: bytes | bytearray, start: int, end: int) -> tuple[int, int]:
    """max_frame_width and max_frame_height of an AV1 sequence header OBU (AV1 specification 5.5.1)."""
    bits = _Bits(data, start, end)
    bits.f(3)  # seq_profile
    bits.f(1)  # still_picture
    if bits.f(1):  # reduced_still_picture_header
        bits.f(5)  # seq_level_idx[0]
    else:
        decoder_model = False
        delay_bits = 0
        if bits.f(1):  # timing_info_present_flag
            bits.f(32)  # num_units_in_display_tick
            bits.f(32)  # time_scale
            if bits.f(1):  # equal_picture_interval
                bits.uvlc()  # num_ticks_per_picture_minus_1
            decoder_model = bool(bits.f(1))
            if decoder_model:
                delay_bits = bits.f(5) + 1  # buffer_delay_length_minus_1
                bits.f(32)  # num_units_in_decoding_tick
                bits.f(5)  # buffer_removal_time_length_minus_1
                bits.f(5)  # frame_presentation_time_length_minus_1
        initial_display_delay = bits.f(1)
        for _ in range(bits.f(5) + 1):  # operating points
            bits.f(12)  # operating_point_idc
            if bits.f(5) > 7:  # seq_level_idx
                bits.f(1)  # seq_tier
            if decoder_model and bits.f(1):  # decoder_model_present_for_this_op
                bits.f(delay_bits)  # decoder_buffer_delay
                bits.f(delay_bits)  # encoder_buffer_delay
                bits.f(1)  # low_delay_mode_flag
            if initial_display_delay and bits.f(1):
                bits.f(4)  # initial_display_delay_minus_1
    width_bits, height_bits = bits.f(4) + 1, bits.f(4) + 1
    return bits.f(width_bits) + 1, bits.f(height_bits) + 1


PARSERS: dict[str, Callable[[bytes | bytearray], Header]] = {
    "PNG": png,
    "GIF": gif,
    "BMP": bmp,
    "WEBP": webp,
    "TIFF": tiff,
    "JPEG2000": jpeg2000,
    "PNM": pnm,
    "PFM": pnm,
    "PAM": pam,
    "SUNRASTER": sun_raster,
    "HDR": radiance,
    "AVIF": avif,
}
