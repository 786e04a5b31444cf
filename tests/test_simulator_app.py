"""The training simulator (notebook 06): real runs, their stats and charts, Stop, locked controls,
unreachable invalid settings, and the pure helpers of its figure."""

from __future__ import annotations

import io
import math
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgba

from batchlab import arithmetic
from batchlab.apps.simulator import TrainingSimulatorApp, format_seconds
from batchlab.data import load_digits_split
from batchlab.models import make_mlp
from batchlab.plots.batches import epoch_boundaries
from batchlab.plots.mirror import has_live_figure, live_figure
from batchlab.plots.simulator import (
    CURRENT,
    DONE,
    DROPPED,
    EMPTY,
    STATE_COLOURS,
    TO_COME,
    envelope,
    epoch_end_positions,
    grid_shape,
    sample_states,
)
from batchlab.training import train


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


@pytest.fixture
def make_app(digits):
    """Apps that count the syncs of their live view (``draw_requests``: one per request_redraw, from
    the training thread or the main thread)."""
    apps = []

    def build(**kwargs):
        kwargs.setdefault("device", "cpu")
        app = TrainingSimulatorApp(data=digits, **kwargs)
        app.draw_requests = 0
        view = live_figure(app.fig)
        sync = view.sync

        def counted():
            app.draw_requests += 1
            sync()

        view.sync = counted
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.close()


def configure(app, n, b, lr, epochs, drop_last=False):
    app.dataset_size.value = n
    app.batch_size.value = b
    app.learning_rate.value = lr
    app.epochs.value = epochs
    app.drop_last.value = drop_last


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)  # polling interval while the training thread works


def stat(app, label):
    """The value shown in the stats box called ``label``."""
    html = app.stats.value
    at = html.index(f">{label}</div>")
    start = html.index("font-weight:bold'>", at) + len("font-weight:bold'>")
    return html[start:html.index("</div>", start)]


# --------------------------------------------------------------------------- controls
def test_controls_and_ranges(make_app):
    app = make_app()
    assert (app.dataset_size.min, app.dataset_size.max, app.dataset_size.value) == (100, 1347, 1347)
    assert (app.batch_size.min, app.batch_size.max, app.batch_size.value) == (1, 1347, 32)
    assert (app.learning_rate.min, app.learning_rate.max, app.learning_rate.base) == (-3, 1, 10)
    assert app.learning_rate.value == pytest.approx(0.1)
    assert (app.epochs.min, app.epochs.max) == (1, 100)
    assert app.drop_last.value is False
    assert not app.start_button.disabled and app.stop_button.disabled and not app.reset_button.disabled
    assert not app.is_running and app.history is None


def test_batch_size_follows_the_dataset_size(make_app):
    app = make_app()
    app.batch_size.value = 200
    app.dataset_size.value = 150
    assert app.batch_size.max == 150 and app.batch_size.value == 150  # clamped: now B = N
    app.dataset_size.value = 400
    assert app.batch_size.max == 400 and app.batch_size.value == 400  # a full batch stays full
    app.batch_size.value = 32
    app.dataset_size.value = 1347
    assert (app.batch_size.max, app.batch_size.value) == (1347, 32)  # a mini-batch keeps its size
    app.dataset_size.value = 100
    assert (app.batch_size.max, app.batch_size.value) == (100, 32)


@pytest.fixture(scope="module")
def shared_app(digits):
    app = TrainingSimulatorApp(data=digits, device="cpu")
    yield app
    app.close()


@settings(max_examples=40)
@given(moves=st.lists(st.tuples(st.sampled_from(["dataset_size", "batch_size", "drop_last", "epochs"]),
                                st.integers(0, 10_000)), min_size=1, max_size=12))
def test_invalid_settings_are_unreachable(shared_app, moves):
    """Whatever the order of moves, 1 <= B <= N, and every epoch has at least one batch."""
    app = shared_app
    app.dataset_size.value, app.batch_size.value, app.drop_last.value = 1347, 32, False
    for name, raw in moves:
        control = getattr(app, name)
        if name == "drop_last":
            control.value = bool(raw % 2)
        else:  # any value the slider accepts
            control.value = control.min + raw % (control.max - control.min + 1)
        s = app.settings  # the TrainingPlan of the controls
        assert app.batch_size.max == s.n_samples
        assert 1 <= s.batch_size <= s.n_samples
        assert s.iterations_per_epoch >= 1
        assert stat(app, "iterations per epoch") == f"{s.iterations_per_epoch:,}"
        assert app.progress.max == s.total_iterations


