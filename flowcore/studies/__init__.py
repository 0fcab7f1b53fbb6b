"""One subpackage per study: what is specific to one paper (its data or families, its calibration,
its claims' checks). Everything general lives in the core modules of :mod:`flowcore`.

- :mod:`flowcore.studies.debruin2024` — the thesis (de Bruin, TU Delft, 2024).
- :mod:`flowcore.studies.kirichenko2020` — Kirichenko, Izmailov & Wilson (2020), why flows fail at
  OOD detection.
- :mod:`flowcore.studies.song2024` — Song et al. (2024), the KL-Jacobian regulariser.
- :mod:`flowcore.studies.deboer2020` — de Boer (2020), marginalizing flows.
"""

from __future__ import annotations

import importlib

__all__ = ["STUDIES", "config_class"]

#: Each study's name (its profile section, its notebooks/ and book/chapters/ folder).
STUDIES = ("debruin2024", "kirichenko2020", "song2024", "deboer2020")


def config_class(study: str):
    """The config class of ``study`` (e.g. :class:`~flowcore.studies.debruin2024.ThesisConfig`).

    Example:
        >>> config_class("debruin2024").STUDY
        'debruin2024'
    """
    if study not in STUDIES:
        raise ValueError(f"study must be one of {', '.join(map(repr, STUDIES))}; got {study!r}")
    return importlib.import_module(f"flowcore.studies.{study}").CONFIG
