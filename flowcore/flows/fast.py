r"""The no-grad fast path of :meth:`flowcore.flows.Flow.log_prob`.

Evaluating :math:`\log p_\theta(x) = \log p_Z(f_\theta(x)) +
\log|\det \partial f_\theta/\partial x|` for millions of points (Monte-Carlo estimates, whole test
families) needs no autograd graph. This module evaluates the same formula, with the same operations
in the same order, in blocks of rows and mostly in place in preallocated buffers, with oneDNN's
fused linear + ReLU for float32 on the CPU (:func:`onednn_linear_available`).

Transforms declare that it covers them with ``fast_steps()``, returning primitive steps this
module knows how to run:

* :class:`PermuteStep`: ``z = x[..., perm]``;
* :class:`~flowcore.flows.spec.CouplingSpec` with its st-network as
  :data:`~flowcore.flows.spec.Layers`: an affine coupling with any boolean mask, a Linear/ReLU
  st-network and a log-scale map of :data:`~flowcore.flows.spec.LOG_SCALE_MAPS`.

Both paths here are optimisations of the spec's reference evaluation
(:meth:`CouplingSpec.forward <flowcore.flows.spec.CouplingSpec.forward>`), with its arithmetic in
its order: the no-grad path in place, the training path (:class:`FusedAffineCoupling`) as one
autograd node. ``tests/unit/test_coupling_paths.py`` holds them equal.

A flow whose base is not :class:`~flowcore.flows.StandardNormal`, or that holds a transform
without ``fast_steps()``, uses the autograd path instead and warns once per flow
(:class:`FastPathWarning`); :func:`unsupported_reason` says why beforehand. Inputs the fast path
should not take (another dtype or device than the flow's, where the autograd path raises the
error; tracing under ``torch.compile``; ``vmap``/``grad`` transforms) fall back quietly.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from flowcore.flows.distributions import StandardNormal, standard_normal_log_prob
from flowcore.flows.spec import LOG_SCALE_MAPS, CouplingSpec

__all__ = [
    "FUSED_GEMMS",
    "FUSED_TRAINING",
    "FastPathUnsupported",
    "FastPathWarning",
    "FusedAffineCoupling",
    "FusedPermutation",
    "PermuteStep",
    "fused_gemms",
    "fused_training_applies",
    "log_prob_no_grad",
    "onednn_linear_available",
    "permute",
    "unsupported_reason",
]


class FastPathUnsupported(Exception):
    """Raised by ``fast_steps()`` when the fast path cannot run a transform; the message says why.

    Example:
        >>> from flowcore.flows import Transform
        >>> Transform().fast_steps()  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        flowcore.flows.fast.FastPathUnsupported: Transform does not declare a fast path
        (no fast_steps())
    """


class FastPathWarning(UserWarning):
    """A flow's no-grad ``log_prob`` falls back to the autograd path because of its layers.

    Example:
        >>> import warnings
        >>> from flowcore.flows import Flow, StandardNormal, Transform
        >>> class Shift(Transform):  # a layer without fast_steps()
        ...     def forward(self, x):
        ...         return x + 1.0, torch.zeros(x.shape[:-1])
        >>> flow = Flow(Shift(), StandardNormal(2))
        >>> with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        ...     warnings.simplefilter("always")
        ...     log_p = flow.log_prob(torch.zeros(1, 2))
        >>> [type(w.message).__name__ for w in caught], log_p
        (['FastPathWarning'], tensor([-2.8379]))
    """


@dataclass(frozen=True, eq=False)
class PermuteStep:
    """``z = x[..., perm]``."""

    perm: Tensor


_ONEDNN_LINEAR: bool | None = None


def onednn_linear_available() -> bool:
    """Whether oneDNN's fused linear (``torch.ops.mkldnn._linear_pointwise``) runs in this build.

    Probed once with a tiny product checked against ``addmm``. Why it matters: PyTorch's CPU
    ``addmm`` calls MKL's SGEMM, which on AMD processors takes its AVX2 kernels even where the CPU
    has AVX-512, while oneDNN picks its kernels from the CPU's features. On the 2-core AMD EPYC
    (Zen 5) this book is developed on, oneDNN ran float32 products at about 2x MKL's rate
    (``bench/bench_logp.py`` measures both).

    Example:
        >>> a, b = torch.randn(8, 4), torch.randn(3, 4)
        >>> onednn_linear_available() is (onednn_linear_available() and torch.allclose(
        ...     torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], ""), a @ b.T, atol=1e-5))
        True
    """
    global _ONEDNN_LINEAR
    if _ONEDNN_LINEAR is None:
        try:
            g = torch.Generator().manual_seed(0)
            x, w, b = (torch.randn(*shape, generator=g) for shape in ((3, 5), (4, 5), (4,)))
            with torch.inference_mode():
                got = torch.ops.mkldnn._linear_pointwise(x, w, b, "relu", [], "")
            _ONEDNN_LINEAR = bool(torch.backends.mkldnn.is_available()) and torch.allclose(
                got, torch.addmm(b, x, w.t()).clamp_min(0), atol=1e-5
            )
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
        raise FastPathUnsupported(
            f"the base distribution {type(base).__name__} is not StandardNormal"
        )
    transform = flow.transform
    declare = getattr(transform, "fast_steps", None)
    if declare is None:
        raise FastPathUnsupported(
            f"{type(transform).__name__} does not declare a fast path (no fast_steps())"
        )
    steps = declare()
    for step in steps:
        if not isinstance(step, (PermuteStep, CouplingSpec)):
            raise FastPathUnsupported(f"unknown fast-path step {type(step).__name__}")
        if isinstance(step, CouplingSpec) and step.log_scale not in LOG_SCALE_MAPS:
            raise FastPathUnsupported(f"unknown log-scale map {step.log_scale!r}")
        if isinstance(step, CouplingSpec) and not isinstance(step.net, tuple):
            raise FastPathUnsupported(
                "a coupling step's st-network is not given as its Linear layers"
            )
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
            warnings.warn(
                f"{type(flow).__name__}.log_prob: no fast no-grad path ({e}); "
                "using the autograd path",
                FastPathWarning,
                stacklevel=3,
            )
        return None
    ref = flow.base.log_2pi
    if not (
        x.dtype == ref.dtype
        and x.device == ref.device
        and x.dim() >= 1
        and x.shape[-1] == flow.base.dim
    ):
        return None  # the autograd path raises the error
    for step in steps:
        tensors = [t for wb in step.net for t in wb] if isinstance(step, CouplingSpec) else []
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
    couplings = [step for step in steps if isinstance(step, CouplingSpec)]
    widths = sorted({w.shape[0] for step in couplings for w, _ in step.net})
    # eval_block_rows None: 2**20 // widest layer rows, clipped to [256, 4096] (see
    # Flow.eval_block_rows).
    rows = getattr(flow, "eval_block_rows", None) or min(
        4096, max(256, 2**20 // max(widths + [dim]))
    )
    rows = max(1, min(int(rows), n_rows))
    state = x.new_empty(rows, dim)
    spare = x.new_empty(rows, dim)
    scale = x.new_empty(rows, max((step.n_transformed for step in couplings), default=0))
    log_det = x.new_empty(rows)
    fused = (
        getattr(flow, "eval_onednn", True)
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and onednn_linear_available()
    )
    # Without the fused linear: one activation buffer per st-network layer index (widths are
    # shared across couplings).
    n_lin = 0 if fused else max((len(step.net) for step in couplings), default=0)
    acts = [{w: x.new_empty(rows, w) for w in widths} for _ in range(n_lin)]
    log_2pi = flow.base.log_2pi
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
            # With slices, `transformed` is a view of `cur`, updated in place below (the join).
            copied, transformed = step.split(cur)
            indexed = not isinstance(step.transformed, slice)
            h = copied
            for j, (w, b) in enumerate(step.net):
                relu = j < len(step.net) - 1
                if fused:
                    h = torch.ops.mkldnn._linear_pointwise(
                        h, w, b, "relu" if relu else "none", [], ""
                    )
                    continue
                o = acts[j][w.shape[0]][:n]
                torch.addmm(b, h, w.t(), out=o)
                h = o.clamp_min_(0) if relu else o
            # s into a contiguous buffer: in-place ops on the strided ŝ view run slowly when the
            # transformed part is narrow.
            nt = step.n_transformed
            s = step.log_scale_map.map_into(h[:, :nt], step.bound, scale[:n, :nt])
            ld.add_(s.sum(-1))
            transformed.mul_(s.exp_()).add_(h[:, nt:])
            if indexed:
                cur.index_copy_(1, step.transformed, transformed)
        out[start : start + n] = ld.add_(standard_normal_log_prob(cur, log_2pi))
    return out.reshape(batch_shape)


# --- The training path (gradients on) ------------------------------------------------------------
#
# With gradients on, an AffineCoupling on the CPU in float32 runs as one autograd node
# (FusedAffineCoupling) with a hand-written backward, and a Permutation as one index_select whose
# backward is an index_select (FusedPermutation). At the book's sizes (batch 512, widths 64) the
# per-op overhead of autograd rivals the arithmetic, so fewer nodes and ops per step are what
# counts. Where the matrix products run is FUSED_GEMMS: "mm" (the default) makes the same
# addmm/mm calls as autograd does on the reference ops, in the same order and grouping, so
# training is bit for bit what it was without the fused path; "onednn" and "onednn-forward" take
# oneDNN's linear instead (see FusedAffineCoupling).

#: Global switch of the fused training path: ``False`` makes every
#: :class:`~flowcore.flows.AffineCoupling` and :class:`~flowcore.flows.Permutation` take its
#: reference autograd ops (one coupling can be switched off alone with its ``fused_training``
#: attribute).
FUSED_TRAINING: bool = True

#: Where the fused training path runs its matrix products: ``"mm"`` (``addmm``/``mm``, the calls
#: autograd makes for the reference ops: bitwise the same training), ``"onednn"`` (forward and
#: backward through oneDNN's linear) or ``"onednn-forward"`` (forward through oneDNN, backward
#: ``mm``). oneDNN reaches AVX-512 kernels on AMD processors where ``addmm`` (MKL's SGEMM) takes
#: AVX2 ones, but costs more per call and rounds differently (float32 results differ in the last
#: bits). On a 16-core Intel Xeon VM (AVX-512, 2 threads) ``"mm"`` was fastest at batch 512 and
#: widths 64: ``bench/bench_train.py --gemm-variants`` times the three on your machine.
FUSED_GEMMS: str = "mm"
GEMM_CHOICES = ("mm", "onednn", "onednn-forward")


def fused_training_applies(x: Tensor, tensors=()) -> bool:
    """Whether the fused training path runs for input ``x`` and parameters ``tensors``.

    It runs with gradients on and :data:`FUSED_TRAINING` set, for 2-D float32 inputs (3-D:
    stacked flows) and parameters on the CPU, outside ``torch.compile`` tracing and ``torch.func``
    transforms (where the plain ops compose better).

    Example:
        >>> fused_training_applies(  # float64: the reference ops
        ...     torch.zeros(2, 3, dtype=torch.float64)
        ... )
        False
    """
    if not (FUSED_TRAINING and torch.is_grad_enabled() and isinstance(x, Tensor)):
        return False
    if x.dim() not in (2, 3) or x.dtype != torch.float32 or x.device.type != "cpu":
        return False
    if any(t.dtype != torch.float32 or t.device.type != "cpu" for t in tensors):
        return False
    return not (
        torch.compiler.is_compiling()
        or _is_functorch_wrapped(x)
        or any(_is_functorch_wrapped(t) for t in tensors)
    )


def fused_gemms() -> str:
    """The :data:`FUSED_GEMMS` setting in effect: ``"mm"`` where it names no choice or oneDNN's
    linear is unavailable.

    Example:
        >>> fused_gemms() in GEMM_CHOICES
        True
    """
    if FUSED_GEMMS not in GEMM_CHOICES or (FUSED_GEMMS != "mm" and not onednn_linear_available()):
        return "mm"
    return FUSED_GEMMS


def _linear(h: Tensor, w: Tensor, b: Tensor | None, relu: bool, onednn: bool) -> Tensor:
    """``h @ w.T + b`` (then ReLU): one oneDNN call with the ReLU fused, or ``addmm`` + ReLU; for
    stacked ``(K, out, in)`` weights, ``baddbmm`` + ReLU (the reference's stacked call)."""
    if w.dim() == 3:
        out = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        return out.clamp_min_(0) if relu else out
    if onednn:
        return torch.ops.mkldnn._linear_pointwise(h, w, b, "relu" if relu else "none", [], "")
    out = torch.addmm(b, h, w.t()) if b is not None else h.mm(w.t())
    return out.clamp_min_(0) if relu else out


def _dense_t(m: Tensor) -> Tensor:
    """``m.T`` as the transpose of a contiguous tensor: oneDNN takes that as a plain (column-major)
    matrix, but falls back to a slow reference kernel for other strides (a column slice's)."""
    return (m if m.is_contiguous() else m.contiguous()).t()


def _input_grad(g: Tensor, w: Tensor, onednn: bool) -> Tensor:
    """``g @ w`` (the gradient reaching a linear layer's input) as a linear with weight ``w.T``;
    ``bmm`` for stacked weights."""
    if w.dim() == 3:
        return g.bmm(w)
    if onednn:
        return torch.ops.mkldnn._linear_pointwise(g, _dense_t(w), None, "none", [], "")
    return g.mm(w)


def _weight_grad(g: Tensor, h: Tensor, onednn: bool) -> Tensor:
    """``g.T @ h`` (a linear layer's weight gradient): a linear of ``g.T`` with weight ``h.T``, or
    ``g.T.mm(h)`` as autograd computes it for ``F.linear`` (the same product, the same rounding);
    stacked (3-D ``g``, ``h``), ``(h^T @ g)^T`` per flow, as autograd computes it for ``baddbmm``
    with a transposed weight."""
    if g.dim() == 3:
        return h.transpose(1, 2).bmm(g).transpose(1, 2)
    if onednn:
        return torch.ops.mkldnn._linear_pointwise(_dense_t(g), _dense_t(h), None, "none", [], "")
    return g.t().mm(h)


class FusedAffineCoupling(torch.autograd.Function):
    r"""One affine coupling (st-network, log-scale map, :math:`y_B = x_B e^s + t`,
    :math:`\sum_j s_j`) as a single autograd node with a hand-written backward.

    ``FusedAffineCoupling.apply(x, spec, want_s, gemms, w_1, b_1, ..., w_L, b_L)`` with ``x`` of
    shape ``(n, D)``, ``spec`` a :class:`~flowcore.flows.spec.CouplingSpec` whose st-network is
    given as those layers, returns ``(y, log_det)``, plus ``s`` when ``want_s``: the values of
    :meth:`spec.forward(x) <flowcore.flows.spec.CouplingSpec.forward>`. *Stacked*, ``x`` is
    ``(K, n, D)`` and each weight ``(K, out, in)``, each bias ``(K, out)``: K flows of
    :func:`flowcore.train_many.fit_many` at once, with ``baddbmm`` forward and ``bmm`` backward
    (the calls autograd makes for the spec's stacked reference ops; ``gemms`` must be ``"mm"``).
    What is fused: the st-network, the log-scale map, the affine update and the log-det are one
    node instead of the ~15 that the reference ops record (at the book's sizes, batch 512 and
    widths 64, autograd's per-node and per-op overhead costs about as much as the arithmetic), and
    the backward is the chain rule written out, through the map's
    :attr:`~flowcore.flows.spec.LogScaleMap.vjp`.

    ``gemms`` (:data:`FUSED_GEMMS`) says where the matrix products run. ``"mm"``: ``addmm`` forward,
    ``mm`` backward, the calls autograd makes for ``F.linear``, with every elementwise product and
    sum in autograd's order, so values and gradients are the reference path's bit for bit (this
    is also what ``gradcheck`` tests in float64). ``"onednn"``: every product is one call of
    oneDNN's linear (``torch.ops.mkldnn._linear_pointwise``, which has no autograd formula of its
    own; ``g @ W`` is a linear with weight ``W.T``, ``g.T @ h`` one of ``g.T`` with weight ``h.T``),
    the ReLU fused into the forward ones, because on AMD processors ``addmm`` runs MKL's AVX2
    SGEMM kernels even where the CPU has AVX-512, while oneDNN picks AVX-512 ones.
    ``"onednn-forward"``: oneDNN forward, ``mm`` backward. oneDNN results agree with the
    reference to float32 rounding.

    Under ``create_graph=True`` (a double backward) the backward re-evaluates the reference
    definition, :meth:`CouplingSpec.forward <flowcore.flows.spec.CouplingSpec.forward>`, and
    differentiates it, so higher derivatives are those of the reference path.

    Example:
        >>> from flowcore.flows import AffineCoupling, halves
        >>> layer = AffineCoupling(halves(4, 0), hidden=(8,), zero_init=False).double()
        >>> spec = layer.fast_steps()[0]  # st-network as its layers
        >>> x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
        >>> y, log_det = FusedAffineCoupling.apply(  # no oneDNN in float64
        ...     x, spec, False, "mm", *layer.st_net.parameters()
        ... )
        >>> y_ref, log_det_ref = layer(x)  # the reference ops (float64)
        >>> torch.equal(y, y_ref), torch.equal(log_det, log_det_ref)
        (True, True)
    """

    @staticmethod
    def forward(ctx, x, spec, want_s, gemms, *params):
        onednn = gemms != "mm"
        nt = spec.n_transformed
        a, xb = spec.split(x)
        if onednn:
            a = a.contiguous()  # a column slice: oneDNN runs strided operands slowly (see _dense_t)
        n_lin = len(params) // 2
        hs = [a]  # each linear layer's input
        h = a
        for j in range(n_lin):
            h = _linear(h, params[2 * j], params[2 * j + 1], j < n_lin - 1, onednn)
            if j < n_lin - 1:
                hs.append(h)
        raw, t = h[..., :nt], h[..., nt:]
        s, aux = spec.log_scale_map.map(raw, spec.bound)
        s = (
            s.contiguous()
        )  # "exp" gives ŝ itself, a column slice of h; the others a new tensor (no copy)
        e = torch.exp(s)
        y = spec.join(a, xb * e + t)
        ctx.save_for_backward(x, *params)
        ctx.spec, ctx.gemms, ctx.hs, ctx.xb, ctx.e, ctx.aux = spec, gemms, hs, xb, e, aux
        ctx.set_materialize_grads(False)
        return (y, s.sum(-1), s) if want_s else (y, s.sum(-1))

    @staticmethod
    def backward(ctx, g_y, g_ld, *g_s):
        x, *params = ctx.saved_tensors
        if torch.is_grad_enabled():
            return FusedAffineCoupling._double_backward(ctx, x, params, (g_y, g_ld, *g_s))
        spec = ctx.spec
        nt = spec.n_transformed
        onednn = ctx.gemms == "onednn"
        hs, xb, e = ctx.hs, ctx.xb, ctx.e
        rows = e.shape[:-1]  # (n,), or (K, n) when stacked
        g_s = g_s[0] if g_s else None
        # dL/ds = dL/dy_B * x_B * e^s + dL/dlog_det (+ dL/ds from the caller of log_scales). Each
        # product and sum in the order and grouping autograd uses on the reference ops, so that with
        # gemms="mm" the gradients are theirs bit for bit.
        if g_y is not None:
            g_a, g_yb = spec.split(g_y)
            grad_xb = g_yb * e
            grad_s = (g_yb * xb) * e
            if g_ld is not None:
                grad_s += g_ld.unsqueeze(-1)
        else:
            g_a = g_yb = None
            grad_xb = e.new_zeros(*rows, nt)
            grad_s = (
                e.new_zeros(*rows, nt)
                if g_ld is None
                else g_ld.unsqueeze(-1).expand(*rows, nt).clone()
            )
        if g_s is not None:
            grad_s += g_s
        grad_raw = spec.log_scale_map.vjp(grad_s, ctx.aux, spec.bound)  # through the map to ŝ
        g = torch.cat(
            (grad_raw, g_yb if g_yb is not None else grad_raw.new_zeros(*rows, nt)), dim=-1
        )
        # back through the st-network; inputs 0-3 are x, spec, want_s, gemms
        needs = ctx.needs_input_grad
        grads: list[Tensor | None] = [None] * len(params)
        n_lin = len(params) // 2
        g_in = None
        for j in reversed(range(n_lin)):
            if needs[4 + 2 * j]:
                grads[2 * j] = _weight_grad(g, hs[j], onednn)
            if needs[5 + 2 * j]:
                grads[2 * j + 1] = g.sum(-2)  # over the rows (of each flow, when stacked)
            if j > 0:
                g = torch.ops.aten.threshold_backward(
                    _input_grad(g, params[2 * j], onednn), hs[j], 0
                )
            elif needs[0]:
                g_in = _input_grad(g, params[0], onednn)
        grad_x = None
        if needs[0]:
            grad_a = g_in if g_a is None else g_in.add_(g_a)
            grad_x = spec.join(grad_a, grad_xb)
        return (grad_x, None, None, None, *grads)

    @staticmethod
    def _double_backward(ctx, x, params, grad_outputs):
        """The backward as differentiable ops (``create_graph=True``): the reference definition,
        re-evaluated and differentiated."""
        inputs = [t for t in (x, *params) if t.requires_grad]
        with torch.enable_grad():
            outputs = replace(ctx.spec, net=tuple(zip(params[0::2], params[1::2]))).forward(
                x
            )  # (y, log_det, s)
            pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if g is not None]
            grads = (
                torch.autograd.grad(
                    [o for o, _ in pairs],
                    inputs,
                    [g for _, g in pairs],
                    create_graph=True,
                    allow_unused=True,
                )
                if pairs
                else [None] * len(inputs)
            )
        found = dict(zip(map(id, inputs), grads))
        return (found.get(id(x)), None, None, None, *(found.get(id(p)) for p in params))


