"""The Song study's truths, live theorem checks and claim checks on small cases with known
answers."""

import numpy as np
import pandas as pd
import pytest
import torch

from flowcore.studies.debruin2024 import ThesisConfig
from flowcore.studies.debruin2024.training import trained_flow
from flowcore.studies.song2024 import analysis, claims, deep
from flowcore.studies.song2024.config import SongConfig
from flowcore.verdicts import Verdict


def test_the_moons_density_integrates_to_one():
    t = deep.truth("moons")
    xs = torch.linspace(-2.5, 3.5, 241, dtype=torch.float64)
    ys = torch.linspace(-2.0, 2.5, 181, dtype=torch.float64)
    grid = torch.cartesian_prod(xs, ys)
    mass = torch.exp(t.log_prob(grid)).sum() * (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert float(mass) == pytest.approx(1.0, abs=2e-3)


def test_the_moons_samples_follow_their_density():
    t = deep.truth("moons")
    x = t.sample(4000, torch.Generator().manual_seed(0))
    # The samples' mean log-density is the density's negative entropy; a shifted sample scores
    # lower.
    assert float(t.log_prob(x).mean()) > float(t.log_prob(x + 0.5).mean()) + 1.0


def test_theorem_checks_match_the_optimiser_and_measure_the_printed_sign():
    checks = analysis.theorem_checks(d=2, n=30)
    assert (checks["max rel. error of M"].dropna() < 1e-4).all()
    assert checks.loc["printed sign b = +Uᵀx̄ (NLL excess)", "objective: closed form − L-BFGS"] > 0


def test_the_linear_grid_has_no_mle_below_d_and_regularised_fits_everywhere():
    config = SongConfig.from_params(
        linear_dim=4, linear_n=[3, 40], outlier_fractions=[0.0], alphas=[0.0, 1.0], replicates=3
    )
    summary = analysis.linear_summary(analysis.linear_grid(config))
    assert summary.query("N == 3 and α == 0")["exists"].item() == 0
    assert np.isfinite(summary.query("α == 1")["median KL"]).all()


def _deep_grid(kl_by_gamma, spread=0.05, seeds=(0, 1, 2)):
    """A deep grid with KL per γ (r = 0) and an outlier cost of 1.0 nats without KLJ, 0.2 with; the
    seeds scatter every KL by ±``spread`` independently."""
    rows = []
    g = np.random.default_rng(0)
    for r in (0.0, 0.1):
        for k, kl in kl_by_gamma.items():
            for seed in seeds:
                v = (
                    kl
                    + (1.0 if r > 0 and k == 0 else 0.2 if r > 0 else 0.0)
                    + spread * g.uniform(-1, 1)
                )
                rows.append(
                    {
                        "dataset": "gaussian",
                        "N": 20,
                        "r": r,
                        "klj_weight": k,
                        "weight_decay": 0.0,
                        "seed": seed,
                        "KL*(p‖pθ)": v,
                        "SE": 0.01,
                    }
                )
    return pd.DataFrame(rows)


def test_deep_claims_read_the_direction_of_the_effect():
    helps = _deep_grid({0.0: 2.0, 0.01: 1.0})
    assert claims.assess("S6", claims.s_klj_small_n(helps)).verdict == Verdict.REPRODUCED
    assert claims.assess("S7", claims.s_klj_outliers(helps)).verdict == Verdict.REPRODUCED
    assert claims.assess("S8", claims.s_best_gamma(helps)).verdict == Verdict.REPRODUCED
    hurts = _deep_grid({0.0: 1.0, 0.01: 2.0})
    assert claims.assess("S6", claims.s_klj_small_n(hurts)).verdict == Verdict.NOT
    assert claims.assess("S8", claims.s_best_gamma(hurts)).verdict == Verdict.NOT


def test_deep_claims_say_not_distinguishable_when_the_seeds_scatter_more_than_the_effect():
    # KLJ helps by 0.1 nats on average, but the seeds scatter each KL by up to ±2 nats.
    noisy = _deep_grid({0.0: 2.1, 0.01: 2.0}, spread=2.0)
    for claim, check in (
        ("S6", claims.s_klj_small_n),
        ("S7", claims.s_klj_outliers),
        ("S8", claims.s_best_gamma),
    ):
        assert claims.assess(claim, check(noisy)).verdict == Verdict.UNDECIDED, claim


def test_klj_gains_are_paired_by_seed_and_need_the_plain_flow():
    grid = _deep_grid({0.0: 2.0, 0.01: 1.0, 0.1: 1.5}, spread=0.0)
    gains = claims.klj_gains(grid)
    assert sorted(gains["klj_weight"].unique()) == [0.01, 0.1]
    assert np.allclose(gains.query("r == 0 and klj_weight == 0.01")["gain"], 1.0)
    assert np.allclose(gains.query("r == 0.1 and klj_weight == 0.1")["gain"], 0.5 + 0.8)
    with pytest.raises(ValueError, match="klj_weight 0"):
        claims.klj_gains(grid[grid["klj_weight"] > 0])


def test_s7_needs_the_margin_not_just_a_sign():
    # KLJ loses 0.02 nats less to outliers than the plain flow, consistently: below the margin.
    grid = _deep_grid({0.0: 1.0, 0.01: 1.0}, spread=0.0)
    grid.loc[(grid["r"] > 0) & (grid["klj_weight"] > 0), "KL*(p‖pθ)"] = (
        1.0 + 1.0 - 0.02 + 0.001 * grid["seed"]
    )
    assert claims.KL_MARGIN > 0.02
    assert claims.assess("S7", claims.s_klj_outliers(grid)).verdict == Verdict.NOT


def test_a_loss_term_without_a_name_cannot_share_the_plain_flows_cache_key():
    with pytest.raises(ValueError, match="loss_name must name the loss_terms"):
        trained_flow(4, ThesisConfig(), loss_terms=[lambda batch, log_scales: batch.sum() * 0])


def test_a_consistent_but_negligible_gain_does_not_count_as_improving_the_fit():
    tiny = _deep_grid({0.0: 2.0, 0.01: 1.99}, spread=0.0)
    assert claims.KL_MARGIN > 0.01
    assert claims.assess("S6", claims.s_klj_small_n(tiny)).verdict == Verdict.NOT
    # at r = 0.1 KLJ loses 0.8 nats less to the outliers, so only the clean cell fails
    assert claims.s_best_gamma(tiny).subchecks[0].passed == {
        "gaussian, N=20, r=0": False,
        "gaussian, N=20, r=0.1": True,
    }


def test_claims_without_the_cells_they_need_are_not_testable():
    clean_only = _deep_grid({0.0: 2.0, 0.01: 1.0}).query("r == 0")
    assert (
        claims.assess("S7", claims.s_klj_outliers(clean_only)).label()
        == "not testable here: the grid has no r > 0"
    )
    assert (
        claims.assess("S3", claims.s_small_n(pd.DataFrame(), pd.DataFrame())).label()
        == "not testable here: the grid has no N ≤ d"
    )
