r"""Estimators of thesis §3.2, each with its uncertainty where it has one.

All log-likelihoods are in nats. A "score" is a log-likelihood used for outlier detection.

The detection statistics have a second, *sorted* form for callers that score many samples against
one reference (a family's members against :math:`\mathcal Q^N(p)`): sort each array once, then
:func:`auroc_sorted`, :func:`true_negative_rate_sorted` and :func:`fit_bounds_sorted` count with
binary searches in order, and :func:`binned_kdes` bins the KDEs of many samples in one pass. They
give bitwise the results of :func:`auroc`, :func:`true_negative_rate`, :func:`fit_bounds` and
:func:`kde_binned` (``tests/unit/test_estimators.py`` checks it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.signal import fftconvolve
from scipy.stats import gaussian_kde

from flowcore.rng import numpy_stream
from flowcore.validation import check_int, check_probability

__all__ = [
    "Estimate",
    "mean_estimate",
    "cross_entropy_mc",
    "kl_mc",
    "log_likelihoods",
    "kde",
    "kde_binned",
    "BinnedKDE",
    "binned_kdes",
    "kde_grid",
    "overlap_coefficient",
    "overlap_kdes",
    "Bounds",
    "fit_bounds",
    "fit_bounds_sorted",
    "quantile_sorted",
    "true_negative_rate",
    "true_negative_rate_sorted",
    "auroc",
    "auroc_sorted",
]

#: Elements per block of rows in the batched statistics: a block's temporaries stay at a few
#: tens of MB whatever the number of rows.
_BLOCK = 1 << 21


@dataclass(frozen=True)
class Estimate:
    """A Monte-Carlo estimate and its standard error.

    Example:
        >>> e = Estimate(2.5, 0.5)
        >>> f"{e}", f"{e:.1f}", e.z_score(2.0)
        ('2.5000 ± 0.5000', '2.5 ± 0.5', 1.0)
        >>> e - 1.0
        Estimate(value=1.5, stderr=0.5)
    """

    value: float
    stderr: float

    def __sub__(self, other: float) -> Estimate:
        return Estimate(self.value - float(other), self.stderr)

    def z_score(self, truth: float) -> float:
        """``(value − truth) / stderr``: how many standard errors the estimate is from ``truth``."""
        if self.stderr > 0:
            return (self.value - truth) / self.stderr
        return 0.0 if self.value == truth else math.copysign(math.inf, self.value - truth)

    def __format__(self, spec: str) -> str:
        spec = spec or ".4f"
        return f"{self.value:{spec}} ± {self.stderr:{spec}}"


def _finite_1d(name: str, values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size < 2:
        raise ValueError(f"{name} needs at least 2 values, got {values.size}")
    if not np.isfinite(values).all():
        raise ValueError(
            f"{name} contains NaN or inf "
            f"({np.count_nonzero(~np.isfinite(values))} of {values.size})"
        )
    return values


def _is_sorted(values: np.ndarray) -> bool:
    """Whether each row (the last axis) of ``values`` is in ascending order (false with a NaN)."""
    return bool((values[..., 1:] >= values[..., :-1]).all())


def _sorted_samples(name: str, values, rows: bool = False) -> np.ndarray:
    """``values`` as float64, checked like :func:`_finite_1d` (same messages) and to be sorted in
    ascending order: one sample, or with ``rows`` a 2-D array of samples, each row sorted.

    A sorted array is finite when its first and last values are (``np.sort`` puts NaN last), so
    the check reads two values per row and compares neighbours once.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != (2 if rows else 1):
        shape = "2-D (one sample per row)" if rows else "1-D"
        raise ValueError(f"{name} must be {shape}, got shape {values.shape}")
    n = values.shape[-1]
    if n < 2:
        raise ValueError(f"{name} needs at least 2 values, got {n}")
    ends = np.isfinite(values[..., [0, -1]]).all(axis=-1)
    if not ends.all():
        row = values if values.ndim == 1 else values[int(np.flatnonzero(~ends)[0])]
        raise ValueError(
            f"{name} contains NaN or inf ({np.count_nonzero(~np.isfinite(row))} of {row.size})"
        )
    if not _is_sorted(values):
        raise ValueError(f"{name} must be sorted in ascending order (np.sort{', axis=1' * rows})")
    return values


