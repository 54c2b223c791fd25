"""The train, classify, adapt and evaluate commands on small labelled feature stores."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import FAKE_CENTRE, REAL_CENTRE, invoke, read_csv, store, verdict_rows
from typer.testing import CliRunner

from scanner.detect.model import bundled_model, load_model

runner = CliRunner()


def test_train_svm_then_classify(tmp_path):
    train_store, _, _ = store(tmp_path, "train")
    result = invoke("train", train_store, "--method", "svm", "--out", tmp_path / "m.h5")
    assert result.exit_code == 0, result.output
    assert "trained SVM on 80 rows (40 real, 40 fake)" in result.output
    model = load_model(tmp_path / "m.h5")
    assert model.provenance["stores"] == [str(train_store)] and model.provenance["gamma"] > 0

    status = ["ok"] * 19 + ["truncated"] + ["ok"] * 20
    test_store, paths, x = store(tmp_path, "test", 20, 20, seed=5, status=status)
    result = invoke("classify", test_store, "--model", tmp_path / "m.h5", "--out", tmp_path / "v.csv")
    assert result.exit_code == 0, result.output  # one unusable file: reported, and a finished run exits 0
    strict = invoke("classify", test_store, "--model", tmp_path / "m.h5", "--out", tmp_path / "w.csv", "--strict")
    assert strict.exit_code == 1, strict.output
    rows = verdict_rows(tmp_path / "v.csv", paths)
    assert rows[19]["status"] == "truncated"
    expected = model.predict(x)
    expected[19] = ""
    assert [r["verdict"] for r in rows] == list(expected)
    scores = model.score(x)
    assert all(float(r["score"]) == s for r, s in zip(rows, scores, strict=True) if r["score"])
    assert rows[19]["score"] == ""
    n_fake = int(np.sum(expected == "fake"))
    assert (
        f"{n_fake} fake, {39 - n_fake} real, 1 without a verdict (unusable); verdicts: {tmp_path / 'v.csv'}"
        in result.output
    )
    assert "truncated" in result.output  # small batches are listed file by file


def test_train_fake_fraction_class_weight_and_options(tmp_path):
    train_store, _, _ = store(tmp_path, "train", 100, 100)
    result = invoke(
        "train",
        train_store,
        "--fake-fraction",
        "0.05",
        "--seed",
        "2",
        "--class-weight",
        "balanced",
        "--C",
        "2",
        "--gamma",
        "auto",
        "--out",
        tmp_path / "m.h5",
    )
    assert result.exit_code == 0, result.output
    assert "trained SVM on 105 rows (100 real, 5 fake)" in result.output
    provenance = load_model(tmp_path / "m.h5").provenance
    assert (provenance["fake"], provenance["class_weight"], provenance["C"], provenance["gamma"]) == (
        5,
        "balanced",
        2.0,
        1 / 6,
    )
    assert invoke("train", train_store, "--gamma", "wide", "--out", tmp_path / "x.h5").exit_code == 2
    assert (
        invoke("train", train_store, "--method", "gmm", "--fake-fraction", "0.2", "--out", tmp_path / "x.h5").exit_code
        == 2
    )
    assert invoke("train", train_store, "--real-anchor", "a.png", "--out", tmp_path / "x.h5").exit_code == 2


def test_labels_file_replaces_path_labels(tmp_path):
    train_store, paths, _ = store(tmp_path, "train", 30, 30)
    # Swap every label: the model must then call the paths' reals fake.
    with open(tmp_path / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([p, "real" if "/fake/" in p else "fake"] for p in paths[:-1])
    result = invoke("train", train_store, "--labels", tmp_path / "labels.csv", "--out", tmp_path / "m.h5")
    assert result.exit_code == 0, result.output
    assert "(29 real, 30 fake); left out: 0 unusable (status not ok, or a NaN feature), 1 unlabelled" in result.output
    assert load_model(tmp_path / "m.h5").predict(REAL_CENTRE[None])[0] == "fake"


def test_gmm_wrong_side_warning_and_real_anchor(tmp_path):
    # Reals with the larger `mean` feature: the paper's rule calls them fake.
    train_store, paths, x = store(tmp_path, "wrong", 60, 60, real=FAKE_CENTRE, fake=REAL_CENTRE)
    result = invoke("train", train_store, "--method", "gmm", "--out", tmp_path / "rule.h5")
    assert result.exit_code == 0, result.output
    assert "picked the wrong component" in result.output
    assert load_model(tmp_path / "rule.h5").predict(x[:1])[0] == "fake"

    anchors = [a for p in paths[:8] for a in ("--real-anchor", p)]  # 8 of 8 against half the rows: p = 0.0039
    result = invoke("train", train_store, "--method", "gmm", *anchors, "--out", tmp_path / "anchored.h5")
    assert result.exit_code == 0, result.output
    assert "picked the wrong component" not in result.output and "fake side by the real anchors" in result.output
    assert "8 of 8 real anchors fall in the component called real, against 50% of all 120 rows" in result.output
    model = load_model(tmp_path / "anchored.h5")
    assert model.provenance["side_rule"] == "anchor"
    assert np.mean(model.predict(x) == np.array(["real"] * 60 + ["fake"] * 60)) > 0.99

    result = invoke("classify", train_store, "--unsupervised", *anchors, "--out", tmp_path / "v.csv")
    assert result.exit_code == 0, result.output
    assert [r["verdict"] for r in verdict_rows(tmp_path / "v.csv", paths)] == list(model.predict(x))
    result = invoke("classify", train_store, "--unsupervised", "--out", tmp_path / "v.csv")
    assert "picked the wrong component" in result.output


def test_classify_with_the_default_model_and_spectrum_refusal(tmp_path):
    log_store, _, x = store(tmp_path, "log", 5, 5)
    result = invoke("classify", log_store, "--out", tmp_path / "v.csv")
    assert result.exit_code == 0, result.output
    assert "model: bundled default (SVM on log-spectrum features)" in result.output
    # A store of the paper's set is judged by the bundled model of that set.
    assert [r["verdict"] for r in read_csv(tmp_path / "v.csv")] == list(bundled_model("paper").predict(x))
    modulus_store, _, _ = store(tmp_path, "modulus", 5, 5, spectrum="modulus")
    result = invoke("classify", modulus_store, "--out", tmp_path / "w.csv")
    assert result.exit_code == 2
    assert "trained on 'log'-spectrum features but these are 'modulus'" in result.output
    assert not (tmp_path / "w.csv").exists()


def test_classify_usage_and_fatal_errors(tmp_path):
    log_store, _, _ = store(tmp_path, "s", 10, 10)
    out = tmp_path / "v.csv"
    assert invoke("classify", log_store, "--unsupervised", "--model", "m.h5", "--out", out).exit_code == 2
    assert invoke("classify", log_store, "--real-anchor", "a.png", "--out", out).exit_code == 2
    result = invoke("classify", tmp_path / "absent.h5", "--out", out)
    assert result.exit_code == 2 and "no such file" in result.output
    result = invoke("classify", log_store, "--model", log_store, "--out", out)
    assert result.exit_code == 2 and "not a scanner model" in result.output
    result = invoke("classify", log_store, "--out", tmp_path / "no" / "dir" / "v.csv")
    assert result.exit_code == 3 and "cannot write" in result.output


def test_adapt_then_classify_the_target(tmp_path):
    source, _, _ = store(tmp_path, "source", 60, 60, seed=1)
    target, target_paths, target_x = store(
        tmp_path, "target", 60, 60, seed=2, real=REAL_CENTRE * 2, fake=FAKE_CENTRE * 2, spread=0.006
    )
    result = invoke("adapt", "--source", source, "--target", target, "--out", tmp_path / "a.h5")
    assert result.exit_code == 0, result.output
    assert "source: 60 real, 60 fake rows" in result.output and "target: 120 rows" in result.output
    model = load_model(tmp_path / "a.h5")
    assert model.scaling is not None and model.provenance["target"] == str(target)
    result = invoke("classify", target, "--model", tmp_path / "a.h5", "--out", tmp_path / "v.csv")
    assert result.exit_code == 0, result.output
    verdicts = [r["verdict"] for r in verdict_rows(tmp_path / "v.csv", target_paths)]
    assert np.mean(np.array(verdicts) == np.array(["real"] * 60 + ["fake"] * 60)) > 0.95
    modulus, _, _ = store(tmp_path, "modulus", 10, 10, spectrum="modulus")
    assert invoke("adapt", "--source", source, "--target", modulus, "--out", tmp_path / "x.h5").exit_code == 2


def test_evaluate_markdown_and_json(tmp_path):
    a, _, _ = store(tmp_path, "set-a", 30, 30, seed=1)
    b, _, _ = store(tmp_path, "set-b", 30, 30, seed=2, real=REAL_CENTRE * 1.5, fake=FAKE_CENTRE * 1.5)
    result = invoke("evaluate", a, b, "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "| set-a | SVM |" in result.output and "| set-a | set-b |" in result.output
    result = invoke("evaluate", a, b, "--json", "--protocol", "binary", "--test-size", "0.4")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["test_size"] == 0.4 and "few_fakes" not in data
    assert [s["test_real"] + s["test_fake"] for s in data["sets"]] == [24, 24]
    single = invoke("evaluate", a)  # all protocols but adaptation, which needs two sets
    assert single.exit_code == 0 and "(Table 3)" in single.output and "(Table 4)" not in single.output
    assert invoke("evaluate", a, "--protocol", "adaptation").exit_code == 2


# --- the verdicts' provenance, and the uncalibrated bundled model --------------------------------


def _provenance(path):
    from scanner.detect.verdicts import read_verdicts

    (only,) = read_verdicts(path).provenance
    return only


def _sha256(path):
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_every_verdicts_file_names_its_model_threshold_and_version(tmp_path):
    from scanner.core.version import __version__
    from scanner.detect.model import bundled_model_path

    train_store, _, _ = store(tmp_path, "train")
    assert invoke("train", train_store, "--method", "svm", "--out", tmp_path / "m.h5").exit_code == 0
    test_store, paths, _ = store(tmp_path, "test", 20, 20, seed=5)
    reals = [a for p in paths[:5] for a in ("--real-anchor", p)]  # five known reals, found in the store
    runs = {
        "bundled": [],
        "model": ["--model", tmp_path / "m.h5"],
        "threshold": ["--model", tmp_path / "m.h5", "--threshold", "0.5"],
        "fpr": ["--model", tmp_path / "m.h5", "--fpr", "0.2", *reals],
        "unsupervised": ["--unsupervised", *reals[:6], "--accept-uncertain-side"],  # 3 anchors settle nothing
    }
    found = {}
    for name, options in runs.items():
        result = invoke("classify", test_store, *options, "--out", tmp_path / f"{name}.csv")
        assert result.exit_code == 0, result.output
        found[name] = _provenance(tmp_path / f"{name}.csv")
        assert found[name].scanner_version == __version__

    bundled = found["bundled"]
    assert (bundled.model, bundled.method, bundled.feature_set) == ("bundled:paper", "svm", "paper")
    assert bundled.model_sha256 == _sha256(bundled_model_path("paper"))
    assert (bundled.threshold, bundled.threshold_set_by, bundled.real_anchors) == (0.0, "default", 0)

    own = found["model"]
    assert (own.model, own.model_sha256) == (str(tmp_path / "m.h5"), _sha256(tmp_path / "m.h5"))
    assert (own.method, own.feature_set, own.threshold_set_by) == ("svm", "paper", "default")

    fixed = found["threshold"]
    assert (fixed.threshold, fixed.threshold_set_by) == (0.5, "--threshold")
    assert fixed.model_sha256 == own.model_sha256

    calibrated = found["fpr"]
    assert calibrated.threshold_set_by == "--fpr" and calibrated.target_fpr == pytest.approx(0.2)
    assert calibrated.real_anchors == 5 and calibrated.real_anchor_paths == tuple(paths[:5])
    rows = read_csv(tmp_path / "fpr.csv")
    assert {float(r["threshold"]) for r in rows} == {calibrated.threshold}  # the row's threshold is the one named

    mixture = found["unsupervised"]
    assert (mixture.model, mixture.model_sha256, mixture.method) == ("unsupervised", "", "gmm")
    assert (mixture.threshold_set_by, mixture.real_anchors) == ("default", 3)
    assert "(--unsupervised)" in mixture.threshold_text()


WARNING = "warning: the bundled model is not calibrated on this collection"


@pytest.mark.parametrize(
    ("options", "warned"),
    [
        ([], True),
        (["-q"], True),  # -q keeps warnings: this one is about what the verdicts mean
        (["--out", "-"], True),  # the data on stdout: the warning still on stderr, not in the CSV
        (["--threshold", "0"], False),
        (["--fpr", "0.2", "--real-anchor", "REAL"], False),
        (["--unsupervised"], False),
        (["--model", "MODEL"], False),
    ],
)
def test_the_uncalibrated_bundled_model_says_so_once_on_stderr(tmp_path, options, warned):
    test_store, paths, _ = store(tmp_path, "test", 10, 10)
    if "MODEL" in options:
        bundled_model("paper").save(tmp_path / "mine.h5")  # a model file of the user's, though the bundled bytes
    options = [str(tmp_path / "mine.h5") if o == "MODEL" else paths[0] if o == "REAL" else o for o in options]
    out = [] if "--out" in options else ["--out", tmp_path / "v.csv"]
    result = invoke("classify", test_store, *options, *out)
    assert result.exit_code == 0, result.output
    assert result.stderr.count(WARNING) == (1 if warned else 0)
    assert WARNING not in result.stdout
    if "--out" in options:
        assert WARNING not in result.stdout and len(list(csv.DictReader(result.stdout.splitlines()))) == 20
