"""The live explorers: ``python3 pipeline.py explore [--study S] [--profile P] [--port N]``.

A live explorer is an app served with Voilà on 127.0.0.1 (``notebooks/explorers/<study>.py``, not a
chapter of the book), from results a build left in the cache.
"""

from __future__ import annotations

import os
import subprocess
import time

from .chapters import kernel_environment
from .layout import BUILD, ROOT, cache_folder, log, venv_bin

#: The studies with a live explorer and the module whose ``cached_results(config)`` loads what it
#: shows from the cache alone (``None``: not built yet). pipeline.py offers the studies whose source
#: is in ``notebooks/explorers/`` (it reads them before the virtual environment exists): the same
#: set.
EXPLORERS = {"debruin2024": "flowcore.studies.debruin2024.evaluation"}
EXPLORER_SOURCES = ROOT / "notebooks" / "explorers"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM (Voilà then shuts its kernels down), SIGKILL if it is still running 15 s later."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def explore(study: str = "debruin2024", profile: str = "default", port: int = 0) -> int:
    """Serve ``study``'s live explorer with Voilà on 127.0.0.1 from the cached results of
    ``profile``, print its address and run until Ctrl-C (or SIGTERM); then stop the server and its
    kernel.

    The cache is ``$FLOWCORE_CACHE`` if set, else ``.cache/flowcore`` (where ``build`` writes). It
    is looked up first, loading only: when it holds no results for ``profile`` this exits with one
    line naming the build to run, and nothing is trained. The kernel gets the notebooks' environment
    (:func:`bookpipe.chapters.kernel_environment`) and ``FLOWCORE_PROFILE``; Voilà's page loads from
    the local server alone (the ``offline`` template under ``notebooks/explorers/jupyter``).
    """
    import importlib
    import signal

    import jupytext

    from flowcore.config import resolve
    from flowcore.studies import config_class

    cache = cache_folder()
    kernel_environment(cache)
    try:
        config = resolve(config_class(study), profile).config
    except ValueError as err:
        raise SystemExit(f"[pipeline] {err}") from None
    log(f"loading the cached results of profile {profile!r} from {cache}")
    if importlib.import_module(EXPLORERS[study]).cached_results(config) is None:
        raise SystemExit(
            f"[pipeline] no cached results for profile {profile!r} in {cache}; "
            f"build them first: python3 pipeline.py build --profile {profile}"
        )
    os.environ["FLOWCORE_PROFILE"] = profile
    templates = EXPLORER_SOURCES / "jupyter"
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, (str(templates), os.environ.get("JUPYTER_PATH")))
    )
    nb = jupytext.read(EXPLORER_SOURCES / f"{study}.py")
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook = BUILD / "explore" / f"{study}.ipynb"
    notebook.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, notebook)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/"
    voila = [
        str(venv_bin() / "voila"),
        str(notebook),
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--port={port}",
        "--Voila.port_retries=0",
        "--template=offline",
        "--show_tracebacks=True",
    ]
    # The page loads the widgets' lab extensions alone (jupytext's, say, fails outside JupyterLab).
    voila += [
        f"--VoilaConfiguration.extension_allowlist={name}"
        for name in ("@voila-dashboards/widgets-manager8", "@jupyter-widgets/jupyterlab-manager")
    ]
    # SIGTERM ends this command like Ctrl-C, so that the server is always stopped with it.
    signal.signal(signal.SIGTERM, _interrupt)
    server = subprocess.Popen(voila, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            if server.poll() is not None:
                raise SystemExit(
                    f"[pipeline] Voilà exited (code {server.returncode}) before serving on port "
                    f"{port}; see its output above"
                )
            if time.monotonic() > deadline:
                raise SystemExit(f"[pipeline] Voilà did not answer on port {port} within 60 s")
            time.sleep(0.2)
        log(f"the explorer is at {url} (Ctrl-C stops it)")
        return server.wait()
    except KeyboardInterrupt:
        log("stopping the explorer")
        return 0
    finally:
        stop_server(server)
