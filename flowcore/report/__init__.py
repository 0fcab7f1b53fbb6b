"""What a reader sees: the book's figure types (:mod:`~flowcore.report.plots`), the verdict tables
(:mod:`~flowcore.report.tables`) and the interactive explorer (:mod:`~flowcore.report.explorer`)."""

from flowcore.report import plots, tables

__all__ = ["plots", "tables"]
