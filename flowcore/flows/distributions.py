r"""Base distributions of a flow.

A flow maps data to latent, :math:`z = f_\theta(x)`, and scores :math:`z` under a fixed base density
:math:`p_Z`; the only one needed so far is the standard normal.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowcore.gaussians import LOG_2PI
from flowcore.validation import check_int

__all__ = ["StandardNormal"]


class StandardNormal(nn.Module):
    r"""The standard normal :math:`\mathcal{N}(0, I_D)`:

    .. math:: \log p_Z(z) = -\tfrac12\left(D \log 2\pi + \|z\|^2\right).

    It has no parameters; :math:`\log 2\pi` is a float buffer so that the density follows the
    flow's dtype and device (``.double()``, ``.to("cuda")``). The buffer starts as a float32 value,
    and a float64 flow uses that value widened: results do not depend on when ``.double()`` ran.

    Args:
        dim: The dimension ``D ≥ 1``.

    Example:
        >>> base = StandardNormal(2)
        >>> base.log_prob(torch.zeros(1, 2))
        tensor([-1.8379])
        >>> base.sample(3, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([3, 2])
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = check_int("dim", dim, minimum=1)
        self.register_buffer("_log_2pi", torch.tensor(LOG_2PI))

    def log_prob(self, z: Tensor) -> Tensor:
        r""":math:`\log \mathcal{N}(z; 0, I)` over the last dimension, in nats."""
        return -0.5 * (self.dim * self._log_2pi + z.square().sum(-1))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of shape ``(n, D)`` in the buffer's dtype, on its device.

        With a ``generator`` (a CPU generator) the draws are made on the CPU and then moved, so a
        seed gives the same samples on every device.
        """
        n = check_int("n", n, minimum=1)
        ref = self._log_2pi
        z = torch.randn(n, self.dim, generator=generator, dtype=ref.dtype, device="cpu" if generator is not None else ref.device)
        return z.to(ref.device)
