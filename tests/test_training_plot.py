"""The live training plot (batchlab.plots.training): what it draws equals what the run measured."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from batchlab.data import load_digits_split
from batchlab.history import Callback, History, TimedCallback
from batchlab.models import make_mlp
from batchlab.plots.live import Throttle
from batchlab.plots.training import MAX_DRAW_SHARE, LiveTrainingPlot
from batchlab.training import train

SPLIT = load_digits_split()


def run(plot: Callback, n_train: int = 200, **kwargs) -> History:
    kwargs = {"batch_size": 16, "epochs": 3, "progress": False, "device": "cpu", **kwargs}
    return train(make_mlp(), SPLIT.take(n_train), callbacks=[plot], **kwargs)


def ydata(line) -> list[float]:
    return np.asarray(line.get_ydata(), dtype=float).tolist()


def test_after_training_the_curves_are_the_history():
    plot = LiveTrainingPlot(3, 13)
    history = run(plot)
    assert ydata(plot.iteration_line) == history.iteration_losses
    assert np.asarray(plot.iteration_line.get_xdata()).tolist() == list(range(1, history.iterations + 1))
    assert plot.boundaries.tolist() == [s + 0.5 for s in history.epoch_starts[1:]] == [13.5, 26.5]
    assert ydata(plot.train_loss_line) == history.train_loss
    assert ydata(plot.val_loss_line) == history.val_loss
    assert ydata(plot.train_accuracy_line) == history.train_accuracy
    assert ydata(plot.val_accuracy_line) == history.val_accuracy
    assert np.asarray(plot.val_loss_line.get_xdata()).tolist() == [1, 2, 3]
    assert plot.ax_iterations.get_xlim() == (0.5, 39.5)
    top = plot.ax_iterations.get_ylim()[1]
    assert top >= 1.1 * max(history.iteration_losses)
    assert plot.status.get_text() == "Finished: 39 iterations as planned (I × E)."


def test_the_extent_comes_from_the_plan_when_not_given():
    plot = LiveTrainingPlot()
    history = run(plot, n_train=100, batch_size=25, epochs=2)
    assert plot.total_epochs == 2 and plot.iterations_per_epoch == 4
    assert plot.ax_iterations.get_xlim() == (0.5, 8.5)
    assert ydata(plot.iteration_line) == history.iteration_losses


class Snapshots(Callback):
    """Records what the plot shows after each of its own refreshes (it runs after the plot)."""

    def __init__(self, plot: LiveTrainingPlot):
        self.plot = plot
        self.draws = 0
        self.seen: list[tuple[int, int, list[float]]] = []

    def on_iteration_end(self, state):
        if self.plot.draw_count != self.draws:
            self.draws = self.plot.draw_count
            self.seen.append((state.global_iteration, len(state.history.epoch_starts),
                              ydata(self.plot.iteration_line)))


def test_live_refreshes_show_every_iteration_so_far():
    plot = LiveTrainingPlot(3, 13, min_interval_s=1e-9)  # refresh at every iteration
    plot.throttle.max_share = None  # whatever a redraw costs
    snapshots = Snapshots(plot)
    history = train(make_mlp(), SPLIT.take(200), batch_size=16, epochs=3, progress=False, device="cpu",
                    callbacks=[plot, snapshots])
    assert len(snapshots.seen) >= history.iterations - 1
    for global_iteration, _, shown in snapshots.seen:
        assert shown == pytest.approx(history.iteration_losses[: global_iteration + 1], rel=1e-12)


def test_refreshes_are_throttled():
    plot = LiveTrainingPlot(3, 13, min_interval_s=3600.0)
    run(plot)
    assert plot.draw_count == 1  # only the final state is drawn


def test_the_throttle_follows_its_clock():
    now = [0.0]
    throttle = Throttle(0.5, clock=lambda: now[0])
    answers = []
    for t in (0.1, 0.49, 0.5, 0.6, 0.99, 1.0, 3.0):
        now[0] = t
        answers.append(throttle.ready())
    assert answers == [False, False, True, False, False, True, True] and throttle.count == 3
    throttle.restart()
    assert not throttle.ready() and throttle.count == 0
    with pytest.raises(ValueError, match="interval_s"):
        Throttle(-1.0)


def test_a_fake_clock_decides_when_the_plot_redraws():
    """Time advances one second per iteration: with a 2.5 s interval, every third iteration redraws."""
    plot = LiveTrainingPlot(1, 13, min_interval_s=2.5)
    ticks = iter(range(10_000))
    plot.throttle.clock = lambda: float(next(ticks))
    plot.throttle.max_share = None  # only the fake clock decides
    history = run(plot, epochs=1)
    # restart at t=0; iterations at t=1..13 (and the epoch's end at 14): yes at 3, 6, 9, 12
    assert plot.draw_count == 4 + 1 and history.iterations == 13


def test_a_diverged_run_is_labelled_in_words():
    history = run(LiveTrainingPlot(3, 13))
    history.diverged, history.divergence = True, "the loss rose to 3.9e+33, far above its start"
    history.iteration_losses[5:] = [3.9e33] * (len(history.iteration_losses) - 5)
    plot = LiveTrainingPlot().show_history(history)
    assert plot.status.get_text() == "Diverged: the loss rose to 3.9e+33, far above its start"
    assert plot.ax_iterations.get_ylim()[1] <= 4 * history.iteration_losses[0]  # still readable


def test_axes_grow_when_the_loss_exceeds_them():
    plot = LiveTrainingPlot(2, 13, min_interval_s=1e-9)
    history = run(plot, epochs=2, lr=5.0)  # a learning rate this large makes the loss jump up
    finite = [v for v in history.iteration_losses if math.isfinite(v)]
    assert plot.ax_iterations.get_ylim()[1] >= min(max(finite), 4 * finite[0])


def test_show_history_draws_a_finished_run_and_reuse_resets():
    history = run(LiveTrainingPlot(3, 13))
    other = LiveTrainingPlot().show_history(history)
    assert ydata(other.iteration_line) == history.iteration_losses
    assert ydata(other.val_loss_line) == history.val_loss
    history2 = run(other, n_train=100, batch_size=50, epochs=1)
    assert ydata(other.iteration_line) == history2.iteration_losses
    assert len(ydata(other.val_loss_line)) == 1
    with pytest.raises(TypeError, match="history"):
        other.show_history({"iteration_losses": []})


def test_a_stopped_run_is_drawn_as_far_as_it_went():
    class StopAt(Callback):
        def on_iteration_end(self, state):
            if state.global_iteration == 20:
                state.request_stop()

    plot = LiveTrainingPlot(3, 13)
    history = train(make_mlp(), SPLIT.take(200), batch_size=16, epochs=3, progress=False, device="cpu",
                    callbacks=[plot, StopAt()])
    assert history.stopped
    assert ydata(plot.iteration_line) == history.iteration_losses and len(history.iteration_losses) == 21
    assert plot.boundaries.tolist() == [13.5]
    assert plot.status.get_text().startswith("Stopped after 21 of 39")


def test_without_accuracy_panel():
    plot = LiveTrainingPlot(3, 13, accuracy=False)
    run(plot)
    assert plot.ax_accuracy is None and plot.train_accuracy_line is None
    assert len(plot.figure.axes) == 2


def test_slow_redraws_are_spaced_out_to_a_tenth_of_the_run():
    """A redraw that costs 0.5 s makes the next one wait 5 s: a short run gets one redraw (plus the final
    one), where the 1e-9 s interval alone would redraw after every iteration."""
    plot = LiveTrainingPlot(3, 13, min_interval_s=1e-9)
    plot.redraw = lambda: time.sleep(0.5)  # a slow canvas
    started = time.perf_counter()
    history = run(plot)
    assert plot.throttle.wait >= 0.5 / MAX_DRAW_SHARE
    assert plot.throttle.count <= 1 + (time.perf_counter() - started) / 5.0 < history.iterations


def test_callback_time_is_measured_by_the_wrapper():
    plot = LiveTrainingPlot(3, 13, min_interval_s=1e-9)
    timed = TimedCallback(plot)
    run(timed)
    assert 0 < timed.final_seconds < timed.seconds  # the final redraw, and redraws during the run
    assert timed.during_seconds == pytest.approx(timed.seconds - timed.final_seconds)
    assert 0 < timed.during_seconds < timed.training_seconds
    assert plot.draw_count >= 2
    assert plot.status.get_text().startswith("Finished") or "finished" in plot.status.get_text().lower()


def test_timed_callback_passes_every_hook_on_and_checks_its_argument():
    calls = []

    class Recorder(Callback):
        def on_train_start(self, state):
            calls.append("start")

        def on_iteration_end(self, state):
            calls.append("iteration")

        def on_epoch_end(self, state):
            calls.append("epoch")

        def on_train_end(self, state):
            calls.append("end")

    history = train(make_mlp(), SPLIT.take(64), batch_size=32, epochs=2, progress=False, device="cpu",
                    callbacks=[TimedCallback(Recorder())])
    assert calls == ["start", "iteration", "iteration", "epoch", "iteration", "iteration", "epoch", "end"]
    assert history.iterations == 4
    with pytest.raises(TypeError, match="callback"):
        TimedCallback(print)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"total_epochs": 0}, ValueError, "total_epochs"),
        ({"iterations_per_epoch": 2.5}, TypeError, "iterations_per_epoch"),
        ({"min_interval_s": 0}, ValueError, "min_interval_s"),
        ({"accuracy": "yes"}, TypeError, "accuracy"),
        ({"dpi": 5}, ValueError, "dpi"),
    ],
)
def test_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        LiveTrainingPlot(**kwargs)


def test_html_table_escapes_cells_and_its_example_runs():
    import doctest

    import batchlab.markup as markup

    assert doctest.testmod(markup).failed == 0
    table = markup.html_table([("a < b", 1)], header=("x", "y"), css_class="k")
    assert table.startswith("<table class='k'><thead><tr><th style='text-align:left'>x</th>")
    assert "a &lt; b" in table
    assert "<b>2</b>" in markup.html_table([("n", "<b>2</b>")], escape=False)
