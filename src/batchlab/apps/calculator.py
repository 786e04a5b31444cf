"""Notebook 02's calculators: the relationship formula, fixed total steps, learning-rate scaling.

* :class:`FormulaCalculatorApp`: N, B, E, drop_last, gradient accumulation and workers in; every
  derived number (:class:`batchlab.arithmetic.TrainingPlan`) and the live staircase of I against B out.
* :class:`FixedStepsApp`: keep the number of updates when B changes (:func:`fixed_steps`): epochs are
  whole, so the achieved count can only land on or above the target.
* :class:`LearningRateApp`: scale a tuned learning rate to a new batch size (linear, sqrt, none)
  and show the warm-up schedule of each rule.

Batch sizes span orders of magnitude (1 … N), so their sliders are ``SelectionSlider`` objects over
whole numbers spaced about evenly on a log scale, like the x axis of the staircase
(:func:`batch_size_options`: powers of two and round sizes). A batch-size slider's options follow the
data (N, or N per worker), so B > N cannot be set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from batchlab import arithmetic
from batchlab.apps.live import App, NamedSelectionSlider, canvas_widget, labelled
from batchlab.arithmetic import SCALING_RULES, TrainingPlan, iterations_per_epoch, scaled_learning_rate
from batchlab.markup import html_table
from batchlab.plots.schedule import WarmupPlot
from batchlab.plots.staircase import StaircasePlot
from batchlab.plots.style import FULL_WIDTH
from batchlab.validation import require_bool, require_int

__all__ = ["FixedStepsApp", "FixedStepsResult", "FormulaCalculatorApp", "LearningRateApp",
           "batch_size_options", "fixed_steps"]

MAX_SAMPLES = 1_000_000
MAX_WORKERS = 16


def batch_size_options(maximum: int, *keep: int) -> list[int]:
    """Whole batch sizes a slider offers, spaced about evenly on a log scale from 1 to ``maximum``:
    every power of two, the round sizes 1, 2, 3, 5, 10, 20, 30, 50, 100, …, ``maximum`` itself (B = N)
    and the sizes in ``keep`` that fit.

    >>> batch_size_options(100, 7)
    [1, 2, 3, 4, 5, 7, 8, 10, 16, 20, 30, 32, 50, 64, 100]
    """
    maximum = require_int("maximum", maximum, minimum=1)
    powers = (2 ** k for k in range(maximum.bit_length()))
    round_sizes = (m * 10 ** k for k in range(len(str(maximum))) for m in (1, 2, 3, 5))
    return sorted(b for b in {*powers, *round_sizes, maximum, *keep} if 1 <= b <= maximum)


def _batch_slider(description: str, value: int, maximum: int) -> widgets.SelectionSlider:
    """A slider over :func:`batch_size_options` (``value`` included, at most ``maximum``)."""
    value = min(value, maximum)
    return labelled(NamedSelectionSlider, description, options=batch_size_options(maximum, value),
                    value=value)


def _set_maximum(slider: widgets.SelectionSlider, maximum: int) -> int:
    """Offer batch sizes up to ``maximum``, keeping the current one when it fits; the size shown."""
    value = min(slider.value, maximum)
    options = batch_size_options(maximum, value)
    if list(slider.options) != options:
        slider.options = options
    slider.value = value
    return value


def _samples_box(value: int) -> widgets.BoundedIntText:
    # At least 2: a range slider whose minimum equals its maximum (workers 1 … N) breaks in the browser.
    return labelled(widgets.BoundedIntText, "samples N", value=value, min=2, max=MAX_SAMPLES)


class _Calculator(App):
    """A calculator: every valid change of a setting calls its ``refresh()`` once."""

    def _changed(self, _change: dict[str, Any]) -> None:
        self.refresh()

    def static_html(self) -> str:
        """The app's numbers (its HTML read-outs)."""
        return "".join(out.value for out in self.outputs)


# ---------------------------------------------------------------- The relationship formula


