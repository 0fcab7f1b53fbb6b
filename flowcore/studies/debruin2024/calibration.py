r"""Pinning the thesis's unstated constants to its model-free numbers (§8, Fig. 13).

The thesis does not give the perturbation strengths :math:`\alpha, \beta` (Eq. 21) nor how its
outlier distribution is drawn, but it does report what the *true* density achieves as a bound
detector at :math:`D = 50`, TPR = 0.975, and those rates depend only on the distributions:

- on :math:`\Lambda^\delta`, TNR 0.38 at :math:`(s, t) = (1, 0)` and 0.91 at :math:`(0.25, 0.5)`;
- on :math:`\Lambda^{out}`, TNR 0.98 on average over the 24 :math:`(s, t)`, with a minimum of 0.96.

:func:`calibrate_perturbation` and :func:`calibrate_outlier` choose the constants that come closest,
by a grid search refined with Nelder–Mead on common random numbers
(:func:`~flowcore.studies.debruin2024.families.truth_tnr`), and report the search, the residuals and
the rates re-measured on fresh draws.

Each rate is a membership test of :math:`M = \|b + \sqrt\ell \circ z\|^2` (the quadratic form of
:class:`~flowcore.studies.debruin2024.families.QuadraticForm`) against the :math:`\chi^2_D` band, on
thousands of candidate distributions. They run as matrix products of the draws with the whole grid
(:func:`~flowcore.studies.debruin2024.families.outside_rates`,
:meth:`~flowcore.studies.debruin2024.families.QuadraticForm.affine_rates`), not one draw matrix per
candidate. Every candidate keeps its own factorisation, exactly as one test at a time computed it
(the draws :math:`z` pair with the same eigenvectors), so only the rounding of :math:`M` changes, by
about :math:`10^{-16}` of its terms (at the default profile's search no draw comes within
:math:`10^8` times that of the band's edges): the counts, hence the rates, the search and the
constants are those of the one-at-a-time code (``tests/unit/debruin2024/test_batched_statistics.py``
checks the ``ci`` and ``default`` profiles' whole calibrations bit for bit). The factorisations
themselves (torch's MKL ``eigh`` and triangular solves) change in their last bits with the number of
threads and the CPU, and the constants with them, as they always did.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from flowcore.cache import cached
from flowcore.studies.debruin2024.families import (
    OutlierRecipe,
    Perturbation,
    QuadraticForm,
    chi2_band,
    outlier_base,
    outside_rates,
    perturbation_direction,
    perturbed,
    standard_normal_draws,
)
from flowcore.gaussians import GaussianRecipe, training_gaussian
from flowcore.studies.debruin2024.config import ThesisConfig
from flowcore.validation import check_choice, check_int, check_probability

__all__ = [
    "Targets",
    "Calibration",
    "calibrate_perturbation",
    "calibrate_outlier",
    "outlier_rates",
    "calibration",
    "Constants",
    "constants",
]


@dataclass(frozen=True)
class Targets:
    """The thesis's ground-truth rates (§8.1–8.2) and the setting they were reported at."""

    dim: int = 50
    tpr: float = 0.975
    perturbed: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.38), (0.25, 0.5, 0.91))
    outlier_mean: float = 0.98
    outlier_min: float = 0.96

    def __post_init__(self):
        check_int("calibration_dim", self.dim, minimum=2)
        check_probability("tpr", self.tpr)


