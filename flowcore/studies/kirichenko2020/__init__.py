"""A study of Kirichenko, Izmailov & Wilson (2020), *Why Normalizing Flows Fail to Detect
Out-of-Distribution Data* (NeurIPS 2020), run offline on scikit-learn's bundled data: 8×8 digits
(in-distribution classes, held-out classes and transformed digits as OOD sets, photo patches
standing in for natural images) and two tabular data sets for the one-class experiments.

- :mod:`~flowcore.studies.kirichenko2020.data` — splits, OOD sets, dequantisation, bits/dim, AUROC.
- :mod:`~flowcore.studies.kirichenko2020.config` — the validated parameters of a run.
- :mod:`~flowcore.studies.kirichenko2020.experiments` — training (and the untrained null), scoring
  and the co-adaptation metrics.
- :mod:`~flowcore.studies.kirichenko2020.analysis` — every table and measurement of the two
  chapters.
- :mod:`~flowcore.studies.kirichenko2020.seeds` — the compared flows replicated over seeds, and
  their paired intervals.
- :mod:`~flowcore.studies.kirichenko2020.claims` — verdicts on the claims K1–K11.
- :mod:`~flowcore.studies.kirichenko2020.figures` — the chapters' figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowcore import config as _config
from flowcore.studies.kirichenko2020.config import MASKS, KirichenkoConfig

__all__ = ["CONFIG", "MASKS", "KirichenkoConfig", "configure"]

#: The study's config class (what :func:`flowcore.studies.config_class` returns).
CONFIG = KirichenkoConfig


def configure(namespace: Mapping[str, Any], show: bool = True) -> KirichenkoConfig:
    """:func:`flowcore.config.configure` for this study: profile < injected values, validated."""
    return _config.configure(KirichenkoConfig, namespace, show)
