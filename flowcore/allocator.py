r"""glibc's ``malloc``, set for the many large, short-lived tensors of training and scoring.

PyTorch's CPU tensors come from ``malloc``. By default glibc serves a request above its *mmap
threshold* (128 KiB, raised as large blocks are freed, up to 32 MiB) with fresh pages from the
kernel, and gives memory back to the kernel once more than its *trim threshold* lies free at the top
of a heap; in threads other than the main one, where ``dask.distributed`` runs its tasks, every
arena is trimmed that eagerly. A step that allocates and frees tensors of a few MiB then pays a
page fault for every 4 KiB it touches, every time. Measured in a Dask worker (2-core AMD EPYC,
AVX-512, one torch thread): scoring one job of the sensitivity sweep took 17.0 s, 6.6 s of it in
the kernel (2.6 million minor page faults); with the settings below 7.0 s (0.1 s, 26,000 faults).
Outside Dask the same job took 7.9 s and 7.5 s. Where the memory comes from changes no number.

:func:`tune_malloc` (run when :mod:`flowcore` is imported) fixes the mmap threshold at glibc's
largest, 32 MiB, keeps up to 512 MiB free before trimming and grows a heap 64 MiB at a time.
A process then holds on to memory it freed, up to that much per heap. ``FLOWCORE_TUNE_MALLOC=0``
leaves glibc's defaults; on a C library other than glibc nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["MALLOPT", "tune_malloc"]

#: ``mallopt`` parameters (glibc's ``M_*`` constants) and their values.
MALLOPT = {
    "M_MMAP_THRESHOLD": (-3, 32 << 20),
    "M_TRIM_THRESHOLD": (-1, 512 << 20),
    "M_TOP_PAD": (-2, 64 << 20),
}

_tuned: bool | None = None


def tune_malloc() -> bool:
    """Apply :data:`MALLOPT` to this process's glibc ``malloc`` (once); whether it is in effect.

    Example:
        >>> isinstance(tune_malloc(), bool)
        True
    """
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if os.environ.get("FLOWCORE_TUNE_MALLOC", "1").strip() == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only: other C libraries' mallopt take other constants
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _tuned = all(mallopt(param, value) == 1 for param, value in MALLOPT.values())
    return _tuned
