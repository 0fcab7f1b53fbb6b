"""Verdict tables a reader takes in at a glance: one line per claim, the sub-checks folded below.

:func:`verdict_html` renders :func:`flowcore.verdicts.claims_table` (statement, verdict for the
model and for each null in its place, the numbers it rests on) and, in a collapsed ``<details>``
block, :func:`flowcore.verdicts.subcheck_table` with the thesis's words beside each criterion.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import pandas as pd

from flowcore.verdicts import NULLS, ClaimCheck, claims_table, subcheck_table

__all__ = ["verdict_html", "VerdictTables"]

_STYLE = (
    "<style>.fc-verdicts {font-size: 0.82em; width: 100%;} .fc-verdicts td, .fc-verdicts th "
    "{text-align: left; vertical-align: top; white-space: normal; padding: 2px 6px;}</style>"
)


def _frame_html(frame: pd.DataFrame, index: bool) -> str:
    return frame.to_html(index=index, escape=True, classes="fc-verdicts", border=0)


class VerdictTables:
    """The rendered tables; Jupyter shows the HTML, ``.claims`` and ``.subchecks`` hold the frames.

    Example:
        >>> import pandas as pd
        >>> VerdictTables(pd.DataFrame(), pd.DataFrame(), "<p>verdicts</p>")._repr_html_()
        '<p>verdicts</p>'
    """

    def __init__(self, claims: pd.DataFrame, subchecks: pd.DataFrame, markup: str):
        self.claims, self.subchecks, self._markup = claims, subchecks, markup

    def _repr_html_(self) -> str:
        return self._markup


def verdict_html(
    checks: Sequence[ClaimCheck],
    sources: Mapping[str, tuple[str, str]] | None = None,
    open_details: bool = False,
    source_label: str = "thesis",
    words_label: str = "the thesis's words",
) -> VerdictTables:
    """One line per claim (statement, verdict, the nulls' verdicts, what it rests on, thesis figure,
    our chapter), then every sub-check with model and null marks and the thesis's words, folded.
    Columns that are empty for every claim (a null not run, no quotes) are left out;
    ``source_label`` and ``words_label`` name the source's columns (another paper than the thesis).

    Example:
        >>> from flowcore.verdicts import Findings, SubCheck, judge
        >>> m = Findings((SubCheck("gap < 0", "main", {"D=10": True}),), "…")
        >>> t = Findings((SubCheck("gap < 0", "main", {"D=10": False}),), "…")
        >>> out = verdict_html([judge("C0", "failure", {"model": m, "truth": t}, "A claim.")])
        >>> out.claims.loc["C0", "verdict"], "<details" in out._repr_html_()
        ('reproduced', True)
    """
    table = claims_table(checks)
    short = table[["statement", "verdict", *NULLS, "rests on"]].copy()
    if sources:
        short[source_label] = [sources.get(c, ("", ""))[0] for c in short.index]
        short["chapter"] = [sources.get(c, ("", ""))[1] for c in short.index]
    short = short[[c for c in short.columns if not (short[c] == "—").all()]]
    rows = subcheck_table(checks).rename(columns={"the thesis's words": words_label})
    rows = rows[[c for c in rows.columns if not rows[c].isin(["—", ""]).all()]]
    why = "".join(
        f"<li><b>{html.escape(c)}</b>: {html.escape(r)}</li>" for c, r in table["why"].items()
    )
    details = (
        f"<details{' open' if open_details else ''}><summary>Sub-checks per claim: the model and "
        "the nulls in its place (p̂: the ML Gaussian of the training set; untrained: the model "
        "at its initialisation; truth: p itself). ✓ every unit it is judged on passes, ◐ some, ✗ "
        "none, ? none but the interval straddles the threshold at some; “uninformative”: a null "
        "passes it too, so it does not count for the model</summary>"
        f"{_frame_html(rows, index=False)}<p>How each verdict follows from the "
        f"rule:</p><ul>{why}</ul></details>"
    )
    return VerdictTables(short, rows, _STYLE + _frame_html(short, index=True) + details)
