"""How fast the widget apps answer in a real JupyterLab: input event -> first frame that shows the change.

    python benchmarks/widget_latency.py [--trials 20] [--only calculator stepper ...]

For each app the script opens its notebook in JupyterLab in headless Chromium (the browser tests'
servers and helpers, tests/browser/), runs it (Restart Kernel and Run All), then changes one control
``--trials`` times as a learner would (a key press on a focused slider, alternately right and left; a
click on a button). For each change it records, in the page:

* **figure**: from the input event (``keydown`` / ``mousedown``, its ``timeStamp``) to the first
  animation frame in which the app's figure (its first ipympl canvas) shows different pixels;
* **numbers**: the same, to the first frame in which the text of the app's HTML outputs (the numbers
  beside the figure) differs.

Between changes it waits until the kernel is idle and nothing has changed for a moment, so each
change is measured alone. Start (the simulator) is measured from the click to the first visible change
of anything in the app (a canvas or a number), and each run is let finish before the next one.

This is a benchmark, not a test: it prints medians and quartiles (ms) and asserts nothing. Timings
depend on the machine and its load; record the machine with the figures (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

import servers  # noqa: E402  (the browser tests' helpers)
from jupyter_page import JS_KERNEL_STATE, notebook_cells, open_in_lab, restart_and_run_all  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass(frozen=True)
class Target:
    """One control of one app: the notebook, a piece of the app cell's source, the control."""

    name: str
    notebook: str
    cell_source: str  # a string that only the app's cell contains
    kind: str  # "slider" or "button"
    label: str
    settle_ms: int = 400  # quiet time after a change before the next one


TARGETS = [
    Target("calculator", "02_relationship_formula.ipynb", "FormulaCalculatorApp(", "slider",
           "batch size B"),
    Target("learning-rate app", "02_relationship_formula.ipynb", "LearningRateApp(", "slider",
           "new batch size B"),
    Target("landscape", "03_batch_size_spectrum.ipynb", "LandscapeApp(", "slider", "mini-batch B"),
    Target("stepper Next", "01_definitions.ipynb", "BatchStepperApp(", "button", "Next batch"),
    Target("simulator slider", "06_training_simulator.ipynb", "TrainingSimulatorApp(", "slider",
           "batch size B"),
    Target("simulator Start", "06_training_simulator.ipynb", "TrainingSimulatorApp(", "button",
           "Start", settle_ms=1500),
]

# Arm a measurement: remember the app's canvas pixels and numbers now; on the next input event, watch
# every animation frame until both changed (or 10 s passed). The canvas is compared (toDataURL) only
# in a frame after something was drawn into it (its drawImage/putImageData calls are counted), so the
# measuring adds almost no work per frame. The result lands in window.__latency.
JS_ARM = """([cell, kind]) => {
  const canvas = cell.querySelector('.jp-OutputArea .jupyter-matplotlib-canvas-div canvas');
  const texts = () => [...cell.querySelectorAll('.jp-OutputArea .widget-html, .jp-OutputArea table')]
    .map(e => e.textContent).join('|');
  const pixels = () => canvas ? canvas.toDataURL() : '';
  if (canvas && !canvas.__latencyWatched) {
    const ctx = canvas.getContext('2d');
    for (const name of ['drawImage', 'putImageData']) {
      const original = ctx[name];
      ctx[name] = function (...args) { canvas.__drawn = true; return original.apply(this, args); };
    }
    canvas.__latencyWatched = true;
  }
  const before = {pixels: pixels(), texts: texts()};
  window.__latency = null;
  const type = kind === 'slider' ? 'keydown' : 'mousedown';
  document.addEventListener(type, function onInput(event) {
    document.removeEventListener(type, onInput, true);
    const t0 = event.timeStamp, result = {figure: null, numbers: null};
    if (canvas) canvas.__drawn = false;
    const frame = (now) => {
      if (result.figure === null && canvas && canvas.__drawn) {
        canvas.__drawn = false;
        if (pixels() !== before.pixels) result.figure = now - t0;
      }
      if (result.numbers === null && texts() !== before.texts) result.numbers = now - t0;
      const done = (result.figure !== null || !canvas) && result.numbers !== null;
      if (done || now - t0 > 10000) { window.__latency = result; } else { requestAnimationFrame(frame); }
    };
    requestAnimationFrame(frame);
  }, true);
}"""

JS_IDLE = f"() => ({JS_KERNEL_STATE})() === 'connected/idle'"


