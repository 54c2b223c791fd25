"""Photo-like synthetic images, for `scanner bench`, the benchmarks and the tests (numpy only).

Smooth multi-scale luminance with a few soft-edged blobs, softer chroma fields,
per-channel tints and per-channel sensor noise, so that the three channels are
correlated but not identical, as in photographs: constants or pure noise would
time different code paths, and would not exercise the features as faces do.
"""

from __future__ import annotations

import numpy as np

_CUBIC_A = -0.75  # OpenCV's INTER_CUBIC kernel


def _cubic_taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """The 4 source indices and float32 weights of each of n_out samples resampled bicubically
    from n_in (pixel centres aligned, edges replicated): OpenCV's INTER_CUBIC resize."""
    x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    left = np.floor(x)
    t = x - left
    a = _CUBIC_A
    weights = np.empty((n_out, 4))
    weights[:, 0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    weights[:, 1] = ((a + 2) * t - (a + 3)) * t * t + 1
    weights[:, 2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    weights[:, 3] = 1 - weights[:, :3].sum(axis=1)
    indices = np.clip(left[:, None].astype(np.intp) + np.arange(-1, 3), 0, n_in - 1)
    return indices, weights.astype(np.float32)


def _resize_cubic(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """grid (float32) resized to height x width bicubically, rows first, then columns, as OpenCV does
    (elementwise, no BLAS: a matrix product would start threads that crowd a busy machine)."""
    columns, column_weights = _cubic_taps(width, grid.shape[1])
    rows, row_weights = _cubic_taps(height, grid.shape[0])
    across = sum(grid[:, columns[:, k]] * column_weights[:, k] for k in range(4))
    resized: np.ndarray = sum(across[rows[:, k], :] * row_weights[:, k, None] for k in range(4))
    return resized


def _field(rng: np.random.Generator, height: int, width: int, octaves: int, base_cells: int) -> np.ndarray:
    """Multi-scale smooth noise (amplitude halving per octave, roughly 1/f), in [-1, 1]."""
    total = np.zeros((height, width), np.float32)
    amplitude = 1.0
    for k in range(octaves):
        cells = base_cells << k
        if cells > max(height, width):
            break
        grid = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
        total += amplitude * _resize_cubic(grid, height, width)
        amplitude *= 0.5
    return total / max(float(np.abs(total).max()), 1e-6)


def natural_image(height: int, width: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """A photo-like (H, W, 3) uint8 RGB image with correlated, not identical, channels.

    `seed` is a seed (the same image every time) or a generator to draw from (a new
    image per call, as a set of images is written)."""
    rng = np.random.default_rng(seed)
    luminance = 0.5 + 0.3 * _field(rng, height, width, octaves=7, base_cells=2)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(3):  # a few soft-edged blobs, like a face or objects against a background
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(0.1, 0.35) * min(height, width)
        edge = (np.hypot(yy - cy, xx - cx) - radius) / (0.05 * radius + 1.0)
        blob = 0.5 - 0.5 * np.tanh(0.5 * edge)  # a logistic step, without exp overflow
        luminance += rng.uniform(-0.2, 0.2) * blob
    chroma_rb = 0.06 * _field(rng, height, width, octaves=4, base_cells=2)
    chroma_gm = 0.04 * _field(rng, height, width, octaves=4, base_cells=2)
    tint = rng.uniform(0.8, 1.15, size=3)
    planes = (
        luminance * tint[0] + chroma_rb + chroma_gm,
        luminance * tint[1] - chroma_gm,
        luminance * tint[2] - chroma_rb + chroma_gm,
    )
    noisy = [p + rng.normal(0.0, 0.012, p.shape).astype(np.float32) for p in planes]
    image: np.ndarray = (np.clip(np.stack(noisy, axis=-1), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return image
