r"""The study end to end: every flow, table and measurement the two chapters show, from one config.

Each function computes one part (trained flows and the ceiling regressor are cached; scoring takes
seconds) and returns plain tables, so the chapter only arranges them and the claims of
:mod:`~flowcore.studies.kirichenko2020.claims` read them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from flowcore import rng
from flowcore.rng import numpy_stream
from flowcore.config import FlowConfig
from flowcore.flows.fast import FastPathWarning
from flowcore.runs import train_or_load
from flowcore.studies.kirichenko2020 import data
from flowcore.studies.kirichenko2020.config import KirichenkoConfig
from flowcore.studies.kirichenko2020.experiments import (
    Digits,
    _dequantised,
    architecture,
    auroc_table,
    ceiling_r2,
    digits,
    edge_correlation,
    layer_r2,
    layer_states,
    neighbour_mean,
    score_sets,
    swap_r2,
    trained_image_flow,
)
from flowcore.validation import check_int, check_probability

__all__ = [
    "ood_summary",
    "main_results",
    "simple_flow_auroc",
    "scored_sets",
    "swap_test",
    "coadaptation_table",
    "coupling_figure_data",
    "edges_table",
    "prediction_errors",
    "prediction_rho",
    "CouplingMeasures",
    "coupling_measures",
    "layer_r2_by_set",
    "predicting_layer",
    "neighbour_correlation",
    "negative_training",
    "negative_run",
    "feature_flow",
    "tabular",
    "mixture",
    "gaussian_coadaptation",
    "ood_table",
    "negative_comparison",
    "TREND_LEVEL",
    "TypicalityTrend",
    "typicality_trend",
]


def scored_sets(d: Digits) -> dict[str, np.ndarray]:
    """The sets every flow is scored on: the training and test digits and each OOD set."""
    return {
        "train": d.splits["train"],
        "test": d.splits["test"],
        **{name: images for name, (images, _) in d.ood.items()},
    }


def ood_summary(table: pd.DataFrame) -> float:
    """Mean AUROC over the OOD sets of a
    :func:`~flowcore.studies.kirichenko2020.experiments.auroc_table`."""
    return float(table["AUROC"].dropna().mean())


@dataclass
class MainResults:
    digits: Digits
    flow: torch.nn.Module
    history: object
    scores: dict[str, np.ndarray]
    table: pd.DataFrame


def main_results(config: KirichenkoConfig, progress: bool | None = None) -> MainResults:
    """The main flow (``config.mask``, no bottleneck) and its AUROC table over every OOD set
    (K1)."""
    d = digits(config)
    run = trained_image_flow(config, progress=progress)
    scores = score_sets(config, run.flow, scored_sets(d))
    return MainResults(d, run.flow, run.history, scores, auroc_table(config, scores))


def simple_flow_auroc(
    config: KirichenkoConfig, d: Digits, progress: bool | None = None
) -> tuple[float, float, float]:
    """K1's other direction: a flow trained on 70% of class 1 scores the other 30% against the
    digits' test set."""
    ones = d.ood["class 1"][0]
    order = np.random.default_rng(rng.derived_seed(config.seed, "class 1 split")).permutation(
        len(ones)
    )
    cut, val_cut = int(0.6 * len(ones)), int(0.7 * len(ones))
    train, val, held = ones[order[:cut]], ones[order[cut:val_cut]], ones[order[val_cut:]]
    run = trained_image_flow(config, train, val, name="class 1", progress=progress)
    scores = score_sets(config, run.flow, {"class 1": held, "digits": d.splits["test"]})
    return data.auroc_ci(
        scores["class 1"], scores["digits"], n_boot=config.n_boot, seed=config.seed
    )


def _logit_images(config: KirichenkoConfig, images: np.ndarray, label: str) -> torch.Tensor:
    return _dequantised(images, 1, config.seed, "analysis", label)


