"""Training in a background thread while the page stays responsive: what every live app shares.

An app that trains when a button is pressed must not block the kernel: while it trains, the kernel
has to keep handling widget messages (Stop, other controls, the figure's redraw requests). The pieces:

* :class:`BackgroundRun`: the thread, the stop event, the run id and the error of the latest run.
  :meth:`BackgroundRun.begin` opens a run (a new id); :meth:`BackgroundRun.launch` does its work in a
  daemon thread, or in the calling thread with ``blocking=True`` (tests, scripts, a notebook's stored
  demo), and reports the outcome through the app's handlers. A run whose id is no longer the latest
  (:meth:`BackgroundRun.supersede`, e.g. the app's Reset) can no longer touch the app.
* :class:`BackgroundApp`: the public run-control surface of such an app (``is_running``, ``error``,
  ``stop``, ``wait``), on top of its ``BackgroundRun``.
* :class:`StopOnRequest`: the training callback that turns the stop event into
  ``state.request_stop()`` after every iteration (the run ends cleanly after the current one).
* :class:`ControlLock`: the settings are locked while a run is in progress: disabled in the page,
  and a change made from code is undone at once (with a notice), so the controls always show what is
  being trained.
* :func:`failure_html`: the message an app shows when training raised (the app stays usable).
* :func:`display_into`: send a thread's displays (e.g. ``tqdm``'s progress bars) into an ``Output``.

The figure side of the same story (a figure whose ``draw`` holds a lock, so a training thread can
update artists safely) is :class:`batchlab.plots.locked.LockedFigure`.
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import ipywidgets as widgets

from batchlab.training import Callback, History, TrainingState
from batchlab.validation import require_bool, require_float

__all__ = [
    "LOCKED_NOTICE",
    "BackgroundApp",
    "BackgroundRun",
    "ControlLock",
    "StopOnRequest",
    "display_into",
    "failure_html",
]

T = TypeVar("T")

#: What the apps show when a setting is changed from code while a run is in progress.
LOCKED_NOTICE = ("<span style='color:#9a6700'>Settings are locked while training: "
                 "press Stop first.</span>")


def failure_html(error: BaseException) -> str:
    """The HTML an app shows when training raised ``error`` (type and message, escaped)."""
    if not isinstance(error, BaseException):
        raise TypeError(f"error must be an exception, got {type(error).__name__}")
    return (f"<span style='color:#b3261e'><b>Training failed:</b> "
            f"{html.escape(type(error).__name__)}: {html.escape(str(error))}</span>")


class StopOnRequest(Callback):
    """A training callback that asks the run to stop once ``stop_event`` is set.

    Checked after every iteration (an ``Event.is_set()``: nanoseconds), so a Stop pressed in the page
    ends the run after the current iteration. Subclasses that override ``on_iteration_end`` call
    :meth:`stop_if_requested` first.
    """

    def __init__(self, stop_event: threading.Event) -> None:
        if not isinstance(stop_event, threading.Event):
            raise TypeError(f"stop_event must be a threading.Event, got {type(stop_event).__name__}")
        self.stop_event = stop_event

    def stop_if_requested(self, state: TrainingState) -> bool:
        """``state.request_stop()`` if Stop was pressed; True when it was."""
        if self.stop_event.is_set():
            state.request_stop()
            return True
        return False

    def on_iteration_end(self, state: TrainingState) -> None:
        self.stop_if_requested(state)


class BackgroundRun:
    """One run at a time, in a background thread (or in the calling thread), stoppable and replaceable.

    Parameters
    ----------
    name:
        The thread's name (seen in debuggers and ``threading.enumerate()``).
    on_failure:
        Called with the exception when the work of the latest run raised (show it in the page).
    on_end:
        Called when the latest run has ended, whatever the outcome, before ``running`` turns False
        (unlock the controls).

    Attributes: ``stop_event`` (set by :meth:`request_stop`, cleared by :meth:`begin`), ``run_id``
    (the latest run's id; 0 before the first), ``running``, ``error`` (what the latest run raised, or
    None), ``thread`` (the latest background thread, or None).
    """

    def __init__(self, name: str, *, on_failure: Callable[[Exception], None],
                 on_end: Callable[[], None]) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        if not callable(on_failure) or not callable(on_end):
            raise TypeError("on_failure and on_end must be callables")
        self.name = name
        self.on_failure = on_failure
        self.on_end = on_end
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.running = False
        self.run_id = 0
        self.error: Exception | None = None

    def ensure_idle(self) -> None:
        """Raise RuntimeError if a run is in progress."""
        if self.running:
            raise RuntimeError("a run is already in progress: stop it first")

    def begin(self) -> int:
        """Open a new run (raises RuntimeError while one is in progress); its id."""
        self.ensure_idle()
        self.run_id += 1
        self.running = True
        self.stop_event.clear()
        self.error = None
        return self.run_id

    def is_current(self, run_id: int) -> bool:
        """True while ``run_id`` is the latest run (neither superseded nor followed by another)."""
        return run_id == self.run_id

    def launch(self, run_id: int, work: Callable[[], T], on_success: Callable[[T], None], *,
               blocking: bool) -> None:
        """Do ``work()`` for run ``run_id`` (from :meth:`begin`), then ``on_success(result)``.

        ``blocking``: in this thread, re-raising what ``work`` raised (after ``on_failure``);
        otherwise in a daemon thread, returning at once (see :meth:`wait`).
        """
        blocking = require_bool("blocking", blocking)
        if not blocking:
            self.thread = threading.Thread(target=self._execute, args=(run_id, work, on_success),
                                           daemon=True, name=self.name)
            self.thread.start()
            return
        self._execute(run_id, work, on_success)
        if self.is_current(run_id) and self.error is not None:
            raise self.error

    def _execute(self, run_id: int, work: Callable[[], T], on_success: Callable[[T], None]) -> None:
        try:
            result = work()
        except Exception as error:  # shown in the page; the app stays usable
            if self.is_current(run_id):
                self.error = error
                self.on_failure(error)
        else:
            if self.is_current(run_id):
                on_success(result)
        finally:
            if self.is_current(run_id):
                self.on_end()
                self.running = False

    def request_stop(self) -> None:
        """Ask the run to end after its current iteration (a :class:`StopOnRequest` reads the event)."""
        self.stop_event.set()

    def stop(self, wait: bool = True, timeout: float = 10.0) -> bool:
        """:meth:`request_stop`; with ``wait``, block until the run has ended (at most ``timeout``
        seconds). True when no run is in progress any more."""
        wait = require_bool("wait", wait)
        timeout = require_float("timeout", timeout, minimum=0.0)
        self.request_stop()
        if wait:
            self.wait(timeout)
        return not self.running

    def wait(self, timeout: float | None = None) -> None:
        """Block until the latest background thread has ended (or ``timeout`` seconds passed)."""
        if timeout is not None:
            timeout = require_float("timeout", timeout, minimum=0.0)
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def supersede(self) -> None:
        """Forget the latest run: a thread still running can no longer report, and a new run may begin.

        Stop the run first (:meth:`stop`) so that its thread ends too.
        """
        self.run_id += 1
        self.running = False
        self.error = None


class BackgroundApp:
    """Base of a widget app that trains with a :class:`BackgroundRun` stored in ``self._background``.

    The app sets ``self._background`` and keeps the latest run's History in ``self.history``; this
    class gives it the public run controls that every live app shares.
    """

    _background: BackgroundRun
    history: History | None

    @property
    def is_running(self) -> bool:
        """True from Start (or Train) until the run has ended and its final results are shown."""
        return self._background.running

    @property
    def error(self) -> Exception | None:
        """What the latest run raised (None when it did not fail)."""
        return self._background.error

    def stop(self, wait: bool = True, timeout: float = 10.0) -> bool:
        """Ask the run to stop after its current iteration (the Stop button).

        With ``wait``, block until it has ended (at most ``timeout`` seconds). Returns True when no run
        is in progress any more.
        """
        return self._background.stop(wait, timeout)

    def wait(self, timeout: float | None = None) -> History | None:
        """Block until the background run has ended (or ``timeout`` seconds passed); its History."""
        self._background.wait(timeout)
        return self.history

    def _close_figure(self, fig: Any) -> None:
        """Stop any run (waiting for it), then close ``fig`` (a matplotlib figure)."""
        import matplotlib.pyplot as plt

        if self.is_running:
            self.stop(wait=True)
        plt.close(fig)


class ControlLock:
    """Locks an app's settings while ``run`` is in progress.

    ``lockable`` (settings, Start/Train and preset buttons) are disabled while locked, ``stop_button``
    is enabled only then. :meth:`intercept` is the first line of the app's value observer: it undoes a
    change made while running (the controls keep showing what is being trained) and writes
    :data:`LOCKED_NOTICE` into ``notice``; changes the app makes itself inside :meth:`quietly` are
    ignored too.
    """

    def __init__(self, run: BackgroundRun, lockable: Sequence[widgets.DOMWidget],
                 stop_button: widgets.Button, notice: widgets.HTML) -> None:
        if not isinstance(run, BackgroundRun):
            raise TypeError(f"run must be a BackgroundRun, got {type(run).__name__}")
        if not isinstance(stop_button, widgets.Button):
            raise TypeError(f"stop_button must be an ipywidgets.Button, got {type(stop_button).__name__}")
        if not isinstance(notice, widgets.HTML):
            raise TypeError(f"notice must be an ipywidgets.HTML, got {type(notice).__name__}")
        self.run = run
        self.lockable = list(lockable)
        self.stop_button = stop_button
        self.notice = notice
        self.quiet = False

    @contextlib.contextmanager
    def quietly(self) -> Iterator[None]:
        """Within this block, value changes are the app's own: :meth:`intercept` lets them pass."""
        self.quiet = True
        try:
            yield
        finally:
            self.quiet = False

    def set_locked(self, locked: bool) -> None:
        """Disable the lockable controls and enable Stop (``locked``), or the other way round."""
        locked = require_bool("locked", locked)
        for control in self.lockable:
            control.disabled = locked
        self.stop_button.disabled = not locked

    def intercept(self, change: dict[str, Any]) -> bool:
        """True when the app must ignore this value change (its own, or one undone during a run)."""
        if self.quiet:
            return True
        if not self.run.running:
            return False
        with self.quietly():
            change["owner"].value = change["old"]
        self.notice.value = LOCKED_NOTICE
        return True


