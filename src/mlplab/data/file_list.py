"""A CSV that lists image files and their labels, as Kaggle's image datasets and fastai's
``ImageDataLoaders.from_csv`` have them::

    id,label                 file,breed            id_code,diagnosis
    0004be2c.jpg,1           photos/rex.png,dog     000c1434d8d7,2

A CSV is read as a list when it has one or two columns, or when a cell of its first row
names an image file there (else it holds pixel rows: :mod:`mlplab.data.pixel_csv`).

The file column is the first whose first value is an image file; a name without an
extension finds NAME.png, .jpg, .jpeg, .bmp, .gif or .webp. Files are looked for beside the CSV,
then in a folder named like it (``train.csv``: ``train/``, ``train_images/``), then in
``images/``. The label column is the one named ``label``, ``labels``, ``class`` or
``category`` (in any case), else, with two columns, the other one. Labels are text: the
classes are the labels that occur (numbers in numeric order, else in alphabetical order).
Or the labels are one-hot: every other column 0 or 1, one 1 per row (Kaggle's plant
pathology: ``image_id,healthy,multiple_diseases,rust,scab``); the classes are those
columns, in their order. The images are read as an image folder's are
(:func:`mlplab.data.folder.read_labelled_files`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlplab.data.folder import read_labelled_files
from mlplab.data.images import EXTENSIONS
from mlplab.data.pixel_csv import csv_stem, delimiter_of, open_csv, paired_test_csv
from mlplab.errors import DataError

LABEL_NAMES = ("label", "labels", "class", "category")


def _rows(path: Path, limit: int | None = None) -> list[list[str]]:
    """The CSV's rows (cells stripped, blank lines left out), at most ``limit``."""
    rows: list[list[str]] = []
    delimiter = delimiter_of(path)
    with open_csv(path) as handle:
        for row in csv.reader(handle, delimiter=delimiter):
            if any(cell.strip() for cell in row):
                rows.append([cell.strip() for cell in row])
            if limit is not None and len(rows) >= limit:
                break
    return rows


def is_file_list(path: Path) -> bool:
    """Whether a CSV lists image files (rather than holding pixel rows): it has one or two
    columns (no image is one pixel), or a cell of its first data row names an image file
    there (so a pixel table with a typo in its first row is still read, and blamed, as
    one)."""
    rows = _rows(path, limit=2)
    if rows and len(rows[0]) <= 2:
        return True  # a list, even if only its header is there ("no rows", then)
    if len(rows) < 2:
        return False
    folders = image_folders(path)
    cells = {cell for cell in rows[1] if cell}  # a pixel row holds at most 256 values
    return any(_find(folder, cell) is not None for cell in cells for folder in folders)


def image_folders(path: Path) -> list[Path]:
    """Where a list's files are looked for, in order (those that exist)."""
    here = path.parent
    stem = csv_stem(path)
    places = [here, here / stem, here / f"{stem}_images", here / "images"]
    return [place for place in places if place.is_dir()]


def _find(folder: Path, name: str) -> Path | None:
    """``folder/name`` when it is a file, else ``folder/name.png`` (.jpg, ...), else None.
    A list written on Windows (``images\\cat.png``) finds its files too."""
    name = name.replace("\\", "/")
    exact = folder / name
    if exact.is_file():
        return exact
    for extension in (*EXTENSIONS, *(e.upper() for e in EXTENSIONS)):
        found = folder / f"{name}{extension}"
        if found.is_file():
            return found
    return None


@dataclass(frozen=True)
class FileList:
    """A file list's layout: its columns, which holds the files and which the labels, and
    the folder the files are in."""

    header: tuple[str, ...]
    file_column: int
    label_column: int | None
    folder: Path
    # One-hot labels: the class columns (each row marks one of them with 1), else ().
    one_hot: tuple[int, ...] = ()

    def text(self) -> str:
        """Where the files and labels come from, in words."""
        files = f"files from column '{self.header[self.file_column]}' in {self.folder}"
        if self.one_hot:
            return files + f", labels one-hot in columns {', '.join(self.class_columns())}"
        if self.label_column is None:
            return files + ", no labels"
        return files + f", labels from column '{self.header[self.label_column]}'"

    @property
    def labeled(self) -> bool:
        return self.label_column is not None or bool(self.one_hot)

    def class_columns(self) -> list[str]:
        """The one-hot class columns' names, in their order."""
        return [self.header[i] for i in self.one_hot]


def read_list_layout(path: Path, labeled: bool = True) -> FileList:
    """The layout of a file list, from its header and first row (DataErrors say what is
    missing). labeled False: a list without a label column is accepted (label_column
    None)."""
    rows = _rows(path, limit=2)
    if not rows:
        raise DataError(f"{path}: empty file")
    if len(rows) < 2:
        raise DataError(f"{path}: no rows")
    header, first = tuple(rows[0]), rows[1]
    if len(first) != len(header):
        raise DataError(f"{path}: line 2 has {len(first)} cells but the header {len(header)}")
    named = [i for i, name in enumerate(header) if name.lower() in LABEL_NAMES]
    folders = image_folders(path)
    for column, value in enumerate(first):
        if column in named or not value:
            continue
        for folder in folders:
            if _find(folder, value) is not None:
                label = named[0] if named else None
                if label is None and len(header) == 2:
                    label = 1 - column
                one_hot = () if label is not None else _one_hot(first, column)
                if label is None and one_hot:
                    return FileList(header, column, None, folder, one_hot)
                if label is None and labeled:
                    raise DataError(
                        f"{path}: which column is the label? Name it 'label' (columns: "
                        f"{', '.join(header)})"
                    )
                return FileList(header, column, label, folder)
    stem = csv_stem(path)
    raise DataError(
        f"{path}: no column of its first row names an image file (looked beside it and in "
        f"{stem}/, {stem}_images/ and images/ there, with and without "
        f"{'/'.join(EXTENSIONS)}; first row: {', '.join(first)})"
    )


