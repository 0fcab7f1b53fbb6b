"""The contract of the one affine coupling definition, :class:`flowcore.flows.spec.CouplingSpec`.

Its reference evaluation is ``CouplingSpec.forward`` (what ``AffineCoupling`` runs with
``fused_training = False``). Every other path is an optimisation of it and must agree, for each
log-scale map, each mask layout (copied part first, transformed part first, interleaved) and
float32/float64 (path — how — agreement with the reference):

- fused training step — ``FusedAffineCoupling`` (``gemms="mm"``) — y, log-det, s, first
  derivatives (also under ``create_graph``) bitwise; with a loss on s as well, rel. 1e-6 (three
  gradients meet at s and are summed in another order); second derivatives rel. 1e-5 (f32) /
  1e-12 (f64)
- no-grad blocked path — ``Flow.log_prob`` under ``no_grad`` — one block with ``addmm``: bitwise;
  several blocks or oneDNN (float32): rel. 1e-5 + abs. 1e-4 (f32), 1e-12 (f64)
- stacked trainer — ``train_many._stacked_log_prob``, K = 2 — log p bitwise; gradients rel. 1e-5
  (float32), 1e-12 (float64): ``bmm`` sums the weight gradient in another order
- stacked fused training step — ``FusedAffineCoupling`` and ``FusedPermutation`` on stacked
  weights (what ``_stacked_log_prob`` runs in float32 on the CPU) — values and first derivatives
  bitwise those of the stacked reference ops, with shared and per-flow permutations

And in float64 the spec's log-det is the autograd Jacobian's, and the log-scale table's forms
(``map``, ``map_into``, ``vjp``, ``derivative``) agree with each other and with autograd.
"""

import dataclasses

import pytest
import torch

from flowcore.flows import (
    AffineCoupling,
    CompositeTransform,
    Flow,
    Permutation,
    StandardNormal,
    alternating,
    halves,
    onednn_linear_available,
)
from flowcore.flows.checks import autograd_log_det, randomize
from flowcore.flows.distributions import standard_normal_log_prob
from flowcore.flows import fast
from flowcore.flows.fast import FusedAffineCoupling
from flowcore.flows.spec import LOG_SCALE_MAPS, CouplingSpec
from flowcore.train_many import _plan, _stacked_log_prob

DIM, ROWS = 9, 300
LAYOUTS = {
    "copied_first": halves(DIM, 0),
    "transformed_first": halves(DIM, 1),
    "interleaved": alternating(DIM, 0),
}
MAPS = list(LOG_SCALE_MAPS)
DTYPES = [torch.float32, torch.float64]
CASES = pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
LAYOUT = pytest.mark.parametrize("layout", list(LAYOUTS))
MAP = pytest.mark.parametrize("log_scale", MAPS)


def _layer(layout, log_scale, dtype, seed=0):
    torch.manual_seed(seed)
    layer = AffineCoupling(
        LAYOUTS[layout], hidden=(32, 16), log_scale=log_scale, log_scale_bound=2.0
    ).to(dtype)
    layer.fused_training = False  # the reference ops
    return randomize(layer, torch.Generator().manual_seed(seed + 1), scale=0.3)


def _x(dtype, seed=2):
    return torch.randn(
        ROWS, DIM, dtype=dtype, generator=torch.Generator().manual_seed(seed)
    ).requires_grad_()


def _loss(y, log_det, s, on_s=False):
    w = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
    loss = (y * w).sum() + log_det.square().sum()
    return loss + 0.1 * s.square().sum() if on_s else loss


def _equal(a, b):
    return all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


def _close(a, b, rtol):
    return all(
        torch.allclose(p, q, rtol=0, atol=rtol * q.abs().max().item())
        for p, q in zip(a, b, strict=True)
    )


