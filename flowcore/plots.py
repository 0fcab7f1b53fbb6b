r"""The book's figure types. Log-likelihoods are in nats; every axis is labelled.

Colours are fixed by role so figures read the same across chapters: the model
:math:`\log p_\theta` is blue, the truth :math:`\log p` orange, the maximum-likelihood
Gaussian control grey.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from flowcore.estimators import kde, kde_grid
from flowcore.train import History

__all__ = ["STYLE", "plot_kdes", "kde_panels", "training_curves"]

#: Line style per curve label: the model in blue, the truth in orange, the Gaussian control grey.
STYLE = {
    "model": {"color": "tab:blue", "label": r"model $\log p_\theta$"},
    "truth": {"color": "tab:orange", "label": r"truth $\log p$"},
    "gaussian": {"color": "tab:gray", "label": r"ML Gaussian $\log \hat p$"},
}


def plot_kdes(ax: Axes, curves: Mapping[str, np.ndarray], title: str = "", styles: Mapping[str, dict] | None = None) -> Axes:
    """Draw the KDE of each array in ``curves`` on ``ax``, on one common grid.

    ``curves`` maps a key of :data:`STYLE` (or of ``styles``) to log-likelihood values.
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


def _panel_grid(n: int, ncols: int, width: float = 4.2, height: float = 3.2) -> tuple[Figure, np.ndarray]:
    """A figure with ``n`` visible axes in rows of ``ncols``; the spare cells of the last row are hidden."""
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat[:n]


def _shared_legend(fig: Figure, ax: Axes) -> None:
    """One legend below all panels, from the handles of ``ax``."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)


def kde_panels(panels: Mapping[str, Mapping[str, np.ndarray]], ncols: int = 2) -> Figure:
    """One :func:`plot_kdes` panel per entry of ``panels`` (title -> curves), with one shared legend."""
    fig, axes = _panel_grid(len(panels), ncols)
    for ax, (title, curves) in zip(axes, panels.items()):
        plot_kdes(ax, curves, title)
    _shared_legend(fig, axes[0])
    return fig


def training_curves(histories: Mapping[str, History], entropies: Mapping[str, float], ncols: int = 2) -> Figure:
    r"""Excess NLL over :math:`H(p)` per epoch, training and validation, one panel per run.

    The validation curve is the KL estimate :math:`D^*_{KL}(p\|p_\theta)` on held-out data, since
    :math:`H(p, p_\theta) - H(p) = D_{KL}(p\|p_\theta)` (Eq. 10); the axis is symmetric-log so both the
    first epochs and the last hundredths of a nat are visible.
    """
    fig, axes = _panel_grid(len(histories), ncols)
    for ax, (title, history) in zip(axes, histories.items()):
        epochs = np.arange(1, len(history.val_nll) + 1)
        h = entropies[title]
        ax.plot(epochs, np.asarray(history.train_nll) - h, color="tab:blue", alpha=0.5, label="training NLL − H(p)")
        ax.plot(epochs, np.asarray(history.val_nll) - h, color="tab:blue", label="validation NLL − H(p)")
        ax.axvline(history.best_epoch + 1, color="k", lw=0.8, ls=":", label="kept epoch")
        ax.axhline(0, color="tab:orange", ls="--", lw=1, label="H(p): a perfect fit")
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_xlabel("epoch")
        ax.set_ylabel("NLL − H(p) (nats)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    _shared_legend(fig, axes[0])
    return fig
