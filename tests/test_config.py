import os

import pytest

from flowcore.experiments import ExperimentConfig

BAD = [
    ({"dims": [1, 10]}, r"dims\[0\] must be an integer ≥ 2"),
    ({"dims": "10"}, "dims must be a non-empty list"),
    ({"dims": []}, "dims must be a non-empty list"),
    ({"scales": [1.0, 0.0]}, r"scales\[1\] must be a finite number > 0"),
    ({"scales": [-0.5]}, r"scales\[0\] must be a finite number > 0"),
    ({"n_test": 0}, "n_test must be an integer ≥ 2"),
    ({"n_test": "1000"}, r"n_test must be an integer ≥ 2, got '1000' \(str\)"),
    ({"n_train": 2.5}, "n_train must be an integer"),
    ({"tpr": 0}, "tpr must be a number strictly between 0 and 1"),
    ({"tpr": 1.5}, "tpr must be a number strictly between 0 and 1"),
    ({"device": "gpu"}, "device must be one of 'auto', 'cpu', 'cuda', 'cuda:N'"),
    ({"families": ["affine", "banana"]}, "families must be one of 'affine', 'perturbed', 'outlier'"),
    ({"eig_min": -1.0}, "eig_min must be a finite number > 0"),
    ({"eig_min": 2.0, "eig_max": 1.0}, "eig_max must be ≥ eig_min"),
    ({"spectrum": "flat"}, "spectrum must be one of 'loguniform', 'uniform'"),
    ({"lr": float("nan")}, "lr must be a finite number > 0"),
    ({"hidden": [128, 0]}, r"hidden\[1\] must be an integer ≥ 1"),
    ({"n_repeats": 1}, "n_repeats must be an integer ≥ 2"),
    ({"n_trian": 10}, "unknown parameter\\(s\\) 'n_trian'"),
]


@pytest.mark.parametrize("params, message", BAD, ids=[next(iter(p)) + "=" + repr(next(iter(p.values()))) for p, _ in BAD])
def test_bad_parameters_raise_before_any_work(params, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig.from_params(**params)
    assert not os.path.exists(os.environ["FLOWCORE_CACHE"])


def test_defaults_are_the_thesis_design():
    cfg = ExperimentConfig.from_params()
    assert cfg.dims == (10, 20, 50, 100)
    assert cfg.scales == (0.25, 0.5, 0.75, 1.0, 1.25, 1.75) and cfg.shifts == (0.0, 0.25, 0.5, 0.75)
    assert ExperimentConfig.from_params(**cfg.as_params()) == cfg