def test_drop_last_with_a_full_batch_is_one_iteration(make_app, digits):
    app = make_app(n_samples=120, batch_size=120, epochs=2, drop_last=True)
    assert stat(app, "iterations per epoch") == "1"
    history = app.run()
    assert history.iterations == 2 == arithmetic.total_steps(120, 120, 2, drop_last=True)
    assert history.samples_seen == 240


def test_presets(make_app):
    app = make_app(n_samples=500)
    for button, expected in zip(app.preset_buttons, (1, 32, 500), strict=True):
        button.click()
        assert app.batch_size.value == expected
    app.dataset_size.value = 100
    app.preset_buttons[2].click()
    assert app.batch_size.value == 100


def test_plan_before_a_run_shows_the_formulas(make_app):
    app = make_app(n_samples=1347, batch_size=32, epochs=10)
    assert stat(app, "iterations per epoch") == "43"
    assert "⌈N / B⌉ = ⌈1,347 / 32⌉; last batch: 3" in app.stats.value
    assert stat(app, "total iterations") == "0 / 430"
    assert stat(app, "samples seen") == "0 / 13,470"
    app.drop_last.value = True
    assert stat(app, "iterations per epoch") == "42"
    assert "⌊N / B⌋" in app.stats.value and "drops 3" in app.stats.value
    assert stat(app, "total iterations") == "0 / 420"
    assert app.progress.max == 420
    assert "mini-batch" in app.insights.value
    app.batch_size.value = 1
    assert "stochastic gradient descent" in app.insights.value
    app.batch_size.value = 1347
    assert "batch gradient descent" in app.insights.value


# --------------------------------------------------------------------------- real runs
CASES = [(300, 32, 3, False), (300, 32, 3, True), (250, 250, 4, False), (101, 1, 2, False),
         (200, 64, 2, True)]


@pytest.mark.parametrize(("n", "b", "epochs", "drop_last"), CASES)
def test_a_background_run_matches_the_formulas_and_its_history(make_app, digits, n, b, epochs,
                                                                drop_last):
    app = make_app()
    configure(app, n, b, 0.1, epochs, drop_last)
    app.start_button.click()
    assert app.is_running or app.history is not None
    history = app.wait(timeout=60)
    assert not app.is_running and app.error is None
    per_epoch = arithmetic.iterations_per_epoch(n, b, drop_last)
    total = arithmetic.total_steps(n, b, epochs, drop_last)
    # The run made exactly the planned counts ...
    assert history.iterations == history.steps == total == history.planned_steps
    assert history.epochs_completed == epochs and not history.stopped
    assert history.samples_seen == arithmetic.samples_seen(n, b, epochs, drop_last)
    # ... and the stats show them.
    assert stat(app, "iterations per epoch") == f"{per_epoch:,}"
    assert stat(app, "total iterations") == f"{total:,} / {total:,}"
    assert stat(app, "epoch") == f"{epochs} / {epochs}"
    assert stat(app, "iteration in epoch") == f"{per_epoch:,} / {per_epoch:,}"
    assert stat(app, "samples seen") == f"{history.samples_seen:,} / {history.samples_seen:,}"
    assert stat(app, "validation accuracy") == f"{history.val_accuracy[-1]:.1%}"
    assert stat(app, "training loss") == f"{history.train_loss[-1]:.4g}"
    assert stat(app, "time per iteration").endswith(("µs", "ms", " s"))
    assert app.progress.value == total == app.progress.max
    # The chart holds the real per-iteration losses, the per-epoch curves and the epoch boundaries.
    view = app.view
    np.testing.assert_array_equal(view.iteration_line.get_ydata(), history.iteration_losses)
    np.testing.assert_array_equal(view.iteration_line.get_xdata(), np.arange(1, total + 1))
    np.testing.assert_array_equal(view.val_line.get_ydata(), history.val_loss)
    np.testing.assert_array_equal(view.train_line.get_ydata(), history.train_loss)
    np.testing.assert_array_equal(view.val_line.get_xdata(), epoch_end_positions(per_epoch, epochs))
    xs = [segment[0][0] for segment in view.boundaries.get_segments()]
    assert xs == [per_epoch * e + 0.5 for e in range(1, epochs)]
    assert view.loss_ax.get_xlim() == (0.5, total + 0.5)
    assert "Finished" in app.status.value
    assert "Runs so far" in app.runs.value and f"<td>{total:,}</td>" in app.runs.value


