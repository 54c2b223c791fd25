"""Detectors on feature sets: labels, the paper's GMM and SVM, logistic regression, adaptation, model files.

Le and Woo (2021) classify the six features with a two-component Gaussian
mixture (no labels) or an RBF SVM, train with few fakes by subsampling them, and
carry an SVM to a new domain by rescaling each feature with the two component
means of a one-dimensional mixture fitted in each domain (their Algorithm 1).
On the paper's set these stay as the paper has them. A wider set (the extended
one) is standardised inside the model (each feature's mean and scale are part of
the model), classified by default with a logistic regression, and its mixture
runs on a few principal components of the standardised features
(DETECTOR_DEFAULTS says which, per feature set).

scikit-learn fits the models; the fitted parameters are then kept as plain
arrays and every score is computed from them here with numpy. A model file (HDF5)
holds only those arrays and a few attributes, so loading one runs no code, and a
model predicts bit for bit the same before saving and after loading. The score
of a row never depends on the other rows of the batch.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path, PurePath
from typing import Any, ClassVar

import h5py
import numba
import numpy as np

from scanner.core.constants import DEFAULT_LIMITS, ReadLimits, Status
from scanner.core.errors import DetectorError, InputError, ModelError
from scanner.core.featuresets import FEATURE_SETS, PAPER, feature_set_of_names
from scanner.core.schema import FeatureTable, Measurement
from scanner.core.version import __version__
from scanner.features.extract import ExtractorSpec, build_extractor
from scanner.features.measure import measure_file
from scanner.io.h5safe import CheckedFile, errors_as
from scanner.io.outputs import output_file, output_path

REAL = "real"
FAKE = "fake"

MODEL_FORMAT = "scanner-model"
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # schema 1 lacks feature_set and precision: the paper's set, double precision
DEFAULT_MODEL_FILE = "default.h5"
# The bundled model of each feature set: classify uses the one of its features' set.
BUNDLED_MODEL_FILES = {"extended": DEFAULT_MODEL_FILE, "paper": "paper.h5"}

_REAL_NAMES = {"real", "0_real"}
_FAKE_NAMES = {"fake", "1_fake"}
# The paper's side rule for the mixture reads the "mean" feature: column 0 of every feature set.
_MEAN = 0
assert all(s.names[_MEAN] == "mean" for s in FEATURE_SETS.values())


@dataclass(frozen=True)
class DetectorDefaults:
    """What a detector does with a feature set when the user does not say (EVALUATION.md chose them)."""

    method: str  # train's method
    standardise_svm: bool  # the SVM standardises its features (the logistic regression always does)
    gmm_components: int | None  # the mixture runs on this many principal components of the standardised features


DETECTOR_DEFAULTS: dict[str, DetectorDefaults] = {
    # The paper's own choices: an RBF SVM and a mixture on the raw six features.
    "paper": DetectorDefaults(method="svm", standardise_svm=False, gmm_components=None),
    # 69 features on different scales: standardised; logistic regression gained at least 0.10 accuracy over
    # the six on both large shared sets at matched compression (the SVM on one of them); a mixture in 69
    # dimensions has too many parameters for a collection's worth of rows: 6 principal components.
    "extended": DetectorDefaults(method="logistic", standardise_svm=True, gmm_components=6),
}
assert set(DETECTOR_DEFAULTS) == set(FEATURE_SETS)
METHODS = ("svm", "logistic", "gmm")


def detector_defaults(feature_set: str) -> DetectorDefaults:
    return DETECTOR_DEFAULTS[feature_set]


# --- labels ------------------------------------------------------------------


def label_from_path(path: str) -> str:
    """'real' or 'fake' from the innermost path component named real/0_real or fake/1_fake, else ''."""
    for part in reversed(PurePath(path).parts[:-1]):
        name = part.lower()
        if name in _REAL_NAMES:
            return REAL
        if name in _FAKE_NAMES:
            return FAKE
    return ""


def _label_value(text: str) -> str:
    value = text.strip().lower()
    if value in ("real", "0", "0_real"):
        return REAL
    if value in ("fake", "1", "1_fake"):
        return FAKE
    raise DetectorError(f"label {text!r} is neither real (real, 0) nor fake (fake, 1)")


def _path_key(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def read_labels_csv(path: str | os.PathLike) -> dict[str, str]:
    """Labels from a CSV file with columns path,label (label real/fake or 0/1), keyed by absolute path."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
                raise DetectorError(f"{path}: a labels file needs a header with the columns path,label")
            labels = {}
            for line, row in enumerate(reader, start=2):
                try:
                    labels[_path_key(row["path"])] = _label_value(row["label"] or "")
                except DetectorError as exc:
                    raise DetectorError(f"{path}, line {line}: {exc}") from None
    except OSError as exc:
        raise DetectorError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    except (UnicodeError, csv.Error) as exc:
        raise DetectorError(f"{path}: not a UTF-8 CSV labels file ({exc})") from None
    return labels


def labels_of(paths: list[str], labels_csv: dict[str, str] | None = None) -> np.ndarray:
    """'real', 'fake' or '' per path: from the labels file when given, else from the path."""
    if labels_csv is None:
        return np.array([label_from_path(p) for p in paths], dtype=object)
    return np.array([labels_csv.get(_path_key(p), "") for p in paths], dtype=object)


# --- rows of feature tables --------------------------------------------------


def usable_rows(status: Sequence[str] | np.ndarray, features: np.ndarray) -> np.ndarray:
    """True where a row can be judged: status ok and all six features finite."""
    features = np.asarray(features, dtype=np.float64)
    features = features.reshape(len(features), -1)
    return (np.asarray(status, dtype=object) == Status.OK) & np.isfinite(features).all(axis=1)


@dataclass(frozen=True, eq=False)
class Samples:
    """The rows of one or more feature tables, with their labels ('' where unknown)."""

    paths: list[str]
    status: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    measurement: Measurement

    @property
    def spectrum(self) -> str:
        return self.measurement.spectrum

    @property
    def usable(self) -> np.ndarray:
        return usable_rows(self.status, self.features)

    @property
    def labelled(self) -> np.ndarray:
        """Usable rows with a label: the rows supervised training uses."""
        return self.usable & (self.labels != "")

    @property
    def is_fake(self) -> np.ndarray:
        return self.labels == FAKE

    def counts(self) -> dict[str, int]:
        """How many rows are used, and why the others are left out."""
        usable = self.usable
        return {
            "real": int(np.sum(usable & (self.labels == REAL))),
            "fake": int(np.sum(usable & (self.labels == FAKE))),
            "unlabelled": int(np.sum(usable & (self.labels == ""))),
            "unusable": int(np.sum(~usable)),
        }


