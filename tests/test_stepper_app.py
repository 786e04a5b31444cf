"""The batch stepper of notebook 01: its walk through epochs, its counters and what its figure shows."""

from __future__ import annotations

import html
import io
import itertools

import numpy as np
import pytest
from matplotlib.colors import to_hex, to_rgba
from matplotlib.image import AxesImage, imread
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from batchlab import arithmetic
from batchlab.apps.stepper import BatchStepperApp
from batchlab.plots.batches import COLOURS, SEEN_ALPHA
from batchlab.plots.mirror import live_figure

CURRENT = to_rgba(COLOURS["current"])
DROPPED = to_rgba(COLOURS["dropped"])


@pytest.fixture
def make_app():
    """Build apps (each with its live view, as on the page) and close them after the test."""
    apps = []

    def build(*args, **kwargs):
        app = BatchStepperApp(*args, **kwargs)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.close()


def png_pixels(image_widget):
    """The RGBA pixels (uint8, rows × cols × 4) of an ipywidgets.Image's PNG."""
    return np.round(imread(io.BytesIO(image_widget.value), format="png") * 255).astype(np.uint8)


def assert_live_view_shows(app):
    """Every artist of the figure has its mark in the live view, and each mark holds what the artist
    shows now: the thumbnails' pixels (dimmed or not), the frames' and cells' places, colours and dash
    styles, every caption and cell text."""
    live = live_figure(app.fig)
    view = app.view
    for ax in app.fig.axes:
        for artist in ax.get_children():
            if isinstance(artist, AxesImage | Rectangle | Text) and artist is not ax.patch:
                assert live.marks_of(artist), f"{artist!r} is not in the live view"
    for thumbnail in view.thumbnails:
        (mark,) = live.marks_of(thumbnail)
        expected = thumbnail.to_rgba(thumbnail.get_array(), bytes=True)
        expected[..., 3] = round(255 * thumbnail.get_alpha())
        assert np.array_equal(png_pixels(mark.image), expected)
    for rect in [*view.frames, *view.cells]:
        (mark,) = live.marks_of(rect)
        corners = rect.get_corners()
        assert np.allclose(np.column_stack([mark.x, mark.y]), corners)
        assert mark.colors == [to_hex(rect.get_edgecolor())]
        assert mark.line_style == {"-": "solid", "solid": "solid", "--": "dashed"}[rect.get_linestyle()]
        assert mark.fill == ("inside" if rect.get_fill() else "none")
        if rect.get_fill():
            assert mark.fill_colors == [to_hex(rect.get_facecolor())]
    for text in [*view.captions, *view.cell_texts, *view.batch_labels, view.strip_title]:
        (mark,) = live.marks_of(text)
        assert mark.visible == (text.get_visible() and bool(text.get_text()))
        if mark.visible:
            assert list(mark.text) == text.get_text().split("\n")
            assert mark.colors == [to_hex(text.get_color())]
    assert html.escape(view.status.get_text()) in live.header.value


def walk_epoch(app):
    """Step through one whole epoch; return its batches (arrays of sample indices)."""
    batches = []
    for _ in range(app.iterations_per_epoch):
        app.step()
        batches.append(app.current_batch_indices)
    assert app.iteration_in_epoch == app.iterations_per_epoch
    return batches


# For each data set size, the batch sizes to walk through (set with the slider, which resets the walk).
CASES = {20: (6, 5, 1, 20, 19), 7: (3, 2), 13: (4,)}


@pytest.mark.parametrize("n", CASES)
@pytest.mark.parametrize("shuffle", [True, False])
def test_every_sample_once_per_epoch_without_drop_last(make_app, n, shuffle):
    app = make_app(n_samples=n, batch_size=1, shuffle=shuffle, drop_last=False)
    for b in CASES[n]:
        app.batch_size.value = b
        assert app.global_step == 0
        for epoch in range(1, 4):
            batches = walk_epoch(app)
            assert app.epoch == epoch
            assert len(batches) == arithmetic.iterations_per_epoch(n, b) == app.iterations_per_epoch
            assert sorted(np.concatenate(batches).tolist()) == list(range(n))
            assert [len(x) for x in batches[:-1]] == [b] * (len(batches) - 1)
            assert len(batches[-1]) == arithmetic.last_batch_size(n, b)
            assert len(app.epoch_batches.dropped) == 0


