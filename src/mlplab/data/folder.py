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


@dataclass
class FolderReport:
    """What was read: counts per split, and every file skipped with the reason."""

    read: Counter = field(default_factory=Counter)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    image_shape: tuple[int, int, int] = (0, 0, 0)

    def summary(self) -> str:
        height, width, channels = self.image_shape
        text = ", ".join(f"{n} {split} images" for split, n in sorted(self.read.items()))
        text += f" at {height}x{width}x{channels}"
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
    class_names = tuple(splits["train"])
    report = FolderReport()
    headers: list[tuple[str, int, Path, Any]] = []
    with pillow_limits():
        for split, classes in splits.items():
            for label, name in enumerate(class_names):
                for path in classes.get(name, []):
                    try:
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
            (width, height), _ = Counter(size for *_, (size, _) in headers).most_common(1)[0]
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
