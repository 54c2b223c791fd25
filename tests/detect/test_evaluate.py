import json

import numpy as np
import pytest
from helpers import FAKE_CENTRE, REAL_CENTRE, clusters

from scanner.core.errors import DetectorError
from scanner.core.schema import make_table
from scanner.detect.evaluate import FAKE_SHARES, evaluate, markdown, metrics, split_set
from scanner.detect.fit import fit_svm
from scanner.detect.samples import samples_of


def labelled(name, n_real, n_fake, seed=0, scale=1.0, spectrum="log", spread=0.004):
    x, is_fake = clusters(n_real, n_fake, seed=seed, real=REAL_CENTRE * scale, fake=FAKE_CENTRE * scale, spread=spread)
    paths = [f"/{name}/{'fake' if f else 'real'}/{i}.png" for i, f in enumerate(is_fake)]
    return name, samples_of([make_table(paths, x, spectrum=spectrum)])


def test_split_is_stratified_seeded_and_leaves_out_unusable():
    name, s = labelled("a", 40, 60)
    s.features[0] = np.nan
    split = split_set(name, s, test_size=0.5, seed=1)
    assert split.summary() == {
        "name": "a",
        "real": 39,
        "fake": 60,
        "unlabelled": 0,
        "unusable": 1,
        "train_real": 19,
        "train_fake": 30,
        "test_real": 20,
        "test_fake": 30,
    }
    again = split_set(name, s, test_size=0.5, seed=1)
    np.testing.assert_array_equal(split.test_x, again.test_x)
    assert not np.array_equal(split.test_x, split_set(name, s, test_size=0.5, seed=2).test_x)
    train_rows = {tuple(r) for r in split.train_x}
    assert not any(tuple(r) in train_rows for r in split.test_x)
    with pytest.raises(DetectorError, match="at least 2 labelled real"):
        split_set("b", labelled("b", 1, 10)[1])


def test_metrics_by_hand():
    is_fake = np.array([True, True, True, False, False, False, False])
    score = np.array([2.0, 0.5, -1.0, 0.1, -0.2, -3.0, -0.4])
    got = metrics(is_fake, score)
    # predicted fake: rows 0, 1, 3 -> TP 2, FP 1, FN 1, TN 3
    assert got["accuracy"] == 5 / 7 and got["recall"] == 2 / 3 and got["precision"] == 2 / 3
    assert got["f1"] == pytest.approx(2 / 3)
    # AUC: share of (fake, real) pairs ranked right: 4 + 4 + 1 of 12
    assert got["roc_auc"] == pytest.approx(9 / 12) and got["n"] == 7


def test_all_protocols_on_two_sets_repeat_exactly():
    sets = [labelled("a", 60, 60, seed=0), labelled("b", 50, 50, seed=1, scale=1.6, spread=0.006)]
    result = evaluate(sets, seed=0)
    again = evaluate(sets, seed=0)
    assert json.dumps(result) == json.dumps(again)
    assert [s["name"] for s in result["sets"]] == ["a", "b"]
    binary = {(r["set"], r["method"]): r for r in result["binary"]}
    assert set(binary) == {(name, m) for name in "ab" for m in ("gmm", "svm", "logistic")}
    assert binary[("a", "svm")]["accuracy"] > 0.95 and binary[("a", "svm")]["n"] == 60
    assert binary[("a", "gmm")]["gmm_side_wrong"] is False
    split = split_set("a", sets[0][1], 0.5, 0)
    svm = fit_svm(split.train_x, split.train_fake)
    assert binary[("a", "svm")] == {"set": "a", "method": "svm", **metrics(split.test_fake, svm.score(split.test_x))}
    few = [r for r in result["few_fakes"] if r["set"] == "a"]
    assert [(r["fake_share"], r["class_weight"]) for r in few] == [
        (f, w) for f in FAKE_SHARES for w in ("none", "balanced")
    ]
    assert [r["train_fake"] for r in few[::2]] == [30, 10, 2, 1] and all(r["train_real"] == 30 for r in few)
    pairs = [(r["source"], r["target"]) for r in result["adaptation"]]
    assert pairs == [("a", "b"), ("b", "a")]
    assert all(0 <= r["accuracy"] <= 1 and 0 <= r["unadapted_accuracy"] <= 1 for r in result["adaptation"])
    assert result["adaptation"][0]["accuracy"] > result["adaptation"][0]["unadapted_accuracy"]
    text = markdown(result)
    assert (
        "Binary classification (Table 2, and a logistic regression):" in text
        and "(Table 3)" in text
        and "(Table 4)" in text
    )
    assert "| a | SVM | " in text and "| a | logistic | " in text and "| a | 25% | balanced | 30/10 |" in text


def test_protocol_choice_and_refusals():
    a, b = labelled("a", 30, 30), labelled("b", 30, 30, seed=2)
    only = evaluate([a], protocols=("binary",))
    assert "binary" in only and "few_fakes" not in only and "adaptation" not in only
    with pytest.raises(DetectorError, match="at least two sets"):
        evaluate([a], protocols=("adaptation",))
    with pytest.raises(DetectorError, match="names must differ"):
        evaluate([a, a])
    with pytest.raises(DetectorError, match="mix spectrum"):
        evaluate([a, labelled("m", 30, 30, spectrum="modulus")])
    with pytest.raises(DetectorError, match="unknown protocol"):
        evaluate([a, b], protocols=("table5",))
