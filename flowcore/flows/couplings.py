r"""Affine coupling layers (thesis §2.1, Eq. 3–6) and their masks.

A coupling splits the coordinates with a boolean mask into a copied part :math:`A` (``True``) and a
transformed part :math:`B` (``False``), and scales and shifts :math:`B` conditioned on :math:`A`:

.. math:: y_A = x_A, \qquad y_B = x_B \odot \exp(s) + t, \qquad (\hat s, t) = \mathrm{MLP}_\theta(x_A),
    \quad s = \mathrm{map}(\hat s).

The Jacobian is triangular up to a permutation, so :math:`\log|\det \partial y/\partial x| = \sum_j s_j`
(Eq. 6), and the inverse is :math:`x_B = (y_B - t) \odot \exp(-s)` (Eq. 4).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowcore.flows import fast
from flowcore.flows.fast import LOG_SCALE_MAPS, AffineCouplingStep, FastPathUnsupported
from flowcore.flows.transforms import Transform
from flowcore.validation import check_choice, check_int, check_int_list, check_positive

__all__ = ["AffineCoupling", "alternating", "halves"]


def halves(dim: int, parity: int = 0) -> Tensor:
    """The mask that copies one half: ``parity = 0`` copies ``x[:D//2]``, ``parity = 1`` copies ``x[D//2:]``.

    For odd ``D`` the halves are ``⌊D/2⌋`` and ``⌈D/2⌉`` coordinates.

    Example:
        >>> halves(5, 0)
        tensor([ True,  True, False, False, False])
        >>> halves(5, 1)
        tensor([False, False,  True,  True,  True])
    """
    dim = check_int("dim", dim, minimum=2)
    parity = check_int("parity", parity, minimum=0, maximum=1)
    mask = torch.zeros(dim, dtype=torch.bool)
    if parity == 0:
        mask[: dim // 2] = True
    else:
        mask[dim // 2 :] = True
    return mask


def alternating(dim: int, parity: int = 0) -> Tensor:
    """The mask that copies the even (``parity = 0``) or the odd (``parity = 1``) coordinates.

    Example:
        >>> alternating(5, 0)
        tensor([ True, False,  True, False,  True])
    """
    dim = check_int("dim", dim, minimum=2)
    parity = check_int("parity", parity, minimum=0, maximum=1)
    return torch.arange(dim) % 2 == parity


def check_mask(name: str, mask) -> Tensor:
    """Return ``mask`` as a 1-D bool CPU tensor with at least one ``True`` and one ``False``."""
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool or mask.dim() != 1:
        raise ValueError(f"{name} must be a 1-D boolean tensor (True = copied, False = transformed), got {mask!r}")
    if mask.all() or not mask.any():
        raise ValueError(f"{name} must have at least one True (copied) and one False (transformed) entry, got {mask.tolist()}")
    return mask.cpu()


def _contiguous(index: Tensor, start: int) -> bool:
    return torch.equal(index, torch.arange(start, start + len(index)))


def _hooked(module: nn.Module) -> bool:
    """Whether ``module`` has forward or backward hooks (which the fused training path would skip)."""
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks or getattr(module, "_backward_pre_hooks", None))


def _global_hooks() -> bool:
    m = nn.modules.module
    return any(getattr(m, name, None) for name in ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks", "_global_backward_pre_hooks"))


class AffineCoupling(Transform):
    r"""One affine coupling layer, Eq. 3 and 4 of the thesis, with a given mask.

    :math:`y_A = x_A` and :math:`y_B = x_B \odot \exp(s) + t`, where one MLP (the *st-network*:
    Linear/ReLU over ``hidden``, then a Linear to :math:`2|B|` outputs split into :math:`(\hat s, t)`)
    reads :math:`x_A`, and the log-scale map is one of

    * ``"exp"``: :math:`s = \hat s`, unbounded, as in the thesis's Eq. 3;
    * ``"tanh"``: :math:`s = b\tanh(\hat s/b)`: a layer scales by at most :math:`e^{\pm b}`, which
      keeps ``exp`` finite on far out-of-distribution inputs, and is the identity for
      :math:`|\hat s| \ll b`;
    * ``"sigmoid"``: :math:`e^s = \sigma(\hat s + 2) + 10^{-3}` (nflows): scales in
      :math:`(10^{-3}, 1 + 10^{-3})`, about 0.88 at :math:`\hat s = 0`.

    With ``zero_init`` the st-network's last layer starts at zero (after its default init has
    drawn from the global RNG), so :math:`\hat s = t = 0`: with ``"exp"`` or ``"tanh"`` the layer
    starts as the identity.

    With gradients on, for 2-D float32 inputs on the CPU, ``forward`` runs the whole coupling as
    one autograd node with a hand-written backward (:class:`~flowcore.flows.fast.FusedAffineCoupling`):
    at the book's sizes autograd's per-op overhead costs about as much as the arithmetic. By
    default its matrix products are the reference ops' ``addmm``/``mm`` calls and training is bit
    for bit the same; ``flowcore.flows.fast.FUSED_GEMMS = "onednn"`` runs them through oneDNN
    (ReLU fused), which on AMD processors reaches AVX-512 kernels where ``addmm`` (MKL's SGEMM)
    takes AVX2 ones. The fused path is skipped for subclasses that override the maps, st-networks
    other than Linear/ReLU, modules with hooks, ``torch.compile`` and ``torch.func``; set
    ``fused_training = False`` on a coupling (or ``flowcore.flows.fast.FUSED_TRAINING = False``)
    for the reference ops.

    Args:
        mask: Boolean tensor of shape ``(D,)``: ``True`` = copied (conditions the st-network),
            ``False`` = transformed; at least one of each (:func:`halves`, :func:`alternating`).
        hidden: Widths of the st-network's hidden layers (ReLU).
        log_scale: ``"exp"``, ``"tanh"`` or ``"sigmoid"``.
        log_scale_bound: :math:`b > 0` of ``"tanh"`` (checked, unused by the other maps).
        zero_init: Whether the st-network's last layer starts at zero.

    Example:
        >>> layer = AffineCoupling(halves(4, 0), hidden=(8,))
        >>> x = torch.randn(2, 4)
        >>> y, log_det = layer(x)            # the identity at zero init
        >>> torch.equal(y, x), log_det.tolist()
        (True, [0.0, 0.0])
        >>> layer.inverse(y)[0].shape
        torch.Size([2, 4])
    """

    LOG_SCALES = LOG_SCALE_MAPS

    #: Whether ``forward`` may take the fused training path (see above); ``False``: the reference ops.
    fused_training: bool = True

    def __init__(
        self,
        mask: Tensor,
        hidden: tuple[int, ...] = (64, 64),
        log_scale: str = "tanh",
        log_scale_bound: float = 3.0,
        zero_init: bool = True,
    ):
        super().__init__()
        mask = check_mask("mask", mask)
        self.dim = len(mask)
        self.log_scale = check_choice("log_scale", log_scale, self.LOG_SCALES)
        self.log_scale_bound = check_positive("log_scale_bound", log_scale_bound)
        if not isinstance(zero_init, bool):
            raise ValueError(f"zero_init must be True or False, got {zero_init!r}")
        self.zero_init = zero_init
        copied, transformed = mask.nonzero().squeeze(-1), (~mask).nonzero().squeeze(-1)
        self.n_copied, self.n_transformed = len(copied), len(transformed)
        # Contiguous parts are sliced (as the original halves were); others go through index ops.
        if _contiguous(copied, 0):
            self._layout = "copied_first"
        elif _contiguous(transformed, 0):
            self._layout = "transformed_first"
        else:
            self._layout = "indexed"
        # Derived from the constructor's mask, like hidden: not part of the state dict.
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("copied_index", copied, persistent=False)
        self.register_buffer("transformed_index", transformed, persistent=False)
        self.register_buffer("join_index", torch.argsort(torch.cat([copied, transformed])), persistent=False)
        widths = [self.n_copied, *check_int_list("hidden", hidden, minimum=1)]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        last = nn.Linear(widths[-1], 2 * self.n_transformed)
        if zero_init:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.st_net = nn.Sequential(*layers, last)

    def extra_repr(self) -> str:
        bound = f", log_scale_bound={self.log_scale_bound}" if self.log_scale == "tanh" else ""
        return f"mask={self.mask.int().tolist()}, log_scale={self.log_scale!r}{bound}"

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self._layout == "copied_first":
            return x[..., : self.n_copied], x[..., self.n_copied :]
        if self._layout == "transformed_first":
            return x[..., self.n_transformed :], x[..., : self.n_transformed]
        return x.index_select(-1, self.copied_index), x.index_select(-1, self.transformed_index)

    def _join(self, copied: Tensor, transformed: Tensor) -> Tensor:
        if self._layout == "copied_first":
            return torch.cat((copied, transformed), dim=-1)
        if self._layout == "transformed_first":
            return torch.cat((transformed, copied), dim=-1)
        return torch.cat((copied, transformed), dim=-1).index_select(-1, self.join_index)

    def scale_shift(self, copied: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(s, t)`` from the copied coordinates: :math:`(\hat s, t) = \mathrm{MLP}(x_A)`, :math:`s = \mathrm{map}(\hat s)`."""
        raw_s, t = self.st_net(copied).chunk(2, dim=-1)
        if self.log_scale == "tanh":
            b = self.log_scale_bound
            return b * torch.tanh(raw_s / b), t
        if self.log_scale == "sigmoid":
            return torch.log(torch.sigmoid(raw_s + 2.0) + 1e-3), t
        return raw_s, t

    def _parts(self) -> tuple[slice | Tensor, slice | Tensor]:
        """The copied and the transformed columns: slices when contiguous, else index tensors."""
        if self._layout == "copied_first":
            return slice(None, self.n_copied), slice(self.n_copied, None)
        if self._layout == "transformed_first":
            return slice(self.n_transformed, None), slice(None, self.n_transformed)
        return self.copied_index, self.transformed_index

    def _fused_plan(self, x: Tensor, want_s: bool):
        """``(plan, params)`` for :class:`~flowcore.flows.fast.FusedAffineCoupling`, or ``None`` where the reference ops run."""
        if not (self.fused_training and fast.FUSED_TRAINING and torch.is_grad_enabled()):
            return None
        cls = type(self)
        if cls.scale_shift is not AffineCoupling.scale_shift or cls._split is not AffineCoupling._split or cls._join is not AffineCoupling._join:
            return None
        net = self.st_net
        if type(net) is not nn.Sequential or len(net) % 2 != 1 or _hooked(net) or _global_hooks():
            return None
        mods = list(net)
        for i, m in enumerate(mods):
            if type(m) is not (nn.ReLU if i % 2 else nn.Linear) or _hooked(m) or (not i % 2 and m.bias is None):
                return None
        params = tuple(t for m in mods[0::2] for t in (m.weight, m.bias))
        if x.dim() != 2 or x.shape[1] != self.dim or not fast.fused_training_applies(x, params):
            return None
        return (*self._parts(), self.n_transformed, self.log_scale, self.log_scale_bound, want_s, fast.fused_gemms()), params

    def forward(self, x: Tensor, log_scales: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Data → latent: ``(y, log|det ∂y/∂x|)``; appends ``s`` (shape ``(..., n_transformed)``) to ``log_scales`` if given."""
        fused = self._fused_plan(x, log_scales is not None)
        if fused is not None:
            out = fast.FusedAffineCoupling.apply(x, fused[0], *fused[1])
            if log_scales is not None:
                log_scales.append(out[2])
            return out[0], out[1]
        copied, transformed = self._split(x)
        s, t = self.scale_shift(copied)
        if log_scales is not None:
            log_scales.append(s)
        return self._join(copied, transformed * torch.exp(s) + t), s.sum(-1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Latent → data: ``(x, log|det ∂x/∂y|)``, Eq. 4."""
        copied, transformed = self._split(y)
        s, t = self.scale_shift(copied)
        return self._join(copied, (transformed - t) * torch.exp(-s)), -s.sum(-1)

    def fast_steps(self) -> list:
        cls = type(self)
        if cls.forward is not AffineCoupling.forward or cls.scale_shift is not AffineCoupling.scale_shift or cls._split is not AffineCoupling._split:
            raise FastPathUnsupported(f"{cls.__name__} overrides AffineCoupling's maps but not fast_steps()")
        mods = list(self.st_net) if type(self.st_net) is nn.Sequential else []
        linears = mods[0::2]
        if not (
            len(mods) % 2 == 1
            and all(type(m) is nn.Linear and m.bias is not None for m in linears)
            and all(type(m) is nn.ReLU for m in mods[1::2])
        ):
            raise FastPathUnsupported(f"{cls.__name__}'s st-network is not a Sequential of Linear layers with ReLU between them")
        copied, transformed = self._parts()
        return [AffineCouplingStep(copied, transformed, self.n_transformed, tuple((m.weight, m.bias) for m in linears), self.log_scale, self.log_scale_bound)]
