"""Datasets in one in-memory form, splits, scaling parameters and image files.

This package knows nothing of Keras or JAX: it returns NumPy arrays.
"""

from mlplab.data.catalog import dataset_names, load_dataset
from mlplab.data.dataset import Dataset
from mlplab.data.images import read_images
from mlplab.data.scaling import ScalingParams, scaling_params
from mlplab.data.split import Splits, make_splits, stratified_split

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
