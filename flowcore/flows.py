r"""RealNVP with affine coupling layers (thesis §2.1, Eq. 3–6).

Convention (as in nflows): a transform maps data to latent, :math:`z = f_\theta(x)`, and returns
``(z, log_det)`` with ``log_det`` :math:`= \log|\det \partial z/\partial x|` per sample, so that

.. math:: \log p_\theta(x) = \log p_Z(f_\theta(x)) + \log\left|\det\frac{\partial f_\theta}{\partial x}\right|,
    \qquad p_Z = \mathcal{N}(0, I).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flowcore.validation import check_int, check_int_list, check_positive

__all__ = ["AffineCoupling", "Permutation", "RealNVP", "onednn_linear_available", "resolve_device"]

LOG_2PI = math.log(2 * math.pi)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a device.

    Raises:
        ValueError: For any other name, or a CUDA device that this machine does not have.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or not (device in ("cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ValueError(f"device must be one of 'auto', 'cpu', 'cuda', 'cuda:N'; got {device!r}")
    if device.startswith("cuda"):
        index = int(device[5:]) if ":" in device else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} was requested but this machine has no such CUDA device; use 'auto' or 'cpu'")
    return torch.device(device)


_ONEDNN_LINEAR: bool | None = None


def onednn_linear_available() -> bool:
    """Whether oneDNN's fused linear (``torch.ops.mkldnn._linear_pointwise``) runs in this build.

    Probed once with a tiny product checked against ``addmm``. Why it matters: PyTorch's CPU
    ``addmm`` calls MKL's SGEMM, which on AMD processors takes its AVX2 kernels even where the CPU
    has AVX-512, while oneDNN picks its kernels from the CPU's features. On the 2-core AMD EPYC
    (Zen 5) this book is developed on, oneDNN ran float32 products at about 2x MKL's rate
    (``bench/bench_logp.py`` measures both).
    """
    global _ONEDNN_LINEAR
    if _ONEDNN_LINEAR is None:
        try:
            g = torch.Generator().manual_seed(0)
            x, w, b = (torch.randn(*shape, generator=g) for shape in ((3, 5), (4, 5), (4,)))
            with torch.inference_mode():
                got = torch.ops.mkldnn._linear_pointwise(x, w, b, "relu", [], "")
            _ONEDNN_LINEAR = bool(torch.backends.mkldnn.is_available()) and torch.allclose(got, torch.addmm(b, x, w.t()).clamp_min(0), atol=1e-5)
        except (AttributeError, RuntimeError, NotImplementedError):
            _ONEDNN_LINEAR = False
    return _ONEDNN_LINEAR


def _is_functorch_wrapped(x: Tensor) -> bool:
    check = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)
    return bool(check(x)) if check is not None else False


class AffineCoupling(nn.Module):
    r"""One affine coupling layer, Eq. 3 and 4 of the thesis.

    With :math:`d = \lfloor D/2 \rfloor`, the layer copies one part of the input and scales and
    shifts the other, conditioned on the copied part:

    .. math:: y_A = x_A, \qquad y_B = x_B \odot \exp(s_\theta(x_A)) + t_\theta(x_A),

    where ``parity = 0`` copies :math:`A = 1{:}d` and transforms :math:`B = d{+}1{:}D`, and
    ``parity = 1`` swaps the roles. The Jacobian is triangular, so
    :math:`\log|\det \partial y/\partial x| = \sum_j s_\theta(x_A)_j` (Eq. 6).

    One MLP (the *st-network*) outputs :math:`s` and :math:`t` together. Its last layer starts at
    zero, so the layer starts as the identity. The log-scale is soft-bounded,
    :math:`s = b\tanh(\hat s / b)`: a single layer scales by at most :math:`e^{\pm b}`, which keeps
    ``exp`` finite on far out-of-distribution inputs, and is the identity for :math:`|\hat s| \ll b`.

    Args:
        dim: The data dimension ``D ≥ 2``.
        parity: ``0`` or ``1``, which part is copied.
        hidden: Widths of the st-network's hidden layers (ReLU).
        log_scale_bound: The bound ``b > 0`` on :math:`|s|`.
    """

    def __init__(self, dim: int, parity: int, hidden: tuple[int, ...] = (128, 128), log_scale_bound: float = 3.0):
        super().__init__()
        self.dim = check_int("dim", dim, minimum=2)
        self.parity = check_int("parity", parity, minimum=0, maximum=1)
        self.log_scale_bound = check_positive("log_scale_bound", log_scale_bound)
        split = dim // 2
        self.n_copied = split if parity == 0 else dim - split
        self.n_transformed = dim - self.n_copied
        widths = [self.n_copied, *check_int_list("hidden", hidden, minimum=1)]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        last = nn.Linear(widths[-1], 2 * self.n_transformed)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.st_net = nn.Sequential(*layers, last)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.parity == 0:
            return x[..., : self.n_copied], x[..., self.n_copied :]
        return x[..., self.n_transformed :], x[..., : self.n_transformed]

    def _join(self, copied: Tensor, transformed: Tensor) -> Tensor:
        parts = (copied, transformed) if self.parity == 0 else (transformed, copied)
        return torch.cat(parts, dim=-1)

    def _scale_shift(self, copied: Tensor) -> tuple[Tensor, Tensor]:
        raw_s, t = self.st_net(copied).chunk(2, dim=-1)
        b = self.log_scale_bound
        return b * torch.tanh(raw_s / b), t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data → latent: ``(y, log|det ∂y/∂x|)``."""
        copied, transformed = self._split(x)
        s, t = self._scale_shift(copied)
        return self._join(copied, transformed * torch.exp(s) + t), s.sum(-1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Latent → data: ``(x, log|det ∂x/∂y|)``, Eq. 4."""
        copied, transformed = self._split(y)
        s, t = self._scale_shift(copied)
        return self._join(copied, (transformed - t) * torch.exp(-s)), -s.sum(-1)


class Permutation(nn.Module):
    """A fixed permutation of the coordinates; volume-preserving, ``log_det = 0``."""

    def __init__(self, perm: Tensor):
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long)
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[..., self.perm], x.new_zeros(x.shape[:-1])

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z[..., self.inv_perm], z.new_zeros(z.shape[:-1])


class RealNVP(nn.Module):
    r"""A plain RealNVP: ``n_couplings`` affine couplings with fixed permutations in between.

    Couplings alternate which half they transform, and a fixed random permutation (drawn from
    ``permutation_seed``, stored as a buffer) mixes the coordinates between consecutive
    couplings, so every coordinate is eventually conditioned on every other. The base is
    :math:`\mathcal{N}(0, I)`. At initialisation every coupling is the identity, so the flow is a
    fixed permutation and :math:`p_\theta = \mathcal{N}(0, I)` exactly.

    Args:
        dim: Data dimension ``D ≥ 2`` (odd ``D`` works: the halves are ``⌊D/2⌋`` and ``⌈D/2⌉``).
        n_couplings: Number of coupling layers ``≥ 1``.
        hidden: Hidden widths of each st-network.
        log_scale_bound: Bound ``b`` on each coupling's log-scale, see :class:`AffineCoupling`.
        permutation_seed: Seed of the fixed permutations.
    """

    def __init__(
        self,
        dim: int,
        n_couplings: int = 8,
        hidden: tuple[int, ...] = (128, 128),
        log_scale_bound: float = 3.0,
        permutation_seed: int = 0,
    ):
        super().__init__()
        self.dim = check_int("dim", dim, minimum=2)
        n_couplings = check_int("n_couplings", n_couplings, minimum=1)
        hidden = check_int_list("hidden", hidden, minimum=1)
        g = torch.Generator().manual_seed(check_int("permutation_seed", permutation_seed, minimum=0))
        layers: list[nn.Module] = []
        for i in range(n_couplings):
            if i > 0:
                layers.append(Permutation(torch.randperm(dim, generator=g)))
            layers.append(AffineCoupling(dim, parity=i % 2, hidden=hidden, log_scale_bound=log_scale_bound))
        self.layers = nn.ModuleList(layers)
        self.register_buffer("_log_2pi", torch.tensor(LOG_2PI))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Data → latent: ``(z, log|det ∂z/∂x|)``."""
        log_det = x.new_zeros(x.shape[:-1])
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z: Tensor) -> Tensor:
        """Latent → data, :math:`x = f_\\theta^{-1}(z)`."""
        for layer in reversed(self.layers):
            z, _ = layer.inverse(z)
        return z

    def base_log_prob(self, z: Tensor) -> Tensor:
        r""":math:`\log \mathcal{N}(z; 0, I) = -\tfrac12(D\log 2\pi + \|z\|^2)`."""
        return -0.5 * (self.dim * self._log_2pi + z.square().sum(-1))

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\log p_\theta(x) = \log p_Z(f_\theta(x)) + \log|\det \partial f_\theta/\partial x|` (Eq. 2), in nats.

        With gradients off (``torch.no_grad`` / ``torch.inference_mode``) this runs a fast path
        that evaluates the same formula in row blocks of :attr:`eval_block_rows`, mostly in place
        in preallocated buffers, with oneDNN's fused linear + ReLU for float32 on the CPU (see
        :func:`onednn_linear_available`); with gradients on (training) it is ``forward``
        followed by the base density, as always.
        """
        if not torch.is_grad_enabled():
            plan = self._eval_plan(x)
            if plan is not None:
                return self._log_prob_no_grad(x, plan)
        z, log_det = self(x)
        return self.base_log_prob(z) + log_det

    #: Rows per block of the no-grad :meth:`log_prob` path; ``None`` picks
    #: ``2**20 // widest hidden layer`` rows (4,096 for widths up to 256), clipped to [256, 4096]:
    #: a block's activations (up to 4 MB each) stay in the last-level cache while the matrix
    #: products stay large enough to run near the GEMM peak (``bench/bench_logp.py --block-rows``).
    eval_block_rows: int | None = None
    #: Whether the no-grad :meth:`log_prob` path may use oneDNN's fused linear for float32 on the
    #: CPU (:func:`onednn_linear_available`); ``False`` takes ``addmm`` (MKL) as the reference path does.
    eval_onednn: bool = True

    def _eval_plan(self, x: Tensor) -> list | None:
        """The flow as ``[(perm or None, coupling, [(weight, bias), ...]), ...]`` for the fast path.

        ``None`` (use the autograd path) unless every layer is a plain :class:`Permutation` or
        :class:`AffineCoupling` with a ``Linear``/``ReLU`` st-network, and ``x`` is a float tensor of
        the parameters' dtype and device with last dimension ``D``: then both paths compute the
        same thing, and errors are raised by the reference path.
        """
        param = self._log_2pi
        if not (isinstance(x, Tensor) and x.dtype == param.dtype and x.device == param.device and x.dim() >= 1 and x.shape[-1] == self.dim):
            return None
        if torch.compiler.is_compiling() or _is_functorch_wrapped(x):
            return None  # tracing (torch.compile) or vmap/grad transforms: the plain ops compose better
        plan, perm = [], None
        for layer in self.layers:
            if type(layer) is Permutation:
                if perm is not None:
                    return None
                perm = layer.perm
            elif type(layer) is AffineCoupling:
                mods = list(layer.st_net)
                linears = mods[0::2]
                if not (
                    len(mods) % 2 == 1
                    and all(type(m) is nn.Linear and m.bias is not None and m.weight.dtype == param.dtype for m in linears)
                    and all(type(m) is nn.ReLU for m in mods[1::2])
                ):
                    return None
                plan.append((perm, layer, [(m.weight, m.bias) for m in linears]))
                perm = None
            else:
                return None
        return plan if perm is None else None

    def _log_prob_no_grad(self, x: Tensor, plan: list) -> Tensor:
        """``log_prob`` without autograd: same operations as ``forward`` + ``base_log_prob``.

        Per block of rows: the state lives in one ``(n, D)`` buffer, each permutation is one
        ``index_select`` into a second buffer, each st-network layer is one fused linear (+ ReLU)
        call (:func:`onednn_linear_available`; otherwise ``addmm`` and an in-place ReLU into
        preallocated buffers), :math:`s` goes to a contiguous buffer, and the transformed half is
        updated in place. Every operation of a coupling's ``forward`` happens here in the same
        order, so results agree with the autograd path to rounding: oneDNN and MKL sum the matrix
        products in different orders, and either may round differently for a different number of
        rows (``tests/test_flows.py`` checks agreement).
        """
        batch_shape = x.shape[:-1]
        x = x.reshape(-1, self.dim)
        n_rows = x.shape[0]
        out = x.new_empty(n_rows)
        if n_rows == 0:
            return out.reshape(batch_shape)
        widths = sorted({w.shape[0] for _, _, linears in plan for w, _ in linears})
        rows = self.eval_block_rows or min(4096, max(256, 2**20 // max(widths + [self.dim])))
        rows = max(1, min(int(rows), n_rows))
        state = x.new_empty(rows, self.dim)
        spare = x.new_empty(rows, self.dim)
        scale = x.new_empty(rows, self.dim - self.dim // 2)
        log_det = x.new_empty(rows)
        fused = self.eval_onednn and x.device.type == "cpu" and x.dtype == torch.float32 and onednn_linear_available()
        # Without the fused linear: one activation buffer per st-network layer index (widths are
        # shared across couplings).
        n_lin = 0 if fused else max(len(linears) for _, _, linears in plan)
        acts = [{w: x.new_empty(rows, w) for w in widths} for _ in range(n_lin)]
        const = self.dim * self._log_2pi
        for start in range(0, n_rows, rows):
            n = min(rows, n_rows - start)
            cur, nxt = state[:n], spare[:n]
            cur.copy_(x[start : start + n])
            ld = log_det[:n].zero_()
            for perm, layer, linears in plan:
                if perm is not None:
                    torch.index_select(cur, 1, perm, out=nxt)
                    cur, nxt = nxt, cur
                if layer.parity == 0:
                    copied, transformed = cur[:, : layer.n_copied], cur[:, layer.n_copied :]
                else:
                    copied, transformed = cur[:, layer.n_transformed :], cur[:, : layer.n_transformed]
                h = copied
                for j, (w, b) in enumerate(linears):
                    relu = j < len(linears) - 1
                    if fused:
                        h = torch.ops.mkldnn._linear_pointwise(h, w, b, "relu" if relu else "none", [], "")
                        continue
                    o = acts[j][w.shape[0]][:n]
                    torch.addmm(b, h, w.t(), out=o)
                    h = o.clamp_min_(0) if relu else o
                bound = layer.log_scale_bound
                # s = b tanh(ŝ / b) into a contiguous buffer: in-place ops on the strided ŝ view run
                # slowly when D/2 is small.
                nt = layer.n_transformed
                s = torch.div(h[:, :nt], bound, out=scale[:n, :nt]).tanh_().mul_(bound)
                ld.add_(s.sum(-1))
                transformed.mul_(s.exp_()).add_(h[:, nt:])
            out[start : start + n] = ld.add_(cur.square().sum(-1).add_(const).mul_(-0.5))
        return out.reshape(batch_shape)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` samples: :math:`z \\sim \\mathcal{N}(0, I)`, :math:`x = f_\\theta^{-1}(z)` (§2.1.4)."""
        n = check_int("n", n, minimum=1)
        param = next(self.parameters())
        z = torch.randn(n, self.dim, generator=generator, dtype=param.dtype, device="cpu" if generator is not None else param.device)
        return self.inverse(z.to(param.device))
