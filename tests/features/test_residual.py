"""The residual feature set: its float64 reference's own properties, then the engine held to the reference.

scanner.features.reference defines the 62 features the residual set adds (Welch spectra of each
channel's residual from its 3 x 3 median, over 32 x 32 windows) in plain float64 numpy; the
engine (scanner.features.residual and its numba kernels) must give the same values within the
tolerances the extended set is held to.
"""

import csv
import hashlib
import json
import math

import cv2
import numpy as np
import pytest
from helpers import REFERENCE_IMAGES, face_files, invoke, natural_image
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.core.featuresets import EXTENDED, FEATURE_SETS, RESIDUAL, RESIDUAL_PEAKS, get_feature_set
from scanner.detect.model import bundled_model, bundled_model_path, load_model
from scanner.features.backends.base import available_backends
from scanner.features.extract import make_extractor
from scanner.features.reference import (
    reference_median_residuals,
    reference_residual_features,
    reference_residual_part,
    reference_welch,
    reference_window_bands,
    reference_window_bins,
    reference_window_radius,
    window_origins,
)
from scanner.features.residual import ResidualFeatures, window_geometry
from scanner.features.residual import window_origins as engine_origins
from scanner.images.decode import read_image
from scanner.store.hdf5 import read_features

PROFILES = slice(0, 24)
PEAKS = slice(24, 50)
COHERENCE = slice(50, 62)


def part(name):
    """The index of a residual feature within the 62."""
    return RESIDUAL.names.index(name) - EXTENDED.width


# --- the declaration ------------------------------------------------------------------


def test_declaration():
    assert RESIDUAL.width == 69 + 8 + 16 + 26 + 12 == 131
    assert RESIDUAL.names[: EXTENDED.width] == EXTENDED.names
    assert len(set(RESIDUAL.names)) == RESIDUAL.width
    assert get_feature_set("residual") is RESIDUAL
    assert list(FEATURE_SETS) == ["paper", "extended", "residual"]
    assert len(RESIDUAL_PEAKS) == 24 and (0, 0) not in RESIDUAL_PEAKS
    assert RESIDUAL.names[69:72] == ("res_lum_0", "res_lum_1", "res_lum_2")
    assert RESIDUAL.names[-14:] == (
        "res_peak_16th_mean",
        "res_peak_16th_max",
        *(f"res_coh_{p}_{b}" for p in ("rg", "rb", "gb") for b in range(4)),
    )


# --- the reference's own properties -------------------------------------------------------


def test_windows_and_stride():
    assert window_origins(128, 128)[:3] == [(0, 0), (0, 16), (0, 32)]
    assert len(window_origins(128, 128)) == 7 * 7  # stride 16 up to 256 px
    assert len(window_origins(256, 100)) == 15 * 5
    assert len(window_origins(257, 100)) == 8 * 3  # stride 32 beyond
    assert len(window_origins(1024, 1024)) == 32 * 32
    assert window_origins(31, 300) == [] and window_origins(300, 31) == []
    assert window_origins(32, 32) == [(0, 0)]


def test_median_residual_is_medianblur_of_the_uint8_channel():
    rgb = natural_image(40, 37, seed=3)
    residuals = reference_median_residuals(rgb)
    for c in range(3):
        channel = np.ascontiguousarray(rgb[..., c])
        # medianBlur's border is BORDER_REPLICATE: the corner's median over its replicated 3 x 3.
        padded = np.pad(channel, 1, mode="edge")
        corner = np.median(padded[:3, :3])
        assert residuals[c, 0, 0] * 255 == pytest.approx(channel[0, 0] - corner, abs=1e-9)
        np.testing.assert_allclose(residuals[c] * 255, channel.astype(float) - cv2.medianBlur(channel, 3), atol=1e-9)
    # A linear ramp is its own median: no residual, so S = 0 and every log is ln(1e-12).
    ramp = np.broadcast_to(np.arange(64, dtype=np.uint8)[None, :, None] * 3, (64, 64, 3)).copy()
    ramp[..., 1] //= 2
    values = reference_residual_part(ramp)
    np.testing.assert_allclose(values[:8], math.log(1e-12))
    np.testing.assert_allclose(values[8:50], 0.0, atol=1e-12)
    np.testing.assert_array_equal(values[COHERENCE], 0.0)  # no shared power: no coherence


