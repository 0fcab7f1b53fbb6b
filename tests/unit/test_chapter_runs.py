"""How ``pipeline.py test`` executes each chapter once (bookpipe.testing), without a kernel: a
failed cell becomes a message naming the chapter and the cell, the kernel's messages become the
executed notebook papermill would have written, and the smoke build takes those notebooks as they
are."""

import re

import nbformat
import pytest

from bookpipe import book, testing
from bookpipe.chapters import chapter_notebook
from bookpipe.layout import CHAPTERS, ROOT


def _error(ename: str, evalue: str):
    return nbformat.v4.new_output(
        "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_code_cell_is_found_in_its_chapter_source(name):
    nb = chapter_notebook(name)
    lines = (ROOT / "notebooks" / f"{name}.py").read_text().splitlines()
    for number, cell in enumerate(testing.code_cells(nb)):
        line = testing.cell_line(name, nb, number)
        assert line is not None, (name, number, cell.source[:80])
        assert lines[line - 1] == cell.source.splitlines()[0], (name, number, line)


def test_a_failed_check_names_the_chapter_the_cell_and_its_line():
    """The chapter's last code cell (its checks) given an AssertionError, as nbval leaves it."""
    name = "debruin2024/baseline"
    nb = chapter_notebook(name)
    cells = testing.code_cells(nb)
    number = len(cells) - 1
    cells[number].outputs = [_error("AssertionError", "H* differs from H(p) by 7 SE")]
    line = testing.cell_line(name, nb, number)
    source = (ROOT / "notebooks" / f"{name}.py").read_text().splitlines()
    assert source[line - 2].startswith("# %%") and source[line - 1] in cells[number].source

    (message,) = testing.chapter_failures(name, nb)
    assert message == (
        f"chapter {name}, cell {number} (notebooks/{name}.py, line {line}) failed: "
        "AssertionError: H* differs from H(p) by 7 SE"
    )
    # Without an error output (a timeout, say), what nbval said.
    cells[number].outputs = []
    assert testing.chapter_failures(name, nb) == []
    assert testing.cell_failure(name, nb, number, "Timeout of 2000 seconds exceeded").endswith(
        "failed: Timeout of 2000 seconds exceeded"
    )


def test_the_injected_parameters_cell_is_named_as_such():
    nb = chapter_notebook("debruin2024/baseline")
    injected = nbformat.v4.new_code_cell(
        'profile = "ci"\n', metadata={"tags": ["injected-parameters"]}
    )
    first = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(first + 1, injected)
    number = testing.code_cells(nb).index(injected)
    injected.outputs = [_error("ValueError", "profile 'cj' is not one of ci, default, paper")]
    assert testing.chapter_failures("debruin2024/baseline", nb) == [
        f"chapter debruin2024/baseline, cell {number} (the parameters papermill injected) failed: "
        "ValueError: profile 'cj' is not one of ci, default, paper"
    ]
    # The cells after it keep their lines.
    after = testing.code_cells(nb)[number + 1]
    line = testing.cell_line("debruin2024/baseline", nb, number + 1)
    text = (ROOT / "notebooks" / "debruin2024" / "baseline.py").read_text().splitlines()
    assert text[line - 1] == after.source.splitlines()[0]


def _msg(msg_type: str, parent: str, **content) -> dict:
    return {
        "msg_type": msg_type,
        "header": {"msg_type": msg_type, "msg_id": f"{msg_type}-{id(content)}"},
        "parent_header": {"msg_id": parent},
        "metadata": {},
        "content": content,
        "buffers": [],
    }


def _stream(parent, text, name="stdout"):
    return _msg("stream", parent, name=name, text=text)


def _display(parent, text, **content):
    return _msg("display_data", parent, data={"text/plain": text}, metadata={}, **content)


def test_the_kernels_messages_become_the_outputs_papermill_writes():
    """In order (a print, a display, a print: not merged as nbval's own comparison merges them),
    with the execution count, errors, clear_output(wait) and display updates; other requests'
    messages are left out."""
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("a"), nbformat.v4.new_code_cell("b")]
    )
    client = testing.output_client(nb)
    testing.replay(
        client,
        0,
        [
            _msg("status", "x", execution_state="busy"),
            _msg("execute_input", "x", code="a", execution_count=3),
            _stream("old", "late output of an earlier cell\n"),
            _stream("x", "first\n"),
            _display("x", "'progress 1'", transient={"display_id": "d1"}),
            _stream("x", "second\n"),
            _msg("execute_result", "x", data={"text/plain": "42"}, metadata={}, execution_count=3),
            _msg("status", "x", execution_state="idle"),
            _stream("x", "after idle\n"),
        ],
        "x",
    )
    cell = nb.cells[0]
    assert cell.execution_count == 3
    assert [(o.output_type, o.get("text") or o.data["text/plain"]) for o in cell.outputs] == [
        ("stream", "first\n"),
        ("display_data", "'progress 1'"),
        ("stream", "second\n"),
        ("execute_result", "42"),
    ]
    update = {"data": {"text/plain": "'progress 2'"}, "transient": {"display_id": "d1"}}
    testing.replay(
        client,
        1,
        [
            _msg("update_display_data", "y", metadata={}, **update),
            _stream("y", "gone\n"),
            _msg("clear_output", "y", wait=True),
            _stream("y", "kept\n"),
            _msg("error", "y", ename="AssertionError", evalue="no", traceback=["AssertionError"]),
            _msg("status", "y", execution_state="idle"),
        ],
        "y",
    )
    assert nb.cells[0].outputs[1].data["text/plain"] == "'progress 2'", "the display was updated"
    assert [o.output_type for o in nb.cells[1].outputs] == ["stream", "error"]
    assert nb.cells[1].outputs[0].text == "kept\n"
    nbformat.validate(nb)


