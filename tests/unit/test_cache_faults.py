"""Faults the cache must survive, beyond those of test_train.py (an interrupting training callback
leaves an empty cache folder; an entry cut to 100 bytes is reported and recomputed):

- an entry truncated to half its bytes (a copy or a disk that stopped midway) is reported with a
  RuntimeWarning and recomputed, and the recomputed entry is then served;
- two processes filling the same entry at the same time leave exactly one valid entry and no
  temporary file;
- an interrupt while an entry is being written leaves no temporary file, and an older entry under
  the final name intact.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
import torch

from flowcore import cache
from flowcore.cache import cached, job_key, load_entry, save_atomic

CONFIG = {"dim": 5, "note": "fault test"}


def _value(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"weights": torch.randn(2_000, generator=g), "history": {"epochs": 3}}


def _files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


def test_truncated_entry_is_reported_and_recomputed(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return _value()

    value, from_cache = cached("fault", CONFIG, compute, directory=tmp_path)
    assert not from_cache and len(calls) == 1
    (name,) = _files(tmp_path)
    entry = tmp_path / name
    size = entry.stat().st_size
    with open(entry, "r+b") as f:
        f.truncate(size // 2)
    with pytest.warns(RuntimeWarning, match="unreadable"):
        again, from_cache = cached("fault", CONFIG, compute, directory=tmp_path)
    assert not from_cache and len(calls) == 2, "the truncated entry was recomputed, not loaded"
    assert torch.equal(again["weights"], value["weights"])
    assert _files(tmp_path) == [name] and entry.stat().st_size == size, (
        "rewritten whole, under the same name"
    )
    third, from_cache = cached("fault", CONFIG, compute, directory=tmp_path)
    assert from_cache and len(calls) == 2 and torch.equal(third["weights"], value["weights"])


def _fill(directory: str, barrier, results) -> None:
    """One process filling the shared entry; computing takes about a second."""

    def compute():
        start = time.monotonic()
        time.sleep(1.0)
        value = _value()
        results.put(("computed", os.getpid(), start, time.monotonic()))
        return value

    barrier.wait(timeout=60)
    value, from_cache = cached("fault", CONFIG, compute, directory=Path(directory))
    results.put(
        ("done", os.getpid(), from_cache, bool(torch.equal(value["weights"], _value()["weights"])))
    )


def test_two_processes_filling_one_entry_leave_one_valid_file(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_fill, args=(str(tmp_path), barrier, results)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    messages = [results.get(timeout=5) for _ in range(4)]
    done = [m for m in messages if m[0] == "done"]
    computed = sorted(m[2:] for m in messages if m[0] == "computed")
    assert len(done) == 2 and all(ok for *_, ok in done), "both processes got the right value"
    # Both computed at the same time (neither found an entry to load): the race really happened.
    assert len(computed) == 2 and computed[1][0] < computed[0][1], (
        f"the two computations did not overlap: {computed}"
    )
    assert _files(tmp_path) == [f"{job_key('fault', CONFIG)}.pt"], (
        "exactly one entry, no temporary file"
    )
    assert torch.equal(load_entry(tmp_path / _files(tmp_path)[0])["weights"], _value()["weights"])


def test_interrupt_while_writing_leaves_no_temporary_file_and_the_old_entry_intact(
    tmp_path, monkeypatch
):
    path = tmp_path / "entry.pt"
    save_atomic(_value(0), path)
    real_save = torch.save

    def save_then_interrupt(obj, f):
        real_save(obj, f)
        f.truncate(f.tell() // 2)  # half written, as when the process is stopped mid-write
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.torch, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_atomic(_value(1), path)
    with pytest.raises(KeyboardInterrupt):
        cached("fault", CONFIG, _value, directory=tmp_path)
    monkeypatch.undo()
    assert _files(tmp_path) == ["entry.pt"], (
        "no temporary file, and no entry for the interrupted computation"
    )
    assert torch.equal(load_entry(path)["weights"], _value(0)["weights"]), (
        "the old entry is untouched"
    )
