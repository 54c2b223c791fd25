import numpy as np
import pytest

from scanner.spectrum import ChannelTransform, PlanCache, load_wisdom, save_wisdom, wisdom_dir


def test_transform_matches_numpy_rfft2():
    rng = np.random.default_rng(0)
    t = ChannelTransform(12, 10, "estimate")
    x = rng.standard_normal((3, 12, 10))
    t.pixels[...] = x
    t.execute()
    np.testing.assert_allclose(t.spectrum, np.fft.rfft2(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("width", [7, 8])
def test_transform_is_in_place_with_separate_value_planes(width):
    t = ChannelTransform(9, width, "estimate")
    assert np.shares_memory(t.pixels, t.spectrum)
    assert t.spectrum.shape == (3, 9, width // 2 + 1)
    assert t.values.shape == (3, 9, width // 2 + 1) and t.values.dtype == np.float32
    assert not np.shares_memory(t.values, t.spectrum)


def test_plan_cache_reuses_and_evicts():
    cache = PlanCache("estimate", size=2)
    a = cache.get(16, 16)
    assert cache.get(16, 16) is a
    cache.get(16, 20)
    cache.get(20, 16)
    assert cache.get(16, 16) is not a


def test_wisdom_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANNER_CACHE_DIR", str(tmp_path))
    cache = PlanCache("measure")
    cache.get(24, 18)
    directory = wisdom_dir()
    assert directory.parent == tmp_path
    assert (directory / "double.wisdom").read_bytes()
    assert load_wisdom(directory)


def test_unwritable_cache_is_not_fatal(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SCANNER_CACHE_DIR", str(blocker))
    assert not save_wisdom()
    assert not load_wisdom()
    PlanCache("measure").get(8, 8)


def test_unknown_effort_is_refused():
    with pytest.raises(ValueError, match="planner"):
        PlanCache("quick")
