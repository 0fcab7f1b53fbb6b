"""Log-likelihood throughput of a reference RealNVP: flowcore against other flow libraries, one run.

    .venv/bin/python bench/bench_logp.py [--device auto] [--n 131072] [--repeats 5] [--quick]

Reference model: RealNVP, D = 100, 8 affine couplings with a fixed permutation between
consecutive couplings, each st-network an MLP D/2 -> 256 -> 256 -> (s, t) with ReLU, float32.
Rows (each timed under ``torch.inference_mode``):

* ``flowcore``: ``RealNVP(100, n_couplings=8, hidden=(256, 256)).log_prob``, the library's
  no-grad path (blocks of 4,096 rows, oneDNN's fused linear + ReLU on the CPU);
  ``flowcore, no-grad path with addmm``: the same path with ``eval_onednn = False`` (MKL's
  SGEMM, as ``torch.mm`` uses); ``flowcore, reference path``: the same flow through
  ``flow.transform`` + ``flow.base.log_prob`` (the autograd path ``log_prob`` takes while training).
* ``flowcore + torch.compile``: that reference path compiled by ``torch.compile`` (failure is
  reported, not fatal).
* ``normflows``, ``nflows``, ``zuko``, ``FrEIA``: the closest architecture each library's API
  builds (see ``build_*`` below for where each differs); skipped with a note when not importable.
  They are pinned in ``requirements.txt``.

Each model is timed on ``--n`` samples split into chunks of 4,096 and of 65,536 rows, and on one
whole 65,536-row batch. All models are built first and then timed in interleaved rounds (every
row once per round; ``--warmup`` untimed rounds, then the median of ``--repeats`` rounds), so load
from other processes hits all rows alike. GFLOP/s counts 2 x the multiply-accumulates of every
linear layer in the model per sample (each library's real layer shapes); "% of fp32 GEMM peak"
divides by the best rate of a 4096 x 4096 x 4096 float32 product measured in this same run (before
the first round and after every round) with ``torch.mm`` and, on the CPU, with oneDNN's linear,
which on AMD processors reaches AVX-512 kernels that MKL's SGEMM (behind ``torch.mm``) does not;
the GEMMs at the model's own shapes are printed too.
Run it on a quiet machine: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from flowcore import RealNVP, resolve_device
from flowcore.flows import onednn_linear_available

DIM = 100
COUPLINGS = 8
HIDDEN = (256, 256)
LOG_2PI = math.log(2 * math.pi)
BAR_SAMPLES_PER_S = 140_000
BAR_RATIO = 1.2


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def wall_time(fn: Callable[[], object], device: torch.device) -> float:
    """Wall time of one call of ``fn``, synchronising CUDA."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def gemm_rate(
    m: int, k: int, n: int, device: torch.device, tries: int, backend: str = "mm"
) -> float:
    """Best GFLOP/s of an (m x k) by (k x n) float32 product.

    ``backend="mm"``: ``torch.mm`` into a reused output (on the CPU, MKL's SGEMM);
    ``backend="onednn"``: oneDNN's ``torch.ops.mkldnn._linear_pointwise`` (CPU only), which on AMD
    processors reaches AVX-512 kernels that MKL does not use.
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=gen).to(device)
    b = torch.randn(k, n, generator=gen).to(device)
    out = torch.empty(m, n, device=device)
    if backend == "onednn":
        weight = b.t().contiguous()

        def product():
            torch.ops.mkldnn._linear_pointwise(a, weight, None, "none", [], "")
    else:

        def product():
            torch.mm(a, b, out=out)

    reps = max(1, int(2e9 // (2 * m * k * n)))  # about 2 GFLOP per timed call
    best = float("inf")
    for i in range(tries + 1):
        sync(device)
        start = time.perf_counter()
        for _ in range(reps):
            product()
        sync(device)
        if i:  # the first call is a warm-up
            best = min(best, (time.perf_counter() - start) / reps)
    return 2 * m * k * n / best / 1e9


def gemm_backends(device: torch.device) -> list[str]:
    """The float32 GEMMs to measure the peak with: ``torch.mm``, plus oneDNN on a CPU that has
    it."""
    return ["mm", "onednn"] if device.type == "cpu" and onednn_linear_available() else ["mm"]


def linear_macs(model: nn.Module) -> int:
    """Multiply-accumulates per sample of every linear layer in ``model``.

    A linear layer is any module with ``in_features``, ``out_features`` and a ``weight`` tensor:
    ``nn.Linear`` and look-alikes such as ``zuko.nn.Linear``.
    """
    return sum(
        m.in_features * m.out_features
        for m in model.modules()
        if hasattr(m, "in_features")
        and hasattr(m, "out_features")
        and isinstance(getattr(m, "weight", None), torch.Tensor)
    )


def randomize_(model: nn.Module, seed: int) -> nn.Module:
    """Small random weights everywhere (also in zero-initialised last layers), so no coupling is
    the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point():
                p.copy_(torch.randn(p.shape, generator=gen) * (0.5 / math.sqrt(p.shape[-1])))
    return model


