"""How certain the real anchors make a mixture's side: the binomial test, its exact bootstrap, the refusal
of an unsettled side (library and command line), and what is said and recorded when the side is settled."""

from fractions import Fraction
from math import comb

import numpy as np
import pytest
from helpers import FAKE_CENTRE, REAL_CENTRE, clusters, invoke, store

from scanner.core.errors import DetectorError
from scanner.core.schema import make_table
from scanner.detect.fit import SIDE_CUT, SideCertainty, binomial_tail, fit_gmm, fit_gmm_on
from scanner.detect.model import load_model
from scanner.detect.samples import samples_of


def _exact_tail(n: int, k: int, p: float) -> float:
    """P(K >= k), K ~ Binomial(n, p), in rational arithmetic."""
    q = Fraction(p)
    return float(sum(comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(max(k, 0), n + 1)))


@pytest.mark.parametrize(
    ("n", "k", "p"),
    [(20, 19, 0.45), (20, 12, 0.52), (7, 7, 0.5), (11, 6, 0.5), (200, 120, 0.5), (50, 0, 0.3), (30, 31, 0.4)],
)
def test_binomial_tail_is_the_exact_sum(n, k, p):
    assert binomial_tail(n, k, p) == pytest.approx(_exact_tail(n, k, p), rel=1e-9, abs=1e-300)


def test_binomial_tail_at_the_edges():
    assert binomial_tail(10, 0, 0.3) == 1.0 and binomial_tail(10, 11, 0.3) == 0.0
    assert binomial_tail(10, 1, 0.0) == 0.0 and binomial_tail(10, 10, 1.0) == 1.0


def test_the_resampled_share_is_the_bootstrap_computed_exactly():
    certainty = SideCertainty(anchors=20, in_real=13, rows=1000, rows_real=520)
    # A seeded bootstrap: resample the anchors with replacement; the side is the same where strictly more of
    # the resample than 52 % falls in the real component (the mixture is not refitted).
    in_real = np.r_[np.ones(13, bool), np.zeros(7, bool)]
    draws = np.random.default_rng(0).choice(in_real, (20_000, 20), replace=True)
    same = float(np.mean(draws.mean(axis=1) > 0.52))
    assert certainty.resampled == pytest.approx(same, abs=0.01)
    assert certainty.resampled == pytest.approx(_exact_tail(20, 11, 13 / 20), rel=1e-9)


def test_all_anchors_on_one_side_can_still_be_too_few():
    """4 of 4 anchors: every resample picks the same side, but anchors no different from the rows would do so
    one time in 16: the binomial test, not the bootstrap, is what settles it."""
    few = SideCertainty(anchors=4, in_real=4, rows=120, rows_real=60)
    assert few.resampled == 1.0 and few.p_value == pytest.approx(1 / 16) and not few.certain
    assert SideCertainty(anchors=7, in_real=7, rows=120, rows_real=60).certain  # 1/128 < 0.01


