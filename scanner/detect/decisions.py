"""Decision functions: the fitted detectors as plain arrays, each scoring rows with numpy or numba.

scikit-learn fits the models (scanner.detect.fit); the fitted parameters are kept
here as plain arrays and every score is computed from them, so a model predicts
bit for bit the same before saving and after loading, and the score of a row
never depends on the other rows of the batch. Each class saves itself to an HDF5
group and loads itself from one (load reads through the checks of the model file
being loaded: reading_from).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import ClassVar

import h5py
import numba
import numpy as np
import numpy.typing as npt

from scanner.core.echo import echoed
from scanner.core.errors import DetectorError, ModelError
from scanner.detect.verdicts import logistic
from scanner.io.h5safe import CheckedFile


@numba.njit(cache=True, nogil=True)
def _rbf_scores(
    x: npt.NDArray[np.float64],
    support_vectors: npt.NDArray[np.float64],
    dual_coef: npt.NDArray[np.float64],
    intercept: float,
    gamma: float,
) -> npt.NDArray[np.float64]:  # pragma: no cover - compiled
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


def _rowwise_matmul(x: npt.NDArray[np.float64], m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """x @ m with a fixed summation order per row (BLAS may change it with the batch shape)."""
    out: npt.NDArray[np.float64] = (x[:, :, None] * m[None, :, :]).sum(axis=1)
    return out


# What a fit can produce, and so what a model file may hold (docs/models.md derives them). An RBF kernel
# exp(-gamma d^2) outside these gammas gives (nearly) every row the same score: above 1e6 it is 0 for any
# two rows more than 0.03 apart (gamma d^2 > 745 underflows), below 1e-6 it is 1 to within 1e-4 for
# rows up to 10 apart; 'scale' gives 1/(F var X), 1/F for standardised features.
GAMMA_BOUNDS = (1e-6, 1e6)
# scikit-learn's mixture adds reg_covar (1e-6) to the diagonal of every covariance it fits, so none has an
# eigenvalue below 1e-6 less rounding; a model's below this one is refused.
MIN_COVARIANCE_EIGENVALUE = 1e-7
# The SVM's dual coefficients y_i alpha_i sum to 0 (a constraint of the fit), within this share of sum |a_i|.
DUAL_SUM_TOLERANCE = 1e-6


def check_gamma(gamma: float, what: str = "svm: gamma") -> float:
    """`gamma` if it is within GAMMA_BOUNDS, else the ModelError that says so."""
    low, high = GAMMA_BOUNDS
    if not math.isfinite(gamma) or not gamma > 0:
        raise ModelError(f"{what} must be positive, not {gamma}")
    if not low <= gamma <= high:
        raise ModelError(
            f"{what} {gamma:g} is outside what a fit gives ({low:g} to {high:g}): with it nearly every row "
            "gets the same score (docs/models.md)"
        )
    return gamma


@dataclass(frozen=True, eq=False)
class SVMDecision:
    """An RBF SVM: score = sum_i dual_coef_i exp(-gamma |x - sv_i|^2) + intercept; > 0 means fake."""

    support_vectors: npt.NDArray[np.float64]  # (S, F)
    dual_coef: npt.NDArray[np.float64]  # (S,)
    intercept: float
    gamma: float
    method: ClassVar[str] = "svm"

    def score(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
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
        if not coef.all():
            raise ModelError("svm/dual_coef holds 0: every support vector of a fit has a coefficient")
        if abs(coef.sum()) > DUAL_SUM_TOLERANCE * np.abs(coef).sum():
            raise ModelError(f"svm/dual_coef must sum to 0 (as every fit's do), not {coef.sum():g}")
        gamma = check_gamma(_scalar(group, "gamma"))
        return cls(sv, coef, _scalar(group, "intercept"), gamma)


@dataclass(frozen=True, eq=False)
class GMMDecision:
    """A two-component Gaussian mixture with full covariances and one component called fake.

    score = log P(fake | x) - log P(real | x); > 0 means fake.
    """

    weights: npt.NDArray[np.float64]  # (2,)
    means: npt.NDArray[np.float64]  # (2, F)
    covariances: npt.NDArray[np.float64]  # (2, F, F)
    fake_component: int
    method: ClassVar[str] = "gmm"
    _precision_cholesky: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        covariances = self.covariances
        if np.abs(covariances - np.transpose(covariances, (0, 2, 1))).max() > 1e-8 * np.abs(covariances).max():
            raise ModelError("the mixture's covariances are not symmetric")
        smallest = float(np.linalg.eigvalsh(covariances).min())
        if not smallest >= MIN_COVARIANCE_EIGENVALUE:
            raise ModelError(
                f"the mixture's covariances are not positive definite as a fit's are (an eigenvalue of "
                f"{smallest:g}, below {MIN_COVARIANCE_EIGENVALUE:g})"
            )
        try:
            chol = np.linalg.cholesky(self.covariances)
        except np.linalg.LinAlgError:
            raise ModelError("the mixture's covariances are not positive definite") from None
        inverse = np.linalg.inv(chol)
        object.__setattr__(self, "_precision_cholesky", np.transpose(inverse, (0, 2, 1)))

    def _log_joint(self, x: npt.NDArray[np.float64], c: int) -> npt.NDArray[np.float64]:
        """log(weight_c) + log N(x; mean_c, cov_c), without the constant both components share."""
        p = self._precision_cholesky[c]
        y = _rowwise_matmul(x - self.means[c], p)
        joint: npt.NDArray[np.float64] = (
            math.log(self.weights[c]) + float(np.sum(np.log(np.diag(p)))) - 0.5 * np.sum(y * y, axis=1)
        )
        return joint

    def score(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        real = 1 - self.fake_component
        return self._log_joint(x, self.fake_component) - self._log_joint(x, real)

    @staticmethod
    def probability(score: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
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

    low: npt.NDArray[np.float64]  # (F,)
    high: npt.NDArray[np.float64]  # (F,)

    def apply(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
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
def _linear_scores(
    x: npt.NDArray[np.float64], coef: npt.NDArray[np.float64], intercept: float
) -> npt.NDArray[np.float64]:  # pragma: no cover - compiled
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

    coef: npt.NDArray[np.float64]  # (F,)
    intercept: float
    method: ClassVar[str] = "logistic"

    def score(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
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

    mean: npt.NDArray[np.float64]  # (F,)
    scale: npt.NDArray[np.float64]  # (F,)

    @classmethod
    def fit(cls, x: npt.NDArray[np.float64]) -> Standardisation:
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        return cls(mean, np.where(scale > 0, scale, 1.0))

    def apply(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
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
def _project(
    x: npt.NDArray[np.float64], mean: npt.NDArray[np.float64], components: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:  # pragma: no cover - compiled
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

    mean: npt.NDArray[np.float64]  # (F,)
    components: npt.NDArray[np.float64]  # (K, F), orthonormal rows, each one's largest entry positive

    @classmethod
    def fit(cls, x: npt.NDArray[np.float64], n_components: int) -> Projection:
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

    def apply(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
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


# The decision class of each method, under the name a model file gives it.
DECISIONS: dict[str, type[SVMDecision] | type[GMMDecision] | type[LogisticDecision]] = {
    "svm": SVMDecision,
    "gmm": GMMDecision,
    "logistic": LogisticDecision,
}


# --- reading and writing the arrays of a model file ---------------------------------


def _dataset(group: h5py.Group, name: str, values: npt.NDArray[np.float64]) -> None:
    group.create_dataset(name, data=np.asarray(values, dtype=np.float64), track_times=False)


# The model file being loaded (load_model): the decisions' loaders read through its checks (scanner.io.h5safe).
_LOADING: ContextVar[CheckedFile | None] = ContextVar("_LOADING", default=None)


@contextmanager
def reading_from(checked: CheckedFile) -> Iterator[None]:
    """While inside, the loaders (load(group, width)) read the groups of `checked` through its checks."""
    token = _LOADING.set(checked)
    try:
        yield
    finally:
        _LOADING.reset(token)


def _array(group: h5py.Group, name: str, shape: tuple[int | None, ...]) -> npt.NDArray[np.float64]:
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
        raise ModelError(f"{group.name}: attribute {name} is missing or not a finite number ({echoed(value)})")
    return float(value)