def samples_of(tables: Iterable[FeatureTable], labels_csv: dict[str, str] | None = None) -> Samples:
    """Join feature tables (objects with path, status, features, measurement) into one labelled sample.

    Tables of different feature sets or spectrum modes cannot be mixed.
    """
    tables = list(tables)
    if not tables:
        raise DetectorError("no feature tables given")
    spectra = sorted({t.measurement.spectrum for t in tables})
    if len(spectra) > 1:
        raise DetectorError(f"the feature tables mix spectrum modes ({', '.join(spectra)}); use one mode")
    sets = sorted({t.measurement.feature_set for t in tables})
    if len(sets) > 1:
        raise DetectorError(f"the feature tables mix feature sets ({', '.join(sets)}); use one set")
    if len({t.measurement.canonical for t in tables}) > 1:
        raise DetectorError(
            "the feature tables mix canonicalised images and images as found; measure them one way (--canonical)"
        )
    paths = [p for t in tables for p in t.path]
    return Samples(
        paths=paths,
        status=np.array([s for t in tables for s in t.status], dtype=object),
        features=np.concatenate([np.asarray(t.features, dtype=np.float64) for t in tables]),
        labels=labels_of(paths, labels_csv),
        measurement=tables[0].measurement,
    )


def anchor_features(
    anchors: list[str], samples: Samples, limits: ReadLimits = DEFAULT_LIMITS
) -> tuple[np.ndarray, list[str]]:
    """Features of known-real images: their rows in `samples` where present, else measured now.

    A directory stands for every file under it. Returns the usable features and a
    message for each anchor that could not be used.
    """
    files = []
    for anchor in anchors:
        if os.path.isdir(anchor):
            files += sorted(os.path.join(d, f) for d, _, names in os.walk(anchor) for f in names)
        else:
            files.append(anchor)
    rows = {_path_key(p): i for i, p in enumerate(samples.paths)}
    usable = samples.usable
    extractor = None
    values, problems = [], []
    for path in files:
        row = rows.get(_path_key(path))
        if row is not None:
            if usable[row]:
                values.append(samples.features[row])
            else:
                problems.append(f"{path}: {samples.status[row]} in the feature store")
            continue
        if extractor is None:
            extractor = build_extractor(ExtractorSpec(samples.measurement))
        result = measure_file(path, extractor, limits.max_pixels, limits.max_bytes)
        if result.features is not None and np.isfinite(result.features).all():
            values.append(result.features)
        else:
            problems.append(f"{path}: {result.status} {result.error}".rstrip())
    return np.array(values, dtype=np.float64).reshape(-1, samples.features.shape[1]), problems


