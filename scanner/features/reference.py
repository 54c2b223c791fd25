"""The method in plain float64 numpy, written from the definitions: the reference.

Full complex ``fft2`` per channel (no Hermitian shortcut), ``np.percentile``,
``np.corrcoef``: slow and obvious, so that the engine can be checked against it
(the tests hold every engine and backend to it), and so that the figures and the
benchmarks' baseline (the authors' published pipeline is exactly this
computation) share one copy of the definitions.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scanner.core.constants import SPECTRUM_MODES

LOG_EPSILON = 1e-3  # S = ln(|F| + 1e-3), as in the authors' released code
PAIRS = ((0, 1), (0, 2), (1, 2))  # (R, G), (R, B), (G, B): the features' order


def reference_spectra(rgb: npt.NDArray[np.uint8], spectrum: str = "log") -> npt.NDArray[np.float64]:
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


def reference_features(rgb: npt.NDArray[np.uint8], spectrum: str = "log") -> npt.NDArray[np.float64]:
    """mean, max, min, icorr_rg, icorr_rb, icorr_gb of an (H, W, 3) uint8 RGB image."""
    s = reference_spectra(rgb, spectrum).reshape(3, -1)
    d = np.array([np.mean(np.abs(s[a] - s[b])) for a, b in PAIRS])
    with np.errstate(divide="ignore", invalid="ignore"):
        icorr = [1.0 - np.corrcoef(s[a], s[b])[0, 1] for a, b in PAIRS]
    return np.array([np.mean(d), np.max(d), np.min(d), *icorr])


# --- the extended feature set (scanner.core.featuresets.EXTENDED) -----------------------

LOG_FLOOR = 1e-5  # L_X = ln(|F_X| / sqrt(H W) + 1e-5)
# BT.601 full range (the JPEG definition): rows Y, Cb, Cr; columns R, G, B.
YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)
RADIAL_BINS = 16
PEAK_GRID = 8  # probes on the 1/8 grid of the spectrum
PEAK_BOX = 5  # the prominence's neighbourhood: a 5 x 5 box, wrapping at the edges


def reference_radial_bins(height: int, width: int) -> npt.NDArray[np.int64]:
    """(H, W) int: the radial bin of every full-spectrum bin, -1 for the DC bin.

    r = sqrt(fu^2 + fv^2) / 0.5 with fu, fv from numpy.fft.fftfreq; 16 equal-width bins
    over [0, sqrt 2], the last edge inclusive. Decided exactly, in integers: with fu = a / H
    and fv = b / W, bin k holds the frequencies with k <= 16 r / sqrt 2 < k + 1, that is
    k^2 <= 512 (a^2 W^2 + b^2 H^2) / (H^2 W^2) < (k + 1)^2 (a frequency on an edge is in
    the bin above it; r = sqrt 2 is in the last bin).
    """
    a = np.rint(np.fft.fftfreq(height) * height).astype(np.int64)
    b = np.rint(np.fft.fftfreq(width) * width).astype(np.int64)
    # 512 (a^2 W^2 + b^2 H^2) <= 256 H^2 W^2: Python integers where int64 could overflow.
    kind = np.int64 if 256 * (height * width) ** 2 < 2**62 else object
    a, b = a.astype(kind), b.astype(kind)
    numerator = 512 * (a[:, None] ** 2 * width**2 + b[None, :] ** 2 * height**2)
    quotient: npt.NDArray[np.int64] = (numerator // (height**2 * width**2)).astype(np.int64)  # 0..256: floor(128 r^2)
    bins = np.floor(np.sqrt(quotient)).astype(np.int64)  # exact: sqrt of a small integer
    bins = np.minimum(bins, RADIAL_BINS - 1)
    bins[0, 0] = -1
    return bins


def reference_log_spectra(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """(3, H, W) float64: L_Y, L_Cb, L_Cr = ln(|F_X| / sqrt(H W) + 1e-5) of an (H, W, 3) uint8 RGB image.

    F_X is the BT.601 combination of the channel DFTs of the pixels / 255 (full complex fft2).
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise TypeError(f"expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    spectra = np.fft.fft2(rgb.astype(np.float64) / 255.0, axes=(0, 1))  # (H, W, 3) complex
    out = np.empty((3, height, width))
    for x in range(3):
        combined = spectra @ YCBCR[x]
        out[x] = np.log(np.abs(combined) / np.sqrt(height * width) + LOG_FLOOR)
    return out


def reference_profiles(log_spectra: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(48,): the luminance profile (mean of L_Y per radial bin), then mean L_Cb and mean L_Cr
    per bin minus the luminance profile. A bin holding no frequency gives NaN."""
    bins = reference_radial_bins(*log_spectra.shape[1:])
    means = np.full((3, RADIAL_BINS), np.nan)
    for k in range(RADIAL_BINS):
        inside = bins == k
        if inside.any():
            means[:, k] = [np.mean(plane[inside]) for plane in log_spectra]
    return np.concatenate([means[0], means[1] - means[0], means[2] - means[0]])


def reference_peak_probes(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(ky, kx, u, v) of the probes: bins (floor(ky H / 8), floor(kx W / 8)), ky, kx in 0..7, not
    both 0, scanning ky then kx upward, keeping the first of each conjugate pair (u, v) ~ (-u mod H, -v mod W)."""
    kept: list[tuple[int, int, int, int]] = []
    seen: set[tuple[int, int]] = set()
    for ky in range(PEAK_GRID):
        for kx in range(PEAK_GRID):
            if ky == kx == 0:
                continue
            u, v = ky * height // PEAK_GRID, kx * width // PEAK_GRID
            if (u, v) in seen or ((-u) % height, (-v) % width) in seen:
                continue
            seen.add((u, v))
            kept.append((ky, kx, u, v))
    return kept


def peak_level(ky: int, kx: int) -> int:
    """2, 4 or 8: the probe (ky, kx) in eighths lies on the 1/2, else the 1/4, else only the 1/8 grid."""
    if ky % 4 == 0 and kx % 4 == 0:
        return 2
    if ky % 2 == 0 and kx % 2 == 0:
        return 4
    return 8


def reference_peaks(log_luminance: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(15,): the prominences of the probes (0,4), (4,0), (4,4), (0,2), (2,0), (2,2), (2,4), (2,6),
    (4,2), then the mean and the max over the kept probes of each level (1/2, 1/4, 1/8).

    The prominence p(u, v) = L_Y(u, v) minus the mean of the other 24 bins of its 5 x 5 box,
    L_Y taken as a 2-D array that wraps at the edges.
    """
    height, width = log_luminance.shape
    half = PEAK_BOX // 2
    box_sum = np.zeros_like(log_luminance)
    for du in range(-half, half + 1):
        for dv in range(-half, half + 1):
            box_sum += np.roll(log_luminance, (du, dv), axis=(0, 1))
    prominence = log_luminance - (box_sum - log_luminance) / (PEAK_BOX * PEAK_BOX - 1)
    probes = reference_peak_probes(height, width)
    by_eighths = {(ky, kx): prominence[u, v] for ky, kx, u, v in probes}
    named = [by_eighths[k] for k in ((0, 4), (4, 0), (4, 4), (0, 2), (2, 0), (2, 2), (2, 4), (2, 6), (4, 2))]
    stats = []
    for level in (2, 4, 8):
        values = [prominence[u, v] for ky, kx, u, v in probes if peak_level(ky, kx) == level]
        stats += [np.mean(values), np.max(values)]
    return np.array([*named, *stats])


def reference_extended_features(rgb: npt.NDArray[np.uint8], spectrum: str = "log") -> npt.NDArray[np.float64]:
    """The 69 features of the extended set: the paper's six (in `spectrum` mode), the luminance
    profile (16), the Cb and Cr chroma-ratio profiles (16 each) and the periodic peaks (15)."""
    log_spectra = reference_log_spectra(rgb)
    return np.concatenate(
        [reference_features(rgb, spectrum), reference_profiles(log_spectra), reference_peaks(log_spectra[0])]
    )


# --- the residual feature set (scanner.core.featuresets.RESIDUAL) -----------------------

WINDOW = 32  # the Welch windows: 32 x 32, no window function
RESIDUAL_FLOOR = 1e-12  # ln(S + 1e-12): a constant residual (S = 0) stays finite
RESIDUAL_BINS = 8
PEAK_STEPS = (0, 4, 8, 12, 16)  # the 1/8-cycle grid of the 32-point window spectrum
COHERENCE_EDGES = (0.0, 0.35, 0.7, 1.05, np.sqrt(2.0))


def window_stride(height: int, width: int) -> int:
    """16 when max(H, W) <= 256, else 32."""
    return 16 if max(height, width) <= 256 else 32


def window_origins(height: int, width: int) -> list[tuple[int, int]]:
    """(top, left) of every 32 x 32 window that fits wholly in the image, at the stride, rows first."""
    stride = window_stride(height, width)
    return [(i, j) for i in range(0, height - WINDOW + 1, stride) for j in range(0, width - WINDOW + 1, stride)]


def reference_median_residuals(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """(3, H, W) float64: r_c = x_c - median3x3(x_c), x_c = the channel / 255, for R, G, B.

    OpenCV's medianBlur, ksize 3, on each uint8 channel (the median of uint8 values is one of
    them, so medianBlur / 255 is exactly the median of x_c); its border is BORDER_REPLICATE.
    """
    import cv2  # the decoder's library: imported here so that the reference's other parts need none

    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise TypeError(f"expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    out = np.empty((3, *rgb.shape[:2]))
    for c in range(3):
        channel = np.ascontiguousarray(rgb[..., c])
        out[c] = (channel.astype(np.float64) - cv2.medianBlur(channel, 3).astype(np.float64)) / 255.0
    return out


def reference_welch(rgb: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.complex128], int]:
    """The Welch spectra of the residuals over the image's windows: S (3, 32, 32) of R, G, B and the cross
    spectra C (3, 32, 32) of (R, G), (R, B), (G, B), each the mean over windows of F_a conj(F_b) / 32^2
    (full complex fft2 per window), and the number of windows K; with no window (a side under 32 px),
    S and C are NaN."""
    residuals = reference_median_residuals(rgb)
    origins = window_origins(*rgb.shape[:2])
    if not origins:
        nan = np.full((3, WINDOW, WINDOW), np.nan)
        return nan, nan.astype(np.complex128), 0
    windows = np.stack([residuals[:, i : i + WINDOW, j : j + WINDOW] for i, j in origins])  # (K, 3, 32, 32)
    spectra = np.fft.fft2(windows, axes=(2, 3))
    power = np.mean(np.abs(spectra) ** 2, axis=0) / WINDOW**2
    cross = np.stack([np.mean(spectra[:, a] * np.conj(spectra[:, b]), axis=0) / WINDOW**2 for a, b in PAIRS])
    return power, cross, len(origins)


def reference_window_radius() -> npt.NDArray[np.float64]:
    """(32, 32): rho = sqrt(fu^2 + fv^2) / 0.5 on the window's grid (numpy.fft.fftfreq)."""
    f = np.fft.fftfreq(WINDOW)
    radius: npt.NDArray[np.float64] = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2) / 0.5
    return radius


def reference_window_bins() -> npt.NDArray[np.int64]:
    """(32, 32): the radial bin of each bin of the window spectrum, -1 for DC: 8 equal-width bins over
    [0, sqrt 2], the last edge inclusive; exactly, in integers: with fu = a / 32, fv = b / 32,
    k = floor(8 rho / sqrt 2) = floor(sqrt((a^2 + b^2) / 8))."""
    a = np.rint(np.fft.fftfreq(WINDOW) * WINDOW).astype(np.int64)
    squares = a[:, None] ** 2 + a[None, :] ** 2
    bins: npt.NDArray[np.int64] = np.minimum(np.floor(np.sqrt(squares // 8)).astype(np.int64), RESIDUAL_BINS - 1)
    bins[0, 0] = -1
    return bins


def reference_window_bands() -> npt.NDArray[np.int64]:
    """(32, 32): the coherence band of each bin, -1 for DC: edges 0, 0.35, 0.7, 1.05, sqrt 2 on rho,
    the last inclusive (no bin of the 32-point grid lies on an inner edge)."""
    radius = reference_window_radius()
    bands = np.minimum(np.searchsorted(COHERENCE_EDGES, radius, side="right") - 1, len(COHERENCE_EDGES) - 2)
    bands[0, 0] = -1
    out: npt.NDArray[np.int64] = bands.astype(np.int64)
    return out


def reference_residual_peaks(log_luminance: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(26,): prominences on ln S_Y (32, 32): p(u, v) = ln S_Y(u, v) minus the mean of its 8 neighbours
    (wrapping); at (u, v) in {0, 4, 8, 12, 16}^2 but (0, 0), the mean of p over (+-u, +-v); then the mean
    and the max of p over the bins with u, v even, not both multiples of 4 (the 1/16 grid less the 1/8)."""
    neighbours = np.zeros_like(log_luminance)
    for du in (-1, 0, 1):
        for dv in (-1, 0, 1):
            if du or dv:
                neighbours += np.roll(log_luminance, (du, dv), axis=(0, 1))
    p = log_luminance - neighbours / 8.0
    named = [
        np.mean([p[su * u % WINDOW, sv * v % WINDOW] for su in (1, -1) for sv in (1, -1)])
        for u in PEAK_STEPS
        for v in PEAK_STEPS
        if u or v
    ]
    u, v = np.meshgrid(np.arange(WINDOW), np.arange(WINDOW), indexing="ij")
    sixteenth = (u % 2 == 0) & (v % 2 == 0) & ~((u % 4 == 0) & (v % 4 == 0))
    return np.array([*named, np.mean(p[sixteenth]), np.max(p[sixteenth])])


def reference_residual_part(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """The 62 features the residual set adds (NaN when no 32 x 32 window fits the image)."""
    power, cross, count = reference_welch(rgb)
    if count == 0:
        return np.full(62, np.nan)
    # S_X of X = Y, Cb, Cr: mean |sum_c m_c F_c|^2 / 32^2, the BT.601 combinations of the channel spectra.
    full = np.empty((3, 3, WINDOW, WINDOW), dtype=np.complex128)
    for c in range(3):
        full[c, c] = power[c]
    for (a, b), spectrum in zip(PAIRS, cross, strict=True):
        full[a, b] = spectrum
        full[b, a] = np.conj(spectrum)
    combined = np.einsum("xa,xb,abuv->xuv", YCBCR, YCBCR, full).real
    logs = np.log(combined + RESIDUAL_FLOOR)
    bins = reference_window_bins()
    means = np.array([[np.mean(plane[bins == k]) for k in range(RESIDUAL_BINS)] for plane in logs])
    profiles = np.concatenate([means[0], means[1] - means[0], means[2] - means[0]])
    bands = reference_window_bands()
    coherence = []
    for (a, b), spectrum in zip(PAIRS, cross, strict=True):
        shared = power[a] * power[b]
        with np.errstate(divide="ignore", invalid="ignore"):
            msc = np.where(shared > 0, np.abs(spectrum) ** 2 / shared, 0.0)
        coherence += [np.mean(msc[bands == k]) for k in range(len(COHERENCE_EDGES) - 1)]
    return np.concatenate([profiles, reference_residual_peaks(logs[0]), coherence])


def reference_residual_features(rgb: npt.NDArray[np.uint8], spectrum: str = "log") -> npt.NDArray[np.float64]:
    """The 131 features of the residual set: the extended set's 69, then the 62 of the residual spectra."""
    return np.concatenate([reference_extended_features(rgb, spectrum), reference_residual_part(rgb)])
