"""Image size: how decode, the FFT floor, the features and the authors' pipeline grow from 128 to 4096 px.

Run (from the repository root, with the project's virtual environment):

    .venv/bin/python benchmarks/image_size.py [--sizes 128,256,512,1024,2048,4096] [--format jpeg|png]
                                              [--spectrum log|modulus] [--repeats 3] [--authors-max 2048]

For each square size it generates a few realistic images (scanner.bench.images.natural_image; about
32 megapixels' worth, at least 2) in a temporary directory and prints, in ms per image (median of
--repeats passes after a warm-up, all in one process): decode; decode + the three-channel FFTW
rfft2; decode + features; the FFT alone and the feature step after decode (on decoded pixels);
the two target ratios; and the authors' numpy pipeline (with decode) and how many times slower it
is. The authors' pipeline is skipped above --authors-max (at 4096 it takes seconds per image and
gigabytes of memory).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness import authors_files, decode_fft_files, feature_breakdown

from scanner.bench.files import write_image_set
from scanner.bench.stages import decode_files, features_files, time_stages
from scanner.features.backends.base import make_backend
from scanner.features.extract import make_extractor
from scanner.images.decode import read_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="128,256,512,1024,2048,4096")
    parser.add_argument("--format", default="jpeg", choices=("jpeg", "png"))
    parser.add_argument("--spectrum", default="log", choices=("log", "modulus"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--authors-max", type=int, default=2048)
    args = parser.parse_args()

    print(f"image size study: {args.format}, spectrum {args.spectrum}, ms/image, median of {args.repeats}")
    header = (
        "size",
        "images",
        "decode",
        "dec+FFT",
        "dec+feat",
        "ratio",
        "FFT",
        "step",
        "step/FFT",
        "authors",
        "auth/ours",
    )
    print(("{:>6} {:>6} " + "{:>9} " * 9).format(*header))
    extractor = make_extractor(spectrum=args.spectrum)
    backend = make_backend("fftw")
    for size in (int(s) for s in args.sizes.split(",")):
        count = max(2, min(64, (32 << 20) // (size * size)))
        with tempfile.TemporaryDirectory(prefix="scanner-size-") as tmp:
            paths = write_image_set(Path(tmp), count, size, args.format)
            stages = {
                "decode": (decode_files, paths),
                "decode_fft": (lambda p: decode_fft_files(p, backend), paths),
                "features": (lambda p: features_files(p, extractor), paths),
            }
            if size <= args.authors_max:
                stages["authors"] = (lambda p: authors_files(p, args.spectrum), paths[:2])
            timed = time_stages(stages, args.repeats, warm_up=2)
            decode, decode_fft, features = timed["decode"], timed["decode_fft"], timed["features"]
            authors = timed["authors"].ms_per_image if "authors" in timed else None
            decoded = [read_image(p).pixels for p in paths[: max(2, min(count, (64 << 20) // (3 * size * size)))]]
            pieces, step = feature_breakdown(decoded, args.spectrum, args.repeats)
            del decoded
        cells = [
            decode.ms_per_image,
            decode_fft.ms_per_image,
            features.ms_per_image,
            features.ms_per_image / decode_fft.ms_per_image,
            pieces["fft"],
            step,
            step / pieces["fft"],
            authors,
            authors / features.ms_per_image if authors else None,
        ]
        print(
            f"{size:>6} {count:>6} " + " ".join("{:>9}".format("skipped" if v is None else f"{v:.3f}") for v in cells),
            flush=True,
        )


if __name__ == "__main__":
    main()
