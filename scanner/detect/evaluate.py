"""The paper's three evaluation protocols on labelled feature sets, repeatable to the last digit.

* binary (Table 2): GMM (unsupervised, the paper's side rule), SVM and logistic
  regression, trained on a stratified, seeded split of each set and scored on the
  rest, each with its feature set's defaults (scanner.detect.fit.DETECTOR_DEFAULTS:
  on the paper's set the paper's unscaled SVM and raw mixture);
* few-fakes (Table 3): the SVM trained on all training reals and fakes making 50,
  25, 5 and 1 % of the training set, with and without balanced class weights;
* adaptation (Table 4): for every ordered pair of sets, the SVM trained on the
  source's training split and applied to the target's test split, with the
  paper's Algorithm 1 (the target's scaling is fitted on its unlabelled test
  split) and, for contrast, without it.

Fake is the positive class. Every random step is seeded, so a run repeats exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split

from scanner.core.errors import DetectorError
from scanner.core.schema import Measurement
from scanner.detect.fit import adapt, detector_defaults, fit_classifier, fit_gmm, fit_svm, wrong_side_share
from scanner.detect.samples import Samples, subsample_fakes

PROTOCOLS = ("binary", "few-fakes", "adaptation")
FAKE_SHARES = (0.5, 0.25, 0.05, 0.01)
CLASS_WEIGHTS = (None, "balanced")
METRICS = ("accuracy", "recall", "precision", "f1", "roc_auc")
_METHOD_NAMES = {"gmm": "GMM", "svm": "SVM", "logistic": "logistic"}


@dataclass(frozen=True, eq=False)
class LabelledSet:
    """One named set's usable, labelled rows split into training and test parts."""

    name: str
    measurement: Measurement
    counts: dict[str, int]
    train_x: npt.NDArray[np.float64]
    train_fake: npt.NDArray[np.bool_]
    test_x: npt.NDArray[np.float64]
    test_fake: npt.NDArray[np.bool_]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.counts,
            "train_real": int(np.sum(~self.train_fake)),
            "train_fake": int(np.sum(self.train_fake)),
            "test_real": int(np.sum(~self.test_fake)),
            "test_fake": int(np.sum(self.test_fake)),
        }


def split_set(name: str, samples: Samples, test_size: float = 0.5, seed: int = 0) -> LabelledSet:
    """A stratified, seeded train/test split of a set's usable, labelled rows."""
    rows = np.flatnonzero(samples.labelled)
    is_fake = samples.is_fake[rows]
    n_fake = int(is_fake.sum())
    if min(n_fake, len(rows) - n_fake) < 2:
        raise DetectorError(
            f"set {name}: needs at least 2 labelled real and 2 labelled fake usable rows, "
            f"has {len(rows) - n_fake} real and {n_fake} fake"
        )
    if not 0.0 < test_size < 1.0:
        raise DetectorError(f"the test size must be a fraction between 0 and 1, not {test_size}")
    train, test = train_test_split(rows, test_size=test_size, stratify=is_fake, random_state=seed)
    train, test = np.sort(train), np.sort(test)
    return LabelledSet(
        name,
        samples.measurement,
        samples.counts(),
        samples.features[train],
        samples.is_fake[train],
        samples.features[test],
        samples.is_fake[test],
    )


