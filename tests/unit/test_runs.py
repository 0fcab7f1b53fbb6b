import os

import pytest
import torch
from torch import nn

from flowcore.studies.debruin2024 import ThesisConfig
from flowcore.studies.debruin2024.training import trained_flow
from flowcore.train import TrainConfig, fit

SMALL = dict(
    dims=[3],
    n_train=3_000,
    n_val=500,
    max_epochs=6,
    batch_size=256,
    n_couplings=2,
    hidden=[16],
    n_test=100,
    n_repeats=2,
)


def test_fit_learns_the_gaussian():
    cfg = ThesisConfig.from_params(
        **{
            **SMALL,
            "n_train": 5_000,
            "n_val": 1_000,
            "n_couplings": 4,
            "hidden": [32, 32],
            "max_epochs": 30,
            "lr": 3e-3,
        }
    )
    run = trained_flow(3, cfg)
    h = run.history
    assert h.val_nll[h.best_epoch] < h.val_nll[0] - 0.2
    # Within 0.15 nats of the best possible NLL H(p) (KL ≥ 0 on average; noise allows a little below).
    assert h.val_nll[h.best_epoch] - run.p.entropy() < 0.15


def test_cache_round_trip_and_atomic_files(tmp_path):
    cfg = ThesisConfig.from_params(**SMALL)
    first = trained_flow(3, cfg)
    second = trained_flow(3, cfg)
    assert not first.from_cache and second.from_cache
    for a, b in zip(first.flow.state_dict().values(), second.flow.state_dict().values()):
        assert torch.equal(a, b)
    files = os.listdir(os.environ["FLOWCORE_CACHE"])
    assert len(files) == 1 and files[0].endswith(".pt")
    # A different training setting is a different entry.
    trained_flow(3, ThesisConfig.from_params(**{**SMALL, "lr": 2e-3}))
    assert len(os.listdir(os.environ["FLOWCORE_CACHE"])) == 2


def test_interrupted_training_leaves_no_cache_file():
    def interrupt(epoch, history):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trained_flow(3, ThesisConfig.from_params(**SMALL), callback=interrupt)
    assert (
        not os.path.exists(os.environ["FLOWCORE_CACHE"])
        or os.listdir(os.environ["FLOWCORE_CACHE"]) == []
    )


def test_corrupted_cache_entry_is_reported_and_recomputed():
    cfg = ThesisConfig.from_params(**SMALL)
    trained_flow(3, cfg)
    (entry,) = [
        os.path.join(os.environ["FLOWCORE_CACHE"], f)
        for f in os.listdir(os.environ["FLOWCORE_CACHE"])
    ]
    with open(entry, "r+b") as f:
        f.truncate(100)
    with pytest.warns(RuntimeWarning, match="unreadable"):
        again = trained_flow(3, cfg)
    assert not again.from_cache
    assert trained_flow(3, cfg).from_cache


class _NaNFlow(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def log_prob(self, x):
        return self.w + x.sum(-1) * float("nan")


def test_nan_loss_raises_clearly():
    x = torch.randn(64, 2)
    with pytest.raises(FloatingPointError, match="training loss became nan at epoch 0, step 0"):
        fit(_NaNFlow(), x, x, TrainConfig(n_train=64, n_val=64, batch_size=32), progress=False)


def test_non_finite_data_raises():
    x = torch.randn(64, 2)
    x[3, 1] = float("inf")
    with pytest.raises(ValueError, match="x_train contains NaN or inf"):
        fit(_NaNFlow(), x, torch.randn(8, 2), TrainConfig(), progress=False)


def test_training_is_deterministic(tmp_path, monkeypatch):
    cfg = ThesisConfig.from_params(**SMALL)
    states = []
    for run in ("a", "b"):
        monkeypatch.setenv("FLOWCORE_CACHE", str(tmp_path / run))
        trained = trained_flow(3, cfg)
        assert not trained.from_cache
        states.append(trained.flow.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
