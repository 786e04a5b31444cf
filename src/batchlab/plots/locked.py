"""A figure that another thread can update safely: its ``draw`` holds a lock (and times itself).

The live apps train in a background thread and update the figure's artists from the training
callback, while ipympl renders the figure in the kernel's main thread whenever the browser asks for a
new image. :class:`LockedFigure` makes the two exclusive: its ``draw`` holds ``fig.lock`` (a
re-entrant lock), so an update made inside ``with fig.lock:`` never happens halfway through a draw.
It also records how long its draws take (what the simulator's throttle budgets with).

Build one with ``plt.figure(..., FigureClass=LockedFigure)`` (under ``plt.ioff()``) or
:func:`locked_figure`. Nothing here imports ipywidgets.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from batchlab.validation import require_int

__all__ = ["LockedFigure", "locked_figure"]


class LockedFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` whose ``draw`` holds ``self.lock`` and times itself.

    ``lock`` is a :class:`threading.RLock`: hold it while changing artists from a thread other than
    the one that draws. ``draw_count``, ``draw_seconds`` (wall clock) and ``draw_cpu_seconds`` (CPU
    time of the drawing thread) accumulate over all draws; ``last_draw_seconds`` /
    ``last_draw_cpu_seconds`` are the latest. The CPU time is what a draw takes away from a training
    thread: a draw in another thread that competes with training for the interpreter lasts longer in
    wall time than it costs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.RLock()
        self.draw_count = 0
        self.draw_seconds = self.draw_cpu_seconds = 0.0
        self.last_draw_seconds = self.last_draw_cpu_seconds = 0.0

    def draw(self, renderer: Any) -> None:
        """Draw while holding ``self.lock``; record the time it took."""
        with self.lock:
            started, cpu_started = time.perf_counter(), time.thread_time()
            super().draw(renderer)
            self.last_draw_cpu_seconds = time.thread_time() - cpu_started
            self.last_draw_seconds = time.perf_counter() - started
            self.draw_seconds += self.last_draw_seconds
            self.draw_cpu_seconds += self.last_draw_cpu_seconds
            self.draw_count += 1


def locked_figure(*, figsize: tuple[float, float] = (7.0, 3.5), dpi: int = 80) -> LockedFigure:
    """A new :class:`LockedFigure` (``figsize`` in inches, ``dpi`` dots per inch), built under
    ``plt.ioff()`` so that ipympl gives it a live canvas and the Agg backend a plain figure."""
    dpi = require_int("dpi", dpi, minimum=20, maximum=300)
    with plt.ioff():
        fig = plt.figure(figsize=figsize, dpi=dpi, FigureClass=LockedFigure)
    return fig
