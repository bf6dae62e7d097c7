"""Seeded, stratified splits. Never Keras' validation_split, which takes the last rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlplab.data.dataset import Dataset
from mlplab.errors import DataError


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out) with about ``fraction`` of each class held out.

    labels: int (n,). Returns two sorted int64 index arrays that partition range(n). Falls back
    to a plain seeded shuffle when a class is too small to stratify.
    """
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    try:
        keep, held = train_test_split(index, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError:
        keep, held = train_test_split(index, test_size=fraction, random_state=seed)
    return np.sort(keep), np.sort(held)


@dataclass(frozen=True)
class Splits:
    """Arrays a trainer needs. x_*: uint8 (n, h, w, c); y_*: int64 (n,).

    x_val and y_val are None when there is no validation set. ``validation`` says, in words,
    where the validation set came from (for reports).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    validation: str


def make_splits(
    dataset: Dataset, validation: float | str, seed: int, external: Dataset | None = None
) -> Splits:
    """Train / validation / test arrays as ``data.validation`` says.

    validation: a fraction of the training set (seeded, stratified), 0 for none, "test" to
    validate on the test split (as some tutorials do; reports say so), or a path, whose
    dataset is passed as ``external`` (all of its images, train and test, validate).
    """
    x, y = dataset.x_train, dataset.y_train
    if external is not None:
        if external.image_shape != dataset.image_shape:
            raise DataError(
                f"data.validation = {validation}: images are {external.image_shape}, "
                f"training images {dataset.image_shape}"
            )
        if external.class_names != dataset.class_names:
            raise DataError(
                f"data.validation = {validation}: classes {list(external.class_names)[:5]}... "
                f"differ from the training classes {list(dataset.class_names)[:5]}..."
            )
        x_val = np.concatenate([external.x_train, external.x_test])
        y_val = np.concatenate([external.y_train, external.y_test])
        return Splits(x, y, x_val, y_val, dataset.x_test, dataset.y_test, f"the file {validation}")
    if validation == "test":
        return Splits(
            x,
            y,
            dataset.x_test,
            dataset.y_test,
            dataset.x_test,
            dataset.y_test,
            "the test split (not held out from training decisions)",
        )
    if not validation:
        return Splits(x, y, None, None, dataset.x_test, dataset.y_test, "none")
    keep, held = stratified_split(y, float(validation), seed)
    return Splits(
        x[keep],
        y[keep],
        x[held],
        y[held],
        dataset.x_test,
        dataset.y_test,
        f"stratified {float(validation):g} of train, seed {seed}",
    )
