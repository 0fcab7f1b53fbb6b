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
from flowcore.verdicts import Verdict


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
        assert c.flow.log_scale == regimes.FACTORS["log-scale map"][labels["log-scale map"]]["log_scale"]
        assert c.recipe.spectrum == regimes.FACTORS["Σ_p recipe"][labels["Σ_p recipe"]]["spectrum"]
        assert c.train.stopping == labels["training"] and c.flow.zero_init == (labels["last layer"] == "zero")
        assert c.alpha is None and c.outlier_offset is None, "recalibrated per recipe and seed"
    assert len({j.key for j in jobs}) == len(jobs)


def test_maximin_spreads_points_further_than_random_balanced_designs():
    factors = {f"f{i}": [0, 1, 2] for i in range(6)}

    def closest_pair(design):
        codes = design.to_numpy()
        return min((codes[i] != codes[j]).sum() for i in range(len(codes)) for j in range(i))

    chosen = closest_pair(space_filling(factors, 9, seed=0, candidates=200))
    single = [closest_pair(space_filling(factors, 9, seed=s, candidates=1)) for s in range(1, 31)]
    assert chosen >= max(single) and chosen > np.mean(single)


def test_summaries_count_testable_runs_and_failures_apart():
    rows = []
    for point, verdicts in (("P1", ["reproduced", "partly reproduced", "not reproduced"]), ("P2", ["not testable here", regimes.FAILED, "not reproduced"])):
        for seed, v in enumerate(verdicts):
            for claim in regimes.CHECKS:
                rows.append({"point": point, "seed": seed, "claim": claim, "verdict": v if claim == "C5" else "not reproduced", "metric": 0.0, "D": "20"})
    runs = pd.DataFrame(rows)
    cells = regimes.by_point(runs)
    assert cells.loc["P1", "C5"] == "1+1/3" and cells.loc["P2", "C5"] == "0+0/1 (1 failed)"
    assert cells.loc["P1", "score"] == pytest.approx(1.5 / 3) and regimes.closest(runs) == "P1"


def test_an_overflowing_flow_is_rescored_in_float64(base, tmp_path):
    config = base.replace(dims=[2], n_test=200, scales=[1.0], shifts=[0.0, 0.5], chunk_size=64)
    p = training_gaussian(2, GaussianRecipe(), seed=0)
    flow = RealNVP(2, n_couplings=1, hidden=(4,), log_scale="exp", permutation="none")
    with torch.no_grad():  # a log-scale of 100 on every transformed coordinate: exp(100) overflows float32, not float64
        for module in flow.modules():
            if isinstance(module, torch.nn.Linear) and module.out_features == 2:
                module.weight.zero_()
                module.bias.copy_(torch.tensor([100.0, 0.0]))
    x = p.sample(10, torch.Generator().manual_seed(0)).float()
    assert not torch.isfinite(flow.log_prob(x)).all(), "the setup must overflow in float32"
    trained = TrainedFlow(2, p, p, flow, History(), False)
    consts = Constants(Perturbation(0.0, 0.0), OutlierRecipe(1.0, 1.0), {})
    fam = evaluate_family(trained, config, "affine", consts, n_grid=16, progress=False)
    assert np.isfinite(fam.table.select_dtypes("number").to_numpy()).all()