def app_cell(page, notebook: Path, target: Target):
    """The DOM cell that shows the app: the first cell, from the one whose source holds
    ``target.cell_source`` on, whose stored outputs hold a widget view."""
    cells = notebook_cells(notebook)
    start = next(i for i, c in enumerate(cells)
                 if c["cell_type"] == "code" and target.cell_source in "".join(c["source"]))
    index = next(i for i in range(start, len(cells)) if any(
        WIDGET_VIEW in out.get("data", {}) for out in cells[i].get("outputs", [])))
    return page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(index)


def control(cell, target: Target):
    """The control to change, inside the app's cell (a slider found by its exact label, else the
    cell's first slider, with a note: labels may change as the apps do)."""
    if target.kind == "button":
        return cell.locator("button.jupyter-button").filter(has_text=target.label).first
    sliders = cell.locator(".widget-slider")
    labelled = sliders.filter(has=cell.page.locator(f'.widget-label:text-is("{target.label}")'))
    if labelled.count():
        return labelled.first
    print(f"  note: no slider labelled {target.label!r} in the {target.name}: using its first slider")
    return sliders.first


def settle(page, ms: int) -> None:
    """Wait until the kernel is idle, then a quiet moment for the last redraw to arrive."""
    page.wait_for_function(JS_IDLE, timeout=120_000, polling=50)
    page.wait_for_timeout(ms)  # a fixed pause: let trailing redraws land before the next change
    page.wait_for_function(JS_IDLE, timeout=120_000, polling=50)


def measure(page, notebook: Path, target: Target, trials: int) -> list[dict]:
    """``trials`` changes of the target's control; one dict (figure, numbers in ms) per change."""
    cell = app_cell(page, notebook, target)
    cell.scroll_into_view_if_needed()
    widget = control(cell, target)
    widget.wait_for(state="visible", timeout=30_000)
    handle = widget.locator(".noUi-handle").first if target.kind == "slider" else widget
    results = []
    for trial in range(trials):
        if target.kind == "button":  # a run started by the last click must have ended
            handle.element_handle().wait_for_element_state("enabled", timeout=120_000)
        settle(page, target.settle_ms)
        page.evaluate(JS_ARM, [cell.element_handle(), target.kind])
        if target.kind == "slider":
            handle.focus()
            handle.press("ArrowRight" if trial % 2 == 0 else "ArrowLeft")
        else:
            handle.click()
        page.wait_for_function("() => window.__latency !== null", timeout=30_000, polling=20)
        results.append(page.evaluate("() => window.__latency"))
    settle(page, target.settle_ms)
    return results


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="changes per control (default 20)")
    parser.add_argument("--only", nargs="*", default=None,
                        help=f"measure only these targets: {[t.name for t in TARGETS]}")
    parser.add_argument("--notebooks", type=Path, default=REPO / "notebooks")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error(f"--trials must be >= 1, got {args.trials}")
    targets = [t for t in TARGETS if args.only is None or t.name in args.only]
    if not targets:
        parser.error(f"--only {args.only}: no such target; choose from {[t.name for t in TARGETS]}")
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, \
            servers.jupyterlab(args.notebooks, Path(tmp)) as lab, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        opened = None
        for target in targets:
            if target.notebook != opened:
                lab.shutdown_kernels()
                started = time.perf_counter()
                open_in_lab(page, lab.url, lab.token, target.notebook)
                restart_and_run_all(page)
                opened = target.notebook
                print(f"{target.notebook}: ran in {time.perf_counter() - started:.0f} s", flush=True)
            results = measure(page, args.notebooks / target.notebook, target, args.trials)
            first = [min((v for v in r.values() if v is not None), default=None) for r in results]
            row = (target.name, summary([r["figure"] for r in results]),
                   summary([r["numbers"] for r in results]), summary(first))
            rows.append(row)
            print(f"  {row[0]}: figure {row[1]}; numbers {row[2]}; first change {row[3]}", flush=True)
        browser.close()
    print("\n| control | input → figure redrawn (ms) | input → numbers changed (ms) | "
          "input → first visible change (ms) |")
    print("| --- | --- | --- | --- |")
    for name, figure, numbers, first in rows:
        print(f"| {name} | {figure} | {numbers} | {first} |")
    print("\nmedian [quartiles] (n changes) per control")
    return 0


if __name__ == "__main__":
    sys.exit(main())
