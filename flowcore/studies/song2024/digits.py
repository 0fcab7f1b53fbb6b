r"""An offline analogue of Song et al.'s Tables 1–2 on 8×8 digits, with the class-conditional NLL.

The class-conditional model is one image flow per in-distribution class,
:math:`p_\theta(x \mid c)` (the Kirichenko study's flows, :func:`flowcore.flows.image.image_flow`),
trained by the class-conditional NLL :math:`-\log p_\theta(x \mid c)` on that class's digits,
optionally with the KLJ term. It classifies by :math:`\arg\max_c \log p_\theta(x \mid c)` (uniform
class prior) and scores OOD by :math:`\log p_\theta(x) = \log \tfrac1C \sum_c p_\theta(x \mid c)`.
Variants: training outliers (a fraction :math:`r` of each class's training images replaced by
uniform noise images) and a training fraction :math:`p` of each class's images.

**Intervals.** Every model is scored on the same test digits and the same OOD images, so a change
KLJ makes is a *paired* comparison. :func:`paired_bootstrap` resamples the test digits and each OOD
set with replacement, the same indices for every model, and recomputes every metric of every model;
:func:`contrast` turns any weighted sum of metrics across models (KLJ − plain, or a difference of
differences) into a percentile interval over those resamples. The intervals cover the sampling of
the test and OOD images, not the randomness of training (one training seed per model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flowcore import rng
from flowcore.studies.kirichenko2020 import data
from flowcore.studies.kirichenko2020.config import KirichenkoConfig
from flowcore.studies.kirichenko2020.experiments import score_sets, trained_image_flow
from flowcore.studies.song2024.klj import klj_term
from flowcore.validation import check_int, check_probability

__all__ = [
    "VARIANTS",
    "variants",
    "DigitsScores",
    "class_conditional",
    "digits_scores",
    "digits_table",
    "paired_bootstrap",
    "metric_intervals",
    "contrast",
]

#: The columns of :func:`digits_table` that name a model (the rest are its metrics).
_VARIANT_COLUMNS = ("data", "r", "p", "klj_weight")


def variants(klj_weight: float, outlier_fraction: float, fraction: float) -> list[dict]:
    """The models compared: (KLJ off / on) × (clean, with training outliers, a small training
    fraction)."""
    base = [
        ("clean", 0.0, 1.0),
        (f"r = {outlier_fraction:g}", outlier_fraction, 1.0),
        (f"p = {fraction:g}", 0.0, fraction),
    ]
    return [
        {"data": name, "r": r, "p": p, "klj_weight": k}
        for name, r, p in base
        for k in (0.0, klj_weight)
    ]


VARIANTS = variants


@dataclass(frozen=True)
class DigitsScores:
    """What the class-conditional models give per image, the raw material of every metric.

    Attributes:
        variants: One dict per model (:func:`variants`).
        log_px: Per model, set name → :math:`\\log p_\\theta(x)` of each image (``"test"``: the test
            digits; the others: the OOD sets).
        correct: Per model, whether each test digit is classified right.
    """

    variants: tuple[dict, ...]
    log_px: tuple[Mapping[str, np.ndarray], ...]
    correct: tuple[np.ndarray, ...]

    def __post_init__(self):
        if not self.variants or not len(self.variants) == len(self.log_px) == len(self.correct):
            raise ValueError(
                "variants, log_px and correct must hold one entry per model, got "
                f"{len(self.variants)}, {len(self.log_px)}, {len(self.correct)}"
            )
        sizes = {name: len(s) for name, s in self.log_px[0].items()}
        if "test" not in sizes:
            raise ValueError("log_px must hold the test digits under 'test'")
        for scores, correct in zip(self.log_px, self.correct):
            if {name: len(s) for name, s in scores.items()} != sizes or len(correct) != sizes[
                "test"
            ]:
                raise ValueError(
                    "every model must be scored on the same sets of the same sizes, and correct "
                    "must match the test digits"
                )

    @property
    def ood(self) -> list[str]:
        """The OOD sets' names."""
        return [name for name in self.log_px[0] if name != "test"]


