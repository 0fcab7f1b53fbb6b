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
# # Marginalizing flows on half-moons and on digits (de Boer, 2020)
#
# **Half-moons.** The thesis trains its marginalizing flow on `make_moons` and reports that $B \ge 3$
# removes the "bridge" of density between the two moons (its Figs. 6 and 14). We use the two-moons law
# with noise 0.1 (each moon's angle uniform, the continuous limit of `make_moons`) whose density we
# compute by quadrature, and measure the probability mass a model puts where the true density is
# below $10^{-3}$, on a grid.
#
# **Images.** The thesis's Table 4 uses MNIST and CIFAR-10, which cannot be loaded offline; the 8×8
# digits stand in (dequantised, standardised, all ten classes), with $B$ auxiliary dimensions. How
# many principal components hold 95% and 99.9% of the variance (the thesis's Fig. 9 on MNIST) is
# computed here for the digits.

# %% tags=["parameters", "remove-cell"]
# The profile (notebooks/params/) holds every setting; papermill -p NAME VALUE overrides any of them.
profile = "default"
moons_aux = [0, 1, 3, 4]
digits_aux = [0, 2, 8, 16]

# %% tags=["hide-input"]
# Merge profile < overrides and validate everything before any work: a bad value stops here.
from flowcore.studies import deboer2020 as study

config = study.configure(globals())

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from sklearn.datasets import load_digits

from flowcore.report import tables
from flowcore.studies.deboer2020 import claims, experiments
from flowcore.studies.deboer2020.truths import pca_components

moons = experiments.moons(config)
unscored = moons["mass where p < 1e-3"].isna()
if unscored.any():
    display(Markdown(f"The grid mass could not be computed for {int(unscored.sum())} of {len(moons)} models: their log-density is not finite somewhere on the grid even in float64 (the unbounded scale map); they are left out of the mass columns."))
display(moons.style.format(precision=4, na_rep="—").hide(axis="index"))
by_b = moons.groupby("B")[["mean log p̂", "mass where p < 1e-3"]].mean()
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
axes[0].plot(by_b.index, by_b["mean log p̂"], "o-", label="ours (mean over seeds)")
axes[0].axhline(moons["truth mean log p"].iloc[0], color="black", lw=1, label="truth")
axes[0].set_xlabel("B")
axes[0].set_ylabel("mean test log-likelihood (nats)")
axes[0].legend(fontsize=7)
axes[1].plot(by_b.index, by_b["mass where p < 1e-3"], "o-")
axes[1].set_xlabel("B")
axes[1].set_ylabel("model mass where the true density < 1e-3")
plt.show()

# %% tags=["hide-input"]
digits = experiments.digits_table(config)
components = pca_components(load_digits().data)
display(digits.style.format(precision=3).hide(axis="index"))
display(Markdown(f"On the 8×8 digits, {components[0.95]} principal components hold 95% of the variance and {components[0.999]} hold 99.9% (of 64 pixels)."))

# %% [markdown]
# ## The claims

# %% tags=["hide-input"]
checks = [claims.assess("D4", claims.d4(moons)), claims.assess("D5", claims.d5(digits))]
tables.verdict_html(checks, {c: (claims.THESIS[c], "this chapter") for c in claims.CLAIMS}, source_label="the thesis", words_label="the thesis's words")

# %% [markdown]
# ## Checks that must hold whatever the verdicts

# %%
finite = moons.dropna(subset=["mass on the grid"])
assert (finite["mass on the grid"] > 0.9).all(), "the grid misses model mass"
assert np.isfinite(digits["mean log p̂"]).all()
print(f"all checks passed: {len(moons)} moons models, {len(digits)} digits models")

# %% [markdown]
# ## Conclusion

# %% tags=["hide-input"]
by = {c.claim: c for c in checks}
display(Markdown("; ".join(f"**{c}** {by[c].verdict} ({by[c].rests_on})" for c in by) + "."))
