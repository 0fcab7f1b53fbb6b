"""The de Boer image experiments (Table 4 on MNIST and the 8×8 digits): the MNIST parameters'
validation, the one code path both tables run (on tiny synthetic arrays), the MNIST subsets, the
conversion to bits per dimension and the per-B summary."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from flowcore.config import resolve
from flowcore.studies.deboer2020 import DeBoerConfig, claims, experiments
from flowcore.studies.kirichenko2020.data import bits_per_dim as kirichenko_bits_per_dim

# --- the parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"mnist_size": 10},
            r"^mnist_size must divide MNIST's side 28 \(one of \[2, 4, 7, 14, 28\]\)",
        ),
        ({"mnist_size": 1}, r"^mnist_size must be an integer ≥ 2 and ≤ 28, got 1"),
        ({"mnist_size": 56}, r"^mnist_size must be an integer ≥ 2 and ≤ 28, got 56"),
        ({"mnist_train": 4}, r"^mnist_train must be an integer ≥ 8"),
        ({"mnist_val": 1}, r"^mnist_val must be an integer ≥ 2"),
        ({"mnist_test": 10001}, r"^mnist_test must be an integer ≥ 10 and ≤ 10000, got 10001"),
        (
            {"mnist_train": 59000, "mnist_val": 2000},
            r"^mnist_train \+ mnist_val must be at most 60000 .*got 59000 \+ 2000",
        ),
        ({"mnist_aux": [0, 2, 2]}, r"^mnist_aux must be distinct"),
        ({"mnist_aux": [0, -1]}, r"^mnist_aux\[1\] must be an integer ≥ 0, got -1"),
        ({"mnist_aux": [0, 300]}, r"mnist_aux ≤ 256"),
        ({"mnist_epochs": 0}, r"^mnist_epochs must be an integer ≥ 1, got 0"),
        ({"mnist_log_scale": "sigmoid"}, r"^mnist_log_scale must be one of 'tanh', 'exp'"),
    ],
)
def test_a_bad_mnist_setting_names_its_parameter(params, message):
    with pytest.raises(ValueError, match=message):
        resolve(DeBoerConfig, "ci", params)


@pytest.mark.filterwarnings("ignore::flowcore.resources.SlowRunWarning")  # the paper profile
def test_the_profiles_mnist_settings_validate():
    sizes = {p: resolve(DeBoerConfig, p).config.mnist_size for p in ("ci", "default", "paper")}
    assert sizes == {"ci": 7, "default": 14, "paper": 28}
    paper = resolve(DeBoerConfig, "paper").config
    assert paper.mnist_train + paper.mnist_val == 60000 and paper.mnist_test == 10000


# --- the shared code path -------------------------------------------------------------------------


def test_standardise_uses_the_training_rows_and_returns_the_log_det():
    g = np.random.default_rng(1)
    x = g.uniform(size=(50, 3)) * [1.0, 2.0, 0.0]  # the last column constant
    rows = np.arange(30)
    z, log_det = experiments.standardise(x, rows)
    np.testing.assert_allclose(z[rows].mean(0), 0.0, atol=1e-12)
    scale = x[rows].std(0) + experiments.STANDARDISE_FLOOR
    np.testing.assert_allclose(z, (x - x[rows].mean(0)) / scale)
    assert log_det == pytest.approx(-np.log(scale).sum())


def _splits(n=(48, 12, 16), d=4, seed=0):
    g = np.random.default_rng(seed)
    x = g.normal(size=(sum(n), d)) @ np.diag([1.0, 0.5, 2.0, 1.0][:d])
    z, log_det = experiments.standardise(x, np.arange(n[0]))
    t = torch.from_numpy(z)
    return experiments.ImageSplits(t[: n[0]], t[n[0] : n[0] + n[1]], t[n[0] + n[1] :], log_det)


TINY = DeBoerConfig(n_blocks=1, hidden=(4,), n_samples=4)


@pytest.mark.parametrize("log_scale", ["exp", "tanh"])
def test_image_run_scores_tiny_arrays_and_loads_them_again(tmp_path, monkeypatch, log_scale):
    monkeypatch.setenv("FLOWCORE_CACHE", str(tmp_path))
    splits = _splits()
    row = experiments.image_run(TINY, "unit normals", splits, 2, 0, 2, log_scale)
    assert row["D"] == 4 and row["failure"] == ""
    assert np.isfinite(row["mean log p̂"]) and row["SE"] > 0
    again = experiments.image_run(TINY, "unit normals", splits, 2, 0, 2, log_scale)
    assert again == row  # the flow comes from the cache, the scores are seeded


def test_image_run_reports_a_test_image_it_cannot_score(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWCORE_CACHE", str(tmp_path))
    splits = _splits()
    test = splits.test.clone()
    test[3, 0] = float("nan")
    row = experiments.image_run(TINY, "unit normals", splits._replace(test=test), 0, 0, 1)
    assert np.isnan(row["mean log p̂"]) and np.isnan(row["SE"])
    assert row["failure"] == "log p̂ not finite on 1 test images"


# --- MNIST ----------------------------------------------------------------------------------------


def test_mnist_data_is_seeded_and_its_training_images_do_not_depend_on_the_test_set():
    small = DeBoerConfig(mnist_size=7, mnist_train=60, mnist_val=20, mnist_test=30)
    first, again = experiments.mnist_data(small), experiments.mnist_data(small)
    assert [tuple(t.shape) for t in first[:3]] == [(60, 49), (20, 49), (30, 49)]
    assert all(torch.equal(a, b) for a, b in zip(first[:3], again[:3]))
    more_test = experiments.mnist_data(DeBoerConfig(mnist_size=7, mnist_train=60, mnist_val=20))
    assert torch.equal(first.train, more_test.train) and torch.equal(first.val, more_test.val)
    assert first.log_det == more_test.log_det
    np.testing.assert_allclose(first.train.mean(0).numpy(), 0.0, atol=1e-10)
    # no training image is also a validation image (dequantised values differ almost surely)
    assert not (torch.cdist(first.train, first.val) == 0).any()


# --- bits per dimension ---------------------------------------------------------------------------


def test_bits_per_dim_of_the_uniform_density_is_8_whatever_the_standardisation():
    g = np.random.default_rng(0)
    v = g.integers(0, 256, size=(500, 9)).astype(np.float64)
    x = (v + g.uniform(size=v.shape)) / 256
    _, log_det = experiments.standardise(x, np.arange(400))
    # the uniform density on [0, 1)^D, carried to z: log p_z = −log|det ∂z/∂x|
    assert experiments.bits_per_dim(-log_det, log_det, 9) == pytest.approx(8.0, abs=1e-12)


def test_bits_per_dim_adds_the_log_dets_to_the_nats_and_scales_linearly():
    nats = np.array([-120.0, 35.5, np.nan])
    log_det, dim = 464.0, 196
    bpd = experiments.bits_per_dim(nats, log_det, dim)
    expected = kirichenko_bits_per_dim(nats + log_det, dim=dim, levels=256)
    np.testing.assert_allclose(bpd[:2], expected[:2])
    assert np.isnan(bpd[2])
    # one more nat per image is 1/(D log 2) fewer bits per dimension
    step = experiments.bits_per_dim(1.0, log_det, dim) - experiments.bits_per_dim(0.0, log_det, dim)
    assert step == pytest.approx(-1 / (dim * math.log(2)))
    assert experiments.bits_per_dim(0.0, 0.0, 4, levels=17) == pytest.approx(math.log2(17))


# --- the summary per B ----------------------------------------------------------------------------


def test_image_summary_says_where_b_is_higher_lower_or_not_distinguishable():
    base = [-100.0, -101.0, -99.0]
    runs = pd.DataFrame(
        [
            {"B": b, "seed": s, "D": 196, "mean log p̂": v, "failure": ""}
            for b, vs in {
                0: base,
                2: [v + 5 + e for v, e in zip(base, (0.0, 0.1, -0.1))],
                8: [v - 5 + e for v, e in zip(base, (0.0, 0.1, -0.1))],
                16: [v + e for v, e in zip(base, (3.0, -3.0, 0.5))],
            }.items()
            for s, v in enumerate(vs)
        ]
    )
    runs["bits/dim"] = experiments.bits_per_dim(runs["mean log p̂"].to_numpy(), 464.0, 196)
    runs.loc[11, ["mean log p̂", "bits/dim"]] = np.nan
    runs.loc[11, "failure"] = "diverged"
    s = claims.image_summary(runs, {0: 126.27, 2: 137.66}).set_index("B")
    assert s["vs B = 0"].to_dict() == {
        0: "",
        2: "higher",
        8: "lower",
        16: "not distinguishable",
    }
    assert s.loc[16, "runs"] == "2/3" and s.loc[0, "runs"] == "3/3"
    assert s.loc[2, "gain over B = 0"] == pytest.approx(5.0)
    assert s.loc[0, "bits/dim"] == pytest.approx(
        experiments.bits_per_dim(-100.0, 464.0, 196)
    )  # the bits/dim interval is the nats interval, converted (and so reversed)
    assert s.loc[0, "bits/dim CI low"] == pytest.approx(
        experiments.bits_per_dim(s.loc[0, "CI high"], 464.0, 196)
    )
    assert s.loc[2, "thesis"] == 137.66 and np.isnan(s.loc[8, "thesis"])


def test_d5_scales_its_size_with_the_mnist_dimension():
    runs = pd.DataFrame(
        [
            {"B": b, "seed": s, "D": 196, "mean log p̂": -100.0 + g + e}
            for b, g in ((0, 0.0), (2, 3.0))
            for s, e in enumerate((0.0, 0.1, -0.1))
        ]
    )  # a gain of 3 nats: above 0.025 × 64 = 1.6, below 0.025 × 196 = 4.9
    assert claims.assess("D5", claims.d5(runs)).verdict.value == "reproduced"
    assert claims.assess("D5", claims.d5(runs.assign(D=64))).verdict.value == "not reproduced"
