import pytest
import torch

from flowcore import RealNVP
from flowcore.flows import AffineCoupling, resolve_device


def _randomize(module, gen):
    """Give the zero-initialised last layers non-zero weights so the flow is not the identity."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


@pytest.mark.parametrize("dim", [2, 5, 6])
@pytest.mark.parametrize("parity", [0, 1])
def test_coupling_inverts_and_log_det_matches_autograd(dim, parity, gen):
    layer = _randomize(AffineCoupling(dim, parity, hidden=(16,)).double(), gen)
    x = torch.randn(4, dim, generator=gen, dtype=torch.float64)
    y, log_det = layer(x)
    x_back, inv_log_det = layer.inverse(y)
    assert torch.allclose(x_back, x, atol=1e-12)
    assert torch.allclose(inv_log_det, -log_det, atol=1e-12)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), x[i])
        assert torch.allclose(torch.linalg.slogdet(jac).logabsdet, log_det[i], atol=1e-10)


@pytest.mark.parametrize("dim", [2, 3, 7])
def test_flow_inverts_and_log_det_matches_autograd(dim, gen):
    flow = _randomize(RealNVP(dim, n_couplings=4, hidden=(16, 16)).double(), gen)
    x = torch.randn(5, dim, generator=gen, dtype=torch.float64)
    z, log_det = flow(x)
    assert torch.allclose(flow.inverse(z), x, atol=1e-10)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: flow(v.unsqueeze(0))[0].squeeze(0), x[i])
        assert torch.allclose(torch.linalg.slogdet(jac).logabsdet, log_det[i], atol=1e-9)


def test_log_prob_is_base_plus_log_det(gen):
    flow = _randomize(RealNVP(6, n_couplings=3, hidden=(8,)).double(), gen)
    x = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    z, log_det = flow(x)
    base = torch.distributions.MultivariateNormal(torch.zeros(6, dtype=torch.float64), torch.eye(6, dtype=torch.float64))
    assert torch.allclose(flow.log_prob(x), base.log_prob(z) + log_det, atol=1e-10)


def test_flow_starts_as_identity_density_and_samples(gen):
    flow = RealNVP(5, n_couplings=4)
    x = torch.randn(8, 5, generator=gen)
    z, log_det = flow(x)
    # Every coupling starts as the identity, so the flow is a fixed permutation: p_θ = N(0, I).
    assert torch.all(log_det == 0)
    assert torch.equal(z.sort(-1).values, x.sort(-1).values)
    assert torch.allclose(flow.log_prob(x), flow.base_log_prob(x))
    sample = flow.sample(100, generator=gen)
    assert sample.shape == (100, 5) and torch.isfinite(sample).all()


def test_log_scale_is_bounded(gen):
    layer = AffineCoupling(4, 0, hidden=(8,), log_scale_bound=2.0)
    with torch.no_grad():
        layer.st_net[-1].bias.fill_(100.0)
    _, log_det = layer(torch.randn(3, 4, generator=gen))
    assert torch.all(log_det <= 2.0 * 2 + 1e-5)


@pytest.mark.parametrize("onednn", [True, False], ids=["onednn-if-available", "addmm"])
@pytest.mark.parametrize("dim, hidden, dtype", [(7, (16, 16), torch.float64), (100, (32, 32), torch.float32), (2, (8,), torch.float32)])
def test_no_grad_log_prob_matches_autograd_path(dim, hidden, dtype, onednn, gen):
    # Under no_grad / inference_mode, log_prob takes a blocked in-place path (float32 on the CPU
    # through oneDNN's fused linear where this build has it); it must agree with forward +
    # base_log_prob (the path training takes) to rounding: GEMMs may sum in another order, so
    # exact equality is not asserted.
    flow = _randomize(RealNVP(dim, n_couplings=5, hidden=hidden).to(dtype), gen)
    flow.eval_onednn = onednn
    x = torch.randn(3, 41, dim, generator=gen, dtype=dtype)
    x_before = x.clone()
    z, log_det = flow(x)
    expected = (flow.base_log_prob(z) + log_det).detach()
    tol = {"rtol": 1e-12, "atol": 1e-9} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-3}
    for block_rows in (16, None):  # several blocks with a ragged last one; the default block size
        flow.eval_block_rows = block_rows
        with torch.no_grad():
            fast = flow.log_prob(x)
        with torch.inference_mode():
            fast_inf = flow.log_prob(x)
        assert fast.shape == (3, 41) and not fast.requires_grad
        assert torch.allclose(fast, expected, **tol) and torch.equal(fast_inf, fast)
    assert torch.equal(x, x_before)
    with torch.no_grad():
        assert flow.log_prob(x[0, :0]).shape == (0,)


def test_log_prob_keeps_autograd_when_grad_is_on(gen):
    flow = _randomize(RealNVP(6, n_couplings=3, hidden=(8,)).double(), gen)
    x = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    loss = -flow.log_prob(x).mean()
    loss.backward()
    assert all(p.grad is not None for p in flow.parameters())
    with torch.no_grad(), pytest.raises(RuntimeError):
        flow.log_prob(x.float())  # a dtype mismatch still raises, as on the autograd path


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_flow_runs_on_cuda(gen):
    flow = RealNVP(7, n_couplings=2).to("cuda")
    x = torch.randn(16, 7, generator=gen).cuda()
    assert torch.allclose(flow.inverse(flow(x)[0]), x, atol=1e-5)


def test_device_names():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    for bad in ("gpu", "tpu", "cuda:x", 3):
        with pytest.raises(ValueError, match="device must be one of"):
            resolve_device(bad)
