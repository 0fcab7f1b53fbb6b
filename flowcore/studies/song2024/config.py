r"""The parameters of the Song et al. (2024) study: one validated config per run, built from the
``song2024`` section of a profile (its defaults equal the ``default`` profile's values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

from flowcore.config import StudyConfig
from flowcore.resources import Estimate, Need
from flowcore.train import TrainConfig
from flowcore.validation import (
    check_device,
    check_int,
    check_int_list,
    check_positive,
    check_real_list,
    check_seeds,
    checked,
)

__all__ = ["SongConfig"]


def _fractions(name: str, values) -> tuple[float, ...]:
    out = check_real_list(name, values)
    if any(not 0 <= v < 1 for v in out):
        raise ValueError(f"{name} must hold fractions in [0, 1), got {list(values)}")
    return out


def _fraction(name: str, value) -> float:
    return _fractions(name, [value])[0]


def _non_negative(name: str, values) -> tuple[float, ...]:
    out = check_real_list(name, values)
    if any(v < 0 for v in out):
        raise ValueError(f"{name} must hold numbers ≥ 0, got {list(values)}")
    return out


def _fraction_up_to_one(name: str, value) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1:
        raise ValueError(f"{name} must be a fraction in (0, 1], got {value!r}")
    return check_positive(name, value)


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
        train: Its training (:class:`~flowcore.train.TrainConfig`: Adam, early stopping; flat
            names ``lr``, ``max_epochs``, ``patience``, ``batch_size``, …). Its ``seed`` is no
            parameter: each run takes one of ``seeds``.
        n_test: Test samples for the Monte-Carlo KL and the AUROC.
        thesis_klj_weight, thesis_dim: γ of the flow trained on the thesis's Gaussian for C5–C11,
            and its D (the nearest D of the same profile's thesis run).
        digits_klj_weight, digits_outlier_fraction, digits_fraction: The digits analogue's γ (the
            paper's α = 0.01 is weighed against an NLL per dimension; ours is per image of 64
            pixels, so 0.01 × 64 = 0.64 is the comparable strength), its training-outlier fraction
            r and its small training fraction p.
        digits_channels, digits_blocks, digits_epochs: Its per-class image flows.
        digits_n_boot: Resamples of its paired bootstrap over the test and OOD images (the
            intervals of S11–S14).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Example:
        >>> SongConfig.from_params(outlier_fractions=[0.0, 1.5])
        Traceback (most recent call last):
        ...
        ValueError: outlier_fractions must hold fractions in [0, 1), got [0.0, 1.5]
    """

    STUDY: ClassVar[str] = "song2024"
    SECTIONS: ClassVar[dict[str, tuple]] = {"train": (TrainConfig, "", ("seed",))}

    linear_dim: int = field(default=10, metadata=checked(check_int, minimum=1, maximum=1000))
    linear_n: tuple[int, ...] = field(
        default=(5, 10, 20, 50, 100, 1000), metadata=checked(check_int_list, minimum=1)
    )
    outlier_fractions: tuple[float, ...] = field(
        default=(0.0, 0.05, 0.1, 0.15), metadata=checked(_fractions)
    )
    outlier_scale: float = field(default=2.0, metadata=checked(check_positive))
    alphas: tuple[float, ...] = field(
        default=(0.0, 0.1, 1.0, 10.0, 100.0), metadata=checked(_non_negative)
    )
    prior_scale: float = field(default=1.0, metadata=checked(check_positive))
    replicates: int = field(default=50, metadata=checked(check_int, minimum=2))
    deep_n: tuple[int, ...] = field(
        default=(20, 100, 1000), metadata=checked(check_int_list, minimum=4)
    )
    deep_outlier_fractions: tuple[float, ...] = field(
        default=(0.0, 0.1), metadata=checked(_fractions)
    )
    klj_weights: tuple[float, ...] = field(
        default=(0.0, 0.001, 0.01, 0.1), metadata=checked(_non_negative)
    )
    weight_decays: tuple[float, ...] = field(default=(0.001,), metadata=checked(_non_negative))
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=checked(check_seeds))
    n_couplings: int = field(default=4, metadata=checked(check_int, minimum=1, maximum=64))
    hidden: tuple[int, ...] = field(default=(32, 32), metadata=checked(check_int_list, minimum=1))
    train: TrainConfig = field(
        default_factory=partial(TrainConfig, lr=0.003, max_epochs=100, patience=10, batch_size=128)
    )
    n_test: int = field(default=5000, metadata=checked(check_int, minimum=10))
    thesis_klj_weight: float = field(default=0.01, metadata=checked(check_positive))
    thesis_dim: int = field(default=20, metadata=checked(check_int, minimum=2))
    digits_klj_weight: float = field(default=0.64, metadata=checked(check_positive))
    digits_outlier_fraction: float = field(default=0.1, metadata=checked(_fraction))
    digits_fraction: float = field(default=0.2, metadata=checked(_fraction_up_to_one))
    digits_channels: int = field(default=8, metadata=checked(check_int, minimum=1, maximum=256))
    digits_blocks: int = field(default=1, metadata=checked(check_int, minimum=1, maximum=16))
    digits_epochs: int = field(default=30, metadata=checked(check_int, minimum=1))
    digits_n_boot: int = field(default=1000, metadata=checked(check_int, minimum=100))
    device: str = field(default="auto", metadata=checked(check_device))

    def digits_config(self):
        """The image-flow settings of the digits analogue, as a Kirichenko study config."""
        from flowcore.studies.kirichenko2020.config import KirichenkoConfig

        return KirichenkoConfig(
            channels=self.digits_channels,
            n_blocks=self.digits_blocks,
            copies=1,
            train=TrainConfig(batch_size=64, lr=1e-3, max_epochs=self.digits_epochs, patience=5),
            n_draws=2,
            device=self.device,
        )

    def resources(self) -> Estimate:
        """Peak memory and work of the deep grid (the linear parts are closed forms).

        Example:
            >>> SongConfig().resources().peak_bytes < 2**30
            True
        """
        d = float(max(self.linear_dim, 10))
        n = float(max(max(self.deep_n), max(self.linear_n)))
        needs = (
            Need(
                "linear replicates",
                self.replicates * n * d * 8.0 * 4,
                ("replicates", "linear_n", "linear_dim"),
            ),
            Need(
                "deep test sets and the moons quadrature",
                float(self.n_test) * (d + 2000) * 8.0,
                ("n_test",),
            ),
        )
        widths = [d / 2, *self.hidden, d]
        per = 2.0 * self.n_couplings * sum(a * b for a, b in zip(widths, widths[1:]))
        runs = (
            2
            * len(self.deep_n)
            * (len(self.klj_weights) + len(self.weight_decays))
            * len(self.deep_outlier_fractions)
            * len(self.seeds)
        )
        flops = runs * (n * self.train.max_epochs * 3 * per + 2 * self.n_test * per)
        return Estimate(needs, flops)
