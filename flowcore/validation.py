"""Small checks that turn a bad parameter into a ``ValueError`` naming it and what is allowed.

They run before any expensive work, so a typo in a notebook parameter fails at once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

__all__ = ["assign_checked", "check_int", "check_real", "check_positive", "check_non_negative", "check_probability", "check_choice", "check_int_list", "check_real_list"]


def _is_bool(value) -> bool:
    return isinstance(value, bool)


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer in ``[minimum, maximum]``.

    Example:
        >>> check_int("n_train", 100000.0, minimum=2)
        100000
        >>> check_int("n_train", 1, minimum=2)
        Traceback (most recent call last):
        ...
        ValueError: n_train must be an integer ≥ 2, got 1
    """
    allowed = "an integer" + (f" ≥ {minimum}" if minimum is not None else "") + (f" and ≤ {maximum}" if maximum is not None else "")
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not _is_bool(value) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    if abs(value) >= 2**63:  # no array, tensor or loop counter can hold it
        raise ValueError(f"{name} must be {allowed} within the 64-bit range, got {value:.3g}")
    return value


def check_real(name: str, value) -> float:
    """Return ``value`` as ``float`` if it is a finite real number.

    Example:
        >>> check_real("t", 1)
        1.0
        >>> check_real("t", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: t must be a finite real number, got nan (float)
    """
    if _is_bool(value) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite real number, got {value!r} ({type(value).__name__})")
    return float(value)


def _check_bound(name: str, value, strict: bool) -> float:
    """``value`` as ``float`` if it is a finite number above 0 (``strict``) or at least 0."""
    ok = not _is_bool(value) and isinstance(value, numbers.Real) and math.isfinite(float(value))
    if not ok or (value <= 0 if strict else value < 0):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '≥'} 0, got {value!r}")
    return float(value)


def check_positive(name: str, value) -> float:
    """Return ``value`` as ``float`` if it is a finite number ``> 0``.

    Example:
        >>> check_positive("s", 2)
        2.0
        >>> check_positive("s", 0)
        Traceback (most recent call last):
        ...
        ValueError: s must be a finite number > 0, got 0
    """
    return _check_bound(name, value, strict=True)


def check_non_negative(name: str, value) -> float:
    """Return ``value`` as ``float`` if it is a finite number ``≥ 0``.

    Example:
        >>> check_non_negative("min_delta", 0)
        0.0
        >>> check_non_negative("min_delta", -0.1)
        Traceback (most recent call last):
        ...
        ValueError: min_delta must be a finite number ≥ 0, got -0.1
    """
    return _check_bound(name, value, strict=False)


def assign_checked(instance, **checked) -> None:
    """Store checked values on a frozen dataclass from its ``__post_init__``.

    A config keeps the canonical form of each value (``100000.0`` becomes ``100000``), so two
    configs that mean the same compare equal and share one cache key.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Settings:
        ...     n: int = 1
        ...
        ...     def __post_init__(self):
        ...         assign_checked(self, n=check_int("n", self.n, minimum=1))
        >>> Settings(n=3.0), Settings(n=3.0) == Settings(n=3)
        (Settings(n=3), True)
    """
    for name, value in checked.items():
        object.__setattr__(instance, name, value)


def check_probability(name: str, value) -> float:
    """Return ``value`` as ``float`` if it lies strictly inside ``(0, 1)``.

    Example:
        >>> check_probability("tpr", 0.975)
        0.975
        >>> check_probability("tpr", 1)
        Traceback (most recent call last):
        ...
        ValueError: tpr must be a number strictly between 0 and 1, got 1
    """
    if _is_bool(value) or not isinstance(value, numbers.Real) or not 0 < float(value) < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def check_choice(name: str, value, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``.

    Example:
        >>> check_choice("mask", "halves", ("halves", "alternating"))
        'halves'
        >>> check_choice("mask", "half", ("halves", "alternating"))
        Traceback (most recent call last):
        ...
        ValueError: mask must be one of 'halves', 'alternating'; got 'half'
    """
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def _as_list(name: str, values, what: str) -> Sequence:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a non-empty list of {what}, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must be a non-empty list of {what}, got an empty list")
    return values


def check_int_list(name: str, values, minimum: int | None = None) -> tuple[int, ...]:
    """Return a tuple of integers, each ``≥ minimum``; the error names the offending entry.

    Example:
        >>> check_int_list("dims", [10, 20.0], minimum=2)
        (10, 20)
        >>> check_int_list("dims", [10, 1], minimum=2)
        Traceback (most recent call last):
        ...
        ValueError: dims[1] must be an integer ≥ 2, got 1
    """
    what = "integers" + (f" ≥ {minimum}" if minimum is not None else "")
    return tuple(check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(_as_list(name, values, what)))


def check_real_list(name: str, values, positive: bool = False) -> tuple[float, ...]:
    """Return a tuple of finite floats (``> 0`` when ``positive``).

    Example:
        >>> check_real_list("scales", [0.5, 2], positive=True)
        (0.5, 2.0)
        >>> check_real_list("scales", [0.5, -1], positive=True)
        Traceback (most recent call last):
        ...
        ValueError: scales[1] must be a finite number > 0, got -1
    """
    check = check_positive if positive else check_real
    what = "numbers > 0" if positive else "finite numbers"
    return tuple(check(f"{name}[{i}]", v) for i, v in enumerate(_as_list(name, values, what)))
