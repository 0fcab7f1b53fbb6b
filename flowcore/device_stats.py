r"""A family's per-member detection statistics as batched tensors, on whatever device holds them.

The thesis study computes them in NumPy (:mod:`flowcore.estimators`: :func:`~flowcore.estimators.
fit_bounds_sorted`, :func:`~flowcore.estimators.true_negative_rate_sorted`,
:func:`~flowcore.estimators.auroc_sorted`), which on a GPU would mean copying every member's
:math:`N` scores to the host. The same numbers come from tensors here, for all members at once
(one row per member), with the same arithmetic, so they are **bitwise** those of the NumPy
functions (tested on the CPU, in float64):

- the bounds of the likelihood detector at a TPR are the two quantiles :math:`(1 \mp
  \mathrm{TPR})/2` of the sorted reference scores, by NumPy's default ("linear") rule with its own
  two formulas (:func:`quantiles_sorted`);
- the TNR of a member is the share of its scores outside the bounds, counted by two binary
  searches in its sorted scores (:func:`true_negative_rates`);
- the AUROC is the Mann–Whitney statistic, :math:`2U` counted exactly in integers by binary
  searches of each member's scores in the sorted reference (ties count half), then
  :math:`U / n_b / n_a` (:func:`aurocs`).

Nothing here synchronises with the host: the results stay tensors on the scores' device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowcore.validation import check_probability

__all__ = ["quantiles_sorted", "fit_bounds", "true_negative_rates", "aurocs"]


def _float64(name: str, values: Tensor, dims: int) -> Tensor:
    if not isinstance(values, Tensor) or values.dim() != dims:
        raise ValueError(f"{name} must be a {dims}-D tensor, got {type(values).__name__}")
    if values.shape[-1] < 1:
        raise ValueError(f"{name} must hold at least one value per row")
    return values.to(torch.float64)


def quantiles_sorted(values: Tensor, q) -> Tensor:
    r"""``np.quantile(values, q)`` (the "linear" rule) of a sorted 1-D tensor, bitwise (``q``: a
    float64 tensor or a list of floats; a float32 ``q`` would round them first).

    For :math:`n` sorted values the quantile :math:`q` sits at :math:`v = (n-1)q`,
    :math:`i = \lfloor v \rfloor`, :math:`\gamma = v - i`: :math:`x_i + \gamma(x_{i+1} - x_i)`, or
    :math:`x_{i+1} - (1-\gamma)(x_{i+1} - x_i)` when :math:`\gamma \ge \tfrac12`, as NumPy computes
    it.

    Example:
        >>> x = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
        >>> quantiles_sorted(x, [0.0, 0.5, 0.9, 1.0]).tolist()
        [1.0, 3.0, 6.800000000000001, 8.0]
    """
    values = _float64("values", values, 1)
    q = torch.as_tensor(q, dtype=torch.float64, device=values.device)
    n = values.shape[0]
    virtual = (n - 1) * q
    above = virtual >= n - 1  # the last value: NumPy then takes index -1 with γ = v + 1
    previous = torch.where(above, torch.full_like(virtual, -1.0), torch.floor(virtual)).long()
    following = torch.where(above, previous, previous + 1)
    gamma = virtual - previous.to(torch.float64)
    a, b = values[previous], values[following]
    diff = b - a
    return torch.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def fit_bounds(sorted_reference: Tensor, tpr: float) -> Tensor:
    """The detector's bounds ``(lower, upper)``, shape ``(2,)``: the quantiles
    :math:`(1 \\mp \\mathrm{TPR})/2` of the sorted reference scores (bitwise
    :func:`flowcore.estimators.fit_bounds_sorted`).

    Example:
        >>> fit_bounds(torch.arange(101, dtype=torch.float64), 0.9).tolist()  # NumPy's too
        [4.999999999999999, 95.0]
    """
    tpr = check_probability("tpr", tpr)
    q = torch.tensor([(1 - tpr) / 2, (1 + tpr) / 2], dtype=torch.float64)
    return quantiles_sorted(sorted_reference, q)


def true_negative_rates(sorted_rows: Tensor, bounds: Tensor) -> Tensor:
    r"""Per row of ``sorted_rows`` (one member's sorted scores each), the share of scores outside
    ``bounds`` = ``(lower, upper)``: :math:`(n - \max(0, i_U - i_L)) / n` with :math:`i_L` =
    #(scores < L) and :math:`i_U` = #(scores ≤ U) (bitwise
    :func:`flowcore.estimators.true_negative_rate_sorted`).

    Example:
        >>> rows = torch.tensor([[-3.0, -2.0, 2.0, 2.5], [0.0, 0.5, 1.0, 1.5]], dtype=torch.float64)
        >>> true_negative_rates(rows, torch.tensor([-2.0, 2.0], dtype=torch.float64)).tolist()
        [0.5, 0.0]
    """
    rows = _float64("sorted_rows", sorted_rows, 2).contiguous()
    m, n = rows.shape
    bounds = bounds.to(device=rows.device, dtype=torch.float64)
    lower = bounds[0].expand(m, 1).contiguous()
    upper = bounds[1].expand(m, 1).contiguous()
    inside = (
        torch.searchsorted(rows, upper, right=True) - torch.searchsorted(rows, lower, right=False)
    ).clamp(min=0)[:, 0]
    return (n - inside).to(torch.float64) / n


def aurocs(sorted_reference: Tensor, rows: Tensor) -> Tensor:
    r"""Per row of ``rows`` (one member's scores each, any order), the AUROC of the reference
    (in-distribution) scores against it: :math:`U / n_b / n_a` with
    :math:`2U = 2 n_a n_b - \sum_j (\#\{a \le b_j\} + \#\{a < b_j\})`, counted exactly in int64
    (bitwise :func:`flowcore.estimators.auroc_sorted`).

    Example:
        >>> a = torch.tensor([3.0, 4.0, 5.0], dtype=torch.float64)
        >>> aurocs(a, torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)).tolist()
        [1.0, 0.6666666666666666]
    """
    a = _float64("sorted_reference", sorted_reference, 1).contiguous()
    b = _float64("rows", rows, 2).contiguous()
    at_most = torch.searchsorted(a, b, right=True)  # #{a ≤ b_j}
    below = torch.searchsorted(a, b, right=False)  # #{a < b_j}
    twice_u = 2 * a.shape[0] * b.shape[1] - at_most.sum(dim=1) - below.sum(dim=1)
    return twice_u.to(torch.float64) / 2 / b.shape[1] / a.shape[0]
