"""Converters of shapes for the live view (:mod:`batchlab.plots.mirror`): images, patches, contour sets.

The live view of a matplotlib figure converts each artist into a bqplot mark with a ``(type, make,
update)`` triple (the format of :data:`batchlab.plots.mirror.CONVERTERS`, which appends
:data:`SHAPE_CONVERTERS`). ``make(artist, x_scale, y_scale)`` builds the mark (or returns None for an
artist that is not on an axes); ``update(artist, mark)`` copies the artist's current state into it,
assigning only the traits whose values changed (it runs inside ``mark.hold_sync()``, so a mark sends
at most one message per sync, and none when nothing changed). This module converts:

* :class:`~matplotlib.image.AxesImage` (``ax.imshow``) → ``bqplot.Image`` of an ``ipywidgets.Image``:
  a PNG of the artist's own colour mapping of its array (``to_rgba``: its cmap, norm and alpha), one
  PNG pixel per array element, drawn pixelated (interpolation "nearest") and stretched over the
  artist's extent (``origin`` kept). A new PNG is encoded and sent only when those pixels change
  (the array, the cmap, the norm or the alpha); the extent is two numbers.
* :class:`~matplotlib.patches.Rectangle` and :class:`~matplotlib.patches.Polygon` → a closed
  ``bqplot.Lines``: the outline in data coordinates, filled with the face colour (none for
  ``fill=False``), stroked in the edge colour, width and dash style.
* :class:`~matplotlib.contour.ContourSet` (``ax.contour``; ``ax.contourf`` too) → one ``bqplot.Lines``
  with one line per level: each level's paths joined with NaN gaps, in the level's colour.

Units: positions are data coordinates of the artist's axes; line widths are points of the matplotlib
figure drawn at ``dpi / 72`` pixels per point, as the mirror draws lines. Not mirrored: hatching
(``hatch="//"``), per-level dash styles of one contour set (the first level's style is used), curved
path segments (drawn through their control points: none of these artists makes them).

Taught in: notebook 01 (the stepper's digit thumbnails, frames and epoch strip) and notebook 03 (the
landscape's loss contours), shown live by :mod:`batchlab.apps.stepper` and :mod:`batchlab.apps.landscape`.
"""

from __future__ import annotations

import io
import weakref
from collections.abc import Callable
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np
from matplotlib.colors import to_hex
from matplotlib.contour import ContourSet
from matplotlib.image import AxesImage, imsave
from matplotlib.patches import Polygon, Rectangle
from matplotlib.path import Path

from batchlab.validation import require_instance

__all__ = ["SHAPE_CONVERTERS", "make_contour", "make_image", "make_patch", "update_contour", "update_image",
           "update_patch"]

# bqplot's line_style of matplotlib's named dash styles; None / "none" / "" draw no edge.
_LINE_STYLES = {"-": "solid", "solid": "solid", "--": "dashed", "dashed": "dashed", ":": "dotted",
                "dotted": "dotted", "-.": "dash_dotted", "dashdot": "dash_dotted"}
_NO_LINE = (None, "None", "none", "", " ")
# Interpolations that smooth the pixels; every other one ("nearest", "none", "antialiased" when it
# enlarges a small array, as every image here is) shows each array element as a square.
_SMOOTH = ("bilinear", "bicubic", "spline16", "spline36", "hanning", "hamming", "hermite", "kaiser",
           "quadric", "catrom", "gaussian", "bessel", "mitchell", "sinc", "lanczos", "blackman")
# The RGBA pixels (rows, cols, 4) of the PNG each image mark shows now: compared at every update.
_SENT_PIXELS: weakref.WeakKeyDictionary[bq.Image, np.ndarray] = weakref.WeakKeyDictionary()


# ----------------------------------------------------------------------------- helpers


