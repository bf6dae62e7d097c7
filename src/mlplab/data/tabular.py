"""CSV files in the Kaggle digit-recognizer layout, and NumPy .npz files."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np

from mlplab._io import write_named_file
from mlplab.data.arrays import as_pixels
from mlplab.errors import DataError


def _header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV: {exc}") from None


def read_csv(path: Path, labeled: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """A Kaggle-layout CSV -> images uint8 (n, s, s, 1) and labels int64 (n,) (or None).

    Labeled files have the header ``label,pixel0,...,pixelN``; unlabeled (a Kaggle test.csv)
    only the pixel columns. N + 1 must be a square number (784 = 28 x 28).
    """
    header = [column.strip() for column in _header(path)]
    first = 1 if labeled else 0
    if labeled and (not header or header[0] != "label"):
        raise DataError(f"{path}: the first column must be 'label' (got {header[:1]})")
    pixels = header[first:]
    for i, column in enumerate(pixels):
        if column != f"pixel{i}":
            raise DataError(
                f"{path}: column {first + i + 1} should be 'pixel{i}', found '{column}'"
            )
    side = math.isqrt(len(pixels))
    if not pixels or side * side != len(pixels):
        raise DataError(f"{path}: {len(pixels)} pixel columns is not a square image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "no data": reported below
            table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{path}: {str(exc).splitlines()[0]}") from None
    if table.shape[0] == 0:
        raise DataError(f"{path}: no rows")
    if table.shape[1] != len(header):
        raise DataError(f"{path}: rows have {table.shape[1]} cells but the header {len(header)}")
    values = table[:, first:]
    if values.min() < 0 or values.max() > 255:
        row = int(np.argwhere((values < 0) | (values > 255))[0][0])
        raise DataError(f"{path}: row {row + 2} has a pixel outside 0..255")
    images = values.astype(np.uint8).reshape(-1, side, side, 1)
    labels = table[:, 0] if labeled else None
    if labels is not None and labels.min() < 0:
        row = int(np.argmin(labels))
        raise DataError(f"{path}: row {row + 2} has a negative label {labels[row]}")
    return images, labels


def classes_from_labels(labels: np.ndarray, where: str) -> tuple[str, ...]:
    """Class names "0".."K-1" for integer labels; every class must occur."""
    if len(labels) == 0:
        raise DataError(f"{where}: the dataset is empty (no labelled images)")
    count = int(labels.max()) + 1
    missing = sorted(set(range(count)) - set(np.unique(labels).tolist()))
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise DataError(
            f"{where}: labels run to {count - 1} but classes {shown} never occur; labels must "
            f"be 0..K-1 with every class present"
        )
    return tuple(str(i) for i in range(count))


def write_submission(path: Path, labels: list[str]) -> None:
    """A Kaggle submission: ``ImageId,Label`` with 1-based ImageId."""
    lines = ["ImageId,Label", *(f"{i},{label}" for i, label in enumerate(labels, start=1))]
    write_named_file(path, ("\n".join(lines) + "\n").encode("utf-8"))


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test", "class_names")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """x_train, y_train[, x_test, y_test][, class_names] from an .npz, loaded with
    allow_pickle=False.

    Images may be (n, h, w), (n, h, w, c) or (n, pixels) of whole numbers in 0..255 (see
    :func:`mlplab.data.arrays.as_pixels`); returned uint8 NHWC. class_names: an array of
    strings (``np.array(["cat", "dog"])``), one per label 0..K-1, checked by
    :func:`npz_class_names`.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in NPZ_KEYS if key in npz.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except ValueError as exc:  # object arrays need pickle: refused
        raise DataError(f"{path}: refused: {exc}") from None
    except Exception as exc:  # a damaged zip raises many kinds; none may escape as a crash
        reason = (str(exc).splitlines() or [""])[0] or type(exc).__name__
        raise DataError(f"{path}: not a readable .npz: {reason}") from None
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise DataError(f"{path}: no '{key}' array (need x_train, y_train[, x_test, y_test])")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path}: x_test and y_test must both be there, or neither")
    for part in ("train", "test"):
        if f"x_{part}" not in arrays:
            continue
        x, y = as_pixels(arrays[f"x_{part}"], f"{path}: x_{part}"), arrays[f"y_{part}"]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: y_{part} must be integer labels (n,), got {y.shape}")
        if len(x) != len(y):
            raise DataError(f"{path}: {len(x)} {part} images but {len(y)} labels")
        arrays[f"x_{part}"], arrays[f"y_{part}"] = x, y.astype(np.int64)
    return arrays


def npz_class_names(arrays: dict[str, np.ndarray], where: Path) -> tuple[str, ...]:
    """The class names of an .npz's labels: its ``class_names`` array when it has one (a
    1-D array of distinct, non-empty strings, one per label 0..K-1), else "0".."K-1"."""
    numbered = classes_from_labels(arrays["y_train"], str(where))
    if "class_names" not in arrays:
        return numbered
    given = arrays["class_names"]
    if given.ndim != 1 or given.dtype.kind not in "US":
        raise DataError(
            f"{where}: class_names must be a 1-D array of strings (np.array(['cat', 'dog'])), "
            f"got {given.dtype} {given.shape}"
        )
    names = tuple(
        (name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)).strip()
        for name in given.tolist()
    )
    if len(names) != len(numbered):
        raise DataError(
            f"{where}: {len(names)} class_names for labels 0..{len(numbered) - 1}: give one "
            "name per label"
        )
    if any(not name for name in names) or len(set(names)) != len(names):
        raise DataError(f"{where}: class_names must be distinct and not empty: {list(names)}")
    return names
