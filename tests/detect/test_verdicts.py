"""Verdicts for a few images, thresholds (fixed, or from known reals at a target false-positive rate), and
the probability a model gives."""

import csv
import io
import os
from dataclasses import replace

import cv2
import numpy as np
import pytest
from helpers import FAKE_CENTRE, REAL_CENTRE, clusters, invoke, natural_image, read_csv, store, verdict_rows

from scanner.core.errors import DetectorError, ReportError
from scanner.detect.fit import fit_gmm
from scanner.detect.model import bundled_model, load_model
from scanner.detect.verdicts import logistic, read_verdicts, threshold_at_fpr, write_verdicts
from scanner.features.extract import make_extractor
from scanner.features.measure import measure_file

# --- thresholds from known reals ----------------------------------------------------------


def test_threshold_at_a_false_positive_rate():
    scores = np.array([-1.0, 0.9, np.nan, 0.1, 0.5, -0.2])  # five finite: 0.9 0.5 0.1 -0.2 -1.0
    chosen = threshold_at_fpr(scores, 0.2)  # one of five may be called fake
    assert chosen.value == 0.5 and (chosen.reals, chosen.above) == (5, 1) and chosen.achieved_fpr == 0.2
    assert threshold_at_fpr(scores, 0.39).value == 0.5  # still one: floor(0.39 * 5) = 1
    assert threshold_at_fpr(scores, 0.4).value == 0.1
    none = threshold_at_fpr(scores, 0.0)
    assert none.value == 0.9 and none.above == 0  # no known real above the threshold
    assert "give more known reals" in threshold_at_fpr(scores, 0.05).describe()
    assert "give more known reals" not in threshold_at_fpr(scores, 0.2).describe()
    ties = threshold_at_fpr(np.array([1.0, 1.0, 1.0, 0.0]), 0.25)
    assert ties.value == 1.0 and ties.above == 0  # scores equal to the threshold are real
    for bad in (-0.1, 1.0):
        with pytest.raises(DetectorError, match="false-positive rate"):
            threshold_at_fpr(scores, bad)
    with pytest.raises(DetectorError, match="none of the known-real"):
        threshold_at_fpr(np.array([np.nan]), 0.05)


def test_logistic_is_exact_and_never_overflows():
    x = np.array([-1000.0, -2.0, 0.0, 2.0, 1000.0, np.nan])
    with np.errstate(over="raise"):
        p = logistic(x)
    np.testing.assert_allclose(p[:5], [0.0, 1 / (1 + np.e**2), 0.5, 1 / (1 + np.e**-2), 1.0], rtol=1e-15)
    assert np.isnan(p[5])


def test_the_mixture_probability_is_its_posterior():
    """P(fake | x) from the model file's arrays equals scikit-learn's predict_proba of the same mixture."""
    from sklearn.mixture import GaussianMixture

    x, _ = clusters(60, 60, seed=3)
    fit = fit_gmm(x, seed=0)
    reference = GaussianMixture(n_components=2, covariance_type="full", random_state=0).fit(x)
    expected = reference.predict_proba(x)[:, fit.decision.fake_component]
    np.testing.assert_allclose(fit.decision.probability(fit.decision.score(x)), expected, rtol=1e-9, atol=1e-12)


# --- the command line -------------------------------------------------------------------------


def test_classify_with_a_fixed_threshold(tmp_path):
    path, paths, x = store(tmp_path, "s", 20, 20)
    scores = bundled_model("paper").score(x)  # a store of the paper's set: classify uses its bundled model
    threshold = float(np.median(scores))
    result = invoke("classify", path, "--threshold", threshold, "--out", tmp_path / "v.csv")
    assert result.exit_code == 0, result.output
    rows = verdict_rows(tmp_path / "v.csv", paths)
    assert [r["verdict"] for r in rows] == ["fake" if s > threshold else "real" for s in scores]
    assert {float(r["threshold"]) for r in rows} == {threshold}
    assert all(r["probability"] == "" for r in rows)  # an SVM gives a score, not a probability
    assert f"fake (score above {threshold:.6g})" in result.output
    # The table on the terminal lists the files in the verdicts file's order (sorted by path).
    listed = [line.split()[-2] for line in result.output.splitlines() if line.endswith(" ok")]
    assert [os.path.abspath(p) for p in listed] == [r["path"] for r in read_csv(tmp_path / "v.csv")]