def _assign(widget: Any, name: str, value: Any) -> bool:
    """Set trait ``name`` of ``widget`` to ``value`` only if it differs from what it holds (arrays are
    compared by value, NaN equal to NaN): an unchanged value sends nothing. True when it was set."""
    old = getattr(widget, name)
    if isinstance(value, np.ndarray) or isinstance(old, np.ndarray):
        if old is not None and value is not None:
            old_array, new_array = np.asarray(old), np.asarray(value)
            if old_array.shape == new_array.shape and np.array_equal(old_array, new_array, equal_nan=True):
                return False
    elif old == value:
        return False
    setattr(widget, name, value)
    return True


def _px_per_pt(artist: Any) -> float:
    """Pixels of the live view per point of the artist's figure (``dpi / 72``, as the mirror's lines)."""
    return float(artist.get_figure(root=True).dpi) / 72.0


def _css(rgba: Any) -> str:
    """A colour as CSS hex, its alpha in it only when it is not opaque (``#e66100``, ``#e6610040``)."""
    return to_hex(rgba, keep_alpha=float(rgba[3]) < 1.0)


def _xy(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1])


def _to_data(artist: Any, vertices: np.ndarray) -> np.ndarray:
    """``vertices`` (shape ``(n, 2)``, in the artist's own coordinates) in data coordinates of its axes.

    For an artist drawn in data coordinates (a patch's own transform, then ``transData``) this is
    exact and independent of the figure's size; for any other transform it goes through the display
    and holds for the current limits (every sync computes it again)."""
    if len(vertices) == 0:
        return np.empty((0, 2))
    return (artist.get_transform() - artist.axes.transData).transform(vertices)


def _outline(path: Path) -> tuple[np.ndarray, int]:
    """The points of ``path`` (shape ``(n, 2)``) with a NaN row between its sub-paths (a gap in a bqplot
    line), each closed sub-path (``CLOSEPOLY``) ending on its first point; and the number of sub-paths."""
    vertices = np.asarray(path.vertices, dtype=float)
    codes = path.codes
    if codes is None:
        return vertices.copy(), int(len(vertices) > 0)
    keep = codes != Path.STOP
    vertices, codes = vertices[keep], codes[keep]
    index = np.arange(len(codes))
    moves = codes == Path.MOVETO
    first = np.maximum.accumulate(np.where(moves, index, 0))  # the first point of each point's sub-path
    closes = codes == Path.CLOSEPOLY
    vertices[closes] = vertices[first[closes]]
    starts = index[moves & (index > 0)]
    return np.insert(vertices, starts, np.nan, axis=0), len(starts) + int(len(codes) > 0)


def _stroke(widths_pt: Any, edge: np.ndarray, style: Any, px_per_pt: float) -> tuple[float, str]:
    """``(stroke_width in px, line_style)`` of an edge: width 0 where it is not drawn (no width, a
    transparent colour or linestyle "none")."""
    widths = np.atleast_1d(np.asarray(widths_pt, dtype=float))
    width = float(widths[0]) if len(widths) else 0.0
    if isinstance(style, tuple):  # (offset, dashes) of a collection, or a dash tuple of a patch
        dashes = style[1]
        line_style = ("solid" if not dashes else "dash_dotted" if len(dashes) >= 4
                      else "dotted" if dashes[0] / max(width, 1e-9) < 2 else "dashed")
    else:
        line_style = _LINE_STYLES.get(style, "solid")
    if style in _NO_LINE or width <= 0 or not np.any(np.asarray(edge)[..., 3] > 0):
        return 0.0, line_style
    return round(width * px_per_pt, 2), line_style


# ----------------------------------------------------------------------------- AxesImage


def _pixels(image: AxesImage) -> np.ndarray:
    """The image as the artist colours it: ``(rows, cols, 4)`` uint8 RGBA, its alpha applied."""
    array = image.get_array()
    if array is None or np.size(array) == 0:
        return np.zeros((1, 1, 4), dtype=np.uint8)
    rgba = np.array(image.to_rgba(array, bytes=True), dtype=np.uint8)  # (rows, cols, 4), as matplotlib
    alpha = image.get_alpha()
    if alpha is not None:  # a scalar, or one alpha per pixel
        rgba[..., 3] = np.round(rgba[..., 3] * np.asarray(alpha, dtype=float))
    return rgba


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    imsave(buffer, pixels, format="png")
    return buffer.getvalue()


