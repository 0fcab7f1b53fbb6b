"""Parameters as people type them, and sizes checked against the machine before any work.

The five commands of the issue that asked for this, run through the pipeline's own entry point with
the kernel replaced by a recorder: valid values reach the chapter as numbers, a malformed value and
a size the machine cannot hold stop with one line before any kernel starts.
"""

import warnings

import pytest

from bookpipe import chapters as pipeline  # what `pipeline.py chapter` runs
from flowcore.config import resolve
from flowcore.params import coerce, load_yaml, parse_value
from flowcore.resources import Estimate, Need, SlowRunWarning, check_resources
from flowcore.studies.debruin2024 import ThesisConfig


@pytest.fixture
def kernel(monkeypatch, tmp_path):
    """Record what would be executed instead of starting a kernel."""
    started = []
    monkeypatch.setattr(pipeline, "BUILD", tmp_path)
    monkeypatch.setattr(pipeline, "kernel_environment", lambda cache, scheduler="": None)
    monkeypatch.setattr(
        pipeline,
        "execute_chapter",
        lambda name, parameters, output: started.append(parameters) or 0.0,
    )
    return started


@pytest.mark.parametrize("text, value", [("1e-3", 0.001), ("1E9", 1e9)])
def test_numbers_in_exponent_form_reach_the_chapter_as_numbers(kernel, text, value):
    pipeline.chapter("baseline", "ci", [("lr", text)])
    assert kernel == [{"profile": "ci", "lr": value}]


def test_a_malformed_value_is_one_line_naming_the_parameter(kernel, capsys):
    with pytest.raises(SystemExit) as stop:
        pipeline.chapter("baseline", "ci", [("dims", "[10,20")])
    message = str(stop.value)
    assert (
        message.startswith("[pipeline] dims: cannot read '[10,20' as a value")
        and "a list such as [10, 20]" in message
    )
    assert "\n" not in message and not kernel


@pytest.mark.parametrize(
    "name, text, driver",
    [("dims", "[10,100000]", "set by dims"), ("n_test", "10000000000", "set by n_test")],
)
def test_sizes_the_machine_cannot_hold_are_refused_before_any_kernel(kernel, name, text, driver):
    with pytest.raises(SystemExit) as stop:
        pipeline.chapter("baseline", "ci", [(name, text)])
    message = str(stop.value)
    assert (
        "of memory at its peak, but" in message and "is available" in message and driver in message
    )
    assert not kernel


def test_every_path_reads_numbers_the_same_way(tmp_path):
    assert (
        parse_value("n_train", "1_000") == 1000
        and parse_value("lr", "2e+05") == 2e5
        and parse_value("x", ".5e1") == 5.0
    )
    assert parse_value("zero_init", "false") is False and parse_value("alpha", "null") is None
    # Text that reaches resolve (papermill -y, a notebook edit): read as the pipeline reads it.
    config = resolve(
        ThesisConfig, "ci", {"lr": "1e-3", "n_train": "1_000", "alpha": "null", "log_scale": "tanh"}
    ).config
    assert (config.train.lr, config.n_train, config.alpha, config.flow.log_scale) == (
        0.001,
        1000,
        None,
        "tanh",
    )
    assert coerce("device", "cuda:0") == "cuda:0" and coerce("dims", "[1,") == "[1,"
    profile = tmp_path / "p.yaml"
    profile.write_text("debruin2024:\n  lr: 1e-3\n  n_train: 1_000\n")
    assert load_yaml(profile) == {"debruin2024": {"lr": 0.001, "n_train": 1000}}
    profile.write_text("debruin2024:\n  dims: [10, 20\n")
    with pytest.raises(ValueError, match="p.yaml line"):
        load_yaml(profile)


def test_an_integer_beyond_64_bits_is_a_parameter_error():
    with pytest.raises(ValueError, match="n_test must be an integer ≥ 2 within the 64-bit range"):
        ThesisConfig.from_params(n_test=1.5e153)


def test_hours_of_work_warn_with_the_estimate_and_a_fitting_config_is_silent():
    with pytest.warns(SlowRunWarning, match=r"about 2\.8 hours on this CPU"):
        check_resources(Estimate((Need("x", 1.0, ("n_test",)),), flops=4e14), available=2**30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_resources(resolve(ThesisConfig, "default", {}).config.resources())
