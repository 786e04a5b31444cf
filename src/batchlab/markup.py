"""HTML for notebooks, with no plotting library: tables and figure keys.

:func:`html_table` is the package's one helper for HTML tables (a :class:`~batchlab.arithmetic.TrainingPlan`'s
display, the apps' read-outs and static copies); :func:`html_key` (with :func:`swatch`) draws a figure's
key in HTML, beside the canvas. This module sits on the ground floor (it imports only
:mod:`batchlab.validation`), so displaying a plan loads neither torch nor matplotlib.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from batchlab.validation import require_choice, require_instance

__all__ = ["SWATCHES", "html_key", "html_table", "swatch"]


def html_table(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None, *,
               css_class: str = "batchlab-table", escape: bool = True) -> str:
    """An HTML table: one ``<tr>`` per row of cells (any values, shown with ``str``), an optional header.

    Cells are HTML-escaped unless ``escape=False`` (for cells that hold markup, such as ``<b>``). Headers
    are aligned as their cells are (left), so that each column lines up under its name.

    >>> html_table([("B", 32)], header=("name", "value")).split("<tbody>")[1]
    '<tr><td>B</td><td>32</td></tr></tbody></table>'
    """
    def cell(value: Any) -> str:
        return html.escape(str(value)) if escape else str(value)

    head = ("<thead><tr>" + "".join(f"<th style='text-align:left'>{cell(h)}</th>" for h in header)
            + "</tr></thead>"
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


# Black, as figures draw their ink lines: a key shows it in the text's own colour (``currentColor``), so that
# it reads on a dark page too (JupyterLab's dark theme) and stays black on a light one.
_INK = {"#000", "#000000", "black", "k"}


def swatch(colour: str, text: str, shape: str = "line") -> str:
    """A key entry in HTML: a small ``shape`` (a key of :data:`SWATCHES`) in ``colour``, then ``text``
    (HTML, not escaped). ``colour`` is any CSS colour, e.g. ``"#0072b2"``; black is drawn in the text's
    colour (``currentColor``), which is black on a light page and light on a dark one."""
    require_instance("colour", colour, str, "CSS colour string")
    require_instance("text", text, str)
    shown = "currentColor" if colour.strip().lower() in _INK else colour
    css = SWATCHES[require_choice("shape", shape, SWATCHES)].format(c=shown)
    return (f"<span class='batchlab-swatch' style='display:inline-block;{css};vertical-align:middle'>"
            f"</span>&nbsp;{text}")


def html_key(entries: Iterable[tuple[str, str, str]]) -> str:
    """A figure's key as one wrapping row of :func:`swatch` entries, each ``(colour, text, shape)``.

    Live figures carry their key beside the canvas, not in it: a legend is among the costliest things to
    redraw (measured in ``benchmarks/README.md``), and the key does not change when the data do. The key
    sits on a light card, as the figure does (a white canvas): its colours look as the lines they name,
    with the same contrast, in JupyterLab's light and dark themes alike."""
    cells = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, tuple) or len(entry) != 3:
            raise TypeError(f"entries[{i}] must be a (colour, text, shape) tuple, got {entry!r}")
        cells.append(f"<span>{swatch(*entry)}</span>")
    cells = "".join(cells)
    style = ("font-size:0.85em;display:flex;flex-wrap:wrap;gap:4px 14px;background:#ffffff;color:#1f2933;"
             "padding:3px 8px;border-radius:4px")
    return f"<div class='batchlab-key' style='{style}'>{cells}</div>"
