"""Plots of a batch-size sweep (notebook 04): learning curves, the summary against B, loss slices.

* :func:`plot_curves`: a per-epoch metric of each batch size against epochs or updates, the mean over
  seeds as a line and ± one standard deviation as a band, with early stopping's pick (the epoch of
  lowest validation loss, ``History.best_epoch``) of each seed marked;
* :func:`plot_against_batch_size`: one number per ``(regime, B)`` (e.g. final validation accuracy)
  against ``B`` on a log axis, one line per regime, error bars over seeds;
* :func:`plot_slices`: 1-D loss slices around several solutions;
* :func:`plot_values_by_batch`: a measurement per seed (e.g. sharpness) against ``B``, mean ± std;
* :class:`SweepFigure`: the live app's view, the sweep's curves for one regime with one run overlaid,
  updated in place (:meth:`SweepFigure.set_live`) at throttled moments, like every live view
  (:mod:`batchlab.plots.live`).

Colours follow the batch size (small B dark, large B light) in every figure. Nothing here imports
ipywidgets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from batchlab.experiments import METRICS, Sweep, mean_curve
from batchlab.history import History
from batchlab.plots.style import DPI, FULL_WIDTH, batch_size_color
from batchlab.validation import require_choice, require_int

__all__ = ["SweepFigure", "batch_colours", "new_figure", "plot_against_batch_size", "plot_curves",
           "plot_slices", "plot_values_by_batch"]

LABELS = {"train_loss": "training loss", "val_loss": "validation loss", "train_accuracy": "training accuracy",
          "val_accuracy": "validation accuracy"}
X_LABELS = {"epochs": "epochs", "updates": "updates (optimizer steps)"}
REGIME_STYLES = ("-o", "--s", ":^", "-.D", "-v", "--P")


def batch_colours(batch_sizes: Sequence[int]) -> dict[int, Any]:
    """A colour per batch size: :func:`~batchlab.plots.style.batch_size_color`, the same in every notebook.

    Taught in: notebook 04 § 8. Sharp and flat minima.
    """
    return {b: batch_size_color(int(b)) for b in batch_sizes}


def new_figure(ncols: int = 1, *, figsize: tuple[float, float] = (FULL_WIDTH, 3.8),
               dpi: int = DPI) -> tuple[Figure, list[Axes]]:
    """A plain matplotlib figure (``figsize`` in inches, ``dpi``) with ``ncols`` axes side by side,
    constrained layout. Nothing registers it anywhere: a notebook cell shows it by ending with ``fig``,
    and a cell run again simply makes a new one.

    Taught in: notebook 04 § 3. Equal epochs: the large batches fall behind.
    """
    ncols = require_int("ncols", ncols, minimum=1, maximum=12)
    fig = Figure(figsize=figsize, dpi=require_int("dpi", dpi, minimum=20, maximum=300))
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    fig.set_layout_engine("constrained")
    return fig, list(axes)


def plot_curves(ax: Axes, sweep: Sweep, regime: str, metric: str, *, x: str = "epochs",
                mark_best: bool = True, label: bool = True) -> dict[int, Any]:
    """Draw ``metric`` against ``x`` for each batch size of ``regime``: mean line, ± std band.

    With ``mark_best``, each seed's early-stopping epoch (lowest validation loss) gets a marker on the
    mean curve. Returns ``{B: line}``.

    Taught in: notebook 04 § 3. Equal epochs: the large batches fall behind.
    """
    metric = require_choice("metric", metric, METRICS)
    x = require_choice("x", x, tuple(X_LABELS))
    colours = batch_colours(sweep.config.batch_sizes)
    lines = {}
    for b in sweep.config.batch_sizes:
        runs = sweep.select(regime, b)
        if not runs:
            continue
        xs, mean, std = mean_curve(runs, metric, x)
        (line,) = ax.plot(xs, mean, "-", color=colours[b], lw=1.6, label=f"B = {b}" if label else None)
        if len(runs) > 1:
            ax.fill_between(xs, mean - std, mean + std, color=colours[b], alpha=0.2, lw=0)
        if mark_best:
            best = sorted({r.history.best_epoch for r in runs if r.history.best_epoch < len(xs)})
            ax.plot(xs[best], mean[best], "v", color=colours[b], mec="black", mew=0.6, ms=6, zorder=5)
        lines[b] = line
    ax.set_xlabel(X_LABELS[x])
    ax.set_ylabel(LABELS[metric])
    if x == "updates":
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    return lines


def plot_against_batch_size(ax: Axes, values: Mapping[str, Mapping[int, tuple[float, float]]], *,
                            ylabel: str, scale: float = 1.0) -> dict[str, Any]:
    """One line per regime: ``values[regime][B] = (mean, std)`` against B (log axis), error bars.

    ``scale`` multiplies the values (e.g. 100 for percent). Returns ``{regime: errorbar container}``.

    Taught in: notebook 04 § Is that a generalization gap?.
    """
    drawn = {}
    for style, (regime, by_batch) in zip(REGIME_STYLES, values.items(), strict=False):
        sizes = sorted(by_batch)
        means = np.array([by_batch[b][0] for b in sizes]) * scale
        stds = np.array([by_batch[b][1] for b in sizes]) * scale
        drawn[regime] = ax.errorbar(sizes, means, yerr=stds, fmt=style, capsize=3, ms=5, lw=1.5,
                                    label=regime)
    _batch_size_axis(ax, sorted({b for by_batch in values.values() for b in by_batch}), ylabel)
    return drawn


def plot_slices(ax: Axes, distances: Sequence[float] | np.ndarray, slices: Mapping[int, np.ndarray], *,
                colours: Mapping[int, Any] | None = None) -> dict[int, Any]:
    """Loss slices ``slices[B]`` (one loss per distance) against the filter-normalised distance.

    Taught in: notebook 04 § 8. Sharp and flat minima.
    """
    colours = colours or batch_colours(sorted(slices))
    lines = {}
    for b, losses in slices.items():
        (lines[b],) = ax.plot(distances, losses, color=colours[b], lw=1.8, label=f"B = {b}")
    ax.set_xlabel("distance t along a filter-normalised direction")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    return lines


def plot_values_by_batch(ax: Axes, values: Mapping[int, Sequence[float]], *, ylabel: str,
                         colours: Mapping[int, Any] | None = None) -> Any:
    """Per-seed measurements ``values[B]`` against B (log axis): dots per seed, mean ± std bar.

    Taught in: notebook 04 § 8. Sharp and flat minima.
    """
    sizes = sorted(values)
    colours = colours or batch_colours(sizes)
    for b in sizes:
        ax.plot([b] * len(values[b]), values[b], "o", color=colours[b], alpha=0.5, ms=4)
    means = [float(np.mean(values[b])) for b in sizes]
    stds = [float(np.std(values[b])) for b in sizes]
    container = ax.errorbar(sizes, means, yerr=stds, fmt="-", color="black", capsize=4, lw=1.2)
    _batch_size_axis(ax, sizes, ylabel)
    return container


def _batch_size_axis(ax: Axes, sizes: Sequence[int], ylabel: str) -> None:
    """A log2 x-axis ticked at exactly the batch sizes ``sizes``, labelled, with a light grid."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(b) for b in sizes])
    ax.minorticks_off()
    ax.set_xlabel("batch size B")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


