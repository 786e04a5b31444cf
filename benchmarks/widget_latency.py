"""How fast the widget apps answer in a real browser: input event -> first frame that shows the change.

    python benchmarks/widget_latency.py [--trials 20] [--dpr 1 2] [--only calculator stepper ...]

For each app the script opens its notebook in JupyterLab in headless Chromium (the browser tests'
servers and helpers, tests/browser/), runs it (Restart Kernel and Run All), then changes the app's main
control ``--trials`` times as a learner would (a key press on the focused slider, alternately right and
left; a click on a button). The Voilà target does the same in the stand-alone simulator app
(apps/simulator.ipynb) served by Voilà. For each change it records, in the page:

* **figure**: from the input event (``keydown`` / ``mousedown``, its ``timeStamp``) to the first
  animation frame that shows the app's figure changed. The figure is the first one in the app's cell,
  as the browser tests define it (``JS_FIGURE_LIB`` in tests/browser/jupyter_page.py), or else its
  first ipympl canvas, so the same script measures the apps before and after issue 26:

  - a live view (bqplot, SVG): a ``MutationObserver`` on the figure's box sees its marks change (a
    ``path``'s ``d``, a ``text``'s content, an ``image``'s href, a ``transform``), and the change counts
    once what the figure shows differs from before the input. It is timestamped with the animation
    frame that paints it: a change made inside an animation-frame callback (bqplot applies marks in d3
    transitions, which run in one) belongs to that frame (every ``requestAnimationFrame`` callback is
    wrapped, from page load, so the observer's records are taken as the callback ends); any other
    change to the next frame;
  - an ipympl canvas: the first frame in which its pixels (``toDataURL()``) differ, compared only in
    frames after something was drawn into it;

* **numbers**: the same, to the first frame in which the text of the app's HTML outputs (the numbers
  beside the figure) differs: the reference, what the browser itself adds to any change.

Between changes it waits until the kernel is idle and nothing has changed for a moment, so each change
is measured alone. Start (the simulator) is measured from the click to the first visible change of
anything in the app (its figure or a number), and each run is let finish before the next one.

``--dpr 1 2`` measures everything once per device pixel ratio (Playwright's
``new_context(device_scale_factor=...)``: 2 is a HiDPI laptop screen). The output names the CPU (``lscpu``)
and the load average before and after each control (the machine may be shared).

This is a benchmark, not a test: it prints medians and quartiles (ms) and asserts nothing. Timings
depend on the machine and its load; record the machine with the figures (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

import servers  # noqa: E402  (the browser tests' helpers)
from jupyter_page import (  # noqa: E402
    JS_FIGURE_LIB,
    JS_KERNEL_STATE,
    notebook_cells,
    open_in_lab,
    open_in_voila,
    restart_and_run_all,
    wait_widgets_loaded,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VOILA = "voila"  # Target.notebook of the app served by Voilà (apps/simulator.ipynb), not by JupyterLab


@dataclass(frozen=True)
class Target:
    """One control of one app: the notebook, a piece of the app cell's source, the control."""

    name: str
    notebook: str  # a notebook in --notebooks, or "voila:<file in --apps>"
    cell_source: str  # a string that only the app's cell contains
    kind: str  # "slider" or "button"
    label: str  # the slider's description (exact) or the button's text
    settle_ms: int = 400  # quiet time after a change before the next one
    first_change: bool = False  # the table shows the first visible change (figure or numbers)


TARGETS = [
    Target("calculator B", "02_relationship_formula.ipynb", "FormulaCalculatorApp(", "slider",
           "batch size B"),
    Target("learning-rate app B", "02_relationship_formula.ipynb", "LearningRateApp(", "slider",
           "new batch size B"),
    Target("landscape B", "03_batch_size_spectrum.ipynb", "LandscapeApp(", "slider", "mini-batch B"),
    Target("stepper Next", "01_definitions.ipynb", "BatchStepperApp(", "button", "Next batch"),
    Target("simulator B", "06_training_simulator.ipynb", "TrainingSimulatorApp(", "slider", "batch size B"),
    Target("simulator Start", "06_training_simulator.ipynb", "TrainingSimulatorApp(", "button", "Start",
           settle_ms=1500, first_change=True),
    Target("sweep explorer B", "04_generalization_gap.ipynb", "SweepExplorerApp(", "slider", "batch size B"),
    Target("critical-batch target", "07_choosing_the_batch_size.ipynb", "CriticalBatchApp(", "slider",
           "target val loss"),
    Target("Voilà simulator B", f"{VOILA}:simulator.ipynb", "TrainingSimulatorApp(", "slider",
           "batch size B"),
]

