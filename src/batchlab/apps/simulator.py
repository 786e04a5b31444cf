"""The training simulator (notebook 06): real training of a small network, driven by sliders.

Unlike a simulator that draws a made-up loss curve, every point here is a measured loss: pressing
*Start* trains ``make_mlp()`` (64-64-10) with plain SGD on the first N digits of the training split
(:func:`batchlab.training.train`), and the views follow the run live:

* the loss chart (every iteration's loss, the per-epoch training and validation losses, the epoch
  boundaries) and the batch-progress view (which samples form the current batch), see
  :class:`batchlab.plots.simulator.SimulatorFigure`;
* stats boxes: epoch, iteration, iterations per epoch and total iterations (formula from
  :mod:`batchlab.arithmetic` next to the count the run actually made), samples seen, training loss,
  validation accuracy, time per iteration;
* the insights panel (:mod:`batchlab.insights`): what the settings mean, and what the run is doing.

**Responsiveness.** *Start* trains in a background thread, so the kernel keeps handling widget messages
while it trains: *Stop* sets a flag that the training callback reads after every iteration (the run
ends cleanly after the current iteration, within milliseconds), and the other widgets keep reacting.
The callback refreshes the views at a throttled rate: the counters at most every ``min_redraw_s``
seconds, the figure less often, so that the time spent updating and drawing stays within
``max_draw_share`` of the training time (a refresh starts only when the time spent on the views so far,
plus its expected cost, fits in that share of the time elapsed).
Drawing from another thread is safe because the figure's ``draw`` and every artist update hold the
same lock (:class:`batchlab.plots.locked.LockedFigure`). ``run()`` trains in the calling thread
instead (the notebook's reproducible demo, and scripts). The thread, Stop and the locking of the
settings are the shared mechanics of :mod:`batchlab.apps.background`.

**Controls during a run are locked**: disabled in the page, and a change made from code while training
is undone at once (with a message), so what the sliders show is always what is being trained. Press
*Stop* (or wait for the end) to change settings. Every *Start* trains a fresh model from the same seed.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np

from batchlab.apps.background import BackgroundApp, BackgroundRun, ControlLock, StopOnRequest, failure_html
from batchlab.data import DigitsSplit, load_digits_split
from batchlab.insights import RunSettings, insights, insights_html
from batchlab.models import make_mlp
from batchlab.plots.simulator import SimulatorFigure
from batchlab.training import History, TrainingState, train
from batchlab.validation import require_bool, require_float, require_int

__all__ = ["MAX_EPOCHS", "MIN_SAMPLES", "TrainingSimulatorApp", "format_seconds"]

MIN_SAMPLES = 100
MAX_EPOCHS = 100
LR_EXPONENTS = (-3.0, 1.0)  # the learning-rate slider spans 10^-3 … 10^1
_STYLE = {"description_width": "120px"}
_HALF = widgets.Layout(width="430px")


def format_seconds(seconds: float) -> str:
    """A duration for people: ``"850 µs"``, ``"12.3 ms"``, ``"4.56 s"`` (never an exponent)."""
    seconds = require_float("seconds", seconds, minimum=0.0)
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


@dataclass(frozen=True)
class _Progress:
    """Where a run stands, as shown by the stats boxes."""

    state: str  # "ready", "running", "stopped", "finished", "failed"
    epoch: int  # 1-based epoch in progress (or the last one run)
    batches_done: int  # batches run in that epoch
    iterations: int
    epochs_completed: int
    samples_seen: int
    train_loss: float | None
    val_accuracy: float | None
    val_loss: float | None
    elapsed_s: float


class _LiveUpdates(StopOnRequest):
    """The training callback: honours Stop after every iteration and refreshes the views, throttled.

    Time budget, in CPU seconds (what the views take away from training, wherever they run): a figure
    refresh (artists, insights and the draw: tens to hundreds of milliseconds) starts only if the time
    spent on the views since the run started (updates made here, plus every draw of the figure), *plus
    its expected cost*, stays within ``max_draw_share`` of the time elapsed; a draw that costs more than
    expected is paid back by waiting longer for the next. The read-outs (stats, progress bar, status: a
    few milliseconds) have a quarter of the budget to themselves, so they refresh every
    ``min_redraw_s`` whatever the draws cost. The final refresh, after the last iteration, is counted
    apart (``final_refresh_s``).
    """

    STATS_PART = 0.25

    def __init__(self, app: TrainingSimulatorApp, run_id: int) -> None:
        super().__init__(app._background.stop_event)
        self.app = app
        self.run_id = run_id
        self.started = time.perf_counter()
        self.next_stats = self.next_figure = self.started
        self.update_seconds = self.update_cpu_seconds = 0.0  # updates made here (draws excluded)
        self.stats_cpu_seconds = 0.0  # the part of it spent on read-out-only refreshes
        self.refreshes = 0  # figure refreshes during training (each one asks for a redraw)
        self.stats_refreshes = 0
        # The figure's (wall, CPU) draw totals when this run first asked for a redraw: draws before
        # that (the empty chart shown at Start, redraws for earlier setting changes) are not the run's.
        self.draws_at_start: tuple[float, float] | None = None
        self.stats_cost = 0.0  # latest CPU costs: the estimates for the next refresh of each kind
        self.figure_cost = 0.0
        self.during: dict[str, float] = {}
        self.final_refresh_s = 0.0

    def on_train_start(self, state: TrainingState) -> None:
        app = self.app
        app._live_state = state
        self.started = time.perf_counter()
        self.figure_cost = app.fig.last_draw_cpu_seconds  # the figure's latest draw: the best guess
        self._schedule(self.started)

    def on_iteration_end(self, state: TrainingState) -> None:
        if self.stop_if_requested(state):
            return
        now = time.perf_counter()
        if now >= self.next_figure:
            self._refresh(state, figure=True, final=False)
        elif now >= self.next_stats:
            self._refresh(state, figure=False, final=False)

    def on_train_end(self, state: TrainingState) -> None:
        self.during = self._totals()
        began = time.perf_counter()
        self._refresh(state, figure=True, final=True)
        self.final_refresh_s = time.perf_counter() - began

    def _draws(self) -> tuple[float, float]:
        """Wall and CPU seconds of the draws since this run's first redraw request."""
        if self.draws_at_start is None:
            return 0.0, 0.0
        fig = self.app.fig
        return fig.draw_seconds - self.draws_at_start[0], fig.draw_cpu_seconds - self.draws_at_start[1]

    def _schedule(self, now: float) -> None:
        budget, gap = self.app.max_draw_share, self.app.min_redraw_s
        spent = self.update_cpu_seconds + self._draws()[1]
        self.next_stats = max(now + gap, self.started + (self.stats_cpu_seconds + self.stats_cost)
                              / (self.STATS_PART * budget))
        self.next_figure = max(now + gap, self.started + (spent + self.figure_cost) / budget)

    def _refresh(self, state: TrainingState, *, figure: bool, final: bool) -> None:
        app, fig = self.app, self.app.fig
        began, cpu_began = time.perf_counter(), time.thread_time()
        drawn_before, drawn_cpu_before = fig.draw_seconds, fig.draw_cpu_seconds
        if figure and self.draws_at_start is None:
            self.draws_at_start = (drawn_before, drawn_cpu_before)
        app._refresh(self.run_id, state, self.elapsed(), figure=figure, final=final)
        # Agg draws at once (inside this refresh), ipympl later in the main thread: leave draws out.
        update = time.perf_counter() - began - (fig.draw_seconds - drawn_before)
        update_cpu = time.thread_time() - cpu_began - (fig.draw_cpu_seconds - drawn_cpu_before)
        self.update_seconds += update
        self.update_cpu_seconds += update_cpu
        if figure:
            self.refreshes += 1
            self.figure_cost = update_cpu + fig.last_draw_cpu_seconds
        else:
            self.stats_refreshes += 1
            self.stats_cost = update_cpu
            self.stats_cpu_seconds += update_cpu
        self._schedule(time.perf_counter())

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def _totals(self) -> dict[str, float]:
        wall = self.elapsed()
        draw, draw_cpu = self._draws()
        return {"training_s": wall, "refreshes": float(self.refreshes),
                "stats_refreshes": float(self.stats_refreshes), "update_s": self.update_seconds,
                "draw_s": draw, "display_share": (self.update_seconds + draw) / wall if wall else 0.0,
                "display_cpu_share": (self.update_cpu_seconds + draw_cpu) / wall if wall else 0.0}

    def timing(self) -> dict[str, float]:
        """Seconds spent on the views while training (and their share), and the final refresh."""
        return {**self.during, "final_refresh_s": self.final_refresh_s, "wall_s": self.elapsed()}


