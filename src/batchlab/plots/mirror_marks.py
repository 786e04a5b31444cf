"""Converters of marks for the live view (:mod:`batchlab.plots.mirror`): lines, texts, scatter points,
areas and line collections; and the small helpers every converter shares.

The live view of a matplotlib figure converts each artist into a bqplot mark with a :data:`Converter`,
a ``(artist type, make, update)`` triple: ``make(artist, x_scale, y_scale)`` returns a bqplot mark, a
tuple of marks drawn in that order, or None (not drawn live); ``update(artist, mark)`` copies the
artist's state into the mark(s), assigning only the traits whose values changed (it runs inside
``mark.hold_sync()``). :data:`batchlab.plots.mirror.CONVERTERS` joins this module's
:data:`MARK_CONVERTERS` with the :data:`~batchlab.plots.mirror_shapes.SHAPE_CONVERTERS` of images,
patches and contours (:mod:`batchlab.plots.mirror_shapes`). This module converts:

* :class:`~matplotlib.lines.Line2D` (``ax.plot``, ``axhline`` and ``axvline`` too) → ``bqplot.Lines``
  (with markers if it has them), ``bqplot.Scatter`` for a markers-only line, a ``bqplot.Label`` of ★
  for star markers;
* :class:`~matplotlib.text.Text` (titles, ``ax.text``) → a ``bqplot.Label`` placed in axes fractions,
  one label per line of the text;
* :class:`~matplotlib.collections.LineCollection` → one ``bqplot.Lines``, NaN gaps between segments;
* :class:`~matplotlib.collections.PolyCollection` (``fill_between``) → a filled, closed ``bqplot.Lines``;
* :class:`~matplotlib.collections.PathCollection` (``ax.scatter``) → two ``bqplot.Scatter`` marks, the
  filled points and the hollow ones (two ``bqplot.Label`` marks of ★ / ☆ for star markers).

The helpers the other two modules use too: :func:`assign` (set a trait only when its value changed),
:func:`hex_and_opacity`, :func:`px_per_pt`, :func:`dash_style`, :func:`fraction_scale`,
:func:`split_xy`, :func:`font_px` and :func:`is_bold`.

Units: matplotlib sizes are in points; geometry (line widths, markers) is mirrored at the figure's
``dpi / 72`` pixels per point, text at :data:`TEXT_PX_PER_PT` (4/3 px per point, CSS points), so that
11-pt text stays 11 pt.

Taught in: every notebook with a live app or plot (02, 04, 05, 06, 07); DESIGN.md §2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import bqplot as bq
import numpy as np
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.colors import to_hex, to_rgba
from matplotlib.lines import Line2D
from matplotlib.markers import MarkerStyle
from matplotlib.text import Text

__all__ = ["LINE_STYLES", "MARK_CONVERTERS", "TEXT_PX_PER_PT", "Converter", "assign", "dash_style", "font_px",
           "fraction_scale", "hex_and_opacity", "is_bold", "make_area", "make_line", "make_points",
           "make_segments", "make_text", "px_per_pt", "split_xy", "update_area", "update_line",
           "update_points", "update_segments", "update_text"]

TEXT_PX_PER_PT = 4 / 3  # CSS pixels per typographic point: text keeps its size in points

#: A converter: ``(artist type, make(artist, x_scale, y_scale), update(artist, mark))``.
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


def hex_and_opacity(colour: Any, alpha: float | None = None) -> tuple[str, float]:
    """``(hex, opacity)`` of a matplotlib colour, times the artist's ``alpha`` (None: 1)."""
    rgba = to_rgba(colour)
    opacity = rgba[3] * (1.0 if alpha is None else float(alpha))
    return to_hex(rgba, keep_alpha=False), float(opacity)


def px_per_pt(artist: Any) -> float:
    """Pixels of the live view per point of the artist's figure (geometry: dpi / 72)."""
    figure = artist.get_figure(root=True) if hasattr(artist, "get_figure") else None
    return (figure.dpi if figure is not None else 72.0) / 72.0


