"""One training bookkeeping for fit and fit_many (issue 22), pinned to what it replaced.

- ``Tracker``'s learning-rate rule is ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s, epoch by
  epoch, on validation curves with plateaus, ties at the threshold and halvings too small to apply.
- ``fit`` gives bitwise the weights and histories of the loop it had before the Tracker (stock
  Adam, ``ReduceLROnPlateau``, its own best-state copy and stale count), written out below.
- ``fit_many``'s stock Adam with one param group per flow gives bitwise the weights of the
  hand-written flat-buffer Adam it replaced, also once the flows' learning rates differ and after
  stopped flows are dropped.
- ``cache.lookup`` answers a miss with ``None`` (no exception), and ``train_or_load``'s entry is
  ``fit``'s result, bit for bit.

Measured on the development machine (2-core AMD EPYC CPU, torch 2.13), against the code before the
change: the outputs of fit (float32 and float64; early stopping with halvings, fixed, loss terms;
the book's architecture), of fit_many (float64 and float32; K = 1 and 3; flows stopping at
different epochs; learning rates differing while flows train together; the book's architecture)
and the cache entries of train_or_load and train_or_load_many were all bitwise equal.
"""

from __future__ import annotations

import copy
import math
import os
import random

import pytest
import torch

from flowcore import rng
from flowcore.cache import NotCached, cache_only, cached, entry_path, lookup, save_atomic
from flowcore.config import FlowConfig
from flowcore.flows import RealNVP
from flowcore.runs import train_or_load
from flowcore.train import TrainConfig, Tracker, _check_loss_terms, _loss, _mean_nll, fit
from flowcore.train_many import _Packed


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the learning-rate rule


def _curve(seed: int, n: int = 60) -> list[float]:
    """A validation curve that falls, stalls and ties: steps on a 1e-3 grid, so some are exactly
    min_delta."""
    r = random.Random(seed)
    v, out = 3.0, []
    for _ in range(n):
        v += r.choice([-0.05, -0.002, -0.001, -0.001, 0.0, 0.0, 0.001, 0.02])
        out.append(round(v, 3))
    return out


@pytest.mark.parametrize("lr_patience", [1, 2, 4])
@pytest.mark.parametrize("min_delta", [0.0, 1e-3, 0.01])
@pytest.mark.parametrize(
    "lr", [1e-2, 3e-8]
)  # 3e-8: the second halving changes lr by < 1e-8, so it is skipped
def test_tracker_schedule_is_reduce_lr_on_plateau(lr_patience, min_delta, lr):
    config = TrainConfig(lr=lr, lr_patience=lr_patience, min_delta=min_delta, patience=1000)
    flow = torch.nn.Linear(1, 1)
    for seed in range(5):
        optimizer = torch.optim.SGD(flow.parameters(), lr=lr)
        stock = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=lr_patience, threshold=min_delta, threshold_mode="abs"
        )
        tracker = Tracker(config)
        for epoch, v in enumerate(_curve(seed)):
            tracker.end_epoch(epoch, v, v, flow)
            stock.step(v)
            assert tracker.lr == optimizer.param_groups[0]["lr"], (seed, epoch)


def test_tracker_stops_after_patience_stale_epochs_and_keeps_the_best_state():
    flow = torch.nn.Linear(1, 1)
    tracker = Tracker(TrainConfig(patience=2, min_delta=0.1))
    decisions = []
    for epoch, v in enumerate([5.0, 4.0, 3.95, 3.0, 2.95, 2.91]):
        with torch.no_grad():
            flow.weight.fill_(epoch)
        decisions.append(tracker.end_epoch(epoch, v, v, flow))
    assert decisions == [True, True, True, True, True, False]
    assert tracker.history.best_epoch == 3 and tracker.best_val == 3.0
    history = tracker.finish(flow, seconds=1.5)
    assert flow.weight.item() == 3.0 and history.seconds == 1.5 and not flow.training


def test_tracker_fixed_keeps_every_epoch_and_the_lr():
    flow = torch.nn.Linear(1, 1)
    tracker = Tracker(TrainConfig(stopping="fixed", patience=1, lr_patience=1))
    assert all(tracker.end_epoch(e, 1.0, 1.0, flow) for e in range(5))
    assert (
        tracker.history.best_epoch == 4
        and tracker.lr == tracker.config.lr
        and tracker.best_state is None
    )


def test_tracker_finite_checks_name_the_flow_and_the_part():
    tracker = Tracker(TrainConfig(lr=0.5), name="flow 2 (seed 7): ")
    tracker.check_loss(torch.tensor(1.0), 0, 0)
    with pytest.raises(
        FloatingPointError,
        match=r"^flow 2 \(seed 7\): training loss became inf at epoch 1, step 3 \(lr=0.5\); "
        r"not finite: reg = inf; .* and the terms$",
    ):
        tracker.check_loss(
            torch.tensor(math.inf),
            1,
            3,
            [("NLL", torch.tensor(2.0)), ("reg", torch.tensor(math.inf))],
            hint=" and the terms",
        )
    with pytest.raises(
        FloatingPointError, match=r"^flow 2 \(seed 7\): validation NLL became nan at epoch 4"
    ):
        tracker.end_epoch(4, 1.0, math.nan, torch.nn.Linear(1, 1))


