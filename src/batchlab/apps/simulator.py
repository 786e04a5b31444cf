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
* the insights panel (:mod:`batchlab.insights`): what the settings mean, and what the run is doing;
* the runs table: one row per run, with how it ended (finished, stopped, or diverged and why).

**Responsiveness** (the shared mechanics of :mod:`batchlab.apps.live`): *Start* trains in a background
thread, *Stop* takes effect after the current iteration, and the views refresh throttled by wall time:
the read-outs every ``min_redraw_s`` seconds and the figure every ``figure_every_s`` seconds or, when a
refresh costs more than 3 % (read-outs) or 5 % (figure) of that, less often: drawing stays under a
tenth of the run even on a slow or busy machine.
``run()`` trains in the calling thread instead (the notebook's reproducible demo, and scripts). While
a run is in progress the settings are locked. Every *Start* trains a fresh model from the same seed.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np

from batchlab import arithmetic
from batchlab.apps.live import App, LiveCallback, call_html, canvas_widget, status_html
from batchlab.arithmetic import TrainingPlan
from batchlab.data import DigitsSplit, load_digits_split
from batchlab.history import History, TimedCallback, TrainingState
from batchlab.insights import insights, insights_html
from batchlab.markup import html_table
from batchlab.models import make_mlp
from batchlab.plots.live import Throttle, request_redraw
from batchlab.plots.simulator import SimulatorFigure, key_html
from batchlab.training import train
from batchlab.validation import require_bool, require_float, require_instance, require_int

__all__ = ["MAX_EPOCHS", "MIN_SAMPLES", "TrainingSimulatorApp", "format_seconds", "stats_html"]

MIN_SAMPLES = 100
MAX_EPOCHS = 100
LR_EXPONENTS = (-3.0, 1.0)  # the learning-rate slider spans 10^-3 … 10^1
RUN_COLUMNS = ("run", "N", "B", "lr", "E", "drop_last", "iterations", "how it ended", "val. accuracy",
               "lowest val. loss")


def format_seconds(seconds: float) -> str:
    """A duration for people: ``"850 µs"``, ``"12.3 ms"``, ``"4.56 s"`` (never an exponent)."""
    seconds = require_float("seconds", seconds, minimum=0.0)
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1.0 else f"{seconds:.2f} s"


class TrainingSimulatorApp(App):
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
    min_redraw_s, figure_every_s:
        Seconds between two refreshes of the read-outs, and of the figure, during a run.
    data:
        The train/validation split (default :func:`batchlab.data.load_digits_split`); N takes its first
        training samples.

    Controls (public): ``dataset_size``, ``batch_size``, ``epochs`` (IntSlider), ``learning_rate``
    (FloatLogSlider), ``drop_last`` (Checkbox), ``start_button``, ``stop_button``, ``reset_button``,
    ``preset_buttons`` (B = 1, 32, N). Read-outs: ``progress`` (IntProgress, iterations),
    ``status``, ``stats``, ``insights``, ``runs`` (HTML). Figure: ``fig`` (``view`` is its
    :class:`~batchlab.plots.simulator.SimulatorFigure`); ``widget`` is the whole app. After a run:
    ``history`` (its :class:`~batchlab.history.History`), ``run_settings``, ``timing`` (seconds of
    training and of refreshing the views during it, and their share).


    Each control, the method it calls, and the engine call it makes (Taught in: notebook 06):

    * ``dataset_size``, ``batch_size``, ``learning_rate``, ``epochs``, ``drop_last``, ``preset_buttons``
      → :meth:`_changed` → :meth:`_show_plan` → ``SimulatorFigure.set_plan``
      (:mod:`batchlab.plots.simulator`) and :func:`batchlab.insights.insights`; nothing trains;
    * ``start_button`` → :meth:`start` → :meth:`run` → :func:`batchlab.training.train` in a background
      thread (the call is shown in ``call``); its callback → :meth:`_refresh` → ``set_curves``,
      ``set_batch``, the stats and the insights;
    * ``stop_button`` → :meth:`~batchlab.apps.live.App.stop` → ``state.request_stop()`` after the
      current iteration; ``reset_button`` → :meth:`reset` → :meth:`_show_plan`.
    """

    def __init__(self, *, n_samples: int = 1347, batch_size: int = 32, learning_rate: float = 0.1,
                 epochs: int = 20, drop_last: bool = False, seed: int = 0,
                 hidden: Sequence[int] = (64,), device: str | None = None,
                 min_redraw_s: float = 0.25, figure_every_s: float = 1.5,
                 data: DigitsSplit | None = None) -> None:
        self.data = require_instance("data", data if data is not None else load_digits_split(), DigitsSplit)
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
        self.min_redraw_s = require_float("min_redraw_s", min_redraw_s, minimum=0.0, maximum=60.0)
        self.figure_every_s = require_float("figure_every_s", figure_every_s, minimum=0.0, maximum=60.0)
        self.clock = time.perf_counter  # the throttles' time source, in seconds (tests use a fake one)
        self.view = SimulatorFigure()
        self.fig = self.view.fig
        self.run_settings: TrainingPlan | None = None
        self.timing: dict[str, float] = {}
        self._runs: list[list[str]] = []

        style = {"description_width": "120px"}
        half = {"width": "430px"}
        slider = {"style": style, "layout": half, "continuous_update": False}
        self.dataset_size = widgets.IntSlider(value=n_samples, min=min(MIN_SAMPLES, n_max), max=n_max,
                                              description="dataset size N", **slider)
        self.batch_size = widgets.IntSlider(value=batch_size, min=1, max=n_samples,
                                            description="batch size B", **slider)
        self.learning_rate = widgets.FloatLogSlider(value=learning_rate, base=10, min=LR_EXPONENTS[0],
                                                    max=LR_EXPONENTS[1], step=0.05, readout_format=".3g",
                                                    description="learning rate", **slider)
        self.epochs = widgets.IntSlider(value=epochs, min=1, max=MAX_EPOCHS, description="epochs E",
                                        **slider)
        self.drop_last = widgets.Checkbox(value=drop_last, indent=False,
                                          description="drop_last (discard the short last batch)")
        self.preset_buttons = [widgets.Button(description=text, tooltip=tip) for text, tip in [
            ("B = 1 (SGD)", "stochastic gradient descent"), ("B = 32", "a common mini-batch size"),
            ("B = N (batch GD)", "batch gradient descent")]]
        for button, size in zip(self.preset_buttons, (1, 32, None), strict=True):
            button.on_click(lambda _b, size=size: self._preset(size))
        self.start_button = widgets.Button(description="Start", icon="play", button_style="success")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger",
                                          disabled=True)
        self.reset_button = widgets.Button(description="Reset", icon="undo")
        self.start_button.on_click(lambda _b: self._once(self.start))
        self.stop_button.on_click(lambda _b: self.stop(wait=False))
        self.reset_button.on_click(lambda _b: self.reset())
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="iterations")
        self.status = widgets.HTML()
        self.stats = widgets.HTML()
        self.insights = widgets.HTML()
        self.runs = widgets.HTML()
        self.call = widgets.HTML()  # the train(...) call of the latest Start
        self.lockable = [*self.preset_buttons, self.start_button]
        box = widgets.VBox([
            widgets.HBox([self.dataset_size, self.batch_size]),
            widgets.HBox([self.learning_rate, self.epochs]),
            widgets.HBox([self.drop_last, widgets.Label("presets:"), *self.preset_buttons]),
            widgets.HBox([self.start_button, self.stop_button, self.reset_button, self.progress]),
            self.status, self.stats, canvas_widget(self.fig),
            widgets.HTML(key_html()), self.call, self.insights, self.runs])
        self._finish_setup(box, settings=[self.dataset_size, self.batch_size, self.learning_rate,
                                          self.epochs, self.drop_last],
                           trains=True, stop_button=self.stop_button, notice=self.status)
        self._show_plan()

    # ----------------------------------------------------------------- settings
    @property
    def settings(self) -> TrainingPlan:
        """The settings the controls show now: the run's :class:`~batchlab.arithmetic.TrainingPlan`."""
        return TrainingPlan(self.dataset_size.value, self.batch_size.value, self.epochs.value,
                            self.drop_last.value, lr=float(self.learning_rate.value))

    def _changed(self, change: dict[str, Any]) -> None:
        if change["owner"] is self.dataset_size:  # keep 1 ≤ B ≤ N; a full batch stays full
            was_full = self.batch_size.value == change["old"]

            def adjust() -> None:
                self.batch_size.max = change["new"]  # ipywidgets clamps the value to the maximum
                if was_full:
                    self.batch_size.value = change["new"]

            self._quietly(adjust)
        self._show_plan()

    def _preset(self, size: int | None) -> None:
        if not self.is_running:
            n = self.dataset_size.value
            self.batch_size.value = n if size is None else min(size, n)

    # ----------------------------------------------------------------- public actions
    def start(self) -> None:
        """Start training in a background thread with the current settings (the Start button)."""
        self.run(blocking=False)

    def reset(self) -> None:
        """Stop any run and clear the views back to the current settings (the Reset button)."""
        self._forget_run()
        self.history = None
        self.run_settings = None
        self._show_plan()

    # ----------------------------------------------------------------- the run
    def run(self, blocking: bool = True) -> History | None:
        """Train with the current settings: in this thread (``blocking``, returns the History), or
        in the background like the Start button (returns None at once)."""
        blocking = require_bool("blocking", blocking)
        self._check_open()
        settings = self.settings
        if not self.is_running:
            self.history = None
            self.run_settings = settings
            self.timing = {}
            self._show_plan(starting=True)  # the previous run's curves go at once
        self.call.value = call_html("train", f"make_mlp(hidden={self.hidden!r}, seed={self.seed})",
                                    f"data.take({settings.n_samples})", **settings.train_arguments(),
                                    seed=self.seed)
        figure = Throttle(self.figure_every_s, self.clock, max_share=0.05)  # the figure: at most 5 %
        readouts = Throttle(self.min_redraw_s, self.clock, max_share=0.03)  # the numbers: at most 3 %
        live = LiveCallback(self._stop_event,
                            lambda state, final: self._refresh(state, final, figure, readouts, live.started),
                            readouts)
        timed = TimedCallback(live)  # what the refreshes cost the run: app.timing

        def work() -> History:
            return train(make_mlp(hidden=self.hidden, seed=self.seed),
                         self.data.take(settings.n_samples), **settings.train_arguments(), seed=self.seed,
                         device=self.device, callbacks=[timed], progress=False)

        def done(history: History) -> None:
            wall = timed.training_seconds
            view = timed.during_seconds
            self.history = history
            self.timing = {"training_s": wall, "refreshes": float(readouts.count), "view_s": view,
                           "view_share": view / wall if wall else 0.0, "final_refresh_s": timed.final_seconds}
            self.status.value = status_html(history.status, history.status_words())  # how it ended, in words
            self._log_run(settings, history)

        self._launch(work, done, blocking=blocking)
        return self.history if blocking else None

    def _refresh(self, state: TrainingState, final: bool, figure: Throttle, readouts: Throttle,
                 started: float) -> None:
        """Update the read-outs, and when ``figure`` allows (or at the end) the chart, batch view and
        insights, from the training state; called from the training callback. Each part reports its
        cost to its throttle, which spaces the next refresh out when it was expensive."""
        settings = self.run_settings
        h = state.history
        began = self.clock()
        pending = state.pending_losses()
        batches_done = state.iteration_in_epoch + 1 if h.iterations else 0
        elapsed = time.perf_counter() - started
        if final or figure.ready():
            drawn = self.clock()
            self.view.set_curves(h.iteration_losses + pending, h.epoch_starts, h.train_loss, h.val_loss)
            self.view.set_batch(state.batches.permutation.cpu().numpy(),
                                min(batches_done, settings.iterations_per_epoch), epoch=state.epoch + 1)
            self.view.status.set_text(_figure_status(settings, h, final, state.epoch + 1))
            self.insights.value = insights_html(insights(settings, h))
            request_redraw(self.fig)
            began += self.clock() - drawn  # the read-outs' cost leaves the figure out
            figure.took(self.clock() - drawn)
        self.progress.value = h.iterations
        self.stats.value = stats_html(settings, h, state.epoch + 1, batches_done,
                                      _running_loss(h, pending, settings), elapsed)
        self.status.value = status_html(h.status, h.status_words()) if final else status_html(
            "running", f"Training… epoch {state.epoch + 1} of {settings.epochs}")
        readouts.took(self.clock() - began)

    def _log_run(self, settings: TrainingPlan, history: History) -> None:
        best = history.best_epoch
        finite = best is not None and np.isfinite(history.val_loss[best])
        self._runs.append([str(len(self._runs) + 1), f"{settings.n_samples:,}", f"{settings.batch_size:,}",
                           f"{settings.lr:.3g}", str(settings.epochs),
                           "yes" if settings.drop_last else "no", f"{history.iterations:,}",
                           history.status,
                           f"{history.val_accuracy[-1]:.1%}" if history.val_accuracy else "–",
                           f"{history.val_loss[best]:.4g} (epoch {best + 1})" if finite else "–"])
        self.runs.value = "<b>Runs so far</b> (latest 8)" + html_table(self._runs[-8:], RUN_COLUMNS,
                                                                       css_class="batchlab-runs")

    # ----------------------------------------------------------------- idle views
    def _show_plan(self, starting: bool = False) -> None:
        """Views for the current settings before a run: empty chart, formulas, regime insights; with
        ``starting``, the same views say that the run is starting (Start answers at once, before the
        first refresh from the training thread)."""
        s = self.settings
        self.status.value = (status_html("running", "Starting…") if starting else
                             status_html("ready", "Ready. Press Start to train with these settings."))
        self.view.set_plan(s.n_samples, s.batch_size, s.epochs, s.drop_last,
                           title=f"{'Starting' if starting else 'Ready'}: N = {s.n_samples:,}, "
                                 f"B = {s.batch_size:,}, lr = {s.lr:.3g}, E = {s.epochs}"
                                 + ("" if starting else " (press Start)"))
        self.progress.max = max(s.total_iterations, 1)
        self.progress.value = 0
        self.stats.value = stats_html(s, None, 1, 0, None, 0.0)
        self.insights.value = insights_html(insights(s))
        request_redraw(self.fig)

    def static_html(self) -> str:
        """The status line, the counts (planned and made), the insights and the runs table."""
        s = self.run_settings or self.settings
        h = self.history
        plan = s
        rows = [("iterations per epoch I", f"{plan.iterations_per_epoch:,}"),
                ("total iterations I × E", f"{h.iterations if h else 0:,} of {plan.total_iterations:,}"),
                ("samples seen", f"{h.samples_seen if h else 0:,} of {plan.samples_seen:,}"),
                ("validation accuracy", f"{h.val_accuracy[-1]:.1%}" if h and h.val_accuracy else "–")]
        return (key_html() + self.status.value
                + html_table(rows, ("", "this run"), css_class="batchlab-stats")
                + self.insights.value + self.runs.value)


def _running_loss(history: History, pending: list[float], settings: TrainingPlan) -> float | None:
    """Per-sample mean training loss of the epoch in progress (or of the last completed epoch)."""
    if pending:
        sizes = arithmetic.batch_sizes(settings.n_samples, settings.batch_size, settings.drop_last)
        return float(np.average(pending, weights=sizes[:len(pending)]))
    return history.train_loss[-1] if history.train_loss else None


def stats_html(settings: TrainingPlan, history: History | None, epoch: int, batches_done: int,
               train_loss: float | None, elapsed_s: float) -> str:
    """The stats boxes: planned counts from :mod:`batchlab.arithmetic` beside what the run made.

    ``history`` is the run so far (None before a run); ``epoch`` is 1-based, ``batches_done`` the
    batches run in it, ``train_loss`` the running training loss, ``elapsed_s`` the run's wall time.
    """
    plan = settings
    n = settings.n_samples
    b = settings.batch_size
    e = settings.epochs
    per_epoch = plan.iterations_per_epoch
    last = plan.last_batch_size
    iterations = history.iterations if history else 0
    rule = f"⌊N / B⌋ = ⌊{n:,} / {b:,}⌋" if settings.drop_last else f"⌈N / B⌉ = ⌈{n:,} / {b:,}⌉"
    tail = (f"last batch: {last}" if last < b
            else f"drops {plan.samples_dropped}" if plan.samples_dropped else "every batch full")
    val = history.val_accuracy[-1] if history and history.val_accuracy else None
    val_loss = history.val_loss[-1] if history and history.val_loss else None
    boxes = [
        ("epoch", f"{epoch} / {e}", f"{history.epochs_completed if history else 0} completed"),
        ("iteration in epoch", f"{batches_done} / {per_epoch:,}", "batches run this epoch"),
        ("iterations per epoch", f"{per_epoch:,}", f"{rule}; {tail}"),
        ("total iterations", f"{iterations:,} / {plan.total_iterations:,}", f"I × E = {per_epoch:,} × {e}"),
        ("samples seen", f"{history.samples_seen if history else 0:,} / {plan.samples_seen:,}",
         f"(N − dropped) × E = {n - plan.samples_dropped:,} × {e}"),
        ("training loss", "–" if train_loss is None else f"{train_loss:.4g}", "epoch mean"),
        ("validation accuracy", "–" if val is None else f"{val:.1%}",
         "–" if val_loss is None else f"val. loss {val_loss:.4g}"),
        ("time per iteration", format_seconds(elapsed_s / iterations) if iterations and elapsed_s else "–",
         f"wall {format_seconds(elapsed_s)}" if iterations and elapsed_s else "evaluation included"),
    ]
    cells = "".join(
        # eight boxes share one row (flex 1 1 0): a 1,280 px slide or window shows them side by side
        "<div style='border:1px solid #c8ced6;border-radius:6px;padding:3px 6px;flex:1 1 0;min-width:0;"
        "overflow-wrap:anywhere'>"
        f"<div style='font-size:0.8em;color:var(--jp-content-font-color2,#52606d)'>{html.escape(label)}</div>"
        f"<div style='font-size:1.25em;font-weight:bold'>{html.escape(value)}</div>"
        f"<div style='font-size:0.75em;line-height:1.2;color:#7b8794'>{html.escape(detail)}</div></div>"
        for label, value, detail in boxes)
    return f"<div class='batchlab-stats' style='display:flex;gap:6px'>{cells}</div>"


def _figure_status(settings: TrainingPlan, history: History, final: bool, epoch: int) -> str:
    head = history.status.capitalize() if final else "Training"  # Finished, Stopped, Not learning, Diverged
    return (f"{head}: N = {settings.n_samples:,}, B = {settings.batch_size:,}, "
            f"lr = {settings.lr:.3g}; epoch {epoch} of {settings.epochs}, "
            f"iteration {history.iterations:,} of {settings.total_iterations:,}")
