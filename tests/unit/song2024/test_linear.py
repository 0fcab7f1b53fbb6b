"""The linear theory of Song et al. (2024): every closed form against L-BFGS on the objective as
written.

The optimiser works on a full d×d matrix U and b (analytic gradient, itself checked against finite
differences); U is identified only up to a right orthogonal factor, so fits are compared through
M = UUᵀ and through b after aligning that factor.
"""

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import check_grad, minimize, minimize_scalar
from scipy.stats import multivariate_normal

from flowcore.studies.song2024 import linear
from flowcore.studies.song2024.linear import (
    decoupled,
    density_1d,
    fig2_sample,
    kl_gaussian,
    mle,
    nll,
    objective,
    pseudo_sample_fit,
    regularised,
)

DIMS = (2, 3, 5)
SEEDS = (0, 1, 2)
RTOL = 1e-4


# --- helpers --------------------------------------------------------------------------------------


def _rotation(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _data(seed, d, n):
    """Gaussian data with a non-zero mean (so the sign of b matters) and eigenvalues of order
    0.3–4."""
    rng = np.random.default_rng([seed, d, n])
    A = _rotation(rng, d) * rng.uniform(0.5, 2.0, size=d)
    return rng.normal(1.5, 1.0, size=d) + rng.standard_normal((n, d)) @ A.T


def _spd(seed, d):
    """A random SPD matrix with eigenvalues in [0.5, 3] (a target covariance G)."""
    rng = np.random.default_rng([seed, d, 99])
    Q = _rotation(rng, d)
    return Q @ np.diag(rng.uniform(0.5, 3.0, size=d)) @ Q.T


def _grad(U, b, X, alpha, kind, G):
    """∂J/∂U, ∂J/∂b of linear.objective (written out here, checked by test_gradient_is_right)."""
    N, d = X.shape
    Z = X @ U + b
    U_inv_T = np.linalg.inv(U).T
    gU = X.T @ Z / N - U_inv_T
    if alpha > 0:
        if kind == "l2":
            gU = gU + alpha / N * 2 * U
        else:
            G = np.eye(d) if G is None else G
            gU = gU + alpha / N * (G @ U - U_inv_T)
    return gU, Z.mean(axis=0)


def _lbfgs(fun_grad, d, x0=None):
    """Minimise fun_grad(U, b) -> (value, gU, gb) over a full U (d×d) and b from U = I, b = 0."""

    def flat(x):
        U, b = x[: d * d].reshape(d, d), x[d * d :]
        value, gU, gb = fun_grad(U, b)
        return value, np.concatenate([gU.ravel(), gb])

    x0 = np.concatenate([np.eye(d).ravel(), np.zeros(d)]) if x0 is None else x0
    result = minimize(
        flat,
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 20000, "maxcor": 30, "ftol": 1e-15, "gtol": 1e-11},
    )
    return result.x[: d * d].reshape(d, d), result.x[d * d :], result


def _fit_objective(X, alpha, kind, G):
    d = X.shape[1]

    def fun_grad(U, b):
        return (objective(U, b, X, alpha, kind, G), *_grad(U, b, X, alpha, kind, G))

    return _lbfgs(fun_grad, d)


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def _assert_same_fit(U_opt, b_opt, fit, X):
    M_opt = U_opt @ U_opt.T
    assert _rel(M_opt, fit.M) < RTOL
    # Align the orthogonal factor: U_opt = M^{1/2} Q, so the optimiser's b is Qᵀ fit.b.
    Q = np.linalg.solve(fit.U, U_opt)
    assert np.allclose(Q.T @ Q, np.eye(X.shape[1]), atol=1e-4)
    assert np.linalg.norm(b_opt - Q.T @ fit.b) < RTOL * (1 + np.linalg.norm(fit.b))
    # b = -Uᵀ x̄ (Theorem 1 prints +Uᵀ x̄), so the fitted mean is x̄.
    assert np.allclose(b_opt, -U_opt.T @ X.mean(0), atol=1e-5 * (1 + np.linalg.norm(b_opt)))
    assert np.allclose(fit.mean, X.mean(0))


