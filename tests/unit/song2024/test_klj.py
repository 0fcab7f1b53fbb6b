"""The KLJ regulariser of Song et al. (2024), Eqs. 8–11: the term from the log-scales against the
couplings' autograd Jacobians, its zero and growth, its effect on training, the weight-decay part
and the Frobenius bound behind it. Everything in float64."""

import math

import pytest
import torch
from torch import nn

from flowcore.flows import CompositeTransform, Flow, Permutation, RealNVP, StandardNormal
from flowcore.flows.image import image_flow
from flowcore.studies.song2024.klj import (
    coupling_jacobians,
    frobenius_bound,
    jacobian_diagonal,
    klj_from_jacobian,
    klj_per_coupling,
    klj_term,
    st_network_weights,
    weight_decay_term,
)
from flowcore.train import TrainConfig, fit

DTYPE = torch.float64


def _perturb(module, seed=0, scale=0.5):
    """Random non-zero weights (zero init would make every s = 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _realnvp(dim=3, seed=0, **kwargs):
    torch.manual_seed(seed)
    return _perturb(RealNVP(dim, n_couplings=2, hidden=(8,), **kwargs).to(DTYPE), seed)


def _x(n, dim, seed=1):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def _couplings(flow):
    return [t for t in flow.transform.transforms if hasattr(t, "st_net")]


# ----------------------------------------------------------- the term against the autograd Jacobian


@pytest.mark.parametrize(
    "dim, kwargs",
    [
        (3, {}),
        (4, {"mask": "alternating", "log_scale": "exp"}),
        (5, {"permutation": "reverse", "log_scale": "sigmoid"}),
    ],
)
def test_log_scales_match_the_autograd_jacobian_coupling_by_coupling(dim, kwargs):
    flow = _realnvp(dim, **kwargs)
    x = _x(7, dim)
    _, log_scales = flow.log_prob_and_log_scales(x)
    jacobians = coupling_jacobians(flow, x)
    diagonals = jacobian_diagonal(flow, x)
    assert len(jacobians) == len(log_scales) == len(diagonals) == 2
    per_coupling = klj_per_coupling(log_scales)
    for i, (coupling, s, jac, diag) in enumerate(
        zip(_couplings(flow), log_scales, jacobians, diagonals)
    ):
        assert s.abs().min() > 1e-3  # really away from the identity
        # Eq. 9: the diagonal is e^s on the transformed coordinates and 1 on the copied ones ...
        torch.testing.assert_close(diag[:, coupling.transformed_index], s.exp())
        torch.testing.assert_close(
            diag[:, coupling.copied_index], torch.ones_like(diag[:, coupling.copied_index])
        )
        # ... the log-determinant is the sum of s (triangular up to a permutation) ...
        torch.testing.assert_close(torch.linalg.slogdet(jac).logabsdet, s.sum(-1))
        # ... so the penalty from s equals the one from the Jacobian's diagonal and determinant.
        torch.testing.assert_close(per_coupling[:, i], klj_from_jacobian(jac))
        assert (per_coupling[:, i] > 0).all()
    gamma = 0.3
    expected = gamma * torch.stack([klj_from_jacobian(j) for j in jacobians], -1).sum(-1).mean()
    torch.testing.assert_close(klj_term(gamma)(x, log_scales), expected)


def test_image_couplings_match_the_autograd_jacobian():
    torch.manual_seed(0)
    flow = _perturb(
        image_flow(size=4, n_couplings=3, mask="checkerboard", channels=2, n_blocks=1).to(DTYPE),
        scale=0.3,
    )
    x = torch.rand(5, 16, generator=torch.Generator().manual_seed(2), dtype=DTYPE) * 0.9 + 0.05
    _, log_scales = flow.log_prob_and_log_scales(x)
    jacobians = coupling_jacobians(flow, x)  # the Logit layer is skipped: it reports no log-scales
    assert [s.shape for s in log_scales] == [(5, 8)] * 3 and len(jacobians) == 3
    per_coupling = klj_per_coupling(log_scales)
    for i, jac in enumerate(jacobians):
        torch.testing.assert_close(per_coupling[:, i], klj_from_jacobian(jac))
    assert per_coupling.min() > 0


# -------------------------------------------------------------------------- zero and growth


def test_zero_at_the_identity():
    torch.manual_seed(0)
    flow = RealNVP(3, n_couplings=3, hidden=(8,)).to(
        DTYPE
    )  # zero init: every coupling is the identity
    x = _x(10, 3)
    _, log_scales = flow.log_prob_and_log_scales(x)
    assert klj_term(1.0)(x, log_scales).item() == 0.0
    assert klj_term(1.0, form="code")(x, log_scales).item() == 0.0
    assert all(klj_from_jacobian(j).abs().max() == 0 for j in coupling_jacobians(flow, x))


def test_paper_form_grows_as_scales_move_away_from_one():
    s = torch.arange(-30, 31, dtype=DTYPE) / 10  # s[30] = 0 exactly
    values = klj_per_coupling([s.unsqueeze(-1)])[:, 0]
    torch.testing.assert_close(values, s.exp() ** 2 - 1 - 2 * s)  # d² - 1 - 2 log d, d = e^s
    assert values[30] == 0 and (values[torch.arange(61) != 30] > 0).all()
    assert (values[:30].diff() < 0).all() and (values[30:].diff() > 0).all()


def test_term_grows_with_the_scale_of_a_coupling():
    flow = _realnvp(3, log_scale="exp")
    coupling = _couplings(flow)[0]
    last = coupling.st_net[-1]
    s_rows = slice(0, coupling.n_transformed)
    w0, b0 = last.weight[s_rows].clone(), last.bias[s_rows].clone()
    x = _x(20, 3)
    values = []
    for a in (0.0, 0.25, 0.5, 1.0, 2.0):  # s = a · ŝ in the first coupling
        with torch.no_grad():
            last.weight[s_rows] = a * w0
            last.bias[s_rows] = a * b0
        _, log_scales = flow.log_prob_and_log_scales(x)
        values.append(klj_per_coupling(log_scales)[:, 0].mean().item())
    assert values[0] == 0 and all(u < v for u, v in zip(values, values[1:]))


def test_code_form_squares_the_log_scale_and_averages_over_couplings():
    log_scales = [torch.full((4, 2), 0.5, dtype=DTYPE), torch.full((4, 1), 1.0, dtype=DTYPE)]
    batch = torch.zeros(4, 3, dtype=DTYPE)
    # per coupling Σ_j (s² - 2s): 2·(0.25 - 1) = -1.5 and 1 - 2 = -1; the mean over the 2 couplings
    assert klj_term(2.0, form="code")(batch, log_scales).item() == pytest.approx(
        2.0 * (-1.5 - 1.0) / 2
    )
    # the paper form: 2·(e - 2) + (e² - 3), summed
    assert klj_term(2.0)(batch, log_scales).item() == pytest.approx(
        2.0 * (2 * (math.e - 2) + math.e**2 - 3)
    )
    # the code form is smallest at s = 1 (scale e), not at the identity
    s = torch.linspace(-1, 3, 41, dtype=DTYPE).unsqueeze(-1)
    assert s[klj_per_coupling([s], form="code")[:, 0].argmin()].item() == pytest.approx(1.0)
    assert s[klj_per_coupling([s])[:, 0].argmin()].item() == pytest.approx(0.0)


def test_term_is_zero_without_couplings_and_validates_its_arguments():
    assert klj_term(0.1)(torch.zeros(2, 2), []).item() == 0.0
    with pytest.raises(ValueError, match="form"):
        klj_term(0.1, form="exact")
    with pytest.raises(ValueError, match="form"):
        klj_per_coupling([torch.zeros(2, 1)], form="diag")
    with pytest.raises(ValueError, match="weight"):
        klj_term(-0.1)
    with pytest.raises(ValueError, match="log_scales"):
        klj_per_coupling([])


# -------------------------------------------------------------------------------------- training


def _train(loss_terms, seed=0):
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([3.0, 0.3, 1.0], dtype=DTYPE)
    x = torch.randn(256, 3, generator=g, dtype=DTYPE) * scales + 1.0
    torch.manual_seed(seed)
    flow = RealNVP(3, n_couplings=3, hidden=(16,)).to(DTYPE)
    config = TrainConfig(batch_size=48, lr=1e-2, max_epochs=20, stopping="fixed", seed=seed)
    fit(flow, x[:192], x[192:], config, progress=False, loss_terms=loss_terms)
    _, log_scales = flow.log_prob_and_log_scales(x[192:])
    return torch.cat([s.detach().abs().flatten() for s in log_scales]).mean().item()


def test_training_with_klj_shrinks_the_log_scales():
    plain = _train([])
    regularised = _train([klj_term(0.1)])
    assert regularised < 0.85 * plain


# ------------------------------------------------------------------------------ the weight decay


def test_weight_decay_term_sums_the_st_network_weight_matrices():
    flow = _realnvp(3)
    term = weight_decay_term(flow, 0.01)
    expected = 0.01 * sum(
        m.weight.square().sum()
        for c in _couplings(flow)
        for m in c.st_net
        if isinstance(m, nn.Linear)
    )
    value = term(_x(2, 3), [])
    torch.testing.assert_close(value, expected)
    value.backward()
    for c in _couplings(flow):
        for m in c.st_net:
            if isinstance(m, nn.Linear):
                torch.testing.assert_close(m.weight.grad, 0.02 * m.weight.detach())
                assert m.bias.grad is None  # biases are not decayed


def test_weight_decay_term_covers_image_couplings_convolutions():
    torch.manual_seed(0)
    flow = image_flow(size=4, n_couplings=2, channels=2, n_blocks=2, bottleneck=3)
    weights = st_network_weights(flow)
    # per coupling: in_conv, 2 blocks × 2 convs, bottleneck down and up, out_conv
    assert len(weights) == 2 * 8
    assert all(w.dim() in (2, 4) for w in weights)
    names = {id(p): n for n, p in flow.named_parameters()}
    assert all(names[id(w)].endswith("weight") for w in weights)
    torch.testing.assert_close(
        weight_decay_term(flow, 1.0)(torch.zeros(1, 16), []), sum(w.square().sum() for w in weights)
    )


def test_weight_decay_term_needs_couplings_and_a_valid_weight():
    with pytest.raises(ValueError, match="st-network"):
        weight_decay_term(
            Flow(CompositeTransform([Permutation.reverse(2)]), StandardNormal(2)), 0.1
        )
    with pytest.raises(ValueError, match="weight"):
        weight_decay_term(RealNVP(2, n_couplings=1, hidden=(4,)), -1.0)


# --------------------------------------------------------------------------- the Frobenius bound


@pytest.mark.parametrize("seed", range(6))
def test_frobenius_bound_holds_for_random_relu_mlps(seed):
    g = torch.Generator().manual_seed(seed)
    n_in = int(torch.randint(1, 5, (), generator=g))
    widths = [
        n_in,
        *torch.randint(2, 12, (int(torch.randint(0, 4, (), generator=g)),), generator=g).tolist(),
        2 * int(torch.randint(1, 4, (), generator=g)),
    ]
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    torch.manual_seed(seed)
    net = _perturb(
        nn.Sequential(*layers[:-1]).to(DTYPE), seed, scale=float(torch.rand((), generator=g)) * 2
    )
    x = torch.randn(32, n_in, generator=g, dtype=DTYPE) * 3
    for part in ("t", "s", "st"):
        lhs, rhs = frobenius_bound(net, x, part=part)
        assert 0 <= lhs <= rhs
        for row in x[:8]:  # it holds sample by sample, not only on average
            assert frobenius_bound(net, row.unsqueeze(0), part=part)[0] <= rhs


def test_frobenius_bound_holds_for_a_trained_realnvp_st_network():
    flow = _realnvp(4)
    for coupling in _couplings(flow):
        lhs, rhs = frobenius_bound(coupling.st_net, _x(16, coupling.n_copied))
        assert 0 < lhs <= rhs


def test_frobenius_bound_is_attained():
    """Equality for rank-one weights with every unit active: the paper's strict '<' should be
    '≤'."""
    u, v = torch.tensor([1.0, 2.0, 0.5], dtype=DTYPE), torch.tensor([0.3, -0.7], dtype=DTYPE)
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)).to(DTYPE)
    with torch.no_grad():
        net[0].weight.copy_(torch.outer(u, v))
        net[0].bias.fill_(100.0)  # every ReLU active on the inputs below
        net[2].weight.copy_(
            torch.stack([torch.zeros(3, dtype=DTYPE), u])
        )  # the s row zero, the t row along u
        net[2].bias.zero_()
    lhs, rhs = frobenius_bound(net, _x(5, 2))
    torch.testing.assert_close(lhs, rhs)


def test_frobenius_bound_validates_its_network():
    with pytest.raises(ValueError, match="st_net"):
        frobenius_bound(
            nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2)), torch.zeros(3, 2)
        )
    with pytest.raises(ValueError, match="part"):
        frobenius_bound(nn.Sequential(nn.Linear(2, 2)), torch.zeros(3, 2), part="L")
