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
# # Sensitivity: which unstated settings make the claims hold
#
# The thesis does not state its flow's size, its training-set size, its training length or how
# $\Sigma_p$ is drawn, and a pilot found that some claims (C5 above all) hinge on them. This
# chapter, beyond the thesis, moves one setting at a time away from the base configuration of the
# other chapters, at a single dimension, with several seeds per setting (each seed draws its own
# $p$, training data and initialisation):
#
# - the **training-set size** $n_\text{train}$;
# - the **training length** (maximum epochs; early stopping still applies);
# - the flow's **capacity** (couplings × width of the two hidden layers);
# - the **condition number** $\kappa = \lambda_\text{max}/\lambda_\text{min}$ of $\Sigma_p$.
#
# Every run is judged by the same checks as the thesis chapters (`flowcore.studies.debruin2024.claims`), at the
# sweep's dimension, for the RealNVP and for the **control**: the maximum-likelihood Gaussian
# $\hat p$ of the same training set, the best linear flow, in closed form. Where a claim holds for
# the RealNVP but not for $\hat p$, the non-linear coupling layers are its cause; where it holds for
# both, fitting any density to finite data explains it. The constants $\alpha$, $\beta$ and the
# outlier recipe stay at the base's calibrated values throughout.

# %% tags=["parameters", "remove-cell"]
# The profile (notebooks/params/) holds every setting; papermill -p NAME VALUE overrides any of them.
profile = "default"
sweep_dim = 20
sweep_seeds = [0, 1, 2]

# %% tags=["hide-input"]
# Merge profile < overrides and validate everything before any work: a bad value stops here.
from flowcore.studies import debruin2024 as thesis

config = thesis.configure(globals())

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from flowcore import sweep
from flowcore.report import plots
from flowcore.studies.debruin2024 import sensitivity

settings = sensitivity.settings(config)
pd.DataFrame([(f, v, o) for f, v, o in settings], columns=["factor", "value", "overrides of the base"]).style.hide(axis="index")

# %% [markdown]
# ## Running the sweep
#
# Every setting × seed is trained (or loaded from the cache) and evaluated on all three families
# with `sweep_n_test` samples per distribution.

# %%
runs = sensitivity.run_sweep(config)
summary = sensitivity.summarise(runs)
print(f"{runs[['factor', 'value', 'seed']].drop_duplicates().shape[0]} runs: {len(settings)} settings × {len(config.sweep.seeds)} seeds")
if len(crashed := sweep.failures(runs)):  # jobs that raised: reported, not silently dropped
    display(crashed.style.hide(axis="index"))

# %% [markdown]
# ## Where each claim holds
#
# Each cell: for how many seeds the claim is reproduced, of those where it is testable, RealNVP /
# ML Gaussian; each judged against the truth in the model's place (`flowcore.verdicts`). A claim the
# thesis states at one D (C6 at D = 20, C11 at D = 50) is judged only at that D.

# %% tags=["hide-input"]
cells = summary.pivot_table(index=["factor", "value"], columns=["claim", "model"], values="holds", aggfunc="first", sort=False)
grid = pd.DataFrame({claim: cells[(claim, "RealNVP")] + " / " + cells[(claim, "ML Gaussian")] for claim in sensitivity.CHECKS}, index=cells.index)
grid.style.set_caption("seeds for which the claim holds: RealNVP / ML Gaussian")

# %% [markdown]
# ## The numbers behind it, with 95% confidence intervals over seeds
#
# One panel per claim, with the number its check rests on (the panel's title; its unit on the
# y-axis); one group of points per factor. Blue: RealNVP; grey: ML Gaussian. Error bars: Student-$t$
# 95% intervals over the seeds. A panel where one setting lies orders of magnitude off the rest
# has a symmetric-log axis (linear near zero), said in its label.

# %% tags=["hide-input"]
fig = plots.sweep_panels(summary, sensitivity.METRICS, f"Sensitivity at D = {config.sweep.dim}: mean over {len(config.sweep.seeds)} seeds, 95% CI")
plt.show()

# %% tags=["hide-input"]
summary.style.format(precision=3).hide(axis="index")

# %% [markdown]
# ## Checks that must hold whatever the verdicts

# %%
n_runs = len(settings) * len(config.sweep.seeds)
assert len(runs) == n_runs * 2 * len(sensitivity.CHECKS), "one row per run, model and claim"
assert np.isfinite(runs["metric"]).all(), "a claim metric is not finite"
assert set(runs["seed"]) == set(config.sweep.seeds)
print(f"all checks passed: {n_runs} runs, {len(sensitivity.CHECKS)} claims, 2 models")

# %% [markdown]
# ## What the sweep says

# %% tags=["hide-input"]
lines = []
for claim in sensitivity.CHECKS:
    rows = summary[(summary["claim"] == claim) & (summary["model"] == "RealNVP")]
    if (rows["holds"] == "not testable").all():
        lines.append(f"- **{claim}** is not testable in this sweep (its premise fails at every setting, or the sweep's D = {config.sweep.dim} is not the D the thesis states it at).")
        continue
    full = rows[rows["holds"].map(sensitivity.every_seed)]
    ctrl = summary[(summary["claim"] == claim) & (summary["model"] == "ML Gaussian")]
    ctrl_full = ctrl[ctrl["holds"].map(sensitivity.every_seed)]
    where = "; ".join(f"{f} {v}" for f, v in full[["factor", "value"]].itertuples(index=False)) or "no setting"
    lines.append(f"- **{claim}** holds for every seed at: {where}. The ML Gaussian control passes it for every seed in {len(ctrl_full)} of {len(ctrl)} settings.")
display(Markdown("\n".join(lines)))
