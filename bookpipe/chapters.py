"""One chapter executed with papermill:
``python3 pipeline.py chapter NAME [--profile P] [-p NAME VALUE ...]``, and what ``build`` shares
with it.

A chapter is named ``"<study>/<name>"`` (or by its name alone when unambiguous) and executed from
``notebooks/<study>/<name>.py``. Its parameters and the sweeps' scheduler are checked before any
kernel starts; while it runs, the progress its kernel reports is printed every few seconds.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from .layout import BUILD, CHAPTERS, ROOT, cache_folder, log, venv_bin


def kernel_environment(cache: Path, scheduler: str = "") -> None:
    """Environment the notebook kernels inherit: the venv first on PATH, a cache folder, quiet bars,
    the sweeps' scheduler (``$FLOWCORE_SCHEDULER``; unset: a LocalCluster per sweep)."""
    os.environ["PATH"] = f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["FLOWCORE_CACHE"] = str(cache)
    if scheduler:
        os.environ["FLOWCORE_SCHEDULER"] = scheduler
    os.environ.setdefault("FLOWCORE_PROGRESS", "0")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"


def chapter_id(name: str) -> str:
    """``"<study>/<name>"`` for a chapter given as that or by its name alone (when unambiguous)."""
    matches = [c for c in CHAPTERS if name in (c, c.split("/", 1)[1])]
    if len(matches) != 1:
        raise SystemExit(
            f"[pipeline] chapter must be one of {', '.join(CHAPTERS)} (or the part after the /); "
            f"got {name!r}"
        )
    return matches[0]


def chapter_notebook(name: str):
    """The chapter's py:percent source as a notebook with a kernelspec (what papermill needs)."""
    import jupytext

    nb = jupytext.read(ROOT / "notebooks" / f"{chapter_id(name)}.py")
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
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


def check_scheduler(scheduler: str) -> str:
    """Validate ``--scheduler`` and, for an address, reach it (a few seconds at most) before any
    kernel starts; exit with one line naming the address when that fails."""
    from flowcore.sweep.execution import check_scheduler as valid_scheduler
    from flowcore.sweep.execution import connect

    try:
        scheduler = valid_scheduler(scheduler)
        if "://" in scheduler:
            with connect(scheduler, announce=lambda line: log(f"sweeps will run on the {line}")):
                pass
    except (ValueError, ConnectionError) as err:
        raise SystemExit(f"[pipeline] --{err}") from None
    return scheduler


def hide_parameter_cells(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell`` so the book does not show it."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, path)


def drop_hidden_widget_state(path: Path) -> None:
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
        if any(
            "application/vnd.jupyter.widget-view+json" in output.get("data", {})
            for output in cell.get("outputs", [])
        ):
            return  # a widget is shown: keep its state
    del nb.metadata["widgets"]
    nbformat.write(nb, path)


class ProgressWatcher:
    """Prints what the running chapter's kernel reports (:mod:`flowcore.status`) while it runs.

    The kernel writes its progress (a sweep's jobs done / total, a training's epochs) to the file
    ``$FLOWCORE_STATUS``; every ``every`` seconds this prints it when it changed, and says the
    chapter is still running when nothing changed for a minute, so a long chapter is never silent.
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
            line = (
                self.status.describe(state) if state else None
            )  # with a sweep's cluster and dashboard
            now = time.perf_counter()
            if line and line != last_line:
                log(f"  {self.chapter}: {line}")
                last_line, last_print = line, now
            elif now - last_print >= self.quiet_for:
                log(f"  {self.chapter}: still running, {(now - self.started) / 60:.1f} min so far")
                last_print = now


def execute_chapter(name: str, parameters: dict, output: Path) -> float:
    """Execute one chapter with papermill into ``output``, injecting ``parameters`` (``profile`` and
    any overrides); return seconds. A failing cell exits with its error. Its progress is printed as
    it runs (:class:`ProgressWatcher`; papermill's cell bar too on a terminal)."""
    import papermill

    nb = chapter_notebook(name)
    params = dict(parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with ProgressWatcher(name):
            papermill.execute_notebook(
                nb,
                str(output),
                parameters=params,
                kernel_name="python3",
                cwd=str(ROOT),
                progress_bar=sys.stderr.isatty(),
                log_output=False,
            )
    except papermill.PapermillExecutionError as err:
        log(f"chapter {name!r} failed in cell {err.exec_count}:")
        print(err.source, file=sys.stderr)
        print(f"{err.ename}: {err.evalue}", file=sys.stderr)
        print("".join(err.traceback[-3:]), file=sys.stderr)
        log(f"the executed notebook, with the error, is at {output}")
        raise SystemExit(1) from None
    hide_parameter_cells(output)
    return time.perf_counter() - start


def chapter(name: str, profile: str, overrides: list[tuple[str, str]], scheduler: str = "") -> Path:
    """``python3 pipeline.py chapter``: execute one chapter under ``profile`` with ``overrides``
    (YAML values) into ``_build/runs`` and return the executed notebook's path."""
    from flowcore.params import parse_value

    try:
        values = {key: parse_value(key, raw) for key, raw in overrides}
    except ValueError as err:
        raise SystemExit(f"[pipeline] {err}") from None
    check_parameters(name, profile, values)
    scheduler = check_scheduler(scheduler)
    from .apt import ensure_data

    ensure_data()
    kernel_environment(cache_folder(), scheduler)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = BUILD / "runs" / f"{chapter_id(name).replace('/', '-')}-{profile}-{stamp}.ipynb"
    seconds = execute_chapter(name, {"profile": profile, **values}, output)
    log(f"chapter {name!r} done in {seconds:.1f} s: {output}")
    return output
