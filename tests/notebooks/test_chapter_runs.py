"""A chapter under nbval with the plugin of ``pipeline.py test`` (bookpipe.testing.ChapterRuns), in
a pytest of its own: a cell that raises fails with the chapter and the cell named, and the
executed notebook (what the smoke build would render) holds the outputs as papermill writes them.
The "chapter" is three small cells stamped as the baseline chapter, so the kernel runs seconds."""

import subprocess
import sys

import nbformat

from bookpipe.testing import PLUGIN

CELLS = [
    'x = 1\nprint("first")\ndisplay("shown")\nprint("second")',
    'assert x == 2, "x must be 2"',
    'print("after")',
]


def test_a_failing_cell_names_the_chapter_and_the_cell(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# A chapter")]
        + [nbformat.v4.new_code_cell(source) for source in CELLS],
        metadata={
            "bookpipe": {"chapter": "debruin2024/baseline", "profile": "ci"},
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        },
    )
    path = tmp_path / "debruin2024" / "baseline.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    executed = tmp_path / "executed"
    (tmp_path / "conftest.py").write_text(
        "from bookpipe.testing import ChapterRuns\n\n\n"
        "def pytest_configure(config):\n"
        f"    config.pluginmanager.register(ChapterRuns({str(executed)!r}), {PLUGIN!r})\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax"]
        + ["--nbval-current-env", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    out = run.stdout
    assert run.returncode == 1, out[-3000:] + run.stderr[-3000:]
    assert "[pipeline] executing chapter 'debruin2024/baseline' under nbval (3 code cells)" in out
    assert "chapter debruin2024/baseline, cell 1 failed: AssertionError: x must be 2" in out
    assert "baseline.ipynb::Cell 1" in out and "1 failed, 2 passed" in out, out[-3000:]
    assert "debruin2024/baseline: executed 1x (nbval, " in out and "FAILED" in out

    written = nbformat.read(executed / "debruin2024" / "baseline.ipynb", as_version=4)
    first, failing, after = (c for c in written.cells if c.cell_type == "code")
    assert [(o.output_type, o.get("text") or o.data["text/plain"]) for o in first.outputs] == [
        ("stream", "first\n"),
        ("display_data", "'shown'"),
        ("stream", "second\n"),
    ], "in order, not merged"
    assert [(o.output_type, o.get("ename")) for o in failing.outputs] == [
        ("error", "AssertionError")
    ]
    assert after.outputs[0].text == "after\n", "nbval ran on, as --nbval-lax does"
    assert written.metadata.language_info["name"] == "python"
