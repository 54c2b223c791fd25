"""`scanner bench` (the user's figures) and benchmarks/harness.py (the developer's)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_BENCH, natural_image
from typer.testing import CliRunner

from scanner.bench.files import JPEG_QUALITY, write_image_set
from scanner.bench.memory import TreeMemorySampler, tree_memory_bytes
from scanner.bench.text import format_report
from scanner.bench.timing import run_bench
from scanner.cli import app
from scanner.core.constants import DEFAULT_PRECISION, PRECISIONS
from scanner.features import kernels
from scanner.features.backends.fftw import FFTWTransform
from scanner.features.extract import make_extractor
from scanner.images.decode import read_image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import harness

MODES = ("log", "modulus")


@pytest.fixture(scope="module")
def tiny_report():
    return run_bench(
        size=32, fmt="jpeg", images=6, workers=2, spectrum="log", repeats=1, planner="estimate", scan_work_seconds=0.0
    )


@pytest.fixture(scope="module")
def tiny_harness():
    return harness.run_harness(
        size=32, fmt="jpeg", images=6, workers=2, spectrum="log", repeats=1, planner="estimate", scan_work_seconds=0.0
    )


def test_natural_image_has_the_claimed_properties():
    rgb = natural_image(96, 128, np.random.default_rng(1))
    assert rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8
    planes = rgb.reshape(-1, 3).T.astype(np.float64)
    assert all(p.std() > 10 for p in planes)  # not constant
    corr = np.corrcoef(planes)
    assert corr[np.triu_indices(3, 1)].min() > 0.8  # channels move together...
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert np.mean(np.abs(planes[a] - planes[b])) > 2  # ...but are not the same
    # sensor noise: neighbouring pixels differ, yet far less than random pixels do
    step = np.abs(np.diff(rgb[..., 1].astype(np.int16), axis=1)).mean()
    assert 0.5 < step < 0.5 * np.abs(planes[1] - np.random.default_rng(0).permutation(planes[1])).mean()


@pytest.mark.parametrize("fmt, expected", [("jpeg", "JPEG"), ("png", "PNG")])
def test_image_set_is_written_in_the_asked_format(tmp_path, fmt, expected):
    paths = write_image_set(tmp_path, 3, 40, fmt, seed=3)
    assert sorted(tmp_path.iterdir()) == paths
    assert [p.name for p in paths] == [f"img000000{i}{paths[0].suffix}" for i in range(3)]
    decoded = [read_image(p) for p in paths]
    assert all(d.info.format == expected and d.pixels.shape == (40, 40, 3) for d in decoded)
    more = write_image_set(tmp_path, 2, 40, fmt, seed=3, first=3)
    assert [p.name for p in more] == [f"img000000{i}{paths[0].suffix}" for i in (3, 4)]
    decoded += [read_image(p) for p in more]
    assert len({d.pixels.tobytes() for d in decoded}) == 5  # distinct images
    if fmt == "png":  # lossless: the file holds exactly the generated pixels
        again = natural_image(40, 40, np.random.default_rng((3, 0)))
        np.testing.assert_array_equal(decoded[0].pixels[..., ::-1], again)
    else:
        assert decoded[0].info.jpeg_quality == JPEG_QUALITY


def test_user_report_has_every_stage_in_plain_words(tiny_report):
    report = tiny_report
    other = next(p for p in PRECISIONS if p != DEFAULT_PRECISION)
    assert set(report.stages) == {"decode", "sha256", "features", f"features_{other}"}
    libraries = {(e["library"], e["precision"]) for e in report.extra["fft_libraries"]}
    assert {("fftw", "double"), ("fftw", "single"), ("numpy", "double"), ("numpy", "single")} <= libraries
    for stage in report.stages.values():
        assert stage.seconds > 0 and stage.images_per_s > 0
        assert stage.ms_per_image == pytest.approx(1e3 / stage.images_per_s)
    assert [s.name for s in report.scaling] == ["features_x1", "features_x2"]
    for run in report.scan:  # the scan rows are measured, or skipped with a reason
        assert run.seconds > 0 if not run.error else run.seconds is None
        assert run.images == 6 and 0 <= run.running_rows < 6 and run.running_seconds >= 0
    text = format_report(report)
    decode_line = next(line for line in text.splitlines() if "read and decode" in line)
    assert "times as long" not in decode_line  # only the other precision is compared with the default
    lines = text.splitlines()
    hashed = next(i for i, line in enumerate(lines) if "SHA-256 of the bytes read" in line)
    assert "read and decode" in lines[hashed - 1] and re.search(r"[\d.]+% of read and decode\)$", lines[hashed])
    assert "times as long" in next(line for line in text.splitlines() if "the same in" in line)
    for words in (
        "read and decode",
        "read, decode, measure",
        "the same in",
        "FFT libraries",
        "1 process",
        "2 processes",
        "scanner scan into a store",
        "1 worker ",
        "2 workers",
    ):
        assert words in text, words
    assert "issue" not in text and "target" not in text
    assert "- images/s" not in text and "x one process" not in text  # no placeholders, no jargon
    for run in report.scan:  # a scan row says its rate, or in words why there is none
        label = f"  {run.workers} worker{'s' if run.workers != 1 else ''} "
        row = next(line for line in text.splitlines() if line.startswith(label))
        assert ("images/s" in row or "per image" in row) if run.steady_images_per_s else "not measured: " in row
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["config"]["images"] == 6 and data["machine"]["fftw"]


@pytest.mark.parametrize("mode", MODES)
def test_authors_pipeline_computes_the_engines_features(mode):
    rgb = natural_image(48, 70, np.random.default_rng(5))
    engine = make_extractor(spectrum=mode, precision="double", planner="estimate").from_rgb(rgb)
    np.testing.assert_allclose(harness.reference_features(rgb, mode), engine, rtol=1e-6)


def test_piece_clock_times_the_engine_and_puts_it_back():
    originals = (kernels.to_planar, FFTWTransform.execute, kernels.pair_sums)
    image = natural_image(64, 64, np.random.default_rng(2))[..., ::-1].copy()
    extractor = make_extractor(spectrum="log", planner="estimate")
    expected = extractor.from_bgr(image)
    with harness.PieceClock() as clock:
        np.testing.assert_array_equal(extractor.from_bgr(image), expected)
    assert all(clock.seconds[piece] > 0 for piece in harness.BREAKDOWN_PIECES)
    assert (kernels.to_planar, FFTWTransform.execute, kernels.pair_sums) == originals


@pytest.mark.parametrize("mode", MODES)
def test_breakdown_has_every_piece(mode):
    images = [natural_image(32, 48, np.random.default_rng(s))[..., ::-1].copy() for s in range(3)]
    pieces, whole = harness.feature_breakdown(images, mode, repeats=2, planner="estimate")
    assert set(pieces) == {*harness.BREAKDOWN_PIECES, "other"}
    timed = set(harness.BREAKDOWN_PIECES) - ({"percentiles"} if mode == "modulus" else set())
    assert all(pieces[p] > 0 for p in timed) and whole > 0
    if mode == "modulus":
        assert pieces["percentiles"] == 0


def test_harness_report_has_every_stage_and_consistent_ratios(tiny_harness):
    report = tiny_harness
    other = next(p for p in PRECISIONS if p != DEFAULT_PRECISION)
    assert set(report.stages) == {"decode", "decode_fft", "features", f"features_{other}", "authors"}
    ms = {name: s.ms_per_image for name, s in report.stages.items()}
    ratios = report.extra["ratios"]
    assert ratios["features_over_decode_fft"] == pytest.approx(ms["features"] / ms["decode_fft"])
    assert ratios["authors_over_features"] == pytest.approx(ms["authors"] / ms["features"])
    assert ratios["feature_step_over_fft"] == pytest.approx(
        report.extra["extract_ms"] / report.extra["breakdown_ms"]["fft"]
    )
    assert ratios["parallel_speedup_2_over_1"] == pytest.approx(
        report.scaling[1].images_per_s / report.scaling[0].images_per_s
    )
    assert report.extra["targets"] == []  # the targets are stated for 256 and 1024 px
    double, single = (
        (ms["features"], ms["features_single"]) if other == "single" else (ms["features_double"], ms["features"])
    )
    assert ratios["double_over_single"] == pytest.approx(double / single)
    report.config["size"] = 256  # as if it were: the scan targets then apply
    report.extra["ratios"] = harness.compute_ratios(report)
    targets = {t["target"]: t for t in harness.judge_targets(report.to_dict())}
    for n in (1, 2):
        (target,) = (t for name, t in targets.items() if name.startswith(f"scan with {n} worker") and "alone" in name)
        assert target["value"] == ratios[f"scan_over_pool_{n}"]
        if target["value"] is not None:  # a steady rate can be lost in the noise of so small a run
            assert target["met"] == (target["value"] >= 0.9) and (target["held_back_by"] == "") == target["met"]
    report.extra["targets"] = list(targets.values())
    assert "targets:" in harness.format_report(report)
    report.config["size"], report.extra["targets"] = 32, []
    text = harness.format_report(report)
    assert "feature step after decode" in text
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["stages"]["decode_fft"]["images_per_s"] > 0


def test_tree_memory_sees_children():
    rss, pss = tree_memory_bytes(os.getpid())
    assert rss >= pss > 0
    child = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(60 << 20); time.sleep(0.6)"])
    with TreeMemorySampler(child.pid, interval=0.02) as sampler:
        child.wait()
    assert sampler.peak_rss >= sampler.peak_pss > 60 << 20


def test_cli_bench_json_and_bad_directory(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            *TINY_BENCH,
            "--spectrum",
            "modulus",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["config"]["spectrum"] == "modulus" and data["config"]["images"] == 3
    assert data["stages"]["features"]["images_per_s"] > 0
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["bench", str(empty)])
    assert result.exit_code == 2 and "no image files" in result.output
