"""Lecture mode: every notebook opens as a RISE slideshow, with one slide per "slide" cell.

jupyterlab-rise renders the stored notebook with reveal.js. The deck must build (reveal.js ready) and
its top-level slides must be exactly the cells whose slide type is "slide", so the slide metadata
checked by tests/test_notebook_structure.py really produces the deck a lecturer will present.
"""

from __future__ import annotations

import contextlib
import re

import pytest
from conftest import NOTEBOOKS
from jupyter_page import notebook_cells

NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.browser
@pytest.mark.parametrize("notebook", NOTEBOOK_FILES, ids=lambda path: path.name)
def test_notebook_opens_as_a_slideshow(notebook, lab_server, page, screenshots) -> None:
    expected = sum(
        1 for cell in notebook_cells(notebook)
        if cell.get("metadata", {}).get("slideshow", {}).get("slide_type") == "slide"
    )
    try:
        page.goto(f"{lab_server.url}/rise/{notebook.name}?token={lab_server.token}")
        page.wait_for_selector(".reveal.ready .slides > section", state="attached",
                               timeout=120_000)
        slides = page.locator(".reveal .slides > section").count()
        assert slides == expected, (
            f"{notebook.name}: RISE shows {slides} slides, the notebook has {expected} 'slide' cells"
        )
        title = page.locator(".reveal .slides > section").first.text_content()
        heading = "".join(notebook_cells(notebook)[0]["source"]).splitlines()[0].lstrip("# ")
        plain = re.split(r"[$`*_\[]", heading)[0].strip()  # the part before any math or markup
        assert plain in title, f"{notebook.name}: the first slide does not show {plain!r}"
        page.screenshot(path=str(screenshots / f"rise_{notebook.stem}.png"))
    finally:
        with contextlib.suppress(Exception):
            lab_server.shutdown_kernels()