class SweepFigure:
    """The live app's view: loss (left) and validation accuracy (right) of one regime.

    Background: the sweep's mean curves of every batch size of the regime (thin; the selected B
    thicker). Foreground, in black: a live run's training loss (dashed), validation loss and validation
    accuracy (solid), and its early-stopping epoch (a star), set with :meth:`set_live`.

    Attributes: ``fig``, ``loss_ax``, ``acc_ax``, ``live_lines`` (``{metric:
    Line2D}`` for ``train_loss``, ``val_loss``, ``val_accuracy``), ``best_marker``, ``sweep_lines``
    (``{(metric, B): Line2D}``), ``title``.
    """

    def __init__(self) -> None:
        self.fig, (self.loss_ax, self.acc_ax) = new_figure(2, figsize=(8.5, 3.1), dpi=80)
        self.sweep_lines: dict[tuple[str, int], Any] = {}
        live = {"color": "black", "zorder": 5}
        self.live_lines = {
            "train_loss": self.loss_ax.plot([], [], "--", lw=1.4, label="this run: train", **live)[0],
            "val_loss": self.loss_ax.plot([], [], "-", lw=1.8, label="this run: val", **live)[0],
            "val_accuracy": self.acc_ax.plot([], [], "-", lw=1.8, label="this run", **live)[0],
        }
        (self.best_marker,) = self.acc_ax.plot([], [], "*", ms=13, **live,
                                               label="this run: early stop")
        self.title = self.fig.suptitle("", fontsize=12)
        self.x = "epochs"
        self.loss_ax.set_ylabel("loss (nats)")
        self.acc_ax.set_ylabel("validation accuracy")
        for ax in (self.loss_ax, self.acc_ax):
            ax.grid(alpha=0.3)

    def show_sweep(self, sweep: Sweep | None, regime: str | None, batch_size: int, x: str) -> None:
        """Replace the background by ``regime``'s sweep curves against ``x`` (none if ``regime`` is None)."""
        x = require_choice("x", x, tuple(X_LABELS))
        for line in self.sweep_lines.values():
            line.remove()
        self.sweep_lines = {}
        self.x = x
        if sweep is not None and regime is not None:
            colours = batch_colours(sweep.config.batch_sizes)
            for b in sweep.config.batch_sizes:
                runs = sweep.select(regime, b)
                if not runs:
                    continue
                chosen = b == batch_size
                style = {"color": colours[b], "lw": 2.2 if chosen else 1.0,
                         "alpha": 0.9 if chosen else 0.45, "zorder": 3 if chosen else 2}
                for metric, ax in (("val_loss", self.loss_ax), ("val_accuracy", self.acc_ax)):
                    xs, mean, _ = mean_curve(runs, metric, x)
                    label = f"sweep B = {b}" if metric == "val_accuracy" else None
                    (self.sweep_lines[(metric, b)],) = ax.plot(xs, mean, "-", label=label, **style)
        for ax in (self.loss_ax, self.acc_ax):
            ax.set_xlabel(X_LABELS[x])
        self.acc_ax.legend(fontsize=10, loc="lower right")
        self.loss_ax.legend(handles=[self.live_lines["train_loss"], self.live_lines["val_loss"]],
                            fontsize=10, loc="upper right")
        self._rescale()

    def set_live(self, history: History | None) -> None:
        """Show ``history``'s per-epoch curves as the live run (None clears them)."""
        for metric, line in self.live_lines.items():
            line.set_data(*(([], []) if history is None else mean_curve([history], metric, self.x)[:2]))
        best = None if history is None else history.best_epoch
        xs, ys = self.live_lines["val_accuracy"].get_data()
        self.best_marker.set_data(*(([], []) if best is None else ([xs[best]], [ys[best]])))
        self._rescale()

    def _rescale(self) -> None:
        for ax in (self.loss_ax, self.acc_ax):
            ax.relim()
            ax.autoscale_view()
        self.acc_ax.set_ylim(0.0, 1.0)
        high = self.loss_ax.get_ylim()[1]
        self.loss_ax.set_ylim(0.0, max(min(high, 3.0), 0.5))
