r"""One description of an affine coupling (thesis §2.1, Eq. 3–6) and the one table of log-scale
maps.

A coupling splits :math:`x` into a copied part :math:`A` and a transformed part :math:`B`
and computes

.. math:: y_A = x_A, \qquad y_B = x_B \odot \exp(s) + t,
    \qquad (\hat s, t) = \mathrm{MLP}_\theta(x_A), \quad s = \mathrm{map}(\hat s),

so :math:`\log|\det \partial y/\partial x| = \sum_j s_j`, and
:math:`x_B = (y_B - t) \odot \exp(-s)`.

:class:`CouplingSpec` is that description: the split, the st-network, the log-scale map's name and
bound. :meth:`CouplingSpec.forward` and :meth:`CouplingSpec.inverse` evaluate it with plain
differentiable ops: that is the reference definition. :class:`~flowcore.flows.AffineCoupling`
evaluates it; the no-grad blocked path and the fused training step of :mod:`flowcore.flows.fast`
and the stacked trainer of :mod:`flowcore.train_many` are optimisations of the same spec, held
equal to it by ``tests/unit/test_coupling_paths.py``. :data:`LOG_SCALE_MAPS` is the only place
that knows what a map name means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "LOG_SCALE_MAPS",
    "CouplingSpec",
    "Layers",
    "LogScaleMap",
    "contiguous_parts",
    "linear_layers",
    "mlp",
]

#: An st-network as its layers: ``(weight, bias)`` per Linear layer, ReLU between consecutive ones.
#: A weight of shape ``(K, out, in)`` is a stack of K networks, one per leading batch entry.
Layers = tuple[tuple[Tensor, Tensor], ...]


# --- The log-scale maps -------------------------------------------------------------------------


@dataclass(frozen=True)
class LogScaleMap:
    r"""One log-scale map :math:`s = \mathrm{map}(\hat s; b)` in every form a path needs.

    Attributes:
        name: The name a coupling's ``log_scale`` takes.
        map: ``(ŝ, b) -> (s, aux)`` with differentiable ops; ``aux`` (an intermediate, or
            ``None``) is what :attr:`vjp` reads.
        map_into: ``(ŝ, b, out) -> s``: the same arithmetic in the same order, written in place
            into the preallocated ``out`` (the no-grad path).
        vjp: ``(∂L/∂s, aux, b) -> ∂L/∂ŝ``: the chain rule through the map, with the ops and
            rounding autograd uses on :attr:`map` (the fused training step's backward).
        derivative: ``(ŝ, b) -> ds/dŝ`` in closed form (for checks).
        uses_bound: Whether :math:`b` enters the map.
        zero_at_zero: Whether :math:`\mathrm{map}(0) = 0`, so that a zero-initialised
            st-network makes the coupling the identity.

    Example:
        >>> m = LOG_SCALE_MAPS["tanh"]
        >>> s, aux = m.map(torch.tensor([0.0, 30.0]), 3.0)
        >>> s, m.derivative(torch.tensor([0.0]), 3.0)
        (tensor([0., 3.]), tensor([1.]))
    """

    name: str
    map: Callable[[Tensor, float], tuple[Tensor, Tensor | None]]
    map_into: Callable[[Tensor, float, Tensor], Tensor]
    vjp: Callable[[Tensor, Tensor | None, float], Tensor]
    derivative: Callable[[Tensor, float], Tensor]
    uses_bound: bool
    zero_at_zero: bool


def _exp(raw: Tensor, b: float) -> tuple[Tensor, None]:
    return raw, None


def _exp_into(raw: Tensor, b: float, out: Tensor) -> Tensor:
    return out.copy_(raw)


def _tanh(raw: Tensor, b: float) -> tuple[Tensor, Tensor]:
    th = torch.tanh(raw / b)
    return th * b, th


def _tanh_into(raw: Tensor, b: float, out: Tensor) -> Tensor:
    return torch.div(raw, b, out=out).tanh_().mul_(b)


def _tanh_vjp(g: Tensor, th: Tensor, b: float) -> Tensor:
    # autograd's order on _tanh: ·b, then tanh' = 1 - tanh², then /b
    return torch.ops.aten.tanh_backward(g * b, th) / b


def _sigmoid(raw: Tensor, b: float) -> tuple[Tensor, Tensor]:
    sig = torch.sigmoid(raw + 2.0)
    return torch.log(sig + 1e-3), sig


def _sigmoid_into(raw: Tensor, b: float, out: Tensor) -> Tensor:
    return torch.add(raw, 2.0, out=out).sigmoid_().add_(1e-3).log_()


def _sigmoid_vjp(g: Tensor, sig: Tensor, b: float) -> Tensor:
    # autograd's order on _sigmoid: log' = 1/(σ + 10⁻³), then σ' = σ(1 - σ)
    return torch.ops.aten.sigmoid_backward(g / (sig + 1e-3), sig)


def _sigmoid_derivative(raw: Tensor, b: float) -> Tensor:
    sig = torch.sigmoid(raw + 2.0)
    return sig * (1 - sig) / (sig + 1e-3)


#: The log-scale maps by name. ``"exp"``: :math:`s = \hat s`, unbounded (the thesis's Eq. 3);
#: ``"tanh"``: :math:`s = b\tanh(\hat s/b)`, so a layer scales by at most :math:`e^{\pm b}` and is
#: the identity map for :math:`|\hat s| \ll b`; ``"sigmoid"``: :math:`s = \log(\sigma(\hat s + 2) +
#: 10^{-3})` (nflows), scales in :math:`(10^{-3}, 1 + 10^{-3})`.
LOG_SCALE_MAPS: dict[str, LogScaleMap] = {
    m.name: m
    for m in (
        LogScaleMap(
            "exp",
            _exp,
            _exp_into,
            lambda g, aux, b: g,
            lambda raw, b: torch.ones_like(raw),
            uses_bound=False,
            zero_at_zero=True,
        ),
        LogScaleMap(
            "tanh",
            _tanh,
            _tanh_into,
            _tanh_vjp,
            lambda raw, b: 1 - torch.tanh(raw / b).square(),
            uses_bound=True,
            zero_at_zero=True,
        ),
        LogScaleMap(
            "sigmoid",
            _sigmoid,
            _sigmoid_into,
            _sigmoid_vjp,
            _sigmoid_derivative,
            uses_bound=False,
            zero_at_zero=False,
        ),
    )
}


# --- The st-network -----------------------------------------------------------------------------


def _linear(h: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``h @ weight.T + bias`` (``F.linear``); a stacked ``(K, out, in)`` weight applies network
    ``k`` to ``h[k]`` (``torch.baddbmm``)."""
    if weight.dim() == 3:
        return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
    return F.linear(h, weight, bias)


def mlp(h: Tensor, layers: Layers) -> Tensor:
    """The st-network given by its ``layers``: Linear, ReLU, …, Linear, with the ops of
    ``nn.Sequential(nn.Linear, nn.ReLU, …)``.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 4))
        >>> x = torch.randn(5, 2)
        >>> torch.equal(mlp(x, linear_layers(net)), net(x))
        True
    """
    last = len(layers) - 1
    for j, (w, b) in enumerate(layers):
        h = _linear(h, w, b)
        if j < last:
            h = torch.relu(h)
    return h


def linear_layers(net) -> Layers | None:
    """``net``'s layers if it is an ``nn.Sequential`` of biased Linear layers with ReLU between them
    (what the fast paths run), else ``None``.

    Example:
        >>> len(linear_layers(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 4))))
        2
        >>> linear_layers(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 4))) is None
        True
    """
    if isinstance(net, tuple):
        return net
    if type(net) is not nn.Sequential or len(net) % 2 != 1:
        return None
    mods = list(net)
    for i, m in enumerate(mods):
        if type(m) is not (nn.ReLU if i % 2 else nn.Linear) or (not i % 2 and m.bias is None):
            return None
    return tuple((m.weight, m.bias) for m in mods[0::2])


# --- The coupling -------------------------------------------------------------------------------


def contiguous_parts(mask: Tensor) -> tuple[slice, slice] | None:
    """``(copied, transformed)`` as slices when the mask copies a leading or a trailing block, else
    ``None``.

    Example:
        >>> contiguous_parts(torch.tensor([True, True, False]))
        (slice(None, 2, None), slice(2, None, None))
        >>> contiguous_parts(torch.tensor([True, False, True])) is None
        True
    """
    n_copied = int(mask.sum())
    if bool(mask[:n_copied].all()):
        return slice(None, n_copied), slice(n_copied, None)
    n_transformed = len(mask) - n_copied
    if not bool(mask[:n_transformed].any()):
        return slice(n_transformed, None), slice(None, n_transformed)
    return None


@dataclass(frozen=True, eq=False)
class CouplingSpec:
    r"""An affine coupling :math:`y_A = x_A`, :math:`y_B = x_B \odot \exp(s(x_A)) + t(x_A)`,
    :math:`\log|\det J| = \sum_j s_j`, with :math:`(\hat s, t) = \mathrm{net}(x_A)` and
    :math:`s = \mathrm{map}(\hat s)` from :data:`LOG_SCALE_MAPS`.

    Attributes:
        copied, transformed: The columns :math:`A` and :math:`B` of the last dimension: ``slice``
            objects when each is contiguous (then one of them starts at 0), else long index tensors.
        n_transformed: :math:`|B|`; the st-network outputs :math:`(\hat s, t)`, each this wide.
        net: The st-network: a module (or any callable) from :math:`x_A` to :math:`(\hat s, t)`,
            or its :data:`Layers` (what the fast paths take; stacked weights work too).
        log_scale: A key of :data:`LOG_SCALE_MAPS`.
        bound: :math:`b` of the maps that use it.
        join_index: With index tensors, the inverse permutation of ``cat(copied, transformed)``.

    Example:
        >>> net = nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 4))
        >>> spec = CouplingSpec.from_mask(torch.tensor([True, False, False]), net, "tanh", 3.0)
        >>> x = torch.randn(5, 3)
        >>> y, log_det, s = spec.forward(x)
        >>> torch.equal(y[:, 0], x[:, 0]), torch.allclose(log_det, s.sum(-1))
        (True, True)
        >>> torch.allclose(spec.inverse(y)[0], x, atol=1e-6)
        True
    """

    copied: slice | Tensor
    transformed: slice | Tensor
    n_transformed: int
    net: Callable[[Tensor], Tensor] | Layers
    log_scale: str = "tanh"
    bound: float = 3.0
    join_index: Tensor | None = None

    @classmethod
    def from_mask(
        cls, mask: Tensor, net, log_scale: str = "tanh", bound: float = 3.0
    ) -> CouplingSpec:
        """The spec of the boolean ``mask`` (``True`` = copied), slices where the parts are
        contiguous."""
        parts = contiguous_parts(mask)
        n_transformed = int((~mask).sum())
        if parts is not None:
            return cls(*parts, n_transformed, net, log_scale, bound)
        copied, transformed = mask.nonzero().squeeze(-1), (~mask).nonzero().squeeze(-1)
        return cls(
            copied,
            transformed,
            n_transformed,
            net,
            log_scale,
            bound,
            torch.argsort(torch.cat([copied, transformed])),
        )

    @property
    def log_scale_map(self) -> LogScaleMap:
        """The entry of :data:`LOG_SCALE_MAPS` named by :attr:`log_scale`."""
        return LOG_SCALE_MAPS[self.log_scale]

    @property
    def layers(self) -> Layers | None:
        """The st-network's :data:`Layers`, or ``None`` if it is not a Linear/ReLU chain."""
        return linear_layers(self.net)

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(x_A, x_B)`` along the last dimension (views when the parts are slices)."""
        if isinstance(self.transformed, slice):
            return x[..., self.copied], x[..., self.transformed]
        return x.index_select(-1, self.copied), x.index_select(-1, self.transformed)

    def join(self, a: Tensor, b: Tensor) -> Tensor:
        """The inverse of :meth:`split`: ``y`` with ``y_A = a``, ``y_B = b``."""
        if isinstance(self.transformed, slice):
            return torch.cat((a, b) if self.transformed.start else (b, a), dim=-1)
        return torch.cat((a, b), dim=-1).index_select(-1, self.join_index)

    def scale_shift(self, x_a: Tensor) -> tuple[Tensor, Tensor]:
        r""":math:`(s, t)` from :math:`x_A`: :math:`(\hat s, t) = \mathrm{net}(x_A)`,
        :math:`s = \mathrm{map}(\hat s)`."""
        h = mlp(x_a, self.net) if isinstance(self.net, tuple) else self.net(x_a)
        raw, t = h.chunk(2, dim=-1)
        return self.log_scale_map.map(raw, self.bound)[0], t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""Data → latent: ``(y, log|det ∂y/∂x|, s)`` with :math:`y_B = x_B e^s + t`,
        :math:`\log|\det| = \sum_j s_j`."""
        a, xb = self.split(x)
        s, t = self.scale_shift(a)
        return self.join(a, xb * torch.exp(s) + t), s.sum(-1), s

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        r"""Latent → data: ``(x, log|det ∂x/∂y|)`` with :math:`x_B = (y_B - t) e^{-s}` (Eq. 4)."""
        a, yb = self.split(y)
        s, t = self.scale_shift(a)
        return self.join(a, (yb - t) * torch.exp(-s)), -s.sum(-1)