CASES = ("mle", "l2", "kl_identity", "kl_G")


def _case(case, seed, d):
    """(alpha, kind, G) of a case; alpha = 0 is the MLE."""
    return {
        "mle": (0.0, "l2", None),
        "l2": (7.5, "l2", None),
        "kl_identity": (7.5, "kl", None),
        "kl_G": (12.0, "kl", _spd(seed, d)),
    }[case]


# --- nll and the objective ------------------------------------------------------------------------


@pytest.mark.parametrize("d", DIMS)
def test_nll_is_the_mean_gaussian_nll_and_eq3_over_n(d):
    X = _data(0, d, 30)
    rng = np.random.default_rng(d)
    U, b = np.eye(d) + 0.3 * rng.standard_normal((d, d)), rng.standard_normal(d)
    mean, cov = -np.linalg.solve(U.T, b), np.linalg.inv(U @ U.T)
    assert math.isclose(
        nll(U, b, X), -multivariate_normal(mean, cov).logpdf(X).mean(), rel_tol=1e-12
    )
    eq3 = np.sum((X @ U + b) ** 2) / 2 - len(X) * np.log(abs(np.linalg.det(U)))
    assert math.isclose(nll(U, b, X), eq3 / len(X) + d / 2 * math.log(2 * math.pi), rel_tol=1e-12)
    assert nll(np.zeros((d, d)), b, X) == math.inf


@pytest.mark.parametrize("kind", linear.KINDS)
@pytest.mark.parametrize("d", DIMS)
def test_gradient_is_right(d, kind):
    X = _data(1, d, 20)
    G = _spd(1, d) if kind == "kl" else None
    rng = np.random.default_rng(d)
    x0 = np.concatenate(
        [(np.eye(d) + 0.2 * rng.standard_normal((d, d))).ravel(), rng.standard_normal(d)]
    )

    def f(x):
        return objective(x[: d * d].reshape(d, d), x[d * d :], X, 3.0, kind, G)

    def g(x):
        gU, gb = _grad(x[: d * d].reshape(d, d), x[d * d :], X, 3.0, kind, G)
        return np.concatenate([gU.ravel(), gb])

    assert check_grad(f, g, x0) < 1e-5 * (1 + np.linalg.norm(g(x0)))


def test_objective_is_nll_plus_alpha_over_n_times_penalty():
    d, X = 3, _data(2, 3, 12)
    U, b = np.diag([1.0, 2.0, 0.5]), np.ones(3)
    G = np.diag([2.0, 1.0, 3.0])
    M = U @ U.T
    assert objective(U, b, X, 0.0, "kl", G) == nll(U, b, X)
    assert math.isclose(objective(U, b, X, 6.0, "l2"), nll(U, b, X) + 6.0 / 12 * np.trace(M))
    kl = kl_gaussian(
        np.zeros(d), G, np.zeros(d), np.linalg.inv(M)
    )  # R_kl = KL(N(0, G) ‖ N(0, M⁻¹))
    assert math.isclose(
        objective(U, b, X, 6.0, "kl", G), nll(U, b, X) + 6.0 / 12 * kl, rel_tol=1e-12
    )


