"""Named datasets: what each is and how to read it.

Only the embedded ``digits`` set is here so far; downloadable datasets (MNIST, Fashion-MNIST,
CIFAR) and paths arrive with their own readers.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlplab.data.dataset import Dataset
from mlplab.data.split import stratified_split
from mlplab.errors import DataError

# The embedded set has no official test split: this fixed seed and fraction make one that is
# the same for every run, so test accuracies of different runs are comparable.
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    summary: str
    load: Callable[[], Dataset]


def _load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), pixels rescaled from 0..16 to 0..255."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = stratified_split(labels, DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED)
    return Dataset(
        name="digits",
        x_train=images[train_idx],
        y_train=labels[train_idx],
        x_test=images[test_idx],
        y_test=labels[test_idx],
        class_names=tuple(str(d) for d in range(10)),
        source="scikit-learn load_digits (UCI optical recognition of handwritten digits, 8x8)",
        test_split=f"stratified {DIGITS_TEST_FRACTION:g} of all images, seed {DIGITS_SPLIT_SEED}",
    )


CATALOG: dict[str, CatalogEntry] = {
    "digits": CatalogEntry(
        "digits", "8x8 handwritten digits bundled with scikit-learn", _load_digits
    ),
}


def dataset_names() -> list[str]:
    return list(CATALOG)


def load_dataset(name: str) -> Dataset:
    """Read a named dataset into memory.

    Returns a :class:`Dataset` (uint8 (n, h, w, c) images, int64 labels). Raises
    :class:`DataError` for a name that is not in the catalog.
    """
    entry = CATALOG.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, CATALOG, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DataError(
            f'data.dataset = "{name}": unknown dataset{hint}; known: {", ".join(CATALOG)}'
        )
    return entry.load()
