r"""The parameters of the de Boer (2020) study: one validated config per run, built from the
``deboer2020`` section of a profile (its defaults equal the ``default`` profile's values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from flowcore.config import StudyConfig
from flowcore.devices import resolve_device
from flowcore.resources import Estimate, Need
from flowcore.validation import assign_checked, check_int, check_int_list, check_positive

__all__ = ["DeBoerConfig", "THESIS_TABLE2"]

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


@dataclass(frozen=True)
class DeBoerConfig(StudyConfig):
    """Everything the chapter needs, validated.

    Attributes:
        dims, psis, aux: The grid of Table 2: D, ψ (x = u^ψ) and the auxiliary dimensions B.
        seeds: Models per cell; the best on the validation set is reported beside the mean (≥ 1). The
            claims that compare B use Student-t intervals over the seeds: with one seed they cannot tell.
        n_train, n_val, n_test: Sample sizes (the thesis: n = 2048).
        batch_size, lr, max_epochs, patience: Training (Adam; the thesis trains 1,024 epochs).
        n_blocks, hidden: The R-block flow (thesis: 4 R-blocks; widths not stated).
        n_samples: S, importance samples of the marginal (thesis: 200).
        moons_aux, moons_batch_size: B values and batch size of the half-moons experiment.
        digits_aux, digits_epochs: B values and epochs of the 8×8 digits substitute for Table 4.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Example:
        >>> DeBoerConfig.from_params(psis=[0])
        Traceback (most recent call last):
        ...
        ValueError: psis[0] must be an integer ≥ 1, got 0
    """

    STUDY: ClassVar[str] = "deboer2020"

    dims: tuple[int, ...] = (2, 3, 4)
    psis: tuple[int, ...] = (1, 2, 3)
    aux: tuple[int, ...] = (0, 2, 4)
    seeds: tuple[int, ...] = (0, 1, 2)
    n_train: int = 2048
    n_val: int = 512
    n_test: int = 2048
    batch_size: int = 256
    lr: float = 0.001
    max_epochs: int = 40
    patience: int = 10
    n_blocks: int = 4
    hidden: tuple[int, ...] = (64, 64)
    n_samples: int = 50
    moons_aux: tuple[int, ...] = (0, 1, 3, 4)
    moons_batch_size: int = 64
    digits_aux: tuple[int, ...] = (0, 2, 8, 16)
    digits_epochs: int = 20
    device: str = "auto"

    def __post_init__(self):
        seeds = check_int_list("seeds", self.seeds, minimum=0)
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {list(self.seeds)}")
        resolve_device(self.device)
        assign_checked(
            self,
            dims=check_int_list("dims", self.dims, minimum=1),
            psis=check_int_list("psis", self.psis, minimum=1),
            aux=check_int_list("aux", self.aux, minimum=0),
            seeds=seeds,
            n_train=check_int("n_train", self.n_train, minimum=8),
            n_val=check_int("n_val", self.n_val, minimum=2),
            n_test=check_int("n_test", self.n_test, minimum=10),
            batch_size=check_int("batch_size", self.batch_size, minimum=1),
            lr=check_positive("lr", self.lr),
            max_epochs=check_int("max_epochs", self.max_epochs, minimum=1),
            patience=check_int("patience", self.patience, minimum=1),
            n_blocks=check_int("n_blocks", self.n_blocks, minimum=1, maximum=64),
            hidden=check_int_list("hidden", self.hidden, minimum=1),
            n_samples=check_int("n_samples", self.n_samples, minimum=1),
            moons_aux=check_int_list("moons_aux", self.moons_aux, minimum=0),
            moons_batch_size=check_int("moons_batch_size", self.moons_batch_size, minimum=1),
            digits_aux=check_int_list("digits_aux", self.digits_aux, minimum=0),
            digits_epochs=check_int("digits_epochs", self.digits_epochs, minimum=1),
        )
        if max(self.dims) > 64 or max(self.psis) > 9 or max(self.aux + self.moons_aux + self.digits_aux) > 256:
            raise ValueError("dims ≤ 64, psis ≤ 9 and aux, moons_aux, digits_aux ≤ 256 (the study's small synthetic laws)")

    def resources(self) -> Estimate:
        """Peak memory and work of the grid (tiny flows; the importance samples dominate evaluation).

        Example:
            >>> DeBoerConfig().resources().peak_bytes < 2**30
            True
        """
        width = float(max(self.dims) + max(self.aux))
        needs = (Need("importance samples of a test set", float(self.n_test) * self.n_samples * (width + 64) * 8.0 / 8, ("n_test", "n_samples")),)
        per = 2.0 * 2 * self.n_blocks * sum(a * b for a, b in zip([width, *self.hidden], [*self.hidden, 2 * width]))
        cells = len(self.dims) * len(self.psis) * len(self.aux) * len(self.seeds)
        flops = cells * (self.n_train * self.max_epochs * 3 * per + self.n_test * self.n_samples * per)
        return Estimate(needs, flops)
