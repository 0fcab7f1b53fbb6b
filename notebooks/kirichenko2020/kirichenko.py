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
# # Why flows fail to detect OOD data (Kirichenko, Izmailov & Wilson, 2020)
#
# Kirichenko et al. argue that a normalizing flow trained by maximum likelihood on images learns
# *local pixel correlations* rather than what the images show: its affine couplings predict the
# masked pixels from their neighbours, as well on out-of-distribution images as on the training
# data, and consecutive coupling layers **co-adapt** — one layer hides information about the pixels
# the next must predict in its output. So a flow can rate a simpler OOD set as *more* likely than
# its own test data. The thesis builds on this: its §6.2.1 borrows the co-adaptation hypothesis and
# asks whether a sample's typicality changes the compensation. This chapter tests the paper's claims
# K1–K11 on what can run offline — scikit-learn's 8×8 digits, its sample photographs and two tabular
# datasets — and answers the thesis's question on the thesis's own Gaussians.
#
# **The flow.** The paper's coupling, $y_c = (x_c + t)\,e^{s}$ on the changed pixels $c$ with
# $s = w\tanh\hat s$, so that $-t$ is the coupling's *prediction* of the changed pixels; a
# convolutional st-network (residual blocks, optionally a bottleneck of size $l$); checkerboard,
# horizontal or cycle masks; no permutations or squeezes, so pixels stay aligned; the data are
# dequantised, $x = (v + u)/17$, and mapped by $y = \operatorname{logit}(0.05 + 0.9x)$ with its
# log-determinant. Scores are mean log-likelihoods over a few dequantisation draws; bits per
# dimension include the $64\log 17$ of the discrete data. An AUROC below 0.5 means the OOD set is
# rated *more* likely than the test digits.

# %% tags=["parameters", "remove-cell"]
# The profile (notebooks/params/) holds every setting; papermill -p NAME VALUE overrides any of them.
profile = "default"
mask = "checkerboard"
channels = 16
max_epochs = 40

# %% tags=["hide-input"]
# Merge profile < overrides and validate everything before any work: a bad value stops here.
from flowcore.studies import kirichenko2020 as study

config = study.configure(globals())

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from flowcore.config import resolve
from flowcore.report import tables
from flowcore.studies.debruin2024 import ThesisConfig
from flowcore.studies.kirichenko2020 import analysis, claims

main = analysis.main_results(config)
d = main.digits
pd.DataFrame([{"set": name, "images": len(images), "stands in for": text} for name, (images, text) in d.ood.items()]).set_index("set")

# %% [markdown]
# ## K1: simpler data are rated as likely — in one direction only
#
# The flow trained on the in-distribution digits, scored on its test digits and on every OOD set.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
test_scores = main.scores["test"]
zoom = (np.quantile(test_scores, 0.01) - 3 * test_scores.std(), test_scores.max() + test_scores.std())
for ax, (low, high), title in ((axes[0], (None, None), "all sets"), (axes[1], zoom, "around the test digits")):
    for name, s in main.scores.items():
        if name != "train":
            shown = s if low is None else s[(s >= low) & (s <= high)]
            if len(shown):
                ax.hist(shown, bins=40, histtype="step", density=low is None, label=name, lw=1.6 if name == "test" else 1.0)
    ax.set_xlabel("mean log-likelihood of an image (nats)")
    ax.set_ylabel("density" if low is None else "images")
    ax.set_title(title, fontsize=9)
axes[0].legend(fontsize=7)
fig.suptitle(f"Flow trained on digits {list(config.in_classes)} ({config.mask} mask)")
plt.show()
simple = analysis.simple_flow_auroc(config, d)
main.table.style.format(precision=3)

# %% [markdown]
# ## Masks and bottlenecks (K6, K7)

# %% tags=["hide-input"]
masks, _ = analysis.masks_table(config, d)
bottlenecks = analysis.bottleneck_table(config, d)
display(masks.style.format(precision=3))
bottlenecks.style.format(precision=3)

# %% [markdown]
# ## What the couplings predict (K2–K5)
#
# Per coupling layer of the main flow, for a test digit, a class-1 digit and a flipped digit: the
# layer's input, its output, the scale $e^{s}$ and the prediction $-t$ of the changed pixels.