def subsample_fakes(is_fake: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of all reals and a seeded random subset of fakes making `fraction` of the result.

    The paper's unbalanced training: n_fake = round(fraction * n_real / (1 - fraction)), at least 1.
    """
    if not 0.0 < fraction < 1.0:
        raise DetectorError(f"the fake fraction must be between 0 and 1 (exclusive), not {fraction}")
    is_fake = np.asarray(is_fake, dtype=bool)
    reals = np.flatnonzero(~is_fake)
    fakes = np.flatnonzero(is_fake)
    wanted = max(1, round(fraction * len(reals) / (1.0 - fraction)))
    if wanted > len(fakes):
        raise DetectorError(
            f"a fake share of {fraction:g} with {len(reals)} real rows needs {wanted} fake rows, "
            f"but only {len(fakes)} are labelled fake"
        )
    chosen = np.random.default_rng(seed).choice(fakes, size=wanted, replace=False)
    return np.sort(np.concatenate([reals, chosen]))


# --- decision functions ------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _rbf_scores(x, support_vectors, dual_coef, intercept, gamma):  # pragma: no cover - compiled
    """sum_i dual_coef_i exp(-gamma |x - sv_i|^2) + intercept per row, summed in a fixed order."""
    n_rows, n_features = x.shape
    out = np.empty(n_rows)
    for r in range(n_rows):
        total = 0.0
        for i in range(support_vectors.shape[0]):
            d2 = 0.0
            for k in range(n_features):
                diff = x[r, k] - support_vectors[i, k]
                d2 += diff * diff
            total += dual_coef[i] * np.exp(-gamma * d2)
        out[r] = total + intercept
    return out


def _rowwise_matmul(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """x @ m with a fixed summation order per row (BLAS may change it with the batch shape)."""
    return (x[:, :, None] * m[None, :, :]).sum(axis=1)


@dataclass(frozen=True, eq=False)
class SVMDecision:
    """An RBF SVM: score = sum_i dual_coef_i exp(-gamma |x - sv_i|^2) + intercept; > 0 means fake."""

    support_vectors: np.ndarray  # (S, F)
    dual_coef: np.ndarray  # (S,)
    intercept: float
    gamma: float
    method: ClassVar[str] = "svm"

    def score(self, x: np.ndarray) -> np.ndarray:
        return _rbf_scores(np.ascontiguousarray(x), self.support_vectors, self.dual_coef, self.intercept, self.gamma)

    def save(self, group: h5py.Group) -> None:
        _dataset(group, "support_vectors", self.support_vectors)
        _dataset(group, "dual_coef", self.dual_coef)
        group.attrs["intercept"] = self.intercept
        group.attrs["gamma"] = self.gamma

    @classmethod
    def load(cls, group: h5py.Group, width: int) -> SVMDecision:
        sv = _array(group, "support_vectors", (None, width))
        if not len(sv):
            raise ModelError("svm/support_vectors is empty")
        coef = _array(group, "dual_coef", (len(sv),))
        gamma = _scalar(group, "gamma")
        if not gamma > 0:
            raise ModelError(f"svm: gamma must be positive, not {gamma}")
        return cls(sv, coef, _scalar(group, "intercept"), gamma)


@dataclass(frozen=True, eq=False)
class GMMDecision:
    """A two-component Gaussian mixture with full covariances and one component called fake.

    score = log P(fake | x) - log P(real | x); > 0 means fake.
    """

    weights: np.ndarray  # (2,)
    means: np.ndarray  # (2, F)
    covariances: np.ndarray  # (2, F, F)
    fake_component: int
    method: ClassVar[str] = "gmm"
    _precision_cholesky: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            chol = np.linalg.cholesky(self.covariances)
        except np.linalg.LinAlgError:
            raise ModelError("the mixture's covariances are not positive definite") from None
        inverse = np.linalg.inv(chol)
        object.__setattr__(self, "_precision_cholesky", np.transpose(inverse, (0, 2, 1)))

    def _log_joint(self, x: np.ndarray, c: int) -> np.ndarray:
        """log(weight_c) + log N(x; mean_c, cov_c), without the constant both components share."""
        p = self._precision_cholesky[c]
        y = _rowwise_matmul(x - self.means[c], p)
        return math.log(self.weights[c]) + float(np.sum(np.log(np.diag(p)))) - 0.5 * np.sum(y * y, axis=1)

    def score(self, x: np.ndarray) -> np.ndarray:
        real = 1 - self.fake_component
        return self._log_joint(x, self.fake_component) - self._log_joint(x, real)

    @staticmethod
    def probability(score: np.ndarray) -> np.ndarray:
        """P(fake | x) under the mixture: the logistic function of the log posterior ratio that is the score."""
        return logistic(score)

    def save(self, group: h5py.Group) -> None:
        _dataset(group, "weights", self.weights)
        _dataset(group, "means", self.means)
        _dataset(group, "covariances", self.covariances)
        group.attrs["fake_component"] = self.fake_component

    @classmethod
    def load(cls, group: h5py.Group, width: int) -> GMMDecision:
        fake = _scalar(group, "fake_component")
        if fake not in (0, 1):
            raise ModelError("gmm/fake_component must be 0 or 1")
        weights = _array(group, "weights", (2,))
        if not (weights > 0).all() or abs(weights.sum() - 1) > 1e-6:
            raise ModelError(f"gmm/weights must be positive and sum to 1, not {weights.tolist()}")
        return cls(
            weights,
            _array(group, "means", (2, width)),
            _array(group, "covariances", (2, width, width)),
            int(fake),
        )


@dataclass(frozen=True, eq=False)
class Scaling:
    """Algorithm 1's per-feature rescaling: (f - low) / (high - low), low < high the two component means."""

    low: np.ndarray  # (F,)
    high: np.ndarray  # (F,)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.low) / (self.high - self.low)

    def save(self, group: h5py.Group) -> None:
        _dataset(group, "low", self.low)
        _dataset(group, "high", self.high)

    @classmethod
    def load(cls, group: h5py.Group, width: int) -> Scaling:
        low, high = _array(group, "low", (width,)), _array(group, "high", (width,))
        if not (high > low).all():
            raise ModelError("scaling: every high must be above its low")
        return cls(low, high)


@numba.njit(cache=True, nogil=True)
def _linear_scores(x, coef, intercept):  # pragma: no cover - compiled
    """x @ coef + intercept per row, summed in a fixed order."""
    out = np.empty(x.shape[0])
    for r in range(x.shape[0]):
        total = 0.0
        for k in range(x.shape[1]):
            total += x[r, k] * coef[k]
        out[r] = total + intercept
    return out


@dataclass(frozen=True, eq=False)
class LogisticDecision:
    """A logistic regression: score = x . coef + intercept, the log odds of fake; > 0 means fake."""

    coef: np.ndarray  # (F,)
    intercept: float
    method: ClassVar[str] = "logistic"

    def score(self, x: np.ndarray) -> np.ndarray:
        return _linear_scores(np.ascontiguousarray(x), self.coef, self.intercept)

    def save(self, group: h5py.Group) -> None:
        _dataset(group, "coef", self.coef)
        group.attrs["intercept"] = self.intercept

    @classmethod
    def load(cls, group: h5py.Group, width: int) -> LogisticDecision:
        return cls(_array(group, "coef", (width,)), _scalar(group, "intercept"))


@dataclass(frozen=True, eq=False)
class Standardisation:
    """Each feature as (f - mean) / scale: the training rows' mean and standard deviation (1 where it is 0)."""

    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardisation:
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        return cls(mean, np.where(scale > 0, scale, 1.0))

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale

    def save(self, group: h5py.Group) -> None:
        _dataset(group, "mean", self.mean)
        _dataset(group, "scale", self.scale)

    @classmethod
    def load(cls, group: h5py.Group, width: int) -> Standardisation:
        scale = _array(group, "scale", (width,))
        if not np.all(scale > 0):
            raise ModelError(f"{group.name}/scale holds values that are not positive")
        return cls(_array(group, "mean", (width,)), scale)


@numba.njit(cache=True, nogil=True)
def _project(x, mean, components):  # pragma: no cover - compiled
    """(x - mean) @ components.T per row, summed in a fixed order, without an (N, F, K) temporary."""
    out = np.empty((x.shape[0], components.shape[0]))
    for r in range(x.shape[0]):
        for k in range(components.shape[0]):
            total = 0.0
            for j in range(x.shape[1]):
                total += (x[r, j] - mean[j]) * components[k, j]
            out[r, k] = total
    return out


@dataclass(frozen=True, eq=False)
class Projection:
    """The first principal components: x becomes (x - mean) @ components.T, K values per row."""

    mean: np.ndarray  # (F,)
    components: np.ndarray  # (K, F), orthonormal rows, each one's largest entry positive

    @classmethod
    def fit(cls, x: np.ndarray, n_components: int) -> Projection:
        x = np.asarray(x, dtype=np.float64)
        if not 1 <= n_components <= x.shape[1]:
            raise DetectorError(f"cannot keep {n_components} principal components of {x.shape[1]} features")
        mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        components = vt[:n_components]
        signs = np.sign(components[np.arange(n_components), np.argmax(np.abs(components), axis=1)])
        return cls(mean, components * np.where(signs == 0, 1.0, signs)[:, None])

    @property
    def width(self) -> int:
        return int(self.components.shape[0])

    def apply(self, x: np.ndarray) -> np.ndarray:
        return _project(np.ascontiguousarray(x, dtype=np.float64), self.mean, np.ascontiguousarray(self.components))

    def save(self, group: h5py.Group) -> None:
        _dataset(group, "mean", self.mean)
        _dataset(group, "components", self.components)

    @classmethod
    def load(cls, group: h5py.Group, width: int) -> Projection:
        components = _array(group, "components", (None, width))
        if not 1 <= len(components) <= width:
            raise ModelError(f"{group.name}/components has {len(components)} rows for {width} features")
        return cls(_array(group, "mean", (width,)), components)


_DECISIONS: dict[str, type[SVMDecision] | type[GMMDecision] | type[LogisticDecision]] = {
    "svm": SVMDecision,
    "gmm": GMMDecision,
    "logistic": LogisticDecision,
}


# --- models --------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Model:
    """A fitted detector for features measured one way, optionally rescaled for a target domain."""

    measurement: Measurement
    decision: SVMDecision | GMMDecision | LogisticDecision
    scaling: Scaling | None = None
    provenance: dict = field(default_factory=dict)
    standardisation: Standardisation | None = None  # applied after scaling
    projection: Projection | None = None  # applied after standardisation

    @property
    def method(self) -> str:
        return self.decision.method

    @property
    def spectrum(self) -> str:
        return self.measurement.spectrum

    @property
    def n_features(self) -> int:
        return self.measurement.n_features

    def score(self, features: np.ndarray) -> np.ndarray:
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

    def predict(self, features: np.ndarray) -> np.ndarray:
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

    def save(self, path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = ()) -> None:
        """Write the model as HDF5 (docs/models.md), whole or not at all and never over one of `inputs`;
        the file bytes depend only on the model."""
        with output_path(path, inputs=inputs) as tmp, h5py.File(tmp, "w", track_order=True) as f:
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


def verdicts_of(scores: np.ndarray) -> np.ndarray:
    """'fake' for score > 0, 'real' for score <= 0, '' for NaN."""
    scores = np.asarray(scores, dtype=np.float64)
    out = np.where(scores > 0, FAKE, REAL).astype(object)
    out[np.isnan(scores)] = ""
    return out


VERDICT_COLUMNS = ("path", "status", "verdict", "score", "threshold", "probability")


def write_verdicts(
    path: str | os.PathLike,
    paths: Sequence[str],
    status: Iterable[str],
    verdicts: Iterable[str],
    scores: Iterable[float],
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    threshold: float = 0.0,
    probability: Iterable[float] | None = None,
) -> None:
    """The classify CSV (`-`: standard output): path, status, verdict (real, fake, or empty when
    unusable), score (full precision), the threshold the verdict compares the score with, and the
    model's probability that the file is fake (empty where the model gives none). Written whole or
    not at all, never over one of `inputs`."""

    def number(value: float) -> str:
        return "" if math.isnan(value) else repr(float(value))

    paths = list(paths)
    chances = [math.nan] * len(paths) if probability is None else list(probability)
    with output_file(path, inputs=inputs) as handle:
        writer = csv.writer(handle)
        writer.writerow(VERDICT_COLUMNS)
        for row in zip(paths, status, verdicts, scores, chances, strict=True):
            writer.writerow([row[0], row[1], row[2], number(row[3]), repr(float(threshold)), number(row[4])])


def _dataset(group: h5py.Group, name: str, values: np.ndarray) -> None:
    group.create_dataset(name, data=np.asarray(values, dtype=np.float64), track_times=False)


# The model file being loaded (load_model): the decisions' loaders read through its checks (scanner.io.h5safe).
_LOADING: ContextVar[CheckedFile | None] = ContextVar("_LOADING", default=None)


def _array(group: h5py.Group, name: str, shape: tuple) -> np.ndarray:
    checked = _LOADING.get()
    item = group.get(name) if checked is None else checked.dataset(group, name, "fiu", len(shape), required=False)
    if not isinstance(item, h5py.Dataset) or item.dtype.kind not in "fiu":
        raise ModelError(f"{group.name}/{name}: missing, or not an array of numbers")
    values = np.asarray(item[()], dtype=np.float64)
    if values.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(values.shape, shape, strict=True)
    ):
        raise ModelError(f"{group.name}/{name} has shape {values.shape}, expected {shape}")
    if not np.isfinite(values).all():
        raise ModelError(f"{group.name}/{name} holds non-finite values")
    return values


