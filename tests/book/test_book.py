"""Smoke build of the whole book with the ci profile, and checks on the HTML it produces (static;
the browser test, tests/book/test_browser.py, opens the same build in Chromium)."""

import re
from pathlib import Path

from bookpipe.chapters import drop_hidden_widget_state
from bookpipe.layout import ROOT


# The smoke build itself is the session fixture ``built`` in conftest.py (shared with
# test_browser.py).


def _text(path: Path) -> str:
    html = path.read_text()
    return re.sub(
        r"<[^>]+>", " ", re.sub(r"<script.*?</script>|<style.*?</style>", " ", html, flags=re.S)
    )


def test_every_page_is_built(built):
    pages = {p.relative_to(built).as_posix() for p in built.rglob("*.html")}
    for page in (
        "index.html",
        "book/intro.html",
        "book/preliminaries.html",
        "book/methodology.html",
        "book/chapters/debruin2024/baseline.html",
        "book/bibliography.html",
    ):
        assert page in pages


def test_baseline_chapter_has_its_figures_tables_and_verdicts(built):
    page = built / "book/chapters/debruin2024/baseline.html"
    html = page.read_text()
    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(images) >= 2, "training curves and Figure 1"
    for src in images:
        assert (page.parent / src).resolve().is_file(), src
    text = _text(built / "book/chapters/debruin2024/baseline.html")
    assert "Traceback (most recent call last)" not in text
    assert "output traceback" not in html and "output stderr" not in html, (
        "no error or warning output in the chapter"
    )
    for claim in ("C1", "C2", "C3"):
        assert re.search(
            rf"{claim}\s+.*?(not reproduced|partly reproduced|reproduced)", text, flags=re.S
        )
    assert "all checks passed" in text
    # The parameters and injected-parameters cells are removed; the validated configuration is shown
    # instead.
    assert "# Parameters" not in text and not re.search(r"n_train\s*=\s*\d", text)
    assert "Parameters: profile" in text and "n_train" in text


def test_math_is_served_from_the_build_not_a_cdn(built):
    """MathJax 3 comes from _static/ (sphinx-mathjax-offline), at the mathjax_path of
    _config.yml."""
    import yaml

    mathjax_path = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"][
        "mathjax_path"
    ]
    assert "://" not in mathjax_path
    assert (built / "_static" / mathjax_path).is_file()
    assert (built / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir(), (
        "the CHTML fonts MathJax loads at run time"
    )
    pages_with_math = 0
    for page in built.rglob("*.html"):
        html = page.read_text()
        scripts = [
            src
            for src in re.findall(r'<script[^>]+src="([^"]+)"', html)
            if "mathjax" in src.lower()
        ]
        assert not [src for src in scripts if "://" in src or src.startswith("//")], (page, scripts)
        if 'class="math' in html:
            pages_with_math += 1
            assert len(scripts) == 1, (page, scripts)
            assert (page.parent / scripts[0]).resolve() == (
                built / "_static" / mathjax_path
            ).resolve(), (page, scripts)
    assert pages_with_math >= 3, "the front matter and the chapters have equations"


def test_no_numpy_scalar_reprs_in_the_prose(built):
    """NumPy 2 writes a scalar as ``np.int64(10)``; computed text must format numbers for
    readers."""
    for page in built.rglob("*.html"):
        leaks = re.findall(
            r"np\.(?:u?int(?:8|16|32|64)|float(?:16|32|64)|bool_?|str_)\(", _text(page)
        )
        assert not leaks, (page.relative_to(built).as_posix(), leaks[:3])


def test_no_untypeset_tex_in_paragraphs(built):
    """Computed Markdown outputs are parsed as CommonMark, without dollar math: TeX written there
    would reach the reader as raw ``$q^\\delta$``. Prose math becomes ``\\(…\\)`` spans."""
    for page in built.rglob("*.html"):
        for paragraph in re.findall(r"<p>(.*?)</p>", page.read_text(), flags=re.S):
            text = re.sub(r"<[^>]+>", "", paragraph)
            assert not re.search(r"\$[^$\n]+\$", text), (
                page.relative_to(built).as_posix(),
                text[:200],
            )


def test_bibliography_resolves_citations(built):
    text = _text(built / "book/bibliography.html")
    assert "Dinh" in text and "Kirichenko" in text
    assert "??" not in _text(built / "book/preliminaries.html")


def test_widget_state_is_dropped_only_when_no_widget_is_shown(tmp_path):
    """A removed live widget must not make the page load the widget manager from a CDN."""
    import nbformat

    view = nbformat.v4.new_output(
        "display_data",
        data={
            "application/vnd.jupyter.widget-view+json": {
                "model_id": "m",
                "version_major": 2,
                "version_minor": 0,
            },
            "text/plain": "VBox()",
        },
    )
    state = {
        "application/vnd.jupyter.widget-state+json": {
            "state": {"m": {}},
            "version_major": 2,
            "version_minor": 0,
        }
    }
    for tags, kept in (
        (["remove-cell"], False),
        (["remove-output"], False),
        ([], True),
        (["remove-input"], True),
    ):
        cell = nbformat.v4.new_code_cell("explorer()", outputs=[view], metadata={"tags": tags})
        nb = nbformat.v4.new_notebook(cells=[cell], metadata={"widgets": state})
        path = tmp_path / "chapter.ipynb"
        nbformat.write(nb, path)
        drop_hidden_widget_state(path)
        assert ("widgets" in nbformat.read(path, as_version=4).metadata) is kept, tags
