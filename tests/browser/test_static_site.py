"""`make site`: every page of the static site, served from 127.0.0.1 with every other address blocked,
shows typeset math (MathJax from the local copy, in its TeX fonts, no raw $...$ left) and every stored
figure (each <img> loaded, naturalWidth > 0, with real alt text), a picture for every widget app whose
stored output carries one (the live view, bqplot, needs a kernel; an app without a figure shows its
table), is titled with its notebook's title,
hides exercise code, and no request of any kind fails (scripts, fonts, images). Screenshots: the index
(site_index.png), page 02 and a close-up of typeset math (site_math_tex_fonts.png).
"""

from __future__ import annotations

import functools
import http.server
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from conftest import NOTEBOOKS, REPO

sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests"))
import build_site  # tools/ is not a package
from test_notebook_structure import app_cells  # which cells show an app: one definition for all tests

JS_MATHJAX_DONE = """() => new Promise(done => {
  const wait = () => (window.MathJax && MathJax.startup && MathJax.startup.promise)
    ? MathJax.startup.promise.then(() => document.fonts.ready).then(() => done(true))
    : setTimeout(wait, 100);
  wait(); })"""
JS_TYPESET = "() => document.querySelectorAll('mjx-container').length"
# The TeX fonts MathJax loaded (MJXTEX, MJXZERO: its CHTML fonts) and any font that failed.
JS_FONTS = """() => [...document.fonts].map(f => [f.family.replace(/"/g, ''), f.status])"""
# Markdown text as a reader sees it: no code, no MathJax's source scripts.
JS_MARKDOWN_TEXT = """() => [...document.querySelectorAll('.jp-RenderedMarkdown')].map(e => {
  const c = e.cloneNode(true);
  c.querySelectorAll('code, pre, script, mjx-container').forEach(x => x.remove());
  return c.textContent; }).join('\\n')"""
JS_INDEX_TEXT = """() => { const c = document.body.cloneNode(true);
  c.querySelectorAll('code, script, mjx-container').forEach(x => x.remove()); return c.textContent; }"""
JS_BROKEN_IMAGES = """() => [...document.images]
  .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))"""
# Per cell of the page (by the notebook's cell id): how many pictures (loaded and drawn) and tables its
# outputs show.
JS_CELL_PICTURES = """() => Object.fromEntries([...document.querySelectorAll('.jp-Cell[id^="cell-id="]')]
  .map(c => [c.id.slice('cell-id='.length), {
    pictures: [...c.querySelectorAll('.jp-OutputArea-output img')]
      .filter(i => i.complete && i.naturalWidth > 0).length,
    tables: c.querySelectorAll('.jp-OutputArea-output table').length}]))"""
RAW_MATH = re.compile(r"\$[^$\s][^$]*\$")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Path]]]:
    """The site built from the stored notebooks, served on 127.0.0.1: (base URL, pages)."""
    out = tmp_path_factory.mktemp("site")
    pages = build_site.build(sorted(NOTEBOOKS.glob("*.ipynb")), out)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", pages
    finally:
        server.shutdown()
        server.server_close()


def offline(page, base: str) -> list[str]:
    """Block every request that does not go to ``base``; returns the list of blocked URLs, to which
    every failed request (a missing file, a font not found) and every HTTP error is added too."""
    blocked: list[str] = []
    page.on("requestfailed", lambda request: blocked.append(f"failed: {request.url}"))
    page.on("response", lambda response: response.status >= 400 and blocked.append(
        f"HTTP {response.status}: {response.url}"))

    def route(r) -> None:
        if r.request.url.startswith((base, "data:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return blocked


@pytest.mark.browser
def test_index_lists_every_notebook_in_order(site, page, screenshots) -> None:
    base, pages = site
    blocked = offline(page, base)
    page.goto(f"{base}/index.html")
    links = page.locator("ol.path > li > a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert links == [p.name for p in pages[1:]], f"index links {links}"
    page.evaluate(JS_MATHJAX_DONE)
    assert not RAW_MATH.findall(page.evaluate(JS_INDEX_TEXT)), "math left untypeset in the index"
    page.screenshot(path=str(screenshots / "site_index.png"), full_page=True)
    assert not blocked, f"the index asked the network for {blocked}"


@pytest.mark.browser
@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_page_shows_math_and_figures_offline(notebook, site, page, screenshots) -> None:
    base, _ = site
    blocked = offline(page, base)
    page.goto(f"{base}/{notebook.stem}.html", wait_until="load")
    page.evaluate(JS_MATHJAX_DONE)
    fonts = page.evaluate(JS_FONTS)
    assert not [f for f in fonts if f[1] == "error"], f"{notebook.name}: fonts that failed: {fonts}"
    assert page.title() == build_site.strip_markdown(build_site.title(nbformat.read(notebook, 4)))
    alts = page.locator("img").evaluate_all("is => is.map(i => i.alt)")
    assert all(alt and not build_site.NO_ALT.match(alt) for alt in alts), f"{notebook.name}: {alts}"
    assert not page.locator(".jp-CodeCell .jp-InputArea").filter(
        has_text=re.compile(r"Exercise\(|exercises\.show\(")).count(), "exercise code shown"
    markdown = page.evaluate(JS_MARKDOWN_TEXT)
    raw = RAW_MATH.findall(markdown)
    assert not raw, f"{notebook.name}: math left untypeset: {raw[:5]}"
    if "$" in notebook.read_text(encoding="utf-8"):
        assert page.evaluate(JS_TYPESET) > 0, f"{notebook.name}: no MathJax output in the page"
        loaded = {family for family, status in fonts if status == "loaded"}
        assert any(family.startswith("MJXTEX") for family in loaded), f"no TeX font loaded: {fonts}"
    broken = page.evaluate(JS_BROKEN_IMAGES)
    assert not broken, f"{notebook.name}: images that did not load: {broken}"
    nb = nbformat.read(notebook, 4)
    shown = page.evaluate(JS_CELL_PICTURES)
    for index in app_cells(nb):
        cell = nb.cells[index]
        seen = shown.get(cell.get("id"), {"pictures": 0, "tables": 0})
        stored = any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
        assert seen["pictures"] or (not stored and seen["tables"]), (
            f"{notebook.name}: the app of cell {index} shows no picture on its page"
            + (" although its output stores a PNG (its text/html, which the page shows instead, has no "
               "<img>)" if stored else ""))
    assert page.locator(f'a[href="{notebook.stem}.html"], a[href="00_start_here.html"]').count(), (
        f"{notebook.name}: no navigation links to the pages")
    assert "make lab" in page.locator("body").text_content(), "no line on how to run it live"
    if notebook.name.startswith("02"):
        page.screenshot(path=str(screenshots / f"site_{notebook.stem}.png"))
        display = page.locator("mjx-container[display='true']").first
        display.scroll_into_view_if_needed()
        display.locator("xpath=ancestor::div[contains(@class,'jp-RenderedMarkdown')]").screenshot(
            path=str(screenshots / "site_math_tex_fonts.png"))
    assert not blocked, f"{notebook.name}: the page asked the network for {blocked[:5]}"