def test_the_app_trains_what_train_trains(make_app, digits):
    """Same settings and seed: the app's run equals a direct call of the engine, loss for loss."""
    app = make_app(n_samples=300, batch_size=20, learning_rate=0.3, epochs=3, seed=4)
    app.start()
    history = app.wait(timeout=60)
    direct = train(make_mlp(seed=4), digits.take(300), batch_size=20, epochs=3, lr=0.3, seed=4,
                   device="cpu", progress=False)
    assert history.iteration_losses == direct.iteration_losses
    assert history.val_loss == direct.val_loss
    assert history.val_loss[-1] < history.val_loss[0] < math.log(10) * 1.1  # it learns


def test_start_answers_at_once_and_clears_the_previous_run(make_app):
    """Start says "Starting…" and empties the chart before the training thread refreshes anything."""
    app = make_app(n_samples=200, batch_size=50, epochs=2, min_redraw_s=60.0, figure_every_s=60.0)
    app.run()
    assert len(app.view.iteration_line.get_xdata()) > 0  # the finished run's curve
    statuses, points = [], []
    app.status.observe(lambda change: statuses.append(change["new"]), names="value")
    # the counts beside the chart change after it (then the chart holds no curve yet)
    app.stats.observe(lambda _: points.append(len(app.view.iteration_line.get_xdata())), names="value")
    app.start()
    app.wait(timeout=60)
    assert "Starting" in statuses[0] and points[0] == 0
    assert "Finished" in statuses[-1]


def test_is_running_and_error_are_read_only(make_app):
    """Setting them from code must not unlock a run or hide a failure."""
    app = make_app(n_samples=200, batch_size=50, epochs=2)
    with pytest.raises(AttributeError):
        app.is_running = False
    with pytest.raises(AttributeError):
        app.error = None


def test_blocking_run_returns_the_history(make_app):
    app = make_app(n_samples=200, batch_size=50, epochs=2)
    history = app.run(blocking=True)
    assert history is app.history and history.iterations == 8
    assert app.run_settings == app.settings
    assert set(app.timing) == {"training_s", "refreshes", "view_s", "view_share", "final_refresh_s"}
    assert app.timing["training_s"] > 0 and 0 <= app.timing["view_share"] < 1


def test_every_start_trains_a_fresh_model(make_app):
    app = make_app(n_samples=200, batch_size=50, epochs=2)
    first = app.run().iteration_losses
    assert app.run().iteration_losses == first
    assert app.runs.value.count("<tr><td>") == 2


# --------------------------------------------------------------------------- stop, lock, reset
def long_run(make_app, **kwargs):
    """An app training 100 epochs of B = 1 (134,700 iterations, far longer than any test waits)."""
    app = make_app(n_samples=1347, batch_size=1, epochs=100, **kwargs)
    app.start()
    wait_until(lambda: app.progress.value > 20)
    return app


def assert_consistent_after_stop(app):
    history = app.history
    assert not app.is_running and history.stopped
    assert 0 < history.iterations < history.planned_steps
    assert len(history.iteration_losses) == len(history.iteration_sizes) == history.iterations
    assert history.samples_seen == sum(history.iteration_sizes)
    assert len(history.val_loss) == history.epochs_completed
    np.testing.assert_array_equal(app.view.iteration_losses, history.iteration_losses)
    x, y = envelope(history.iteration_losses)  # what is drawn (the full series up to 2,000 points)
    np.testing.assert_array_equal(app.view.iteration_line.get_ydata(), y)
    np.testing.assert_array_equal(app.view.iteration_line.get_xdata(), x)
    assert stat(app, "total iterations") == f"{history.iterations:,} / {history.planned_steps:,}"
    assert app.progress.value == history.iterations
    assert "Stopped after" in app.status.value and "<td>stopped</td>" in app.runs.value
    assert not app.start_button.disabled and app.stop_button.disabled
    assert not any(control.disabled for control in app.settings_controls)


def test_stop_from_another_thread_is_quick_and_clean(make_app):
    app = long_run(make_app)
    started = time.perf_counter()
    stopper = threading.Thread(target=app.stop)
    stopper.start()
    stopper.join(10)
    latency = time.perf_counter() - started
    assert latency < 2.0  # one iteration plus the final refresh; typically milliseconds
    assert_consistent_after_stop(app)


