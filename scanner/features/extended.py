"""The extended feature set: the paper's six, then statistics of the same transform that survive JPEG.

From the one FFT of the three channels the engine already made (no second
transform), with F_R, F_G, F_B the channel DFTs of the pixels / 255:

* F_Y, F_Cb, F_Cr: their BT.601 full-range combinations (the JPEG definition),
  and L_X = ln(|F_X| / sqrt(H W) + 1e-5);
* radial bins: r = sqrt(fu^2 + fv^2) / 0.5 (fu, fv as numpy.fft.fftfreq gives
  them: r = 1 is the Nyquist frequency on the axes), 16 equal-width bins over
  [0, sqrt 2], the last edge inclusive, the DC bin in none of them;
* the luminance profile (16): the mean of L_Y in each bin; the chroma-ratio
  profiles (32): the mean of L_Cb in each bin minus the luminance profile, then
  the same for L_Cr;
* periodic peaks (15): on L_Y as a 2-D array wrapping at the edges, the
  prominence p(u, v) = L_Y(u, v) minus the mean of the other 24 bins of its
  5 x 5 box, at the probes (floor(ky H / 8), floor(kx W / 8)) of the 1/8 grid
  (one of each conjugate pair): nine named probes of levels 1/2 and 1/4, then
  the mean and the max of p over each level.

scanner.features.reference holds the same definitions in plain float64 numpy over the
full spectrum; the tests hold this module and its numba kernels
(scanner.features.extended_kernels) to it. Here everything is read from
the rfft2 half spectrum with its Hermitian weights (|F_X| is symmetric because
each F_X is a real combination of DFTs of real planes, and so is r):

* a radial bin is, along each row of the half spectrum, one run of columns (r
  grows with the column), so a bin's sum is a few contiguous row sums; the runs,
  found once per image shape in exact integer arithmetic, and the bins' full-
  spectrum counts are kept per shape;
* L_Y, L_Cb, L_Cr of a row are formed in float64 by a branch-free logarithm
  that vectorises (within 2 ulp of the C library's), a row at a time;
* the probes' 5 x 5 boxes (825 bins at most) are read from the half spectrum
  through the conjugate symmetry and computed with the C library's logarithm.

Sums are float64 throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scanner.core.featuresets import EXTENDED, NAMED_PEAKS, RADIAL_BINS
from scanner.features.backends.base import ShapeCache, Transform
from scanner.features.extended_kernels import PEAK_BOX, box_log_luminance, peak_features, profile_sums, profiles
from scanner.features.paper import PaperFeatures
from scanner.features.spec import Picture

PEAK_GRID = 8

# --- what depends only on the image shape ---------------------------------------------


def _level_index(ky: int, kx: int) -> int:
    """0, 1, 2: the probe (ky, kx) in eighths is on the 1/2, else the 1/4, else only the 1/8 grid."""
    if ky % 4 == 0 and kx % 4 == 0:
        return 0
    if ky % 2 == 0 and kx % 2 == 0:
        return 1
    return 2


@dataclass(frozen=True)
class ShapeGeometry:
    """The radial runs, bin counts and peak probes of one image shape, and its work buffers."""

    starts: npt.NDArray[np.int64]  # (H, 17) int64
    edge_bins: npt.NDArray[np.int64]  # (H, 2) int64
    counts: npt.NDArray[np.float64]  # (16,) full-spectrum bins per radial bin (float64)
    box_rows: npt.NDArray[np.int64]  # (P * 25,) half-spectrum rows of the probes' boxes, centre first
    box_cols: npt.NDArray[np.int64]  # (P * 25,)
    levels: npt.NDArray[np.int64]  # (P,) 0, 1, 2
    named: npt.NDArray[np.int64]  # (9,) probe positions of the named peaks
    row: npt.NDArray[np.float64]  # (3, Wh) float64 work row
    box_values: npt.NDArray[np.float64]  # (P * 25,) float64

    @classmethod
    def of(cls, height: int, width: int) -> ShapeGeometry:
        starts, edge_bins, counts = radial_runs(height, width)
        probes = peak_probes(height, width)
        rows, cols = [], []
        half = PEAK_BOX // 2
        offsets = [(0, 0)] + [(du, dv) for du in range(-half, half + 1) for dv in range(-half, half + 1) if du or dv]
        for _, _, u, v in probes:
            for du, dv in offsets:
                i, j = half_spectrum_bin((u + du) % height, (v + dv) % width, height, width)
                rows.append(i)
                cols.append(j)
        position = {(ky, kx): p for p, (ky, kx, _, _) in enumerate(probes)}
        return cls(
            starts,
            edge_bins,
            counts,
            np.array(rows, dtype=np.int64),
            np.array(cols, dtype=np.int64),
            np.array([_level_index(ky, kx) for ky, kx, _, _ in probes], dtype=np.int64),
            np.array([position[k] for k in NAMED_PEAKS], dtype=np.int64),
            np.empty((3, width // 2 + 1)),
            np.empty(len(rows)),
        )


def half_spectrum_bin(u: int, v: int, height: int, width: int) -> tuple[int, int]:
    """Where the full-spectrum bin (u, v) is read in the rfft2 half: itself, or its conjugate (-u, -v)."""
    if v <= width // 2:
        return u, v
    return (-u) % height, width - v


def _first_column_at_least(k: int, a: int, height: int, width: int) -> int:
    """The first column j >= 0 of a row of frequency a whose radial bin is at least k, exactly:
    the least j with 512 (a^2 W^2 + j^2 H^2) >= k^2 H^2 W^2 (reference.reference_radial_bins)."""
    need = width * width * (k * k * height * height - 512 * a * a)  # 512 H^2 j^2 >= need
    if need <= 0:
        return 0
    j = math.isqrt(need // (512 * height * height))
    while 512 * height * height * j * j < need:
        j += 1
    return j


def _first_columns(height: int, width: int) -> npt.NDArray[np.int64]:
    """(H, 15): per row, the first column whose radial bin is at least k, for k = 1..15 (unclipped)."""
    a = np.arange(height, dtype=np.int64)
    a = np.where(a <= height // 2, a, a - height)  # numpy.fft.fftfreq's order
    k = np.arange(1, RADIAL_BINS, dtype=np.int64)
    if 256 * (height * width) ** 2 >= 2**62:  # products beyond int64: exact Python integers, row by row
        return np.array([[_first_column_at_least(int(b), int(r), height, width) for b in k] for r in a], np.int64)
    scale = 512 * height * height
    need = width * width * (k[None, :] ** 2 * height * height - 512 * a[:, None] ** 2)  # 512 H^2 j^2 >= need
    j: npt.NDArray[np.int64] = np.ceil(np.sqrt(np.maximum(need, 0) / scale)).astype(np.int64)
    for _ in range(2):  # the float estimate is within one of the exact answer: settle it in integers
        j += scale * j * j < need
        j -= (j > 0) & (scale * (j - 1) * (j - 1) >= need)
    return j


def radial_runs(
    height: int, width: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Per row of the half spectrum, the first column of each radial bin; the bins of the columns
    counted once; and each bin's number of full-spectrum frequencies (DC excluded)."""
    half = width // 2 + 1
    starts = np.empty((height, RADIAL_BINS + 1), dtype=np.int64)
    starts[:, 0] = 0
    starts[0, 0] = 1  # the DC bin is in no bin
    starts[:, 1:RADIAL_BINS] = np.clip(_first_columns(height, width), starts[:, :1], half)
    starts[:, RADIAL_BINS] = half
    counts = 2.0 * np.diff(starts, axis=1).sum(axis=0)
    edge_bins = np.full((height, 2), -1, dtype=np.int64)
    singles = [0] + ([half - 1] if width % 2 == 0 else [])  # columns counted once
    for e, column in enumerate(singles):
        bins = (starts[:, 1:RADIAL_BINS] <= column).sum(axis=1)
        if column == 0:
            bins[0] = -1  # DC
        edge_bins[:, e] = bins
        counts -= np.bincount(bins[bins >= 0], minlength=RADIAL_BINS)
    return starts, edge_bins, counts


