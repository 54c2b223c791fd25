"""The files a bench times: a generated set (scanner.bench.images, encoded as JPEG or PNG) or a user's."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from scanner.bench.images import natural_image
from scanner.io.walk import DEFAULT_EXTENSIONS

FORMATS = ("jpeg", "png")
JPEG_QUALITY = 90


def encode(rgb: np.ndarray, fmt: str) -> bytes:
    """The file bytes of an RGB image as JPEG (quality 90, 4:2:0) or PNG."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    ext, params = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]) if fmt == "jpeg" else (".png", [])
    ok, data = cv2.imencode(ext, rgb[..., ::-1], params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {fmt} image")
    return data.tobytes()


def write_image_set(directory: Path, count: int, size: int, fmt: str, seed: int = 0, first: int = 0) -> list[Path]:
    """Write `count` distinct size x size images into `directory`, numbered from `first`;
    returns their paths."""
    rng = np.random.default_rng((seed, first))
    suffix = ".jpg" if fmt == "jpeg" else ".png"
    paths = []
    for i in range(first, first + count):
        path = directory / f"img{i:07d}{suffix}"
        path.write_bytes(encode(natural_image(size, size, rng), fmt))
        paths.append(path)
    return paths


def image_files(directory: Path, limit: int | None = None) -> list[Path]:
    """Image files under `directory` (sorted, recursive), at most `limit`: those with an
    extension `scanner scan` takes from directories by default."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            if name.rpartition(".")[2].lower() in DEFAULT_EXTENSIONS:
                found.append(Path(root) / name)
                if limit is not None and len(found) >= limit:
                    return found
    return found


def default_image_count(size: int) -> int:
    """Enough images for stable passes (about 32 megapixels), at least 16."""
    return max(16, min(2048, (32 << 20) // (size * size)))


@dataclass
class ImageSet:
    """The files a bench times: generated (removed afterwards) or the user's (read, never changed)."""

    root: Path
    paths: list[Path]
    generated: bool
    size: int
    fmt: str
    seed: int = 0

    def top_up(self, wanted: int) -> list[Path]:
        """A generated set grown to `wanted` images (a user's set is used as it is)."""
        if self.generated and wanted > len(self.paths):
            self.paths += write_image_set(
                self.root, wanted - len(self.paths), self.size, self.fmt, self.seed, first=len(self.paths)
            )
        return self.paths


def image_set(
    directory: Path | None, work_dir: Path, size: int, fmt: str, images: int | None, seed: int = 0
) -> ImageSet:
    if directory is None:
        root = work_dir / "images"
        root.mkdir()
        count = images or default_image_count(size)
        return ImageSet(root, write_image_set(root, count, size, fmt, seed), True, size, fmt, seed)
    paths = image_files(directory, images or default_image_count(size))
    if not paths:
        raise ValueError(f"no image files under {directory}")
    return ImageSet(directory, paths, False, size, fmt, seed)