def test_stop_button_and_stop_from_a_callback(make_app):
    app = long_run(make_app)
    app.stop_button.click()  # what the browser does: the handler only sets the flag
    app.wait(timeout=10)
    assert_consistent_after_stop(app)
    # From inside the run: stop once 50 iterations are done.
    app.progress.observe(lambda change: app.stop(wait=False) if change["new"] >= 50 else None,
                         names="value")
    app.min_redraw_s = 0.0
    app.start()
    app.wait(timeout=30)
    assert_consistent_after_stop(app)


def test_controls_are_locked_during_a_run(make_app):
    app = long_run(make_app)
    assert app.is_running
    assert all(control.disabled for control in app.settings_controls)
    assert all(button.disabled for button in app.preset_buttons)
    assert app.start_button.disabled and not app.stop_button.disabled
    app.batch_size.value = 7  # from code: undone at once
    app.dataset_size.value = 500
    app.drop_last.value = True
    assert (app.batch_size.value, app.dataset_size.value, app.drop_last.value) == (1, 1347, False)
    assert "locked" in app.status.value
    app.preset_buttons[1].click()
    assert app.batch_size.value == 1
    with pytest.raises(RuntimeError, match="already"):
        app.start()
    app.start_button.click()  # ignored
    app.stop()
    assert app.history.plan.batch_size == 1 and app.run_settings.n_samples == 1347
    app.batch_size.value = 7  # unlocked again
    assert app.settings.batch_size == 7


def test_reset_clears_and_stops(make_app):
    app = make_app(n_samples=200, batch_size=50, epochs=2)
    app.run()
    app.reset_button.click()
    assert app.history is None and len(app.view.iteration_line.get_ydata()) == 0
    assert stat(app, "total iterations") == "0 / 8" and app.progress.value == 0
    assert "Ready" in app.status.value
    app = long_run(make_app)
    app.reset()
    assert not app.is_running and app.history is None
    assert len(app.view.iteration_line.get_ydata()) == 0
    assert not app.batch_size.disabled and app.stop_button.disabled


def test_changing_a_setting_after_a_run_shows_the_new_plan(make_app):
    app = make_app(n_samples=200, batch_size=50, epochs=2)
    app.run()
    app.batch_size.value = 40
    assert stat(app, "total iterations") == "0 / 10"
    assert len(app.view.iteration_line.get_ydata()) == 0
    assert app.history is not None  # the finished run is still available from code


def test_a_failing_run_is_reported_and_unlocks(make_app, monkeypatch):
    import batchlab.apps.simulator as simulator

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(simulator, "train", broken)
    app = make_app(n_samples=200, batch_size=50, epochs=2)
    app.start()
    app.wait(timeout=10)
    assert isinstance(app.error, RuntimeError) and "boom" in app.status.value
    assert not app.is_running and not app.batch_size.disabled
    with pytest.raises(RuntimeError, match="boom"):
        app.run(blocking=True)


# --------------------------------------------------------------------------- views
def test_without_throttling_every_iteration_refreshes_the_views(make_app):
    """Intervals of 0 and a clock that stands still (no refresh seems to cost anything): the read-outs
    and the figure follow every iteration and epoch."""
    app = make_app(n_samples=200, batch_size=50, epochs=2, min_redraw_s=0.0, figure_every_s=0.0)
    app.clock = lambda: 0.0
    progress = []
    app.progress.observe(lambda change: progress.append(change["new"]), names="value")
    before = app.draw_requests
    history = app.run()
    assert app.timing["refreshes"] == history.iterations + history.epochs_completed == 8 + 2
    assert progress == list(range(1, 9))  # one read-out refresh per iteration, the final one equal
    # the views cleared at Start, a figure refresh per iteration and epoch, the final one
    assert app.draw_requests - before == 1 + 10 + 1


def test_an_expensive_refresh_spaces_the_next_ones_out(make_app):
    """A fake clock: every figure refresh costs 1 s, so with a 5 % share the next waits 20 s."""
    app = make_app(n_samples=200, batch_size=10, epochs=2, min_redraw_s=0.0, figure_every_s=0.0)
    ticks = iter(range(100_000))
    app.clock = lambda: float(next(ticks))  # each reading is one second later than the previous
    before = app.draw_requests
    app.run()
    assert 1 < app.draw_requests - before < 10  # 42 iterations and epochs, far fewer figure refreshes