@CASES
@LAYOUT
@MAP
def test_fused_step_equals_reference(dtype, layout, log_scale):
    layer = _layer(layout, log_scale, dtype)
    x, params = _x(dtype), list(layer.parameters())
    ref = layer.spec().forward(x)
    fused = FusedAffineCoupling.apply(x, layer.fast_steps()[0], True, "mm", *params)
    assert _equal(fused, ref)
    for on_s in (False, True):
        got = torch.autograd.grad(_loss(*fused, on_s), [x, *params], retain_graph=True)
        want = torch.autograd.grad(_loss(*ref, on_s), [x, *params], retain_graph=True)
        assert _equal(got, want) if not on_s else _close(got, want, rtol=1e-6)
    # Double backward re-evaluates the reference definition: first derivatives bitwise; second ones
    # also flow back through the fused node's own backward, so their terms are summed in another
    # order.
    got = torch.autograd.grad(_loss(*fused), [x, *params], create_graph=True)
    want = torch.autograd.grad(_loss(*ref), [x, *params], create_graph=True)
    assert _equal(got, want)
    second = [
        torch.autograd.grad(sum(g.square().sum() for g in grads), [x, *params])
        for grads in (got, want)
    ]
    assert _close(*second, rtol=1e-5 if dtype == torch.float32 else 1e-12)
    if dtype == torch.float32:  # where the module takes the fused path itself
        layer.fused_training = True
        y, log_det = layer(x)
        assert type(y.grad_fn).__name__ == "FusedAffineCouplingBackward" and _equal(
            (y, log_det), ref[:2]
        )


@CASES
@LAYOUT
@MAP
def test_no_grad_path_equals_reference(dtype, layout, log_scale):
    layer = _layer(layout, log_scale, dtype)
    flow = Flow(CompositeTransform([layer]), StandardNormal(DIM)).to(dtype)
    x = _x(dtype).detach()
    ref = flow.log_prob(x)  # gradients on, fused_training off: the reference ops
    y, log_det, _ = layer.spec().forward(x)
    assert torch.equal(ref, standard_normal_log_prob(y, flow.base.log_2pi) + log_det)
    flow.eval_onednn = False
    for rows, exact in (
        (ROWS, True),
        (64, False),
    ):  # one block: the reference's addmm calls; several blocks
        flow.eval_block_rows = rows
        with torch.no_grad():
            got = flow.log_prob(x)
        assert (
            torch.equal(got, ref)
            if exact
            else torch.allclose(
                got,
                ref,
                rtol=1e-5 if dtype == torch.float32 else 1e-12,
                atol=1e-4 if dtype == torch.float32 else 1e-12,
            )
        )
    if dtype == torch.float32 and onednn_linear_available():
        flow.eval_onednn, flow.eval_block_rows = True, None
        with torch.no_grad():
            assert torch.allclose(flow.log_prob(x), ref, rtol=1e-5, atol=1e-4)


@CASES
@LAYOUT
@MAP
def test_stacked_trainer_equals_reference(dtype, layout, log_scale):
    layers = [_layer(layout, log_scale, dtype, seed) for seed in (0, 10)]
    flows = [Flow(CompositeTransform([layer]), StandardNormal(DIM)).to(dtype) for layer in layers]
    xs = [_x(dtype, seed) for seed in (2, 3)]
    plan, params = _plan(flows)
    leaves = [torch.stack(ps).detach().requires_grad_() for ps in zip(*params)]
    x_stacked = torch.stack([x.detach() for x in xs]).requires_grad_()
    stacked = _stacked_log_prob(x_stacked, plan, leaves, flows[0].base.log_2pi)
    assert torch.equal(
        stacked, _stacked_log_prob(x_stacked, plan, leaves)
    )  # the default constant is the base's
    got = torch.autograd.grad(stacked.square().sum(), [x_stacked, *leaves])
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    for k, (flow, x) in enumerate(zip(flows, xs)):
        ref = flow.log_prob(x)
        assert torch.equal(stacked[k], ref)
        want = torch.autograd.grad(ref.square().sum(), [x, *flow.parameters()])
        assert _close([g[k] for g in got], want, rtol)