class TrainingSimulatorApp(BackgroundApp):
    """Train a real network live: sliders for N, B, learning rate and E, Start/Stop/Reset, live views.

    Parameters
    ----------
    n_samples, batch_size, learning_rate, epochs, drop_last:
        Initial settings: N (100 to 1,347 training digits), B (1 to N), learning rate (10⁻³ to 10,
        log scale), E (1 to 100) and ``drop_last``.
    seed:
        Seeds the model's initial weights and the batch order: equal settings give equal runs.
    hidden:
        Hidden-layer widths of the MLP.
    device:
        Training device (``None``: cuda, then mps, then cpu).
    min_redraw_s, max_draw_share:
        Throttling of the live views: the read-outs refresh at most every ``min_redraw_s`` seconds,
        the figure less often, so that updating and drawing take at most ``max_draw_share`` of the
        run's time.
    data:
        The train/validation split (default :func:`batchlab.data.load_digits_split`); N takes its first
        training samples.

    Controls (public): ``dataset_size``, ``batch_size``, ``epochs`` (IntSlider), ``learning_rate``
    (FloatLogSlider), ``drop_last`` (Checkbox), ``start_button``, ``stop_button``, ``reset_button``,
    ``preset_buttons`` (B = 1, 32, N). Read-outs: ``progress`` (IntProgress, iterations),
    ``status``, ``stats``, ``insights``, ``runs`` (HTML). Figure: ``fig`` (``view`` is its
    :class:`~batchlab.plots.simulator.SimulatorFigure`). After a run: ``history`` (its
    :class:`~batchlab.training.History`), ``run_settings``, ``timing`` (seconds spent updating and
    drawing the views, and their share of the run).
    """

    def __init__(self, *, n_samples: int = 1347, batch_size: int = 32, learning_rate: float = 0.1,
                 epochs: int = 20, drop_last: bool = False, seed: int = 0,
                 hidden: Sequence[int] = (64,), device: str | None = None,
                 min_redraw_s: float = 0.25, max_draw_share: float = 0.08,
                 data: DigitsSplit | None = None) -> None:
        if data is not None and not isinstance(data, DigitsSplit):
            raise TypeError(f"data must be a DigitsSplit, got {type(data).__name__}")
        self.data = data if data is not None else load_digits_split()
        n_max = self.data.n_train
        n_samples = require_int("n_samples", n_samples, minimum=min(MIN_SAMPLES, n_max), maximum=n_max)
        batch_size = require_int("batch_size", batch_size, minimum=1, maximum=n_samples)
        learning_rate = require_float("learning_rate", learning_rate, minimum=10 ** LR_EXPONENTS[0],
                                      maximum=10 ** LR_EXPONENTS[1])
        epochs = require_int("epochs", epochs, minimum=1, maximum=MAX_EPOCHS)
        drop_last = require_bool("drop_last", drop_last)
        self.seed = require_int("seed", seed, minimum=0)
        self.hidden = tuple(hidden)
        make_mlp(hidden=self.hidden)  # validates the widths now rather than at Start
        self.device = device
        self.min_redraw_s = require_float("min_redraw_s", min_redraw_s, minimum=0.0, maximum=10.0)
        self.max_draw_share = require_float("max_draw_share", max_draw_share, minimum=0.001,
                                            maximum=0.5)

        self.view = SimulatorFigure()
        self.fig = self.view.fig
        self.history: History | None = None
        self.run_settings: RunSettings | None = None
        self.timing: dict[str, float] = {}
        self._background = BackgroundRun("batchlab-simulator", on_failure=self._show_failure,
                                         on_end=lambda: self._lock.set_locked(False))
        self._run_log: list[str] = []
        self._live_state: TrainingState | None = None
        self._build_controls(n_samples, batch_size, learning_rate, epochs, drop_last)
        self._show_plan()

    # ----------------------------------------------------------------- widgets
    def _build_controls(self, n: int, b: int, lr: float, epochs: int, drop_last: bool) -> None:
        n_max = self.data.n_train
        self.dataset_size = widgets.IntSlider(value=n, min=min(MIN_SAMPLES, n_max), max=n_max,
                                              description="dataset size N", style=_STYLE,
                                              layout=_HALF, continuous_update=False)
        self.batch_size = widgets.IntSlider(value=b, min=1, max=n, description="batch size B",
                                            style=_STYLE, layout=_HALF, continuous_update=False)
        self.learning_rate = widgets.FloatLogSlider(value=lr, base=10, min=LR_EXPONENTS[0],
                                                    max=LR_EXPONENTS[1], step=0.05,
                                                    readout_format=".3g", description="learning rate",
                                                    style=_STYLE, layout=_HALF,
                                                    continuous_update=False)
        self.epochs = widgets.IntSlider(value=epochs, min=1, max=MAX_EPOCHS, description="epochs E",
                                        style=_STYLE, layout=_HALF, continuous_update=False)
        self.drop_last = widgets.Checkbox(value=drop_last, description="drop_last (discard the "
                                          "short last batch)", indent=False,
                                          layout=widgets.Layout(width="300px"))
        self.preset_buttons = [
            widgets.Button(description=text, tooltip=tip, layout=widgets.Layout(width="auto"))
            for text, tip in [("B = 1 (SGD)", "stochastic gradient descent"),
                              ("B = 32", "a common mini-batch size"),
                              ("B = N (batch GD)", "batch gradient descent")]
        ]
        for button, size in zip(self.preset_buttons, (1, 32, None), strict=True):
            button.on_click(lambda _b, size=size: self._preset(size))
        self.start_button = widgets.Button(description="Start", icon="play", button_style="success")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger",
                                          disabled=True)
        self.reset_button = widgets.Button(description="Reset", icon="undo")
        self.start_button.on_click(lambda _b: self._on_start())
        self.stop_button.on_click(lambda _b: self.stop(wait=False))
        self.reset_button.on_click(lambda _b: self.reset())
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="iterations",
                                            style={"description_width": "70px"},
                                            layout=widgets.Layout(width="320px"))
        self.status = widgets.HTML()
        self.stats = widgets.HTML()
        self.insights = widgets.HTML()
        self.runs = widgets.HTML()
        self.settings_controls = [self.dataset_size, self.batch_size, self.learning_rate,
                                  self.epochs, self.drop_last]
        self._lock = ControlLock(self._background,
                                 [*self.settings_controls, *self.preset_buttons, self.start_button],
                                 self.stop_button, self.status)
        for control in self.settings_controls:
            control.observe(self._on_setting, names="value")
        canvas = self.fig.canvas
        for attribute in ("header_visible", "toolbar_visible", "footer_visible", "resizable"):
            if hasattr(canvas, attribute):  # ipympl canvas only; Agg has none of these
                setattr(canvas, attribute, False)
        self.controls = widgets.VBox([
            widgets.HBox([self.dataset_size, self.batch_size]),
            widgets.HBox([self.learning_rate, self.epochs]),
            widgets.HBox([self.drop_last, widgets.Label("presets:"), *self.preset_buttons]),
            widgets.HBox([self.start_button, self.stop_button, self.reset_button, self.progress]),
            self.status,
            self.stats,
        ])
        self.panel = widgets.VBox([self.insights, self.runs])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.controls)
        display(self.fig.canvas)
        display(self.panel)

    # ----------------------------------------------------------------- settings
    @property
    def settings(self) -> RunSettings:
        """The settings the controls show now."""
        return RunSettings(self.dataset_size.value, self.batch_size.value,
                           float(self.learning_rate.value), self.epochs.value, self.drop_last.value)

    @property
    def iterations_done(self) -> int:
        """Iterations the current (or latest) run has made so far; 0 before the first run."""
        state = self._live_state
        return state.history.iterations if state is not None else 0

    def _on_setting(self, change: dict[str, Any]) -> None:
        if self._lock.intercept(change):  # the app's own change, or undone: the settings are locked
            return
        if change["owner"] is self.dataset_size:
            self._follow_dataset_size(change["old"], change["new"])
        self._show_plan()

    def _follow_dataset_size(self, old_n: int, new_n: int) -> None:
        """Keep 1 ≤ B ≤ N: B's maximum is N; a full batch (B = N) stays full as N moves."""
        with self._lock.quietly():
            was_full = self.batch_size.value == old_n
            self.batch_size.max = new_n  # ipywidgets clamps the value when it exceeds the maximum
            if was_full:
                self.batch_size.value = new_n

    def _preset(self, size: int | None) -> None:
        if self.is_running:
            return
        self.batch_size.value = self.dataset_size.value if size is None else min(size,
                                                                               self.dataset_size.value)

    def _on_start(self) -> None:
        if not self.is_running:  # a double click must not start a second run
            self.start()

    # ----------------------------------------------------------------- public actions
    def start(self) -> None:
        """Start training in a background thread with the current settings (the Start button)."""
        self._launch(blocking=False)

    def run(self, blocking: bool = True) -> History | None:
        """Train with the current settings: in this thread (``blocking``, returns the History), or
        in the background like the Start button (returns None at once)."""
        blocking = require_bool("blocking", blocking)
        if not blocking:
            self.start()
            return None
        self._launch(blocking=True)
        return self.history

    def reset(self) -> None:
        """Stop any run and clear the views back to the current settings (the Reset button)."""
        if self.is_running:
            self.stop(wait=True)
        self._background.supersede()  # a run that has not finished yet can no longer touch the views
        self._lock.set_locked(False)
        self.history, self.run_settings = None, None
        self._live_state = None
        self._show_plan()

    def close(self) -> None:
        """Stop any run, then close the figure and the widgets."""
        self._close_figure(self.fig)
        for box in (self.controls, self.panel):
            for child in box.children:
                if isinstance(child, widgets.Box):
                    for grandchild in child.children:
                        grandchild.close()
                child.close()
            box.close()

    # ----------------------------------------------------------------- the run
    def _launch(self, *, blocking: bool) -> None:
        """Begin a run with the current settings and train it (see :class:`BackgroundRun`)."""
        settings = self.settings
        run_id = self._background.begin()
        self.history, self.run_settings, self.timing = None, settings, {}
        self._live_state = None
        self._lock.set_locked(True)
        self._show_plan(status="Starting…")
        live = _LiveUpdates(self, run_id)
        self._background.launch(run_id, lambda: self._train(settings, live),
                                lambda history: self._finish(settings, live, history),
                                blocking=blocking)

    def _train(self, settings: RunSettings, live: _LiveUpdates) -> History:
        """The run itself (in the background thread unless blocking)."""
        return train(make_mlp(hidden=self.hidden, seed=self.seed), self.data.take(settings.n_samples),
                     batch_size=settings.batch_size, epochs=settings.epochs,
                     lr=settings.learning_rate, drop_last=settings.drop_last, seed=self.seed,
                     device=self.device, callbacks=[live], progress=False)

    def _finish(self, settings: RunSettings, live: _LiveUpdates, history: History) -> None:
        self.history = history
        self.timing = live.timing()
        self._log_run(settings, history)

    def _show_failure(self, error: Exception) -> None:
        self.status.value = failure_html(error)

    def _refresh(self, run_id: int, state: TrainingState, elapsed: float, *, figure: bool,
                 final: bool) -> None:
        """Update the read-outs (and with ``figure`` the chart, batch view and insights) from the
        training state; called from the training callback."""
        if not self._background.is_current(run_id):
            return  # a stale run (reset meanwhile)
        settings = self.run_settings
        h = state.history
        pending = state.pending_losses()
        batches_done = state.iteration_in_epoch + 1 if h.iterations else 0
        progress = _Progress(
            state=("stopped" if h.stopped or state.stop_requested else "finished") if final
            else "running",
            epoch=state.epoch + 1, batches_done=batches_done, iterations=h.iterations,
            epochs_completed=h.epochs_completed, samples_seen=h.samples_seen,
            train_loss=_running_train_loss(h, pending, settings),
            val_accuracy=h.val_accuracy[-1] if h.val_accuracy else None,
            val_loss=h.val_loss[-1] if h.val_loss else None, elapsed_s=elapsed,
        )
        if figure:
            losses = np.asarray(h.iteration_losses + pending, dtype=float)
            order = state.batches.permutation.cpu().numpy()
            with self.view.lock:
                self.view.set_curves(losses, h.epoch_starts, h.train_loss, h.val_loss)
                self.view.set_batch(order, min(batches_done, settings.iterations_per_epoch),
                                    epoch=state.epoch + 1)
                self.view.set_status(_figure_status(settings, progress))
            self.insights.value = insights_html(insights(settings, h))
        self.progress.value = h.iterations
        self.stats.value = stats_html(settings, progress)
        self.status.value = _status_html(settings, progress)
        if figure:
            self.fig.canvas.draw_idle()

    def _log_run(self, settings: RunSettings, history: History) -> None:
        accuracy = f"{history.val_accuracy[-1]:.1%}" if history.val_accuracy else "–"
        best = history.best_epoch
        best_text = (f"{history.val_loss[best]:.4g} (epoch {best + 1})" if best is not None else "–")
        self._run_log.append(
            f"<tr><td>{len(self._run_log) + 1}</td><td>{settings.n_samples:,}</td>"
            f"<td>{settings.batch_size:,}</td><td>{settings.learning_rate:.3g}</td>"
            f"<td>{settings.epochs}</td><td>{'yes' if settings.drop_last else 'no'}</td>"
            f"<td>{history.iterations:,}{' (stopped)' if history.stopped else ''}</td>"
            f"<td>{accuracy}</td><td>{best_text}</td></tr>")
        header = "".join(f"<th>{name}</th>" for name in (
            "run", "N", "B", "lr", "E", "drop_last", "iterations", "val. accuracy",
            "lowest val. loss"))
        rows = "".join(self._run_log[-8:])
        self.runs.value = (f"<b>Runs so far</b> (latest 8)<table class='batchlab-runs' "
                           f"style='font-size:0.9em'><thead><tr>{header}</tr></thead>"
                           f"<tbody>{rows}</tbody></table>")

    # ----------------------------------------------------------------- idle views
    def _show_plan(self, status: str | None = None) -> None:
        """Views for the current settings before a run: empty chart, formulas, regime insights."""
        settings = self.settings
        self.view.set_plan(settings.n_samples, settings.batch_size, settings.epochs, settings.drop_last,
                           title=f"Ready: N = {settings.n_samples:,}, B = {settings.batch_size:,}, "
                                 f"lr = {settings.learning_rate:.3g}, E = {settings.epochs} "
                                 "(press Start)")
        ready = _Progress("ready", 1, 0, 0, 0, 0, None, None, None, 0.0)
        self.progress.max = max(settings.total_iterations, 1)
        self.progress.value = 0
        self.stats.value = stats_html(settings, ready)
        self.insights.value = insights_html(insights(settings))
        self.status.value = status if status is not None else _status_html(settings, ready)
        self.fig.canvas.draw_idle()


