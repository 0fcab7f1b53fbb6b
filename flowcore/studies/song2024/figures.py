r"""The Song et al. (2024) chapter's figures, each returned as a matplotlib
:class:`~matplotlib.figure.Figure`.

- :func:`fig2_densities` — Fig. 2 in one dimension: the L2- and KL-regularised fits of one sample.
- :func:`linear_heatmaps` — the linear experiment: median KL(p‖fit) per N/d and α, one panel per r.
- :func:`deep_panels` — KLJ on deep flows: KL*(p‖pθ) per γ with its interval, per truth and r.
- :func:`example_images` — the class-conditional analogue's test images and OOD sets, per data set.
- :func:`klj_change_panels` — the change KLJ makes to each metric, with its paired interval.

KL divergences are in nats; every axis is labelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from flowcore.studies.song2024 import linear
from flowcore.studies.song2024.deep import DATASETS
from flowcore.studies.song2024.digits import ClassImages

__all__ = [
    "fig2_densities",
    "linear_heatmaps",
    "deep_panels",
    "example_images",
    "klj_change_panels",
]


def fig2_densities(
    delta: float = 4.0,
    alphas: Sequence[float] = linear.FIG2_ALPHAS,
    n: int = linear.FIG2_N,
    seed: int = 0,
    xs: np.ndarray | None = None,
) -> Figure:
    """Fig. 2 in one dimension: a sample of ``n`` points with variance ``delta``
    (:func:`~flowcore.studies.song2024.linear.fig2_sample`) fitted with L2 (left) and KL
    (right, G = :data:`~flowcore.studies.song2024.linear.FIG2_G`) regularisation, one density per
    α of ``alphas`` (in pseudo-samples), on ``xs`` (default: 400 points on [−6, 6]).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> fig = fig2_densities()
        >>> [(len(ax.lines), ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]
        [(4, 'x', 'fitted density'), (4, 'x', 'fitted density')]
        >>> plt.close(fig)
    """
    xs = np.linspace(-6, 6, 400) if xs is None else xs
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    data = linear.fig2_sample(delta, n=n, seed=seed)
    for ax, kind in zip(axes, ("l2", "kl")):
        for a in alphas:
            ax.plot(
                xs,
                linear.density_1d(xs, kind, a, data, None if kind == "l2" else linear.FIG2_G),
                label=f"α = {a:g}",
            )
        ax.set_title(f"{kind.upper()} regularisation, δ = {delta:g}, N = {n}", fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylabel("fitted density")
        ax.legend(fontsize=7)
    return fig


def linear_heatmaps(summary: pd.DataFrame, outlier_fractions: Sequence[float]) -> Figure:
    """The linear experiment: per outlier fraction r of ``outlier_fractions``, a panel of the
    log10 median KL(p‖fit) (nats) of :func:`~flowcore.studies.song2024.analysis.linear_summary`
    over N/d (columns) and α (rows); cells where the MLE does not exist are blank.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> summary = pd.DataFrame({"r": [0.0] * 4, "N/d": [0.5, 0.5, 2.0, 2.0],
        ...                         "α": [0.0, 1.0] * 2,
        ...                         "median KL": [np.inf, 2.0, 0.5, 0.4]})
        >>> fig = linear_heatmaps(summary, [0.0])
        >>> ax = fig.axes[0]
        >>> ax.get_xlabel(), ax.get_ylabel(), ax.get_title(), fig.axes[1].get_ylabel()[:24]
        ('N/d', 'α (pseudo-samples)', 'r = 0', 'log10 median KL(p‖fit) (')
        >>> plt.close(fig)
    """
    fig, axes = plt.subplots(
        1,
        len(outlier_fractions),
        figsize=(3.2 * len(outlier_fractions), 3.2),
        layout="constrained",
        squeeze=False,
    )
    for ax, r in zip(axes[0], outlier_fractions):
        cell = summary[np.isclose(summary["r"], r)].pivot(
            index="α", columns="N/d", values="median KL"
        )
        shown = np.log10(cell.replace(np.inf, np.nan).to_numpy())
        im = ax.imshow(shown, aspect="auto", cmap="viridis_r", origin="lower")
        ax.set_xticks(range(cell.shape[1]), [f"{v:g}" for v in cell.columns], fontsize=7)
        ax.set_yticks(range(cell.shape[0]), [f"{v:g}" for v in cell.index], fontsize=7)
        ax.set_xlabel("N/d")
        ax.set_ylabel("α (pseudo-samples)")
        ax.set_title(f"r = {r:g}", fontsize=9)
    fig.colorbar(im, ax=axes[0, -1], label="log10 median KL(p‖fit) (nats); blank: MLE undefined")
    return fig


def deep_panels(
    summary: pd.DataFrame,
    outlier_fractions: Sequence[float],
    datasets: Sequence[str] = DATASETS,
) -> Figure:
    """KLJ on deep flows without weight decay: per truth of ``datasets`` (rows) and outlier fraction
    r (columns), the mean KL*(p‖pθ) (nats, log scale) over seeds with its interval, against the KLJ
    weight γ, one line per N (:func:`~flowcore.studies.song2024.deep.summarise`).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> summary = pd.DataFrame({"dataset": "moons", "r": 0.0, "weight_decay": 0.0, "N": 100,
        ...                         "klj_weight": [0.0, 0.1], "KL*(p‖pθ)": [0.2, 0.1],
        ...                         "CI low": [0.1, 0.05], "CI high": [0.3, 0.2]})
        >>> fig = deep_panels(summary, [0.0], ["moons"])
        >>> ax = fig.axes[0]
        >>> ax.get_xlabel(), ax.get_ylabel(), ax.get_title(), ax.get_yscale()
        ('klj_weight γ', 'KL*(p‖pθ) (nats, log scale)', 'moons, r = 0', 'log')
        >>> plt.close(fig)
    """
    fig, axes = plt.subplots(
        len(datasets),
        len(outlier_fractions),
        figsize=(4.6 * len(outlier_fractions), 3.2 * len(datasets)),
        layout="constrained",
        squeeze=False,
    )
    gammas = sorted(summary["klj_weight"].unique())
    for i, ds in enumerate(datasets):
        for j, r in enumerate(outlier_fractions):
            ax = axes[i, j]
            rows = summary[
                (summary["dataset"] == ds)
                & np.isclose(summary["r"], r)
                & (summary["weight_decay"] == 0)
            ]
            for n, g in rows.groupby("N"):
                g = g.sort_values("klj_weight")
                x = np.arange(len(g))
                ax.errorbar(
                    x,
                    g["KL*(p‖pθ)"],
                    yerr=[g["KL*(p‖pθ)"] - g["CI low"], g["CI high"] - g["KL*(p‖pθ)"]],
                    marker="o",
                    capsize=2,
                    label=f"N = {n}",
                )
            ax.set_xticks(np.arange(len(gammas)), [f"{k:g}" for k in gammas])
            ax.set_yscale("log")
            ax.set_xlabel("klj_weight γ")
            ax.set_ylabel("KL*(p‖pθ) (nats, log scale)")
            ax.set_title(f"{ds}, r = {r:g}", fontsize=9)
            ax.legend(fontsize=7)
    return fig


def example_images(inputs: Mapping[str, ClassImages], n: int = 8) -> Figure:
    """Per in-distribution data set (rows, labelled by the keys of ``inputs``), the first ``n``
    test images and the first ``n`` of each OOD set (columns), each set a mosaic of two rows, pixel
    values 0 (black) to ``levels − 1`` (white).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> x, y = np.arange(8).reshape(2, 4) % 4, np.array([0, 1])
        >>> inputs = ClassImages({"train": x, "val": x, "test": x},
        ...                      {"train": y, "val": y, "test": y}, {"noise": x}, (0, 1), 4)
        >>> fig = example_images({"toy": inputs}, n=2)
        >>> [ax.get_title() for ax in fig.axes], fig.axes[0].get_ylabel()
        (['test (in-distribution)', 'noise'], 'toy')
        >>> plt.close(fig)
    """
    rows = list(inputs.items())
    width = 1 + max(len(data.ood) for _, data in rows)
    fig, axes = plt.subplots(
        len(rows),
        width,
        figsize=(2.2 * width, 1.4 * len(rows)),
        layout="constrained",
        squeeze=False,
    )
    for i, (label, data) in enumerate(rows):
        sets = {"test (in-distribution)": data.splits["test"], **data.ood}
        for j in range(width):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(sets):
                ax.set_axis_off()
                continue
            name, images = list(sets.items())[j]
            k = min(n, len(images))
            tiles = images[:k].reshape(k, data.side, data.side)
            tiles = np.concatenate([tiles, np.zeros((-k % 2, data.side, data.side))])
            half = len(tiles) // 2 if len(tiles) > 1 else 1
            mosaic = np.vstack(
                [np.hstack(list(row)) for row in tiles.reshape(-1, half, data.side, data.side)]
            )
            ax.imshow(mosaic, cmap="gray", vmin=0, vmax=data.levels - 1)
            ax.set_title(name, fontsize=8)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    return fig


def klj_change_panels(changes: Mapping[str, pd.DataFrame], effect: float) -> Figure:
    """Per data set (panels, titled by the keys of ``changes``), the change KLJ makes to each
    metric (KLJ − plain, :func:`~flowcore.studies.song2024.digits.klj_changes`) with its paired
    interval, one series per training condition, and the band of changes within ``± effect``.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> changes = pd.DataFrame({"data": "clean", "metric": ["accuracy", "mean AUROC"],
        ...                         "change": [-0.02, 0.05], "CI low": [-0.04, 0.01],
        ...                         "CI high": [0.0, 0.09]})
        >>> fig = klj_change_panels({"MNIST": changes}, effect=0.01)
        >>> ax = fig.axes[0]
        >>> ax.get_title(), ax.get_ylabel()
        ('MNIST', 'KLJ − plain (accuracy or AUROC)')
        >>> plt.close(fig)
    """
    fig, axes = plt.subplots(
        1, len(changes), figsize=(5.2 * len(changes), 3.4), layout="constrained", squeeze=False
    )
    for ax, (title, frame) in zip(axes[0], changes.items()):
        metrics = list(dict.fromkeys(frame["metric"]))
        conditions = list(dict.fromkeys(frame["data"]))
        step = 0.7 / max(len(conditions), 1)
        ax.axhspan(-effect, effect, color="0.85", label=f"|change| ≤ {effect:g}")
        ax.axhline(0.0, color="0.4", linewidth=0.8)
        for k, condition in enumerate(conditions):
            rows = frame[frame["data"] == condition].set_index("metric").loc[metrics]
            x = np.arange(len(metrics)) + (k - (len(conditions) - 1) / 2) * step
            ax.errorbar(
                x,
                rows["change"],
                yerr=[rows["change"] - rows["CI low"], rows["CI high"] - rows["change"]],
                fmt="o",
                capsize=2,
                label=condition,
            )
        ax.set_xticks(
            np.arange(len(metrics)), [m.removeprefix("AUROC ") for m in metrics], fontsize=7
        )
        ax.set_xlabel("metric (AUROC of the test images against each OOD set)")
        ax.set_ylabel("KLJ − plain (accuracy or AUROC)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    return fig
