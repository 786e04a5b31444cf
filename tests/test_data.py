"""The digits data and the device-resident batch iterator (batchlab.data).

The iterator is checked against :mod:`batchlab.arithmetic` (its length), against itself (every sample
once per epoch, a fresh order per epoch, the same order for the same seed) and against the documented
``drop_last`` behaviour. Samples are tracked by using their own index as the label.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from batchlab import arithmetic
from batchlab.data import (
    BatchIterator,
    DigitsSplit,
    load_digit_images,
    load_digits_split,
    to_tensors,
)


def indexed(n: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(n, 2)`` and labels equal to each sample's index, so batches reveal their samples."""
    x = torch.arange(2 * n, dtype=torch.float32, device=device).reshape(n, 2)
    return x, torch.arange(n, device=device)


def epoch_labels(batches: BatchIterator) -> list[list[int]]:
    return [yb.tolist() for _, yb in batches]


@given(n=st.integers(1, 200), b=st.integers(1, 250), drop_last=st.booleans())
def test_length_and_batch_sizes_follow_the_arithmetic(n, b, drop_last):
    batches = BatchIterator(*indexed(n), b, drop_last=drop_last)
    expected = arithmetic.iterations_per_epoch(n, b, drop_last)
    assert len(batches) == expected
    sizes = [len(yb) for _, yb in batches]
    assert len(sizes) == expected
    assert sizes == batches.batch_sizes()
    if sizes:
        assert sizes[-1] == arithmetic.last_batch_size(n, b, drop_last)
    assert sum(sizes) == n - arithmetic.samples_dropped(n, b, drop_last)


@given(n=st.integers(1, 150), b=st.integers(1, 160), seed=st.integers(0, 2**31))
def test_every_sample_once_per_epoch_without_drop_last(n, b, seed):
    batches = BatchIterator(*indexed(n), b, seed=seed)
    for _ in range(3):
        seen = [i for labels in epoch_labels(batches) for i in labels]
        assert sorted(seen) == list(range(n))


def test_features_and_labels_stay_paired():
    x, y = indexed(50)
    for xb, yb in BatchIterator(x, y, 7, seed=3):
        torch.testing.assert_close(xb, x[yb])


def test_a_fresh_permutation_every_epoch():
    batches = BatchIterator(*indexed(100), 10, seed=0)
    orders = [[i for batch in epoch_labels(batches) for i in batch] for _ in range(4)]
    assert all(sorted(order) == list(range(100)) for order in orders)
    assert len({tuple(order) for order in orders}) == 4
    assert batches.epochs_started == 4


def test_same_seed_same_order_and_other_seed_other_order():
    first = BatchIterator(*indexed(64), 8, seed=5)
    second = BatchIterator(*indexed(64), 8, seed=5)
    other = BatchIterator(*indexed(64), 8, seed=6)
    for _ in range(3):
        a, b, c = epoch_labels(first), epoch_labels(second), epoch_labels(other)
        assert a == b
        assert a != c


def test_shuffle_false_keeps_the_stored_order():
    batches = BatchIterator(*indexed(10), 4, shuffle=False)
    assert epoch_labels(batches) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert epoch_labels(batches) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.parametrize(("n", "b"), [(10, 3), (100, 32), (64, 8), (5, 5)])
def test_drop_last_skips_only_the_short_tail(n, b):
    batches = BatchIterator(*indexed(n), b, drop_last=True, seed=1)
    labels = epoch_labels(batches)
    assert all(len(batch) == b for batch in labels)
    assert len(labels) == n // b
    seen = [i for batch in labels for i in batch]
    # The dropped samples are the tail of this epoch's permutation: different ones each epoch.
    assert seen == batches.permutation[: len(seen)].tolist()
    assert sorted(seen + batches.permutation[len(seen) :].tolist()) == list(range(n))


def test_drop_last_with_a_batch_larger_than_the_data_gives_no_batch():
    batches = BatchIterator(*indexed(5), 8, drop_last=True)
    assert len(batches) == 0
    assert epoch_labels(batches) == []


@given(n=st.integers(1, 60), b=st.integers(1, 70), drop_last=st.booleans(), shuffle=st.booleans())
def test_epoch_targets_are_the_labels_in_the_order_trained(n, b, drop_last, shuffle):
    batches = BatchIterator(*indexed(n), b, drop_last=drop_last, shuffle=shuffle, seed=1)
    assert batches.epoch_targets().tolist() == list(range(n))  # before the first epoch: y as stored
    for _ in range(3):
        trained = [i for labels in epoch_labels(batches) for i in labels]
        ordered = batches.epoch_targets().tolist()
        assert ordered[: len(trained)] == trained
        assert sorted(ordered) == list(range(n))  # the dropped tail holds the samples not trained


