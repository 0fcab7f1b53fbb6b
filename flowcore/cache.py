"""An on-disk cache of trained models and result tables, keyed by the full config.

Entries are written atomically (a temporary file in the same folder, then ``os.replace``), so a
crash or an interrupt never leaves a half-written entry under the final name, and two processes
filling the same entry leave one complete file. Entries are read with
``torch.load(..., weights_only=True)``; a file that cannot be read is reported with a warning,
removed and recomputed, never loaded silently.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import re
import socket
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CACHE_VERSION",
    "cache_dir",
    "canonical",
    "job_key",
    "entry_path",
    "save_atomic",
    "load_entry",
    "lookup",
    "cached",
    "remove_orphans",
    "NotCached",
    "cache_only",
]

#: Bump when the meaning of a cached entry changes, so old entries are not reused.
#: 2: configs are stored canonically (validated values), trained flows carry p̂, the flow API
#: changed.
CACHE_VERSION = 2


#: The project checkout flowcore is imported from, and whether it is one (not an installed copy).
CHECKOUT = Path(__file__).resolve().parents[1]
IN_CHECKOUT = (CHECKOUT / "pyproject.toml").exists() and (CHECKOUT / "pipeline.py").exists()


def cache_dir() -> Path:
    """``$FLOWCORE_CACHE`` if set; else ``.cache/flowcore`` in the project checkout that flowcore is
    imported from (so the pipeline, papermill reruns and Jupyter share one cache); else
    ``~/.cache/flowcore`` for an installed copy.

    Example:
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": "/tmp/flowcore-cache"}):
        ...     cache_dir() == Path("/tmp/flowcore-cache")
        True
    """
    if os.environ.get("FLOWCORE_CACHE"):
        return Path(os.environ["FLOWCORE_CACHE"])
    return CHECKOUT / ".cache" / "flowcore" if IN_CHECKOUT else Path.home() / ".cache" / "flowcore"


def canonical(value: Any) -> Any:
    """The canonical, JSON-ready form of a config: dataclasses become dicts of their fields, tuples
    become lists, NumPy scalars become Python numbers, dict keys become strings.

    A field added after entries were cached carries ``metadata={"key_default": True}``: at its
    default it is left out, so the entries cached before it existed keep their names. A field that
    says *where* to compute, not *what* (a sweep's scheduler), carries ``metadata={"key": False}``
    and is always left out.

    Configs store validated values (``100000.0`` is kept as ``100000``), so two configs that mean
    the same have one canonical form.

    Example:
        >>> from flowcore.train import TrainConfig
        >>> key = canonical({"dims": (10, 20), "train": TrainConfig(max_epochs=40.0)})
        >>> key["train"]["max_epochs"]
        40
    """
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: canonical(getattr(value, f.name))
            for f in fields(value)
            if f.metadata.get("key", True)
            and not (f.metadata.get("key_default") and getattr(value, f.name) == f.default)
        }
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (bool, str, int, float)) or value is None:
        return value
    if hasattr(value, "item"):  # NumPy and torch scalars
        return value.item()
    raise TypeError(
        f"cannot put a {type(value).__name__} into a cache key; give its parameters instead"
    )


def job_key(kind: str, config: Any) -> str:
    """The one name of a computation: ``kind`` and a short hash of the canonical JSON of ``config``.

    It names the cache entry of a trained flow or a result table, and it is the job id of a sweep.

    Example:
        >>> from flowcore.train import TrainConfig
        >>> a = job_key("flow", {"dim": 10, "train": TrainConfig(max_epochs=40)})
        >>> a == job_key("flow", {"train": TrainConfig(max_epochs=40.0), "dim": 10})  # any order
        True
        >>> job_key("flow", {"dim": 10})[:5]
        'flow-'
    """
    blob = json.dumps(
        {"kind": kind, "version": CACHE_VERSION, "config": canonical(config)}, sort_keys=True
    )
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


def entry_path(kind: str, config: Any, directory: Path | str | None = None) -> Path:
    """The file that holds the entry :func:`job_key` names: ``<directory>/<job key>.pt``, in
    :func:`cache_dir` unless ``directory`` is given. :func:`cached` reads and writes it; a caller
    that fills several entries at once (:func:`flowcore.runs.train_or_load_many`) uses it directly.

    Example:
        >>> path = entry_path("table", {"dim": 2}, directory="/tmp/cache")
        >>> path == Path("/tmp/cache") / f"{job_key('table', {'dim': 2})}.pt"
        True
    """
    return Path(directory or cache_dir()) / f"{job_key(kind, config)}.pt"


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` through a temporary file and an atomic rename.

    Example:
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp) / "sub" / "entry.pt"
        ...     save_atomic({"nll": torch.tensor([1.5])}, path)
        ...     [p.name for p in path.parent.iterdir()], load_entry(path)["nll"].tolist()
        (['entry.pt'], [1.5])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's host and process id are in the temporary name, so that a file left by a process
    # killed mid-write (a sweep worker, say) can be recognised and removed: remove_orphans.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_owner()}.", suffix=".tmp")
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


def _host() -> str:
    return re.sub(r"[^\w-]", "_", socket.gethostname())


def _owner() -> str:
    return f"{_host()}~{os.getpid()}"


_TEMPORARY = re.compile(r"^\..+\.(?P<host>[\w-]+)~(?P<pid>\d+)\.[^.]+\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_orphans(directory: Path | None = None) -> list[Path]:
    """Remove the temporary files that processes of this host left when they died mid-write.

    :func:`save_atomic` writes ``.<entry>.<host>~<pid>.<random>.tmp`` and renames it; a process
    killed before the rename (``SIGKILL`` skips every cleanup) leaves the file behind. It was never
    an entry, so nothing reads it; this removes it once its writer is gone. Files of other hosts, or
    of processes still alive, are left alone. Returns the removed paths.

    Example:
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     dead = Path(tmp) / f".flow-1.pt.{_host()}~999999999.abc.tmp"
        ...     _ = dead.write_bytes(b"half")
        ...     mine = Path(tmp) / f".flow-2.pt.{_owner()}.def.tmp"
        ...     _ = mine.write_bytes(b"being written")
        ...     removed = [p.name[:10] for p in remove_orphans(Path(tmp))]
        ...     removed, sorted(p.name[:10] for p in Path(tmp).iterdir())
        (['.flow-1.pt'], ['.flow-2.pt'])
    """
    folder = Path(directory or cache_dir())
    host, removed = _host(), []
    for path in folder.glob(".*.tmp") if folder.is_dir() else ():
        match = _TEMPORARY.match(path.name)
        if match and match["host"] == host and not _alive(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def load_entry(path: Path) -> Any | None:
    """Load a cache entry, or return ``None`` if it is missing or unreadable (with a warning).

    Example:
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp) / "entry.pt"
        ...     print(load_entry(path))
        ...     _ = path.write_bytes(b"not a torch file")
        ...     with warnings.catch_warnings(record=True) as caught:
        ...         warnings.simplefilter("always")
        ...         print(load_entry(path), path.exists(), caught[0].category.__name__)
        None
        None False RuntimeWarning
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or corrupted file: report it, drop it, recompute
        warnings.warn(
            f"cache entry {path} is unreadable ({type(err).__name__}: {err}); recomputing it",
            RuntimeWarning,
            stacklevel=2,
        )
        path.unlink(missing_ok=True)
        return None


