"""The live view's shape converters: images, rectangles, polygons and contour sets as bqplot marks.

Each test builds a plain matplotlib Figure, an artist on its axes and bqplot scales, calls the
converter's make/update, and reads the mark's data back. A recorder replaces a widget's ``_send`` to
count the messages it sends (without a kernel nothing else would notice them).
"""

from __future__ import annotations

import io

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.image import AxesImage, imread
from matplotlib.patches import Polygon, Rectangle

from batchlab.plots import mirror_shapes
from batchlab.plots.mirror_shapes import (
    SHAPE_CONVERTERS,
    make_contour,
    make_image,
    make_patch,
    update_contour,
    update_image,
    update_patch,
)


@pytest.fixture
def ax():
    fig = Figure(figsize=(4, 3), dpi=90)
    return fig.add_subplot()


def scales():
    return bq.LinearScale(), bq.LinearScale()


def converted(artist):
    """The mark of ``artist`` as the mirror makes it: the first converter that matches, make, update."""
    _kind, make, update = next(c for c in SHAPE_CONVERTERS if isinstance(artist, c[0]))
    mark = make(artist, *scales())
    with mark.hold_sync():
        update(artist, mark)
    return mark


def record(*marks):
    """Replace each widget's ``_send``: returns the list of ``(widget, state)`` messages sent."""
    sent = []
    for mark in marks:
        mark._send = lambda msg, buffers=None, mark=mark: sent.append((mark, msg.get("state", {})))
    return sent


def synced(update, artist, mark):
    """``update`` inside the mark's hold_sync (as the mirror calls it); returns the messages sent."""
    sent = record(mark, mark.image) if isinstance(mark, bq.Image) else record(mark)
    with mark.hold_sync():
        update(artist, mark)
    return sent


def png_pixels(image_widget):
    """The RGBA pixels (uint8, rows × cols × 4) of an ipywidgets.Image's PNG."""
    assert image_widget.format == "png"
    return np.round(imread(io.BytesIO(image_widget.value), format="png") * 255).astype(np.uint8)


# ----------------------------------------------------------------------------- AxesImage


def test_image_shows_the_artists_own_colour_mapping_at_its_extent(ax):
    array = np.array([[0.0, 0.25, 0.5], [0.75, 1.0, np.nan]])
    image = ax.imshow(array, cmap="viridis", vmin=0, vmax=1, extent=(2, 5, 1, 3), interpolation="nearest")
    mark = converted(image)
    assert isinstance(mark, bq.Image) and isinstance(mark.image, widgets.Image)
    expected = image.to_rgba(image.get_array(), bytes=True)
    assert np.array_equal(png_pixels(mark.image), expected)  # one PNG pixel per element, NaN transparent
    assert png_pixels(mark.image)[1, 2, 3] == 0
    # origin "upper": row 0 at the top (y = 3), where bqplot puts the PNG's first row: y[1]
    assert mark.x.tolist() == [2, 5] and mark.y.tolist() == [1, 3]
    assert mark.pixelated and mark.visible


def test_image_origin_lower_and_inverted_axes_keep_rows_where_matplotlib_draws_them(ax):
    lower = ax.imshow(np.eye(2), origin="lower", extent=(0, 2, 0, 4))
    assert converted(lower).y.tolist() == [4, 0]  # row 0 at the bottom: the PNG's first row at y = 0
    # the stepper's thumbnails: y axis inverted, extent (left, right, bottom, top) with bottom > top
    ax.set_ylim(10, 0)
    thumb = ax.imshow(np.eye(2), extent=(0.1, 0.9, 0.88, 0.08))
    mark = converted(thumb)
    assert mark.x.tolist() == [0.1, 0.9] and mark.y.tolist() == [0.88, 0.08]


def test_image_alpha_is_in_the_png_and_smooth_interpolation_is_not_pixelated(ax):
    image = ax.imshow(np.full((2, 2), 0.5), cmap="gray_r", vmin=0, vmax=1, alpha=0.25,
                      interpolation="bilinear")
    mark = converted(image)
    assert (png_pixels(mark.image)[..., 3] == round(0.25 * 255)).all()
    assert not mark.pixelated


def test_image_update_with_nothing_changed_sends_nothing(ax):
    image = ax.imshow(np.arange(12.0).reshape(3, 4))
    mark = converted(image)
    png = mark.image
    assert synced(update_image, image, mark) == []
    assert mark.image is png


