"""Live training curves: the loss of every iteration with epoch boundaries, and per-epoch curves.

:class:`LiveTrainingPlot` is a :class:`batchlab.training.Callback`: pass it to
:func:`batchlab.training.train` and it redraws *in place* while training runs, at most once every
``min_interval_s`` seconds of wall time (the only moments it reads the losses from the device)::

    plot = LiveTrainingPlot(total_epochs=5, iterations_per_epoch=43)
    plot.show()                         # in a notebook: display the canvas (ipympl: live)
    history = train(model, data, batch_size=32, epochs=5, callbacks=[plot])

``LiveTrainingPlot()`` without the run's shape also works (it sizes itself from the plan when training
starts), but then its first redraw of a run is a full one; with the shape given up front every redraw
during training repaints only the curves. :meth:`LiveTrainingPlot.show_history` draws a finished
:class:`~batchlab.training.History` instead.

Three panels, artists created once and updated with ``set_data``:

* **iterations**: the mean loss of each batch (x = iteration index, 0-based, as in
  ``History.iteration_losses``), with dotted vertical lines between epochs (at ``start - 0.5`` for each
  epoch start after the first: between the last iteration of one epoch and the first of the next);
* **loss per epoch**: training loss (per-sample mean over the epoch) and validation loss;
* **accuracy per epoch**: training and validation accuracy (optional).

How it stays cheap: the loss axes run from 0 to a top that only grows during training (in steps of at
least 25 %), so most redraws *blit*: restore a saved picture of the axes and draw the curves over it.
The axes are drawn in full only when a curve outgrows them or the canvas changed size.

Live updates while the notebook's kernel is busy training: ipympl draws when its front end asks, and a
busy kernel cannot answer, so each refresh renders and sends the image itself (``canvas.draw()`` or a
blit) rather than only calling ``draw_idle()``. :attr:`LiveTrainingPlot.callback_seconds` is the time
spent inside the callback (drawing included): divide by the duration of the ``train`` call for the
plot's share of training (``benchmarks/loop_throughput.py --plot-cost`` does).

Nothing here imports ipywidgets.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from batchlab.training import Callback, History, TrainingState
from batchlab.validation import require_bool, require_int, require_positive_float

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["COLOURS", "LiveTrainingPlot", "boundary_positions"]

COLOURS = {"iteration": "#8fb3de", "train": "#1f4e9a", "val": "#d95f02", "boundary": "#8a94a0"}
_DEFAULT_TOP = 3.2  # loss-axis top before any data: a fresh 10-class model starts near ln 10 = 2.30


def boundary_positions(epoch_starts: Sequence[int]) -> np.ndarray:
    """x positions of the lines between epochs: ``start - 0.5`` for every epoch start but the first.

    >>> boundary_positions([0, 43, 86]).tolist()
    [42.5, 85.5]
    """
    return np.asarray(list(epoch_starts)[1:], dtype=float) - 0.5


def _vertical_lines(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y (axes fraction 0..1) of one polyline drawing a vertical segment at each position."""
    x = np.repeat(positions, 3)
    y = np.tile([0.0, 1.0, np.nan], len(positions))
    x[2::3] = np.nan
    return x, y


