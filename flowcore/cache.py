"""An on-disk cache of trained models and result tables, keyed by the full config.

Entries are written atomically (a temporary file in the same folder, then ``os.replace``), so a
crash or an interrupt never leaves a half-written entry under the final name, and two processes
filling the same entry leave one complete file. Entries are read with
``torch.load(..., weights_only=True)``; a file that cannot be read is reported with a warning,
removed and recomputed, never loaded silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["cache_dir", "config_key", "save_atomic", "load_entry", "cached"]

#: Bump when the meaning of a cached entry changes, so old entries are not reused.
CACHE_VERSION = 1


def cache_dir() -> Path:
    """``$FLOWCORE_CACHE`` if set; else ``.cache/flowcore`` in the project checkout that flowcore is
    imported from (so the pipeline, papermill reruns and Jupyter share one cache); else
    ``~/.cache/flowcore`` for an installed copy."""
    if os.environ.get("FLOWCORE_CACHE"):
        return Path(os.environ["FLOWCORE_CACHE"])
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").exists() and (checkout / "pipeline.py").exists():
        return checkout / ".cache" / "flowcore"
    return Path.home() / ".cache" / "flowcore"


def config_key(kind: str, config: dict[str, Any]) -> str:
    """A short hash of ``kind`` and the canonical JSON of ``config`` (sorted keys)."""
    blob = json.dumps({"kind": kind, "version": CACHE_VERSION, "config": config}, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is shared like any output file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_entry(path: Path) -> Any | None:
    """Load a cache entry, or return ``None`` if it is missing or unreadable (with a warning)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or corrupted file: report it, drop it, recompute
        warnings.warn(f"cache entry {path} is unreadable ({type(err).__name__}: {err}); recomputing it", RuntimeWarning, stacklevel=2)
        path.unlink(missing_ok=True)
        return None


def cached(kind: str, config: dict[str, Any], compute: Callable[[], Any], directory: Path | None = None, validate: Callable[[Any], bool] | None = None) -> tuple[Any, bool]:
    """Return ``(value, from_cache)``: the entry for ``(kind, config)``, computing and saving it if absent.

    ``validate`` may reject a loaded entry (for example one with missing fields); it is then
    reported and recomputed like an unreadable file.
    """
    path = Path(directory or cache_dir()) / f"{config_key(kind, config)}.pt"
    value = load_entry(path)
    if value is not None:
        if validate is None or validate(value):
            return value, True
        warnings.warn(f"cache entry {path} does not match its config; recomputing it", RuntimeWarning, stacklevel=2)
    value = compute()
    save_atomic(value, path)
    return value, False
