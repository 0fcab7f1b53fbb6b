r"""The Kirichenko et al. (2020) chapters' figures, each returned as a matplotlib
:class:`~matplotlib.figure.Figure`.

- :func:`likelihood_histograms` — K1: the log-likelihoods of the test digits and of each OOD set.
- :func:`pair_histograms` — K1 on FashionMNIST and MNIST: bits/dim of each direction's test and OOD
  images, per model (the paper's Fig. 1 with the controls beside the flow).
- :func:`coupling_panels` — what each coupling layer sees and predicts, per image.
- :func:`coadaptation_vs_kl` — the thesis's question: co-adaptation against how atypical q is.

Log-likelihoods and KL divergences are in nats; every axis is labelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["likelihood_histograms", "pair_histograms", "coupling_panels", "coadaptation_vs_kl"]


def likelihood_histograms(
    scores: Mapping[str, np.ndarray], title: str = "", reference: str = "test"
) -> Figure:
    """K1: histograms of the mean log-likelihood of each image (nats) per set of ``scores`` (the
    training set left out), over every set (left, densities) and zoomed around the ``reference``
    set (right, counts: from its 1% quantile minus 3 standard deviations to its maximum plus one).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from flowcore.rng import numpy_stream
        >>> g = numpy_stream(0)
        >>> fig = likelihood_histograms({"train": g.normal(size=50), "test": g.normal(size=50),
        ...                              "class 1": g.normal(2, 1, 50)}, "digits")
        >>> [(ax.get_xlabel(), ax.get_ylabel(),
        ...   ax.get_title()) for ax in fig.axes]  # doctest: +NORMALIZE_WHITESPACE
        [('mean log-likelihood of an image (nats)', 'density', 'all sets'),
         ('mean log-likelihood of an image (nats)', 'images', 'around the test digits')]
        >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        ['test', 'class 1']
        >>> plt.close(fig)
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    ref = scores[reference]
    zoom = (np.quantile(ref, 0.01) - 3 * ref.std(), ref.max() + ref.std())
    for ax, (low, high), name in (
        (axes[0], (None, None), "all sets"),
        (axes[1], zoom, "around the test digits"),
    ):
        for set_name, s in scores.items():
            if set_name != "train":
                shown = s if low is None else s[(s >= low) & (s <= high)]
                if len(shown):
                    ax.hist(
                        shown,
                        bins=40,
                        histtype="step",
                        density=low is None,
                        label=set_name,
                        lw=1.6 if set_name == reference else 1.0,
                    )
        ax.set_xlabel("mean log-likelihood of an image (nats)")
        ax.set_ylabel("density" if low is None else "images")
        ax.set_title(name, fontsize=9)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def pair_histograms(
    scores: Mapping[tuple[str, str], Mapping[str, np.ndarray]],
    bits_per_dim_of: int,
    levels: int = 256,
    models: Sequence[str] = ("coupling flow", "MLP RealNVP", "ML Gaussian"),
) -> Figure:
    """K1 on the real pair: one panel per direction (rows) and model (columns), the histograms of
    the bits/dim (of ``bits_per_dim_of`` pixels with ``levels`` values) of the direction's own test
    images and of the other data set's, from ``scores[(direction, model)]`` (nats per image, as
    :func:`~flowcore.studies.kirichenko2020.real.pair_table` returns them). Fewer bits: rated more
    likely.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> g = np.random.default_rng(0)
        >>> scores = {(d, m): {"test": g.normal(300, 20, 50), "other": g.normal(400, 20, 50)}
        ...           for d in ("A → B", "B → A") for m in ("coupling flow", "ML Gaussian")}
        >>> fig = pair_histograms(scores, 196, models=("coupling flow", "ML Gaussian"))
        >>> len(fig.axes), fig.axes[0].get_xlabel(), fig.axes[0].get_title()
        (4, 'bits/dim', 'A → B: coupling flow')
        >>> plt.close(fig)
    """
    from flowcore.studies.kirichenko2020.data import bits_per_dim

    directions = list(dict.fromkeys(direction for direction, _ in scores))
    fig, axes = plt.subplots(
        len(directions),
        len(models),
        figsize=(3.6 * len(models), 2.8 * len(directions)),
        layout="constrained",
        squeeze=False,
    )
    for row, direction in zip(axes, directions):
        for ax, model in zip(row, models):
            for name, values in scores[(direction, model)].items():
                bpd = bits_per_dim(values, bits_per_dim_of, levels)
                label = f"{direction.split(' → ')[0]} test" if name == "test" else name
                ax.hist(bpd, bins=40, histtype="step", density=True, label=label)
            ax.set_xlabel("bits/dim")
            ax.set_ylabel("density")
            ax.set_title(f"{direction}: {model}", fontsize=9)
            ax.legend(fontsize=7)
    return fig


