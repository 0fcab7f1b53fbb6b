"""Small checks that turn a bad parameter into a ``ValueError`` naming it and what is allowed.

They run before any expensive work, so a typo in a notebook parameter fails at once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

__all__ = ["check_int", "check_real", "check_positive", "check_probability", "check_choice", "check_int_list", "check_real_list"]


def _is_bool(value) -> bool:
    return isinstance(value, bool)


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer in ``[minimum, maximum]``."""
    allowed = "an integer" + (f" ≥ {minimum}" if minimum is not None else "") + (f" and ≤ {maximum}" if maximum is not None else "")
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not _is_bool(value) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def check_real(name: str, value) -> float:
    """Return ``value`` as ``float`` if it is a finite real number."""
    if _is_bool(value) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite real number, got {value!r} ({type(value).__name__})")
    return float(value)


def check_positive(name: str, value) -> float:
    """Return ``value`` as ``float`` if it is a finite number ``> 0``."""
    if _is_bool(value) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_probability(name: str, value) -> float:
    """Return ``value`` as ``float`` if it lies strictly inside ``(0, 1)``."""
    if _is_bool(value) or not isinstance(value, numbers.Real) or not 0 < float(value) < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def check_choice(name: str, value, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``."""
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
    """Return a tuple of integers, each ``≥ minimum``; the error names the offending entry."""
    what = "integers" + (f" ≥ {minimum}" if minimum is not None else "")
    return tuple(check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(_as_list(name, values, what)))


def check_real_list(name: str, values, positive: bool = False) -> tuple[float, ...]:
    """Return a tuple of finite floats (``> 0`` when ``positive``)."""
    check = check_positive if positive else check_real
    what = "numbers > 0" if positive else "finite numbers"
    return tuple(check(f"{name}[{i}]", v) for i, v in enumerate(_as_list(name, values, what)))
