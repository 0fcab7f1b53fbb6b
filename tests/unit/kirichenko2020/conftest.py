"""What the Kirichenko unit tests share: the parameters of a tiny study (seconds on a CPU)."""

import pytest

from flowcore.studies.kirichenko2020.config import KirichenkoConfig


@pytest.fixture
def tiny_config():
    """``tiny_config(**more)``: the study's config with tiny image flows, plus ``more``."""

    def make(**more) -> KirichenkoConfig:
        return KirichenkoConfig.from_params(
            channels=2,
            n_blocks=1,
            n_couplings=2,
            copies=1,
            max_epochs=1,
            patience=1,
            n_draws=1,
            n_boot=10,
            features=4,
            device="cpu",
            **more,
        )

    return make