def _scalar(group: h5py.Group, name: str) -> float:
    checked = _LOADING.get()
    value = checked.attributes(group, (name,)).get(name) if checked is not None else group.attrs.get(name)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelError(f"{group.name}: attribute {name} is missing or not a finite number ({value!r})")
    return float(value)


def _text(attrs: dict, name: str) -> str:
    value = attrs.get(name)
    if value is None:
        raise ModelError(f"attribute {name} is missing")
    if not isinstance(value, str):
        raise ModelError(f"attribute {name} is not text ({value!r})")
    return value


def default_model_path() -> Path:
    """The model bundled with the package (docs/detectors.md says what it was trained on)."""
    return Path(str(resources.files("scanner") / "models" / DEFAULT_MODEL_FILE))


def bundled_model_path(feature_set: str) -> Path:
    """The bundled model of a feature set (the default model is the extended set's)."""
    return Path(str(resources.files("scanner") / "models" / BUNDLED_MODEL_FILES[feature_set]))


def bundled_model(feature_set: str) -> Model:
    """The bundled model for features of this set: what classify uses when no model is given."""
    return load_model(bundled_model_path(feature_set))


def load_model(path: str | os.PathLike | None = None) -> Model:
    """Read a model file (None: the bundled default model). Reads arrays only; runs nothing from the file.

    The file is opened through scanner.io.h5safe's checks (a regular file, hard links
    only, data stored in it, attributes of plain types); every problem is a
    ModelError naming the file.
    """
    path = default_model_path() if path is None else Path(path)
    if not os.path.lexists(path):
        raise ModelError(f"{path}: no such model file")
    with CheckedFile(path, "model file", ModelError) as checked:
        token = _LOADING.set(checked)
        try:
            with errors_as(ModelError, str(path), "model file"):
                return _model_from(checked)
        except ModelError as exc:
            message = str(exc)
            raise ModelError(message if message.startswith(f"{path}: ") else f"{path}: {message}") from None
        finally:
            _LOADING.reset(token)


