"""FFT backends: every registered backend and precision against numpy's float64 rfft2, plan caching, wisdom."""

import numpy as np
import pytest

from scanner.core.constants import PRECISIONS
from scanner.features.backends.base import available_backends, backend_class, make_backend
from scanner.features.backends.fftw import FFTWBackend, load_wisdom, save_wisdom, wisdom_dir

# Error of one transform relative to the largest bin, per precision.
TOLERANCE = {"double": 1e-12, "single": 3e-6}


def backend(name, precision="double", **options):
    if name == "fftw":
        options.setdefault("planner", "estimate")
    return make_backend(name, precision, **options)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", available_backends())
@pytest.mark.parametrize("shape", [(12, 10), (9, 7), (8, 8)])
def test_transform_matches_numpy_rfft2(name, precision, shape):
    rng = np.random.default_rng(0)
    t = backend(name, precision).transform(*shape)
    x = rng.standard_normal((3, *shape))
    t.pixels[...] = x
    t.execute()
    expected = np.fft.rfft2(x)
    assert t.spectrum.shape == expected.shape == (3, shape[0], shape[1] // 2 + 1)
    assert t.pixels.dtype == {"double": np.float64, "single": np.float32}[precision]
    np.testing.assert_allclose(t.spectrum, expected, rtol=0, atol=TOLERANCE[precision] * np.abs(expected).max())
    interleaved = t.interleaved.reshape(3, shape[0], -1)
    np.testing.assert_array_equal(interleaved[..., 0 : 2 * (shape[1] // 2 + 1) : 2], t.spectrum.real)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", available_backends())
def test_rows_are_the_pixels_memory_contiguous(name, precision):
    t = backend(name, precision).transform(9, 7)
    assert t.rows.flags.c_contiguous and t.rows.shape[:2] == (3, 9) and t.rows.shape[2] >= 7
    t.rows[:, :, :7] = np.arange(3 * 9 * 7).reshape(3, 9, 7)
    np.testing.assert_array_equal(t.pixels, np.arange(3 * 9 * 7).reshape(3, 9, 7))
    batch = backend(name, precision).batch(6, 32, 32)
    assert batch.rows.flags.c_contiguous and np.shares_memory(batch.rows, batch.pixels)


@pytest.mark.parametrize("width", [7, 8])
def test_fftw_transform_is_in_place(width):
    t = backend("fftw").transform(9, width)
    assert np.shares_memory(t.pixels, t.spectrum)
    assert t.spectrum.shape == (3, 9, width // 2 + 1)


@pytest.mark.parametrize("name", available_backends())
def test_plans_are_reused_and_evicted(name):
    b = backend_class(name)(cache_size=2)
    a = b.transform(16, 16)
    assert b.transform(16, 16) is a
    b.transform(16, 20)
    b.transform(20, 16)
    assert b.planned_shapes == [(16, 20), (20, 16)]
    assert b.transform(16, 16) is not a


def test_wisdom_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANNER_CACHE_DIR", str(tmp_path))
    FFTWBackend(planner="measure").transform(24, 18)
    directory = wisdom_dir()
    assert directory.parent == tmp_path
    assert (directory / "double.wisdom").read_bytes()
    assert load_wisdom(directory)


def test_wisdom_is_saved_only_when_planning_learnt_something(tmp_path, monkeypatch):
    import scanner.features.backends.fftw as fftw

    monkeypatch.setenv("SCANNER_CACHE_DIR", str(tmp_path))
    saved = []
    monkeypatch.setattr(fftw, "save_wisdom", lambda: saved.append(1) or True)
    FFTWBackend(planner="measure").transform(26, 14)  # a new size: planned, then saved
    assert len(saved) == 1
    FFTWBackend(planner="measure", cache_size=1).transform(26, 14)  # known now: from wisdom, nothing to save
    assert len(saved) == 1


def test_unwritable_cache_is_not_fatal(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SCANNER_CACHE_DIR", str(blocker))
    assert not save_wisdom()
    assert not load_wisdom()
    FFTWBackend(planner="measure").transform(8, 8)


def test_unknown_effort_and_options_are_refused():
    with pytest.raises(ValueError, match="planner"):
        FFTWBackend(planner="quick")
    with pytest.raises(ValueError, match="the numpy backend has no option planner"):
        make_backend("numpy", planner="measure")


def test_a_backend_whose_library_is_missing_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mkl_fft", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "scanner.features.backends.mkl", raising=False)
    with pytest.raises(ValueError, match="the mkl FFT backend needs mkl_fft, which is not installed"):
        make_backend("mkl")
    assert "mkl" not in available_backends()


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", available_backends())
def test_batch_transform_matches_numpy_rfft2(name, precision):
    """A batch of small planes (the residual set's windows): each plane's rfft2, in one execute."""
    b = backend(name, precision)
    t = b.batch(12, 32, 32)
    assert b.batch(12, 32, 32) is t and b.planned_shapes == []  # cached apart from the image plans
    x = np.random.default_rng(1).standard_normal((12, 32, 32))
    t.pixels[...] = x
    t.execute()
    expected = np.fft.rfft2(x)
    assert t.spectrum.shape == expected.shape == (12, 32, 17)
    np.testing.assert_allclose(t.spectrum, expected, rtol=0, atol=TOLERANCE[precision] * np.abs(expected).max())
    np.testing.assert_array_equal(t.interleaved.reshape(12, 32, 34)[..., 0::2], t.spectrum.real)


_FRESH_IMPORT = """
import sys, numpy as np
from scanner.features.backends.fftw import FFTWBackend, pyfftw
print("dask.array" in sys.modules, "scipy.fftpack" in sys.modules, "scipy.fft" in sys.modules)
t = FFTWBackend("double", "estimate").transform(8, 8)
t.pixels[...] = np.arange(64.0).reshape(8, 8)
t.execute()
print(bool(np.allclose(t.spectrum[0], np.fft.rfft2(np.arange(64.0).reshape(8, 8)))))
import dask.array.fft, scipy.fftpack  # later imports work as ever
print(dask.array.fft.__name__, scipy.fftpack.__name__, hasattr(pyfftw.interfaces, "scipy_fftpack"))
"""


def test_the_backend_loads_pyfftw_without_its_scipy_and_dask_interfaces():
    """`import pyfftw` imported scipy.fftpack and dask.array for interfaces the backend never calls: 0.87 s of a
    measuring process's start-up. In a fresh process the backend leaves them out, transforms all the same, and
    either imports as ever afterwards."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _FRESH_IMPORT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False False False", "True", "dask.array.fft scipy.fftpack False"]


def test_auto_plans_a_new_size_at_once_then_measures_it_once_it_has_earned_it(tmp_path, monkeypatch):
    import scanner.features.backends.fftw as fftw

    monkeypatch.setenv("SCANNER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fftw, "AUTO_MEASURE_AFTER", 1e-9)
    saved = []
    save = fftw.save_wisdom
    monkeypatch.setattr(fftw, "save_wisdom", lambda: saved.append(1) or save())
    b = FFTWBackend("single")
    first = b.transform(30, 22)
    assert first.provisional and not saved  # estimated: nothing measured, nothing saved
    assert b.transform(30, 22) is first  # not used yet: nothing earned
    rng = np.random.default_rng(0)
    first.pixels[...] = x = rng.standard_normal((3, 30, 22))
    first.execute()
    estimated = first.spectrum.copy()
    measured = b.transform(30, 22)
    assert measured is not first and not measured.provisional and saved == [1]
    assert b.transform(30, 22) is measured
    measured.pixels[...] = x
    measured.execute()
    np.testing.assert_allclose(measured.spectrum, estimated, rtol=0, atol=3e-6 * np.abs(estimated).max())
    # Another process finds the size in the saved wisdom: measured at once, nothing to save.
    again = FFTWBackend("single").transform(30, 22)
    assert not again.provisional and saved == [1]


def test_auto_keeps_what_a_size_has_earned_when_its_plan_is_dropped(tmp_path, monkeypatch):
    import scanner.features.backends.fftw as fftw

    monkeypatch.setenv("SCANNER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fftw, "AUTO_MEASURE_AFTER", 1e-9)
    b = FFTWBackend(cache_size=1)
    b.transform(18, 18).execute()
    b.transform(20, 18)  # drops the plan of 18 x 18, not the seconds it ran
    assert not b.transform(18, 18).provisional


def test_auto_never_measures_a_size_seen_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANNER_CACHE_DIR", str(tmp_path))
    b = FFTWBackend()
    plans = [b.transform(16 + i, 20) for i in range(5)]
    for plan in plans:
        plan.execute()
    assert all(plan.provisional for plan in plans)
    assert not wisdom_dir().exists()


def test_a_shape_cache_keeps_what_fits_its_bytes_and_always_the_newest():
    from scanner.features.backends.base import ShapeCache

    cache = ShapeCache(size=8, max_bytes=1000)
    made = []

    def make(height, width):
        made.append((height, width))
        return np.zeros(height * width, np.uint8)

    cache.get_or_make(10, 40, make)  # 400 bytes
    cache.get_or_make(10, 50, make)  # 500: 900 in all
    assert list(cache) == [(10, 40), (10, 50)]
    cache.get_or_make(10, 40, make)  # used again: the newest, not made again
    cache.get_or_make(10, 30, make)  # 300 more: the least recently used (10 x 50) goes
    assert list(cache) == [(10, 40), (10, 30)] and made == [(10, 40), (10, 50), (10, 30)]
    cache.get_or_make(100, 20, make)  # 2,000 bytes alone: kept, everything else dropped
    assert list(cache) == [(100, 20)]


@pytest.mark.parametrize("name", available_backends())
def test_plans_of_large_images_are_not_hoarded(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SCANNER_CACHE_DIR", str(tmp_path))
    b = backend(name, "single")
    first = b.transform(64, 48)
    assert first.nbytes >= 3 * 64 * 48 * 4
    b._plans.max_bytes = first.nbytes + 1  # room for one such plan
    b.transform(48, 64)
    assert b.planned_shapes == [(48, 64)]
