"""--feature-set on features, scan and bench: values, stores, and refusals that say what to do."""

import json

import cv2
import numpy as np
from helpers import TINY_BENCH, Features, natural_image
from typer.testing import CliRunner

from scanner.cli import app
from scanner.core.featuresets import EXTENDED, PAPER
from scanner.features.reference import reference_extended_features
from scanner.store.hdf5 import read_features

runner = CliRunner()


def write_images(directory, count=3):
    directory.mkdir(parents=True, exist_ok=True)
    images = []
    for k in range(count):
        rgb = natural_image(40 + 8 * k, 56, seed=20 + k)
        path = directory / f"face{k}.png"
        cv2.imwrite(str(path), rgb[..., ::-1])
        images.append((path, rgb))
    return images


def test_features_extended_json_matches_reference(tmp_path):
    (path, rgb), *_ = write_images(tmp_path, 1)
    args = ["features", "--json", "--feature-set", "extended", "--precision", "double", "--planner", "estimate"]
    result = runner.invoke(app, [*args, str(path)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    ours = np.array([row[name] for name in EXTENDED.names])
    np.testing.assert_allclose(ours, reference_extended_features(rgb), rtol=1e-6, atol=1e-12)


def test_features_extended_table_keeps_the_six_in_columns(tmp_path):
    (path, _), *_ = write_images(tmp_path, 1)
    result = runner.invoke(app, ["features", "--feature-set", "extended", "--planner", "estimate", str(path)])
    assert result.exit_code == 0, result.output
    header, row, *rest = result.stdout.splitlines()  # a first run's compile notice goes to stderr
    assert header.split()[4:] == list(PAPER.names)
    assert row.split()[1:3] == ["ok", "56x40"]
    shown = [item.split("=")[0] for line in rest for item in line.split()]
    assert shown == list(EXTENDED.names[6:])


def test_scan_records_the_feature_set_and_refuses_to_mix(tmp_path):
    images = write_images(tmp_path / "images")
    out = tmp_path / "features.h5"
    args = ["scan", str(tmp_path / "images"), "--out", str(out), "--workers", "1", "--quiet", "--planner", "estimate"]
    result = runner.invoke(app, [*args, "--feature-set", "extended", "--precision", "double"])
    assert result.exit_code == 0, result.output
    table = read_features(out)
    assert table.measurement.feature_set == "extended" and table.feature_names == EXTENDED.names
    by_name = {p.rsplit("/", 1)[-1]: i for i, p in enumerate(table.path)}
    for path, rgb in images:
        np.testing.assert_allclose(
            table.features[by_name[path.name]], reference_extended_features(rgb), rtol=1e-6, atol=1e-12
        )
    result = runner.invoke(app, [*args, "--feature-set", "paper"])  # the paper set, into the extended store
    assert result.exit_code == 2
    assert "--feature-set extended" in result.output and "--overwrite" in result.output
    assert read_features(out).measurement.feature_set == "extended"
    result = runner.invoke(app, args)  # no --feature-set: the store's set goes on
    assert result.exit_code == 0, result.output
    assert read_features(out).measurement.feature_set == "extended"


def test_bench_extended_times_the_paper_set_beside_it():
    result = runner.invoke(
        app,
        [
            *TINY_BENCH,
            "--feature-set",
            "extended",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["config"]["feature_set"] == "extended"
    assert data["stages"]["features"]["images_per_s"] > 0 and data["stages"]["features_paper"]["images_per_s"] > 0
    assert all(not run["error"] for run in data["scan"])


def test_bench_text_says_what_the_wider_set_costs():
    from scanner.bench.text import format_report
    from scanner.bench.timing import run_bench

    report = run_bench(
        size=32,
        fmt="jpeg",
        images=4,
        workers=1,
        repeats=1,
        planner="estimate",
        include_scan=False,
        feature_set="extended",
    )
    text = format_report(report)
    assert "extended features" in text and "the extended set costs" in text


def test_canonical_is_the_jpeg_round_trip_and_is_recorded(tmp_path):
    from scanner.features.extract import make_extractor
    from scanner.images.canonical import CANONICAL_PARAMS
    from scanner.images.decode import read_image

    images = write_images(tmp_path / "images", 2)
    reencoded = tmp_path / "q90.jpg"
    path, rgb = images[0]
    cv2.imwrite(str(reencoded), rgb[..., ::-1], list(CANONICAL_PARAMS))
    expected = make_extractor("extended", planner="estimate").from_bgr(read_image(reencoded).pixels)
    canonical = make_extractor("extended", planner="estimate", canonical=True)
    np.testing.assert_array_equal(canonical.from_rgb(rgb), expected)
    np.testing.assert_array_equal(canonical.from_bgr(rgb[..., ::-1].copy()), expected)
    assert not np.array_equal(make_extractor("extended", planner="estimate").from_rgb(rgb), expected)
    result = runner.invoke(
        app, ["features", "--json", "--feature-set", "extended", "--canonical", "--planner", "estimate", str(path)]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    np.testing.assert_array_equal([row[n] for n in EXTENDED.names], expected)
    assert path.read_bytes() == cv2.imencode(".png", rgb[..., ::-1])[1].tobytes()  # the file is untouched

    out = tmp_path / "canonical.h5"
    args = ["scan", str(tmp_path / "images"), "--out", str(out), "--workers", "1", "--quiet", "--planner", "estimate"]
    result = runner.invoke(app, [*args, "--canonical"])
    assert result.exit_code == 0, result.output
    table = read_features(out)
    assert table.measurement.canonical and "canonicalised" in table.measurement.describe()
    result = runner.invoke(app, [*args, "--no-canonical"])  # as found, into the canonical store: refused
    assert result.exit_code == 2
    assert "rerun with --canonical to resume it" in result.output and "scan with --no-canonical" in result.output
    assert read_features(out).measurement.canonical
    (tmp_path / "images" / "more.png").write_bytes(cv2.imencode(".png", rgb[::2, ::-1, ::-1])[1].tobytes())
    result = runner.invoke(app, args)  # no option: the store's rows were canonicalised, so the new file is too
    assert result.exit_code == 0, result.output
    table = read_features(out)
    more = table.path.index(str(tmp_path / "images" / "more.png"))
    paper = make_extractor("paper", planner="estimate", canonical=True)  # the scan's set: the paper's
    assert Features(table.features[more]) == Features(paper.from_rgb(np.ascontiguousarray(rgb[::2, ::-1])))

    # images measured on the spot for a canonical model are canonicalised too
    from scanner.detect.inputs import image_table

    spot = image_table([path], table.measurement)
    np.testing.assert_array_equal(spot.features[0], paper.from_rgb(rgb))


def test_classify_evaluate_and_report_on_an_extended_store(tmp_path):
    """The whole path on the extended set: scan, classify with the default model, train, evaluate, report."""
    from scanner.detect.model import bundled_model

    for label, seed in (("real", 30), ("fake", 40)):
        for k in range(12):
            rgb = natural_image(48, 48, seed=seed + k)
            if label == "fake":  # a faint checkerboard, as a transposed convolution leaves
                rgb = np.clip(rgb.astype(int) + (np.indices((48, 48)).sum(axis=0) % 2 * 8)[..., None], 0, 255)
            directory = tmp_path / "set" / label
            directory.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(directory / f"{k}.png"), rgb.astype(np.uint8)[..., ::-1])
    store = tmp_path / "set.h5"
    scan = ["scan", str(tmp_path / "set"), "--out", str(store), "--feature-set", "extended", "--workers", "1"]
    assert runner.invoke(app, [*scan, "--quiet", "--planner", "estimate"]).exit_code == 0
    result = runner.invoke(app, ["classify", str(store), "--out", str(tmp_path / "v.csv")])
    assert result.exit_code == 0, result.output
    described = "bundled default (logistic regression on log-spectrum features (extended set), standardised)"
    assert described in result.output
    table = read_features(store)
    expected = bundled_model("extended").predict(table.features)
    rows = (tmp_path / "v.csv").read_text().splitlines()[1:]
    by_path = {line.split(",")[0]: line.split(",")[2] for line in rows}
    assert [by_path[p] for p in table.path] == list(expected)
    result = runner.invoke(app, ["train", str(store), "--out", str(tmp_path / "m.h5")])
    assert result.exit_code == 0, result.output
    assert "trained logistic regression (standardised features) on 24 rows (12 real, 12 fake)" in result.output
    result = runner.invoke(app, ["evaluate", str(store), "--protocol", "binary"])
    assert result.exit_code == 0, result.output
    assert "Feature set `extended`" in result.output and "| set | logistic |" in result.output
    result = runner.invoke(app, ["report", str(store), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r.html").read_text()
    assert "Histograms of the six features" in html and "lum_00" not in html  # the paper's six, drawn


def test_train_measures_images_with_the_feature_set_asked(tmp_path):
    """`train IMAGES --feature-set extended` fits on the extended set's 69 features of each image, the very
    values a scan with that set stores; a store of the other set among the inputs is refused in one line."""
    from scanner.detect.model import load_model

    for label, seed in (("real", 50), ("fake", 60)):
        for k in range(4):
            rgb = natural_image(40, 40, seed=seed + k)
            (tmp_path / "set" / label).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "set" / label / f"{k}.png"), rgb[..., ::-1])
    model = tmp_path / "m.h5"
    result = runner.invoke(app, ["train", str(tmp_path / "set"), "--feature-set", "extended", "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert "logistic regression" in result.output and "on 8 rows (4 real, 4 fake)" in result.output
    assert load_model(model).measurement.feature_set == "extended"
    paper_store = tmp_path / "paper.h5"
    scan = ["scan", str(tmp_path / "set"), "--out", str(paper_store), "--workers", "1", "--quiet"]
    assert runner.invoke(app, [*scan, "--planner", "estimate"]).exit_code == 0
    mixed = ["train", str(paper_store), str(tmp_path / "set"), "--feature-set", "extended", "--out", str(model)]
    result = runner.invoke(app, mixed)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "feature set" in result.output, result.output
