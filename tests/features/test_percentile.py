import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.features.percentile import PercentileSelector


def full_from_half(half: np.ndarray, width: int) -> np.ndarray:
    """The full-spectrum multiset that a half spectrum stands for (Hermitian weights)."""
    weights = np.full(half.shape[1], 2)
    weights[0] = 1
    if width % 2 == 0:
        weights[-1] = 1
    return np.repeat(half.ravel(), np.tile(weights, half.shape[0]))


def check(half: np.ndarray, width: int) -> None:
    full = full_from_half(half, width).astype(np.float64)
    assert full.size == half.shape[0] * width
    expected = np.percentile(full, [1, 99])
    got = PercentileSelector()(half[None], width)
    assert got.shape == (1, 2)
    assert tuple(got[0]) == (expected[0], expected[1])


@pytest.mark.parametrize("height,width", [(8, 8), (8, 9), (9, 13), (256, 256), (255, 256), (300, 301), (1024, 64)])
def test_matches_numpy_on_continuous_values(height, width):
    rng = np.random.default_rng(height + width)
    check(rng.standard_normal((height, width // 2 + 1)).astype(np.float32), width)


@pytest.mark.parametrize("levels", [1, 2, 3, 50])
def test_matches_numpy_with_heavy_ties(levels):
    rng = np.random.default_rng(levels)
    half = rng.integers(0, levels, size=(200, 101)).astype(np.float32)
    check(half, 200)


def test_unlucky_sample_is_widened():
    # Strided sampling sees only the repeating low values; the true percentiles lie elsewhere.
    half = np.zeros((512, 257), np.float32)
    half[:, 1::2] = np.linspace(5, 6, 512 * 128, dtype=np.float32).reshape(512, 128)
    check(half, 512)


@settings(max_examples=50, deadline=None)
@given(height=st.integers(1, 60), width=st.integers(2, 60), seed=st.integers(0, 1000), levels=st.integers(1, 1000))
def test_property_matches_numpy(height, width, seed, levels):
    rng = np.random.default_rng(seed)
    half = rng.integers(0, levels, size=(height, width // 2 + 1)).astype(np.float32) / 7
    check(half, width)


@pytest.mark.parametrize("width", [255, 256, 510, 1022, 1023, 1024, 4094])
def test_sample_visits_every_column(width):
    # A step dividing the row sampled the same few columns of every row (column 0 among them).
    from math import gcd

    from scanner.features.percentile import sample_stride

    height = 512
    row = width // 2 + 1
    stride = sample_stride(height * row, row)
    assert gcd(stride, row) == 1
    columns = np.unique((np.arange(0, height * row, stride)) % row)
    assert columns.size == row


@pytest.mark.parametrize("width", [254, 255, 1022])
def test_matches_numpy_when_the_row_is_a_multiple_of_the_step(width):
    rng = np.random.default_rng(width)
    half = rng.standard_normal((300, width // 2 + 1)).astype(np.float32)
    half[:, 0] += 10  # column 0 holds the largest values, as a spectrum's does
    check(half, width)
