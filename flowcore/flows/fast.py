r"""The no-grad fast path of :meth:`flowcore.flows.Flow.log_prob`.

Evaluating :math:`\log p_\theta(x) = \log p_Z(f_\theta(x)) + \log|\det \partial f_\theta/\partial x|`
for millions of points (Monte-Carlo estimates, whole test families) needs no autograd graph. This
module evaluates the same formula, with the same operations in the same order, in blocks of rows
and mostly in place in preallocated buffers, with oneDNN's fused linear + ReLU for float32 on the
CPU (:func:`onednn_linear_available`).

Transforms declare that it covers them with ``fast_steps()``, returning primitive steps this
module knows how to run:

* :class:`PermuteStep`: ``z = x[..., perm]``;
* :class:`AffineCouplingStep`: an affine coupling with any boolean mask, a Linear/ReLU
  st-network and one of the log-scale maps ``exp``, ``tanh`` or ``sigmoid``.

A flow whose base is not :class:`~flowcore.flows.StandardNormal`, or that holds a transform
without ``fast_steps()``, uses the autograd path instead and warns once per flow
(:class:`FastPathWarning`); :func:`unsupported_reason` says why beforehand. Inputs the fast path
should not take (another dtype or device than the flow's, where the autograd path raises the
error; tracing under ``torch.compile``; ``vmap``/``grad`` transforms) fall back quietly.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from flowcore.flows.distributions import StandardNormal

__all__ = [
    "AffineCouplingStep",
    "FastPathUnsupported",
    "FastPathWarning",
    "PermuteStep",
    "log_prob_no_grad",
    "onednn_linear_available",
    "unsupported_reason",
]


class FastPathUnsupported(Exception):
    """Raised by ``fast_steps()`` when the fast path cannot run a transform; the message says why.

    Example:
        >>> from flowcore.flows import Transform
        >>> try:
        ...     Transform().fast_steps()
        ... except FastPathUnsupported:
        ...     print("no fast path")
        no fast path
    """


class FastPathWarning(UserWarning):
    """A flow's no-grad ``log_prob`` falls back to the autograd path because of its layers.

    Example:
        >>> import warnings
        >>> warnings.simplefilter("error", FastPathWarning)  # e.g. to make a silent slow path fail a test
        >>> warnings.resetwarnings()
    """


@dataclass(frozen=True, eq=False)
class PermuteStep:
    """``z = x[..., perm]``."""

    perm: Tensor


@dataclass(frozen=True, eq=False)
class AffineCouplingStep:
    r""":math:`y_B = x_B \odot e^{s} + t` with :math:`(\hat s, t) = \mathrm{MLP}(x_A)` and :math:`s = \mathrm{map}(\hat s)`.

    Attributes:
        copied, transformed: The columns :math:`A` and :math:`B`: a ``slice`` when contiguous,
            else a long index tensor.
        n_transformed: :math:`|B|`; the MLP's output is :math:`(\hat s, t)`, each of that width.
        linears: ``(weight, bias)`` per Linear layer, ReLU between consecutive ones.
        log_scale: ``"exp"`` (:math:`s = \hat s`), ``"tanh"`` (:math:`s = b\tanh(\hat s/b)`) or
            ``"sigmoid"`` (:math:`s = \log(\sigma(\hat s + 2) + 10^{-3})`).
        bound: :math:`b`, used by ``"tanh"``.
    """

    copied: slice | Tensor
    transformed: slice | Tensor
    n_transformed: int
    linears: tuple[tuple[Tensor, Tensor], ...]
    log_scale: str
    bound: float


#: The log-scale maps an :class:`AffineCouplingStep` may name.
LOG_SCALE_MAPS = ("exp", "tanh", "sigmoid")

_ONEDNN_LINEAR: bool | None = None


def onednn_linear_available() -> bool:
    """Whether oneDNN's fused linear (``torch.ops.mkldnn._linear_pointwise``) runs in this build.

    Probed once with a tiny product checked against ``addmm``. Why it matters: PyTorch's CPU
    ``addmm`` calls MKL's SGEMM, which on AMD processors takes its AVX2 kernels even where the CPU
    has AVX-512, while oneDNN picks its kernels from the CPU's features. On the 2-core AMD EPYC
    (Zen 5) this book is developed on, oneDNN ran float32 products at about 2x MKL's rate
    (``bench/bench_logp.py`` measures both).

    Example:
        >>> isinstance(onednn_linear_available(), bool)
        True
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


def _steps(flow: nn.Module) -> list:
    """The flow's steps; raises :class:`FastPathUnsupported` naming the layer that has none."""
    base = getattr(flow, "base", None)
    if type(base) is not StandardNormal:
        raise FastPathUnsupported(f"the base distribution {type(base).__name__} is not StandardNormal")
    transform = flow.transform
    declare = getattr(transform, "fast_steps", None)
    if declare is None:
        raise FastPathUnsupported(f"{type(transform).__name__} does not declare a fast path (no fast_steps())")
    steps = declare()
    for step in steps:
        if not isinstance(step, (PermuteStep, AffineCouplingStep)):
            raise FastPathUnsupported(f"unknown fast-path step {type(step).__name__}")
        if isinstance(step, AffineCouplingStep) and step.log_scale not in LOG_SCALE_MAPS:
            raise FastPathUnsupported(f"unknown log-scale map {step.log_scale!r}")
    return steps


def unsupported_reason(flow: nn.Module) -> str | None:
    """Why ``flow``'s no-grad ``log_prob`` cannot take the fast path, or ``None`` if it can.

    Example:
        >>> from flowcore.flows import RealNVP
        >>> unsupported_reason(RealNVP(3, n_couplings=2, hidden=(4,))) is None
        True
    """
    try:
        _steps(flow)
    except FastPathUnsupported as e:
        return str(e)
    return None


