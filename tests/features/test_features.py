"""The engine against the float64 reference, for everything the factory can build.

Like pyFFTW's one test suite per interface, every test that takes the `extractor`
fixture runs on each FFT backend, in each precision, in each spectrum mode.
"""

import numpy as np
import pytest
from helpers import REFERENCE_IMAGES, face_files, natural_image
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.core.constants import PRECISIONS
from scanner.core.featuresets import FEATURE_NAMES
from scanner.features.backends.base import available_backends
from scanner.features.extract import GreyImage, make_extractor, spectral_features
from scanner.features.paper import features_from_sums
from scanner.features.reference import reference_features
from scanner.images.decode import read_image

# Tolerance against the reference, per precision of the transform. A float32
# transform leaves about 1e-6 of absolute error in the log-mode distances, which
# only matters where they are themselves tiny (a nearly grey image).
RTOL = {"double": 1e-6, "single": 1e-4}
ATOL = {"double": 1e-12, "single": 5e-6}
MODES = ("log", "modulus")
CONFIGS = [(backend, precision, mode) for backend in available_backends() for precision in PRECISIONS for mode in MODES]


def build(backend="fftw", precision="double", mode="log"):
    options = {"planner": "estimate"} if backend == "fftw" else {}
    return make_extractor(spectrum=mode, precision=precision, backend=backend, **options)


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: "-".join(c))
def extractor(request):
    return build(*request.param)


def check(extractor, rgb):
    ours = extractor.from_rgb(rgb)
    expected = reference_features(rgb, extractor.measurement.spectrum)
    np.testing.assert_allclose(
        ours, expected, rtol=RTOL[extractor.measurement.precision], atol=ATOL[extractor.measurement.precision]
    )
    return ours


@pytest.mark.parametrize("name", REFERENCE_IMAGES)
def test_images_match_reference(extractor, name):
    check(extractor, REFERENCE_IMAGES[name]())


def test_two_identical_channels_give_zero_distance(extractor):
    rgb = natural_image(40, 48, seed=5)
    rgb[..., 2] = rgb[..., 1]
    values = check(extractor, rgb)
    assert values[FEATURE_NAMES.index("min")] == 0.0
    assert values[FEATURE_NAMES.index("icorr_gb")] == pytest.approx(0.0, abs=1e-12)


class _RoundsPlanesApart:
    """A transform whose library rounds the planes of a batch apart (other SIMD lanes, a scalar tail):
    every bin of the blue plane one float step away from where the green one lands."""

    def __init__(self, transform):
        self._transform = transform

    def __getattr__(self, name):
        return getattr(self._transform, name)

    def execute(self):
        self._transform.execute()
        blue = self._transform.spectrum[2]
        blue.real = np.nextafter(blue.real, np.inf)


@pytest.mark.parametrize("pair", [(0, 1), (0, 2), (1, 2)])
@pytest.mark.parametrize("mode", MODES)
def test_identical_channels_are_exactly_zero_whatever_the_library_rounds(monkeypatch, pair, mode):
    """Exactness of a property of the method is the code's guarantee, not a hope about the FFT library."""
    extractor = build("numpy", "single", mode)
    planned = extractor.backend.transform
    monkeypatch.setattr(extractor.backend, "transform", lambda h, w: _RoundsPlanesApart(planned(h, w)))
    rgb = natural_image(40, 48, seed=5)
    rgb[..., pair[1]] = rgb[..., pair[0]]
    values = extractor.from_rgb(rgb)
    assert values[FEATURE_NAMES.index("min")] == 0.0  # the pair's d, the smallest of the three


def test_constant_colour_image(extractor):
    rgb = np.empty((24, 20, 3), np.uint8)
    rgb[...] = (200, 30, 90)
    values = check(extractor, rgb)
    if extractor.measurement.spectrum == "log":
        # p1 == p99 in every channel: the reference is NaN throughout.
        assert np.isnan(values).all()


@pytest.mark.parametrize("shape", [(8, 8), (8, 12), (10, 10), (9, 12), (11, 11), (24, 20)])
def test_constant_channel_of_any_size_matches_reference(extractor, shape):
    """A constant plane is degenerate in log mode only once its DC bin is above the 99th percentile."""
    rgb = natural_image(*shape, seed=11)
    rgb[..., 1] = 77
    check(extractor, rgb)


