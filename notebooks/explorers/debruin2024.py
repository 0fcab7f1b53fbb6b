# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explorer: every evaluated test distribution
#
# The live explorer of *A Step Towards Understanding Normalizing Flows and their Likelihood
# Behavior* (de Bruin, 2024): pick the dimension $D$, the family (the affine family $\Lambda$, the
# perturbed $\Lambda^\delta$, the outliers $\Lambda^{out}$), the scale $s$ and the shift $t$. The
# figure shows the KDEs of $\log p$ and $\log p_\theta$ over the member's test set beside those over
# $\mathcal Q(p)$; the table lists its cross-entropies, KL divergences, TNR, AUROC and overlaps.
#
# Everything comes from the cached results of a book build (`python3 pipeline.py build --profile P`);
# nothing is trained here. Served by `python3 pipeline.py explore --profile P`, which sets
# `FLOWCORE_PROFILE` and `FLOWCORE_CACHE` (not part of the book: this file is not in `_toc.yml`).

# %%
import os

from IPython.display import Markdown, display

from flowcore.cache import cache_dir
from flowcore.config import resolve
from flowcore.report.explorer import explorer
from flowcore.studies.debruin2024 import ThesisConfig, evaluation

profile = os.environ.get("FLOWCORE_PROFILE", "default")
results = evaluation.cached_results(resolve(ThesisConfig, profile).config)
if results is None:
    display(Markdown(f"No cached results for profile `{profile}` in `{cache_dir()}`; build them first: `python3 pipeline.py build --profile {profile}`."))
else:
    display(Markdown(f"Profile `{profile}`: {results.table['D'].nunique()} dimensions, {len(results.table)} test distributions."))
    display(explorer(results))
