"""Run an app notebook top to bottom twice in one kernel: the second pass raises nothing and leaves
no extra open figure and no extra thread (re-running a cell replaces the app it made before)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
PROBE = ("import json, threading, matplotlib.pyplot as plt\n"
         "print(json.dumps([len(plt.get_fignums()), "
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
    passes = []
    with client.setup_kernel(env=env):
        for _ in range(2):
            for cell in code:
                client.execute_cell(cell, nb.cells.index(cell))
                assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:80]
            passes.append(counts(client, nb))
    assert passes[1] == passes[0], passes
