r"""The book's figure types. Log-likelihoods are in nats; every axis is labelled.

Colours are fixed by role so figures read the same across chapters: the model
:math:`\log p_\theta` is blue, the truth :math:`\log p` orange, the maximum-likelihood
Gaussian control grey.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator

from flowcore.estimators import kde, kde_grid
from flowcore.train import History

__all__ = [
    "STYLE",
    "MEMBER_STYLE",
    "plot_kdes",
    "kde_panels",
    "training_curves",
    "member_kdes",
    "member_grid",
    "versus_s",
    "heatmaps",
    "sweep_panels",
    "model_panels",
    "effect_panels",
    "compare_configs",
]

#: Line style per curve label: the model in blue, the truth in orange, the nulls p̂ grey and the
#: untrained flow green.
STYLE = {
    "model": {"color": "tab:blue", "label": r"model $\log p_\theta$"},
    "truth": {"color": "tab:orange", "label": r"truth $\log p$"},
    "gaussian": {"color": "tab:gray", "label": r"ML Gaussian $\log \hat p$"},
    "untrained": {"color": "tab:green", "label": r"untrained flow $\log p_{\theta_0}$"},
}
#: The style of each model a sweep table names
#: (``flowcore.studies.debruin2024.sensitivity.MODELS``).
_SWEEP_STYLE = {"RealNVP": "model", "ML Gaussian p̂": "gaussian", "untrained RealNVP": "untrained"}


def plot_kdes(
    ax: Axes,
    curves: Mapping[str, np.ndarray],
    title: str = "",
    styles: Mapping[str, dict] | None = None,
) -> Axes:
    """Draw the KDE of each array in ``curves`` on ``ax``, on one common grid.

    ``curves`` maps a key of :data:`STYLE` (or of ``styles``) to log-likelihood values.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from flowcore.rng import numpy_stream
        >>> x = numpy_stream(0).standard_normal(500)
        >>> fig, ax = plt.subplots()
        >>> ax = plot_kdes(ax, {"model": x, "truth": x + 0.1}, title="D = 2")
        >>> len(ax.lines), ax.get_title(), ax.get_xlabel()
        (2, 'D = 2', 'log-likelihood (nats)')
        >>> plt.close(fig)
    """
    styles = {**STYLE, **(styles or {})}
    grid = kde_grid(*curves.values())
    for key, values in curves.items():
        style = dict(styles.get(key, {"label": key}))
        ax.plot(grid, kde(values, grid), lw=1.6, **style)
    ax.set_xlabel("log-likelihood (nats)")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


def _panel_grid(
    n: int, ncols: int, width: float = 4.2, height: float = 3.2
) -> tuple[Figure, np.ndarray]:
    """A figure with ``n`` visible axes in rows of ``ncols``; the spare cells of the last row are
    hidden."""
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat[:n]


def _shared_legend(fig: Figure, ax: Axes) -> None:
    """One legend below all panels, from the handles of ``ax``."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)


def kde_panels(panels: Mapping[str, Mapping[str, np.ndarray]], ncols: int = 2) -> Figure:
    """One :func:`plot_kdes` panel per entry of ``panels`` (title -> curves), with one shared
    legend.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from flowcore.rng import numpy_stream
        >>> x = numpy_stream(0).standard_normal(500)
        >>> fig = kde_panels({"s = 0.5": {"model": x, "truth": x},
        ...                   "s = 2": {"model": 2 * x, "truth": 2 * x}})
        >>> [ax.get_title() for ax in fig.axes], len(fig.legends)
        (['s = 0.5', 's = 2'], 1)
        >>> plt.close(fig)
    """
    fig, axes = _panel_grid(len(panels), ncols)
    for ax, (title, curves) in zip(axes, panels.items()):
        plot_kdes(ax, curves, title)
    _shared_legend(fig, axes[0])
    return fig


