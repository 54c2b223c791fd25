"""Numba kernels for the per-image reductions.

Every kernel works on the rfft2 half spectrum (H x (W//2 + 1) bins per channel).
Real input makes |F(u, v)| = |F(-u, -v)|, so the full H x W spectrum is the half
spectrum with column 0 (and column W/2 when W is even) counted once and every
other column counted twice. The kernels apply those weights, so each statistic is
exactly the full-spectrum one at half the transform cost.

The hot loops are written so that LLVM vectorises them: no branches in the inner
loops, float32 where the value is stored and float64 where it is summed.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

from scanner.features.intrinsics import exponent, mantissa

_LN2 = np.float32(math.log(2.0))


@nb.njit(inline="always", fastmath=True, error_model="numpy")
def _log_positive(q):
    """ln(q) for a positive, normal float32, branch-free so that loops vectorise.

    q = 2**e * m with m in [sqrt(1/2), sqrt(2)); ln(m) = 2 atanh(t), t = (m-1)/(m+1),
    |t| <= 0.1716, summed to t**9: the truncation error (below 1e-9) is far under
    float32 rounding.
    """
    m = mantissa(q)
    t = (m - np.float32(1.0)) / (m + np.float32(1.0))
    t2 = t * t
    poly = np.float32(1.0) + t2 * (
        np.float32(1.0 / 3.0) + t2 * (np.float32(1.0 / 5.0) + t2 * (np.float32(1.0 / 7.0) + t2 * np.float32(1.0 / 9.0)))
    )
    return exponent(q) * _LN2 + np.float32(2.0) * t * poly


# to_planar's flags for an identical pair of planes: (bit, the plane copied, the plane it is copied to).
IDENTICAL_PAIRS = ((4, 0, 1), (5, 0, 2), (6, 1, 2))


def to_planar(image: np.ndarray, out: np.ndarray, scale: Any, red_index: int) -> int:
    """Write a C-contiguous (H, W, 3) uint8 image into out[0..2] as scaled R, G, B planes.

    out is C-contiguous, (3, H, S) with S >= W (a transform's ``rows``): the first W columns
    of each row are written, the rest left as they are.

    red_index is 2 for OpenCV's BGR order, 0 for RGB. `scale` is a scalar of
    out's dtype, so that the product is formed in that precision (float64: the
    exact double of pixel * scale; float32: one float32 product, no double
    detour). Returns, found in the same pass, flags: bit 0 set when the three
    channels are identical everywhere (a grey image), bit 1 + c when plane c
    (R, G, B) is constant, and bits 4, 5, 6 when the pairs R = G, R = B, G = B
    are identical everywhere (IDENTICAL_PAIRS).

    Each channel order has its own compiled loop: with the order a constant, the
    loop vectorises (about 3x faster at 1024 x 1024 than one loop for both). The flags are
    looked for row by row only until every one of them is known to be clear (in a colour
    image, the first row or so); the rows after are copied by a loop without them, which
    vectorises far better (at 1024 x 1024: 0.75 ms against 3.3 ms for the whole image with them).
    """
    planar = _to_planar_bgr if red_index == 2 else _to_planar_rgb
    return int(planar(image, out, scale))


@nb.njit(inline="always", fastmath=True, error_model="numpy")
def _planar_rows(image, out, scale, red_index):
    h, w, _ = image.shape
    blue_index = 2 - red_index
    r0 = image[0, 0, red_index]
    g0 = image[0, 0, 1]
    b0 = image[0, 0, blue_index]
    differ_rg = np.uint8(0)
    differ_rb = np.uint8(0)
    differ_gb = np.uint8(0)
    vary_r = np.uint8(0)
    vary_g = np.uint8(0)
    vary_b = np.uint8(0)
    settled = False
    for i in range(h):
        row = image[i].reshape(3 * w)  # the pixels of a row, interleaved: contiguous
        plane_r = out[0, i]
        plane_g = out[1, i]
        plane_b = out[2, i]
        if settled:
            # Every flag is known to be clear: the copy alone, which vectorises (4 to 5 times faster).
            for j in range(w):
                plane_r[j] = row[3 * j + red_index] * scale
                plane_g[j] = row[3 * j + 1] * scale
                plane_b[j] = row[3 * j + blue_index] * scale
            continue
        for j in range(w):
            r = row[3 * j + red_index]
            g = row[3 * j + 1]
            b = row[3 * j + blue_index]
            differ_rg |= r ^ g
            differ_rb |= r ^ b
            differ_gb |= g ^ b
            vary_r |= r ^ r0
            vary_g |= g ^ g0
            vary_b |= b ^ b0
            plane_r[j] = r * scale
            plane_g[j] = g * scale
            plane_b[j] = b * scale
        # Once the channels are seen to differ pairwise and each to vary, no later pixel can set a flag.
        settled = (differ_rg != 0) & (differ_rb != 0) & (differ_gb != 0) & (vary_r != 0) & (vary_g != 0) & (vary_b != 0)
    same_rg, same_rb, same_gb = differ_rg == 0, differ_rb == 0, differ_gb == 0
    constant = ((vary_r == 0) << 1) | ((vary_g == 0) << 2) | ((vary_b == 0) << 3)
    return (same_rg & same_rb) | constant | (same_rg << 4) | (same_rb << 5) | (same_gb << 6)


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _to_planar_bgr(image, out, scale):
    return _planar_rows(image, out, scale, 2)


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _to_planar_rgb(image, out, scale):
    return _planar_rows(image, out, scale, 0)


_BLOCK = 8192  # bins per block: both passes of a block stay in L1/L2


@nb.njit(inline="always", fastmath=True, error_model="numpy")
def _power(re_im, out):
    """out[k] = |F_k|**2, formed in float64 and rounded once to float32."""
    for k in range(out.shape[0]):
        a = re_im[2 * k]
        b = re_im[2 * k + 1]
        out[k] = np.float32(a * a + b * b)


@nb.njit(inline="always", fastmath=True, error_model="numpy")
def _log_of_modulus(out):
    for k in range(out.shape[0]):
        out[k] = _log_positive(np.sqrt(out[k]) + np.float32(1e-3))


@nb.njit(inline="always", fastmath=True, error_model="numpy")
def _modulus(out):
    for k in range(out.shape[0]):
        out[k] = np.sqrt(out[k])


@nb.njit(inline="always", fastmath=True, error_model="numpy")
def _channel_values(re_im, out, log):
    """|F| or ln(|F| + 1e-3) per bin. From float32 pairs in one pass (every value float32: it
    vectorises, and at 1024 x 1024 it is about 1.25 times faster than the blocks below). From
    float64 pairs in blocks: two passes per block, each of one width (float64 in, then float32
    only), vectorise better than one mixed pass, and the block stays in cache between them."""
    n = out.shape[0]
    if re_im.itemsize == 4:
        for k in range(n):
            a = re_im[2 * k]
            b = re_im[2 * k + 1]
            q = np.sqrt(np.float32(a * a + b * b))
            out[k] = _log_positive(q + np.float32(1e-3)) if log else q
        return
    for k0 in range(0, n, _BLOCK):
        k1 = min(k0 + _BLOCK, n)
        block = out[k0:k1]
        _power(re_im[2 * k0 : 2 * k1], block)
        if log:
            _log_of_modulus(block)
        else:
            _modulus(block)


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def log_magnitude(re_im, out):
    """out = ln(|F| + 1e-3) for spectra given as interleaved float64 (real,
    imaginary) pairs, stored as float32, one value per bin.

    |F|**2 is rounded once to float32; the square root, the offset and the
    logarithm then add under 2e-7 relative error per bin, far below what the
    features resolve (the tests hold them to a float64 reference).
    """
    _channel_values(re_im, out, True)


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def magnitude(re_im, out):
    """out = |F| for spectra given as interleaved float64 pairs, stored as float32."""
    _channel_values(re_im, out, False)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _count_below(flat, lo1, lo2):
    n1 = 0
    n2 = 0
    for k in range(flat.shape[0]):
        n1 += flat[k] < lo1
        n2 += flat[k] < lo2
    return n1, n2


# Counting in float32 lanes (exact below 2**24) lets LLVM vectorise the bracket pass; counts
# kept as integers made it widen every comparison to int64 and ran about three times slower.
_COUNT_MATH = {"reassoc", "nsz"}
_COUNT_BLOCK = 1 << 16
_ONE = np.float32(1.0)
_TWO = np.float32(2.0)
_ZERO = np.float32(0.0)


@nb.njit(cache=True, nogil=True, fastmath=_COUNT_MATH, error_model="numpy")
def _mark_block(block, lo1, hi1, lo2, hi2, mask):
    """Mark members of [lo1, hi1] (bit 0) and [lo2, hi2] (bit 1) in mask; count values below lo1 and lo2."""
    below1 = _ZERO
    below2 = _ZERO
    for k in range(block.shape[0]):
        v = block[k]
        below1 += _ONE if v < lo1 else _ZERO
        below2 += _ONE if v < lo2 else _ZERO
        flags = (_ONE if (v >= lo1) & (v <= hi1) else _ZERO) + (_TWO if (v >= lo2) & (v <= hi2) else _ZERO)
        mask[k] = np.uint8(flags)
    return int(below1), int(below2)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def gather_brackets(values, full_width, lo1, hi1, lo2, hi2, out1, out2, mask):
    """Count the full-spectrum bins below lo1 and below lo2, and copy every value
    in [lo1, hi1] into out1 and in [lo2, hi2] into out2, each as often as its
    Hermitian weight. Returns (below1, found1, below2, found2); a found count
    larger than its buffer means the buffer holds only a part.

    One vectorised pass counts the bins below each bracket and marks bracket
    members in `mask` (uint8, at least values.size rounded up to 8); a second
    pass reads the mask eight bytes at a time and visits only the few marked bins.
    """
    h, wh = values.shape
    last = wh - 1 if full_width % 2 == 0 else -1
    flat = values.ravel()
    n = flat.shape[0]
    n1 = 0
    n2 = 0
    for k0 in range(0, n, _COUNT_BLOCK):
        k1 = min(k0 + _COUNT_BLOCK, n)
        b1, b2 = _mark_block(flat[k0:k1], lo1, hi1, lo2, hi2, mask[k0:k1])
        n1 += b1
        n2 += b2
    e1, e2 = _count_below(values[:, 0], lo1, lo2)
    below1 = 2 * n1 - e1
    below2 = 2 * n2 - e2
    if last >= 0:
        e1, e2 = _count_below(values[:, last], lo1, lo2)
        below1 -= e1
        below2 -= e2
    words = mask.view(np.uint64)
    f1 = 0
    f2 = 0
    cap1 = out1.shape[0]
    cap2 = out2.shape[0]
    for w in range((n + 7) // 8):
        if words[w] == 0:
            continue
        for k in range(8 * w, min(8 * w + 8, n)):
            flags = mask[k]
            if flags == 0:
                continue
            v = flat[k]
            col = k % wh
            reps = 1 if (col == 0 or col == last) else 2
            for _ in range(reps):
                if flags & 1:
                    if f1 < cap1:
                        out1[f1] = v
                    f1 += 1
                if flags & 2:
                    if f2 < cap2:
                        out2[f2] = v
                    f2 += 1
    return below1, f1, below2, f2


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _lerp(a, b, gamma):
    """numpy's _lerp: the formula depends on gamma so that it stays monotone."""
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1.0 - gamma)
    return a + diff * gamma


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _bracket(sample, n_full, k, widen, sigmas):
    """Sample values around where rank k of n_full should fall: `sigmas` standard
    deviations of the sample rank either side, times `widen` after a miss."""
    m = sample.shape[0]
    q = min(max(k / n_full, 1.0 / n_full), 1.0 - 1.0 / n_full)
    centre = k * (m - 1) / max(n_full - 1, 1)
    margin = widen * (sigmas * math.sqrt(m * q * (1.0 - q)) + 2.0)
    lo_idx = int(math.floor(centre - margin))
    hi_idx = int(math.ceil(centre + 1.0 + margin))
    lo = sample[lo_idx] if lo_idx > 0 else -np.inf
    hi = sample[hi_idx] if hi_idx < m - 1 else np.inf
    return np.float32(lo), np.float32(hi)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _pick(candidates, count, r):
    """Ranks r and r + 1 (0-based) of candidates[:count], in O(count)."""
    part = np.partition(candidates[:count], r)
    return np.float64(part[r]), np.float64(part[r + 1 : count].min())


@nb.njit(cache=True, nogil=True, error_model="numpy")
def percentiles_1_99(values, full_width, sample, mask, cand1, cand2, sigmas):
    """numpy's linear 1st and 99th percentiles of one channel's full spectrum.

    `sample` is a sorted strided sample of `values`; it brackets each rank, one
    pass (gather_brackets) counts the bins below each bracket and gathers those
    inside, and a partition of the few candidates gives the exact order
    statistics. A bracket that misses its rank is widened and the pass repeated,
    so the result is always exactly np.percentile(full, [1, 99]).
    """
    h = values.shape[0]
    n_full = h * full_width
    v1 = 0.01 * (n_full - 1)
    v2 = 0.99 * (n_full - 1)
    k1 = int(math.floor(v1))
    k2 = int(math.floor(v2))
    widen = 1.0
    while True:
        lo1, hi1 = _bracket(sample, n_full, k1, widen, sigmas)
        lo2, hi2 = _bracket(sample, n_full, k2, widen, sigmas)
        below1, f1, below2, f2 = gather_brackets(values, full_width, lo1, hi1, lo2, hi2, cand1, cand2, mask)
        if below1 <= k1 < below1 + f1 - 1 and below2 <= k2 < below2 + f2 - 1:
            break
        widen *= 4.0
    if f1 > cand1.shape[0] or f2 > cand2.shape[0]:
        cand1 = np.empty(f1, dtype=values.dtype)
        cand2 = np.empty(f2, dtype=values.dtype)
        gather_brackets(values, full_width, lo1, hi1, lo2, hi2, cand1, cand2, mask)
    a1, b1 = _pick(cand1, f1, k1 - below1)
    a2, b2 = _pick(cand2, f2, k2 - below2)
    return _lerp(a1, b1, v1 - k1), _lerp(a2, b2, v2 - k2)


