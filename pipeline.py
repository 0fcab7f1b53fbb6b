#!/usr/bin/env python3
"""The book's pipeline: one command builds the book, one runs the tests.

    python3 pipeline.py build [--profile default|ci|paper]   # execute every chapter, build the HTML
    python3 pipeline.py test   # unit tests, notebook tests, smoke build, browser test
    python3 pipeline.py chapter baseline [--profile P] [-p NAME VALUE ...]   # rerun one chapter
    python3 pipeline.py explore [--profile P] [--port N]   # serve the live explorer on 127.0.0.1
                                                             (cached results)

``build`` and ``chapter`` take ``--scheduler tcp://HOST:8786`` to run the sweeps' jobs on a running
Dask cluster (default: a LocalCluster per sweep, one worker process per core; ``serial`` runs them
in the kernel). While a chapter runs, its progress (a sweep's jobs, a training's epochs, with the
time left) is printed every few seconds.

The chapters and their order are those of ``_toc.yml`` (``book/chapters/<study>/<name>`` is executed
from ``notebooks/<study>/<name>.py``); the profiles are the files of ``notebooks/params/``.

Each command first makes sure ``.venv`` exists with ``requirements.txt`` installed (reinstalling
when the requirements change), then re-runs itself inside it. Only the standard library is
needed to start.
"""

# This file is the bootstrap and the command line only, standard library alone: the work is done
# inside the virtual environment by the package ``bookpipe`` (installed there with flowcore), which
# is imported only after the re-run in .venv.

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PROFILES = tuple(sorted(p.stem for p in (ROOT / "notebooks" / "params").glob("*.yaml")))
#: The chapters of ``_toc.yml`` (for the help text; bookpipe.layout.CHAPTERS reads them the same
#: way).
CHAPTERS = tuple(
    re.findall(
        r"^\s*-?\s*file:\s*book/chapters/([\w-]+/[\w-]+)\s*$",
        (ROOT / "_toc.yml").read_text(),
        flags=re.M,
    )
)
#: The studies with a live explorer (``notebooks/explorers/<study>.py``;
#: bookpipe.explorer.EXPLORERS).
EXPLORER_STUDIES = tuple(sorted(p.stem for p in (ROOT / "notebooks" / "explorers").glob("*.py")))


def log(message: str) -> None:
    print(f"[pipeline] {message}", flush=True)


# --- the virtual environment ---------------------------------------------------------------


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _inside_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv() -> None:
    """Create ``.venv`` and install the pinned requirements and this project (flowcore, bookpipe),
    once per change of requirements.txt or pyproject.toml."""
    python = _venv_python()
    if not python.exists():
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    digest = hashlib.sha256(
        (ROOT / "requirements.txt").read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    ).hexdigest()
    stamp = VENV / ".installed"
    if not stamp.exists() or stamp.read_text().strip() != digest:
        log("installing requirements.txt into .venv (first run only; a few minutes)")
        pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
        subprocess.run([*pip, "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "install", "-q", "-r", str(ROOT / "requirements.txt")], check=True)
        subprocess.run([*pip, "install", "-q", "--no-deps", "-e", str(ROOT)], check=True)
        stamp.write_text(digest)
    # A kernelspec that names this interpreter by absolute path, so `jupytext --set-kernel -` and
    # papermill find the venv's kernel even when the venv is not activated.
    kernel = VENV / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    if not kernel.exists() or str(python) not in kernel.read_text():
        subprocess.run(
            [
                str(python),
                "-m",
                "ipykernel",
                "install",
                "--sys-prefix",
                "--name",
                "python3",
                "--display-name",
                "Python 3 (flowcore)",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def reexec_in_venv() -> None:
    """Run this script again with the virtual environment's Python, unless already inside it."""
    if _inside_venv():
        return
    ensure_venv()
    python = str(_venv_python())
    os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])


# --- the command line ----------------------------------------------------------------------

SCHEDULER_HELP = (
    "where the sweeps' jobs run: a Dask scheduler address (tcp://HOST:8786), "
    "'local' (default: a LocalCluster, one worker process per core) or 'serial'"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="execute every chapter and build the HTML book")
    p_build.add_argument(
        "--profile", default=os.environ.get("FLOWCORE_PROFILE", "default"), choices=PROFILES
    )
    p_build.add_argument("--scheduler", default="", metavar="ADDRESS", help=SCHEDULER_HELP)
    sub.add_parser(
        "test",
        help=(
            "run the unit tests, the notebook tests and the smoke build "
            "(extra arguments go to pytest)"
        ),
    )
    p_chapter = sub.add_parser("chapter", help="rerun one chapter with other parameters")
    p_chapter.add_argument("name", help=f"one of {', '.join(CHAPTERS)} (or the part after the /)")
    p_chapter.add_argument(
        "--profile", default=os.environ.get("FLOWCORE_PROFILE", "default"), choices=PROFILES
    )
    p_chapter.add_argument("--scheduler", default="", metavar="ADDRESS", help=SCHEDULER_HELP)
    p_chapter.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a parameter (VALUE is YAML)",
    )
    p_explore = sub.add_parser(
        "explore", help="serve the live explorer (Voilà) on 127.0.0.1 from a build's cached results"
    )
    p_explore.add_argument(
        "--profile", default=os.environ.get("FLOWCORE_PROFILE", "default"), choices=PROFILES
    )
    p_explore.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)"
    )
    p_explore.add_argument(
        "--study",
        default="debruin2024",
        choices=EXPLORER_STUDIES,
        help="whose explorer (notebooks/explorers/<study>.py)",
    )
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    reexec_in_venv()
    # Inside .venv from here on: the package that does the work can be imported.
    if args.command == "build":
        from bookpipe.book import build

        build(args.profile, scheduler=args.scheduler)
    elif args.command == "chapter":
        from bookpipe.chapters import chapter

        chapter(args.name, args.profile, args.parameter, scheduler=args.scheduler)
    elif args.command == "explore":
        from bookpipe.explorer import explore

        return explore(args.study, args.profile, args.port)
    else:
        from bookpipe.testing import run_tests

        return run_tests(extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
