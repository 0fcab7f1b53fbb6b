"""The Song study's truths, live theorem checks and claim checks on small cases with known answers."""

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
    # The samples' mean log-density is the density's negative entropy; a shifted sample scores lower.
    assert float(t.log_prob(x).mean()) > float(t.log_prob(x + 0.5).mean()) + 1.0


def test_theorem_checks_match_the_optimiser_and_measure_the_printed_sign():
    checks = analysis.theorem_checks(d=2, n=30)
    assert (checks["max rel. error of M"].dropna() < 1e-4).all()
    assert checks.loc["printed sign b = +Uᵀx̄ (NLL excess)", "objective: closed form − L-BFGS"] > 0


def test_the_linear_grid_has_no_mle_below_d_and_regularised_fits_everywhere():
    config = SongConfig.from_params(linear_dim=4, linear_n=[3, 40], outlier_fractions=[0.0], alphas=[0.0, 1.0], replicates=3)
    summary = analysis.linear_summary(analysis.linear_grid(config))
    assert summary.query("N == 3 and α == 0")["exists"].item() == 0
    assert np.isfinite(summary.query("α == 1")["median KL"]).all()


def _deep_summary(kl_by_gamma):
    rows = []
    for ds in ("gaussian",):
        for n in (20,):
            for r in (0.0, 0.1):
                for k, kl in kl_by_gamma.items():
                    v = kl + (1.0 if r > 0 and k == 0 else 0.2 if r > 0 else 0.0)
                    rows.append({"dataset": ds, "N": n, "r": r, "klj_weight": k, "weight_decay": 0.0, "KL*(p‖pθ)": v, "CI low": v - 0.05, "CI high": v + 0.05})
    return pd.DataFrame(rows)


def test_deep_claims_read_the_direction_of_the_effect():
    helps = _deep_summary({0.0: 2.0, 0.01: 1.0})
    assert claims.assess("S6", claims.s_klj_small_n(helps)).verdict == Verdict.REPRODUCED
    assert claims.assess("S7", claims.s_klj_outliers(helps)).verdict == Verdict.REPRODUCED
    assert claims.assess("S8", claims.s_best_gamma(helps)).verdict == Verdict.REPRODUCED
    hurts = _deep_summary({0.0: 1.0, 0.01: 2.0})
    assert claims.assess("S6", claims.s_klj_small_n(hurts)).verdict == Verdict.NOT
    assert claims.assess("S8", claims.s_best_gamma(hurts)).verdict == Verdict.NOT


def test_a_loss_term_without_a_name_cannot_share_the_plain_flows_cache_key():
    with pytest.raises(ValueError, match="loss_name must name the loss_terms"):
        trained_flow(4, ThesisConfig(), loss_terms=[lambda batch, log_scales: batch.sum() * 0])
