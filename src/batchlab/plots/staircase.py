"""The staircase: iterations per epoch I against batch size B, for a data set of N samples.

``I = ceil(N / B)`` (the last, partial batch is kept) is a staircase just *above* the continuous curve
``N / B``; ``I = floor(N / B)`` (``drop_last=True``) is the staircase just *below* it. They touch the
curve exactly where B divides N. On log-log axes ``N / B`` is a straight line of slope −1, which makes
the gap at small I (large B) easy to see.

:class:`StaircasePlot` draws both staircases (the active rule bold, the other thinner), the curve, and a
marker at the current ``(B, I)``; :meth:`StaircasePlot.update` changes the artists in place. Its key is
HTML for beside the figure (:meth:`StaircasePlot.key_html`), not a legend in it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from batchlab.arithmetic import iterations_per_epoch
from batchlab.plots.live import request_redraw
from batchlab.plots.style import DPI, FULL_WIDTH, line_key
from batchlab.validation import require_bool, require_int

__all__ = ["StaircasePlot", "axes_or_new", "staircase_points"]

_ACTIVE = {"linewidth": 2.2, "alpha": 1.0}
_INACTIVE = {"linewidth": 1.4, "alpha": 0.75}


def axes_or_new(ax: Axes | None, figsize: tuple[float, float], dpi: int) -> Axes:
    """``ax``, or the axes of a new plain ``figsize`` figure at ``dpi`` (a matplotlib ``Figure``: an app
    shows its live view, :func:`batchlab.apps.live.canvas_widget`)."""
    if ax is None:
        ax = Figure(figsize=figsize, dpi=dpi).add_subplot()
    return ax


def staircase_points(n_samples: int, drop_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Corners of the staircase ``I(B)`` for ``B = 1 … N``, for a ``steps-post`` line.

    Returns ``(b, i)``: integer arrays where ``b`` holds the batch sizes at which ``I`` changes (plus
    ``B = N`` to close the last step) and ``i[k] = I(b[k])``; ``I(B) = i[k]`` for every integer
    ``b[k] <= B < b[k + 1]``. At most about ``2·sqrt(N)`` points instead of N. Empty when ``N = 0``.
    """
    n = require_int("n_samples", n_samples, minimum=0)
    drop_last = require_bool("drop_last", drop_last)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    b = np.arange(1, n + 1, dtype=np.int64)
    i = n // b if drop_last else -(-n // b)
    keep = np.append(True, i[1:] != i[:-1])
    keep[-1] = True  # close the last step at B = N
    return b[keep], i[keep]


class StaircasePlot:
    """I against B on log-log axes: both staircases, the curve N/B and the current point.

    Parameters
    ----------
    n_samples:
        N, the samples in one epoch (≥ 1); B runs from 1 to N.
    batch_size:
        The current B (1 ≤ B ≤ N), marked on the active staircase.
    drop_last:
        Which staircase is active: ``floor(N/B)`` if True, else ``ceil(N/B)``.
    samples_label:
        How N is named in the title and read-out (e.g. ``"N per worker"``).
    ax:
        Draw into these axes; by default a new figure of ``figsize`` inches at ``dpi`` is made.

    Attributes: ``fig``, ``ax``, ``ceil_line``, ``floor_line``, ``curve``, ``marker``, ``readout``.
    """

    def __init__(self, n_samples: int, batch_size: int, drop_last: bool = False, *, samples_label: str = "N",
                 ax: Axes | None = None, figsize: tuple[float, float] = (FULL_WIDTH, 3.8),
                 dpi: int = DPI) -> None:
        ax = axes_or_new(ax, figsize, dpi)
        self.ax = ax
        self.fig: Figure = ax.figure
        ax.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="iterations per epoch I")
        ax.grid(True, which="major", alpha=0.3)
        (self.curve,) = ax.plot([], [], color="0.45", linestyle="--", linewidth=1.2,
                                label="N/B (continuous)")
        (self.ceil_line,) = ax.plot([], [], drawstyle="steps-post", color="tab:blue",
                                    label="ceil(N/B): last batch kept")
        (self.floor_line,) = ax.plot([], [], drawstyle="steps-post", color="tab:orange",
                                     label="floor(N/B): drop_last=True")
        (self.marker,) = ax.plot([], [], "o", color="tab:red", markersize=8, zorder=5,
                                 label="current (B, I)")
        self.readout = ax.text(0.98, 0.95, "", transform=ax.transAxes, ha="right", va="top",
                               fontsize=11, bbox={"boxstyle": "round", "fc": "white", "ec": "0.8"})
        ax.set_title(" ", fontsize=12)  # room for the title that update() writes
        self.fig.tight_layout()
        self.update(n_samples, batch_size, drop_last, samples_label=samples_label)

    def key_html(self) -> str:
        """The key of the four lines (:func:`batchlab.plots.style.line_key`), for beside the figure."""
        return line_key([self.curve, self.ceil_line, self.floor_line, self.marker])

    def update(self, n_samples: int, batch_size: int, drop_last: bool = False, *,
               samples_label: str = "N") -> None:
        """Redraw for new N, B and drop_last, changing the existing artists in place."""
        n = require_int("n_samples", n_samples, minimum=1)
        b = require_int("batch_size", batch_size, minimum=1, maximum=n)
        drop_last = require_bool("drop_last", drop_last)
        self.ceil_line.set_data(*staircase_points(n, drop_last=False))
        self.floor_line.set_data(*staircase_points(n, drop_last=True))
        self.floor_line.set(**(_ACTIVE if drop_last else _INACTIVE))
        self.ceil_line.set(**(_INACTIVE if drop_last else _ACTIVE))

        b_curve = np.geomspace(1, n, 200) if n > 1 else np.array([1.0])
        self.curve.set_data(b_curve, n / b_curve)

        i = iterations_per_epoch(n, b, drop_last)
        self.marker.set_data([b], [i])
        rule = "floor" if drop_last else "ceil"
        self.readout.set_text(f"{samples_label} = {n:,}, B = {b:,}\n"
                              f"N/B = {n / b:,.4g}\nI = {rule}(N/B) = {i:,}")
        self.ax.set_title(f"Iterations per epoch against batch size ({samples_label} = {n:,})",
                          fontsize=12)
        self.ax.set(xlim=(0.8, max(n, 2) * 1.25), ylim=(0.8, max(n, 2) * 1.25))
        request_redraw(self.fig)
