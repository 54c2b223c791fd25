"""Rebuild the bundled models, scanner/models/default.h5, residual.h5 and paper.h5, exactly.

    python scripts/train_default_model.py [--faces DIR] [--out PATH] [--residual-out PATH] [--paper-out PATH]
                                          [--keep DIR]

default.h5, the default model (stores of the extended feature set): a
logistic regression on the standardised extended features of every image of
every shared set, each set at matched compression (both classes re-encoded
once with OpenCV's JPEG encoder, 4:2:0, below the lowest quality already
present: scripts/face_sets.py MATCHED_QUALITY), the sets weighted equally (each
set's rows together weigh as much as another's, whatever their number).

residual.h5 (stores of the residual set): the same recipe on the residual set's
131 features of the same images (the same C = 1: EVALUATION.md's calibration
table found no smaller C better for that set).

The images are measured once, in the residual set: its first 69 columns are the
extended set's and its first six the paper's, bit for bit.

paper.h5 (stores of the paper's set): the paper's SVM (RBF, C=1,
gamma='scale', no feature scaling) on the six features of every image of
stargan-celeba-128 and ffhq-tpdne-128, both classes re-encoded at quality 90,
4:2:0, as before the extended set existed.

Re-encoding both classes one way keeps a model from learning the encoder: as
found, ffhq-tpdne-128's reals are PNG and its fakes JPEG, and a model trained on
that separates PNG from JPEG, not real from generated (see EVALUATION.md).

Images are re-encoded into a temporary directory that is removed afterwards
(--keep DIR: kept there, and the stores there, from this script or from
scripts/evaluation.py --keep, used again instead of measuring anew);
nothing is written into the repository but the models. The script prints each
model's SHA-256: the same library versions on the same CPU give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
from face_sets import (
    FACES,
    MATCHED_QUALITY,
    REENCODE_QUALITY,
    SETS,
    build_stores,
    columns_of,
    paper_samples,
    variant,
)

from scanner.core.featuresets import RESIDUAL
from scanner.detect.fit import fit_classifier, fit_svm
from scanner.detect.model import Model, bundled_model_path
from scanner.detect.samples import Samples, samples_of
from scanner.store.hdf5 import read_features

PAPER_TRAINING_SETS = ("stargan-celeba-128", "ffhq-tpdne-128")
PAPER_VARIANT = variant(REENCODE_QUALITY)
QUALITIES = tuple(sorted(set(MATCHED_QUALITY.values()), reverse=True))


def _recipe_label(feature_set: str) -> str:
    return (
        f"a logistic regression (L2, C = 1) on the standardised {feature_set} features of every image of "
        "every shared set at matched compression (both classes re-encoded once, quality 90 for "
        "stargan-celeba-128 and ffhq-stylegan-1024, 70 for ffhq-tpdne-128, 4:2:0), the sets weighted equally"
    )


DEFAULT_RECIPE = {
    "variant": lambda name: variant(MATCHED_QUALITY[name]),  # the version of each set it is trained on
    "loso": "matched",  # the leave-one-set-out rows of EVALUATION.md that measure it
    "label": _recipe_label("extended"),
    "residual_label": _recipe_label("residual"),  # residual.h5: the same recipe on the residual set
}


def set_weights(counts: list[int]) -> np.ndarray:
    """Per-row weights that give every set the same total weight, averaging 1 over all rows."""
    total = sum(counts)
    return np.concatenate([np.full(n, total / (len(counts) * n)) for n in counts])


def default_model(train_sets: dict[str, Samples]) -> Model:
    """The default model's recipe: the standardised logistic regression, sets weighted equally, on the features
    of the samples' set (extended: default.h5; residual: residual.h5)."""
    names = list(train_sets)
    parts = [train_sets[name] for name in names]
    x = np.concatenate([s.features[s.labelled] for s in parts])
    y = np.concatenate([s.is_fake[s.labelled] for s in parts])
    fit = fit_classifier(
        x, y, method="logistic", standardise=True, sample_weight=set_weights([int(s.labelled.sum()) for s in parts])
    )
    n_fake = int(y.sum())
    provenance = {
        "command": "scripts/train_default_model.py",
        "method": "logistic",
        "trained_on": [
            f"{name} (../shared/data/faces), both classes re-encoded: OpenCV JPEG quality {MATCHED_QUALITY[name]}, "
            "4:2:0"
            for name in names
        ],
        "set_weights": "equal (each set's rows weigh together as much as another's)",
        "real": len(y) - n_fake,
        "fake": n_fake,
        "C": 1.0,
        "standardised": True,
        "class_weight": None,
        "limits": "trained on three face sets (StarGAN, StyleGAN2 thumbnails, StyleGAN 1024 px) after one JPEG "
        "step; on other generators it is near chance (leave-one-set-out in EVALUATION.md): calibrate on "
        "labelled images of your own collection",
    }
    return Model(parts[0].measurement, fit.decision, provenance=provenance, standardisation=fit.standardisation)


def paper_model(train_sets: dict[str, Samples]) -> Model:
    """The paper-set model: the paper's SVM on every usable, labelled row of the paper's six, with its provenance."""
    samples = Samples(
        [p for s in train_sets.values() for p in s.paths],
        np.concatenate([s.status for s in train_sets.values()]),
        np.concatenate([s.features for s in train_sets.values()]),
        np.concatenate([s.labels for s in train_sets.values()]),
        next(iter(train_sets.values())).measurement,
    )
    rows = samples.labelled
    decision = fit_svm(samples.features[rows], samples.is_fake[rows])
    n_fake = int(samples.is_fake[rows].sum())
    provenance = {
        "command": "scripts/train_default_model.py",
        "method": "svm",
        "trained_on": [
            f"{name} (../shared/data/faces), both classes re-encoded: OpenCV JPEG quality {REENCODE_QUALITY}, 4:2:0"
            for name in train_sets
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
    parser.add_argument("--out", type=Path, default=bundled_model_path("extended"), help="default model to write")
    parser.add_argument(
        "--residual-out", type=Path, default=bundled_model_path("residual"), help="residual-set model to write"
    )
    parser.add_argument("--paper-out", type=Path, default=bundled_model_path("paper"), help="paper-set model to write")
    parser.add_argument("--keep", type=Path, help="keep the feature stores and re-encoded images in this directory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scanner-default-model-") as work:
        stores = build_stores(args.keep or Path(work), args.faces, feature_set=RESIDUAL.name, qualities=QUALITIES)
        data = {v: {name: samples_of([read_features(p)]) for name, p in by_set.items()} for v, by_set in stores.items()}
    matched = {name: data[DEFAULT_RECIPE["variant"](name)][name] for name in SETS}
    models = {
        args.out: default_model({name: columns_of(s, "extended") for name, s in matched.items()}),
        args.residual_out: default_model(matched),
        args.paper_out: paper_model({name: paper_samples(data[PAPER_VARIANT][name]) for name in PAPER_TRAINING_SETS}),
    }
    for path, model in models.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        print(f"{path}: {model.describe()}, {model.provenance['real']} real + {model.provenance['fake']} fake rows")
        print(f"sha256 {sha256(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
