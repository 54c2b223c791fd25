"""What a file declares about its own making: C2PA manifests, IPTC's digital source type, generator text.

Many generators now say what they are: a C2PA manifest store (a JUMBF superbox
labelled ``c2pa``: JPEG APP11 segments, PNG's ``caBX`` chunk, WebP's ``C2PA``
chunk), IPTC's DigitalSourceType in XMP (``trainedAlgorithmicMedia``, ...), the
text chunks that generator front ends write into PNG files (``parameters``,
``prompt``, ``workflow``, ...), or EXIF's Software tag naming a generator.
``declared(data)`` reads those from the bytes already read for decoding and
returns them as one string: the declarations joined with ';' in a fixed order
(``c2pa;iptc:trainedAlgorithmicMedia;png-text:parameters``), '' when nothing.

The scan itself is presence detection: ``c2pa`` says a manifest store is there.
With validate=True (what a scan asks for) and the optional extra installed, the
store is then validated by the official bindings (``scanner.images.c2pa_validation``)
from the same bytes, and ``c2pa`` becomes ``c2pa:trusted``, ``c2pa:valid`` or
``c2pa:invalid``, with the IPTC digital source type its actions assert as
``iptc:VALUE`` (the same fact as XMP's, one token). Nothing is followed out of the
file (an XMP reference to another resource is text like any other; the bindings
never fetch). The scan is written for hostile input and bounded (``Budget``): at
most MAX_METADATA_BYTES of segments or chunks looked into, MAX_SEGMENTS walked,
MAX_INFLATED bytes out of zlib per chunk (never an unbounded decompress) and
MAX_INFLATED_TOTAL per file, JUMBF boxes nested MAX_JUMBF_DEPTH deep and
MAX_JUMBF_BOXES of them, and MAX_SECONDS of time. Whatever is malformed,
truncated, huge or nested past a bound ends the scan with what was found so far
(and a store found by a scan that ended so, or one over MAX_MANIFEST_BYTES, is not
validated); ``declared`` never raises.
"""

from __future__ import annotations

import re
import struct
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from scanner.images import c2pa_validation
from scanner.images.c2pa_validation import MAX_MANIFEST_BYTES
from scanner.images.headers import JPEG_FILL

MAX_METADATA_BYTES = 8 << 20  # bytes of the segments / chunks looked into, in all (those skipped cost none)
MAX_SEGMENTS = 16384  # JPEG segments, PNG chunks, RIFF chunks walked (a 128 MiB PNG of 8 KiB IDAT chunks)
MAX_INFLATED = 1 << 20  # bytes out of zlib for one compressed chunk
MAX_INFLATED_TOTAL = 4 << 20  # bytes out of zlib for one file
MAX_XMP_BYTES = 1 << 20  # bytes of one XMP packet searched
MAX_JUMBF_DEPTH = 8  # superboxes inside superboxes
MAX_JUMBF_BOXES = 1024  # boxes of one file's JUMBF looked at
MAX_IFD_ENTRIES = 1024  # entries of EXIF's IFD0 read
MAX_SOFTWARE_BYTES = 256  # of EXIF's Software string
MAX_SECONDS = 0.5  # the whole scan of one file

