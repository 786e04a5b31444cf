"""The training simulator as a stand-alone app served by Voilà (what `make app` starts).

The page must finish executing every cell without an error, render every widget, and respond to
its controls: changing a control must change something the learner sees (a figure redraws).
"""

from __future__ import annotations

import contextlib

import pytest
import servers
from conftest import NOTEBOOKS
from jupyter_page import (
    Interaction,
    full_screenshot,
    interact_and_expect_redraw,
    notebook_cells,
    open_in_voila,
    voila_errors,
    wait_widgets_loaded,
    widget_failures,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

# The notebooks meant to be used as Voilà apps, and the controls to exercise in each.
VOILA_APPS: dict[str, list[Interaction]] = {
    "06_training_simulator.ipynb": [Interaction("slider", "batch size B"),
                                    Interaction("button", "Start")],
}


@pytest.mark.browser
@pytest.mark.parametrize("name", sorted(VOILA_APPS))
def test_app_renders_and_responds_in_voila(name, page, screenshots, tmp_path) -> None:
    notebook = NOTEBOOKS / name
    assert notebook.exists(), f"{notebook} is missing (it is the app `make app` serves)"
    shot = screenshots / f"voila_{notebook.stem}.png"
    with servers.voila(notebook, tmp_path) as server:
        try:
            open_in_voila(page, server.url, server.token, len(notebook_cells(notebook)))
            errors = voila_errors(page)
            assert not errors, f"{name} in Voilà:\n" + "\n".join(errors)
            wait_widgets_loaded(page)
            failures = widget_failures(page)
            assert not failures, f"{name} in Voilà: widgets did not render: {failures}"
            full_screenshot(page, shot, "#rendered_cells")
            for interaction in VOILA_APPS[name]:
                try:
                    interact_and_expect_redraw(page, interaction)
                except PlaywrightTimeoutError as exc:
                    raise AssertionError(
                        f"{name} in Voilà: no response (redraw or feedback) after {interaction} "
                        f"({exc.message})"
                    ) from exc
            failures = widget_failures(page)
            assert not failures, f"{name} in Voilà: widgets failed after interaction: {failures}"
        except BaseException:
            with contextlib.suppress(Exception):  # the original failure matters more
                full_screenshot(page, shot.with_name(f"voila_{notebook.stem}_FAILED.png"),
                                "#rendered_cells")
            raise
