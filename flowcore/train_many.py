r"""Train :math:`K` flows of one architecture at once, as one batched model.

:func:`fit_many` runs :func:`flowcore.train.fit` for flows :math:`k = 1, \dots, K` together. The
flows' weights are stacked along a leading axis of length :math:`K`: each step evaluates all
:math:`K` minibatch NLLs with one batched matrix product per st-network layer (``torch.baddbmm``,
the same operations in the same order as ``Flow.log_prob`` with gradients on), and updates all
weights with one step of a stock ``torch.optim.Adam`` whose param groups are the flows' rows of
one flat buffer, so the forward and backward passes' ops per step do not grow with :math:`K` (at
the book's sizes on the CPU, per-op overhead rivals the arithmetic; Adam's step takes about ten
ops per flow). Because flow
:math:`k`'s loss depends only on its own weights,

.. math:: \nabla_{\theta_k} \sum_{j=1}^K L_j(\theta_j) = \nabla_{\theta_k} L_k(\theta_k),

one backward pass of the summed loss gives every flow the gradient ``fit`` would give it. The
minibatch order, Adam's moments and learning rate, and the bookkeeping of
:class:`~flowcore.train.Tracker` (history, ``ReduceLROnPlateau``'s schedule, best weights, early
stopping) are each flow's own, as in ``fit``; so the result is, per flow, what ``fit`` computes, up
to floating-point rounding.

Measured agreement with one-at-a-time ``fit`` (``tests/unit/test_train_many.py``, 2-core AMD EPYC
CPU, torch 2.13):

* float64, small RealNVPs (early stopping with flows stopping at different epochs and halving
  their learning rates at different epochs, ``stopping="fixed"``, K = 1): weights and histories
  bitwise equal (the test's tolerance is 1e-9);
* float32, the book's architecture (D = 5, 8 couplings, hidden (64, 64), 1,000 samples, batch
  128, 4 epochs, 3 seeds): final validation NLLs equal (difference 0.0), at most 9.8e-7 nats
  apart over all epochs; weights not bitwise equal, at most 3.5e-6 apart (``bmm`` sums an
  st-network's last-layer weight gradient in another order than ``fit``'s products);
* flow :math:`k`'s result does not depend on :math:`K`: trained alone or in a group of 3, its
  float32 weights and history are bitwise equal.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from flowcore import status
from flowcore.flows.distributions import LOG_2PI_F32, standard_normal_log_prob
from flowcore.flows.fast import (
    FusedAffineCoupling,
    FusedPermutation,
    PermuteStep,
    fused_training_applies,
    permute,
    unsupported_reason,
)
from flowcore.flows.flow import Flow
from flowcore.flows.spec import CouplingSpec
from flowcore.train import (
    EpochLog,
    History,
    TrainConfig,
    Tracker,
    _mean_nll,
    deferred_checks,
    show_progress,
)

__all__ = ["fit_many"]


@dataclass(frozen=True, eq=False)
class _Permute:
    """``z = x[..., perm_k]``; ``perm`` is ``(D,)`` when all flows share it, else ``(K, D)``."""

    perm: Tensor
    inverse: Tensor = field(init=False)  # the inverse permutation(s), of perm's shape

    def __post_init__(self) -> None:
        object.__setattr__(self, "inverse", torch.argsort(self.perm, dim=-1))


@dataclass
class _Track:
    """Flow ``index``'s own part of a batched run: its parameters (in the plan's order), its
    minibatch order and its bookkeeping."""

    index: int
    params: list[nn.Parameter]
    generator: torch.Generator
    tracker: Tracker


def _check_configs(configs: Sequence[TrainConfig]) -> TrainConfig:
    for k, config in enumerate(configs):
        if not isinstance(config, TrainConfig):
            raise ValueError(f"configs[{k}] must be a TrainConfig, got {type(config).__name__}")
        for f in dataclasses.fields(TrainConfig):
            if f.name != "seed" and getattr(config, f.name) != getattr(configs[0], f.name):
                raise ValueError(
                    "configs must be equal except seed: "
                    f"configs[{k}].{f.name} = {getattr(config, f.name)!r} "
                    f"differs from configs[0].{f.name} = {getattr(configs[0], f.name)!r}"
                )
    return configs[0]


def _plan(flows: Sequence[nn.Module]) -> tuple[list, list[list[nn.Parameter]]]:
    """The shared layer plan and each flow's parameters in the plan's order; a ``ValueError`` unless
    the flows have one architecture that the stacked forward covers."""
    first = flows[0]
    shapes = {k: v.shape for k, v in first.state_dict().items()}
    seen: set[int] = set()
    per_flow_steps, per_flow_params = [], []
    for k, flow in enumerate(flows):
        if type(flow) is not type(first):
            raise ValueError(
                f"flows must share one architecture: flows[{k}] is a {type(flow).__name__}, "
                f"flows[0] a {type(first).__name__}"
            )
        if {n: v.shape for n, v in flow.state_dict().items()} != shapes:
            raise ValueError(
                f"flows must share one architecture: flows[{k}]'s state_dict keys or shapes "
                "differ from flows[0]'s"
            )
        if not isinstance(flow, Flow) or type(flow).log_prob is not Flow.log_prob:
            raise ValueError(
                f"flows[{k}] must be a flowcore.flows.Flow that keeps Flow.log_prob, "
                f"got {type(flow).__name__}"
            )
        reason = unsupported_reason(flow)
        if reason is not None:  # the stacked forward runs the fast path's steps, with autograd
            raise ValueError(f"flows[{k}] has a layer the batched trainer does not cover: {reason}")
        steps = flow.transform.fast_steps()
        params = [
            t for step in steps if isinstance(step, CouplingSpec) for wb in step.net for t in wb
        ]
        ids = {id(p) for p in params}
        if ids != {id(p) for p in flow.parameters()}:
            raise ValueError(f"flows[{k}] has parameters outside its couplings' st-networks")
        if ids & seen:
            raise ValueError(
                f"flows[{k}] shares parameters with an earlier flow; pass K distinct flows"
            )
        seen |= ids
        per_flow_steps.append(steps)
        per_flow_params.append(params)

    plan: list = []
    for i, step in enumerate(per_flow_steps[0]):
        column = [steps[i] for steps in per_flow_steps]
        if isinstance(step, PermuteStep):
            perms = torch.stack([s.perm for s in column])
            plan.append(
                _Permute(step.perm if all(torch.equal(p, step.perm) for p in perms) else perms)
            )
            continue
        for k, s in enumerate(column):
            same = type(s.copied) is type(step.copied) and (
                s.copied == step.copied
                if isinstance(step.copied, slice)
                else torch.equal(s.copied, step.copied)
            )
            if not same or (s.log_scale, s.bound, len(s.net)) != (
                step.log_scale,
                step.bound,
                len(step.net),
            ):
                raise ValueError(
                    f"flows must share one architecture: flows[{k}]'s layer {i} has another mask "
                    "or log-scale map than flows[0]'s"
                )
        plan.append(step)  # flows[0]'s spec: _stacked_log_prob swaps in the stacked layers
    return plan, per_flow_params


def _stacked_log_prob(
    x: Tensor, plan: list, params: list[Tensor], log_2pi: Tensor | float = LOG_2PI_F32
) -> Tensor:
    """``log p_k(x[k])`` of shape ``(K, B)`` for ``x`` of shape ``(K, B, D)``: ``Flow.log_prob``
    with gradients on, as the same operations in the same order. Each coupling is its spec's
    reference evaluation (:meth:`~flowcore.flows.spec.CouplingSpec.forward`) with the K flows'
    layers stacked (one ``torch.baddbmm`` per layer); a permutation's zero log-det is left out
    (adding 0 is exact). ``log_2pi``: :data:`~flowcore.flows.distributions.LOG_2PI_F32`, or the
    base's :attr:`~flowcore.flows.StandardNormal.log_2pi` (the same value on the flows' device).

    Where the fused training path applies (float32 on the CPU,
    :func:`~flowcore.flows.fast.fused_training_applies`), each coupling is one autograd node
    (:class:`~flowcore.flows.fast.FusedAffineCoupling` on the stacked layers) and each permutation
    one gather (:class:`~flowcore.flows.fast.FusedPermutation`): the same values and gradients, bit
    for bit, with fewer autograd nodes (``tests/unit/test_coupling_paths.py``)."""
    fused = fused_training_applies(x, params)
    log_det = x.new_zeros(x.shape[:-1])
    weights = iter(params)
    for layer in plan:
        if isinstance(layer, _Permute):
            x = (
                FusedPermutation.apply(x, layer.perm, layer.inverse)
                if fused
                else permute(x, layer.perm)
            )
            continue
        stacked = tuple((next(weights), next(weights)) for _ in layer.net)
        spec = dataclasses.replace(layer, net=stacked)
        if fused:
            x, ld = FusedAffineCoupling.apply(
                x, spec, False, "mm", *(t for wb in stacked for t in wb)
            )
        else:
            x, ld, _ = spec.forward(x)
        log_det = log_det + ld
    return standard_normal_log_prob(x, log_2pi) + log_det


class _Packed:
    """The active flows' weights as the rows of one ``(m, P)`` buffer (flow ``a``'s parameters,
    flattened in the plan's order, in row ``a``) and a stock ``torch.optim.Adam`` with one param
    group per row: its own learning rate, moments and step count. The stacked forward reads
    parameter ``j`` of all flows as the view ``(m, *shape_j)`` of a block of columns, and the
    optimizer updates the rows in place, so neither copies the weights.

    The stock step gives bit for bit the numbers of the hand-written Adam over the whole buffer that
    it replaced (``tests/unit/test_train_tracker.py``), at about ten ops per flow instead of ten in
    all: one param group per flow is what gives each flow its own learning rate."""

    def __init__(self, per_flow: Sequence[Sequence[Tensor]], lr: float):
        self.shapes = [p.shape for p in per_flow[0]]
        self.numels = [s.numel() for s in self.shapes]
        with torch.no_grad():
            theta = torch.stack([torch.cat([p.reshape(-1) for p in params]) for params in per_flow])
        self._build(theta, [lr] * len(per_flow), [{} for _ in per_flow])

    def _build(self, theta: Tensor, lrs: list[float], states: list[dict]) -> None:
        self.theta = theta
        self.rows = list(theta)  # views, so the optimizer's in-place steps update theta
        # foreach=True, as fit's _adam: the same update, bit for bit, as the per-parameter loop.
        self.optimizer = torch.optim.Adam(
            [{"params": [row], "lr": lr} for row, lr in zip(self.rows, lrs)], foreach=True
        )
        for row, state in zip(self.rows, states):
            if state:
                self.optimizer.state[row] = state

    def views(self, flat: Tensor) -> list[Tensor]:
        """Each parameter of ``flat``: ``(m, *shape_j)`` views of the whole buffer, or ``shape_j``
        of one row."""
        out, start = [], 0
        for shape, numel in zip(self.shapes, self.numels):
            out.append(flat[..., start : start + numel].view(*flat.shape[:-1], *shape))
            start += numel
        return out

    def step(self, grads: Sequence[Tensor], lrs: Sequence[float]) -> None:
        """One Adam step of every row, at learning rates ``lrs``, given each parameter's stacked
        gradient ``(m, *shape_j)``."""
        flat = torch.cat([g.reshape(len(g), -1) for g in grads], dim=1)
        for group, row, grad, lr in zip(self.optimizer.param_groups, self.rows, flat, lrs):
            row.grad, group["lr"] = grad, lr
        self.optimizer.step()

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (drop the flows that stopped: frozen, they cost nothing more), with
        their Adam state."""
        lrs = [self.optimizer.param_groups[a]["lr"] for a in rows]
        states = [self.optimizer.state[self.rows[a]] for a in rows]
        with torch.no_grad():
            self._build(self.theta[rows], lrs, states)


