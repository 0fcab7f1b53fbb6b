"""The known laws of de Boer (2020): x = u^ψ (its closed-form expected log-likelihood against Monte
Carlo and quadrature, its density's normalisation and agreement with its CDF, its support and the
singularity at 0), the KS and energy-distance sample measures, the two-moons mass outside the moons,
and the PCA counts."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from flowcore import rng
from flowcore.studies.deboer2020.truths import (
    PowerGaussian,
    energy_distance,
    ks_per_coordinate,
    moons_mass_outside,
    pca_components,
)
from flowcore.studies.song2024.deep import truth

PSIS = (1, 2, 3)


def _gen(*names) -> torch.Generator:
    return rng.generator(rng.derived_seed("deboer2020-truths", *names))


# --- PowerGaussian: expected log-likelihood -------------------------------------------------------


@pytest.mark.parametrize("dim", (2, 3))
@pytest.mark.parametrize("psi", PSIS)
def test_expected_log_likelihood_matches_monte_carlo(psi, dim):
    law = PowerGaussian(dim, psi)
    log_p = law.log_prob(law.sample(20000, _gen("mc", psi, dim)))
    assert torch.isfinite(log_p).all()
    se = float(log_p.std()) / math.sqrt(len(log_p))
    assert abs(float(log_p.mean()) - law.expected_log_likelihood()) < 4 * se


@pytest.mark.parametrize("psi", PSIS)
def test_expected_log_likelihood_matches_quadrature(psi):
    """D · ∫ φ(u) log p₁(u^ψ) du, by adaptive quadrature split at the singular point u = 0."""
    law = PowerGaussian(1, psi)

    def integrand(u):
        return stats.norm.pdf(u) * float(
            law.log_prob_1d(torch.tensor([u**psi], dtype=torch.float64))[0]
        )

    value = sum(
        integrate.quad(integrand, a, b, epsabs=1e-11, epsrel=1e-11, limit=200)[0]
        for a, b in ((-np.inf, 0), (0, np.inf))
    )
    assert value == pytest.approx(law.expected_log_likelihood(), abs=1e-8)
    assert 4 * value == pytest.approx(PowerGaussian(4, psi).expected_log_likelihood(), abs=1e-7)


def test_expected_log_abs_normal_and_gaussian_entropy():
    """The two constants of the closed form: E log|u| = −(γ + log 2)/2 and
    E log φ(u) = −(1 + log 2π)/2."""
    e_log_abs = (
        2 * integrate.quad(lambda u: stats.norm.pdf(u) * math.log(u), 0, np.inf, epsabs=1e-12)[0]
    )
    assert e_log_abs == pytest.approx(-(np.euler_gamma + math.log(2)) / 2, abs=1e-9)
    for dim in (2, 3, 4):
        assert PowerGaussian(dim, 1).expected_log_likelihood() == pytest.approx(
            -dim / 2 * (1 + math.log(2 * math.pi))
        )
        assert PowerGaussian(dim, 2).entropy() == -PowerGaussian(dim, 2).expected_log_likelihood()


# --- PowerGaussian: density, CDF, support ---------------------------------------------------------


def _density(law: PowerGaussian):
    return lambda x: float(torch.exp(law.log_prob_1d(torch.tensor([x], dtype=torch.float64)))[0])


@pytest.mark.parametrize("psi", PSIS)
def test_log_prob_integrates_to_one_by_quadrature(psi):
    """QUADPACK's extrapolation handles the integrable |x|^{-(1−1/ψ)} singularity at the endpoint
    0."""
    law = PowerGaussian(1, psi)
    pieces = [(0, 1), (1, np.inf)] + ([(-1, 0), (-np.inf, -1)] if psi % 2 else [])
    mass = sum(integrate.quad(_density(law), a, b, epsabs=1e-10, limit=200)[0] for a, b in pieces)
    assert mass == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("psi", PSIS)
def test_log_prob_on_a_grid_away_from_zero_plus_the_mass_near_zero(psi):
    """Trapezoid on a fine log-spaced grid over ε ≤ |x| ≤ 9^ψ (|u| ≤ 9), plus the analytic mass
    F(ε) − F(−ε) of |x| < ε, where the density diverges."""
    law, eps = PowerGaussian(1, psi), 1e-3
    grid = torch.logspace(math.log10(eps), psi * math.log10(9.0), 200001, dtype=torch.float64)
    density = torch.exp(law.log_prob_1d(grid))
    mass = float(torch.trapezoid(density, grid))
    if psi % 2:
        mass += float(torch.trapezoid(torch.exp(law.log_prob_1d(-grid)), grid))
    near_zero = law.cdf_1d(eps) - law.cdf_1d(-eps)
    assert mass + float(near_zero) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("psi", PSIS)
def test_density_is_the_derivative_of_the_cdf(psi):
    law = PowerGaussian(1, psi)
    x = np.array([-4.0, -1.3, -0.2, 0.05, 0.5, 1.0, 2.7, 9.0])
    h = 1e-6
    numeric = (law.cdf_1d(x + h) - law.cdf_1d(x - h)) / (2 * h)
    analytic = torch.exp(law.log_prob_1d(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(numeric, analytic, rtol=1e-6, atol=1e-9)


def test_cdf_limits_and_support():
    for psi in PSIS:
        law = PowerGaussian(1, psi)
        np.testing.assert_allclose(law.cdf_1d([-1e9, 1e9]), [0.0, 1.0], atol=1e-12)
        assert law.cdf_1d(0.0) == pytest.approx(0.0 if psi % 2 == 0 else 0.5)
    # the preimage sign(x)|x|^{1/ψ}: P(x ≤ t) = P(u ≤ t^{1/3}) for ψ = 3, and P(|u| ≤ √t) for ψ = 2
    assert PowerGaussian(1, 3).cdf_1d(-8.0) == pytest.approx(stats.norm.cdf(-2.0))
    assert PowerGaussian(1, 2).cdf_1d(4.0) == pytest.approx(stats.chi2(1).cdf(4.0))


def test_log_prob_support_and_the_singularity_at_zero():
    even, odd, gauss = PowerGaussian(2, 2), PowerGaussian(2, 3), PowerGaussian(2, 1)
    # off the support of an even ψ: −inf, even when the other coordinate is 0 (+inf there, not nan)
    lp = even.log_prob(
        torch.tensor([[-1.0, 1.0], [0.0, -1.0], [-1e-300, 2.0]], dtype=torch.float64)
    )
    assert torch.equal(lp, torch.full((3,), -math.inf, dtype=torch.float64))
    # at 0 the density of ψ ≥ 2 diverges (returned as +inf); for ψ = 1 it is finite
    assert float(even.log_prob(torch.tensor([[0.0, 1.0]]))[0]) == math.inf
    assert float(odd.log_prob(torch.tensor([[0.0, -1.0]]))[0]) == math.inf
    assert float(gauss.log_prob(torch.zeros(1, 2))[0]) == pytest.approx(-math.log(2 * math.pi))
    # odd ψ: symmetric density on the whole line; near 0 large but finite
    x = torch.tensor([[0.3, -2.0], [-0.3, 2.0]], dtype=torch.float64)
    assert float(odd.log_prob(x)[0]) == pytest.approx(float(odd.log_prob(x)[1]))
    assert torch.isfinite(
        odd.log_prob(torch.tensor([[1e-200, -1e-200]], dtype=torch.float64))
    ).all()
    # matches scipy's chi-square(1) for ψ = 2
    t = torch.tensor([0.01, 0.5, 3.0], dtype=torch.float64)
    np.testing.assert_allclose(
        PowerGaussian(1, 2).log_prob_1d(t).numpy(), stats.chi2(1).logpdf(t.numpy()), rtol=1e-12
    )


def test_power_gaussian_validation_and_sampling():
    with pytest.raises(ValueError, match="psi"):
        PowerGaussian(2, 0)
    with pytest.raises(ValueError, match="dim"):
        PowerGaussian(0, 1)
    with pytest.raises(ValueError, match="shape"):
        PowerGaussian(2, 1).log_prob(torch.zeros(3, 3))
    assert PowerGaussian(2.0, 3.0) == PowerGaussian(2, 3)
    u = torch.randn(5, 2, generator=rng.generator(3), dtype=torch.float64)
    assert torch.equal(PowerGaussian(2, 3).sample(5, rng.generator(3)), u**3)


# --- sample measures ------------------------------------------------------------------------------


@pytest.mark.parametrize("psi", PSIS)
def test_ks_is_small_for_true_samples_and_large_for_the_wrong_psi(psi):
    law = PowerGaussian(2, psi)
    assert (ks_per_coordinate(law.sample(2000, _gen("ks", psi)), law) < 0.05).all()
    for wrong in PSIS:
        if wrong != psi:
            ks = ks_per_coordinate(
                PowerGaussian(2, wrong).sample(2000, _gen("ks-wrong", psi, wrong)), law
            )
            assert (ks > 0.1).all(), (psi, wrong, ks)  # the 5 % critical value is 0.03


def test_ks_agrees_with_scipy_on_a_named_law():
    x = PowerGaussian(1, 2).sample(500, _gen("ks-chi2"))
    assert ks_per_coordinate(x, PowerGaussian(1, 2))[0] == pytest.approx(
        stats.kstest(x[:, 0].numpy(), stats.chi2(1).cdf).statistic
    )


def test_energy_distance_hand_example_is_the_u_statistic():
    # cross mean 1, within-a mean 1 (one pair), within-b mean 2 → 2·1 − 1 − 2 = −1 (a V-statistic
    # would give 0.5)
    assert energy_distance([[0.0], [1.0]], [[0.0], [2.0]]) == pytest.approx(-1.0)


def test_energy_distance_against_scipy_in_one_dimension():
    """SciPy's 1-D energy distance is √(V-statistic); V = U + mean within-a / n + mean
    within-b / m."""
    g = rng.numpy_stream(rng.derived_seed("deboer2020-truths", "ed-scipy"))
    a, b = g.standard_normal(300), 0.5 + 1.5 * g.standard_normal(200)
    within = [np.abs(s[:, None] - s[None]).sum() / (len(s) * (len(s) - 1)) for s in (a, b)]
    v_statistic = energy_distance(a, b) + within[0] / len(a) + within[1] / len(b)
    assert math.sqrt(v_statistic) == pytest.approx(stats.energy_distance(a, b), rel=1e-10)


def test_energy_distance_near_zero_for_one_law_and_positive_for_different_laws():
    same = [
        energy_distance(
            PowerGaussian(3, psi).sample(2000, _gen("ed", psi, 0)),
            PowerGaussian(3, psi).sample(2000, _gen("ed", psi, 1)),
        )
        for psi in PSIS
    ]
    assert max(abs(v) for v in same) < 0.01, same
    x1 = PowerGaussian(3, 1).sample(2000, _gen("ed", 1, 2))
    for psi in (2, 3):
        assert energy_distance(x1, PowerGaussian(3, psi).sample(2000, _gen("ed", psi, 3))) > 0.1
    shifted = energy_distance(x1, PowerGaussian(3, 1).sample(2000, _gen("ed", 1, 4)) + 0.5)
    assert shifted > 10 * max(abs(v) for v in same)


def test_energy_distance_subsampling_is_seeded_and_symmetric():
    a, b = (
        PowerGaussian(2, 1).sample(3000, _gen("ed-sub", 0)),
        PowerGaussian(2, 3).sample(2500, _gen("ed-sub", 1)),
    )
    first = energy_distance(a, b, max_points=500, seed=7)
    assert first == energy_distance(a, b, max_points=500, seed=7)
    assert first != energy_distance(a, b, max_points=500, seed=8)
    assert energy_distance(a[:400], b[:300]) == pytest.approx(
        energy_distance(b[:300], a[:400]), rel=1e-12
    )
    with pytest.raises(ValueError, match="same dimension"):
        energy_distance(a, b[:, :1])


def test_energy_distance_on_the_cdf_scale_is_not_swamped_by_far_samples_and_still_separates_laws():
    """The D7 sample measure: energy distance after the truth's CDF per coordinate."""
    law = PowerGaussian(2, 3)
    x, y = law.sample(1000, _gen("cdf", 0)), law.sample(1000, _gen("cdf", 1))
    far = x.clone()
    far[:5] = 1e12  # a heavy-tailed model's few far samples
    assert energy_distance(far, y) > 1e6
    assert abs(energy_distance(law.cdf_1d(far), law.cdf_1d(y))) < 0.01
    other = PowerGaussian(2, 1).sample(1000, _gen("cdf", 2))
    assert (
        energy_distance(law.cdf_1d(other), law.cdf_1d(y)) > 0.005
    )  # the null: sd 0.0006 at n = 1000


