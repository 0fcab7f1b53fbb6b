r"""Train :math:`K` flows of one architecture at once, as one batched model.

:func:`fit_many` runs :func:`flowcore.train.fit` for flows :math:`k = 1, \dots, K` together. The
flows' weights are stacked along a leading axis of length :math:`K`: each step evaluates all
:math:`K` minibatch NLLs with one batched matrix product per st-network layer (``torch.baddbmm``,
the same operations in the same order as ``Flow.log_prob`` with gradients on), and updates all
weights with one Adam update of a single flat buffer, so the number of ops per step does not
grow with :math:`K` (at the book's sizes on the CPU, per-op overhead rivals the arithmetic). Because flow
:math:`k`'s loss depends only on its own weights,

.. math:: \nabla_{\theta_k} \sum_{j=1}^K L_j(\theta_j) = \nabla_{\theta_k} L_k(\theta_k),

one backward pass of the summed loss gives every flow the gradient ``fit`` would give it. The
minibatch order, Adam's moments and learning rate, the ``ReduceLROnPlateau`` schedule and early
stopping are each flow's own, as in ``fit``; so the result is, per flow, what ``fit`` computes, up
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

import copy
import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from flowcore import status
from flowcore.flows.fast import AffineCouplingStep, PermuteStep, unsupported_reason
from flowcore.flows.flow import Flow
from flowcore.train import History, TrainConfig, _mean_nll, show_progress

__all__ = ["fit_many"]

# torch.optim.Adam's defaults.
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


@dataclass(frozen=True, eq=False)
class _Permute:
    """``z = x[..., perm_k]``; ``perm`` is ``(D,)`` when all flows share it, else ``(K, D)``."""

    perm: Tensor


@dataclass(frozen=True, eq=False)
class _Coupling:
    """One affine coupling of all K flows (masks and maps must be the same for every flow)."""

    copied: slice | Tensor
    transformed: slice | Tensor
    layout: str  # "copied_first", "transformed_first" or "indexed", as in AffineCoupling
    join_index: Tensor | None
    n_transformed: int
    n_linears: int
    log_scale: str
    bound: float


@dataclass
class _Plateau:
    """``torch.optim.lr_scheduler.ReduceLROnPlateau(factor=0.5, threshold_mode="abs", mode="min")``
    with its defaults ``cooldown=0``, ``min_lr=0``, ``eps=1e-8``, for one flow."""

    lr: float
    patience: int
    threshold: float
    best: float = float("inf")
    num_bad_epochs: int = 0

    def step(self, metric: float) -> None:
        if metric < self.best - self.threshold:
            self.best, self.num_bad_epochs = metric, 0
        else:
            self.num_bad_epochs += 1
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * 0.5, 0.0)
            if self.lr - new_lr > 1e-8:
                self.lr = new_lr
            self.num_bad_epochs = 0


@dataclass
class _Track:
    """What ``fit`` keeps per flow besides the weights."""

    index: int
    config: TrainConfig
    params: list[nn.Parameter]  # in the packing order
    generator: torch.Generator
    plateau: _Plateau
    history: History
    best_val: float = float("inf")
    best_state: dict | None = None
    stale: int = 0


def _check_configs(configs: Sequence[TrainConfig]) -> TrainConfig:
    for k, config in enumerate(configs):
        if not isinstance(config, TrainConfig):
            raise ValueError(f"configs[{k}] must be a TrainConfig, got {type(config).__name__}")
        for f in dataclasses.fields(TrainConfig):
            if f.name != "seed" and getattr(config, f.name) != getattr(configs[0], f.name):
                raise ValueError(
                    f"configs must be equal except seed: configs[{k}].{f.name} = {getattr(config, f.name)!r} "
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
            raise ValueError(f"flows must share one architecture: flows[{k}] is a {type(flow).__name__}, flows[0] a {type(first).__name__}")
        if {n: v.shape for n, v in flow.state_dict().items()} != shapes:
            raise ValueError(f"flows must share one architecture: flows[{k}]'s state_dict keys or shapes differ from flows[0]'s")
        if not isinstance(flow, Flow) or type(flow).log_prob is not Flow.log_prob:
            raise ValueError(f"flows[{k}] must be a flowcore.flows.Flow that keeps Flow.log_prob, got {type(flow).__name__}")
        reason = unsupported_reason(flow)
        if reason is not None:  # the stacked forward runs the fast path's steps, with autograd
            raise ValueError(f"flows[{k}] has a layer the batched trainer does not cover: {reason}")
        steps = flow.transform.fast_steps()
        params = [t for step in steps if isinstance(step, AffineCouplingStep) for wb in step.linears for t in wb]
        ids = {id(p) for p in params}
        if ids != {id(p) for p in flow.parameters()}:
            raise ValueError(f"flows[{k}] has parameters outside its couplings' st-networks")
        if ids & seen:
            raise ValueError(f"flows[{k}] shares parameters with an earlier flow; pass K distinct flows")
        seen |= ids
        per_flow_steps.append(steps)
        per_flow_params.append(params)

    plan: list = []
    for i, step in enumerate(per_flow_steps[0]):
        column = [steps[i] for steps in per_flow_steps]
        if isinstance(step, PermuteStep):
            perms = torch.stack([s.perm for s in column])
            plan.append(_Permute(step.perm if all(torch.equal(p, step.perm) for p in perms) else perms))
            continue
        for k, s in enumerate(column):
            same = type(s.copied) is type(step.copied) and (s.copied == step.copied if isinstance(step.copied, slice) else torch.equal(s.copied, step.copied))
            if not same or (s.log_scale, s.bound, len(s.linears)) != (step.log_scale, step.bound, len(step.linears)):
                raise ValueError(f"flows must share one architecture: flows[{k}]'s layer {i} has another mask or log-scale map than flows[0]'s")
        if isinstance(step.copied, slice):
            layout, join = ("copied_first" if step.copied.start is None else "transformed_first"), None
        else:
            layout, join = "indexed", torch.argsort(torch.cat([step.copied, step.transformed]))
        plan.append(_Coupling(step.copied, step.transformed, layout, join, step.n_transformed, len(step.linears), step.log_scale, step.bound))
    return plan, per_flow_params


def _stacked_log_prob(x: Tensor, plan: list, params: list[Tensor], log_2pi: Tensor) -> Tensor:
    """``log p_k(x[k])`` of shape ``(K, B)`` for ``x`` of shape ``(K, B, D)``: the same operations, in
    the same order, as ``Flow.log_prob`` with gradients on (AffineCoupling.forward, Permutation.forward,
    CompositeTransform.forward and StandardNormal.log_prob); a permutation's zero log-det is left out
    (adding 0 is exact)."""
    log_det = x.new_zeros(x.shape[:-1])
    weights = iter(params)
    for layer in plan:
        if isinstance(layer, _Permute):
            perm = layer.perm
            x = x[..., perm] if perm.dim() == 1 else x.gather(-1, perm[:, None, :].expand(x.shape))
            continue
        if layer.layout == "indexed":
            copied, transformed = x.index_select(-1, layer.copied), x.index_select(-1, layer.transformed)
        else:
            copied, transformed = x[..., layer.copied], x[..., layer.transformed]
        h = copied
        for j in range(layer.n_linears):
            w, b = next(weights), next(weights)
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))  # nn.Linear of each flow
            if j < layer.n_linears - 1:
                h = torch.relu(h)
        raw_s, t = h.chunk(2, dim=-1)
        if layer.log_scale == "tanh":
            s = layer.bound * torch.tanh(raw_s / layer.bound)
        elif layer.log_scale == "sigmoid":
            s = torch.log(torch.sigmoid(raw_s + 2.0) + 1e-3)
        else:
            s = raw_s
        y = transformed * torch.exp(s) + t
        if layer.layout == "copied_first":
            x = torch.cat((copied, y), dim=-1)
        elif layer.layout == "transformed_first":
            x = torch.cat((y, copied), dim=-1)
        else:
            x = torch.cat((copied, y), dim=-1).index_select(-1, layer.join_index)
        log_det = log_det + s.sum(-1)
    return -0.5 * (x.shape[-1] * log_2pi + x.square().sum(-1)) + log_det


class _Packed:
    """The active flows' weights in one flat buffer: parameter ``j`` of all K flows is the contiguous
    block ``(K, *shape_j)``, so Adam is a handful of large elementwise ops, not one per tensor."""

    def __init__(self, shapes: list[torch.Size]):
        self.shapes = shapes
        self.numels = [s.numel() for s in shapes]

    def views(self, flat: Tensor, n_flows: int) -> list[Tensor]:
        out, start = [], 0
        for shape, numel in zip(self.shapes, self.numels):
            out.append(flat[start : start + n_flows * numel].view(n_flows, *shape))
            start += n_flows * numel
        return out

    def pack(self, blocks: Sequence[Tensor]) -> Tensor:
        return torch.cat([b.reshape(-1) for b in blocks])

    def owner(self, n_flows: int, device: torch.device) -> Tensor:
        """Each flat element's flow (its row in the stack)."""
        return torch.cat([torch.arange(n_flows, device=device).repeat_interleave(n) for n in self.numels])


