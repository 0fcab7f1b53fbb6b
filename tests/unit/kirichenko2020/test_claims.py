"""The claim checks of the Kirichenko study on tables whose answer is known: intervals that lie
beyond a threshold, on the wrong side, or straddle it (not distinguishable), and the untrained
null."""

import numpy as np
import pandas as pd
import pytest

from flowcore.studies.kirichenko2020 import claims
from flowcore.verdicts import Verdict

SEEDS = (0, 1, 2)


def _runs(values: dict[str, list[float]], column: str = "mean AUROC", **extra) -> pd.DataFrame:
    """One row per (flow, seed): ``values[flow][k]`` is seed k's ``column``."""
    rows = []
    for flow, per_seed in values.items():
        for seed, v in zip(SEEDS, per_seed):
            rows.append(
                {
                    "flow": flow,
                    "seed": seed,
                    column: v,
                    **{k: e[flow][seed] for k, e in extra.items()},
                }
            )
    return pd.DataFrame(rows)


def _masks(auc: dict[str, list[float]], bpd: dict[str, list[float]]) -> pd.DataFrame:
    return _runs(auc, **{"test bits/dim": bpd})


FLAT_BPD = {
    "checkerboard": [3.0, 3.0, 3.0],
    "horizontal": [3.1, 3.12, 3.11],
    "cycle": [3.2, 3.22, 3.21],
}


def test_k6_reads_the_paired_seed_interval_of_consecutive_masks():
    rising = {
        "checkerboard": [0.50, 0.52, 0.48],
        "horizontal": [0.60, 0.63, 0.58],
        "cycle": [0.70, 0.72, 0.69],
    }
    assert claims.assess("K6", claims.k6(_masks(rising, FLAT_BPD))).verdict == Verdict.REPRODUCED
    falling = {k: v for k, v in zip(rising, reversed(list(rising.values())))}
    assert claims.assess("K6", claims.k6(_masks(falling, FLAT_BPD))).verdict == Verdict.NOT
    reversed_bpd = {
        "checkerboard": [3.2, 3.22, 3.21],
        "horizontal": [3.1, 3.12, 3.11],
        "cycle": [3.0, 3.0, 3.0],
    }
    assert claims.assess("K6", claims.k6(_masks(rising, reversed_bpd))).verdict == Verdict.PARTLY


def test_k6_says_not_distinguishable_when_the_masks_do_not_differ():
    # Seed-to-seed noise around one AUROC: the means may be ordered, but every paired interval holds
    # 0.
    noise = {
        "checkerboard": [0.55, 0.49, 0.52],
        "horizontal": [0.53, 0.54, 0.50],
        "cycle": [0.56, 0.50, 0.55],
    }
    found = claims.k6(_masks(noise, FLAT_BPD))
    main = found.subchecks[0]
    assert list(main.passed.values()) == [None, None]
    assert claims.assess("K6", found).verdict == Verdict.UNDECIDED


def test_k6_handles_two_seeds_and_rejects_a_single_mask():
    two = _masks(
        {"checkerboard": [0.5, 0.51], "cycle": [0.7, 0.72]},
        {"checkerboard": [3.0, 3.0], "cycle": [3.1, 3.11]},
    )
    assert claims.assess("K6", claims.k6(two)).verdict == Verdict.REPRODUCED
    with pytest.raises(ValueError, match="at least two of the masks"):
        claims.k6(_masks({"cycle": [0.5, 0.6, 0.7]}, {"cycle": [3.0, 3.0, 3.0]}))


def _bottlenecks(
    auc: dict[str, list[float]], bpd: dict[str, list[float]], mask: str = "checkerboard"
) -> pd.DataFrame:
    runs = _runs(
        {f"l = {k}": v for k, v in auc.items()},
        **{"test bits/dim": {f"l = {k}": v for k, v in bpd.items()}},
    )
    runs["l"] = runs["flow"].str.removeprefix("l = ")
    runs["mask"] = mask
    return runs


STEADY = {"none": [3.0, 3.0, 3.0], "32": [3.01, 3.02, 3.0], "2": [3.05, 3.04, 3.06]}