class _Error(Exception):
    pass


def _run(tmp_path, fail_at=None, skip_at=None):
    """A finished two-cell run of the chapter debruin2024/baseline, as the plugin records it."""
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("assert x == 2")],
        metadata={"bookpipe": {"chapter": "debruin2024/baseline", "profile": "ci"}},
    )
    run = testing.ChapterRun("debruin2024/baseline", "ci", nb)
    run.started = 0.0
    for number, parent in enumerate(("p0", "p1")):
        if number == skip_at:
            run.record(number, None, [], pytest.skip.Exception("NBVAL_SKIP"))
            continue
        messages = [_stream(parent, f"cell {number}\n")]
        error = None
        if number == fail_at:
            messages.append(
                _msg("error", parent, ename="AssertionError", evalue="", traceback=["..."])
            )
            error = _Error("Cell execution caused an exception")
        run.record(
            number, parent, [*messages, _msg("status", parent, execution_state="idle")], error
        )
    run.language_info = {"name": "python", "pygments_lexer": "ipython3"}
    run.finish(tmp_path / "executed")
    plugin = testing.ChapterRuns(tmp_path / "executed")
    plugin.runs["nb"] = run
    return run, plugin


def test_a_chapter_that_passed_is_given_to_the_smoke_build_as_executed(tmp_path):
    run, plugin = _run(tmp_path)
    assert run.complete and run.path == tmp_path / "executed" / "debruin2024" / "baseline.ipynb"
    written = nbformat.read(run.path, as_version=4)
    assert [c.outputs[0].text for c in written.cells] == ["cell 0\n", "cell 1\n"]
    assert written.metadata.language_info["pygments_lexer"] == "ipython3"
    assert plugin.for_build("ci") == ({"debruin2024/baseline": run.path}, [])
    assert plugin.for_build("default") == ({}, []), "another profile's run is not the ci build's"


def test_a_chapter_that_failed_is_not_rendered_but_named(tmp_path):
    run, plugin = _run(tmp_path, fail_at=1)
    assert not run.complete and run.path.is_file(), "written, with the error, for a look"
    executed, failed = plugin.for_build("ci")
    assert executed == {}
    assert failed == ["chapter debruin2024/baseline, cell 1 failed: AssertionError: "]


def test_a_chapter_with_a_skipped_cell_is_not_rendered(tmp_path):
    run, plugin = _run(tmp_path, skip_at=0)
    assert plugin.for_build("ci") == (
        {},
        ["chapter debruin2024/baseline: cells [0] were not executed under nbval"],
    )


def test_the_build_renders_an_executed_chapter_as_it_is(tmp_path):
    run, _ = _run(tmp_path)
    nb = nbformat.read(run.path, as_version=4)
    nb.cells.insert(
        0, nbformat.v4.new_code_cell('profile = "ci"', metadata={"tags": ["injected-parameters"]})
    )
    nbformat.write(nb, run.path)
    target = tmp_path / "src" / "book" / "chapters" / "debruin2024" / "baseline.ipynb"
    seconds = book.use_executed(run.path, target)
    assert seconds == nbformat.read(run.path, as_version=4).metadata.bookpipe.seconds
    staged = nbformat.read(target, as_version=4)
    assert "remove-cell" in staged.cells[0].metadata.tags, "the injected parameters are hidden"
    assert [c.outputs for c in staged.cells[1:]] == [c.outputs for c in nb.cells[1:]]
    with pytest.raises(ValueError, match=re.escape("['nonesuch/chapter']")):
        book.build("ci", out=tmp_path / "out", executed={"nonesuch/chapter": run.path})
