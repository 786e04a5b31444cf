"""The live view of a matplotlib figure (batchlab.plots.mirror): marks hold the artists' data, scales the
limits, a sync sends only what changed, and the layout follows the figure."""

from __future__ import annotations

import threading

import bqplot as bq
import ipywidgets
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from batchlab.plots.live import request_redraw
from batchlab.plots.mirror import CONVERTERS, LiveFigure, has_live_figure, js_number, live_figure, plain_text


@pytest.fixture
def sent(monkeypatch):
    """Every widget message sent: (widget, names of the traits it carries)."""
    messages = []
    send = ipywidgets.Widget._send

    def spy(widget, msg, buffers=None):
        if msg.get("method") == "update":
            messages.append((widget, set(msg["state"])))
        return send(widget, msg, buffers=buffers)

    monkeypatch.setattr(ipywidgets.Widget, "_send", spy)
    return messages


def figure_of_everything():
    """Two axes side by side: lines, axvline, text, scatter (filled and hollow), fill_between, segments."""
    fig = Figure(figsize=(8.0, 3.0), dpi=80)
    left, right = fig.subplots(1, 2)
    artists = {
        "line": left.plot([1, 2, 3], [2.0, 4.0, 8.0], "--", color="#0072B2", lw=2, label="a line")[0],
        "steps": left.plot([1, 2, 3], [1.0, 2.0, 3.0], drawstyle="steps-post", color="#E69F00")[0],
        "vline": left.axvline(2.5, color="0.5", linestyle=":"),
        "dots": left.plot([1.5], [3.0], "o", color="#D55E00", ms=8)[0],
        "text": left.text(0.98, 0.95, "N = 10\nB = 2", transform=left.transAxes, ha="right", va="top",
                          color="#1f2933", fontsize=11),
        "title": left.set_title("Left title"),
        "points": right.scatter([1, 10, 100], [5, 50, 500], s=60, facecolors=["#0072B2", "none", "#009E73"],
                                edgecolors=["#0072B2", "#E69F00", "#009E73"]),
        "band": right.fill_between([1, 10, 100], [1, 10, 100], [2, 20, 200], color="#56B4E9", alpha=0.25,
                                   lw=0),
        "segments": LineCollection([[(2, 0), (2, 1)], [(20, 0), (20, 1)]], colors="#7b8794", linewidths=1,
                                   linestyles=":", transform=right.get_xaxis_transform()),
    }
    right.add_collection(artists["segments"], autolim=False)
    right.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="samples")
    left.set(xlabel="x", ylabel="y", xlim=(0, 4), ylim=(10, 0))  # an inverted y axis
    fig.suptitle("Top line")
    return fig, left, right, artists


def test_after_sync_the_marks_hold_every_artists_data():
    fig, left, _right, a = figure_of_everything()
    view = live_figure(fig)
    line = view.marks_of(a["line"])[0]
    assert isinstance(line, bq.Lines)
    np.testing.assert_array_equal(line.x, [1, 2, 3])
    np.testing.assert_array_equal(line.y, [2, 4, 8])
    assert (line.colors, line.line_style, line.visible) == (["#0072b2"], "dashed", True)
    assert line.stroke_width == pytest.approx(2 * 80 / 72, abs=0.01)  # 2 pt at 80 dpi
    assert view.marks_of(a["steps"])[0].interpolation == "step-after"
    vline = view.marks_of(a["vline"])[0]
    np.testing.assert_array_equal(vline.x, [2.5, 2.5])
    np.testing.assert_array_equal(vline.y, [0, 1])  # axes fractions: the full height whatever the limits
    assert vline.scales["x"] is view.scales_of(left)[0] and vline.line_style == "dotted"
    dots = view.marks_of(a["dots"])[0]
    assert isinstance(dots, bq.Scatter) and dots.colors == ["#d55e00"] and list(dots.x) == [1.5]
    text = view.marks_of(a["text"])[0]
    assert list(text.text) == ["N = 10", "B = 2"] and text.align == "end" and text.colors == ["#1f2933"]
    assert text.y[0] > text.y[1] and text.default_size == pytest.approx(11 * 4 / 3, abs=0.01)
    assert list(view.marks_of(a["title"])[0].text) == ["Left title"]
    filled, hollow = view.marks_of(a["points"])
    np.testing.assert_array_equal(filled.x, [1, 100])
    np.testing.assert_array_equal(hollow.y, [50])
    assert filled.colors == ["#0072b2", "#009e73"] and hollow.colors == ["#e69f00"]
    assert filled.fill and not hollow.fill
    band = view.marks_of(a["band"])[0]
    assert band.fill == "inside" and band.fill_colors == ["#56b4e9"]
    assert band.fill_opacities == [pytest.approx(0.25)] and band.stroke_width == 0
    segments = view.marks_of(a["segments"])[0]
    np.testing.assert_array_equal(segments.x, [2, 2, np.nan, 20, 20])  # one line, NaN between segments
    assert segments.line_style == "dotted" and segments.colors == ["#7b8794"]
    assert "Top line" in view.header.value