def _marks(cells: list[str]) -> list[float] | None:
    """One-hot cells as numbers (0 or 1), or None when a cell is anything else."""
    try:
        values = [float(cell) for cell in cells]
    except ValueError:
        return None
    return values if all(value in (0.0, 1.0) for value in values) else None


def _one_hot(first: list[str], file_column: int) -> tuple[int, ...]:
    """The columns other than the file's, when they are one-hot labels in the first row
    (every one 0 or 1, exactly one 1, at least two of them), else ()."""
    others = [i for i in range(len(first)) if i != file_column]
    marks = _marks([first[i] for i in others])
    return tuple(others) if len(others) > 1 and marks and sum(marks) == 1 else ()


@dataclass(frozen=True)
class Listed:
    """One row of a file list: its line in the file, the name as written, the file it
    names (None when it is not there) and its label ("" without a label column)."""

    line: int
    name: str
    file: Path | None
    label: str


def listed(path: Path, layout: FileList) -> list[Listed]:
    """Every row of a file list (DataError for a row of the wrong width or without a
    label, or for no rows)."""
    rows = []
    for line, row in enumerate(_rows(path)[1:], start=2):
        if len(row) != len(layout.header):
            raise DataError(
                f"{path}: line {line} has {len(row)} cells but the header {len(layout.header)}"
            )
        name = row[layout.file_column]
        label = row[layout.label_column] if layout.label_column is not None else ""
        if layout.label_column is not None and not label:
            raise DataError(f"{path}: line {line} has no label")
        if layout.one_hot:
            marks = _marks([row[i] for i in layout.one_hot])
            if marks is None or sum(marks) != 1:
                raise DataError(
                    f"{path}: line {line} marks {'no' if not marks else int(sum(marks))} "
                    "classes with 1 in its one-hot columns: each image needs exactly one"
                )
            label = layout.header[layout.one_hot[marks.index(1.0)]]
        rows.append(Listed(line, name, _find(layout.folder, name), label))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _by_class(rows: list[Listed], order: list[str], folder: Path) -> dict[str, list[Path]]:
    """The listed files of each class; a file not found is kept (as folder/name), so that
    it is skipped and counted like an unreadable image."""
    files: dict[str, list[Path]] = {name: [] for name in order}
    for row in rows:
        files[row.label].append(row.file or folder / row.name)
    return files


def files_to_predict(path: Path) -> tuple[FileList, list[Listed]]:
    """A file list's layout and rows, every file there (else a DataError naming the line):
    the images ``predict`` answers, one per row."""
    layout = read_list_layout(path, labeled=False)
    rows = listed(path, layout)
    for row in rows:
        if row.file is None:
            raise DataError(f"{path}: line {row.line}: '{row.name}' not found in {layout.folder}")
    return layout, rows


def _class_order(labels: set[str], layout: FileList) -> list[str]:
    """The classes that occur: one-hot columns in their order; labels that are all whole
    numbers in numeric order, others alphabetically."""
    if layout.one_hot:
        return [name for name in layout.class_columns() if name in labels]
    if all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


@dataclass(frozen=True)
class ListedImages:
    """A file list, read: reader output (x_train, y_train, files_train[, x_test, ...]),
    class names, what was read in words, and where the test images came from (None: the
    list has no test split of its own)."""

    arrays: dict[str, np.ndarray]
    class_names: tuple[str, ...]
    summary: str
    test_split: str | None


def load_file_list(
    path: Path,
    image_size: tuple[int, ...] = (),
    color: str = "auto",
    strict: bool = False,
    min_classes: int = 2,
) -> ListedImages:
    """Read a file list's images (and, when a labelled ``*_test.csv`` list is beside a
    ``*_train.csv``, its test images); options as for an image folder."""
    layout = read_list_layout(path)
    train = listed(path, layout)
    order = _class_order({row.label for row in train}, layout)
    splits = {"train": _by_class(train, order, layout.folder)}
    summary = layout.text()
    test_split = None
    beside = paired_test_csv(path)
    if beside is not None:
        test_layout = read_list_layout(beside, labeled=False)
        if not test_layout.labeled:
            summary += f"; {beside.name} beside it has no labels (for predict)"
        else:
            test = listed(beside, test_layout)
            unknown = sorted({row.label for row in test} - set(order))
            if unknown:
                raise DataError(
                    f"{beside}: label '{unknown[0]}' never occurs in {path.name}; the test "
                    "labels must be training classes"
                )
            splits["test"] = _by_class(test, order, test_layout.folder)
            test_split = f"{beside.name}, beside {path.name}"
    if len(order) < min_classes:
        raise DataError(f"{path}: only one class ('{order[0]}'); a classifier needs at least two")
    arrays, names, report = read_labelled_files(
        splits, path, image_size, color, strict, min_classes
    )
    return ListedImages(arrays, names, f"{summary}; {report.summary()}", test_split)
