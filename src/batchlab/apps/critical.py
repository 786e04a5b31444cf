"""Notebook 07's explorer: move the target, set a budget, and see which batch size wins.

Everything is read off a finished :class:`batchlab.critical.CriticalSweep` (no training), so every
change answers at once. Four panels: updates ``S(B)`` and samples ``E(B)`` to the target with the fit
``S_min + E_min/B`` (and ``E_min + S_min·B``), the measured seconds to the target on this machine, and
the steps–samples trade-off (Pareto) curve with the measured points.

A **budget** caps one resource: updates (steps), samples, or seconds. The batch sizes that reach the
target within it are drawn filled, the others hollow. The winner is the cheapest way to stay within
the budget: with a budget in steps or seconds, the feasible ``B`` that needs the fewest samples; with a
budget in samples, the feasible ``B`` that needs the fewest steps.
"""

from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from batchlab.apps.live import App, canvas_widget, figure_png
from batchlab.critical import CriticalSweep, TargetSummary, fit_tradeoff, summarize
from batchlab.plots.style import DPI, FULL_WIDTH, INK, batch_size_color
from batchlab.validation import require_choice, require_float, require_instance, require_positive_float

__all__ = ["BUDGET_KINDS", "CriticalBatchApp", "label_log_axes", "winner"]

BUDGET_KINDS = ("steps", "samples", "seconds")
_STYLE = {"description_width": "120px"}
_LABELS = {"steps": "updates S to the target", "samples": "samples E to the target",
           "seconds": "seconds to the target (this machine)", "pareto": "samples E"}


def label_log_axes(ax: Any, *, dense_x: bool = False, dense_y: bool = True) -> None:
    """Plain numbers on the log axes of ``ax`` (1, 2, 5, 10, ... when dense, else powers of ten only),
    instead of matplotlib's ``2×10⁰`` labels on minor ticks.

    Taught in: notebook 07 § 2. Updates and samples against the batch size.
    """
    for axis, dense in ((ax.xaxis, dense_x), (ax.yaxis, dense_y)):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if dense else (1.0,)))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 1 else f"{v:.2g}"))
        axis.set_minor_formatter(NullFormatter())


def winner(summary: TargetSummary, kind: str, budget: float) -> tuple[np.ndarray, int | None]:
    """``(feasible, B)``: which batch sizes of ``summary`` reach its target within ``budget`` of ``kind``
    (a boolean array), and the winning batch size (None when none fits).

    ``kind`` is ``"steps"``, ``"samples"`` or ``"seconds"``; the winner is the feasible ``B`` with the
    fewest samples (steps and seconds budgets) or the fewest steps (samples budget).
    """
    require_instance("summary", summary, TargetSummary)
    kind = require_choice("kind", kind, BUDGET_KINDS)
    feasible = getattr(summary, kind) <= require_positive_float("budget", budget)
    if not feasible.any():
        return feasible, None
    cost = summary.steps if kind == "samples" else summary.samples
    return feasible, int(summary.batch_sizes[np.flatnonzero(feasible)[np.argmin(cost[feasible])]])


