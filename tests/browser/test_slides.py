"""Lecture mode: every notebook opens as a jupyterlab-slideshow deck, and a widget app on a slide is live.

jupyterlab-slideshow (the "deck" commands) presents the notebook itself, so widgets stay real
controls. For each notebook the deck is started three times, as a lecturer might: with a middle cell
selected (it shows that cell's slide, and → moves on), with the first cell selected (the navigation
line, which opens the title slide: the deck shows the title; screenshot ``slides_NN_name.png``), and
with the last cell selected (where Run All leaves the selection): never a blank page;
for one notebook with an app the test runs it, steps forward slide by slide until the app's slider
shows, moves it with a key press and waits until the figure below it redraws (its canvas pixels
change), at 1280 x 720, a projector's size.
"""

from __future__ import annotations

import contextlib
import sys

import pytest
from conftest import NOTEBOOKS, REPO
from jupyter_page import (
    Interaction,
    interact_and_expect_redraw,
    notebook_cells,
    open_in_lab,
    restart_and_run_all,
    wait_widgets_loaded,
    widget_failures,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))
SCREEN = {"width": 1280, "height": 720}
APP = ("02_relationship_formula.ipynb", Interaction("slider", "batch size B"))
MAX_SLIDES = 60

JS_COMMAND = "(id) => window.jupyterapp.commands.execute(id)"
# The first cell that is not skipped in slides: cell 0, the navigation line that opens the title slide.
JS_FIRST_CELL = """() => { const nb = window.jupyterapp.shell.currentWidget.content;
  const skipped = (cell) => ((cell.model.getMetadata('slideshow') || {}).slide_type === 'skip');
  let index = 0; while (index < nb.widgets.length - 1 && skipped(nb.widgets[index])) index++;
  nb.activeCellIndex = index; nb.mode = 'command'; }"""
# Select cell i (negative: from the end), as a click on it would.
JS_SELECT_CELL = """(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCellIndex = i < 0 ? nb.widgets.length + i : i; nb.mode = 'command'; }"""
# What the deck shows: the cells on screen now that lie in the window with some height (none: a blank page).
JS_SHOWN_CELLS = """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell.jp-deck-mod-onscreen')]
  .filter(c => { const r = c.getBoundingClientRect();
                 return r.height > 0 && r.bottom > 0 && r.top < innerHeight; }).length"""
JS_IN_DECK = "() => document.body.dataset.jpDeckMode === 'presenting'"
LAB_WINDOW = {"width": 1400, "height": 1000}  # the browser tests' usual window (conftest)
# The active cell's index (the deck moves it as it moves between slides).
JS_ACTIVE = "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex"


def start_deck(page, cell: int | None = None) -> None:
    """Start the slideshow from cell ``cell`` (negative: from the end; None: the first cell shown in
    slides) and wait until the deck is shown."""
    if cell is None:
        page.evaluate(JS_FIRST_CELL)
    else:
        page.evaluate(JS_SELECT_CELL, cell)
    page.evaluate(JS_COMMAND, "deck:start")
    page.wait_for_function(JS_IN_DECK, timeout=30_000)


def deck_shows_a_slide(page) -> bool:
    """Whether the deck shows some cell in the window (a deck stranded on a skipped cell shows none)."""
    try:
        page.wait_for_function(f"() => ({JS_SHOWN_CELLS})() > 0", timeout=5_000)
    except PlaywrightTimeoutError:
        return False
    return True


def stop_deck(page) -> None:
    """Leave the slideshow if one is presenting (JupyterLab's menus are hidden while it is)."""
    if page.evaluate(JS_IN_DECK):
        page.evaluate(JS_COMMAND, "deck:stop")
        page.wait_for_function(f"() => !({JS_IN_DECK})()", timeout=10_000)


def in_view(locator) -> bool:
    """Whether an element is on the slide shown now, inside the window (the deck keeps the other
    slides' cells in the page, without the class ``jp-deck-mod-onscreen``)."""
    return locator.count() > 0 and locator.first.evaluate(
        """e => { const cell = e.closest('.jp-Cell');
                  if (!cell || !cell.classList.contains('jp-deck-mod-onscreen')) return false;
                  const r = e.getBoundingClientRect();
                  return r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= innerHeight; }""")


