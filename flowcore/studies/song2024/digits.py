r"""An offline analogue of Song et al.'s Tables 1–2 with the class-conditional NLL: on 8×8 digits,
and on MNIST and FashionMNIST.

The class-conditional model is one image flow per in-distribution class,
:math:`p_\theta(x \mid c)` (the Kirichenko study's flows, :func:`flowcore.flows.image.image_flow`),
trained by the class-conditional NLL :math:`-\log p_\theta(x \mid c)` on that class's images,
optionally with the KLJ term. It classifies by :math:`\arg\max_c \log p_\theta(x \mid c)` (uniform
class prior) and scores OOD by :math:`\log p_\theta(x) = \log \tfrac1C \sum_c p_\theta(x \mid c)`.
Variants: training outliers (a fraction :math:`r` of each class's training images replaced by
uniform noise images) and a training fraction :math:`p` of each class's images.

**Data.** Every experiment runs one code path on a :class:`ClassImages`: the in-distribution splits
with their labels, the OOD sets, the classes and the number of pixel levels.
:func:`digits_inputs` builds it from scikit-learn's 8×8 digits (17 levels; the Kirichenko study's
OOD sets plus transposed and noisy test digits); :func:`dataset_inputs` from MNIST or FashionMNIST
(:mod:`flowcore.datasets`, 256 levels, downsampled), with the *other* data set's test images as the
OOD set, plus transposed and noisy in-distribution test images.

**Intervals.** Every model is scored on the same test images and the same OOD images, so a change
KLJ makes is a *paired* comparison. :func:`paired_bootstrap` resamples the test images and each OOD
set with replacement, the same indices for every model, and recomputes every metric of every model;
:func:`contrast` turns any weighted sum of metrics across models (KLJ − plain, or a difference of
differences) into a percentile interval over those resamples. The intervals cover the sampling of
the test and OOD images, not the randomness of training (one training seed per model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flowcore import datasets, rng
from flowcore.studies.kirichenko2020 import data
from flowcore.studies.kirichenko2020.config import KirichenkoConfig
from flowcore.studies.kirichenko2020.experiments import score_sets, trained_image_flow
from flowcore.studies.song2024.klj import klj_term
from flowcore.validation import check_choice, check_int, check_probability

__all__ = [
    "VARIANTS",
    "DATASET_NAMES",
    "variants",
    "ClassImages",
    "digits_inputs",
    "dataset_inputs",
    "shifted_sets",
    "DigitsScores",
    "class_conditional",
    "digits_scores",
    "digits_table",
    "paired_bootstrap",
    "metric_intervals",
    "contrast",
    "klj_changes",
]

#: The columns of :func:`digits_table` that name a model (the rest are its metrics).
_VARIANT_COLUMNS = ("data", "r", "p", "klj_weight")
#: How the book names the real data sets.
DATASET_NAMES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
#: The side of the real data sets' images.
_SIDE = 28


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
class ClassImages:
    """What the class-conditional experiment needs of a data set.

    Attributes:
        splits: ``"train"``, ``"val"``, ``"test"`` → flat square images (n, side²), integer pixel
            values ``0..levels − 1``.
        labels: The same keys → each image's class, row for row.
        ood: OOD set name → flat images of the same side and levels.
        classes: The in-distribution classes, one flow each, in this order.
        levels: The number of pixel levels (17: the digits; 256: 8-bit images).
        tag: Names the data in the flows' cache keys and random streams; ``""`` for the 8×8 digits
            (whose flows keep the keys they always had).

    Example:
        >>> x, y = np.zeros((4, 4), dtype=int), np.array([0, 0, 1, 1])
        >>> data = ClassImages({"train": x, "val": x, "test": x}, {"train": y, "val": y, "test": y},
        ...                    {"noise": x}, classes=(0, 1), levels=2)
        >>> data.side
        2
        >>> ClassImages({"train": x, "val": x, "test": x}, {"train": y, "val": y, "test": y},
        ...             {"noise": x}, classes=(0, 2), levels=2)
        Traceback (most recent call last):
        ...
        ValueError: every class needs training and validation images; class 2 has 0 and 0
    """

    splits: Mapping[str, np.ndarray]
    labels: Mapping[str, np.ndarray]
    ood: Mapping[str, np.ndarray]
    classes: tuple[int, ...]
    levels: int
    tag: str = ""

    def __post_init__(self):
        if set(self.splits) != {"train", "val", "test"} or set(self.labels) != set(self.splits):
            raise ValueError(
                "splits and labels must hold 'train', 'val' and 'test', got "
                f"{sorted(self.splits)} and {sorted(self.labels)}"
            )
        if not self.ood or "test" in self.ood:
            raise ValueError(
                f"ood must name at least one set other than 'test', got {list(self.ood)}"
            )
        width = self.splits["train"].shape[1]
        for name, images in [*self.splits.items(), *self.ood.items()]:
            if images.ndim != 2 or images.shape[1] != width:
                raise ValueError(
                    f"every set must hold flat images of {width} pixels; {name!r} has shape "
                    f"{images.shape}"
                )
            if images.size and (images.min() < 0 or images.max() >= self.levels):
                raise ValueError(f"{name!r} has pixel values outside 0..{self.levels - 1}")
        for name, images in self.splits.items():
            if len(self.labels[name]) != len(images):
                raise ValueError(
                    f"labels[{name!r}] must hold one label per image, got {len(self.labels[name])} "
                    f"for {len(images)}"
                )
        for c in self.classes:
            n_train, n_val = (int(np.sum(self.labels[s] == c)) for s in ("train", "val"))
            if not n_train or not n_val:
                raise ValueError(
                    "every class needs training and validation images; class "
                    f"{c} has {n_train} and {n_val}"
                )

    @property
    def side(self) -> int:
        """The images' side."""
        return math.isqrt(self.splits["train"].shape[1])


