"""The whole book: ``python3 pipeline.py build [--profile P] [--scheduler ADDRESS]``.

Every chapter of ``_toc.yml`` is executed under one profile into a staging copy of the book's
sources (``_build/<profile>/src``), then Jupyter Book builds the HTML
(``_build/<profile>/_build/html``) and the seconds per chapter are printed and written to
``_build/<profile>/timings.json``. The tests' smoke build passes the chapters nbval already executed
(``executed``): those are rendered as they are, not executed again (:mod:`bookpipe.testing`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from .apt import ensure_data
from .chapters import (
    check_parameters,
    check_scheduler,
    drop_hidden_widget_state,
    execute_chapter,
    hide_parameter_cells,
    kernel_environment,
)
from .layout import BOOK_SOURCES, BUILD, CHAPTERS, ROOT, cache_folder, log, venv_bin


def stage_sources(target: Path) -> Path:
    """Copy the book's sources into ``target`` (a fresh staging tree) and return it."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for item in BOOK_SOURCES:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(
                src,
                target / item,
                ignore=shutil.ignore_patterns("chapters", "_build", ".ipynb_checkpoints"),
            )
        else:
            shutil.copy2(src, target / item)
    return target


def use_executed(source: Path, target: Path) -> float:
    """Put a chapter that was executed elsewhere (by nbval, in the tests) into the staging tree as
    ``execute_chapter`` would have left it (the injected parameters hidden); return the seconds its
    execution took (``metadata.bookpipe.seconds``, 0 when not recorded)."""
    import nbformat

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    hide_parameter_cells(target)
    stamp = nbformat.read(target, as_version=4).metadata.get("bookpipe", {})
    return float(stamp.get("seconds", 0.0))


def build(
    profile: str,
    out: Path | None = None,
    cache: Path | None = None,
    scheduler: str = "",
    executed: Mapping[str, Path] | None = None,
) -> Path:
    """Execute every chapter under ``profile`` and build the HTML; return the path of index.html.

    ``executed`` maps chapters to notebooks already executed under ``profile`` (by nbval, in the
    tests): those are rendered as they are instead of being executed again.
    """
    executed = dict(executed or {})
    unknown = sorted(set(executed) - set(CHAPTERS))
    if unknown:
        raise ValueError(f"executed names no chapter of _toc.yml: {unknown}")
    for first in {chapter.split("/", 1)[0]: chapter for chapter in reversed(CHAPTERS)}.values():
        check_parameters(first, profile, {})  # the profile's section of every study in the book
    scheduler = check_scheduler(scheduler)
    ensure_data()
    out = out or BUILD / profile
    kernel_environment(cache or cache_folder(), scheduler)
    src = stage_sources(out / "src")
    total = time.perf_counter()
    # "executed_before": the chapters rendered as they were given (their seconds are those runs').
    timings: dict = {"profile": profile, "chapters": {}, "executed_before": sorted(executed)}
    for name in CHAPTERS:
        target = src / "book" / "chapters" / f"{name}.ipynb"
        if name in executed:
            seconds = use_executed(executed[name], target)
            log(f"chapter {name!r}: executed already ({seconds:.1f} s), from {executed[name]}")
        else:
            log(f"executing chapter {name!r} with profile {profile!r}")
            seconds = execute_chapter(name, {"profile": profile}, target)
            log(f"chapter {name!r} done in {seconds:.1f} s")
        drop_hidden_widget_state(target)
        timings["chapters"][name] = seconds
    log("building the HTML with Jupyter Book")
    shutil.rmtree(out / "_build", ignore_errors=True)
    command = [
        str(venv_bin() / "jupyter-book"),
        "build",
        str(src),
        "--path-output",
        str(out),
        "--builder",
        "html",
        "-W",
        "-n",
        "--keep-going",
    ]
    html_start = time.perf_counter()
    result = subprocess.run(command)
    if result.returncode != 0:
        raise SystemExit(
            f"jupyter-book build failed (exit {result.returncode}); see the warnings above"
        )
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
