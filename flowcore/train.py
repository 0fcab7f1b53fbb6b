r"""Maximum-likelihood training of a flow: :math:`\max_\theta \frac1n\sum_i \log p_\theta(x_i)`
(Eq. 15).

``fit`` runs Adam on minibatches, tracks a held-out validation NLL, stops early when it stops
improving and restores the best weights (``stopping="early"``), or trains a fixed number of epochs
and keeps the last weights (``stopping="fixed"``). A non-finite loss raises at once. The rules of
this bookkeeping (history, learning-rate halving, best weights, stopping) live in :class:`Tracker`,
which :func:`flowcore.train_many.fit_many` keeps one of per flow.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from flowcore import status
from flowcore.cache import canonical
from flowcore.config import Checked
from flowcore.validation import (
    check_choice,
    check_int,
    check_non_negative,
    check_positive,
    checked,
)

__all__ = [
    "EpochLog",
    "deferred_checks",
    "TrainConfig",
    "History",
    "Tracker",
    "fit",
    "show_progress",
]

#: An extra loss term for :func:`fit`: ``term(batch, log_scales) -> scalar tensor``, where
#: ``log_scales`` holds each coupling's :math:`s` for the batch (a Jacobian regulariser, say).
LossTerm = Callable[[Tensor, list[Tensor]], Tensor]


@dataclass(frozen=True)
class TrainConfig(Checked):
    """Optimiser and training-loop settings (the thesis states none of them; these are ours).
    Defaults: the ``default`` profile's de Bruin section.

    It holds no data sizes: :func:`fit` and :func:`flowcore.train_many.fit_many` train on the
    tensors they are given, and the caller that draws the data states its sizes (the cache key of a
    trained flow, :func:`flowcore.runs.train_or_load`, takes them from there). Every study's config
    has it as its ``train`` section, under the flat names below.

    Attributes:
        batch_size: Minibatch size.
        lr: Adam learning rate.
        max_epochs: Upper bound on epochs.
        patience: Stop after this many epochs without a validation improvement of ``min_delta``.
        lr_patience: Halve the learning rate once more than this many epochs in a row bring no
            improvement (``ReduceLROnPlateau``'s ``patience``; :class:`Tracker` states the rule);
            the last hundredths of a nat need the smaller steps.
        min_delta: Smallest validation-NLL decrease (nats) that counts as an improvement.
        seed: Seed of the initial weights and the minibatch order.
        stopping: ``"early"``: stop after ``patience`` epochs without improvement, halve the
            learning rate on plateaus and keep the best weights; ``"fixed"``: train all
            ``max_epochs`` at the constant ``lr`` and keep the last weights (the plain recipe a
            paper that states neither would most likely have used).

    Example:
        >>> config = TrainConfig(max_epochs=40.0, lr=0.003)
        >>> config.max_epochs, config.lr, config == TrainConfig(max_epochs=40, lr=0.003)
        (40, 0.003, True)
        >>> TrainConfig(batch_size=0)
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be an integer ≥ 1, got 0
    """

    STOPPING: ClassVar[tuple[str, ...]] = ("early", "fixed")

    batch_size: int = field(default=512, metadata=checked(check_int, minimum=1))
    lr: float = field(default=1e-3, metadata=checked(check_positive))
    max_epochs: int = field(default=40, metadata=checked(check_int, minimum=1))
    patience: int = field(default=6, metadata=checked(check_int, minimum=1))
    lr_patience: int = field(default=2, metadata=checked(check_int, minimum=1))
    min_delta: float = field(default=1e-3, metadata=checked(check_non_negative))
    seed: int = field(default=0, metadata=checked(check_int, minimum=0))
    stopping: str = field(
        default="early", metadata=checked(check_choice, allowed=STOPPING) | {"key_default": True}
    )

    def key(self, n_train: int, n_val: int) -> dict[str, Any]:
        """What a trained flow's cache key holds under ``"train"``: these settings and the sizes of
        the training and validation sets, side by side, as when this class held the sizes too (so
        the keys of the flows cached then stay put).

        Example:
            >>> from flowcore.cache import canonical
            >>> key = TrainConfig(lr=0.003).key(100000.0, 10000)
            >>> key["n_train"], key["lr"], key == {**canonical(TrainConfig(lr=0.003)), **key}
            (100000, 0.003, True)
            >>> TrainConfig().key(1, 10)
            Traceback (most recent call last):
            ...
            ValueError: n_train must be an integer ≥ 2, got 1
        """
        return {
            **canonical(self),
            "n_train": check_int("n_train", n_train, minimum=2),
            "n_val": check_int("n_val", n_val, minimum=2),
        }


@dataclass
class History:
    """Per-epoch mean training NLL and validation NLL (nats), and the epoch whose weights were kept.

    Example:
        >>> h = History(train_nll=[2.0, 1.5], val_nll=[2.1, 1.6], best_epoch=1, seconds=0.5)
        >>> History(**h.as_dict()) == h
        True
    """

    train_nll: list[float] = field(default_factory=list)
    val_nll: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "train_nll": self.train_nll,
            "val_nll": self.val_nll,
            "best_epoch": self.best_epoch,
            "seconds": self.seconds,
        }


def _scalar(x: float | Tensor) -> float:
    return x.detach().item() if isinstance(x, Tensor) else float(x)


@dataclass
class Tracker:
    r"""One flow's bookkeeping from epoch to epoch, the same for :func:`fit` and
    :func:`flowcore.train_many.fit_many` (one per flow there): the history, the finite checks, the
    learning rate, the best weights and the decision to stop.

    :meth:`end_epoch` records an epoch's mean training NLL and validation NLL :math:`v` and says
    whether to go on. With ``config.stopping == "early"``:

    * :math:`v` *improves* if :math:`v < v_\text{best} - \text{min\_delta}`; then it becomes
      :math:`v_\text{best}`, the flow's ``state_dict`` is copied (``best_state``) and the epoch is
      ``history.best_epoch``; otherwise the epoch is *stale*.
    * The learning rate is halved when more than ``lr_patience`` epochs in a row are stale, counted
      from the last improvement or the last halving (a halving that would change it by 1e-8 or less
      is skipped). This is ``torch.optim.lr_scheduler.ReduceLROnPlateau(mode="min", factor=0.5,
      patience=lr_patience, threshold=min_delta, threshold_mode="abs")`` with its defaults
      ``cooldown=0``, ``min_lr=0``, ``eps=1e-8``, written out because ``fit_many`` needs one
      schedule per flow (the scheduler halves all of an optimizer's param groups on one metric).
    * Training stops after ``patience`` stale epochs in a row; :meth:`finish` then restores the
      best weights.

    With ``"fixed"`` every epoch is the latest ``best_epoch``, the learning rate stays
    ``config.lr``, only ``max_epochs`` stops training, and the last weights are kept.

    Example:
        >>> flow = torch.nn.Linear(1, 1)
        >>> tracker = Tracker(TrainConfig(lr=0.1, patience=3, lr_patience=1))
        >>> [tracker.end_epoch(e, 1.0, v, flow) for e, v in enumerate([2.0, 1.5, 1.6, 1.5, 1.4995])]
        [True, True, True, True, False]
        >>> tracker.history.best_epoch, tracker.lr
        (1, 0.05)
    """

    config: TrainConfig
    #: Put before the error messages: which flow (``fit_many`` names its index and seed).
    name: str = ""
    history: History = field(default_factory=History)
    lr: float = field(init=False)
    best_val: float = float("inf")
    best_state: dict | None = None
    #: Stale epochs since the last improvement (stops training at ``patience``).
    stale: int = 0
    #: Stale epochs since the last improvement or halving (``ReduceLROnPlateau.num_bad_epochs``).
    bad: int = 0

    def __post_init__(self):
        self.lr = self.config.lr

    def check_loss(
        self,
        loss: float | Tensor,
        epoch: int,
        step: int,
        parts: Sequence[tuple[str, float | Tensor]] = (),
        hint: str = "",
    ) -> None:
        """Raise ``FloatingPointError`` unless the minibatch ``loss`` is finite, naming the
        ``parts`` (scalars) that are not."""
        value = _scalar(loss)
        if math.isfinite(value):
            return
        bad = (
            ", ".join(
                f"{name} = {_scalar(part)}"
                for name, part in parts
                if not math.isfinite(_scalar(part))
            )
            or f"the sum = {value}"
        )
        raise FloatingPointError(
            f"{self.name}training loss became {value} at epoch {epoch}, step {step} "
            f"(lr={self.config.lr}); not finite: {bad}; "
            f"try a lower lr or check the data scale{hint}"
        )

    def end_epoch(self, epoch: int, train_nll: float, val_nll: float, flow: nn.Module) -> bool:
        """Record epoch ``epoch`` of ``flow`` (its weights now) and apply the rules above; return
        whether training goes on. A non-finite ``val_nll`` raises ``FloatingPointError``."""
        if not math.isfinite(val_nll):
            raise FloatingPointError(
                f"{self.name}validation NLL became {val_nll} at epoch {epoch} (lr={self.config.lr})"
            )
        self.history.train_nll.append(train_nll)
        self.history.val_nll.append(val_nll)
        if self.config.stopping == "fixed":
            self.history.best_epoch = epoch  # the weights kept are the last ones
            return True
        if val_nll < self.best_val - self.config.min_delta:
            self.best_val, self.best_state, self.history.best_epoch = (
                val_nll,
                copy.deepcopy(flow.state_dict()),
                epoch,
            )
            self.stale = self.bad = 0
        else:
            self.stale += 1
            self.bad += 1
        if self.bad > self.config.lr_patience:
            halved = max(self.lr * 0.5, 0.0)
            if self.lr - halved > 1e-8:
                self.lr = halved
            self.bad = 0
        return self.stale < self.config.patience

    def finish(self, flow: nn.Module, seconds: float) -> History:
        """Put ``flow`` in eval mode with the weights to keep (the best, if any were copied); return
        the history."""
        flow.eval()
        if self.best_state is not None:
            flow.load_state_dict(self.best_state)
        self.history.seconds = seconds
        return self.history


class EpochLog:
    r"""One epoch's running training NLL and finite checks for :math:`K` flows (:math:`K = 1` for
    :func:`fit`), kept as tensors on the flows' device, so that a training step needs no host sync.

    :meth:`add` records a step: the NLL weighted by the batch size joins a float64 running sum, and
    the first step whose loss is not finite is kept per flow with the values of the loss's parts
    there. :meth:`close` reads everything once, at the end of the epoch: it raises the same
    ``FloatingPointError`` :meth:`Tracker.check_loss` raises at the bad step, else returns the
    epoch's mean NLL per flow. The sums are those of Python floats added step by step (each float32
    NLL widened to float64, times the batch size), so the means are bitwise the same.

    On the CPU :func:`fit` and :func:`~flowcore.train_many.fit_many` still check each step as they
    go (``deferred=False``: the error then comes before the bad step's update, a sync costs nothing
    there, and the log sums Python floats); on CUDA they read the log once per epoch.

    Example:
        >>> log = EpochLog(2, "cpu")
        >>> nll = torch.tensor([1.0, 2.0])
        >>> log.add(nll, nll, [nll], 4)
        >>> nll = torch.tensor([3.0, float("nan")])
        >>> log.add(nll, nll, [nll], 2)
        >>> trackers = [Tracker(TrainConfig(), name=f"flow {k}: ") for k in range(2)]
        >>> log.close(trackers, epoch=0, names=["NLL"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FloatingPointError: flow 1: training loss became nan at epoch 0, step 1 (lr=0.001); ...
    """

    def __init__(self, count: int, device: torch.device | str, deferred: bool = True):
        self.deferred = deferred
        self.host_total = [0.0] * count
        self.total = torch.zeros(count, dtype=torch.float64, device=device)
        self.first_bad = torch.full((count,), -1, dtype=torch.long, device=device)
        self.bad_values: Tensor | None = None
        self.seen = 0
        self.steps = 0

    def add(self, loss: Tensor, nll: Tensor, parts: Sequence[Tensor], width: int) -> None:
        """Record one step: ``loss`` and ``nll`` of shape ``(K,)`` (or scalars for one flow),
        ``parts`` the loss's parts (each of that shape), ``width`` the batch size.

        With ``deferred=False`` the caller checks each step itself (:meth:`Tracker.check_loss`)
        and the log only sums the NLL as Python floats (a few microseconds a step, where the
        tensor bookkeeping costs about 50 on the CPU)."""
        self.seen += width
        self.steps += 1
        if not self.deferred:
            for a, value in enumerate(nll.detach().reshape(-1).tolist()):
                self.host_total[a] += value * width
            return
        loss = loss.detach().reshape(-1)
        values = torch.stack([loss, *(part.detach().reshape(-1).to(loss.dtype) for part in parts)])
        bad = ~torch.isfinite(loss) & (self.first_bad < 0)
        self.first_bad = torch.where(bad, self.steps - 1, self.first_bad)
        self.bad_values = values if self.bad_values is None else self.bad_values
        self.bad_values = torch.where(bad, values, self.bad_values)
        self.total += nll.detach().reshape(-1).to(torch.float64) * width

    def close(
        self, trackers: Sequence[Tracker], epoch: int, names: Sequence[str], hint: str = ""
    ) -> list[float]:
        """The epoch's mean training NLL per flow (one host sync), after raising the
        ``FloatingPointError`` of the first flow (in order) whose loss was not finite at some step
        (its first such step), naming the parts (``names``, in the order :meth:`add` got them)
        that were not finite there."""
        if not self.deferred:
            return [total / self.seen for total in self.host_total]
        first_bad = self.first_bad.tolist()
        if any(step >= 0 for step in first_bad):
            values = self.bad_values.tolist()
            for k, step in enumerate(first_bad):
                if step >= 0:
                    parts = [(name, values[i + 1][k]) for i, name in enumerate(names)]
                    trackers[k].check_loss(values[0][k], epoch, step, parts, hint)
        return (self.total / self.seen).tolist()


def show_progress() -> bool:
    """Whether to draw progress bars: ``$FLOWCORE_PROGRESS`` (``0``/``1``) if set, else only on a
    terminal.

    Example:
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"FLOWCORE_PROGRESS": "0"}):
        ...     show_progress()
        False
        >>> with mock.patch.dict(os.environ, {"FLOWCORE_PROGRESS": "1"}):
        ...     show_progress()
        True
    """
    env = os.environ.get("FLOWCORE_PROGRESS")
    if env is not None:
        return env.strip() not in ("", "0", "false", "False")
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def deferred_checks(device: torch.device | str) -> bool:
    """Whether training on ``device`` reads its :class:`EpochLog` once per epoch instead of checking
    each step as it goes: on CUDA, where each read is a host sync that stalls the queue of kernels.

    Example:
        >>> deferred_checks("cpu")
        False
    """
    return torch.device(device).type == "cuda"


@torch.no_grad()
def _mean_nll(flow: nn.Module, x: Tensor, batch_size: int) -> float:
    """The mean NLL of ``flow`` on ``x`` in chunks, summed in float64 on the device (read once):
    bitwise the sum of the chunks' float32 sums as Python floats."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for chunk in x.split(max(batch_size, 8192)):
        total -= flow.log_prob(chunk).sum().to(torch.float64)
    return total.item() / len(x)


