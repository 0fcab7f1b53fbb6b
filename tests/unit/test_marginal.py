"""flowcore.flows.marginal: ActNorm and the R-block flow invert with autograd-exact log-dets
(float64), ActNorm's data-dependent initialisation survives state_dict round trips, and the
importance-sampled marginal of a MarginalFlow is exact where it must be (B = 0, the identity
flow), matches a closed-form Gaussian for a linear flow, and obeys the joint-bound and monotonicity
facts of de Boer (2020) within Monte-Carlo error; training through fit lowers the validation NLL."""

import io
import math
import warnings

import pytest
import torch

from flowcore.flows import (
    AffineCoupling,
    FastPathWarning,
    Flow,
    Permutation,
    StandardNormal,
    Transform,
)
from flowcore.flows.marginal import (
    ActNorm,
    JointTrainingView,
    MarginalFlow,
    marginal_flow,
    r_block_flow,
)
from flowcore.train import TrainConfig, fit
from flowcore.flows.checks import check_inverse_and_log_dets
from flowcore.flows.checks import randomize as _randomize

F64 = torch.float64


# ---------------------------------------------------------------------------------------------
# Helpers


def _random_flow(dim, gen, n_blocks=2, hidden=(16, 16), scale=0.3, **kwargs):
    """A float64 R-block flow with initialised ActNorms and random weights (N(0, scale²))
    everywhere."""
    flow = r_block_flow(dim, n_blocks=n_blocks, hidden=hidden, **kwargs).to(F64)
    for m in flow.modules():
        if isinstance(m, ActNorm):
            m.initialized.fill_(True)
    return _randomize(flow, gen, scale)


class Identity(Transform):
    """Test-only: z = x, log-det 0."""

    def forward(self, x, log_scales=None):
        return x, x.new_zeros(x.shape[:-1])

    def inverse(self, z):
        return z, z.new_zeros(z.shape[:-1])


class Linear(Transform):
    """Test-only invertible linear map z = A v + c; log|det ∂z/∂v| = log|det A|."""

    def __init__(self, A, c):
        super().__init__()
        self.register_buffer("A", A)
        self.register_buffer("c", c)

    def forward(self, v, log_scales=None):
        return v @ self.A.T + self.c, torch.linalg.slogdet(self.A).logabsdet.expand(v.shape[:-1])

    def inverse(self, z):
        return torch.linalg.solve(self.A, (z - self.c).unsqueeze(-1)).squeeze(-1), (
            -torch.linalg.slogdet(self.A).logabsdet
        ).expand(z.shape[:-1])


def _linear_model(dim=2, aux=2, seed=7):
    """A MarginalFlow whose joint is N(μ, Σ) on R^{D+B}, and the exact marginal N(μ_x, Σ_xx) of x.

    The joint is built from x ~ N(μ_x, Σ_xx) and ε | x ~ N(m₀ + K (x − μ_x), C) with C ≈ 0.6 I and
    small K, m₀: the posterior of ε is near, but not equal to, the proposal N(0, I), and
    C ≺ 2I keeps the importance weights' variance finite. The flow is z = A (y − μ) with
    A = Q L⁻¹ (L = chol Σ, Q a random rotation, so A is dense).
    """
    g = torch.Generator().manual_seed(seed)
    q = dim + aux
    wx = torch.randn(dim, dim, generator=g, dtype=F64) + 1.5 * torch.eye(dim, dtype=F64)
    sxx = wx @ wx.T
    k = 0.3 * torch.randn(aux, dim, generator=g, dtype=F64)
    wc = 0.2 * torch.randn(aux, aux, generator=g, dtype=F64)
    c = 0.6 * torch.eye(aux, dtype=F64) + wc @ wc.T
    sigma = torch.empty(q, q, dtype=F64)
    sigma[:dim, :dim] = sxx
    sigma[dim:, :dim] = k @ sxx
    sigma[:dim, dim:] = (k @ sxx).T
    sigma[dim:, dim:] = k @ sxx @ k.T + c
    mu = torch.cat(
        [torch.randn(dim, generator=g, dtype=F64), 0.3 * torch.randn(aux, generator=g, dtype=F64)]
    )
    rot, _ = torch.linalg.qr(torch.randn(q, q, generator=g, dtype=F64))
    A = rot @ torch.linalg.inv(torch.linalg.cholesky(sigma))
    flow = Flow(Linear(A, -A @ mu), StandardNormal(q)).to(F64)
    flow.autograd_only = True
    truth = torch.distributions.MultivariateNormal(mu[:dim], sigma[:dim, :dim])
    return MarginalFlow(flow, dim, aux), truth, mu, sigma


