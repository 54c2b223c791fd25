"""What the tests share (imported as `from helpers import ...`; pyproject.toml puts tests/ on the path).

natural_image is the one synthetic-image generator, the same as `scanner bench` times.
"""

from pathlib import Path

import numpy as np

from scanner.bench.images import natural_image

__all__ = ["EXAMPLES", "FACES", "REFERENCE_IMAGES", "SHAPES", "TINY_BENCH", "face_files", "natural_image"]

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


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
    # The per-bin values are float32 in either precision, which leaves 4e-7 to 7e-6 of relative error in
    # a nearly grey image's tiny distances, depending on the image: rtol 1e-6 (double) holds for this one.
    grey = natural_image(64, 72, seed=2)[..., :1].repeat(3, axis=2)
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
