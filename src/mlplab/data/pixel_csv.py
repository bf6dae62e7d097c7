"""Pixel tables in CSV: one image per row, a label column and h*w (or h*w*3) pixel columns.

Every layout these files come in is read without options:

- Kaggle's digit recognizer: a header ``label,pixel0,...,pixel783``; its ``test.csv`` has
  no label column;
- Kaggle's Fashion-MNIST and Sign Language MNIST: ``label,pixel1,...,pixel784``, with a
  labelled ``*_test.csv`` beside ``*_train.csv``;
- MNIST and EMNIST dumps: no header, the label first;
- HMNIST: ``pixel0000,...,pixel2351,label``: 28x28 RGB, row by row, the channels last.

The label column is the one named ``label`` (in any case), else the first. The other
columns are pixels: s*s of them make a grayscale s x s image, 3*s*s an RGB one (no count is
both). Images of another shape need ``data.image_size = [height, width]`` (and, where both
would fit, ``data.color``); the pixels are read row by row, the channels last. Labels are
whole numbers; the classes are the values that occur, in order, so a gap (Sign Language
MNIST has no 9, the letter J) is simply not a class.

A gzipped CSV (``train.csv.gz``) is read as it is, here and by the CSVs that list image
files (:mod:`mlplab.data.file_list`).
"""

from __future__ import annotations

import csv
import gzip
import math
import re
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mlplab.data.tabular import numbered_classes
from mlplab.errors import DataError

LABEL_NAME = "label"
DELIMITERS = (",", ";", "\t")
_NUMBERED = re.compile(r"^(\D*)(\d+)$")
_WHOLE = re.compile(r"^[+-]?\d+$")
CSV_SUFFIXES = (".csv.gz", ".csv")  # the longer first: csv_stem strips the first that ends it
# What reading a cut or corrupt .csv.gz raises (gzip.BadGzipFile is an OSError).
_GZIP_ERRORS = (EOFError, zlib.error)


def is_csv(path: str | Path) -> bool:
    """Whether a path names a CSV: ``.csv``, or gzipped, ``.csv.gz`` (any case)."""
    return str(path).lower().endswith(CSV_SUFFIXES)


def csv_stem(path: Path) -> str:
    """The file's name without ``.csv`` or ``.csv.gz``: "train" for both."""
    for suffix in CSV_SUFFIXES:
        if path.name.lower().endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


@dataclass(frozen=True)
class CsvLayout:
    """How a pixel CSV's columns are laid out.

    header: its first row when that names the columns, else () (the first row is data).
    label_column: the index of the label column, or None when there is none.
    image_shape: (h, w, c) of one row's pixels."""

    header: tuple[str, ...]
    columns: int
    label_column: int | None
    image_shape: tuple[int, int, int]
    delimiter: str = ","

    @property
    def first_data_line(self) -> int:
        """The file's line number (from 1) of the first image."""
        return 2 if self.header else 1

    def label_text(self) -> str:
        """Where the labels come from, in words."""
        if self.label_column is None:
            return "no labels"
        if not self.header:
            return "labels from the first column (no header)"
        name = self.header[self.label_column]
        if name.lower() == LABEL_NAME:
            return f"labels from column '{name}'"
        return f"labels from the first column '{name}' (no column is named '{LABEL_NAME}')"


def _open_text(path: Path) -> TextIO:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", newline="", encoding="utf-8-sig")
    return path.open(newline="", encoding="utf-8-sig")


@contextmanager
def open_csv(path: Path) -> Iterator[TextIO]:
    """A CSV opened as text (a byte-order mark dropped; a ``.gz`` decompressed), its
    reading's failures one-line DataErrors naming it: no such file, or cannot be read (I/O,
    not UTF-8, bad quoting, not gzip or cut short)."""
    try:
        with _open_text(path) as handle:
            yield handle
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error, *_GZIP_ERRORS) as exc:
        raise DataError(f"{path}: cannot read CSV: {exc}") from None