@pytest.mark.parametrize("n", CASES)
def test_drop_last_discards_n_mod_b_never_batched(make_app, n):
    app = make_app(n_samples=n, batch_size=1, shuffle=True, drop_last=True)
    for b in CASES[n]:
        app.batch_size.value = b
        dropped_sets = []
        for _ in range(4):
            batches = walk_epoch(app)
            dropped = app.epoch_batches.dropped
            used = np.concatenate(batches)
            assert len(dropped) == n % b == arithmetic.samples_dropped(n, b, drop_last=True)
            assert not set(dropped.tolist()) & set(used.tolist())
            assert sorted([*used.tolist(), *dropped.tolist()]) == list(range(n))
            assert len(batches) == n // b
            assert {len(x) for x in batches} == {b}
            assert len(batches[-1]) == arithmetic.last_batch_size(n, b, drop_last=True)
            dropped_sets.append(frozenset(dropped.tolist()))
        if n % b and n > 7:  # reshuffling drops a different tail in some epoch
            assert len(set(dropped_sets)) > 1


def test_drop_last_without_shuffle_always_drops_the_same_tail(make_app):
    app = make_app(n_samples=20, batch_size=6, shuffle=False, drop_last=True)
    for _ in range(3):
        walk_epoch(app)
        assert app.epoch_batches.dropped.tolist() == [18, 19]


def test_order_is_reshuffled_each_epoch(make_app):
    app = make_app(n_samples=20, batch_size=6, shuffle=True, seed=0)
    orders = []
    for _ in range(4):
        app.step()  # first batch of the next epoch
        orders.append(app.epoch_order)
        for _ in range(app.iterations_per_epoch - 1):
            app.step()
    for order in orders:
        assert sorted(order.tolist()) == list(range(20))
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(orders))
    assert not np.array_equal(orders[0], np.arange(20))


def test_without_shuffle_every_epoch_is_in_index_order(make_app):
    app = make_app(n_samples=20, batch_size=6, shuffle=False)
    for _ in range(3):
        batches = walk_epoch(app)
        assert np.concatenate(batches).tolist() == list(range(20))
        assert app.epoch_order.tolist() == list(range(20))


def test_same_seed_same_walk_other_seed_other_walk(make_app):
    def walk(seed):
        app = make_app(n_samples=20, batch_size=6, seed=seed)
        return [app.current_batch_indices.tolist() for _ in range(12) if app.step() is None]

    assert walk(3) == walk(3)
    assert walk(3) != walk(4)


def test_reset_replays_the_same_sequence(make_app):
    app = make_app(n_samples=20, batch_size=6, seed=1)
    first = [app.current_batch_indices.tolist() for _ in range(9) if app.step() is None]
    app.reset()
    assert app.global_step == 0
    again = [app.current_batch_indices.tolist() for _ in range(9) if app.step() is None]
    assert first == again


@pytest.mark.parametrize("drop_last", [False, True])
def test_counters_match_arithmetic(make_app, drop_last):
    n, b = 20, 6
    app = make_app(n_samples=n, batch_size=b, drop_last=drop_last)
    per_epoch = arithmetic.iterations_per_epoch(n, b, drop_last)
    assert app.iterations_per_epoch == per_epoch
    assert app.last_batch_size == arithmetic.last_batch_size(n, b, drop_last)
    counted = 0
    for k in range(1, 3 * per_epoch + 1):
        app.step()
        counted += len(app.current_batch_indices)
        assert app.global_step == k
        assert app.samples_seen == counted
        assert app.epoch == (k - 1) // per_epoch + 1
        assert app.iteration_in_epoch == (k - 1) % per_epoch + 1
        assert app.epochs_completed == k // per_epoch
        if k % per_epoch == 0:
            epochs = k // per_epoch
            assert app.samples_seen == arithmetic.samples_seen(n, b, epochs, drop_last)
            assert app.global_step == arithmetic.total_steps(n, b, epochs, drop_last)
        html = app.counters.value
        assert f"global step <b>{k}</b>" in html
        assert f"samples seen <b>{counted}</b>" in html
        assert f"iteration in epoch <b>{app.iteration_in_epoch} / {per_epoch}</b>" in html


