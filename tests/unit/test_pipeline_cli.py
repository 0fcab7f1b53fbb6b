"""``pipeline.py`` is the bootstrap and the command line, standard library alone; what it offers on
the command line before the virtual environment exists agrees with the package that does the
work."""

import importlib.util
import subprocess
import sys

import pytest

from bookpipe.explorer import EXPLORERS
from bookpipe.layout import CHAPTERS, ROOT


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
