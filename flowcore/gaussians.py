r"""Multivariate Gaussians with the closed forms the thesis compares a flow against.

Everything is computed in float64 from a Cholesky factor :math:`\Sigma = LL^\top`;
no covariance is ever inverted explicitly.

Symbols follow the thesis: the training distribution is :math:`p = \mathcal{N}(\mu_p, \Sigma_p)`,
a test distribution :math:`q_\lambda` is built from it with a scale ``s`` and a shift ``t``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from flowcore import rng
from flowcore.validation import (
    check_choice,
    check_int,
    check_positive,
    check_real,
    checked,
    validate_fields,
)

__all__ = ["LOG_2PI", "Gaussian", "GaussianRecipe", "training_gaussian", "affine_family"]

#: :math:`\log 2\pi`, the constant of every Gaussian log-density.
LOG_2PI = math.log(2 * math.pi)


class Gaussian:
    r"""A multivariate normal :math:`\mathcal{N}(\mu, \Sigma)` with full covariance.

    Args:
        mean: The mean :math:`\mu`, shape ``(D,)``.
        cov: The covariance :math:`\Sigma`, shape ``(D, D)``, symmetric positive definite.

    Raises:
        ValueError: If the shapes disagree, ``D < 1``, an entry is not finite, or ``cov``
            is not symmetric positive definite.

    Example:
        >>> p = Gaussian(torch.zeros(2), torch.eye(2))
        >>> p, p.dim, p.mean.dtype
        (Gaussian(dim=2), 2, torch.float64)
        >>> Gaussian(torch.zeros(2), torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
        Traceback (most recent call last):
        ...
        ValueError: cov must be symmetric positive definite; its Cholesky factorisation failed
    """

    def __init__(self, mean: Tensor, cov: Tensor):
        mean = torch.as_tensor(mean, dtype=torch.float64)
        cov = torch.as_tensor(cov, dtype=torch.float64)
        if mean.dim() != 1 or mean.numel() < 1:
            raise ValueError(
                f"mean must be a 1-D tensor with at least one entry, got shape {tuple(mean.shape)}"
            )
        dim = mean.numel()
        if cov.shape != (dim, dim):
            raise ValueError(
                f"cov must have shape ({dim}, {dim}) to match mean, got {tuple(cov.shape)}"
            )
        if not (torch.isfinite(mean).all() and torch.isfinite(cov).all()):
            raise ValueError("mean and cov must be finite (found NaN or inf)")
        if not torch.allclose(cov, cov.T, rtol=1e-10, atol=1e-12):
            raise ValueError("cov must be symmetric positive definite; it is not symmetric")
        cov = (cov + cov.T) / 2
        scale_tril, info = torch.linalg.cholesky_ex(cov)
        if info.item() != 0:
            raise ValueError(
                "cov must be symmetric positive definite; its Cholesky factorisation failed"
            )
        self.mean = mean
        self.cov = cov
        self.scale_tril = scale_tril

    @property
    def dim(self) -> int:
        """The dimension ``D``."""
        return self.mean.numel()

    def __repr__(self) -> str:
        return f"Gaussian(dim={self.dim})"

    def logdet_cov(self) -> Tensor:
        r""":math:`\log\det\Sigma = 2\sum_i \log L_{ii}`.

        Example:
            >>> p = Gaussian(torch.zeros(2), torch.diag(torch.tensor([2.0, 3.0])))
            >>> round(p.logdet_cov().item(), 4), round(math.log(6), 4)
            (1.7918, 1.7918)
        """
        return 2 * self.scale_tril.diagonal().log().sum()

    def mahalanobis_sq(self, x: Tensor) -> Tensor:
        r""":math:`(x-\mu)^\top\Sigma^{-1}(x-\mu)` for each row of ``x`` (float64).

        Example:
            >>> p = Gaussian(torch.zeros(2), 4 * torch.eye(2))
            >>> p.mahalanobis_sq(torch.tensor([[2.0, 0.0], [2.0, 2.0]])).tolist()
            [1.0, 2.0]
        """
        diff = torch.as_tensor(x).to(torch.float64) - self.mean
        # One triangular solve with all rows as right-hand sides: L W = diffᵀ.
        rows = diff.reshape(-1, self.dim)
        white = torch.linalg.solve_triangular(self.scale_tril, rows.T, upper=False)
        return white.square().sum(0).reshape(diff.shape[:-1])

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\log q(x) = -\tfrac12\left[D\log 2\pi + \log\det\Sigma +
        (x-\mu)^\top\Sigma^{-1}(x-\mu)\right]`.

        ``x`` has shape ``(..., D)``; the result has shape ``(...)`` and dtype float64.

        Example:
            >>> p = Gaussian(torch.zeros(2), torch.eye(2))
            >>> p.log_prob(torch.zeros(4, 3, 2)).shape
            torch.Size([4, 3])
            >>> round(p.log_prob(torch.zeros(2)).item(), 4), round(-LOG_2PI, 4)
            (-1.8379, -1.8379)
        """
        x = torch.as_tensor(x)
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have last dimension {self.dim}, got shape {tuple(x.shape)}")
        return -0.5 * (self.dim * LOG_2PI + self.logdet_cov() + self.mahalanobis_sq(x.cpu()))

    def iter_samples(
        self,
        n: int,
        generator: torch.Generator | None = None,
        chunk_size: int = 65_536,
        dtype: torch.dtype = torch.float64,
    ) -> Iterator[Tensor]:
        r"""Yield ``n`` samples :math:`x = \mu + L\varepsilon`,
        :math:`\varepsilon \sim \mathcal{N}(0, I)`, in chunks.

        Only one chunk of ``chunk_size × D`` values is alive at a time, so a million samples in
        D = 100 stream through a few megabytes. The stream is the same for any ``chunk_size``
        given the same ``generator`` state.

        Example:
            >>> p = Gaussian(torch.zeros(3), torch.eye(3))
            >>> chunks = list(p.iter_samples(5, rng.generator(0), chunk_size=2))
            >>> [tuple(c.shape) for c in chunks]
            [(2, 3), (2, 3), (1, 3)]
            >>> torch.equal(torch.cat(chunks), p.sample(5, rng.generator(0)))
            True
        """
        n = check_int("n", n, minimum=1)
        chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        done = 0
        while done < n:
            m = min(chunk_size, n - done)
            eps = torch.randn(m, self.dim, generator=generator, dtype=torch.float64)
            yield (self.mean + eps @ self.scale_tril.T).to(dtype)
            done += m

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        chunk_size: int = 65_536,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """Draw ``n`` samples into one preallocated ``(n, D)`` tensor, filled chunk by chunk.

        Example:
            >>> p = Gaussian(torch.ones(2), torch.eye(2))
            >>> x = p.sample(10_000, rng.generator(0), dtype=torch.float32)
            >>> x.shape, x.dtype
            (torch.Size([10000, 2]), torch.float32)
            >>> torch.allclose(x.mean(0), torch.ones(2), atol=0.05)
            True
        """
        n = check_int("n", n, minimum=1)
        out = torch.empty(n, self.dim, dtype=dtype)
        start = 0
        for chunk in self.iter_samples(n, generator, chunk_size, dtype):
            out[start : start + len(chunk)] = chunk
            start += len(chunk)
        return out

    def entropy(self) -> float:
        r"""Differential entropy :math:`H(q) = \tfrac12\log\det(2\pi e\,\Sigma)` in nats.

        Example:
            >>> round(Gaussian(torch.zeros(2), torch.eye(2)).entropy(), 4)  # log 2π + 1
            2.8379
        """
        return float(0.5 * (self.dim * (LOG_2PI + 1) + self.logdet_cov()))

    def _check_same_dim(self, other: Gaussian) -> None:
        if not isinstance(other, Gaussian):
            raise TypeError(f"expected a Gaussian, got {type(other).__name__}")
        if other.dim != self.dim:
            raise ValueError(f"dimensions differ: {self.dim} and {other.dim}")

    def cross_entropy(self, other: Gaussian) -> float:
        r"""Cross-entropy :math:`H(q, p) = -\mathbb{E}_q[\log p]` with ``self`` as q and ``other``
        as p.

        .. math:: H(q,p) = \tfrac12\left[D\log 2\pi + \log\det\Sigma_p
            + \operatorname{tr}(\Sigma_p^{-1}\Sigma_q)
            + (\mu_q-\mu_p)^\top\Sigma_p^{-1}(\mu_q-\mu_p)\right]

        Example:
            >>> p = Gaussian(torch.zeros(2), torch.eye(2))
            >>> q = p.affine(1.0, 1.0)
            >>> round(q.cross_entropy(p), 4), round(q.entropy() + q.kl(p), 4)
            (3.8379, 3.8379)
        """
        self._check_same_dim(other)
        # tr(Σp⁻¹ Σq) = ‖Lp⁻¹ Lq‖²_F
        trace = (
            torch.linalg.solve_triangular(other.scale_tril, self.scale_tril, upper=False)
            .square()
            .sum()
        )
        return float(
            0.5
            * (self.dim * LOG_2PI + other.logdet_cov() + trace + other.mahalanobis_sq(self.mean))
        )

    def kl(self, other: Gaussian) -> float:
        r"""KL divergence :math:`D_{KL}(q\,\|\,p)` with ``self`` as q and ``other`` as p
        (Proposition 1).

        .. math:: D_{KL}(q\|p) = \tfrac12\left[\log\frac{|\Sigma_p|}{|\Sigma_q|} - D
            + (\mu_q-\mu_p)^\top\Sigma_p^{-1}(\mu_q-\mu_p)
            + \operatorname{tr}(\Sigma_p^{-1}\Sigma_q)\right]

        Example:
            >>> p = Gaussian(torch.zeros(2), torch.eye(2))
            >>> round(p.kl(p), 4), round(p.affine(1.0, 1.0).kl(p), 4)
            (0.0, 1.0)
        """
        self._check_same_dim(other)
        trace = (
            torch.linalg.solve_triangular(other.scale_tril, self.scale_tril, upper=False)
            .square()
            .sum()
        )
        log_ratio = other.logdet_cov() - self.logdet_cov()
        return float(0.5 * (log_ratio - self.dim + other.mahalanobis_sq(self.mean) + trace))

    def affine(self, s: float, t: float) -> Gaussian:
        r"""The test distribution
        :math:`q_\lambda(s, t) = \mathcal{N}(\mu + t\mathbf{1}, s^2\Sigma)` (Eq. 12).

        Args:
            s: Scale, ``s > 0``: ``s < 1`` contracts towards the mean, ``s > 1`` expands.
            t: Shift added to every coordinate of the mean.

        Example:
            >>> q = Gaussian(torch.zeros(2), torch.eye(2)).affine(2.0, 0.5)
            >>> q.mean.tolist(), q.cov.diagonal().tolist()
            ([0.5, 0.5], [4.0, 4.0])
        """
        s = check_positive("s", s)
        t = check_real("t", t)
        return Gaussian(self.mean + t, s**2 * self.cov)

    @classmethod
    def fit(cls, x: Tensor) -> Gaussian:
        r"""Maximum-likelihood Gaussian of the rows of ``x``: sample mean and (biased) covariance.

        It is the best *linear* flow for ``x``, the control that a non-linear flow must beat.

        Example:
            >>> p = training_gaussian(3, seed=0)
            >>> p_hat = Gaussian.fit(p.sample(20_000, rng.generator(0)))
            >>> p_hat.dim, round(p_hat.kl(p), 2)
            (3, 0.0)
        """
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.dim() != 2 or x.shape[0] <= x.shape[1]:
            raise ValueError(
                f"x must have shape (n, D) with n > D to fit a covariance, got {tuple(x.shape)}"
            )
        mean = x.mean(0)
        centred = x - mean
        return cls(mean, centred.T @ centred / x.shape[0])


def _non_negative_real(name: str, value) -> float:
    checked_value = check_real(name, value)
    if checked_value < 0:
        raise ValueError(f"{name} must be ≥ 0, got {value}")
    return checked_value


@dataclass(frozen=True)
class GaussianRecipe:
    r"""How the training distribution :math:`p = \mathcal{N}(\mu_p, \Sigma_p)` is drawn.

    :math:`\Sigma_p = Q\operatorname{diag}(\lambda)Q^\top` with :math:`Q` Haar-random orthogonal and
    the eigenvalues :math:`\lambda_i` drawn from ``spectrum`` between ``eig_min`` and ``eig_max``;
    :math:`\mu_p \sim \mathcal{N}(0, m^2 I)` with :math:`m` = ``mean_scale``.
    The thesis does not state its recipe; these are our choices.

    Attributes:
        eig_min: Smallest eigenvalue of Σ_p (> 0).
        eig_max: Largest eigenvalue of Σ_p (≥ eig_min); the condition number is eig_max / eig_min.
        mean_scale: Standard deviation m of the entries of μ_p (≥ 0).
        spectrum: ``"loguniform"`` (default: log λ uniform between the bounds), ``"uniform"``
            (λ uniform between the bounds), ``"wishart"`` (:math:`\Sigma_p = AA^\top` with
            :math:`A_{ij} \sim \mathcal N(0, 1)`, unnormalised: λ spread over about
            :math:`[1/D, 4D]`; the bounds are ignored) or ``"spd"`` (scikit-learn's
            ``make_spd_matrix`` law: λ uniform in [1, 2] in a random basis; the bounds are ignored).

    Example:
        >>> GaussianRecipe(eig_min=1, eig_max=10)
        GaussianRecipe(eig_min=1.0, eig_max=10.0, mean_scale=1.0, spectrum='loguniform')
        >>> GaussianRecipe(eig_min=2.0, eig_max=1.0)
        Traceback (most recent call last):
        ...
        ValueError: eig_max must be ≥ eig_min = 2.0, got 1.0
    """

    SPECTRA: ClassVar[tuple[str, ...]] = ("loguniform", "uniform", "wishart", "spd")

    eig_min: float = field(default=0.1, metadata=checked(check_positive))
    eig_max: float = field(default=1.0, metadata=checked(check_positive))
    mean_scale: float = field(default=1.0, metadata=checked(_non_negative_real))
    spectrum: str = field(default="loguniform", metadata=checked(check_choice, allowed=SPECTRA))

    def __post_init__(self):
        validate_fields(self)
        if self.eig_max < self.eig_min:
            raise ValueError(f"eig_max must be ≥ eig_min = {self.eig_min}, got {self.eig_max}")


def training_gaussian(
    dim: int, recipe: GaussianRecipe = GaussianRecipe(), seed: int = 0
) -> Gaussian:
    r"""Draw the training distribution :math:`p` of dimension ``dim`` from ``recipe`` and ``seed``.

    The same ``(dim, recipe, seed)`` always gives the same :math:`p`, on any device.

    Example:
        >>> p = training_gaussian(5, GaussianRecipe(eig_min=0.1, eig_max=1.0), seed=0)
        >>> eigs = torch.linalg.eigvalsh(p.cov)
        >>> bool(eigs.min() >= 0.1 - 1e-9 and eigs.max() <= 1.0 + 1e-9)
        True
        >>> torch.equal(training_gaussian(5, seed=0).cov, p.cov)
        True
    """
    dim = check_int("dim", dim, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    g = rng.generator(seed * 1_000_003 + dim)
    u = torch.rand(dim, generator=g, dtype=torch.float64)
    if recipe.spectrum == "loguniform":
        eigs = torch.exp(
            math.log(recipe.eig_min) + u * (math.log(recipe.eig_max) - math.log(recipe.eig_min))
        )
    elif recipe.spectrum == "spd":
        eigs = 1.0 + u
    else:
        eigs = recipe.eig_min + u * (recipe.eig_max - recipe.eig_min)
    gaussian_matrix = torch.randn(dim, dim, generator=g, dtype=torch.float64)
    if recipe.spectrum == "wishart":
        cov = gaussian_matrix @ gaussian_matrix.T
    else:
        # Haar-random orthogonal Q: QR of a Gaussian matrix with the signs of R's diagonal fixed.
        q, r = torch.linalg.qr(gaussian_matrix)
        q = q * torch.sign(torch.diagonal(r))
        cov = (q * eigs) @ q.T
    mean = recipe.mean_scale * torch.randn(dim, generator=g, dtype=torch.float64)
    return Gaussian(mean, (cov + cov.T) / 2)


def affine_family(
    p: Gaussian, scales: list[float], shifts: list[float]
) -> dict[tuple[float, float], Gaussian]:
    r"""The set :math:`\Lambda = \{q_\lambda(s, t) \mid s \in S, t \in T\}` of Eq. 19, keyed by
    ``(s, t)``.

    Example:
        >>> family = affine_family(training_gaussian(3), scales=[0.5, 2], shifts=[0, 1])
        >>> sorted(family)
        [(0.5, 0.0), (0.5, 1.0), (2.0, 0.0), (2.0, 1.0)]
        >>> family[2.0, 1.0]
        Gaussian(dim=3)
    """
    return {(float(s), float(t)): p.affine(s, t) for s in scales for t in shifts}
