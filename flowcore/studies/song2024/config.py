r"""The parameters of the Song et al. (2024) study: one validated config per run, built from the
``song2024`` section of a profile (its defaults equal the ``default`` profile's values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from flowcore.config import StudyConfig
from flowcore.devices import resolve_device
from flowcore.resources import Estimate, Need
from flowcore.validation import assign_checked, check_int, check_int_list, check_positive, check_real_list

__all__ = ["SongConfig"]


def _fractions(name: str, values) -> tuple[float, ...]:
    out = check_real_list(name, values)
    if any(not 0 <= v < 1 for v in out):
        raise ValueError(f"{name} must hold fractions in [0, 1), got {list(values)}")
    return out


def _non_negative(name: str, values) -> tuple[float, ...]:
    out = check_real_list(name, values)
    if any(v < 0 for v in out):
        raise ValueError(f"{name} must hold numbers ≥ 0, got {list(values)}")
    return out


@dataclass(frozen=True)
class SongConfig(StudyConfig):
    """Everything the chapter needs, validated.

    Attributes:
        linear_dim: d of the linear experiment (the thesis's Gaussian recipe).
        linear_n: Training-set sizes N of the linear experiment (some below d on purpose).
        outlier_fractions: Fractions r of training points replaced by outliers x + σ_o·ε.
        outlier_scale: σ_o.
        alphas: Regularisation strengths α of the linear experiment, in pseudo-samples (0: none).
        prior_scale: g of the KL prior G = g·I.
        replicates: Replicates per cell of the linear experiment.
        deep_n: Training-set sizes of the deep experiment.
        deep_outlier_fractions: Its outlier fractions r.
        klj_weights: KLJ strengths γ (``klj_weight``; 0: none).
        weight_decays: Weight-decay strengths (with γ = 0, one factor at a time).
        seeds: Seeds per cell of the deep experiment (at least 3).
        n_couplings, hidden: The RealNVP of the deep experiment.
        lr, max_epochs, patience, batch_size: Its training (Adam, early stopping).
        n_test: Test samples for the Monte-Carlo KL and the AUROC.
        thesis_klj_weight, thesis_dim: γ of the flow trained on the thesis's Gaussian for C5–C11, and its D
            (the nearest D of the same profile's thesis run).
        digits_klj_weight, digits_outlier_fraction, digits_fraction: The digits analogue's γ (the
            paper's α = 0.01 is weighed against an NLL per dimension; ours is per image of 64 pixels,
            so 0.01 × 64 = 0.64 is the comparable strength), its
            training-outlier fraction r and its small training fraction p.
        digits_channels, digits_blocks, digits_epochs: Its per-class image flows.
        digits_n_boot: Resamples of its paired bootstrap over the test and OOD images (the intervals of
            S11–S14).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Example:
        >>> SongConfig.from_params(outlier_fractions=[0.0, 1.5])
        Traceback (most recent call last):
        ...
        ValueError: outlier_fractions must hold fractions in [0, 1), got [0.0, 1.5]
    """

    STUDY: ClassVar[str] = "song2024"

    linear_dim: int = 10
    linear_n: tuple[int, ...] = (5, 10, 20, 50, 100, 1000)
    outlier_fractions: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15)
    outlier_scale: float = 2.0
    alphas: tuple[float, ...] = (0.0, 0.1, 1.0, 10.0, 100.0)
    prior_scale: float = 1.0
    replicates: int = 50
    deep_n: tuple[int, ...] = (20, 100, 1000)
    deep_outlier_fractions: tuple[float, ...] = (0.0, 0.1)
    klj_weights: tuple[float, ...] = (0.0, 0.001, 0.01, 0.1)
    weight_decays: tuple[float, ...] = (0.001,)
    seeds: tuple[int, ...] = (0, 1, 2)
    n_couplings: int = 4
    hidden: tuple[int, ...] = (32, 32)
    lr: float = 0.003
    max_epochs: int = 100
    patience: int = 10
    batch_size: int = 128
    n_test: int = 5000
    thesis_klj_weight: float = 0.01
    thesis_dim: int = 20
    digits_klj_weight: float = 0.64
    digits_outlier_fraction: float = 0.1
    digits_fraction: float = 0.2
    digits_channels: int = 8
    digits_blocks: int = 1
    digits_epochs: int = 30
    digits_n_boot: int = 1000
    device: str = "auto"

    def __post_init__(self):
        seeds = check_int_list("seeds", self.seeds, minimum=0)
        if len(set(seeds)) < 3:
            raise ValueError(f"seeds must hold at least 3 distinct seeds, got {list(self.seeds)}")
        if not isinstance(self.digits_fraction, (int, float)) or isinstance(self.digits_fraction, bool) or not 0 < self.digits_fraction <= 1:
            raise ValueError(f"digits_fraction must be a fraction in (0, 1], got {self.digits_fraction!r}")
        resolve_device(self.device)
        assign_checked(
            self,
            linear_dim=check_int("linear_dim", self.linear_dim, minimum=1, maximum=1000),
            linear_n=check_int_list("linear_n", self.linear_n, minimum=1),
            outlier_fractions=_fractions("outlier_fractions", self.outlier_fractions),
            outlier_scale=check_positive("outlier_scale", self.outlier_scale),
            alphas=_non_negative("alphas", self.alphas),
            prior_scale=check_positive("prior_scale", self.prior_scale),
            replicates=check_int("replicates", self.replicates, minimum=2),
            deep_n=check_int_list("deep_n", self.deep_n, minimum=4),
            deep_outlier_fractions=_fractions("deep_outlier_fractions", self.deep_outlier_fractions),
            klj_weights=_non_negative("klj_weights", self.klj_weights),
            weight_decays=_non_negative("weight_decays", self.weight_decays),
            seeds=seeds,
            n_couplings=check_int("n_couplings", self.n_couplings, minimum=1, maximum=64),
            hidden=check_int_list("hidden", self.hidden, minimum=1),
            lr=check_positive("lr", self.lr),
            max_epochs=check_int("max_epochs", self.max_epochs, minimum=1),
            patience=check_int("patience", self.patience, minimum=1),
            batch_size=check_int("batch_size", self.batch_size, minimum=1),
            n_test=check_int("n_test", self.n_test, minimum=10),
            thesis_klj_weight=check_positive("thesis_klj_weight", self.thesis_klj_weight),
            thesis_dim=check_int("thesis_dim", self.thesis_dim, minimum=2),
            digits_klj_weight=check_positive("digits_klj_weight", self.digits_klj_weight),
            digits_outlier_fraction=_fractions("digits_outlier_fraction", [self.digits_outlier_fraction])[0],
            digits_fraction=check_positive("digits_fraction", self.digits_fraction),
            digits_channels=check_int("digits_channels", self.digits_channels, minimum=1, maximum=256),
            digits_blocks=check_int("digits_blocks", self.digits_blocks, minimum=1, maximum=16),
            digits_epochs=check_int("digits_epochs", self.digits_epochs, minimum=1),
            digits_n_boot=check_int("digits_n_boot", self.digits_n_boot, minimum=100),
        )

    def digits_config(self):
        """The image-flow settings of the digits analogue, as a Kirichenko study config."""
        from flowcore.studies.kirichenko2020.config import KirichenkoConfig

        return KirichenkoConfig(channels=self.digits_channels, n_blocks=self.digits_blocks, copies=1, max_epochs=self.digits_epochs, patience=5, n_draws=2, batch_size=64, device=self.device)

    def resources(self) -> Estimate:
        """Peak memory and work of the deep grid (the linear parts are closed forms).

        Example:
            >>> SongConfig().resources().peak_bytes < 2**30
            True
        """
        d = float(max(self.linear_dim, 10))
        n = float(max(max(self.deep_n), max(self.linear_n)))
        needs = (
            Need("linear replicates", self.replicates * n * d * 8.0 * 4, ("replicates", "linear_n", "linear_dim")),
            Need("deep test sets and the moons quadrature", float(self.n_test) * (d + 2000) * 8.0, ("n_test",)),
        )
        widths = [d / 2, *self.hidden, d]
        per = 2.0 * self.n_couplings * sum(a * b for a, b in zip(widths, widths[1:]))
        runs = 2 * len(self.deep_n) * (len(self.klj_weights) + len(self.weight_decays)) * len(self.deep_outlier_fractions) * len(self.seeds)
        flops = runs * (n * self.max_epochs * 3 * per + 2 * self.n_test * per)
        return Estimate(needs, flops)