def log_prob_no_grad(flow: nn.Module, x: Tensor) -> Tensor | None:
    """``flow.log_prob(x)`` on the fast path, or ``None`` where the autograd path must run.

    Warns (:class:`FastPathWarning`, once per flow) when ``None`` is due to the flow's layers,
    unless the flow says it has none by design (``flow.autograd_only = True``).
    """
    if not isinstance(x, Tensor) or torch.compiler.is_compiling() or _is_functorch_wrapped(x):
        return None  # tracing (torch.compile) or vmap/grad transforms: the plain ops compose better
    if getattr(flow, "autograd_only", False):
        return None  # a flow built without a fast path on purpose (Flow.autograd_only): no warning
    try:
        steps = _steps(flow)
    except FastPathUnsupported as e:
        if not getattr(flow, "_fast_path_warned", False):
            flow._fast_path_warned = True
            warnings.warn(f"{type(flow).__name__}.log_prob: no fast no-grad path ({e}); using the autograd path", FastPathWarning, stacklevel=3)
        return None
    ref = flow.base._log_2pi
    if not (x.dtype == ref.dtype and x.device == ref.device and x.dim() >= 1 and x.shape[-1] == flow.base.dim):
        return None  # the autograd path raises the error
    for step in steps:
        tensors = [t for wb in step.linears for t in wb] if isinstance(step, AffineCouplingStep) else []
        if any(t.dtype != ref.dtype or t.device != ref.device for t in tensors):
            return None
    return _log_prob(flow, x, steps)


def _log_prob(flow: nn.Module, x: Tensor, steps: list) -> Tensor:
    """The transform's forward + the base density, without autograd, in blocks of rows.

    Per block: the state lives in one ``(n, D)`` buffer; each permutation is one ``index_select``
    into a second buffer; each st-network layer is one fused linear (+ ReLU) call
    (:func:`onednn_linear_available`; otherwise ``addmm`` and an in-place ReLU into preallocated
    buffers); :math:`s` goes to a contiguous buffer and the transformed coordinates are updated in
    place (through ``index_select``/``index_copy_`` when the mask's coordinates are not
    contiguous). Every operation of a coupling's ``forward`` happens here in the same order, so
    results agree with the autograd path to rounding: oneDNN and MKL sum the matrix products in
    different orders, and either may round differently for a different number of rows.
    """
    dim = flow.base.dim
    batch_shape = x.shape[:-1]
    x = x.reshape(-1, dim)
    n_rows = x.shape[0]
    out = x.new_empty(n_rows)
    if n_rows == 0:
        return out.reshape(batch_shape)
    couplings = [step for step in steps if isinstance(step, AffineCouplingStep)]
    widths = sorted({w.shape[0] for step in couplings for w, _ in step.linears})
    # eval_block_rows None: 2**20 // widest layer rows, clipped to [256, 4096] (see Flow.eval_block_rows).
    rows = getattr(flow, "eval_block_rows", None) or min(4096, max(256, 2**20 // max(widths + [dim])))
    rows = max(1, min(int(rows), n_rows))
    state = x.new_empty(rows, dim)
    spare = x.new_empty(rows, dim)
    scale = x.new_empty(rows, max((step.n_transformed for step in couplings), default=0))
    log_det = x.new_empty(rows)
    fused = getattr(flow, "eval_onednn", True) and x.device.type == "cpu" and x.dtype == torch.float32 and onednn_linear_available()
    # Without the fused linear: one activation buffer per st-network layer index (widths are
    # shared across couplings).
    n_lin = 0 if fused else max((len(step.linears) for step in couplings), default=0)
    acts = [{w: x.new_empty(rows, w) for w in widths} for _ in range(n_lin)]
    const = dim * flow.base._log_2pi
    for start in range(0, n_rows, rows):
        n = min(rows, n_rows - start)
        cur, nxt = state[:n], spare[:n]
        cur.copy_(x[start : start + n])
        ld = log_det[:n].zero_()
        for step in steps:
            if isinstance(step, PermuteStep):
                torch.index_select(cur, 1, step.perm, out=nxt)
                cur, nxt = nxt, cur
                continue
            indexed = not isinstance(step.transformed, slice)
            if indexed:
                copied, transformed = cur.index_select(1, step.copied), cur.index_select(1, step.transformed)
            else:
                copied, transformed = cur[:, step.copied], cur[:, step.transformed]
            h = copied
            for j, (w, b) in enumerate(step.linears):
                relu = j < len(step.linears) - 1
                if fused:
                    h = torch.ops.mkldnn._linear_pointwise(h, w, b, "relu" if relu else "none", [], "")
                    continue
                o = acts[j][w.shape[0]][:n]
                torch.addmm(b, h, w.t(), out=o)
                h = o.clamp_min_(0) if relu else o
            # s into a contiguous buffer: in-place ops on the strided ŝ view run slowly when the
            # transformed part is narrow.
            nt = step.n_transformed
            if step.log_scale == "tanh":
                s = torch.div(h[:, :nt], step.bound, out=scale[:n, :nt]).tanh_().mul_(step.bound)
            elif step.log_scale == "sigmoid":
                s = torch.add(h[:, :nt], 2.0, out=scale[:n, :nt]).sigmoid_().add_(1e-3).log_()
            else:
                s = scale[:n, :nt].copy_(h[:, :nt])
            ld.add_(s.sum(-1))
            transformed.mul_(s.exp_()).add_(h[:, nt:])
            if indexed:
                cur.index_copy_(1, step.transformed, transformed)
        out[start : start + n] = ld.add_(cur.square().sum(-1).add_(const).mul_(-0.5))
    return out.reshape(batch_shape)