def make_image(image: AxesImage, x_scale: Any, y_scale: Any) -> bq.Image | None:
    """A ``bqplot.Image`` showing an ``imshow`` image on the axes' scales (None off an axes).

    Its PNG is encoded here; :func:`update_image` places it and encodes a new one only when the pixels
    change."""
    require_instance("image", image, AxesImage, "matplotlib AxesImage")
    if image.axes is None:
        return None
    pixels = _pixels(image)
    mark = bq.Image(image=widgets.Image(value=_png(pixels), format="png"),
                    scales={"x": x_scale, "y": y_scale}, enable_hover=False)
    _SENT_PIXELS[mark] = pixels
    return mark


def update_image(image: AxesImage, mark: bq.Image) -> None:
    """Copy an image's extent, visibility, clipping, interpolation and pixels into its mark.

    The PNG is sent again (as a new ``ipywidgets.Image``: bqplot redraws on a new image widget, not on
    a new value of the same one) only when the RGBA pixels differ from those sent last."""
    require_instance("image", image, AxesImage, "matplotlib AxesImage")
    require_instance("mark", mark, bq.Image, "bqplot Image")
    left, right, bottom, top = image.get_extent()
    row0, row_last = (top, bottom) if image.origin == "upper" else (bottom, top)
    corners = _to_data(image, np.array([[left, row_last], [right, row0]], dtype=float))
    # bqplot puts the PNG's first column at x[0] and its first row at y[1] (either may be the larger)
    _assign(mark, "x", corners[:, 0])
    _assign(mark, "y", corners[:, 1])
    _assign(mark, "visible", bool(image.get_visible()))
    _assign(mark, "apply_clip", bool(image.get_clip_on()))
    _assign(mark, "pixelated", image.get_interpolation() not in _SMOOTH)
    pixels = _pixels(image)
    sent = _SENT_PIXELS.get(mark)
    if sent is not None and sent.shape == pixels.shape and np.array_equal(sent, pixels):
        return
    old = mark.image
    mark.image = widgets.Image(value=_png(pixels), format="png")
    _SENT_PIXELS[mark] = pixels
    if old is not None:
        old.close()


# ----------------------------------------------------------------------------- Rectangle, Polygon


def make_patch(patch: Rectangle | Polygon, x_scale: Any, y_scale: Any) -> bq.Lines | None:
    """A ``bqplot.Lines`` for a ``Rectangle`` or ``Polygon`` on the axes' scales (None off an axes)."""
    require_instance("patch", patch, (Rectangle, Polygon), "matplotlib Rectangle or Polygon")
    if patch.axes is None:
        return None
    return bq.Lines(scales={"x": x_scale, "y": y_scale}, enable_hover=False)


def update_patch(patch: Rectangle | Polygon, mark: bq.Lines) -> None:
    """Copy a patch's outline (data coordinates), face and edge colours, edge width and dash style,
    visibility and clipping into its mark.

    A single closed outline is sent without its repeated first point and drawn with ``close_path``
    (so the first corner is joined like the others); several sub-paths are separated by NaN gaps."""
    require_instance("patch", patch, (Rectangle, Polygon), "matplotlib Rectangle or Polygon")
    require_instance("mark", mark, bq.Lines, "bqplot Lines")
    path = patch.get_path()
    points, parts = _outline(path)
    points = _to_data(patch, points)
    closed = bool(parts == 1 and path.codes is not None and path.codes[-1] == Path.CLOSEPOLY)
    if closed:
        points = points[:-1]
    x, y = _xy(points)
    face, edge = np.asarray(patch.get_facecolor()), np.asarray(patch.get_edgecolor())  # alpha applied
    width, line_style = _stroke(patch.get_linewidth(), edge, patch.get_linestyle(), _px_per_pt(patch))
    _assign(mark, "visible", bool(patch.get_visible()) and len(x) > 0)
    _assign(mark, "x", x)
    _assign(mark, "y", y)
    _assign(mark, "close_path", closed)
    _assign(mark, "fill", "inside" if face[3] > 0 else "none")
    _assign(mark, "fill_colors", [to_hex(face, keep_alpha=False)])
    _assign(mark, "fill_opacities", [round(float(face[3]), 4)])
    _assign(mark, "colors", [_css(edge)])
    _assign(mark, "stroke_width", width)
    _assign(mark, "line_style", line_style)
    _assign(mark, "apply_clip", bool(patch.get_clip_on()))


