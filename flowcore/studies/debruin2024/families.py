r"""The thesis's three families of test distributions, and the ground truth's detection rate on
them.

Every member is a Gaussian built from the training distribution
:math:`p = \mathcal N(\mu_p, \Sigma_p)` and a pair :math:`(s, t)` of a scale and a shift:

- affine :math:`\Lambda` (Eq. 12, 19):
  :math:`q_\lambda(s, t) = \mathcal N(\mu_p + t\mathbf 1,\; s^2\Sigma_p)`;
- perturbed :math:`\Lambda^\delta` (Eq. 20–22):
  :math:`q^\delta_\lambda(s, t) =
  \mathcal N(\mu_p + t\mathbf 1 + \beta u,\; s^2\Sigma_p + \alpha I)`, where :math:`\alpha` is the
  variance of the isotropic noise of Eq. 20 (it weakens the correlations), :math:`\beta` the
  strength of a mean perturbation and
  :math:`u \sim \mathcal U([-1, 1]^D)` is drawn once per dimension from a seeded stream;
- outlier :math:`\Lambda^{out}` (§7):
  :math:`q^{out}_\lambda(s, t) = \mathcal N(\mu_{out} + t\mathbf 1,\; s^2\Sigma_{out})`, with
  :math:`\Sigma_{out}` drawn with its own Haar rotation (so its correlations have nothing to do with
  :math:`\Sigma_p`'s) and :math:`\mu_{out} = \mu_p + m\,\xi`, :math:`\xi \sim \mathcal N(0, I)`
  drawn independently of :math:`p`.

The thesis gives neither :math:`\alpha, \beta` nor the outlier recipe. :func:`truth_tnr` computes
what the true density achieves on a member as an outlier detector (§8), which does not depend on any
model; :mod:`flowcore.studies.debruin2024.calibration` pins the free constants to the thesis's
ground-truth rates with it. A calibration asks that question of thousands of distributions on the
same draws: :func:`outside_rates` and :meth:`QuadraticForm.affine_rates` answer it for a whole grid
of them with matrix products of the draws (:class:`QuadraticForm` gives the algebra).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import chi2

from flowcore.gaussians import Gaussian, GaussianRecipe, training_gaussian
from flowcore.rng import derived_seed, numpy_stream, stream
from flowcore.validation import (
    check_choice,
    check_int,
    check_non_negative,
    check_positive,
    check_probability,
    check_real,
)

__all__ = [
    "Perturbation",
    "OutlierRecipe",
    "FAMILIES",
    "perturbation_direction",
    "perturbed",
    "outlier_base",
    "family_member",
    "family",
    "chi2_band",
    "QuadraticForm",
    "outside_rates",
    "truth_tnr",
    "standard_normal_draws",
    "binomial_stderr",
]

#: Values per block of draws × candidates in the batched membership tests (16 MB of float64).
_BLOCK = 1 << 21

#: Test-distribution families: affine Λ (Eq. 19), perturbed Λ^δ (Eq. 22), outlier Λ^out (§7).
FAMILIES = ("affine", "perturbed", "outlier")


@dataclass(frozen=True)
class Perturbation:
    r"""The strengths of the perturbation of Eq. 21.

    Attributes:
        alpha: :math:`\alpha \ge 0`, variance of the isotropic Gaussian noise convolved with the
            test distribution (Eq. 20): the covariance becomes :math:`s^2\Sigma_p + \alpha I`.
        beta: :math:`\beta \ge 0`, size of the mean perturbation :math:`\beta u`,
            :math:`u \sim \mathcal U([-1,1]^D)`.
    """

    alpha: float
    beta: float

    def __post_init__(self):
        check_non_negative("alpha", self.alpha)
        check_non_negative("beta", self.beta)


@dataclass(frozen=True)
class OutlierRecipe:
    r"""How the outlier distribution :math:`q^{out} = \mathcal N(\mu_{out}, \Sigma_{out})` is drawn.

    Attributes:
        offset: :math:`m \ge 0` in :math:`\mu_{out} = \mu_p + m\,\xi`,
            :math:`\xi \sim \mathcal N(0, I)`.
        cov_scale: :math:`c > 0`: the eigenvalues of :math:`\Sigma_{out}` are drawn like those of
            :math:`\Sigma_p` (same spectrum law and bounds) and multiplied by :math:`c`; its
            eigenvectors come from an independent Haar rotation.
    """

    offset: float
    cov_scale: float

    def __post_init__(self):
        check_non_negative("outlier_offset", self.offset)
        check_positive("outlier_cov_scale", self.cov_scale)


def perturbation_direction(dim: int, seed: int) -> torch.Tensor:
    r""":math:`u \sim \mathcal U([-1, 1]^D)`, the same for every :math:`(s, t)` of one dimension and
    seed."""
    g = stream(seed, "perturbation-direction", dim)
    return 2 * torch.rand(dim, generator=g, dtype=torch.float64) - 1


def perturbed(
    p: Gaussian, s: float, t: float, perturbation: Perturbation, u: torch.Tensor
) -> Gaussian:
    r""":math:`q^\delta_\lambda(s, t, \alpha, \beta) =
    \mathcal N(\mu_p + t + \beta u,\; s^2\Sigma_p + \alpha I)` (Eq. 21)."""
    s = check_positive("s", s)
    t = check_real("t", t)
    eye = torch.eye(p.dim, dtype=torch.float64)
    return Gaussian(p.mean + t + perturbation.beta * u, s**2 * p.cov + perturbation.alpha * eye)


def outlier_base(
    p: Gaussian, recipe: GaussianRecipe, outlier: OutlierRecipe, seed: int
) -> Gaussian:
    r"""The outlier distribution :math:`q^{out}` at :math:`s = 1, t = 0` for training distribution
    ``p``.

    :math:`\Sigma_{out}` is a fresh draw of ``recipe`` (independent eigenvalues and rotation, from a
    seed stream of its own) scaled by ``outlier.cov_scale``; :math:`\mu_{out} = \mu_p + m\xi`.
    """
    fresh = training_gaussian(p.dim, recipe, derived_seed("outlier", seed))
    xi = torch.randn(p.dim, generator=stream(seed, "outlier-offset", p.dim), dtype=torch.float64)
    return Gaussian(p.mean + outlier.offset * xi, outlier.cov_scale * fresh.cov)


def family_member(
    name: str,
    p: Gaussian,
    s: float,
    t: float,
    *,
    perturbation: Perturbation | None = None,
    u: torch.Tensor | None = None,
    outlier: Gaussian | None = None,
) -> Gaussian:
    """Member ``(s, t)`` of family ``name``; ``perturbation`` and ``u`` are needed for "perturbed",
    ``outlier`` (from :func:`outlier_base`) for "outlier"."""
    name = check_choice("family", name, FAMILIES)
    if name == "affine":
        return p.affine(s, t)
    if name == "perturbed":
        if perturbation is None or u is None:
            raise ValueError(
                "the perturbed family needs a Perturbation (alpha, beta) and the direction u"
            )
        return perturbed(p, s, t, perturbation, u)
    if outlier is None:
        raise ValueError("the outlier family needs its base distribution (see outlier_base)")
    return outlier.affine(s, t)


def family(
    name: str,
    p: Gaussian,
    scales,
    shifts,
    *,
    seed: int = 0,
    recipe: GaussianRecipe = GaussianRecipe(),
    perturbation: Perturbation | None = None,
    outlier: OutlierRecipe | None = None,
) -> dict[tuple[float, float], Gaussian]:
    """Every member of family ``name`` over ``scales × shifts``, keyed by ``(s, t)``."""
    name = check_choice("family", name, FAMILIES)
    u = perturbation_direction(p.dim, seed) if name == "perturbed" else None
    base = None
    if name == "outlier":
        if outlier is None:
            raise ValueError(
                "the outlier family needs an OutlierRecipe (outlier_offset, outlier_cov_scale)"
            )
        base = outlier_base(p, recipe, outlier, seed)
    return {
        (float(s), float(t)): family_member(
            name, p, s, t, perturbation=perturbation, u=u, outlier=base
        )
        for s in scales
        for t in shifts
    }


def chi2_band(dim: int, tpr: float) -> tuple[float, float]:
    r"""The equal-tailed band :math:`[a, b]` of :math:`\chi^2_D` holding mass TPR.

    For :math:`x \sim p`, :math:`\log p(x) = c - \tfrac12 M(x)` with
    :math:`M = (x-\mu_p)^\top\Sigma_p^{-1}(x-\mu_p) \sim \chi^2_D`, so the true density's bounds
    :math:`L, U` of §8.1 are :math:`M \in [a, b]` exactly.
    """
    dim = check_int("dim", dim, minimum=1)
    tpr = check_probability("tpr", tpr)
    a, b = chi2.ppf([(1 - tpr) / 2, (1 + tpr) / 2], dim)
    return float(a), float(b)


class QuadraticForm:
    r"""The law of :math:`M = (x-\mu_p)^\top\Sigma_p^{-1}(x-\mu_p)` for :math:`x \sim q`, a
    generalised :math:`\chi^2`.

    With :math:`w = L_p^{-1}(x - \mu_p) \sim \mathcal N(m, C)`, :math:`m = L_p^{-1}(\mu_q - \mu_p)`,
    :math:`C = L_p^{-1}\Sigma_q L_p^{-\top} = V\operatorname{diag}(\ell)V^\top`:
    :math:`M = \sum_i (b_i + \sqrt{\ell_i} z_i)^2` with :math:`b = V^\top m` and
    :math:`z \sim \mathcal N(0, I)`. Sampling :math:`M` costs :math:`O(D)` per draw, so one fixed
    set of draws :math:`z` (common random numbers) can score thousands of candidate distributions
    smoothly.

    For the affine variants :math:`q(s, t) = \mathcal N(\mu_q + t\mathbf 1, s^2\Sigma_q)` only
    :math:`\ell \to s^2\ell` and :math:`b \to b + t\,V^\top L_p^{-1}\mathbf 1` change, so
    :meth:`affine` needs no new factorisation.

    The membership test of the true density's detector, :math:`M \notin [a, b]`
    (:func:`chi2_band`), for many distributions on the same draws, is matrix products: expanding
    the square, :math:`M = \|b\|^2 + 2\,z^\top(b \circ \sqrt\ell) + (z \circ z)^\top \ell`, so
    the draws :math:`Z` (one row per draw) meet a grid of forms in
    :math:`Z\,[b_k \circ \sqrt{\ell_k}]_k` and :math:`(Z \circ Z)\,[\ell_k]_k`
    (:func:`outside_rates`); for the affine variants of one form three projections of the draws
    serve every :math:`(s, t)` (:meth:`affine_rates`). The rounding differs from :meth:`draws`'s
    (about :math:`10^{-16}` of the terms), and a draw changes sides of the band only if its
    :math:`M` lies that close to :math:`a` or :math:`b`.

    Example:
        >>> from flowcore.gaussians import GaussianRecipe, training_gaussian
        >>> p = training_gaussian(4, GaussianRecipe(), seed=0)
        >>> law, z = QuadraticForm(p, p.affine(1.2, 0.3)), standard_normal_draws(1000, 4, 0)
        >>> band = chi2_band(4, 0.975)
        >>> law.outside(band, z), outside_rates([law], band, z).tolist()
        (0.172, [0.172])
    """

    def __init__(self, p: Gaussian, q: Gaussian):
        a = torch.linalg.solve_triangular(p.scale_tril, q.scale_tril, upper=False)
        ell, v = torch.linalg.eigh(a @ a.T)
        self._p, self._v = p, v  # for with_mean
        self.sqrt_ell = ell.clamp_min(0).sqrt().numpy()
        self.b = self._rotated(q.mean - p.mean)
        self.b_shift = self._rotated(torch.ones(p.dim, dtype=torch.float64))

    def _rotated(self, vec: torch.Tensor) -> np.ndarray:
        r""":math:`V^\top L_p^{-1}` ``vec``."""
        white = torch.linalg.solve_triangular(self._p.scale_tril, vec.unsqueeze(1), upper=False)
        return (self._v.T @ white.squeeze(1)).numpy()

    def with_mean(self, mean: torch.Tensor) -> QuadraticForm:
        r"""The law of :math:`M` under :math:`\mathcal N(\text{mean}, \Sigma_q)`: the covariance,
        hence the factorisation, is this form's; only :math:`b` is new. The same numbers as a
        fresh ``QuadraticForm(p, Gaussian(mean, Σ_q))`` (the same operations on the same inputs),
        without its eigendecomposition: the perturbed family's candidates share theirs across
        :math:`\beta`.

        Example:
            >>> from flowcore.gaussians import GaussianRecipe, training_gaussian
            >>> p = training_gaussian(3, GaussianRecipe(), seed=0)
            >>> q = p.affine(0.5, 0.0)
            >>> moved = QuadraticForm(p, q).with_mean(q.mean + 1.0)
            >>> bool((moved.b == QuadraticForm(p, Gaussian(q.mean + 1.0, q.cov)).b).all())
            True
        """
        out = object.__new__(QuadraticForm)
        out._p, out._v, out.sqrt_ell, out.b_shift = self._p, self._v, self.sqrt_ell, self.b_shift
        out.b = self._rotated(torch.as_tensor(mean, dtype=torch.float64) - self._p.mean)
        return out

    def affine(self, s: float, t: float) -> QuadraticForm:
        """The law of :math:`M` under the variant :math:`q(s, t)` of this form's :math:`q`."""
        out = object.__new__(QuadraticForm)
        out.sqrt_ell, out.b, out.b_shift = (
            s * self.sqrt_ell,
            self.b + t * self.b_shift,
            self.b_shift,
        )
        return out

    def mean(self) -> float:
        r""":math:`\mathbb E[M] = \sum \ell_i + \|b\|^2`."""
        return float((self.sqrt_ell**2).sum() + (self.b**2).sum())

    def draws(self, z: np.ndarray) -> np.ndarray:
        """:math:`M` for each row of standard-normal draws ``z`` (shape ``(n, D)``)."""
        return np.square(self.b + z * self.sqrt_ell).sum(axis=1)

    def outside(self, band: tuple[float, float], z: np.ndarray) -> float:
        """Fraction of the draws of :math:`M` outside ``band``: the true density's TNR."""
        m = self.draws(z)
        return float(np.mean((m < band[0]) | (m > band[1])))

    def projections(self, z: np.ndarray) -> np.ndarray:
        r"""The three projections of the draws ``z`` (shape ``(n, D)``) that :math:`M` of every
        affine variant needs, shape ``(n, 3)``: :math:`z^\top(b \circ \sqrt\ell)`,
        :math:`z^\top(b_{shift} \circ \sqrt\ell)` and :math:`(z \circ z)^\top \ell` per draw (see
        :meth:`affine_rates`).

        Example:
            >>> from flowcore.gaussians import GaussianRecipe, training_gaussian
            >>> p = training_gaussian(3, GaussianRecipe(), seed=0)
            >>> QuadraticForm(p, p).projections(standard_normal_draws(5, 3, 0)).shape
            (5, 3)
        """
        z = np.asarray(z, dtype=np.float64)
        linear = np.stack([self.b * self.sqrt_ell, self.b_shift * self.sqrt_ell], axis=1)
        ell = self.sqrt_ell * self.sqrt_ell
        out = np.empty((len(z), 3))
        rows = max(1, _BLOCK // max(z.shape[1], 1))
        for start in range(0, len(z), rows):
            block = z[start : start + rows]
            out[start : start + rows, :2] = block @ linear
            out[start : start + rows, 2] = (block * block) @ ell
        return out

    def affine_rates(
        self,
        band: tuple[float, float],
        projections: np.ndarray,
        scales,
        shifts,
        offset=1.0,
        spread=1.0,
    ) -> np.ndarray:
        r"""The true density's TNR on many affine variants of this form at once, from the draws'
        :meth:`projections`: :meth:`outside` of ``self.affine(s, t)`` for every ``(s, t)``.

        The variant has :math:`b \to \mathrm{offset}\cdot b + t\,b_{shift}` and
        :math:`\sqrt\ell \to \sigma\sqrt\ell`, :math:`\sigma = s\cdot\mathrm{spread}` (``offset``
        and ``spread`` rescale the form itself, as the outlier calibration does), so with
        :math:`B = \mathrm{offset}\cdot b + t\,b_{shift}`

        .. math:: M = \|B\|^2 + 2\sigma\,(\mathrm{offset}\cdot P_b + t\,P_{shift})
            + \sigma^2 P_\ell,

        :math:`P` the projections: one product of the ``(n, 3)`` projections with a ``(3, K)``
        matrix of coefficients for :math:`K` variants, then a count per column. ``scales``,
        ``shifts``, ``offset`` and ``spread`` broadcast together; the rates have their shape.

        Example:
            >>> from flowcore.gaussians import GaussianRecipe, training_gaussian
            >>> p = training_gaussian(3, GaussianRecipe(), seed=0)
            >>> law, z = QuadraticForm(p, p), standard_normal_draws(2000, 3, 0)
            >>> band = chi2_band(3, 0.975)
            >>> rates = law.affine_rates(band, law.projections(z), [[1.0], [2.0]], [0.0, 1.0])
            >>> rates.shape, bool(rates[1, 1] == law.affine(2.0, 1.0).outside(band, z))
            ((2, 2), True)
        """
        s, t, offset, spread = np.broadcast_arrays(
            *(np.asarray(v, dtype=np.float64) for v in (scales, shifts, offset, spread))
        )
        shape = s.shape
        s, t, offset, spread = (v.ravel() for v in (s, t, offset, spread))
        sigma = s * spread
        shifted = offset[:, None] * self.b + t[:, None] * self.b_shift
        const = (shifted * shifted).sum(axis=1)
        coefficients = np.stack([2 * sigma * offset, 2 * sigma * t, sigma * sigma])
        return _count_outside(band, projections, coefficients, const).reshape(shape)


def outside_rates(
    forms, band: tuple[float, float], z: np.ndarray, z_squared: np.ndarray | None = None
) -> np.ndarray:
    r"""The true density's TNR for many forms on the same draws at once (each form's
    :meth:`QuadraticForm.outside`), as matrix products.

    With the forms' :math:`b_k` and :math:`\ell_k` as the columns of :math:`D \times K` matrices,
    :math:`M_{jk} = \|b_k\|^2 + 2\,[Z (b \circ \sqrt\ell)]_{jk} + [(Z \circ Z)\,\ell]_{jk}` for
    the draws :math:`Z` (rows ``z``), in blocks of draws; the rate is the count of :math:`M_{jk}`
    outside ``band`` over :math:`n`. ``z_squared`` (``z * z``) saves recomputing it when the same
    draws meet many grids.

    Example:
        >>> from flowcore.gaussians import GaussianRecipe, training_gaussian
        >>> p = training_gaussian(3, GaussianRecipe(), seed=0)
        >>> forms = [QuadraticForm(p, p.affine(s, 0.0)) for s in (1.0, 3.0)]
        >>> z, band = standard_normal_draws(4000, 3, 0), chi2_band(3, 0.975)
        >>> outside_rates(forms, band, z).tolist() == [f.outside(band, z) for f in forms]
        True
    """
    z = np.asarray(z, dtype=np.float64)
    b = np.stack([f.b for f in forms], axis=1)
    sqrt_ell = np.stack([f.sqrt_ell for f in forms], axis=1)
    const = (b * b).sum(axis=0)
    linear, ell = 2 * b * sqrt_ell, sqrt_ell * sqrt_ell
    counts = np.zeros(len(forms), dtype=np.int64)
    rows = max(1, _BLOCK // max(len(forms), z.shape[1], 1))
    for start in range(0, len(z), rows):
        block = z[start : start + rows]
        squared = block * block if z_squared is None else z_squared[start : start + rows]
        m = block @ linear
        m += squared @ ell
        m += const
        counts += np.count_nonzero((m < band[0]) | (m > band[1]), axis=0)
    return counts / len(z)


def _count_outside(
    band: tuple[float, float], projections: np.ndarray, coefficients: np.ndarray, const: np.ndarray
) -> np.ndarray:
    """Rates of :math:`M = P C + c` outside ``band`` per column (``P`` the ``(n, 3)`` projections,
    ``C`` the ``(3, K)`` coefficients), in blocks of draws."""
    counts = np.zeros(coefficients.shape[1], dtype=np.int64)
    rows = max(1, _BLOCK // max(coefficients.shape[1], 1))
    for start in range(0, len(projections), rows):
        m = projections[start : start + rows] @ coefficients
        m += const
        counts += np.count_nonzero((m < band[0]) | (m > band[1]), axis=0)
    return counts / len(projections)


def truth_tnr(p: Gaussian, q: Gaussian, tpr: float, z: np.ndarray) -> float:
    r"""True-negative rate of the *true* density's bound detector on :math:`q` (§8.1, Fig. 13c).

    The bounds hold a fraction TPR of :math:`\log p` over :math:`p` exactly (:func:`chi2_band`); the
    rate is the fraction of draws of :math:`q` outside them, estimated with the draws ``z``
    (standard normal, shape ``(n, D)``; its standard error is at most :math:`0.5/\sqrt n`). For
    many :math:`q` on the same draws, :func:`outside_rates` computes them together.
    """
    return QuadraticForm(p, q).outside(chi2_band(p.dim, tpr), z)


def standard_normal_draws(n: int, dim: int, seed: int) -> np.ndarray:
    """Fixed standard-normal draws (common random numbers) for :func:`truth_tnr`."""
    n = check_int("n", n, minimum=1)
    return numpy_stream([seed, dim, 0x7E57]).standard_normal((n, dim))


def binomial_stderr(rate: float, n: int) -> float:
    """Standard error of a rate estimated from ``n`` independent draws."""
    return math.sqrt(max(rate * (1 - rate), 0.25 / n) / n)