def test_with_long_intervals_only_the_cleared_and_the_final_state_are_drawn(make_app):
    app = make_app(n_samples=200, batch_size=50, epochs=2, min_redraw_s=60.0, figure_every_s=60.0)
    app.clock = lambda: 0.0
    before = app.draw_requests
    history = app.run()
    assert app.timing["refreshes"] == 0 and app.draw_requests - before == 1 + 1  # at Start, at the end
    np.testing.assert_array_equal(app.view.iteration_line.get_ydata(), history.iteration_losses)


def test_batch_view_shows_the_current_batch(make_app):
    app = make_app(n_samples=200, batch_size=64, epochs=1, drop_last=True)
    app.run()
    view = app.view
    grid = view.grid_image.get_array().ravel()
    order = view.order_image.get_array().ravel()
    # After the last batch of the epoch: 3 batches of 64, the last one current, 8 dropped.
    assert (grid == CURRENT).sum() == 64 and (grid == DONE).sum() == 128
    assert (grid == DROPPED).sum() == 8 and (grid == TO_COME).sum() == 0
    assert order.tolist() == [DONE] * 128 + [CURRENT] * 64 + [DROPPED] * 8
    assert (grid == EMPTY).sum() == grid.size - 200
    assert "batch 3 of 3 (64 samples)" in view.grid_title.get_text()


def assert_live_view_follows(app):
    """The live view's marks hold the figure's lines, its status text and the loss axis' limits."""
    view = live_figure(app.fig)
    for line in (app.view.iteration_line, app.view.train_line, app.view.val_line, app.view.chance_line):
        mark = view.marks_of(line)[0]
        np.testing.assert_array_equal(mark.x, np.asarray(line.get_xdata(), dtype=float))
        np.testing.assert_array_equal(mark.y, np.asarray(line.get_ydata(), dtype=float))
    x_scale, y_scale = view.scales_of(app.view.loss_ax)
    assert type(y_scale).__name__ == "LogScale"
    assert (x_scale.min, x_scale.max) == app.view.loss_ax.get_xlim()
    assert (y_scale.min, y_scale.max) == app.view.loss_ax.get_ylim()
    boundaries = view.marks_of(app.view.boundaries)[0]
    np.testing.assert_array_equal(boundaries.x[::3], [s[0][0] for s in app.view.boundaries.get_segments()])
    assert app.view.status.get_text() and app.view.status.get_text() in view.header.value


def test_figure_updates_in_place_and_its_live_view_follows(make_app):
    app = make_app(n_samples=150, batch_size=30, epochs=2)
    fig = app.fig
    artists = (fig.axes, app.view.iteration_line, app.view.grid_image, app.view.val_line)
    counts = [len(ax.lines) + len(ax.images) + len(ax.collections) for ax in fig.axes]
    marks = live_figure(fig).marks_of(app.view.iteration_line)
    app.run()
    assert_live_view_follows(app)
    assert len(live_figure(fig).marks_of(app.view.iteration_line)[0].y) == 10  # 5 per epoch, 2 epochs
    app.batch_size.value = 10
    assert len(live_figure(fig).marks_of(app.view.iteration_line)[0].y) == 0  # cleared for the new plan
    app.run()
    assert (fig.axes, app.view.iteration_line, app.view.grid_image, app.view.val_line) == artists
    assert counts == [len(ax.lines) + len(ax.images) + len(ax.collections) for ax in fig.axes]
    assert live_figure(fig).marks_of(app.view.iteration_line) == marks  # the same marks, new data
    assert_live_view_follows(app)
    assert app.timing["final_refresh_s"] > 0


def test_static_copy_is_a_wide_png_and_the_numbers(make_app):
    import base64

    app = make_app(n_samples=200, batch_size=50, epochs=2)
    app.run()
    bundle = app._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.jupyter.widget-view+json", "image/png", "text/html",
                           "text/plain"}
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == app.widget.model_id
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") >= 1000  # width
    assert "VBox" not in bundle["text/plain"]
    page = bundle["text/html"]
    assert "Finished: 8 iterations" in page and "8 of 8" in page and "Runs so far" in page
    assert " ms" not in page and "µs" not in page  # no timings: equal for equal seeded runs
    assert live_figure(app.fig).widget.layout.max_width == "640px"  # the live view: 8 in at 80 dpi