def test_radial_bins_and_bands_by_hand():
    bins, bands, radius = reference_window_bins(), reference_window_bands(), reference_window_radius()
    assert bins[0, 0] == bands[0, 0] == -1
    assert radius[0, 16] == 1.0 and radius[16, 16] == pytest.approx(math.sqrt(2))
    # (a, b) = (0, 1): rho = 1/16, 8 rho / sqrt 2 = 0.35 -> bin 0; (0, 3): 1.06 -> bin 1; (16, 16): last.
    assert bins[0, 1] == 0 and bins[0, 3] == 1 and bins[16, 16] == 7
    # (2, 2) lies exactly on the edge 1: the bin above it.
    assert bins[2, 2] == 1 and bins[1, 2] == 0
    np.testing.assert_array_equal(bins, bins.T)
    np.testing.assert_array_equal(bins[1:, 1:], bins[1:, 1:][::-1, ::-1])  # symmetric under (u, v) -> (-u, -v)
    assert np.bincount(bins[bins >= 0]).sum() == 32 * 32 - 1
    # Bands on rho: 0.35 is just above (0, 5) (rho 0.3125) and below (0, 6) (0.375).
    assert bands[0, 5] == 0 and bands[0, 6] == 1 and bands[0, 16] == 2 and bands[16, 16] == 3
    assert np.bincount(bands[bands >= 0]).tolist() == [96, 304, 462, 161]


def test_pure_noise_coherence_is_near_one_over_k():
    """Independent noise in each channel: the magnitude-squared coherence of K independent windows has
    mean 1/K. At 288 px the stride is 32: 81 windows that do not overlap."""
    rgb = np.random.default_rng(0).integers(0, 256, size=(288, 288, 3), dtype=np.uint8)
    _, _, count = reference_welch(rgb)
    assert count == 81
    coherence = reference_residual_part(rgb)[COHERENCE]
    np.testing.assert_allclose(coherence, 1.0 / count, rtol=0.35)
    # The same noise in all three channels (a grey residual): coherence 1 in every band.
    grey = rgb.copy()
    grey[..., 1] = grey[..., 0]
    grey[..., 2] = grey[..., 0] // 2
    np.testing.assert_allclose(reference_residual_part(grey)[COHERENCE][:4], 1.0, atol=0.02)


def test_periodic_pattern_raises_its_peak():
    """A faint pattern of period 4 px along x puts a peak at v = 8 of the 32-point grid (1/4 cycle)."""
    clean = natural_image(128, 128, seed=14)
    stripes = np.tile(np.array([0, 4, 0, -4], np.int16), 32)[None, :, None]
    marked = np.clip(clean.astype(np.int16) + stripes, 0, 255).astype(np.uint8)
    before, after = reference_residual_part(clean), reference_residual_part(marked)
    at = part("res_peak_0_8")
    assert after[at] > before[at] + 1.0
    others = [part(f"res_peak_{u}_{v}") for u, v in RESIDUAL_PEAKS if (u, v) not in ((0, 8), (16, 8))]
    assert after[at] > np.max(after[others]) + 1.0


def test_shift_by_the_stride_changes_little():
    """Shifting the image by one stride drops a row of windows and adds another: the Welch averages,
    over 49 windows, barely move."""
    big = natural_image(160, 128, seed=21)
    a, b = big[:128], big[16:144]
    fa, fb = reference_residual_part(a), reference_residual_part(b)
    np.testing.assert_allclose(fa[:24], fb[:24], atol=0.15)
    np.testing.assert_allclose(fa[COHERENCE], fb[COHERENCE], atol=0.05)
    # A circular shift by 32 px: the same content in other windows, but for the seam it brings in.
    rolled = np.roll(a, 32, axis=1)
    np.testing.assert_allclose(reference_residual_part(rolled)[:24], fa[:24], atol=0.2)


def test_too_small_for_a_window_gives_nan():
    values = reference_residual_part(natural_image(31, 300, seed=1))
    assert values.shape == (62,) and np.isnan(values).all()
    assert np.isfinite(reference_residual_part(natural_image(32, 32, seed=1))).all()