def test_scales_hold_the_limits_and_the_scale_type():
    fig, left, right, _ = figure_of_everything()
    view = live_figure(fig)
    x_scale, y_scale = view.scales_of(left)
    assert isinstance(x_scale, bq.LinearScale) and (x_scale.min, x_scale.max) == (0, 4)
    assert (y_scale.min, y_scale.max, y_scale.reverse) == (0, 10, True)  # inverted axes stay inverted
    x_scale, y_scale = view.scales_of(right)
    assert isinstance(x_scale, bq.LogScale) and isinstance(y_scale, bq.LogScale)
    assert (x_scale.min, x_scale.max) == pytest.approx(right.get_xlim())
    left.set_yscale("log")  # a new scale type: the view is rebuilt with a log scale
    left.set_ylim(1, 100)
    view.sync()
    assert isinstance(view.scales_of(left)[1], bq.LogScale)
    assert (view.scales_of(left)[1].min, view.scales_of(left)[1].max) == (1, 100)


def test_ticks_read_as_matplotlib_writes_them():
    fig = Figure(figsize=(5.0, 3.0), dpi=80)
    ax = fig.subplots()
    ax.set(xscale="log", xlim=(1, 1000), ylim=(0, 1))
    ax.set_yticks([0, 0.25, 0.5], ["none", "a quarter", "half"])
    view = live_figure(fig)
    x_axis, y_axis = view.views[0].x_axis, view.views[0].y_axis
    assert list(x_axis.tick_values) == [1, 10, 100, 1000]
    assert x_axis.tick_labels == {"1": "10⁰", "10": "10¹", "100": "10²", "1000": "10³"}
    assert y_axis.tick_labels == {"0": "none", "0.25": "a quarter", "0.5": "half"}
    ax.set_xticks([])
    view.sync()
    assert x_axis.num_ticks == 0 and x_axis.tick_values is None


def test_a_second_sync_sends_nothing_and_a_changed_line_only_its_data(sent):
    fig, left, _right, a = figure_of_everything()
    view = live_figure(fig)
    sent.clear()
    view.sync()
    assert sent == []  # nothing changed: no message at all
    a["line"].set_ydata([3.0, 5.0, 7.0])
    view.sync()
    line = view.marks_of(a["line"])[0]
    assert [(widget, keys) for widget, keys in sent] == [(line, {"y"})]  # one message: that line's y
    np.testing.assert_array_equal(line.y, [3, 5, 7])
    sent.clear()
    left.set_xlim(0, 5)
    view.sync()
    x_scale = view.scales_of(left)[0]
    assert (x_scale.min, x_scale.max) == (0, 5)
    assert x_scale in [widget for widget, _ in sent] and line not in [widget for widget, _ in sent]


def test_visibility_colour_and_text_changes_follow():
    fig, _left, _right, a = figure_of_everything()
    view = live_figure(fig)
    a["line"].set_visible(False)
    a["line"].set_color("#CC79A7")
    a["text"].set_text("changed")
    a["points"].set_facecolors(["#0072B2", "#E69F00", "#009E73"])  # every point filled now
    view.sync()
    assert not view.marks_of(a["line"])[0].visible and view.marks_of(a["line"])[0].colors == ["#cc79a7"]
    assert list(view.marks_of(a["text"])[0].text) == ["changed"]
    filled, hollow = view.marks_of(a["points"])
    assert len(filled.x) == 3 and not hollow.visible


