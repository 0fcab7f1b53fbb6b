"""``evaluation.cached_results``: the results from the cache alone (what the live explorer reads),
never training, calibrating or evaluating anything itself."""

import pandas as pd
import pytest

from flowcore.cache import cache_dir
from flowcore.config import resolve
from flowcore.studies.debruin2024 import ThesisConfig, evaluation

#: A tiny config: one D, two families, 2 x 2 members, calibrated with few draws (seconds).
TINY = {
    "dims": [3],
    "n_train": 400,
    "n_val": 100,
    "max_epochs": 2,
    "n_test": 400,
    "scales": [0.5, 1.0],
    "shifts": [0.0, 0.5],
    "families": ["affine", "perturbed"],
    "calibration_draws": 300,
}


@pytest.fixture
def config():
    return resolve(ThesisConfig, "ci", TINY).config


def test_cached_results_is_none_on_an_empty_cache_and_writes_nothing(config):
    assert evaluation.cached_results(config) is None
    assert not cache_dir().exists() or not any(cache_dir().iterdir()), (
        "nothing was trained, calibrated or evaluated"
    )


def test_cached_results_after_results_equal_them(config):
    computed = evaluation.results(config, progress=False)
    loaded = evaluation.cached_results(config)
    assert loaded is not None
    pd.testing.assert_frame_equal(loaded.table, computed.table)
    assert loaded.curves.keys() == computed.curves.keys()
    assert loaded.timings["from cache"].all()
    assert loaded.member(3, "perturbed", 0.5, 0.5)["D"] == 3


def test_cached_results_is_none_while_one_family_is_missing(config):
    evaluation.results(config, families=["affine"], progress=False)
    entries = sorted(p.name for p in cache_dir().iterdir())
    assert evaluation.cached_results(config, families=["affine"]) is not None
    assert evaluation.cached_results(config) is None  # the perturbed family was never evaluated
    assert sorted(p.name for p in cache_dir().iterdir()) == entries, (
        "the failed lookup wrote nothing"
    )
