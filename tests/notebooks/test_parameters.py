"""Every chapter takes its settings from a profile through one call right after its parameters cell:
its declared knobs equal the default profile's values, a bad value or an unknown name stops it in
that cell (from the pipeline before any kernel starts), and nothing is trained or cached first."""

import ast

import papermill
import pytest

from bookpipe import chapters
from flowcore.config import load_profile

#: One bad value per chapter (a study's chapters share its configure call), as (parameter, value,
#: message).
BAD = {
    "debruin2024/baseline": ("dims", [1], "dims[0] must be an integer ≥ 2, got 1"),
    "debruin2024/generalization": (
        "tpr",
        1.5,
        "tpr must be a number strictly between 0 and 1, got 1.5",
    ),
    "debruin2024/perturbation": (
        "device",
        "tpu",
        "device must be one of 'auto', 'cpu', 'cuda', 'cuda:N'; got 'tpu'",
    ),
    "debruin2024/robustness": (
        "families",
        ["gaussian"],
        "families must be one of 'affine', 'perturbed', 'outlier'; got 'gaussian'",
    ),
    "debruin2024/ood": ("n_train", "many", "n_train must be an integer ≥ 2, got 'many' (str)"),
    "debruin2024/discussion": (
        "sweep_seeds",
        [0, 1],
        "sweep_seeds must hold at least 3 distinct seeds",
    ),
    "debruin2024/sensitivity": (
        "scales",
        [0.0, 1.0],
        "scales[0] must be a finite number > 0, got 0.0",
    ),
    "debruin2024/regimes": ("regime_points", 2, "regime_points must be an integer ≥ 3, got 2"),
    "debruin2024/libraries": (
        "library_models",
        ["zuko GLOW"],
        "library_models must be one of 'zuko RealNVP', 'zuko MAF', 'zuko NSF'",
    ),
    "debruin2024/appendices": ("n_test", 0, "n_test must be an integer ≥ 2, got 0"),
    "kirichenko2020/couplings": (
        "mask",
        "diagonal",
        "mask must be one of 'checkerboard', 'horizontal', 'cycle'; got 'diagonal'",
    ),
    "kirichenko2020/beyond": (
        "seeds",
        [3],
        "seeds must hold at least 2 distinct seeds (an interval over seeds needs two), got [3]",
    ),
    "kirichenko2020/real": ("real_size", 7, "real_size must be 14 or 28"),
    "song2024/song": (
        "outlier_fractions",
        [0.0, 1.5],
        "outlier_fractions must hold fractions in [0, 1), got [0.0, 1.5]",
    ),
    "song2024/digits": (
        "digits_fraction",
        0.0,
        "digits_fraction must be a fraction in (0, 1], got 0.0",
    ),
    "song2024/mnist": (
        "mnist_size",
        9,
        "mnist_size must be 7, 14 or 28 (28×28 images averaged in equal blocks), got 9",
    ),
    "deboer2020/marginal": ("psis", [0], "psis[0] must be an integer ≥ 1, got 0"),
    "deboer2020/moons": ("aux", [-1], "aux[0] must be an integer ≥ 0, got -1"),
    "deboer2020/mnist": (
        "mnist_size",
        10,
        "mnist_size must divide MNIST's side 28 (one of [2, 4, 7, 14, 28]), got 10",
    ),
}


@pytest.mark.parametrize("name", chapters.CHAPTERS)
def test_declared_defaults_are_the_default_profile(name):
    declared = papermill.inspect_notebook(chapters.chapter_notebook(name))
    assert (
        declared["profile"]["default"] == "'default'"
        or declared["profile"]["default"] == '"default"'
    )
    assert len(declared) <= 5, (
        f"{name}: a parameters cell holds the profile and a few knobs, not every setting"
    )
    values = load_profile("default")[name.split("/")[0]]
    for knob, spec in declared.items():
        if knob != "profile":
            assert ast.literal_eval(spec["default"]) == values[knob], (
                f"{name}: {knob} = {spec['default']} but default.yaml says {values[knob]!r}"
            )


def test_the_kirichenko_chapters_declare_the_same_parameters():
    """The study's two chapters take one profile section and the same knobs, so that one ``-p``
    means the same in both and the second finds the first's flows under the same cache keys."""
    first, second = (
        papermill.inspect_notebook(chapters.chapter_notebook(f"kirichenko2020/{name}"))
        for name in ("couplings", "beyond")
    )
    assert first == second and set(first) >= {"profile", "mask", "channels", "max_epochs"}


@pytest.mark.parametrize("name", chapters.CHAPTERS)
def test_a_bad_value_fails_in_the_configure_cell(name, tmp_path, capsys):
    parameter, value, message = BAD[name]
    cache = tmp_path / "cache"
    chapters.kernel_environment(cache)
    with pytest.raises(SystemExit):
        chapters.execute_chapter(name, {"profile": "ci", parameter: value}, tmp_path / "out.ipynb")
    err = capsys.readouterr().err
    assert f"ValueError: {message}" in err, err[-600:]
    assert "configure(globals())" in err, "it failed in the configure cell"
    assert not cache.exists(), "nothing was trained or cached"


def test_unknown_parameter_from_plain_papermill(tmp_path):
    """`papermill -p n_trian 5000` injects a name no chapter knows: the configure cell names it."""
    chapters.kernel_environment(tmp_path / "cache")
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(
            chapters.chapter_notebook("baseline"),
            str(tmp_path / "out.ipynb"),
            parameters={"profile": "ci", "n_trian": 5000},
            kernel_name="python3",
            progress_bar=False,
        )
    assert "unknown parameter 'n_trian' (did you mean 'n_train'?)" in str(err.value)
    assert not (tmp_path / "cache").exists()


def test_unknown_parameter_from_the_pipeline_stops_before_any_kernel(monkeypatch):
    monkeypatch.setattr(
        chapters, "execute_chapter", lambda *a, **k: pytest.fail("a kernel was started")
    )
    with pytest.raises(
        SystemExit, match=r"unknown parameter 'n_trian' \(did you mean 'n_train'\?\)"
    ):
        chapters.chapter("baseline", "ci", [("n_trian", "5000")])
    with pytest.raises(SystemExit, match="n_test must be an integer ≥ 2"):
        chapters.chapter("baseline", "ci", [("n_test", "0")])
    with pytest.raises(SystemExit, match="chapter must be one of"):
        chapters.chapter("baselin", "ci", [])


def test_rerun_one_chapter_with_other_parameters(tmp_path, monkeypatch):
    import nbformat

    monkeypatch.setattr(chapters, "BUILD", tmp_path)
    monkeypatch.setattr(
        chapters, "kernel_environment", lambda cache, scheduler="": None
    )  # keep the test's own cache
    output = chapters.chapter("baseline", "ci", [("dims", "[3]"), ("n_test", "4000")])
    nb = nbformat.read(output, as_version=4)
    (injected,) = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert (
        "dims = [3]" in injected.source
        and "n_test = 4000" in injected.source
        and 'profile = "ci"' in injected.source
    )
    assert "remove-cell" in injected.metadata.tags
    outputs = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "all checks passed for D = [3]" in outputs
    assert "Parameters: profile ci; overridden: dims = [3], n_test = 4000." in outputs
