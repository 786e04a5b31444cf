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
import numpy as np

from batchlab.apps.live import App, canvas_widget
from batchlab.critical import CriticalSweep, TargetSummary, b_crit_interval, fit_tradeoff, summarize
from batchlab.plots.critical import CriticalFigure
from batchlab.plots.live import request_redraw
from batchlab.stats import round_to_error
from batchlab.validation import require_choice, require_float, require_instance, require_positive_float

__all__ = ["BUDGET_KINDS", "CriticalBatchApp", "winner"]

BUDGET_KINDS = ("steps", "samples", "seconds")
_STYLE = {"description_width": "110px"}
_COLUMN_WIDTH = "340px"  # the column of controls and numbers beside the figure
_FIGURE_MIN_WIDTH = "540px"  # the four panels stay readable; narrower, the figure goes below the controls


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
    when the points show no trade-off), ``b_crit_range`` (``(B_crit, low, high)`` from
    :func:`batchlab.critical.b_crit_interval` over the seeds, None with one seed or no fit; computed once
    per target), ``feasible`` and ``best`` (from :func:`winner`). ``B_crit`` is shown at the precision
    that interval supports (:func:`b_crit_text`). ``fig`` is the
    figure, ``points`` its four scatter artists by panel name, ``fit_lines`` the fitted curves.


    Each control → :meth:`_changed` → :meth:`refresh` → :func:`batchlab.critical.summarize` (steps and
    samples to the target per B) and :func:`batchlab.critical.fit_tradeoff` (``S_min``, ``E_min``,
    ``B_crit``) → ``CriticalFigure.update`` (:mod:`batchlab.plots.critical`); ``budget_kind`` also
    moves the budget slider (:meth:`_move_budget`). Taught in: notebook 07.
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
        if len(hard.batch_sizes) == 0:
            raise ValueError(f"sweep must have a batch size whose every seed reached its target val loss "
                             f"{sweep.target:g}, but none did (batch sizes {list(sweep.batch_sizes)}): "
                             "run tune_to_target with a larger max_steps or an easier target")
        for kind in BUDGET_KINDS:
            if not (getattr(hard, kind) > 0).all():
                raise ValueError(f"sweep must hold {kind} > 0 for every run that reached the target, got "
                                 f"{getattr(hard, kind).tolist()} (the budget slider is logarithmic)")
        self._ranges = {k: (math.log10(0.5 * getattr(easy, k).min()), math.log10(2 * getattr(hard, k).max()))
                        for k in BUDGET_KINDS}
        self.target = widgets.FloatSlider(value=target, min=sweep.target, max=max_target, step=0.01,
                                          readout_format=".2f", description="target val loss", style=_STYLE,
                                          layout=widgets.Layout(width=_COLUMN_WIDTH))
        self.budget_kind = widgets.ToggleButtons(options=list(BUDGET_KINDS), value=budget_kind,
                                                 description="budget in",
                                                 layout=widgets.Layout(width=_COLUMN_WIDTH),
                                                 style={**_STYLE, "button_width": "90px"})
        self.budget = widgets.FloatLogSlider(base=10, step=0.01, description="budget", readout_format=".3g",
                                             style=_STYLE, layout=widgets.Layout(width=_COLUMN_WIDTH))
        self.numbers = widgets.HTML(layout=widgets.Layout(width=_COLUMN_WIDTH))
        self._intervals: dict[float, tuple[float, float, float] | None] = {}  # by target: a bootstrap each
        self.view = CriticalFigure()  # the figure (batchlab.plots.critical), and its artists by panel:
        self.fig = self.view.fig
        self.axes = self.view.axes
        self.points = self.view.points
        self.fit_lines = self.view.fit_lines
        self.stars = self.view.stars
        self.budget_lines = self.view.budget_lines
        self.crit_lines = self.view.crit_lines
        self._move_budget(budget_kind, budget)
        # The controls and numbers in a column beside the figure, so that the whole app fits a 1280 x 720
        # slide; where the output area is too narrow for both (under about 900 px), the figure wraps below.
        controls = widgets.VBox([self.target, self.budget_kind, self.budget, self.numbers],
                                layout=widgets.Layout(width=_COLUMN_WIDTH, flex="0 0 auto"))
        figure = canvas_widget(self.fig)
        figure.layout.flex = "1 1 0"
        figure.layout.min_width = _FIGURE_MIN_WIDTH
        wrapping = widgets.Layout(flex_flow="row wrap", align_items="flex-start")
        row = widgets.HBox([controls, figure], layout=wrapping)
        self._finish_setup(row, settings=[self.target, self.budget_kind, self.budget])
        self.refresh()

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
        s = summarize(self.sweep, self.target.value)
        self.summary = s
        kind = self.budget_kind.value
        budget = self.budget.value
        try:
            self.fit = fit_tradeoff(s.steps, s.samples)
        except ValueError:  # fewer than two points, or no trade-off in them
            self.fit = None
        self.b_crit_range = None if self.fit is None else self._b_crit_range(s)
        self.feasible, self.best = winner(s, kind, budget)
        self.view.update(s, self.fit, self.feasible, self.best, kind, budget)
        self.numbers.value = self.numbers_html()
        request_redraw(self.fig)

    def _b_crit_range(self, summary: TargetSummary) -> tuple[float, float, float] | None:
        """``b_crit_interval`` of ``summary``, once per target (the budget does not move it)."""
        if summary.target not in self._intervals:
            enough = summary.steps_per_seed.shape[1] >= 2
            self._intervals[summary.target] = b_crit_interval(summary) if enough else None
        return self._intervals[summary.target]

    def b_crit_text(self) -> str:
        """``B_crit`` at the precision its interval over the seeds supports: ``"18 ± 3"`` (the error half the
        95 % interval, :func:`batchlab.stats.round_to_error`); two significant digits with one seed."""
        if self.fit is None:
            return "n/a"
        if self.b_crit_range is None:
            return f"{float(f'{self.fit.b_crit:.2g}'):g} (one seed: no interval)"
        _, low, high = self.b_crit_range
        if not (math.isfinite(low) and math.isfinite(high)):  # some resamples showed no trade-off
            return f"{float(f'{self.fit.b_crit:.2g}'):g} (no interval: some resamples show no trade-off)"
        return round_to_error(self.fit.b_crit, (high - low) / 2)

    def numbers_html(self) -> str:
        """The shown numbers: target, fit (S_min, E_min, B_crit), budget and winner, as an HTML table."""
        s = self.summary
        kind = self.budget_kind.value
        unit = {"steps": "updates", "samples": "samples", "seconds": "s"}[kind]
        rows = [("target", f"validation loss ≤ {s.target:.2f}")]
        if self.fit is None:
            rows.append(("fit", "no steps–samples trade-off in these points"))
        else:
            rows += [("S_min (fewest updates)", f"{self.fit.s_min:,.0f}"),
                     ("E_min (fewest samples)", f"{self.fit.e_min:,.0f}"),
                     ("B_crit = E_min / S_min", f"{self.b_crit_text()} (± half the 95 % interval over "
                                                f"{self.summary.steps_per_seed.shape[1]} seeds)")]
        rows += [(f"budget ({kind})", f"{self.budget.value:,.3g} {unit}"),
                 ("B within the budget", ", ".join(str(b) for b in s.batch_sizes[self.feasible]) or "none")]
        if self.best is None:
            rows.append(("winner", "no batch size reaches the target within the budget"))
        else:
            i = list(s.batch_sizes).index(self.best)
            rows.append(("winner", f"B = {self.best} (lr {s.best_lr[i]:g}): {s.steps[i]:,.0f} updates, "
                                   f"{s.samples[i]:,.0f} samples (means over the seeds)"))
        if s.missing:
            rows.append(("never reached the target", ", ".join(str(b) for b in s.missing)))
        cell = "style='text-align:left; vertical-align:top; padding:2px 6px 2px 0'"  # a compact column
        body = "".join(f"<tr><td {cell}>{html.escape(k)}</td><td {cell}>{html.escape(v)}</td></tr>"
                       for k, v in rows)
        return f"<table class='batchlab-critical'><tbody>{body}</tbody></table>"

    def static_html(self) -> str:
        """The numbers table (the static copy shows the figure above it, as every app's does)."""
        return self.numbers_html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Every app's bundle (the live view, a PNG of the figure, the figure and numbers as HTML for
        static readers), with the headline numbers as its plain text."""
        bundle = super()._repr_mimebundle_(include, exclude)
        if not self.closed:
            bundle["text/plain"] = (f"CriticalBatchApp(target={self.summary.target:.2f}, "
                                    f"B_crit={self.b_crit_text()}, winner={self.best})")
        return bundle
