r"""The Song et al. (2024) chapter's figures, each returned as a matplotlib
:class:`~matplotlib.figure.Figure`.

- :func:`fig2_densities` — Fig. 2 in one dimension: the L2- and KL-regularised fits of one sample.
- :func:`linear_heatmaps` — the linear experiment: median KL(p‖fit) per N/d and α, one panel per r.
- :func:`deep_panels` — KLJ on deep flows: KL*(p‖pθ) per γ with its interval, per truth and r.

KL divergences are in nats; every axis is labelled.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from flowcore.studies.song2024 import linear
from flowcore.studies.song2024.deep import DATASETS

__all__ = ["fig2_densities", "linear_heatmaps", "deep_panels"]


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