def test_classify_threshold_from_known_reals(tmp_path):
    path, paths, x = store(tmp_path, "s", 40, 40, spread=0.01)
    reals = [p for p in paths if "/real/" in p][:20]  # known reals: rows of the store
    anchors = [a for p in reals for a in ("--real-anchor", p)]
    result = invoke("classify", path, "--fpr", "0.1", *anchors, "--out", tmp_path / "v.csv")
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "v.csv")
    threshold = float(rows[0]["threshold"])
    anchor_scores = np.sort(bundled_model("paper").score(x[[paths.index(p) for p in reals]]))[::-1]
    assert threshold == anchor_scores[2]  # floor(0.1 * 20) = 2 may lie above: the third highest
    called_fake = [r["verdict"] == "fake" for r in rows if r["path"] in reals]
    assert sum(called_fake) == 2 and "2 of 20 known-real images score above it (10.0%" in result.output
    assert invoke("classify", path, "--fpr", "0.1", "--out", tmp_path / "w.csv").exit_code == 2  # no anchors
    both = invoke("classify", path, "--fpr", "0.1", "--threshold", "0", *anchors, "--out", tmp_path / "w.csv")
    assert both.exit_code == 2 and "not both" in both.output
    assert invoke("classify", path, "--fpr", "1.5", *anchors, "--out", tmp_path / "w.csv").exit_code == 2


def test_unsupervised_verdicts_carry_the_mixture_probability(tmp_path):
    path, _, _ = store(tmp_path, "s", 20, 20)
    result = invoke("classify", path, "--unsupervised", "--out", tmp_path / "v.csv")
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "v.csv")
    score = np.array([float(r["score"]) for r in rows])
    probability = np.array([float(r["probability"]) for r in rows])
    np.testing.assert_allclose(probability, logistic(score), rtol=1e-12)
    assert all((p > 0.5) == (r["verdict"] == "fake") for p, r in zip(probability, rows, strict=True))
    assert "p(fake)" in result.output


def write_faces(directory, n, seed):
    """Small photo-like PNGs in real/ and fake/ (tinted differently, so the two classes differ)."""
    files = []
    for label, tint in (("real", 0), ("fake", 1)):
        (directory / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rgb = natural_image(48, 40, seed=seed + 100 * tint + i)
            if tint:  # a generator's channels drift apart: shift one channel by a pixel
                rgb[..., 2] = np.roll(rgb[..., 2], 1, axis=1)
            path = directory / label / f"{i}.png"
            cv2.imwrite(str(path), rgb[..., ::-1])
            files.append(path)
    return files


def test_classify_images_measured_on_the_spot(tmp_path):
    files = write_faces(tmp_path / "faces", 3, seed=1)
    (tmp_path / "faces" / "real" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = invoke("classify", tmp_path / "faces", "--out", "-")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))  # the verdicts alone on stdout
    assert len(rows) == 7 and not (tmp_path / "-").exists()
    by_path = {r["path"]: r for r in rows}
    assert by_path[str(tmp_path / "faces" / "real" / "broken.png")]["status"] == "unreadable"  # no PNG header
    model = load_model(None)  # images alone are measured as the bundled default model needs
    m = model.measurement
    extractor = make_extractor(m.feature_set, m.spectrum, m.precision, canonical=m.canonical)
    for path in files:  # the same score as measuring the file by hand
        expected = model.score(measure_file(path, extractor).features)[0]
        assert float(by_path[str(path)]["score"]) == expected
    assert "model: bundled default" in result.stderr and "agree with the folders' labels" in result.stderr


