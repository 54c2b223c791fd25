import csv

import cv2
import h5py
import numpy as np
import pytest
from helpers import FAKE_CENTRE, REAL_CENTRE, clusters, natural_image
from sklearn.mixture import GaussianMixture
from sklearn.svm import SVC

from scanner.core.errors import DetectorError, ModelError
from scanner.core.featuresets import FEATURE_NAMES
from scanner.core.schema import Measurement, make_table
from scanner.detect.decisions import GMMDecision
from scanner.detect.fit import adapt, component_means, fit_gmm, fit_gmm_on, fit_svm, resolve_gamma
from scanner.detect.labels import label_from_path, labels_of, read_labels_csv
from scanner.detect.model import SCHEMA_VERSION, Model, bundled_model, load_model
from scanner.detect.samples import anchor_features, samples_of, subsample_fakes
from scanner.detect.verdicts import verdicts_of, write_verdicts
from scanner.features.extract import make_extractor
from scanner.store.hdf5 import write_table


def sample(x, is_fake, spectrum="log"):
    paths = [f"/data/{'fake' if f else 'real'}/{i}.png" for i, f in enumerate(is_fake)]
    return samples_of([make_table(paths, x, spectrum=spectrum)])


# --- labels --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, label",
    [
        ("/d/real/a.png", "real"),
        ("/d/0_real/a.png", "real"),
        ("/d/REAL/x/a.png", "real"),
        ("/d/fake/a.png", "fake"),
        ("d/1_Fake/a.png", "fake"),
        ("/fake/sets/real/a.png", "real"),
        ("/d/real.png", ""),
        ("/d/unreal/a.png", ""),
        ("/d/fakes/a.png", ""),
    ],
)
def test_label_from_path(path, label):
    assert label_from_path(path) == label


def test_labels_csv_override_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "labels.csv").write_text("path,label\nreal/a.png,1\nb.png,Real\nc.png,FAKE\n")
    labels = read_labels_csv(tmp_path / "labels.csv")
    got = labels_of([str(tmp_path / "real" / "a.png"), "b.png", str(tmp_path / "c.png"), "d.png"], labels)
    assert list(got) == ["fake", "real", "fake", ""]
    (tmp_path / "bad.csv").write_text("path,label\na.png,maybe\n")
    with pytest.raises(DetectorError, match="line 2"):
        read_labels_csv(tmp_path / "bad.csv")
    (tmp_path / "noheader.csv").write_text("a.png,real\n")
    with pytest.raises(DetectorError, match="path,label"):
        read_labels_csv(tmp_path / "noheader.csv")


def test_samples_leave_out_unusable_and_count():
    x, is_fake = clusters(3, 3)
    x[1, 2] = np.nan
    paths = ["/s/real/0", "/s/real/1", "/s/2", "/s/fake/3", "/s/fake/4", "/s/fake/5"]
    table = make_table(paths, x, status=["ok", "ok", "ok", "truncated", "ok", "ok"])
    s = samples_of([table])
    assert s.counts() == {"real": 1, "fake": 2, "unusable": 2, "unlabelled": 1}
    assert list(s.labelled) == [True, False, False, False, True, True]
    with pytest.raises(DetectorError, match="mix spectrum"):
        samples_of([table, make_table(paths, x, spectrum="modulus")])


# --- fake-fraction subsampling -----------------------------------------------------


@pytest.mark.parametrize("fraction, n_fake", [(0.5, 200), (0.25, 67), (0.05, 11), (0.01, 2)])
def test_subsample_fakes_counts(fraction, n_fake):
    is_fake = np.r_[np.zeros(200, bool), np.ones(300, bool)]
    chosen = subsample_fakes(is_fake, fraction, seed=3)
    assert (
        np.sum(~is_fake[chosen]) == 200 and np.sum(is_fake[chosen]) == n_fake
    )  # all reals, round(f n_real / (1 - f)) fakes
    assert len(np.unique(chosen)) == len(chosen)
    np.testing.assert_array_equal(chosen, subsample_fakes(is_fake, fraction, seed=3))
    if n_fake < 300:
        assert not np.array_equal(chosen, subsample_fakes(is_fake, fraction, seed=4))


