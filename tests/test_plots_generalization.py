"""Plot builders of notebook 04: the artists show exactly the sweep's numbers."""

from __future__ import annotations

import io

import numpy as np
import pytest

from batchlab.data import load_digits_split
from batchlab.experiments import SweepConfig, mean_curve, run_sweep, summarize, summary_values
from batchlab.plots.generalization import (
    SweepFigure,
    batch_colours,
    new_figure,
    plot_against_batch_size,
    plot_curves,
    plot_slices,
    plot_values_by_batch,
)
from batchlab.plots.mirror import live_figure

N = 40


@pytest.fixture(scope="module")
def sweep():
    config = SweepConfig(batch_sizes=(8, N), epochs=2, lr=0.1, base_batch_size=8, hidden=(4,),
                         seeds=(0, 1))
    return run_sweep(load_digits_split().take(N), config)


def test_batch_colours_are_distinct_per_size():
    colours = batch_colours([8, 32, 128])
    assert len(set(colours.values())) == 3


def test_plot_curves_draws_the_seed_mean(sweep):
    _fig, (ax,) = new_figure(1)
    lines = plot_curves(ax, sweep, "equal updates", "val_loss", x="updates")
    for b, line in lines.items():
        xs, mean, _ = mean_curve(sweep.select("equal updates", b), "val_loss", "updates")
        np.testing.assert_array_equal(line.get_xdata(), xs)
        np.testing.assert_array_equal(line.get_ydata(), mean)
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="metric"):
        plot_curves(ax, sweep, "equal updates", "loss")


def test_plot_against_batch_size_uses_the_summary(sweep):
    _fig, (ax,) = new_figure(1)
    values = summary_values(summarize(sweep), "final_val_accuracy")
    drawn = plot_against_batch_size(ax, values, ylabel="%", scale=100)
    line = drawn["equal epochs"].lines[0]
    np.testing.assert_allclose(line.get_ydata(), [100 * values["equal epochs"][b][0] for b in (8, N)])
    np.testing.assert_array_equal(line.get_xdata(), [8, N])


def test_slices_and_values_by_batch():
    _fig, (ax1, ax2) = new_figure(2)
    ts = np.linspace(-1, 1, 5)
    lines = plot_slices(ax1, ts, {8: ts**2, 32: 2 * ts**2})
    np.testing.assert_array_equal(lines[32].get_ydata(), 2 * ts**2)
    container = plot_values_by_batch(ax2, {8: [1.0, 3.0], 32: [2.0, 2.0]}, ylabel="rise")
    np.testing.assert_array_equal(container.lines[0].get_ydata(), [2.0, 2.0])


def test_sweep_figure_live_curve_and_clearing(sweep):
    view = SweepFigure()
    live = live_figure(view.fig)  # the app's live view
    view.show_sweep(sweep, "equal epochs", 8, "epochs")
    assert set(view.sweep_lines) == {(m, b) for m in ("val_loss", "val_accuracy") for b in (8, N)}
    live.sync()
    for line in view.sweep_lines.values():  # lines added after the view was made get marks
        np.testing.assert_array_equal(live.marks_of(line)[0].y, line.get_ydata())
    old_marks = [mark for line in view.sweep_lines.values() for mark in live.marks_of(line)]
    history = sweep.select("equal epochs", 8, 0)[0].history
    view.set_live(history)
    xs, ys, std = mean_curve([history], "val_accuracy")  # one history: that run's own curve
    np.testing.assert_array_equal(xs, np.arange(1, history.epochs_completed + 1))
    np.testing.assert_array_equal(ys, history.val_accuracy)
    assert not std.any()
    np.testing.assert_array_equal(view.live_lines["val_accuracy"].get_xdata(), xs)
    np.testing.assert_array_equal(view.live_lines["val_accuracy"].get_ydata(), ys)
    assert view.best_marker.get_xdata()[0] == history.best_epoch + 1
    assert view.best_marker.get_ydata()[0] == history.val_accuracy[history.best_epoch]
    view.set_live(None)
    assert len(view.live_lines["val_loss"].get_xdata()) == 0
    view.show_sweep(None, None, 8, "updates")
    assert view.sweep_lines == {} and view.loss_ax.get_xlabel().startswith("updates")
    live.sync()
    shown = [*live.view_of(view.loss_ax).marks, *live.view_of(view.acc_ax).marks]
    assert len(old_marks) == 4 and not any(mark in shown for mark in old_marks)  # removed lines' marks go
    x_label = live.views[0].x_label
    assert list(x_label.text) == [view.loss_ax.get_xlabel()] and x_label.visible
    view.fig.savefig(io.BytesIO(), format="png")  # the static copy draws without error


def test_figures_are_plain_and_never_pile_up_in_pyplot():
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from batchlab.plots.batches import plot_sample
    from batchlab.plots.generalization import new_figure

    before = plt.get_fignums()
    for _ in range(3):  # a notebook cell run three times
        fig, axes = new_figure(2, figsize=(6.0, 3.0), dpi=50)
        sample = plot_sample(np.zeros((8, 8)), 3)
    assert plt.get_fignums() == before and len(axes) == 2  # pyplot holds none of them
    assert type(fig) is Figure and type(sample) is Figure
    assert tuple(fig.get_size_inches()) == (6.0, 3.0) and fig.dpi == 50
    with pytest.raises(ValueError, match="ncols must be"):
        new_figure(0)
    with pytest.raises(ValueError, match="dpi must be"):
        new_figure(1, dpi=5)
