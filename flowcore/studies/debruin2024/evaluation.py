r"""Evaluating a trained flow on whole families of test distributions (thesis §5–§8).

For one dimension :math:`D` and one family, every member :math:`q_\lambda(s, t)` gets a test set
:math:`\mathcal Q^N(q_\lambda)` from its own seeded stream. All test sets of the family are streamed
through the three log-densities in one pass of fixed-size chunks (the chunks run across member
boundaries, so every call of the flow sees ``chunk_size`` rows): the truth :math:`\log p`, the flow
:math:`\log p_\theta`, and the two nulls that stand in for it in every claim check: the
maximum-likelihood Gaussian :math:`\log\hat p` of the training set (the best *linear* flow: what
finite data alone gives) and the flow at its initialisation :math:`\log p_{\theta_0}` (what a flow
that has learned nothing gives). The reference set :math:`\mathcal Q^N(p)` is the baseline's first
test set; on it each density's fit :math:`\mathrm{KL}^*(p\|\cdot)` is measured (paired with
:math:`\log p`), which every row carries. Each member then becomes one row of a tidy table, and four
KDE curves for the figures. Both are cached per (D, family), so chapters share them.

The statistics run per score over all members at once: the reference scores are sorted once per
family and each member's scores once (AUROC, TNR and the bounds come from the sorted arrays, by
:func:`~flowcore.estimators.auroc_sorted`, :func:`~flowcore.estimators.true_negative_rate_sorted`
and :func:`~flowcore.estimators.fit_bounds_sorted`), each sample's KDE is binned once
(:func:`~flowcore.estimators.binned_kdes`) and serves every overlap and curve it enters, and means
and variances are row reductions. The numbers are bitwise those of the estimators applied one
member at a time (``tests/unit/debruin2024/test_batched_statistics.py`` keeps that code and
compares).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from flowcore.cache import NotCached, cache_only, cached
from flowcore.estimators import (
    BinnedKDE,
    auroc_sorted,
    binned_kdes,
    fit_bounds_sorted,
    log_likelihoods,
    mean_estimate,
    overlap_kdes,
    true_negative_rate_sorted,
)
from flowcore.gaussians import Gaussian
from flowcore.rng import stream
from flowcore.studies.debruin2024 import columns as col
from flowcore.studies.debruin2024.calibration import Constants, constants
from flowcore.studies.debruin2024.config import ThesisConfig
from flowcore.studies.debruin2024.families import FAMILIES, family
from flowcore.studies.debruin2024.training import TrainedFlow, trained_flow
from flowcore.train import show_progress
from flowcore.validation import check_choice, check_probability

__all__ = [
    "SCORES",
    "CURVES",
    "rechunk",
    "FamilyResults",
    "evaluate_family",
    "family_table",
    "family_statistics",
    "null_view",
    "truth_view",
    "Results",
    "results",
    "cached_results",
]

#: The log-densities every test set is scored with: the truth, the flow, and the two nulls.
SCORES = ("truth", "model", "gaussian", "untrained")
#: The scores that stand in the model's place, and the suffix of their columns ("" for the model).
_MODEL_LIKE = {"model": "", **{score: col.SUFFIX[null] for null, score in col.NULL_SCORES.items()}}
#: The four KDE curves kept per member: each score over Q(q) and over the reference Q(p).
CURVES = ("truth q", "model q", "truth p", "model p")


def rechunk(chunks: Iterable[torch.Tensor], size: int) -> Iterator[torch.Tensor]:
    """Re-cut a stream of row blocks into blocks of exactly ``size`` rows (the last may be
    shorter)."""
    pending: list[torch.Tensor] = []
    count = 0
    for chunk in chunks:
        pending.append(chunk)
        count += len(chunk)
        while count >= size:
            block = torch.cat(pending) if len(pending) > 1 else pending[0]
            yield block[:size]
            rest = block[size:]
            pending, count = ([rest] if len(rest) else []), len(rest)
    if count:
        yield torch.cat(pending) if len(pending) > 1 else pending[0]


@dataclass
class _ScoreStats:
    """The per-member numbers of one score, one entry per member (member order)."""

    mean: np.ndarray
    var: np.ndarray
    se: np.ndarray  # standard error of the mean, as mean_estimate's
    tnr: np.ndarray
    auroc: np.ndarray
    kdes: list[BinnedKDE]


#: Values per block of members in the batched statistics (16 MB of float64 temporaries), so a
#: family's peak memory does not grow with its number of members.
_BLOCK = 1 << 21


def _row_blocks(values: np.ndarray) -> list[slice]:
    """Consecutive blocks of rows of ``values`` (one member per row) of about ``_BLOCK`` values."""
    rows = max(1, _BLOCK // max(values.shape[1], 1))
    return [slice(start, start + rows) for start in range(0, len(values), rows)]


def _rows_checked(values: np.ndarray) -> np.ndarray:
    """``values`` (one sample per row), raising :func:`~flowcore.estimators.mean_estimate`'s
    ``ValueError`` for the first row it would reject."""
    n = values.shape[1]
    if n < 2:
        raise ValueError(f"values needs at least 2 values, got {n}")
    bad = np.count_nonzero(~np.isfinite(values), axis=1)
    if bad.any():
        raise ValueError(f"values contains NaN or inf ({bad[np.flatnonzero(bad)[0]]} of {n})")
    return values


def _row_estimates(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~flowcore.estimators.mean_estimate` of each row of ``a − b`` (means, standard
    errors), bitwise: a row reduction of a C-ordered array sums each row as the 1-D reduction
    does. In blocks of rows."""
    means, errors = [], []
    for rows in _row_blocks(a):
        values = _rows_checked(a[rows] - b[rows])
        means.append(values.mean(axis=1))
        errors.append(values.std(axis=1, ddof=1) / math.sqrt(values.shape[1]))
    return np.concatenate(means), np.concatenate(errors)


