"""The live explorer as a reader uses it: ``python3 pipeline.py explore`` serves it with a running
kernel, and headless Chromium changes its dropdowns.

The ci profile's results are read from the cache of the chapters nbval executed in the session when
the generalization chapter (which computes all of them) passed there, else computed into a
temporary cache through the library (a minute on two busy cores); then
``pipeline.py explore --profile ci --port <free>`` is started on that cache
(``$FLOWCORE_CACHE``) in its own process group, which is stopped after the tests whatever their
outcome (SIGTERM, so Voilà shuts its kernel down; SIGKILL if that hangs). In the page (the
``browser`` fixture of conftest.py: no network but 127.0.0.1) the D and family dropdowns are
changed, and the figure and the table must then show that member exactly as the library computes it:

- the table: the caption names the member and every row is ``member_numbers(results, D, family, s,
  t)`` formatted to the 4 decimals shown;
- the figure: an SVG whose text (title, tick labels, axis labels, legend) is that of
  ``member_svg(results, D, family, s, t)``, so its title names the member and its axes follow that
  member's curves; it differs from the figure shown before the change.

The page must request nothing but the local server. A second, fast test checks that ``explore``
refuses with the "build first" line on an empty cache, without starting a server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from unittest import mock
from urllib.parse import unquote

import pytest
import torch

from bookpipe.testing import PLUGIN
from flowcore.config import resolve
from flowcore.report.explorer import member_numbers, member_svg, member_title
from flowcore.studies.debruin2024 import ThesisConfig, evaluation

ROOT = Path(__file__).resolve().parents[2]
PROFILE = "ci"
#: How long the server may take to answer, and the page to show the explorer or to follow a change.
START_TIMEOUT, PAGE_TIMEOUT = 90, 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _explore(cache: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "FLOWCORE_CACHE": str(cache), "FLOWCORE_PROGRESS": "0"}
    command = [sys.executable, str(ROOT / "pipeline.py"), "explore", "--profile", PROFILE, *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, **kwargs)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the process group (the pipeline and Voilà), SIGKILL whatever still runs 20 s
    later."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break  # the whole group is gone
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    process.wait()


@pytest.fixture(scope="module")
def ci_results(request, tmp_path_factory):
    """``(cache, results)``: the ci profile's results, from the chapters' cache when the
    generalization chapter passed under nbval in this session, else computed into a fresh cache
    (one torch thread: faster than two when another process holds a core)."""
    runs = request.config.pluginmanager.get_plugin(PLUGIN)
    executed, _ = runs.for_build(PROFILE) if runs else ({}, [])
    if "debruin2024/generalization" in executed and runs.kernel_cache():
        cache = Path(runs.kernel_cache())
    else:
        cache = tmp_path_factory.mktemp("explorer-cache")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": str(cache), "FLOWCORE_PROGRESS": "0"}):
            results = evaluation.results(resolve(ThesisConfig, PROFILE).config, progress=False)
    finally:
        torch.set_num_threads(threads)
    return cache, results


@pytest.fixture(scope="module")
def explorer_url(ci_results, tmp_path_factory):
    """``pipeline.py explore`` on the ci cache; yields its address once it printed it."""
    cache, _ = ci_results
    port = _free_port()
    log = tmp_path_factory.mktemp("explore") / "server.log"
    with open(log, "wb") as out:
        server = _explore(
            cache, "--port", str(port), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while f"the explorer is at {url}" not in log.read_text(errors="replace"):
            if server.poll() is not None or time.monotonic() > deadline:
                state = (
                    f"exited with {server.returncode}"
                    if server.poll() is not None
                    else f"printed no address within {START_TIMEOUT} s"
                )
                pytest.fail(
                    f"pipeline.py explore {state}; its output:\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.5)
        yield url, log
    finally:
        _stop_group(server)
    assert not _answers(port), f"the server still answers on port {port} after it was stopped"


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


#: What the page shows: the dropdowns, the figure's SVG source and the numbers table.
_READ_PAGE = """
const out = document.querySelector(".widget-output");
const dropdowns = Array.from(document.querySelectorAll(".widget-dropdown"), (d) => {
  const select = d.querySelector("select");
  return [d.querySelector("label").textContent.trim(), \
select.options[select.selectedIndex]?.textContent ?? null];
});
let svg = null;
if (out) {
  const inline = out.querySelector("svg");
  const img = out.querySelector("img[src^='data:image/svg+xml']");
  svg = inline ? inline.outerHTML : img ? img.getAttribute("src") : null;
}
const table = out && out.querySelector("table");
return {
  dropdowns: dropdowns,
  svg: svg,
  caption: table && table.caption ? table.caption.textContent.trim() : null,
  rows: table ? Array.from(table.querySelectorAll("tbody tr"), (tr) => \
[tr.querySelector("th").textContent.trim(), tr.querySelector("td").textContent.trim()]) : [],
  errors: document.querySelectorAll(\
".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr'], \
.jp-OutputArea-output.jp-mod-error").length,
  text: document.body.innerText,
};
"""


def _svg_texts(svg: str) -> list[str]:
    """The text elements of an SVG given as markup or as a ``data:image/svg+xml`` URL."""
    if svg.startswith("data:"):
        header, _, data = svg.partition(",")
        if ";base64" in header:
            import base64

            svg = base64.b64decode(data).decode()
        else:
            svg = unquote(data)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg)
    root = ET.fromstring(svg)
    return [
        "".join(el.itertext()).strip() for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "text"
    ]


def _expected(results, dim, family, s, t) -> dict:
    numbers = member_numbers(results, dim, family, s, t)
    return {
        "caption": member_title(dim, family, s, t),
        "rows": [[name, f"{value:.4f}"] for name, value in numbers["value"].items()],
        "svg texts": _svg_texts(member_svg(results, dim, family, s, t)),
    }


def _wait_for(driver, caption: str) -> dict:
    """Wait until the table is captioned ``caption`` and the figure shows the same member; return
    the page."""
    deadline = time.monotonic() + PAGE_TIMEOUT
    page: dict = {}
    while time.monotonic() < deadline:
        page = driver.execute_script(_READ_PAGE)
        if (
            page["caption"] == caption
            and page["svg"]
            and caption in _svg_texts(page["svg"])
            and len(page["rows"]) > 0
        ):
            return page
        time.sleep(0.5)
    pytest.fail(
        f"the explorer did not show {caption!r} within {PAGE_TIMEOUT} s; the page shows caption "
        f"{page.get('caption')!r}, dropdowns {page.get('dropdowns')}:\n"
        f"{page.get('text', '')[:2000]}"
    )


def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            params = message["params"]
            urls.append(params["request"]["url"] if "request" in params else params["url"])
    return urls


def test_explorer_follows_the_dropdowns_in_a_browser(ci_results, explorer_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _, results = ci_results
    url, log = explorer_url
    dims = sorted(results.table["D"].unique().tolist())
    families = list(dict.fromkeys(results.table["family"]))
    first = (dims[0], families[0], 1.0, 0.0)  # the explorer's initial member
    target = (dims[-1], next(f for f in families if f != families[0]), 1.0, 0.0)
    assert target[0] != first[0]

    browser.get_log("performance")  # drop what an earlier module left
    browser.get(url)
    before = _wait_for(browser, member_title(*first))
    assert before["dropdowns"] == [
        ["D", str(first[0])],
        ["family", first[1]],
        ["s", "1.0"],
        ["t", "0.0"],
    ]
    expected = _expected(results, *first)
    assert before["rows"] == expected["rows"]
    assert _svg_texts(before["svg"]) == expected["svg texts"]

    selects = {
        d.find_element(By.TAG_NAME, "label").text.strip(): d.find_element(By.TAG_NAME, "select")
        for d in browser.find_elements(By.CSS_SELECTOR, ".widget-dropdown")
    }
    Select(selects["D"]).select_by_visible_text(str(target[0]))
    _wait_for(browser, member_title(target[0], first[1], 1.0, 0.0))
    Select(selects["family"]).select_by_visible_text(target[1])
    after = _wait_for(browser, member_title(*target))

    expected = _expected(results, *target)
    assert after["dropdowns"] == [
        ["D", str(target[0])],
        ["family", target[1]],
        ["s", "1.0"],
        ["t", "0.0"],
    ]
    assert after["caption"] == expected["caption"]
    assert after["rows"] == expected["rows"], (
        "the numbers shown are not the library's for this member"
    )
    assert _svg_texts(after["svg"]) == expected["svg texts"], (
        "the figure is not the library's for this member"
    )
    assert after["svg"] != before["svg"] and after["rows"] != before["rows"]
    assert after["errors"] == 0 and "Traceback" not in after["text"], after["text"][:2000]

    outside = sorted(
        {
            u
            for u in _requested_urls(browser)
            if re.match(r"^(https?|wss?):", u)
            and not re.match(rf"^(http|ws)://127\.0\.0\.1:{url.split(':')[2].rstrip('/')}/", u)
        }
    )
    assert not outside, f"the page requested from outside the local server: {outside}"
    severe = [
        e["message"]
        for e in browser.get_log("browser")
        if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]
    ]
    assert not severe, f"console errors: {severe}"


def test_explore_asks_for_a_build_on_an_empty_cache(tmp_path):
    run = _explore(tmp_path / "empty", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 1, output
    assert (
        f"[pipeline] no cached results for profile '{PROFILE}' in {tmp_path / 'empty'}; "
        f"build them first: python3 pipeline.py build --profile {PROFILE}" in output
    )
    assert "Voil" not in output, "no server was started"
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir()), (
        "nothing was trained"
    )