def test_k7_needs_the_narrowest_bottleneck_to_raise_auroc_over_seeds():
    narrowing = {"none": [0.50, 0.52, 0.49], "32": [0.55, 0.56, 0.54], "2": [0.70, 0.73, 0.71]}
    assert (
        claims.assess("K7", claims.k7(_bottlenecks(narrowing, STEADY), "checkerboard")).verdict
        == Verdict.REPRODUCED
    )
    widening = {"none": [0.70, 0.73, 0.71], "32": [0.55, 0.56, 0.54], "2": [0.50, 0.52, 0.49]}
    assert (
        claims.assess("K7", claims.k7(_bottlenecks(widening, STEADY), "checkerboard")).verdict
        == Verdict.NOT
    )
    costly = {"none": [3.0, 3.0, 3.0], "32": [3.01, 3.02, 3.0], "2": [4.0, 4.1, 4.05]}
    assert (
        claims.assess("K7", claims.k7(_bottlenecks(narrowing, costly), "checkerboard")).verdict
        == Verdict.PARTLY
    )


def test_k7_says_not_distinguishable_without_an_effect():
    # Seed 0 alone has ρ(l, AUROC) = −1 (0.47, 0.49, 0.52 from none to l = 2); the seeds say it
    # cannot tell.
    flat = {"none": [0.47, 0.53, 0.50], "32": [0.49, 0.52, 0.51], "2": [0.52, 0.49, 0.50]}
    found = claims.k7(_bottlenecks(flat, STEADY), "checkerboard")
    assert found.subchecks[0].passed == {"l = 2": None}
    assert claims.assess("K7", found).verdict == Verdict.UNDECIDED


def test_k7_without_a_none_flow_compares_with_the_widest_and_needs_two_sizes():
    runs = _bottlenecks(
        {"32": [0.5, 0.5, 0.5], "2": [0.7, 0.7, 0.8]}, {"32": [3.0, 3.0, 3.0], "2": [3.0, 3.1, 3.0]}
    )
    assert (
        claims.k7(runs, "checkerboard")
        .subchecks[0]
        .name.startswith("mean OOD AUROC rises from l = 32 to l = 2")
    )
    with pytest.raises(ValueError, match="at least two bottleneck sizes"):
        claims.k7(runs, "cycle")


def _main_flow(drop: list[float], ceiling: list[float]) -> pd.DataFrame:
    r2 = [0.6, 0.62, 0.58]
    return pd.DataFrame(
        {
            "flow": "checkerboard",
            "seed": SEEDS,
            "R² layer 2": r2,
            "R² layer 2, swapped": np.subtract(r2, drop),
            "ceiling": ceiling,
        }
    )


def test_k5_reads_the_swap_drop_over_seeds():
    assert (
        claims.assess(
            "K5", claims.k5(_main_flow([0.3, 0.32, 0.29], [0.3, 0.31, 0.3]), "checkerboard")
        ).verdict
        == Verdict.REPRODUCED
    )
    assert (
        claims.assess(
            "K5", claims.k5(_main_flow([0.0, 0.01, 0.0], [0.3, 0.31, 0.3]), "checkerboard")
        ).verdict
        == Verdict.NOT
    )
    assert (
        claims.assess(
            "K5", claims.k5(_main_flow([0.05, 0.3, 0.1], [0.3, 0.31, 0.3]), "checkerboard")
        ).verdict
        == Verdict.UNDECIDED
    )
    with pytest.raises(ValueError, match="no rows of the flow"):
        claims.k5(_main_flow([0.3] * 3, [0.3] * 3), "cycle")


def _pixels_and_features(
    pixel: list[float], features: list[float], features_one: list[float] | None = None
) -> pd.DataFrame:
    rows = []
    for seed in SEEDS:
        rows.append(
            {
                "flow": "checkerboard",
                "seed": seed,
                "AUROC class 1": pixel[seed],
                "AUROC uniform noise": 1.0,
            }
        )
        rows.append(
            {
                "flow": "features",
                "seed": seed,
                "AUROC class 1": (features_one or features)[seed],
                "AUROC uniform noise": 1.0,
            }
        )
    return pd.DataFrame(rows)


def test_k9_compares_feature_and_pixel_flows_per_seed_where_the_pixel_flow_fails():
    found = claims.k9(_pixels_and_features([0.1, 0.12, 0.09], [0.95, 0.96, 0.97]), "checkerboard")
    assert list(found.subchecks[0].passed) == [
        "class 1"
    ]  # uniform noise is detected by the pixel flow
    assert claims.assess("K9", found).verdict == Verdict.REPRODUCED
    tied = claims.k9(_pixels_and_features([0.5, 0.4, 0.6], [0.55, 0.35, 0.58]), "checkerboard")
    assert claims.assess("K9", tied).verdict == Verdict.UNDECIDED


