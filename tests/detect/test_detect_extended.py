"""Detectors for a wider feature set: standardisation inside the model, logistic regression, the mixture on
principal components, the enrichment rule for real anchors, defaults per feature set, the bundled models."""

import h5py
import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from scanner.core.errors import DetectorError, ModelError
from scanner.core.featuresets import EXTENDED, FEATURE_SETS, PAPER, RESIDUAL
from scanner.core.schema import Measurement, make_table
from scanner.detect.decisions import LogisticDecision, Projection, Standardisation
from scanner.detect.fit import DETECTOR_DEFAULTS, fit_classifier, fit_gmm, fit_gmm_on
from scanner.detect.model import Model, bundled_model, load_model
from scanner.detect.samples import samples_of
from scanner.detect.workflows import classify, train

EXT = Measurement(feature_set="extended")


def wide_clusters(n_real, n_fake, seed=0, width=EXTENDED.width, shift=1.0):
    """Two clusters in `width` dimensions on very different scales per feature, reals first."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-3, 2, width)
    direction = rng.normal(size=width)
    real = rng.normal(size=(n_real, width))
    fake = rng.normal(size=(n_fake, width)) + shift * direction / np.linalg.norm(direction) * 3
    x = np.vstack([real, fake]) * scales + rng.normal(size=width) * scales
    return x, np.r_[np.zeros(n_real, bool), np.ones(n_fake, bool)]


def extended_sample(x, is_fake):
    paths = [f"/data/{'fake' if f else 'real'}/{i}.png" for i, f in enumerate(is_fake)]
    return samples_of([make_table(paths, x, measurement=EXT)])


def test_defaults_per_feature_set():
    assert set(DETECTOR_DEFAULTS) == set(FEATURE_SETS)
    paper, extended = DETECTOR_DEFAULTS["paper"], DETECTOR_DEFAULTS["extended"]
    assert (paper.method, paper.standardise_svm, paper.gmm_components) == ("svm", False, None)  # the paper's
    assert (extended.method, extended.standardise_svm, extended.gmm_components) == ("logistic", True, 6)


def test_standardisation_by_hand():
    x = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 0.0]])
    s = Standardisation.fit(x)
    np.testing.assert_array_equal(s.mean, [3.0, 5.0, 2.0])
    np.testing.assert_allclose(s.scale, [np.sqrt(8 / 3), 1.0, np.sqrt(8 / 3)])  # a constant feature: scale 1
    np.testing.assert_allclose(s.apply(x), StandardScaler().fit_transform(x))


def test_projection_is_pca_up_to_sign():
    x, _ = wide_clusters(80, 70, width=12)
    z = StandardScaler().fit_transform(x)
    p = Projection.fit(z, 4)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(4), atol=1e-12)
    reference = PCA(4).fit(z)
    for ours, theirs in zip(p.components, reference.components_, strict=True):
        assert abs(abs(ours @ theirs) - 1) < 1e-9
        assert ours[np.argmax(np.abs(ours))] > 0
    np.testing.assert_allclose(np.abs(p.apply(z)), np.abs(reference.transform(z)), atol=1e-9)
    with pytest.raises(DetectorError, match="principal components"):
        Projection.fit(z, 13)


def test_logistic_scores_are_sklearns_on_standardised_features():
    x, is_fake = wide_clusters(120, 100)
    fit = fit_classifier(x, is_fake, method="logistic", standardise=True)
    scaler = StandardScaler().fit(x)
    reference = LogisticRegression(max_iter=10_000).fit(scaler.transform(x), is_fake)
    np.testing.assert_allclose(fit.score(x), reference.decision_function(scaler.transform(x)), rtol=1e-6, atol=1e-6)
    assert isinstance(fit.decision, LogisticDecision)
    assert np.mean((fit.score(x) > 0) == is_fake) > 0.95


def test_standardised_svm_is_sklearns_pipeline():
    x, is_fake = wide_clusters(90, 90, seed=3)
    fit = fit_classifier(x, is_fake, method="svm", standardise=True)
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    reference = SVC(gamma=1.0 / (z.shape[1] * z.var())).fit(z, is_fake)
    np.testing.assert_allclose(fit.score(x), reference.decision_function(z), rtol=1e-6, atol=1e-9)
    # Unscaled, the features of largest scale swamp the kernel.
    unscaled = fit_classifier(x, is_fake, method="svm", standardise=False)
    assert np.mean((fit.score(x) > 0) == is_fake) > np.mean((unscaled.score(x) > 0) == is_fake)


def test_train_takes_the_feature_sets_defaults():
    x, is_fake = wide_clusters(60, 60)
    trained = train(extended_sample(x, is_fake))
    model = trained.model
    assert model.method == "logistic" and model.standardisation is not None and model.projection is None
    assert "logistic regression (standardised features)" in trained.summary
    assert model.provenance["standardised"] is True
    svm = train(extended_sample(x, is_fake), method="svm").model
    assert svm.standardisation is not None
    plain = train(extended_sample(x, is_fake), method="svm", standardise=False).model
    assert plain.standardisation is None
    paper_x = x[:, :6] / np.abs(x[:, :6]).max()
    paper = train(
        samples_of([make_table([f"/d/{'fake' if f else 'real'}/{i}" for i, f in enumerate(is_fake)], paper_x)])
    )
    assert paper.model.method == "svm" and paper.model.standardisation is None  # the paper's SVM, unscaled
    with pytest.raises(DetectorError, match="drop --standardise"):
        train(extended_sample(x, is_fake), method="gmm", standardise=True)
    with pytest.raises(DetectorError, match="unknown method"):
        train(extended_sample(x, is_fake), method="tree")


@pytest.mark.parametrize("method", ["logistic", "svm", "gmm"])
def test_extended_models_round_trip_bit_for_bit(tmp_path, method):
    x, is_fake = wide_clusters(150, 150, seed=5)
    model = train(extended_sample(x, is_fake), method=method).model
    probe, _ = wide_clusters(30, 30, seed=6)
    probe[4, 10] = np.nan
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert loaded.method == method and loaded.measurement == EXT
    np.testing.assert_array_equal(loaded.score(probe), model.score(probe))
    assert np.isnan(loaded.score(probe)[4])
    loaded.save(tmp_path / "again.h5")
    assert (tmp_path / "again.h5").read_bytes() == (tmp_path / "m.h5").read_bytes()
    one_by_one = np.array([model.score(probe[i : i + 1])[0] for i in range(len(probe))])
    np.testing.assert_array_equal(one_by_one, model.score(probe))
    with h5py.File(tmp_path / "m.h5") as f:
        groups = sorted(f)
        assert all(isinstance(f[g], h5py.Group) for g in groups)
        if method == "gmm":
            assert groups == ["gmm", "projection", "standardisation"]
            assert f["projection/components"].shape == (6, EXTENDED.width) and f["gmm/means"].shape == (2, 6)
        else:
            assert groups == sorted([method, "standardisation"])
            assert f["standardisation/mean"].shape == f["standardisation/scale"].shape == (EXTENDED.width,)


def test_malformed_optional_groups_are_refused(tmp_path):
    x, is_fake = wide_clusters(100, 100)
    train(extended_sample(x, is_fake), method="gmm").model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        del f["standardisation/scale"]
        f["standardisation/scale"] = np.zeros(EXTENDED.width)
    with pytest.raises(ModelError, match="not positive"):
        load_model(tmp_path / "m.h5")
    train(extended_sample(x, is_fake), method="gmm").model.save(tmp_path / "n.h5")
    with h5py.File(tmp_path / "n.h5", "a") as f:
        del f["projection"]
        f["projection"] = np.zeros(3)
    with pytest.raises(ModelError, match="projection is not a group"):
        load_model(tmp_path / "n.h5")


def test_gmm_on_principal_components_is_sklearns():
    x, is_fake = wide_clusters(200, 200, seed=8, shift=2.0)
    fit = fit_gmm(x, seed=0, components=6)
    z = PCA(6).fit_transform(StandardScaler().fit_transform(x))
    reference = GaussianMixture(2, covariance_type="full", random_state=0).fit(fit.inputs(x))
    proba = reference.predict_proba(fit.inputs(x))
    fake = fit.decision.fake_component
    np.testing.assert_allclose(fit.score(x), np.log(proba[:, fake]) - np.log(proba[:, 1 - fake]), atol=1e-6)
    np.testing.assert_allclose(np.abs(fit.inputs(x)), np.abs(z), atol=1e-9)
    assert max(np.mean((fit.score(x) > 0) == is_fake), np.mean((fit.score(x) > 0) != is_fake)) > 0.95


def test_enrichment_picks_the_side_where_the_majority_rule_fails():
    """One large component of every fake and most reals, one small one of reals only: most anchors fall
    in the large component, yet the reals are enriched in the small one (their share there exceeds
    its share of all rows)."""
    rng = np.random.default_rng(0)
    fakes = rng.normal(0.0, 1.0, (1000, 2))
    reals_near = rng.normal(0.0, 1.0, (140, 2))
    reals_apart = rng.normal(8.0, 0.5, (60, 2))
    x = np.vstack([reals_near, reals_apart, fakes])
    is_fake = np.r_[np.zeros(200, bool), np.ones(1000, bool)]
    plain = fit_gmm(x, seed=0)
    small = int(np.argmin(plain.decision.weights))
    anchors = x[rng.choice(200, 20, replace=False)]
    held_in_small = float(np.mean((plain.decision.score(anchors) > 0) == (plain.decision.fake_component == small)))
    assert held_in_small < 0.5  # the majority of anchors is in the large component ...
    fit = fit_gmm(x, seed=0, real_anchor=anchors)
    assert fit.rule == "anchor" and fit.decision.fake_component == 1 - small  # ... enrichment calls the small one real
    assert fit.anchors_in_real > fit.rows_in_real
    # Labelled, the verdicts agree with the classes better than the opposite assignment.
    verdict = fit.score(x) > 0
    assert np.mean(verdict == is_fake) > np.mean(verdict != is_fake)


def test_anchor_certainty_gives_both_shares():
    x, is_fake = wide_clusters(150, 150, seed=9, shift=2.0)
    s = extended_sample(x, is_fake)
    fit, _ = fit_gmm_on(s, seed=0, anchors=[s.paths[i] for i in range(10)])
    assert fit.projection is not None and fit.projection.width == 6
    assert fit.certainty is not None and fit.certainty.certain
    in_real = int(np.sum(fit.score(x[:10]) <= 0))
    rows_real = int(np.sum(fit.score(x) <= 0))
    assert (fit.certainty.in_real, fit.certainty.rows_real) == (in_real, rows_real)
    assert f"{in_real} of 10 real anchors fall in the component called real, against " in fit.certainty.describe()
    assert np.mean((fit.score(x) > 0) == is_fake) > 0.95


def test_classify_uses_the_bundled_model_of_the_stores_set():
    x, is_fake = wide_clusters(20, 20, seed=10)
    verdicts = classify(extended_sample(x, is_fake))
    default = bundled_model("extended")
    assert "logistic regression" in verdicts.model and "extended set" in verdicts.model
    np.testing.assert_array_equal(verdicts.score, default.score(x))
    paper_x = np.abs(x[:, :6]) / np.abs(x[:, :6]).max() * 0.05
    paper = classify(samples_of([make_table([f"/p/{i}.png" for i in range(len(paper_x))], paper_x)]))
    assert "SVM on log-spectrum features" in paper.model
    np.testing.assert_array_equal(paper.score, bundled_model("paper").score(paper_x))
    wide_x, wide_fake = wide_clusters(20, 20, seed=11, width=RESIDUAL.width)
    paths = [f"/data/{'fake' if f else 'real'}/{i}.png" for i, f in enumerate(wide_fake)]
    residual = classify(samples_of([make_table(paths, wide_x, measurement=Measurement(feature_set="residual"))]))
    assert "logistic regression" in residual.model and "residual set" in residual.model
    np.testing.assert_array_equal(residual.score, bundled_model("residual").score(wide_x))


def test_bundled_models():
    default = load_model(None)
    assert default.measurement.feature_set == "extended" and default.method == "logistic"
    assert default.standardisation is not None and default.scaling is None and default.projection is None
    assert default.provenance["real"] > 1600 and len(default.provenance["trained_on"]) == 3
    paper = bundled_model("paper")
    assert paper.measurement.feature_set == PAPER.name and paper.method == "svm" and paper.standardisation is None
    scores = default.score(np.vstack([np.zeros(EXTENDED.width), np.full(EXTENDED.width, np.nan)]))
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    residual = bundled_model("residual")  # the default model's recipe and images, on the residual set's 131
    assert residual.measurement.feature_set == RESIDUAL.name and residual.method == "logistic"
    assert residual.standardisation is not None and residual.scaling is None and residual.projection is None
    assert residual.provenance["C"] == 1.0 and residual.provenance["trained_on"] == default.provenance["trained_on"]
    assert (residual.provenance["real"], residual.provenance["fake"]) == (
        default.provenance["real"],
        default.provenance["fake"],
    )
    scores = residual.score(np.vstack([np.zeros(RESIDUAL.width), np.full(RESIDUAL.width, np.nan)]))
    assert np.isfinite(scores[0]) and np.isnan(scores[1])


def test_every_feature_set_has_its_bundled_model():
    for name in FEATURE_SETS:
        model = bundled_model(name)
        assert model.source == f"bundled:{name}" and model.measurement.feature_set == name
        assert model.measurement.feature_names == FEATURE_SETS[name].names


def test_a_paper_model_refuses_extended_features_and_says_what_to_do():
    model = bundled_model("paper")
    with pytest.raises(ModelError, match="recompute them with --feature-set paper"):
        model.check_compatible(EXT)
    assert isinstance(model, Model)


def test_schema_1_and_earlier_schema_2_files_still_read(tmp_path):
    """A schema-1 file (no feature_set, precision) reads as the paper's set; a schema-2 file without the
    new optional groups reads as before."""
    x = np.abs(wide_clusters(40, 40, width=6)[0]) * 1e-3
    is_fake = np.r_[np.zeros(40, bool), np.ones(40, bool)]
    model = train(samples_of([make_table([f"/d/{'fake' if f else 'real'}/{i}" for i, f in enumerate(is_fake)], x)]))
    model.model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        assert "standardisation" not in f and "canonical" not in f.attrs
        f.attrs["schema_version"] = 1
        del f.attrs["feature_set"], f.attrs["precision"]
    old = load_model(tmp_path / "m.h5")
    assert old.measurement == Measurement(precision="double") and old.method == "svm"  # as scanner 0.1 measured
    np.testing.assert_array_equal(old.score(x), model.model.score(x))


def test_canonical_models_say_so_and_classify_notes_a_mismatch(tmp_path):
    x, is_fake = wide_clusters(60, 60, seed=11)
    canonical = Measurement(feature_set="extended", canonical=True)
    paths = [f"/c/{'fake' if f else 'real'}/{i}.png" for i, f in enumerate(is_fake)]
    model = train(samples_of([make_table(paths, x, measurement=canonical)])).model
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5") as f:
        assert f.attrs["canonical"] == "true"
    assert load_model(tmp_path / "m.h5").measurement.canonical
    verdicts = classify(extended_sample(x, is_fake), load_model(tmp_path / "m.h5"))
    assert any("trained on images canonicalised" in n and "these were measured as found" in n for n in verdicts.notes)
    assert not classify(samples_of([make_table(paths, x, measurement=canonical)]), model).notes
    with pytest.raises(DetectorError, match="mix canonicalised images and images as found"):
        samples_of([make_table(paths, x, measurement=canonical), make_table(paths, x, measurement=EXT)])
