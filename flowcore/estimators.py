r"""Estimators of thesis §3.2, each with its uncertainty where it has one.

All log-likelihoods are in nats. A "score" is a log-likelihood used for outlier detection.
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
    "kde_grid",
    "overlap_coefficient",
    "Bounds",
    "fit_bounds",
    "true_negative_rate",
    "auroc",
]


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
    well below a line width, at a cost linear in the number of values. Returns ``(grid, density)``.

    Example:
        >>> x = numpy_stream(0).standard_normal(1000)
        >>> grid, density = kde_binned(x, n_grid=512)
        >>> grid.shape, round(float(np.trapezoid(density, grid)), 2)
        ((512,), 1.0)
        >>> bool(np.allclose(density, kde(x, grid), atol=1e-3))
        True
    """
    values = _finite_1d("values", values)
    if np.ptp(values) == 0:
        raise ValueError("values are all equal; a KDE needs some spread")
    h = values.std(ddof=1) * values.size ** (-1 / 5)
    lo, hi = values.min() - 4 * h, values.max() + 4 * h
    centres = np.linspace(lo, hi, n_bins)
    step = centres[1] - centres[0]
    pos = (values - lo) / step
    left = np.clip(np.floor(pos).astype(np.int64), 0, n_bins - 2)
    frac = pos - left
    weights = np.bincount(left, 1 - frac, n_bins) + np.bincount(left + 1, frac, n_bins)
    half = min(n_bins - 1, int(np.ceil(5 * h / step)))
    offsets = np.arange(-half, half + 1) * step
    kernel = np.exp(-0.5 * (offsets / h) ** 2) / (h * np.sqrt(2 * np.pi))
    density = fftconvolve(weights, kernel, mode="same") / values.size
    grid = np.linspace(lo, hi, n_grid) if grid is None else np.asarray(grid, dtype=np.float64)
    return grid, np.clip(np.interp(grid, centres, density, left=0.0, right=0.0), 0.0, None)


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
    both samples entirely (so tails are included) with the trapezoidal rule.

    Example:
        >>> a = numpy_stream(0).standard_normal(1000)
        >>> b = numpy_stream(1).standard_normal(1000)
        >>> round(overlap_coefficient(a, b), 1), round(overlap_coefficient(a, b + 10), 1)
        (1.0, 0.0)
    """
    a = _finite_1d("a", a)
    b = _finite_1d("b", b)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    span = hi - lo if hi > lo else 1.0
    grid = np.linspace(lo - 0.25 * span, hi + 0.25 * span, n_grid)
    overlap = np.minimum(kde_binned(a, grid)[1], kde_binned(b, grid)[1])
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


def true_negative_rate(bounds: Bounds, test_scores) -> float:
    """Fraction of (out-of-distribution) test scores that fall outside the bounds.

    Example:
        >>> true_negative_rate(Bounds(lower=-2.0, upper=2.0, tpr=0.95), [-3.0, 0.0, 1.0, 5.0])
        0.5
    """
    return float(bounds.is_outlier(_finite_1d("test_scores", test_scores)).mean())


def auroc(in_scores, out_scores) -> float:
    """AUROC of a score that should be *higher* in-distribution (the Mann–Whitney statistic).

    0.5 means the score does not separate the sets; 1 perfect separation; below 0.5 the
    out-of-distribution set scores higher than the in-distribution one.

    Example:
        >>> auroc([3, 4, 5], [1, 2]), auroc([1, 2], [1, 2]), auroc([1, 2], [3, 4])
        (1.0, 0.5, 0.0)
    """
    a = np.sort(_finite_1d("in_scores", in_scores))
    b = _finite_1d("out_scores", out_scores)
    # Mann–Whitney: P(in > out) + ½ P(in = out), counted with two binary searches per out-score.
    below = np.searchsorted(a, b, side="left")
    at_most = np.searchsorted(a, b, side="right")
    return float(np.mean((a.size - at_most) + 0.5 * (at_most - below)) / a.size)
