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

Every point runs with several seeds; each seed draws its own :math:`p`, data and weights, and
recalibrates :math:`\alpha, \beta` and the outlier recipe for its own :math:`\Sigma_p`
(:mod:`~flowcore.studies.debruin2024.calibration`), so the model-free detection rates the thesis
reports hold in every recipe. Each run is one cached job; its claims C4–C11 are judged for the
model, the ML-Gaussian control and the truth (:func:`~flowcore.studies.debruin2024.claims.assess`,
with ``exact=True``: a claim stated at one D is judged only where the run has it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flowcore.studies.debruin2024 import claims
from flowcore.studies.debruin2024 import columns as col
from flowcore.studies.debruin2024.calibration import constants
from flowcore.studies.debruin2024.config import ThesisConfig
from flowcore.studies.debruin2024.evaluation import results
from flowcore.studies.debruin2024.sensitivity import CHECKS, METRICS, run_seeded
from flowcore.sweep import Job, main_effects, space_filling
from flowcore.verdicts import Verdict

__all__ = ["FACTORS", "FAILURES", "CHECKS", "factors", "design", "reference", "jobs", "judge_run", "run_design", "by_point", "effects", "closest", "calibration_spread", "SCORE", "FAILED"]

#: The flow and training factors: level label → flat parameters.
FACTORS = {
    "permutations": {"none": {"permutation": "none"}, "random": {"permutation": "random"}},
    "log-scale map": {"exp": {"log_scale": "exp"}, "tanh": {"log_scale": "tanh"}, "sigmoid": {"log_scale": "sigmoid"}},
    "last layer": {"zero": {"zero_init": True}, "default": {"zero_init": False}},
    "training": {"early": {"stopping": "early"}, "fixed": {"stopping": "fixed"}},
    "Σ_p recipe": {"log-uniform": {"spectrum": "loguniform"}, "AAᵀ": {"spectrum": "wishart"}, "make_spd": {"spectrum": "spd"}},
}
#: The status of a run that could not be judged (training diverged, or log pθ overflowed).
FAILED = "run failed"
#: Per verdict, what it adds to a run's closeness to the thesis (C5–C11: a perfect run scores 7).
SCORE = {str(Verdict.REPRODUCED): 1.0, str(Verdict.PARTLY): 0.5, str(Verdict.NOT): 0.0, str(Verdict.UNTESTABLE): 0.0, FAILED: 0.0}
#: The claims of model failure, the ones the search is for.
FAILURES = ("C5", "C6", "C7", "C8", "C9", "C10", "C11")


def factors(base: ThesisConfig) -> dict[str, dict]:
    """Every factor with its levels → flat parameters, the profile's levels for n_train, D and μ_p."""
    r = base.regime
    out = {name: dict(levels) for name, levels in FACTORS.items()}
    out["n_train"] = {f"{n:,}": {"n_train": n} for n in r.n_train}
    out["D"] = {str(d): {"dims": [d]} for d in r.dims}
    out["μ_p scale"] = {f"{m:g}": {"mean_scale": m} for m in r.mean_scales}
    return out


def design(base: ThesisConfig) -> pd.DataFrame:
    """The design points: one row per point, one column of level labels per factor (a factor with
    one level is held fixed)."""
    levels = factors(base)
    varied = {name: list(lv) for name, lv in levels.items() if len(lv) > 1}
    points = space_filling(varied, base.regime.points, seed=base.regime.design_seed)
    for name, lv in levels.items():
        if name not in varied:
            points[name] = next(iter(lv))
    points.insert(0, "point", [f"P{i + 1}" for i in range(len(points))])
    return points[["point", *levels]]


def reference(base: ThesisConfig) -> dict[str, str]:
    """This book's default flow and recipe as a point of the design space (random permutations, tanh,
    zero init, early stopping, log-uniform Σ_p, μ_p scale 1) at the largest n_train and D searched."""
    levels = factors(base)
    return {
        "point": "default", "permutations": "random", "log-scale map": "tanh", "last layer": "zero", "training": "early",
        "n_train": list(levels["n_train"])[-1], "D": list(levels["D"])[-1], "Σ_p recipe": "log-uniform",
        "μ_p scale": next((k for k, v in levels["μ_p scale"].items() if v["mean_scale"] == 1.0), list(levels["μ_p scale"])[0]),
    }


def _config(base: ThesisConfig, point: dict, seed: int) -> ThesisConfig:
    levels = factors(base)
    r = base.regime
    params = {"seed": seed, "max_epochs": r.max_epochs, "n_val": r.n_val, "n_test": r.n_test, "calibration_draws": r.calibration_draws, "trainer": "batched"}
    params.update(alpha=None, beta=None, outlier_offset=None, outlier_cov_scale=None)  # recalibrated per recipe and seed
    for name, level in point.items():
        if name in levels:
            params.update(levels[name][level])
    return base.replace(**params)


def jobs(base: ThesisConfig, points: pd.DataFrame | None = None) -> list[Job]:
    """One job per design point × seed (and the :func:`reference` point), labelled by its levels."""
    points = design(base) if points is None else points
    rows = [*points.to_dict("records"), reference(base)]
    return [Job({**row, "seed": seed}, _config(base, row, seed)) for row in rows for seed in base.regime.seeds]


def judge_run(job: Job, progress: bool | None = None) -> list[dict]:
    """Train and evaluate one job (cached); one row per claim C4–C11 with the verdicts of model,
    control and truth, the number the claim rests on (:data:`~flowcore.studies.debruin2024.sensitivity.METRICS`),
    the fit (KL*(p‖pθ)), the calibrated α, β, and the truth's detection rates at the thesis's cells."""
    try:
        res = results(job.config, progress=progress)
    except FloatingPointError as error:  # a NaN loss in training, or a log-density that overflowed
        return [{"claim": claim, "verdict": FAILED, "control": FAILED, "truth": FAILED, "metric": np.nan, "failure": str(error)} for claim in CHECKS]
    table = res.table
    fit = claims.members(table, "affine", s=1.0, t=0.0)[col.GAP].iloc[0]  # q = p: the model's KL*(p‖pθ)
    truth_rates = {
        "TNR truth Λ^δ(1, 0)": float(claims.members(table, "perturbed", s=1.0, t=0.0)[col.TNR_TRUTH].iloc[0]),
        "TNR truth Λ^δ(0.25, 0.5)": float(claims.members(table, "perturbed", s=0.25, t=0.5)[col.TNR_TRUTH].iloc[0]),
        "mean TNR truth Λ^out": float(table[table["family"] == "outlier"][col.TNR_TRUTH].mean()),
    }
    rows = []
    for claim, check in CHECKS.items():
        found = claims.assess((check, table), exact=True)
        rows.append(
            {
                "claim": claim,
                "verdict": str(found.verdict),
                "control": str(found.verdicts["control"]),
                "truth": str(found.verdicts["truth"]),
                "metric": float(METRICS[claim][2](table)),
                "KL*(p‖pθ)": float(fit),
                "epochs": len(res.trained[job.config.dims[0]].history.val_nll),
                "alpha": res.constants.perturbation.alpha,
                "beta": res.constants.perturbation.beta,
                **truth_rates,
                "failure": "",
            }
        )
    return rows


def run_design(base: ThesisConfig, progress: bool | None = None) -> pd.DataFrame:
    """Every job of :func:`jobs` as tasks on ``base.scheduler`` (:func:`flowcore.sweep.run`): one row
    per (point, seed, claim), in job order."""
    constants(base)  # validates the base's own calibration settings before the long loop
    return run_seeded(jobs(base), lambda job: judge_run(job, progress), base, "regimes", progress)


def by_point(runs: pd.DataFrame) -> pd.DataFrame:
    """Per point and claim: in how many seeds the claim is reproduced + partly, of those where it is
    testable, as ``"k+m/n"`` strings (runs that failed are counted apart); and the point's closeness score (mean over seeds of
    the C5–C11 verdicts scored by :data:`SCORE`), with the median over seeds of the fit KL*(p‖pθ) in nats."""
    runs = runs.assign(score=runs["verdict"].map(SCORE))

    def share(group: pd.DataFrame) -> str:
        failed = int((group["verdict"] == FAILED).sum())
        testable = ~group["verdict"].isin([str(Verdict.UNTESTABLE), FAILED])
        note = f" ({failed} failed)" if failed else ""
        if not testable.any():
            return ("–" + note).strip()
        full = (group["verdict"] == str(Verdict.REPRODUCED)).sum()
        part = (group["verdict"] == str(Verdict.PARTLY)).sum()
        return f"{full}+{part}/{testable.sum()}{note}"

    cells = runs.groupby(["point", "claim"], sort=False)[["verdict"]].apply(share).unstack("claim")
    cells = cells[[c for c in CHECKS if c in cells.columns]]
    if "KL*(p‖pθ)" in runs:  # how well the flow fits p at all: the median over seeds of its KL*(p‖pθ)
        cells.insert(0, "KL*(p‖pθ)", runs.groupby(["point", "seed"], sort=False)["KL*(p‖pθ)"].first().groupby("point", sort=False).median())
    failures = runs[runs["claim"].isin(FAILURES)]
    cells["score"] = failures.groupby(["point", "seed"], sort=False)["score"].sum().groupby("point", sort=False).mean()
    return cells


def effects(runs: pd.DataFrame, base: ThesisConfig) -> pd.DataFrame:
    """Per claim, factor and level over the design's runs (the reference excluded): how often the
    claim holds at least partly, with Wilson intervals (:func:`flowcore.sweep.main_effects`)."""
    varied = [name for name, lv in factors(base).items() if len(lv) > 1]
    data = runs[(runs["point"] != "default") & ~runs["verdict"].isin([str(Verdict.UNTESTABLE), FAILED])]
    data = data.assign(holds=data["verdict"].isin([str(Verdict.REPRODUCED), str(Verdict.PARTLY)]))
    out = main_effects(data, varied, "holds", by=["claim"])
    # Claims in their order, factors and levels in the order of factors(): every panel reads the same.
    rank = {(f, lv): (i, j) for i, (f, levels) in enumerate(factors(base).items()) for j, lv in enumerate(levels)}
    key = out.apply(lambda r: (list(CHECKS).index(r["claim"]), *rank[(r["factor"], r["level"])]), axis=1)
    return out.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def calibration_spread(runs: pd.DataFrame) -> pd.DataFrame:
    """Per Σ_p recipe and D: the range over runs (seeds and points) of the calibrated α, β and of the
    truth's detection rates that the calibration targets (thesis, at D = 50: 0.38, 0.91 and 0.98)."""
    ok = runs[(runs["verdict"] != FAILED) & (runs["claim"] == next(iter(CHECKS)))]
    columns = ["alpha", "beta", "TNR truth Λ^δ(1, 0)", "TNR truth Λ^δ(0.25, 0.5)", "mean TNR truth Λ^out"]
    grouped = ok.groupby(["Σ_p recipe", "D"], sort=False)[columns]
    low, high = grouped.min(), grouped.max()
    out = pd.DataFrame({c: [f"{a:.3g}–{b:.3g}" for a, b in zip(low[c], high[c])] for c in columns}, index=low.index)
    out.insert(0, "runs", grouped.size())
    return out


def closest(runs: pd.DataFrame) -> str:
    """The design point closest to the thesis's reported behaviour: the highest :func:`by_point`
    score; ties go to the larger mean C11 shortfall (the thesis's headline)."""
    design_runs = runs[runs["point"] != "default"]
    score = by_point(design_runs)["score"]
    shortfall = design_runs[design_runs["claim"] == "C11"].groupby("point")["metric"].mean()
    order = pd.DataFrame({"score": score, "shortfall": shortfall.reindex(score.index).fillna(-np.inf)})
    return str(order.sort_values(["score", "shortfall"], ascending=False).index[0])
