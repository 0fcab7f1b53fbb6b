"""The fused training path (flowcore.flows.fast.FusedAffineCoupling / FusedPermutation): its
hand-written backward against autograd (gradcheck in float64), float32 through oneDNN against the
reference ops, and RealNVP's log_prob and parameter gradients with the path on and off."""

import pytest
import torch
from torch import nn

from flowcore.flows import AffineCoupling, RealNVP, fast, halves, onednn_linear_available
from flowcore.flows.fast import FusedAffineCoupling, FusedPermutation
from flowcore.train import TrainConfig, _adam, fit

F64 = torch.float64
ONEDNN = onednn_linear_available()
needs_onednn = pytest.mark.skipif(
    not ONEDNN, reason="oneDNN's fused linear is not available in this build"
)


def every_third(dim, parity):
    return (torch.arange(dim) % 3 == 0) ^ bool(parity)


# (mask, parity): copied part first, transformed part first, and non-contiguous index sets.
LAYOUTS = [("halves", 0), ("halves", 1), ("every_third", 0)]
MAPS = ["tanh", "sigmoid", "exp"]


def _mask(name, dim, parity):
    return halves(dim, parity) if name == "halves" else every_third(dim, parity)


def _coupling(layout, log_scale, dim=7, hidden=(6, 5), dtype=F64, seed=0):
    torch.manual_seed(seed)
    layer = AffineCoupling(
        _mask(*layout[:1], dim, layout[1]), hidden=hidden, log_scale=log_scale, zero_init=False
    ).to(dtype)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=dtype))
    return layer


def _plan(layer, want_s, gemms="mm"):
    """The arguments AffineCoupling passes to FusedAffineCoupling before the parameters: its spec
    (st-network as layers), ``want_s`` and ``gemms``; ``gemms="mm"``: no oneDNN (float64)."""
    return (layer.fast_steps()[0], want_s, gemms)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda v: f"{v[0]}{v[1]}")
@pytest.mark.parametrize("log_scale", MAPS)
@pytest.mark.parametrize("hidden", [(6, 5), (4,)], ids=["2hidden", "1hidden"])
def test_fused_coupling_gradcheck_float64(layout, log_scale, hidden):
    # In float64 the Function runs its formulas with addmm/mm: gradcheck tests the hand-written
    # backward (input, every weight and bias, with and without the log-scale output).
    layer = _coupling(layout, log_scale, hidden=hidden)
    params = tuple(p.detach().clone().requires_grad_() for p in layer.st_net.parameters())
    x = torch.randn(
        9, layer.dim, dtype=F64, generator=torch.Generator().manual_seed(3), requires_grad=True
    )
    for want_s in (False, True):
        plan = _plan(layer, want_s)
        assert torch.autograd.gradcheck(
            lambda x, *ps: FusedAffineCoupling.apply(x, *plan, *ps), (x, *params)
        )
    # Only some outputs used, and the data input without a gradient (the first coupling's case).
    plan = _plan(layer, True)
    assert torch.autograd.gradcheck(
        lambda *ps: FusedAffineCoupling.apply(x.detach(), *plan, *ps)[1], params
    )
    assert torch.autograd.gradcheck(
        lambda x, *ps: FusedAffineCoupling.apply(x, *plan, *ps)[2], (x, *params)
    )


@pytest.mark.parametrize("log_scale", MAPS)
def test_fused_coupling_gradgradcheck_float64(log_scale):
    # A double backward (create_graph=True) differentiates the recomputed reference ops.
    layer = _coupling(("halves", 0), log_scale, hidden=(4,))
    plan = _plan(layer, True)
    params = tuple(p.detach().double().requires_grad_() for p in layer.st_net.parameters())
    x = torch.randn(
        5, layer.dim, dtype=F64, generator=torch.Generator().manual_seed(4), requires_grad=True
    )
    assert torch.autograd.gradgradcheck(
        lambda x, *ps: FusedAffineCoupling.apply(x, *plan, *ps), (x, *params)
    )


def test_fused_coupling_matches_reference_ops_in_float64():
    # The Function's forward and its gradients equal the coupling's reference ops (float64, no
    # oneDNN).
    for layout in LAYOUTS:
        for log_scale in MAPS:
            layer = _coupling(layout, log_scale)
            plan = _plan(layer, True)
            x = torch.randn(
                11,
                layer.dim,
                dtype=F64,
                generator=torch.Generator().manual_seed(5),
                requires_grad=True,
            )
            y, log_det, s = FusedAffineCoupling.apply(x, *plan, *layer.st_net.parameters())
            ref_scales = []
            y_ref, log_det_ref = layer(x, log_scales=ref_scales)  # float64: the reference ops
            for a, b in ((y, y_ref), (log_det, log_det_ref), (s, ref_scales[0])):
                assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)
            w = torch.randn(y.shape, dtype=F64, generator=torch.Generator().manual_seed(6))
            got = torch.autograd.grad(
                (y * w).sum() + log_det.square().sum() + s.sum(), (x, *layer.parameters())
            )
            want = torch.autograd.grad(
                (y_ref * w).sum() + log_det_ref.square().sum() + ref_scales[0].sum(),
                (x, *layer.parameters()),
            )
            for a, b in zip(got, want):
                assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


