r"""Which of the thesis's unstated settings make its claims hold (a chapter beyond the thesis).

One factor at a time is moved away from a base configuration — the training-set size, the training
length, the flow's capacity (couplings × width) and the condition number of :math:`\Sigma_p` — and
every setting is trained with several seeds (a :mod:`flowcore.sweep` of jobs). For each run the
claim checks of :mod:`flowcore.studies.debruin2024.claims` are applied to its family tables, for the
RealNVP and for two of the nulls in its place: the maximum-likelihood Gaussian :math:`\hat p` of the
same training set (what finite data alone gives) and the RealNVP at its initialisation (what a flow
that has learned nothing gives). A failure claim needs a flow that fits p (the fit premise), so a
setting that under-trains the flow makes it *not testable* rather than reproduced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from flowcore.studies.debruin2024 import columns as col
from flowcore.studies.debruin2024 import claims
from flowcore.studies.debruin2024.calibration import constants
from flowcore.studies.debruin2024.config import ThesisConfig
from flowcore.studies.debruin2024.evaluation import null_view, results
from flowcore.studies.debruin2024.training import trained_flows
from flowcore.cache import job_key
from flowcore.sweep import Job, summarise_over_seeds
from flowcore.sweep import run as run_jobs
from flowcore.verdicts import NULLS, Verdict

__all__ = [
    "CHECKS",
    "FAILED",
    "HOLDS",
    "testable",
    "verdict_share",
    "judged_rows",
    "failed_rows",
    "METRICS",
    "MODELS",
    "settings",
    "jobs",
    "trains_with",
    "train_together",
    "check_claims",
    "run_sweep",
    "run_seeded",
    "summarise",
    "every_seed",
]

#: The per-run claim checks (C1–C3 are about the estimators and the fit, covered by the main
#: chapters).
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


#: The densities judged per run, by view: the RealNVP and two nulls in its place (the truth's
#: verdicts travel in the model's rows, column ``truth``).
MODELS = {"model": "RealNVP", "p̂": "ML Gaussian p̂", "untrained": "untrained RealNVP"}


def _at(table: pd.DataFrame, family: str, s: float, t: float) -> pd.Series:
    return claims.members(table, family, s=s, t=t).iloc[0]


#: One number per claim and run, to average over seeds: ``claim -> (what it is, unit, function of
#: the run's table)``.
METRICS = {
    "C4": (
        "gap range over s at t = 0",
        "nats",
        lambda tb: np.ptp(tb[(tb["family"] == "affine") & (tb["t"] == 0)][col.GAP]),
    ),
    "C5": (
        "gap at s = 1, largest t (< 0: overestimated)",
        "nats",
        lambda tb: (
            tb[(tb["family"] == "affine") & np.isclose(tb["s"], 1)]
            .sort_values("t")[col.GAP]
            .iloc[-1]
        ),
    ),
    "C6": (
        "OVL of log pθ, Q(q) vs Q(p), at (0.75, 0.25)",
        col.OVL,
        lambda tb: _at(tb, "affine", 0.75, 0.25)[col.OVL_MODEL],
    ),
    "C7": (
        "OVL model − OVL truth on Λ^δ at (1, 0)",
        "OVL difference",
        lambda tb: (
            _at(tb, "perturbed", 1, 0)[col.OVL_MODEL] - _at(tb, "perturbed", 1, 0)[col.OVL_TRUTH]
        ),
    ),
    "C8": (
        "KL*(q^δ‖pθ) − KL*(q‖pθ) at s = 1.75, largest t",
        "nats",
        lambda tb: (
            _at(tb, "perturbed", 1.75, tb["t"].max())[col.KL_STAR_Q_MODEL]
            - _at(tb, "affine", 1.75, tb["t"].max())[col.KL_STAR_Q_MODEL]
        ),
    ),
    "C9": (
        "OVL of log pθ, Q(q^out) vs Q(p), at (1, 0)",
        col.OVL,
        lambda tb: _at(tb, "outlier", 1, 0)[col.OVL_MODEL],
    ),
    "C10": (
        "fraction of Λ^out overestimated",
        "fraction of members",
        lambda tb: float((tb[tb["family"] == "outlier"][col.GAP] < 0).mean()),
    ),
    "C11": (
        "TNR truth − TNR model on Λ^δ at (0.25, 0.5)",
        "TNR difference",
        lambda tb: (
            _at(tb, "perturbed", 0.25, 0.5)[col.TNR_TRUTH]
            - _at(tb, "perturbed", 0.25, 0.5)[col.TNR_MODEL]
        ),
    ),
}


#: The status of a run that could not be judged (training diverged, or log pθ overflowed).
FAILED = "run failed"
#: The verdicts that count as the claim holding (at least partly).
HOLDS = (str(Verdict.REPRODUCED), str(Verdict.PARTLY))


def testable(verdicts: pd.Series) -> pd.Series:
    """Which verdicts judged the claim: neither *not testable here* nor a :data:`FAILED` run."""
    return ~verdicts.isin([str(Verdict.UNTESTABLE), FAILED])


def verdict_share(verdicts: pd.Series) -> str:
    """In how many runs a claim is reproduced + partly reproduced, of those where it is
    :func:`testable`, as ``"k+m/n"``; failed runs are counted apart; ``"–"``: testable in none.

    Example:
        >>> verdict_share(pd.Series(["reproduced", "partly reproduced", "not reproduced",
        ...                          "not testable here", FAILED]))
        '1+1/3 (1 failed)'
    """
    failed = int((verdicts == FAILED).sum())
    judged = testable(verdicts)
    note = f" ({failed} failed)" if failed else ""
    if not judged.any():
        return ("–" + note).strip()
    full = int((verdicts == str(Verdict.REPRODUCED)).sum())
    part = int((verdicts == str(Verdict.PARTLY)).sum())
    return f"{full}+{part}/{int(judged.sum())}{note}"


def judged_rows(res, null_metrics: bool = False) -> list[dict]:
    """One row per claim C4–C11 of a run at one D (``res``: its
    :class:`~flowcore.studies.debruin2024.evaluation.Results`).

    Each row holds the verdicts of the model (``verdict``, and ``why`` in words) and of each null
    (:data:`~flowcore.verdicts.NULLS`, unmasked); the number the claim rests on (:data:`METRICS`;
    with ``null_metrics`` also each null's, as ``"metric <null>"``); the fit of the model and of
    the nulls (KL*(p‖·) on Q(p), per dimension) and whether the model passes the fit premise; the
    epochs trained, the calibrated α, β, and the truth's detection rates at the thesis's cells. A
    claim stated at one D is judged only where the run has it (``exact=True``).
    """
    table = res.table
    dim = int(table["D"].iloc[0])
    first = table.iloc[0]
    fit = float(first[col.KL_P_MODEL_PAIRED])
    fits = {
        "KL*(p‖pθ)": fit,
        col.KL_PER_DIM: fit / dim,
        "KL*(p‖p̂)/D": float(first[col.of(col.KL_P_MODEL_PAIRED, "p̂")]) / dim,
        "KL*(p‖pθ₀)/D": float(first[col.of(col.KL_P_MODEL_PAIRED, "untrained")]) / dim,
        "fits p": fit <= claims.fit_bound(dim),
    }
    truth_rates = {
        "TNR truth Λ^δ(1, 0)": float(
            claims.members(table, "perturbed", s=1.0, t=0.0)[col.TNR_TRUTH].iloc[0]
        ),
        "TNR truth Λ^δ(0.25, 0.5)": float(
            claims.members(table, "perturbed", s=0.25, t=0.5)[col.TNR_TRUTH].iloc[0]
        ),
        "mean TNR truth Λ^out": float(table[table["family"] == "outlier"][col.TNR_TRUTH].mean()),
    }
    views = {null: null_view(table, null) for null in NULLS} if null_metrics else {}
    rows = []
    for claim, check in CHECKS.items():
        found = claims.assess((check, table), exact=True)
        metric = METRICS[claim][2]
        rows.append(
            {
                "claim": claim,
                "verdict": str(found.verdict),
                "why": found.label(),
                **{null: str(found.verdicts[null]) for null in NULLS},
                "metric": float(metric(table)),
                **{f"metric {null}": float(metric(view)) for null, view in views.items()},
                **fits,
                "epochs": len(res.trained[dim].history.val_nll),
                "alpha": res.constants.perturbation.alpha,
                "beta": res.constants.perturbation.beta,
                **truth_rates,
                "failure": "",
            }
        )
    return rows


def failed_rows(error: Exception) -> list[dict]:
    """The rows of :func:`judged_rows` for a run that could not be judged (its training diverged or
    a log-density overflowed): every verdict :data:`FAILED`, the error in words."""
    return [
        {
            "claim": claim,
            "verdict": FAILED,
            "why": str(error),
            **{null: FAILED for null in NULLS},
            "metric": np.nan,
            "fits p": False,
            "failure": str(error),
        }
        for claim in CHECKS
    ]


def settings(base: ThesisConfig) -> list[tuple[str, str, dict]]:
    """``(factor, value label, parameter overrides)`` for every setting of ``base.sweep``."""
    sweep = base.sweep
    out = [("training-set size", f"{n:,}", {"n_train": n}) for n in sweep.n_train]
    out += [("training length", f"≤ {e} epochs", {"max_epochs": e}) for e in sweep.max_epochs]
    out += [
        ("capacity", f"{k} × 2×{w}", {"n_couplings": k, "hidden": [w, w]})
        for k, w in sweep.capacity
    ]
    out += [
        ("condition number", f"κ = {base.recipe.eig_max / e:g}", {"eig_min": e})
        for e in sweep.eig_min
    ]
    return out


def jobs(base: ThesisConfig) -> list[Job]:
    """One job per setting × seed of ``base.sweep``, at the sweep's dimension and test-set size.

    The perturbation and outlier constants are the base's (calibrated once), so each setting is
    compared on the same families.
    """
    consts = constants(base)
    fixed = {
        "alpha": consts.perturbation.alpha,
        "beta": consts.perturbation.beta,
        "outlier_offset": consts.outlier.offset,
        "outlier_cov_scale": consts.outlier.cov_scale,
    }
    common = {**fixed, "dims": [base.sweep.dim], "n_test": base.sweep.n_test, "trainer": "batched"}
    return [
        Job(
            {"factor": factor, "value": label, "seed": seed},
            base.replace(**common, seed=seed, **overrides),
        )
        for factor, label, overrides in settings(base)
        for seed in base.sweep.seeds
    ]


def trains_with(job: Job) -> str:
    """Which jobs can train as one stacked model: those with the same architecture, dimensions and
    training settings but for the seed (their data may differ: another Σ_p, say). They form one
    task.

    A flow's result does not depend on the others it is trained with (bitwise; see
    :func:`~flowcore.studies.debruin2024.training.trained_flows`), so the grouping changes no
    number.
    """
    c = job.config
    return job_key(
        "batch",
        {
            "flow": c.flow,
            "train": dataclasses.replace(c.train, seed=0).key(c.n_train, c.n_val),
            "dims": c.dims,
            "device": c.device,
        },
    )


def train_together(jobs: Sequence[Job]) -> None:
    """Train the flows of jobs that :func:`trains_with` groups at once
    (:func:`~flowcore.studies.debruin2024.training.trained_flows`), so that each job then finds its
    flow in the cache."""
    for dim in jobs[0].config.dims:
        trained_flows(dim, [job.config for job in jobs], progress=False)


def check_claims(job: Job, progress: bool | None = None) -> list[dict]:
    """Train and evaluate one job (cached) and judge every claim for the RealNVP and each null of
    :data:`MODELS` (the RealNVP masked by the truth and p̂, each null on its own). A claim stated at
    one D (C6 at 20, C11 at 50) is judged only where the job has that D (``exact=True``): elsewhere
    it is *not testable here*, not moved. Each row carries the view's fit, KL*(p‖·)/D on Q(p)."""
    table = results(job.config, progress=progress).table
    views = {name: table if name == "model" else null_view(table, name) for name in MODELS}
    fits = {
        name: float(v[col.KL_P_MODEL_PAIRED].iloc[0] / v["D"].iloc[0]) for name, v in views.items()
    }
    rows = []
    for claim, check in CHECKS.items():
        found = claims.assess((check, table), exact=True)
        for name, label in MODELS.items():
            verdict = found.verdicts[name]
            rows.append(
                {
                    "model": label,
                    "claim": claim,
                    "verdict": str(verdict),
                    "holds": verdict == Verdict.REPRODUCED,
                    "truth": str(found.verdicts["truth"]),
                    "metric": float(METRICS[claim][2](views[name])),
                    col.KL_PER_DIM: fits[name],
                }
            )
    return rows


