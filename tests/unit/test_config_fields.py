"""Each config field declares its check once; the canonical values, and so the cache keys, stay put."""

import dataclasses
from dataclasses import dataclass, field

import pytest

import flowcore.config as config_module
from flowcore.cache import job_key
from flowcore.config import Checked, FlowConfig, StudyConfig, load_profile
from flowcore.studies import STUDIES, config_class
from flowcore.studies.debruin2024 import Sweep, ThesisConfig
from flowcore.studies.debruin2024.config import Regimes

#: ``job_key("config", config)`` of each study's config built from the ``default`` profile
#: (``config_class(study).from_params(**load_profile("default")[study])``), computed with the code of
#: commit 96d34c8, before the checks moved onto the fields. These are cache keys, not results: a
#: change here means every cached flow and table of the study is recomputed. Change them only on
#: purpose (a new default in default.yaml, a new field, a new ``CACHE_VERSION``).
DEFAULT_KEYS = {
    "debruin2024": "config-ee92a5c42b9e19cea4a8",
    "kirichenko2020": "config-3faf36f5e7a048f17654",
    "song2024": "config-52441d3595971742ef97",
    "deboer2020": "config-3a19b5b896b2b037d5d8",
}


@pytest.mark.parametrize("study", STUDIES)
def test_default_configs_keep_their_cache_keys(study):
    klass = config_class(study)
    assert (
        job_key("config", klass.from_params(**load_profile("default")[study]))
        == DEFAULT_KEYS[study]
    )
    assert job_key("config", klass()) == DEFAULT_KEYS[study], (
        "the class defaults are the default profile's"
    )


def _checked_classes():
    for study in STUDIES:
        klass = config_class(study)
        yield (
            klass,
            set(klass.SECTIONS) | {"scheduler"},
        )  # sections check themselves; the scheduler in from_params
        for section, _ in klass.SECTIONS.values():
            if issubclass(section, Checked):
                yield section, set()


@pytest.mark.parametrize(
    "klass, exempt", list(_checked_classes()), ids=lambda v: getattr(v, "__name__", "")
)
def test_every_parameter_declares_its_check(klass, exempt):
    missing = [
        f.name
        for f in dataclasses.fields(klass)
        if f.name not in exempt and "check" not in f.metadata
    ]
    assert not missing, f"{klass.__name__}: fields without a declared check: {missing}"


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Sweep(dim=1), "sweep_dim must be an integer ≥ 2, got 1"),
        (
            lambda: Regimes(mean_scales=[1, -1]),
            r"regime_mean_scales must be numbers ≥ 0, got \[1.0, -1.0\]",
        ),
        (
            lambda: ThesisConfig.from_params(sweep_n_test=5),
            "sweep_n_test must be an integer ≥ 100, got 5",
        ),
        (
            lambda: ThesisConfig.from_params(regime_dims=[20, 1]),
            r"regime_dims\[1\] must be an integer ≥ 2, got 1",
        ),
        (
            lambda: ThesisConfig.from_params(n_couplings=0),
            "^n_couplings must be an integer ≥ 1, got 0",
        ),
        (
            lambda: ThesisConfig.from_params(outlier_cov_scale=0),
            "outlier_cov_scale must be a number > 0, or null to calibrate it; got 0",
        ),
    ],
)
def test_errors_name_the_flat_parameter(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_a_shared_section_takes_the_prefix_of_the_study_being_built(monkeypatch):
    monkeypatch.setattr(
        config_module, "_PREFIXES", {k: set(v) for k, v in config_module._PREFIXES.items()}
    )

    @dataclass(frozen=True)
    class Other(StudyConfig):
        STUDY = "other"
        SECTIONS = {"flow": (FlowConfig, "flow_")}
        flow: FlowConfig = field(default_factory=FlowConfig)

    with pytest.raises(ValueError, match="^flow_n_couplings must be an integer ≥ 1"):
        Other.from_params(flow_n_couplings=0)
    with pytest.raises(ValueError, match="^n_couplings must be an integer ≥ 1"):
        ThesisConfig.from_params(n_couplings=0)
    assert Other.from_params(flow_n_couplings=2.0).flow.n_couplings == 2
