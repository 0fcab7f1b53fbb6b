r"""The offline data of the Kirichenko et al. (2020) study, and how its likelihoods are reported.

**Images.** scikit-learn's 8×8 digits (pixel values :math:`v \in \{0, …, 16\}`, flattened to
64-vectors) stand in for the paper's 28×28 and 32×32 images: the classes :data:`IN_CLASSES` are
in-distribution (split 70/10/20 by :func:`digits_splits`); :func:`ood_sets` builds the
out-of-distribution sets — the held-out digits 1 and 7, the test digits flipped and inverted,
uniform noise, and grayscale patches of the two sample photos standing in for natural images.

**Likelihoods.** A flow models the density :math:`p` of the dequantised image
:math:`x = (v + u)/17 \in [0, 1)^{64}`, :math:`u \sim \mathcal U[0, 1)^{64}` (:func:`dequantize`).
The discrete probability of :math:`v` is the mass of its cell,

.. math::
    P(v) = \int_{[0,1)^{64}} p\!\left(\tfrac{v + u}{17}\right) 17^{-64}\, du
    \;\ge\; \exp\!\Big(\mathbb E_u \log p\big(\tfrac{v+u}{17}\big) - 64 \log 17\Big)

(Jensen), so :math:`P(v) \approx p(x)\,17^{-64}`. An image is scored by the Monte-Carlo mean
:math:`\frac1K\sum_k \log p(x_k)` over :math:`K` seeded draws (:func:`mean_log_likelihood`),
reported in bits per dimension of the *discrete* data by :func:`bits_per_dim`. Detection is
summarised by the AUROC with the in-distribution set as positives and the log-likelihood as score
(:func:`auroc_ci`): below 0.5 the OOD set is rated *more* likely.

**Tables.** :func:`tabular_one_class` gives the one-class splits of the breast-cancer and wine data
(the paper's App. K.3 uses HEPMASS and MINIBOONE).

Every random draw comes from a named stream of :mod:`flowcore.rng`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor

from flowcore.estimators import auroc
from flowcore.rng import derived_seed, numpy_stream, stream
from flowcore.validation import (
    check_choice,
    check_int,
    check_int_list,
    check_probability,
    check_real_list,
)

__all__ = [
    "DIGIT_LEVELS",
    "DIM",
    "IN_CLASSES",
    "OOD_NAMES",
    "TABULAR",
    "digits_splits",
    "split_labels",
    "photo_patches",
    "ood_sets",
    "dequantize",
    "bits_per_dim",
    "mean_log_likelihood",
    "auroc_ci",
    "OneClassSplit",
    "tabular_one_class",
]

#: Pixel values of the digits are 0, 1, …, 16: 17 levels.
DIGIT_LEVELS = 17
#: Pixels per image (8×8).
DIM = 64
#: The in-distribution digits by default; 1 and 7 are held out as OOD sets.
IN_CLASSES = (0, 2, 3, 4, 5, 6, 8, 9)
#: The names of the OOD sets of :func:`ood_sets`, in order.
OOD_NAMES = (
    "class 1",
    "class 7",
    "flipped left–right",
    "flipped up–down",
    "inverted",
    "uniform noise",
    "photo patches",
)
#: The tabular data sets of :func:`tabular_one_class`.
TABULAR = ("breast_cancer", "wine")

_HELD_OUT = (1, 7)
_SPLITS = ("train", "val", "test")
_STUDY = "kirichenko2020"


# --- loading (cached; callers get copies) ---------------------------------------------------------


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as int64 (n, 64) with their labels; read-only."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, labels = bunch.data.astype(np.int64), bunch.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@lru_cache(maxsize=1)
def _digit_rows() -> dict[bytes, int]:
    """Each digit's pixel row (as bytes) → its index; the 1,797 images are pairwise distinct."""
    return {row.tobytes(): i for i, row in enumerate(_digits()[0])}


@lru_cache(maxsize=1)
def _gray_photos() -> tuple[np.ndarray, ...]:
    """The sample photos (china, flower) in grayscale, float64 in [0, 255] (ITU-R BT.601 luma)."""
    from sklearn.datasets import load_sample_images

    luma = np.array([0.299, 0.587, 0.114])
    photos = tuple(
        np.asarray(image, dtype=np.float64) @ luma for image in load_sample_images().images
    )
    for photo in photos:
        photo.setflags(write=False)
    return photos


