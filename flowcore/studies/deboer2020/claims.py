"""Verdicts on the claims of de Boer (2020), computed from the study's tables through
:mod:`flowcore.verdicts`. The thesis does not number its claims; D1–D7 are ours.

Where a truth exists (Table 2, the moons) it enters the checks directly: D6 asks whether the thesis's
own numbers are possible for a correct model on fresh data at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from flowcore.verdicts import ClaimCheck, Findings, SubCheck, judge_effect

__all__ = ["CLAIMS", "THESIS", "FLAT", "assess", "d1", "d2", "d3", "d4", "d5", "d6", "d7"]

CLAIMS = {
    "D1": "At ψ = 1, auxiliary dimensions neither help nor hurt the log-likelihood.",
    "D2": "For ψ > 1 the log-likelihood rises with B.",
    "D3": "More squared dimensions need a larger B.",
    "D4": "On half-moons, B ≥ 3 removes the density 'bridge' between the moons.",
    "D5": "On images there is no predictable gain from B.",
    "D6": "The thesis's Table 2 values are attainable on fresh data (the truth bounds them).",
    "D7": "For ψ > 1 samples look more like the truth as B grows.",
}
THESIS = {
    "D1": "Table 2: largest |LL(B) − LL(0)| at ψ = 1 is 0.04",
    "D2": "Table 2 (e.g. ψ = 3, D = 2: 0.25 → 2.35)",
    "D3": "§4.1",
    "D4": "Figs. 6, 14",
    "D5": "Table 4 (MNIST 126.27 / 145.32 / 137.66 / 119.85 / 129.4 / 128.28 for B = 0/1/2/4/8/16)",
    "D6": "Table 2 (best of 10 models)",
    "D7": "Fig. 4",
}
#: D1: "neither helps nor hurts": within this many nats of B = 0 (the thesis's own spread is 0.04).
FLAT = 0.05
#: D4: the bridge is "removed" when the mass where the truth is negligible falls to at most this share of B = 0's.
BRIDGE_SHARE = 0.5



def d1(summary: pd.DataFrame) -> Findings:
    """D1 per D at ψ = 1: |mean log p̂(B) − mean log p̂(0)| ≤ ``FLAT`` for every B (main)."""
    units, parts = {}, []
    for d, g in summary[summary["ψ"] == 1].dropna(subset=["mean over seeds"]).groupby("D"):
        if not (g["B"] == 0).any():
            continue
        base = g[g["B"] == 0]["mean over seeds"].iloc[0]
        worst = float((g["mean over seeds"] - base).abs().max())
        units[f"D={d}"] = worst <= FLAT
        parts.append(f"D={d}: {worst:.3f}")
    return Findings([SubCheck(f"|LL(B) − LL(0)| ≤ {FLAT} nats at ψ = 1", "main", units or {"no ψ = 1": False}, "; ".join(parts))], headline="largest change " + ", ".join(parts))


def d2(summary: pd.DataFrame) -> Findings:
    """D2 per (ψ > 1, D): the largest B's mean log p̂ exceeds B = 0's by more than 2 SE (main), and
    log p̂ is monotone in B (Spearman ρ = 1; secondary)."""
    units, mono, parts = {}, {}, []
    for (psi, d), g in summary[summary["ψ"] > 1].dropna(subset=["mean over seeds"]).groupby(["ψ", "D"]):
        g = g.sort_values("B")
        if len(g) < 2:
            continue
        first, last = g.iloc[0], g.iloc[-1]
        units[f"ψ={psi}, D={d}"] = bool(last["mean over seeds"] - first["mean over seeds"] > 2 * np.hypot(first["SE"], last["SE"]))
        mono[f"ψ={psi}, D={d}"] = bool(spearmanr(g["B"], g["mean over seeds"]).statistic == 1) if len(g) > 2 else units[f"ψ={psi}, D={d}"]
        parts.append(f"ψ={psi}, D={d}: {first['mean over seeds']:.2f} → {last['mean over seeds']:.2f}")
    return Findings([SubCheck("LL(largest B) > LL(0) by > 2 SE", "main", units or {"no ψ > 1": False}, "; ".join(parts)), SubCheck("monotone in B", "secondary", mono or {"no ψ > 1": False}, "")], headline=f"{sum(units.values())}/{len(units)} cells gain")


def d3(summary: pd.DataFrame) -> Findings:
    """D3 per ψ > 1: the smallest B within 0.05 nats of that cell's best rises with D (non-decreasing,
    and larger at the largest D than at the smallest; main)."""
    units, parts = {}, []
    for psi, g in summary[summary["ψ"] > 1].dropna(subset=["mean over seeds"]).groupby("ψ"):
        needed = []
        for d, gd in g.groupby("D"):
            best = gd["mean over seeds"].max()
            needed.append(int(gd[gd["mean over seeds"] >= best - 0.05]["B"].min()))
        units[f"ψ={psi}"] = bool(np.all(np.diff(needed) >= 0) and needed[-1] > needed[0]) if len(needed) > 1 else False
        parts.append(f"ψ={psi}: B needed {needed} for D = {sorted(int(x) for x in g['D'].unique())}")
    return Findings([SubCheck("the B needed to saturate grows with D", "main", units or {"no ψ > 1": False}, "; ".join(parts))], headline="; ".join(parts))


def d4(moons: pd.DataFrame) -> Findings:
    """D4: for every B ≥ 3, the mean mass where the true density is negligible is at most
    ``BRIDGE_SHARE`` of B = 0's (main). Premise: B = 0's mass was measured (a model whose density is
    not finite on the grid has none), else the claim is not testable here."""
    m = moons.dropna(subset=["mass where p < 1e-3"]).groupby("B")["mass where p < 1e-3"].mean()
    units = {f"B={b}": bool(m[b] <= BRIDGE_SHARE * m[0]) for b in m.index if b >= 3} if 0 in m.index else {}
    subs = [
        SubCheck("B = 0's bridge mass was measured", "premise", {"all": 0 in m.index}, "measured for B = " + ", ".join(str(int(b)) for b in m.index)),
        SubCheck(f"B ≥ 3 puts ≤ {BRIDGE_SHARE} × B = 0's mass on the bridge", "main", units or {"no B ≥ 3 measured": False}, ", ".join(f"B={int(b)}: {v:.4f}" for b, v in m.items())),
    ]
    return Findings(subs, headline=", ".join(f"B={int(b)}: {v:.3f}" for b, v in m.items()) or "no model measured")


def d5(digits: pd.DataFrame) -> Findings:
    """D5: no predictable gain on images: the largest B's mean log p̂ is not above B = 0's by more
    than 2 SE (main); the trend over B is reported beside it."""
    g = digits.dropna(subset=["mean log p̂"]).sort_values("B")
    rho = spearmanr(g["B"], g["mean log p̂"]).statistic if len(g) > 2 else float("nan")
    first, last = g.iloc[0], g.iloc[-1]
    gain = float(last["mean log p̂"] - first["mean log p̂"])
    se = float(np.hypot(first["SE"], last["SE"]))
    subs = [SubCheck("no significant gain from B = 0 to the largest B (≤ 2 SE)", "main", {"digits": gain <= 2 * se}, ", ".join(f"B={int(b)}: {v:.1f}" for b, v in zip(g["B"], g["mean log p̂"])) + f"; gain {gain:+.2f} ± {se:.2f}, ρ = {rho:+.2f}")]
    return Findings(subs, headline=f"gain {gain:+.2f} ± {se:.2f} nats (B = {int(first['B'])} → {int(last['B'])}); ρ = {rho:+.2f}")


def d6(summary: pd.DataFrame) -> Findings:
    """D6 per (ψ, D, B) cell with a thesis number: the thesis's value is at most the truth's E log p
    (a correct model on fresh data cannot beat it; main)."""
    rows = summary.dropna(subset=["thesis"])
    units = {f"ψ={r['ψ']}, D={r['D']}, B={r['B']}": bool(r["thesis"] <= r["truth E log p"] + 0.05) for _, r in rows.iterrows()}
    excess = (rows["thesis"] - rows["truth E log p"]).max() if len(rows) else float("nan")
    return Findings([SubCheck("the thesis's value ≤ the truth's E log p (+0.05)", "main", units or {"no cells": False}, f"largest excess {excess:+.2f} nats")], headline=f"{sum(units.values())}/{len(units)} cells attainable; largest excess {excess:+.2f} nats")


def d7(quality: pd.DataFrame) -> Findings:
    """D7 per (ψ > 1, D): the energy distance of samples to the truth falls from B = 0 to the largest B (main)."""
    units, parts = {}, []
    for (psi, d), g in quality[quality["ψ"] > 1].dropna(subset=["energy distance"]).groupby(["ψ", "D"]):
        g = g.sort_values("B")
        if len(g) < 2:
            continue
        units[f"ψ={psi}, D={d}"] = bool(g["energy distance"].iloc[-1] < g["energy distance"].iloc[0])
        parts.append(f"ψ={psi}, D={d}: {g['energy distance'].iloc[0]:.3f} → {g['energy distance'].iloc[-1]:.3f}")
    return Findings([SubCheck("energy distance to the truth falls with B", "main", units or {"no ψ > 1": False}, "; ".join(parts))], headline=f"{sum(units.values())}/{len(units)} cells")


def assess(claim: str, found: Findings) -> ClaimCheck:
    """The verdict on one claim (kind ``"effect"``)."""
    return judge_effect(claim, found, CLAIMS[claim])
