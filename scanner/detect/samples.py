"""Samples: the rows of feature tables with their labels, the rows a detector can use, and known-real anchors."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scanner.core.constants import DEFAULT_LIMITS, ReadLimits, Status
from scanner.core.errors import DetectorError
from scanner.core.schema import FeatureTable, Measurement
from scanner.detect.labels import FAKE, REAL, labels_of, path_key
from scanner.features.extract import ExtractorSpec, build_extractor
from scanner.features.measure import measure_file


def usable_rows(status: Sequence[str] | npt.NDArray[Any], features: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """True where a row can be judged: status ok and all six features finite."""
    features = np.asarray(features, dtype=np.float64)
    features = features.reshape(len(features), -1) if features.size else features.reshape(len(features), 0)
    usable: npt.NDArray[np.bool_] = (np.asarray(status, dtype=object) == Status.OK) & np.isfinite(features).all(axis=1)
    return usable


@dataclass(frozen=True, eq=False)
class Samples:
    """The rows of one or more feature tables, with their labels ('' where unknown)."""

    paths: list[str]
    status: npt.NDArray[np.object_]
    features: npt.NDArray[np.float64]
    labels: npt.NDArray[np.object_]
    measurement: Measurement
    sha256: npt.NDArray[np.object_] | None = None  # each file's SHA-256 ('' where not read); None: not known
    # what each file's metadata declares about its making ('' when nothing); None: not known
    declared: npt.NDArray[np.object_] | None = None

    @property
    def spectrum(self) -> str:
        return self.measurement.spectrum

    @property
    def usable(self) -> npt.NDArray[np.bool_]:
        return usable_rows(self.status, self.features)

    @property
    def labelled(self) -> npt.NDArray[np.bool_]:
        """Usable rows with a label: the rows supervised training uses."""
        labelled: npt.NDArray[np.bool_] = self.usable & (self.labels != "")
        return labelled

    @property
    def is_fake(self) -> npt.NDArray[np.bool_]:
        fake: npt.NDArray[np.bool_] = self.labels == FAKE
        return fake

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
        sha256=np.array([h for t in tables for h in t.sha256], dtype=object),
        declared=np.array([d for t in tables for d in t.declared], dtype=object),
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
    rows = {path_key(p): i for i, p in enumerate(samples.paths)}
    usable = samples.usable
    extractor = None
    values, problems = [], []
    for path in files:
        row = rows.get(path_key(path))
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