def test_many_images_go_through_scan(tmp_path, monkeypatch):
    import scanner.detect.inputs

    write_faces(tmp_path / "faces", 3, seed=2)
    monkeypatch.setattr(scanner.detect.inputs, "MAX_IMAGES", 4)
    result = invoke("classify", tmp_path / "faces", "--out", tmp_path / "v.csv")
    assert result.exit_code == 2 and "more than 4 images" in result.output and "scanner scan" in result.output
    assert not (tmp_path / "v.csv").exists()
    result = invoke("classify", tmp_path / "absent", "--out", tmp_path / "v.csv")
    assert result.exit_code == 2 and "no such file" in result.output


def test_train_on_images_lists_what_it_was_fitted_on(tmp_path):
    write_faces(tmp_path / "calibration", 4, seed=3)
    result = invoke("train", tmp_path / "calibration", "--out", tmp_path / "m.h5")
    assert result.exit_code == 0, result.output
    assert "trained SVM on 8 rows (4 real, 4 fake)" in result.output
    listed = [line.split() for line in result.output.splitlines() if line.startswith("  ")]
    assert sorted(listed) == sorted(
        [label, str(tmp_path / "calibration" / label / f"{i}.png")] for label in ("real", "fake") for i in range(4)
    )
    test = write_faces(tmp_path / "judged", 2, seed=40)
    result = invoke("classify", *test, "--model", tmp_path / "m.h5", "--out", tmp_path / "v.csv")
    assert result.exit_code == 0, result.output
    assert len(read_csv(tmp_path / "v.csv")) == 4


def test_model_to_standard_output(tmp_path):
    path, _, _ = store(tmp_path, "s", 10, 10)
    result = invoke("train", path, "--out", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith(b"\x89HDF\r\n\x1a\n")
    assert "wrote the model to standard output: " in result.stderr
    (tmp_path / "m.h5").write_bytes(result.stdout_bytes)
    assert load_model(tmp_path / "m.h5").predict(FAKE_CENTRE[None])[0] == "fake"
    assert load_model(tmp_path / "m.h5").predict(REAL_CENTRE[None])[0] == "real"


def test_a_fifo_among_the_inputs_is_never_opened(tmp_path):
    """Run in a subprocess with a timeout: a regression would block on open() instead of failing."""
    import os
    import subprocess
    import sys

    write_faces(tmp_path / "faces", 1, seed=5)
    os.mkfifo(tmp_path / "faces" / "real" / "pipe.png")
    command = [sys.executable, "-m", "scanner", "classify", str(tmp_path / "faces" / "real" / "pipe.png")]
    result = subprocess.run([*command, "--out", "-"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["path"], r["status"]) for r in rows] == [(str(tmp_path / "faces" / "real" / "pipe.png"), "not_image")]


# --- the verdicts file: one writer, one reader ----------------------------------------------


def test_the_verdicts_file_reads_back_what_was_written(tmp_path):
    out = tmp_path / "v.csv"
    paths = ["/d/real/a.png", "/d/fake/b.png", "/d/c.png"]
    write_verdicts(
        out, paths, ["ok", "ok", "truncated"], ["real", "fake", ""], [-0.25, 1.5, np.nan], threshold=0.1,
        probability=[0.2, np.nan, np.nan],
    )  # fmt: skip
    read = read_verdicts(out)  # sorted by path
    assert read.source == str(out) and read.paths == ["/d/c.png", "/d/fake/b.png", "/d/real/a.png"]
    assert read.verdict.tolist() == ["", "fake", "real"]
    np.testing.assert_array_equal(read.score, [np.nan, 1.5, -0.25])
    np.testing.assert_array_equal(read.threshold, [0.1, 0.1, 0.1])
    np.testing.assert_array_equal(read.probability, [np.nan, np.nan, 0.2])
    assert read.find("/d/fake/b.png") == 1 and read.find("/d/./real/../fake/b.png") == 1 and read.find("/x") is None
    rows, unmatched = read.rows_of(["/d/c.png", "/elsewhere.png", "/d//real/a.png"])
    assert rows.tolist() == [0, -1, 2] and unmatched == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,label\nx,real\n", "needs the columns path,verdict,score"),
        ("path,verdict,score\nx,maybe,1\n", "line 2: verdict 'maybe' is not real, fake or empty"),
        ("path,verdict,score\nx,real,1\ny,fake,high\n", "line 3: score 'high' is not a number"),
        ("path,verdict,score,threshold\nx,real,1,none\n", "line 2: threshold 'none' is not a number"),
    ],
)
def test_a_verdicts_file_that_cannot_be_read(tmp_path, text, message):
    (tmp_path / "v.csv").write_text(text)
    with pytest.raises(ReportError, match=message):
        read_verdicts(tmp_path / "v.csv")
    with pytest.raises(ReportError, match="cannot read verdicts file"):
        read_verdicts(tmp_path / "none.csv")