# --- half-moons -----------------------------------------------------------------------------------

EXTENT = (-2.0, 3.0, -1.5, 2.0)


def test_moons_mass_outside_of_the_truth_is_tiny_and_its_grid_mass_is_one():
    m = moons_mass_outside(truth("moons").log_prob, math.log(1e-3), EXTENT, n_grid=100)
    assert m.outside < 1e-3
    assert m.total == pytest.approx(1.0, abs=1e-4)


def test_moons_mass_outside_of_a_gaussian_is_large():
    centre = torch.tensor([0.5, 0.25], dtype=torch.float64)
    scale = 0.6

    def gaussian(x):
        return -0.5 * (((x - centre) / scale) ** 2).sum(1) - math.log(2 * math.pi * scale**2)

    m = moons_mass_outside(gaussian, math.log(1e-3), EXTENT, n_grid=100)
    assert m.total == pytest.approx(1.0, abs=0.01)
    assert m.outside > 0.2


def test_moons_mass_outside_leaves_out_unresolved_cells_and_bounds_what_they_hold():
    centre = torch.tensor([0.5, 0.25], dtype=torch.float64)
    scale = 0.6

    def gaussian(x):
        return -0.5 * (((x - centre) / scale) ** 2).sum(1) - math.log(2 * math.pi * scale**2)

    def overflowing(
        x,
    ):  # NaN and +inf where a flow's pass overflows far from the data, −inf is a resolved 0
        log_q = gaussian(x)
        log_q[x[:, 1] > 1.0] = math.nan
        log_q[x[:, 0] > 2.5] = math.inf
        log_q[x[:, 0] < -1.5] = -math.inf
        return log_q

    whole = moons_mass_outside(gaussian, math.log(1e-3), EXTENT, n_grid=100)
    m = moons_mass_outside(overflowing, math.log(1e-3), EXTENT, n_grid=100)
    assert whole.unresolved == 0 and m.unresolved > 0
    assert m.total < whole.total - 0.05  # the unresolved cells held mass
    assert m.outside < whole.outside <= m.most_outside  # the bounds hold the whole grid's value


