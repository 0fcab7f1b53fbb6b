r"""Checks of a transform against autograd, shared by the tests of every flow family.

A transform's reported log-determinant must equal :math:`\log|\det J|` of its autograd Jacobian,
its inverse must undo it, and the inverse's log-determinant must be minus the forward one. These
helpers compute the reference in whatever dtype the input has (the tests use float64).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["randomize", "autograd_log_det"]


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
    r""":math:`\log|\det \partial f/\partial v|` at one point ``v`` (shape ``(D,)``) from the autograd
    Jacobian of ``fn`` (a transform's ``forward`` or ``inverse``, taking a batch).

    Example:
        >>> from flowcore.flows import Permutation
        >>> float(autograd_log_det(Permutation.reverse(3), torch.ones(3, dtype=torch.float64)))
        0.0
    """
    jac = torch.autograd.functional.jacobian(lambda u: fn(u.unsqueeze(0))[0].squeeze(0), v)
    return torch.linalg.slogdet(jac).logabsdet
