"""Every notebook, run for real in JupyterLab in headless Chromium, the way a learner runs it.

For each notebook in notebooks/ (a new notebook is picked up automatically): Restart Kernel and Run
All; every code cell must run without an error output; every widget must render (no "Error displaying
widget", no "model not found", no "Loading widget..." left after a grace period); then one control is
changed as a learner would (a key press on a slider, a click) and its figure must redraw, with no
traceback in the Log Console (where the errors of widget callbacks go). A full-page screenshot of
each notebook after the run goes to tests/browser/screenshots/.

The same run then serves lecture mode (deck.py): at 1280 x 720 the deck starts from any cell (a middle,
the first, the last) without a blank page, the first showing the title; in the notebooks a lecturer
presents an app from, the keyboard steps to the app's slide, which must fit and stay live. Each notebook
runs once in the browser suite: nbval (make test-notebooks) has already compared its outputs, so this
suite checks only what a browser adds.

For the notebooks with the apps a lecturer shows (FIT_AND_THEMES), the same page, after the run, is also
checked the way a laptop and a dark-theme user see it: in a 1280-px window with the file browser open
(an output area of about 848 px) and closed, every figure lies inside its output area, nothing overflows
sideways, no label or button text is cut and no label wraps onto a line of its own; in JupyterLab's dark
theme every figure-key swatch contrasts with what is behind it as well as in the light theme (or 3:1),
and no widget text falls below 3:1 (screenshots ``lab_NN_light.png`` / ``lab_NN_dark.png``).

One notebook (RELOAD_CHECK) is then saved and the page reloaded with its kernel still running: the
apps must come back live (sliders shown, a key press redraws the figure), as the README's lecturer
section says. JupyterLab shows what the saved file holds: saved after the run, the file holds this
session's widget views, which the widget manager reconnects to the kernel's live models.
"""

from __future__ import annotations

import contextlib

import pytest
from conftest import NOTEBOOKS
from deck import APP_DECKS, check_app_slide, check_deck_starts
from jupyter_page import (
    JS_FIT_PROBLEMS,
    JS_LOW_CONTRAST_TEXT,
    JS_SWATCH_CONTRASTS,
    Interaction,
    has_control,
    interact_and_expect_redraw,
    lab_cell_errors,
    lab_log_errors,
    notebook_cells,
    open_in_lab,
    restart_and_run_all,
    set_lab_theme,
    set_left_sidebar,
    wait_widgets_loaded,
    widget_failures,
)
from jupyter_page import full_screenshot as screenshot
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))

# Which controls to change in each notebook, in order, and which figure must redraw each time (see
# Interaction: by default the first figure below the control). A notebook missing here gets the
# generic check: its first slider must redraw the first figure below it.
INTERACTIONS: dict[str, list[Interaction]] = {
    "00_start_here.ipynb": [
        Interaction("exercise", "the batch size is B = 100", answer="100",
                    expect="the batch size B"),
        Interaction("exercise", "Two runs train on the same N = 1,000 samples",
                    answer="Q makes 4 times fewer updates and sees the same samples",
                    expect="Correct"),
    ],
    "01_definitions.ipynb": [Interaction("slider", "batch size B"),
                             Interaction("button", "Next batch")],
    "02_relationship_formula.ipynb": [Interaction("slider", "batch size B"),
                                      Interaction("toggle", "sqrt")],
    "03_batch_size_spectrum.ipynb": [Interaction("slider", "mini-batch B"),
                                     Interaction("toggle", "equal samples")],
    "04_generalization_gap.ipynb": [Interaction("toggle", "equal updates"),
                                    Interaction("button", "Train")],
    "05_pytorch_training_loop.ipynb": [  # no control drives a figure: its live plot is a run
        Interaction("exercise", "Updates for N = 1,347", answer="70", expect="Correct"),
        Interaction("exercise", "Doubling B", answer="the inputs and saved activations",
                    expect="Correct"),
    ],
    "06_training_simulator.ipynb": [Interaction("slider", "batch size B"),
                                    Interaction("button", "Start")],
    "08_data_parallel.ipynb": [
        Interaction("exercise", "Iterations per epoch on each rank", answer="11", expect="Correct"),
    ],
}

SCROLLER = ".jp-NotebookPanel .jp-WindowedPanel-outer"

# Checked for fit and for the dark theme after their run (see the module docstring): the notebooks whose
# apps are shown in a lecture.
FIT_AND_THEMES = {"01_definitions.ipynb", "02_relationship_formula.ipynb", "03_batch_size_spectrum.ipynb",
                  "04_generalization_gap.ipynb", "06_training_simulator.ipynb",
                  "07_choosing_the_batch_size.ipynb"}
LAPTOP = {"width": 1280, "height": 1000}  # with the file browser open, the output area is about 848 px
MIN_SWATCH_CONTRAST = 2.0  # the palette's lightest line colours (sky blue, orange) are 2.0-2.5:1 on white


RELOAD_CHECK = "02_relationship_formula.ipynb"
JS_SAVED = "() => !window.jupyterapp.shell.currentWidget.context.model.dirty"


def check_reload_keeps_apps_live(page, name: str) -> None:
    """Save the run notebook, reload the page (the kernel keeps running) and move a slider again."""
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(JS_SAVED, timeout=30_000)
    page.reload()
    page.wait_for_selector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]',
                           timeout=120_000)
    page.locator(".jp-NotebookPanel .widget-slider").first.wait_for(timeout=30_000)
    wait_widgets_loaded(page)
    failures = widget_failures(page)
    assert not failures, f"{name}: widgets failed after a reload: {failures}"
    interact_and_expect_redraw(page, INTERACTIONS[name][0])