def test_k1_reads_the_auroc_interval():
    def main(low, value, high):
        return pd.DataFrame(
            {"AUROC": [value], "CI low": [low], "CI high": [high]}, index=["class 1"]
        )

    assert (
        claims.assess("K1", claims.k1(main(0.05, 0.1, 0.15), (0.97, 0.95, 0.99))).verdict
        == Verdict.REPRODUCED
    )
    assert (
        claims.assess("K1", claims.k1(main(0.45, 0.49, 0.53), (0.97, 0.95, 0.99))).verdict
        == Verdict.UNDECIDED
    )
    assert (
        claims.assess("K1", claims.k1(main(0.6, 0.7, 0.8), (0.97, 0.95, 0.99))).verdict
        == Verdict.NOT
    )
    # The reverse direction's interval straddles 0.9: the asymmetry cannot be told, so only partly.
    found = claims.k1(main(0.05, 0.1, 0.15), (0.9, 0.85, 0.95))
    assert found.subchecks[1].passed == {"reverse": None}
    assert claims.assess("K1", found).verdict == Verdict.PARTLY


def _rho(value, low, high, delta=None):
    out = {"ρ": value, "CI low": low, "CI high": high}
    if delta is not None:
        out.update({"Δρ": delta[0], "Δρ CI low": delta[1], "Δρ CI high": delta[2]})
    return out


def test_k3_is_uninformative_when_the_untrained_null_passes():
    model = claims.k3(_rho(-0.5, -0.6, -0.4, (0.4, 0.3, 0.5)))
    passing_null = claims.k3(_rho(-0.89, -0.9, -0.88))
    check = claims.assess("K3", model, nulls={"untrained": passing_null})
    assert check.verdict == Verdict.UNTESTABLE and check.informative[model.subchecks[0].name] == ()
    assert (
        check.verdicts["untrained"] == Verdict.REPRODUCED
    )  # the null column shows the null passing
    failing_null = claims.k3(_rho(0.1, 0.0, 0.2))
    assert (
        claims.assess("K3", model, nulls={"untrained": failing_null}).verdict == Verdict.PARTLY
    )  # Δρ > 0: training weakened it


def test_k3_secondary_reads_what_training_added():
    model = claims.k3(_rho(-0.95, -0.96, -0.94, (-0.06, -0.08, -0.04)))
    assert [s.passed["all"] for s in model.subchecks] == [True, True]
    assert claims.k3(_rho(-0.2, -0.3, 0.05)).subchecks[0].passed == {"all": None}


def test_k4_null_with_a_constant_prediction_fails_the_neighbour_check():
    r2 = pd.DataFrame(
        {"layer 1": [0.6, 0.58, 0.55, 0.1]},
        index=["test", "class 1", "flipped up–down", "uniform noise"],
    )
    model = claims.k4(r2, 0, 0.8)
    null = claims.k4(
        pd.DataFrame({"layer 1": [-3.0, -5.0, -2.95, -1.0]}, index=r2.index), 0, float("nan")
    )
    assert null.subchecks[1].passed == {"all": False} and "undefined" in null.subchecks[1].detail
    check = claims.assess("K4", model, nulls={"untrained": null})
    # The null passes "flipped up–down" (−2.95 ≥ −3 − 0.1), so only class 1 counts for the model.
    assert check.informative[model.subchecks[0].name] == ("class 1",)
    assert check.verdict == Verdict.REPRODUCED


def test_k8_and_k10_read_their_auroc_intervals():
    plain = pd.DataFrame({"AUROC": [0.1, 0.5]}, index=["class 1", "class 7"])
    negative = pd.DataFrame(
        {"AUROC": [0.92, 0.5], "CI low": [0.85, 0.4], "CI high": [0.97, 0.6]},
        index=["class 1", "class 7"],
    )
    assert claims.k8(plain, negative, "class 1").subchecks[0].passed == {"class 1": None}
    tabular = pd.DataFrame(
        {
            "dataset": ["wine", "wine"],
            "direction": ["a vs b", "b vs a"],
            "AUROC": [0.8, 0.52],
            "CI low": [0.7, 0.45],
            "CI high": [0.9, 0.6],
        }
    )
    assert claims.assess("K10", claims.k10(tabular)).verdict == Verdict.PARTLY


def test_k11_is_a_bound_demonstrated_only_within_it():
    ok = pd.DataFrame(
        {"ε": [0.01], "objective change": [0.005], "bound −log(1−ε)": [0.01005], "AUROC": [0.0]}
    )
    assert claims.assess("K11", claims.k11(ok)).verdict == Verdict.DEMONSTRATED
    ok["objective change"] = 0.5  # beyond the bound: the main sub-check fails, whatever the AUROC
    assert claims.assess("K11", claims.k11(ok)).verdict == Verdict.NOT
