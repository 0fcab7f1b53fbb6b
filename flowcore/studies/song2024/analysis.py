r"""The Song et al. (2024) study's tables: the linear experiment in closed form, live checks of the
linear theorems against numerical optimisation, and the thesis's families with a KLJ-trained flow.

The linear experiment draws, per replicate, a training set of :math:`N` points from the thesis's
Gaussian recipe at :math:`d` = ``linear_dim`` with a fraction :math:`r` replaced by outliers
:math:`x + \sigma_o\varepsilon`, fits the maximum-likelihood and the KL-regularised linear flow
(:math:`M^{-1} = (NT + \alpha G)/(N + \alpha)`, :math:`G = gI`) and scores each by the closed-form
:math:`\mathrm{KL}(p\,\|\,\hat p)` to the clean truth. Below :math:`N = d + 1` the MLE does not exist.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from flowcore import rng
from flowcore.gaussians import GaussianRecipe, training_gaussian
from flowcore.studies.song2024 import linear
from flowcore.studies.song2024.config import SongConfig

__all__ = ["linear_grid", "linear_summary", "theorem_checks", "thesis_with_klj"]


def linear_grid(config: SongConfig) -> pd.DataFrame:
    """One row per (N, r, α, replicate): the closed-form KL(truth ‖ fit) in nats (inf where the fit
    does not exist: the MLE with N ≤ d)."""
    d = config.linear_dim
    p = training_gaussian(max(d, 2), GaussianRecipe(), seed=0) if d >= 2 else None
    mean = p.mean.numpy() if p is not None else np.zeros(1)
    cov = p.cov.numpy() if p is not None else np.eye(1)
    G = config.prior_scale * np.eye(d)
    rows = []
    for n in config.linear_n:
        for r in config.outlier_fractions:
            for rep in range(config.replicates):
                g = rng.numpy_stream(rng.derived_seed(config.replicates, "song linear", n, r, rep))
                x = g.multivariate_normal(mean, cov, size=n)
                n_out = int(round(r * n))
                if n_out:
                    x[:n_out] += config.outlier_scale * g.standard_normal((n_out, d))
                for alpha in config.alphas:
                    try:
                        fit = linear.mle(x) if alpha == 0 else linear.regularised(x, alpha, "kl", G)
                        kl = linear.kl_gaussian(mean, cov, fit.mean, fit.cov)
                    except ValueError:
                        kl = np.inf
                    rows.append({"N": n, "N/d": n / d, "r": r, "α": alpha, "replicate": rep, "KL(p‖fit)": kl})
    return pd.DataFrame(rows)


def linear_summary(grid: pd.DataFrame) -> pd.DataFrame:
    """Per (N, r, α): the median KL over replicates (robust to the heavy right tail at small N) and
    the share of replicates where the fit exists."""
    def one(g: pd.DataFrame) -> pd.Series:
        finite = np.isfinite(g["KL(p‖fit)"])
        return pd.Series({"median KL": float(g["KL(p‖fit)"].median()) if finite.all() else float("inf"), "exists": float(finite.mean())})

    return grid.groupby(["N", "N/d", "r", "α"])[["KL(p‖fit)"]].apply(one).reset_index()


def theorem_checks(d: int = 3, n: int = 40, alpha: float = 5.0, seed: int = 0) -> pd.DataFrame:
    """Each closed form against L-BFGS on the objective as :mod:`~flowcore.studies.song2024.linear`
    writes it, computed live: the largest relative error of M = UUᵀ and of b, and the objective at the
    printed sign of b (+Uᵀx̄) minus at the derived one (−Uᵀx̄)."""
    g = rng.numpy_stream(rng.derived_seed(seed, "song theorem checks"))
    A = g.standard_normal((d, d))
    x = g.standard_normal((n, d)) @ A.T + g.standard_normal(d)
    G = np.eye(d)
    rows = []
    for label, kind, a in (("Theorem 1 (MLE)", "kl", 0.0), ("L2-regularised", "l2", alpha), ("Theorem 3 / Eq. 7 (KL)", "kl", alpha)):
        fit = linear.mle(x) if a == 0 else linear.regularised(x, a, kind, G if kind == "kl" else None)

        def f(v):
            return linear.objective(v[: d * d].reshape(d, d), v[d * d :], x, a, kind, G if kind == "kl" else None)

        start = np.concatenate([np.eye(d).ravel(), np.zeros(d)])
        res = minimize(f, start, method="L-BFGS-B", options={"maxiter": 5000, "maxfun": 50000, "ftol": 1e-14, "gtol": 1e-10})
        U = res.x[: d * d].reshape(d, d)
        b = res.x[d * d :]
        M = U @ U.T
        # b is identified with U: compare the implied means −U⁻ᵀb.
        mean_opt = -np.linalg.solve(U.T, b)
        rows.append({
            "closed form": label,
            "max rel. error of M": float(np.max(np.abs(M - fit.M)) / np.max(np.abs(fit.M))),
            "max abs. error of the mean": float(np.max(np.abs(mean_opt - fit.mean))),
            "objective: closed form − L-BFGS": float(linear.objective(fit.U, fit.b, x, a, kind, G if kind == "kl" else None) - res.fun),
        })
    fit = linear.mle(x)
    printed = linear.nll(fit.U, -fit.b, x) - linear.nll(fit.U, fit.b, x)
    pseudo = linear.pseudo_sample_fit(x, alpha, G)
    kl_fit = linear.regularised(x, alpha, "kl", G)
    rows.append({"closed form": "printed sign b = +Uᵀx̄ (NLL excess)", "objective: closed form − L-BFGS": float(printed)})
    rows.append({"closed form": "Eq. 6 ≡ Eq. 7 (pseudo-samples)", "max rel. error of M": float(np.max(np.abs(pseudo.M - kl_fit.M)) / np.max(np.abs(kl_fit.M)))})
    return pd.DataFrame(rows).set_index("closed form")


def thesis_with_klj(thesis_config, dim: int, klj_weight: float, progress: bool | None = None):
    """The thesis's RealNVP at ``dim`` trained with the KLJ term (γ = ``klj_weight``), evaluated on the
    thesis's families; returns the family table (the plain flow's comes from the thesis chapters)."""
    from flowcore.studies.debruin2024.calibration import constants
    from flowcore.studies.debruin2024.evaluation import evaluate_family
    from flowcore.studies.debruin2024.training import trained_flow
    from flowcore.studies.song2024.klj import klj_term

    label = f"klj {klj_weight:g}"
    trained = trained_flow(dim, thesis_config, progress=progress, loss_terms=[klj_term(klj_weight)], loss_name=label)
    consts = constants(thesis_config)
    tables = [evaluate_family(trained, thesis_config, fam, consts, progress=progress, label=label).table for fam in thesis_config.families]
    return pd.concat(tables, ignore_index=True)
