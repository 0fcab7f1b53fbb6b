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
# # Generalization: scaled and shifted copies of the training Gaussian
#
# This chapter mirrors §5 of the thesis. The flow of the baseline chapter, trained on
# $p = \mathcal N(\mu_p, \Sigma_p)$, is now evaluated on test distributions that keep $p$'s
# correlations but move its volume and location (Eq. 12):
#
# $$q_\lambda(s, t) = \mathcal N(\mu_p + t\mathbf 1,\; s^2\Sigma_p), \qquad
# \Lambda = \{q_\lambda(s, t) \mid s \in S,\, t \in T\} \quad \text{(Eq. 19)},$$
#
# with $S = \{0.25, 0.5, 0.75, 1, 1.25, 1.75\}$ (contraction $s<1$, expansion $s>1$) and
# $T = \{0, 0.25, 0.5, 0.75\}$. Because $q_\lambda$ and $p$ are Gaussians, $H(q_\lambda, p)$ and
# $D_{KL}(q_\lambda\|p)$ are analytic; the model's $H(q_\lambda, p_\theta)$ can only be estimated by
# Monte Carlo (Eq. 14). A model that generalizes keeps the gap
# $\Delta_{HC} = |H^*(q_\lambda, p) - H(q_\lambda, p_\theta)|$ small.
#
# It tests **C2–C3** on every member of $\Lambda$ (the perturbation and robustness chapters add
# theirs), and **C4** (varying $s$ alone keeps $\Delta_{HC}$ and the variance of $\log p_\theta$ in
# line with the truth), **C5** (increasing $t$ makes the model overestimate the log-likelihood),
# **C6** (at $D = 20$, $s = 0.75$, $t = 0.25$ the model's KDEs over $\mathcal Q(q)$ and
# $\mathcal Q(p)$ overlap almost fully).

# %% tags=["parameters", "remove-cell"]
# The profile (notebooks/params/) holds every setting; papermill -p NAME VALUE overrides any of them.
profile = "default"
dims = [10, 20, 50, 100]
n_test = 100_000

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

# %% [markdown]
# ## Evaluating every member of $\Lambda$
#
# For each $D$ the flow comes from the cache (trained in the baseline chapter). Every
# $q_\lambda \in \Lambda$ gets its own test set of `n_test` samples; all of them stream through
# $\log p$, $\log p_\theta$ and the two nulls that every claim check runs with in the model's place
# (the maximum-likelihood Gaussian $\log\hat p$ of the training set, and the flow at its
# initialisation $\log p_{\theta_0}$) in one batched pass per dimension
# (`flowcore.studies.debruin2024.evaluation`). The result is one tidy table with a row per
# $(D, s, t)$; it is cached, and later chapters reuse it.

# %%
res = evaluation.results(config, families=["affine"])
table = res.table
res.timings.style.format(precision=2)

# %% [markdown]
# ## Figure 2: cross-entropies against $s$
#
# One row per $D$, one column per $t$. The analytic $H(q, p)$ (line) and its Monte-Carlo estimate
# $H^*(q, p)$ (markers, ±2 SE) should coincide (C2). The model's $H(q, p_\theta)$ is the estimate
# with $\log p_\theta$; the entropy $H(q)$ is the floor no model can beat on average.

# %% tags=["hide-input"]
lines = {
    r"$H(q,p)$ analytic": ("affine", col.H_QP, {"color": "tab:orange", "lw": 2}),
    r"$H^*(q,p)$ Monte Carlo": ("affine", col.H_STAR_QP, {"color": "k", "ls": "none", "marker": "o", "ms": 3}),
    r"$H(q,p_\theta)$ model": ("affine", col.H_STAR_Q_MODEL, {"color": "tab:blue", "marker": "s", "ms": 3}),
    r"$H(q,\hat p)$ ML Gaussian": ("affine", col.H_STAR_Q_HAT, {"color": "tab:gray", "ls": ":", "lw": 1}),
    r"$H(q)$ analytic": ("affine", col.H_Q, {"color": "tab:green", "ls": "--", "lw": 1}),
}
fig = plots.versus_s(table, lines, config.dims, config.shifts, "cross-entropy (nats)")
fig.suptitle(r"Figure 2: cross-entropies over $\Lambda$")
plt.show()

# %% [markdown]
# The cross-entropies span tens to hundreds of nats, so the gap is easier to read on its own.
# Below, the signed gap $H(q, p_\theta) - H^*(q, p)$, the paired mean of $\log p - \log p_\theta$
# over the same samples (so its standard error is small): **negative values mean the model
# assigns higher log-likelihoods than the truth** (overestimation, the thesis's concern).

