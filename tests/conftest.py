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


def face_files(limit_per_set: int = 2) -> list[Path]:
    """A few real and fake faces from each shared set (empty if the data is absent)."""
    files: list[Path] = []
    if FACES.is_dir():
        for set_dir in sorted(p for p in FACES.iterdir() if p.is_dir()):
            for label in ("real", "fake"):
                files += sorted((set_dir / label).iterdir())[:limit_per_set]
    return files