def mean_estimate(values) -> Estimate:
    r"""Sample mean and its standard error :math:`\hat\sigma/\sqrt N`.

    Example:
        >>> f"{mean_estimate([1.0, 2.0, 3.0, 4.0]):.3f}"
        '2.500 ± 0.645'
    """
    values = _finite_1d("values", values)
    return Estimate(float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size)))


def cross_entropy_mc(log_likelihood) -> Estimate:
    r"""Monte-Carlo cross-entropy (Eq. 14): :math:`H^*(q, p) = -\frac1N\sum_i \log p(x_i)`,
    :math:`x_i \sim q`.

    Args:
        log_likelihood: The values :math:`\log p(x_i)` over a test set drawn from q.

    Example:
        >>> f"{cross_entropy_mc([-1.0, -2.0, -3.0]):.3f}"
        '2.000 ± 0.577'
    """
    m = mean_estimate(log_likelihood)
    return Estimate(-m.value, m.stderr)


def kl_mc(log_likelihood, entropy_q: float) -> Estimate:
    r"""KL estimate of §3.2.2: :math:`D^*_{KL}(q\|p) = H^*(q, p) - H(q)` with :math:`H(q)` exact.

    The standard error is that of :math:`H^*(q, p)`, since :math:`H(q)` is not estimated.

    Example:
        >>> from flowcore import rng
        >>> from flowcore.gaussians import Gaussian
        >>> p = Gaussian(torch.zeros(2), torch.eye(2))
        >>> q = p.affine(1.0, 1.0)  # D_KL(q‖p) = 1 nat
        >>> estimate = kl_mc(p.log_prob(q.sample(10_000, rng.generator(0))), q.entropy())
        >>> round(estimate.value, 1), abs(estimate.z_score(q.kl(p))) < 4
        (1.0, True)
    """
    return cross_entropy_mc(log_likelihood) - entropy_q