def test_a_changed_array_cmap_or_alpha_sends_a_new_png_and_an_extent_only_two_numbers(ax):
    image = ax.imshow(np.zeros((2, 2)), cmap="gray_r", vmin=0, vmax=1)
    mark = converted(image)
    first = mark.image
    image.set_data(np.array([[0.0, 1.0], [1.0, 0.0]]))
    sent = synced(update_image, image, mark)
    assert [list(state) for _widget, state in sent] == [["image"]]  # one message: the new image widget
    assert mark.image is not first and np.array_equal(png_pixels(mark.image),
                                                      image.to_rgba(image.get_array(), bytes=True))
    for change in (lambda: image.set_cmap("viridis"), lambda: image.set_alpha(0.5)):
        before = mark.image
        change()
        assert [list(state) for _widget, state in synced(update_image, image, mark)] == [["image"]]
        assert mark.image is not before
    # each new PNG's widget replaces the one before, kept for a switch back; older ones are closed;
    # they share one layout widget
    assert first.comm is None and mark.image.comm is not None and mark.image.layout is first.layout
    before = mark.image
    image.set_extent((1, 2, 3, 4))
    sent = synced(update_image, image, mark)
    assert [sorted(state) for _widget, state in sent] == [["x", "y"]] and mark.image is before
    assert mark.x.tolist() == [1, 2] and mark.y.tolist() == [3, 4]


def test_same_pixels_from_a_new_source_send_nothing_and_new_limits_send_a_png(ax):
    image = ax.imshow(np.array([[0.0, 0.5], [1.0, 0.25]]), cmap="gray_r", vmin=0, vmax=1)
    mark = converted(image)
    image.set_data(np.array([[0.0, 0.5], [1.0, 0.25]]))  # a new array, the same values
    image.set_cmap("gray_r")  # a new colormap object, the same colours
    assert synced(update_image, image, mark) == []
    image.set_clim(0, 2)  # the norm's limits: darker pixels
    assert [list(state) for _widget, state in synced(update_image, image, mark)] == [["image"]]
    assert np.array_equal(png_pixels(mark.image), image.to_rgba(image.get_array(), bytes=True))


def test_back_to_the_pixels_shown_before_switches_back_to_their_widget(ax):
    image = ax.imshow(np.eye(3), cmap="gray_r", vmin=0, vmax=1)
    mark = converted(image)
    plain = mark.image
    image.set_alpha(0.25)  # dimmed: a new PNG
    synced(update_image, image, mark)
    dimmed = mark.image
    assert dimmed is not plain and plain.comm is not None  # the plain picture is kept open
    image.set_alpha(None)  # back to the plain picture: its widget again, no new PNG
    assert [list(state) for _widget, state in synced(update_image, image, mark)] == [["image"]]
    assert mark.image is plain and np.array_equal(png_pixels(plain), image.to_rgba(np.eye(3), bytes=True))
    image.set_alpha(0.25)
    synced(update_image, image, mark)
    assert mark.image is dimmed
    mark.close()  # closing the mark closes the picture it kept aside
    assert plain.comm is None
    with pytest.raises(ValueError, match="mark must be the bqplot Image that make_image made"):
        update_image(image, mark)


def test_image_visibility_follows_the_artist(ax):
    image = ax.imshow(np.eye(3))
    mark = converted(image)
    image.set_visible(False)
    assert [state for _widget, state in synced(update_image, image, mark)] == [{"visible": False}]


# ----------------------------------------------------------------------------- Rectangle, Polygon


def test_rectangle_is_a_closed_filled_outline_in_its_colours(ax):
    rect = ax.add_patch(Rectangle((1, 2), 3, 0.5, facecolor="#e66100", edgecolor="#1f2933", lw=3.5,
                                  linestyle="--", alpha=None))
    mark = converted(rect)
    assert isinstance(mark, bq.Lines)
    assert mark.x.tolist() == [1, 4, 4, 1] and mark.y.tolist() == [2, 2, 2.5, 2.5]
    assert mark.close_path and mark.fill == "inside" and mark.visible
    assert mark.fill_colors == ["#e66100"] and mark.fill_opacities == [1.0] and mark.colors == ["#1f2933"]
    assert mark.stroke_width == pytest.approx(3.5 * 90 / 72, abs=0.01) and mark.line_style == "dashed"