def test_one_constant_channel_leaves_other_pair_defined(extractor):
    rgb = natural_image(48, 40, seed=6)
    rgb[..., 0] = 17
    values = check(extractor, rgb)
    if extractor.measurement.spectrum == "log":
        assert np.isnan(values[:5]).all()
        assert np.isfinite(values[5])


@pytest.mark.parametrize("path", face_files(), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_real_faces_match_reference(extractor, path):
    bgr = read_image(path).pixels
    check(extractor, bgr[..., ::-1].copy())


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(8, 40),
    width=st.integers(8, 40),
    seed=st.integers(0, 2**32 - 1),
    levels=st.sampled_from([2, 16, 256]),
)
def test_property_matches_reference(height, width, seed, levels):
    rng = np.random.default_rng(seed)
    rgb = (rng.integers(0, levels, size=(height, width, 3)) * (255 // (levels - 1))).astype(np.uint8)
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all():
        return
    for config in CONFIGS:
        ours = build(*config).from_rgb(rgb)
        np.testing.assert_allclose(ours, reference_features(rgb, config[2]), rtol=RTOL[config[1]], atol=ATOL[config[1]])


def test_bgr_and_rgb_entry_points_agree():
    rgb = natural_image(50, 60, seed=7)
    ex = build()
    np.testing.assert_array_equal(ex.from_bgr(rgb[..., ::-1].copy()), ex.from_rgb(rgb))


def test_results_repeat_bit_for_bit_and_reuse_plans():
    ex = build()
    a, b = natural_image(64, 64, seed=8), natural_image(32, 48, seed=9)
    first = [ex.from_rgb(a), ex.from_rgb(b)]
    again = [ex.from_rgb(a), ex.from_rgb(b)]
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)
    assert ex.backend.planned_shapes == [(64, 64), (32, 48)]


def test_functional_api_uses_rgb():
    rgb = natural_image(32, 32, seed=10)
    np.testing.assert_allclose(spectral_features(rgb), reference_features(rgb), rtol=RTOL["double"])


def test_grey_image_is_refused():
    grey = natural_image(32, 32)[..., :1].repeat(3, axis=2)
    with pytest.raises(GreyImage):
        build().from_rgb(grey)


@pytest.mark.parametrize("shape", [(7, 30), (30, 7)])
def test_too_small_is_refused(shape):
    with pytest.raises(ValueError, match="at least 8"):
        build().from_rgb(np.zeros((*shape, 3), np.uint8))


def test_wrong_dtype_is_refused():
    with pytest.raises(TypeError):
        build().from_rgb(np.zeros((16, 16, 3), np.float32))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"spectrum": "power"}, "spectrum must be one of log, modulus"),
        ({"precision": "half"}, "precision must be one of double, single"),
        ({"feature_set": "all"}, "unknown feature set 'all'; choose from paper"),
        ({"backend": "cufft"}, "unknown FFT backend 'cufft'; choose from fftw, numpy"),
        ({"backend": "numpy", "planner": "measure"}, "the numpy backend has no option planner"),
        ({"planner": "thorough"}, "planner effort must be one of auto, estimate, measure"),
    ],
)
def test_the_factory_refuses_what_it_cannot_build_and_says_what_it_can(options, message):
    with pytest.raises(ValueError, match=message):
        make_extractor(**options)


def test_features_from_sums_of_a_known_case():
    # Two channels: u0 = (0, 1, 2, 3), u1 = (0, 2, 4, 7), u2 = u0; |v0-v1| sums etc.
    u = np.array([[0, 1, 2, 3], [0, 2, 4, 7], [0, 1, 2, 3]], float)
    sums = np.array(
        [
            np.abs(u[0] - u[1]).sum(),
            np.abs(u[0] - u[2]).sum(),
            np.abs(u[1] - u[2]).sum(),
            *u.sum(axis=1),
            *(u**2).sum(axis=1),
            (u[0] * u[1]).sum(),
            (u[0] * u[2]).sum(),
            (u[1] * u[2]).sum(),
        ]
    )
    values = features_from_sums(sums, 4)
    d = np.array([np.abs(u[a] - u[b]).mean() for a, b in [(0, 1), (0, 2), (1, 2)]])
    assert values[:3] == pytest.approx([d.mean(), d.max(), d.min()])
    assert values[3] == pytest.approx(1 - np.corrcoef(u[0], u[1])[0, 1])
    assert values[4] == pytest.approx(0.0, abs=1e-15)
