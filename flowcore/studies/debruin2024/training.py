r"""The thesis's training runs: draw :math:`p` for a dimension, train a RealNVP on samples of it.

The maximum-likelihood Gaussian :math:`\hat p` of the very training samples (the best *linear*
flow, the book's control) is fitted once when the flow is trained and travels with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from flowcore.gaussians import Gaussian, training_gaussian
from flowcore.rng import stream
from flowcore.runs import train_or_load
from flowcore.studies.debruin2024.config import ThesisConfig
from flowcore.train import History
from flowcore.validation import check_int

__all__ = ["TrainedFlow", "trained_flow"]


@dataclass
class TrainedFlow:
    """A flow trained on ``p``, the ML Gaussian ``p_hat`` of its training set, its history, and
    whether it came from the cache."""

    dim: int
    p: Gaussian
    p_hat: Gaussian
    flow: torch.nn.Module
    history: History
    from_cache: bool


def trained_flow(dim: int, config: ThesisConfig, progress: bool | None = None, callback=None, loss_terms=(), loss_name: str = "") -> TrainedFlow:
    """Draw :math:`p` for ``dim`` and train a RealNVP on it, or load it from the cache.

    The training and validation sets come from the streams ``(seed, "train", D)`` and
    ``(seed, "val", D)``; the cache key covers ``dim``, the recipe, the architecture and every
    training setting (:func:`flowcore.runs.train_or_load`). Extra ``loss_terms`` (another study's
    regulariser) need a ``loss_name``, which joins the key.
    """
    if loss_terms and not loss_name:
        raise ValueError("loss_name must name the loss_terms (it joins the cache key)")
    dim = check_int("dim", dim, minimum=2)
    p = training_gaussian(dim, config.recipe, config.seed)
    train = config.train
    samples: dict[str, torch.Tensor] = {}

    def data():
        samples["train"] = p.sample(train.n_train, stream(config.seed, "train", dim))
        x_val = p.sample(train.n_val, stream(config.seed, "val", dim), dtype=torch.float32)
        return samples["train"].to(torch.float32), x_val

    def extras():
        p_hat = Gaussian.fit(samples["train"])
        return {"p_hat_mean": p_hat.mean, "p_hat_cov": p_hat.cov}

    spec = {"dim": dim, "recipe": config.recipe, "flow": config.flow}
    if loss_name:
        spec["loss"] = loss_name
    run = train_or_load(
        spec,
        lambda: config.flow.build(dim),
        data,
        train,
        config.torch_device,
        extras=extras,
        progress=progress,
        callback=callback,
        loss_terms=loss_terms,
        description=f"D={dim}" + (f" ({loss_name})" if loss_name else ""),
    )
    p_hat = Gaussian(run.extras["p_hat_mean"], run.extras["p_hat_cov"])
    return TrainedFlow(dim, p, p_hat, run.flow, run.history, run.from_cache)
