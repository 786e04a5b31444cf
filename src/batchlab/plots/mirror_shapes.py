"""Converters of shapes for the live view (:mod:`batchlab.plots.mirror`): images, patches, contour sets.

The live view of a matplotlib figure converts each artist into a bqplot mark with a ``(type, make,
update)`` triple (:data:`batchlab.plots.mirror_marks.Converter`): :data:`batchlab.plots.mirror.CONVERTERS`
joins :data:`SHAPE_CONVERTERS` to the converters of lines, texts and collections of
:mod:`batchlab.plots.mirror_marks`, whose shared helpers (:func:`~batchlab.plots.mirror_marks.assign`,
pixels per point, dash styles) this module uses too. ``make(artist, x_scale, y_scale)`` builds the mark
(or returns None for an artist that is not on an axes); ``update(artist, mark)`` copies the artist's
current state into it, assigning only the traits whose values changed (it runs inside
``mark.hold_sync()``, so a mark sends at most one message per sync, and none when nothing changed).
This module converts:

* :class:`~matplotlib.image.AxesImage` (``ax.imshow``) → ``bqplot.Image`` of an ``ipywidgets.Image``:
  a PNG of the artist's own colour mapping of its array (``to_rgba``: its cmap, norm and alpha), one
  PNG pixel per array element, drawn pixelated (interpolation "nearest") and stretched over the
  artist's extent (``origin`` kept). A new PNG is encoded and sent only when those pixels change
  (the array, the cmap, the norm or the alpha), and not even then when they are the pixels shown
  just before (the mark switches back to that picture); the extent is two numbers.
* :class:`~matplotlib.patches.Rectangle` and :class:`~matplotlib.patches.Polygon` → a closed
  ``bqplot.Lines``: the outline in data coordinates, filled with the face colour (none for
  ``fill=False``), stroked in the edge colour, width and dash style.
* :class:`~matplotlib.contour.ContourSet` (``ax.contour``; ``ax.contourf`` too) → one ``bqplot.Lines``
  with one line per level that has lines: each level's paths joined with NaN gaps, in its colour.

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
from dataclasses import dataclass
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import PIL.Image
from matplotlib.colors import to_hex
from matplotlib.contour import ContourSet
from matplotlib.image import AxesImage
from matplotlib.patches import Polygon, Rectangle
from matplotlib.path import Path

from batchlab.plots.mirror_marks import LINE_STYLES, Converter, assign, dash_style, px_per_pt, split_xy
from batchlab.validation import require_instance

__all__ = ["SHAPE_CONVERTERS", "make_contour", "make_image", "make_patch", "update_contour", "update_image",
           "update_patch"]

# Line styles that draw no edge (the others: mirror_marks.LINE_STYLES).
_NO_LINE = (None, "None", "none", "", " ")
# Interpolations that smooth the pixels; every other one ("nearest", "none", "antialiased" when it
# enlarges a small array, as every image here is) shows each array element as a square.
_SMOOTH = ("bilinear", "bicubic", "spline16", "spline36", "hanning", "hamming", "hermite", "kaiser",
           "quadric", "catrom", "gaussian", "bessel", "mitchell", "sinc", "lanczos", "blackman")


@dataclass
class _Shown:
    """What an image mark shows: the ``source`` of its pixels (see :func:`_source`), its ``pixels``
    (``(rows, cols, 4)`` RGBA) and the ``previous`` picture (pixels and image widget, kept open) for a
    switch back without a new PNG: a stepper thumbnail goes from dimmed to not and back."""

    source: tuple[Any, ...]
    pixels: np.ndarray
    previous: tuple[np.ndarray, widgets.Image] | None = None


_SHOWN: weakref.WeakKeyDictionary[bq.Image, _Shown] = weakref.WeakKeyDictionary()


# ----------------------------------------------------------------------------- helpers


def _css(rgba: Any, alpha: bool = True) -> str:
    """An RGBA colour as CSS hex, its alpha in it (unless ``alpha`` is False) only when it is not opaque
    (``#e66100``, ``#e6610040``). A tuple of floats: matplotlib caches those conversions, not arrays'."""
    rgba = tuple(float(value) for value in rgba)
    return to_hex(rgba, keep_alpha=alpha and rgba[3] < 1.0)


def _to_data(artist: Any, transform: Any, points: np.ndarray) -> np.ndarray:
    """``points`` (shape ``(n, 2)``, in ``transform``'s coordinates: the artist's data transform) in data
    coordinates of the artist's axes.

    Usually ``transform`` is the axes' ``transData`` and nothing is done; any other (``transAxes``, a
    blended transform) goes through the display and holds for the current limits (every sync
    computes it again)."""
    ax = artist.axes
    if transform is ax.transData or len(points) == 0:
        return points
    return (transform - ax.transData).transform(points)


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


def _stroke(widths_pt: Any, edge: Any, style: Any, artist: Any) -> tuple[float, str]:
    """``(stroke_width in px, line_style)`` of an artist's edge: width 0 where it is not drawn (no
    width, a transparent colour or linestyle "none"). ``style`` is a patch's named style ("--") or a
    collection's ``(offset, dashes)``; widths are in points, drawn as the mirror draws lines."""
    widths = np.atleast_1d(np.asarray(widths_pt, dtype=float))
    width = float(widths[0]) if len(widths) else 0.0
    line_style = dash_style(style, width) if isinstance(style, tuple) else LINE_STYLES.get(style, "solid")
    if style in _NO_LINE or width <= 0 or not np.any(np.asarray(edge)[..., 3] > 0):
        return 0.0, line_style
    return round(width * px_per_pt(artist), 2), line_style


# ----------------------------------------------------------------------------- AxesImage


def _source(image: AxesImage) -> tuple[Any, ...]:
    """What an image's pixels are computed from: a copy of its array, its colormap, its norm (the
    object and its limits) and its alpha."""
    array = image.get_array()
    norm = image.norm
    return (None if array is None else np.ma.copy(array), image.get_cmap(), norm, norm.vmin, norm.vmax,
            image.get_alpha())


def _same(a: Any, b: Any) -> bool:
    """Whether two parts of a source are equal (arrays by value and mask, NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape):
            return False
        data_a, data_b = np.ma.getdata(a), np.ma.getdata(b)
        return (np.array_equal(data_a, data_b, equal_nan=data_a.dtype.kind == data_b.dtype.kind == "f")
                and np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)))
    return a is b or bool(a == b)


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
    """``(rows, cols, 4)`` uint8 RGBA as PNG bytes (Pillow, which matplotlib itself uses; 20 times
    faster than ``matplotlib.image.imsave`` for a thumbnail)."""
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.ascontiguousarray(pixels), "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def _same_pixels(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b)


def _close_previous(change: dict[str, Any]) -> None:
    """When an image mark is closed (its ``comm`` becomes None), close the picture it kept aside."""
    if change["new"] is None:
        shown = _SHOWN.pop(change["owner"], None)
        if shown is not None and shown.previous is not None:
            shown.previous[1].close()


def make_image(image: AxesImage, x_scale: Any, y_scale: Any) -> bq.Image | None:
    """A ``bqplot.Image`` showing an ``imshow`` image on the axes' scales (None off an axes).

    Its PNG is encoded here; :func:`update_image` places it and encodes a new one only when the pixels
    change. Taught in: notebook 01 (the stepper's digit thumbnails)."""
    require_instance("image", image, AxesImage, "matplotlib AxesImage")
    if image.axes is None:
        return None
    source = _source(image)
    pixels = _pixels(image)
    mark = bq.Image(image=widgets.Image(value=_png(pixels), format="png"),
                    scales={"x": x_scale, "y": y_scale}, enable_hover=False)
    _SHOWN[mark] = _Shown(source, pixels)
    mark.observe(_close_previous, names="comm")
    return mark


def update_image(image: AxesImage, mark: bq.Image) -> None:
    """Copy an image's extent, visibility, clipping, interpolation and pixels into its mark.

    The pixels are computed again only when the array, colormap, norm or alpha changed. New pixels go
    to the page as a new ``ipywidgets.Image`` (bqplot redraws on a new image widget, not on a new value
    of the same one) holding their PNG, or, when they are the pixels shown just before, as that
    picture's widget again (no PNG made or sent). ``mark`` is the one :func:`make_image` made for
    ``image``. Taught in: notebook 01 (seen thumbnails dimmed)."""
    require_instance("image", image, AxesImage, "matplotlib AxesImage")
    require_instance("mark", mark, bq.Image, "bqplot Image")
    shown = _SHOWN.get(mark)
    if shown is None:
        raise ValueError("mark must be the bqplot Image that make_image made (and that is not closed)")
    left, right, bottom, top = image.get_extent()
    row0, row_last = (top, bottom) if image.origin == "upper" else (bottom, top)
    corners = _to_data(image, image.get_transform(), np.array([[left, row_last], [right, row0]], dtype=float))
    # bqplot puts the PNG's first column at x[0] and its first row at y[1] (either may be the larger)
    assign(mark, "x", corners[:, 0])
    assign(mark, "y", corners[:, 1])
    assign(mark, "visible", bool(image.get_visible()))
    assign(mark, "apply_clip", bool(image.get_clip_on()))
    assign(mark, "pixelated", image.get_interpolation() not in _SMOOTH)
    source = _source(image)
    if all(_same(a, b) for a, b in zip(source, shown.source, strict=True)):
        return  # same array, colormap, norm and alpha: same pixels
    pixels = _pixels(image)
    if not _same_pixels(pixels, shown.pixels):
        current = mark.image
        if shown.previous is not None and _same_pixels(pixels, shown.previous[0]):
            mark.image = shown.previous[1]  # the picture shown before: switch back to it
        else:
            mark.image = widgets.Image(value=_png(pixels), format="png",
                                       layout=current.layout)  # never shown itself: bqplot draws the PNG
            if shown.previous is not None:
                shown.previous[1].close()
        shown.previous = (shown.pixels, current)
    shown.source = source
    shown.pixels = pixels


# ----------------------------------------------------------------------------- Rectangle, Polygon


def _patch_outline(patch: Rectangle | Polygon) -> tuple[np.ndarray, bool]:
    """The patch's outline before its data transform (shape ``(n, 2)``), and whether it is one closed
    sub-path (then without its repeated first point: bqplot's ``close_path`` closes it)."""
    if isinstance(patch, Rectangle) and patch.get_angle() == 0:  # the common case, without transforms
        box = patch.get_bbox()
        return np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]]), True
    path = patch.get_path()
    points, parts = _outline(path)
    if len(points):
        points = patch.get_patch_transform().transform(points)  # the unit rectangle to its place, rotated
    closed = bool(parts == 1 and path.codes is not None and path.codes[-1] == Path.CLOSEPOLY)
    return (points[:-1] if closed else points), closed


