r"""The parameters of the Kirichenko et al. (2020) study: one validated config per run, built from
the ``kirichenko2020`` section of a profile (its defaults equal the ``default`` profile's values).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import ClassVar

from flowcore.config import StudyConfig
from flowcore.resources import Estimate, Need
from flowcore.train import TrainConfig
from flowcore.validation import (
    check_choice,
    check_choice_list,
    check_device,
    check_int,
    check_int_list,
    check_real,
    checked,
)

__all__ = ["MASKS", "NEGATIVE_TARGETS", "KirichenkoConfig"]

#: The coupling masks of the paper's §7: checkerboard, horizontal halves, and the quadrant cycle.
MASKS = ("checkerboard", "horizontal", "cycle")
#: The OOD sets negative training can push down (K8).
NEGATIVE_TARGETS = ("class 1", "class 7", "flipped left–right", "flipped up–down", "photo patches")


def _in_classes(name: str, values) -> tuple[int, ...]:
    classes = check_int_list(name, values, minimum=0)
    if (
        any(c > 9 for c in classes)
        or len(set(classes)) != len(classes)
        or not 2 <= len(classes) <= 8
        or {1, 7} & set(classes)
    ):
        raise ValueError(
            f"{name} must be 2 to 8 distinct digits from 0–9 other than 1 and 7 "
            f"(the held-out OOD classes), got {list(values)}"
        )
    return classes


def _optional_sizes(name: str, values) -> tuple[int | None, ...]:
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(
            f"{name} must be a non-empty list of bottleneck sizes "
            f"(integers ≥ 1, or null for none), got {values!r}"
        )
    return tuple(
        None if v is None else check_int(f"{name}[{i}]", v, minimum=1) for i, v in enumerate(values)
    )


def _image_side(name: str, value) -> int:
    side = check_int(name, value, minimum=1)
    if side not in (14, 28):
        raise ValueError(
            f"{name} must be 14 or 28 (28×28 images, averaged in 2×2 blocks for 14), got {side}"
        )
    return side


def _widths(name: str, values) -> tuple[int, ...]:
    widths = check_int_list(name, values, minimum=1)
    if not widths:
        raise ValueError(f"{name} must hold at least one hidden width, got {list(values)}")
    return widths


def _seeds(name: str, values) -> tuple[int, ...]:
    """At least 2 distinct non-negative seeds: an interval over seeds needs two."""
    seeds = check_int_list(name, values, minimum=0)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(
            f"{name} must hold at least 2 distinct seeds (an interval over seeds needs two), "
            f"got {list(values)}"
        )
    return seeds


@dataclass(frozen=True)
class KirichenkoConfig(StudyConfig):
    """Everything the chapter needs, validated.

    Attributes:
        in_classes: The digits that are in-distribution (the others are held out; 1 and 7 become
            OOD sets).
        n_couplings: Coupling layers of every image flow (the cycle mask uses a multiple of 4).
        channels, n_blocks: Width and residual blocks of each coupling's convolutional st-network.
        mask: The mask of the main flow; ``masks`` are the ones compared (K6).
        bottlenecks: Bottleneck sizes l compared (K7); ``null`` is the flow without one.
        copies: Dequantisation draws of each training image (fresh noise per copy).
        train: Training of the image flows (:class:`~flowcore.train.TrainConfig`: Adam, early
            stopping on the validation NLL; flat names ``batch_size``, ``lr``, ``max_epochs``,
            ``patience``, …); its ``seed`` (flat ``seed``) is the experiment's :attr:`seed`.
        negative_target: The OOD set negative training pushes down (K8), and its cutoff (nats).
        features: Width of the small classifier's hidden layer whose activations K9's flow models.
        n_draws: Dequantisation draws per scored image. n_boot: Bootstrap resamples of each AUROC.
        seeds: The seeds the flows that claims compare (masks, bottlenecks, the swap test, pixel vs
            feature flow) are trained with, each a whole replicate (splits, weights, noise; at
            least 2).
        device, chunk_size: Where to evaluate, and how many images per chunk.
        real_size: Side of the FashionMNIST/MNIST images of the real-pair chapter (28×28 averaged
            in 2×2 blocks: 14, or 28), ``real_train`` training images per data set (a seeded subset
            of the 60,000; a fifth as many more for validation), ``real_test`` test images per
            data set (of the 10,000).
        real_channels, real_blocks, real_epochs: The real-pair image flows' st-network width and
            residual blocks, and their epochs at most (the other settings as for the digits).
        real_hidden: Hidden widths of the MLP-coupling RealNVP control (``n_couplings`` couplings).
        real_bottleneck: The bottleneck size l compared with none on the real pair (K7).
        real_negative_cutoff: Negative training's cutoff c on the real pair (nats; 0 is the level
            of the uniform density on [0, 1)^D, 8 bits/dim).

    Example:
        >>> KirichenkoConfig.from_params(mask="diagonal")
        Traceback (most recent call last):
        ...
        ValueError: mask must be one of 'checkerboard', 'horizontal', 'cycle'; got 'diagonal'
        >>> KirichenkoConfig.from_params(seeds=[0])
        Traceback (most recent call last):
        ...
        ValueError: seeds must hold at least 2 distinct seeds (an interval over seeds needs ...
        >>> KirichenkoConfig().at_seed(2).seed
        2
    """

    STUDY: ClassVar[str] = "kirichenko2020"
    SECTIONS: ClassVar[dict[str, tuple]] = {"train": (TrainConfig, "")}

    in_classes: tuple[int, ...] = field(
        default=(0, 2, 3, 4, 5, 6, 8, 9), metadata=checked(_in_classes)
    )
    n_couplings: int = field(default=4, metadata=checked(check_int, minimum=2, maximum=64))
    channels: int = field(default=16, metadata=checked(check_int, minimum=1, maximum=1024))
    n_blocks: int = field(default=2, metadata=checked(check_int, minimum=1, maximum=32))
    mask: str = field(default="checkerboard", metadata=checked(check_choice, allowed=MASKS))
    masks: tuple[str, ...] = field(
        default=MASKS, metadata=checked(check_choice_list, allowed=MASKS)
    )
    bottlenecks: tuple[int | None, ...] = field(
        default=(None, 32, 8, 2), metadata=checked(_optional_sizes)
    )
    copies: int = field(default=1, metadata=checked(check_int, minimum=1, maximum=64))
    train: TrainConfig = field(default_factory=partial(TrainConfig, batch_size=128))
    negative_target: str = field(
        default="class 1", metadata=checked(check_choice, allowed=NEGATIVE_TARGETS)
    )
    negative_cutoff: float = field(default=-60.0, metadata=checked(check_real))
    features: int = field(default=32, metadata=checked(check_int, minimum=2, maximum=4096))
    n_draws: int = field(default=4, metadata=checked(check_int, minimum=1, maximum=256))
    n_boot: int = field(default=200, metadata=checked(check_int, minimum=10))
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=checked(_seeds))
    device: str = field(default="auto", metadata=checked(check_device))
    chunk_size: int = field(default=512, metadata=checked(check_int, minimum=1))
    real_size: int = field(default=14, metadata=checked(_image_side))
    real_train: int = field(default=1200, metadata=checked(check_int, minimum=10, maximum=50_000))
    real_test: int = field(default=500, metadata=checked(check_int, minimum=10, maximum=10_000))
    real_channels: int = field(default=16, metadata=checked(check_int, minimum=1, maximum=1024))
    real_blocks: int = field(default=1, metadata=checked(check_int, minimum=1, maximum=32))
    real_epochs: int = field(default=10, metadata=checked(check_int, minimum=1, maximum=10_000))
    real_hidden: tuple[int, ...] = field(default=(16, 16), metadata=checked(_widths))
    real_bottleneck: int = field(default=8, metadata=checked(check_int, minimum=1))
    real_negative_cutoff: float = field(default=0.0, metadata=checked(check_real))

    @property
    def seed(self) -> int:
        """The experiment's seed (``train.seed``): it draws the splits, the weights, the noise and
        the bootstraps."""
        return self.train.seed

    def at_seed(self, seed: int) -> KirichenkoConfig:
        """This config with ``seed`` in place of :attr:`seed`: one replicate of the experiment."""
        return replace(self, train=replace(self.train, seed=seed))

    def on_real_images(self) -> KirichenkoConfig:
        """This config with the real-pair flows' st-network (``real_channels``, ``real_blocks``)
        and epochs (``real_epochs``) in place of the digits flows'."""
        return replace(
            self,
            channels=self.real_channels,
            n_blocks=self.real_blocks,
            train=replace(self.train, max_epochs=self.real_epochs),
        )

    def resources(self) -> Estimate:
        """Peak memory and work: 1,797 images of 64 pixels are small; the flows' activations
        dominate.

        Example:
            >>> KirichenkoConfig().resources().peak_bytes < 2**30
            True
        """
        pixels, images = 64, 1_797
        activations = (
            self.train.batch_size
            * pixels
            * self.channels
            * (2 * self.n_blocks + 2)
            * self.n_couplings
            * 4.0
            * 3
        )
        needs = (
            Need(
                "training images and their dequantised copies",
                images * self.copies * pixels * 8.0,
                ("copies",),
            ),
            Need(
                "st-network activations of a batch (forward and backward)",
                activations,
                ("batch_size", "channels", "n_blocks", "n_couplings"),
            ),
        )
        per_image = 2.0 * self.n_couplings * pixels * 9 * self.channels**2 * (2 * self.n_blocks + 2)
        # Per seed, every mask and every bottleneck size (the main flow is both); then negative
        # training.
        n_flows = len({self.seed, *self.seeds}) * (len(self.masks) + len(self.bottlenecks)) + 1
        flops = (
            n_flows * images * self.copies * self.train.max_epochs * 3 * per_image
            + n_flows * 8 * images * self.n_draws * per_image
        )
        # The real pair: both data sets read whole (uint8), then per flow its training subset and
        # five scored sets. Flows: 2 of the pair, the masks and the bottleneck per seed, negative
        # training (the MLP controls and the ceilings cost less than one of them each).
        needs += (
            Need("MNIST and FashionMNIST, 70,000 images each (uint8)", 2 * 70_000 * 784.0, ()),
        )
        real_pixels = self.real_size**2
        per_real = (
            2.0
            * self.n_couplings
            * real_pixels
            * 9
            * self.real_channels**2
            * (2 * self.real_blocks + 2)
        )
        n_real = 3 + len(self.seeds) * (len(self.masks) + 1)
        flops += (
            n_real
            * per_real
            * (
                1.2 * self.real_train * self.copies * self.real_epochs * 3
                + 5 * self.real_test * self.n_draws
            )
        )
        return Estimate(needs, flops)
