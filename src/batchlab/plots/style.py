"""One plotting style for the whole collection: legible on a projector, safe for colour-blind readers.

* **Colours**: the Okabe–Ito palette (Okabe & Ito 2008), distinguishable with every common form of
  colour blindness. :func:`batch_size_color` gives each batch size one colour, the same in every
  notebook: B = 32 is the same blue in notebook 03, 04, 06 and 07.
* **Size**: a full-width figure is :data:`FULL_WIDTH` inches wide at :data:`DPI` dots per inch on screen,
  i.e. 820 pixels, with text of at least 10 pt (:func:`apply_style` sets the defaults). 820 px fits the
  narrowest page the notebooks are read in: JupyterLab's output area is 848 px wide in a 1280-px window
  with the file browser open (a live view, :mod:`batchlab.plots.mirror`, is at most the figure's width
  in pixels and shrinks with a narrower page). Saved and static copies are drawn at
  :data:`SAVE_DPI`: 1,000 pixels for a full-width figure.

Notebooks call :func:`apply_style` once, in their first code cell; plot helpers that choose colours
themselves call :func:`batch_size_color`. A live figure's key is HTML beside it:
:func:`line_key` of its lines (:func:`batchlab.markup.html_key`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import matplotlib as mpl
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D

from batchlab.markup import html_key
from batchlab.validation import require_instance

__all__ = ["DPI", "FULL_WIDTH", "INK", "OKABE_ITO", "SAVE_DPI", "apply_style", "batch_size_color", "line_key"]

# Okabe–Ito, without its yellow (too pale for a line on white); black is the ink colour.
OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky blue": "#56B4E9",
    "purple": "#CC79A7",
}
INK = "#000000"
_CYCLE = list(OKABE_ITO.values())

DPI = 82  # dots per inch of figures on screen: a full-width figure is 820 px (see the module docstring)
SAVE_DPI = 100  # dots per inch of saved figures: a full-width one is 1,000 px
FULL_WIDTH = 10.0  # inches: 820 px on screen, 1,000 px saved

_RC = {
    "figure.dpi": DPI,
    "savefig.dpi": SAVE_DPI,
    "font.size": 12,
    "axes.titlesize": 13,
    "axes.labelsize": 12,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "legend.fontsize": 11,
    "legend.framealpha": 0.9,
    "lines.linewidth": 2.0,
    "lines.markersize": 6,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def apply_style() -> None:
    """Set matplotlib's defaults to the collection's style (fonts, line widths, Okabe–Ito cycle).

    Taught in: notebook 00.
    """
    mpl.rcParams.update(_RC)
    mpl.rcParams["axes.prop_cycle"] = mpl.cycler(color=_CYCLE)


def batch_size_color(batch_size: int) -> str:
    """The colour of batch size ``batch_size`` (an int >= 1) in every figure of the collection.

    Batch sizes are coloured by their power of two (1, 2, 4, … take successive palette colours, a size
    between two powers takes the nearer one), so sizes that usually appear together differ.

    Taught in: notebook 03 § The trade-off, computed.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return _CYCLE[round(math.log2(batch_size)) % len(_CYCLE)]


def line_key(lines: Iterable[Any]) -> str:
    """:func:`~batchlab.markup.html_key` of matplotlib lines: each line's colour, label and style (a dot for
    markers only)."""
    shapes = {"--": "dashed", ":": "dotted", "None": "dot"}
    lines = [require_instance(f"lines[{i}]", line, Line2D, "matplotlib Line2D")
             for i, line in enumerate(lines)]
    return html_key([(to_hex(line.get_color()), html.escape(line.get_label()),
                      shapes.get(line.get_linestyle(), "line")) for line in lines])