# --- checks ---------------------------------------------------------------------------------------


def _check_fractions(fractions) -> tuple[float, float, float]:
    values = check_real_list("fractions", fractions, positive=True)
    if len(values) != 3 or abs(sum(values) - 1.0) > 1e-9:
        raise ValueError(
            "fractions must be three numbers > 0 (train, val, test) that sum to 1, got "
            f"{list(fractions)!r}"
        )
    return values  # type: ignore[return-value]


def _check_classes(in_classes) -> tuple[int, ...]:
    classes = check_int_list("in_classes", in_classes, minimum=0)
    if any(c > 9 for c in classes) or len(set(classes)) != len(classes):
        raise ValueError(f"in_classes must be distinct digits from 0–9, got {list(in_classes)}")
    return classes


def _check_images(
    name: str, images, ndim: int | None = None, levels: int = DIGIT_LEVELS
) -> np.ndarray:
    """``images`` as an int64 array if every value is an integer in 0..levels − 1."""
    values = images.detach().cpu().numpy() if isinstance(images, Tensor) else np.asarray(images)
    if ndim is not None and values.ndim != ndim:
        raise ValueError(
            f"{name} must be a {ndim}-d array of pixel values, got shape {values.shape}"
        )
    if values.dtype == bool or not (
        np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
    ):
        raise ValueError(
            f"{name} must hold integer pixel values 0–{levels - 1}, got dtype {values.dtype}"
        )
    if values.size and (
        not np.isfinite(values).all()
        or (values != np.round(values)).any()
        or values.min() < 0
        or values.max() > levels - 1
    ):
        raise ValueError(
            f"{name} must hold integer pixel values 0–{levels - 1}, got values in "
            f"[{values.min()}, {values.max()}]"
        )
    return values.astype(np.int64)


def _split_counts(n: int, fractions: tuple[float, float, float], what: str) -> tuple[int, int, int]:
    n_train, n_val = round(fractions[0] * n), round(fractions[1] * n)
    counts = (n_train, n_val, n - n_train - n_val)
    if min(counts) < 1:
        raise ValueError(
            f"fractions {list(fractions)} leave an empty split of the {n} samples of {what}; use "
            "larger fractions"
        )
    return counts


def _split(
    indices: np.ndarray,
    fractions: tuple[float, float, float],
    generator: np.random.Generator,
    what: str,
) -> list[np.ndarray]:
    """A random partition of ``indices`` into train/val/test of the given fractions."""
    counts = _split_counts(len(indices), fractions, what)
    shuffled = generator.permutation(indices)
    return np.split(shuffled, np.cumsum(counts)[:2])


# --- digits ---------------------------------------------------------------------------------------


def _split_indices(in_classes: Sequence[int], seed: int, fractions) -> dict[str, np.ndarray]:
    """Indices into the digits of each split: per class a seeded permutation cut by
    ``fractions``."""
    classes = _check_classes(in_classes)
    fractions = _check_fractions(fractions)
    seed = check_int("seed", seed, minimum=0)
    labels = _digits()[1]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in _SPLITS}
    for c in classes:
        generator = numpy_stream(derived_seed(_STUDY, "digits split", seed, c))
        for name, part in zip(
            _SPLITS, _split(np.flatnonzero(labels == c), fractions, generator, f"class {c}")
        ):
            parts[name].append(part)
    return {name: np.sort(np.concatenate(part)) for name, part in parts.items()}


def digits_splits(
    in_classes: Sequence[int] = IN_CLASSES,
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
) -> dict[str, np.ndarray]:
    r"""The in-distribution digits split into ``"train"``, ``"val"`` and ``"test"``.

    The split is stratified: each class's images are permuted by a stream named by ``seed`` and the
    class, and cut at the fractions (rounded per class), so each split holds the classes in the
    proportions of the data. Within a split the images keep the order of ``load_digits``. The images
    of the other classes are held out; :func:`ood_sets` turns digits 1 and 7 into OOD sets.

    Returns:
        ``{"train", "val", "test"}`` → int64 arrays of shape (n, 64), values in 0..16 (fresh
        copies).

    Example:
        >>> splits = digits_splits(seed=0)
        >>> {name: images.shape for name, images in splits.items()}
        {'train': (1006, 64), 'val': (143, 64), 'test': (287, 64)}
        >>> int(splits["train"].min()), int(splits["train"].max())
        (0, 16)
    """
    images = _digits()[0]
    return {
        name: images[idx].copy()
        for name, idx in _split_indices(in_classes, seed, fractions).items()
    }


