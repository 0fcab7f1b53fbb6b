r"""Every random stream of the book, from one place.

A run is reproducible when each random draw comes from a generator that is derived from the
run's seed and a name saying what the draw is for, and from nothing else (no global state).
Five derivations exist; each is used for what the book has always drawn with it, so the
numbers of earlier builds stay the same:

- :func:`stream` — a named stream: ``stream(seed, "test", D, "affine", s, t)``. Streams with
  different names are independent, and each is reproducible on its own. Test sets, training
  sets, perturbation directions and outlier distributions come from named streams.
- :func:`derived_seed` — a 32-bit seed from names: the outlier family's own covariance.
- :func:`generator` — a plain seeded torch generator: the training distribution :math:`p` (seed
  ``seed · 1,000,003 + D``) and the minibatch order of training.
- :func:`numpy_stream` — a NumPy generator from a seed sequence: the calibration's common random
  numbers and the KDE's subsample.
- :func:`seeded` — the global torch RNG, forked and seeded for the duration of a block: a flow's
  initial weights (``nn.Linear`` draws from the global RNG), without disturbing the caller's RNG.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["stream", "derived_seed", "generator", "numpy_stream", "seeded"]


def _digest(names: tuple) -> bytes:
    return hashlib.sha256(repr(names).encode()).digest()


def stream(seed: int, *names) -> torch.Generator:
    """A CPU generator for one named random stream.

    The seed of the stream is the first 63 bits of SHA-256 of ``repr((seed, *names))``, so it
    does not depend on Python's hash randomisation or on the order streams are used in.

    Example:
        >>> a = torch.rand(2, generator=stream(0, "test", 10))
        >>> torch.equal(a, torch.rand(2, generator=stream(0, "test", 10)))
        True
        >>> torch.equal(a, torch.rand(2, generator=stream(0, "train", 10)))
        False
    """
    return torch.Generator().manual_seed(int.from_bytes(_digest((seed, *names))[:8], "little") >> 1)


def derived_seed(*names) -> int:
    """A 32-bit seed named by ``names`` (the first 4 bytes of SHA-256 of their ``repr``), for a
    function that takes a seed rather than a generator, e.g. the outlier family's own covariance
    drawn with :func:`flowcore.gaussians.training_gaussian`.

    Example:
        >>> derived_seed("outlier", 0) == derived_seed("outlier", 0) != derived_seed("outlier", 1)
        True
    """
    return int.from_bytes(_digest(names)[:4], "little")


def generator(seed: int) -> torch.Generator:
    """A CPU torch generator seeded with ``seed`` itself.

    Example:
        >>> torch.equal(
        ...     torch.rand(3, generator=generator(7)), torch.rand(3, generator=generator(7))
        ... )
        True
    """
    return torch.Generator().manual_seed(int(seed))


def numpy_stream(entropy: int | Sequence[int]) -> np.random.Generator:
    """A NumPy generator (PCG64) from ``np.random.SeedSequence(entropy)``.

    Example:
        >>> numpy_stream([0, 10, 0x7E57]).standard_normal(2).shape
        (2,)
    """
    return np.random.default_rng(np.random.SeedSequence(entropy))


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global CPU RNG seeded with ``seed``; restore the caller's RNG after.

    Example:
        >>> with seeded(0):
        ...     a = torch.nn.Linear(2, 2).weight.detach().clone()
        >>> with seeded(0):
        ...     torch.equal(a, torch.nn.Linear(2, 2).weight)
        True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
