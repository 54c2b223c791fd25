"""Verdicts: scores turned into real or fake, the thresholds that do it, and the verdicts file.

The verdicts file is what `scanner classify` writes: a UTF-8 CSV with the
columns VERDICT_COLUMNS (path, status, verdict, score, threshold, probability).

Light: numpy and the standard library only.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from scanner.core.errors import DetectorError
from scanner.detect.labels import FAKE, REAL
from scanner.io.outputs import output_file

# --- scores to verdicts ------------------------------------------------------------


def logistic(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), without overflow; NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    e = np.exp(x[~positive])  # NaN lands here too, and stays NaN
    out[~positive] = e / (1.0 + e)
    return out


def verdicts_of(scores: np.ndarray) -> np.ndarray:
    """'fake' for score > 0, 'real' for score <= 0, '' for NaN."""
    scores = np.asarray(scores, dtype=np.float64)
    out = np.where(scores > 0, FAKE, REAL).astype(object)
    out[np.isnan(scores)] = ""
    return out


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


# --- the verdicts file ----------------------------------------------------------


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