class FormulaCalculatorApp(_Calculator):
    """N, B, E, drop_last, accumulation and workers in; every derived number and the staircase out.

    Controls (public, for tests and notebooks): ``n_samples`` (BoundedIntText), ``batch_size``
    (log slider, whole numbers, at most the samples per worker), ``epochs``, ``drop_last``,
    ``accumulation_steps``, ``world_size`` (workers, at most N). Outputs: ``formula`` (the main
    formulas worked with the current numbers), ``summary`` (the plan's table), ``plot``
    (:class:`~batchlab.plots.staircase.StaircasePlot` of I against B for one worker's samples) and
    ``key`` (its key, HTML beside the figure); ``widget`` is the whole app.

    Every control → :meth:`refresh` → :class:`batchlab.arithmetic.TrainingPlan` (every number) and
    ``StaircasePlot.update`` (:mod:`batchlab.plots.staircase`). Taught in: notebook 02.
    """

    def __init__(self, n_samples: int = 1_000, batch_size: int = 32, epochs: int = 10,
                 drop_last: bool = False, accumulation_steps: int = 1, world_size: int = 1) -> None:
        plan = TrainingPlan(n_samples, batch_size, epochs, drop_last, accumulation_steps, world_size)
        require_int("n_samples", plan.n_samples, minimum=2, maximum=MAX_SAMPLES)
        require_int("batch_size", plan.batch_size, maximum=plan.per_rank_samples)
        require_int("epochs", plan.epochs, minimum=1, maximum=500)
        require_int("accumulation_steps", plan.accumulation_steps, maximum=32)
        require_int("world_size", plan.world_size, maximum=min(MAX_WORKERS, plan.n_samples))

        self.n_samples = _samples_box(n_samples)
        self.batch_size = _batch_slider("batch size B", batch_size, plan.per_rank_samples)
        self.epochs = labelled(widgets.IntSlider, "epochs E", value=epochs, min=1, max=500)
        self.drop_last = labelled(widgets.Checkbox, "drop_last", value=drop_last)
        self.accumulation_steps = labelled(widgets.IntSlider, "accumulation steps A", min=1, max=32,
                                           value=accumulation_steps)
        self.world_size = labelled(widgets.IntSlider, "workers W", value=world_size, min=1,
                                   max=min(MAX_WORKERS, n_samples))
        self.formula = widgets.HTML()
        self.summary = widgets.HTML()
        # A low live figure and a compact table: the whole app fits one 1280 x 720 slide (the static copy
        # is still rendered 1,000 px wide).
        self.plot = StaircasePlot(plan.per_rank_samples, batch_size, drop_last, figsize=(FULL_WIDTH, 2.9))
        self.fig = self.plot.fig
        self.key = widgets.HTML(self.plot.key_html())  # the figure's key, beside the figure
        self.outputs = (self.formula, self.summary, self.key)
        settings = [self.n_samples, self.batch_size, self.epochs, self.drop_last, self.accumulation_steps,
                    self.world_size]  # in the order of TrainingPlan's fields
        self.panel = widgets.HBox([widgets.VBox([*settings, self.formula]), self.summary])
        self._finish_setup(widgets.VBox([self.panel, self.key, canvas_widget(self.fig)]), settings=settings)
        self._staircase: tuple | None = None  # what the plot shows now
        self.refresh()

    @property
    def plan(self) -> TrainingPlan:
        """The :class:`TrainingPlan` of the current control values."""
        return TrainingPlan(*(control.value for control in self.settings_controls))

    def refresh(self) -> None:
        """Clamp the controls to valid ranges, then update the numbers and the plot."""
        def clamp() -> None:
            self.world_size.max = min(MAX_WORKERS, self.n_samples.value)  # clamps W to N
            n = self.n_samples.value
            w = self.world_size.value
            _set_maximum(self.batch_size, arithmetic.per_rank_samples(n, w))

        self._quietly(clamp)
        plan = self.plan
        self.summary.value = _COMPACT_ROWS + plan.to_html()
        self.formula.value = _formula_html(plan)
        staircase = (plan.per_rank_samples, plan.batch_size, plan.drop_last, plan.world_size > 1)
        if staircase != self._staircase:  # E and A do not change the staircase: no redraw for them
            label = "N per worker" if plan.world_size > 1 else "N"
            self.plot.update(*staircase[:3], samples_label=label)  # one sync of the live view
            self._staircase = staircase

    def static_html(self) -> str:
        """The worked formulas, the plan's table and the figure's key."""
        return f"<p>{self.formula.value}</p>{self.summary.value}{self.key.value}"


_COMPACT_ROWS = "<style>.batchlab-plan td, .batchlab-plan th {padding: 0 8px; line-height: 1.3}</style>"


def _formula_html(plan: TrainingPlan) -> str:
    """The main formulas with the plan's numbers substituted, as HTML lines."""
    n = plan.per_rank_samples
    b = plan.batch_size
    a = plan.accumulation_steps
    w = plan.world_size
    e = plan.epochs
    rule = "floor" if plan.drop_last else "ceil"
    n_name = "N/W (padded)" if w > 1 else "N"
    lines = [
        f"I = {rule}({n_name} / B) = {rule}({n:,} / {b:,}) = {rule}({n / b:,.4g}) = "
        f"<b>{plan.iterations_per_epoch:,}</b>",
        f"updates per epoch = ceil(I / A) = ceil({plan.iterations_per_epoch:,} / {a}) = "
        f"<b>{plan.steps_per_epoch:,}</b>",
        f"total updates = {plan.steps_per_epoch:,} × E = {plan.steps_per_epoch:,} × {e:,} = "
        f"<b>{plan.total_steps:,}</b>",
        f"global batch = B × W × A = {b:,} × {w} × {a} = <b>{plan.global_batch_size:,}</b>",
    ]
    if n % b and not plan.drop_last:
        lines.append(f"{n_name} / B × E = {n / b * e:,.6g} is not a count of iterations: "
                     f"the last, {plan.last_batch_size}-sample batch is an iteration too")
    return "<br>".join(lines)


