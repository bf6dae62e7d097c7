"""A path given as a dataset: IDX folder, CIFAR folder or archive, CSV (of pixel rows, or
listing image files), .npz, image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlplab.data.catalog import from_arrays
from mlplab.data.dataset import WHOLE_SPLIT, Dataset, file_names
from mlplab.data.pixel_csv import csv_stem, is_csv
from mlplab.errors import DataError

ARCHIVES = (".tar.gz", ".tgz", ".tar")


def describe(path: Path) -> str:
    """Which reader a path goes to, in words (for errors and `datasets info`)."""
    from mlplab.data.cifar import is_cifar
    from mlplab.data.idx import find_idx

    if path.is_dir():
        if find_idx(path, "train-images-idx3-ubyte"):
            return "idx"
        if is_cifar(path):
            return "cifar"
        return "folder"
    name = path.name.lower()
    if name.endswith(ARCHIVES):
        return "cifar"
    if is_csv(name):
        from mlplab.data.file_list import is_file_list

        return "file-list" if path.is_file() and is_file_list(path) else "csv"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".zip"):
        return "zip"
    return "unknown"


def _zip_advice(path: Path) -> str:
    """What to do with a .zip (a Kaggle download): unzip it and name what is inside."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        return f"{path}: not a readable .zip: {exc}"
    tops = sorted({name.split("/")[0] + ("/" if "/" in name else "") for name in names})
    csvs = [name for name in tops if name.lower().endswith(".csv") and "train" in name.lower()]
    inside = path.with_suffix("")
    hint = f"--dataset {inside / csvs[0]}" if csvs else f"--dataset {inside}/..."
    shown = ", ".join(tops[:6]) + (", ..." if len(tops) > 6 else "")
    return (
        f"{path}: a .zip archive (holding {shown}); mlplab reads what is inside: unzip it "
        f"(unzip {path.name} -d {inside.name}) and give {hint}"
    )


def _check_test_labels(arrays: dict, class_names: tuple[str, ...], where: Path) -> None:
    if "y_test" in arrays and len(arrays["y_test"]) and arrays["y_test"].max() >= len(class_names):
        raise DataError(
            f"{where}: test label {int(arrays['y_test'].max())} is outside the training classes "
            f"0..{len(class_names) - 1}"
        )


def load_path(
    path: Path,
    image_size: tuple[int, ...] = (),
    color: str = "auto",
    strict: bool = False,
    verbose: bool = False,
    whole: bool = False,
) -> Dataset:
    """Read a dataset from a path; the form is recognised from what is there.

    whole: for evaluating a trained model on it, a dataset without a test split of its own
    is all test images (none for training; one class is enough) instead of being split."""
    from mlplab.data.tabular import classes_from_labels, npz_class_names, read_npz

    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    kind = describe(path)
    test_split = "official"
    name = (
        path.name.removesuffix(".tar.gz")
        if kind == "cifar"
        else csv_stem(path)
        if kind in ("csv", "file-list")
        else path.stem
        if path.is_file()
        else path.name
    )
    summary = ""  # what was read, in words, for readers that have something to say
    if kind == "idx":
        from mlplab.data.idx import idx_folder_paths, load_idx_arrays

        arrays = load_idx_arrays(idx_folder_paths(path))
        class_names = classes_from_labels(arrays["y_train"], str(path))
    elif kind == "cifar":
        from mlplab.data.cifar import load_cifar

        arrays = load_cifar(path)
        class_names = arrays["class_names"]
    elif kind == "csv":
        from mlplab.data.pixel_csv import load_csv_dataset

        table = load_csv_dataset(path, image_size, color)
        arrays, class_names, summary = table.arrays, table.class_names, table.summary
        test_split = table.test_split or test_split
    elif kind == "npz":
        arrays = read_npz(path)
        class_names = npz_class_names(arrays, path)
        for part in ("train", "test"):  # "d.npz:x_train[12]", whatever split it lands in
            if f"y_{part}" in arrays:
                names = [f"{path.name}:x_{part}[{i}]" for i in range(len(arrays[f"y_{part}"]))]
                arrays[f"files_{part}"] = np.asarray(names)
    elif kind == "file-list":
        from mlplab.data.file_list import load_file_list

        listed = load_file_list(path, image_size, color, strict, min_classes=1 if whole else 2)
        arrays, class_names, summary = listed.arrays, listed.class_names, listed.summary
        test_split = listed.test_split or test_split
    elif kind == "folder":
        from mlplab.data.folder import load_image_folder

        arrays, class_names, report = load_image_folder(
            path, image_size, color, strict, min_classes=1 if whole else 2
        )
        summary = report.summary()
    elif kind == "zip":
        raise DataError(_zip_advice(path))
    else:
        raise DataError(
            f"{path}: not a dataset mlplab can read (a folder of IDX files, a CIFAR folder or "
            ".tar.gz, a .csv (or .csv.gz) of pixel rows or of image files and labels, an .npz, "
            "or a folder "
            "of class sub-folders of images)"
        )
    if verbose and summary:
        import sys

        print(f"{path}: read {summary}", file=sys.stderr)
    if whole and "x_test" not in arrays:
        x, y = arrays["x_train"], arrays["y_train"]
        if not len(y):
            raise DataError(f"{path}: the dataset is empty")
        files = arrays.get("files_train")
        return Dataset(
            name,
            x[:0],
            y[:0],
            x,
            y,
            tuple(class_names),
            str(path),
            test_split=WHOLE_SPLIT,
            files_test=file_names(files),
        )
    if len(class_names) < 2:
        raise DataError(f"{path}: only one class; a classifier needs at least two")
    _check_test_labels(arrays, class_names, path)
    if len(np.unique(arrays["y_train"])) < 2:
        raise DataError(f"{path}: the training labels hold only one class")
    return from_arrays(name, arrays, tuple(class_names), str(path), test_split)