@dataclass
class Calibration:
    """A calibration's outcome.

    Attributes:
        values: The chosen constants, e.g. ``{"alpha": …, "beta": …}``.
        achieved: Each target's name, its target value and the value reached on the search draws.
        check: The same rates re-measured on fresh draws (``n_check`` of them), with standard
            errors.
        grid: The coarse search grid: one row per candidate with its rates and loss.
        residual: Root-mean-square distance between targets and the fresh-draw rates.
    """

    values: dict[str, float]
    achieved: pd.DataFrame
    check: pd.DataFrame
    grid: pd.DataFrame
    residual: float
    meta: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        def frame(df: pd.DataFrame) -> dict:
            return {
                "columns": list(df.columns),
                "rows": [list(map(_plain, r)) for r in df.itertuples(index=False)],
            }

        return {
            "values": self.values,
            "achieved": frame(self.achieved),
            "check": frame(self.check),
            "grid": frame(self.grid),
            "residual": self.residual,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, entry: dict) -> Calibration:
        def frame(d: dict) -> pd.DataFrame:
            return pd.DataFrame(d["rows"], columns=d["columns"])

        return cls(
            dict(entry["values"]),
            frame(entry["achieved"]),
            frame(entry["check"]),
            frame(entry["grid"]),
            float(entry["residual"]),
            dict(entry["meta"]),
        )


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _refine(loss, start: np.ndarray) -> np.ndarray:
    """Nelder–Mead from the best grid point, on constants kept ≥ 0 (the loss sees ``abs``)."""
    result = minimize(
        lambda v: loss(np.abs(v)),
        start,
        method="Nelder-Mead",
        options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 200},
    )
    best = np.abs(result.x)
    return best if loss(best) <= loss(start) else start


def calibrate_perturbation(
    recipe: GaussianRecipe,
    seed: int,
    targets: Targets = Targets(),
    n_draws: int = 20_000,
    n_check: int = 200_000,
) -> Calibration:
    r"""Choose :math:`\alpha, \beta` so that the true density's TNR on :math:`q^\delta(s, t)` meets
    ``targets.perturbed``.

    Loss: the sum of squared differences between the rates and their targets. Each candidate
    :math:`(\alpha, \beta)` and target :math:`(s, t)` is its own
    :class:`~flowcore.studies.debruin2024.families.QuadraticForm` (its covariance
    :math:`s^2\Sigma_p + \alpha I` factorised as one test at a time did, so the draws meet the
    same eigenvectors; :math:`\beta` moves only the mean, so the grid factorises once per
    :math:`(\alpha, s)`); the rates of the whole coarse grid (11 × 11 candidates × the targets)
    come from one :func:`~flowcore.studies.debruin2024.families.outside_rates`, those of a
    Nelder–Mead step from another.
    """
    p = training_gaussian(targets.dim, recipe, seed)
    u = perturbation_direction(targets.dim, seed)
    z = standard_normal_draws(n_draws, targets.dim, seed)
    z_squared = z * z
    band = chi2_band(targets.dim, targets.tpr)

    def forms(alpha: float, beta: float) -> list[QuadraticForm]:
        pert = Perturbation(float(alpha), float(beta))
        return [QuadraticForm(p, perturbed(p, s, t, pert, u)) for s, t, _ in targets.perturbed]

    def rates(alpha: float, beta: float, draws: np.ndarray, squared=None) -> list[float]:
        return outside_rates(forms(alpha, beta), band, draws, squared).tolist()

    goal = np.array([target for *_, target in targets.perturbed])
    losses: dict[tuple[float, float], float] = {}  # Nelder–Mead asks for some points twice

    def loss(v) -> float:
        key = (float(v[0]), float(v[1]))
        if key not in losses:
            losses[key] = float(np.sum((np.array(rates(*key, z, z_squared)) - goal) ** 2))
        return losses[key]

    alphas = np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 10)])
    betas = np.linspace(0.0, 1.5, 11)
    candidates = [(a, b) for a in alphas for b in betas]
    grid_forms = []
    for a in alphas:
        # β moves only the mean (Eq. 21): one factorisation per (α, s) serves every β.
        bases = forms(a, 0.0)
        for b in betas:
            pert = Perturbation(float(a), float(b))
            grid_forms += [
                base.with_mean(p.mean + t + pert.beta * u)
                for base, (_, t, _) in zip(bases, targets.perturbed)
            ]
    every = outside_rates(grid_forms, band, z, z_squared).reshape(
        len(candidates), len(targets.perturbed)
    )
    rows = []
    for (a, b), r in zip(candidates, every.tolist()):
        rows.append([a, b, *r, float(np.sum((np.array(r) - goal) ** 2))])
    names = [f"TNR at (s={s:g}, t={t:g})" for s, t, _ in targets.perturbed]
    grid = pd.DataFrame(rows, columns=["alpha", "beta", *names, "loss"])
    start = grid.loc[grid["loss"].idxmin(), ["alpha", "beta"]].to_numpy(dtype=float)
    alpha, beta = _refine(loss, start)

    reached = rates(alpha, beta, z, z_squared)
    fresh_z = standard_normal_draws(n_check, targets.dim, seed + 1)
    fresh = rates(alpha, beta, fresh_z)
    achieved = pd.DataFrame({"target": names, "thesis": goal, "reached": reached})
    check = pd.DataFrame(
        {
            "target": names,
            "thesis": goal,
            "fresh draws": fresh,
            "SE": [math.sqrt(r * (1 - r) / n_check) for r in fresh],
        }
    )
    residual = float(np.sqrt(np.mean((np.array(fresh) - goal) ** 2)))
    return Calibration(
        {"alpha": float(alpha), "beta": float(beta)},
        achieved,
        check,
        grid,
        residual,
        {"dim": targets.dim, "tpr": targets.tpr, "n_draws": n_draws, "n_check": n_check},
    )


