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