def swap_test(
    config: KirichenkoConfig, flow: torch.nn.Module, d: Digits, progress: bool | None = None
) -> dict[str, float]:
    """K5 on one flow with ``config.mask``: the second coupling's R² on the test digits, with the
    swap, and the ceiling of a same-shaped regressor on the unmodified pixels."""
    x_train = _logit_images(config, d.splits["train"], "train")
    x_test = _logit_images(config, d.splits["test"], "test")
    return {
        "R² layer 1": layer_r2(flow, x_test)[0],
        "R² layer 2": layer_r2(flow, x_test)[1],
        "R² layer 2, swapped": swap_r2(flow, x_test, seed=config.seed)[1],
        "ceiling": ceiling_r2(config, flow, x_train, x_test, layer_index=1, progress=progress),
    }


def coadaptation_table(
    config: KirichenkoConfig, d: Digits, progress: bool | None = None
) -> pd.DataFrame:
    """K5 at ``config.seed``: for the main flow, the flow with the smallest bottleneck, and the
    cycle mask: layer-2 R² in distribution, with the swap, and (main flow) the ceiling; and the same
    R² on class 1 and flipped digits."""
    variants = [(f"{config.mask}", config.mask, None)]
    smallest = min((b for b in config.bottlenecks if b is not None), default=None)
    if smallest is not None:
        variants.append((f"{config.mask}, l = {smallest}", config.mask, smallest))
    if "cycle" in config.masks and config.mask != "cycle":
        variants.append(("cycle", "cycle", None))
    x_test = _logit_images(config, d.splits["test"], "test")
    rows = []
    for label, mask, size in variants:
        flow = trained_image_flow(config, mask=mask, bottleneck=size, progress=progress).flow.eval()
        if size is None and mask == config.mask:
            row = {"flow": label, **swap_test(config, flow, d, progress)}
        else:
            normal, swapped = layer_r2(flow, x_test), swap_r2(flow, x_test, seed=config.seed)
            row = {
                "flow": label,
                "R² layer 1": normal[0],
                "R² layer 2": normal[1],
                "R² layer 2, swapped": swapped[1],
                "ceiling": float("nan"),
            }
        for name in ("class 1", "flipped up–down"):
            if name in d.ood:
                x = _logit_images(config, d.ood[name][0], name)
                row[f"R² layer 2, {name}"] = layer_r2(flow, x)[1]
                row[f"R² layer 2 swapped, {name}"] = swap_r2(flow, x, seed=config.seed)[1]
        rows.append(row)
    return pd.DataFrame(rows).set_index("flow")


def coupling_figure_data(
    config: KirichenkoConfig, flow: torch.nn.Module, images: dict[str, np.ndarray]
) -> dict[str, list[dict]]:
    """For one image per set: per coupling layer, its input, output, exp(s) and −t as 8×8 arrays."""
    from flowcore.flows.image import coupling_layers

    out = {}
    couplings = coupling_layers(flow)
    for name, img in images.items():
        x = _logit_images(config, img[:1], f"figure {name}")
        states = layer_states(flow, x)
        panels = []
        layers = list(flow.transform.transforms)
        with torch.no_grad():
            for i, layer in enumerate(layers):
                if layer in couplings:
                    parts = layer.parts(states[i])
                    panels.append(
                        {
                            k: v[0].reshape(8, 8).numpy()
                            for k, v in (
                                ("input", parts["input"]),
                                ("output", parts["output"]),
                                ("exp(s)", torch.exp(parts["s"])),
                                ("−t", parts["prediction"]),
                            )
                        }
                    )
        out[name] = panels
    return out


def layer_r2_by_set(config: KirichenkoConfig, flow: torch.nn.Module, d: Digits) -> pd.DataFrame:
    """K4: each coupling's R² of its prediction −t, on the test digits and on each OOD set
    (rows)."""
    rows = {}
    for name, images in {"test": d.splits["test"], **{k: v for k, (v, _) in d.ood.items()}}.items():
        rows[name] = layer_r2(flow, _logit_images(config, images, name))
    return pd.DataFrame(
        rows, index=[f"layer {k + 1}" for k in range(len(next(iter(rows.values()))))]
    ).T