def test_subsample_fakes_refuses_impossible_shares():
    is_fake = np.r_[np.zeros(10, bool), np.ones(5, bool)]
    with pytest.raises(DetectorError, match="needs 10 fake rows"):
        subsample_fakes(is_fake, 0.5)
    with pytest.raises(DetectorError, match="between 0 and 1"):
        subsample_fakes(is_fake, 1.0)


# --- SVM and GMM against scikit-learn ---------------------------------------------------


def test_svm_scores_are_sklearns_decision_function():
    x, is_fake = clusters(80, 80, spread=0.008)
    decision = fit_svm(x, is_fake)
    reference = SVC(kernel="rbf", C=1.0, gamma="scale").fit(x, is_fake.astype(int))
    assert decision.gamma == reference._gamma == 1.0 / (6 * x.var())
    test, _ = clusters(50, 50, seed=1, spread=0.008)
    np.testing.assert_allclose(decision.score(test), reference.decision_function(test), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(decision.score(test) > 0, reference.predict(test) == 1)
    weighted = fit_svm(x[:100], is_fake[:100], C=3.0, gamma="0.5", class_weight="balanced")
    reference = SVC(C=3.0, gamma=0.5, class_weight="balanced").fit(x[:100], is_fake[:100])
    np.testing.assert_allclose(weighted.score(test), reference.decision_function(test), rtol=0, atol=1e-12)


def test_resolve_gamma():
    x = np.arange(12.0).reshape(2, 6)
    assert resolve_gamma("scale", x) == 1 / (6 * x.var())
    assert resolve_gamma("auto", x) == 1 / 6
    assert resolve_gamma("2.5", x) == 2.5
    for bad in ("-1", "big", "0"):
        with pytest.raises(DetectorError, match="gamma"):
            resolve_gamma(bad, x)


def test_svm_needs_both_classes():
    x, _ = clusters(10, 0)
    with pytest.raises(DetectorError, match="both classes"):
        fit_svm(x, np.zeros(10, bool))


def test_gmm_scores_are_sklearns_posterior_log_ratio_and_paper_rule():
    x, is_fake = clusters(150, 100)
    fit = fit_gmm(x, seed=0)
    reference = GaussianMixture(n_components=2, covariance_type="full", random_state=0).fit(x)
    fake = int(np.argmax(reference.means_[:, 0]))
    assert fit.rule == "paper" and fit.decision.fake_component == fake
    proba = reference.predict_proba(x)
    np.testing.assert_allclose(fit.decision.score(x), np.log(proba[:, fake]) - np.log(proba[:, 1 - fake]), atol=1e-9)
    assert np.mean((fit.decision.score(x) > 0) == is_fake) > 0.99


def test_gmm_wrong_side_warned_and_fixed_by_real_anchor():
    # Reals with the larger `mean` feature: the paper's rule calls them fake.
    x, is_fake = clusters(120, 120, real=FAKE_CENTRE, fake=REAL_CENTRE)
    s = sample(x, is_fake)
    fit, notes = fit_gmm_on(s, seed=0)
    assert fit.rule == "paper" and np.mean((fit.decision.score(x) > 0) == is_fake) < 0.01
    assert any("picked the wrong component" in n and "--real-anchor" in n for n in notes)
    anchors = [s.paths[i] for i in range(8)]  # eight known-real rows of the store: 0.5 ** 8 = 0.0039
    fit, notes = fit_gmm_on(s, seed=0, anchors=anchors)
    assert fit.rule == "anchor" and fit.anchors_in_real == 1.0
    assert fit.certainty is not None and fit.certainty.certain
    assert fit.certainty.p_value == pytest.approx(0.5**8, rel=1e-9)
    assert np.mean((fit.decision.score(x) > 0) == is_fake) > 0.99
    assert not any("wrong" in n for n in notes)


def test_gmm_anchor_on_the_boundary_is_refused():
    x, is_fake = clusters(60, 60)
    anchors = np.vstack([x[:1], x[-1:]])
    with pytest.raises(DetectorError, match="evenly"):
        fit_gmm(x, real_anchor=anchors)


def test_anchor_features_from_store_rows_and_image_files(tmp_path):
    rgb = natural_image(48, 40, seed=5)
    image = tmp_path / "known.png"
    cv2.imwrite(str(image), rgb[..., ::-1])
    (tmp_path / "dir").mkdir()
    cv2.imwrite(str(tmp_path / "dir" / "also.png"), rgb[..., ::-1])
    (tmp_path / "dir" / "notes.txt").write_text("not an image")
    x, is_fake = clusters(3, 3)
    s = samples_of([make_table([f"/s/{i}.png" for i in range(6)], x, status=["ok"] * 5 + ["truncated"])])
    values, problems = anchor_features(["/s/1.png", "/s/5.png", str(image), str(tmp_path / "dir")], s)
    measured = make_extractor(spectrum="log", planner="estimate").from_rgb(rgb)
    np.testing.assert_array_equal(values[0], x[1])
    np.testing.assert_allclose(values[1], measured, rtol=1e-12)
    np.testing.assert_allclose(values[2], measured, rtol=1e-12)
    assert len(values) == 3 and len(problems) == 2
    assert "truncated" in problems[0] and "not_image" in problems[1]


# --- Algorithm 1 ---------------------------------------------------------------------


def test_component_means_and_scaling_by_hand():
    x, _ = clusters(100, 100, seed=2)
    scaling = component_means(x, seed=0)
    for k in range(6):
        column = np.ascontiguousarray(x[:, k : k + 1])  # scikit-learn rounds differently on a strided view
        means = GaussianMixture(n_components=2, random_state=0).fit(column).means_[:, 0]
        assert (scaling.low[k], scaling.high[k]) == (means.min(), means.max())
        assert scaling.low[k] < REAL_CENTRE[k] + 0.002 and scaling.high[k] > FAKE_CENTRE[k] - 0.002
    by_hand = np.empty_like(x)
    for k in range(6):
        by_hand[:, k] = (x[:, k] - scaling.low[k]) / (scaling.high[k] - scaling.low[k])
    np.testing.assert_array_equal(scaling.apply(x), by_hand)
    with pytest.raises(DetectorError, match="does not vary"):
        component_means(np.ones((10, 6)))


def test_adapt_fits_on_rescaled_source_and_carries_target_scaling():
    source_x, source_fake = clusters(100, 100, seed=1)
    target_x, target_fake = clusters(100, 100, seed=2, real=REAL_CENTRE * 2, fake=FAKE_CENTRE * 2, spread=0.006)
    adapted = adapt(source_x, source_fake, target_x, measurement=Measurement(), seed=0)
    source_scaling, target_scaling = component_means(source_x), component_means(target_x)
    np.testing.assert_array_equal(adapted.source_scaling.low, source_scaling.low)
    np.testing.assert_array_equal(adapted.model.scaling.high, target_scaling.high)
    reference = SVC(gamma="scale").fit(source_scaling.apply(source_x), source_fake.astype(int))
    np.testing.assert_allclose(
        adapted.model.score(target_x), reference.decision_function(target_scaling.apply(target_x)), atol=1e-12
    )
    assert np.mean(adapted.model.predict(target_x) == np.where(target_fake, "fake", "real")) > 0.95
    # Without the rescaling, the source SVM calls every target row fake.
    assert np.all(fit_svm(source_x, source_fake).score(target_x[:100]) > 0)


# --- models -------------------------------------------------------------------------


def models():
    x, is_fake = clusters(60, 60)
    target, _ = clusters(60, 60, seed=9, real=REAL_CENTRE * 1.5, fake=FAKE_CENTRE * 1.5)
    return {
        "svm": Model(Measurement(spectrum="log"), fit_svm(x, is_fake), provenance={"trained_on": ["a.h5"]}),
        "gmm": Model(Measurement(spectrum="modulus"), fit_gmm(x).decision),
        "adapted": adapt(x, is_fake, target, measurement=Measurement()).model,
    }


@pytest.mark.parametrize("kind", ["svm", "gmm", "adapted"])
def test_models_round_trip_bit_for_bit(tmp_path, kind):
    model = models()[kind]
    probe, _ = clusters(40, 40, seed=7, spread=0.01)
    probe[3, 1] = np.nan
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert (loaded.spectrum, loaded.method, loaded.provenance) == (model.spectrum, model.method, model.provenance)
    np.testing.assert_array_equal(loaded.score(probe), model.score(probe))
    np.testing.assert_array_equal(loaded.predict(probe), model.predict(probe))
    assert np.isnan(model.score(probe)[3]) and model.predict(probe)[3] == ""
    # The file's bytes depend on the model only, and a row's score not on its batch.
    loaded.save(tmp_path / "again.h5")
    assert (tmp_path / "again.h5").read_bytes() == (tmp_path / "m.h5").read_bytes()
    one_by_one = np.array([model.score(probe[i : i + 1])[0] for i in range(len(probe))])
    np.testing.assert_array_equal(one_by_one, model.score(probe))


def test_model_file_layout_is_plain_arrays(tmp_path):
    models()["adapted"].save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5") as f:
        assert f.attrs["format"] == "scanner-model" and f.attrs["schema_version"] == SCHEMA_VERSION
        assert f.attrs["feature_names"] == ",".join(FEATURE_NAMES) and f.attrs["spectrum"] == "log"
        assert sorted(f) == ["scaling", "svm"] and sorted(f["svm"]) == ["dual_coef", "support_vectors"]
        assert f["svm/support_vectors"].shape[1] == 6 and sorted(f["scaling"]) == ["high", "low"]
        assert {"intercept", "gamma"} <= set(f["svm"].attrs)


def test_wrong_spectrum_and_foreign_files_refused(tmp_path):
    model = models()["svm"]
    with pytest.raises(ModelError, match="'log'-spectrum features but these are 'modulus'"):
        model.check_compatible(Measurement(spectrum="modulus"))
    model.check_compatible(Measurement(spectrum="log", precision="single"))  # the precision may differ
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ModelError, match=f"schema version {SCHEMA_VERSION + 1}"):
        load_model(tmp_path / "m.h5")
    write_table(tmp_path / "store.h5", make_table(["a.png"], np.zeros((1, 6))))
    with pytest.raises(ModelError, match="not a scanner model"):
        load_model(tmp_path / "store.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ModelError, match="not a model file"):
        load_model(tmp_path / "text.h5")
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "absent.h5")
    model.save(tmp_path / "broken.h5")
    with h5py.File(tmp_path / "broken.h5", "a") as f:
        del f["svm/dual_coef"]
        f["svm/dual_coef"] = np.zeros(3)
    with pytest.raises(ModelError, match="dual_coef has shape"):
        load_model(tmp_path / "broken.h5")


