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
# # Discussion: the thesis's claims, tested
#
# This chapter mirrors §9 of the thesis. It gathers the verdict on each claim C1–C11 from the
# chapters before it, recomputed here from the same cached tables (nothing is typed by hand), with
# the numbers each verdict rests on. Where our verdict differs from the thesis, the table names the
# thesis's figure and the chapter with ours; the sensitivity chapter shows under which settings
# each claim holds.

# %% tags=["parameters", "remove-cell"]
# The profile (notebooks/params/) holds every setting; papermill -p NAME VALUE overrides any of them.
profile = "default"

# %% tags=["hide-input"]
# Merge profile < overrides and validate everything before any work: a bad value stops here.
from flowcore.studies import debruin2024 as thesis

config = thesis.configure(globals())

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown, display

from flowcore.studies.debruin2024 import claims, evaluation
from flowcore.studies.debruin2024.baseline import baseline_table
from flowcore.verdicts import Verdict, claims_table, combine

summary = baseline_table(config)
res = evaluation.results(config)
table = res.table
present = set(table["family"])

# %% [markdown]
# ## The claims table

# %% tags=["hide-input"]
FIGURES = {
    "C1": ("Fig. 1", "baseline"), "C2": ("Fig. 2", "baseline, generalization"), "C3": ("Fig. 6", "baseline, generalization"),
    "C4": ("Figs. 2–3", "generalization"), "C5": ("Figs. 2, 4, 6", "generalization"), "C6": ("Fig. 5", "generalization"),
    "C7": ("Fig. 7", "perturbation"), "C8": ("Figs. 8–9", "perturbation"), "C9": ("Fig. 11", "robustness"),
    "C10": ("Fig. 12", "robustness"), "C11": ("Fig. 13", "OOD detection"),
}


checks = [claims.c1_baseline(summary), combine("C2", [claims.c2_baseline(summary), claims.c2_families(table)], claims.CLAIMS["C2"]), combine("C3", [claims.c3_baseline(summary), claims.c3_families(table)], claims.CLAIMS["C3"])]
if "affine" in present:
    checks += [claims.c4_scale_only(table), claims.c5_shift_only(table), claims.c6_combined(table)]
if {"affine", "perturbed"} <= present:
    checks += [claims.c7_perturbed_base(table), claims.c8_perturbed_grid(table)]
if "outlier" in present:
    checks += [claims.c9_outlier(table), claims.c10_outlier_grid(table)]
if {"perturbed", "outlier"} <= present:
    checks.append(claims.c11_detection(table))
verdicts = claims_table(checks)
verdicts.insert(2, "thesis figure", [FIGURES[c][0] for c in verdicts.index])
verdicts.insert(3, "our chapter", [FIGURES[c][1] for c in verdicts.index])
verdicts.style.set_properties(**{"text-align": "left", "white-space": "normal"})

# %% tags=["hide-input"]
counts = verdicts["verdict"].value_counts()
display(Markdown(
    f"Of the {len(verdicts)} claims tested here, {counts.get('reproduced', 0)} reproduced, {counts.get('partly reproduced', 0)} partly and "
    f"{counts.get('not reproduced', 0)} not, at this run's settings (D ∈ {list(config.dims)}, {config.train.n_train:,} training samples, "
    f"{config.flow.n_couplings} couplings of width {list(config.flow.hidden)}, N = {config.n_test:,} per test set). "
    "Where the thesis's claim and our verdict differ, the thesis's figure shows what it saw and the chapter named beside it shows ours "
    "(the thesis's figures are not reproduced as images here; its text is quoted in each claim)."
))

# %% [markdown]
# ## The thesis's conclusions, as far as the evidence here supports them

# %% tags=["hide-input"]
by = {c.claim: c for c in checks}


def status(*ids: str) -> str:
    return ", ".join(f"{i} {by[i].verdict}" for i in ids if i in by)


conclusions = [
    ("The Monte-Carlo machinery is sound: the estimates match their closed forms.", ("C2", "C3")),
    ("A plain RealNVP fits a full-covariance Gaussian closely.", ("C1",)),
    ("Scaling the test distribution alone is handled well; shifting it makes the model overestimate the log-likelihood.", ("C4", "C5")),
    ("Contraction combined with a small shift can make the model's KDEs over test and training data overlap so much that bound-based detection fails.", ("C6",)),
    ("The model largely ignores perturbations of the correlations and the mean; the more atypical distribution can look more similar to the model.", ("C7", "C8")),
    ("On outlier distributions the model overestimates the log-likelihood to the point of overlapping the training data, more so in higher D.", ("C9", "C10")),
    ("Likelihood-bound OOD detection with the flow fails where the true density succeeds, worst for contraction with a shift.", ("C11",)),
]
rows = []
for text, ids in conclusions:
    present_ids = [i for i in ids if i in by]
    if not present_ids:
        continue
    verdict_set = {by[i].verdict for i in present_ids}
    support = "supported" if verdict_set == {Verdict.REPRODUCED} else ("not supported" if verdict_set == {Verdict.NOT} else "partly supported")
    rows.append({"thesis's conclusion": text, "here": support, "claims": status(*present_ids)})
pd.DataFrame(rows).style.set_properties(**{"text-align": "left", "white-space": "normal"}).hide(axis="index")

# %% [markdown]
# ## Checks that must hold whatever the verdicts

# %%
assert set(verdicts["verdict"]) <= {"reproduced", "partly reproduced", "not reproduced"}
assert len(verdicts) == 3 + 3 * ("affine" in present) + 2 * ({"affine", "perturbed"} <= present) + 2 * ("outlier" in present) + ({"perturbed", "outlier"} <= present)
print(f"all checks passed: {len(verdicts)} claims with a computed verdict")
