"""The extended feature set against its float64 reference (scanner.features.reference), piece by piece and whole.

Every kernel of scanner.features.extended has a plain numpy counterpart in the reference,
written from the definitions over the full spectrum: the radial bins (exactly),
the log spectra, the profiles and the peaks. The paper's six stay bit for bit
what the paper set gives.
"""

import math

import numpy as np
import pytest
from helpers import REFERENCE_IMAGES, SHAPES, face_files, natural_image
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.core.featuresets import EXTENDED, FEATURE_SETS, NAMED_PEAKS, PAPER, get_feature_set
from scanner.features.backends.base import available_backends
from scanner.features.extended import ExtendedFeatures, peak_probes, radial_runs
from scanner.features.extended_kernels import log_positive64_array
from scanner.features.extract import make_extractor
from scanner.features.reference import (
    peak_level,
    reference_extended_features,
    reference_peak_probes,
    reference_radial_bins,
)
from scanner.images.decode import read_image

RTOL = {"double": 1e-6, "single": 1e-3}
# A float32 transform leaves noise of about 1e-7 of the DC term in every bin, which the
# 1e-5 floor of L_X bounds but does not hide in the bins of least energy.
ATOL = {"double": 1e-12, "single": 1e-3}
CONFIGS = [(backend, mode) for backend in available_backends() for mode in ("log", "modulus")]
PROFILES = slice(6, 6 + 48)


def build(backend="fftw", mode="log", precision="double"):
    options = {"planner": "estimate"} if backend == "fftw" else {}
    return make_extractor("extended", spectrum=mode, precision=precision, backend=backend, **options)


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: "-".join(c))
def extractor(request):
    return build(*request.param)


def check(extractor, rgb, atol=None):
    ours = extractor.from_rgb(rgb)
    expected = reference_extended_features(rgb, extractor.measurement.spectrum)
    precision = extractor.measurement.precision
    assert ours.shape == (EXTENDED.width,)
    np.testing.assert_allclose(ours, expected, rtol=RTOL[precision], atol=atol or ATOL[precision])
    return ours


