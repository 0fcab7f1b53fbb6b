import numpy as np
import pytest

from flowcore.estimators import (
    _finite_1d,
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


# --- the sorted and batched forms against the one-at-a-time code they replace -----------------
#
# The references below are the estimators as they were before the sorted forms (flowcore 0.2.0,
# commit 34d0733): kept verbatim so the new code is compared with the old, bit for bit.
# tests/unit/debruin2024/test_batched_statistics.py and bench/bench_stats.py use them too.


# _finite_1d is unchanged since then, so the reference is the function itself.
reference_finite_1d = _finite_1d


def reference_kde_binned(values, grid=None, n_grid=256, n_bins=4096):
    from scipy.signal import fftconvolve

    values = reference_finite_1d("values", values)
    if np.ptp(values) == 0:
        raise ValueError("values are all equal; a KDE needs some spread")
    h = values.std(ddof=1) * values.size ** (-1 / 5)
    lo, hi = values.min() - 4 * h, values.max() + 4 * h
    centres = np.linspace(lo, hi, n_bins)
    step = centres[1] - centres[0]
    pos = (values - lo) / step
    left = np.clip(np.floor(pos).astype(np.int64), 0, n_bins - 2)
    frac = pos - left
    weights = np.bincount(left, 1 - frac, n_bins) + np.bincount(left + 1, frac, n_bins)
    half = min(n_bins - 1, int(np.ceil(5 * h / step)))
    offsets = np.arange(-half, half + 1) * step
    kernel = np.exp(-0.5 * (offsets / h) ** 2) / (h * np.sqrt(2 * np.pi))
    density = fftconvolve(weights, kernel, mode="same") / values.size
    grid = np.linspace(lo, hi, n_grid) if grid is None else np.asarray(grid, dtype=np.float64)
    return grid, np.clip(np.interp(grid, centres, density, left=0.0, right=0.0), 0.0, None)


def reference_overlap_coefficient(a, b, n_grid=4096):
    a = reference_finite_1d("a", a)
    b = reference_finite_1d("b", b)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    span = hi - lo if hi > lo else 1.0
    grid = np.linspace(lo - 0.25 * span, hi + 0.25 * span, n_grid)
    overlap = np.minimum(reference_kde_binned(a, grid)[1], reference_kde_binned(b, grid)[1])
    return float(np.clip(np.trapezoid(overlap, grid), 0.0, 1.0))


def reference_fit_bounds(train_scores, tpr=0.975):
    from flowcore.validation import check_probability

    tpr = check_probability("tpr", tpr)
    scores = reference_finite_1d("train_scores", train_scores)
    lower, upper = np.quantile(scores, [(1 - tpr) / 2, (1 + tpr) / 2])
    return float(lower), float(upper), tpr


def reference_true_negative_rate(bounds, test_scores):
    scores = reference_finite_1d("test_scores", test_scores)
    return float(((scores < bounds.lower) | (scores > bounds.upper)).mean())


def reference_auroc(in_scores, out_scores):
    a = np.sort(reference_finite_1d("in_scores", in_scores))
    b = reference_finite_1d("out_scores", out_scores)
    below = np.searchsorted(a, b, side="left")
    at_most = np.searchsorted(a, b, side="right")
    return float(np.mean((a.size - at_most) + 0.5 * (at_most - below)) / a.size)


def bits(values) -> np.ndarray:
    """The float64 bit patterns of ``values``: equal bits, equal numbers (and the sign of 0)."""
    return np.ascontiguousarray(values, dtype=np.float64).view(np.int64)


def _samples(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two samples of random sizes and spreads; every other seed rounded so ties abound, and some
    values of one copied into the other (ties across the samples)."""
    rng = np.random.default_rng(seed)
    n_a, n_b = rng.integers(2, 4000, size=2)
    a = rng.normal(rng.uniform(-3, 3), rng.uniform(0.1, 10), n_a)
    b = rng.normal(rng.uniform(-3, 3), rng.uniform(0.1, 10), n_b)
    if seed % 2:
        a, b = (
            a.round(1) + 0.0,
            b.round(1) + 0.0,
        )  # + 0.0: no -0.0 (np.sort and np.quantile order ±0 apart)
    k = min(n_a, n_b, 10)
    b[:k] = a[:k]
    return a, b


@pytest.mark.parametrize("seed", range(40))
def test_sorted_forms_equal_the_one_at_a_time_code_bitwise(seed):
    from flowcore.estimators import (
        auroc_sorted,
        fit_bounds_sorted,
        quantile_sorted,
        true_negative_rate_sorted,
    )

    a, b = _samples(seed)
    expected = reference_auroc(a, b)
    assert bits(auroc(a, b)) == bits(expected)
    assert bits(auroc(np.sort(a), b)) == bits(expected)  # a sorted reference is not sorted again
    assert bits(auroc_sorted(np.sort(a), np.sort(b))) == bits(expected)
    assert bits(auroc_sorted(np.sort(a), b)) == bits(expected)  # the out-sample's order is free
    tpr = float(np.random.default_rng(seed).uniform(0.01, 0.99))
    bounds = fit_bounds_sorted(np.sort(a), tpr)
    assert (
        bits([bounds.lower, bounds.upper]).tolist()
        == bits(reference_fit_bounds(a, tpr)[:2]).tolist()
    )
    assert (bounds.lower, bounds.upper, bounds.tpr) == (
        fit_bounds(a, tpr).lower,
        fit_bounds(a, tpr).upper,
        tpr,
    )
    assert bits(true_negative_rate_sorted(bounds, np.sort(b))) == bits(
        reference_true_negative_rate(bounds, b)
    )
    q = np.r_[
        0.0, 1.0, np.arange(a.size) / max(a.size - 1, 1), np.random.default_rng(seed).random(50)
    ]
    np.testing.assert_array_equal(bits(quantile_sorted(np.sort(a), q)), bits(np.quantile(a, q)))
    assert bits(quantile_sorted(np.sort(a), 0.3)) == bits(np.quantile(a, 0.3))


@pytest.mark.parametrize("seed", range(3))
def test_batched_rows_equal_one_sample_at_a_time(seed):
    from flowcore.estimators import auroc_sorted, fit_bounds_sorted, true_negative_rate_sorted

    rng = np.random.default_rng(seed)
    ref = np.sort(rng.normal(size=3000).round(2))
    rows = rng.normal(rng.uniform(-1, 1, (24, 1)), rng.uniform(0.5, 2, (24, 1)), (24, 2500))
    rows[::3] = rows[::3].round(2)
    ordered = np.sort(rows, axis=1)
    np.testing.assert_array_equal(
        bits(auroc_sorted(ref, ordered)), bits([reference_auroc(ref, r) for r in rows])
    )
    bounds = fit_bounds_sorted(ref, 0.975)
    np.testing.assert_array_equal(
        bits(true_negative_rate_sorted(bounds, ordered)),
        bits([reference_true_negative_rate(bounds, r) for r in rows]),
    )


@pytest.mark.parametrize(
    ("lower", "upper"),
    [(-1.0, 1.0), (1.0, -1.0), (0.5, 0.5), (-np.inf, 0.0), (0.0, np.inf), (np.nan, 0.2)],
)
def test_sorted_tnr_on_any_bounds(lower, upper):
    from flowcore.estimators import Bounds, true_negative_rate_sorted

    scores = np.random.default_rng(0).normal(size=1001).round(1)
    bounds = Bounds(lower, upper, 0.9)
    assert bits(true_negative_rate_sorted(bounds, np.sort(scores))) == bits(
        reference_true_negative_rate(bounds, scores)
    )


@pytest.mark.parametrize("seed", range(12))
def test_binned_kdes_equal_the_one_at_a_time_kde_bitwise(seed, monkeypatch):
    from flowcore import estimators
    from flowcore.estimators import binned_kdes, kde_binned, overlap_coefficient, overlap_kdes

    a, b = _samples(seed)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        pytest.skip("a sample without spread")
    for n_grid, grid in ((256, None), (97, np.linspace(a.min() - 1, a.max() + 1, 300))):
        g_new, d_new = kde_binned(a, grid, n_grid=n_grid)
        g_ref, d_ref = reference_kde_binned(a, grid, n_grid=n_grid)
        np.testing.assert_array_equal(bits(g_new), bits(g_ref))
        np.testing.assert_array_equal(bits(d_new), bits(d_ref))
    assert bits(overlap_coefficient(a, b)) == bits(reference_overlap_coefficient(a, b))
    # Many rows, in blocks of a few rows (the block size shrunk so that several blocks run).
    rng = np.random.default_rng(seed)
    rows = rng.normal(rng.uniform(-5, 5, (7, 1)), rng.uniform(0.1, 3, (7, 1)), (7, 1500))
    rows[1] = rows[1].round(1)
    monkeypatch.setattr(estimators, "_BLOCK", 3 * 1500)
    kdes = binned_kdes(rows, n_bins=1024 + seed)
    for row, estimate in zip(rows, kdes):
        grid, density = reference_kde_binned(row, n_bins=1024 + seed)
        np.testing.assert_array_equal(bits(estimate.grid(256)), bits(grid))
        np.testing.assert_array_equal(bits(estimate(grid)), bits(density))
    ovl = overlap_kdes(*binned_kdes(rows[:2]))  # OVL's KDEs have the default 4096 bins
    assert bits(ovl) == bits(reference_overlap_coefficient(rows[0], rows[1]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_sorted_and_batched_forms_reject_what_the_old_ones_rejected(bad):
    from flowcore.estimators import (
        auroc_sorted,
        binned_kdes,
        fit_bounds_sorted,
        kde_binned,
        true_negative_rate_sorted,
    )

    good = np.arange(10.0)
    broken = good.copy()
    broken[[3, 7]] = bad
    bounds = fit_bounds(good, 0.9)

    def message(call, *args):
        with pytest.raises(ValueError) as info:
            call(*args)
        return str(info.value)

    assert message(auroc, broken, good) == message(reference_auroc, broken, good)
    assert message(auroc, good, broken) == message(reference_auroc, good, broken)
    assert message(auroc_sorted, np.sort(broken), good) == message(reference_auroc, broken, good)
    assert message(auroc_sorted, good, broken) == message(reference_auroc, good, broken)
    assert message(auroc_sorted, good, np.stack([good, broken])) == message(
        reference_auroc, good, broken
    )
    assert message(fit_bounds_sorted, np.sort(broken), 0.9) == message(
        reference_fit_bounds, broken, 0.9
    )
    assert message(true_negative_rate_sorted, bounds, np.sort(broken)) == message(
        reference_true_negative_rate, bounds, broken
    )
    assert message(kde_binned, broken) == message(reference_kde_binned, broken)
    assert message(binned_kdes, np.stack([good, broken])) == message(reference_kde_binned, broken)
    assert message(overlap_coefficient, good, broken) == message(
        reference_overlap_coefficient, good, broken
    )


def _message(call) -> str:
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize("values", [[], [1.0]])
def test_too_few_values_raise_as_before(values):
    from flowcore.estimators import (
        auroc_sorted,
        fit_bounds_sorted,
        kde_binned,
        true_negative_rate_sorted,
    )

    good = np.arange(5.0)
    bounds = fit_bounds(good)
    for new, old in (
        (lambda: auroc(values, good), lambda: reference_auroc(values, good)),
        (lambda: auroc_sorted(values, good), lambda: reference_auroc(values, good)),
        (lambda: auroc_sorted(good, values), lambda: reference_auroc(good, values)),
        (lambda: fit_bounds_sorted(values), lambda: reference_fit_bounds(values)),
        (
            lambda: true_negative_rate_sorted(bounds, values),
            lambda: reference_true_negative_rate(bounds, values),
        ),
        (lambda: kde_binned(values), lambda: reference_kde_binned(values)),
    ):
        assert _message(new) == _message(old)


def test_degenerate_samples_raise_as_before():
    from flowcore.estimators import (
        auroc_sorted,
        binned_kdes,
        kde_binned,
        quantile_sorted,
        true_negative_rate_sorted,
    )

    with pytest.raises(ValueError, match="values are all equal; a KDE needs some spread"):
        reference_kde_binned(np.ones(5))
    with pytest.raises(ValueError, match="values are all equal; a KDE needs some spread"):
        kde_binned(np.ones(5))
    with pytest.raises(ValueError, match="values are all equal; a KDE needs some spread"):
        binned_kdes(np.stack([np.arange(5.0), np.ones(5)]))
    # All-equal samples are fine for the detection statistics, as before.
    same = np.ones(6)
    assert auroc_sorted(same, same) == reference_auroc(same, same) == 0.5
    assert true_negative_rate_sorted(fit_bounds(same), same) == 0.0
    # A sorted form given an unsorted array says so instead of counting wrong.
    for call in (
        lambda: auroc_sorted([2.0, 1.0, 3.0], [1.0, 2.0]),
        lambda: true_negative_rate_sorted(fit_bounds(same), [2.0, 1.0]),
        lambda: true_negative_rate_sorted(fit_bounds(same), [[1.0, 2.0], [2.0, 1.0]]),
        lambda: quantile_sorted([2.0, 1.0], 0.5),
    ):
        with pytest.raises(ValueError, match="must be sorted in ascending order"):
            call()
    with pytest.raises(ValueError, match=r"q must lie in \[0, 1\]"):
        quantile_sorted([1.0, 2.0], 1.5)


def test_signed_zeros_are_the_only_bits_the_sorted_quantiles_may_change():
    from flowcore.estimators import fit_bounds_sorted

    # np.quantile partitions the sample, np.sort sorts it: both leave -0.0 and 0.0 in some order
    # (they are equal), so a bound on a zero may come out as the other zero. Its value, and every
    # count made with it, is the same.
    x = np.array([-0.0, 0.0] * 50 + [1.0, -1.0])
    new, old = fit_bounds_sorted(np.sort(x), 0.5), reference_fit_bounds(x, 0.5)
    assert (new.lower, new.upper) == old[:2] == (0.0, 0.0)
