"""The six spectral-asynchrony features of Le and Woo (2021).

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
np.corrcoef and the reference pipeline give them, and a detector cannot judge it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from scanner import kernels
from scanner.decode import DEFAULT_MAX_PIXELS, MIN_SIDE, ImageInfo, UnusableImage, read_image
from scanner.percentile import PercentileSelector
from scanner.spectrum import PlanCache

FEATURE_NAMES = ("mean", "max", "min", "icorr_rg", "icorr_rb", "icorr_gb")
SPECTRUM_MODES = ("log", "modulus")

# Channel pairs in the order of the kernel's sums: (R, G), (R, B), (G, B).
_PAIRS = ((0, 1), (0, 2), (1, 2))


class GreyImage(ValueError):
    """The three channels are identical: the method has nothing to measure."""


class FeatureExtractor:
    """Computes the six features of decoded images, reusing plans and buffers.

    One extractor per process: it holds an FFTW plan and work buffers per image
    shape. Not thread-safe.
    """

    def __init__(self, spectrum: str = "log", planner: str = "measure", use_wisdom: bool = True) -> None:
        if spectrum not in SPECTRUM_MODES:
            raise ValueError(f"spectrum must be one of {', '.join(SPECTRUM_MODES)}, not {spectrum!r}")
        self.spectrum = spectrum
        self.plans = PlanCache(planner, use_wisdom=use_wisdom)
        self._scale = 1.0 / 255.0 if spectrum == "log" else 1.0
        self._percentiles = PercentileSelector()

    def from_bgr(self, image: np.ndarray) -> np.ndarray:
        """Features of an (H, W, 3) uint8 image in OpenCV's B, G, R order."""
        return self._extract(image, red_index=2)

    def from_rgb(self, image: np.ndarray) -> np.ndarray:
        """Features of an (H, W, 3) uint8 image in R, G, B order."""
        return self._extract(image, red_index=0)

    def _extract(self, image: np.ndarray, red_index: int) -> np.ndarray:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise TypeError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        if min(height, width) < MIN_SIDE:
            raise ValueError(f"image is {width}x{height}; the method needs at least {MIN_SIDE} px a side")
        plan = self.plans.get(height, width)
        grey = kernels.to_planar(np.ascontiguousarray(image), plan.pixels, self._scale, red_index)
        if grey:
            raise GreyImage("the three colour channels are identical (a grey image)")
        plan.execute()
        values = plan.values
        if self.spectrum == "log":
            kernels.log_magnitude(plan.interleaved, values.reshape(-1))
            offsets, scales, degenerate = self._normalisation(values, width)
        else:
            kernels.magnitude(plan.interleaved, values.reshape(-1))
            offsets, scales, degenerate = np.zeros(3), np.ones(3), ()
        sums = kernels.pair_sums(values[0], values[1], values[2], width, offsets, scales, self.spectrum == "log")
        return features_from_sums(sums, height * width, degenerate)

    def _normalisation(self, values: np.ndarray, width: int):
        """Per channel: offset p1, scale 1 / (p99 - p1), and which channels have p1 == p99."""
        percentiles = self._percentiles(values, width)
        offsets = percentiles[:, 0].copy()
        spread = percentiles[:, 1] - percentiles[:, 0]
        # p1 == p99: (S - p1) / 0 is NaN for the bins equal to p1 (at least 98% of
        # them), so every statistic of that channel is NaN in the reference; a zero
        # scale keeps the kernel finite and features_from_sums sets the NaNs.
        degenerate = tuple(int(c) for c in np.flatnonzero(spread <= 0))
        scales = np.where(spread > 0, 1.0 / np.where(spread > 0, spread, 1.0), 0.0)
        return offsets, scales, degenerate


def features_from_sums(sums: np.ndarray, n_bins: int, degenerate: tuple[int, ...] = ()) -> np.ndarray:
    """Turn the kernel's 12 full-spectrum sums into the six features (float64).

    Pearson's r from shifted moment sums; a zero variance gives NaN, as
    np.corrcoef does, and r is clipped to [-1, 1] as np.corrcoef clips it.
    """
    d0, d1, d2, s0, s1, s2, q0, q1, q2, x01, x02, x12 = (float(v) for v in sums)
    s = (s0, s1, s2)
    sd = [math.sqrt(max(q - si * si / n_bins, 0.0)) for q, si in zip((q0, q1, q2), s)]
    d = [d0 / n_bins, d1 / n_bins, d2 / n_bins]
    icorr = []
    for p, ((a, b), cross) in enumerate(zip(_PAIRS, (x01, x02, x12))):
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


_DEFAULT: dict[str, FeatureExtractor] = {}


def spectral_features(image: np.ndarray, spectrum: str = "log") -> np.ndarray:
    """The six features (FEATURE_NAMES order) of an (H, W, 3) uint8 RGB image.

    Raises GreyImage when the three channels are identical, ValueError when a
    side is under 8 px.
    """
    extractor = _DEFAULT.get(spectrum)
    if extractor is None:
        extractor = _DEFAULT[spectrum] = FeatureExtractor(spectrum)
    return extractor.from_rgb(image)


@dataclass(frozen=True)
class FileFeatures:
    """One file's outcome: a status ("ok" or why not), the header facts and features."""

    path: str
    status: str
    error: str
    info: ImageInfo
    features: np.ndarray | None  # (6,) float64 when status is "ok"


def features_of_file(
    path: str | os.PathLike, extractor: FeatureExtractor, max_pixels: int = DEFAULT_MAX_PIXELS
) -> FileFeatures:
    """Read, decode and measure one file; failures become statuses, never exceptions."""
    name = os.fsdecode(path)
    try:
        image = read_image(path, max_pixels)
    except UnusableImage as exc:
        return FileFeatures(name, exc.status, exc.reason, exc.info, None)
    try:
        values = extractor.from_bgr(image.pixels)
    except GreyImage as exc:
        return FileFeatures(name, "grayscale", str(exc), image.info, None)
    return FileFeatures(name, "ok", "", image.info, values)
