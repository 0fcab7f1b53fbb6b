"""Verdicts on the claims K1–K11 of Kirichenko, Izmailov & Wilson (2020), computed from the study's
results through :mod:`flowcore.verdicts`.

Image flows have no true density to stand in for them, so these claims are of kind ``"effect"``
(judged without the truth-as-null masking); the Gaussian question of the thesis's §6.2.1 is answered
in :mod:`~flowcore.studies.kirichenko2020.analysis` with the truth's own numbers beside the model's.
Each check names its criterion; thresholds are module constants. The paper's numbers (from
``shared/specs/kirichenko2020.md``) are in :data:`PAPER`; they are compared by sign and ordering,
never by value, since the datasets differ.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flowcore.verdicts import ClaimCheck, Findings, SubCheck, judge_effect

__all__ = ["CLAIMS", "PAPER", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "assess"]

CLAIMS = {
    "K1": "ML-trained flows rate simpler OOD data as likely or likelier than in-distribution data, and not the other way round.",
    "K2": "The latent representations keep the image's edges, in and out of distribution.",
    "K3": "The likelihood is high where the couplings' prediction −t of the masked pixels is good.",
    "K4": "Checkerboard couplings predict a pixel from its neighbours, as well on OOD data.",
    "K5": "Coupling layers co-adapt: a layer passes information about the pixels the next one predicts.",
    "K6": "Masks order OOD detection checkerboard < horizontal < cycle, and bits/dim the other way.",
    "K7": "A smaller bottleneck in the st-network lowers OOD likelihood; in-distribution barely changes.",
    "K8": "Negative training separates the targeted OOD set, and only that one.",
    "K9": "A flow on a classifier's features detects OOD data where the pixel flow fails.",
    "K10": "On tabular data, a one-class flow detects the other class (both directions).",
    "K11": "The likelihood objective alone does not decide what is OOD.",
}

#: The paper's evidence, as the spec records it.
PAPER = {
    "K1": "RealNVP AUROC %: FashionMNIST→MNIST 10.8, →notMNIST 72.1; MNIST→FashionMNIST 99.99; CelebA→SVHN 6.3; CIFAR→SVHN 6.0; SVHN→CIFAR 98.4 (Tab. 1)",
    "K2": "visual (Fig. 2)",
    "K3": "visual (Fig. 1b, c)",
    "K4": "visual (Fig. 3a, b)",
    "K5": "visual (Fig. 3c, d, Fig. 12)",
    "K6": "histograms only (Fig. 14)",
    "K7": "l ∈ {10, 50, 100} on FashionMNIST (Figs. 4, 15)",
    "K8": "App. B, Eq. 7; cutoff −30,000 nats on 784-dim images",
    "K9": "99.99 on most pairs, CIFAR→SVHN 73.31 (Tab. 2a)",
    "K10": "HEPMASS 83.78 / 70.73, MINIBOONE 72.71 / 87.56 (Tab. 2b)",
    "K11": "argument (§4, App. A)",
}

#: K4: "as well on OOD data": the OOD R² is at most this much below the in-distribution R².
R2_GAP = 0.1
#: K4: −t follows the neighbours' mean: their correlation is at least this.
NEIGHBOUR_CORR = 0.5
#: K5: the swap costs at least this much R² (the layers co-adapt).
SWAP_DROP = 0.1
#: K7: "barely changes": test bits/dim within this many bits of the flow without a bottleneck.
BPD_TOL = 0.25
#: K8, K9: "separates" / "detects": AUROC at least this.
AUROC_DETECTS = 0.9
#: The OOD sets that are "simpler" than digits, or stand in for easy controls.
SIMPLE_SETS = ("class 1",)



def k1(main: pd.DataFrame, simple_flow_auroc: tuple[float, float, float]) -> Findings:
    """K1. Main: the flow trained on digits rates the simpler held-out class (``class 1``) as likely or
    likelier than its own test digits (AUROC ≤ 0.5). Secondary (the asymmetry): a flow trained on that
    simpler class detects the digits (AUROC ≥ ``AUROC_DETECTS``)."""
    a = main.loc["class 1"]
    back, low, high = simple_flow_auroc
    subs = [
        SubCheck("digits flow: class 1 rated as likely or likelier (AUROC ≤ 0.5)", "main", {"class 1": a["AUROC"] <= 0.5}, f"AUROC {a['AUROC']:.3f} [{a['CI low']:.3f}, {a['CI high']:.3f}]"),
        SubCheck(f"class-1 flow detects the digits (AUROC ≥ {AUROC_DETECTS})", "secondary", {"reverse": back >= AUROC_DETECTS}, f"AUROC {back:.3f} [{low:.3f}, {high:.3f}]"),
    ]
    return Findings(subs, f"digits→class 1: {a['AUROC']:.3f}; class 1→digits: {back:.3f}", headline=f"AUROC digits→class 1 {a['AUROC']:.2f}, class 1→digits {back:.2f}")


def k2(edges: pd.DataFrame) -> Findings:
    """K2 per set: the mean correlation of ``|z|`` with the image's own edge map exceeds the
    mismatched-pair null (another image's edges) by at least 0.05."""
    ok = {name: r["matched"] - r["mismatched"] >= 0.05 for name, r in edges.iterrows()}
    main = {k: v for k, v in ok.items() if k == "test"}
    subs = [
        SubCheck("in distribution: |z| follows the image's own edges more than another's (by ≥ 0.05)", "main", main, f"{edges.loc['test', 'matched']:.3f} vs {edges.loc['test', 'mismatched']:.3f}"),
        SubCheck("out of distribution: the same", "secondary", {k: v for k, v in ok.items() if k != "test"}, "; ".join(f"{k}: {r['matched']:.2f} vs {r['mismatched']:.2f}" for k, r in edges.iterrows() if k != "test")),
    ]
    return Findings(subs, headline=f"corr(|z|, edges) {edges.loc['test', 'matched']:.2f} vs null {edges.loc['test', 'mismatched']:.2f}")


def k3(rho: float, p_value: float) -> Findings:
    """K3: across test and OOD images, the first coupling's prediction error and the log-likelihood
    are negatively rank-correlated (Spearman ρ < 0, p < 0.01)."""
    subs = [SubCheck("prediction error of the first coupling vs log-likelihood: ρ < 0 (p < 0.01)", "main", {"all": rho < 0 and p_value < 0.01}, f"ρ = {rho:+.3f}, p = {p_value:.2g}")]
    return Findings(subs, headline=f"Spearman ρ {rho:+.2f}")


def k4(r2_table: pd.DataFrame, layer: int, neighbour_corr: float) -> Findings:
    """K4, on the coupling that predicts best in distribution (``layer``, 0-based): its R² on each OOD
    set is within ``R2_GAP`` of its R² on the test digits (noise excluded: it has no neighbours to
    predict from; main); and its −t follows the mean of the 4 neighbours (correlation ≥ ``NEIGHBOUR_CORR``)."""
    column = r2_table.columns[layer]
    r2s = r2_table[column]
    base = r2s["test"]
    sets = {k: v >= base - R2_GAP for k, v in r2s.items() if k not in ("test", "uniform noise")}
    subs = [
        SubCheck(f"{column}: R² on OOD sets ≥ R² in distribution − {R2_GAP}", "main", sets, ", ".join(f"{k}: {v:.2f}" for k, v in r2s.items())),
        SubCheck(f"{column}: −t follows the 4-neighbour mean (correlation ≥ {NEIGHBOUR_CORR})", "secondary", {"all": neighbour_corr >= NEIGHBOUR_CORR}, f"{neighbour_corr:.3f}"),
    ]
    ood = [v for k, v in r2s.items() if k != "test"]
    return Findings(subs, headline=f"{column}: R² in {base:.2f}; OOD {min(ood):.2f}–{max(ood):.2f}")


def k5(coadaptation: pd.DataFrame) -> Findings:
    """K5: for the main flow (first row of ``coadaptation``), the swap test costs the second coupling
    at least ``SWAP_DROP`` of R² in distribution (main), and its R² exceeds the ceiling of a
    same-shaped regressor on the unmodified pixels (secondary)."""
    main = coadaptation.iloc[0]
    subs = [
        SubCheck(f"the swap costs layer 2 ≥ {SWAP_DROP} R²", "main", {main.name: main["R² layer 2"] - main["R² layer 2, swapped"] >= SWAP_DROP}, f"{main['R² layer 2']:.3f} → {main['R² layer 2, swapped']:.3f}"),
        SubCheck("layer 2 predicts better than a regressor on the unmodified pixels can", "secondary", {main.name: main["R² layer 2"] > main["ceiling"]}, f"{main['R² layer 2']:.3f} vs ceiling {main['ceiling']:.3f}"),
    ]
    return Findings(subs, headline=f"layer-2 R² {main['R² layer 2']:.2f} → {main['R² layer 2, swapped']:.2f} swapped (ceiling {main['ceiling']:.2f})")


def k6(masks: pd.DataFrame) -> Findings:
    """K6: mean AUROC over the OOD sets orders checkerboard < horizontal < cycle (main); test bits/dim
    orders them the other way (checkerboard best; secondary)."""
    order = [m for m in ("checkerboard", "horizontal", "cycle") if m in masks.index]
    auc, bpd = masks.loc[order, "mean AUROC"].to_numpy(), masks.loc[order, "test bits/dim"].to_numpy()
    subs = [
        SubCheck("mean AUROC: checkerboard < horizontal < cycle", "main", {"all": bool(np.all(np.diff(auc) > 0))}, ", ".join(f"{m}: {a:.3f}" for m, a in zip(order, auc))),
        SubCheck("test bits/dim: checkerboard < horizontal < cycle", "secondary", {"all": bool(np.all(np.diff(bpd) > 0))}, ", ".join(f"{m}: {b:.3f}" for m, b in zip(order, bpd))),
    ]
    return Findings(subs, headline="mean AUROC " + ", ".join(f"{m[:5]} {a:.2f}" for m, a in zip(order, auc)))


def k7(bottlenecks: pd.DataFrame) -> Findings:
    """K7 over the bottleneck sizes l (none = ∞): mean OOD AUROC rises as l falls (Spearman ρ(l, AUROC)
    < 0; main), and test bits/dim stays within ``BPD_TOL`` of the flow without a bottleneck."""
    from scipy.stats import spearmanr

    sizes = np.array([np.inf if l is None or str(l) == "none" or (isinstance(l, float) and np.isnan(l)) else float(l) for l in bottlenecks.index])
    rho = spearmanr(sizes, bottlenecks["mean AUROC"]).statistic if len(sizes) > 2 else float(np.sign(bottlenecks["mean AUROC"].iloc[-1] - bottlenecks["mean AUROC"].iloc[0]) * -1)
    base = bottlenecks["test bits/dim"].iloc[int(np.argmax(sizes))]
    worst = float((bottlenecks["test bits/dim"] - base).abs().max())
    subs = [
        SubCheck("mean OOD AUROC rises as the bottleneck narrows (ρ(l, AUROC) < 0)", "main", {"all": bool(rho < 0)}, f"ρ = {rho:+.2f}; " + ", ".join(f"l={l}: {a:.3f}" for l, a in bottlenecks["mean AUROC"].items())),
        SubCheck(f"test bits/dim within {BPD_TOL} of no bottleneck", "secondary", {"all": worst <= BPD_TOL}, f"largest change {worst:.3f} bits/dim"),
    ]
    return Findings(subs, headline=f"ρ(l, mean AUROC) {rho:+.2f}; bits/dim change ≤ {worst:.2f}")


def k8(plain: pd.DataFrame, negative: pd.DataFrame, target: str) -> Findings:
    """K8: after negative training against ``target``, the held-out part of the target set is detected
    (AUROC ≥ ``AUROC_DETECTS``; main), and the untargeted sets gain less AUROC on average than the
    target does (secondary: "only that one")."""
    gain = negative["AUROC"] - plain["AUROC"]
    others = gain.drop(index=[target]).dropna()
    subs = [
        SubCheck(f"the held-out targeted set is detected (AUROC ≥ {AUROC_DETECTS})", "main", {target: negative.loc[target, "AUROC"] >= AUROC_DETECTS}, f"AUROC {plain.loc[target, 'AUROC']:.3f} → {negative.loc[target, 'AUROC']:.3f}"),
        SubCheck("the other sets gain less AUROC than the target", "secondary", {"all": others.mean() < gain[target]}, f"target +{gain[target]:.3f}, others {others.mean():+.3f} on average"),
    ]
    return Findings(subs, headline=f"{target}: AUROC {plain.loc[target, 'AUROC']:.2f} → {negative.loc[target, 'AUROC']:.2f}; others {others.mean():+.2f}")


def k9(pixel: pd.DataFrame, features: pd.DataFrame) -> Findings:
    """K9: on the OOD sets where the pixel flow fails (AUROC < ``AUROC_DETECTS``), the feature flow's
    AUROC is higher (main, per set); and it detects the simpler class (AUROC ≥ ``AUROC_DETECTS``)."""
    failing = [s for s in pixel.index if s in features.index and not np.isnan(pixel.loc[s, "AUROC"]) and pixel.loc[s, "AUROC"] < AUROC_DETECTS]
    better = {s: features.loc[s, "AUROC"] > pixel.loc[s, "AUROC"] for s in failing} or {"none failing": False}
    subs = [
        SubCheck("features beat pixels where the pixel flow fails", "main", better, "; ".join(f"{s}: {pixel.loc[s, 'AUROC']:.2f} → {features.loc[s, 'AUROC']:.2f}" for s in failing)),
        SubCheck(f"the feature flow detects class 1 (AUROC ≥ {AUROC_DETECTS})", "secondary", {"class 1": features.loc["class 1", "AUROC"] >= AUROC_DETECTS}, f"{features.loc['class 1', 'AUROC']:.3f}"),
    ]
    return Findings(subs, headline=f"class 1: pixels {pixel.loc['class 1', 'AUROC']:.2f}, features {features.loc['class 1', 'AUROC']:.2f}")


def k10(tabular: pd.DataFrame) -> Findings:
    """K10: each one-class flow separates the other class (AUROC > 0.5 with the interval above 0.5),
    per dataset and direction (main)."""
    subs = [SubCheck("AUROC > 0.5 (interval above 0.5) in every dataset and direction", "main", {f"{r['dataset']}, {r['direction']}": r["CI low"] > 0.5 for _, r in tabular.iterrows()}, "; ".join(f"{r['dataset']} {r['direction']}: {r['AUROC']:.3f}" for _, r in tabular.iterrows()))]
    return Findings(subs, headline=", ".join(f"{r['AUROC']:.2f}" for _, r in tabular.iterrows()))


def k11(mixture: pd.DataFrame) -> Findings:
    """K11 (computed, not argued): mixing ε of a narrow density on the OOD points into the trained
    flow changes the average in-distribution log-likelihood by at most −log(1 − ε) (main: measured
    change ≤ bound) while the mixture rates every OOD point above every test digit (AUROC < 0.05)."""
    subs = [
        SubCheck("objective moves by at most −log(1 − ε)", "main", {f"ε={r['ε']:g}": r["objective change"] <= r["bound −log(1−ε)"] + 1e-9 for _, r in mixture.iterrows()}, "; ".join(f"ε={r['ε']:g}: {r['objective change']:.4f} ≤ {r['bound −log(1−ε)']:.4f}" for _, r in mixture.iterrows())),
        SubCheck("yet the mixture rates the OOD set above the test digits (AUROC < 0.05)", "secondary", {f"ε={r['ε']:g}": r["AUROC"] < 0.05 for _, r in mixture.iterrows()}, ", ".join(f"{r['AUROC']:.3f}" for _, r in mixture.iterrows())),
    ]
    return Findings(subs, headline=f"objective change ≤ {mixture['objective change'].max():.3f} nats, AUROC {mixture['AUROC'].max():.2f}")


def assess(claim: str, found: Findings) -> ClaimCheck:
    """The verdict on one claim from its findings (kind ``"effect"``: no truth to run as a null)."""
    return judge_effect(claim, found, CLAIMS[claim])
