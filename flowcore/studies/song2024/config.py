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


def _image_size(name: str, value) -> int:
    side = check_int(name, value, minimum=1)
    if side not in (7, 14, 28):
        raise ValueError(
            f"{name} must be 7, 14 or 28 (28×28 images averaged in equal blocks), got {side}"
        )
    return side


def _datasets(name: str, values) -> tuple[str, ...]:
    from flowcore.datasets import DATASETS

    if (
        not isinstance(values, (list, tuple))
        or not values
        or any(not isinstance(v, str) or v not in DATASETS for v in values)
        or len(set(values)) != len(values)
    ):
        raise ValueError(
            f"{name} must be a non-empty list of distinct data sets from "
            f"{', '.join(map(repr, DATASETS))}; got {values!r}"
        )
    return tuple(values)


def _classes(name: str, values) -> tuple[int, ...]:
    classes = check_int_list(name, values, minimum=0)
    if any(c > 9 for c in classes) or len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"{name} must be 2 to 10 distinct labels from 0–9, got {list(values)}")
    return classes


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
        mnist_datasets: The in-distribution data sets of the real-data analogue (``"mnist"``,
            ``"fashion_mnist"``), each with the other one's test images as an OOD set.
        mnist_classes: Their classes (labels 0–9), one flow each.
        mnist_size: Side of the images (28×28 averaged in blocks: 7, 14 or 28).
        mnist_per_class: Training images per class, a seeded subset (a class with fewer uses all
            it has; a tenth of each class's images is kept apart for validation).
        mnist_test: Test images per set (in-distribution and each OOD set), a seeded subset.
        mnist_channels, mnist_blocks, mnist_epochs: The per-class image flows.
        mnist_alpha: The paper's α, weighed against an NLL per dimension: the KLJ weight is
            γ = α · mnist_size² against our NLL per image.
        mnist_outlier_fraction, mnist_fraction: The training-outlier fraction r and the small
            training fraction p.
        mnist_n_boot: Resamples of the real-data paired bootstrap.
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
    mnist_datasets: tuple[str, ...] = field(
        default=("mnist", "fashion_mnist"), metadata=checked(_datasets)
    )
    mnist_classes: tuple[int, ...] = field(default=tuple(range(10)), metadata=checked(_classes))
    mnist_size: int = field(default=14, metadata=checked(_image_size))
    mnist_per_class: int = field(default=400, metadata=checked(check_int, minimum=10))
    mnist_test: int = field(default=400, metadata=checked(check_int, minimum=10, maximum=10_000))
    mnist_channels: int = field(default=8, metadata=checked(check_int, minimum=1, maximum=256))
    mnist_blocks: int = field(default=1, metadata=checked(check_int, minimum=1, maximum=16))
    mnist_epochs: int = field(default=10, metadata=checked(check_int, minimum=1))
    mnist_alpha: float = field(default=0.01, metadata=checked(check_positive))
    mnist_outlier_fraction: float = field(default=0.1, metadata=checked(_fraction))
    mnist_fraction: float = field(default=0.2, metadata=checked(_fraction_up_to_one))
    mnist_n_boot: int = field(default=1000, metadata=checked(check_int, minimum=100))
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

    def mnist_config(self):
        """The image-flow settings of the real-data analogue, as a Kirichenko study config (its
        digit classes are unused: the classes are ``mnist_classes``). Batches of 32 at a learning
        rate of 2e-3, twice the digits' steps at a higher rate: at the default budget a class
        sees a few hundred images for ten epochs, and with the digits' 64 and 1e-3 a 14×14 flow
        is still far from its fit (about 6.3 bits/dim on MNIST after 10 epochs of 400 images,
        against 5.2 with these settings)."""
        from flowcore.studies.kirichenko2020.config import KirichenkoConfig

        return KirichenkoConfig(
            channels=self.mnist_channels,
            n_blocks=self.mnist_blocks,
            copies=1,
            train=TrainConfig(batch_size=32, lr=2e-3, max_epochs=self.mnist_epochs, patience=5),
            n_draws=2,
            device=self.device,
        )

    @property
    def mnist_klj_weight(self) -> float:
        """γ of the real-data analogue: ``mnist_alpha`` per pixel, times the pixels per image.

        Example:
            >>> SongConfig(mnist_size=14, mnist_alpha=0.01).mnist_klj_weight
            1.96
        """
        return round(self.mnist_alpha * self.mnist_size**2, 12)

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
                self.replicates * max(self.linear_n) * d * 8.0 * 4,
                ("replicates", "linear_n", "linear_dim"),
            ),
            Need(
                "deep training sets (float64, a few copies while training)",
                max(self.deep_n) * d * 8.0 * 4,
                ("deep_n",),
            ),
            Need(
                "deep test sets and the moons quadrature",
                float(self.n_test) * (d + 2000) * 8.0,
                ("n_test",),
            ),
            Need(
                "MNIST and FashionMNIST, and the real-data bootstrap's comparisons",
                2 * 70_000 * 28 * 28.0
                + 3 * self.mnist_test**2 * 8.0
                + 3 * self.mnist_n_boot * self.mnist_test * 8.0,
                ("mnist_test", "mnist_n_boot"),
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
