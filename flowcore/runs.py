r"""Trained flows, cached: a flow is trained once per canonical config and loaded from then on.

:func:`train_or_load` is the one place a flow is built, trained and cached. Its cache key is
:func:`flowcore.cache.job_key` of the caller's spec (what the data and the architecture are)
together with the :class:`~flowcore.train.TrainConfig`; the device is not part of it, so a flow
trained on the CPU serves a GPU run. The initial weights come from ``train.seed`` through
:func:`flowcore.rng.seeded`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from flowcore import rng
from flowcore.cache import cached
from flowcore.train import History, LossTerm, TrainConfig, fit

__all__ = ["Run", "train_or_load"]


@dataclass
class Run:
    """A trained flow, its training history, whether it came from the cache, and the tensors the
    caller asked to keep beside it (``extras``, e.g. the ML Gaussian of the training set).

    Example:
        >>> run = Run(torch.nn.Identity(), History(), from_cache=True)
        >>> run.from_cache, run.extras
        (True, {})
    """

    flow: nn.Module
    history: History
    from_cache: bool
    extras: dict[str, Tensor] = field(default_factory=dict)


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
    return Run(flow.to(device).eval(), History(**entry["history"]), from_cache, dict(entry["extras"]))