# --- the verdicts' provenance -----------------------------------------------------------------


def test_the_verdicts_file_carries_its_provenance_and_reads_it_back(tmp_path):
    from scanner.core.version import __version__
    from scanner.detect.verdicts import Provenance

    origin = Provenance(
        model="/models/m.h5",
        model_sha256="ab" * 32,
        method="logistic",
        feature_set="extended",
        threshold=0.25,
        threshold_set_by="--fpr",
        target_fpr=0.05,
        real_anchors=37,
        real_anchor_paths=("known real/", "one,more.png"),
    )
    out = tmp_path / "v.csv"
    write_verdicts(out, ["a", "b"], ["ok", "ok"], ["fake", "real"], [1.0, -1.0], threshold=0.25, provenance=origin)
    rows = read_csv(out)
    assert all(r["model"] == "/models/m.h5" and r["scanner_version"] == __version__ for r in rows)  # on every row
    (back,) = read_verdicts(out).provenance
    assert back == replace(origin, target_fpr=back.target_fpr) and back.target_fpr == pytest.approx(0.05)
    assert (
        back.threshold_text()
        == "--fpr 0.05 --real-anchor known real/ --real-anchor one,more.png (37 known-real images used)"
    )
    assert not back.uncalibrated and replace(back, model="bundled:paper", threshold_set_by="default").uncalibrated


def test_a_verdicts_file_without_provenance_still_reads(tmp_path):
    (tmp_path / "old.csv").write_text("path,status,verdict,score,threshold,probability\na,ok,fake,1.5,0.0,\n")
    old = read_verdicts(tmp_path / "old.csv")
    assert old.provenance == () and old.verdict.tolist() == ["fake"]
    write_verdicts(tmp_path / "none.csv", ["a"], ["ok"], ["real"], [-1.0])  # no provenance given: empty columns
    assert read_verdicts(tmp_path / "none.csv").provenance == ()


