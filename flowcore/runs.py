r"""Trained flows, cached: a flow is trained once per canonical config and loaded from then on.

:func:`train_or_load` is the one place a flow is built, trained and cached. Its cache key is
:func:`flowcore.cache.job_key` of the caller's spec (what the data and the architecture are)
together with the :class:`~flowcore.train.TrainConfig` and the sizes of the training and
validation sets (:meth:`~flowcore.train.TrainConfig.key`); the device is not part of it, so a flow
trained on the CPU serves a GPU run. The initial weights come from ``train.seed`` through
:func:`flowcore.rng.seeded`.

:func:`train_or_load_many` is its batched counterpart: the flows it has to train are trained
together by :func:`flowcore.train_many.fit_many`, and each is cached as its own entry, keyed by its
spec plus ``"trainer": "batched"`` (the numbers differ from one-at-a-time training by rounding,
so the two never share an entry). Both are one implementation: look every entry up, train the
missing ones (with ``fit``, or together with ``fit_many``), save them, load them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from flowcore import rng
from flowcore.cache import entry_path, lookup, save_atomic
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
    sizes: tuple[int, int] | None = None,
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
        data: Returns ``(x_train, x_val)`` on the CPU in the flow's dtype; called only to train
            when ``sizes`` is given.
        sizes: ``(len(x_train), len(x_val))``, for the key; ``None``: ``data()`` is called first
            to count them (give them when drawing the data costs). Sets of other sizes raise a
            ``ValueError``.
        extras: Computes tensors to keep beside the weights (called only to train, after ``data``).

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> from flowcore.config import FlowConfig
        >>> cfg = TrainConfig(max_epochs=1, batch_size=32)
        >>> x = torch.randn(80, 2, generator=rng.generator(0))
        >>> build = lambda: FlowConfig(n_couplings=1, hidden=[4]).build(2)
        >>> data = lambda: (x[:64], x[64:])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": folder}):
        ...         first = train_or_load({"doc": 1}, build, data, cfg, progress=False)
        ...         again = train_or_load({"doc": 1}, build, data, cfg, progress=False)
        >>> first.from_cache, again.from_cache, len(again.history.val_nll)
        (False, True, 1)
    """

    def train_one(
        flows: list[nn.Module],
        x_trains: list[Tensor],
        x_vals: list[Tensor],
        configs: list[TrainConfig],
    ) -> list[History]:
        return [
            fit(
                flows[0],
                x_trains[0],
                x_vals[0],
                configs[0],
                progress=progress,
                callback=callback,
                description=description,
                loss_terms=loss_terms,
            )
        ]

    (run,) = _train_or_load(
        [dict(spec)], [build], [data], [train], [sizes], [extras], torch.device(device), train_one
    )
    return run


def train_or_load_many(
    specs: Sequence[Mapping[str, Any]],
    builds: Sequence[Callable[[], nn.Module]],
    datas: Sequence[Callable[[], tuple[Tensor, Tensor]]],
    trains: Sequence[TrainConfig],
    device: torch.device | str = "cpu",
    *,
    sizes: Sequence[tuple[int, int] | None] | None = None,
    extras: Sequence[Callable[[], Mapping[str, Tensor]]] | None = None,
    progress: bool | None = None,
    description: str = "training",
) -> list[Run]:
    """:func:`train_or_load` for many flows of one architecture: one :class:`Run` per ``k``.

    Flow ``k`` is the cache entry of ``{**specs[k], "trainer": "batched"}`` with ``trains[k]`` and
    ``sizes[k]``, keyed as :func:`train_or_load` keys its flow (``extras[k]()`` is called after
    ``datas[k]()``, as there; ``sizes=None``: every ``datas[k]()`` counts its own). The entries
    found are loaded; all the missing ones are trained together in one
    :func:`~flowcore.train_many.fit_many` call (so their ``trains`` must be equal except for
    ``seed``), each from ``builds[k]()`` called under ``rng.seeded(trains[k].seed)``, and saved once
    all have trained: if training raises, nothing of this call is cached. Under
    :func:`flowcore.cache.cache_only` a missing entry raises :class:`~flowcore.cache.NotCached`.

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> from flowcore.config import FlowConfig
        >>> cfgs = [TrainConfig(max_epochs=1, batch_size=32, seed=s) for s in (0, 1)]
        >>> x = torch.randn(80, 2, generator=rng.generator(0))
        >>> build = lambda: FlowConfig(n_couplings=1, hidden=[4]).build(2)
        >>> data = lambda: (x[:64], x[64:])
        >>> args = [{"doc": 1}] * 2, [build] * 2, [data] * 2, cfgs
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": folder}):
        ...         first = train_or_load_many(*args, progress=False)
        ...         again = train_or_load_many(*args, progress=False)
        >>> [r.from_cache for r in first], [r.from_cache for r in again]
        ([False, False], [True, True])
    """
    n = len(specs)
    if not (len(builds) == len(datas) == len(trains) == n) or any(
        given is not None and len(given) != n for given in (sizes, extras)
    ):
        raise ValueError(
            "specs, builds, datas, trains (and sizes, extras) must have one entry per flow, got "
            f"{n}, {len(builds)}, {len(datas)}, {len(trains)}"
        )

    def train_together(
        flows: list[nn.Module],
        x_trains: list[Tensor],
        x_vals: list[Tensor],
        configs: list[TrainConfig],
    ) -> list[History]:
        return fit_many(
            flows, x_trains, x_vals, configs, progress=progress, description=description
        )

    return _train_or_load(
        [{**spec, "trainer": "batched"} for spec in specs],
        builds,
        datas,
        trains,
        sizes or [None] * n,
        extras or [None] * n,
        torch.device(device),
        train_together,
    )


