"""``pipeline.py`` is the bootstrap and the command line, standard library alone; what it offers on
the command line before the virtual environment exists agrees with the package that does the
work."""

import importlib.util
import shlex
import subprocess
import sys

import pytest

from bookpipe.explorer import EXPLORERS
from bookpipe.layout import CHAPTERS, ROOT
from bookpipe.testing import PREPARED, lane_commands, pytest_command


@pytest.fixture(scope="module")
def cli():
    """pipeline.py loaded as a module (its ``main`` not run)."""
    spec = importlib.util.spec_from_file_location("pipeline_cli", ROOT / "pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_line_offers_what_bookpipe_runs(cli):
    assert cli.CHAPTERS == CHAPTERS and len(CHAPTERS) >= 10
    assert list(cli.EXPLORER_STUDIES) == sorted(EXPLORERS)
    assert {"ci", "default", "paper"} <= set(cli.PROFILES)


@pytest.mark.parametrize(
    "args, status", [(["chapter", "--help"], 0), (["build", "--profile", "nonesuch"], 2)]
)
def test_the_command_line_needs_only_the_standard_library(args, status):
    """``-S``: no site-packages, as with a fresh clone's python3; parsing ends before any re-run in
    .venv."""
    run = subprocess.run(
        [sys.executable, "-S", str(ROOT / "pipeline.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert run.returncode == status, run.stderr
    if status == 0:
        assert all(name in " ".join(run.stdout.split()) for name in CHAPTERS), run.stdout
    else:
        assert "invalid choice: 'nonesuch'" in run.stderr


def test_the_test_command_runs_everything_in_two_lanes_or_only_the_paths_given():
    """``pipeline.py test``: the chapters (with the book tests) and the unit tests (with the
    notebook tests and the doctests) as two pytest runs, whose testpaths pytest takes only when no
    path is given; with a path, one run of it."""
    notebooks = [PREPARED / f"{name}.ipynb" for name in CHAPTERS]
    lanes = lane_commands(notebooks, [])
    assert list(lanes) == ["chapters", "units"]
    paths = {}
    for name, command in lanes.items():
        assert {"--doctest-modules", "--nbval-lax", "--nbval-current-env"} <= set(command)
        option = command[command.index("-o") + 1]
        assert option.startswith("testpaths=")
        paths[name] = shlex.split(option.removeprefix("testpaths="))
    assert paths == {
        "chapters": ["tests/book", *(f"_build/test/nbval/{name}.ipynb" for name in CHAPTERS)],
        "units": ["tests/unit", "tests/notebooks", "flowcore"],
    }
    assert all(
        c[-2:] == ["-k", "baseline"] for c in lane_commands(notebooks, ["-k", "baseline"]).values()
    )
    assert list(lane_commands(notebooks, ["tests/unit/test_params.py"])) == ["paths"]


def test_a_path_given_to_the_test_command_replaces_the_default_set():
    """``pipeline.py test tests/unit/...`` collects that file alone: no chapter, no book."""
    notebooks = [PREPARED / f"{name}.ipynb" for name in CHAPTERS]
    command = pytest_command(notebooks, ["tests/unit/test_params.py", "--collect-only", "-q"])
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    items = [line for line in run.stdout.splitlines() if "::" in line]
    assert items and all(line.startswith("tests/unit/test_params.py::") for line in items), items
