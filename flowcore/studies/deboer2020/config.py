r"""The parameters of the de Boer (2020) study: one validated config per run, built from the
``deboer2020`` section of a profile (its defaults equal the ``default`` profile's values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

from flowcore.config import StudyConfig
from flowcore.resources import Estimate, Need
from flowcore.train import TrainConfig
from flowcore.validation import check_choice, check_device, check_int, check_int_list, checked

__all__ = ["DeBoerConfig", "THESIS_TABLE2", "THESIS_TABLE4", "MNIST_SIDE", "MNIST_IMAGES"]

#: The thesis's Table 2 (best of 10 models): mean test log-likelihood per (ψ, D), B = 0 … 4.
THESIS_TABLE2 = {
    (1, 2): (-2.5, -2.51, -2.51, -2.5, -2.51),
    (1, 3): (-3.77, -3.74, -3.75, -3.75, -3.75),
    (1, 4): (-4.98, -5.02, -4.98, -4.99, -5.0),
    (2, 2): (-0.05, -0.16, 0.15, 0.24, 0.21),
    (2, 3): (-0.7, -0.24, -0.09, -0.04, -0.03),
    (2, 4): (-0.73, -0.97, -0.49, -0.41, -0.1),
    (3, 2): (0.25, 0.72, 1.44, 1.65, 2.35),
    (3, 3): (-0.92, 0.03, 1.47, 2.22, 1.01),
    (3, 4): (-1.48, -1.1, -0.66, -0.26, 0.74),
}

#: The thesis's Table 4 (best of 10 models, S = 100): test log-likelihood per data set, B = 0, 1,
#: 2, 4, 8, 16 (its own normalisation: data scaled, then uniform noise on [−0.3, 0.3]; the caption
#: says log-likelihood, its Fig. 7 negative log-likelihood).
THESIS_TABLE4 = {
    "CIFAR-10": {0: 8422.63, 1: 8513.6, 2: 8505.94, 4: 8502.32, 8: 8571.83, 16: 8635.47},
    "MNIST": {0: 126.27, 1: 145.32, 2: 137.66, 4: 119.85, 8: 129.4, 16: 128.28},
    "K-MNIST": {0: 33.26, 1: 33.63, 2: 28.07, 4: 27.93, 8: 28.82, 16: 35.09},
    "F-MNIST": {0: 132.82, 1: 141.58, 2: 132.22, 4: 132.62, 8: 131.13, 16: 138.14},
}
#: MNIST's image side, and its numbers of training and test images.
MNIST_SIDE = 28
MNIST_IMAGES = {"train": 60000, "test": 10000}


def _distinct_seeds(name: str, values) -> tuple[int, ...]:
    seeds = check_int_list(name, values, minimum=0)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{name} must be distinct, got {list(values)}")
    return seeds


def _distinct_aux(name: str, values) -> tuple[int, ...]:
    aux = check_int_list(name, values, minimum=0)
    if len(set(aux)) != len(aux):
        raise ValueError(f"{name} must be distinct, got {list(values)}")
    return aux


def _image_side(name: str, value) -> int:
    """An image side that downsampling MNIST by a whole factor gives: a divisor of 28, ≥ 2."""
    allowed = [k for k in range(2, MNIST_SIDE + 1) if MNIST_SIDE % k == 0]
    side = check_int(name, value, minimum=2, maximum=MNIST_SIDE)
    if MNIST_SIDE % side:
        raise ValueError(
            f"{name} must divide MNIST's side {MNIST_SIDE} (one of {allowed}), got {side}"
        )
    return side


@dataclass(frozen=True)
class DeBoerConfig(StudyConfig):
    """Everything the chapter needs, validated.

    Attributes:
        dims, psis, aux: The grid of Table 2: D, ψ (x = u^ψ) and the auxiliary dimensions B.
        seeds: Models per cell; the best on the validation set is reported beside the mean (≥ 1).
            The claims that compare B use Student-t intervals over the seeds: with one seed they
            cannot tell.
        n_train, n_val, n_test: Sample sizes (the thesis: n = 2048).
        train: Training (:class:`~flowcore.train.TrainConfig`: Adam, early stopping; flat names
            ``batch_size``, ``lr``, ``max_epochs``, ``patience``, …; the thesis trains 1,024
            epochs). Its ``seed`` is no parameter: each model takes one of ``seeds``.
        n_blocks, hidden: The R-block flow (thesis: 4 R-blocks; widths not stated).
        n_samples: S, importance samples of the marginal (thesis: 200).
        moons_aux, moons_batch_size: B values and batch size of the half-moons experiment.
        digits_aux, digits_epochs: B values and epochs of the 8×8 digits substitute for Table 4.
        mnist_aux, mnist_epochs: B values (distinct) and epochs of Table 4 on MNIST.
        mnist_size: The side of the MNIST images after averaging blocks (a divisor of 28: 7, 14
            or 28 pixels; the thesis: 28).
        mnist_train, mnist_val: Training and validation (early stopping) images, disjoint, drawn
            (seeded) from MNIST's 60,000 training images (together at most 60,000; the thesis
            trains on all 60,000 and states no validation set).
        mnist_test: Test images, drawn (seeded) from MNIST's 10,000 (the thesis: all).
        mnist_log_scale: The couplings' log-scale map on MNIST: ``"tanh"`` (bounded by 3) or
            ``"exp"`` (the thesis's unbounded map; the thesis clipped gradients to norm 0.6 on
            images, which our training does not, and without it the unbounded map diverged within
            two epochs at 14×14).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Example:
        >>> DeBoerConfig.from_params(psis=[0])
        Traceback (most recent call last):
        ...
        ValueError: psis[0] must be an integer ≥ 1, got 0
        >>> DeBoerConfig.from_params(mnist_size=10)
        Traceback (most recent call last):
        ...
        ValueError: mnist_size must divide MNIST's side 28 (one of [2, 4, 7, 14, 28]), got 10
    """

    STUDY: ClassVar[str] = "deboer2020"
    SECTIONS: ClassVar[dict[str, tuple]] = {"train": (TrainConfig, "", ("seed",))}

    dims: tuple[int, ...] = field(default=(2, 3, 4), metadata=checked(check_int_list, minimum=1))
    psis: tuple[int, ...] = field(default=(1, 2, 3), metadata=checked(check_int_list, minimum=1))
    aux: tuple[int, ...] = field(default=(0, 2, 4), metadata=checked(check_int_list, minimum=0))
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=checked(_distinct_seeds))
    n_train: int = field(default=2048, metadata=checked(check_int, minimum=8))
    n_val: int = field(default=512, metadata=checked(check_int, minimum=2))
    n_test: int = field(default=2048, metadata=checked(check_int, minimum=10))
    train: TrainConfig = field(
        default_factory=partial(TrainConfig, batch_size=256, lr=0.001, max_epochs=40, patience=10)
    )
    n_blocks: int = field(default=4, metadata=checked(check_int, minimum=1, maximum=64))
    hidden: tuple[int, ...] = field(default=(64, 64), metadata=checked(check_int_list, minimum=1))
    n_samples: int = field(default=50, metadata=checked(check_int, minimum=1))
    moons_aux: tuple[int, ...] = field(
        default=(0, 1, 3, 4), metadata=checked(check_int_list, minimum=0)
    )
    moons_batch_size: int = field(default=64, metadata=checked(check_int, minimum=1))
    digits_aux: tuple[int, ...] = field(
        default=(0, 2, 8, 16), metadata=checked(check_int_list, minimum=0)
    )
    digits_epochs: int = field(default=20, metadata=checked(check_int, minimum=1))
    mnist_aux: tuple[int, ...] = field(default=(0, 2, 8, 16), metadata=checked(_distinct_aux))
    mnist_size: int = field(default=14, metadata=checked(_image_side))
    mnist_train: int = field(
        default=2000, metadata=checked(check_int, minimum=8, maximum=MNIST_IMAGES["train"] - 2)
    )
    mnist_val: int = field(
        default=500, metadata=checked(check_int, minimum=2, maximum=MNIST_IMAGES["train"] - 8)
    )
    mnist_test: int = field(
        default=1000, metadata=checked(check_int, minimum=10, maximum=MNIST_IMAGES["test"])
    )
    mnist_epochs: int = field(default=12, metadata=checked(check_int, minimum=1))
    mnist_log_scale: str = field(
        default="tanh", metadata=checked(check_choice, allowed=("tanh", "exp"))
    )
    device: str = field(default="auto", metadata=checked(check_device))

    def __post_init__(self):
        super().__post_init__()
        if (
            max(self.dims) > 64
            or max(self.psis) > 9
            or max(self.aux + self.moons_aux + self.digits_aux + self.mnist_aux) > 256
        ):
            raise ValueError(
                "dims ≤ 64, psis ≤ 9 and aux, moons_aux, digits_aux, mnist_aux ≤ 256 "
                "(the study's small synthetic laws)"
            )
        if self.mnist_train + self.mnist_val > MNIST_IMAGES["train"]:
            raise ValueError(
                f"mnist_train + mnist_val must be at most {MNIST_IMAGES['train']} (MNIST's "
                f"training images), got {self.mnist_train} + {self.mnist_val}"
            )

    def resources(self) -> Estimate:
        """Peak memory and work of the grid (tiny flows; the importance samples dominate
        evaluation).

        Example:
            >>> DeBoerConfig().resources().peak_bytes < 2**30
            True
        """
        width = float(max(self.dims) + max(self.aux))
        pixels = float(self.mnist_size**2)
        images = float(self.mnist_train + self.mnist_val + self.mnist_test)
        needs = (
            Need(
                "importance samples of a test set",
                float(self.n_test) * self.n_samples * (width + 64) * 8.0 / 8,
                ("n_test", "n_samples"),
            ),
            Need(
                "MNIST: the images read, and the subset dequantised and standardised (float64)",
                float(sum(MNIST_IMAGES.values())) * MNIST_SIDE**2 + 3 * images * pixels * 8.0,
                ("mnist_train", "mnist_val", "mnist_test", "mnist_size"),
            ),
        )

        def per(width: float) -> float:
            return (
                2.0
                * 2
                * self.n_blocks
                * sum(a * b for a, b in zip([width, *self.hidden], [*self.hidden, 2 * width]))
            )

        cells = len(self.dims) * len(self.psis) * len(self.aux) * len(self.seeds)
        flops = cells * (
            self.n_train * self.train.max_epochs * 3 * per(width)
            + self.n_test * self.n_samples * per(width)
        )
        mnist = per(pixels + max(self.mnist_aux))
        flops += (
            len(self.mnist_aux)
            * len(self.seeds)
            * (
                (self.mnist_train + self.mnist_val) * self.mnist_epochs * 3 * mnist
                + self.mnist_test * max(10, self.n_samples // 2) * mnist
            )
        )
        return Estimate(needs, flops)
