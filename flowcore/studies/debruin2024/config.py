r"""The thesis's parameters: one validated config per run, built from the ``debruin2024`` section of a profile.

Every field's default is the ``default`` profile's value (``tests/unit/test_config.py`` checks it);
the profiles are the one source of settings, these defaults only serve direct use of the library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from flowcore.config import FlowConfig, StudyConfig
from flowcore.devices import resolve_device
from flowcore.gaussians import GaussianRecipe
from flowcore.resources import Estimate, Need
from flowcore.studies.debruin2024.families import FAMILIES
from flowcore.train import TrainConfig
from flowcore.validation import (
    assign_checked,
    check_choice,
    check_int,
    check_int_list,
    check_non_negative,
    check_positive,
    check_probability,
    check_real_list,
)

__all__ = ["SCALES", "SHIFTS", "Sweep", "Regimes", "ThesisConfig"]

#: The thesis's scales S and shifts T (§5.1).
SCALES = (0.25, 0.5, 0.75, 1.0, 1.25, 1.75)
SHIFTS = (0.0, 0.25, 0.5, 0.75)


def _check_seeds(name: str, seeds) -> tuple[int, ...]:
    """Seeds of a sweep: non-negative integers, at least 3 distinct (a spread over seeds needs them)."""
    checked = check_int_list(name, seeds, minimum=0)
    if len(set(checked)) < 3:
        raise ValueError(f"{name} must hold at least 3 distinct seeds, got {list(seeds)}")
    return checked


@dataclass(frozen=True)
class Sweep:
    """The sensitivity sweep's settings, one factor at a time around the base configuration
    (flat names carry the prefix ``sweep_``).

    Attributes:
        dim: The single dimension D of the sweep.
        seeds: Seeds per setting (at least 3); each seed draws its own p, data and initialisation.
        n_train: Training-set sizes.
        max_epochs: Training lengths (maximum epochs; early stopping still applies).
        capacity: Flow capacities as (couplings, width); the st-network has two hidden layers of width.
        eig_min: Smallest eigenvalues of Σ_p (largest stays at the base's), i.e. condition numbers.
        n_test: Test-set size per distribution in the sweep.

    Example:
        >>> Sweep(seeds=[0, 1])
        Traceback (most recent call last):
        ...
        ValueError: sweep_seeds must hold at least 3 distinct seeds, got [0, 1]
    """

    dim: int = 20
    seeds: tuple[int, ...] = (0, 1, 2)
    n_train: tuple[int, ...] = (1_000, 10_000, 100_000)
    max_epochs: tuple[int, ...] = (3, 10, 40)
    capacity: tuple[tuple[int, int], ...] = ((4, 32), (8, 64), (8, 128))
    eig_min: tuple[float, ...] = (0.1, 0.01, 0.001)
    n_test: int = 20_000

    def __post_init__(self):
        seeds = _check_seeds("sweep_seeds", self.seeds)
        pairs = self.capacity
        if not isinstance(pairs, (list, tuple)) or not pairs or any(not isinstance(c, (list, tuple)) or len(c) != 2 for c in pairs):
            raise ValueError(f"sweep_capacity must be a list of [couplings, width] pairs, got {self.capacity!r}")
        assign_checked(
            self,
            dim=check_int("sweep_dim", self.dim, minimum=2),
            seeds=seeds,
            n_train=check_int_list("sweep_n_train", self.n_train, minimum=100),
            max_epochs=check_int_list("sweep_max_epochs", self.max_epochs, minimum=1),
            capacity=tuple(tuple(check_int_list("sweep_capacity", c, minimum=1)) for c in self.capacity),
            eig_min=check_real_list("sweep_eig_min", self.eig_min, positive=True),
            n_test=check_int("sweep_n_test", self.n_test, minimum=100),
        )


@dataclass(frozen=True)
class Regimes:
    """The search for the regimes where the thesis's claims hold: a space-filling design over the
    settings the thesis leaves open (flat names carry the prefix ``regime_``; see
    :mod:`flowcore.studies.debruin2024.regimes` for the factors).

    Attributes:
        points: Design points (at least 3, the most levels of a factor).
        seeds: Seeds per point (at least 3); each draws its own p, data, weights, and calibrates its
            own α, β and outlier recipe.
        dims: The levels of the factor D.
        n_train: The levels of the training-set size.
        mean_scales: The levels of the scale of μ_p.
        max_epochs: Epochs: the budget of a fixed-budget run, the cap of an early-stopping one.
        n_val: Validation-set size.
        n_test: Test-set size per distribution.
        calibration_draws: Draws per rate in each run's calibration of α, β and the outlier recipe.
        design_seed: Seed of the design.

    Example:
        >>> Regimes(points=2)
        Traceback (most recent call last):
        ...
        ValueError: regime_points must be an integer ≥ 3, got 2
    """

    points: int = 12
    seeds: tuple[int, ...] = (0, 1, 2)
    dims: tuple[int, ...] = (20, 50)
    n_train: tuple[int, ...] = (1_000, 10_000)
    mean_scales: tuple[float, ...] = (1.0, 4.0)
    max_epochs: int = 20
    n_val: int = 2_000
    n_test: int = 5_000
    calibration_draws: int = 5_000
    design_seed: int = 0

    def __post_init__(self):
        seeds = _check_seeds("regime_seeds", self.seeds)
        assign_checked(
            self,
            points=check_int("regime_points", self.points, minimum=3),
            seeds=seeds,
            dims=check_int_list("regime_dims", self.dims, minimum=2),
            n_train=check_int_list("regime_n_train", self.n_train, minimum=100),
            mean_scales=check_real_list("regime_mean_scales", self.mean_scales),
            max_epochs=check_int("regime_max_epochs", self.max_epochs, minimum=1),
            n_val=check_int("regime_n_val", self.n_val, minimum=2),
            n_test=check_int("regime_n_test", self.n_test, minimum=100),
            calibration_draws=check_int("regime_calibration_draws", self.calibration_draws, minimum=100),
            design_seed=check_int("regime_design_seed", self.design_seed, minimum=0),
        )
        if any(m < 0 for m in self.mean_scales):
            raise ValueError(f"regime_mean_scales must be numbers ≥ 0, got {list(self.mean_scales)}")


@dataclass(frozen=True)
class ThesisConfig(StudyConfig):
    """Everything a chapter of the thesis study needs, validated.

    Attributes:
        dims: Dimensions D to study (each ≥ 2).
        recipe: How p is drawn.
        flow: The flow's architecture.
        train: Training settings; ``train.seed`` is the experiment's seed.
        sweep: The sensitivity sweep (flat names ``sweep_…``).
        regime: The regime search (flat names ``regime_…``).
        n_test: Test-set size N per test distribution.
        n_repeats: Number K of independent test sets for the repeated-test-set spread (≥ 2).
        scales, shifts: The sets S and T of s and t values (s > 0).
        families: Test-distribution families to evaluate.
        tpr: Target true-positive rate of the bound detector, in (0, 1).
        alpha, beta: Perturbation strengths of Λ^δ (Eq. 21); ``None``: calibrated (see
            :mod:`flowcore.studies.debruin2024.calibration`).
        outlier_offset, outlier_cov_scale: The outlier recipe of Λ^out
            (:class:`~flowcore.studies.debruin2024.families.OutlierRecipe`); ``None``: calibrated.
        calibration_dim: The dimension the calibration targets refer to (the thesis's D = 50).
        calibration_draws: Draws of each rate in the calibration's search (its check uses 10×).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        chunk_size: Samples per evaluation chunk.
        trainer: ``"single"``: each flow trained on its own (:func:`flowcore.train.fit`);
            ``"batched"``: the flows of one sweep setting (its seeds) trained together as one
            stacked model (:func:`flowcore.train_many.fit_many`), cached under keys of their own.
            The sweeps use ``"batched"``; the main chapters ``"single"``.

    Example:
        >>> config = ThesisConfig.from_params(dims=[10], n_train=100000.0)
        >>> config.train.n_train, config.dims, config.seed
        (100000, (10,), 0)
    """

    STUDY: ClassVar[str] = "debruin2024"
    SECTIONS: ClassVar[dict[str, tuple[type, str]]] = {
        "recipe": (GaussianRecipe, ""),
        "flow": (FlowConfig, ""),
        "train": (TrainConfig, ""),
        "sweep": (Sweep, "sweep_"),
        "regime": (Regimes, "regime_"),
    }

    dims: tuple[int, ...] = (10, 20, 50, 100)
    recipe: GaussianRecipe = field(default_factory=GaussianRecipe)
    flow: FlowConfig = field(default_factory=FlowConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: Sweep = field(default_factory=Sweep)
    regime: Regimes = field(default_factory=Regimes)
    n_test: int = 100_000
    n_repeats: int = 10
    scales: tuple[float, ...] = SCALES
    shifts: tuple[float, ...] = SHIFTS
    families: tuple[str, ...] = FAMILIES
    tpr: float = 0.975
    alpha: float | None = None
    beta: float | None = None
    outlier_offset: float | None = None
    outlier_cov_scale: float | None = None
    calibration_dim: int = 50
    calibration_draws: int = 20_000
    device: str = "auto"
    chunk_size: int = 4_096
    trainer: str = field(default="single", metadata={"key_default": True})

    TRAINERS: ClassVar[tuple[str, ...]] = ("single", "batched")

    def __post_init__(self):
        if not isinstance(self.families, (list, tuple)) or not self.families:
            raise ValueError(f"families must be a non-empty list drawn from {FAMILIES}, got {self.families!r}")
        constants = {}
        for name in ("alpha", "beta", "outlier_offset", "outlier_cov_scale"):
            value = getattr(self, name)
            if value is not None:
                try:
                    value = check_positive(name, value) if name == "outlier_cov_scale" else check_non_negative(name, value)
                except ValueError:
                    bound = "> 0" if name == "outlier_cov_scale" else "≥ 0"
                    raise ValueError(f"{name} must be a number {bound}, or null to calibrate it; got {value!r}") from None
            constants[name] = value
        resolve_device(self.device)
        assign_checked(
            self,
            dims=check_int_list("dims", self.dims, minimum=2),
            n_test=check_int("n_test", self.n_test, minimum=2),
            n_repeats=check_int("n_repeats", self.n_repeats, minimum=2),
            scales=check_real_list("scales", self.scales, positive=True),
            shifts=check_real_list("shifts", self.shifts),
            families=tuple(check_choice("families", f, FAMILIES) for f in self.families),
            tpr=check_probability("tpr", self.tpr),
            calibration_dim=check_int("calibration_dim", self.calibration_dim, minimum=2),
            calibration_draws=check_int("calibration_draws", self.calibration_draws, minimum=100),
            chunk_size=check_int("chunk_size", self.chunk_size, minimum=1),
            trainer=check_choice("trainer", self.trainer, self.TRAINERS),
            **constants,
        )

    @property
    def seed(self) -> int:
        """The experiment's seed (``train.seed``): it draws p, the data, the weights and the test sets."""
        return self.train.seed

    def resources(self) -> Estimate:
        """Peak memory and work of the whole study at these sizes (the heaviest of the main run, the
        sensitivity sweep and the regime search), for :func:`flowcore.resources.check_resources`.

        At the peak live together: the covariance-sized matrices of p and of the members of a family
        (each Gaussian keeps its covariance, Cholesky factor and precision: about ``4 + 3·members``
        D×D float64 matrices), the training and validation sets, the log-likelihood arrays of a family
        (three scores per member and the reference set, float64), and the calibration's draws.

        Example:
            >>> e = ThesisConfig().resources()
            >>> e.peak_bytes < 2**30, [n.drivers[0] for n in e.needs]
            (True, ['dims', 'n_train', 'n_test', 'calibration_draws'])
        """
        dim = float(max(*self.dims, self.sweep.dim, *self.regime.dims, self.calibration_dim))  # floats: a huge size gives inf, not an overflow
        members = len(self.scales) * len(self.shifts)
        n_test = float(max(self.n_test, self.sweep.n_test, self.regime.n_test))
        n_train = float(max(self.train.n_train, *self.sweep.n_train, *self.regime.n_train))
        hidden = list(self.flow.hidden)
        needs = (
            Need("covariance matrices of p and a family's members", (4 + 3 * members) * dim**2 * 8.0, ("dims", "scales", "shifts")),
            Need("training and validation sets", (n_train + self.train.n_val) * dim * 12.0, ("n_train", "n_val", "dims")),
            Need("a family's log-likelihood arrays", 3 * (members + 1) * n_test * 8.0 + 4 * self.chunk_size * dim * 8.0, ("n_test", "scales", "shifts", "chunk_size")),
            Need("the calibration's draws", 10 * self.calibration_draws * self.calibration_dim * 8.0 * 2, ("calibration_draws", "calibration_dim")),
        )

        def flow_cost(d: int, couplings: int, widths_hidden: list[int]) -> float:  # flop of one flow pass on one sample
            widths = [d // 2, *widths_hidden, 2 * (d - d // 2)]
            return 2.0 * couplings * sum(a * b for a, b in zip(widths, widths[1:]))

        def run(d: int, n_tr: int, epochs: int, n_te: int, couplings: int = self.flow.n_couplings, widths_hidden: list[int] = hidden) -> float:
            cost = flow_cost(d, couplings, widths_hidden)
            # training (forward and backward, every epoch: an upper bound under early stopping), then every
            # test set through the flow, two quadratic forms and the sampling
            return n_tr * epochs * 3 * cost + (3 * members + self.n_repeats) * n_te * (cost + 5.0 * d**2)

        t, sw, rg = self.train, self.sweep, self.regime
        flops = sum(run(d, t.n_train, t.max_epochs, self.n_test) for d in self.dims)
        sweep_runs = [run(sw.dim, n, t.max_epochs, sw.n_test) for n in sw.n_train]
        sweep_runs += [run(sw.dim, t.n_train, e, sw.n_test) for e in sw.max_epochs]
        sweep_runs += [run(sw.dim, t.n_train, t.max_epochs, sw.n_test, k, [w, w]) for k, w in sw.capacity]
        sweep_runs += [run(sw.dim, t.n_train, t.max_epochs, sw.n_test) for _ in sw.eig_min]
        flops += len(sw.seeds) * sum(sweep_runs)
        regime_runs = [run(d, n, rg.max_epochs, rg.n_test) for d in rg.dims for n in rg.n_train]
        flops += (rg.points + 1) * len(rg.seeds) * sum(regime_runs) / len(regime_runs)
        return Estimate(needs, flops)

    def replace(self, **params) -> ThesisConfig:
        """A copy with some flat parameters changed (validated again).

        Example:
            >>> ThesisConfig().replace(seed=3).seed
            3
        """
        return type(self).from_params(**{**self.as_params(), **params})
