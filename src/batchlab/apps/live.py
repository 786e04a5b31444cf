"""What every widget app shares: one live-update idea, a background run, a clean close, a static copy.

**The live-update idea** (:mod:`batchlab.plots.live`): an app's figure is a plain matplotlib Figure, the
one description of what it shows. A view changes its artists in place (``line.set_data(...)``) and
calls :func:`batchlab.plots.live.request_redraw`, which syncs the figure's live view
(:func:`canvas_widget`, a bqplot view made by :mod:`batchlab.plots.mirror`): only the changed arrays
go to the browser, which draws them as SVG. During training it does so at most once every
``interval_s`` seconds of wall time (:class:`Throttle`), so that the view stays a small share of the
run; a sync from the training thread (or from a busy main thread) is a widget message, sent at once.

**The background run** (:class:`App` with ``trains=True``): *Start* runs the training in a
``threading.Thread``; *Stop* sets a ``threading.Event`` that the training callback
(:class:`LiveCallback`) reads after every iteration and turns into ``state.request_stop()``, so the run
ends after the current iteration. While it runs, the settings are locked: disabled in the page, and a
value set from code is put back with a message. Everything reaches the notebook through public widget
APIs: widget values and the live view's bqplot marks.

**An app's life.** Every app is one ``ipywidgets`` box (``app.widget``) and usually one figure
(``app.fig``). :meth:`App.close` retires it: the run is stopped, every widget (layouts and styles too)
and the figure are closed, and later *Start* / ``run()`` refuse with a message. Re-running the notebook
cell that created an app closes the app that cell created before (apps are registered by the line of
code that made them), so a cell never leaves an orphan run or figure behind.

**Readers without a kernel.** ``_repr_mimebundle_`` returns the widget view plus a static copy: the
figure as a PNG at least 1,000 pixels wide and HTML of the numbers (:meth:`App.static_html`).
JupyterLab shows the widget; nbconvert, GitHub and nbviewer show the copy.
"""

from __future__ import annotations

import base64
import html
import io
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
from traitlets import TraitError, validate

from batchlab.history import Callback, History, TrainingState
from batchlab.plots.live import Throttle, forget, made_here, made_of_kind
from batchlab.plots.mirror import has_live_figure, live_figure
from batchlab.validation import require_bool, require_float, require_instance

__all__ = ["App", "InvalidSetting", "LiveCallback", "NamedSelectionSlider", "canvas_widget", "close_widgets",
           "figure_alt", "figure_png", "labelled", "status_html"]

STATIC_WIDTH_PX = 1000  # the static copy of a figure is at least this wide (a projected full-width figure)
COLOURS = {"ready": "#52606d", "running": "#1f4e9a", "stopped": "#9a6700", "finished": "#1a7f37",
           "diverged": "#b3261e", "not learning": "#b3261e", "failed": "#b3261e", "notice": "#9a6700"}
LOCKED = "Settings are locked while training: press Stop first."


class LiveCallback(Callback):
    """The training callback of a live app: Stop within one iteration, throttled refreshes.

    After every iteration: if ``stop_event`` is set, ``state.request_stop()`` (the run ends after this
    iteration); otherwise, when ``throttle`` allows, ``refresh(state, False)``; the same after every
    epoch (its validation numbers are new). After the last iteration ``refresh(state, True)`` always
    runs. ``started`` is the wall-clock time (``time.perf_counter()``) the run started. What the
    refreshes cost the run is measured by wrapping this callback in
    :class:`batchlab.history.TimedCallback`.
    """

    def __init__(self, stop_event: threading.Event, refresh: Callable[[TrainingState, bool], None],
                 throttle: Throttle) -> None:
        self.stop_event = require_instance("stop_event", stop_event, threading.Event, "threading.Event")
        self.refresh = refresh
        self.throttle = require_instance("throttle", throttle, Throttle)
        self.started = time.perf_counter()

    def on_train_start(self, state: TrainingState) -> None:
        self.started = time.perf_counter()
        self.throttle.restart()

    def on_iteration_end(self, state: TrainingState) -> None:
        if self.stop_event.is_set():
            state.request_stop()
        elif self.throttle.ready():
            self.refresh(state, False)

    def on_epoch_end(self, state: TrainingState) -> None:
        self.on_iteration_end(state)

    def on_train_end(self, state: TrainingState) -> None:
        self.refresh(state, True)


