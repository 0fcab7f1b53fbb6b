"""Every study's parameters, fuzzed: any value of any type or shape either validates or raises a
``ValueError`` that names a parameter (never another exception), and nothing reaches the cache.

The values go through :func:`flowcore.config.resolve` on the ci profile, the path of a notebook and
of the pipeline, so the text reader and the resource estimate are fuzzed too.
"""

import math
import re
import warnings
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowcore.cache import cache_dir
from flowcore.config import resolve
from flowcore.resources import SlowRunWarning
from flowcore.studies import STUDIES, config_class
from flowcore.train import TrainConfig

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.sampled_from([0, 1, 2, 3, -1, 10**9, 10**12, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.5, 1.5, 1e-300, 1e300, math.nan, math.inf, -math.inf]),
    st.text(max_size=12),
    st.sampled_from(
        [
            "1e-3",
            "1E9",
            "1_000",
            "[10,20",
            "null",
            "true",
            "tanh",
            "auto",
            "cuda:7",
            "[1, 2]",
            "{a: 1}",
            "",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=3), inner, max_size=2),
    ),
    max_leaves=6,
)
EXAMPLES = 1500


def _case():
    pairs = [
        (study, name) for study in STUDIES for name in sorted(config_class(study).parameter_names())
    ]
    return st.tuples(st.sampled_from(pairs), values).map(lambda pv: (*pv[0], pv[1]))


def names(message: str, name: str) -> bool:
    """Whether ``message`` names the parameter ``name`` as a word of its own ("lr" inside
    "lr_patience" does not count).

    Example:
        >>> names("lr_patience must be an integer", "lr"), names("lr must be positive", "lr")
        (False, True)
    """
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) is not None


def test_any_value_validates_or_names_the_parameter():
    tried = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
    )
    @given(_case())
    def check(case):
        study, name, value = case
        tried.append(name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SlowRunWarning)
                resolve(config_class(study), "ci", {name: value})
        except ValueError as err:
            assert names(str(err), name), (
                f"{study}.{name}={value!r}: the error does not name {name!r}: {err}"
            )
        assert not cache_dir().exists() or not any(cache_dir().iterdir()), (
            "validation wrote to the cache"
        )

    check()
    # Counted in this test itself, so it holds when the test runs alone.
    assert len(tried) >= EXAMPLES, f"only {len(tried)} values fuzzed"
    print(f"fuzzed {len(tried)} parameter values over {len(set(tried))} parameters")


def test_the_shared_training_section_names_its_parameters_in_every_study():
    """Every study reads its training settings from the one TrainConfig section under the same flat
    names, so a bad value of each names that parameter, whichever study it is given to."""
    for study in STUDIES:
        known = config_class(study).parameter_names()
        for f in fields(TrainConfig):
            if f.name not in known:  # a study whose runs take their own seeds has no ``seed``
                continue
            assert known[f.name] == ("train", f.name)
            for bad in (-1, "x", [1], None, math.nan):
                with pytest.raises(ValueError) as err:
                    resolve(config_class(study), "ci", {f.name: bad})
                assert names(str(err.value), f.name), f"{study}.{f.name}={bad!r}: {err.value}"
