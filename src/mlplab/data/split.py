"""Seeded, stratified splits. Never Keras' validation_split, which takes the last rows."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from mlplab.data.dataset import Dataset
from mlplab.errors import DataError


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out) with about ``fraction`` of each class held out.

    labels: int (n,). Returns two sorted int64 index arrays that partition range(n). Falls back
    to a plain seeded shuffle when a class is too small to stratify (fewer than 2 images, or
    fewer held-out or kept images than classes).

    The same split as scikit-learn's ``train_test_split(..., stratify=labels)`` (its
    StratifiedShuffleSplit, and ShuffleSplit for the fallback) with the same seed — a test
    checks that — written out here because importing scikit-learn's model_selection takes
    about 1.5 s of every run.
    """
    n = len(labels)
    n_held = math.ceil(fraction * n)
    n_keep = n - n_held
    if not 0 < fraction < 1 or n_keep < 1:
        raise DataError(f"{n} image(s) are too few to hold out {fraction:g} of them")
    rng = np.random.RandomState(seed)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2 or n_keep < len(classes) or n_held < len(classes):
        order = rng.permutation(n)
        return np.sort(order[n_held:]), np.sort(order[:n_held])
    members = np.split(np.argsort(inverse.ravel(), kind="stable"), np.cumsum(counts)[:-1])
    keep_counts = _approximate_mode(counts, n_keep, rng)
    held_counts = _approximate_mode(counts - keep_counts, n_held, rng)
    keep, held = [], []
    for i, indices in enumerate(members):
        shuffled = indices.take(rng.permutation(counts[i]), mode="clip")
        keep.append(shuffled[: keep_counts[i]])
        held.append(shuffled[keep_counts[i] : keep_counts[i] + held_counts[i]])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def _approximate_mode(
    class_counts: np.ndarray, draws: int, rng: np.random.RandomState
) -> np.ndarray:
    """How many of ``draws`` to take from each class: the proportional share, rounded down,
    then one more for the classes with the largest remainders (ties broken at random).
    scikit-learn's ``utils.extmath._approximate_mode``, step for step (the same random
    draws)."""
    continuous = class_counts / class_counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            now = min(len(tied), need)
            floored[rng.choice(tied, size=now, replace=False)] += 1
            need -= now
            if need == 0:
                break
    return floored.astype(int)


@dataclass(frozen=True)
class Splits:
    """Arrays a trainer needs. x_*: uint8 (n, h, w, c); y_*: int64 (n,).

    x_val and y_val are None when there is no validation set. ``validation`` says, in words,
    where the validation set came from (for reports). w_train: float (n_train,) loss weight
    of each training image (``MLPClassifier.fit``'s ``sample_weight``), or None.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    validation: str
    w_train: np.ndarray | None = None


def make_splits(
    dataset: Dataset,
    validation: float | str,
    seed: int,
    external: Dataset | None = None,
    train_fraction: float = 1.0,
    sample_weight: np.ndarray | None = None,
) -> Splits:
    """Train / validation / test arrays as ``data.validation`` says.

    validation: a fraction of the training set (seeded, stratified), 0 for none, "test" to
    validate on the test split (as some tutorials do; reports say so), or a path, whose
    dataset is passed as ``external`` (all of its images, train and test, validate).
    train_fraction: train on this share of what is left for training (a seeded,
    stratified subset, ``data.train_fraction``); the validation and test splits are the
    same as with all of it, so runs on different shares compare.
    sample_weight: float (n,) a weight per image of ``dataset.x_train``; the training
    images' own go with them (``w_train``). The validation loss stays unweighted.
    """
    splits, rows = _split_validation(dataset, validation, seed, external)
    if train_fraction < 1:
        try:
            _, kept = stratified_split(splits.y_train, train_fraction, seed)
        except DataError as exc:
            raise DataError(f"data.train_fraction = {train_fraction:g}: {exc}") from None
        rows = rows[kept]
        splits = dataclasses.replace(
            splits, x_train=splits.x_train[kept], y_train=splits.y_train[kept]
        )
    if sample_weight is not None:
        splits = dataclasses.replace(splits, w_train=np.asarray(sample_weight)[rows])
    return splits


def _split_validation(
    dataset: Dataset, validation: float | str, seed: int, external: Dataset | None
) -> tuple[Splits, np.ndarray]:
    """make_splits without ``train_fraction``, and the training images' rows of
    ``dataset.x_train`` (int (n_train,))."""
    x, y = dataset.x_train, dataset.y_train
    every = np.arange(len(y))
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
        where = f"the file {validation}"
        return Splits(x, y, x_val, y_val, dataset.x_test, dataset.y_test, where), every
    if validation == "test":
        return Splits(
            x,
            y,
            dataset.x_test,
            dataset.y_test,
            dataset.x_test,
            dataset.y_test,
            "the test split (not held out from training decisions)",
        ), every
    if not validation:
        return Splits(x, y, None, None, dataset.x_test, dataset.y_test, "none"), every
    try:
        keep, held = stratified_split(y, float(validation), seed)
    except DataError as exc:
        raise DataError(f"data.validation = {validation}: {exc}") from None
    return Splits(
        x[keep],
        y[keep],
        x[held],
        y[held],
        dataset.x_test,
        dataset.y_test,
        f"stratified {float(validation):g} of train, seed {seed}",
    ), keep