def test_artists_added_and_removed_after_the_view_was_made():
    fig, left, _right, a = figure_of_everything()
    view = live_figure(fig)
    (new,) = left.plot([0, 4], [1, 1], color="black")
    view.sync()
    (mark,) = view.marks_of(new)
    assert mark in view.view_of(left).marks and to_hex("black") in mark.colors
    new.remove()
    a["text"].remove()
    view.sync()
    assert view.marks_of(new) == () and mark not in view.view_of(left).marks


def test_layout_follows_the_figure():
    fig = Figure(figsize=(10.0, 6.0), dpi=82)
    spec = fig.add_gridspec(2, 2, width_ratios=(3, 1), height_ratios=(2, 1))
    top_left, top_right = fig.add_subplot(spec[0, 0]), fig.add_subplot(spec[0, 1])
    bottom = fig.add_subplot(spec[1, :])
    view = live_figure(fig)
    assert view.widget.layout.width == "100%" and view.widget.layout.max_width == "820px"
    rows = [child for child in view.widget.children if isinstance(child, ipywidgets.HBox)]
    assert [len(row.children) for row in rows] == [2, 1]
    heights = [int(row.children[0].layout.height[:-2]) for row in rows]
    assert abs(sum(heights) - 6.0 * 82) <= 2 and heights[0] > 1.5 * heights[1]  # rows share the height
    shares = [float(f.layout.flex.split()[0]) for f in rows[0].children]
    assert shares[0] > 2 * shares[1] and sum(shares) == pytest.approx(1.0)  # widths by the axes' share
    for ax in (top_left, top_right, bottom):
        figure = view.view_of(ax)
        assert figure.layout.min_width == "0" and figure.fig_margin["left"] >= 0
        box = ax.get_position()
        assert figure.fig_margin["bottom"] + figure.fig_margin["top"] < int(figure.layout.height[:-2])
        assert box.width > 0


def test_sync_from_a_background_thread(sent):
    fig, _left, _right, a = figure_of_everything()
    view = live_figure(fig)
    sent.clear()
    a["line"].set_ydata([9.0, 9.0, 9.0])
    worker = threading.Thread(target=request_redraw, args=(fig,))  # as the training thread does
    worker.start()
    worker.join()
    np.testing.assert_array_equal(view.marks_of(a["line"])[0].y, [9, 9, 9])
    assert [keys for _widget, keys in sent] == [{"y"}]


def test_request_redraw_syncs_only_a_figure_with_a_live_view():
    fig, _left, _right, a = figure_of_everything()
    request_redraw(fig)  # no live view: nothing happens, none is made
    assert not has_live_figure(fig)
    view = live_figure(fig)
    assert live_figure(fig) is view and has_live_figure(fig)  # one view per figure
    a["line"].set_xdata([0.0, 1.0, 2.0])
    request_redraw(fig)
    np.testing.assert_array_equal(view.marks_of(a["line"])[0].x, [0, 1, 2])


def test_close_releases_every_widget():
    baseline = len(ipywidgets.Widget.widgets)
    fig, _left, _right, a = figure_of_everything()
    view = live_figure(fig)
    assert len(ipywidgets.Widget.widgets) > baseline
    view.close()
    assert len(ipywidgets.Widget.widgets) == baseline and not has_live_figure(fig)
    a["line"].set_ydata([0.0, 0.0, 0.0])
    view.sync()  # closed: nothing happens
    view.close()  # twice: nothing happens
    assert live_figure(fig) is not view  # a new view, should the figure be shown again
    live_figure(fig).close()


def test_static_copy_comes_with_the_view():
    fig, *_ = figure_of_everything()
    bundle = live_figure(fig)._repr_mimebundle_()
    assert {"application/vnd.jupyter.widget-view+json", "image/png", "text/plain"} <= set(bundle)


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure, got"):
        live_figure("not a figure")
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure"):
        LiveFigure(None)
    assert has_live_figure("not a figure") is False
    fig, *_ = figure_of_everything()
    other = Figure().add_subplot()
    with pytest.raises(ValueError, match="ax must be one of the figure's visible axes"):
        live_figure(fig).scales_of(other)