def test_frame_without_fill_and_alpha_in_the_colours(ax):
    frame = ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor="#e66100", lw=1))
    mark = converted(frame)
    assert mark.fill == "none" and mark.colors == ["#e66100"] and mark.line_style == "solid"
    cell = ax.add_patch(Rectangle((0, 0), 1, 1, facecolor="#9aa5b1", edgecolor="none", alpha=0.25))
    mark = converted(cell)
    assert mark.fill == "inside" and mark.fill_opacities == [0.25] and mark.stroke_width == 0


def test_rotated_rectangle_and_polygons(ax):
    rotated = ax.add_patch(Rectangle((0, 0), 2, 1, angle=90))
    mark = converted(rotated)
    assert np.allclose(mark.x, [0, 0, -1, -1]) and np.allclose(mark.y, [0, 2, 2, 0])
    triangle = ax.add_patch(Polygon([[0, 0], [1, 0], [0.5, 1]], closed=True, facecolor="C2"))
    mark = converted(triangle)
    assert mark.x.tolist() == [0, 1, 0.5] and mark.y.tolist() == [0, 0, 1] and mark.close_path
    assert mark.fill_colors == [to_hex("C2")]
    open_line = ax.add_patch(Polygon([[0, 0], [1, 1], [2, 0]], closed=False, fill=False))
    mark = converted(open_line)
    assert mark.x.tolist() == [0, 1, 2] and not mark.close_path


def test_patch_in_axes_coordinates_is_placed_in_data_coordinates(ax):
    ax.set(xlim=(10, 20), ylim=(0, 4))
    band = ax.add_patch(Rectangle((0.5, 0), 0.5, 1, transform=ax.transAxes))
    mark = converted(band)
    assert np.allclose(mark.x, [15, 20, 20, 15]) and np.allclose(mark.y, [0, 0, 4, 4])


def test_patch_update_moves_recolours_and_hides_sending_only_what_changed(ax):
    rect = ax.add_patch(Rectangle((0, 0), 0.9, 0.9, facecolor="#e3ecf7", edgecolor="#9aa5b1", lw=0.8))
    mark = converted(rect)
    assert synced(update_patch, rect, mark) == []
    rect.set_xy((2.05, 0.0))
    sent = synced(update_patch, rect, mark)
    assert len(sent) == 1 and sorted(sent[0][1]) == ["x"]  # y is unchanged
    assert np.allclose(mark.x, [2.05, 2.95, 2.95, 2.05])
    rect.set(facecolor="#e66100", edgecolor="#c0392b", linewidth=3.5, linestyle=":")
    sent = synced(update_patch, rect, mark)
    assert len(sent) == 1 and sorted(sent[0][1]) == ["colors", "fill_colors", "line_style", "stroke_width"]
    assert mark.fill_colors == ["#e66100"] and mark.colors == ["#c0392b"] and mark.line_style == "dotted"
    rect.set_visible(False)
    assert [state for _widget, state in synced(update_patch, rect, mark)] == [{"visible": False}]


def test_a_patch_off_any_axes_is_not_drawn_live():
    fig = Figure()
    loose = Rectangle((0, 0), 1, 1)
    loose.set_figure(fig)
    assert make_patch(loose, *scales()) is None


# ----------------------------------------------------------------------------- ContourSet


def contour_data():
    w, c = np.meshgrid(np.linspace(-2, 2, 60), np.linspace(-1.5, 1.5, 50))
    return w, c, w**2 + 2 * c**2


def test_contour_set_is_one_mark_with_one_line_per_level(ax):
    w, c, z = contour_data()
    levels = [0.2, 0.8, 3.0, 7.0]
    contours = ax.contour(w, c, z, levels=levels, colors=["#999999", "#0072b2", "#999999", "#e69f00"],
                          linewidths=0.6)
    mark = converted(contours)
    assert isinstance(mark, bq.Lines) and mark.x.shape == mark.y.shape and mark.x.shape[0] == len(levels)
    assert mark.colors == ["#999999", "#0072b2", "#999999", "#e69f00"]
    assert mark.fill == "none" and mark.stroke_width == pytest.approx(0.6 * 90 / 72, abs=0.01)
    for k, path in enumerate(contours.get_paths()):
        row = np.column_stack([mark.x[k], mark.y[k]])
        assert not np.isnan(row[-1]).any()  # a shorter row is padded with its last point, not NaN
        drawn, n = row[~np.isnan(row[:, 0])], len(path.vertices)
        # the drawn points are the level's vertices (a closing point repeats the loop's first one), then
        # its last point again up to the row's length
        assert np.allclose(drawn[:n - 1], path.vertices[:n - 1]) and np.allclose(drawn[n - 1:], drawn[n - 1])
        assert np.allclose(drawn[:, 0] ** 2 + 2 * drawn[:, 1] ** 2, levels[k], rtol=0.05, atol=0.02)


