"""Verdicts on the thesis's claims, computed from an experiment's tables, never typed by hand.

Each check states its criterion in its docstring; the thresholds are module constants, so a
reader can see exactly what "matches" or "overlaps" means here. A claim checked over several
dimensions is *reproduced* when every dimension passes, *partly reproduced* when some do, and
*not reproduced* when none does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import pandas as pd

__all__ = ["Verdict", "ClaimCheck", "CLAIMS", "verdict_of", "c1_baseline", "c2_baseline", "c3_baseline", "claims_table"]

#: The claims as CLAIMS.md words them (shortened).
CLAIMS = {
    "C1": "For every D the flow fits p: the KDE of log pθ over Q(p) overlaps that of log p, shifted slightly left (E_p[log pθ] ≤ E_p[log p]).",
    "C2": "The Monte-Carlo H*(q,p) matches the analytic H(q,p); repeated test sets of N = 1,000,000 give σ ≤ 0.01.",
    "C3": "The Monte-Carlo KL*(q‖p) = H*(q,p) − H(q) matches the analytic KL(q‖p) (Proposition 1).",
    "C4": "Varying only s leaves the gap Δ_HC roughly constant, and Var(log pθ) ≈ Var(log p).",
    "C5": "Increasing t makes H(q,pθ) underestimate H(q,p), growing with t, weaker at higher D.",
    "C6": "At D = 20, s = 0.75, t = 0.25 the KDEs of log pθ over Q(q) and Q(p) overlap almost fully.",
    "C7": "On the perturbed distribution at s = 1, t = 0, log pθ cannot separate Q(q^δ) from Q(p), log p can.",
    "C8": "The model's cross-entropies on Λ^δ stay close to those on Λ; the more atypical, the more similar.",
    "C9": "On the outlier distribution log pθ overestimates so much that its KDE overlaps that of Q(p).",
    "C10": "Within the outlier family, s and t move log pθ as in the generalization experiments.",
    "C11": "Bound-based OOD detection with log pθ fails where log p succeeds, worst for s < 1 with a shift.",
}

#: C1: two KDEs "overlap" when they share at least this much mass (overlap coefficient).
OVL_FIT = 0.8
#: C2, C3: a Monte-Carlo estimate "matches" its closed form within this many standard errors.
Z_AGREE = 3.0
#: C1: E_p[log pθ] ≤ E_p[log p] holds unless the paired difference is this many SEs below zero.
Z_SHIFT = 2.0
#: C2: the thesis's spread bound and the test-set size it holds at.
SIGMA_THESIS = 0.01
N_THESIS = 1_000_000


class Verdict(str, Enum):
    REPRODUCED = "reproduced"
    PARTLY = "partly reproduced"
    NOT = "not reproduced"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ClaimCheck:
    """A claim's verdict, with the sentence of evidence it rests on and what was tested."""

    claim: str
    verdict: Verdict
    evidence: str
    scope: str

    @property
    def statement(self) -> str:
        return CLAIMS[self.claim]


def verdict_of(passed: Sequence[bool]) -> Verdict:
    """All pass: reproduced; some: partly; none: not reproduced."""
    passed = [bool(p) for p in passed]
    if not passed:
        raise ValueError("passed must hold at least one check")
    if all(passed):
        return Verdict.REPRODUCED
    return Verdict.PARTLY if any(passed) else Verdict.NOT


def _dims(mask: pd.Series) -> str:
    dims = [str(d) for d, ok in mask.items() if ok]
    return "D = " + ", ".join(dims) if dims else "no D"


def c1_baseline(summary: pd.DataFrame) -> ClaimCheck:
    """C1 per D: ``OVL ≥ OVL_FIT`` and the paired ``E_p[log p − log pθ] ≥ −Z_SHIFT·SE``."""
    overlap = summary["OVL"] >= OVL_FIT
    left = summary["KL*(p‖pθ) paired"] >= -Z_SHIFT * summary["SE KL*(p‖pθ) paired"]
    passed = overlap & left
    evidence = (
        f"OVL ≥ {OVL_FIT} for {_dims(overlap)} (min {summary['OVL'].min():.3f}); "
        f"E_p[log p − log pθ] ranges {summary['KL*(p‖pθ) paired'].min():.4f} to {summary['KL*(p‖pθ) paired'].max():.4f} nats, "
        f"not significantly negative for {_dims(left)}."
    )
    return ClaimCheck("C1", verdict_of(passed), evidence, f"baseline q = p, D ∈ {list(summary.index)}")


def c2_baseline(summary: pd.DataFrame) -> ClaimCheck:
    """C2 on q = p per D: ``|H*(p,p) − H(p)| ≤ Z_AGREE·SE`` and the spread of ``E_p[log pθ]`` over the K
    repeated test sets, at N = 10⁶ (measured when N ≥ 10⁶, else scaled by ``√(N/10⁶)``), ``≤ 0.01``."""
    z = summary["z H*(p,p)"]
    agree = z.abs() <= Z_AGREE
    sigma = summary["σ at N=1e6 (scaled)"]
    small = sigma <= SIGMA_THESIS
    measured = bool((summary["N"] >= N_THESIS).all())
    how = "measured at N = 10⁶" if measured else f"measured at N = {int(summary['N'].iloc[0]):,} and scaled to N = 10⁶ by 1/√N"
    evidence = (
        f"|z| of H*(p,p) against H(p) ≤ {Z_AGREE} for {_dims(agree)} (max {z.abs().max():.2f}); "
        f"σ of E_p[log pθ] ≤ {SIGMA_THESIS} for {_dims(small)} (max {sigma.max():.4f}, {how})."
    )
    return ClaimCheck("C2", verdict_of(agree & small), evidence, "baseline q = p; all of Λ comes with the generalization chapter")


def c3_baseline(summary: pd.DataFrame) -> ClaimCheck:
    """C3 on q = p per D: ``KL*(p‖p)`` within ``Z_AGREE`` SE of 0 and, as a non-zero case,
    ``KL*(p‖p̂)`` within ``Z_AGREE`` SE of the analytic ``KL(p‖p̂)`` (p̂: the ML Gaussian)."""
    z_self, z_hat = summary["z H*(p,p)"], summary["z KL*(p‖p̂)"]
    agree = (z_self.abs() <= Z_AGREE) & (z_hat.abs() <= Z_AGREE)
    evidence = (
        f"KL*(p‖p̂) vs analytic KL(p‖p̂): max |z| = {z_hat.abs().max():.2f} "
        f"(KL(p‖p̂) from {summary['KL(p‖p̂)'].min():.4f} to {summary['KL(p‖p̂)'].max():.4f} nats); "
        f"KL*(p‖p) vs 0: max |z| = {z_self.abs().max():.2f}; both within {Z_AGREE} SE for {_dims(agree)}."
    )
    return ClaimCheck("C3", verdict_of(agree), evidence, "baseline q = p and the ML-Gaussian control; Λ comes with the generalization chapter")


def claims_table(checks: Sequence[ClaimCheck]) -> pd.DataFrame:
    """The checks as a table: claim, statement, verdict, evidence, scope."""
    return pd.DataFrame(
        [{"claim": c.claim, "statement": c.statement, "verdict": str(c.verdict), "evidence": c.evidence, "scope": c.scope} for c in checks]
    ).set_index("claim")
