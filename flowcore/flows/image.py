r"""Affine couplings on small single-channel images, after Kirichenko et al. (2020), "Why
normalizing flows fail to detect out-of-distribution data".

Images are square, ``size × size``, one channel, and are stored *flat* as vectors of shape
``(..., size²)`` (row-major, so pixel ``(i, j)`` is coordinate ``i·size + j``), like every other
input of :mod:`flowcore.flows`; the layers reshape them to ``(N, 1, size, size)`` internally.

A coupling has a *condition* mask :math:`b` (pixels that are copied and feed the network) and a
*change* mask :math:`m` (pixels that are transformed), disjoint; pixels in neither pass through.
With :math:`(\hat s, t) = \mathrm{NN}(x \odot b)` and a learnable scalar :math:`w`,

.. math:: s = m \odot w \tanh(\hat s), \qquad t \leftarrow m \odot t, \qquad
    y = (x + t) \odot e^{s}, \qquad
    \log\left|\det\frac{\partial y}{\partial x}\right| = \sum_{ij} s_{ij},

and :math:`x = y \odot e^{-s} - t`. In this form :math:`-t` is the coupling's *prediction* of the
changed pixels (:math:`y_c = 0` exactly when :math:`x_c = -t`), which is what the paper's
co-adaptation analysis reads (:meth:`ImageAffineCoupling.parts`).

Masks are boolean ``(size, size)`` tensors, ``True`` = the pixel *conditions* (is copied):
:func:`checkerboard_mask`, :func:`horizontal_mask`, :func:`cycle_masks`, and
:func:`mask_sequence` for a whole stack. :func:`image_flow` builds the paper's model:
:class:`Logit` pre-processing, then couplings with no permutations or squeezes in between (so
pixels stay aligned across layers), on a :math:`\mathcal{N}(0, I)` base.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from flowcore.flows.distributions import StandardNormal
from flowcore.flows.flow import Flow
from flowcore.flows.transforms import CompositeTransform, Transform
from flowcore.validation import check_choice, check_int, check_non_negative

__all__ = [
    "ConvSTNet",
    "ImageAffineCoupling",
    "Logit",
    "MASK_KINDS",
    "checkerboard_mask",
    "coupling_layers",
    "cycle_masks",
    "horizontal_mask",
    "image_flow",
    "mask_sequence",
]

#: The mask kinds :func:`mask_sequence` and :func:`image_flow` accept.
MASK_KINDS = ("checkerboard", "horizontal", "cycle")


# --------------------------------------------------------------------------------------- masks


def checkerboard_mask(size: int, parity: int = 0) -> Tensor:
    r"""The checkerboard condition mask: pixel :math:`(i, j)` conditions iff
    :math:`((i \bmod 2) + j) \bmod 2 = 1 - \text{parity}`.

    ``parity = 0`` is the paper's code's mask :math:`b_{ij} = ((i \bmod 2) + j) \bmod 2` (its
    ``reverse=False``; the top-left pixel is changed), ``parity = 1`` its complement. The change
    mask is the complement, ``~checkerboard_mask(size, parity)``.

    Args:
        size: Side length ``≥ 2`` of the square image.
        parity: ``0`` or ``1``.

    Example:
        >>> checkerboard_mask(3).int()
        tensor([[0, 1, 0],
                [1, 0, 1],
                [0, 1, 0]], dtype=torch.int32)
        >>> torch.equal(checkerboard_mask(4, 1), ~checkerboard_mask(4, 0))
        True
    """
    size = check_int("size", size, minimum=2)
    parity = check_int("parity", parity, minimum=0, maximum=1)
    i = torch.arange(size).unsqueeze(1)
    j = torch.arange(size).unsqueeze(0)
    return ((i % 2) + j) % 2 == 1 - parity


def horizontal_mask(size: int, parity: int = 0) -> Tensor:
    r"""The horizontal condition mask: ``parity = 0`` conditions on the top half (rows
    :math:`i < \lfloor \text{size}/2 \rfloor`), ``parity = 1`` on the bottom half (the complement).

    For odd ``size`` the top half has :math:`\lfloor \text{size}/2 \rfloor` rows. The change mask is
    the complement.

    Args:
        size: Side length ``≥ 2`` of the square image.
        parity: ``0`` or ``1``.

    Example:
        >>> horizontal_mask(4).int()
        tensor([[1, 1, 1, 1],
                [1, 1, 1, 1],
                [0, 0, 0, 0],
                [0, 0, 0, 0]], dtype=torch.int32)
        >>> torch.equal(horizontal_mask(5, 1), ~horizontal_mask(5, 0))
        True
    """
    size = check_int("size", size, minimum=2)
    parity = check_int("parity", parity, minimum=0, maximum=1)
    top = (torch.arange(size) < size // 2).unsqueeze(1).expand(size, size).clone()
    return top if parity == 0 else ~top


def _quadrant(size: int, k: int) -> Tensor:
    """Quadrant ``k`` of a ``size × size`` image: 0 = top-left, 1 = top-right, 2 = bottom-right,
    3 = bottom-left."""
    half = size // 2
    mask = torch.zeros(size, size, dtype=torch.bool)
    rows = slice(None, half) if k in (0, 1) else slice(half, None)
    cols = slice(None, half) if k in (0, 3) else slice(half, None)
    mask[rows, cols] = True
    return mask


def cycle_masks(size: int) -> list[tuple[Tensor, Tensor]]:
    r"""The cycle masks of Kirichenko et al.: quadrants TL → TR → BR → BL → TL.

    Layer :math:`k` (``k = 0, …, 3``) conditions on quadrant :math:`k` and changes quadrant
    :math:`k + 1 \bmod 4`, with quadrants numbered 0 = top-left, 1 = top-right, 2 = bottom-right,
    3 = bottom-left; the other two quadrants pass through unchanged. (The paper's §7 says three
    layers, its App. I.1 four; a stack cycles through these four.)

    Args:
        size: Even side length ``≥ 2``.

    Returns:
        Four ``(condition_mask, change_mask)`` pairs of boolean ``(size, size)`` tensors.

    Raises:
        ValueError: If ``size`` is not an even integer ``≥ 2``.

    Example:
        >>> condition, change = cycle_masks(4)[0]
        >>> condition.int()
        tensor([[1, 1, 0, 0],
                [1, 1, 0, 0],
                [0, 0, 0, 0],
                [0, 0, 0, 0]], dtype=torch.int32)
        >>> change.int()
        tensor([[0, 0, 1, 1],
                [0, 0, 1, 1],
                [0, 0, 0, 0],
                [0, 0, 0, 0]], dtype=torch.int32)
        >>> torch.equal(cycle_masks(4)[3][1], condition)   # BL → TL closes the cycle
        True
    """
    size = check_int("size", size, minimum=2)
    if size % 2:
        raise ValueError(
            f"size must be an even integer ≥ 2 for the cycle mask (four equal quadrants), "
            f"got {size}"
        )
    quadrants = [_quadrant(size, k) for k in range(4)]
    return [(quadrants[k], quadrants[(k + 1) % 4]) for k in range(4)]


def mask_sequence(kind: str, size: int, n_layers: int) -> list[tuple[Tensor, Tensor]]:
    """``(condition_mask, change_mask)`` for each of ``n_layers`` couplings.

    * ``"checkerboard"``: layer ``k`` conditions on ``checkerboard_mask(size, k % 2)`` and changes
      its complement;
    * ``"horizontal"``: likewise with :func:`horizontal_mask` (top half first);
    * ``"cycle"``: layer ``k`` takes ``cycle_masks(size)[k % 4]`` (``size`` must be even).

    Example:
        >>> [(c.sum().item(), m.sum().item()) for c, m in mask_sequence("cycle", 4, 2)]
        [(4, 4), (4, 4)]
        >>> condition, change = mask_sequence("horizontal", 4, 2)[1]
        >>> torch.equal(change, horizontal_mask(4, 0))
        True
        >>> mask_sequence("diagonal", 4, 2)
        Traceback (most recent call last):
        ...
        ValueError: mask must be one of 'checkerboard', 'horizontal', 'cycle'; got 'diagonal'
    """
    kind = check_choice("mask", kind, MASK_KINDS)
    size = check_int("size", size, minimum=2)
    n_layers = check_int("n_layers", n_layers, minimum=1)
    if kind == "cycle":
        cycle = cycle_masks(size)
        return [cycle[k % 4] for k in range(n_layers)]
    make = checkerboard_mask if kind == "checkerboard" else horizontal_mask
    pairs = []
    for k in range(n_layers):
        condition = make(size, k % 2)
        pairs.append((condition, ~condition))
    return pairs


def _check_image_mask(name: str, mask) -> Tensor:
    mask = torch.as_tensor(mask)
    if (
        mask.dtype != torch.bool
        or mask.dim() != 2
        or mask.shape[0] != mask.shape[1]
        or mask.shape[0] < 2
    ):
        raise ValueError(
            f"{name} must be a square boolean tensor of shape (size, size) with size ≥ 2, "
            f"got {mask!r}"
        )
    if not mask.any():
        raise ValueError(f"{name} must have at least one True pixel")
    return mask.cpu()


# ---------------------------------------------------------------------------------- st-network


class _ResidualBlock(nn.Module):
    """``h + conv3×3(ReLU(conv3×3(h)))``, no normalisation."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.conv2(F.relu(self.conv1(h)))


