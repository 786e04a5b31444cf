"""Notebook 03's live landscape: batch GD, SGD and mini-batch descent from one start, side by side.

:class:`LandscapeApp` runs three descents on the line-fitting problem of :mod:`batchlab.line_fit`
(full batch ``B = N``, ``B = 1`` and a mini-batch size chosen on a log-scale slider) and draws their
parameter paths over the loss contours, with their loss curves beside. Moving any control recomputes
the paths and moves the existing lines (``set_data``); nothing is re-created. ``fig`` is a plain
matplotlib Figure; the page shows its live view (:func:`batchlab.apps.live.canvas_widget`: the lines,
contours and texts mirrored as bqplot marks, synced after every change).

Controls (public attributes, so tests can set ``.value``):

* ``batch_size``: ``SelectionSlider`` over log-spaced integer batch sizes from 1 to ``N`` (so a batch
  size above ``N`` cannot be chosen);
* ``learning_rate``: ``FloatLogSlider``;
* ``steps``: ``IntSlider``: the number of updates of each path ("equal updates"), or the number of
  epochs ("equal samples": every path processes ``steps × N`` samples, so batch GD makes ``steps``
  updates, SGD ``steps × N`` and the mini-batch path ``steps × ceil(N/B)``);
* ``budget``: ``ToggleButtons`` between those two budgets.

``paths`` holds the three :class:`~batchlab.line_fit.DescentPath` objects last drawn; ``summary`` is
an HTML table of their updates, samples, epochs and final losses, which is also the figure's key (each
path's colour: the figure has no legend); ``widget`` is the whole app.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from batchlab import line_fit
from batchlab.apps.live import App, NamedSelectionSlider, canvas_widget, labelled
from batchlab.line_fit import BUDGETS, DescentPath, RegressionProblem, steps_for_budget
from batchlab.markup import html_table, swatch
from batchlab.plots.landscape import LandscapePlot
from batchlab.plots.live import request_redraw
from batchlab.plots.style import DPI, FULL_WIDTH
from batchlab.validation import require_instance, require_int, require_positive_float

__all__ = ["LandscapeApp"]


class LandscapeApp(App):
    """Three descents over the loss contours of a :class:`RegressionProblem`, driven by widgets.

    ``start`` is the common starting point ``(w, c)``; ``w_range`` and ``c_range`` the plot window;
    ``seed`` seeds the per-epoch shuffles. ``max_loss`` is the loss above which a path counts as
    diverged and is stopped.

    Each control (``batch_size``, ``learning_rate``, ``budget``) → :meth:`_changed` → :meth:`redraw` →
    :func:`batchlab.line_fit.steps_for_budget` and :func:`batchlab.line_fit.descent_path` (the three
    descents) → ``LandscapePlot.update`` (:mod:`batchlab.plots.landscape`). Taught in: notebook 03.
    """

    def __init__(self, problem: RegressionProblem | None = None, *, start: tuple[float, float] = (3.0, 2.6),
                 w_range: tuple[float, float] = (-1.6, 3.4), c_range: tuple[float, float] = (-2.2, 3.2),
                 batch_size: int = 16, learning_rate: float = 0.1, steps: int = 30, max_steps: int = 100,
                 seed: int = 0, max_loss: float = 1e4) -> None:
        import ipywidgets as widgets

        self.problem = require_instance("problem", problem if problem is not None else
                                        line_fit.make_regression_problem(), RegressionProblem)
        n = self.problem.n_samples
        self.start = np.asarray(start, dtype=np.float64)
        batch_size = require_int("batch_size", batch_size, minimum=1, maximum=n)
        learning_rate = require_positive_float("learning_rate", learning_rate)
        max_steps = require_int("max_steps", max_steps, minimum=1, maximum=10_000)
        steps = require_int("steps", steps, minimum=1, maximum=max_steps)
        self.seed = require_int("seed", seed, minimum=0)
        self.max_loss = require_positive_float("max_loss", max_loss)
        self.batch_size = labelled(NamedSelectionSlider, "mini-batch B", 90, value=batch_size,
                                   options=sorted({*line_fit.log_batch_sizes(n), batch_size}))
        self.learning_rate = labelled(widgets.FloatLogSlider, "learning rate", 90, value=learning_rate,
                                      base=10, min=-3, max=0.5, step=0.05, readout_format=".3g")
        self.steps = labelled(widgets.IntSlider, "updates", 90, value=steps, min=1, max=max_steps)
        self.budget = widgets.ToggleButtons(options=BUDGETS, value=BUDGETS[0],
                                            description="compare at", style={"button_width": "auto"},
                                            layout=widgets.Layout(width="auto"))  # buttons fit their text
        self.summary = widgets.HTML()
        self.fig = Figure(figsize=(FULL_WIDTH, 4.2), dpi=DPI)  # a plain figure: the app shows its live view
        axes = self.fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.15]})
        self.plot = LandscapePlot(*axes, self.problem, w_range=w_range, c_range=c_range)
        self.fig.tight_layout()
        self.paths: dict[str, DescentPath] = {}
        self.controls = widgets.VBox([widgets.HBox([self.batch_size, self.learning_rate]),
                                      widgets.HBox([self.steps, self.budget]), self.summary])
        self._finish_setup(widgets.VBox([self.controls, canvas_widget(self.fig)]),
                           settings=[self.batch_size, self.learning_rate, self.steps, self.budget])
        self.redraw()

    def _changed(self, change: dict[str, Any]) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Recompute the three paths from the controls and move the plotted lines.

        The batch sizes are 1 (SGD), B (mini-batch) and N (batch GD); each path gets the updates of the
        chosen budget (:func:`~batchlab.line_fit.steps_for_budget`).
        """
        equal_samples = self.budget.value == "equal samples"
        self.steps.description = "epochs" if equal_samples else "updates"
        n = self.problem.n_samples
        self.paths = {}
        for key, b in {"sgd": 1, "minibatch": int(self.batch_size.value), "full": n}.items():
            steps = steps_for_budget(n, b, self.steps.value, self.budget.value)
            self.paths[key] = line_fit.descent_path(self.problem, self.start, batch_size=b, steps=steps,
                                                    learning_rate=float(self.learning_rate.value),
                                                    seed=self.seed, max_loss=self.max_loss)
        self.plot.update(self.paths, x_axis="epochs" if equal_samples else "updates")
        self.summary.value = self._summary_html()
        request_redraw(self.fig)  # the live view (canvas_widget) shows the moved lines

    def _summary_html(self) -> str:
        rows = []
        for key, path in self.paths.items():
            if path.diverged:
                end = (f"<span style='color:#b3261e'>diverged after {path.diverged_at:,} updates: "
                       f"loss &gt; {path.max_loss:.0e}</span>", "–")
            else:
                end = (f"{path.final_loss:.4g}", f"{path.final_loss - self.plot.min_loss:.3g}")
            colour = to_hex(self.plot.lines[key].get_color())
            rows.append((swatch(colour, self.plot.names[key]), f"{path.batch_size:,}", f"{path.steps:,}",
                         f"{path.samples_seen:,}", f"{path.epochs:.3g}", *end))
        header = ("path", "B", "updates", "samples", "epochs", f"final loss (L* = {self.plot.min_loss:.4g})",
                  "final L − L*")
        return html_table(rows, header, css_class="batchlab-landscape", escape=False)

    def static_html(self) -> str:
        """The table of the three paths."""
        return self.summary.value
