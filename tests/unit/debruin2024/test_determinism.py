"""Same seed, same numbers: the ci-profile baseline experiment run twice, each time training from
scratch in its own empty cache, gives identical result tables (timing and cache columns aside)."""

import pandas as pd
import pytest
import torch

from flowcore.config import resolve
from flowcore.studies.debruin2024 import ThesisConfig
from flowcore.studies.debruin2024.baseline import baseline, baseline_summary

#: Columns that may differ between two runs: wall-clock times and where the flow came from.
VOLATILE = ["train s", "eval s", "from cache"]


@pytest.fixture
def one_thread():
    """One intra-op thread for this test. The models are tiny, so one thread is as fast as two on an
    idle 2-core machine, and it stays fast when another process holds a core: two spinning OpenMP
    threads then made one ci baseline take from 2 s to 80 s here. Both runs use the same setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_baseline_tables_are_identical_across_runs(tmp_path, monkeypatch, one_thread):
    config = resolve(ThesisConfig, "ci").config
    tables = []
    for run in ("a", "b"):
        monkeypatch.setenv("FLOWCORE_CACHE", str(tmp_path / run))
        summary = baseline_summary(baseline(config, progress=False))
        assert not summary["from cache"].any(), "each run trains from scratch"
        tables.append(summary.drop(columns=VOLATILE))
    assert len(tables[0]) == len(config.dims) and tables[0].shape[1] > 10
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
