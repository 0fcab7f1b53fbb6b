r"""Claim → sub-checks → verdict: the general machinery every study's claims go through.

A study states each claim in words and tests it with a few :class:`SubCheck`\ s computed from its
result tables, each over one or more *units* (usually the dimensions D). A unit's outcome is
``True`` (holds), ``False`` (does not) or ``None``: *not distinguishable*, the interval of the
number it rests on straddles the threshold (see :func:`beyond`). Every sub-check has a role:

- ``premise``: what must hold for the rest to mean anything: a statement about the test setting
  (e.g. "log p still separates the two sets") or, for a claim that a flow *fails*, that the flow
  has learned p at all (the *fit premise*). Units where a premise fails are dropped from the other
  sub-checks (or, with ``gates``, from the one sub-check it names); with no main unit left the claim
  is *not testable here*, and the premise's ``unmet`` text says why (e.g. "the flow does not fit
  p").
- ``main``: what the claim is about; the verdict rests on it.
- ``secondary``: the claim's further parts.

**Nulls.** A check proves something about the model only if it fails for densities that cannot
show the claimed behaviour. Each claim is checked again with a *null* in the model's place
(:data:`NULLS`): the true density p (``"truth"``), the maximum-likelihood Gaussian of the training
set (``"p̂"``: what finite data alone gives) and the model at its initialisation (``"untrained"``).
Each null gets its own verdict by the same rule, unmasked, so that a table of nulls shows whether
the checks can fail at all. For the model's verdict, a unit of a sub-check that a masking null
(:data:`MASKED_BY`) passes is *uninformative* and does not count:

- a claim that the model *fails* (``kind="failure"``) is masked by the truth and by p̂: what the
  truth or p̂ also does is a property of the test setting or of estimation from finite data; the
  untrained flow is kept out by the fit premise instead;
- a claim that the model *agrees* with the truth (``"fit"``) is masked by the untrained flow: an
  agreement it shows before training was not learned;
- an ``"effect"`` of a model where no truth exists (a flow on images) is masked by any null given;
- claims about the estimators alone (``"estimator"``) and theorems or bounds (``"theorem"``, shown
  as *demonstrated*) have no model to swap.

The rule (:func:`judge`), over the informative units:

- **reproduced** (a theorem: **demonstrated**): the main sub-checks hold at every unit and every
  secondary holds;
- **partly reproduced**: the main sub-checks hold at some unit, but not everything does;
- **not distinguishable**: the main sub-checks hold at no unit, and at some the interval straddles
  the threshold: the data cannot tell;
- **not reproduced**: the main sub-checks fail at every unit;
- **not testable here**: a premise fails everywhere, or the nulls pass every main unit.
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
    "NULLS",
    "MASKED_BY",
    "SubCheck",
    "Findings",
    "ClaimCheck",
    "verdict_of",
    "beyond",
    "within",
    "all_of",
    "judge",
    "judge_effect",
    "claims_table",
    "subcheck_table",
    "family_z_threshold",
]

#: The roles a sub-check can have (see the module docstring).
ROLES = ("premise", "main", "secondary")
#: The kinds of claim: the model departs from the truth, agrees with it, no model is involved, an
#: effect of a model with no truth to compare, or a theorem or bound shown on computed cases.
KINDS = ("failure", "fit", "estimator", "effect", "theorem")
#: The nulls a claim can be checked with in the model's place, in the order tables show them.
NULLS = ("p̂", "untrained", "truth")
#: Per kind, the nulls whose passing units are uninformative for the model (see the module
#: docstring).
MASKED_BY = {
    "failure": ("truth", "p̂"),
    "fit": ("untrained",),
    "effect": NULLS,
    "estimator": (),
    "theorem": (),
}


class Verdict(str, Enum):
    """The verdicts a claim can get.

    Example:
        >>> str(Verdict.PARTLY), str(Verdict.UNDECIDED)
        ('partly reproduced', 'not distinguishable')
    """

    REPRODUCED = "reproduced"
    DEMONSTRATED = "demonstrated"
    PARTLY = "partly reproduced"
    UNDECIDED = "not distinguishable"
    NOT = "not reproduced"
    UNTESTABLE = "not testable here"

    def __str__(self) -> str:
        return self.value


def _outcome(value) -> bool | None:
    return None if value is None else bool(value)


@dataclass(frozen=True)
class SubCheck:
    """One part of a claim, per unit: ``True`` (holds), ``False`` or ``None`` (not distinguishable).

    Attributes:
        name: What is checked, in words (with its threshold).
        role: ``"premise"``, ``"main"`` or ``"secondary"``.
        passed: Per unit (e.g. ``"D=20"``), the outcome; a check without units uses ``"all"``.
        detail: The numbers it rests on.
        gates: For a premise, the name of the one sub-check it conditions; empty: all of them.
        quote: The source's words this sub-check reads.
        unmet: For a premise, what its failure means, in a few words (e.g. "the flow does not fit
            p"); it becomes the reason of a *not testable here*.

    Example:
        >>> SubCheck("gap < 0", "main", {"D=10": True, "D=20": False, "D=50": None}).share
        '1/3'
    """

    name: str
    role: str
    passed: Mapping[str, bool | None]
    detail: str = ""
    gates: str = ""
    quote: str = ""
    unmet: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if not self.passed:
            raise ValueError(f"sub-check {self.name!r} must hold at least one unit")
        object.__setattr__(self, "passed", {str(k): _outcome(v) for k, v in self.passed.items()})

    @property
    def share(self) -> str:
        """How many units pass, as ``"passed/units"``."""
        return f"{sum(v is True for v in self.passed.values())}/{len(self.passed)}"


@dataclass(frozen=True)
class Findings:
    """What one run of a claim check found: its sub-checks and a sentence of evidence.

    Findings of the same claim on several tables add up (``a + b``). ``subchecks`` may be any
    sequence; it is stored as a tuple.

    Example:
        >>> a = Findings((SubCheck("matches on q = p", "main", {"D=10": True}),), "z = 0.4")
        >>> b = Findings((SubCheck("matches on every member", "main", {"all": True}),),
        ...              "max z = 2.1")
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
        return Findings(
            self.subchecks + other.subchecks,
            join(self.evidence, other.evidence, " | "),
            join(self.scope, other.scope, "; "),
            join(self.headline, other.headline, "; "),
        )


@dataclass(frozen=True)
class ClaimCheck:
    """A claim's verdict, the sentence of evidence it rests on, what was tested, and the claim's
    words.

    Attributes:
        verdict: The model's verdict.
        reason: How the rule reached it, naming the sub-check that carries it.
        findings: Per view (``"model"`` and any of :data:`NULLS`) what the check found.
        verdicts: Per view, the verdict by the same rule (each null judged on its own, unmasked).
        reasons: Per view, how the rule reached that view's verdict.
        informative: Per sub-check name, the model's units that count.

    Example:
        >>> check = ClaimCheck("C0", verdict_of([True, False]), "one of two sub-checks passed",
        ...                    "D = 10", "A claim.")
        >>> check.verdict, check.label()
        (<Verdict.PARTLY: 'partly reproduced'>, 'partly reproduced')
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
    reasons: Mapping[str, str] = field(default_factory=dict)

    @property
    def rests_on(self) -> str:
        """The number the verdict rests on: the check's headline, else the main sub-checks'
        details."""
        found = self.findings.get("model")
        if found is None:
            return self.evidence
        return found.headline or "; ".join(
            s.detail or s.name for s in found.subchecks if s.role == "main"
        )

    def label(self, view: str = "model") -> str:
        """The view's verdict in words; a *not testable here* says why when a premise's ``unmet``
        does (e.g. ``"not testable here: the flow does not fit p"``)."""
        verdict = self.verdicts.get(view, self.verdict if view == "model" else None)
        if verdict is None:
            return "—"
        found = self.findings.get(view)
        if verdict == Verdict.UNTESTABLE and found is not None:
            unmet = dict.fromkeys(
                s.unmet
                for s in found.subchecks
                if s.role == "premise"
                and s.unmet
                and not all(v is True for v in s.passed.values())
                and not s.gates
            )
            if unmet:
                return f"{verdict}: {'; '.join(unmet)}"
        return str(verdict)


def verdict_of(passed: Sequence[bool | None]) -> Verdict:
    """All pass: reproduced; some: partly; none, with some undecided (``None``): not
    distinguishable; none: not reproduced (one main sub-check, no others).

    Example:
        >>> (  # doctest: +NORMALIZE_WHITESPACE
        ...     verdict_of([True, True]), verdict_of([False, None]), verdict_of([False, False])
        ... )
        (<Verdict.REPRODUCED: 'reproduced'>, <Verdict.UNDECIDED: 'not distinguishable'>,
         <Verdict.NOT: 'not reproduced'>)
    """
    passed = [_outcome(p) for p in passed]
    if not passed:
        raise ValueError("passed must hold at least one check")
    if all(p is True for p in passed):
        return Verdict.REPRODUCED
    if any(p is True for p in passed):
        return Verdict.PARTLY
    return Verdict.UNDECIDED if any(p is None for p in passed) else Verdict.NOT


def beyond(low: float, high: float, threshold: float = 0.0, side: str = "above") -> bool | None:
    """Whether an interval ``[low, high]`` lies wholly ``side`` of ``threshold`` (``True``), wholly
    on the other side (``False``), or straddles it (``None``: not distinguishable). A NaN end counts
    as straddling.

    Example:
        >>> (beyond(0.52, 0.61, 0.5), beyond(0.41, 0.58, 0.5), beyond(0.2, 0.4, 0.5),
        ...  beyond(0.2, 0.4, 0.5, "below"))
        (True, None, False, True)
    """
    if side not in ("above", "below"):
        raise ValueError(f"side must be 'above' or 'below', got {side!r}")
    if low != low or high != high:  # NaN
        return None
    if low > high:
        raise ValueError(
            f"the interval's low end must not exceed its high end, got [{low}, {high}]"
        )
    if side == "below":
        return beyond(-high, -low, -threshold, "above")
    if low > threshold:
        return True
    if high <= threshold:
        return False
    return None


def all_of(outcomes) -> bool | None:
    """Three-valued *and* of outcomes: ``False`` if any is ``False``, ``True`` if all are ``True``,
    else ``None`` (not distinguishable).

    Example:
        >>> all_of([True, None]), all_of([True, None, False]), all_of([True, True])
        (None, False, True)
    """
    outcomes = list(outcomes)
    if any(o is False for o in outcomes):
        return False
    return True if all(o is True for o in outcomes) else None


def within(low: float, high: float, half_width: float) -> bool | None:
    """Whether the interval ``[low, high]`` lies inside ``(−half_width, half_width)`` (``True``),
    wholly outside it on one side (``False``), or straddles an end (``None``), by :func:`beyond`.

    Example:
        >>> (within(-0.02, 0.03, 0.05), within(0.06, 0.2, 0.05), within(-0.01, 0.08, 0.05),
        ...  within(float("nan"), 0.0, 0.05))
        (True, False, None, None)
    """
    if not half_width > 0:
        raise ValueError(f"half_width must be > 0, got {half_width}")
    return all_of([beyond(low, high, -half_width, "above"), beyond(low, high, half_width, "below")])


def _informative(found: Findings, masks: Sequence[Findings]) -> dict[str, tuple[str, ...]]:
    """Per non-premise sub-check of ``found``: the units every premise covering it holds at and no
    masking null passes."""
    premises = [s for s in found.subchecks if s.role == "premise"]
    by_name = [{s.name: s for s in m.subchecks} for m in masks]
    out: dict[str, tuple[str, ...]] = {}
    for s in found.subchecks:
        if s.role == "premise":
            continue
        failed = {
            u
            for p in premises
            if p.gates in ("", s.name)
            for u, ok in p.passed.items()
            if ok is not True
        }
        units = [] if "all" in failed else [u for u in s.passed if u not in failed]
        for null in by_name:
            if s.name in null:
                units = [u for u in units if null[s.name].passed.get(u) is not True]
        out[s.name] = tuple(units)
    return out


def _rule(
    kind: str, found: Findings, masks: Sequence[Findings] = ()
) -> tuple[Verdict, str, dict[str, tuple[str, ...]]]:
    """The verdict of ``found`` under the module's rule, masked by ``masks`` (the nulls' findings),
    why, and the informative units per sub-check."""
    premises = [s for s in found.subchecks if s.role == "premise"]
    whole = [
        s for s in premises if not s.gates and "all" in s.passed and s.passed["all"] is not True
    ]
    if whole:
        return Verdict.UNTESTABLE, f"premise fails: {'; '.join(s.name for s in whole)}", {}
    informative = _informative(found, masks)
    mains = [s for s in found.subchecks if s.role == "main"]
    if not mains:
        raise ValueError("a claim needs at least one main sub-check")
    failed_premises = [p.name for p in premises if not all(v is True for v in p.passed.values())]
    main_results = [s.passed[u] for s in mains for u in informative[s.name]]
    if not main_results:
        if failed_premises and not any(_informative(found, ())[s.name] for s in mains):
            return (
                Verdict.UNTESTABLE,
                f"premise fails at every unit: {'; '.join(failed_premises)}",
                informative,
            )
        return (
            Verdict.UNTESTABLE,
            "the nulls pass the main sub-check at every unit, so it cannot tell",
            informative,
        )
    main_names = " and ".join(f"“{s.name}”" for s in mains)
    verb = "holds" if len(mains) == 1 else "hold"
    secondary = [
        (s, [s.passed[u] for u in informative[s.name]])
        for s in found.subchecks
        if s.role == "secondary"
    ]
    failed_secondary = [s.name for s, results in secondary if not all(r is True for r in results)]
    held = sum(r is True for r in main_results)
    undecided = sum(r is None for r in main_results)
    if held == len(main_results) and not failed_secondary:
        full = Verdict.DEMONSTRATED if kind == "theorem" else Verdict.REPRODUCED
        return (
            full,
            f"main {main_names} {verb} at every informative unit, "
            "and so does every informative secondary",
            informative,
        )
    if held:
        parts = [
            f"main {main_names} {verb} at {held} of {len(main_results)} informative units"
            if held < len(main_results)
            else f"main {main_names} {verb}"
        ]
        if failed_secondary:
            parts.append("fails or cannot tell: " + "; ".join(f"“{n}”" for n in failed_secondary))
        return Verdict.PARTLY, ", ".join(parts), informative
    if undecided:
        return (
            Verdict.UNDECIDED,
            f"main {main_names} {verb} at none of {len(main_results)} informative units, "
            f"and at {undecided} the interval straddles the threshold",
            informative,
        )
    return (
        Verdict.NOT,
        f"main {main_names} {verb} at none of {len(main_results)} informative units",
        informative,
    )


def judge(
    claim: str, kind: str, findings: Mapping[str, Findings], statement: str = ""
) -> ClaimCheck:
    """Apply the module's rule to what a claim check found per view.

    Args:
        claim: The claim's id.
        kind: One of :data:`KINDS`.
        findings: ``{"model": …}`` and any of the nulls :data:`NULLS`.

    Example:
        >>> model = Findings((SubCheck("model overestimates", "main", {"D=10": True, "D=20": True}),
        ...                   SubCheck("grows with D", "secondary", {"all": True})), "…")
        >>> truth = Findings((SubCheck("model overestimates", "main",
        ...                            {"D=10": False, "D=20": False}),
        ...                   SubCheck("grows with D", "secondary", {"all": True})), "…")
        >>> check = judge("C0", "failure", {"model": model, "truth": truth})
        >>> check.verdict, check.verdicts["truth"], check.informative["grows with D"]
        (<Verdict.REPRODUCED: 'reproduced'>, <Verdict.NOT: 'not reproduced'>, ())
        >>> judge("C0", "failure", {"model": truth, "truth": truth}).verdict
        <Verdict.NOT: 'not reproduced'>
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if "model" not in findings:
        raise ValueError("findings must hold the 'model' view")
    unknown = set(findings) - {"model", *NULLS}
    if unknown:
        raise ValueError(f"findings views must be 'model' or one of {NULLS}, got {sorted(unknown)}")
    masks = [findings[n] for n in MASKED_BY[kind] if n in findings]
    verdicts, reasons = {}, {}
    verdicts["model"], reasons["model"], informative = _rule(kind, findings["model"], masks)
    for view in (n for n in NULLS if n in findings):
        verdicts[view], reasons[view], _ = _rule(kind, findings[view])
    model = findings["model"]
    ordered = {v: findings[v] for v in ("model", *NULLS) if v in findings}
    return ClaimCheck(
        claim,
        verdicts["model"],
        model.evidence,
        model.scope,
        statement,
        reasons["model"],
        kind,
        ordered,
        verdicts,
        informative,
        reasons,
    )


