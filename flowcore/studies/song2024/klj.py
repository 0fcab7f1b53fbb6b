r"""The deep KL-Jacobian regulariser ("KLJ") of Song et al., "Robustly Train Normalizing Flows via
KL Divergence Regularization" (AAAI 2024), Eqs. 8–11, for affine-coupling flows.

**From the linear KL to a per-coupling penalty.** For a linear flow the paper regularises
:math:`M = UU^\top` with :math:`KL(M, G^{-1}) = \mathrm{Tr}(MG) - \log\det(MG)` (Theorem 3). For a
deep flow it applies this, with :math:`G = I`, to each coupling's Jacobian :math:`L_i(x)`, using
:math:`\mathrm{Tr}(L_iL_i^\top) = \|L_i\|_F^2` and :math:`\det(L_iL_i^\top) = (\det L_i)^2`:

.. math:: \mathbb{KLJ} = \mathbb{E}_{x}\sum_{i=1}^R
    \left(\|L_i(x)\|_F^2 - 2\log|\det L_i(x)|\right). \qquad \text{(Eq. 8)}

An affine coupling :math:`y_A = x_A`, :math:`y_B = x_B \odot e^{s} + t` has, up to a simultaneous
permutation of rows and columns, the triangular Jacobian of Eq. 9, with diagonal
:math:`d_j = e^{s_j}` on the transformed coordinates :math:`B`, :math:`1` on the copied ones
:math:`A`, and an off-diagonal block :math:`\hat L_i = \partial y_B/\partial x_A`. So

.. math:: \|L_i\|_F^2 = \sum_{j\in B} d_j^2 + |A| + \|\hat L_i\|_F^2, \qquad
    \log|\det L_i| = \sum_{j\in B}\log d_j = \sum_{j \in B} s_j.

The paper drops :math:`\hat L_i` (bounded through weight decay, below) and the constant
:math:`|A|`, which gives the bracket of Eq. 11,
:math:`\sum_i \left(\sum_{j\in B_i} d_{ij}^2 - 2\log|\det L_i|\right)`.

**What** :func:`klj_term` **computes** (``form="paper"``): that bracket with the constant
:math:`-1` per transformed coordinate added, so that it is a true divergence,

.. math:: \mathrm{KLJ}(x) = \sum_{i=1}^R \sum_{j \in B_i} \left(d_{ij}^2 - 1 - 2\log d_{ij}\right)
    = \sum_{i=1}^R \sum_{j \in B_i} \left(e^{2s_{ij}} - 1 - 2 s_{ij}\right) \;\ge\; 0,

zero exactly at the identity (:math:`s = 0`); each summand is
:math:`2\,KL(\mathcal N(0, d^2)\,\|\,\mathcal N(0, 1))`. Summed over *all* :math:`D` coordinates,
:math:`\sum_j (L_{jj}^2 - 1) - 2\log|\det L_i|` is the same number, because a copied coordinate has
:math:`d = 1` and contributes :math:`1 - 1 - 0 = 0`: that is how copied coordinates are treated
(:func:`klj_from_jacobian` computes it this way from a full Jacobian). The constant changes neither
gradients nor minimisers; the literal Eq. 11 bracket is larger by :math:`\sum_i |B_i|`. The loss
term is :math:`\gamma\,\frac{1}{|\mathcal B|}\sum_{x\in\mathcal B}\mathrm{KLJ}(x)`.

``form="code"`` is the public repository's variant, **not** the paper's Eq. 9: it squares the
log-scale itself instead of the diagonal entry :math:`e^{s}` and averages over the couplings,
:math:`\frac1R\sum_i\sum_{j\in B_i}(s_{ij}^2 - 2 s_{ij})`, minimised at :math:`s = 1` (scale
:math:`e`), not at the identity (see :func:`klj_per_coupling`).

**The off-diagonal block** (Eq. 10's :math:`\mathbb R_1`): for a ReLU st-network
:math:`\|\partial t/\partial x_A\|_F^2 \le \prod_k \|W_k\|_F^2` (:func:`frobenius_bound` checks it),
and the paper controls the product through weight decay, :func:`weight_decay_term`.

Example:
    >>> import torch
    >>> from flowcore.flows import RealNVP
    >>> from flowcore.train import TrainConfig, fit
    >>> flow = RealNVP(2, n_couplings=2, hidden=(8,))
    >>> x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    >>> config = TrainConfig(batch_size=32, max_epochs=1)
    >>> terms = [klj_term(0.01), weight_decay_term(flow, 1e-4)]
    >>> len(fit(flow, x, x, config, progress=False, loss_terms=terms).val_nll)
    1
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from flowcore.flows.image import ImageAffineCoupling
from flowcore.flows.transforms import CompositeTransform
from flowcore.train import LossTerm
from flowcore.validation import check_choice, check_non_negative

__all__ = [
    "FORMS",
    "coupling_jacobians",
    "frobenius_bound",
    "jacobian_diagonal",
    "klj_from_jacobian",
    "klj_per_coupling",
    "klj_term",
    "st_network_weights",
    "weight_decay_term",
]

#: The forms of :func:`klj_term`: ``"paper"`` (Eq. 9/11 on the Jacobian diagonal :math:`e^{s}`) and
#: ``"code"`` (the public repository's square of the log-scale itself).
FORMS = ("paper", "code")


# ------------------------------------------------------------------------------------ the penalty


def klj_per_coupling(log_scales: Sequence[Tensor], form: str = "paper") -> Tensor:
    r"""Each coupling's KLJ penalty per sample, shape ``(batch, R)``, from its log-scales
    :math:`s_i`.

    * ``"paper"``: :math:`\sum_{j\in B_i}\left(e^{2s_{ij}} - 1 - 2s_{ij}\right)`, i.e.
      :math:`\sum_j (d_{ij}^2 - 1 - 2\log d_{ij})` on the Jacobian diagonal :math:`d = e^{s}`
      (Eq. 9/11 plus the constant that makes it zero at the identity; see the module docstring).
    * ``"code"``: :math:`\sum_{j\in B_i}\left(s_{ij}^2 - 2s_{ij}\right)`, the public repository's
      form: it squares the log-scale (its raw, pre-clamp :math:`\hat s`; here the :math:`s` the
      coupling reports, which is :math:`\hat s` for ``log_scale="exp"``) where Eq. 9 has the
      diagonal entry :math:`e^{s}`. Not the paper's Eq. 9; it is negative for
      :math:`0 < s < 2` and smallest at :math:`s = 1`.

    Args:
        log_scales: One tensor per coupling, shape ``(batch, n_transformed)`` (as
            :meth:`flowcore.flows.Flow.log_prob_and_log_scales` returns them).
        form: ``"paper"`` or ``"code"``.

    Raises:
        ValueError: If ``form`` is not one of :data:`FORMS` or ``log_scales`` is empty.

    Example:
        >>> s = [torch.zeros(2, 3), torch.full((2, 1), 0.5)]
        >>> klj_per_coupling(s)                  # e^1 - 1 - 1 = 0.7183 for the second coupling
        tensor([[0.0000, 0.7183],
                [0.0000, 0.7183]])
        >>> klj_per_coupling(s, form="code")     # 0.25 - 1
        tensor([[ 0.0000, -0.7500],
                [ 0.0000, -0.7500]])
    """
    form = check_choice("form", form, FORMS)
    if len(log_scales) == 0:
        raise ValueError(
            "log_scales must hold one tensor per coupling, got an empty list "
            "(a flow with no couplings?)"
        )
    if form == "paper":
        # expm1(2s) - 2s = e^{2s} - 1 - 2s without cancellation near s = 0.
        parts = [(torch.expm1(2 * s) - 2 * s).sum(-1) for s in log_scales]
    else:
        parts = [(s.square() - 2 * s).sum(-1) for s in log_scales]
    return torch.stack(parts, dim=-1)


def klj_term(weight: float, form: str = "paper") -> LossTerm:
    r"""The KLJ regulariser as a :func:`flowcore.train.fit` loss term ``term(batch, log_scales)``.

    * ``"paper"`` (Eq. 11 on the Jacobian diagonal, with the constant that makes it a divergence):

      .. math:: \gamma\,\frac{1}{|\mathcal B|}\sum_{x\in\mathcal B}\sum_{i=1}^R\sum_{j\in B_i}
          \left(e^{2s_{ij}(x)} - 1 - 2s_{ij}(x)\right),

      which is :math:`\ge 0`, zero at the identity, and differs from the literal Eq. 11 bracket
      :math:`\gamma(\sum_i \|d_i\|^2 - 2\log|\det L|)` by the constant :math:`\gamma\sum_i|B_i|`.
      Copied coordinates (:math:`d = 1`) contribute 0. Here :math:`\log|\det L|` is the couplings'
      part of the log-determinant, :math:`\sum_i\sum_j s_{ij}`: the per-block sum of Eq. 8, which
      is the whole flow's only if its other layers preserve volume (permutations do; a logit
      pre-processing does not).
    * ``"code"`` (the public repository's variant, **not** the paper's Eq. 9):
      :math:`\gamma\,\frac{1}{|\mathcal B|}\sum_x \frac{1}{R}
      \sum_i\sum_{j\in B_i}(s_{ij}^2 - 2s_{ij})`:
      it squares the log-scale instead of the diagonal entry :math:`e^{s}` and, like that code,
      averages over the couplings instead of summing. (The repository also adds 1 per copied
      coordinate, a constant omitted here, and weighs it against an NLL *per dimension*.)

    Args:
        weight: :math:`\gamma \ge 0` (the chapter's ``klj_weight``; the paper's experiments call it
            :math:`\alpha`).
        form: ``"paper"`` or ``"code"``.

    Returns:
        A callable ``term(batch, log_scales) -> scalar tensor``; with no couplings it returns 0.

    Raises:
        ValueError: If ``weight`` is negative or not finite, or ``form`` is not one of
            :data:`FORMS`.

    Example:
        >>> term = klj_term(0.1)
        >>> term(torch.zeros(4, 2), [torch.zeros(4, 1)])        # the identity
        tensor(0.)
        >>> term(torch.zeros(4, 2), [torch.full((4, 1), 0.5)])  # 0.1 * (e - 2)
        tensor(0.0718)
        >>> klj_term(0.1, form="exp")
        Traceback (most recent call last):
        ...
        ValueError: form must be one of 'paper', 'code'; got 'exp'
    """
    weight = check_non_negative("weight", weight)
    form = check_choice("form", form, FORMS)

    def term(batch: Tensor, log_scales: list[Tensor]) -> Tensor:
        if len(log_scales) == 0:
            return batch.new_zeros(())
        per_coupling = klj_per_coupling(log_scales, form)
        per_sample = per_coupling.sum(-1) if form == "paper" else per_coupling.mean(-1)
        return weight * per_sample.mean()

    term.__name__ = term.__qualname__ = f"klj_term(weight={weight!r}, form={form!r})"
    return term


# --------------------------------------------------------------- the couplings' autograd Jacobians


def _coupling_inputs(flow: nn.Module, x: Tensor) -> list[tuple[nn.Module, Tensor]]:
    """``[(coupling, its input), ...]`` in layer order: every transform that reports log-scales."""
    transform = getattr(flow, "transform", flow)
    records: list[tuple[nn.Module, Tensor]] = []

    def walk(t: nn.Module, h: Tensor) -> Tensor:
        if isinstance(t, CompositeTransform):
            for child in t.transforms:
                h = walk(child, h)
            return h
        probe: list[Tensor] = []
        out, _ = t(h, log_scales=probe)
        if len(probe) > 1:
            raise ValueError(
                f"{type(t).__name__} reports {len(probe)} log-scale tensors; "
                "expected one per coupling"
            )
        if probe:
            records.append((t, h))
        return out

    with torch.no_grad():
        walk(transform, x)
    return records


def coupling_jacobians(flow: nn.Module, x: Tensor) -> list[Tensor]:
    r"""Each coupling's full Jacobian :math:`L_i(x) = \partial y/\partial h` at the input :math:`h`
    it receives inside the flow, by autograd; a list of ``(batch, D, D)`` tensors (rows: outputs).

    A coupling is every layer that reports log-scales, in the order of
    :meth:`~flowcore.flows.Flow.log_prob_and_log_scales`. Costs :math:`D` backward passes per
    coupling (samples are independent, so one pass gives one output row for the whole batch):
    meant for tests and small :math:`D`.

    Args:
        flow: A :class:`~flowcore.flows.Flow` (or a transform).
        x: Inputs of shape ``(batch, D)``.

    Example:
        >>> from flowcore.flows import RealNVP
        >>> flow = RealNVP(3, n_couplings=2, hidden=(4,))
        >>> jacobians = coupling_jacobians(flow, torch.randn(5, 3))
        >>> [tuple(j.shape) for j in jacobians]
        [(5, 3, 3), (5, 3, 3)]
        >>> torch.equal(jacobians[0], torch.eye(3).expand(5, 3, 3))   # zero init: the identity
        True
    """
    if x.dim() != 2:
        raise ValueError(f"x must have shape (batch, D), got {tuple(x.shape)}")
    jacobians = []
    for coupling, h in _coupling_inputs(flow, x):
        h = h.detach().requires_grad_(True)
        with torch.enable_grad():
            y, _ = coupling(h)
            rows = []
            for j in range(y.shape[-1]):
                (grad,) = torch.autograd.grad(
                    y[:, j].sum(), h, retain_graph=True, allow_unused=True
                )
                rows.append(torch.zeros_like(h) if grad is None else grad)
        jacobians.append(torch.stack(rows, dim=-2).detach())
    return jacobians


def jacobian_diagonal(flow: nn.Module, x: Tensor) -> list[Tensor]:
    r"""Each coupling's Jacobian diagonal :math:`\mathrm{diag}\,L_i(x)`, a list of ``(batch, D)``
    tensors.

    For an affine coupling it is :math:`e^{s}` on the transformed coordinates and 1 on the copied
    ones (the :math:`\mathrm{diag}(s_i)` and :math:`I` blocks of the paper's Eq. 9).

    Example:
        >>> from flowcore.flows import RealNVP
        >>> flow = RealNVP(2, n_couplings=1, hidden=(4,), log_scale="exp")
        >>> _ = flow.transform.transforms[0].st_net[-1].bias.data.fill_(0.5)   # s = 0.5, t = 0.5
        >>> jacobian_diagonal(flow, torch.zeros(1, 2))[0]                      # [copied, e^{0.5}]
        tensor([[1.0000, 1.6487]])
    """
    return [j.diagonal(dim1=-2, dim2=-1) for j in coupling_jacobians(flow, x)]


def klj_from_jacobian(jacobian: Tensor) -> Tensor:
    r"""The paper-form KLJ of one coupling from its full Jacobian :math:`L`, per sample:

    .. math:: \sum_{j=1}^D \left(L_{jj}^2 - 1\right) - 2\log|\det L|,

    Eq. 8 with :math:`\|L\|_F^2` restricted to the diagonal (Eq. 9/11) and the constant
    :math:`-D` of a true KL. The determinant comes from the whole matrix (``slogdet``), not
    from the diagonal, so matching :func:`klj_per_coupling` also checks that the coupling is
    triangular up to a permutation.

    Args:
        jacobian: Shape ``(..., D, D)``.

    Example:
        >>> klj_from_jacobian(torch.eye(3).expand(2, 3, 3))
        tensor([0., 0.])
        >>> klj_from_jacobian(torch.tensor([[2.0, 0.0], [5.0, 1.0]]))   # 4 - 1 - 2 log 2
        tensor(1.6137)
    """
    diagonal = jacobian.diagonal(dim1=-2, dim2=-1)
    return (diagonal.square() - 1).sum(-1) - 2 * torch.linalg.slogdet(jacobian).logabsdet


# ---------------------------------------------------------------------------- the weight-decay part


def _st_networks(flow: nn.Module) -> list[nn.Module]:
    """The st-networks of ``flow``'s couplings: ``st_net`` of an :class:`AffineCoupling`, ``net`` of
    an image coupling."""
    nets = []
    for module in flow.modules():
        if isinstance(module, ImageAffineCoupling):
            nets.append(module.net)
        elif isinstance(getattr(module, "st_net", None), nn.Module):
            nets.append(module.st_net)
    return nets


def st_network_weights(flow: nn.Module) -> list[Tensor]:
    r"""The weight matrices :math:`W_i^k` (not biases) of the st-networks of ``flow``'s couplings.

    The weights of every ``nn.Linear`` and convolution inside each coupling's st-network
    (``AffineCoupling.st_net``; ``ImageAffineCoupling.net`` with its convolutions and bottleneck);
    no biases, and no other parameters (an image coupling's scalar :math:`w` is not a network
    weight).

    Raises:
        ValueError: If ``flow`` has no coupling with an st-network.

    Example:
        >>> from flowcore.flows import RealNVP
        >>> [tuple(w.shape) for w in st_network_weights(RealNVP(3, n_couplings=2, hidden=(8,)))]
        [(8, 1), (4, 8), (8, 2), (2, 8)]
    """
    weights: list[Tensor] = []
    seen: set[int] = set()
    for net in _st_networks(flow):
        for module in net.modules():
            if (
                isinstance(module, (nn.Linear, nn.modules.conv._ConvNd))
                and id(module.weight) not in seen
            ):
                seen.add(id(module.weight))
                weights.append(module.weight)
    if not weights:
        raise ValueError(
            f"{type(flow).__name__} has no coupling st-network with weight matrices "
            "(AffineCoupling.st_net or ImageAffineCoupling.net)"
        )
    return weights


def weight_decay_term(flow: nn.Module, weight: float) -> LossTerm:
    r"""Eq. 10's :math:`\mathbb R_1` as a :func:`flowcore.train.fit` loss term:
    :math:`\lambda\sum_i\sum_k \|W_i^k\|_F^2` over the st-networks' weight matrices (no biases).

    The paper leaves this part to the optimiser's weight decay ("R_1 can be achieved by tuning the
    weight decay parameter") and drops it from Eq. 11; this is the explicit penalty. Its gradient
    is :math:`2\lambda W`, so it equals SGD weight decay :math:`2\lambda` (Adam's ``weight_decay``
    is not the same: Adam rescales it, and applies it to every parameter, biases included).

    Args:
        flow: The flow whose parameters are trained (the closure holds its weight tensors).
        weight: :math:`\lambda \ge 0`.

    Raises:
        ValueError: If ``weight`` is negative or not finite, or ``flow`` has no st-network.

    Example:
        >>> from flowcore.flows import RealNVP
        >>> flow = RealNVP(2, n_couplings=1, hidden=(4,))
        >>> term = weight_decay_term(flow, 0.5)
        >>> first = flow.transform.transforms[0].st_net[0].weight
        >>> bool(term(torch.zeros(1, 2), []) == 0.5 * first.square().sum())  # last layer: zero
        True
    """
    weight = check_non_negative("weight", weight)
    weights = st_network_weights(flow)

    def term(batch: Tensor, log_scales: list[Tensor]) -> Tensor:
        return weight * sum(w.square().sum() for w in weights)

    term.__name__ = term.__qualname__ = f"weight_decay_term(weight={weight!r})"
    return term


def frobenius_bound(st_net: nn.Module, x_A: Tensor, part: str = "t") -> tuple[Tensor, Tensor]:
    r"""Both sides of the paper's bound for a ReLU st-network,
    :math:`\|\hat L\|_F^2 \le \prod_k \|W_k\|_F^2`:

    .. math:: \text{lhs} = \frac1n\sum_{m=1}^n
        \left\|\frac{\partial t}{\partial x_A}(x_A^{(m)})\right\|_F^2,
        \qquad \text{rhs} = \prod_k \|W_k\|_F^2 .

    It holds sample by sample: :math:`\partial t/\partial x_A = W_K D_{K-1} W_{K-1}\cdots D_1 W_1`
    with :math:`D_k = \mathrm{diag}(\phi'(\cdot)) \in \{0, 1\}`, and
    :math:`\|AB\|_F \le \|A\|_F\|B\|_F`, :math:`\|D_kW_k\|_F \le \|W_k\|_F`. (The paper writes
    strict ``<``; equality is attained, e.g. by rank-one weights with every unit active.) Only the
    ``t`` rows of the last layer enter the left side; the right side uses the whole :math:`W_K`,
    as the paper does.

    Args:
        st_net: An ``nn.Sequential`` of ``nn.Linear`` layers with ``nn.ReLU`` between them whose
            output is :math:`(\hat s, t)`, split in halves (as
            :class:`~flowcore.flows.AffineCoupling`'s).
        x_A: Inputs, shape ``(n, n_copied)``.
        part: Which outputs' Jacobian: ``"t"`` (the paper's :math:`\hat L`), ``"s"`` or ``"st"``
            (all).

    Returns:
        ``(lhs, rhs)``, 0-dim tensors.

    Raises:
        ValueError: If ``st_net`` is not such a network, or ``part`` is not ``"t"``, ``"s"``,
            ``"st"``.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 4))
        >>> lhs, rhs = frobenius_bound(net, torch.randn(10, 2))
        >>> bool(lhs <= rhs)
        True
    """
    part = check_choice("part", part, ("t", "s", "st"))
    modules = list(st_net) if isinstance(st_net, nn.Sequential) else []
    ok = (
        len(modules) % 2 == 1
        and all(type(m) is nn.Linear for m in modules[0::2])
        and all(type(m) is nn.ReLU for m in modules[1::2])
    )
    if not ok:
        raise ValueError(
            "st_net must be an nn.Sequential of nn.Linear layers with nn.ReLU between them, "
            f"got {st_net!r}"
        )
    if x_A.dim() != 2:
        raise ValueError(f"x_A must have shape (n, n_copied), got {tuple(x_A.shape)}")
    out_features = modules[-1].out_features
    if part != "st" and out_features % 2:
        raise ValueError(
            f"part={part!r} needs an even number of outputs (s, t), got {out_features}"
        )

    def outputs(v: Tensor) -> Tensor:
        out = st_net(v)
        if part == "st":
            return out
        s, t = out.chunk(2, dim=-1)
        return t if part == "t" else s

    jacobian = torch.func.vmap(torch.func.jacrev(outputs))(x_A.detach())
    lhs = jacobian.square().sum((-2, -1)).mean()
    rhs = torch.stack([m.weight.detach().square().sum() for m in modules[0::2]]).prod()
    return lhs.detach(), rhs