@CASES
@LAYOUT
@MAP
def test_stacked_fused_step_equals_stacked_reference(dtype, layout, log_scale, monkeypatch):
    layers = [_layer(layout, log_scale, dtype, seed) for seed in (0, 10, 20)]
    spec = layers[0].fast_steps()[0]
    stacked = tuple(
        tuple(torch.stack(ts).detach().requires_grad_() for ts in zip(*column))
        for column in zip(*(layer.fast_steps()[0].net for layer in layers))
    )
    params = [t for wb in stacked for t in wb]
    x = torch.stack([_x(dtype, seed).detach() for seed in (2, 3, 4)]).requires_grad_()
    spec = dataclasses.replace(spec, net=stacked)
    ref = spec.forward(x)
    fused = FusedAffineCoupling.apply(x, spec, True, "mm", *params)
    assert _equal(fused, ref)
    for on_s in (False, True):
        got = torch.autograd.grad(_loss(*fused, on_s), [x, *params], retain_graph=True)
        want = torch.autograd.grad(_loss(*ref, on_s), [x, *params], retain_graph=True)
        assert _equal(got, want) if not on_s else _close(got, want, rtol=1e-6)
    if dtype != torch.float32:
        return
    # What fit_many runs: couplings and permutations (shared, then one per flow), fused against
    # the reference ops.
    for shared in (True, False):
        flows = [
            Flow(
                CompositeTransform(
                    [
                        layer,
                        Permutation.random(DIM, 0 if shared else k),
                        _layer(layout, log_scale, dtype, 30 + k),
                    ]
                ),
                StandardNormal(DIM),
            ).to(dtype)
            for k, layer in enumerate(layers)
        ]
        plan, per_flow = _plan(flows)
        leaves = [torch.stack(ps).detach().requires_grad_() for ps in zip(*per_flow)]
        xs = x.detach().requires_grad_()
        outs = []
        for on in (True, False):
            monkeypatch.setattr(fast, "FUSED_TRAINING", on)
            lp = _stacked_log_prob(xs, plan, leaves)
            outs.append((lp, *torch.autograd.grad(lp.square().sum(), [xs, *leaves])))
        assert _equal(*outs)


@LAYOUT
@MAP
def test_spec_log_det_is_the_autograd_jacobians_float64(layout, log_scale):
    mask = LAYOUTS[layout]
    net = randomize(
        AffineCoupling(mask, hidden=(8,)).st_net.double(),
        torch.Generator().manual_seed(4),
        scale=0.5,
    )
    spec = CouplingSpec.from_mask(mask, net, log_scale, 2.0)
    x = torch.randn(4, DIM, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    y, log_det, s = spec.forward(x)
    assert torch.equal(y[:, mask], x[:, mask]) and torch.equal(log_det, s.sum(-1))
    x_back, inv_log_det = spec.inverse(y)
    assert torch.allclose(x_back, x, atol=1e-12) and torch.allclose(
        inv_log_det, -log_det, atol=1e-12
    )
    for i in range(len(x)):
        assert torch.allclose(
            autograd_log_det(lambda u: spec.forward(u)[:2], x[i]), log_det[i], atol=1e-10
        )
        assert torch.allclose(autograd_log_det(spec.inverse, y[i]), inv_log_det[i], atol=1e-10)


@CASES
@MAP
def test_log_scale_table_forms_agree(dtype, log_scale):
    m, bound = LOG_SCALE_MAPS[log_scale], 2.0
    raw = (
        4 * torch.randn(50, 7, dtype=dtype, generator=torch.Generator().manual_seed(6))
    ).requires_grad_()
    s, aux = m.map(raw, bound)
    assert torch.equal(
        m.map_into(raw.detach(), bound, torch.empty_like(s)), s.detach()
    )  # the no-grad path's in-place form
    g = torch.randn(s.shape, dtype=dtype, generator=torch.Generator().manual_seed(7))
    (want,) = torch.autograd.grad(s, raw, g)
    assert torch.equal(
        m.vjp(g, aux, bound), want
    )  # the fused backward's chain rule: autograd's, bit for bit
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(m.derivative(raw.detach(), bound) * g, want, rtol=tol, atol=tol)
    assert m.zero_at_zero == bool(m.map(torch.zeros(1, dtype=dtype), bound)[0] == 0)
