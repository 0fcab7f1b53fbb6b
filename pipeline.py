#!/usr/bin/env python3
"""The book's pipeline: one command builds the book, one runs the tests.

    python3 pipeline.py build [--profile default|ci|paper]   # execute every chapter, build the HTML
    python3 pipeline.py test                                  # unit tests, notebook tests, smoke build, browser test
    python3 pipeline.py chapter baseline [--profile P] [-p NAME VALUE ...]   # rerun one chapter
    python3 pipeline.py explore [--profile P] [--port N]   # serve the live explorer on 127.0.0.1 (cached results)

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

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
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


def kernel_environment(cache: Path, scheduler: str = "") -> None:
    """Environment the notebook kernels inherit: the venv first on PATH, a cache folder, quiet bars,
    the sweeps' scheduler (``$FLOWCORE_SCHEDULER``; unset: a LocalCluster per sweep)."""
    os.environ["PATH"] = f"{_venv_python().parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["FLOWCORE_CACHE"] = str(cache)
    if scheduler:
        os.environ["FLOWCORE_SCHEDULER"] = scheduler
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


class ProgressWatcher:
    """Prints what the running chapter's kernel reports (:mod:`flowcore.status`) while it runs.

    The kernel writes its progress (a sweep's jobs done / total, a training's epochs) to the file
    ``$FLOWCORE_STATUS``; every ``every`` seconds this prints it when it changed, and says the chapter
    is still running when nothing changed for a minute, so a long chapter is never silent.
    """

    def __init__(self, chapter: str, every: float = 10.0, quiet_for: float = 60.0):
        from flowcore import status

        self.status, self.chapter, self.every, self.quiet_for = status, chapter, every, quiet_for
        self.path = BUILD / "status" / f"{os.getpid()}.json"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ProgressWatcher:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        os.environ["FLOWCORE_STATUS"] = str(self.path)
        self.started = time.perf_counter()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        os.environ.pop("FLOWCORE_STATUS", None)
        self.path.unlink(missing_ok=True)

    def _watch(self) -> None:
        last_line, last_print = None, time.perf_counter()
        while not self.stop.wait(self.every):
            state = self.status.read(self.path)
            line = self.status.describe(state) if state else None  # with a sweep's cluster and dashboard
            now = time.perf_counter()
            if line and line != last_line:
                log(f"  {self.chapter}: {line}")
                last_line, last_print = line, now
            elif now - last_print >= self.quiet_for:
                log(f"  {self.chapter}: still running, {(now - self.started) / 60:.1f} min so far")
                last_print = now