# %% tags=["hide-input"]
gap_lines = {
    r"RealNVP $H(q,p_\theta) - H^*(q,p)$": ("affine", col.GAP, {"color": "tab:blue", "marker": "s", "ms": 3}),
    r"ML Gaussian $H(q,\hat p) - H^*(q,p)$": ("affine", col.of(col.GAP, "p̂"), {"color": "tab:gray", "ls": ":", "marker": ".", "ms": 3}),
}
fig = plots.versus_s(table, gap_lines, config.dims, config.shifts, "gap (nats)")
for ax in fig.axes[: len(config.dims) * len(config.shifts)]:
    ax.axhline(0, color="tab:orange", lw=1)
fig.suptitle("Cross-entropy gap: below 0, the model overestimates log-likelihood")
plt.show()

# %% [markdown]
# ## Figures 3–5: KDEs at $D = 20$
#
# Each panel shows, for one test distribution, the KDE of $\log p_\theta$ (blue) and $\log p$
# (orange) over the test set $\mathcal Q(q)$ (solid) and over the reference set $\mathcal Q(p)$
# (dashed). The thesis's Figure 3 varies $s$ only, Figure 4 $t$ only, Figure 5 both.

# %% tags=["hide-input"]
d20 = claims.nearest_dim(table, 20)
only_s = [(d20, "affine", s, 0.0) for s in config.scales]
fig = plots.member_grid(res.curves, only_s)
fig.suptitle(f"Figure 3: varying s only (t = 0), D = {d20}")
plt.show()

# %% tags=["hide-input"]
only_t = [(d20, "affine", 1.0, t) for t in config.shifts] if 1.0 in config.scales else []
if only_t:
    fig = plots.member_grid(res.curves, only_t, ncols=2)
    fig.suptitle(f"Figure 4: varying t only (s = 1), D = {d20}")
    plt.show()

# %% tags=["hide-input"]
both = [(d20, "affine", s, t) for s in config.scales if s != 1 for t in config.shifts if 0 < t <= 0.5]
fig = plots.member_grid(res.curves, both)
fig.suptitle(f"Figure 5: varying s and t together, D = {d20}")
plt.show()

# %% [markdown]
# ## Figure 6: KL divergences
#
# $D_{KL}(q\|p)$ from Proposition 1 (line), the thesis's estimate $D^*_{KL}(q\|p) = H^*(q,p) - H(q)$
# (markers), and the model's $D^*_{KL}(q\|p_\theta) = H(q,p_\theta) - H(q)$. Where the model's
# divergence lies *below* the truth's, the model finds the test distribution more similar to its
# training distribution than it is.

# %% tags=["hide-input"]
kl_lines = {
    r"$D_{KL}(q\|p)$ Prop. 1": ("affine", col.KL_QP, {"color": "tab:orange", "lw": 2}),
    r"$D^*_{KL}(q\|p)$": ("affine", col.KL_STAR_QP, {"color": "k", "ls": "none", "marker": "o", "ms": 3}),
    r"$D^*_{KL}(q\|p_\theta)$ model": ("affine", col.KL_STAR_Q_MODEL, {"color": "tab:blue", "marker": "s", "ms": 3}),
}
fig = plots.versus_s(table, kl_lines, config.dims, config.shifts, "KL divergence (nats)")
fig.suptitle(r"Figure 6: KL divergences over $\Lambda$")
plt.show()

# %% [markdown]
# ## The numbers behind C4 and C5
#
# For $t = 0$ (C4): the gap over $s$ and the ratio of the variances of $\log p_\theta$ and $\log p$
# over $\mathcal Q(q)$. For $s = 1$ (C5): the gap over $t$ against $D_{KL}(q\|p)$, and the overlap
# of the KDEs of $\log p_\theta$ and $\log p$ over the same test set.

# %% tags=["hide-input"]
view = table.assign(**{"Var ratio pθ/p": table[col.VAR_MODEL] / table[col.VAR_TRUTH]})
c4_cols = [col.H_QP, col.GAP, col.SE_GAP, "Var ratio pθ/p"]
display(Markdown("**t = 0, varying s (C4)**"))
display(view[np.isclose(view["t"], 0)].set_index(["D", "s"])[c4_cols].unstack("D").style.format(precision=3))
c5_cols = [col.KL_QP, col.GAP, col.SE_GAP, col.OVL_MODEL_VS_TRUTH]
display(Markdown("**s = 1, varying t (C5)**"))
display(view[np.isclose(view["s"], 1)].set_index(["D", "t"])[c5_cols].unstack("D").style.format(precision=3))

