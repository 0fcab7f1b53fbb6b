r"""An offline analogue of Song et al.'s Tables 1–2 on 8×8 digits, with the class-conditional NLL.

The class-conditional model is one image flow per in-distribution class,
:math:`p_\theta(x \mid c)` (the Kirichenko study's flows, :func:`flowcore.flows.image.image_flow`),
trained by the class-conditional NLL :math:`-\log p_\theta(x \mid c)` on that class's digits,
optionally with the KLJ term. It classifies by :math:`\arg\max_c \log p_\theta(x \mid c)` (uniform
class prior) and scores OOD by :math:`\log p_\theta(x) = \log \tfrac1C \sum_c p_\theta(x \mid c)`.
Variants: training outliers (a fraction :math:`r` of each class's training images replaced by uniform
noise images) and a training fraction :math:`p` of each class's images.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from flowcore import rng
from flowcore.studies.kirichenko2020 import data
from flowcore.studies.kirichenko2020.config import KirichenkoConfig
from flowcore.studies.kirichenko2020.experiments import score_sets, trained_image_flow
from flowcore.studies.song2024.klj import klj_term

__all__ = ["VARIANTS", "variants", "class_conditional", "digits_table"]


def variants(klj_weight: float, outlier_fraction: float, fraction: float) -> list[dict]:
    """The models compared: (KLJ off / on) × (clean, with training outliers, a small training fraction)."""
    base = [("clean", 0.0, 1.0), (f"r = {outlier_fraction:g}", outlier_fraction, 1.0), (f"p = {fraction:g}", 0.0, fraction)]
    return [{"data": name, "r": r, "p": p, "klj_weight": k} for name, r, p in base for k in (0.0, klj_weight)]


VARIANTS = variants


def class_conditional(kconfig: KirichenkoConfig, splits: dict, labels: dict, r: float, p: float, klj: float, seed: int, progress: bool | None = None) -> list:
    """One flow per in-distribution class, trained on its (subsampled, contaminated) digits (cached)."""
    flows = []
    gen = np.random.default_rng(rng.derived_seed(seed, "song digits", r, p))
    for c in kconfig.in_classes:
        train = splits["train"][labels["train"] == c]
        val = splits["val"][labels["val"] == c]
        keep = max(4, int(round(p * len(train))))
        train = train[gen.permutation(len(train))[:keep]].copy()
        n_out = int(round(r * len(train)))
        if n_out:
            train[:n_out] = gen.integers(0, data.DIGIT_LEVELS, size=(n_out, train.shape[1]))
        terms, name = ([klj_term(klj)], f"klj {klj:g}") if klj > 0 else ((), "")
        run = trained_image_flow(kconfig, train, val, name=f"class {c}, r={r:g}, p={p:g}, seed {seed}", loss_terms=terms, loss_name=name, progress=progress)
        flows.append(run.flow.eval())
    return flows


def digits_table(kconfig: KirichenkoConfig, klj_weight: float, outlier_fraction: float, fraction: float, progress: bool | None = None) -> pd.DataFrame:
    """Per variant: test accuracy of the class-conditional classifier and the AUROC of the test digits
    against each OOD set (transposed digits stand in for the paper's rotations; test digits plus noise
    for its noisy set)."""
    splits = data.digits_splits(kconfig.in_classes, seed=kconfig.seed)
    labels = data.split_labels(kconfig.in_classes, seed=kconfig.seed)
    ood = {k: v for k, (v, _) in data.ood_sets(splits, seed=kconfig.seed).items()}
    test = splits["test"]
    noise = np.random.default_rng(rng.derived_seed(kconfig.seed, "song noisy")).integers(-3, 4, size=test.shape)
    ood["transposed"] = test.reshape(-1, 8, 8).transpose(0, 2, 1).reshape(-1, 64)
    ood["noisy digits"] = np.clip(test + noise, 0, 16)
    rows = []
    for v in variants(klj_weight, outlier_fraction, fraction):
        flows = class_conditional(kconfig, splits, labels, v["r"], v["p"], v["klj_weight"], kconfig.seed, progress)
        per_class = [score_sets(kconfig, flow, {"test": test, **ood}) for flow in flows]
        log_px = {name: np.logaddexp.reduce(np.stack([s[name] for s in per_class]), axis=0) - math.log(len(flows)) for name in per_class[0]}
        predicted = np.array(kconfig.in_classes)[np.argmax(np.stack([s["test"] for s in per_class]), axis=0)]
        row = {**v, "accuracy": float(np.mean(predicted == labels["test"]))}
        for name in ood:
            row[f"AUROC {name}"] = data.auroc_ci(log_px["test"], log_px[name], n_boot=kconfig.n_boot, seed=kconfig.seed)[0]
        row["mean AUROC"] = float(np.mean([row[f"AUROC {n}"] for n in ood]))
        rows.append(row)
    return pd.DataFrame(rows)