def test_one_window_has_coherence_one():
    values = reference_residual_part(natural_image(40, 47, seed=5))  # one window: K = 1
    np.testing.assert_allclose(values[COHERENCE], 1.0, rtol=1e-9)


# --- the engine against the reference ---------------------------------------------------------

RTOL = {"double": 1e-6, "single": 1e-3}  # as the extended set's tests (tests/features/test_extended.py)
ATOL = {"double": 1e-12, "single": 1e-3}
CONFIGS = [(backend, mode) for backend in available_backends() for mode in ("log", "modulus")]
# Square, non-square, odd, one window, under one window, both strides (max side 256 and 257).
ENGINE_SHAPES = [(128, 128), (97, 300), (300, 97), (33, 40), (32, 32), (31, 200), (200, 31), (257, 130), (256, 77)]


def build(backend="fftw", mode="log", precision="double"):
    options = {"planner": "estimate"} if backend == "fftw" else {}
    return make_extractor("residual", spectrum=mode, precision=precision, backend=backend, **options)


def check(extractor, rgb):
    ours = extractor.from_rgb(rgb)
    expected = reference_residual_features(rgb, extractor.measurement.spectrum)
    precision = extractor.measurement.precision
    assert ours.shape == (RESIDUAL.width,)
    np.testing.assert_allclose(ours, expected, rtol=RTOL[precision], atol=ATOL[precision])
    return ours


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: "-".join(c))
def extractor(request):
    return build(*request.param)


def test_window_geometry_is_the_references():
    bins, bands = window_geometry()
    np.testing.assert_array_equal(bins, reference_window_bins())
    np.testing.assert_array_equal(bands, reference_window_bands())
    for shape in ENGINE_SHAPES:
        tops, lefts = engine_origins(*shape)
        assert list(zip(tops.tolist(), lefts.tolist(), strict=True)) == window_origins(*shape)


