"""The tests: ``python3 pipeline.py test [PYTEST ARGS ...]``.

Chromium and its driver are installed when missing (the browser tests drive them), the chapters are
prepared with the ci profile for nbval, then one pytest run takes the unit tests, the library's
doctests, the notebooks and the book tests (the smoke build and the browser tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from .chapters import chapter_notebook, kernel_environment
from .layout import BUILD, CHAPTERS, CHROMEDRIVER, CHROMIUM, ROOT, log


def ensure_browser() -> None:
    """Install Debian's ``chromium`` and ``chromium-driver`` with apt-get when either is missing.

    Runs ``apt-get update`` then ``apt-get install -y chromium chromium-driver`` (through
    ``sudo -n`` when not root); exits with a message saying what to do if that is not possible.
    """
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    by_hand = "install them by hand: apt-get install -y chromium chromium-driver (Debian/Ubuntu)"
    log(
        f"the browser test needs {' and '.join(missing)}; "
        "installing chromium and chromium-driver with apt-get"
    )
    if not shutil.which("apt-get"):
        raise SystemExit(
            f"[pipeline] {' and '.join(missing)} missing and apt-get is not available; {by_hand}"
        )
    prefix: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise SystemExit(
                f"[pipeline] {' and '.join(missing)} missing; not root and no sudo to run apt-get; "
                f"{by_hand}"
            )
        prefix = ["sudo", "-n"]
    env = [*prefix, "env", "DEBIAN_FRONTEND=noninteractive"]
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"],
    ):
        log(" ".join([*prefix, *command]))
        if subprocess.run([*env, *command], stdin=subprocess.DEVNULL).returncode != 0:
            hint = " (sudo -n needs passwordless sudo)" if prefix else ""
            raise SystemExit(
                f"[pipeline] `{' '.join([*prefix, *command])}` failed{hint}; {by_hand}"
            )
    still = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if still:
        raise SystemExit(
            f"[pipeline] apt-get ran but {' and '.join(still)} is still missing; {by_hand}"
        )


def run_tests(pytest_args: list[str]) -> int:
    """Prepare the ci-profile notebooks for nbval, then run the unit tests, nbval, the smoke build
    and the browser test (installing Chromium and its driver first when missing); return pytest's
    exit status."""
    import nbformat
    import papermill

    ensure_browser()
    kernel_environment(BUILD / "test" / "cache")
    prepared = BUILD / "test" / "nbval"
    if prepared.exists():
        shutil.rmtree(prepared)
    notebooks = []
    for name in CHAPTERS:
        path = prepared / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        papermill.execute_notebook(
            chapter_notebook(name),
            str(path),
            parameters={"profile": "ci"},
            prepare_only=True,
            kernel_name="python3",
        )
        nbformat.validate(nbformat.read(path, as_version=4))
        notebooks.append(str(path))
    # Unit tests, the doctests of the library, the notebooks under nbval (ci profile), the book
    # tests.
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests",
        "flowcore",
        "--doctest-modules",
        "--nbval-lax",
        "--nbval-current-env",
        *notebooks,
        *pytest_args,
    ]
    log(" ".join(command))
    return subprocess.run(command, cwd=ROOT).returncode
