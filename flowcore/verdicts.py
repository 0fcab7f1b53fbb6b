r"""Claim → sub-checks → verdict: the general machinery every study's claims go through.

A study states each claim in words and tests it with a few pass/fail :class:`SubCheck`\ s computed
from its result tables, each over one or more *units* (usually the dimensions D). Every sub-check
has a role:

- ``premise``: a statement about the test setting alone (e.g. "log p still separates the two sets").
  Units where a premise fails are dropped from the other sub-checks (or, with ``gates``, from the one
  sub-check it names); with no main unit left the claim is *not testable here*: the setting, not the
  model, decides it.
- ``main``: what the claim is about; the verdict rests on it.
- ``secondary``: the claim's further parts.

A claim about a model *failing* (``kind="failure"``) is checked three times: with the model, with a
control (another model in its place) and with the true density in the model's place, the null. A
sub-check that passes for the truth at a unit says nothing about the model there: that unit is
*uninformative* and does not count. The rule (:func:`judge`), over the informative units:

- **reproduced**: the main sub-checks pass at every unit and every secondary passes;
- **partly reproduced**: the main sub-checks pass at some unit, but not everything holds;
- **not reproduced**: the main sub-checks pass at no unit;
- **not testable here**: a premise fails everywhere, or the truth passes every main unit.

Claims that the model *agrees* with the truth (``kind="fit"``), about estimators alone
(``kind="estimator"``), or about what a model does where no truth exists to stand in for it
(``kind="effect"``, e.g. a flow on images) are judged by the same rule without the masking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import pandas as pd
from scipy.stats import norm

__all__ = [
    "Verdict",
    "ROLES",
    "KINDS",
    "SubCheck",
    "Findings",
    "ClaimCheck",
    "verdict_of",
    "judge",
    "judge_effect",
    "claims_table",
    "subcheck_table",
    "family_z_threshold",
]

#: The roles a sub-check can have (see the module docstring).
ROLES = ("premise", "main", "secondary")
#: The kinds of claim: the model departs from the truth, agrees with it, no model is involved, or
#: an effect of a model with no truth to compare (see the module docstring).
KINDS = ("failure", "fit", "estimator", "effect")


class Verdict(str, Enum):
    """The verdicts a claim can get.

    Example:
        >>> str(Verdict.PARTLY)
        'partly reproduced'
    """

    REPRODUCED = "reproduced"
    PARTLY = "partly reproduced"
    NOT = "not reproduced"
    UNTESTABLE = "not testable here"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SubCheck:
    """One pass/fail part of a claim, per unit.

    Attributes:
        name: What is checked, in words (with its threshold).
        role: ``"premise"``, ``"main"`` or ``"secondary"``.
        passed: Per unit (e.g. ``"D=20"``), whether it holds; a check without units uses ``"all"``.
        detail: The numbers it rests on.
        gates: For a premise, the name of the one sub-check it conditions; empty: all of them.
        quote: The thesis's words this sub-check reads.

    Example:
        >>> SubCheck("gap < 0", "main", {"D=10": True, "D=20": False}).share
        '1/2'
    """

    name: str
    role: str
    passed: Mapping[str, bool]
    detail: str = ""
    gates: str = ""
    quote: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if not self.passed:
            raise ValueError(f"sub-check {self.name!r} must hold at least one unit")
        object.__setattr__(self, "passed", {str(k): bool(v) for k, v in self.passed.items()})

    @property
    def share(self) -> str:
        """How many units pass, as ``"passed/units"``."""
        return f"{sum(self.passed.values())}/{len(self.passed)}"


@dataclass(frozen=True)
class Findings:
    """What one run of a claim check found: its sub-checks and a sentence of evidence.

    Findings of the same claim on several tables add up (``a + b``). ``subchecks`` may be any
    sequence; it is stored as a tuple.

    Example:
        >>> a = Findings((SubCheck("matches on q = p", "main", {"D=10": True}),), "z = 0.4")
        >>> b = Findings((SubCheck("matches on every member", "main", {"all": True}),), "max z = 2.1")
        >>> [s.name for s in (a + b).subchecks], (a + b).evidence
        (['matches on q = p', 'matches on every member'], 'z = 0.4 | max z = 2.1')
    """

    subchecks: tuple[SubCheck, ...]
    evidence: str = ""
    scope: str = ""
    headline: str = ""

    def __post_init__(self):
        object.__setattr__(self, "subchecks", tuple(self.subchecks))

    def __add__(self, other: Findings) -> Findings:
        join = lambda a, b, sep: sep.join(x for x in (a, b) if x)  # noqa: E731
        return Findings(self.subchecks + other.subchecks, join(self.evidence, other.evidence, " | "), join(self.scope, other.scope, "; "), join(self.headline, other.headline, "; "))


@dataclass(frozen=True)
class ClaimCheck:
    """A claim's verdict, the sentence of evidence it rests on, what was tested, and the claim's words.

    Attributes:
        verdict: The model's verdict.
        reason: How the rule reached it, naming the sub-check that carries it.
        findings: Per view (``"model"``, ``"control"``, ``"truth"``) what the check found.
        verdicts: Per view, the verdict by the same rule (the truth's and the control's are masked
            by the truth like the model's).
        informative: Per sub-check name, the units that count (for failure claims: where the truth fails).

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
    reason: str = ""
    kind: str = "failure"
    findings: Mapping[str, Findings] = field(default_factory=dict)
    verdicts: Mapping[str, Verdict] = field(default_factory=dict)
    informative: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def rests_on(self) -> str:
        """The number the verdict rests on: the check's headline, else the main sub-checks' details."""
        found = self.findings.get("model")
        if found is None:
            return self.evidence
        return found.headline or "; ".join(s.detail or s.name for s in found.subchecks if s.role == "main")


def verdict_of(passed: Sequence[bool]) -> Verdict:
    """All pass: reproduced; some: partly; none: not reproduced (one main sub-check, no others).

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


def _rule(kind: str, found: Findings, truth: Findings | None) -> tuple[Verdict, str, dict[str, tuple[str, ...]]]:
    """The verdict of ``found`` under the module's rule, why, and the informative units per sub-check."""
    premises = [s for s in found.subchecks if s.role == "premise"]
    if any("all" in s.passed and not s.passed["all"] and not s.gates for s in premises):
        names = [s.name for s in premises if not all(s.passed.values()) and not s.gates]
        return Verdict.UNTESTABLE, f"premise fails: {'; '.join(names)}", {}
    by_name = {s.name: s for s in truth.subchecks} if (truth is not None and kind == "failure") else {}
    informative: dict[str, tuple[str, ...]] = {}
    for s in found.subchecks:
        if s.role == "premise":
            continue
        # A unit survives when every premise that covers it (all, or this sub-check) holds there.
        failed = {u for p in premises if p.gates in ("", s.name) for u, ok in p.passed.items() if not ok}
        units = [] if "all" in failed else [u for u in s.passed if u not in failed]
        if s.name in by_name:
            units = [u for u in units if not by_name[s.name].passed.get(u, False)]
        informative[s.name] = tuple(units)
    failed_premises = [p.name for p in premises if not all(p.passed.values())]
    mains = [s for s in found.subchecks if s.role == "main"]
    if not mains:
        raise ValueError("a claim needs at least one main sub-check")
    main_results = [s.passed[u] for s in mains for u in informative[s.name]]
    if not main_results:
        why = f"premise fails at every unit: {'; '.join(failed_premises)}" if failed_premises else "the truth passes the main sub-check at every unit, so it cannot tell"
        return Verdict.UNTESTABLE, why, informative
    main_names = " and ".join(f"“{s.name}”" for s in mains)
    verb = "holds" if len(mains) == 1 else "hold"
    secondary = [(s, [s.passed[u] for u in informative[s.name]]) for s in found.subchecks if s.role == "secondary"]
    failed_secondary = [s.name for s, results in secondary if not all(results)]
    if all(main_results) and not failed_secondary:
        return Verdict.REPRODUCED, f"main {main_names} {verb} at every informative unit, and so does every informative secondary", informative
    if any(main_results):
        parts = []
        if not all(main_results):
            parts.append(f"main {main_names} {verb} at {sum(main_results)} of {len(main_results)} informative units")
        else:
            parts.append(f"main {main_names} {verb}")
        if failed_secondary:
            parts.append("fails: " + "; ".join(f"“{n}”" for n in failed_secondary))
        return Verdict.PARTLY, ", ".join(parts), informative
    return Verdict.NOT, f"main {main_names} {verb} at none of {len(main_results)} informative units", informative


def judge(claim: str, kind: str, findings: Mapping[str, Findings], statement: str = "") -> ClaimCheck:
    """Apply the module's rule to what a claim check found per view.

    Args:
        claim: The claim's id.
        kind: ``"failure"``, ``"fit"`` or ``"estimator"`` (:data:`KINDS`).
        findings: ``{"model": …}`` and optionally ``"control"`` and ``"truth"`` (the null).

    Example:
        >>> model = Findings((SubCheck("model overestimates", "main", {"D=10": True, "D=20": True}),
        ...                   SubCheck("grows with D", "secondary", {"all": True})), "…")
        >>> truth = Findings((SubCheck("model overestimates", "main", {"D=10": False, "D=20": False}),
        ...                   SubCheck("grows with D", "secondary", {"all": True})), "…")
        >>> check = judge("C0", "failure", {"model": model, "truth": truth})
        >>> check.verdict, check.informative["grows with D"]
        (<Verdict.REPRODUCED: 'reproduced'>, ())
        >>> judge("C0", "failure", {"model": truth, "truth": truth}).verdict
        <Verdict.NOT: 'not reproduced'>
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if "model" not in findings:
        raise ValueError("findings must hold the 'model' view")
    truth = findings.get("truth")
    verdicts, reasons, masks = {}, {}, {}
    for view, found in findings.items():
        verdicts[view], reasons[view], masks[view] = _rule(kind, found, truth)
    model = findings["model"]
    return ClaimCheck(claim, verdicts["model"], model.evidence, model.scope, statement, reasons["model"], kind, dict(findings), verdicts, masks["model"])


def judge_effect(claim: str, found: Findings, statement: str = "") -> ClaimCheck:
    """:func:`judge` for a claim of kind ``"effect"``: one view, the model, and no truth to mask with.

    Example:
        >>> found = Findings([SubCheck("AUROC < 0.5", "main", {"class 1": True})], headline="AUROC 0.36")
        >>> judge_effect("K1", found).verdict, judge_effect("K1", found).rests_on
        (<Verdict.REPRODUCED: 'reproduced'>, 'AUROC 0.36')
    """
    return judge(claim, "effect", {"model": found}, statement)


def claims_table(checks: Sequence[ClaimCheck]) -> pd.DataFrame:
    """One line per claim: statement, verdict (and the control's and the truth's, where run), the
    numbers it rests on and why the rule gave it.

    Example:
        >>> claims_table([ClaimCheck("C0", Verdict.NOT, "none passed", "D = 10", "A claim.")])["verdict"].tolist()
        ['not reproduced']
    """
    rows = []
    for c in checks:
        rows.append(
            {
                "claim": c.claim,
                "statement": c.statement,
                "verdict": str(c.verdict),
                "control": str(c.verdicts["control"]) if "control" in c.verdicts else "—",
                "truth (null)": str(c.verdicts["truth"]) if "truth" in c.verdicts else "—",
                "rests on": c.rests_on,
                "why": c.reason,
                "scope": c.scope,
            }
        )
    return pd.DataFrame(rows).set_index("claim")


def _mark(sub: SubCheck | None, units: Sequence[str] | None) -> str:
    if sub is None:
        return "—"
    counted = list(sub.passed) if units is None else list(units)
    if not counted:
        return f"({sub.share}, uninformative)"
    held = sum(sub.passed[u] for u in counted)
    symbol = "✓" if held == len(counted) else ("✗" if held == 0 else "◐")
    return f"{symbol} {held}/{len(counted)}"


def subcheck_table(checks: Sequence[ClaimCheck]) -> pd.DataFrame:
    """One row per sub-check of every claim: its role, and for model / control / truth how many of
    its informative units pass (``✓`` all, ``◐`` some, ``✗`` none; the truth's column counts all
    units), with the model's numbers.

    Example:
        >>> m = Findings((SubCheck("gap < 0", "main", {"D=10": True}),), "…")
        >>> t = Findings((SubCheck("gap < 0", "main", {"D=10": False}),), "…")
        >>> subcheck_table([judge("C0", "failure", {"model": m, "truth": t})])[["model", "truth"]].values.tolist()
        [['✓ 1/1', '✗ 0/1']]
    """
    rows = []
    for c in checks:
        model = c.findings.get("model")
        if model is None:
            continue
        views = {v: {s.name: s for s in f.subchecks} for v, f in c.findings.items()}
        for s in model.subchecks:
            units = None if s.role == "premise" else c.informative.get(s.name)
            rows.append(
                {
                    "claim": c.claim,
                    "sub-check": s.name,
                    "role": s.role,
                    "model": _mark(s, units),
                    "control": _mark(views.get("control", {}).get(s.name), units) if "control" in views else "—",
                    "truth": _mark(views.get("truth", {}).get(s.name), None) if "truth" in views else "—",
                    "numbers (model)": s.detail,
                    "the thesis's words": s.quote,
                }
            )
    return pd.DataFrame(rows)


def family_z_threshold(n: int, level: float = 0.0027) -> float:
    """The |z| a family of ``n`` standard-normal estimates stays under with probability ``1 − level``
    (Bonferroni).

    Example:
        >>> round(family_z_threshold(1), 2), round(family_z_threshold(288), 2)
        (3.0, 4.43)
    """
    return float(norm.isf(level / (2 * max(n, 1))))
