# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Appendices A–C: every test distribution
#
# The thesis's Figures 14–25: for every dimension and every family, the KDEs of $\log p_\theta$
# (blue) and $\log p$ (orange) over each member's test set (solid) and over $\mathcal Q(p)$ (dashed),
# one panel per $(s, t)$. Appendix A is the affine family $\Lambda$ (§5), B the perturbed family
# $\Lambda^\delta$ (§6), C the outlier family $\Lambda^{out}$ (§7). All come from the cached tables
# of those chapters. The grids are collapsed; open one with its button.

# %% tags=["parameters", "remove-cell"]
# The profile (notebooks/params/) holds every setting; papermill -p NAME VALUE overrides any of them.
profile = "default"

# %% tags=["hide-input"]
# Merge profile < overrides and validate everything before any work: a bad value stops here.
from flowcore.studies import debruin2024 as thesis

config = thesis.configure(globals())

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from flowcore.report import plots
from flowcore.studies.debruin2024 import evaluation

res = evaluation.results(config)
TITLES = {"affine": "A: the affine family Λ", "perturbed": "B: the perturbed family Λ^δ", "outlier": "C: the outlier family Λ^out"}
FIRST_FIGURE = {"affine": 14, "perturbed": 18, "outlier": 22}


def appendix(family: str) -> None:
    """All KDE grids of one family, one figure per D (the thesis's numbering where D is one of its four)."""
    display(Markdown(f"### Appendix {TITLES[family]}"))
    for i, dim in enumerate(config.dims):
        keys = [(dim, family, s, t) for s in config.scales for t in config.shifts]
        fig = plots.member_grid(res.curves, keys, ncols=len(config.shifts), width=3.0, height=2.4)
        number = f"Figure {FIRST_FIGURE[family] + i}: " if list(config.dims) == [10, 20, 50, 100] else ""
        fig.suptitle(f"{number}D = {dim}, {TITLES[family].split(': ')[1]}: rows s, columns t")
        plt.show()


# %% [markdown]
# ## Appendix A

# %% tags=["hide-input", "hide-output"]
if "affine" in config.families:
    appendix("affine")

# %% [markdown]
# ## Appendix B

# %% tags=["hide-input", "hide-output"]
if "perturbed" in config.families:
    appendix("perturbed")

# %% [markdown]
# ## Appendix C

# %% tags=["hide-input", "hide-output"]
if "outlier" in config.families:
    appendix("outlier")
