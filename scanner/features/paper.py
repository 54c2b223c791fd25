"""The paper's six features, computed from a half spectrum (Le and Woo 2021).

For each colour channel the 2-D DFT magnitude spectrum Spec_c is taken, then

* d_RG, d_RB, d_GB: mean over all H x W bins of |Spec_a - Spec_b|;
  Mean, Max, Min are the mean, max and min of those three;
* iCorr_ab = 1 - Pearson(Spec_a, Spec_b) over all bins.

Two spectrum definitions:

* ``log`` (default), as the authors' released pipeline computes it: pixels / 255,
  S = ln(|F| + 1e-3), per channel S' = clip((S - p1) / (p99 - p1), 0, 1) with
  p1, p99 numpy's default (linear) percentiles over all H x W bins.
* ``modulus``: equation 5 read literally, S = |F| of the 0..255 channel.

A channel whose spectrum is constant (for example a constant image plane in log
mode, where p1 == p99) has no correlation: its features come out NaN, exactly as
np.corrcoef and the reference pipeline (scanner.features.reference) give them, and a
detector cannot judge it.

The numba kernels (scanner.features.kernels) read the rfft2 half spectrum with its
Hermitian column weights, so every statistic is the full-spectrum one.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from scanner.core.featuresets import PAPER
from scanner.features import kernels
from scanner.features.backends.base import ShapeCache, Transform
from scanner.features.percentile import PercentileSelector
from scanner.features.spec import Picture

# Channel pairs in the order of the kernel's sums: (R, G), (R, B), (G, B).
PAIRS = ((0, 1), (0, 2), (1, 2))


class PaperFeatures:
    """The six features of a transformed image; keeps its work buffers per image shape."""

    feature_set = PAPER

    def __init__(self, spectrum: str) -> None:
        self.spectrum = spectrum
        self.log = spectrum == "log"
        # The transform's input: pixels / 255 in log mode, as the authors' pipeline; 0..255 otherwise.
        self.input_scale = 1.0 / 255.0 if self.log else 1.0
        self._percentiles = PercentileSelector()
        self._values = ShapeCache()

    def compute(self, transform: Transform, picture: Picture | None = None) -> npt.NDArray[np.float64]:
        height, width = transform.height, transform.width
        values = self._values.get_or_make(height, width, _values_buffer)
        if self.log:
            kernels.log_magnitude(transform.interleaved, values.reshape(-1))
            offsets, scales, degenerate = self._normalisation(values, width)
        else:
            kernels.magnitude(transform.interleaved, values.reshape(-1))
            offsets, scales, degenerate = np.zeros(3), np.ones(3), ()
        sums = kernels.pair_sums(values[0], values[1], values[2], width, offsets, scales, self.log)
        return features_from_sums(sums, height * width, degenerate)

    def _normalisation(
        self, values: npt.NDArray[np.float32], width: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], tuple[int, ...]]:
        """Per channel: offset p1, scale 1 / (p99 - p1), and which channels have p1 == p99."""
        percentiles = self._percentiles(values, width)
        offsets = np.empty(len(percentiles))
        scales = np.empty(len(percentiles))
        degenerate = []
        # Three channels: plain floats here cost a few microseconds where numpy's calls on 3-element
        # arrays cost about 50 (a few % of the whole step at 256 x 256).
        for c, (low, high) in enumerate(percentiles.tolist()):
            offsets[c] = low
            spread = high - low
            # p1 == p99: (S - p1) / 0 is NaN for the bins equal to p1 (at least 98% of
            # them), so every statistic of that channel is NaN in the reference; a zero
            # scale keeps the kernel finite and features_from_sums sets the NaNs.
            if spread > 0:
                scales[c] = 1.0 / spread
            else:
                scales[c] = 0.0
                degenerate.append(c)
        return offsets, scales, tuple(degenerate)


def _values_buffer(height: int, width: int) -> npt.NDArray[np.float32]:
    """float32 per-bin values of the three half spectra."""
    return np.empty((3, height, width // 2 + 1), dtype=np.float32)


def features_from_sums(
    sums: npt.NDArray[np.float64], n_bins: int, degenerate: tuple[int, ...] = ()
) -> npt.NDArray[np.float64]:
    """Turn the kernel's 12 full-spectrum sums into the six features (float64).

    Pearson's r from shifted moment sums; a zero variance gives NaN, as
    np.corrcoef does, and r is clipped to [-1, 1] as np.corrcoef clips it.
    """
    d0, d1, d2, s0, s1, s2, q0, q1, q2, x01, x02, x12 = (float(v) for v in sums)
    s = (s0, s1, s2)
    sd = [math.sqrt(max(q - si * si / n_bins, 0.0)) for q, si in zip((q0, q1, q2), s, strict=True)]
    d = [d0 / n_bins, d1 / n_bins, d2 / n_bins]
    icorr = []
    for p, ((a, b), cross) in enumerate(zip(PAIRS, (x01, x02, x12), strict=True)):
        denominator = sd[a] * sd[b]
        if a in degenerate or b in degenerate:
            d[p] = math.nan
            icorr.append(math.nan)
        elif denominator == 0.0:
            icorr.append(math.nan)
        else:
            rho = (cross - s[a] * s[b] / n_bins) / denominator
            icorr.append(1.0 - min(max(rho, -1.0), 1.0))
    return np.array([(d[0] + d[1] + d[2]) / 3.0, _nan_max(d), _nan_min(d), *icorr])


def _nan_max(values: list[float]) -> float:
    """max that returns NaN when any value is NaN, as np.max does."""
    return math.nan if any(math.isnan(v) for v in values) else max(values)


def _nan_min(values: list[float]) -> float:
    return math.nan if any(math.isnan(v) for v in values) else min(values)