def judge_effect(
    claim: str,
    found: Findings,
    statement: str = "",
    nulls: Mapping[str, Findings] | None = None,
    kind: str = "effect",
) -> ClaimCheck:
    """:func:`judge` for a claim with no truth to stand in for the model: kind ``"effect"`` (masked
    by any ``nulls`` given, e.g. the untrained flow), or ``"theorem"`` (shown as *demonstrated*).

    Example:
        >>> found = Findings([SubCheck("AUROC < 0.5", "main", {"class 1": True})],
        ...                  headline="AUROC 0.36")
        >>> judge_effect("K1", found).verdict, judge_effect("K1", found).rests_on
        (<Verdict.REPRODUCED: 'reproduced'>, 'AUROC 0.36')
        >>> judge_effect("K3", found, nulls={"untrained": found}).verdict
        <Verdict.UNTESTABLE: 'not testable here'>
    """
    if kind not in ("effect", "theorem"):
        raise ValueError(f"kind must be 'effect' or 'theorem', got {kind!r}")
    return judge(claim, kind, {"model": found, **(nulls or {})}, statement)


def claims_table(checks: Sequence[ClaimCheck]) -> pd.DataFrame:
    """One line per claim: statement, verdict and each null's (``"—"`` where not run), the numbers
    it rests on and why the rule gave it.

    Example:
        >>> claims_table([ClaimCheck("C0", Verdict.NOT, "none passed", "D = 10",
        ...                          "A claim.")])["verdict"].tolist()
        ['not reproduced']
    """
    rows = []
    for c in checks:
        rows.append(
            {
                "claim": c.claim,
                "statement": c.statement,
                "verdict": c.label(),
                **{null: c.label(null) for null in NULLS},
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
    held = sum(sub.passed[u] is True for u in counted)
    undecided = sum(sub.passed[u] is None for u in counted)
    symbol = "✓" if held == len(counted) else ("◐" if held else ("?" if undecided else "✗"))
    return f"{symbol} {held}/{len(counted)}" + (f" ({undecided} ?)" if undecided else "")


def subcheck_table(checks: Sequence[ClaimCheck]) -> pd.DataFrame:
    """One row per sub-check of every claim: its role, and for the model and each null how many of
    the units it is judged on pass (``✓`` all, ``◐`` some, ``✗`` none, ``?`` none but some not
    distinguishable; the model's informative units, each null's own), with the model's numbers.

    Example:
        >>> m = Findings((SubCheck("gap < 0", "main", {"D=10": True}),), "…")
        >>> t = Findings((SubCheck("gap < 0", "main", {"D=10": False}),), "…")
        >>> subcheck_table([judge("C0", "failure",
        ...                       {"model": m, "truth": t})])[["model", "truth"]].values.tolist()
        [['✓ 1/1', '✗ 0/1']]
    """
    rows = []
    for c in checks:
        model = c.findings.get("model")
        if model is None:
            continue
        views = {v: {s.name: s for s in f.subchecks} for v, f in c.findings.items()}
        own = {v: _informative(f, ()) for v, f in c.findings.items() if v != "model"}
        for s in model.subchecks:
            units = None if s.role == "premise" else c.informative.get(s.name)
            row = {"claim": c.claim, "sub-check": s.name, "role": s.role, "model": _mark(s, units)}
            for null in NULLS:
                sub = views.get(null, {}).get(s.name)
                row[null] = (
                    "—"
                    if null not in views
                    else _mark(
                        sub, None if (sub is None or s.role == "premise") else own[null].get(s.name)
                    )
                )
            rows.append({**row, "numbers (model)": s.detail, "the thesis's words": s.quote})
    return pd.DataFrame(rows)


def family_z_threshold(n: int, level: float = 0.0027) -> float:
    """The |z| a family of ``n`` standard-normal estimates stays under with probability
    ``1 − level`` (Bonferroni).

    Example:
        >>> round(family_z_threshold(1), 2), round(family_z_threshold(288), 2)
        (3.0, 4.43)
    """
    return float(norm.isf(level / (2 * max(n, 1))))
