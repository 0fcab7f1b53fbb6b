r"""Base distributions of a flow.

A flow maps data to latent, :math:`z = f_\theta(x)`, and scores :math:`z` under a fixed base density
:math:`p_Z`; the only one needed so far is the standard normal.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowcore.gaussians import LOG_2PI
from flowcore.validation import check_int

__all__ = ["LOG_2PI_F32", "StandardNormal", "standard_normal_log_prob"]

#: :math:`\log 2\pi` as every flow density uses it: rounded to float32, and that value widened for
#: float64, so that a flow's density does not depend on when ``.double()`` ran. (A float32 number
#: held in a Python float: ``D * LOG_2PI_F32`` is exact, and rounds to float32 as a float32 product
#: does.)
LOG_2PI_F32: float = float(torch.tensor(LOG_2PI, dtype=torch.float32))


def standard_normal_log_prob(z: Tensor, log_2pi: Tensor | float = LOG_2PI_F32) -> Tensor:
    r""":math:`\log \mathcal{N}(z; 0, I_D) = -\tfrac12\left(D \log 2\pi + \|z\|^2\right)` over the
    last dimension, in nats.

    The one definition of the base density: :class:`StandardNormal`, the no-grad fast path and the
    stacked trainer call it. ``log_2pi`` is :data:`LOG_2PI_F32`, or a flow's base's
    :attr:`StandardNormal.log_2pi` (the same value, as a tensor on its device); the results are
    bitwise equal.

    Example:
        >>> standard_normal_log_prob(torch.zeros(1, 2))
        tensor([-1.8379])
    """
    return -0.5 * (z.shape[-1] * log_2pi + z.square().sum(-1))


class StandardNormal(nn.Module):
    r"""The standard normal :math:`\mathcal{N}(0, I_D)`:

    .. math:: \log p_Z(z) = -\tfrac12\left(D \log 2\pi + \|z\|^2\right).

    It has no parameters; :math:`\log 2\pi` is a float buffer (:attr:`log_2pi`, :data:`LOG_2PI_F32`)
    so that the density follows the flow's dtype and device (``.double()``, ``.to("cuda")``). The
    buffer starts as a float32 value, and a float64 flow uses that value widened: results do not
    depend on when ``.double()`` ran.

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
        # Named _log_2pi in saved state dicts: keep the name.
        self.register_buffer("_log_2pi", torch.tensor(LOG_2PI_F32, dtype=torch.float32))

    @property
    def log_2pi(self) -> Tensor:
        """:data:`LOG_2PI_F32` as a 0-d tensor in the base's dtype, on its device (the flow's dtype
        and device)."""
        return self._log_2pi

    def log_prob(self, z: Tensor) -> Tensor:
        r""":math:`\log \mathcal{N}(z; 0, I)` over the last dimension, in nats
        (:func:`standard_normal_log_prob`)."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"z must have last dimension {self.dim}, got shape {tuple(z.shape)}")
        return standard_normal_log_prob(z, self._log_2pi)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of shape ``(n, D)`` in the buffer's dtype, on its device.

        With a ``generator`` (a CPU generator) the draws are made on the CPU and then moved, so a
        seed gives the same samples on every device.
        """
        n = check_int("n", n, minimum=1)
        ref = self._log_2pi
        z = torch.randn(
            n,
            self.dim,
            generator=generator,
            dtype=ref.dtype,
            device="cpu" if generator is not None else ref.device,
        )
        return z.to(ref.device)
