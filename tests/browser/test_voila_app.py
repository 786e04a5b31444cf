"""The training simulator as a stand-alone app served by Voilà (what `make app` starts:
apps/simulator.ipynb).

The page must finish executing every cell without an error, render every widget, and respond to
its controls: changing a control must change something the learner sees (a figure redraws). It is
an app, not a notebook: titled "Training simulator", a title, one line of help and the app, fitting a
laptop window; nothing is requested from outside 127.0.0.1 (Voilà's template asks a CDN for Font
Awesome: apps/share/jupyter/voila/templates/batchlab-app drops it); and a kernel whose page is gone
is shut down (culled) while the page that is still open keeps its own.
"""

from __future__ import annotations

import contextlib
import re
import time

import pytest
import servers
from conftest import REPO
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
    "simulator.ipynb": [Interaction("slider", "batch size B"), Interaction("button", "Start")],
}
APPS = REPO / "apps"
CULL_IDLE_S = 10  # make app: 600; short here so that the test sees a kernel culled
# jupyter_server's log line for each kernel it shuts down: "Culling 'idle' kernel 'python3' (...) ..."
CULLED = re.compile(r"Culling '\w+' kernel")


def outside_requests(page, base: str) -> list[str]:
    """Collect every request the page makes to anything but ``base`` (and data: URLs)."""
    found: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:"))
            else found.append(r.url))
    return found


@pytest.mark.browser
@pytest.mark.parametrize("name", sorted(VOILA_APPS))
def test_app_renders_and_responds_in_voila(name, page, screenshots, tmp_path) -> None:
    notebook = APPS / name
    assert notebook.exists(), f"{notebook} is missing (it is the app `make app` serves)"
    shot = screenshots / f"voila_{notebook.stem}.png"
    with servers.voila(notebook, tmp_path, cull_idle_s=CULL_IDLE_S) as server:
        try:
            outside = outside_requests(page, server.url)
            open_in_voila(page, server.url, server.token, len(notebook_cells(notebook)))
            assert page.title() == "Training simulator"
            size = page.evaluate("() => [document.documentElement.scrollWidth, "
                                 "document.documentElement.scrollHeight]")
            assert size[0] <= 1400 and size[1] <= 1600, f"the app page is {size} px: not one screen"
            assert page.locator(".jp-MarkdownCell").count() == 1, "a title and one line of help only"
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
            assert not outside, f"the app asked for {outside[:5]} (outside 127.0.0.1)"
            # A second view gets its own kernel. Once the first page is closed its kernel is culled
            # (Voilà's log says so; its REST API is closed), and the open page's app still answers.
            second = page.context.new_page()
            open_in_voila(second, server.url, server.token, len(notebook_cells(notebook)))
            page.close()
            deadline = time.monotonic() + CULL_IDLE_S + 60
            while not CULLED.search(server.log.read_text()) and time.monotonic() < deadline:
                time.sleep(2)
            culled = len(CULLED.findall(server.log.read_text()))
            assert culled == 1, f"{culled} kernels culled (expected the closed page's only)"
            interact_and_expect_redraw(second, VOILA_APPS[name][0])
        except BaseException:
            with contextlib.suppress(Exception):  # the original failure matters more
                full_screenshot(page, shot.with_name(f"voila_{notebook.stem}_FAILED.png"),
                                "#rendered_cells")
            raise
