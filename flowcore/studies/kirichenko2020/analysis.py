r"""The study end to end: every flow, table and measurement the chapter shows, from one config.

Each function computes one part (trained flows and the ceiling regressor are cached; scoring takes
seconds) and returns plain tables, so the chapter only arranges them and the claims of
:mod:`~flowcore.studies.kirichenko2020.claims` read them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from flowcore import rng
from flowcore.config import FlowConfig
from flowcore.flows.fast import FastPathWarning
from flowcore.runs import train_or_load
from flowcore.studies.kirichenko2020 import data
from flowcore.studies.kirichenko2020.config import KirichenkoConfig
from flowcore.studies.kirichenko2020.experiments import (
    Digits,
    _dequantised,
    auroc_table,
    ceiling_r2,
    digits,
    edge_correlation,
    layer_r2,
    layer_states,
    neighbour_mean,
    score_sets,
    swap_r2,
    train_config,
    trained_image_flow,
)
from flowcore.train import TrainConfig

__all__ = [
    "ood_summary",
    "main_results",
    "simple_flow_auroc",
    "masks_table",
    "bottleneck_table",
    "coadaptation_table",
    "coupling_figure_data",
    "edges_table",
    "prediction_vs_likelihood",
    "layer_r2_by_set",
    "predicting_layer",
    "neighbour_correlation",
    "negative_training",
    "feature_flow",
    "tabular",
    "mixture",
    "gaussian_coadaptation",
]


def _sets(d: Digits) -> dict[str, np.ndarray]:
    return {"train": d.splits["train"], "test": d.splits["test"], **{name: images for name, (images, _) in d.ood.items()}}


def ood_summary(table: pd.DataFrame) -> float:
    """Mean AUROC over the OOD sets of a :func:`~flowcore.studies.kirichenko2020.experiments.auroc_table`."""
    return float(table["AUROC"].dropna().mean())


@dataclass
class MainResults:
    digits: Digits
    flow: torch.nn.Module
    history: object
    scores: dict[str, np.ndarray]
    table: pd.DataFrame


def main_results(config: KirichenkoConfig, progress: bool | None = None) -> MainResults:
    """The main flow (``config.mask``, no bottleneck) and its AUROC table over every OOD set (K1)."""
    d = digits(config)
    run = trained_image_flow(config, progress=progress)
    scores = score_sets(config, run.flow, _sets(d))
    return MainResults(d, run.flow, run.history, scores, auroc_table(config, scores))


def simple_flow_auroc(config: KirichenkoConfig, d: Digits, progress: bool | None = None) -> tuple[float, float, float]:
    """K1's other direction: a flow trained on 70% of class 1 scores the other 30% against the digits' test set."""
    ones = d.ood["class 1"][0]
    order = np.random.default_rng(rng.derived_seed(config.seed, "class 1 split")).permutation(len(ones))
    cut, val_cut = int(0.6 * len(ones)), int(0.7 * len(ones))
    train, val, held = ones[order[:cut]], ones[order[cut:val_cut]], ones[order[val_cut:]]
    run = trained_image_flow(config, train, val, name="class 1", progress=progress)
    scores = score_sets(config, run.flow, {"class 1": held, "digits": d.splits["test"]})
    return data.auroc_ci(scores["class 1"], scores["digits"], n_boot=config.n_boot, seed=config.seed)


def masks_table(config: KirichenkoConfig, d: Digits, progress: bool | None = None) -> tuple[pd.DataFrame, dict]:
    """K6: per mask, test bits/dim and the mean AUROC over the OOD sets (and each set's)."""
    rows, tables = [], {}
    for mask in config.masks:
        run = trained_image_flow(config, mask=mask, progress=progress)
        table = auroc_table(config, score_sets(config, run.flow, _sets(d)))
        tables[mask] = table
        rows.append({"mask": mask, "test bits/dim": table.loc["test", "bits/dim"], "train bits/dim": table.loc["train", "bits/dim"], "mean AUROC": ood_summary(table), **{f"AUROC {k}": v for k, v in table["AUROC"].dropna().items()}})
    return pd.DataFrame(rows).set_index("mask"), tables


def bottleneck_table(config: KirichenkoConfig, d: Digits, progress: bool | None = None) -> pd.DataFrame:
    """K7: per bottleneck size l (None: no bottleneck), test bits/dim and the OOD AUROCs."""
    rows = []
    for size in config.bottlenecks:
        run = trained_image_flow(config, bottleneck=size, progress=progress)
        table = auroc_table(config, score_sets(config, run.flow, _sets(d)))
        rows.append({"l": "none" if size is None else str(size), "test bits/dim": table.loc["test", "bits/dim"], "mean AUROC": ood_summary(table), **{f"AUROC {k}": v for k, v in table["AUROC"].dropna().items()}})
    return pd.DataFrame(rows).set_index("l")


def _logit_images(config: KirichenkoConfig, images: np.ndarray, label: str) -> torch.Tensor:
    return _dequantised(images, 1, config.seed, "analysis", label)


def coadaptation_table(config: KirichenkoConfig, d: Digits, progress: bool | None = None) -> pd.DataFrame:
    """K5: for the main flow, the flow with the smallest bottleneck, and the cycle mask: layer-2 R²
    in distribution, with the swap, and the ceiling; and the same R² on class 1 and flipped digits."""
    variants = [(f"{config.mask}", config.mask, None)]
    smallest = min((b for b in config.bottlenecks if b is not None), default=None)
    if smallest is not None:
        variants.append((f"{config.mask}, l = {smallest}", config.mask, smallest))
    if "cycle" in config.masks and config.mask != "cycle":
        variants.append(("cycle", "cycle", None))
    x_train = _logit_images(config, d.splits["train"], "train")
    x_test = _logit_images(config, d.splits["test"], "test")
    rows = []
    for label, mask, size in variants:
        flow = trained_image_flow(config, mask=mask, bottleneck=size, progress=progress).flow.eval()
        normal, swapped = layer_r2(flow, x_test), swap_r2(flow, x_test, seed=config.seed)
        row = {"flow": label, "R² layer 1": normal[0], "R² layer 2": normal[1], "R² layer 2, swapped": swapped[1]}
        row["ceiling"] = ceiling_r2(config, flow, x_train, x_test, layer_index=1, progress=progress) if size is None and mask == config.mask else float("nan")
        for name in ("class 1", "flipped up–down"):
            if name in d.ood:
                x = _logit_images(config, d.ood[name][0], name)
                row[f"R² layer 2, {name}"] = layer_r2(flow, x)[1]
                row[f"R² layer 2 swapped, {name}"] = swap_r2(flow, x, seed=config.seed)[1]
        rows.append(row)
    return pd.DataFrame(rows).set_index("flow")


def coupling_figure_data(config: KirichenkoConfig, flow: torch.nn.Module, images: dict[str, np.ndarray]) -> dict[str, list[dict]]:
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
                    panels.append({k: v[0].reshape(8, 8).numpy() for k, v in (("input", parts["input"]), ("output", parts["output"]), ("exp(s)", torch.exp(parts["s"])), ("−t", parts["prediction"]))})
        out[name] = panels
    return out


def layer_r2_by_set(config: KirichenkoConfig, flow: torch.nn.Module, d: Digits) -> pd.DataFrame:
    """K4: each coupling's R² of its prediction −t, on the test digits and on each OOD set (rows)."""
    rows = {}
    for name, images in {"test": d.splits["test"], **{k: v for k, (v, _) in d.ood.items()}}.items():
        rows[name] = layer_r2(flow, _logit_images(config, images, name))
    return pd.DataFrame(rows, index=[f"layer {k + 1}" for k in range(len(next(iter(rows.values()))))]).T


def predicting_layer(r2_table: pd.DataFrame) -> int:
    """The coupling (0-based) whose prediction explains the most of the test digits' changed pixels."""
    return int(np.argmax(r2_table.loc["test"].to_numpy()))


def neighbour_correlation(config: KirichenkoConfig, flow: torch.nn.Module, d: Digits, layer: int) -> float:
    """K4: correlation, over the changed pixels of the test digits, of coupling ``layer``'s −t with
    the 4-neighbour mean of the values entering it."""
    from flowcore.flows.image import coupling_layers

    coupling = coupling_layers(flow)[layer]
    index = list(flow.transform.transforms).index(coupling)
    h = layer_states(flow, _logit_images(config, d.splits["test"], "test"))[index]
    with torch.no_grad():
        prediction = coupling.parts(h)["prediction"][:, coupling.change_mask].flatten().numpy()
    neighbours = neighbour_mean(h)[:, coupling.change_mask].flatten().numpy()
    return float(np.corrcoef(prediction, neighbours)[0, 1])


def prediction_vs_likelihood(config: KirichenkoConfig, flow: torch.nn.Module, d: Digits, scores: dict[str, np.ndarray], layer: int = 0) -> tuple[float, float, pd.DataFrame]:
    """K3: per image (test and OOD), coupling ``layer``'s mean squared prediction error of its changed
    pixels against the image's log-likelihood; Spearman ρ and p over all of them."""
    from flowcore.flows.image import coupling_layers

    first = coupling_layers(flow)[layer]
    index = list(flow.transform.transforms).index(first)
    rows = []
    for name, images in {"test": d.splits["test"], **{k: v for k, (v, _) in d.ood.items()}}.items():
        x = _logit_images(config, images, name)
        h = layer_states(flow, x)[index]
        with torch.no_grad():
            err = ((first.parts(h)["prediction"] - h)[:, first.change_mask] ** 2).mean(1).numpy()
        rows.append(pd.DataFrame({"set": name, "prediction error": err, "log-likelihood": scores[name]}))
    frame = pd.concat(rows, ignore_index=True)
    result = spearmanr(frame["prediction error"], frame["log-likelihood"])
    return float(result.statistic), float(result.pvalue), frame


def edges_table(config: KirichenkoConfig, flow: torch.nn.Module, d: Digits) -> pd.DataFrame:
    """K2: per set, the correlation of |z| with the image's own edge map and with another image's."""
    rows = []
    for name, images in {"test": d.splits["test"], **{k: v for k, (v, _) in d.ood.items() if k != "uniform noise"}}.items():
        z = layer_states(flow, _logit_images(config, images, name))[-1].numpy()
        matched, mismatched = edge_correlation(z, images, seed=config.seed)
        rows.append({"set": name, "matched": matched, "mismatched": mismatched})
    return pd.DataFrame(rows).set_index("set")


def negative_training(config: KirichenkoConfig, d: Digits, plain: pd.DataFrame, progress: bool | None = None) -> tuple[pd.DataFrame, int]:
    """K8: retrain with the paper's negative term on 60% of ``config.negative_target``: the loss adds
    ``mean(max(log p(x_ood), c))`` (c = ``negative_cutoff``) to the NLL; score on the held-out 40%."""
    target = config.negative_target
    images = d.ood[target][0]
    order = np.random.default_rng(rng.derived_seed(config.seed, "negative split")).permutation(len(images))
    cut = int(0.6 * len(images))
    used, held = images[order[:cut]], images[order[cut:]]
    ood_x = _dequantised(used, config.copies, config.seed, "negative", target)
    holder: dict = {}

    def build_hook(flow):
        holder["flow"] = flow

    def negative_term(batch, log_scales):
        flow = holder["flow"]
        idx = torch.randint(len(ood_x), (min(len(batch), len(ood_x)),), generator=holder.setdefault("gen", rng.generator(config.seed)))
        return torch.clamp(flow.log_prob(ood_x[idx].to(batch.device)), min=config.negative_cutoff).mean()

    from flowcore.flows.image import image_flow

    architecture = {"size": 8, "n_couplings": config.n_couplings, "mask": config.mask, "channels": config.channels, "n_blocks": config.n_blocks, "bottleneck": None}

    def build():
        flow = image_flow(**architecture)
        build_hook(flow)
        return flow

    x_train = _dequantised(d.splits["train"], config.copies, config.seed, "train", "in-distribution")
    x_val = _dequantised(d.splits["val"], 1, config.seed, "val", "in-distribution")
    spec = {"study": "kirichenko2020", "data": "in-distribution", "in_classes": config.in_classes, "copies": config.copies, "architecture": architecture, "loss": f"negative {target} c={config.negative_cutoff}", "n": len(d.splits["train"])}
    run = train_or_load(spec, build, lambda: (x_train, x_val), train_config(config, len(x_train), len(x_val)), config.torch_device, loss_terms=[negative_term], progress=progress, description=f"negative training ({target})")
    sets = {k: v for k, v in _sets(d).items()}
    sets[target] = held
    table = auroc_table(config, score_sets(config, run.flow, sets))
    return table, len(held)


def feature_flow(config: KirichenkoConfig, d: Digits, progress: bool | None = None) -> pd.DataFrame:
    """K9: a small classifier (one hidden ReLU layer of ``config.features`` units, scikit-learn's
    MLP) trained on the in-distribution digits and their labels; a RealNVP on its hidden activations
    of the training digits; AUROC of the test digits against each OOD set in that feature space."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    bunch = load_digits()
    keep = np.isin(bunch.target, config.in_classes)
    train_rows = {tuple(r) for r in d.splits["train"].tolist()}
    mask = np.array([keep[i] and tuple(bunch.data[i].astype(int).tolist()) in train_rows for i in range(len(bunch.data))])
    clf = MLPClassifier(hidden_layer_sizes=(config.features,), max_iter=400, random_state=config.seed)
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
    tc = TrainConfig(n_train=len(f_train), n_val=len(f_val), batch_size=config.batch_size, lr=config.lr, max_epochs=max(config.max_epochs, 10), patience=config.patience, seed=config.seed)
    spec = {"study": "kirichenko2020", "features": config.features, "in_classes": config.in_classes, "accuracy": round(float(clf.score(bunch.data[mask] / 16.0, bunch.target[mask])), 6), "flow": flow_config}
    run = train_or_load(spec, lambda: flow_config.build(config.features), lambda: (norm(f_train), norm(f_val)), tc, "cpu", progress=progress, description="feature flow")
    flow = run.flow.eval()
    scores = {}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FastPathWarning)
        for name, images in {"test": d.splits["test"], **{k: v for k, (v, _) in d.ood.items()}}.items():
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
            tc = TrainConfig(n_train=len(split.train), n_val=len(split.val), batch_size=min(config.batch_size, 64), lr=config.lr, max_epochs=max(config.max_epochs, 10), patience=config.patience, seed=config.seed)
            direction = f"{split.in_label} vs {split.out_label}"
            spec = {"study": "kirichenko2020", "tabular": name, "direction": direction, "flow": flow_config, "seed": config.seed}
            x_tr, x_va = (torch.tensor(a, dtype=torch.float32) for a in (split.train, split.val))
            run = train_or_load(spec, lambda: flow_config.build(dim), lambda: (x_tr, x_va), tc, "cpu", progress=progress, description=f"{name} {direction}")
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", FastPathWarning)
                s_in = run.flow.log_prob(torch.tensor(split.test, dtype=torch.float32)).numpy()
                s_out = run.flow.log_prob(torch.tensor(split.ood, dtype=torch.float32)).numpy()
            value, low, high = data.auroc_ci(s_in, s_out, n_boot=config.n_boot, seed=config.seed)
            rows.append({"dataset": name, "direction": direction, "in (test)": len(s_in), "other": len(s_out), "AUROC": value, "CI low": low, "CI high": high})
    return pd.DataFrame(rows)


def mixture(config: KirichenkoConfig, main: MainResults, target: str = "class 1", epsilons=(0.01, 0.05, 0.1), width: float = 1e-3) -> pd.DataFrame:
    """K11, computed: the mixture :math:`q = (1-\\varepsilon)p_\\theta + \\varepsilon r` with :math:`r` an
    equal mixture of narrow Gaussians (std ``width``) on the OOD images. On the test digits its
    log-likelihood is at least :math:`\\log(1-\\varepsilon) + \\log p_\\theta`, so the average
    objective moves by at most :math:`-\\log(1-\\varepsilon)`, while on the OOD images :math:`r`
    alone is huge: AUROC collapses."""
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
        rows.append({"ε": eps, "objective change": change, "bound −log(1−ε)": -math.log1p(-eps), "AUROC": data.auroc_ci(mix(lp_test, lr_test), mix(lp_ood, lr_ood), n_boot=10, seed=config.seed)[0], "AUROC of pθ": data.auroc_ci(lp_test, lp_ood, n_boot=10, seed=config.seed)[0]})
    return pd.DataFrame(rows)


def gaussian_coadaptation(thesis_config, dim: int, families=("affine", "perturbed", "outlier"), n: int = 2000) -> pd.DataFrame:
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
    couplings = [i for i, layer in enumerate(layers) if hasattr(layer, "scale_shift") and hasattr(layer, "_split")]
    rows = []
    members = {("p", 1.0, 0.0): p}
    for fam in families:
        for (s, t), q in family(fam, p, thesis_config.scales, thesis_config.shifts, seed=thesis_config.seed, recipe=thesis_config.recipe, perturbation=consts.perturbation, outlier=consts.outlier).items():
            members[(fam, s, t)] = q
    for (fam, s, t), q in members.items():
        x = q.sample(n, rng.generator(rng.derived_seed(thesis_config.seed, "coadaptation", dim, fam, s, t))).float()
        normal, swapped = _affine_r2(layers, couplings, x, seed=thesis_config.seed)
        rows.append({"family": fam, "s": s, "t": t, "KL(q‖p)": float(q.kl(p)) if fam != "p" else 0.0, "R² layer 2": normal, "R² layer 2, swapped": swapped, "co-adaptation": normal - swapped})
    return pd.DataFrame(rows)


def _affine_r2(layers, couplings, x: torch.Tensor, seed: int) -> tuple[float, float]:
    """Layer-2 R² of the thesis's coupling prediction, normal and with the swap of layer 1's conditioning."""
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
        # Keep image i's copied coordinates: only the transformed half carries image j's conditioning.
        _, swapped_transformed = c1._split(swapped_out)
        mixed = c1._join(copied, swapped_transformed)
        # Layers between the two couplings (a permutation) act the same way.
        for layer in layers[first + 1 : second]:
            mixed = layer(mixed)[0]
        swapped = r2(target, predict(c2, mixed)[1])
        return normal, swapped
