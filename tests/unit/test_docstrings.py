"""Every public function and class of the core has a runnable example in its docstring.

The examples themselves run as doctests (``pytest tests flowcore --doctest-modules``); this test
only checks that none is missing, so a new public name cannot be added without one.
"""

import importlib
import inspect

import pytest

#: The core modules whose public names (their ``__all__``) must each carry a ``>>>`` example.
MODULES = [
    "flowcore.gaussians",
    "flowcore.estimators",
    "flowcore.validation",
    "flowcore.cache",
    "flowcore.rng",
    "flowcore.devices",
    "flowcore.config",
    "flowcore.runs",
    "flowcore.train",
    "flowcore.verdicts",
    "flowcore.sweep",
    "flowcore.sweep.execution",
    "flowcore.status",
    "flowcore.train_many",
    "flowcore.report.plots",
    "flowcore.report.tables",
    "flowcore.flows",
]


def _public_callables():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        assert hasattr(module, "__all__"), f"{module_name} has no __all__"
        for name in module.__all__:
            obj = getattr(
                module, name, None
            )  # a missing name fails test_modules_list_their_public_names
            if inspect.isclass(obj) or inspect.isroutine(obj):
                yield pytest.param(obj, id=f"{module_name}.{name}")


def test_modules_list_their_public_names():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            assert hasattr(module, name), (
                f"{module_name}.__all__ names {name!r}, which it does not define"
            )


def _own_docstrings(obj) -> list[str]:
    """The object's own docstring and, for a class, its own ``__init__``'s (never a parent's)."""
    docs = [obj.__doc__ or ""]
    if inspect.isclass(obj):
        init = obj.__dict__.get("__init__")
        if init is not None:
            docs.append(init.__doc__ or "")
    return docs


@pytest.mark.parametrize("obj", list(_public_callables()))
def test_public_name_has_an_example(obj):
    assert any(">>>" in doc for doc in _own_docstrings(obj)), (
        f"{obj.__module__}.{obj.__qualname__} has no '>>>' example in its docstring"
    )