def test_helpers():
    assert [js_number(v) for v in (0, 1000.0, 2.5, 1e-5, 1e-7, 3e21, -0.25)] == [
        "0", "1000", "2.5", "0.00001", "1e-7", "3e+21", "-0.25"]
    assert plain_text(r"$\mathdefault{10^{-2}}$") == "10⁻²"
    assert plain_text(r"$\mathdefault{2\times10^{3}}$") == "2×10³"
    assert plain_text("plain 1,000") == "plain 1,000"
    kinds = [kind.__name__ for kind, _make, _update in CONVERTERS]
    assert kinds[:5] == ["Line2D", "Text", "LineCollection", "PolyCollection", "PathCollection"]


def test_legends_secondary_axes_and_margins():
    fig = Figure(figsize=(8.0, 3.0), dpi=80)
    ax = fig.subplots()
    (train,) = ax.plot([1, 2, 3], [3.0, 2.0, 1.0], label="train")
    ax.plot([1, 2, 3], [2.0, 2.0, 2.0])  # an unnamed line: not in the key
    ax.legend(loc="lower left")
    top = ax.secondary_xaxis("top", functions=(lambda x: x / 2, lambda e: 2 * e))
    top.set_xlabel("epoch")
    ax.set(xlabel="iteration", ylabel="loss", xlim=(0, 4))
    fig.legend(handles=[train], loc="outside lower center")
    view = live_figure(fig)
    assert not any(mark.display_legend for mark in view.view_of(ax).marks)  # no legend box over the curves
    key = view.footer.value  # both legends as one HTML key below the figure, each entry once
    assert key.count("batchlab-key") == 1 and key.count("train") == 1
    figure = view.view_of(ax)
    epoch_axis = figure.axes[2]
    assert epoch_axis.side == "top" and (epoch_axis.scale.min, epoch_axis.scale.max) == (0, 2)
    assert (epoch_axis.tick_values[0], epoch_axis.tick_values[-1]) == (0, 2)
    ax.set_xlim(0, 8)
    view.sync()
    assert epoch_axis.scale.max == 4  # follows its parent
    margin = figure.fig_margin  # room for the tick labels and axis labels at the live text size
    labels = view.views[0]
    assert margin["bottom"] >= labels.x_label.y_offset + 0.2 * labels.x_label.default_size  # the x label fits
    assert margin["left"] >= -labels.y_label.x_offset + 0.8 * labels.y_label.default_size  # the y label fits
    assert margin["top"] >= 2 * labels.tick_px  # the epoch axis' ticks and label fit


def test_new_texts_and_limits_keep_the_same_widgets():
    """A page shows the widgets it was given: a new title, text or limit changes them in place (a view
    rebuilt on such a change left Voilà waiting for the closed widgets)."""
    fig, left, _right, _ = figure_of_everything()
    view = live_figure(fig)
    figures = [v.figure for v in view.views]
    fig.suptitle("a new title")
    fig.text(0.5, 0.02, "a new note")
    left.set_xlim(-1, 9)
    view.sync()
    assert [v.figure for v in view.views] == figures and all(f.comm is not None for f in figures)
    assert "a new title" in view.header.value and "a new note" in view.footer.value


def test_tick_labels_at_the_axes_ends_keep_room():
    """A tick label is centred on its tick: at the axes' top (under a figure title, which takes the row's
    top) and right end, half of it would lie outside the bqplot figure and be cut."""
    fig = Figure(figsize=(8.0, 3.0), dpi=80)
    fig.set_layout_engine("constrained")
    ax = fig.subplots()
    ax.plot([0, 1000], [0.0, 1.0])
    ax.set(xlim=(0, 1000), ylim=(0, 1.0))
    ax.set_xticks([0, 1000], ["0", "one thousand"])
    fig.suptitle("a title that takes the top of the first row", fontsize=20)
    view = live_figure(fig)
    figure, labels = view.view_of(ax), view.views[0]
    assert "1.0" in labels.y_axis.tick_labels.values()  # a label at the very top of the y axis
    assert figure.fig_margin["top"] >= 0.5 * labels.tick_px
    widest = max(len(text) for text in labels.x_axis.tick_labels.values())
    assert figure.fig_margin["right"] >= 0.5 * widest * 0.5 * labels.tick_px  # the label at the right end