def fit_many(
    flows: Sequence[nn.Module],
    train_sets: Sequence[Tensor],
    val_sets: Sequence[Tensor],
    configs: Sequence[TrainConfig],
    progress: bool | None = None,
    description: str = "training",
) -> list[History]:
    r"""Train ``flows[k]`` on ``train_sets[k]`` for every ``k`` at once, in place; return their
    histories.

    Per flow, this is :func:`flowcore.train.fit` without ``loss_terms``: each step minimises
    :math:`L_k = -\frac1{|B_k|}\sum_{x \in B_k} \log p_{\theta_k}(x)` on a minibatch :math:`B_k` of
    ``train_sets[k]``, drawn in the order of ``torch.randperm`` from
    ``torch.Generator().manual_seed(configs[k].seed)``, and takes a ``torch.optim.Adam`` step
    (defaults, bias-corrected) with flow :math:`k`'s own learning rate, moment estimates and
    ``ReduceLROnPlateau`` schedule; after each epoch the flow's validation NLL (``flow.log_prob``
    on ``val_sets[k]``, as in ``fit``) drives its own :class:`~flowcore.train.Tracker`. A flow
    that has stopped is frozen (its weights and optimizer state no longer change) while the others
    go on; training ends when every flow has stopped. All flows run as one batched model: one
    forward and one backward pass of :math:`\sum_k L_k` per step (flow :math:`k`'s gradient is that
    of :math:`L_k` alone) and one Adam step, with a param group per flow.

    So each flow ends with what ``fit(flows[k], train_sets[k], val_sets[k], configs[k])`` would
    give it, up to rounding: in float64 the tests find the weights and histories bitwise equal; in
    float32 the batched products may round differently, and the differences can grow over
    training (the module docstring gives the measured sizes). After training, ``flows[k]`` holds
    its own best (``"early"``) or last (``"fixed"``) weights as ordinary parameters.

    Args:
        flows: K :class:`~flowcore.flows.Flow` objects of one architecture (same class, same
            ``state_dict`` keys and shapes, same masks; the permutations may differ), made of the
            layers the no-grad fast path covers (:class:`~flowcore.flows.AffineCoupling`,
            :class:`~flowcore.flows.Permutation`, a standard-normal base), on one device and dtype.
        train_sets: K training sets of one shape, on the flows' device and dtype.
        val_sets: K validation sets of the flows' dimension.
        configs: K :class:`~flowcore.train.TrainConfig` that are equal except for ``seed``.
        progress: Draw a tqdm bar over epochs; ``None`` decides with
            :func:`~flowcore.train.show_progress`.
        description: The progress bar's label.

    Returns:
        One :class:`~flowcore.train.History` per flow; ``seconds`` is the wall time of the whole
        batched run (the same for every flow).

    Raises:
        ValueError: If the lengths differ, the configs differ other than in ``seed`` (the message
            names the field), the training sets differ in shape, the flows differ in architecture,
            or ``train_sets[k]``/``val_sets[k]`` contain NaN or inf.
        FloatingPointError: If a flow's minibatch loss or validation NLL is NaN or infinite; the
            message names the flow's index and seed.

    Example:
        >>> import copy
        >>> from flowcore.flows import RealNVP
        >>> from flowcore.train import fit
        >>> g = torch.Generator().manual_seed(0)
        >>> xs = [torch.randn(64, 3, generator=g, dtype=torch.float64) for _ in range(2)]
        >>> configs = [TrainConfig(batch_size=32, max_epochs=3, seed=s) for s in (1, 2)]
        >>> flows = [
        ...     RealNVP(3, n_couplings=2, hidden=(8,), permutation_seed=s).double() for s in (1, 2)
        ... ]
        >>> alone = copy.deepcopy(flows[1])
        >>> histories = fit_many(flows, xs, xs, configs, progress=False)
        >>> h = fit(alone, xs[1], xs[1], configs[1], progress=False)
        >>> abs(h.val_nll[-1] - histories[1].val_nll[-1]) < 1e-12
        True
    """
    n = len(flows)
    if n == 0 or not (len(train_sets) == len(val_sets) == len(configs) == n):
        raise ValueError(
            "fit_many needs K ≥ 1 flows and as many train_sets, val_sets and configs, "
            f"got {n}, {len(train_sets)}, {len(val_sets)}, {len(configs)}"
        )
    config = _check_configs(configs)
    plan, flow_params = _plan(flows)
    ref = flow_params[0][0]
    for name, sets in (("train_sets", train_sets), ("val_sets", val_sets)):
        for k, x in enumerate(sets):
            if (
                not isinstance(x, Tensor)
                or x.dim() != 2
                or x.shape[1] != flows[0].base.dim
                or len(x) == 0
            ):
                raise ValueError(
                    f"{name}[{k}] must be a non-empty (n, {flows[0].base.dim}) tensor, "
                    f"got {getattr(x, 'shape', type(x).__name__)}"
                )
            if x.dtype != ref.dtype or x.device != ref.device:
                raise ValueError(
                    f"{name}[{k}] is {x.dtype} on {x.device}; "
                    f"the flows are {ref.dtype} on {ref.device}"
                )
            if name == "train_sets" and x.shape != train_sets[0].shape:
                raise ValueError(
                    f"train_sets must have one shape: train_sets[{k}] is {tuple(x.shape)}, "
                    f"train_sets[0] {tuple(train_sets[0].shape)}"
                )
            if not torch.isfinite(x).all():
                raise ValueError(f"{name}[{k}] contains NaN or inf; training needs finite data")

    start, start_wall = time.perf_counter(), time.time()
    tracks = [
        _Track(
            k,
            flow_params[k],
            torch.Generator().manual_seed(configs[k].seed),
            Tracker(configs[k], name=f"flow {k} (seed {configs[k].seed}): "),
        )
        for k in range(n)
    ]
    packed = _Packed(flow_params, config.lr)
    log_2pi = flows[0].base.log_2pi
    n_train, device = len(train_sets[0]), ref.device
    sync_free = deferred_checks(device)

    # The flows still training, in the order of packed's rows and of xs; all three shrink when
    # flows stop.
    active = list(tracks)
    xs = torch.stack(list(train_sets))
    unit = "epochs" if config.stopping == "fixed" else "epochs at most"
    show = show_progress() if progress is None else progress
    bar = tqdm(range(config.max_epochs), desc=description, disable=not show, leave=False)
    try:
        for epoch in bar:
            m = len(active)
            leaves = [v.detach().requires_grad_() for v in packed.views(packed.theta)]
            orders = torch.stack(
                [torch.randperm(n_train, generator=t.generator) for t in active]
            ).to(device)
            rows = torch.arange(m, device=device)[:, None]
            lrs = [t.tracker.lr for t in active]
            log = EpochLog(m, device, deferred=sync_free)
            for step, lo in enumerate(range(0, n_train, config.batch_size)):
                idx = orders[:, lo : lo + config.batch_size]
                nll = -_stacked_log_prob(xs[rows, idx], plan, leaves, log_2pi).mean(-1)
                if not sync_free:
                    for t, value in zip(active, nll.tolist()):
                        t.tracker.check_loss(value, epoch, step, [("NLL", value)])
                packed.step(torch.autograd.grad(nll.sum(), leaves), lrs)
                log.add(nll, nll, [nll], idx.shape[1])
            train_nll = log.close([t.tracker for t in active], epoch, ["NLL"])

            stopped = []
            for a, t in enumerate(active):
                flow = flows[t.index]
                with torch.no_grad():
                    for param, weights in zip(t.params, packed.views(packed.rows[a])):
                        param.copy_(weights)
                flow.eval()
                if not t.tracker.end_epoch(
                    epoch,
                    train_nll[a],
                    _mean_nll(flow, val_sets[t.index], config.batch_size),
                    flow,
                ):
                    stopped.append(a)
            mean_val = sum(t.tracker.history.val_nll[-1] for t in active) / m
            bar.set_postfix(active=f"{m - len(stopped)}/{n}", val=f"{mean_val:.3f}")
            status.report(
                f"training {description}",
                epoch + 1,
                config.max_epochs,
                start_wall,
                unit=unit,
                note=f"{m - len(stopped)}/{n} flows training, mean val NLL {mean_val:.3f}",
            )
            if stopped:
                # Drop the stopped flows from the stack: they are frozen, and cost nothing more.
                keep = [a for a in range(m) if a not in stopped]
                active = [active[a] for a in keep]
                if not active:
                    break
                keep_t = torch.tensor(keep, dtype=torch.long, device=device)
                packed.keep(keep)
                xs = xs[keep_t]
                plan = [
                    _Permute(layer.perm[keep_t])
                    if isinstance(layer, _Permute) and layer.perm.dim() == 2
                    else layer
                    for layer in plan
                ]
    finally:
        bar.close()

    seconds = time.perf_counter() - start
    return [t.tracker.finish(flows[t.index], seconds) for t in tracks]
