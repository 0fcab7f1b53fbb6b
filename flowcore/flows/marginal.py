r"""Marginalizing flows (de Boer 2020): a flow on data padded with Gaussian auxiliary dimensions.

A marginalizing flow has a normalizing flow :math:`p^T` on :math:`y = [x, \varepsilon] \in
\mathbb{R}^{D+B}`: :math:`x \in \mathbb{R}^D` is the data and :math:`\varepsilon \in \mathbb{R}^B`
are *auxiliary* dimensions. The model of the data is the marginal

.. math:: p(x) = \int p^T(x, \varepsilon)\,d\varepsilon
    = \mathbb{E}_{\varepsilon \sim \mathcal{N}(0, I_B)}
    \left[\frac{p^T(x, \varepsilon)}{\mathcal{N}(\varepsilon; 0, I_B)}\right],

estimated by importance sampling with the proposal :math:`q = \mathcal{N}(0, I_B)` (thesis Eq. 8):

.. math:: \hat p_S(x) = \frac1S \sum_{s=1}^S w_s, \qquad
    w_s = \frac{p^T(x, \varepsilon_s)}{\mathcal{N}(\varepsilon_s; 0, I_B)}, \qquad
    \varepsilon_s \sim \mathcal{N}(0, I_B).

Training maximises the *joint* log-likelihood :math:`\log p^T(x, \varepsilon)` with a fresh
:math:`\varepsilon \sim \mathcal{N}(0, I_B)` for every observation at every step (thesis Eq. 7 and
§1.2.1). By Jensen's inequality its expectation is a lower bound on the marginal:

.. math:: \mathbb{E}_\varepsilon \log p^T(x, \varepsilon) + H_B
    = \mathbb{E}_\varepsilon \log \hat p_1(x) \le
    \mathbb{E}_\varepsilon \log \hat p_S(x) \le \log p(x), \qquad H_B = \tfrac B2 (1 + \log 2\pi),

where :math:`H_B` is the entropy of :math:`\mathcal{N}(0, I_B)`. With :math:`B = 0` everything
reduces to an ordinary flow (thesis footnote 2).

The architecture (thesis §2.1) is :func:`r_block_flow`: an :class:`ActNorm` layer, then R-blocks of
[affine coupling, reverse permutation, affine coupling, random shuffle, ActNorm], the last one
truncated after its second coupling.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flowcore.flows.couplings import AffineCoupling, halves
from flowcore.flows.distributions import StandardNormal, standard_normal_log_prob
from flowcore.flows.flow import Flow
from flowcore.flows.transforms import CompositeTransform, Permutation, Transform
from flowcore.gaussians import LOG_2PI
from flowcore.validation import check_choice, check_int, check_int_list, check_positive

__all__ = ["ActNorm", "JointTrainingView", "MarginalFlow", "marginal_flow", "r_block_flow"]


class ActNorm(Transform):
    r"""Per-dimension affine normalisation with data-dependent initialisation (thesis §2.1.1).

    .. math:: z_i = (x_i - \mu_i)\,e^{-\ell_i}, \qquad
        \log\left|\det\frac{\partial z}{\partial x}\right| = -\sum_i \ell_i, \qquad
        x_i = z_i\,e^{\ell_i} + \mu_i,

    with learned :math:`\mu` (``loc``) and :math:`\ell = \log\sigma` (``log_scale``). This is the
    thesis's :math:`u_i = (x_i - \beta_i)/(\alpha_i + \gamma)`, :math:`\alpha_i = e^{\alpha'_i}`,
    with :math:`\beta = \mu`, :math:`\alpha' = \ell` and :math:`\gamma = 0`: the exponential
    already keeps the scale positive, and :math:`\gamma` only survives as the floor ``eps`` on the
    initial standard deviation.

    *Data-dependent initialisation*: the first ``forward`` in training mode (``module.train()``,
    the default) sets, from that batch (all leading dimensions pooled),

    .. math:: \mu = \bar x, \qquad \ell = \log\max(\mathrm{sd}(x), \epsilon),

    with the population standard deviation (divisor :math:`n`), so the batch comes out with mean
    0 and variance 1 per dimension (exactly, where :math:`\mathrm{sd} \ge \epsilon`); the output of
    that call already uses the new values (and carries gradients to them). The flag
    ``initialized`` is a registered (persistent) buffer, so it travels in ``state_dict``: a flow
    loaded from a trained state never re-initialises. Before initialisation the layer is the
    identity (:math:`\mu = 0, \ell = 0`); calls in eval mode and ``inverse`` never initialise.

    Args:
        dim: The dimension ``D ≥ 1``.
        eps: Floor :math:`\epsilon > 0` on the initial standard deviation (a constant coordinate
            would otherwise get :math:`\ell = -\infty`).

    Raises:
        ValueError: If the initialising batch has fewer than 2 rows (no standard deviation).

    Example:
        >>> layer = ActNorm(2)
        >>> x = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
        >>> z, log_det = layer(x)                    # training mode: initialises on this batch
        >>> z.detach().round(decimals=4), log_det.detach()
        (tensor([[-1., -1.],
                [ 1.,  1.]]), tensor([-2.3026, -2.3026]))
        >>> bool(layer.initialized), "initialized" in layer.state_dict()
        (True, True)
        >>> layer.inverse(z)[0].detach().round(decimals=4)
        tensor([[ 1., 10.],
                [ 3., 30.]])
    """

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim = check_int("dim", dim, minimum=1)
        self.eps = check_positive("eps", eps)
        self.loc = nn.Parameter(torch.zeros(self.dim))
        self.log_scale = nn.Parameter(torch.zeros(self.dim))
        self.register_buffer("initialized", torch.tensor(False))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, initialized={bool(self.initialized)}"

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        r"""Set :math:`\mu` and :math:`\ell` from the batch ``x`` (shape ``(..., D)``) and mark the
        layer initialised.

        ``forward`` calls this on its first training-mode call; call it directly to initialise
        from a chosen batch.

        Example:
            >>> layer = ActNorm(1)
            >>> layer.initialize(torch.tensor([[0.0], [4.0]]))
            >>> layer.loc.data, layer.log_scale.data.exp()
            (tensor([2.]), tensor([2.]))
        """
        rows = x.detach().reshape(-1, self.dim)
        if rows.shape[0] < 2:
            raise ValueError(
                "ActNorm's data-dependent initialisation needs a batch of at least 2 rows, "
                f"got {rows.shape[0]}"
            )
        mean = rows.mean(0)
        sd = rows.std(0, correction=0)
        self.loc.copy_(mean)
        self.log_scale.copy_(sd.clamp_min(self.eps).log())
        self.initialized.fill_(True)

    def forward(self, x: Tensor, log_scales: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Data → latent: ``(z, log|det ∂z/∂x|)``; initialises first if training and not yet
        initialised."""
        if self.training and not bool(self.initialized):
            self.initialize(x)
        z = (x - self.loc) * torch.exp(-self.log_scale)
        return z, (-self.log_scale.sum()).expand(x.shape[:-1])

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Latent → data: ``(x, log|det ∂x/∂z|) = (z·σ + μ, Σ log σ)``."""
        x = z * torch.exp(self.log_scale) + self.loc
        return x, self.log_scale.sum().expand(z.shape[:-1])


def r_block_flow(
    dim: int,
    n_blocks: int = 4,
    hidden: tuple[int, ...] = (64, 64),
    log_scale: str = "exp",
    seed: int = 0,
    *,
    log_scale_bound: float = 3.0,
    zero_init: bool = True,
) -> Flow:
    r"""The thesis's flow on :math:`\mathbb{R}^Q` (§2.1.4): ActNorm, then ``n_blocks`` R-blocks.

    .. math:: f = B^{\mathrm{trunc}}_{L} \circ R_{L-1} \circ \dots \circ R_1 \circ \mathrm{ActNorm},
        \qquad R = \mathrm{ActNorm} \circ \Pi_{\mathrm{random}} \circ C
        \circ \Pi_{\mathrm{reverse}} \circ C,
        \qquad B^{\mathrm{trunc}} = C \circ \Pi_{\mathrm{reverse}} \circ C,

    where :math:`L` = ``n_blocks`` counts every R-block, the truncated last one included. The last
    R-block omits its final random shuffle and ActNorm, as the thesis does: those layers only
    serve later couplings (the shuffle lets coordinates that were copied be transformed later,
    ActNorm keeps later couplings' inputs standardised), and after the last coupling there are
    none: a permutation there would change nothing about the density family (the base is
    isotropic) and an ActNorm would only add a diagonal affine map.

    Each coupling :math:`C` is an :class:`~flowcore.flows.AffineCoupling` with the mask
    ``halves(Q, 0)``: it copies the lower :math:`\lfloor Q/2\rfloor` coordinates and transforms
    the upper :math:`\lceil Q/2\rceil`, :math:`u_{hi} = x_{hi} e^{s} + m` with
    :math:`(s, m) = \mathrm{MLP}(x_{lo})` — the thesis's "conditioned on the lower half", which
    for odd :math:`Q` is the lower :math:`\lfloor Q/2\rfloor`. The reverse permutation between
    the two couplings of a block makes the second transform what the first copied, so every
    coordinate is transformed in every block. The log-scale is unbounded (``"exp"``) by default,
    as in the thesis.

    The random shuffles are drawn in block order from ``torch.Generator().manual_seed(seed)``
    (never the global RNG) and stored as buffers; the st-networks' initial weights come from the
    global RNG (as in :class:`~flowcore.flows.RealNVP`). With ``zero_init`` every coupling starts
    as the identity. The layers have no no-grad fast path, so the flow is marked
    ``autograd_only``.

    Args:
        dim: :math:`Q = D + B \ge 2`.
        n_blocks: Number of R-blocks :math:`L \ge 1`, the truncated last one included
            (:math:`2L` couplings, :math:`L` ActNorm layers).
        hidden: Hidden widths of each st-network.
        log_scale: The couplings' log-scale map, ``"exp"`` (thesis), ``"tanh"`` or ``"sigmoid"``.
        seed: Seed of the random shuffles.
        log_scale_bound: Bound of the ``"tanh"`` map.
        zero_init: Whether each st-network's last layer starts at zero.

    Example:
        >>> flow = r_block_flow(3, n_blocks=2, hidden=(8,))
        >>> names = [type(t).__name__ for t in flow.transform.transforms]
        >>> names[:5]
        ['ActNorm', 'AffineCoupling', 'Permutation', 'AffineCoupling', 'Permutation']
        >>> names[5:]
        ['ActNorm', 'AffineCoupling', 'Permutation', 'AffineCoupling']
        >>> flow.transform.transforms[1].mask.tolist()     # copies the lower ⌊3/2⌋ = 1 coordinate
        [True, False, False]
        >>> flow.autograd_only, flow.log_prob(torch.zeros(4, 3)).shape
        (True, torch.Size([4]))
    """
    dim = check_int("dim", dim, minimum=2)
    n_blocks = check_int("n_blocks", n_blocks, minimum=1)
    hidden = check_int_list("hidden", hidden, minimum=1)
    log_scale = check_choice("log_scale", log_scale, AffineCoupling.LOG_SCALES)
    check_positive("log_scale_bound", log_scale_bound)
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    mask = halves(dim, 0)

    def coupling() -> AffineCoupling:
        return AffineCoupling(mask, hidden, log_scale, log_scale_bound, zero_init)

    layers: list[nn.Module] = [ActNorm(dim)]
    for block in range(n_blocks):
        layers += [coupling(), Permutation.reverse(dim), coupling()]
        if block < n_blocks - 1:  # the last R-block stops after its second coupling
            layers += [Permutation.random(dim, generator), ActNorm(dim)]
    flow = Flow(CompositeTransform(layers), StandardNormal(dim))
    flow.autograd_only = True
    return flow


def _randn(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normals of ``like``'s dtype on its device; with a (CPU) ``generator``, drawn on the
    CPU and moved."""
    device = "cpu" if generator is not None else like.device
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=device).to(like.device)


