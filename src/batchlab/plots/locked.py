"""A figure whose ``draw`` holds a lock, for a view whose artists another thread updates.

:class:`LockedFigure` is a :class:`~matplotlib.figure.Figure` whose ``draw`` holds ``fig.lock`` (a
re-entrant lock): an update made inside ``with fig.lock:`` never happens halfway through a draw. The
sweep explorer's figure (:class:`batchlab.plots.generalization.SweepFigure`) uses it; the other live
views change their artists only at throttled moments and need no lock (:mod:`batchlab.plots.live`).
Build one with ``plt.figure(..., FigureClass=LockedFigure)`` under ``plt.ioff()``.
"""

from __future__ import annotations

import threading
from typing import Any

from matplotlib.figure import Figure

__all__ = ["LockedFigure"]


class LockedFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` whose ``draw`` holds ``self.lock`` (a re-entrant lock)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.RLock()

    def draw(self, renderer: Any) -> None:
        """Draw while holding ``self.lock``."""
        with self.lock:
            super().draw(renderer)
