"""Throughput of the baseline's building blocks on this machine, one table per run.

    .venv/bin/python bench/bench_flow.py [--dims 10 20 50 100] [--device auto] [--hidden 64 64]

For each D it times, with the default profile's architecture: training steps (samples/s through
forward + backward + Adam), log pθ in chunks under ``torch.inference_mode`` (samples/s for several
chunk sizes), the closed-form log p, and sampling from p. Speed is measured here, never asserted
in tests.
"""

from __future__ import annotations

import argparse
import time

import torch

from flowcore import RealNVP, resolve_device, training_gaussian


def timed(fn, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls (after one warm-up), synchronising CUDA."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 20, 50, 100])
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--couplings", type=int, default=8)
    parser.add_argument("--n", type=int, default=65_536, help="samples per timed pass")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    chunks = (4_096, 16_384, 65_536)
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"RealNVP {args.couplings} couplings, hidden {args.hidden}"
    )
    header = (
        f"{'D':>4} {'train (samples/s)':>18} "
        + " ".join(f"{f'log pθ @{c}':>16}" for c in chunks)
        + f" {'log p (closed)':>15} {'sample p':>12}"
    )
    print(header)
    print("-" * len(header))
    for dim in args.dims:
        torch.manual_seed(0)
        p = training_gaussian(dim)
        flow = RealNVP(dim, args.couplings, tuple(args.hidden)).to(device)
        x = p.sample(args.n, torch.Generator().manual_seed(1), dtype=torch.float32).to(device)
        optimizer = torch.optim.Adam(flow.parameters(), lr=1e-4)

        def train_pass(batch: int = 512) -> None:
            for idx in torch.arange(len(x), device=device).split(batch):
                loss = -flow.log_prob(x[idx]).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

        def eval_pass(chunk: int) -> None:
            with torch.inference_mode():
                for part in x.split(chunk):
                    flow.log_prob(part)

        x64 = x.double().cpu()
        rates = [args.n / timed(train_pass, repeats=1)]
        rates += [args.n / timed(lambda c=c: eval_pass(c)) for c in chunks]
        rates.append(args.n / timed(lambda: p.log_prob(x64)))
        rates.append(args.n / timed(lambda: p.sample(args.n, torch.Generator().manual_seed(2))))
        print(
            f"{dim:>4} {rates[0]:>18,.0f} "
            + " ".join(f"{r:>16,.0f}" for r in rates[1:4])
            + f" {rates[4]:>15,.0f} {rates[5]:>12,.0f}"
        )


if __name__ == "__main__":
    main()
