r"""The experiments of Kirichenko, Izmailov & Wilson (2020), on 8×8 digits and on the thesis's
Gaussians.

Every image flow is a :func:`flowcore.flows.image.image_flow` trained by maximum likelihood on
dequantised in-distribution digits (:mod:`~flowcore.studies.kirichenko2020.data`), cached through
:func:`flowcore.runs.train_or_load`. An image is scored by its mean log-likelihood over a few
dequantisation draws; the in-distribution test set against each OOD set gives an AUROC (below 0.5:
the OOD set is rated *more* likely).

Co-adaptation (§6.2) is measured per coupling layer :math:`k` on the values entering it,
:math:`h_{k-1}`: the layer's prediction of its changed pixels, :math:`-t_k` (the paper's form
:math:`y = (x + t)e^{s}`), scored by :math:`R^2`; the **swap test** recomputes layer
:math:`k-1`'s output from *another* image's conditioning pixels before layer :math:`k` predicts:
whatever :math:`R^2` is lost was information about the changed pixels that layer :math:`k-1` had
smuggled into its output, i.e. the layers co-adapt. A **ceiling** is a network of the same shape
trained by least squares to predict the same pixels from the unmodified conditioning pixels.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from flowcore import rng
from flowcore.cache import cached
from flowcore.flows.fast import FastPathWarning
from flowcore.flows.image import ConvSTNet, coupling_layers, image_flow
from flowcore.runs import Run, train_or_load
from flowcore.studies.kirichenko2020 import data
from flowcore.studies.kirichenko2020.config import KirichenkoConfig

__all__ = [
    "Digits",
    "digits",
    "architecture",
    "image_side",
    "trained_image_flow",
    "untrained_image_flow",
    "score_sets",
    "auroc_table",
    "layer_states",
    "layer_r2",
    "swap_r2",
    "ceiling_r2",
    "r2",
]


@dataclass
class Digits:
    """The splits (pixel values 0–16, flat 64-vectors) and the OOD sets with their descriptions."""

    splits: dict[str, np.ndarray]
    ood: dict[str, tuple[np.ndarray, str]]


def digits(config: KirichenkoConfig) -> Digits:
    """The in-distribution splits of ``config.in_classes`` and the OOD sets, from
    ``config.seed``."""
    splits = data.digits_splits(config.in_classes, seed=config.seed)
    return Digits(splits, data.ood_sets(splits, seed=config.seed))


def architecture(
    config: KirichenkoConfig,
    mask: str | None = None,
    bottleneck: int | None = None,
    size: int = 8,
) -> dict:
    """The keyword arguments of :func:`~flowcore.flows.image.image_flow` for ``config`` (default
    mask: ``config.mask``) on ``size × size`` images (8: the digits), as they enter a flow's cache
    key.

    Example:
        >>> config = KirichenkoConfig()
        >>> architecture(config, bottleneck=8)["bottleneck"], architecture(config)["mask"]
        (8, 'checkerboard')
    """
    mask = config.mask if mask is None else mask
    return {
        "size": size,
        "n_couplings": config.n_couplings,
        "mask": mask,
        "channels": config.channels,
        "n_blocks": config.n_blocks,
        "bottleneck": bottleneck,
    }


def untrained_image_flow(
    config: KirichenkoConfig,
    mask: str | None = None,
    bottleneck: int | None = None,
    size: int = 8,
) -> nn.Module:
    """The image flow :func:`trained_image_flow` starts from: the same architecture built under the
    same seed (``config.seed``, as :func:`flowcore.runs.train_or_load` builds it), not trained: the
    untrained null. Its couplings start as the identity (zero-initialised output layers), so
    :math:`t = 0` and each coupling's "prediction" of its changed pixels is 0.

    Example:
        >>> flow = untrained_image_flow(KirichenkoConfig(channels=2, n_blocks=1))
        >>> x = torch.full((1, 64), 0.5)
        >>> # only the logit acts
        >>> torch.equal(flow.transform(x)[0], flow.transform.transforms[0](x)[0])
        True
    """
    with rng.seeded(config.seed):
        flow = image_flow(**architecture(config, mask, bottleneck, size))
    return flow.to(config.torch_device).eval()


def image_side(images: np.ndarray) -> int:
    """The side of the square images stored flat in the rows of ``images``.

    Example:
        >>> image_side(np.zeros((3, 196), dtype=int))
        14
    """
    side = math.isqrt(images.shape[1]) if images.ndim == 2 else 0
    if side < 2 or side * side != images.shape[1]:
        raise ValueError(
            f"images must be flat square images, shape (n, side²), got shape {images.shape}"
        )
    return side


def _dequantised(
    images: np.ndarray, copies: int, seed: int, *labels, levels: int = data.DIGIT_LEVELS
) -> Tensor:
    """``copies`` dequantisations of ``images`` stacked, each with its own seeded noise."""
    return torch.cat(
        [
            data.dequantize(
                images,
                rng.generator(rng.derived_seed(seed, "dequantize", *labels, c)),
                levels=levels,
            )
            for c in range(copies)
        ]
    )


def trained_image_flow(
    config: KirichenkoConfig,
    images: np.ndarray | None = None,
    val: np.ndarray | None = None,
    *,
    mask: str | None = None,
    bottleneck: int | None = None,
    name: str = "in-distribution",
    loss_terms=(),
    loss_name: str = "",
    progress: bool | None = None,
    levels: int = data.DIGIT_LEVELS,
) -> Run:
    """Train (or load) an image flow on ``images`` (default: the in-distribution training split),
    flat square images with pixel values ``0..levels − 1`` (17 levels: the digits; 256: 8-bit
    images such as MNIST).

    ``name`` and ``loss_name`` label the data and any extra loss term in the cache key.
    """
    if images is None:
        d = digits(config)
        images, val = d.splits["train"], d.splits["val"]
    arch = architecture(config, mask, bottleneck, image_side(images))
    spec = {
        "study": "kirichenko2020",
        "data": name,
        "in_classes": config.in_classes,
        "copies": config.copies,
        "architecture": arch,
        "loss": loss_name,
        "n": len(images),
    }
    if levels != data.DIGIT_LEVELS:
        spec["levels"] = levels  # only then: the digits' flows keep the keys they always had
    x_train = _dequantised(images, config.copies, config.seed, "train", name, levels=levels)
    x_val = _dequantised(val, 1, config.seed, "val", name, levels=levels)
    return train_or_load(
        spec,
        lambda: image_flow(**arch),
        lambda: (x_train, x_val),
        config.train,
        config.torch_device,
        loss_terms=loss_terms,
        progress=progress,
        description=f"flow ({arch['mask']}, l={bottleneck}, {name})",
    )


def score_sets(
    config: KirichenkoConfig,
    flow: nn.Module,
    sets: Mapping[str, np.ndarray],
    levels: int = data.DIGIT_LEVELS,
) -> dict[str, np.ndarray]:
    """Each set's images (pixel values ``0..levels − 1``) scored by their mean log-likelihood
    (nats) over ``config.n_draws`` dequantisations."""
    flow = flow.to(config.torch_device).eval()

    def log_prob(x: Tensor) -> Tensor:
        return flow.log_prob(x.to(config.torch_device)).cpu()

    with warnings.catch_warnings():
        # The logit pre-processing has no no-grad fast path; the autograd path gives the same
        # numbers.
        warnings.simplefilter("ignore", FastPathWarning)
        return {
            name: data.mean_log_likelihood(
                log_prob,
                images,
                n_draws=config.n_draws,
                seed=rng.derived_seed(config.seed, "score", name),
                batch_size=config.chunk_size,
                levels=levels,
            )
            for name, images in sets.items()
        }


def auroc_table(
    config: KirichenkoConfig,
    scores: Mapping[str, np.ndarray],
    reference: str = "test",
    dim: int = data.DIM,
    levels: int = data.DIGIT_LEVELS,
) -> pd.DataFrame:
    """Per set: mean log-likelihood, bits per dimension (of ``dim`` pixels with ``levels`` values),
    and AUROC of the reference set against it with its bootstrap interval (the reference's own row
    has none)."""
    rows = []
    for name, s in scores.items():
        row = {
            "set": name,
            "images": len(s),
            "mean log-likelihood (nats)": float(s.mean()),
            "bits/dim": float(np.mean(data.bits_per_dim(s, dim, levels))),
        }
        if name != reference and name not in ("train", "val"):
            value, low, high = data.auroc_ci(
                scores[reference],
                s,
                n_boot=config.n_boot,
                seed=rng.derived_seed(config.seed, "boot", name),
            )
            row.update({"AUROC": value, "CI low": low, "CI high": high})
        rows.append(row)
    return pd.DataFrame(rows).set_index("set")


# --- co-adaptation --------------------------------------------------------------------------------


def r2(target: Tensor, prediction: Tensor, mask: Tensor) -> float:
    """:math:`R^2 = 1 - \\sum (y - \\hat y)^2 / \\sum (y - \\bar y)^2` over the masked coordinates,
    with :math:`\\bar y` the batch mean per coordinate.

    Example:
        >>> y = torch.tensor([[0.0, 1.0], [2.0, 3.0]]); m = torch.tensor([True, False])
        >>> r2(y, y, m), r2(y, torch.zeros_like(y) + 1.0, m)
        (1.0, 0.0)
    """
    y, p = target[:, mask], prediction[:, mask]
    total = ((y - y.mean(0)) ** 2).sum()
    return float(1 - ((y - p) ** 2).sum() / total) if total > 0 else float("nan")


def layer_states(flow: nn.Module, x: Tensor) -> list[Tensor]:
    """The values entering each transform of the flow and the final latent:
    ``[h_0 = x, h_1, …, z]``."""
    states = [x]
    with torch.no_grad():
        for layer in flow.transform.transforms:
            states.append(layer(states[-1])[0])
    return states


def _first_coupling_index(flow: nn.Module) -> int:
    return next(
        i
        for i, layer in enumerate(flow.transform.transforms)
        if layer in set(coupling_layers(flow))
    )


def layer_r2(flow: nn.Module, x: Tensor) -> list[float]:
    """Per coupling layer, the :math:`R^2` of its prediction :math:`-t` of the pixels it changes."""
    states = layer_states(flow, x)
    out = []
    with torch.no_grad():
        for i, layer in enumerate(flow.transform.transforms):
            if layer in set(coupling_layers(flow)):
                parts = layer.parts(states[i])
                out.append(r2(states[i], parts["prediction"], layer.change_mask))
    return out


def swap_r2(flow: nn.Module, x: Tensor, seed: int = 0) -> list[float]:
    """Per coupling layer after the first: its :math:`R^2` when the previous coupling's output was
    computed from a *random other image's* conditioning pixels (the swap test; NaN for the
    first)."""
    states = layer_states(flow, x)
    layers = list(flow.transform.transforms)
    couplings = set(coupling_layers(flow))
    other = torch.randperm(len(x), generator=rng.generator(seed))
    out = []
    with torch.no_grad():
        previous = None
        for i, layer in enumerate(layers):
            if layer not in couplings:
                continue
            if previous is None:
                out.append(float("nan"))
            else:
                j = previous
                prev = layers[j]
                mixed = torch.where(prev.condition_mask, states[j][other], states[j])
                swapped_out = prev(mixed)[0]
                # Layer i sees the previous layer's changed pixels as computed from the other
                # image's conditioning half.
                h = torch.where(prev.change_mask, swapped_out, states[i])
                out.append(r2(states[i], layer.parts(h)["prediction"], layer.change_mask))
            previous = i
    return out


def ceiling_r2(
    config: KirichenkoConfig,
    flow: nn.Module,
    train: Tensor,
    test: Tensor,
    layer_index: int = 1,
    epochs: int = 20,
    progress: bool | None = None,
    data: str = "",
) -> float:
    """The :math:`R^2` a network shaped like the couplings' reaches, trained by least squares, when
    it predicts coupling ``layer_index``'s changed pixels from the *unmodified* pixels it conditions
    on (the data after the logit pre-processing; cached). ``data`` names the images in the cache
    key (the digits: none)."""
    couplings = coupling_layers(flow)
    target_layer = couplings[layer_index]
    cond, change = target_layer.condition_mask, target_layer.change_mask
    side = math.isqrt(cond.numel())
    pre = flow.transform.transforms[0]
    with torch.no_grad():
        h_train, h_test = pre(train)[0], pre(test)[0]
    spec = {
        "study": "kirichenko2020",
        "ceiling": layer_index,
        "channels": config.channels,
        "n_blocks": config.n_blocks,
        "seed": config.seed,
        "epochs": epochs,
        "n": len(train),
        "mask": config.mask,
    }
    if data:
        spec["data"] = data  # only then: the digits' ceilings keep the keys they always had

    def compute() -> dict:
        with rng.seeded(config.seed):
            net = ConvSTNet(side, config.channels, config.n_blocks, None)
        optimizer = torch.optim.Adam(net.parameters(), lr=config.train.lr)
        order_gen = rng.generator(rng.derived_seed(config.seed, "ceiling"))

        def predict(h: Tensor) -> Tensor:  # −t from the conditioning pixels, as a coupling does
            return -net((h * cond).reshape(-1, 1, side, side))[:, 1].reshape(len(h), side * side)

        for _ in range(epochs):
            order = torch.randperm(len(h_train), generator=order_gen)
            for idx in order.split(config.train.batch_size):
                x = h_train[idx]
                loss = ((predict(x) - x)[:, change] ** 2).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return {"r2": r2(h_test, predict(h_test), change)}

    entry, _ = cached("ceiling", spec, compute)
    return float(entry["r2"])


def neighbour_mean(x: Tensor) -> Tensor:
    """Each pixel's mean over its 4 neighbours inside the 8×8 image (edges average fewer)."""
    img = x.reshape(-1, 1, 8, 8)
    kernel = torch.tensor(
        [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=x.dtype
    ).reshape(1, 1, 3, 3)
    total = torch.nn.functional.conv2d(img, kernel, padding=1)
    count = torch.nn.functional.conv2d(torch.ones_like(img), kernel, padding=1)
    return (total / count).reshape(len(x), 64)


def edge_map(images: np.ndarray) -> np.ndarray:
    """Gradient magnitude (Sobel) of each 8×8 image, flat."""
    from scipy.ndimage import sobel

    img = images.reshape(-1, 8, 8).astype(float)
    return np.hypot(sobel(img, axis=1), sobel(img, axis=2)).reshape(len(images), 64)


def edge_correlation(z: np.ndarray, images: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Mean per-image Pearson correlation of ``|z|`` with the image's own edge map, and with a
    random other image's (the mismatched-pair null)."""
    edges = edge_map(images)
    other = np.random.default_rng(seed).permutation(len(images))

    def corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = a - a.mean(1, keepdims=True)
        b = b - b.mean(1, keepdims=True)
        return (a * b).sum(1) / np.sqrt((a**2).sum(1) * (b**2).sum(1) + 1e-12)

    return float(corr(np.abs(z), edges).mean()), float(corr(np.abs(z), edges[other]).mean())


LossFactory = Callable[[nn.Module], Callable]
