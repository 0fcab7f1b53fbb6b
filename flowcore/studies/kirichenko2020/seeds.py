r"""The comparisons of the Kirichenko chapters replicated over seeds: every flow K5, K6, K7 and K9
compare, trained once per seed of ``config.seeds``, and the seed-to-seed intervals their verdicts
read.

A *replicate* is the whole experiment at one seed
(:meth:`~flowcore.studies.kirichenko2020.config.KirichenkoConfig.at_seed`): its own splits and OOD
sets, dequantisation noise, initial weights, minibatch order and bootstrap. Within a seed every flow
sees the same data, so settings are compared *paired*: per seed the difference of two settings'
numbers, then a Student-t interval over the seeds (:func:`flowcore.sweep.summarise_over_seeds`).

The flows of one seed are the jobs of a sweep (:func:`flowcore.sweep.run` on ``config.scheduler``):
one job per mask (no bottleneck), one per bottleneck size (``config.mask``), and one for the
classifier-feature flow; the job of the main flow (``config.mask``, no bottleneck) also measures
the swap test and its ceiling (K5). Each chapter runs the jobs of the flows it reads
(:func:`flows_for`): the first the masks (K5, K6) and the flows of the co-adaptation table, the
second the bottleneck sizes (K7) and the feature flow (K9). A job's row does not depend on the
other jobs of its sweep, and the flows are cached under their own keys, so the flows both chapters
read are trained once, by whichever sweep runs first, and a chapter's single-seed tables at
``config.seed`` load them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from flowcore.studies.kirichenko2020.config import MASKS, KirichenkoConfig
from flowcore.sweep import Job, run, summarise_over_seeds

__all__ = [
    "flow_names",
    "flows_for",
    "jobs",
    "replicates",
    "per_flow",
    "swap_rows",
    "pixel_vs_features",
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


def _variants(config: KirichenkoConfig) -> list[tuple[str, int | None]]:
    """The image flows of one seed, ``(mask, bottleneck size or None)``, in job order."""
    variants = [(m, None) for m in config.masks]
    variants += [
        (config.mask, size) for size in config.bottlenecks if (config.mask, size) not in variants
    ]
    return variants


def _flow_name(mask: str, size: int | None) -> str:
    return mask if size is None else f"l = {size}"


def flow_names(config: KirichenkoConfig) -> list[str]:
    """The flows of one seed of :func:`jobs`, by their label ``flow``, in job order.

    Example:
        >>> flow_names(KirichenkoConfig())
        ['checkerboard', 'horizontal', 'cycle', 'l = 32', 'l = 8', 'l = 2', 'features']
    """
    return [_flow_name(mask, size) for mask, size in _variants(config)] + ["features"]


#: What each claim (and the co-adaptation table of
#: :func:`~flowcore.studies.kirichenko2020.analysis.coadaptation_table`) reads of the sweep.
READS = ("K5", "K6", "K7", "K9", "co-adaptation")


def flows_for(config: KirichenkoConfig, reads: Iterable[str]) -> list[str]:
    """The flows (labels of :func:`flow_names`, in job order) that the named parts of the study read
    from the sweep: ``"K5"`` the main flow (``config.mask``, whose job runs the swap test); ``"K6"``
    every mask; ``"K7"`` the main mask with each bottleneck size (the main flow is the reference);
    ``"K9"`` the main flow and the feature flow; ``"co-adaptation"`` the flows of
    :func:`~flowcore.studies.kirichenko2020.analysis.coadaptation_table` (the main flow, the
    narrowest bottleneck, the cycle mask). A chapter runs :func:`replicates` on the flows of what it
    shows, so that every flow it loads was trained by the sweep, one thread, whichever chapter ran
    first.

    Example:
        >>> flows_for(KirichenkoConfig(), ["K5", "K6", "co-adaptation"])
        ['checkerboard', 'horizontal', 'cycle', 'l = 2']
        >>> flows_for(KirichenkoConfig(), ["K7", "K9"])
        ['checkerboard', 'l = 32', 'l = 8', 'l = 2', 'features']
    """
    reads = list(reads)
    unknown = [r for r in reads if r not in READS]
    if unknown:
        raise ValueError(f"reads must be among {list(READS)}, got {unknown}")
    wanted = set()
    if {"K5", "K7", "K9", "co-adaptation"} & set(reads):
        wanted.add(config.mask)
    if "K6" in reads:
        wanted.update(config.masks)
    if "K7" in reads:
        wanted.update(_flow_name(config.mask, size) for size in config.bottlenecks)
    if "K9" in reads:
        wanted.add("features")
    if "co-adaptation" in reads:
        smallest = min((b for b in config.bottlenecks if b is not None), default=None)
        if smallest is not None:
            wanted.add(_flow_name(config.mask, smallest))
        if "cycle" in config.masks and config.mask != "cycle":
            wanted.add("cycle")
    return [name for name in flow_names(config) if name in wanted]


def jobs(config: KirichenkoConfig, flows: Sequence[str] | None = None) -> list[Job]:
    """The jobs of :func:`replicates`, seed by seed: each mask of ``config.masks`` without a
    bottleneck, each bottleneck size of ``config.bottlenecks`` with ``config.mask`` (the flow both
    lists hold is one job), and the feature flow; with ``flows`` (labels of :func:`flow_names`),
    only those.

    Example:
        >>> [j.labels["flow"] for j in jobs(KirichenkoConfig(seeds=[0, 1]))][:7]
        ['checkerboard', 'horizontal', 'cycle', 'l = 32', 'l = 8', 'l = 2', 'features']
        >>> len(jobs(KirichenkoConfig(seeds=[0, 1])))
        14
        >>> picked = jobs(KirichenkoConfig(seeds=[0, 1]), ["l = 2"])
        >>> [(j.labels["seed"], j.labels["flow"]) for j in picked]
        [(0, 'l = 2'), (1, 'l = 2')]
    """
    names = flow_names(config)
    if flows is not None:
        unknown = [f for f in flows if f not in names]
        if unknown:
            raise ValueError(f"flows must be among {names}, got {unknown}")
    keep = set(names if flows is None else flows)
    out = []
    for seed in config.seeds:
        replicate = config.at_seed(seed)
        for mask, size in _variants(config):
            name = _flow_name(mask, size)
            if name not in keep:
                continue
            out.append(
                Job(
                    {"seed": seed, "flow": name, "mask": mask, "l": bottleneck_label(size)},
                    {"config": replicate, "mask": mask, "bottleneck": size},
                )
            )
        if "features" in keep:
            out.append(
                Job(
                    {"seed": seed, "flow": "features", "mask": "", "l": ""},
                    {"config": replicate, "features": True},
                )
            )
    return out


def _run_job(job: Job) -> list[dict]:
    """One flow of one seed: its test bits/dim and AUROC per OOD set (and the swap test for the main
    flow)."""
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


def replicates(
    config: KirichenkoConfig, progress: bool | None = None, flows: Sequence[str] | None = None
) -> pd.DataFrame:
    """Every flow of :func:`jobs` (with ``flows``, those; e.g. :func:`flows_for`) trained (or
    loaded) and scored: one row per (seed, flow) with ``test bits/dim``, ``mean AUROC`` and
    ``AUROC <set>`` per OOD set, and for the main flow the swap test's ``R² layer 2``,
    ``R² layer 2, swapped`` and ``ceiling``. The jobs run as a sweep on ``config.scheduler``; a
    job's row does not depend on the other jobs of the sweep."""
    return run(
        jobs(config, flows),
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
    """Per pair ``(a, b)`` of ``key`` values: the paired difference ``value(b) − value(a)`` per
    seed, its mean over the seeds where both are finite, and its Student-t 95% interval (NaN with
    one seed).

    Returns:
        Columns ``comparison`` (``"b − a"``), ``difference``, ``CI low``, ``CI high``, ``seeds``, in
        the order of ``pairs``.

    Example:
        >>> runs = pd.DataFrame({"flow": ["a", "b"] * 3, "seed": [0, 0, 1, 1, 2, 2],
        ...                      "x": [0.5, 0.6, 0.4, 0.6, 0.5, 0.8]})
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
                f"pairs must name {key} values of runs; {(a, b)!r} is not among "
                f"{list(wide.columns)}"
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
        >>> runs = pd.DataFrame({"flow": ["checkerboard", "cycle"] * 2, "seed": [0, 0, 1, 1],
        ...                      "mean AUROC": [0.5, 0.7, 0.5, 0.6]})
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
        >>> runs = pd.DataFrame({"mask": ["checkerboard"] * 6, "l": ["none", "32", "2"] * 2,
        ...                      "seed": [0] * 3 + [1] * 3,
        ...                      "mean AUROC": [0.5, 0.55, 0.7, 0.5, 0.5, 0.6]})
        >>> table = bottleneck_differences(runs, "checkerboard")
        >>> table[["comparison", "difference"]].round(3).values.tolist()
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
            f"runs must hold at least two bottleneck sizes with the mask {mask!r} to compare them, "
            f"got {sizes}"
        )
    return differences(rows, value, [(sizes[0], label) for label in sizes[1:]], key="l")


def swap_drops(runs: pd.DataFrame, flow: str) -> pd.DataFrame:
    """K5 over seeds, for the rows of ``flow``: the R² the swap costs the second coupling
    (``R² layer 2 − R² layer 2, swapped``) and its R² beyond the ceiling (``R² layer 2 − ceiling``),
    each as :func:`over_seeds` gives it (rows ``"drop"`` and ``"over ceiling"``, columns ``value``,
    ``CI low``, ``CI high``, ``seeds``).

    Example:
        >>> runs = pd.DataFrame({"flow": "a", "seed": [0, 1], "R² layer 2": [0.5, 0.6],
        ...                      "R² layer 2, swapped": [0.2, 0.3], "ceiling": [0.4, 0.4]})
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


def per_flow(runs: pd.DataFrame, flows: Sequence[str]) -> pd.DataFrame:
    """Per flow of ``flows`` (in the order of ``runs``): the mean over seeds of ``mean AUROC`` and
    of ``test bits/dim``, each with its Student-t 95% interval and number of seeds
    (:func:`over_seeds`; the columns ``CI low``, ``CI high`` and ``seeds`` suffixed `` AUROC`` and
    `` bits/dim``).

    Example:
        >>> runs = pd.DataFrame({"flow": ["a", "b"] * 2, "seed": [0, 0, 1, 1],
        ...                      "mean AUROC": [0.4, 0.6, 0.6, 0.8],
        ...                      "test bits/dim": [1.0, 2.0, 1.0, 2.0]})
        >>> out = per_flow(runs, ["b"])
        >>> out[["mean AUROC", "test bits/dim", "seeds AUROC"]].round(2).values.tolist()
        [[0.7, 2.0, 2.0]]
    """
    rows = runs[runs["flow"].isin(list(flows))]
    if rows.empty:
        raise ValueError(f"runs has no rows of the flows {list(flows)}")
    return (
        over_seeds(rows, "mean AUROC")
        .merge(over_seeds(rows, "test bits/dim"), on="flow", suffixes=(" AUROC", " bits/dim"))
        .set_index("flow")
    )


#: The columns of the swap test in a :func:`replicates` row of the main flow.
SWAP_COLUMNS = ("R² layer 1", "R² layer 2", "R² layer 2, swapped", "ceiling")


def swap_rows(runs: pd.DataFrame, flow: str) -> pd.DataFrame:
    """The swap test of ``flow`` per seed: :data:`SWAP_COLUMNS`, indexed by seed.

    Example:
        >>> runs = pd.DataFrame({"flow": ["a", "b"], "seed": [0, 0], "R² layer 1": [0.1, 0.2],
        ...                      "R² layer 2": [0.5, 0.6],
        ...                      "R² layer 2, swapped": [0.2, 0.3], "ceiling": [0.4, 0.4]})
        >>> swap_rows(runs, "b").values.tolist()
        [[0.2, 0.6, 0.3, 0.4]]
    """
    rows = runs[runs["flow"] == flow]
    if rows.empty:
        raise ValueError(f"runs has no rows of the flow {flow!r}")
    return rows[["seed", *SWAP_COLUMNS]].set_index("seed")


def pixel_vs_features(runs: pd.DataFrame, flow: str) -> pd.DataFrame:
    """K9's table: the AUROC per OOD set (rows) of the pixel flow ``flow`` and of the feature flow
    (columns), each the mean over its seeds.

    Example:
        >>> runs = pd.DataFrame({"flow": ["a", "features"] * 2, "seed": [0, 0, 1, 1],
        ...                      "AUROC class 1": [0.2, 0.9, 0.4, 1.0],
        ...                      "mean AUROC": [0.3, 0.9, 0.5, 0.9]})
        >>> pixel_vs_features(runs, "a").round(2).to_dict()
        {'a': {'class 1': 0.3}, 'features': {'class 1': 0.95}}
    """
    rows = runs[runs["flow"].isin([flow, "features"])]
    if set(rows["flow"]) != {flow, "features"}:
        raise ValueError(f"runs must hold rows of the pixel flow {flow!r} and of 'features'")
    set_columns = [c for c in rows.columns if c.startswith("AUROC ")]
    return (
        rows.groupby("flow")[set_columns]
        .mean()
        .rename(columns=lambda c: c.removeprefix("AUROC "))
        .T
    )
