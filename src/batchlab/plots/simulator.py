"""The training simulator's figure (notebook 06): a live loss chart above a batch-progress view.

* **Loss chart**: the training loss of every iteration (the batch's mean loss, thin line), the
  per-epoch training loss (per-sample mean over the epoch) and validation loss (markers at the end of
  each epoch), dotted lines at the epoch boundaries, and the chance level ``ln 10``. The x-axis counts
  iterations from 1 to the planned total (``I × E``), so the curve fills the chart from left to right;
  the top axis counts epochs.
* **Batch progress**: every training sample is one cell, coloured *to come*, *done this epoch*,
  *current batch* or *dropped* (``drop_last``). The grid lays the samples out by index, so a batch
  shows up scattered (each epoch reshuffles); the strip below shows the same epoch in its shuffled
  order, where batches are consecutive slices.

Every update changes the existing artists in place (``set_data``, ``set_text``); the caller then syncs
the live view (:func:`batchlab.plots.live.request_redraw`), at a throttled rate during training
(:mod:`batchlab.apps.live`).

Nothing here imports ipywidgets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from batchlab import arithmetic
from batchlab.data import CHANCE_LOSS
from batchlab.markup import html_key
from batchlab.plots.batches import COLOURS, IterationCurve, split_into_batches
from batchlab.validation import require_bool, require_float, require_int

__all__ = ["STATES", "STATE_COLOURS", "SimulatorFigure", "envelope", "epoch_end_positions", "grid_shape",
           "key_html", "sample_states"]

#: Codes of the batch-progress cells (``EMPTY`` pads the last row of the grid).
STATES = ("to come", "done this epoch", "current batch", "dropped (drop_last)")
TO_COME, DONE, CURRENT, DROPPED, EMPTY = range(5)
STATE_COLOURS = ("#dde3ea", "#6f9fd8", COLOURS["current"], COLOURS["dropped"], "#ffffff")
#: Colour and meaning of each line of the loss chart (the figure's key, :func:`key_html`).
LINES = {"iteration": ("#9ab9e0", "training loss per iteration (batch mean)"),
         "train": ("#1f4e9a", "training loss per epoch (sample mean)"),
         "val": ("#1b7837", "validation loss per epoch"),
         "chance": ("#7b8794", f"chance level ln 10 ≈ {CHANCE_LOSS:.2f} (dashed)")}
Y_CAP = 1e4  # the loss axis never extends above this (a diverging run would squash the chart)
MAX_LINE_POINTS = 2000  # above this, the per-iteration line is drawn as its min/max envelope


def sample_states(order: Sequence[int] | np.ndarray, batches_done: int, batch_size: int,
                  drop_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """State codes of every sample after ``batches_done`` batches of an epoch.

    ``order`` is the epoch's sample order (a permutation of ``0..N-1``, shape ``(N,)``); batch ``k``
    (0-based) is ``order[k·B:(k+1)·B]``. After ``batches_done`` batches (0 to I) the last of them is the
    *current* batch, the earlier ones are *done*, the rest *to come*; with ``drop_last`` the last
    ``N mod B`` positions are *dropped*. Returns ``(by_index, by_position)``, both int8 of shape ``(N,)``:
    ``by_index[i]`` is the state of sample ``i``, ``by_position[p]`` that of the sample at position
    ``p`` of the order. Codes: 0 to come, 1 done, 2 current, 3 dropped (see :data:`STATES`).

    >>> sample_states([3, 0, 4, 1, 2], batches_done=2, batch_size=2, drop_last=True)[1].tolist()
    [1, 1, 2, 2, 3]
    """
    split = split_into_batches(order, batch_size, drop_last)
    require_int("batch_size", batch_size, minimum=1, maximum=max(len(order), 1))
    batches_done = require_int("batches_done", batches_done, minimum=0, maximum=split.iterations)
    by_index = np.full(len(order), TO_COME, dtype=np.int8)
    by_index[split.dropped] = DROPPED
    if batches_done:
        by_index[np.concatenate(split.batches[:batches_done])] = DONE
        by_index[split.batches[batches_done - 1]] = CURRENT
    return by_index, by_index[np.asarray(order)]


def grid_shape(n_cells: int, aspect: float) -> tuple[int, int]:
    """``(rows, columns)`` of a grid holding ``n_cells`` roughly square cells in a box ``aspect`` wide
    per unit of height. The last row may be partly empty.

    >>> grid_shape(100, 4.0), grid_shape(1347, 5.0)
    ((5, 20), (17, 83))
    """
    n_cells = require_int("n_cells", n_cells, minimum=1)
    aspect = require_float("aspect", aspect, minimum=0, strict_min=True)
    columns = min(n_cells, max(1, math.ceil(math.sqrt(n_cells * aspect))))
    return math.ceil(n_cells / columns), columns


def epoch_end_positions(iterations_per_epoch: int, epochs: int) -> np.ndarray:
    """x positions of the per-epoch markers: on the boundary after each of the first ``epochs`` epochs.

    >>> epoch_end_positions(4, 3).tolist()
    [4.5, 8.5, 12.5]
    """
    per_epoch = require_int("iterations_per_epoch", iterations_per_epoch, minimum=1)
    epochs = require_int("epochs", epochs, minimum=0)
    return per_epoch * np.arange(1, epochs + 1, dtype=float) + 0.5


def envelope(values: Sequence[float] | np.ndarray,
             max_points: int = MAX_LINE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` to draw ``values`` (plotted at x = 1, 2, …) with at most ``max_points`` points.

    Up to ``max_points`` values are returned as they are. Longer series are cut into
    ``max_points // 2`` consecutive bins and each bin is drawn as a vertical stroke from its minimum to
    its maximum at the bin's centre: on a chart a few hundred pixels wide this looks like the full
    line (every spike is kept), but costs a fixed time to draw however long the run is. A NaN in a bin
    makes its stroke NaN (a gap, as the full line would show).

    >>> envelope([3.0, 1.0, 2.0, 5.0, 4.0, 0.5], max_points=4)
    (array([2., 2., 5., 5.]), array([1. , 3. , 0.5, 5. ]))
    """
    y = np.asarray(values, dtype=float)
    max_points = require_int("max_points", max_points, minimum=2)
    if y.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {y.shape}")
    if len(y) <= max_points:
        return np.arange(1, len(y) + 1, dtype=float), y
    starts = np.linspace(0, len(y), max_points // 2, endpoint=False).astype(np.int64)
    ends = np.append(starts[1:], len(y))
    centres = (starts + ends + 1) / 2  # x of iteration k is k + 1
    lows = np.minimum.reduceat(y, starts)
    highs = np.maximum.reduceat(y, starts)
    return np.repeat(centres, 2), np.column_stack([lows, highs]).ravel()


def _loss_limits(losses: np.ndarray, epoch_losses: list[np.ndarray]) -> tuple[float, float]:
    """y-range of the log loss axis: everything finite, but the bottom no lower than a twentieth of
    the lowest per-epoch loss (single-sample losses of B = 1 reach 1e-6 and would squash the chart)."""
    finite = [v[np.isfinite(v) & (v > 0)] for v in (losses, *epoch_losses)]
    every = np.concatenate(finite)
    per_epoch = np.concatenate([np.empty(0), *finite[1:]])
    if not len(every):
        return 0.1, 4.0
    low = max(float(every.min()), float(per_epoch.min()) / 20 if len(per_epoch) else 0.0)
    high = float(every.max())
    low = low / 1.3
    high = min(max(high * 1.3, CHANCE_LOSS * 1.3), Y_CAP)
    return max(min(low, high / 10), 1e-6), high


def key_html() -> str:
    """The figure's key as HTML (line styles and cell colours with what they mean).

    The key sits beside the figure rather than in it: the figure is redrawn many times during a run,
    and legends are among the costliest things to draw; the key never changes.
    """
    return html_key([(c, t, "line") for c, t in LINES.values()]
                    + [(c, t, "box") for c, t in zip(STATE_COLOURS, STATES, strict=False)])


class SimulatorFigure:
    """The simulator's figure; update it with :meth:`set_plan`, :meth:`set_curves`, :meth:`set_batch` and
    ``status.set_text``.

    Public artists (tests read them): ``iteration_line`` (x = iteration 1, 2, …; y = its loss; drawn
    as its :func:`envelope` beyond 2,000 iterations, the full series is ``iteration_losses``),
    ``train_line`` and ``val_line`` (per-epoch losses at :func:`epoch_end_positions`), ``boundaries``
    (a ``LineCollection`` of the epoch boundaries), ``chance_line``, ``grid_image`` (rows × columns
    state codes, samples by index), ``order_image`` (1 × N, samples in the epoch's order),
    ``batch_ticks`` (lines between the batches of the order strip), ``status`` (a text line).
    """

    def __init__(self, *, figsize: tuple[float, float] = (8.0, 4.8), dpi: int = 80) -> None:
        self.fig = Figure(figsize=figsize, dpi=require_int("dpi", dpi, minimum=20, maximum=300))
        spec = self.fig.add_gridspec(3, 1, height_ratios=(3.0, 1.25, 0.22), hspace=0.55,
                                     left=0.085, right=0.985, top=0.88, bottom=0.03)
        self.loss_ax = self.fig.add_subplot(spec[0])
        self.grid_ax = self.fig.add_subplot(spec[1])
        self.order_ax = self.fig.add_subplot(spec[2])
        self._plan = arithmetic.TrainingPlan(1, 1, 1)  # the run being shown (set_plan)
        ax = self.loss_ax
        ax.set_yscale("log")
        ax.set_xlabel("iteration", fontsize=9, labelpad=1)
        ax.set_ylabel("cross-entropy loss", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, which="major", axis="y", color="#e4e7eb", lw=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=7))
        # Plain numbers at 1-2-5 steps (0.1, 0.2, 0.5, 1, 2 …), no labels on the minor ticks.
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        # No legend in the figure: the key is HTML beside it (key_html).
        self.curve = IterationCurve(ax, LINES["iteration"][0], "#9aa5b1", thin=envelope)
        self.iteration_line = self.curve.line
        self.boundaries = self.curve.boundaries
        (self.train_line,) = ax.plot([], [], "o-", color=LINES["train"][0], lw=1.2, ms=3)
        (self.val_line,) = ax.plot([], [], "s-", color=LINES["val"][0], lw=1.5, ms=3.5)
        self.chance_line = ax.axhline(CHANCE_LOSS, color=LINES["chance"][0], lw=0.9, ls="--")
        self.epoch_axis = ax.secondary_xaxis(
            "top", functions=(lambda x: (x - 0.5) / self._plan.iterations_per_epoch,
                              lambda e: e * self._plan.iterations_per_epoch + 0.5))
        self.epoch_axis.set_xlabel("epoch", fontsize=8, labelpad=2)
        self.epoch_axis.tick_params(labelsize=7)
        self.epoch_axis.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=7))
        self.status = self.fig.text(0.01, 0.99, "", ha="left", va="top", fontsize=9.5,
                                    fontweight="bold", color=COLOURS["ink"])
        cmap = ListedColormap(STATE_COLOURS)
        for ax in (self.grid_ax, self.order_ax):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color("#c8ced6")
        image_style = {"cmap": cmap, "vmin": -0.5, "vmax": len(STATE_COLOURS) - 0.5, "aspect": "auto",
                       "interpolation": "nearest"}
        self.grid_image = self.grid_ax.imshow(np.full((1, 1), TO_COME), **image_style)
        self.order_image = self.order_ax.imshow(np.full((1, 1), TO_COME), **image_style)
        self.grid_lines = LineCollection([], colors="white", linewidths=0.7)
        self.grid_ax.add_collection(self.grid_lines, autolim=False)
        self.batch_ticks = LineCollection([], colors="white", linewidths=0.8)
        self.order_ax.add_collection(self.batch_ticks, autolim=False)
        self.grid_title = self.grid_ax.set_title("", fontsize=8.5, loc="left", pad=3)
        self.order_title = self.order_ax.set_title("", fontsize=8.5, loc="left", pad=3)

    # ----------------------------------------------------------------- updates (in place)
    def set_plan(self, n_samples: int, batch_size: int, epochs: int, drop_last: bool = False,
                 *, title: str = "") -> None:
        """Start over for a run of ``epochs`` epochs over ``n_samples`` samples in batches of
        ``batch_size``: empty curves, x-axis from iteration 1 to ``I × E``, every sample *to come*."""
        n = require_int("n_samples", n_samples, minimum=1)
        b = require_int("batch_size", batch_size, minimum=1, maximum=n)
        epochs = require_int("epochs", epochs, minimum=1)
        drop_last = require_bool("drop_last", drop_last)
        plan = arithmetic.TrainingPlan(n, b, epochs, drop_last)
        self._plan = plan
        self.loss_ax.set_xlim(0.5, plan.total_iterations + 0.5)
        self.set_curves(np.empty(0), [], [], [])
        width, height = self._box_pixels(self.grid_ax)
        rows, columns = grid_shape(n, width / height)
        self.grid_image.set_extent((-0.5, columns - 0.5, rows - 0.5, -0.5))
        if min(width / columns, height / rows) >= 4:  # thin white lines between cells
            self.grid_lines.set_segments(
                [[(c - 0.5, -0.5), (c - 0.5, rows - 0.5)] for c in range(1, columns)]
                + [[(-0.5, r - 0.5), (columns - 0.5, r - 0.5)] for r in range(1, rows)])
        else:
            self.grid_lines.set_segments([])
        self.order_image.set_extent((-0.5, n - 0.5, 0.5, -0.5))
        # Separators between batches in the order strip, when they are at least 3 pixels apart.
        strip_width, _ = self._box_pixels(self.order_ax)
        if plan.iterations_per_epoch > 1 and strip_width * b / n >= 3:
            edges = [end - 0.5 for _, end in arithmetic.batch_bounds(n, b, drop_last) if end < n]
            self.batch_ticks.set_segments([[(x, -0.5), (x, 0.5)] for x in edges])
        else:
            self.batch_ticks.set_segments([])
        # Before training, no order is drawn yet: the grid is all "to come"; the strip already
        # shows which *positions* drop_last will discard.
        _, by_position = sample_states(np.arange(n), 0, b, drop_last)
        cells = np.full(rows * columns, EMPTY, dtype=np.int8)
        cells[:n] = TO_COME
        self.grid_image.set_data(cells.reshape(rows, columns))
        self.order_image.set_data(by_position.reshape(1, -1))
        self.grid_title.set_text(f"Before training: the {n:,} training samples by index (cell i = "
                                 "sample i); each epoch draws a new order")
        self.order_title.set_text(f"An epoch's order, cut into {plan.iterations_per_epoch:,} batch"
                                  f"{'es' * (plan.iterations_per_epoch != 1)} of {b:,}"
                                  + (f"; drop_last discards the last {plan.samples_dropped:,}"
                                     if plan.samples_dropped else ""))
        self.status.set_text(title)

    def _box_pixels(self, ax) -> tuple[float, float]:
        box = ax.get_position()
        width, height = self.fig.get_size_inches() * self.fig.dpi
        return max(box.width * width, 1.0), max(box.height * height, 1.0)

    def set_curves(self, iteration_losses: Sequence[float] | np.ndarray, epoch_starts: Sequence[int],
                   train_loss: Sequence[float], val_loss: Sequence[float]) -> None:
        """Show the losses measured so far.

        ``iteration_losses``: one per iteration (plotted at x = 1, 2, …); ``epoch_starts``: 0-based
        iteration index where each epoch began (boundaries between them); ``train_loss`` and
        ``val_loss``: one per completed epoch (plotted at :func:`epoch_end_positions`). Non-finite
        values are left out of the y-range (NaN leaves a gap; the axis stops at ``1e4``).
        """
        losses = self.curve.set(iteration_losses, epoch_starts)
        train = np.asarray(train_loss, dtype=float)
        val = np.asarray(val_loss, dtype=float)
        self.iteration_losses = losses
        self.train_line.set_data(epoch_end_positions(self._plan.iterations_per_epoch, len(train)), train)
        self.val_line.set_data(epoch_end_positions(self._plan.iterations_per_epoch, len(val)), val)
        self.boundaries.set_alpha(1.0 if len(epoch_starts) <= 31 else 0.45)  # many epochs: lighter lines
        low, high = _loss_limits(losses, [train, val])
        self.loss_ax.set_ylim(low, high)
        # 1-2-5 ticks over up to two decades, one tick per decade beyond.
        subs = (1.0, 2.0, 5.0) if high / low <= 150 else (1.0,)
        self.loss_ax.yaxis.get_major_locator().set_params(subs=subs)

    def set_batch(self, order: Sequence[int] | np.ndarray, batches_done: int, *, epoch: int) -> None:
        """Colour the cells for epoch ``epoch`` (1-based) with ``batches_done`` of its batches run.

        ``order`` is the epoch's sample order (shape ``(N,)``); the last batch run is *current*.
        """
        epoch = require_int("epoch", epoch, minimum=1)
        plan = self._plan
        by_index, by_position = sample_states(order, batches_done, plan.batch_size, plan.drop_last)
        rows, columns = self.grid_image.get_array().shape
        cells = np.full(rows * columns, EMPTY, dtype=np.int8)
        cells[: len(by_index)] = by_index
        self.grid_image.set_data(cells.reshape(rows, columns))
        self.order_image.set_data(by_position.reshape(1, -1))
        size = int((by_position == CURRENT).sum())  # of the current batch
        batch = (f"batch {batches_done} of {plan.iterations_per_epoch} ({size} sample{'s' * (size != 1)})"
                 if batches_done else f"no batch yet of {plan.iterations_per_epoch}")
        self.grid_title.set_text(f"Epoch {epoch}, {batch}: the {plan.n_samples:,} training samples "
                                 "by index (cell i = sample i)")
        self.order_title.set_text("The same epoch in its shuffled order: each batch is the next "
                                  "slice")
