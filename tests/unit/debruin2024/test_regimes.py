"""The regime search: its design, the configs its jobs carry, its summaries, and the evaluation's
float64 rescoring when an unbounded scale map overflows float32."""

import numpy as np
import pandas as pd
import pytest
import torch

from flowcore.config import resolve
from flowcore.flows import RealNVP
from flowcore.gaussians import GaussianRecipe, training_gaussian
from flowcore.studies.debruin2024 import ThesisConfig, regimes
from flowcore.studies.debruin2024.calibration import Constants
from flowcore.studies.debruin2024.evaluation import evaluate_family
from flowcore.studies.debruin2024.families import OutlierRecipe, Perturbation
from flowcore.studies.debruin2024.training import TrainedFlow
from flowcore.sweep import space_filling
from flowcore.train import History


@pytest.fixture
def base():
    return resolve(ThesisConfig, "ci", {"regime_dims": [4, 6]}).config


def test_design_is_balanced_and_every_job_carries_its_levels(base):
    points = regimes.design(base)
    assert len(points) == base.regime.points
    for name, levels in regimes.factors(base).items():
        counts = points[name].value_counts()
        assert set(counts.index) <= set(levels) and counts.max() - counts.min() <= 1, name
    jobs = regimes.jobs(base, points)
    assert len(jobs) == (len(points) + 1) * len(base.regime.seeds)
    for job in jobs:
        c, labels = job.config, job.labels
        assert c.dims == (int(labels["D"]),) and c.seed == labels["seed"]
        assert (
            c.flow.log_scale
            == regimes.FACTORS["log-scale map"][labels["log-scale map"]]["log_scale"]
        )
        assert c.recipe.spectrum == regimes.FACTORS["Σ_p recipe"][labels["Σ_p recipe"]]["spectrum"]
        assert c.train.stopping == labels["training"] and c.flow.zero_init == (
            labels["last layer"] == "zero"
        )
        assert c.alpha is None and c.outlier_offset is None, "recalibrated per recipe and seed"
    assert len({j.key for j in jobs}) == len(jobs)
    # D and n_train are crossed in full: every combination on equally many points.
    cells = points.groupby(["D", "n_train"]).size()
    assert (
        len(cells) == len(regimes.factors(base)["D"]) * len(regimes.factors(base)["n_train"])
        and cells.max() - cells.min() <= 1
    )


def test_too_few_points_for_the_crossing_is_named(base):
    with pytest.raises(ValueError, match="regime_points must be at least the 4 combinations"):
        regimes.design(base.replace(regime_points=3))


def test_maximin_spreads_points_further_than_random_balanced_designs():
    factors = {f"f{i}": [0, 1, 2] for i in range(6)}

    def closest_pair(design):
        codes = design.to_numpy()
        return min((codes[i] != codes[j]).sum() for i in range(len(codes)) for j in range(i))

    chosen = closest_pair(space_filling(factors, 9, seed=0, candidates=200))
    single = [closest_pair(space_filling(factors, 9, seed=s, candidates=1)) for s in range(1, 31)]
    assert chosen >= max(single) and chosen > np.mean(single)


def _runs(verdicts_by_point: dict, fits: dict | None = None) -> pd.DataFrame:
    rows = []
    for point, verdicts in verdicts_by_point.items():
        for seed, v in enumerate(verdicts):
            fit = True if fits is None else fits[point][seed]
            for claim in regimes.CHECKS:
                rows.append(
                    {
                        "point": point,
                        "seed": seed,
                        "claim": claim,
                        "verdict": v if claim == "C5" else "not reproduced",
                        "p̂": "not reproduced",
                        "metric": 0.0,
                        "D": "20",
                        "n_train": "1,000",
                        "fits p": fit,
                        "KL*(p‖pθ)/D": 0.01 if fit else 0.2,
                        "KL*(p‖p̂)/D": 0.005,
                        "KL*(p‖pθ₀)/D": 0.7,
                        "log-scale map": "tanh" if point == "P1" else "exp",
                        "permutations": "random",
                        "last layer": "zero",
                        "training": "early",
                        "Σ_p recipe": "log-uniform",
                        "μ_p scale": "1",
                    }
                )
    return pd.DataFrame(rows)


def test_summaries_count_testable_runs_and_failures_apart():
    runs = _runs(
        {
            "P1": ["reproduced", "partly reproduced", "not reproduced"],
            "P2": ["not testable here", regimes.FAILED, "not reproduced"],
        }
    )
    cells = regimes.by_point(runs)
    assert cells.loc["P1", "C5"] == "1+1/3" and cells.loc["P2", "C5"] == "0+0/1 (1 failed)"
    assert cells.loc["P1", "score"] == pytest.approx(1.5 / 3) and regimes.closest(runs) == "P1"
    assert cells.loc["P1", "fits p"] == "3/3"


def test_the_closest_point_must_fit_p_and_effects_count_points_not_seeds(base):
    runs = _runs(
        {"P1": ["reproduced"] * 3, "P2": ["not reproduced"] * 3},
        fits={"P1": [True, False, True], "P2": [True, True, True]},
    )
    assert regimes.closest(runs) == "P2", "P1 scores higher but one of its seeds does not fit p"
    assert regimes.closest(_runs({"P1": ["reproduced"]}, fits={"P1": [False]})) is None
    effects = regimes.effects(runs, base.replace(regime_dims=[20], regime_n_train=[1000]))
    c5 = effects[(effects["claim"] == "C5") & (effects["factor"] == "log-scale map")].set_index(
        "level"
    )
    # P1's two fitted seeds both hold: one point with share 1 (no interval from one point); P2's
    # point share is 0.
    assert (
        c5.loc["tanh", "share"] == 1.0
        and c5.loc["tanh", "points"] == 1
        and c5.loc["tanh", "runs"] == 2
    )
    assert c5.loc["exp", "share"] == 0.0 and c5.loc["exp", "runs"] == 3
    strata = regimes.strata(runs)
    assert (
        strata.loc[("20", "1,000"), "runs fitting p"] == "5/6"
        and strata.loc[("20", "1,000"), "C5 flow"] == "2/5"
    )


def test_an_overflowing_flow_is_rescored_in_float64(base, tmp_path):
    config = base.replace(dims=[2], n_test=200, scales=[1.0], shifts=[0.0, 0.5], chunk_size=64)
    p = training_gaussian(2, GaussianRecipe(), seed=0)
    flow = RealNVP(2, n_couplings=1, hidden=(4,), log_scale="exp", permutation="none")
    # a log-scale of 100 on every transformed coordinate: exp(100) overflows float32, not float64
    with torch.no_grad():
        for module in flow.modules():
            if isinstance(module, torch.nn.Linear) and module.out_features == 2:
                module.weight.zero_()
                module.bias.copy_(torch.tensor([100.0, 0.0]))
    x = p.sample(10, torch.Generator().manual_seed(0)).float()
    assert not torch.isfinite(flow.log_prob(x)).all(), "the setup must overflow in float32"
    trained = TrainedFlow(2, p, p, flow, History(), False, untrained=flow)
    consts = Constants(Perturbation(0.0, 0.0), OutlierRecipe(1.0, 1.0), {})
    fam = evaluate_family(trained, config, "affine", consts, n_grid=16, progress=False)
    assert np.isfinite(fam.table.select_dtypes("number").to_numpy()).all()
