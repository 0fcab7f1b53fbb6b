r"""What a configuration will need, estimated before any work, and checked against the machine.

A study's config says what it allocates (:meth:`flowcore.config.StudyConfig.resources`): the parts
that are alive together at the peak, each with the parameters that drive it, and a rough count of
floating-point work. :func:`check_resources` refuses a config whose peak exceeds the memory
available now (a ``ValueError`` naming the parameters, raised before anything is trained or cached)
and warns when the work would take hours.

The time is a rough guide: ``flops / throughput``. :data:`CPU_FLOPS` is calibrated on this project's
default profile, whose upper-bound estimate (5.6·10¹³ flop: every run trains all its epochs) took
about 23 minutes from an empty cache on a 2-core AMD EPYC VM; :data:`GPU_FLOPS` is a guess, not a
measurement (no GPU was available when it was set).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

__all__ = [
    "Need",
    "Estimate",
    "SlowRunWarning",
    "available_memory",
    "check_resources",
    "CPU_FLOPS",
    "GPU_FLOPS",
    "HOURS_WARNING",
]

#: Sustained flop/s assumed on a CPU and on a GPU (rough; see the module docstring).
CPU_FLOPS = 4e10
GPU_FLOPS = 1e12
#: Estimated hours above which :func:`check_resources` warns.
HOURS_WARNING = 1.0


class SlowRunWarning(UserWarning):
    """The estimated work would take hours on this device."""


@dataclass(frozen=True)
class Need:
    """One allocation alive at the peak: what it is, its size in bytes, the parameters that set
    it."""

    what: str
    bytes: float
    drivers: tuple[str, ...]


@dataclass(frozen=True)
class Estimate:
    """The peak memory (the sum of ``needs``) and the floating-point work of a configuration.

    Example:
        >>> e = Estimate(
        ...     (Need("covariances", 8e9, ("dims",)), Need("scores", 1e9, ("n_test",))),
        ...     flops=1.44e14
        ... )
        >>> e.peak_bytes, round(e.hours(4e10), 1)
        (9000000000.0, 1.0)
    """

    needs: tuple[Need, ...]
    flops: float

    @property
    def peak_bytes(self) -> float:
        return float(sum(n.bytes for n in self.needs))

    def hours(self, throughput: float) -> float:
        """The work's duration in hours at ``throughput`` flop/s."""
        return self.flops / throughput / 3600


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` of ``/proc/meminfo``; else free physical
    pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PB"


def check_resources(estimate: Estimate, available: float | None = None, gpu: bool = False) -> None:
    """Refuse ``estimate`` when its peak exceeds ``available`` bytes (default:
    :func:`available_memory`); warn (:class:`SlowRunWarning`) when its work exceeds
    :data:`HOURS_WARNING` hours.

    Raises:
        ValueError: Naming the peak, the memory available, the largest need and its parameters.

    Example:
        >>> e = Estimate((Need("covariance matrices", 8e10, ("dims",)),), flops=1e9)
        >>> check_resources(e, available=24 * 2**30)  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        ValueError: this configuration needs about 74.5 GB of memory at its peak, but 24 GB is
        available; the largest part: covariance matrices, 74.5 GB, set by dims
    """
    available = available_memory() if available is None else available
    if estimate.peak_bytes > available:
        largest = max(estimate.needs, key=lambda n: n.bytes)
        raise ValueError(
            f"this configuration needs about {_size(estimate.peak_bytes)} of memory at its peak, "
            f"but {_size(available)} is available; "
            f"the largest part: {largest.what}, {_size(largest.bytes)}, "
            f"set by {', '.join(largest.drivers)}"
        )
    hours = estimate.hours(GPU_FLOPS if gpu else CPU_FLOPS)
    if hours > HOURS_WARNING:
        warnings.warn(
            f"this configuration is estimated at about {hours:.1f} hours "
            f"on this {'GPU' if gpu else 'CPU'} "
            f"({estimate.flops:.2g} flop at an assumed "
            f"{GPU_FLOPS if gpu else CPU_FLOPS:.0e} flop/s); "
            "it runs, with progress bars",
            SlowRunWarning,
            stacklevel=2,
        )
