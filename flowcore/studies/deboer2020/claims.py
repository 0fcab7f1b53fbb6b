r"""Verdicts on the claims of de Boer (2020), computed from the study's tables through
:mod:`flowcore.verdicts`. The thesis does not number its claims; D1–D7 are ours.

Where a truth exists (Table 2, the moons) it enters the checks directly: D6 asks whether the
thesis's own numbers are possible for a correct model on fresh data at all.

**Comparing settings.** D1–D5 and D7 compare settings of B, and rest on seed-to-seed intervals
(:func:`paired_gains`): per seed, the difference between the run at B and the run at the reference B
(the seed pairs the two runs; both are scored on the same test set), and a two-sided Student-t
interval (:data:`CONFIDENCE`) of those differences over the seeds, from
:func:`flowcore.sweep.summarise_over_seeds`. :func:`flowcore.verdicts.beyond` turns an interval into
an outcome: wholly on the claim's side of its threshold, the unit holds; wholly on the other side,
it does not; straddling, it is *not distinguishable*. The test set is shared by the seeds, so an
interval is about training and the importance-sampling draws, on that test set. A seed whose run
diverged drops out of its pairs; with fewer than two pairs the interval is undefined and the unit
not distinguishable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from flowcore.sweep import summarise_over_seeds
from flowcore.validation import check_probability
from flowcore.verdicts import ClaimCheck, Findings, SubCheck, all_of, beyond, judge_effect, within

__all__ = [
    "CLAIMS",
    "THESIS",
    "FLAT",
    "CONFIDENCE",
    "BRIDGE_SHARE",
    "GRID_HOLDS",
    "GAIN_PER_DIM",
    "REFERENCES",
    "paired_gains",
    "image_summary",
    "assess",
    "d1",
    "d2",
    "d3",
    "d4",
    "d5",
    "d6",
    "d7",
]

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
    "D3": "§2 (the expectation), §3.1",
    "D4": "Figs. 6, 14",
    "D5": "Table 4 (MNIST 126.27 / 145.32 / 137.66 / 119.85 / 129.4 / 128.28 for B = 0/1/2/4/8/16)",
    "D6": "Table 2 (best of 10 models)",
    "D7": "Fig. 4",
}
#: The thesis's words each check reads (§ and figure of the thesis).
QUOTES = {
    "D1": (
        "“if ψ = 1, adding auxiliary dimensions does not improve nor deteriorate the performance "
        "of the model” (§3.1)"
    ),
    "D2": "“In those cases [ψ > 1] the likelihood increases significantly with higher B” (§3.1)",
    "D2 monotone": "“a higher B consistently yielded a higher predicted likelihood” (§4)",
    "D3": (
        "“Squaring more dimensions means more bits of information are lost, so we expect to see "
        "that a larger number of auxiliary dimensions is needed” (§2)"
    ),
    "D4": (
        "“In the cases where B = 3 and B = 4, we see that the two modes of the distribution are "
        "disconnected, apart from some very faint noise” (§3.2)"
    ),
    "D5": (
        "“With the exception being CIFAR10, no predictable improvement in the negative "
        "log-likelihood is gained by increasing B on image data” (Fig. 7)"
    ),
    "D7": (
        "“We see that for ψ > 1, the transformation visually becomes better with increasing B” "
        "(Fig. 4)"
    ),
}
#: D1: "neither helps nor hurts": within this many nats of B = 0 (the thesis's own spread at ψ = 1
#: is 0.04 nats, its Table 2 has two decimals). D2 reads "rises" as more than this (a change D1
#: calls flat is no rise), D3 reads "saturated" as within this of the best B.
FLAT = 0.05
#: The level of every seed-to-seed interval (two-sided Student-t). For D1 (an equivalence) a 95%
#: interval inside ±FLAT is stricter than the usual 90% of two one-sided tests.
CONFIDENCE = 0.95
#: D4: the bridge is "removed" when the mass where the truth is negligible falls to at most this
#: share of B = 0's (the thesis sees the modes "disconnected, apart from some very faint noise": at
#: least halved).
BRIDGE_SHARE = 0.5
#: D4: a model's bridge mass is measured only if the grid holds at least this share of its mass (the
#: rest lies outside the box, where the truth is negligible too, and would be missed).
GRID_HOLDS = 0.9
#: D5: the size of gain, in nats per dimension of the data, that "no predictable gain" denies. Two
#: readings agree on it: the size D1 calls flat (FLAT = 0.05 nats at D = 2 is 0.025 per coordinate),
#: and the largest change the thesis calls "no predictable improvement" on MNIST
#: (|145.32 − 126.27| = 19.05 nats over 784 pixels = 0.024 per pixel; its "predictable" CIFAR-10
#: gain, 8635.47 − 8422.63 = 212.84 nats over 3,072 values, is 0.069 per value, about three times as
#: large).
GAIN_PER_DIM = 0.025
#: What :func:`paired_gains` compares each B with, besides a B value itself.
REFERENCES = ("previous", "best")
_LL = "mean log p̂"


def paired_gains(
    runs: pd.DataFrame,
    value: str,
    by: Sequence[str] = (),
    reference: int | str = 0,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Per group of ``by`` and per B other than the reference: the mean over seeds of
    ``value(B, seed) − value(reference, seed)`` with a Student-t interval over the seeds.

    Args:
        runs: One row per (group, ``B``, ``seed``); a row whose ``value`` is not finite (a run that
            diverged) drops out, and a seed counts only where both of its runs are finite.
        value: The column compared.
        by: The columns that make a group (e.g. ``["ψ", "D"]``); none: one group.
        reference: A B value (default 0); ``"previous"``, the next smaller B of the group; or
            ``"best"``, the group's B with the highest mean of ``value`` over seeds.
        confidence: The interval's level.

    Returns:
        Columns ``*by, "B", "reference B", "gain", "CI low", "CI high", "seeds"`` (paired seeds),
        groups and B in ascending order. With fewer than two pairs the interval is NaN, with none
        the gain too.

    Example:
        >>> runs = pd.DataFrame({"B": [0, 0, 0, 2, 2, 2], "seed": [0, 1, 2] * 2,
        ...                      "LL": [1.0, 1.1, 0.9, 1.5, 1.7, 1.3]})
        >>> paired_gains(runs, "LL").round(3).values.tolist()
        [[2.0, 0.0, 0.5, 0.252, 0.748, 3.0]]
        >>> # no run at B = 4: no pairs
        ... paired_gains(runs, "LL", reference=4)[["B", "seeds"]].values.tolist()
        [[0, 0], [2, 0]]
    """
    confidence = check_probability("confidence", confidence)
    if not (
        reference in REFERENCES
        or (isinstance(reference, (int, np.integer)) and not isinstance(reference, bool))
    ):
        raise ValueError(f"reference must be a B value or one of {REFERENCES}, got {reference!r}")
    by = list(by)
    missing = sorted({value, "B", "seed", *by} - set(runs.columns))
    if missing:
        raise ValueError(f"runs lacks the columns {missing}")
    if runs.duplicated([*by, "B", "seed"]).any():
        raise ValueError(f"runs must hold one row per {(*by, 'B', 'seed')}")
    keys = [*by, "B", "reference B"]
    finite = runs[np.isfinite(runs[value].to_numpy(dtype=float))]
    pairs, cells = [], []
    for key, g in finite.groupby(by, sort=True) if by else [((), finite)]:
        labels = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        wide = g.set_index(["seed", "B"])[value].astype(float).unstack("B").sort_index(axis=1)
        bs = list(wide.columns)
        for i, b in enumerate(bs):
            ref = (
                {"previous": bs[i - 1] if i else b, "best": wide.mean().idxmax()}.get(
                    reference, reference
                )
                if isinstance(reference, str)
                else reference
            )
            if ref == b:
                continue
            cells.append({**labels, "B": b, "reference B": ref})
            if ref in wide.columns:
                diff = (wide[b] - wide[ref]).dropna()
                pairs += [
                    {**labels, "B": b, "reference B": ref, "seed": s, "gain": d}
                    for s, d in diff.items()
                ]
    out = pd.DataFrame(cells, columns=keys)
    if not pairs:
        return out.assign(**{"gain": np.nan, "CI low": np.nan, "CI high": np.nan, "seeds": 0})
    pairs = pd.DataFrame(pairs)
    summary = summarise_over_seeds(pairs, keys, "gain", confidence).merge(
        pairs.groupby(keys).size().rename("seeds").reset_index(), on=keys
    )
    out = out.merge(summary, on=keys, how="left")
    out["seeds"] = out["seeds"].fillna(0).astype(int)
    return out


