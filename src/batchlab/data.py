"""Data: scikit-learn's handwritten digits (1,797 real 8×8 images, shipped with scikit-learn).

Nothing is downloaded: ``sklearn.datasets.load_digits`` reads a file installed with the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from batchlab.validation import require_float, require_int

__all__ = ["DigitsSplit", "load_digit_images", "load_digits_split"]

N_CLASSES = 10
IMAGE_SHAPE = (8, 8)


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
    """
    images, labels = _digits()
    if n_images is not None:
        n_images = require_int("n_images", n_images, minimum=1, maximum=len(labels))
        images, labels = images[:n_images], labels[:n_images]
    return images.copy(), labels.copy()


@dataclass(frozen=True)
class DigitsSplit:
    """A train/validation split of the digits, features flattened to 64 values in [0, 1].

    ``x_train``: ``(n_train, 64)`` float32; ``y_train``: ``(n_train,)`` int64; likewise for ``val``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

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


def load_digits_split(validation_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """Split the 1,797 digits into stratified train and validation sets, reproducibly.

    With the defaults: 1,347 training and 450 validation images.
    """
    validation_fraction = require_float(
        "validation_fraction", validation_fraction, minimum=0.05, maximum=0.95
    )
    seed = require_int("seed", seed, minimum=0)
    from sklearn.model_selection import train_test_split

    images, labels = _digits()
    x = images.reshape(len(images), -1)
    x_train, x_val, y_train, y_val = train_test_split(
        x, labels, test_size=validation_fraction, random_state=seed, stratify=labels
    )
    return DigitsSplit(
        np.ascontiguousarray(x_train), np.ascontiguousarray(y_train),
        np.ascontiguousarray(x_val), np.ascontiguousarray(y_val),
    )
