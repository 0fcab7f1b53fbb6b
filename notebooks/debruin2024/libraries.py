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
# # The thesis's claims across flow libraries
#
# The chapters before this one ask whether *a RealNVP* behaves as the thesis says. A reader who trains
# flows with zuko, nflows, normflows or FrEIA asks whether *their* flow does. Nothing in those
# libraries answers it: their tests check invertibility and Jacobians, never likelihood behaviour
# against a known truth. This book has what the answer needs for any model with a `log_prob`:
# Gaussians $p$ with known densities, the three families of test distributions, calibrated
# constants, estimators with standard errors, and claim checks with nulls. `flowcore.battery` runs
# exactly that code with another model in the RealNVP's place:
#
# 1. for each $D$ and seed, the training Gaussian $p$ and its data, as in every thesis chapter;
# 2. training by maximum likelihood with the book's early stopping (the best weights on a
#    validation set);
# 3. the affine, perturbed and outlier families scored by the truth $\log p$, the model
#    $\log p_\theta$, and the two nulls: the maximum-likelihood Gaussian $\hat p$ of the same
#    training set and the model at its initialisation;
# 4. claims C4–C11 judged for the model and for each null in its place, by the rule of
#    `flowcore.verdicts`.
#
# A claim of failure counts only for a model that has learned $p$ (the fit premise:
# $\mathrm{KL}^*(p\|p_\theta) \le 0.2\sqrt{D/2}$ nats); elsewhere it is *not testable here*. What the
# truth or $\hat p$ also shows is a property of the test setting or of finite data, not of the
# model, and does not count for it.
#
# The models are built the way each library's documentation shows (`flowcore.libraries`); they
# differ in the ways the thesis's claims may depend on: coupling against autoregressive layers,
# affine against spline transforms, bounded against unbounded scales.

# %% tags=["parameters", "remove-cell"]
# The profile (notebooks/params/) holds every setting; papermill -p NAME VALUE overrides any of them.
profile = "default"

# %% tags=["hide-input"]
# Merge profile < overrides and validate everything before any work: a bad value stops here.
from flowcore.studies import debruin2024 as thesis

config = thesis.configure(globals())

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from flowcore import battery, rng, sweep
from flowcore.report import plots
from flowcore.studies.debruin2024 import columns as col, sensitivity

lib = config.library
# A library that is not installed leaves its models out, said here, instead of stopping the chapter.
models, missing = battery.installed_models(config)
if missing:
    display(Markdown(f"**Left out**: the models of {', '.join(missing)}, which is not installed here "
                     "(`pip install -r requirements.txt` installs it)."))


def parameters(model, dim):
    with rng.seeded(0):
        return sum(p.numel() for p in model.build(dim).parameters() if p.requires_grad)


pd.DataFrame(
    [
        {
            "model": m.name,
            "library": f"{m.library} {m.version}",
            "structure": m.structure,
            "transform": m.transform,
            "scale map (data → noise)": m.scale,
            "log-scale": "bounded" if m.bounded else "unbounded",
            "layers": m.layers,
            "hidden": f"2 × {m.hidden}",
            **{f"parameters at D = {d}": f"{parameters(m, d):,}" for d in lib.dims},
        }
        for m in models.values()
    ]
).style.hide(axis="index")

# %% tags=["hide-input"]
display(Markdown(
    f"**The runs**: {len(models)} models × D ∈ {list(lib.dims)} × {len(lib.seeds)} seeds; each trains on "
    f"n_train = {', '.join(f'{lib.n_train_at(d):,} samples of p at D = {d}' for d in lib.dims)} ({lib.n_val:,} for validation) for at most "
    f"{lib.max_epochs} epochs (batch {config.train.batch_size}, Adam at {config.train.lr:g}, early stopping "
    f"with patience {config.train.patience}), and is tested on {lib.n_test:,} samples per distribution. "
    f"Each seed draws its own p and calibrates its own α, β and outlier recipe "
    f"({lib.calibration_draws:,} draws per rate), shared by every model of that seed."
))