def test_a_nan_set_from_code_is_refused_and_later_changes_work(make_app):
    app = make_app()
    with pytest.raises(ValueError, match="learning rate must be a finite number, got nan"):
        app.learning_rate.value = float("nan")
    assert app.learning_rate.value == pytest.approx(0.1)
    app.learning_rate.value = float("inf")  # clamped by the slider to its maximum
    assert app.learning_rate.value == pytest.approx(10.0)
    app.learning_rate.value = 0.3
    assert app.settings.lr == pytest.approx(0.3) and "lr = 0.3" in app.view.status.get_text()
    app.dataset_size.value, app.batch_size.value, app.epochs.value = 200, 50, 1
    assert app.run().iterations == 4  # Start still trains


def test_close_retires_the_app_and_releases_widgets_and_figure(digits):
    import ipywidgets
    import matplotlib.pyplot as plt

    baseline, figures = len(ipywidgets.Widget.widgets), set(plt.get_fignums())
    for _ in range(3):
        app = TrainingSimulatorApp(n_samples=200, batch_size=50, epochs=1, data=digits, device="cpu")
        app.run()
        app.close()
        assert len(ipywidgets.Widget.widgets) == baseline and set(plt.get_fignums()) == figures
    with pytest.raises(RuntimeError, match="closed"):
        app.run()
    with pytest.raises(RuntimeError, match="closed"):
        app.start()
    app.close()  # twice: nothing happens
    assert "closed" in app._repr_mimebundle_()["text/plain"]


def test_closing_during_a_run_stops_it(digits):
    app = TrainingSimulatorApp(n_samples=1347, batch_size=1, epochs=100, data=digits, device="cpu")
    app.start()
    wait_until(lambda: app.progress.value > 20)
    app.close()
    assert not app.is_running and not any(t.name == "TrainingSimulatorApp" for t in threading.enumerate())


def test_creating_the_app_again_on_the_same_line_replaces_the_old_one(digits):
    """What re-running a notebook cell does: the old app's run stops, its widgets and figure close."""
    import matplotlib.pyplot as plt

    figures = set(plt.get_fignums())
    apps = []
    for _ in range(3):
        apps.append(TrainingSimulatorApp(n_samples=1347, batch_size=1, epochs=100, data=digits,
                                         device="cpu"))
        apps[-1].start()
        wait_until(lambda: apps[-1].progress.value > 0)
    assert [a.closed for a in apps] == [True, True, False]
    assert [a.is_running for a in apps] == [False, False, True]
    assert [has_live_figure(a.fig) for a in apps] == [False, False, True]  # the old views are closed
    assert set(plt.get_fignums()) == figures  # plain figures: pyplot holds none
    apps[-1].close()
    assert not has_live_figure(apps[-1].fig)


def test_a_diverged_run_is_shown_in_words(make_app, monkeypatch):
    """Never "Finished … as planned" in green, never "lowest val. loss nan"."""
    import batchlab.apps.simulator as simulator

    real_train = simulator.train

    def diverging(*args, **kwargs):
        history = real_train(*args, **kwargs)
        history.val_loss[-1] = float("nan")
        history.diverged, history.divergence = True, "the loss became NaN in epoch 2"
        return history

    monkeypatch.setattr(simulator, "train", diverging)
    app = make_app(n_samples=200, batch_size=50, epochs=2)
    history = app.run()
    assert history.status == "diverged"
    assert "Diverged: the loss became NaN in epoch 2" in app.status.value
    assert "Finished" not in app.status.value and "#1a7f37" not in app.status.value
    assert "<td>diverged</td>" in app.runs.value and "nan" not in app.runs.value.lower()


