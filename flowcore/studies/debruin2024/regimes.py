r"""Where, if anywhere, do the thesis's failures appear? A search over the settings it leaves open.

The thesis states no architecture, training-set size, training length or recipe for
:math:`\Sigma_p`. The main chapters use one well-trained flow on a near-standard Gaussian, where it
behaves like the maximum-likelihood Gaussian. This module moves eight of the open settings *at
once*, on a balanced space-filling design (:func:`flowcore.sweep.space_filling`):

================  ==========================================================================
factor            levels
================  ==========================================================================
permutations      ``none`` (fixed alternating halves, the thesis's Eq. 3) / ``random``
log-scale map     ``exp`` (unbounded, Eq. 3) / ``tanh`` (bounded) / ``sigmoid`` (contract-only,
                  nflows' ``SimpleRealNVP`` default)
last layer        ``zero`` init (the flow starts as the identity) / ``default`` init
training          ``early`` stopping with the best weights / ``fixed`` epoch budget, last weights
n_train           ``regime_n_train``
D                 ``regime_dims``
Σ_p recipe        log-uniform eigenvalues in [eig_min, eig_max] / unnormalised :math:`AA^\top` /
                  scikit-learn's ``make_spd_matrix`` law
μ_p scale         ``regime_mean_scales``
================  ==========================================================================

:math:`n_\text{train}` and :math:`D` are crossed in full (every combination on equally many points),
since the flow's fit depends on both: otherwise a comparison of runs that fit with runs that do not
compares dimensions as much as training-set sizes. Every point runs with several seeds; each seed
draws its own :math:`p`, data and weights, and recalibrates :math:`\alpha, \beta` and the outlier
recipe for its own :math:`\Sigma_p` (:mod:`~flowcore.studies.debruin2024.calibration`), so the
model-free detection rates the thesis reports hold in every recipe. Each run is one cached job; its
claims C4–C11 are judged for the model and the three nulls
(:func:`~flowcore.studies.debruin2024.claims.assess`, with ``exact=True``: a claim stated at one D
is judged only where the run has it).

The question the chapter asks is Part 2 of the thesis's failure claims: *among runs whose flow fits
p* (the fit premise), where do C5–C11 appear? The summaries therefore read the fit first
(:func:`strata`: KL*(p‖pθ) per dimension by D and :math:`n_\text{train}`, beside p̂'s), and count a
claim only where its run fits. Seeds of one point share its configuration and are not independent
points: every interval is over design points (:func:`effects`), each point contributing the share of
its fitted seeds in which the claim holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flowcore.studies.debruin2024 import claims
from flowcore.studies.debruin2024 import columns as col
from flowcore.studies.debruin2024.calibration import constants
from flowcore.studies.debruin2024.config import ThesisConfig
from flowcore.studies.debruin2024.evaluation import results
from flowcore.studies.debruin2024.sensitivity import (
    CHECKS,
    FAILED,
    HOLDS,
    failed_rows,
    judged_rows,
    run_seeded,
    testable,
    verdict_share,
)
from flowcore.sweep import Job, space_filling, summarise_over_seeds
from flowcore.verdicts import Verdict

__all__ = [
    "FACTORS",
    "FAILURES",
    "CHECKS",
    "CROSSED",
    "factors",
    "design",
    "reference",
    "jobs",
    "judge_run",
    "run_design",
    "by_point",
    "strata",
    "effects",
    "closest",
    "calibration_spread",
    "SCORE",
    "FAILED",
    "HOLDS",
]

#: The flow and training factors: level label → flat parameters.
FACTORS = {
    "permutations": {"none": {"permutation": "none"}, "random": {"permutation": "random"}},
    "log-scale map": {
        "exp": {"log_scale": "exp"},
        "tanh": {"log_scale": "tanh"},
        "sigmoid": {"log_scale": "sigmoid"},
    },
    "last layer": {"zero": {"zero_init": True}, "default": {"zero_init": False}},
    "training": {"early": {"stopping": "early"}, "fixed": {"stopping": "fixed"}},
    "Σ_p recipe": {
        "log-uniform": {"spectrum": "loguniform"},
        "AAᵀ": {"spectrum": "wishart"},
        "make_spd": {"spectrum": "spd"},
    },
}
#: Per verdict, what it adds to a run's closeness to the thesis (C5–C11: a perfect run scores 7).
SCORE = {
    str(Verdict.REPRODUCED): 1.0,
    str(Verdict.PARTLY): 0.5,
    str(Verdict.NOT): 0.0,
    str(Verdict.UNTESTABLE): 0.0,
    FAILED: 0.0,
}
#: The claims of model failure, the ones the search is for.
FAILURES = claims.FAILURES
#: The factors crossed in full: every (D, n_train) combination on equally many design points.
CROSSED = ("D", "n_train")


def factors(base: ThesisConfig) -> dict[str, dict]:
    """Every factor with its levels → flat parameters, the profile's levels for n_train, D and
    μ_p."""
    r = base.regime
    out = {name: dict(levels) for name, levels in FACTORS.items()}
    out["n_train"] = {f"{n:,}": {"n_train": n} for n in r.n_train}
    out["D"] = {str(d): {"dims": [d]} for d in r.dims}
    out["μ_p scale"] = {f"{m:g}": {"mean_scale": m} for m in r.mean_scales}
    return out


def design(base: ThesisConfig) -> pd.DataFrame:
    """The design points: one row per point, one column of level labels per factor (a factor with
    one level is held fixed). The :data:`CROSSED` factors enter as one combined factor, so each of
    their combinations sits on equally many points (±1) and they are orthogonal to each other."""
    levels = factors(base)
    crossed = [(d, n) for d in levels["D"] for n in levels["n_train"]]
    varied = {name: list(lv) for name, lv in levels.items() if len(lv) > 1 and name not in CROSSED}
    if len(crossed) > 1:
        varied["D × n_train"] = [f"{d} | {n}" for d, n in crossed]
    if len(crossed) > base.regime.points:
        raise ValueError(
            f"regime_points must be at least the {len(crossed)} combinations "
            f"of regime_dims × regime_n_train, got {base.regime.points}"
        )
    points = space_filling(varied, base.regime.points, seed=base.regime.design_seed)
    cell = (
        points.pop("D × n_train")
        if "D × n_train" in points
        else pd.Series([f"{crossed[0][0]} | {crossed[0][1]}"] * len(points))
    )
    points["D"], points["n_train"] = (
        cell.str.split(" | ", regex=False).str[0],
        cell.str.split(" | ", regex=False).str[1],
    )
    for name, lv in levels.items():
        if name not in varied and name not in CROSSED:
            points[name] = next(iter(lv))
    points.insert(0, "point", [f"P{i + 1}" for i in range(len(points))])
    return points[["point", *levels]]


def reference(base: ThesisConfig) -> dict[str, str]:
    """This book's default flow and recipe as a point of the design space (random permutations,
    tanh, zero init, early stopping, log-uniform Σ_p, μ_p scale 1) at the largest n_train and D
    searched."""
    levels = factors(base)
    return {
        "point": "default",
        "permutations": "random",
        "log-scale map": "tanh",
        "last layer": "zero",
        "training": "early",
        "n_train": list(levels["n_train"])[-1],
        "D": list(levels["D"])[-1],
        "Σ_p recipe": "log-uniform",
        "μ_p scale": next(
            (k for k, v in levels["μ_p scale"].items() if v["mean_scale"] == 1.0),
            list(levels["μ_p scale"])[0],
        ),
    }


def _config(base: ThesisConfig, point: dict, seed: int) -> ThesisConfig:
    levels = factors(base)
    r = base.regime
    params = {
        "seed": seed,
        "max_epochs": r.max_epochs,
        "n_val": r.n_val,
        "n_test": r.n_test,
        "calibration_draws": r.calibration_draws,
        "trainer": "batched",
    }
    params.update(
        alpha=None, beta=None, outlier_offset=None, outlier_cov_scale=None
    )  # recalibrated per recipe and seed
    for name, level in point.items():
        if name in levels:
            params.update(levels[name][level])
    return base.replace(**params)


def jobs(base: ThesisConfig, points: pd.DataFrame | None = None) -> list[Job]:
    """One job per design point × seed (and the :func:`reference` point), labelled by its levels."""
    points = design(base) if points is None else points
    rows = [*points.to_dict("records"), reference(base)]
    return [
        Job({**row, "seed": seed}, _config(base, row, seed))
        for row in rows
        for seed in base.regime.seeds
    ]


def judge_run(job: Job, progress: bool | None = None) -> list[dict]:
    """Train and evaluate one job (cached); one row per claim C4–C11 with the verdicts of the model
    (``verdict``, and ``why`` in words) and of each null, the number the claim rests on
    (:data:`~flowcore.studies.debruin2024.sensitivity.METRICS`), the fit of the model and of the
    nulls (KL*(p‖·) on Q(p), per dimension), whether the model passes the fit premise, the
    calibrated α, β, and the truth's detection rates at the thesis's cells."""
    try:
        res = results(job.config, progress=progress)
    except FloatingPointError as error:  # a NaN loss in training, or a log-density that overflowed
        return failed_rows(error)
    return judged_rows(res)


def run_design(base: ThesisConfig, progress: bool | None = None) -> pd.DataFrame:
    """Every job of :func:`jobs` as tasks on ``base.scheduler`` (:func:`flowcore.sweep.run`): one
    row per (point, seed, claim), in job order."""
    constants(base)  # validates the base's own calibration settings before the long loop
    return run_seeded(jobs(base), lambda job: judge_run(job, progress), base, "regimes", progress)


def _holds(verdicts: pd.Series) -> pd.Series:
    return verdicts.isin(HOLDS)


def by_point(runs: pd.DataFrame) -> pd.DataFrame:
    """Per point and claim: in how many seeds the claim is reproduced + partly, of those where it is
    testable, as ``"k+m/n"`` strings (runs that failed are counted apart; a run whose flow does not
    fit p makes the failure claims not testable); how many seeds fit p; the median over seeds of the
    fit KL*(p‖pθ)/D (nats per dimension); and the point's closeness score (mean over seeds of the
    C5–C11 verdicts scored by :data:`SCORE`)."""
    runs = runs.assign(score=runs["verdict"].map(SCORE))

    cells = runs.groupby(["point", "claim"], sort=False)["verdict"].apply(verdict_share)
    cells = cells.unstack("claim")
    cells = cells[[c for c in CHECKS if c in cells.columns]]
    per_run = runs.groupby(["point", "seed"], sort=False).first()
    if col.KL_PER_DIM in runs:
        cells.insert(
            0, col.KL_PER_DIM, per_run[col.KL_PER_DIM].groupby("point", sort=False).median()
        )
    if "fits p" in runs:
        fitted = per_run["fits p"].groupby("point", sort=False)
        cells.insert(
            0, "fits p", fitted.sum().astype(int).astype(str) + "/" + fitted.size().astype(str)
        )
    failures = runs[runs["claim"].isin(FAILURES)]
    cells["score"] = (
        failures.groupby(["point", "seed"], sort=False)["score"]
        .sum()
        .groupby("point", sort=False)
        .mean()
    )
    return cells


def strata(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (D, n_train) of the design (the reference left out): how many runs fit p, the median fit
    per dimension of the flow, of p̂ and of the untrained flow, and per failure claim the share of
    the *fitted* runs in which it holds for the flow (≥ partly, of those where it is testable)
    beside the share of all runs in which it holds for p̂ (``"k/n"``; ``–``: testable in none)."""
    design_runs = runs[(runs["point"] != "default") & (runs["verdict"] != FAILED)]
    rows = []
    for (dim, n), group in design_runs.groupby(["D", "n_train"], sort=False):
        per_run = group.groupby(["point", "seed"], sort=False).first()
        row = {
            "D": dim,
            "n_train": n,
            "runs fitting p": f"{int(per_run['fits p'].sum())}/{len(per_run)}",
        }
        for name in (col.KL_PER_DIM, "KL*(p‖p̂)/D", "KL*(p‖pθ₀)/D"):
            row[f"median {name}"] = float(per_run[name].median())
        for claim in FAILURES:
            at = group[group["claim"] == claim]
            flow = at[at["fits p"] & (at["verdict"] != str(Verdict.UNTESTABLE))]
            hat = at[at["p̂"] != str(Verdict.UNTESTABLE)]
            row[f"{claim} flow"] = (
                f"{int(_holds(flow['verdict']).sum())}/{len(flow)}" if len(flow) else "–"
            )
            row[f"{claim} p̂"] = f"{int(_holds(hat['p̂']).sum())}/{len(hat)}" if len(hat) else "–"
        rows.append(row)
    return pd.DataFrame(rows).set_index(["D", "n_train"])


