"""The per-file path, piece by piece: where `measure_file` differs from cv2.imread plus the extractor.

Run (from the repository root, with the project's virtual environment):

    .venv/bin/python benchmarks/per_file.py [--sizes 256,1024] [--format jpeg|png] [--images 48] [--repeats 5]

For each size it writes distinct realistic images (scanner.bench.images.natural_image) to a temporary
directory and times, in ms per image, each piece a sweep pays for one file, all in one process with the
stages' passes interleaved in rounds (scanner.bench.stages.time_stages: median of --repeats):

* the bounded read (scanner.images.decode.read_file: open without following FIFOs or devices, fstat,
  a read capped at --max-bytes), the SHA-256 of those bytes, what their metadata declares
  (scanner.images.declared), and the header checks with the JPEG quality estimate (decode.probe);
* decoding those bytes: scanner's decode_bytes (header checks, the decoder's messages captured)
  against a bare cv2.imdecode of the same bytes and cv2.imread of the path;
* the extractor on already decoded pixels;
* measure_file against cv2.imread + the extractor, and their ratio (the issue's "per-file path");
* minor page faults per image of measure_file (resource.getrusage), which scanner.core.allocator removes.

Run it once as is and once with SCANNER_MALLOC=default in the environment to see what the allocator
settings are worth on this machine.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import tempfile
from pathlib import Path

import cv2
import numpy as np

from scanner.bench.files import write_image_set
from scanner.bench.stages import time_stages
from scanner.features.extract import make_extractor
from scanner.features.measure import measure_file
from scanner.images.declared import declared
from scanner.images.decode import decode_bytes, probe, read_file

PIECES = (
    "read_file",
    "sha256",
    "declared",
    "probe",
    "decode_bytes",
    "cv2.imdecode",
    "cv2.imread",
    "extractor",
    "imread+extractor",
    "measure_file",
)


def one_size(size: int, fmt: str, images: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="scanner-per-file-") as tmp:
        paths = write_image_set(Path(tmp), images, size, fmt)
        extractor = make_extractor()
        contents = {p: bytes(read_file(p)) for p in paths}
        pixels = {p: decode_bytes(contents[p]).pixels for p in paths}

        def each(work):  # a stage: `work` on every file
            return lambda files: [work(p) for p in files]

        stages = {
            "read_file": each(read_file),
            "sha256": each(lambda p: hashlib.sha256(contents[p]).digest()),
            "declared": each(lambda p: declared(contents[p])),
            "probe": each(lambda p: probe(contents[p])),
            "decode_bytes": each(lambda p: decode_bytes(contents[p])),
            "cv2.imdecode": each(lambda p: cv2.imdecode(np.frombuffer(contents[p], np.uint8), cv2.IMREAD_COLOR)),
            "cv2.imread": each(lambda p: cv2.imread(str(p), cv2.IMREAD_COLOR)),
            "extractor": each(lambda p: extractor.from_bgr(pixels[p])),
            "imread+extractor": each(lambda p: extractor.from_bgr(cv2.imread(str(p), cv2.IMREAD_COLOR))),
            "measure_file": each(lambda p: measure_file(p, extractor)),
        }
        results = time_stages({name: (run, paths) for name, run in stages.items()}, repeats, warm_up=None)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for path in paths:
            measure_file(path, extractor)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / len(paths)
    out = {name: results[name].ms_per_image or float("nan") for name in PIECES}
    out["faults"] = faults
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--format", default="jpeg", choices=("jpeg", "png"))
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        ms = one_size(size, args.format, args.images, args.repeats)
        print(f"{size}x{size} {args.format}, ms per image (median of {args.repeats} interleaved passes):")
        for name in PIECES:
            print(f"  {name:<18}{ms[name]:9.3f}")
        ratio = ms["imread+extractor"] / ms["measure_file"]
        faults = f"{ms['faults']:.0f} minor page faults an image"
        print(f"  measure_file: {faults}; its rate against cv2.imread + extractor {ratio:.2f}")


if __name__ == "__main__":
    main()