C2PA = "c2pa"
# IPTC's digital source types that say a machine made the image (https://cv.iptc.org/newscodes/digitalsourcetype/)
IPTC_SYNTHETIC = (
    "trainedAlgorithmicMedia",
    "compositeWithTrainedAlgorithmicMedia",
    "compositeSynthetic",
    "algorithmicMedia",
)
# PNG text keywords that generator front ends write (AUTOMATIC1111 and Forge: parameters; ComfyUI: prompt and
# workflow; InvokeAI: Dream, sd-metadata, invokeai_metadata).
PNG_TEXT_KEYWORDS = ("parameters", "prompt", "workflow", "Dream", "sd-metadata", "invokeai_metadata")
# EXIF Software values naming a generator: the name recorded, and the words that name it (case-insensitive,
# whole words). The one list of known generators.
GENERATORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Stable Diffusion", ("stable diffusion", "stable-diffusion", "stablediffusion", "sdxl")),
    ("Midjourney", ("midjourney",)),
    ("DALL-E", ("dall-e", "dall·e", "dalle")),
    ("Adobe Firefly", ("firefly",)),
    ("ComfyUI", ("comfyui",)),
    ("Automatic1111", ("automatic1111", "a1111")),
    ("NovelAI", ("novelai",)),
    ("Imagen", ("imagen",)),
    ("InvokeAI", ("invokeai",)),
    ("Fooocus", ("fooocus",)),
    ("DreamStudio", ("dreamstudio",)),
    ("Leonardo.Ai", ("leonardo.ai",)),
    ("Ideogram", ("ideogram",)),
    ("Craiyon", ("craiyon",)),
)
_GENERATOR_PATTERNS = tuple(
    (name, re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(w) for w in words) + r")(?![a-z0-9])", re.IGNORECASE))
    for name, words in GENERATORS
)

# The declarations that say a machine made the image. A C2PA manifest alone does not: cameras and editors
# sign photographs too; one that asserts a synthetic source type adds its iptc:VALUE (with the c2pa extra).
GENERATOR_KINDS = ("iptc:", "exif-software:", "png-text:")


def generator_declarations(declared: str) -> list[str]:
    """The declarations of a `declared` value (tokens joined with ';') that say a generator made the file."""
    return [token for token in declared.split(";") if token.startswith(GENERATOR_KINDS)]


# The fixed order of declarations in the column: kind, then the order of the lists above.
_ORDER: dict[str, int] = {
    C2PA: 0,
    **{token: 0 for token in c2pa_validation.TOKENS},  # a validated store: in the place of c2pa
    **{f"iptc:{v}": 1 + i for i, v in enumerate(IPTC_SYNTHETIC)},
    **{f"exif-software:{name}": 100 + i for i, (name, _) in enumerate(GENERATORS)},
    **{f"png-text:{k}": 200 + i for i, k in enumerate(PNG_TEXT_KEYWORDS)},
}

_XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\0"
_XMP_EXTENSION_APP1 = b"http://ns.adobe.com/xmp/extension/\0"
_XMP_KEYWORD = b"XML:com.adobe.xmp"
_VALUES = "|".join(sorted(IPTC_SYNTHETIC, key=len, reverse=True))  # the longest first
_CANONICAL = {v.lower(): v for v in IPTC_SYNTHETIC}
# The IPTC term's URI, or the property DigitalSourceType with a bare value (attribute or element).
_IPTC_URI = re.compile(rb"cv\.iptc\.org/newscodes/digitalsourcetype/(" + _VALUES.encode() + rb")(?![A-Za-z])", re.I)
_IPTC_PROPERTY = re.compile(
    rb"DigitalSourceType\s*(?:=\s*[\"']|>)\s*(" + _VALUES.encode() + rb")(?![A-Za-z])", re.IGNORECASE
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _OutOfBudget(Exception):
    """A bound is reached: the scan ends with what it found."""


@dataclass
class Budget:
    """What one file's scan may still spend."""

    metadata_bytes: int = MAX_METADATA_BYTES
    segments: int = MAX_SEGMENTS
    inflated: int = MAX_INFLATED_TOTAL
    jumbf_boxes: int = MAX_JUMBF_BOXES
    seconds: float = MAX_SECONDS
    c2pa_bytes: int = 0  # spent, not left: the bytes of the segments or chunks that may hold a manifest store
    _deadline: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.seconds

    def segment(self, length: int = 0) -> None:
        """One more segment or chunk walked, `length` bytes of it looked into."""
        self.segments -= 1
        self.metadata_bytes -= max(length, 0)
        if self.segments < 0 or self.metadata_bytes < 0 or time.monotonic() > self._deadline:
            raise _OutOfBudget

    def box(self) -> None:
        self.jumbf_boxes -= 1
        if self.jumbf_boxes < 0:
            raise _OutOfBudget


def declared(data: bytes | bytearray | memoryview, budget: Budget | None = None, *, validate: bool = False) -> str:
    """The declarations of a file's metadata, joined with ';' in a fixed order; '' when none. Never raises:
    malformed or hostile metadata ends the scan with what was found before it.

    validate=True: a C2PA manifest store found by a whole scan, of MAX_MANIFEST_BYTES at most, is validated
    when the optional extra is installed (c2pa -> c2pa:trusted, c2pa:valid or c2pa:invalid); else it stays c2pa.
    """
    found: set[str] = set()
    budget = budget or Budget()
    whole, mime = False, ""
    try:
        view = memoryview(data)
        scan, mime = _scanner_of(view)
        if scan is not None:
            scan(view, found, budget)
        whole = True
    except Exception:  # hostile metadata is never the caller's problem: what was found before stands
        pass
    if validate and whole and C2PA in found and budget.c2pa_bytes <= MAX_MANIFEST_BYTES:
        _validated(data, mime, found)
    return ";".join(ordered(found))


def _validated(data: bytes | bytearray | memoryview, mime: str, found: set[str]) -> None:
    """c2pa in `found` replaced by the bindings' token, with the synthetic IPTC source types the manifest's
    actions assert; unchanged when nothing could be validated."""
    validation = c2pa_validation.validate(data, mime)
    if validation is None:
        return
    found.discard(C2PA)
    found.add(validation.token)
    for term in validation.source_types:
        value = _CANONICAL.get(term.lower())
        if value is not None:
            found.add(f"iptc:{value}")


def ordered(declarations: Iterable[str]) -> list[str]:
    """Declarations in the column's fixed order: c2pa (or c2pa:STATE), iptc:..., exif-software:...,
    png-text:..., each kind in the order of its list here."""
    return sorted(set(declarations), key=lambda d: (_ORDER.get(d, 1000), d))


_Scan = Callable[[memoryview, set[str], "Budget"], None]


def _scanner_of(data: memoryview) -> tuple[_Scan | None, str]:
    """The scan of the file's format, sniffed from its content (never its name), and its MIME type."""
    head = bytes(data[:12])
    if head[:2] == b"\xff\xd8":
        return _jpeg, "image/jpeg"
    if head[:8] == _PNG_SIGNATURE:
        return _png, "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp, "image/webp"
    return None, ""


# --- JPEG --------------------------------------------------------------------------------


def _jpeg(data: memoryview, found: set[str], budget: Budget) -> None:
    """The marker segments up to the start of scan (SOS) or the end: APP1 (EXIF, XMP), APP11 (JUMBF)."""
    pos, end = 2, len(data)
    while pos + 1 < end:
        if data[pos] != 0xFF:
            return  # not a marker where one must be: malformed, stop
        marker = data[pos + 1]
        pos += 2
        if marker == 0xFF:  # fill bytes: a run of them is skipped at once, and walked as one segment
            budget.segment()
            match = JPEG_FILL.match(data, pos - 2)
            assert match is not None
            pos = match.end() - 1
            continue
        if marker == 0xD8 or marker == 0x01 or 0xD0 <= marker <= 0xD7:
            budget.segment()  # standalone markers: each walked as a segment, so a file of them ends the scan
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image: no metadata segment after
            return
        if pos + 2 > end:
            return
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2 or pos + length > end:
            return  # a length that cannot be, or past the end: truncated
        inspected = marker in (0xE1, 0xEB)
        budget.segment(length if inspected else 0)
        payload = data[pos + 2 : pos + length]
        if marker == 0xE1:
            _app1(payload, found)
        elif marker == 0xEB:
            _app11(payload, found, budget)
        pos += length


def _app1(payload: memoryview, found: set[str]) -> None:
    if bytes(payload[:6]) == b"Exif\0\0":
        _exif(payload[6:], found)
    elif bytes(payload[: len(_XMP_APP1)]) == _XMP_APP1:
        _xmp(payload[len(_XMP_APP1) :], found)
    elif bytes(payload[: len(_XMP_EXTENSION_APP1)]) == _XMP_EXTENSION_APP1:  # extended XMP: a piece of a packet
        _xmp(payload[len(_XMP_EXTENSION_APP1) :], found)


def _app11(payload: memoryview, found: set[str], budget: Budget) -> None:
    """A JPEG XT box segment: 'JP', the box instance (2 bytes), the packet's sequence number (4), then the
    JUMBF box (whole in the first packet of each box; later packets repeat its head and carry on)."""
    if bytes(payload[:2]) != b"JP" or len(payload) < 16:
        return
    budget.c2pa_bytes += len(payload)
    _jumbf(payload[8:], found, budget, 0)


def _jumbf(data: memoryview, found: set[str], budget: Budget, depth: int) -> None:
    """JUMBF boxes (ISO/IEC 19566-5) in `data`: a superbox ('jumb') whose description box ('jumd') has the
    label c2pa is a C2PA manifest store. Superboxes are walked MAX_JUMBF_DEPTH deep; a box longer than the data
    (a box split over several APP11 segments) is read as far as the data goes."""
    if depth > MAX_JUMBF_DEPTH:
        return
    pos, end = 0, len(data)
    while pos + 8 <= end:
        budget.box()
        length, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if length == 1:  # a 64-bit length follows
            if pos + 16 > end:
                return
            (length,) = struct.unpack_from(">Q", data, pos + 8)
            head = 16
        elif length == 0:  # the box runs to the end
            length = end - pos
        if length < head:
            return  # malformed
        content = data[pos + head : min(pos + length, end)]
        if kind == b"jumb":
            _superbox(content, found, budget, depth)
        pos += length


def _superbox(content: memoryview, found: set[str], budget: Budget, depth: int) -> None:
    """A JUMBF superbox: its description box first (type UUID, toggles, an optional NUL-terminated label)."""
    if len(content) >= 8 + 17:
        _, kind = struct.unpack_from(">I4s", content, 0)
        toggles = content[8 + 16]
        if kind == b"jumd" and toggles & 0x02:  # the label is present
            label = bytes(content[8 + 17 : 8 + 17 + 256]).split(b"\0", 1)[0]
            if label == b"c2pa":
                found.add(C2PA)
                return
    _jumbf(content, found, budget, depth + 1)


# --- EXIF --------------------------------------------------------------------------------


def _exif(tiff: memoryview, found: set[str]) -> None:
    """IFD0's Software tag (0x0131, ASCII): a known generator's name -> exif-software:NAME."""
    if len(tiff) < 8 or bytes(tiff[:2]) not in (b"II", b"MM"):
        return
    order = "<" if bytes(tiff[:2]) == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    for i in range(min(count, MAX_IFD_ENTRIES)):
        at = ifd + 2 + 12 * i
        if at + 12 > len(tiff):
            return
        tag, kind, n, value = struct.unpack_from(order + "HHII", tiff, at)
        if tag != 0x0131 or kind != 2:
            continue
        n = min(n, MAX_SOFTWARE_BYTES)
        start = at + 8 if n <= 4 else value
        text = bytes(tiff[start : start + n]).split(b"\0", 1)[0].decode("latin-1")
        _software(text, found)
        return


def _software(text: str, found: set[str]) -> None:
    for name, pattern in _GENERATOR_PATTERNS:
        if pattern.search(text):
            found.add(f"exif-software:{name}")


# --- XMP -----------------------------------------------------------------------------------


def _xmp(packet: memoryview | bytes, found: set[str]) -> None:
    """IPTC's DigitalSourceType naming a synthetic source -> iptc:VALUE. Searched as text (never parsed as
    XML: no entity is expanded, no reference followed), in the packet's first MAX_XMP_BYTES."""
    text = bytes(packet[:MAX_XMP_BYTES])
    for pattern in (_IPTC_URI, _IPTC_PROPERTY):
        for match in pattern.finditer(text):
            found.add("iptc:" + _CANONICAL[match.group(1).decode("ascii").lower()])


# --- PNG -----------------------------------------------------------------------------------


def _png(data: memoryview, found: set[str], budget: Budget) -> None:
    """The chunks up to IEND or the end (each bounded by its length; CRCs not checked): caBX -> c2pa, text
    chunks with a generator's keyword -> png-text:KEYWORD, XMP (iTXt or zTXt XML:com.adobe.xmp) -> the XMP rule."""
    pos, end = 8, len(data)
    while pos + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        if length > end - pos - 8:
            return  # past the end: truncated
        budget.segment(length if kind in (b"tEXt", b"zTXt", b"iTXt") else 0)  # caBX: its presence is enough
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"caBX":
            found.add(C2PA)
            budget.c2pa_bytes += length
        elif kind in (b"tEXt", b"zTXt", b"iTXt"):
            _png_text(kind, body, found, budget)
        elif kind == b"IEND":
            return
        pos += 12 + length


def _png_text(kind: bytes, body: memoryview, found: set[str], budget: Budget) -> None:
    keyword, _, rest = bytes(body[:80]).partition(b"\0")
    if not _:
        return  # no keyword terminator in the 79 bytes a keyword may take
    name = keyword.decode("latin-1")
    if name in PNG_TEXT_KEYWORDS:
        found.add(f"png-text:{name}")
        return
    if keyword != _XMP_KEYWORD:
        return
    start = len(keyword) + 1
    if kind == b"tEXt":
        _xmp(body[start:], found)
    elif kind == b"zTXt":  # compression method (0), then the compressed text
        _xmp(_inflate(body[start + 1 :], budget), found)
    else:  # iTXt: compressed flag, method, language tag NUL, translated keyword NUL, text
        if len(body) < start + 2:
            return
        compressed = body[start]
        rest_at = start + 2
        for _ in range(2):  # the language tag and the translated keyword
            nul = bytes(body[rest_at : rest_at + 1024]).find(b"\0")
            if nul < 0:
                return
            rest_at += nul + 1
        text = body[rest_at:]
        _xmp(_inflate(text, budget) if compressed else text, found)


def _inflate(data: memoryview, budget: Budget) -> bytes:
    """zlib data inflated to MAX_INFLATED bytes at most (and what is left of the file's MAX_INFLATED_TOTAL);
    what would inflate further is cut there, a bomb costs no more than the bound; b"" for data that is not
    zlib."""
    bound = min(MAX_INFLATED, budget.inflated)
    if bound <= 0:
        raise _OutOfBudget
    try:
        out = zlib.decompressobj().decompress(bytes(data[:MAX_METADATA_BYTES]), bound)
    except zlib.error:  # a damaged chunk: its text is unreadable, the chunks after it are still looked at
        return b""
    budget.inflated -= len(out)
    return out


# --- WebP ----------------------------------------------------------------------------------


def _webp(data: memoryview, found: set[str], budget: Budget) -> None:
    """RIFF chunks after 'WEBP': 'XMP ' -> the XMP rule, 'C2PA' -> c2pa, 'EXIF' -> the EXIF rule."""
    pos, end = 12, len(data)
    while pos + 8 <= end:
        kind, length = struct.unpack_from("<4sI", data, pos)
        if length > end - pos - 8:
            return
        budget.segment(length if kind in (b"XMP ", b"EXIF") else 0)
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"XMP ":
            _xmp(body, found)
        elif kind == b"C2PA":
            found.add(C2PA)
            budget.c2pa_bytes += length
        elif kind == b"EXIF":
            _exif(body[6:] if bytes(body[:6]) == b"Exif\0\0" else body, found)
        pos += 8 + length + (length & 1)
