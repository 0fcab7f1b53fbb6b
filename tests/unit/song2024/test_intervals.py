"""The Song study's intervals and theorem checks: the digits chapter's paired bootstrap and the
verdicts it gives (S11–S14), the small-N demonstration (S3), and the theorems' kind (S1, S2, S9)."""

import numpy as np
import pandas as pd
import pytest

from flowcore.estimators import auroc
from flowcore.studies.song2024 import analysis, claims, digits, linear
from flowcore.studies.song2024.config import SongConfig
from flowcore.verdicts import Verdict

SETS = ("class 1", "noisy digits")


def _scores(shift_klj=0.0, acc_plain=0.80, acc_klj=0.80, n=287, seed=0, jitter=0.0):
    """Six models as in :func:`digits.variants`; KLJ's models score the test digits ``shift_klj``
    higher (raising every AUROC) plus ``jitter``·ε per image (scores that move image by image),
    and classify ``acc_klj`` of them right."""
    g = np.random.default_rng(seed)
    base = {"test": g.normal(size=n), **{s: g.normal(size=n) - 0.3 for s in SETS}}
    right = g.random(n)
    moved = base["test"] + shift_klj + jitter * g.normal(size=n)
    log_px, correct = [], []
    for v in digits.variants(0.64, 0.1, 0.2):
        on = v["klj_weight"] > 0
        log_px.append({k: (moved if on and k == "test" else x) for k, x in base.items()})
        correct.append(right < (acc_klj if on else acc_plain))
    return digits.DigitsScores(
        tuple(digits.variants(0.64, 0.1, 0.2)), tuple(log_px), tuple(correct)
    )


def test_the_table_matches_the_estimators_auroc_and_accuracy():
    s = _scores(shift_klj=0.5)
    table = digits.digits_table(s)
    for i, row in table.iterrows():
        for name in SETS:
            assert row[f"AUROC {name}"] == pytest.approx(
                auroc(s.log_px[i]["test"], s.log_px[i][name]), abs=1e-12
            )
        assert row["accuracy"] == pytest.approx(s.correct[i].mean())
        assert row["mean AUROC"] == pytest.approx(np.mean([row[f"AUROC {n}"] for n in SETS]))


def test_infinite_scores_rank_below_every_finite_one_and_tie_with_each_other():
    s = digits.DigitsScores(
        ({"data": "clean", "klj_weight": 0.0},),
        ({"test": np.array([0.0, 1.0, -np.inf]), "ood": np.array([-np.inf, -5.0])},),
        (np.ones(3, bool),),
    )
    # pairs: (0 > -inf, 0 > -5), (1 > both), (-inf = -inf: ½, -inf < -5: 0) → 4.5 / 6
    assert digits.digits_table(s)["AUROC ood"].item() == pytest.approx(4.5 / 6)
    with pytest.raises(ValueError, match="NaN"):
        digits.digits_table(
            digits.DigitsScores(
                ({"data": "clean", "klj_weight": 0.0},),
                ({"test": np.array([0.0, np.nan]), "ood": np.zeros(2)},),
                (np.ones(2, bool),),
            )
        )


def test_the_bootstrap_is_paired_so_identical_models_differ_by_exactly_zero():
    s = _scores(shift_klj=0.0)
    table, draws = digits.digits_table(s), digits.paired_bootstrap(s, n_boot=200, seed=3)
    for metric in ("accuracy", "AUROC class 1", "mean AUROC"):
        value, low, high = digits.contrast(
            table, draws, metric, {("clean", True): 1, ("clean", False): -1}
        )
        assert value == low == high == 0.0
    # each model's own interval is not degenerate: the pairing, not a lack of resampling, cancels it
    own = digits.metric_intervals(table, draws).query("metric == 'accuracy'")
    assert (own["CI high"] - own["CI low"] > 0.05).all()


def test_the_accuracy_interval_has_the_binomial_width():
    s = _scores(acc_plain=0.8, acc_klj=0.8)
    own = digits.metric_intervals(
        digits.digits_table(s), digits.paired_bootstrap(s, n_boot=1000)
    ).query("metric == 'accuracy'")
    half = ((own["CI high"] - own["CI low"]) / 2).mean()
    p = own["value"].iloc[0]
    assert half == pytest.approx(
        1.96 * np.sqrt(p * (1 - p) / 287), rel=0.15
    )  # about 0.046 here; 0.018·1.96 at 0.9


def test_the_bootstrap_is_seeded_and_validates_its_arguments():
    s = _scores()
    pd.testing.assert_frame_equal(
        digits.paired_bootstrap(s, n_boot=20, seed=1), digits.paired_bootstrap(s, n_boot=20, seed=1)
    )
    with pytest.raises(ValueError, match="n_boot"):
        digits.paired_bootstrap(s, n_boot=5)
    table, draws = digits.digits_table(s), digits.paired_bootstrap(s, n_boot=20)
    with pytest.raises(ValueError, match="metric must be one of"):
        digits.contrast(table, draws, "AUROC cifar", {("clean", True): 1})
    with pytest.raises(ValueError, match="holds 0 times"):
        digits.contrast(table, draws, "accuracy", {("cifar", True): 1})
    with pytest.raises(ValueError, match="same sets"):
        digits.DigitsScores(s.variants[:2], (s.log_px[0], {"test": np.zeros(3)}), s.correct[:2])


