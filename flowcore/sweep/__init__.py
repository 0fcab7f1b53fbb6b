r"""A sweep is a set of jobs, each a validated config under its own canonical key.

A job's :attr:`Job.key` is :func:`flowcore.cache.job_key` of its config: the same name its trained
flows and tables are cached under, so a rerun, another chapter or another worker finds them.
:func:`run` runs the jobs one after another in a fixed order; :func:`summarise_over_seeds` gives
each setting's mean and Student-t interval over seeds. :mod:`~flowcore.sweep.design` builds
designs over several factors at once and reads a binary outcome per factor level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from tqdm.auto import tqdm

from flowcore.cache import job_key
from flowcore.train import show_progress
from flowcore.validation import check_probability

__all__ = ["Job", "run", "summarise_over_seeds", "space_filling", "wilson_interval", "main_effects"]


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


def run(jobs: Sequence[Job], fn: Callable[[Job], Iterable[dict]], progress: bool | None = None, description: str = "sweep") -> pd.DataFrame:
    """Run ``fn`` on every job in order and stack the rows it returns, each with the job's labels.

    Example:
        >>> jobs = [Job({"x": x}, {"x": x}) for x in (1, 2)]
        >>> run(jobs, lambda job: [{"square": job.config["x"] ** 2}], progress=False)["square"].tolist()
        [1, 4]
    """
    show = show_progress() if progress is None else progress
    rows = []
    for job in tqdm(jobs, desc=description, disable=not show, leave=False):
        rows += [{**job.labels, **row} for row in fn(job)]
    return pd.DataFrame(rows)


def summarise_over_seeds(runs: pd.DataFrame, by: Sequence[str], value: str, confidence: float = 0.95) -> pd.DataFrame:
    """Per group of ``by``: the mean of ``value`` over the group's rows (one per seed) with a two-sided
    Student-t confidence interval (``CI low``, ``CI high``; NaN for a single seed).

    Example:
        >>> runs = pd.DataFrame({"setting": ["a"] * 3, "metric": [1.0, 2.0, 3.0]})
        >>> summarise_over_seeds(runs, ["setting"], "metric")[["metric", "CI low"]].round(2).values.tolist()
        [[2.0, -0.48]]
    """
    confidence = check_probability("confidence", confidence)

    def one(group: pd.DataFrame) -> pd.Series:
        m = group[value].to_numpy(dtype=float)
        half = student_t.ppf((1 + confidence) / 2, len(m) - 1) * m.std(ddof=1) / np.sqrt(len(m)) if len(m) > 1 else np.nan
        return pd.Series({value: m.mean(), "CI low": m.mean() - half, "CI high": m.mean() + half})

    return runs.groupby(list(by), sort=False)[[value]].apply(one).reset_index()


from flowcore.sweep.design import main_effects, space_filling, wilson_interval  # noqa: E402  (re-exported)
