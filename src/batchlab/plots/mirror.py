"""A live view of a matplotlib figure in the browser: the figure's artists mirrored as bqplot marks.

Every live figure of batchlab is a plain matplotlib :class:`~matplotlib.figure.Figure`, the one
description of what it shows: code changes its artists in place (``line.set_data``, ``text.set_text``,
``ax.set_xlim``) and calls :func:`batchlab.plots.live.request_redraw`. This module gives such a figure
a second rendering for the page: :func:`live_figure` makes (once per figure) a :class:`LiveFigure`,
whose ``widget`` shows one bqplot ``Figure`` per matplotlib ``Axes``, laid out where the axes sit, and
whose :meth:`LiveFigure.sync` copies the artists' current data, the axes' limits, ticks and labels
into the marks, scales and axes of that view. The browser draws them as SVG, and a sync sends only
what changed (one ``hold_sync`` message per changed mark): no image is rendered in the kernel, which is
what made the ipympl canvas slow (measured in ``../shared/notes/stack.md`` and ``benchmarks/``).
Static copies (:func:`batchlab.apps.live.figure_png`) are still drawn by matplotlib.

Converters, one ``(artist type, make, update)`` triple per kind of artist, live in :data:`CONVERTERS`
(found by ``isinstance``, first match wins): ``make(artist, x_scale, y_scale)`` returns a bqplot mark,
a tuple of marks drawn in that order, or None (not drawn live); ``update(artist, mark)`` copies the
artist's state into the mark(s), assigning only the traits whose values changed (it runs inside
``mark.hold_sync()``). This module converts lines (:class:`~matplotlib.lines.Line2D`, ``axhline`` and
``axvline`` too), texts (titles, ``ax.text``), scatter points, ``fill_between`` areas and line
collections; :mod:`batchlab.plots.mirror_shapes` adds images, patches and contours.

Units: matplotlib sizes are in points; geometry (line widths, markers) is mirrored at the figure's
``dpi / 72`` pixels per point, text at 4/3 px per point (CSS points), so that 11-pt text stays 11 pt.

Taught in: every notebook with a live app or plot (02, 04, 05, 06, 07); DESIGN.md §2.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.colors import to_hex, to_rgba
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.markers import MarkerStyle
from matplotlib.text import Text
from matplotlib.ticker import NullLocator

from batchlab.markup import html_key
from batchlab.plots.mirror_shapes import SHAPE_CONVERTERS
from batchlab.validation import require_instance

__all__ = ["CONVERTERS", "TEXT_PX_PER_PT", "LiveFigure", "assign", "has_live_figure", "live_figure"]

TEXT_PX_PER_PT = 4 / 3  # CSS pixels per typographic point: text keeps its size in points
INK = "#1f2933"  # axis lines, tick labels and axis labels
GRID = "#e4e7eb"  # light grid lines (plots/style.py: grid alpha 0.3)
# Colours bqplot takes from the page's theme, fixed to a light figure (white also in the dark theme).
_CSS = ("<style>.batchlab-live {background: #ffffff; --bq-background: #ffffff; --bq-font: sans-serif; "
        f"--bq-axis-tick-text-fill: {INK}; --bq-axislabel-fill: {INK}; --bq-axis-path-stroke: {INK}; "
        f"--bq-mainheading-fill: {INK}; color: {INK}}}"
        ".batchlab-live .batchlab-live-text {line-height: 1.25; padding: 0 2px}</style>")

Converter = tuple[type, Callable[[Any, Any, Any], Any], Callable[[Any, Any], None]]


# ----------------------------------------------------------------------------- helpers


def assign(widget: Any, name: str, value: Any) -> bool:
    """Set trait ``name`` of ``widget`` to ``value`` only if it differs from what it holds (arrays are
    compared by value, NaN equal to NaN): an unchanged value sends nothing. True when it was set.

    Taught in: DESIGN.md §2 (every converter's ``update`` sets its mark's traits this way)."""
    old = getattr(widget, name)
    if isinstance(value, np.ndarray) or isinstance(old, np.ndarray):
        if old is not None and value is not None:
            old_array, new_array = np.asarray(old), np.asarray(value)
            if old_array.shape == new_array.shape and old_array.dtype.kind == new_array.dtype.kind:
                same = (np.array_equal(old_array, new_array, equal_nan=True) if new_array.dtype.kind == "f"
                        else np.array_equal(old_array, new_array))
                if same:
                    return False
    elif old == value:
        return False
    setattr(widget, name, value)
    return True


def _colour(colour: Any, alpha: float | None = None) -> tuple[str, float]:
    """``(hex, opacity)`` of a matplotlib colour, times the artist's ``alpha`` (None: 1)."""
    rgba = to_rgba(colour)
    opacity = rgba[3] * (1.0 if alpha is None else float(alpha))
    return to_hex(rgba, keep_alpha=False), float(opacity)


def _px_per_pt(artist: Any) -> float:
    """Pixels of the live view per point of the artist's figure (geometry: dpi / 72)."""
    figure = artist.get_figure(root=True) if hasattr(artist, "get_figure") else None
    return (figure.dpi if figure is not None else 72.0) / 72.0


_DASH_STYLES = {"-": "solid", "--": "dashed", ":": "dotted", "-.": "dash_dotted"}


def _dash_style(offset_dashes: tuple[Any, Any], linewidth: float) -> str:
    """bqplot's line_style of a collection's ``(offset, dashes)`` pattern (dashes scaled by width)."""
    dashes = offset_dashes[1]
    if not dashes:
        return "solid"
    if len(dashes) >= 4:
        return "dash_dotted"
    return "dotted" if dashes[0] / max(linewidth, 1e-9) < 2 else "dashed"


_MARKERS = {"o": "circle", ".": "circle", "s": "square", "^": "triangle-up", "v": "triangle-down",
            "D": "diamond", "d": "diamond", "+": "plus", "x": "cross", "P": "plus", "X": "cross",
            "*": "star"}
_STAR = "★"