def predicting_layer(r2_table: pd.DataFrame) -> int:
    """The coupling (0-based) whose prediction explains the most of the test digits' changed
    pixels."""
    return int(np.argmax(r2_table.loc["test"].to_numpy()))


def neighbour_correlation(
    config: KirichenkoConfig, flow: torch.nn.Module, d: Digits, layer: int
) -> float:
    """K4: correlation, over the changed pixels of the test digits, of coupling ``layer``'s −t with
    the 4-neighbour mean of the values entering it; NaN where −t is constant (the untrained flow's
    is 0 everywhere: it predicts nothing, so it follows nothing)."""
    from flowcore.flows.image import coupling_layers

    coupling = coupling_layers(flow)[layer]
    index = list(flow.transform.transforms).index(coupling)
    h = layer_states(flow, _logit_images(config, d.splits["test"], "test"))[index]
    with torch.no_grad():
        prediction = coupling.parts(h)["prediction"][:, coupling.change_mask].flatten().numpy()
    neighbours = neighbour_mean(h)[:, coupling.change_mask].flatten().numpy()
    if np.ptp(prediction) == 0 or np.ptp(neighbours) == 0:
        return float("nan")
    return float(np.corrcoef(prediction, neighbours)[0, 1])


def prediction_errors(
    config: KirichenkoConfig,
    flow: torch.nn.Module,
    d: Digits,
    scores: dict[str, np.ndarray],
    layer: int = 0,
) -> pd.DataFrame:
    """K3: per image (test and OOD), coupling ``layer``'s mean squared prediction error of its
    changed pixels beside the image's log-likelihood (``scores``, from the same flow)."""
    from flowcore.flows.image import coupling_layers

    coupling = coupling_layers(flow)[layer]
    index = list(flow.transform.transforms).index(coupling)
    rows = []
    for name, images in {"test": d.splits["test"], **{k: v for k, (v, _) in d.ood.items()}}.items():
        x = _logit_images(config, images, name)
        h = layer_states(flow, x)[index]
        with torch.no_grad():
            err = (
                ((coupling.parts(h)["prediction"] - h)[:, coupling.change_mask] ** 2)
                .mean(1)
                .numpy()
            )
        rows.append(
            pd.DataFrame({"set": name, "prediction error": err, "log-likelihood": scores[name]})
        )
    return pd.concat(rows, ignore_index=True)