# %% [markdown]
# ## Explore any test distribution
#
# In Jupyter, the explorer below lets you pick $D$, the family (this chapter's $\Lambda$, and the
# perturbed and outlier families of the next chapters), $s$ and $t$, and shows that member's KDEs
# with its cross-entropies, KL divergence, TNR and AUROC. It reads the cached results only, so it
# answers at once and never retrains.

# %% tags=["remove-cell"]
# The live explorer (needs a running kernel, so it is removed from the static HTML).
from flowcore.report.explorer import explorer

everything = evaluation.results(config)
explorer(everything)

# %% [markdown]
# ```{note}
# This page is static, so the explorer is replaced by the grid below: the member $s = 0.75$,
# $t = 0.25$ at every $D$, for each family. To use the live version after building the book once,
# run `python3 pipeline.py explore` (add `--profile ci` for a ci build): it serves the explorer on
# 127.0.0.1 and prints its address, and every number comes from the cache in seconds. Or open this
# chapter as a notebook, `.venv/bin/jupyter lab notebooks/debruin2024/generalization.py` (jupytext
# opens it), and run all cells.
# ```

# %% tags=["hide-input"]
everything = evaluation.results(config)
keys = [(d, fam, 0.75, 0.25) for fam in dict.fromkeys(everything.table["family"]) for d in config.dims if (d, fam, 0.75, 0.25) in everything.curves]
if keys:
    fig = plots.member_grid(everything.curves, keys, ncols=len(config.dims), width=3.2, height=2.6)
    fig.suptitle("Static explorer: s = 0.75, t = 0.25; rows: affine, perturbed, outlier; columns: D")
    plt.show()

# %% [markdown]
# ## Checks that must hold whatever the verdicts
#
# The table has one row per $(D, s, t)$ and every estimate is finite. Whether the Monte-Carlo
# estimates match their closed forms is a claim (C2, C3) with a verdict below, not an assertion.

# %%
n_expected = len(config.dims) * len(config.scales) * len(config.shifts)
assert len(table) == n_expected, f"{len(table)} rows, expected {n_expected}"
assert np.isfinite(table.select_dtypes("number").to_numpy()).all(), "non-finite entries in the table"
print(f"all checks passed for {len(table)} test distributions")

# %% [markdown]
# ## Verdicts

# %% tags=["hide-input"]
checks = claims.assess_each(table, [claims.c2_families, claims.c3_families, claims.c4_scale_only, claims.c5_shift_only, claims.c6_combined])
tables.verdict_html(checks, claims.SOURCES)

# %% [markdown]
# The columns beside the verdict run the same checks with each null in the model's place. A
# failure that $\hat p$ shows too is a property of fitting a density to finite data; C5 and C6
# count only where the flow fits $p$ (the baseline chapter's fit premise), which the untrained
# flow does not. C2 and C3 check the estimators. C3 reads its own statistic: Proposition 1's
# $D^*_{KL}(q\|p) = H^*(q,p) - H(q)$ has exactly the standard score of $H^*(q,p)$ (as $H(q)$ is
# exact), so it would only repeat C2; the book instead checks the paired estimate
# $\mathbb E_q[\log q - \log p]$ of the same samples against the closed form, and Proposition 1
# between the closed forms.
#
# ## Conclusion

# %% tags=["hide-input"]
by = {c.claim: c for c in checks}
s1 = view[np.isclose(view["s"], 1) & (view["t"] > 0)]
share = -s1[col.GAP] / s1[col.KL_QP]
c6_row = res.member(d20, "affine", 0.75, 0.25) if 0.75 in config.scales and 0.25 in config.shifts else None
display(Markdown(
    f"C2 is {by['C2'].label()} and C3 is {by['C3'].label()} on all {len(table)} members ({by['C2'].rests_on}; {by['C3'].rests_on}). "
    f"**C4 is {by['C4'].label()}** ({by['C4'].reason}): {by['C4'].evidence}. "
    f"**C5 is {by['C5'].label()}** ({by['C5'].reason}): at s = 1 the model's overestimate −gap is "
    f"{share.min():+.2f} to {share.max():+.2f} of KL(q‖p) over the {len(s1)} shifted members (the thesis's \"substantial\" reads as ≥ {claims.OVERESTIMATE_SHARE}). "
    + (f"**C6 is {by['C6'].label()}** ({by['C6'].reason}): at D = {d20}, s = 0.75, t = 0.25 the model's KDEs over Q(q) and Q(p) overlap {c6_row[col.OVL_MODEL]:.2f} (the truth's: {c6_row[col.OVL_TRUTH]:.2f})." if c6_row is not None else "")
))