def _model_from(checked: CheckedFile) -> Model:
    f = checked.file
    attrs = checked.attributes(f)
    if attrs.get("format") != MODEL_FORMAT:
        raise ModelError("not a scanner model file (no format attribute 'scanner-model')")
    version = attrs.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in READABLE_SCHEMAS:
        raise ModelError(
            f"model schema version {version!r} is not one this scanner reads {READABLE_SCHEMAS}; "
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
            f"the model's features ({found.name + ' set' if found else names}) are not those of the "
            f"{measurement.feature_set} set it declares"
        )
    method = _text(attrs, "method")
    decision_group = checked.group(f, method) if method in _DECISIONS else None
    if decision_group is None:
        raise ModelError(f"unknown or missing method {method!r}")
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
    decision = _DECISIONS[method].load(decision_group, decision_width)
    return Model(measurement, decision, scaling, provenance, standardisation, projection)


# --- fitting -------------------------------------------------------------------


def resolve_gamma(gamma: str | float, x: np.ndarray) -> float:
    """scikit-learn's RBF gamma: 'scale' = 1 / (6 var(X)), 'auto' = 1/6, or the number given."""
    if gamma == "scale":
        variance = x.var()
        return float(1.0 / (x.shape[1] * variance)) if variance != 0 else 1.0
    if gamma == "auto":
        return 1.0 / x.shape[1]
    try:
        value = float(gamma)
    except (TypeError, ValueError):
        value = math.nan
    if not value > 0:
        raise DetectorError(f"gamma must be positive, 'scale' or 'auto', not {gamma!r}")
    return value


def fit_svm(
    x: np.ndarray,
    is_fake: np.ndarray,
    *,
    C: float = 1.0,
    gamma: str | float = "scale",
    class_weight: str | None = None,
    sample_weight: np.ndarray | None = None,
) -> SVMDecision:
    """The paper's RBF SVM (scikit-learn's defaults: C=1, gamma='scale', no feature scaling)."""
    from sklearn.svm import SVC  # imported here: loading and applying a model needs no scikit-learn

    x, y = _supervised_data(x, is_fake, C, "an SVM")
    numeric_gamma = resolve_gamma(gamma, x)
    svc = SVC(kernel="rbf", C=C, gamma=numeric_gamma, class_weight=class_weight).fit(x, y, sample_weight=sample_weight)
    # Binary SVC: decision = K @ dual_coef_[0] + intercept_[0], positive for classes_[1] (fake).
    return SVMDecision(
        np.array(svc.support_vectors_, dtype=np.float64),
        np.array(svc.dual_coef_[0], dtype=np.float64),
        float(svc.intercept_[0]),
        numeric_gamma,
    )


