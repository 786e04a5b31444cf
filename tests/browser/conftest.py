"""Fixtures for the browser tests: one headless Chromium and one JupyterLab server per session.

Set ``BATCHLAB_BROWSER_NOTEBOOKS=/some/folder`` to run the suite against another folder of notebooks
(e.g. a scratch copy with a deliberately broken widget); the stored notebooks are never touched
either way, because the servers serve a temporary copy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = Path(os.environ.get("BATCHLAB_BROWSER_NOTEBOOKS", REPO / "notebooks")).resolve()
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = os.environ.get("BATCHLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Server]:
    """JupyterLab on 127.0.0.1 serving a temporary copy of the notebooks, with a random token."""
    with servers.jupyterlab(NOTEBOOKS, tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session (each test opens its own context: fresh cookies)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run `make browser` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh page in a fresh context, sized like a laptop screen; closed after the test.

    JavaScript errors the page throws are collected in ``page.batchlab_errors``.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    new_page = context.new_page()
    new_page.batchlab_errors = []
    new_page.on("pageerror", lambda error: new_page.batchlab_errors.append(str(error)))
    try:
        yield new_page
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Folder for full-page screenshots (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