def effects(runs: pd.DataFrame, base: ThesisConfig, confidence: float = 0.95) -> pd.DataFrame:
    """Per claim, factor and level, over the design's runs whose flow fits p (the reference left
    out): each design point's share of its fitted, testable seeds in which the claim holds
    (≥ partly), then per level the mean over its points with a Student-t interval *over points*
    (seeds of one point are not independent points), the number of points and runs, and the
    factor's *spread* (largest minus smallest level mean, a rough rank)."""
    varied = [name for name, lv in factors(base).items() if len(lv) > 1]
    data = runs[
        (runs["point"] != "default") & runs["fits p"].astype(bool) & testable(runs["verdict"])
    ]
    data = data.assign(holds=_holds(data["verdict"]))
    if data.empty:
        return pd.DataFrame(
            columns=[
                "claim",
                "factor",
                "level",
                "points",
                "runs",
                "share",
                "CI low",
                "CI high",
                "spread",
            ]
        )
    per_point = (
        data.groupby(["claim", "point"], sort=False)
        .agg(share=("holds", "mean"), runs=("holds", "size"), **{f: (f, "first") for f in varied})
        .reset_index()
    )
    rows = []
    for factor in varied:
        stats = summarise_over_seeds(
            per_point.rename(columns={factor: "level"}), ["claim", "level"], "share", confidence
        )
        counts = (
            per_point.groupby(["claim", factor], sort=False)
            .agg(points=("point", "size"), runs=("runs", "sum"))
            .reset_index()
            .rename(columns={factor: "level"})
        )
        rows.append(stats.merge(counts, on=["claim", "level"]).assign(factor=factor))
    out = pd.concat(rows, ignore_index=True)
    out["CI low"], out["CI high"] = out["CI low"].clip(0, 1), out["CI high"].clip(0, 1)
    out["spread"] = out.groupby(["claim", "factor"], sort=False)["share"].transform(
        lambda v: v.max() - v.min()
    )
    # Claims in their order, factors and levels in the order of factors(): every panel reads the
    # same.
    rank = {
        (f, lv): (i, j)
        for i, (f, levels) in enumerate(factors(base).items())
        for j, lv in enumerate(levels)
    }
    key = out.apply(
        lambda r: (list(CHECKS).index(r["claim"]), *rank[(r["factor"], r["level"])]), axis=1
    )
    out = out.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)
    return out[
        ["claim", "factor", "level", "points", "runs", "share", "CI low", "CI high", "spread"]
    ]


