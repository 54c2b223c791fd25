"""Models: a decision function with the scaling, standardisation and projection it runs after, and the model file.

A model file (HDF5, docs/models.md) holds only arrays and a few attributes, so
loading one runs no code; the bundled models are scanner/models/*.h5, one per
feature set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from scanner.core.echo import echoed
from scanner.core.errors import InputError, ModelError
from scanner.core.featuresets import PAPER, feature_set_of_names
from scanner.core.schema import Measurement
from scanner.core.version import __version__
from scanner.detect.decisions import (
    DECISIONS,
    GMMDecision,
    LogisticDecision,
    Projection,
    Scaling,
    Standardisation,
    SVMDecision,
    reading_from,
)
from scanner.detect.verdicts import verdicts_of
from scanner.io.h5safe import CheckedFile, errors_as
from scanner.io.outputs import output_path

MODEL_FORMAT = "scanner-model"
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # schema 1 lacks feature_set and precision: the paper's set, double precision
DEFAULT_MODEL_FILE = "default.h5"
# The bundled model of each feature set: classify uses the one of its features' set.
BUNDLED_MODEL_FILES = {"extended": DEFAULT_MODEL_FILE, "paper": "paper.h5", "residual": "residual.h5"}
BUNDLED_PREFIX = "bundled:"  # a bundled model's source: 'bundled:extended', 'bundled:paper', 'bundled:residual'
DEFAULT_FEATURE_SET = next(name for name, file in BUNDLED_MODEL_FILES.items() if file == DEFAULT_MODEL_FILE)


@dataclass(frozen=True, eq=False)
class Model:
    """A fitted detector for features measured one way, optionally rescaled for a target domain."""

    measurement: Measurement
    decision: SVMDecision | GMMDecision | LogisticDecision
    scaling: Scaling | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    standardisation: Standardisation | None = None  # applied after scaling
    projection: Projection | None = None  # applied after standardisation
    # Where the model was read from: 'bundled:' and its feature set ('bundled:extended', 'bundled:paper',
    # 'bundled:residual') or a model file's absolute path ('' for a model made in this process), and the
    # SHA-256 of that file's bytes. Neither is saved.
    source: str = ""
    sha256: str = ""

    @property
    def method(self) -> str:
        return self.decision.method

    @property
    def spectrum(self) -> str:
        return self.measurement.spectrum

    @property
    def n_features(self) -> int:
        return self.measurement.n_features

    def score(self, features: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
        """(N,) float64, higher = more likely fake (> 0: fake); NaN for rows with a NaN feature."""
        x = np.asarray(features, dtype=np.float64).reshape(-1, self.n_features)
        out = np.full(len(x), np.nan)
        finite = np.isfinite(x).all(axis=1)
        if finite.any():
            rows = x[finite]
            if self.scaling is not None:
                rows = self.scaling.apply(rows)
            if self.standardisation is not None:
                rows = self.standardisation.apply(rows)
            if self.projection is not None:
                rows = self.projection.apply(rows)
            out[finite] = self.decision.score(rows)
        return out

    def predict(self, features: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.object_]:
        """'fake' where the score is above 0, 'real' where not, '' where it is NaN."""
        return verdicts_of(self.score(features))

    def check_compatible(self, measurement: Measurement) -> None:
        """Refuse features of another feature set or spectrum mode than the model was trained on.

        The precision may differ: it moves the features far less than anything a model resolves.
        """
        mine, theirs = self.measurement, measurement
        if mine.spectrum != theirs.spectrum:
            raise ModelError(
                f"the model was trained on {mine.spectrum!r}-spectrum features but these are {theirs.spectrum!r}; "
                f"recompute the features with --spectrum {mine.spectrum} or use a {theirs.spectrum!r} model"
            )
        if mine.feature_set != theirs.feature_set:
            raise ModelError(
                f"the model was trained on the {mine.feature_set!r} feature set but these are {theirs.feature_set!r} "
                f"features; recompute them with --feature-set {mine.feature_set} or use a model of that set"
            )

    def describe(self) -> str:
        adapted = ", adapted to a target domain" if self.scaling is not None else ""
        m = self.measurement
        kind = "" if m.feature_set == PAPER.name else f" ({m.feature_set} set)"
        how = ""
        if self.projection is not None:
            how = f", standardised, on {self.projection.width} principal components"
        elif self.standardisation is not None:
            how = ", standardised"
        name = "logistic regression" if self.method == "logistic" else self.method.upper()
        return f"{name} on {m.spectrum}-spectrum features{kind}{how}{adapted}"

    def save(self, path: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str] | None] = ()) -> None:
        """Write the model as HDF5 (docs/models.md), whole or not at all and never over one of `inputs`;
        the file bytes depend only on the model."""
        with output_path(path, inputs=inputs, replaces=MODEL_FORMAT) as tmp, h5py.File(tmp, "w", track_order=True) as f:
            f.attrs["format"] = MODEL_FORMAT
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["method"] = self.method
            for name, value in self.measurement.attrs().items():
                f.attrs[name] = value
            f.attrs["feature_names"] = ",".join(self.measurement.feature_names)
            f.attrs["scanner_version"] = __version__
            f.attrs["provenance"] = json.dumps(self.provenance, sort_keys=True)
            self.decision.save(f.create_group(self.method, track_order=True))
            if self.scaling is not None:
                self.scaling.save(f.create_group("scaling", track_order=True))
            if self.standardisation is not None:
                self.standardisation.save(f.create_group("standardisation", track_order=True))
            if self.projection is not None:
                self.projection.save(f.create_group("projection", track_order=True))


def canonical_notes(model: Measurement, features: Measurement) -> tuple[str, ...]:
    """A note when a model meets features canonicalised differently from its training rows (allowed, as a
    precision is: the verdicts are the user's to judge, but they should know)."""
    if model.canonical == features.canonical:
        return ()
    how = {True: "canonicalised (re-encoded as JPEG q90 4:2:0)", False: "measured as found"}
    return (
        f"note: the model was trained on images {how[model.canonical]}, these were {how[features.canonical]}; "
        "its verdicts may shift (docs/detectors.md)",
    )


def probability_of(model: Model, scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
    """P(fake | x) per score where the model's decision defines one (a mixture's posterior); None where it
    does not (an SVM's score is a signed distance, not a probability)."""
    from_score = getattr(model.decision, "probability", None)
    return None if from_score is None else np.asarray(from_score(np.asarray(scores, dtype=np.float64)))


def _text(attrs: dict[str, Any], name: str) -> str:
    value = attrs.get(name)
    if value is None:
        raise ModelError(f"attribute {name} is missing")
    if not isinstance(value, str):
        raise ModelError(f"attribute {name} is not text ({echoed(value)})")
    return value


def default_model_path() -> Path:
    """The model bundled with the package (docs/detectors.md says what it was trained on)."""
    return Path(str(resources.files("scanner") / "models" / DEFAULT_MODEL_FILE))


def bundled_model_path(feature_set: str) -> Path:
    """The bundled model of a feature set (the default model is the extended set's); ModelError for a set
    with none bundled (every set has one now; the check stays for a set declared later)."""
    if feature_set not in BUNDLED_MODEL_FILES:
        raise ModelError(
            f"no model is bundled for the {feature_set} feature set; train one (scanner train) and give it with --model"
        )
    return Path(str(resources.files("scanner") / "models" / BUNDLED_MODEL_FILES[feature_set]))


def bundled_model(feature_set: str) -> Model:
    """The bundled model for features of this set: what classify uses when no model is given."""
    return replace(load_model(bundled_model_path(feature_set)), source=BUNDLED_PREFIX + feature_set)


def load_model(path: str | os.PathLike[str] | None = None) -> Model:
    """Read a model file (None: the bundled default model). Reads arrays only; runs nothing from the file.

    The file is opened through scanner.io.h5safe's checks (a regular file, hard links
    only, data stored in it, attributes of plain types); every problem is a
    ModelError naming the file. The model's `source` is 'bundled:extended' for None, else the file's absolute
    path; its `sha256` is of the bytes of the very file read.
    """
    source = BUNDLED_PREFIX + DEFAULT_FEATURE_SET if path is None else os.path.abspath(path)
    path = default_model_path() if path is None else Path(path)
    if not os.path.lexists(path):
        raise ModelError(f"{path}: no such model file")
    with CheckedFile(path, "model file", ModelError, digest=True) as checked, reading_from(checked):
        try:
            with errors_as(ModelError, str(path), "model file"):
                return replace(_model_from(checked), source=source, sha256=checked.sha256 or "")
        except ModelError as exc:
            message = str(exc)
            raise ModelError(message if message.startswith(f"{path}: ") else f"{path}: {message}") from None


def _model_from(checked: CheckedFile) -> Model:
    f = checked.file
    attrs = checked.attributes(f)
    if attrs.get("format") != MODEL_FORMAT:
        raise ModelError("not a scanner model file (no format attribute 'scanner-model')")
    version = attrs.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in READABLE_SCHEMAS:
        raise ModelError(
            f"model schema version {echoed(version)} is not one this scanner reads {READABLE_SCHEMAS}; "
            "retrain the model with this version"
        )
    measured: dict[str, Any] = {
        n: _text(attrs, n) for n in ("feature_set", "spectrum", "precision", "canonical") if n in attrs
    }
    try:
        measurement = Measurement.from_attrs(measured)
    except InputError as exc:
        raise ModelError(str(exc)) from None
    names = _text(attrs, "feature_names").split(",")
    if tuple(names) != measurement.feature_names:
        found = feature_set_of_names(names)
        raise ModelError(
            f"the model's features ({found.name + ' set' if found else echoed(names)}) are not those of the "
            f"{measurement.feature_set} set it declares"
        )
    method = _text(attrs, "method")
    decision_group = checked.group(f, method) if method in DECISIONS else None
    if decision_group is None:
        raise ModelError(f"unknown or missing method {echoed(method)}")
    try:
        provenance = json.loads(_text(attrs, "provenance"))
    except json.JSONDecodeError:
        raise ModelError("the provenance attribute is not JSON") from None
    if not isinstance(provenance, dict):
        raise ModelError("the provenance attribute is not a JSON object")
    width = measurement.n_features
    scaling_group = checked.group(f, "scaling")
    scaling = Scaling.load(scaling_group, width) if scaling_group is not None else None
    group = checked.group(f, "standardisation")
    standardisation = Standardisation.load(group, width) if group is not None else None
    group = checked.group(f, "projection")
    projection = Projection.load(group, width) if group is not None else None
    decision_width = projection.width if projection is not None else width
    decision = DECISIONS[method].load(decision_group, decision_width)
    return Model(measurement, decision, scaling, provenance, standardisation, projection)