GEMMS = [pytest.param(g, marks=needs_onednn if g != "mm" else ()) for g in fast.GEMM_CHOICES]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda v: f"{v[0]}{v[1]}")
@pytest.mark.parametrize("log_scale", MAPS)
@pytest.mark.parametrize("gemms", GEMMS)
def test_fused_coupling_float32_matches_reference_ops(layout, log_scale, gemms, monkeypatch):
    # float32: the Function against the coupling's reference autograd ops. With gemms="mm" it makes
    # the same calls in the same order: bitwise equal (with a loss on s as well, three gradients
    # meet at s and their sum may round differently). Through oneDNN the GEMMs sum in another
    # order: equal to float32 rounding.
    monkeypatch.setattr(fast, "FUSED_GEMMS", gemms)
    layer = _coupling(layout, log_scale, dim=9, hidden=(32, 16), dtype=torch.float32)
    x = torch.randn(300, layer.dim, generator=torch.Generator().manual_seed(7), requires_grad=True)
    w = torch.randn(300, layer.dim, generator=torch.Generator().manual_seed(8))
    results = {}
    for fused in (True, False):
        layer.fused_training = fused
        scales = []
        y, log_det = layer(x, log_scales=scales)
        assert (type(y.grad_fn).__name__ == "FusedAffineCouplingBackward") == fused
        inputs = (x, *layer.parameters())
        grads = torch.autograd.grad((y * w).sum() + log_det.sum(), inputs, retain_graph=True)
        grads_s = torch.autograd.grad(
            (y * w).sum() + log_det.sum() + 0.1 * scales[0].square().sum(), inputs
        )
        results[fused] = (y, log_det, scales[0], grads, grads_s)
    (y, ld, s, grads, grads_s), (y_ref, ld_ref, s_ref, grads_ref, grads_s_ref) = (
        results[True],
        results[False],
    )
    if gemms == "mm":
        assert torch.equal(y, y_ref) and torch.equal(ld, ld_ref) and torch.equal(s, s_ref)
        assert all(torch.equal(a, b) for a, b in zip(grads, grads_ref))
    for a, b in ((y, y_ref), (ld, ld_ref), (s, s_ref)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads + grads_s, grads_ref + grads_s_ref):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_fused_permutation_is_exact_and_twice_differentiable():
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    inv = torch.argsort(perm)
    x = torch.randn(4, 6, dtype=F64, requires_grad=True)
    assert torch.equal(FusedPermutation.apply(x, perm, inv), x[..., perm])
    assert torch.autograd.gradcheck(lambda x: FusedPermutation.apply(x, perm, inv), (x,))
    assert torch.autograd.gradgradcheck(lambda x: FusedPermutation.apply(x, perm, inv), (x,))


def _flow(variant, seed=0):
    torch.manual_seed(seed)
    flow = RealNVP(n_couplings=4, hidden=(32, 32), zero_init=False, **variant)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return flow


FLOW_VARIANTS = [
    dict(dim=20, mask="halves", log_scale="tanh", permutation="random"),
    dict(dim=7, mask="alternating", log_scale="exp", permutation="reverse"),
    dict(dim=6, mask=every_third, log_scale="sigmoid", permutation="none"),
]


@pytest.mark.parametrize(
    "variant", FLOW_VARIANTS, ids=["D20-halves-tanh", "D7-alternating-exp", "D6-indexed-sigmoid"]
)
@pytest.mark.parametrize("gemms", GEMMS)
def test_realnvp_log_prob_and_gradients_equal_with_the_fused_path_on_and_off(
    variant, gemms, monkeypatch
):
    monkeypatch.setattr(fast, "FUSED_GEMMS", gemms)
    flow = _flow(variant)
    x = torch.randn(512, variant["dim"], generator=torch.Generator().manual_seed(9))
    results = {}
    for on in (True, False):
        monkeypatch.setattr(fast, "FUSED_TRAINING", on)
        flow.zero_grad(set_to_none=True)
        log_p = flow.log_prob(x)
        (-log_p.mean()).backward()
        results[on] = (log_p.detach(), [p.grad.clone() for p in flow.parameters()])
        # log_prob_and_log_scales gives the same numbers as log_prob, on either path.
        assert torch.equal(flow.log_prob_and_log_scales(x)[0].detach(), results[on][0])
    (lp, grads), (lp_ref, grads_ref) = results[True], results[False]
    if gemms == "mm":  # the same calls in the same order
        assert torch.equal(lp, lp_ref) and all(torch.equal(a, b) for a, b in zip(grads, grads_ref))
    assert torch.allclose(lp, lp_ref, rtol=1e-5, atol=1e-4)
    for a, b in zip(grads, grads_ref):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())
    # The per-coupling attribute turns it off too.
    for m in flow.modules():
        if isinstance(m, AffineCoupling):
            m.fused_training = False
    assert "Fused" not in type(flow.transform(x.requires_grad_())[0].grad_fn).__name__


