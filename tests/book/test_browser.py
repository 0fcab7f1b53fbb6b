"""Every page of the smoke build, opened in headless Chromium as a reader would see it.

The ci-profile build (the session fixture ``built`` in conftest.py) is served on 127.0.0.1 and each
``.html`` page is loaded in ONE headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
which ``python3 pipeline.py test`` installs when missing; the fixture ``browser`` is in
tests/book/conftest.py). The browser resolves no host name but 127.0.0.1, so the book must work
with no network. For each page:

- it loads: a title, and the server answered no request of the page with an error (404...);
- every image in the article is decoded (``naturalWidth > 0``);
- MathJax (served from the build) finished, every ``.math`` element holds an ``mjx-container``, no
  ``mjx-merror``, and no raw ``$$``, ``\\begin{``, ``\\(`` or ``\\[`` is left in the article's text
  outside code;
- no output shows a Python traceback;
- every relative link points to a file of the build;
- nothing was requested from anywhere but the local server, and the console logged no error
  (less two known, harmless ones of the theme stack: ``KNOWN_CONSOLE_ERRORS``);
- a full-page screenshot is saved as ``<build>/_build/screenshots/<page path, / as __>.png``.

Not opened: ``genindex.html`` and ``search.html`` (Sphinx boilerplate: the book defines no index
entries, and the search page is Sphinx's own), and the theme's template partials under
``_static/``. ``index.html`` is Jupyter Book's redirect to the root page; it is followed.
"""

from __future__ import annotations

import base64
import functools
import http.server
import re
import struct
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
#: Sphinx boilerplate pages that are not opened (see the module docstring).
SKIPPED = ("genindex.html", "search.html")


def book_pages(html_dir: Path) -> list[str]:
    """Every page of the build (relative POSIX paths), less the Sphinx boilerplate and
    ``_static``/``_sources``."""
    pages = []
    for path in sorted(html_dir.rglob("*.html")):
        rel = path.relative_to(html_dir).as_posix()
        if rel.split("/")[0] in ("_static", "_sources", "_images") or rel in SKIPPED:
            continue
        pages.append(rel)
    return pages


def toc_pages() -> set[str]:
    """The pages _toc.yml asks for (``root`` and every ``file``), as ``.html`` paths."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {toc["root"]}

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.add(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return {f"{Path(f).with_suffix('').as_posix()}.html" for f in files}


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the build quietly and records ``(path, status)`` of every request."""

    log: list[tuple[str, int]]

    def log_request(self, code="-", size="-"):
        self.log.append((urlsplit(self.path).path, int(getattr(code, "value", code))))

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="module")
def server(built):
    """The HTML build on http://127.0.0.1:<free port>/, served from a thread."""
    requests: list[tuple[str, int]] = []
    handler = type("Handler", (_Handler,), {"log": requests})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(built))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


_WAIT_FOR_PAGE = """
const done = arguments[arguments.length - 1];
(async () => {
  const article = document.querySelector("article") || document.querySelector("main") \
|| document.body;
  // Images: load lazy ones too, then wait until each is decoded (or has failed).
  const imgs = Array.from(article.querySelectorAll("img"));
  for (const img of imgs) img.loading = "eager";
  await Promise.all(imgs.map((img) => img.decode().catch(() => null)));
  let mathjax = "absent";
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; mathjax = "done"; } catch (e) { mathjax = "failed: " + e; }
  }
  done(mathjax);
})().catch((e) => done("script error: " + e));
"""

_INSPECT_PAGE = """
const article = document.querySelector("article") || document.querySelector("main") \
|| document.body;
// Visible prose of the article: text nodes outside code, scripts and typeset math.
const skip = "pre, code, script, style, mjx-container, .highlight";
const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
let prose = "";
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  if (!node.parentElement.closest(skip)) prose += node.textContent + " ";
}
return {
  title: document.title,
  images: Array.from(article.querySelectorAll("img"), (img) => \
[img.getAttribute("src"), img.naturalWidth]),
  math: article.querySelectorAll(".math").length,
  untypeset: Array.from(article.querySelectorAll(".math"))
    .filter((el) => !el.querySelector("mjx-container"))
    .map((el) => el.textContent.slice(0, 80)),
  containers: document.querySelectorAll("mjx-container").length,
  merrors: Array.from(document.querySelectorAll("mjx-merror"), (el) => \
el.getAttribute("data-mjx-error") || el.textContent),
  prose: prose,
  tracebacks: document.querySelectorAll(".output.traceback, .output.error").length,
  bodyText: document.body.innerText,
  links: Array.from(document.querySelectorAll("a[href]"), (a) => [a.getAttribute("href"), a.href]),
};
"""

