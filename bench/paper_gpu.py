"""The paper profile on a GPU: the baseline's flows and the generalization chapter's family at
N = 1,000,000.

    python3 bench/paper_gpu.py [--dims 10 20 50 100] [--device cuda] [--batched-seeds 5]

Trains (or loads) the default training of every D on the device, evaluates the affine family Λ at
the paper profile's N = 1,000,000 test samples per member, and prints the seconds of each step and
the verdicts of C4 and C5 on that table. Then it trains ``--batched-seeds`` flows at D = 20 one at a
time and as one stacked model (``trainer: batched``) and prints both times. Speed is measured here,
never asserted in tests; the script prints the device and the CPU.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench_train import cpu_model  # noqa: E402  (bench/ is the script's folder)
from flowcore.config import resolve
from flowcore.studies.debruin2024 import ThesisConfig, claims, evaluation
from flowcore.studies.debruin2024.training import trained_flow, trained_flows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 20, 50, 100])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batched-seeds", type=int, default=5)
    parser.add_argument("--profile", default="paper", help="another profile for a smoke run (ci)")
    args = parser.parse_args()
    config = resolve(ThesisConfig, args.profile, {"device": args.device, "dims": args.dims}).config
    device = config.torch_device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"device {device} ({name}); CPU {cpu_model()}; torch {torch.__version__}; "
        f"profile {args.profile}, N = {config.n_test:,}, dims {list(config.dims)}",
        flush=True,
    )
    for dim in config.dims:
        start = time.perf_counter()
        trained = trained_flow(dim, config, progress=False)
        h = trained.history
        print(
            f"D = {dim:>3}: trained in {time.perf_counter() - start:6.1f} s, "
            f"{len(h.val_nll)} epochs, best val NLL {h.val_nll[h.best_epoch]:.4f}",
            flush=True,
        )
    start = time.perf_counter()
    res = evaluation.results(config, families=["affine"], progress=False)
    print(
        f"affine family Λ at N = {config.n_test:,} for {len(config.dims)} D: "
        f"{time.perf_counter() - start:.1f} s (calibration included)"
    )
    print(res.timings.to_string(index=False))
    for label, check in (("C4", claims.c4_scale_only), ("C5", claims.c5_shift_only)):
        found = claims.assess((check, res.table))
        print(
            f"{label}: model {found.label()}; "
            + "; ".join(f"{null} {found.label(null)}" for null in ("p̂", "untrained", "truth"))
        )
    d = 20 if 20 in config.dims else config.dims[0]
    seeds = [config.replace(dims=[d], seed=s) for s in range(args.batched_seeds)]
    start = time.perf_counter()
    for c in seeds:
        trained_flow(d, c.replace(seed=c.seed + 100), progress=False)  # seeds not cached above
    single = time.perf_counter() - start
    start = time.perf_counter()
    trained_flows(
        d, [c.replace(seed=c.seed + 100, trainer="batched") for c in seeds], progress=False
    )
    batched = time.perf_counter() - start
    print(
        f"{args.batched_seeds} flows at D = {d}: one at a time {single:.1f} s, "
        f"batched {batched:.1f} s ({single / batched:.2f}x)"
    )


if __name__ == "__main__":
    main()