def test_a_run_stuck_at_chance_says_it_is_not_learning(make_app):
    """The issue's run: N = 1,347, B = 1, E = 1 at the slider's largest rate (lr = 10) ends near 9.6 nats
    at chance accuracy, below the divergence rule. Not a green "Finished … as planned": "Not learning",
    in red, in the status line, the figure's title and the runs table."""
    app = make_app(n_samples=1347, batch_size=1, epochs=1, learning_rate=10.0)
    assert app.learning_rate.value == 10 ** app.learning_rate.max == 10.0  # the slider's maximum
    history = app.run()
    assert not history.diverged and history.status == "not learning"
    assert "Not learning: 1,347 iterations ran as planned, but after 1 epoch the training loss is" in (
        app.status.value)
    assert "Finished" not in app.status.value and "#1a7f37" not in app.status.value
    assert "#b3261e" in app.status.value
    assert app.view.status.get_text().startswith("Not learning: N = 1,347, B = 1")
    assert "<td>not learning</td>" in app.runs.value


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_samples": 99}, ValueError, "n_samples"),
        ({"n_samples": 1348}, ValueError, "n_samples"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"n_samples": 200, "batch_size": 201}, ValueError, "batch_size"),
        ({"batch_size": 3.0}, TypeError, "batch_size"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": 20.0}, ValueError, "learning_rate"),
        ({"epochs": 101}, ValueError, "epochs"),
        ({"drop_last": "no"}, TypeError, "drop_last"),
        ({"seed": -1}, ValueError, "seed"),
        ({"hidden": (0,)}, ValueError, "hidden"),
        ({"figure_every_s": -1.0}, ValueError, "figure_every_s"),
        ({"min_redraw_s": -1.0}, ValueError, "min_redraw_s"),
        ({"data": "digits"}, TypeError, "data"),
    ],
)
def test_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        TrainingSimulatorApp(**kwargs)


# --------------------------------------------------------------------------- pure helpers
def test_sample_states():
    order = np.array([4, 2, 0, 3, 1, 6, 5])
    by_index, by_position = sample_states(order, 2, 3)
    assert by_position.tolist() == [DONE] * 3 + [CURRENT] * 3 + [TO_COME]
    assert by_index[[4, 2, 0]].tolist() == [DONE] * 3 and by_index[[3, 1, 6]].tolist() == [CURRENT] * 3
    _, last = sample_states(order, 3, 3)  # the short last batch (1 sample) is current
    assert last.tolist() == [DONE] * 6 + [CURRENT]
    _, dropped = sample_states(order, 2, 3, drop_last=True)
    assert dropped.tolist() == [DONE] * 3 + [CURRENT] * 3 + [DROPPED]
    _, start = sample_states(order, 0, 3)
    assert start.tolist() == [TO_COME] * 7
    with pytest.raises(ValueError, match="batches_done"):
        sample_states(order, 3, 3, drop_last=True)
    with pytest.raises(ValueError, match="permutation"):
        sample_states([0, 0, 1], 1, 1)
    with pytest.raises(TypeError, match="order"):
        sample_states([0.0, 1.0], 1, 1)


@given(n=st.integers(1, 300), data=st.data(), drop_last=st.booleans())
def test_sample_states_partition_every_epoch(n, data, drop_last):
    b = data.draw(st.integers(1, n))
    per_epoch = arithmetic.iterations_per_epoch(n, b, drop_last)
    k = data.draw(st.integers(1, per_epoch))
    order = np.random.default_rng(n).permutation(n)
    by_index, by_position = sample_states(order, k, b, drop_last)
    assert (by_index[order] == by_position).all()
    assert (by_position == CURRENT).sum() == min(b, n - (k - 1) * b)
    assert (by_position == DONE).sum() == (k - 1) * b
    assert (by_position == DROPPED).sum() == arithmetic.samples_dropped(n, b, drop_last)


def test_grid_shape():
    assert grid_shape(1, 5.0) == (1, 1)
    rows, columns = grid_shape(1347, 8.0)
    assert rows * columns >= 1347 > (rows - 1) * columns
    assert 6 < columns / rows < 10
    with pytest.raises(ValueError, match="aspect"):
        grid_shape(10, 0.0)
    with pytest.raises(ValueError, match="n_cells"):
        grid_shape(0, 1.0)


def test_epoch_positions():
    assert epoch_boundaries([0, 43, 86]).tolist() == [43.5, 86.5]
    assert epoch_boundaries([0]).tolist() == []
    assert epoch_end_positions(43, 2).tolist() == [43.5, 86.5]
    with pytest.raises(ValueError, match="iterations_per_epoch"):
        epoch_end_positions(0, 2)


