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
# # Robustness: outlier distributions
#
# This chapter mirrors §7 of the thesis, which calls these distributions ones whose "correlations,
# covariance, and means are entirely different" from $p$'s (§7). Ours share three things with $p$: the
# dimension, the anchor $\mu_p$ that their mean is moved away from, and the *law* their eigenvalues
# are drawn from (the recipe of $\Sigma_p$, with a fresh draw); the thesis does not say how it drew
# its own. The outlier family
#
# $$q^{out}_\lambda(s, t) = \mathcal N(\mu_{out} + t\mathbf 1,\; s^2\Sigma_{out}), \qquad
# \Lambda^{out} = \{q^{out}_\lambda(s, t) \mid s \in S,\, t \in T\},$$
#
# has a covariance with its own eigenvalues and rotation, and a mean moved away from $\mu_p$ in
# an independent random direction (the recipe and its calibration are in the perturbation
# chapter). The truth should give these samples far lower log-likelihoods than samples of $p$.
#
# It tests **C9** (the model overestimates the outliers' log-likelihood so much that its KDE
# overlaps that of $\mathcal Q(p)$, more so as $D$ grows) and **C10** (within $\Lambda^{out}$, $s$
# and $t$ move $\log p_\theta$ as in the generalization experiments, and the model overestimates
# everywhere).

# %% tags=["parameters", "remove-cell"]
# The profile (notebooks/params/) holds every setting; papermill -p NAME VALUE overrides any of them.
profile = "default"
outlier_offset = None
outlier_cov_scale = None

# %% tags=["hide-input"]
# Merge profile < overrides and validate everything before any work: a bad value stops here.
from flowcore.studies import debruin2024 as thesis

config = thesis.configure(globals())

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from flowcore.report import plots, tables
from flowcore.studies.debruin2024 import claims, columns as col, evaluation

# %%
res = evaluation.results(config, families=["outlier"])
table = res.table
consts = res.constants
display(Markdown(f"Outlier recipe: offset m = {consts.outlier.offset:.4f}, covariance scale c = {consts.outlier.cov_scale:.4f} ({consts.source['outlier_offset']})."))
res.timings.style.format(precision=2)

# %% [markdown]
# ## Figure 11: the outlier distribution against $p$, every $D$
#
# Solid: KDEs over the outlier test set $\mathcal Q(q^{out})$ at $s = 1$, $t = 0$; dashed: over
# $\mathcal Q(p)$. The truth's curves (orange) should barely touch. Each curve is drawn on its own
# grid, so a narrow peak far from the others keeps its shape.

# %% tags=["hide-input"]
fig = plots.member_grid(res.curves, [(d, "outlier", 1.0, 0.0) for d in config.dims], ncols=2, width=4.4, height=3.2)
fig.suptitle(r"Figure 11: $q^{out}(s=1, t=0)$ against $p$")
plt.show()

# %% tags=["hide-input"]
base = table[np.isclose(table["s"], 1) & np.isclose(table["t"], 0)].set_index("D")
base.assign(**{"mean log p over Q(q^out)": -base[col.H_STAR_QP], "mean log pθ over Q(q^out)": -base[col.H_STAR_Q_MODEL]})[
    ["mean log p over Q(q^out)", "mean log pθ over Q(q^out)", col.MEAN_SHIFT_MODEL, col.OVL_TRUTH, col.OVL_MODEL, col.TNR_TRUTH, col.TNR_MODEL]
].style.format(precision=3)

# %% [markdown]
# The third column compares the model's mean log-likelihood on the outliers with its mean on
# $\mathcal Q(p)$: positive values mean the model rates outliers *more* likely than its own
# training distribution (the thesis's finding at $D = 100$).
#
# ## Figure 12: $\Lambda^{out}$ at $D = 50$

# %% tags=["hide-input"]
d50 = claims.nearest_dim(table, 50)
picks = [(s, 0.0) for s in config.scales if s != 1] + [(1.0, t) for t in config.shifts if t > 0] + [(s, t) for s in (0.5, 1.25) for t in (0.25, 0.5)]
picks = [(s, t) for s, t in dict.fromkeys(picks) if s in config.scales and t in config.shifts]
fig = plots.member_grid(res.curves, [(d50, "outlier", s, t) for s, t in picks])
fig.suptitle(f"Figure 12: outlier members at D = {d50}")
plt.show()

# %% [markdown]
# How $s$ and $t$ move the model's log-likelihood on the outliers, and whether it overestimates
# (gap $H(q, p_\theta) - H^*(q, p) < 0$), per $D$:

# %% tags=["hide-input"]
pivot = table.assign(**{"mean log pθ": -table[col.H_STAR_Q_MODEL]}).pivot_table(index=["D", "s"], columns="t", values=["mean log pθ", col.GAP])
pivot.style.format(precision=2)

# %% [markdown]
# ## Checks that must hold whatever the verdicts

# %%
n_expected = len(config.dims) * len(config.scales) * len(config.shifts)
assert len(table) == n_expected, f"{len(table)} rows, expected {n_expected}"
assert np.isfinite(table.select_dtypes("number").to_numpy()).all()
print(f"all checks passed for {len(table)} outlier distributions")

# %% [markdown]
# ## Verdicts

# %% tags=["hide-input"]
checks = claims.assess_each(table, [claims.c9_outlier, claims.c10_outlier_grid])
tables.verdict_html(checks, claims.SOURCES)

# %% [markdown]
# ## Conclusion

# %% tags=["hide-input"]
c9, c10 = checks
display(Markdown(
    f"**C9 is {c9.label()}** ({c9.reason}): {c9.evidence}. **C10 is {c10.label()}** ({c10.reason}): {c10.evidence}. "
    f"The same checks give: for p̂, C9 {c9.label('p̂')} and C10 {c10.label('p̂')}; for the untrained flow, C9 {c9.label('untrained')} and C10 {c10.label('untrained')}."
))