def _running_train_loss(history: History, pending: list[float], settings: RunSettings) -> float | None:
    """Per-sample mean training loss of the epoch in progress (or of the last completed epoch)."""
    if pending:
        sizes = [settings.batch_size] * len(pending)
        if len(pending) == settings.iterations_per_epoch:
            sizes[-1] = settings.plan.last_batch_size
        return float(np.dot(pending, sizes) / sum(sizes))
    return history.train_loss[-1] if history.train_loss else None


def _ceil_rule(settings: RunSettings) -> str:
    n, b = settings.n_samples, settings.batch_size
    if settings.drop_last:
        return f"⌊N / B⌋ = ⌊{n:,} / {b:,}⌋"
    return f"⌈N / B⌉ = ⌈{n:,} / {b:,}⌉"


def stats_html(settings: RunSettings, progress: _Progress) -> str:
    """The stats boxes: planned counts from :mod:`batchlab.arithmetic` beside what the run made."""
    plan = settings.plan
    per_epoch = plan.iterations_per_epoch
    last = plan.last_batch_size
    tail = (f"last batch: {last}" if last < settings.batch_size
            else f"drops {plan.samples_dropped}" if plan.samples_dropped else "every batch full")
    loss_detail = "epoch mean so far" if progress.state == "running" else "last epoch's mean"
    boxes = [
        ("epoch", f"{progress.epoch} / {settings.epochs}", f"{progress.epochs_completed} completed"),
        ("iteration in epoch", f"{progress.batches_done} / {per_epoch:,}", "batches run this epoch"),
        ("iterations per epoch", f"{per_epoch:,}", f"{_ceil_rule(settings)}; {tail}"),
        ("total iterations", f"{progress.iterations:,} / {plan.total_iterations:,}",
         f"I × E = {per_epoch:,} × {settings.epochs}"),
        ("samples seen", f"{progress.samples_seen:,} / {plan.samples_seen:,}",
         f"(N − dropped) × E = {settings.n_samples - plan.samples_dropped:,} × {settings.epochs}"),
        ("training loss", "–" if progress.train_loss is None else f"{progress.train_loss:.4g}",
         loss_detail),
        ("validation accuracy", "–" if progress.val_accuracy is None else f"{progress.val_accuracy:.1%}",
         "–" if progress.val_loss is None else f"val. loss {progress.val_loss:.4g}"),
        ("time per iteration",
         format_seconds(progress.elapsed_s / progress.iterations) if progress.iterations else "–",
         f"wall {format_seconds(progress.elapsed_s)}" if progress.iterations else "evaluation included"),
    ]
    cells = "".join(
        "<div style='border:1px solid #c8ced6;border-radius:6px;padding:3px 8px;min-width:118px'>"
        f"<div style='font-size:0.8em;color:#52606d'>{html.escape(label)}</div>"
        f"<div style='font-size:1.25em;font-weight:bold'>{html.escape(value)}</div>"
        f"<div style='font-size:0.75em;color:#7b8794'>{html.escape(detail)}</div></div>"
        for label, value, detail in boxes)
    return f"<div class='batchlab-stats' style='display:flex;flex-wrap:wrap;gap:6px'>{cells}</div>"


def _status_html(settings: RunSettings, progress: _Progress) -> str:
    colours = {"ready": "#52606d", "running": "#1f4e9a", "stopped": "#9a6700", "finished": "#1a7f37"}
    texts = {
        "ready": "Ready. Press Start to train with these settings.",
        "running": f"Training… epoch {progress.epoch} of {settings.epochs}",
        "stopped": f"Stopped after {progress.iterations:,} of {settings.total_iterations:,} iterations "
                   f"(epoch {progress.epoch}, batch {progress.batches_done}).",
        "finished": f"Finished: {progress.iterations:,} iterations as planned (I × E).",
    }
    colour = colours.get(progress.state, "#52606d")
    return f"<span style='color:{colour}'><b>{html.escape(texts[progress.state])}</b></span>"


def _figure_status(settings: RunSettings, progress: _Progress) -> str:
    head = {"running": "Training", "stopped": "Stopped", "finished": "Finished"}[progress.state]
    return (f"{head}: N = {settings.n_samples:,}, B = {settings.batch_size:,}, "
            f"lr = {settings.learning_rate:.3g}; epoch {progress.epoch} of {settings.epochs}, "
            f"iteration {progress.iterations:,} of {settings.total_iterations:,}")