def coupling_panels(panels: Mapping[str, Sequence[Mapping[str, np.ndarray]]]) -> Figure:
    """One row per image and coupling layer, one column per quantity: for each image of ``panels``
    (name → per coupling layer, quantity name → 8×8 array, as
    :func:`~flowcore.studies.kirichenko2020.analysis.coupling_figure_data` returns them) the
    layer's input, output, scale exp(s) and prediction −t, in grey. Columns are titled by quantity,
    rows labelled by image and layer.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> layer = {"input": np.zeros((8, 8)), "−t": np.ones((8, 8))}
        >>> fig = coupling_panels({"test digit": [layer, layer]})
        >>> len(fig.axes), [ax.get_title() for ax in fig.axes[:2]], fig.axes[2].get_ylabel()
        (4, ['input', '−t'], 'test digit\\nlayer 2')
        >>> plt.close(fig)
    """
    n_layers = len(next(iter(panels.values())))
    n_columns = len(next(iter(panels.values()))[0])
    fig, axes = plt.subplots(
        len(panels) * n_layers,
        n_columns,
        figsize=(1.6 * n_columns, 1.7 * len(panels) * n_layers),
        layout="constrained",
        squeeze=False,
    )
    for r, (name, layers) in enumerate(panels.items()):
        for k, layer in enumerate(layers):
            for c, (label, image) in enumerate(layer.items()):
                ax = axes[r * n_layers + k, c]
                ax.imshow(image, cmap="gray")
                ax.set_xticks([]), ax.set_yticks([])
                if r * n_layers + k == 0:
                    ax.set_title(label, fontsize=8)
                if c == 0:
                    ax.set_ylabel(f"{name}\nlayer {k + 1}", fontsize=7)
    return fig


def coadaptation_vs_kl(gaussian: pd.DataFrame, dim: int) -> Figure:
    """The thesis's question on its Gaussians: per member q of each family of ``gaussian``
    (:func:`~flowcore.studies.kirichenko2020.analysis.gaussian_coadaptation`), the R² the second
    coupling loses to the swap against KL(q‖p) (nats, symmetric log scale), one colour per family,
    with the value on q = p as a dashed line; ``dim`` is the flow's dimension (in the title).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> table = pd.DataFrame({"family": ["p", "affine", "affine"], "KL(q‖p)": [0.0, 1.0, 5.0],
        ...                       "co-adaptation": [0.1, 0.2, 0.3]})
        >>> ax = coadaptation_vs_kl(table, 20).axes[0]
        >>> ax.get_xlabel(), ax.get_ylabel()
        ('KL(q‖p) (nats, symmetric log scale)', 'R² lost to the swap (layer 2)')
        >>> ax.get_title()
        "The thesis's RealNVP at D = 20"
        >>> plt.close("all")
    """
    atypical = gaussian[gaussian["family"] != "p"]
    fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
    for fam, rows in atypical.groupby("family"):
        ax.scatter(rows["KL(q‖p)"], rows["co-adaptation"], s=14, label=fam)
    base_row = gaussian[gaussian["family"] == "p"].iloc[0]
    ax.axhline(base_row["co-adaptation"], color="black", lw=0.8, ls="--", label="q = p")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set_xlabel("KL(q‖p) (nats, symmetric log scale)")
    ax.set_ylabel("R² lost to the swap (layer 2)")
    ax.set_title(f"The thesis's RealNVP at D = {dim}")
    ax.legend(fontsize=7)
    return fig
