r"""The KLJ regulariser on deep flows whose true density is known (this project's advantage over
the paper).

Two clean truths: the thesis's Gaussian recipe at :math:`d = 10`, and the two-moons law of
scikit-learn's ``make_moons`` in its continuous limit (each moon's angle uniform on
:math:`[0, \pi]`, plus :math:`\mathcal N(0, \sigma^2 I)` noise; ``make_moons`` itself spaces the
angles on a grid). The moons' density is computed by quadrature over the angle. A fraction
:math:`r` of the training points is replaced by outliers :math:`x + \sigma_o\varepsilon`. Each run
trains a RealNVP (cached) with the KLJ term of weight :math:`\gamma` (``klj_weight``) or with weight
decay, and reports the Monte-Carlo :math:`\mathrm{KL}(p\,\|\,p_\theta)` to the clean truth with its
standard error, and the AUROC of clean test data against fresh outliers.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import pandas as pd
import torch

from flowcore import rng
from flowcore.config import FlowConfig
from flowcore.estimators import auroc, mean_estimate
from flowcore.flows.fast import FastPathWarning
from flowcore.gaussians import GaussianRecipe, training_gaussian
from flowcore.runs import train_or_load
from flowcore.studies.song2024.config import SongConfig
from flowcore.studies.song2024.klj import klj_term, weight_decay_term
from flowcore.sweep import Job, run, summarise_over_seeds

__all__ = ["DATASETS", "Truth", "truth", "run_cell", "cells", "deep_grid", "summarise"]

#: The clean truths of the deep experiment.
DATASETS = ("gaussian", "moons")
#: The noise of the moons and the number of quadrature angles per moon.
MOONS_NOISE, MOONS_QUADRATURE = 0.1, 2000


class Truth:
    """A clean truth: ``sample(n, generator)`` and ``log_prob(x)`` (float64)."""

    def __init__(self, name: str, seed: int):
        self.name = name
        if name == "gaussian":
            self.p = training_gaussian(10, GaussianRecipe(), seed=seed)
            self.dim = 10
        elif name == "moons":
            self.dim = 2
            theta = torch.linspace(0, math.pi, MOONS_QUADRATURE, dtype=torch.float64)
            outer = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
            inner = torch.stack([1 - torch.cos(theta), 0.5 - torch.sin(theta)], 1)
            self.nodes = torch.cat([outer, inner])
        else:
            raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.name == "gaussian":
            return self.p.sample(n, generator)
        theta = torch.rand(n, generator=generator, dtype=torch.float64) * math.pi
        moon = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
        outer = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
        inner = torch.stack([1 - torch.cos(theta), 0.5 - torch.sin(theta)], 1)
        x = torch.where(moon[:, None], inner, outer)
        return x + MOONS_NOISE * torch.randn(n, 2, generator=generator, dtype=torch.float64)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == "gaussian":
            return self.p.log_prob(x)
        d2 = torch.cdist(x.double(), self.nodes) ** 2
        log_kernel = -0.5 * d2 / MOONS_NOISE**2 - math.log(2 * math.pi * MOONS_NOISE**2)
        return torch.logsumexp(log_kernel, 1) - math.log(len(self.nodes))


def truth(name: str, seed: int = 0) -> Truth:
    """The clean truth ``name`` (``"gaussian"``: drawn from ``seed``; ``"moons"``: fixed).

    Example:
        >>> t = truth("moons")
        >>> x = t.sample(2000, rng.generator(0))
        >>> bool(torch.isfinite(t.log_prob(x)).all()), t.dim
        (True, 2)
    """
    return Truth(name, seed)


def _with_outliers(
    x: torch.Tensor, r: float, scale: float, generator: torch.Generator
) -> torch.Tensor:
    """``x`` with a fixed fraction ``r`` of its rows replaced by ``x + scale·ε``."""
    n_out = int(round(r * len(x)))
    if n_out == 0:
        return x
    idx = torch.randperm(len(x), generator=generator)[:n_out]
    x = x.clone()
    x[idx] = x[idx] + scale * torch.randn(n_out, x.shape[1], generator=generator, dtype=x.dtype)
    return x


def run_cell(
    config: SongConfig,
    dataset: str,
    n: int,
    r: float,
    klj: float,
    weight_decay: float,
    seed: int,
    progress: bool | None = False,
) -> dict:
    """Train (or load) one flow and measure it: KL*(p‖pθ) ± SE to the clean truth and the AUROC of
    clean test data against fresh outliers."""
    t = truth(dataset, seed)
    flow_config = FlowConfig(n_couplings=config.n_couplings, hidden=list(config.hidden))
    n_val = max(4, n // 5)
    train = replace(config.train, batch_size=min(config.train.batch_size, n), seed=seed)
    g = rng.generator(rng.derived_seed(seed, "song2024", dataset, n, r))
    x = _with_outliers(t.sample(n + n_val, g), r, config.outlier_scale, g).float()
    x_train, x_val = x[:n], x[n:]
    holder: dict = {}

    def build():
        flow = flow_config.build(t.dim)
        holder["flow"] = flow
        return flow

    def decay(batch, log_scales):
        return holder["decay"](batch, log_scales)

    terms = []
    if klj > 0:
        terms.append(klj_term(klj))
    if weight_decay > 0:
        terms.append(decay)
    spec = {
        "study": "song2024",
        "dataset": dataset,
        "data_seed": seed,
        "r": r,
        "outlier_scale": config.outlier_scale,
        "klj": klj,
        "weight_decay": weight_decay,
        "flow": flow_config,
    }

    def fresh_build():
        flow = build()
        if weight_decay > 0:
            holder["decay"] = weight_decay_term(flow, weight_decay)
        return flow

    run = train_or_load(
        spec,
        fresh_build,
        lambda: (x_train, x_val),
        train,
        "cpu",
        loss_terms=terms,
        progress=progress,
        description=f"{dataset} N={n} r={r} γ={klj} wd={weight_decay}",
    )
    flow = run.flow.eval()
    gt = rng.generator(rng.derived_seed(seed, "song2024 test", dataset))
    clean = t.sample(config.n_test, gt)
    outliers = clean + config.outlier_scale * torch.randn(
        clean.shape, generator=gt, dtype=clean.dtype
    )
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FastPathWarning)
        lp_model = flow.log_prob(clean.float()).double()
        lp_out = flow.log_prob(outliers.float()).double().numpy()
    kl = mean_estimate((t.log_prob(clean) - lp_model).numpy())
    return {
        "KL*(p‖pθ)": kl.value,
        "SE": kl.stderr,
        "AUROC clean vs outliers": auroc(lp_model.numpy(), lp_out),
        "epochs": len(run.history.val_nll),
    }


def cells(config: SongConfig) -> list[dict]:
    """The grid: every γ with no weight decay, and every weight decay with γ = 0, for each dataset,
    N, r and seed."""
    settings = [(k, 0.0) for k in config.klj_weights] + [
        (0.0, w) for w in config.weight_decays if w > 0
    ]
    return [
        {"dataset": ds, "N": n, "r": r, "klj_weight": k, "weight_decay": w, "seed": s}
        for ds in DATASETS
        for n in config.deep_n
        for r in config.deep_outlier_fractions
        for k, w in settings
        for s in config.seeds
    ]


def deep_grid(config: SongConfig, progress: bool | None = None) -> pd.DataFrame:
    """Every cell of :func:`cells`, one row each: the cells are the jobs of a sweep
    (:func:`flowcore.sweep.run`) on ``config.scheduler``."""
    jobs = [Job(cell, config) for cell in cells(config)]
    return run(
        jobs, _run_job, progress=progress, description="KLJ grid", scheduler=config.scheduler
    )


def _run_job(job: Job) -> list[dict]:
    cell = job.labels
    return [
        run_cell(
            job.config,
            cell["dataset"],
            cell["N"],
            cell["r"],
            cell["klj_weight"],
            cell["weight_decay"],
            cell["seed"],
        )
    ]


def summarise(grid: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds with a Student-t 95% interval, of the KL and of the AUROC, per setting."""
    by = ["dataset", "N", "r", "klj_weight", "weight_decay"]
    kl = summarise_over_seeds(grid, by, "KL*(p‖pθ)")
    au = summarise_over_seeds(grid, by, "AUROC clean vs outliers").rename(
        columns={"CI low": "AUROC CI low", "CI high": "AUROC CI high"}
    )
    return kl.merge(au, on=by)
