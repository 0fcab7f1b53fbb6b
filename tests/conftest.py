import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pipeline  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache folder and quiet progress bars."""
    monkeypatch.setenv("FLOWCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FLOWCORE_PROGRESS", "0")
    yield


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The smoke build: the whole book with the ci profile, built once per test session and shared by
    tests/book/test_book.py and tests/book/test_browser.py. Returns the HTML folder (``…/_build/html``)."""
    out = tmp_path_factory.mktemp("book")
    saved = dict(os.environ)  # the build sets the kernels' environment (PATH, FLOWCORE_CACHE, ...)
    try:
        index = pipeline.build("ci", out=out, cache=out / "cache")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return index.parent
