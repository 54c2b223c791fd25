"""What the tests share (imported as `from helpers import ...`; pyproject.toml puts tests/ on the path).

natural_image is the one synthetic-image generator, the same as `scanner bench` times.
"""

import csv
import io
import os
import subprocess
from pathlib import Path

import cv2
import h5py
import numpy as np
from typer.testing import CliRunner

from scanner.bench.images import natural_image
from scanner.cli import app
from scanner.core.schema import make_table
from scanner.report.export import export_csv
from scanner.store.hdf5 import write_table

runner = CliRunner()

__all__ = [
    "EXAMPLES",
    "FACES",
    "FAKE_CENTRE",
    "Features",
    "REAL_CENTRE",
    "REFERENCE_IMAGES",
    "SHAPES",
    "TINY_BENCH",
    "clusters",
    "export",
    "face_files",
    "invoke",
    "natural_image",
    "read_csv",
    "sha256sum",
    "store",
    "verdict_rows",
    "write_schema_1_store",
    "write_schema_2_store",
    "write_tree",
]

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


# --- labelled feature stores (the detectors' tests) ------------------------------

REAL_CENTRE = np.array([0.030, 0.034, 0.026, 0.020, 0.030, 0.022])

FAKE_CENTRE = np.array([0.045, 0.052, 0.038, 0.035, 0.050, 0.040])


def clusters(n_real, n_fake, seed=0, real=REAL_CENTRE, fake=FAKE_CENTRE, spread=0.003):
    """Features of two Gaussian clusters, reals first, and the is-fake labels."""
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(real, spread, (n_real, 6)), rng.normal(fake, spread, (n_fake, 6))])
    return x, np.r_[np.zeros(n_real, bool), np.ones(n_fake, bool)]


def store(
    tmp_path,
    name,
    n_real=40,
    n_fake=40,
    seed=0,
    real=REAL_CENTRE,
    fake=FAKE_CENTRE,
    spread=0.003,
    spectrum="log",
    status=None,
):
    x, is_fake = clusters(n_real, n_fake, seed=seed, real=real, fake=fake, spread=spread)
    paths = [str(tmp_path / name / ("fake" if f else "real") / f"{i}.png") for i, f in enumerate(is_fake)]
    path = tmp_path / f"{name}.h5"
    write_table(path, make_table(paths, x, spectrum=spectrum, status=status))
    return path, paths, x


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def verdict_rows(path, paths):
    """A verdicts file's rows, checked to be sorted by path (as classify writes them), in the order of `paths`
    (a store's order)."""
    rows = read_csv(path)
    written = [r["path"] for r in rows]
    assert written == sorted(written, key=os.fsencode), "the verdicts file is not sorted by path"
    by_path = {r["path"]: r for r in rows}
    assert len(by_path) == len(rows) == len(paths)
    return [by_path[str(p)] for p in paths]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


# --- trees of images and bad files (the sweep's tests) ---------------------------


def write_tree(root: Path, n: int, size: int = 48) -> None:
    """n distinct images in three directories, and a file of every bad kind."""
    rng = np.random.default_rng(1)
    base = natural_image(size, size, seed=7)[..., ::-1]
    for i in range(n):
        sub = root / f"d{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        noisy = np.clip(base.astype(np.int16) + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(sub / f"img{i:04d}.{'png' if i % 2 else 'jpg'}"), noisy)
    jpeg = cv2.imencode(".jpg", base)[1].tobytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "notes.jpg").write_bytes(b"these are not pixels")
    (root / "empty.jpg").write_bytes(b"")
    cv2.imwrite(str(root / "grey.png"), np.full((20, 20, 3), 128, np.uint8))
    cv2.imwrite(str(root / "dot.png"), np.zeros((1, 1, 3), np.uint8))
    (root / "broken.jpg").symlink_to(root / "nowhere.jpg")
    os.mkfifo(root / "pipe.jpg")


def export(store):
    """`scanner export`'s CSV, its lines sorted (rows come in completion order); no path twice."""
    handle = io.StringIO()
    export_csv(store, handle)
    header, *lines = handle.getvalue().splitlines()
    assert len({line.split(",")[0] for line in lines}) == len(lines), "a path has two rows"
    return [header, *sorted(lines)]


# --- comparing measured rows ---------------------------------------------------------


class Features:
    """A row's features, equal to another row's within what two FFT plans of one machine may round
    apart (a worker plans afresh; the test process may hold FFTW wisdom from earlier tests, and a plan
    from wisdom rounds differently): about 1e-6 relative in single precision. Exact equality of
    feature values across processes is not a property of the method (docs/architecture.md)."""

    RTOL, ATOL = 1e-4, 5e-6  # as the reference tests' single precision

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=float)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Features)
            and self.values.shape == other.values.shape
            and bool(np.allclose(self.values, other.values, rtol=self.RTOL, atol=self.ATOL, equal_nan=True))
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Features({self.values.tolist()})"


def write_schema_1_store(path, table):
    """A store as scanner 0.1 wrote it: no feature_set, precision or backend attributes, no sha256 or declared."""
    write_schema_2_store(path, table)
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 1
        for name in ("feature_set", "precision", "backend"):
            del f.attrs[name]


def write_schema_2_store(path, table):
    """A store as scanners before file hashes wrote it: no sha256 or declared dataset."""
    write_table(path, table)
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 2
        del f["sha256"]
        del f["declared"]


def sha256sum(*paths):
    """The real `sha256sum`'s lowercase hex digest of each file (one path: its digest alone)."""
    out = subprocess.run(["sha256sum", "--", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    digests = [line.split()[0].lstrip("\\") for line in out.splitlines()]
    return digests[0] if len(paths) == 1 else digests
