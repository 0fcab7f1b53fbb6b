r"""Designs for sweeps over several factors at once, and what a binary outcome says about each
factor.

One factor at a time cannot see interactions and never leaves the base configuration; a full
factorial over eight factors is hundreds of runs. :func:`space_filling` takes a middle road for
categorical factors: every factor's levels appear equally often (balanced), and among many random
balanced designs it keeps the one whose closest pair of points differs in the most factors
(maximin Hamming distance), so the points spread over the whole space.

:func:`main_effects` then reads a 0/1 outcome (a claim holds) per level of each factor: the share of
runs at that level with a Wilson 95% interval (:func:`wilson_interval`). In a balanced design each
level sees the other factors' levels about equally often, so the shares are main effects averaged
over the rest; with few points they are still partly confounded, which the intervals do not show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from flowcore.validation import check_int, check_probability

__all__ = ["space_filling", "wilson_interval", "main_effects"]


def space_filling(
    factors: Mapping[str, Sequence[Any]], n_points: int, seed: int = 0, candidates: int = 256
) -> pd.DataFrame:
    """A balanced, maximin design: ``n_points`` rows, one column per factor.

    Args:
        factors: ``{name: levels}``; every factor needs at least two levels.
        n_points: Design points, at least the largest number of levels (so each level appears).
        seed: Seed of the random balanced candidates.
        candidates: How many candidates to draw; the one with the largest smallest pairwise
            Hamming distance wins (ties: the first drawn).

    Example:
        >>> d = space_filling({"a": [0, 1], "b": ["x", "y", "z"]}, n_points=6, seed=1)
        >>> sorted(d["a"].value_counts().tolist()), sorted(d["b"].value_counts().tolist())
        ([3, 3], [2, 2, 2])
        >>> space_filling({"a": [0]}, n_points=2)
        Traceback (most recent call last):
        ...
        ValueError: factor 'a' needs at least two levels, got [0]
    """
    for name, levels in factors.items():
        if isinstance(levels, str) or len(levels) < 2:
            raise ValueError(
                f"factor {name!r} needs at least two levels, got "
                f"{list(levels) if not isinstance(levels, str) else levels!r}"
            )
    widest = max(len(levels) for levels in factors.values())
    n_points = check_int("n_points", n_points, minimum=widest)
    candidates = check_int("candidates", candidates, minimum=1)
    rng = np.random.default_rng(seed)
    names = list(factors)
    best, best_score = None, -1
    for _ in range(candidates):
        codes = np.stack(
            [rng.permutation(np.resize(np.arange(len(factors[n])), n_points)) for n in names],
            axis=1,
        )
        distances = (codes[:, None, :] != codes[None, :, :]).sum(-1)
        score = distances[np.triu_indices(n_points, 1)].min() if n_points > 1 else 0
        if score > best_score:
            best, best_score = codes, score
    return pd.DataFrame({n: [factors[n][c] for c in best[:, j]] for j, n in enumerate(names)})


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (sensible at 0/n and n/n, unlike ±1.96
    SE).

    Example:
        >>> ([round(x, 3) for x in wilson_interval(0, 10)],
        ...  [round(x, 3) for x in wilson_interval(5, 10)])
        ([0.0, 0.278], [0.237, 0.763])
    """
    confidence = check_probability("confidence", confidence)
    if trials <= 0:
        return float("nan"), float("nan")
    z = norm.isf((1 - confidence) / 2)
    p = successes / trials
    centre = (p + z**2 / (2 * trials)) / (1 + z**2 / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / (1 + z**2 / trials)
    # The interval always contains p (rounding can put an end a hair on the wrong side at 0/n and
    # n/n).
    return float(max(0.0, min(p, centre - half))), float(min(1.0, max(p, centre + half)))


def main_effects(
    runs: pd.DataFrame,
    factors: Sequence[str],
    outcome: str,
    by: Sequence[str] = (),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per group of ``by`` (e.g. a claim), factor and level: runs, how many have ``outcome`` true,
    the share, its Wilson interval, and the factor's *spread* (largest minus smallest share over its
    levels, a rough rank of how much it matters).

    Example:
        >>> runs = pd.DataFrame({"f": ["a", "a", "b", "b"], "ok": [True, True, False, True]})
        >>> main_effects(runs, ["f"], "ok")[["level", "share", "spread"]].values.tolist()
        [['a', 1.0, 0.5], ['b', 0.5, 0.5]]
    """
    rows = []
    groups = runs.groupby(list(by), sort=False) if by else [((), runs)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        for factor in factors:
            for level, at in group.groupby(factor, sort=False):
                k, n = int(at[outcome].sum()), len(at)
                low, high = wilson_interval(k, n, confidence)
                rows.append(
                    {
                        **dict(zip(by, key)),
                        "factor": factor,
                        "level": level,
                        "runs": n,
                        "holds": k,
                        "share": k / n,
                        "CI low": low,
                        "CI high": high,
                    }
                )
    out = pd.DataFrame(rows)
    out["spread"] = out.groupby([*by, "factor"], sort=False)["share"].transform(
        lambda s: s.max() - s.min()
    )
    return out
