"""Verdicts on the claims K1–K11 of Kirichenko, Izmailov & Wilson (2020), computed from the study's
results through :mod:`flowcore.verdicts`.

Image flows have no true density to stand in for them, so these claims are of kind ``"effect"``;
K2–K4, which read what the couplings compute, are checked again on the **untrained** flow (the same
architecture and seed at its initialisation), and a unit that it passes does not count for the
trained flow. K11 is a bound, shown on computed cases (kind ``"theorem"``: *demonstrated*). Every
AUROC is read through its bootstrap interval, and the claims that compare settings (K5–K7, K9)
through the seed-to-seed interval of a paired difference
(:mod:`~flowcore.studies.kirichenko2020.seeds`), with :func:`~flowcore.verdicts.beyond`: an interval
that straddles the threshold is *not distinguishable*. The Gaussian question of the thesis's §6.2.1
is answered in :mod:`~flowcore.studies.kirichenko2020.analysis` with the truth's own numbers beside
the model's. Each check names its criterion; thresholds are module constants. The paper's numbers
(from ``shared/specs/kirichenko2020.md``) are in :data:`PAPER`; they are compared by sign and
ordering, never by value, since the datasets differ.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from flowcore.studies.kirichenko2020.config import MASKS
from flowcore.studies.kirichenko2020.seeds import (
    bottleneck_differences,
    differences,
    mask_differences,
    over_seeds,
    swap_drops,
)
from flowcore.verdicts import ClaimCheck, Findings, SubCheck, beyond, judge_effect, within

__all__ = [
    "CLAIMS",
    "PAPER",
    "THEOREMS",
    "k1",
    "k1_pair",
    "k2",
    "k3",
    "k4",
    "k5",
    "k6",
    "k7",
    "k8",
    "k9",
    "k10",
    "k11",
    "assess",
]

CLAIMS = {
    "K1": "ML-trained flows rate simpler OOD data as likely or likelier than in-distribution data, "
    "and not the other way round.",
    "K2": "The latent representations keep the image's edges, in and out of distribution.",
    "K3": "The likelihood is high where the couplings' prediction −t of the masked pixels is good.",
    "K4": "Checkerboard couplings predict a pixel from its neighbours, as well on OOD data.",
    "K5": "Coupling layers co-adapt: a layer passes information about the pixels the next one "
    "predicts.",
    "K6": "Masks order OOD detection checkerboard < horizontal < cycle, and bits/dim the other "
    "way.",
    "K7": "A smaller bottleneck in the st-network lowers OOD likelihood; in-distribution barely "
    "changes.",
    "K8": "Negative training separates the targeted OOD set, and only that one.",
    "K9": "A flow on a classifier's features detects OOD data where the pixel flow fails.",
    "K10": "On tabular data, a one-class flow detects the other class (both directions).",
    "K11": "The likelihood objective alone does not decide what is OOD.",
}

#: The paper's evidence, as the spec records it.
PAPER = {
    "K1": "RealNVP AUROC %: FashionMNIST→MNIST 10.8, →notMNIST 72.1; MNIST→FashionMNIST 99.99; "
    "CelebA→SVHN 6.3; CIFAR→SVHN 6.0; SVHN→CIFAR 98.4 (Tab. 1)",
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

#: K1: "as likely or likelier" reads AUROC ≤ 0.5 (0.5: the test digits and the OOD set are not told
#: apart).
CHANCE = 0.5
#: K4: "as well on OOD data": the OOD R² is at most this much below the in-distribution R².
R2_GAP = 0.1
#: K4: −t follows the neighbours' mean: their correlation is at least this.
NEIGHBOUR_CORR = 0.5
#: K5: the swap costs at least this much R² (the layers co-adapt): a tenth of the variance of the
#: pixels the second coupling predicts (the paper's evidence is visual and gives no size).
SWAP_DROP = 0.1
#: K7: "barely changes": test bits/dim within this many bits of the flow without a bottleneck.
BPD_TOL = 0.25
#: K8, K9: "separates" / "detects": AUROC at least this.
AUROC_DETECTS = 0.9
#: The OOD sets that are "simpler" than digits, or stand in for easy controls.
SIMPLE_SETS = ("class 1",)
#: The claims that are theorems or bounds, shown on computed cases (verdict "demonstrated").
THEOREMS = ("K11",)


def k1(main: pd.DataFrame, simple_flow_auroc: tuple[float, float, float]) -> Findings:
    """K1 on the bootstrap intervals of the AUROCs. Main: the flow trained on digits rates the
    simpler held-out class (``class 1``) as likely or likelier than its own test digits: AUROC ≤
    ``CHANCE``, read as the whole interval below 0.5 (:func:`~flowcore.verdicts.beyond`): an
    interval that holds 0.5 cannot tell "as likely" from "a little less likely" (a weak detector),
    so it is *not distinguishable*, and one wholly above 0.5 means the flow does rate class 1 less
    likely. Secondary (the asymmetry, "not the other way round"): a flow trained on that simpler
    class detects the digits, its AUROC interval wholly above ``AUROC_DETECTS``."""
    a = main.loc["class 1"]
    back, low, high = simple_flow_auroc
    subs = [
        SubCheck(
            f"digits flow: class 1 rated as likely or likelier (AUROC interval below {CHANCE})",
            "main",
            {"class 1": beyond(a["CI low"], a["CI high"], CHANCE, "below")},
            f"AUROC {a['AUROC']:.3f} [{a['CI low']:.3f}, {a['CI high']:.3f}]",
        ),
        SubCheck(
            f"class-1 flow detects the digits (AUROC interval above {AUROC_DETECTS})",
            "secondary",
            {"reverse": beyond(low, high, AUROC_DETECTS, "above")},
            f"AUROC {back:.3f} [{low:.3f}, {high:.3f}]",
        ),
    ]
    return Findings(
        subs,
        f"digits→class 1: {a['AUROC']:.3f} [{a['CI low']:.3f}, {a['CI high']:.3f}]; class "
        f"1→digits: {back:.3f} [{low:.3f}, {high:.3f}]",
        headline=f"AUROC digits→class 1 {a['AUROC']:.2f} [{a['CI low']:.2f}, {a['CI high']:.2f}], "
        f"class 1→digits {back:.2f} [{low:.2f}, {high:.2f}]",
    )


def k1_pair(pair: pd.DataFrame, model: str) -> Findings:
    """K1 on the real pair for one ``model`` of
    :func:`~flowcore.studies.kirichenko2020.real.pair_table` (its rows ``direction``, ``model``,
    ``AUROC``, ``CI low``, ``CI high``). Main: trained on FashionMNIST, the model rates MNIST (the
    simpler set) as likely or likelier, its AUROC interval wholly below ``CHANCE`` (as for
    :func:`k1`). Secondary ("not the other way round"): trained on MNIST, it detects FashionMNIST,
    its interval wholly above ``AUROC_DETECTS``.

    Run for the coupling flow, the MLP RealNVP, the ML Gaussian and the untrained flow; the ML
    Gaussian (p̂) and the untrained flow are the nulls that mask what they pass too.

    Example:
        >>> pair = pd.DataFrame({"direction": ["FashionMNIST → MNIST", "MNIST → FashionMNIST"],
        ...                      "model": ["m", "m"], "AUROC": [0.2, 0.99],
        ...                      "CI low": [0.15, 0.98], "CI high": [0.25, 1.0]})
        >>> [sub.passed for sub in k1_pair(pair, "m").subchecks]
        [{'FashionMNIST → MNIST': True}, {'MNIST → FashionMNIST': True}]
    """
    rows = pair[pair["model"] == model].set_index("direction")
    if len(rows) != 2:
        raise ValueError(f"model must name the two rows of one model of pair, got {model!r}")
    forward, backward = rows.index  # FashionMNIST → MNIST, then MNIST → FashionMNIST
    a, b = rows.loc[forward], rows.loc[backward]

    def shown(row) -> str:
        return f"AUROC {row['AUROC']:.3f} [{row['CI low']:.3f}, {row['CI high']:.3f}]"

    subs = [
        SubCheck(
            f"{forward}: the OOD set rated as likely or likelier (AUROC interval below {CHANCE})",
            "main",
            {forward: beyond(a["CI low"], a["CI high"], CHANCE, "below")},
            shown(a),
        ),
        SubCheck(
            f"{backward}: detected (AUROC interval above {AUROC_DETECTS})",
            "secondary",
            {backward: beyond(b["CI low"], b["CI high"], AUROC_DETECTS, "above")},
            shown(b),
        ),
    ]
    return Findings(
        subs,
        f"{model}: {forward} {shown(a)}; {backward} {shown(b)}",
        headline=f"{model}: AUROC {forward} {a['AUROC']:.2f} [{a['CI low']:.2f}, "
        f"{a['CI high']:.2f}], {backward} {b['AUROC']:.2f}",
    )


def k2(edges: pd.DataFrame) -> Findings:
    """K2 per set: the mean correlation of ``|z|`` with the image's own edge map exceeds the
    mismatched-pair null (another image's edges) by at least 0.05."""
    ok = {name: r["matched"] - r["mismatched"] >= 0.05 for name, r in edges.iterrows()}
    main = {k: v for k, v in ok.items() if k == "test"}
    subs = [
        SubCheck(
            "in distribution: |z| follows the image's own edges more than another's (by ≥ 0.05)",
            "main",
            main,
            f"{edges.loc['test', 'matched']:.3f} vs {edges.loc['test', 'mismatched']:.3f}",
        ),
        SubCheck(
            "out of distribution: the same",
            "secondary",
            {k: v for k, v in ok.items() if k != "test"},
            "; ".join(
                f"{k}: {r['matched']:.2f} vs {r['mismatched']:.2f}"
                for k, r in edges.iterrows()
                if k != "test"
            ),
        ),
    ]
    return Findings(
        subs,
        headline=f"corr(|z|, edges) {edges.loc['test', 'matched']:.2f} vs null "
        f"{edges.loc['test', 'mismatched']:.2f}",
    )


def k3(rho: Mapping[str, float]) -> Findings:
    """K3 from :func:`~flowcore.studies.kirichenko2020.analysis.prediction_rho`: across test and OOD
    images, the predicting coupling's prediction error and the log-likelihood are negatively
    rank-correlated: the bootstrap interval of Spearman ρ lies below 0 (main). With ``Δρ`` (the
    trained flow's ρ minus the untrained flow's on the same images; secondary): training made the
    relation stronger, its paired interval below 0.

    The untrained flow is K3's null: its couplings start as the identity, so t = 0, its "prediction
    error" is the squared magnitude of the pixels (after the logit), and the Gaussian base alone
    already rates large magnitudes unlikely. Where it passes the main sub-check, the model's does
    not count (kind ``"effect"``)."""
    subs = [
        SubCheck(
            "prediction error of the predicting coupling vs log-likelihood: ρ < 0 (interval below "
            "0)",
            "main",
            {"all": beyond(rho["CI low"], rho["CI high"], 0.0, "below")},
            f"ρ = {rho['ρ']:+.3f} [{rho['CI low']:+.3f}, {rho['CI high']:+.3f}]",
        )
    ]
    headline = f"Spearman ρ {rho['ρ']:+.2f} [{rho['CI low']:+.2f}, {rho['CI high']:+.2f}]"
    if "Δρ" in rho:
        subs.append(
            SubCheck(
                "training strengthened it: ρ(trained) − ρ(untrained) < 0 (interval below 0)",
                "secondary",
                {"all": beyond(rho["Δρ CI low"], rho["Δρ CI high"], 0.0, "below")},
                f"Δρ = {rho['Δρ']:+.3f} [{rho['Δρ CI low']:+.3f}, {rho['Δρ CI high']:+.3f}]",
            )
        )
        headline += f"; Δρ vs untrained {rho['Δρ']:+.2f}"
    return Findings(subs, headline=headline)


def k4(r2_table: pd.DataFrame, layer: int, neighbour_corr: float) -> Findings:
    """K4, on the coupling that predicts best in distribution (``layer``, 0-based): its R² on each
    OOD set is within ``R2_GAP`` of its R² on the test digits (noise excluded: it has no neighbours
    to predict from; main); and its −t follows the mean of the 4 neighbours (correlation ≥
    ``NEIGHBOUR_CORR``; an undefined correlation, −t constant, fails). The untrained flow is the
    null: its −t is 0."""
    column = r2_table.columns[layer]
    r2s = r2_table[column]
    base = r2s["test"]
    sets = {k: v >= base - R2_GAP for k, v in r2s.items() if k not in ("test", "uniform noise")}
    corr = "undefined (−t is constant)" if np.isnan(neighbour_corr) else f"{neighbour_corr:.3f}"
    subs = [
        SubCheck(
            f"{column}: R² on OOD sets ≥ R² in distribution − {R2_GAP}",
            "main",
            sets,
            ", ".join(f"{k}: {v:.2f}" for k, v in r2s.items()),
        ),
        SubCheck(
            f"{column}: −t follows the 4-neighbour mean (correlation ≥ {NEIGHBOUR_CORR})",
            "secondary",
            {"all": bool(neighbour_corr >= NEIGHBOUR_CORR)},
            corr,
        ),
    ]
    ood = [v for k, v in r2s.items() if k != "test"]
    return Findings(subs, headline=f"{column}: R² in {base:.2f}; OOD {min(ood):.2f}–{max(ood):.2f}")


def _interval(row: Mapping, value: str, digits: int = 3) -> str:
    return (
        f"{row[value]:+.{digits}f} [{row['CI low']:+.{digits}f}, {row['CI high']:+.{digits}f}] "
        f"({int(row['seeds'])} seeds)"
    )


def k5(runs: pd.DataFrame, flow: str) -> Findings:
    """K5 over seeds (:func:`~flowcore.studies.kirichenko2020.seeds.swap_drops`), on ``flow`` (the
    main flow's name): the swap test's R² drop of the second coupling, ``R² layer 2 − R² layer 2,
    swapped``, has its seed interval above ``SWAP_DROP`` (main); and the second coupling's R²
    exceeds the ceiling of a same-shaped regressor on the unmodified pixels, paired per seed
    (secondary)."""
    table = swap_drops(runs, flow)
    drop, over = table.loc["drop"], table.loc["over ceiling"]
    subs = [
        SubCheck(
            f"the swap costs layer 2 ≥ {SWAP_DROP} R² (seed interval above {SWAP_DROP})",
            "main",
            {flow: beyond(drop["CI low"], drop["CI high"], SWAP_DROP, "above")},
            f"R² drop {_interval(drop, 'value')}",
        ),
        SubCheck(
            "layer 2 predicts better than a regressor on the unmodified pixels can (seed interval "
            "of the difference above 0)",
            "secondary",
            {flow: beyond(over["CI low"], over["CI high"], 0.0, "above")},
            f"R² − ceiling {_interval(over, 'value')}",
        ),
    ]
    return Findings(
        subs,
        headline=f"R² lost to the swap {drop['value']:.2f} [{drop['CI low']:.2f}, "
        f"{drop['CI high']:.2f}] over {int(drop['seeds'])} seeds",
    )


def k6(runs: pd.DataFrame) -> Findings:
    """K6 over seeds: each pair of consecutive masks in the paper's order (checkerboard < horizontal
    < cycle, among those run; :func:`~flowcore.studies.kirichenko2020.seeds.mask_differences`)
    differs in mean OOD AUROC the paper's way, by the seed interval of the paired difference (main;
    one unit per pair: above 0 holds, below fails, straddling is *not distinguishable*); and test
    bits/dim the other way, checkerboard best (secondary, the same)."""
    auc, bpd = mask_differences(runs), mask_differences(runs, "test bits/dim")
    order = " < ".join(m for m in MASKS if m in set(runs["flow"]))
    subs = [
        SubCheck(
            f"mean AUROC: {order} (seed interval of each consecutive difference above 0)",
            "main",
            _above(auc),
            _details(auc),
        ),
        SubCheck(f"test bits/dim: {order} (the same)", "secondary", _above(bpd), _details(bpd)),
    ]
    return Findings(
        subs,
        headline="ΔAUROC "
        + ", ".join(
            f"{r['comparison']} {r['difference']:+.2f} [{r['CI low']:+.2f}, {r['CI high']:+.2f}]"
            for _, r in auc.iterrows()
        ),
    )


def _above(table: pd.DataFrame) -> dict:
    return {
        r["comparison"]: beyond(r["CI low"], r["CI high"], 0.0, "above")
        for _, r in table.iterrows()
    }


def _details(table: pd.DataFrame, prefix: str = "") -> str:
    return "; ".join(
        f"{prefix}{r['comparison']}: {_interval(r, 'difference')}" for _, r in table.iterrows()
    )


def k7(runs: pd.DataFrame, mask: str) -> Findings:
    """K7 over seeds, on the flows with ``mask`` and each bottleneck size l
    (:func:`~flowcore.studies.kirichenko2020.seeds.bottleneck_differences`): the narrowest
    bottleneck raises the mean OOD AUROC over the flow without one (or, with none run, over the
    widest), by the seed interval of the paired difference (main: the trend's two ends; above 0
    holds, straddling 0 is *not distinguishable*); and test bits/dim "barely changes": each size's
    paired change lies within ±``BPD_TOL`` (secondary).

    This replaces the sign of one run's Spearman ρ(l, mean AUROC): over 4 sizes with no effect at
    all, ρ < 0 has a probability of about 0.46, and a single run has no interval."""
    auc, bpd = (
        bottleneck_differences(runs, mask),
        bottleneck_differences(runs, mask, "test bits/dim"),
    )
    ends = auc.iloc[-1]
    narrowest, reference = ends["comparison"].split(" − ")
    subs = [
        SubCheck(
            f"mean OOD AUROC rises from l = {reference} to l = {narrowest} (seed interval above 0)",
            "main",
            {f"l = {narrowest}": beyond(ends["CI low"], ends["CI high"], 0.0, "above")},
            f"ΔAUROC {_interval(ends, 'difference')}",
        ),
        SubCheck(
            f"test bits/dim within ±{BPD_TOL} of l = {reference} (seed interval)",
            "secondary",
            {
                f"l = {r['comparison'].split(' − ')[0]}": within(r["CI low"], r["CI high"], BPD_TOL)
                for _, r in bpd.iterrows()
            },
            _details(bpd, "l = "),
        ),
    ]
    return Findings(
        subs,
        headline=f"ΔAUROC l = {narrowest} vs {reference}: {ends['difference']:+.2f} "
        f"[{ends['CI low']:+.2f}, {ends['CI high']:+.2f}]",
    )


def k8(plain: pd.DataFrame, negative: pd.DataFrame, target: str) -> Findings:
    """K8: after negative training against ``target``, the held-out part of the target set is
    detected (AUROC interval above ``AUROC_DETECTS``; main), and the untargeted sets gain less AUROC
    on average than the target does (secondary: "only that one")."""
    gain = negative["AUROC"] - plain["AUROC"]
    others = gain.drop(index=[target]).dropna()
    t = negative.loc[target]
    subs = [
        SubCheck(
            f"the held-out targeted set is detected (AUROC interval above {AUROC_DETECTS})",
            "main",
            {target: beyond(t["CI low"], t["CI high"], AUROC_DETECTS, "above")},
            f"AUROC {plain.loc[target, 'AUROC']:.3f} → {t['AUROC']:.3f} [{t['CI low']:.3f}, "
            f"{t['CI high']:.3f}]",
        ),
        SubCheck(
            "the other sets gain less AUROC than the target",
            "secondary",
            {"all": others.mean() < gain[target]},
            f"target +{gain[target]:.3f}, others {others.mean():+.3f} on average",
        ),
    ]
    return Findings(
        subs,
        headline=f"{target}: AUROC {plain.loc[target, 'AUROC']:.2f} → {t['AUROC']:.2f}; others "
        f"{others.mean():+.2f}",
    )


def k9(runs: pd.DataFrame, flow: str) -> Findings:
    """K9 over seeds: on the OOD sets where the pixel flow ``flow`` fails (mean AUROC over seeds
    below ``AUROC_DETECTS``), the feature flow's AUROC is higher, by the seed interval of the paired
    gain (main, per set); and the feature flow detects class 1 (seed interval above
    ``AUROC_DETECTS``; secondary)."""
    pixel, feats = runs[runs["flow"] == flow], runs[runs["flow"] == "features"]
    if pixel.empty or feats.empty:
        raise ValueError(f"runs must hold rows of the pixel flow {flow!r} and of 'features'")
    sets = [
        c.removeprefix("AUROC ")
        for c in runs.columns
        if c.startswith("AUROC ") and pixel[c].notna().any() and feats[c].notna().any()
    ]
    failing = [s for s in sets if pixel[f"AUROC {s}"].mean() < AUROC_DETECTS]
    gains = {s: differences(runs, f"AUROC {s}", [(flow, "features")]).iloc[0] for s in failing}
    better = {s: beyond(g["CI low"], g["CI high"], 0.0, "above") for s, g in gains.items()} or {
        "none failing": False
    }
    one = over_seeds(feats, "AUROC class 1").iloc[0]
    subs = [
        SubCheck(
            "features beat pixels where the pixel flow fails (seed interval of the gain above 0)",
            "main",
            better,
            "; ".join(f"{s}: {_interval(g, 'difference', 2)}" for s, g in gains.items()),
        ),
        SubCheck(
            f"the feature flow detects class 1 (seed interval above {AUROC_DETECTS})",
            "secondary",
            {"class 1": beyond(one["CI low"], one["CI high"], AUROC_DETECTS, "above")},
            f"AUROC {one['AUROC class 1']:.3f} [{one['CI low']:.3f}, {one['CI high']:.3f}] "
            f"({int(one['seeds'])} seeds)",
        ),
    ]
    return Findings(
        subs,
        headline=f"class 1: pixels {pixel['AUROC class 1'].mean():.2f}, features "
        f"{feats['AUROC class 1'].mean():.2f} (mean over {len(feats)} seeds)",
    )


def k10(tabular: pd.DataFrame) -> Findings:
    """K10: each one-class flow separates the other class (AUROC interval above 0.5), per dataset
    and direction (main)."""
    subs = [
        SubCheck(
            f"AUROC interval above {CHANCE} in every dataset and direction",
            "main",
            {
                f"{r['dataset']}, {r['direction']}": beyond(
                    r["CI low"], r["CI high"], CHANCE, "above"
                )
                for _, r in tabular.iterrows()
            },
            "; ".join(
                f"{r['dataset']} {r['direction']}: {r['AUROC']:.3f} [{r['CI low']:.3f}, "
                f"{r['CI high']:.3f}]"
                for _, r in tabular.iterrows()
            ),
        )
    ]
    return Findings(subs, headline=", ".join(f"{r['AUROC']:.2f}" for _, r in tabular.iterrows()))


def k11(mixture: pd.DataFrame) -> Findings:
    """K11, a bound shown on computed cases (kind ``"theorem"``): mixing ε of a narrow density on
    the OOD points into the trained flow changes the average in-distribution log-likelihood by at
    most −log(1 − ε) (main: measured change ≤ bound, up to 1e-9 nats of rounding) while the mixture
    rates every OOD point above every test digit (AUROC < 0.05)."""
    subs = [
        SubCheck(
            "objective moves by at most −log(1 − ε)",
            "main",
            {
                f"ε={r['ε']:g}": r["objective change"] <= r["bound −log(1−ε)"] + 1e-9
                for _, r in mixture.iterrows()
            },
            "; ".join(
                f"ε={r['ε']:g}: {r['objective change']:.4f} ≤ {r['bound −log(1−ε)']:.4f}"
                for _, r in mixture.iterrows()
            ),
        ),
        SubCheck(
            "yet the mixture rates the OOD set above the test digits (AUROC < 0.05)",
            "secondary",
            {f"ε={r['ε']:g}": r["AUROC"] < 0.05 for _, r in mixture.iterrows()},
            ", ".join(f"{r['AUROC']:.3f}" for _, r in mixture.iterrows()),
        ),
    ]
    return Findings(
        subs,
        headline=f"objective change ≤ {mixture['objective change'].max():.3f} nats, AUROC "
        f"{mixture['AUROC'].max():.2f}",
    )


def assess(claim: str, found: Findings, nulls: Mapping[str, Findings] | None = None) -> ClaimCheck:
    """The verdict on one claim from its findings: kind ``"effect"`` (no truth to run as a null;
    ``nulls``, e.g. ``{"untrained": …}``, mask the units they pass), or ``"theorem"`` for
    :data:`THEOREMS` (shown as *demonstrated*)."""
    return judge_effect(
        claim, found, CLAIMS[claim], nulls=nulls, kind="theorem" if claim in THEOREMS else "effect"
    )
