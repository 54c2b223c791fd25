"""What `scanner train` and `scanner classify` do, for any caller: train, classify, judge.

The pieces live beside this module: labels (real or fake), samples (the rows of
feature tables), decisions and model (the detectors and their files), fit (the
fits and DETECTOR_DEFAULTS), verdicts (thresholds and the verdicts file).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scanner.core.constants import DEFAULT_LIMITS, ReadLimits
from scanner.core.errors import DetectorError
from scanner.detect.decisions import GMMDecision, LogisticDecision, SVMDecision
from scanner.detect.fit import METHODS, GMMFit, detector_defaults, fit_classifier, fit_gmm_on
from scanner.detect.labels import FAKE, REAL
from scanner.detect.model import Model, bundled_model, canonical_notes, probability_of
from scanner.detect.samples import Samples, anchor_features, subsample_fakes
from scanner.detect.verdicts import (
    UNCALIBRATED_WARNING,
    UNSUPERVISED,
    Provenance,
    Threshold,
    threshold_at_fpr,
    verdicts_of,
)


def left_out(counts: dict[str, int], *, unlabelled: bool = True) -> str:
    """'left out: ...': the rows a fit did not use, and why."""
    parts = [f"{counts['unusable']} unusable (status not ok, or a NaN feature)"]
    if unlabelled:
        parts.append(f"{counts['unlabelled']} unlabelled")
    return "left out: " + ", ".join(parts)


def _side_rule(fit: GMMFit) -> str:
    """How the mixture's fake side was picked, in words: by the paper's rule (never certain), or by the real
    anchors, with how certain they make it."""
    if fit.certainty is None:
        return "the paper's rule, often wrong"
    return f"the real anchors: {fit.certainty.describe()}"


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
    provenance: dict[str, Any] | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    standardise: bool | None = None,
    accept_uncertain_side: bool = False,
) -> Trained:
    """Fit a detector on labelled samples: an RBF SVM or a logistic regression (optionally with few fakes),
    or a GMM. None (method, standardise) takes the feature set's default (DETECTOR_DEFAULTS): on the
    paper's set, its unscaled SVM; on the extended set, a standardised logistic regression. A mixture's side
    that the real `anchors` do not settle is refused unless `accept_uncertain_side` (fit_gmm_on)."""
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
        gmm, notes = fit_gmm_on(
            samples, seed=seed, anchors=list(anchors), limits=limits, accept_uncertain_side=accept_uncertain_side
        )
        decision, standardisation, projection = gmm.decision, gmm.standardisation, gmm.projection
        n = int(samples.usable.sum())
        info.update(
            rows=n,
            side_rule=gmm.rule,
            # None: the paper's rule, never certain; else the anchors' counts, p-value, cut and resampled share
            side_certainty=gmm.certainty.as_provenance() if gmm.certainty is not None else None,
            components=projection.width if projection is not None else None,
        )
        if gmm.certainty is not None:
            info["accepted_uncertain_side"] = not gmm.certainty.certain
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
    provenance: Provenance | None = None  # what produced them (set by judge)
    sha256: np.ndarray | None = None  # each file's SHA-256 as its row recorded it ('' where not read)
    declared: np.ndarray | None = None  # what each file declares about its making ('' when nothing)

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
    accept_uncertain_side: bool = False,
) -> Verdicts:
    """Judge every row: with a model (None: the bundled model of the rows' feature set), or by a mixture
    fitted on these rows (`measured_anchors`: anchor_features of `anchors`, if already measured; a side they
    do not settle is refused unless `accept_uncertain_side`)."""
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
            samples,
            seed=seed,
            anchors=list(anchors),
            limits=limits,
            measured_anchors=measured_anchors,
            accept_uncertain_side=accept_uncertain_side,
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
    return Verdicts(
        samples.paths,
        samples.status,
        verdicts_of(scores),
        scores,
        described,
        notes,
        judge=judge,
        sha256=samples.sha256,
        declared=samples.declared,
    )


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
    accept_uncertain_side: bool = False,
) -> tuple[Verdicts, Threshold | None]:
    """classify(), with the decision threshold set by the user: a fixed `threshold` on the score, or the one
    that calls at most `fpr` of the known-real `anchors` fake; and the model's probability where it has one.

    Anchors choose the mixture's fake side as well when `unsupervised` (a side they do not settle is
    refused unless `accept_uncertain_side`). Returns the
    verdicts, with their Provenance, and, with `fpr`, how the threshold was chosen. The bundled
    model on its own boundary (no threshold, no fpr, not unsupervised) adds the warning
    UNCALIBRATED_WARNING to the notes.
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
        accept_uncertain_side=accept_uncertain_side,
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
    provenance = Provenance(
        model=UNSUPERVISED if unsupervised else scorer.source or "(a model not read from a file)",
        model_sha256="" if unsupervised else scorer.sha256,
        method=scorer.method,
        feature_set=scorer.measurement.feature_set,
        threshold=value,
        threshold_set_by="--fpr" if fpr is not None else "--threshold" if threshold is not None else "default",
        target_fpr=fpr if fpr is not None else math.nan,
        real_anchors=len(measured[0]) if measured is not None else 0,
        real_anchor_paths=tuple(anchors),
    )
    if provenance.uncalibrated:
        notes.append(f"warning: {UNCALIBRATED_WARNING}")
    result = replace(
        verdicts,
        verdict=verdict,
        threshold=value,
        probability=probability_of(scorer, verdicts.score),
        notes=tuple(notes),
        provenance=provenance,
    )
    return result, chosen