@pytest.mark.browser
@pytest.mark.parametrize("notebook", NOTEBOOK_FILES, ids=lambda path: path.name)
def test_notebook_opens_as_slides(notebook, lab_server, page, screenshots) -> None:
    page.set_viewport_size(SCREEN)
    heading = next("".join(c["source"]).splitlines()[0].lstrip("# ") for c in notebook_cells(notebook)
                   if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("# "))
    middle = len(notebook_cells(notebook)) // 2
    try:
        open_in_lab(page, lab_server.url, lab_server.token, notebook.name)
        start_deck(page, middle)  # first: the deck then remembers a later cell, as after a lecture
        assert deck_shows_a_slide(page), (
            f"{notebook.name}: a deck started on cell {middle} shows a blank page")
        active = page.evaluate(JS_ACTIVE)
        page.evaluate(JS_COMMAND, "deck:forward")
        page.wait_for_function(f"() => ({JS_ACTIVE})() !== {active}", timeout=10_000)
        stop_deck(page)
        start_deck(page, 0)  # the navigation line: it opens the title slide
        assert deck_shows_a_slide(page), f"{notebook.name}: a deck started on cell 0 shows a blank page"
        title = page.locator(".jp-MarkdownCell h1").first
        title.wait_for(state="visible")
        assert in_view(title), f"{notebook.name}: the title slide does not show the title"
        assert title.text_content().startswith(heading[:20]), (
            f"{notebook.name}: the first slide shows {title.text_content()!r}, not {heading!r}")
        page.screenshot(path=str(screenshots / f"slides_{notebook.stem}.png"))
        stop_deck(page)
        start_deck(page, -1)  # the bottom navigation line, where Run All leaves the selection
        assert deck_shows_a_slide(page), (
            f"{notebook.name}: a deck started on the last cell shows a blank page")
    finally:
        with contextlib.suppress(Exception):
            stop_deck(page)
        with contextlib.suppress(Exception):
            lab_server.shutdown_kernels()


@pytest.mark.browser
def test_a_widget_app_on_a_slide_is_live(lab_server, page, screenshots) -> None:
    name, interaction = APP
    page.set_viewport_size(LAB_WINDOW)
    try:
        open_in_lab(page, lab_server.url, lab_server.token, name)
        stop_deck(page)  # a deck left presenting (it hides the menus) by an earlier test or session
        restart_and_run_all(page)  # at the test's usual window size: all of JupyterLab's menus show
        wait_widgets_loaded(page)
        page.set_viewport_size(SCREEN)  # then the projector's 1280 x 720 for the slides
        start_deck(page)
        slider = page.locator(".widget-slider").filter(
            has=page.locator(f'.widget-label:text-is("{interaction.label}")'))
        for _ in range(MAX_SLIDES):
            if in_view(slider):
                break
            before = page.evaluate(JS_ACTIVE)
            page.evaluate(JS_COMMAND, "deck:forward")
            page.wait_for_function(f"() => ({JS_ACTIVE})() !== {before}", timeout=10_000)
        else:
            pytest.fail(f"{name}: no slide shows the {interaction.label!r} slider")
        page.screenshot(path=str(screenshots / "slides_app_before.png"))
        interact_and_expect_redraw(page, interaction)  # the figure's canvas pixels change
        page.screenshot(path=str(screenshots / "slides_app_after.png"))
        assert page.evaluate(JS_IN_DECK), "moving the slider left the slideshow"
        canvas = page.locator(".jupyter-matplotlib-canvas-div canvas")
        assert any(in_view(canvas.nth(i)) for i in range(canvas.count())), (
            f"{name}: the app's slide does not fit a {SCREEN['width']} x {SCREEN['height']} "
            "screen: its figure is below the bottom edge")
        assert not widget_failures(page)
    finally:
        with contextlib.suppress(Exception):
            lab_server.shutdown_kernels()


# The apps a lecturer presents, each on a slide of its own (tools/tidy_notebooks.py keeps them so).
APP_DECKS = {"01_definitions.ipynb": "BatchStepperApp", "02_relationship_formula.ipynb": "LearningRateApp",
             "06_training_simulator.ipynb": "TrainingSimulatorApp"}
