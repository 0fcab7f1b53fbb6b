"""Every chapter validates its parameters in its first code cell: a bad value stops it there, with a
message naming the parameter, before anything is trained or cached."""

import sys
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pipeline  # noqa: E402

#: (parameter, bad value, start of the expected message)
BAD = [
    ("dims", [1], "dims[0] must be an integer ≥ 2, got 1"),
    ("scales", [0.0, 1.0], "scales[0] must be a finite number > 0, got 0.0"),
    ("tpr", 0, "tpr must be a number strictly between 0 and 1, got 0"),
    ("tpr", 1.5, "tpr must be a number strictly between 0 and 1, got 1.5"),
    ("n_test", 0, "n_test must be an integer ≥ 2, got 0"),
    ("device", "tpu", "device must be one of 'auto', 'cpu', 'cuda', 'cuda:N'; got 'tpu'"),
    ("families", ["gaussian"], "families must be one of 'affine', 'perturbed', 'outlier'; got 'gaussian'"),
    ("n_train", "many", "n_train must be an integer ≥ 2, got 'many' (str)"),
    ("sweep_seeds", [0, 1], "sweep_seeds must hold at least 3 distinct seeds"),
]


@pytest.mark.parametrize("name", pipeline.CHAPTERS)
def test_bad_parameters_fail_at_the_first_cell(name, tmp_path, capsys):
    declared = papermill.inspect_notebook(pipeline.chapter_notebook(name))
    cases = [case for case in BAD if case[0] in declared]
    assert len(cases) >= 4, f"{name} declares too few of the tested parameters"
    cache = tmp_path / "cache"
    pipeline.kernel_environment(cache)
    for parameter, value, message in cases:
        values = {**pipeline.load_profile("ci"), parameter: value}
        with pytest.raises(SystemExit):
            pipeline.execute_chapter(name, values, tmp_path / f"{name}.ipynb")
        err = capsys.readouterr().err
        assert f"ValueError: {message}" in err, f"{name}, {parameter}={value!r}: {err[-600:]}"
        assert "config_from(globals())" in err or "from_params(" in err, "it failed in the validation cell"
        assert not cache.exists(), f"{name}, {parameter}={value!r}: something was cached"
