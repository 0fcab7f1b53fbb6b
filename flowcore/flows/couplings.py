r"""Affine coupling layers (thesis §2.1, Eq. 3–6) and their masks.

A coupling splits the coordinates with a boolean mask into a copied part :math:`A` (``True``) and a
transformed part :math:`B` (``False``), and scales and shifts :math:`B` conditioned on :math:`A`:

.. math:: y_A = x_A, \qquad y_B = x_B \odot \exp(s) + t,
    \qquad (\hat s, t) = \mathrm{MLP}_\theta(x_A), \quad s = \mathrm{map}(\hat s).

The Jacobian is triangular up to a permutation, so
:math:`\log|\det \partial y/\partial x| = \sum_j s_j` (Eq. 6), and the inverse is
:math:`x_B = (y_B - t) \odot \exp(-s)` (Eq. 4). The step itself is defined once, by
:class:`~flowcore.flows.spec.CouplingSpec`; :class:`AffineCoupling` holds the mask and the
st-network and evaluates its spec.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowcore.flows import fast
from flowcore.flows.fast import FastPathUnsupported
from flowcore.flows.spec import LOG_SCALE_MAPS, CouplingSpec, contiguous_parts, linear_layers
from flowcore.flows.transforms import Transform
from flowcore.validation import check_choice, check_int, check_int_list, check_positive

__all__ = ["AffineCoupling", "alternating", "halves"]


def halves(dim: int, parity: int = 0) -> Tensor:
    """The mask that copies one half: ``parity = 0`` copies ``x[:D//2]``, ``parity = 1`` copies
    ``x[D//2:]``.

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
        raise ValueError(
            f"{name} must be a 1-D boolean tensor (True = copied, False = transformed), "
            f"got {mask!r}"
        )
    if mask.all() or not mask.any():
        raise ValueError(
            f"{name} must have at least one True (copied) and one False (transformed) entry, "
            f"got {mask.tolist()}"
        )
    return mask.cpu()


def _hooked(module: nn.Module) -> bool:
    """Whether ``module`` has forward or backward hooks (which the fused training path would
    skip)."""
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or getattr(module, "_backward_pre_hooks", None)
    )


def _global_hooks() -> bool:
    m = nn.modules.module
    return any(
        getattr(m, name, None)
        for name in (
            "_global_forward_hooks",
            "_global_forward_pre_hooks",
            "_global_backward_hooks",
            "_global_backward_pre_hooks",
        )
    )


class AffineCoupling(Transform):
    r"""One affine coupling layer, Eq. 3 and 4 of the thesis, with a given mask.

    :math:`y_A = x_A` and :math:`y_B = x_B \odot \exp(s) + t`, where one MLP (the *st-network*:
    Linear/ReLU over ``hidden``, then a Linear to :math:`2|B|` outputs split into
    :math:`(\hat s, t)`) reads :math:`x_A`, :math:`\log|\det J| = \sum_j s_j`, and the log-scale map
    is one of :data:`~flowcore.flows.spec.LOG_SCALE_MAPS`:

    * ``"exp"``: :math:`s = \hat s`, unbounded, as in the thesis's Eq. 3;
    * ``"tanh"``: :math:`s = b\tanh(\hat s/b)`: a layer scales by at most :math:`e^{\pm b}`, which
      keeps ``exp`` finite on far out-of-distribution inputs, and is the identity for
      :math:`|\hat s| \ll b`;
    * ``"sigmoid"``: :math:`e^s = \sigma(\hat s + 2) + 10^{-3}` (nflows): scales in
      :math:`(10^{-3}, 1 + 10^{-3})`, about 0.88 at :math:`\hat s = 0`.

    With ``zero_init`` the st-network's last layer starts at zero (after its default init has
    drawn from the global RNG), so :math:`\hat s = t = 0`: with ``"exp"`` or ``"tanh"`` the layer
    starts as the identity.

    With gradients on, for 2-D float32 inputs on the CPU, ``forward`` runs the whole coupling as one
    autograd node with a hand-written backward (:class:`~flowcore.flows.fast.FusedAffineCoupling`):
    at the book's sizes autograd's per-op overhead costs about as much as the arithmetic. By default
    its matrix products are the reference ops' ``addmm``/``mm`` calls and training is bit for bit
    the same; ``flowcore.flows.fast.FUSED_GEMMS = "onednn"`` runs them through oneDNN (ReLU fused),
    which on AMD processors reaches AVX-512 kernels where ``addmm`` (MKL's SGEMM) takes AVX2 ones.
    The fused path is skipped for st-networks other than Linear/ReLU, modules with hooks,
    ``torch.compile`` and ``torch.func``; set ``fused_training = False`` on a coupling (or
    ``flowcore.flows.fast.FUSED_TRAINING = False``) for the reference ops.

    Every path evaluates :meth:`spec`, the layer's :class:`~flowcore.flows.spec.CouplingSpec`: the
    reference ops are :meth:`CouplingSpec.forward <flowcore.flows.spec.CouplingSpec.forward>`.
    :meth:`scale_shift`, :meth:`_split` and :meth:`_join` are views of the spec for analysis code,
    not extension points: a subclass that changes the step overrides :meth:`spec`.

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

    #: The log-scale maps' names (:data:`~flowcore.flows.spec.LOG_SCALE_MAPS`).
    LOG_SCALES = tuple(LOG_SCALE_MAPS)

    #: Whether ``forward`` may take the fused training path (see above); ``False``: the reference
    #: ops.
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
        # Contiguous parts are sliced (views, as the original halves were); others go through index
        # ops.
        self._slices = contiguous_parts(mask)
        # Derived from the constructor's mask, like hidden: not part of the state dict.
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("copied_index", copied, persistent=False)
        self.register_buffer("transformed_index", transformed, persistent=False)
        self.register_buffer(
            "join_index", torch.argsort(torch.cat([copied, transformed])), persistent=False
        )
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
        bound = (
            f", log_scale_bound={self.log_scale_bound}"
            if LOG_SCALE_MAPS[self.log_scale].uses_bound
            else ""
        )
        return f"mask={self.mask.int().tolist()}, log_scale={self.log_scale!r}{bound}"

    def spec(self, net=None) -> CouplingSpec:
        """This layer as a :class:`~flowcore.flows.spec.CouplingSpec` (indices on the layer's
        device), with the st-network ``net``: by default the module :attr:`st_net` itself, so its
        hooks run."""
        net = self.st_net if net is None else net
        if self._slices is not None:
            return CouplingSpec(
                *self._slices, self.n_transformed, net, self.log_scale, self.log_scale_bound
            )
        return CouplingSpec(
            self.copied_index,
            self.transformed_index,
            self.n_transformed,
            net,
            self.log_scale,
            self.log_scale_bound,
            self.join_index,
        )

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(x_A, x_B)``: :meth:`CouplingSpec.split <flowcore.flows.spec.CouplingSpec.split>`."""
        return self.spec().split(x)

    def _join(self, copied: Tensor, transformed: Tensor) -> Tensor:
        """``y`` from ``(y_A, y_B)``:
        :meth:`CouplingSpec.join <flowcore.flows.spec.CouplingSpec.join>`."""
        return self.spec().join(copied, transformed)

    def scale_shift(self, copied: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(s, t)`` from the copied coordinates: :math:`(\hat s, t) = \mathrm{MLP}(x_A)`,
        :math:`s = \mathrm{map}(\hat s)`."""
        return self.spec().scale_shift(copied)

    def _fused_spec(self, x: Tensor) -> CouplingSpec | None:
        """The spec with its st-network as layers, for
        :class:`~flowcore.flows.fast.FusedAffineCoupling`, or ``None`` where the reference ops
        run."""
        if not (self.fused_training and fast.FUSED_TRAINING and torch.is_grad_enabled()):
            return None
        net = self.spec().net
        layers = linear_layers(net)
        # Hooks on the st-network would not fire inside the fused node.
        if (
            layers is None
            or _global_hooks()
            or (isinstance(net, nn.Module) and any(_hooked(m) for m in net.modules()))
        ):
            return None
        params = tuple(t for wb in layers for t in wb)
        if x.dim() != 2 or x.shape[1] != self.dim or not fast.fused_training_applies(x, params):
            return None
        return self.spec(layers)

    def forward(self, x: Tensor, log_scales: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Data → latent: ``(y, log|det ∂y/∂x|)``; appends ``s`` (shape ``(..., n_transformed)``) to
        ``log_scales`` if given."""
        spec = self._fused_spec(x)
        if spec is not None:
            want_s = log_scales is not None
            out = fast.FusedAffineCoupling.apply(
                x, spec, want_s, fast.fused_gemms(), *(t for wb in spec.net for t in wb)
            )
            if want_s:
                log_scales.append(out[2])
            return out[0], out[1]
        y, log_det, s = self.spec().forward(x)
        if log_scales is not None:
            log_scales.append(s)
        return y, log_det

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Latent → data: ``(x, log|det ∂x/∂y|)``, Eq. 4."""
        return self.spec().inverse(y)

    def fast_steps(self) -> list:
        cls = type(self)
        if cls.forward is not AffineCoupling.forward:
            raise FastPathUnsupported(
                f"{cls.__name__} overrides AffineCoupling.forward but not fast_steps()"
            )
        layers = linear_layers(self.spec().net)
        if layers is None:
            raise FastPathUnsupported(
                f"{cls.__name__}'s st-network is not a Sequential of Linear layers "
                "with ReLU between them"
            )
        return [self.spec(layers)]