def fit_many(
    flows: Sequence[nn.Module],
    train_sets: Sequence[Tensor],
    val_sets: Sequence[Tensor],
    configs: Sequence[TrainConfig],
    progress: bool | None = None,
    description: str = "training",
) -> list[History]:
    r"""Train ``flows[k]`` on ``train_sets[k]`` for every ``k`` at once, in place; return their histories.

    Per flow, this is :func:`flowcore.train.fit` without ``loss_terms``: each step minimises
    :math:`L_k = -\frac1{|B_k|}\sum_{x \in B_k} \log p_{\theta_k}(x)` on a minibatch :math:`B_k` of
    ``train_sets[k]``, drawn in the order of ``torch.randperm`` from
    ``torch.Generator().manual_seed(configs[k].seed)``, and takes a ``torch.optim.Adam`` step
    (defaults, bias-corrected) with flow :math:`k`'s own learning rate, moment estimates and
    ``ReduceLROnPlateau`` schedule; after each epoch the flow's validation NLL (``flow.log_prob``
    on ``val_sets[k]``, as in ``fit``) drives its own early stopping. A flow that has stopped is
    frozen (its weights and optimizer state no longer change) while the others go on; training
    ends when every flow has stopped. All flows run as one batched model: one forward and one
    backward pass of :math:`\sum_k L_k` per step (flow :math:`k`'s gradient is that of :math:`L_k`
    alone) and one Adam update of all weights.

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
        progress: Draw a tqdm bar over epochs; ``None`` decides with :func:`~flowcore.train.show_progress`.
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
        >>> configs = [TrainConfig(n_train=64, n_val=64, batch_size=32, max_epochs=3, seed=s) for s in (1, 2)]
        >>> flows = [RealNVP(3, n_couplings=2, hidden=(8,), permutation_seed=s).double() for s in (1, 2)]
        >>> alone = copy.deepcopy(flows[1])
        >>> histories = fit_many(flows, xs, xs, configs, progress=False)
        >>> h = fit(alone, xs[1], xs[1], configs[1], progress=False)
        >>> abs(h.val_nll[-1] - histories[1].val_nll[-1]) < 1e-12
        True
    """
    n = len(flows)
    if n == 0 or not (len(train_sets) == len(val_sets) == len(configs) == n):
        raise ValueError(f"fit_many needs K ≥ 1 flows and as many train_sets, val_sets and configs, got {n}, {len(train_sets)}, {len(val_sets)}, {len(configs)}")
    config = _check_configs(configs)
    plan, flow_params = _plan(flows)
    ref = flow_params[0][0]
    for name, sets in (("train_sets", train_sets), ("val_sets", val_sets)):
        for k, x in enumerate(sets):
            if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != flows[0].base.dim or len(x) == 0:
                raise ValueError(f"{name}[{k}] must be a non-empty (n, {flows[0].base.dim}) tensor, got {getattr(x, 'shape', type(x).__name__)}")
            if x.dtype != ref.dtype or x.device != ref.device:
                raise ValueError(f"{name}[{k}] is {x.dtype} on {x.device}; the flows are {ref.dtype} on {ref.device}")
            if name == "train_sets" and x.shape != train_sets[0].shape:
                raise ValueError(f"train_sets must have one shape: train_sets[{k}] is {tuple(x.shape)}, train_sets[0] {tuple(train_sets[0].shape)}")
            if not torch.isfinite(x).all():
                raise ValueError(f"{name}[{k}] contains NaN or inf; training needs finite data")

    start, start_wall = time.perf_counter(), time.time()
    packed = _Packed([p.shape for p in flow_params[0]])
    tracks = [
        _Track(k, configs[k], flow_params[k], torch.Generator().manual_seed(configs[k].seed), _Plateau(config.lr, config.lr_patience, config.min_delta), History())
        for k in range(n)
    ]
    log_2pi = flows[0].base._log_2pi
    n_train, device = len(train_sets[0]), ref.device

    # The active flows' state, stacked in the order of `active`; rebuilt when a flow stops.
    active = list(tracks)
    with torch.no_grad():
        theta = packed.pack([torch.stack([t.params[j] for t in active]) for j in range(len(packed.shapes))])
    exp_avg, exp_avg_sq = torch.zeros_like(theta), torch.zeros_like(theta)
    xs = torch.stack(list(train_sets))
    owner = packed.owner(len(active), device)
    adam_steps = 0

    show = show_progress() if progress is None else progress
    bar = tqdm(range(config.max_epochs), desc=description, disable=not show, leave=False)
    try:
        for epoch in bar:
            if not active:
                break
            m = len(active)
            leaves = [v.detach().requires_grad_() for v in packed.views(theta, m)]
            orders = torch.stack([torch.randperm(n_train, generator=t.generator) for t in active]).to(device)
            rows = torch.arange(m, device=device)[:, None]
            lrs = [t.plateau.lr for t in active]
            # Per-element learning rates, only needed once the flows' schedules have diverged.
            lr_el = None if len(set(lrs)) == 1 else torch.tensor(lrs, dtype=torch.float64, device=device)[owner]
            running, seen = [0.0] * m, 0
            for step, lo in enumerate(range(0, n_train, config.batch_size)):
                idx = orders[:, lo : lo + config.batch_size]
                nll = -_stacked_log_prob(xs[rows, idx], plan, leaves, log_2pi).mean(-1)
                values = nll.tolist()
                for a, value in enumerate(values):
                    if not math.isfinite(value):
                        t = active[a]
                        raise FloatingPointError(
                            f"flow {t.index} (seed {t.config.seed}): training loss became {value} at epoch {epoch}, step {step} "
                            f"(lr={t.config.lr}); not finite: NLL = {value}; try a lower lr or check the data scale"
                        )
                grads = torch.autograd.grad(nll.sum(), leaves)
                with torch.no_grad():
                    grad = packed.pack(grads)
                    adam_steps += 1  # every active flow has taken the same number of steps
                    exp_avg.lerp_(grad, 1 - _BETA1)
                    exp_avg_sq.mul_(_BETA2).addcmul_(grad, grad, value=1 - _BETA2)
                    bias1 = 1 - _BETA1 ** float(adam_steps)
                    denom = (exp_avg_sq.sqrt() / (1 - _BETA2 ** float(adam_steps)) ** 0.5).add_(_EPS)
                    if lr_el is None:
                        theta.addcdiv_(exp_avg, denom, value=-(lrs[0] / bias1))
                    else:  # Adam's addcdiv with value -lr_k / bias1, rounded to the weights' dtype as torch does
                        theta.addcdiv_(exp_avg * (lr_el / -bias1).to(theta.dtype), denom)
                for a, value in enumerate(values):
                    running[a] += value * idx.shape[1]
                seen += idx.shape[1]

            with torch.no_grad():
                for j, view in enumerate(packed.views(theta, m)):
                    for a, t in enumerate(active):
                        t.params[j].copy_(view[a])
            stopped = []
            for a, t in enumerate(active):
                flow = flows[t.index]
                flow.eval()
                val = _mean_nll(flow, val_sets[t.index], config.batch_size)
                if not math.isfinite(val):
                    raise FloatingPointError(f"flow {t.index} (seed {t.config.seed}): validation NLL became {val} at epoch {epoch} (lr={t.config.lr})")
                t.history.train_nll.append(running[a] / seen)
                t.history.val_nll.append(val)
                if config.stopping == "fixed":
                    t.history.best_epoch = epoch  # the weights kept are the last ones
                    continue
                t.plateau.step(val)
                if val < t.best_val - config.min_delta:
                    t.best_val, t.best_state, t.stale, t.history.best_epoch = val, copy.deepcopy(flow.state_dict()), 0, epoch
                else:
                    t.stale += 1
                if t.stale >= config.patience:
                    stopped.append(a)
            vals = [t.history.val_nll[-1] for t in active]
            bar.set_postfix(active=f"{m - len(stopped)}/{n}", val=f"{sum(vals) / m:.3f}")
            unit = "epochs" if config.stopping == "fixed" else "epochs at most"
            status.report(f"training {description}", epoch + 1, config.max_epochs, start_wall, unit=unit, note=f"{m - len(stopped)}/{n} flows training, mean val NLL {sum(vals) / m:.3f}")
            if stopped:
                # Drop the stopped flows from the stack: they are frozen, and cost nothing more.
                keep = [a for a in range(m) if a not in stopped]
                keep_t = torch.tensor(keep, dtype=torch.long, device=device)
                theta, exp_avg, exp_avg_sq = (packed.pack([v[keep_t] for v in packed.views(s, m)]) for s in (theta, exp_avg, exp_avg_sq))
                xs = xs[keep_t]
                plan = [_Permute(layer.perm[keep_t]) if isinstance(layer, _Permute) and layer.perm.dim() == 2 else layer for layer in plan]
                active = [active[a] for a in keep]
                owner = packed.owner(len(active), device)
    finally:
        bar.close()

    seconds = time.perf_counter() - start
    for t in tracks:
        flows[t.index].eval()
        if t.best_state is not None:
            flows[t.index].load_state_dict(t.best_state)
        t.history.seconds = seconds
    return [t.history for t in tracks]
