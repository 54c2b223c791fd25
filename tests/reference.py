"""An independent float64 numpy reference, written from the definitions.

Full complex fft2 (no Hermitian shortcut), np.percentile, np.corrcoef: slow and
obvious, so the engine can be checked against it.
"""

from __future__ import annotations

import numpy as np


def reference_spectra(rgb: np.ndarray, spectrum: str = "log") -> list[np.ndarray]:
    """The three channel spectra (R, G, B) over all H x W bins, float64."""
    x = rgb.astype(np.float64)
    if spectrum == "log":
        x = x / 255.0
    out = []
    for c in range(3):
        magnitude = np.abs(np.fft.fft2(x[..., c]))
        if spectrum == "log":
            s = np.log(magnitude + 1e-3)
            p1, p99 = np.percentile(s, [1, 99])
            with np.errstate(divide="ignore", invalid="ignore"):
                s = np.clip((s - p1) / (p99 - p1), 0.0, 1.0)
        else:
            s = magnitude
        out.append(s.ravel())
    return out


def reference_features(rgb: np.ndarray, spectrum: str = "log") -> np.ndarray:
    """mean, max, min, icorr_rg, icorr_rb, icorr_gb of an RGB uint8 image."""
    s = reference_spectra(rgb, spectrum)
    pairs = [(0, 1), (0, 2), (1, 2)]
    d = np.array([np.mean(np.abs(s[a] - s[b])) for a, b in pairs])
    with np.errstate(divide="ignore", invalid="ignore"):
        icorr = [1.0 - np.corrcoef(s[a], s[b])[0, 1] for a, b in pairs]
    return np.array([np.mean(d), np.max(d), np.min(d), *icorr])
