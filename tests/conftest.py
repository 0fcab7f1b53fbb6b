"""What every test shares: an isolated cache, a seeded generator, the smoke build; and the markers.

The smoke build (``built``) renders the chapters as nbval executed them earlier in the session
(``pipeline.py test`` runs them first; :class:`bookpipe.testing.ChapterRuns`, registered here,
keeps their executed notebooks), so that each chapter is executed once per run; a chapter nbval
did not run in the session is executed by the build itself, with papermill.

Markers (registered in pyproject.toml) are applied here, not in each test file:

- ``integration``: every test under tests/book (the smoke build, the browser and the live explorer)
  and tests/notebooks (chapters executed in kernels), the chapters run under nbval by
  ``pipeline.py test``, and the unit tests of :data:`INTEGRATION` (they start a Dask cluster);
- ``slow``: the unit tests of :data:`SLOW`, which train or compute for a long while.

The fast unit subset leaves both out: ``pytest tests/unit -m "not slow and not integration"``.
"""

import os
import warnings
from pathlib import Path

import pytest
import torch

from bookpipe.book import build
from bookpipe.layout import CHAPTERS
from bookpipe.testing import PLUGIN, PROFILE, ChapterRuns

TESTS = Path(__file__).resolve().parent

#: Folders under tests/ whose every test is an integration test.
INTEGRATION_FOLDERS = ("book", "notebooks")
#: Unit tests that start a Dask cluster (``dask scheduler`` and workers as processes, or a
#: LocalCluster), as node ids without parameters: ``path`` (the whole file) or ``path::name``.
INTEGRATION = {
    "tests/unit/test_sweep_dask.py::test_a_real_cluster_gives_the_serial_table",
    "tests/unit/test_sweep_dask.py::test_a_worker_killed_mid_task_leaves_a_whole_sweep_and_cache",
    "tests/unit/test_sweep_dask.py::test_jobs_that_raise_are_reported_and_the_others_complete",
}
#: Slow unit tests (found with ``pytest tests/unit --durations=60``), as node ids like those of
#: INTEGRATION. Measured 2026-12 on the 2-core development machine under a load of 5 to 10 (other
#: test runs): each took 5 s or more there (the whole unit suite: 19 min). A whole file when its
#: module fixture is the cost.
SLOW = {
    "tests/unit/test_runs.py::test_fit_learns_the_gaussian",
    "tests/unit/test_runs.py::test_training_is_deterministic",
    "tests/unit/test_runs.py::test_corrupted_cache_entry_is_reported_and_recomputed",
    "tests/unit/test_runs.py::test_cache_round_trip_and_atomic_files",
    "tests/unit/test_fuzz_params.py::test_any_value_validates_or_names_the_parameter",
    "tests/unit/test_cache_faults.py::test_two_processes_filling_one_entry_leave_one_valid_file",
    "tests/unit/test_marginal.py::test_fit_through_the_training_view_lowers_the_validation_nll",
    "tests/unit/test_image_flows.py::test_flow_inverts_and_log_dets_match_autograd",
    "tests/unit/test_sweep_dask.py::test_an_unreachable_scheduler_is_named_within_seconds",
    "tests/unit/debruin2024/test_nulls.py",
    "tests/unit/debruin2024/test_families.py::test_perturbation_calibration_reaches_the_thesis_rates",
    "tests/unit/debruin2024/test_families.py::test_batched_evaluation_table_and_nulls",
    "tests/unit/debruin2024/test_families.py::test_explorer_widget_updates_from_cached_results",
    "tests/unit/debruin2024/test_cached_results.py::test_cached_results_after_results_equal_them",
    "tests/unit/debruin2024/test_batched_statistics.py::test_the_profiles_calibrated_constants_are_the_one_at_a_time_codes",
    "tests/unit/debruin2024/test_batched_statistics.py::test_calibrations_equal_the_one_test_at_a_time_code",
    "tests/unit/debruin2024/test_cached_results.py::test_cached_results_is_none_while_one_family_is_missing",
    "tests/unit/kirichenko2020/test_seeds.py::test_a_tiny_sweep_gives_every_claim_its_seed_rows",
    "tests/unit/kirichenko2020/test_experiments.py::test_untrained_measures_read_pixel_magnitude_and_no_neighbours",
    "tests/unit/song2024/test_experiments.py::test_the_moons_density_integrates_to_one",
    "tests/unit/song2024/test_klj.py::test_training_with_klj_shrinks_the_log_scales",
    "tests/unit/deboer2020/test_truths.py::test_moons_mass_outside_of_the_truth_is_tiny_and_its_grid_mass_is_one",
    "tests/unit/deboer2020/test_truths.py::test_moons_mass_outside_leaves_out_unresolved_cells_and_bounds_what_they_hold",
}


