"""Image files that declare a generator, and hostile metadata, crafted byte by byte (no download).

JPEG segments are inserted after SOI, PNG chunks after IHDR, into images OpenCV encodes here, so every
file still decodes unless a test breaks its structure on purpose.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np

from scanner.bench.images import natural_image
from scanner.images.c2pa_validation import available

C2PA_UUID = bytes.fromhex("6332706100110010800000aa00389b71")  # the C2PA manifest store's JUMBF type
# What a scan records for c2pa_store() below (a manifest superbox with no claim, no signature): the bare c2pa
# of presence detection, or c2pa:invalid once the optional extra validates it.
CRAFTED_C2PA = "c2pa:invalid" if available() else "c2pa"


def image(seed: int = 0, size: int = 40) -> np.ndarray:
    return natural_image(size, size + 4, seed=seed)[..., ::-1].copy()


def jpeg(seed: int = 0) -> bytes:
    ok, data = cv2.imencode(".jpg", image(seed), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return data.tobytes()


def png(seed: int = 0) -> bytes:
    ok, data = cv2.imencode(".png", image(seed))
    assert ok
    return data.tobytes()


# --- JPEG ----------------------------------------------------------------------------------


def segment(marker: int, payload: bytes) -> bytes:
    assert len(payload) + 2 <= 0xFFFF
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def with_segments(data: bytes, *segments: bytes) -> bytes:
    """A JPEG with these whole segments (marker included) right after SOI."""
    assert data[:2] == b"\xff\xd8"
    return data[:2] + b"".join(segments) + data[2:]


def box(kind: bytes, content: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(content), kind) + content


def jumd(label: str, uuid: bytes = C2PA_UUID) -> bytes:
    """A JUMBF description box: type UUID, toggles (requestable, label present), the label."""
    return box(b"jumd", uuid + b"\x03" + label.encode() + b"\0")


def c2pa_store() -> bytes:
    """A C2PA manifest store as JUMBF: a superbox labelled c2pa holding one manifest superbox."""
    manifest = box(b"jumb", jumd("urn:uuid:0b6b0f5e-3fd4-4d4a-8b55-1f2e3d4c5b6a", b"c2ma" + bytes(12)))
    return box(b"jumb", jumd("c2pa") + manifest)


def app11(jumbf: bytes, sequence: int = 1) -> bytes:
    """A JPEG XT APP11 segment: 'JP', box instance 1, packet sequence number, the JUMBF box."""
    return segment(0xEB, b"JP" + struct.pack(">HI", 1, sequence) + jumbf)


def xmp_packet(source_type: str, *, as_attribute: bool = True) -> bytes:
    uri = f"http://cv.iptc.org/newscodes/digitalsourcetype/{source_type}"
    inner = (
        f'<rdf:Description rdf:about="" Iptc4xmpExt:DigitalSourceType="{uri}"/>'
        if as_attribute
        else f'<rdf:Description rdf:about=""><Iptc4xmpExt:DigitalSourceType>{source_type}'
        "</Iptc4xmpExt:DigitalSourceType></rdf:Description>"
    )
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
        f'{inner}</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def xmp_app1(packet: bytes) -> bytes:
    return segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + packet)


def exif_app1(software: str) -> bytes:
    """APP1 EXIF with IFD0 holding one entry: Software (0x0131, ASCII)."""
    text = software.encode() + b"\0"
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x0131, 2, len(text), 8 + 2 + 12 + 4) + struct.pack("<I", 0)
    tiff = b"II" + struct.pack("<HI", 42, 8) + ifd + text
    return segment(0xE1, b"Exif\0\0" + tiff)


# --- PNG -------------------------------------------------------------------------------------


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_chunks(data: bytes, *chunks: bytes) -> bytes:
    """A PNG with these whole chunks right after IHDR."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    after_ihdr = 8 + 12 + 13
    return data[:after_ihdr] + b"".join(chunks) + data[after_ihdr:]


def text_chunk(keyword: str, text: str) -> bytes:
    return chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1"))


def itxt_chunk(keyword: str, text: bytes, *, compressed: bool) -> bytes:
    body = zlib.compress(text) if compressed else text
    return chunk(b"iTXt", keyword.encode() + b"\0" + bytes([int(compressed), 0]) + b"\0\0" + body)


def zlib_bomb(gib: int) -> bytes:
    """A zlib stream that inflates to `gib` GiB of zeros (about 1 MiB compressed a GiB), built without
    compressing gigabytes: after a full flush, each MiB of zeros compresses to the same bytes."""
    zeros = bytes(1 << 20)
    c = zlib.compressobj(9)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    return first + block * (gib * 1024 - 1) + c.flush()  # its Adler-32 is wrong: nobody should get that far


def ztxt_chunk(keyword: str, compressed: bytes) -> bytes:
    return chunk(b"zTXt", keyword.encode() + b"\0\0" + compressed)