def metrics(is_fake: npt.NDArray[np.bool_], score: npt.NDArray[np.float64]) -> dict[str, float]:
    """Accuracy, recall, precision, F1 (fake positive; a score above 0 means fake) and ROC AUC of the score."""
    predicted = score > 0
    return {
        "accuracy": float(accuracy_score(is_fake, predicted)),
        "recall": float(recall_score(is_fake, predicted, zero_division=0)),
        "precision": float(precision_score(is_fake, predicted, zero_division=0)),
        "f1": float(f1_score(is_fake, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(is_fake, score)),
        "n": int(len(is_fake)),
    }


def binary(sets: list[LabelledSet], seed: int = 0) -> list[dict[str, Any]]:
    """Table 2: GMM, SVM and logistic regression per set, with the feature set's defaults."""
    rows = []
    for s in sets:
        defaults = detector_defaults(s.measurement.feature_set)
        gmm = fit_gmm(s.train_x, seed=seed, components=defaults.gmm_components)
        rows.append(
            {
                "set": s.name,
                "method": "gmm",
                **metrics(s.test_fake, gmm.score(s.test_x)),
                "gmm_side_wrong": wrong_side_share(gmm, s.train_x, s.train_fake) > 0.5,
            }
        )
        for method in ("svm", "logistic"):
            standardise = method == "logistic" or defaults.standardise_svm
            fit = fit_classifier(s.train_x, s.train_fake, method=method, standardise=standardise)
            rows.append({"set": s.name, "method": method, **metrics(s.test_fake, fit.score(s.test_x))})
    return rows


def few_fakes(sets: list[LabelledSet], seed: int = 0) -> list[dict[str, Any]]:
    """Table 3: the SVM with fakes subsampled to each share of the training set."""
    rows = []
    for s in sets:
        standardise = detector_defaults(s.measurement.feature_set).standardise_svm
        for share in FAKE_SHARES:
            chosen = subsample_fakes(s.train_fake, share, seed)
            x, y = s.train_x[chosen], s.train_fake[chosen]
            for weight in CLASS_WEIGHTS:
                svm = fit_classifier(x, y, method="svm", standardise=standardise, class_weight=weight)
                rows.append(
                    {
                        "set": s.name,
                        "fake_share": share,
                        "class_weight": weight or "none",
                        "train_real": int(np.sum(~y)),
                        "train_fake": int(np.sum(y)),
                        **metrics(s.test_fake, svm.score(s.test_x)),
                    }
                )
    return rows


def adaptation(sets: list[LabelledSet], seed: int = 0) -> list[dict[str, Any]]:
    """Table 4: every ordered source -> target pair, with Algorithm 1 and without."""
    rows = []
    for source in sets:
        plain = fit_svm(source.train_x, source.train_fake)
        for target in sets:
            if target is source:
                continue
            adapted = adapt(
                source.train_x, source.train_fake, target.test_x, measurement=source.measurement, seed=seed
            ).model
            rows.append(
                {
                    "source": source.name,
                    "target": target.name,
                    **metrics(target.test_fake, adapted.score(target.test_x)),
                    "unadapted_accuracy": metrics(target.test_fake, plain.score(target.test_x))["accuracy"],
                }
            )
    return rows


def evaluate(
    named_samples: list[tuple[str, Samples]],
    protocols: Sequence[str] = PROTOCOLS,
    test_size: float = 0.5,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the chosen protocols; the result is plain JSON-ready data."""
    names = [name for name, _ in named_samples]
    if len(set(names)) != len(names):
        raise DetectorError(f"set names must differ: {', '.join(names)}")
    spectra = sorted({s.measurement.spectrum for _, s in named_samples})
    if len(spectra) > 1:
        raise DetectorError(f"the sets mix spectrum modes ({', '.join(spectra)}); evaluate one mode at a time")
    kinds = sorted({(s.measurement.feature_set, s.measurement.spectrum) for _, s in named_samples})
    if len(kinds) > 1:
        raise DetectorError(f"the sets mix feature sets ({', '.join(k[0] for k in kinds)}); evaluate one at a time")
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        raise DetectorError(f"unknown protocol {', '.join(sorted(unknown))}; choose from {', '.join(PROTOCOLS)}")
    sets = [split_set(name, samples, test_size, seed) for name, samples in named_samples]
    feature_set, spectrum = kinds[0]
    result: dict[str, Any] = {
        "seed": seed,
        "test_size": test_size,
        "feature_set": feature_set,
        "spectrum": spectrum,
        "sets": [s.summary() for s in sets],
    }
    if "binary" in protocols:
        result["binary"] = binary(sets, seed)
    if "few-fakes" in protocols:
        result["few_fakes"] = few_fakes(sets, seed)
    if "adaptation" in protocols:
        if len(sets) < 2:
            raise DetectorError("the adaptation protocol needs at least two sets")
        result["adaptation"] = adaptation(sets, seed)
    return result


def markdown_table(header: list[str], rows: list[list[object]]) -> list[str]:
    """Markdown table lines; floats with three decimals."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def markdown(result: dict[str, Any]) -> str:
    """The evaluation as Markdown tables (fake is the positive class)."""
    lines = [
        f"Feature set `{result.get('feature_set', 'paper')}`, spectrum `{result['spectrum']}`, "
        f"test share {result['test_size']:g}, seed {result['seed']}; fake is the positive class.",
        "",
    ]
    lines += markdown_table(
        ["set", "real", "fake", "left out", "train real/fake", "test real/fake"],
        [
            [
                s["name"],
                s["real"],
                s["fake"],
                s["unusable"] + s["unlabelled"],
                f"{s['train_real']}/{s['train_fake']}",
                f"{s['test_real']}/{s['test_fake']}",
            ]
            for s in result["sets"]
        ],
    )
    if "binary" in result:
        lines += ["", "Binary classification (Table 2, and a logistic regression):", ""]
        lines += markdown_table(
            ["set", "method", *METRICS],
            [
                [
                    r["set"],
                    _METHOD_NAMES.get(r["method"], r["method"]) + (" (wrong side)" if r.get("gmm_side_wrong") else ""),
                    *(r[m] for m in METRICS),
                ]
                for r in result["binary"]
            ],
        )
    if "few_fakes" in result:
        lines += ["", "SVM with few fakes in training (Table 3):", ""]
        lines += markdown_table(
            ["set", "fake share", "class weight", "train real/fake", *METRICS],
            [
                [
                    r["set"],
                    f"{r['fake_share']:.0%}",
                    r["class_weight"],
                    f"{r['train_real']}/{r['train_fake']}",
                    *(r[m] for m in METRICS),
                ]
                for r in result["few_fakes"]
            ],
        )
    if "adaptation" in result:
        lines += ["", "Domain adaptation, SVM with Algorithm 1 (Table 4):", ""]
        lines += markdown_table(
            ["source", "target", *METRICS, "accuracy without adaptation"],
            [
                [r["source"], r["target"], *(r[m] for m in METRICS), r["unadapted_accuracy"]]
                for r in result["adaptation"]
            ],
        )
    return "\n".join(lines) + "\n"