def outlier_rates(p, base, scales, shifts, tpr: float, draws: np.ndarray) -> np.ndarray:
    """The true density's TNR on every member ``base.affine(s, t)``, shape
    ``(len(scales), len(shifts))``: one factorisation of ``base`` and one product of the draws'
    projections with all the members
    (:meth:`~flowcore.studies.debruin2024.families.QuadraticForm.affine_rates`)."""
    law, band = QuadraticForm(p, base), chi2_band(p.dim, tpr)
    scales = np.asarray(scales, dtype=np.float64)[:, None]
    return law.affine_rates(band, law.projections(draws), scales, np.asarray(shifts, dtype=float))


def calibrate_outlier(
    recipe: GaussianRecipe,
    seed: int,
    scales,
    shifts,
    targets: Targets = Targets(),
    n_draws: int = 20_000,
    n_check: int = 200_000,
) -> Calibration:
    r"""Choose the outlier recipe :math:`(m, c)` so that the true density's TNR over
    :math:`\Lambda^{out}` has the thesis's mean and minimum.

    Loss: :math:`(\overline{\mathrm{TNR}} - 0.98)^2 + (\min \mathrm{TNR} - 0.96)^2`.

    :math:`\Sigma_{out} = c\,\Sigma_1` and :math:`\mu_{out} = \mu_p + m\xi` rescale one
    factorisation at :math:`(m, c) = (1, 1)`: :math:`b \to m b`, :math:`\sqrt\ell \to \sqrt c
    \sqrt\ell`, then each member :math:`(s, t)` is its affine variant. So three projections of the
    draws serve the whole search, and the coarse grid (11 × 7 candidates × every member) is one
    :meth:`~flowcore.studies.debruin2024.families.QuadraticForm.affine_rates`.
    """
    p = training_gaussian(targets.dim, recipe, seed)
    z = standard_normal_draws(n_draws, targets.dim, seed)
    goal = np.array([targets.outlier_mean, targets.outlier_min])

    # Σ_out = c·Σ₁ and μ_out = μ_p + m·ξ: factorise once at (m, c) = (1, 1) and rescale.
    unit = QuadraticForm(p, outlier_base(p, recipe, OutlierRecipe(1.0, 1.0), seed))
    band = chi2_band(targets.dim, targets.tpr)
    projected = unit.projections(z)
    member_scales = np.asarray(scales, dtype=np.float64)[:, None]
    member_shifts = np.asarray(shifts, dtype=np.float64)

    def spread(cov_scale) -> np.ndarray:
        return np.sqrt(np.maximum(cov_scale, 1e-12))

    def summary(offset: float, cov_scale: float, projections: np.ndarray) -> np.ndarray:
        r = unit.affine_rates(
            band, projections, member_scales, member_shifts, offset, spread(cov_scale)
        ).ravel()
        return np.array([r.mean(), r.min()])

    def loss(v) -> float:
        return float(np.sum((summary(v[0], v[1], projected) - goal) ** 2))

    offsets = np.linspace(0.0, 2.0, 11)
    cov_scales = np.geomspace(0.1, 4.0, 7)
    every = unit.affine_rates(
        band,
        projected,
        member_scales,
        member_shifts,
        offsets[:, None, None, None],
        spread(cov_scales)[:, None, None],
    )  # (offset, cov_scale, s, t)
    rows = []
    for i, m in enumerate(offsets):
        for j, c in enumerate(cov_scales):
            r = every[i, j].ravel()
            r = np.array([r.mean(), r.min()])
            rows.append([m, c, *r, float(np.sum((r - goal) ** 2))])
    grid = pd.DataFrame(
        rows, columns=["outlier_offset", "outlier_cov_scale", "mean TNR", "min TNR", "loss"]
    )
    start = grid.loc[grid["loss"].idxmin(), ["outlier_offset", "outlier_cov_scale"]].to_numpy(
        dtype=float
    )
    offset, cov_scale = _refine(loss, start)

    names = ["mean TNR over Λ^out", "min TNR over Λ^out"]
    reached = summary(offset, cov_scale, projected)
    fresh_z = standard_normal_draws(n_check, targets.dim, seed + 1)
    fresh = summary(offset, cov_scale, unit.projections(fresh_z))
    achieved = pd.DataFrame({"target": names, "thesis": goal, "reached": reached})
    check = pd.DataFrame(
        {
            "target": names,
            "thesis": goal,
            "fresh draws": fresh,
            "SE": [math.sqrt(max(r * (1 - r), 1e-12) / n_check) for r in fresh],
        }
    )
    residual = float(np.sqrt(np.mean((fresh - goal) ** 2)))
    return Calibration(
        {"outlier_offset": float(offset), "outlier_cov_scale": float(cov_scale)},
        achieved,
        check,
        grid,
        residual,
        {"dim": targets.dim, "tpr": targets.tpr, "n_draws": n_draws, "n_check": n_check},
    )


