"""The test families, the ground truth's detection rate, calibration and the batched evaluation."""

import numpy as np
import pytest
import torch

from flowcore.studies.debruin2024 import ThesisConfig
from flowcore.studies.debruin2024.calibration import Targets, calibrate_perturbation
from flowcore.studies.debruin2024.evaluation import null_view, rechunk, results
from flowcore.studies.debruin2024.families import (
    OutlierRecipe,
    Perturbation,
    QuadraticForm,
    chi2_band,
    family,
    outlier_base,
    perturbation_direction,
    standard_normal_draws,
    truth_tnr,
)
from flowcore.gaussians import GaussianRecipe, training_gaussian
from flowcore.studies.debruin2024.config import Sweep

S, T = (0.25, 0.5, 0.75, 1.0, 1.25, 1.75), (0.0, 0.25, 0.5, 0.75)


@pytest.fixture
def p():
    return training_gaussian(6, GaussianRecipe(), seed=3)


def test_perturbed_family_follows_eq_21(p):
    u = perturbation_direction(p.dim, 3)
    assert u.abs().max() <= 1 and torch.equal(u, perturbation_direction(p.dim, 3))
    members = family("perturbed", p, S, T, seed=3, perturbation=Perturbation(0.2, 0.5))
    assert len(members) == 24
    q = members[(0.5, 0.25)]
    torch.testing.assert_close(q.mean, p.mean + 0.25 + 0.5 * u)
    torch.testing.assert_close(q.cov, 0.25 * p.cov + 0.2 * torch.eye(p.dim))


def test_outlier_base_has_its_own_correlations_and_offset(p):
    near = outlier_base(p, GaussianRecipe(), OutlierRecipe(0.0, 1.0), seed=3)
    far = outlier_base(p, GaussianRecipe(), OutlierRecipe(2.0, 3.0), seed=3)
    torch.testing.assert_close(near.mean, p.mean)
    torch.testing.assert_close(far.cov, 3.0 * near.cov)
    assert not torch.allclose(near.cov, p.cov, atol=1e-2), "Σ_out is drawn independently of Σ_p"
    assert torch.linalg.vector_norm(far.mean - p.mean) > 0.5
    members = family("outlier", p, S, T, seed=3, outlier=OutlierRecipe(2.0, 3.0))
    torch.testing.assert_close(members[(1.25, 0.5)].cov, 1.25**2 * far.cov)


@pytest.mark.parametrize("bad", ["gaussian", "", None])
def test_unknown_family_is_named(p, bad):
    with pytest.raises(ValueError, match="family must be one of"):
        family(bad, p, S, T)


def test_quadratic_form_matches_mahalanobis_of_samples(p, gen):
    q = p.affine(0.8, 0.3)
    law = QuadraticForm(p, q)
    direct = p.mahalanobis_sq(q.sample(200_000, gen)).numpy()
    draws = law.draws(standard_normal_draws(200_000, p.dim, 0))
    assert draws.mean() == pytest.approx(law.mean(), rel=0.01)
    assert direct.mean() == pytest.approx(law.mean(), rel=0.01)
    np.testing.assert_allclose(
        np.quantile(draws, [0.1, 0.5, 0.9]), np.quantile(direct, [0.1, 0.5, 0.9]), rtol=0.02
    )
    # The affine shortcut equals a fresh factorisation of q(s, t).
    fast, fresh = QuadraticForm(p, p).affine(0.8, 0.3), law
    np.testing.assert_allclose(np.sort(fast.sqrt_ell), np.sort(fresh.sqrt_ell), rtol=1e-10)
    assert fast.mean() == pytest.approx(fresh.mean(), rel=1e-10)


def test_truth_tnr_on_p_is_one_minus_tpr(p):
    z = standard_normal_draws(100_000, p.dim, 1)
    assert truth_tnr(p, p, 0.975, z) == pytest.approx(0.025, abs=0.003)
    assert truth_tnr(p, p.affine(1, 5.0), 0.975, z) == 1.0
    lo, hi = chi2_band(p.dim, 0.9)
    assert lo < p.dim < hi


def test_perturbation_calibration_reaches_the_thesis_rates():
    cal = calibrate_perturbation(GaussianRecipe(), 0, Targets(), n_draws=4_000, n_check=40_000)
    assert cal.residual < 0.02, cal.check
    assert cal.values["alpha"] >= 0 and cal.values["beta"] >= 0
    assert {"alpha", "beta", "loss"} <= set(cal.grid.columns)


