#!/usr/bin/env python3
"""The book's pipeline: one command builds the book, one runs the tests.

    python3 pipeline.py build [--profile default|ci|paper]   # execute every chapter, build the HTML
    python3 pipeline.py test                                  # unit tests, notebook tests, smoke build, browser test
    python3 pipeline.py chapter baseline [--profile P] [-p NAME VALUE ...]   # rerun one chapter

The chapters and their order are those of ``_toc.yml`` (``book/chapters/<study>/<name>`` is executed
from ``notebooks/<study>/<name>.py``); the profiles are the files of ``notebooks/params/``.

Each command first makes sure ``.venv`` exists with ``requirements.txt`` installed (reinstalling
when the requirements change), then re-runs itself inside it. Only the standard library is
needed to start.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BUILD = ROOT / "_build"
PROFILES = tuple(sorted(p.stem for p in (ROOT / "notebooks" / "params").glob("*.yaml")))


def toc_chapters() -> tuple[str, ...]:
    """The executed chapters, ``"<study>/<name>"``, in the order of ``_toc.yml`` (the one list of them).

    Read with a regular expression, so that it works before the virtual environment (and PyYAML) exists.
    """
    text = (ROOT / "_toc.yml").read_text()
    return tuple(re.findall(r"^\s*-?\s*file:\s*book/chapters/([\w-]+/[\w-]+)\s*$", text, flags=re.M))


#: Chapters in book order, ``"<study>/<name>"`` (sources in notebooks/<study>/<name>.py).
CHAPTERS = toc_chapters()
#: What the book's sources are: copied into a staging tree per profile, where the executed chapters land.
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book")
#: Debian's Chromium and its WebDriver (packages ``chromium`` and ``chromium-driver``), which the
#: browser test (tests/test_browser.py) drives; ``test`` installs them when they are missing.
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def log(message: str) -> None:
    print(f"[pipeline] {message}", flush=True)


# --- the virtual environment ---------------------------------------------------------------


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _inside_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv() -> None:
    """Create ``.venv`` and install the pinned requirements and flowcore, once per requirements change."""
    python = _venv_python()
    if not python.exists():
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    digest = hashlib.sha256((ROOT / "requirements.txt").read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
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
        subprocess.run([str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3", "--display-name", "Python 3 (flowcore)"], check=True, stdout=subprocess.DEVNULL)


def reexec_in_venv() -> None:
    """Run this script again with the virtual environment's Python, unless already inside it."""
    if _inside_venv():
        return
    ensure_venv()
    python = str(_venv_python())
    os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])


def kernel_environment(cache: Path) -> None:
    """Environment the notebook kernels inherit: the venv first on PATH, a cache folder, quiet bars."""
    os.environ["PATH"] = f"{_venv_python().parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["FLOWCORE_CACHE"] = str(cache)
    os.environ.setdefault("FLOWCORE_PROGRESS", "0")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"


# --- notebooks ---------------------------------------------------------------------------


def chapter_id(name: str) -> str:
    """``"<study>/<name>"`` for a chapter given as that or by its name alone (when unambiguous)."""
    matches = [c for c in CHAPTERS if name in (c, c.split("/", 1)[1])]
    if len(matches) != 1:
        raise SystemExit(f"[pipeline] chapter must be one of {', '.join(CHAPTERS)} (or the part after the /); got {name!r}")
    return matches[0]


def chapter_notebook(name: str):
    """The chapter's py:percent source as a notebook with a kernelspec (what papermill needs)."""
    import jupytext

    nb = jupytext.read(ROOT / "notebooks" / f"{chapter_id(name)}.py")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def check_parameters(name: str, profile: str, overrides: dict) -> None:
    """Validate ``profile`` and ``overrides`` for the chapter's study before any kernel starts: an
    unknown name (with the nearest known one) or a bad value exits with one line saying so."""
    from flowcore.config import resolve
    from flowcore.studies import config_class

    study = chapter_id(name).split("/", 1)[0]
    try:
        resolve(config_class(study), profile, overrides)
    except ValueError as err:
        raise SystemExit(f"[pipeline] {err}") from None


