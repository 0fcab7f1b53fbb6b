"""fit's extra loss terms: term(batch, log_scales) -> scalar, added to the minibatch NLL."""

import math

import pytest
import torch

from flowcore.flows import RealNVP
from flowcore.train import TrainConfig, fit

CONFIG = TrainConfig(batch_size=50, lr=1e-2, max_epochs=3, patience=5, seed=0)


def _data(dim=3, n=192, seed=0):
    g = torch.Generator().manual_seed(seed)
    scales = torch.tensor([3.0, 0.3, 1.0, 2.0][:dim])
    return torch.randn(n, dim, generator=g) * scales + 1.0


def _train(loss_terms=(), seed=0, config=CONFIG):
    x = _data()
    torch.manual_seed(seed)
    flow = RealNVP(3, n_couplings=3, hidden=(16,))
    history = fit(flow, x, _data(n=64, seed=1), config, progress=False, loss_terms=loss_terms)
    return flow, history


def _mean_abs_log_scale(flow):
    _, log_scales = flow.log_prob_and_log_scales(_data(n=64, seed=2))
    return torch.cat([s.abs().flatten() for s in log_scales]).mean().item()


def test_zero_term_leaves_training_bitwise_identical():
    def zero(batch, log_scales):
        return 0.0 * sum(s.square().sum() for s in log_scales)

    flow_a, hist_a = _train()
    flow_b, hist_b = _train([zero])
    assert (
        hist_a.train_nll == hist_b.train_nll
        and hist_a.val_nll == hist_b.val_nll
        and hist_a.best_epoch == hist_b.best_epoch
    )
    for p, q in zip(flow_a.parameters(), flow_b.parameters()):
        assert torch.equal(p, q)


def test_log_scale_penalty_shrinks_log_scales():
    def penalty(batch, log_scales):
        return 10.0 * sum(s.square().sum(-1).mean() for s in log_scales)

    plain, _ = _train()
    shrunk, history = _train([penalty])
    assert _mean_abs_log_scale(shrunk) < 0.5 * _mean_abs_log_scale(plain)
    assert all(math.isfinite(v) for v in history.train_nll)


def test_terms_get_the_batch_and_one_log_scale_per_coupling():
    seen = []

    def record(batch, log_scales):
        seen.append(
            (batch.shape, [s.shape for s in log_scales], all(s.requires_grad for s in log_scales))
        )
        return batch.new_zeros(())

    flow, _ = _train([record], config=TrainConfig(batch_size=50, max_epochs=1))
    widths = [c.n_transformed for c in flow.transform.transforms if hasattr(c, "n_transformed")]
    assert widths == [2, 1, 2]
    assert [b for b, _, _ in seen] == [
        (50, 3),
        (50, 3),
        (50, 3),
        (42, 3),
    ]  # the last batch is ragged
    for (batch, _), shapes, grad in seen:
        assert shapes == [(batch, w) for w in widths] and grad


def test_nan_term_raises_naming_it():
    def nan_term(batch, log_scales):
        return torch.tensor(float("nan"))

    with pytest.raises(FloatingPointError, match=r"loss term 0 \(nan_term\) = nan"):
        _train([nan_term])


@pytest.mark.parametrize(
    "terms, match",
    [
        ([1.0], r"loss_terms\[0\] must be a callable"),
        ("penalty", "loss_terms must be a list of callables"),
        (lambda batch, log_scales: 0.0, "wrap a single term in a list"),
    ],
)
def test_bad_loss_terms_raise_value_error(terms, match):
    with pytest.raises(ValueError, match=match):
        _train(terms)


def test_term_must_return_a_scalar_tensor():
    with pytest.raises(ValueError, match="must return a scalar tensor"):
        _train([lambda batch, log_scales: log_scales[0]])
