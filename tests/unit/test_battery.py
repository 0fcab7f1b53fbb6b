"""The battery for any density model, :mod:`flowcore.battery`, on models whose verdicts are known:

- the true density p in the model's place shows none of the thesis's failures (where the test
  setting alone would make one appear, the truth masks it), reproduces the fit claim C4 (the
  untrained null fails it), and its unmasked numbers are the truth null's;
- the ML Gaussian p̂ in the model's place gets p̂'s own numbers, and no failure claim (p̂ masks
  every unit it passes);
- a model given by a builder is trained on the thesis's data and cached under its name: a second
  call trains nothing and returns the same table;
- bad input is named before any work.
"""

import pandas as pd
import pytest
import torch

from flowcore import battery, libraries
from flowcore import runs as runs_module
from flowcore.config import load_profile
from flowcore.flows import RealNVP
from flowcore.gaussians import Gaussian
from flowcore.studies.debruin2024 import ThesisConfig, claims, sensitivity
from flowcore.studies.debruin2024.training import training_data

DIM, SEED = 4, 0


@pytest.fixture(scope="module")
def config() -> ThesisConfig:
    """The ci profile's battery sizes."""
    return battery.battery_config(ThesisConfig.from_params(**load_profile("ci")["debruin2024"]))


def test_the_truth_as_the_model_fails_nothing_and_has_the_truths_numbers(config):
    runs = battery.battery(
        battery.Trained.truth(DIM, config), [DIM], [SEED], config, progress=False
    ).set_index("claim")
    assert runs.loc["C4", "verdict"] == "reproduced", "a fit claim the untrained null fails"
    failures = runs.loc[list(claims.FAILURES), "verdict"]
    assert not failures.isin(sensitivity.HOLDS).any(), failures.to_dict()
    assert (runs["KL*(p‖pθ)/D"].abs() < 1e-6).all(), "the truth fits itself exactly"
    # The model's numbers are the truth null's, up to scoring in float32; but for C10's, the share
    # of outlier members with a negative gap: the truth's gap to itself is exactly 0, the model's
    # the float32 rounding of 0, of either sign.
    numbers = runs.drop(index="C10")
    assert numbers["metric"].to_numpy() == pytest.approx(numbers["metric truth"], abs=0.05)


def test_the_ml_gaussian_as_the_model_gets_its_numbers_and_no_failure(config):
    _, x_train, _ = training_data(DIM, config.replace(seed=SEED))
    p_hat = Gaussian.fit(x_train)
    model = battery.Trained(
        "p̂ as a model",
        battery.GaussianDensity(p_hat),
        battery.GaussianDensity(Gaussian(torch.zeros(DIM), torch.eye(DIM))),
        DIM,
    )
    runs = battery.battery(model, [DIM], [SEED], config, progress=False).set_index("claim")
    assert runs["KL*(p‖pθ)/D"].to_numpy() == pytest.approx(runs["KL*(p‖p̂)/D"].to_numpy(), abs=1e-4)
    numbers = runs.drop(index="C10")  # as for the truth: p̂'s gaps in float32 and in float64
    assert numbers["metric"].to_numpy() == pytest.approx(numbers["metric p̂"], abs=0.05)
    failures = runs.loc[list(claims.FAILURES), "verdict"]
    assert not failures.isin(sensitivity.HOLDS).any(), "p̂ masks every unit it passes"


def test_a_builder_is_trained_once_and_cached_under_its_name(config, monkeypatch):
    trainings = []
    fit = runs_module.fit
    monkeypatch.setattr(runs_module, "fit", lambda *a, **k: trainings.append(1) or fit(*a, **k))

    def build(dim: int) -> torch.nn.Module:
        return RealNVP(dim, n_couplings=2, hidden=(8,))

    first = battery.battery(build, [DIM], [SEED], config, name="tiny RealNVP", progress=False)
    again = battery.battery(build, [DIM], [SEED], config, name="tiny RealNVP", progress=False)
    assert len(trainings) == 1, "the second call loads the trained model from the cache"
    assert list(first["claim"]) == list(sensitivity.CHECKS)
    assert (first["model"] == "tiny RealNVP").all() and (first["failure"] == "").all()
    pd.testing.assert_frame_equal(first, again)


def test_bad_input_is_named_before_any_work(config):
    with pytest.raises(ValueError, match="name must name a model"):
        battery.battery(lambda dim: RealNVP(dim), [DIM], [SEED], config)
    with pytest.raises(TypeError, match="a module alone is neither"):
        battery.battery(RealNVP(DIM), [DIM], [SEED], config)
    with pytest.raises(ValueError, match="model must be one of"):
        battery.battery("zuko GLOW", [DIM], [SEED], config)
    with pytest.raises(ValueError, match=r"dims\[0\] must be an integer ≥ 2"):
        battery.battery("zuko MAF", [1], [SEED], config)
    with pytest.raises(ValueError, match="one dim and seed"):
        battery.battery(battery.Trained.truth(DIM, config), [DIM, 5], [SEED], config)
    with pytest.raises(ValueError, match=r"dims must be \[4\]"):
        battery.battery(battery.Trained.truth(DIM, config), [5], [SEED], config, progress=False)


def test_a_library_that_is_not_installed_is_left_out_and_named(config, zuko_missing):
    models, missing = battery.installed_models(config)
    assert missing == ["zuko==1.6.0"]
    assert list(models) == [name for name in config.library.models if not name.startswith("zuko")]
    with pytest.raises(libraries.LibraryMissing, match=r"zuko==1\.6\.0"):
        battery.library_battery(config, models=["nflows MAF", "zuko MAF"], scheduler="serial")