# Installed before the page's own scripts (page.add_init_script): every requestAnimationFrame callback
# runs wrapped, and window.__latencyFrameEnd (when a measurement is armed) is told, as each callback
# ends, the timestamp of the frame it ran in: a figure changed inside it is painted in that frame.
JS_FRAME_HOOK = """(() => {
  const original = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) => original((timestamp) => {
    try { return callback(timestamp); } finally {
      const hook = window.__latencyFrameEnd; if (hook) hook(timestamp); }
  });
})();"""

# Arm a measurement in the app's cell: remember what its figure and numbers show now; on the next input
# event, wait (in animation frames) until both changed (or 10 s passed). The result lands in
# window.__latency: {figure, numbers} in ms from the input event, null where nothing changed.
JS_ARM = """([cell, kind]) => {""" + JS_FIGURE_LIB + """
  // The app's figure: its live view (bqplot), or an ipympl canvas (the apps before issue 26).
  const CANVAS_FIGURE = '.jupyter-matplotlib-canvas-div';
  const figure = figures(cell)[0] || cell.querySelector(CANVAS_FIGURE) || null;
  const isCanvasFigure = (box) => box.matches(CANVAS_FIGURE);
  const texts = () => [...cell.querySelectorAll('.widget-html, table')]
    .filter(e => !(figure && figure.contains(e))).map(e => e.textContent).join('|');
  const state = () => !figure ? '' : isCanvasFigure(figure) ? figure.querySelector('canvas').toDataURL()
    : figureState(figure);
  const before = {figure: state(), texts: texts()};
  const result = {figure: null, numbers: null, renderer: !figure ? 'none'
                  : isCanvasFigure(figure) ? 'canvas' : 'svg'};
  let t0 = null, dirty = false, seen = null;  // seen: the frame that first shows the figure changed
  const changed = () => state() !== before.figure;
  let observer = null;
  if (figure && isCanvasFigure(figure)) {
    // ipympl: compare the pixels in frames after something was drawn into the canvas
    const canvas = figure.querySelector('canvas');
    if (!canvas.__latencyWatched) {
      const ctx = canvas.getContext('2d');
      for (const name of ['drawImage', 'putImageData']) {
        const original = ctx[name];
        ctx[name] = function (...args) { canvas.__drawn = true; return original.apply(this, args); };
      }
      canvas.__latencyWatched = true;
    }
    canvas.__drawn = false;
  } else if (figure) {
    // bqplot: a record inside an animation-frame callback is taken when that callback ends (its frame
    // paints it); a record outside one reaches the observer, and the next frame paints it.
    const relevant = (records) => records.length > 0 && t0 !== null && seen === null && changed();
    observer = new MutationObserver((records) => { if (relevant(records)) dirty = true; });
    observer.observe(figure, {subtree: true, childList: true, characterData: true, attributes: true,
                              attributeFilter: ['d', 'href', 'transform']});
    window.__latencyFrameEnd = (timestamp) => {
      if (relevant(observer.takeRecords())) seen = timestamp; };
  }
  window.__latency = null;
  const type = kind === 'slider' ? 'keydown' : 'mousedown';
  document.addEventListener(type, function onInput(event) {
    document.removeEventListener(type, onInput, true);
    t0 = event.timeStamp;
    const frame = (now) => {
      if (result.figure === null && figure) {
        if (isCanvasFigure(figure)) {
          const canvas = figure.querySelector('canvas');
          if (canvas.__drawn) { canvas.__drawn = false; if (changed()) result.figure = now - t0; }
        } else if (seen !== null) { result.figure = seen - t0;
        } else if (dirty) { result.figure = now - t0; }
      }
      if (result.numbers === null && texts() !== before.texts) result.numbers = now - t0;
      const done = (result.figure !== null || !figure) && result.numbers !== null;
      if (done || now - t0 > 10000) {
        if (observer) observer.disconnect();
        window.__latencyFrameEnd = null;
        window.__latency = result;
      } else { requestAnimationFrame(frame); }
    };
    requestAnimationFrame(frame);
  }, true);
}"""

JS_IDLE = f"() => ({JS_KERNEL_STATE})() === 'connected/idle'"

# The index of the first cell, from ``start`` on, that shows the control (in JupyterLab).
JS_CELL_WITH_CONTROL = """([start, kind, label]) => {
  const cells = [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')];
  const has = (cell) => kind === 'slider'
    ? [...cell.querySelectorAll('.widget-slider .widget-label')].some(l => l.textContent === label)
    : [...cell.querySelectorAll('button.jupyter-button')].some(b => b.textContent.trim() === label);
  return cells.findIndex((cell, i) => i >= start && has(cell));
}"""


