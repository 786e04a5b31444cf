"""The landscape widget app of notebook 03: move its controls, check the plotted paths."""

from __future__ import annotations

import io
import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from batchlab.apps.landscape import LandscapeApp
from batchlab.line_fit import make_regression_problem
from batchlab.plots.landscape import LandscapePlot
from batchlab.plots.mirror import live_figure
from batchlab.plots.style import batch_size_color

PROBLEM = make_regression_problem(n_samples=120, seed=1)


@pytest.fixture
def app():
    app = LandscapeApp(PROBLEM, start=(3.0, 2.6), learning_rate=0.1, steps=20, batch_size=8)
    yield app
    app.close()


def plotted(app: LandscapeApp, key: str) -> np.ndarray:
    line = app.plot.lines[key]
    return np.column_stack([line.get_xdata(), line.get_ydata()])


def exact_gradient_descent(start, lr, steps):
    """Full-batch gradient descent on the app's data, written out independently."""
    x, y = PROBLEM.x, PROBLEM.y
    w, c = start
    out = [(w, c)]
    for _ in range(steps):
        r = w * x + c - y
        w, c = w - lr * np.mean(r * x), c - lr * np.mean(r)
        out.append((w, c))
    return np.array(out)


def test_batch_size_slider_spans_one_to_n_on_a_log_scale(app):
    options = list(app.batch_size.options)
    assert options[0] == 1 and options[-1] == PROBLEM.n_samples
    assert max(options) <= PROBLEM.n_samples
    ratios = np.diff(np.log(options))
    assert ratios.max() < 0.75  # log-spaced: no big jumps anywhere


def test_full_batch_line_is_exact_gradient_descent(app):
    app.learning_rate.value = 0.3
    app.steps.value = 33
    np.testing.assert_allclose(plotted(app, "full"), exact_gradient_descent((3.0, 2.6), 0.3, 33),
                               rtol=1e-10, atol=1e-12)
    app.batch_size.value = PROBLEM.n_samples  # the mini-batch path with B = N is the same line
    np.testing.assert_allclose(plotted(app, "minibatch"), plotted(app, "full"))


def test_sgd_line_uses_one_sample_per_update(app):
    app.steps.value = 40
    path = app.paths["sgd"]
    assert path.batch_size == 1 and path.steps == 40
    assert [len(path.batch_indices(k)) for k in range(40)] == [1] * 40
    lr = app.learning_rate.value
    points = plotted(app, "sgd")
    assert points.shape == (41, 2)
    for k in range(40):
        (i,) = path.batch_indices(k)
        w, c = points[k]
        r = w * PROBLEM.x[i] + c - PROBLEM.y[i]
        np.testing.assert_allclose(points[k + 1], [w - lr * r * PROBLEM.x[i], c - lr * r])


def test_minibatch_slider_changes_the_batches(app):
    for b in (1, app.batch_size.options[5], PROBLEM.n_samples):
        app.batch_size.value = b
        path = app.paths["minibatch"]
        assert path.batch_size == b
        assert len(path.batch_indices(0)) == b
        assert len(plotted(app, "minibatch")) == app.steps.value + 1


def test_equal_samples_mode_gives_each_path_its_step_count(app):
    n = PROBLEM.n_samples
    app.batch_size.value = 15
    app.steps.value = 3
    assert app.steps.description == "updates"
    assert [len(plotted(app, k)) - 1 for k in ("sgd", "minibatch", "full")] == [3, 3, 3]
    app.budget.value = "equal samples"
    assert app.steps.description == "epochs"
    counts = {k: len(plotted(app, k)) - 1 for k in ("sgd", "minibatch", "full")}
    assert counts == {"sgd": 3 * n, "minibatch": 3 * 8, "full": 3}  # ceil(120/15) = 8 per epoch
    assert {k: p.samples_seen for k, p in app.paths.items()} == dict.fromkeys(counts, 3 * n)
    assert app.plot.x_axis == "epochs"
    # on the loss panel every path ends at 3 epochs
    assert {k: line.get_xdata()[-1] for k, line in app.plot.loss_lines.items()} == dict.fromkeys(
        counts, 3.0)
    assert "360" in app.summary.value  # SGD's 360 updates are reported


def test_divergence_gives_a_finite_plot_and_a_message(app):
    assert app.plot.message.get_text() == ""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.learning_rate.value = 10 ** app.learning_rate.max  # 3.16, far above 2/λ_max
        app.steps.value = 100
        app.fig.savefig(io.BytesIO(), format="png")  # renders without warnings or errors
    message = app.plot.message.get_text()
    for key, name in (("sgd", "SGD"), ("minibatch", "mini-batch"), ("full", "batch GD")):
        path = app.paths[key]
        assert path.diverged
        assert f"{name}: diverged after {path.diverged_at:,} updates" in message
        points = plotted(app, key)
        assert len(points) == path.diverged_at + 1 and np.all(np.isfinite(points))
        assert np.all(np.isfinite(app.plot.loss_lines[key].get_ydata()))
    assert "diverged after" in app.summary.value and "loss &gt; 1e+04" in app.summary.value
    assert "L > 1e+04" in message
    app.learning_rate.value = 0.05  # back to a stable rate: the message goes away
    assert app.plot.message.get_text() == ""


