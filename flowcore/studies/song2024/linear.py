r"""The linear theory of Song et al. (2024), §3–§4: closed forms for a linear flow, checked, not
assumed.

The flow is :math:`z = U^\top x + b` with :math:`U \in \mathbb{R}^{d\times d}` invertible and a
standard Gaussian base :math:`z \sim \mathcal{N}(0, I_d)`, fitted to data
:math:`X \in \mathbb{R}^{N\times d}` with rows :math:`x_i`. By the change of variables (Eq. 1) the
model density of :math:`x` is :math:`\mathcal{N}(\mu, M^{-1})` with precision :math:`M = UU^\top`
and mean :math:`\mu = -U^{-\top} b`. Everything but the mean depends on :math:`U` only through
:math:`M`, so :math:`U` is identified only up to a right orthogonal factor :math:`U \mapsto UQ`
(which also maps :math:`b \mapsto Q^\top b`); fits are therefore returned as :math:`(M, b)` with
:math:`b` paired with the symmetric square root :math:`U = M^{1/2}` (see :class:`LinearFit`).

Notation: :math:`\bar x = \frac1N\sum_i x_i`, and
:math:`T = \frac1N\sum_i (x_i-\bar x)(x_i-\bar x)^\top` is the biased sample covariance (the paper's
:math:`T`).

**The objective, as this module writes it.** With :math:`\operatorname{nll}` the *mean* negative
log-likelihood (:func:`nll`, which is the paper's Eq. 3 divided by :math:`N`, plus the constant),

.. math::

    J_\alpha(U, b) = \operatorname{nll}(U, b; X) + \frac{\alpha}{N}\, R(U),
    \qquad
    R_{\text{l2}}(U) = \lVert U\rVert_F^2 = \operatorname{tr} M,
    \qquad
    R_{\text{kl}}(U) = \operatorname{KL}\big(\mathcal{N}(0, G)\,\big\|\,\mathcal{N}(0, M^{-1})\big)
    = \tfrac12\big[\operatorname{tr}(GM) - d - \log\det(GM)\big].

Multiplied by :math:`N` this is Eq. 3 (a sum) :math:`+\ \alpha R(U)` plus a constant, so
:math:`\alpha` is measured in *samples*: for ``kind="kl"`` it is exactly the number of
pseudo-samples of covariance :math:`G` in Eq. 6. The minimisers (:func:`regularised`;
:math:`b = -U^\top \bar x` always) are

.. math::

    M^{-1}_{\text{mle}} = T, \qquad
    M^{-1}_{\text{l2}} = T + \frac{2\alpha}{N} I, \qquad
    M^{-1}_{\text{kl}} = \frac{N T + \alpha G}{N + \alpha}.

**Where the printed paper and this derivation (and L-BFGS on** :func:`objective` **) disagree**

- Theorem 1 prints :math:`b = U^\top\bar x` (and the Motivation repeats it); with
  :math:`z = U^\top x + b` and a zero-mean base the stationarity condition
  :math:`\sum_i (U^\top x_i + b) = 0` gives :math:`b = -U^\top \bar x`. Theorem 1 also names the
  flow ":math:`z = U^\top x`" without the :math:`b`.
- Eq. 3 writes :math:`\log\det U`; it must be :math:`\log\lvert\det U\rvert` (a reflection
  :math:`U \mapsto U\,\mathrm{diag}(-1, 1, \dots)` leaves the model unchanged). Eq. 3 is a sum over
  the :math:`N` samples without :math:`\tfrac d2\log 2\pi`, while Eq. 2 is a mean, so the two weight
  a prior differently; the constants below follow Eq. 3's sum.
- L2 (Motivation): the paper states :math:`\hat T = T + \alpha I`. For Eq. 3
  :math:`+\ \alpha\lVert U\rVert_F^2` the constant is :math:`2/N`
  (:math:`\hat T = T + \tfrac{2\alpha}{N} I`); for Eq. 2's weighting (mean
  :math:`+\ \alpha\lVert U\rVert_F^2`) it is :math:`2`. The printed :math:`T + \alpha I` needs the
  penalty :math:`\tfrac{\alpha}{2}\lVert U\rVert_F^2` on the *mean* NLL.
- Theorem 3 calls :math:`\operatorname{tr}(MG) - \log\det(MG)` the KL divergence; the KL divergence
  of the Gaussians is half of that minus :math:`d/2`. The factor matters: Eq. 3
  :math:`+\ \alpha[\operatorname{tr}(MG) - \log\det(MG)]` gives
  :math:`M^{-1} = (NT + 2\alpha G)/(N + 2\alpha)`; Eq. 7 holds for Eq. 3
  :math:`+\ \alpha\,\operatorname{KL}` with the true KL (as here).
- Eq. 4 / Theorem 2: see :func:`decoupled` (max should be min; the ½ on the log-det in Eq. 4 has no
  matching ½ on the trace; the "ignore λ_i if γ_i = 0" sentence has the symbols swapped).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from flowcore.validation import check_choice, check_int, check_non_negative, check_positive

__all__ = [
    "KINDS",
    "FIG2_N",
    "FIG2_DELTAS",
    "FIG2_ALPHAS",
    "FIG2_G",
    "LinearFit",
    "Decoupled",
    "nll",
    "mle",
    "STRETCHES",
    "covariance_rank",
    "null_direction_fall",
    "regularised",
    "pseudo_sample_fit",
    "objective",
    "decoupled",
    "kl_gaussian",
    "fig2_sample",
    "density_1d",
]

#: The penalties of :func:`regularised` and :func:`objective`.
KINDS = ("l2", "kl")

#: Fig. 2 analogue (the paper gives none of these): sample size, the four data variances δ (the
#: paper's four dotted α = 0 curves), the α grid (α/N ∈ {0, 0.1, 1, 10}: only α/N matters) and G.
FIG2_N = 100
FIG2_DELTAS = (0.5, 1.0, 2.0, 4.0)
FIG2_ALPHAS = (0.0, 10.0, 100.0, 1000.0)
FIG2_G = 1.0

_LOG_2PI = math.log(2 * math.pi)
#: Relative eigenvalue floor below which a covariance counts as singular.
_RANK_TOL = 1e-12


# --- validation -----------------------------------------------------------------------------------


def _array(name: str, value, ndim: int) -> NDArray[np.float64]:
    """``value`` as a finite float64 array with ``ndim`` dimensions, or a ValueError naming
    ``name``."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} must be a real array, got {type(value).__name__} ({error})"
        ) from None
    if array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return array


