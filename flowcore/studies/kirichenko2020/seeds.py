r"""The comparisons of the chapter replicated over seeds: every flow K5, K6, K7 and K9 compare, trained
once per seed of ``config.seeds``, and the seed-to-seed intervals their verdicts read.

A *replicate* is the whole experiment at one seed (:meth:`~flowcore.studies.kirichenko2020.config.KirichenkoConfig.at_seed`):
its own splits and OOD sets, dequantisation noise, initial weights, minibatch order and bootstrap.
Within a seed every flow sees the same data, so settings are compared *paired*: per seed the
difference of two settings' numbers, then a Student-t interval over the seeds
(:func:`flowcore.sweep.summarise_over_seeds`).

The flows of one seed are the jobs of a sweep (:func:`flowcore.sweep.run` on ``config.scheduler``):
one job per mask (no bottleneck), one per bottleneck size (``config.mask``), and one for the
classifier-feature flow; the job of the main flow (``config.mask``, no bottleneck) also measures
the swap test and its ceiling (K5). The flows are cached, so the chapter's single-seed tables at
``config.seed`` load them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from flowcore.studies.kirichenko2020.config import MASKS, KirichenkoConfig
from flowcore.sweep import Job, run, summarise_over_seeds

__all__ = [
    "jobs",
    "replicates",
    "differences",
    "over_seeds",
    "bottleneck_label",
    "mask_differences",
    "bottleneck_differences",
    "swap_drops",
]


def bottleneck_label(size: int | None) -> str:
    """The label of a bottleneck size in the tables: ``"none"`` or the size.

    Example:
        >>> bottleneck_label(None), bottleneck_label(8)
        ('none', '8')
    """
    return "none" if size is None else str(size)


def jobs(config: KirichenkoConfig) -> list[Job]:
    """The jobs of :func:`replicates`, seed by seed: each mask of ``config.masks`` without a
    bottleneck, each bottleneck size of ``config.bottlenecks`` with ``config.mask`` (the flow both
    lists hold is one job), and the feature flow.

    Example:
        >>> [j.labels["flow"] for j in jobs(KirichenkoConfig(seeds=[0, 1]))][:7]
        ['checkerboard', 'horizontal', 'cycle', 'l = 32', 'l = 8', 'l = 2', 'features']
        >>> len(jobs(KirichenkoConfig(seeds=[0, 1])))
        14
    """
    variants = [(m, None) for m in config.masks]
    variants += [
        (config.mask, size) for size in config.bottlenecks if (config.mask, size) not in variants
    ]
    out = []
    for seed in config.seeds:
        replicate = config.at_seed(seed)
        for mask, size in variants:
            name = mask if size is None else f"l = {size}"
            out.append(
                Job(
                    {"seed": seed, "flow": name, "mask": mask, "l": bottleneck_label(size)},
                    {"config": replicate, "mask": mask, "bottleneck": size},
                )
            )
        out.append(
            Job(
                {"seed": seed, "flow": "features", "mask": "", "l": ""},
                {"config": replicate, "features": True},
            )
        )
    return out


def _run_job(job: Job) -> list[dict]:
    """One flow of one seed: its test bits/dim and AUROC per OOD set (and the swap test for the main flow)."""
    from flowcore.studies.kirichenko2020 import analysis, experiments

    config: KirichenkoConfig = job.config["config"]
    d = experiments.digits(config)
    if job.config.get("features"):
        table = analysis.feature_flow(config, d, progress=False)
        return [
            {
                "mean AUROC": analysis.ood_summary(table),
                **{f"AUROC {k}": v for k, v in table["AUROC"].dropna().items()},
            }
        ]
    mask, size = job.config["mask"], job.config["bottleneck"]
    flow = experiments.trained_image_flow(config, mask=mask, bottleneck=size, progress=False).flow
    table = experiments.auroc_table(
        config, experiments.score_sets(config, flow, analysis.scored_sets(d))
    )
    row = {
        "test bits/dim": table.loc["test", "bits/dim"],
        "train bits/dim": table.loc["train", "bits/dim"],
        "mean AUROC": analysis.ood_summary(table),
        **{f"AUROC {k}": v for k, v in table["AUROC"].dropna().items()},
    }
    if mask == config.mask and size is None:
        row.update(analysis.swap_test(config, flow, d))
    return [row]


def replicates(config: KirichenkoConfig, progress: bool | None = None) -> pd.DataFrame:
    """Every flow of :func:`jobs` trained (or loaded) and scored: one row per (seed, flow) with
    ``test bits/dim``, ``mean AUROC`` and ``AUROC <set>`` per OOD set, and for the main flow the
    swap test's ``R² layer 2``, ``R² layer 2, swapped`` and ``ceiling``. The jobs run as a sweep
    on ``config.scheduler``."""
    return run(
        jobs(config),
        _run_job,
        progress=progress,
        description="flows over seeds",
        scheduler=config.scheduler,
    )


def over_seeds(runs: pd.DataFrame, value: str, by: Sequence[str] = ("flow",)) -> pd.DataFrame:
    """Per group of ``by``: the mean of ``value`` over seeds with its Student-t 95% interval and the
    number of seeds (rows whose ``value`` is NaN drop out).

    Example:
        >>> runs = pd.DataFrame({"flow": ["a"] * 3, "seed": [0, 1, 2], "x": [1.0, 2.0, 3.0]})
        >>> over_seeds(runs, "x").round(2).values.tolist()
        [['a', 2.0, -0.48, 4.48, 3]]
    """
    if value not in runs.columns:
        raise ValueError(
            f"value must be a column of runs, got {value!r}; columns: {list(runs.columns)}"
        )
    kept = runs[np.isfinite(runs[value].to_numpy(dtype=float))]
    counts = kept.groupby(list(by), sort=False).size().rename("seeds").reset_index()
    return summarise_over_seeds(kept, by, value).merge(counts, on=list(by))


def differences(
    runs: pd.DataFrame, value: str, pairs: Sequence[tuple[str, str]], key: str = "flow"
) -> pd.DataFrame:
    """Per pair ``(a, b)`` of ``key`` values: the paired difference ``value(b) − value(a)`` per seed,
    its mean over the seeds where both are finite, and its Student-t 95% interval (NaN with one seed).

    Returns:
        Columns ``comparison`` (``"b − a"``), ``difference``, ``CI low``, ``CI high``, ``seeds``, in
        the order of ``pairs``.

    Example:
        >>> runs = pd.DataFrame({"flow": ["a", "b"] * 3, "seed": [0, 0, 1, 1, 2, 2], "x": [0.5, 0.6, 0.4, 0.6, 0.5, 0.8]})
        >>> differences(runs, "x", [("a", "b")]).round(3).values.tolist()
        [['b − a', 0.2, -0.048, 0.448, 3]]
    """
    if not pairs:
        raise ValueError("pairs must hold at least one (a, b) pair")
    missing = sorted({key, "seed", value} - set(runs.columns))
    if missing:
        raise ValueError(f"runs lacks the columns {missing}")
    wide = runs.pivot_table(index="seed", columns=key, values=value, aggfunc="first")
    rows = []
    for a, b in pairs:
        if a not in wide.columns or b not in wide.columns:
            raise ValueError(
                f"pairs must name {key} values of runs; {(a, b)!r} is not among {list(wide.columns)}"
            )
        diff = (wide[b] - wide[a]).dropna()
        rows += [{"comparison": f"{b} − {a}", "seed": s, "difference": v} for s, v in diff.items()]
    labels = [f"{b} − {a}" for a, b in pairs]
    if not rows:
        return pd.DataFrame(
            {
                "comparison": labels,
                "difference": np.nan,
                "CI low": np.nan,
                "CI high": np.nan,
                "seeds": 0,
            }
        )
    out = over_seeds(pd.DataFrame(rows), "difference", ["comparison"])
    return (
        out.set_index("comparison")
        .reindex(labels)
        .fillna({"seeds": 0})
        .astype({"seeds": int})
        .reset_index()
    )


def mask_differences(runs: pd.DataFrame, value: str = "mean AUROC") -> pd.DataFrame:
    """K6's comparisons: :func:`differences` of ``value`` between consecutive masks in the paper's
    order (checkerboard, horizontal, cycle; those in ``runs["flow"]``), later minus earlier.

    Example:
        >>> runs = pd.DataFrame({"flow": ["checkerboard", "cycle"] * 2, "seed": [0, 0, 1, 1], "mean AUROC": [0.5, 0.7, 0.5, 0.6]})
        >>> mask_differences(runs)[["comparison", "difference"]].round(2).values.tolist()
        [['cycle − checkerboard', 0.15]]
    """
    order = [m for m in MASKS if m in set(runs["flow"])]
    if len(order) < 2:
        raise ValueError(
            f"runs must hold at least two of the masks {MASKS} to compare them, got {order}"
        )
    return differences(runs, value, list(zip(order, order[1:])))


def bottleneck_differences(
    runs: pd.DataFrame, mask: str, value: str = "mean AUROC"
) -> pd.DataFrame:
    """K7's comparisons: among the flows with ``mask`` and a bottleneck label ``l`` (``"none"`` or a
    size), :func:`differences` of ``value`` between each size and the reference, the flow without a
    bottleneck (else the widest), from the widest to the narrowest (which comes last).

    Example:
        >>> runs = pd.DataFrame({"mask": ["checkerboard"] * 6, "l": ["none", "32", "2"] * 2, "seed": [0] * 3 + [1] * 3,
        ...                      "mean AUROC": [0.5, 0.55, 0.7, 0.5, 0.5, 0.6]})
        >>> bottleneck_differences(runs, "checkerboard")[["comparison", "difference"]].round(3).values.tolist()
        [['32 − none', 0.025], ['2 − none', 0.15]]
    """
    rows = runs[(runs["mask"] == mask) & (runs["l"] != "")]
    sizes = sorted(
        dict.fromkeys(rows["l"]),
        key=lambda label: np.inf if label == "none" else float(label),
        reverse=True,
    )
    if len(sizes) < 2:
        raise ValueError(
            f"runs must hold at least two bottleneck sizes with the mask {mask!r} to compare them, got {sizes}"
        )
    return differences(rows, value, [(sizes[0], label) for label in sizes[1:]], key="l")


def swap_drops(runs: pd.DataFrame, flow: str) -> pd.DataFrame:
    """K5 over seeds, for the rows of ``flow``: the R² the swap costs the second coupling
    (``R² layer 2 − R² layer 2, swapped``) and its R² beyond the ceiling (``R² layer 2 − ceiling``),
    each as :func:`over_seeds` gives it (rows ``"drop"`` and ``"over ceiling"``, columns ``value``,
    ``CI low``, ``CI high``, ``seeds``).

    Example:
        >>> runs = pd.DataFrame({"flow": "a", "seed": [0, 1], "R² layer 2": [0.5, 0.6], "R² layer 2, swapped": [0.2, 0.3], "ceiling": [0.4, 0.4]})
        >>> swap_drops(runs, "a").round(2).loc[:, ["value", "seeds"]].values.tolist()
        [[0.3, 2.0], [0.15, 2.0]]
    """
    rows = runs[runs["flow"] == flow]
    if rows.empty:
        raise ValueError(f"runs has no rows of the flow {flow!r}")
    rows = rows.assign(
        **{
            "drop": rows["R² layer 2"] - rows["R² layer 2, swapped"],
            "over ceiling": rows["R² layer 2"] - rows["ceiling"],
        }
    )
    out = {
        name: over_seeds(rows, name).iloc[0].rename({name: "value"})
        for name in ("drop", "over ceiling")
    }
    return pd.DataFrame(out).T[["value", "CI low", "CI high", "seeds"]].astype(float)
