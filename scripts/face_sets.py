"""The shared face sets as feature stores, as found or with both classes re-encoded to one JPEG quality.

Used by scripts/evaluation.py and scripts/train_default_model.py so that both
see exactly the same features. A store of the extended set holds the paper's
six as its first six columns, bit for bit what a scan with the paper's set gives
(tests/test_extended.py), so `paper_samples` reads them from it. Every step is deterministic: files are taken in
sorted order and measured one after another in this process (so rows keep that
order), FFTW plans with the `estimate` planner (no timing-dependent plan choice)
and no saved wisdom, and the re-encoding is OpenCV's JPEG encoder at a
fixed quality with 4:2:0 chroma subsampling.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2

from scanner.core.featuresets import FEATURE_SETS, PAPER
from scanner.core.schema import Measurement
from scanner.detect.samples import Samples
from scanner.io.walk import Walk
from scanner.run.executors.inline import InProcess
from scanner.run.sweep import MeasureOptions, ScanOptions, scan
from scanner.store.hdf5 import read_header

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"
SETS = ("stargan-celeba-128", "ffhq-tpdne-128", "ffhq-stylegan-1024")
LABELS = ("real", "fake")
REENCODE_QUALITY = 90
# Matched compression: both classes re-encoded once at a quality below the lowest already present in
# either class, so that no class keeps traces of an earlier, coarser JPEG step the other lacks.
# ffhq-tpdne-128's fakes were JPEG quality 75 (a quality-90 re-encode would leave those traces), so 70;
# stargan-celeba-128's classes share one earlier JPEG step; ffhq-stylegan-1024's fakes are quality 100.
MATCHED_QUALITY = {"stargan-celeba-128": 90, "ffhq-tpdne-128": 70, "ffhq-stylegan-1024": 90}


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


def variant(quality: int | None) -> str:
    """The name of a version of the sets: as-found, or jpegQ for both classes re-encoded at quality Q."""
    return "as-found" if quality is None else f"jpeg{quality}"


def feature_store(set_dir: Path, out_path: Path, spectrum: str = "log", feature_set: str = PAPER.name) -> Path:
    """Measure every file of the set, in set_files order, into a store at out_path (replaced if it exists)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    walk = Walk(from_list=[os.fsencode(p) for p in set_files(set_dir)])
    # double: EVALUATION.md and the bundled models were measured so (the default, single, moves no verdict)
    measure = MeasureOptions(feature_set, spectrum, precision="double", planner="estimate")
    options = ScanOptions(measure, overwrite=True)
    scan(walk, out_path, options, ["scripts/face_sets.py"], executor=InProcess)
    return out_path


def build_stores(
    work_dir: Path,
    faces: Path = FACES,
    sets=SETS,
    spectrum: str = "log",
    feature_set: str = PAPER.name,
    qualities: tuple[int, ...] = (REENCODE_QUALITY,),
) -> dict[str, dict[str, Path]]:
    """Feature stores of each set as found ("as-found") and re-encoded at each quality ("jpeg90", ...),
    under work_dir; a store already there (from an earlier run with --keep) is used as it is."""
    stores: dict[str, dict[str, Path]] = {variant(q): {} for q in (None, *qualities)}
    for name in sets:
        for quality in (None, *qualities):
            out = work_dir / variant(quality) / f"{name}.h5"
            if not out.exists() or read_header(out).measurement.feature_set != feature_set:
                images = faces / name
                if quality is not None:
                    images = reencode_set(images, work_dir / f"images-{variant(quality)}", quality)
                feature_store(images, out, spectrum, feature_set)
            stores[variant(quality)][name] = out
    return stores


def matched(stores: dict[str, dict[str, Path]], sets=SETS) -> dict[str, Path]:
    """Each set's store at its matched quality (MATCHED_QUALITY)."""
    return {name: stores[variant(MATCHED_QUALITY[name])][name] for name in sets}


def columns_of(samples: Samples, feature_set: str) -> Samples:
    """The columns of a narrower feature set from a wider set's samples: its first ones (the extended set's 69
    lead the residual set's 131, the paper's six lead both), bit for bit what a scan with that set gives."""
    m = samples.measurement
    wanted = FEATURE_SETS[feature_set]
    assert FEATURE_SETS[m.feature_set].names[: wanted.width] == wanted.names, "not a narrower set of these samples"
    return Samples(
        samples.paths,
        samples.status,
        samples.features[:, : wanted.width],
        samples.labels,
        Measurement(wanted.name, m.spectrum, m.precision),
    )


def paper_samples(samples: Samples) -> Samples:
    """The paper's six of an extended or residual set's samples: its first six columns, as a paper-set sample."""
    return columns_of(samples, PAPER.name)