# bqplot's line_style of matplotlib's named dash styles, in both spellings (a Line2D reports "--", a
# patch "dashed"); any other style draws solid.
LINE_STYLES = {"-": "solid", "solid": "solid", "--": "dashed", "dashed": "dashed", ":": "dotted",
               "dotted": "dotted", "-.": "dash_dotted", "dashdot": "dash_dotted"}


def dash_style(offset_dashes: tuple[Any, Any], linewidth: float) -> str:
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


def _marker_area(marker: str, size_pt: float, pixels_per_pt: float) -> float:
    """bqplot marker size (an area in px²) of a matplotlib marker ``size_pt`` points across."""
    side = size_pt * pixels_per_pt
    return side * side * (math.pi / 4 if marker == "circle" else 1.0)


def fraction_scale() -> bq.LinearScale:
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
        return {"x": x_scale, "y": fraction_scale()}
    if kind == "yaxis":
        return {"x": fraction_scale(), "y": y_scale}
    return {"x": fraction_scale(), "y": fraction_scale()}


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """Point lists ``(n_i, 2)`` joined into one, a NaN row between them (a gap in a bqplot line)."""
    pieces: list[np.ndarray] = []
    for part in parts:
        if len(part):
            if pieces:
                pieces.append(np.full((1, 2), np.nan))
            pieces.append(np.asarray(part, dtype=float).reshape(-1, 2))
    return np.concatenate(pieces) if pieces else np.empty((0, 2))


