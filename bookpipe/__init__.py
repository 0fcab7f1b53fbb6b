"""The book's pipeline, behind ``pipeline.py``: executing the chapters, building the book, serving
the live explorer and running the tests.

``pipeline.py`` keeps only what works with the standard library alone (creating ``.venv``,
installing ``requirements.txt`` and this project into it, re-running itself there) and its command
line; each command then calls one function of this package, inside the virtual environment:

- :mod:`bookpipe.layout`: where things are (the checkout, ``.venv``, ``_build``), the chapters in
  the order of ``_toc.yml``, and the ``[pipeline]`` log line;
- :mod:`bookpipe.chapters`: one chapter executed with papermill (``python3 pipeline.py chapter``),
  the kernels' environment, parameter and scheduler checks before any kernel starts, progress while
  it runs;
- :mod:`bookpipe.book`: every chapter executed into a staging tree and the HTML built
  (``python3 pipeline.py build``);
- :mod:`bookpipe.explorer`: the live explorer served with Voilà (``python3 pipeline.py explore``);
- :mod:`bookpipe.testing`: Chromium for the browser tests, and the test run
  (``python3 pipeline.py test``).

The package is installed (editable) into ``.venv`` with ``flowcore``, so tests import it as they
import ``flowcore``. Its modules import the notebook tooling (jupytext, papermill, nbformat) only
where they use it.
"""