# --- closed forms against L-BFGS ------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d", DIMS)
def test_closed_form_minimises_the_objective(d, seed, case):
    X = _data(seed, d, 40)
    alpha, kind, G = _case(case, seed, d)
    fit = mle(X) if alpha == 0 else regularised(X, alpha, kind, G)
    U_opt, b_opt, result = _fit_objective(X, alpha, kind, G)
    assert result.success, result.message
    _assert_same_fit(U_opt, b_opt, fit, X)
    assert objective(fit.U, fit.b, X, alpha, kind, G) <= result.fun + 1e-10
    # The closed forms themselves.
    T = np.cov(X.T, bias=True)
    expected = {"mle": T, "l2": T + 2 * alpha / 40 * np.eye(d)}.get(case)
    if expected is None:
        expected = (40 * T + alpha * (np.eye(d) if G is None else G)) / (40 + alpha)
    assert np.allclose(fit.cov, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", linear.KINDS)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("n", ("one", "d"))
def test_regularised_fits_exist_when_n_le_d(n, d, kind):
    N = 1 if n == "one" else d
    X = _data(3, d, N)
    G = _spd(3, d) if kind == "kl" else None
    fit = regularised(X, float(N), kind, G)
    U_opt, b_opt, result = _fit_objective(X, float(N), kind, G)
    assert result.success, result.message
    _assert_same_fit(U_opt, b_opt, fit, X)


def test_regularised_with_alpha_zero_is_the_mle():
    X = _data(4, 3, 25)
    for kind in linear.KINDS:
        assert np.allclose(regularised(X, 0, kind).M, mle(X).M)
        assert np.allclose(decoupled(X, 0, kind).cov_eigs, np.linalg.eigvalsh(mle(X).cov)[::-1])


# --- the printed paper, checked -------------------------------------------------------------------


@pytest.mark.parametrize("d", DIMS)
def test_printed_sign_of_b_is_wrong(d):
    """Theorem 1 prints b = +Uᵀx̄; the minimiser is b = −Uᵀx̄, and + costs exactly 2‖Uᵀx̄‖²."""
    X = _data(5, d, 30)
    fit = mle(X)
    xbar = X.mean(0)
    plus, minus = nll(fit.U, fit.U.T @ xbar, X), nll(fit.U, -fit.U.T @ xbar, X)
    assert math.isclose(plus - minus, 2 * np.sum((fit.U.T @ xbar) ** 2), rel_tol=1e-9)
    assert plus - minus > 0.1


@pytest.mark.parametrize("d", DIMS)
def test_printed_l2_and_kl_constants_need_other_weightings(d):
    N, alpha = 20, 5.0
    X = _data(6, d, N)
    T = np.cov(X.T, bias=True)
    G = _spd(6, d)
    # "T̂ = T + αI" is not the minimiser of Eq. 3 + α‖U‖²_F ...
    printed = linear._fit(T + alpha * np.eye(d), X.mean(0))
    ours = regularised(X, alpha, "l2")
    assert (
        objective(printed.U, printed.b, X, alpha, "l2")
        > objective(ours.U, ours.b, X, alpha, "l2") + 1e-3
    )
    # ... it is the minimiser of mean NLL + (α/2)‖U‖²_F, i.e. Eq. 3 + (Nα/2)‖U‖²_F.
    assert np.allclose(regularised(X, N * alpha / 2, "l2").cov, T + alpha * np.eye(d))

    # With the printed "KL" = tr(MG) − log det(MG) (no ½) as the penalty, Eq. 7 gets 2α:
    def printed_kl(U, b):
        M_inv_T = np.linalg.inv(U).T
        value = nll(U, b, X) + alpha / N * (
            np.sum((G @ U) * U) - np.linalg.slogdet(G)[1] - 2 * np.linalg.slogdet(U)[1]
        )
        gU, gb = _grad(U, b, X, 0.0, "kl", None)
        return value, gU + alpha / N * (2 * G @ U - 2 * M_inv_T), gb

    U_opt, _, result = _lbfgs(printed_kl, d)
    assert result.success
    assert _rel(np.linalg.inv(U_opt @ U_opt.T), (N * T + 2 * alpha * G) / (N + 2 * alpha)) < RTOL
    assert _rel(np.linalg.inv(U_opt @ U_opt.T), (N * T + alpha * G) / (N + alpha)) > 1e-2


@pytest.mark.parametrize("d", DIMS)
def test_printed_eq4_has_its_stationary_point_at_twice_t(d):
    """Eq. 4 as printed, Tr(TM) − ½ log det M, is minimised at M⁻¹ = 2T (Eq. 5 has the consistent
    weights)."""
    T = np.cov(_data(7, d, 30).T, bias=True)

    def eq4(U, b):
        return np.sum((T @ U) * U) - np.linalg.slogdet(U)[1], 2 * T @ U - np.linalg.inv(U).T, 0 * b

    U_opt, _, result = _lbfgs(eq4, d)
    assert result.success
    assert _rel(np.linalg.inv(U_opt @ U_opt.T), 2 * T) < RTOL


@pytest.mark.parametrize("d", DIMS)
def test_trace_inequality_is_a_min_with_reversed_order(d):
    """Theorem 2 prints max_W Tr(TWᵀΓW) = Tr(ΛΓ); the NLL needs the min, which pairs λ↓ with γ↑."""
    rng = np.random.default_rng(d)
    T = np.cov(_data(8, d, 30).T, bias=True)
    lam, W = np.linalg.eigh(T)
    lam, W = lam[::-1], W[:, ::-1]  # descending
    gamma = np.sort(rng.uniform(0.2, 3.0, size=d))  # ascending
    lo, hi = lam @ gamma, lam @ gamma[::-1]

    def trace(Q):
        return np.trace(T @ Q @ np.diag(gamma) @ Q.T)

    values = [trace(W[:, list(p)]) for p in itertools.permutations(range(d))]
    assert math.isclose(min(values), lo, rel_tol=1e-10) and math.isclose(
        max(values), hi, rel_tol=1e-10
    )
    assert math.isclose(
        trace(W), lo, rel_tol=1e-10
    )  # M's eigenvectors on T's, γ ascending where λ descends
    random = [trace(_rotation(rng, d)) for _ in range(500)]
    assert lo - 1e-9 <= min(random) and max(random) <= hi + 1e-9
    # The MLE found by L-BFGS has exactly this reversed pairing.
    X = _data(8, d, 30)
    U_opt, _, _ = _fit_objective(X, 0.0, "l2", None)
    prec = np.einsum("ji,jk,ki->i", W, U_opt @ U_opt.T, W)
    assert np.all(np.diff(prec) > 0) and np.allclose(prec, 1 / lam, rtol=RTOL)


# --- pseudo-samples (Eq. 6 ≡ Eq. 7) ---------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d", DIMS)
def test_pseudo_samples_equal_the_kl_fit(d, seed):
    X = _data(seed, d, 15)
    G = _spd(seed, d)
    for alpha in (0.5, 3.7, 40.0):
        kl, pseudo = regularised(X, alpha, "kl", G), pseudo_sample_fit(X, alpha, G)
        assert np.allclose(pseudo.M, kl.M, rtol=1e-10) and np.allclose(
            pseudo.b, kl.b, rtol=1e-10, atol=1e-12
        )
    # Explicit, equally weighted pseudo-samples: N1 points with mean x̄ and biased covariance G,
    # then mle().
    n1 = d + 3
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(np.column_stack([np.ones(n1), rng.standard_normal((n1, d))]))
    Z = math.sqrt(n1) * Q[:, 1:]  # columns orthonormal and ⟂ 1: ZᵀZ/N1 = I, column means 0
    points = X.mean(0) + Z @ np.linalg.cholesky(G).T
    assert np.allclose(np.cov(points.T, bias=True), G) and np.allclose(points.mean(0), X.mean(0))
    augmented = mle(np.vstack([X, points]))
    assert np.allclose(augmented.M, regularised(X, n1, "kl", G).M, rtol=1e-10)
    assert np.allclose(augmented.M, pseudo_sample_fit(X, n1, G).M, rtol=1e-10)


def test_pseudo_samples_rescue_n_le_d():
    X = _data(9, 5, 2)
    with pytest.raises(ValueError, match="N > d"):
        mle(X)
    assert np.allclose(pseudo_sample_fit(X, 4.0).M, regularised(X, 4.0, "kl").M)


# --- decoupling (Theorem 2 / Eq. 5) ---------------------------------------------------------------


def _commuting_g(X, seed):
    rng = np.random.default_rng(seed)
    _, W = np.linalg.eigh(np.cov(X.T, bias=True))
    return W @ np.diag(rng.uniform(0.5, 3.0, size=X.shape[1])) @ W.T


@pytest.mark.parametrize("case", ("mle", "l2", "kl_identity", "kl_commuting"))
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d", DIMS)
def test_decoupled_solves_the_1d_problems(d, seed, case):
    N = 30
    X = _data(seed, d, N)
    alpha, kind, G = {
        "mle": (0.0, "l2", None),
        "l2": (6.0, "l2", None),
        "kl_identity": (6.0, "kl", None),
    }.get(case, (6.0, "kl", _commuting_g(X, seed)))
    sol = decoupled(X, alpha, kind, G)
    W = sol.directions
    assert np.allclose(W.T @ W, np.eye(d)) and np.all(np.diff(sol.t_eigs) <= 0)
    # Each 1-D problem f_i(γ) = ½(λγ − log γ) + (α/N) r_i(γ), solved numerically.
    for lam, g, cov in zip(sol.t_eigs, sol.g_eigs, sol.cov_eigs):

        def f(log_gamma, lam=lam, g=g):
            gamma = math.exp(log_gamma)
            r = gamma if kind == "l2" else 0.5 * (g * gamma - 1 - math.log(g) - log_gamma)
            return 0.5 * (lam * gamma - log_gamma) + alpha / N * r

        best = minimize_scalar(f, bracket=(-5.0, 5.0), tol=1e-12)
        assert math.isclose(math.exp(-best.x), cov, rel_tol=1e-6)
    # The matrix solution is diagonal in these directions with these eigenvalues ...
    fit = mle(X) if alpha == 0 else regularised(X, alpha, kind, G)
    assert np.allclose(W.T @ fit.cov @ W, np.diag(sol.cov_eigs), atol=1e-10 * np.max(sol.cov_eigs))
    # ... and the objective of any M on these directions is the sum of the 1-D objectives.
    gamma = np.random.default_rng(seed).uniform(0.3, 2.0, size=d)
    U = W @ np.diag(np.sqrt(gamma)) @ W.T
    r = (
        gamma
        if kind == "l2"
        else 0.5 * (sol.g_eigs * gamma - 1 - np.log(sol.g_eigs) - np.log(gamma))
    )
    separable = np.sum(
        0.5 * (sol.t_eigs * gamma - np.log(gamma)) + alpha / N * r
    ) + d / 2 * math.log(2 * math.pi)
    assert math.isclose(objective(U, -U.T @ X.mean(0), X, alpha, kind, G), separable, rel_tol=1e-10)


def test_decoupled_needs_a_commuting_g_and_handles_n_le_d():
    X = _data(10, 3, 30)
    with pytest.raises(ValueError, match="G must share T's eigenvectors"):
        decoupled(X, 1.0, "kl", np.diag([1.0, 2.0, 3.0]) + 0.5)
    X = _data(10, 4, 3)  # rank T = 2: zero eigenvalues, fine with alpha > 0
    sol = decoupled(X, 2.0, "kl")
    assert np.allclose(sol.t_eigs[-2:], 0, atol=1e-12)
    assert np.allclose(np.sort(sol.cov_eigs), np.linalg.eigvalsh(regularised(X, 2.0, "kl").cov))
    with pytest.raises(ValueError, match="N > d"):
        decoupled(X, 0.0, "kl")


# --- N ≤ d: no MLE --------------------------------------------------------------------------------


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("n", ("one", "d"))
def test_mle_raises_and_nll_is_unbounded_when_n_le_d(n, d):
    N = 1 if n == "one" else d
    X = _data(11, d, N)
    with pytest.raises(ValueError, match="N > d"):
        mle(X)
    # A unit null direction of T: vᵀ(x_i − x̄) = 0 for every i.
    _, _, Vt = np.linalg.svd(np.vstack([X - X.mean(0), np.zeros((1, d))]))
    v = Vt[-1]
    assert np.allclose((X - X.mean(0)) @ v, 0, atol=1e-10)
    U0 = np.eye(d)
    values = []
    for s in (1.0, 1e3, 1e6, 1e8):
        U = (np.eye(d) + (s - 1) * np.outer(v, v)) @ U0
        values.append(nll(U, -U.T @ X.mean(0), X))
        assert math.isclose(values[0] - values[-1], math.log(s), abs_tol=1e-6)
        if s > 1e3:  # with alpha > 0 the same path goes up, not down
            for kind in linear.KINDS:
                assert objective(U, -U.T @ X.mean(0), X, 1.0, kind) > objective(
                    U0, -X.mean(0), X, 1.0, kind
                )
    assert values[-1] < values[0] - 18  # and on without bound: log s


def test_mle_raises_for_degenerate_data_with_n_gt_d():
    X = np.column_stack([np.arange(10.0), 2 * np.arange(10.0)])  # on a line
    with pytest.raises(ValueError, match="T is singular"):
        mle(X)


# --- kl_gaussian ----------------------------------------------------------------------------------


def test_kl_gaussian_known_values():
    assert kl_gaussian([0.0], [[1.0]], [1.0], [[1.0]]) == 0.5
    assert math.isclose(kl_gaussian([0.0], [[4.0]], [0.0], [[1.0]]), 0.5 * (4 - 1 - math.log(4)))
    m, S = np.array([1.0, -2.0, 0.5]), _spd(0, 3)
    assert abs(kl_gaussian(m, S, m, S)) < 1e-12
    # Diagonal Gaussians: the sum of 1-D KLs.
    s0, s1, m0, m1 = (
        np.array([0.5, 2.0]),
        np.array([1.5, 0.7]),
        np.array([0.0, 1.0]),
        np.array([2.0, -1.0]),
    )
    one_d = 0.5 * (s0 / s1 + (m1 - m0) ** 2 / s1 - 1 + np.log(s1 / s0))
    assert math.isclose(kl_gaussian(m0, np.diag(s0), m1, np.diag(s1)), one_d.sum(), rel_tol=1e-12)


@pytest.mark.parametrize("d", DIMS)
def test_kl_gaussian_matches_monte_carlo(d):
    rng = np.random.default_rng(d)
    m0, m1 = rng.standard_normal(d), rng.standard_normal(d)
    S0, S1 = _spd(1, d), _spd(2, d)
    p0, p1 = multivariate_normal(m0, S0), multivariate_normal(m1, S1)
    x = p0.rvs(size=100_000, random_state=rng)
    terms = p0.logpdf(x) - p1.logpdf(x)
    estimate, se = terms.mean(), terms.std() / math.sqrt(len(terms))
    exact = kl_gaussian(m0, S0, m1, S1)
    assert abs(estimate - exact) < 5 * se
    assert not math.isclose(exact, kl_gaussian(m1, S1, m0, S0), rel_tol=1e-3)  # not symmetric


# --- Fig. 2 analogue ------------------------------------------------------------------------------


@pytest.mark.parametrize("delta", linear.FIG2_DELTAS)
def test_density_1d_fig2_behaviour(delta):
    data = fig2_sample(delta)
    grid = np.linspace(-60, 60, 24001)
    for kind in linear.KINDS:
        for alpha in linear.FIG2_ALPHAS:
            p = density_1d(grid, kind, alpha, data)
            assert math.isclose(np.trapezoid(p, grid), 1.0, rel_tol=1e-6)
        # α = 0: the dotted curve N(0, δ).
        assert np.allclose(
            density_1d(grid, kind, 0.0, data),
            np.exp(-(grid**2) / (2 * delta)) / math.sqrt(2 * math.pi * delta),
        )
    # L2: the peak falls towards 0 as α grows ("collapse"); KL: tends to N(0, G = 1).
    peaks = [float(density_1d(0.0, "l2", a, data)) for a in (0.0, 1e2, 1e4, 1e6)]
    assert all(b < a for a, b in zip(peaks, peaks[1:])) and peaks[-1] < 1e-2
    assert np.allclose(
        density_1d(grid, "kl", 1e9, data),
        np.exp(-(grid**2) / 2) / math.sqrt(2 * math.pi),
        atol=1e-7,
    )
    assert np.allclose(
        density_1d(grid, "kl", 1e9, data, G=3.0),
        np.exp(-(grid**2) / 6) / math.sqrt(6 * math.pi),
        atol=1e-7,
    )


def test_density_1d_is_the_change_of_variables_of_the_fit():
    data = fig2_sample(2.0, n=20, seed=3) + 1.0
    x = np.array([-1.0, 0.5, 3.0])
    fit = regularised(data[:, None], 5.0, "kl", [[0.5]])
    u, b = fit.U[0, 0], fit.b[0]
    expected = np.exp(-0.5 * (u * x + b) ** 2) / math.sqrt(2 * math.pi) * abs(u)
    assert np.allclose(density_1d(x, "kl", 5.0, data, 0.5), expected)
    assert np.allclose(fit.cov, (20 * 2.0 + 5.0 * 0.5) / 25)


# --- validation -----------------------------------------------------------------------------------

X2 = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
BAD = [
    (lambda: nll(np.eye(3), np.zeros(2), X2), "U must have shape"),
    (lambda: nll(np.eye(2), np.zeros(3), X2), "b must have shape"),
    (lambda: nll(np.eye(2), np.zeros(2), [[np.nan, 0.0]]), "X must be finite"),
    (lambda: mle(np.zeros(3)), "X must be a 2-D array"),
    (lambda: mle("abc"), "X must be a real array"),
    (lambda: mle(np.zeros((0, 2))), "X must not be empty"),
    (lambda: regularised(X2, -1.0, "kl"), "alpha must be"),
    (lambda: regularised(X2, 1.0, "l1"), "kind must be one of"),
    (lambda: regularised(X2, 1.0, "l2", np.eye(2)), "G must be None"),
    (lambda: regularised(X2, 1.0, "kl", -np.eye(2)), "G must be symmetric positive definite"),
    (
        lambda: regularised(X2, 1.0, "kl", [[1.0, 2.0], [0.0, 1.0]]),
        "G must be symmetric positive definite; it is not symmetric",
    ),
    (lambda: regularised(X2, 1.0, "kl", np.eye(3)), "G must have shape"),
    (lambda: pseudo_sample_fit(X2, -1.0), "alpha must be"),
    (lambda: pseudo_sample_fit(X2, 1.0, np.eye(3)), "G must have shape"),
    (lambda: objective(np.eye(2), np.zeros(2), X2, 1.0, "kl2"), "kind must be one of"),
    (lambda: objective(np.eye(2), np.zeros(2), X2, math.inf, "kl"), "alpha must be"),
    (lambda: decoupled(X2, 1.0, "x"), "kind must be one of"),
    (lambda: kl_gaussian([0.0, 0.0], np.eye(2), [0.0], [[1.0]]), "mean1 must have shape"),
    (
        lambda: kl_gaussian([0.0], [[0.0]], [0.0], [[1.0]]),
        "cov0 must be symmetric positive definite",
    ),
    (
        lambda: kl_gaussian([0.0], [[1.0]], [0.0], [[-1.0]]),
        "cov1 must be symmetric positive definite",
    ),
    (lambda: density_1d([np.nan], "kl", 1.0, [0.0, 1.0]), "x must be finite"),
    (lambda: density_1d(0.0, "kl", 1.0, [[0.0, 1.0]]), "data must be a 1-D array"),
    (lambda: density_1d(0.0, "kl", 1.0, [0.0, 1.0], G=-1.0), "G must be a finite number > 0"),
    (lambda: density_1d(0.0, "l2", 1.0, [0.0, 1.0], G=1.0), "G must be None"),
    (lambda: density_1d(0.0, "kl", 0.0, [1.0, 1.0]), "data must hold at least two distinct values"),
    (lambda: density_1d(0.0, "kl", -2.0, [0.0, 1.0]), "alpha must be"),
    (lambda: fig2_sample(0.0), "delta must be"),
    (lambda: fig2_sample(1.0, n=1), "n must be"),
]


@pytest.mark.parametrize("call, message", BAD, ids=[m for _, m in BAD])
def test_bad_inputs_raise_value_errors_naming_the_parameter(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()
