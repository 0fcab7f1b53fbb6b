r"""The experiments of de Boer (2020) with known truths: Table 2 on :math:`x = u^\psi`, the half-moons
bridge, and an 8×8-digits substitute for Table 4.

Every model is a :func:`flowcore.flows.marginal.marginal_flow` on :math:`[x, \varepsilon]` with
:math:`B` auxiliary dimensions, trained on the joint (fresh :math:`\varepsilon` every step) through
:class:`~flowcore.flows.marginal.JointTrainingView` and :func:`flowcore.runs.train_or_load` (cached,
early stopping on the joint validation NLL), and scored by the importance-sampled marginal
:math:`\log\hat p_S(x)` (Eq. 8) on a fresh test set.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch

from flowcore import rng
from flowcore.flows.marginal import JointTrainingView, marginal_flow
from flowcore.runs import train_or_load
from flowcore.studies.deboer2020.config import THESIS_TABLE2, DeBoerConfig
from flowcore.studies.deboer2020.truths import PowerGaussian, energy_distance, ks_per_coordinate, moons_mass_outside
from flowcore.sweep import Job, run
from flowcore.train import TrainConfig

__all__ = ["train_model", "marginal_scores", "table2", "table2_summary", "samples_quality", "moons", "digits_table"]


def train_model(config: DeBoerConfig, name: str, x_train: torch.Tensor, x_val: torch.Tensor, aux: int, seed: int, batch_size: int | None = None, max_epochs: int | None = None, progress: bool | None = None):
    """Train (or load) the marginalizing flow with ``aux`` auxiliary dimensions on ``x_train``."""
    dim = x_train.shape[1]
    architecture = {"dim": dim, "aux": aux, "n_blocks": config.n_blocks, "hidden": list(config.hidden), "seed": seed}
    train = TrainConfig(n_train=len(x_train), n_val=len(x_val), batch_size=batch_size or config.batch_size, lr=config.lr, max_epochs=max_epochs or config.max_epochs, patience=config.patience, seed=seed)

    def build():
        return JointTrainingView(marginal_flow(dim, aux, n_blocks=config.n_blocks, hidden=tuple(config.hidden), seed=seed), seed=seed)

    run = train_or_load({"study": "deboer2020", "data": name, "architecture": architecture}, build, lambda: (x_train.float(), x_val.float()), train, "cpu", progress=progress, description=f"{name} B={aux} seed {seed}")
    return run.flow.model.eval(), run.history


def marginal_scores(model, x: torch.Tensor, n_samples: int, seed: int, chunk: int = 512, dtype: torch.dtype = torch.float32) -> tuple[np.ndarray, np.ndarray]:
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


def table2(config: DeBoerConfig, progress: bool | None = None) -> pd.DataFrame:
    """One row per (ψ, D, B, seed): the mean log p̂_S on a fresh test set ± SE, and the joint validation
    NLL used to pick the best seed. The cells are the jobs of a sweep (:func:`flowcore.sweep.run`)
    on ``config.scheduler``."""
    cells = [{"ψ": psi, "D": d, "B": b, "seed": s} for psi in config.psis for d in config.dims for b in config.aux for s in config.seeds]
    return run([Job(cell, config) for cell in cells], _table2_cell, progress=progress, description="Table 2", scheduler=config.scheduler)


def _table2_cell(job: Job) -> list[dict]:
    config, psi, d, b, seed = job.config, job.labels["ψ"], job.labels["D"], job.labels["B"], job.labels["seed"]
    truth = PowerGaussian(d, psi)
    g = rng.generator(rng.derived_seed(0, "deboer data", psi, d))
    x = truth.sample(config.n_train + config.n_val + config.n_test, g)
    x_train, x_val, x_test = x[: config.n_train], x[config.n_train : config.n_train + config.n_val], x[config.n_train + config.n_val :]
    try:
        model, history = train_model(config, f"u^{psi}, D={d}", x_train, x_val, b, seed, progress=False)
        ll, _ = marginal_scores(model, x_test, config.n_samples, rng.derived_seed(seed, "deboer test", psi, d, b))
        ll_val, _ = marginal_scores(model, x_val, config.n_samples, rng.derived_seed(seed, "deboer val", psi, d, b))
        if not (np.isfinite(ll).all() and np.isfinite(ll_val).all()):
            raise FloatingPointError(f"log p̂ not finite on {int((~np.isfinite(ll)).sum())} test points")
        return [{"mean log p̂": float(ll.mean()), "SE": float(ll.std(ddof=1) / np.sqrt(len(ll))), "validation log p̂": float(ll_val.mean()), "epochs": len(history.val_nll), "failure": ""}]
    except FloatingPointError as error:  # the thesis's unbounded log-scale can diverge on heavy tails
        return [{"mean log p̂": np.nan, "SE": np.nan, "validation log p̂": np.nan, "epochs": 0, "failure": str(error).split(";")[0]}]


def table2_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (ψ, D, B): the mean over the seeds that trained (``runs``: trained / all; a run whose loss
    diverged is left out) of the test log p̂ ± SE (of that mean), the best seed's (chosen on the
    validation set), the thesis's number and the truth's E log p."""
    rows = []
    for (psi, d, b), g_all in runs.groupby(["ψ", "D", "B"]):
        g = g_all[g_all["failure"] == ""]
        thesis = THESIS_TABLE2.get((psi, d))
        if g.empty:
            best = pd.Series({"mean log p̂": np.nan, "SE": np.nan})
        else:
            best = g.loc[g["validation log p̂"].idxmax()]
        rows.append({
            "ψ": psi, "D": d, "B": b, "runs": f"{len(g)}/{len(g_all)}",
            "mean over seeds": g["mean log p̂"].mean() if len(g) else np.nan,
            "SE": float(np.sqrt((g["SE"] ** 2).sum()) / len(g)) if len(g) else np.nan,
            "best of seeds": best["mean log p̂"], "best SE": best["SE"],
            "thesis": thesis[b] if thesis is not None and b < len(thesis) else np.nan,
            "truth E log p": PowerGaussian(d, psi).expected_log_likelihood(),
        })
    return pd.DataFrame(rows)