def app_cell(page, notebook: Path, target: Target):
    """The DOM cell that shows the app: the first cell, from the one whose source holds
    ``target.cell_source`` on, that shows the target's control (in Voilà: the cell showing it)."""
    if target.notebook.startswith(f"{VOILA}:"):
        return page.locator("#rendered_cells [cell-index]").filter(has=controls(page, target)).first
    cells = notebook_cells(notebook)
    start = next(i for i, c in enumerate(cells)
                 if c["cell_type"] == "code" and target.cell_source in "".join(c["source"]))
    index = page.evaluate(JS_CELL_WITH_CONTROL, [start, target.kind, target.label])
    if index < 0:
        raise RuntimeError(f"{target.name}: no cell from {start} on shows the control {target.label!r}")
    return page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(index)


def controls(where, target: Target):
    """The controls inside ``where`` (a page or a locator) that match the target: a slider by its exact
    label, a button by its text."""
    page = getattr(where, "page", where)
    if target.kind == "button":
        return where.locator("button.jupyter-button").filter(has_text=target.label)
    return where.locator(".widget-slider").filter(
        has=page.locator(f'.widget-label:text-is("{target.label}")'))


def settle(page, ms: int, lab: bool) -> None:
    """Wait until the kernel is idle (JupyterLab; Voilà's page does not say), then a quiet moment for
    the last redraw to arrive."""
    if lab:
        page.wait_for_function(JS_IDLE, timeout=120_000, polling=50)
    page.wait_for_timeout(ms)  # a fixed pause: let trailing redraws land before the next change
    if lab:
        page.wait_for_function(JS_IDLE, timeout=120_000, polling=50)


def measure(page, notebook: Path, target: Target, trials: int) -> list[dict]:
    """``trials`` changes of the target's control; one dict (figure, numbers in ms) per change."""
    lab = not target.notebook.startswith(f"{VOILA}:")
    cell = app_cell(page, notebook, target)
    cell.scroll_into_view_if_needed()
    widget = controls(cell, target).first
    widget.wait_for(state="visible", timeout=30_000)
    handle = widget.locator(".noUi-handle").first if target.kind == "slider" else widget
    results = []
    for trial in range(trials):
        if target.kind == "button":  # a run started by the last click must have ended
            handle.element_handle().wait_for_element_state("enabled", timeout=120_000)
        settle(page, target.settle_ms, lab)
        page.evaluate(JS_ARM, [cell.element_handle(), target.kind])
        if target.kind == "slider":
            handle.focus()
            handle.press("ArrowRight" if trial % 2 == 0 else "ArrowLeft")
        else:
            handle.click()
        page.wait_for_function("() => window.__latency !== null", timeout=30_000, polling=20)
        results.append(page.evaluate("() => window.__latency"))
    settle(page, target.settle_ms, lab)
    if target.kind == "button":
        handle.element_handle().wait_for_element_state("enabled", timeout=120_000)
    return results


def median_of(values: list[float | None]) -> str:
    """The median of the measured values in ms ("–" when none)."""
    found = [v for v in values if v is not None]
    return f"{statistics.median(found):.0f}" if found else "–"