@torch.inference_mode()
def log_likelihoods(
    samples: Iterable[torch.Tensor],
    densities: dict[str, Callable[[torch.Tensor], torch.Tensor]],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> dict[str, np.ndarray]:
    """Evaluate every log-density in ``densities`` on the same stream of sample chunks.

    Each chunk is moved to ``device`` in ``dtype`` for callables that are ``nn.Module``
    (the flow); other callables (closed forms) get the float64 chunk on the CPU.
    Returns one float64 array per name, in sample order.

    Example:
        >>> from flowcore import rng
        >>> from flowcore.gaussians import Gaussian
        >>> p = Gaussian(torch.zeros(2), torch.eye(2))
        >>> chunks = p.iter_samples(6, rng.generator(0), chunk_size=4)
        >>> ll = log_likelihoods(
        ...     chunks, {"truth": p.log_prob, "shifted": p.affine(1.0, 1.0).log_prob}
        ... )
        >>> {name: values.shape for name, values in ll.items()}
        {'truth': (6,), 'shifted': (6,)}
        >>> bool(np.allclose(ll["truth"], p.log_prob(p.sample(6, rng.generator(0))).numpy()))
        True
    """
    out: dict[str, list[np.ndarray]] = {name: [] for name in densities}
    for chunk in samples:
        moved = None
        for name, fn in densities.items():
            if isinstance(fn, torch.nn.Module):
                moved = chunk.to(device=device, dtype=dtype) if moved is None else moved
                values = fn.log_prob(moved)
            else:
                values = fn(chunk)
            out[name].append(values.detach().to("cpu", torch.float64).numpy())
    return {name: np.concatenate(parts) for name, parts in out.items()}


def kde(values, grid, max_points: int = 20_000, seed: int = 0) -> np.ndarray:
    """Gaussian KDE (Scott's bandwidth, ``scipy.stats.gaussian_kde``) of ``values`` on ``grid``.

    Above ``max_points`` values a fixed random subsample is used; the KDE's own smoothing
    error dominates the subsampling error there, and evaluation stays fast.

    Example:
        >>> x = numpy_stream(0).standard_normal(1000)
        >>> grid = np.linspace(-5, 5, 201)
        >>> density = kde(x, grid)
        >>> round(float(np.trapezoid(density, grid)), 2), bool(abs(grid[density.argmax()]) < 0.5)
        (1.0, True)
    """
    values = _finite_1d("values", values)
    max_points = check_int("max_points", max_points, minimum=2)
    if values.size > max_points:
        values = numpy_stream(seed).choice(values, max_points, replace=False)
    if np.ptp(values) == 0:
        raise ValueError("values are all equal; a KDE needs some spread")
    return gaussian_kde(values)(np.asarray(grid, dtype=np.float64))


def kde_binned(
    values, grid=None, n_grid: int = 256, n_bins: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian KDE with Scott's bandwidth (as :func:`kde`) of *all* ``values``, by linear binning
    and an FFT.

    The values are spread over ``n_bins`` bins covering their range ±4 bandwidths; convolving the
    bin weights with the Gaussian kernel gives the KDE on the bin centres, which is interpolated
    onto ``grid`` (default: ``n_grid`` points over the same range). Agrees with ``gaussian_kde`` to
    well below a line width, at a cost linear in the number of values. Returns ``(grid, density)``;
    :func:`binned_kdes` gives the same KDEs of many samples at once, to evaluate on any grid.

    Example:
        >>> x = numpy_stream(0).standard_normal(1000)
        >>> grid, density = kde_binned(x, n_grid=512)
        >>> grid.shape, round(float(np.trapezoid(density, grid)), 2)
        ((512,), 1.0)
        >>> bool(np.allclose(density, kde(x, grid), atol=1e-3))
        True
    """
    values = _finite_1d("values", values)
    estimate = binned_kdes(values, n_bins)[0]
    grid = estimate.grid(n_grid) if grid is None else np.asarray(grid, dtype=np.float64)
    return grid, estimate(grid)


@dataclass(frozen=True, eq=False)
class BinnedKDE:
    r"""The binned Gaussian KDE of one sample (:func:`binned_kdes`): its density on ``n_bins``
    equally spaced centres over :math:`[\min - 4h, \max + 4h]`, :math:`h` Scott's bandwidth.

    Calling it on a grid interpolates linearly between the centres (0 outside them), as
    :func:`kde_binned` does.

    Attributes:
        lo, hi: The first and last bin centre: the KDE's own grid is ``np.linspace(lo, hi, n)``.
        centres, density: The bin centres and the KDE on them.
        sample_min, sample_max: The sample's range (:func:`overlap_kdes` integrates over it).

    Example:
        >>> x = numpy_stream(0).standard_normal(1000)
        >>> estimate = binned_kdes(x)[0]
        >>> grid = estimate.grid(512)
        >>> bool(np.array_equal(estimate(grid), kde_binned(x, n_grid=512)[1]))
        True
    """

    lo: float
    hi: float
    centres: np.ndarray
    density: np.ndarray
    sample_min: float
    sample_max: float

    def grid(self, n_grid: int = 256) -> np.ndarray:
        """``n_grid`` equally spaced points from the first to the last bin centre."""
        return np.linspace(self.lo, self.hi, n_grid)

    def __call__(self, grid) -> np.ndarray:
        grid = np.asarray(grid, dtype=np.float64)
        return np.clip(np.interp(grid, self.centres, self.density, left=0.0, right=0.0), 0.0, None)


def binned_kdes(samples, n_bins: int = 4096) -> list[BinnedKDE]:
    r"""The binned Gaussian KDE of each row of ``samples`` (a 2-D array, one sample of ``n``
    values per row; a 1-D array is one sample), as :func:`kde_binned` computes it.

    For a sample :math:`x_1..x_n` with Scott's bandwidth :math:`h = \hat\sigma\, n^{-1/5}`, the
    bins :math:`c_0 < \dots < c_{K-1}` (step :math:`\Delta`) cover
    :math:`[\min x - 4h, \max x + 4h]`; each value gives the weights :math:`1 - f` and :math:`f`
    to the two centres around it (:math:`f` its fractional bin position), and the density on the
    centres is :math:`\hat f(c_k) = \frac1n \sum_j w_j\, \varphi_h(c_k - c_j)`, a convolution
    with the kernel cut at :math:`5h`, done by FFT. The binning (the part linear in :math:`n`)
    runs for a block of rows at once: one ``np.bincount`` over all of them, each row's bins offset
    by ``n_bins``, so every bin sums its values in the same order as for the row alone, and the
    KDEs equal :func:`kde_binned`'s bitwise.

    Example:
        >>> rows = numpy_stream(0).standard_normal((3, 1000)) * [[1.0], [2.0], [0.5]]
        >>> [round(float(np.trapezoid(k(k.grid(512)), k.grid(512))), 2) for k in binned_kdes(rows)]
        [1.0, 1.0, 1.0]
        >>> binned_kdes(np.ones((2, 5)))
        Traceback (most recent call last):
        ...
        ValueError: values are all equal; a KDE needs some spread
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"samples must be 1-D or 2-D (one sample per row), got shape {x.shape}")
    n_bins = check_int("n_bins", n_bins, minimum=2)
    n = x.shape[1]
    if n < 2:
        raise ValueError(f"values needs at least 2 values, got {n}")
    rows = max(1, _BLOCK // n)
    return [
        k
        for start in range(0, len(x), rows)
        for k in _binned_block(x[start : start + rows], n_bins)
    ]


def _binned_block(x: np.ndarray, n_bins: int) -> list[BinnedKDE]:
    """:func:`binned_kdes` of a block of rows: the same arithmetic as one row at a time."""
    m, n = x.shape
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.count_nonzero(~finite, axis=1)
        raise ValueError(f"values contains NaN or inf ({bad[np.flatnonzero(bad)[0]]} of {n})")
    low, high = x.min(axis=1), x.max(axis=1)
    if (high - low == 0).any():
        raise ValueError("values are all equal; a KDE needs some spread")
    h = x.std(axis=1, ddof=1) * n ** (-1 / 5)
    lo, hi = low - 4 * h, high + 4 * h
    centres = [np.linspace(lo[i], hi[i], n_bins) for i in range(m)]
    step = np.array([c[1] - c[0] for c in centres])
    pos = (x - lo[:, None]) / step[:, None]
    left = np.clip(np.floor(pos).astype(np.int64), 0, n_bins - 2)
    frac = pos - left
    del pos
    index = (left + (np.arange(m, dtype=np.int64) * n_bins)[:, None]).ravel()
    del left
    size = m * n_bins
    weights = np.bincount(index, (1 - frac).ravel(), size)
    weights += np.bincount(index + 1, frac.ravel(), size)
    weights = weights.reshape(m, n_bins)
    out = []
    for i in range(m):
        half = min(n_bins - 1, int(np.ceil(5 * h[i] / step[i])))
        offsets = np.arange(-half, half + 1) * step[i]
        kernel = np.exp(-0.5 * (offsets / h[i]) ** 2) / (h[i] * np.sqrt(2 * np.pi))
        density = fftconvolve(weights[i], kernel, mode="same") / n
        out.append(
            BinnedKDE(
                float(lo[i]), float(hi[i]), centres[i], density, float(low[i]), float(high[i])
            )
        )
    return out


def kde_grid(*samples, n: int = 512, pad: float = 0.1) -> np.ndarray:
    """A common evaluation grid covering the central range of several samples (0.1%–99.9%
    quantiles, padded).

    Example:
        >>> x = numpy_stream(0).standard_normal(1000)
        >>> grid = kde_grid(x, x + 1, n=5)
        >>> grid.shape, bool(
        ...     grid[0] < np.quantile(x, 0.001) and grid[-1] > np.quantile(x + 1, 0.999)
        ... )
        ((5,), True)
    """
    lo = min(np.quantile(s, 0.001) for s in samples)
    hi = max(np.quantile(s, 0.999) for s in samples)
    width = hi - lo if hi > lo else 1.0
    return np.linspace(lo - pad * width, hi + pad * width, n)


def overlap_coefficient(a, b, n_grid: int = 4096) -> float:
    r"""Overlap coefficient :math:`\mathrm{OVL} = \int \min(f_a, f_b)` of two samples' KDEs
    (Inman & Bradley).

    1 means identical distributions, 0 disjoint ones. The integral runs on a grid that covers
    both samples entirely (so tails are included) with the trapezoidal rule. The KDEs are
    :func:`kde_binned`'s; :func:`overlap_kdes` takes them ready-made.

    Example:
        >>> a = numpy_stream(0).standard_normal(1000)
        >>> b = numpy_stream(1).standard_normal(1000)
        >>> round(overlap_coefficient(a, b), 1), round(overlap_coefficient(a, b + 10), 1)
        (1.0, 0.0)
    """
    a = _finite_1d("a", a)
    b = _finite_1d("b", b)
    return overlap_kdes(binned_kdes(a)[0], binned_kdes(b)[0], n_grid)


def overlap_kdes(a: BinnedKDE, b: BinnedKDE, n_grid: int = 4096) -> float:
    r""":func:`overlap_coefficient` of two samples from their KDEs (:func:`binned_kdes`), so a KDE
    compared with several others is computed once.

    The grid runs over both samples' range :math:`[lo, hi]` widened by a quarter of its span on
    each side, ``n_grid`` points; :math:`\int\min(f_a, f_b)` by the trapezoidal rule, clipped to
    :math:`[0, 1]`.

    Example:
        >>> a, b = (numpy_stream(seed).standard_normal(1000) for seed in (0, 1))
        >>> overlap_kdes(*binned_kdes(np.stack([a, b]))) == overlap_coefficient(a, b)
        True
    """
    lo, hi = min(a.sample_min, b.sample_min), max(a.sample_max, b.sample_max)
    span = hi - lo if hi > lo else 1.0
    grid = np.linspace(lo - 0.25 * span, hi + 0.25 * span, n_grid)
    overlap = np.minimum(a(grid), b(grid))
    return float(np.clip(np.trapezoid(overlap, grid), 0.0, 1.0))


@dataclass(frozen=True)
class Bounds:
    """The likelihood bounds ``[lower, upper]`` of the two-sided detector of thesis §8.1.

    Example:
        >>> Bounds(lower=-2.0, upper=2.0, tpr=0.95).is_outlier([-3.0, 0.0, 3.0]).tolist()
        [True, False, True]
    """

    lower: float
    upper: float
    tpr: float

    def is_outlier(self, scores) -> np.ndarray:
        r""":math:`D_{out}(x) = 1` if :math:`\log p_\theta(x) < L` or
        :math:`\log p_\theta(x) > U`."""
        scores = np.asarray(scores, dtype=np.float64)
        return (scores < self.lower) | (scores > self.upper)


def fit_bounds(train_scores, tpr: float = 0.975) -> Bounds:
    r"""Equal-tailed bounds on training scores: :math:`L, U` = the
    :math:`\tfrac{1-\mathrm{TPR}}2` and :math:`\tfrac{1+\mathrm{TPR}}2` quantiles, so a fraction
    TPR of training scores lies inside.

    Example:
        >>> bounds = fit_bounds(np.arange(101), tpr=0.9)
        >>> round(bounds.lower, 6), round(bounds.upper, 6), bounds.tpr
        (5.0, 95.0, 0.9)
    """
    tpr = check_probability("tpr", tpr)
    scores = _finite_1d("train_scores", train_scores)
    lower, upper = np.quantile(scores, [(1 - tpr) / 2, (1 + tpr) / 2])
    return Bounds(float(lower), float(upper), tpr)


def fit_bounds_sorted(sorted_train_scores, tpr: float = 0.975) -> Bounds:
    """:func:`fit_bounds` of training scores already sorted (``np.sort``): the two quantiles read
    off the sorted array (:func:`quantile_sorted`), bitwise those of ``np.quantile``.

    Example:
        >>> x = numpy_stream(0).standard_normal(1001)
        >>> fit_bounds_sorted(np.sort(x), 0.9) == fit_bounds(x, 0.9)
        True
    """
    tpr = check_probability("tpr", tpr)
    scores = _sorted_samples("train_scores", sorted_train_scores)
    lower, upper = _quantile_sorted(scores, np.array([(1 - tpr) / 2, (1 + tpr) / 2]))
    return Bounds(float(lower), float(upper), tpr)


def quantile_sorted(sorted_values, q):
    r"""``np.quantile(values, q)`` (its default "linear" method) of a sorted sample, without
    partitioning it again.

    For :math:`n` sorted values :math:`x_0 \le \dots \le x_{n-1}`, the quantile :math:`q` sits at
    the virtual index :math:`v = (n-1)q`, :math:`i = \lfloor v\rfloor`, :math:`\gamma = v - i`:
    :math:`x_i + \gamma(x_{i+1} - x_i)`, computed as :math:`x_{i+1} - (1-\gamma)(x_{i+1} - x_i)`
    when :math:`\gamma \ge \tfrac12` (NumPy's own two formulas, so the result is bitwise
    NumPy's). Returns a float for a scalar ``q``, else an array of ``q``'s shape.

    Example:
        >>> x, q = [1.0, 2.0, 4.0, 8.0], [0.0, 0.5, 0.9, 1.0]
        >>> quantile_sorted(x, q).tolist(), bool((quantile_sorted(x, q) == np.quantile(x, q)).all())
        ([1.0, 3.0, 6.800000000000001, 8.0], True)
        >>> quantile_sorted([3.0, 1.0], 0.5)
        Traceback (most recent call last):
        ...
        ValueError: values must be sorted in ascending order (np.sort)
    """
    values = _sorted_samples("values", sorted_values)
    q = np.asarray(q, dtype=np.float64)
    if not ((q >= 0) & (q <= 1)).all():
        raise ValueError(f"q must lie in [0, 1], got {q.tolist()}")
    out = _quantile_sorted(values, np.atleast_1d(q))
    return float(out[0]) if q.ndim == 0 else out.reshape(q.shape)


def _quantile_sorted(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """:func:`quantile_sorted` without the checks (``q`` 1-D, in [0, 1])."""
    n = values.size
    virtual = (n - 1) * q
    above = virtual >= n - 1  # the last value; NumPy then takes index -1 with γ = v + 1
    previous = np.where(above, -1, np.floor(virtual)).astype(np.intp)
    following = np.where(above, -1, previous + 1)
    gamma = virtual - previous
    a, b = values[previous], values[following]
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def true_negative_rate(bounds: Bounds, test_scores) -> float:
    """Fraction of (out-of-distribution) test scores that fall outside the bounds.

    Example:
        >>> true_negative_rate(Bounds(lower=-2.0, upper=2.0, tpr=0.95), [-3.0, 0.0, 1.0, 5.0])
        0.5
    """
    return float(bounds.is_outlier(_finite_1d("test_scores", test_scores)).mean())


def true_negative_rate_sorted(bounds: Bounds, sorted_test_scores):
    r""":func:`true_negative_rate` of test scores already sorted (``np.sort``), by two binary
    searches instead of a pass: with :math:`n` scores, :math:`i_L` = #(scores < L) and
    :math:`i_U` = #(scores ≤ U), the rate is :math:`(n - \max(0, i_U - i_L)) / n`, the same
    count and division as :func:`true_negative_rate` (bitwise). A 2-D array is one sample per
    row (each row sorted); then the rates come as an array.

    Example:
        >>> bounds = Bounds(lower=-2.0, upper=2.0, tpr=0.95)
        >>> true_negative_rate_sorted(bounds, [-3.0, 0.0, 1.0, 5.0])
        0.5
        >>> rows = [[-3.0, -2.0, 2.0, 2.5], [0.0, 0.5, 1.0, 1.5]]
        >>> true_negative_rate_sorted(bounds, rows).tolist()
        [0.5, 0.0]
    """
    values = np.asarray(sorted_test_scores, dtype=np.float64)
    values = _sorted_samples("test_scores", values, rows=values.ndim == 2)
    n = values.shape[-1]
    rows = values.reshape(-1, n)
    if math.isnan(bounds.lower) or math.isnan(bounds.upper):  # no order to search in
        rates = bounds.is_outlier(rows).mean(axis=1)
    else:
        inside = [
            max(
                0,
                int(np.searchsorted(row, bounds.upper, side="right"))
                - int(np.searchsorted(row, bounds.lower, side="left")),
            )
            for row in rows
        ]
        rates = (n - np.array(inside, dtype=np.int64)) / n
    return float(rates[0]) if values.ndim == 1 else rates


def auroc(in_scores, out_scores) -> float:
    r"""AUROC of a score that should be *higher* in-distribution (the Mann–Whitney statistic).

    0.5 means the score does not separate the sets; 1 perfect separation; below 0.5 the
    out-of-distribution set scores higher than the in-distribution one. With :math:`a` the
    :math:`n_a` in-distribution scores and :math:`b` the :math:`n_b` others, ties counting half:

    .. math:: \mathrm{AUROC} = \frac{U}{n_a n_b}, \qquad
        U = \sum_j \#\{i: a_i > b_j\} + \tfrac12\#\{i: a_i = b_j\},

    counted in integers by binary searches in the sorted :math:`a` (see :func:`auroc_sorted`), so
    :math:`2U` is exact; then :math:`U / n_b / n_a` (two divisions, in that order).

    Example:
        >>> auroc([3, 4, 5], [1, 2]), auroc([1, 2], [1, 2]), auroc([1, 2], [3, 4])
        (1.0, 0.5, 0.0)
    """
    a = _finite_1d("in_scores", in_scores)
    if not _is_sorted(a):
        a = np.sort(a)
    b = _finite_1d("out_scores", out_scores)
    return float(_twice_mann_whitney(a, b) / 2 / b.size / a.size)


def auroc_sorted(sorted_in_scores, out_scores):
    r""":func:`auroc` with the in-distribution scores already sorted (``np.sort``), for many
    out-of-distribution samples at once: ``out_scores`` 1-D (one sample: a float) or 2-D (one
    sample per row: an array of AUROCs). Bitwise :func:`auroc`'s values.

    :math:`2U = 2 n_a n_b - \sum_j (\#\{a \le b_j\} + \#\{a < b_j\})`: one binary search per
    score for :math:`\#\{a \le b_j\}`; a second one only for the scores equal to some
    :math:`a_i` (where :math:`a` just below the found position equals :math:`b_j`), since elsewhere
    the two counts agree. Rows of ``out_scores`` sorted too make the searches run in order
    (cache-friendly), but any order gives the same result.

    Example:
        >>> a = np.sort(numpy_stream(0).standard_normal(500))
        >>> b = numpy_stream(1).standard_normal((3, 400)).round(1) + [[-1.0], [0.0], [1.0]]
        >>> values = auroc_sorted(a, np.sort(b, axis=1))
        >>> values.round(2).tolist(), bool(values[2] == auroc(a, b[2]))
        ([0.79, 0.51, 0.24], True)
    """
    a = _sorted_samples("in_scores", sorted_in_scores)
    b = np.asarray(out_scores, dtype=np.float64)
    if b.ndim == 1:
        return float(_twice_mann_whitney(a, _finite_1d("out_scores", b)) / 2 / b.size / a.size)
    if b.ndim != 2 or b.shape[1] < 2:
        raise ValueError(
            f"out_scores must be 1-D or 2-D with at least 2 values per row, got {b.shape}"
        )
    finite = np.isfinite(b).all(axis=1)
    if not finite.all():
        row = b[int(np.flatnonzero(~finite)[0])]
        raise ValueError(
            f"out_scores contains NaN or inf ({np.count_nonzero(~np.isfinite(row))} of {row.size})"
        )
    return _twice_mann_whitney(a, b) / 2 / b.shape[1] / a.size


def _twice_mann_whitney(a: np.ndarray, b: np.ndarray):
    """:math:`2U`, an exact integer, of sorted ``a`` against each row of ``b`` (:func:`auroc`)."""
    at_most = np.searchsorted(a, b, side="right")  # #{a ≤ b_j}
    tied = (at_most > 0) & (a.take(at_most - 1, mode="clip") == b)
    below = at_most  # #{a < b_j}: the same where b_j equals no a_i
    if tied.any():
        below = at_most.copy()
        below[tied] = np.searchsorted(a, b[tied], side="left")
    return 2 * a.size * b.shape[-1] - at_most.sum(axis=-1) - below.sum(axis=-1)