def test_counters_show_the_formula(make_app):
    app = make_app(n_samples=20, batch_size=6)
    assert "⌈20 / 6⌉ = 4" in app.counters.value
    assert "last batch holds 2 samples" in app.counters.value
    app.drop_last.value = True
    assert "⌊20 / 6⌋ = 3" in app.counters.value
    assert "discards N mod B = 2 samples" in app.counters.value
    app.batch_size.value = 5
    assert "B divides N" in app.counters.value


def test_start_state(make_app):
    app = make_app(n_samples=20, batch_size=6)
    assert (app.global_step, app.epoch, app.iteration_in_epoch, app.samples_seen) == (0, 1, 0, 0)
    assert len(app.current_batch_indices) == 0
    assert app.view.highlighted() == []
    assert app.batch_size.max == 20


@pytest.mark.parametrize("drop_last", [False, True])
def test_highlighted_artists_match_current_batch(make_app, drop_last):
    app = make_app(n_samples=20, batch_size=6, drop_last=drop_last, seed=2)
    view = app.view
    for _ in range(2 * app.iterations_per_epoch):
        app.step()
        current = set(app.current_batch_indices.tolist())
        done = app.iteration_in_epoch
        earlier = set(np.concatenate(app.epoch_batches.batches[:done]).tolist()) - current
        dropped = set(app.epoch_batches.dropped.tolist())
        framed = {i for i, f in enumerate(view.frames) if f.get_edgecolor() == CURRENT}
        assert framed == current == set(view.highlighted())
        for i, (image, frame) in enumerate(zip(view.thumbnails, view.frames, strict=True)):
            if i in current:
                assert image.get_alpha() == 1.0
            elif i in earlier:
                assert image.get_alpha() == SEEN_ALPHA
            elif i in dropped:
                assert frame.get_edgecolor() == DROPPED
                assert frame.get_linestyle() == "--"
                assert image.get_alpha() == SEEN_ALPHA
            else:
                assert image.get_alpha() == 1.0
        # The strip: the orange cells hold exactly the current batch, in the epoch's order.
        orange = [t.get_text() for c, t in zip(view.cells, view.cell_texts, strict=True)
                  if c.get_facecolor() == CURRENT]
        assert orange == [str(i) for i in app.current_batch_indices]
        strip_order = [int(t.get_text()) for t in view.cell_texts]
        expected = np.concatenate([*app.epoch_batches.batches, app.epoch_batches.dropped])
        assert strip_order == expected.tolist()
        hatched = [int(t.get_text()) for c, t in zip(view.cells, view.cell_texts, strict=True)
                   if c.get_hatch()]
        assert set(hatched) == dropped


def test_figure_updates_in_place(make_app):
    app = make_app(n_samples=20, batch_size=6)
    fig, ax = app.fig, app.view.grid_ax
    marks = live_figure(fig).marks_of(app.view.frames[0])
    counts = (len(fig.axes), len(ax.images), len(ax.patches), len(ax.texts),
              len(app.view.strip_ax.patches), len(app.view.strip_ax.texts))
    thumbnail = app.view.thumbnails[0]
    for _ in range(5):
        app.step()
    app.batch_size.value = 3
    app.step()
    assert app.fig is fig and app.view.thumbnails[0] is thumbnail
    assert counts == (len(fig.axes), len(ax.images), len(ax.patches), len(ax.texts),
                      len(app.view.strip_ax.patches), len(app.view.strip_ax.texts))
    assert app.view.status.get_text().startswith("epoch 1 · iteration 1 of 7")
    assert live_figure(fig).marks_of(app.view.frames[0]) == marks  # the live view's marks, moved in place


def test_every_change_syncs_the_live_view(make_app, redraws):
    app = make_app(n_samples=10, batch_size=3)
    redraws.clear()
    app.step()
    app.drop_last.value = True
    app.play.value = 2
    assert redraws == [app.fig] * 3


def test_the_live_view_follows_next_and_the_settings(make_app):
    app = make_app(n_samples=12, batch_size=5, drop_last=False)
    assert_live_view_shows(app)  # step 0: every sample pending
    for _ in range(3):  # into the second epoch: the first epoch's samples dimmed, then not
        app.next_button.click()
        assert_live_view_shows(app)
    app.batch_size.value = 4  # a new plan: the strip's cells move, the frames go back to pending
    assert_live_view_shows(app)
    app.drop_last.value = True
    app.batch_size.value = 5  # 2 samples dropped: red dashed frames
    app.step()
    assert_live_view_shows(app)
    dropped = app.epoch_batches.dropped
    (frame,) = live_figure(app.fig).marks_of(app.view.frames[dropped[0]])
    assert frame.colors == [COLOURS["dropped"]] and frame.line_style == "dashed"