def _marker_area(marker: str, size_pt: float, px_per_pt: float) -> float:
    """bqplot marker size (an area in px²) of a matplotlib marker ``size_pt`` points across."""
    side = size_pt * px_per_pt
    return side * side * (math.pi / 4 if marker == "circle" else 1.0)


def _fraction_scale() -> bq.LinearScale:
    """A scale of axes fractions: 0 at the left (bottom) edge of the axes, 1 at the right (top)."""
    return bq.LinearScale(min=0.0, max=1.0)


def _coordinates(artist: Any, transform: Any, xy: np.ndarray) -> tuple[str, np.ndarray]:
    """How ``xy`` (shape ``(n, 2)``, in ``transform``'s coordinates) goes on the axes of ``artist``:
    ``("data" | "xaxis" | "yaxis" | "axes", points)``. "xaxis": x in data, y an axes fraction (axvline);
    "yaxis": the reverse (axhline); anything else is converted to axes fractions now."""
    ax = artist.axes
    if transform is ax.transData:
        return "data", xy
    if transform is ax.get_xaxis_transform():
        return "xaxis", xy
    if transform is ax.get_yaxis_transform():
        return "yaxis", xy
    if transform is ax.transAxes:
        return "axes", xy
    ax.get_xlim(), ax.get_ylim()  # settle the view limits before transforming
    if len(xy) == 0:
        return "axes", xy
    return "axes", ax.transAxes.inverted().transform(transform.transform(xy))


def _scales_for(kind: str, x_scale: Any, y_scale: Any) -> dict[str, Any]:
    """The mark's scales for coordinates of ``kind`` (see :func:`_coordinates`)."""
    if kind == "data":
        return {"x": x_scale, "y": y_scale}
    if kind == "xaxis":
        return {"x": x_scale, "y": _fraction_scale()}
    if kind == "yaxis":
        return {"x": _fraction_scale(), "y": y_scale}
    return {"x": _fraction_scale(), "y": _fraction_scale()}


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """Point lists ``(n_i, 2)`` joined into one, a NaN row between them (a gap in a bqplot line)."""
    pieces: list[np.ndarray] = []
    for part in parts:
        if len(part):
            if pieces:
                pieces.append(np.full((1, 2), np.nan))
            pieces.append(np.asarray(part, dtype=float).reshape(-1, 2))
    return np.concatenate(pieces) if pieces else np.empty((0, 2))


def _xy(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    return np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1])


# ----------------------------------------------------------------------------- Line2D


def _line_points(line: Line2D) -> tuple[str, np.ndarray]:
    x = np.asarray(line.get_xdata(), dtype=float).ravel()
    y = np.asarray(line.get_ydata(), dtype=float).ravel()
    n = min(len(x), len(y))
    return _coordinates(line, line.get_transform(), np.column_stack([x[:n], y[:n]]))


def _line_marker(line: Line2D) -> str | None:
    marker = line.get_marker()
    return None if marker in (None, "None", "none", "", " ") else _MARKERS.get(str(marker), "circle")


def make_line(line: Line2D, x_scale: Any, y_scale: Any) -> Any:
    """A bqplot mark for a matplotlib line: ``Lines`` (with markers if it has them), ``Scatter`` for a
    markers-only line, a ``Label`` of ★ for star markers."""
    kind, _points = _line_points(line)
    scales = _scales_for(kind, x_scale, y_scale)
    marker = _line_marker(line)
    options = {"scales": scales, "apply_clip": kind == "data", "enable_hover": False}
    if marker is not None and line.get_linestyle() in ("None", "", " "):
        if marker == "star":
            return bq.Label(align="middle", font_unit="px", text=np.array([], dtype=str), **options)
        return bq.Scatter(marker=marker, stroke_width=1.0, **options)
    return bq.Lines(marker=marker if marker != "star" else "diamond", **options)


def update_line(line: Line2D, mark: Any) -> None:
    """Copy a line's data, colour, width, style, markers and visibility into its mark."""
    _kind, points = _line_points(line)
    x, y = _xy(points)
    colour, opacity = _colour(line.get_color(), line.get_alpha())
    px = _px_per_pt(line)
    assign(mark, "visible", bool(line.get_visible()) and len(x) > 0)
    if isinstance(mark, bq.Label):  # star markers
        size = float(line.get_markersize()) * px * 1.3
        assign(mark, "x", x)
        assign(mark, "y", y)
        assign(mark, "text", np.array([_STAR] * len(x)))
        assign(mark, "colors", [_colour(line.get_markerfacecolor())[0]])
        assign(mark, "default_size", size)
        assign(mark, "y_offset", 0)  # bqplot centres a label on its point
        return
    if isinstance(mark, bq.Scatter):
        face = line.get_markerfacecolor()
        filled = face not in ("none", "None") and to_rgba(face)[3] > 0
        assign(mark, "x", x)
        assign(mark, "y", y)
        assign(mark, "colors", [_colour(face if filled else line.get_markeredgecolor())[0]])
        assign(mark, "fill", filled)
        assign(mark, "default_size", round(_marker_area(mark.marker, line.get_markersize(), px)))
        assign(mark, "opacities", [opacity])
        return
    with_x = (x, y)
    assign(mark, "x", with_x[0])
    assign(mark, "y", with_x[1])
    assign(mark, "colors", [colour])
    assign(mark, "opacities", [opacity])
    assign(mark, "stroke_width", round(float(line.get_linewidth()) * px, 2))
    assign(mark, "line_style", _DASH_STYLES.get(line.get_linestyle(), "solid"))
    assign(mark, "interpolation", {"steps-post": "step-after", "steps-pre": "step-before",
                                   "steps": "step-before"}.get(line.get_drawstyle(), "linear"))
    if mark.marker is not None:
        assign(mark, "marker_size", round(_marker_area(mark.marker, line.get_markersize(), px)))


# ----------------------------------------------------------------------------- Text


