"""Loss contours of the two-parameter problem with descent paths drawn over them, updated in place.

:class:`LandscapePlot` owns two axes: on the left the contours of the full-batch loss ``L(w, c)`` with
one line per descent path, on the right the loss gap ``L − L*`` of each path against updates (or
against epochs, when the paths are compared at an equal number of samples). :meth:`LandscapePlot.update`
moves the existing artists (``set_data``, legend texts, a warning text); it never creates a new figure.
A path that diverged is drawn up to the point where it left the plot (the axes clip it) and a red
message names the update at which its loss exceeded the limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from batchlab.line_fit import DescentPath, RegressionProblem
from batchlab.plots.style import DPI, FULL_WIDTH, INK, batch_size_color
from batchlab.validation import require_choice

__all__ = ["LandscapePlot", "PathStyle", "default_label", "default_styles", "make_landscape_figure"]

X_AXES = ("updates", "epochs")


@dataclass(frozen=True)
class PathStyle:
    """How one path is drawn: a legend name, a colour, a line width, opacity and drawing order."""

    name: str
    color: str
    linewidth: float = 1.6
    alpha: float = 1.0
    zorder: float = 3.0


def default_styles() -> dict[str, PathStyle]:
    """Styles for the three paths of notebook 03, keyed ``"sgd"``, ``"minibatch"``, ``"full"``.

    The colours are starting values: :meth:`LandscapePlot.update` recolours each path with
    :func:`~batchlab.plots.style.batch_size_color` of its batch size."""
    return {
        "sgd": PathStyle("SGD", batch_size_color(1), linewidth=1.2, alpha=0.9, zorder=2.0),
        "minibatch": PathStyle("mini-batch", batch_size_color(16), linewidth=1.8, zorder=3.0),
        "full": PathStyle("batch GD", INK, linewidth=2.4, zorder=4.0),
    }


class LandscapePlot:
    """Contours of ``problem``'s loss on ``ax_surface`` and loss-gap curves on ``ax_loss``.

    ``w_range`` and ``c_range`` are the (fixed) axis limits of the contour plot, in parameter units.
    ``styles`` maps a key to the :class:`PathStyle` of that path; :meth:`update` takes paths under the
    same keys. Public artists: ``lines`` and ``loss_lines`` (dicts of ``Line2D``), ``start_marker``,
    ``optimum_marker``, ``message`` (a ``Text``) and the two legends.
    """

    def __init__(self, ax_surface: Axes, ax_loss: Axes, problem: RegressionProblem, *,
                 w_range: tuple[float, float], c_range: tuple[float, float],
                 styles: Mapping[str, PathStyle] | None = None, n_levels: int = 14) -> None:
        if not isinstance(problem, RegressionProblem):
            raise TypeError(f"problem must be a RegressionProblem, got {type(problem).__name__}")
        self.problem = problem
        self.ax_surface, self.ax_loss = ax_surface, ax_loss
        self.styles = dict(styles or default_styles())
        self.optimum = problem.minimum()
        self.min_loss = problem.loss_at(self.optimum)
        w_grid, c_grid, _ = problem.loss_surface(w_range, c_range, resolution=160)
        gap = problem.loss_gap(w_grid, c_grid)
        levels = np.geomspace(max(gap.max() * 1e-3, 1e-6), gap.max(), n_levels)
        ax_surface.contour(w_grid, c_grid, gap, levels=levels, colors="0.6", linewidths=0.6, zorder=1)
        (self.optimum_marker,) = ax_surface.plot(*self.optimum, "*", color="black", markersize=10,
                                                 zorder=6, label="minimum")
        ax_surface.set(xlim=w_range, ylim=c_range, xlabel="slope w", ylabel="intercept c")
        self.lines = {}
        self.loss_lines = {}
        for key, style in self.styles.items():
            kwargs = {"color": style.color, "linewidth": style.linewidth, "alpha": style.alpha,
                      "zorder": style.zorder}
            (self.lines[key],) = ax_surface.plot([], [], label=style.name, **kwargs)
            (self.loss_lines[key],) = ax_loss.plot([], [], label=style.name, **kwargs)
        (self.start_marker,) = ax_surface.plot([], [], "o", color="black", markersize=5, zorder=6)
        self.message = ax_surface.text(
            0.02, 0.97, "", transform=ax_surface.transAxes, color="#b3261e", fontsize=10,
            va="top", ha="left", zorder=7,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85, "linewidth": 0},
        )
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("L(θ) − L(θ*)")
        ax_loss.grid(True, which="major", alpha=0.3)
        self.legend = ax_loss.legend(loc="lower left", fontsize=10, framealpha=0.9)
        self.x_axis = "updates"
        ax_loss.set_xlabel("updates")

    def update(self, paths: Mapping[str, DescentPath], *, x_axis: str = "updates",
               labels: Mapping[str, str] | None = None) -> None:
        """Redraw every path in place.

        ``paths``: a :class:`DescentPath` per style key (keys without a path are hidden). ``x_axis``:
        ``"updates"`` or ``"epochs"`` for the loss panel. ``labels``: optional legend text per key
        (default: name, batch size and final loss).
        """
        x_axis = require_choice("x_axis", x_axis, X_AXES)
        if unknown := set(paths) - set(self.styles):
            raise ValueError(f"paths has keys without a style: {sorted(unknown)!r}")
        messages = []
        texts = self.legend.get_texts()
        for i, (key, style) in enumerate(self.styles.items()):
            path = paths.get(key)
            line, loss_line = self.lines[key], self.loss_lines[key]
            if path is None:
                line.set_data([], [])
                loss_line.set_data([], [])
                texts[i].set_text(style.name)
                continue
            line.set_data(path.params[:, 0], path.params[:, 1])
            loss_line.set_data(_x_values(path, x_axis), _gap(path.losses - self.min_loss))
            label = (labels or {}).get(key) or default_label(style.name, path, self.min_loss)
            texts[i].set_text(label)
            colour = batch_size_color(path.batch_size)
            for artist in (line, loss_line, self.legend.legend_handles[i]):
                artist.set_color(colour)
            if path.diverged:
                messages.append(f"{style.name}: diverged after {path.diverged_at:,} updates "
                                f"(L > {path.max_loss:.0e})")
        first = next(iter(paths.values()), None)
        if first is not None:
            self.start_marker.set_data([first.params[0, 0]], [first.params[0, 1]])
        self.message.set_text("\n".join(messages))
        self._rescale_loss_axis(paths, x_axis)

    def _rescale_loss_axis(self, paths: Mapping[str, DescentPath], x_axis: str) -> None:
        ax = self.ax_loss
        if not paths:
            return
        ends = [_x_values(p, x_axis)[-1] for p in paths.values()]
        ax.set_xlim(0, max(max(ends), 1e-9) * 1.02)
        gaps = np.concatenate([_gap(p.losses - self.min_loss) for p in paths.values()])
        high = float(gaps.max())
        low = max(float(np.quantile(gaps, 0.01)), high * 1e-8, 1e-12)
        ax.set_ylim(low / 2, max(high * 3, low * 10))
        ax.set_xlabel("updates" if x_axis == "updates" else "epochs (samples processed / N)")
        self.x_axis = x_axis


def default_label(name: str, path: DescentPath, min_loss: float = 0.0) -> str:
    """``"SGD B=1: 30 upd., L−L*=0.0916"`` (the quantity the loss panel plots), or ``"... diverged"``.

    ``min_loss`` is ``L*``, the loss at the minimum, subtracted from the path's final loss."""
    end = "diverged" if path.diverged else f"L−L*={path.final_loss - min_loss:.3g}"
    return f"{name} B={path.batch_size}: {path.steps:,} upd., {end}"