class LiveTrainingPlot(Callback):
    """Training curves that update in place during :func:`batchlab.training.train` (a Callback).

    Parameters
    ----------
    total_epochs, iterations_per_epoch:
        The run's shape, for the x-axes; ``None`` (default) takes them from the run's plan when
        training starts. The same object can be passed to several runs; each start resets it.
    min_interval_s:
        Least wall time (seconds) between two redraws during training; the final state is always drawn.
    accuracy:
        Draw the accuracy panel.
    figsize, dpi:
        Figure size in inches and resolution.

    Public artists (tests read them): ``iteration_line``, ``boundary_line`` (one polyline, NaN
    between segments; :attr:`boundaries` gives the positions), ``train_loss_line``, ``val_loss_line``,
    ``train_accuracy_line``, ``val_accuracy_line`` (None without accuracy). Counters, reset when a run
    starts: ``draw_count`` and ``draw_seconds`` (redraws), ``display_seconds`` (replacing the image
    shown by :meth:`show` with the final one) and ``callback_seconds`` (all time inside the hooks,
    both of those included).
    """

    def __init__(
        self,
        total_epochs: int | None = None,
        iterations_per_epoch: int | None = None,
        *,
        min_interval_s: float = 0.5,
        accuracy: bool = True,
        figsize: tuple[float, float] | None = None,
        dpi: int = 80,
    ) -> None:
        if total_epochs is not None:
            total_epochs = require_int("total_epochs", total_epochs, minimum=1)
        if iterations_per_epoch is not None:
            iterations_per_epoch = require_int("iterations_per_epoch", iterations_per_epoch, minimum=1)
        self.min_interval_s = require_positive_float("min_interval_s", min_interval_s)
        self.accuracy = require_bool("accuracy", accuracy)
        dpi = require_int("dpi", dpi, minimum=20, maximum=300)
        if figsize is None:
            figsize = (9.0, 2.9) if self.accuracy else (7.5, 2.9)
        with plt.ioff():
            self.figure: Figure = plt.figure(figsize=figsize, dpi=dpi)
        self._build_axes()
        self.draw_count = 0
        self.draw_seconds = 0.0
        self.callback_seconds = 0.0
        self.display_seconds = 0.0
        self._display_handle: Any = None
        self._last_draw = -np.inf
        self._live = False
        self._background: Any = None  # the figure without its curves, for blitting
        self._background_key: tuple[Any, ...] | None = None  # the limits and size it was drawn with
        self.figure.canvas.mpl_connect("draw_event", self._on_draw)
        self.set_extent(total_epochs or 1, iterations_per_epoch or 1)
        self._planned = (total_epochs, iterations_per_epoch)
        self.update([], [])
        # A figure's first draw is the slowest (it creates the ticks and lays out every text): pay for
        # it here rather than during training. The empty axes it draws are the blitting background.
        self.figure.canvas.draw()

    # ------------------------------------------------------------------ layout, built once
    def _build_axes(self) -> None:
        fig = self.figure
        widths = (2.2, 1.0, 1.0) if self.accuracy else (2.2, 1.0)
        spec = fig.add_gridspec(1, len(widths), width_ratios=widths, wspace=0.32,
                                left=0.065, right=0.99, top=0.88, bottom=0.17)
        self.ax_iterations = fig.add_subplot(spec[0])
        self.ax_loss = fig.add_subplot(spec[1])
        self.ax_accuracy = fig.add_subplot(spec[2]) if self.accuracy else None
        ax = self.ax_iterations
        ax.set_title("loss of each iteration (batch mean)", fontsize=9)
        ax.set_xlabel("iteration", fontsize=8, labelpad=1)
        ax.set_ylabel("cross-entropy", fontsize=8)
        (self.iteration_line,) = ax.plot([], [], color=COLOURS["iteration"], lw=0.8)
        (self.boundary_line,) = ax.plot([], [], color=COLOURS["boundary"], lw=0.8, ls=":",
                                        transform=ax.get_xaxis_transform(), label="epoch boundary")
        ax.legend(loc="upper right", fontsize=7, frameon=False)
        ax = self.ax_loss
        ax.set_title("loss per epoch", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8, labelpad=1)
        (self.train_loss_line,) = ax.plot([], [], "o-", ms=3, lw=1.2, color=COLOURS["train"],
                                          label="train (sample mean)")
        (self.val_loss_line,) = ax.plot([], [], "s-", ms=3, lw=1.2, color=COLOURS["val"],
                                        label="validation")
        ax.legend(loc="upper right", fontsize=7, frameon=False)
        self.train_accuracy_line: Line2D | None = None
        self.val_accuracy_line: Line2D | None = None
        if self.ax_accuracy is not None:
            ax = self.ax_accuracy
            ax.set_title("accuracy per epoch", fontsize=9)
            ax.set_xlabel("epoch", fontsize=8, labelpad=1)
            ax.set_ylim(0.0, 1.02)
            (self.train_accuracy_line,) = ax.plot([], [], "o-", ms=3, lw=1.2, color=COLOURS["train"],
                                                  label="train")
            (self.val_accuracy_line,) = ax.plot([], [], "s-", ms=3, lw=1.2, color=COLOURS["val"],
                                                label="validation")
            ax.legend(loc="lower right", fontsize=7, frameon=False)
        for ax in self.figure.axes:
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.25, lw=0.6)
        # Few tick labels: text is most of the cost of a full draw.
        for ax in self.figure.axes:
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))

    def _epoch_axes(self) -> list[Any]:
        return [ax for ax in (self.ax_loss, self.ax_accuracy) if ax is not None]

    def set_extent(self, total_epochs: int, iterations_per_epoch: int) -> None:
        """Fix the x-axes for a run of ``total_epochs`` × ``iterations_per_epoch`` iterations."""
        total_epochs = require_int("total_epochs", total_epochs, minimum=1)
        iterations_per_epoch = require_int("iterations_per_epoch", iterations_per_epoch, minimum=1)
        self.total_epochs, self.iterations_per_epoch = total_epochs, iterations_per_epoch
        self.ax_iterations.set_xlim(-0.5, max(total_epochs * iterations_per_epoch - 0.5, 0.5))
        for ax in self._epoch_axes():
            ax.set_xlim(0.5, total_epochs + 0.5)

    # ------------------------------------------------------------------ drawing
    @property
    def boundaries(self) -> np.ndarray:
        """x positions of the epoch boundary lines now drawn."""
        x = np.asarray(self.boundary_line.get_xdata(), dtype=float)
        return x[0::3] if len(x) else x

    def _data_lines(self) -> list[Line2D]:
        lines = [self.iteration_line, self.boundary_line, self.train_loss_line, self.val_loss_line,
                 self.train_accuracy_line, self.val_accuracy_line]
        return [line for line in lines if line is not None]

    def update(
        self,
        iteration_losses: Sequence[float],
        epoch_starts: Sequence[int],
        train_loss: Sequence[float] = (),
        val_loss: Sequence[float] = (),
        train_accuracy: Sequence[float] = (),
        val_accuracy: Sequence[float] = (),
    ) -> bool:
        """Set every curve's data (plain sequences of floats) and fit the loss axes; no drawing.

        The loss axes run from 0 to 10 % above the largest finite loss. While training (live) they only
        ever grow, so that most refreshes redraw the curves alone; returns True when a limit changed.
        """
        losses = np.asarray(iteration_losses, dtype=float)
        self.iteration_line.set_data(np.arange(len(losses)), losses)
        self.boundary_line.set_data(*_vertical_lines(boundary_positions(epoch_starts)))
        pairs = [(self.train_loss_line, train_loss), (self.val_loss_line, val_loss),
                 (self.train_accuracy_line, train_accuracy), (self.val_accuracy_line, val_accuracy)]
        for line, values in pairs:
            if line is not None:
                line.set_data(np.arange(1, len(values) + 1), np.asarray(values, dtype=float))
        changed = self._fit(self.ax_iterations, losses)
        epoch_losses = np.asarray([*train_loss, *val_loss], dtype=float)
        return self._fit(self.ax_loss, epoch_losses) or changed

    def _fit(self, ax: Any, values: np.ndarray) -> bool:
        finite = values[np.isfinite(values)]
        top = 1.1 * float(finite.max()) if len(finite) else _DEFAULT_TOP
        top = max(top, 1e-3)
        current = ax.get_ylim()[1]
        if self._live and top <= current:
            return False
        if self._live:
            top = max(top, 1.25 * current)  # grow in steps, not at every new maximum
        if top == current and ax.get_ylim()[0] == 0.0:
            return False
        ax.set_ylim(0.0, top)
        return True

    def redraw(self) -> None:
        """Render everything now: ``canvas.draw()`` (ipympl also sends the image, even while the kernel
        is busy)."""
        started = time.perf_counter()
        self.figure.canvas.draw()
        self.draw_seconds += time.perf_counter() - started
        self.draw_count += 1

    def _view_key(self) -> tuple[Any, ...]:
        """What a saved background depends on: every axis limit and the canvas size."""
        limits = tuple((*ax.get_xlim(), *ax.get_ylim()) for ax in self.figure.axes)
        return (*limits, self.figure.canvas.get_width_height())

    def _blit(self) -> None:
        """Redraw only the curves over the saved background, then send the image."""
        started = time.perf_counter()
        canvas = self.figure.canvas
        canvas.restore_region(self._background)
        self._draw_data_lines()
        canvas.blit(self.figure.bbox)
        self.draw_seconds += time.perf_counter() - started
        self.draw_count += 1

    def _draw_data_lines(self) -> None:
        for line in self._data_lines():
            line.axes.draw_artist(line)

    def _on_draw(self, _event: Any) -> None:
        # After every full draw. While live the curves are "animated", so the draw left them out: keep
        # that background for blitting and draw the curves on top before the image is sent. Outside
        # training a draw is a valid background only while the curves are empty.
        canvas = self.figure.canvas
        empty = all(len(line.get_xdata()) == 0 for line in self._data_lines())
        if (self._live or empty) and hasattr(canvas, "copy_from_bbox"):
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            self._background_key = self._view_key()
            if self._live:
                self._draw_data_lines()
        else:
            self._background = self._background_key = None

    def _set_live(self, live: bool) -> None:
        canvas = self.figure.canvas
        self._live = live and hasattr(canvas, "copy_from_bbox") and hasattr(canvas, "restore_region")
        for line in self._data_lines():
            line.set_animated(self._live)

    def _render(self) -> None:
        """Blit when the saved background still fits (same limits and size), else draw in full."""
        if self._live and self._background is not None and self._background_key == self._view_key():
            self._blit()
        else:
            self.redraw()

    def show_history(self, history: History) -> LiveTrainingPlot:
        """Draw a finished (or stopped) run's :class:`~batchlab.training.History`; returns ``self``."""
        if not isinstance(history, History):
            raise TypeError(f"history must be a batchlab.training.History, got {type(history).__name__}")
        plan = history.plan
        self._set_live(False)
        self.set_extent(max(plan.epochs, 1), max(plan.iterations_per_epoch, 1))
        self._update_from(history, [])
        self.figure.canvas.draw_idle()
        return self

    def show(self) -> LiveTrainingPlot:
        """Display the canvas in a notebook (ipympl: a live canvas plus a static image for readers).

        When training ends the displayed output is replaced by the finished figure, so a saved notebook
        shows the final curves. Returns ``self``.
        """
        from IPython.display import display

        self._display_handle = display(self.figure.canvas, display_id=True)
        return self

    def _update_from(self, history: History, pending: list[float]) -> bool:
        return self.update(history.iteration_losses + pending, history.epoch_starts, history.train_loss,
                           history.val_loss, history.train_accuracy, history.val_accuracy)

    def _refresh(self, state: TrainingState) -> None:
        if time.perf_counter() - self._last_draw < self.min_interval_s:
            return
        self._update_from(state.history, state.pending_losses())
        self._render()
        self._last_draw = time.perf_counter()

    # ------------------------------------------------------------------ Callback hooks
    def on_train_start(self, state: TrainingState) -> None:
        started = time.perf_counter()
        plan = state.history.plan
        epochs, per_epoch = self._planned
        self.set_extent(epochs or max(plan.epochs, 1), per_epoch or max(plan.iterations_per_epoch, 1))
        self.draw_count, self.draw_seconds, self.display_seconds = 0, 0.0, 0.0
        self._set_live(False)
        self.update([], [])  # empty curves, limits for an empty run
        self._set_live(True)
        # No drawing yet: the first refresh, ``min_interval_s`` into the run, blits onto the empty axes
        # drawn before (or draws in full once if the limits changed since).
        self._last_draw = time.perf_counter()
        self.callback_seconds = self._last_draw - started

    def on_iteration_end(self, state: TrainingState) -> None:
        started = time.perf_counter()
        self._refresh(state)
        self.callback_seconds += time.perf_counter() - started

    def on_epoch_end(self, state: TrainingState) -> None:
        started = time.perf_counter()
        self._refresh(state)
        self.callback_seconds += time.perf_counter() - started

    def on_train_end(self, state: TrainingState) -> None:
        started = time.perf_counter()
        self._update_from(state.history, [])  # the final curves
        self._render()
        self._set_live(False)  # the canvas already shows them; later draws include the curves again
        if self._display_handle is not None:  # store the finished figure as the displayed image
            shown = time.perf_counter()
            self._display_handle.update(self.figure.canvas)
            self.display_seconds = time.perf_counter() - shown
        self.callback_seconds += time.perf_counter() - started