def calibration_spread(runs: pd.DataFrame) -> pd.DataFrame:
    """Per Σ_p recipe and D: the range over runs (seeds and points) of the calibrated α, β and of
    the truth's detection rates that the calibration targets (thesis, at D = 50: 0.38, 0.91 and
    0.98)."""
    ok = runs[(runs["verdict"] != FAILED) & (runs["claim"] == next(iter(CHECKS)))]
    columns = [
        "alpha",
        "beta",
        "TNR truth Λ^δ(1, 0)",
        "TNR truth Λ^δ(0.25, 0.5)",
        "mean TNR truth Λ^out",
    ]
    grouped = ok.groupby(["Σ_p recipe", "D"], sort=False)[columns]
    low, high = grouped.min(), grouped.max()
    out = pd.DataFrame(
        {c: [f"{a:.3g}–{b:.3g}" for a, b in zip(low[c], high[c])] for c in columns}, index=low.index
    )
    out.insert(0, "runs", grouped.size())
    return out


def closest(runs: pd.DataFrame) -> str | None:
    """The design point closest to the thesis's reported behaviour among those whose flow fits p in
    every seed: the highest :func:`by_point` score; ties go to the larger mean C11 shortfall (the
    thesis's headline). ``None`` when no point fits p in every seed."""
    design_runs = runs[runs["point"] != "default"]
    fitted = (
        design_runs.groupby("point", sort=False)["fits p"].all()
        if "fits p" in design_runs
        else pd.Series(True, index=design_runs["point"].unique())
    )
    candidates = fitted[fitted].index
    if len(candidates) == 0:
        return None
    score = by_point(design_runs)["score"].loc[candidates]
    shortfall = design_runs[design_runs["claim"] == "C11"].groupby("point")["metric"].mean()
    order = pd.DataFrame(
        {"score": score, "shortfall": shortfall.reindex(score.index).fillna(-np.inf)}
    )
    return str(order.sort_values(["score", "shortfall"], ascending=False).index[0])