def run_sweep(base: ThesisConfig, progress: bool | None = None) -> pd.DataFrame:
    """Every job of :func:`jobs` as tasks on ``base.scheduler`` (:func:`flowcore.sweep.run`): one
    row per (factor, value, seed, model, claim), in job order."""
    return run_seeded(
        jobs(base), lambda job: check_claims(job, progress), base, "sensitivity", progress
    )


def run_seeded(
    jobs: Sequence[Job], fn, base: ThesisConfig, description: str, progress: bool | None = None
) -> pd.DataFrame:
    """:func:`flowcore.sweep.run` on ``base.scheduler``, one task per group of jobs that train
    together (:func:`trains_with`: a setting's seeds, and other settings that differ only in their
    data)."""
    return run_jobs(
        jobs,
        fn,
        progress=progress,
        description=description,
        scheduler=base.scheduler,
        group=trains_with,
        prepare=train_together,
    )


def summarise(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per (claim, factor, value, model): for how many seeds the claim holds (of those where it is
    testable), and the metric's mean with a Student-t confidence interval over seeds."""
    by = ["claim", "factor", "value", "model"]

    def share(group: pd.DataFrame) -> str:
        testable = group["verdict"] != str(Verdict.UNTESTABLE)
        return (
            f"{int(group['holds'].sum())}/{int(testable.sum())}"
            if testable.any()
            else "not testable"
        )

    holds = (
        runs.groupby(by, sort=False)[["holds", "verdict"]]
        .apply(share)
        .rename("holds")
        .reset_index()
    )
    summary = holds.merge(summarise_over_seeds(runs, by, "metric", confidence), on=by)
    order = {f: i for i, f in enumerate(runs["factor"].unique())}
    values = {v: i for i, v in enumerate(runs["value"].unique())}
    summary["_f"], summary["_v"] = summary["factor"].map(order), summary["value"].map(values)
    summary["_c"] = summary["claim"].str[1:].astype(int)
    summary["_m"] = summary["model"].map({label: i for i, label in enumerate(MODELS.values())})
    return (
        summary.sort_values(["_c", "_f", "_v", "_m"])
        .drop(columns=["_f", "_v", "_c", "_m"])
        .reset_index(drop=True)
    )


def every_seed(share: str) -> bool:
    """Whether a :func:`summarise` share such as ``"3/3"`` says the claim held for every seed where
    it is testable.

    Example:
        >>> every_seed("3/3"), every_seed("2/3"), every_seed("not testable")
        (True, False, False)
    """
    if "/" not in share:
        return False
    held, testable = (int(x) for x in share.split("/"))
    return testable > 0 and held == testable
