"""Each config field declares its check once; the canonical values, and so the cache keys, stay
put."""

import dataclasses
from dataclasses import dataclass, field

import pytest

import flowcore.config as config_module
from flowcore.cache import job_key
from flowcore.config import Checked, FlowConfig, StudyConfig, load_profile, resolve
from flowcore.studies import STUDIES, config_class
from flowcore.studies.debruin2024 import Sweep, ThesisConfig
from flowcore.studies.debruin2024.config import Regimes
from flowcore.train import TrainConfig

#: ``job_key("config", config)`` of each study's config built from the ``default`` profile
#: (``config_class(study).from_params(**load_profile("default")[study])``): the canonical form of
#: the whole config, which names a sweep's jobs. Change them only on purpose (a new default in
#: default.yaml, a new field, a new ``CACHE_VERSION``). Last changed by issue 22, when every study
#: took its training settings from the shared TrainConfig section and de Bruin's n_train and n_val
#: left it: the same values in another layout (the keys of cached flows and tables, pinned in
#: FLOW_KEYS, did not change). Before: debruin2024 config-ee92a5c42b9e19cea4a8, kirichenko2020
#: config-3faf36f5e7a048f17654, song2024 config-52441d3595971742ef97, deboer2020
#: config-3a19b5b896b2b037d5d8 (commit 96d34c8).
DEFAULT_KEYS = {
    # issue 25: the library_* fields of the battery across flow libraries (was
    # config-0c7aa33ece6ec9f43af0; the keys of cached flows and tables do not hold the whole config)
    "debruin2024": "config-964669358b97a0d349ba",
    # issue 23: the real_* fields of the FashionMNIST/MNIST chapter (was
    # config-280a3d290ee596c5f966)
    "kirichenko2020": "config-f530852bbe43a609e308",
    "song2024": "config-fd35d1a99cc786f02da5",
    # issue 23: the mnist_* fields of Table 4 on MNIST (before: config-a46ed5f03d412be2296b)
    "deboer2020": "config-4cde21b8a632ba2b6ef7",
}

#: The cache keys of the de Bruin study's first flow (single and batched) and baseline table at
#: the ``default`` and ``ci`` profiles, computed with the code of commit a38acef, when TrainConfig
#: still held n_train and n_val. A change here means every cached flow is trained again.
FLOW_KEYS = {
    "default": ("flow-b30958e85a049bdf7c34", "flow-5979f917c48984969cab"),
    "ci": ("flow-51d99368fb663d20af61", "flow-e87539cfc82c24e6c503"),
}
BASELINE_KEYS = {
    "default": "baseline-summary-7e9b61a4118f510ff342",
    "ci": "baseline-summary-eb3bb3a3c935c453c22d",
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
        for section, _, _ in klass.sections().values():
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


#: The parameters every study's training takes from the shared section, as users type them.
TRAINING = ("batch_size", "lr", "max_epochs", "patience", "lr_patience", "min_delta", "stopping")


@pytest.mark.parametrize("study", STUDIES)
def test_every_study_trains_with_the_shared_section(study):
    klass = config_class(study)
    section, prefix, hidden = klass.sections()["train"]
    assert (section, prefix) == (TrainConfig, "")
    names = klass.parameter_names()
    assert all(names[name] == ("train", name) for name in TRAINING)
    assert ("seed" in names) == (hidden == ()), "a seed is either the section's or no parameter"
    own = {f.name for f in dataclasses.fields(klass)}
    assert not own & {f.name for f in dataclasses.fields(TrainConfig)}, "no copies of the settings"
    default = load_profile("default")[study]
    config = klass.from_params(**default)
    settings = {name: default[name] for name in names if names[name][0] == "train"}
    assert config.train == TrainConfig(**settings)
    assert klass.from_params().train == klass().train == config.train, (
        "the study's own training defaults, also when a profile leaves them out"
    )


@pytest.mark.parametrize("study", STUDIES)
@pytest.mark.parametrize(
    "params, message",
    [
        ({"lr": 0}, "^lr must be a finite number > 0, got 0"),
        ({"batch_size": 0.5}, "^batch_size must be an integer ≥ 1, got 0.5"),
        ({"stopping": "late"}, "^stopping must be one of 'early', 'fixed'; got 'late'"),
    ],
)
def test_a_bad_training_setting_names_its_parameter(study, params, message):
    with pytest.raises(ValueError, match=message):
        resolve(config_class(study), "ci", params)


@pytest.mark.parametrize("study", ["song2024", "deboer2020"])
def test_a_study_whose_runs_take_their_seeds_has_no_seed_parameter(study):
    """As before the shared section: each run's seed is one of ``seeds``, so ``seed`` is unknown."""
    with pytest.raises(ValueError, match=r"unknown parameter 'seed' \(did you mean 'seeds'\?\)"):
        resolve(config_class(study), "ci", {"seed": 3})
    assert config_class(study)().train.seed == 0


def test_kirichenko_seed_is_its_training_seed():
    config = config_class("kirichenko2020").from_params(seed=3)
    assert config.seed == config.train.seed == 3 and config.at_seed(5).train.seed == 5
    assert config.at_seed(5).train == dataclasses.replace(config.train, seed=5)


@pytest.mark.parametrize("profile", ["default", "ci"])
def test_flow_and_table_keys_did_not_move_with_the_data_sizes(profile):
    c = resolve(ThesisConfig, profile).config
    spec = {"dim": c.dims[0], "recipe": c.recipe, "flow": c.flow}
    single = job_key("flow", {**spec, "train": c.train_key})
    batched = job_key("flow", {**spec, "trainer": "batched", "train": c.train_key})
    assert (single, batched) == FLOW_KEYS[profile]
    table = {"dims": c.dims, "recipe": c.recipe, "flow": c.flow, "train": c.train_key}
    table.update(n_test=c.n_test, n_repeats=c.n_repeats)
    assert job_key("baseline-summary", table) == BASELINE_KEYS[profile]