def summary(values: list[float | None]) -> str:
    """median [quartiles] (n) of the measured values, in ms."""
    found = [v for v in values if v is not None]
    if not found:
        return "no change seen"
    if len(found) == 1:
        return f"{found[0]:.0f} (n = 1)"
    q1, median, q3 = statistics.quantiles(found, n=4, method="inclusive")
    missed = f", {len(values) - len(found)} missed" if len(found) < len(values) else ""
    return f"{median:.0f} [{q1:.0f}–{q3:.0f}] (n = {len(found)}{missed})"


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` reports it, with the number of logical CPUs."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name")]
    return f"{names[0] if names else 'unknown CPU'}, {os.cpu_count()} logical CPUs"


def load() -> str:
    """The load averages over 1, 5 and 15 minutes."""
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def run_lab_targets(browser, targets: list[Target], notebooks: Path, dpr: float, trials: int,
                    rows: dict) -> None:
    """Measure the JupyterLab targets at one pixel ratio, each notebook opened and run once."""
    with tempfile.TemporaryDirectory() as tmp, servers.jupyterlab(notebooks, Path(tmp)) as lab:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=dpr)
        context.add_init_script(JS_FRAME_HOOK)
        page = context.new_page()
        page.set_default_timeout(60_000)
        opened = None
        for target in targets:
            if target.notebook != opened:
                lab.shutdown_kernels()
                started = time.perf_counter()
                open_in_lab(page, lab.url, lab.token, target.notebook)
                restart_and_run_all(page)
                opened = target.notebook
                print(f"  {target.notebook}: ran in {time.perf_counter() - started:.0f} s", flush=True)
            report(target, dpr, measure(page, notebooks / target.notebook, target, trials), rows)
        context.close()


def run_voila_target(browser, target: Target, apps: Path, dpr: float, trials: int, rows: dict) -> None:
    """Measure a target of an app served by Voilà, at one pixel ratio."""
    notebook = apps / target.notebook.split(":", 1)[1]
    with tempfile.TemporaryDirectory() as tmp, servers.voila(notebook, Path(tmp)) as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=dpr)
        context.add_init_script(JS_FRAME_HOOK)
        page = context.new_page()
        page.set_default_timeout(60_000)
        started = time.perf_counter()
        open_in_voila(page, server.url, server.token, len(notebook_cells(notebook)))
        wait_widgets_loaded(page)
        print(f"  {notebook.name} in Voilà: shown in {time.perf_counter() - started:.0f} s", flush=True)
        report(target, dpr, measure(page, notebook, target, trials), rows)
        context.close()


def report(target: Target, dpr: float, results: list[dict], rows: dict) -> None:
    """Print one control's figures and keep them for the final table."""
    first = [min((r[k] for k in ("figure", "numbers") if r[k] is not None), default=None) for r in results]
    renderers = sorted({r["renderer"] for r in results})
    entry = {"figure": [r["figure"] for r in results], "numbers": [r["numbers"] for r in results],
             "first": first, "renderer": "/".join(renderers), "load": load()}
    rows[(target.name, dpr)] = entry
    print(f"  DPR {dpr:g} {target.name} ({entry['renderer']}): figure {summary(entry['figure'])}; "
          f"numbers {summary(entry['numbers'])}; first change {summary(first)}; load {entry['load']}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="changes per control (default 20)")
    parser.add_argument("--dpr", type=float, nargs="+", default=[1.0],
                        help="device pixel ratios to measure at, e.g. --dpr 1 2 (default 1)")
    parser.add_argument("--only", nargs="*", default=None,
                        help=f"measure only these targets: {[t.name for t in TARGETS]}")
    parser.add_argument("--notebooks", type=Path, default=REPO / "notebooks")
    parser.add_argument("--apps", type=Path, default=REPO / "apps", help="the Voilà apps' folder")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error(f"--trials must be >= 1, got {args.trials}")
    if any(not 0.5 <= dpr <= 4 for dpr in args.dpr):
        parser.error(f"--dpr must lie in [0.5, 4], got {args.dpr}")
    targets = [t for t in TARGETS if args.only is None or t.name in args.only]
    if not targets:
        parser.error(f"--only {args.only}: no such target; choose from {[t.name for t in TARGETS]}")
    from playwright.sync_api import sync_playwright

    print(f"CPU: {cpu_model()}; load average (1/5/15 min) at start {load()}", flush=True)
    rows: dict = {}
    started = time.perf_counter()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for dpr in args.dpr:
            lab_targets = [t for t in targets if not t.notebook.startswith(f"{VOILA}:")]
            if lab_targets:
                run_lab_targets(browser, lab_targets, args.notebooks, dpr, args.trials, rows)
            for target in targets:
                if target.notebook.startswith(f"{VOILA}:"):
                    run_voila_target(browser, target, args.apps, dpr, args.trials, rows)
        browser.close()
    print(f"\nCPU: {cpu_model()}; load average (1/5/15 min) at the end {load()}; "
          f"{time.perf_counter() - started:.0f} s in all; {args.trials} changes per control")
    head = " | ".join(f"figure, DPR {d:g} | numbers, DPR {d:g}" for d in args.dpr)
    print(f"\nMedian ms, input event → first frame showing the change (first visible change for Start)\n\n"
          f"| control | {head} | renderer |")
    print("| --- |" + " ---: | ---: |" * len(args.dpr) + " --- |")
    for target in targets:
        cells, renderer = [], set()
        for dpr in args.dpr:
            entry = rows.get((target.name, dpr))
            if entry is None:
                cells += ["–", "–"]
                continue
            figure = entry["first"] if target.first_change else entry["figure"]
            cells += [median_of(figure), median_of(entry["numbers"])]
            renderer.add(entry["renderer"])
        print(f"| {target.name} | " + " | ".join(cells) + f" | {'/'.join(sorted(renderer))} |")
    print("\nmedian [quartiles] (n changes) per control and pixel ratio:")
    for (name, dpr), entry in rows.items():
        print(f"  DPR {dpr:g} {name}: figure {summary(entry['figure'])}; "
              f"numbers {summary(entry['numbers'])}; first {summary(entry['first'])}; "
              f"load after {entry['load']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
