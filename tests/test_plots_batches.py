"""Plot builders of notebook 01: cutting an epoch into batches, the batch figure, the static figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchlab import arithmetic
from batchlab.data import load_digit_images
from batchlab.plots.batches import (
    BatchFigure,
    plot_batch_matrix,
    plot_sample,
    split_into_batches,
)


@given(n=st.integers(1, 60), b=st.integers(1, 70), drop_last=st.booleans(), seed=st.integers(0, 99))
def test_split_matches_arithmetic(n, b, drop_last, seed):
    order = np.random.default_rng(seed).permutation(n)
    split = split_into_batches(order, b, drop_last)
    assert split.iterations == arithmetic.iterations_per_epoch(n, b, drop_last)
    assert len(split.dropped) == arithmetic.samples_dropped(n, b, drop_last)
    if split.iterations:
        assert len(split.batches[-1]) == arithmetic.last_batch_size(n, b, drop_last)
        assert all(len(batch) == b for batch in split.batches[:-1])
    # Batches then the dropped tail give back the epoch's order, unchanged.
    assert np.concatenate([*split.batches, split.dropped]).tolist() == order.tolist()


def test_split_examples():
    split = split_into_batches([2, 0, 4, 1, 3], 2)
    assert [b.tolist() for b in split.batches] == [[2, 0], [4, 1], [3]]
    dropped = split_into_batches([2, 0, 4, 1, 3], 2, drop_last=True)
    assert [b.tolist() for b in dropped.batches] == [[2, 0], [4, 1]]
    assert dropped.dropped.tolist() == [3]


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        (([0, 1, 1], 2), ValueError, "order"),
        (([0.0, 1.0], 1), TypeError, "order"),
        ((np.zeros((2, 2), dtype=int), 1), TypeError, "order"),
        (([1, 0], 0), ValueError, "batch_size"),
        (([1, 0], 1.5), TypeError, "batch_size"),
        (([1, 0], 1, "yes"), TypeError, "drop_last"),
    ],
)
def test_split_rejects_bad_arguments(args, error, name):
    with pytest.raises(error, match=name):
        split_into_batches(*args)


@pytest.fixture
def figure():
    images, labels = load_digit_images(12)
    view = BatchFigure(images, labels, columns=6)
    yield view
    plt.close(view.fig)


def test_batch_figure_has_one_thumbnail_per_sample(figure):
    assert len(figure.thumbnails) == len(figure.frames) == len(figure.cells) == 12
    assert [c.get_text() for c in figure.captions[:3]] == [
        f"#{i} → {label}" for i, label in enumerate(load_digit_images(3)[1])
    ]
    images, _ = load_digit_images(12)
    np.testing.assert_array_equal(figure.thumbnails[5].get_array(), images[5])


def test_set_progress_marks_current_seen_and_dropped(figure):
    order = np.array([5, 2, 11, 0, 7, 1, 3, 9, 10, 4, 6, 8])
    split = figure.set_epoch(order, batch_size=5, drop_last=True, epoch=3)
    assert split.dropped.tolist() == [6, 8]
    figure.set_progress(2, status="hello")
    assert figure.highlighted() == sorted([1, 3, 9, 10, 4])
    alphas = [image.get_alpha() for image in figure.thumbnails]
    for i in (5, 2, 11, 0, 7, 6, 8):  # seen earlier, or dropped: dimmed
        assert alphas[i] < 1
    for i in (1, 3, 9, 10, 4):
        assert alphas[i] == 1
    assert figure.status.get_text() == "hello"
    assert figure.strip_title.get_text().startswith("Epoch 3:")
    assert "drop_last discards 2" in figure.strip_title.get_text()
    assert figure.dropped_label.get_visible()
    visible = [t.get_text() for t in figure.batch_labels if t.get_visible()]
    assert visible == ["batch 1", "batch 2"]


def test_set_epoch_relayout_hides_unused_batch_labels(figure):
    figure.set_epoch(np.arange(12), batch_size=2, drop_last=False, epoch=1)
    assert sum(t.get_visible() for t in figure.batch_labels) == 6
    figure.set_epoch(np.arange(12), batch_size=5, drop_last=False, epoch=1)
    assert [t.get_text() for t in figure.batch_labels if t.get_visible()] == [
        "batch 1", "batch 2", "3 (2)"]
    assert not figure.dropped_label.get_visible()
    assert "the last one holds only 2" in figure.strip_title.get_text()


def test_batch_figure_rejects_bad_input(figure):
    with pytest.raises(ValueError, match="order"):
        figure.set_epoch(np.arange(5), batch_size=2, drop_last=False, epoch=1)
    with pytest.raises(ValueError, match="epoch"):
        figure.set_epoch(np.arange(12), batch_size=2, drop_last=False, epoch=0)
    figure.set_epoch(np.arange(12), batch_size=5, drop_last=False, epoch=1)
    with pytest.raises(ValueError, match="batches_done"):
        figure.set_progress(4)
    with pytest.raises(ValueError, match="images"):
        BatchFigure(np.zeros((3, 64)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="labels"):
        BatchFigure(np.zeros((3, 8, 8)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="columns"):
        BatchFigure(np.zeros((3, 8, 8)), np.zeros(3, dtype=int), columns=4)


def test_plot_sample_writes_all_64_values():
    images, labels = load_digit_images(1)
    fig = plot_sample(images[0], int(labels[0]), index=0)
    ax = fig.axes[0]
    assert len(ax.texts) == 64
    assert "label 0" in ax.get_title() and "64 numbers" in ax.get_title()
    plt.close(fig)
    with pytest.raises(ValueError, match="image"):
        plot_sample(images[0].ravel(), 0)
    with pytest.raises(TypeError, match="label"):
        plot_sample(images[0], 1.5)


def test_plot_batch_matrix_shows_a_b_by_64_matrix():
    images, labels = load_digit_images(20)
    fig = plot_batch_matrix(images, labels, [4, 19, 6])
    matrix = fig.axes[1]
    shown = matrix.images[0].get_array()
    assert shown.shape == (3, 64)
    np.testing.assert_array_equal(shown, images[[4, 19, 6]].reshape(3, 64))
    assert "(3, 64)" in matrix.get_title()
    assert [t.get_text() for t in matrix.get_yticklabels()] == [
        f"#{i} → {labels[i]}" for i in (4, 19, 6)]
    plt.close(fig)
    with pytest.raises(ValueError, match="indices"):
        plot_batch_matrix(images, labels, [0, 20])
    with pytest.raises(TypeError, match="indices"):
        plot_batch_matrix(images, labels, [])


def test_epoch_boundaries_sit_between_epochs_for_both_numberings():
    from batchlab.plots.batches import epoch_boundaries

    assert epoch_boundaries([0, 43, 86]).tolist() == [43.5, 86.5]  # iterations numbered from 1
    assert epoch_boundaries([0, 43, 86], first_iteration=0).tolist() == [42.5, 85.5]  # 0-based index
    assert epoch_boundaries([0]).tolist() == []
    with pytest.raises(ValueError, match="first_iteration"):
        epoch_boundaries([0, 4], first_iteration=-1)


def test_iteration_curve_draws_every_loss_and_the_epoch_boundaries():
    import matplotlib.pyplot as plt

    from batchlab.plots.batches import IterationCurve

    fig, ax = plt.subplots()
    full = IterationCurve(ax, "C0", "0.5", boundary_label="epoch boundary")
    losses = full.set([2.3, 2.0, 1.5, 1.4, 1.2], [0, 2, 4])
    assert losses.tolist() == [2.3, 2.0, 1.5, 1.4, 1.2]
    assert full.line.get_xdata().tolist() == [1, 2, 3, 4, 5]
    assert [segment[0][0] for segment in full.boundaries.get_segments()] == [2.5, 4.5]
    thinned = IterationCurve(ax, "C1", "0.5", thin=lambda y: (y[:1] * 0 + 1, y[:1]))
    thinned.set([3.0, 1.0], [0])
    assert thinned.line.get_ydata().tolist() == [3.0] and len(thinned.boundaries.get_segments()) == 0
    plt.close(fig)
