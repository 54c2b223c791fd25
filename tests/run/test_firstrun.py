"""The first run explains itself: compiling kernels and planning FFTs are announced when, and only when, they happen."""

import os
import subprocess
import sys
import textwrap

import cv2
from helpers import natural_image

from scanner.features.extract import extractor_spec

COMPILE_ONE = textwrap.dedent(
    """
    import numba
    from scanner.core import logs
    from scanner.features.notice import install_compile_notice

    logs.configure("info")
    install_compile_notice()

    @numba.njit(cache=True)
    def twice(x):
        return 2 * x

    print(twice(21))
    """
)


def test_compiling_is_announced_only_when_numba_compiles(tmp_path):
    (tmp_path / "job.py").write_text(COMPILE_ONE)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    runs = [
        subprocess.run([sys.executable, "job.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        for _ in range(2)
    ]
    assert [r.stdout for r in runs] == ["42\n", "42\n"], runs[0].stderr
    assert runs[0].stderr.count("compiling kernels, first run only") == 1
    assert "compiling" not in runs[1].stderr  # loaded from numba's cache: nothing to say


class Event:
    def __init__(self, module, name="kernel"):
        def py_func():
            pass

        py_func.__module__ = module
        self.data = {"dispatcher": type("Dispatcher", (), {"py_func": staticmethod(py_func), "__qualname__": name})}


def test_the_notice_names_what_compiles_once_per_group(caplog):
    """train, scan and classify each compile kernels of their own on a first run: each notice says which."""
    from scanner.features.notice import _Notice

    notice = _Notice()
    with caplog.at_level("INFO", logger="scanner.features.notice"):
        for module in [
            "scanner.features.kernels",
            "numba.np.arraymath",  # numba's own pieces, compiled inside a kernel: no notice of their own
            "scanner.features.kernels",
            "scanner.features.extended_kernels",
            "scanner.detect.decisions",
            "scanner.detect.decisions",
            "__main__",
        ]:
            notice.on_start(Event(module))
    notices = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert notices == [
        f"compiling {what}, first run only (later runs load them from the cache)"
        for what in [
            "the feature kernels",
            "the extended feature kernels",
            "the scoring kernels of the model",
            "kernels",
        ]
    ]
    assert notice.compiled == 7


def test_warm_up_compiles_what_the_workers_run(tmp_path, monkeypatch):
    """The workers measure decoded files, which are BGR: warming up through from_rgb compiled a kernel they
    never run and left each of them to compile theirs (and `scanner scan` after `scanner train` to announce
    a compile)."""
    from scanner.run import warmup

    monkeypatch.setenv("SCANNER_CACHE_DIR", str(tmp_path))
    calls = []

    class Recorder:
        def from_bgr(self, image):
            calls.append("from_bgr")

        def from_rgb(self, image):
            calls.append("from_rgb")

    monkeypatch.setattr(warmup, "build_extractor", lambda spec: Recorder())
    warmup.warm_up(extractor_spec())
    assert calls == ["from_bgr"]


def test_warm_up_runs_once_per_installation(tmp_path, monkeypatch):
    from scanner.run import warmup

    monkeypatch.setenv("SCANNER_CACHE_DIR", str(tmp_path))
    spec = extractor_spec()
    warmup.warm_up(spec)
    assert [p.name.startswith("kernels-warm-") for p in tmp_path.iterdir()] == [True]

    def no_build(*args):
        raise AssertionError("a warmed installation builds nothing")

    monkeypatch.setattr(warmup, "build_extractor", no_build)
    assert warmup.warm_up(spec) is False


def test_workers_say_they_plan_ffts_once(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        cv2.imwrite(str(images / f"{i}.png"), natural_image(24, 32, seed=i)[..., ::-1])
    env = {**os.environ, "SCANNER_CACHE_DIR": str(tmp_path / "cache")}  # no FFTW wisdom yet

    def scan(out):
        command = [sys.executable, "-m", "scanner", "scan", str(images), "--out", str(tmp_path / out), "-j", "2"]
        return subprocess.run(command + ["--planner", "measure"], env=env, capture_output=True, text=True, timeout=300)

    first = scan("a.h5")
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("planning FFTs for 32x24 (once per image size on this machine)") == 1
    assert "scanned 6 files" in first.stdout and "2 workers" in first.stdout
    second = scan("b.h5")
    assert second.returncode == 0 and "planning" not in second.stderr  # the plan comes from saved wisdom
    quiet = subprocess.run(
        [sys.executable, "-m", "scanner", "scan", str(images), "--out", str(tmp_path / "c.h5"), "--quiet"],
        env={**env, "SCANNER_CACHE_DIR": str(tmp_path / "other")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""  # --quiet: warnings only


def test_a_collection_of_many_sizes_plans_none_of_them_at_length(tmp_path):
    # FFTW_MEASURE for every new size cost 0.3 to 2.7 s a size: 40 JPEGs of 40 sizes took 27.5 s to scan
    # against 3.3 s for 40 of one size. By default a size is measured only once it recurs enough to pay.
    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        cv2.imwrite(str(images / f"{i}.png"), natural_image(24 + i, 32 + 2 * i, seed=i)[..., ::-1])
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "scanner", "scan", str(images), "--out", str(tmp_path / "s.h5"), "-j", "1"]
    result = subprocess.run(
        command, env={**os.environ, "SCANNER_CACHE_DIR": str(cache)}, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "scanned 6 files" in result.stdout
    assert "planning" not in result.stderr
    assert not list(cache.glob("fftw-wisdom-*"))