def split_xy(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``x`` and ``y`` columns of points ``(n, 2)``, as contiguous float arrays (a mark's data)."""
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
    x, y = split_xy(points)
    colour, opacity = hex_and_opacity(line.get_color(), line.get_alpha())
    px = px_per_pt(line)
    assign(mark, "visible", bool(line.get_visible()) and len(x) > 0)
    if isinstance(mark, bq.Label):  # star markers
        size = float(line.get_markersize()) * px * 1.3
        assign(mark, "x", x)
        assign(mark, "y", y)
        assign(mark, "text", np.array([_STAR] * len(x)))
        assign(mark, "colors", [hex_and_opacity(line.get_markerfacecolor())[0]])
        assign(mark, "default_size", size)
        assign(mark, "y_offset", 0)  # bqplot centres a label on its point
        return
    if isinstance(mark, bq.Scatter):
        face = line.get_markerfacecolor()
        filled = face not in ("none", "None") and to_rgba(face)[3] > 0
        assign(mark, "x", x)
        assign(mark, "y", y)
        assign(mark, "colors", [hex_and_opacity(face if filled else line.get_markeredgecolor())[0]])
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
    assign(mark, "line_style", LINE_STYLES.get(line.get_linestyle(), "solid"))
    assign(mark, "interpolation", {"steps-post": "step-after", "steps-pre": "step-before",
                                   "steps": "step-before"}.get(line.get_drawstyle(), "linear"))
    if mark.marker is not None:
        assign(mark, "marker_size", round(_marker_area(mark.marker, line.get_markersize(), px)))


# ----------------------------------------------------------------------------- Text


def font_px(text: Text) -> float:
    """A text's size in pixels of the live view (its size in points, as CSS points)."""
    return float(text.get_fontsize()) * TEXT_PX_PER_PT


def is_bold(text: Text) -> bool:
    """Whether a text's font weight is bold (semibold and heavier)."""
    weight = text.get_fontweight()
    return weight in ("bold", "heavy", "extra bold", "black", "semibold", "demibold", "demi") or (
        isinstance(weight, int | float) and weight >= 600)


def make_text(text: Text, x_scale: Any, y_scale: Any) -> Any:
    """A bqplot ``Label`` for a text of an axes (titles too), placed in axes fractions."""
    return bq.Label(scales={"x": fraction_scale(), "y": fraction_scale()}, apply_clip=False,
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
    size = font_px(text)
    height = max(ax.bbox.height, 1.0)  # the axes' height in pixels (the live view's plot area)
    line_px = 1.2 * size
    n = len(lines)
    va = text.get_verticalalignment()
    first = {"top": 0.8 * size, "center": 0.35 * size - (n - 1) / 2 * line_px,
             "center_baseline": 0.35 * size - (n - 1) / 2 * line_px,
             "bottom": -0.2 * size - (n - 1) * line_px}.get(va, -(n - 1) * line_px)
    baseline = first + line_px * np.arange(n)  # pixels below the anchor of each line's baseline
    # bqplot centres a label on its y (SVG dominant-baseline: central): the middle of the letters sits
    # about 0.35 em above the baseline.
    down = baseline - 0.35 * size
    colour, opacity = hex_and_opacity(text.get_color(), text.get_alpha())
    assign(mark, "x", np.full(n, float(fx)))
    assign(mark, "y", np.round(fy - down / height, 6))
    assign(mark, "text", np.array(lines))
    assign(mark, "colors", [colour])
    assign(mark, "opacities", [opacity])
    assign(mark, "default_size", round(size, 2))
    assign(mark, "font_weight", "bold" if is_bold(text) else "normal")
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
    x, y = split_xy(points)
    assign(mark, "visible", bool(collection.get_visible()) and len(x) > 0)
    colours = collection.get_colors()
    colour, opacity = hex_and_opacity(colours[0] if len(colours) else "none")  # the alpha is in the colours
    widths = collection.get_linewidths()
    width = float(widths[0]) if len(widths) else 1.0
    assign(mark, "x", x)
    assign(mark, "y", y)
    assign(mark, "colors", [colour])
    assign(mark, "opacities", [opacity])
    assign(mark, "stroke_width", round(width * px_per_pt(collection), 2))
    styles = collection.get_linestyle()
    assign(mark, "line_style", dash_style(styles[0], width) if len(styles) else "solid")


def make_area(collection: PolyCollection, x_scale: Any, y_scale: Any) -> Any:
    """A filled, closed bqplot ``Lines`` for the polygons of a ``PolyCollection`` (``fill_between``)."""
    kind, _ = _coordinates(collection, collection.get_transform(), np.zeros((0, 2)))
    return bq.Lines(scales=_scales_for(kind, x_scale, y_scale), fill="inside", close_path=True,
                    apply_clip=kind == "data", enable_hover=False)


def update_area(collection: PolyCollection, mark: Any) -> None:
    """Copy the polygons, fill colour and opacity, edge and visibility into the mark."""
    polygons = [path.vertices for path in collection.get_paths()]
    _kind, points = _coordinates(collection, collection.get_transform(), _joined(polygons))
    x, y = split_xy(points)
    faces, edges = collection.get_facecolors(), collection.get_edgecolors()
    face, face_opacity = hex_and_opacity(faces[0] if len(faces) else "none")  # the alpha is in the colours
    widths = collection.get_linewidths()
    width = float(widths[0]) if len(widths) else 0.0
    edge, _ = hex_and_opacity(edges[0]) if len(edges) and width > 0 else (face, 0.0)
    assign(mark, "visible", bool(collection.get_visible()) and len(x) > 0)
    assign(mark, "x", x)
    assign(mark, "y", y)
    assign(mark, "fill_colors", [face])
    assign(mark, "fill_opacities", [face_opacity])
    assign(mark, "colors", [edge])
    assign(mark, "stroke_width", round(width * px_per_pt(collection), 2))


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
    px = px_per_pt(collection)
    filled = faces[:, 3] > 0 if n else np.zeros(0, dtype=bool)
    for mark, chosen, colours in ((marks[0], filled, faces), (marks[1], ~filled, edges)):
        x, y = split_xy(offsets[chosen])
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


#: The converters of this module, first match wins: ``(artist type, make, update)``; the mirror
#: appends :data:`batchlab.plots.mirror_shapes.SHAPE_CONVERTERS` (:data:`batchlab.plots.mirror.CONVERTERS`).
MARK_CONVERTERS: list[Converter] = [
    (Line2D, make_line, update_line),
    (Text, make_text, update_text),
    (LineCollection, make_segments, update_segments),
    (PolyCollection, make_area, update_area),
    (PathCollection, make_points, update_points),
]
