r"""A flow: a transform stack plus a base distribution.

.. math:: \log p_\theta(x) = \log p_Z(f_\theta(x))
    + \log\left|\det\frac{\partial f_\theta}{\partial x}\right|
    \quad\text{(Eq. 2)}, \qquad x = f_\theta^{-1}(z),\ z \sim p_Z \text{ to sample}.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowcore.flows import fast

__all__ = ["Flow"]


class Flow(nn.Module):
    r"""A normalizing flow :math:`p_\theta` from a transform :math:`f_\theta` (data → latent) and a
    base :math:`p_Z`.

    Map with ``flow.transform(x) -> (z, log_det)`` and
    ``flow.transform.inverse(z) -> (x, log_det)``; a flow is not called directly.

    Args:
        transform: A :class:`~flowcore.flows.Transform` (usually a
            :class:`~flowcore.flows.CompositeTransform`).
        base: The base distribution, a module with ``log_prob(z)`` and ``sample(n, generator)``
            (usually :class:`~flowcore.flows.StandardNormal`).

    Example:
        >>> from flowcore.flows import CompositeTransform, Permutation, StandardNormal
        >>> flow = Flow(CompositeTransform([Permutation.reverse(2)]), StandardNormal(2))
        >>> flow.log_prob(torch.zeros(1, 2))
        tensor([-1.8379])
        >>> flow.sample(4, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 2])
    """

    #: Rows per block of the no-grad :meth:`log_prob` path; ``None`` picks
    #: ``2**20 // widest layer`` rows (4,096 for widths up to 256), clipped to [256, 4096]: a
    #: block's activations (up to 4 MB each) stay in the last-level cache while the matrix
    #: products stay large enough to run near the GEMM peak (``bench/bench_logp.py --block-rows``).
    eval_block_rows: int | None = None
    #: Whether the no-grad :meth:`log_prob` path may use oneDNN's fused linear for float32 on the
    #: CPU (:func:`~flowcore.flows.onednn_linear_available`); ``False`` takes ``addmm`` (MKL) as the
    #: autograd path does.
    eval_onednn: bool = True

    #: Set ``True`` on a flow whose layers have no fast no-grad path by design: ``log_prob`` then
    #: uses the autograd path under ``torch.no_grad`` without a ``FastPathWarning``.
    autograd_only: bool = False

    def __init__(self, transform: nn.Module, base: nn.Module):
        super().__init__()
        self.transform = transform
        self.base = base

    def forward(self, *args, **kwargs):
        raise TypeError(
            f"a {type(self).__name__} is not called directly: use flow.log_prob(x), "
            "flow.transform(x) -> (z, log_det) or flow.transform.inverse(z) -> (x, log_det)"
        )

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\log p_\theta(x) = \log p_Z(f_\theta(x)) +
        \log|\det \partial f_\theta/\partial x|` (Eq. 2), in nats.

        With gradients off (``torch.no_grad`` / ``torch.inference_mode``) this tries the fast path
        of :mod:`flowcore.flows.fast` (blocks of :attr:`eval_block_rows` rows, in place, oneDNN
        for float32 on the CPU unless :attr:`eval_onednn` is ``False``), which warns once and
        falls back here if a layer has none; with gradients on (training) it is the transform's
        ``forward`` followed by the base density.
        """
        if not torch.is_grad_enabled():
            log_p = fast.log_prob_no_grad(self, x)
            if log_p is not None:
                return log_p
        z, log_det = self.transform(x)
        return self.base.log_prob(z) + log_det

    def log_prob_and_log_scales(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(log_prob(x), log_scales)`` from one autograd pass: ``log_scales`` holds each
        coupling's :math:`s`, of shape ``(..., n_transformed)``, in layer order.

        The log-probabilities are the same numbers :meth:`log_prob` computes with gradients on;
        :func:`flowcore.train.fit` uses this to hand the log-scales to extra loss terms.

        Example:
            >>> from flowcore.flows import RealNVP
            >>> log_p, log_scales = RealNVP(3, n_couplings=2, hidden=(4,)).log_prob_and_log_scales(
            ...     torch.zeros(5, 3)
            ... )
            >>> log_p.shape, [s.shape for s in log_scales]
            (torch.Size([5]), [torch.Size([5, 2]), torch.Size([5, 1])])
        """
        log_scales: list[Tensor] = []
        z, log_det = self.transform(x, log_scales=log_scales)
        return self.base.log_prob(z) + log_det, log_scales

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        r"""Draw ``n`` samples: :math:`z \sim p_Z`, :math:`x = f_\theta^{-1}(z)` (§2.1.4).

        With a (CPU) ``generator``, :math:`z` is drawn on the CPU and moved to the flow's device.
        """
        z = self.base.sample(n, generator=generator)
        return self.transform.inverse(z)[0]
