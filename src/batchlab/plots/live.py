"""The live-update idea, in one place: change artists in place, then request a redraw, throttled.

A view changes its artists with ``set_data`` / ``set_text`` and then calls :func:`request_redraw`; while
training runs it does so only when a :class:`Throttle` says yes (at most once every ``interval_s``
seconds of wall time), so that drawing stays a small share of the run. Every live view of batchlab
works this way: the apps of :mod:`batchlab.apps` (through :mod:`batchlab.apps.live`) and
:class:`batchlab.plots.training.LiveTrainingPlot`. :func:`history_status` puts how a run ended into
words, the same in every view, :func:`html_table` is the package's one helper for HTML tables (the
apps' read-outs and static copies) and :func:`html_key` (with :func:`swatch` and :func:`line_key`) draws a
figure's key in HTML, beside the canvas (legends are among the costliest things to redraw). Nothing
here imports ipywidgets.
"""

from __future__ import annotations

import html
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from matplotlib.colors import to_hex
from matplotlib.lines import Line2D

from batchlab.training import History
from batchlab.validation import require_choice, require_float, require_instance

__all__ = ["SWATCHES", "Throttle", "creation_site", "history_status", "html_key", "html_table", "line_key",
           "request_redraw", "swatch"]


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
        self.clock, self.max_share = clock, max_share
        self.restart()

    def restart(self) -> None:
        """Start counting again: the next yes comes ``interval_s`` from now."""
        self.last, self.wait, self.count = self.clock(), self.interval_s, 0

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


def request_redraw(fig: Any, shown: bool = True) -> None:
    """Ask ``fig`` to redraw after its artists changed.

    From a background thread: ``canvas.draw_idle()`` (ipympl then draws in the kernel's main thread,
    which is free). From the main thread, which is busy while a cell trains: ``canvas.draw()``, which
    renders and sends the image at once (a busy kernel cannot answer the browser's request that
    ``draw_idle`` would start), but only once the canvas is ``shown`` on the page: an ipympl canvas drawn
    that way before it is displayed stays blank when it is displayed later (seen in JupyterLab and
    Voilà), so until then ``draw_idle`` leaves the drawing to the page that shows it.
    """
    if shown and threading.current_thread() is threading.main_thread():
        fig.canvas.draw()
    else:
        fig.canvas.draw_idle()


def history_status(history: History) -> tuple[str, str]:
    """``(state, words)`` for how a run ended: diverged (and how), stopped early, not learning (and
    why), or finished."""
    if history.status == "diverged":
        return "diverged", f"Diverged: {history.divergence or 'the loss stopped being a finite number'}"
    if history.status == "stopped":
        return "stopped", (f"Stopped after {history.iterations:,} of {history.plan.total_iterations:,} "
                           "iterations.")
    if history.status == "not learning":
        return "not learning", (f"Not learning: {history.iterations:,} iterations ran as planned, but "
                                f"{history.not_learning}.")
    return "finished", f"Finished: {history.iterations:,} iterations as planned (I × E)."


def creation_site() -> tuple[str, int]:
    """File and line of the code outside batchlab that is calling (a notebook cell keeps its file name
    when it is run again): how a view recognises the cell that made it, to replace what it made before."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(package):
            return frame.filename, frame.lineno or 0
    return "", 0


def html_table(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None, *,
               css_class: str = "batchlab-table", escape: bool = True) -> str:
    """An HTML table: one ``<tr>`` per row of cells (any values, shown with ``str``), an optional header.

    Cells are HTML-escaped unless ``escape=False`` (for cells that hold markup, such as ``<b>``).

    >>> html_table([("B", 32)], header=("name", "value")).split("<tbody>")[1]
    '<tr><td>B</td><td>32</td></tr></tbody></table>'
    """
    def cell(value: Any) -> str:
        return html.escape(str(value)) if escape else str(value)

    head = ("<thead><tr>" + "".join(f"<th>{cell(h)}</th>" for h in header) + "</tr></thead>"
            if header else "")
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table class='{html.escape(css_class)}'>{head}<tbody>{body}</tbody></table>"


# How each kind of key entry is drawn: CSS for a small box before the text ({c} is the colour).
SWATCHES = {
    "line": "width:18px;height:3px;background:{c}",
    "dashed": "width:18px;height:0;border-top:3px dashed {c}",
    "dotted": "width:18px;height:0;border-top:3px dotted {c}",
    "dot": "width:9px;height:9px;border-radius:50%;background:{c}",
    "box": "width:12px;height:12px;border:1px solid #9aa5b1;background:{c}",
    "frame": "width:12px;height:12px;box-sizing:border-box;border:2.5px solid {c}",
    "dashed frame": "width:12px;height:12px;box-sizing:border-box;border:1.5px dashed {c}",
}


def swatch(colour: str, text: str, shape: str = "line") -> str:
    """A key entry in HTML: a small ``shape`` (a key of :data:`SWATCHES`) in ``colour``, then ``text``
    (HTML, not escaped). ``colour`` is any CSS colour, e.g. ``"#0072b2"``."""
    require_instance("colour", colour, str, "CSS colour string")
    require_instance("text", text, str)
    css = SWATCHES[require_choice("shape", shape, SWATCHES)].format(c=colour)
    return f"<span style='display:inline-block;{css};vertical-align:middle'></span>&nbsp;{text}"


def html_key(entries: Iterable[tuple[str, str, str]]) -> str:
    """A figure's key as one wrapping row of :func:`swatch` entries, each ``(colour, text, shape)``.

    Live figures carry their key beside the canvas, not in it: a legend costs 20–35 ms of a 110–140 ms
    redraw on a 2-core CPU, and the key does not change when the data do."""
    cells = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, tuple) or len(entry) != 3:
            raise TypeError(f"entries[{i}] must be a (colour, text, shape) tuple, got {entry!r}")
        cells.append(f"<span>{swatch(*entry)}</span>")
    cells = "".join(cells)
    style = "font-size:0.85em;display:flex;flex-wrap:wrap;gap:4px 14px"
    return f"<div class='batchlab-key' style='{style}'>{cells}</div>"


def line_key(lines: Iterable[Any]) -> str:
    """:func:`html_key` of matplotlib lines: each line's colour, label and style (a dot for markers only)."""
    shapes = {"--": "dashed", ":": "dotted", "None": "dot"}
    lines = [require_instance(f"lines[{i}]", line, Line2D, "matplotlib Line2D")
             for i, line in enumerate(lines)]
    return html_key([(to_hex(line.get_color()), html.escape(line.get_label()),
                      shapes.get(line.get_linestyle(), "line")) for line in lines])
