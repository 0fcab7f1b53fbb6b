"""Where the pipeline's inputs and outputs are, and the chapters in book order.

Standard library only (the chapter list is read from ``_toc.yml`` with a regular expression).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: The checkout: this package is installed editable, so it is the folder above the package.
ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
BUILD = ROOT / "_build"


def toc_chapters() -> tuple[str, ...]:
    """The executed chapters, ``"<study>/<name>"``, in the order of ``_toc.yml`` (the one list of
    them)."""
    text = (ROOT / "_toc.yml").read_text()
    return tuple(
        re.findall(r"^\s*-?\s*file:\s*book/chapters/([\w-]+/[\w-]+)\s*$", text, flags=re.M)
    )


#: Chapters in book order, ``"<study>/<name>"`` (sources in notebooks/<study>/<name>.py).
CHAPTERS = toc_chapters()
#: What the book's sources are: copied into a staging tree per profile, where the executed chapters
#: land.
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book")
#: Debian's Chromium and its WebDriver (packages ``chromium`` and ``chromium-driver``), which the
#: browser tests (tests/book/) drive; ``test`` installs them when they are missing.
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: One file of Debian's ``dataset-fashion-mnist`` (flowcore.datasets reads all four); ``build``,
#: ``chapter`` and ``test`` install the package when it is missing.
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")


def cache_folder() -> Path:
    """Where builds, chapters and the explorer keep flowcore's cache: ``$FLOWCORE_CACHE`` if set,
    else ``.cache/flowcore`` in the checkout (flowcore's own default)."""
    return Path(os.environ.get("FLOWCORE_CACHE") or ROOT / ".cache" / "flowcore")


def venv_bin() -> Path:
    """The virtual environment's folder of executables (its Python, jupyter-book, voila)."""
    return VENV / ("Scripts" if os.name == "nt" else "bin")


def log(message: str) -> None:
    print(f"[pipeline] {message}", flush=True)