def _usable(entry: Any, flow: nn.Module) -> bool:
    """Whether a cached entry has a trained flow's fields, and weights that load into ``flow``."""
    try:
        flow.load_state_dict(entry["state_dict"])
        History(**entry["history"])
        return isinstance(entry["extras"], dict)
    except Exception:
        return False


def _train_or_load(
    specs: Sequence[Mapping[str, Any]],
    builds: Sequence[Callable[[], nn.Module]],
    datas: Sequence[Callable[[], tuple[Tensor, Tensor]]],
    trains: Sequence[TrainConfig],
    sizes: Sequence[tuple[int, int] | None],
    extras: Sequence[Callable[[], Mapping[str, Tensor]] | None],
    device: torch.device,
    train: Callable[
        [list[nn.Module], list[Tensor], list[Tensor], list[TrainConfig]], list[History]
    ],
) -> list[Run]:
    """Flow ``k`` is the cache entry of ``specs[k]`` with ``"train"``: ``trains[k]`` and the data
    sizes (``sizes[k]``, or counted from ``datas[k]()`` when ``None``); loaded when cached, else
    built under ``rng.seeded(trains[k].seed)`` and trained, in place, by one call ``train(flows,
    x_trains, x_vals, configs)`` together with every other missing flow (a key repeated trains
    once). The entries are saved once all have trained, so a training that raises caches nothing."""
    counted: dict[int, tuple[Tensor, Tensor]] = {}
    keys = []
    for k, size in enumerate(sizes):
        if size is None:
            counted[k] = datas[k]()
            size = tuple(len(x) for x in counted[k])
        keys.append({**specs[k], "train": trains[k].key(*size)})

    def fresh(k: int) -> nn.Module:
        with rng.seeded(trains[k].seed):
            return builds[k]()

    # lookup reads, validates (warning about a bad entry) and honours cache_only.
    entries = [
        lookup("flow", key, validate=lambda entry, k=k: _usable(entry, fresh(k)))
        for k, key in enumerate(keys)
    ]
    from_cache = [entry is not None for entry in entries]
    todo: dict[Path, list[int]] = {}  # entry file -> the flows that are it
    for k, entry in enumerate(entries):
        if entry is None:
            todo.setdefault(entry_path("flow", keys[k]), []).append(k)
    if todo:
        first = [ks[0] for ks in todo.values()]
        flows, x_trains, x_vals, kept = [], [], [], []
        for k in first:
            x_train, x_val = counted.pop(k) if k in counted else datas[k]()
            expected = (keys[k]["train"]["n_train"], keys[k]["train"]["n_val"])
            if (len(x_train), len(x_val)) != expected:
                raise ValueError(
                    f"the data of flow {k} hold {len(x_train)} training and {len(x_val)} "
                    f"validation samples; its sizes say {expected}"
                )
            kept.append(
                {
                    name: v.cpu()
                    for name, v in (extras[k]() if extras[k] is not None else {}).items()
                }
            )
            flows.append(fresh(k).to(device))
            x_trains.append(x_train.to(device))
            x_vals.append(x_val.to(device))
        histories = train(flows, x_trains, x_vals, [trains[k] for k in first])
        trained = [
            {
                "state_dict": {name: v.cpu() for name, v in flow.state_dict().items()},
                "history": history.as_dict(),
                "extras": extra,
            }
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
        runs.append(
            Run(
                flow.to(device).eval(),
                History(**entry["history"]),
                from_cache[k],
                dict(entry["extras"]),
                fresh(k).to(device).eval(),
            )
        )
    return runs