def class_conditional(
    kconfig: KirichenkoConfig,
    splits: dict,
    labels: dict,
    r: float,
    p: float,
    klj: float,
    seed: int,
    progress: bool | None = None,
) -> list:
    """One flow per in-distribution class, trained on its (subsampled, contaminated) digits
    (cached)."""
    flows = []
    gen = np.random.default_rng(rng.derived_seed(seed, "song digits", r, p))
    for c in kconfig.in_classes:
        train = splits["train"][labels["train"] == c]
        val = splits["val"][labels["val"] == c]
        keep = max(4, int(round(p * len(train))))
        train = train[gen.permutation(len(train))[:keep]].copy()
        n_out = int(round(r * len(train)))
        if n_out:
            train[:n_out] = gen.integers(0, data.DIGIT_LEVELS, size=(n_out, train.shape[1]))
        terms, name = ([klj_term(klj)], f"klj {klj:g}") if klj > 0 else ((), "")
        run = trained_image_flow(
            kconfig,
            train,
            val,
            name=f"class {c}, r={r:g}, p={p:g}, seed {seed}",
            loss_terms=terms,
            loss_name=name,
            progress=progress,
        )
        flows.append(run.flow.eval())
    return flows


def digits_scores(
    kconfig: KirichenkoConfig,
    klj_weight: float,
    outlier_fraction: float,
    fraction: float,
    progress: bool | None = None,
) -> DigitsScores:
    """Train (or load) every model of :func:`variants` and score the test digits and each OOD set
    (transposed digits stand in for the paper's rotations; test digits plus noise for its noisy
    set)."""
    splits = data.digits_splits(kconfig.in_classes, seed=kconfig.seed)
    labels = data.split_labels(kconfig.in_classes, seed=kconfig.seed)
    ood = {k: v for k, (v, _) in data.ood_sets(splits, seed=kconfig.seed).items()}
    test = splits["test"]
    noise = np.random.default_rng(rng.derived_seed(kconfig.seed, "song noisy")).integers(
        -3, 4, size=test.shape
    )
    ood["transposed"] = test.reshape(-1, 8, 8).transpose(0, 2, 1).reshape(-1, 64)
    ood["noisy digits"] = np.clip(test + noise, 0, 16)
    found, log_pxs, corrects = [], [], []
    for v in variants(klj_weight, outlier_fraction, fraction):
        flows = class_conditional(
            kconfig, splits, labels, v["r"], v["p"], v["klj_weight"], kconfig.seed, progress
        )
        per_class = [score_sets(kconfig, flow, {"test": test, **ood}) for flow in flows]
        log_px = {
            name: np.logaddexp.reduce(np.stack([s[name] for s in per_class]), axis=0)
            - math.log(len(flows))
            for name in per_class[0]
        }
        predicted = np.array(kconfig.in_classes)[
            np.argmax(np.stack([s["test"] for s in per_class]), axis=0)
        ]
        found.append(v)
        log_pxs.append(log_px)
        corrects.append(predicted == labels["test"])
    return DigitsScores(tuple(found), tuple(log_pxs), tuple(corrects))


def _comparisons(in_scores: np.ndarray, ood_scores: np.ndarray) -> np.ndarray:
    """``C[i, j]``: 1 where ``in_scores[i] > ood_scores[j]``, ½ where equal, 0 else (infinite scores
    allowed: the AUROC depends only on the order), so that the Mann–Whitney AUROC of any resample is
    a weighted mean of ``C``."""
    if np.isnan(in_scores).any() or np.isnan(ood_scores).any():
        raise ValueError("the log-likelihoods must not be NaN")
    a, b = in_scores[:, None], ood_scores[None, :]
    return (a > b) + 0.5 * (a == b)


def _counts(generator: np.random.Generator | None, n_boot: int, n: int) -> np.ndarray:
    """How often each of ``n`` images is drawn in each of ``n_boot`` resamples with replacement
    (``generator`` None: one "resample" holding every image once)."""
    if generator is None:
        return np.ones((1, n))
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.arange(n_boot)[:, None], generator.integers(0, n, (n_boot, n))), 1.0)
    return counts


