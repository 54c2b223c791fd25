"""Numba kernels of the extended feature set (scanner.features.extended), over the rfft2 half spectrum.

Each has a plain numpy counterpart in scanner.features.reference, written from the
definitions over the full spectrum, and the tests hold them to it.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from scanner.features.intrinsics import exponent, mantissa

LOG_FLOOR = 1e-5
# BT.601 full range (JPEG): Y, Cb, Cr from R, G, B.
Y_R, Y_G, Y_B = 0.299, 0.587, 0.114
CB_R, CB_G, CB_B = -0.168736, -0.331264, 0.5
CR_R, CR_G, CR_B = 0.5, -0.418688, -0.081312
PEAK_BOX = 5

# --- a float64 logarithm that vectorises ---------------------------------------------

_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that e * _LN2_HI is exact for |e| < 2**20
_LN2_LO = 1.90821492927058770002e-10

# Contraction (FMA) is allowed here: it only makes the polynomial more accurate.
_MATH = {"reassoc", "nsz", "nnan", "ninf", "contract"}


@nb.njit(inline="always", fastmath=_MATH, error_model="numpy")
def log_positive64(q):
    """ln(q) for a positive, normal float64, branch-free so that loops vectorise.

    q = 2**e * m with m in [sqrt(1/2), sqrt(2)); ln(m) = 2 atanh(t), t = (m-1)/(m+1),
    |t| <= 0.1716, summed to t**19: the truncation error (under 3e-17 relative) is
    below float64 rounding; the result is within 2 ulp of the C library's log.
    """
    m = mantissa(q)
    e = exponent(q)
    t = (m - 1.0) / (m + 1.0)
    t2 = t * t
    p = 1.0 / 19.0
    p = 1.0 / 17.0 + t2 * p
    p = 1.0 / 15.0 + t2 * p
    p = 1.0 / 13.0 + t2 * p
    p = 1.0 / 11.0 + t2 * p
    p = 1.0 / 9.0 + t2 * p
    p = 1.0 / 7.0 + t2 * p
    p = 1.0 / 5.0 + t2 * p
    p = 1.0 / 3.0 + t2 * p
    s = 2.0 * t
    return e * _LN2_HI + (e * _LN2_LO + (s + s * t2 * p))


@nb.njit(cache=True, nogil=True, fastmath=_MATH, error_model="numpy")
def log_positive64_array(values, out):
    """out = ln(values) elementwise with log_positive64 (for the tests)."""
    for k in range(values.shape[0]):
        out[k] = log_positive64(values[k])


# --- the profiles ------------------------------------------------------------------


@nb.njit(inline="always", fastmath=_MATH, error_model="numpy")
def _row_logs(r, g, b, factor, out):
    """L_Y, L_Cb, L_Cr of one row of the half spectra (interleaved real, imaginary pairs) into out (3, Wh),
    C-contiguous. The moduli first, then the logarithms over the whole row in one flat loop, which
    vectorises (one loop for both did not: about 1.2 times slower)."""
    wh = out.shape[1]
    for j in range(wh):
        rr = np.float64(r[2 * j])
        ri = np.float64(r[2 * j + 1])
        gr = np.float64(g[2 * j])
        gi = np.float64(g[2 * j + 1])
        br = np.float64(b[2 * j])
        bi = np.float64(b[2 * j + 1])
        yr = Y_R * rr + Y_G * gr + Y_B * br
        yi = Y_R * ri + Y_G * gi + Y_B * bi
        cbr = CB_R * rr + CB_G * gr + CB_B * br
        cbi = CB_R * ri + CB_G * gi + CB_B * bi
        crr = CR_R * rr + CR_G * gr + CR_B * br
        cri = CR_R * ri + CR_G * gi + CR_B * bi
        out[0, j] = math.sqrt(yr * yr + yi * yi) * factor + LOG_FLOOR
        out[1, j] = math.sqrt(cbr * cbr + cbi * cbi) * factor + LOG_FLOOR
        out[2, j] = math.sqrt(crr * crr + cri * cri) * factor + LOG_FLOOR
    flat = out.reshape(3 * wh)
    for k in range(3 * wh):
        flat[k] = log_positive64(flat[k])


@nb.njit(cache=True, nogil=True, fastmath=_MATH, error_model="numpy")
def profile_sums(spectra, starts, edge_bins, factor, row, out):
    """Full-spectrum sums of L_Y, L_Cb and L_Cr per radial bin, from the half spectra.

    spectra: (3, H, 2 Wh) interleaved (real, imaginary) half spectra of R, G, B;
    starts: (H, 17) the first column of each bin along each row (starts[i, 16] = Wh),
    the DC bin left out; edge_bins: (H, 2) the bin of column 0 and of column Wh - 1
    when it is counted once (even W), -1 otherwise; factor: what turns |F| into
    |F_X| / sqrt(H W). Adds to out (3, 16): every column counts twice, less column 0
    and (even W) column Wh - 1 once.
    """
    h = spectra.shape[1]
    for i in range(h):
        _row_logs(spectra[0, i], spectra[1, i], spectra[2, i], factor, row)
        for k in range(starts.shape[1] - 1):
            y = cb = cr = 0.0
            for j in range(starts[i, k], starts[i, k + 1]):
                y += row[0, j]
                cb += row[1, j]
                cr += row[2, j]
            out[0, k] += 2.0 * y
            out[1, k] += 2.0 * cb
            out[2, k] += 2.0 * cr
        for e in range(2):
            k = edge_bins[i, e]
            if k >= 0:
                j = 0 if e == 0 else row.shape[1] - 1
                for x in range(3):
                    out[x, k] -= row[x, j]


@nb.njit(cache=True, nogil=True, error_model="numpy")
def profiles(sums, counts, out):
    """The luminance profile, then the Cb and Cr profiles minus it, from the sums per bin (3, 16)
    and the bins' counts; a bin holding no frequency (a side under 23 px) has no mean: NaN."""
    n = sums.shape[1]
    for k in range(n):
        if counts[k] > 0:
            y = sums[0, k] / counts[k]
            out[k] = y
            out[n + k] = sums[1, k] / counts[k] - y
            out[2 * n + k] = sums[2, k] / counts[k] - y
        else:
            out[k] = out[n + k] = out[2 * n + k] = np.nan