def bins_from_runs(height, width):
    """The half spectrum's radial bins as the engine's runs give them (-1: in no bin)."""
    starts, _, _ = radial_runs(height, width)
    bins = np.full((height, width // 2 + 1), -1)
    for i in range(height):
        for k in range(starts.shape[1] - 1):
            bins[i, starts[i, k] : starts[i, k + 1]] = k
    return bins


# --- the declaration ------------------------------------------------------------------


def test_declaration():
    assert EXTENDED.width == 6 + 16 + 32 + 15 == 69
    assert EXTENDED.names[:6] == PAPER.names
    assert len(set(EXTENDED.names)) == EXTENDED.width
    assert get_feature_set("extended") is EXTENDED
    assert set(FEATURE_SETS) == {"paper", "extended", "residual"}
    assert EXTENDED.names[6:9] == ("lum_00", "lum_01", "lum_02")
    assert EXTENDED.names[-15:-6] == tuple(f"peak_{ky}_{kx}" for ky, kx in NAMED_PEAKS)
    levels = ("peak_2_mean", "peak_2_max", "peak_4_mean", "peak_4_max", "peak_8_mean", "peak_8_max")
    assert EXTENDED.names[-6:] == levels


# --- the kernels, each against its reference -------------------------------------------


@pytest.mark.parametrize("shape", [*SHAPES, (1024, 1024), (23, 23), (22, 40), (1000, 3), (3, 1000)])
def test_radial_runs_are_the_reference_bins(shape):
    height, width = shape
    full = reference_radial_bins(height, width)
    np.testing.assert_array_equal(bins_from_runs(height, width), full[:, : width // 2 + 1])
    _, _, counts = radial_runs(height, width)
    np.testing.assert_array_equal(counts, [np.sum(full == k) for k in range(16)])
    assert counts.sum() == height * width - 1  # every frequency but DC, the last edge included


@settings(max_examples=40, deadline=None)
@given(height=st.integers(8, 300), width=st.integers(8, 300))
def test_property_radial_runs(height, width):
    full = reference_radial_bins(height, width)
    np.testing.assert_array_equal(bins_from_runs(height, width), full[:, : width // 2 + 1])


def test_radial_bins_by_hand():
    bins = reference_radial_bins(8, 8)
    assert bins[0, 0] == -1
    # fv = 1/8: r = 0.25, 16 r / sqrt 2 = 2.83 -> bin 2; (1, 1): r = sqrt 2 / 4 lies exactly on edge 4.
    assert bins[0, 1] == bins[1, 0] == 2
    assert bins[1, 1] == 4
    # (4, 4): fu = fv = -1/2, r = sqrt 2, the last edge, inclusive.
    assert bins[4, 4] == 15
    # On a square image the diagonal lies exactly on edges: always the bin above.
    diagonal = reference_radial_bins(64, 64)[np.arange(1, 33), np.arange(1, 33)]
    np.testing.assert_array_equal(diagonal, np.minimum(np.arange(1, 33) // 2, 15))
    np.testing.assert_array_equal(bins_from_runs(64, 64)[np.arange(1, 33), np.arange(1, 33)], diagonal)


@pytest.mark.parametrize("shape", [*SHAPES, (1024, 768), (12, 20)])
def test_peak_probes_are_the_references(shape):
    assert peak_probes(*shape) == reference_peak_probes(*shape)


def test_peak_probes_on_the_eighth_grid():
    probes = reference_peak_probes(128, 64)
    assert len(probes) == 33
    levels = [peak_level(ky, kx) for ky, kx, _, _ in probes]
    assert (levels.count(2), levels.count(4), levels.count(8)) == (3, 6, 24)
    assert [(ky, kx) for ky, kx, _, _ in probes if peak_level(ky, kx) < 8] == [
        (0, 2),
        (0, 4),
        (2, 0),
        (2, 2),
        (2, 4),
        (2, 6),
        (4, 0),
        (4, 2),
        (4, 4),
    ]
    assert (2, 6, 32, 48) in probes and all((ky, kx) != (6, 2) for ky, kx, _, _ in probes)


def test_log_matches_libm_to_four_ulp():
    # 1 ULP here; 2 where numba compiles without FMA, and numpy's own log (SVML with AVX-512) may add 1
    rng = np.random.default_rng(0)
    values = np.concatenate([np.exp(rng.uniform(-700, 700, 100_000)), [1e-5, 0.5, 1.0, 2.0, math.sqrt(0.5)]])
    out = np.empty_like(values)
    log_positive64_array(values, out)
    expected = np.log(values)
    assert np.all(np.abs(out - expected) <= 4 * np.spacing(np.abs(expected)) + 1e-300)


# --- the whole set against the reference ----------------------------------------------------


@pytest.mark.parametrize("name", REFERENCE_IMAGES)
def test_images_match_reference(extractor, name):
    check(extractor, REFERENCE_IMAGES[name]())


def test_constant_colour_image(extractor):
    rgb = np.empty((24, 20, 3), np.uint8)
    rgb[...] = (200, 30, 90)
    # Values that are 0 in exact arithmetic come out as the transforms' rounding noise (under 1e-11).
    values = check(extractor, rgb, atol=1e-9)
    # Only DC carries energy: every other bin is ln(1e-5), and no peak stands out (a probe
    # whose box holds DC is below its neighbours).
    np.testing.assert_allclose(values[6:22], math.log(1e-5), rtol=1e-12)
    np.testing.assert_allclose(values[22:54], 0.0, atol=1e-9)
    assert np.all(values[54:] <= 1e-9)


def test_small_images_leave_inner_bins_empty(extractor):
    """Under 23 px a side, some bins hold no frequency: their means are NaN, as in the reference."""
    values = check(extractor, natural_image(8, 8, seed=2))
    assert np.isnan(values[6:8]).all()  # the first frequency off DC is at r = 0.25, in bin 2
    assert np.isfinite(check(extractor, natural_image(23, 23, seed=2))[6:]).all()


@pytest.mark.parametrize("path", face_files(), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_real_faces_match_reference(path):
    rgb = read_image(path).pixels[..., ::-1].copy()
    for backend in available_backends():
        check(build(backend), rgb)


@pytest.mark.parametrize("backend", available_backends())
def test_single_precision_is_close(backend):
    ex = build(backend, precision="single")
    for rgb in (natural_image(97, 120, seed=1), natural_image(256, 192, seed=2)):
        check(ex, rgb)


@settings(max_examples=20, deadline=None)
@given(height=st.integers(8, 40), width=st.integers(8, 40), seed=st.integers(0, 2**32 - 1))
def test_property_matches_reference(height, width, seed):
    rgb = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    for backend, mode in CONFIGS:
        check(build(backend, mode), rgb)


# --- the paper's six, and what the features mean ----------------------------------------------


@pytest.mark.parametrize(("backend", "mode"), CONFIGS)
def test_first_six_are_the_paper_set_bit_for_bit(backend, mode):
    options = {"planner": "estimate"} if backend == "fftw" else {}
    for precision in ("single", "double"):
        paper = make_extractor("paper", spectrum=mode, precision=precision, backend=backend, **options)
        extended = build(backend, mode, precision)
        for rgb in (natural_image(64, 80, seed=11), natural_image(33, 17, seed=12), natural_image(128, 128, seed=13)):
            np.testing.assert_array_equal(extended.from_rgb(rgb)[:6], paper.from_rgb(rgb))


def test_results_repeat_bit_for_bit_across_shapes():
    ex = build()
    a, b = natural_image(64, 64, seed=8), natural_image(32, 48, seed=9)
    first = [ex.from_rgb(a), ex.from_rgb(b)]
    np.testing.assert_array_equal(ex.from_rgb(a), first[0])
    np.testing.assert_array_equal(ex.from_rgb(b), first[1])
    assert isinstance(ex.features, ExtendedFeatures)


def test_periodic_pattern_raises_its_peak():
    """A faint 2-pixel checkerboard (a transposed convolution's artefact) puts a peak at (H/2, W/2):
    level 1/2, probe (4, 4), while a smooth image has none."""
    names = EXTENDED.names
    clean = natural_image(128, 128, seed=14)
    checker = (np.indices((128, 128)).sum(axis=0) % 2 * 6).astype(np.int16)[..., None]
    marked = np.clip(clean.astype(np.int16) + checker, 0, 255).astype(np.uint8)
    ex = build()
    before, after = ex.from_rgb(clean), ex.from_rgb(marked)
    at = names.index("peak_4_4")
    assert after[at] > before[at] + 2.0
    assert after[names.index("peak_2_max")] == after[at]
    np.testing.assert_allclose(after, reference_extended_features(marked), rtol=1e-6, atol=1e-12)


def test_colour_shift_moves_chroma_not_luminance_profile():
    """Adding the same structure to Cb only (R and B in opposite directions, balanced in Y) leaves
    the luminance profile nearly where it was and raises the Cb ratio."""
    rgb = natural_image(96, 96, seed=15).astype(np.float64)
    noise = np.random.default_rng(0).normal(0, 3, (96, 96))
    shifted = rgb.copy()
    shifted[..., 2] += noise  # Cb: +0.5 of B; Y: +0.114 of B; compensate Y with G
    shifted[..., 1] -= noise * 0.114 / 0.587
    shifted = np.clip(np.rint(shifted), 0, 255).astype(np.uint8)
    ex = build()
    before, after = ex.from_rgb(rgb.astype(np.uint8)), ex.from_rgb(shifted)
    names = EXTENDED.names
    cb = [names.index(f"cb_ratio_{k:02d}") for k in range(8, 16)]
    assert np.all(after[cb] > before[cb])


@pytest.mark.parametrize("shape", [(9, 8), (257, 130), (1024, 768), (20_000, 20_000)])
def test_first_columns_are_exact(shape):
    """The first column of each bin along a row, exactly, in int64 or (beyond it) Python integers."""
    from scanner.features.extended import _first_columns

    height, width = shape
    columns = _first_columns(height, width)

    def at_least(k, a, column):
        return 512 * (a * a * width * width + column * column * height * height) >= k * k * height**2 * width**2

    for i in sorted({0, 1, height // 3, height // 2, height - 1}):
        a = i if i <= height // 2 else i - height
        for k in range(1, 16):
            j = int(columns[i, k - 1])
            assert at_least(k, a, j) and (j == 0 or not at_least(k, a, j - 1)), (i, k, j)
