r"""The Song et al. (2024) study's tables: the linear experiment in closed form, live checks of the
linear theorems against numerical optimisation, and the thesis's families with a KLJ-trained flow.

The linear experiment draws, per replicate, a training set of :math:`N` points from the thesis's
Gaussian recipe at :math:`d` = ``linear_dim`` with a fraction :math:`r` replaced by outliers
:math:`x + \sigma_o\varepsilon`, fits the maximum-likelihood and the KL-regularised linear flow
(:math:`M^{-1} = (NT + \alpha G)/(N + \alpha)`, :math:`G = gI`) and scores each by the closed-form
:math:`\mathrm{KL}(p\,\|\,\hat p)` to the clean truth. Below :math:`N = d + 1` the MLE does not
exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from flowcore import rng
from flowcore.gaussians import GaussianRecipe, training_gaussian
from flowcore.studies.song2024 import linear
from flowcore.studies.song2024.config import SongConfig

__all__ = [
    "linear_grid",
    "linear_summary",
    "ShrinkageHarm",
    "shrinkage_harm",
    "small_n_checks",
    "small_n_summary",
    "theorem_checks",
    "bound_cases",
    "thesis_with_klj",
    "thesis_verdicts",
]


def _truth(config: SongConfig) -> tuple[np.ndarray, np.ndarray]:
    """The clean truth of the linear experiment: the thesis's Gaussian at ``linear_dim`` (mean,
    cov)."""
    d = config.linear_dim
    p = training_gaussian(max(d, 2), GaussianRecipe(), seed=0) if d >= 2 else None
    return (p.mean.numpy(), p.cov.numpy()) if p is not None else (np.zeros(1), np.eye(1))


def _training_sets(config: SongConfig, mean: np.ndarray, cov: np.ndarray, max_n: int | None = None):
    """Every training set of the linear experiment (with N ≤ ``max_n`` if given):
    ``(N, r, replicate, X)``, X with ``round(r·N)`` rows moved by ``outlier_scale``·ε (the same sets
    for every α, and for every function that reads them)."""
    for n in (n for n in config.linear_n if max_n is None or n <= max_n):
        for r in config.outlier_fractions:
            for rep in range(config.replicates):
                g = rng.numpy_stream(rng.derived_seed(config.replicates, "song linear", n, r, rep))
                x = g.multivariate_normal(mean, cov, size=n)
                n_out = int(round(r * n))
                if n_out:
                    x[:n_out] += config.outlier_scale * g.standard_normal(
                        (n_out, config.linear_dim)
                    )
                yield n, r, rep, x


def linear_grid(config: SongConfig) -> pd.DataFrame:
    """One row per (N, r, α, replicate): the closed-form KL(truth ‖ fit) in nats (inf where the fit
    does not exist: the MLE with N ≤ d)."""
    mean, cov = _truth(config)
    G = config.prior_scale * np.eye(config.linear_dim)
    rows = []
    for n, r, rep, x in _training_sets(config, mean, cov):
        for alpha in config.alphas:
            try:
                fit = linear.mle(x) if alpha == 0 else linear.regularised(x, alpha, "kl", G)
                kl = linear.kl_gaussian(mean, cov, fit.mean, fit.cov)
            except ValueError:
                kl = np.inf
            rows.append(
                {
                    "N": n,
                    "N/d": n / config.linear_dim,
                    "r": r,
                    "α": alpha,
                    "replicate": rep,
                    "KL(p‖fit)": kl,
                }
            )
    return pd.DataFrame(rows)


def small_n_checks(
    config: SongConfig, scales: tuple[float, ...] = linear.STRETCHES
) -> pd.DataFrame:
    r"""Per training set of the linear experiment with N ≤ d (every r, every replicate): the
    numerical rank of T, the fall of the NLL along T's least-variance direction at each stretch s
    (:func:`~flowcore.studies.song2024.linear.null_direction_fall`; ``log s`` when that direction is
    a null direction, i.e. no MLE), and the KL to the truth of the prior alone,
    :math:`\mathcal N(\bar x, G)` (the KL-regularised fit's limit α → ∞)."""
    mean, cov = _truth(config)
    d = config.linear_dim
    G = config.prior_scale * np.eye(d)
    rows = []
    for n, r, rep, x in _training_sets(config, mean, cov, max_n=d):
        falls = linear.null_direction_fall(x, scales)
        rows.append(
            {
                "N": n,
                "r": r,
                "replicate": rep,
                "rank T": linear.covariance_rank(x),
                **{f"NLL fall at s = {s:g}": f for s, f in zip(scales, falls)},
                "KL(p‖prior)": linear.kl_gaussian(mean, cov, x.mean(axis=0), G),
            }
        )
    return pd.DataFrame(rows)


def linear_summary(grid: pd.DataFrame) -> pd.DataFrame:
    """Per (N, r, α): the median KL over replicates (robust to the heavy right tail at small N) and
    the share of replicates where the fit exists."""

    def one(g: pd.DataFrame) -> pd.Series:
        finite = np.isfinite(g["KL(p‖fit)"])
        return pd.Series(
            {
                "median KL": float(g["KL(p‖fit)"].median()) if finite.all() else float("inf"),
                "exists": float(finite.mean()),
            }
        )

    return grid.groupby(["N", "N/d", "r", "α"])[["KL(p‖fit)"]].apply(one).reset_index()


@dataclass(frozen=True)
class ShrinkageHarm:
    """Where shrinking towards G hurts (:func:`shrinkage_harm`): ``worse`` of the ``cells`` with
    N > d and α > 0 have a larger median KL than the MLE at the same N and r; ``excess`` is the
    largest such excess (nats) and ``N``, ``r``, ``alpha`` its cell (``None`` when ``worse`` is
    0)."""

    worse: int
    cells: int
    excess: float | None = None
    N: int | None = None
    r: float | None = None
    alpha: float | None = None


def shrinkage_harm(summary: pd.DataFrame, d: int) -> ShrinkageHarm:
    """Among the cells of :func:`linear_summary` with N > ``d`` (where the MLE exists) and α > 0:
    how many have a larger median KL(p‖fit) than the MLE (α = 0) at the same N and r, and the
    largest such excess with its cell.

    Example:
        >>> summary = pd.DataFrame({"N": [20] * 3 + [40] * 3, "r": 0.0, "α": [0.0, 1.0, 10.0] * 2,
        ...                         "median KL": [1.0, 0.5, 1.5, 0.4, 0.3, 0.2]})
        >>> shrinkage_harm(summary, 10)
        ShrinkageHarm(worse=1, cells=4, excess=0.5, N=20, r=0.0, alpha=10.0)
    """
    hurts = summary[(summary["N"] > d) & (summary["α"] > 0)]
    mle = summary[(summary["N"] > d) & (summary["α"] == 0)].set_index(["N", "r"])["median KL"]
    if hurts.empty:
        return ShrinkageHarm(0, 0)
    worse = hurts[hurts.apply(lambda row: row["median KL"] > mle.loc[(row["N"], row["r"])], axis=1)]
    if worse.empty:
        return ShrinkageHarm(0, len(hurts))
    excess = worse["median KL"] - worse.apply(lambda row: mle.loc[(row["N"], row["r"])], axis=1)
    top = worse.loc[excess.idxmax()]
    return ShrinkageHarm(
        len(worse),
        len(hurts),
        float(excess.max()),
        int(top["N"]),
        float(top["r"]),
        float(top["α"]),
    )


def small_n_summary(small: pd.DataFrame) -> pd.DataFrame:
    """Per N of :func:`small_n_checks`: the largest rank of T, the smallest and largest NLL fall at
    each stretch, and the median KL of the prior alone.

    Example:
        >>> small = pd.DataFrame({"N": [2, 2, 3], "rank T": [1, 1, 2],
        ...                       "NLL fall at s = 10": [2.3, 2.3, 2.2],
        ...                       "KL(p‖prior)": [4.0, 6.0, 3.0]})
        >>> small_n_summary(small).loc[2].tolist()
        [1.0, 2.3, 2.3, 5.0]
    """
    falls = [c for c in small.columns if c.startswith("NLL fall")]
    return small.groupby("N").agg(
        {"rank T": "max", **{c: ["min", "max"] for c in falls}, "KL(p‖prior)": "median"}
    )


def theorem_checks(d: int = 3, n: int = 40, alpha: float = 5.0, seed: int = 0) -> pd.DataFrame:
    """Each closed form against L-BFGS on the objective as :mod:`~flowcore.studies.song2024.linear`
    writes it, computed live: whether L-BFGS reports convergence, the largest relative error of
    M = UUᵀ and of the mean, the objective at the closed form minus at L-BFGS's optimum, and the NLL
    at the printed sign of b (+Uᵀx̄) minus at the derived one (−Uᵀx̄)."""
    g = rng.numpy_stream(rng.derived_seed(seed, "song theorem checks"))
    A = g.standard_normal((d, d))
    x = g.standard_normal((n, d)) @ A.T + g.standard_normal(d)
    G = np.eye(d)
    rows = []
    for label, kind, a in (
        ("Theorem 1 (MLE)", "kl", 0.0),
        ("L2-regularised", "l2", alpha),
        ("Theorem 3 / Eq. 7 (KL)", "kl", alpha),
    ):
        fit = (
            linear.mle(x) if a == 0 else linear.regularised(x, a, kind, G if kind == "kl" else None)
        )

        def f(v):
            return linear.objective(
                v[: d * d].reshape(d, d), v[d * d :], x, a, kind, G if kind == "kl" else None
            )

        start = np.concatenate([np.eye(d).ravel(), np.zeros(d)])
        res = minimize(
            f,
            start,
            method="L-BFGS-B",
            options={"maxiter": 5000, "maxfun": 50000, "ftol": 1e-14, "gtol": 1e-10},
        )
        U = res.x[: d * d].reshape(d, d)
        b = res.x[d * d :]
        M = U @ U.T
        # b is identified with U: compare the implied means −U⁻ᵀb.
        mean_opt = -np.linalg.solve(U.T, b)
        rows.append(
            {
                "closed form": label,
                "L-BFGS converged": bool(res.success),
                "max rel. error of M": float(np.max(np.abs(M - fit.M)) / np.max(np.abs(fit.M))),
                "max abs. error of the mean": float(np.max(np.abs(mean_opt - fit.mean))),
                "objective: closed form − L-BFGS": float(
                    linear.objective(fit.U, fit.b, x, a, kind, G if kind == "kl" else None)
                    - res.fun
                ),
            }
        )
    fit = linear.mle(x)
    printed = linear.nll(fit.U, -fit.b, x) - linear.nll(fit.U, fit.b, x)
    pseudo = linear.pseudo_sample_fit(x, alpha, G)
    kl_fit = linear.regularised(x, alpha, "kl", G)
    rows.append(
        {
            "closed form": "printed sign b = +Uᵀx̄ (NLL excess)",
            "objective: closed form − L-BFGS": float(printed),
        }
    )
    rows.append(
        {
            "closed form": "Eq. 6 ≡ Eq. 7 (pseudo-samples)",
            "max rel. error of M": float(
                np.max(np.abs(pseudo.M - kl_fit.M)) / np.max(np.abs(kl_fit.M))
            ),
        }
    )
    return pd.DataFrame(rows).set_index("closed form")


def bound_cases(n_nets: int = 6, n_points: int = 64, seed: int = 0) -> list[tuple[float, float]]:
    """Eq. 10 on ``n_nets`` random ReLU st-networks (3 → 16 → 16 → 6, PyTorch's initialisation, net
    i seeded by ``seed + i``), each at ``n_points`` standard-normal inputs: the pairs
    ``(‖∂t/∂x_A‖²_F, Π_k ‖W_k‖²_F)`` of :func:`~flowcore.studies.song2024.klj.frobenius_bound`.

    Example:
        >>> [lhs <= rhs for lhs, rhs in bound_cases(2)]
        [True, True]
    """
    import torch

    from flowcore.studies.song2024.klj import frobenius_bound

    pairs = []
    for i in range(seed, seed + n_nets):
        with rng.seeded(i):
            net = torch.nn.Sequential(
                torch.nn.Linear(3, 16),
                torch.nn.ReLU(),
                torch.nn.Linear(16, 16),
                torch.nn.ReLU(),
                torch.nn.Linear(16, 6),
            )
        lhs, rhs = frobenius_bound(net, torch.randn(n_points, 3, generator=rng.generator(i)))
        pairs.append((float(lhs), float(rhs)))
    return pairs


def thesis_with_klj(thesis_config, dim: int, klj_weight: float, progress: bool | None = None):
    """The thesis's RealNVP at ``dim`` trained with the KLJ term (γ = ``klj_weight``), evaluated on
    the thesis's families; returns the family table (the plain flow's comes from the thesis
    chapters)."""
    from flowcore.studies.debruin2024.calibration import constants
    from flowcore.studies.debruin2024.evaluation import evaluate_family
    from flowcore.studies.debruin2024.training import trained_flow
    from flowcore.studies.song2024.klj import klj_term

    label = f"klj {klj_weight:g}"
    trained = trained_flow(
        dim, thesis_config, progress=progress, loss_terms=[klj_term(klj_weight)], loss_name=label
    )
    consts = constants(thesis_config)
    tables = [
        evaluate_family(trained, thesis_config, fam, consts, progress=progress, label=label).table
        for fam in thesis_config.families
    ]
    return pd.concat(tables, ignore_index=True)


def thesis_verdicts(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The verdict on each of the thesis's failure claims that read the family tables (C5–C11, in
    :data:`~flowcore.studies.debruin2024.claims.FAMILY_CHECKS` order), judged by
    :func:`~flowcore.studies.debruin2024.claims.assess` on each table of ``tables`` (label → family
    table, e.g. the plain and the KLJ-trained flow): one row per claim, one column per label."""
    from flowcore.studies.debruin2024 import claims as thesis_claims

    failure = [c for c in thesis_claims.FAMILY_CHECKS if thesis_claims.KIND[c] == "failure"]
    return pd.DataFrame(
        {
            label: {
                c: str(thesis_claims.assess((thesis_claims.FAMILY_CHECKS[c][0], table)).verdict)
                for c in failure
            }
            for label, table in tables.items()
        }
    )
