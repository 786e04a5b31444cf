"""Data: scikit-learn's handwritten digits (1,797 real 8×8 images, shipped with scikit-learn).

Nothing is downloaded: ``sklearn.datasets.load_digits`` reads a file installed with the package.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from batchlab import arithmetic
from batchlab.validation import require_bool, require_float, require_int, require_samples, require_seed

if TYPE_CHECKING:
    import torch

__all__ = [
    "BatchIterator", "DigitsSplit", "load_digit_images", "load_digits_split", "to_tensors",
]

N_CLASSES = 10
CHANCE_LOSS = math.log(N_CLASSES)  # cross-entropy (nats) of a uniform guess over the ten digits


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # pixel intensities 0..16 -> 0..1
    labels = bunch.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_digit_images(n_images: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_images`` digits as ``(images, labels)``.

    ``images`` has shape ``(n, 8, 8)``, float32 in [0, 1]; ``labels`` has shape ``(n,)``, int64 0–9.
    ``None`` returns all 1,797.

    Taught in: notebook 01 § 1. A sample.
    """
    images, labels = _digits()
    if n_images is not None:
        n_images = require_int("n_images", n_images, minimum=1, maximum=len(labels))
        images, labels = images[:n_images], labels[:n_images]
    return images.copy(), labels.copy()


@dataclass(frozen=True)
class DigitsSplit:
    """A train/validation split of the digits, features flattened to 64 values in [0, 1].

    ``x_train``: ``(n_train, features)`` float32; ``y_train``: ``(n_train,)`` int64 class indices 0–9;
    likewise for ``val``. Checked when made: each set holds at least one sample, every feature is finite
    and every label a class index. Features of another float dtype (float64, NumPy's default) are stored
    as float32, the dtype of the models' weights; labels as int64.

    Frozen for real: the split keeps its own copies of the arrays, made read-only, so an in-place edit
    (``split.x_train /= 16``, ``split.y_train[0] = 42``) raises ``ValueError: assignment destination is
    read-only`` before anything changes, and the arrays it was made from stay the caller's. Edit a copy
    (``split.x_train.copy()``) and make a new split. Give PyTorch a copy too, ``torch.tensor(array)``:
    ``torch.from_numpy`` of a read-only array warns.

    Taught in: notebook 04 § 7. Early stopping.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    def __post_init__(self) -> None:
        for part in ("train", "val"):
            x, y = np.asarray(getattr(self, f"x_{part}")), np.asarray(getattr(self, f"y_{part}"))
            if x.ndim != 2 or len(x) == 0 or not np.issubdtype(x.dtype, np.floating):
                raise ValueError(f"x_{part} must be a float array of shape (samples >= 1, features), "
                                 f"got {x.dtype} of shape {x.shape}")
            if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
                raise ValueError(f"y_{part} must be an integer array of shape ({len(x)},), got {y.dtype} "
                                 f"of shape {y.shape}")
            if not np.isfinite(x).all():
                bad = np.count_nonzero(~np.isfinite(x))
                raise ValueError(f"x_{part} must hold finite numbers, got {bad} nan or inf values")
            if y.min() < 0 or y.max() >= N_CLASSES:
                raise ValueError(f"y_{part} must hold class indices 0 to {N_CLASSES - 1}, got values from "
                                 f"{y.min()} to {y.max()}")
            for name, array, dtype in ((f"x_{part}", x, np.float32), (f"y_{part}", y, np.int64)):
                own = np.array(array, dtype=dtype, copy=True)  # never a view of the caller's array
                own.flags.writeable = False
                object.__setattr__(self, name, own)
        if self.x_train.shape[1] != self.x_val.shape[1]:
            raise ValueError(f"x_train and x_val must have the same number of features, got "
                             f"{self.x_train.shape[1]} and {self.x_val.shape[1]}")

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_val(self) -> int:
        return len(self.y_val)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    n_classes = N_CLASSES

    def take(self, n_train: int) -> DigitsSplit:
        """The first ``n_train`` training samples (already in random order) and the same validation set."""
        n_train = require_int("n_train", n_train, minimum=1, maximum=self.n_train)
        return DigitsSplit(self.x_train[:n_train], self.y_train[:n_train], self.x_val, self.y_val)


def load_digits_split(validation_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """Split the 1,797 digits into stratified train and validation sets, reproducibly.

    With the defaults: 1,347 training and 450 validation images.

    Taught in: notebook 02 § Another slip: the mean of per-batch mean losses.
    """
    validation_fraction = require_float("validation_fraction", validation_fraction, minimum=0.05,
                                        maximum=0.95)
    seed = require_int("seed", seed, minimum=0, maximum=2**32 - 1)  # scikit-learn's range
    from sklearn.model_selection import train_test_split

    images, labels = _digits()
    x = images.reshape(len(images), -1)
    x_train, x_val, y_train, y_val = train_test_split(x, labels, test_size=validation_fraction,
                                                      random_state=seed, stratify=labels)
    return DigitsSplit(*(np.ascontiguousarray(a) for a in (x_train, y_train, x_val, y_val)))


def to_tensors(
    split: DigitsSplit, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_val, y_val)`` as tensors on ``device``, moved there once.

    Features are float32 of shape ``(n, 64)``; labels int64 of shape ``(n,)``.

    Taught in: notebook 03 § The noise scale of a real network.
    """
    import torch

    from batchlab.devices import resolve_device

    if not isinstance(split, DigitsSplit):
        raise TypeError(f"split must be a DigitsSplit, got {type(split).__name__}")
    device = resolve_device(device)
    return tuple(torch.tensor(a, device=device)  # a copy: the split's arrays are read-only
                 for a in (split.x_train, split.y_train, split.x_val, split.y_val))  # type: ignore[return-value]


