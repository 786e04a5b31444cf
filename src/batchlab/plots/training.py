"""Live training curves: the loss of every iteration with epoch boundaries, and per-epoch curves.

:class:`LiveTrainingPlot` is a :class:`batchlab.history.Callback`: pass it to
:func:`batchlab.training.train` and it redraws *in place* while training runs, at most once every
``min_interval_s`` seconds of wall time (the only moments it reads the losses from the device)::

    plot = LiveTrainingPlot(total_epochs=5, iterations_per_epoch=43)
    plot.show()                         # in a notebook: display its live view
    history = train(model, data, batch_size=32, epochs=5, callbacks=[plot])

``LiveTrainingPlot()`` without the run's shape also works (it sizes itself from the plan when training
starts). :meth:`LiveTrainingPlot.show_history` draws a finished :class:`~batchlab.history.History`.

Three panels, artists created once and updated with ``set_data``:

* **iterations**: the mean loss of each batch (x = iteration 1, 2, …), with dotted vertical lines
  between epochs (:func:`batchlab.plots.batches.epoch_boundaries`, the simulator's chart uses the same);
* **loss per epoch**: training loss (per-sample mean over the epoch) and validation loss;
* **accuracy per epoch**: training and validation accuracy (optional).

How a run ended is written above the panels: finished, stopped early, or **diverged** (in red, with
``History.divergence``); the loss axes stop at a few times the starting loss, so a diverging run does
not squash the chart.

It is the live-update idea of :mod:`batchlab.plots.live`: set the data, then sync the live view,
throttled (:class:`~batchlab.plots.live.Throttle`). A cell that calls ``train`` keeps the kernel's main
thread busy; the sync (:func:`batchlab.plots.live.request_redraw`) sends the changed arrays as widget
messages at once, and the browser draws them: nothing waits for the kernel. To measure what the plot
costs a run, wrap it:
``train(..., callbacks=[TimedCallback(plot)])`` (:class:`batchlab.history.TimedCallback`).

The figure is a plain matplotlib ``Figure``: :meth:`LiveTrainingPlot.show` displays its live view
(:mod:`batchlab.plots.mirror`), and the finished figure is what a saved notebook stores.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from batchlab.history import Callback, History, TrainingState
from batchlab.plots.batches import IterationCurve
from batchlab.plots.live import Throttle, made_here, request_redraw
from batchlab.plots.mirror import has_live_figure, live_figure
from batchlab.validation import require_bool, require_instance, require_int, require_positive_float

__all__ = ["COLOURS", "LiveTrainingPlot"]

COLOURS = {"iteration": "#8fb3de", "train": "#1f4e9a", "val": "#d95f02", "boundary": "#8a94a0",
           "diverged": "#b3261e", "ink": "#1f2933"}
MAX_DRAW_SHARE = 0.1  # redraws take at most this share of a run's wall time
_DEFAULT_TOP = 3.2  # loss-axis top before any data: a fresh 10-class model starts near ln 10 = 2.30
_MAX_RISE = 4.0  # the loss axes stop at this many times the starting loss (a diverging run)


class LiveTrainingPlot(Callback):
    """Training curves that update in place during :func:`batchlab.training.train` (a Callback).

    Parameters
    ----------
    total_epochs, iterations_per_epoch:
        The run's shape, for the x-axes; ``None`` (default) takes them from the run's plan when
        training starts. The same object can be passed to several runs; each start resets it.
    min_interval_s:
        Least wall time (seconds) between two redraws during training; the final state is always drawn.
        A redraw that took ``t`` seconds also makes the next wait at least ``10 t`` (the throttle's
        ``max_share = 0.1``), so drawing stays under a tenth of the run even where drawing is slow
        (a projector-sized figure on a busy machine). Set ``plot.throttle.max_share = None`` to redraw
        every ``min_interval_s`` whatever it costs.
    accuracy:
        Draw the accuracy panel.
    figsize, dpi:
        Figure size in inches and resolution.

    Public artists (tests read them): ``iteration_line``, ``boundary_line`` (a ``LineCollection``, one
    segment per boundary, as in the simulator's chart; :attr:`boundaries` gives the positions),
    ``train_loss_line``, ``val_loss_line``, ``train_accuracy_line``, ``val_accuracy_line`` (None without
    accuracy), ``status`` (the text above the panels). ``draw_count``: redraws requested since the run
    started (the final one included); the time they take is measured by wrapping the plot in
    :class:`batchlab.history.TimedCallback`. Creating a plot again from the same line of code
    (re-running a notebook cell) closes the figure made there before.

    Taught in: notebook 05 § Watching training live: loss per iteration and epoch boundaries.
    """

    def __init__(self, total_epochs: int | None = None, iterations_per_epoch: int | None = None, *,
                 min_interval_s: float = 0.5, accuracy: bool = True,
                 figsize: tuple[float, float] | None = None, dpi: int = 80) -> None:
        if total_epochs is not None:
            total_epochs = require_int("total_epochs", total_epochs, minimum=1)
        if iterations_per_epoch is not None:
            iterations_per_epoch = require_int("iterations_per_epoch", iterations_per_epoch, minimum=1)
        self.throttle = Throttle(require_positive_float("min_interval_s", min_interval_s),
                                 max_share=MAX_DRAW_SHARE)
        self.accuracy = require_bool("accuracy", accuracy)
        dpi = require_int("dpi", dpi, minimum=20, maximum=300)
        self.figure = Figure(figsize=figsize or ((9.0, 3.1) if self.accuracy else (7.5, 3.1)), dpi=dpi)
        fig = self.figure
        _key, previous = made_here(LiveTrainingPlot, fig)
        if previous is not None and has_live_figure(previous):
            live_figure(previous).close()  # the same cell run again: close the view it showed before
        widths = (2.2, 1.0, 1.0) if self.accuracy else (2.2, 1.0)
        spec = fig.add_gridspec(1, len(widths), width_ratios=widths, wspace=0.32,
                                left=0.065, right=0.99, top=0.80, bottom=0.17)
        self.ax_iterations = fig.add_subplot(spec[0])
        self.ax_loss = fig.add_subplot(spec[1])
        self.ax_accuracy = fig.add_subplot(spec[2]) if self.accuracy else None
        self.status = fig.text(0.01, 0.985, "", ha="left", va="top", fontsize=9, fontweight="bold",
                               color=COLOURS["ink"])
        ax = self.ax_iterations
        ax.set_title("loss of each iteration (batch mean)", fontsize=9)
        ax.set_xlabel("iteration", fontsize=8, labelpad=1)
        ax.set_ylabel("cross-entropy", fontsize=8)
        self.curve = IterationCurve(ax, COLOURS["iteration"], COLOURS["boundary"],
                                    boundary_label="epoch boundary")
        self.iteration_line = self.curve.line
        self.boundary_line = self.curve.boundaries
        ax.legend(loc="upper right", fontsize=7, frameon=False)
        lines: list[Line2D | None] = [None] * 4  # train and validation loss, then accuracy
        panels = (("loss per epoch", "train (sample mean)", "upper right"),
                  ("accuracy per epoch", "train", "lower right"))
        for k, ax in enumerate(self._epoch_axes()):
            title, train_label, corner = panels[k]
            ax.set_title(title, fontsize=9)
            lines[2 * k:2 * k + 2] = [ax.plot([], [], style, ms=3, lw=1.2, color=COLOURS[key], label=label)[0]
                                      for style, key, label in (("o-", "train", train_label),
                                                                ("s-", "val", "validation"))]
            ax.legend(loc=corner, fontsize=7, frameon=False)
        self.train_loss_line, self.val_loss_line, self.train_accuracy_line, self.val_accuracy_line = lines
        if self.ax_accuracy is not None:
            self.ax_accuracy.set_ylim(0.0, 1.02)
        for ax in self.figure.axes:
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.25, lw=0.6)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))  # few tick labels: text is most of a draw
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        for ax in self._epoch_axes():
            ax.set_xlabel("epoch", fontsize=8, labelpad=1)
        self.draw_count = 0
        self._display_handle: Any = None
        self._planned = (total_epochs, iterations_per_epoch)
        self.set_extent(total_epochs or 1, iterations_per_epoch or 1)
        self.update([], [])

    def _epoch_axes(self) -> list[Any]:
        return [ax for ax in (self.ax_loss, self.ax_accuracy) if ax is not None]

    def set_extent(self, total_epochs: int, iterations_per_epoch: int) -> None:
        """Fix the x-axes for a run of ``total_epochs`` × ``iterations_per_epoch`` iterations."""
        total_epochs = require_int("total_epochs", total_epochs, minimum=1)
        iterations_per_epoch = require_int("iterations_per_epoch", iterations_per_epoch, minimum=1)
        self.total_epochs = total_epochs
        self.iterations_per_epoch = iterations_per_epoch
        self.ax_iterations.set_xlim(0.5, total_epochs * iterations_per_epoch + 0.5)
        for ax in self._epoch_axes():
            ax.set_xlim(0.5, total_epochs + 0.5)

    @property
    def boundaries(self) -> np.ndarray:
        """x positions of the epoch boundary lines now drawn."""
        return np.array([segment[0][0] for segment in self.boundary_line.get_segments()], dtype=float)

    def update(self, iteration_losses: Sequence[float], epoch_starts: Sequence[int],
               train_loss: Sequence[float] = (), val_loss: Sequence[float] = (),
               train_accuracy: Sequence[float] = (), val_accuracy: Sequence[float] = ()) -> None:
        """Set every curve's data (plain sequences of floats) and fit the loss axes; no drawing.

        The loss axes run from 0 to 10 % above the largest finite loss, but at most
        ``4 ×`` the starting loss (the first finite iteration loss), so a diverging run stays readable.
        """
        losses = self.curve.set(iteration_losses, epoch_starts)
        pairs = [(self.train_loss_line, train_loss), (self.val_loss_line, val_loss),
                 (self.train_accuracy_line, train_accuracy), (self.val_accuracy_line, val_accuracy)]
        for line, values in pairs:
            if line is not None:
                line.set_data(np.arange(1, len(values) + 1), np.asarray(values, dtype=float))
        finite = losses[np.isfinite(losses)]
        cap = _MAX_RISE * max(float(finite[0]), 1.0) if len(finite) else np.inf
        for ax, values in ((self.ax_iterations, losses),
                           (self.ax_loss, np.asarray([*train_loss, *val_loss], dtype=float))):
            shown = values[np.isfinite(values)]
            top = 1.1 * float(shown.max()) if len(shown) else _DEFAULT_TOP
            ax.set_ylim(0.0, max(min(top, cap), 1e-3))

    def _show(self, history: History, pending: list[float] | None = None) -> None:
        """The curves of ``history`` plus the epoch's ``pending`` losses; without them the run has ended,
        and the status says how."""
        self.update(history.iteration_losses + (pending or []), history.epoch_starts, history.train_loss,
                    history.val_loss, history.train_accuracy, history.val_accuracy)
        if pending is None:
            self.status.set_text(history.status_words())
            failed = history.status in ("diverged", "not learning")
            self.status.set_color(COLOURS["diverged"] if failed else COLOURS["ink"])

    def redraw(self) -> None:
        """Sync the live view now (:func:`batchlab.plots.live.request_redraw`), counted."""
        request_redraw(self.figure)
        self.draw_count += 1

    def show_history(self, history: History) -> LiveTrainingPlot:
        """Draw a finished (or stopped) run's :class:`~batchlab.history.History`; returns ``self``."""
        plan = require_instance("history", history, History, "batchlab.history.History").plan
        self.set_extent(max(plan.epochs, 1), max(plan.iterations_per_epoch, 1))
        self._show(history)
        request_redraw(self.figure)
        return self

    def show(self) -> LiveTrainingPlot:
        """Display the live view in a notebook (:func:`batchlab.plots.mirror.live_figure`: the bqplot view,
        plus a PNG of the figure for readers without a kernel).

        When training ends the displayed output is replaced by the finished figure, so a saved notebook
        shows the final curves. Returns ``self``.
        """
        from IPython.display import display

        self._display_handle = display(live_figure(self.figure), display_id=True)
        return self

    # ------------------------------------------------------------------ Callback hooks
    def on_train_start(self, state: TrainingState) -> None:
        plan = state.history.plan
        epochs, per_epoch = self._planned
        self.set_extent(epochs or max(plan.epochs, 1), per_epoch or max(plan.iterations_per_epoch, 1))
        self.draw_count = 0
        self.update([], [])
        self.status.set_text("Training…")
        self.status.set_color(COLOURS["ink"])
        self.throttle.restart()

    def on_iteration_end(self, state: TrainingState) -> None:
        started = time.perf_counter()
        if self.throttle.ready():
            self._show(state.history, state.pending_losses())
            self.redraw()
            self.throttle.took(time.perf_counter() - started)  # a slow redraw spaces the next ones out

    def on_train_end(self, state: TrainingState) -> None:
        self._show(state.history)  # the final curves
        self.redraw()
        if self._display_handle is not None:  # store the finished figure as the displayed image
            self._display_handle.update(live_figure(self.figure))