# --- fit against the loop it replaced


def _legacy_fit(flow, x_train, x_val, config, loss_terms=()):
    """fit's epoch loop before the Tracker, less progress bars and status (commit 96d34c8)."""
    terms = _check_loss_terms(loss_terms)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(flow.parameters(), lr=config.lr, foreach=True)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        factor=0.5,
        patience=config.lr_patience,
        threshold=config.min_delta,
        threshold_mode="abs",
    )
    train_nll, val_nll, best_epoch, lrs = [], [], -1, []
    best_val, best_state, stale = float("inf"), None, 0
    for epoch in range(config.max_epochs):
        flow.train()
        order = torch.randperm(len(x_train), generator=generator).to(x_train.device)
        running, seen = 0.0, 0
        for idx in order.split(config.batch_size):
            loss, nll, _ = _loss(flow, x_train[idx], terms)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += nll.item() * len(idx)
            seen += len(idx)
        flow.eval()
        val = _mean_nll(flow, x_val, config.batch_size)
        train_nll.append(running / seen)
        val_nll.append(val)
        if config.stopping == "fixed":
            best_epoch = epoch
            continue
        scheduler.step(val)
        lrs.append(optimizer.param_groups[0]["lr"])
        if val < best_val - config.min_delta:
            best_val, best_state, stale, best_epoch = (
                val,
                copy.deepcopy(flow.state_dict()),
                0,
                epoch,
            )
        else:
            stale += 1
        if stale >= config.patience:
            break
    if best_state is not None:
        flow.load_state_dict(best_state)
    return train_nll, val_nll, best_epoch, lrs


def _shrink(batch, log_scales):
    return 1e-2 * sum(s.square().sum(-1).mean() for s in log_scales)


@pytest.mark.parametrize(
    "dtype, stopping, terms",
    [
        (torch.float32, "early", ()),
        (torch.float64, "early", ()),
        (torch.float32, "fixed", ()),
        (torch.float32, "early", (_shrink,)),
    ],
    ids=["f32-early", "f64-early", "f32-fixed", "f32-early-terms"],
)
def test_fit_equals_the_loop_it_replaced_bitwise(dtype, stopping, terms):
    config = TrainConfig(
        batch_size=16,
        lr=1e-2,
        max_epochs=25 if stopping == "early" else 6,
        patience=4,
        lr_patience=1,
        seed=2,
        stopping=stopping,
    )
    g = torch.Generator().manual_seed(0)
    x_train, x_val = (torch.randn(n, 4, generator=g, dtype=dtype) * 3.0 + 2.0 for n in (96, 64))
    with rng.seeded(2):
        flow = RealNVP(4, n_couplings=3, hidden=(8, 8), permutation_seed=2, zero_init=False).to(
            dtype
        )
    legacy = copy.deepcopy(flow)
    history = fit(flow, x_train, x_val, config, progress=False, loss_terms=list(terms))
    train_nll, val_nll, best_epoch, lrs = _legacy_fit(legacy, x_train, x_val, config, terms)
    assert (history.train_nll, history.val_nll, history.best_epoch) == (
        train_nll,
        val_nll,
        best_epoch,
    )
    assert all(
        torch.equal(a, b) for a, b in zip(flow.state_dict().values(), legacy.state_dict().values())
    )
    if stopping == "early":  # the case covers halvings, and a stop before max_epochs
        assert (
            len(set(lrs)) > 1 and len(val_nll) < config.max_epochs and best_epoch < len(val_nll) - 1
        )


# --- fit_many's optimizer against the hand-written step it replaced