def _hide_parameter_cells(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell`` so the book does not show it."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, path)


def _drop_hidden_widget_state(path: Path) -> None:
    """Drop the notebook's saved ipywidgets state when no widget is shown in the book.

    A widget in a ``remove-cell``/``remove-output`` cell (a live explorer, say) still leaves its
    state in the notebook's metadata, and for that state alone myst-nb adds RequireJS and the
    widget manager from CDNs to the page: scripts that render nothing and need the internet.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if "widgets" not in nb.metadata:
        return
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type != "code" or tags & {"remove-cell", "remove-output"}:
            continue
        if any("application/vnd.jupyter.widget-view+json" in output.get("data", {}) for output in cell.get("outputs", [])):
            return  # a widget is shown: keep its state
    del nb.metadata["widgets"]
    nbformat.write(nb, path)


def execute_chapter(name: str, parameters: dict, output: Path) -> float:
    """Execute one chapter with papermill into ``output``, injecting ``parameters`` (``profile`` and any
    overrides); return seconds. A failing cell exits with its error."""
    import papermill

    nb = chapter_notebook(name)
    params = dict(parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(nb, str(output), parameters=params, kernel_name="python3", cwd=str(ROOT), progress_bar=sys.stderr.isatty(), log_output=False)
    except papermill.PapermillExecutionError as err:
        log(f"chapter {name!r} failed in cell {err.exec_count}:")
        print(err.source, file=sys.stderr)
        print(f"{err.ename}: {err.evalue}", file=sys.stderr)
        print("".join(err.traceback[-3:]), file=sys.stderr)
        log(f"the executed notebook, with the error, is at {output}")
        raise SystemExit(1) from None
    _hide_parameter_cells(output)
    return time.perf_counter() - start


# --- commands ----------------------------------------------------------------------------


def stage_sources(target: Path) -> Path:
    """Copy the book's sources into ``target`` (a fresh staging tree) and return it."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for item in BOOK_SOURCES:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, target / item, ignore=shutil.ignore_patterns("chapters", "_build", ".ipynb_checkpoints"))
        else:
            shutil.copy2(src, target / item)
    return target


def build(profile: str, out: Path | None = None, cache: Path | None = None) -> Path:
    """Execute every chapter under ``profile`` and build the HTML; return the path of index.html."""
    for first in {chapter.split("/", 1)[0]: chapter for chapter in reversed(CHAPTERS)}.values():
        check_parameters(first, profile, {})  # the profile's section of every study in the book
    out = out or BUILD / profile
    kernel_environment(cache or ROOT / ".cache" / "flowcore")  # flowcore's own default, made explicit
    src = stage_sources(out / "src")
    total = time.perf_counter()
    timings: dict = {"profile": profile, "chapters": {}}
    for name in CHAPTERS:
        log(f"executing chapter {name!r} with profile {profile!r}")
        seconds = execute_chapter(name, {"profile": profile}, src / "book" / "chapters" / f"{name}.ipynb")
        _drop_hidden_widget_state(src / "book" / "chapters" / f"{name}.ipynb")
        timings["chapters"][name] = seconds
        log(f"chapter {name!r} done in {seconds:.1f} s")
    log("building the HTML with Jupyter Book")
    shutil.rmtree(out / "_build", ignore_errors=True)
    command = [str(_venv_python().parent / "jupyter-book"), "build", str(src), "--path-output", str(out), "--builder", "html", "-W", "-n", "--keep-going"]
    html_start = time.perf_counter()
    result = subprocess.run(command)
    if result.returncode != 0:
        raise SystemExit(f"jupyter-book build failed (exit {result.returncode}); see the warnings above")
    index = out / "_build" / "html" / "index.html"
    timings.update(html=time.perf_counter() - html_start, total=time.perf_counter() - total)
    (out / "timings.json").write_text(json.dumps(timings, indent=2))  # read by bench/bench_book.py
    log(f"built with profile {profile!r} in {timings['total']:.0f} s: {index}")
    return index


def chapter(name: str, profile: str, overrides: list[tuple[str, str]]) -> Path:
    """Execute one chapter under ``profile`` with ``overrides`` (YAML values) into ``_build/runs``."""
    from flowcore.params import parse_value

    try:
        values = {key: parse_value(key, raw) for key, raw in overrides}
    except ValueError as err:
        raise SystemExit(f"[pipeline] {err}") from None
    check_parameters(name, profile, values)
    kernel_environment(ROOT / ".cache" / "flowcore")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = BUILD / "runs" / f"{chapter_id(name).replace('/', '-')}-{profile}-{stamp}.ipynb"
    seconds = execute_chapter(name, {"profile": profile, **values}, output)
    log(f"chapter {name!r} done in {seconds:.1f} s: {output}")
    return output


def ensure_browser() -> None:
    """Install Debian's ``chromium`` and ``chromium-driver`` with apt-get when either is missing.

    Runs ``apt-get update`` then ``apt-get install -y chromium chromium-driver`` (through
    ``sudo -n`` when not root); exits with a message saying what to do if that is not possible.
    """
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    by_hand = "install them by hand: apt-get install -y chromium chromium-driver (Debian/Ubuntu)"
    log(f"the browser test needs {' and '.join(missing)}; installing chromium and chromium-driver with apt-get")
    if not shutil.which("apt-get"):
        raise SystemExit(f"[pipeline] {' and '.join(missing)} missing and apt-get is not available; {by_hand}")
    prefix: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise SystemExit(f"[pipeline] {' and '.join(missing)} missing; not root and no sudo to run apt-get; {by_hand}")
        prefix = ["sudo", "-n"]
    env = [*prefix, "env", "DEBIAN_FRONTEND=noninteractive"]
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"]):
        log(" ".join([*prefix, *command]))
        if subprocess.run([*env, *command], stdin=subprocess.DEVNULL).returncode != 0:
            hint = " (sudo -n needs passwordless sudo)" if prefix else ""
            raise SystemExit(f"[pipeline] `{' '.join([*prefix, *command])}` failed{hint}; {by_hand}")
    still = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if still:
        raise SystemExit(f"[pipeline] apt-get ran but {' and '.join(still)} is still missing; {by_hand}")


def test(pytest_args: list[str]) -> int:
    """Prepare the ci-profile notebooks for nbval, then run the unit tests, nbval, the smoke build and
    the browser test (installing Chromium and its driver first when missing)."""
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
        papermill.execute_notebook(chapter_notebook(name), str(path), parameters={"profile": "ci"}, prepare_only=True, kernel_name="python3")
        nbformat.validate(nbformat.read(path, as_version=4))
        notebooks.append(str(path))
    # Unit tests, the doctests of the library, the notebooks under nbval (ci profile), the book tests.
    command = [sys.executable, "-m", "pytest", "tests", "flowcore", "--doctest-modules", "--nbval-lax", "--nbval-current-env", *notebooks, *pytest_args]
    log(" ".join(command))
    return subprocess.run(command, cwd=ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="execute every chapter and build the HTML book")
    p_build.add_argument("--profile", default=os.environ.get("FLOWCORE_PROFILE", "default"), choices=PROFILES)
    sub.add_parser("test", help="run the unit tests, the notebook tests and the smoke build (extra arguments go to pytest)")
    p_chapter = sub.add_parser("chapter", help="rerun one chapter with other parameters")
    p_chapter.add_argument("name", help=f"one of {', '.join(CHAPTERS)} (or the part after the /)")
    p_chapter.add_argument("--profile", default=os.environ.get("FLOWCORE_PROFILE", "default"), choices=PROFILES)
    p_chapter.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="override a parameter (VALUE is YAML)")
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    reexec_in_venv()
    if args.command == "build":
        build(args.profile)
    elif args.command == "chapter":
        chapter(args.name, args.profile, args.parameter)
    else:
        return test(extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