def shifted_sets(
    test: np.ndarray, levels: int, seed: int, *labels, noisy: str = "noisy"
) -> dict[str, np.ndarray]:
    r"""Two OOD sets made of the in-distribution test images: ``"transposed"`` (standing in for the
    paper's rotations) and ``noisy`` (each pixel plus an independent uniform integer in
    :math:`[-a, a]`, :math:`a = \operatorname{round}(3(L - 1)/16)` for :math:`L` levels: 3 on the
    digits' 17 levels, 48 on 256, clipped back to :math:`0..L-1`), from a stream named by ``seed``
    and ``labels``.

    Example:
        >>> test = np.arange(8).reshape(2, 4)
        >>> sets = shifted_sets(test, 8, seed=0)
        >>> sets["transposed"][0].tolist(), bool(np.abs(sets["noisy"] - test).max() <= 1)
        ([0, 2, 1, 3], True)
    """
    side = math.isqrt(test.shape[1])
    test = np.asarray(test, dtype=np.int64)
    amplitude = round(3 * (levels - 1) / 16)
    noise = np.random.default_rng(rng.derived_seed(seed, "song noisy", *labels)).integers(
        -amplitude, amplitude + 1, size=test.shape
    )
    return {
        "transposed": test.reshape(-1, side, side).transpose(0, 2, 1).reshape(-1, side * side),
        noisy: np.clip(test + noise, 0, levels - 1),
    }


def digits_inputs(kconfig: KirichenkoConfig) -> ClassImages:
    """The 8×8 digits of ``kconfig.in_classes`` (the Kirichenko study's splits, from
    ``kconfig.seed``) and their OOD sets: the Kirichenko study's seven, transposed digits and noisy
    digits (:func:`shifted_sets`).

    Example:
        >>> inputs = digits_inputs(KirichenkoConfig())
        >>> inputs.side, inputs.levels, list(inputs.ood)[-2:]
        (8, 17, ['transposed', 'noisy digits'])
    """
    splits = data.digits_splits(kconfig.in_classes, seed=kconfig.seed)
    labels = data.split_labels(kconfig.in_classes, seed=kconfig.seed)
    ood = {k: v for k, (v, _) in data.ood_sets(splits, seed=kconfig.seed).items()}
    ood.update(shifted_sets(splits["test"], data.DIGIT_LEVELS, kconfig.seed, noisy="noisy digits"))
    return ClassImages(splits, labels, ood, tuple(kconfig.in_classes), data.DIGIT_LEVELS)


def _flat(images: np.ndarray, factor: int) -> np.ndarray:
    small = datasets.downsample(images, factor)
    return small.reshape(len(small), -1).astype(np.int64)


