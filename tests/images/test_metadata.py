"""What files declare about their making (scanner.images.declared), on files crafted here: each declaration
found, hostile metadata bounded, and the image still decoding where its pixels are whole."""

import struct
import subprocess
import sys
import textwrap

import pytest
from declared_files import (
    app11,
    box,
    c2pa_store,
    chunk,
    exif_app1,
    image,
    itxt_chunk,
    jpeg,
    jumd,
    png,
    segment,
    text_chunk,
    with_chunks,
    with_segments,
    xmp_app1,
    xmp_packet,
    ztxt_chunk,
)
from hostile import limited

from scanner.images.declared import MAX_SEGMENTS, declared
from scanner.images.decode import decode_bytes


def decodes(data: bytes) -> bool:
    """The image's pixels decode (the metadata did not change the file's status)."""
    return decode_bytes(data).pixels.shape == image().shape


def test_plain_files_declare_nothing():
    assert declared(jpeg()) == ""
    assert declared(png()) == ""
    assert declared(b"") == ""
    assert declared(b"GIF89a" + bytes(100)) == ""


def test_jpeg_app11_jumbf_labelled_c2pa():
    data = with_segments(jpeg(), app11(c2pa_store()))
    assert declared(data) == "c2pa"
    assert decodes(data)


def test_jpeg_app11_jumbf_with_another_label_is_not_c2pa():
    other = box(b"jumb", jumd("something-else", bytes(16)))
    assert declared(with_segments(jpeg(), app11(other))) == ""


@pytest.mark.parametrize("as_attribute", [True, False])
def test_jpeg_xmp_digital_source_type(as_attribute):
    data = with_segments(jpeg(), xmp_app1(xmp_packet("trainedAlgorithmicMedia", as_attribute=as_attribute)))
    assert declared(data) == "iptc:trainedAlgorithmicMedia"
    assert decodes(data)


def test_xmp_of_a_camera_photo_declares_nothing():
    data = with_segments(jpeg(), xmp_app1(xmp_packet("digitalCapture")))
    assert declared(data) == ""


def test_jpeg_exif_software_naming_a_generator():
    data = with_segments(jpeg(), exif_app1("Adobe Firefly 2.0"))
    assert declared(data) == "exif-software:Adobe Firefly"
    assert declared(with_segments(jpeg(), exif_app1("GIMP 2.10"))) == ""
    assert declared(with_segments(jpeg(), exif_app1("Imagenomic Portraiture"))) == ""  # a whole word only
    assert decodes(data)


def test_several_declarations_in_a_fixed_order():
    data = with_segments(
        jpeg(),
        exif_app1("stable-diffusion-webui"),
        xmp_app1(xmp_packet("compositeWithTrainedAlgorithmicMedia")),
        app11(c2pa_store()),
    )
    assert declared(data) == "c2pa;iptc:compositeWithTrainedAlgorithmicMedia;exif-software:Stable Diffusion"


def test_png_parameters_text_chunk():
    data = with_chunks(png(), text_chunk("parameters", "a portrait, Steps: 20, Sampler: Euler a"))
    assert declared(data) == "png-text:parameters"
    assert decodes(data)


def test_png_comfyui_chunks_and_other_text():
    data = with_chunks(png(), text_chunk("workflow", "{}"), text_chunk("prompt", "{}"), text_chunk("Title", "x"))
    assert declared(data) == "png-text:prompt;png-text:workflow"


def test_png_cabx_chunk():
    data = with_chunks(png(), chunk(b"caBX", c2pa_store()))
    assert declared(data) == "c2pa"
    assert decodes(data)


@pytest.mark.parametrize("compressed", [False, True])
def test_png_itxt_xmp(compressed):
    data = with_chunks(png(), itxt_chunk("XML:com.adobe.xmp", xmp_packet("compositeSynthetic"), compressed=compressed))
    assert declared(data) == "iptc:compositeSynthetic"
    assert decodes(data)


def test_webp_xmp_and_c2pa_chunks():
    import cv2

    ok, encoded = cv2.imencode(".webp", image(), [cv2.IMWRITE_WEBP_QUALITY, 90])
    assert ok
    data = encoded.tobytes()
    packet = xmp_packet("algorithmicMedia")
    chunks = struct.pack("<4sI", b"XMP ", len(packet)) + packet + (b"\0" if len(packet) & 1 else b"")
    chunks += struct.pack("<4sI", b"C2PA", 4) + b"jumb"
    riff = data[:12] + data[12:] + chunks
    riff = riff[:4] + struct.pack("<I", len(riff) - 8) + riff[8:]
    assert declared(riff) == "c2pa;iptc:algorithmicMedia"


# --- hostile metadata -------------------------------------------------------------------------