# ------------------------------------------------------------ Keeping the number of updates when B changes


@dataclass(frozen=True)
class FixedStepsResult:
    """How close whole epochs at batch size B get to a target number of updates (one per batch).

    ``epochs`` is the fewest that reach the target; ``achieved_steps = iterations_per_epoch × epochs``
    is then on or above ``target_steps``, by ``excess_steps`` (fewer than one epoch's worth).
    """

    target_steps: int
    batch_size: int
    iterations_per_epoch: int
    epochs: int
    achieved_steps: int

    @property
    def excess_steps(self) -> int:
        """``achieved_steps − target_steps`` (≥ 0)."""
        return self.achieved_steps - self.target_steps

    @property
    def excess_fraction(self) -> float:
        """``excess_steps / target_steps`` (0 when the target is 0)."""
        return self.excess_steps / self.target_steps if self.target_steps else 0.0


def fixed_steps(target_steps: int, n_samples: int, batch_size: int,
                drop_last: bool = False) -> FixedStepsResult:
    """Whole epochs at batch size B that give at least ``target_steps`` updates, and how many exactly.

    >>> r = fixed_steps(5000, 10_000, 300)
    >>> r.iterations_per_epoch, r.epochs, r.achieved_steps, r.excess_steps
    (34, 148, 5032, 32)
    """
    epochs = arithmetic.epochs_for_steps(target_steps, n_samples, batch_size, drop_last)
    return FixedStepsResult(target_steps, batch_size, iterations_per_epoch(n_samples, batch_size, drop_last),
                            epochs, arithmetic.total_steps(n_samples, batch_size, epochs, drop_last))


class FixedStepsApp(_Calculator):
    """Change B and keep the updates of a reference run: how many epochs, and how close it gets.

    Controls: ``n_samples``, ``reference_batch_size`` and ``reference_epochs`` (they set the target
    ``I_ref × E_ref``), ``batch_size`` (the new B), ``drop_last``. Output: ``result`` (an HTML table);
    :attr:`result_value` is the :class:`FixedStepsResult` behind it.

    Every control → :meth:`refresh` → :func:`fixed_steps` → :func:`batchlab.arithmetic.epochs_for_steps`
    and :func:`batchlab.arithmetic.total_steps`. Taught in: notebook 02.
    """

    def __init__(self, n_samples: int = 10_000, reference_batch_size: int = 100, reference_epochs: int = 50,
                 batch_size: int = 300, drop_last: bool = False) -> None:
        n = require_int("n_samples", n_samples, minimum=2, maximum=MAX_SAMPLES)
        require_int("reference_batch_size", reference_batch_size, minimum=1, maximum=n)
        require_int("reference_epochs", reference_epochs, minimum=1, maximum=500)
        require_int("batch_size", batch_size, minimum=1, maximum=n)
        require_bool("drop_last", drop_last)
        self.n_samples = _samples_box(n)
        self.reference_batch_size = _batch_slider("reference batch size", reference_batch_size, n)
        self.reference_epochs = labelled(widgets.IntSlider, "reference epochs", min=1, max=500,
                                         value=reference_epochs)
        self.batch_size = _batch_slider("new batch size B", batch_size, n)
        self.drop_last = labelled(widgets.Checkbox, "drop_last", value=drop_last)
        self.result = widgets.HTML()
        self.outputs = (self.result,)
        settings = [self.n_samples, self.reference_batch_size, self.reference_epochs, self.batch_size,
                    self.drop_last]
        self.panel = widgets.HBox([widgets.VBox(settings), self.result])
        self._finish_setup(self.panel, settings=settings)
        self.refresh()

    def refresh(self) -> None:
        """Clamp both batch sizes to N, then recompute the table."""
        n = self.n_samples.value
        b_ref, b_new = self._quietly(lambda: (_set_maximum(self.reference_batch_size, n),
                                              _set_maximum(self.batch_size, n)))
        drop_last = self.drop_last.value
        target = arithmetic.total_steps(n, b_ref, self.reference_epochs.value, drop_last)
        res = fixed_steps(target, n, b_new, drop_last)
        self.result_value = res
        rows = [
            ("reference: I_ref = iterations per epoch", f"{iterations_per_epoch(n, b_ref, drop_last):,}"),
            ("target updates I_ref × E_ref", f"<b>{target:,}</b>"),
            ("new: iterations per epoch I", f"{res.iterations_per_epoch:,}"),
            ("exact epochs target / I", f"{target / res.iterations_per_epoch:,.4g}"),
            ("whole epochs needed ceil(target / I)", f"<b>{res.epochs:,}</b>"),
            ("achieved updates I × epochs", f"<b>{res.achieved_steps:,}</b>"),
            ("above the target", f"{res.excess_steps:,} ({res.excess_fraction:.2%})"),
        ]
        self.result.value = html_table(rows, css_class="batchlab-fixed-steps", escape=False)


