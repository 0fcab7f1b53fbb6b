"""flowcore.flows: every transform inverts, its log-dets match autograd Jacobians (float64), and the
no-grad fast path agrees with the autograd path for every variant."""

import warnings

import pytest
import torch

from flowcore.devices import resolve_device
from flowcore.flows.checks import check_inverse_and_log_dets
from flowcore.flows import (
    AffineCoupling,
    CompositeTransform,
    FastPathWarning,
    Flow,
    Permutation,
    RealNVP,
    StandardNormal,
    Transform,
    alternating,
    halves,
    unsupported_reason,
)


def every_third(dim, parity):
    """A custom mask whose copied and transformed coordinates are not contiguous."""
    return (torch.arange(dim) % 3 == 0) ^ bool(parity)


# Every value of every option appears at least once; odd and even D.
VARIANTS = [
    dict(dim=2, mask="halves", log_scale="tanh", permutation="random", zero_init=True),
    dict(dim=5, mask="halves", log_scale="exp", permutation="reverse", zero_init=False),
    dict(dim=6, mask="alternating", log_scale="sigmoid", permutation="none", zero_init=True),
    dict(dim=7, mask="alternating", log_scale="tanh", permutation="reverse", zero_init=False),
    dict(dim=7, mask=every_third, log_scale="exp", permutation="random", zero_init=True),
    dict(dim=4, mask=every_third, log_scale="sigmoid", permutation="none", zero_init=False),
]
IDS = [
    f"D{v['dim']}-{getattr(v['mask'], '__name__', v['mask'])}-{v['log_scale']}-"
    f"{v['permutation']}-zero{int(v['zero_init'])}"
    for v in VARIANTS
]


def _randomize(module, gen, scale=0.3):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def _flow(variant, gen, dtype=torch.float64, hidden=(16, 16), n_couplings=3):
    flow = RealNVP(n_couplings=n_couplings, hidden=hidden, **variant).to(dtype)
    # A zero-initialised last layer would make every coupling the identity: give it weights.
    # Default-init flows (zero_init False) are tested with their own weights.
    return _randomize(flow, gen) if variant["zero_init"] else flow


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_flow_inverts_and_log_dets_match_autograd(variant, gen):
    flow = _flow(variant, gen)
    x = 1.5 * torch.randn(4, variant["dim"], generator=gen, dtype=torch.float64)
    z, log_det = flow.transform(x)
    assert not torch.allclose(z, x)  # not the identity, so the checks below mean something
    check_inverse_and_log_dets(
        flow.transform, x, z, log_det, inverse_atol=1e-10, log_det_atol=1e-9, rows=3
    )


MASKS = {
    "halves0": halves(5, 0),
    "halves1": halves(5, 1),
    "alternating0": alternating(6, 0),
    "alternating1": alternating(5, 1),
    "custom": torch.tensor([False, True, True, False, True]),
}


@pytest.mark.parametrize("mask", list(MASKS.values()), ids=list(MASKS))
@pytest.mark.parametrize("log_scale", ["exp", "tanh", "sigmoid"])
def test_coupling_inverts_and_log_dets_match_autograd(mask, log_scale, gen):
    layer = _randomize(
        AffineCoupling(mask, hidden=(8,), log_scale=log_scale).double(), gen, scale=0.5
    )
    x = torch.randn(3, len(mask), generator=gen, dtype=torch.float64)
    log_scales = []
    y, log_det = layer(x, log_scales=log_scales)
    assert torch.equal(y[:, mask], x[:, mask])  # the copied coordinates pass through
    (s,) = log_scales
    assert s.shape == (3, layer.n_transformed) and torch.equal(s.sum(-1), log_det)
    check_inverse_and_log_dets(layer, x, y, log_det, inverse_atol=1e-12, log_det_atol=1e-10)


