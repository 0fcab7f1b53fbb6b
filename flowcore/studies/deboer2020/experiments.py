r"""The experiments of de Boer (2020) with known truths: Table 2 on :math:`x = u^\psi`, the
half-moons bridge, and an 8×8-digits substitute for Table 4.

Every model is a :func:`flowcore.flows.marginal.marginal_flow` on :math:`[x, \varepsilon]` with
:math:`B` auxiliary dimensions, trained on the joint (fresh :math:`\varepsilon` every step) through
:class:`~flowcore.flows.marginal.JointTrainingView` and :func:`flowcore.runs.train_or_load` (cached,
early stopping on the joint validation NLL), and scored by the importance-sampled marginal
:math:`\log\hat p_S(x)` (Eq. 8) on a fresh test set.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from flowcore import rng
from flowcore.flows.marginal import JointTrainingView, marginal_flow
from flowcore.runs import train_or_load
from flowcore.studies.deboer2020.config import THESIS_TABLE2, DeBoerConfig
from flowcore.studies.deboer2020.truths import (
    PowerGaussian,
    energy_distance,
    ks_per_coordinate,
    moons_mass_outside,
)
from flowcore.sweep import Job, run, summarise_over_seeds
from flowcore.validation import check_positive
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
]


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
):
    """Train (or load) the marginalizing flow with ``aux`` auxiliary dimensions on ``x_train``."""
    dim = x_train.shape[1]
    architecture = {
        "dim": dim,
        "aux": aux,
        "n_blocks": config.n_blocks,
        "hidden": list(config.hidden),
        "seed": seed,
    }
    train = replace(
        config.train,
        batch_size=batch_size or config.train.batch_size,
        max_epochs=max_epochs or config.train.max_epochs,
        seed=seed,
    )

    def build():
        return JointTrainingView(
            marginal_flow(
                dim, aux, n_blocks=config.n_blocks, hidden=tuple(config.hidden), seed=seed
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
    cells = [{"B": b, "seed": s} for b in config.digits_aux for s in config.seeds]
    return run(
        [Job(cell, config) for cell in cells],
        _digits_cell,
        progress=progress,
        description="digits",
        scheduler=config.scheduler,
    )


def _digits_cell(job: Job) -> list[dict]:
    from sklearn.datasets import load_digits

    config, b, seed = job.config, job.labels["B"], job.labels["seed"]
    images = load_digits().data.astype(np.float64)
    gen = np.random.default_rng(rng.derived_seed(0, "deboer digits"))
    x = (images + gen.uniform(size=images.shape)) / 17.0
    order = gen.permutation(len(x))
    mean, std = x[order[:1200]].mean(0), x[order[:1200]].std(0) + 1e-2
    z = torch.from_numpy((x - mean) / std)
    x_train, x_val, x_test = z[order[:1200]], z[order[1200:1437]], z[order[1437:]]
    try:
        model, _ = train_model(
            config,
            "digits",
            x_train,
            x_val,
            b,
            seed,
            batch_size=128,
            max_epochs=config.digits_epochs,
            progress=False,
        )
        ll, _ = marginal_scores(
            model,
            x_test,
            max(10, config.n_samples // 2),
            rng.derived_seed(seed, "deboer digits test", b),
        )
        if not np.isfinite(ll).all():
            raise FloatingPointError(
                f"log p̂ not finite on {int((~np.isfinite(ll)).sum())} test images"
            )
    except FloatingPointError as error:
        return [
            {
                "D": z.shape[1],
                "mean log p̂": np.nan,
                "SE": np.nan,
                "failure": str(error).split(";")[0],
            }
        ]
    return [{"D": z.shape[1], **_scores(ll), "failure": ""}]