# --- the periodic peaks ------------------------------------------------------------


@nb.njit(cache=True, nogil=True, error_model="numpy")
def box_log_luminance(spectra, rows, cols, factor, out):
    """L_Y at half-spectrum bins (rows[k], cols[k]) of interleaved spectra (3, H, 2 Wh), with libm's log."""
    for k in range(rows.shape[0]):
        i = rows[k]
        j = cols[k]
        yr = Y_R * np.float64(spectra[0, i, 2 * j]) + Y_G * np.float64(spectra[1, i, 2 * j])
        yr += Y_B * np.float64(spectra[2, i, 2 * j])
        yi = Y_R * np.float64(spectra[0, i, 2 * j + 1]) + Y_G * np.float64(spectra[1, i, 2 * j + 1])
        yi += Y_B * np.float64(spectra[2, i, 2 * j + 1])
        out[k] = math.log(math.sqrt(yr * yr + yi * yi) * factor + LOG_FLOOR)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def peak_features(box_values, levels, named, out):
    """The 15 peak features from L_Y of each probe's box (P * 25 values, each box centre first).

    levels: (P,) 0, 1, 2 for the 1/2, 1/4, 1/8 level; named: (9,) the probes'
    rows in the order of the named features. out: 9 prominences, then mean and max per level.
    """
    n = levels.shape[0]
    size = box_values.shape[0] // n
    prominence = np.empty(n)
    for p in range(n):
        others = 0.0
        for k in range(1, size):
            others += box_values[p * size + k]
        prominence[p] = box_values[p * size] - others / (size - 1)
    for q in range(named.shape[0]):
        out[q] = prominence[named[q]]
    for level in range(3):
        total = 0.0
        count = 0
        best = -np.inf
        for p in range(n):
            if levels[p] == level:
                total += prominence[p]
                count += 1
                best = max(best, prominence[p])
        out[named.shape[0] + 2 * level] = total / count
        out[named.shape[0] + 2 * level + 1] = best
