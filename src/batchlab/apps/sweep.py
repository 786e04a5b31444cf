"""The sweep explorer (notebook 04): train one more run live and lay it over a batch-size sweep.

Pick a batch size ``B`` (only the sweep's own sizes, so ``B ≤ N`` always holds), a learning-rate rule
(``none``, ``linear`` or ``sqrt`` from the sweep's base batch size, with warm-up when a rule is used) and
a budget (``equal epochs`` or ``equal updates``), then press *Train*. The run is a real
:func:`batchlab.training.train` run (through :func:`batchlab.experiments.run_one`, same model, data
and base learning rate as the sweep); its validation loss and accuracy are drawn in black over the
sweep's mean curves of the same regime, and its early-stopping epoch is starred.

**Responsiveness.** *Train* starts training in a background thread, so the kernel keeps processing
widget messages while it trains: *Stop* sets an event that the training callback reads after every
iteration, and the run ends cleanly after the current one (``History.stopped`` is then True and the
curves show the epochs completed). The callback redraws at most every ``redraw_every_s`` seconds;
drawing from the training thread is safe because the figure's ``draw`` and every artist update hold
the same lock (:class:`batchlab.plots.locked.LockedFigure`). ``train``'s own ``tqdm`` progress bars
are shown in the app's ``progress`` output area (:func:`~batchlab.apps.background.display_into`).
:meth:`SweepExplorerApp.run` with ``blocking=True`` trains in the calling thread instead (tests,
scripts, the notebook's stored demo). The thread, Stop and the locking of the settings are the shared
mechanics of :mod:`batchlab.apps.background`.

While a run is in progress the settings are locked: disabled in the page, and a change made from code
is undone at once, so the controls always show what is being trained.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from batchlab.apps.background import (
    BackgroundApp,
    BackgroundRun,
    ControlLock,
    StopOnRequest,
    display_into,
    failure_html,
)
from batchlab.arithmetic import total_steps
from batchlab.data import DigitsSplit
from batchlab.experiments import Regime, Sweep, SweepRun, run_one
from batchlab.plots.generalization import SweepFigure
from batchlab.training import Callback, History, TrainingState
from batchlab.validation import require_bool, require_float, require_int

__all__ = ["RULES", "SweepExplorerApp", "display_into"]

RULES = ("none", "linear", "sqrt")
BUDGET_OPTIONS = (("equal epochs", "epochs"), ("equal updates", "updates"))
_STYLE = {"description_width": "110px"}


class _LiveCallback(StopOnRequest):
    """Honours Stop after every iteration; redraws after an epoch at most every ``every_s`` seconds."""

    def __init__(self, app: SweepExplorerApp, run_id: int) -> None:
        super().__init__(app._background.stop_event)
        self.app = app
        self.run_id = run_id
        self.last_draw = 0.0

    def on_epoch_end(self, state: TrainingState) -> None:
        now = time.perf_counter()
        if now - self.last_draw >= self.app.redraw_every_s:
            self.last_draw = now
            self.app._refresh(self.run_id, state.history, final=False)

    def on_train_end(self, state: TrainingState) -> None:
        self.app._refresh(self.run_id, state.history, final=True)


class SweepExplorerApp(BackgroundApp):
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
    device:
        Where to train (the CPU by default: the model is tiny).

    Controls (public): ``batch_size`` (SelectionSlider over the sweep's sizes only), ``rule`` and ``budget``
    (ToggleButtons), ``seed`` (BoundedIntText), ``train_button``, ``stop_button``; read-outs ``plan``
    and ``result`` (HTML), ``progress`` (Output holding the tqdm bars). ``fig`` is the figure and
    ``view`` its :class:`~batchlab.plots.generalization.SweepFigure`. After a run, ``last_run`` is its
    :class:`~batchlab.experiments.SweepRun` and ``history`` its History (None when it failed).
    """

    def __init__(
        self,
        sweep: Sweep,
        data: DigitsSplit,
        *,
        seed: int = 0,
        redraw_every_s: float = 0.3,
        device: str | None = "cpu",
    ) -> None:
        if not isinstance(sweep, Sweep):
            raise TypeError(f"sweep must be a batchlab.experiments.Sweep, got {type(sweep).__name__}")
        if not isinstance(data, DigitsSplit):
            raise TypeError(f"data must be a batchlab.data.DigitsSplit, got {type(data).__name__}")
        if data.n_train != sweep.n_train:
            raise ValueError(f"data must hold the sweep's {sweep.n_train} training samples, "
                             f"got {data.n_train}")
        self.sweep = sweep
        self.data = data
        self.config = sweep.config
        seed = require_int("seed", seed, minimum=0)
        self.redraw_every_s = require_float("redraw_every_s", redraw_every_s, minimum=0.0, maximum=10.0)
        self.device = device
        self.last_run: SweepRun | None = None
        self.history: History | None = None
        self.live_history: History | None = None
        self._background = BackgroundRun("batchlab-sweep-explorer", on_failure=self._show_failure,
                                         on_end=lambda: self._lock.set_locked(False))
        self.view = SweepFigure()
        self.fig = self.view.fig
        self._build_controls(seed)
        self._show_selection()

    # ----------------------------------------------------------------- widgets
    def _build_controls(self, seed: int) -> None:
        sizes = list(self.config.batch_sizes)
        start = self.config.base_batch_size if self.config.base_batch_size in sizes else sizes[0]
        self.batch_size = widgets.SelectionSlider(options=sizes, value=start, description="batch size B",
                                                  continuous_update=False, style=_STYLE)
        self.rule = widgets.ToggleButtons(options=list(RULES), value="none", description="LR rule",
                                          style=_STYLE,
                                          tooltips=["the base rate for every B",
                                                    f"lr × B / {self.config.base_batch_size}, warm-up",
                                                    f"lr × √(B / {self.config.base_batch_size}), warm-up"])
        self.budget = widgets.ToggleButtons(options=list(BUDGET_OPTIONS), value="epochs",
                                            description="budget", style=_STYLE)
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=1_000_000, description="seed",
                                           style={"description_width": "40px"},
                                           layout=widgets.Layout(width="150px"))
        self.train_button = widgets.Button(description="Train", icon="play", button_style="success")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger",
                                          disabled=True)
        self.train_button.on_click(lambda _b: self._on_train())
        self.stop_button.on_click(lambda _b: self.stop(wait=False))
        self.plan = widgets.HTML()
        self.result = widgets.HTML()
        self.progress = widgets.Output()
        self.settings_controls = [self.batch_size, self.rule, self.budget, self.seed]
        self._lock = ControlLock(self._background, [*self.settings_controls, self.train_button],
                                 self.stop_button, self.result)
        for control in self.settings_controls:
            control.observe(self._on_setting, names="value")
        canvas = self.fig.canvas
        for attribute in ("header_visible", "footer_visible", "resizable"):
            if hasattr(canvas, attribute):  # ipympl canvas only
                setattr(canvas, attribute, False)
        self.controls = widgets.VBox([
            widgets.HBox([self.batch_size, self.seed]),
            self.rule,
            self.budget,
            widgets.HBox([self.train_button, self.stop_button]),
            self.plan,
            self.result,
            self.progress,
        ])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.controls)
        display(self.fig.canvas)

    # ----------------------------------------------------------------- settings
    @property
    def regime(self) -> Regime:
        """The regime the controls select (the sweep's own one when it has the same budget and rule)."""
        budget, rule = self.budget.value, self.rule.value
        for regime in self.sweep.regimes:
            if (regime.budget, regime.scaling_rule, regime.warmup) == (budget, rule, rule != "none"):
                return regime
        label = dict((value, text) for text, value in BUDGET_OPTIONS)[budget]
        return Regime(f"{label}, {rule} rule" if rule != "none" else label, budget, rule)

    def sweep_regime_name(self) -> str | None:
        """The name of the sweep's regime shown behind the live run, or None if the sweep lacks it."""
        regime = self.regime
        return regime.name if regime in self.sweep.regimes else None

    def _on_setting(self, change: dict[str, Any]) -> None:
        if self._lock.intercept(change):  # locked: undone, the controls keep showing the run's settings
            return
        self._show_selection()

    def _show_selection(self) -> None:
        """Background curves and plan for the current settings; clears any live run."""
        regime = self.regime
        x = "epochs" if regime.budget == "epochs" else "updates"
        self.view.show_sweep(self.sweep, self.sweep_regime_name(), self.batch_size.value, x)
        self.view.set_live(None)
        self.view.set_title(f"{regime.name}: sweep means (colours) and this run (black)")
        self.plan.value = self._plan_html()
        self.result.value = ""
        self.view.draw_idle()

    def _plan_html(self) -> str:
        b, regime = self.batch_size.value, self.regime
        settings = self.config.train_settings(self.sweep.n_train, b, regime)
        peak = self.config.peak_learning_rate(b, regime)
        updates = total_steps(self.sweep.n_train, b, settings["epochs"])
        warmup = settings["warmup_steps"]
        text = (f"<b>Plan</b>: N = {self.sweep.n_train}, B = {b}: {settings['epochs']} epochs, "
                f"{updates:,} updates, learning rate {peak:.3g}"
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
    def _on_train(self) -> None:
        if not self.is_running:  # a double click must not start a second run
            self.run(blocking=False)

    def run(self, blocking: bool = True, *, progress: bool = True,
            callbacks: Sequence[Callback] = ()) -> History | None:
        """Train with the current settings.

        ``blocking``: in this thread, returning the History (raises what training raised); otherwise in
        a background thread like the Train button (returns None at once; see :meth:`wait`).
        ``progress``: show ``train``'s tqdm bars in ``self.progress``. ``callbacks`` are added to the
        app's own (tests use them to press Stop at a chosen moment).
        """
        blocking = require_bool("blocking", blocking)
        progress = require_bool("progress", progress)
        self._background.ensure_idle()
        extra = list(callbacks)
        if not all(isinstance(cb, Callback) for cb in extra):
            raise TypeError("callbacks must be batchlab.training.Callback objects")
        run_id = self._begin(progress)
        self._background.launch(run_id, lambda: self._train(run_id, progress, extra),
                                self._finish, blocking=blocking)
        return self.history if blocking else None

    def close(self) -> None:
        """Stop any run, then close the figure and the widgets."""
        self._close_figure(self.fig)
        for child in self.controls.children:
            for grandchild in getattr(child, "children", ()):
                grandchild.close()
            child.close()
        self.controls.close()

    # ----------------------------------------------------------------- the run
    def _begin(self, progress: bool) -> int:
        run_id = self._background.begin()
        self.history, self.last_run, self.live_history = None, None, None
        self._lock.set_locked(True)
        if progress:
            self.progress.outputs = ()  # set directly: clear_output() would target a finished cell
        self.view.set_live(None)
        self.result.value = "Training…"
        self.view.draw_idle()
        return run_id

    def _train(self, run_id: int, progress: bool, extra: list[Callback]) -> SweepRun:
        """The run itself (in the background thread unless blocking)."""
        live = _LiveCallback(self, run_id)
        with display_into(self.progress) if progress else contextlib.nullcontext():
            return run_one(self.data, self.config, self.batch_size.value, self.regime,
                           self.seed.value, callbacks=[live, *extra], progress=progress,
                           device=self.device, refresh_every=0.2)

    def _finish(self, run: SweepRun) -> None:
        self.last_run, self.history = run, run.history
        self.result.value = _result_html(run)

    def _show_failure(self, error: Exception) -> None:
        self.result.value = failure_html(error)

    def _refresh(self, run_id: int, history: History, *, final: bool) -> None:
        """Redraw the live curves from ``history`` (called from the training callback)."""
        if not self._background.is_current(run_id):
            return
        self.live_history = history
        self.view.set_live(history)
        if not final:
            self.result.value = (f"Training… {history.epochs_completed} of {history.plan.epochs} epochs, "
                                 f"{history.steps:,} updates.")
        self.view.draw_idle()


def _result_html(run: SweepRun) -> str:
    h = run.history
    best = h.best_epoch
    head = (f"<b>Stopped</b> after {h.epochs_completed} of {h.plan.epochs} epochs ({h.steps:,} updates)"
            if h.stopped else f"<b>Done</b>: {h.epochs_completed} epochs, {h.steps:,} updates")
    if best is None:
        return head + "; no epoch completed, so no validation numbers."
    gap = ("" if h.stopped else f" (training {100 * run.final_train_accuracy:.1f}%, gap "
                                f"{100 * run.accuracy_gap:.1f} points)")
    return (f"{head}. Last validation accuracy {100 * run.final_val_accuracy:.1f}%{gap}; early "
            f"stopping picks epoch {best + 1} (lowest validation loss {h.val_loss[best]:.3f}) with "
            f"{100 * h.val_accuracy[best]:.1f}%.")