@pytest.mark.parametrize("variant", VARIANTS[:3], ids=IDS[:3])
def test_log_prob_is_base_plus_log_det(variant, gen):
    flow = _flow(variant, gen)
    dim = variant["dim"]
    x = torch.randn(10, dim, generator=gen, dtype=torch.float64)
    z, log_det = flow.transform(x)
    base = torch.distributions.MultivariateNormal(
        torch.zeros(dim, dtype=torch.float64), torch.eye(dim, dtype=torch.float64)
    )
    assert torch.allclose(flow.base.log_prob(z), base.log_prob(z), atol=1e-12)
    assert torch.allclose(flow.log_prob(x), base.log_prob(z) + log_det, atol=1e-10)
    log_p, log_scales = flow.log_prob_and_log_scales(x)
    assert torch.equal(log_p, flow.log_prob(x))  # the same numbers as the training path
    couplings = [m for m in flow.transform.transforms if isinstance(m, AffineCoupling)]
    assert [s.shape for s in log_scales] == [(10, c.n_transformed) for c in couplings]


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_no_grad_fast_path_matches_autograd_path(variant, gen):
    # Under no_grad / inference_mode log_prob takes the blocked in-place path of flowcore.flows.fast
    # (float32 on the CPU through oneDNN's fused linear where this build has it). GEMMs may sum in
    # another order, so float32 agrees to rounding, not bitwise.
    assert unsupported_reason(_flow(variant, gen)) is None
    for dtype, onednn in ((torch.float64, True), (torch.float32, True), (torch.float32, False)):
        flow = _flow(variant, gen, dtype=dtype, hidden=(16, 8))
        flow.eval_onednn = onednn
        x = torch.randn(3, 41, variant["dim"], generator=gen, dtype=dtype)
        x_before = x.clone()
        expected = flow.log_prob(x).detach()
        tol = (
            {"rtol": 1e-12, "atol": 1e-10}
            if dtype == torch.float64
            else {"rtol": 1e-5, "atol": 1e-4}
        )
        for block_rows in (
            16,
            None,
        ):  # several blocks with a ragged last one; the default block size
            flow.eval_block_rows = block_rows
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no fallback warning for a supported flow
                with torch.no_grad():
                    fast = flow.log_prob(x)
                with torch.inference_mode():
                    fast_inf = flow.log_prob(x)
            assert fast.shape == (3, 41) and not fast.requires_grad
            assert torch.allclose(fast, expected, **tol) and torch.equal(fast_inf, fast)
        assert torch.equal(x, x_before)
        with torch.no_grad():
            assert flow.log_prob(x[0, :0]).shape == (0,)


class Shift(Transform):
    """A transform the fast path does not know."""

    def forward(self, x, log_scales=None):
        return x + 0.5, x.new_zeros(x.shape[:-1])

    def inverse(self, z):
        return z - 0.5, z.new_zeros(z.shape[:-1])


