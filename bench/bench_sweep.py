"""Sweep throughput: flows trained per hour, serially, batched, on a LocalCluster, and both.

    .venv/bin/python bench/bench_sweep.py [--settings 4] [--epochs 3] [--n-train 10000]
        [--workers 2]

The flows are the default profile's sensitivity sweep's: D = ``sweep_dim`` (20), the default
architecture (8 couplings, st-net 2 × 64), ``--settings`` sweep settings × the sweep's 3 seeds, each
trained on ``--n-train`` samples for a fixed ``--epochs`` (``stopping: fixed``), so every mode does
the same work and ends at the same validation loss (printed: the mean final validation NLL and its
largest difference from the serial run). Modes, each from an empty cache, the cluster's start
included in its time:

- serial: one flow at a time in this process (``flowcore.train.fit``, all threads): the loop the
  sweeps ran before Dask;
- batched: a setting's 3 seeds trained together as one stacked model (``fit_many``), in this
  process with all its threads;
- LocalCluster: one flow per task, ``--workers`` worker processes with one thread each;
- both: a setting's seeds batched in one task, on the LocalCluster.

Speed is measured here, never asserted in tests. Run it on a quiet machine; it prints the CPU model
and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from unittest import mock

import pandas as pd
import torch

from bench_train import cpu_model  # noqa: E402  (bench/ is the script's folder)
from flowcore.config import resolve
from flowcore.studies.debruin2024 import ThesisConfig
from flowcore.studies.debruin2024.sensitivity import train_together, trains_with
from flowcore.studies.debruin2024.training import trained_flow
from flowcore.sweep import Job, run


def final_val(job: Job) -> list[dict]:
    trained = trained_flow(job.config.dims[0], job.config, progress=False)
    return [{"val NLL": trained.history.val_nll[-1]}]


def jobs(
    settings: int, epochs: int, n_train: int, trainer: str, vary_lr: bool = False
) -> list[Job]:
    base = resolve(ThesisConfig, "default").config
    base = base.replace(
        dims=[base.sweep.dim], n_train=n_train, max_epochs=epochs, stopping="fixed", trainer=trainer
    )
    # Settings that differ as the sweep's condition-number factor does (in Σ_p alone), or in the
    # learning rate too (then only a setting's seeds can train together).
    eig_mins = [0.1 / 2**i for i in range(settings)]
    lrs = [1e-3 * 0.8**i for i in range(settings)] if vary_lr else [1e-3] * settings
    return [
        Job({"eig_min": e, "lr": lr, "seed": seed}, base.replace(eig_min=e, lr=lr, seed=seed))
        for e, lr in zip(eig_mins, lrs)
        for seed in base.sweep.seeds
    ]


def timed(mode: str, settings: int, epochs: int, n_train: int, workers: int, vary_lr: bool = False):
    batched = mode in ("batched", "both")
    todo = jobs(settings, epochs, n_train, "batched" if batched else "single", vary_lr)
    scheduler = "serial" if mode in ("serial", "batched") else "local"
    extra = {"group": trains_with, "prepare": train_together} if batched else {}
    with (
        tempfile.TemporaryDirectory() as cache,
        mock.patch.dict(os.environ, {"FLOWCORE_CACHE": cache, "FLOWCORE_PROGRESS": "0"}),
    ):
        if scheduler == "local":
            from flowcore.sweep import execution

            original = execution.worker_count
            execution.worker_count = lambda: workers
        start = time.perf_counter()
        try:
            if (
                scheduler == "serial"
            ):  # in this process with all its threads, as the loop before Dask
                if batched:
                    for group in {trains_with(j): None for j in todo}:
                        train_together([j for j in todo if trains_with(j) == group])
                table = pd.DataFrame([{**j.labels, **final_val(j)[0]} for j in todo])
            else:
                table = run(
                    todo, final_val, progress=False, scheduler=scheduler, description=mode, **extra
                )
        finally:
            if scheduler == "local":
                execution.worker_count = original
        seconds = time.perf_counter() - start
    return seconds, len(todo), table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settings", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["serial", "batched", "local", "both"])
    parser.add_argument(
        "--vary-lr",
        action="store_true",
        help="settings differ in lr too: only a setting's 3 seeds train together",
    )
    args = parser.parse_args()
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads in this process"
    )
    print(f"load average before: {os.getloadavg()}")
    together = (
        "a setting's 3 seeds"
        if args.vary_lr
        else f"all {3 * args.settings} flows (settings differ in Σ_p alone)"
    )
    print(
        f"{args.settings} settings × 3 seeds, D = 20, n_train = {args.n_train}, "
        f"{args.epochs} epochs (fixed), LocalCluster of {args.workers}; "
        f"batched: {together} per stacked model"
    )
    for mode in ("serial", "batched"):  # warm-up: imports and first calls, not timed
        timed(mode, 1, 1, 500, args.workers)
    reference = None
    print(
        f"{'mode':<10} {'flows':>6} {'seconds':>9} {'flows/hour':>11} {'× serial':>9} "
        f"{'mean val NLL':>13} {'max |Δ| vs serial':>18}"
    )
    for mode in args.modes:
        seconds, n, table = timed(
            mode, args.settings, args.epochs, args.n_train, args.workers, args.vary_lr
        )
        rate = n / seconds * 3600
        if reference is None:
            reference = (rate, table)
        diff = table["val NLL"].to_numpy() - reference[1]["val NLL"].to_numpy()
        print(
            f"{mode:<10} {n:>6} {seconds:>9.1f} {rate:>11.0f} {rate / reference[0]:>9.2f} "
            f"{table['val NLL'].mean():>13.4f} {abs(diff).max():>18.2e}"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