# %% [markdown]
# ## Running the battery
#
# Every run (model × $D$ × seed) is one cached job; a run whose training diverges, or whose
# $\log p_\theta$ is not finite even in float64, is recorded as failed with its reason.

# %%
runs = battery.library_battery(config, models=list(models))
failed = runs[runs["verdict"] == sensitivity.FAILED].drop_duplicates(["model", "D", "seed"])
crashed = sweep.failures(runs)  # jobs that raised in the sweep itself (none expected)
print(f"{runs[['model', 'D', 'seed']].drop_duplicates().shape[0]} runs, {len(failed)} failed, {len(crashed)} jobs raised")
if len(failed):
    display(failed[["model", "D", "seed", "failure"]].style.hide(axis="index"))
if len(crashed):
    display(crashed.style.hide(axis="index"))

# %% [markdown]
# ## The fit: does each model learn $p$?
#
# $\mathrm{KL}^*(p\|\cdot)/D$ on $\mathcal Q(p)$, in nats per dimension, mean over seeds with a
# Student-$t$ 95% interval, for the model, beside $\hat p$ fitted to the same training set (what
# finite data alone give) and the untrained model; the fit premise's bound per dimension, and in
# how many seeds the model passes it.

# %% tags=["hide-input"]
fits = battery.fit_summary(runs)
fits.style.format(precision=4, subset=[c for c in fits.columns if c not in ("model", "D", "fits p")]).hide(axis="index")

# %% [markdown]
# ## Claims C4–C11 per model
#
# Each cell: in how many seeds the claim is reproduced + partly reproduced, of those where it is
# testable (`–`: testable in none). The model's verdicts are masked by the nulls (units that the
# truth or $\hat p$ pass do not count for the model); a seed whose model does not fit $p$ makes the
# failure claims not testable. C6 is stated at $D = 20$ and C11 at $D = 50$, and is judged only there.

# %% tags=["hide-input"]
claims_by_model = battery.claim_cells(runs)
claims_by_model.style.set_caption("the model (masked by the nulls)")

# %% [markdown]
# The nulls, each judged on its own by the same rule: a claim that holds for $\hat p$ or the truth
# is a property of the test setting or of finite data. The truth and $\hat p$ do not depend on the
# model (up to the seed), so one row per $D$ is shown.

# %% tags=["hide-input"]
for null in ("truth", "p̂", "untrained"):
    cells = battery.claim_cells(runs, null)
    if null != "untrained":
        cells = cells.groupby(level="D").first()
    display(cells.style.set_caption(f"{null} in the model's place"))

# %% [markdown]
# ## The numbers behind the verdicts, per family of test distributions
#
# One figure per family of claims: the scaled and shifted Gaussians (C4–C6), the perturbed ones
# (C7–C8), the outliers (C9–C10) and detection by a likelihood bound (C11). In each panel, per
# model, the number the claim's check rests on (the panel's title; its unit on the $y$-axis): mean
# over seeds with a Student-$t$ 95% interval, for the model (blue) and for each null in its place
# ($\hat p$ grey, the untrained model green, the truth orange).

# %% tags=["hide-input"]
metrics = battery.metric_summary(runs)
families = {
    "scaled and shifted Gaussians (C4–C6)": ["C4", "C5", "C6"],
    "perturbed Gaussians (C7–C8)": ["C7", "C8"],
    "outliers (C9–C10)": ["C9", "C10"],
    "detection by a likelihood bound (C11)": ["C11"],
}
for title, family_claims in families.items():
    fig = plots.model_panels(metrics, sensitivity.METRICS, family_claims, title)
    plt.show()