def test_batch_indices_are_the_samples_of_that_batch():
    batches = BatchIterator(*indexed(23), 5, seed=2)
    for k, (_, yb) in enumerate(batches):
        assert batches.batch_indices(k).tolist() == yb.tolist()
    with pytest.raises(ValueError, match="k must be"):
        batches.batch_indices(5)


def test_batches_stay_on_the_device_of_the_data():
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        batches = BatchIterator(*indexed(20, device), 6)
        for xb, yb in batches:
            assert xb.device.type == device and yb.device.type == device
        assert batches.permutation.device.type == device


def test_batches_are_views_not_copies_when_not_shuffled():
    x, y = indexed(12)
    xb, _ = next(iter(BatchIterator(x, y, 4, shuffle=False)))
    assert xb.data_ptr() == x.data_ptr()


def test_iterator_rejects_bad_arguments():
    x, y = indexed(10)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        BatchIterator(x, y, 0)
    with pytest.raises(TypeError, match="batch_size"):
        BatchIterator(x, y, True)
    with pytest.raises(TypeError, match="batch_size"):
        BatchIterator(x, y, 2.0)
    with pytest.raises(TypeError, match="x and y must be torch tensors"):
        BatchIterator(x.numpy(), y, 2)
    with pytest.raises(ValueError, match="same number of samples"):
        BatchIterator(x, y[:5], 2)
    with pytest.raises(TypeError, match="shuffle"):
        BatchIterator(x, y, 2, shuffle=1)
    with pytest.raises(TypeError, match="drop_last"):
        BatchIterator(x, y, 2, drop_last="yes")
    with pytest.raises(ValueError, match="seed"):
        BatchIterator(x, y, 2, seed=-1)
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0 and <= 18446744073709551615"):
        BatchIterator(x, y, 2, seed=2**64)
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0 and <= 4294967295"):
        load_digits_split(seed=2**32)


def test_a_batch_size_beyond_the_data_gives_one_batch_even_when_huge():
    x, y = indexed(10)
    batches = BatchIterator(x, y, 10**30, seed=0)
    assert len(batches) == 1 and batches.batch_sizes() == [10]
    ((_, yb),) = list(batches)
    assert sorted(yb.tolist()) == list(range(10)) and batches.batch_indices(0).shape == (10,)


def test_digit_images_are_real_pixels():
    images, labels = load_digit_images(20)
    assert images.shape == (20, 8, 8) and images.dtype == np.float32
    assert labels.shape == (20,) and labels.dtype == np.int64
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() > 0.5
    assert len(load_digit_images()[1]) == 1797
    with pytest.raises(ValueError, match="n_images"):
        load_digit_images(0)


def test_split_take_and_to_tensors():
    split = load_digits_split()
    assert (split.n_train, split.n_val, split.n_features) == (1347, 450, 64)
    small = split.take(100)
    assert isinstance(small, DigitsSplit) and small.n_train == 100
    np.testing.assert_array_equal(small.x_train, split.x_train[:100])
    np.testing.assert_array_equal(small.x_val, split.x_val)
    with pytest.raises(ValueError, match="n_train"):
        split.take(2000)
    x_train, y_train, x_val, y_val = to_tensors(small, "cpu")
    assert x_train.shape == (100, 64) and x_train.dtype == torch.float32
    assert y_train.dtype == torch.int64 and x_val.shape == (450, 64) and y_val.shape == (450,)
    with pytest.raises(TypeError, match="split"):
        to_tensors((small.x_train, small.y_train), "cpu")


def test_a_split_is_frozen_for_real_its_arrays_are_read_only_copies():
    """In-place edits raise before anything changes (NumPy used to divide, then the dataclass refused
    the assignment), and the arrays the split was made from stay the caller's, writable."""
    split = load_digits_split()
    small = split.take(100)
    before = small.x_train.copy()
    with pytest.raises(ValueError, match="read-only"):
        small.x_train /= 16
    np.testing.assert_array_equal(small.x_train, before)  # nothing was divided
    with pytest.raises(ValueError, match="read-only"):
        small.y_train[0] = 42  # would fail much later inside PyTorch: "Target 42 is out of bounds"
    assert small.y_train[0] == split.y_train[0]
    for name in ("x_train", "y_train", "x_val", "y_val"):
        assert not getattr(small, name).flags.writeable, name
    x, y = np.ones((4, 64), np.float32), np.zeros(4, np.int64)
    made = DigitsSplit(x, y, x, y)
    assert not np.shares_memory(made.x_train, x) and not np.shares_memory(made.x_val, x)
    x[0, 0] = 5.0  # the caller's array is still the caller's
    assert x.flags.writeable and made.x_train[0, 0] == 1.0
    tensors = to_tensors(made, "cpu")  # a copy for PyTorch: no "array is not writable" warning
    tensors[0][0, 0] = 7.0
    assert made.x_train[0, 0] == 1.0