_MATH = re.compile(r"\$(.*?)\$")
_SUPERSCRIPT = str.maketrans("0123456789-−.", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁻·")


def plain_text(text: str) -> str:
    """matplotlib's mathtext of tick labels as plain Unicode: ``$\\mathdefault{10^{-2}}$`` → ``10⁻²``,
    ``$\\times$`` → ``×``; other text unchanged.

    Taught in: notebook 07 § 2 (the log axes' labels in the live view read as in the static figure)."""
    def math(match: re.Match[str]) -> str:
        body = match.group(1).replace(r"\mathdefault", "").replace(r"\times", "×").replace(r"\cdot", "·")
        body = re.sub(r"\^\{([^}]*)\}", lambda m: m.group(1).translate(_SUPERSCRIPT), body)
        body = re.sub(r"\^(.)", lambda m: m.group(1).translate(_SUPERSCRIPT), body)
        return body.replace("{", "").replace("}", "").replace("\\", "")

    return _MATH.sub(math, text)


def _font_px(text: Text) -> float:
    return float(text.get_fontsize()) * TEXT_PX_PER_PT


def _bold(text: Text) -> bool:
    weight = text.get_fontweight()
    return weight in ("bold", "heavy", "extra bold", "black", "semibold", "demibold", "demi") or (
        isinstance(weight, int | float) and weight >= 600)


def make_text(text: Text, x_scale: Any, y_scale: Any) -> Any:
    """A bqplot ``Label`` for a text of an axes (titles too), placed in axes fractions."""
    return bq.Label(scales={"x": _fraction_scale(), "y": _fraction_scale()}, apply_clip=False,
                    font_unit="px", enable_hover=False, text=np.array([], dtype=str))


def update_text(text: Text, mark: Any) -> None:
    """Copy a text's string (one label per line), position, colour, size, weight and alignment."""
    ax = text.axes
    lines = text.get_text().split("\n") if text.get_text() else []
    assign(mark, "visible", bool(text.get_visible()) and bool(lines))
    if not lines:
        return
    ax.get_xlim(), ax.get_ylim()  # settle the view limits before transforming
    anchor = text.get_transform().transform([text.get_unitless_position()])
    fx, fy = ax.transAxes.inverted().transform(anchor)[0]
    size = _font_px(text)
    height = max(ax.bbox.height, 1.0)  # the axes' height in pixels (the live view's plot area)
    line_px, n = 1.2 * size, len(lines)
    va = text.get_verticalalignment()
    first = {"top": 0.8 * size, "center": 0.35 * size - (n - 1) / 2 * line_px,
             "center_baseline": 0.35 * size - (n - 1) / 2 * line_px,
             "bottom": -0.2 * size - (n - 1) * line_px}.get(va, -(n - 1) * line_px)
    baseline = first + line_px * np.arange(n)  # pixels below the anchor of each line's baseline
    # bqplot centres a label on its y (SVG dominant-baseline: central): the middle of the letters sits
    # about 0.35 em above the baseline.
    down = baseline - 0.35 * size
    colour, opacity = _colour(text.get_color(), text.get_alpha())
    assign(mark, "x", np.full(n, float(fx)))
    assign(mark, "y", np.round(fy - down / height, 6))
    assign(mark, "text", np.array(lines))
    assign(mark, "colors", [colour])
    assign(mark, "opacities", [opacity])
    assign(mark, "default_size", round(size, 2))
    assign(mark, "font_weight", "bold" if _bold(text) else "normal")
    assign(mark, "align", {"left": "start", "right": "end"}.get(text.get_horizontalalignment(), "middle"))
    assign(mark, "rotate_angle", -float(text.get_rotation()))


# ----------------------------------------------------------------------------- collections


def make_segments(collection: LineCollection, x_scale: Any, y_scale: Any) -> Any:
    """One bqplot ``Lines`` for every segment of a ``LineCollection`` (NaN gaps between them)."""
    kind, _ = _coordinates(collection, collection.get_transform(), np.zeros((0, 2)))
    return bq.Lines(scales=_scales_for(kind, x_scale, y_scale), apply_clip=kind == "data",
                    enable_hover=False)


def update_segments(collection: LineCollection, mark: Any) -> None:
    """Copy the segments (their first colour, width and dash style) and visibility into the mark."""
    transform = collection.get_transform()
    _kind, points = _coordinates(collection, transform, _joined(collection.get_segments()))
    x, y = _xy(points)
    assign(mark, "visible", bool(collection.get_visible()) and len(x) > 0)
    colours = collection.get_colors()
    colour, opacity = _colour(colours[0] if len(colours) else "none")  # the alpha is in the colours
    widths = collection.get_linewidths()
    width = float(widths[0]) if len(widths) else 1.0
    assign(mark, "x", x)
    assign(mark, "y", y)
    assign(mark, "colors", [colour])
    assign(mark, "opacities", [opacity])
    assign(mark, "stroke_width", round(width * _px_per_pt(collection), 2))
    styles = collection.get_linestyle()
    assign(mark, "line_style", _dash_style(styles[0], width) if len(styles) else "solid")


def make_area(collection: PolyCollection, x_scale: Any, y_scale: Any) -> Any:
    """A filled, closed bqplot ``Lines`` for the polygons of a ``PolyCollection`` (``fill_between``)."""
    kind, _ = _coordinates(collection, collection.get_transform(), np.zeros((0, 2)))
    return bq.Lines(scales=_scales_for(kind, x_scale, y_scale), fill="inside", close_path=True,
                    apply_clip=kind == "data", enable_hover=False)


def update_area(collection: PolyCollection, mark: Any) -> None:
    """Copy the polygons, fill colour and opacity, edge and visibility into the mark."""
    polygons = [path.vertices for path in collection.get_paths()]
    _kind, points = _coordinates(collection, collection.get_transform(), _joined(polygons))
    x, y = _xy(points)
    faces, edges = collection.get_facecolors(), collection.get_edgecolors()
    face, face_opacity = _colour(faces[0] if len(faces) else "none")  # the alpha is in the colours
    widths = collection.get_linewidths()
    width = float(widths[0]) if len(widths) else 0.0
    edge, _ = _colour(edges[0]) if len(edges) and width > 0 else (face, 0.0)
    assign(mark, "visible", bool(collection.get_visible()) and len(x) > 0)
    assign(mark, "x", x)
    assign(mark, "y", y)
    assign(mark, "fill_colors", [face])
    assign(mark, "fill_opacities", [face_opacity])
    assign(mark, "colors", [edge])
    assign(mark, "stroke_width", round(width * _px_per_pt(collection), 2))


def _collection_marker(collection: PathCollection) -> str:
    """The bqplot marker of a scatter's marker path (compared with matplotlib's own markers)."""
    paths = collection.get_paths()
    if not paths:
        return "circle"
    vertices = paths[0].vertices
    for code, name in (("*", "star"), ("o", "circle"), ("s", "square"), ("^", "triangle-up"),
                       ("v", "triangle-down"), ("D", "diamond")):
        style = MarkerStyle(code)
        candidate = style.get_path().transformed(style.get_transform()).vertices
        if candidate.shape == vertices.shape and np.allclose(candidate, vertices):
            return name
    return "circle"


def make_points(collection: PathCollection, x_scale: Any, y_scale: Any) -> Any:
    """Two bqplot marks for a scatter: its filled points, then its hollow ones (face ``"none"``);
    ``Label`` marks of ★ / ☆ for star markers."""
    kind, _ = _coordinates(collection, collection.get_offset_transform(), np.zeros((0, 2)))
    scales = _scales_for(kind, x_scale, y_scale)
    marker = _collection_marker(collection)
    options = {"apply_clip": kind == "data", "enable_hover": False}
    if marker == "star":
        return tuple(bq.Label(scales=scales, align="middle", font_unit="px", text=np.array([], dtype=str),
                              **options) for _ in range(2))
    return (bq.Scatter(scales=scales, marker=marker, fill=True, stroke_width=1.0, **options),
            bq.Scatter(scales=dict(scales), marker=marker, fill=False, stroke_width=1.5, **options))


def _per_point(values: np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(values)
    if len(values) == 0:
        return np.zeros((n, *values.shape[1:]))
    return values if len(values) == n else np.resize(values, (n, *values.shape[1:]))


def update_points(collection: PathCollection, marks: tuple[Any, Any]) -> None:
    """Copy positions, per-point face and edge colours, size and visibility into the two marks."""
    _kind, offsets = _coordinates(collection, collection.get_offset_transform(),
                                  np.asarray(collection.get_offsets(), dtype=float).reshape(-1, 2))
    n = len(offsets)
    faces = _per_point(collection.get_facecolors(), n).reshape(n, 4) if n else np.zeros((0, 4))
    edges = _per_point(collection.get_edgecolors(), n).reshape(n, 4) if n else np.zeros((0, 4))
    sizes = collection.get_sizes()
    area_pt2 = float(sizes[0]) if len(sizes) else 36.0
    px = _px_per_pt(collection)
    filled = faces[:, 3] > 0 if n else np.zeros(0, dtype=bool)
    for mark, chosen, colours in ((marks[0], filled, faces), (marks[1], ~filled, edges)):
        x, y = _xy(offsets[chosen])
        hexes = [to_hex(c, keep_alpha=False) for c in colours[chosen]]
        opacities = [float(c[3]) for c in colours[chosen]]  # the alpha is in the colours
        assign(mark, "visible", bool(collection.get_visible()) and len(x) > 0)
        assign(mark, "x", x)
        assign(mark, "y", y)
        if isinstance(mark, bq.Label):  # star markers: a filled or an open star
            size = math.sqrt(area_pt2) * px * 1.3
            assign(mark, "text", np.array([_STAR if mark is marks[0] else "☆"] * len(x)))
            assign(mark, "default_size", round(size, 2))
            assign(mark, "y_offset", 0)  # bqplot centres a label on its point
        else:
            assign(mark, "default_size", round(area_pt2 * px * px * (math.pi / 4 if mark.marker == "circle"
                                                                      else 1.0)))
        assign(mark, "colors", hexes or ["#000000"])
        assign(mark, "opacities", [round(o, 4) for o in opacities] or [1.0])


#: The converters, first match wins: ``(artist type, make, update)``.
CONVERTERS: list[Converter] = [
    (Line2D, make_line, update_line),
    (Text, make_text, update_text),
    (LineCollection, make_segments, update_segments),
    (PolyCollection, make_area, update_area),
    (PathCollection, make_points, update_points),
    *SHAPE_CONVERTERS,
]


def _converter(artist: Any) -> Converter | None:
    for converter in CONVERTERS:
        if isinstance(artist, converter[0]):
            return converter
    return None


# ----------------------------------------------------------------------------- ticks and axes


def js_number(value: float) -> str:
    """``value`` as JavaScript writes a number (how bqplot looks up a tick's label): ``1000``,
    ``0.00001``, ``1e-7``, ``2.5``.

    Taught in: notebook 07 § 2 (each tick of the live view is labelled as matplotlib labels it)."""
    value = float(value)
    if value == 0:
        return "0"
    if 1e-6 <= abs(value) < 1e21:
        return np.format_float_positional(value, trim="-")
    mantissa, exponent = f"{value:e}".split("e")
    mantissa = np.format_float_positional(float(repr(value).split("e")[0]) if "e" in repr(value)
                                          else float(mantissa), trim="-")
    return f"{mantissa}e{'+' if int(exponent) > 0 else '-'}{abs(int(exponent))}"


def _ticks(axis: Any, limits: tuple[float, float]) -> tuple[np.ndarray, dict[str, str]]:
    """Major tick values within ``limits`` and their labels as matplotlib writes them."""
    low, high = min(limits), max(limits)
    span = (high - low) * 1e-9
    values = np.asarray(axis.get_ticklocs(), dtype=float)
    values = values[(values >= low - span) & (values <= high + span)]
    if not len(values):
        return values, {}
    labels = axis.get_major_formatter().format_ticks(list(values))
    return values, {js_number(v): plain_text(label) for v, label in zip(values, labels, strict=True)}


def _scale_kind(ax: Axes, which: str) -> type:
    scale = ax.get_xscale() if which == "x" else ax.get_yscale()
    return bq.LogScale if scale == "log" else bq.LinearScale


def _tick_label_px(ax: Axes) -> float:
    """Font size (px) of the x tick labels of ``ax``: its ``tick_params(labelsize=...)``, else rc's."""
    size = ax.xaxis.get_tick_params(which="major").get("labelsize", mpl.rcParams["xtick.labelsize"])
    return FontProperties(size=size).get_size_in_points() * TEXT_PX_PER_PT


def _grid_on(axis: Any) -> bool:
    lines = axis.get_gridlines()
    return bool(len(lines)) and any(line.get_visible() for line in lines)


class _AxesView:
    """The bqplot Figure of one matplotlib Axes: scales, axes, marks by artist, and label marks."""

    def __init__(self, ax: Axes) -> None:
        self.ax = ax
        self.kinds = (_scale_kind(ax, "x"), _scale_kind(ax, "y"))
        self.x_scale, self.y_scale = self.kinds[0](), self.kinds[1]()
        self.tick_px = _tick_label_px(ax)
        self.base_margin = {"top": 0, "bottom": 0, "left": 0, "right": 0}  # from the matplotlib layout
        self.x_axis = bq.Axis(scale=self.x_scale, side="bottom", **self._axis_style(ax.xaxis))
        self.y_axis = bq.Axis(scale=self.y_scale, side="left", **self._axis_style(ax.yaxis))
        self.x_label = _axis_label()
        self.y_label = _axis_label(rotate_angle=-90.0)
        # Secondary axes (ax.secondary_xaxis): one more bqplot axis on top (or at the right).
        self.secondary = [(child, bq.LinearScale(), _axis_label()) for child in ax.child_axes
                          if _secondary_orientation(child) is not None]
        self.secondary_axes = [
            bq.Axis(scale=scale, side="top" if _secondary_orientation(child) == "x" else "right",
                    grid_lines="none", **{k: v for k, v in self._axis_style(child.xaxis).items()
                                          if k != "grid_lines"})
            for child, scale, _label in self.secondary]
        self.marks: dict[Any, Any] = {}  # artist -> its mark or tuple of marks
        self.updaters: dict[Any, Callable[[Any, Any], None]] = {}
        self.order: list[Any] = []
        self.figure = bq.Figure(
            marks=[], axes=[self.x_axis, self.y_axis, *self.secondary_axes],
            fig_margin=dict(self.base_margin),
            padding_x=0.0, padding_y=0.0, min_aspect_ratio=0.0, max_aspect_ratio=1e6, animation_duration=0,
            background_style={"fill": "#ffffff"},
            layout=widgets.Layout(min_width="0", width="auto", margin="0", overflow="hidden"))

    def _axis_style(self, axis: Any) -> dict[str, Any]:
        return {"color": INK, "grid_color": GRID, "grid_lines": "solid" if _grid_on(axis) else "none",
                "tick_style": {"font-size": f"{self.tick_px:.1f}px", "fill": INK}}

    def artists(self) -> list[Any]:
        """The axes' drawable children with a converter, in drawing order (zorder, stable)."""
        ax = self.ax
        skip = {id(ax.patch), *(id(spine) for spine in ax.spines.values())}
        children = [a for a in ax.get_children()
                    if id(a) not in skip and not isinstance(a, Axis | Axes | Legend)]
        return sorted((a for a in children if _converter(a) is not None), key=lambda a: a.get_zorder())

    def sync(self) -> None:
        ax = self.ax
        artists = self.artists()
        for artist in artists:
            if artist not in self.marks:
                _kind, make, update = _converter(artist)  # type: ignore[misc]
                self.marks[artist] = make(artist, self.x_scale, self.y_scale)
                self.updaters[artist] = update
        present = set(artists)
        for gone in [a for a in self.marks if a not in present]:
            for mark in _as_tuple(self.marks.pop(gone)):
                for scale in mark.scales.values():
                    if scale is not self.x_scale and scale is not self.y_scale:  # its own scales
                        scale.close()
                mark.close()
            self.updaters.pop(gone)
        for artist in artists:
            made = self.marks[artist]
            if made is not None:
                with _held(_as_tuple(made)):
                    self.updaters[artist](artist, made)
        extra = [self.x_label, self.y_label, *(label for _child, _scale, label in self.secondary)]
        order = [m for a in artists for m in _as_tuple(self.marks[a])] + extra
        if order != self.order:
            self.order = order
            self.figure.marks = order
        self._sync_scales_and_axes(ax)

    def _sync_scales_and_axes(self, ax: Axes) -> None:
        for scale, limits in ((self.x_scale, ax.get_xlim()), (self.y_scale, ax.get_ylim())):
            _set_limits(scale, limits)
        for axis, mpl_axis, limits in ((self.x_axis, ax.xaxis, ax.get_xlim()),
                                       (self.y_axis, ax.yaxis, ax.get_ylim())):
            _set_ticks(axis, mpl_axis, limits, bool(ax.axison))
        for (child, scale, _label), axis in zip(self.secondary, self.secondary_axes, strict=True):
            child.apply_aspect()  # the secondary axis takes its limits from its parent's now
            mpl_axis = child.xaxis if _secondary_orientation(child) == "x" else child.yaxis
            limits = child.get_xlim() if mpl_axis is child.xaxis else child.get_ylim()
            _set_limits(scale, limits)
            _set_ticks(axis, mpl_axis, limits, bool(child.get_visible()))
        self._sync_axis_labels(ax)

    def _sync_axis_labels(self, ax: Axes) -> None:
        """Axis labels as text marks (their size in points, like every text), the margins they need."""
        tick_px = self.tick_px
        y_labels = self.y_axis.tick_labels or {}
        tick_width = max((len(text) for text in y_labels.values()), default=0) * 0.6 * tick_px
        x_ticks = bool(self.x_axis.tick_labels) and bool(ax.axison)
        below = (tick_px * 1.2 + 8) if x_ticks else 4.0  # the x tick labels' band
        beside = (tick_width + 14) if self.y_axis.tick_labels and ax.axison else 4.0  # ticks, then labels
        need = {"top": 0.0, "bottom": below if x_ticks else 0.0, "left": beside if y_labels else 0.0,
                "right": 0.0}
        # A tick label is centred on its tick: at an end of the axis half of it lies past the axes.
        if y_labels and ax.axison:
            need["top"] = 0.6 * tick_px
            need["bottom"] = max(need["bottom"], 0.6 * tick_px)
        if x_ticks:
            widest_x = max(len(text) for text in self.x_axis.tick_labels.values()) * 0.6 * tick_px
            need["right"] = 0.5 * widest_x + 2
        for mark, label, where in ((self.x_label, ax.xaxis.label, "bottom"),
                                   (self.y_label, ax.yaxis.label, "left")):
            text = label.get_text()
            size = _font_px(label)
            shown = bool(text) and bool(ax.axison) and bool(label.get_visible())
            with mark.hold_sync():
                assign(mark, "visible", shown)
                assign(mark, "text", np.array([text]))
                assign(mark, "default_size", round(size, 2))
                assign(mark, "colors", [_colour(label.get_color())[0]])
                if where == "bottom":
                    assign(mark, "y_offset", round(below + 0.8 * size))
                else:
                    assign(mark, "x_offset", -round(beside))
            if shown:
                need[where] = (below if where == "bottom" else beside) + 1.1 * size
        for (child, _scale, mark), axis in zip(self.secondary, self.secondary_axes, strict=True):
            label = child.xaxis.label if _secondary_orientation(child) == "x" else child.yaxis.label
            size, text = _font_px(label), label.get_text()
            with mark.hold_sync():
                assign(mark, "visible", bool(text))
                assign(mark, "text", np.array([text]))
                assign(mark, "default_size", round(size, 2))
                assign(mark, "y", np.array([1.0]))
                assign(mark, "y_offset", -round(_font_px(child.xaxis.label) * 0.2 + tick_px * 1.2 + 8))
            band = (tick_px * 1.2 + 8 if axis.tick_labels else 0) + (1.1 * size if text else 0)
            need["top"] = max(need["top"], band)
        titles = [a for a in self.marks if isinstance(a, Text) and a.get_text() and a.get_visible()
                  and self.order and _above_axes(a)]
        if titles:
            need["top"] = max(need["top"], max(1.3 * _font_px(t) for t in titles) + 4)
        margin = {side: max(self.base_margin[side], round(need[side])) for side in self.base_margin}
        assign(self.figure, "fig_margin", margin)

    def place(self, margin: dict[str, int], flex: float, height: int) -> None:
        """Put the view where its axes sit: margins (px) from the matplotlib layout, its share of the row's
        width and its height (px)."""
        self.base_margin = margin
        assign(self.figure.layout, "flex", f"{flex:.4f} 1 0%")
        assign(self.figure.layout, "height", f"{height}px")

    def close(self) -> None:
        close_tree(self.figure)


def _axis_label(**options: Any) -> bq.Label:
    """A text mark for an axis label, in axes fractions (its offset in pixels is set by each sync)."""
    where = {"x": [0.0], "y": [0.5]} if options.get("rotate_angle") else {"x": [0.5], "y": [0.0]}
    return bq.Label(scales={"x": _fraction_scale(), "y": _fraction_scale()}, text=np.array([""]),
                    align="middle", font_unit="px", font_weight="normal", apply_clip=False,
                    enable_hover=False, colors=[INK], **where, **options)


def _secondary_orientation(child: Any) -> str | None:
    """"x" or "y" for a secondary axis of an axes (``secondary_xaxis`` / ``secondary_yaxis``), else None:
    a secondary axis has no ticks on its other axis (a ``NullLocator``)."""
    axes = (getattr(child, "xaxis", None), getattr(child, "yaxis", None))
    if not all(isinstance(axis, Axis) for axis in axes):
        return None
    x_null = isinstance(child.xaxis.get_major_locator(), NullLocator)
    y_null = isinstance(child.yaxis.get_major_locator(), NullLocator)
    return "x" if y_null and not x_null else "y" if x_null and not y_null else None


def _above_axes(text: Text) -> bool:
    """Whether a text sits above its axes (a title)."""
    ax = text.axes
    anchor = text.get_transform().transform([text.get_unitless_position()])
    return bool(ax.transAxes.inverted().transform(anchor)[0][1] >= 1.0)


def _set_limits(scale: Any, limits: tuple[float, float]) -> None:
    low, high = float(limits[0]), float(limits[1])
    with scale.hold_sync():
        assign(scale, "reverse", bool(high < low))
        assign(scale, "min", min(low, high))
        assign(scale, "max", max(low, high))


def _set_ticks(axis: Any, mpl_axis: Any, limits: tuple[float, float], visible: bool) -> None:
    values, labels = _ticks(mpl_axis, limits)
    with axis.hold_sync():
        assign(axis, "visible", visible)
        if len(values):
            assign(axis, "num_ticks", None)
            assign(axis, "tick_values", values)
            assign(axis, "tick_labels", labels)
        else:  # no ticks at all (set_xticks([]))
            assign(axis, "tick_values", None)
            assign(axis, "tick_labels", None)
            assign(axis, "num_ticks", 0)


def close_tree(widget: Any) -> None:
    """Close ``widget`` and every widget it holds in its traits (children, marks, axes, scales,
    layouts, styles), each once."""
    seen: set[int] = set()
    stack = [widget]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        for name in item.keys:
            value = getattr(item, name, None)
            values = (value.values() if isinstance(value, dict)
                      else value if isinstance(value, list | tuple) else (value,))
            stack.extend(v for v in values if isinstance(v, widgets.Widget))
        item.close()


def _as_tuple(made: Any) -> tuple[Any, ...]:
    if made is None:
        return ()
    return made if isinstance(made, tuple) else (made,)


class _held:
    """``hold_sync()`` of several widgets at once: each sends its changed traits in one message."""

    def __init__(self, marks: tuple[Any, ...]) -> None:
        self.contexts = [mark.hold_sync() for mark in marks]

    def __enter__(self) -> None:
        for context in self.contexts:
            context.__enter__()

    def __exit__(self, *exc: Any) -> None:
        for context in reversed(self.contexts):
            context.__exit__(*exc)


# ----------------------------------------------------------------------------- layout


def _rows(axes: list[Axes]) -> list[list[Axes]]:
    """Axes grouped into rows (overlapping vertical extents), top row first, left to right."""
    rows: list[list[Axes]] = []
    for ax in sorted(axes, key=lambda a: -a.get_position().y1):
        box = ax.get_position()
        for row in rows:
            top = max(a.get_position().y1 for a in row)
            bottom = min(a.get_position().y0 for a in row)
            overlap = min(top, box.y1) - max(bottom, box.y0)
            if overlap > 0.5 * min(box.height, top - bottom):
                row.append(ax)
                break
        else:
            rows.append([ax])
    return [sorted(row, key=lambda a: a.get_position().x0) for row in rows]


def _bounds(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Cells for consecutive ``(low, high)`` spans in [0, 1]: each boundary halfway between neighbours."""
    cuts = [0.0] + [(spans[k][1] + spans[k + 1][0]) / 2 for k in range(len(spans) - 1)] + [1.0]
    return [(cuts[k], cuts[k + 1]) for k in range(len(spans))]


def _figure_text_html(texts: list[Text]) -> str:
    """Figure-level texts (``fig.text``, ``suptitle``) as HTML lines, in their colour, size and weight."""
    parts = []
    for text in texts:
        if not text.get_visible() or not text.get_text():
            continue
        align = {"left": "left", "right": "right"}.get(text.get_horizontalalignment(), "center")
        weight = "bold" if _bold(text) else "normal"
        colour = to_hex(text.get_color(), keep_alpha=False)
        body = "<br>".join(html.escape(line) for line in text.get_text().split("\n"))
        parts.append(f"<div class='batchlab-live-text' style='text-align:{align};font-weight:{weight};"
                     f"font-size:{_font_px(text):.1f}px;color:{colour}'>{body}</div>")
    return "".join(parts)


def _legend_shape(handle: Any) -> tuple[str, str]:
    """``(colour, swatch shape)`` of a legend handle, for :func:`batchlab.markup.html_key`."""
    if isinstance(handle, Line2D):
        style = handle.get_linestyle()
        shape = {"--": "dashed", ":": "dotted", "-.": "dashed"}.get(style, "line")
        if style in ("None", "", " "):
            shape = "dot"
        return to_hex(handle.get_color(), keep_alpha=False), shape
    if isinstance(handle, LineCollection):
        colours = handle.get_colors()
        styles = handle.get_linestyle()
        width = float(handle.get_linewidths()[0]) if len(handle.get_linewidths()) else 1.0
        dash = _dash_style(styles[0], width) if len(styles) else "solid"
        return (to_hex(colours[0] if len(colours) else "black", keep_alpha=False),
                {"dotted": "dotted", "dashed": "dashed", "dash_dotted": "dashed"}.get(dash, "line"))
    faces = handle.get_facecolor() if hasattr(handle, "get_facecolor") else []
    face = np.asarray(faces).reshape(-1, 4) if len(faces) else np.zeros((0, 4))
    if len(face) and face[0][3] > 0:
        return to_hex(face[0], keep_alpha=False), "dot"
    edges = handle.get_edgecolor() if hasattr(handle, "get_edgecolor") else []
    edge = np.asarray(edges).reshape(-1, 4) if len(edges) else np.zeros((0, 4))
    return (to_hex(edge[0], keep_alpha=False) if len(edge) else INK), "frame"


def _legend_html(legends: list[Legend]) -> str:
    """The figure's legends (``fig.legend`` and ``ax.legend``) as one HTML key below the rows
    (:func:`batchlab.markup.html_key`), each entry once: a key never covers a curve, as a legend box
    inside the axes can once the data move, and it costs nothing to redraw."""
    entries = []
    for legend in legends:
        for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=False):
            if handle is None:
                continue
            colour, shape = _legend_shape(handle)
            entries.append((colour, html.escape(text.get_text()), shape))
    entries = list(dict.fromkeys(entries))  # in order, without repeats
    return html_key(entries) if entries else ""


class LiveFigure:
    """A bqplot view of a matplotlib Figure: one bqplot Figure per Axes, marks converted from its artists.

    ``widget`` (an ``ipywidgets.VBox``) is what an app puts on the page: rows of bqplot Figures placed as
    the matplotlib axes sit (:meth:`matplotlib.axes.Axes.get_position`), 100 % wide up to the figure's
    own width in pixels (``figsize × dpi``), each row as high as its share of the figure; figure-level
    texts (``fig.text``, ``suptitle``) are HTML lines above (or below) the rows. :meth:`sync` copies the
    figure's current state into the view, sending only what changed. Make one with :func:`live_figure`.

    Taught in: every notebook with a live app or plot (02, 04, 05, 06, 07); DESIGN.md §2.
    """

    def __init__(self, fig: Figure) -> None:
        self.fig = require_instance("fig", fig, Figure, "matplotlib Figure")
        self._lock = threading.RLock()
        self.closed = False
        self.header = widgets.HTML(layout=widgets.Layout(margin="0", width="100%"))
        self.footer = widgets.HTML(layout=widgets.Layout(margin="0", width="100%"))
        width_px = round(fig.get_figwidth() * fig.dpi)
        self.widget = widgets.VBox(layout=widgets.Layout(width="100%", max_width=f"{width_px}px", margin="0"))
        self.widget.add_class("batchlab-live")
        self.views: list[_AxesView] = []
        self.rows: list[widgets.HBox] = []
        self._structure: tuple[Any, ...] = ()
        self.sync()

    def _layout_key(self) -> tuple[Any, ...]:
        """What the view's structure depends on: the axes in their rows and their scale types (figure
        texts are HTML that each sync rewrites: a new title does not rebuild the view)."""
        fig = self.fig
        rows = _rows([ax for ax in fig.axes if ax.get_visible()])
        return (tuple(tuple(id(ax) for ax in row) for row in rows),
                tuple((_scale_kind(ax, "x"), _scale_kind(ax, "y"), len(ax.child_axes)) for row in rows
                      for ax in row))

    def _build(self) -> None:
        """(Re)build the rows of bqplot Figures for the current axes (once, or when the axes change)."""
        fig = self.fig
        for view in self.views:
            view.close()
        for row in self.rows:  # the old rows' boxes (their figures were closed with their views)
            row.layout.close()
            row.close()
        engine = fig.get_layout_engine()
        if engine is not None:  # constrained layout places the axes when drawn: place them now
            engine.execute(fig)
        rows = _rows([ax for ax in fig.axes if ax.get_visible()])
        self.views = [_AxesView(ax) for row in rows for ax in row]
        by_axes = {id(view.ax): view for view in self.views}
        self.rows = [widgets.HBox([by_axes[id(ax)].figure for ax in row],
                                  layout=widgets.Layout(width="100%", margin="0")) for row in rows]
        self.widget.children = [self.header, *self.rows, self.footer]

    def _place(self) -> None:
        """Margins, widths and heights of the views from where the matplotlib axes sit now."""
        fig = self.fig
        width, height = fig.get_figwidth() * fig.dpi, fig.get_figheight() * fig.dpi
        top_texts = [t for t in fig.texts if t.get_position()[1] >= 0.5 and t.get_visible() and t.get_text()]
        header_px = sum(1.25 * _font_px(t) * (t.get_text().count("\n") + 1) for t in top_texts)
        rows = _rows([view.ax for view in self.views])
        spans = [(min(a.get_position().y0 for a in row), max(a.get_position().y1 for a in row))
                 for row in rows]
        cells = _bounds([(1 - high, 1 - low) for low, high in spans])  # from the top
        by_axes = {id(view.ax): view for view in self.views}
        for row, (cell_top, cell_bottom) in zip(rows, cells, strict=True):
            shrink = header_px if cell_top == 0.0 else 0.0  # the header takes the top of the first row
            row_px = max(round((cell_bottom - cell_top) * height - shrink), 20)
            columns = _bounds([(ax.get_position().x0, ax.get_position().x1) for ax in row])
            for ax, (left, right) in zip(row, columns, strict=True):
                box = ax.get_position()
                margin = {"top": max(round((1 - box.y1 - cell_top) * height - shrink), 0),
                          "bottom": max(round((cell_bottom - (1 - box.y0)) * height), 0),
                          "left": max(round((box.x0 - left) * width), 0),
                          "right": max(round((right - box.x1) * width), 0)}
                by_axes[id(ax)].place(margin, right - left, row_px)

    def sync(self) -> None:
        """Copy every artist's current data, the limits, ticks, labels and texts into the view; only
        changed traits are sent (each mark in one message). Cheap: nothing is rendered here."""
        with self._lock:
            if self.closed:
                return
            key = self._layout_key()
            if key != self._structure:
                self._build()
                self._structure = key
            self._place()
            for view in self.views:
                view.sync()
            fig = self.fig
            top = [t for t in fig.texts if t.get_position()[1] >= 0.5]
            bottom = [t for t in fig.texts if t.get_position()[1] < 0.5]
            assign(self.header, "value", _CSS + _figure_text_html(top))
            legends = [*fig.legends, *(view.ax.get_legend() for view in self.views)]
            shown = [legend for legend in legends if legend is not None and legend.get_visible()]
            assign(self.footer, "value", _figure_text_html(bottom) + _legend_html(shown))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The live view, plus a PNG of the matplotlib figure for readers without a kernel."""
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png")
        bundle = dict(self.widget._repr_mimebundle_())
        bundle["image/png"] = base64.b64encode(buffer.getvalue()).decode("ascii")
        bundle["text/plain"] = "a live figure (run the notebook to see it move)"
        return bundle

    def marks_of(self, artist: Any) -> tuple[Any, ...]:
        """The bqplot mark(s) that show ``artist`` (empty when it is not drawn live)."""
        for view in self.views:
            if artist in view.marks:
                return _as_tuple(view.marks[artist])
        return ()

    def view_of(self, ax: Axes) -> Any:
        """The bqplot Figure that shows the matplotlib axes ``ax``."""
        for view in self.views:
            if view.ax is ax:
                return view.figure
        raise ValueError(f"ax must be one of the figure's visible axes, got {ax!r}")

    def scales_of(self, ax: Axes) -> tuple[Any, Any]:
        """The bqplot ``(x scale, y scale)`` of the matplotlib axes ``ax``."""
        for view in self.views:
            if view.ax is ax:
                return view.x_scale, view.y_scale
        raise ValueError(f"ax must be one of the figure's visible axes, got {ax!r}")

    def close(self) -> None:
        """Close every widget of the view; later syncs do nothing. Closing twice does nothing."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            close_tree(self.widget)
            _LIVE.pop(self.fig, None)


_LIVE: weakref.WeakKeyDictionary[Figure, LiveFigure] = weakref.WeakKeyDictionary()
_LIVE_LOCK = threading.Lock()


def live_figure(fig: Figure) -> LiveFigure:
    """The live view of ``fig`` (a matplotlib Figure), made on first use and the same one afterwards.

    Taught in: every notebook with a live app or plot (02, 04, 05, 06, 07); DESIGN.md §2.
    """
    require_instance("fig", fig, Figure, "matplotlib Figure")
    with _LIVE_LOCK:
        view = _LIVE.get(fig)
        if view is None or view.closed:
            view = LiveFigure(fig)
            _LIVE[fig] = view
        return view


def has_live_figure(fig: Any) -> bool:
    """Whether ``fig`` has an open live view (:func:`live_figure` was called for it, and it is not closed).

    Taught in: DESIGN.md §2 (:func:`batchlab.plots.live.request_redraw` syncs only such a figure)."""
    view = _LIVE.get(fig) if isinstance(fig, Figure) else None
    return view is not None and not view.closed