def _data(X) -> NDArray[np.float64]:
    """The data matrix ``X`` of shape ``(N, d)``, ``N, d ≥ 1``."""
    return _array("X", X, 2)


def _square(name: str, value, d: int) -> NDArray[np.float64]:
    array = _array(name, value, 2)
    if array.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}), got {array.shape}")
    return array


def _spd(name: str, value, d: int) -> NDArray[np.float64]:
    """A symmetric positive definite ``(d, d)`` matrix, symmetrised."""
    array = _square(name, value, d)
    if not np.allclose(array, array.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be symmetric positive definite; it is not symmetric")
    array = (array + array.T) / 2
    try:
        np.linalg.cholesky(array)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"{name} must be symmetric positive definite; its Cholesky factorisation failed"
        ) from None
    return array


def _prior(kind: str, G, d: int) -> NDArray[np.float64] | None:
    """``G`` for ``kind``: an SPD ``(d, d)`` matrix for ``"kl"`` (``None`` means :math:`I`),
    ``None`` for ``"l2"``."""
    if kind == "l2":
        if G is not None:
            raise ValueError(
                "G must be None for kind='l2' (G is the target covariance of kind='kl')"
            )
        return None
    return np.eye(d) if G is None else _spd("G", G, d)


def _moments(X: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:math:`\\bar x` and the biased sample covariance :math:`T`."""
    mean = X.mean(axis=0)
    centred = X - mean
    return mean, centred.T @ centred / X.shape[0]


def _check_full_rank(T: NDArray[np.float64], N: int) -> None:
    d = T.shape[0]
    if N <= d:
        raise ValueError(
            f"X must have more rows than columns (N > d) for the unregularised fit: with N = {N} ≤ "
            f"d = {d} the "
            "sample covariance T has rank ≤ N - 1 < d and Eq. 3 is unbounded below; use "
            "regularised() with alpha > 0"
        )
    eigs = np.linalg.eigvalsh(T)
    if eigs[0] <= _RANK_TOL * max(eigs[-1], np.finfo(float).tiny):
        raise ValueError(
            "X must span all d directions around its mean: its sample covariance T is singular "
            f"(smallest/largest eigenvalue {eigs[0]:.3g}/{eigs[-1]:.3g}), so Eq. 3 is unbounded "
            "below"
        )


# --- fits -----------------------------------------------------------------------------------------


class LinearFit(NamedTuple):
    r"""A fitted linear flow :math:`z = U^\top x + b`, unpacking as ``M, b``.

    Attributes:
        M: The precision :math:`M = UU^\top` of the model :math:`\mathcal{N}(\mu, M^{-1})`, shape
            ``(d, d)``.
        b: The shift for the symmetric factor :math:`U = M^{1/2}`, i.e. :math:`b = -M^{1/2}\mu`. For
            any other factor :math:`U' = M^{1/2} Q` (:math:`Q` orthogonal) the shift is
            :math:`Q^\top b = -U'^\top\mu`.

    Example:
        >>> fit = LinearFit(M=np.diag([4.0, 1.0]), b=np.array([-2.0, 3.0]))
        >>> M, b = fit
        >>> fit.U.diagonal().tolist(), fit.mean.tolist(), fit.cov.diagonal().tolist()
        ([2.0, 1.0], [1.0, -3.0], [0.25, 1.0])
    """

    M: NDArray[np.float64]
    b: NDArray[np.float64]

    @property
    def U(self) -> NDArray[np.float64]:
        r"""The symmetric positive definite factor :math:`U = M^{1/2}` that :attr:`b` belongs to."""
        eigs, vecs = np.linalg.eigh(self.M)
        return (vecs * np.sqrt(eigs)) @ vecs.T

    @property
    def cov(self) -> NDArray[np.float64]:
        r"""The model covariance :math:`M^{-1}`."""
        return np.linalg.inv(self.M)

    @property
    def mean(self) -> NDArray[np.float64]:
        r"""The model mean :math:`\mu = -U^{-\top} b` (identified whatever the factor)."""
        return -np.linalg.solve(self.U.T, self.b)


def _fit(cov: NDArray[np.float64], mean: NDArray[np.float64]) -> LinearFit:
    r"""The flow of :math:`\mathcal{N}(\text{mean}, \text{cov})`: :math:`M = \text{cov}^{-1}`,
    :math:`b = -M^{1/2}\,\text{mean}`."""
    eigs, vecs = np.linalg.eigh((cov + cov.T) / 2)
    M = (vecs / eigs) @ vecs.T
    U = (vecs / np.sqrt(eigs)) @ vecs.T
    return LinearFit(M=(M + M.T) / 2, b=-U.T @ mean)


def nll(U: ArrayLike, b: ArrayLike, X: ArrayLike) -> float:
    r"""The mean negative log-likelihood of the linear flow :math:`z = U^\top x + b` on ``X``.

    .. math::

        \operatorname{nll}(U, b; X) = \frac1N\sum_{i=1}^N \tfrac12\lVert U^\top x_i + b\rVert^2
        - \log\lvert\det U\rvert + \tfrac d2 \log 2\pi .

    The paper's Eq. 3,
    :math:`\mathcal{L}(U, b) = \sum_i \lVert U^\top x_i + b\rVert^2/2 - N\log\det U`, is a **sum**
    over the samples without the constant; this is the **mean**, ``nll = Eq. 3 / N + (d/2) log 2π``
    (with :math:`\lvert\det U\rvert`), i.e. the exact average of :math:`-\log p(x_i)` under
    :math:`\mathcal{N}(-U^{-\top} b, (UU^\top)^{-1})`. A singular ``U`` gives ``inf``.

    Args:
        U: The flow's matrix, shape ``(d, d)``.
        b: The flow's shift, shape ``(d,)``.
        X: The data, shape ``(N, d)``.

    Raises:
        ValueError: If a shape disagrees or an entry is not finite.

    Example:
        >>> X = np.array([[0.0, 0.0], [2.0, 0.0]])
        >>> round(nll(np.eye(2), np.zeros(2), X), 6) == round(1.0 + math.log(2 * math.pi), 6)
        True
    """
    X = _data(X)
    d = X.shape[1]
    U = _square("U", U, d)
    b = _array("b", b, 1)
    if b.shape != (d,):
        raise ValueError(f"b must have shape ({d},) to match X, got {b.shape}")
    sign, logabsdet = np.linalg.slogdet(U)
    if sign == 0:
        return math.inf
    Z = X @ U + b
    return float(0.5 * np.mean(np.sum(Z * Z, axis=1)) - logabsdet + 0.5 * d * _LOG_2PI)


def mle(X: ArrayLike) -> LinearFit:
    r"""Theorem 1: the maximum likelihood linear flow, :math:`M^{-1} = T` and
    :math:`b = -U^\top\bar x`.

    Derivation (mean NLL, :func:`nll`):
    :math:`\partial/\partial b = \frac1N\sum_i (U^\top x_i + b) = 0` gives :math:`b = -U^\top\bar x`
    — **not** the printed :math:`b = U^\top\bar x`: with a zero-mean base the flow must move
    :math:`\bar x` to :math:`0`. Substituting,
    :math:`\operatorname{nll} = \tfrac12\operatorname{tr}(TM)
    - \tfrac12\log\det M + \text{const}`, which is convex in :math:`M` with stationary point
    :math:`M^{-1} = T`; :math:`U` is any factor of :math:`M` (returned: :math:`U = T^{-1/2}`).

    If :math:`N \le d` then :math:`\operatorname{rank} T \le N-1 < d`: for a unit :math:`v` with
    :math:`Tv = 0` (so :math:`v^\top(x_i - \bar x) = 0`), :math:`U_s = (I + (s-1)vv^\top)U` leaves
    every :math:`U_s^\top(x_i-\bar x)` unchanged and multiplies :math:`\det U` by :math:`s`, so the
    NLL falls by :math:`\log s \to \infty`: no MLE exists.

    Args:
        X: The data, shape ``(N, d)``.

    Raises:
        ValueError: If ``N ≤ d`` or ``T`` is otherwise singular, or ``X`` is not a finite 2-D array.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(50, 2)) @ np.array([[2.0, 0.0], [1.0, 0.5]]) + 3.0
        >>> M, b = fit = mle(X)
        >>> T = np.cov(X.T, bias=True)
        >>> bool(np.allclose(np.linalg.inv(M), T)), bool(np.allclose(b, -fit.U.T @ X.mean(0)))
        (True, True)

        With :math:`N \le d` the NLL is unbounded below along a null direction of :math:`T`:

        >>> X = np.array([[0.0, 0.0], [1.0, 1.0]])
        >>> v = np.array([1.0, -1.0]) / np.sqrt(2)
        >>> def stretched(s):  # U_s = I + (s - 1) v vᵀ with its optimal shift b = -U_sᵀ x̄
        ...     U = np.eye(2) + (s - 1) * np.outer(v, v)
        ...     return nll(U, -U.T @ X.mean(0), X)
        >>> falls = [round(stretched(1.0) - stretched(s), 6) for s in (1e3, 1e6)]
        >>> falls == [round(math.log(s), 6) for s in (1e3, 1e6)]
        True
        >>> mle(X)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: X must have more rows than columns (N > d) for the unregularised fit: ...
    """
    X = _data(X)
    mean, T = _moments(X)
    _check_full_rank(T, X.shape[0])
    return _fit(T, mean)


#: The stretches s of :func:`null_direction_fall` (the study's S3 demonstration).
STRETCHES = (1e3, 1e6)


def covariance_rank(X: ArrayLike) -> int:
    r"""The numerical rank of the sample covariance :math:`T` of ``X``: its eigenvalues above the
    relative floor that :func:`mle` uses (``1e-12`` of the largest).

    Example:
        >>> covariance_rank(np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0],
        ...                           [2.0, 0.0, 1.0]]))  # N = 3: rank ≤ N - 1
        2
    """
    _, T = _moments(_data(X))
    eigs = np.linalg.eigvalsh(T)
    return int(np.sum(eigs > _RANK_TOL * max(eigs[-1], np.finfo(float).tiny)))


def null_direction_fall(X: ArrayLike, scales=STRETCHES) -> NDArray[np.float64]:
    r"""How far the NLL falls when the flow stretches the data's least-variance direction, the
    computation behind "no MLE for :math:`N \le d`" (:func:`mle`).

    With :math:`v` the unit eigenvector of :math:`T`'s smallest eigenvalue :math:`\lambda_{min}`,
    :math:`U_s = I + (s - 1)vv^\top` and its optimal shift :math:`b_s = -U_s^\top\bar x`, this
    returns :func:`nll` :math:`(U_1, b_1) -` :func:`nll` :math:`(U_s, b_s)` for each :math:`s` in
    ``scales``, evaluated on the data (not from a formula). In exact arithmetic it is
    :math:`\log s - \tfrac12(s^2 - 1)\lambda_{min}`: exactly :math:`\log s`, without bound, when
    :math:`\lambda_{min} = 0` (always when :math:`N \le d`, since
    :math:`\operatorname{rank} T \le N - 1`), and falling to :math:`-\infty` as :math:`s` grows when
    :math:`T` is positive definite.

    Args:
        X: The data, shape ``(N, d)``.
        scales: The stretches :math:`s > 0`.

    Example:
        >>> X = np.array([[0.0, 0.0], [1.0, 1.0]])           # N = d = 2: T has a null direction
        >>> bool(np.allclose(null_direction_fall(X, (1e3, 1e6)), np.log([1e3, 1e6])))
        True
        >>> X = np.random.default_rng(0).normal(size=(50, 2))  # N > d: stretching costs likelihood
        >>> bool(null_direction_fall(X, (1e3,))[0] < 0)
        True
    """
    X = _data(X)
    scales = np.asarray([check_positive("scales", s) for s in scales], dtype=np.float64)
    mean, T = _moments(X)
    v = np.linalg.eigh(T)[1][:, 0]
    d = X.shape[1]

    def at(s: float) -> float:
        U = np.eye(d) + (s - 1) * np.outer(v, v)
        return nll(U, -U.T @ mean, X)

    base = at(1.0)
    return np.array([base - at(s) for s in scales])


def _regularised_cov(
    T: NDArray[np.float64], N: int, alpha: float, kind: str, G: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    if kind == "l2":
        return T + (2 * alpha / N) * np.eye(T.shape[0])
    return (N * T + alpha * G) / (N + alpha)


def _regularised_problem(
    X, alpha, kind: str, G
) -> tuple[int, float, str, NDArray[np.float64] | None, NDArray[np.float64], NDArray[np.float64]]:
    """The validated ``(N, alpha, kind, G, mean, T)`` of a regularised fit; the MLE (α = 0) needs T
    of full rank."""
    X = _data(X)
    N, d = X.shape
    alpha = check_non_negative("alpha", alpha)
    kind = check_choice("kind", kind, KINDS)
    G = _prior(kind, G, d)
    mean, T = _moments(X)
    if alpha == 0:
        _check_full_rank(T, N)
    return N, alpha, kind, G, mean, T


def regularised(X: ArrayLike, alpha: float, kind: str, G: ArrayLike | None = None) -> LinearFit:
    r"""The minimiser of :func:`objective`: the L2- or KL-regularised linear flow in closed form.

    The objective (see the module docstring) is
    :math:`J_\alpha = \operatorname{nll} + \frac{\alpha}{N} R`, i.e. ``(Eq. 3 + α R) / N`` plus a
    constant. The penalties do not involve :math:`b`, so :math:`b = -U^\top\bar x` as in
    :func:`mle`, and then

    .. math::

        J_\alpha = \tfrac12\operatorname{tr}(TM) - \tfrac12\log\det M + \tfrac{\alpha}{N} R(M) +
        \text{const}.

    - ``"l2"``: :math:`R = \lVert U\rVert_F^2 = \operatorname{tr}M`. Stationarity
      :math:`\tfrac12 T - \tfrac12 M^{-1} + \tfrac{\alpha}{N} I = 0` gives
      :math:`M^{-1} = T + c\,\alpha I` with :math:`c = 2/N` (the paper prints :math:`c = 1`).
    - ``"kl"``: :math:`R = \operatorname{KL}(\mathcal{N}(0,G)\,\|\,\mathcal{N}(0,M^{-1}))
      = \tfrac12[\operatorname{tr}(GM) - d - \log\det(GM)]` (equal to
      :math:`\operatorname{KL}(\mathcal{N}(0,M)\,\|\,\mathcal{N}(0,G^{-1}))`, the paper's
      ":math:`KL(M, G^{-1})`" but with the ½ and :math:`-d` it omits). Stationarity
      :math:`\tfrac12 T - \tfrac12 M^{-1} + \tfrac{\alpha}{2N}(G - M^{-1}) = 0` gives Eq. 7,
      :math:`M^{-1} = (NT + \alpha G)/(N + \alpha)`: the MLE of the data plus :math:`\alpha`
      pseudo-samples of covariance :math:`G` centred at :math:`\bar x` (Eq. 6 with
      :math:`N_1 = \alpha`, :math:`T^s = G`; see :func:`pseudo_sample_fit`). With the paper's
      printed KL (no ½) it would be :math:`(NT + 2\alpha G)/(N + 2\alpha)`.

    Both are convex in :math:`M` and, for :math:`\alpha > 0`, have a unique minimiser for any
    :math:`N \ge 1` (also :math:`N \le d`). :math:`\alpha = 0` is :func:`mle`.

    Args:
        X: The data, shape ``(N, d)``.
        alpha: The penalty weight :math:`\alpha \ge 0`, in samples (only :math:`\alpha/N` matters).
        kind: ``"l2"`` or ``"kl"``.
        G: For ``"kl"``, the target covariance (SPD, ``(d, d)``; ``None`` means :math:`I`, the
            paper's choice). Must be ``None`` for ``"l2"``.

    Raises:
        ValueError: On a bad parameter, or for ``alpha = 0`` when :func:`mle` would raise.

    Example:
        >>> X = np.array([[0.0, 1.0], [2.0, 1.0]])  # N = d = 2: no MLE, but regularised fits exist
        >>> np.linalg.inv(regularised(X, 2.0, "l2").M).round(6).tolist()
        [[3.0, 0.0], [0.0, 2.0]]
        >>> fit = regularised(X, 2.0, "kl", G=np.diag([1.0, 3.0]))
        >>> fit.cov.round(6).tolist(), fit.mean.round(6).tolist()
        ([[1.0, 0.0], [0.0, 1.5]], [1.0, 1.0])
    """
    N, alpha, kind, G, mean, T = _regularised_problem(X, alpha, kind, G)
    return _fit(_regularised_cov(T, N, alpha, kind, G), mean)


def pseudo_sample_fit(X: ArrayLike, alpha: float, G: ArrayLike | None = None) -> LinearFit:
    r"""The MLE of ``X`` augmented by :math:`\alpha` pseudo-samples of covariance :math:`G` (Eq. 6).

    The pseudo-samples are :math:`2d` points :math:`\bar x \pm \sqrt d\, L e_j`
    (:math:`G = LL^\top`), each of weight :math:`\alpha/(2d)`: total weight :math:`\alpha`, weighted
    mean :math:`\bar x` and weighted (biased) covariance :math:`G`. The fit maximises the weighted
    log-likelihood of all :math:`N + 2d` points, computed from the stacked points: weighted mean and
    weighted biased covariance, so :math:`M^{-1} = (NT + \alpha G)/(N + \alpha)` (Eq. 6 with
    :math:`N_1 = \alpha`, :math:`T^s = G`) — the same as ``regularised(X, alpha, "kl", G)`` (Eq. 7).
    For an integer :math:`\alpha` it equals the plain :func:`mle` of ``X`` stacked with any
    :math:`\alpha` points of mean :math:`\bar x` and biased covariance :math:`G`. Pseudo-samples
    centred elsewhere would also move the mean and add a between-group term.

    Args:
        X: The data, shape ``(N, d)``.
        alpha: The number (total weight) of pseudo-samples, ``≥ 0``.
        G: Their covariance, SPD ``(d, d)``; ``None`` means :math:`I`.

    Raises:
        ValueError: On a bad parameter, or for ``alpha = 0`` when :func:`mle` would raise.

    Example:
        >>> X = np.array([[0.0, 1.0], [2.0, 1.0]])
        >>> G = np.diag([1.0, 3.0])
        >>> bool(np.allclose(pseudo_sample_fit(X, 2.0, G).M, regularised(X, 2.0, "kl", G).M))
        True
    """
    X = _data(X)
    N, d = X.shape
    alpha = check_non_negative("alpha", alpha)
    G = np.eye(d) if G is None else _spd("G", G, d)
    if alpha == 0:
        return mle(X)
    L = np.linalg.cholesky(G)
    centre = X.mean(axis=0)
    offsets = math.sqrt(d) * L.T  # row j is sqrt(d) L e_j
    points = np.vstack([X, centre + offsets, centre - offsets])
    weights = np.concatenate([np.ones(N), np.full(2 * d, alpha / (2 * d))])
    total = weights.sum()
    mean = weights @ points / total
    centred = points - mean
    cov = (centred * weights[:, None]).T @ centred / total
    return _fit(cov, mean)


def objective(
    U: ArrayLike, b: ArrayLike, X: ArrayLike, alpha: float, kind: str, G: ArrayLike | None = None
) -> float:
    r"""The regularised objective that :func:`regularised` minimises, for numerical checks.

    .. math::

        J_\alpha(U, b) = \operatorname{nll}(U, b; X) + \frac{\alpha}{N} R(U), \qquad
        R_{\text{l2}} = \lVert U\rVert_F^2, \qquad
        R_{\text{kl}} = \tfrac12\big[\operatorname{tr}(GUU^\top) - d - \log\det G - 2\log\lvert\det
        U\rvert\big].

    Times :math:`N`, this is Eq. 3 :math:`+\ \alpha R(U)` + :math:`\tfrac{Nd}{2}\log 2\pi`;
    ``alpha = 0`` gives :func:`nll`. ``R_kl`` is
    :math:`\operatorname{KL}(\mathcal{N}(0, G)\,\|\,\mathcal{N}(0, (UU^\top)^{-1}))`.

    Args:
        U: The flow's matrix, shape ``(d, d)``.
        b: The flow's shift, shape ``(d,)``.
        X: The data, shape ``(N, d)``.
        alpha: The penalty weight ``≥ 0`` (in samples).
        kind: ``"l2"`` or ``"kl"``.
        G: For ``"kl"`` the target covariance (``None``: :math:`I`); ``None`` for ``"l2"``.

    Raises:
        ValueError: On a bad parameter.

    Example:
        >>> X = np.array([[0.0, 1.0], [2.0, 1.0]])
        >>> fit = regularised(X, 2.0, "kl")
        >>> best = objective(fit.U, fit.b, X, 2.0, "kl")
        >>> U = fit.U @ np.array([[0.0, 1.0], [-1.0, 0.0]])  # another factor of the same M ...
        >>> bool(np.isclose(objective(U, -U.T @ X.mean(0), X, 2.0, "kl"), best))  # ... same value
        True
        >>> bool(objective(1.1 * fit.U, 1.1 * fit.b, X, 2.0, "kl") > best)
        True
    """
    value = nll(U, b, X)  # validates U, b, X
    X = np.asarray(X, dtype=np.float64)
    U = np.asarray(U, dtype=np.float64)
    N, d = X.shape
    alpha = check_non_negative("alpha", alpha)
    kind = check_choice("kind", kind, KINDS)
    G = _prior(kind, G, d)
    if alpha == 0 or math.isinf(value):
        return value
    if kind == "l2":
        penalty = float(np.sum(U * U))
    else:
        logdet_U = np.linalg.slogdet(U)[1]
        logdet_G = np.linalg.slogdet(G)[1]
        penalty = 0.5 * (float(np.sum((G @ U) * U)) - d - logdet_G - 2 * logdet_U)
    return value + alpha / N * penalty


class Decoupled(NamedTuple):
    r"""The per-direction solution of :func:`decoupled`, one entry per eigen-direction of :math:`T`.

    Attributes:
        directions: Orthonormal eigenvectors :math:`w_i` of :math:`T` (and :math:`G`), as columns.
        t_eigs: :math:`\lambda_i = w_i^\top T w_i`, in descending order.
        g_eigs: :math:`g_i = w_i^\top G w_i` (``"kl"``; ones otherwise, unused).
        cov_eigs: The eigenvalues :math:`1/\gamma_i` of :math:`M^{-1}` along :math:`w_i`.

    Example:
        >>> sol = Decoupled(np.eye(2), np.array([2.0, 1.0]), np.ones(2), np.array([2.0, 1.0]))
        >>> sol.precision_eigs.tolist()
        [0.5, 1.0]
    """

    directions: NDArray[np.float64]
    t_eigs: NDArray[np.float64]
    g_eigs: NDArray[np.float64]
    cov_eigs: NDArray[np.float64]

    @property
    def precision_eigs(self) -> NDArray[np.float64]:
        r"""The eigenvalues :math:`\gamma_i` of :math:`M = UU^\top` along the same directions."""
        return 1.0 / self.cov_eigs


def decoupled(X: ArrayLike, alpha: float, kind: str, G: ArrayLike | None = None) -> Decoupled:
    r"""Theorem 2 / Eq. 5: the fit solved as :math:`d` independent 1-D problems along :math:`T`'s
    eigenvectors.

    Write :math:`M = \sum_i \gamma_i v_i v_i^\top`. In :math:`N J_\alpha` only
    :math:`\tfrac N2\operatorname{tr}(CM)` depends on the eigenvectors :math:`v_i`, with
    :math:`C = T` (MLE, L2) or :math:`C = T + \tfrac{\alpha}{N} G` (KL; it shares :math:`T`'s
    eigenvectors when :math:`TG = GT`). For fixed :math:`\gamma`, the trace inequality (von Neumann
    / rearrangement) gives

    .. math::

        \min_{Q^\top Q = I} \operatorname{tr}\big(C\, Q\Gamma Q^\top\big) = \sum_i
        c_i^{\downarrow}\gamma_i^{\uparrow}, \qquad
        \max_{Q^\top Q = I} \operatorname{tr}\big(C\, Q\Gamma Q^\top\big) = \sum_i
        c_i^{\downarrow}\gamma_i^{\downarrow},

    so the minimiser puts :math:`M`'s eigenvectors on :math:`C`'s, in **reverse** order (the largest
    :math:`\gamma` on the smallest :math:`c`). The paper's Eq. 4 and Theorem 2 print **max**
    (":math:`\max_{WW^\top=I}\operatorname{Tr}(TW^\top\Gamma W) =
    \operatorname{Tr}(\Lambda\Gamma)`"): that is the *largest* value over rotations (with
    :math:`\Lambda`, :math:`\Gamma` sorted alike), the wrong bound for a minimised NLL; the relevant
    statement is the min, anti-sorted. (Eq. 4 also has
    :math:`\tfrac12` on the log-det but not on the trace, whose stationary point would be
    :math:`M^{-1} = 2T`; Eq. 5 is consistent.) The problem then splits into, for each :math:`i`
    (with :math:`\lambda_i, g_i` the eigenvalues along :math:`w_i`),

    .. math::

        f_i(\gamma) = \tfrac12(\lambda_i\gamma - \log\gamma) + \tfrac{\alpha}{N} r_i(\gamma), \quad
        r_i^{\text{l2}} = \gamma, \quad r_i^{\text{kl}} = \tfrac12(g_i\gamma - 1 - \log g_i -
        \log\gamma),

    minimised at :math:`1/\gamma_i = \lambda_i + 2\alpha/N` (L2),
    :math:`1/\gamma_i = (N\lambda_i + \alpha g_i)/(N + \alpha)` (KL), :math:`1/\gamma_i = \lambda_i`
    for :math:`\alpha = 0` (Eq. 5). If :math:`\lambda_i = 0` and :math:`\alpha = 0`,
    :math:`f_i = -\tfrac12\log\gamma` is unbounded below: there is no solution to "give any positive
    number" (the paper's "ignore the solutions of :math:`\lambda_i` if :math:`\gamma_i = 0`" has the
    symbols swapped), hence a ValueError.

    Args:
        X: The data, shape ``(N, d)``.
        alpha: The penalty weight ``≥ 0``.
        kind: ``"l2"`` or ``"kl"`` (irrelevant when ``alpha = 0``).
        G: For ``"kl"``, an SPD target covariance commuting with :math:`T` (``None``: :math:`I`).

    Raises:
        ValueError: On a bad parameter, if :math:`G` does not commute with :math:`T` (then the
            problem does not decouple; use :func:`regularised`), or for ``alpha = 0`` when
            :func:`mle` would raise.

    Example:
        >>> X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 3.0], [0.0, -3.0]])  # T = diag(0.5, 4.5)
        >>> sol = decoupled(X, 4.0, "kl", G=np.diag([2.0, 1.0]))
        >>> sol.t_eigs.tolist(), sol.cov_eigs.tolist(), sol.precision_eigs.tolist()
        ([4.5, 0.5], [2.75, 1.25], [0.36363636363636365, 0.8])
        >>> kl_fit = regularised(X, 4.0, "kl", np.diag([2.0, 1.0]))
        >>> bool(np.allclose(np.sort(sol.cov_eigs), np.linalg.eigvalsh(kl_fit.cov)))
        True
    """
    N, alpha, kind, G, _, T = _regularised_problem(X, alpha, kind, G)
    d = T.shape[0]
    if G is None:
        _, W = np.linalg.eigh(T)
    else:
        scale = np.linalg.norm(T) * np.linalg.norm(G)
        if np.linalg.norm(T @ G - G @ T) > 1e-8 * max(scale, np.finfo(float).tiny):
            raise ValueError(
                "G must share T's eigenvectors (TG = GT) for the problem to decouple; use "
                "regularised()"
            )
        # A generic combination separates every joint eigenspace of the commuting pair (T, G).
        tau = (math.sqrt(2) - 1) * np.linalg.norm(T) / np.linalg.norm(G) + 1 / math.pi
        _, W = np.linalg.eigh(T + tau * G)
    t_eigs = np.einsum("ji,jk,ki->i", W, T, W)
    g_eigs = np.ones(d) if G is None else np.einsum("ji,jk,ki->i", W, G, W)
    order = np.argsort(-t_eigs, kind="stable")
    W, t_eigs, g_eigs = W[:, order], t_eigs[order], g_eigs[order]
    if alpha == 0:
        cov_eigs = t_eigs.copy()
    elif kind == "l2":
        cov_eigs = t_eigs + 2 * alpha / N
    else:
        cov_eigs = (N * t_eigs + alpha * g_eigs) / (N + alpha)
    return Decoupled(directions=W, t_eigs=t_eigs, g_eigs=g_eigs, cov_eigs=cov_eigs)


def kl_gaussian(mean0: ArrayLike, cov0: ArrayLike, mean1: ArrayLike, cov1: ArrayLike) -> float:
    r""":math:`\operatorname{KL}(\mathcal{N}_0\,\|\,\mathcal{N}_1)` between two Gaussians, in closed
    form.

    .. math::

        \operatorname{KL} = \tfrac12\Big[\operatorname{tr}(\Sigma_1^{-1}\Sigma_0)
        + (\mu_1-\mu_0)^\top\Sigma_1^{-1}(\mu_1-\mu_0) - d +
        \log\frac{\det\Sigma_1}{\det\Sigma_0}\Big],

    computed from Cholesky factors. For the study's metric "KL(truth ‖ fit)" pass the truth first
    and ``fit.mean, fit.cov`` second.

    Args:
        mean0, cov0: :math:`\mu_0` (shape ``(d,)``) and SPD :math:`\Sigma_0` (``(d, d)``).
        mean1, cov1: :math:`\mu_1` and SPD :math:`\Sigma_1`, same shapes.

    Raises:
        ValueError: If a shape disagrees, an entry is not finite or a covariance is not SPD.

    Example:
        >>> kl_gaussian([0.0], [[1.0]], [1.0], [[1.0]])
        0.5
        >>> expected = round(0.5 * (4 - 1 - math.log(4)), 6)
        >>> round(kl_gaussian([0.0], [[4.0]], [0.0], [[1.0]]), 6) == expected
        True
    """
    mean0 = _array("mean0", mean0, 1)
    d = mean0.shape[0]
    cov0 = _spd("cov0", cov0, d)
    mean1 = _array("mean1", mean1, 1)
    if mean1.shape != (d,):
        raise ValueError(f"mean1 must have shape ({d},) to match mean0, got {mean1.shape}")
    cov1 = _spd("cov1", cov1, d)
    L0 = np.linalg.cholesky(cov0)
    L1 = np.linalg.cholesky(cov1)
    A = np.linalg.solve(L1, L0)  # tr(Σ1⁻¹Σ0) = ‖L1⁻¹L0‖²_F
    m = np.linalg.solve(L1, mean1 - mean0)
    logdet = 2 * (np.sum(np.log(np.diag(L1))) - np.sum(np.log(np.diag(L0))))
    return float(0.5 * (np.sum(A * A) + m @ m - d + logdet))


def fig2_sample(delta: float, n: int = FIG2_N, seed: int = 0) -> NDArray[np.float64]:
    r"""A 1-D sample of size ``n`` standardised to mean exactly 0 and biased variance exactly δ.

    For the Fig. 2 analogue (the paper gives no δ, α or N; see :data:`FIG2_DELTAS`,
    :data:`FIG2_ALPHAS`, :data:`FIG2_N`, :data:`FIG2_G`): with this data the unregularised fit is
    exactly :math:`\mathcal{N}(0, \delta)`, the figure's dotted α = 0 curves.

    Args:
        delta: The variance δ > 0.
        n: The sample size, ``≥ 2``.
        seed: The seed of the NumPy generator.

    Example:
        >>> x = fig2_sample(2.0, n=10)
        >>> x.shape, abs(float(x.mean())) < 1e-12, round(float(x.var()), 12)
        ((10,), True, 2.0)
    """
    delta = check_positive("delta", delta)
    n = check_int("n", n, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    e = np.random.default_rng(seed).standard_normal(n)
    e = e - e.mean()
    return math.sqrt(delta) * e / e.std()


def density_1d(
    x: ArrayLike, kind: str, alpha: float, data: ArrayLike, G: float | None = None
) -> NDArray[np.float64]:
    r"""Remark 1 / Fig. 2: the density of the 1-D linear flow fitted to ``data`` with penalty
    ``kind``.

    With :math:`z = ux + b` fitted by :func:`regularised` (:math:`1/u^2 = \hat\sigma^2`), the
    density is Eq. 1, :math:`p(x) = \varphi(ux + b)\,\lvert u\rvert`, i.e.
    :math:`\mathcal{N}(x;\bar x, \hat\sigma^2)` with

    .. math::

        \hat\sigma^2_{\text{l2}} = \delta_N + \frac{2\alpha}{N}, \qquad
        \hat\sigma^2_{\text{kl}} = \frac{N\delta_N + \alpha G}{N + \alpha},

    :math:`\delta_N` the biased sample variance. As :math:`\alpha/N \to \infty` the L2 fit flattens
    to height :math:`\to 0` whatever the data (the paper's "collapse"), while the KL fit tends to
    :math:`\mathcal{N}(\bar x, G)`. ``alpha = 0`` is the MLE (dotted curves).

    Args:
        x: Where to evaluate, any shape.
        kind: ``"l2"`` or ``"kl"``.
        alpha: The penalty weight ``≥ 0`` (in samples).
        data: The 1-D sample, shape ``(N,)``.
        G: For ``"kl"``, the target variance ``> 0`` (``None``: :data:`FIG2_G` = 1); ``None`` for
            ``"l2"``.

    Raises:
        ValueError: On a bad parameter, or for ``alpha = 0`` with a constant or single-point sample.

    Example:
        >>> data = fig2_sample(4.0)
        >>> [round(float(density_1d(0.0, "l2", a, data)), 4) for a in FIG2_ALPHAS]
        [0.1995, 0.1947, 0.1629, 0.0814]
        >>> [round(float(density_1d(0.0, "kl", a, data)), 4) for a in FIG2_ALPHAS]
        [0.1995, 0.2066, 0.2523, 0.3536]
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite (found NaN or inf)")
    data = _array("data", data, 1)
    kind = check_choice("kind", kind, KINDS)
    if kind == "l2":
        if G is not None:
            raise ValueError("G must be None for kind='l2' (G is the target variance of kind='kl')")
        target = None
    else:
        target = [[check_positive("G", FIG2_G if G is None else G)]]
    alpha = check_non_negative("alpha", alpha)
    if alpha == 0 and (data.size < 2 or np.ptp(data) == 0):
        raise ValueError(
            "data must hold at least two distinct values for alpha = 0 (the MLE needs a non-zero "
            "variance)"
        )
    fit = regularised(data[:, None], alpha, kind, target)
    u = float(fit.U[0, 0])
    z = u * x + float(fit.b[0])
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * abs(u)