@pytest.mark.parametrize("shape", ENGINE_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_natural_images_match_reference(extractor, shape):
    values = check(extractor, natural_image(*shape, seed=shape[1]))
    assert np.isnan(values[69:]).all() == (min(shape) < 32)


@pytest.mark.parametrize("name", ["random-13x17", "random-257x130", "natural-256x255"])
def test_reference_images_match(extractor, name):
    check(extractor, REFERENCE_IMAGES[name]())


@pytest.mark.parametrize("backend", available_backends())
def test_single_precision_is_close(backend):
    ex = build(backend, precision="single")
    for shape in [(128, 128), (97, 120), (256, 192), (300, 257)]:
        check(ex, natural_image(*shape, seed=shape[0]))


def test_bgr_and_rgb_agree():
    ex = build()
    rgb = natural_image(96, 64, seed=7)
    np.testing.assert_array_equal(ex.from_bgr(rgb[..., ::-1].copy()), ex.from_rgb(rgb))


@pytest.mark.parametrize(("backend", "mode"), CONFIGS)
def test_first_69_are_the_extended_set_bit_for_bit(backend, mode):
    options = {"planner": "estimate"} if backend == "fftw" else {}
    for precision in ("single", "double"):
        paper = make_extractor("paper", spectrum=mode, precision=precision, backend=backend, **options)
        extended = make_extractor("extended", spectrum=mode, precision=precision, backend=backend, **options)
        residual = build(backend, mode, precision)
        for rgb in (natural_image(64, 80, seed=11), natural_image(33, 17, seed=12), natural_image(128, 128, seed=13)):
            values = residual.from_rgb(rgb)
            np.testing.assert_array_equal(values[:6], paper.from_rgb(rgb))
            np.testing.assert_array_equal(values[:69], extended.from_rgb(rgb))


def test_results_repeat_bit_for_bit_across_shapes():
    ex = build()
    a, b = natural_image(64, 64, seed=8), natural_image(300, 48, seed=9)
    first = [ex.from_rgb(a), ex.from_rgb(b)]
    np.testing.assert_array_equal(ex.from_rgb(a), first[0])
    np.testing.assert_array_equal(ex.from_rgb(b), first[1])
    assert isinstance(ex.features, ResidualFeatures)


def test_constant_colour_image_has_no_residual():
    rgb = np.empty((40, 50, 3), np.uint8)
    rgb[...] = (200, 30, 90)
    values = build().from_rgb(rgb)[69:]
    np.testing.assert_allclose(values[:8], math.log(1e-12))
    np.testing.assert_allclose(values[8:50], 0.0, atol=1e-12)
    np.testing.assert_array_equal(values[COHERENCE], 0.0)


@pytest.mark.parametrize("path", face_files(), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_real_faces_match_reference(path):
    rgb = read_image(path).pixels[..., ::-1].copy()
    for backend in available_backends():
        check(build(backend), rgb)


@settings(max_examples=15, deadline=None)
@given(height=st.integers(8, 80), width=st.integers(8, 80), seed=st.integers(0, 2**32 - 1))
def test_property_matches_reference(height, width, seed):
    rgb = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    check(build(), rgb)


# --- the set through the commands: features, scan, train, classify ---------------------------------


def test_features_scan_train_classify_with_the_residual_set(tmp_path):
    root = tmp_path / "set"
    images = {}
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True)
        for k in range(6):
            rgb = natural_image(48 + 8 * k, 64, seed=30 + k + (100 if label == "fake" else 0))
            if label == "fake":  # a faint period-4 pattern: what the residual peaks see
                stripes = np.tile(np.array([0, 3, 0, -3], np.int16), 16)[None, :, None]
                rgb = np.clip(rgb.astype(np.int16) + stripes, 0, 255).astype(np.uint8)
            path = root / label / f"face{k}.png"
            cv2.imwrite(str(path), rgb[..., ::-1])
            images[path.name, label] = rgb
    path = root / "real" / "face0.png"
    result = invoke(
        "features", "--json", "--feature-set", "residual", "--precision", "double", "--planner", "estimate", path
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    ours = np.array([row[name] for name in RESIDUAL.names])
    np.testing.assert_allclose(ours, reference_residual_features(images["face0.png", "real"]), rtol=1e-6, atol=1e-12)

    store = tmp_path / "residual.h5"
    scan = ["scan", root, "--out", store, "--workers", "1", "--quiet", "--planner", "estimate", "--precision", "double"]
    result = invoke(*scan, "--feature-set", "residual")
    assert result.exit_code == 0, result.output
    table = read_features(store)
    assert table.measurement.feature_set == "residual" and table.feature_names == RESIDUAL.names
    for i, stored in enumerate(table.path):
        name, label = stored.rsplit("/", 1)[-1], stored.rsplit("/", 2)[-2]
        expected = reference_residual_features(images[name, label])
        np.testing.assert_allclose(table.features[i], expected, rtol=1e-6, atol=1e-12)

    # Without --model, classify uses the set's bundled model, says so, and warns once that it is uncalibrated.
    result = invoke("classify", store, "--out", tmp_path / "bundled.csv")
    assert result.exit_code == 0, result.output
    described = "bundled default (logistic regression on log-spectrum features (residual set), standardised)"
    assert described in result.output
    assert result.stderr.count("warning: the bundled model is not calibrated on this collection") == 1
    with open(tmp_path / "bundled.csv", newline="") as f:
        bundled = {r["path"]: r for r in csv.DictReader(f)}
    expected = bundled_model("residual").predict(table.features)
    assert [bundled[p]["verdict"] for p in table.path] == list(expected)
    digest = hashlib.sha256(bundled_model_path("residual").read_bytes()).hexdigest()
    for r in bundled.values():
        assert (r["model"], r["model_sha256"], r["feature_set"]) == ("bundled:residual", digest, "residual")
        assert (r["method"], r["threshold_set_by"]) == ("logistic", "default")

    model = tmp_path / "model.h5"
    result = invoke("train", store, "--out", model)
    assert result.exit_code == 0, result.output
    assert load_model(model).measurement.feature_set == "residual" and load_model(model).method == "logistic"
    result = invoke("classify", store, "--model", model, "--out", tmp_path / "verdicts.csv")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "verdicts.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and all(r["feature_set"] == "residual" for r in rows)
    assert all(r["verdict"] == r["path"].rsplit("/", 2)[-2] for r in rows)  # its own training rows
