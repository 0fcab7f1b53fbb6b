"""A study of Song et al. (2024), *Robustly Train Normalizing Flows via KL Divergence
Regularization* (AAAI 2024): the linear theory of their KL regulariser (a linear flow with a
Gaussian base, whose maximum likelihood fit, L2- and KL-regularised fits and pseudo-sample
equivalence have closed forms, checked against numerical optimisation in
:mod:`flowcore.studies.song2024.linear`), as the basis for the deep Jacobian regulariser (KLJ) the
paper proposes for coupling flows.

- :mod:`~flowcore.studies.song2024.config` — the validated parameters of a run.
- :mod:`~flowcore.studies.song2024.linear` — the linear theory in closed form.
- :mod:`~flowcore.studies.song2024.klj` — the KLJ regulariser and weight decay as loss terms.
- :mod:`~flowcore.studies.song2024.deep` — KLJ on deep flows with a known truth.
- :mod:`~flowcore.studies.song2024.analysis` — the linear experiment, live theorem checks, the
  thesis's families.
- :mod:`~flowcore.studies.song2024.digits` — the class-conditional analogue of Tables 1–2, on 8×8
  digits and on MNIST/FashionMNIST (one code path).
- :mod:`~flowcore.studies.song2024.claims` — verdicts on S1–S14.
- :mod:`~flowcore.studies.song2024.figures` — the KL-Jacobian chapter's figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowcore import config as _config
from flowcore.studies.song2024.config import SongConfig

__all__ = ["CONFIG", "SongConfig", "configure"]

#: The study's config class (what :func:`flowcore.studies.config_class` returns).
CONFIG = SongConfig


def configure(namespace: Mapping[str, Any], show: bool = True) -> SongConfig:
    """:func:`flowcore.config.configure` for this study: profile < injected values, validated."""
    return _config.configure(SongConfig, namespace, show)
