"""K flows of one architecture trained together: ``fit_many``'s stacked trainer against torch.func.

    .venv/bin/python bench/bench_stacked.py [--dim 20] [--k 1 3 12] [--epochs 2] [--n-train 10000]
        [--repeats 3] [--threads 1] [--device cpu|cuda] [--trainers NAME ...]

The stacked trainers evaluate the one coupling definition (``flowcore.flows.spec.CouplingSpec``)
on K flows' stacked weights, and take a ``torch.optim.Adam`` step on the stacked parameters:

* ``fit_many, stacked fused step``: ``flowcore.train_many.fit_many``, each coupling one autograd
  node (``FusedAffineCoupling`` on stacked weights: ``baddbmm`` forward, a hand-written ``bmm``
  backward), and also each epoch's validation NLL (1,000 rows) and the trackers' bookkeeping;
* ``fit_many, stacked reference ops``: the same with ``flowcore.flows.fast.FUSED_TRAINING`` off,
  ``CouplingSpec.forward`` on the stacked layers under autograd (the trainer before the fused
  step; the same numbers bit for bit);
* ``fit, one flow at a time``: ``flowcore.train.fit`` on each flow in turn (the single-flow fused
  step);
* ``torch.func vmap``: ``torch.func.stack_module_state`` of the K reference flows,
  ``functional_call`` of ``Flow.log_prob`` under ``vmap(grad(...))``, the way PyTorch's
  model-ensembling tutorial writes it; no validation pass (so it does less work per epoch).

The flows are the default sweep's (D = ``--dim``, 8 couplings, st-network (64, 64), float32,
batches of 512), trained for ``--epochs`` fixed epochs with each flow's own minibatch order. Before
timing, one epoch of each from the same initial weights checks that the two reach the same weights
(printed: the largest difference, float32 rounding). Rounds alternate the two trainers; the table
gives the median seconds per epoch over ``--repeats`` rounds.

Speed is measured here, never asserted in tests. Run it on a quiet machine: it prints the CPU model,
whether it has AVX-512, and the load average before and after.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import statistics
import time

import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from bench_train import cpu_model  # noqa: E402  (bench/ is the script's folder)
from flowcore.devices import resolve_device
from flowcore.flows import RealNVP
from flowcore.flows import fast
from flowcore.train import TrainConfig, fit
from flowcore.train_many import fit_many

BATCH = 512
N_VAL = 1000


class _LogProb(nn.Module):
    """``functional_call`` calls ``forward``; the flows' density is ``log_prob``."""

    def __init__(self, flow: nn.Module):
        super().__init__()
        self.flow = flow

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow.log_prob(x)


def fit_vmap(flows: list[nn.Module], xs: torch.Tensor, config: TrainConfig, seeds: list[int]):
    """Train ``flows[k]`` on ``xs[k]`` for ``config.max_epochs`` epochs with torch.func."""
    params, buffers = stack_module_state([_LogProb(f) for f in flows])
    skeleton = copy.deepcopy(_LogProb(flows[0])).to("meta")

    def nll(p, b, x):
        return -functional_call(skeleton, (p, b), (x,)).mean()

    step = vmap(grad(nll))
    leaves = {name: t.detach().clone() for name, t in params.items()}
    optimizer = torch.optim.Adam(list(leaves.values()), lr=config.lr)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    n = xs.shape[1]
    for _ in range(config.max_epochs):
        orders = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(xs.device)
        for i in range(0, n, config.batch_size):
            rows = orders[:, i : i + config.batch_size]
            batch = torch.gather(xs, 1, rows.unsqueeze(-1).expand(-1, -1, xs.shape[2]))
            grads = step(leaves, buffers, batch)
            for name, t in leaves.items():
                t.grad = grads[name]
            optimizer.step()
    with torch.no_grad():
        for k, flow in enumerate(flows):
            for name, p in flow.named_parameters():
                p.copy_(leaves["flow." + name][k])


def fit_stacked(flows: list[nn.Module], xs: torch.Tensor, config: TrainConfig, seeds: list[int]):
    configs = [dataclasses.replace(config, seed=s) for s in seeds]
    fit_many(flows, list(xs), [x[:N_VAL] for x in xs], configs, progress=False)


def fit_stacked_reference(flows, xs, config, seeds):
    """``fit_many`` with the fused step switched off: the stacked reference ops under autograd (the
    trainer before the stacked fused step; the same numbers bit for bit)."""
    fast.FUSED_TRAINING = False
    try:
        fit_stacked(flows, xs, config, seeds)
    finally:
        fast.FUSED_TRAINING = True


def fit_one_by_one(flows, xs, config, seeds):
    """``flowcore.train.fit`` on each flow in turn (the single-flow fused step)."""
    for flow, x, seed in zip(flows, xs, seeds):
        fit(flow, x, x[:N_VAL], dataclasses.replace(config, seed=seed), progress=False)


TRAINERS = {
    "fit_many, stacked fused step": fit_stacked,
    "fit_many, stacked reference ops": fit_stacked_reference,
    "fit, one flow at a time": fit_one_by_one,
    "torch.func vmap": fit_vmap,
}


def make_flows(dim: int, k: int, device: torch.device | str = "cpu") -> list[nn.Module]:
    torch.manual_seed(1)
    return [
        RealNVP(dim, n_couplings=8, hidden=(64, 64), permutation_seed=0).to(device)
        for _ in range(k)
    ]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer reads the time of the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def agreement(dim: int, k: int, xs: torch.Tensor, seeds: list[int]) -> float:
    """Largest weight difference after one epoch of each trainer from the same start."""
    one = TrainConfig(batch_size=BATCH, max_epochs=1, stopping="fixed")
    a, b = make_flows(dim, k, xs.device), make_flows(dim, k, xs.device)
    fit_stacked(a, xs, one, seeds)
    fit_vmap(b, xs, one, seeds)
    with torch.no_grad():
        return max(
            (p - q).abs().max().item()
            for fa, fb in zip(a, b)
            for p, q in zip(fa.parameters(), fb.parameters())
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 3, 12])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument(
        "--trainers", nargs="*", default=list(TRAINERS), help=f"any of {list(TRAINERS)}"
    )
    args = parser.parse_args()
    for name in args.trainers:
        if name not in TRAINERS:
            parser.error(f"unknown trainer {name!r}; choose from {list(TRAINERS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    print(
        f"CPU: {cpu_model()}; AVX-512: {'avx512f' in flags}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; load {os.getloadavg()}; device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    )
    config = TrainConfig(batch_size=BATCH, max_epochs=args.epochs, stopping="fixed")
    rows = []
    for k in args.k:
        seeds = list(range(k))
        xs = torch.randn(k, args.n_train, args.dim, generator=torch.Generator().manual_seed(0))
        xs = xs.to(device)
        diff = agreement(args.dim, k, xs, seeds)  # also the warm-up
        seconds = {name: [] for name in args.trainers}
        for _ in range(args.repeats):
            for name in args.trainers:
                flows = make_flows(args.dim, k, device)
                synchronize(device)
                start = time.perf_counter()
                TRAINERS[name](flows, xs, config, seeds)
                synchronize(device)
                seconds[name].append((time.perf_counter() - start) / args.epochs)
        for name, s in seconds.items():
            median = statistics.median(s)
            rows.append(
                {
                    "K": k,
                    "trainer": name,
                    "s/epoch (median)": round(median, 3),
                    "samples/s": round(k * args.n_train / median),
                    "max |Δθ| after 1 epoch": f"{diff:.1e}",
                }
            )
    print(pd.DataFrame(rows).to_markdown(index=False))
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