def dataset_inputs(
    dataset: str,
    classes: Sequence[int] = tuple(range(10)),
    size: int = 14,
    per_class: int = 400,
    n_test: int = 400,
    seed: int = 0,
) -> ClassImages:
    r"""MNIST or FashionMNIST (:func:`flowcore.datasets.load`) as a :class:`ClassImages`, in
    ``size × size`` (block means of the 28×28 images, :func:`flowcore.datasets.downsample`; 256
    levels).

    Each class's training images are permuted by a stream named by ``seed`` and the data set; the
    first tenth (at least one image) is its validation pool, the rest its training pool. The class
    trains on the first ``per_class`` images of its pool (all of them if it holds fewer) and
    validates on the first tenth as many of its validation pool (at least 10, at most the pool).
    The test set is ``n_test`` seeded test images of ``classes`` (all if fewer). The OOD sets: the
    *other* data set's name (:data:`DATASET_NAMES`) → ``n_test`` seeded test images of it, all
    classes; ``"transposed"`` and ``"noisy"`` (:func:`shifted_sets`) of the test set.

    Raises:
        ValueError: For an unknown ``dataset``, classes that are not 2–10 distinct labels 0–9, a
            ``size`` that does not divide 28, or a ``per_class`` or ``n_test`` below 1.

    Example:
        >>> inputs = dataset_inputs("fashion_mnist", (0, 1), size=7, per_class=20, n_test=10)
        >>> {k: v.shape for k, v in inputs.splits.items()}, list(inputs.ood)
        ({'train': (40, 49), 'val': (20, 49), 'test': (10, 49)}, ['MNIST', 'transposed', 'noisy'])
        >>> inputs.levels, inputs.tag
        (256, 'fashion_mnist 7×7, 20 per class')
    """
    dataset = check_choice("dataset", dataset, datasets.DATASETS)
    classes = tuple(int(c) for c in classes)
    if (
        not 2 <= len(classes) <= 10
        or len(set(classes)) != len(classes)
        or any(not 0 <= c <= 9 for c in classes)
    ):
        raise ValueError(f"classes must be 2 to 10 distinct labels from 0–9, got {list(classes)}")
    size = check_int("size", size, minimum=2, maximum=_SIDE)
    if _SIDE % size:
        raise ValueError(f"size must divide {_SIDE} (the images' side), got {size}")
    per_class = check_int("per_class", per_class, minimum=1)
    n_test = check_int("n_test", n_test, minimum=1)
    factor = _SIDE // size
    other = next(d for d in datasets.DATASETS if d != dataset)
    gen = rng.numpy_stream(rng.derived_seed(seed, "song real data", dataset))

    images, labels = datasets.load(dataset, "train")
    picked = {"train": [], "val": []}
    for c in classes:
        idx = np.flatnonzero(labels == c)
        idx = idx[gen.permutation(len(idx))]
        n_pool = max(1, len(idx) // 10)
        val_pool, pool = idx[:n_pool], idx[n_pool:]
        n = min(per_class, len(pool))
        picked["train"].append(pool[:n])
        picked["val"].append(val_pool[: min(len(val_pool), max(10, -(-n // 10)))])
    splits, split_labels = {}, {}
    for name, parts in picked.items():
        idx = np.concatenate(parts)
        splits[name], split_labels[name] = _flat(images[idx], factor), labels[idx].astype(np.int64)

    test_images, test_labels = datasets.load(dataset, "test")
    idx = np.flatnonzero(np.isin(test_labels, classes))
    idx = np.sort(idx[gen.permutation(len(idx))[:n_test]])
    splits["test"], split_labels["test"] = (
        _flat(test_images[idx], factor),
        test_labels[idx].astype(np.int64),
    )
    other_images = datasets.load(other, "test")[0]
    idx = np.sort(gen.permutation(len(other_images))[:n_test])
    ood = {DATASET_NAMES[other]: _flat(other_images[idx], factor)}
    ood.update(shifted_sets(splits["test"], datasets.LEVELS, seed, dataset, size))
    return ClassImages(
        splits,
        split_labels,
        ood,
        classes,
        datasets.LEVELS,
        tag=f"{dataset} {size}×{size}, {per_class} per class",
    )


@dataclass(frozen=True)
class DigitsScores:
    """What the class-conditional models give per image, the raw material of every metric.

    Attributes:
        variants: One dict per model (:func:`variants`).
        log_px: Per model, set name → :math:`\\log p_\\theta(x)` of each image (``"test"``: the test
            images; the others: the OOD sets).
        correct: Per model, whether each test image is classified right.
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
    inputs: ClassImages,
    r: float,
    p: float,
    klj: float,
    seed: int,
    progress: bool | None = None,
) -> list:
    """One flow per class of ``inputs.classes``, trained on its (subsampled, contaminated) training
    images (cached)."""
    flows = []
    tag = (inputs.tag,) if inputs.tag else ()
    gen = np.random.default_rng(rng.derived_seed(seed, "song digits", *tag, r, p))
    for c in inputs.classes:
        train = inputs.splits["train"][inputs.labels["train"] == c]
        val = inputs.splits["val"][inputs.labels["val"] == c]
        keep = max(4, int(round(p * len(train))))
        train = train[gen.permutation(len(train))[:keep]].copy()
        n_out = int(round(r * len(train)))
        if n_out:
            train[:n_out] = gen.integers(0, inputs.levels, size=(n_out, train.shape[1]))
        terms, name = ([klj_term(klj)], f"klj {klj:g}") if klj > 0 else ((), "")
        run = trained_image_flow(
            kconfig,
            train,
            val,
            name=", ".join([*tag, f"class {c}, r={r:g}, p={p:g}, seed {seed}"]),
            loss_terms=terms,
            loss_name=name,
            progress=progress,
            levels=inputs.levels,
        )
        flows.append(run.flow.eval())
    return flows


def digits_scores(
    kconfig: KirichenkoConfig,
    klj_weight: float,
    outlier_fraction: float,
    fraction: float,
    progress: bool | None = None,
    inputs: ClassImages | None = None,
) -> DigitsScores:
    """Train (or load) every model of :func:`variants` on ``inputs`` (None: the 8×8 digits,
    :func:`digits_inputs`) and score the test images and each OOD set."""
    if inputs is None:
        inputs = digits_inputs(kconfig)
    test = inputs.splits["test"]
    found, log_pxs, corrects = [], [], []
    for v in variants(klj_weight, outlier_fraction, fraction):
        flows = class_conditional(
            kconfig, inputs, v["r"], v["p"], v["klj_weight"], kconfig.seed, progress
        )
        per_class = [
            score_sets(kconfig, flow, {"test": test, **inputs.ood}, levels=inputs.levels)
            for flow in flows
        ]
        log_px = {
            name: np.logaddexp.reduce(np.stack([s[name] for s in per_class]), axis=0)
            - math.log(len(flows))
            for name in per_class[0]
        }
        predicted = np.array(inputs.classes)[
            np.argmax(np.stack([s["test"] for s in per_class]), axis=0)
        ]
        found.append(v)
        log_pxs.append(log_px)
        corrects.append(predicted == inputs.labels["test"])
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


def klj_changes(table: pd.DataFrame, draws: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per training condition and metric: the metric without and with KLJ and the change KLJ makes
    (KLJ − plain) with its :func:`contrast` interval (long format: ``data``, ``metric``,
    ``plain``, ``KLJ``, ``change``, ``CI low``, ``CI high``).

    Example:
        >>> s = DigitsScores(
        ...     ({"data": "clean", "klj_weight": 0.0}, {"data": "clean", "klj_weight": 1.0}),
        ...     (
        ...         {"test": np.arange(6.0), "ood": np.arange(6.0) - 3},
        ...         {"test": np.arange(6.0), "ood": np.arange(6.0) - 6},
        ...     ),
        ...     (np.ones(6, bool), np.ones(6, bool)),
        ... )
        >>> out = klj_changes(digits_table(s), paired_bootstrap(s, n_boot=50))
        >>> out.set_index("metric")["change"].round(3).to_dict()
        {'accuracy': 0.0, 'AUROC ood': 0.125, 'mean AUROC': 0.125}
    """
    rows = []
    for name in table["data"].unique():
        for metric in _metric_columns(table):
            value, low, high = contrast(
                table, draws, metric, {(name, True): 1.0, (name, False): -1.0}, level
            )
            rows_of = table[table["data"] == name]
            by = rows_of.set_index(rows_of["klj_weight"] > 0)[metric]
            rows.append(
                {
                    "data": name,
                    "metric": metric,
                    "plain": float(by[False]),
                    "KLJ": float(by[True]),
                    "change": value,
                    "CI low": low,
                    "CI high": high,
                }
            )
    return pd.DataFrame(rows)
