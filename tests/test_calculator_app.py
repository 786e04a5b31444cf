"""Notebook 02's calculator apps and their plot builders: set controls, read numbers and artists."""

from __future__ import annotations

import doctest
import io
import itertools
import math
import re
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import numpy as np
import pytest

import batchlab.apps.calculator as calculator
from batchlab.apps.calculator import (
    FixedStepsApp,
    FormulaCalculatorApp,
    LearningRateApp,
    fixed_steps,
)
from batchlab.arithmetic import (
    TrainingPlan,
    epochs_for_steps,
    iterations_per_epoch,
    scaled_learning_rate,
    total_steps,
    warmup_learning_rate,
)
from batchlab.plots.mirror import live_figure
from batchlab.plots.schedule import WarmupPlot, schedule
from batchlab.plots.staircase import StaircasePlot, staircase_points


def live_line(fig, line):
    """(x, y) of the bqplot mark that shows the matplotlib ``line`` in the live view of ``fig``."""
    mark = live_figure(fig).marks_of(line)[0]
    return np.asarray(mark.x), np.asarray(mark.y)


def assert_live_follows(fig, *lines):
    """Each line's live mark holds the line's data, and the view's scales the axes' limits."""
    for line in lines:
        x, y = live_line(fig, line)
        np.testing.assert_array_equal(x, np.asarray(line.get_xdata(), dtype=float))
        np.testing.assert_array_equal(y, np.asarray(line.get_ydata(), dtype=float))
        x_scale, y_scale = live_figure(fig).scales_of(line.axes)
        assert (x_scale.min, x_scale.max) == tuple(sorted(line.axes.get_xlim()))
        assert (y_scale.min, y_scale.max) == tuple(sorted(line.axes.get_ylim()))


