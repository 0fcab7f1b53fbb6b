r"""Invertible transforms that report their log-Jacobian determinant both ways.

Convention (as in nflows): ``forward`` maps data to latent, :math:`z = f(x)`, and returns
``(z, log|det ∂z/∂x|)``; ``inverse`` maps back and returns ``(x, log|det ∂x/∂z|)``. The log-dets
are per sample (shape ``x.shape[:-1]``), and the inverse's is minus the forward's at the
corresponding point.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from flowcore.flows import fast
from flowcore.flows.fast import FastPathUnsupported, PermuteStep
from flowcore.validation import check_int

__all__ = ["Transform", "CompositeTransform", "Permutation"]


class Transform(nn.Module):
    r"""Base of every invertible map :math:`f` of :math:`\mathbb{R}^D`.

    Subclasses implement:

    * ``forward(x, log_scales=None) -> (z, log|det ∂z/∂x|)``. A transform that has log-scales
      (an affine coupling) appends them to ``log_scales`` when it is a list, so that a training
      loss can see them (:meth:`flowcore.flows.Flow.log_prob_and_log_scales`); others ignore it.
    * ``inverse(z) -> (x, log|det ∂x/∂z|)``.
    * optionally ``fast_steps()``, the list of primitive steps (:mod:`flowcore.flows.fast`) that
      compute the same thing as ``forward``: that is how a transform declares that the no-grad
      fast path covers it. The default says it does not.

    Example:
        >>> class Shift(Transform):
        ...     def forward(self, x, log_scales=None):
        ...         return x + 1, x.new_zeros(x.shape[:-1])
        ...     def inverse(self, z):
        ...         return z - 1, z.new_zeros(z.shape[:-1])
        >>> Shift()(torch.zeros(1, 2))
        (tensor([[1., 1.]]), tensor([0.]))
    """

    def forward(self, x: Tensor, log_scales: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Data → latent: ``(z, log|det ∂z/∂x|)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Latent → data: ``(x, log|det ∂x/∂z|)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement inverse")

    def fast_steps(self) -> list:
        """The fast path's steps for this transform; raises :class:`FastPathUnsupported` if it has
        none."""
        raise FastPathUnsupported(
            f"{type(self).__name__} does not declare a fast path (no fast_steps())"
        )


class CompositeTransform(Transform):
    r"""Transforms applied in order, :math:`f = f_K \circ \dots \circ f_1`, so that

    .. math:: \log\left|\det\frac{\partial f}{\partial x}\right|
        = \sum_{k=1}^K \log\left|\det\frac{\partial f_k}{\partial x_{k-1}}\right|.

    ``inverse`` applies the inverses in reverse order. The log-dets are summed in layer order,
    starting from zeros.

    Args:
        transforms: The transforms :math:`f_1, \dots, f_K` (modules with ``forward`` and ``inverse``
            as in :class:`Transform`).

    Example:
        >>> t = CompositeTransform([Permutation.reverse(3), Permutation([1, 2, 0])])
        >>> z, log_det = t(torch.tensor([[1.0, 2.0, 3.0]]))
        >>> z, log_det
        (tensor([[2., 1., 3.]]), tensor([0.]))
        >>> t.inverse(z)[0]
        tensor([[1., 2., 3.]])
    """

    def __init__(self, transforms: Iterable[nn.Module]):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    def forward(self, x: Tensor, log_scales: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        log_det = x.new_zeros(x.shape[:-1])
        for transform in self.transforms:
            # Only pass log_scales when asked for, so a transform with a plain forward(x) works
            # everywhere except where log-scales are collected.
            x, ld = transform(x) if log_scales is None else transform(x, log_scales=log_scales)
            if (
                type(transform) is not Permutation
            ):  # a Permutation's log-det is exactly zero: one op and one autograd node fewer
                log_det = log_det + ld
        return x, log_det

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        log_det = z.new_zeros(z.shape[:-1])
        for transform in reversed(self.transforms):
            z, ld = transform.inverse(z)
            log_det = log_det + ld
        return z, log_det

    def fast_steps(self) -> list:
        steps: list = []
        for i, transform in enumerate(self.transforms):
            declare = getattr(transform, "fast_steps", None)
            if declare is None:
                raise FastPathUnsupported(
                    f"transforms[{i}] ({type(transform).__name__}) does not declare a fast path "
                    "(no fast_steps())"
                )
            try:
                steps += declare()
            except FastPathUnsupported as e:
                raise FastPathUnsupported(f"transforms[{i}]: {e}") from None
        return steps


class Permutation(Transform):
    """A fixed permutation of the coordinates, :math:`z = x_{\\pi}`; volume-preserving,
    ``log_det = 0``.

    Args:
        perm: A permutation of ``0, …, D-1``: ``z[..., i] = x[..., perm[i]]``.

    Raises:
        ValueError: If ``perm`` is not a permutation of ``0, …, D-1``.

    Example:
        >>> p = Permutation([2, 0, 1])
        >>> p(torch.tensor([[10.0, 11.0, 12.0]]))
        (tensor([[12., 10., 11.]]), tensor([0.]))
        >>> Permutation.reverse(3).perm
        tensor([2, 1, 0])
    """

    def __init__(self, perm: Tensor | Iterable[int]):
        super().__init__()
        perm = torch.as_tensor(perm)
        if (
            perm.dtype in (torch.bool,)
            or perm.is_floating_point()
            or perm.is_complex()
            or perm.dim() != 1
            or len(perm) == 0
        ):
            raise ValueError(
                f"perm must be a 1-D integer tensor holding a permutation of 0..D-1, got {perm!r}"
            )
        perm = perm.to(torch.long)
        if not torch.equal(perm.sort().values, torch.arange(len(perm), device=perm.device)):
            raise ValueError(
                f"perm must be a permutation of 0..{len(perm) - 1}, got {perm.tolist()}"
            )
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    @classmethod
    def reverse(cls, dim: int) -> Permutation:
        """The reversal ``D-1, …, 0``."""
        return cls(torch.arange(check_int("dim", dim, minimum=1) - 1, -1, -1))

    @classmethod
    def random(cls, dim: int, generator: torch.Generator | int = 0) -> Permutation:
        """A fixed random permutation, ``torch.randperm(dim, generator=generator)``.

        ``generator`` is a ``torch.Generator`` (successive calls draw successive permutations) or
        an integer seed; the global RNG is never used, so building a flow draws the same weights
        whatever its permutations.
        """
        dim = check_int("dim", dim, minimum=1)
        if not isinstance(generator, torch.Generator):
            generator = torch.Generator().manual_seed(check_int("generator", generator, minimum=0))
        return cls(torch.randperm(dim, generator=generator))

    def forward(self, x: Tensor, log_scales: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        # Training on the CPU in float32 (fast.fused_training_applies): one index_select whose
        # backward is an index_select (fast.FusedPermutation); the same values.
        if x.requires_grad and fast.fused_training_applies(x):
            return fast.FusedPermutation.apply(x, self.perm, self.inv_perm), x.new_zeros(
                x.shape[:-1]
            )
        return x[..., self.perm], x.new_zeros(x.shape[:-1])

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z[..., self.inv_perm], z.new_zeros(z.shape[:-1])

    def fast_steps(self) -> list:
        if type(self).forward is not Permutation.forward:
            raise FastPathUnsupported(
                f"{type(self).__name__} overrides forward but not fast_steps()"
            )
        return [PermuteStep(self.perm)]
