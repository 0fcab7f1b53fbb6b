r"""A sweep is a set of jobs, each a validated config under its own canonical key.

A job's :attr:`Job.key` is :func:`flowcore.cache.job_key` of its config: the same name its trained
flows and tables are cached under, so a rerun, another chapter or another worker finds them.
:func:`run` runs the jobs as tasks on Dask (:mod:`~flowcore.sweep.execution`: a LocalCluster by
default, a running cluster, or serially) and stacks their rows in job order;
:func:`summarise_over_seeds` gives each setting's mean and Student-t interval over seeds.
:mod:`~flowcore.sweep.design` builds designs over several factors at once and reads a binary outcome
per factor level.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from flowcore.cache import job_key
from flowcore.sweep.execution import check_scheduler, run_tasks
from flowcore.train import show_progress
from flowcore.validation import check_probability

__all__ = [
    "Job",
    "run",
    "failures",
    "check_scheduler",
    "summarise_over_seeds",
    "space_filling",
    "wilson_interval",
    "main_effects",
]


@dataclass(frozen=True)
class Job:
    """One run of a sweep: its labels (what varies, for the tables) and its validated config.

    Example:
        >>> from flowcore.studies.debruin2024 import ThesisConfig
        >>> a = Job({"seed": 0}, ThesisConfig().replace(n_train=1000))
        >>> a.key == Job({"seed": 0}, ThesisConfig().replace(n_train=1000.0)).key
        True
    """

    labels: Mapping[str, Any]
    config: Any = field(compare=False)

    @property
    def key(self) -> str:
        """The job id: :func:`~flowcore.cache.job_key` of the config."""
        return job_key("job", self.config)


def run(
    jobs: Sequence[Job],
    fn: Callable[[Job], Iterable[dict]],
    progress: bool | None = None,
    description: str = "sweep",
    *,
    scheduler: str = "",
    group: Callable[[Job], Hashable] | None = None,
    prepare: Callable[[Sequence[Job]], None] | None = None,
) -> pd.DataFrame:
    """Run ``fn`` on every job and stack the rows it returns, each with the job's labels, in job
    order.

    The jobs run as tasks on ``scheduler`` (:mod:`~flowcore.sweep.execution`: ``"local"``, a
    scheduler address, or ``"serial"``; ``""`` takes the pipeline's choice). Jobs with equal
    ``group(job)`` run in one task, after ``prepare(their jobs)`` (which may, say, train their flows
    together). ``fn`` and ``prepare`` travel to the workers by pickle (lambdas and closures too).

    A job that raises does not stop the others: its labels, key and error are in
    :func:`failures` (``table.attrs["failures"]``, one dict per failed job; a list, since pandas
    compares ``attrs`` when it combines tables) and a warning says so.

    Example:
        >>> jobs = [Job({"x": x}, {"x": x}) for x in (1, 2, 3)]
        >>> def square(job):
        ...     if job.config["x"] == 2:
        ...         raise ValueError("two is bad")
        ...     return [{"square": job.config["x"] ** 2}]
        >>> import warnings
        >>> with warnings.catch_warnings(record=True):
        ...     warnings.simplefilter("always")
        ...     table = run(jobs, square, progress=False, scheduler="serial")
        >>> table["square"].tolist(), failures(table)[["x", "error"]].values.tolist()
        ([1, 9], [[2, 'ValueError: two is bad (at <doctest flowcore.sweep.run[1]>:3)']])
    """
    jobs = list(jobs)
    show = show_progress() if progress is None else progress
    outcomes, problems = run_tasks(
        jobs,
        fn,
        scheduler=scheduler,
        group=group,
        prepare=prepare,
        progress=show,
        description=description,
    )
    rows, failed = [], []
    for job, (state, value) in zip(jobs, outcomes):
        if state == "ok":
            rows += [{**job.labels, **row} for row in value]
        else:
            failed.append({**job.labels, "key": job.key, "error": value})
    table = pd.DataFrame(rows)
    table.attrs["failures"] = failed
    if failed:
        listed = "; ".join(
            f"{ {k: v for k, v in f.items() if k != 'error'} }: {f['error']}" for f in failed[:5]
        )
        warnings.warn(
            f"{description}: {len(failed)} of {len(jobs)} jobs failed and are missing from the "
            f"table: {listed}",
            RuntimeWarning,
            stacklevel=2,
        )
    for problem in problems:
        warnings.warn(f"{problem}; its jobs ran one by one instead", RuntimeWarning, stacklevel=2)
    return table


def failures(table: pd.DataFrame) -> pd.DataFrame:
    """The jobs of a :func:`run` that raised: their labels, key and error, one row each (empty if
    none).

    Example:
        >>> failures(
        ...     run([Job({"x": 1}, {"x": 1})], lambda job: [{"y": 2}], progress=False,
        ...         scheduler="serial")
        ... ).empty
        True
    """
    return pd.DataFrame(table.attrs.get("failures", []))


def summarise_over_seeds(
    runs: pd.DataFrame, by: Sequence[str], value: str, confidence: float = 0.95
) -> pd.DataFrame:
    """Per group of ``by``: the mean of ``value`` over the group's rows (one per seed) with a
    two-sided Student-t confidence interval (``CI low``, ``CI high``; NaN for a single seed).

    Example:
        >>> runs = pd.DataFrame({"setting": ["a"] * 3, "metric": [1.0, 2.0, 3.0]})
        >>> (summarise_over_seeds(runs, ["setting"], "metric")[["metric", "CI low"]]
        ...  .round(2).values.tolist())
        [[2.0, -0.48]]
    """
    confidence = check_probability("confidence", confidence)

    def one(group: pd.DataFrame) -> pd.Series:
        m = group[value].to_numpy(dtype=float)
        half = (
            student_t.ppf((1 + confidence) / 2, len(m) - 1) * m.std(ddof=1) / np.sqrt(len(m))
            if len(m) > 1
            else np.nan
        )
        return pd.Series({value: m.mean(), "CI low": m.mean() - half, "CI high": m.mean() + half})

    return runs.groupby(list(by), sort=False)[[value]].apply(one).reset_index()


from flowcore.sweep.design import main_effects, space_filling, wilson_interval  # noqa: E402  (re-exported)
