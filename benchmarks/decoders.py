"""Decoders: OpenCV's against libjpeg-turbo and libspng bindings, on the same bytes, in one run.

    python benchmarks/decoders.py [--sizes 256,1024] [--repeats 5]

For generated photo-like images (scanner.bench.images.natural_image) encoded as baseline JPEG
(quality 90, 4:2:0), progressive JPEG (quality 90, 4:2:0) and PNG, it decodes the same
bytes with every decoder that is installed (cv2.imdecode as the engine calls it;
simplejpeg, PyTurboJPEG and imagecodecs for JPEG; pyspng and imagecodecs for PNG), checks
that each gives exactly OpenCV's pixels (B, G, R), and prints the median ms per image of
each (passes interleaved in rounds) and its speed-up over OpenCV. None of these packages
is a dependency of scanner: the script skips what is not installed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np

from scanner.bench.images import natural_image

READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
Decoder = Callable[[bytes], np.ndarray]


def encoded(rgb: np.ndarray, kind: str) -> bytes:
    bgr = rgb[..., ::-1]
    if kind == "png":
        return cv2.imencode(".png", bgr)[1].tobytes()
    params = [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
    if kind == "progressive":
        params += [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
    return cv2.imencode(".jpg", bgr, params)[1].tobytes()


def decoders(kind: str) -> dict[str, Decoder]:
    """name -> function(bytes) -> (H, W, 3) uint8 B, G, R, for the decoders installed here."""
    found: dict[str, Decoder] = {"opencv": lambda data: cv2.imdecode(np.frombuffer(data, np.uint8), READ_FLAGS)}
    if kind in ("jpeg", "progressive"):
        try:
            import simplejpeg

            found["simplejpeg"] = lambda data: simplejpeg.decode_jpeg(data, colorspace="BGR")
        except ImportError:
            pass
        try:
            from turbojpeg import TurboJPEG

            turbo = TurboJPEG()
            found["pyturbojpeg"] = lambda data: turbo.decode(data)
        except (ImportError, RuntimeError, OSError):
            pass
        try:
            import imagecodecs

            found["imagecodecs"] = lambda data: np.ascontiguousarray(imagecodecs.jpeg8_decode(data)[..., ::-1])
        except (ImportError, AttributeError):
            pass
    else:
        try:
            import pyspng

            found["pyspng"] = lambda data: np.ascontiguousarray(pyspng.load(data)[..., ::-1])
        except ImportError:
            pass
        try:
            import imagecodecs

            found["imagecodecs"] = lambda data: np.ascontiguousarray(imagecodecs.png_decode(data)[..., ::-1])
        except (ImportError, AttributeError):
            pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=8)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for size in (int(s) for s in args.sizes.split(",")):
        images = [natural_image(size, size, rng) for _ in range(args.images)]
        for kind in ("jpeg", "progressive", "png"):
            blobs = [encoded(rgb, kind) for rgb in images]
            found = decoders(kind)
            reference = [found["opencv"](b) for b in blobs]
            identical = {
                name: all(np.array_equal(decode(b), ref) for b, ref in zip(blobs, reference, strict=True))
                for name, decode in found.items()
            }
            times: dict[str, list[float]] = {name: [] for name in found}
            for _ in range(args.repeats):
                for name, decode in found.items():
                    start = time.perf_counter()
                    for b in blobs:
                        decode(b)
                    times[name].append((time.perf_counter() - start) / len(blobs) * 1e3)
            base = statistics.median(times["opencv"])
            cells = [
                f"{name} {statistics.median(t):.3f} ms ({base / statistics.median(t):.2f}x"
                f"{', identical' if identical[name] else ', DIFFERS'})"
                for name, t in times.items()
            ]
            print(f"{size}x{size} {kind:<11} " + "; ".join(cells))


if __name__ == "__main__":
    main()