class _Table(HTMLParser):
    """{label: value text} of a two-column HTML table."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.cells: list[str] = []
        self._in_cell = False
        self.feed(text)
        self.values = dict(zip(self.cells[::2], self.cells[1::2], strict=True))

    def handle_starttag(self, tag, attrs):
        if tag == "td":
            self._in_cell = True
            self.cells.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells[-1] += data


def shown(html_text: str) -> dict[str, str]:
    return _Table(html_text).values


def step_value(xs: np.ndarray, ys: np.ndarray, b: int) -> int:
    """Value of a ``steps-post`` line at integer B: the y of the last corner at or left of B."""
    return int(ys[np.searchsorted(xs, b, side="right") - 1])


# ---------------------------------------------------------------------------------------------------
# The staircase plot builder
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 10, 100, 1000, 1024, 9973])
@pytest.mark.parametrize("drop_last", [False, True])
def test_staircase_points_give_the_formula_at_every_batch_size(n, drop_last):
    xs, ys = staircase_points(n, drop_last)
    assert xs[0] == 1 and xs[-1] == n
    assert len(xs) <= 2 * math.isqrt(n) + 2  # compressed: corners only
    for b in range(1, n + 1):
        assert step_value(xs, ys, b) == iterations_per_epoch(n, b, drop_last)


def test_staircase_points_of_an_empty_dataset_are_empty():
    xs, ys = staircase_points(0)
    assert xs.size == ys.size == 0


def test_staircase_plot_draws_both_rules_the_curve_and_the_point():
    plot = StaircasePlot(1000, 32)
    xs, ys = plot.ceil_line.get_data()
    assert [step_value(xs, ys, b) for b in (1, 31, 32, 33, 500, 999, 1000)] == [
        1000, 33, 32, 31, 2, 2, 1]
    xf, yf = plot.floor_line.get_data()
    assert [step_value(xf, yf, b) for b in (1, 32, 501, 1000)] == [1000, 31, 1, 1]
    bc, ic = plot.curve.get_data()
    np.testing.assert_allclose(ic, 1000 / bc)
    assert bc[0] == 1 and math.isclose(bc[-1], 1000)
    assert list(plot.marker.get_xdata()) == [32] and list(plot.marker.get_ydata()) == [32]
    assert plot.ceil_line.get_linewidth() > plot.floor_line.get_linewidth()  # ceil is active
    assert plot.ax.get_xscale() == plot.ax.get_yscale() == "log"
    assert "I = ceil(N/B) = 32" in plot.readout.get_text()


def test_staircase_update_changes_the_same_artists_in_place(redraws):
    plot = StaircasePlot(1000, 32)
    artists = (plot.fig, plot.ceil_line, plot.floor_line, plot.curve, plot.marker, plot.readout)
    live_figure(plot.fig)  # a live view (as an app shows it)
    redraws.clear()
    plot.update(1000, 32, drop_last=True)
    assert redraws == [plot.fig]  # one sync of the same figure's view
    assert_live_follows(plot.fig, plot.ceil_line, plot.floor_line, plot.curve, plot.marker)
    assert (plot.fig, plot.ceil_line, plot.floor_line, plot.curve, plot.marker,
            plot.readout) == artists
    assert list(plot.marker.get_ydata()) == [31]  # floor(1000 / 32)
    assert plot.floor_line.get_linewidth() > plot.ceil_line.get_linewidth()
    plot.update(50, 7, samples_label="N per worker")
    assert list(plot.marker.get_data()[0]) == [7] and list(plot.marker.get_data()[1]) == [8]
    assert plot.ceil_line.get_xdata()[-1] == 50
    assert plot.ax.get_xlim()[1] > 50 and "N per worker = 50" in plot.ax.get_title()
    assert len(plot.ax.lines) == 4 and plot.fig is artists[0]  # no new figure, no new lines
    assert_live_follows(plot.fig, plot.ceil_line, plot.floor_line, plot.curve, plot.marker)
    readout = live_figure(plot.fig).marks_of(plot.readout)[0]
    assert list(readout.text) == plot.readout.get_text().split("\n")


def test_staircase_rejects_a_batch_larger_than_the_data():
    plot = StaircasePlot(10, 5)
    with pytest.raises(ValueError, match=r"^batch_size must be an integer >= 1 and <= 10, got 11$"):
        plot.update(10, 11)
    with pytest.raises(TypeError, match=r"^drop_last must be True or False, got int 1$"):
        plot.update(10, 5, 1)


# ---------------------------------------------------------------------------------------------------
# FormulaCalculatorApp
# ---------------------------------------------------------------------------------------------------


def test_calculator_shows_every_number_of_the_plan():
    app = FormulaCalculatorApp()
    app.n_samples.value = 10_000
    app.batch_size.value = 100
    app.epochs.value = 50
    values = shown(app.summary.value)
    assert values["iterations per epoch I"] == "100"
    assert values["total updates"] == "5,000"
    assert values["samples seen"] == "500,000"
    expected = TrainingPlan(10_000, 100, 50)
    assert app.plan == expected
    assert values == {label: str(v) if isinstance(v, bool) else f"{v:,}"
                      for label, v in expected.rows()}


def test_calculator_worked_formula_and_partial_last_batch():
    app = FormulaCalculatorApp(n_samples=1_000, batch_size=32, epochs=10)
    text = re.sub(r"<[^>]+>", "", app.formula.value)
    assert "I = ceil(N / B) = ceil(1,000 / 32) = ceil(31.25) = 32" in text
    assert "total updates = 32 × E = 32 × 10 = 320" in text
    assert "N / B × E = 312.5 is not a count of iterations" in text
    assert shown(app.summary.value)["last batch size"] == "8"
    app.drop_last.value = True
    values = shown(app.summary.value)
    assert values["iterations per epoch I"] == "31"
    assert values["samples dropped per epoch"] == "8"
    assert values["total updates"] == "310"
    assert "floor(1,000 / 32)" in app.formula.value


def test_calculator_marker_and_staircase_follow_the_controls():
    app = FormulaCalculatorApp()
    for n, b, drop_last in [(1000, 32, False), (1000, 32, True), (5000, 3, False),
                            (777, 777, True), (64, 1, False), (1000, 300, False)]:
        app.n_samples.value = n
        app.batch_size.value = b
        app.drop_last.value = drop_last
        i = iterations_per_epoch(n, b, drop_last)
        assert list(app.plot.marker.get_xdata()) == [b]
        assert list(app.plot.marker.get_ydata()) == [i]
        line = app.plot.floor_line if drop_last else app.plot.ceil_line
        xs, ys = line.get_data()
        assert xs[-1] == n
        for probe in {1, 2, b, max(b - 1, 1), n // 3 or 1, n}:
            assert step_value(xs, ys, probe) == iterations_per_epoch(n, probe, drop_last)
        assert_live_follows(app.fig, app.plot.marker, app.plot.ceil_line, app.plot.floor_line)
    assert plt.get_fignums() == []  # a plain figure, updated in place: pyplot never holds it


def test_batch_size_options_are_whole_log_spaced_and_end_at_n():
    options = calculator.batch_size_options(1_000)
    assert options[0] == 1 and options[-1] == 1_000 and options == sorted(set(options))
    assert {2 ** k for k in range(10)} | {10, 100, 300, 500} <= set(options)
    assert all(b / a <= 2.5 for a, b in itertools.pairwise(options))  # no wide gaps
    assert calculator.batch_size_options(20, 6, 50) == [1, 2, 3, 4, 5, 6, 8, 10, 16, 20]


def test_batch_size_is_whole_and_never_exceeds_the_data():
    app = FormulaCalculatorApp(n_samples=1_000, batch_size=500)
    assert all(isinstance(b, int) for b in app.batch_size.options)
    with pytest.raises(ValueError, match=r"batch size B must be one of .*got 33\.4: kept 500"):  # not offered
        app.batch_size.value = 33.4
    assert app.batch_size.value == 500 and app.plan.batch_size == 500  # unchanged, still working
    app.n_samples.value = 200  # N below B: B is clamped to N
    assert app.batch_size.value == 200 and app.plan.batch_size == 200
    assert list(app.plot.marker.get_xdata()) == [200]
    assert max(app.batch_size.options) == 200  # and the slider cannot go further
    app.n_samples.value = 1_000
    assert app.batch_size.value == 200 and max(app.batch_size.options) == 1_000  # kept


def test_one_control_change_is_one_redraw(redraws):
    app = FormulaCalculatorApp(n_samples=1_000, batch_size=32)
    for control, value in [(app.batch_size, 64), (app.n_samples, 900), (app.drop_last, True),
                           (app.world_size, 2)]:
        redraws.clear()
        control.value = value
        assert len(redraws) == 1, control.description
    redraws.clear()
    app.epochs.value = 20  # the staircase does not depend on E: numbers only, no redraw
    assert redraws == [] and shown(app.summary.value)["epochs E"] == "20"


def test_workers_split_the_data_and_cap_the_batch_size():
    app = FormulaCalculatorApp(n_samples=1_000, batch_size=300, epochs=10)
    app.world_size.value = 4  # 250 samples per worker < 300
    assert app.batch_size.value == 250
    app.batch_size.value = 32
    values = shown(app.summary.value)
    assert values["samples per worker"] == "250"
    assert values["iterations per epoch I"] == "8"  # ceil(250 / 32)
    assert values["global batch size"] == "128"
    app.world_size.value = 3  # 1000 = 3 × 333 + 1: the sampler pads 2 samples
    values = shown(app.summary.value)
    assert values["samples per worker"] == "334" and values["padding samples"] == "2"
    assert "N per worker = 334" in app.plot.ax.get_title()
    app.accumulation_steps.value = 4
    assert shown(app.summary.value)["updates per epoch"] == "3"  # ceil(11 / 4)
    assert shown(app.summary.value)["global batch size"] == "384"
    app.n_samples.value = 5  # workers cannot outnumber samples
    assert app.world_size.value <= 5 and app.world_size.max == 5
    assert app.batch_size.value <= app.plan.per_rank_samples


def test_calculator_validates_its_arguments():
    with pytest.raises(ValueError, match=r"^batch_size must be an integer <= 100, got 101$"):
        FormulaCalculatorApp(n_samples=100, batch_size=101)
    with pytest.raises(ValueError, match=r"^n_samples must be an integer >= 2 and <= 1000000, got 1$"):
        FormulaCalculatorApp(n_samples=1, batch_size=1)
    with pytest.raises(TypeError, match=r"^epochs must be an integer >= 0, got float 2\.0$"):
        FormulaCalculatorApp(epochs=2.0)


# ---------------------------------------------------------------------------------------------------
# Fixed total steps
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "n", "b"), [(5000, 10_000, 100), (5000, 10_000, 300),
                                                (1, 10, 3), (0, 10, 3), (999, 1000, 7)])
def test_fixed_steps_is_the_fewest_whole_epochs(target, n, b):
    res = fixed_steps(target, n, b)
    assert res.epochs == epochs_for_steps(target, n, b)
    assert res.achieved_steps == total_steps(n, b, res.epochs) >= target
    assert 0 <= res.excess_steps < res.iterations_per_epoch
    assert res.excess_fraction == (res.excess_steps / target if target else 0.0)


def test_fixed_steps_app_shows_target_epochs_and_distance():
    app = FixedStepsApp()  # N = 10,000, reference B = 100 for 50 epochs -> 5,000 updates
    app.batch_size.value = 200
    values = shown(app.result.value)
    assert values["target updates I_ref × E_ref"] == "5,000"
    assert values["whole epochs needed ceil(target / I)"] == "100"
    assert values["above the target"] == "0 (0.00%)"
    app.batch_size.value = 300
    values = shown(app.result.value)
    assert values["new: iterations per epoch I"] == "34"
    assert values["exact epochs target / I"] == "147.1"
    assert values["whole epochs needed ceil(target / I)"] == "148"
    assert values["achieved updates I × epochs"] == "5,032"
    assert values["above the target"] == "32 (0.64%)"
    assert app.result_value == fixed_steps(5000, 10_000, 300)


def test_fixed_steps_app_clamps_both_batch_sizes_to_the_data():
    app = FixedStepsApp(n_samples=10_000, reference_batch_size=5_000, batch_size=8_000)
    app.n_samples.value = 1_000
    assert app.reference_batch_size.value == 1_000 and app.batch_size.value == 1_000
    assert shown(app.result.value)["target updates I_ref × E_ref"] == "50"  # 1 per epoch × 50
    app.drop_last.value = True
    app.batch_size.value = 300
    values = shown(app.result.value)
    assert values["new: iterations per epoch I"] == "3"
    assert values["whole epochs needed ceil(target / I)"] == "17"


# ---------------------------------------------------------------------------------------------------
# Learning-rate scaling and warm-up
# ---------------------------------------------------------------------------------------------------


def test_schedule_is_warmup_then_flat():
    rates = schedule(0.8, 4, 7)
    np.testing.assert_allclose(rates, [0.2, 0.4, 0.6, 0.8, 0.8, 0.8, 0.8])
    assert schedule(0.5, 0, 3).tolist() == [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match=r"^total_steps must be an integer >= 1, got 0$"):
        schedule(0.5, 0, 0)


def test_warmup_plot_lines_are_the_scaled_schedules():
    plot = WarmupPlot(0.1, 32, 128, rule="sqrt", warmup_steps=10, total_steps=30)
    for rule, line in plot.lines.items():
        peak = scaled_learning_rate(0.1, 32, 128, rule)
        expected = [warmup_learning_rate(s, peak, 10) for s in range(30)]
        np.testing.assert_allclose(line.get_ydata(), expected)
        assert list(line.get_xdata()) == list(range(30))
    assert plot.lines["sqrt"].get_linewidth() > plot.lines["linear"].get_linewidth()
    assert list(plot.peak_marker.get_xdata()) == [9]
    assert math.isclose(plot.peak_marker.get_ydata()[0], 0.2)
    lines = dict(plot.lines)
    plot.update(0.1, 32, 32, "linear", 0, 20)
    assert plot.lines == lines and len(plot.ax.lines) == 5  # 3 rules, base rate, peak marker
    assert all(list(line.get_ydata()) == [0.1] * 20 for line in plot.lines.values())


def test_learning_rate_app_table_and_plot_follow_the_controls():
    app = LearningRateApp(base_lr=0.1, base_batch_size=32, batch_size=128, rule="linear",
                          warmup_steps=20, total_steps=100)
    values = shown(app.rates.value)
    assert values["rule linear"] == "0.4" and values["rule sqrt"] == "0.2"
    assert values["rule none"] == "0.1" and values["B / B0"] == "4"
    assert values["first step's rate (linear, warm-up)"] == "0.02"
    app.rule.value = "sqrt"
    app.batch_size.value = 512  # 16 x: sqrt gives 4 x
    assert shown(app.rates.value)["rule sqrt"] == "0.4"
    assert math.isclose(max(app.plot.lines["sqrt"].get_ydata()), 0.4)
    assert app.plot.lines["sqrt"].get_linewidth() > app.plot.lines["linear"].get_linewidth()
    assert_live_follows(app.fig, *app.plot.lines.values(), app.plot.peak_marker)
    sqrt_mark, linear_mark = (live_figure(app.fig).marks_of(app.plot.lines[r])[0] for r in ("sqrt", "linear"))
    assert sqrt_mark.stroke_width > linear_mark.stroke_width  # the chosen rule is bold in the page too
    assert (sqrt_mark.line_style, linear_mark.line_style) == ("solid", "dashed")
    app.total_steps.value = 10  # the warm-up cannot be longer than the steps shown
    assert app.warmup_steps.value == 10 and app.warmup_steps.max == 10
    assert len(app.plot.lines["sqrt"].get_ydata()) == 10
    assert_live_follows(app.fig, *app.plot.lines.values(), app.plot.base_line)
    app.warmup_steps.value = 0
    assert "first step's rate (sqrt, warm-up)" not in shown(app.rates.value)
    with pytest.raises(ValueError, match="base learning rate must be a finite number, got nan"):
        app.base_lr.value = float("nan")
    assert app.base_lr.value == pytest.approx(0.1)
    app.base_lr.value = 0.2  # later changes keep working
    assert shown(app.rates.value)["rule none"] == "0.2"


def test_keys_beside_the_canvas_name_every_line_in_its_colour_and_style():
    from matplotlib.colors import to_hex

    calc = FormulaCalculatorApp(n_samples=100, batch_size=7)
    assert not calc.plot.ax.get_legend()  # no legend in the canvas: the key is HTML beside it
    for line in (calc.plot.curve, calc.plot.ceil_line, calc.plot.floor_line, calc.plot.marker):
        assert f"{to_hex(line.get_color())};" in calc.key.value and line.get_label() in calc.key.value
    assert "dashed " + to_hex(calc.plot.curve.get_color()) in calc.key.value  # N/B is dashed
    assert "border-radius:50%" in calc.key.value  # the marker is a dot
    assert calc.key.value in calc.static_html()
    rates = LearningRateApp(rule="linear")
    assert not rates.plot.ax.get_legend()
    solid = "height:3px;background:{}"
    assert solid.format(to_hex(rates.plot.lines["linear"].get_color())) in rates.key.value
    rates.rule.value = "sqrt"  # the chosen rule's line, and its key entry, become solid
    assert solid.format(to_hex(rates.plot.lines["sqrt"].get_color())) in rates.key.value
    assert "dashed " + to_hex(rates.plot.lines["linear"].get_color()) in rates.key.value
    assert rates.key.value in rates.static_html()
    for app in (calc, rates):
        app.close()


def test_swatch_names_a_bad_shape():
    from batchlab.markup import SWATCHES, swatch

    for shape in SWATCHES:
        entry = swatch("#123456", "x &lt; y", shape)
        assert "#123456" in entry and entry.endswith("</span>&nbsp;x &lt; y")
    with pytest.raises(ValueError, match=r"shape must be one of .*'line'.*, got 'square'"):
        swatch("#123456", "x", "square")
    with pytest.raises(TypeError, match="colour must be a CSS colour string, got tuple"):
        swatch((1, 0, 0), "x")


def test_keys_name_a_bad_entry_or_line():
    from batchlab.markup import html_key
    from batchlab.plots.style import line_key

    with pytest.raises(TypeError, match=r"entries\[1\] must be a \(colour, text, shape\) tuple, got 'red'"):
        html_key([("#000000", "a", "line"), "red"])
    with pytest.raises(TypeError, match=r"lines\[0\] must be a matplotlib Line2D, got str"):
        line_key(["not a line"])


def test_apps_carry_a_static_copy_and_close_cleanly():
    import ipywidgets

    baseline, figures = len(ipywidgets.Widget.widgets), set(plt.get_fignums())
    for make, text in [(FormulaCalculatorApp, "total updates"), (LearningRateApp, "rule linear"),
                       (FixedStepsApp, "target updates")]:
        app = make()
        bundle = app._repr_mimebundle_()
        assert text in bundle["text/html"] and "VBox" not in bundle["text/plain"]
        assert ("image/png" in bundle) == (app.fig is not None)
        app.close()
    assert len(ipywidgets.Widget.widgets) == baseline and set(plt.get_fignums()) == figures


def test_figures_render():
    for app in (FormulaCalculatorApp(n_samples=10_000, batch_size=7, world_size=3),
                LearningRateApp(warmup_steps=0)):
        buffer = io.BytesIO()
        app.fig.savefig(buffer, format="png")
        assert buffer.getvalue().startswith(b"\x89PNG")


def test_docstring_examples_run_and_pass():
    result = doctest.testmod(calculator)
    assert result.failed == 0 and result.attempted >= 2


@pytest.mark.parametrize("make", [FormulaCalculatorApp, FixedStepsApp, LearningRateApp])
def test_a_value_a_batch_slider_does_not_offer_is_refused_by_name(make):
    """NaN (or 33 where 32 and 64 are offered) set from code: the control is named, the value kept,
    and later changes keep working (ipywidgets alone says "Invalid selection: value not found")."""
    app = make()
    slider = app.batch_size
    kept = slider.value
    for bad in (float("nan"), 33, "32"):
        with pytest.raises(ValueError, match=rf"{re.escape(slider.description)} must be one of 1, 2, .*"
                                             rf"got {re.escape(repr(bad))}: kept {kept}"):
            slider.value = bad
        assert slider.value == kept
    slider.value = 64
    assert slider.value == 64
