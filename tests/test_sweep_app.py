"""The sweep explorer without a browser: controls, live overlay, Stop, locking, the background thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from batchlab import experiments as sweep_module
from batchlab.apps.sweep import SweepExplorerApp
from batchlab.data import load_digits_split
from batchlab.experiments import SweepConfig, run_sweep
from batchlab.history import Callback
from batchlab.plots.mirror import live_figure

N = 48


@pytest.fixture(scope="module")
def data():
    return load_digits_split().take(N)


@pytest.fixture(scope="module")
def sweep(data):
    config = SweepConfig(batch_sizes=(4, 16, N), epochs=3, lr=0.1, base_batch_size=16, hidden=(8,),
                         warmup_epochs=1, seeds=(0, 1))
    return run_sweep(data, config)


@pytest.fixture
def app(sweep, data):
    app = SweepExplorerApp(sweep, data, redraw_every_s=10.0)  # tests draw once, at the end
    yield app
    app.close()


class StopAt(Callback):
    """Presses the app's Stop button when ``epochs`` epochs are complete (deterministic Stop)."""

    def __init__(self, app: SweepExplorerApp, epochs: int) -> None:
        self.app, self.epochs = app, epochs

    def on_epoch_end(self, state) -> None:
        if state.history.epochs_completed == self.epochs:
            self.app.stop_button.click()


def live(app, metric):
    line = app.view.live_lines[metric]
    return np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)


def in_page(app, line):
    """(x, y) of the bqplot mark that shows ``line`` in the app's live view."""
    mark = live_figure(app.fig).marks_of(line)[0]
    return np.asarray(mark.x, dtype=float), np.asarray(mark.y, dtype=float)


def assert_page_shows_the_figure(app):
    """Every line of the figure (sweep curves, the live run, the early-stop star) is in the page as
    drawn, and the scales hold the axes' limits."""
    view = live_figure(app.fig)
    for line in [*app.view.sweep_lines.values(), *app.view.live_lines.values(), app.view.best_marker]:
        x, y = in_page(app, line)
        np.testing.assert_array_equal(x, np.asarray(line.get_xdata(), dtype=float))
        np.testing.assert_array_equal(y, np.asarray(line.get_ydata(), dtype=float))
    for ax in (app.view.loss_ax, app.view.acc_ax):
        x_scale, y_scale = view.scales_of(ax)
        assert (x_scale.min, x_scale.max, y_scale.min, y_scale.max) == (*ax.get_xlim(), *ax.get_ylim())


def test_controls_only_offer_the_sweeps_batch_sizes(app, sweep):
    assert list(app.batch_size.options) == list(sweep.config.batch_sizes)
    assert max(app.batch_size.options) <= N
    assert app.batch_size.value == 16  # the base batch size
    with pytest.raises(Exception):  # noqa: B017 - traitlets' TraitError: not an option
        app.batch_size.value = N + 1
    assert app.stop_button.disabled and not app.train_button.disabled


def test_overlaid_curve_equals_the_runs_history(app):
    app.batch_size.value = 4
    history = app.run(blocking=True, progress=False)
    assert history is app.history is app.last_run.history
    for metric in ("train_loss", "val_loss", "val_accuracy"):
        xs, ys = live(app, metric)
        np.testing.assert_array_equal(ys, getattr(history, metric))
        np.testing.assert_array_equal(xs, np.arange(1, history.epochs_completed + 1))
    marker = app.view.best_marker
    assert marker.get_xdata()[0] == history.best_epoch + 1
    assert marker.get_ydata()[0] == history.val_accuracy[history.best_epoch]
    assert f"{100 * history.val_accuracy[-1]:.1f}%" in app.result.value
    assert_page_shows_the_figure(app)
    assert list(live_figure(app.fig).marks_of(marker)[0].text) == ["★"]  # the early-stop star
    assert not app.is_running and app.stop_button.disabled and not app.batch_size.disabled