def _metrics(
    scores: DigitsScores, test_counts: np.ndarray, ood_counts: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    r"""Per model and resample: accuracy, the AUROC of the test digits against each OOD set and
    their mean, on the resample that holds test digit :math:`i` ``test_counts[b, i]`` times and
    image :math:`j` of set ``name`` ``ood_counts[name][b, j]`` times. The AUROC of resample
    :math:`b` is the Mann–Whitney statistic :math:`w_b^\top C\,v_b / (n_{test}\,n_{ood})`
    (:func:`_comparisons`)."""
    n_test = test_counts.shape[1]
    frames = []
    for v, log_px, correct in zip(scores.variants, scores.log_px, scores.correct):
        columns = {"accuracy": test_counts @ correct.astype(float) / n_test}
        for name in scores.ood:
            weighted = test_counts @ _comparisons(log_px["test"], log_px[name])
            columns[f"AUROC {name}"] = np.einsum("bj,bj->b", weighted, ood_counts[name]) / (
                n_test * ood_counts[name].shape[1]
            )
        columns["mean AUROC"] = np.mean([columns[f"AUROC {name}"] for name in scores.ood], axis=0)
        frames.append(
            pd.DataFrame(
                {
                    **{k: [value] * len(test_counts) for k, value in v.items()},
                    "replicate": np.arange(len(test_counts)),
                    **columns,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def digits_table(scores: DigitsScores) -> pd.DataFrame:
    """Per model: test accuracy of the class-conditional classifier, the AUROC of the test digits
    against each OOD set, and the mean AUROC over the sets.

    Example:
        >>> s = DigitsScores(
        ...     ({"data": "clean", "klj_weight": 0.0},),
        ...     ({"test": np.array([3.0, 4.0, 5.0]), "ood": np.array([1.0, 4.0])},),
        ...     (np.array([True, True, False]),),
        ... )
        >>> # AUROC: (3 + 0.5 + 1) / 6 pairs
        ... digits_table(s)[["accuracy", "AUROC ood"]].round(3).values.tolist()
        [[0.667, 0.75]]
    """
    n_test = len(scores.correct[0])
    table = _metrics(
        scores,
        _counts(None, 1, n_test),
        {name: _counts(None, 1, len(scores.log_px[0][name])) for name in scores.ood},
    )
    return table.drop(columns="replicate")


def paired_bootstrap(scores: DigitsScores, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The metrics of :func:`digits_table` on ``n_boot`` resamples: each draws the test digits and
    each OOD set with replacement (a stream named by ``seed``), **the same images for every model**,
    so that differences between models keep their pairing.

    Returns:
        :func:`digits_table`'s columns and ``replicate``, one row per (model, replicate).

    Example:
        >>> s = DigitsScores(
        ...     ({"data": "clean", "klj_weight": 0.0},),
        ...     ({"test": np.arange(6.0), "ood": np.arange(6.0) - 3},),
        ...     (np.array([1, 1, 0, 1, 0, 1], bool),),
        ... )
        >>> draws = paired_bootstrap(s, n_boot=20)
        >>> draws.shape, bool(draws["AUROC ood"].between(0, 1).all())
        ((20, 6), True)
    """
    n_boot = check_int("n_boot", n_boot, minimum=10)
    seed = check_int("seed", seed, minimum=0)
    generator = rng.numpy_stream(rng.derived_seed(seed, "song digits paired bootstrap"))
    test_counts = _counts(generator, n_boot, len(scores.correct[0]))
    ood_counts = {
        name: _counts(generator, n_boot, len(scores.log_px[0][name])) for name in scores.ood
    }
    return _metrics(scores, test_counts, ood_counts)


def _metric_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in (*_VARIANT_COLUMNS, "replicate")]


def metric_intervals(table: pd.DataFrame, draws: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per model and metric: the value and the percentile interval of :func:`paired_bootstrap`'s
    resamples (long format: ``data``, ``klj_weight``, ``metric``, ``value``, ``CI low``,
    ``CI high``).

    Example:
        >>> s = DigitsScores(
        ...     ({"data": "clean", "klj_weight": 0.0},),
        ...     ({"test": np.arange(6.0), "ood": np.arange(6.0) - 3},),
        ...     (np.array([1, 1, 0, 1, 0, 1], bool),),
        ... )
        >>> out = metric_intervals(digits_table(s), paired_bootstrap(s, n_boot=50))
        >>> out["metric"].tolist(), bool((out["CI low"] <= out["CI high"]).all())
        (['accuracy', 'AUROC ood', 'mean AUROC'], True)
    """
    level = check_probability("level", level)
    q = [(1 - level) / 2, (1 + level) / 2]
    rows = []
    for _, model in table.iterrows():
        mask = (draws["data"] == model["data"]) & np.isclose(
            draws["klj_weight"], model["klj_weight"]
        )
        for metric in _metric_columns(table):
            low, high = np.quantile(draws.loc[mask, metric], q)
            rows.append(
                {
                    "data": model["data"],
                    "klj_weight": model["klj_weight"],
                    "metric": metric,
                    "value": float(model[metric]),
                    "CI low": float(low),
                    "CI high": float(high),
                }
            )
    return pd.DataFrame(rows)


def contrast(
    table: pd.DataFrame,
    draws: pd.DataFrame,
    metric: str,
    weights: Mapping[tuple[str, bool], float],
    level: float = 0.95,
) -> tuple[float, float, float]:
    r"""A weighted sum of one metric across models, :math:`\sum_m w_m\,\text{metric}_m`, with the
    percentile interval of the same sum over :func:`paired_bootstrap`'s resamples.

    Args:
        table: :func:`digits_table`.
        draws: :func:`paired_bootstrap` of the same scores.
        metric: A metric column, e.g. ``"accuracy"`` or ``"mean AUROC"``.
        weights: ``(data, with KLJ?) → w``, e.g. ``{("clean", True): 1, ("clean", False): -1}`` for
            the change KLJ makes on clean training.
        level: The interval's coverage.

    Returns:
        ``(value, low, high)``.

    Example:
        >>> table = pd.DataFrame(
        ...     {"data": ["clean", "clean"], "klj_weight": [0.0, 1.0], "accuracy": [0.80, 0.75]}
        ... )
        >>> draws = pd.DataFrame(
        ...     {
        ...         "data": ["clean"] * 4,
        ...         "klj_weight": [0.0, 1.0, 0.0, 1.0],
        ...         "replicate": [0, 0, 1, 1],
        ...         "accuracy": [0.82, 0.76, 0.78, 0.75],
        ...     }
        ... )
        >>> value, low, high = contrast(
        ...     table, draws, "accuracy", {("clean", True): 1, ("clean", False): -1}, level=0.5
        ... )
        >>> round(value, 3), low <= value <= high  # the resamples' differences are -0.06 and -0.03
        (-0.05, True)
    """
    level = check_probability("level", level)
    if metric not in _metric_columns(table):
        raise ValueError(f"metric must be one of {_metric_columns(table)}, got {metric!r}")
    if not weights:
        raise ValueError("weights must name at least one model")
    value, by_replicate = 0.0, 0.0
    for (name, klj), w in weights.items():
        rows = table[(table["data"] == name) & ((table["klj_weight"] > 0) == bool(klj))]
        if len(rows) != 1:
            raise ValueError(
                f"weights names the model ({name!r}, KLJ {'on' if klj else 'off'}), which the "
                f"table holds {len(rows)} times (it must hold it once)"
            )
        value += w * float(rows[metric].iloc[0])
        drawn = draws[(draws["data"] == name) & ((draws["klj_weight"] > 0) == bool(klj))].set_index(
            "replicate"
        )[metric]
        by_replicate = by_replicate + w * drawn
    low, high = np.quantile(
        np.asarray(by_replicate, dtype=float), [(1 - level) / 2, (1 + level) / 2]
    )
    return value, float(low), float(high)