def test_a_change_smaller_than_its_interval_is_not_distinguishable():
    # KLJ classifies 3 of 287 test digits fewer right: a point difference of -1.05 pp, past the 1 pp
    # margin, but its paired interval reaches back past it: the data cannot tell. It raises no
    # AUROC.
    s = _scores(acc_plain=0.80, acc_klj=0.785)
    table, draws = digits.digits_table(s), digits.paired_bootstrap(s, n_boot=500)
    value, low, high = digits.contrast(
        table, draws, "accuracy", {("clean", True): 1, ("clean", False): -1}
    )
    assert value < -claims.EFFECT and low < -claims.EFFECT < high
    found = claims.s_digits(table, draws)
    assert claims.assess("S12", found["S12"]).verdict == Verdict.UNDECIDED
    assert (
        claims.assess("S11", found["S11"]).verdict == Verdict.NOT
    )  # Δ = 0 exactly: wholly below the margin


def test_an_s11_auroc_gain_past_the_margin_but_inside_its_interval_is_not_distinguishable():
    # KLJ moves every test digit's score up a little and scatters it image by image: each AUROC
    # rises by more than the margin at the point estimate, but the paired interval reaches below it.
    s = _scores(shift_klj=0.04, jitter=0.4)  # ΔAUROC about +0.02 [+0.004, +0.034] on both sets
    table, draws = digits.digits_table(s), digits.paired_bootstrap(s, n_boot=500)
    for name in SETS:
        value, low, high = digits.contrast(
            table, draws, f"AUROC {name}", {("clean", True): 1, ("clean", False): -1}
        )
        assert value > claims.EFFECT and low < claims.EFFECT < high, name
    assert claims.assess("S11", claims.s_digits(table, draws)["S11"]).verdict == Verdict.UNDECIDED


def test_s11_style_differences_pass_only_beyond_the_margin():
    raised = _scores(shift_klj=1.0)
    found = claims.s_digits(
        digits.digits_table(raised), digits.paired_bootstrap(raised, n_boot=200)
    )
    assert claims.assess("S11", found["S11"]).verdict == Verdict.REPRODUCED
    assert claims.assess("S14", found["S14"]).verdict == Verdict.REPRODUCED
    # the same shift on every condition: nothing is lost to outliers with or without KLJ
    assert claims.assess("S13", found["S13"]).verdict == Verdict.NOT


def test_s3_demonstrates_no_mle_below_d_and_fails_above():
    config = SongConfig.from_params(
        linear_dim=4,
        linear_n=[3, 4, 40],
        outlier_fractions=[0.0],
        alphas=[0.0, 1.0, 10.0],
        replicates=5,
    )
    small = analysis.small_n_checks(config)
    assert sorted(small["N"].unique()) == [3, 4] and (small["rank T"] <= small["N"] - 1).all()
    check = claims.assess("S3", claims.s_small_n(small, analysis.linear_grid(config)))
    assert check.kind == "theorem" and check.findings["model"].subchecks[0].passed == {
        "N=3": True,
        "N=4": True,
    }
    # the same computation on sets with N > d: the NLL rises, so the check would fail there
    x = np.random.default_rng(0).normal(size=(40, 4))
    assert (linear.null_direction_fall(x) < 0).all()
    with pytest.raises(ValueError, match="scales"):
        linear.null_direction_fall(x, (0.0,))


def test_the_theorems_are_demonstrated_and_a_violated_bound_is_not():
    found = claims.s_theorems(analysis.theorem_checks(d=2, n=30))
    assert claims.assess("S2", found["S2"]).verdict == Verdict.DEMONSTRATED
    assert (
        claims.assess("S1", found["S1"]).verdict == Verdict.PARTLY
    )  # the printed sign of b is wrong
    assert (
        claims.assess("S9", claims.s_bound([(1.0, 2.0), (3.0, 3.0)])).verdict
        == Verdict.DEMONSTRATED
    )
    assert claims.assess("S9", claims.s_bound([(2.5, 2.0)])).verdict == Verdict.NOT


def test_a_closed_form_is_untestable_when_the_optimiser_did_not_converge():
    checks = analysis.theorem_checks(d=2, n=30)
    checks.loc["Theorem 3 / Eq. 7 (KL)", "L-BFGS converged"] = False
    assert claims.assess("S2", claims.s_theorems(checks)["S2"]).verdict == Verdict.UNTESTABLE


def test_s10_compares_whatever_verdict_strings_come_back():
    same = claims.s_thesis({"C5": "not distinguishable"}, {"C5": "not distinguishable"})
    assert claims.assess("S10", same).verdict == Verdict.NOT
    changed = claims.s_thesis(
        {"C5": "reproduced", "C6": "not testable here: the flow does not fit p"},
        {"C5": "reproduced"},
    )
    assert claims.assess("S10", changed).verdict == Verdict.REPRODUCED
    assert "C6: not testable here: the flow does not fit p → —" in changed.subchecks[0].detail
