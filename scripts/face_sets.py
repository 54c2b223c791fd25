"""The shared face sets as feature stores, as found or with both classes re-encoded to one JPEG quality.

Used by scripts/evaluation.py and scripts/train_default_model.py so that both
see exactly the same features. Every step is deterministic: files are taken in
sorted order, FFTW plans with the `estimate` planner (no timing-dependent plan
choice) and no saved wisdom, and the re-encoding is OpenCV's JPEG encoder at a
fixed quality with 4:2:0 chroma subsampling.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from scanner.features import FeatureExtractor, features_of_file
from scanner.store import make_table, write_table

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"
SETS = ("stargan-celeba-128", "ffhq-tpdne-128", "ffhq-stylegan-1024")
LABELS = ("real", "fake")
REENCODE_QUALITY = 90


def set_files(set_dir: Path) -> list[Path]:
    """SET/real/* then SET/fake/*, each sorted by name."""
    return [p for label in LABELS for p in sorted((set_dir / label).iterdir()) if p.is_file()]


def reencode_set(set_dir: Path, out_dir: Path, quality: int = REENCODE_QUALITY) -> Path:
    """Write every image of the set as OpenCV JPEG at `quality`, 4:2:0, into out_dir/SET/LABEL/NAME.jpg."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
    target = out_dir / set_dir.name
    for source in set_files(set_dir):
        image = cv2.imread(str(source), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise RuntimeError(f"cannot decode {source}")
        destination = target / source.parent.name / (source.stem + ".jpg")
        destination.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(destination), image, params):
            raise RuntimeError(f"cannot write {destination}")
    return target


def feature_store(set_dir: Path, out_path: Path, extractor: FeatureExtractor) -> Path:
    """Measure every file of the set and write the features as a store at out_path."""
    results = [features_of_file(p, extractor) for p in set_files(set_dir)]
    features = np.array([r.features if r.features is not None else np.full(6, np.nan) for r in results])
    table = make_table(
        [r.path for r in results],
        features,
        spectrum=extractor.spectrum,
        status=[r.status for r in results],
        error=[r.error for r in results],
        height=[r.info.height or 0 for r in results],
        width=[r.info.width or 0 for r in results],
        format=[r.info.format or "" for r in results],
        jpeg_subsampling=[r.info.jpeg_subsampling or "" for r in results],
        jpeg_quality=[r.info.jpeg_quality or 0 for r in results],
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_table(out_path, table)
    return out_path


def build_stores(work_dir: Path, faces: Path = FACES, sets=SETS, spectrum: str = "log") -> dict[str, dict[str, Path]]:
    """Feature stores of each set as found ("as-found") and re-encoded ("jpeg90"), under work_dir."""
    extractor = FeatureExtractor(spectrum, planner="estimate", use_wisdom=False)
    stores: dict[str, dict[str, Path]] = {"as-found": {}, "jpeg90": {}}
    for name in sets:
        stores["as-found"][name] = feature_store(faces / name, work_dir / "as-found" / f"{name}.h5", extractor)
        reencoded = reencode_set(faces / name, work_dir / "images-jpeg90")
        stores["jpeg90"][name] = feature_store(reencoded, work_dir / "jpeg90" / f"{name}.h5", extractor)
    return stores