def status_html(state: str, text: str) -> str:
    """A bold status line coloured by ``state`` (ready, running, stopped, finished, diverged, not
    learning, failed), on a light background of its own: the colours keep their contrast in JupyterLab's
    dark theme too."""
    colour = COLOURS.get(state, COLOURS["ready"])
    return (f"<span style='color:{colour};background:#ffffff;padding:0 4px;border-radius:3px'>"
            f"<b>{html.escape(text)}</b></span>")


def call_html(function: str, *args: str, **kwargs: Any) -> str:
    """The engine call a Start button runs, as code a learner can read and type again: ``args`` are
    source text (``"data"``), keyword values are shown with ``repr``. For example
    ``call_html("train", "model", "data", batch_size=32)`` shows ``train(model, data, batch_size=32)``."""
    parts = [*args, *(f"{name}={value!r}" for name, value in kwargs.items())]
    code = f"{function}({', '.join(parts)})"
    return f"<b>Runs</b> <code>{html.escape(code)}</code>"


def figure_png(fig: Any, min_width_px: int = STATIC_WIDTH_PX) -> str:
    """The figure as a base64 PNG at least ``min_width_px`` pixels wide (for a static copy)."""
    dpi = max(fig.dpi, min_width_px / fig.get_figwidth())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=math.ceil(dpi))
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_alt(fig: Any, name: str) -> str:
    """Alt text for the static copy of an app's figure: what it shows, read from the figure itself (its
    title, then each axes' title, else its y-label against its x-label), e.g. "TrainingSimulatorApp
    figure: cross-entropy loss against iteration". ``fig`` is a matplotlib Figure, ``name`` the app's
    name (a non-empty str). Falls back to "``name`` figure" when the figure names nothing.

    Taught in: every notebook with an app (its static copy, on the site and on GitHub)."""
    from matplotlib.figure import Figure

    require_instance("fig", fig, Figure, "matplotlib Figure")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    parts = [fig.get_suptitle().strip()] if fig.get_suptitle().strip() else []
    for ax in fig.get_axes():
        title = ax.get_title().strip()
        ylabel = ax.get_ylabel().strip()
        xlabel = ax.get_xlabel().strip()
        if title:
            parts.append(title)
        elif ylabel and xlabel:
            parts.append(f"{ylabel} against {xlabel}")
        elif ylabel or xlabel:
            parts.append(ylabel or xlabel)
    shown = "; ".join(dict.fromkeys(parts))  # in order, without repeats
    return f"{name} figure: {shown}" if shown else f"{name} figure"


def canvas_widget(fig: Any) -> widgets.Widget:
    """The live view of ``fig`` (a matplotlib Figure) for the page: the widget of
    :func:`batchlab.plots.mirror.live_figure`, synced now and by every later
    :func:`batchlab.plots.live.request_redraw`.

    Taught in: every notebook with an app (02, 04, 06, 07)."""
    from matplotlib.figure import Figure

    require_instance("fig", fig, Figure, "matplotlib Figure")
    return live_figure(fig).widget


def labelled(kind: type, description: str, label_px: int = 150, **options: Any) -> widgets.Widget:
    """One labelled control row: ``kind(description=..., **options)``, 420 px wide, its label
    ``label_px`` pixels wide (so the controls of an app line up)."""
    return kind(description=description, style={"description_width": f"{label_px}px"},
                layout=widgets.Layout(width="420px"), **options)


class InvalidSetting(TraitError, ValueError):
    """A value set from code that a control cannot take (a ``ValueError``, and the ``TraitError`` that
    ipywidgets' own checks raise)."""