# %% [markdown]
# ## Which claims hold for which kind of flow
#
# Per claim and kind of flow: of the runs where the claim is testable for the model (so its model fits
# $p$), in how many it holds at least partly, with a Wilson 95% interval. Runs of one model share its
# architecture, so the intervals treat runs as independent where they are not: read them as a lower
# bound on the uncertainty.

# %% tags=["hide-input"]
kinds = battery.by_kind(runs, models)
cells = kinds.assign(
    cell=[f"{h}/{n} ({lo:.2f}–{hi:.2f})" if n else "–" for h, n, lo, hi in kinds[["holds", "testable runs", "CI low", "CI high"]].itertuples(index=False)]
).pivot(index="claim", columns=["kind", "level"], values="cell").loc[list(sensitivity.CHECKS)]
display(kinds.drop_duplicates(["kind", "level"])[["kind", "level", "models"]].style.hide(axis="index"))
cells.style.set_caption("runs where the claim holds / runs where it is testable (Wilson 95% interval)")

# %% [markdown]
# ## Checks that must hold whatever the verdicts

# %%
n_runs = len(models) * len(lib.dims) * len(lib.seeds)
assert len(runs) == n_runs * len(sensitivity.CHECKS), "one row per run and claim"
assert set(runs["model"]) == set(models) and set(runs["seed"]) == set(lib.seeds)
judged = runs[runs["verdict"] != sensitivity.FAILED]
assert np.isfinite(judged["metric"]).all(), "a claim metric is not finite"
assert (judged[col.KL_PER_DIM] > -0.01).all(), "KL*(p‖pθ) is a KL divergence: it cannot be far below 0"
# The truth's and p̂'s verdicts depend on the seed and D, never on the model in the model's place.
for null in ("truth", "p̂"):
    assert (judged.groupby(["D", "seed", "claim"])[null].nunique() == 1).all(), f"{null}'s verdicts depend on the model"
print(f"all checks passed: {n_runs} runs, {len(sensitivity.CHECKS)} claims")

# %% [markdown]
# ## What the battery says

# %% tags=["hide-input"]
lines = []
fitted = fits[fits["fits p"].map(sensitivity.every_seed)]
unfit = fits[fits["fits p"].str.startswith("0/")]
lines.append(
    f"**The fit.** Every seed fits p for {len(fitted)} of {len(fits)} (model, D) pairs"
    + ("" if fitted.empty else ": " + ", ".join(f"{m} at D = {d}" for m, d in fitted[["model", "D"]].itertuples(index=False)))
    + "; no seed fits it for "
    + (", ".join(f"{m} at D = {d} (KL*/D {k:.3f}, bound {b:.3f})" for m, d, k, b in unfit[["model", "D", col.KL_PER_DIM, "bound/D"]].itertuples(index=False)) or "none")
    + "."
)
for claim in sensitivity.CHECKS:
    here = runs[runs["claim"] == claim]
    testable = here[sensitivity.testable(here["verdict"])]
    if testable.empty:
        lines.append(f"- **{claim}** is testable for no model here.")
        continue
    holds = testable[testable["verdict"].isin(sensitivity.HOLDS)]
    where = holds.groupby("model", sort=False).size()
    lines.append(
        f"- **{claim}** holds (at least partly) in {len(holds)} of {len(testable)} testable runs"
        + ("" if holds.empty else ": " + ", ".join(f"{m} {k}/{int((testable['model'] == m).sum())}" for m, k in where.items()))
        + f"; in the model's place p̂ shows it in {int(here['p̂'].isin(sensitivity.HOLDS).sum())} of {len(here)} runs, the truth in {int(here['truth'].isin(sensitivity.HOLDS).sum())}."
    )
for c in battery.contrasts(kinds).to_dict("records"):
    verdict = f"it holds more often for {c['more often']} flows" if c["separated"] else "the intervals overlap: these runs do not tell the kinds apart"
    lines.append(f"- **{c['claim']}** by {c['kind']}: {c['levels']}; {verdict}.")
display(Markdown("\n".join(lines)))
