"""The sweep explorer (notebook 04): train one more run live and lay it over a batch-size sweep.

Pick a batch size ``B`` (only the sweep's own sizes, so ``B ≤ N`` always holds), a learning-rate rule
(``none``, ``linear`` or ``sqrt`` from the sweep's base batch size, with warm-up when a rule is used) and
a budget (``equal epochs`` or ``equal updates``), then press *Train*. The run is a real
:func:`batchlab.training.train` run (through :func:`batchlab.experiments.run_one`, same model, data
and base learning rate as the sweep); its validation loss and accuracy are drawn in black over the
sweep's mean curves of the same regime, and its early-stopping epoch is starred.

**Responsiveness** (the shared mechanics of :mod:`batchlab.apps.live`): *Train* trains in a background
thread; *Stop* takes effect after the current iteration (``History.stopped`` is then True and the curves
show the epochs completed); the curves and the progress bar are redrawn after an epoch, at most every
``redraw_every_s`` seconds. A run that diverges says so in words. :meth:`SweepExplorerApp.run` with
``blocking=True`` trains in the calling thread instead (tests, scripts, the notebook's stored demo).
While a run is in progress the settings are locked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from batchlab.apps.live import App, LiveCallback, NamedSelectionSlider, call_html, canvas_widget, status_html
from batchlab.data import DigitsSplit
from batchlab.experiments import Regime, Sweep, SweepRun, run_one
from batchlab.history import Callback, History, TrainingState
from batchlab.plots.generalization import SweepFigure
from batchlab.plots.live import Throttle, request_redraw
from batchlab.validation import require_bool, require_float, require_instance, require_int

__all__ = ["SweepExplorerApp"]

BUDGET_OPTIONS = (("equal epochs", "epochs"), ("equal updates", "updates"))
_STYLE = {"description_width": "110px"}


class SweepExplorerApp(App):
    """Train one run live with a chosen batch size, learning-rate rule and budget, over a sweep.

    Parameters
    ----------
    sweep:
        A finished :class:`batchlab.experiments.Sweep` (its config gives the model, base learning rate,
        base batch size, epochs and batch sizes).
    data:
        The :class:`batchlab.data.DigitsSplit` the sweep was trained on (same number of training samples).
    seed:
        Initial value of the seed control (weights and batch order of the live run).
    redraw_every_s:
        Minimum seconds between two live redraws (0 redraws after every epoch).

    Controls (public): ``batch_size`` (SelectionSlider over the sweep's sizes only), ``rule`` and ``budget``
    (ToggleButtons), ``seed`` (BoundedIntText), ``train_button``, ``stop_button``; read-outs ``plan``
    and ``result`` (HTML), ``progress`` (IntProgress, epochs). ``fig`` is the figure and ``view`` its
    :class:`~batchlab.plots.generalization.SweepFigure`; ``widget`` is the whole app. After a run,
    ``last_run`` is its :class:`~batchlab.experiments.SweepRun` and ``history`` its History (None when
    it failed); during one, ``live_history`` is the History being filled.

    Each control, the method it calls, and the engine call it makes (Taught in: notebook 04):

    * ``batch_size``, ``rule``, ``budget``, ``seed`` → :meth:`_changed` → the sweep's curves
      (``SweepFigure.show_sweep``, :mod:`batchlab.plots.generalization`) and the plan
      (:meth:`batchlab.experiments.SweepConfig.plan`); nothing trains;
    * ``train_button`` → :meth:`run` → :func:`batchlab.experiments.run_one` →
      :func:`batchlab.training.train` (the call is shown in ``call``); after each epoch its callback
      draws the run (``SweepFigure.set_live``);
    * ``stop_button`` → :meth:`~batchlab.apps.live.App.stop` → ``state.request_stop()`` after the
      current iteration.
    """

    def __init__(self, sweep: Sweep, data: DigitsSplit, *, seed: int = 0,
                 redraw_every_s: float = 0.3) -> None:
        require_instance("sweep", sweep, Sweep, "batchlab.experiments.Sweep")
        require_instance("data", data, DigitsSplit, "batchlab.data.DigitsSplit")
        if data.n_train != sweep.n_train:
            raise ValueError(f"data must hold the sweep's {sweep.n_train} training samples, "
                             f"got {data.n_train}")
        self.sweep = sweep
        self.data = data
        self.config = sweep.config
        seed = require_int("seed", seed, minimum=0)
        self.redraw_every_s = require_float("redraw_every_s", redraw_every_s, minimum=0.0, maximum=10.0)
        self.last_run: SweepRun | None = None
        self.history: History | None = None
        self.live_history: History | None = None
        self.view = SweepFigure()
        self.fig = self.view.fig
        sizes = list(self.config.batch_sizes)
        base = self.config.base_batch_size
        self.batch_size = NamedSelectionSlider(options=sizes, value=base if base in sizes else sizes[0],
                                                  description="batch size B", continuous_update=False,
                                                  style=_STYLE)
        self.rule = widgets.ToggleButtons(options=["none", "linear", "sqrt"], value="none",
                                          description="LR rule", style=_STYLE,
                                          tooltips=["the base rate for every B", f"lr × B / {base}, warm-up",
                                                    f"lr × √(B / {base}), warm-up"])
        self.budget = widgets.ToggleButtons(options=list(BUDGET_OPTIONS), value="epochs",
                                            description="budget", style=_STYLE)
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=1_000_000, description="seed",
                                           style={"description_width": "40px"},
                                           layout=widgets.Layout(width="150px"))
        self.train_button = widgets.Button(description="Train", icon="play", button_style="success")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger",
                                          disabled=True)
        self.train_button.on_click(lambda _b: self._once(lambda: self.run(blocking=False)))
        self.stop_button.on_click(lambda _b: self.stop(wait=False))
        self.plan = widgets.HTML()
        self.result = widgets.HTML()
        self.call = widgets.HTML()  # the train(...) call of the latest run
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="epochs")
        self.lockable = [self.train_button]
        # The two toggles side by side (each with its label above): the app and its figure fit a 720-px slide.
        toggles = widgets.HBox([self.rule, self.budget])
        box = widgets.VBox([widgets.HBox([self.batch_size, self.seed]), toggles,
                            widgets.HBox([self.train_button, self.stop_button, self.progress]), self.call,
                            self.plan, self.result, canvas_widget(self.fig)])
        self._finish_setup(box, settings=[self.batch_size, self.rule, self.budget, self.seed],
                           trains=True, stop_button=self.stop_button, notice=self.result)
        self._changed()

    # ----------------------------------------------------------------- settings
    @property
    def regime(self) -> Regime:
        """The regime the controls select (the sweep's own one when it has the same budget and rule)."""
        budget = self.budget.value
        rule = self.rule.value
        for regime in self.sweep.regimes:
            if (regime.budget, regime.scaling_rule, regime.warmup) == (budget, rule, rule != "none"):
                return regime
        label = self.budget.label
        return Regime(f"{label}, {rule} rule" if rule != "none" else label, budget, rule)

    def sweep_regime_name(self) -> str | None:
        """The name of the sweep's regime shown behind the live run, or None if the sweep lacks it."""
        regime = self.regime
        return regime.name if regime in self.sweep.regimes else None

    def _changed(self, change: dict[str, Any] | None = None) -> None:
        """Background curves and plan for the current settings; clears any live run."""
        regime = self.regime
        x = "epochs" if regime.budget == "epochs" else "updates"
        self.view.show_sweep(self.sweep, self.sweep_regime_name(), self.batch_size.value, x)
        self.view.set_live(None)
        self.view.title.set_text(f"{regime.name}: sweep means (colours) and this run (black)")
        self.plan.value = self._plan_html()
        self.result.value = ""
        request_redraw(self.fig)

    def _plan_html(self) -> str:
        b = self.batch_size.value
        regime = self.regime
        plan = self.config.plan(self.sweep.n_train, b, regime)
        warmup = plan.warmup_steps
        text = (f"<b>Plan</b>: N = {self.sweep.n_train}, B = {b}: {plan.epochs} epochs, "
                f"{plan.total_steps:,} updates, learning rate {plan.peak_lr:.3g}"
                + (f", warm-up over the first {warmup} updates." if warmup else "."))
        name = self.sweep_regime_name()
        runs = self.sweep.select(name, b) if name else []
        if runs:
            mean = sum(r.final_val_accuracy for r in runs) / len(runs)
            text += f" The sweep's {len(runs)} seeds ended at {100 * mean:.1f}% validation accuracy."
        else:
            text += " (The sweep did not run this combination: no curves behind it.)"
        return text

    # ----------------------------------------------------------------- actions

    def run(self, blocking: bool = True, *, progress: bool = True,
            callbacks: Sequence[Callback] = ()) -> History | None:
        """Train with the current settings.

        ``blocking``: in this thread, returning the History (raises what training raised); otherwise in
        a background thread like the Train button (returns None at once; see :meth:`wait`).
        ``progress``: count the epochs in ``self.progress``. ``callbacks`` are added to the app's own
        (tests use them to press Stop at a chosen moment).
        """
        blocking = require_bool("blocking", blocking)
        show_progress = require_bool("progress", progress)
        extra = list(callbacks)
        if not all(isinstance(cb, Callback) for cb in extra):
            raise TypeError("callbacks must be batchlab.history.Callback objects")
        self._check_open()
        if not self.is_running:
            self.history = None
            self.last_run = None
            self.live_history = None
            self.view.set_live(None)
            self.result.value = "Training…"
        b = self.batch_size.value
        regime = self.regime
        seed = self.seed.value
        plan = self.config.plan(self.sweep.n_train, b, regime)
        self.call.value = call_html("train", f"make_mlp(hidden={tuple(self.config.hidden)!r}, seed={seed})",
                                    "data", **plan.train_arguments(), optimizer=self.config.optimizer,
                                    seed=seed, device="cpu")
        epochs_shown = -1

        def refresh(state: TrainingState, final: bool) -> None:
            nonlocal epochs_shown
            h = state.history
            if show_progress:
                self.progress.max = max(h.plan.epochs, 1)
                self.progress.value = h.epochs_completed
            if final or h.epochs_completed != epochs_shown:  # new epochs to draw
                epochs_shown = h.epochs_completed
                self.live_history = h
                self.view.set_live(h)
                if not final:
                    self.result.value = (f"Training… {h.epochs_completed} of {h.plan.epochs} epochs, "
                                         f"{h.steps:,} updates.")
                request_redraw(self.fig)

        live = LiveCallback(self._stop_event, refresh, Throttle(self.redraw_every_s))
        self._launch(lambda: run_one(self.data, self.config, b, regime, seed, callbacks=[live, *extra]),
                     self._finish, blocking=blocking)
        return self.history if blocking else None

    def _finish(self, run: SweepRun) -> None:
        self.last_run = run
        self.history = run.history
        self.result.value = _result_html(run)

    def static_html(self) -> str:
        """The plan and the result of the latest run."""
        return f"<p>{self.plan.value}</p><p>{self.result.value}</p>"


def _result_html(run: SweepRun) -> str:
    h = run.history
    best = h.best_epoch
    head = (status_html(h.status, h.status_words())
            + f" {h.epochs_completed} of {h.plan.epochs} epochs, {h.steps:,} updates")
    if h.status in ("diverged", "not learning"):
        what = "diverged" if h.status == "diverged" else "is not learning"
        return head + f". Lower the learning rate: the validation numbers of a run that {what} mean nothing."
    if best is None:
        return head + "; no epoch completed, so no validation numbers."
    gap = ("" if h.stopped else f" (training {100 * run.final_train_accuracy:.1f}%, gap "
                                f"{100 * run.accuracy_gap:.1f} points)")
    return (f"{head}. Last validation accuracy {100 * run.final_val_accuracy:.1f}%{gap}; early "
            f"stopping picks epoch {best + 1} (lowest validation loss {h.val_loss[best]:.3f}) with "
            f"{100 * h.val_accuracy[best]:.1f}%.")