def _score_stats(values: np.ndarray, ref_sorted: np.ndarray, bounds) -> _ScoreStats:
    """Everything one score contributes per member (``values``: one member per row), in blocks
    of rows: each member's scores are sorted once, for its TNR and AUROC."""
    parts = []
    for rows in _row_blocks(values):
        block = values[rows]
        ordered = np.sort(block, axis=1)
        parts.append(
            (
                block.mean(axis=1),
                block.var(axis=1, ddof=1),
                true_negative_rate_sorted(bounds, ordered),
                auroc_sorted(ref_sorted, ordered),
            )
        )
    mean, var, tnr, auc = (np.concatenate(column) for column in zip(*parts))
    se = np.sqrt(var) / math.sqrt(values.shape[1])  # np.std is the square root of np.var
    return _ScoreStats(mean, var, se, tnr, auc, binned_kdes(values))


def _member_row(
    i: int,
    q: Gaussian,
    p: Gaussian,
    stats: dict[str, _ScoreStats],
    ref_mean: dict[str, np.floating],
    ref_kdes: dict[str, BinnedKDE],
    paired: tuple[np.ndarray, np.ndarray],
    gaps: dict[str, tuple[np.ndarray, np.ndarray]],
    fits: dict,
) -> dict:
    """The numbers of §5–§8 for member ``i`` (q), in nats (names in
    :mod:`~flowcore.studies.debruin2024.columns`), from the family's per-score statistics.

    ``paired`` holds E_q[log q − log p] per member (means, standard errors), ``gaps`` the same of
    log p − score for each model-like score, ``fits`` each model-like score's KL*(p‖·) on Q(p). The
    arithmetic on them is that of the estimators applied to the member alone.
    """
    h_q, h_qp, kl_qp = q.entropy(), q.cross_entropy(p), q.kl(p)
    row: dict = {col.H_Q: h_q, col.H_QP: h_qp, col.KL_QP: kl_qp}
    for score in SCORES:
        # cross_entropy_mc: minus the mean, with its standard error.
        value, stderr = -float(stats[score].mean[i]), float(stats[score].se[i])
        row[col.CROSS_ENTROPY[score]], row[col.se(col.CROSS_ENTROPY[score])] = value, stderr
        row[col.KL_STAR[score]] = value - h_q
    row[col.Z_H_STAR_QP] = (row[col.H_STAR_QP] - h_qp) / row[col.se(col.H_STAR_QP)]
    row[col.KL_PAIRED_QP], row[col.se(col.KL_PAIRED_QP)] = float(paired[0][i]), float(paired[1][i])
    truth = stats["truth"]
    row[col.VAR_TRUTH] = float(truth.var[i])
    row[col.OVL_TRUTH] = overlap_kdes(truth.kdes[i], ref_kdes["truth"])
    row[col.MEAN_SHIFT_TRUTH] = float(truth.mean[i] - ref_mean["truth"])
    for score in SCORES:
        row[col.TNR[score]] = float(stats[score].tnr[i])
        row[col.AUROC[score]] = float(stats[score].auroc[i])
    # The model's numbers, and the same for each null under its suffix (see null_view).
    for score, suffix in _MODEL_LIKE.items():
        this = stats[score]
        gap = gaps[score]  # = H*(q,·) − H*(q,p), paired
        row[col.GAP + suffix], row[col.SE_GAP + suffix] = float(gap[0][i]), float(gap[1][i])
        row[col.DELTA_HC + suffix] = abs(row[col.H_STAR_QP] - row[col.CROSS_ENTROPY[score]])
        row[col.VAR_MODEL + suffix] = float(this.var[i])
        row[col.MEAN_SHIFT_MODEL + suffix] = float(this.mean[i] - ref_mean[score])
        row[col.OVL_MODEL + suffix] = overlap_kdes(this.kdes[i], ref_kdes[score])
        row[col.OVL_MODEL_VS_TRUTH + suffix] = overlap_kdes(this.kdes[i], truth.kdes[i])
        row[col.KL_P_MODEL_PAIRED + suffix], row[col.se(col.KL_P_MODEL_PAIRED) + suffix] = (
            fits[score].value,
            fits[score].stderr,
        )
    return row