def test_reference_ops_where_the_fused_path_does_not_apply():
    flow = _flow(FLOW_VARIANTS[0])
    x = torch.randn(8, 20)

    def last_node(flow, x):
        z, _ = flow.transform(x)
        return type(z.grad_fn).__name__ if z.grad_fn is not None else None

    assert last_node(flow, x) == "FusedAffineCouplingBackward"
    assert "Fused" not in last_node(flow.double(), x.double())  # float64
    flow.float()
    assert "Fused" not in last_node(flow, x.reshape(2, 4, 20))  # not 2-D
    with torch.no_grad():
        assert last_node(flow, x) is None  # gradients off
    # A forward hook on an st-network still fires (that coupling takes the reference ops).
    seen = []
    handle = flow.transform.transforms[-1].st_net.register_forward_hook(
        lambda mod, inp, out: seen.append(out.shape)
    )
    assert "Fused" not in last_node(flow, x) and seen == [(8, 20)]
    handle.remove()
    # Another st-network, in the module or in a subclass's spec: the reference ops.
    layer = AffineCoupling(halves(4, 0), hidden=(8,))
    assert layer._fused_spec(torch.zeros(3, 4)) is not None
    layer.st_net[1] = nn.Tanh()
    assert layer._fused_spec(torch.zeros(3, 4)) is None

    class Shifted(AffineCoupling):
        def spec(self, net=None):
            return super().spec(net if net is not None else lambda a: self.st_net(a) + 1)

    shifted = Shifted(halves(4, 0), hidden=(8,))
    assert shifted._fused_spec(torch.zeros(3, 4)) is None
    assert torch.equal(shifted(torch.zeros(3, 4))[0][:, 2:], torch.ones(3, 2))  # t = 1 at zero init


@pytest.mark.parametrize("gemms", GEMMS)
def test_fit_takes_the_fused_path_and_trains_like_the_reference(gemms, monkeypatch):
    # With the default gemms="mm", fit's results are the reference path's bit for bit (Adam's
    # foreach update equals its per-parameter loop bit for bit too); through oneDNN, to rounding.
    calls = []
    original = FusedAffineCoupling.apply

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(FusedAffineCoupling, "apply", counting)
    monkeypatch.setattr(fast, "FUSED_GEMMS", gemms)
    config = TrainConfig(batch_size=64, lr=1e-3, max_epochs=2, seed=0, stopping="fixed")
    g = torch.Generator().manual_seed(0)
    x, x_val = torch.randn(256, 6, generator=g) * 2 + 1, torch.randn(64, 6, generator=g) * 2 + 1
    states = {}
    for on in (True, False):
        monkeypatch.setattr(fast, "FUSED_TRAINING", on)
        torch.manual_seed(0)
        flow = RealNVP(6, n_couplings=3, hidden=(16, 16))
        calls.clear()
        history = fit(flow, x, x_val, config, progress=False)
        assert (len(calls) == 2 * 4 * 3) == on  # 2 epochs x 4 batches x 3 couplings
        states[on] = (history, flow.state_dict())
    (h, s), (h_ref, s_ref) = states[True], states[False]
    if gemms == "mm":
        assert h.train_nll == h_ref.train_nll and h.val_nll == h_ref.val_nll
        assert all(torch.equal(s[k], s_ref[k]) for k in s)
    assert all(abs(a - b) < 1e-4 for a, b in zip(h.val_nll, h_ref.val_nll))
    for k in s:
        assert torch.allclose(s[k], s_ref[k], atol=1e-4), (
            k
        )  # Adam: lr 1e-3 per step, so a wrong gradient shows


def test_fused_gemms_setting(monkeypatch):
    assert (
        fast.FUSED_GEMMS == "mm" and fast.fused_gemms() == "mm"
    )  # the default: bitwise the reference path
    monkeypatch.setattr(fast, "FUSED_GEMMS", "no such thing")
    assert fast.fused_gemms() == "mm"
    monkeypatch.setattr(fast, "FUSED_GEMMS", "onednn")
    assert fast.fused_gemms() == ("onednn" if ONEDNN else "mm")


def test_fit_adam_foreach_equals_the_default_loop_bitwise():
    assert _adam(RealNVP(3, n_couplings=1, hidden=(4,)), 1e-3).defaults["foreach"] is True
    params = [torch.randn(16, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)] + [
        torch.randn(8)
    ]
    results = []
    for foreach in (True, False):
        ps = [p.clone().requires_grad_() for p in params]
        opt = torch.optim.Adam(ps, lr=1e-3, foreach=foreach)
        g = torch.Generator().manual_seed(1)
        for step in range(10):
            if step == 5:
                opt.param_groups[0]["lr"] *= 0.5  # as ReduceLROnPlateau does
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g) * 10.0 ** (step % 3 - 2)
            opt.step()
        results.append(ps)
    assert all(torch.equal(a, b) for a, b in zip(*results))
