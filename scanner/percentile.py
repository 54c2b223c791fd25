"""numpy's 1st and 99th percentiles of a full spectrum, read from its half.

The log-mode normalisation needs np.percentile(S, [1, 99]) over all H x W bins.
Sorting (or even materialising) the full spectrum would cost more than the
transform, so the order statistics are selected instead:

1. a strided sample of the half spectrum, sorted, brackets each wanted rank;
2. one pass (``kernels.gather_brackets``) counts the bins below each bracket and
   gathers the few inside it, with the Hermitian weights of the full spectrum;
3. a partition of each small candidate set gives the exact order statistics, and
   numpy's linear interpolation between them gives the percentile.

A bracket that misses its rank (an unlucky sample) is widened and the pass run
again, so the result is always exactly numpy's.
"""

from __future__ import annotations

import math

import numpy as np

from scanner import kernels

QUANTILES = (0.01, 0.99)
_SAMPLE = 8192
_SIGMAS = 4.0


def _lerp(a: float, b: float, gamma: float) -> float:
    """numpy's _lerp: the formula depends on gamma so that it stays monotone."""
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1.0 - gamma)
    return a + diff * gamma


class PercentileSelector:
    """Reusable candidate buffers for exact 1st/99th percentile selection."""

    def __init__(self) -> None:
        self._buffers = [np.empty(1024, dtype=np.float32), np.empty(1024, dtype=np.float32)]

    def __call__(self, values: np.ndarray, full_width: int) -> tuple[float, float]:
        """(p1, p99) of the full H x W spectrum that the half spectrum `values` stands for."""
        height, half = values.shape
        n_full = height * full_width
        flat = values.reshape(-1)
        stride = max(1, flat.size // _SAMPLE)
        sample = np.sort(flat[::stride])
        virtual = [q * (n_full - 1) for q in QUANTILES]
        ranks = [int(math.floor(v)) for v in virtual]
        widen = 1.0
        while True:
            bounds = [self._bracket(sample, n_full, k, widen) for k in ranks]
            (lo1, hi1), (lo2, hi2) = bounds
            below1, n1, below2, n2 = kernels.gather_brackets(
                values, full_width, lo1, hi1, lo2, hi2, *self._buffers)
            counts = ((below1, n1), (below2, n2))
            if all(below <= k and k + 1 < below + n for (below, n), k in zip(counts, ranks)):
                break
            widen *= 4.0
        if n1 > self._buffers[0].size or n2 > self._buffers[1].size:
            self._buffers = [np.empty(2 * max(n1, n2), dtype=np.float32) for _ in range(2)]
            kernels.gather_brackets(values, full_width, lo1, hi1, lo2, hi2, *self._buffers)
        result = []
        for buffer, (below, n), k, v in zip(self._buffers, counts, ranks, virtual):
            r = k - below
            part = np.partition(buffer[:n], (r, r + 1))
            result.append(_lerp(float(part[r]), float(part[r + 1]), v - k))
        return result[0], result[1]

    @staticmethod
    def _bracket(sample: np.ndarray, n_full: int, k: int, widen: float) -> tuple[float, float]:
        """Sample values around where rank k of n_full should fall: a few standard
        deviations of the sample rank either side (times `widen` after a miss)."""
        m = sample.size
        q = min(max(k / n_full, 1.0 / n_full), 1.0 - 1.0 / n_full)
        centre = k * (m - 1) / max(n_full - 1, 1)
        margin = widen * (_SIGMAS * math.sqrt(m * q * (1.0 - q)) + 2.0)
        lo_idx = math.floor(centre - margin)
        hi_idx = math.ceil(centre + 1.0 + margin)
        lo = float(sample[lo_idx]) if lo_idx > 0 else -math.inf
        hi = float(sample[hi_idx]) if hi_idx < m - 1 else math.inf
        return lo, hi
