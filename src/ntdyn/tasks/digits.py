"""Image classification data: scikit-learn's handwritten digits, or an MNIST file by path.

Images are flattened and scaled to [0, 1]; labels are integers 0..9. The split
into training and test images is stratified and seeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np


class ClassificationData(NamedTuple):
    """x_train (n_train, D) float32 in [0, 1]; y_train (n_train,) int32; the same for test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> ClassificationData:
    if not 0 < test_fraction < 1:
        raise ValueError(f"data__test_fraction = {test_fraction}: must be in (0, 1)")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for label in np.unique(y):  # stratified: every class in both parts, in proportion
        idx = rng.permutation(np.flatnonzero(y == label))
        test[idx[: int(round(test_fraction * len(idx)))]] = True
    x, y = x.astype(np.float32), y.astype(np.int32)
    return ClassificationData(x[~test], y[~test], x[test], y[test])


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> ClassificationData:
    """The 1797 8x8 digit images shipped with scikit-learn (no download), D = 64."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return _split(bunch.data / 16.0, bunch.target, test_fraction, seed)


def load_mnist_file(path: str | Path, test_fraction: float = 1 / 7, seed: int = 0):
    """An MNIST-like `.npz` file: either `x_train, y_train, x_test, y_test` (the Keras
    `mnist.npz` layout, kept as given) or `x, y` (split here). Images (n, 28, 28) or (n, D),
    uint8 0..255 or floats in [0, 1]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data__path = {str(path)!r}: no such file")
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}

    def images(a):
        a = a.reshape(len(a), -1).astype(np.float32)
        return a / 255.0 if a.max() > 1.0 else a

    if {"x_train", "y_train", "x_test", "y_test"} <= set(arrays):
        return ClassificationData(
            images(arrays["x_train"]), arrays["y_train"].astype(np.int32),
            images(arrays["x_test"]), arrays["y_test"].astype(np.int32),
        )  # fmt: skip
    if {"x", "y"} <= set(arrays):
        return _split(images(arrays["x"]), arrays["y"], test_fraction, seed)
    raise ValueError(
        f"data__path = {str(path)!r}: expected arrays x_train, y_train, x_test, y_test or x, y; "
        f"found {sorted(arrays)}"
    )


def load_classification_data(hp: dict) -> ClassificationData:
    """`data__name`: digits | mnist_file (`data__path`); `data__test_fraction`, `data__seed`."""
    name = hp["data__name"]
    frac, seed = float(hp["data__test_fraction"]), int(hp["data__seed"])
    if name == "digits":
        return load_digits(frac, seed)
    if name == "mnist_file":
        return load_mnist_file(hp["data__path"], frac, seed)
    raise ValueError(f"data__name = {name!r}: must be one of ['digits', 'mnist_file']")
