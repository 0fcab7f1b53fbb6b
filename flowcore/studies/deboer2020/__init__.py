r"""A study of de Boer (2020), *Marginalizing Flows* (BSc thesis, Radboud University): a flow on the
data augmented with :math:`B` auxiliary Gaussian dimensions, trained on the joint and marginalised
by importance sampling, tested on synthetic data :math:`x = u^\psi`
(:math:`u \sim \mathcal N(0, I_D)`, :math:`\psi \in \{1, 2, 3\}`), on two half-moons and on images.
The synthetic data and the half-moons have known densities, so every log-likelihood of the thesis's
Table 2 can be set against the true expected log-likelihood, and every sample set against the true
law (:mod:`~flowcore.studies.deboer2020.truths`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowcore import config as _config
from flowcore.studies.deboer2020.config import DeBoerConfig

__all__ = ["CONFIG", "DeBoerConfig", "configure"]

#: The study's config class (what :func:`flowcore.studies.config_class` returns).
CONFIG = DeBoerConfig


def configure(namespace: Mapping[str, Any], show: bool = True) -> DeBoerConfig:
    """:func:`flowcore.config.configure` for this study: profile < injected values, validated."""
    return _config.configure(DeBoerConfig, namespace, show)
