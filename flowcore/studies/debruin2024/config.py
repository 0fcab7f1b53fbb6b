r"""The thesis's parameters: one validated config per run, built from the ``debruin2024`` section
of a profile.

Every field's default is the ``default`` profile's value (``tests/unit/test_config.py`` checks it);
the profiles are the one source of settings, these defaults only serve direct use of the library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from flowcore.config import Checked, FlowConfig, StudyConfig
from flowcore.gaussians import GaussianRecipe
from flowcore.libraries import MODELS as LIBRARY_MODELS
from flowcore.resources import Estimate, Need
from flowcore.studies.debruin2024.families import FAMILIES
from flowcore.train import TrainConfig
from flowcore.validation import (
    check_choice,
    check_choice_list,
    check_device,
    check_int,
    check_int_list,
    check_non_negative,
    check_positive,
    check_probability,
    check_real_list,
    check_seeds,
    checked,
)

__all__ = ["SCALES", "SHIFTS", "Sweep", "Regimes", "Libraries", "ThesisConfig"]

#: The thesis's scales S and shifts T (§5.1).
SCALES = (0.25, 0.5, 0.75, 1.0, 1.25, 1.75)
SHIFTS = (0.0, 0.25, 0.5, 0.75)


def _capacity(name: str, pairs) -> tuple[tuple[int, int], ...]:
    """Flow capacities: a non-empty list of [couplings, width] pairs of integers ≥ 1."""
    if (
        not isinstance(pairs, (list, tuple))
        or not pairs
        or any(not isinstance(c, (list, tuple)) or len(c) != 2 for c in pairs)
    ):
        raise ValueError(f"{name} must be a list of [couplings, width] pairs, got {pairs!r}")
    return tuple(tuple(check_int_list(name, c, minimum=1)) for c in pairs)


def _non_negative_reals(name: str, values) -> tuple[float, ...]:
    out = check_real_list(name, values)
    if any(v < 0 for v in out):
        raise ValueError(f"{name} must be numbers ≥ 0, got {list(out)}")
    return out


def _calibrated(name: str, value, strict: bool = False) -> float | None:
    """A constant of the families: a number ≥ 0 (``> 0`` when ``strict``), or ``None`` to calibrate
    it."""
    if value is None:
        return None
    try:
        return check_positive(name, value) if strict else check_non_negative(name, value)
    except ValueError:
        raise ValueError(
            f"{name} must be a number {'>' if strict else '≥'} 0, or null to calibrate it; "
            f"got {value!r}"
        ) from None


@dataclass(frozen=True)
class Sweep(Checked):
    """The sensitivity sweep's settings, one factor at a time around the base configuration
    (flat names carry the prefix ``sweep_``).

    Attributes:
        dim: The single dimension D of the sweep.
        seeds: Seeds per setting (at least 3); each seed draws its own p, data and initialisation.
        n_train: Training-set sizes.
        max_epochs: Training lengths (maximum epochs; early stopping still applies).
        capacity: Flow capacities as (couplings, width); the st-network has two hidden layers of
            width.
        eig_min: Smallest eigenvalues of Σ_p (largest stays at the base's), i.e. condition numbers.
        n_test: Test-set size per distribution in the sweep.

    Example:
        >>> Sweep(seeds=[0, 1])
        Traceback (most recent call last):
        ...
        ValueError: sweep_seeds must hold at least 3 distinct seeds, got [0, 1]
    """

    dim: int = field(default=20, metadata=checked(check_int, minimum=2))
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=checked(check_seeds))
    n_train: tuple[int, ...] = field(
        default=(1_000, 10_000, 100_000), metadata=checked(check_int_list, minimum=100)
    )
    max_epochs: tuple[int, ...] = field(
        default=(3, 10, 40), metadata=checked(check_int_list, minimum=1)
    )
    capacity: tuple[tuple[int, int], ...] = field(
        default=((4, 32), (8, 64), (8, 128)), metadata=checked(_capacity)
    )
    eig_min: tuple[float, ...] = field(
        default=(0.1, 0.01, 0.001), metadata=checked(check_real_list, positive=True)
    )
    n_test: int = field(default=20_000, metadata=checked(check_int, minimum=100))


@dataclass(frozen=True)
class Regimes(Checked):
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

    points: int = field(default=12, metadata=checked(check_int, minimum=3))
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=checked(check_seeds))
    dims: tuple[int, ...] = field(default=(20, 50), metadata=checked(check_int_list, minimum=2))
    n_train: tuple[int, ...] = field(
        default=(1_000, 10_000), metadata=checked(check_int_list, minimum=100)
    )
    mean_scales: tuple[float, ...] = field(
        default=(1.0, 4.0), metadata=checked(_non_negative_reals)
    )
    max_epochs: int = field(default=20, metadata=checked(check_int, minimum=1))
    n_val: int = field(default=2_000, metadata=checked(check_int, minimum=2))
    n_test: int = field(default=5_000, metadata=checked(check_int, minimum=100))
    calibration_draws: int = field(default=5_000, metadata=checked(check_int, minimum=100))
    design_seed: int = field(default=0, metadata=checked(check_int, minimum=0))


@dataclass(frozen=True)
class Libraries(Checked):
    """The battery run on other libraries' flows (flat names carry the prefix ``library_``; see
    :mod:`flowcore.battery` and :mod:`flowcore.libraries`).

    Attributes:
        models: Names of :data:`flowcore.libraries.MODELS` to judge.
        dims: Dimensions D.
        seeds: Seeds per (model, D) (at least 3); each draws its own p, data and weights, and
            calibrates its own α, β and outlier recipe.
        n_train: Training-set size per D of ``dims`` (one value: the same at every D); at a D not
            in ``dims``, that of the nearest one (:meth:`n_train_at`).
        n_val: Validation-set size, for early stopping.
        max_epochs: Epochs at most (early stopping with the best weights, as the thesis's flows).
        n_test: Test-set size per distribution.
        calibration_draws: Draws per rate in each seed's calibration.

    Example:
        >>> Libraries(models=["zuko GLOW"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: library_models must be ...; got 'zuko GLOW'
    """

    models: tuple[str, ...] = field(
        default=tuple(LIBRARY_MODELS),
        metadata=checked(check_choice_list, allowed=tuple(LIBRARY_MODELS)),
    )
    dims: tuple[int, ...] = field(default=(20, 50), metadata=checked(check_int_list, minimum=2))
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=checked(check_seeds))
    n_train: tuple[int, ...] = field(
        default=(10_000, 30_000), metadata=checked(check_int_list, minimum=2)
    )
    n_val: int = field(default=2_000, metadata=checked(check_int, minimum=2))
    max_epochs: int = field(default=10, metadata=checked(check_int, minimum=1))
    n_test: int = field(default=1_000, metadata=checked(check_int, minimum=100))
    calibration_draws: int = field(default=5_000, metadata=checked(check_int, minimum=100))

    def __post_init__(self):
        super().__post_init__()
        if len(self.n_train) not in (1, len(self.dims)):
            raise ValueError(
                f"library_n_train must hold one size, or one per D of library_dims "
                f"({len(self.dims)}), got {list(self.n_train)}"
            )

    def n_train_at(self, dim: int) -> int:
        """The training-set size at ``dim``: that of the nearest D of :attr:`dims` (the smaller
        on a tie).

        Example:
            >>> lib = Libraries(dims=[20, 50], n_train=[10000, 30000])
            >>> [lib.n_train_at(d) for d in (10, 20, 35, 40, 50, 100)]
            [10000, 10000, 10000, 30000, 30000, 30000]
        """
        if len(self.n_train) == 1:
            return self.n_train[0]
        nearest = min(range(len(self.dims)), key=lambda i: (abs(self.dims[i] - dim), self.dims[i]))
        return self.n_train[nearest]


@dataclass(frozen=True)
class ThesisConfig(StudyConfig):
    """Everything a chapter of the thesis study needs, validated.

    Attributes:
        dims: Dimensions D to study (each ≥ 2).
        n_train: Training-set size, samples drawn from p.
        n_val: Held-out validation-set size, for early stopping.
        recipe: How p is drawn.
        flow: The flow's architecture.
        train: Training settings (:class:`~flowcore.train.TrainConfig`); ``train.seed`` is the
            experiment's seed.
        sweep: The sensitivity sweep (flat names ``sweep_…``).
        regime: The regime search (flat names ``regime_…``).
        library: The battery on other libraries' flows (flat names ``library_…``).
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
        >>> config.n_train, config.dims, config.seed
        (100000, (10,), 0)
    """

    STUDY: ClassVar[str] = "debruin2024"
    SECTIONS: ClassVar[dict[str, tuple]] = {
        "recipe": (GaussianRecipe, ""),
        "flow": (FlowConfig, ""),
        "train": (TrainConfig, ""),
        "sweep": (Sweep, "sweep_"),
        "regime": (Regimes, "regime_"),
        "library": (Libraries, "library_"),
    }

    TRAINERS: ClassVar[tuple[str, ...]] = ("single", "batched")

    dims: tuple[int, ...] = field(
        default=(10, 20, 50, 100), metadata=checked(check_int_list, minimum=2)
    )
    n_test: int = field(default=100_000, metadata=checked(check_int, minimum=2))
    n_repeats: int = field(default=10, metadata=checked(check_int, minimum=2))
    scales: tuple[float, ...] = field(
        default=SCALES, metadata=checked(check_real_list, positive=True)
    )
    shifts: tuple[float, ...] = field(default=SHIFTS, metadata=checked(check_real_list))
    families: tuple[str, ...] = field(
        default=FAMILIES, metadata=checked(check_choice_list, allowed=FAMILIES)
    )
    tpr: float = field(default=0.975, metadata=checked(check_probability))
    alpha: float | None = field(default=None, metadata=checked(_calibrated))
    beta: float | None = field(default=None, metadata=checked(_calibrated))
    outlier_offset: float | None = field(default=None, metadata=checked(_calibrated))
    outlier_cov_scale: float | None = field(
        default=None, metadata=checked(_calibrated, strict=True)
    )
    calibration_dim: int = field(default=50, metadata=checked(check_int, minimum=2))
    calibration_draws: int = field(default=20_000, metadata=checked(check_int, minimum=100))
    device: str = field(default="auto", metadata=checked(check_device))
    chunk_size: int = field(default=4_096, metadata=checked(check_int, minimum=1))
    trainer: str = field(
        default="single", metadata=checked(check_choice, allowed=TRAINERS) | {"key_default": True}
    )
    # The sections after the fields, so that the flat parameters keep their order (parameter_names).
    recipe: GaussianRecipe = field(default_factory=GaussianRecipe)
    flow: FlowConfig = field(default_factory=FlowConfig)
    n_train: int = field(default=100_000, metadata=checked(check_int, minimum=2))
    n_val: int = field(default=10_000, metadata=checked(check_int, minimum=2))
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: Sweep = field(default_factory=Sweep)
    regime: Regimes = field(default_factory=Regimes)
    library: Libraries = field(default_factory=Libraries)

    @property
    def seed(self) -> int:
        """The experiment's seed (``train.seed``): it draws p, the data, the weights and the test
        sets."""
        return self.train.seed

    @property
    def train_key(self) -> dict:
        """How a flow of this config is trained, as cache keys hold it under ``"train"``: the
        training settings and the sizes of the data (:meth:`flowcore.train.TrainConfig.key`).

        Example:
            >>> key = ThesisConfig.from_params(n_train=5000, lr=0.003).train_key
            >>> key["n_train"], key["n_val"], key["lr"]
            (5000, 10000, 0.003)
        """
        return self.train.key(self.n_train, self.n_val)

    def resources(self) -> Estimate:
        """Peak memory and work of the whole study at these sizes (the heaviest of the main run, the
        sensitivity sweep, the regime search and the battery across libraries), for
        :func:`flowcore.resources.check_resources`.

        At the peak live together: the covariance-sized matrices of p and of the members of a family
        (each Gaussian keeps its covariance, Cholesky factor and precision: about ``4 + 3·members``
        D×D float64 matrices), the training and validation sets, the log-likelihood arrays of a
        family (three scores per member and the reference set, float64), and the calibration's
        draws.

        Each need names the parameters that set it: of the sizes several runs share (the largest
        D, training set and test set), the one that is largest.

        Example:
            >>> e = ThesisConfig().resources()
            >>> e.peak_bytes < 2**30, [n.drivers[0] for n in e.needs]
            (True, ['dims', 'n_train', 'n_test', 'calibration_draws'])
            >>> e = ThesisConfig.from_params(regime_n_test=10**7).resources()
            >>> [n.drivers[0] for n in e.needs]
            ['dims', 'n_train', 'regime_n_test', 'calibration_draws']
        """

        def largest(**sizes: int) -> tuple[float, str]:
            """The largest size (a float: a huge size gives inf, not an overflow) and the parameter
            that sets it, the first named on ties."""
            name = max(sizes, key=lambda k: sizes[k])
            return float(sizes[name]), name

        dim, dim_by = largest(
            dims=max(self.dims),
            sweep_dim=self.sweep.dim,
            regime_dims=max(self.regime.dims),
            library_dims=max(self.library.dims),
            calibration_dim=self.calibration_dim,
        )
        members = len(self.scales) * len(self.shifts)
        n_test, n_test_by = largest(
            n_test=self.n_test,
            sweep_n_test=self.sweep.n_test,
            regime_n_test=self.regime.n_test,
            library_n_test=self.library.n_test,
        )
        n_train, n_train_by = largest(
            n_train=self.n_train,
            sweep_n_train=max(self.sweep.n_train),
            regime_n_train=max(self.regime.n_train),
            library_n_train=max(self.library.n_train),
        )
        hidden = list(self.flow.hidden)
        needs = (
            Need(
                "covariance matrices of p and a family's members",
                (4 + 3 * members) * dim**2 * 8.0,
                (dim_by, "scales", "shifts"),
            ),
            Need(
                "training and validation sets",
                (n_train + self.n_val) * dim * 12.0,
                (n_train_by, "n_val", dim_by),
            ),
            Need(
                "a family's log-likelihood arrays",
                3 * (members + 1) * n_test * 8.0 + 4 * self.chunk_size * dim * 8.0,
                (n_test_by, "scales", "shifts", "chunk_size"),
            ),
            Need(
                "the calibration's draws",
                10 * self.calibration_draws * self.calibration_dim * 8.0 * 2,
                ("calibration_draws", "calibration_dim"),
            ),
        )

        def flow_cost(
            d: int, couplings: int, widths_hidden: list[int]
        ) -> float:  # flop of one flow pass on one sample
            widths = [d // 2, *widths_hidden, 2 * (d - d // 2)]
            return 2.0 * couplings * sum(a * b for a, b in zip(widths, widths[1:]))

        def run(
            d: int,
            n_tr: int,
            epochs: int,
            n_te: int,
            couplings: int = self.flow.n_couplings,
            widths_hidden: list[int] = hidden,
        ) -> float:
            cost = flow_cost(d, couplings, widths_hidden)
            # training (forward and backward, every epoch: an upper bound under early stopping),
            # then every test set through the flow, two quadratic forms and the sampling
            return n_tr * epochs * 3 * cost + (3 * members + self.n_repeats) * n_te * (
                cost + 5.0 * d**2
            )

        t, sw, rg = self.train, self.sweep, self.regime
        flops = sum(run(d, self.n_train, t.max_epochs, self.n_test) for d in self.dims)
        sweep_runs = [run(sw.dim, n, t.max_epochs, sw.n_test) for n in sw.n_train]
        sweep_runs += [run(sw.dim, self.n_train, e, sw.n_test) for e in sw.max_epochs]
        sweep_runs += [
            run(sw.dim, self.n_train, t.max_epochs, sw.n_test, k, [w, w]) for k, w in sw.capacity
        ]
        sweep_runs += [run(sw.dim, self.n_train, t.max_epochs, sw.n_test) for _ in sw.eig_min]
        flops += len(sw.seeds) * sum(sweep_runs)
        regime_runs = [run(d, n, rg.max_epochs, rg.n_test) for d in rg.dims for n in rg.n_train]
        flops += (rg.points + 1) * len(rg.seeds) * sum(regime_runs) / len(regime_runs)
        lib = self.library  # the libraries' flows, costed as this book's RealNVP of their size
        flops += (
            len(lib.models)
            * len(lib.seeds)
            * sum(
                run(d, lib.n_train_at(d), lib.max_epochs, lib.n_test, 8, [64, 64]) for d in lib.dims
            )
        )
        return Estimate(needs, flops)

    def replace(self, **params) -> ThesisConfig:
        """A copy with some flat parameters changed (validated again).

        Example:
            >>> ThesisConfig().replace(seed=3).seed
            3
        """
        return type(self).from_params(**{**self.as_params(), **params})
