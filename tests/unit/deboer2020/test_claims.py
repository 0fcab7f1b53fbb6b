"""The de Boer claim checks on small tables whose answer is known: seed-to-seed intervals of paired
differences (holds / fails / not distinguishable), the Table 2 bookkeeping, and the run checks
against the truth."""

import numpy as np
import pandas as pd
import pytest

from flowcore import rng
from flowcore.studies.deboer2020 import claims, experiments
from flowcore.studies.deboer2020.config import THESIS_TABLE2
from flowcore.studies.deboer2020.truths import PowerGaussian
from flowcore.verdicts import Verdict, within

#: Per-seed offsets added to every run: three seeds, so every interval has 2 degrees of freedom.
NOISE = (0.0, 0.001, -0.001)


def _runs(values, column="mean log p̂", noise=NOISE):
    """``{(ψ, D): {B: value or per-seed values}}`` → one row per (ψ, D, B, seed)."""
    rows = []
    for (psi, d), by_b in values.items():
        for b, v in by_b.items():
            per_seed = v if np.ndim(v) else [v + e for e in noise]
            rows += [
                {"ψ": psi, "D": d, "B": b, "seed": s, column: x} for s, x in enumerate(per_seed)
            ]
    return pd.DataFrame(rows)


def _verdict(claim, found):
    return claims.assess(claim, found).verdict


# --- the intervals --------------------------------------------------------------------------------


def test_paired_gains_pair_seeds_and_give_a_student_t_interval():
    runs = _runs({(1, 2): {0: [1.0, 1.1, 0.9], 2: [1.5, 1.7, 1.3], 4: [1.0, 1.0, 1.0]}})
    g = claims.paired_gains(runs, "mean log p̂", by=["ψ", "D"])
    assert g[["B", "reference B", "seeds"]].values.tolist() == [[2, 0, 3], [4, 0, 3]]
    half = 4.302653 * 0.1 / np.sqrt(3)  # t(0.975, 2) · sd / √n of the differences 0.5, 0.6, 0.4
    assert g["gain"].iloc[0] == pytest.approx(0.5)
    assert (g["CI low"].iloc[0], g["CI high"].iloc[0]) == pytest.approx(
        (0.5 - half, 0.5 + half), abs=1e-6
    )
    steps = claims.paired_gains(runs, "mean log p̂", reference="previous")
    assert steps[["B", "reference B"]].values.tolist() == [[2, 0], [4, 2]]
    assert steps["gain"].tolist() == pytest.approx([0.5, -0.5])
    best = claims.paired_gains(runs, "mean log p̂", reference="best")
    assert best[["B", "reference B"]].values.tolist() == [[0, 2], [4, 2]]


def test_paired_gains_drop_diverged_runs_and_need_two_pairs_for_an_interval():
    runs = _runs({(1, 2): {0: [1.0, np.nan, 0.9], 2: [1.5, 1.7, np.inf]}})
    g = claims.paired_gains(runs, "mean log p̂").iloc[0]
    assert g["seeds"] == 1 and g["gain"] == pytest.approx(0.5)
    assert np.isnan(g["CI low"]) and np.isnan(g["CI high"])
    assert within(g["CI low"], g["CI high"], claims.FLAT) is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reference": "last"}, "reference must be"),
        ({"reference": True}, "reference must be"),
        ({"value": "nope"}, "lacks the columns"),
        ({"confidence": 1.5}, "confidence"),
    ],
)
def test_paired_gains_reject_bad_input(kwargs, message):
    runs = _runs({(1, 2): {0: 1.0, 2: 1.2}})
    with pytest.raises(ValueError, match=message):
        claims.paired_gains(runs, **{"value": "mean log p̂", **kwargs})


def test_paired_gains_need_one_row_per_seed():
    runs = _runs({(1, 2): {0: 1.0, 2: 1.2}})
    with pytest.raises(ValueError, match="one row per"):
        claims.paired_gains(pd.concat([runs, runs]), "mean log p̂")


def test_within_is_three_valued():
    assert within(-0.04, 0.04, 0.05) is True
    assert within(0.05, 0.2, 0.05) is False
    assert within(-0.3, -0.06, 0.05) is False
    assert within(-0.06, 0.01, 0.05) is None
    with pytest.raises(ValueError, match="half_width"):
        within(0.0, 0.1, 0.0)