def _x_values(path: DescentPath, x_axis: str) -> np.ndarray:
    steps = np.arange(path.steps + 1, dtype=np.float64)
    if x_axis == "updates":
        return steps
    sizes = path.batch_ends[: path.steps] - path.batch_starts[: path.steps]
    return np.concatenate([[0.0], np.cumsum(sizes)]) / path.n_samples


def _gap(values: np.ndarray) -> np.ndarray:
    """Loss gaps made safe for a log axis: floored at 1e-12 (gradient descent can hit L* exactly)."""
    return np.maximum(values, 1e-12)


def make_landscape_figure(problem: RegressionProblem, *, w_range: tuple[float, float],
                          c_range: tuple[float, float], styles: Mapping[str, PathStyle] | None = None,
                          figsize: Sequence[float] = (FULL_WIDTH, 4.2),
                          dpi: int = DPI) -> tuple[Figure, LandscapePlot]:
    """A pyplot figure (so ipympl gives it a live canvas) with a :class:`LandscapePlot` on it.

    Call it inside ``with plt.ioff():`` in a notebook so the figure is not shown twice.
    """
    import matplotlib.pyplot as plt

    fig, (ax_surface, ax_loss) = plt.subplots(1, 2, figsize=tuple(figsize), dpi=dpi,
                                              gridspec_kw={"width_ratios": [1.0, 1.15]})
    plot = LandscapePlot(ax_surface, ax_loss, problem, w_range=w_range, c_range=c_range, styles=styles)
    fig.tight_layout()
    return fig, plot