def test_curves_are_redrawn_during_training_and_throttled(app):
    seen = []

    class Peek(Callback):  # runs after the app's own callback
        def on_epoch_end(self, state):
            seen.append(len(app.view.live_lines["val_loss"].get_xdata()))

    app.batch_size.value = 4
    app.redraw_every_s = 0.0
    app.run(blocking=True, progress=False, callbacks=[Peek()])
    assert seen == [1, 2, 3]  # redrawn after every epoch
    seen.clear()
    app.redraw_every_s = 10.0
    app.run(blocking=True, progress=False, callbacks=[Peek()])
    assert seen == [0, 0, 0]  # every epoch fell inside the 10 s window: only the final state is drawn
    assert len(app.view.live_lines["val_loss"].get_xdata()) == 3  # and the end draws everything


def test_a_control_change_moves_the_curves_in_the_page(app):
    app.batch_size.value = 4
    assert_page_shows_the_figure(app)
    thick = in_page(app, app.view.sweep_lines[("val_loss", 4)])
    widths = {b: live_figure(app.fig).marks_of(app.view.sweep_lines[("val_loss", b)])[0].stroke_width
              for b in (4, 16)}
    assert widths[4] > widths[16]  # the chosen B is drawn thicker in the page too
    app.budget.value = "updates"  # another regime: new curves, against updates
    assert_page_shows_the_figure(app)
    assert not np.array_equal(in_page(app, app.view.sweep_lines[("val_loss", 4)])[0], thick[0])


def test_same_seed_retraces_the_sweeps_run(app, sweep):
    app.batch_size.value, app.rule.value, app.seed.value = 16, "linear", 1
    history = app.run(blocking=True, progress=False)
    reference = sweep.select("linear rule + warm-up", 16, 1)[0].history
    assert history.val_loss == reference.val_loss
    assert history.iteration_losses == reference.iteration_losses


def test_equal_updates_plots_against_updates(app, sweep):
    app.budget.value, app.batch_size.value = "updates", N
    history = app.run(blocking=True, progress=True)
    xs, ys = live(app, "val_loss")
    np.testing.assert_array_equal(xs, history.epoch_end_steps)
    np.testing.assert_array_equal(ys, history.val_loss)
    assert history.steps >= sweep.config.target_updates(N)
    assert app.view.loss_ax.get_xlabel().startswith("updates")


def test_background_curves_follow_the_regime_in_place(app, sweep):
    app.batch_size.value = 4
    fig, lines_before = app.fig, dict(app.view.sweep_lines)
    app.rule.value = "sqrt"
    assert app.fig is fig
    assert set(app.view.sweep_lines) == set(lines_before)
    runs = sweep.select("sqrt rule + warm-up", 4)
    mean = np.mean([r.history.val_accuracy for r in runs], axis=0)
    np.testing.assert_allclose(app.view.sweep_lines[("val_accuracy", 4)].get_ydata(), mean)
    assert "learning rate 0.05," in app.plan.value  # 0.1 · √(4 / 16)
    # The sweep never ran "equal updates" with a scaling rule: no curves behind, and the plan says so.
    app.budget.value = "updates"
    assert app.view.sweep_lines == {}
    assert app.sweep_regime_name() is None
    assert "did not run this combination" in app.plan.value


def test_stop_leaves_a_consistent_state(app):
    app.budget.value, app.batch_size.value = "updates", N  # one update per epoch, many epochs
    history = app.run(blocking=True, progress=False, callbacks=[StopAt(app, 3)])
    assert history.stopped
    # Stop takes effect after the current iteration: the 4th epoch's one and only iteration.
    assert history.iterations == history.steps == 4
    assert history.epochs_completed in (3, 4)  # whether that epoch counts as complete is the engine's
    assert len(history.val_loss) == len(history.val_accuracy) == history.epochs_completed
    xs, ys = live(app, "val_accuracy")
    assert len(xs) == len(ys) == history.epochs_completed
    np.testing.assert_array_equal(ys, history.val_accuracy)
    assert "Stopped" in app.result.value
    assert not app.is_running and app.stop_button.disabled and not app.train_button.disabled
    # The next run starts afresh (the stop request does not leak into it).
    app.budget.value = "epochs"
    again = app.run(blocking=True, progress=False)
    assert not again.stopped and again.epochs_completed == 3