def make_patch(patch: Rectangle | Polygon, x_scale: Any, y_scale: Any) -> bq.Lines | None:
    """A ``bqplot.Lines`` for a ``Rectangle`` or ``Polygon`` on the axes' scales (None off an axes).

    Taught in: notebook 01 (the stepper's frames and epoch strip)."""
    require_instance("patch", patch, (Rectangle, Polygon), "matplotlib Rectangle or Polygon")
    if patch.axes is None:
        return None
    return bq.Lines(scales={"x": x_scale, "y": y_scale}, enable_hover=False)


def update_patch(patch: Rectangle | Polygon, mark: bq.Lines) -> None:
    """Copy a patch's outline (data coordinates), face and edge colours, edge width and dash style,
    visibility and clipping into its mark.

    A single closed outline is sent without its repeated first point and drawn with ``close_path``
    (so the first corner is joined like the others); several sub-paths are separated by NaN gaps.
    Taught in: notebook 01 (the current batch's frames and cells)."""
    require_instance("patch", patch, (Rectangle, Polygon), "matplotlib Rectangle or Polygon")
    require_instance("mark", mark, bq.Lines, "bqplot Lines")
    points, closed = _patch_outline(patch)
    x, y = split_xy(_to_data(patch, patch.get_data_transform(), points))
    face, edge = patch.get_facecolor(), patch.get_edgecolor()  # RGBA tuples, the alpha applied
    width, line_style = _stroke(patch.get_linewidth(), edge, patch.get_linestyle(), patch)
    assign(mark, "visible", bool(patch.get_visible()) and len(x) > 0)
    assign(mark, "x", x)
    assign(mark, "y", y)
    assign(mark, "close_path", closed)
    assign(mark, "fill", "inside" if face[3] > 0 else "none")
    assign(mark, "fill_colors", [_css(face, alpha=False)])
    assign(mark, "fill_opacities", [round(float(face[3]), 4)])
    assign(mark, "colors", [_css(edge)])
    assign(mark, "stroke_width", width)
    assign(mark, "line_style", line_style)
    assign(mark, "apply_clip", bool(patch.get_clip_on()))


