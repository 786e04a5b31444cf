"""Drive a notebook in JupyterLab or Voilà with Playwright, and read back what the page shows.

Every wait here waits for a condition (a prompt number, a kernel state, a changed figure), never for
a fixed time. The checks read the DOM that a learner sees: error outputs, widget error placeholders,
figures (the apps' live views: bqplot SVG figures).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RUN_ALL_TIMEOUT_MS = 300_000  # one notebook's Restart and Run All (they take 10-40 s each)
WIDGET_GRACE_MS = 20_000  # how long a widget may show "Loading widget..." after the run
PLOT_CHANGE_TIMEOUT_MS = 30_000  # how long a control may take to change its figure

# Texts that JupyterLab's / Voilà's widget manager shows instead of a widget that failed.
WIDGET_FAILURES = ("Error displaying widget", "model not found", "Could not create a model",
                   "Could not create a view", "Failed to load model class",
                   "Failed to load view class", "Could not create child view")

# A traceback header, or an exception line such as "ValueError: ..." (a SyntaxError has no header).
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception)\b",
                        re.MULTILINE)


@dataclass(frozen=True)
class Interaction:
    """One control a test changes, and the figure that must change in response.

    kind: the widget type; label: its description, matched exactly (None: the first control of
    this kind in the page); figure: which figure (JS_FIGURE_LIB: a live view of bqplot figures) must
    change: 0 is the app's own (the first figure in the smallest box holding the
    control and a figure), n > 0 the n-th one below the control (in page order); None means any
    figure or image in the page.

    kind "exercise" answers a self-check exercise instead: label is a piece of its question,
    ``answer`` is typed (or the option picked) and Check pressed; the feedback must then contain
    ``expect`` (e.g. "Correct").
    """

    kind: Literal["slider", "dropdown", "button", "toggle", "exercise"] = "slider"
    label: str | None = None
    figure: int | None = 0
    answer: str | None = None
    expect: str | None = None


def notebook_cells(path: Path) -> list[dict]:
    """The cells of a stored notebook, as JSON dicts."""
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def raises_exception(cell: dict) -> bool:
    """True if a cell may end in an error: it has the ``raises-exception`` tag.

    That tag is what JupyterLab's Run All (and nbconvert) honour; nbval's ``# NBVAL_RAISES_EXCEPTION``
    comment alone is not enough, since Run All in Lab would stop at such a cell.
    """
    return "raises-exception" in cell.get("metadata", {}).get("tags", [])


def nbval_marker_only(cell: dict) -> bool:
    """A cell with the nbval marker comment but without the ``raises-exception`` tag."""
    source = "".join(cell.get("source", ""))
    marker = any(line.strip() == "# NBVAL_RAISES_EXCEPTION" for line in source.splitlines())
    return marker and not raises_exception(cell)


# ---------------------------------------------------------------------------------------------
# JavaScript run in the page
# ---------------------------------------------------------------------------------------------

# Per cell of the open notebook: its prompt text and the text of its stderr/error outputs.
JS_LAB_CELLS = """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')]
  .map(cell => ({
    code: cell.classList.contains('jp-CodeCell'),
    prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '',
    stderr: [...cell.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
      .map(e => e.textContent),
  }))"""

# True once Run All has finished: no queued/running cell, every code prompt numbered (or Run All
# stopped at an error, leaving later cells unrun), and the kernel idle.
JS_LAB_RUN_FINISHED = """() => {
  const indicator = document.querySelector(
    '.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status]');
  if (!indicator || indicator.getAttribute('data-status') !== 'idle') return false;
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
    .map(e => e.textContent.trim());
  if (prompts.some(p => p.includes('*'))) return false;
  const numbered = prompts.filter(p => /\\[\\d+\\]/.test(p)).length;
  const failed = document.querySelectorAll(
    '.jp-NotebookPanel .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
  ).length > 0;
  return numbered === prompts.length || (numbered > 0 && failed);
}"""

# What counts as one figure, and what it shows now (shared by the tests and benchmarks/widget_latency.py,
# inside their JavaScript). A live view (batchlab.plots.mirror.LiveFigure) is bqplot figures
# (`.bqplot.figure`: an `svg.svg-background` with the axes, an `svg.svg-figure` with the marks), one per
# matplotlib Axes, in rows, with the figure's own texts as HTML lines. One figure is the LiveFigure's box
# (class `batchlab-live`), or else the largest widget box around a bqplot figure that holds nothing but
# bqplot figures. What it shows: its marks' and axes' geometry (every `path`'s `d`, every `text`'s
# content, every `image`'s href and every `transform`: points and labels move by theirs) inside its SVGs,
# and the text of its HTML lines. (No app draws with ipympl any more; the benchmark alone still reads
# ipympl canvases, to measure the code before issue 26.)
JS_FIGURE_LIB = """
  const BQPLOT_FIGURE = '.bqplot.figure';
  const LIVE_FIGURE = '.batchlab-live';
  const onlyBqplot = (box) => box.classList.contains('widget-box') && [...box.querySelectorAll(
      '.jupyter-widgets')].every(w => w.closest(BQPLOT_FIGURE) || w.classList.contains('widget-box'));
  const figureBox = (e) => { if (e.closest(LIVE_FIGURE)) return e.closest(LIVE_FIGURE);
    let box = e.closest(BQPLOT_FIGURE);
    while (box.parentElement && onlyBqplot(box.parentElement)) box = box.parentElement;
    return box; };
  const figures = (root) => { const found = [];
    root.querySelectorAll(BQPLOT_FIGURE).forEach(e => {
      const box = figureBox(e); if (!found.includes(box)) found.push(box); });
    return found; };
  const figureState = (box) => [...box.querySelectorAll(
      'svg path, svg text, svg image, svg [transform]')].map(e => {
      const tag = e.tagName.toLowerCase();
      const own = tag === 'path' ? e.getAttribute('d') : tag === 'text' ? e.textContent
        : tag === 'image' ? (e.getAttribute('href') || e.getAttribute('xlink:href')) : '';
      return `${own}@${e.getAttribute('transform') || ''}`; })
    .concat([...box.querySelectorAll('.widget-html')].map(e => e.textContent)).join('\\n');
"""

# A fingerprint of every figure and image: figures (above) and output <img> sources.
JS_ALL_PICTURES = """() => {""" + JS_FIGURE_LIB + """
  return [...figures(document).map(figureState),
          ...[...document.querySelectorAll('.jp-OutputArea-output img, .widget-output img, .widget-image')]
            .map(i => i.src)]; }"""

# Remember the target figure (figure n after the control) and what it shows now.
JS_MARK_FIGURE = """([control, n]) => {""" + JS_FIGURE_LIB + """
  // Figure 0 is the app's own: the first figure inside the smallest box that holds the control and a
  // figure (an app may place its figure beside or above its controls); figure n > 0 is the n-th figure
  // below the control.
  let box = control.parentElement;
  while (box && !figures(box).length) box = box.parentElement;
  const own = n === 0 && box ? [figures(box)[0]] : [];
  const below = own.length ? own : figures(document)
    .filter(f => control.compareDocumentPosition(f) & Node.DOCUMENT_POSITION_FOLLOWING);
  if (below.length <= n) return `only ${below.length} figure(s) below the control`;
  window.__batchlabTarget = below[n];
  window.__batchlabBefore = figureState(below[n]);
  return null;
}"""

JS_FIGURE_CHANGED = ("() => {" + JS_FIGURE_LIB
                     + "return figureState(window.__batchlabTarget) !== window.__batchlabBefore; }")

JS_MARK_ALL = f"""() => {{ window.__batchlabAll = JSON.stringify(({JS_ALL_PICTURES})()); }}"""
JS_ALL_CHANGED = f"() => JSON.stringify(({JS_ALL_PICTURES})()) !== window.__batchlabAll"

# What a slider shows: its handle's aria values and its read-out text.
JS_SLIDER_STATE = """(c) => { const h = c.querySelector('.noUi-handle');
  const r = c.querySelector('.widget-readout');
  return [h.getAttribute('aria-valuenow'), h.getAttribute('aria-valuetext'),
          r ? r.textContent : ''].join('|'); }"""

JS_NO_LOADING = """() => !document.body.textContent.includes('Loading widget...')"""


# ---------------------------------------------------------------------------------------------
# JupyterLab
# ---------------------------------------------------------------------------------------------


def open_in_lab(page, url: str, token: str, name: str) -> None:
    """Open notebook ``name`` in a fresh JupyterLab workspace and wait for its kernel to be idle."""
    workspace = re.sub(r"[^A-Za-z0-9]+", "-", name)
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/{name}?reset&token={token}")
    page.wait_for_selector(
        '.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000
    )


def menu(page, top: str, item: str) -> None:
    """Click a JupyterLab main-menu entry, e.g. ``menu(page, "Run", "Run All Cells")``.

    Entries are matched on their label alone (an entry's accessible name also holds its shortcut).
    """
    page.locator(".lm-MenuBar-item").filter(
        has=page.locator(f'.lm-MenuBar-itemLabel:text-is("{top}")')).click()
    page.locator(".lm-Menu-item").filter(
        has=page.locator(f'.lm-Menu-itemLabel:text-is("{item}")')).click()


# The open notebook's kernel as "<connection status>/<execution status>" (window.jupyterapp is
# exposed by the test server), e.g. "connected/idle".
JS_KERNEL_STATE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k ? `${k.connectionStatus}/${k.status}` : 'none';
}"""

# Record the kernel's status changes from now on (to see that a restart really happened).
JS_RECORD_STATUSES = """() => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  window.__batchlabStatuses = [];
  k.statusChanged.connect((_, status) => window.__batchlabStatuses.push(status));
}"""


def wait_kernel_ready(page, timeout_ms: int = 120_000) -> None:
    """Wait until the notebook's kernel is connected and idle."""
    page.wait_for_function(f"() => ({JS_KERNEL_STATE})() === 'connected/idle'",
                           timeout=timeout_ms, polling=100)


def restart_and_run_all(page) -> None:
    """Clear every output, restart the kernel, then Run All Cells; wait until the run has finished.

    The restart (Kernel > Restart Kernel..., dialog accepted) and Run All are two steps, with a wait
    for the restarted kernel in between: sending the cells while the kernel's connection is being
    re-established (what "Restart Kernel and Run All" does in one go) occasionally lost them on a
    loaded machine, leaving a cell queued forever. Clearing the outputs first makes the finish
    condition honest: the stored prompt numbers are gone, so every number seen afterwards comes from
    this run.
    """
    wait_kernel_ready(page)
    menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
             .every(e => !/\\d/.test(e.textContent))"""
    )
    page.evaluate(JS_RECORD_STATUSES)
    menu(page, "Kernel", "Restart Kernel…")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.wait_for_function(
        f"""() => (window.__batchlabStatuses || []).some(s => /restarting/.test(s))
                  && ({JS_KERNEL_STATE})() === 'connected/idle'""",
        timeout=120_000, polling=100,
    )
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(JS_LAB_RUN_FINISHED, timeout=RUN_ALL_TIMEOUT_MS, polling=250)


def lab_cell_errors(page, cells: list[dict]) -> list[str]:
    """Cells (outside those allowed to raise) whose outputs show a traceback or an exception."""
    shown = page.evaluate(JS_LAB_CELLS)
    assert len(shown) == len(cells), f"the page shows {len(shown)} cells, the file has {len(cells)}"
    problems = []
    for index, (cell, dom) in enumerate(zip(cells, shown, strict=True)):
        if cell["cell_type"] != "code" or raises_exception(cell):
            continue
        if not re.search(r"\[\d+\]", dom["prompt"]):
            problems.append(f"cell {index} did not run (prompt {dom['prompt']!r})")
        for text in dom["stderr"]:
            if ERROR_TEXT.search(text):
                hint = (" (it has # NBVAL_RAISES_EXCEPTION but not the raises-exception tag, "
                        "so Run All in JupyterLab stops here)") if nbval_marker_only(cell) else ""
                problems.append(f"cell {index} shows an error{hint}:\n{text[-1500:]}")
    return problems


def lab_log_errors(page) -> str:
    """Kernel errors JupyterLab put in its Log Console (e.g. a widget callback that raised).

    Output that belongs to no cell -- such as the traceback of an ``observe`` callback -- goes to
    the Log Console; its status-bar item shows a count. Opens the console only when the count is
    not empty, and returns its text if it holds a traceback ("" otherwise).
    """
    status = page.locator(".jp-LogConsoleStatusItem")
    if status.count() == 0 or not status.first.text_content().strip():
        return ""
    status.first.click()
    panel = page.locator(".jp-LogConsolePanel")
    panel.wait_for()
    text = panel.first.text_content()
    return text if ERROR_TEXT.search(text) else ""


def full_screenshot(page, path: Path, scroller: str, tile_px: int = 6000) -> list[Path]:
    """Screenshot the whole content of a scrolling panel (a notebook, a Voilà page).

    The viewport grows to show up to ``tile_px`` pixels of the panel at once; a longer panel is
    shot in tiles (``name_1.png``, ``name_2.png``...), scrolling it between shots. The viewport and
    the panel's scroll position are restored afterwards. Returns the files written.
    """
    size = page.viewport_size
    panel = page.locator(scroller).first
    total, visible, start = panel.evaluate("e => [e.scrollHeight, e.clientHeight, e.scrollTop]")
    chrome = size["height"] - visible  # menus, toolbars, status bar around the panel
    height = min(total, tile_px)
    page.set_viewport_size({"width": size["width"], "height": max(height + chrome, 600)})
    offsets = list(range(0, max(total - height, 0) + 1, height))
    if offsets[-1] + height < total:
        offsets.append(total - height)
    paths = [path] if len(offsets) == 1 else [
        path.with_name(f"{path.stem}_{i}{path.suffix}") for i in range(1, len(offsets) + 1)
    ]
    try:
        for offset, target in zip(offsets, paths, strict=True):
            panel.evaluate("(e, y) => { e.scrollTop = y; }", offset)
            page.wait_for_function(
                "([e, y]) => Math.abs(e.scrollTop - y) < 2", arg=[panel.element_handle(), offset]
            )
            page.screenshot(path=str(target))
    finally:
        panel.evaluate("(e, y) => { e.scrollTop = y; }", start)
        page.set_viewport_size(size)
    return paths


# ---------------------------------------------------------------------------------------------
# Widgets (shared by Lab and Voilà)
# ---------------------------------------------------------------------------------------------


def widget_failures(page) -> list[str]:
    """Widget failure placeholders shown in the page ("Error displaying widget", ...)."""
    text = page.locator("body").text_content()
    found = [f for f in WIDGET_FAILURES if f in text]
    errors = page.locator(".jupyter-widgets-error-widget")
    if errors.count():
        found.append(f"error widget: {errors.first.text_content()[:500]}")
    return found


def wait_widgets_loaded(page) -> None:
    """Wait (up to a grace period) until no widget still shows "Loading widget..."."""
    page.wait_for_function(JS_NO_LOADING, timeout=WIDGET_GRACE_MS, polling=250)


def locate_control(page, interaction: Interaction, within=None):
    """The Playwright locator of the control an interaction names (first match), in the page or
    inside the locator ``within`` (e.g. the cells of the slide shown now)."""
    selector = {
        "slider": ".widget-slider",
        "dropdown": ".widget-dropdown",
        "button": "button.jupyter-button",
        "toggle": ".widget-toggle-buttons button, .widget-toggle-button",
    }[interaction.kind]
    controls = (page if within is None else within).locator(selector)
    if interaction.label is not None:
        if interaction.kind in ("button", "toggle"):
            controls = controls.filter(has_text=re.compile(rf"^\s*{re.escape(interaction.label)}\s*$"))
        else:
            controls = controls.filter(
                has=page.locator(f'.widget-label:text-is("{interaction.label}")')
            )
    return controls.first


def change_control(page, control, kind: str) -> None:
    """Change a control the way a learner would: a key on a slider, a new option, a click."""
    if kind == "slider":
        handle = control.locator(".noUi-handle").first
        state = control.evaluate(JS_SLIDER_STATE)
        at_max = float(handle.get_attribute("aria-valuenow")) >= float(
            handle.get_attribute("aria-valuemax"))
        handle.focus()
        handle.press("ArrowLeft" if at_max else "ArrowRight")
        # aria-valuenow alone may not move (a log slider rounds its exponent): watch the read-out too
        page.wait_for_function(
            f"([c, s]) => ({JS_SLIDER_STATE})(c) !== s", arg=[control.element_handle(), state]
        )
    elif kind == "dropdown":
        select = control.locator("select")
        options = select.locator("option").all_text_contents()
        current = select.evaluate("s => s.selectedIndex")
        select.select_option(index=(current + 1) % len(options))
    else:
        control.click()


def answer_exercise(page, interaction: Interaction) -> None:
    """Answer a batchlab exercise as a learner would, press Check, and wait for the feedback."""
    box = page.locator(".widget-vbox").filter(
        has=page.locator("button.jupyter-button", has_text=re.compile(r"^\s*Check\s*$"))
    ).filter(has_text=interaction.label or "").last
    box.wait_for(state="attached", timeout=WIDGET_GRACE_MS)
    box.scroll_into_view_if_needed()
    text = box.locator(".widget-text input")
    if text.count():
        text.fill(interaction.answer)
        text.press("Enter")  # a Text widget without continuous_update syncs on Enter
    else:
        box.locator(".widget-radio-box label").filter(
            has_text=re.compile(rf"^\s*{re.escape(interaction.answer)}\s*$")
        ).locator("input").check()
    feedback = box.locator(".widget-html").last
    before = feedback.text_content()
    box.locator("button.jupyter-button", has_text=re.compile(r"^\s*Check\s*$")).click()
    page.wait_for_function(
        "([e, before, want]) => e.textContent !== before && e.textContent.includes(want)",
        arg=[feedback.element_handle(), before, interaction.expect],
        timeout=PLOT_CHANGE_TIMEOUT_MS,
    )


def interact_and_expect_redraw(page, interaction: Interaction, within=None) -> None:
    """Change the control (in the page, or inside the locator ``within``) and wait until the expected
    figure (or any picture) changes; for an exercise, until its feedback shows the expected verdict."""
    if interaction.kind == "exercise":
        answer_exercise(page, interaction)
        return
    control = locate_control(page, interaction, within)
    control.wait_for(state="attached", timeout=WIDGET_GRACE_MS)
    control.scroll_into_view_if_needed()
    if interaction.figure is None:
        page.evaluate(JS_MARK_ALL)
        changed = JS_ALL_CHANGED
    else:
        problem = page.evaluate(JS_MARK_FIGURE, [control.element_handle(), interaction.figure])
        assert problem is None, f"{interaction}: {problem}"
        changed = JS_FIGURE_CHANGED
    change_control(page, control, interaction.kind)
    page.wait_for_function(changed, timeout=PLOT_CHANGE_TIMEOUT_MS, polling=100)


def has_control(page, kind: str) -> bool:
    """Whether the page shows at least one control of this kind."""
    return locate_control(page, Interaction(kind=kind)).count() > 0


# ---------------------------------------------------------------------------------------------
# Voilà
# ---------------------------------------------------------------------------------------------


def open_in_voila(page, url: str, token: str, n_cells: int) -> None:
    """Load the Voilà page, wait until it has executed the notebook and shows it; check every
    cell was rendered."""
    page.goto(f"{url}/?token={token}")
    page.wait_for_function(
        """() => !document.getElementById('loading')
               && document.getElementById('rendered_cells').style.display !== 'none'""",
        timeout=RUN_ALL_TIMEOUT_MS,
        polling=250,
    )
    shown = page.locator("#rendered_cells [cell-index]").count()
    assert shown == n_cells, f"Voilà rendered {shown} of the notebook's {n_cells} cells"


def voila_errors(page) -> list[str]:
    """Error outputs in a Voilà page (it runs with show_tracebacks, so errors show as text)."""
    problems = []
    body = page.locator("#rendered_cells").text_content()
    if "There was an error when executing cell" in body:
        problems.append("Voilà reports an error when executing a cell")
    for text in page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    ).all_text_contents():
        if ERROR_TEXT.search(text):
            problems.append(f"error output:\n{text[-1500:]}")
    return problems


# ---------------------------------------------------------------------------------------------
# Fit and theme: what a learner on a narrow window or in the dark theme sees
# ---------------------------------------------------------------------------------------------

# Problems of fit in the outputs that hold widgets: a figure's text (a tick, an axis label) reaching past
# its bqplot figure's box (cut off), a figure (a live view's bqplot figure or its SVG) reaching past its
# output area's right edge (cut off or scrolled), an output area wider inside than out (scrollWidth >
# clientWidth: horizontal overflow), a label, button or read-out whose text is cut ("equal upda…":
# scrollWidth > clientWidth), and a control's label wrapped onto a line of its own (its box lies wholly
# above the control's). Only elements the page lays out (width > 0) count.
JS_FIT_PROBLEMS = """() => {""" + JS_FIGURE_LIB + """
  const problems = [];
  const shown = (e) => e.getBoundingClientRect().width > 0;
  const name = (e) => (e.textContent || '').trim().slice(0, 40) || e.className;
  const outputs = [...document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output')]
    .filter(o => o.querySelector('.jupyter-widgets') && shown(o));
  outputs.forEach(output => {
    const box = output.getBoundingClientRect();
    const cell = output.closest('.jp-Cell');
    const where = cell ? `cell ${[...cell.parentElement.children].indexOf(cell)}` : 'an output';
    if (output.scrollWidth > output.clientWidth + 1)
      problems.push(`${where}: the output overflows (${output.scrollWidth} px wide in `
                    + `${output.clientWidth})`);
    output.querySelectorAll(`${BQPLOT_FIGURE}, ${BQPLOT_FIGURE} svg`).forEach(div => {
      const r = div.getBoundingClientRect();
      if (r.width > 0 && r.right > box.right + 1)
        problems.push(`${where}: a figure ${Math.round(r.width)} px wide reaches `
                      + `${Math.round(r.right - box.right)} px past the output area `
                      + `(${Math.round(box.width)} px)`);
    });
    output.querySelectorAll(BQPLOT_FIGURE).forEach(figure => {  // bqplot clips what leaves its box
      const f = figure.getBoundingClientRect();
      figure.querySelectorAll('svg text').forEach(t => {
        const r = t.getBoundingClientRect();
        if (r.width > 0 && t.textContent.trim() && (r.left < f.left - 1 || r.right > f.right + 1
            || r.top < f.top - 1 || r.bottom > f.bottom + 1))
          problems.push(`${where}: figure text cut at the edge of its figure: `
                        + `${JSON.stringify(t.textContent.trim().slice(0, 40))}`); });
    });
    output.querySelectorAll('.widget-label, .widget-label-basic, .widget-readout, button')
      .forEach(e => { if (shown(e) && e.scrollWidth > e.clientWidth + 1)
        problems.push(`${where}: text cut: ${JSON.stringify(name(e))} `
                      + `(${e.scrollWidth} px in ${e.clientWidth})`); });
    output.querySelectorAll('.widget-inline-hbox > .widget-label').forEach(label => {
      const control = label.nextElementSibling;
      if (!control || !shown(label) || !shown(control)) return;
      if (label.getBoundingClientRect().bottom <= control.getBoundingClientRect().top + 1)
        problems.push(`${where}: the label ${JSON.stringify(name(label))} sits on a line of its own`);
    });
  });
  return problems;
}"""

# Colour arithmetic shared by the contrast checks below (WCAG 2): a CSS colour's numbers, whether it is
# opaque, its relative luminance, and the contrast ratio (L1 + 0.05) / (L2 + 0.05) of two colours.
JS_COLOUR_LIB = """
  const rgb = (c) => { const m = c.match(/[\\d.]+/g); return m ? m.slice(0, 4).map(Number) : null; };
  const opaque = (c) => { const v = rgb(c); return v && (v.length < 4 || v[3] > 0.5); };
  const lum = (c) => { const [r, g, b] = rgb(c).slice(0, 3).map(v => v / 255)
      .map(v => v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05); };
"""

# Each figure-key swatch (markup.swatch) shown: its colour, the colour behind it and their contrast ratio
# (WCAG 2: (L1 + 0.05) / (L2 + 0.05) of the relative luminances). A swatch's colour is its fill, or its
# border where it has no fill (dashed, dotted, frames); a box with both counts the stronger of the two.
JS_SWATCH_CONTRASTS = """() => {""" + JS_COLOUR_LIB + """
  const behind = (e) => { for (let p = e.parentElement; p; p = p.parentElement) {
      const c = getComputedStyle(p).backgroundColor; if (opaque(c)) return c; }
    return 'rgb(255, 255, 255)'; };
  return [...document.querySelectorAll('.jp-NotebookPanel .batchlab-swatch')]
    .filter(e => e.getBoundingClientRect().width > 0)
    .map(e => { const s = getComputedStyle(e), back = behind(e);
      const inks = [s.backgroundColor, s.borderTopColor].filter((c, i) =>
        opaque(c) && (i === 0 || parseFloat(s.borderTopWidth) > 0));
      const best = Math.max(...inks.map(c => ratio(c, back)));
      return {text: (e.parentElement.textContent || '').trim().slice(0, 40), colours: inks, back,
              contrast: Math.round(best * 100) / 100}; });
}"""

JS_THEME = "() => document.body.dataset.jpThemeName || ''"


def set_lab_theme(page, theme: str) -> None:
    """Switch JupyterLab's theme ("JupyterLab Light" / "JupyterLab Dark") and wait until it is applied."""
    page.evaluate("(t) => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", theme)
    page.wait_for_function(f"(t) => ({JS_THEME})() === t", arg=theme, timeout=30_000)
    page.wait_for_function("() => !document.querySelector('#jupyterlab-splash')",  # the loading screen
                           timeout=30_000)


def set_left_sidebar(page, open_: bool) -> None:
    """Open or collapse JupyterLab's left sidebar (the file browser) and wait for the layout."""
    js_open = "() => !document.querySelector('#jp-left-stack').classList.contains('lm-mod-hidden')"
    js_width = "() => document.querySelector('.jp-NotebookPanel').getBoundingClientRect().width"
    if page.evaluate(js_open) != open_:
        before = page.evaluate(js_width)
        page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
        page.wait_for_function(f"() => ({js_open})() === {str(open_).lower()} && ({js_width})() !== {before}")

# Text in widget outputs that contrasts less than 3:1 with what is behind it (e.g. white text left on a
# light box in the dark theme). Each element with text of its own counts once; disabled controls do not.
# A figure's SVG text (a bqplot view's ticks, labels, titles) is drawn in its fill colour, on the topmost
# filled shape under its middle (a mark, the plot area's background; found by geometry, so off-screen
# figures count too), else on whatever is behind the figure.
JS_LOW_CONTRAST_TEXT = """() => {""" + JS_COLOUR_LIB + """
  const behind = (e) => { for (let p = e; p; p = p.parentElement) {
      const c = getComputedStyle(p).backgroundColor; if (opaque(c)) return c; }
    return 'rgb(255, 255, 255)'; };
  const found = [];
  document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output .jupyter-widgets *').forEach(e => {
    const own = [...e.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent.trim()).join(' ');
    if (!own || e.getBoundingClientRect().width === 0 || e.closest(':disabled, .mod-disabled')) return;
    let c = getComputedStyle(e).color, back = behind(e);
    if (e.closest('svg')) {  // a figure's text (bqplot): its fill, on what is drawn under its middle
      c = getComputedStyle(e).fill;
      if (!opaque(c)) return;
      const figure = e.closest('.bqplot.figure') || e.closest('svg');
      const t = e.getBoundingClientRect(), middle = new DOMPoint(t.left + t.width / 2, t.top + t.height / 2);
      let under = null;  // SVG paints in document order: the last filled shape before the text wins
      for (const shape of figure.querySelectorAll('svg path, svg rect, svg circle, svg polygon')) {
        if (!(shape.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING)) break;
        const style = getComputedStyle(shape), fill = style.fill, screen = shape.getScreenCTM();
        const painted = style.visibility === 'visible' && style.display !== 'none'
          && parseFloat(style.opacity) > 0.5 && parseFloat(style.fillOpacity) > 0.5;  // not an events rect
        if (painted && opaque(fill) && screen && shape.getBoundingClientRect().width > 0
            && shape.isPointInFill(middle.matrixTransform(screen.inverse()))) under = fill;
      }
      back = under || behind(figure);
    }
    const r = ratio(c, back);
    if (r < 3) found.push(`${JSON.stringify(own.slice(0, 50))}: ${c} on ${back} `
                          + `(${r.toFixed(2)}:1)`);
  });
  return found;
}"""