def base_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z.shape[-1] * LOG_2PI + z.square().sum(-1))


# --- models --------------------------------------------------------------------------------------
# Each builder returns (module, log_prob) for the reference architecture, or raises ImportError.
# ``dim``, ``hidden`` and ``couplings`` default to this script's model; bench_train.py builds the
# book's (hidden (64, 64), D = 20 and 100) with the same functions.


def build_flowcore(dim=DIM, hidden=HIDDEN, couplings=COUPLINGS):
    flow = RealNVP(dim, n_couplings=couplings, hidden=tuple(hidden))
    return flow, flow.log_prob


def build_flowcore_mkl(dim=DIM, hidden=HIDDEN, couplings=COUPLINGS):
    flow = RealNVP(dim, n_couplings=couplings, hidden=tuple(hidden))
    flow.eval_onednn = False  # the no-grad path with addmm (MKL SGEMM) instead of oneDNN's linear
    return flow, flow.log_prob


def build_flowcore_reference(dim=DIM, hidden=HIDDEN, couplings=COUPLINGS):
    flow = RealNVP(dim, n_couplings=couplings, hidden=tuple(hidden))

    def log_prob(x):  # what ``log_prob`` computes with gradients on: forward + base density
        z, log_det = flow.transform(x)
        return flow.base.log_prob(z) + log_det

    return flow, log_prob


