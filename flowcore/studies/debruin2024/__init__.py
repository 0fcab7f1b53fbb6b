"""The thesis: de Bruin (TU Delft, 2024), *A Step Towards Understanding Normalizing Flows and their
Likelihood Behavior*. A RealNVP trained on full-covariance Gaussians, tested on scaled, shifted,
perturbed and outlier Gaussians (families Λ, Λ^δ, Λ^out), claims C1–C11 and a sensitivity sweep.

A chapter starts with ``config = configure(globals())`` right after its parameters cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowcore import config as _config
from flowcore.studies.debruin2024.config import SCALES, SHIFTS, Sweep, ThesisConfig

__all__ = ["CONFIG", "SCALES", "SHIFTS", "Sweep", "ThesisConfig", "configure"]

#: The study's config class (what :func:`flowcore.studies.config_class` returns).
CONFIG = ThesisConfig


def configure(namespace: Mapping[str, Any], show: bool = True) -> ThesisConfig:
    """:func:`flowcore.config.configure` for this study: profile < injected values, validated."""
    return _config.configure(ThesisConfig, namespace, show)
