"""Rebuild the bundled default model, scanner/models/default.h5, exactly.

    python scripts/train_default_model.py [--faces DIR] [--out PATH]

The recipe: the paper's SVM (RBF, C=1, gamma='scale', no feature scaling) on the
log-spectrum features of every image of stargan-celeba-128 and ffhq-tpdne-128,
after re-encoding BOTH classes with OpenCV's JPEG encoder at quality 90, 4:2:0.
Re-encoding both classes one way keeps the model from learning the encoder:
as found, ffhq-tpdne-128's reals are PNG and its fakes JPEG, and a model trained
on that separates PNG from JPEG, not real from generated (see EVALUATION.md).
ffhq-stylegan-1024 is left out of training (24 images) and kept for an
out-of-domain check.

Images are re-encoded into a temporary directory that is removed afterwards;
nothing is written into the repository but the model. The script prints the
model's SHA-256: the same library versions on the same CPU give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

from face_sets import FACES, REENCODE_QUALITY, build_stores

from scanner.detect import Model, Samples, default_model_path, fit_svm, samples_of
from scanner.store import read_features

TRAINING_SETS = ("stargan-celeba-128", "ffhq-tpdne-128")
TRAINING_VARIANT = "jpeg90"


def training_samples(stores: dict[str, dict[str, Path]]) -> Samples:
    """The default model's training rows: the re-encoded training sets, joined."""
    return samples_of([read_features(stores[TRAINING_VARIANT][name]) for name in TRAINING_SETS])


def default_model(samples: Samples) -> Model:
    """The paper's SVM on every usable, labelled row, with its provenance."""
    rows = samples.labelled
    decision = fit_svm(samples.features[rows], samples.is_fake[rows])
    n_fake = int(samples.is_fake[rows].sum())
    provenance = {
        "command": "scripts/train_default_model.py",
        "method": "svm",
        "trained_on": [
            f"{name} (../shared/data/faces), both classes re-encoded: OpenCV JPEG quality {REENCODE_QUALITY}, 4:2:0"
            for name in TRAINING_SETS
        ],
        "real": int(rows.sum()) - n_fake,
        "fake": n_fake,
        "C": 1.0,
        "gamma": decision.gamma,
        "class_weight": None,
        "limits": "trained on JPEG q90 4:2:0 faces at 128x128; other encodings, sizes and generators shift the "
        "features (see EVALUATION.md)",
    }
    return Model(samples.measurement, decision, provenance=provenance)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=FACES, help="the shared face sets (SET/real, SET/fake)")
    parser.add_argument("--out", type=Path, default=default_model_path(), help="model file to write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scanner-default-model-") as work:
        stores = build_stores(Path(work), args.faces, sets=TRAINING_SETS)
        model = default_model(training_samples(stores))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    sv = len(model.decision.support_vectors)
    print(
        f"{args.out}: {model.describe()}, {model.provenance['real']} real + {model.provenance['fake']} fake rows, "
        f"{sv} support vectors, gamma {model.decision.gamma!r}"
    )
    print(f"sha256 {sha256(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
