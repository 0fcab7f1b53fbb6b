"""Training throughput of the book's RealNVP: flowcore against other flow libraries, one run.

    .venv/bin/python bench/bench_train.py [--dims 20 100] [--device auto] [--steps 40]
        [--repeats 5] [--threads N] [--quick]

Model (the book's default architecture): RealNVP, 8 affine couplings, st-network MLP with hidden
widths (64, 64) and ReLU, float32, minibatches of 512 samples of a Gaussian (flowcore's
``training_gaussian(D)``), Adam with lr 1e-3. One training step is forward + backward + Adam step,
written the way each library's user would write it:

* ``flowcore (fast training path)``: exactly what ``flowcore.train.fit`` runs per minibatch:
  ``loss = -flow.log_prob(x).mean()``, the finiteness check, ``zero_grad``, ``backward``,
  ``step`` and ``loss.item()``, with fit's optimizer (``Adam(foreach=True)``). On the CPU in
  float32 the couplings and permutations take the fused training path
  (``flowcore.flows.fast.FusedAffineCoupling``: one autograd node per coupling, its matrix
  products where ``flowcore.flows.fast.FUSED_GEMMS`` says, by default the reference ops'
  ``addmm``/``mm``, which keeps training bitwise the same).
* with ``--gemm-variants``, ``flowcore (fast path, FUSED_GEMMS=...)``: the fused path with its
  matrix products through oneDNN's linear (forward and backward, or forward only), which on AMD
  processors reaches AVX-512 kernels where MKL's SGEMM (behind ``addmm``) takes AVX2 ones.
* ``flowcore (reference autograd)``: the same step with ``flowcore.flows.fast.FUSED_TRAINING =
  False`` (the couplings' plain nn.Linear/autograd ops), same optimizer.
* ``flowcore (before: reference autograd, default Adam)``: the reference ops and
  ``torch.optim.Adam``'s default (a per-parameter loop on the CPU): the step fit ran before the
  fused path and ``foreach=True``.
* ``normflows``, ``nflows``, ``zuko``, ``FrEIA``: ``loss = -log_prob(x).mean()``, ``zero_grad``,
  ``backward``, ``step`` with the default ``torch.optim.Adam``; the models come from
  ``bench_logp.py``'s ``build_*`` functions (D, hidden widths and couplings passed in). Skipped
  with a note when not importable (they are pinned in ``requirements.txt``).

Where the libraries' models differ from flowcore's (the notes at each ``build_*`` in
bench_logp.py): the linear layers have the same shapes everywhere; the log-scale is bounded
differently: flowcore b·tanh(ŝ/b) with b = 3; normflows unbounded exp(ŝ) (shift/scale interleaved,
log p through each coupling's inverse); nflows sigmoid(ŝ + 2) + 10⁻³; zuko ŝ/(1 + |ŝ/log 10⁻³|)
with a random mask per coupling instead of permutations; FrEIA 3·tanh(ŝ). Each library keeps its
own weight initialisation (flowcore's last st-layer starts at zero).

All models are built first, then timed in interleaved rounds (each model trains ``--steps`` steps
per round; ``--warmup`` untimed rounds, then the median of ``--repeats``), so load from other
processes hits all rows alike. Run it on a quiet machine: the load average is printed before and
after. With ``--device cuda`` (or ``auto`` on a machine with a GPU) the fused path does not apply
(it is CPU-only), and timings synchronise the device.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

import torch
from torch import nn

from bench_logp import LIBRARIES, build_flowcore, linear_macs, sync
from flowcore import resolve_device, training_gaussian
from flowcore.flows import fast, onednn_linear_available
from flowcore.train import _adam, _loss

COUPLINGS = 8
HIDDEN = (64, 64)
BATCH = 512
LR = 1e-3


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo or lscpu (else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> str:
    """Whether the CPU reports AVX-512 (what oneDNN uses and MKL's SGEMM does not on AMD)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return "flags unknown"
    return "AVX-512" if "avx512f" in flags else ("AVX2" if "avx2" in flags else "no AVX2")


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


class Trainer:
    """One model with its optimizer and its training step."""

    def __init__(
        self,
        name: str,
        model: nn.Module,
        step: Callable[[torch.Tensor], torch.Tensor],
        note: str = "",
    ):
        self.name, self.model, self.step, self.note = name, model, step, note
        self.losses: list[float] = []


def flowcore_trainer(
    name: str,
    dim: int,
    device: torch.device,
    fused: bool,
    fit_optimizer: bool,
    gemms: str | None = None,
) -> Trainer:
    torch.manual_seed(0)  # every flowcore row starts from the same weights
    flow, _ = build_flowcore(dim, HIDDEN, COUPLINGS)
    flow.to(device).train()
    optimizer = _adam(flow, LR) if fit_optimizer else torch.optim.Adam(flow.parameters(), lr=LR)

    def step(batch: torch.Tensor) -> torch.Tensor:
        before = fast.FUSED_TRAINING, fast.FUSED_GEMMS
        fast.FUSED_TRAINING, fast.FUSED_GEMMS = fused, gemms or before[1]
        try:  # fit's inner loop, one minibatch, without loss terms
            loss, nll, _ = _loss(flow, batch, ())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{name}: loss {loss.item()}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            nll.item()
            return loss
        finally:
            fast.FUSED_TRAINING, fast.FUSED_GEMMS = before

    return Trainer(name, flow, step)


def library_trainer(lib: str, dim: int, device: torch.device) -> Trainer:
    model, log_prob = LIBRARIES[lib](dim, HIDDEN, COUPLINGS)  # raises ImportError if missing
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)

    def step(batch: torch.Tensor) -> torch.Tensor:
        loss = -log_prob(batch).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return Trainer(lib, model, step)