def test_gmm_with_singular_covariance_refused():
    with pytest.raises(ModelError, match="positive definite"):
        GMMDecision(np.array([0.5, 0.5]), np.zeros((2, 6)), np.zeros((2, 6, 6)), 1)


def test_bundled_paper_set_model():
    model = bundled_model("paper")
    assert model.spectrum == "log" and model.method == "svm" and model.scaling is None
    assert model.provenance["real"] > 1000 and "JPEG quality 90" in model.provenance["trained_on"][0]
    scores = model.score(np.vstack([REAL_CENTRE, FAKE_CENTRE, np.full(6, np.nan)]))
    assert np.isfinite(scores[:2]).all() and np.isnan(scores[2])


def test_verdicts_and_csv(tmp_path):
    scores = np.array([0.5, -0.25, np.nan, 0.0])
    verdicts = verdicts_of(scores)
    assert list(verdicts) == ["fake", "real", "", "real"]
    write_verdicts(tmp_path / "v.csv", ["a", "b,c", "d", "e"], ["ok", "ok", "truncated", "ok"], verdicts, scores)
    with open(tmp_path / "v.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["path"] for r in rows] == ["a", "b,c", "d", "e"]
    assert [r["verdict"] for r in rows] == ["fake", "real", "", "real"]
    assert [r["score"] for r in rows] == ["0.5", "-0.25", "", "0.0"]
    assert float(rows[0]["score"]) == 0.5