def test_levels_without_lines_are_left_out_and_one_line_stays_one_dimensional(ax):
    w, c, z = contour_data()
    contours = ax.contour(w, c, z, levels=[-1.0, 1.0, 50.0], colors=["#111111", "#0072b2", "#e69f00"])
    mark = converted(contours)  # only the level 1 has lines: z lies in [0, 8.5]
    assert mark.x.ndim == 1 and mark.colors == ["#0072b2"]
    assert np.allclose(mark.x[~np.isnan(mark.x)] ** 2 + 2 * mark.y[~np.isnan(mark.y)] ** 2, 1.0, atol=0.05)
    assert synced(update_contour, contours, mark) == []


def test_contour_lines_split_where_a_level_has_several_pieces(ax):
    w, c = np.meshgrid(np.linspace(-3, 3, 80), np.linspace(-2, 2, 60))
    z = np.exp(-((w - 1.5) ** 2 + c**2)) + np.exp(-((w + 1.5) ** 2 + c**2))  # two hills: two rings
    contours = ax.contour(w, c, z, levels=[0.5])
    mark = converted(contours)
    x = np.atleast_2d(mark.x)[0]
    pieces = np.split(x, np.flatnonzero(np.isnan(x)))
    assert sum(len(p[~np.isnan(p)]) > 0 for p in pieces) == 2
    drawn = x[~np.isnan(x)]
    assert drawn.min() < -1 and drawn.max() > 1 and not np.any(np.abs(drawn) < 0.3)


def test_filled_contours_fill_each_level(ax):
    w, c, z = contour_data()
    contours = ax.contourf(w, c, z, levels=[0, 1, 4, 9], cmap="viridis", alpha=0.5)
    mark = converted(contours)
    assert mark.fill == "inside" and len(mark.fill_colors) == 3 and mark.fill_opacities == [0.5] * 3
    assert mark.fill_colors == [to_hex(face, keep_alpha=False) for face in contours.get_facecolor()]


def test_contour_update_sends_nothing_unchanged_and_colours_when_changed(ax):
    contours = ax.contour(*contour_data(), levels=3, colors="0.6")
    mark = converted(contours)
    assert synced(update_contour, contours, mark) == []
    contours.set_color("#d55e00")
    sent = synced(update_contour, contours, mark)
    assert [sorted(state) for _widget, state in sent] == [["colors"]]
    assert set(mark.colors) == {"#d55e00"}
    contours.set_visible(False)
    assert [state for _widget, state in synced(update_contour, contours, mark)] == [{"visible": False}]


# ----------------------------------------------------------------------------- the table, bad input


def test_shape_converters_cover_images_patches_and_contours(ax):
    kinds = [kind for kind, _make, _update in SHAPE_CONVERTERS]
    assert kinds == [AxesImage, Rectangle, Polygon, ContourSet]
    assert all(callable(make) and callable(update) for _kind, make, update in SHAPE_CONVERTERS)
    assert mirror_shapes.__all__[0] == "SHAPE_CONVERTERS"


def test_bad_input_names_the_parameter(ax):
    (line,) = ax.plot([0, 1], [0, 1])
    with pytest.raises(TypeError, match="image must be a matplotlib AxesImage, got Line2D"):
        make_image(line, *scales())
    with pytest.raises(TypeError, match="patch must be a matplotlib Rectangle or Polygon, got Line2D"):
        make_patch(line, *scales())
    with pytest.raises(TypeError, match="contours must be a matplotlib ContourSet, got Line2D"):
        make_contour(line, *scales())
    rect = ax.add_patch(Rectangle((0, 0), 1, 1))
    with pytest.raises(TypeError, match="mark must be a bqplot Lines, got Image"):
        update_patch(rect, bq.Image(image=widgets.Image()))
    image = ax.imshow(np.eye(2))
    with pytest.raises(TypeError, match="mark must be a bqplot Image, got Lines"):
        update_image(image, bq.Lines())
    with pytest.raises(ValueError, match="mark must be the bqplot Image that make_image made"):
        update_image(image, bq.Image(image=widgets.Image()))
