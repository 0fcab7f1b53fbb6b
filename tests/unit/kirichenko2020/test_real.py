"""The real-pair study (FashionMNIST and MNIST): its splits, scored sets, the ML Gaussian control,
the jobs over seeds and K1's check on the pair."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from flowcore.flows.distributions import StandardNormal
from flowcore.flows.flow import Flow
from flowcore.flows.image import Logit
from flowcore.studies.kirichenko2020 import claims, real
from flowcore.studies.kirichenko2020.config import KirichenkoConfig


@pytest.fixture(scope="module")
def small():
    config = KirichenkoConfig(real_train=250, real_test=30).at_seed(3)
    return config, real.real_splits(config)


def test_splits_are_disjoint_seeded_subsets_at_the_chosen_side(small):
    config, splits = small
    again = real.real_splits(config)
    other_seed = real.real_splits(KirichenkoConfig(real_train=250, real_test=30).at_seed(4))
    for name in real.PAIR:
        train, val = splits[name]["train"], splits[name]["val"]
        assert train.shape == (250, 196) and val.shape == (50, 196)
        assert splits[name]["test"].shape == (30, 196)
        assert train.min() >= 0 and train.max() <= 255
        assert np.array_equal(train, again[name]["train"])
        assert not np.array_equal(train, other_seed[name]["train"])
        rows = {r.tobytes() for r in train}
        assert sum(r.tobytes() in rows for r in val) <= 1  # no image shared (a blank could repeat)


def test_real_train_beyond_the_data_is_refused():
    with pytest.raises(
        ValueError, match="real_train must be an integer ≥ 10 and ≤ 50000, got 55000"
    ):
        KirichenkoConfig(real_train=55_000)
    with pytest.raises(ValueError, match="real_size must be 14 or 28"):
        KirichenkoConfig(real_size=7)


def test_scored_sets_hold_the_other_set_and_the_controls(small):
    config, splits = small
    sets = real.scored_sets(splits, "fashion_mnist", config.seed)
    assert list(sets) == ["test", "MNIST", "flipped up–down", "inverted", "uniform noise"]
    test = splits["fashion_mnist"]["test"]
    assert np.array_equal(sets["MNIST"], splits["mnist"]["test"])
    assert np.array_equal(sets["inverted"], 255 - test)
    flipped = sets["flipped up–down"].reshape(-1, 14, 14)
    assert np.array_equal(flipped[:, ::-1, :].reshape(len(test), -1), test)


def test_the_ml_gaussian_is_the_gaussian_of_the_logit_pixels(small):
    config, splits = small
    g = real.ml_gaussian(config, splits, "mnist")
    cov = g.scale_tril @ g.scale_tril.T
    x = torch.rand(5, 196, dtype=torch.float64) * 0.9 + 0.05
    y, log_det = Logit()(x)
    expected = (
        torch.distributions.MultivariateNormal(g.mean, covariance_matrix=cov).log_prob(y) + log_det
    )
    assert torch.allclose(g.log_prob(x), expected, rtol=1e-10, atol=1e-8)
    assert real.n_parameters(g) == 196 + 196 * 197 // 2


def test_a_standard_logit_gaussian_is_the_untrained_flow_density():
    g = real.LogitGaussian(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    flow = Flow(Logit(), StandardNormal(3)).double()
    x = torch.rand(4, 3, dtype=torch.float64)
    assert torch.allclose(g.log_prob(x), flow.log_prob(x), atol=1e-12)


def test_jobs_name_masks_and_the_bottleneck_per_seed():
    jobs = real.real_jobs(KirichenkoConfig(seeds=[0, 5], masks=["checkerboard", "cycle"]))
    assert [(j.labels["seed"], j.labels["flow"]) for j in jobs] == [
        (0, "checkerboard"),
        (0, "cycle"),
        (0, "l = 8"),
        (5, "checkerboard"),
        (5, "cycle"),
        (5, "l = 8"),
    ]


def _pair(forward, backward):
    return pd.DataFrame(
        [
            {"direction": "FashionMNIST → MNIST", "model": "m", **forward},
            {"direction": "MNIST → FashionMNIST", "model": "m", **backward},
        ]
    )


def test_k1_pair_reads_both_directions_through_their_intervals():
    fails = _pair(
        {"AUROC": 0.2, "CI low": 0.1, "CI high": 0.3},
        {"AUROC": 0.99, "CI low": 0.98, "CI high": 1.0},
    )
    detects = _pair(
        {"AUROC": 0.8, "CI low": 0.7, "CI high": 0.9},
        {"AUROC": 0.99, "CI low": 0.98, "CI high": 1.0},
    )
    straddles = _pair(
        {"AUROC": 0.5, "CI low": 0.4, "CI high": 0.6},
        {"AUROC": 0.99, "CI low": 0.98, "CI high": 1.0},
    )
    assert str(claims.assess("K1", claims.k1_pair(fails, "m")).verdict) == "reproduced"
    assert str(claims.assess("K1", claims.k1_pair(detects, "m")).verdict) == "not reproduced"
    assert claims.k1_pair(straddles, "m").subchecks[0].passed == {"FashionMNIST → MNIST": None}
    # A null that fails the same way masks the flow's unit: nothing is left to count for the flow.
    masked = claims.assess(
        "K1", claims.k1_pair(fails, "m"), nulls={"p̂": claims.k1_pair(fails, "m")}
    )
    assert str(masked.verdict) != "reproduced"
    with pytest.raises(ValueError, match="model must name the two rows"):
        claims.k1_pair(fails, "other")


def test_bits_per_dim_of_8_bit_pixels_include_the_logit_log_det():
    # The untrained flow's log-density of x is N(0, I) of logit(x) plus the logit's log-det; a
    # uniform density on [0, 1)^D would be 8 bits/dim.
    from flowcore.studies.kirichenko2020.data import bits_per_dim

    flow = Flow(Logit(), StandardNormal(4)).double()
    x = torch.full((1, 4), 0.5, dtype=torch.float64, requires_grad=True)
    y = Logit()(x)[0]
    jac = torch.autograd.functional.jacobian(lambda v: Logit()(v)[0].sum(0), x).squeeze()
    by_autograd = torch.slogdet(jac)[1] + StandardNormal(4).log_prob(y.detach()).squeeze()
    log_p = flow.log_prob(x.detach())
    assert torch.allclose(log_p, by_autograd, atol=1e-12)
    bpd = bits_per_dim(float(log_p), dim=4, levels=256)
    assert bpd == pytest.approx(8 - float(log_p) / (4 * math.log(2)))