def test_stable_rate_reports_final_losses(app):
    app.learning_rate.value = 0.2
    rows = app.summary.value.split("<tbody>")[1].split("</tr>")[:3]
    for row, key in zip(rows, ("sgd", "minibatch", "full"), strict=True):
        path = app.paths[key]
        colour = to_hex(app.plot.lines[key].get_color())
        assert colour == to_hex(batch_size_color(path.batch_size))  # the table is the figure's key
        assert f"background:{colour}" in row and app.plot.names[key] in row
        assert f"<td>{path.final_loss:.4g}</td>" in row
        assert f"<td>{path.final_loss - app.plot.min_loss:.3g}</td>" in row  # what the panel plots


def test_updates_happen_in_place(app):
    figures_before = plt.get_fignums()
    lines_before = dict(app.plot.lines)
    app.batch_size.value = 31
    app.learning_rate.value = 0.05
    app.budget.value = "equal samples"
    assert plt.get_fignums() == figures_before
    assert app.plot.lines == lines_before
    assert len(app.plot.ax_surface.lines) == len(lines_before) + 2  # paths + start + minimum


def assert_live_view_shows(app):
    """Every line of both panels has its mark in the live view holding the line's data and colour; the
    contours are one mark with a line per level; the scales hold the axes' limits (log on the right)."""
    live = live_figure(app.fig)
    plot = app.plot
    for line in [*plot.lines.values(), *plot.loss_lines.values(), plot.start_marker, plot.optimum_marker]:
        (mark,) = live.marks_of(line)
        np.testing.assert_array_equal(mark.x, np.asarray(line.get_xdata(), dtype=float))
        np.testing.assert_array_equal(mark.y, np.asarray(line.get_ydata(), dtype=float))
        assert mark.colors == [to_hex(line.get_color())]
    (contours,) = plot.ax_surface.collections
    (mark,) = live.marks_of(contours)
    drawn = sum(len(path.vertices) > 0 for path in contours.get_paths())  # levels with lines
    assert len(contours.levels) == 14 and drawn >= 12
    assert mark.x.shape[0] == drawn and mark.colors == ["#999999"] * drawn
    (message,) = live.marks_of(plot.message)
    assert list(message.text) == (plot.message.get_text().split("\n") if plot.message.get_text() else [])
    for ax in (plot.ax_surface, plot.ax_loss):
        x_scale, y_scale = live.scales_of(ax)
        assert (x_scale.min, x_scale.max) == tuple(sorted(ax.get_xlim()))
        assert (y_scale.min, y_scale.max) == tuple(sorted(ax.get_ylim()))
    assert type(live.scales_of(plot.ax_loss)[1]).__name__ == "LogScale"


def test_the_live_view_follows_the_controls(app):
    assert_live_view_shows(app)
    app.batch_size.value = 31  # the mini-batch path and its loss curve move, in its new colour
    assert_live_view_shows(app)
    assert live_figure(app.fig).marks_of(app.plot.lines["minibatch"])[0].colors == [
        to_hex(batch_size_color(31))]
    app.budget.value = "equal samples"  # the loss panel's x axis: epochs
    assert_live_view_shows(app)
    app.learning_rate.value = 10 ** app.learning_rate.max  # every path diverges: the red message
    assert_live_view_shows(app)
    assert "diverged after" in " ".join(live_figure(app.fig).marks_of(app.plot.message)[0].text)


def test_loss_panel_shows_the_gap_to_the_minimum(app):
    gap = app.plot.loss_lines["full"].get_ydata()
    path = app.paths["full"]
    np.testing.assert_allclose(gap, np.maximum(path.losses - PROBLEM.loss_at(PROBLEM.minimum()),
                                               1e-12), rtol=1e-9, atol=1e-15)
    assert np.all(np.diff(gap) < 0)  # a stable full-batch descent decreases the loss every step


def test_validation():
    with pytest.raises(ValueError, match="batch_size"):
        LandscapeApp(PROBLEM, batch_size=PROBLEM.n_samples + 1)
    with pytest.raises(ValueError, match="steps"):
        LandscapeApp(PROBLEM, steps=0)
    with pytest.raises(TypeError, match="problem"):
        LandscapeApp(problem="data")
    fig = Figure()
    plot = LandscapePlot(*fig.subplots(1, 2), PROBLEM, w_range=(-1, 3), c_range=(-2, 3))
    with pytest.raises(ValueError, match="x_axis"):
        plot.update({}, x_axis="seconds")
    with pytest.raises(ValueError, match="style"):
        plot.update({"adam": None})


def test_a_nan_learning_rate_is_refused_and_later_changes_work(app):
    with pytest.raises(ValueError, match="learning rate must be a finite number"):
        app.learning_rate.value = float("nan")
    assert math.isfinite(app.learning_rate.value)
    app.learning_rate.value = 0.05
    assert all(path.learning_rate == 0.05 for path in app.paths.values())


def test_static_copy_and_close():
    import ipywidgets
    import matplotlib.pyplot as plt

    baseline, figures = len(ipywidgets.Widget.widgets), set(plt.get_fignums())
    app = LandscapeApp(steps=5)
    bundle = app._repr_mimebundle_()
    assert {"image/png", "text/html"} <= set(bundle) and "final loss" in bundle["text/html"]
    app.close()
    assert len(ipywidgets.Widget.widgets) == baseline and set(plt.get_fignums()) == figures
