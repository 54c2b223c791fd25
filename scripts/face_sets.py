"""The shared face sets as feature stores, as found or with both classes re-encoded to one JPEG quality.

Used by scripts/evaluation.py and scripts/train_default_model.py so that both
see exactly the same features. Every step is deterministic: files are taken in
sorted order and measured one after another in this process (so rows keep that
order), FFTW plans with the `estimate` planner (no timing-dependent plan choice)
and no saved wisdom, and the re-encoding is OpenCV's JPEG encoder at a
fixed quality with 4:2:0 chroma subsampling.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2

from scanner.executors.inline import InProcess
from scanner.scan import ScanOptions, scan
from scanner.walk import Walk

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


def feature_store(set_dir: Path, out_path: Path, spectrum: str = "log") -> Path:
    """Measure every file of the set, in set_files order, into a store at out_path (replaced if it exists)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    walk = Walk(from_list=[os.fsencode(p) for p in set_files(set_dir)])
    options = ScanOptions(spectrum=spectrum, planner="estimate", overwrite=True)
    scan(walk, out_path, options, ["scripts/face_sets.py"], executor=InProcess)
    return out_path


def build_stores(work_dir: Path, faces: Path = FACES, sets=SETS, spectrum: str = "log") -> dict[str, dict[str, Path]]:
    """Feature stores of each set as found ("as-found") and re-encoded ("jpeg90"), under work_dir."""
    stores: dict[str, dict[str, Path]] = {"as-found": {}, "jpeg90": {}}
    for name in sets:
        stores["as-found"][name] = feature_store(faces / name, work_dir / "as-found" / f"{name}.h5", spectrum)
        reencoded = reencode_set(faces / name, work_dir / "images-jpeg90")
        stores["jpeg90"][name] = feature_store(reencoded, work_dir / "jpeg90" / f"{name}.h5", spectrum)
    return stores
