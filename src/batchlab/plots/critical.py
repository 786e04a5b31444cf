"""Notebook 07's four panels: updates and samples to a target against B, seconds, and the trade-off.

:class:`CriticalFigure` builds the figure once and :meth:`CriticalFigure.update` moves its artists to a
new :class:`~batchlab.critical.TargetSummary` (the live-update idea of :mod:`batchlab.plots.live`); the
app of :mod:`batchlab.apps.critical` drives it. :func:`label_log_axes` puts plain numbers on log axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from batchlab.critical import TargetSummary, TradeoffFit
from batchlab.plots.style import DPI, FULL_WIDTH, INK, batch_size_color

__all__ = ["CriticalFigure", "label_log_axes"]

# The y labels, short enough for a panel 160 px high; "to reach the target" is in the figure's title.
LABELS = {"steps": "updates S", "samples": "samples E", "seconds": "seconds (this machine)",
          "pareto": "samples E"}


def label_log_axes(ax: Any, *, dense_x: bool = False, dense_y: bool = True) -> None:
    """Plain numbers on the log axes of ``ax`` (1, 2, 5, 10, ... when dense, else powers of ten only),
    instead of matplotlib's ``2×10⁰`` labels on minor ticks.

    Taught in: notebook 07 § 2. Updates and samples against the batch size.
    """
    for axis, dense in ((ax.xaxis, dense_x), (ax.yaxis, dense_y)):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if dense else (1.0,)))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 1 else f"{v:.2g}"))
        axis.set_minor_formatter(NullFormatter())


class CriticalFigure:
    """The four panels of the critical-batch app.

    The panels (``axes`` by name: steps, samples, seconds, pareto) and their artists: ``points``
    (measured), ``stars`` (the winner), ``fit_lines``, ``budget_lines`` and ``crit_lines`` (``B_crit``).

    Taught in: notebook 07 § 5. Try it: move the target, set a budget.
    """

    def __init__(self) -> None:
        # 459 px high on screen: beside the app's controls, the panels and their key fit a 1280 x 720 slide
        self.fig = Figure(figsize=(FULL_WIDTH, 5.6), dpi=DPI)
        self.fig.set_layout_engine("constrained")
        self.axes = dict(zip(LABELS, self.fig.subplots(2, 2).ravel(), strict=True))
        self.points: dict[str, Any] = {}
        self.fit_lines: dict[str, Any] = {}
        self.stars: dict[str, Any] = {}
        self.budget_lines: dict[str, Any] = {}
        for name, ax in self.axes.items():
            ax.set(xscale="log", yscale="log", ylabel=LABELS[name],
                   xlabel="updates S" if name == "pareto" else "batch size B")
            self.points[name] = ax.scatter([], [], s=60, zorder=3,
                                           label="measured, best rate (mean of seeds)")
            self.stars[name] = ax.scatter([], [], s=320, marker="*", color=INK, zorder=4,
                                          label="winner under the budget")
            if name != "seconds":
                (self.fit_lines[name],) = ax.plot([], [], "--", color=INK, linewidth=1.5,
                                                  label="fit: S = S_min + E_min/B, E = E_min + S_min·B"
                                                  if name != "pareto" else "(S/S_min − 1)(E/E_min − 1) = 1")
            if name != "pareto":
                self.budget_lines[name] = ax.axhline(1, color="0.4", linestyle=":", linewidth=2,
                                                     label="budget", visible=False)
            label_log_axes(ax, dense_x=name == "pareto")  # B axes: powers of ten only
        self.crit_lines = [self.axes[n].axvline(1, color="0.5", linewidth=1, label="B_crit = E_min/S_min")
                           for n in ("steps", "samples")]
        budget_key = Line2D([], [], color="0.4", linestyle=":", linewidth=2, label="budget")
        handles = [self.points["steps"], self.stars["steps"], self.fit_lines["steps"],
                   self.fit_lines["pareto"], budget_key, self.crit_lines[0]]
        self.fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=10)

    def update(self, s: TargetSummary, fit: TradeoffFit | None, feasible: np.ndarray, best: int | None,
               kind: str, budget: float) -> None:
        """Show ``s`` with its ``fit`` (None: no trade-off), the ``feasible`` batch sizes filled, the
        winner ``best`` starred and the budget line of ``kind`` at ``budget``; no redraw."""
        colours = [batch_size_color(int(b)) for b in s.batch_sizes]
        faces = [c if ok else "none" for c, ok in zip(colours, feasible, strict=True)]
        values = {"steps": (s.batch_sizes, s.steps), "samples": (s.batch_sizes, s.samples),
                  "seconds": (s.batch_sizes, s.seconds), "pareto": (s.steps, s.samples)}
        index = list(s.batch_sizes).index(best) if best is not None else None
        for name, (x, y) in values.items():
            self.points[name].set_offsets(np.column_stack([x, y]))
            self.points[name].set_facecolors(faces)
            self.points[name].set_edgecolors(colours)
            self.stars[name].set_offsets([[x[index], y[index]]] if index is not None else np.zeros((0, 2)))
        if fit is not None and len(s.batch_sizes):
            grid = np.geomspace(s.batch_sizes.min(), s.batch_sizes.max(), 100)
            self.fit_lines["steps"].set_data(grid, fit.steps(grid))
            self.fit_lines["samples"].set_data(grid, fit.samples(grid))
            self.fit_lines["pareto"].set_data(fit.steps(grid), fit.samples(grid))
            for line in self.crit_lines:
                line.set_xdata([fit.b_crit, fit.b_crit])
        for line in (*self.fit_lines.values(), *self.crit_lines):
            line.set_visible(fit is not None)
        for name, line in self.budget_lines.items():
            line.set_ydata([budget, budget])
            line.set_visible(name == kind)
        for ax in self.axes.values():
            ax.relim(visible_only=True)
            ax.autoscale_view()
        title = f"to reach validation loss ≤ {s.target:.2f}; filled: within the budget, ★ the winner"
        self.fig.suptitle(title)