# --- D1, D2: flat at ψ = 1, rising for ψ > 1 ------------------------------------------------------


def test_d1_flat_departing_and_not_distinguishable():
    flat = _runs({(1, 2): {0: -2.84, 2: -2.842, 4: -2.838}})
    assert _verdict("D1", claims.d1(flat)) == Verdict.REPRODUCED
    hurts = _runs({(1, 2): {0: -2.84, 2: -3.14, 4: -2.84}})
    assert (
        _verdict("D1", claims.d1(hurts)) == Verdict.PARTLY
    )  # B = 4 flat, B = 2 surely 0.3 nats lower
    assert _verdict("D1", claims.d1(_runs({(1, 2): {0: -2.84, 2: -3.14}}))) == Verdict.NOT


def test_d1_says_not_distinguishable_when_the_interval_straddles_flat():
    # differences +0.04, 0, −0.04: mean 0, but the 95% interval ±0.099 reaches past ±FLAT
    runs = _runs({(1, 2): {0: [-2.84, -2.84, -2.84], 2: [-2.80, -2.84, -2.88]}})
    found = claims.d1(runs)
    assert found.subchecks[0].passed == {"D=2, B=2": None}
    assert _verdict("D1", found) == Verdict.UNDECIDED
    assert str(Verdict.UNDECIDED) == "not distinguishable"


def test_d2_rises_falls_or_cannot_tell():
    rising = _runs({(3, 2): {0: -3.5, 2: -3.0, 4: -2.6}, (3, 3): {0: -4.5, 2: -4.3, 4: -3.9}})
    assert _verdict("D2", claims.d2(rising)) == Verdict.REPRODUCED
    falling = _runs({(3, 2): {0: -2.6, 2: -3.0, 4: -3.5}})
    assert _verdict("D2", claims.d2(falling)) == Verdict.NOT
    noisy = _runs({(3, 2): {0: [-3.0, -3.0, -3.0], 4: [-2.5, -3.0, -3.3]}})
    assert _verdict("D2", claims.d2(noisy)) == Verdict.UNDECIDED


def test_d2_a_gain_no_larger_than_flat_is_no_rise():
    assert _verdict("D2", claims.d2(_runs({(2, 2): {0: -1.6, 4: -1.57}}))) == Verdict.NOT


def test_d2_secondary_catches_a_drop_on_the_way():
    dips = _runs(
        {(3, 3): {0: -0.9, 2: 2.2, 4: 1.0}}
    )  # the thesis's ψ = 3, D = 3: up π, then down 1.2
    found = claims.d2(dips)
    assert found.subchecks[0].passed == {"ψ=3, D=3": True} and found.subchecks[1].passed == {
        "ψ=3, D=3": False
    }
    assert _verdict("D2", found) == Verdict.PARTLY


# --- D3: the B needed grows with D ----------------------------------------------------------------


def test_d3_b_needed_rises_stays_or_cannot_tell():
    rises = _runs({(3, 2): {0: -3.0, 2: -2.0, 4: -2.0}, (3, 3): {0: -4.0, 2: -3.5, 4: -3.0}})
    found = claims.d3(rises)
    assert "D=2: 2, D=3: 4" in found.headline
    assert _verdict("D3", found) == Verdict.REPRODUCED
    stays = _runs({(3, 2): {0: -3.0, 2: -2.0, 4: -2.0}, (3, 3): {0: -4.0, 2: -3.0, 4: -3.0}})
    assert _verdict("D3", claims.d3(stays)) == Verdict.NOT
    # at D = 3, B = 2's gap to the best straddles −FLAT: B needed is 2 or 4
    unsure = _runs(
        {
            (3, 2): {0: -3.0, 2: -2.0, 4: -2.0},
            (3, 3): {0: -4.0, 2: [-3.05, -3.0, -3.1], 4: [-3.0, -3.0, -3.0]},
        }
    )
    found = claims.d3(unsure)
    assert "D=3: 2–4" in found.headline
    assert _verdict("D3", found) == Verdict.UNDECIDED


# --- D4: the bridge -------------------------------------------------------------------------------


def _moons(masses, grid=None):
    rows = [
        {"B": b, "seed": s, "mass where p < 1e-3": m, "at most": m, "mass on the grid": 1.0}
        for b, ms in masses.items()
        for s, m in enumerate(ms)
    ]
    moons = pd.DataFrame(rows)
    if grid is not None:
        moons["mass on the grid"] = grid
    return moons


