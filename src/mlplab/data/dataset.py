"""The one in-memory form every dataset is read into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlplab.errors import DataError

# Dataset.test_split of a dataset read ``whole``: every image is a test image.
WHOLE_SPLIT = "all images (the dataset has no test split of its own)"


@dataclass(frozen=True)
class Dataset:
    """A labelled image dataset with a train and a test split.

    x_train: uint8 (n_train, h, w, c); y_train: int64 (n_train,) with values in [0, k).
    x_test: uint8 (n_test, h, w, c);   y_test: int64 (n_test,).
    class_names: k names, index i naming label i.
    source: where the data came from, for the run's records.
    test_split: how the test split was made ("official", or the seeded fraction used).
    files_train, files_test: where each image came from, aligned with x_train and x_test:
    its file (an image folder or list), its row of a CSV ("train.csv:12") or its entry of
    an .npz ("d.npz:x_train[12]"); empty for the named datasets (their index is their place).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    test_split: str = "official"
    files_train: tuple[str, ...] = ()
    files_test: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.dtype != np.uint8 or x.ndim != 4:
                raise DataError(
                    f"{self.name}: x_{part} must be uint8 (n, h, w, c), got {x.dtype} {x.shape}"
                )
            if y.ndim != 1 or len(y) != len(x):
                raise DataError(
                    f"{self.name}: {len(x)} {part} images but {len(y)} labels; they must match"
                )
            files = getattr(self, f"files_{part}")
            if files and len(files) != len(x):
                raise DataError(f"{self.name}: {len(x)} {part} images but {len(files)} files")
            if len(y) and (y.min() < 0 or y.max() >= len(self.class_names)):
                raise DataError(
                    f"{self.name}: {part} labels must lie in 0..{len(self.class_names) - 1}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                f"{self.name}: train images are {self.x_train.shape[1:]} but test images are "
                f"{self.x_test.shape[1:]}"
            )

    def image_names(self, split: str) -> list[str]:
        """A name for each image of ``split`` ("train" or "test"): its file; else its index,
        "train #12" / "test #3", or "image #12" for a dataset read whole (its place in the
        file: the row of a CSV, the entry of an .npz's x_train)."""
        files = getattr(self, f"files_{split}")
        if files:
            return list(files)
        label = "image" if self.test_split == WHOLE_SPLIT else split
        return [f"{label} #{index}" for index in range(len(getattr(self, f"y_{split}")))]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels)."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def file_names(files: Any) -> tuple[str, ...]:
    """A reader's file names (str (n,), or None) as :class:`Dataset` holds them."""
    return () if files is None else tuple(str(name) for name in files)