def training_curves(
    histories: Mapping[str, History], entropies: Mapping[str, float], ncols: int = 2
) -> Figure:
    r"""Excess NLL over :math:`H(p)` per epoch, training and validation, one panel per run.

    The validation curve is the KL estimate :math:`D^*_{KL}(p\|p_\theta)` on held-out data, since
    :math:`H(p, p_\theta) - H(p) = D_{KL}(p\|p_\theta)` (Eq. 10); the axis is symmetric-log so both
    the first epochs and the last hundredths of a nat are visible.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> history = History(train_nll=[3.0, 2.9, 2.85], val_nll=[2.95, 2.88, 2.86], best_epoch=2)
        >>> fig = training_curves({"D = 2": history}, {"D = 2": 2.84})
        >>> fig.axes[0].get_title(), fig.axes[0].get_yscale(), fig.axes[0].get_xlabel()
        ('D = 2', 'symlog', 'epoch')
        >>> plt.close(fig)
    """
    fig, axes = _panel_grid(len(histories), ncols)
    for ax, (title, history) in zip(axes, histories.items()):
        epochs = np.arange(1, len(history.val_nll) + 1)
        h = entropies[title]
        ax.plot(
            epochs,
            np.asarray(history.train_nll) - h,
            color="tab:blue",
            alpha=0.5,
            label="training NLL − H(p)",
        )
        ax.plot(
            epochs, np.asarray(history.val_nll) - h, color="tab:blue", label="validation NLL − H(p)"
        )
        ax.axvline(history.best_epoch + 1, color="k", lw=0.8, ls=":", label="kept epoch")
        ax.axhline(0, color="tab:orange", ls="--", lw=1, label="H(p): a perfect fit")
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_xlabel("epoch")
        ax.set_ylabel("NLL − H(p) (nats)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    _shared_legend(fig, axes[0])
    return fig


# --- §5–§8: figures over the families of flowcore.studies.debruin2024.evaluation ----------------

#: Line styles of the four KDE curves of a member panel: test set solid, reference Q(p) dashed.
MEMBER_STYLE = {
    "model q": {"color": "tab:blue", "ls": "-", "label": r"$\log p_\theta$ over $\mathcal{Q}(q)$"},
    "truth q": {"color": "tab:orange", "ls": "-", "label": r"$\log p$ over $\mathcal{Q}(q)$"},
    "model p": {"color": "tab:blue", "ls": "--", "label": r"$\log p_\theta$ over $\mathcal{Q}(p)$"},
    "truth p": {"color": "tab:orange", "ls": "--", "label": r"$\log p$ over $\mathcal{Q}(p)$"},
}


def member_kdes(
    ax: Axes, curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = ""
) -> Axes:
    """The four KDEs of one test distribution (from ``Results.curves``), each on its own grid.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> grid = np.linspace(-5.0, 0.0, 50)
        >>> curves = {name: (grid, np.exp(-((grid + 2.5) ** 2))) for name in MEMBER_STYLE}
        >>> fig, ax = plt.subplots()
        >>> len(member_kdes(ax, curves, title="s = 1, t = 0").lines)
        4
        >>> plt.close(fig)
    """
    for name, style in MEMBER_STYLE.items():
        grid, density = curves[name]
        ax.plot(grid, density, lw=1.4, **style)
    ax.set_xlabel("log-likelihood (nats)")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return ax


def member_grid(
    curves: Mapping, keys, titles=None, ncols: int = 3, width: float = 3.6, height: float = 2.8
) -> Figure:
    """One :func:`member_kdes` panel per key ``(D, family, s, t)`` of ``curves``, one shared legend.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> grid = np.linspace(-5.0, 0.0, 50)
        >>> member = {name: (grid, np.exp(-((grid + 2.5) ** 2))) for name in MEMBER_STYLE}
        >>> curves = {(2, "affine", s, 0.0): member for s in (0.5, 2.0)}
        >>> fig = member_grid(curves, curves)
        >>> [ax.get_title() for ax in fig.axes]
        ['D = 2, s = 0.5, t = 0', 'D = 2, s = 2, t = 0']
        >>> plt.close(fig)
    """
    keys = list(keys)
    fig, axes = _panel_grid(len(keys), ncols, width, height)
    for i, (ax, key) in enumerate(zip(axes, keys)):
        dim, _, s, t = key
        member_kdes(ax, curves[key], titles[i] if titles else f"D = {dim}, s = {s:g}, t = {t:g}")
    _shared_legend(fig, axes[0])
    return fig


def versus_s(
    table,
    lines: Mapping[str, tuple[str, str, dict]],
    dims,
    shifts,
    ylabel: str,
    width: float = 3.3,
    height: float = 2.7,
) -> Figure:
    """A grid of panels, one row per D and one column per t, each plotting quantities against s.

    ``lines`` maps a legend label to ``(family, column, matplotlib style)``; a column with a
    matching ``SE …`` column gets ±2 SE error bars.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import pandas as pd
        >>> table = pd.DataFrame({"D": 2, "family": "affine", "s": [0.5, 1.0, 2.0], "t": 0.0,
        ...                       "KL": [0.3, 0.0, 0.8], "SE KL": 0.01})
        >>> fig = versus_s(table, {"RealNVP": ("affine", "KL", {"color": "tab:blue"})}, dims=[2],
        ...                shifts=[0.0], ylabel="KL (nats)")
        >>> fig.axes[0].get_title(), fig.axes[0].get_ylabel(), fig.axes[0].get_xlabel()
        ('D = 2, t = 0', 'KL (nats)', 'scale s')
        >>> plt.close(fig)
    """
    dims, shifts = list(dims), list(shifts)
    fig, axes = plt.subplots(
        len(dims),
        len(shifts),
        figsize=(width * len(shifts), height * len(dims)),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    for i, dim in enumerate(dims):
        for j, t in enumerate(shifts):
            ax = axes[i, j]
            for label, (fam, column, style) in lines.items():
                rows = table[
                    (table["D"] == dim) & (table["family"] == fam) & np.isclose(table["t"], t)
                ].sort_values("s")
                se = f"SE {column}"
                if se in rows:
                    ax.errorbar(
                        rows["s"], rows[column], yerr=2 * rows[se], label=label, capsize=2, **style
                    )
                else:
                    ax.plot(rows["s"], rows[column], label=label, **style)
            ax.set_title(f"D = {dim}, t = {t:g}", fontsize=10)
            ax.grid(alpha=0.3)
            if i == len(dims) - 1:
                ax.set_xlabel("scale s")
            if j == 0:
                ax.set_ylabel(ylabel)
    _shared_legend(fig, axes[0, 0])
    return fig


def heatmaps(
    table,
    panels: Mapping[str, tuple[str, str]],
    dim: int,
    scales,
    shifts,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "viridis",
    ncols: int = 2,
) -> Figure:
    """One annotated heat map over (s, t) per panel: ``title -> (family, column)``, at dimension
    ``dim``.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import pandas as pd
        >>> table = pd.DataFrame({"D": 2, "family": "affine", "s": [0.5, 0.5, 2.0, 2.0],
        ...                       "t": [0.0, 1.0, 0.0, 1.0], "TNR": [0.1, 0.5, 0.6, 0.9]})
        >>> fig = heatmaps(table, {"TNR": ("affine", "TNR")}, dim=2, scales=[0.5, 2.0],
        ...                shifts=[0.0, 1.0])
        >>> fig.axes[0].images[0].get_array().tolist()  # rows: s, columns: t
        [[0.1, 0.5], [0.6, 0.9]]
        >>> plt.close(fig)
    """
    scales, shifts = list(scales), list(shifts)
    fig, axes = _panel_grid(len(panels), ncols, 4.2, 3.6)
    for ax, (title, (fam, column)) in zip(axes, panels.items()):
        rows = table[(table["D"] == dim) & (table["family"] == fam)]
        grid = np.full((len(scales), len(shifts)), np.nan)
        for _, r in rows.iterrows():
            grid[
                scales.index(min(scales, key=lambda s: abs(s - r["s"]))),
                shifts.index(min(shifts, key=lambda t: abs(t - r["t"]))),
            ] = r[column]
        image = ax.imshow(grid, vmin=vmin, vmax=vmax, cmap=cmap, origin="lower", aspect="auto")
        for (a, b), value in np.ndenumerate(grid):
            ax.text(
                b,
                a,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value < (vmin + vmax) / 2 else "black",
            )
        ax.set_xticks(range(len(shifts)), [f"{t:g}" for t in shifts])
        ax.set_yticks(range(len(scales)), [f"{s:g}" for s in scales])
        ax.set_xlabel("shift t")
        ax.set_ylabel("scale s")
        ax.set_title(title, fontsize=10)
        fig.colorbar(image, ax=ax, shrink=0.85)
    return fig


def _needs_symlog(values: np.ndarray, spread: float = 100.0) -> float | None:
    """The linear range for a symmetric-log axis when a few ``values`` dwarf the rest, else
    ``None``.

    When the largest magnitude exceeds ``spread`` times the 75th percentile of the magnitudes, a
    linear axis would flatten every other point onto zero; the symlog axis is linear within
    ± that percentile and logarithmic beyond it.
    """
    magnitudes = np.abs(values[np.isfinite(values)])
    if magnitudes.size == 0:
        return None
    typical = float(np.quantile(magnitudes, 0.75))
    if typical <= 0:
        typical = float(magnitudes[magnitudes > 0].min()) if (magnitudes > 0).any() else 1.0
    return typical if magnitudes.max() > spread * typical else None


def sweep_panels(summary, metrics: Mapping[str, tuple], title: str = "", ncols: int = 2) -> Figure:
    """One panel per claim of a sensitivity sweep: the metric's mean per setting with its interval.

    Args:
        summary: :func:`flowcore.studies.debruin2024.sensitivity.summarise` output: one row per
            (claim, factor, value, model) with ``metric``, ``CI low`` and ``CI high``.
        metrics: ``claim -> (description, unit, ...)``
            (:data:`flowcore.studies.debruin2024.sensitivity.METRICS`); the description titles the
            panel, the unit labels its y-axis.

    RealNVP is blue, the nulls beside it (the ML Gaussian p̂ grey, the untrained RealNVP green),
    side by side per setting. A panel whose
    values span orders of magnitude (one setting far off the rest) gets a symmetric-log y-axis,
    said in its label.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import pandas as pd
        >>> summary = pd.DataFrame({
        ...     "claim": "C1", "factor": "n_train", "value": [500, 500, 2000, 2000],
        ...     "model": ["RealNVP", "ML Gaussian p̂"] * 2, "metric": [0.2, 0.3, 0.1, 0.3],
        ...     "CI low": [0.1, 0.2, 0.05, 0.2], "CI high": [0.3, 0.4, 0.15, 0.4],
        ... })
        >>> fig = sweep_panels(summary, {"C1": ("KL of the fit", "nats")})
        >>> fig.axes[0].get_title(), fig.axes[0].get_ylabel()
        ('C1: KL of the fit', 'nats')
        >>> plt.close(fig)
    """
    claims_here = [c for c in metrics if c in set(summary["claim"])]
    fig, axes = _panel_grid(len(claims_here), ncols, 6.0, 3.4)
    settings = summary[["factor", "value"]].drop_duplicates()
    labels = [f"{f}: {v}" for f, v in settings.itertuples(index=False)]
    for ax, claim in zip(axes, claims_here):
        rows_of = summary[summary["claim"] == claim]
        shown = [m for m in _SWEEP_STYLE if m in set(rows_of["model"])]
        for i, model in enumerate(shown):
            style_key, offset = _SWEEP_STYLE[model], 0.3 * (i - (len(shown) - 1) / 2)
            rows = settings.merge(
                rows_of[rows_of["model"] == model], on=["factor", "value"], how="left"
            )
            x = np.arange(len(rows)) + offset
            err = [rows["metric"] - rows["CI low"], rows["CI high"] - rows["metric"]]
            ax.errorbar(
                x,
                rows["metric"],
                yerr=err,
                fmt="o",
                color=STYLE[style_key]["color"],
                capsize=2,
                ms=4,
                label=model,
            )
        description, unit = metrics[claim][0], metrics[claim][1]
        values = rows_of[["metric", "CI low", "CI high"]].to_numpy(dtype=float).ravel()
        linthresh = _needs_symlog(values)
        if linthresh is not None:
            ax.set_yscale("symlog", linthresh=linthresh)
            # Ticks at 0 and at about three powers of ten per side, none within a decade of the
            # linear range, so that the labels do not collide.
            top = int(np.ceil(np.log10(np.nanmax(np.abs(values)))))
            low = int(np.floor(np.log10(linthresh))) + 1
            step = max(1, -(-(top - low) // 3))
            powers = [10.0**k for k in range(top, low, -step)]
            ax.yaxis.set_major_locator(FixedLocator(sorted([0.0, *powers, *(-p for p in powers)])))
            unit += " (symmetric log scale)"
        ax.axhline(0, color="black", lw=0.6, alpha=0.5)
        ax.set_xticks(np.arange(len(labels)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{claim}: {description}", fontsize=9)
        ax.set_ylabel(unit, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


#: The views of a battery run (flowcore.battery.VIEWS) and their styles: the model, then the nulls.
_VIEW_STYLE = {"model": "model", "p̂": "gaussian", "untrained": "untrained", "truth": "truth"}


def model_panels(summary, metrics: Mapping[str, tuple], claims, title: str = "") -> Figure:
    """One row of panels per claim, one column per D: for every model on the x-axis, the number the
    claim rests on (mean over seeds with its interval) for the model (blue) and for each null in
    its place (p̂ grey, untrained green, truth orange), side by side.

    Args:
        summary: :func:`flowcore.battery.metric_summary` output: one row per (claim, model, D,
            view) with ``metric``, ``CI low`` and ``CI high``.
        metrics: ``claim -> (description, unit, ...)``; the description titles the panel, the unit
            labels its y-axis.
        claims: The claims to show (those absent from ``summary`` are skipped).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import pandas as pd
        >>> summary = pd.DataFrame({
        ...     "claim": "C5", "model": ["zuko MAF"] * 2, "D": 20, "view": ["model", "p̂"],
        ...     "metric": [-0.5, 0.1], "CI low": [-0.9, 0.0], "CI high": [-0.1, 0.2]})
        >>> fig = model_panels(summary, {"C5": ("gap at s = 1", "nats")}, ["C5"])
        >>> fig.axes[0].get_title(), fig.axes[0].get_ylabel()
        ('C5 at D = 20: gap at s = 1', 'nats')
        >>> plt.close(fig)
    """
    shown = [c for c in claims if c in set(summary["claim"])]
    dims = sorted(set(summary["D"]))
    models = list(dict.fromkeys(summary["model"]))
    fig, axes = _panel_grid(len(shown) * len(dims), len(dims), 0.7 * len(models) + 2.5, 3.2)
    views = [v for v in _VIEW_STYLE if v in set(summary["view"])]
    for ax, (claim, dim) in zip(axes, [(c, d) for c in shown for d in dims]):
        here = summary[(summary["claim"] == claim) & (summary["D"] == dim)]
        for i, view in enumerate(views):
            rows = pd.DataFrame({"model": models}).merge(
                here[here["view"] == view], on="model", how="left"
            )
            x = np.arange(len(models)) + 0.18 * (i - (len(views) - 1) / 2)
            style = STYLE[_VIEW_STYLE[view]]
            err = [rows["metric"] - rows["CI low"], rows["CI high"] - rows["metric"]]
            err = np.nan_to_num(np.asarray(err, dtype=float))  # one seed: no interval
            ax.errorbar(
                x,
                rows["metric"],
                yerr=err,
                fmt="o",
                ms=3.5,
                capsize=2,
                color=style["color"],
                label=view if view != "model" else "the model",
            )
        description, unit = metrics[claim][0], metrics[claim][1]
        ax.axhline(0, color="black", lw=0.6, alpha=0.5)
        ax.set_xticks(np.arange(len(models)), models, rotation=45, ha="right", fontsize=7)
        ax.set_title(f"{claim} at D = {dim}: {description}", fontsize=9)
        ax.set_ylabel(unit, fontsize=8)
        ax.grid(alpha=0.3)
    _shared_legend(fig, axes[0])
    if title:
        fig.suptitle(title)
    return fig


def effect_panels(effects, title: str = "", ncols: int = 2) -> Figure:
    """One panel per claim of a regime search: for each factor level, the share of runs in which the
    claim holds at least partly, with its Wilson 95% interval.

    Args:
        effects: :func:`flowcore.studies.debruin2024.regimes.effects` output: one row per (claim,
            factor, level) with ``share``, ``CI low``, ``CI high`` and ``runs``.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import pandas as pd
        >>> effects = pd.DataFrame({"claim": "C5", "factor": ["D", "D"], "level": ["20", "50"],
        ...                         "runs": 6, "share": [0.0, 0.5], "CI low": [0.0, 0.19],
        ...                         "CI high": [0.39, 0.81]})
        >>> fig = effect_panels(effects)
        >>> fig.axes[0].get_title(), fig.axes[0].get_ylabel()
        ('C5', 'share of runs where it holds (≥ partly)')
        >>> plt.close(fig)
    """
    claims_here = list(dict.fromkeys(effects["claim"]))
    fig, axes = _panel_grid(len(claims_here), ncols, 6.0, 3.2)
    for ax, claim in zip(axes, claims_here):
        rows = effects[effects["claim"] == claim].reset_index(drop=True)
        x = np.arange(len(rows))
        err = [rows["share"] - rows["CI low"], rows["CI high"] - rows["share"]]
        factor_codes = rows["factor"].astype("category").cat.codes
        colors = plt.cm.tab10(factor_codes % 10)
        ax.errorbar(x, rows["share"], yerr=err, fmt="none", ecolor="gray", capsize=2, lw=0.8)
        ax.scatter(x, rows["share"], c=colors, s=18, zorder=3)
        ax.set_xticks(
            x,
            [f"{f}: {lv}" for f, lv in zip(rows["factor"], rows["level"])],
            rotation=60,
            ha="right",
            fontsize=7,
        )
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(claim, fontsize=9)
        ax.set_ylabel("share of runs where it holds (≥ partly)", fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def compare_configs(tables: Mapping[str, object], dim: int, ncols: int = 3) -> Figure:
    """Key numbers of §5–§8 for a few configurations side by side, one line style per configuration:
    the gap H*(q,pθ) − H*(q,p) over t at s = 1 (§5, C5; < 0: log-likelihood overestimated), the TNR
    shortfall of log pθ behind log p on Λ^δ over s at t = 0.5 (§8, C11), and the overlap of log pθ's
    KDEs over Q(q^out) and Q(p) over s at t = 0 (§7, C9).

    Args:
        tables: ``{label: family table}``
            (:attr:`flowcore.studies.debruin2024.evaluation.Results.table`).
        dim: The dimension to show.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import pandas as pd
        >>> rows = [{"D": 2, "family": f, "s": s, "t": t, "H*(q,pθ) − H*(q,p)": 0.1 * t,
        ...          "TNR truth": 0.5, "TNR model": 0.4, "OVL model": 0.2}
        ...         for f in ("affine", "perturbed", "outlier")
        ...         for s in (0.5, 1.0) for t in (0.0, 0.5)]
        >>> fig = compare_configs({"a": pd.DataFrame(rows)}, dim=2)
        >>> [ax.get_ylabel() for ax in fig.axes]
        ['gap (nats)', 'TNR truth − TNR model', 'OVL of log pθ, Q(q^out) vs Q(p)']
        >>> plt.close(fig)
    """
    fig, axes = _panel_grid(3, ncols, 4.4, 3.2)
    for (label, table), marker in zip(tables.items(), "osd^v"):
        at = table[table["D"] == dim]
        aff = at[(at["family"] == "affine") & np.isclose(at["s"], 1.0)].sort_values("t")
        axes[0].plot(aff["t"], aff["H*(q,pθ) − H*(q,p)"], marker=marker, label=label)
        pert = at[(at["family"] == "perturbed") & np.isclose(at["t"], 0.5)].sort_values("s")
        axes[1].plot(pert["s"], pert["TNR truth"] - pert["TNR model"], marker=marker, label=label)
        out = at[(at["family"] == "outlier") & np.isclose(at["t"], 0.0)].sort_values("s")
        axes[2].plot(out["s"], out["OVL model"], marker=marker, label=label)
    titles = ("Λ at s = 1 (C5)", "Λ^δ at t = 0.5 (C11)", "Λ^out at t = 0 (C9)")
    xlabels = ("shift t", "scale s", "scale s")
    ylabels = ("gap (nats)", "TNR truth − TNR model", "OVL of log pθ, Q(q^out) vs Q(p)")
    for ax, title, xl, yl in zip(axes, titles, xlabels, ylabels):
        ax.axhline(0, color="black", lw=0.6, alpha=0.5)
        ax.set_title(f"{title}, D = {dim}", fontsize=9)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig
