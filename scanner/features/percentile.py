"""numpy's 1st and 99th percentiles of a full spectrum, read from its half.

The log-mode normalisation needs np.percentile(S, [1, 99]) over all H x W bins.
Sorting (or even materialising) the full spectrum would cost more than the
transform, so the order statistics are selected instead
(``kernels.percentiles_1_99``):

1. a strided sample of the half spectrum, sorted, brackets each wanted rank;
2. one pass counts the bins below each bracket and gathers the few inside it,
   with the Hermitian weights of the full spectrum;
3. a partition of each small candidate set gives the exact order statistics, and
   numpy's linear interpolation between them gives the percentile.

A bracket that misses its rank (an unlucky sample) is widened and the pass run
again, so the result is always exactly numpy's.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from scanner.features import kernels

_SAMPLE = 16384
_SIGMAS = 3.0


class PercentileSelector:
    """Exact 1st/99th percentile selection, with work buffers kept between images."""

    def __init__(self) -> None:
        self._mask = np.empty(0, dtype=np.uint8)
        self._cand = (np.empty(0, dtype=np.float32), np.empty(0, dtype=np.float32))

    def __call__(self, values: npt.NDArray[np.float32], full_width: int) -> npt.NDArray[np.float64]:
        """(p1, p99) per channel, shape (C, 2), for half spectra `values` (C, H, W//2 + 1)."""
        channels = values.shape[0]
        flat = values.reshape(channels, -1)
        n = flat.shape[1]
        if self._mask.size < n + 8:
            self._mask = np.empty((n + 15) // 8 * 8, dtype=np.uint8)
            # A first bracket holds about 2 * (3 sigma + 2) / _SAMPLE of the bins, twice for weights.
            size = int(0.05 * n) + 1024
            self._cand = (np.empty(size, dtype=np.float32), np.empty(size, dtype=np.float32))
        stride = sample_stride(n, values.shape[2])
        samples = np.sort(flat[:, ::stride], axis=1)
        out = np.empty((channels, 2))
        for c in range(channels):
            out[c] = kernels.percentiles_1_99(values[c], full_width, samples[c], self._mask, *self._cand, _SIGMAS)
        return out


def sample_stride(n: int, row_length: int) -> int:
    """The step of the strided sample: about one bin in eight, at most _SAMPLE of them (a
    smaller sample widens the brackets, a larger one costs more to sort than it saves), and
    prime to the row length, so that the sample visits every column alike. A step that
    divides the row (a half spectrum 128 or 512 bins wide, from images 255 or 1022 pixels
    wide) sampled the same few columns of every row; column 0, which holds the largest
    values, was over-represented, the brackets missed their ranks, and every image of
    that width took two to four passes: at 1024 x 1022, 4.5 times as long as at 1024 x 1024.
    """
    stride = max(1, n // min(_SAMPLE, max(n // 8, 256)))
    while math.gcd(stride, row_length) != 1:
        stride += 1
    return stride
