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
``mark.hold_sync()``). They come from two modules: :mod:`batchlab.plots.mirror_marks` converts lines
(:class:`~matplotlib.lines.Line2D`, ``axhline`` and ``axvline`` too), texts (titles, ``ax.text``),
scatter points, ``fill_between`` areas and line collections, and holds the helpers every converter
shares (:func:`~batchlab.plots.mirror_marks.assign` and the like); :mod:`batchlab.plots.mirror_shapes`
converts images, patches and contours. This module holds the rest of the view: the bqplot Figure of
each axes (its scales, ticks, axis labels and margins), the layout of the rows, the figure's texts and
its legends' HTML key, and the one live view of each figure.

Units: matplotlib sizes are in points, mirrored as :mod:`batchlab.plots.mirror_marks` says: geometry at
``dpi / 72`` pixels per point; texts and tick labels at 4/3 px per point, so that 11-pt text stays 11 pt.

Taught in: every notebook with a live app or plot (02, 04, 05, 06, 07); DESIGN.md §2.
"""

from __future__ import annotations

import base64
import html
import io
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
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.ticker import NullLocator

from batchlab.markup import html_key
from batchlab.plots.mirror_marks import (
    MARK_CONVERTERS,
    TEXT_PX_PER_PT,
    Converter,
    assign,
    dash_style,
    font_px,
    fraction_scale,
    hex_and_opacity,
    is_bold,
)
from batchlab.plots.mirror_shapes import SHAPE_CONVERTERS
from batchlab.validation import require_instance

__all__ = ["CONVERTERS", "LiveFigure", "has_live_figure", "live_figure"]

INK = "#1f2933"  # axis lines, tick labels and axis labels
GRID = "#e4e7eb"  # light grid lines (plots/style.py: grid alpha 0.3)
# Colours bqplot takes from the page's theme, fixed to a light figure (white also in the dark theme).
_CSS = ("<style>.batchlab-live {background: #ffffff; --bq-background: #ffffff; --bq-font: sans-serif; "
        f"--bq-axis-tick-text-fill: {INK}; --bq-axislabel-fill: {INK}; --bq-axis-path-stroke: {INK}; "
        f"--bq-mainheading-fill: {INK}; color: {INK}}}"
        ".batchlab-live .batchlab-live-text {line-height: 1.25; padding: 0 2px}</style>")

#: Every converter of the live view, first match wins: ``(artist type, make, update)``.
CONVERTERS: list[Converter] = [*MARK_CONVERTERS, *SHAPE_CONVERTERS]


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
            size = font_px(label)
            shown = bool(text) and bool(ax.axison) and bool(label.get_visible())
            with mark.hold_sync():
                assign(mark, "visible", shown)
                assign(mark, "text", np.array([text]))
                assign(mark, "default_size", round(size, 2))
                assign(mark, "colors", [hex_and_opacity(label.get_color())[0]])
                if where == "bottom":
                    assign(mark, "y_offset", round(below + 0.8 * size))
                else:
                    assign(mark, "x_offset", -round(beside))
            if shown:
                need[where] = (below if where == "bottom" else beside) + 1.1 * size
        for (child, _scale, mark), axis in zip(self.secondary, self.secondary_axes, strict=True):
            label = child.xaxis.label if _secondary_orientation(child) == "x" else child.yaxis.label
            size = font_px(label)
            text = label.get_text()
            with mark.hold_sync():
                assign(mark, "visible", bool(text))
                assign(mark, "text", np.array([text]))
                assign(mark, "default_size", round(size, 2))
                assign(mark, "y", np.array([1.0]))
                assign(mark, "y_offset", -round(font_px(child.xaxis.label) * 0.2 + tick_px * 1.2 + 8))
            band = (tick_px * 1.2 + 8 if axis.tick_labels else 0) + (1.1 * size if text else 0)
            need["top"] = max(need["top"], band)
        titles = [a for a in self.marks if isinstance(a, Text) and a.get_text() and a.get_visible()
                  and self.order and _above_axes(a)]
        if titles:
            need["top"] = max(need["top"], max(1.3 * font_px(t) for t in titles) + 4)
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
    return bq.Label(scales={"x": fraction_scale(), "y": fraction_scale()}, text=np.array([""]),
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
        weight = "bold" if is_bold(text) else "normal"
        colour = to_hex(text.get_color(), keep_alpha=False)
        body = "<br>".join(html.escape(line) for line in text.get_text().split("\n"))
        parts.append(f"<div class='batchlab-live-text' style='text-align:{align};font-weight:{weight};"
                     f"font-size:{font_px(text):.1f}px;color:{colour}'>{body}</div>")
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
        dash = dash_style(styles[0], width) if len(styles) else "solid"
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
        header_px = sum(1.25 * font_px(t) * (t.get_text().count("\n") + 1) for t in top_texts)
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
