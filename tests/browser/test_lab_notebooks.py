"""Every notebook, run for real in JupyterLab in headless Chromium, the way a learner runs it.

For each notebook in notebooks/ (a new notebook is picked up automatically): Restart Kernel and Run
All; every code cell must run without an error output; every widget must render (no "Error displaying
widget", no "model not found", no "Loading widget..." left after a grace period); then one control is
changed as a learner would (a key press on a slider, a click) and its figure must redraw, with no
traceback in the Log Console (where the errors of widget callbacks go). A full-page screenshot of
each notebook after the run goes to tests/browser/screenshots/.

The same run then serves lecture mode (deck.py): the deck starts on the title at 1280 x 720, and in
the notebooks a lecturer presents an app from, the keyboard steps to the app's slide, which must fit
and stay live. Each notebook runs once in the browser suite: nbval (make test-notebooks) has already
compared its outputs, so this suite checks only what a browser adds.
"""

from __future__ import annotations

import contextlib

import pytest
from conftest import NOTEBOOKS
from deck import APP_DECKS, check_app_slide, check_title_slide
from jupyter_page import (
    Interaction,
    has_control,
    interact_and_expect_redraw,
    lab_cell_errors,
    lab_log_errors,
    notebook_cells,
    open_in_lab,
    restart_and_run_all,
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

        check_title_slide(page, notebook, screenshots)
        if notebook.name in APP_DECKS:
            check_app_slide(page, notebook, screenshots)
    except BaseException:
        with contextlib.suppress(Exception):  # the original failure matters more
            screenshot(page, shot.with_name(f"lab_{notebook.stem}_FAILED.png"), SCROLLER)
        raise
    finally:
        lab_server.shutdown_kernels()  # the next notebook starts with this one's memory freed