# Reassociation lets LLVM vectorise the reductions; no "contract", so a value is
# computed with the same IEEE operations in every loop and a constant channel
# gives exactly zero variance.
_SUM_MATH = {"reassoc", "nsz", "nnan", "ninf"}


@nb.njit(inline="always", fastmath=_SUM_MATH, error_model="numpy")
def _scaled(s, offset, scale, clip):
    v = (np.float64(s) - offset) * scale
    if clip:
        v = min(max(v, 0.0), 1.0)
    return v


@nb.njit(cache=True, nogil=True, fastmath=_SUM_MATH, error_model="numpy")
def _row_sums(s0, s1, s2, i, j0, j1, off, sc, sh, clip, acc):
    """Add the 12 pair sums of columns j0..j1-1 of row i to acc."""
    d01 = d02 = d12 = 0.0
    a0 = a1 = a2 = 0.0
    q0 = q1 = q2 = 0.0
    x01 = x02 = x12 = 0.0
    for j in range(j0, j1):
        v0 = _scaled(s0[i, j], off[0], sc[0], clip)
        v1 = _scaled(s1[i, j], off[1], sc[1], clip)
        v2 = _scaled(s2[i, j], off[2], sc[2], clip)
        d01 += abs(v0 - v1)
        d02 += abs(v0 - v2)
        d12 += abs(v1 - v2)
        u0 = v0 - sh[0]
        u1 = v1 - sh[1]
        u2 = v2 - sh[2]
        a0 += u0
        a1 += u1
        a2 += u2
        q0 += u0 * u0
        q1 += u1 * u1
        q2 += u2 * u2
        x01 += u0 * u1
        x02 += u0 * u2
        x12 += u1 * u2
    acc[0] += d01
    acc[1] += d02
    acc[2] += d12
    acc[3] += a0
    acc[4] += a1
    acc[5] += a2
    acc[6] += q0
    acc[7] += q1
    acc[8] += q2
    acc[9] += x01
    acc[10] += x02
    acc[11] += x12