def test_unknown_transform_falls_back_warns_once_and_is_right(gen):
    coupling = _randomize(AffineCoupling(halves(4, 1), hidden=(8,)).double(), gen)
    flow = Flow(
        CompositeTransform([coupling, Permutation.reverse(4), Shift()]), StandardNormal(4)
    ).double()
    assert "Shift" in unsupported_reason(flow)
    x = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    z, log_det = flow.transform(x)
    expected = StandardNormal(4).double().log_prob(z) + log_det
    with pytest.warns(FastPathWarning, match="Shift"):
        with torch.no_grad():
            got = flow.log_prob(x)
    assert torch.allclose(got, expected, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per flow
        with torch.no_grad():
            assert torch.allclose(flow.log_prob(x), expected, atol=1e-12)


def test_coupling_with_another_st_network_falls_back(gen):
    flow = RealNVP(4, n_couplings=2, hidden=(8,))
    flow.transform.transforms[0].st_net[1] = torch.nn.Tanh()
    assert "AffineCoupling" in unsupported_reason(flow) and "st-network" in unsupported_reason(flow)
    x = torch.randn(5, 4, generator=gen)
    with pytest.warns(FastPathWarning, match="AffineCoupling"), torch.no_grad():
        assert torch.equal(flow.log_prob(x), flow.log_prob_and_log_scales(x)[0])


@pytest.mark.parametrize("permutation", ["random", "reverse", "none"])
@pytest.mark.parametrize("log_scale", ["exp", "tanh"])
def test_zero_init_flow_starts_as_standard_normal(permutation, log_scale, gen):
    flow = RealNVP(5, n_couplings=4, hidden=(8,), permutation=permutation, log_scale=log_scale)
    x = torch.randn(8, 5, generator=gen)
    z, log_det = flow.transform(x)
    # Every coupling starts as the identity, so the flow is a fixed permutation: p_θ = N(0, I).
    assert torch.all(log_det == 0)
    assert torch.equal(z.sort(-1).values, x.sort(-1).values)
    assert torch.allclose(flow.log_prob(x), flow.base.log_prob(x))
    assert (
        flow.initially_identity
    )  # the studies score such an untrained flow by its base (exactly the same density)
    sample = flow.sample(100, generator=gen)
    assert sample.shape == (100, 5) and torch.isfinite(sample).all()


def test_zero_init_sigmoid_starts_as_a_fixed_contraction(gen):
    flow = RealNVP(5, n_couplings=2, hidden=(8,), log_scale="sigmoid")
    _, log_det = flow.transform(torch.randn(3, 5, generator=gen))
    s0 = torch.log(torch.sigmoid(torch.tensor(2.0)) + 1e-3)  # e^s = σ(0 + 2) + 1e-3
    assert torch.allclose(log_det, (3 + 2) * s0.expand(3))
    assert (
        not flow.initially_identity
        and not RealNVP(5, log_scale="tanh", zero_init=False).initially_identity
    )


def test_random_permutations_and_init_use_no_global_rng():
    torch.manual_seed(0)
    a = RealNVP(
        6, n_couplings=3, hidden=(8,), permutation="random", mask="alternating"
    )  # same widths as halves
    torch.manual_seed(0)
    b = RealNVP(6, n_couplings=3, hidden=(8,), permutation="none")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    perms = [m.perm for m in a.transform.transforms if isinstance(m, Permutation)]
    g = torch.Generator().manual_seed(0)
    assert all(torch.equal(p, torch.randperm(6, generator=g)) for p in perms)


def test_log_scale_maps(gen):
    x = torch.randn(3, 4, generator=gen)
    for log_scale, expected in (("tanh", 2.0 * 2), ("exp", 100.0 * 2)):
        layer = AffineCoupling(halves(4, 0), hidden=(8,), log_scale=log_scale, log_scale_bound=2.0)
        with torch.no_grad():
            layer.st_net[-1].bias.fill_(100.0)
        _, log_det = layer(x)
        assert torch.all(log_det <= expected + 1e-4) and torch.allclose(
            log_det, torch.full((3,), expected)
        )
    layer = AffineCoupling(halves(4, 0), hidden=(8,), log_scale="sigmoid")
    with torch.no_grad():
        layer.st_net[-1].bias.fill_(-100.0)
    _, log_det = layer(x)
    assert torch.allclose(
        log_det, torch.full((3,), 2 * torch.log(torch.tensor(1e-3)).item()), rtol=1e-4
    )


def test_log_prob_keeps_autograd_when_grad_is_on(gen):
    flow = _randomize(RealNVP(6, n_couplings=3, hidden=(8,)).double(), gen)
    x = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    loss = -flow.log_prob(x).mean()
    loss.backward()
    assert all(p.grad is not None for p in flow.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a dtype mismatch falls back quietly ...
        with torch.no_grad(), pytest.raises(RuntimeError):
            flow.log_prob(x.float())  # ... and still raises, as on the autograd path
    with pytest.raises(TypeError, match="flow.transform"):
        flow(x)


def _bad(fn, *args, **kwargs):
    return lambda: fn(*args, **kwargs)


@pytest.mark.parametrize(
    "make, name",
    [
        (_bad(AffineCoupling, torch.tensor([1, 0])), "mask"),
        (_bad(AffineCoupling, torch.tensor([True, True])), "mask"),
        (
            _bad(AffineCoupling, halves(4, 0), log_scale="softplus"),
            "log_scale must be one of 'exp', 'tanh', 'sigmoid'",
        ),
        (_bad(AffineCoupling, halves(4, 0), log_scale_bound=0.0), "log_scale_bound"),
        (_bad(AffineCoupling, halves(4, 0), zero_init="yes"), "zero_init"),
        (_bad(AffineCoupling, halves(4, 0), hidden=(8, 0)), r"hidden\[1\]"),
        (_bad(RealNVP, 1), "dim"),
        (_bad(RealNVP, 4, n_couplings=0), "n_couplings"),
        (_bad(RealNVP, 4, mask="checkerboard"), "mask must be one of 'halves', 'alternating'"),
        (_bad(RealNVP, 4, mask=lambda dim, parity: halves(dim + 1, parity)), "mask"),
        (
            _bad(RealNVP, 4, permutation="shuffle"),
            "permutation must be one of 'random', 'reverse', 'none'",
        ),
        (_bad(RealNVP, 4, log_scale="relu"), "log_scale"),
        (_bad(RealNVP, 4, permutation_seed=-1), "permutation_seed"),
        (_bad(Permutation, [0, 0, 1]), "perm"),
        (_bad(Permutation, [0.0, 1.0]), "perm"),
        (_bad(halves, 1), "dim"),
        (_bad(alternating, 4, 2), "parity"),
        (_bad(StandardNormal, 0), "dim"),
        (_bad(lambda: RealNVP(3).sample(0)), "n"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_device_names():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    for bad in ("gpu", "tpu", "cuda:x", 3):
        with pytest.raises(ValueError, match="device must be one of"):
            resolve_device(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", VARIANTS[3:5], ids=IDS[3:5])
def test_flow_runs_on_cuda(variant, gen):
    flow = _flow(variant, gen, dtype=torch.float32).to("cuda")
    x = torch.randn(16, variant["dim"], generator=gen).cuda()
    z, log_det = flow.transform(x)
    assert torch.allclose(flow.transform.inverse(z)[0], x, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(flow.log_prob(x), flow.base.log_prob(z) + log_det, atol=1e-4)
    assert flow.sample(8, generator=gen).device.type == "cuda"