def test_a_segment_length_past_the_end():
    whole = with_segments(jpeg(), app11(c2pa_store()))
    cut = whole[:40]  # inside the APP11 segment
    assert declared(cut) == ""
    lying = with_segments(jpeg(), b"\xff\xeb\xff\xf0JP")  # a length of 65,520 bytes, then the image
    assert declared(lying[:200]) == ""


def test_truncated_segments_keep_what_came_before():
    data = with_segments(jpeg(), exif_app1("Midjourney"), app11(c2pa_store()))
    cut_at = data.index(b"\xff\xeb") + 20  # inside the APP11 segment, after the whole EXIF one
    assert declared(data[:cut_at]) == "exif-software:Midjourney"


def test_jumbf_box_longer_than_its_segment_is_read_as_far_as_it_goes():
    """The first APP11 packet of a box split over several segments: its description box is whole."""
    store = c2pa_store()
    claimed = struct.pack(">I", 1 << 20) + store[4:]  # the superbox says 1 MiB
    data = with_segments(jpeg(), app11(claimed))
    assert declared(data) == "c2pa"
    assert decodes(data)


def test_jumbf_cut_inside_its_label():
    store = c2pa_store()
    data = with_segments(jpeg(), app11(store[: 8 + 8 + 17 + 2]))  # 'c2' of the label only
    assert declared(data) == ""
    assert decodes(data)


@pytest.mark.parametrize(("depth", "expected"), [(3, "c2pa"), (5000, "")])
def test_deeply_nested_jumbf(depth, expected):
    """A c2pa label under `depth` superboxes: found within MAX_JUMBF_DEPTH, never a recursion error."""
    inner = box(b"jumb", jumd("c2pa"))
    for _ in range(depth):
        inner = box(b"jumb", inner)
    data = with_segments(jpeg(), app11(inner))
    assert declared(data) == expected
    assert decodes(data)


def test_malformed_jumbf_lengths():
    zero_length_loop = struct.pack(">I4s", 4, b"jumb")  # shorter than its own head
    assert declared(with_segments(jpeg(), app11(zero_length_loop * 100))) == ""
    huge = struct.pack(">I4sQ", 1, b"jumb", 1 << 62) + jumd("c2pa")  # a 64-bit length past everything
    assert declared(with_segments(jpeg(), app11(huge))) == "c2pa"


def test_a_hundred_thousand_tiny_segments():
    """10^5 empty APP2 segments: the walk stops at MAX_SEGMENTS; a declaration before them is kept, one after
    them is not reached; the image still decodes."""
    tiny = segment(0xE2, b"") * 100_000
    before = with_segments(jpeg(), app11(c2pa_store()), tiny)
    after = with_segments(jpeg(), tiny, app11(c2pa_store()))
    assert declared(before) == "c2pa"
    assert declared(after) == ""
    assert MAX_SEGMENTS < 100_000
    assert decodes(after)


def test_a_hundred_thousand_tiny_png_chunks():
    tiny = chunk(b"tiNy", b"") * 100_000
    data = with_chunks(png(), text_chunk("parameters", "x"), tiny)
    assert declared(data) == "png-text:parameters"


def test_the_byte_budget_counts_what_is_looked_into_not_image_data():
    """9 MiB of text looked into exhaust MAX_METADATA_BYTES: a declaration after it is not reached; 9 MiB of
    chunks that are skipped by their length (as image data is) cost nothing."""
    big = "x" * (9 << 20)
    assert declared(with_chunks(png(), text_chunk("Comment", big), text_chunk("parameters", "x"))) == ""
    assert declared(with_chunks(png(), chunk(b"tiNy", big.encode()), text_chunk("parameters", "x"))) == (
        "png-text:parameters"
    )


def test_png_chunk_length_past_the_end():
    data = with_chunks(png(), text_chunk("prompt", "x"), struct.pack(">I", 0x7FFFFFFF) + b"tEXt")
    assert declared(data) == "png-text:prompt"


def test_malformed_xmp_and_exif():
    broken_xmp = xmp_app1(b"<x:xmpmeta><rdf:RDF " + b"<" * 50_000 + b"DigitalSourceType=")
    exif_bad_offset = segment(0xE1, b"Exif\0\0II*\0" + struct.pack("<I", 1 << 30))
    exif_many = segment(0xE1, b"Exif\0\0II*\0" + struct.pack("<IH", 8, 0xFFFF) + bytes(100))
    data = with_segments(jpeg(), broken_xmp, exif_bad_offset, exif_many)
    assert declared(data) == ""
    assert decodes(data)


