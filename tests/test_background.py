"""Tests of the shared background-run mechanics (batchlab.apps.background) and the locked figure."""

from __future__ import annotations

import threading

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pytest

from batchlab.apps.background import (
    LOCKED_NOTICE,
    BackgroundApp,
    BackgroundRun,
    ControlLock,
    StopOnRequest,
    failure_html,
)
from batchlab.plots.locked import LockedFigure, locked_figure

TIMEOUT = 10.0


class Recorder:
    """The app's side: records every handler call with the thread it ran in."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, str]] = []

    def failure(self, error: Exception) -> None:
        self.calls.append(("failure", error, threading.current_thread().name))

    def end(self) -> None:
        self.calls.append(("end", None, threading.current_thread().name))

    def success(self, result: object) -> None:
        self.calls.append(("success", result, threading.current_thread().name))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.calls]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def runner(recorder: Recorder) -> BackgroundRun:
    return BackgroundRun("test-background", on_failure=recorder.failure, on_end=recorder.end)


class FakeState:
    """Stands in for batchlab.training.TrainingState: only request_stop matters here."""

    def __init__(self) -> None:
        self.stop_requested = False

    def request_stop(self) -> None:
        self.stop_requested = True


def test_a_background_run_reports_in_its_thread_and_ends(runner, recorder):
    release = threading.Event()
    seen_running = []

    def work() -> int:
        release.wait(TIMEOUT)
        seen_running.append(runner.running)
        return 42

    run_id = runner.begin()
    assert run_id == 1 and runner.running
    runner.launch(run_id, work, recorder.success, blocking=False)
    assert runner.thread is not None and runner.thread.name == "test-background"
    assert runner.running  # returned at once; the work waits
    with pytest.raises(RuntimeError, match="already in progress"):
        runner.begin()
    release.set()
    runner.wait(TIMEOUT)
    assert not runner.thread.is_alive() and not runner.running
    assert seen_running == [True]
    assert recorder.calls == [("success", 42, "test-background"), ("end", None, "test-background")]
    assert runner.error is None


def test_a_blocking_run_runs_in_the_calling_thread(runner, recorder):
    run_id = runner.begin()
    runner.launch(run_id, lambda: "done", recorder.success, blocking=True)
    here = threading.current_thread().name
    assert recorder.calls == [("success", "done", here), ("end", None, here)]
    assert not runner.running and runner.thread is None
    assert runner.begin() == 2  # ready for the next run


def test_stop_reaches_the_training_callback_and_is_cleared_by_the_next_run(runner, recorder):
    callback = StopOnRequest(runner.stop_event)
    iterations = []

    def work() -> int:  # a training loop: the callback runs after every iteration
        state = FakeState()
        while not state.stop_requested:
            iterations.append(1)
            callback.on_iteration_end(state)
            threading.Event().wait(0.001)
        return len(iterations)

    runner.launch(runner.begin(), work, recorder.success, blocking=False)
    assert runner.stop(wait=True, timeout=TIMEOUT) is True
    assert not runner.running and recorder.kinds() == ["success", "end"]
    assert recorder.calls[0][1] == len(iterations) >= 1
    assert runner.stop_event.is_set()
    runner.begin()
    assert not runner.stop_event.is_set()  # the stop request does not leak into the next run
    state = FakeState()
    assert callback.stop_if_requested(state) is False and not state.stop_requested


def test_stop_without_waiting_returns_at_once(runner, recorder):
    release = threading.Event()
    runner.launch(runner.begin(), lambda: release.wait(TIMEOUT), recorder.success, blocking=False)
    assert runner.stop(wait=False) is False  # still running: the work ignores the event
    release.set()
    runner.wait(TIMEOUT)
    assert not runner.running


def test_a_failing_run_is_reported_and_ends(runner, recorder):
    def broken() -> None:
        raise ValueError("out of memory (simulated)")

    runner.launch(runner.begin(), broken, recorder.success, blocking=False)
    runner.wait(TIMEOUT)
    assert isinstance(runner.error, ValueError) and not runner.running
    assert recorder.kinds() == ["failure", "end"]
    assert recorder.calls[0][1] is runner.error
    # Blocking: the same reports, then the error is raised to the caller.
    with pytest.raises(ValueError, match="simulated"):
        runner.launch(runner.begin(), broken, recorder.success, blocking=True)
    assert recorder.kinds() == ["failure", "end", "failure", "end"] and not runner.running
    runner.begin()
    assert runner.error is None  # a new run forgets the old error


def test_a_superseded_run_can_no_longer_report(runner, recorder):
    release = threading.Event()

    def slow() -> str:
        release.wait(TIMEOUT)
        return "stale"

    old = runner.begin()
    runner.launch(old, slow, recorder.success, blocking=False)
    old_thread = runner.thread
    runner.supersede()  # e.g. the app's Reset
    assert not runner.running and not runner.is_current(old)
    new = runner.begin()  # allowed although the old thread still runs
    assert new != old and runner.is_current(new)
    release.set()
    old_thread.join(TIMEOUT)
    assert recorder.calls == []  # neither success nor end from the stale run
    assert runner.running  # the stale run's end did not end the new one
    runner.launch(new, lambda: "fresh", recorder.success, blocking=True)
    assert recorder.kinds() == ["success", "end"] and recorder.calls[0][1] == "fresh"


def test_a_superseded_failure_is_not_reported(runner, recorder):
    release = threading.Event()

    def broken() -> None:
        release.wait(TIMEOUT)
        raise RuntimeError("late")

    runner.launch(runner.begin(), broken, recorder.success, blocking=False)
    thread = runner.thread
    runner.supersede()
    release.set()
    thread.join(TIMEOUT)
    assert recorder.calls == [] and runner.error is None


def test_bad_arguments(runner, recorder):
    with pytest.raises(TypeError, match="name"):
        BackgroundRun("", on_failure=recorder.failure, on_end=recorder.end)
    with pytest.raises(TypeError, match="callables"):
        BackgroundRun("x", on_failure=None, on_end=recorder.end)
    with pytest.raises(TypeError, match="blocking"):
        runner.launch(runner.begin(), lambda: 1, recorder.success, blocking="yes")
    with pytest.raises(ValueError, match="timeout"):
        runner.stop(wait=True, timeout=-1.0)
    with pytest.raises(TypeError, match="wait"):
        runner.stop(wait=1)
    with pytest.raises(TypeError, match="stop_event"):
        StopOnRequest("not an event")
    with pytest.raises(TypeError, match="exception"):
        failure_html("boom")


def test_failure_html_names_the_error_and_escapes_it():
    text = failure_html(RuntimeError("<b>x</b> & y"))
    assert "Training failed" in text and "RuntimeError" in text
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in text and "<b>x</b>" not in text


def test_control_lock_disables_undoes_and_lets_the_apps_own_changes_pass(runner):
    slider, start, stop, notice = widgets.IntSlider(value=3), widgets.Button(), widgets.Button(), \
        widgets.HTML()
    lock = ControlLock(runner, [slider, start], stop, notice)
    passed = []
    slider.observe(lambda change: None if lock.intercept(change) else passed.append(change["new"]),
                   names="value")
    slider.value = 4  # idle: passes
    assert passed == [4] and notice.value == ""
    runner.begin()
    lock.set_locked(True)
    assert slider.disabled and start.disabled and not stop.disabled
    slider.value = 9  # during a run: undone at once, with the notice
    assert slider.value == 4 and passed == [4] and notice.value == LOCKED_NOTICE
    with lock.quietly():
        slider.value = 5  # the app's own change: ignored by its observer, kept
    assert slider.value == 5 and passed == [4] and not lock.quiet
    lock.set_locked(False)
    assert not slider.disabled and not start.disabled and stop.disabled
    with pytest.raises(TypeError, match="notice"):
        ControlLock(runner, [slider], stop, "notice")
    with pytest.raises(TypeError, match="run"):
        ControlLock("run", [slider], stop, notice)


def test_locked_figure_draw_waits_for_the_lock_and_times_itself():
    fig = locked_figure(figsize=(2.0, 1.5), dpi=40)
    assert isinstance(fig, LockedFigure)
    fig.subplots().plot([0, 1], [0, 1])
    drawn = threading.Event()

    def draw() -> None:
        fig.canvas.draw()
        drawn.set()

    with fig.lock:  # a training thread updating artists
        drawer = threading.Thread(target=draw)
        drawer.start()
        assert not drawn.wait(0.2)  # the draw cannot run while the lock is held
        assert fig.draw_count == 0
    assert drawn.wait(TIMEOUT)
    drawer.join(TIMEOUT)
    assert fig.draw_count == 1 and fig.draw_seconds == fig.last_draw_seconds > 0
    assert fig.draw_cpu_seconds >= fig.last_draw_cpu_seconds >= 0
    plt.close(fig)
    with pytest.raises(ValueError, match="dpi"):
        locked_figure(dpi=5)


class TinyApp(BackgroundApp):
    """The least an app needs for BackgroundApp: a BackgroundRun and a history."""

    def __init__(self) -> None:
        self.history = None
        self._background = BackgroundRun("tiny-app", on_failure=lambda error: None,
                                         on_end=lambda: None)


def test_background_app_gives_the_shared_run_controls():
    app = TinyApp()
    callback = StopOnRequest(app._background.stop_event)
    assert not app.is_running and app.error is None

    def work() -> str:
        state = FakeState()
        while not state.stop_requested:
            callback.on_iteration_end(state)
            threading.Event().wait(0.001)
        return "history"

    run_id = app._background.begin()
    app._background.launch(run_id, work, lambda result: setattr(app, "history", result),
                           blocking=False)
    assert app.is_running
    assert app.stop(wait=True, timeout=TIMEOUT) is True
    assert not app.is_running and app.wait(TIMEOUT) == "history"

    def broken() -> None:
        raise KeyError("missing")

    app._background.launch(app._background.begin(), broken, print, blocking=False)
    app.wait(TIMEOUT)
    assert isinstance(app.error, KeyError) and not app.is_running
