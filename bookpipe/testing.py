"""The tests: ``python3 pipeline.py test [PYTEST ARGS ...]``, with every chapter executed once.

:func:`run_tests` installs Chromium and its driver when missing (the browser tests drive them) and
Debian's FashionMNIST (the image chapters read it),
empties the chapters' cache (``_build/test/cache``: every run executes them from nothing, as on a
fresh clone), prepares every chapter with the ci profile for nbval (papermill injects the
parameters and executes nothing: ``_build/test/nbval/<study>/<name>.ipynb``), then runs pytest.
With no path among its arguments, two pytest processes run side by side (:data:`LANES`): the
prepared chapters under nbval (``--nbval-lax``: a cell that raises fails) followed by the book
tests, and the unit and notebook tests with the library's doctests (``flowcore``). With paths one
pytest takes only those, so ``pipeline.py test tests/unit`` executes no chapter and builds no
book.

Each chapter is executed once per run, by nbval. :class:`ChapterRuns`, a pytest plugin that
tests/conftest.py registers, puts the chapters' cells before every other test, records what the
kernel sends while nbval runs each cell, and rebuilds from those messages, with nbclient's own
output handling (the one papermill's executions use), the executed notebook papermill would have
written: ``_build/test/executed/<study>/<name>.ipynb``. The smoke build of the book (the session
fixture ``built`` in tests/conftest.py, which tests/book/ shares) renders those notebooks instead of
executing the chapters again (:func:`bookpipe.book.build` with ``executed``); a chapter nbval did
not run in the session (a subset such as ``pipeline.py test tests/book``) is executed there with
papermill, as ``build`` does. A cell that raises fails its nbval item, whose report starts with
:func:`cell_failure`'s line (the chapter, the cell, its line in ``notebooks/<study>/<name>.py``,
the error); the smoke build is then not built from that chapter and fails, naming it.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from .apt import ensure_browser, ensure_data
from .chapters import chapter_notebook, kernel_environment
from .layout import BUILD, CHAPTERS, ROOT, log

#: The profile the tests execute the chapters with (nbval and the smoke build), and where their
#: sweeps run (:mod:`flowcore.sweep.execution`; the LocalCluster and a real cluster have unit tests
#: of their own, ``tests/unit/test_sweep_dask.py``).
PROFILE = "ci"
SCHEDULER = "serial"
#: The chapters prepared for nbval (parameters injected), the notebooks nbval executed, and the
#: cache their kernels share (emptied at the start of every ``pipeline.py test``).
PREPARED = BUILD / "test" / "nbval"
EXECUTED = BUILD / "test" / "executed"
CACHE = BUILD / "test" / "cache"
#: The name :class:`ChapterRuns` is registered under (tests/conftest.py); the fixture ``built``
#: asks the plugin manager for it.
PLUGIN = "bookpipe-chapter-runs"


def prepare_chapters(folder: Path = PREPARED, profile: str = PROFILE) -> list[Path]:
    """Write every chapter, in book order, as a notebook nbval can run: ``profile`` injected by
    papermill (nothing executed), and the chapter's name and profile in the notebook's metadata
    (``bookpipe``), by which :class:`ChapterRuns` knows it. Return the paths."""
    import nbformat
    import papermill

    if folder.exists():
        shutil.rmtree(folder)
    paths = []
    for name in CHAPTERS:
        path = folder / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        papermill.execute_notebook(
            chapter_notebook(name),
            str(path),
            parameters={"profile": profile},
            prepare_only=True,
            kernel_name="python3",
        )
        nb = nbformat.read(path, as_version=4)
        nb.metadata["bookpipe"] = {"chapter": name, "profile": profile}
        nbformat.validate(nb)
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def pytest_command(
    notebooks: list[Path], pytest_args: list[str], paths: list[str] | None = None
) -> list[str]:
    """A pytest run of ``pipeline.py test``.

    Its ``testpaths`` are ``paths`` (default: the unit tests and the doctests) followed by the
    prepared ``notebooks`` (:class:`ChapterRuns` puts the chapters' cells first), which pytest takes
    only when ``pytest_args`` name no path: ``pipeline.py test -k baseline`` selects among all of
    them, ``pipeline.py test tests/unit`` runs that folder alone.
    """
    paths = ["tests", "flowcore"] if paths is None else list(paths)
    for path in notebooks:
        path = Path(path).resolve()
        paths.append(path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path))
    return [
        sys.executable,
        "-m",
        "pytest",
        "--doctest-modules",
        "--nbval-lax",
        "--nbval-current-env",
        "-o",
        f"testpaths={shlex.join(paths)}",
        *pytest_args,
    ]


def names_a_path(pytest_args: list[str]) -> bool:
    """Whether ``pytest_args`` name a test path (a file or folder, or ``file::test``), which
    replaces pytest's ``testpaths``.

    Example:
        >>> names_a_path(["-k", "baseline", "-x"]), names_a_path(["tests/unit::test_x", "-q"])
        (False, True)
    """
    return any(
        not arg.startswith("-") and (ROOT / arg.split("::", 1)[0]).exists() for arg in pytest_args
    )


#: The two pytest processes of a whole ``pipeline.py test`` run, side by side (each is mostly one
#: core's work: a kernel executing a chapter, or a unit test), by their ``testpaths``: the book
#: tests after the chapters under nbval (whose executions the smoke build renders), and the unit
#: tests with the notebook tests (chapters run in kernels of their own) and the library's doctests.
#: Measured from a fresh clone (2-core AMD EPYC, AVX-512): 363 s and 436 s (with the notebook tests
#: in the first lane: 481 s and 307 s).
LANES = {
    "chapters": ["tests/book"],  # after the prepared chapters (ChapterRuns)
    "units": ["tests/unit", "tests/notebooks", "flowcore"],
}


#: The threads each lane's processes (and the kernels and workers they start) begin with.
LANE_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def lane_commands(notebooks: list[Path], pytest_args: list[str]) -> dict[str, list[str]]:
    """The pytest runs of ``pipeline.py test``: the two :data:`LANES` (``chapters`` with the
    prepared ``notebooks``), or, when ``pytest_args`` name a path, one run of that alone
    (``"paths"``)."""
    if names_a_path(pytest_args):
        return {"paths": pytest_command([], pytest_args)}
    return {
        "chapters": pytest_command(notebooks, pytest_args, LANES["chapters"]),
        "units": pytest_command([], pytest_args, LANES["units"]),
    }


def run_tests(pytest_args: list[str]) -> int:
    """``python3 pipeline.py test``: Chromium and its driver when missing, an empty cache for the
    chapters, the chapters prepared for nbval, then the pytest runs of :func:`lane_commands`: side
    by side, the chapters (each executed once under nbval, then the smoke build rendered from those
    executions and the browser tests; its output shown as it comes) and the unit and notebook
    tests with the doctests (its output written to ``_build/test/units.log`` and shown when both are
    done); or the paths in ``pytest_args`` alone. Return 0 when every run passed, else the first
    failing exit status."""
    ensure_browser()
    ensure_data()
    shutil.rmtree(CACHE, ignore_errors=True)
    # What the chapters' kernels inherit (nbval's and the smoke build's). Their sweeps run serially:
    # at ci sizes a LocalCluster's start costs more than it saves (three chapters: 91.6 s on one,
    # 67.4 s serially), and the unit tests run beside them.
    kernel_environment(CACHE, scheduler=SCHEDULER)
    notebooks = prepare_chapters(PREPARED, PROFILE)
    shutil.rmtree(EXECUTED, ignore_errors=True)
    commands = lane_commands(notebooks, pytest_args)
    if "paths" in commands:
        log(shlex.join(commands["paths"]))
        return subprocess.run(commands["paths"], cwd=ROOT).returncode
    units_log = BUILD / "test" / "units.log"
    started = time.perf_counter()
    # One thread per lane: two lanes of two OpenMP threads each on two cores spin against each other
    # (a ci chapter went from 12 s to 89 s so). A test that sets its thread count still gets it.
    env = {**os.environ, **LANE_THREADS}
    log(f"units lane, output in {units_log.relative_to(ROOT)}: {shlex.join(commands['units'])}")
    with open(units_log, "w") as out:
        units = subprocess.Popen(
            commands["units"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env
        )
        try:
            log(f"chapters lane: {shlex.join(commands['chapters'])}")
            chapters = subprocess.run(commands["chapters"], cwd=ROOT, env=env).returncode
            log(f"chapters lane done after {time.perf_counter() - started:.0f} s (exit {chapters})")
            units_status = units.wait()
        finally:
            if units.poll() is None:
                units.kill()
    log(f"units lane done after {time.perf_counter() - started:.0f} s (exit {units_status}):")
    print(units_log.read_text(), flush=True)
    return next((status for status in (chapters, units_status) if status), 0)


# --- a chapter's cells and their failures ---------------------------------------------------


def code_cells(nb) -> list:
    """The notebook's code cells, in order: nbval's items ``Cell 0``, ``Cell 1``, ... (the cell
    papermill injected the parameters into counts)."""
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def cell_line(name: str, nb, number: int) -> int | None:
    """The line of ``notebooks/<name>.py`` where code cell ``number`` of ``nb`` (the chapter
    ``name``, nbval's numbering) begins, or ``None`` when its source is not there (papermill's
    injected parameters)."""
    import re

    cells = code_cells(nb)
    source = cells[number].source
    path = ROOT / "notebooks" / f"{name}.py"
    if not source.strip() or not path.is_file():
        return None
    text = path.read_text()
    starts = [
        match.end()
        for match in re.finditer(r"^# %%[^\n]*\n", text, flags=re.M)
        if text.startswith(source, match.end())
        and text[match.end() + len(source) : match.end() + len(source) + 1] in ("", "\n")
    ]
    same_before = sum(cell.source == source for cell in cells[:number])  # repeated sources
    if same_before >= len(starts):
        return None
    return text.count("\n", 0, starts[same_before]) + 1


def cell_failure(name: str, nb, number: int, error: str | None = None) -> str:
    """One line naming the chapter, its code cell ``number`` (nbval's ``Cell N``) and where that
    cell is, with the error it raised: the cell's error output in ``nb`` (an executed notebook),
    else ``error`` (what nbval said, e.g. a timeout)."""
    cell = code_cells(nb)[number]
    where = f"chapter {name}, cell {number}"
    line = cell_line(name, nb, number)
    if line is not None:
        where += f" (notebooks/{name}.py, line {line})"
    elif "injected-parameters" in cell.metadata.get("tags", []):
        where += " (the parameters papermill injected)"
    errors = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    if errors:
        what = f"{errors[-1].ename}: {errors[-1].evalue}"
    else:
        what = error or "failed"
    return f"{where} failed: {what}"


def chapter_failures(name: str, nb) -> list[str]:
    """:func:`cell_failure` for every code cell of the executed notebook ``nb`` (the chapter
    ``name``) that holds an error output."""
    return [
        cell_failure(name, nb, number)
        for number, cell in enumerate(code_cells(nb))
        if any(out.get("output_type") == "error" for out in cell.get("outputs", []))
    ]


# --- the executed notebook, from what nbval's kernel sent -----------------------------------


def output_client(nb):
    """An nbclient ``NotebookClient`` of ``nb`` that runs no kernel: :func:`replay` feeds it the
    messages another client (nbval's) received. What a front end would send back to the kernel
    (an Output widget's state) is dropped: the kernel has run on."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, record_timing=False)
    client.kc = SimpleNamespace(
        session=SimpleNamespace(msg=lambda *args, **kwargs: {}),
        shell_channel=SimpleNamespace(send=lambda msg: None),
    )
    return client


def replay(client, index: int, messages: list[dict], msg_id: str) -> None:
    """Put into cell ``index`` of ``client.nb`` the outputs of the iopub ``messages`` answering the
    execute request ``msg_id``, as nbclient (and so papermill) does while it executes a cell:
    streams, displays and their updates, ``clear_output``, errors, widget state. Messages of other
    requests are left out."""
    from nbclient.exceptions import CellExecutionComplete

    cell = client.nb.cells[index]
    cell.outputs = []
    client.clear_before_next_output = False
    for msg in messages:
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        try:
            client.process_message(msg, cell, index)
        except CellExecutionComplete:
            break


class KernelTap:
    """Records what nbval's kernel sends while a cell runs.

    nbval starts each cell with ``RunningKernel.execute_cell_input`` and reads the kernel's answers
    with ``RunningKernel.get_message``; both are wrapped on the one kernel object of a chapter, so
    the iopub messages since the last execute request and its id are at hand after the cell ran
    (:meth:`take`). Nothing else of nbval changes: it executes, reads and judges as without it.
    """

    def __init__(self, kernel):
        self.msg_id: str | None = None
        self.messages: list[dict] = []
        get_message, execute_cell_input = kernel.get_message, kernel.execute_cell_input

        def recording_get_message(stream, timeout=None):
            msg = get_message(stream, timeout=timeout)
            if stream == "iopub":
                self.messages.append(msg)
            return msg

        def recording_execute_cell_input(cell_input, allow_stdin=None):
            self.messages = []
            self.msg_id = execute_cell_input(cell_input, allow_stdin=allow_stdin)
            return self.msg_id

        kernel.get_message = recording_get_message
        kernel.execute_cell_input = recording_execute_cell_input

    def take(self) -> tuple[str | None, list[dict]]:
        """The last execute request's id (``None`` when no cell was sent since the last call) and
        the messages read since it was sent; both are then forgotten."""
        taken = self.msg_id, self.messages
        self.msg_id, self.messages = None, []
        return taken


def kernel_language_info(kernel, timeout: float = 30) -> dict:
    """The kernel's ``language_info`` (what nbclient writes into an executed notebook's metadata;
    myst-nb takes the code cells' lexer from it); empty when the kernel does not answer."""
    from queue import Empty

    msg_id = kernel.kc.kernel_info()
    try:
        while True:
            reply = kernel.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return dict(reply["content"].get("language_info", {}))
    except Empty:
        return {}


class ChapterRun:
    """One chapter's execution under nbval: its notebook as the outputs come in."""

    def __init__(self, name: str, profile: str, nb):
        self.name, self.profile, self.nb = name, profile, nb
        self.index = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
        self.client = output_client(nb)
        self.tap: KernelTap | None = None
        self.language_info: dict = {}
        self.cache: str | None = None  # the kernel's $FLOWCORE_CACHE
        self.started: float | None = None
        self.seconds: float | None = None
        self.visited: set[int] = set()  # cells whose test ran (or was skipped)
        self.executed: set[int] = set()  # cells sent to the kernel
        self.failures: dict[int, str] = {}  # cell → cell_failure line
        self.path: Path | None = None

    @property
    def total(self) -> int:
        return len(self.index)

    @property
    def finished(self) -> bool:
        return self.seconds is not None

    @property
    def complete(self) -> bool:
        """Every code cell executed and none failed: the notebook the smoke build may render."""
        return self.finished and len(self.executed) == self.total and not self.failures

    def record(self, number: int, msg_id: str | None, messages: list[dict], error) -> None:
        """Cell ``number`` ran: its outputs from the kernel's ``messages``; ``error`` is what its
        test raised (``None`` when it passed)."""
        self.visited.add(number)
        if msg_id is not None:
            replay(self.client, self.index[number], messages, msg_id)
            self.executed.add(number)
            # nbval executes without storing history, so the kernel's counts stand still; number
            # the cells as an execution from the top does (papermill's notebooks).
            cell = self.nb.cells[self.index[number]]
            cell.execution_count = number + 1
            for output in cell.outputs:
                if output.output_type == "execute_result":
                    output.execution_count = number + 1
        if error is not None and not isinstance(error, pytest.skip.Exception):
            self.failures[number] = cell_failure(
                self.name, self.nb, number, error=str(error).strip() or type(error).__name__
            )

    def finish(self, folder: Path) -> Path:
        """Write the executed notebook to ``folder/<study>/<name>.ipynb`` and return its path."""
        import nbformat

        self.seconds = time.perf_counter() - (self.started or time.perf_counter())
        self.client.set_widgets_metadata()
        if self.language_info:
            self.nb.metadata["language_info"] = self.language_info
        self.nb.metadata.setdefault("bookpipe", {})["seconds"] = round(self.seconds, 1)
        nbformat.validate(self.nb)
        self.path = folder / f"{self.name}.ipynb"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(self.nb, self.path)
        return self.path


def _stamp(item) -> dict | None:
    """The ``bookpipe`` metadata (chapter, profile) of the notebook an nbval cell belongs to, if it
    is a chapter prepared by :func:`prepare_chapters`."""
    from nbval.plugin import IPyNbCell

    if not isinstance(item, IPyNbCell):
        return None
    stamp = getattr(item.parent, "nb", None) and item.parent.nb.metadata.get("bookpipe")
    return stamp if stamp and stamp.get("chapter") else None


class ChapterRuns:
    """pytest plugin: the chapters nbval executes, kept as executed notebooks for the smoke build.

    - Collection: the chapters' cells go first, in book order (the smoke build, which needs them
      all, comes later); a chapter takes part when all its code cells are selected.
    - Each cell: the kernel's messages are recorded (:class:`KernelTap`) and replayed into the
      chapter's notebook (:func:`replay`); a failing cell's report starts with
      :func:`cell_failure`'s line.
    - After a chapter's last cell: its executed notebook is written to ``folder`` and a line says
      how long it ran, or which cells failed.
    - :meth:`for_build` gives the smoke build the chapters to render as they are; at the end, a
      summary says how each chapter was executed in the session (once).
    """

    def __init__(self, folder: Path = EXECUTED):
        self.folder = Path(folder)
        self.runs: dict[str, ChapterRun] = {}  # by the notebook's node id
        self.by_papermill: list[str] = []  # chapters the smoke build executed itself

    # -- the plugin's hooks

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        order = {name: i for i, name in enumerate(CHAPTERS)}

        def key(item):
            stamp = _stamp(item)
            return (0, order.get(stamp["chapter"], len(order))) if stamp else (1, 0)

        items[:] = sorted(items, key=key)  # stable: cells stay in order, other tests as collected

    def pytest_collection_finish(self, session):
        selected = Counter(item.parent for item in session.items if _stamp(item))
        for notebook, count in selected.items():
            if count == len(code_cells(notebook.nb)):
                stamp = notebook.nb.metadata["bookpipe"]
                self.runs[notebook.nodeid] = ChapterRun(
                    stamp["chapter"], stamp.get("profile", ""), copy.deepcopy(notebook.nb)
                )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item):
        run = self._run(item)
        if run is None or run.started is not None:
            return (yield)
        run.started = time.perf_counter()
        self._say(
            item.config, f"executing chapter {run.name!r} under nbval ({run.total} code cells)"
        )
        try:
            result = yield  # nbval starts the chapter's kernel
        except BaseException as err:
            run.failures[item.cell_num] = cell_failure(
                run.name, run.nb, item.cell_num, f"the kernel did not start: {err}"
            )
            raise
        kernel = item.parent.kernel
        run.language_info = kernel_language_info(kernel)
        run.cache = os.environ.get("FLOWCORE_CACHE")
        run.tap = KernelTap(kernel)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        run = self._run(item)
        if run is None or run.tap is None:
            return (yield)
        error = None
        try:
            return (yield)
        except BaseException as err:
            error = err
            raise
        finally:
            run.record(item.cell_num, *run.tap.take(), error)
            if len(run.visited) == run.total:
                self._finish(item.config, run)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        run = self._run(item)
        if run is not None and report.failed and item.cell_num in run.failures:
            line = run.failures[item.cell_num]
            if run.path is not None:
                line += f"\nthe executed notebook: {run.path}"
            if isinstance(report.longrepr, str):
                report.longrepr = f"{line}\n\n{report.longrepr}"
            else:
                report.sections.append(("chapter", line))
        return report

    def pytest_terminal_summary(self, terminalreporter):
        if not self.runs and not self.by_papermill:
            return
        terminalreporter.section("chapter executions")
        count = Counter(run.name for run in self.runs.values() if run.started is not None)
        count.update(self.by_papermill)
        for name in CHAPTERS:
            if not count[name]:
                continue
            how = [
                f"nbval, {run.seconds:.1f} s" if run.finished else "nbval, unfinished"
                for run in self.runs.values()
                if run.name == name and run.started is not None
            ]
            how += ["papermill (the smoke build)"] * self.by_papermill.count(name)
            failed = any(run.failures for run in self.runs.values() if run.name == name)
            terminalreporter.write_line(
                f"  {name}: executed {count[name]}x ({'; '.join(how)})"
                + (", FAILED" if failed else "")
            )

    # -- for the smoke build

    def for_build(self, profile: str) -> tuple[dict[str, Path], list[str]]:
        """The chapters nbval executed with ``profile`` in this session, for the smoke build: the
        executed notebooks of those that passed, and a line per failed cell (or unfinished chapter)
        of those that did not."""
        executed, failed = {}, []
        for run in self.runs.values():
            if run.profile != profile or run.started is None:
                continue
            if run.complete:
                executed[run.name] = run.path
            elif run.failures:
                failed.extend(run.failures.values())
            elif not run.finished:
                failed.append(f"chapter {run.name} did not finish under nbval")
            else:
                skipped = sorted(set(range(run.total)) - run.executed)
                failed.append(f"chapter {run.name}: cells {skipped} were not executed under nbval")
        return executed, failed

    def kernel_cache(self) -> str | None:
        """The ``$FLOWCORE_CACHE`` the chapters' kernels had (the smoke build executes what nbval
        did not run into the same cache)."""
        return next((run.cache for run in self.runs.values() if run.cache), None)

    def smoke_build_executed(self, names) -> None:
        """The smoke build executed these chapters itself (nbval did not run them)."""
        self.by_papermill.extend(names)

    # -- helpers

    def _run(self, item) -> ChapterRun | None:
        return self.runs.get(item.parent.nodeid) if _stamp(item) else None

    def _finish(self, config, run: ChapterRun) -> None:
        path = run.finish(self.folder)
        if run.failures:
            self._say(
                config,
                f"chapter {run.name!r} failed under nbval in {run.seconds:.1f} s:\n  "
                + "\n  ".join(run.failures.values())
                + f"\n  the executed notebook, with the error, is at {path}",
            )
        else:
            self._say(
                config, f"chapter {run.name!r} executed under nbval in {run.seconds:.1f} s: {path}"
            )

    @staticmethod
    def _say(config, text: str) -> None:
        """A ``[pipeline]`` line on the terminal now, whatever pytest is capturing."""
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capture = config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.ensure_newline()
            reporter.write_line(f"[pipeline] {text}")