class _Bottleneck(nn.Module):
    """``flatten → Linear(C·H·W → l) → Linear(l → C·H·W) → reshape``, no activation and no skip."""

    def __init__(self, channels: int, size: int, width: int):
        super().__init__()
        self.shape = (channels, size, size)
        self.down = nn.Linear(channels * size * size, width)
        self.up = nn.Linear(width, channels * size * size)

    def forward(self, h: Tensor) -> Tensor:
        return self.up(self.down(h.flatten(1))).view(-1, *self.shape)

    def extra_repr(self) -> str:
        return f"width={self.down.out_features}"


class ConvSTNet(nn.Module):
    r"""The coupling's network: a small ResNet of 3×3 convolutions from the conditioning pixels to
    :math:`(\hat s, t)`, optionally with a fully connected bottleneck in the middle.

    Given the masked image :math:`x \odot b` of shape ``(N, 1, size, size)``:

    1. stack :math:`(x \odot b, -x \odot b)` as two channels and apply a ReLU, so the channels
       are the positive and negative parts (as in the paper's code, which follows chrischute's
       Real NVP);
    2. a 3×3 convolution to ``channels`` channels;
    3. ``n_blocks // 2`` residual blocks
       :math:`h \mapsto h + \mathrm{conv}(\mathrm{ReLU}(\mathrm{conv}(h)))` (3×3 convolutions, no
       BatchNorm);
    4. with ``bottleneck = l``: flatten, ``Linear(C·H·W → l)``, ``Linear(l → C·H·W)``, reshape,
       with no skip connection around it, so all information passes through :math:`l` numbers;
    5. the remaining ``n_blocks - n_blocks // 2`` residual blocks;
    6. a ReLU and a 3×3 convolution to 2 channels, :math:`(\hat s, t)`, whose weight and bias
       start at zero, so the coupling starts as the identity.

    With ``n_blocks = 1`` the bottleneck comes before the block (the paper's code has none then).

    Args:
        size: Side length of the image.
        channels: Width ``C ≥ 1`` of the hidden convolutions.
        n_blocks: Number of residual blocks ``≥ 0``.
        bottleneck: Width ``l ≥ 1`` of the bottleneck, or ``None`` for none.

    Example:
        >>> net = ConvSTNet(8, channels=4, n_blocks=2, bottleneck=3)
        >>> net(torch.randn(5, 1, 8, 8)).shape
        torch.Size([5, 2, 8, 8])
        >>> net(torch.randn(5, 1, 8, 8)).abs().max().item()   # zero-initialised output layer
        0.0
    """

    def __init__(
        self, size: int, channels: int = 16, n_blocks: int = 2, bottleneck: int | None = None
    ):
        super().__init__()
        self.size = check_int("size", size, minimum=2)
        channels = check_int("channels", channels, minimum=1)
        n_blocks = check_int("n_blocks", n_blocks, minimum=0)
        if bottleneck is not None:
            bottleneck = check_int("bottleneck", bottleneck, minimum=1)
        self.bottleneck = bottleneck
        self.in_conv = nn.Conv2d(2, channels, 3, padding=1)
        first = n_blocks // 2
        self.blocks_before = nn.ModuleList(_ResidualBlock(channels) for _ in range(first))
        self.middle = (
            _Bottleneck(channels, self.size, bottleneck)
            if bottleneck is not None
            else nn.Identity()
        )
        self.blocks_after = nn.ModuleList(_ResidualBlock(channels) for _ in range(n_blocks - first))
        self.out_conv = nn.Conv2d(channels, 2, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    def forward(self, x_b: Tensor) -> Tensor:
        r"""``(N, 1, size, size)`` masked input :math:`x \odot b` → ``(N, 2, size, size)``:
        channel 0 is :math:`\hat s`, channel 1 is :math:`t`."""
        h = self.in_conv(F.relu(torch.cat((x_b, -x_b), dim=1)))
        for block in self.blocks_before:
            h = block(h)
        h = self.middle(h)
        for block in self.blocks_after:
            h = block(h)
        return self.out_conv(F.relu(h))


# ------------------------------------------------------------------------------------- coupling


class ImageAffineCoupling(Transform):
    r"""The paper's affine coupling on a flat single-channel image.

    With condition mask :math:`b`, change mask :math:`m` (disjoint),
    :math:`(\hat s, t) = \mathrm{ConvSTNet}(x \odot b)` and a learnable scalar :math:`w` (initially
    1; the paper's per-channel rescale, with one channel):

    .. math:: s = m \odot w\tanh(\hat s), \quad t \leftarrow m \odot t, \quad
        y = (x + t) \odot e^{s}, \quad
        \log\left|\det\frac{\partial y}{\partial x}\right| = \sum_{ij} s_{ij}.

    Pixels outside :math:`m` pass through exactly (:math:`s = t = 0` there); the Jacobian is
    triangular up to a permutation because :math:`s, t` only read :math:`b`, which :math:`m` does
    not touch. The inverse reads the same unchanged pixels: :math:`x = y \odot e^{-s} - t`.
    :math:`-t` is the coupling's prediction of the changed pixels (:meth:`parts`).

    Attributes:
        size: Side length of the image; inputs have ``size²`` coordinates.
        condition_mask, change_mask: Flat boolean masks of shape ``(size²,)``.
        n_change: Number of changed pixels.
        w: The scalar :math:`w`.
        net: The :class:`ConvSTNet`.

    Args:
        condition_mask: Boolean ``(size, size)``: ``True`` = the pixel conditions the network.
        change_mask: Boolean ``(size, size)``: ``True`` = the pixel is transformed; disjoint from
            ``condition_mask``. ``None`` takes the complement of ``condition_mask``.
        channels, n_blocks, bottleneck: Those of :class:`ConvSTNet`.

    Example:
        >>> layer = ImageAffineCoupling(checkerboard_mask(4), channels=4, n_blocks=1)
        >>> x = torch.randn(3, 16)
        >>> y, log_det = layer(x)                 # the identity at initialisation
        >>> torch.equal(y, x), log_det.tolist()
        (True, [0.0, 0.0, 0.0])
        >>> log_scales = []
        >>> _ = layer(x, log_scales=log_scales)
        >>> log_scales[0].shape                    # s on the 8 changed pixels
        torch.Size([3, 8])
    """

    def __init__(
        self,
        condition_mask: Tensor,
        change_mask: Tensor | None = None,
        channels: int = 16,
        n_blocks: int = 2,
        bottleneck: int | None = None,
    ):
        super().__init__()
        condition = _check_image_mask("condition_mask", condition_mask)
        change = (
            ~condition if change_mask is None else _check_image_mask("change_mask", change_mask)
        )
        if change.shape != condition.shape:
            raise ValueError(
                f"change_mask must have the shape of condition_mask {tuple(condition.shape)}, "
                f"got {tuple(change.shape)}"
            )
        if (change & condition).any():
            raise ValueError(
                "change_mask and condition_mask must be disjoint "
                "(a changed pixel cannot condition its own transform)"
            )
        if not change.any():
            raise ValueError("change_mask must have at least one True pixel")
        self.size = condition.shape[0]
        self.n_change = int(change.sum())
        # Derived from the constructor's masks: not part of the state dict.
        self.register_buffer("condition_mask", condition.flatten(), persistent=False)
        self.register_buffer("change_mask", change.flatten(), persistent=False)
        self.register_buffer(
            "change_index", change.flatten().nonzero().squeeze(-1), persistent=False
        )
        self.w = nn.Parameter(torch.tensor(1.0))
        self.net = ConvSTNet(self.size, channels, n_blocks, bottleneck)

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, n_condition={int(self.condition_mask.sum())}, "
            f"n_change={self.n_change}"
        )

    def _image(self, x: Tensor) -> Tensor:
        d = self.size * self.size
        if x.dim() < 1 or x.shape[-1] != d:
            raise ValueError(
                f"expected flat images of shape (..., {d}) for size {self.size}, "
                f"got {tuple(x.shape)}"
            )
        return x.reshape(-1, 1, self.size, self.size)

    def scale_shift(self, image: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(s, t)``, each ``(N, 1, size, size)`` and zero outside the change mask, from an image
        whose condition pixels are those of the input."""
        shape = (1, 1, self.size, self.size)
        b = self.condition_mask.view(shape).to(image.dtype)
        m = self.change_mask.view(shape).to(image.dtype)
        raw_s, t = self.net(image * b).chunk(2, dim=1)
        return m * (self.w * torch.tanh(raw_s)), m * t

    def forward(self, x: Tensor, log_scales: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Data → latent: ``(y, log|det ∂y/∂x|)``; appends ``s`` on the changed pixels (shape
        ``(..., n_change)``) to ``log_scales`` if given."""
        batch = x.shape[:-1]
        image = self._image(x)
        s, t = self.scale_shift(image)
        y = (image + t) * torch.exp(s)
        s = s.flatten(1)
        if log_scales is not None:
            log_scales.append(s.index_select(1, self.change_index).reshape(*batch, self.n_change))
        return y.reshape(x.shape), s.sum(-1).reshape(batch)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Latent → data: ``(x, log|det ∂x/∂y|)`` with ``x = y·exp(-s) - t``."""
        batch = y.shape[:-1]
        image = self._image(y)
        s, t = self.scale_shift(image)  # the condition pixels of y are those of x
        x = image * torch.exp(-s) - t
        return x.reshape(y.shape), -s.flatten(1).sum(-1).reshape(batch)

    def parts(self, x: Tensor) -> dict[str, Tensor]:
        r"""The tensors of a co-adaptation analysis for a batch ``x`` of shape ``(..., size²)``.

        Returns ``{"input": x, "output": y, "s": s, "t": t, "prediction": -t}``, each of ``x``'s
        shape; ``s``, ``t`` and ``prediction`` are zero outside :attr:`change_mask` and only
        meaningful on it. Gradients follow the caller's grad mode.

        Example:
            >>> layer = ImageAffineCoupling(*cycle_masks(4)[0], channels=2, n_blocks=0)
            >>> p = layer.parts(torch.randn(2, 16))
            >>> sorted(p), p["prediction"].shape
            (['input', 'output', 'prediction', 's', 't'], torch.Size([2, 16]))
        """
        image = self._image(x)
        s, t = self.scale_shift(image)
        y = (image + t) * torch.exp(s)
        s, t = s.reshape(x.shape), t.reshape(x.shape)
        return {"input": x, "output": y.reshape(x.shape), "s": s, "t": t, "prediction": -t}


# ---------------------------------------------------------------------------------------- logit


class Logit(Transform):
    r"""The logit pre-processing of dequantised data :math:`x \in (0, 1)^D`:

    .. math:: u = \alpha + (1 - 2\alpha)x, \qquad
        y = \operatorname{logit}(u) = \log u - \log(1 - u),

    .. math:: \log\left|\det\frac{\partial y}{\partial x}\right| = \sum_{d=1}^D
        \left[\log(1 - 2\alpha) - \log u_d - \log(1 - u_d)\right].

    The inverse is :math:`x = (\sigma(y) - \alpha)/(1 - 2\alpha)` with
    :math:`\log|\det \partial x/\partial y| =
    \sum_d [\log\sigma(y_d) + \log\sigma(-y_d) - \log(1-2\alpha)]`.
    The margin :math:`\alpha` keeps :math:`y` finite at :math:`x \in \{0, 1\}`.

    Args:
        alpha: :math:`0 \le \alpha < 1/2` (0.05 by default).

    Example:
        >>> logit = Logit(0.05)
        >>> y, log_det = logit(torch.tensor([[0.5, 0.5]]))
        >>> y, log_det
        (tensor([[0., 0.]]), tensor([2.5619]))
        >>> logit.inverse(y)[0]
        tensor([[0.5000, 0.5000]])
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        self.alpha = _check_alpha(alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"

    def forward(self, x: Tensor, log_scales: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        u = self.alpha + (1 - 2 * self.alpha) * x
        log_u, log_1mu = torch.log(u), torch.log1p(-u)
        return log_u - log_1mu, (math.log1p(-2 * self.alpha) - log_u - log_1mu).sum(-1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x = (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)
        # log σ(y) + log σ(-y) = -softplus(-y) - softplus(y)
        return x, (-F.softplus(-y) - F.softplus(y) - math.log1p(-2 * self.alpha)).sum(-1)


def _check_alpha(alpha) -> float:
    alpha = check_non_negative("alpha", alpha)
    if alpha >= 0.5:
        raise ValueError(f"alpha must be a number in [0, 0.5), got {alpha!r}")
    return alpha


# ----------------------------------------------------------------------------------------- flow


def image_flow(
    size: int = 8,
    n_couplings: int = 4,
    mask: str = "checkerboard",
    channels: int = 16,
    n_blocks: int = 2,
    bottleneck: int | None = None,
    alpha: float = 0.05,
) -> Flow:
    r"""The paper's image flow for flat ``size × size`` single-channel images in :math:`(0, 1)`:

    .. math:: f = c_K \circ \dots \circ c_1 \circ \operatorname{Logit}_\alpha, \qquad
        p_Z = \mathcal{N}(0, I_{\text{size}^2}),

    with :class:`ImageAffineCoupling` layers :math:`c_k` on the masks of
    ``mask_sequence(mask, size, n_couplings)`` and no permutations or squeezes, so pixels stay
    aligned across layers. Every coupling starts as the identity, so at initialisation
    :math:`p_\theta` is :math:`\mathcal{N}(0, I)` pushed through the inverse logit. Weights come
    from the global RNG, in layer order.

    The layers have no fast no-grad path (:mod:`flowcore.flows.fast`); the flow is marked
    ``autograd_only``, so ``log_prob`` under ``torch.no_grad`` uses the autograd path without a
    :class:`~flowcore.flows.FastPathWarning`.

    Args:
        size: Side length ``≥ 2`` (even for ``"cycle"``).
        n_couplings: Number of couplings ``≥ 1``.
        mask: ``"checkerboard"``, ``"horizontal"`` or ``"cycle"`` (:func:`mask_sequence`).
        channels, n_blocks, bottleneck: Those of each coupling's :class:`ConvSTNet`.
        alpha: The :class:`Logit` margin, :math:`0 \le \alpha < 1/2`.

    Raises:
        ValueError: Naming the parameter, for any invalid argument.

    Example:
        >>> flow = image_flow(size=4, n_couplings=2, mask="cycle", channels=4, n_blocks=1)
        >>> x = torch.rand(3, 16)
        >>> flow.log_prob(x).shape, len(coupling_layers(flow))
        (torch.Size([3]), 2)
        >>> image_flow(size=3, mask="cycle")  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        ValueError: size must be an even integer ≥ 2 for the cycle mask (four equal quadrants),
        got 3
    """
    # Check everything before the first coupling draws weights from the global RNG.
    size = check_int("size", size, minimum=2)
    n_couplings = check_int("n_couplings", n_couplings, minimum=1)
    mask = check_choice("mask", mask, MASK_KINDS)
    channels = check_int("channels", channels, minimum=1)
    n_blocks = check_int("n_blocks", n_blocks, minimum=0)
    if bottleneck is not None:
        bottleneck = check_int("bottleneck", bottleneck, minimum=1)
    alpha = _check_alpha(alpha)
    masks = mask_sequence(mask, size, n_couplings)
    layers: list[nn.Module] = [Logit(alpha)]
    layers += [
        ImageAffineCoupling(condition, change, channels, n_blocks, bottleneck)
        for condition, change in masks
    ]
    flow = Flow(CompositeTransform(layers), StandardNormal(size * size))
    flow.autograd_only = True
    return flow


def coupling_layers(flow: nn.Module) -> list[ImageAffineCoupling]:
    """The :class:`ImageAffineCoupling` modules of ``flow`` (a flow or a transform), in layer order.

    Example:
        >>> flow = image_flow(size=4, n_couplings=3, channels=2, n_blocks=0)
        >>> [int(c.change_mask.sum()) for c in coupling_layers(flow)]
        [8, 8, 8]
    """
    return [m for m in flow.modules() if isinstance(m, ImageAffineCoupling)]