_RAW_TEX = ("$$", "\\begin{", "\\end{", "\\(", "\\[")
#: Console errors of the pinned theme stack itself, harmless to a reader: Jupyter Book 1 includes
#: sphinx-thebe's config script twice (thebe is never launched: the book has no launch buttons), and
#: pydata-sphinx-theme reports the empty theme mode of a fresh browser profile before defaulting to
#: auto.
KNOWN_CONSOLE_ERRORS = (
    "Identifier 'THEBE_JS_URL' has already been declared",
    "Got invalid theme mode",
)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def _screenshot(driver, path: Path) -> tuple[int, int]:
    """A full-page PNG through the DevTools protocol, saved to ``path``: the viewport is set to the
    document's full height for the capture (the page lays out as in a tall window), then
    restored."""
    width = driver.execute_script("return window.innerWidth")
    height = driver.execute_script(
        "return Math.ceil(Math.max(document.documentElement.scrollHeight, "
        "document.body.scrollHeight))"
    )
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        # (captureBeyondViewport is not needed once the viewport holds the whole page, and together
        # with the override it shifts the layout sideways in Chromium 156.)
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "fromSurface": True}
        )
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    data = base64.b64decode(shot["data"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return _png_size(data)


def _requested_urls(driver) -> list[str]:
    """URLs the page asked for since the last call (from Chromium's performance log)."""
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _check_page(
    driver, base: str, built: Path, page: str, requests: list, shots: Path
) -> tuple[list[str], str]:
    """Open ``page`` and return (problems found, the page finally shown)."""
    from selenium.common.exceptions import WebDriverException

    problems: list[str] = []
    driver.get_log("performance"), driver.get_log("browser")  # drop what earlier pages left
    del requests[:]
    html = (built / page).read_text()
    redirect = re.search(r'http-equiv="Refresh"\s+content="\d+;\s*url=([^"]+)"', html, flags=re.I)
    driver.get(f"{base}/{page}")
    if redirect:  # Jupyter Book's index.html: follow it to the root page
        target = (Path(page).parent / redirect.group(1)).as_posix()
        if not (built / target).is_file():
            problems.append(f"redirects to {target}, which is not in the build")
        deadline = time.monotonic() + 15

        def arrived() -> (
            bool
        ):  # on the target, and its document fully loaded (deferred scripts run)
            try:
                return (
                    urlsplit(driver.current_url).path.lstrip("/") == target
                    and driver.execute_script("return document.readyState") == "complete"
                )
            except WebDriverException:  # the old document went away mid-call
                return False

        while not arrived() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not arrived():
            problems.append(f"did not redirect to {target} (at {driver.current_url})")
        shown = target
    else:
        shown = page
    status = driver.execute_async_script(_WAIT_FOR_PAGE)
    info = driver.execute_script(_INSPECT_PAGE)

    if not info["title"].strip() or "404" in info["title"] or "Error response" in info["title"]:
        problems.append(f"bad title {info['title']!r}")
    errors = sorted(
        {
            f"{code} {path}"
            for path, code in requests
            if code >= 400 and not path.endswith("favicon.ico")
        }
    )
    if errors:
        problems.append(f"server errors: {errors}")
    for src, width in info["images"]:
        if not width:
            problems.append(f"image not shown (naturalWidth 0): {src}")
    if info["math"]:
        if status != "done":
            problems.append(f"MathJax did not finish: {status}")
        if info["untypeset"]:
            problems.append(
                f"{len(info['untypeset'])} of {info['math']} math elements not typeset, "
                f"e.g. {info['untypeset'][:3]}"
            )
        if not info["containers"]:
            problems.append("no mjx-container on a page with math")
    if info["merrors"]:
        problems.append(f"MathJax errors: {info['merrors'][:5]}")
    raw = [s for s in _RAW_TEX if s in info["prose"]]
    if raw:
        problems.append(f"raw TeX in the article text: {raw}")
    if info["tracebacks"] or "Traceback (most recent call last)" in info["bodyText"]:
        problems.append("an output shows a Python traceback")
    for href, absolute in info["links"]:
        if (
            href.startswith("#")
            or re.match(r"^[a-z][a-z0-9+.-]*:", href, flags=re.I)
            or href.startswith("//")
        ):
            continue  # same-page anchor, or external (http:, https:, mailto:...)
        parts = urlsplit(absolute)
        if not absolute.startswith(base + "/"):
            problems.append(f"relative link {href!r} leaves the book ({absolute})")
            continue
        rel = unquote(parts.path).lstrip("/")
        if not rel or rel.endswith("/"):
            rel += "index.html"
        if not (built / rel).is_file():
            problems.append(f"broken link {href!r} (no {rel} in the build)")
    # Network requests only (the browser's own chrome:// pages, data: and blob: URLs are no
    # traffic).
    outside = sorted(
        {
            u
            for u in _requested_urls(driver)
            if re.match(r"^(https?|wss?|ftp):", u) and not u.startswith(base + "/")
        }
    )
    if outside:
        problems.append(f"requested from outside the book: {outside}")
    console = [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE"
        and "favicon.ico" not in e["message"]
        and not any(known in e["message"] for known in KNOWN_CONSOLE_ERRORS)
    ]
    if console:
        problems.append(f"console errors: {console}")

    width, height = _screenshot(driver, shots / f"{page.replace('/', '__')}.png")
    if not (width > 0 and height > 0):
        problems.append(f"empty screenshot ({width}×{height})")
    return problems, shown


def test_every_page_renders_in_a_headless_browser(built, server, browser, capsys):
    base, requests = server
    pages = book_pages(built)
    missing = toc_pages() - set(pages)
    assert not missing, f"pages of _toc.yml not found in the build: {sorted(missing)}"
    shots = built.parent / "screenshots"
    start = time.perf_counter()
    report, failures = [], {}
    for page in pages:
        problems, shown = _check_page(browser, base, built, page, requests, shots)
        report.append(
            f"  {'FAIL' if problems else 'ok  '} {page}" + (f" -> {shown}" if shown != page else "")
        )
        if problems:
            failures[page] = problems
    for page in pages:
        shot = shots / f"{page.replace('/', '__')}.png"
        assert shot.stat().st_size > 0 and _png_size(shot.read_bytes())[1] > 0, shot
    with capsys.disabled():
        print(
            f"\n[browser] {len(pages)} pages checked in headless Chromium in "
            f"{time.perf_counter() - start:.1f} s (skipped: {', '.join(SKIPPED)}); "
            f"screenshots in {shots}"
        )
        print("\n".join(report))
    assert not failures, "\n".join(
        f"{page}:\n  - " + "\n  - ".join(problems) for page, problems in failures.items()
    )
