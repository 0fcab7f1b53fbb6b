r"""Trained flows, cached: a flow is trained once per canonical config and loaded from then on.

:func:`train_or_load` is the one place a flow is built, trained and cached. Its cache key is
:func:`flowcore.cache.job_key` of the caller's spec (what the data and the architecture are)
together with the :class:`~flowcore.train.TrainConfig`; the device is not part of it, so a flow
trained on the CPU serves a GPU run. The initial weights come from ``train.seed`` through
:func:`flowcore.rng.seeded`.

:func:`train_or_load_many` is its batched counterpart: the flows it has to train are trained
together by :func:`flowcore.train_many.fit_many`, and each is cached as its own entry, keyed by its
spec plus ``"trainer": "batched"`` (the numbers differ from one-at-a-time training by rounding,
so the two never share an entry).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from flowcore import rng
from flowcore.cache import cached, entry_path, save_atomic
from flowcore.train import History, LossTerm, TrainConfig, fit
from flowcore.train_many import fit_many

__all__ = ["Run", "train_or_load", "train_or_load_many"]


@dataclass
class Run:
    """A trained flow, its training history, whether it came from the cache, the tensors the
    caller asked to keep beside it (``extras``, e.g. the ML Gaussian of the training set), and the
    same flow at its initialisation, before any training step (``untrained``: a null that shows
    what a check says of a flow that has learned nothing).

    Example:
        >>> run = Run(torch.nn.Identity(), History(), from_cache=True)
        >>> run.from_cache, run.extras, run.untrained
        (True, {}, None)
    """

    flow: nn.Module
    history: History
    from_cache: bool
    extras: dict[str, Tensor] = field(default_factory=dict)
    untrained: nn.Module | None = None


def train_or_load(
    spec: Mapping[str, Any],
    build: Callable[[], nn.Module],
    data: Callable[[], tuple[Tensor, Tensor]],
    train: TrainConfig,
    device: torch.device | str = "cpu",
    *,
    extras: Callable[[], Mapping[str, Tensor]] | None = None,
    loss_terms: Sequence[LossTerm] = (),
    progress: bool | None = None,
    callback=None,
    description: str = "training",
) -> Run:
    """Train the flow ``build()`` on ``data()`` with ``train``, or load it from the cache.

    Args:
        spec: What makes this flow this flow besides ``train``: the data's recipe and dimension, the
            architecture, and a name for any ``loss_terms`` (callables cannot be hashed).
        build: Makes the untrained flow; called under ``rng.seeded(train.seed)``.
        data: Returns ``(x_train, x_val)`` on the CPU in the flow's dtype; called only to train.
        extras: Computes tensors to keep beside the weights (called only to train, after ``data``).

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> from flowcore.config import FlowConfig
        >>> cfg = TrainConfig(n_train=64, n_val=16, max_epochs=1, batch_size=32)
        >>> x = torch.randn(80, 2, generator=rng.generator(0))
        >>> build, data = lambda: FlowConfig(n_couplings=1, hidden=[4]).build(2), lambda: (x[:64], x[64:])
        >>> with tempfile.TemporaryDirectory() as folder, mock.patch.dict(os.environ, {"FLOWCORE_CACHE": folder}):
        ...     first = train_or_load({"doc": 1}, build, data, cfg, progress=False)
        ...     again = train_or_load({"doc": 1}, build, data, cfg, progress=False)
        >>> first.from_cache, again.from_cache, len(again.history.val_nll)
        (False, True, 1)
    """
    device = torch.device(device)

    def fresh() -> nn.Module:
        with rng.seeded(train.seed):
            return build()

    def compute() -> dict:
        x_train, x_val = data()
        kept = {k: v.cpu() for k, v in (extras() if extras is not None else {}).items()}
        flow = fresh().to(device)
        history = fit(flow, x_train.to(device), x_val.to(device), train, progress=progress, callback=callback, description=description, loss_terms=loss_terms)
        return {"state_dict": {k: v.cpu() for k, v in flow.state_dict().items()}, "history": history.as_dict(), "extras": kept}

    def loads(entry) -> bool:
        try:
            fresh().load_state_dict(entry["state_dict"])
            History(**entry["history"])
            return isinstance(entry["extras"], dict)
        except Exception:
            return False

    entry, from_cache = cached("flow", {**spec, "train": train}, compute, validate=loads)
    flow = fresh()
    flow.load_state_dict(entry["state_dict"])
    return Run(flow.to(device).eval(), History(**entry["history"]), from_cache, dict(entry["extras"]), fresh().to(device).eval())


class _Missing(Exception):
    """Raised by the ``compute`` handed to :func:`cached` to learn that an entry has to be trained."""


def _missing():
    raise _Missing


def train_or_load_many(
    specs: Sequence[Mapping[str, Any]],
    builds: Sequence[Callable[[], nn.Module]],
    datas: Sequence[Callable[[], tuple[Tensor, Tensor]]],
    trains: Sequence[TrainConfig],
    device: torch.device | str = "cpu",
    *,
    extras: Sequence[Callable[[], Mapping[str, Tensor]]] | None = None,
    progress: bool | None = None,
    description: str = "training",
) -> list[Run]:
    """:func:`train_or_load` for many flows of one architecture: one :class:`Run` per ``k``.

    Flow ``k`` is the cache entry of ``{**specs[k], "trainer": "batched", "train": trains[k]}``,
    with the same fields as :func:`train_or_load`'s (``extras[k]()`` is called after ``datas[k]()``,
    as there). The entries found are
    loaded; all the missing ones are trained together in one
    :func:`~flowcore.train_many.fit_many` call (so their ``trains`` must be equal except for
    ``seed``), each from ``builds[k]()`` called under ``rng.seeded(trains[k].seed)``, and saved once
    all have trained: if training raises, nothing of this call is cached. Under
    :func:`flowcore.cache.cache_only` a missing entry raises :class:`~flowcore.cache.NotCached`.

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> from flowcore.config import FlowConfig
        >>> cfgs = [TrainConfig(n_train=64, n_val=16, max_epochs=1, batch_size=32, seed=s) for s in (0, 1)]
        >>> x = torch.randn(80, 2, generator=rng.generator(0))
        >>> build, data = lambda: FlowConfig(n_couplings=1, hidden=[4]).build(2), lambda: (x[:64], x[64:])
        >>> with tempfile.TemporaryDirectory() as folder, mock.patch.dict(os.environ, {"FLOWCORE_CACHE": folder}):
        ...     first = train_or_load_many([{"doc": 1}] * 2, [build] * 2, [data] * 2, cfgs, progress=False)
        ...     again = train_or_load_many([{"doc": 1}] * 2, [build] * 2, [data] * 2, cfgs, progress=False)
        >>> [r.from_cache for r in first], [r.from_cache for r in again]
        ([False, False], [True, True])
    """
    n = len(specs)
    if not (len(builds) == len(datas) == len(trains) == n) or (extras is not None and len(extras) != n):
        raise ValueError(f"specs, builds, datas, trains (and extras) must have one entry per flow, got {n}, {len(builds)}, {len(datas)}, {len(trains)}")
    device = torch.device(device)

    def fresh(k: int) -> nn.Module:
        with rng.seeded(trains[k].seed):
            return builds[k]()

    def loads(k: int, entry) -> bool:
        try:
            fresh(k).load_state_dict(entry["state_dict"])
            History(**entry["history"])
            return isinstance(entry["extras"], dict)
        except Exception:
            return False

    keys = [{**spec, "trainer": "batched", "train": train} for spec, train in zip(specs, trains)]
    entries: list[dict | None] = [None] * n
    from_cache = [False] * n
    todo: dict[Path, list[int]] = {}  # entry file -> the flows that are it (a repeated spec trains once)
    for k in range(n):
        try:
            # cached() reads, validates (warning about a bad entry) and honours cache_only.
            entries[k], from_cache[k] = cached("flow", keys[k], _missing, validate=lambda entry, k=k: loads(k, entry))
        except _Missing:
            todo.setdefault(entry_path("flow", keys[k]), []).append(k)
    if todo:
        first = [ks[0] for ks in todo.values()]
        flows, x_trains, x_vals, kept = [], [], [], []
        for k in first:
            x_train, x_val = datas[k]()
            kept.append({name: v.cpu() for name, v in (extras[k]() if extras is not None else {}).items()})
            flows.append(fresh(k).to(device))
            x_trains.append(x_train.to(device))
            x_vals.append(x_val.to(device))
        histories = fit_many(flows, x_trains, x_vals, [trains[k] for k in first], progress=progress, description=description)
        trained = [
            {"state_dict": {name: v.cpu() for name, v in flow.state_dict().items()}, "history": history.as_dict(), "extras": extra}
            for flow, history, extra in zip(flows, histories, kept)
        ]
        for (path, ks), entry in zip(todo.items(), trained):
            save_atomic(entry, path)
            for k in ks:
                entries[k] = entry
    runs = []
    for k, entry in enumerate(entries):
        flow = fresh(k)
        flow.load_state_dict(entry["state_dict"])
        runs.append(Run(flow.to(device).eval(), History(**entry["history"]), from_cache[k], dict(entry["extras"]), fresh(k).to(device).eval()))
    return runs