def build_normflows(dim=DIM, hidden=HIDDEN, couplings=COUPLINGS):
    # Same layer shapes (st-net 50 -> 256 -> 256 -> 100, fused (shift, scale) head, ReLU as
    # LeakyReLU(0)), random permutations between couplings. Differs: the log-scale is unbounded
    # (``scale_map="exp"``), shift/scale are interleaved output columns, and log p runs the
    # inverse of each coupling (normflows stores flows in the sampling direction).
    import normflows as nf

    torch.manual_seed(0)
    flows = []
    for i in range(couplings):
        if i > 0:
            flows.append(nf.flows.Permute(dim, mode="shuffle"))
        # normflows splits off the first ceil(D/2) coordinates to condition on; its MLP maps them to
        # 2 x floor(D/2) outputs (the same shapes as flowcore's for even D).
        flows.append(
            nf.flows.AffineCouplingBlock(
                nf.nets.MLP([(dim + 1) // 2, *hidden, 2 * (dim // 2)]), scale_map="exp"
            )
        )
    model = nf.NormalizingFlow(q0=nf.distributions.DiagGaussian(dim, trainable=False), flows=flows)
    return model, model.log_prob


def build_nflows(dim=DIM, hidden=HIDDEN, couplings=COUPLINGS):
    # Same layer shapes (nflows.nn.nets.MLP 50 -> 256 -> 256 -> 100, ReLU), halves alternate via
    # the mask, RandomPermutation between couplings. Differs: the scale is
    # sigmoid(u + 2) + 1e-3 (nflows' AffineCouplingTransform) instead of exp(b tanh(u / b)).
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.nn.nets import MLP
    from nflows.transforms import AffineCouplingTransform, CompositeTransform, RandomPermutation

    class Net(MLP):  # nflows calls transform_net(inputs, context); its MLP takes no context
        def forward(self, inputs, context=None):
            return super().forward(inputs)

    torch.manual_seed(0)
    transforms = []
    for i in range(couplings):
        if i > 0:
            transforms.append(RandomPermutation(dim))
        mask = (torch.arange(dim) >= dim // 2) if i % 2 == 0 else (torch.arange(dim) < dim // 2)
        transforms.append(
            AffineCouplingTransform(
                mask.int(), lambda n_in, n_out: Net([n_in], [n_out], list(hidden))
            )
        )
    model = Flow(CompositeTransform(transforms), StandardNormal([dim]))
    return model, model.log_prob


def build_zuko(dim=DIM, hidden=HIDDEN, couplings=COUPLINGS):
    # zuko.flows.RealNVP with 8 affine couplings, hyper-network 50 -> 256 -> 256 -> 100 (ReLU).
    # Differs: no permutation layers; each coupling gets its own random 50/50 mask instead
    # (``randmask=True``), which mixes coordinates the same way; the log-scale soft clamp is
    # a / (1 + |a / log 1e-3|) instead of b tanh(a / b).
    import zuko

    torch.manual_seed(0)
    model = zuko.flows.RealNVP(
        dim, transforms=couplings, randmask=True, hidden_features=list(hidden)
    )

    def log_prob(x):
        return model().log_prob(x)

    return model, log_prob


def build_freia(dim=DIM, hidden=HIDDEN, couplings=COUPLINGS):
    # FrEIA SequenceINN: PermuteRandom between AffineCouplingOneSided blocks (one st-net
    # 50 -> 256 -> 256 -> 100 with ReLU, transforms the second half), soft clamp 3 tanh(s)
    # (``clamp=3, clamp_activation="TANH"``) instead of 3 tanh(s / 3). FrEIA returns
    # (z, log|det|); the standard-normal base density is added here.
    import FrEIA.framework as Ff
    import FrEIA.modules as Fm

    def subnet(n_in, n_out):
        widths = [n_in, *hidden]
        layers = [m for a, b in zip(widths[:-1], widths[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
        return nn.Sequential(*layers, nn.Linear(widths[-1], n_out))

    inn = Ff.SequenceINN(dim)
    for i in range(couplings):
        if i > 0:
            inn.append(Fm.PermuteRandom, seed=i)
        inn.append(
            Fm.AffineCouplingOneSided, subnet_constructor=subnet, clamp=3.0, clamp_activation="TANH"
        )

    def log_prob(x):
        z, log_det = inn(x)
        return base_log_prob(z) + log_det

    return inn, log_prob


LIBRARIES = {
    "normflows": build_normflows,
    "nflows": build_nflows,
    "zuko": build_zuko,
    "FrEIA": build_freia,
}


def compiled_flowcore(device, x_probe):
    """``torch.compile`` of flowcore's reference path; returns (module, log_prob, seconds to
    compile)."""
    flow, reference = build_flowcore_reference()
    randomize_(flow, 0).to(device).eval()
    compiled = torch.compile(reference, dynamic=False)
    start = time.perf_counter()
    with torch.inference_mode():
        for rows in (4_096, 65_536):  # compile both static shapes the table uses
            compiled(x_probe[:rows])
    return flow, compiled, time.perf_counter() - start


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--n", type=int, default=131_072, help="samples per timed pass of the chunked rows"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed rounds (the median per row is reported)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)"
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    parser.add_argument(
        "--libs", nargs="*", default=list(LIBRARIES), help="comparison libraries to try"
    )
    parser.add_argument(
        "--block-rows",
        type=int,
        nargs="*",
        default=[],
        help="also time flowcore's no-grad path at these eval_block_rows",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: few samples, 1 round, no compile"
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeats, args.warmup, args.no_compile = 8_192, 1, 1, True
    for lib in args.libs:
        if lib not in LIBRARIES:
            parser.error(f"unknown library {lib!r}; choose from {list(LIBRARIES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    whole = min(65_536, args.n)
    modes = [(f"chunks of {c:,}", c, args.n) for c in (4_096, 65_536) if c <= args.n] + [
        (f"one {whole:,} batch", whole, whole)
    ]

    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, load average {load0:.2f}"
    )
    print(
        f"model: RealNVP D={DIM}, {COUPLINGS} affine couplings, st-net MLP {HIDDEN} ReLU, float32; "
        f"{args.n:,} samples per chunked pass; median of {args.repeats} interleaved rounds "
        f"after {args.warmup} warm-up round(s)\n"
    )
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(max(args.n, 65_536 if not args.no_compile else 0), DIM, generator=gen).to(
        device
    )

    # Build every model first, then time them in interleaved rounds, so that load from other
    # processes during the run hits all rows alike.
    models: list[tuple[str, nn.Module, Callable, str]] = []
    skipped: list[tuple[str, str]] = []

    def add(name: str, build, block_rows: int | None = None) -> None:
        try:
            model, log_prob = build()
        except ImportError as err:
            skipped.append((name, f"skipped: not importable ({err.name or err})"))
            print(f"  {name}: skipped ({err})", flush=True)
            return
        randomize_(model, 0).to(device).eval()
        if block_rows is not None:
            model.eval_block_rows = block_rows
        with torch.inference_mode():
            check = log_prob(x[:256])
        models.append(
            (name, model, log_prob, "" if torch.isfinite(check).all() else "non-finite log p!")
        )

    add("flowcore", build_flowcore)
    for block in args.block_rows:
        add(f"flowcore, eval_block_rows={block}", build_flowcore, block)
    add("flowcore, no-grad path with addmm", build_flowcore_mkl)
    add("flowcore, reference path", build_flowcore_reference)
    if not args.no_compile:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, compiled, compile_s = compiled_flowcore(device, x)
            models.append(
                ("flowcore + torch.compile", model, compiled, f"compiled in {compile_s:.0f} s")
            )
        except Exception as err:  # compile needs a working C++ toolchain; report and go on
            msg = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:120]
            skipped.append(("flowcore + torch.compile", f"failed: {msg}"))
            print(f"  torch.compile failed: {msg}", flush=True)
    for lib in args.libs:
        add(lib, LIBRARIES[lib])

    tries = 2 if args.quick else 3
    backends = gemm_backends(device)

    def peak_now() -> dict[str, float]:
        return {
            backend: gemm_rate(4_096, 4_096, 4_096, device, tries, backend) for backend in backends
        }

    peaks = [peak_now()]
    shapes = [
        (4_096, DIM // 2, HIDDEN[0]),
        (4_096, HIDDEN[0], HIDDEN[1]),
        (4_096, HIDDEN[1], DIM),
        (1_024, HIDDEN[0], HIDDEN[1]),
    ]
    shape_rates = {
        (backend, sh): gemm_rate(*sh, device, tries, backend)
        for backend in backends
        for sh in shapes
    }

    times: dict[tuple[str, str], list[float]] = {}
    for rnd in range(args.warmup + args.repeats):
        timed = rnd >= args.warmup
        for name, _, log_prob, _ in models:
            for mode, chunk, total in modes:

                def run(data=x[:total], chunk=chunk, log_prob=log_prob):
                    with torch.inference_mode():
                        for part in data.split(chunk):
                            log_prob(part)

                seconds = wall_time(run, device)
                if timed:
                    times.setdefault((name, mode), []).append(seconds)
        if timed:
            peaks.append(peak_now())
            now = ", ".join(f"{backend} {rate:,.1f}" for backend, rate in peaks[-1].items())
            print(
                f"  round {rnd - args.warmup + 1}/{args.repeats} done, GEMM peak now {now} GFLOP/s",
                flush=True,
            )
        else:
            print(f"  warm-up round {rnd + 1}/{args.warmup} done", flush=True)

    peak = max(max(p.values()) for p in peaks)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nfp32 GEMM peak (4096x4096x4096 float32, best of {' and '.join(backends)} "
        f"over the run): {peak:,.1f} GFLOP/s"
    )
    for backend in backends:
        print(
            f"  {backend}: best {max(p[backend] for p in peaks):,.1f}; per round "
            + ", ".join(f"{p[backend]:,.0f}" for p in peaks)
        )
        print(
            f"  {backend} at the model's shapes: "
            + ", ".join(
                f"{m}x{k} @ {k}x{n}: {r:,.1f}"
                for (b, (m, k, n)), r in shape_rates.items()
                if b == backend
            )
            + " GFLOP/s"
        )
    print(f"load average at the end {load1:.2f}\n")

    print("| model | evaluation | samples/s | GFLOP/s | % of fp32 GEMM peak | note |")
    print("|---|---|---:|---:|---:|---|")
    rates: dict[str, float] = {}
    for name, model, _, note in models:
        macs = linear_macs(model)
        for mode, _, total in modes:
            rate = total / statistics.median(times[(name, mode)])
            rates[name] = max(rates.get(name, 0.0), rate)
            gflops = rate * 2 * macs / 1e9
            print(
                f"| {name} | {mode} | {rate:,.0f} | {gflops:,.1f} | {100 * gflops / peak:.0f}% "
                f"| {note}{'; ' if note else ''}{2 * macs / 1e6:.2f} MFLOP/sample |"
            )
    for name, note in skipped:
        print(f"| {name} | – | – | – | – | {note} |")

    if "flowcore" in rates:
        ours = rates["flowcore"]
        print(
            f"\nflowcore best: {ours:,.0f} samples/s (bar {BAR_SAMPLES_PER_S:,}: "
            f"{'met' if ours >= BAR_SAMPLES_PER_S else 'NOT met'})"
        )
        others = {k: v for k, v in rates.items() if k in LIBRARIES}
        if others:
            lib, theirs = max(others.items(), key=lambda kv: kv[1])
            ratio = ours / theirs
            print(
                f"best other library: {lib} {theirs:,.0f} samples/s; flowcore / best = "
                f"{ratio:.2f}x (bar {BAR_RATIO}x: {'met' if ratio >= BAR_RATIO else 'NOT met'})"
            )
        fp32_ceiling = peak * 1e9 / (2 * linear_macs(models[0][1]))
        print(
            f"fp32 ceiling for this model at 100% of the measured GEMM peak: "
            f"{fp32_ceiling:,.0f} samples/s"
        )


if __name__ == "__main__":
    main()
