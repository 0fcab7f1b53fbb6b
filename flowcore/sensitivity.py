r"""Which of the thesis's unstated settings make its claims hold (a chapter beyond the thesis).

One factor at a time is moved away from a base configuration — the training-set size, the training
length, the flow's capacity (couplings × width) and the condition number of :math:`\Sigma_p` — and
every setting is trained with several seeds. For each run the claim checks of :mod:`flowcore.claims`
are applied to its family tables, for the RealNVP and, as a control, for the maximum-likelihood
Gaussian :math:`\hat p` (the best linear flow, closed form): where a claim holds for the RealNVP
but not for :math:`\hat p`, the non-linear couplings are its cause.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from flowcore import claims
from flowcore.evaluation import constants, control_view, results
from flowcore.experiments import ExperimentConfig
from flowcore.validation import check_int, check_int_list, check_real_list

__all__ = ["Sweep", "CHECKS", "METRICS", "settings", "run_sweep", "summarise"]

#: The per-run claim checks (C1–C3 are about the estimators and the fit, covered by the main chapters).
CHECKS = {
    "C4": claims.c4_scale_only,
    "C5": claims.c5_shift_only,
    "C6": claims.c6_combined,
    "C7": claims.c7_perturbed_base,
    "C8": claims.c8_perturbed_grid,
    "C9": claims.c9_outlier,
    "C10": claims.c10_outlier_grid,
    "C11": claims.c11_detection,
}


def _at(table: pd.DataFrame, family: str, s: float, t: float) -> pd.Series:
    return claims._rows(table, family, s=s, t=t).iloc[0]


#: One number per claim and run, to average over seeds: ``claim -> (what it is, unit, function of
#: the run's table)``.
METRICS = {
    "C4": ("gap range over s at t = 0", "nats", lambda tb: np.ptp(tb[(tb["family"] == "affine") & (tb["t"] == 0)]["H*(q,pθ) − H*(q,p)"])),
    "C5": ("gap at s = 1, largest t (< 0: overestimated)", "nats", lambda tb: tb[(tb["family"] == "affine") & np.isclose(tb["s"], 1)].sort_values("t")["H*(q,pθ) − H*(q,p)"].iloc[-1]),
    "C6": ("OVL of log pθ, Q(q) vs Q(p), at (0.75, 0.25)", "OVL", lambda tb: _at(tb, "affine", 0.75, 0.25)["OVL model"]),
    "C7": ("OVL model − OVL truth on Λ^δ at (1, 0)", "OVL difference", lambda tb: _at(tb, "perturbed", 1, 0)["OVL model"] - _at(tb, "perturbed", 1, 0)["OVL truth"]),
    "C8": ("KL*(q^δ‖pθ) − KL*(q‖pθ) at s = 1.75, largest t", "nats", lambda tb: _at(tb, "perturbed", 1.75, tb["t"].max())["KL*(q‖pθ)"] - _at(tb, "affine", 1.75, tb["t"].max())["KL*(q‖pθ)"]),
    "C9": ("OVL of log pθ, Q(q^out) vs Q(p), at (1, 0)", "OVL", lambda tb: _at(tb, "outlier", 1, 0)["OVL model"]),
    "C10": ("fraction of Λ^out overestimated", "fraction of members", lambda tb: float((tb[tb["family"] == "outlier"]["H*(q,pθ) − H*(q,p)"] < 0).mean())),
    "C11": ("TNR truth − TNR model on Λ^δ at (0.25, 0.5)", "TNR difference", lambda tb: _at(tb, "perturbed", 0.25, 0.5)["TNR truth"] - _at(tb, "perturbed", 0.25, 0.5)["TNR model"]),
}


@dataclass(frozen=True)
class Sweep:
    """The settings to sweep, one factor at a time around the base configuration.

    Attributes:
        dim: The single dimension D of the sweep.
        seeds: Seeds per setting (at least 3); each seed draws its own p, data and initialisation.
        n_train: Training-set sizes.
        max_epochs: Training lengths (maximum epochs; early stopping still applies).
        capacity: Flow capacities as (couplings, width); the st-network has two hidden layers of width.
        eig_min: Smallest eigenvalues of Σ_p (largest stays at the base's), i.e. condition numbers.
        n_test: Test-set size per distribution in the sweep.
    """

    dim: int = 20
    seeds: tuple[int, ...] = (0, 1, 2)
    n_train: tuple[int, ...] = (1_000, 10_000, 100_000)
    max_epochs: tuple[int, ...] = (3, 10, 40)
    capacity: tuple[tuple[int, int], ...] = ((4, 32), (8, 64), (8, 128))
    eig_min: tuple[float, ...] = (0.1, 0.01, 0.001)
    n_test: int = 20_000

    def __post_init__(self):
        check_int("sweep_dim", self.dim, minimum=2)
        seeds = check_int_list("sweep_seeds", self.seeds, minimum=0)
        if len(set(seeds)) < 3:
            raise ValueError(f"sweep_seeds must hold at least 3 distinct seeds, got {list(self.seeds)}")
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "n_train", check_int_list("sweep_n_train", self.n_train, minimum=100))
        object.__setattr__(self, "max_epochs", check_int_list("sweep_max_epochs", self.max_epochs, minimum=1))
        if isinstance(self.capacity, str) or not self.capacity or any(len(c) != 2 for c in self.capacity):
            raise ValueError(f"sweep_capacity must be a list of [couplings, width] pairs, got {self.capacity!r}")
        object.__setattr__(self, "capacity", tuple(tuple(check_int_list("sweep_capacity", c, minimum=1)) for c in self.capacity))
        object.__setattr__(self, "eig_min", check_real_list("sweep_eig_min", self.eig_min, positive=True))
        check_int("sweep_n_test", self.n_test, minimum=100)


def settings(base: ExperimentConfig, sweep: Sweep) -> list[tuple[str, str, dict]]:
    """``(factor, value label, parameter overrides)`` for every setting of the sweep."""
    out = [("training-set size", f"{n:,}", {"n_train": n}) for n in sweep.n_train]
    out += [("training length", f"≤ {e} epochs", {"max_epochs": e}) for e in sweep.max_epochs]
    out += [("capacity", f"{k} × 2×{w}", {"n_couplings": k, "hidden": [w, w]}) for k, w in sweep.capacity]
    out += [("condition number", f"κ = {base.recipe.eig_max / e:g}", {"eig_min": e}) for e in sweep.eig_min]
    return out


def run_sweep(base: ExperimentConfig, sweep: Sweep, progress=None, on_run=None) -> pd.DataFrame:
    """Train and evaluate every setting × seed (cached), and check every claim for both models.

    The perturbation and outlier constants are the base's (calibrated once), so each setting is
    compared on the same families. Returns one row per (factor, value, seed, model, claim).
    """
    consts = constants(base)
    fixed = {"alpha": consts.perturbation.alpha, "beta": consts.perturbation.beta, "outlier_offset": consts.outlier.offset, "outlier_cov_scale": consts.outlier.cov_scale}
    params = {**base.as_params(), **fixed, "dims": [sweep.dim], "n_test": sweep.n_test}
    rows = []
    for factor, label, overrides in settings(base, sweep):
        for seed in sweep.seeds:
            config = ExperimentConfig.from_params(**{**params, "seed": seed, **overrides})
            res = results(config, progress=progress)
            for model, table in (("RealNVP", res.table), ("ML Gaussian", control_view(res.table))):
                for claim, check in CHECKS.items():
                    verdict = check(table).verdict
                    rows.append({"factor": factor, "value": label, "seed": seed, "model": model, "claim": claim, "holds": verdict == claims.Verdict.REPRODUCED, "metric": float(METRICS[claim][2](table))})
            if on_run is not None:
                on_run(factor, label, seed)
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per (claim, factor, value, model): how many seeds the claim holds for, and the metric's mean
    with a Student-t confidence interval over seeds."""

    def one(group: pd.DataFrame) -> pd.Series:
        m = group["metric"].to_numpy()
        half = student_t.ppf((1 + confidence) / 2, len(m) - 1) * m.std(ddof=1) / np.sqrt(len(m)) if len(m) > 1 else np.nan
        return pd.Series({"holds": f"{int(group['holds'].sum())}/{len(group)}", "metric": m.mean(), "CI low": m.mean() - half, "CI high": m.mean() + half})

    order = {f: i for i, f in enumerate(runs["factor"].unique())}
    values = {v: i for i, v in enumerate(runs["value"].unique())}
    summary = runs.groupby(["claim", "factor", "value", "model"], sort=False)[["holds", "metric"]].apply(one).reset_index()
    summary["_f"], summary["_v"] = summary["factor"].map(order), summary["value"].map(values)
    summary["_c"] = summary["claim"].str[1:].astype(int)
    return summary.sort_values(["_c", "_f", "_v", "model"], ascending=[True, True, True, False]).drop(columns=["_f", "_v", "_c"]).reset_index(drop=True)
