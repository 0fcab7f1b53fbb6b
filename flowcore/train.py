r"""Maximum-likelihood training of a flow: :math:`\max_\theta \frac1n\sum_i \log p_\theta(x_i)` (Eq. 15).

``fit`` runs Adam on minibatches, tracks a held-out validation NLL, stops early when it stops
improving and restores the best weights. A non-finite loss raises at once.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from flowcore.validation import check_int, check_positive

__all__ = ["TrainConfig", "History", "fit", "show_progress"]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (the thesis states none of them; these are ours).

    Attributes:
        n_train: Training-set size, samples drawn from p.
        n_val: Held-out validation-set size, for early stopping.
        batch_size: Minibatch size.
        lr: Adam learning rate.
        max_epochs: Upper bound on epochs.
        patience: Stop after this many epochs without a validation improvement of ``min_delta``.
        lr_patience: Halve the learning rate after this many epochs without improvement
            (``ReduceLROnPlateau``); the last hundredths of a nat need the smaller steps.
        min_delta: Smallest validation-NLL decrease (nats) that counts as an improvement.
        seed: Seed of the initial weights and the minibatch order.
    """

    n_train: int = 50_000
    n_val: int = 5_000
    batch_size: int = 512
    lr: float = 1e-3
    max_epochs: int = 60
    patience: int = 6
    lr_patience: int = 2
    min_delta: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        check_int("n_train", self.n_train, minimum=2)
        check_int("n_val", self.n_val, minimum=2)
        check_int("batch_size", self.batch_size, minimum=1)
        check_positive("lr", self.lr)
        check_int("max_epochs", self.max_epochs, minimum=1)
        check_int("patience", self.patience, minimum=1)
        check_int("lr_patience", self.lr_patience, minimum=1)
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be ≥ 0, got {self.min_delta}")
        check_int("seed", self.seed, minimum=0)


@dataclass
class History:
    """Per-epoch mean training NLL and validation NLL (nats), and the epoch whose weights were kept."""

    train_nll: list[float] = field(default_factory=list)
    val_nll: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"train_nll": self.train_nll, "val_nll": self.val_nll, "best_epoch": self.best_epoch, "seconds": self.seconds}


def show_progress() -> bool:
    """Whether to draw progress bars: ``$FLOWCORE_PROGRESS`` (``0``/``1``) if set, else only on a terminal."""
    env = os.environ.get("FLOWCORE_PROGRESS")
    if env is not None:
        return env.strip() not in ("", "0", "false", "False")
    return sys.stderr.isatty() or "ipykernel" in sys.modules


@torch.no_grad()
def _mean_nll(flow: nn.Module, x: Tensor, batch_size: int) -> float:
    total = 0.0
    for chunk in x.split(max(batch_size, 8192)):
        total += -flow.log_prob(chunk).sum().item()
    return total / len(x)


def fit(
    flow: nn.Module,
    x_train: Tensor,
    x_val: Tensor,
    config: TrainConfig,
    progress: bool | None = None,
    callback: Callable[[int, History], None] | None = None,
    description: str = "training",
) -> History:
    """Train ``flow`` in place on ``x_train`` by maximum likelihood; return its :class:`History`.

    Args:
        flow: A module with ``log_prob(x)``, already on its device.
        x_train, x_val: Training and validation samples, on the flow's device and dtype.
        config: The :class:`TrainConfig`.
        progress: Draw a tqdm bar over epochs; ``None`` decides with :func:`show_progress`.
        callback: Called as ``callback(epoch, history)`` after every epoch (may raise to abort).

    Raises:
        ValueError: If the data contain NaN or inf.
        FloatingPointError: If a minibatch loss becomes NaN or infinite.
    """
    for name, x in (("x_train", x_train), ("x_val", x_val)):
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf; training needs finite data")
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(flow.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=config.lr_patience, threshold=config.min_delta, threshold_mode="abs")
    history = History()
    best_val, best_state, stale = float("inf"), None, 0
    start = time.perf_counter()
    show = show_progress() if progress is None else progress
    epochs = tqdm(range(config.max_epochs), desc=description, disable=not show, leave=False)
    for epoch in epochs:
        flow.train()
        order = torch.randperm(len(x_train), generator=generator).to(x_train.device)
        running, seen = 0.0, 0
        for step, idx in enumerate(order.split(config.batch_size)):
            loss = -flow.log_prob(x_train[idx]).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {epoch}, step {step} (lr={config.lr}); "
                    "try a lower lr or check the data scale"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(idx)
            seen += len(idx)
        flow.eval()
        val = _mean_nll(flow, x_val, config.batch_size)
        if not torch.isfinite(torch.tensor(val)):
            raise FloatingPointError(f"validation NLL became {val} at epoch {epoch} (lr={config.lr})")
        history.train_nll.append(running / seen)
        history.val_nll.append(val)
        scheduler.step(val)
        if val < best_val - config.min_delta:
            best_val, best_state, stale, history.best_epoch = val, copy.deepcopy(flow.state_dict()), 0, epoch
        else:
            stale += 1
        epochs.set_postfix(train=f"{running / seen:.3f}", val=f"{val:.3f}")
        if callback is not None:
            callback(epoch, history)
        if stale >= config.patience:
            break
    if best_state is not None:
        flow.load_state_dict(best_state)
    history.seconds = time.perf_counter() - start
    return history