def prediction_rho(
    errors: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """K3's statistic: Spearman ρ between prediction error and log-likelihood over the images of
    ``errors`` (:func:`prediction_errors`), with a percentile-bootstrap interval (the images drawn
    with replacement, ``n_boot`` times, from a stream named by ``seed``).

    With ``reference`` (the same images measured on another flow, e.g. the untrained one), also
    ``Δρ = ρ − ρ_reference`` with its interval from the *same* resamples (paired: what that flow's
    training changed).

    Returns:
        ``{"ρ", "CI low", "CI high"}`` and, with a reference, ``{"Δρ", "Δρ CI low", "Δρ CI high"}``.

    Example:
        >>> x = np.arange(50.0)
        >>> errors = pd.DataFrame({"prediction error": x, "log-likelihood": -x})
        >>> out = prediction_rho(errors, errors, n_boot=20)
        >>> round(out["ρ"], 9), round(out["CI high"], 9), out["Δρ"]
        (-1.0, -1.0, 0.0)
        >>> out["Δρ CI low"], out["Δρ CI high"]
        (0.0, 0.0)
    """
    n_boot = check_int("n_boot", n_boot, minimum=10)
    level = check_probability("level", level)
    columns = ["prediction error", "log-likelihood"]
    frames = [errors] if reference is None else [errors, reference]
    for name, frame in zip(("errors", "reference"), frames):
        if set(columns) - set(frame.columns):
            raise ValueError(f"{name} must have the columns {columns}, got {list(frame.columns)}")
    if reference is not None and len(reference) != len(errors):
        raise ValueError(
            f"reference must hold the same images as errors, got {len(reference)} rows against "
            f"{len(errors)}"
        )
    arrays = [frame[columns].to_numpy(dtype=float) for frame in frames]
    generator = numpy_stream(rng.derived_seed("kirichenko2020", "rho bootstrap", seed))

    def rhos(index) -> list[float]:
        return [float(spearmanr(a[index, 0], a[index, 1]).statistic) for a in arrays]

    point = rhos(slice(None))
    boot = np.array([rhos(generator.integers(0, len(errors), len(errors))) for _ in range(n_boot)])
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    low, high = np.quantile(boot[:, 0], quantiles)
    out = {"ρ": point[0], "CI low": float(low), "CI high": float(high)}
    if reference is not None:
        d_low, d_high = np.quantile(boot[:, 0] - boot[:, 1], quantiles)
        out.update(
            {"Δρ": point[0] - point[1], "Δρ CI low": float(d_low), "Δρ CI high": float(d_high)}
        )
    return out


@dataclass
class CouplingMeasures:
    """What K2–K4 measure on one flow: each coupling's R² per set (:func:`layer_r2_by_set`), the
    coupling they read (``layer``, 0-based), its −t's correlation with the 4-neighbour mean, the
    per-image prediction errors and log-likelihoods (:func:`prediction_errors`), and |z| against
    the edges (:func:`edges_table`)."""

    r2: pd.DataFrame
    layer: int
    neighbour_corr: float
    errors: pd.DataFrame
    edges: pd.DataFrame


def coupling_measures(
    config: KirichenkoConfig,
    flow: torch.nn.Module,
    d: Digits,
    scores: dict[str, np.ndarray] | None = None,
    layer: int | None = None,
) -> CouplingMeasures:
    """:class:`CouplingMeasures` of ``flow``: the same measurements for the trained flow and for the
    untrained null. ``layer`` (default: the coupling that predicts best in distribution,
    :func:`predicting_layer`) is passed for a null, so that it is measured where the model is;
    ``scores`` (default: computed) are the flow's log-likelihoods of the test and OOD sets."""
    r2 = layer_r2_by_set(config, flow, d)
    layer = (
        predicting_layer(r2)
        if layer is None
        else check_int("layer", layer, minimum=0, maximum=r2.shape[1] - 1)
    )
    if scores is None:
        scores = score_sets(
            config, flow, {"test": d.splits["test"], **{k: v for k, (v, _) in d.ood.items()}}
        )
    return CouplingMeasures(
        r2,
        layer,
        neighbour_correlation(config, flow, d, layer),
        prediction_errors(config, flow, d, scores, layer),
        edges_table(config, flow, d),
    )


def edges_table(config: KirichenkoConfig, flow: torch.nn.Module, d: Digits) -> pd.DataFrame:
    """K2: per set, the correlation of |z| with the image's own edge map and with another
    image's."""
    rows = []
    for name, images in {
        "test": d.splits["test"],
        **{k: v for k, (v, _) in d.ood.items() if k != "uniform noise"},
    }.items():
        z = layer_states(flow, _logit_images(config, images, name))[-1].numpy()
        matched, mismatched = edge_correlation(z, images, seed=config.seed)
        rows.append({"set": name, "matched": matched, "mismatched": mismatched})
    return pd.DataFrame(rows).set_index("set")


def negative_training(
    config: KirichenkoConfig, d: Digits, plain: pd.DataFrame, progress: bool | None = None
) -> tuple[pd.DataFrame, int]:
    """K8: retrain with the paper's negative term on 60% of ``config.negative_target``: the loss
    adds ``mean(max(log p(x_ood), c))`` (c = ``negative_cutoff``) to the NLL; score on the held-out
    40%."""
    target = config.negative_target
    images = d.ood[target][0]
    order = np.random.default_rng(rng.derived_seed(config.seed, "negative split")).permutation(
        len(images)
    )
    cut = int(0.6 * len(images))
    used, held = images[order[:cut]], images[order[cut:]]
    run = negative_run(
        config,
        _dequantised(d.splits["train"], config.copies, config.seed, "train", "in-distribution"),
        _dequantised(d.splits["val"], 1, config.seed, "val", "in-distribution"),
        _dequantised(used, config.copies, config.seed, "negative", target),
        data_name="in-distribution",
        target=target,
        cutoff=config.negative_cutoff,
        n=len(d.splits["train"]),
        progress=progress,
    )
    sets = {k: v for k, v in scored_sets(d).items()}
    sets[target] = held
    table = auroc_table(config, score_sets(config, run.flow, sets))
    return table, len(held)


def negative_run(
    config: KirichenkoConfig,
    x_train: torch.Tensor,
    x_val: torch.Tensor,
    ood_x: torch.Tensor,
    *,
    data_name: str,
    target: str,
    cutoff: float,
    n: int,
    size: int = 8,
    extra: Mapping | None = None,
    progress: bool | None = None,
):
    """The image flow (``config.mask``, no bottleneck) trained (or loaded) with the paper's negative
    term: the loss adds ``mean(max(log p(x), cutoff))`` over a minibatch of ``ood_x`` (as many as
    the batch) to the NLL of ``x_train``; ``data_name``, ``target``, ``n`` (training images) and
    ``extra`` enter the cache key."""
    holder: dict = {}

    def negative_term(batch, log_scales):
        flow = holder["flow"]
        idx = torch.randint(
            len(ood_x),
            (min(len(batch), len(ood_x)),),
            generator=holder.setdefault("gen", rng.generator(config.seed)),
        )
        return torch.clamp(flow.log_prob(ood_x[idx].to(batch.device)), min=cutoff).mean()

    from flowcore.flows.image import image_flow

    arch = architecture(config, size=size)

    def build():
        holder["flow"] = image_flow(**arch)
        return holder["flow"]

    spec = {
        "study": "kirichenko2020",
        "data": data_name,
        "in_classes": config.in_classes,
        "copies": config.copies,
        "architecture": arch,
        "loss": f"negative {target} c={cutoff}",
        "n": n,
        **(extra or {}),
    }
    return train_or_load(
        spec,
        build,
        lambda: (x_train, x_val),
        config.train,
        config.torch_device,
        loss_terms=[negative_term],
        progress=progress,
        description=f"negative training ({target})",
    )


def feature_flow(config: KirichenkoConfig, d: Digits, progress: bool | None = None) -> pd.DataFrame:
    """K9: a small classifier (one hidden ReLU layer of ``config.features`` units, scikit-learn's
    MLP) trained on the in-distribution digits and their labels; a RealNVP on its hidden activations
    of the training digits; AUROC of the test digits against each OOD set in that feature space."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    bunch = load_digits()
    keep = np.isin(bunch.target, config.in_classes)
    train_rows = {tuple(r) for r in d.splits["train"].tolist()}
    mask = np.array(
        [
            keep[i] and tuple(bunch.data[i].astype(int).tolist()) in train_rows
            for i in range(len(bunch.data))
        ]
    )
    clf = MLPClassifier(
        hidden_layer_sizes=(config.features,), max_iter=400, random_state=config.seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(bunch.data[mask] / 16.0, bunch.target[mask])

    def features(images: np.ndarray) -> torch.Tensor:
        hidden = np.maximum(images / 16.0 @ clf.coefs_[0] + clf.intercepts_[0], 0.0)
        return torch.tensor(hidden, dtype=torch.float32)

    f_train, f_val = features(d.splits["train"]), features(d.splits["val"])
    mean, std = f_train.mean(0), f_train.std(0) + 1e-3
    norm = lambda f: (f - mean) / std  # noqa: E731
    flow_config = FlowConfig(n_couplings=4, hidden=[64, 64])
    tc = replace(config.train, max_epochs=max(config.train.max_epochs, 10))
    spec = {
        "study": "kirichenko2020",
        "features": config.features,
        "in_classes": config.in_classes,
        "accuracy": round(float(clf.score(bunch.data[mask] / 16.0, bunch.target[mask])), 6),
        "flow": flow_config,
    }
    run = train_or_load(
        spec,
        lambda: flow_config.build(config.features),
        lambda: (norm(f_train), norm(f_val)),
        tc,
        "cpu",
        progress=progress,
        description="feature flow",
    )
    flow = run.flow.eval()
    scores = {}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FastPathWarning)
        for name, images in {
            "test": d.splits["test"],
            **{k: v for k, (v, _) in d.ood.items()},
        }.items():
            scores[name] = flow.log_prob(norm(features(images))).numpy()
    return auroc_table(config, scores)


def tabular(config: KirichenkoConfig, progress: bool | None = None) -> pd.DataFrame:
    """K10: a RealNVP on one class of breast_cancer (and wine), scored on that class's test split
    against the other class, in both directions."""
    rows = []
    for name in ("breast_cancer", "wine"):
        for split in data.tabular_one_class(name, seed=config.seed):
            dim = split.train.shape[1]
            flow_config = FlowConfig(n_couplings=4, hidden=[64, 64])
            tc = replace(
                config.train,
                batch_size=min(config.train.batch_size, 64),
                max_epochs=max(config.train.max_epochs, 10),
            )
            direction = f"{split.in_label} vs {split.out_label}"
            spec = {
                "study": "kirichenko2020",
                "tabular": name,
                "direction": direction,
                "flow": flow_config,
                "seed": config.seed,
            }
            x_tr, x_va = (torch.tensor(a, dtype=torch.float32) for a in (split.train, split.val))
            run = train_or_load(
                spec,
                lambda: flow_config.build(dim),
                lambda: (x_tr, x_va),
                tc,
                "cpu",
                progress=progress,
                description=f"{name} {direction}",
            )
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", FastPathWarning)
                s_in = run.flow.log_prob(torch.tensor(split.test, dtype=torch.float32)).numpy()
                s_out = run.flow.log_prob(torch.tensor(split.ood, dtype=torch.float32)).numpy()
            value, low, high = data.auroc_ci(s_in, s_out, n_boot=config.n_boot, seed=config.seed)
            rows.append(
                {
                    "dataset": name,
                    "direction": direction,
                    "in (test)": len(s_in),
                    "other": len(s_out),
                    "AUROC": value,
                    "CI low": low,
                    "CI high": high,
                }
            )
    return pd.DataFrame(rows)


def mixture(
    config: KirichenkoConfig,
    main: MainResults,
    target: str = "class 1",
    epsilons=(0.01, 0.05, 0.1),
    width: float = 1e-3,
) -> pd.DataFrame:
    """K11, computed: the mixture :math:`q = (1-\\varepsilon)p_\\theta + \\varepsilon r` with
    :math:`r` an equal mixture of narrow Gaussians (std ``width``) on the OOD images. On the test
    digits its log-likelihood is at least :math:`\\log(1-\\varepsilon) + \\log p_\\theta`, so the
    average objective moves by at most :math:`-\\log(1-\\varepsilon)`, while on the OOD images
    :math:`r` alone is huge: AUROC collapses."""
    ood = main.digits.ood[target][0]
    x_ood = _dequantised(ood, 1, config.seed, "mixture", target).double()
    x_test = _dequantised(main.digits.splits["test"], 1, config.seed, "mixture", "test").double()
    dim = x_ood.shape[1]

    def log_r(x: torch.Tensor) -> np.ndarray:
        d2 = torch.cdist(x, x_ood) ** 2
        comp = -0.5 * d2 / width**2 - dim * math.log(width) - 0.5 * dim * math.log(2 * math.pi)
        return (torch.logsumexp(comp, dim=1) - math.log(len(x_ood))).numpy()

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FastPathWarning)
        flow = main.flow.double()
        lp_test, lp_ood = flow.log_prob(x_test).numpy(), flow.log_prob(x_ood).numpy()
        main.flow.float()
    lr_test, lr_ood = log_r(x_test), log_r(x_ood)
    rows = []
    for eps in epsilons:
        mix = lambda lp, lr: np.logaddexp(np.log1p(-eps) + lp, np.log(eps) + lr)  # noqa: E731
        change = float(np.mean(lp_test - mix(lp_test, lr_test)))
        rows.append(
            {
                "ε": eps,
                "objective change": change,
                "bound −log(1−ε)": -math.log1p(-eps),
                "AUROC": data.auroc_ci(
                    mix(lp_test, lr_test), mix(lp_ood, lr_ood), n_boot=10, seed=config.seed
                )[0],
                "AUROC of pθ": data.auroc_ci(lp_test, lp_ood, n_boot=10, seed=config.seed)[0],
            }
        )
    return pd.DataFrame(rows)


def gaussian_coadaptation(
    thesis_config, dim: int, families=("affine", "perturbed", "outlier"), n: int = 2000
) -> pd.DataFrame:
    """The thesis's §6.2.1 question on its own RealNVP: per member q of each family at ``dim``, the
    second coupling's R² of its prediction of the coordinates it transforms, with and without the
    swap, against how atypical q is (KL(q‖p), closed form). For the thesis's coupling
    :math:`y = x e^{s} + t`, the prediction is :math:`-t e^{-s}` (the value mapped to 0)."""
    from flowcore.studies.debruin2024.calibration import constants
    from flowcore.studies.debruin2024.families import family
    from flowcore.studies.debruin2024.training import trained_flow

    trained = trained_flow(dim, thesis_config, progress=False)
    flow, p = trained.flow.eval(), trained.p
    consts = constants(thesis_config)
    layers = list(flow.transform.transforms)
    couplings = [
        i
        for i, layer in enumerate(layers)
        if hasattr(layer, "scale_shift") and hasattr(layer, "_split")
    ]
    rows = []
    members = {("p", 1.0, 0.0): p}
    for fam in families:
        for (s, t), q in family(
            fam,
            p,
            thesis_config.scales,
            thesis_config.shifts,
            seed=thesis_config.seed,
            recipe=thesis_config.recipe,
            perturbation=consts.perturbation,
            outlier=consts.outlier,
        ).items():
            members[(fam, s, t)] = q
    for (fam, s, t), q in members.items():
        x = q.sample(
            n, rng.generator(rng.derived_seed(thesis_config.seed, "coadaptation", dim, fam, s, t))
        ).float()
        normal, swapped = _affine_r2(layers, couplings, x, seed=thesis_config.seed)
        rows.append(
            {
                "family": fam,
                "s": s,
                "t": t,
                "KL(q‖p)": float(q.kl(p)) if fam != "p" else 0.0,
                "R² layer 2": normal,
                "R² layer 2, swapped": swapped,
                "co-adaptation": normal - swapped,
            }
        )
    return pd.DataFrame(rows)


def _affine_r2(layers, couplings, x: torch.Tensor, seed: int) -> tuple[float, float]:
    """Layer-2 R² of the thesis's coupling prediction, normal and with the swap of layer 1's
    conditioning."""
    with torch.no_grad():
        states = [x]
        for layer in layers:
            states.append(layer(states[-1])[0])
        first, second = couplings[0], couplings[1]
        c1, c2 = layers[first], layers[second]

        def predict(layer, h):
            copied, transformed = layer._split(h)
            s, t = layer.scale_shift(copied)
            return transformed, -t * torch.exp(-s)

        def r2(y, yhat):
            total = ((y - y.mean(0)) ** 2).sum()
            return float(1 - ((y - yhat) ** 2).sum() / total)

        h = states[second]
        target, prediction = predict(c2, h)
        normal = r2(target, prediction)
        other = torch.randperm(len(x), generator=rng.generator(seed))
        h_prev = states[first]
        copied, transformed = c1._split(h_prev)
        copied_other, _ = c1._split(h_prev[other])
        swapped_prev = c1._join(copied_other, transformed)
        swapped_out = c1(swapped_prev)[0]
        # Keep image i's copied coordinates: only the transformed half carries image j's
        # conditioning.
        _, swapped_transformed = c1._split(swapped_out)
        mixed = c1._join(copied, swapped_transformed)
        # Layers between the two couplings (a permutation) act the same way.
        for layer in layers[first + 1 : second]:
            mixed = layer(mixed)[0]
        swapped = r2(target, predict(c2, mixed)[1])
        return normal, swapped


def ood_table(d: Digits) -> pd.DataFrame:
    """The OOD sets of ``d``: per set, its number of images and what it stands in for.

    Example:
        >>> d = Digits({}, {"class 1": (np.zeros((3, 64)), "a simpler class")})
        >>> ood_table(d).to_dict("index")
        {'class 1': {'images': 3, 'stands in for': 'a simpler class'}}
    """
    return pd.DataFrame(
        [
            {"set": name, "images": len(images), "stands in for": text}
            for name, (images, text) in d.ood.items()
        ]
    ).set_index("set")


def negative_comparison(plain: pd.DataFrame, negative: pd.DataFrame) -> pd.DataFrame:
    """K8's table: the AUROC per set of the plain flow and of the negatively trained one
    (:func:`negative_training`), on the sets both score (the test digits' own row has none).

    Example:
        >>> plain = pd.DataFrame({"AUROC": [np.nan, 0.2, 0.4]},
        ...                      index=["test", "class 1", "class 7"])
        >>> negative = pd.DataFrame({"AUROC": [np.nan, 0.95, 0.5]},
        ...                         index=["test", "class 1", "class 7"])
        >>> negative_comparison(plain, negative).values.tolist()
        [[0.2, 0.95], [0.4, 0.5]]
    """
    return pd.DataFrame({"plain": plain["AUROC"], "negative training": negative["AUROC"]}).dropna()


#: The thesis's question on its Gaussians: a trend of the co-adaptation with KL(q‖p) is read as
#: one where Spearman's test rejects ρ = 0 at this level.
TREND_LEVEL = 0.01


@dataclass(frozen=True)
class TypicalityTrend:
    """How the co-adaptation of :func:`gaussian_coadaptation` changes with how atypical a member is:
    Spearman ``rho`` (with its ``pvalue``) over the ``members`` of the families against KL(q‖p);
    ``answer`` ("grows", "shrinks" or "shows no clear trend", at :data:`TREND_LEVEL`); ``base`` the
    row of q = p; ``predicts`` whether the second coupling predicts its coordinates on p at all
    (its R² above 0)."""

    rho: float
    pvalue: float
    members: int
    answer: str
    base: pd.Series
    predicts: bool


def typicality_trend(gaussian: pd.DataFrame, level: float = TREND_LEVEL) -> TypicalityTrend:
    """:class:`TypicalityTrend` of a :func:`gaussian_coadaptation` table (its row of family ``p`` is
    q = p; the others are the members whose atypicality is KL(q‖p)).

    Example:
        >>> kl = np.arange(1.0, 21.0)
        >>> table = pd.DataFrame({"family": ["p"] + ["affine"] * 20, "KL(q‖p)": [0.0, *kl],
        ...                       "co-adaptation": [0.1, *(0.01 * kl)],
        ...                       "R² layer 2": [-0.2, *(0 * kl)]})
        >>> trend = typicality_trend(table)
        >>> trend.answer, round(trend.rho, 3), trend.members, trend.predicts
        ('grows', 1.0, 20, False)
    """
    level = check_probability("level", level)
    atypical = gaussian[gaussian["family"] != "p"]
    base = gaussian[gaussian["family"] == "p"]
    if base.empty or len(atypical) < 3:
        raise ValueError(
            "gaussian must hold the row of q = p (family 'p') and at least 3 other members"
        )
    test = spearmanr(atypical["KL(q‖p)"], atypical["co-adaptation"])
    rho, pvalue = float(test.statistic), float(test.pvalue)
    if rho > 0 and pvalue < level:
        answer = "grows"
    elif rho < 0 and pvalue < level:
        answer = "shrinks"
    else:
        answer = "shows no clear trend"
    row = base.iloc[0]
    return TypicalityTrend(rho, pvalue, len(atypical), answer, row, bool(row["R² layer 2"] > 0))