def test_envelope_keeps_every_spike():
    values = np.random.default_rng(0).random(10_000)
    values[1234] = 50.0
    values[8000] = 1e-4
    x, y = envelope(values, max_points=1000)
    assert len(x) == len(y) == 1000
    assert y.max() == 50.0 and y.min() == 1e-4
    assert x.min() >= 1 and x.max() <= 10_000 and (np.diff(x) >= 0).all()
    short_x, short_y = envelope(values[:50], max_points=1000)
    assert short_y.tolist() == values[:50].tolist() and short_x.tolist() == list(range(1, 51))
    with_nan = values.copy()
    with_nan[5000] = np.nan
    assert np.isnan(envelope(with_nan, max_points=1000)[1]).sum() == 2


def test_state_colours_match_notebook_01():
    from batchlab.plots.batches import COLOURS

    assert to_rgba(STATE_COLOURS[CURRENT]) == to_rgba(COLOURS["current"])
    assert to_rgba(STATE_COLOURS[DROPPED]) == to_rgba(COLOURS["dropped"])


@pytest.mark.parametrize(("seconds", "text"), [(0.0, "0 µs"), (0.000412, "412 µs"), (0.0123, "12.3 ms"),
                                                (0.9996, "999.6 ms"), (4.567, "4.57 s"),
                                                (1234.5, "1234.50 s")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
    assert "e" not in format_seconds(seconds)  # never an exponent (the notebook sanitizer needs it)


def test_view_survives_nan_and_inf():
    """A diverging run's losses (NaN, inf, huge) leave gaps and a capped axis, never an error."""
    from batchlab.plots.simulator import Y_CAP, SimulatorFigure

    view = SimulatorFigure()
    view.set_plan(200, 50, 3)
    live = live_figure(view.fig)
    view.set_curves([2.3, 5.0, 1e30, float("inf"), float("nan")], [0, 4], [3.0], [float("nan")])
    view.fig.savefig(io.BytesIO(), format="png")  # the static copy draws
    live.sync()  # and the live view takes the same values (NaN and inf are gaps in the browser)
    low, high = view.loss_ax.get_ylim()
    assert 0 < low < 2.3 and high <= Y_CAP
    assert live.scales_of(view.loss_ax)[1].max == high
    np.testing.assert_array_equal(live.marks_of(view.iteration_line)[0].y, view.iteration_line.get_ydata())
    view.set_curves([float("nan")] * 4, [0], [], [])  # nothing finite at all
    view.fig.savefig(io.BytesIO(), format="png")
    live.sync()
    assert view.loss_ax.get_ylim() == pytest.approx((0.1, 4.0))


def test_order_strip_marks_the_batches_and_what_drop_last_discards():
    """Separators between the batches of the order strip (and before the dropped tail), the titles."""
    import matplotlib.pyplot as plt

    from batchlab.plots.simulator import SimulatorFigure

    view = SimulatorFigure()
    view.set_plan(200, 64, 1, drop_last=True)
    assert [segment[0][0] for segment in view.batch_ticks.get_segments()] == [63.5, 127.5, 191.5]
    assert view.order_title.get_text().endswith("cut into 3 batches of 64; drop_last discards the last 8")
    view.set_plan(200, 64, 1)  # four batches, the last one of 8 samples
    assert [segment[0][0] for segment in view.batch_ticks.get_segments()] == [63.5, 127.5, 191.5]
    assert view.order_title.get_text() == "An epoch's order, cut into 4 batches of 64"
    view.set_batch(np.random.default_rng(0).permutation(200), 4, epoch=2)
    assert view.grid_title.get_text().startswith("Epoch 2, batch 4 of 4 (8 samples)")
    view.set_batch(np.arange(200), 0, epoch=1)
    assert view.grid_title.get_text().startswith("Epoch 1, no batch yet of 4")
    view.set_plan(200, 1, 1)  # separators closer than 3 pixels are left out
    assert len(view.batch_ticks.get_segments()) == 0
    plt.close(view.fig)


def test_start_shows_the_train_call_it_runs_and_that_call_gives_the_same_run(make_app, digits):
    import html as html_module
    import re

    app = make_app(hidden=(16,), seed=3)
    configure(app, 200, 16, 0.3, 2)
    history = app.run(blocking=True)
    code = html_module.unescape(re.search(r"<code>(.*)</code>", app.call.value)[1])
    assert code.startswith("train(make_mlp(hidden=(16,), seed=3), data.take(200), batch_size=16, epochs=2")
    again = eval(code, {"train": train, "make_mlp": make_mlp, "data": digits})  # the learner's retyping
    assert again.val_loss == history.val_loss and again.steps == history.steps
