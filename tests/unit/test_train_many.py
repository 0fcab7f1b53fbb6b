"""fit_many trains K flows as one batched model and gives each what fit gives it alone.

Measured on the development machine (2-core AMD EPYC CPU, torch 2.13 CPU build):

* float64 (test 1): weights and histories equal fit's bitwise (difference 0.0), with
  early stopping, learning-rate halvings at different epochs, flows stopping at different epochs,
  ``stopping="fixed"`` and K = 1.
* float32, the book's architecture (D = 5, 8 couplings, hidden (64, 64), 1,000 samples, batch 128,
  4 epochs, seeds 0, 1, 2; test 2): the final validation NLLs equal fit's exactly (difference
  0.0) for every seed, and differ by at most 9.8e-7 nats over all epochs (one float32 ulp at 11.7
  nats); the weights are not bitwise equal (largest difference 3.5e-6, in an st-network's last
  layer, whose weight gradient the batched product ``bmm`` sums in another order than ``mm``).
  Flow k trained alone (K = 1) and in a group of 3 gives bitwise equal weights and histories.

Timings vary with the machine's load; the tests run with one intra-op thread (see ``_one_thread``).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from unittest import mock

import pytest
import torch

from flowcore import rng
from flowcore.cache import canonical, entry_path
from flowcore.config import FlowConfig
from flowcore.flows import RealNVP
from flowcore.runs import train_or_load, train_or_load_many
from flowcore.train import TrainConfig, Tracker, fit
from flowcore.train_many import fit_many


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these tiny problems run many times faster so on a busy 2-core machine
    (the numbers above were measured this way; fit and fit_many always run under the same
    setting)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _flows(seeds, dtype=torch.float64, **kw):
    """One RealNVP per seed, initial weights from rng.seeded(seed), permutations from the seed
    too."""
    out = []
    for s in seeds:
        with rng.seeded(s):
            out.append(
                RealNVP(
                    4,
                    permutation_seed=s,
                    **{"n_couplings": 3, "hidden": (8, 8), "zero_init": False, **kw},
                ).to(dtype)
            )
    return out


def _data(k, n, dim=4, dtype=torch.float64, scale=1.0, val=False):
    """Flow k's training (or validation) set: N(k, (1 + k)²) in each coordinate, times ``scale``."""
    g = torch.Generator().manual_seed(100 + k + (1000 if val else 0))
    return (torch.randn(n, dim, generator=g, dtype=dtype) * (1.0 + k) + k) * scale


def _max_weight_diff(a, b) -> float:
    return max(
        (x - y).abs().max().item() for x, y in zip(a.state_dict().values(), b.state_dict().values())
    )