def _supervised_data(x: np.ndarray, is_fake: np.ndarray, C: float, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Features as contiguous float64 and labels as 0/1, after checking both classes are there and C > 0."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.asarray(is_fake, dtype=bool).astype(np.int64)
    n_fake = int(y.sum())
    if n_fake == 0 or n_fake == len(y):
        raise DetectorError(f"{what} needs both classes; got {len(y) - n_fake} real and {n_fake} fake rows")
    if not C > 0:
        raise DetectorError(f"C must be positive, not {C}")
    return x, y


def fit_logistic(
    x: np.ndarray,
    is_fake: np.ndarray,
    *,
    C: float = 1.0,
    class_weight: str | None = None,
    sample_weight: np.ndarray | None = None,
) -> LogisticDecision:
    """An L2-regularised logistic regression (scikit-learn's lbfgs, C=1 by default) on the features as given."""
    from sklearn.linear_model import LogisticRegression

    x, y = _supervised_data(x, is_fake, C, "a logistic regression")
    fitted = LogisticRegression(C=C, class_weight=class_weight, max_iter=10_000).fit(x, y, sample_weight=sample_weight)
    return LogisticDecision(np.array(fitted.coef_[0], dtype=np.float64), float(fitted.intercept_[0]))


@dataclass(frozen=True)
class Supervised:
    """A supervised fit: the decision, and the standardisation it runs after (if any)."""

    decision: SVMDecision | LogisticDecision
    standardisation: Standardisation | None = None

    def score(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return self.decision.score(self.standardisation.apply(x) if self.standardisation is not None else x)


def fit_classifier(
    x: np.ndarray,
    is_fake: np.ndarray,
    *,
    method: str = "svm",
    standardise: bool = False,
    C: float = 1.0,
    gamma: str | float = "scale",
    class_weight: str | None = None,
    sample_weight: np.ndarray | None = None,
) -> Supervised:
    """The SVM or the logistic regression, on the features standardised first when `standardise` is set
    (their mean and scale over these rows become part of the model)."""
    x = np.asarray(x, dtype=np.float64)
    standardisation = Standardisation.fit(x) if standardise else None
    z = standardisation.apply(x) if standardisation is not None else x
    decision: SVMDecision | LogisticDecision
    if method == "svm":
        decision = fit_svm(z, is_fake, C=C, gamma=gamma, class_weight=class_weight, sample_weight=sample_weight)
    elif method == "logistic":
        decision = fit_logistic(z, is_fake, C=C, class_weight=class_weight, sample_weight=sample_weight)
    else:
        raise DetectorError(f"unknown supervised method {method!r}; choose svm or logistic")
    return Supervised(decision, standardisation)


@dataclass(frozen=True)
class GMMFit:
    """A fitted mixture, how its fake side was chosen, and what it runs on."""

    decision: GMMDecision
    rule: str  # "paper" or "anchor"
    anchors_in_real: float | None = None  # share of anchors in the real component
    rows_in_real: float | None = None  # share of all the fitted rows in the real component
    standardisation: Standardisation | None = None  # the mixture runs on standardised features ...
    projection: Projection | None = None  # ... reduced to their first principal components

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """The features as the mixture sees them."""
        x = np.asarray(x, dtype=np.float64)
        if self.standardisation is not None:
            x = self.standardisation.apply(x)
        if self.projection is not None:
            x = self.projection.apply(x)
        return x

    def score(self, x: np.ndarray) -> np.ndarray:
        return self.decision.score(self.inputs(x))


def fit_gmm(
    x: np.ndarray, *, seed: int = 0, real_anchor: np.ndarray | None = None, components: int | None = None
) -> GMMFit:
    """A 2-component full-covariance mixture fitted without labels.

    With `components`, the features are standardised and reduced to that many
    principal components first (both kept in the fit, and in a model made of it).
    The fake component is, by the paper's rule, the one with the larger mean of the
    `mean` feature. With `real_anchor` (features of known-real images), the real
    component is the one enriched in anchors: whose share among the anchors most
    exceeds its share among all the fitted rows (not merely the one holding more
    anchors: a large component holds most of any sample).
    """
    from sklearn.mixture import GaussianMixture

    x = np.ascontiguousarray(x, dtype=np.float64)
    standardisation = projection = None
    z = x
    if components is not None:
        standardisation = Standardisation.fit(x)
        projection = Projection.fit(standardisation.apply(x), components)
        z = np.ascontiguousarray(projection.apply(standardisation.apply(x)))
    width = z.shape[1]
    if len(z) < 2 * width:
        raise DetectorError(f"a mixture needs at least {2 * width} usable rows, got {len(z)}")
    gmm = GaussianMixture(n_components=2, covariance_type="full", random_state=seed).fit(z)
    weights = np.array(gmm.weights_, dtype=np.float64)
    means = np.array(gmm.means_, dtype=np.float64)
    covariances = np.array(gmm.covariances_, dtype=np.float64)
    if projection is None:
        by_rule = int(np.argmax(means[:, _MEAN]))
    else:
        # The components live in principal-component space: compare the `mean` feature of their rows.
        in_one = GMMDecision(weights, means, covariances, 1).score(z) > 0
        by_rule = int(np.mean(x[in_one, _MEAN]) > np.mean(x[~in_one, _MEAN])) if 0 < in_one.sum() < len(z) else 1

    def fit_of(fake: int, rule: str, anchors_in_real: float | None = None, rows_in_real: float | None = None) -> GMMFit:
        decision = GMMDecision(weights, means, covariances, fake)
        return GMMFit(decision, rule, anchors_in_real, rows_in_real, standardisation, projection)

    if real_anchor is None:
        return fit_of(by_rule, "paper")
    anchors = np.asarray(real_anchor, dtype=np.float64).reshape(-1, x.shape[1])
    anchors = anchors[np.isfinite(anchors).all(axis=1)]
    if len(anchors) == 0:
        raise DetectorError("none of the real anchors has usable features")
    as_rule = fit_of(by_rule, "paper")
    anchors_in_rule_fake = float(np.mean(as_rule.score(anchors) > 0))
    rows_in_rule_fake = float(np.mean(as_rule.decision.score(z) > 0))
    if anchors_in_rule_fake == rows_in_rule_fake:
        raise DetectorError(
            "the real anchors fall in both components as evenly as all the rows do, so they cannot tell the "
            "sides apart; give more, or clearer, known-real images"
        )
    fake = by_rule if anchors_in_rule_fake < rows_in_rule_fake else 1 - by_rule
    if fake == by_rule:
        return fit_of(fake, "anchor", 1 - anchors_in_rule_fake, 1 - rows_in_rule_fake)
    return fit_of(fake, "anchor", anchors_in_rule_fake, rows_in_rule_fake)


def wrong_side_share(decision: GMMDecision | GMMFit, x: np.ndarray, is_fake: np.ndarray) -> float:
    """Share of labelled rows the mixture gets wrong: above 0.5 means its fake side is the wrong one."""
    return float(np.mean((decision.score(x) > 0) != np.asarray(is_fake, dtype=bool)))


def fit_gmm_on(
    samples: Samples,
    *,
    seed: int = 0,
    anchors: list[str] | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    measured_anchors: tuple[np.ndarray, list[str]] | None = None,
) -> tuple[GMMFit, list[str]]:
    """The mixture on a sample's usable rows (labels unused), with notes for the user.

    The notes name the anchors that could not be used and warn when the sample's
    labels (where it has both classes) show that the mixture's fake side is the wrong one.
    """
    notes = []
    anchor_x = None
    if anchors:  # measured_anchors: anchor_features of these anchors, when the caller has them already
        anchor_x, problems = measured_anchors or anchor_features(anchors, samples, limits)
        notes += [f"real anchor not used: {p}" for p in problems]
    usable = samples.usable
    components = detector_defaults(samples.measurement.feature_set).gmm_components
    fit = fit_gmm(samples.features[usable], seed=seed, real_anchor=anchor_x, components=components)
    if fit.rule == "anchor" and anchor_x is not None:
        notes.append(
            f"{fit.anchors_in_real:.0%} of {len(anchor_x)} real anchors fall in the component called real, "
            f"which holds {fit.rows_in_real:.0%} of all the rows"
        )
    labelled = samples.labelled
    if 0 < samples.is_fake[labelled].sum() < labelled.sum():
        wrong = wrong_side_share(fit, samples.features[labelled], samples.is_fake[labelled])
        if wrong > 0.5:
            how = "the paper's rule (larger mean feature = fake)" if fit.rule == "paper" else "the real anchors"
            notes.append(
                f"warning: the labels show that {how} picked the wrong component: {wrong:.0%} of the "
                f"{int(labelled.sum())} labelled rows get the wrong verdict; "
                + ("give known-real images with --real-anchor" if fit.rule == "paper" else "check the anchors")
            )
    return fit, notes


def component_means(x: np.ndarray, seed: int = 0, names: tuple[str, ...] = PAPER.names) -> Scaling:
    """Algorithm 1's prior knowledge: per feature, the two means of a 1-D, 2-component mixture, ordered."""
    from sklearn.mixture import GaussianMixture

    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1)
    if len(x) < 2:
        raise DetectorError(f"a domain needs at least 2 usable rows to fit its mixtures, got {len(x)}")
    width = x.shape[1]
    low = np.zeros(width)
    high = np.zeros(width)
    for k in range(width):
        column = np.ascontiguousarray(x[:, k : k + 1])
        if len(np.unique(column)) > 1:
            means = GaussianMixture(n_components=2, random_state=seed).fit(column).means_[:, 0]
            low[k], high[k] = np.min(means), np.max(means)
        if not high[k] > low[k]:
            raise DetectorError(f"feature {names[k]} does not vary in this domain; it cannot be rescaled")
    return Scaling(low, high)


@dataclass(frozen=True)
class Adapted:
    """Algorithm 1's outcome: an SVM on the rescaled source, carrying the target's scaling."""

    model: Model
    source_scaling: Scaling


def adapt(
    source_x: np.ndarray,
    source_is_fake: np.ndarray,
    target_x: np.ndarray,
    *,
    measurement: Measurement,
    seed: int = 0,
    C: float = 1.0,
    gamma: str | float = "scale",
    class_weight: str | None = None,
    provenance: dict | None = None,
) -> Adapted:
    """The paper's Algorithm 1: rescale each domain by its own component means, fit the SVM on the source."""
    source_scaling = component_means(source_x, seed, measurement.feature_names)
    target_scaling = component_means(target_x, seed, measurement.feature_names)
    decision = fit_svm(
        source_scaling.apply(np.asarray(source_x, dtype=np.float64)),
        source_is_fake,
        C=C,
        gamma=gamma,
        class_weight=class_weight,
    )
    info = dict(provenance or {})
    info["source_scaling"] = {"low": source_scaling.low.tolist(), "high": source_scaling.high.tolist()}
    return Adapted(Model(measurement, decision, target_scaling, info), source_scaling)


# --- workflows: what `train` and `classify` do, for any caller ---------------------------


def left_out(counts: dict[str, int], *, unlabelled: bool = True) -> str:
    """'left out: ...': the rows a fit did not use, and why."""
    parts = [f"{counts['unusable']} unusable (status not ok, or a NaN feature)"]
    if unlabelled:
        parts.append(f"{counts['unlabelled']} unlabelled")
    return "left out: " + ", ".join(parts)


def _side_rule(fit: GMMFit) -> str:
    return "the paper's rule" if fit.rule == "paper" else "the real anchors"


@dataclass(frozen=True)
class Trained:
    """A fitted model, a line saying what it was fitted on, and notes for the user (warnings, anchors)."""

    model: Model
    summary: str
    notes: tuple[str, ...] = ()


def train(
    samples: Samples,
    *,
    method: str | None = None,
    fake_fraction: float | None = None,
    seed: int = 0,
    C: float = 1.0,
    gamma: str | float = "scale",
    class_weight: str | None = None,
    anchors: Sequence[str] = (),
    provenance: dict | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    standardise: bool | None = None,
) -> Trained:
    """Fit a detector on labelled samples: an RBF SVM or a logistic regression (optionally with few fakes),
    or a GMM. None (method, standardise) takes the feature set's default (DETECTOR_DEFAULTS): on the
    paper's set, its unscaled SVM; on the extended set, a standardised logistic regression."""
    defaults = detector_defaults(samples.measurement.feature_set)
    method = method or defaults.method
    counts = samples.counts()
    info = {"method": method, "seed": seed, **(provenance or {})}
    standardisation = projection = None
    if method in ("svm", "logistic"):
        if anchors:
            raise DetectorError("real anchors choose a mixture's side; they apply to the gmm method (--method gmm)")
        if standardise is None:
            standardise = method == "logistic" or defaults.standardise_svm
        rows = np.flatnonzero(samples.labelled)
        if fake_fraction is not None:
            rows = rows[subsample_fakes(samples.is_fake[rows], fake_fraction, seed)]
        fit = fit_classifier(
            samples.features[rows],
            samples.is_fake[rows],
            method=method,
            standardise=standardise,
            C=C,
            gamma=gamma,
            class_weight=class_weight,
        )
        decision: SVMDecision | GMMDecision | LogisticDecision = fit.decision
        standardisation = fit.standardisation
        n_fake = int(samples.is_fake[rows].sum())
        info.update(
            real=len(rows) - n_fake,
            fake=n_fake,
            fake_fraction=fake_fraction,
            C=C,
            class_weight=class_weight,
            standardised=standardise,
        )
        if isinstance(fit.decision, SVMDecision):
            info["gamma"] = fit.decision.gamma
        name = "SVM" if method == "svm" else "logistic regression"
        scaled = " (standardised features)" if standardise else ""
        summary = f"trained {name}{scaled} on {len(rows)} rows ({len(rows) - n_fake} real, {n_fake} fake); " + left_out(
            counts
        )
        notes: list[str] = []
    elif method == "gmm":
        if fake_fraction is not None:
            raise DetectorError("a fake fraction subsamples labelled fakes; it applies to the svm and logistic methods")
        if standardise is not None:
            raise DetectorError("the mixture's inputs follow the feature set (docs/detectors.md); drop --standardise")
        gmm, notes = fit_gmm_on(samples, seed=seed, anchors=list(anchors), limits=limits)
        decision, standardisation, projection = gmm.decision, gmm.standardisation, gmm.projection
        n = int(samples.usable.sum())
        info.update(rows=n, side_rule=gmm.rule, components=projection.width if projection is not None else None)
        summary = f"fitted a 2-component mixture on {n} rows (fake side by {_side_rule(gmm)}); " + left_out(
            counts, unlabelled=False
        )
    else:
        raise DetectorError(f"unknown method {method!r}; choose {', '.join(METHODS)}")
    model = Model(
        samples.measurement, decision, provenance=info, standardisation=standardisation, projection=projection
    )
    return Trained(model, summary, tuple(notes))


@dataclass(frozen=True)
class Verdicts:
    """A verdict and a score per row: 'real', 'fake' or '' (unusable); higher scores are more likely fake."""

    paths: list[str]
    status: np.ndarray
    verdict: np.ndarray
    score: np.ndarray
    model: str  # what judged them, in words
    notes: tuple[str, ...] = ()
    threshold: float = 0.0  # the verdict is fake where score > threshold
    probability: np.ndarray | None = None  # P(fake | features), where the model defines one
    judge: Model | None = field(default=None, repr=False, compare=False)  # the model that scored them

    def counts(self) -> dict[str, int]:
        return {
            name: int(np.sum(self.verdict == value)) for name, value in (("fake", FAKE), ("real", REAL), ("none", ""))
        }


def classify(
    samples: Samples,
    model: Model | None = None,
    *,
    unsupervised: bool = False,
    anchors: Sequence[str] = (),
    seed: int = 0,
    model_name: str = "bundled default",
    limits: ReadLimits = DEFAULT_LIMITS,
    measured_anchors: tuple[np.ndarray, list[str]] | None = None,
) -> Verdicts:
    """Judge every row: with a model (None: the bundled model of the rows' feature set), or by a mixture
    fitted on these rows (`measured_anchors`: anchor_features of `anchors`, if already measured)."""
    if unsupervised and model is not None:
        raise DetectorError("give either a model or unsupervised, not both")
    if anchors and not unsupervised:
        raise DetectorError(
            "real anchors choose a mixture's side; they apply to the unsupervised mixture (--unsupervised)"
        )
    usable = samples.usable
    notes: tuple[str, ...] = ()
    if unsupervised:
        fit, fit_notes = fit_gmm_on(
            samples, seed=seed, anchors=list(anchors), limits=limits, measured_anchors=measured_anchors
        )
        notes = tuple(fit_notes)
        judge = Model(samples.measurement, fit.decision, standardisation=fit.standardisation, projection=fit.projection)
        described = (
            f"a 2-component mixture fitted on this batch ({int(usable.sum())} rows, fake side by {_side_rule(fit)})"
        )
    else:
        judge = model if model is not None else bundled_model(samples.measurement.feature_set)
        judge.check_compatible(samples.measurement)
        notes = canonical_notes(judge.measurement, samples.measurement)
        described = f"{model_name} ({judge.describe()})"
    scores = np.where(usable, judge.score(samples.features), np.nan)
    return Verdicts(samples.paths, samples.status, verdicts_of(scores), scores, described, notes, judge=judge)


# --- thresholds and probabilities: how a user turns scores into verdicts --------------------


def logistic(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), without overflow; NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    e = np.exp(x[~positive])  # NaN lands here too, and stays NaN
    out[~positive] = e / (1.0 + e)
    return out


def probability_of(model: Model, scores: np.ndarray) -> np.ndarray | None:
    """P(fake | x) per score where the model's decision defines one (a mixture's posterior); None where it
    does not (an SVM's score is a signed distance, not a probability)."""
    from_score = getattr(model.decision, "probability", None)
    return None if from_score is None else np.asarray(from_score(np.asarray(scores, dtype=np.float64)))


@dataclass(frozen=True)
class Threshold:
    """A decision threshold chosen from known-real images: scores above it are called fake."""

    value: float
    target_fpr: float  # the false-positive rate asked for
    reals: int  # known-real images scored
    above: int  # of them, how many score above the threshold (called fake)

    @property
    def achieved_fpr(self) -> float:
        return self.above / self.reals

    def describe(self) -> str:
        text = (
            f"threshold {self.value:.6g}: {self.above} of {self.reals} known-real images score above it "
            f"({self.achieved_fpr:.1%}, target at most {self.target_fpr:.1%})"
        )
        if self.reals * self.target_fpr < 1:
            text += (
                f"; with {self.reals} known reals no false-positive rate below {1 / self.reals:.1%} can be "
                "told apart from zero, so the threshold is their highest score: give more known reals"
            )
        return text


def threshold_at_fpr(real_scores: np.ndarray, fpr: float) -> Threshold:
    """The lowest threshold that calls at most `fpr` of the known-real images fake (score > threshold).

    With n finite scores, k = floor(fpr * n) of them may lie above it: the threshold
    is the (k+1)-th highest score, so ties at it count as real. DetectorError when
    no score is finite or fpr is outside [0, 1).
    """
    if not 0.0 <= fpr < 1.0:
        raise DetectorError(f"the false-positive rate must be at least 0 and below 1, not {fpr}")
    scores = np.asarray(real_scores, dtype=np.float64)
    scores = np.sort(scores[np.isfinite(scores)])[::-1]
    if not len(scores):
        raise DetectorError("none of the known-real images could be scored; a threshold needs at least one")
    allowed = math.floor(fpr * len(scores) + 1e-9)
    value = float(scores[min(allowed, len(scores) - 1)])
    return Threshold(value, fpr, len(scores), int(np.sum(scores > value)))


def judge(
    samples: Samples,
    model: Model | None = None,
    *,
    unsupervised: bool = False,
    anchors: Sequence[str] = (),
    seed: int = 0,
    model_name: str = "bundled default",
    threshold: float | None = None,
    fpr: float | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> tuple[Verdicts, Threshold | None]:
    """classify(), with the decision threshold set by the user: a fixed `threshold` on the score, or the one
    that calls at most `fpr` of the known-real `anchors` fake; and the model's probability where it has one.

    Anchors choose the mixture's fake side as well when `unsupervised`. Returns the
    verdicts and, with `fpr`, how the threshold was chosen.
    """
    if threshold is not None and fpr is not None:
        raise DetectorError("give a threshold or a false-positive rate, not both")
    if fpr is not None and not anchors:
        raise DetectorError("a false-positive rate needs known-real images to measure it on (--real-anchor)")
    if anchors and not unsupervised and fpr is None:
        raise DetectorError(
            "real anchors choose a mixture's side (--unsupervised) or a threshold (--fpr); give one of those"
        )
    measured = anchor_features(list(anchors), samples, limits) if anchors else None  # read once, used twice
    verdicts = classify(
        samples,
        model,
        unsupervised=unsupervised,
        anchors=anchors if unsupervised else (),
        seed=seed,
        model_name=model_name,
        limits=limits,
        measured_anchors=measured,
    )
    scorer = verdicts.judge
    assert scorer is not None
    notes = list(verdicts.notes)
    chosen = None
    if fpr is not None and measured is not None:
        anchor_x, problems = measured
        if not unsupervised:  # with --unsupervised, classify has named them already
            notes += [f"real anchor not used: {p}" for p in problems]
        chosen = threshold_at_fpr(scorer.score(anchor_x), fpr)
        notes.append(chosen.describe())
    value = chosen.value if chosen is not None else threshold if threshold is not None else 0.0
    if not math.isfinite(value):
        raise DetectorError(f"the threshold must be a finite number, not {value}")
    verdict = np.where(verdicts.score > value, FAKE, REAL).astype(object)
    verdict[np.isnan(verdicts.score)] = ""
    result = replace(
        verdicts,
        verdict=verdict,
        threshold=value,
        probability=probability_of(scorer, verdicts.score),
        notes=tuple(notes),
    )
    return result, chosen
