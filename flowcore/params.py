r"""Parameter values as people type them: one reader for the pipeline's ``-p``, the profile files
and values that reach a notebook as text.

YAML 1.1, which PyYAML speaks, reads ``1e-3`` and ``1E9`` as *strings* (its floats need a dot), so
``-p lr 1e-3`` used to fail validation with a number in hand. :func:`parse_value` reads YAML with
the float syntax of YAML 1.2 and Python (``1e-3``, ``1E9``, ``.5``, ``1_000.5``) added; integers
keep YAML's ``1_000``; ``true``/``false`` and ``null`` keep their meaning (YAML 1.1's
``yes``/``no``/``on``/``off`` do not become booleans); a word stays a word. A value that is not
YAML at all (``[10,20``) raises a one-line ``ValueError`` naming the parameter, the text and the
expected form.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["parse_value", "coerce", "load_yaml"]

_EXPECTED = "a number (0.001, 1e-3, 1_000), true/false, null, a word, or a list such as [10, 20]"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with exponent floats that lack a dot (``1e-3``, ``1E9``, ``2e+05``)."""


# YAML 1.2's booleans only: YAML 1.1 also reads yes/no/on/off as booleans, which a word-valued
# parameter (or a typo) should not silently become.
_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in value if tag != "tag:yaml.org,2002:bool"]
    for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_value(name: str, text: str) -> Any:
    """The value of parameter ``name`` written as ``text``.

    Example:
        >>> parse_value("lr", "1e-3"), parse_value("lr", "1E9"), parse_value("n_train", "1_000")
        (0.001, 1000000000.0, 1000)
        >>> parse_value("dims", "[10, 20]"), parse_value("alpha", "null")
        ([10, 20], None)
        >>> parse_value("device", "cpu"), parse_value("zero_init", "yes")
        ('cpu', 'yes')
        >>> parse_value("dims", "[10,20")
        Traceback (most recent call last):
        ...
        ValueError: dims: cannot read '[10,20' as a value (expected ',' or ']' at its end); ...
    """
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or "not valid YAML"
        mark = getattr(err, "problem_mark", None)
        where = ""
        if mark is not None:
            where = " at its end" if mark.index >= len(text) else f" at character {mark.index + 1}"
        problem = problem.replace(
            "expected ',' or ']', but got '<stream end>'", "expected ',' or ']'"
        )
        raise ValueError(
            f"{name}: cannot read {text!r} as a value ({problem}{where}); expected {_EXPECTED}"
        ) from None


def coerce(name: str, value: Any) -> Any:
    """``value`` read with :func:`parse_value` when it is text that reads as a number, bool, null or
    list; anything else unchanged (so ``"tanh"`` stays ``"tanh"`` and ``"[1,"`` reaches validation
    as text).

    Example:
        >>> coerce("lr", "1e-3"), coerce("lr", 0.01)
        (0.001, 0.01)
        >>> coerce("log_scale", "tanh"), coerce("dims", "[10, 20]")
        ('tanh', [10, 20])
    """
    if not isinstance(value, str):
        return value
    try:
        parsed = parse_value(name, value)
    except ValueError:
        return value
    return value if isinstance(parsed, (str, dict)) else parsed


def load_yaml(path: Path) -> Any:
    """A YAML file read by the same rules as :func:`parse_value` (profiles: ``lr: 1e-3`` is a
    number).

    Raises:
        ValueError: Naming the file and the line when it is not valid YAML.
    """
    with open(path) as f:
        try:
            return yaml.load(f, Loader=_Loader)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            raise ValueError(
                f"{path}{line}: not valid YAML ({getattr(err, 'problem', None) or err})"
            ) from None
