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
# Parameters (papermill injects a profile's values after this cell). Defaults: the `default` profile.
# Training settings equal the baseline chapter's, so the flows trained there are reused from the cache.
dims = [10, 20, 50, 100]
n_train = 100_000
n_val = 10_000
batch_size = 512
lr = 1e-3
max_epochs = 40
patience = 6
lr_patience = 2
n_couplings = 8
hidden = [64, 64]
log_scale_bound = 3.0
eig_min = 0.1
eig_max = 1.0
mean_scale = 1.0
spectrum = "loguniform"
n_test = 100_000
scales = [0.25, 0.5, 0.75, 1.0, 1.25, 1.75]
shifts = [0.0, 0.25, 0.5, 0.75]
tpr = 0.975
alpha = None  # None: calibrated (perturbation chapter)
beta = None
outlier_offset = None
outlier_cov_scale = None
calibration_dim = 50
calibration_draws = 20_000
families = ["affine", "perturbed", "outlier"]
seed = 0
device = "auto"
chunk_size = 4_096

# %% tags=["remove-output"]
# Validate every parameter before any work: a bad value raises a ValueError naming it.
from flowcore.experiments import config_from

config = config_from(globals())

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from flowcore import evaluation, plots

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
