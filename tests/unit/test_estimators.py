import numpy as np
import pytest

from flowcore.estimators import (
    auroc,
    cross_entropy_mc,
    fit_bounds,
    mean_estimate,
    overlap_coefficient,
    true_negative_rate,
)


def test_standard_error_shrinks_like_one_over_sqrt_n():
    rng = np.random.default_rng(0)
    errors = {n: mean_estimate(rng.normal(size=n)).stderr for n in (1_000, 16_000, 256_000)}
    assert errors[1_000] / errors[16_000] == pytest.approx(4.0, rel=0.05)
    assert errors[16_000] / errors[256_000] == pytest.approx(4.0, rel=0.05)
    # And it is the real spread of the estimator: std over repeats matches the SE.
    means = [rng.normal(size=2_000).mean() for _ in range(400)]
    assert np.std(means, ddof=1) == pytest.approx(1 / np.sqrt(2_000), rel=0.15)


def test_cross_entropy_sign():
    assert cross_entropy_mc([-1.0, -3.0]).value == pytest.approx(2.0)


@pytest.mark.parametrize("tpr", [0.5, 0.9, 0.975])
def test_bounds_hold_their_target_tpr_on_training_scores(tpr):
    scores = np.random.default_rng(1).normal(size=100_000)
    bounds = fit_bounds(scores, tpr)
    assert 1 - bounds.is_outlier(scores).mean() == pytest.approx(tpr, abs=1e-3)
    # Equal tails.
    assert (scores < bounds.lower).mean() == pytest.approx((scores > bounds.upper).mean(), abs=1e-3)


def test_tnr_auroc_and_ovl_on_known_cases():
    rng = np.random.default_rng(2)
    a = rng.normal(size=20_000)
    bounds = fit_bounds(a, 0.975)
    assert true_negative_rate(bounds, rng.normal(size=20_000)) == pytest.approx(0.025, abs=0.005)
    assert true_negative_rate(bounds, rng.normal(loc=10, size=1_000)) == 1.0
    assert auroc(a + 10, a) == 1.0 and auroc(a, a + 10) == 0.0
    assert auroc(a, rng.normal(size=20_000)) == pytest.approx(0.5, abs=0.02)
    # OVL of N(0,1) and N(1,1) is 2Φ(−1/2) ≈ 0.617.
    assert overlap_coefficient(a, rng.normal(loc=1, size=20_000)) == pytest.approx(0.617, abs=0.03)
    assert overlap_coefficient(a, rng.normal(size=20_000)) > 0.95
    assert overlap_coefficient(a, a + 50) < 0.01


@pytest.mark.parametrize("tpr", [0, 1, 1.5, -0.1, "0.9", True])
def test_bad_tpr(tpr):
    with pytest.raises(ValueError, match="tpr must be a number strictly between 0 and 1"):
        fit_bounds(np.arange(10.0), tpr)


def test_nan_scores_raise():
    with pytest.raises(ValueError, match="NaN"):
        mean_estimate([1.0, np.nan, 2.0])


def test_binned_kde_matches_scipy_and_auroc_matches_sklearn():
    from scipy.stats import gaussian_kde
    from sklearn.metrics import roc_auc_score

    from flowcore.estimators import kde_binned

    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(size=3_000), rng.normal(4, 0.5, size=1_000)])
    grid, density = kde_binned(values)
    assert np.max(np.abs(density - gaussian_kde(values)(grid))) < 1e-3 * density.max()
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-3)
    a, b = rng.normal(size=2_000), np.round(rng.normal(0.5, size=1_500), 1)  # rounded: ties count ½
    labels = np.r_[np.ones(a.size), np.zeros(b.size)]
    assert auroc(a, b) == pytest.approx(roc_auc_score(labels, np.r_[a, b]), abs=1e-12)
