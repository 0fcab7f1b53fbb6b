r"""The thesis's training runs: draw :math:`p` for a dimension, train a RealNVP on samples of it.

Two nulls travel with each trained flow: the maximum-likelihood Gaussian :math:`\hat p` of the
very training samples (the best *linear* flow: what finite data alone gives), fitted once when the
flow is trained, and the flow at its initialisation :math:`p_{\theta_0}` (the same seed, no
training step: what a flow that has learned nothing gives).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from flowcore.gaussians import Gaussian, training_gaussian
from flowcore.rng import stream
from flowcore.runs import train_or_load, train_or_load_many
from flowcore.studies.debruin2024.config import ThesisConfig
from flowcore.train import History
from flowcore.validation import check_int

__all__ = ["TrainedFlow", "training_data", "trained_flow", "trained_flows", "untrained_density"]


@dataclass
class TrainedFlow:
    """A flow trained on ``p``, the ML Gaussian ``p_hat`` of its training set, its history, whether
    it came from the cache, and the density of the same flow before training (``untrained``, see
    :func:`untrained_density`)."""

    dim: int
    p: Gaussian
    p_hat: Gaussian
    flow: torch.nn.Module
    history: History
    from_cache: bool
    untrained: torch.nn.Module


def untrained_density(untrained: torch.nn.Module) -> torch.nn.Module:
    """The density of a flow before training, for scoring: its base N(0, I) when the flow is then
    the identity up to a permutation (:attr:`~flowcore.flows.RealNVP.initially_identity`; the same
    numbers at a fraction of the cost), else the flow itself."""
    return untrained.base if getattr(untrained, "initially_identity", False) else untrained


def training_data(
    dim: int, config: ThesisConfig, p: Gaussian | None = None
) -> tuple[Gaussian, torch.Tensor, torch.Tensor]:
    """``(p, x_train, x_val)`` for ``dim``: the training Gaussian p of ``config``'s recipe and seed,
    ``config.n_train`` training samples (float64, from the stream ``(seed, "train", D)``) and
    ``config.n_val`` validation samples (float32, stream ``(seed, "val", D)``): the data every flow
    of the thesis's studies trains on. ``p`` skips drawing it again.

    Example:
        >>> p, x_train, x_val = training_data(3, ThesisConfig(n_train=50, n_val=20))
        >>> p.dim, tuple(x_train.shape), x_train.dtype, tuple(x_val.shape), x_val.dtype
        (3, (50, 3), torch.float64, (20, 3), torch.float32)
    """
    dim = check_int("dim", dim, minimum=2)
    p = training_gaussian(dim, config.recipe, config.seed) if p is None else p
    x_train = p.sample(config.n_train, stream(config.seed, "train", dim))
    x_val = p.sample(config.n_val, stream(config.seed, "val", dim), dtype=torch.float32)
    return p, x_train, x_val


def trained_flow(
    dim: int,
    config: ThesisConfig,
    progress: bool | None = None,
    callback=None,
    loss_terms=(),
    loss_name: str = "",
    model=None,
) -> TrainedFlow:
    """Draw :math:`p` for ``dim`` and train a RealNVP on it, or load it from the cache.

    The training and validation sets (``config.n_train`` and ``config.n_val`` samples) come from the
    streams ``(seed, "train", D)`` and ``(seed, "val", D)`` (:func:`training_data`); the cache key
    covers ``dim``, the recipe, the architecture, the data sizes and every training setting
    (:func:`flowcore.runs.train_or_load`). Extra ``loss_terms`` (another study's
    regulariser) need a ``loss_name``, which joins the key.

    ``model`` trains another density model in the RealNVP's place on the same data, with the same
    settings: any object with ``build(dim)`` (the untrained ``nn.Module`` with ``log_prob``; torch's
    global RNG, seeded with the training seed, draws its weights) and ``key`` (what names it in the
    cache key instead of ``config.flow``), such as a :class:`flowcore.libraries.LibraryModel`.
    """
    if loss_terms and not loss_name:
        raise ValueError("loss_name must name the loss_terms (it joins the cache key)")
    dim = check_int("dim", dim, minimum=2)
    p = training_gaussian(dim, config.recipe, config.seed)
    samples: dict[str, torch.Tensor] = {}

    def data():
        _, samples["train"], x_val = training_data(dim, config, p)
        return samples["train"].to(torch.float32), x_val

    def extras():
        p_hat = Gaussian.fit(samples["train"])
        return {"p_hat_mean": p_hat.mean, "p_hat_cov": p_hat.cov}

    spec = {"dim": dim, "recipe": config.recipe}
    spec.update({"flow": config.flow} if model is None else {"model": model.key})
    if loss_name:
        spec["loss"] = loss_name
    if model is not None and (loss_terms or callback is not None):
        raise ValueError("a model other than the RealNVP trains without loss_terms and callback")
    if config.trainer == "batched" and model is None:
        if loss_terms or callback is not None:
            raise ValueError(
                "trainer='batched' trains without loss_terms and callback; use trainer='single'"
            )
        return trained_flows(dim, [config], progress)[0]
    run = train_or_load(
        spec,
        (lambda: config.flow.build(dim)) if model is None else (lambda: model.build(dim)),
        data,
        config.train,
        config.torch_device,
        sizes=(config.n_train, config.n_val),
        extras=extras,
        progress=progress,
        callback=callback,
        loss_terms=loss_terms,
        description=f"D={dim}" + (f" ({loss_name})" if loss_name else ""),
    )
    p_hat = Gaussian(run.extras["p_hat_mean"], run.extras["p_hat_cov"])
    return TrainedFlow(
        dim, p, p_hat, run.flow, run.history, run.from_cache, untrained_density(run.untrained)
    )


def trained_flows(
    dim: int, configs: Sequence[ThesisConfig], progress: bool | None = None
) -> list[TrainedFlow]:
    """:func:`trained_flow` for several configs that differ only in their seed, trained together as
    one stacked model (:func:`flowcore.runs.train_or_load_many`), whatever their ``trainer``.

    Each flow's data, weights and key are those its config alone would give with
    ``trainer="batched"``; a flow's result does not depend on which others it was trained with
    (bitwise, tested in ``tests/unit/test_train_many.py``).
    """
    dim = check_int("dim", dim, minimum=2)
    ps = [training_gaussian(dim, c.recipe, c.seed) for c in configs]
    samples: dict[int, torch.Tensor] = {}

    def data(k: int):
        _, samples[k], x_val = training_data(dim, configs[k], ps[k])
        return samples[k].to(torch.float32), x_val

    def extras(k: int):
        p_hat = Gaussian.fit(samples.pop(k))
        return {"p_hat_mean": p_hat.mean, "p_hat_cov": p_hat.cov}

    runs = train_or_load_many(
        [{"dim": dim, "recipe": c.recipe, "flow": c.flow} for c in configs],
        [lambda c=c: c.flow.build(dim) for c in configs],
        [lambda k=k: data(k) for k in range(len(configs))],
        [c.train for c in configs],
        configs[0].torch_device,
        sizes=[(c.n_train, c.n_val) for c in configs],
        extras=[lambda k=k: extras(k) for k in range(len(configs))],
        progress=progress,
        description=f"D={dim}, {len(configs)} flows",
    )
    return [
        TrainedFlow(
            dim,
            p,
            Gaussian(run.extras["p_hat_mean"], run.extras["p_hat_cov"]),
            run.flow,
            run.history,
            run.from_cache,
            untrained_density(run.untrained),
        )
        for p, run in zip(ps, runs)
    ]