def image_summary(
    runs: pd.DataFrame,
    thesis: dict[int, float] | None = None,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Per B of an image table (:func:`~flowcore.studies.deboer2020.experiments.mnist_table` or
    :func:`~flowcore.studies.deboer2020.experiments.digits_table`): the runs that trained / all,
    the mean over those seeds of the test ``mean log p̂`` (nats per image) and, where the table has
    it, of ``bits/dim``, each with its Student-t interval over seeds (training's variation); the
    gain over B = 0 by :func:`paired_gains` and whether its interval lies above 0 (``"higher"``),
    below (``"lower"``) or straddles it (``"not distinguishable"``); and ``thesis``'s value per B
    (NaN where it has none).

    Example:
        >>> runs = pd.DataFrame({"B": [0, 0, 0, 2, 2, 2], "seed": [0, 1, 2] * 2,
        ...                      "mean log p̂": [1.0, 1.1, 0.9, 1.5, 1.7, 1.3], "failure": ""})
        >>> image_summary(runs, {0: 126.27})[["B", "runs", "gain over B = 0", "vs B = 0",
        ...                                    "thesis"]].values.tolist()
        [[0, '3/3', 0.0, '', 126.27], [2, '3/3', 0.5, 'higher', nan]]
    """
    confidence = check_probability("confidence", confidence)
    trained = runs[np.isfinite(runs[_LL].to_numpy(dtype=float))]
    values = [_LL] + (["bits/dim"] if "bits/dim" in runs.columns else [])
    out = pd.DataFrame({"B": sorted(runs["B"].unique())})
    counts = runs.groupby("B").size()
    out["runs"] = [f"{int((trained['B'] == b).sum())}/{int(counts[b])}" for b in out["B"]]
    for value in values:
        summary = (
            summarise_over_seeds(trained, ["B"], value, confidence)
            if len(trained)
            else pd.DataFrame(columns=["B", value, "CI low", "CI high"])
        )
        prefix = "" if value == _LL else f"{value} "
        summary = summary.rename(
            columns={"CI low": f"{prefix}CI low", "CI high": f"{prefix}CI high"}
        )
        out = out.merge(summary, on="B", how="left")
    gains = paired_gains(runs, _LL, confidence=confidence).set_index("B")
    words = {True: "higher", False: "lower", None: "not distinguishable"}
    out["gain over B = 0"] = [0.0 if b == 0 else gains["gain"].get(b, np.nan) for b in out["B"]]
    out["gain CI low"] = [gains["CI low"].get(b, np.nan) for b in out["B"]]
    out["gain CI high"] = [gains["CI high"].get(b, np.nan) for b in out["B"]]
    out["vs B = 0"] = [
        ""
        if b == 0
        else words[
            beyond(gains["CI low"].get(b, np.nan), gains["CI high"].get(b, np.nan), 0.0, "above")
        ]
        for b in out["B"]
    ]
    out["thesis"] = [float((thesis or {}).get(int(b), np.nan)) for b in out["B"]]
    return out


def _interval(r: dict, digits: int = 3) -> str:
    """``gain [low, high] (n seeds)`` of a row of :func:`paired_gains`."""
    return (
        f"{r['gain']:+.{digits}f} [{r['CI low']:+.{digits}f}, {r['CI high']:+.{digits}f}] "
        f"({int(r['seeds'])} seeds)"
    )


def _unit(r: dict, *names: str) -> str:
    return ", ".join(f"{n}={r[n]}" for n in names)


def d1(runs: pd.DataFrame) -> Findings:
    """D1 per (D, B > 0) at ψ = 1: the interval over seeds of LL(B) − LL(0) lies inside ±``FLAT``
    (main).

    ``runs``: :func:`~flowcore.studies.deboer2020.experiments.table2`'s rows (one per ψ, D, B,
    seed).
    """
    gains = paired_gains(runs[runs["ψ"] == 1], _LL, by=["D"])
    units = {
        _unit(r, "D", "B"): within(r["CI low"], r["CI high"], FLAT)
        for r in gains.to_dict("records")
    }
    detail = "; ".join(f"D={r['D']}, B={r['B']}: {_interval(r)}" for r in gains.to_dict("records"))
    name = f"LL(B) − LL(0) within ±{FLAT} nats at ψ = 1 ({CONFIDENCE:.0%} interval over seeds)"
    worst = (
        gains.loc[[gains["gain"].abs().idxmax()]].to_dict("records")[0]
        if gains["gain"].notna().any()
        else None
    )
    headline = (
        f"largest |LL(B) − LL(0)|: D={worst['D']}, B={worst['B']}: {_interval(worst)}"
        if worst is not None
        else "no ψ = 1 pair"
    )
    return Findings(
        [SubCheck(name, "main", units or {"no ψ = 1": False}, detail, quote=QUOTES["D1"])],
        headline=headline,
    )


def d2(runs: pd.DataFrame) -> Findings:
    """D2 per (ψ > 1, D): the interval over seeds of LL(largest B) − LL(0) lies above ``FLAT``
    (main), and no step to the next B lowers LL by more than ``FLAT`` (every step's interval above
    −FLAT; secondary)."""
    high = runs[runs["ψ"] > 1]
    gains = paired_gains(high, _LL, by=["ψ", "D"])
    last = gains.loc[gains.groupby(["ψ", "D"])["B"].idxmax()] if len(gains) else gains
    units = {
        _unit(r, "ψ", "D"): beyond(r["CI low"], r["CI high"], FLAT, "above")
        for r in last.to_dict("records")
    }
    steps = paired_gains(high, _LL, by=["ψ", "D"], reference="previous")
    mono = {
        f"ψ={psi}, D={d}": all_of(
            beyond(r["CI low"], r["CI high"], -FLAT, "above") for r in g.to_dict("records")
        )
        for (psi, d), g in steps.groupby(["ψ", "D"])
    }
    detail = "; ".join(
        f"ψ={r['ψ']}, D={r['D']}, B {r['reference B']} → {r['B']}: {_interval(r, 2)}"
        for r in last.to_dict("records")
    )
    step_detail = "; ".join(
        f"ψ={r['ψ']}, D={r['D']}, B {r['reference B']} → {r['B']}: {_interval(r, 2)}"
        for r in steps.to_dict("records")
    )
    subs = [
        SubCheck(
            f"LL(largest B) − LL(0) > {FLAT} nats ({CONFIDENCE:.0%} interval over seeds)",
            "main",
            units or {"no ψ > 1": False},
            detail,
            quote=QUOTES["D2"],
        ),
        SubCheck(
            f"no step in B lowers LL by more than {FLAT} nats",
            "secondary",
            mono or {"no ψ > 1": False},
            step_detail,
            quote=QUOTES["D2 monotone"],
        ),
    ]
    held = sum(v is True for v in units.values())
    return Findings(
        subs, headline=f"{held}/{len(units)} cells gain more than {FLAT} nats; " + detail
    )


def _needed(gaps: pd.DataFrame) -> tuple[int, int]:
    """The smallest B that may be saturated and the smallest B that surely is (a saturated B's
    interval of LL(B) − LL(best B) lies above −FLAT; the best B itself is saturated), from one group
    of :func:`paired_gains` with ``reference="best"``."""
    saturated = {int(gaps["reference B"].iloc[0]): True}
    saturated.update(
        {
            int(r["B"]): beyond(r["CI low"], r["CI high"], -FLAT, "above")
            for r in gaps.to_dict("records")
        }
    )
    return min(b for b, s in saturated.items() if s is not False), min(
        b for b, s in saturated.items() if s is True
    )


def _rises(ranges: Sequence[tuple[int, int]]) -> bool | None:
    """Whether a sequence of ranges ``(low, high)`` of B needed, in increasing D, surely rises
    (never falls between neighbours, and the last lies above the first: ``True``), surely does not
    (``False``), or cannot tell (``None``)."""
    if len(ranges) < 2:
        return False
    steps = list(zip(ranges, ranges[1:]))
    if ranges[-1][1] <= ranges[0][0] or any(b[1] < a[0] for a, b in steps):
        return False
    if ranges[-1][0] > ranges[0][1] and all(b[0] >= a[1] for a, b in steps):
        return True
    return None


def d3(runs: pd.DataFrame) -> Findings:
    """D3 per ψ > 1: the smallest B within ``FLAT`` of the cell's best B (by the interval over seeds
    of LL(B) − LL(best); a range where the interval straddles −FLAT) rises with D (main). Premise:
    the grid has at least two D (else the claim is not testable here)."""
    units, parts = {}, []
    for psi, g in runs[runs["ψ"] > 1].groupby("ψ"):
        gaps = paired_gains(g, _LL, by=["D"], reference="best")
        needed = {int(d): _needed(gd) for d, gd in gaps.groupby("D")}
        units[f"ψ={psi}"] = _rises([needed[d] for d in sorted(needed)])
        shown = ", ".join(
            f"D={d}: {lo}" if lo == hi else f"D={d}: {lo}–{hi}"
            for d, (lo, hi) in sorted(needed.items())
        )
        parts.append(f"ψ={psi}: B needed {shown}")
    name = f"the B needed to come within {FLAT} nats of the best B grows with D"
    dims = sorted(int(d) for d in runs["D"].unique())
    subs = [
        SubCheck(
            "the grid has at least two D",
            "premise",
            {"all": len(dims) >= 2},
            f"D = {dims}",
            unmet="the grid has a single D",
        ),
        SubCheck(name, "main", units or {"no ψ > 1": False}, "; ".join(parts), quote=QUOTES["D3"]),
    ]
    return Findings(subs, headline="; ".join(parts))


def d4(moons: pd.DataFrame) -> Findings:
    """D4 per B ≥ 3: the bridge mass (the model's mass where the true density is negligible) at B is
    at most ``BRIDGE_SHARE`` of B = 0's, by the interval over seeds of the log of their ratio
    (main).

    A model's bridge mass is known between the mass on its resolved grid cells and that plus all the
    mass the grid does not account for (``at most``; see
    :class:`~flowcore.studies.deboer2020.truths.GridMass`). The unit holds if even the largest ratio
    (B's upper bound over B = 0's lower bound) has its interval below log ``BRIDGE_SHARE``, fails if
    even the smallest ratio has its interval above it, and is not distinguishable otherwise. A model
    counts only where the resolved grid holds ≥ ``GRID_HOLDS`` of its mass. Premises: B = 0's mass
    was measured (else the claim is not testable here) and, per B, at least two seeds pair with
    B = 0."""
    m = moons.copy()
    low, high, grid = (
        m[c].astype(float) for c in ("mass where p < 1e-3", "at most", "mass on the grid")
    )
    measured = (grid >= GRID_HOLDS) & (low > 0)
    at_zero = m["B"] == 0
    # the largest ratio: B's upper bound over B = 0's lower bound; the smallest: the other way round
    m["log largest"] = np.log(low.where(at_zero, high).where(measured))
    m["log smallest"] = np.log(high.where(at_zero, low).where(measured))
    largest, smallest = (
        paired_gains(m, c).query("B >= 3").reset_index(drop=True)
        for c in ("log largest", "log smallest")
    )
    share = float(np.log(BRIDGE_SHARE))
    units, paired, parts = {}, {}, []
    for big, small in zip(largest.to_dict("records"), smallest.to_dict("records")):
        unit = f"B={big['B']}"
        holds, fails = (
            beyond(big["CI low"], big["CI high"], share, "below"),
            beyond(small["CI low"], small["CI high"], share, "below"),
        )
        units[unit] = True if holds is True else (False if fails is False else None)
        paired[unit] = bool(big["seeds"] >= 2)

        def ratio(r):
            return (
                f"×{np.exp(r['gain']):.2f} [{np.exp(r['CI low']):.2f}, {np.exp(r['CI high']):.2f}]"
            )

        parts.append(f"{unit}: {ratio(small)} to {ratio(big)} ({int(big['seeds'])} seeds)")
    means = m[measured].groupby("B")["mass where p < 1e-3"].mean()
    left = int((~measured).sum())
    main = (
        f"B ≥ 3 puts ≤ {BRIDGE_SHARE} × B = 0's mass on the bridge ({CONFIDENCE:.0%} interval "
        "over seeds of the ratio)"
    )
    subs = [
        SubCheck(
            "B = 0's bridge mass was measured",
            "premise",
            {"all": bool((measured & at_zero).any())},
            f"measured on {int(measured.sum())} of {len(m)} models (the resolved grid holds ≥ "
            f"{GRID_HOLDS} of the mass)",
            unmet="B = 0's bridge mass was not measured",
        ),
        SubCheck(
            "at least two seeds pair with B = 0",
            "premise",
            paired or {"no B ≥ 3": False},
            ", ".join(
                f"{u}: {int(r['seeds'])}" for u, r in zip(paired, largest.to_dict("records"))
            ),
            gates=main,
        ),
        SubCheck(
            main,
            "main",
            units or {"no B ≥ 3 measured": False},
            "ratio to B = 0, smallest to largest: " + "; ".join(parts),
            quote=QUOTES["D4"],
        ),
    ]
    headline = (
        "mean mass "
        + ", ".join(f"B={int(b)}: {v:.3f}" for b, v in means.items())
        + (f"; ratio to B = 0 {'; '.join(parts)}" if parts else "")
        + (f"; {left} models not measured" if left else "")
    )
    return Findings(subs, headline=headline if len(means) else "no model measured")


def d5(images: pd.DataFrame) -> Findings:
    """D5 per B > 0: no predictable gain on images: the interval over seeds of LL(B) − LL(0) lies
    below ``GAIN_PER_DIM`` × the data's dimension (main); the trend of the mean over B (Spearman ρ)
    is reported beside it. A difference of log-likelihoods on one test set does not depend on the
    standardisation (its log|det| is the same for every B), so the size is one in nats per image of
    the pixels too (``GAIN_PER_DIM`` / log 2 bits per dimension).

    ``images``: the rows of :func:`~flowcore.studies.deboer2020.experiments.mnist_table` (Table 4
    on MNIST) or :func:`~flowcore.studies.deboer2020.experiments.digits_table` (the 8×8 digits),
    one per B and seed, ``D`` the data's dimension.

    Example:
        >>> runs = pd.DataFrame({"B": [0, 0, 0, 2, 2, 2], "seed": [0, 1, 2] * 2, "D": 49,
        ...                      "mean log p̂": [10.0, 11.0, 12.0, 10.2, 11.1, 12.3]})
        >>> assess("D5", d5(runs)).verdict.value  # a gain of 0.2 nats, below 0.025 × 49 = 1.2
        'reproduced'
    """
    dims = images["D"].unique()
    if len(dims) != 1:
        raise ValueError(f"images must hold one data dimension D, got {list(dims)}")
    size = GAIN_PER_DIM * float(dims[0])
    gains = paired_gains(images, _LL)
    units = {
        f"B={r['B']}": beyond(r["CI low"], r["CI high"], size, "below")
        for r in gains.to_dict("records")
    }
    means = images[np.isfinite(images[_LL])].groupby("B")[_LL].mean()
    rho = spearmanr(means.index, means.to_numpy()).statistic if len(means) > 2 else float("nan")
    detail = "; ".join(f"B={r['B']}: {_interval(r, 2)}" for r in gains.to_dict("records"))
    name = (
        f"LL(B) − LL(0) < {size:.2f} nats per image ({GAIN_PER_DIM} per dimension; "
        f"{CONFIDENCE:.0%} interval over seeds)"
    )
    trend = f"; ρ(B, mean over seeds) = {rho:+.2f}" if rho == rho else ""
    sub = SubCheck(name, "main", units or {"no B > 0": False}, detail + trend, quote=QUOTES["D5"])
    return Findings([sub], headline=f"gain over B = 0: {detail or 'none measured'}{trend}")


def d6(summary: pd.DataFrame) -> Findings:
    """D6 per (ψ, D, B) cell with a thesis number: the thesis's value is at most the truth's E log p
    (a correct model on fresh data cannot beat it; main)."""
    rows = summary.dropna(subset=["thesis"])
    units = {
        f"ψ={r['ψ']}, D={r['D']}, B={r['B']}": bool(r["thesis"] <= r["truth E log p"] + 0.05)
        for r in rows.to_dict("records")
    }
    excess = (rows["thesis"] - rows["truth E log p"]).max() if len(rows) else float("nan")
    return Findings(
        [
            SubCheck(
                "the thesis's value ≤ the truth's E log p (+0.05)",
                "main",
                units or {"no cells": False},
                f"largest excess {excess:+.2f} nats",
            )
        ],
        headline=(
            f"{sum(units.values())}/{len(units)} cells attainable; largest excess "
            f"{excess:+.2f} nats"
        ),
    )


def d7(runs: pd.DataFrame) -> Findings:
    """D7 per (ψ > 1, D): the interval over seeds of the energy distance of samples to the truth (on
    the truth's CDF scale, see :func:`~flowcore.studies.deboer2020.experiments.table2`) at the
    largest B minus at B = 0 lies below 0 (main)."""
    gains = paired_gains(runs[runs["ψ"] > 1], "energy distance (CDF scale)", by=["ψ", "D"])
    last = gains.loc[gains.groupby(["ψ", "D"])["B"].idxmax()] if len(gains) else gains
    units = {
        _unit(r, "ψ", "D"): beyond(r["CI low"], r["CI high"], 0.0, "below")
        for r in last.to_dict("records")
    }
    detail = "; ".join(
        f"ψ={r['ψ']}, D={r['D']}, B {r['reference B']} → {r['B']}: {_interval(r, 4)}"
        for r in last.to_dict("records")
    )
    sub = SubCheck(
        "energy distance to the truth (CDF scale) falls from B = 0 to the largest B "
        f"({CONFIDENCE:.0%} interval over seeds)",
        "main",
        units or {"no ψ > 1": False},
        detail,
        quote=QUOTES["D7"],
    )
    return Findings(
        [sub], headline=f"{sum(v is True for v in units.values())}/{len(units)} cells fall"
    )


def assess(claim: str, found: Findings) -> ClaimCheck:
    """The verdict on one claim (kind ``"effect"``)."""
    return judge_effect(claim, found, CLAIMS[claim])
