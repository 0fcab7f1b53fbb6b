"""Small checks that turn a bad parameter into a ``ValueError`` naming it and what is allowed.

They run before any expensive work, so a typo in a notebook parameter fails at once. Each has the
form ``check(name, value, **options) → canonical value``, so a config's field declares its check
once (:func:`checked`) and :func:`validate_fields` applies it under the field's own name.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from functools import partial
from typing import Any

__all__ = [
    "checked",
    "validate_fields",
    "check_int",
    "check_real",
    "check_positive",
    "check_non_negative",
    "check_probability",
    "check_bool",
    "check_choice",
    "check_choice_list",
    "check_int_list",
    "check_real_list",
    "check_seeds",
    "check_device",
]


def checked(check: Callable[..., Any], /, **options) -> dict[str, Any]:
    """Field metadata that declares a dataclass field's check: ``check(name, value, **options)``
    returns the value's canonical form or raises a ``ValueError`` naming ``name``.

    :func:`validate_fields` applies it with the field's own name (behind a section's prefix).
    Other metadata joins with ``|``:
    ``metadata=checked(check_choice, allowed=X) | {"key_default": True}``.

    Example:
        >>> from dataclasses import dataclass, field
        >>> @dataclass(frozen=True)
        ... class Settings:
        ...     n: int = field(default=1, metadata=checked(check_int, minimum=1))
        ...
        ...     def __post_init__(self):
        ...         validate_fields(self)
        >>> Settings(n=3.0)
        Settings(n=3)
        >>> Settings(n=0)
        Traceback (most recent call last):
        ...
        ValueError: n must be an integer ≥ 1, got 0
    """
    return {"check": partial(check, **options) if options else check}


def validate_fields(instance, prefix: str = "") -> None:
    """Run the check every field of the frozen dataclass ``instance`` declares (:func:`checked`), in
    the order of the fields, naming each parameter ``prefix + field name``, and store the canonical
    values (``100000.0`` becomes ``100000``), so two configs that mean the same compare equal and
    share one cache key. Fields without a declared check are left as they are.

    Example:
        >>> from dataclasses import dataclass, field
        >>> @dataclass(frozen=True)
        ... class Sweep:
        ...     dim: int = field(default=2, metadata=checked(check_int, minimum=2))
        ...     note: str = "free text"
        >>> sweep = Sweep(dim=4.0)
        >>> validate_fields(sweep, prefix="sweep_")
        >>> sweep
        Sweep(dim=4, note='free text')
        >>> validate_fields(Sweep(dim=1), prefix="sweep_")
        Traceback (most recent call last):
        ...
        ValueError: sweep_dim must be an integer ≥ 2, got 1
    """
    for f in fields(instance):
        check = f.metadata.get("check")
        if check is not None:
            object.__setattr__(instance, f.name, check(prefix + f.name, getattr(instance, f.name)))


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
    allowed = (
        "an integer"
        + (f" ≥ {minimum}" if minimum is not None else "")
        + (f" and ≤ {maximum}" if maximum is not None else "")
    )
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
        raise ValueError(
            f"{name} must be a finite real number, got {value!r} ({type(value).__name__})"
        )
    return float(value)


def _check_bound(name: str, value, strict: bool) -> float:
    """``value`` as ``float`` if it is a finite number above 0 (``strict``) or at least 0."""
    ok = not _is_bool(value) and isinstance(value, numbers.Real) and math.isfinite(float(value))
    if not ok or (value <= 0 if strict else value < 0):
        raise ValueError(
            f"{name} must be a finite number {'>' if strict else '≥'} 0, got {value!r}"
        )
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


def check_bool(name: str, value) -> bool:
    """Return ``value`` if it is ``True`` or ``False`` (``1``, ``"yes"`` and the like are refused).

    Example:
        >>> check_bool("zero_init", False)
        False
        >>> check_bool("zero_init", "yes")
        Traceback (most recent call last):
        ...
        ValueError: zero_init must be true or false, got 'yes'
    """
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


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


def check_choice_list(name: str, values, allowed: Iterable[str]) -> tuple[str, ...]:
    """Return a tuple of the entries of the non-empty list ``values``, each one of ``allowed``.

    Example:
        >>> check_choice_list("masks", ["halves"], ("halves", "alternating"))
        ('halves',)
        >>> check_choice_list("masks", [], ("halves", "alternating"))
        Traceback (most recent call last):
        ...
        ValueError: masks must be a non-empty list drawn from ('halves', 'alternating'), got []
    """
    allowed = tuple(allowed)
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{name} must be a non-empty list drawn from {allowed}, got {values!r}")
    return tuple(check_choice(name, v, allowed) for v in values)


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
    return tuple(
        check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(_as_list(name, values, what))
    )


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


def check_seeds(name: str, values, distinct: int = 3) -> tuple[int, ...]:
    """Return the seeds of a spread over seeds: non-negative integers, at least ``distinct`` of them
    distinct.

    Example:
        >>> check_seeds("seeds", [0, 1, 2.0])
        (0, 1, 2)
        >>> check_seeds("seeds", [0, 1, 1])
        Traceback (most recent call last):
        ...
        ValueError: seeds must hold at least 3 distinct seeds, got [0, 1, 1]
    """
    seeds = check_int_list(name, values, minimum=0)
    if len(set(seeds)) < distinct:
        raise ValueError(f"{name} must hold at least {distinct} distinct seeds, got {list(values)}")
    return seeds


def check_device(name: str, value) -> str:
    """Return ``value`` unchanged if :func:`flowcore.devices.resolve_device` accepts it (a config
    keeps ``"auto"`` as ``"auto"``: where it runs is no part of what it computes).

    Example:
        >>> check_device("device", "cpu")
        'cpu'
        >>> check_device("device", "gpu")
        Traceback (most recent call last):
        ...
        ValueError: device must be one of 'auto', 'cpu', 'cuda', 'cuda:N'; got 'gpu'
    """
    from flowcore.devices import resolve_device  # torch: imported only when a device is checked

    resolve_device(value)
    return value