def test_background_run_can_be_stopped_and_locks_the_controls(app):
    app.budget.value, app.batch_size.value = "updates", N
    started = threading.Event()

    class Signal(Callback):
        def on_epoch_end(self, state):
            started.set()

    class Slow(Callback):  # keeps the run going long enough for the test to act
        def on_iteration_end(self, state):
            threading.Event().wait(0.01)

    assert app.run(blocking=False, progress=False, callbacks=[Signal(), Slow()]) is None
    assert started.wait(20)
    assert app.is_running and app.batch_size.disabled and not app.stop_button.disabled
    app.batch_size.value = 4  # from code, while running: undone
    assert app.batch_size.value == N
    assert "locked" in app.result.value
    with pytest.raises(RuntimeError, match="in progress"):
        app.run(blocking=True)
    app.stop_button.click()
    app.wait(20)
    assert not app.is_running
    history = app.history
    assert history.stopped and history.epochs_completed < history.plan.epochs
    np.testing.assert_array_equal(live(app, "val_loss")[1], history.val_loss)
    assert not app.batch_size.disabled and app.stop_button.disabled


def test_a_failing_run_is_reported_and_unlocks(app, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr("batchlab.apps.sweep.run_one", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        app.run(blocking=True, progress=False)
    assert "Training failed" in app.result.value and "simulated" in app.result.value
    assert not app.is_running and not app.train_button.disabled
    assert app.history is None


def test_bad_arguments(sweep, data):
    with pytest.raises(TypeError, match="sweep"):
        SweepExplorerApp("sweep", data)
    with pytest.raises(TypeError, match="data"):
        SweepExplorerApp(sweep, "data")
    with pytest.raises(ValueError, match="training samples"):
        SweepExplorerApp(sweep, data.take(N - 1))
    with pytest.raises(ValueError, match="redraw_every_s"):
        SweepExplorerApp(sweep, data, redraw_every_s=-1.0)
    app = SweepExplorerApp(sweep, data)
    with pytest.raises(TypeError, match="blocking"):
        app.run(blocking="yes")
    with pytest.raises(TypeError, match="callbacks"):
        app.run(callbacks=[print])
    app.close()
    assert sweep_module.STANDARD_REGIMES  # the sweep module is importable without widgets


def test_a_diverged_run_is_reported_in_words(app, monkeypatch):
    real = sweep_module.run_one

    def diverging(*args, **kwargs):
        run = real(*args, **kwargs)
        run.history.diverged, run.history.divergence = True, "the loss rose to 4e+33, far above its start"
        return run

    monkeypatch.setattr("batchlab.apps.sweep.run_one", diverging)
    app.run(blocking=True, progress=False)
    assert "Diverged: the loss rose to 4e+33" in app.result.value
    assert "early stopping" not in app.result.value and "Done" not in app.result.value
    assert "Diverged" in app._repr_mimebundle_()["text/html"]


def test_close_retires_the_app_and_releases_its_widgets(sweep, data):
    import ipywidgets
    import matplotlib.pyplot as plt

    baseline, figures = len(ipywidgets.Widget.widgets), set(plt.get_fignums())
    for _ in range(2):
        explorer = SweepExplorerApp(sweep, data)
        explorer.close()
        assert len(ipywidgets.Widget.widgets) == baseline and set(plt.get_fignums()) == figures
    with pytest.raises(RuntimeError, match="closed"):
        explorer.run()
    explorer.train_button.click()  # a closed widget's click does nothing harmful
    assert explorer.history is None


def test_train_shows_the_train_call_it_runs_and_that_call_gives_the_same_run(app, data):
    import html as html_module
    import re

    from batchlab.models import make_mlp
    from batchlab.training import train

    app.batch_size.value = 4
    history = app.run(blocking=True, progress=False)
    code = html_module.unescape(re.search(r"<code>(.*)</code>", app.call.value)[1])
    assert code.startswith("train(make_mlp(") and "batch_size=4" in code
    again = eval(code, {"train": train, "make_mlp": make_mlp, "data": data})  # the learner's retyping
    assert again.val_loss == history.val_loss and again.steps == history.steps