def _legacy_adam_steps(per_flow, grads_per_step, lrs_per_step, drop_after, keep):
    """fit_many's Adam before issue 22: one flat buffer, parameter j of all flows the block
    (m, *shape_j), per-element learning rates once they differ; after step ``drop_after`` only flows
    ``keep`` stay."""
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    shapes = [p.shape for p in per_flow[0]]

    def pack(blocks):
        return torch.cat([b.reshape(-1) for b in blocks])

    def views(flat, m):
        out, start = [], 0
        for shape in shapes:
            out.append(flat[start : start + m * shape.numel()].view(m, *shape))
            start += m * shape.numel()
        return out

    def owner(m):
        return torch.cat([torch.arange(m).repeat_interleave(s.numel()) for s in shapes])

    m = len(per_flow)
    theta = pack([torch.stack([ps[j] for ps in per_flow]) for j in range(len(shapes))])
    exp_avg, exp_avg_sq = torch.zeros_like(theta), torch.zeros_like(theta)
    for step, (grads, lrs) in enumerate(zip(grads_per_step, lrs_per_step), start=1):
        grad = pack(grads)
        lr_el = None if len(set(lrs)) == 1 else torch.tensor(lrs, dtype=torch.float64)[owner(m)]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias1 = 1 - beta1 ** float(step)
        denom = (exp_avg_sq.sqrt() / (1 - beta2 ** float(step)) ** 0.5).add_(eps)
        if lr_el is None:
            theta.addcdiv_(exp_avg, denom, value=-(lrs[0] / bias1))
        else:
            theta.addcdiv_(exp_avg * (lr_el / -bias1).to(theta.dtype), denom)
        if step == drop_after:
            keep_t = torch.tensor(keep)
            theta, exp_avg, exp_avg_sq = (
                pack([v[keep_t] for v in views(s, m)]) for s in (theta, exp_avg, exp_avg_sq)
            )
            m = len(keep)
    return [[v[a] for v in views(theta, m)] for a in range(m)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_packed_stock_adam_equals_the_hand_written_step_bitwise(dtype):
    g = torch.Generator().manual_seed(0)
    shapes = [(6, 3), (6,), (4, 6), (4,)]
    per_flow = [[torch.randn(s, generator=g, dtype=dtype) for s in shapes] for _ in range(3)]
    keep, drop_after = [0, 2], 4
    lrs_per_step = (
        [[1e-2] * 3] * 2 + [[1e-2, 5e-3, 1e-2]] * 2 + [[5e-3, 2.5e-3]] * 3
    )  # equal, then differing, then two flows
    grads_per_step = [
        [torch.randn(len(lrs), *s, generator=g, dtype=dtype) for s in shapes]
        for lrs in lrs_per_step
    ]
    expected = _legacy_adam_steps(per_flow, grads_per_step, lrs_per_step, drop_after, keep)
    packed = _Packed(per_flow, lrs_per_step[0][0])
    for step, (grads, lrs) in enumerate(zip(grads_per_step, lrs_per_step), start=1):
        packed.step(grads, lrs)
        if step == drop_after:
            packed.keep(keep)
    got = [packed.views(row) for row in packed.rows]
    assert len(got) == len(expected) == 2
    assert all(
        torch.equal(a, b)
        for flow_got, flow_expected in zip(got, expected)
        for a, b in zip(flow_got, flow_expected)
    )


# --- the cache lookup and train_or_load's entry


def test_lookup_returns_none_on_a_miss_and_honours_validate_and_cache_only(tmp_path):
    config = {"dim": 2}
    assert lookup("table", config, directory=tmp_path) is None
    save_atomic({"x": 1}, entry_path("table", config, tmp_path))
    assert lookup("table", config, directory=tmp_path) == {"x": 1}
    with pytest.warns(RuntimeWarning, match="does not match its config"):
        assert (
            lookup("table", config, directory=tmp_path, validate=lambda entry: "y" in entry) is None
        )
    with cache_only():
        assert lookup("table", config, directory=tmp_path) == {"x": 1}
        with pytest.raises(NotCached, match="no cache entry"):
            lookup("table", {"dim": 3}, directory=tmp_path)
        with pytest.raises(NotCached, match="does not match"):
            lookup("table", config, directory=tmp_path, validate=lambda entry: False)
    assert cached("table", config, lambda: {"x": 2}, directory=tmp_path) == ({"x": 1}, True)


def test_train_or_load_entry_is_fit_bitwise(tmp_path):
    config = TrainConfig(
        batch_size=32,
        lr=1e-2,
        max_epochs=6,
        patience=2,
        lr_patience=1,
        seed=3,
    )
    x = torch.randn(128, 3, generator=rng.generator(0))

    def build():
        return FlowConfig(n_couplings=2, hidden=[8]).build(3)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLOWCORE_CACHE", str(tmp_path))
        run = train_or_load({"pin": 1}, build, lambda: (x[:96], x[96:]), config, progress=False)
        entry = lookup("flow", {"pin": 1, "train": config.key(96, 32)})
    with rng.seeded(3):
        alone = build()
    assert all(
        torch.equal(a, b)
        for a, b in zip(run.untrained.state_dict().values(), alone.state_dict().values())
    )
    history = fit(alone, x[:96], x[96:], config, progress=False)
    for state in (run.flow.state_dict(), entry["state_dict"]):
        assert all(torch.equal(a, b) for a, b in zip(state.values(), alone.state_dict().values()))
    assert (
        run.history.val_nll == history.val_nll == entry["history"]["val_nll"]
        and run.history.best_epoch == history.best_epoch
    )
    assert os.listdir(tmp_path) == [
        entry_path("flow", {"pin": 1, "train": config.key(96, 32)}).name
    ]