def test_rechunk_gives_exact_blocks_in_order():
    parts = [torch.arange(0, 5), torch.arange(5, 12), torch.arange(12, 13), torch.arange(13, 30)]
    blocks = list(rechunk(parts, 8))
    assert [len(b) for b in blocks] == [8, 8, 8, 6]
    assert torch.equal(torch.cat(blocks), torch.arange(30))


def test_batched_evaluation_table_and_nulls(tmp_path):
    config = ThesisConfig.from_params(
        dims=[3],
        n_train=600,
        n_val=200,
        max_epochs=2,
        n_couplings=2,
        hidden=[8],
        n_test=3_000,
        batch_size=128,
        alpha=0.05,
        beta=0.3,
        outlier_offset=0.5,
        outlier_cov_scale=1.0,
    )
    res = results(config)
    assert len(res.table) == 3 * 24 and len(res.curves) == 3 * 24
    same = res.member(3, "affine", 1.0, 0.0)  # q = p: every detector flags about 1 − TPR
    for column in ("TNR truth", "TNR model", "TNR gaussian", "TNR untrained"):
        assert same[column] == pytest.approx(0.025, abs=0.015)
    assert abs(same["AUROC truth"] - 0.5) < 0.03
    for null, score in (("p̂", "gaussian"), ("untrained", "untrained")):
        view = null_view(res.table, null)
        np.testing.assert_array_equal(view["TNR model"], res.table[f"TNR {score}"])
        np.testing.assert_array_equal(
            view["KL*(p‖pθ) paired"], res.table[f"KL*(p‖pθ) paired [{null}]"]
        )
        assert not any(c.endswith(("[p̂]", "[untrained]")) for c in view.columns)
    # The untrained flow is the zero-initialised RealNVP: the identity, so log pθ₀ = log N(0, I)
    # exactly.
    flow = res.trained[3].untrained
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(
        flow.log_prob(x.float()).double(),
        torch.distributions.Normal(0.0, 1.0).log_prob(x).sum(-1),
        atol=1e-5,
        rtol=0,
    )
    # Each row carries the fit on Q(p), the same within a D; the paired KL route to KL(q‖p) is there
    # too.
    assert res.table.groupby("D")["KL*(p‖pθ) paired"].nunique().eq(1).all()
    assert abs(same["E_q[log q − log p]"]) < 5 * same["SE E_q[log q − log p]"] + 1e-12
    again = results(config)
    assert again.timings["from cache"].all()
    np.testing.assert_array_equal(
        again.table.select_dtypes("number").to_numpy(), res.table.select_dtypes("number").to_numpy()
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seeds": [0, 1]}, "sweep_seeds must hold at least 3"),
        ({"capacity": [[8]]}, "sweep_capacity"),
        ({"n_train": [10]}, "sweep_n_train"),
    ],
)
def test_bad_sweeps_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Sweep(**kwargs)


def test_explorer_widget_updates_from_cached_results():
    ipywidgets = pytest.importorskip("ipywidgets")
    from flowcore.report.explorer import explorer, member_numbers, member_svg, member_title

    config = ThesisConfig.from_params(
        dims=[3],
        n_train=600,
        n_val=200,
        max_epochs=1,
        n_couplings=2,
        hidden=[8],
        n_test=2_000,
        batch_size=128,
        alpha=0.05,
        beta=0.3,
        outlier_offset=0.5,
        outlier_cov_scale=1.0,
    )
    res = results(config)
    widget = explorer(res)
    assert isinstance(widget, ipywidgets.VBox)
    dropdowns = widget.children[0].children
    dropdowns[1].value = "outlier"  # redraws through interactive_output without raising
    numbers = member_numbers(res, 3, "outlier", 1.0, 0.0)
    assert numbers.loc["TNR truth", "value"] == res.member(3, "outlier", 1.0, 0.0)["TNR truth"]
    svg = member_svg(res, 3, "outlier", 1.0, 0.0)  # what the explorer shows: its text stays text
    assert (
        svg.lstrip().startswith("<?xml")
        and f">{member_title(3, 'outlier', 1.0, 0.0)}</text>" in svg
    )
