"""fit's two stopping rules, and that the rule added later left the default's cache keys alone."""

import copy

import torch

from flowcore.cache import canonical, job_key
from flowcore.flows import RealNVP
from flowcore.train import TrainConfig, fit


def _data(n, seed):
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(seed)) * torch.tensor(
        [3.0, 0.3, 1.0]
    )


def test_fixed_budget_runs_every_epoch_and_keeps_the_last_weights():
    # patience = 1 would end an early-stopping run at its first stale epoch; a fixed budget ignores
    # it.
    config = TrainConfig(
        batch_size=32,
        lr=0.05,
        max_epochs=6,
        patience=1,
        seed=0,
        stopping="fixed",
    )
    torch.manual_seed(0)
    flow = RealNVP(3, n_couplings=2, hidden=(16,))
    snapshots = []
    history = fit(
        flow,
        _data(256, 0),
        _data(64, 1),
        config,
        progress=False,
        callback=lambda epoch, h: snapshots.append(copy.deepcopy(flow.state_dict())),
    )
    assert len(history.val_nll) == 6 and history.best_epoch == 5
    assert all(
        torch.equal(a, b) for a, b in zip(flow.state_dict().values(), snapshots[-1].values())
    )


def test_the_default_stopping_rule_is_not_part_of_the_cache_key():
    assert "stopping" not in canonical(TrainConfig())
    assert canonical(TrainConfig(stopping="fixed"))["stopping"] == "fixed"
    assert job_key("flow", TrainConfig()) != job_key("flow", TrainConfig(stopping="fixed"))
