r"""Kirichenko et al. on the paper's own pair, FashionMNIST and MNIST, with controls.

The data are :mod:`flowcore.datasets`' 8-bit images, averaged to ``real_size × real_size``
(:func:`flowcore.datasets.downsample`), a seeded subset of each training set (``real_train``
images, a fifth as many more for validation) and of each test set (``real_test``). Every model
sees the same dequantised pixels :math:`x = (v + u)/256` and is scored by its mean log-likelihood
over ``n_draws`` dequantisations, reported in bits/dim of the 8-bit pixels (the logit
pre-processing's log-det included).

**Models.** The paper's explanation of the failure is that *coupling layers* learn local pixel
correlations. To test what is specific to them, three models of the same data in the same space
are compared, and the untrained coupling flow beside them:

- the **coupling flow**: :func:`flowcore.flows.image.image_flow` (convolutional st-networks on
  checkerboard / horizontal / cycle masks), as in the digits chapters;
- the **MLP RealNVP**: :class:`~flowcore.flows.image.Logit` then a RealNVP whose couplings'
  st-networks are fully connected (:class:`flowcore.flows.RealNVP`, random permutations): no
  locality is built in;
- the **ML Gaussian** :math:`\hat p`: the maximum-likelihood Gaussian of the logit-transformed
  training pixels, :math:`\log \hat p(x) = \log\mathcal N(\operatorname{logit}(u(x));\hat\mu,
  \hat\Sigma) + \log|\det \partial y/\partial x|` (:class:`LogitGaussian`).

A claim the paper attributes to coupling layers holds only where the controls do not show the same
thing (:func:`flowcore.studies.kirichenko2020.claims.k1_pair`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from flowcore import datasets, rng
from flowcore.flows import RealNVP
from flowcore.flows.flow import Flow
from flowcore.flows.image import Logit
from flowcore.flows.transforms import CompositeTransform
from flowcore.runs import Run, train_or_load
from flowcore.studies.kirichenko2020.config import KirichenkoConfig
from flowcore.studies.kirichenko2020.experiments import (
    _dequantised,
    auroc_table,
    ceiling_r2,
    layer_r2,
    score_sets,
    swap_r2,
    trained_image_flow,
    untrained_image_flow,
)
from flowcore.studies.kirichenko2020.seeds import _flow_name, bottleneck_label
from flowcore.sweep import Job, run

__all__ = [
    "PAIR",
    "TITLES",
    "MODELS",
    "real_splits",
    "scored_sets",
    "coupling_flow",
    "mlp_flow",
    "LogitGaussian",
    "ml_gaussian",
    "models",
    "n_parameters",
    "pair_table",
    "real_jobs",
    "real_replicates",
    "negative_table",
]

#: The pair, in-distribution first in the paper's headline direction.
PAIR = ("fashion_mnist", "mnist")
#: How the pages name the data sets.
TITLES = {"fashion_mnist": "FashionMNIST", "mnist": "MNIST"}
#: The models of :func:`pair_table`, the model under test first.
MODELS = ("coupling flow", "MLP RealNVP", "ML Gaussian", "untrained coupling flow")
#: The ML Gaussian's diagonal jitter, relative to its mean variance.
JITTER = 1e-6
_LEVELS = datasets.LEVELS
_STUDY = "kirichenko2020"


def _other(name: str) -> str:
    return PAIR[1 - PAIR.index(name)]


def real_splits(config: KirichenkoConfig) -> dict[str, dict[str, np.ndarray]]:
    """Per data set of :data:`PAIR`: ``"train"``, ``"val"`` and ``"test"`` as int64 arrays (n,
    side²) of pixel values 0–255, side ``config.real_size``; seeded subsets (``config.seed``) of the
    training set (``real_train`` + ``real_train // 5``, disjoint) and of the test set
    (``real_test``), each kept in the data set's order.

    Example:
        >>> splits = real_splits(KirichenkoConfig(real_size=14, real_train=50, real_test=20))
        >>> {k: v.shape for k, v in splits["mnist"].items()}
        {'train': (50, 196), 'val': (10, 196), 'test': (20, 196)}
    """
    factor = 28 // config.real_size
    n_train, n_val = config.real_train, max(2, config.real_train // 5)
    out = {}
    for name in PAIR:
        train_all, test_all = datasets.load(name, "train")[0], datasets.load(name, "test")[0]
        if n_train + n_val > len(train_all):
            raise ValueError(
                f"real_train must leave a fifth as many validation images among the "
                f"{len(train_all)}: at most {len(train_all) * 5 // 6}, got {n_train}"
            )
        generator = rng.numpy_stream(rng.derived_seed(_STUDY, "real split", name, config.seed))
        order = generator.permutation(len(train_all))
        picked = {
            "train": train_all[np.sort(order[:n_train])],
            "val": train_all[np.sort(order[n_train : n_train + n_val])],
            "test": test_all[np.sort(generator.permutation(len(test_all))[: config.real_test])],
        }
        out[name] = {
            split: datasets.downsample(images, factor).reshape(len(images), -1).astype(np.int64)
            for split, images in picked.items()
        }
    return out


def scored_sets(
    splits: Mapping[str, Mapping[str, np.ndarray]], name: str, seed: int
) -> dict[str, np.ndarray]:
    """The sets a model trained on ``name`` is scored on: its ``"test"`` images, the other data
    set's test images (the paper's OOD set), and three controls built from its own test images:
    flipped up–down (the same local statistics, the wrong global shape), inverted (255 − v) and
    i.i.d. uniform noise (as many images)."""
    test = splits[name]["test"]
    side = math.isqrt(test.shape[1])
    noise = rng.numpy_stream(rng.derived_seed(_STUDY, "real noise", name, seed))
    return {
        "test": test,
        TITLES[_other(name)]: splits[_other(name)]["test"],
        "flipped up–down": test.reshape(-1, side, side)[:, ::-1, :].reshape(len(test), -1).copy(),
        "inverted": (_LEVELS - 1) - test,
        "uniform noise": noise.integers(0, _LEVELS, size=test.shape, dtype=np.int64),
    }


def _data_name(config: KirichenkoConfig, name: str) -> str:
    return f"{TITLES[name]} {config.real_size}×{config.real_size}"


def coupling_flow(
    config: KirichenkoConfig,
    splits: Mapping[str, Mapping[str, np.ndarray]],
    name: str,
    mask: str | None = None,
    bottleneck: int | None = None,
    progress: bool | None = None,
) -> Run:
    """The paper's coupling flow trained (or loaded) on ``name``'s training images, with the
    real-pair st-network and epochs (:meth:`KirichenkoConfig.on_real_images`)."""
    return trained_image_flow(
        config.on_real_images(),
        splits[name]["train"],
        splits[name]["val"],
        mask=mask,
        bottleneck=bottleneck,
        name=_data_name(config, name),
        levels=_LEVELS,
        progress=progress,
    )


def _mlp_architecture(config: KirichenkoConfig) -> dict:
    return {
        "dim": config.real_size**2,
        "n_couplings": config.n_couplings,
        "hidden": config.real_hidden,
        "mask": "halves",
        "permutation": "random",
        "log_scale": "tanh",
    }


def _build_mlp_flow(arch: Mapping) -> Flow:
    inner = RealNVP(**arch)
    flow = Flow(CompositeTransform([Logit(), inner.transform]), inner.base)
    flow.autograd_only = True  # the logit has no no-grad fast path; the autograd path is exact
    return flow


def mlp_flow(
    config: KirichenkoConfig,
    splits: Mapping[str, Mapping[str, np.ndarray]],
    name: str,
    progress: bool | None = None,
) -> Run:
    r"""The control without locality: :class:`~flowcore.flows.image.Logit` then a RealNVP with
    fully connected st-networks (``config.real_hidden``), trained (or loaded) on the same
    dequantised images with the same optimiser settings as :func:`coupling_flow`.

    Example:
        >>> flow = _build_mlp_flow(_mlp_architecture(KirichenkoConfig(real_size=14)))
        >>> flow.log_prob(torch.full((2, 196), 0.5)).shape
        torch.Size([2])
    """
    real = config.on_real_images()
    arch = _mlp_architecture(config)
    label = _data_name(config, name)
    spec = {
        "study": _STUDY,
        "data": label,
        "copies": config.copies,
        "architecture": {"kind": "MLP RealNVP", **arch},
        "levels": _LEVELS,
        "n": len(splits[name]["train"]),
    }
    x_train = _dequantised(
        splits[name]["train"], config.copies, config.seed, "train", label, levels=_LEVELS
    )
    x_val = _dequantised(splits[name]["val"], 1, config.seed, "val", label, levels=_LEVELS)
    return train_or_load(
        spec,
        lambda: _build_mlp_flow(arch),
        lambda: (x_train, x_val),
        real.train,
        real.torch_device,
        progress=progress,
        description=f"MLP RealNVP ({label})",
    )


class LogitGaussian(nn.Module):
    r"""A Gaussian in the logit space of :class:`~flowcore.flows.image.Logit`, as a density of the
    pixels :math:`x \in (0, 1)^D`:

    .. math:: \log p(x) = \log\mathcal N(y; \mu, LL^\top) + \log\left|\det\frac{\partial y}
        {\partial x}\right|, \qquad y = \operatorname{logit}(\alpha + (1 - 2\alpha)x),

    evaluated in float64 (``mean`` and ``scale_tril`` :math:`L` are float64 buffers).

    Example:
        >>> from flowcore.flows.distributions import StandardNormal
        >>> eye = torch.eye(2, dtype=torch.float64)
        >>> g = LogitGaussian(torch.zeros(2, dtype=torch.float64), eye)  # N(0, I) in logit space
        >>> x = torch.full((1, 2), 0.5)
        >>> reference = Flow(Logit(), StandardNormal(2))
        >>> round(float(g.log_prob(x)), 5), round(float(reference.log_prob(x)), 5)
        (0.72399, 0.72399)
    """

    def __init__(self, mean: Tensor, scale_tril: Tensor, alpha: float = 0.05):
        super().__init__()
        self.logit = Logit(alpha)
        self.register_buffer("mean", mean.to(torch.float64))
        self.register_buffer("scale_tril", scale_tril.to(torch.float64))

    def log_prob(self, x: Tensor) -> Tensor:
        y, log_det = self.logit(x.to(torch.float64))
        white = torch.linalg.solve_triangular(
            self.scale_tril, (y - self.mean).T, upper=False
        ).T  # L⁻¹(y − μ)
        dim = y.shape[-1]
        log_norm = self.scale_tril.diagonal().log().sum() + 0.5 * dim * math.log(2 * math.pi)
        return -0.5 * white.pow(2).sum(-1) - log_norm + log_det


def ml_gaussian(
    config: KirichenkoConfig, splits: Mapping[str, Mapping[str, np.ndarray]], name: str
) -> LogitGaussian:
    r""":math:`\hat p`: the maximum-likelihood Gaussian (mean and covariance over :math:`n`, not
    :math:`n-1`) of the logit-transformed dequantised training images the flows train on, its
    covariance plus :data:`JITTER` times the mean variance on the diagonal so that it stays
    positive definite when :math:`n \le D` (the ci profile's tiny sets).

    Example:
        >>> config = KirichenkoConfig(real_size=14, real_train=300, real_test=20)
        >>> g = ml_gaussian(config, real_splits(config), "mnist")
        >>> g.mean.shape, g.scale_tril.shape
        (torch.Size([196]), torch.Size([196, 196]))
    """
    label = _data_name(config, name)
    x = _dequantised(splits[name]["train"], 1, config.seed, "train", label, levels=_LEVELS)
    logit = Logit()
    y = logit(x.to(torch.float64))[0]
    mean = y.mean(0)
    centred = y - mean
    covariance = centred.T @ centred / len(y)
    covariance += JITTER * covariance.diagonal().mean() * torch.eye(len(mean), dtype=y.dtype)
    return LogitGaussian(mean, torch.linalg.cholesky(covariance), logit.alpha).to(
        config.torch_device
    )


def models(
    config: KirichenkoConfig,
    splits: Mapping[str, Mapping[str, np.ndarray]],
    name: str,
    progress: bool | None = None,
) -> dict[str, nn.Module]:
    """The four models of :data:`MODELS` for the data set ``name``, trained or loaded."""
    real = config.on_real_images()
    return {
        "coupling flow": coupling_flow(config, splits, name, progress=progress).flow.eval(),
        "MLP RealNVP": mlp_flow(config, splits, name, progress=progress).flow.eval(),
        "ML Gaussian": ml_gaussian(config, splits, name),
        "untrained coupling flow": untrained_image_flow(real, size=config.real_size),
    }


def n_parameters(model: nn.Module) -> int:
    """Trainable parameters; for :class:`LogitGaussian` those of :math:`\\hat\\mu` and
    :math:`\\hat\\Sigma`, :math:`D + D(D+1)/2`."""
    if isinstance(model, LogitGaussian):
        dim = model.mean.numel()
        return dim + dim * (dim + 1) // 2
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def pair_table(
    config: KirichenkoConfig,
    splits: Mapping[str, Mapping[str, np.ndarray]],
    progress: bool | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Both directions of the pair, every model of :data:`MODELS`: its parameters, test bits/dim,
    the other data set's bits/dim, and the AUROC of its own test images against the other set with
    the bootstrap interval.

    Returns:
        The table (one row per direction and model) and the scores per ``(direction, model)``
        (``{"test": …, <other set>: …}``, nats) for the histograms.
    """
    dim = config.real_size**2
    rows, scores = [], {}
    for name in PAIR:
        other = TITLES[_other(name)]
        sets = {"test": splits[name]["test"], other: splits[_other(name)]["test"]}
        for model_name, model in models(config, splits, name, progress).items():
            found = score_sets(config, model, sets, levels=_LEVELS)
            table = auroc_table(config, found, dim=dim, levels=_LEVELS)
            direction = f"{TITLES[name]} → {other}"
            scores[(direction, model_name)] = found
            rows.append(
                {
                    "direction": direction,
                    "model": model_name,
                    "parameters": n_parameters(model),
                    "test bits/dim": table.loc["test", "bits/dim"],
                    "OOD bits/dim": table.loc[other, "bits/dim"],
                    "AUROC": table.loc[other, "AUROC"],
                    "CI low": table.loc[other, "CI low"],
                    "CI high": table.loc[other, "CI high"],
                }
            )
    return pd.DataFrame(rows), scores


# --- the coupling flow's settings over seeds (K5–K7) ----------------------------------------------


def real_jobs(config: KirichenkoConfig) -> list[Job]:
    """Per seed of ``config.seeds``: the FashionMNIST coupling flow with each mask of
    ``config.masks`` (no bottleneck), and with ``config.mask`` and the bottleneck
    ``config.real_bottleneck``; flows are named as in the digits chapters.

    Example:
        >>> [j.labels["flow"] for j in real_jobs(KirichenkoConfig(seeds=[0, 1]))][:4]
        ['checkerboard', 'horizontal', 'cycle', 'l = 8']
    """
    variants = [(mask, None) for mask in config.masks] + [(config.mask, config.real_bottleneck)]
    return [
        Job(
            {
                "seed": seed,
                "flow": _flow_name(mask, size),
                "mask": mask,
                "l": bottleneck_label(size),
            },
            {"config": config.at_seed(seed), "mask": mask, "bottleneck": size},
        )
        for seed in config.seeds
        for mask, size in variants
    ]


def _real_job(job: Job) -> list[dict]:
    config: KirichenkoConfig = job.config["config"]
    mask, size = job.config["mask"], job.config["bottleneck"]
    splits = real_splits(config)
    name = PAIR[0]
    flow = coupling_flow(config, splits, name, mask, size, progress=False).flow.eval()
    found = score_sets(config, flow, scored_sets(splits, name, config.seed), levels=_LEVELS)
    table = auroc_table(config, found, dim=config.real_size**2, levels=_LEVELS)
    row = {
        "test bits/dim": table.loc["test", "bits/dim"],
        "mean AUROC": float(table["AUROC"].dropna().mean()),
        **{f"AUROC {k}": v for k, v in table["AUROC"].dropna().items()},
    }
    if mask == config.mask and size is None:
        label = _data_name(config, name)
        x_train = _dequantised(
            splits[name]["train"], 1, config.seed, "analysis", label, levels=_LEVELS
        )
        x_test = _dequantised(
            splits[name]["test"], 1, config.seed, "analysis test", label, levels=_LEVELS
        )
        normal = layer_r2(flow, x_test)
        row.update(
            {
                "R² layer 1": normal[0],
                "R² layer 2": normal[1],
                "R² layer 2, swapped": swap_r2(flow, x_test, seed=config.seed)[1],
                "ceiling": ceiling_r2(
                    config.on_real_images(),
                    flow,
                    x_train,
                    x_test,
                    layer_index=1,
                    progress=False,
                    data=label,
                ),
            }
        )
    return [row]


def real_replicates(config: KirichenkoConfig, progress: bool | None = None) -> pd.DataFrame:
    """The flows of :func:`real_jobs` trained (or loaded) and scored on FashionMNIST's scored sets
    (:func:`scored_sets`): one row per (seed, flow) with ``test bits/dim``, ``mean AUROC``,
    ``AUROC <set>``, and for the main flow the swap test (``R² layer 2``, ``R² layer 2,
    swapped``, ``ceiling``): the columns :func:`~flowcore.studies.kirichenko2020.claims.k5`,
    ``k6`` and ``k7`` read. The jobs run as a sweep on ``config.scheduler``."""
    return run(
        real_jobs(config),
        _real_job,
        progress=progress,
        description="real-pair flows over seeds",
        scheduler=config.scheduler,
    )


# --- negative training (K8) -----------------------------------------------------------------------


def negative_table(
    config: KirichenkoConfig,
    splits: Mapping[str, Mapping[str, np.ndarray]],
    progress: bool | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """K8 on the pair: the FashionMNIST coupling flow retrained with the negative term on MNIST's
    *training* images (cutoff ``config.real_negative_cutoff``), both flows scored on the held-out
    MNIST *test* images and the controls of :func:`scored_sets`.

    Returns:
        ``(plain, negative)`` AUROC tables (:func:`~flowcore.studies.kirichenko2020.experiments.
        auroc_table`), indexed by set.
    """
    from flowcore.studies.kirichenko2020.analysis import negative_run

    name, target = PAIR
    real = config.on_real_images()
    label = _data_name(config, name)
    sets = scored_sets(splits, name, config.seed)
    dim = config.real_size**2
    plain_flow = coupling_flow(config, splits, name, progress=progress).flow.eval()
    negative = negative_run(
        real,
        _dequantised(
            splits[name]["train"], config.copies, config.seed, "train", label, levels=_LEVELS
        ),
        _dequantised(splits[name]["val"], 1, config.seed, "val", label, levels=_LEVELS),
        _dequantised(
            splits[target]["train"], config.copies, config.seed, "negative", label, levels=_LEVELS
        ),
        data_name=label,
        target=TITLES[target],
        cutoff=config.real_negative_cutoff,
        size=config.real_size,
        n=len(splits[name]["train"]),
        extra={"levels": _LEVELS},
        progress=progress,
    )
    tables = [
        auroc_table(config, score_sets(config, flow, sets, levels=_LEVELS), dim=dim, levels=_LEVELS)
        for flow in (plain_flow, negative.flow.eval())
    ]
    return tables[0], tables[1]
