"""The detection statistics as batched tensors (:mod:`flowcore.device_stats`) are bitwise the NumPy
estimators' (:mod:`flowcore.estimators`) that the thesis study uses, on samples with ties, with
bounds on sample values, and with members entirely inside or outside the bounds; on CUDA too."""

import numpy as np
import pytest
import torch

from flowcore import device_stats
from flowcore.estimators import (
    auroc_sorted,
    fit_bounds_sorted,
    quantile_sorted,
    true_negative_rate_sorted,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _scores(seed: int, rounded: bool) -> tuple[np.ndarray, np.ndarray]:
    """A reference sample and 12 members of 500 scores, shifted and scaled apart; ``rounded``
    makes many ties between and within them."""
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal(2001) * 3.0 - 40.0
    members = rng.standard_normal((12, 500)) * np.linspace(0.5, 4, 12)[:, None]
    members += np.linspace(-55.0, -25.0, 12)[:, None]
    members[5] = rng.standard_normal(500) * 0.1 - 40.0  # inside the bounds at every TPR here
    if rounded:
        reference, members = reference.round(1), members.round(1)
    return np.sort(reference), members


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rounded", [False, True], ids=["continuous", "ties"])
@pytest.mark.parametrize("tpr", [0.5, 0.9, 0.975])
def test_bounds_rates_and_aurocs_are_bitwise_numpys(device, rounded, tpr):
    reference, members = _scores(int(tpr * 1000), rounded)
    ref_t = torch.tensor(reference, device=device)
    members_t = torch.tensor(members, device=device)

    bounds = fit_bounds_sorted(reference, tpr)
    bounds_t = device_stats.fit_bounds(ref_t, tpr)
    assert bounds_t.tolist() == [bounds.lower, bounds.upper]

    ordered = np.sort(members, axis=1)
    rates = true_negative_rate_sorted(bounds, ordered)
    rates_t = device_stats.true_negative_rates(torch.sort(members_t, dim=1).values, bounds_t)
    assert rates_t.tolist() == rates.tolist()
    assert {0.0, 1.0} <= set(rates.tolist()), "the members span every rate, both ends included"

    values = auroc_sorted(reference, ordered)
    assert device_stats.aurocs(ref_t, members_t).tolist() == values.tolist()  # any order of rows


@pytest.mark.parametrize("device", DEVICES)
def test_quantiles_are_bitwise_numpys_at_every_position(device):
    values = np.sort(np.random.default_rng(3).standard_normal(97))
    q = np.linspace(0.0, 1.0, 1001)
    got = device_stats.quantiles_sorted(torch.tensor(values, device=device), q.tolist())
    assert got.tolist() == quantile_sorted(values, q).tolist()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="rows must be a 2-D tensor"):
        device_stats.aurocs(torch.zeros(3, dtype=torch.float64), torch.zeros(3))
    with pytest.raises(ValueError, match="tpr must be a number strictly between 0 and 1"):
        device_stats.fit_bounds(torch.zeros(3, dtype=torch.float64), 1.0)
