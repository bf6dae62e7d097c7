"""Datasets in one in-memory form, splits, scaling parameters and image files.

This package knows nothing of Keras or JAX: it returns NumPy arrays.
"""

from __future__ import annotations

from pathlib import Path

from mlplab.data.catalog import CATALOG, dataset_names
from mlplab.data.dataset import Dataset
from mlplab.data.images import read_images
from mlplab.data.paths import ARCHIVES
from mlplab.data.pixel_csv import CSV_SUFFIXES
from mlplab.data.scaling import ScalingParams, scaling_params
from mlplab.data.split import Splits, make_splits, stratified_split

FILE_SUFFIXES = (*CSV_SUFFIXES, ".npz", ".zip", *ARCHIVES)


def looks_like_path(spec: str) -> bool:
    """Whether a dataset spec is a path (it need not exist: then it is "no such file")."""
    return (
        "/" in spec
        or "\\" in spec
        or spec.startswith(".")
        or spec.lower().endswith(FILE_SUFFIXES)
        or Path(spec).exists()
    )


def load_dataset(
    spec: str,
    *,
    offline: bool | None = None,
    image_size: tuple[int, ...] = (),
    color: str = "auto",
    strict: bool = False,
    verbose: bool = False,
    whole: bool = False,
    key: str | None = None,
) -> Dataset:
    """Read a dataset by catalog name or path into a :class:`Dataset`.

    Named datasets are verified (and downloaded unless ``offline``); paths are read by the
    reader their form calls for (see :mod:`mlplab.data.paths`). image_size, color and strict
    apply to image folders. whole: a path without a test split of its own is all test
    images (to evaluate a model on), not split. key: the config key ``spec`` came from
    ("data.dataset"), named when there is no such dataset.
    """
    from mlplab.data.catalog import load_named
    from mlplab.data.paths import load_path

    if spec in CATALOG or not looks_like_path(spec):
        return load_named(spec, offline=offline, progress=verbose, key=key)
    return load_path(Path(spec), image_size, color, strict, verbose, whole)


__all__ = [
    "Dataset",
    "ScalingParams",
    "Splits",
    "dataset_names",
    "load_dataset",
    "make_splits",
    "read_images",
    "scaling_params",
    "stratified_split",
]