# ---------------------------------------------------------------- Learning-rate scaling


class LearningRateApp(_Calculator):
    """Scale a learning rate tuned at one batch size to another, and show each rule's warm-up.

    Controls: ``base_lr`` (log slider), ``base_batch_size`` and ``batch_size`` (log sliders, whole
    numbers up to ``max_batch_size``), ``rule`` (linear / sqrt / none), ``warmup_steps`` and
    ``total_steps`` (the horizon drawn; warm-up cannot be longer). Outputs: ``rates`` (HTML table of
    the scaled rate under every rule), ``plot`` (:class:`~batchlab.plots.schedule.WarmupPlot`) and ``key``
    (its key, HTML beside the figure).

    Every control → :meth:`refresh` → :func:`batchlab.arithmetic.scaled_learning_rate` (the table) and
    ``WarmupPlot.update`` (:mod:`batchlab.plots.schedule`, which draws
    :func:`batchlab.arithmetic.warmup_learning_rate`). Taught in: notebook 02.
    """

    def __init__(self, base_lr: float = 0.1, base_batch_size: int = 32, batch_size: int = 256,
                 rule: str = "linear", warmup_steps: int = 50, total_steps: int = 200,
                 max_batch_size: int = 8192) -> None:
        max_b = require_int("max_batch_size", max_batch_size, minimum=1, maximum=MAX_SAMPLES)
        require_int("total_steps", total_steps, minimum=10, maximum=2000)
        require_int("warmup_steps", warmup_steps, minimum=0, maximum=total_steps)
        scaled_learning_rate(base_lr, base_batch_size, batch_size, rule)  # validates the rest
        require_int("base_batch_size", base_batch_size, maximum=max_b)
        require_int("batch_size", batch_size, maximum=max_b)
        self.base_lr = labelled(widgets.FloatLogSlider, "base learning rate", value=base_lr, base=10, min=-4,
                                max=0, step=0.01, readout_format=".3g")
        self.base_batch_size = _batch_slider("base batch size B0", base_batch_size, max_b)
        self.batch_size = _batch_slider("new batch size B", batch_size, max_b)
        self.rule = widgets.ToggleButtons(options=SCALING_RULES, value=rule, description="rule",
                                          style={"description_width": "150px", "button_width": "70px"},
                                          layout=widgets.Layout(width="auto"))  # label and buttons on one row
        self.total_steps = labelled(widgets.IntSlider, "steps shown", value=total_steps, min=10, max=2000,
                                    step=10)
        self.warmup_steps = labelled(widgets.IntSlider, "warm-up steps", value=warmup_steps, min=0,
                                     max=total_steps)
        self.max_batch_size = max_b
        self.rates = widgets.HTML()
        self.plot = WarmupPlot(base_lr, base_batch_size, batch_size, rule, warmup_steps, total_steps)
        self.fig = self.plot.fig
        self.key = widgets.HTML()  # the figure's key, beside the figure (the chosen rule's line is solid)
        self.outputs = (self.rates, self.key)
        settings = [self.base_lr, self.base_batch_size, self.batch_size, self.rule, self.warmup_steps,
                    self.total_steps]
        self.panel = widgets.HBox([widgets.VBox(settings), self.rates])
        self._finish_setup(widgets.VBox([self.panel, self.key, canvas_widget(self.fig)]), settings=settings)
        self.refresh()

    def refresh(self) -> None:
        """Cap the warm-up at the horizon, then update table and plot."""
        self._quietly(lambda: setattr(self.warmup_steps, "max", self.total_steps.value))  # clamps its value
        b0, b = self.base_batch_size.value, self.batch_size.value
        lr = self.base_lr.value
        rule = self.rule.value
        rows = [("B / B0", f"{b / b0:,.4g}")]
        for name in SCALING_RULES:
            rate = f"{scaled_learning_rate(lr, b0, b, name):.4g}"
            rows.append((f"rule {name}", f"<b>{rate}</b>" if name == rule else rate))
        warmup = self.warmup_steps.value
        if warmup:
            first = scaled_learning_rate(lr, b0, b, rule) / warmup
            rows.append((f"first step's rate ({rule}, warm-up)", f"{first:.4g}"))
        self.rates.value = html_table(rows, css_class="batchlab-learning-rates", escape=False)
        self.plot.update(lr, b0, b, rule, warmup, self.total_steps.value)
        self.key.value = self.plot.key_html()
