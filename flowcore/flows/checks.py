r"""Checks of a transform against autograd, shared by the tests of every flow family.

A transform's reported log-determinant must equal :math:`\log|\det J|` of its autograd Jacobian,
its inverse must undo it, and the inverse's log-determinant must be minus the forward one. These
helpers compute the reference in whatever dtype the input has (the tests use float64).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["randomize", "autograd_log_det", "check_inverse_and_log_dets"]


def randomize(module: nn.Module, generator: torch.Generator, scale: float = 0.3) -> nn.Module:
    """Give every parameter random values ``scale·N(0, 1)`` from ``generator`` (zero-initialised
    layers included), so that no layer is the identity and a check means something.

    Example:
        >>> layer = randomize(torch.nn.Linear(2, 2), torch.Generator().manual_seed(0))
        >>> bool((layer.weight != 0).all())
        True
    """
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return module


def autograd_log_det(fn: Callable[[Tensor], tuple[Tensor, Tensor]], v: Tensor) -> Tensor:
    r""":math:`\log|\det \partial f/\partial v|` at one point ``v`` (shape ``(D,)``) from the
    autograd Jacobian of ``fn`` (a transform's ``forward`` or ``inverse``, taking a batch).

    Example:
        >>> from flowcore.flows import Permutation
        >>> float(autograd_log_det(Permutation.reverse(3), torch.ones(3, dtype=torch.float64)))
        0.0
    """
    jac = torch.autograd.functional.jacobian(lambda u: fn(u.unsqueeze(0))[0].squeeze(0), v)
    return torch.linalg.slogdet(jac).logabsdet


def check_inverse_and_log_dets(
    transform,
    x: Tensor,
    z: Tensor,
    log_det: Tensor,
    inverse_atol: float,
    log_det_atol: float,
    rows: int | None = None,
) -> None:
    """Assert that ``transform.inverse(z)`` returns ``x`` with log-det ``−log_det``, and that both
    directions' log-dets match the autograd Jacobian at the first ``rows`` rows (all by default).
    ``(z, log_det)`` is the caller's forward pass, so it can also inspect the log-scales.

    Example:
        >>> from flowcore.flows import Permutation
        >>> t, x = Permutation.reverse(3), torch.randn(2, 3, dtype=torch.float64)
        >>> check_inverse_and_log_dets(t, x, *t(x), inverse_atol=1e-12, log_det_atol=1e-12)
    """
    x_back, inv_log_det = transform.inverse(z)
    assert torch.allclose(x_back, x, atol=inverse_atol), "the inverse does not return x"
    assert torch.allclose(inv_log_det, -log_det, atol=inverse_atol), (
        "the inverse's log-det is not minus the forward one"
    )
    for i in range(len(x) if rows is None else rows):
        assert torch.allclose(autograd_log_det(transform, x[i]), log_det[i], atol=log_det_atol), (
            f"forward log-det at row {i}"
        )
        assert torch.allclose(
            autograd_log_det(transform.inverse, z[i]), inv_log_det[i], atol=log_det_atol
        ), f"inverse log-det at row {i}"
