"""Training without a host sync per step (:class:`flowcore.train.EpochLog`, read once per epoch as
on CUDA), run here on the CPU by forcing :func:`flowcore.train.deferred_checks`: the histories and
weights are bitwise those of checking each step, and a loss that stops being finite raises the same
``FloatingPointError``, naming the same epoch, step and part."""

import pytest
import torch

import flowcore.train as train_module
import flowcore.train_many as train_many_module
from flowcore.flows import RealNVP
from flowcore.rng import seeded
from flowcore.train import TrainConfig, fit
from flowcore.train_many import fit_many

CONFIG = TrainConfig(batch_size=64, max_epochs=3, patience=2, lr_patience=1)


def _data(seed: int = 0, n: int = 400, dim: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=g) / dim**0.5
    x = torch.randn(n, dim, generator=g) @ a.T + 1.0
    return x[: n * 3 // 4], x[n * 3 // 4 :]


def _flow(seed: int = 0) -> RealNVP:
    with seeded(seed):
        return RealNVP(3, n_couplings=2, hidden=(8,))


@pytest.fixture(params=[False, True], ids=["per step", "per epoch"])
def deferred(request, monkeypatch) -> bool:
    for module in (train_module, train_many_module):
        monkeypatch.setattr(module, "deferred_checks", lambda device, d=request.param: d)
    return request.param


def _fit_state(deferred: bool, **kwargs):
    flow = _flow()
    history = fit(flow, *_data(), CONFIG, progress=False, **kwargs)
    return history, flow.state_dict()


def test_fit_is_bitwise_the_same_either_way(deferred):
    history, state = _fit_state(deferred)
    reference_history, reference_state = _reference()
    assert history.train_nll == reference_history.train_nll
    assert history.val_nll == reference_history.val_nll
    assert all(torch.equal(state[k], reference_state[k]) for k in state)


def _reference():
    """fit with the checks of each step (the CPU's way), computed once."""
    if not hasattr(_reference, "value"):
        flow = _flow()
        history = fit(flow, *_data(), CONFIG, progress=False)
        _reference.value = (history, flow.state_dict())
    return _reference.value


def _nan_at(call: int):
    """A loss term that is 0 until its ``call``-th call, then NaN."""
    calls = []

    def nan_term(batch, log_scales):
        calls.append(1)
        return torch.tensor(float("nan") if len(calls) == call else 0.0)

    return nan_term


def test_a_loss_that_stops_being_finite_raises_the_same_error_either_way(deferred):
    with pytest.raises(FloatingPointError) as raised:
        _fit_state(deferred, loss_terms=[_nan_at(9)])
    # 300 training samples in batches of 64: 5 steps an epoch, so the 9th step is epoch 1, step 3.
    assert str(raised.value) == (
        "training loss became nan at epoch 1, step 3 (lr=0.001); not finite: "
        "loss term 0 (nan_term) = nan; try a lower lr or check the data scale and the loss terms"
    )


def _fit_many():
    flows = [_flow(seed) for seed in range(3)]
    datasets = [_data(seed) for seed in range(3)]
    histories = fit_many(
        flows, [x for x, _ in datasets], [v for _, v in datasets], [CONFIG] * 3, progress=False
    )
    return histories, [flow.state_dict() for flow in flows]


def test_fit_many_is_bitwise_the_same_either_way(deferred, monkeypatch):
    histories, states = _fit_many()
    for module in (train_module, train_many_module):
        monkeypatch.setattr(module, "deferred_checks", lambda device: False)
    reference_histories, reference_states = _fit_many()
    for history, reference in zip(histories, reference_histories):
        assert (history.train_nll, history.val_nll) == (reference.train_nll, reference.val_nll)
    for state, reference in zip(states, reference_states):
        assert all(torch.equal(state[k], reference[k]) for k in state)


def test_fit_many_names_the_flow_whose_loss_stops_being_finite(deferred):
    flows = [_flow(seed) for seed in range(2)]
    x, v = _data()
    bad = x.clone()
    bad[:, 0] *= 1e30  # finite data whose log-density overflows float32
    with pytest.raises(FloatingPointError, match=r"^flow 1 \(seed 0\): training loss became"):
        fit_many(flows, [x, bad], [v, v], [CONFIG, CONFIG], progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_log_is_read_once_an_epoch_and_gives_the_per_step_numbers(monkeypatch):
    """On the device: fit reads its EpochLog once per epoch (deferred_checks is True there), and
    its history and weights equal those of checking each step (both with fused Adam)."""
    assert train_module.deferred_checks("cuda")

    def run():
        flow = _flow().to("cuda")
        x, v = _data()
        history = fit(flow, x.cuda(), v.cuda(), CONFIG, progress=False)
        return history, {k: t.cpu() for k, t in flow.state_dict().items()}

    history, state = run()
    monkeypatch.setattr(train_module, "deferred_checks", lambda device: False)
    reference, reference_state = run()
    assert (history.train_nll, history.val_nll) == (reference.train_nll, reference.val_nll)
    assert all(torch.equal(state[k], reference_state[k]) for k in state)