# ----------------------------------------------------------------------------- ContourSet


def make_contour(contours: ContourSet, x_scale: Any, y_scale: Any) -> bq.Lines | None:
    """One ``bqplot.Lines`` for a contour set, one line per level (None off an axes)."""
    require_instance("contours", contours, ContourSet, "matplotlib ContourSet")
    if contours.axes is None:
        return None
    return bq.Lines(scales={"x": x_scale, "y": y_scale}, enable_hover=False)


def _per_level(colours: Any, levels: int) -> np.ndarray:
    """One RGBA row per level (shape ``(levels, 4)``): a collection's colours repeat as matplotlib
    repeats them; none at all is transparent."""
    colours = np.asarray(colours, dtype=float).reshape(-1, 4)
    return np.resize(colours, (levels, 4)) if len(colours) else np.zeros((levels, 4))


def update_contour(contours: ContourSet, mark: bq.Lines) -> None:
    """Copy a contour set's lines into its mark: row ``k`` of ``x`` and ``y`` (shape ``(levels, n)``,
    padded with NaN) holds level ``k``'s paths with NaN gaps between them, drawn in the level's
    colour; a filled set (``contourf``) fills each level's polygons in its face colour."""
    require_instance("contours", contours, ContourSet, "matplotlib ContourSet")
    require_instance("mark", mark, bq.Lines, "bqplot Lines")
    paths = contours.get_paths()
    levels = len(paths)
    outlines = [_to_data(contours, _outline(path)[0]) for path in paths]
    length = max((len(points) for points in outlines), default=0)
    x = np.full((levels, max(length, 1)), np.nan)
    y = np.full((levels, max(length, 1)), np.nan)
    for k, points in enumerate(outlines):
        x[k, :len(points)], y[k, :len(points)] = points[:, 0], points[:, 1]
    edges, faces = _per_level(contours.get_edgecolor(), levels), _per_level(contours.get_facecolor(), levels)
    styles = contours.get_linestyle()
    width, line_style = _stroke(contours.get_linewidth(), edges, styles[0] if len(styles) else "-",
                                _px_per_pt(contours))
    _assign(mark, "visible", bool(contours.get_visible()) and length > 0)
    _assign(mark, "x", x)
    _assign(mark, "y", y)
    _assign(mark, "colors", [_css(edge) for edge in edges])
    _assign(mark, "stroke_width", width)
    _assign(mark, "line_style", line_style)
    if contours.filled:
        _assign(mark, "fill", "inside")
        _assign(mark, "fill_colors", [to_hex(face, keep_alpha=False) for face in faces])
        _assign(mark, "fill_opacities", [round(float(face[3]), 4) for face in faces])
    _assign(mark, "apply_clip", bool(contours.get_clip_on()))


#: ``(artist type, make(artist, x_scale, y_scale), update(artist, mark))`` for shapes; the mirror
#: appends these to :data:`batchlab.plots.mirror.CONVERTERS` (first match by ``isinstance`` wins).
SHAPE_CONVERTERS: list[tuple[type, Callable[[Any, Any, Any], Any], Callable[[Any, Any], None]]] = [
    (AxesImage, make_image, update_image),
    (Rectangle, make_patch, update_patch),
    (Polygon, make_patch, update_patch),
    (ContourSet, make_contour, update_contour),
]