def test_d4_the_bridge_needs_a_halving_at_b_3():
    drop = _moons({0: [0.10, 0.11, 0.09], 3: [0.02, 0.025, 0.02], 4: [0.03, 0.03, 0.025]})
    assert _verdict("D4", claims.d4(drop)) == Verdict.REPRODUCED
    stays = _moons({0: [0.10, 0.11, 0.09], 3: [0.09, 0.10, 0.09]})
    assert _verdict("D4", claims.d4(stays)) == Verdict.NOT
    unsure = _moons({0: [0.10, 0.10, 0.10], 3: [0.02, 0.09, 0.05]})  # ratios 0.2, 0.9, 0.5
    assert _verdict("D4", claims.d4(unsure)) == Verdict.UNDECIDED


def test_d4_bounds_unresolved_mass_both_ways():
    # B = 0's resolved cells hold 0.10 on the bridge, and up to 0.10 more is unaccounted for
    drop = _moons({0: [0.10, 0.11, 0.09], 3: [0.02, 0.025, 0.02]})
    drop.loc[drop["B"] == 0, "at most"] += 0.10
    drop.loc[drop["B"] == 0, "mass on the grid"] = 0.9
    assert (
        _verdict("D4", claims.d4(drop)) == Verdict.REPRODUCED
    )  # 0.02 ≤ 0.5 × 0.10 whatever the rest holds
    # B = 3: 0.04 resolved, up to 0.14: the ratio to B = 0 is between 0.4 and 1.4
    unsure = _moons({0: [0.10, 0.10, 0.10], 3: [0.04, 0.041, 0.039]})
    unsure.loc[unsure["B"] == 3, "at most"] += 0.10
    assert _verdict("D4", claims.d4(unsure)) == Verdict.UNDECIDED
    unsure.loc[unsure["B"] == 3, "mass where p < 1e-3"] += 0.05  # now at least 0.9 of B = 0's
    assert _verdict("D4", claims.d4(unsure)) == Verdict.NOT


def test_d4_is_not_testable_when_b_0_leaks_off_the_grid():
    leaks = _moons(
        {0: [0.10, 0.11, 0.09], 3: [0.02, 0.02, 0.02]}, grid=[0.5, 0.5, 0.5, 1.0, 1.0, 1.0]
    )
    check = claims.assess("D4", claims.d4(leaks))
    assert check.verdict == Verdict.UNTESTABLE and "not measured" in check.label()
    one_seed = _moons({0: [0.10, 0.11, 0.09], 3: [0.02, np.nan, np.nan]})
    assert _verdict("D4", claims.d4(one_seed)) == Verdict.UNTESTABLE


# --- D5: no predictable gain on images ------------------------------------------------------------


def _digits(values):
    return pd.DataFrame(
        [
            {"B": b, "seed": s, "D": 64, "mean log p̂": v}
            for b, vs in values.items()
            for s, v in enumerate(vs)
        ]
    )


def test_d5_reads_no_predictable_gain_as_a_size():
    size = claims.GAIN_PER_DIM * 64
    assert (
        _verdict(
            "D5",
            claims.d5(
                _digits(
                    {0: [-80.0, -82.0, -81.0], 2: [-80.5, -81.8, -81.2], 8: [-85.0, -86.0, -85.5]}
                )
            ),
        )
        == Verdict.REPRODUCED
    )
    gains = _digits(
        {
            0: [-80.0, -82.0, -81.0],
            16: [-80.0 + 3 * size, -82.0 + 3 * size + 0.2, -81.0 + 3 * size - 0.2],
        }
    )
    assert _verdict("D5", claims.d5(gains)) == Verdict.NOT
    # a gain of about the size, 1 nat either way between seeds: the interval straddles it
    unsure = _digits(
        {0: [-80.0, -82.0, -81.0], 16: [-80.0 + size - 1, -82.0 + size, -81.0 + size + 1]}
    )
    assert _verdict("D5", claims.d5(unsure)) == Verdict.UNDECIDED
    with pytest.raises(ValueError, match="one data dimension"):
        claims.d5(
            pd.concat(
                [_digits({0: [1.0, 2.0]}), _digits({0: [1.0, 2.0]}).assign(D=10, seed=[2, 3])]
            )
        )