class NotCached(LookupError):
    """Raised by :func:`cached` under :func:`cache_only` where an entry would have to be computed.

    Example:
        >>> issubclass(NotCached, LookupError)
        True
    """


_CACHE_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "flowcore_cache_only", default=False
)


@contextlib.contextmanager
def cache_only() -> Iterator[None]:
    """Within this context :func:`cached` only loads: an entry that is missing (or does not match
    its config) raises :class:`NotCached` instead of being computed, and nothing is written. For a
    reader of results that must never train or evaluate silently (the live explorer).

    Example:
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = cached("table", {"dim": 2}, lambda: {"x": 1}, directory=tmp)
        ...     with cache_only():
        ...         print(cached("table", {"dim": 2}, lambda: {"x": 2}, directory=tmp))
        ...         try:
        ...             cached("table", {"dim": 3}, lambda: {"x": 3}, directory=tmp)
        ...         except NotCached:
        ...             print("dim 3 is not cached")
        ...     sorted(p.name.split("-")[0] for p in Path(tmp).iterdir())
        ({'x': 1}, True)
        dim 3 is not cached
        ['table']
    """
    token = _CACHE_ONLY.set(True)
    try:
        yield
    finally:
        _CACHE_ONLY.reset(token)


def lookup(
    kind: str,
    config: Any,
    directory: Path | None = None,
    validate: Callable[[Any], bool] | None = None,
) -> Any | None:
    """The entry :func:`job_key` names, or ``None`` when it has to be computed: it is missing, it is
    unreadable, or ``validate`` rejects it (the last two are reported with a ``RuntimeWarning``).
    Under :func:`cache_only` nothing may be computed, so there a miss raises :class:`NotCached`.

    :func:`cached` is ``lookup``, then compute and save on a miss; a caller that computes several
    entries at once (:func:`flowcore.runs.train_or_load_many`) looks each up, then saves each with
    :func:`save_atomic` to its :func:`entry_path`.

    Example:
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     before = lookup("table", {"dim": 2}, directory=tmp)
        ...     save_atomic({"x": 1}, entry_path("table", {"dim": 2}, tmp))
        ...     print(before, lookup("table", {"dim": 2}, directory=tmp))
        None {'x': 1}
    """
    path = entry_path(kind, config, directory)
    value = load_entry(path)
    if value is not None:
        if validate is None or validate(value):
            return value
        if _CACHE_ONLY.get():
            raise NotCached(f"cache entry {path} does not match its config ({kind})")
        warnings.warn(
            f"cache entry {path} does not match its config; recomputing it",
            RuntimeWarning,
            stacklevel=2,
        )
    if _CACHE_ONLY.get():
        raise NotCached(f"no cache entry {path} ({kind})")
    return None


def cached(
    kind: str,
    config: Any,
    compute: Callable[[], Any],
    directory: Path | None = None,
    validate: Callable[[Any], bool] | None = None,
) -> tuple[Any, bool]:
    """Return ``(value, from_cache)``: the entry :func:`job_key` names, computing and saving it if
    absent.

    ``validate`` may reject a loaded entry (for example one with missing fields); it is then
    reported and recomputed like an unreadable file. Under :func:`cache_only` nothing is computed:
    a missing or rejected entry raises :class:`NotCached`.

    Example:
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     first = cached("table", {"dim": 2}, lambda: {"x": 1}, directory=tmp)
        ...     again = cached("table", {"dim": 2}, lambda: {"x": 2}, directory=tmp)
        >>> first, again
        (({'x': 1}, False), ({'x': 1}, True))
    """
    value = lookup(kind, config, directory, validate)
    if value is not None:
        return value, True
    value = compute()
    save_atomic(value, entry_path(kind, config, directory))
    return value, False
