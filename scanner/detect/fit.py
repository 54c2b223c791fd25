"""Fitting detectors: the SVM, the logistic regression, the two-component mixture, and the paper's adaptation.

Le and Woo (2021) classify the six features with a two-component Gaussian
mixture (no labels) or an RBF SVM, train with few fakes by subsampling them, and
carry an SVM to a new domain by rescaling each feature with the two component
means of a one-dimensional mixture fitted in each domain (their Algorithm 1).
On the paper's set these stay as the paper has them. A wider set (the extended
one) is standardised inside the model (each feature's mean and scale are part of
the model), classified by default with a logistic regression, and its mixture
runs on a few principal components of the standardised features
(DETECTOR_DEFAULTS says which, per feature set).

scikit-learn is imported only inside the fits: loading and applying a model needs none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from scanner.core.constants import DEFAULT_LIMITS, ReadLimits
from scanner.core.echo import echoed
from scanner.core.errors import DetectorError
from scanner.core.featuresets import FEATURE_SETS, PAPER
from scanner.core.schema import Measurement
from scanner.detect.decisions import (
    GAMMA_BOUNDS,
    GMMDecision,
    LogisticDecision,
    Projection,
    Scaling,
    Standardisation,
    SVMDecision,
)
from scanner.detect.model import Model
from scanner.detect.samples import Samples, anchor_features

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
    # 131 features: as the extended set, C = 1 (train's default for every set). No C from 0.01 to 10 did better
    # on the two large shared sets: within noise with 10 or 20 labelled images per class, lower with the
    # whole training half (docs/method.md, the residual set's figures).
    "residual": DetectorDefaults(method="logistic", standardise_svm=True, gmm_components=6),
}
assert set(DETECTOR_DEFAULTS) == set(FEATURE_SETS)
METHODS = ("svm", "logistic", "gmm")


def detector_defaults(feature_set: str) -> DetectorDefaults:
    return DETECTOR_DEFAULTS[feature_set]


def resolve_gamma(gamma: str | float, x: np.ndarray) -> float:
    """scikit-learn's RBF gamma: 'scale' = 1 / (6 var(X)), 'auto' = 1/6, or the number given; within
    GAMMA_BOUNDS (what a model file may hold), else DetectorError."""
    if gamma == "scale":
        variance = x.var()
        value = float(1.0 / (x.shape[1] * variance)) if variance != 0 else 1.0
    elif gamma == "auto":
        value = float(1.0 / x.shape[1])
    else:
        try:
            value = float(gamma)
        except (TypeError, ValueError):
            value = math.nan
        if not value > 0:
            raise DetectorError(f"gamma must be positive, 'scale' or 'auto', not {echoed(gamma)}")
    low, high = GAMMA_BOUNDS
    if not low <= value <= high:
        how = "" if gamma not in ("scale", "auto") else f" ('{gamma}' for features of variance {x.var():g})"
        raise DetectorError(
            f"gamma {value:g}{how} is outside {low:g} to {high:g}, where an RBF kernel can tell rows apart "
            "(docs/models.md); give another --gamma"
        )
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


# --- how certain the real anchors make the mixture's side -------------------------------------------

# The side is settled when anchors no different from any fitted row would lean as far into the real
# component by chance with probability at most this (a one-sided binomial test; docs/detectors.md).
SIDE_CUT = 0.01
# The most known-real images a refusal suggests; an enrichment so slight needs more, or clearer ones.
MOST_ANCHORS = 100_000


def binomial_tail(n: int, k: int, p: float) -> float:
    """P(K >= k) for K ~ Binomial(n, p), summed term by term in log space (math.lgamma): no normal
    approximation, exact to floating-point rounding."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1)
    logs = [base - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * log_p + (n - j) * log_q for j in range(k, n + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * math.fsum(math.exp(v - top) for v in logs))


def _about(n: int) -> int:
    """n rounded up to two significant digits (573 -> 580): a count of anchors to aim for, not a threshold."""
    step: int = 10 ** max(0, len(str(n)) - 2)
    return -(-n // step) * step


@dataclass(frozen=True)
class SideCertainty:
    """How certain the real anchors make the mixture's side.

    `in_real` of the `anchors` fall in the component called real, which holds `rows_real` of
    the `rows` fitted. `p_value` is the one-sided binomial tail P(K >= in_real), K ~
    Binomial(anchors, rows_real / rows): how often anchors no different from any fitted row
    would lean that far into that component by chance. `resampled` is the share of bootstrap
    resamples of the anchors (drawn with replacement) that pick the same side: the mixture is
    not refitted, so a resample's side depends only on its count in that component, which is
    Binomial(anchors, in_real / anchors); the share is computed exactly (the bootstrap's limit
    as its draws grow), with no random draws. The side is settled when p_value <= cut.
    """

    anchors: int
    in_real: int
    rows: int
    rows_real: int
    cut: float = SIDE_CUT

    @property
    def rows_share(self) -> float:
        return self.rows_real / self.rows

    @property
    def p_value(self) -> float:
        return binomial_tail(self.anchors, self.in_real, self.rows_share)

    @property
    def resampled(self) -> float:
        # The same side: strictly more of the resample in the real component than its share of all rows.
        return binomial_tail(self.anchors, self.anchors * self.rows_real // self.rows + 1, self.in_real / self.anchors)

    @property
    def certain(self) -> bool:
        return self.p_value <= self.cut

    def needed(self) -> int | None:
        """About how many anchors would settle the side if they fell in the real component as these do (the
        same share), or None when even MOST_ANCHORS would not."""

        def settles(m: int) -> bool:
            return binomial_tail(m, self.in_real * m // self.anchors, self.rows_share) <= self.cut

        low, high = self.anchors, self.anchors
        while not settles(high):
            if high >= MOST_ANCHORS:
                return None
            low, high = high, min(2 * high, MOST_ANCHORS)
        while high - low > 1:  # the tail falls with m, but for rounding: "about"
            middle = (low + high) // 2
            low, high = (low, middle) if settles(middle) else (middle, high)
        return high

    def describe(self) -> str:
        """The counts and both measures, in words."""
        verdict = f"settled at p <= {self.cut:g}" if self.certain else f"above {self.cut:g}: not settled"
        return (
            f"{self.in_real} of {self.anchors} real anchors fall in the component called real, against "
            f"{self.rows_share:.0%} of all {self.rows} rows: binomial p = {self.p_value:.2g} ({verdict}); "
            f"the same side in {self.resampled:.1%} of resamples of the anchors"
        )

    def refusal(self) -> str:
        """One line: why the side is refused, and about how many anchors would settle it."""
        needed = self.needed()
        more = (
            f"give about {_about(needed)} known-real images, not {self.anchors}"
            if needed is not None
            else f"they lean so little that even {MOST_ANCHORS:,} would not settle it; give clearer known-real images"
        )
        return (
            f"the mixture's side is not settled: {self.describe()}; {more}, or --accept-uncertain-side to go on anyway"
        )

    def as_provenance(self) -> dict[str, Any]:
        return {
            "anchors": self.anchors,
            "anchors_in_real": self.in_real,
            "rows": self.rows,
            "rows_in_real": self.rows_real,
            "p_value": self.p_value,
            "cut": self.cut,
            "resampled_same_side": self.resampled,
            "certain": self.certain,
        }


@dataclass(frozen=True)
class GMMFit:
    """A fitted mixture, how its fake side was chosen, and what it runs on."""

    decision: GMMDecision
    rule: str  # "paper" or "anchor"
    anchors_in_real: float | None = None  # share of anchors in the real component
    rows_in_real: float | None = None  # share of all the fitted rows in the real component
    standardisation: Standardisation | None = None  # the mixture runs on standardised features ...
    projection: Projection | None = None  # ... reduced to their first principal components
    certainty: SideCertainty | None = None  # with anchors: how sure they make the side (never sure without)

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
    anchors: a large component holds most of any sample); the fit's `certainty` says
    how certain that side is (SideCertainty). This function never refuses an uncertain
    side: fit_gmm_on, which train and classify use, does.
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

    def fit_of(fake: int, rule: str, certainty: SideCertainty | None = None) -> GMMFit:
        decision = GMMDecision(weights, means, covariances, fake)
        if certainty is None:
            return GMMFit(decision, rule, None, None, standardisation, projection)
        in_real = certainty.in_real / certainty.anchors
        return GMMFit(decision, rule, in_real, certainty.rows_share, standardisation, projection, certainty)

    if real_anchor is None:
        return fit_of(by_rule, "paper")
    anchors = np.asarray(real_anchor, dtype=np.float64).reshape(-1, x.shape[1])
    anchors = anchors[np.isfinite(anchors).all(axis=1)]
    if len(anchors) == 0:
        raise DetectorError("none of the real anchors has usable features")
    as_rule = fit_of(by_rule, "paper")
    n, rows = len(anchors), len(z)
    anchors_in_rule_fake = int(np.sum(as_rule.score(anchors) > 0))
    rows_in_rule_fake = int(np.sum(as_rule.decision.score(z) > 0))
    if anchors_in_rule_fake * rows == rows_in_rule_fake * n:  # the same share, compared exactly
        raise DetectorError(
            "the real anchors fall in both components as evenly as all the rows do, so they cannot tell the "
            "sides apart; give more, or clearer, known-real images"
        )
    if anchors_in_rule_fake * rows < rows_in_rule_fake * n:  # the rule's real component is the enriched one
        return fit_of(by_rule, "anchor", SideCertainty(n, n - anchors_in_rule_fake, rows, rows - rows_in_rule_fake))
    return fit_of(1 - by_rule, "anchor", SideCertainty(n, anchors_in_rule_fake, rows, rows_in_rule_fake))


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
    accept_uncertain_side: bool = False,
) -> tuple[GMMFit, list[str]]:
    """The mixture on a sample's usable rows (labels unused), with notes for the user.

    With anchors, a side they do not settle (SideCertainty.certain false) is refused with
    DetectorError, saying how certain it was and about how many anchors would settle it,
    unless `accept_uncertain_side`: then a warning says so. The notes name the anchors that
    could not be used, warn that the paper's rule (no anchors) is often wrong, and warn when
    the sample's labels (where it has both classes) show that the mixture's fake side is the
    wrong one.
    """
    notes = []
    anchor_x = None
    if anchors:  # measured_anchors: anchor_features of these anchors, when the caller has them already
        anchor_x, problems = measured_anchors or anchor_features(anchors, samples, limits)
        notes += [f"real anchor not used: {p}" for p in problems]
    usable = samples.usable
    components = detector_defaults(samples.measurement.feature_set).gmm_components
    fit = fit_gmm(samples.features[usable], seed=seed, real_anchor=anchor_x, components=components)
    if fit.certainty is not None and not fit.certainty.certain:
        if not accept_uncertain_side:
            raise DetectorError(fit.certainty.refusal())
        notes.append(
            "warning: the real anchors do not settle the mixture's side, which may be the wrong one; "
            "going on as asked (--accept-uncertain-side)"
        )
    labelled = samples.labelled
    wrong_side = False
    if 0 < samples.is_fake[labelled].sum() < labelled.sum():
        wrong = wrong_side_share(fit, samples.features[labelled], samples.is_fake[labelled])
        if wrong > 0.5:
            wrong_side = True
            how = "the paper's rule (larger mean feature = fake)" if fit.rule == "paper" else "the real anchors"
            notes.append(
                f"warning: the labels show that {how} picked the wrong component: {wrong:.0%} of the "
                f"{int(labelled.sum())} labelled rows get the wrong verdict; "
                + ("give known-real images with --real-anchor" if fit.rule == "paper" else "check the anchors")
            )
    if fit.rule == "paper" and not wrong_side:
        notes.append(f"warning: {PAPER_RULE_WARNING}")
    return fit, notes


# Without anchors nothing settles the mixture's side: said on every such fit (EVALUATION.md has the figures).
PAPER_RULE_WARNING = (
    "the fake side was picked by the paper's rule (the component with the larger mean feature is fake), "
    "which picked the wrong side on most of the shared face sets at matched compression (docs/detectors.md); "
    "give known-real images with --real-anchor to choose it"
)


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
    provenance: dict[str, Any] | None = None,
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