class CriticalBatchApp(App):
    """Move the target and a budget over a measured sweep; ``S``, ``E``, ``B_crit`` and the winner follow.

    Parameters: ``sweep`` (a finished :class:`~batchlab.critical.CriticalSweep`); ``target`` (initial
    validation-loss target, at least the sweep's); ``max_target`` (the slider's easiest target);
    ``budget_kind`` and ``budget`` (initial budget, ``None``: the median ``B``'s cost).

    Controls (public): ``target`` (FloatSlider, nats), ``budget_kind`` (ToggleButtons), ``budget``
    (FloatLogSlider). Read-outs: ``numbers`` (HTML). State after each change: ``summary``
    (:class:`~batchlab.critical.TargetSummary`), ``fit`` (:class:`~batchlab.critical.TradeoffFit`, None
    when the points show no trade-off), ``feasible`` and ``best`` (from :func:`winner`). ``fig`` is the
    figure, ``points`` its four scatter artists by panel name, ``fit_lines`` the fitted curves.


    Each control → :meth:`_changed` → :meth:`refresh` → :func:`batchlab.critical.summarize` (steps and
    samples to the target per B) and :func:`batchlab.critical.fit_tradeoff` (``S_min``, ``E_min``,
    ``B_crit``) → the scatter and fit artists; ``budget_kind`` also moves the budget slider
    (:meth:`_move_budget`). Taught in: notebook 07.
    """

    def __init__(self, sweep: CriticalSweep, *, target: float | None = None, max_target: float = 1.0,
                 budget_kind: str = "steps", budget: float | None = None) -> None:
        self.sweep = require_instance("sweep", sweep, CriticalSweep)
        max_target = require_float("max_target", max_target, minimum=sweep.target + 0.01, maximum=10.0)
        target = sweep.target if target is None else require_float(
            "target", target, minimum=sweep.target, maximum=max_target)
        budget_kind = require_choice("budget_kind", budget_kind, BUDGET_KINDS)
        if budget is not None:
            budget = require_positive_float("budget", budget)
        # The budget slider spans the costs from the easiest to the hardest target, with room around.
        easy, hard = summarize(sweep, max_target), summarize(sweep, sweep.target)
        self._ranges = {k: (math.log10(0.5 * getattr(easy, k).min()), math.log10(2 * getattr(hard, k).max()))
                        for k in BUDGET_KINDS}
        self.target = widgets.FloatSlider(value=target, min=sweep.target, max=max_target, step=0.01,
                                          readout_format=".2f", description="target val loss", style=_STYLE)
        self.budget_kind = widgets.ToggleButtons(options=list(BUDGET_KINDS), value=budget_kind,
                                                 description="budget in", style=_STYLE)
        self.budget = widgets.FloatLogSlider(base=10, step=0.01, description="budget", readout_format=".3g",
                                             style=_STYLE)
        self.numbers = widgets.HTML()
        self._build_figure()
        self._move_budget(budget_kind, budget)
        self._finish_setup(widgets.VBox([self.target, self.budget_kind, self.budget, self.numbers,
                                         canvas_widget(self.fig)]),
                           settings=[self.target, self.budget_kind, self.budget])
        self.refresh()

    def _build_figure(self) -> None:
        with plt.ioff():
            self.fig = plt.figure(figsize=(FULL_WIDTH, 7.2), dpi=DPI)
        self.fig.set_layout_engine("constrained")
        self.axes = dict(zip(_LABELS, self.fig.subplots(2, 2).ravel(), strict=True))
        self.points, self.fit_lines, self.stars, self.budget_lines = {}, {}, {}, {}
        for name, ax in self.axes.items():
            ax.set(xscale="log", yscale="log", ylabel=_LABELS[name],
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

    def _move_budget(self, kind: str, value: float | None = None) -> None:
        """Move the budget slider to ``kind``'s range and to ``value`` (default: the median B's cost)."""
        low, high = self._ranges[kind]
        if value is None:
            value = float(np.median(getattr(summarize(self.sweep, self.target.value), kind)))

        def adjust() -> None:
            with self.budget.hold_trait_notifications():  # the range and the value are checked together
                self.budget.min, self.budget.max = low, high
                self.budget.value = min(max(value, 10 ** low), 10 ** high)

        self._quietly(adjust)

    def _changed(self, change: dict[str, Any]) -> None:
        """A new budget kind moves the slider's range there, starting at the median B's cost; redraw."""
        if change["owner"] is self.budget_kind:
            self._move_budget(self.budget_kind.value)
        self.refresh()

    def refresh(self) -> None:
        """Recompute S, E, seconds, the fit and the winner for the current controls; redraw."""
        self.summary = s = summarize(self.sweep, self.target.value)
        kind, budget = self.budget_kind.value, self.budget.value
        try:
            self.fit = fit_tradeoff(s.steps, s.samples)
        except ValueError:  # fewer than two points, or no trade-off in them
            self.fit = None
        self.feasible, self.best = winner(s, kind, budget)
        colours = [batch_size_color(int(b)) for b in s.batch_sizes]
        faces = [c if ok else "none" for c, ok in zip(colours, self.feasible, strict=True)]
        values = {"steps": (s.batch_sizes, s.steps), "samples": (s.batch_sizes, s.samples),
                  "seconds": (s.batch_sizes, s.seconds), "pareto": (s.steps, s.samples)}
        index = list(s.batch_sizes).index(self.best) if self.best is not None else None
        for name, (x, y) in values.items():
            self.points[name].set_offsets(np.column_stack([x, y]))
            self.points[name].set_facecolors(faces)
            self.points[name].set_edgecolors(colours)
            self.stars[name].set_offsets([[x[index], y[index]]] if index is not None else np.zeros((0, 2)))
        if self.fit is not None and len(s.batch_sizes):
            grid = np.geomspace(s.batch_sizes.min(), s.batch_sizes.max(), 100)
            self.fit_lines["steps"].set_data(grid, self.fit.steps(grid))
            self.fit_lines["samples"].set_data(grid, self.fit.samples(grid))
            self.fit_lines["pareto"].set_data(self.fit.steps(grid), self.fit.samples(grid))
            for line in self.crit_lines:
                line.set_xdata([self.fit.b_crit, self.fit.b_crit])
        for line in (*self.fit_lines.values(), *self.crit_lines):
            line.set_visible(self.fit is not None)
        for name, line in self.budget_lines.items():
            line.set_ydata([budget, budget])
            line.set_visible(name == kind)
        for ax in self.axes.values():
            ax.relim(visible_only=True)
            ax.autoscale_view()
        self.fig.suptitle(f"to validation loss ≤ {s.target:.2f}; filled: within the budget, ★ the winner")
        self.numbers.value = self.numbers_html()
        self.fig.canvas.draw_idle()

    def numbers_html(self) -> str:
        """The shown numbers: target, fit (S_min, E_min, B_crit), budget and winner, as an HTML table."""
        s, kind = self.summary, self.budget_kind.value
        unit = {"steps": "updates", "samples": "samples", "seconds": "s"}[kind]
        rows = [("target", f"validation loss ≤ {s.target:.2f}")]
        if self.fit is None:
            rows.append(("fit", "no steps–samples trade-off in these points"))
        else:
            rows += [("S_min (fewest updates)", f"{self.fit.s_min:,.1f}"),
                     ("E_min (fewest samples)", f"{self.fit.e_min:,.0f}"),
                     ("B_crit = E_min / S_min", f"{self.fit.b_crit:,.1f}")]
        rows += [(f"budget ({kind})", f"{self.budget.value:,.3g} {unit}"),
                 ("B within the budget", ", ".join(str(b) for b in s.batch_sizes[self.feasible]) or "none")]
        if self.best is None:
            rows.append(("winner", "no batch size reaches the target within the budget"))
        else:
            i = list(s.batch_sizes).index(self.best)
            rows.append(("winner", f"B = {self.best} (lr {s.best_lr[i]:g}): {s.steps[i]:,.1f} updates, "
                                   f"{s.samples[i]:,.0f} samples"))
        if s.missing:
            rows.append(("never reached the target", ", ".join(str(b) for b in s.missing)))
        body = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td>"
                       f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<table class='batchlab-critical'><tbody>{body}</tbody></table>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The live widget view, plus a PNG of the figure and the numbers as HTML for static readers."""
        view = "application/vnd.jupyter.widget-view+json"
        b_crit = f"{self.fit.b_crit:.1f}" if self.fit is not None else "n/a"
        return {view: self.widget._repr_mimebundle_()[view], "image/png": figure_png(self.fig),
                "text/html": self.numbers_html(),
                "text/plain": f"CriticalBatchApp(target={self.summary.target:.2f}, B_crit={b_crit}, "
                              f"winner={self.best})"}