# ---------------------------------------------------------------------------------------------
# ActNorm


def test_actnorm_inverts_and_log_det_matches_autograd(gen):
    layer = _randomize(ActNorm(4).to(F64), gen, scale=0.7)
    layer.initialized.fill_(True)
    x = torch.randn(3, 4, generator=gen, dtype=F64)
    z, log_det = layer(x)
    assert torch.allclose(z, (x - layer.loc) * torch.exp(-layer.log_scale))
    assert torch.allclose(log_det, -layer.log_scale.sum().expand(3))
    check_inverse_and_log_dets(layer, x, z, log_det, inverse_atol=1e-12, log_det_atol=1e-10, rows=3)


def test_actnorm_data_dependent_init_and_flag_survives_state_dict(gen):
    layer = ActNorm(3).to(F64)  # training mode by default
    x = torch.tensor([5.0, -2.0, 0.0], dtype=F64) + torch.tensor(
        [0.1, 3.0, 20.0], dtype=F64
    ) * torch.randn(256, 3, generator=gen, dtype=F64)
    assert not bool(layer.initialized)
    z, log_det = layer(x)
    assert bool(layer.initialized)
    assert torch.allclose(z.mean(0), torch.zeros(3, dtype=F64), atol=1e-12)
    assert torch.allclose(z.var(0, correction=0), torch.ones(3, dtype=F64), atol=1e-12)
    assert torch.allclose(log_det, -torch.log(x.std(0, correction=0)).sum().expand(256))
    loc, log_scale = layer.loc.detach().clone(), layer.log_scale.detach().clone()

    # A second training-mode batch does not re-initialise.
    other = 7.0 + torch.randn(64, 3, generator=gen, dtype=F64)
    layer(other)
    assert torch.equal(layer.loc, loc) and torch.equal(layer.log_scale, log_scale)

    # The flag is a persistent buffer: a fresh module loaded from the state never re-initialises.
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    assert "initialized" in layer.state_dict()
    fresh = ActNorm(3).to(F64)
    fresh.load_state_dict(torch.load(buffer))
    assert bool(fresh.initialized) and fresh.training
    z_fresh, _ = fresh(other)
    assert torch.equal(fresh.loc, loc) and torch.equal(fresh.log_scale, log_scale)
    assert torch.equal(z_fresh, layer(other)[0])
    # ...whereas without the loaded state the same call would initialise on `other`.
    assert not torch.equal(ActNorm(3).to(F64)(other)[0], z_fresh)


def test_actnorm_does_not_initialise_in_eval_mode_or_on_one_row():
    layer = ActNorm(2).eval()
    x = torch.tensor([[3.0, 4.0], [5.0, 8.0]])
    assert torch.equal(layer(x)[0], x) and not bool(layer.initialized)  # the identity before init
    with pytest.raises(ValueError, match="at least 2 rows"):
        ActNorm(2)(torch.ones(1, 2))


# ---------------------------------------------------------------------------------------------
# The R-block flow


def test_r_block_flow_structure_masks_and_seeded_shuffles():
    flow = r_block_flow(5, n_blocks=3, hidden=(8,))
    names = [type(t).__name__ for t in flow.transform.transforms]
    full = ["AffineCoupling", "Permutation", "AffineCoupling", "Permutation", "ActNorm"]
    assert names == ["ActNorm", *full, *full, "AffineCoupling", "Permutation", "AffineCoupling"]
    couplings = [t for t in flow.transform.transforms if isinstance(t, AffineCoupling)]
    for c in couplings:  # the lower ⌊5/2⌋ = 2 coordinates condition, the upper 3 are transformed
        assert c.mask.tolist() == [True, True, False, False, False]
        assert c.log_scale == "exp"
    perms = [t for t in flow.transform.transforms if isinstance(t, Permutation)]
    assert all(p.perm.tolist() == [4, 3, 2, 1, 0] for p in perms[0::2])  # reverse inside each block
    shuffles = [p.perm.tolist() for p in perms[1::2][:2]]
    g = torch.Generator().manual_seed(0)
    assert shuffles == [torch.randperm(5, generator=g).tolist() for _ in range(2)]
    # The shuffles depend on the seed only, never on the global RNG.
    torch.manual_seed(123)
    again = r_block_flow(5, n_blocks=3, hidden=(8,))
    assert [p.perm.tolist() for p in again.transform.transforms if isinstance(p, Permutation)] == [
        p.perm.tolist() for p in perms
    ]
    other = r_block_flow(7, n_blocks=3, hidden=(8,), seed=1)
    assert [p.perm.tolist() for p in other.transform.transforms if isinstance(p, Permutation)][
        1
    ] != torch.randperm(7, generator=torch.Generator().manual_seed(0)).tolist()
    assert flow.autograd_only
    with warnings.catch_warnings():
        warnings.simplefilter("error", FastPathWarning)
        with torch.no_grad():
            flow.log_prob(torch.randn(4, 5))


