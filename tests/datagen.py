"""Small datasets in every on-disk form mlplab reads, written by the tests themselves."""

from __future__ import annotations

import gzip
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def idx_bytes(array: np.ndarray) -> bytes:
    """uint8 array (1 or 3 dimensions) -> IDX bytes (type 0x08)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def toy_images(n: int, classes: int, size: int = 8, channels: int = 1, seed: int = 0):
    """Learnable toy images: class k lights up a band of rows. Returns uint8 (n,s,s,c), labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 40, (n, size, size, channels), dtype=np.uint8)
    band = max(1, size // classes)
    for i, label in enumerate(labels):
        start = (label * band) % size
        images[i, start : start + band] = 220
    return images, labels.astype(np.int64)


def write_idx_folder(folder: Path, gz: bool = True, test: bool = True) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    x, y = toy_images(60, 3, size=6)
    xt, yt = toy_images(30, 3, size=6, seed=1)
    parts = {"train-images-idx3-ubyte": x[..., 0], "train-labels-idx1-ubyte": y}
    if test:
        parts |= {"t10k-images-idx3-ubyte": xt[..., 0], "t10k-labels-idx1-ubyte": yt}
    for stem, array in parts.items():
        data = idx_bytes(array.astype(np.uint8))
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt}


def write_cifar10_folder(folder: Path) -> dict:
    """cifar-10-batches-py layout with tiny batches; rows stored channel-major like the real one."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = toy_images(50, 10, size=32, channels=3)
    xt, yt = toy_images(20, 10, size=32, channels=3, seed=1)

    def batch(images, labels):
        rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
        return {b"data": rows, b"labels": labels.tolist(), b"batch_label": b"x"}

    for i in range(5):
        part = slice(10 * i, 10 * (i + 1))
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch(x[part], y[part]), 4))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(xt, yt), 4))
    names = [
        n.encode()
        for n in (
            [
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ]
        )
    ]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, 4))
    return {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt}


def tar_folder(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


def write_kaggle_csv(path: Path, labeled: bool = True, rows: int = 40) -> dict:
    x, y = toy_images(rows, 4, size=4)
    flat = x.reshape(rows, -1)
    header = (["label"] if labeled else []) + [f"pixel{i}" for i in range(flat.shape[1])]
    lines = [",".join(header)]
    for label, pixels in zip(y, flat, strict=True):
        cells = ([str(label)] if labeled else []) + [str(v) for v in pixels]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return {"x": x, "y": y}


def write_image_folder(
    root: Path, classes=("cat", "dog"), per_class: int = 6, mode: str = "L", size=(12, 10)
) -> None:
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.full((size[1], size[0]), 30 + 150 * label, np.uint8)
            pixels[i % size[1]] = 255
            image = Image.fromarray(pixels, "L").convert(mode)
            image.save(root / name / f"{i}.png")


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header declares width x height pixels."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def photo_of(image: np.ndarray, rng: np.random.Generator, path: Path) -> Path:
    """A JPEG "phone photo" of ``image`` (uint8 (h, w), bright strokes on black) drawn dark on
    paper: enlarged, off-centre on a larger sheet, lit by a gradient, noisy and blurred."""
    from PIL import ImageFilter

    side = 96
    drawing = Image.fromarray(255 - image).resize((side, side), Image.Resampling.BICUBIC)
    sheet = np.ones((160, 160), np.float32)
    top, left = rng.integers(0, 160 - side, size=2)
    sheet[top : top + side, left : left + side] = 0.2 + 0.8 * np.asarray(drawing) / 255.0
    y, x = np.mgrid[0:160, 0:160] / 160.0
    light = 0.45 + 0.35 * x * (1 - 0.5 * y)  # paper from dim gray to light gray
    photo = light * sheet + rng.normal(0, 0.02, sheet.shape)
    gray = Image.fromarray(np.clip(photo * 255, 0, 255).astype(np.uint8))
    gray.filter(ImageFilter.GaussianBlur(1.0)).convert("RGB").save(path, quality=85)
    return path