def _bitwise(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _alone_with_lrs(flow, x_train, x_val, config):
    """fit, recording the learning rate its Tracker sets after each epoch."""
    lrs = []
    end_epoch = Tracker.end_epoch

    def spy(self, *args):
        go_on = end_epoch(self, *args)
        lrs.append(self.lr)
        return go_on

    with mock.patch.object(Tracker, "end_epoch", spy):
        history = fit(flow, x_train, x_val, config, progress=False)
    return history, lrs


@pytest.mark.parametrize(
    "stopping, seeds, n_couplings",
    [("early", (3, 4, 5), 3), ("fixed", (6, 7, 8), 2), ("early", (9,), 2)],
    ids=["early-K3", "fixed-K3", "early-K1"],
)
def test_float64_equals_fit_flow_by_flow(stopping, seeds, n_couplings):
    k_flows = len(seeds)
    configs = [
        TrainConfig(
            batch_size=32,
            lr=3e-2,
            max_epochs=14,
            patience=2,
            lr_patience=1,
            min_delta=1e-3,
            seed=s,
            stopping=stopping,
        )
        for s in seeds
    ]
    flows = _flows(seeds, n_couplings=n_couplings)
    alone = [copy.deepcopy(f) for f in flows]
    x_train = [_data(k, 96) for k in range(k_flows)]
    x_val = [_data(k, 64, val=True) for k in range(k_flows)]
    histories = fit_many(flows, x_train, x_val, configs, progress=False)
    lengths, lr_runs = [], []
    for k in range(k_flows):
        ref, lrs = _alone_with_lrs(alone[k], x_train[k], x_val[k], configs[k])
        got = histories[k]
        assert len(got.val_nll) == len(ref.val_nll) and got.best_epoch == ref.best_epoch
        assert (
            max(
                abs(a - b) for a, b in zip(got.val_nll + got.train_nll, ref.val_nll + ref.train_nll)
            )
            <= 1e-9
        )
        assert _max_weight_diff(flows[k], alone[k]) <= 1e-9
        # Each flow holds its own weights as ordinary parameters: they load into a fresh flow.
        fresh = _flows([0], n_couplings=n_couplings)[0]
        fresh.load_state_dict(flows[k].state_dict())
        assert _bitwise(fresh, flows[k])
        lengths.append(len(ref.val_nll))
        lr_runs.append(lrs)
    if stopping == "fixed":
        assert all(h.best_epoch == 13 for h in histories) and lengths == [14] * k_flows
    elif k_flows > 1:
        # The case covers flows stopping before the others and learning rates that have diverged
        # while flows still train together.
        assert len(set(lengths)) > 1
        assert any(
            len({lrs[e] for lrs in lr_runs if len(lrs) > e}) > 1 for e in range(max(lengths))
        )
        assert len({h.seconds for h in histories}) == 1  # the wall time of the whole batched run


# Measured on the development machine (module docstring): float32 fit_many vs fit, D = 5, 8
# couplings, hidden (64, 64), seeds 0, 1, 2. The final validation NLLs were equal (0.0) for every
# seed; over all epochs they differed by at most 9.8e-7 nats (one float32 ulp at 11.7 nats); the
# weights were not bitwise equal, largest difference 3.5e-6 (an st-network's last-layer weight, of
# size 0.14). Flow k alone (K = 1) and in the group of 3 gave bitwise equal weights and histories.
MEASURED_VAL_DIFF = 9.8e-7
MEASURED_WEIGHT_DIFF = 3.5e-6


def _book_flows(seeds, dim=5):
    out = []
    for s in seeds:
        with rng.seeded(s):
            out.append(
                FlowConfig().build(dim)
            )  # the book's architecture: 8 couplings, hidden (64, 64)
    return out


def test_float32_book_architecture_agreement_and_k_independence():
    seeds = (0, 1, 2)
    configs = [TrainConfig(batch_size=128, max_epochs=4, seed=s, stopping="fixed") for s in seeds]
    x_train = [_data(k, 1000, dim=5, dtype=torch.float32) for k in range(3)]
    x_val = [_data(k, 500, dim=5, dtype=torch.float32, val=True) for k in range(3)]
    group = _book_flows(seeds)
    alone_fit = [copy.deepcopy(f) for f in group]
    alone_many = [copy.deepcopy(f) for f in group]
    histories = fit_many(group, x_train, x_val, configs, progress=False)
    final_diffs, val_diffs, weight_diffs, bitwise = [], [], [], []
    for k in range(3):
        ref = fit(alone_fit[k], x_train[k], x_val[k], configs[k], progress=False)
        final_diffs.append(abs(ref.val_nll[-1] - histories[k].val_nll[-1]))
        val_diffs.append(max(abs(a - b) for a, b in zip(ref.val_nll, histories[k].val_nll)))
        bitwise.append(_bitwise(group[k], alone_fit[k]))
        weight_diffs.append(_max_weight_diff(group[k], alone_fit[k]))
        # K-independence: flow k trained alone by fit_many vs in the group of 3.
        single = fit_many([alone_many[k]], [x_train[k]], [x_val[k]], [configs[k]], progress=False)[
            0
        ]
        assert _bitwise(alone_many[k], group[k]), (
            f"flow {k}: K=1 and K=3 differ by {_max_weight_diff(alone_many[k], group[k])}"
        )
        assert single.val_nll == histories[k].val_nll and single.train_nll == histories[k].train_nll
    print(
        f"float32: final val NLL diffs {final_diffs}, all-epoch val NLL diffs {val_diffs}, "
        f"weight diffs {weight_diffs}, bitwise {bitwise}"
    )
    assert max(final_diffs) <= 10 * MEASURED_VAL_DIFF
    assert max(val_diffs) <= 10 * MEASURED_VAL_DIFF
    assert max(weight_diffs) <= 10 * MEASURED_WEIGHT_DIFF


def _small(seeds, n=64, **kw):
    configs = [TrainConfig(batch_size=32, max_epochs=2, seed=s, **kw) for s in seeds]
    return (
        _flows(seeds, n_couplings=2),
        [_data(k, n) for k in range(len(seeds))],
        [_data(k, 32, val=True) for k in range(len(seeds))],
        configs,
    )


def test_validation_errors():
    flows, xt, xv, configs = _small((0, 1, 2))
    bad = list(configs)
    bad[2] = TrainConfig(batch_size=32, max_epochs=2, seed=2, lr=2e-3)
    with pytest.raises(ValueError, match=r"configs\[2\]\.lr"):
        fit_many(flows, xt, xv, bad, progress=False)
    with pytest.raises(ValueError, match=r"train_sets\[1\]"):
        fit_many(flows, [xt[0], xt[1][:48], xt[2]], xv, configs, progress=False)
    nan = xv[1].clone()
    nan[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"val_sets\[1\] contains NaN"):
        fit_many(flows, xt, [xv[0], nan, xv[2]], configs, progress=False)
    with pytest.raises(ValueError, match=r"train_sets\[0\] contains NaN"):
        fit_many(flows, [xt[0] * float("inf"), xt[1], xt[2]], xv, configs, progress=False)
    with pytest.raises(ValueError, match="architecture"):
        fit_many(
            [flows[0], _flows([1], n_couplings=2, hidden=(4, 8))[0]],
            xt[:2],
            xv[:2],
            configs[:2],
            progress=False,
        )
    with pytest.raises(ValueError, match="K ≥ 1"):
        fit_many(flows, xt[:2], xv, configs, progress=False)
    with pytest.raises(ValueError, match="shares parameters"):
        fit_many([flows[0], flows[0]], xt[:2], xv[:2], configs[:2], progress=False)


def test_non_finite_loss_names_the_flow():
    seeds = (0, 1, 2)
    flows = _flows(seeds, dtype=torch.float32, n_couplings=2)
    configs = [TrainConfig(batch_size=32, max_epochs=2, seed=s) for s in seeds]
    xt = [
        _data(k, 64, dtype=torch.float32, scale=1e30 if k == 1 else 1.0) for k in range(3)
    ]  # |z|² overflows
    xv = [_data(k, 32, dtype=torch.float32, val=True) for k in range(3)]
    with pytest.raises(
        FloatingPointError, match=r"flow 1 \(seed 1\): training loss became inf at epoch 0, step 0"
    ):
        fit_many(flows, xt, xv, configs, progress=False)


def _specs_builds_datas(n_flows, scale_of=None):
    scale_of = scale_of or {}
    specs = [{"test": "train_many", "flow": k} for k in range(n_flows)]
    builds = [lambda: FlowConfig(n_couplings=2, hidden=[8]).build(3)] * n_flows
    datas = [
        (
            lambda k=k: (
                _data(k, 64, dim=3, dtype=torch.float32, scale=scale_of.get(k, 1.0)),
                _data(k, 32, dim=3, dtype=torch.float32, val=True),
            )
        )
        for k in range(n_flows)
    ]
    trains = [TrainConfig(batch_size=32, max_epochs=2, seed=10 + k) for k in range(n_flows)]
    return specs, builds, datas, trains


def test_train_or_load_many_caches_each_flow(tmp_path):
    with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": str(tmp_path)}):
        specs, builds, datas, trains = _specs_builds_datas(3)
        # One of the three already cached: only the two others are trained, together.
        (one,) = train_or_load_many(specs[:1], builds[:1], datas[:1], trains[:1], progress=False)
        assert not one.from_cache and len(list(tmp_path.glob("*.pt"))) == 1
        with mock.patch("flowcore.runs.fit_many", wraps=fit_many) as spy:
            first = train_or_load_many(specs, builds, datas, trains, progress=False)
        assert spy.call_count == 1 and len(spy.call_args.args[0]) == 2
        assert [r.from_cache for r in first] == [True, False, False]
        assert len(list(tmp_path.glob("*.pt"))) == 3
        again = train_or_load_many(specs, builds, datas, trains, progress=False)
        assert all(r.from_cache for r in again) and all(r.extras == {} for r in again)
        for a, b in zip(first, again):
            assert _bitwise(a.flow, b.flow) and a.history == b.history
        assert _bitwise(one.flow, again[0].flow)
        # A batched-trained flow never serves (or is served by) one trained alone.
        assert not train_or_load(
            specs[1], builds[1], datas[1], trains[1], progress=False
        ).from_cache


def test_train_or_load_many_caches_nothing_when_training_raises(tmp_path):
    with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": str(tmp_path)}):
        specs, builds, datas, trains = _specs_builds_datas(3, scale_of={2: 1e30})
        train_or_load_many(specs[:1], builds[:1], datas[:1], trains[:1], progress=False)
        before = sorted(Path(tmp_path).iterdir())
        with pytest.raises(
            FloatingPointError, match="flow 1"
        ):  # the third flow, second of the two trained
            train_or_load_many(specs, builds, datas, trains, progress=False)
        assert sorted(Path(tmp_path).iterdir()) == before and len(before) == 1


def test_train_or_load_many_keys_each_flow_with_its_data_sizes(tmp_path):
    """The sizes join each flow's key where TrainConfig held them before; given sizes must match."""
    with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": str(tmp_path)}):
        specs, builds, datas, trains = _specs_builds_datas(2)
        sizes = [(64, 32)] * 2
        train_or_load_many(specs, builds, datas, trains, sizes=sizes, progress=False)
        keys = [
            {**spec, "trainer": "batched", "train": {**canonical(t), "n_train": 64, "n_val": 32}}
            for spec, t in zip(specs, trains)
        ]
        assert sorted(p.name for p in tmp_path.glob("*.pt")) == sorted(
            entry_path("flow", key).name for key in keys
        )
        with pytest.raises(ValueError, match=r"flow 0 hold 64 training and 32 validation"):
            train_or_load_many(
                [{"other": 1}], builds[:1], datas[:1], trains[:1], sizes=[(60, 32)], progress=False
            )
        with pytest.raises(ValueError, match="one entry per flow"):
            train_or_load_many(specs, builds, datas, trains, sizes=sizes[:1], progress=False)