@pytest.mark.parametrize("dim, log_scale", [(2, "exp"), (5, "exp"), (4, "tanh")])
def test_r_block_flow_inverts_and_log_dets_match_autograd(dim, log_scale, gen):
    flow = _random_flow(dim, gen, n_blocks=3, log_scale=log_scale)
    x = 1.5 * torch.randn(4, dim, generator=gen, dtype=F64)
    z, log_det = flow.transform(x)
    assert not torch.allclose(z, x)
    check_inverse_and_log_dets(
        flow.transform, x, z, log_det, inverse_atol=1e-10, log_det_atol=1e-9, rows=3
    )


def test_first_training_forward_standardises_every_actnorm_input_and_state_loads(gen):
    torch.manual_seed(0)
    flow = r_block_flow(4, n_blocks=3, hidden=(16,), zero_init=False).to(F64)
    outputs = []
    norms = [m for m in flow.modules() if isinstance(m, ActNorm)]
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: outputs.append(out[0].detach()))
        for m in norms
    ]
    x = 3.0 + torch.randn(512, 4, generator=gen, dtype=F64) * torch.tensor(
        [1.0, 5.0, 0.2, 2.0], dtype=F64
    )
    log_p = flow.log_prob(x)
    for h in hooks:
        h.remove()
    assert len(outputs) == len(norms) == 3
    for out in outputs:
        assert torch.allclose(out.mean(0), torch.zeros(4, dtype=F64), atol=1e-10)
        assert torch.allclose(out.var(0, correction=0), torch.ones(4, dtype=F64), atol=1e-10)
    # A fresh flow loaded from the state, in training mode, gives the same densities on new data.
    torch.manual_seed(1)
    fresh = r_block_flow(4, n_blocks=3, hidden=(16,), zero_init=False).to(F64)
    fresh.load_state_dict(flow.state_dict())
    new = torch.randn(64, 4, generator=gen, dtype=F64)
    assert fresh.training and torch.equal(fresh.log_prob(new), flow.log_prob(new))
    assert torch.equal(flow.log_prob(x), log_p)


# ---------------------------------------------------------------------------------------------
# The marginal


def test_b0_marginal_is_the_flow_log_prob_exactly(gen):
    model = MarginalFlow(_random_flow(3, gen), dim=3, aux=0)
    x = torch.randn(20, 3, generator=gen, dtype=F64)
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    est, se = model.log_prob_marginal(x, n_samples=50, generator=g)
    assert torch.equal(est, model.flow.log_prob(x)) and torch.equal(se, torch.zeros(20, dtype=F64))
    assert torch.equal(g.get_state(), state)  # no draws
    assert torch.equal(model.joint_log_prob(x, None), model.flow.log_prob(x))
    assert model.training_batch(x) is x


def test_identity_flow_marginal_is_exact_for_every_S(gen):
    dim, aux = 2, 3
    flow = Flow(Identity(), StandardNormal(dim + aux)).to(F64)
    flow.autograd_only = True
    model = MarginalFlow(flow, dim, aux)
    x = 2.0 * torch.randn(6, dim, generator=gen, dtype=F64)
    exact = StandardNormal(dim).to(F64).log_prob(x)  # p^T(x, ε) = N(x) N(ε): every weight is N(x)
    for s in (1, 2, 10, 200):
        est, se = model.log_prob_marginal(x, n_samples=s, generator=gen)
        assert torch.allclose(est, exact, atol=1e-12, rtol=0)
        assert torch.isnan(se).all() if s == 1 else (se < 1e-12).all()


