"""The residual feature set: the extended set's 69, then Welch spectra of each channel's median residual.

With x_c the channel / 255 (c = R, G, B), as docs/method.md defines them:

* the residual r_c = x_c - median3x3(x_c): OpenCV's medianBlur (ksize 3, BORDER_REPLICATE) of the
  uint8 channel, so the differences are integers / 255;
* the 32 x 32 windows that fit wholly in the image, at a stride of 16 px when max(H, W) <= 256, else
  32, no window function; F_{c,t} the DFT of window t of r_c; S_c the mean over windows of
  |F_{c,t}|^2 / 32^2 and C_ab the mean of F_a conj(F_b) / 32^2; the Y, Cb, Cr spectra are the
  BT.601 combinations, so their powers are quadratic forms of S and Re C: no more transforms;
* 62 features on the 32-point grid: the radial profile of ln(S_Y + 1e-12) (8 bins), the Cb and Cr
  profiles minus it (16), peak prominences (26) and the R, G, B coherences in 4 bands (12).

An image with no whole window (a side under 32 px) has NaN for these 62 (a detector cannot judge
it, as with the extended set's empty radial bins on images under about 23 px).

How: one medianBlur of each channel; the windows' residuals written, 32 windows at a time, into a
batch transform of the extractor's backend (96 planes of 32 x 32, one plan per precision): straight
from the uint8 planes when the windows do not overlap (stride 32), else copied from float residual
planes computed once;
the numba kernels of scanner.features.residual_kernels sum the powers and cross spectra over the
half spectra in float64 and turn the sums into the features.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from scanner.core.featuresets import EXTENDED, RESIDUAL
from scanner.features.backends.base import ShapeCache, Transform
from scanner.features.extended import ExtendedFeatures
from scanner.features.residual_kernels import (
    ACCUMULATORS,
    HALF,
    WINDOW,
    accumulate_spectra,
    copy_windows,
    residual_features,
    residual_windows,
)
from scanner.features.spec import Picture

WINDOW_BATCH = 32  # windows per batch transform
ADDED = RESIDUAL.width - EXTENDED.width  # 62


def window_stride(height: int, width: int) -> int:
    """16 when max(H, W) <= 256, else 32."""
    return 16 if max(height, width) <= 256 else 32


def window_origins(height: int, width: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Tops and lefts of the whole windows at the stride, rows first."""
    stride = window_stride(height, width)
    tops = np.arange(0, height - WINDOW + 1, stride, dtype=np.int64)
    lefts = np.arange(0, width - WINDOW + 1, stride, dtype=np.int64)
    return np.repeat(tops, len(lefts)), np.tile(lefts, len(tops))


def window_geometry() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(32, 32) radial bins and coherence bands of the window spectrum, -1 for DC, in integers.

    With fu = a / 32, fv = b / 32 (numpy.fft.fftfreq) and q = a^2 + b^2: rho^2 = q / 256; the bin is
    floor(8 rho / sqrt 2) = floor(sqrt(q / 8)) = isqrt(q // 8), 7 at most; the band edges 0.35, 0.7
    and 1.05 lie between grid points: q >= 32, 126 and 283 (256 x 0.1225 = 31.36, 125.44, 282.24).
    """
    a = np.arange(WINDOW, dtype=np.int64)
    a = np.where(a <= WINDOW // 2, a, a - WINDOW)
    q = a[:, None] ** 2 + a[None, :] ** 2
    bins = np.minimum(np.array([[math.isqrt(int(x) // 8) for x in row] for row in q], dtype=np.int64), 7)
    bands = (q >= 32).astype(np.int64) + (q >= 126) + (q >= 283)
    bins[0, 0] = bands[0, 0] = -1
    return bins, bands


def _planes_buffer(height: int, width: int, dtype: np.dtype) -> npt.NDArray[np.floating]:
    """(3, H, W + 16), C-contiguous: the residual planes in the first W columns of each row. The padding
    keeps rows off a multiple of 4 KiB apart (at W = 1024 in single precision they would be exactly
    that, and the 32 rows of a window would contend for one set of the L1 cache: 4x slower copies)."""
    buffer: npt.NDArray[np.floating] = np.zeros((3, height, width + 16), dtype=dtype)
    return buffer


class ResidualFeatures:
    """The 131 features of an image: the extended set's 69 from its transform, then 62 from its pixels."""

    feature_set = RESIDUAL

    def __init__(self, spectrum: str) -> None:
        self.extended = ExtendedFeatures(spectrum)
        self.input_scale = self.extended.input_scale
        self._origins = ShapeCache()
        self._planes = ShapeCache(2)
        self._bins, self._bands = window_geometry()

    def compute(self, transform: Transform, picture: Picture | None = None) -> npt.NDArray[np.float64]:
        if picture is None:
            raise TypeError("the residual set measures the image's pixels as well as its transform")
        out = np.empty(RESIDUAL.width)
        out[: EXTENDED.width] = self.extended.compute(transform)
        self.residual_part(picture, out[EXTENDED.width :])
        return out

    def residual_part(self, picture: Picture, out: npt.NDArray[np.float64]) -> None:
        """The 62 residual features of the picture into out."""
        image = picture.pixels
        height, width = image.shape[:2]
        tops, lefts = self._origins.get_or_make(height, width, window_origins)
        windows = len(tops)
        if windows == 0:
            out[:] = np.nan
            return
        batch = picture.backend.batch(3 * WINDOW_BATCH, WINDOW, WINDOW)
        channels = cv2.split(image)  # contiguous planes: medianBlur and the subtraction vectorise
        rgb = [channels[source] for source in (picture.red_index, 1, 2 - picture.red_index)]
        medians = [cv2.medianBlur(channel, 3) for channel in rgb]
        # R, G, B residuals in 0..255 units: integers, exact in either precision. Windows that overlap
        # (stride 16) read each pixel up to four times: the residual planes are made once and copied from;
        # others (stride 32) are written straight from the uint8 planes, with no float planes at all.
        overlapping = window_stride(height, width) < WINDOW
        if overlapping:
            planes = self._planes.get_or_make(height, width, lambda h, w: _planes_buffer(h, w, batch.pixels.dtype))
            for c in range(3):
                np.subtract(rgb[c], medians[c], out=planes[c, :, :width], dtype=planes.dtype)
        acc = np.zeros((ACCUMULATORS, WINDOW * HALF))
        for first in range(0, windows, WINDOW_BATCH):
            count = min(WINDOW_BATCH, windows - first)
            if overlapping:
                copy_windows(planes, tops, lefts, first, count, batch.rows)
            else:
                for c in range(3):
                    residual_windows(rgb[c], medians[c], c, tops, lefts, first, count, batch.rows)
            batch.execute()
            accumulate_spectra(batch.interleaved, count, acc)
        # The windows held the residuals x 255: |F|^2 / 32^2 of r is the sum / (K 32^2 255^2).
        scale = 1.0 / (windows * WINDOW * WINDOW * 255.0 * 255.0)
        residual_features(acc, scale, self._bins, self._bands, out)