def peak_probes(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(ky, kx, u, v) of the kept probes, in scanning order (ky, then kx): a probe whose bin or
    conjugate bin is that of an earlier one is left out."""
    kept: list[tuple[int, int, int, int]] = []
    taken: set[tuple[int, int]] = set()
    for ky in range(PEAK_GRID):
        for kx in range(PEAK_GRID):
            if ky == 0 and kx == 0:
                continue
            u, v = ky * height // PEAK_GRID, kx * width // PEAK_GRID
            if (u, v) in taken:
                continue
            kept.append((ky, kx, u, v))
            taken.add((u, v))
            taken.add(((-u) % height, (-v) % width))
    return kept


class ExtendedFeatures:
    """The 69 extended features of a transformed image; keeps per-shape geometry and buffers."""

    feature_set = EXTENDED

    def __init__(self, spectrum: str) -> None:
        self.paper = PaperFeatures(spectrum)
        self.input_scale = self.paper.input_scale
        self._shapes = ShapeCache()

    def compute(self, transform: Transform, picture: Picture | None = None) -> npt.NDArray[np.float64]:
        height, width = transform.height, transform.width
        paper = self.paper.compute(transform)  # reads the transform, leaves it as it was
        shape: ShapeGeometry = self._shapes.get_or_make(height, width, ShapeGeometry.of)
        spectra = transform.interleaved.reshape(3, height, 2 * (width // 2 + 1))
        # The transform holds the DFT of pixels * input_scale; F_X is that of pixels / 255.
        factor = 1.0 / (255.0 * self.input_scale * math.sqrt(height * width))
        out = np.empty(EXTENDED.width)
        out[: len(paper)] = paper
        sums = np.zeros((3, RADIAL_BINS))
        profile_sums(spectra, shape.starts, shape.edge_bins, factor, shape.row, sums)
        profiles(sums, shape.counts, out[len(paper) : len(paper) + 3 * RADIAL_BINS])
        box_log_luminance(spectra, shape.box_rows, shape.box_cols, factor, shape.box_values)
        peak_features(shape.box_values, shape.levels, shape.named, out[len(paper) + 3 * RADIAL_BINS :])
        return out
