r"""RealNVP: affine couplings with alternating masks and optional permutations between them."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from flowcore.flows.couplings import AffineCoupling, alternating, check_mask, halves
from flowcore.flows.distributions import StandardNormal
from flowcore.flows.flow import Flow
from flowcore.flows.spec import LOG_SCALE_MAPS
from flowcore.flows.transforms import CompositeTransform, Permutation
from flowcore.validation import check_choice, check_int, check_int_list, check_positive

__all__ = ["RealNVP"]


class RealNVP(Flow):
    r"""A plain RealNVP: ``n_couplings`` :class:`~flowcore.flows.AffineCoupling` layers on a
    :math:`\mathcal{N}(0, I)` base, with optional fixed permutations between consecutive couplings.

    Coupling ``i`` takes the mask ``mask(dim, i % 2)``, so consecutive couplings transform the
    coordinates the previous one copied. Between couplings ``i-1`` and ``i`` (``i > 0``) the
    ``permutation`` layer mixes the coordinates, so every coordinate is eventually conditioned on
    every other:

    * ``"random"``: fixed random permutations, drawn in order from
      ``torch.Generator().manual_seed(permutation_seed)`` (never the global RNG) and stored as
      buffers;
    * ``"reverse"``: the reversal :math:`D-1, \dots, 0`;
    * ``"none"``: no layer.

    With ``zero_init`` and ``log_scale`` ``"exp"`` or ``"tanh"``, every coupling starts as the
    identity, so the flow is a fixed permutation and :math:`p_\theta = \mathcal{N}(0, I)` exactly
    (:attr:`initially_identity`).
    The st-networks' weights come from the global RNG, in layer order.

    Args:
        dim: Data dimension ``D ≥ 2`` (odd ``D`` works: the halves are ``⌊D/2⌋`` and ``⌈D/2⌉``).
        n_couplings: Number of coupling layers ``≥ 1``.
        hidden: Hidden widths of each st-network.
        mask: ``"halves"`` (:func:`~flowcore.flows.halves`), ``"alternating"``
            (:func:`~flowcore.flows.alternating`), or a callable ``mask(dim, parity)`` returning a
            boolean mask of shape ``(dim,)``.
        permutation: ``"random"``, ``"reverse"`` or ``"none"``.
        log_scale: The couplings' log-scale map, ``"exp"``, ``"tanh"`` or ``"sigmoid"``.
        log_scale_bound: Bound ``b`` of the ``"tanh"`` map.
        zero_init: Whether each st-network's last layer starts at zero.
        permutation_seed: Seed of the ``"random"`` permutations.

    Example:
        >>> flow = RealNVP(3, n_couplings=2, hidden=(8,), mask="alternating", permutation="reverse")
        >>> x = torch.randn(4, 3)
        >>> z, log_det = flow.transform(x)
        >>> torch.allclose(flow.transform.inverse(z)[0], x), flow.log_prob(x).shape
        (True, torch.Size([4]))
    """

    MASKS: dict[str, Callable[[int, int], Tensor]] = {"halves": halves, "alternating": alternating}
    PERMUTATIONS = ("random", "reverse", "none")

    def __init__(
        self,
        dim: int,
        n_couplings: int = 8,
        hidden: tuple[int, ...] = (64, 64),
        mask: str | Callable[[int, int], Tensor] = "halves",
        permutation: str = "random",
        log_scale: str = "tanh",
        log_scale_bound: float = 3.0,
        zero_init: bool = True,
        permutation_seed: int = 0,
    ):
        # Check everything before the first coupling draws weights from the global RNG.
        dim = check_int("dim", dim, minimum=2)
        n_couplings = check_int("n_couplings", n_couplings, minimum=1)
        hidden = check_int_list("hidden", hidden, minimum=1)
        if isinstance(mask, str) or not callable(mask):
            mask = self.MASKS[check_choice("mask", mask, tuple(self.MASKS))]
        masks = [check_mask(f"mask({dim}, {parity})", mask(dim, parity)) for parity in (0, 1)]
        for parity, m in enumerate(masks):
            if m.shape != (dim,):
                raise ValueError(
                    f"mask({dim}, {parity}) must have shape ({dim},), got {tuple(m.shape)}"
                )
        permutation = check_choice("permutation", permutation, self.PERMUTATIONS)
        check_choice("log_scale", log_scale, AffineCoupling.LOG_SCALES)
        check_positive("log_scale_bound", log_scale_bound)
        if not isinstance(zero_init, bool):
            raise ValueError(f"zero_init must be True or False, got {zero_init!r}")
        g = torch.Generator().manual_seed(
            check_int("permutation_seed", permutation_seed, minimum=0)
        )
        layers: list[nn.Module] = []
        for i in range(n_couplings):
            if i > 0 and permutation == "random":
                layers.append(Permutation.random(dim, g))
            elif i > 0 and permutation == "reverse":
                layers.append(Permutation.reverse(dim))
            layers.append(
                AffineCoupling(masks[i % 2], hidden, log_scale, log_scale_bound, zero_init)
            )
        super().__init__(CompositeTransform(layers), StandardNormal(dim))
        self.dim = dim
        #: Whether the flow *as built* (before any training step) is a permutation of the identity,
        #: so that its density is its base's, N(0, I), exactly: zero-initialised couplings whose
        #: log-scale map sends 0 to 0 (``exp``, ``tanh``; nflows' ``sigmoid`` map does not).
        self.initially_identity = zero_init and LOG_SCALE_MAPS[log_scale].zero_at_zero
