"""Run an app notebook top to bottom, then again in the same kernel: the second pass raises nothing and
leaves no extra open figure, widget or thread (re-running a cell replaces the app it made before).

The second pass re-runs every cell that makes something live (an app, a live plot, an exercise's Check
box: the cells that own threads, figures and widgets, and the ones a learner re-runs to play) and every
other cell that took under ``QUICK_S`` seconds the first time. The few long computations that make
nothing live (a sweep that trains for many seconds) are not run twice: running them again repeats the
same computation, and they are most of the notebook's time (this halves the test's cost in `make test`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
MAKES_LIVE = ("App(", "LiveTrainingPlot(", "exercises.show(")  # source text of a cell that makes a live thing
QUICK_S = 1.0  # a cell that took less than this (seconds) the first time is run again
# What a pass leaves open: pyplot figures, widgets (an app's controls and live figure), app threads.
PROBE = ("import json, threading, warnings, ipywidgets, matplotlib.pyplot as plt\n"
         "with warnings.catch_warnings():\n"
         "    warnings.simplefilter('ignore', DeprecationWarning)  # Widget.widgets: the open widgets\n"
         "    open_widgets = len(ipywidgets.Widget.widgets)\n"
         "print(json.dumps([len(plt.get_fignums()), open_widgets, "
         "sorted(t.name for t in threading.enumerate() if t.name.endswith('App'))]))")


def counts(client: NotebookClient, nb: nbformat.NotebookNode) -> list:
    cell = nbformat.v4.new_code_cell(PROBE)
    nb.cells.append(cell)
    client.execute_cell(cell, len(nb.cells) - 1)
    nb.cells.pop()
    return json.loads("".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout"))


# Every notebook with a widget app (the learner's likeliest "run all again"), 08 excepted: it has no app.
APP_NOTEBOOKS = ["01_definitions.ipynb", "02_relationship_formula.ipynb", "03_batch_size_spectrum.ipynb",
                 "04_generalization_gap.ipynb", "06_training_simulator.ipynb",
                 "07_choosing_the_batch_size.ipynb"]


@pytest.mark.parametrize("name", APP_NOTEBOOKS)
def test_running_the_notebook_twice_leaves_nothing_behind(name):
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO / "notebooks")}})
    first_pass_s = {}
    with client.setup_kernel(env=env):
        for cell in code:
            started = time.perf_counter()
            client.execute_cell(cell, nb.cells.index(cell))
            first_pass_s[id(cell)] = time.perf_counter() - started
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:80]
        before = counts(client, nb)
        again = [cell for cell in code if first_pass_s[id(cell)] < QUICK_S
                 or any(text in cell.source for text in MAKES_LIVE)]
        for cell in again:
            client.execute_cell(cell, nb.cells.index(cell))
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:80]
        after = counts(client, nb)
    assert after == before, (before, after)