def test_the_d5_size_is_the_thesis_s_own_image_scale():
    mnist = max(abs(v - 126.27) for v in (145.32, 137.66, 119.85, 129.4, 128.28)) / 784
    cifar = (8635.47 - 8422.63) / 3072
    assert mnist == pytest.approx(claims.GAIN_PER_DIM, abs=0.002)  # "no predictable improvement"
    assert cifar > 2.5 * claims.GAIN_PER_DIM  # "increase predictably"
    assert claims.FLAT / 2 == claims.GAIN_PER_DIM  # D1's flat, per coordinate at D = 2


# --- D6, D7 ---------------------------------------------------------------------------------------


def _summary(values):
    rows = []
    for (psi, d), lls in values.items():
        for b, ll in enumerate(lls):
            rows.append(
                {
                    "ψ": psi,
                    "D": d,
                    "B": b,
                    "runs": "1/1",
                    "mean over seeds": ll,
                    "SE": 0.02,
                    "best of seeds": ll,
                    "best SE": 0.02,
                    "thesis": THESIS_TABLE2[(psi, d)][b],
                    "truth E log p": PowerGaussian(d, psi).expected_log_likelihood(),
                }
            )
    return pd.DataFrame(rows)


def test_the_thesis_table_cannot_beat_the_truth():
    s = _summary({(1, 2): [-2.84, -2.85, -2.84]})
    found = claims.d6(s)
    assert _verdict("D6", found) == Verdict.NOT  # −2.5 > −2.84: above the truth
    assert "largest excess +0.34" in found.headline


def test_d7_energy_distance_falls_or_cannot_tell():
    falls = _runs({(3, 2): {0: 0.30, 2: 0.20, 4: 0.10}}, column="energy distance (CDF scale)")
    assert _verdict("D7", claims.d7(falls)) == Verdict.REPRODUCED
    rises = _runs({(3, 2): {0: 0.10, 4: 0.30}}, column="energy distance (CDF scale)")
    assert _verdict("D7", claims.d7(rises)) == Verdict.NOT
    noisy = _runs(
        {(3, 2): {0: [0.2, 0.2, 0.2], 4: [0.1, 0.25, 0.2]}}, column="energy distance (CDF scale)"
    )
    assert _verdict("D7", claims.d7(noisy)) == Verdict.UNDECIDED


# --- the run checks against the truth -------------------------------------------------------------


def test_above_truth_flags_a_model_that_beats_the_truth_beyond_chance():
    t = pd.DataFrame(
        {"gap to truth": [-0.3, 0.01, 0.5, np.nan], "gap SE": [0.02, 0.02, 0.02, np.nan]}
    )
    assert experiments.above_truth(t).index.tolist() == [2]
    assert experiments.above_truth(t, z=30.0).empty
    with pytest.raises(ValueError, match="lacks the columns"):
        experiments.above_truth(t.drop(columns="gap SE"))
    with pytest.raises(ValueError, match="z"):
        experiments.above_truth(t, z=-1.0)


def test_closed_form_misses_compares_the_test_set_mean_with_e_log_p():
    laws = [(1, 2), (2, 3), (3, 2)]
    rows = []
    for psi, d in laws:
        law = PowerGaussian(d, psi)
        log_p = law.log_prob(
            law.sample(4000, rng.generator(rng.derived_seed("deboer2020-claims", psi, d)))
        ).numpy()
        rows.append(
            {
                "ψ": psi,
                "D": d,
                "B": 0,
                "seed": 0,
                "truth mean log p": log_p.mean(),
                "truth SE": log_p.std(ddof=1) / np.sqrt(len(log_p)),
            }
        )
    runs = pd.DataFrame(rows)
    assert experiments.closed_form_misses(runs).empty
    runs.loc[1, "truth mean log p"] += 1.0  # a wrong density or closed form
    assert experiments.closed_form_misses(runs)[["ψ", "D"]].values.tolist() == [[2, 3]]
    with pytest.raises(ValueError, match="lacks the columns"):
        experiments.closed_form_misses(runs.drop(columns="truth SE"))


def test_d3_needs_two_dimensions():
    check = claims.assess("D3", claims.d3(_runs({(3, 2): {0: -3.0, 2: -2.0}})))
    assert check.verdict == Verdict.UNTESTABLE and "single D" in check.label()