def test_moons_mass_outside_validates_the_grid():
    with pytest.raises(ValueError, match="grid_extent"):
        moons_mass_outside(truth("moons").log_prob, -5.0, (1.0, 0.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="grid_extent"):
        moons_mass_outside(truth("moons").log_prob, -5.0, (0.0, 1.0, -1.0))


# --- PCA ------------------------------------------------------------------------------------------


def _known_spectrum(variances, extra_zero_dims=0, n=500):
    """Rows whose sample covariance has exactly the eigenvalues ``variances`` (plus zeros),
    rotated."""
    g = rng.numpy_stream(rng.derived_seed("deboer2020-truths", "pca"))
    k, d = len(variances), len(variances) + extra_zero_dims
    z = g.standard_normal((n, k))
    z -= z.mean(0)
    u, _, _ = np.linalg.svd(z, full_matrices=False)  # orthonormal, centred columns
    z = u * math.sqrt(n - 1)  # sample covariance exactly I
    x = np.zeros((n, d))
    x[:, :k] = z * np.sqrt(variances)
    rotation, _ = np.linalg.qr(g.standard_normal((d, d)))
    return x @ rotation.T + g.standard_normal(d)


def test_pca_components_on_a_known_spectrum():
    x = _known_spectrum(
        [50.0, 30.0, 15.0, 4.0, 0.9, 0.1], extra_zero_dims=2
    )  # cumulative 0.5 0.8 0.95 0.99 0.999 1
    assert pca_components(x, levels=(0.4, 0.9, 0.96, 0.9995)) == {
        0.4: 1,
        0.9: 3,
        0.96: 4,
        0.9995: 6,
    }
    assert pca_components(x) == {0.95: 3, 0.999: 5}  # a level reached exactly counts
    assert pca_components(x, levels=(1.0,)) == {1.0: 6}  # the two zero directions are never needed
    with pytest.raises(ValueError, match="levels"):
        pca_components(x, levels=(1.5,))
