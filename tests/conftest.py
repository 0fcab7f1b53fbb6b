import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache folder and quiet progress bars."""
    monkeypatch.setenv("FLOWCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FLOWCORE_PROGRESS", "0")
    yield


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
