"""The live-update idea, in one place: change artists in place, then sync the live view, throttled.

Every live figure is a plain matplotlib Figure, the one description of what it shows. A view changes
its artists with ``set_data`` / ``set_text`` / ``set_xlim`` and then calls :func:`request_redraw`, which
copies what changed into the figure's live view in the browser (a bqplot view,
:class:`batchlab.plots.mirror.LiveFigure`: only the changed arrays are sent, and the browser draws
them; nothing is rendered in the kernel). While training runs it does so only when a :class:`Throttle`
says yes (at most once every ``interval_s`` seconds of wall time), so that the view stays a small share
of the run. Every live view of batchlab works this way: the apps of :mod:`batchlab.apps` (through
:mod:`batchlab.apps.live`) and :class:`batchlab.plots.training.LiveTrainingPlot`. :func:`made_here` is
the one re-run registry: a view made again by the same line of a notebook cell (:func:`creation_site`)
replaces the one made there before. Nothing here imports ipywidgets or matplotlib at import time. (HTML
tables and figure keys are in :mod:`batchlab.markup`; how a run ended, in words, is
:meth:`batchlab.history.History.status_words`.)
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from typing import Any

from batchlab.validation import require_float

__all__ = ["Throttle", "creation_site", "forget", "made_here", "made_of_kind", "request_redraw"]

# The re-run registry, one for every view: (kind, file, line) of the code that made it -> what it made.
_MADE: dict[tuple[Any, str, int], Any] = {}


class Throttle:
    """Says yes at most once every ``interval_s`` seconds of wall time (the redraw throttle).

    ``clock`` returns seconds (default :func:`time.perf_counter`); tests pass a fake one. ``count`` is
    how many times :meth:`ready` said yes since the last :meth:`restart`. With ``max_share``, a refresh
    that took ``t`` seconds (reported with :meth:`took`) makes the next wait at least ``t / max_share``:
    on a slow or busy machine the refreshes space out, so they never take more than that share of the
    time.
    """

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.perf_counter, *,
                 max_share: float | None = None) -> None:
        self.interval_s = require_float("interval_s", interval_s, minimum=0.0, maximum=3600.0)
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        if max_share is not None:
            max_share = require_float("max_share", max_share, minimum=0.0, maximum=1.0, strict_min=True)
        self.clock = clock
        self.max_share = max_share
        self.restart()

    def restart(self) -> None:
        """Start counting again: the next yes comes ``interval_s`` from now."""
        self.last = self.clock()
        self.wait = self.interval_s
        self.count = 0

    def ready(self) -> bool:
        """True (and the wait starts again) when the wait (``interval_s``, or longer after an expensive
        refresh) has passed since the last yes."""
        now = self.clock()
        if now - self.last < self.wait:
            return False
        self.last = now
        self.count += 1
        return True

    def took(self, seconds: float) -> None:
        """Report what the latest refresh cost (seconds); with ``max_share`` it sets the next wait."""
        if self.max_share is not None:
            self.wait = max(self.interval_s, seconds / self.max_share)


def request_redraw(fig: Any) -> None:
    """Show the changed artists of ``fig`` (a matplotlib Figure) in its live view.

    When ``fig`` has a live view (:func:`batchlab.plots.mirror.live_figure` made one: an app or plot
    on the page), its :meth:`~batchlab.plots.mirror.LiveFigure.sync` sends what changed; otherwise
    (tests, scripts, a figure only shown as a static image) nothing happens. Safe from the kernel's
    main thread, busy training, and from a background thread: each change is a widget message, sent
    at once; the browser draws it.
    """
    from batchlab.plots import mirror  # imported here: this module stays free of ipywidgets/matplotlib

    if mirror.has_live_figure(fig):
        mirror.live_figure(fig).sync()


def creation_site() -> tuple[str, int]:
    """File and line of the code outside batchlab that is calling (a notebook cell keeps its file name
    when it is run again): how a view recognises the cell that made it, to replace what it made before."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(package):
            return frame.filename, frame.lineno or 0
    return "", 0


def made_here(kind: Any, made: Any) -> tuple[tuple[Any, str, int], Any]:
    """Record ``made`` as the ``kind`` of view the calling notebook cell made (the re-run registry, one
    for every app and live plot). Returns its key and what the same line made before (None the first
    time): the caller closes that one, so re-running a cell leaves no orphan run or figure."""
    key = (kind, *creation_site())
    previous = _MADE.get(key)
    _MADE[key] = made
    return key, previous


def forget(key: tuple[Any, str, int], made: Any) -> None:
    """Remove ``made`` from the registry (when it is closed), unless a newer view has taken its key."""
    if _MADE.get(key) is made:
        del _MADE[key]


def made_of_kind(kind: Any) -> list[Any]:
    """Every registered view of ``kind``."""
    return [made for (key_kind, _file, _line), made in _MADE.items() if key_kind is kind]
