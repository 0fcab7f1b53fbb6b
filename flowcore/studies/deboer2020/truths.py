r"""The known laws of de Boer (2020) and the measures that compare a model or its samples with them.

**The synthetic law.** :class:`PowerGaussian` is the law of :math:`x = u^\psi` componentwise,
:math:`u \sim \mathcal N(0, I_D)`, :math:`\psi \in \mathbb N_{\ge 1}`. The coordinates are
independent; each has :math:`m` preimages :math:`u`, all of modulus :math:`|x|^{1/\psi}`
(:math:`m = 1` for odd :math:`\psi`, :math:`u = \operatorname{sign}(x)|x|^{1/\psi}`, support
:math:`\mathbb R`; :math:`m = 2` for even :math:`\psi`, :math:`u = \pm x^{1/\psi}`, support
:math:`x \ge 0`). Summing :math:`\varphi(u)/|\mathrm d x/\mathrm d u|` over the preimages,

.. math::
    \log p_1(x) = \log\varphi(u) + \log m - \log\psi - (\psi - 1)\log|u|
    = -\tfrac12 |x|^{2/\psi} - \tfrac12\log 2\pi + \log m - \log\psi - (1 - \tfrac1\psi)\log|x|,

and :math:`\log p(x) = \sum_{j=1}^D \log p_1(x_j)`. Its expectation (the negative entropy, the best
expected test log-likelihood any model can reach: :math:`\mathbb E_p \log q \le \mathbb E_p \log p`)
uses :math:`\mathbb E\log\varphi(u) = -\tfrac12(1 + \log 2\pi)` and
:math:`\mathbb E\log|u| = -\tfrac12(\gamma + \log 2)` for :math:`u \sim \mathcal N(0, 1)`
(:math:`\gamma` Euler's constant):

.. math::
    \mathbb E\log p(x) = D\Big[-\tfrac12(1 + \log 2\pi) + \log m - \log\psi
    + \tfrac{\psi - 1}{2}(\gamma + \log 2)\Big].

**Sample quality.** :func:`ks_per_coordinate` (Kolmogorov–Smirnov per coordinate against
:meth:`PowerGaussian.cdf_1d`) and :func:`energy_distance` (multivariate, between two samples).

**Half-moons.** :func:`moons_mass_outside` — the mass a model puts where the true two-moons density
of :func:`flowcore.studies.song2024.deep.truth` is negligible (the "bridge" between the moons).

**Images.** :func:`pca_components` — how many principal components hold a given fraction of the
variance.

Every random draw comes from a generator passed in or derived from a seed by :mod:`flowcore.rng`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from scipy import special, stats
from torch import Tensor

from flowcore import rng
from flowcore.validation import check_int, check_real, check_real_list, checked, validate_fields

__all__ = [
    "PowerGaussian",
    "ks_per_coordinate",
    "energy_distance",
    "GridMass",
    "moons_mass_outside",
    "pca_components",
]

DTYPE = torch.float64
#: Rows per block when a density is evaluated on a grid (bounds the moons' (rows × 4000) distance
#: matrix).
_CHUNK = 1024


def _as_numpy(x) -> np.ndarray:
    """``x`` (array-like or tensor) as a float64 NumPy array."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _as_tensor(x) -> Tensor:
    """``x`` (array-like or tensor) as a float64 CPU tensor."""
    if isinstance(x, Tensor):
        return x.detach().to(device="cpu", dtype=DTYPE)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