def _check_loss_terms(loss_terms) -> tuple[tuple[str, Callable], ...]:
    """``loss_terms`` as ``((name, term), ...)``; a ``ValueError`` unless it is a list of
    callables."""
    if (
        callable(loss_terms)
        or isinstance(loss_terms, (str, bytes))
        or not isinstance(loss_terms, Iterable)
    ):
        hint = " (wrap a single term in a list)" if callable(loss_terms) else ""
        raise ValueError(
            "loss_terms must be a list of callables term(batch, log_scales) -> scalar tensor, "
            f"got {loss_terms!r}{hint}"
        )
    terms = tuple(loss_terms)
    for i, term in enumerate(terms):
        if not callable(term):
            raise ValueError(
                f"loss_terms[{i}] must be a callable term(batch, log_scales) -> scalar tensor, "
                f"got {term!r} ({type(term).__name__})"
            )
    return tuple(
        (f"loss term {i} ({getattr(term, '__name__', type(term).__name__)})", term)
        for i, term in enumerate(terms)
    )


def _adam(flow: nn.Module, lr: float) -> torch.optim.Adam:
    """fit's optimizer. On the CPU ``foreach=True``: the same update, bit for bit, as the
    per-parameter loop PyTorch defaults to there, in a few multi-tensor calls instead of ~8
    Python-dispatched ops per parameter tensor. On CUDA ``fused=True``: the whole update in one
    kernel per group of tensors, no host sync (its rounding may differ from the loop's in the last
    bits)."""
    params = list(flow.parameters())
    if params and params[0].is_cuda:
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.Adam(params, lr=lr, foreach=True)


