r"""The experiments of de Boer (2020): with known truths, Table 2 on :math:`x = u^\psi` and the
half-moons bridge; on images, Table 4 on MNIST and an 8×8-digits substitute for it.

Every model is a :func:`flowcore.flows.marginal.marginal_flow` on :math:`[x, \varepsilon]` with
:math:`B` auxiliary dimensions, trained on the joint (fresh :math:`\varepsilon` every step) through
:class:`~flowcore.flows.marginal.JointTrainingView` and :func:`flowcore.runs.train_or_load` (cached,
early stopping on the joint validation NLL), and scored by the importance-sampled marginal
:math:`\log\hat p_S(x)` (Eq. 8) on a fresh test set. The image experiments share one code path
(:func:`image_run`): pixels :math:`v \in \{0, …, L-1\}` dequantised, :math:`x = (v + u)/L`,
:math:`u \sim U[0, 1)`, and standardised with the training images' statistics
(:func:`standardise`); :func:`bits_per_dim` turns their log-likelihoods into bits per pixel.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from flowcore import rng
from flowcore.flows.marginal import JointTrainingView, marginal_flow
from flowcore.runs import train_or_load
from flowcore.studies.deboer2020.config import MNIST_IMAGES, MNIST_SIDE, THESIS_TABLE2, DeBoerConfig
from flowcore.studies.deboer2020.truths import (
    PowerGaussian,
    energy_distance,
    ks_per_coordinate,
    moons_mass_outside,
)
from flowcore.sweep import Job, run, summarise_over_seeds
from flowcore.validation import check_int, check_positive
from flowcore.verdicts import family_z_threshold

__all__ = [
    "train_model",
    "marginal_scores",
    "table2",
    "above_truth",
    "closed_form_misses",
    "table2_summary",
    "moons",
    "digits_table",
    "ImageSplits",
    "standardise",
    "image_run",
    "bits_per_dim",
    "mnist_data",
    "mnist_table",
    "IMAGE_BATCH_SIZE",
    "STANDARDISE_FLOOR",
]

#: The minibatch of every image run (the thesis: 32 on MNIST).
IMAGE_BATCH_SIZE = 128
#: Added to each pixel's standard deviation before dividing by it (a pixel that is constant before
#: dequantisation keeps a finite scale).
STANDARDISE_FLOOR = 1e-2


def train_model(
    config: DeBoerConfig,
    name: str,
    x_train: torch.Tensor,
    x_val: torch.Tensor,
    aux: int,
    seed: int,
    batch_size: int | None = None,
    max_epochs: int | None = None,
    progress: bool | None = None,
    log_scale: str = "exp",
):
    """Train (or load) the marginalizing flow with ``aux`` auxiliary dimensions on ``x_train``
    (``log_scale``: the couplings' log-scale map, ``"exp"`` the thesis's unbounded one or
    ``"tanh"`` bounded by 3; ``batch_size``, ``max_epochs``: in place of ``config.train``'s)."""
    dim = x_train.shape[1]
    architecture = {
        "dim": dim,
        "aux": aux,
        "n_blocks": config.n_blocks,
        "hidden": list(config.hidden),
        "seed": seed,
    }
    if log_scale != "exp":  # the thesis's map keeps the keys its flows were cached under
        architecture["log_scale"] = log_scale
    train = replace(
        config.train,
        batch_size=batch_size or config.train.batch_size,
        max_epochs=max_epochs or config.train.max_epochs,
        seed=seed,
    )

    def build():
        return JointTrainingView(
            marginal_flow(
                dim,
                aux,
                n_blocks=config.n_blocks,
                hidden=tuple(config.hidden),
                seed=seed,
                log_scale=log_scale,
            ),
            seed=seed,
        )

    run = train_or_load(
        {"study": "deboer2020", "data": name, "architecture": architecture},
        build,
        lambda: (x_train.float(), x_val.float()),
        train,
        "cpu",
        progress=progress,
        description=f"{name} B={aux} seed {seed}",
    )
    return run.flow.model.eval(), run.history


def marginal_scores(
    model,
    x: torch.Tensor,
    n_samples: int,
    seed: int,
    chunk: int = 512,
    dtype: torch.dtype = torch.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``x``: the importance-sampled log p̂_S(x) and its Monte-Carlo standard error
    (``dtype``: the precision of the evaluation; pass a model of that dtype)."""
    g = rng.generator(seed)
    values, errors = [], []
    with torch.no_grad():
        for block in x.to(dtype).split(chunk):
            v, e = model.log_prob_marginal(block, n_samples=n_samples, generator=g)
            values.append(v.double().numpy())
            errors.append(e.double().numpy())
    return np.concatenate(values), np.concatenate(errors)


def table2(
    config: DeBoerConfig, n_quality: int = 2000, progress: bool | None = None
) -> pd.DataFrame:
    """One row per (ψ, D, B, seed): the mean log p̂_S on a fresh test set ± SE, the joint validation
    NLL used to pick the best seed, the truth's mean log p on the same test points and the mean of
    the per-point gap log p̂_S − log p ± SE (:func:`above_truth`), and the quality of ``n_quality``
    samples: the largest per-coordinate KS statistic, and the energy distance to a sample of the
    truth after the truth's CDF per coordinate (``energy distance (CDF scale)``: every coordinate
    mapped to [0, 1], so that a few far samples of a heavy-tailed model cannot swamp it; the map is
    one-to-one on the support, so the distance is 0 only for the truth's law). The cells are the
    jobs of a sweep (:func:`flowcore.sweep.run`) on ``config.scheduler``."""
    cells = [
        {"ψ": psi, "D": d, "B": b, "seed": s}
        for psi in config.psis
        for d in config.dims
        for b in config.aux
        for s in config.seeds
    ]
    return run(
        [Job(cell, (config, n_quality)) for cell in cells],
        _table2_cell,
        progress=progress,
        description="Table 2",
        scheduler=config.scheduler,
    )


def _scores(ll: np.ndarray, truth_log_p: np.ndarray | None = None) -> dict:
    """The mean of ``ll`` ± SE and, with the truth's log p on the same points, the truth's mean ± SE
    and the mean gap ``ll − log p`` ± SE."""
    row = {"mean log p̂": float(ll.mean()), "SE": float(ll.std(ddof=1) / np.sqrt(len(ll)))}
    if truth_log_p is not None:
        gap = ll - truth_log_p
        row.update(
            {
                "truth mean log p": float(truth_log_p.mean()),
                "truth SE": float(truth_log_p.std(ddof=1) / np.sqrt(len(truth_log_p))),
                "gap to truth": float(gap.mean()),
                "gap SE": float(gap.std(ddof=1) / np.sqrt(len(gap))),
            }
        )
    return row


def _table2_cell(job: Job) -> list[dict]:
    config, n_quality = job.config
    psi, d, b, seed = job.labels["ψ"], job.labels["D"], job.labels["B"], job.labels["seed"]
    truth = PowerGaussian(d, psi)
    g = rng.generator(rng.derived_seed(0, "deboer data", psi, d))
    x = truth.sample(config.n_train + config.n_val + config.n_test, g)
    x_train, x_val, x_test = (
        x[: config.n_train],
        x[config.n_train : config.n_train + config.n_val],
        x[config.n_train + config.n_val :],
    )
    empty = {
        "mean log p̂": np.nan,
        "SE": np.nan,
        "validation log p̂": np.nan,
        "truth mean log p": np.nan,
        "truth SE": np.nan,
        "gap to truth": np.nan,
        "gap SE": np.nan,
        "max KS": np.nan,
        "energy distance (CDF scale)": np.nan,
        "epochs": 0,
    }
    try:
        model, history = train_model(
            config, f"u^{psi}, D={d}", x_train, x_val, b, seed, progress=False
        )
        ll, _ = marginal_scores(
            model, x_test, config.n_samples, rng.derived_seed(seed, "deboer test", psi, d, b)
        )
        ll_val, _ = marginal_scores(
            model, x_val, config.n_samples, rng.derived_seed(seed, "deboer val", psi, d, b)
        )
        if not (np.isfinite(ll).all() and np.isfinite(ll_val).all()):
            raise FloatingPointError(
                f"log p̂ not finite on {int((~np.isfinite(ll)).sum())} test points"
            )
    except (
        FloatingPointError
    ) as error:  # the thesis's unbounded log-scale can diverge on heavy tails
        return [{**empty, "failure": str(error).split(";")[0]}]
    reference = truth.sample(
        n_quality, rng.generator(rng.derived_seed(1, "deboer reference", psi, d))
    )
    with torch.no_grad():
        s = model.sample(
            n_quality, rng.generator(rng.derived_seed(seed, "deboer samples", psi, d, b))
        ).double()
    s = s[torch.isfinite(s).all(1)].numpy()
    quality = {"max KS": np.nan, "energy distance (CDF scale)": np.nan}
    if len(s) >= 2:
        quality = {
            "max KS": float(np.max(ks_per_coordinate(s, truth))),
            "energy distance (CDF scale)": energy_distance(
                truth.cdf_1d(s), truth.cdf_1d(reference)
            ),
        }
    row = {
        **_scores(ll, _as_array(truth.log_prob(x_test))),
        "validation log p̂": float(ll_val.mean()),
        **quality,
        "epochs": len(history.val_nll),
        "failure": "",
    }
    return [{**empty, **row}]


def above_truth(table: pd.DataFrame, z: float | None = None) -> pd.DataFrame:
    r"""The rows of ``table`` (:func:`table2` or :func:`moons`) whose mean gap to the truth on the
    test set, :math:`\overline{\log\hat p_S - \log p}`, exceeds ``z`` standard errors. No model can
    do that but by chance: :math:`\mathbb E_p[\log q - \log p] = -\mathrm{KL}(p\,\|\,q) \le 0` for
    any normalised :math:`q` on fresh data (Gibbs), and :math:`\mathbb E\log\hat p_S \le \log q`
    (Jensen). ``z`` defaults to :func:`~flowcore.verdicts.family_z_threshold` of the number of
    scored rows (a family-wise 0.27% chance of a false alarm).

    Example:
        >>> t = pd.DataFrame({"gap to truth": [-0.3, 0.01, 0.5], "gap SE": [0.02, 0.02, 0.02]})
        >>> above_truth(t).index.tolist()
        [2]
    """
    missing = sorted({"gap to truth", "gap SE"} - set(table.columns))
    if missing:
        raise ValueError(f"table lacks the columns {missing}")
    scored = table.dropna(subset=["gap to truth", "gap SE"])
    z = family_z_threshold(len(scored)) if z is None else check_positive("z", z)
    return scored[scored["gap to truth"] > z * scored["gap SE"]]


def closed_form_misses(runs: pd.DataFrame, z: float | None = None) -> pd.DataFrame:
    """Per (ψ, D) of :func:`table2`'s ``runs``: the truth's mean log p on the test points against
    its closed-form
    :meth:`~flowcore.studies.deboer2020.truths.PowerGaussian.expected_log_likelihood` (``z`` =
    their difference in standard errors of the test-set mean); the rows where ``|z|`` exceeds the
    threshold (default :func:`~flowcore.verdicts.family_z_threshold` of the number of cells). Empty
    unless the closed form, the sampler or the density is wrong, or by a 0.27% chance.

    Example:
        >>> t = pd.DataFrame(
        ...     {"ψ": [1, 2], "D": [2, 2], "truth mean log p": [-2.84, -1.0],
        ...      "truth SE": [0.02, 0.02]}
        ... )
        >>> closed_form_misses(t)[["ψ", "D"]].values.tolist()  # E log p = −2.838 and −1.568
        [[2, 2]]
    """
    missing = sorted({"ψ", "D", "truth mean log p", "truth SE"} - set(runs.columns))
    if missing:
        raise ValueError(f"runs lacks the columns {missing}")
    cells = (
        runs.dropna(subset=["truth mean log p", "truth SE"])
        .groupby(["ψ", "D"], as_index=False)[["truth mean log p", "truth SE"]]
        .first()
    )
    cells["E log p"] = [
        PowerGaussian(int(d), int(psi)).expected_log_likelihood()
        for psi, d in zip(cells["ψ"], cells["D"])
    ]
    cells["z"] = (cells["truth mean log p"] - cells["E log p"]) / cells["truth SE"]
    z = family_z_threshold(len(cells)) if z is None else check_positive("z", z)
    return cells[cells["z"].abs() > z]


def table2_summary(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per (ψ, D, B): the mean over the seeds that trained (``runs``: trained / all; a run whose
    loss diverged is left out) of the test log p̂ with its Student-t interval over seeds
    (``CI low``, ``CI high``: training's variation), the test SE (the mean of the runs' standard
    errors: the sampling error of the one test set the seeds share), the best seed's value ± SE
    (chosen on the validation set), the thesis's number and the truth's E log p.

    Example:
        >>> runs = pd.DataFrame(
        ...     {"ψ": 1, "D": 2, "B": 0, "seed": [0, 1, 2], "mean log p̂": [-2.9, -2.8, -2.85],
        ...      "SE": 0.03, "validation log p̂": [-2.8, -2.9, -2.85], "failure": ""}
        ... )
        >>> columns = ["runs", "mean over seeds", "CI low", "test SE", "best of seeds"]
        >>> table2_summary(runs)[columns].round(3).values.tolist()
        [['3/3', -2.85, -2.974, 0.03, -2.9]]
    """
    trained = runs[runs["failure"] == ""]
    interval = (
        summarise_over_seeds(trained, ["ψ", "D", "B"], "mean log p̂", confidence)
        if len(trained)
        else pd.DataFrame(columns=["ψ", "D", "B", "mean log p̂", "CI low", "CI high"])
    )
    interval = {(r["ψ"], r["D"], r["B"]): r for r in interval.to_dict("records")}
    rows = []
    for (psi, d, b), g_all in runs.groupby(["ψ", "D", "B"]):
        g = g_all[g_all["failure"] == ""]
        thesis = THESIS_TABLE2.get((psi, d))
        best = (
            pd.Series({"mean log p̂": np.nan, "SE": np.nan})
            if g.empty
            else g.loc[g["validation log p̂"].idxmax()]
        )
        ci = interval.get((psi, d, b), {})
        rows.append(
            {
                "ψ": psi,
                "D": d,
                "B": b,
                "runs": f"{len(g)}/{len(g_all)}",
                "mean over seeds": ci.get("mean log p̂", np.nan),
                "CI low": ci.get("CI low", np.nan),
                "CI high": ci.get("CI high", np.nan),
                "test SE": float(g["SE"].mean()) if len(g) else np.nan,
                "best of seeds": best["mean log p̂"],
                "best SE": best["SE"],
                "thesis": thesis[b] if thesis is not None and b < len(thesis) else np.nan,
                "truth E log p": PowerGaussian(d, psi).expected_log_likelihood(),
            }
        )
    return pd.DataFrame(rows)


def _moons_data(config: DeBoerConfig):
    from flowcore.studies.song2024.deep import truth as song_truth

    t = song_truth("moons")
    x = t.sample(
        config.n_train + config.n_val + config.n_test,
        rng.generator(rng.derived_seed(0, "deboer moons")),
    )
    return (
        t,
        x[: config.n_train],
        x[config.n_train : config.n_train + config.n_val],
        x[config.n_train + config.n_val :],
    )


def moons(
    config: DeBoerConfig,
    threshold: float = float(np.log(1e-3)),
    extent=(-2.0, 3.0, -1.5, 2.0),
    progress: bool | None = None,
) -> pd.DataFrame:
    """Half-moons (noise 0.1, the song2024 study's truth): per B and seed, the test log p̂ against
    the truth's on the same points (mean gap ± SE, :func:`above_truth`), and the model's mass where
    the true density is below e^threshold (the "bridge": on the grid cells where the model's
    log-density is resolved, and ``at most`` counting what the unresolved cells and the outside of
    the grid may hold, :class:`~flowcore.studies.deboer2020.truths.GridMass`), on the whole grid,
    and the number of unresolved cells. A run that diverged has NaN scores and its error under
    ``failure``. The (B, seed) runs are the jobs of a sweep on ``config.scheduler``."""
    cells = [{"B": b, "seed": s} for b in config.moons_aux for s in config.seeds]
    return run(
        [Job(cell, (config, float(threshold), tuple(extent))) for cell in cells],
        _moons_cell,
        progress=progress,
        description="half-moons",
        scheduler=config.scheduler,
    )


def _moons_cell(job: Job) -> list[dict]:
    (config, threshold, extent), b, seed = job.config, job.labels["B"], job.labels["seed"]
    t, x_train, x_val, x_test = _moons_data(config)
    empty = {
        "mean log p̂": np.nan,
        "SE": np.nan,
        "truth mean log p": np.nan,
        "truth SE": np.nan,
        "gap to truth": np.nan,
        "gap SE": np.nan,
        "mass where p < 1e-3": np.nan,
        "at most": np.nan,
        "mass on the grid": np.nan,
        "unresolved cells": np.nan,
    }
    try:
        model, _ = train_model(
            config,
            "moons",
            x_train,
            x_val,
            b,
            seed,
            batch_size=config.moons_batch_size,
            progress=False,
        )
        ll, _ = marginal_scores(
            model, x_test, config.n_samples, rng.derived_seed(seed, "deboer moons test", b)
        )
        if not np.isfinite(ll).all():
            raise FloatingPointError(
                f"log p̂ not finite on {int((~np.isfinite(ll)).sum())} test points"
            )
    except FloatingPointError as error:
        return [{**empty, "failure": str(error).split(";")[0]}]
    row = {**empty, **_scores(ll, _as_array(t.log_prob(x_test))), "failure": ""}
    n_is = max(8, config.n_samples // 4)
    wide = copy.deepcopy(model).double()  # an unbounded scale map overflows float32 off the data

    def log_density(pts: torch.Tensor) -> torch.Tensor:
        v, _ = marginal_scores(
            wide,
            pts,
            n_is,
            rng.derived_seed(seed, "deboer moons grid", b),
            chunk=2048,
            dtype=torch.float64,
        )
        return torch.from_numpy(v)

    mass = moons_mass_outside(log_density, threshold, extent, n_grid=80)
    if np.isfinite(mass.outside) and np.isfinite(mass.total):
        row.update(
            {
                "mass where p < 1e-3": mass.outside,
                "at most": mass.most_outside,
                "mass on the grid": mass.total,
                "unresolved cells": mass.unresolved,
            }
        )
    return [row]


def _as_array(x) -> np.ndarray:
    return (
        x.detach().double().cpu().numpy()
        if isinstance(x, torch.Tensor)
        else np.asarray(x, dtype=np.float64)
    )


def digits_table(config: DeBoerConfig, progress: bool | None = None) -> pd.DataFrame:
    """The 8×8-digits substitute for Table 4: the marginalizing flow on dequantised, standardised
    pixels (all ten classes, 80/20 split), per B and seed: the test mean log p̂ ± SE (nats per
    image, of the standardised data; ``D`` the 64 pixels). A run that diverged or whose log p̂ is
    not finite on a test image has NaN scores and its error under ``failure``. The (B, seed) runs
    are the jobs of a sweep on ``config.scheduler``."""
    return _per_b_and_seed(config, config.digits_aux, _digits_cell, "digits", progress)


def _per_b_and_seed(
    config: DeBoerConfig,
    aux: Sequence[int],
    cell: Callable[[Job], list[dict]],
    description: str,
    progress: bool | None,
) -> pd.DataFrame:
    """One job per (B in ``aux``, seed of ``config.seeds``), run by ``cell`` as a sweep on
    ``config.scheduler``."""
    cells = [{"B": b, "seed": s} for b in aux for s in config.seeds]
    return run(
        [Job(c, config) for c in cells],
        cell,
        progress=progress,
        description=description,
        scheduler=config.scheduler,
    )


class ImageSplits(NamedTuple):
    r"""Images as rows of standardised values (float64 tensors ``(n, D)``) and the log|det| of the
    map from the dequantised values :math:`x \in [0, 1)^D` to them (nats per image)."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    log_det: float


def standardise(x: np.ndarray, rows) -> tuple[np.ndarray, float]:
    r"""Standardise every column of ``x`` (``(n, D)``) with the mean and standard deviation of
    ``rows`` (the training images), :math:`z = (x - \mu)/(\sigma + c)`, :math:`c` =
    :data:`STANDARDISE_FLOOR`.

    Returns:
        ``z`` and :math:`\log|\det \partial z/\partial x| = -\sum_d \log(\sigma_d + c)`, the term
        that turns a log-density of ``z`` into one of ``x``: :math:`\log p_x = \log p_z +` it.

    Example:
        >>> x = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
        >>> z, log_det = standardise(x, [0, 1])
        >>> z[:, 0].round(3).tolist(), bool(np.isclose(log_det, -np.log(1.01 * 0.01)))
        ([-0.99, 0.99, 2.97], True)
    """
    mean, std = x[rows].mean(0), x[rows].std(0) + STANDARDISE_FLOOR
    return (x - mean) / std, float(-np.log(std).sum())


def image_run(
    config: DeBoerConfig,
    name: str,
    splits: ImageSplits,
    aux: int,
    seed: int,
    epochs: int,
    log_scale: str = "exp",
) -> dict:
    r"""Train (or load) the marginalizing flow with ``aux`` auxiliary dimensions on
    ``splits.train`` (early stopping on ``splits.val``, :data:`IMAGE_BATCH_SIZE`, at most
    ``epochs``, the couplings' ``log_scale`` map as in :func:`train_model`; cached under ``name``,
    which must name the data) and score it on ``splits.test``
    with :math:`S = \max(10, n_\text{samples}/2)` importance samples: the mean log p̂ ± SE (nats per
    image of the standardised data) and ``D``. A run that diverged or whose log p̂ is not finite on
    a test image has NaN scores and its error under ``failure`` (else ``""``). The image
    experiments' one code path (:func:`digits_table`, :func:`mnist_table`).

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> g = np.random.default_rng(0)
        >>> z, log_det = standardise(g.normal(size=(60, 4)), np.arange(40))
        >>> t = torch.from_numpy(z)
        >>> splits = ImageSplits(t[:40], t[40:50], t[50:], log_det)
        >>> config = DeBoerConfig(n_blocks=1, hidden=(4,), n_samples=4)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": folder}):
        ...         row = image_run(config, "doctest normals", splits, 2, 0, epochs=1)
        >>> row["D"], row["failure"], bool(np.isfinite(row["mean log p̂"]))
        (4, '', True)
    """
    d = splits.train.shape[1]
    try:
        model, _ = train_model(
            config,
            name,
            splits.train,
            splits.val,
            aux,
            seed,
            batch_size=IMAGE_BATCH_SIZE,
            max_epochs=epochs,
            progress=False,
            log_scale=log_scale,
        )
        ll, _ = marginal_scores(
            model,
            splits.test,
            max(10, config.n_samples // 2),
            rng.derived_seed(seed, f"deboer {name} test", aux),
        )
        if not np.isfinite(ll).all():
            raise FloatingPointError(
                f"log p̂ not finite on {int((~np.isfinite(ll)).sum())} test images"
            )
    except FloatingPointError as error:
        return {
            "D": d,
            "mean log p̂": np.nan,
            "SE": np.nan,
            "failure": str(error).split(";")[0],
        }
    return {"D": d, **_scores(ll), "failure": ""}


def _digits_cell(job: Job) -> list[dict]:
    from sklearn.datasets import load_digits

    config, b, seed = job.config, job.labels["B"], job.labels["seed"]
    images = load_digits().data.astype(np.float64)
    gen = np.random.default_rng(rng.derived_seed(0, "deboer digits"))
    x = (images + gen.uniform(size=images.shape)) / 17.0
    order = gen.permutation(len(x))
    z, log_det = standardise(x, order[:1200])
    z = torch.from_numpy(z)
    splits = ImageSplits(z[order[:1200]], z[order[1200:1437]], z[order[1437:]], log_det)
    return [image_run(config, "digits", splits, b, seed, config.digits_epochs)]


def bits_per_dim(log_likelihood, log_det: float, dim: int, levels: int = 256):
    r"""Bits per dimension of the discrete pixels :math:`v \in \{0, …, L-1\}^D` (:math:`L` =
    ``levels``) from the log-density :math:`\ell` (nats) of their standardised dequantisation
    :math:`z = (x - \mu)/\sigma'`, :math:`x = (v + u)/L`.

    Two changes of variables lead back to the pixels: :math:`\log p_x(x) = \ell +` ``log_det``
    (``log_det`` :math:`= \log|\det\partial z/\partial x| = -\sum_d\log\sigma'_d`, from
    :func:`standardise`), and the density of :math:`y = v + u = Lx` is
    :math:`p_x(x)\,L^{-D}` (the log|det| of the scaling by :math:`1/L` is :math:`-D\log L`). The
    dequantised density bounds the pixels' probability, :math:`\log P(v) \ge \mathbb
    E_u\log p_y(v + u)`, so

    .. math::
        \text{bits/dim} = \frac{D\log L - \ell - \log|\det\partial z/\partial x|}{D\log 2}

    is an upper bound on the pixels' code length (fewer is better; 8 for a uniform density on
    8-bit pixels). Linear in :math:`\ell`: a standard error of :math:`\ell` becomes one in bits/dim
    through ``se / (dim * log 2)``. NaN stays NaN.

    Returns:
        A float for a scalar ``log_likelihood``, else a float64 array of its shape.

    Example:
        >>> # the uniform density on [0, 1)^D, standardised by σ' = 0.5: ℓ = D log 0.5, log_det = −ℓ
        >>> bits_per_dim(196 * math.log(0.5), -196 * math.log(0.5), 196)
        8.0
        >>> bits_per_dim(np.array([0.0, 784 * math.log(2)]), 0.0, 784).tolist()
        [8.0, 7.0]
    """
    dim = check_int("dim", dim, minimum=1)
    levels = check_int("levels", levels, minimum=2)
    nats = np.asarray(log_likelihood, dtype=np.float64)
    bpd = (dim * math.log(levels) - nats - float(log_det)) / (dim * math.log(2))
    return float(bpd) if bpd.ndim == 0 else bpd


def _mnist_name(config: DeBoerConfig) -> str:
    """The training data's name in the flows' cache keys (the test images do not enter)."""
    s = config.mnist_size
    return f"mnist {s}x{s}, {config.mnist_val} val + {config.mnist_train} train"


def mnist_data(config: DeBoerConfig) -> ImageSplits:
    r"""MNIST as the marginalizing flows see it: ``config.mnist_val`` validation then
    ``config.mnist_train`` training images drawn (seeded, disjoint) from the 60,000 training
    images, ``config.mnist_test`` from the 10,000 test images, averaged over blocks to
    ``mnist_size`` × ``mnist_size`` (:func:`flowcore.datasets.downsample`, back to 256 levels),
    dequantised, :math:`x = (v + u)/256` with :math:`u \sim U[0, 1)` drawn once per pixel, and
    standardised with the training images' statistics (:func:`standardise`). The same for every
    B and seed.

    Example:
        >>> config = DeBoerConfig(mnist_size=7, mnist_train=300, mnist_val=100, mnist_test=200)
        >>> splits = mnist_data(config)
        >>> [tuple(t.shape) for t in splits[:3]], round(splits.log_det, 1)
        ([(300, 49), (100, 49), (200, 49)], 121.6)
    """
    from flowcore import datasets

    factor = MNIST_SIDE // config.mnist_size
    gen = np.random.default_rng(rng.derived_seed(0, "deboer mnist"))
    train_order = gen.permutation(MNIST_IMAGES["train"])[: config.mnist_val + config.mnist_train]
    test_order = gen.permutation(MNIST_IMAGES["test"])[: config.mnist_test]
    parts = []
    for split, order in (("train", train_order), ("test", test_order)):
        v = datasets.downsample(datasets.load("mnist", split)[0][order], factor)
        v = v.reshape(len(v), -1).astype(np.float64)
        parts.append((v + gen.uniform(size=v.shape)) / datasets.LEVELS)
    x = np.concatenate(parts)
    n_val, n_fit = config.mnist_val, config.mnist_val + config.mnist_train
    z, log_det = standardise(x, np.arange(n_val, n_fit))
    z = torch.from_numpy(z)
    return ImageSplits(z[n_val:n_fit], z[:n_val], z[n_fit:], log_det)


def mnist_table(config: DeBoerConfig, progress: bool | None = None) -> pd.DataFrame:
    r"""Table 4 on MNIST (:func:`mnist_data`): per B in ``config.mnist_aux`` and seed, the test mean
    log p̂ ± SE (nats per image of the standardised data, ``D`` = ``mnist_size``² pixels; the same
    code as :func:`digits_table`, :func:`image_run`), the log|det| of the standardisation
    (``standardisation log-det``, nats per image, the same in every row) and the mean ± SE in
    ``bits/dim`` of the 8-bit pixels (:func:`bits_per_dim`). A run that diverged or whose log p̂ is
    not finite on a test image has NaN scores and its error under ``failure``. The (B, seed) runs
    are the jobs of a sweep on ``config.scheduler``.

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> config = DeBoerConfig(
        ...     mnist_aux=(0,), seeds=(0,), mnist_size=7, mnist_train=40, mnist_val=10,
        ...     mnist_test=10, mnist_epochs=1, n_blocks=1, hidden=(4,), n_samples=4,
        ...     scheduler="serial",
        ... )
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": folder}):
        ...         table = mnist_table(config, progress=False)
        >>> table[["B", "seed", "D", "failure"]].values.tolist()
        [[0, 0, 49, '']]
        >>> bool(np.isfinite(table[["mean log p̂", "bits/dim"]]).all(axis=None))
        True
    """
    return _per_b_and_seed(config, config.mnist_aux, _mnist_cell, "MNIST", progress)


def _mnist_cell(job: Job) -> list[dict]:
    config, b, seed = job.config, job.labels["B"], job.labels["seed"]
    splits = mnist_data(config)
    row = image_run(
        config, _mnist_name(config), splits, b, seed, config.mnist_epochs, config.mnist_log_scale
    )
    d = row["D"]
    return [
        {
            **row,
            "standardisation log-det": splits.log_det,
            "bits/dim": bits_per_dim(row["mean log p̂"], splits.log_det, d),
            "bits/dim SE": row["SE"] / (d * math.log(2)),
        }
    ]
