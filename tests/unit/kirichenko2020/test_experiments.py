"""The co-adaptation measurements and the claim checks of the Kirichenko study, on small cases whose
answer is known."""

import numpy as np
import pandas as pd
import pytest
import torch

from flowcore.flows.image import coupling_layers, image_flow
from flowcore.studies.kirichenko2020 import claims
from flowcore.studies.kirichenko2020.experiments import edge_correlation, layer_r2, r2, swap_r2
from flowcore.verdicts import Verdict


def _perturb(flow, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return flow


def test_an_identity_first_coupling_leaks_nothing_to_the_swap():
    torch.manual_seed(0)
    flow = image_flow(size=8, n_couplings=2, mask="checkerboard", channels=4, n_blocks=1)
    first, second = coupling_layers(flow)
    _perturb(second)  # the first coupling stays the identity (zero-initialised output)
    x = torch.rand(64, 64, generator=torch.Generator().manual_seed(1)) * 0.9 + 0.05
    normal, swapped = layer_r2(flow, x)[1], swap_r2(flow, x, seed=0)[1]
    assert normal == pytest.approx(swapped, abs=1e-9)


def test_a_first_coupling_that_encodes_the_conditioning_pixels_is_caught_by_the_swap():
    torch.manual_seed(0)
    flow = _perturb(image_flow(size=8, n_couplings=2, mask="checkerboard", channels=4, n_blocks=1), scale=0.5)
    x = torch.rand(64, 64, generator=torch.Generator().manual_seed(1)) * 0.9 + 0.05
    assert abs(layer_r2(flow, x)[1] - swap_r2(flow, x, seed=0)[1]) > 1e-3


def test_r2_is_one_for_a_perfect_prediction_and_zero_for_the_mean():
    y = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([True, True, False, True])
    assert r2(y, y, mask) == pytest.approx(1.0) and r2(y, y.mean(0).expand_as(y), mask) == pytest.approx(0.0, abs=1e-6)


def test_edges_are_found_in_the_latent_when_they_are_there():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 17, size=(40, 64))
    from flowcore.studies.kirichenko2020.experiments import edge_map

    matched, mismatched = edge_correlation(edge_map(images) + 0.1 * rng.normal(size=(40, 64)), images)
    assert matched > 0.9 and abs(mismatched) < 0.3


def _masks(auc, bpd):
    return pd.DataFrame({"mean AUROC": auc, "test bits/dim": bpd}, index=["checkerboard", "horizontal", "cycle"])


def test_k6_reads_the_order_of_the_masks():
    assert claims.assess("K6", claims.k6(_masks([0.5, 0.6, 0.7], [3.0, 3.1, 3.2]))).verdict == Verdict.REPRODUCED
    assert claims.assess("K6", claims.k6(_masks([0.5, 0.6, 0.7], [3.2, 3.1, 3.0]))).verdict == Verdict.PARTLY
    assert claims.assess("K6", claims.k6(_masks([0.7, 0.6, 0.5], [3.0, 3.1, 3.2]))).verdict == Verdict.NOT


def test_k7_needs_auroc_to_rise_as_the_bottleneck_narrows():
    narrowing = pd.DataFrame({"mean AUROC": [0.5, 0.6, 0.8], "test bits/dim": [3.0, 3.05, 3.1]}, index=[None, 32, 2])
    assert claims.assess("K7", claims.k7(narrowing)).verdict == Verdict.REPRODUCED
    narrowing["mean AUROC"] = [0.8, 0.6, 0.5]
    assert claims.assess("K7", claims.k7(narrowing)).verdict == Verdict.NOT


def test_k11_holds_only_within_the_bound():
    ok = pd.DataFrame({"ε": [0.01], "objective change": [0.005], "bound −log(1−ε)": [0.01005], "AUROC": [0.0]})
    assert claims.assess("K11", claims.k11(ok)).verdict == Verdict.REPRODUCED
    ok["objective change"] = 0.5  # beyond the bound: the main sub-check fails, whatever the AUROC
    assert claims.assess("K11", claims.k11(ok)).verdict == Verdict.NOT