_BOMB = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, "tests")
    from declared_files import image, png, with_chunks, zlib_bomb, ztxt_chunk
    from scanner.images.declared import declared
    from scanner.images.decode import decode_bytes

    bomb = zlib_bomb(2)  # 2 GiB of zeros, about 2 MiB compressed
    data = with_chunks(png(), ztxt_chunk("parameters", bomb), ztxt_chunk("XML:com.adobe.xmp", bomb))
    print(repr(declared(data)))
    print(decode_bytes(data).pixels.shape == image().shape)
    # VmHWM is this process's own peak: ru_maxrss would also count the pytest process it was forked from
    print(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024)
    """
)


def test_ztxt_bomb_is_bounded():
    """zTXt chunks that inflate to 2 GiB each (one of XMP, inflated to look for IPTC's term): inflated to
    MAX_INFLATED at most, in a subprocess of 1.5 GiB of address space with a timeout; the image still decodes."""
    done = subprocess.run(
        [sys.executable, "-c", _BOMB],
        capture_output=True,
        timeout=120,
        preexec_fn=limited(1.5),
        text=True,
    )
    assert done.returncode == 0, done.stderr
    found, shape, peak_mib = done.stdout.split("\n")[:3]
    assert found == "'png-text:parameters'"
    assert shape == "True"
    assert int(peak_mib) < 600


# --- C2PA validation, as declared() uses it (the bindings stand-in here; with them: test_c2pa_validation.py) -----


@pytest.fixture
def validations(monkeypatch):
    """c2pa_validation.validate replaced: it records each call and answers what the test put in `answer`."""
    from scanner.images import c2pa_validation

    calls: list[str] = []
    answer: list[object] = [c2pa_validation.Validation("c2pa:valid", ("trainedAlgorithmicMedia", "digitalCapture"))]

    def validate(data, mime):
        calls.append(mime)
        return answer[0]

    monkeypatch.setattr(c2pa_validation, "validate", validate)
    return calls, answer


def test_a_validated_store_replaces_c2pa(validations):
    calls, answer = validations
    data = with_segments(jpeg(), exif_app1("Midjourney"), app11(c2pa_store()))
    assert declared(data) == "c2pa;exif-software:Midjourney" and calls == []  # presence only, unless asked
    # The token in c2pa's place; of the source types the actions assert, the synthetic ones, as XMP's would be.
    assert declared(data, validate=True) == "c2pa:valid;iptc:trainedAlgorithmicMedia;exif-software:Midjourney"
    assert declared(with_chunks(png(), chunk(b"caBX", c2pa_store())), validate=True).startswith("c2pa:valid")
    assert calls == ["image/jpeg", "image/png"]  # the format sniffed from the content
    answer[0] = None  # nothing validated (the extra missing): the plain c2pa stays
    assert declared(data, validate=True) == "c2pa;exif-software:Midjourney"
    assert declared(jpeg(), validate=True) == "" and len(calls) == 3  # no store, no validation


def test_stores_past_a_bound_are_not_validated(validations, monkeypatch):
    """A store found by a scan that ran out of budget, or larger than MAX_MANIFEST_BYTES, keeps the plain c2pa."""
    from scanner.images import declared as module

    calls, _ = validations
    many = with_segments(jpeg(), app11(c2pa_store()), segment(0xE2, b"") * (MAX_SEGMENTS + 1))
    assert declared(many, validate=True) == "c2pa"
    monkeypatch.setattr(module, "MAX_MANIFEST_BYTES", 40)
    assert declared(with_chunks(png(), chunk(b"caBX", c2pa_store())), validate=True) == "c2pa"
    assert calls == []


def test_validation_runs_inside_the_file_time_limit(validations, tmp_path):
    """measure_file validates before `decoded` is called: the executors' per-file clock (started before the
    file is read, stopped by `decoded`) covers the native parser as it covers the decoder."""
    import numpy as np

    from scanner.features.measure import measure_file

    events, _ = validations  # the validation's calls, in one list with the clock's stop and the measurement

    class Extractor:
        def from_bgr(self, pixels):
            events.append("measured")
            return np.zeros(6)

    path = tmp_path / "made.jpg"
    path.write_bytes(with_segments(jpeg(), app11(c2pa_store())))
    record = measure_file(path, Extractor(), decoded=lambda: events.append("clock stopped"))
    assert record.declared == "c2pa:valid;iptc:trainedAlgorithmicMedia"
    assert events == ["image/jpeg", "clock stopped", "measured"]


def test_a_damaged_compressed_xmp_chunk_hides_nothing_after_it():
    """An XMP zTXt or iTXt chunk whose data is not zlib made the scan end there (zlib.error), so a
    declaration in a later chunk went unreported; now that chunk reads as empty and the walk goes on."""
    damaged = (
        ztxt_chunk("XML:com.adobe.xmp", b"not zlib data at all"),
        chunk(b"iTXt", b"XML:com.adobe.xmp\0" + bytes([1, 0]) + b"\0\0" + b"not zlib data at all"),
    )
    for bad in damaged:
        data = with_chunks(png(), bad, text_chunk("parameters", "steps: 20"))
        assert declared(data) == "png-text:parameters"