@dataclass(frozen=True)
class PowerGaussian:
    r"""The law of :math:`x = u^\psi` componentwise, :math:`u \sim \mathcal N(0, I_D)` (``dim``
    :math:`= D`).

    ``psi = 1`` is the standard Gaussian; even ``psi`` folds the line (two preimages
    :math:`\pm x^{1/\psi}`, support :math:`x \ge 0`); odd ``psi > 1`` is a bijection whose inverse
    is not differentiable at 0.

    Example:
        >>> law = PowerGaussian(dim=2, psi=2)
        >>> x = law.sample(5, rng.generator(0))
        >>> x.shape, x.dtype, bool((x >= 0).all())
        (torch.Size([5, 2]), torch.float64, True)
        >>> round(law.expected_log_likelihood(), 4)
        -1.5675
    """

    dim: int = field(metadata=checked(check_int, minimum=1))
    psi: int = field(metadata=checked(check_int, minimum=1))

    def __post_init__(self):
        validate_fields(self)

    @property
    def n_preimages(self) -> int:
        r"""The number :math:`m` of preimages :math:`u` of a point in the support: 2 for even
        :math:`\psi`, else 1.

        Example:
            >>> PowerGaussian(1, 2).n_preimages, PowerGaussian(1, 3).n_preimages
            (2, 1)
        """
        return 2 if self.psi % 2 == 0 else 1

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        r"""``n`` draws :math:`x = u^\psi`, :math:`u \sim \mathcal N(0, I_D)` from ``generator``,
        float64, shape ``(n, dim)``.

        Example:
            >>> a = PowerGaussian(3, 3).sample(4, rng.generator(1))
            >>> torch.equal(a, PowerGaussian(3, 3).sample(4, rng.generator(1))), a.shape
            (True, torch.Size([4, 3]))
        """
        n = check_int("n", n, minimum=1)
        u = torch.randn(n, self.dim, generator=generator, dtype=DTYPE)
        return u**self.psi

    def log_prob_1d(self, x) -> Tensor:
        r"""The 1-D log-density :math:`\log p_1(x)` elementwise (same shape as ``x``, float64).

        .. math::
            \log p_1(x) = -\tfrac12|x|^{2/\psi} - \tfrac12\log 2\pi + \log m - \log\psi
            - (1 - \tfrac1\psi)\log|x|

        on the support, :math:`-\infty` off it (:math:`x < 0` for even :math:`\psi`). **At**
        :math:`x = 0` the density of :math:`\psi \ge 2` diverges like :math:`|x|^{-(1 - 1/\psi)}`
        (integrably); the value returned there is its limit :math:`+\infty`. The point has
        probability 0, and a float64 sample hits it only if :math:`|u|^\psi` underflows
        (:math:`|u| < 10^{-154}` for :math:`\psi = 2`), so a finite sample's mean log-likelihood is
        finite; a model evaluated *at* 0 must not be compared with it.

        Example:
            >>> PowerGaussian(1, 2).log_prob_1d(torch.tensor([-1.0, 0.0, 1.0]))
            tensor([   -inf,     inf, -1.4189], dtype=torch.float64)
        """
        x = _as_tensor(x)
        absx = x.abs()
        log_density = (
            -0.5 * absx ** (2.0 / self.psi)
            - 0.5 * math.log(2 * math.pi)
            + math.log(self.n_preimages)
            - math.log(self.psi)
        )
        if self.psi > 1:  # for ψ = 1 the term is 0·log|x|, which is nan at x = 0
            log_density = log_density - (1.0 - 1.0 / self.psi) * torch.log(absx)
        if self.psi % 2 == 0:
            log_density = torch.where(x < 0, torch.full_like(x, -math.inf), log_density)
        return log_density

    def log_prob(self, x) -> Tensor:
        r"""The log-density :math:`\sum_j \log p_1(x_j)` of each row of ``x``
        (``(n, dim)`` → ``(n,)``, float64).

        A row with any coordinate off the support is :math:`-\infty` (even if another coordinate is
        0, where :math:`\log p_1 = +\infty`; see :meth:`log_prob_1d`).

        Example:
            >>> law = PowerGaussian(2, 2)
            >>> law.log_prob(torch.tensor([[1.0, 1.0], [0.0, -1.0]]))
            tensor([-2.8379,    -inf], dtype=torch.float64)
            >>> round(float(PowerGaussian(2, 1).log_prob(torch.zeros(1, 2))), 4)  # −log 2π
            -1.8379
        """
        x = _as_tensor(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        per_coordinate = self.log_prob_1d(x)
        total = per_coordinate.sum(1)
        outside = (per_coordinate == -math.inf).any(1)
        return torch.where(outside, torch.full_like(total, -math.inf), total)

    def cdf_1d(self, x) -> np.ndarray:
        r"""The CDF of one coordinate, elementwise (same shape as ``x``, float64 ``ndarray``).

        .. math::
            F(x) = \Phi\big(\operatorname{sign}(x)|x|^{1/\psi}\big)\ (\psi\text{ odd}), \qquad
            F(x) = \big(2\Phi(x^{1/\psi}) - 1\big)\,[x > 0]
            = \operatorname{erf}\!\big(x^{1/\psi}/\sqrt2\big)\,[x > 0]\ (\psi\text{ even}).

        Example:
            >>> PowerGaussian(1, 3).cdf_1d([-8.0, 0.0, 1.0]).round(4)
            array([0.0228, 0.5   , 0.8413])
            >>> PowerGaussian(1, 2).cdf_1d([-1.0, 0.0, 1.0]).round(4)
            array([0.    , 0.    , 0.6827])
        """
        x = _as_numpy(x)
        root = np.abs(x) ** (1.0 / self.psi)
        if self.psi % 2 == 1:
            return special.ndtr(np.sign(x) * root)
        return np.where(x > 0, special.erf(root / math.sqrt(2.0)), 0.0)

    def expected_log_likelihood(self) -> float:
        r"""The exact :math:`\mathbb E_p \log p(x)` (nats), the highest expected log-likelihood of
        any model:

        .. math::
            D\Big[-\tfrac12(1 + \log 2\pi) + \log m - \log\psi
            + \tfrac{\psi - 1}{2}(\gamma + \log 2)\Big],

        from :math:`\log p_1 = \log\varphi(u) + \log m - \log\psi - (\psi - 1)\log|u|` with
        :math:`\mathbb E\log\varphi(u) = -\tfrac12(1 + \log 2\pi)` and
        :math:`\mathbb E\log|u| = -\tfrac12(\gamma + \log 2)`, :math:`u \sim \mathcal N(0, 1)`.

        Example:
            >>> [round(PowerGaussian(2, psi).expected_log_likelihood(), 4) for psi in (1, 2, 3)]
            [-2.8379, -1.5675, -2.4944]
        """
        e_log_phi = -0.5 * (1.0 + math.log(2 * math.pi))
        e_log_abs_u = -0.5 * (np.euler_gamma + math.log(2.0))
        per_coordinate = (
            e_log_phi
            + math.log(self.n_preimages)
            - math.log(self.psi)
            - (self.psi - 1) * e_log_abs_u
        )
        return float(self.dim * per_coordinate)

    def entropy(self) -> float:
        r"""The differential entropy :math:`H(p) = -\mathbb E_p\log p(x)` (nats).

        Example:
            >>> round(PowerGaussian(1, 1).entropy(), 4)  # ½(1 + log 2π)
            1.4189
        """
        return -self.expected_log_likelihood()


def ks_per_coordinate(samples, truth: PowerGaussian) -> np.ndarray:
    r"""The Kolmogorov–Smirnov statistic :math:`\sup_t |\hat F_j(t) - F(t)|` of each coordinate
    ``j`` of ``samples`` (``(n, dim)``) against the true 1-D CDF :meth:`PowerGaussian.cdf_1d`; shape
    ``(dim,)``.

    Under the truth it is :math:`O(n^{-1/2})` (the 5 % critical value is about
    :math:`1.36/\sqrt n`).

    Example:
        >>> law = PowerGaussian(2, 3)
        >>> bool((ks_per_coordinate(law.sample(2000, rng.generator(0)), law) < 0.05).all())
        True
        >>> bool((ks_per_coordinate(
        ...     PowerGaussian(2, 1).sample(2000, rng.generator(0)), law
        ... ) > 0.1).all())
        True
    """
    x = _as_numpy(samples)
    if x.ndim != 2 or x.shape[1] != truth.dim or len(x) < 1:
        raise ValueError(f"samples must have shape (n ≥ 1, {truth.dim}), got {x.shape}")
    return np.array([stats.kstest(x[:, j], truth.cdf_1d).statistic for j in range(truth.dim)])


def energy_distance(a, b, max_points: int = 2000, seed: int = 0) -> float:
    r"""The (squared) energy distance
    :math:`2\,\mathbb E\|X - Y\| - \mathbb E\|X - X'\| - \mathbb E\|Y - Y'\|` between the laws of
    the samples ``a`` (``(n, d)``) and ``b`` (``(m, d)``), estimated by the **U-statistic**

    .. math::
        \frac{2}{nm}\sum_{i,k}\|a_i - b_k\| - \frac{1}{n(n-1)}\sum_{i \ne i'}\|a_i - a_{i'}\|
        - \frac{1}{m(m-1)}\sum_{k \ne k'}\|b_k - b_{k'}\|,

    which is unbiased: its mean is 0 when the laws are equal (so it can be slightly negative), with
    no :math:`O(1/n)` positive bias as the V-statistic has. The population value is ≥ 0, and 0
    exactly when the laws are equal. A sample longer than ``max_points`` is first subsampled without
    replacement by ``rng.numpy_stream(seed)`` (``a`` first, then ``b``). This is not SciPy's 1-D
    ``energy_distance``, which is the square root of this quantity, 1-D only, and a V-statistic.

    Example:
        >>> law, other = PowerGaussian(2, 1), PowerGaussian(2, 3)
        >>> x, y = law.sample(1000, rng.generator(0)), law.sample(1000, rng.generator(1))
        >>> (abs(energy_distance(x, y)) < 0.01,
        ...  energy_distance(x, other.sample(1000, rng.generator(2))) > 0.05)
        (True, True)
    """
    max_points = check_int("max_points", max_points, minimum=2)
    generator = rng.numpy_stream(check_int("seed", seed, minimum=0))
    samples = []
    for name, s in (("a", a), ("b", b)):
        s = _as_tensor(s)
        s = s[:, None] if s.ndim == 1 else s
        if s.ndim != 2 or len(s) < 2:
            raise ValueError(f"{name} must have shape (n ≥ 2, d), got {tuple(s.shape)}")
        if len(s) > max_points:
            s = s[torch.from_numpy(generator.choice(len(s), max_points, replace=False))]
        samples.append(s)
    a, b = samples
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same dimension, got {a.shape[1]} and {b.shape[1]}")

    def mean_distance(x: Tensor, y: Tensor, same: bool) -> float:
        d = torch.cdist(
            x, y, compute_mode="donot_use_mm_for_euclid_dist"
        )  # exact zeros on the diagonal
        return float(d.sum() / (len(x) * (len(x) - 1) if same else d.numel()))

    return 2 * mean_distance(a, b, False) - mean_distance(a, a, True) - mean_distance(b, b, True)


class GridMass(NamedTuple):
    """The model's mass on the grid where the truth is negligible (``outside``) and on the whole
    grid (``total``), both over the cells where the model's log-density is resolved (finite or −∞),
    and the number of cells where it is not (NaN or +∞: ``unresolved``).

    Example:
        >>> m = GridMass(outside=0.04, total=0.97, unresolved=12)
        >>> # the 0.03 unaccounted for could all lie where the truth is negligible
        ... round(m.most_outside, 2)
        0.07
    """

    outside: float
    total: float
    unresolved: int = 0

    @property
    def most_outside(self) -> float:
        r"""The most mass the model can put where the truth is negligible, counting the grid's
        unresolved cells and everything off the grid there:
        :math:`M_\text{out} + \max(0, 1 - M_\text{grid})` (the model's mass is 1)."""
        return self.outside + max(0.0, 1.0 - self.total)


def _on_grid(log_density: Callable[[Tensor], Tensor], points: Tensor) -> Tensor:
    """``log_density`` of the rows of ``points``, in blocks of :data:`_CHUNK` rows, without
    autograd."""
    with torch.no_grad():
        return torch.cat(
            [_as_tensor(log_density(block)).reshape(-1) for block in points.split(_CHUNK)]
        )


def moons_mass_outside(
    log_prob_model: Callable[[Tensor], Tensor],
    threshold_log_density: float,
    grid_extent: Sequence[float],
    n_grid: int = 200,
) -> GridMass:
    r"""The probability mass a model :math:`q` puts where the true two-moons density :math:`p^*`
    (:func:`flowcore.studies.song2024.deep.truth` ``("moons")``, noise
    :data:`~flowcore.studies.song2024.deep.MOONS_NOISE`) is below :math:`e^\tau`
    (``threshold_log_density``):

    .. math::
        M_\text{out} = \int_{p^*(x) < e^\tau} q(x)\,\mathrm dx
        \approx \sum_{c:\ \log p^*(x_c) < \tau} q(x_c)\,\Delta A,
        \qquad M_\text{grid} = \sum_c q(x_c)\,\Delta A,

    by the midpoint rule on the ``n_grid`` × ``n_grid`` cells of centre :math:`x_c` and area
    :math:`\Delta A` covering ``grid_extent = (xmin, xmax, ymin, ymax)``.
    :math:`M_\text{grid} \approx 1` shows the grid holds the model's mass; what it misses,
    :math:`1 - M_\text{grid}`, lies outside the box, where the truth is negligible too if the box
    covers the moons, so :math:`M_\text{out} + 1 - M_\text{grid}` is the complete count. A cell
    where the model's log-density is NaN or :math:`+\infty` (an overflow of the flow far from the
    data) is *unresolved*: it is left out of both sums and counted, and
    :attr:`GridMass.most_outside` bounds what it may hold. ``log_prob_model`` maps a float64
    ``(k, 2)`` tensor to ``(k,)`` log-densities; it is called in blocks of 1024 rows without
    autograd. The truth costs ``n_grid``² × 4000 kernel evaluations (seconds at the default 200; the
    truth's own ``outside`` is 3.4e-4 at :math:`\tau = \log 10^{-3}`).

    Example:
        >>> from flowcore.studies.song2024.deep import truth
        >>> m = moons_mass_outside(
        ...     truth("moons").log_prob, math.log(1e-3), (-1.5, 2.5, -1.0, 1.5), n_grid=100
        ... )
        >>> m.outside < 1e-3, abs(m.total - 1) < 1e-3
        (True, True)
    """
    from flowcore.studies.song2024.deep import (
        truth,
    )  # imported here: deep pulls in the training stack

    threshold = check_real("threshold_log_density", threshold_log_density)
    n_grid = check_int("n_grid", n_grid, minimum=2)
    extent = check_real_list("grid_extent", grid_extent)
    if len(extent) != 4 or not (extent[0] < extent[1] and extent[2] < extent[3]):
        raise ValueError(
            "grid_extent must be (xmin, xmax, ymin, ymax) with xmin < xmax and ymin < ymax, got "
            f"{grid_extent!r}"
        )
    xmin, xmax, ymin, ymax = extent
    dx, dy = (xmax - xmin) / n_grid, (ymax - ymin) / n_grid
    xs = xmin + dx * (torch.arange(n_grid, dtype=DTYPE) + 0.5)
    ys = ymin + dy * (torch.arange(n_grid, dtype=DTYPE) + 0.5)
    points = torch.cartesian_prod(xs, ys)
    negligible = _on_grid(truth("moons").log_prob, points) < threshold
    log_q = _on_grid(log_prob_model, points)
    if len(log_q) != len(points):
        raise ValueError(
            f"log_prob_model must map (k, 2) to (k,), got {len(log_q)} values for {len(points)} "
            "points"
        )
    resolved = ~(torch.isnan(log_q) | (log_q == math.inf))
    q = torch.where(resolved, torch.exp(log_q), torch.zeros_like(log_q))
    return GridMass(
        outside=float(q[negligible].sum() * dx * dy),
        total=float(q.sum() * dx * dy),
        unresolved=int((~resolved).sum()),
    )


def pca_components(X, levels: Sequence[float] = (0.95, 0.999)) -> dict[float, int]:
    r"""For each level :math:`\ell`, the fewest principal components :math:`k` of the rows of ``X``
    (``(n, d)``) whose variances :math:`\lambda_1 \ge \lambda_2 \ge \dots` (eigenvalues of the
    sample covariance) hold at least the fraction :math:`\ell \in (0, 1]` of the total:

    .. math::
        k(\ell) = \min\Big\{k : \textstyle\sum_{i \le k}\lambda_i \ge \ell\sum_i\lambda_i\Big\}

    (compared with a tolerance of :math:`10^{-12}`, so a level hit exactly counts as reached).

    Example:
        >>> from sklearn.datasets import load_digits
        >>> pca_components(load_digits().data)  # the 8×8 digits: 64 pixels, 3 of them constant
        {0.95: 29, 0.999: 49}
    """
    levels = check_real_list("levels", levels, positive=True)
    if any(level > 1 for level in levels):
        raise ValueError(f"levels must lie in (0, 1], got {levels}")
    x = _as_numpy(X)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"X must have shape (n ≥ 2, d), got {x.shape}")
    variances = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2  # descending
    if not variances.sum() > 0:
        raise ValueError("X has no variance")
    cumulative = np.cumsum(variances) / variances.sum()
    return {
        level: min(
            int(np.searchsorted(cumulative, level - 1e-12, side="left")) + 1, len(cumulative)
        )
        for level in levels
    }