def test_the_anchors_asked_for_would_settle_the_side():
    certainty = SideCertainty(anchors=20, in_real=13, rows=1000, rows_real=520)
    needed = certainty.needed()
    assert needed is not None and needed > 20
    share = certainty.rows_share
    assert binomial_tail(needed, 13 * needed // 20, share) <= SIDE_CUT  # as many, leaning as these do: settled
    assert binomial_tail(needed // 2, 13 * (needed // 2) // 20, share) > SIDE_CUT  # half as many: not
    assert f"give about {needed} known-real images, not 20" in certainty.refusal()  # two digits: as found
    leaning = SideCertainty(anchors=20, in_real=11, rows=1000, rows_real=500)
    found = leaning.needed()
    assert found is not None and found > 100
    rounded = -(-found // 10) * 10  # three digits: rounded up to two significant ones
    assert f"give about {rounded} known-real images, not 20" in leaning.refusal()
    # Anchors that lean by a tenth of a percent: no sensible number settles it.
    assert SideCertainty(anchors=20, in_real=10, rows=1000, rows_real=499).needed() is None
    assert "give clearer known-real images" in SideCertainty(20, 10, 1000, 499).refusal()


# --- synthetic clusters with known sides -----------------------------------------------------------------


def _sample(x, is_fake):
    paths = [f"/data/{'fake' if f else 'real'}/{i}.png" for i, f in enumerate(is_fake)]
    return samples_of([make_table(paths, x)])


def test_anchors_clearly_in_one_component_settle_the_right_side():
    # Reals with the larger `mean` feature: the paper's rule would call them fake.
    x, is_fake = clusters(150, 150, seed=3, real=FAKE_CENTRE, fake=REAL_CENTRE)
    s = _sample(x, is_fake)
    fit, notes = fit_gmm_on(s, seed=0, anchors=[s.paths[i] for i in range(0, 40, 2)])  # 20 known reals
    assert fit.rule == "anchor" and fit.certainty is not None and fit.certainty.certain
    assert (fit.certainty.anchors, fit.certainty.in_real) == (20, 20)
    assert fit.certainty.rows_real == int(np.sum(fit.score(x) <= 0))
    assert fit.certainty.p_value == pytest.approx(fit.certainty.rows_share**20, rel=1e-9)
    assert fit.certainty.resampled == 1.0
    assert np.mean((fit.score(x) > 0) == is_fake) > 0.99  # the right side
    assert not any("warning" in n for n in notes)
    text = fit.certainty.describe()
    assert text.startswith("20 of 20 real anchors fall in the component called real, against 50% of all 300 rows")
    assert "settled at p <= 0.01" in text and "the same side in 100.0% of resamples" in text


def test_anchors_split_about_evenly_are_refused():
    x, is_fake = clusters(120, 120, seed=4)
    s = _sample(x, is_fake)
    anchors = [s.paths[i] for i in (*range(6), *range(120, 125))]  # 6 reals and 5 fakes
    with pytest.raises(DetectorError) as refused:
        fit_gmm_on(s, seed=0, anchors=anchors)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("the mixture's side is not settled: 6 of 11 real anchors fall in the component")
    assert f"binomial p = {_exact_tail(11, 6, 0.5):.2g} (above 0.01: not settled)" in message
    assert "known-real images, not 11, or --accept-uncertain-side to go on anyway" in message
    # Asked to, it goes on, and says the side may be wrong.
    fit, notes = fit_gmm_on(s, seed=0, anchors=anchors, accept_uncertain_side=True)
    assert fit.certainty is not None and not fit.certainty.certain
    assert any(n.startswith("warning: the real anchors do not settle the mixture's side") for n in notes)


def test_fit_gmm_itself_never_refuses_an_unsettled_side():
    """The evaluation script measures how often an unsettled side would have been right: fit_gmm returns it."""
    x, _ = clusters(120, 120, seed=4)
    fit = fit_gmm(x, seed=0, real_anchor=x[[0, 1, 2, 3, 4, 5, 120, 121, 122, 123, 124]])
    assert fit.certainty is not None and not fit.certainty.certain


# --- the command line ------------------------------------------------------------------------------------


def _anchors(paths):
    return [a for p in paths for a in ("--real-anchor", p)]


def test_cli_refuses_an_unsettled_side_in_one_line(tmp_path):
    train_store, paths, _ = store(tmp_path, "split", 60, 60, seed=2)
    split = _anchors([*paths[:6], *paths[60:65]])
    for command, out in (
        (["classify", train_store, "--unsupervised"], tmp_path / "v.csv"),
        (["train", train_store, "--method", "gmm"], tmp_path / "m.h5"),
    ):
        result = invoke(*command, *split, "--out", out)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith(f"scanner {command[0]}: the mixture's side is not settled: 6 of 11 real anchors")
        assert "known-real images, not 11" in lines[0]
        assert not out.exists()


def test_cli_goes_on_with_an_unsettled_side_only_when_asked(tmp_path):
    train_store, paths, _ = store(tmp_path, "split", 60, 60, seed=2)
    split = _anchors([*paths[:6], *paths[60:65]])
    result = invoke(
        "train", train_store, "--method", "gmm", *split, "--accept-uncertain-side", "--out", tmp_path / "m.h5"
    )
    assert result.exit_code == 0, result.output
    assert "warning: the real anchors do not settle the mixture's side" in result.output
    assert "(above 0.01: not settled)" in result.output
    provenance = load_model(tmp_path / "m.h5").provenance
    assert provenance["side_certainty"]["certain"] is False and provenance["accepted_uncertain_side"] is True
    result = invoke(
        "classify", train_store, "--unsupervised", *split, "--accept-uncertain-side", "--out", tmp_path / "v.csv"
    )
    assert result.exit_code == 0, result.output
    assert "warning: the real anchors do not settle the mixture's side" in result.output


def test_cli_says_and_records_a_settled_side(tmp_path):
    train_store, paths, x = store(tmp_path, "clear", 60, 60, seed=2)
    clear = _anchors(paths[:20])
    result = invoke("train", train_store, "--method", "gmm", *clear, "--out", tmp_path / "m.h5")
    assert result.exit_code == 0, result.output
    summary = next(line for line in result.output.splitlines() if line.startswith("fitted a 2-component mixture"))
    assert "fake side by the real anchors: 20 of 20 real anchors fall in the component called real" in summary
    assert "settled at p <= 0.01" in summary and "the same side in 100.0% of resamples" in summary
    model = load_model(tmp_path / "m.h5")
    side = model.provenance["side_certainty"]
    assert (side["anchors"], side["anchors_in_real"], side["rows"], side["certain"]) == (20, 20, 120, True)
    assert side["p_value"] == pytest.approx((side["rows_in_real"] / 120) ** 20, rel=1e-9)
    assert side["cut"] == SIDE_CUT and model.provenance["accepted_uncertain_side"] is False
    assert list(model.predict(x)) == ["real"] * 60 + ["fake"] * 60

    result = invoke("classify", train_store, "--unsupervised", *clear, "--out", tmp_path / "v.csv")
    assert result.exit_code == 0, result.output
    assert "fake side by the real anchors: 20 of 20 real anchors" in result.output


def test_cli_without_anchors_says_the_paper_rule_picked_the_side(tmp_path):
    train_store, _, _ = store(tmp_path, "plain", 60, 60, seed=2)  # the paper's rule is right here
    for command, out in (
        (["classify", train_store, "--unsupervised"], tmp_path / "v.csv"),
        (["train", train_store, "--method", "gmm"], tmp_path / "m.h5"),
    ):
        result = invoke(*command, "--out", out)
        assert result.exit_code == 0, result.output
        assert "fake side by the paper's rule, often wrong" in result.output
        assert "warning: the fake side was picked by the paper's rule" in result.output
    assert load_model(tmp_path / "m.h5").provenance["side_certainty"] is None