def delimiter_of(path: Path) -> str:
    """The character between a CSV's cells: ",", or ";" or a tab when its first line has
    more of those (a spreadsheet saved in a language whose decimal mark is a comma writes
    ";"). DataError when the file cannot be read."""
    with open_csv(path) as handle:
        line = handle.readline()
    return max(DELIMITERS, key=line.count)  # the first (",") on a tie


def _first_row(path: Path, delimiter: str) -> list[str]:
    with open_csv(path) as handle:
        return [cell.strip() for cell in next(csv.reader(handle, delimiter=delimiter), [])]


def shape_of_pixels(count: int, channels: tuple[int, ...] = (1, 3)) -> tuple[int, int, int] | None:
    """(s, s, 1) for s*s pixel values, (s, s, 3) for 3*s*s, else None; only the
    ``channels`` given (1: grayscale, 3: RGB) are tried."""
    for depth in channels:
        side = math.isqrt(count // depth)
        if count and count % depth == 0 and side * side * depth == count:
            return (side, side, depth)
    return None


# data.color -> the channel counts a row's pixels may make.
_CHANNELS = {"auto": (1, 3), "grayscale": (1,), "rgb": (3,)}


def image_shape_for(
    path: Path, count: int, size: tuple[int, ...] = (), color: str = "auto"
) -> tuple[int, int, int]:
    """(h, w, c) of the image each row's ``count`` pixel values make: square unless ``size``
    (``data.image_size``, (h, w)) says otherwise; ``color`` (``data.color``) picks grayscale
    or RGB where "auto" leaves both. DataError naming the file and the key otherwise."""
    channels = _CHANNELS[color]
    kinds = {1: "grayscale", 3: "RGB"}
    if size:
        height, width = size
        for depth in channels:
            if height * width * depth == count:
                return (height, width, depth)
        makes = " or ".join(f"{height * width * d} for {kinds[d]}" for d in channels)
        raise DataError(
            f"{path}: rows of {count} pixel values do not make {height}x{width} images "
            f"(data.image_size = [{height}, {width}] needs {makes})"
        )
    shape = shape_of_pixels(count, channels)
    if shape is None:
        what = " or ".join({1: "s*s grayscale", 3: "3*s*s RGB"}[depth] for depth in channels)
        raise DataError(
            f"{path}: {count} pixel columns is not a square image ({what} values per row); "
            "for another shape set data.image_size = [height, width]"
        )
    return shape


def _check_pixel_names(path: Path, header: tuple[str, ...], label_column: int | None) -> None:
    """Numbered pixel columns (pixel0.., pixel1.., pixel0000..) must run in order, so that a
    dropped or shuffled column is caught rather than read as a scrambled image."""
    columns = [i for i in range(len(header)) if i != label_column]
    names = [header[i] for i in columns]
    matches = [_NUMBERED.match(name) for name in names]
    if not all(matches) or len({m.group(1) for m in matches if m}) != 1:
        return
    prefix, digits = matches[0].group(1), matches[0].group(2)  # type: ignore[union-attr]
    width = len(digits) if digits.startswith("0") and len(digits) > 1 else 0
    start = int(digits)
    for i, (name, match) in enumerate(zip(names, matches, strict=True)):
        if int(match.group(2)) != start + i:  # type: ignore[union-attr]
            expected = f"{prefix}{start + i:0{width}d}"
            raise DataError(
                f"{path}: column {columns[i] + 1} should be '{expected}', found '{name}'"
            )


def read_layout(
    path: Path,
    labeled: bool | None = True,
    pixels: int | None = None,
    size: tuple[int, ...] = (),
    color: str = "auto",
) -> CsvLayout:
    """Work out a pixel CSV's layout from its first row.

    labeled: True, it has a label column; None, it may (a file to predict: a named label
    column, or one column more than ``pixels``, is dropped). pixels: the number of pixel
    values a row must hold (a trained model's input), or None for any image-like count.
    size, color: ``data.image_size`` and ``data.color`` (:func:`image_shape_for`), used when
    ``pixels`` is None."""
    delimiter = delimiter_of(path)
    first = _first_row(path, delimiter)
    if not first or first == [""]:
        raise DataError(f"{path}: empty file")
    numbered = first == [str(i) for i in range(len(first))]  # pandas' header for 0..n-1
    # A data row: whole numbers, but for a label name first ("cat,0,12,...") in a file
    # that has a label column.
    pixels_whole = len(first) > 1 and all(_WHOLE.match(cell) for cell in first[1:])
    name_first = labeled is not False and first[0].strip().lower() not in ("", LABEL_NAME)
    is_data = not numbered and pixels_whole and (bool(_WHOLE.match(first[0])) or name_first)
    header = () if is_data else tuple(first)
    named = [i for i, name in enumerate(header) if name.lower() == LABEL_NAME]
    if len(named) > 1:
        raise DataError(f"{path}: {len(named)} columns are named '{LABEL_NAME}'")
    columns = len(first)
    if named:
        label_column: int | None = named[0]
    elif labeled or (pixels is not None and columns == pixels + 1):
        label_column = 0
    else:
        label_column = None
    count = columns - (label_column is not None)
    if pixels is not None and count != pixels:
        raise DataError(f"{path}: rows of {count} pixel values, but {pixels} are needed")
    if pixels is None:
        shape: tuple[int, int, int] | None = image_shape_for(path, count, size, color)
    else:
        shape = shape_of_pixels(count)
    if header:
        _check_pixel_names(path, header, label_column)
    return CsvLayout(header, columns, label_column, shape or (1, count, 1), delimiter)


def _load_table(path: Path, layout: CsvLayout) -> tuple[np.ndarray, np.ndarray | None]:
    """The pixel cells as int64 (n, pixels), and the label column (n,): int64 for numbers,
    str for names ("cat"), None without one. One-line DataErrors naming the file's line.
    (NumPy decompresses a path ending in .gz itself.)"""
    keep = [i for i in range(layout.columns) if i != layout.label_column]
    try:
        table = _loadtxt(path, layout, np.int64)
    except _NamedLabels:
        # Names in the label column: a second pass, the pixels and the names apart (only
        # for such files: the one-pass read above is the fast path for number labels).
        _check_row_lengths(path, layout)  # reading some columns, NumPy does not
        pixels = _loadtxt(path, layout, np.int64, keep)
        names = np.char.strip(_loadtxt(path, layout, str, [layout.label_column])[:, 0])
        if not np.char.str_len(names).all():
            row = int(np.argmin(np.char.str_len(names)))
            raise DataError(
                f"{path}: line {row + layout.first_data_line} has an empty label"
            ) from None
        numbers = np.array([bool(_WHOLE.match(name)) for name in names])
        if numbers.any():  # a name among numbers: a typo more likely than a class
            row = int(np.argmin(numbers))
            raise DataError(
                f"{path}: line {row + layout.first_data_line}, column "
                f"{layout.label_column + 1}: label '{names[row]}' is not a whole number, "
                "but other labels are: labels are all numbers or all names"
            ) from None
        return pixels, names
    if table.shape[1] != layout.columns:
        raise DataError(
            f"{path}: rows have {table.shape[1]} cells but the first row {layout.columns}"
        )
    labels = None if layout.label_column is None else table[:, layout.label_column]
    return table[:, keep], labels


def _check_row_lengths(path: Path, layout: CsvLayout) -> None:
    """DataError naming the first row with another number of cells than the first row
    (cells counted by their delimiters; a row with quotes is left to NumPy)."""
    with open_csv(path) as handle:
        for number, line in enumerate(handle, start=1):
            if number < layout.first_data_line or not line.strip() or '"' in line:
                continue
            cells = line.count(layout.delimiter) + 1
            if cells != layout.columns:
                raise DataError(
                    f"{path}: line {number} has {cells} cells but the rows before it "
                    f"{layout.columns}"
                )


class _NamedLabels(Exception):
    """The label column holds a cell that is not a whole number: names, read apart."""


def _loadtxt(
    path: Path, layout: CsvLayout, dtype: Any, columns: list[int] | None = None
) -> np.ndarray:
    """np.loadtxt of ``columns`` (all by default) as ``dtype``, (n, columns); DataError
    naming the line for a bad cell, _NamedLabels for a label that is not a number."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "no data": reported below
            table = np.loadtxt(
                path,
                delimiter=layout.delimiter,
                skiprows=1 if layout.header else 0,
                dtype=dtype,
                ndmin=2,
                encoding="utf-8-sig",
                quotechar='"',
                usecols=columns,
            )
    except ValueError as exc:
        if columns is None and _label_cell(str(exc), layout):
            raise _NamedLabels from None
        raise DataError(f"{path}: {_where(str(exc), layout)}") from None
    except (OSError, UnicodeDecodeError, *_GZIP_ERRORS) as exc:
        raise DataError(f"{path}: cannot read CSV: {exc}") from None
    if table.shape[0] == 0:
        raise DataError(f"{path}: no rows")
    return table


def _fraction_of_one(cell: str) -> bool:
    """Whether a cell is a number between 0 and 1 (a pixel already scaled)."""
    try:
        return 0 < float(cell) < 1
    except ValueError:
        return False


_NOT_CONVERTED = re.compile(r"could not convert string '(.*)' to \w+ at row (\d+), column (\d+)")


def _label_cell(message: str, layout: CsvLayout) -> bool:
    """Whether NumPy's loadtxt error (of all the columns) is about a cell of the label column."""
    bad = _NOT_CONVERTED.search(message.splitlines()[0])
    return bool(bad) and int(bad.group(3)) - 1 == layout.label_column


def _where(message: str, layout: CsvLayout) -> str:
    """NumPy's loadtxt error in the file's own line numbers (its columns are the file's,
    from 1, also when only some were read)."""
    first = message.splitlines()[0]
    bad = _NOT_CONVERTED.search(first)
    if bad:  # rows counted from 0 after the header
        cell, row, column = bad.group(1), int(bad.group(2)), int(bad.group(3))
        what = "label" if column - 1 == layout.label_column else "pixel"
        scaled = what == "pixel" and _fraction_of_one(cell)
        return (
            f"line {row + layout.first_data_line}, column {column}: {what} '{cell}' is not a "
            "whole number"
            + (" (pixels are 0..255 as stored; scaled to 0..1? multiply by 255)" if scaled else "")
        )
    changed = re.search(r"number of columns changed from (\d+) to (\d+) at row (\d+)", first)
    if changed:  # rows counted from 1 after the header
        before, after, row = (int(g) for g in changed.groups())
        return (
            f"line {row + layout.first_data_line - 1} has {after} cells but the rows before "
            f"it {before}"
        )
    return first


@dataclass(frozen=True)
class PixelTable:
    """A pixel CSV, read: images uint8 (n, h, w, c); labels (n,) as written in the file,
    int64 numbers or str names (None without a label column); its layout."""

    images: np.ndarray
    labels: np.ndarray | None
    layout: CsvLayout


def read_pixel_csv(
    path: Path,
    labeled: bool | None = True,
    image_shape: tuple[int, ...] | None = None,
    size: tuple[int, ...] = (),
    color: str = "auto",
) -> PixelTable:
    """Read a pixel CSV (see the module's docstring for the layouts).

    labeled: as for :func:`read_layout`. image_shape: (h, w, c) the rows must make (a trained
    model's input), or None to read them as ``size`` and ``color`` say
    (:func:`image_shape_for`: square images from the column count when they say nothing)."""
    pixels = math.prod(image_shape) if image_shape else None
    layout = read_layout(path, labeled, pixels, size, color)
    values, labels = _load_table(path, layout)
    if values.min() < 0 or values.max() > 255:
        row = int(np.argwhere((values < 0) | (values > 255))[0][0])
        raise DataError(f"{path}: line {row + layout.first_data_line} has a pixel outside 0..255")
    shape = tuple(image_shape) if image_shape else layout.image_shape
    images = values.astype(np.uint8).reshape(-1, *shape)
    if labels is not None and labels.dtype.kind == "i" and labels.min() < 0:
        row = int(np.argmin(labels))
        raise DataError(
            f"{path}: line {row + layout.first_data_line} has a negative label {labels[row]}"
        )
    return PixelTable(images, labels, layout)


def rows_of(path: Path, table: PixelTable) -> np.ndarray:
    """Where each image of a pixel CSV is: "train.csv:12", its row from 1 after the header
    (as Kaggle's ImageId and ``predict``'s answers count), so that an image a report or
    ``label-issues`` names can be found in the file whatever split it landed in."""
    return np.asarray([f"{path.name}:{row}" for row in range(1, len(table.images) + 1)])


def paired_test_csv(path: Path) -> Path | None:
    """``*_test.csv`` beside a ``*_train.csv`` (``train`` -> ``test`` in the name's last
    place it occurs, keeping its case), when it is there; gzipped or not, whichever the
    training file is first."""
    stem = csv_stem(path)
    at = stem.lower().rfind("train")
    if at < 0:
        return None
    word = stem[at : at + 5]
    test = "TEST" if word.isupper() else "Test" if word[0].isupper() else "test"
    suffix = path.name[len(stem) :]  # ".csv", ".csv.gz", in the file's own case
    other = suffix[:-3] if suffix.lower().endswith(".gz") else suffix + ".gz"
    for ending in (suffix, other):
        beside = path.with_name(stem[:at] + test + stem[at + 5 :] + ending)
        if beside.is_file():
            return beside
    return None


def _labels_text(names: tuple[str, ...]) -> str:
    if not all(_WHOLE.match(name) for name in names):  # names: the first few
        more = ", ..." if len(names) > 6 else ""
        return f"{len(names)} classes (labels {', '.join(names[:6])}{more})"
    values = [int(name) for name in names]
    low, high = values[0], values[-1]
    text = f"{len(values)} classes (labels {low}..{high}"
    missing = sorted(set(range(low, high + 1)) - set(values))
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        text += f"; {shown} never occur" if len(missing) > 1 else f"; {shown} never occurs"
    return text + ")"


def _shape_text(shape: tuple[int, int, int]) -> str:
    return f"{shape[0]}x{shape[1]} {'RGB' if shape[2] == 3 else 'grayscale'}"


@dataclass(frozen=True)
class CsvDataset:
    """A labelled pixel CSV as reader output.

    arrays: x_train, y_train, files_train (:func:`rows_of`) and, when a labelled
    ``*_test.csv`` is beside a ``*_train.csv``, x_test, y_test, files_test; y_* int64
    class indices 0..K-1 into ``class_names``
    (the label values as text). summary: what was read, in words. test_split: where the test
    images came from, or None when the file has no test split of its own."""

    arrays: dict[str, np.ndarray]
    class_names: tuple[str, ...]
    summary: str
    test_split: str | None


def load_csv_dataset(path: Path, size: tuple[int, ...] = (), color: str = "auto") -> CsvDataset:
    """Read a labelled pixel CSV, and the labelled ``*_test.csv`` beside it, if any; size and
    color: ``data.image_size`` and ``data.color`` (:func:`image_shape_for`)."""
    train = read_pixel_csv(path, labeled=True, size=size, color=color)
    assert train.labels is not None  # labeled=True: a label column or an error
    arrays = {"x_train": train.images, "y_train": train.labels, "files_train": rows_of(path, train)}
    beside = paired_test_csv(path)
    test = None
    if beside is not None:
        test = read_pixel_csv(beside, labeled=None, image_shape=train.layout.image_shape)
        if test.labels is not None:
            arrays["x_test"], arrays["y_test"] = test.images, test.labels
            arrays["files_test"] = rows_of(beside, test)
    if "y_test" in arrays and (arrays["y_train"].dtype.kind == "U") != (
        arrays["y_test"].dtype.kind == "U"
    ):
        raise DataError(
            f"{path}: its labels and those of {beside} beside it must both be numbers, or "
            "both names"
        )
    names = numbered_classes(arrays, path.name, str(beside))
    summary = (
        f"{len(train.images)} images {_shape_text(train.layout.image_shape)}, "
        f"{train.layout.label_text()}, {_labels_text(names)}"
    )
    test_split = None
    if test is not None and test.labels is None:
        summary += f"; {beside.name} beside it has no labels (for predict), so not a test split"
    elif test is not None:
        test_split = f"{beside.name}, beside {path.name}"
        summary += f"; test split: {len(test.images)} images from {beside.name} beside it"
    return CsvDataset(arrays, names, summary, test_split)
