import os
from pathlib import Path

import numpy as np
import pytest

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep FFTW wisdom written by the tests out of the user's cache."""
    os.environ["SCANNER_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


def natural_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A photo-like RGB uint8 image: smooth structure, correlated channels, sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = 0.5 + 0.25 * np.sin(6 * x + 3 * y) * np.cos(4 * y - 2 * x)
    blobs = sum(
        rng.uniform(0.1, 0.3)
        * np.exp(-((x - rng.uniform()) ** 2 + (y - rng.uniform()) ** 2) / rng.uniform(0.005, 0.05))
        for _ in range(5)
    )
    tint = rng.uniform(0.7, 1.2, size=3)
    channels = [np.clip((base + blobs) * t + rng.normal(0, 0.02, base.shape), 0, 1) for t in tint]
    return (np.stack(channels, axis=-1) * 255).round().astype(np.uint8)


# `scanner bench` at its smallest: a few tiny images, one pass (what a test of its output needs).
TINY_BENCH = ["bench", "--size", "24", "--images", "3", "--workers", "1", "--repeats", "1", "--planner", "estimate"]

# Odd, even, non-square and tiny sizes: every parity of the half spectrum's last column.
SHAPES = [(8, 8), (8, 9), (9, 8), (13, 17), (16, 16), (31, 64), (64, 31), (100, 8), (257, 130), (128, 128)]


def _random(shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    return rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def _saturated() -> np.ndarray:
    bright = np.clip(natural_image(96, 80, seed=3).astype(int) * 3, 0, 255).astype(np.uint8)
    assert (bright == 255).mean() > 0.5
    return bright


def _nearly_grey() -> np.ndarray:
    grey = natural_image(64, 72, seed=4)[..., :1].repeat(3, axis=2)
    grey[5:9, 10:12, 0] += 1
    grey[30, 40, 2] ^= 4
    return grey


# The images every feature set is held to its float64 reference on, by name (a test id each).
REFERENCE_IMAGES = {
    **{f"random-{h}x{w}": (lambda shape=(h, w): _random(shape)) for h, w in SHAPES},
    **{
        f"natural-{h}x{w}": (lambda h=h, w=w: natural_image(h, w, seed=w)) for h, w in [(64, 64), (97, 120), (256, 255)]
    },
    "saturated": _saturated,
    "nearly-grey": _nearly_grey,
}


def face_files(limit_per_set: int = 2) -> list[Path]:
    """A few real and fake faces from each shared set (empty if the data is absent)."""
    files: list[Path] = []
    if FACES.is_dir():
        for set_dir in sorted(p for p in FACES.iterdir() if p.is_dir()):
            for label in ("real", "fake"):
                files += sorted((set_dir / label).iterdir())[:limit_per_set]
    return files
