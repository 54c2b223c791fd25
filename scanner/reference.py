"""The method in plain float64 numpy, written from the definitions: the reference.

Full complex ``fft2`` per channel (no Hermitian shortcut), ``np.percentile``,
``np.corrcoef``: slow and obvious, so that the engine can be checked against it
(the tests hold every engine and backend to it), and so that the figures and the
benchmarks' baseline (the authors' published pipeline is exactly this
computation) share one copy of the definitions.
"""

from __future__ import annotations

import numpy as np

from scanner.constants import SPECTRUM_MODES

LOG_EPSILON = 1e-3  # S = ln(|F| + 1e-3), as in the authors' released code
PAIRS = ((0, 1), (0, 2), (1, 2))  # (R, G), (R, B), (G, B): the features' order


def reference_spectra(rgb: np.ndarray, spectrum: str = "log") -> np.ndarray:
    """The (3, H, W) float64 spectra S_R, S_G, S_B of an (H, W, 3) uint8 RGB image over all bins.

    log: S' = clip((ln(|F| + 1e-3) - p1) / (p99 - p1), 0, 1) of the channel / 255, with
    numpy's linear 1st and 99th percentiles; modulus: |F| of the 0..255 channel. A
    channel with p1 == p99 has no defined S' (0/0 at most bins): those bins are NaN.
    A constant channel's spectrum is taken exactly (zero but at DC), so in log mode
    it has p1 == p99 whenever H x W >= 101.
    """
    if spectrum not in SPECTRUM_MODES:
        raise ValueError(f"spectrum must be one of {', '.join(SPECTRUM_MODES)}, not {spectrum!r}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise TypeError(f"expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    out = np.empty((3, *rgb.shape[:2]))
    for c in range(3):  # one channel at a time keeps a large image's complex spectrum to one plane
        plane = rgb[..., c].astype(np.float64)
        if spectrum == "log":
            plane /= 255.0
        if plane.min() == plane.max():
            # The exact DFT of a constant plane: its sum at DC, zero elsewhere (fft2's rounding
            # can leave noise there, which the log spectrum's normalisation would amplify).
            magnitude = np.zeros_like(plane)
            magnitude[0, 0] = abs(plane.sum())
        else:
            magnitude = np.abs(np.fft.fft2(plane))
        if spectrum == "log":
            s = np.log(magnitude + LOG_EPSILON)
            p1, p99 = np.percentile(s, [1, 99])
            with np.errstate(divide="ignore", invalid="ignore"):
                magnitude = np.clip((s - p1) / (p99 - p1), 0.0, 1.0)
        out[c] = magnitude
    return out


def reference_features(rgb: np.ndarray, spectrum: str = "log") -> np.ndarray:
    """mean, max, min, icorr_rg, icorr_rb, icorr_gb of an (H, W, 3) uint8 RGB image."""
    s = reference_spectra(rgb, spectrum).reshape(3, -1)
    d = np.array([np.mean(np.abs(s[a] - s[b])) for a, b in PAIRS])
    with np.errstate(divide="ignore", invalid="ignore"):
        icorr = [1.0 - np.corrcoef(s[a], s[b])[0, 1] for a, b in PAIRS]
    return np.array([np.mean(d), np.max(d), np.min(d), *icorr])
