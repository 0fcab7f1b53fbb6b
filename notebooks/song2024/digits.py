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
# # KLJ on digits: an offline analogue of Song et al.'s Tables 1–2
#
# The paper's OOD results use CIFAR-10 against rotated images, QuickDraw, TinyImageNet and noisy
# images, with a class-conditional flow. Offline we have scikit-learn's 8×8 digits. The class-
# conditional model here is one image flow per in-distribution class (the Kirichenko chapter's
# flows), trained by the class-conditional NLL $-\log p_\theta(x \mid c)$, with and without the KLJ
# term; it classifies by the largest $\log p_\theta(x \mid c)$ and scores OOD data by
# $\log p_\theta(x) = \log \frac1C\sum_c p_\theta(x \mid c)$. Transposed digits stand in for the
# paper's rotations and digits with added noise for its noisy set. Three training conditions: clean,
# with a fraction $r$ of each class's images replaced by uniform noise (Table 2's training outliers),
# and with a small fraction $p$ of the training images (Fig. 6). Only the *signs* of KLJ's effects are
# comparable with the paper's numbers, and a change counts only if its interval lies beyond one
# percentage point. Every model is scored on the same test digits and OOD images, so each change KLJ
# makes has a paired bootstrap interval: the test digits and each OOD set are resampled with
# replacement, the same images for every model (`digits_n_boot` resamples). It covers the sampling of
# the images, not the randomness of training (one training seed per model). The
# paper's α = 0.01 weighs the penalty against an NLL per dimension; our NLL is per image of 64
# pixels, so the comparable γ is 0.01 × 64 = 0.64 (`digits_klj_weight`).

# %% tags=["parameters", "remove-cell"]
# The profile (notebooks/params/) holds every setting; papermill -p NAME VALUE overrides any of them.
profile = "default"
digits_klj_weight = 0.64
digits_outlier_fraction = 0.1
digits_fraction = 0.2

# %% tags=["hide-input"]
# Merge profile < overrides and validate everything before any work: a bad value stops here.
from flowcore.studies import song2024 as study

config = study.configure(globals())

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from flowcore.report import tables
from flowcore.studies.song2024 import claims, digits

kconfig = config.digits_config()
scores = digits.digits_scores(kconfig, config.digits_klj_weight, config.digits_outlier_fraction, config.digits_fraction)
table = digits.digits_table(scores)
draws = digits.paired_bootstrap(scores, config.digits_n_boot, seed=kconfig.seed)
table.style.format(precision=3).hide(axis="index")

# %% tags=["hide-input"]
display(Markdown(f"Each metric with its {claims.LEVEL:.0%} percentile interval over the {config.digits_n_boot} resamples, per model:"))
intervals = digits.metric_intervals(table, draws, claims.LEVEL)
models = ["plain", f"KLJ γ = {config.digits_klj_weight:g}"]
intervals["model"] = np.where(intervals["klj_weight"] > 0, models[1], models[0])
shown = intervals.assign(cell=[f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in zip(intervals["value"], intervals["CI low"], intervals["CI high"])])
shown = shown.pivot(index="metric", columns=["data", "model"], values="cell")
shown.loc[[m for m in table.columns if m in shown.index], pd.MultiIndex.from_product([table["data"].unique(), models])]

# %% tags=["hide-input"]
acc = intervals[intervals["metric"] == "accuracy"]
half = float(((acc["CI high"] - acc["CI low"]) / 2).mean())
_, low, high = digits.contrast(table, draws, "accuracy", {("clean", True): 1.0, ("clean", False): -1.0}, claims.LEVEL)
display(Markdown(
    f"On {len(scores.correct[0])} test digits an accuracy's {claims.LEVEL:.0%} interval is ±{half:.3f} on average over the {len(acc)} models, "
    f"against the {claims.EFFECT} a change must exceed. The claims below judge each change by the paired interval of the difference: "
    f"for KLJ's change in accuracy on clean training its half-width is {(high - low) / 2:.3f} (both models score the same digits)."
))

# %% [markdown]
# ## The claims

# %% tags=["hide-input"]
found = claims.s_digits(table, draws)
checks = [claims.assess(c, f) for c, f in found.items()]
tables.verdict_html(checks, {c: (claims.PAPER[c], "this chapter") for c in found}, source_label="the paper", words_label="the paper's words")

# %% [markdown]
# ## Checks that must hold whatever the verdicts

# %%
auroc_columns = [c for c in table.columns if c.startswith("AUROC ")]
assert table[auroc_columns].apply(lambda col: col.between(0, 1)).all().all()
assert table["accuracy"].between(0, 1).all() and len(table) == 6
assert len(draws) == len(table) * config.digits_n_boot and draws[auroc_columns].apply(lambda col: col.between(0, 1)).all().all()
print(f"all checks passed: {len(table)} class-conditional models, {len(auroc_columns)} OOD sets, {config.digits_n_boot} paired resamples")

# %% [markdown]
# ## Conclusion

# %% tags=["hide-input"]
by = {c.claim: c for c in checks}
display(Markdown(
    "On 8×8 digits with per-class flows: " + "; ".join(f"{c} {by[c].verdict} ({by[c].rests_on})" for c in by) + "."
))