# ----------------------------------------------------------------------------- ContourSet


def make_contour(contours: ContourSet, x_scale: Any, y_scale: Any) -> bq.Lines | None:
    """One ``bqplot.Lines`` for a contour set, one line per level (None off an axes).

    Taught in: notebook 03 (the loss landscape)."""
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
    """Copy a contour set's lines into its mark: one row of ``x`` and ``y`` (shape ``(lines, n)``) per
    level that has lines, holding its paths with NaN gaps between them and drawn in the level's
    colour; a filled set (``contourf``) fills each level's polygons in its face colour.

    A level without lines (outside the data's range) is left out: bqplot would draw an empty path. A
    shorter row is padded by repeating its last point (not NaN: bqplot places each line's end at its
    last point). Taught in: notebook 03 (the loss landscape)."""
    require_instance("contours", contours, ContourSet, "matplotlib ContourSet")
    require_instance("mark", mark, bq.Lines, "bqplot Lines")
    paths = contours.get_paths()
    transform = contours.get_transform()
    outlines = [_to_data(contours, transform, _outline(path)[0]) for path in paths]
    kept = [k for k, points in enumerate(outlines) if len(points)]
    length = max((len(outlines[k]) for k in kept), default=0)
    x, y = np.empty((len(kept), length)), np.empty((len(kept), length))
    for row, k in enumerate(kept):
        padded = np.concatenate([outlines[k], np.repeat(outlines[k][-1:], length - len(outlines[k]), axis=0)])
        x[row], y[row] = padded[:, 0], padded[:, 1]
    if len(kept) <= 1:  # one line: bqplot keeps a single line 1-D
        x, y = x.reshape(-1), y.reshape(-1)
    edges = _per_level(contours.get_edgecolor(), len(paths))[kept]
    faces = _per_level(contours.get_facecolor(), len(paths))[kept]
    styles = contours.get_linestyle()
    width, line_style = _stroke(contours.get_linewidth(), edges, styles[0] if len(styles) else "-",
                                contours)
    assign(mark, "visible", bool(contours.get_visible()) and length > 0)
    assign(mark, "x", x)
    assign(mark, "y", y)
    assign(mark, "colors", [_css(edge) for edge in edges])
    assign(mark, "stroke_width", width)
    assign(mark, "line_style", line_style)
    if contours.filled:
        assign(mark, "fill", "inside")
        assign(mark, "fill_colors", [_css(face, alpha=False) for face in faces])
        assign(mark, "fill_opacities", [round(float(face[3]), 4) for face in faces])
    assign(mark, "apply_clip", bool(contours.get_clip_on()))


#: ``(artist type, make(artist, x_scale, y_scale), update(artist, mark))`` for shapes; the mirror
#: appends these to :data:`batchlab.plots.mirror.CONVERTERS` (first match by ``isinstance`` wins).
SHAPE_CONVERTERS: list[Converter] = [
    (AxesImage, make_image, update_image),
    (Rectangle, make_patch, update_patch),
    (Polygon, make_patch, update_patch),
    (ContourSet, make_contour, update_contour),
]