def execute_chapter(name: str, parameters: dict, output: Path) -> float:
    """Execute one chapter with papermill into ``output``, injecting ``parameters`` (``profile`` and any
    overrides); return seconds. A failing cell exits with its error. Its progress is printed as it
    runs (:class:`ProgressWatcher`; papermill's cell bar too on a terminal)."""
    import papermill

    nb = chapter_notebook(name)
    params = dict(parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with ProgressWatcher(name):
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


def check_scheduler(scheduler: str) -> str:
    """Validate ``--scheduler`` and, for an address, reach it (a few seconds at most) before any
    kernel starts; exit with one line naming the address when that fails."""
    from flowcore.sweep.execution import connect
    from flowcore.sweep.execution import check_scheduler as valid_scheduler

    try:
        scheduler = valid_scheduler(scheduler)
        if "://" in scheduler:
            with connect(scheduler, announce=lambda line: log(f"sweeps will run on the {line}")):
                pass
    except (ValueError, ConnectionError) as err:
        raise SystemExit(f"[pipeline] --{err}") from None
    return scheduler


def build(profile: str, out: Path | None = None, cache: Path | None = None, scheduler: str = "") -> Path:
    """Execute every chapter under ``profile`` and build the HTML; return the path of index.html."""
    for first in {chapter.split("/", 1)[0]: chapter for chapter in reversed(CHAPTERS)}.values():
        check_parameters(first, profile, {})  # the profile's section of every study in the book
    scheduler = check_scheduler(scheduler)
    out = out or BUILD / profile
    kernel_environment(cache or ROOT / ".cache" / "flowcore", scheduler)  # flowcore's own default cache, made explicit
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
    width = max(map(len, CHAPTERS))
    log("seconds per chapter:")
    for name, seconds in timings["chapters"].items():
        log(f"  {name:<{width}} {seconds:8.1f}")
    log(f"  {'HTML (jupyter-book)':<{width}} {timings['html']:8.1f}")
    log(f"built with profile {profile!r} in {timings['total']:.0f} s: {index}")
    return index


def chapter(name: str, profile: str, overrides: list[tuple[str, str]], scheduler: str = "") -> Path:
    """Execute one chapter under ``profile`` with ``overrides`` (YAML values) into ``_build/runs``."""
    from flowcore.params import parse_value

    try:
        values = {key: parse_value(key, raw) for key, raw in overrides}
    except ValueError as err:
        raise SystemExit(f"[pipeline] {err}") from None
    check_parameters(name, profile, values)
    scheduler = check_scheduler(scheduler)
    kernel_environment(ROOT / ".cache" / "flowcore", scheduler)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = BUILD / "runs" / f"{chapter_id(name).replace('/', '-')}-{profile}-{stamp}.ipynb"
    seconds = execute_chapter(name, {"profile": profile, **values}, output)
    log(f"chapter {name!r} done in {seconds:.1f} s: {output}")
    return output


# --- the live explorers --------------------------------------------------------------------

#: The studies with a live explorer, an app served by ``explore`` (``notebooks/explorers/<study>.py``,
#: not a chapter of the book), and the module whose ``cached_results(config)`` loads what it shows
#: from the cache alone (``None``: not built yet).
EXPLORERS = {"debruin2024": "flowcore.studies.debruin2024.evaluation"}
EXPLORER_SOURCES = ROOT / "notebooks" / "explorers"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _stop_server(server: subprocess.Popen) -> None:
    """SIGTERM (Voilà then shuts its kernels down), SIGKILL if it is still running 15 s later."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def explore(study: str = "debruin2024", profile: str = "default", port: int = 0) -> int:
    """Serve ``study``'s live explorer with Voilà on 127.0.0.1 from the cached results of ``profile``,
    print its address and run until Ctrl-C (or SIGTERM); then stop the server and its kernel.

    The cache is ``$FLOWCORE_CACHE`` if set, else ``.cache/flowcore`` (where ``build`` writes). It is
    looked up first, loading only: when it holds no results for ``profile`` this exits with one line
    naming the build to run, and nothing is trained. The kernel gets the notebooks' environment
    (:func:`kernel_environment`) and ``FLOWCORE_PROFILE``; Voilà's page loads from the local server
    alone (the ``offline`` template under ``notebooks/explorers/jupyter``).
    """
    import importlib
    import signal

    import jupytext

    from flowcore.config import resolve
    from flowcore.studies import config_class

    cache = Path(os.environ.get("FLOWCORE_CACHE") or ROOT / ".cache" / "flowcore")
    kernel_environment(cache)
    try:
        config = resolve(config_class(study), profile).config
    except ValueError as err:
        raise SystemExit(f"[pipeline] {err}") from None
    log(f"loading the cached results of profile {profile!r} from {cache}")
    if importlib.import_module(EXPLORERS[study]).cached_results(config) is None:
        raise SystemExit(f"[pipeline] no cached results for profile {profile!r} in {cache}; build them first: python3 pipeline.py build --profile {profile}")
    os.environ["FLOWCORE_PROFILE"] = profile
    templates = EXPLORER_SOURCES / "jupyter"
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, (str(templates), os.environ.get("JUPYTER_PATH"))))
    nb = jupytext.read(EXPLORER_SOURCES / f"{study}.py")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = BUILD / "explore" / f"{study}.ipynb"
    notebook.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, notebook)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}/"
    voila = [str(_venv_python().parent / "voila"), str(notebook), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}", "--Voila.port_retries=0", "--template=offline", "--show_tracebacks=True"]
    # The page loads the widgets' lab extensions alone (jupytext's, say, fails outside JupyterLab).
    voila += [f"--VoilaConfiguration.extension_allowlist={name}" for name in ("@voila-dashboards/widgets-manager8", "@jupyter-widgets/jupyterlab-manager")]
    # SIGTERM ends this command like Ctrl-C, so that the server is always stopped with it.
    signal.signal(signal.SIGTERM, _interrupt)
    server = subprocess.Popen(voila, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            if server.poll() is not None:
                raise SystemExit(f"[pipeline] Voilà exited (code {server.returncode}) before serving on port {port}; see its output above")
            if time.monotonic() > deadline:
                raise SystemExit(f"[pipeline] Voilà did not answer on port {port} within 60 s")
            time.sleep(0.2)
        log(f"the explorer is at {url} (Ctrl-C stops it)")
        return server.wait()
    except KeyboardInterrupt:
        log("stopping the explorer")
        return 0
    finally:
        _stop_server(server)


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


SCHEDULER_HELP = "where the sweeps' jobs run: a Dask scheduler address (tcp://HOST:8786), 'local' (default: a LocalCluster, one worker process per core) or 'serial'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="execute every chapter and build the HTML book")
    p_build.add_argument("--profile", default=os.environ.get("FLOWCORE_PROFILE", "default"), choices=PROFILES)
    p_build.add_argument("--scheduler", default="", metavar="ADDRESS", help=SCHEDULER_HELP)
    sub.add_parser("test", help="run the unit tests, the notebook tests and the smoke build (extra arguments go to pytest)")
    p_chapter = sub.add_parser("chapter", help="rerun one chapter with other parameters")
    p_chapter.add_argument("name", help=f"one of {', '.join(CHAPTERS)} (or the part after the /)")
    p_chapter.add_argument("--profile", default=os.environ.get("FLOWCORE_PROFILE", "default"), choices=PROFILES)
    p_chapter.add_argument("--scheduler", default="", metavar="ADDRESS", help=SCHEDULER_HELP)
    p_chapter.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="override a parameter (VALUE is YAML)")
    p_explore = sub.add_parser("explore", help="serve the live explorer (Voilà) on 127.0.0.1 from a build's cached results")
    p_explore.add_argument("--profile", default=os.environ.get("FLOWCORE_PROFILE", "default"), choices=PROFILES)
    p_explore.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p_explore.add_argument("--study", default="debruin2024", choices=sorted(EXPLORERS), help="whose explorer (notebooks/explorers/<study>.py)")
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    reexec_in_venv()
    if args.command == "build":
        build(args.profile, scheduler=args.scheduler)
    elif args.command == "chapter":
        chapter(args.name, args.profile, args.parameter, scheduler=args.scheduler)
    elif args.command == "explore":
        return explore(args.study, args.profile, args.port)
    else:
        return test(extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