def check_fit_and_themes(page, name: str, screenshots) -> None:
    """The fit and dark-theme checks of the module docstring, on the page as Run All left it."""
    window = page.viewport_size
    page.set_viewport_size(LAPTOP)
    page.wait_for_function(  # JupyterLab has laid itself out again for the narrower window
        """(w) => innerWidth === w
                  && document.querySelector('.jp-NotebookPanel').getBoundingClientRect().right <= w""",
        arg=LAPTOP["width"])
    try:
        for sidebar in (True, False):
            set_left_sidebar(page, sidebar)
            problems = page.evaluate(JS_FIT_PROBLEMS)
            where = "with the file browser open" if sidebar else "without the file browser"
            assert not problems, f"{name} at {LAPTOP['width']} px {where}:\n" + "\n".join(problems)
        set_left_sidebar(page, True)
        light = page.evaluate(JS_SWATCH_CONTRASTS)
        assert light, f"{name}: no figure-key swatch (batchlab.markup.swatch) found"
        low = page.evaluate(JS_LOW_CONTRAST_TEXT)
        assert not low, f"{name}, light theme: text below 3:1:\n" + "\n".join(low)
        page.locator(".jp-NotebookPanel .batchlab-swatch").first.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / f"lab_{name[:2]}_light.png"))
        set_lab_theme(page, "JupyterLab Dark")
        try:
            dark = page.evaluate(JS_SWATCH_CONTRASTS)
            low = page.evaluate(JS_LOW_CONTRAST_TEXT)
            page.locator(".jp-NotebookPanel .batchlab-swatch").first.scroll_into_view_if_needed()
            page.screenshot(path=str(screenshots / f"lab_{name[:2]}_dark.png"))
        finally:
            set_lab_theme(page, "JupyterLab Light")  # the server's later tests expect the light theme
        assert not low, f"{name}, dark theme: text below 3:1:\n" + "\n".join(low)
        assert len(dark) == len(light), (
            f"{name}: {len(light)} swatches in the light theme, {len(dark)} in the dark")
        for ours, theirs in zip(light, dark, strict=True):
            entry = f"{name}: the key entry {ours['text']!r} ({theirs['colours']} on {theirs['back']})"
            assert theirs["contrast"] >= min(3.0, ours["contrast"]) - 0.01, (
                f"{entry} contrasts {theirs['contrast']}:1 in the dark theme, "
                f"{ours['contrast']}:1 in the light")
            assert min(ours["contrast"], theirs["contrast"]) >= MIN_SWATCH_CONTRAST, (
                f"{entry} is nearly invisible: {ours['contrast']}:1 light, {theirs['contrast']}:1 dark")
    finally:
        page.set_viewport_size(window)


def interactions_for(name: str, page) -> list[Interaction]:
    """The interactions to try in notebook ``name`` (the table, else the generic slider check)."""
    if name in INTERACTIONS:
        return INTERACTIONS[name]
    assert has_control(page, "slider"), (
        f"{name} shows no slider: say in INTERACTIONS which control to test"
    )
    return [Interaction("slider")]


def test_there_are_notebooks() -> None:
    assert NOTEBOOK_FILES, f"no notebooks found in {NOTEBOOKS}"


@pytest.mark.browser
@pytest.mark.parametrize("notebook", NOTEBOOK_FILES, ids=lambda path: path.name)
def test_notebook_runs_and_responds_in_lab(notebook, lab_server, page, screenshots) -> None:
    cells = notebook_cells(notebook)
    shot = screenshots / f"lab_{notebook.stem}.png"
    try:
        open_in_lab(page, lab_server.url, lab_server.token, notebook.name)
        restart_and_run_all(page)
        errors = lab_cell_errors(page, cells)
        assert not errors, f"{notebook.name}: errors after Run All:\n" + "\n".join(errors)
        wait_widgets_loaded(page)
        failures = widget_failures(page)
        assert not failures, f"{notebook.name}: widgets did not render: {failures}"
        screenshot(page, shot, SCROLLER)
        if notebook.name in FIT_AND_THEMES:
            check_fit_and_themes(page, notebook.name, screenshots)

        for interaction in interactions_for(notebook.name, page):
            try:
                interact_and_expect_redraw(page, interaction)
            except PlaywrightTimeoutError as exc:
                log = lab_log_errors(page)
                raise AssertionError(
                    f"{notebook.name}: no response (redraw or feedback) after {interaction} "
                    f"({exc.message})\n"
                    f"Log Console:\n{log[-3000:] or '(no traceback)'}"
                ) from exc
        failures = widget_failures(page)
        assert not failures, f"{notebook.name}: widgets failed after interaction: {failures}"
        log = lab_log_errors(page)
        assert not log, f"{notebook.name}: kernel errors in the Log Console:\n{log[-3000:]}"

        check_deck_starts(page, notebook, screenshots)
        if notebook.name in APP_DECKS:
            check_app_slide(page, notebook, screenshots)
        if notebook.name == RELOAD_CHECK:
            check_reload_keeps_apps_live(page, notebook.name)
    except BaseException:
        with contextlib.suppress(Exception):  # the original failure matters more
            screenshot(page, shot.with_name(f"lab_{notebook.stem}_FAILED.png"), SCROLLER)
        raise
    finally:
        lab_server.shutdown_kernels()  # the next notebook starts with this one's memory freed
