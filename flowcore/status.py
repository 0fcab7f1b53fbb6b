r"""One line of progress for whoever runs the notebook from outside it (the pipeline's terminal).

A chapter executed by papermill runs in a kernel whose output goes into the notebook, not to the
terminal that started the build. When ``$FLOWCORE_STATUS`` names a file, long work (a sweep's tasks,
a training's epochs) writes what it is doing there, replacing the file atomically; the pipeline
reads it every few seconds and prints it when it changes. Without the variable nothing is written.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["report", "read", "describe"]


def report(
    what: str, done: int, total: int, started: float | None = None, unit: str = "", **extra
) -> None:
    """Write ``what``: ``done`` of ``total`` (and, given ``started`` from ``time.time()``, the time
    spent and an estimate of the time left) to ``$FLOWCORE_STATUS``, if it is set.

    Example:
        >>> import tempfile
        >>> from unittest import mock
        >>> with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(
        ...     os.environ, {"FLOWCORE_STATUS": f"{tmp}/s.json"}
        ... ):
        ...     report("regimes", 3, 12, unit="trainings")
        ...     read()["done"], describe(read())
        (3, 'regimes: 3/12 trainings')
    """
    target = os.environ.get("FLOWCORE_STATUS")
    if not target:
        return
    state = {
        "what": what,
        "done": int(done),
        "total": int(total),
        "unit": unit,
        "time": time.time(),
        **extra,
    }
    if started is not None:
        state["elapsed"] = time.time() - started
    path = Path(target)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)
    except OSError:  # progress is a courtesy: never let it break the work
        pass


def read(path: str | Path | None = None) -> dict | None:
    """The last status written to ``path`` (default ``$FLOWCORE_STATUS``), or ``None``.

    Example:
        >>> print(read("/nonexistent/status.json"))
        None
    """
    target = path or os.environ.get("FLOWCORE_STATUS")
    try:
        return json.loads(Path(target).read_text()) if target else None
    except (OSError, ValueError):
        return None


def describe(state: dict) -> str:
    """A status as one readable line:
    ``sensitivity: 12/60 trainings, 3.1 min so far, about 12 min left``.

    Example:
        >>> describe({"what": "sweep", "done": 5, "total": 20, "unit": "jobs", "elapsed": 60.0})
        'sweep: 5/20 jobs, 1.0 min so far, about 3.0 min left'
    """
    unit = f" {state['unit']}" if state.get("unit") else ""
    line = f"{state['what']}: {state['done']}/{state['total']}{unit}"
    elapsed, done, total = state.get("elapsed"), state["done"], state["total"]
    if elapsed is not None:
        line += f", {_minutes(elapsed)} so far"
        if 0 < done < total:
            line += f", about {_minutes(elapsed / done * (total - done))} left"
    if state.get("note"):
        line += f" ({state['note']})"
    return line


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"