class MarginalFlow(nn.Module):
    r"""A marginalizing flow: the flow ``flow`` on :math:`y = [x, \varepsilon] \in \mathbb{R}^{D+B}`
    and the marginal :math:`p(x) = \int p^T(x, \varepsilon)\,d\varepsilon` it defines (module
    docstring).

    * :meth:`joint_log_prob`: :math:`\log p^T([x, \varepsilon])`, the training objective;
    * :meth:`training_batch`: :math:`[x, \varepsilon]` with fresh
      :math:`\varepsilon \sim \mathcal{N}(0, I_B)`;
    * :meth:`log_prob_marginal`: :math:`\log\hat p_S(x)` (Eq. 8) and its Monte-Carlo standard error;
    * :meth:`sample`: :math:`y \sim p^T`, keep :math:`x = y_{1:D}`.

    To train with :func:`flowcore.train.fit`, wrap it in a :class:`JointTrainingView`.

    Args:
        flow: A :class:`~flowcore.flows.Flow` on :math:`\mathbb{R}^{D+B}` (its base's ``dim``,
            if it has one, must be :math:`D + B`).
        dim: :math:`D \ge 1`, the data dimension (the first ``D`` coordinates of :math:`y`).
        aux: :math:`B \ge 0`, the auxiliary dimensions (the last ``B``).

    Example:
        >>> model = MarginalFlow(r_block_flow(3, n_blocks=1, hidden=(8,)), dim=2, aux=1).eval()
        >>> model.dim, model.aux, round(model.aux_entropy, 4)
        (2, 1, 1.4189)
        >>> x = torch.zeros(5, 2)
        >>> g = torch.Generator().manual_seed(0)
        >>> log_p, stderr = model.log_prob_marginal(x, n_samples=10, generator=g)
        >>> log_p.shape, stderr.shape, model.sample(3).shape
        (torch.Size([5]), torch.Size([5]), torch.Size([3, 2]))
    """

    #: Rows of :math:`[x, \varepsilon]` per pass through the flow in :meth:`log_prob_marginal`.
    max_rows: int = 65536

    def __init__(self, flow: nn.Module, dim: int, aux: int):
        super().__init__()
        self.dim = check_int("dim", dim, minimum=1)
        self.aux = check_int("aux", aux, minimum=0)
        base_dim = getattr(getattr(flow, "base", None), "dim", None)
        if base_dim is not None and base_dim != self.dim + self.aux:
            raise ValueError(
                f"the flow is on R^{base_dim}, but dim + aux = {self.dim} + {self.aux} = "
                f"{self.dim + self.aux}"
            )
        self.flow = flow

    def forward(self, *args, **kwargs):
        raise TypeError(
            f"a {type(self).__name__} is not called directly: use joint_log_prob(x, eps), "
            "log_prob_marginal(x) or sample(n); wrap it in a JointTrainingView to train it with fit"
        )

    @property
    def aux_entropy(self) -> float:
        r""":math:`H_B = \tfrac B2(1 + \log 2\pi)`, the entropy of :math:`\mathcal{N}(0, I_B)`: the
        joint bound on :math:`\log p(x)` is
        :math:`\mathbb{E}_\varepsilon\log p^T(x, \varepsilon) + H_B`.

        Example:
            >>> MarginalFlow(r_block_flow(2, n_blocks=1, hidden=(4,)), dim=2, aux=0).aux_entropy
            0.0
        """
        return 0.5 * self.aux * (1.0 + LOG_2PI)

    def _check_x(self, x: Tensor) -> None:
        if x.dim() < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., {self.dim}), got {tuple(x.shape)}")

    def joint_log_prob(self, x: Tensor, eps: Tensor | None) -> Tensor:
        r""":math:`\log p^T([x, \varepsilon])` for ``x`` of shape ``(..., D)`` and ``eps`` of shape
        ``(..., B)``.

        ``eps`` may be ``None`` when :math:`B = 0`.

        Example:
            >>> model = MarginalFlow(r_block_flow(3, n_blocks=1, hidden=(8,)), dim=2, aux=1).eval()
            >>> # the identity at init: log N(0; 0, I_3)
            >>> model.joint_log_prob(torch.zeros(1, 2), torch.zeros(1, 1))
            tensor([-2.7568], grad_fn=<AddBackward0>)
        """
        self._check_x(x)
        if self.aux == 0 and eps is None:
            return self.flow.log_prob(x)
        if eps is None or eps.shape[-1] != self.aux:
            raise ValueError(
                f"eps must have shape (..., {self.aux}), "
                f"got {None if eps is None else tuple(eps.shape)}"
            )
        return self.flow.log_prob(torch.cat((x, eps), dim=-1))

    def training_batch(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r""":math:`[x, \varepsilon]`, shape ``(..., D + B)``, with
        :math:`\varepsilon \sim \mathcal{N}(0, I_B)` drawn fresh (from ``generator`` if given, on
        the CPU, then moved to ``x``'s device); ``x`` itself when :math:`B = 0`.

        Example:
            >>> model = MarginalFlow(r_block_flow(3, n_blocks=1, hidden=(8,)), dim=2, aux=1)
            >>> g = torch.Generator().manual_seed(0)
            >>> y = model.training_batch(torch.ones(4, 2), generator=g)
            >>> y.shape, torch.equal(y[:, :2], torch.ones(4, 2))
            (torch.Size([4, 3]), True)
        """
        self._check_x(x)
        if self.aux == 0:
            return x
        return torch.cat((x, _randn((*x.shape[:-1], self.aux), x, generator)), dim=-1)

    def log_prob_marginal(
        self, x: Tensor, n_samples: int = 200, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        r"""The importance-sampled marginal (Eq. 8) in log space, and its Monte-Carlo standard
        error.

        With :math:`\varepsilon_s \sim \mathcal{N}(0, I_B)` drawn independently for each row of
        ``x`` and
        :math:`\log w_s = \log p^T(x, \varepsilon_s) - \log\mathcal{N}(\varepsilon_s; 0, I_B)`,

        .. math:: \log\hat p_S(x) = \operatorname{logsumexp}_s \log w_s - \log S, \qquad
            \mathrm{SE} = \frac{\mathrm{sd}_s(r_s)}{\sqrt S}, \quad
            r_s = \frac{w_s}{\hat p_S(x)} = e^{\log w_s - \log\hat p_S(x)},

        the delta-method standard error of :math:`\log\hat p_S`,
        :math:`\mathrm{sd}(w)/(\sqrt S\,\overline{w})`, computed from the normalised weights
        :math:`r_s` (mean 1) so nothing overflows; :math:`\mathrm{sd}` has divisor :math:`S - 1`,
        so ``n_samples = 1`` gives a NaN standard error. It describes the noise, not the bias:
        :math:`\log\hat p_S` underestimates :math:`\log p(x)` on average, by about
        :math:`\mathrm{SE}^2/2` for large :math:`S`. With :math:`B = 0` the estimate is exactly
        ``flow.log_prob(x)`` and the standard error 0 (no draws are made).

        Evaluate in eval mode (``model.eval()``): in training mode a flow's uninitialised
        :class:`ActNorm` layers would initialise on these rows. Gradients flow as in
        ``flow.log_prob``; wrap evaluation in ``torch.no_grad()``. The rows
        :math:`[x, \varepsilon_s]` go through the flow in passes of at most :attr:`max_rows`.

        Args:
            x: Data of shape ``(..., D)``.
            n_samples: :math:`S \ge 1` (the thesis uses 200).
            generator: A CPU ``torch.Generator`` for the draws (they are moved to ``x``'s device);
                ``None`` uses the global RNG.

        Returns:
            ``(estimate, stderr)``, each of shape ``x.shape[:-1]``.

        Example:
            >>> model = MarginalFlow(r_block_flow(3, n_blocks=1, hidden=(8,)), dim=2, aux=1).eval()
            >>> with torch.no_grad():
            ...     log_p, se = model.log_prob_marginal(torch.zeros(2, 2), n_samples=50)
            >>> # the identity at init: log N(0; 0, I_2), up to rounding
            >>> log_p, bool((se < 1e-6).all())
            (tensor([-1.8379, -1.8379]), True)
        """
        self._check_x(x)
        n_samples = check_int("n_samples", n_samples, minimum=1)
        if self.aux == 0:
            log_p = self.flow.log_prob(x)
            return log_p, torch.zeros_like(log_p)
        batch_shape = x.shape[:-1]
        rows = x.reshape(-1, self.dim)
        n = rows.shape[0]
        per_pass = max(1, self.max_rows // max(n, 1))
        chunks = []
        for start in range(0, n_samples, per_pass):
            s = min(per_pass, n_samples - start)
            eps = _randn((s, n, self.aux), rows, generator)
            y = torch.cat((rows.expand(s, n, self.dim), eps), dim=-1)
            # the base's own density (its float32 log 2π), so the proposal cancels it exactly where
            # the joint factorises
            chunks.append(
                self.flow.log_prob(y.reshape(s * n, -1)).reshape(s, n)
                - standard_normal_log_prob(eps)
            )
        log_w = torch.cat(chunks, dim=0)  # (S, n)
        estimate = torch.logsumexp(log_w, dim=0) - math.log(n_samples)
        if n_samples > 1:
            ratio = torch.exp(log_w - estimate)  # w_s / mean(w), mean 1
            stderr = ratio.std(dim=0, correction=1) / math.sqrt(n_samples)
        else:
            stderr = torch.full_like(estimate, float("nan"))
        return estimate.reshape(batch_shape), stderr.reshape(batch_shape)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        r"""``n`` draws of :math:`x`: :math:`y = f^{-1}(z)`, :math:`z \sim \mathcal{N}(0, I_{D+B})`,
        keep :math:`y_{1:D}`; shape ``(n, D)``.

        Example:
            >>> model = MarginalFlow(r_block_flow(3, n_blocks=1, hidden=(8,)), dim=2, aux=1)
            >>> model.sample(4, generator=torch.Generator().manual_seed(0)).shape
            torch.Size([4, 2])
        """
        return self.flow.sample(n, generator=generator)[..., : self.dim]


def marginal_flow(dim: int, aux: int, **kwargs) -> MarginalFlow:
    r"""A :class:`MarginalFlow` with ``D = dim``, ``B = aux`` on :func:`r_block_flow`
    ``(dim + aux, **kwargs)``.

    Example:
        >>> model = marginal_flow(2, 2, n_blocks=2, hidden=(8,))
        >>> transforms = model.flow.transform.transforms
        >>> model.flow.base.dim, len([t for t in transforms if isinstance(t, AffineCoupling)])
        (4, 4)
    """
    dim = check_int("dim", dim, minimum=1)
    aux = check_int("aux", aux, minimum=0)
    return MarginalFlow(r_block_flow(dim + aux, **kwargs), dim, aux)


class JointTrainingView(nn.Module):
    r"""Present a :class:`MarginalFlow` to :func:`flowcore.train.fit` as a density on :math:`x`.

    ``log_prob(x)`` returns the *joint* log-density :math:`\log p^T(x, \varepsilon)` with a fresh
    :math:`\varepsilon \sim \mathcal{N}(0, I_B)` per row, so ``fit`` minimises the thesis's
    objective

    .. math:: L(\theta) = -\frac1{|B|}\sum_{x \in B} \log p^T_\theta(x, \varepsilon_x), \qquad
        \varepsilon_x \sim \mathcal{N}(0, I_B) \text{ redrawn every step},

    an unbiased estimate of :math:`-\mathbb{E}_\varepsilon \log p^T_\theta(x, \varepsilon)`. Since
    :math:`\mathbb{E}_\varepsilon \log p^T(x, \varepsilon) + H_B \le \log p(x)`
    (:attr:`MarginalFlow.aux_entropy`), the NLLs ``fit`` reports are joint NLLs: subtract
    :math:`H_B` to get an upper bound on the marginal NLL; use
    :meth:`MarginalFlow.log_prob_marginal` for the marginal itself. With :math:`B = 0` this is
    the ordinary flow's NLL.

    The draws: in training mode (``fit``'s steps) :math:`\varepsilon` comes from a generator
    seeded once with ``seed`` and advanced by every call. In eval mode (``fit``'s validation
    pass) it comes, by default, from a generator re-seeded with ``eval_seed`` on every call, so
    the validation NLL is a deterministic function of the weights (common random numbers): the
    early-stopping comparisons between epochs then see weight changes, not fresh
    :math:`\varepsilon` noise. ``eval_seed=None`` draws fresh :math:`\varepsilon` in eval mode too.
    The generators' states are not part of ``state_dict``.

    ``parameters()``, ``train()``/``eval()`` and ``state_dict()`` are the wrapped model's (under
    the prefix ``model.``); :meth:`log_prob_and_log_scales` serves ``fit``'s ``loss_terms``.

    Args:
        model: The :class:`MarginalFlow` to train (in place).
        seed: Seed of the training draws.
        eval_seed: Seed of the eval-mode draws (re-seeded each call), or ``None``.

    Example:
        >>> from flowcore.train import TrainConfig, fit
        >>> x = torch.randn(128, 2, generator=torch.Generator().manual_seed(0)) * 2 + 1
        >>> view = JointTrainingView(marginal_flow(2, 1, n_blocks=1, hidden=(8,)))
        >>> history = fit(view, x, x, TrainConfig(batch_size=32, max_epochs=2), progress=False)
        >>> len(history.val_nll), bool(view.model.flow.transform.transforms[0].initialized)
        (2, True)
    """

    def __init__(self, model: MarginalFlow, seed: int = 0, eval_seed: int | None = 0):
        super().__init__()
        if not isinstance(model, MarginalFlow):
            raise ValueError(f"model must be a MarginalFlow, got {type(model).__name__}")
        self.model = model
        self.seed = check_int("seed", seed, minimum=0)
        self.eval_seed = None if eval_seed is None else check_int("eval_seed", eval_seed, minimum=0)
        self.generator = torch.Generator().manual_seed(self.seed)

    def forward(self, *args, **kwargs):
        raise TypeError(f"a {type(self).__name__} is not called directly: use log_prob(x)")

    def _generator(self) -> torch.Generator:
        if self.training or self.eval_seed is None:
            return self.generator
        return torch.Generator().manual_seed(self.eval_seed)

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\log p^T(x, \varepsilon)` with :math:`\varepsilon \sim \mathcal{N}(0, I_B)` drawn
        per row (see the class docstring).

        Example:
            >>> view = JointTrainingView(marginal_flow(2, 1, n_blocks=1, hidden=(8,))).eval()
            >>> x = torch.zeros(3, 2)
            >>> torch.equal(view.log_prob(x), view.log_prob(x))   # eval mode: the same ε each call
            True
        """
        return self.model.flow.log_prob(self.model.training_batch(x, self._generator()))

    def log_prob_and_log_scales(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        r"""``(log p^T(x, ε), log_scales)`` from one autograd pass, for ``fit``'s ``loss_terms``.

        Example:
            >>> view = JointTrainingView(marginal_flow(2, 1, n_blocks=1, hidden=(8,)))
            >>> log_p, log_scales = view.log_prob_and_log_scales(torch.randn(4, 2))
            >>> log_p.shape, [s.shape for s in log_scales]
            (torch.Size([4]), [torch.Size([4, 2]), torch.Size([4, 2])])
        """
        return self.model.flow.log_prob_and_log_scales(
            self.model.training_batch(x, self._generator())
        )
