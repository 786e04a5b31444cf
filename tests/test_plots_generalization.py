"""Plot builders of notebook 04: the artists show exactly the sweep's numbers."""

from __future__ import annotations

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
    view.show_sweep(sweep, "equal epochs", 8, "epochs")
    assert set(view.sweep_lines) == {(m, b) for m in ("val_loss", "val_accuracy") for b in (8, N)}
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
    view.fig.canvas.draw()  # draws under the lock without error


def test_named_figures_are_replaced_not_piled_up():
    import matplotlib.pyplot as plt

    from batchlab.plots.batches import plot_sample
    from batchlab.plots.generalization import new_figure

    before = len(plt.get_fignums())
    for _ in range(3):  # a notebook cell run three times
        _fig, axes = new_figure(2, num="test figure")
        plot_sample(np.zeros((8, 8)), 3, num="test sample")
    assert len(plt.get_fignums()) == before + 2 and len(axes) == 2
    plt.close("test figure")
    plt.close("test sample")
