"""Sweeps on Dask, and the faults they must survive (issue 15).

The ci regime sweep (:func:`flowcore.studies.debruin2024.regimes.run_design`: 15 jobs in 5 groups of
3 seeds, trained batched) is run serially once as the reference, then

- on a real cluster: ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, started as
  subprocesses and shut down even when the test fails; the table must equal the serial one;
- on a LocalCluster one of whose worker processes is killed (SIGKILL) while it runs a task: the
  sweep completes with every result, equal to the serial one, and every cache entry loads;
- with jobs that raise inside the worker (a config that fails validation, a NaN loss): the sweep
  reports each with its labels, key and error, the others complete, and nothing partial is cached;
- against an address where no scheduler listens: a ConnectionError naming it within seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
import torch

from flowcore.cache import entry_path
from flowcore.config import resolve
from flowcore.studies.debruin2024 import ThesisConfig, regimes
from flowcore.studies.debruin2024.training import trained_flow
from flowcore.sweep import Job, failures, run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def ci_base() -> ThesisConfig:
    return resolve(ThesisConfig, "ci").config


@pytest.fixture(scope="module")
def serial_table(ci_base, tmp_path_factory) -> pd.DataFrame:
    cache = tmp_path_factory.mktemp("serial-cache")
    with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": str(cache)}):
        table = regimes.run_design(ci_base.replace(scheduler="serial"), progress=False)
    assert failures(table).empty
    return table


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cache_is_whole(cache: Path) -> None:
    """Every entry loads as a whole torch file and no temporary file is left."""
    entries = sorted(cache.glob("*.pt"))
    assert entries, "the sweep cached nothing"
    for path in entries:
        torch.load(path, map_location="cpu", weights_only=True)  # raises on a partial file
    assert not list(cache.glob(".*.tmp")), (
        f"temporary files left: {[p.name for p in cache.glob('.*.tmp')]}"
    )


@pytest.fixture
def dask_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; all killed at teardown."""
    dask = Path(sys.executable).parent / "dask"
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "FLOWCORE_PROGRESS": "0"}
    processes: list[subprocess.Popen] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *args: str) -> None:
        out = open(logs / f"{name}.log", "w")
        processes.append(
            subprocess.Popen(
                [str(dask), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        )

    try:
        start(
            "scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"
        )
        for i in range(2):
            start(
                f"worker{i}",
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--name",
                f"w{i}",
            )
        from distributed import Client

        deadline = time.monotonic() + 90
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    text = "\n".join(
                        f"--- {f.name}\n{f.read_text()[-2000:]}" for f in logs.iterdir()
                    )
                    pytest.fail(f"the dask cluster did not come up:\n{text}")
                time.sleep(1)
        yield address
    finally:
        for p in reversed(processes):
            with _quiet():
                os.killpg(p.pid, signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with _quiet():
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        return kind is ProcessLookupError


def test_a_real_cluster_gives_the_serial_table(ci_base, serial_table, dask_cluster, tmp_path):
    with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": str(tmp_path / "cache")}):
        table = regimes.run_design(ci_base.replace(scheduler=dask_cluster), progress=False)
    assert failures(table).empty
    pd.testing.assert_frame_equal(table, serial_table, check_exact=True)
    _cache_is_whole(tmp_path / "cache")


def test_a_worker_killed_mid_task_leaves_a_whole_sweep_and_cache(ci_base, serial_table, tmp_path):
    from distributed import Client, LocalCluster

    cache = tmp_path / "cache"
    killed: dict = {}
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):

        def kill_one_busy_worker() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                busy = {worker: tasks for worker, tasks in client.processing().items() if tasks}
                if busy:
                    worker, tasks = next(iter(busy.items()))
                    time.sleep(0.5)  # into the task: its calibration and training
                    if client.processing().get(worker):
                        pid = client.run(os.getpid, workers=[worker])[worker]
                        os.kill(pid, signal.SIGKILL)
                        killed.update(worker=worker, pid=pid, tasks=list(tasks))
                time.sleep(0.05)

        killer = threading.Thread(target=kill_one_busy_worker, daemon=True)
        killer.start()
        with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": str(cache)}), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = regimes.run_design(
                ci_base.replace(scheduler=cluster.scheduler_address), progress=False
            )
        killer.join(timeout=5)
    assert killed, "no worker was killed while running a task"
    assert failures(table).empty, failures(table)
    pd.testing.assert_frame_equal(table, serial_table, check_exact=True)
    _cache_is_whole(cache)


def _train_one(job: Job) -> list[dict]:
    """Train the job's flow; the job's ``override`` is applied inside the worker (validated
    there)."""
    config = job.config.replace(**dict(job.labels["override"]))
    trained = trained_flow(config.dims[0], config, progress=False)
    return [{"val NLL": trained.history.val_nll[trained.history.best_epoch]}]


def test_jobs_that_raise_are_reported_and_the_others_complete(ci_base, tmp_path):
    base = ci_base.replace(dims=[ci_base.dims[0]])
    cases = {
        "fine": (),
        "invalid": (("n_train", 1),),
        "nan loss": (("lr", 1e30),),
        "fine too": (("seed", 1),),
    }
    jobs = [Job({"case": name, "override": override}, base) for name, override in cases.items()]
    cache = tmp_path / "cache"
    with (
        mock.patch.dict(os.environ, {"FLOWCORE_CACHE": str(cache)}),
        pytest.warns(RuntimeWarning, match="2 of 4 jobs failed"),
    ):
        table = run(jobs, _train_one, progress=False, scheduler="local", description="faults")
    assert table["case"].tolist() == ["fine", "fine too"]
    failed = failures(table).set_index("case")
    assert sorted(failed.index) == ["invalid", "nan loss"]
    assert "n_train must be an integer ≥ 2, got 1" in failed.loc["invalid", "error"]
    assert failed.loc["nan loss", "error"].startswith(
        "FloatingPointError: training loss became nan"
    )
    assert failed.loc["nan loss", "key"] == jobs[2].key
    # Nothing partial: the two good flows are cached whole, the NaN run left no entry.
    _cache_is_whole(cache)
    assert len(list(cache.glob("flow-*.pt"))) == 2
    nan_config = base.replace(lr=1e30)
    spec = {
        "dim": base.dims[0],
        "recipe": nan_config.recipe,
        "flow": nan_config.flow,
        "train": nan_config.train_key,
    }
    assert not entry_path("flow", spec, cache).exists()


def test_an_unreachable_scheduler_is_named_within_seconds():
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=address.replace(".", r"\.")):
        run([Job({"x": 1}, {"x": 1})], lambda job: [{}], progress=False, scheduler=address)
    assert time.monotonic() - start < 15


def test_a_bad_scheduler_value_is_refused_before_any_work(ci_base):
    with pytest.raises(ValueError, match="scheduler must be 'local', 'serial'"):
        ci_base.replace(scheduler="localhost:8786")