@nb.njit(cache=True, nogil=True, fastmath=_SUM_MATH, error_model="numpy")
def pair_sums(s0, s1, s2, full_width, offsets, scales, clip):
    """Weighted full-spectrum sums for the three channel pairs, in one pass.

    Channel c's value is v = (s - offsets[c]) * scales[c], clipped to [0, 1] when
    clip is set (the log spectrum). Returns 12 float64 sums over all H x W bins:
    sum|v0-v1|, sum|v0-v2|, sum|v1-v2|, then sum u_c, sum u_c**2 (c = 0, 1, 2)
    and sum u0*u1, u0*u2, u1*u2, where u = v - v[H//2, Wh//2]. The shift keeps
    large values from cancelling in the moments and gives a constant channel
    exactly zero variance (so a NaN correlation, as np.corrcoef).
    """
    h, wh = s0.shape
    last_single = full_width % 2 == 0
    shifts = np.empty(3)
    ci, cj = h // 2, wh // 2
    shifts[0] = _scaled(s0[ci, cj], offsets[0], scales[0], clip)
    shifts[1] = _scaled(s1[ci, cj], offsets[1], scales[1], clip)
    shifts[2] = _scaled(s2[ci, cj], offsets[2], scales[2], clip)
    total = np.zeros(12)
    row = np.zeros(12)
    edge = np.zeros(12)
    for i in range(h):
        row[:] = 0.0
        edge[:] = 0.0
        _row_sums(s0, s1, s2, i, 0, wh, offsets, scales, shifts, clip, row)
        _row_sums(s0, s1, s2, i, 0, 1, offsets, scales, shifts, clip, edge)
        if last_single:
            _row_sums(s0, s1, s2, i, wh - 1, wh, offsets, scales, shifts, clip, edge)
        for t in range(12):
            total[t] += 2.0 * row[t] - edge[t]
    return total
