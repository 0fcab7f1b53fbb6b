r"""Where a sweep's jobs run: in this process, on a LocalCluster, or on a running Dask cluster.

A sweep is a list of independent jobs, each named by its config's cache key. :func:`run_tasks`
sends them to ``dask.distributed`` as tasks, collects what each returns, and keeps the rows in job
order, so the table is the same wherever the jobs ran. A *group* of jobs (the seeds of one
setting, say) can share a ``prepare`` task (which trains their flows together); each of its jobs
is then a task of its own that waits for it, so that any idle worker can take it. The scheduler is
one of

* ``"local"`` (the default): a ``LocalCluster`` of worker processes, one per core, each with one
  torch thread, started and closed by the sweep;
* an address such as ``"tcp://10.0.0.5:8786"``: a running cluster (``dask scheduler`` on one
  machine, ``dask worker tcp://10.0.0.5:8786`` on others; on Slurm or Kubernetes, workers started
  by dask-jobqueue or dask-kubernetes). The workers must import the same flowcore and reach the
  same cache folder (``$FLOWCORE_CACHE``, a shared file system), since they write trained flows
  there themselves;
* ``"serial"``: one job after another in this process, for debugging and as the reference.

Every job runs with one thread wherever it runs (:func:`one_thread`), so its numbers do not
depend on where it ran.

Faults: a job that raises is reported with its labels, key and error, and the others go on; a
worker that dies mid-task (killed, out of memory) has its task rerun elsewhere by the scheduler.
Cache entries are written atomically, so neither leaves a partial entry; temporary files of
killed writers are removed at the end (:func:`flowcore.cache.remove_orphans`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from flowcore import status
from flowcore.cache import cache_dir, remove_orphans

__all__ = [
    "SERIAL",
    "LOCAL",
    "check_scheduler",
    "chosen_scheduler",
    "connect",
    "run_tasks",
    "Outcome",
]

SERIAL, LOCAL = "serial", "local"
_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss|inproc)://[^\s/]+/?$")


def check_scheduler(value: Any) -> str:
    """``value`` if it names a scheduler: ``""`` (the default), ``"local"``, ``"serial"`` or an
    address.

    Example:
        >>> check_scheduler("tcp://127.0.0.1:8786"), check_scheduler(" local ")
        ('tcp://127.0.0.1:8786', 'local')
        >>> check_scheduler("127.0.0.1:8786")  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        ValueError: scheduler must be 'local', 'serial', '' (the pipeline's --scheduler, else
        'local') or a Dask scheduler address such as 'tcp://10.0.0.5:8786'; got '127.0.0.1:8786'
    """
    text = value.strip() if isinstance(value, str) else value
    if text in ("", LOCAL, SERIAL) or (isinstance(text, str) and _ADDRESS.match(text)):
        return text
    raise ValueError(
        f"scheduler must be {LOCAL!r}, {SERIAL!r}, '' (the pipeline's --scheduler, else "
        f"{LOCAL!r}) or a Dask scheduler address such as 'tcp://10.0.0.5:8786'; got {value!r}"
    )


def chosen_scheduler(value: str = "") -> str:
    """The scheduler a sweep uses: ``value``, else ``$FLOWCORE_SCHEDULER`` (set by the pipeline's
    ``--scheduler``), else ``"local"``.

    Example:
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"FLOWCORE_SCHEDULER": "serial"}):
        ...     chosen_scheduler(""), chosen_scheduler("local")
        ('serial', 'local')
    """
    value = check_scheduler(value)
    if value:
        return value
    from_env = os.environ.get("FLOWCORE_SCHEDULER", "").strip()
    if from_env:
        try:
            return check_scheduler(from_env)
        except ValueError as err:
            raise ValueError(f"$FLOWCORE_SCHEDULER: {err}") from None
    return LOCAL


def worker_count() -> int:
    """The cores this process may use (one LocalCluster worker each)."""
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


@contextlib.contextmanager
def connect(
    scheduler: str,
    timeout: float = 5.0,
    n_workers: int | None = None,
    announce: Callable[[str], None] | None = None,
) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler`` (``None`` for ``"serial"``), closed on exit.

    ``"local"`` starts a LocalCluster on 127.0.0.1 (``n_workers`` processes, default one per core,
    one thread each) and closes it on exit. An address must answer within ``timeout`` seconds and
    have a worker within as long again, or a ``ConnectionError`` names it. ``announce`` receives one
    line with the dashboard's address.

    Example:
        >>> with connect("serial") as client:
        ...     print(client)
        None
        >>> with connect("tcp://127.0.0.1:1", timeout=0.5):
        ...     pass
        Traceback (most recent call last):
        ...
        ConnectionError: scheduler: no Dask scheduler answered at tcp://127.0.0.1:1 within 0.5 s ...
    """
    scheduler = chosen_scheduler(scheduler)
    if scheduler == SERIAL:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler == LOCAL:
        n = n_workers or worker_count()
        with (
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            if announce:
                announce(
                    f"LocalCluster of {n} worker processes, dashboard at {client.dashboard_link}"
                )
            yield client
        return
    try:
        client = Client(scheduler, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as err:
        raise ConnectionError(
            f"scheduler: no Dask scheduler answered at {scheduler} within {timeout:g} s "
            f"({type(err).__name__}: {err}). Start one with `dask scheduler` and workers with "
            f"`dask worker {scheduler}`, or use scheduler 'local' or 'serial'."
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            raise ConnectionError(
                f"scheduler: the Dask scheduler at {scheduler} has no workers after "
                f"{timeout:g} s; start some with `dask worker {scheduler}`"
            ) from None
        if announce:
            announce(
                f"Dask scheduler {scheduler} with {len(client.scheduler_info()['workers'])} "
                f"workers, dashboard at {client.dashboard_link}"
            )
        yield client
    finally:
        client.close()


#: What one job gave: ``("ok", rows)`` or ``("error", "ExceptionType: message")``.
Outcome = tuple[str, Any]


def _describe(err: BaseException) -> str:
    last = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(err).__name__}: {err}{where}"


def _run_group(
    fn: Callable[[Any], Iterable[dict]],
    prepare: Callable[[Sequence[Any]], None] | None,
    jobs: Sequence[Any],
) -> tuple[str | None, list[Outcome]]:
    """Run one task: ``prepare(jobs)`` (if given), then ``fn`` on each job; errors become outcomes.

    A failing ``prepare`` is reported, and each job still runs on its own (its ``fn`` computes what
    ``prepare`` would have), so one bad member does not sink its group.
    """
    problem = _prepared(prepare, jobs) if prepare is not None else None
    return problem, [_outcome(fn, job) for job in jobs]


def _prepared(prepare: Callable[[Sequence[Any]], None], jobs: Sequence[Any]) -> str | None:
    """``prepare(jobs)``: ``None``, or what went wrong."""
    try:
        prepare(jobs)
    except Exception as err:
        return _describe(err)
    return None


def _outcome(fn: Callable[[Any], Iterable[dict]], job: Any) -> Outcome:
    """``fn(job)``'s rows, or its error, as an :data:`Outcome`."""
    try:
        return ("ok", list(fn(job)))
    except Exception as err:
        return ("error", _describe(err))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch thread and one thread in every native thread pool (BLAS,
    OpenMP).

    The thread count changes the order of floating-point sums, and some results are sensitive to it:
    a calibration whose loss is flat in α ended at α = 3e-14 in a process with two threads and at
    1e-3 in a worker with one (limiting the BLAS pool alone did not remove the difference). Every
    job runs single-threaded wherever it runs, so the sweep's table is the same on a cluster and
    serially (tested); a serial run gives up its second core for that.
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def split_for(groups: list[list[int]], workers: int) -> list[list[int]]:
    """Halve the largest group until there are as many tasks as ``workers`` (or every group is one
    job), so that grouping never leaves workers idle. Groups only share work; splitting one changes
    no result.

    Example:
        >>> split_for([[0, 1, 2, 3, 4, 5], [6]], workers=4)
        [[6], [3, 4, 5], [0, 1], [2]]
    """
    groups = [list(g) for g in groups]
    while len(groups) < workers and max(map(len, groups), default=0) > 1:
        largest = max(groups, key=len)
        groups.remove(largest)
        half = (len(largest) + 1) // 2
        groups += [largest[:half], largest[half:]]
    return groups


def _on_worker(cache: str) -> None:
    """A worker's settings for the sweep: its cache folder, no progress bars."""
    os.environ["FLOWCORE_CACHE"] = cache
    os.environ["FLOWCORE_PROGRESS"] = "0"
    os.environ.pop("FLOWCORE_STATUS", None)  # the sweep's process reports progress, not each worker
    Path(cache).mkdir(parents=True, exist_ok=True)


def _prepare_task(prepare, jobs, cache: str) -> str | None:
    """A group's ``prepare`` on a worker, with one thread: ``None``, or what went wrong."""
    _on_worker(cache)
    with one_thread():
        return _prepared(prepare, jobs)


def _job_task(fn, job, cache: str, after: str | None = None) -> Outcome:
    """One job on a worker, with one thread. ``after`` is its group's :func:`_prepare_task` (a
    future when submitted: the job waits for it, and finds what it trained in the cache)."""
    _on_worker(cache)
    with one_thread():
        return _outcome(fn, job)


def run_tasks(
    jobs: Sequence[Any],
    fn: Callable[[Any], Iterable[dict]],
    *,
    scheduler: str = "",
    group: Callable[[Any], Hashable] | None = None,
    prepare: Callable[[Sequence[Any]], None] | None = None,
    progress: bool = False,
    description: str = "sweep",
) -> tuple[list[Outcome], list[str]]:
    """Run ``fn`` on every job where ``scheduler`` says; return each job's outcome, in job order,
    and the problems of ``prepare`` (one line per failed group).

    Jobs with the same ``group(job)`` share one ``prepare(jobs)``, which runs before any of them.
    Serially, a group's jobs then run in their order; on a cluster each job is a task that waits
    for its group's ``prepare`` task, and the largest groups are submitted first.

    Example:
        >>> def halve(x):
        ...     if x % 2:
        ...         raise ValueError(f"{x} is odd")
        ...     return [{"half": x // 2}]
        >>> run_tasks([2, 3, 4], halve, scheduler="serial")  # doctest: +NORMALIZE_WHITESPACE
        ([('ok', [{'half': 1}]),
          ('error', 'ValueError: 3 is odd (at <doctest flowcore.sweep.execution.run_tasks[0]>:3)'),
          ('ok', [{'half': 2}])], [])
    """
    jobs = list(jobs)
    where = chosen_scheduler(scheduler)
    keyed: dict[Hashable, list[int]] = {}
    for i, job in enumerate(jobs):
        keyed.setdefault(group(job) if group is not None else i, []).append(i)
    groups = list(keyed.values())
    outcomes: list[Outcome | None] = [None] * len(jobs)
    problems: list[str] = []
    cache = str(cache_dir())
    started, done = time.time(), 0
    note: dict[str, str] = {}
    bar = tqdm(total=len(jobs), desc=description, disable=not progress, leave=False)

    def finished(indices: list[int], result: tuple[str | None, list[Outcome]]) -> None:
        nonlocal done
        problem, outs = result
        if problem is not None:
            problems.append(f"{description} group of {len(indices)} jobs: {problem}")
        for i, out in zip(indices, outs):
            outcomes[i] = out
        done += len(indices)
        bar.update(len(indices))
        status.report(description, done, len(jobs), started, unit="jobs", **note)

    def announce(line: str) -> None:
        note["note"] = line
        status.report(description, 0, len(jobs), started, unit="jobs", **note)
        if progress:
            print(f"{description}: {line}", flush=True)

    status.report(description, 0, len(jobs), started, unit="jobs")
    try:
        with connect(where, announce=announce) as client:
            if client is None:
                for indices in groups:
                    with one_thread():
                        result = _run_group(fn, prepare, [jobs[i] for i in indices])
                    finished(indices, result)
            else:
                from distributed import as_completed

                groups = split_for(groups, len(client.scheduler_info()["workers"]))
                # The largest groups first (the scheduler starts tasks in the order they came): the
                # longest training starts at once instead of last, when the others would idle.
                groups.sort(key=len, reverse=True)
                token = uuid.uuid4().hex[:8]
                prepared, futures = {}, {}
                for n, indices in enumerate(groups):
                    after = None
                    if prepare is not None:
                        after = client.submit(
                            _prepare_task,
                            prepare,
                            [jobs[i] for i in indices],
                            cache,
                            key=f"{description}-prepare-{n}-{token}",
                            pure=False,
                        )
                        prepared[after] = indices
                    for i in indices:  # each job its own task: any idle worker may take it
                        future = client.submit(
                            _job_task,
                            fn,
                            jobs[i],
                            cache,
                            after,
                            key=f"{description}-{i}-{token}",
                            pure=False,
                        )
                        futures[future] = i
                for future in as_completed([*prepared, *futures]):
                    try:
                        value = future.result()
                    except Exception as err:  # the task itself failed: e.g. its workers kept dying
                        value = ("error", _describe(err))
                    if future in prepared:
                        problem = value[1] if isinstance(value, tuple) else value
                        if problem is not None:
                            problems.append(
                                f"{description} group of {len(prepared[future])} jobs: {problem}"
                            )
                    else:
                        finished([futures[future]], (None, [value]))
                    future.release()
    finally:
        bar.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            remove_orphans(Path(cache))
    assert all(o is not None for o in outcomes), "every job has an outcome"
    return outcomes, problems  # type: ignore[return-value]
