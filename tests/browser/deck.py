"""Lecture mode, checked on a notebook that has just run in JupyterLab (test_lab_notebooks.py calls
these after its Run All, so each notebook runs once for the whole browser suite).

jupyterlab-slideshow (the "deck" commands) presents the notebook itself, so widgets stay real
controls. For every notebook the deck is started three times, as a lecturer might: with a middle cell
selected (it shows that cell's slide, and → moves on), with the first cell selected (the navigation
line, which opens the title slide: the deck shows the title; screenshot ``slides_NN_name.png``), and
with the last cell selected (where Run All leaves the selection): never a blank page. On the title
slide the body text (the notebook metadata style that tools/tidy_notebooks.py writes) is at least
``SLIDE_TEXT_MIN_PX`` for a lecture hall and the last learning goal still lies inside the window;
leaving the deck brings the notebook's normal text size back.
For the notebooks whose apps a lecturer presents (``APP_DECKS``), the keyboard alone steps the deck,
at 1280 x 720 (a projector), to the app's slide: its controls and its whole figure must show without
scrolling, with no label, button or figure text cut (the fit check of test_lab_notebooks); moving its
slider must redraw the figure, and leaving the deck must bring the menus back.
"""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import REPO
from jupyter_page import (
    JS_FIGURE_LIB,
    JS_FIT_PROBLEMS,
    Interaction,
    interact_and_expect_redraw,
    notebook_cells,
    widget_failures,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

SCREEN = {"width": 1280, "height": 720}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LAB_WINDOW = {"width": 1400, "height": 1000}  # the browser tests' usual window (conftest)
MAX_SLIDES = 60
SLIDE_TEXT_MIN_PX = 20  # body text on a slide, readable from the back of a lecture hall

# The title cell's body text (its first paragraph or list item): computed font size in px, and where
# its last item (the last learning goal) lies, given the title cell's h1.
JS_TITLE_TEXT = """h => { const md = h.closest('.jp-RenderedMarkdown');
  const body = md.querySelector('p, li'); const items = md.querySelectorAll('li');
  const last = items.length ? items[items.length - 1] : body; const r = last.getBoundingClientRect();
  return {size: parseFloat(getComputedStyle(body).fontSize), text: body.textContent.slice(0, 40),
          last: last.textContent.slice(0, 40), top: r.top, bottom: r.bottom, height: innerHeight}; }"""

JS_COMMAND = "(id) => window.jupyterapp.commands.execute(id)"
# Select cell i (negative: from the end), as a click on it would.
JS_SELECT_CELL = """(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCellIndex = i < 0 ? nb.widgets.length + i : i; nb.mode = 'command'; }"""
# What the deck shows: the cells on screen now that lie in the window with some height (none: a blank page).
JS_SHOWN_CELLS = """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell.jp-deck-mod-onscreen')]
  .filter(c => { const r = c.getBoundingClientRect();
                 return r.height > 0 && r.bottom > 0 && r.top < innerHeight; }).length"""
JS_IN_DECK = "() => document.body.dataset.jpDeckMode === 'presenting'"
# The active cell's index (the deck moves it as it moves between slides).
JS_ACTIVE = "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex"

# The apps a lecturer presents, each on a slide of its own (tools/tidy_notebooks.py keeps them so).
# Every app a lecturer presents, by notebook, in deck order (02's FixedStepsApp has no figure or slider).
APP_DECKS = {"01_definitions.ipynb": ("BatchStepperApp",),
             "02_relationship_formula.ipynb": ("FormulaCalculatorApp", "LearningRateApp"),
             "03_batch_size_spectrum.ipynb": ("LandscapeApp",),
             "04_generalization_gap.ipynb": ("SweepExplorerApp",),
             "06_training_simulator.ipynb": ("TrainingSimulatorApp",),
             "07_choosing_the_batch_size.ipynb": ("CriticalBatchApp",)}
# Keys a lecturer (or a presenter's clicker: PageDown/PageUp) steps with. ArrowRight jumps from slide
# to slide; Space and PageDown also enter each sub-slide and fragment (PageDown/PageUp come from the
# shortcuts in tests/browser/lab_overrides.json: jupyterlab-slideshow binds only arrows and Space).
STEP_KEYS = ["ArrowRight", "Space", "PageDown"]
JS_FOCUS_ACTIVE = "() => window.jupyterapp.shell.currentWidget.content.activeCell.node.focus()"
JS_FOCUSED = "() => { const e = document.activeElement; return e ? e.tagName + '.' + e.className : null; }"
JS_MENUS_SHOWN = """() => { const bar = document.querySelector('#jp-menu-panel, .lm-MenuBar');
  if (!bar) return false; const r = bar.getBoundingClientRect(); return r.height > 0 && r.width > 0; }"""
ON_SLIDE = ".jp-Cell.jp-deck-mod-onscreen"  # the cells of the slide shown now
CONTROLS = ".widget-slider, .widget-button, .widget-text, .widget-dropdown, .widget-toggle-button"


def start_deck(page, cell: int = 0) -> None:
    """Start the slideshow with cell ``cell`` selected (negative: from the end; 0, the navigation line,
    opens the title slide) and wait until the deck is shown."""
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


def fully_in_view(page, selector: str) -> bool:
    """Whether some element matching ``selector`` on the shown slide lies wholly inside the window."""
    return page.evaluate(
        """s => [...document.querySelectorAll(s)].some(e => {
             const cell = e.closest('.jp-Cell');
             if (!cell || !cell.classList.contains('jp-deck-mod-onscreen')) return false;
             const r = e.getBoundingClientRect();
             return r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0
               && r.bottom <= innerHeight && r.right <= innerWidth; })""", selector)


def figure_fully_in_view(page) -> bool:
    """Whether some figure (a live view's box of bqplot figures) on the shown slide lies wholly inside
    the window."""
    return page.evaluate("""() => {""" + JS_FIGURE_LIB + """
      return figures(document).some(f => {
        const cell = f.closest('.jp-Cell');
        if (!cell || !cell.classList.contains('jp-deck-mod-onscreen')) return false;
        const r = f.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0
          && r.bottom <= innerHeight && r.right <= innerWidth; }); }""")


def app_cell_index(notebook: Path, app: str) -> int:
    """The index of the cell that starts the slide showing widget app ``app`` (a class name)."""
    sys.path.insert(0, str(REPO / "tools"))
    import tidy_notebooks  # tools/ is not a package

    cells = notebook_cells(notebook)
    shown = next(i for i, c in enumerate(cells) if tidy_notebooks.shows_an_app(c)
                 and app in "".join(c["source"]) + str(c.get("outputs"))
                 and any(o.get("data", {}).get(WIDGET_VIEW) for o in c.get("outputs", [])))
    return max(i for i in range(shown + 1)
               if cells[i].get("metadata", {}).get("slideshow", {}).get("slide_type") == "slide")


def check_deck_starts(page, notebook: Path, screenshots: Path) -> None:
    """At 1280 x 720, a deck started from a middle cell, the first cell or the last cell shows a slide;
    from the first cell, the notebook's title. Leaving it restores the window."""
    cells = notebook_cells(notebook)
    heading = next("".join(c["source"]).splitlines()[0].lstrip("# ") for c in cells
                   if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("# "))
    middle = len(cells) // 2
    title = page.locator(".jp-MarkdownCell h1").first
    normal = title.evaluate(JS_TITLE_TEXT)  # the notebook view's text size, before any deck
    page.set_viewport_size(SCREEN)
    try:
        start_deck(page, middle)
        assert deck_shows_a_slide(page), (
            f"{notebook.name}: a deck started on cell {middle} shows a blank page")
        active = page.evaluate(JS_ACTIVE)
        page.evaluate(JS_COMMAND, "deck:forward")
        page.wait_for_function(f"() => ({JS_ACTIVE})() !== {active}", timeout=10_000)
        stop_deck(page)
        start_deck(page, -1)  # the bottom navigation line, where Run All leaves the selection
        assert deck_shows_a_slide(page), (
            f"{notebook.name}: a deck started on the last cell shows a blank page")
        stop_deck(page)
        start_deck(page, 0)  # the navigation line: it opens the title slide
        assert deck_shows_a_slide(page), f"{notebook.name}: a deck started on cell 0 shows a blank page"
        title.wait_for(state="visible")
        assert in_view(title), f"{notebook.name}: the title slide does not show the title"
        assert title.text_content().startswith(heading[:20]), (
            f"{notebook.name}: the first slide shows {title.text_content()!r}, not {heading!r}")
        page.wait_for_timeout(300)  # the deck's slide transition
        page.screenshot(path=str(screenshots / f"slides_{notebook.stem}.png"))
        shown = title.evaluate(JS_TITLE_TEXT)
        assert shown["size"] >= SLIDE_TEXT_MIN_PX, (
            f"{notebook.name}: the title slide's text {shown['text']!r} is {shown['size']} px, under "
            f"{SLIDE_TEXT_MIN_PX} px while presenting (notebook metadata style: make tidy)")
        assert 0 <= shown["top"] and shown["bottom"] <= shown["height"], (
            f"{notebook.name}: the title slide's last item {shown['last']!r} lies at "
            f"{shown['top']:.0f}-{shown['bottom']:.0f} px, outside the {shown['height']}-px window")
        stop_deck(page)
        after = title.evaluate(JS_TITLE_TEXT)
        assert after["size"] == normal["size"] < SLIDE_TEXT_MIN_PX, (
            f"{notebook.name}: after the deck the text is {after['size']} px, not the notebook's "
            f"{normal['size']} px")
    finally:
        stop_deck(page)
        page.set_viewport_size(LAB_WINDOW)


def press_until(page, target: int, name: str, screenshots: Path) -> None:
    """Step the deck with the lecturer's keys (in turn) until the active cell reaches ``target``."""
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
            page.screenshot(path=str(screenshots / f"slides_keys_{Path(name).stem}_FAILED.png"))
            raise AssertionError(f"{name}: {key} on cell {before} (slide {steps + 1}) did not move the "
                                 f"deck; focus on {page.evaluate(JS_FOCUSED)}") from None
        steps += 1
        assert steps < MAX_SLIDES, f"{name}: {steps} key presses and the app's slide not reached"


def check_app_slide(page, notebook: Path, screenshots: Path) -> None:
    """On a notebook that has run: the keyboard steps the deck from the title to each app's slide,
    which shows the app's controls and whole figure at 1280 x 720; its slider redraws the figure
    there; Escape leaves the deck and the menus come back."""
    name = notebook.name
    page.set_viewport_size(SCREEN)
    try:
        start_deck(page)  # on the title (cell 0 opens the title slide)
        for app in APP_DECKS[name]:
            press_until(page, app_cell_index(notebook, app), name, screenshots)
            page.wait_for_timeout(500)  # the deck's slide transition
            shot = f"{notebook.stem}_{app}"
            page.screenshot(path=str(screenshots / f"slides_keys_{shot}.png"))
            assert fully_in_view(page, CONTROLS), f"{name}: {app}'s controls are not on the slide"
            assert figure_fully_in_view(page), (
                f"{name}: {app}'s figure does not fit a {SCREEN['width']} x {SCREEN['height']} slide")
            problems = page.evaluate(JS_FIT_PROBLEMS)  # on the slide: no text cut, nothing overflowing
            assert not problems, f"{name}: {app}'s slide:\n" + "\n".join(problems)
            # The app is live on its slide: its first slider there redraws its figure.
            interact_and_expect_redraw(page, Interaction("slider"), within=page.locator(ON_SLIDE))
            assert page.evaluate(JS_IN_DECK), f"{name}: moving {app}'s slider left the slideshow"
            page.screenshot(path=str(screenshots / f"slides_app_{shot}.png"))
            assert not widget_failures(page)
        page.keyboard.press("Escape")
        page.wait_for_function(f"() => !({JS_IN_DECK})()", timeout=10_000)
        page.set_viewport_size(LAB_WINDOW)
        assert page.evaluate(JS_MENUS_SHOWN), f"{name}: leaving the deck did not bring the menus back"
    finally:
        stop_deck(page)
        page.set_viewport_size(LAB_WINDOW)
