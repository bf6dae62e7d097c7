"""NumPy .npz datasets, integer labels as classes, and Kaggle submission files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlplab._io import write_named_file
from mlplab.data.arrays import as_pixels
from mlplab.errors import DataError


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


def write_submission(
    path: Path,
    labels: list[str],
    ids: list[str] | None = None,
    header: tuple[str, str] = ("ImageId", "Label"),
) -> None:
    """A Kaggle submission: a row per answer, its id (1-based numbers unless ``ids`` are
    given) and its label, under ``header``; quoted where a cell needs it."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(ids or range(1, len(labels) + 1), labels, strict=True))
    write_named_file(path, buffer.getvalue().encode("utf-8"))


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test", "class_names")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """x_train, y_train[, x_test, y_test][, class_names] from an .npz, loaded with
    allow_pickle=False. Labels are whole numbers (int64 here) or names (str here: strings
    or bytes, as ``np.array(["cat", "dog"])`` stores them).

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
        x = as_pixels(arrays[f"x_{part}"], f"{path}: x_{part}")
        y = _labels(arrays[f"y_{part}"], f"{path}: y_{part}")
        if len(x) != len(y):
            raise DataError(f"{path}: {len(x)} {part} images but {len(y)} labels")
        arrays[f"x_{part}"], arrays[f"y_{part}"] = x, y
    if "y_test" in arrays and (arrays["y_train"].dtype.kind == "U") != (
        arrays["y_test"].dtype.kind == "U"
    ):
        raise DataError(f"{path}: y_train and y_test must both be numbers, or both names")
    return arrays


def _labels(y: np.ndarray, where: str) -> np.ndarray:
    """An .npz's labels (n,) as int64, or as str when they are names ("cat"; bytes too).
    Floats pass when they are whole numbers (labels saved from a pandas column)."""
    if y.ndim == 1 and y.dtype.kind in "US":
        names = np.char.strip(y.astype(str))  # bytes decoded; str as they are
        if len(names) and not np.char.str_len(names).all():
            raise DataError(f"{where}: an empty label; labels are numbers or names")
        return names
    whole = (
        y.ndim == 1
        and y.dtype.kind == "f"
        and bool(np.isfinite(y).all())
        and bool((y == np.round(y)).all())
    )
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or whole):
        raise DataError(
            f"{where} must be labels (n,): whole numbers or names, got {y.dtype} {list(y.shape)}"
        )
    return y.astype(np.int64)


def numbered_classes(
    arrays: dict[str, np.ndarray], where: str, test_where: str | None = None
) -> tuple[str, ...]:
    """The classes of the labels as written: the values y_train holds, sorted — numbers
    named by their numbers ("0", "1", "4" for labels 0, 1 and 4), or names (str labels,
    from :func:`read_npz`) as they are. y_train and y_test (when there) become int64
    indices 0..K-1 into them, in place; a gap in the numbers (Sign Language MNIST has no 9)
    is simply not a class.

    where, test_where: the training and test labels' names, for errors."""
    train = arrays["y_train"]
    if len(train) == 0:
        raise DataError(f"{where}: the dataset is empty (no labelled images)")
    named = train.dtype.kind == "U"
    values = np.unique(train)
    if not named and values[0] < 0:
        raise DataError(f"{where}: negative label {int(values[0])}; labels are 0 or more")
    arrays["y_train"] = np.searchsorted(values, train).astype(np.int64)
    if "y_test" in arrays:
        unknown = np.setdiff1d(arrays["y_test"], values)
        if len(unknown):
            shown = repr(str(unknown[0])) if named else int(unknown[0])
            raise DataError(
                f"{test_where or where}: label {shown} never occurs in {where}; the test "
                "labels must be training classes"
            )
        arrays["y_test"] = np.searchsorted(values, arrays["y_test"]).astype(np.int64)
    return tuple(str(value) if named else str(int(value)) for value in values)


def npz_class_names(arrays: dict[str, np.ndarray], where: Path) -> tuple[str, ...]:
    """The class names of an .npz's labels: its ``class_names`` array when it has one (a
    1-D array of distinct, non-empty strings, one per label 0..K-1), else the label values
    (:func:`numbered_classes`, which turns them into indices)."""
    if "class_names" in arrays and arrays["y_train"].dtype.kind == "U":
        raise DataError(
            f"{where}: y_train holds names already; class_names names integer labels "
            "0..K-1: leave one of them out"
        )
    if "class_names" not in arrays:
        return numbered_classes(arrays, f"{where}: y_train", f"{where}: y_test")
    numbered = classes_from_labels(arrays["y_train"], str(where))
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