def _listed(base: str, listed: set[str]) -> str | None:
    """The entry of ``listed`` that names the test ``base`` (a node id without parameters), if
    any."""
    for entry in listed:
        if base == entry or base.startswith(entry + "::"):
            return entry
    return None


def pytest_configure(config):
    """The chapters nbval executes are kept for the smoke build (bookpipe.testing.ChapterRuns)."""
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.register(ChapterRuns(), PLUGIN)


@pytest.hookimpl(tryfirst=True)  # before -m and -k deselect anything
def pytest_collection_modifyitems(config, items):
    used, files = set(), set()
    for item in items:
        path = Path(item.path)
        if path.suffix == ".ipynb":  # a chapter's cell under nbval
            item.add_marker(pytest.mark.integration)
            continue
        try:
            folder = path.relative_to(TESTS).parts[0]
        except ValueError:
            continue  # the library's doctests
        if folder in INTEGRATION_FOLDERS:
            item.add_marker(pytest.mark.integration)
        file = path.relative_to(TESTS.parent).as_posix()
        files.add(file)
        base = "::".join([file, *item.nodeid.split("[", 1)[0].split("::")[1:]])
        for marker, listed in ((pytest.mark.integration, INTEGRATION), (pytest.mark.slow, SLOW)):
            entry = _listed(base, listed)
            if entry:
                item.add_marker(marker)
                used.add(entry)
    for entry in sorted((INTEGRATION | SLOW) - used):
        if entry.split("::", 1)[0] in files:  # its file was collected, but no such test: renamed?
            warnings.warn(
                pytest.PytestWarning(f"tests/conftest.py marks {entry}, which names no test"),
                stacklevel=1,
            )


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache folder and quiet progress bars."""
    monkeypatch.setenv("FLOWCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FLOWCORE_PROGRESS", "0")
    yield


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def built(request, tmp_path_factory):
    """The smoke build: the whole book with the ci profile, built once per test session and shared
    by tests/book/test_book.py and tests/book/test_browser.py. Returns the HTML folder
    (``…/_build/html``).

    The chapters nbval executed in this session are rendered as nbval left them; the others are
    executed here with papermill (into the cache the nbval kernels used, else a fresh one). A
    chapter that failed under nbval fails this fixture, naming its cells, and is never executed
    again."""
    runs = request.config.pluginmanager.get_plugin(PLUGIN)
    executed, failed = runs.for_build(PROFILE) if runs else ({}, [])
    if failed:
        pytest.fail(
            "the smoke build renders the chapters as nbval executed them, and under nbval:\n  "
            + "\n  ".join(failed),
            pytrace=False,
        )
    out = tmp_path_factory.mktemp("book")
    cache = runs.kernel_cache() if runs and executed else None
    if runs:
        runs.smoke_build_executed(name for name in CHAPTERS if name not in executed)
    saved = dict(os.environ)  # the build sets the kernels' environment (PATH, FLOWCORE_CACHE, ...)
    try:
        index = build(
            PROFILE, out=out, cache=Path(cache) if cache else out / "cache", executed=executed
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return index.parent


@pytest.fixture
def zuko_missing(monkeypatch):
    """Imports of zuko fail, as where it is not installed (flowcore.libraries imports each library
    through ``importlib.import_module`` when a model is built)."""
    import importlib

    real_import = importlib.import_module

    def import_without_zuko(module: str, *args, **kwargs):
        if module == "zuko" or module.startswith("zuko."):
            raise ImportError(f"No module named {module!r}")
        return real_import(module, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", import_without_zuko)
