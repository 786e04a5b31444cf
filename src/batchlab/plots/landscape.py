"""Loss contours of the two-parameter problem with descent paths drawn over them, updated in place.

:class:`LandscapePlot` owns two axes: on the left the contours of the full-batch loss ``L(w, c)`` with
one line per descent path, on the right the loss gap ``L − L*`` of each path against updates (or
against epochs, when the paths are compared at an equal number of samples). :meth:`LandscapePlot.update`
moves the existing artists (``set_data``, colours, a warning text); it never creates a new figure.
A path that diverged is drawn up to the point where it left the plot (the axes clip it) and a red
message names the update at which its loss exceeded the limit. There is no legend in the canvas: the
app's table beside it is the key (each path's colour, name, batch size and final loss), because a legend
whose numbers change is among the costliest things to redraw at every move of a slider.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes

from batchlab.line_fit import DescentPath, RegressionProblem
from batchlab.plots.style import INK, batch_size_color
from batchlab.validation import require_choice, require_instance

__all__ = ["PATHS", "LandscapePlot"]

X_AXES = ("updates", "epochs")
# The three paths of notebook 03: name and line style (colour, width, opacity, drawing order).
# The colours are starting values: LandscapePlot.update recolours each path with batch_size_color of
# its batch size.
PATHS = {
    "sgd": ("SGD", {"color": batch_size_color(1), "linewidth": 1.2, "alpha": 0.9, "zorder": 2.0}),
    "minibatch": ("mini-batch", {"color": batch_size_color(16), "linewidth": 1.8, "zorder": 3.0}),
    "full": ("batch GD", {"color": INK, "linewidth": 2.4, "zorder": 4.0}),
}


class LandscapePlot:
    """Contours of ``problem``'s loss on ``ax_surface`` and loss-gap curves on ``ax_loss``.

    ``w_range`` and ``c_range`` are the (fixed) axis limits of the contour plot, in parameter units.
    One line per key of :data:`PATHS` on each axes; :meth:`update` takes paths under the same keys.
    Public artists: ``lines`` and ``loss_lines`` (dicts of ``Line2D``), ``start_marker``,
    ``optimum_marker`` and ``message`` (a ``Text``); ``names`` holds each path's name (``"SGD"`` …).
    """

    def __init__(self, ax_surface: Axes, ax_loss: Axes, problem: RegressionProblem, *,
                 w_range: tuple[float, float], c_range: tuple[float, float]) -> None:
        self.problem = require_instance("problem", problem, RegressionProblem)
        self.ax_surface = ax_surface
        self.ax_loss = ax_loss
        self.names = {key: name for key, (name, _) in PATHS.items()}
        self.optimum = problem.minimum()
        self.min_loss = problem.loss_at(self.optimum)
        w_grid, c_grid, loss = problem.loss_surface(w_range, c_range, resolution=160)
        gap = loss - self.min_loss
        levels = np.geomspace(max(gap.max() * 1e-3, 1e-6), gap.max(), 14)
        ax_surface.contour(w_grid, c_grid, gap, levels=levels, colors="0.6", linewidths=0.6, zorder=1)
        (self.optimum_marker,) = ax_surface.plot(*self.optimum, "*", color="black", markersize=10,
                                                 zorder=6, label="minimum")
        ax_surface.set(xlim=w_range, ylim=c_range, xlabel="slope w", ylabel="intercept c")
        self.lines = {}
        self.loss_lines = {}
        for key, (name, style) in PATHS.items():
            (self.lines[key],) = ax_surface.plot([], [], label=name, **style)
            (self.loss_lines[key],) = ax_loss.plot([], [], label=name, **style)
        (self.start_marker,) = ax_surface.plot([], [], "o", color="black", markersize=5, zorder=6)
        self.message = ax_surface.text(
            0.02, 0.97, "", transform=ax_surface.transAxes, color="#b3261e", fontsize=10,
            va="top", ha="left", zorder=7,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85, "linewidth": 0},
        )
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("L(θ) − L(θ*)")
        ax_loss.grid(True, which="major", alpha=0.3)
        self.x_axis = "updates"
        ax_loss.set_xlabel("updates")

    def update(self, paths: Mapping[str, DescentPath], *, x_axis: str = "updates") -> None:
        """Redraw every path in place.

        ``paths``: a :class:`DescentPath` per key of :data:`PATHS`, each drawn in the colour of its batch
        size (:func:`~batchlab.plots.style.batch_size_color`). ``x_axis``: ``"updates"`` or ``"epochs"``
        for the loss panel.
        """
        x_axis = require_choice("x_axis", x_axis, X_AXES)
        if set(paths) != set(PATHS):
            raise ValueError(f"paths must hold a path per style key {sorted(PATHS)!r}, got {sorted(paths)!r}")
        messages = []
        ends = []
        gaps = []
        for key, name in self.names.items():
            path = paths[key]
            x = _x_values(path, x_axis)
            gap = np.maximum(path.losses - self.min_loss, 1e-12)  # for the log axis: GD can hit L* exactly
            self.lines[key].set_data(path.params[:, 0], path.params[:, 1])
            self.loss_lines[key].set_data(x, gap)
            for artist in (self.lines[key], self.loss_lines[key]):
                artist.set_color(batch_size_color(path.batch_size))
            if path.diverged:
                messages.append(f"{name}: diverged after {path.diverged_at:,} updates "
                                f"(L > {path.max_loss:.0e})")
            ends.append(x[-1])
            gaps.append(gap)
        start = paths["full"].params[0]  # every path starts there
        self.start_marker.set_data([start[0]], [start[1]])
        self.message.set_text("\n".join(messages))
        self.ax_loss.set_xlim(0, max(max(ends), 1e-9) * 1.02)
        gaps = np.concatenate(gaps)
        high = float(gaps.max())
        low = max(float(np.quantile(gaps, 0.01)), high * 1e-8, 1e-12)
        self.ax_loss.set_ylim(low / 2, max(high * 3, low * 10))
        self.ax_loss.set_xlabel("updates" if x_axis == "updates" else "epochs (samples processed / N)")
        self.x_axis = x_axis


def _x_values(path: DescentPath, x_axis: str) -> np.ndarray:
    steps = np.arange(path.steps + 1, dtype=np.float64)
    if x_axis == "updates":
        return steps
    sizes = path.batch_ends[: path.steps] - path.batch_starts[: path.steps]
    return np.concatenate([[0.0], np.cumsum(sizes)]) / path.n_samples