def samples_quality(config: DeBoerConfig, n: int = 2000, progress: bool | None = None) -> pd.DataFrame:
    """Per (ψ, D, B), first seed: the largest per-coordinate KS statistic and the energy distance of
    the model's samples against the truth's."""
    rows = []
    for psi in config.psis:
        for d in config.dims:
            truth = PowerGaussian(d, psi)
            g = rng.generator(rng.derived_seed(0, "deboer data", psi, d))
            x = truth.sample(config.n_train + config.n_val + config.n_test, g)
            x_train, x_val = x[: config.n_train], x[config.n_train : config.n_train + config.n_val]
            reference = truth.sample(n, rng.generator(rng.derived_seed(1, "deboer reference", psi, d)))
            for b in config.aux:
                try:
                    model, _ = train_model(config, f"u^{psi}, D={d}", x_train, x_val, b, config.seeds[0], progress=False)
                except FloatingPointError:
                    rows.append({"ψ": psi, "D": d, "B": b, "max KS": np.nan, "energy distance": np.nan})
                    continue
                with torch.no_grad():
                    s = model.sample(n, rng.generator(rng.derived_seed(2, "deboer samples", psi, d, b))).double()
                s = s[torch.isfinite(s).all(1)]
                rows.append({"ψ": psi, "D": d, "B": b, "max KS": float(np.max(ks_per_coordinate(s.numpy(), truth))), "energy distance": energy_distance(s.numpy(), reference.numpy())})
    return pd.DataFrame(rows)


def moons(config: DeBoerConfig, threshold: float = float(np.log(1e-3)), extent=(-2.0, 3.0, -1.5, 2.0), progress: bool | None = None) -> pd.DataFrame:
    """Half-moons (noise 0.1, the song2024 study's truth): per B and seed, the test log p̂ against the
    truth's, and the model's mass where the true density is below e^threshold (the "bridge")."""
    from flowcore.studies.song2024.deep import truth as song_truth

    t = song_truth("moons")
    g = rng.generator(rng.derived_seed(0, "deboer moons"))
    x = t.sample(config.n_train + config.n_val + config.n_test, g)
    x_train, x_val, x_test = x[: config.n_train], x[config.n_train : config.n_train + config.n_val], x[config.n_train + config.n_val :]
    truth_ll = float(t.log_prob(x_test).mean())
    rows = []
    for b in config.moons_aux:
        for seed in config.seeds:
            try:
                model, _ = train_model(config, "moons", x_train, x_val, b, seed, batch_size=config.moons_batch_size, progress=False)
            except FloatingPointError:
                continue
            ll, _ = marginal_scores(model, x_test, config.n_samples, rng.derived_seed(seed, "deboer moons test", b))
            n_is = max(8, config.n_samples // 4)
            wide = copy.deepcopy(model).double()  # an unbounded scale map overflows float32 off the data

            def log_density(pts: torch.Tensor) -> torch.Tensor:
                v, _ = marginal_scores(wide, pts, n_is, rng.derived_seed(seed, "deboer moons grid", b), chunk=2048, dtype=torch.float64)
                return torch.from_numpy(v)

            mass = moons_mass_outside(log_density, threshold, extent, n_grid=80)
            rows.append({"B": b, "seed": seed, "mean log p̂": float(ll.mean()), "SE": float(ll.std(ddof=1) / np.sqrt(len(ll))), "truth mean log p": truth_ll, "mass where p < 1e-3": mass.outside, "mass on the grid": mass.total})
    return pd.DataFrame(rows)


def digits_table(config: DeBoerConfig, progress: bool | None = None) -> pd.DataFrame:
    """The 8×8-digits substitute for Table 4: the marginalizing flow on dequantised, standardised
    pixels (all ten classes, 80/20 split), per B and the first seed: the test mean log p̂ (nats per
    image, of the standardised data)."""
    from sklearn.datasets import load_digits

    images = load_digits().data.astype(np.float64)
    gen = np.random.default_rng(rng.derived_seed(0, "deboer digits"))
    x = (images + gen.uniform(size=images.shape)) / 17.0
    order = gen.permutation(len(x))
    mean, std = x[order[:1200]].mean(0), x[order[:1200]].std(0) + 1e-2
    z = torch.from_numpy((x - mean) / std)
    x_train, x_val, x_test = z[order[:1200]], z[order[1200:1437]], z[order[1437:]]
    rows = []
    for b in config.digits_aux:
        try:
            model, _ = train_model(config, "digits", x_train, x_val, b, config.seeds[0], batch_size=128, max_epochs=config.digits_epochs, progress=False)
        except FloatingPointError:
            rows.append({"B": b, "mean log p̂": np.nan, "SE": np.nan})
            continue
        ll, _ = marginal_scores(model, x_test, max(10, config.n_samples // 2), rng.derived_seed(0, "deboer digits test", b))
        rows.append({"B": b, "mean log p̂": float(ll.mean()), "SE": float(ll.std(ddof=1) / np.sqrt(len(ll)))})
    return pd.DataFrame(rows)
