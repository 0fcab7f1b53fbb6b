"""An interactive explorer of the evaluated test distributions (Jupyter with ipywidgets).

Pick a dimension, a family, a scale s and a shift t; the explorer draws the KDEs of log p and
log pθ over that member's test set beside those over Q(p), and lists its numbers. Everything comes
from a :class:`flowcore.studies.debruin2024.evaluation.Results`, i.e. from the cache: nothing is
trained or sampled.

The figure is shown as SVG with its text kept as text (``svg.fonttype: none``), so its title, tick
labels and legend are part of the page (searchable, and read back by the live browser test), and the
numbers as an HTML table captioned with the member.

``python3 pipeline.py explore`` serves it as a page (Voilà) from the cached results of a build.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import pandas as pd

from flowcore.studies.debruin2024 import columns as col
from flowcore.report.plots import member_kdes

if TYPE_CHECKING:
    from flowcore.studies.debruin2024.evaluation import Results

__all__ = ["NUMBERS", "member_title", "member_numbers", "member_figure", "member_svg", "explorer"]

#: The numbers shown for a member, in nats or as rates.
NUMBERS = [
    col.H_QP,
    col.H_STAR_QP,
    col.H_STAR_Q_MODEL,
    col.H_STAR_Q_HAT,
    col.KL_QP,
    col.KL_STAR_Q_MODEL,
    col.TNR_TRUTH,
    col.TNR_MODEL,
    col.AUROC_TRUTH,
    col.AUROC_MODEL,
    col.OVL_TRUTH,
    col.OVL_MODEL,
]


def member_title(dim: int, family: str, s: float, t: float) -> str:
    """The name of one member, as the explorer's figure and table show it:
    ``"D = 7, perturbed, s = 1, t = 0"``."""
    return f"D = {dim}, {family}, s = {s:g}, t = {t:g}"


def member_numbers(results: Results, dim: int, family: str, s: float, t: float) -> pd.DataFrame:
    """The :data:`NUMBERS` of one member as a one-column table."""
    row = results.member(dim, family, s, t)
    return pd.DataFrame({"value": [float(row[n]) for n in NUMBERS]}, index=NUMBERS)


def member_figure(results: Results, dim: int, family: str, s: float, t: float):
    """The member's four KDEs (:func:`flowcore.report.plots.member_kdes`) titled
    :func:`member_title`."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
    member_kdes(ax, results.curves[(dim, family, s, t)], member_title(dim, family, s, t))
    ax.legend(fontsize=8)
    return fig


def member_svg(results: Results, dim: int, family: str, s: float, t: float) -> str:
    """:func:`member_figure` as SVG text whose labels stay ``<text>`` elements (the figure is
    closed)."""
    fig = member_figure(results, dim, family, s, t)
    buffer = io.StringIO()
    try:
        with plt.rc_context({"svg.fonttype": "none"}):
            fig.savefig(buffer, format="svg")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def explorer(results: Results):
    """The widget: dropdowns for D, family, s and t above a KDE panel and the member's numbers."""
    import ipywidgets as widgets
    from IPython.display import SVG, display

    table = results.table
    choose = {
        "dim": widgets.Dropdown(options=sorted(table["D"].unique().tolist()), description="D"),
        "family": widgets.Dropdown(
            options=list(dict.fromkeys(table["family"])), description="family"
        ),
        "s": widgets.Dropdown(
            options=sorted(table["s"].unique().tolist()),
            value=1.0 if 1.0 in set(table["s"]) else None,
            description="s",
        ),
        "t": widgets.Dropdown(options=sorted(table["t"].unique().tolist()), description="t"),
    }

    def show(dim, family, s, t):
        display(SVG(member_svg(results, dim, family, s, t)))
        display(
            member_numbers(results, dim, family, s, t)
            .style.format(precision=4)
            .set_caption(member_title(dim, family, s, t))
        )

    output = widgets.interactive_output(show, choose)
    return widgets.VBox([widgets.HBox(list(choose.values())), output])