# --- the constants in effect for a run, calibrated once per recipe and seed (cached) -------------


def calibration(config: ThesisConfig, which: str) -> tuple[Calibration, bool]:
    """The cached calibration ``which`` ("perturbation" or "outlier") for ``config``'s recipe and
    seed."""
    which = check_choice("which", which, ("perturbation", "outlier"))
    targets = Targets(dim=config.calibration_dim, tpr=0.975)
    n = config.calibration_draws
    # The truth's rates depend on Σ_p and on shifts relative to μ_p, never on μ_p itself (its draw
    # comes last from the seed's stream, so Σ_p does not change with mean_scale): one calibration
    # serves every mean_scale.
    recipe = dataclasses.replace(config.recipe, mean_scale=1.0)
    spec = {"which": which, "recipe": recipe, "seed": config.seed, "targets": targets, "n_draws": n}
    if which == "outlier":
        spec.update(scales=config.scales, shifts=config.shifts)

    def compute() -> dict:
        if which == "perturbation":
            return calibrate_perturbation(
                recipe, config.seed, targets, n_draws=n, n_check=10 * n
            ).as_dict()
        return calibrate_outlier(
            recipe, config.seed, config.scales, config.shifts, targets, n_draws=n, n_check=10 * n
        ).as_dict()

    entry, from_cache = cached("calibration", spec, compute)
    return Calibration.from_dict(entry), from_cache


@dataclass(frozen=True)
class Constants:
    """The perturbation and outlier constants in effect, and where each came from."""

    perturbation: Perturbation
    outlier: OutlierRecipe
    source: dict[str, str]


def constants(config: ThesisConfig) -> Constants:
    """α, β and the outlier recipe: the config's values where given, else the cached
    calibration's."""
    given = {
        k: getattr(config, k) for k in ("alpha", "beta", "outlier_offset", "outlier_cov_scale")
    }
    values, source = {}, {}
    for which, names in (
        ("perturbation", ("alpha", "beta")),
        ("outlier", ("outlier_offset", "outlier_cov_scale")),
    ):
        if any(given[n] is None for n in names):
            calibrated, _ = calibration(config, which)
        for name in names:
            if given[name] is None:
                values[name], source[name] = (
                    calibrated.values[name],
                    f"calibrated at D = {config.calibration_dim}",
                )
            else:
                values[name], source[name] = float(given[name]), "parameter"
    return Constants(
        Perturbation(values["alpha"], values["beta"]),
        OutlierRecipe(values["outlier_offset"], values["outlier_cov_scale"]),
        source,
    )