@pytest.mark.parametrize(
    ("cell", "value", "message"),
    [
        ("threshold_set_by", "by hand", "threshold_set_by 'by hand' is not one of default, --threshold, --fpr"),
        ("real_anchors", "many", "real_anchors 'many' is not a whole number"),
        ("target_fpr", "low", "target_fpr 'low' is not a number"),
        ("real_anchor_paths", "dir/", "real_anchor_paths 'dir/' is not a JSON list of paths"),
    ],
)
def test_a_provenance_that_cannot_be_read(tmp_path, cell, value, message):
    from scanner.detect.verdicts import PROVENANCE_COLUMNS

    good = {
        "model": "bundled:paper",
        "model_sha256": "0" * 64,
        "method": "svm",
        "feature_set": "paper",
        "threshold_set_by": "default",
        "target_fpr": "",
        "real_anchors": "0",
        "real_anchor_paths": "[]",
        "scanner_version": "0.2.0",
    }
    good[cell] = value
    with open(tmp_path / "v.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "verdict", "score", "threshold", *PROVENANCE_COLUMNS])
        writer.writerow(["a", "real", "-1", "0", *(good[c] for c in PROVENANCE_COLUMNS)])
    with pytest.raises(ReportError, match=f"line 2: {message}"):
        read_verdicts(tmp_path / "v.csv")


def test_a_loaded_model_knows_its_file_and_its_sha256(tmp_path, monkeypatch):
    import hashlib

    from scanner.detect.model import bundled_model_path

    default = load_model()
    assert default.source == "bundled:extended"
    assert default.sha256 == hashlib.sha256(bundled_model_path("extended").read_bytes()).hexdigest()
    paper = bundled_model("paper")
    assert paper.source == "bundled:paper"
    assert paper.sha256 == hashlib.sha256(bundled_model_path("paper").read_bytes()).hexdigest()
    residual = bundled_model("residual")
    assert residual.source == "bundled:residual"
    assert residual.sha256 == hashlib.sha256(bundled_model_path("residual").read_bytes()).hexdigest()
    paper.save(tmp_path / "copy.h5")
    monkeypatch.chdir(tmp_path)
    copy = load_model("copy.h5")  # the path as given, made absolute
    assert copy.source == str(tmp_path / "copy.h5")
    assert copy.sha256 == hashlib.sha256((tmp_path / "copy.h5").read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_every_verdicts_format_carries_hashes_and_provenance(tmp_path, suffix):
    """CSV, JSONL and Parquet hold the same rows, sorted by path, each with its file's SHA-256 and what produced
    the verdicts; JSONL and Parquet write a missing value as null; read_verdicts reads each back."""
    import json

    import pyarrow.parquet as pq

    from scanner.detect.verdicts import PARQUET_PROVENANCE_KEY, Provenance

    origin = Provenance("bundled:extended", "cd" * 32, "logistic", "extended", 0.0, "default")
    out = tmp_path / f"v.{suffix}"
    digest = "ef" * 32
    write_verdicts(
        out,
        ["b.png", "a.png"],
        ["truncated", "ok"],
        ["", "fake"],
        [float("nan"), 2.5],
        probability=[float("nan"), 0.9],
        sha256=["", digest],
        declared=["", "c2pa;iptc:trainedAlgorithmicMedia"],
        provenance=origin,
    )
    back = read_verdicts(out)
    assert back.paths == ["a.png", "b.png"] and back.verdict.tolist() == ["fake", ""]
    assert back.sha256 == [digest, ""] and back.score[0] == 2.5 and np.isnan(back.score[1])
    assert back.provenance == (origin,)
    assert back.declared == ["c2pa;iptc:trainedAlgorithmicMedia", ""]
    if suffix == "jsonl":
        first, second = (json.loads(line) for line in out.read_text().splitlines())
        assert first["sha256"] == digest and first["model"] == "bundled:extended" and first["real_anchor_paths"] == []
        assert second["verdict"] is None and second["score"] is None and second["sha256"] is None
        assert first["declared"] == "c2pa;iptc:trainedAlgorithmicMedia" and second["declared"] is None
    if suffix == "parquet":
        table = pq.read_table(out)
        assert table.column("verdict").to_pylist() == ["fake", None]
        assert table.column("probability").to_pylist() == [0.9, None]
        assert table.column("declared").to_pylist() == ["c2pa;iptc:trainedAlgorithmicMedia", None]
        kept = json.loads(table.schema.metadata[PARQUET_PROVENANCE_KEY.encode()])
        assert kept["model"] == "bundled:extended" and kept["model_sha256"] == "cd" * 32


def test_classify_writes_each_file_sha256_as_sha256sum_prints_it(tmp_path):
    """The verdicts of a swept store name each file by its content: the hash sha256sum gives."""
    import shutil
    import subprocess

    if shutil.which("sha256sum") is None:
        pytest.skip("no sha256sum here")
    faces = tmp_path / "faces"
    write_faces(faces, 3, seed=1)
    store_path = tmp_path / "s.h5"
    scanned = invoke("scan", faces, "--out", store_path, "-j", "1", "-q", "--planner", "estimate")
    assert scanned.exit_code == 0, scanned.output
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"v.{suffix}"
        result = invoke("classify", store_path, "--out", out, "-q")
        assert result.exit_code == 0, result.output
        back = read_verdicts(out)
        for path, digest in zip(back.paths, back.sha256, strict=True):
            expected = subprocess.run(["sha256sum", path], capture_output=True, text=True, check=True)
            assert digest == expected.stdout.split()[0]


def test_declared_column_round_trips_and_older_files_read_empty(tmp_path):
    out = tmp_path / "v.csv"
    write_verdicts(
        out, ["b", "a"], ["ok", "ok"], ["real", "fake"], [-1.0, 1.0], declared=["c2pa;png-text:parameters", ""]
    )
    assert read_csv(out)[0]["declared"] == "" and read_csv(out)[1]["declared"] == "c2pa;png-text:parameters"
    back = read_verdicts(out)
    assert back.paths == ["a", "b"] and back.declared == ["", "c2pa;png-text:parameters"]
    (tmp_path / "old.csv").write_text("path,status,verdict,score\na,ok,fake,1.5\n")
    assert read_verdicts(tmp_path / "old.csv").declared == [""]


def test_the_disagreement_line_names_ten_files_at_most():
    from scanner.detect.verdicts import declared_but_real, disagreement_line

    paths = [f"f{i:02d}.png" for i in range(15)]
    verdicts = ["real"] * 13 + ["fake", ""]
    declared = ["iptc:trainedAlgorithmicMedia", "c2pa:valid", "c2pa;exif-software:Midjourney"]
    declared += ["png-text:prompt"] * 12
    # f01 holds a valid C2PA manifest and nothing that names a generator; fake and unjudged files are left out
    assert declared_but_real(paths, verdicts, declared) == [0, *range(2, 13)]
    line = disagreement_line(paths, verdicts, declared)
    assert line == (
        "12 files declare a generator (iptc:trainedAlgorithmicMedia, exif-software:Midjourney, png-text:prompt) "
        "but were judged real: " + ", ".join([paths[0], *paths[2:11]]) + " and 2 more"
    )
    one = disagreement_line(paths[:2], ["real", "fake"], ["png-text:parameters", "png-text:parameters"], str.upper)
    assert one == "1 file declares a generator (png-text:parameters) but was judged real: F00.PNG"
    assert disagreement_line(paths[:2], ["fake", "real"], ["png-text:parameters", ""]) is None


@pytest.mark.parametrize("declared", ["c2pa", "c2pa:trusted", "c2pa:valid", "c2pa:invalid"])
def test_a_c2pa_manifest_alone_does_not_declare_a_generator(declared):
    """Cameras and editors sign photographs with C2PA: a manifest that asserts no synthetic source type (none
    read, or none there) disagrees with no verdict; one that does carries its iptc:VALUE as well."""
    from scanner.detect.verdicts import disagreement_line
    from scanner.images.declared import generator_declarations

    assert generator_declarations(declared) == []
    assert disagreement_line(["a.jpg"], ["real"], [declared]) is None
    both = f"{declared};iptc:compositeSynthetic"
    assert generator_declarations(both) == ["iptc:compositeSynthetic"]
    assert disagreement_line(["a.jpg"], ["real"], [both]) == (
        "1 file declares a generator (iptc:compositeSynthetic) but was judged real: a.jpg"
    )