def run_dim(
    dim: int, args, device: torch.device
) -> tuple[list[tuple[str, float, str]], dict[str, float]]:
    torch.manual_seed(0)
    p = training_gaussian(dim)
    n = BATCH * args.steps
    x = p.sample(n, torch.Generator().manual_seed(1), dtype=torch.float32).to(device)
    batches = list(x.split(BATCH))

    trainers: list[Trainer] = []
    skipped: list[tuple[str, str]] = []
    fused_note = (
        f"FUSED_GEMMS={fast.fused_gemms()!r}"
        if device.type == "cpu"
        else "fused path not taken (CPU float32 only)"
    )
    trainers.append(
        flowcore_trainer(
            "flowcore (fast training path)", dim, device, fused=True, fit_optimizer=True
        )
    )
    trainers[-1].note = fused_note
    if args.gemm_variants:
        for gemms in fast.GEMM_CHOICES:
            if gemms != fast.FUSED_GEMMS:
                trainers.append(
                    flowcore_trainer(
                        f"flowcore (fast path, FUSED_GEMMS={gemms!r})",
                        dim,
                        device,
                        fused=True,
                        fit_optimizer=True,
                        gemms=gemms,
                    )
                )
    trainers.append(
        flowcore_trainer(
            "flowcore (reference autograd)", dim, device, fused=False, fit_optimizer=True
        )
    )
    trainers.append(
        flowcore_trainer(
            "flowcore (before: reference autograd, default Adam)",
            dim,
            device,
            fused=False,
            fit_optimizer=False,
        )
    )
    for lib in args.libs:
        try:
            trainers.append(library_trainer(lib, dim, device))
        except ImportError as err:
            skipped.append((lib, f"skipped: not importable ({err.name or err})"))

    times: dict[str, list[float]] = {t.name: [] for t in trainers}
    for rnd in range(args.warmup + args.repeats):
        timed = rnd >= args.warmup
        for t in trainers:
            sync(device)
            start = time.perf_counter()
            for batch in batches:
                loss = t.step(batch)
            sync(device)
            seconds = time.perf_counter() - start
            t.losses.append(loss.item())
            if timed:
                times[t.name].append(seconds)
        label = (
            f"round {rnd - args.warmup + 1}/{args.repeats}"
            if timed
            else f"warm-up round {rnd + 1}/{args.warmup}"
        )
        print(f"  D={dim}: {label} done", flush=True)

    rows, rates = [], {}
    for t in trainers:
        rate = n / statistics.median(times[t.name])
        rates[t.name] = rate
        finite = all(map(lambda v: v == v and abs(v) != float("inf"), t.losses))
        note = "; ".join(
            filter(
                None,
                [
                    t.note,
                    "" if finite else "non-finite loss!",
                    f"loss {t.losses[0]:.2f} -> {t.losses[-1]:.2f}",
                    f"{2 * linear_macs(t.model) / 1e6:.2f} MFLOP/sample fwd",
                ],
            )
        )
        rows.append((t.name, rate, note))
    rows += [(name, float("nan"), note) for name, note in skipped]
    return rows, rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dims", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--steps",
        type=int,
        default=40,
        help="training steps (minibatches of 512) per model per round",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed rounds (the median per model is reported)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)"
    )
    parser.add_argument(
        "--libs", nargs="*", default=list(LIBRARIES), help="comparison libraries to try"
    )
    parser.add_argument(
        "--gemm-variants",
        action="store_true",
        help="also time the fused path with the other flowcore.flows.fast.FUSED_GEMMS settings",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 3 steps, 1 warm-up and 1 timed round"
    )
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats, args.warmup = 3, 1, 1
    for lib in args.libs:
        if lib not in LIBRARIES:
            parser.error(f"unknown library {lib!r}; choose from {list(LIBRARIES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    load0 = load_average()
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(
        f"CPU {cpu_model()} ({cpu_flags()}), {os.cpu_count()} CPUs; device {device}{gpu}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"oneDNN linear {'available' if onednn_linear_available() else 'not available'}"
    )
    print(f"load average at the start {load0:.2f}")
    print(
        f"model: RealNVP, {COUPLINGS} affine couplings, st-net MLP {HIDDEN} ReLU, float32; "
        f"batch {BATCH}, Adam lr {LR}; "
        f"{args.steps} steps per model per round, median of {args.repeats} interleaved rounds "
        f"after {args.warmup} warm-up round(s)\n"
    )
    results = [(dim, *run_dim(dim, args, device)) for dim in args.dims]
    load1 = load_average()
    print(f"\nload average at the end {load1:.2f}")

    flowcore_names = (
        "flowcore (fast training path)",
        "flowcore (reference autograd)",
        "flowcore (before: reference autograd, default Adam)",
    )
    for dim, rows, rates in results:
        print(f"\nD = {dim}\n")
        print("| model | samples/s | ms per step | note |")
        print("|---|---:|---:|---|")
        for name, rate, note in rows:
            cells = f"{rate:,.0f} | {1e3 * BATCH / rate:.2f}" if rate == rate else "– | –"
            print(f"| {name} | {cells} | {note} |")
        ours = rates[flowcore_names[0]]
        print(
            f"\nflowcore fast path / reference autograd: {ours / rates[flowcore_names[1]]:.2f}x; "
            f"/ before (reference, default Adam): {ours / rates[flowcore_names[2]]:.2f}x"
        )
        others = {k: v for k, v in rates.items() if not k.startswith("flowcore")}
        if others:
            lib, theirs = max(others.items(), key=lambda kv: kv[1])
            print(
                f"best other library: {lib} {theirs:,.0f} samples/s; "
                f"flowcore (fast training path) / best = {ours / theirs:.2f}x"
            )
        else:
            print("no other library importable")


if __name__ == "__main__":
    main()
