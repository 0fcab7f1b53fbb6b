"""What the two Kirichenko chapters compute besides training and scoring: which flows each chapter's
sweep holds, the tables they arrange from it, the thesis's question on its Gaussians, and the
chapters' figures."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from flowcore.studies.kirichenko2020 import analysis, claims, figures, seeds  # noqa: E402
from flowcore.studies.kirichenko2020.config import KirichenkoConfig  # noqa: E402
from flowcore.studies.kirichenko2020.experiments import Digits  # noqa: E402

#: What each chapter reads of the sweep (notebooks/kirichenko2020/couplings.py and beyond.py).
COUPLINGS, BEYOND = ["K5", "K6", "co-adaptation"], ["K7", "K9"]


@pytest.mark.parametrize(
    "config",
    [
        KirichenkoConfig(),
        KirichenkoConfig(seeds=[0, 1], bottlenecks=[None, 2]),
        KirichenkoConfig(mask="horizontal", masks=["checkerboard", "cycle"], bottlenecks=[4, 8]),
        KirichenkoConfig(mask="cycle", n_couplings=4, bottlenecks=[None]),
    ],
    ids=["default", "ci", "main mask outside masks", "cycle main, no bottleneck"],
)
def test_the_two_chapters_together_run_every_flow_of_the_sweep(config):
    first, second = seeds.flows_for(config, COUPLINGS), seeds.flows_for(config, BEYOND)
    assert set(first) | set(second) == set(seeds.flow_names(config))
    both = seeds.jobs(config, first) + seeds.jobs(config, second)
    assert {j.key for j in both} == {j.key for j in seeds.jobs(config)}
    # Every flow the second chapter loads from the first is trained by a sweep in either chapter:
    # the main flow (K5's swap test there, K7's reference and K9's pixel flow here).
    assert set(first) & set(second) <= {config.mask, *(f"l = {b}" for b in config.bottlenecks)}


def test_flows_for_names_what_each_part_reads():
    config = KirichenkoConfig()
    assert seeds.flows_for(config, ["K6"]) == ["checkerboard", "horizontal", "cycle"]
    assert seeds.flows_for(config, ["K5"]) == ["checkerboard"]
    assert seeds.flows_for(config, ["K9"]) == ["checkerboard", "features"]
    assert seeds.flows_for(config, ["co-adaptation"]) == ["checkerboard", "cycle", "l = 2"]
    cycle = KirichenkoConfig(mask="cycle")
    assert seeds.flows_for(cycle, ["co-adaptation"]) == ["cycle", "l = 2"]
    with pytest.raises(ValueError, match="reads must be among"):
        seeds.flows_for(config, ["K8"])


def test_jobs_keep_only_the_named_flows_in_job_order():
    config = KirichenkoConfig(seeds=[0, 1])
    picked = seeds.jobs(config, ["features", "horizontal"])
    assert [(j.labels["seed"], j.labels["flow"]) for j in picked] == [
        (0, "horizontal"),
        (0, "features"),
        (1, "horizontal"),
        (1, "features"),
    ]
    everything = {(j.labels["seed"], j.labels["flow"]): j.key for j in seeds.jobs(config)}
    assert all(everything[(j.labels["seed"], j.labels["flow"])] == j.key for j in picked)
    with pytest.raises(ValueError, match="flows must be among"):
        seeds.jobs(config, ["diagonal"])


def _runs() -> pd.DataFrame:
    rows = []
    for seed in (0, 1, 2):
        for flow, auroc, bpd in (
            ("checkerboard", 0.3, 1.0),
            ("cycle", 0.5, 1.2),
            ("l = 2", 0.4, 1.1),
        ):
            rows.append(
                {
                    "seed": seed,
                    "flow": flow,
                    "mask": "cycle" if flow == "cycle" else "checkerboard",
                    "l": "2" if flow == "l = 2" else "none",
                    "test bits/dim": bpd + 0.01 * seed,
                    "mean AUROC": auroc + 0.05 * seed,
                    "AUROC class 1": auroc - 0.1 + 0.05 * seed,
                    **(
                        {
                            "R² layer 1": 0.5,
                            "R² layer 2": 0.6 + 0.1 * seed,
                            "R² layer 2, swapped": 0.2,
                            "ceiling": 0.4,
                        }
                        if flow == "checkerboard"
                        else {}
                    ),
                }
            )
        rows.append(
            {"seed": seed, "flow": "features", "mask": "", "l": "", "mean AUROC": 0.9,
             "AUROC class 1": 0.95 - 0.01 * seed}
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_per_flow_of_a_subset_equals_those_rows_of_all_flows():
    runs = _runs()
    image = runs[runs["flow"] != "features"]
    every = seeds.per_flow(image, ["checkerboard", "cycle", "l = 2"])
    part = seeds.per_flow(image, ["l = 2", "checkerboard"])
    assert list(part.index) == ["checkerboard", "l = 2"]  # the order of the runs, not of the list
    pd.testing.assert_frame_equal(part, every.loc[["checkerboard", "l = 2"]])
    assert every.loc["cycle", "mean AUROC"] == pytest.approx(0.55)
    assert every.loc["cycle", "test bits/dim"] == pytest.approx(1.21)
    assert every.loc["cycle", "seeds AUROC"] == 3
    with pytest.raises(ValueError, match="no rows"):
        seeds.per_flow(image, ["horizontal"])


def test_swap_rows_and_pixel_vs_features():
    runs = _runs()
    swap = seeds.swap_rows(runs, "checkerboard")
    assert list(swap.index) == [0, 1, 2] and list(swap.columns) == list(seeds.SWAP_COLUMNS)
    assert swap.loc[2, "R² layer 2"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="no rows"):
        seeds.swap_rows(runs, "horizontal")
    table = seeds.pixel_vs_features(runs, "checkerboard")
    assert list(table.columns) == ["checkerboard", "features"] and list(table.index) == ["class 1"]
    assert table.loc["class 1", "checkerboard"] == pytest.approx(0.25)
    assert table.loc["class 1", "features"] == pytest.approx(0.94)
    with pytest.raises(ValueError, match="features"):
        seeds.pixel_vs_features(runs[runs["flow"] != "features"], "checkerboard")


def _gaussian(co: np.ndarray, r2_on_p: float = -0.2) -> pd.DataFrame:
    kl = np.linspace(0.1, 10.0, len(co))
    return pd.DataFrame(
        {
            "family": ["p"] + ["affine"] * (len(co) // 2) + ["outlier"] * (len(co) - len(co) // 2),
            "s": 1.0,
            "t": 0.0,
            "KL(q‖p)": [0.0, *kl],
            "R² layer 2": [r2_on_p, *np.zeros(len(co))],
            "R² layer 2, swapped": [r2_on_p - 0.1, *np.zeros(len(co))],
            "co-adaptation": [0.1, *co],
        }
    )


def test_typicality_trend_reads_the_sign_and_the_level():
    rising = analysis.typicality_trend(_gaussian(np.linspace(0.0, 1.0, 30)))
    assert (rising.answer, rising.members, rising.predicts) == ("grows", 30, False)
    assert rising.rho == pytest.approx(1.0) and rising.pvalue < analysis.TREND_LEVEL
    assert rising.base["co-adaptation"] == pytest.approx(0.1)
    falling = analysis.typicality_trend(_gaussian(np.linspace(1.0, 0.0, 30), r2_on_p=0.3))
    assert (falling.answer, falling.predicts) == ("shrinks", True)
    noise = np.random.default_rng(0).permutation(np.linspace(0.0, 1.0, 30))
    flat = analysis.typicality_trend(_gaussian(noise))
    assert flat.answer == "shows no clear trend" and flat.pvalue >= analysis.TREND_LEVEL
    with pytest.raises(ValueError, match="family 'p'"):
        analysis.typicality_trend(_gaussian(np.arange(5.0)).iloc[1:])


def test_ood_table_and_negative_comparison():
    d = Digits(
        {"test": np.zeros((5, 64))},
        {"class 1": (np.zeros((3, 64)), "simpler"), "photo patches": (np.ones((2, 64)), "photos")},
    )
    table = analysis.ood_table(d)
    assert list(table.index) == ["class 1", "photo patches"]
    assert (
        table["images"].tolist() == [3, 2]
        and table.loc["photo patches", "stands in for"] == "photos"
    )
    sets = ["test", "class 1", "class 7"]
    plain = pd.DataFrame({"AUROC": [np.nan, 0.2, 0.4], "bits/dim": 1.0}, index=sets)
    negative = pd.DataFrame({"AUROC": [np.nan, 0.95, 0.5], "bits/dim": 1.1}, index=sets)
    out = analysis.negative_comparison(plain, negative)
    assert list(out.index) == ["class 1", "class 7"] and list(out.columns) == [
        "plain",
        "negative training",
    ]
    assert out.loc["class 1", "negative training"] == pytest.approx(0.95)


def test_likelihood_histograms_leave_out_the_training_set_and_zoom_on_the_test_digits():
    g = np.random.default_rng(0)
    scores = {
        "train": g.normal(0, 1, 200),
        "test": g.normal(0, 1, 200),
        "class 1": g.normal(0.5, 1, 200),
        "uniform noise": g.normal(-500, 1, 50),  # far below the test digits: not in the zoom
    }
    fig = figures.likelihood_histograms(scores, "digits")
    every, zoom = fig.axes
    assert [t.get_text() for t in every.get_legend().get_texts()] == [
        "test",
        "class 1",
        "uniform noise",
    ]
    assert len(every.patches) == 3 and len(zoom.patches) == 2
    assert every.get_xlabel() == zoom.get_xlabel() == "mean log-likelihood of an image (nats)"
    assert (every.get_ylabel(), zoom.get_ylabel()) == ("density", "images")
    assert fig.get_suptitle() == "digits"
    plt.close(fig)


def test_coupling_panels_one_row_per_image_and_layer():
    layer = {
        name: np.full((8, 8), i, dtype=float)
        for i, name in enumerate(("input", "output", "exp(s)", "−t"))
    }
    fig = figures.coupling_panels({"test digit": [layer] * 3, "class 1": [layer] * 3})
    assert len(fig.axes) == 2 * 3 * 4
    assert [ax.get_title() for ax in fig.axes[:4]] == ["input", "output", "exp(s)", "−t"]
    assert fig.axes[4 * 4].get_ylabel() == "class 1\nlayer 2"
    assert fig.axes[5].get_title() == ""  # titles on the first row only
    assert fig.axes[3].images[0].get_array().max() == 3
    plt.close(fig)


def test_coadaptation_vs_kl_one_colour_per_family_and_the_value_on_p():
    gaussian = _gaussian(np.linspace(0.0, 1.0, 10))
    fig = figures.coadaptation_vs_kl(gaussian, 20)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "KL(q‖p) (nats, symmetric log scale)" and ax.get_xscale() == "symlog"
    assert ax.get_ylabel() == "R² lost to the swap (layer 2)" and "D = 20" in ax.get_title()
    assert [len(c.get_offsets()) for c in ax.collections] == [5, 5]
    (line,) = ax.lines
    assert line.get_ydata()[0] == pytest.approx(0.1)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["affine", "outlier", "q = p"]
    plt.close(fig)


def test_the_two_chapters_judge_every_claim_once():
    first = ["K1", "K2", "K3", "K4", "K5", "K6"]
    second = ["K7", "K8", "K9", "K10", "K11"]
    assert first + second == list(claims.CLAIMS)
