"""The Kirichenko comparisons over seeds: the seeds parameter, the jobs, paired differences and
their intervals, and one tiny sweep end to end."""

import numpy as np
import pandas as pd
import pytest

from flowcore.studies.kirichenko2020 import claims, seeds
from flowcore.studies.kirichenko2020.config import KirichenkoConfig
from flowcore.sweep import failures


@pytest.mark.parametrize("bad", [[0], [1, 1], [0, -1], "0,1", []])
def test_seeds_need_two_distinct_non_negative_integers(bad):
    with pytest.raises(ValueError, match="seeds"):
        KirichenkoConfig.from_params(seeds=bad)


def test_seeds_default_and_replicates():
    config = KirichenkoConfig.from_params(seeds=[2, 0])
    assert KirichenkoConfig().seeds == (0, 1, 2) and config.seeds == (2, 0)
    assert config.at_seed(7).seed == 7 and config.at_seed(7).seeds == (2, 0) and config.seed == 0


def test_jobs_cover_every_compared_flow_once_per_seed():
    config = KirichenkoConfig(seeds=[0, 1], masks=["checkerboard", "cycle"], bottlenecks=[None, 4])
    jobs = seeds.jobs(config)
    assert [(j.labels["seed"], j.labels["flow"]) for j in jobs] == [
        (s, f) for s in (0, 1) for f in ("checkerboard", "cycle", "l = 4", "features")
    ]
    assert [j.config["config"].seed for j in jobs] == [0] * 4 + [1] * 4
    assert len({j.key for j in jobs}) == len(jobs)
    # A main mask outside ``masks`` still has its bottleneck-free flow, as K7's reference.
    other = KirichenkoConfig(
        seeds=[0, 1], mask="horizontal", masks=["checkerboard"], bottlenecks=[None, 4]
    )
    assert [j.labels["flow"] for j in seeds.jobs(other)][:3] == [
        "checkerboard",
        "horizontal",
        "l = 4",
    ]


def test_differences_are_paired_per_seed():
    runs = pd.DataFrame(
        {
            "flow": ["a", "b"] * 4,
            "seed": [0, 0, 1, 1, 2, 2, 3, 3],
            "x": [0.1, 0.2, 0.5, 0.6, 0.3, 0.4, 0.9, np.nan],
        }
    )
    out = seeds.differences(runs, "x", [("a", "b")]).iloc[0]
    # Unpaired, the seed-to-seed spread of x would swamp the difference; paired, it is 0.1 at every
    # seed.
    assert out["comparison"] == "b − a" and out["seeds"] == 3
    assert out["difference"] == pytest.approx(0.1) and out["CI high"] - out[
        "CI low"
    ] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(
        seeds.differences(runs[runs["seed"] == 0], "x", [("a", "b")]).iloc[0]["CI low"]
    )  # one seed: no interval
    with pytest.raises(ValueError, match="not among"):
        seeds.differences(runs, "x", [("a", "c")])
    with pytest.raises(ValueError, match="lacks the columns"):
        seeds.differences(runs, "y", [("a", "b")])
    with pytest.raises(ValueError, match="at least one"):
        seeds.differences(runs, "x", [])


def test_over_seeds_drops_nan_and_counts_seeds():
    runs = pd.DataFrame(
        {
            "flow": ["a"] * 3 + ["b"] * 3,
            "seed": [0, 1, 2] * 2,
            "x": [1.0, 2.0, 3.0, 4.0, np.nan, 4.0],
        }
    )
    out = seeds.over_seeds(runs, "x").set_index("flow")
    assert out.loc["a", "seeds"] == 3 and out.loc["b", "seeds"] == 2 and out.loc["b", "x"] == 4.0
    with pytest.raises(ValueError, match="column"):
        seeds.over_seeds(runs, "y")


def test_mask_and_bottleneck_differences_follow_the_papers_order():
    runs = pd.DataFrame(
        {
            "flow": ["cycle", "checkerboard", "horizontal"] * 2,
            "seed": [0] * 3 + [1] * 3,
            "mean AUROC": [0.7, 0.5, 0.6, 0.8, 0.5, 0.6],
        }
    )
    assert seeds.mask_differences(runs)["comparison"].tolist() == [
        "horizontal − checkerboard",
        "cycle − horizontal",
    ]
    b = pd.DataFrame(
        {
            "mask": "checkerboard",
            "l": ["2", "none", "32"] * 2,
            "seed": [0] * 3 + [1] * 3,
            "mean AUROC": [0.7, 0.5, 0.6, 0.8, 0.5, 0.6],
        }
    )
    assert seeds.bottleneck_differences(b, "checkerboard")["comparison"].tolist() == [
        "32 − none",
        "2 − none",
    ]
    with pytest.raises(ValueError, match="at least two of the masks"):
        seeds.mask_differences(runs[runs["flow"] == "cycle"])


def test_a_tiny_sweep_gives_every_claim_its_seed_rows(tiny_config):
    config = tiny_config(
        seeds=[0, 1],
        masks=["checkerboard", "horizontal"],
        bottlenecks=[None, 2],
        scheduler="serial",
    )
    runs = seeds.replicates(config, progress=False)
    assert failures(runs).empty and len(runs) == len(seeds.jobs(config)) == 8
    main = runs[runs["flow"] == "checkerboard"]
    assert main[["R² layer 2", "R² layer 2, swapped", "ceiling"]].notna().all().all()
    assert runs.loc[runs["flow"] != "checkerboard", "ceiling"].isna().all()
    assert (
        runs["AUROC class 1"].between(0, 1).all()
        and (runs.loc[runs["flow"] != "features", "test bits/dim"] > 0).all()
    )
    image = runs[runs["flow"] != "features"]
    for claim, found in {
        "K5": claims.k5(runs, "checkerboard"),
        "K6": claims.k6(image),
        "K7": claims.k7(image, "checkerboard"),
        "K9": claims.k9(runs, "checkerboard"),
    }.items():
        assert claims.assess(claim, found).verdict is not None
    # The main flow of config.seed is the one the single-seed tables load: the same cache entry.
    from flowcore.studies.kirichenko2020 import experiments

    assert experiments.trained_image_flow(config, progress=False).from_cache


def test_swap_drops_pair_each_seeds_swap_and_ceiling():
    runs = pd.DataFrame(
        {
            "flow": "cb",
            "seed": [0, 1, 2],
            "R² layer 2": [0.5, 0.6, 0.7],
            "R² layer 2, swapped": [0.3, 0.4, 0.5],
            "ceiling": [0.6, 0.7, 0.8],
        }
    )
    out = seeds.swap_drops(runs, "cb")
    assert out.loc["drop", "value"] == pytest.approx(0.2) and out.loc["drop", "CI high"] - out.loc[
        "drop", "CI low"
    ] == pytest.approx(0.0, abs=1e-9)
    assert (
        out.loc["over ceiling", "value"] == pytest.approx(-0.1)
        and out.loc["over ceiling", "seeds"] == 3
    )
    with pytest.raises(ValueError, match="no rows"):
        seeds.swap_drops(runs, "cycle")