class BatchIterator:
    """Mini-batches of tensors that already live on the device.

    Each pass (``for xb, yb in batches``) is one epoch: a fresh permutation is drawn *on the device*
    from the iterator's own seeded generator (when ``shuffle``), and batches are slices of it, so no data
    cross between host and device during training. ``len(batches)`` equals
    :func:`batchlab.arithmetic.iterations_per_epoch`; with ``drop_last`` the short tail is skipped.

    ``x``: ``(n, ...)``; ``y``: ``(n, ...)``; every batch holds ``batch_size`` samples except possibly
    the last. A ``batch_size`` above ``n`` gives one batch of all ``n`` samples.

    Taught in: notebook 05 § The loop, step by step.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0) -> None:
        import torch

        require_samples(x, y)
        self.x, self.y = x, y
        self.n_samples = len(x)
        self.batch_size = require_int("batch_size", batch_size, minimum=1)
        self.shuffle = require_bool("shuffle", shuffle)
        self.drop_last = require_bool("drop_last", drop_last)
        self.seed = require_seed("seed", seed)
        self._stride = min(self.batch_size, self.n_samples)  # slicing needs an int64 (not B = 10**30)
        self._sizes = arithmetic.batch_sizes(self.n_samples, self.batch_size, self.drop_last)  # cut once
        self.generator = torch.Generator(device=x.device).manual_seed(self.seed)
        self.permutation = torch.arange(self.n_samples, device=x.device)
        self.epochs_started = 0
        self._ordered_y = y  # y in the current epoch's order (set by ``__iter__``)

    def __len__(self) -> int:
        return len(self._sizes)

    def batch_sizes(self) -> list[int]:
        """Samples in each batch of an epoch, as Python ints (no device access): the epoch is cut by
        :func:`batchlab.arithmetic.batch_sizes`, the one place that does it."""
        return list(self._sizes)

    def batch_indices(self, k: int) -> torch.Tensor:
        """Sample indices of batch ``k`` (0-based) of the current epoch, on the device."""
        k = require_int("k", k, minimum=0, maximum=max(len(self) - 1, 0))
        return self.permutation[k * self._stride : (k + 1) * self._stride]

    def epoch_targets(self) -> torch.Tensor:
        """The labels ``y`` in the current epoch's order, on the device: shape ``(n_samples, ...)``.

        Batch ``k`` of the epoch holds rows ``k * batch_size`` to ``(k + 1) * batch_size`` of it (the
        rows past the last batch are the ones ``drop_last`` skipped). Before the first epoch: ``y``.
        """
        return self._ordered_y

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        import torch

        self.epochs_started += 1
        # The epoch's order, drawn on the device from the iterator's own generator; one gather puts the
        # samples in it (index_select: no host-device sync on any device); ``split`` then cuts every
        # batch as a view in one call.
        if self.shuffle:
            self.permutation = torch.randperm(self.n_samples, device=self.x.device, generator=self.generator)
            x = self.x.index_select(0, self.permutation)
            y = self.y.index_select(0, self.permutation)
        else:
            x, y = self.x, self.y
        self._ordered_y = y
        n_batches = len(self)
        return zip(x.split(self._stride)[:n_batches], y.split(self._stride)[:n_batches], strict=True)