def test_buttons(make_app):
    app = make_app(n_samples=20, batch_size=6)
    app.next_button.click()
    app.next_button.click()
    assert app.global_step == 2
    assert app.play.value == 2 and app.step_slider.value == 2
    assert app.current_batch_indices.tolist() == app.epoch_batches.batches[1].tolist()
    app.reset_button.click()
    assert app.global_step == 0 and app.play.value == 0
    assert len(app.current_batch_indices) == 0


def test_play_value_drives_steps(make_app):
    app = make_app(n_samples=20, batch_size=6, epochs=2)
    assert app.play.max == 2 * 4 and app.step_slider.max == 8
    reference = make_app(n_samples=20, batch_size=6, epochs=2)
    for k in range(1, app.play.max + 1):
        app.play.value = k  # what the browser does on every tick
        reference.step()
        assert app.global_step == k == app.step_slider.value
        assert app.current_batch_indices.tolist() == reference.current_batch_indices.tolist()
    app.step_slider.value = 3  # scrubbing back with the slider also moves the walk
    assert app.play.value == 3 and app.global_step == 3 and app.epoch == 1


def test_next_beyond_play_range_extends_it(make_app):
    app = make_app(n_samples=20, batch_size=10, epochs=1)
    assert app.play.max == 2
    for _ in range(3):
        app.step()
    assert app.global_step == 3 and app.epoch == 2
    assert app.play.max == 4


@pytest.mark.parametrize(("control", "value"),
                         [("batch_size", 4), ("drop_last", True), ("shuffle", False)])
def test_changing_a_setting_resets_the_walk(make_app, control, value):
    app = make_app(n_samples=20, batch_size=6, shuffle=True, drop_last=False)
    for _ in range(5):
        app.step()
    app.play.playing = True
    getattr(app, control).value = value
    assert app.global_step == 0 and app.play.value == 0 and not app.play.playing
    assert app.play.max == app.epochs * app.iterations_per_epoch
    assert app.view.highlighted() == []
    app.step()
    assert len(app.current_batch_indices) == min(app.batch_size.value, 20)


def test_static_copy_and_close(make_app):
    import ipywidgets
    import matplotlib.pyplot as plt

    app = make_app()
    app.step()
    bundle = app._repr_mimebundle_()
    assert {"image/png", "text/html", "application/vnd.jupyter.widget-view+json"} <= set(bundle)
    assert "global step <b>1</b>" in bundle["text/html"] and "VBox" not in bundle["text/plain"]
    baseline, figures = len(ipywidgets.Widget.widgets), set(plt.get_fignums())
    for _ in range(3):
        stepped = BatchStepperApp(n_samples=10)
        for _ in range(5):  # thumbnails dimmed and back: the live view's image widgets come and go
            stepped.step()
        stepped.close()
    assert len(ipywidgets.Widget.widgets) == baseline and set(plt.get_fignums()) == figures


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_samples": 1}, ValueError, "n_samples"),
        ({"n_samples": 41}, ValueError, "n_samples"),
        ({"n_samples": 20.0}, TypeError, "n_samples"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 21}, ValueError, "batch_size"),
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"shuffle": "yes"}, TypeError, "shuffle"),
        ({"drop_last": 1}, TypeError, "drop_last"),
        ({"seed": -1}, ValueError, "seed"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"interval_ms": 10}, ValueError, "interval_ms"),
    ],
)
def test_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        BatchStepperApp(**kwargs)


def test_the_key_beside_the_canvas_names_each_kind_of_frame(make_app):
    app = make_app(n_samples=12, batch_size=5, drop_last=True)
    assert not app.fig.legends  # no legend in the canvas: it would be redrawn at every step
    for colour, words in ((COLOURS["current"], "current batch"), (COLOURS["dropped"], "dropped (drop_last)")):
        assert colour in app.key.value and words in app.key.value
    assert "dashed " + COLOURS["dropped"] in app.key.value  # dropped frames are dashed, as in the figure
    assert app.key.value in app.static_html()
