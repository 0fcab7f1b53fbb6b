r"""Claim → sub-checks → verdict: the general machinery every study's claims go through.

A study states each claim in words and checks it with a few pass/fail *sub-checks* computed from
its result tables. :func:`verdict_of` combines them: all pass, *reproduced*; some, *partly
reproduced*; none, *not reproduced*. A :class:`ClaimCheck` keeps the verdict with the sentence of
evidence it rests on, so a verdict is never typed by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import pandas as pd
from scipy.stats import norm

__all__ = ["Verdict", "ClaimCheck", "verdict_of", "combine", "claims_table", "family_z_threshold"]


class Verdict(str, Enum):
    """The three verdicts a claim can get.

    Example:
        >>> str(Verdict.PARTLY)
        'partly reproduced'
    """

    REPRODUCED = "reproduced"
    PARTLY = "partly reproduced"
    NOT = "not reproduced"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ClaimCheck:
    """A claim's verdict, the sentence of evidence it rests on, what was tested, and the claim's words.

    Example:
        >>> check = ClaimCheck("C0", verdict_of([True, False]), "one of two sub-checks passed", "D = 10", "A claim.")
        >>> check.verdict
        <Verdict.PARTLY: 'partly reproduced'>
    """

    claim: str
    verdict: Verdict
    evidence: str
    scope: str
    statement: str = ""


def verdict_of(passed: Sequence[bool]) -> Verdict:
    """All pass: reproduced; some: partly; none: not reproduced.

    Example:
        >>> verdict_of([True, True]), verdict_of([False, False])
        (<Verdict.REPRODUCED: 'reproduced'>, <Verdict.NOT: 'not reproduced'>)
    """
    passed = [bool(p) for p in passed]
    if not passed:
        raise ValueError("passed must hold at least one check")
    if all(passed):
        return Verdict.REPRODUCED
    return Verdict.PARTLY if any(passed) else Verdict.NOT


def combine(claim: str, checks: Sequence[ClaimCheck], statement: str = "") -> ClaimCheck:
    """One verdict from several checks of the same claim (e.g. on two chapters' tables): reproduced
    only if every one is; partly if any is partly or some pass; not reproduced if none does.

    Example:
        >>> a = ClaimCheck("C0", Verdict.REPRODUCED, "a", "here")
        >>> combine("C0", [a, ClaimCheck("C0", Verdict.NOT, "b", "there")]).verdict
        <Verdict.PARTLY: 'partly reproduced'>
    """
    found = [c.verdict for c in checks]
    verdict = Verdict.PARTLY if Verdict.PARTLY in found else verdict_of([v == Verdict.REPRODUCED for v in found])
    return ClaimCheck(claim, verdict, " | ".join(c.evidence for c in checks), "; ".join(c.scope for c in checks), statement)


def claims_table(checks: Sequence[ClaimCheck]) -> pd.DataFrame:
    """The checks as a table indexed by claim: statement, verdict, evidence, scope.

    Example:
        >>> claims_table([ClaimCheck("C0", Verdict.NOT, "none passed", "D = 10", "A claim.")])["verdict"].tolist()
        ['not reproduced']
    """
    return pd.DataFrame(
        [{"claim": c.claim, "statement": c.statement, "verdict": str(c.verdict), "evidence": c.evidence, "scope": c.scope} for c in checks]
    ).set_index("claim")


def family_z_threshold(n: int, level: float = 0.0027) -> float:
    """The |z| a family of ``n`` standard-normal estimates stays under with probability ``1 − level``
    (Bonferroni).

    Example:
        >>> round(family_z_threshold(1), 2), round(family_z_threshold(288), 2)
        (3.0, 4.43)
    """
    return float(norm.isf(level / (2 * max(n, 1))))
