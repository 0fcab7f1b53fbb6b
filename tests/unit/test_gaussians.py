import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from flowcore import Gaussian, GaussianRecipe, training_gaussian
from flowcore.estimators import cross_entropy_mc, kl_mc
from flowcore.studies.debruin2024 import SCALES, SHIFTS
from flowcore.gaussians import affine_family


@pytest.fixture
def pq():
    p = training_gaussian(5, GaussianRecipe(), seed=3)
    q = training_gaussian(5, GaussianRecipe(eig_min=0.2, eig_max=2.0, mean_scale=0.5), seed=4)
    return p, q


def test_log_prob_and_entropy_match_scipy(pq, gen):
    p, _ = pq
    ref = multivariate_normal(p.mean.numpy(), p.cov.numpy())
    x = p.sample(100, generator=gen)
    np.testing.assert_allclose(p.log_prob(x).numpy(), ref.logpdf(x.numpy()), rtol=1e-10, atol=1e-10)
    assert p.entropy() == pytest.approx(ref.entropy(), rel=1e-12)


def test_closed_forms_are_consistent(pq):
    p, q = pq
    # Eq. 10: H(q, p) = H(q) + KL(q || p), and KL(p || p) = 0.
    assert q.cross_entropy(p) == pytest.approx(q.entropy() + q.kl(p), rel=1e-12)
    assert p.kl(p) == pytest.approx(0.0, abs=1e-10)
    assert q.kl(p) > 0 and p.kl(q) > 0 and q.kl(p) != pytest.approx(p.kl(q))


def test_closed_forms_match_monte_carlo_within_standard_errors(pq, gen):
    p, q = pq
    log_p = p.log_prob(q.sample(200_000, generator=gen)).numpy()
    h = cross_entropy_mc(log_p)
    kl = kl_mc(log_p, q.entropy())
    assert abs(h.z_score(q.cross_entropy(p))) < 4
    assert abs(kl.z_score(q.kl(p))) < 4
    assert kl.stderr == h.stderr


def test_sample_moments_and_streaming(pq):
    p, _ = pq
    x = p.sample(200_000, generator=torch.Generator().manual_seed(0), chunk_size=7_000)
    assert torch.allclose(x.mean(0), p.mean, atol=0.01)
    assert torch.allclose(torch.cov(x.T), p.cov, atol=0.02)
    # The stream does not depend on the chunk size.
    a = p.sample(1_000, generator=torch.Generator().manual_seed(5), chunk_size=64)
    b = torch.cat(
        list(p.iter_samples(1_000, generator=torch.Generator().manual_seed(5), chunk_size=1_000))
    )
    assert torch.equal(a, b)


def test_affine_family_is_eq_12_and_13(pq, gen):
    p, _ = pq
    s, t = 0.5, 0.75
    q = p.affine(s, t)
    assert torch.allclose(q.mean, p.mean + t)
    assert torch.allclose(q.cov, s**2 * p.cov)
    # Eq. 13: g(x; s, t) = (x − μ_p)s + μ_p + t maps p onto q; log q(g(x)) = log p(x) − D log s.
    x = p.sample(10, generator=gen)
    g = (x - p.mean) * s + p.mean + t
    assert torch.allclose(q.log_prob(g), p.log_prob(x) - p.dim * math.log(s))
    # Λ of Eq. 19: every (s, t) of the thesis's S × T, and q(1, 0) = p.
    family = affine_family(p, SCALES, SHIFTS)
    assert len(family) == 24 and family[(1.0, 0.0)].kl(p) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="s must be a finite number > 0"):
        p.affine(0.0, 0.0)


def test_training_gaussian_recipe(pq):
    p = training_gaussian(20, GaussianRecipe(eig_min=0.1, eig_max=1.0), seed=0)
    eigs = torch.linalg.eigvalsh(p.cov)
    assert eigs.min() >= 0.1 - 1e-9 and eigs.max() <= 1.0 + 1e-9
    assert torch.equal(training_gaussian(20, seed=0).cov, p.cov)
    assert not torch.equal(training_gaussian(20, seed=1).cov, p.cov)
    # Full covariance: far from diagonal.
    off = p.cov - torch.diag(p.cov.diagonal())
    assert off.abs().max() > 0.05


def test_ml_gaussian_fit(pq, gen):
    p, _ = pq
    fit = Gaussian.fit(p.sample(100_000, generator=gen))
    assert p.kl(fit) < 1e-3


@pytest.mark.parametrize(
    "mean, cov, match",
    [
        (torch.zeros(2), torch.tensor([[1.0, 2.0], [2.0, 1.0]]), "positive definite"),
        (torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (torch.zeros(3), torch.eye(2), "shape"),
        (torch.tensor([0.0, float("nan")]), torch.eye(2), "finite"),
    ],
)
def test_bad_gaussians_raise(mean, cov, match):
    with pytest.raises(ValueError, match=match):
        Gaussian(mean, cov)


def test_spectra_give_the_documented_eigenvalue_laws():
    dim = 40
    eigs = {
        sp: torch.linalg.eigvalsh(training_gaussian(dim, GaussianRecipe(spectrum=sp), seed=2).cov)
        for sp in GaussianRecipe.SPECTRA
    }
    assert 0.1 - 1e-9 <= eigs["loguniform"].min() and eigs["loguniform"].max() <= 1 + 1e-9
    assert 1 - 1e-9 <= eigs["spd"].min() and eigs["spd"].max() <= 2 + 1e-9
    # AAᵀ with a square standard-normal A: the largest eigenvalue near 4D, the smallest far below 1.
    assert 2 * dim < eigs["wishart"].max() < 6 * dim and eigs["wishart"].min() < 0.1
    # The default recipe's draw does not depend on the new options (cached flows stay valid).
    assert torch.equal(
        training_gaussian(dim, GaussianRecipe(), seed=2).cov,
        training_gaussian(dim, GaussianRecipe(spectrum="loguniform"), seed=2).cov,
    )
