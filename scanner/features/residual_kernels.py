"""Numba kernels of the residual feature set (scanner.features.residual): windows in, Welch sums, features out.

Each has a plain numpy counterpart in scanner.features.reference (written over full complex
spectra), and the tests hold them to it. The windows' transforms are the backend's, in
batches (scanner.features.backends.base.FFTBackend.batch); sums are float64 throughout.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from scanner.features.extended_kernels import CB_B, CB_G, CB_R, CR_B, CR_G, CR_R, Y_B, Y_G, Y_R

WINDOW = 32
HALF = WINDOW // 2 + 1
RESIDUAL_FLOOR = 1e-12  # ln(S + 1e-12)
# The accumulators, per bin of the window's half spectrum: S_R, S_G, S_B, then (real, imaginary) of
# the cross spectra R conj(G), R conj(B), G conj(B).
ACCUMULATORS = 9
_MIX = np.array([[Y_R, Y_G, Y_B], [CB_R, CB_G, CB_B], [CR_R, CR_G, CR_B]])


@nb.njit(cache=True, nogil=True, error_model="numpy")
def copy_windows(planes, tops, lefts, first, count, out):
    """Copy windows first .. first + count - 1 of the residual planes (3, H, W) into out (P, 32, S >= 32),
    C-contiguous (a transform's ``rows``): planes 3k, 3k + 1, 3k + 2 of out are the R, G, B windows of
    the k-th, in the first 32 columns of each row."""
    for k in range(count):
        top = tops[first + k]
        left = lefts[first + k]
        for c in range(3):
            source = planes[c]
            target = out[3 * k + c]
            for i in range(WINDOW):
                row = source[top + i]
                into = target[i]
                for j in range(WINDOW):
                    into[j] = row[left + j]


@nb.njit(cache=True, nogil=True, error_model="numpy")
def residual_windows(channel, median, c, tops, lefts, first, count, out):
    """Channel c's residuals (the uint8 plane - its median) of windows first .. first + count - 1, into
    planes c, 3 + c, ... of out (P, 32, S >= 32), as copy_windows lays them out. For windows that do not
    overlap: each pixel is read once, and no float copy of the residual planes is written."""
    for k in range(count):
        top = tops[first + k]
        left = lefts[first + k]
        target = out[3 * k + c]
        for i in range(WINDOW):
            row = channel[top + i]
            row_median = median[top + i]
            into = target[i]
            for j in range(WINDOW):
                into[j] = np.float32(row[left + j]) - np.float32(row_median[left + j])


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def accumulate_spectra(interleaved, count, acc):
    """Add the powers and cross spectra of the first `count` windows of a batch to acc (9, 32 * 17).

    interleaved: the batch's half spectra as (real, imaginary) pairs, plane after plane (R, G, B of
    each window), 32 rows of 17 pairs each.
    """
    bins = acc.shape[1]
    plane = 2 * bins
    for k in range(count):
        r = interleaved[3 * k * plane : (3 * k + 1) * plane]
        g = interleaved[(3 * k + 1) * plane : (3 * k + 2) * plane]
        b = interleaved[(3 * k + 2) * plane : (3 * k + 3) * plane]
        for m in range(bins):
            rr = np.float64(r[2 * m])
            ri = np.float64(r[2 * m + 1])
            gr = np.float64(g[2 * m])
            gi = np.float64(g[2 * m + 1])
            br = np.float64(b[2 * m])
            bi = np.float64(b[2 * m + 1])
            acc[0, m] += rr * rr + ri * ri
            acc[1, m] += gr * gr + gi * gi
            acc[2, m] += br * br + bi * bi
            acc[3, m] += rr * gr + ri * gi
            acc[4, m] += ri * gr - rr * gi
            acc[5, m] += rr * br + ri * bi
            acc[6, m] += ri * br - rr * bi
            acc[7, m] += gr * br + gi * bi
            acc[8, m] += gi * br - gr * bi


@nb.njit(cache=True, nogil=True, error_model="numpy")
def residual_features(acc, scale, bins, bands, out):
    """The 62 features from the Welch sums acc (9, 32 * 17) of the half spectrum, `scale` turning a sum
    into a mean over windows of |F|^2 / 32^2 of the residuals / 255.

    bins, bands: (32, 32) the radial bin (0..7) and coherence band (0..3) of each bin of the full
    spectrum, -1 for DC. out (62): the luminance profile, the Cb and Cr profiles minus it, 24 named
    prominences, the mean and max prominence on the 1/16 grid less the 1/8, then 4 coherence bands
    of (R, G), (R, B), (G, B).
    """
    n = WINDOW
    logs = np.empty((3, n, n))
    coherence = np.empty((3, n, n))
    power = np.empty(3)
    re = np.empty(3)  # the real parts of the cross spectra (R, G), (R, B), (G, B)
    for u in range(n):
        for v in range(n):
            # The full spectrum from the half: S(-u, -v) = S(u, v), C(-u, -v) = conj(C(u, v)).
            m = u * HALF + v if v <= n // 2 else ((n - u) % n) * HALF + (n - v)
            for c in range(3):
                power[c] = acc[c, m] * scale
            for p in range(3):
                re[p] = acc[3 + 2 * p, m] * scale
                im = acc[4 + 2 * p, m] * scale
                a = 0 if p < 2 else 1
                b = 1 if p == 0 else 2
                shared = power[a] * power[b]
                coherence[p, u, v] = (re[p] * re[p] + im * im) / shared if shared > 0.0 else 0.0
            for x in range(3):
                wr, wg, wb = _MIX[x, 0], _MIX[x, 1], _MIX[x, 2]
                s = wr * wr * power[0] + wg * wg * power[1] + wb * wb * power[2]
                s += 2.0 * (wr * wg * re[0] + wr * wb * re[1] + wg * wb * re[2])
                logs[x, u, v] = math.log(s + RESIDUAL_FLOOR)
    # Radial profiles.
    sums = np.zeros((3, 8))
    counts = np.zeros(8)
    band_sums = np.zeros((3, 4))
    band_counts = np.zeros(4)
    for u in range(n):
        for v in range(n):
            k = bins[u, v]
            if k >= 0:
                counts[k] += 1.0
                for x in range(3):
                    sums[x, k] += logs[x, u, v]
            q = bands[u, v]
            if q >= 0:
                band_counts[q] += 1.0
                for p in range(3):
                    band_sums[p, q] += coherence[p, u, v]
    for k in range(8):
        y = sums[0, k] / counts[k]
        out[k] = y
        out[8 + k] = sums[1, k] / counts[k] - y
        out[16 + k] = sums[2, k] / counts[k] - y
    # Prominences over the 8 neighbours, wrapping.
    prominence = np.empty((n, n))
    for u in range(n):
        for v in range(n):
            around = 0.0
            for du in range(-1, 2):
                for dv in range(-1, 2):
                    if du != 0 or dv != 0:
                        around += logs[0, (u + du) % n, (v + dv) % n]
            prominence[u, v] = logs[0, u, v] - around / 8.0
    at = 24
    for u in range(0, n // 2 + 1, 4):
        for v in range(0, n // 2 + 1, 4):
            if u == 0 and v == 0:
                continue
            total = 0.0
            for su in (1, -1):
                for sv in (1, -1):
                    total += prominence[(su * u) % n, (sv * v) % n]
            out[at] = total / 4.0
            at += 1
    total = 0.0
    count = 0
    best = -np.inf
    for u in range(0, n, 2):
        for v in range(0, n, 2):
            if u % 4 == 0 and v % 4 == 0:
                continue
            total += prominence[u, v]
            count += 1
            best = max(best, prominence[u, v])
    out[48] = total / count
    out[49] = best
    for p in range(3):
        for q in range(4):
            out[50 + 4 * p + q] = band_sums[p, q] / band_counts[q]