class NamedSelectionSlider(widgets.SelectionSlider):
    """A ``SelectionSlider`` that names itself when code sets a value it does not offer (NaN, 33 where
    only 32 and 64 are offered): ``InvalidSetting: batch size B must be one of 1, 2, … 1347, got nan``,
    instead of ipywidgets' bare "Invalid selection: value not found". The value is left unchanged."""

    @validate("value")
    def _validate_value(self, proposal: Any) -> Any:
        try:
            return super()._validate_value(proposal)
        except TraitError:
            values = [str(v) for v in self._options_values]
            offered = ", ".join(values if len(values) <= 8 else [*values[:4], "…", *values[-2:]])
            raise InvalidSetting(f"{self.description or 'the slider'} must be one of {offered}, got "
                                 f"{proposal.value!r}: kept {self.value!r}") from None


def close_widgets(widget: widgets.Widget) -> None:
    """Close ``widget``, its children and their layout and style widgets."""
    for child in getattr(widget, "children", ()):
        close_widgets(child)
    for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
        if isinstance(part, widgets.Widget):
            part.close()
    widget.close()


class App:
    """Base of the widget apps (see the module docstring): registration, close, NaN guard, static copy.

    A subclass builds its widgets and figure, then calls :meth:`_finish_setup` with its top box. Apps
    that train (``trains=True``) also get :meth:`_launch`, ``stop``, ``wait``, ``is_running``,
    ``error`` and the settings lock.
    """

    fig: Any = None
    history: History | None = None
    figure_description: str | None = None  # the static copy's alt text, where the figure names nothing
    _running = False

    def _finish_setup(self, view: widgets.Box, *, settings: Sequence[widgets.Widget] = (),
                      trains: bool = False, stop_button: widgets.Button | None = None,
                      notice: widgets.HTML | None = None) -> None:
        self.widget = view
        self.closed = False
        self.settings_controls = list(settings)
        self._stop_event = threading.Event()
        self._thread = None
        self._error = None
        self._run_id = 0
        self._quiet = False
        self._stop_button = stop_button
        self._notice = notice
        for control in self.settings_controls:
            control.observe(self._on_value, names="value")
        self._key, previous = made_here(type(self), self)
        if previous is not None:
            previous.close()  # the same cell run again: retire the app it made before
        if trains:
            for other in made_of_kind(type(self)):  # at most one run per kind of app
                if other is not self and other.is_running:
                    other.stop(wait=True)

    # ----------------------------------------------------------------- value changes
    def _on_value(self, change: dict[str, Any]) -> None:
        """Every settings change comes here: refused when NaN/inf or locked, else :meth:`_changed`."""
        if self._quiet:
            return
        new = change["new"]
        owner = change["owner"]
        if isinstance(new, float) and not math.isfinite(new):
            self._quietly(lambda: setattr(owner, "value", change["old"]))  # put the old value back
            raise ValueError(f"{owner.description or 'value'} must be a finite number, got {new!r}: "
                             f"kept {change['old']!r}")
        if self.is_running:
            self._quietly(lambda: setattr(owner, "value", change["old"]))  # put the old value back
            self._say(LOCKED)
            return
        self._changed(change)

    def _quietly(self, adjust: Callable[[], Any]) -> Any:
        """Run ``adjust()`` (setting values, moving ranges and options) without the observers reacting."""
        self._quiet = True
        try:
            return adjust()
        finally:
            self._quiet = False

    def _changed(self, change: dict[str, Any]) -> None:
        """React to a valid settings change (redraw); overridden by the apps."""

    def _say(self, text: str, state: str = "notice") -> None:
        if self._notice is not None:
            self._notice.value = status_html(state, text)

    # ----------------------------------------------------------------- the background run
    @property
    def is_running(self) -> bool:
        """True from Start until the run has ended and its final results are shown (read-only: setting
        it from code cannot unlock a run)."""
        return self._running

    @property
    def error(self) -> Exception | None:
        """What the latest run raised (None when it did not fail)."""
        return self._error

    def _once(self, start: Callable[[], Any]) -> None:
        """The Start button: ``start()``, unless a run is in progress (a double click must not start a
        second run)."""
        if self.is_running:
            self._say("A run is already in progress: press Stop first.")
        else:
            start()

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"this {type(self).__name__} was closed: create a new one to train again")

    def _set_locked(self, locked: bool) -> None:
        for control in self.settings_controls + list(getattr(self, "lockable", ())):
            control.disabled = locked
        if self._stop_button is not None:
            self._stop_button.disabled = not locked

    def _launch(self, work: Callable[[], Any], done: Callable[[Any], None], *, blocking: bool) -> None:
        """Run ``work()`` (the training) then ``done(result)``: in this thread when ``blocking`` (an
        exception is shown, then raised), else in a daemon thread (see :meth:`wait`)."""
        self._check_open()
        if self.is_running:
            raise RuntimeError("a run is already in progress: press Stop (or call stop()) first")
        blocking = require_bool("blocking", blocking)
        self._run_id += 1
        self._running = True
        self._error = None
        run_id = self._run_id
        self._stop_event.clear()
        self._set_locked(True)

        def execute() -> None:
            try:
                result = work()
            except Exception as error:  # shown in the page; the app stays usable
                if run_id == self._run_id:
                    self._error = error
                    self._say(f"Training failed: {type(error).__name__}: {error}", "failed")
            else:
                if run_id == self._run_id:
                    done(result)
            finally:
                if run_id == self._run_id:
                    self._set_locked(False)
                    self._running = False

        if blocking:
            execute()
            if self.error is not None:
                raise self.error
        else:
            self._thread = threading.Thread(target=execute, daemon=True, name=type(self).__name__)
            self._thread.start()

    def stop(self, wait: bool = True, timeout: float = 10.0) -> bool:
        """Ask the run to stop after its current iteration (the Stop button); with ``wait``, block until
        it has ended (at most ``timeout`` seconds). True when no run is in progress any more."""
        wait = require_bool("wait", wait)
        timeout = require_float("timeout", timeout, minimum=0.0)
        self._stop_event.set()
        if wait:
            self.wait(timeout)
        return not self.is_running

    def wait(self, timeout: float | None = None) -> History | None:
        """Block until the background run has ended (or ``timeout`` seconds passed); its History."""
        if timeout is not None:
            timeout = require_float("timeout", timeout, minimum=0.0)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return self.history

    def _forget_run(self) -> None:
        """Stop the run and make sure a thread still finishing can no longer touch the views."""
        if self.is_running:
            self.stop(wait=True)
        self._run_id += 1
        self._running = False
        self._set_locked(False)

    # ----------------------------------------------------------------- close and static copy
    def close(self) -> None:
        """Retire the app: stop its run, close its widgets (layouts and styles too) and its figure.

        A closed app refuses to train again; closing twice does nothing.
        """
        if getattr(self, "closed", True):
            return
        self._forget_run()
        self.closed = True
        forget(self._key, self)
        close_widgets(self.widget)
        if self.fig is not None and has_live_figure(self.fig):
            live_figure(self.fig).close()

    def static_html(self) -> str:
        """HTML of the app's numbers and settings now (deterministic: no timings); overridden."""
        return ""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        name = type(self).__name__
        if self.closed:
            return {"text/plain": f"{name} (closed)"}
        bundle = dict(self.widget._repr_mimebundle_())
        body = self.static_html()
        if self.fig is not None:
            png = figure_png(self.fig)
            bundle["image/png"] = png
            described = f"{name} figure: {self.figure_description}" if self.figure_description else None
            alt = html.escape(described or figure_alt(self.fig, name), quote=True)
            body = (f"<img src='data:image/png;base64,{png}' alt='{alt}' "
                    "style='max-width:100%'>" + body)
        bundle["text/html"] = f"<div class='batchlab-static'>{body}</div>"
        bundle["text/plain"] = f"{name}: an interactive app (run the notebook to use it)"
        return bundle