def truth_view(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the true density p in the model's place: a claim check of
    :mod:`~flowcore.studies.debruin2024.claims` that the truth passes says nothing about the model.

    The model's columns become the truth's (its gap to itself and its KL*(p‖p) are exactly 0 with no
    standard error, its KDEs over Q(q) coincide with the truth's: overlap 1).
    """
    view = table.copy()
    for quantity in (col.CROSS_ENTROPY, col.KL_STAR, col.TNR, col.AUROC):
        view[quantity["model"]] = table[quantity["truth"]]
    view[col.se(col.H_STAR_Q_MODEL)] = table[col.se(col.H_STAR_QP)]
    view[col.GAP], view[col.SE_GAP], view[col.DELTA_HC] = 0.0, 0.0, 0.0
    view[col.KL_P_MODEL_PAIRED], view[col.se(col.KL_P_MODEL_PAIRED)] = 0.0, 0.0
    view[col.VAR_MODEL] = table[col.VAR_TRUTH]
    view[col.MEAN_SHIFT_MODEL] = table[col.MEAN_SHIFT_TRUTH]
    view[col.OVL_MODEL], view[col.OVL_MODEL_VS_TRUTH] = table[col.OVL_TRUTH], 1.0
    return _drop_partners(view)


def null_view(table: pd.DataFrame, null: str) -> pd.DataFrame:
    """``table`` with ``null`` in the model's place: ``"truth"`` (:func:`truth_view`), ``"p̂"`` (the
    maximum-likelihood Gaussian of the training set) or ``"untrained"`` (the flow at its
    initialisation), so every claim check of :mod:`~flowcore.studies.debruin2024.claims` runs on it
    exactly as on the model.

    Example:
        >>> row = {col.OVL_MODEL: 0.9, col.of(col.OVL_MODEL, "p̂"): 0.2,
        ...        col.of(col.OVL_MODEL, "untrained"): 0.5}
        >>> null_view(pd.DataFrame([row]), "untrained")[col.OVL_MODEL].tolist()
        [0.5]
    """
    if null == "truth":
        return truth_view(table)
    score = col.NULL_SCORES.get(null)
    if score is None:
        raise ValueError(f"null must be 'truth' or one of {tuple(col.NULL_SCORES)}, got {null!r}")
    view = table.copy()
    for quantity in (col.CROSS_ENTROPY, col.KL_STAR, col.TNR, col.AUROC):
        if quantity[score] in table:
            view[quantity["model"]] = table[quantity[score]]
    if col.se(col.CROSS_ENTROPY[score]) in table:
        view[col.se(col.H_STAR_Q_MODEL)] = table[col.se(col.CROSS_ENTROPY[score])]
    for column in table.columns:
        if column.endswith(col.SUFFIX[null]):
            view[column.removesuffix(col.SUFFIX[null])] = table[column]
    return _drop_partners(view)


def _drop_partners(view: pd.DataFrame) -> pd.DataFrame:
    return view.drop(
        columns=[
            c for c in view.columns if any(c.endswith(suffix) for suffix in col.SUFFIX.values())
        ]
    )


def _check_finite(
    ref: dict[str, np.ndarray],
    scores: dict[str, np.ndarray],
    n: int,
    keys: list,
    name: str,
    dim: int,
) -> None:
    """Raise ``FloatingPointError`` naming where a log-density is not finite (an unbounded scale map
    can overflow far from the training data); no table is built on such scores."""
    for label, values in (("Q(p)", ref), (name, scores)):
        for score, v in values.items():
            bad = ~np.isfinite(v)
            if bad.any():
                where = (
                    ""
                    if label == "Q(p)"
                    else f", first at (s, t) = {keys[int(np.flatnonzero(bad)[0]) // n]}"
                )
                raise FloatingPointError(
                    f"log {'pθ' if score == 'model' else score} is not finite "
                    f"on {int(bad.sum())} of {v.size} samples of {label} at D = {dim}{where}"
                )


def family_table(
    name: str,
    p: Gaussian,
    members: dict,
    scores: dict[str, np.ndarray],
    log_q: np.ndarray,
    ref: dict[str, np.ndarray],
    tpr: float,
) -> pd.DataFrame:
    """The tidy table of one family at one D from its scores: one row per member ``(s, t) → q`` (in
    order), with ``scores[k]`` and ``log_q`` holding the members' samples one after another (equally
    many each) and ``ref[k]`` the scores on Q(p), for every ``k`` of :data:`SCORES`. The bounds of
    the detectors, each density's fit on Q(p) and every column of
    :mod:`~flowcore.studies.debruin2024.columns` are computed here, by the estimators of
    :mod:`flowcore.estimators` (their batched, sorted forms: see the module docstring).
    """
    return family_statistics(name, p, members, scores, log_q, ref, tpr)[0]


def family_statistics(
    name: str,
    p: Gaussian,
    members: dict,
    scores: dict[str, np.ndarray],
    log_q: np.ndarray,
    ref: dict[str, np.ndarray],
    tpr: float,
    n_grid: int | None = None,
) -> tuple[pd.DataFrame, torch.Tensor | None]:
    """:func:`family_table`, and with ``n_grid`` the members' KDE curves too: shape
    ``(members, 4, 2, n_grid)``, for each of :data:`CURVES` its own grid and the KDE on it
    (float32), from the same KDEs as the table's overlaps.

    Per score, the reference scores are sorted once (the detector's bounds are their quantiles),
    each member's scores once (AUROC against the sorted reference, TNR by two binary searches), and
    every sample's KDE is binned once; the rows then only combine these numbers.
    """
    missing = [k for k in SCORES if k not in scores or k not in ref]
    if missing:
        raise ValueError(f"scores and ref must hold every score of {SCORES}; missing {missing}")
    n, rest = divmod(len(log_q), len(members))
    if rest or any(len(v) != len(log_q) for v in scores.values()):
        raise ValueError(
            f"every score must hold {len(members)} members' samples, equally many each, "
            f"like log_q ({len(log_q)})"
        )
    fits = {
        k: mean_estimate(ref["truth"] - ref[k]) for k in _MODEL_LIKE
    }  # KL*(p‖·), paired on Q(p)
    tpr = check_probability("tpr", tpr)
    ref = {k: np.asarray(ref[k], dtype=np.float64).ravel() for k in SCORES}
    ref_sorted = {k: np.sort(ref[k]) for k in SCORES}  # once per family
    bounds = {k: fit_bounds_sorted(ref_sorted[k], tpr) for k in SCORES}
    rows_of = {k: np.asarray(scores[k], dtype=np.float64).reshape(len(members), n) for k in SCORES}
    for i in range(len(members)):  # mean_estimate's check, member by member as the rows go
        for k in SCORES:
            _rows_checked(rows_of[k][i : i + 1])
    stats = {k: _score_stats(rows_of[k], ref_sorted[k], bounds[k]) for k in SCORES}
    del ref_sorted
    ref_mean = {k: ref[k].mean() for k in SCORES}
    ref_kdes = {k: binned_kdes(ref[k])[0] for k in SCORES}
    truth = rows_of["truth"]
    paired = _row_estimates(np.asarray(log_q, dtype=np.float64).reshape(truth.shape), truth)
    gaps = {k: _row_estimates(truth, rows_of[k]) for k in _MODEL_LIKE}
    table = pd.DataFrame(
        [
            {
                "D": p.dim,
                "family": name,
                "s": s,
                "t": t,
                **_member_row(i, q, p, stats, ref_mean, ref_kdes, paired, gaps, fits),
            }
            for i, ((s, t), q) in enumerate(members.items())
        ]
    )
    if n_grid is None:
        return table, None
    return table, _curves(stats, ref_kdes, len(members), n_grid)


def _curves(
    stats: dict[str, _ScoreStats], ref_kdes: dict[str, BinnedKDE], count: int, n_grid: int
) -> torch.Tensor:
    """Shape ``(count, 4, 2, n_grid)``: per member, for each of :data:`CURVES`, its own grid and
    the KDE on it; the two curves over Q(p) are the same for every member and computed once."""

    def curve(estimate: BinnedKDE) -> np.ndarray:
        grid = estimate.grid(n_grid)
        return np.stack([grid, estimate(grid)])

    out = np.empty((count, len(CURVES), 2, n_grid))
    out[:, 2], out[:, 3] = curve(ref_kdes["truth"]), curve(ref_kdes["model"])
    for i in range(count):
        out[i, 0], out[i, 1] = curve(stats["truth"].kdes[i]), curve(stats["model"].kdes[i])
    return torch.tensor(out, dtype=torch.float32)


@dataclass
class FamilyResults:
    """One family at one D: the tidy table (one row per (s, t)) and the KDE curves (member
    order)."""

    table: pd.DataFrame
    curves: torch.Tensor
    seconds: float
    from_cache: bool


def evaluate_family(
    trained: TrainedFlow,
    config: ThesisConfig,
    name: str,
    consts: Constants,
    n_grid: int = 256,
    progress: bool | None = None,
    label: str | dict = "",
) -> FamilyResults:
    """Score every member of family ``name`` at ``trained.dim`` (cached; see the module docstring).
    ``label`` names a flow trained differently from ``config`` (e.g. with another study's loss
    term, or another density model in the RealNVP's place: its ``key``); it joins the cache key."""
    name = check_choice("family", name, FAMILIES)
    dim, p, n = trained.dim, trained.p, config.n_test
    spec = {
        "dim": dim,
        "family": name,
        "recipe": config.recipe,
        "flow": config.flow,
        "train": config.train_key,
        "n_test": n,
        "scales": config.scales,
        "shifts": config.shifts,
        "tpr": config.tpr,
        "perturbation": consts.perturbation if name == "perturbed" else None,
        "outlier": consts.outlier if name == "outlier" else None,
        "n_grid": n_grid,
    }
    if label:
        spec["label"] = label

    def compute() -> dict:
        start = time.perf_counter()
        device = config.torch_device
        members = family(
            name,
            p,
            config.scales,
            config.shifts,
            seed=config.seed,
            recipe=config.recipe,
            perturbation=consts.perturbation,
            outlier=consts.outlier,
        )
        show = show_progress() if progress is None else progress

        log_q: list[np.ndarray] = []

        def samples() -> Iterator[torch.Tensor]:
            for (s, t), q in tqdm(
                members.items(), desc=f"D={dim} {name}", disable=not show, leave=False
            ):
                for chunk in q.iter_samples(
                    n, stream(config.seed, "test", dim, name, s, t), config.chunk_size
                ):
                    log_q.append(q.log_prob(chunk).numpy())
                    yield chunk

        def score(flows: dict[str, torch.nn.Module], dtype: torch.dtype) -> tuple[dict, dict]:
            log_q.clear()
            densities = {
                "truth": p.log_prob,
                "model": flows["model"],
                "gaussian": trained.p_hat.log_prob,
                "untrained": flows["untrained"],
            }
            ref_samples = p.iter_samples(
                n, stream(config.seed, "test", dim, "p", 0), config.chunk_size
            )
            ref = log_likelihoods(ref_samples, densities, device=device, dtype=dtype)
            return ref, log_likelihoods(
                rechunk(samples(), config.chunk_size), densities, device=device, dtype=dtype
            )

        flows = {"model": trained.flow, "untrained": trained.untrained}
        ref, scores = score(flows, torch.float32)
        precision = "float32"
        if not all(np.isfinite(v[k]).all() for v in (ref, scores) for k in flows):
            # An unbounded scale map can overflow float32 far from the data: rescore in float64
            # before giving up.
            ref, scores = score(
                {k: copy.deepcopy(f).double() for k, f in flows.items()}, torch.float64
            )
            precision = "float64 (float32 overflowed)"
        _check_finite(ref, scores, n, list(members), name, dim)
        frame, curves = family_statistics(
            name, p, members, scores, np.concatenate(log_q), ref, config.tpr, n_grid
        )
        return {
            "columns": list(frame.columns),
            "values": {c: (frame[c].tolist()) for c in frame.columns},
            "curves": curves,
            "seconds": time.perf_counter() - start,
            "precision": precision,
        }

    def valid(entry) -> bool:
        return (
            isinstance(entry, dict)
            and {"columns", "values", "curves", "seconds"} <= set(entry)
            and col.of(col.KL_P_MODEL_PAIRED, "untrained") in entry["columns"]
            and col.KL_PAIRED_QP in entry["columns"]
            and len(entry["curves"]) == len(config.scales) * len(config.shifts)
        )

    entry, from_cache = cached("family", spec, compute, validate=valid)
    table = pd.DataFrame({c: entry["values"][c] for c in entry["columns"]})
    return FamilyResults(table, entry["curves"], float(entry["seconds"]), from_cache)


@dataclass
class Results:
    """Every evaluated (D, family): one tidy table over all of them, and the KDE curves by key.

    Attributes:
        table: One row per (D, family, s, t).
        curves: ``{(D, family, s, t): {curve name: (grid, density)}}`` for :data:`CURVES`.
        trained: The trained flow per D.
        constants: The α, β and outlier recipe used.
        timings: One row per (D, family): seconds and whether it came from the cache.
    """

    table: pd.DataFrame
    curves: dict
    trained: dict[int, TrainedFlow]
    constants: Constants
    timings: pd.DataFrame

    def member(self, dim: int, family_name: str, s: float, t: float) -> pd.Series:
        """The row of one member."""
        t_ = self.table
        match = t_[
            (t_["D"] == dim)
            & (t_["family"] == family_name)
            & np.isclose(t_["s"], s)
            & np.isclose(t_["t"], t)
        ]
        if len(match) != 1:
            raise KeyError(
                f"no member D={dim}, family={family_name!r}, s={s}, t={t} in these results"
            )
        return match.iloc[0]


def results(
    config: ThesisConfig,
    families: Iterable[str] | None = None,
    progress: bool | None = None,
    model=None,
) -> Results:
    """Train (or load) the flow for every D of ``config`` and evaluate ``families`` (default:
    ``config.families``).

    ``model`` puts another density model in the RealNVP's place: an object with ``build(dim)`` and
    ``key`` (trained by :func:`~flowcore.studies.debruin2024.training.trained_flow`), or with
    ``trained_flow(dim, config)`` returning the
    :class:`~flowcore.studies.debruin2024.training.TrainedFlow` itself (a model trained
    elsewhere, :class:`flowcore.battery.Trained`). Its ``key`` joins every cache key."""
    names = tuple(config.families if families is None else families)
    for name in names:
        check_choice("families", name, FAMILIES)
    consts = constants(config)
    tables, curves, trained_flows, timing_rows = [], {}, {}, []
    for dim in config.dims:
        if model is None or not hasattr(model, "trained_flow"):
            trained = trained_flow(dim, config, progress=progress, model=model)
        else:
            trained = model.trained_flow(dim, config)
        trained_flows[dim] = trained
        label = "" if model is None else model.key
        for name in names:
            fam = evaluate_family(trained, config, name, consts, progress=progress, label=label)
            tables.append(fam.table)
            for i, row in enumerate(fam.table.itertuples(index=False)):
                curves[(dim, name, row.s, row.t)] = {
                    c: (fam.curves[i, j, 0].numpy(), fam.curves[i, j, 1].numpy())
                    for j, c in enumerate(CURVES)
                }
            timing_rows.append(
                {
                    "D": dim,
                    "family": name,
                    "members": len(fam.table),
                    "seconds": fam.seconds,
                    "from cache": fam.from_cache,
                }
            )
    return Results(
        pd.concat(tables, ignore_index=True),
        curves,
        trained_flows,
        consts,
        pd.DataFrame(timing_rows),
    )


def cached_results(config: ThesisConfig, families: Iterable[str] | None = None) -> Results | None:
    """:func:`results` from the cache alone, or ``None`` when any flow, calibration or family table
    it needs is not cached yet: nothing is trained, calibrated or evaluated (the live explorer uses
    it to say which build to run instead of training for minutes). The cache keys are
    :func:`results`'s own.
    """
    try:
        with cache_only():
            return results(config, families, progress=False)
    except NotCached:
        return None