# %% tags=["hide-input"]
picks = {"test digit": d.splits["test"], "class 1": d.ood["class 1"][0], "flipped up–down": d.ood["flipped up–down"][0]}
panels = analysis.coupling_figure_data(config, main.flow, picks)
n_layers = len(next(iter(panels.values())))
fig, axes = plt.subplots(len(panels) * n_layers, 4, figsize=(6.4, 1.7 * len(panels) * n_layers), layout="constrained")
for r, (name, layers) in enumerate(panels.items()):
    for k, layer in enumerate(layers):
        for c, (label, image) in enumerate(layer.items()):
            ax = axes[r * n_layers + k, c]
            ax.imshow(image, cmap="gray")
            ax.set_xticks([]), ax.set_yticks([])
            if r * n_layers + k == 0:
                ax.set_title(label, fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{name}\nlayer {k + 1}", fontsize=7)
plt.show()

# %% tags=["hide-input"]
layer_r2s = analysis.layer_r2_by_set(config, main.flow, d)
best_layer = analysis.predicting_layer(layer_r2s)
neighbour_corr = analysis.neighbour_correlation(config, main.flow, d, best_layer)
rho, p_value, errors = analysis.prediction_vs_likelihood(config, main.flow, d, main.scores, layer=best_layer)
edges = analysis.edges_table(config, main.flow, d)
coadaptation = analysis.coadaptation_table(config, d)
display(Markdown(f"Each coupling's R² of its prediction −t, per set; layer {best_layer + 1} predicts best on the test digits and carries K3 and K4."))
display(layer_r2s.style.format(precision=3))
display(edges.style.format(precision=3))
coadaptation.style.format(precision=3)

# %% [markdown]
# The swap test: the second coupling predicts its changed pixels from the first coupling's output;
# computing that output from *another* image's conditioning pixels keeps what the first layer saw of
# the pixels it changed but not what it could have encoded about the pixels the second layer must
# predict. The R² lost is the co-adaptation. The ceiling is a network of the same shape trained by
# least squares to predict the same pixels from the unmodified pixels.

# %% [markdown]
# ## Negative training, features and tabular data (K8–K11)

# %% tags=["hide-input"]
negative, n_held = analysis.negative_training(config, d, main.table)
features = analysis.feature_flow(config, d)
tabular = analysis.tabular(config)
mixture = analysis.mixture(config, main)
display(pd.DataFrame({"plain": main.table["AUROC"], "negative training": negative["AUROC"], "feature flow": features["AUROC"]}).dropna().style.format(precision=3))
display(tabular.style.format(precision=3).hide(axis="index"))
mixture.style.format(precision=4).hide(axis="index")

# %% [markdown]
# ## The thesis's question on its Gaussians
#
# The thesis (§6.2.1) asks whether the compensation between coupling layers changes with how
# atypical a sample is. On the thesis's RealNVP (the same profile's flow, at the dimension nearest
# 20), per member of $\Lambda$, $\Lambda^\delta$ and $\Lambda^{out}$: the second coupling's $R^2$ of
# its prediction $-t e^{-s}$ of the coordinates it transforms, with and without the swap, against
# $\mathrm{KL}(q\|p)$.

# %% tags=["hide-input"]
from flowcore.studies.debruin2024.claims import nearest_dim

thesis_config = resolve(ThesisConfig, profile, {}).config
gauss_dim = min(thesis_config.dims, key=lambda dd: (abs(dd - 20), dd))
gaussian = analysis.gaussian_coadaptation(thesis_config, gauss_dim)
from scipy.stats import spearmanr

atypical = gaussian[gaussian["family"] != "p"]
rho_g = spearmanr(atypical["KL(q‖p)"], atypical["co-adaptation"])
fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
for fam, rows in atypical.groupby("family"):
    ax.scatter(rows["KL(q‖p)"], rows["co-adaptation"], s=14, label=fam)
base_row = gaussian[gaussian["family"] == "p"].iloc[0]
ax.axhline(base_row["co-adaptation"], color="black", lw=0.8, ls="--", label="q = p")
ax.set_xscale("symlog", linthresh=1.0)
ax.set_xlim(left=0)
ax.set_xlabel("KL(q‖p) (nats, symmetric log scale)")
ax.set_ylabel("R² lost to the swap (layer 2)")
ax.set_title(f"The thesis's RealNVP at D = {gauss_dim}")
ax.legend(fontsize=7)
plt.show()
answer = "grows" if rho_g.statistic > 0 and rho_g.pvalue < 0.01 else ("shrinks" if rho_g.statistic < 0 and rho_g.pvalue < 0.01 else "shows no clear trend")
predicts = base_row["R² layer 2"] > 0
display(Markdown(
    f"At D = {gauss_dim} the R² lost to the swap **{answer}** with how atypical the test distribution is: "
    f"Spearman ρ = {rho_g.statistic:+.2f} (p = {rho_g.pvalue:.2g}) over {len(atypical)} members; on q = p itself it is {base_row['co-adaptation']:.3f} "
    f"(R² {base_row['R² layer 2']:.3f} → {base_row['R² layer 2, swapped']:.3f}). "
    + ("The second coupling does predict its coordinates on p, so this is a compensation that changes with typicality."
       if predicts else
       "But the second coupling's prediction explains none of the variance of its coordinates even on p itself (R² below 0): "
       "the thesis's couplings on a Gaussian do not predict coordinates from one another the way image couplings predict pixels, "
       "so there is no prediction for a swap to spoil, and the trend measures how the swap shifts an already poor fit rather than a compensation.")
))

# %% [markdown]
# ## The claims, side by side with the paper

# %% tags=["hide-input", "full-width"]
target = config.negative_target
checks = [
    claims.assess("K1", claims.k1(main.table, simple)),
    claims.assess("K2", claims.k2(edges)),
    claims.assess("K3", claims.k3(rho, p_value)),
    claims.assess("K4", claims.k4(layer_r2s, best_layer, neighbour_corr)),
    claims.assess("K5", claims.k5(coadaptation)),
    claims.assess("K6", claims.k6(masks)),
    claims.assess("K7", claims.k7(bottlenecks)),
    claims.assess("K8", claims.k8(main.table, negative, target)),
    claims.assess("K9", claims.k9(main.table, features)),
    claims.assess("K10", claims.k10(tabular)),
    claims.assess("K11", claims.k11(mixture)),
]
tables.verdict_html(checks, {c: (claims.PAPER[c], "this chapter") for c in claims.CLAIMS}, source_label="the paper's evidence", words_label="the paper's words")

# %% [markdown]
# The paper's evidence is on datasets we cannot load offline (FashionMNIST, CIFAR-10, CelebA, SVHN,
# HEPMASS, MINIBOONE) and on Glow, which is not built here; its numbers are compared by sign and
# ordering, never by value.

# %% [markdown]
# ## Checks that must hold whatever the verdicts

# %%
assert np.isfinite(np.concatenate(list(main.scores.values()))).all(), "a non-finite log-likelihood"
assert main.table["AUROC"].dropna().between(0, 1).all() and len(main.table["AUROC"].dropna()) == len(d.ood)
assert (masks["test bits/dim"] > 0).all() and (bottlenecks["test bits/dim"] > 0).all(), "bits/dim must be positive for 17-level data"
assert (mixture["objective change"] <= mixture["bound −log(1−ε)"] + 1e-9).all(), "the mixture bound is a theorem"
assert len(checks) == 11
print(f"all checks passed: {len(d.ood)} OOD sets, {len(masks)} masks, {len(bottlenecks)} bottleneck sizes, 11 claims")

# %% [markdown]
# ## Conclusion

# %% tags=["hide-input"]
by = {c.claim: c for c in checks}
counts = pd.Series([str(c.verdict) for c in checks]).value_counts()
display(Markdown(
    f"Of the 11 claims, {counts.get('reproduced', 0)} reproduced, {counts.get('partly reproduced', 0)} partly and {counts.get('not reproduced', 0)} not, on 8×8 digits "
    f"with a {config.n_couplings}-coupling flow of width {config.channels}. "
    f"The digits flow rates class 1 with AUROC {main.table.loc['class 1', 'AUROC']:.2f} (K1 {by['K1'].verdict}); "
    f"its second coupling loses {coadaptation.iloc[0]['R² layer 2'] - coadaptation.iloc[0]['R² layer 2, swapped']:.2f} R² to the swap (K5 {by['K5'].verdict}). "
    f"On the thesis's Gaussians the R² lost to the swap {answer} with atypicality (ρ = {rho_g.statistic:+.2f})"
    + ("." if predicts else f", but its couplings predict nothing even on p (R² {base_row['R² layer 2']:.2f}): the paper's mechanism has no counterpart there to grow or shrink.")
))
