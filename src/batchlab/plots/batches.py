"""Digit thumbnails with the current batch highlighted, and the epoch strip (notebook 01).

Three builders:

* :func:`split_into_batches`: cut one epoch's sample order into batches (and the tail ``drop_last``
  discards), the way a ``DataLoader`` does;
* :class:`BatchFigure`: a grid of real digit thumbnails, each with its sample index and label, above an
  *epoch strip* (the epoch's sample order cut into batches). :meth:`BatchFigure.set_epoch` lays out one
  epoch, :meth:`BatchFigure.set_progress` marks how far the epoch has got. Both update the existing
  artists in place (edge colours, alphas, texts, positions); nothing is redrawn from scratch. Its key
  is HTML for beside the figure (:meth:`BatchFigure.key_html`), not a legend in it;
* :func:`plot_sample` and :func:`plot_batch_matrix`: static figures of one sample (8×8 pixels = 64
  numbers) and of one batch as a ``(B, 64)`` matrix.

Every figure is a plain matplotlib ``Figure`` (no pyplot): a notebook shows a static one by ending its
cell with it; an app shows the live view of its figure (:mod:`batchlab.plots.mirror`). This module
never imports ipywidgets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from batchlab import arithmetic
from batchlab.markup import html_key
from batchlab.plots.style import DPI, FULL_WIDTH
from batchlab.validation import require_int

__all__ = ["COLOURS", "BatchFigure", "EpochBatches", "IterationCurve", "epoch_boundaries",
           "plot_batch_matrix", "plot_sample", "split_into_batches"]

#: The palette shared by the thumbnails and the strip (colour-blind friendly orange/blue/red/grey).
COLOURS = {
    "current": "#e66100",  # frame and strip cell of the batch being trained on
    "pending": "#9aa5b1",  # thin frame of a sample not yet seen this epoch
    "seen": "#c8ced6",  # frame of a sample already seen this epoch (the image is dimmed too)
    "dropped": "#c0392b",  # samples that drop_last discards this epoch
    "ink": "#1f2933",
    "muted": "#7b8794",
    "batch_fill": ("#e3ecf7", "#f4f6f9"),  # alternating backgrounds of the batches in the strip
}
SEEN_ALPHA = 0.25  # alpha of a thumbnail already seen (or dropped) this epoch
CURRENT_WIDTH = 3.5  # frame line width (points) of a thumbnail in the current batch
PLAIN_WIDTH = 1.0
#: How a sample looks in each state, in its thumbnail and its strip cell: (image alpha, frame width, frame
#: style, cell face colour or None for its batch's background, text colour). Frames and cell edges take
#: ``COLOURS[state]``; the current cell's text is white.
LOOKS = {"current": (1.0, CURRENT_WIDTH, "-", COLOURS["current"], COLOURS["ink"]),
         "seen": (SEEN_ALPHA, PLAIN_WIDTH, "-", "#eceff3", COLOURS["muted"]),
         "dropped": (SEEN_ALPHA, 1.5, "--", "white", COLOURS["dropped"]),
         "pending": (1.0, PLAIN_WIDTH, "-", None, COLOURS["ink"])}
GREY = {"cmap": "gray_r", "vmin": 0, "vmax": 1, "interpolation": "nearest"}  # how every digit is drawn


@dataclass(frozen=True)
class EpochBatches:
    """One epoch's sample order cut into batches.

    ``batches[k]`` holds the sample indices of batch ``k`` (0-based); ``dropped`` the indices that
    ``drop_last`` discards (empty without it).
    """

    batches: tuple[np.ndarray, ...]
    dropped: np.ndarray

    @property
    def iterations(self) -> int:
        """Number of batches (iterations) in the epoch."""
        return len(self.batches)


def split_into_batches(order: Sequence[int] | np.ndarray, batch_size: int,
                       drop_last: bool = False) -> EpochBatches:
    """Cut an epoch's sample order into consecutive batches of ``batch_size``.

    ``order`` is the epoch's permutation of the sample indices (shape ``(N,)``). The number of batches
    is :func:`batchlab.arithmetic.iterations_per_epoch`; the last one is shorter when B does not divide
    N, unless ``drop_last`` discards those ``N mod B`` samples.

    >>> split = split_into_batches(np.arange(7), 3)
    >>> [b.tolist() for b in split.batches], split.dropped.tolist()
    ([[0, 1, 2], [3, 4, 5], [6]], [])
    >>> [b.tolist() for b in split_into_batches(np.arange(7), 3, drop_last=True).batches]
    [[0, 1, 2], [3, 4, 5]]

    Taught in: notebook 01 § 4. An epoch.
    """
    array = np.asarray(order)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"order must be a 1-D sequence of integer sample indices, got {order!r}")
    if not np.array_equal(np.sort(array), np.arange(len(array))):
        raise ValueError(f"order must be a permutation of 0..{len(array) - 1}, got {array.tolist()}")
    bounds = arithmetic.batch_bounds(len(array), batch_size, drop_last)
    batches = tuple(array[start:end].astype(np.int64) for start, end in bounds)
    used = bounds[-1][1] if bounds else 0
    return EpochBatches(batches=batches, dropped=array[used:].astype(np.int64))


def epoch_boundaries(epoch_starts: Sequence[int], first_iteration: int = 1) -> np.ndarray:
    """x positions of the lines between epochs on a chart of iterations: halfway between an epoch's last
    iteration and the next epoch's first. The first epoch has no line before it.

    ``epoch_starts`` are 0-based iteration indices, as in :attr:`batchlab.history.History.epoch_starts`;
    ``first_iteration`` is the x value of iteration 0 on the chart (1 when iterations are numbered from
    1, 0 when the x-axis is the 0-based index). This is the one definition every chart uses.

    >>> epoch_boundaries([0, 4, 8]).tolist(), epoch_boundaries([0, 4, 8], first_iteration=0).tolist()
    ([4.5, 8.5], [3.5, 7.5])

    Taught in: notebook 01 § What a sorted data set does to training.
    """
    first_iteration = require_int("first_iteration", first_iteration, minimum=0)
    starts = np.asarray(list(epoch_starts), dtype=float)
    return starts[1:] + first_iteration - 0.5


class IterationCurve:
    """The loss of every iteration (x = 1, 2, …) with a dotted line at every epoch boundary, on one axes.

    The live curve that notebook 05's :class:`batchlab.plots.training.LiveTrainingPlot` and notebook 06's
    :class:`batchlab.plots.simulator.SimulatorFigure` both draw, made and updated here only. Artists:
    ``line`` (a ``Line2D``) and ``boundaries`` (a ``LineCollection``, one segment per boundary at
    :func:`epoch_boundaries`, spanning the axes' height). ``thin``, when given, maps the losses to the
    ``(x, y)`` drawn (the simulator's min/max envelope of a long run); without it every point is drawn.

    Taught in: notebook 05 § Watching training live: loss per iteration and epoch boundaries.
    """

    def __init__(self, ax: Axes, colour: str, boundary_colour: str, *, boundary_label: str | None = None,
                 thin: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        (self.line,) = ax.plot([], [], color=colour, lw=0.8)
        # zorder 2.5: the dotted lines are drawn over every loss line of the axes (lines are at 2)
        self.boundaries = LineCollection([], colors=boundary_colour, linewidths=0.8, linestyles=":",
                                         transform=ax.get_xaxis_transform(), label=boundary_label, zorder=2.5)
        ax.add_collection(self.boundaries, autolim=False)
        self.thin = thin

    def set(self, iteration_losses: Sequence[float] | np.ndarray, epoch_starts: Sequence[int]) -> np.ndarray:
        """Show ``iteration_losses`` (one per iteration) and the boundaries between the epochs that
        began at ``epoch_starts`` (0-based iteration indices); returns the losses as a float array."""
        losses = np.asarray(iteration_losses, dtype=float)
        if self.thin is None:
            self.line.set_data(np.arange(1, len(losses) + 1), losses)
        else:
            self.line.set_data(*self.thin(losses))
        self.boundaries.set_segments([[(x, 0.0), (x, 1.0)] for x in epoch_boundaries(epoch_starts)])
        return losses


def _figure(figsize: tuple[float, float], dpi: int, *, max_dpi: int | None = None) -> Figure:
    """A new plain matplotlib figure of ``figsize`` inches at ``dpi`` (nothing registers it: a cell run
    again makes a new one)."""
    dpi = require_int("dpi", dpi, minimum=20, maximum=max_dpi)
    return Figure(figsize=figsize, dpi=dpi)


def _check_images(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape[0] == 0:
        raise ValueError(f"images must have shape (n, height, width) with n >= 1, got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    return images, labels


class BatchFigure:
    """Digit thumbnails (top) and the epoch strip (bottom), updated in place as an epoch proceeds.

    Parameters
    ----------
    images:
        ``(N, 8, 8)`` pixel intensities in [0, 1] (e.g. from :func:`batchlab.data.load_digit_images`).
    labels:
        ``(N,)`` integer class labels.
    columns:
        Thumbnails per row (default: up to 10).
    width:
        Figure width in inches; the height follows from the number of rows.
    dpi:
        Figure resolution (dots per inch).

    Public artists (tests read them): ``thumbnails[i]`` (``AxesImage`` of sample ``i``),
    ``frames[i]`` (its ``Rectangle`` frame), ``captions[i]``, and in the strip ``cells[p]`` /
    ``cell_texts[p]`` for position ``p`` of the epoch order.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, columns: int | None = None,
                 width: float = 7.5, dpi: int = 80) -> None:
        self.images, self.labels = _check_images(images, labels)
        self.n_samples = len(self.labels)
        n = self.n_samples
        self.columns = require_int("columns", min(n, 10) if columns is None else columns, minimum=1,
                                   maximum=n)
        self.rows = math.ceil(n / self.columns)
        cell = width / max(self.columns, 6)  # inches per thumbnail cell
        grid_height = self.rows * cell * 1.22
        strip_height = 1.15
        self.fig = _figure((width, grid_height + strip_height + 0.75), dpi, max_dpi=300)
        height = self.fig.get_figheight()
        spec = self.fig.add_gridspec(2, 1, height_ratios=(grid_height, strip_height), hspace=0.08,
                                     left=0.01, right=0.99, bottom=0.32 / height, top=1 - 0.4 / height)
        self.grid_ax = self.fig.add_subplot(spec[0])
        self.strip_ax = self.fig.add_subplot(spec[1])
        self._build_grid()
        self._build_strip()
        self.status = self.fig.text(0.01, 1 - 0.12 / height, "", ha="left", va="top", fontsize=11,
                                    color=COLOURS["ink"], fontweight="bold")
        self.fig.text(0.99, 0.1 / height, "caption: #sample index → label", ha="right", va="bottom",
                      fontsize=8, color=COLOURS["muted"])
        self.set_epoch(np.arange(n), batch_size=n, drop_last=False, epoch=1)
        self.set_progress(0)

    @staticmethod
    def key_html() -> str:
        """What the frames mean (current batch, seen, dropped), as HTML for beside the canvas."""
        return html_key([(COLOURS["current"], "current batch", "frame"),
                         ("#e4e7eb", "seen this epoch (dimmed)", "box"),
                         (COLOURS["dropped"], "dropped (drop_last)", "dashed frame")])

    # ----------------------------------------------------------------- layout (built once)
    def _build_grid(self) -> None:
        ax = self.grid_ax
        ax.set(xlim=(0, self.columns), ylim=(self.rows * 1.22, 0), aspect="equal")
        ax.set_axis_off()
        self.thumbnails: list[AxesImage] = []
        self.frames: list[Rectangle] = []
        self.captions: list[Text] = []
        for i, (image, label) in enumerate(zip(self.images, self.labels, strict=True)):
            col, row = i % self.columns, i // self.columns
            x0, y0 = col + 0.1, row * 1.22 + 0.08
            self.thumbnails.append(ax.imshow(image, extent=(x0, x0 + 0.8, y0 + 0.8, y0), **GREY))
            self.frames.append(ax.add_patch(Rectangle((x0 - 0.05, y0 - 0.05), 0.9, 0.9, fill=False,
                                                      lw=PLAIN_WIDTH, edgecolor=COLOURS["pending"],
                                                      joinstyle="miter")))
            self.captions.append(ax.text(col + 0.5, y0 + 0.88, f"#{i} → {int(label)}", ha="center",
                                         va="top", fontsize=9, color=COLOURS["ink"]))

    def _build_strip(self) -> None:
        ax = self.strip_ax
        ax.set_axis_off()
        n = self.n_samples
        fontsize = 9 if n <= 24 else 7
        self.cells = [ax.add_patch(Rectangle((0, 0), 0.9, 0.9, lw=0.8)) for _ in range(n)]
        self.cell_texts = [ax.text(0, 0, "", ha="center", va="center", fontsize=fontsize) for _ in range(n)]
        # One group label per possible batch (at most N), plus one for the dropped tail.
        self.batch_labels = [ax.text(0, -0.25, "", ha="center", va="top", fontsize=8,
                                     color=COLOURS["muted"]) for _ in range(n)]
        self.dropped_label = ax.text(0, -0.25, "", ha="center", va="top", fontsize=8,
                                     color=COLOURS["dropped"])
        self.strip_title = ax.text(0, 1.25, "", ha="left", va="bottom", fontsize=9,
                                   color=COLOURS["ink"])
        ax.set_ylim(-0.95, 1.75)

    # ----------------------------------------------------------------- updates (in place)
    def set_epoch(self, order: Sequence[int] | np.ndarray, batch_size: int, drop_last: bool,
                  epoch: int) -> EpochBatches:
        """Lay out one epoch: its sample ``order`` (shape ``(N,)``) cut into batches of ``batch_size``.

        ``epoch`` is the 1-based epoch number shown in the strip's title. Returns the split.
        """
        if np.size(order) != self.n_samples:
            raise ValueError(f"order must hold {self.n_samples} indices, got {np.size(order)}")
        epoch = require_int("epoch", epoch, minimum=1)
        split = split_into_batches(order, batch_size, drop_last)
        self._split = split
        full = len(split.batches[0])
        groups = [*split.batches, split.dropped] if len(split.dropped) else list(split.batches)
        self._strip: list[tuple[int, int]] = []  # (sample, batch number; -1: dropped) at each position
        x = 0.0
        gap = 0.45
        for g, group in enumerate(groups):
            batch = g if g < split.iterations else -1
            start = x
            for index in group:
                self.cells[len(self._strip)].set_xy((x + 0.05, 0.05))
                self.cell_texts[len(self._strip)].set(position=(x + 0.5, 0.5), text=str(int(index)))
                self._strip.append((int(index), batch))
                x += 1.0
            size = len(group)
            text = (f"batch {g + 1}" if size >= 4 else f"{g + 1}") + (f" ({size})" if size < full else "")
            label = self.batch_labels[g] if batch >= 0 else self.dropped_label
            label.set(position=((start + x) / 2, -0.12), text=text if batch >= 0 else "dropped", visible=True)
            x += gap
        for label in self.batch_labels[split.iterations:]:
            label.set_visible(False)
        self.dropped_label.set_visible(len(split.dropped) > 0)
        self.strip_ax.set_xlim(-0.05, max(x - gap, self.n_samples + 2 * gap) + 0.05)
        count = split.iterations
        last = len(split.batches[-1])
        dropped = len(split.dropped)
        plural = "es" if count != 1 else ""
        self.strip_title.set_text(f"Epoch {epoch}: this epoch's sample order, cut into {count} batch{plural} "
                                  f"of B = {full}"
                                  + (f" (the last one holds only {last})" if last < full else "")
                                  + (f"; drop_last discards {dropped}" if dropped else ""))
        return split

    def set_progress(self, batches_done: int, status: str = "") -> None:
        """Show that the first ``batches_done`` batches of the epoch ran; the last of them is current.

        ``batches_done`` counts from 0 (epoch not started) to the epoch's number of iterations.
        ``status`` is a one-line text shown above the thumbnails.
        """
        done = require_int("batches_done", batches_done, minimum=0, maximum=self._split.iterations)
        for cell, text, (i, batch) in zip(self.cells, self.cell_texts, self._strip, strict=True):
            state = ("dropped" if batch < 0 else "current" if batch == done - 1
                     else "seen" if batch < done - 1 else "pending")
            alpha, width, style, face, ink = LOOKS[state]
            self.thumbnails[i].set_alpha(alpha)
            self.frames[i].set(edgecolor=COLOURS[state], linewidth=width, linestyle=style)
            self.captions[i].set(color=ink, fontweight="bold" if state == "current" else "normal")
            cell.set(facecolor=face or COLOURS["batch_fill"][batch % 2], edgecolor=COLOURS[state],
                     hatch="//" if state == "dropped" else None)
            text.set(color="white" if state == "current" else ink,
                     fontweight="bold" if state in ("current", "dropped") else "normal")
        self.status.set_text(status)

    # ----------------------------------------------------------------- read-back helpers
    def highlighted(self) -> list[int]:
        """Sample indices whose thumbnail frame has the current-batch colour (read from the artists)."""
        target = to_rgba(COLOURS["current"])
        return [i for i, frame in enumerate(self.frames) if frame.get_edgecolor() == target]


def plot_sample(image: np.ndarray, label: int, *, index: int | None = None,
                size: float = 4.8, dpi: int = DPI) -> Figure:
    """One sample: an 8×8 image with each of its 64 pixel values written on it, titled with its label.

    ``image`` has shape ``(8, 8)`` with intensities in [0, 1]; values are printed with one decimal.

    Taught in: notebook 01 § 1. A sample.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (height, width), got shape {image.shape}")
    label = require_int("label", label, minimum=0)
    fig = _figure((float(size), float(size) + 0.3), dpi)
    ax = fig.add_subplot()
    ax.imshow(image, **GREY)
    for (r, c), value in np.ndenumerate(image):
        text = "0" if value == 0 else "1" if value >= 1 else f"{value:.1f}".lstrip("0")
        ax.text(c, r, text, ha="center", va="center", fontsize=10,
                color="white" if value > 0.45 else COLOURS["ink"] if value > 0 else "#b8c0ca")
    name = f"sample #{index}" if index is not None else "one sample"
    ax.set_title(f"{name}: label {label}\n{image.shape[0]}×{image.shape[1]} = {image.size} numbers",
                 fontsize=12)
    ax.set(xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def plot_batch_matrix(images: np.ndarray, labels: np.ndarray, indices: Sequence[int], *,
                      width: float = FULL_WIDTH, dpi: int = DPI) -> Figure:
    """One batch as the model sees it: a ``(B, 64)`` matrix, one flattened sample per row.

    Left: the B thumbnails; right: the same pixels, each image flattened row by row into 64 columns,
    with the sample index and label at the start of each row.

    Taught in: notebook 01 § 2. A batch.
    """
    images, labels = _check_images(images, labels)
    idx = np.asarray(indices)
    if idx.ndim != 1 or len(idx) == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"indices must be a non-empty 1-D sequence of ints, got {indices!r}")
    if idx.min() < 0 or idx.max() >= len(labels):
        raise ValueError(f"indices must lie in 0..{len(labels) - 1}, got {idx.tolist()}")
    batch = images[idx].reshape(len(idx), -1)
    row = 0.4  # inches per sample row
    # Margins in inches.
    bottom = 0.55
    top = 0.35
    left = 0.1
    right = 0.75
    height = bottom + top + row * len(idx)
    fig = _figure((width, height), dpi)
    y0 = bottom / height
    h = row * len(idx) / height
    thumbs: Axes = fig.add_axes((left / width, y0, row / width, h))
    x0 = (left + row + 0.15) / width
    matrix: Axes = fig.add_axes((x0, y0, 1 - x0 - right / width, h))
    stacked = np.concatenate([np.pad(images[i], 1, constant_values=0) for i in idx])
    thumbs.imshow(stacked, aspect="auto", **GREY)
    thumbs.set_axis_off()
    matrix.imshow(batch, aspect="auto", **GREY)
    matrix.set_yticks(range(len(idx)), [f"#{i} → {int(labels[i])}" for i in idx], fontsize=10)
    matrix.yaxis.tick_right()
    matrix.set_xticks([0, 8, 16, 24, 32, 40, 48, 56, 63])
    matrix.tick_params(axis="x", labelsize=8)
    matrix.set_xlabel("pixel position (0..63): the 8 rows of each image, one after another", fontsize=10)
    matrix.vlines(np.arange(7.5, 63, 8), -0.5, len(idx) - 0.5, lw=0.5, color=COLOURS["pending"],
                  capstyle="projecting")
    matrix.set_title(f"a batch: shape ({len(idx)}, {batch.shape[1]}), one sample per row", fontsize=10)
    return fig