# Keys a lecturer (or a presenter's clicker: PageDown/PageUp) steps with. ArrowRight jumps from slide
# to slide; Space and PageDown also enter each sub-slide and fragment (PageDown/PageUp come from the
# shortcuts in tests/browser/lab_overrides.json: jupyterlab-slideshow binds only arrows and Space).
STEP_KEYS = ["ArrowRight", "Space", "PageDown"]
JS_FOCUS_ACTIVE = "() => window.jupyterapp.shell.currentWidget.content.activeCell.node.focus()"
JS_FOCUSED = "() => { const e = document.activeElement; return e ? e.tagName + '.' + e.className : null; }"
JS_MENUS_SHOWN = """() => { const bar = document.querySelector('#jp-menu-panel, .lm-MenuBar');
  if (!bar) return false; const r = bar.getBoundingClientRect(); return r.height > 0 && r.width > 0; }"""


def app_cell_index(notebook, app: str) -> int:
    """The index of the cell that starts the slide showing widget app ``app`` (a class name)."""
    sys.path.insert(0, str(REPO / "tools"))
    import tidy_notebooks  # tools/ is not a package

    cells = notebook_cells(notebook)
    return next(i for i, c in enumerate(cells) if tidy_notebooks.shows_an_app(c)
                and app in "".join(c["source"]) + str(c.get("outputs"))
                and c.get("metadata", {}).get("slideshow", {}).get("slide_type") == "slide")


def fully_in_view(page, selector: str) -> bool:
    """Whether some element matching ``selector`` on the shown slide lies wholly inside the window."""
    return page.evaluate(
        """s => [...document.querySelectorAll(s)].some(e => {
             const cell = e.closest('.jp-Cell');
             if (!cell || !cell.classList.contains('jp-deck-mod-onscreen')) return false;
             const r = e.getBoundingClientRect();
             return r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0
               && r.bottom <= innerHeight && r.right <= innerWidth; })""", selector)


@pytest.mark.browser
@pytest.mark.parametrize("name", list(APP_DECKS))
def test_keyboard_steps_the_deck_to_a_live_app_that_fits(name, lab_server, page, screenshots) -> None:
    notebook = NOTEBOOKS / name
    target = app_cell_index(notebook, APP_DECKS[name])
    page.set_viewport_size(LAB_WINDOW)
    try:
        open_in_lab(page, lab_server.url, lab_server.token, name)
        stop_deck(page)
        restart_and_run_all(page)
        wait_widgets_loaded(page)
        page.set_viewport_size(SCREEN)
        start_deck(page)  # from the title: after Run All the active cell is the last one
        steps = 0
        while page.evaluate(JS_ACTIVE) < target:
            key = STEP_KEYS[steps % len(STEP_KEYS)]
            before = page.evaluate(JS_ACTIVE)
            # The keys go to the deck, as from a lecturer's clicker: focus on the slide, not on an output
            # (a widget or a figure rendering late can take the focus, and then the key is its own).
            page.evaluate(JS_FOCUS_ACTIVE)
            page.keyboard.press(key)
            try:
                page.wait_for_function(f"() => ({JS_ACTIVE})() !== {before}", timeout=10_000)
            except PlaywrightTimeoutError:
                page.screenshot(path=str(screenshots / f"slides_keys_{notebook.stem}_FAILED.png"))
                raise AssertionError(f"{name}: {key} on cell {before} (slide {steps + 1}) did not move the "
                                     f"deck; focus on {page.evaluate(JS_FOCUSED)}") from None
            steps += 1
            assert steps < MAX_SLIDES, f"{name}: {steps} key presses and the app's slide not reached"
        page.wait_for_timeout(500)  # the deck's slide transition
        page.screenshot(path=str(screenshots / f"slides_keys_{notebook.stem}.png"))
        controls = ".widget-slider, .widget-button, .widget-text, .widget-dropdown, .widget-toggle-button"
        assert fully_in_view(page, controls), f"{name}: the app's controls are not all on the slide"
        assert fully_in_view(page, ".jupyter-matplotlib-canvas-div canvas"), (
            f"{name}: the app's figure does not fit a {SCREEN['width']} x {SCREEN['height']} slide")
        assert not widget_failures(page)
        page.keyboard.press("Escape")
        page.wait_for_function(f"() => !({JS_IN_DECK})()", timeout=10_000)
        page.set_viewport_size(LAB_WINDOW)
        assert page.evaluate(JS_MENUS_SHOWN), f"{name}: leaving the deck did not bring the menus back"
    finally:
        with contextlib.suppress(Exception):
            stop_deck(page)
        with contextlib.suppress(Exception):
            lab_server.shutdown_kernels()
