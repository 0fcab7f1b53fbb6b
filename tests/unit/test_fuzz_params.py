"""Every study's parameters, fuzzed: any value of any type or shape either validates or raises a
``ValueError`` that names a parameter (never another exception), and nothing reaches the cache.

The values go through :func:`flowcore.config.resolve` on the ci profile, the path of a notebook and of
the pipeline, so the text reader and the resource estimate are fuzzed too.
"""

import math
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowcore.cache import cache_dir
from flowcore.config import resolve
from flowcore.resources import SlowRunWarning
from flowcore.studies import STUDIES, config_class

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.sampled_from([0, 1, 2, 3, -1, 10**9, 10**12, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.5, 1.5, 1e-300, 1e300, math.nan, math.inf, -math.inf]),
    st.text(max_size=12),
    st.sampled_from(["1e-3", "1E9", "1_000", "[10,20", "null", "true", "tanh", "auto", "cuda:7", "[1, 2]", "{a: 1}", ""]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner), st.dictionaries(st.text(max_size=3), inner, max_size=2)), max_leaves=6)
TRIED = {"inputs": 0}


def _case():
    pairs = [(study, name) for study in STUDIES for name in sorted(config_class(study).parameter_names())]
    return st.tuples(st.sampled_from(pairs), values).map(lambda pv: (*pv[0], pv[1]))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(_case())
def test_any_value_validates_or_names_a_parameter(case):
    study, name, value = case
    klass = config_class(study)
    TRIED["inputs"] += 1
    known = set(klass.parameter_names())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SlowRunWarning)
            resolve(klass, "ci", {name: value})
    except ValueError as err:
        message = str(err)
        assert any(n in message for n in known) or "memory" in message, f"{name}={value!r}: {message}"
    assert not cache_dir().exists() or not any(cache_dir().iterdir()), "validation wrote to the cache"


def test_report_how_many_inputs_were_fuzzed():
    # Runs after the property above (file order); pytest -s shows the count, the assertion keeps it honest.
    print(f"fuzzed {TRIED['inputs']} parameter values")
    assert TRIED["inputs"] >= 1500
