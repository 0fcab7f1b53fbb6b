import os

import pytest
import torch
from torch import nn

from flowcore.cache import canonical, entry_path
from flowcore.config import FlowConfig
from flowcore.runs import train_or_load
from flowcore.studies.debruin2024 import ThesisConfig
from flowcore.studies.debruin2024.training import trained_flow
from flowcore.train import TrainConfig, fit

SMALL = dict(
    dims=[3],
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
    # Within 0.15 nats of the best possible NLL H(p) (KL ≥ 0 on average; noise allows a little
    # below).
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
        fit(_NaNFlow(), x, x, TrainConfig(batch_size=32), progress=False)


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


def _tiny_run(spec, x_train, x_val, train, **kwargs):
    def build():
        return FlowConfig(n_couplings=1, hidden=[4]).build(2)

    return train_or_load(spec, build, lambda: (x_train, x_val), train, progress=False, **kwargs)


def test_the_data_sizes_join_the_key_beside_the_training_settings(tmp_path, monkeypatch):
    """TrainConfig holds no sizes; train_or_load puts them where TrainConfig had them, so the keys
    of the flows cached before stay put, and data of other sizes are another entry."""
    monkeypatch.setenv("FLOWCORE_CACHE", str(tmp_path))
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    train = TrainConfig(batch_size=32, max_epochs=1)
    old_key = {**canonical(train), "n_train": 80, "n_val": 20}  # TrainConfig(n_train=80, n_val=20)
    first = _tiny_run({"doc": 1}, x[:80], x[80:], train)
    assert os.listdir(tmp_path) == [entry_path("flow", {"doc": 1, "train": old_key}).name]
    assert _tiny_run({"doc": 1}, x[:80], x[80:], train, sizes=(80, 20)).from_cache
    other = _tiny_run({"doc": 1}, x[:60], x[60:], train)
    assert not other.from_cache and len(os.listdir(tmp_path)) == 2
    assert first.history.val_nll != other.history.val_nll


def test_given_sizes_spare_the_data_on_a_hit_and_must_match_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWCORE_CACHE", str(tmp_path))
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    train = TrainConfig(batch_size=32, max_epochs=1)
    _tiny_run({"doc": 2}, x[:80], x[80:], train, sizes=(80, 20))

    def no_data():
        raise AssertionError("data() called on a cache hit")

    build = lambda: FlowConfig(n_couplings=1, hidden=[4]).build(2)  # noqa: E731
    hit = train_or_load({"doc": 2}, build, no_data, train, sizes=(80, 20), progress=False)
    assert hit.from_cache
    with pytest.raises(
        ValueError, match=r"hold 80 training and 20 validation samples; its sizes say \(50, 20\)"
    ):
        _tiny_run({"doc": 2}, x[:80], x[80:], train, sizes=(50, 20))
    assert len(os.listdir(tmp_path)) == 1
    with pytest.raises(ValueError, match="n_val must be an integer ≥ 2, got 1"):
        _tiny_run({"doc": 3}, x[:99], x[99:], train)
