"""A folder of images with one sub-folder per class (optionally inside train/ and test/)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.data.images import (
    EXTENSIONS,
    decode_image,
    open_image,
    pillow_limits,
    resize,
    upright_size,
)
from mlplab.errors import DataError

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
# Without data.image_size, images are resized to the most common size scaled down so that
# its longer side is at most this. An MLP's first layer has a weight per input value: a
# folder of 1024x768 photos read at full size made a 604-million-parameter network that
# took all 24 GB of RAM for one epoch, and a phone's 12-megapixel photos would not fit.
# At 64 pixels an RGB image is 12,288 inputs (CIFAR-10's is 3,072).
MAX_DEFAULT_SIDE = 64


@dataclass
class FolderReport:
    """What was read: counts per split, and every file skipped with the reason."""

    read: Counter = field(default_factory=Counter)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    image_shape: tuple[int, int, int] = (0, 0, 0)
    # How the size was chosen when data.image_size did not say ("" when every image has it).
    size_note: str = ""

    def summary(self) -> str:
        height, width, channels = self.image_shape
        text = ", ".join(f"{n} {split} images" for split, n in sorted(self.read.items()))
        text += f" at {height}x{width}x{channels}"
        if self.size_note:
            text += f" ({self.size_note}; set data.image_size = [h, w] to choose)"
        if self.skipped:
            path, reason = self.skipped[0]
            text += f"; skipped {len(self.skipped)} (first: {path}: {reason})"
        return text


def _is_gray(img: Any) -> bool:
    if img.mode in GRAY_MODES or img.mode.startswith("I;16"):
        return True
    if img.mode == "P":
        palette = img.getpalette() or []
        triples = zip(palette[0::3], palette[1::3], palette[2::3], strict=False)
        return all(r == g == b for r, g, b in triples)
    return False


def _class_folders(root: Path) -> dict[str, list[Path]]:
    classes = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        classes[sub.name] = sorted(
            p for p in sub.rglob("*") if p.is_file() and not p.name.startswith(".")
        )
    return classes


def default_size(sizes: list[tuple[int, int]]) -> tuple[tuple[int, int], str]:
    """The (height, width) images of these upright (width, height) sizes are resized to
    when data.image_size does not say, and a note on how it was chosen ("" when all have it
    and it is small enough).

    The most common size when at least half the images have it, else the median width and
    height (a folder of photos from several cameras has no size worth copying from one of
    them); then scaled down, keeping its shape, to at most MAX_DEFAULT_SIDE on its longer side.
    """
    (width, height), count = Counter(sizes).most_common(1)[0]
    notes = []
    if count * 2 < len(sizes):
        width = round(float(np.median([w for w, _ in sizes])))
        height = round(float(np.median([h for _, h in sizes])))
        notes.append(f"they come in {len(set(sizes))} sizes: the median is {height}x{width}")
    elif count < len(sizes):
        notes.append(f"{count} of {len(sizes)} are {height}x{width}, the most common size")
    if max(height, width) > MAX_DEFAULT_SIDE:
        scale = MAX_DEFAULT_SIDE / max(height, width)
        shrunk = max(1, round(height * scale)), max(1, round(width * scale))
        if not notes:
            notes.append(f"they are {height}x{width}")
        notes.append(f"scaled down to at most {MAX_DEFAULT_SIDE} pixels a side")
        height, width = shrunk
    return (height, width), ", ".join(notes)


def scan(root: Path, min_classes: int = 2) -> dict[str, dict[str, list[Path]]]:
    """{"train": {class: files}[, "test": ...]} from root/<class>/ or root/{train,test}/<class>/
    (DataError with fewer than ``min_classes`` class folders)."""
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    if (root / "train").is_dir():
        splits = {"train": _class_folders(root / "train")}
        if (root / "test").is_dir():
            splits["test"] = _class_folders(root / "test")
    else:
        splits = {"train": _class_folders(root)}
    if len(splits["train"]) < min_classes:
        found = ", ".join(splits["train"]) or "none"
        least = "at least two classes" if min_classes > 1 else "at least one"
        raise DataError(f"{root}: needs one sub-folder per class and {least} (found: {found})")
    if "test" in splits and set(splits["test"]) - set(splits["train"]):
        extra = ", ".join(sorted(set(splits["test"]) - set(splits["train"])))
        raise DataError(f"{root}/test: classes not in train: {extra}")
    return splits


def load_image_folder(
    root: Path,
    image_size: tuple[int, ...] = (),
    color: str = "auto",
    strict: bool = False,
    min_classes: int = 2,
) -> tuple[dict[str, np.ndarray], tuple[str, ...], FolderReport]:
    """Read every image, resized to one (h, w) and converted to grayscale or RGB.

    image_size: (h, w), or () to use the most common size. color: grayscale, rgb, or auto
    (grayscale unless an image has colour). Files that are not images of an accepted format,
    or cannot be decoded, are skipped and reported — or raise DataError with ``strict``.
    Returns arrays (x_train, y_train, files_train[, x_test, y_test, files_test]; files: str
    (n,), each image's file), class names and the report.
    min_classes: fewer class folders is a DataError (1: images to evaluate a model on).
    """
    splits = scan(root, min_classes)
    return read_labelled_files(splits, root, image_size, color, strict, min_classes)


def read_labelled_files(
    splits: dict[str, dict[str, list[Path]]],
    root: Path,
    image_size: tuple[int, ...] = (),
    color: str = "auto",
    strict: bool = False,
    min_classes: int = 2,
) -> tuple[dict[str, np.ndarray], tuple[str, ...], FolderReport]:
    """:func:`load_image_folder` for files already sorted into classes:
    {"train": {class: files}[, "test": ...]}, the classes in train's order; ``root`` names
    them in errors."""
    class_names = tuple(splits["train"])
    report = FolderReport()
    headers: list[tuple[str, int, Path, Any]] = []
    with pillow_limits():
        for split, classes in splits.items():
            for label, name in enumerate(class_names):
                for path in classes.get(name, []):
                    try:
                        if not path.is_file():  # listed in a CSV, not there
                            raise DataError(f"{path}: no such image file")
                        if path.suffix.lower() not in EXTENSIONS:
                            accepted = ", ".join(EXTENSIONS)
                            raise DataError(f"{path}: not an image file (accepted: {accepted})")
                        with open_image(path) as img:
                            headers.append((split, label, path, (upright_size(img), _is_gray(img))))
                    except DataError as exc:
                        if strict:
                            raise
                        report.skipped.append((path, str(exc).split(": ", 1)[-1]))
        if not headers:
            raise DataError(f"{root}: no readable images")
        if image_size:
            height, width = image_size
        else:
            (height, width), report.size_note = default_size([size for *_, (size, _) in headers])
        if color == "auto":
            color = "grayscale" if all(gray for *_, (_, gray) in headers) else "rgb"
        channels = 1 if color == "grayscale" else 3
        arrays: dict[str, list] = {}
        for split, label, path, _ in headers:
            try:
                image = resize(decode_image(path, channels), height, width)
            except DataError as exc:
                if strict:
                    raise
                report.skipped.append((path, str(exc).split(": ", 1)[-1]))
                continue
            arrays.setdefault(f"x_{split}", []).append(image)
            arrays.setdefault(f"y_{split}", []).append(label)
            arrays.setdefault(f"files_{split}", []).append(str(path))
            report.read[split] += 1
    if "x_train" not in arrays:
        raise DataError(f"{root}: no readable training images")
    kinds = {"x": np.stack, "y": lambda v: np.asarray(v, np.int64), "files": np.asarray}
    out = {key: kinds[key.split("_")[0]](values) for key, values in arrays.items()}
    present = np.unique(out["y_train"])
    if len(present) < min_classes:
        raise DataError(f"{root}: images of only one class could be read; need at least two")
    report.image_shape = (height, width, channels)
    return out, class_names, report