@contextlib.contextmanager
def display_into(output: widgets.Output) -> Iterator[None]:
    """Send what this thread displays (e.g. ``tqdm``'s progress bars) into the ``output`` widget.

    ``with output:`` does not work from a background thread once the cell that displayed the app has
    finished: the widget captures messages by the id of a request the page is still tracking. Instead,
    a thread-local hook on the kernel's display publisher takes each ``display_data`` message of this
    thread and appends its content to ``output.outputs`` (a ``clear_output`` empties it); other
    threads' displays are untouched. Outside a kernel (tests, scripts) this does nothing.
    """
    if not isinstance(output, widgets.Output):
        raise TypeError(f"output must be an ipywidgets.Output, got {type(output).__name__}")
    from IPython import get_ipython

    publisher = getattr(get_ipython(), "display_pub", None)
    if publisher is None or not hasattr(publisher, "register_hook"):
        yield
        return

    def hook(msg: dict[str, Any]) -> dict[str, Any] | None:
        kind = msg.get("msg_type", msg.get("header", {}).get("msg_type"))
        if kind == "display_data":
            content = msg["content"]
            output.outputs += ({"output_type": "display_data", "data": content["data"],
                                "metadata": content.get("metadata", {})},)
            return None
        if kind == "clear_output":
            output.outputs = ()
            return None
        return msg

    publisher.register_hook(hook)
    try:
        yield
    finally:
        publisher.unregister_hook(hook)