def _loss(
    flow: nn.Module, batch: Tensor, terms: tuple[tuple[str, Callable], ...]
) -> tuple[Tensor, Tensor, list[tuple[str, Tensor]]]:
    """``(total loss, mean NLL, [(part name, value), ...])`` of one minibatch."""
    if not terms:
        nll = -flow.log_prob(batch).mean()
        return nll, nll, [("NLL", nll)]
    log_p, log_scales = flow.log_prob_and_log_scales(batch)
    nll = -log_p.mean()
    loss, parts = nll, [("NLL", nll)]
    for name, term in terms:
        value = term(batch, log_scales)
        if not isinstance(value, Tensor) or value.numel() != 1:
            raise ValueError(f"{name} must return a scalar tensor, got {value!r}")
        loss = loss + value.reshape(())
        parts.append((name, value))
    return loss, nll, parts


def fit(
    flow: nn.Module,
    x_train: Tensor,
    x_val: Tensor,
    config: TrainConfig,
    progress: bool | None = None,
    callback: Callable[[int, History], None] | None = None,
    description: str = "training",
    loss_terms: Sequence[LossTerm] = (),
) -> History:
    r"""Train ``flow`` in place on ``x_train`` by maximum likelihood; return its :class:`History`.

    Each step minimises, on a minibatch :math:`B`,

    .. math::

        L = -\frac1{|B|}\sum_{x \in B} \log p_\theta(x)
            + \sum_k \mathrm{term}_k(B, (s_1, \dots, s_K)),

    where :math:`s_j` is coupling :math:`j`'s log-scale on the batch, from the same forward pass
    as the NLL. A Jacobian regulariser such as :math:`\gamma\sum_j \|s_j\|^2` (or a negative
    training term built from the batch) plugs in as one term. With no terms the loss is exactly
    ``-flow.log_prob(batch).mean()``. The validation NLL, early stopping, the learning-rate
    schedule and :attr:`History.train_nll` use the NLL alone, without the terms.

    Args:
        flow: A module with ``log_prob(x)``, already on its device; with ``loss_terms``, a
            :class:`flowcore.flows.Flow` (it needs ``log_prob_and_log_scales``).
        x_train, x_val: Training and validation samples, on the flow's device and dtype.
        config: The :class:`TrainConfig`.
        progress: Draw a tqdm bar over epochs; ``None`` decides with :func:`show_progress`.
        callback: Called as ``callback(epoch, history)`` after every epoch (may raise to abort).
        description: The progress bar's label.
        loss_terms: Callables ``term(batch, log_scales) -> scalar tensor``, added to the loss;
            ``log_scales`` is a list with one tensor of shape ``(batch, n_transformed)`` per
            coupling.

    Raises:
        ValueError: If the data contain NaN or inf, or ``loss_terms`` is not a list of callables
            (or a term returns something other than a scalar tensor).
        FloatingPointError: If a minibatch loss becomes NaN or infinite; the message names the
            part (the NLL or a loss term) that is not finite.

    Example:
        >>> import torch
        >>> from flowcore.flows import RealNVP
        >>> x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
        >>> def shrink_log_scales(batch, log_scales):
        ...     return 1e-2 * sum(s.square().sum(-1).mean() for s in log_scales)
        >>> config = TrainConfig(batch_size=32, max_epochs=2)
        >>> flow = RealNVP(2, n_couplings=2, hidden=(8,))
        >>> history = fit(flow, x, x, config, progress=False, loss_terms=[shrink_log_scales])
        >>> len(history.val_nll)
        2
    """
    terms = _check_loss_terms(loss_terms)
    if terms and not callable(getattr(flow, "log_prob_and_log_scales", None)):
        raise ValueError(
            "loss_terms need a flow with log_prob_and_log_scales(x) (a flowcore.flows.Flow), "
            f"got {type(flow).__name__}"
        )
    for name, x in (("x_train", x_train), ("x_val", x_val)):
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf; training needs finite data")
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = _adam(flow, config.lr)
    tracker = Tracker(config)
    hint = " and the loss terms" if terms else ""
    unit = "epochs" if config.stopping == "fixed" else "epochs at most"
    start, start_wall = time.perf_counter(), time.time()
    show = show_progress() if progress is None else progress
    epochs = tqdm(range(config.max_epochs), desc=description, disable=not show, leave=False)
    names = ["NLL", *(name for name, _ in terms)]
    sync_free = deferred_checks(x_train.device)
    for epoch in epochs:
        flow.train()
        order = torch.randperm(len(x_train), generator=generator).to(x_train.device)
        log = EpochLog(1, x_train.device, deferred=sync_free)
        for step, idx in enumerate(order.split(config.batch_size)):
            loss, nll, parts = _loss(flow, x_train[idx], terms)
            if not sync_free:
                tracker.check_loss(loss, epoch, step, parts, hint)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            log.add(loss, nll, [part for _, part in parts], len(idx))
        (train_nll,) = log.close([tracker], epoch, names, hint)
        flow.eval()
        val = _mean_nll(flow, x_val, config.batch_size)
        go_on = tracker.end_epoch(epoch, train_nll, val, flow)
        optimizer.param_groups[0]["lr"] = tracker.lr  # halved, or not, by the Tracker's schedule
        epochs.set_postfix(train=f"{train_nll:.3f}", val=f"{val:.3f}")
        status.report(
            f"training {description}",
            epoch + 1,
            config.max_epochs,
            start_wall,
            unit=unit,
            note=f"val NLL {val:.3f}",
        )
        if callback is not None:
            callback(epoch, tracker.history)
        if not go_on:
            break
    return tracker.finish(flow, time.perf_counter() - start)
