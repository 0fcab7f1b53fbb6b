"""Profiles are the one source of settings: inheritance, unknown names, bad values, canonical
keys."""

import dataclasses
import os

import pytest

from flowcore.cache import job_key
from flowcore.config import FlowConfig, check_names, load_profile, profile_names, resolve
from flowcore.gaussians import GaussianRecipe
from flowcore.studies.debruin2024 import Sweep, ThesisConfig
from flowcore.train import TrainConfig

BAD = [
    ({"dims": [1, 10]}, r"dims\[0\] must be an integer ≥ 2"),
    ({"dims": "10"}, "dims must be a non-empty list"),
    ({"dims": []}, "dims must be a non-empty list"),
    ({"scales": [1.0, 0.0]}, r"scales\[1\] must be a finite number > 0"),
    ({"n_test": 0}, "n_test must be an integer ≥ 2"),
    ({"n_test": "a thousand"}, r"n_test must be an integer ≥ 2, got 'a thousand' \(str\)"),
    ({"n_train": 2.5}, "n_train must be an integer"),
    ({"tpr": 1.5}, "tpr must be a number strictly between 0 and 1"),
    ({"device": "gpu"}, "device must be one of 'auto', 'cpu', 'cuda', 'cuda:N'"),
    (
        {"families": ["affine", "banana"]},
        "families must be one of 'affine', 'perturbed', 'outlier'",
    ),
    ({"eig_min": 2.0, "eig_max": 1.0}, "eig_max must be ≥ eig_min"),
    ({"spectrum": "flat"}, "spectrum must be one of 'loguniform', 'uniform'"),
    ({"lr": float("nan")}, "lr must be a finite number > 0"),
    ({"hidden": [128, 0]}, r"hidden\[1\] must be an integer ≥ 1"),
    ({"log_scale": "softplus"}, "log_scale must be one of 'tanh', 'exp', 'sigmoid'"),
    ({"permutation": "shuffle"}, "permutation must be one of 'random', 'reverse', 'none'"),
    ({"zero_init": "yes"}, "zero_init must be true or false"),
    ({"alpha": -1}, "alpha must be a number ≥ 0, or null to calibrate it"),
    ({"sweep_seeds": [0, 1]}, "sweep_seeds must hold at least 3 distinct seeds"),
    ({"n_trian": 10}, r"unknown parameter 'n_trian' \(did you mean 'n_train'\?\)"),
]


@pytest.mark.parametrize(
    "params, message", BAD, ids=[next(iter(p)) + "=" + repr(next(iter(p.values()))) for p, _ in BAD]
)
def test_bad_parameters_raise_before_any_work(params, message):
    with pytest.raises(ValueError, match=message):
        resolve(ThesisConfig, "ci", params)
    assert not os.path.exists(os.environ["FLOWCORE_CACHE"])


def test_class_defaults_are_the_default_profile():
    """The config classes' defaults may not disagree with default.yaml: it is the one source."""
    profile = load_profile("default")["debruin2024"]
    assert ThesisConfig().as_params() == ThesisConfig.from_params(**profile).as_params()
    assert set(profile) == set(ThesisConfig.parameter_names()), (
        "every parameter is in the default profile, and nothing else"
    )
    for klass in (FlowConfig, TrainConfig, GaussianRecipe, Sweep):
        assert all(
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            for f in dataclasses.fields(klass)
        )


def test_profiles_inherit_and_state_only_differences():
    assert set(profile_names()) >= {"ci", "default", "paper"}
    default, ci, paper = (load_profile(name)["debruin2024"] for name in ("default", "ci", "paper"))
    assert set(ci) == set(default) == set(paper)
    assert ci["dims"] == [4, 7] and ci["eig_min"] == default["eig_min"]
    assert paper["n_test"] == 1_000_000 and paper["n_train"] == default["n_train"]
    with pytest.raises(
        ValueError, match="profile must be one of 'ci', 'default', 'paper'; got 'fast'"
    ):
        load_profile("fast")


def test_validated_values_are_canonical_and_share_a_key():
    a = resolve(ThesisConfig, "default", {"n_train": 100000.0, "dims": (10, 20)}).config
    b = resolve(ThesisConfig, "default", {"n_train": 100_000, "dims": [10, 20]}).config
    assert a == b and type(a.n_train) is int
    assert job_key("flow", {"train": a.train_key, "flow": a.flow}) == job_key(
        "flow", {"train": b.train_key, "flow": b.flow}
    )
    # The data sizes are no training setting, but they are part of how a flow was trained.
    assert a.replace(n_train=5000).train == a.train
    assert job_key("flow", {"train": a.train_key}) != job_key(
        "flow", {"train": a.replace(n_train=5000).train_key}
    )


def test_overrides_are_reported():
    resolved = resolve(ThesisConfig, "ci", {"n_train": 5000})
    table = resolved.table()
    assert (
        table.loc["n_train", "source"] == "override" and table.loc["dims", "source"] == "profile ci"
    )
    assert "n_train" in resolved.summary()


def test_unknown_names_suggest_the_nearest():
    with pytest.raises(
        ValueError, match=r"unknown parameters 'lrr' \(did you mean 'lr'\?\), 'zzz'; known"
    ):
        check_names(["lrr", "zzz", "lr"], ["lr", "n_train"])


def test_configure_takes_injected_values_and_edited_knobs(monkeypatch):
    import flowcore.config as config_module
    from flowcore.config import configure

    default_dims = load_profile("default")["debruin2024"]["dims"]
    monkeypatch.setattr(config_module, "_injected_names", lambda: set())
    # A knob left at the default profile's value does not override the chosen profile...
    assert configure(ThesisConfig, {"profile": "ci", "dims": default_dims}, show=False).dims == (
        4,
        7,
    )
    # ...a knob a reader edited does...
    assert configure(ThesisConfig, {"profile": "ci", "dims": [5]}, show=False).dims == (5,)
    # ...and so does a value papermill injected, even when it equals the default profile's.
    monkeypatch.setattr(config_module, "_injected_names", lambda: {"profile", "dims"})
    config = configure(ThesisConfig, {"profile": "ci", "dims": default_dims}, show=False)
    assert config.dims == tuple(default_dims) and config.table().loc["dims", "source"] == "override"
    monkeypatch.setattr(config_module, "_injected_names", lambda: {"profile", "n_trian"})
    with pytest.raises(
        ValueError, match=r"unknown parameter 'n_trian' \(did you mean 'n_train'\?\)"
    ):
        configure(ThesisConfig, {"profile": "ci", "n_trian": 5}, show=False)
