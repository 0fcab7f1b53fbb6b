"""What a reader sees: the book's figure types (:mod:`~flowcore.report.plots`) and the interactive
explorer (:mod:`~flowcore.report.explorer`)."""

from flowcore.report import plots

__all__ = ["plots"]