def test_linear_flow_marginal_matches_closed_form_gaussian(gen):
    model, truth, mu, sigma = _linear_model()
    x = truth.sample((10,)) + 0.5 * torch.randn(10, 2, generator=gen, dtype=F64)
    est, se = model.log_prob_marginal(x, n_samples=200, generator=gen)
    exact = truth.log_prob(x)
    assert (se > 1e-3).all() and (se < 0.25).all()  # a real but small Monte-Carlo error
    assert ((est - exact).abs() < 3 * se).all(), ((est - exact) / se).tolist()
    # The standard error is honest: it matches the spread of repeated estimates.
    x0 = x[:1].expand(300, 2)
    repeats, ses = model.log_prob_marginal(x0, n_samples=200, generator=gen)
    assert 0.8 < (repeats.std() / ses.mean()).item() < 1.25
    # The joint Gaussian itself: log p^T is the N(μ, Σ) density.
    y = torch.randn(5, 4, generator=gen, dtype=F64)
    joint = torch.distributions.MultivariateNormal(mu, sigma).log_prob(y)
    assert torch.allclose(model.joint_log_prob(y[:, :2], y[:, 2:]), joint, atol=1e-10)


def test_linear_flow_samples_follow_the_closed_form_marginal():
    model, truth, _, _ = _linear_model()
    x = model.sample(20000, generator=torch.Generator().manual_seed(3))
    assert x.shape == (20000, 2)
    assert torch.allclose(x.mean(0), truth.mean, atol=0.05)
    assert torch.allclose(torch.cov(x.T), truth.covariance_matrix, atol=0.08)


def test_log_p1_has_the_expectation_of_the_joint_bound(gen):
    dim, aux, reps = 2, 2, 4000
    model = MarginalFlow(
        _random_flow(dim + aux, gen, scale=0.15), dim, aux
    )  # non-Gaussian, tame weights
    x = torch.randn(3, dim, generator=gen, dtype=F64)
    with torch.no_grad():
        log_p1, _ = model.log_prob_marginal(x.repeat(reps, 1), n_samples=1, generator=gen)
        joint = model.flow.log_prob(model.training_batch(x.repeat(reps, 1), generator=gen))
    log_p1, joint = log_p1.reshape(reps, 3), joint.reshape(reps, 3)
    bound = joint.mean(0) + model.aux_entropy
    err = torch.sqrt(log_p1.var(0) / reps + joint.var(0) / reps)
    assert ((log_p1.mean(0) - bound).abs() < 4 * err).all(), (
        (log_p1.mean(0) - bound) / err
    ).tolist()


def test_mean_log_p_hat_does_not_decrease_with_S(gen):
    dim, aux = 2, 2
    model = MarginalFlow(
        _random_flow(dim + aux, gen, scale=0.15), dim, aux
    )  # non-Gaussian, tame weights
    x = torch.randn(3, dim, generator=gen, dtype=F64)
    means, errs = [], []
    with torch.no_grad():
        for s, reps in ((1, 2000), (10, 400), (100, 200)):  # log p̂_1 varies most: more repeats
            est, _ = model.log_prob_marginal(x.repeat(reps, 1), n_samples=s, generator=gen)
            est = est.reshape(reps, 3)
            means.append(est.mean(0))
            errs.append(est.std(0) / math.sqrt(reps))
    for lo, hi, e_lo, e_hi in zip(means[:-1], means[1:], errs[:-1], errs[1:]):
        assert (hi - lo > -3 * torch.sqrt(e_lo**2 + e_hi**2)).all()
    # ...and the gain from 1 to 100 samples, averaged over the points, is real here (the posterior
    # of ε is not N(0, I)).
    gain, gain_err = (
        (means[2] - means[0]).mean(),
        torch.sqrt((errs[0] ** 2 + errs[2] ** 2).sum()) / 3,
    )
    assert gain > 3 * gain_err, (gain, gain_err)