class FusedPermutation(torch.autograd.Function):
    """``x[:, perm]`` as one ``index_select`` whose backward is ``index_select`` with the inverse
    permutation (plain indexing's backward scatters into zeros with accumulation, serially on the
    CPU).

    ``FusedPermutation.apply(x, perm, inv_perm)``; exact in every dtype, and twice differentiable.
    With a ``(K, D)`` ``perm`` (K stacked flows, each its own permutation) and ``x`` of shape
    ``(K, n, D)``, ``z[k] = x[k][:, perm[k]]`` is one ``gather``, and so is its backward.

    Example:
        >>> x = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
        >>> z = FusedPermutation.apply(x, torch.tensor([2, 0, 1]), torch.tensor([1, 2, 0]))
        >>> (z * torch.tensor([10.0, 20.0, 30.0])).sum().backward()
        >>> z.detach(), x.grad
        (tensor([[3., 1., 2.]]), tensor([[20., 30., 10.]]))
    """

    @staticmethod
    def forward(ctx, x, perm, inv_perm):
        ctx.perms = (perm, inv_perm)
        return permute(x, perm)

    @staticmethod
    def backward(ctx, g):
        perm, inv_perm = ctx.perms
        if torch.is_grad_enabled():
            return FusedPermutation.apply(g, inv_perm, perm), None, None
        return permute(g, inv_perm), None, None


def permute(x: Tensor, perm: Tensor) -> Tensor:
    """``x[..., perm]`` (one ``index_select``), or per stacked flow ``x[k][..., perm[k]]`` for a
    ``(K, D)`` ``perm`` and ``(K, n, D)`` ``x`` (one ``gather``).

    Example:
        >>> permute(torch.tensor([[[1, 2], [3, 4]]]), torch.tensor([[1, 0]])).tolist()
        [[[2, 1], [4, 3]]]
    """
    if perm.dim() == 1:
        return x.index_select(-1, perm)
    return x.gather(-1, perm[:, None, :].expand(x.shape))