def split_labels(
    in_classes: Sequence[int] = IN_CLASSES,
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
) -> dict[str, np.ndarray]:
    """The digit labels of the images of :func:`digits_splits` with the same arguments, row for row
    (e.g. to train the classifier whose features K9's flow models).

    Example:
        >>> labels = split_labels(seed=0)
        >>> sorted(set(labels["test"].tolist())), labels["test"].shape
        ([0, 2, 3, 4, 5, 6, 8, 9], (287,))
    """
    labels = _digits()[1]
    return {
        name: labels[idx].copy()
        for name, idx in _split_indices(in_classes, seed, fractions).items()
    }


def photo_patches(n: int, seed: int = 0, crop: int = 32) -> np.ndarray:
    r"""``n`` 8×8 grayscale patches of scikit-learn's two sample photos, quantised to 0..16.

    Each patch is a ``crop``×``crop`` window at a seeded position of a seeded photo (china or
    flower, 427×640), in grayscale :math:`g = 0.299R + 0.587G + 0.114B \in [0, 255]`, averaged over
    :math:`(\text{crop}/8)^2` blocks to 8×8 (as the digits were downsampled from 32×32 bitmaps) and
    quantised to :math:`\operatorname{round}(16\,g/255)`. With ``crop=8`` the patch is the raw
    pixels.

    Returns:
        An int64 array of shape (n, 64) with values in 0..16.

    Example:
        >>> patches = photo_patches(5, seed=0)
        >>> patches.shape, bool(patches.min() >= 0 and patches.max() <= 16)
        ((5, 64), True)
        >>> bool((patches == photo_patches(5, seed=0)).all())
        True
    """
    n = check_int("n", n, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    crop = check_int("crop", crop, minimum=8, maximum=400)
    if crop % 8:
        raise ValueError(
            "crop must be a multiple of 8 (the patch is averaged in blocks down to 8×8), got "
            f"{crop}"
        )
    photos = _gray_photos()
    generator = numpy_stream(derived_seed(_STUDY, "photo patches", seed, crop))
    which = generator.integers(0, len(photos), n)
    block = crop // 8
    out = np.empty((n, DIM), dtype=np.int64)
    for i, k in enumerate(which):
        height, width = photos[k].shape
        top, left = (
            generator.integers(0, height - crop + 1),
            generator.integers(0, width - crop + 1),
        )
        window = photos[k][top : top + crop, left : left + crop]
        small = window.reshape(8, block, 8, block).mean(axis=(1, 3))
        out[i] = (
            np.clip(np.rint(small * (DIGIT_LEVELS - 1) / 255.0), 0, DIGIT_LEVELS - 1)
            .astype(np.int64)
            .ravel()
        )
    return out


def _zero_fraction(images: np.ndarray) -> float:
    return float((images == 0).mean())


def ood_sets(
    splits: Mapping[str, np.ndarray] | None = None, seed: int = 0
) -> dict[str, tuple[np.ndarray, str]]:
    r"""The out-of-distribution sets, in the order of :data:`OOD_NAMES`: name → (images,
    description).

    Args:
        splits: The output of :func:`digits_splits` (its ``"test"`` images are flipped and inverted;
            all its images give the in-distribution zero-pixel fraction). None:
            ``digits_splits(seed=seed)``. Digits 1 and 7 must not be in it.
        seed: Seeds the uniform noise and the photo patches' positions (not the split, unless
            ``splits`` is None).

    The sets (each an int64 array (n, 64) with values in 0..16):

    - ``"class 1"``: all held-out 1s, the "simpler" set (more zero pixels than any other class);
    - ``"class 7"``: all held-out 7s, of the in-distribution classes' complexity;
    - ``"flipped left–right"``, ``"flipped up–down"``: the test digits mirrored, :math:`v_{i, 7-j}`
      and :math:`v_{7-i, j}` of the 8×8 image :math:`v_{ij}`;
    - ``"inverted"``: :math:`16 - v` of the test digits;
    - ``"uniform noise"``: i.i.d. uniform integers 0..16, as many as the test digits;
    - ``"photo patches"``: :func:`photo_patches`, as many as the test digits.

    Example:
        >>> sets = ood_sets(digits_splits(seed=0), seed=0)
        >>> [(name, images.shape[0]) for name, (images, _) in sets.items()][:3]
        [('class 1', 182), ('class 7', 179), ('flipped left–right', 287)]
        >>> sets["class 1"][1][:42]
        'held-out digit 1 (54% zero pixels vs 48% f'
    """
    seed = check_int("seed", seed, minimum=0)
    if splits is None:
        splits = digits_splits(seed=seed)
    if not isinstance(splits, Mapping) or "test" not in splits:
        raise ValueError(
            "splits must be the dict of digits_splits (with a 'test' entry), got "
            f"{type(splits).__name__}"
        )
    split_images = {
        name: _check_images(f"splits[{name!r}]", images, ndim=2) for name, images in splits.items()
    }
    for name, images in split_images.items():
        if images.shape[1] != DIM:
            raise ValueError(
                f"splits[{name!r}] must have {DIM} columns (flat 8×8 images), got shape "
                f"{images.shape}"
            )
    test = split_images["test"]
    pooled = np.concatenate(list(split_images.values()))

    digits, labels = _digits()
    rows = _digit_rows()
    found = np.array([rows.get(row.tobytes(), -1) for row in pooled])
    found_labels = labels[found[found >= 0]]
    leaked = sorted(set(found_labels.tolist()) & set(_HELD_OUT))
    if leaked:
        raise ValueError(
            f"splits contain digits {leaked}, which ood_sets holds out as OOD sets; leave 1 and 7 "
            "out of in_classes"
        )
    per_class = [_zero_fraction(digits[labels == c]) for c in sorted(set(found_labels.tolist()))]
    spread = f"; {min(per_class):.0%}–{max(per_class):.0%} per class" if per_class else ""
    in_zero = f"{_zero_fraction(pooled):.0%} for the in-distribution images{spread}"

    ones, sevens = digits[labels == 1].copy(), digits[labels == 7].copy()
    square = test.reshape(-1, 8, 8)
    noise = numpy_stream(derived_seed(_STUDY, "uniform noise", seed)).integers(
        0, DIGIT_LEVELS, size=test.shape, dtype=np.int64
    )
    return {
        "class 1": (
            ones,
            f"held-out digit 1 ({_zero_fraction(ones):.0%} zero pixels vs {in_zero}): the "
            "'simpler' OOD set, standing in for MNIST against a flow trained on FashionMNIST (or "
            "SVHN against CIFAR-10)",
        ),
        "class 7": (
            sevens,
            f"held-out digit 7 ({_zero_fraction(sevens):.0%} zero pixels vs {in_zero}): an unseen "
            "class of the in-distribution's complexity, standing in for a 'near' OOD set such as "
            "notMNIST against FashionMNIST",
        ),
        "flipped left–right": (
            square[:, :, ::-1].reshape(-1, DIM).copy(),
            "the in-distribution test digits mirrored left–right: the same pixel statistics and "
            "local structure with the wrong global shape (does the likelihood see semantics, or "
            "local smoothness?)",
        ),
        "flipped up–down": (
            square[:, ::-1, :].reshape(-1, DIM).copy(),
            "the in-distribution test digits mirrored up–down: the same pixel statistics and "
            "local structure with the wrong global shape",
        ),
        "inverted": (
            (DIGIT_LEVELS - 1) - test,
            "16 − v of the in-distribution test digits (bright background, dark strokes): an "
            "easy control whose pixel histogram is reversed",
        ),
        "uniform noise": (
            noise,
            "i.i.d. uniform pixel values 0–16, as many images as the test digits: an easy "
            "control without local correlation",
        ),
        "photo patches": (
            photo_patches(len(test), seed=seed),
            "8×8 grayscale patches of scikit-learn's two sample photos (32×32 crops averaged in "
            "4×4 blocks, quantised to 0–16), as many as the test digits: standing in for natural "
            "images such as CIFAR-10 or SVHN",
        ),
    }


# --- dequantisation and likelihoods ---------------------------------------------------------------


def dequantize(
    images,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    levels: int = DIGIT_LEVELS,
) -> Tensor:
    r"""Uniform dequantisation :math:`x = (v + u)/L`, :math:`u \sim \mathcal U[0, 1)` i.i.d. per
    pixel, for :math:`L` = ``levels`` pixel values (17 for the digits, 256 for 8-bit images).

    ``images`` (any shape, integer values 0..L − 1, array or tensor) map into :math:`[0, 1)` with
    the same shape; the noise comes from ``generator`` (drawn in float64, then cast to ``dtype``). A
    value that rounds up to 1 in ``dtype`` is set to the largest number below 1, so :math:`x < 1`
    always.

    Example:
        >>> from flowcore import rng
        >>> x = dequantize(np.array([[0, 8, 16]]), rng.generator(0))
        >>> x.shape, x.dtype, bool(((x * 17).floor() == torch.tensor([[0.0, 8.0, 16.0]])).all())
        (torch.Size([1, 3]), torch.float32, True)
    """
    levels = check_int("levels", levels, minimum=2)
    values = torch.from_numpy(_check_images("images", images, levels=levels))
    u = torch.rand(values.shape, generator=generator, dtype=torch.float64)
    x = ((values.to(torch.float64) + u) / levels).to(dtype)
    below_one = torch.nextafter(torch.ones((), dtype=dtype), torch.zeros((), dtype=dtype))
    return torch.minimum(x, below_one)


def bits_per_dim(
    log_likelihood_nats, dim: int = DIM, levels: int = DIGIT_LEVELS
) -> float | np.ndarray:
    r"""Bits per dimension of the *discrete* images from the log-density (nats) of their
    dequantisation.

    With :math:`\log p(x)` the log-density of :math:`x = (v + u)/L \in [0, 1)^{D}`, :math:`L` =
    ``levels`` (17 for the digits, 256 for 8-bit images), including the log-det of any
    pre-processing such as :math:`y = \operatorname{logit}(0.05 + 0.9x)`, the discrete probability
    is :math:`P(v) \approx p(x)\,L^{-D}`, so

    .. math::
        \text{bpd} = -\frac{\log P(v)}{D \log 2} = -\frac{\log p(x) - D \log L}{D \log 2}
                   = \log_2 L - \frac{\log p(x)}{D \log 2}.

    Higher log-likelihood means *fewer* bits; a uniform density on :math:`[0, 1)^D`
    (:math:`\log p = 0`) gives :math:`\log_2 L` bits (4.09 for the digits, 8 for 8-bit images), the
    cost of coding each pixel uniformly. Returns a float for a scalar and a float64 array of the
    input's shape otherwise.

    Example:
        >>> round(bits_per_dim(0.0), 4), round(bits_per_dim(64 * math.log(17)), 4)
        (4.0875, 0.0)
        >>> bits_per_dim(np.array([0.0, -64 * math.log(2)])).round(4).tolist()
        [4.0875, 5.0875]
        >>> bits_per_dim(0.0, dim=196, levels=256)
        8.0
    """
    dim = check_int("dim", dim, minimum=1)
    levels = check_int("levels", levels, minimum=2)
    nats = np.asarray(log_likelihood_nats, dtype=np.float64)
    bpd = (dim * math.log(levels) - nats) / (dim * math.log(2))
    return float(bpd) if bpd.ndim == 0 else bpd


def mean_log_likelihood(
    log_prob_fn: Callable[[Tensor], Tensor],
    images,
    n_draws: int = 4,
    seed: int = 0,
    batch_size: int = 512,
    levels: int = DIGIT_LEVELS,
) -> np.ndarray:
    r"""Each image's mean log-likelihood (nats) over ``n_draws`` seeded dequantisations,
    :math:`\frac1K \sum_{k=1}^{K} \log p\big((v + u_k)/L\big)`, :math:`L` = ``levels`` (17 for
    the digits, 256 for 8-bit images).

    The mean is a Monte-Carlo estimate of :math:`\mathbb E_u \log p(x)`, a lower bound of
    :math:`\log P(v) + D\log L` (Jensen; see the module docstring). Draw :math:`k` dequantises the
    whole set with the stream ``rng.stream(seed, "kirichenko2020", "dequantize", k)``, so the scores
    do not depend on ``batch_size``. ``log_prob_fn`` maps a float32 tensor (N, D) with values in
    [0, 1) to log-densities (N,); it runs under ``torch.no_grad()``.

    Returns:
        A float64 array of shape (n,).

    Example:
        >>> uniform = lambda x: torch.zeros(len(x))  # the uniform density on [0, 1)^64
        >>> mean_log_likelihood(uniform, np.zeros((3, 64), dtype=int), n_draws=2).tolist()
        [0.0, 0.0, 0.0]
        >>> ll = mean_log_likelihood(lambda x: x.sum(1), np.full((2, 64), 8), n_draws=4, seed=1)
        >>> ll.shape, bool(np.allclose(ll, 64 * 8.5 / 17, atol=1.0))
        ((2,), True)
    """
    levels = check_int("levels", levels, minimum=2)
    values = _check_images("images", images, ndim=2, levels=levels)
    n_draws = check_int("n_draws", n_draws, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    total = np.zeros(len(values), dtype=np.float64)
    with torch.no_grad():
        for k in range(n_draws):
            x = dequantize(values, stream(seed, _STUDY, "dequantize", k), levels=levels)
            for start in range(0, len(x), batch_size):
                chunk = x[start : start + batch_size]
                out = torch.as_tensor(log_prob_fn(chunk))
                if out.shape != (len(chunk),):
                    raise ValueError(
                        "log_prob_fn must return one log-density per image, shape "
                        f"({len(chunk)},); got {tuple(out.shape)}"
                    )
                total[start : start + len(chunk)] += out.detach().to("cpu", torch.float64).numpy()
    return total / n_draws


# --- AUROC with a bootstrap interval --------------------------------------------------------------


def _scores(name: str, values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size < 2:
        raise ValueError(f"{name} needs at least 2 values, got {values.size}")
    if np.isnan(values).any():
        raise ValueError(
            f"{name} contains NaN ({np.count_nonzero(np.isnan(values))} of {values.size})"
        )
    return values


def auroc_ci(
    in_scores, ood_scores, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    r"""AUROC of the log-likelihood as in-distribution detector, with a percentile-bootstrap
    interval.

    The in-distribution set is the positive class and the score is the log-likelihood, so
    (Mann–Whitney, ties counted half, :func:`flowcore.estimators.auroc`)

    .. math::
        \mathrm{AUROC} = P(s_{in} > s_{ood}) + \tfrac12 P(s_{in} = s_{ood}).

    1: every in-distribution image is rated more likely than every OOD image; 0.5: no separation;
    **below 0.5: the OOD set is rated more likely** (the paper's failure). The interval holds the
    :math:`\frac{1 \mp \text{level}}{2}` quantiles of the AUROC over ``n_boot`` resamples, each
    drawing both sets with replacement from a stream named by ``seed``. Infinite scores are allowed
    (the AUROC depends only on the ranks); NaN is an error.

    Returns:
        ``(auroc, low, high)``.

    Example:
        >>> value, low, high = auroc_ci([3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 2.5], n_boot=50)
        >>> value, low <= value <= high
        (1.0, True)
        >>> auroc_ci([1.0, 2.0], [3.0, 4.0], n_boot=20)[0]
        0.0
    """
    a = _scores("in_scores", in_scores)
    b = _scores("ood_scores", ood_scores)
    n_boot = check_int("n_boot", n_boot, minimum=10)
    seed = check_int("seed", seed, minimum=0)
    level = check_probability("level", level)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        ranks = rankdata(
            np.concatenate([a, b])
        )  # same order and ties, so the same AUROC on every resample
        a, b = ranks[: a.size], ranks[a.size :]
    value = auroc(a, b)
    generator = numpy_stream(derived_seed(_STUDY, "auroc bootstrap", seed))
    boot = np.array(
        [
            auroc(
                a[generator.integers(0, a.size, a.size)], b[generator.integers(0, b.size, b.size)]
            )
            for _ in range(n_boot)
        ]
    )
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return value, float(low), float(high)


# --- tabular one-class data -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OneClassSplit:
    r"""One direction of a one-class experiment: a flow is trained on ``train`` (one class), the
    other class's samples ``ood`` are the OOD set.

    All four arrays are float64 (n, D), standardised with the in-class *training* statistics,
    :math:`(x - \mu_{train}) / \sigma_{train}` (``mean``, ``scale``; a constant feature gets scale
    1), so no test or OOD sample leaks into the standardisation.

    Example:
        >>> first, second = tabular_one_class("wine", seed=0)
        >>> first
        OneClassSplit(wine: class_0 (train 41, val 6, test 12) vs class_1 + class_2 (ood 119), D=13)
        >>> second.in_label, second.ood.shape
        ('class_1 + class_2', (59, 13))
    """

    dataset: str
    in_label: str
    out_label: str
    train: np.ndarray = field(repr=False)
    val: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)
    ood: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"OneClassSplit({self.dataset}: {self.in_label} (train {len(self.train)}, val "
            f"{len(self.val)}, test {len(self.test)}) vs {self.out_label} (ood {len(self.ood)}), "
            f"D={self.train.shape[1]})"
        )


def tabular_one_class(
    name: str = "breast_cancer", seed: int = 0, fractions: Sequence[float] = (0.7, 0.1, 0.2)
) -> tuple[OneClassSplit, OneClassSplit]:
    """The one-class splits of a tabular data set, in both directions (the paper's App. K.3, claim
    K10).

    The samples fall into two groups: for ``"breast_cancer"`` malignant (target 0, 212) and benign
    (target 1, 357); for ``"wine"`` class 0 (59) and the rest, classes 1 and 2 (119). Each direction
    takes one group as in-distribution, splits it by ``fractions`` with a stream named by the data
    set, the direction and ``seed``, standardises with its training statistics, and keeps *all*
    samples of the other group as its OOD set.

    Returns:
        ``(group 0 in-distribution, group 1 in-distribution)``, each an :class:`OneClassSplit`.

    Example:
        >>> malignant, benign = tabular_one_class("breast_cancer", seed=0)
        >>> (malignant.in_label, len(malignant.train), len(malignant.ood),
        ...  benign.in_label, len(benign.ood))
        ('malignant', 148, 357, 'benign', 212)
        >>> bool(np.allclose(benign.train.mean(0), 0) and np.allclose(benign.train.std(0), 1))
        True
    """
    name = check_choice("name", name, TABULAR)
    seed = check_int("seed", seed, minimum=0)
    fractions = _check_fractions(fractions)
    from sklearn.datasets import load_breast_cancer, load_wine

    bunch = load_breast_cancer() if name == "breast_cancer" else load_wine()
    features = np.asarray(bunch.data, dtype=np.float64)
    group = (np.asarray(bunch.target) != 0).astype(np.int64)  # 0: target 0; 1: every other target
    names = [str(n) for n in bunch.target_names]
    labels = (names[0], " + ".join(names[1:]))
    out = []
    for g in (0, 1):
        inside, outside = features[group == g], features[group != g]
        generator = numpy_stream(derived_seed(_STUDY, "tabular split", name, labels[g], seed))
        train_idx, val_idx, test_idx = _split(
            np.arange(len(inside)), fractions, generator, f"{name} {labels[g]}"
        )
        train = inside[np.sort(train_idx)]
        mean, std = train.mean(axis=0), train.std(axis=0)
        scale = np.where(std > 0, std, 1.0)
        out.append(
            OneClassSplit(
                dataset=name,
                in_label=labels[g],
                out_label=labels[1 - g],
                train=(train - mean) / scale,
                val=(inside[np.sort(val_idx)] - mean) / scale,
                test=(inside[np.sort(test_idx)] - mean) / scale,
                ood=(outside - mean) / scale,
                mean=mean,
                scale=scale,
            )
        )
    return out[0], out[1]