def test_linear_flow_mean_log_p_hat_rises_towards_the_truth(gen):
    model, truth, _, _ = _linear_model()
    x, reps = truth.mean.unsqueeze(0) + 0.3, 400
    exact = truth.log_prob(x).item()
    means = []
    for s in (1, 10, 100):
        est, _ = model.log_prob_marginal(x.expand(reps, 2), n_samples=s, generator=gen)
        means.append((est.mean().item(), est.std().item() / math.sqrt(reps)))
    for (m_lo, e_lo), (m_hi, e_hi) in zip(means[:-1], means[1:]):
        assert m_hi - m_lo > -3 * math.hypot(e_lo, e_hi)
    assert means[0][0] < exact - 3 * means[0][1]  # the joint bound is strictly below log p(x)
    assert abs(means[2][0] - exact) < 3 * means[2][1] + 1e-3


def test_sample_shape_and_reproducibility():
    model = marginal_flow(3, 2, n_blocks=2, hidden=(8,))
    a = model.sample(7, generator=torch.Generator().manual_seed(5))
    b = model.sample(7, generator=torch.Generator().manual_seed(5))
    assert a.shape == (7, 3) and torch.equal(a, b)
    assert model.dim == 3 and model.aux == 2 and model.flow.base.dim == 5


def test_marginal_flow_checks_its_arguments():
    with pytest.raises(ValueError, match="dim \\+ aux"):
        MarginalFlow(r_block_flow(4, n_blocks=1, hidden=(4,)), dim=2, aux=1)
    model = marginal_flow(2, 1, n_blocks=1, hidden=(4,))
    with pytest.raises(ValueError, match="eps must have shape"):
        model.joint_log_prob(torch.zeros(3, 2), None)
    with pytest.raises(ValueError, match="x must have shape"):
        model.log_prob_marginal(torch.zeros(3, 3))
    with pytest.raises(TypeError):
        model(torch.zeros(3, 2))


# ---------------------------------------------------------------------------------------------
# Training through fit


def test_training_view_draws_fresh_eps_in_training_and_fixed_eps_in_eval(gen):
    model = MarginalFlow(_random_flow(4, gen), dim=2, aux=2)
    view = JointTrainingView(model, seed=3)
    x = torch.randn(8, 2, generator=gen, dtype=F64)
    a, b = view.log_prob(x), view.log_prob(x)
    assert not torch.equal(a, b)  # training mode: the generator advances
    eps = torch.randn(8, 2, generator=torch.Generator().manual_seed(3), dtype=F64)
    assert torch.equal(a, model.joint_log_prob(x, eps))  # the first draw of the seeded generator
    view.eval()
    assert torch.equal(view.log_prob(x), view.log_prob(x))  # eval mode: common random numbers
    loose = JointTrainingView(model, eval_seed=None).eval()
    assert not torch.equal(loose.log_prob(x), loose.log_prob(x))
    log_p, log_scales = JointTrainingView(model, seed=3).log_prob_and_log_scales(x)
    assert torch.equal(log_p, a) and len(log_scales) == 4


def test_fit_through_the_training_view_lowers_the_validation_nll():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(11)

    def banana(n):
        u = torch.randn(n, 2, generator=g)
        return torch.stack([u[:, 0], 0.5 * u[:, 0] ** 2 + 0.3 * u[:, 1] + 1.0], dim=-1)

    x_train, x_val = banana(512), banana(512)
    model = marginal_flow(2, 1, n_blocks=2, hidden=(16, 16))
    view = JointTrainingView(model)
    with torch.no_grad():
        before = -view.eval().log_prob(x_val).mean().item()
    config = TrainConfig(batch_size=64, lr=3e-3, max_epochs=5, stopping="fixed")
    history = fit(view, x_train, x_val, config, progress=False)
    assert all(m.initialized for m in model.modules() if isinstance(m, ActNorm))
    assert history.val_nll[-1] < history.val_nll[0] - 0.2 and history.val_nll[-1] < before - 1.0
    # The marginal (S = 50) beats the joint bound, −joint NLL + H_B, on the validation set.
    view.eval()
    with torch.no_grad():
        marginal, _ = model.log_prob_marginal(
            x_val, n_samples=50, generator=torch.Generator().manual_seed(0)
        )
    assert marginal.mean().item() > -history.val_nll[-1] + model.aux_entropy - 0.02
    # fit's loss_terms path (log_prob_and_log_scales) runs through the view too.
    terms = [lambda batch, log_scales: 1e-3 * sum(s.square().sum(-1).mean() for s in log_scales)]
    fit(
        view,
        x_train[:128],
        x_val[:64],
        TrainConfig(batch_size=64, max_epochs=1),
        progress=False,
        loss_terms=terms,
    )
