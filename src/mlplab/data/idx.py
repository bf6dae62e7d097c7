"""IDX files (the MNIST format): ``train-images-idx3-ubyte[.gz]`` and friends."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from mlplab.data.fetch import gunzipped, take_verified_content
from mlplab.errors import DataError

# Largest file we decompress: the biggest IDX set we know (EMNIST) is well under this.
MAX_BYTES = 1 << 31
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped if it ends in .gz; errors name the file."""
    verified = take_verified_content(path)
    if verified is not None:
        return verified
    try:
        if path.name.endswith(".gz"):
            pieces, size = [], 0
            for piece in gunzipped(path):
                pieces.append(piece)
                size += len(piece)
                if size > MAX_BYTES:
                    break
            data = b"".join(pieces)
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if len(data) > MAX_BYTES:
        raise DataError(f"{path}: larger than {MAX_BYTES} bytes decompressed; refused")
    return data


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """IDX bytes -> uint8 array with the dimensions the header declares.

    Only unsigned-byte IDX (type code 0x08) is accepted: that is what image and label
    files hold. Raises DataError on a wrong magic number or a size that does not match.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (wrong magic number)")
    if data[2] != 0x08:
        raise DataError(f"{name}: IDX type 0x{data[2]:02x} is not unsigned bytes (0x08)")
    ndim = data[3]
    if ndim not in (1, 3):
        raise DataError(f"{name}: IDX with {ndim} dimensions; expected 1 (labels) or 3 (images)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(data) - header
    if actual != expected:
        state = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(
            f"{name}: IDX {state}: header says {'x'.join(map(str, dims))} = {expected} bytes, "
            f"file has {actual}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def read_idx(path: Path) -> np.ndarray:
    return parse_idx(read_bytes(path), str(path))


def find_idx(folder: Path, stem: str) -> Path | None:
    """``stem`` or ``stem.gz`` in folder (also with MNIST's ``.idx3-ubyte`` spelling)."""
    variants = [stem, stem.replace("-idx", ".idx")]
    for variant in variants:
        for candidate in (folder / variant, folder / f"{variant}.gz"):
            if candidate.is_file():
                return candidate
    return None


def images_and_labels(
    images: np.ndarray, labels: np.ndarray, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Checks an (n, h, w) image array against its (n,) labels; returns (n, h, w, 1), int64."""
    if images.ndim != 3:
        raise DataError(f"{where}: image file must be 3-dimensional (n, h, w)")
    if labels.ndim != 1:
        raise DataError(f"{where}: label file must be 1-dimensional")
    if len(images) != len(labels):
        raise DataError(f"{where}: {len(images)} images but {len(labels)} labels")
    return images[..., None], labels.astype(np.int64)


def load_idx_arrays(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    """x_train, y_train, x_test, y_test from four IDX paths (test ones may be absent)."""
    out: dict[str, np.ndarray] = {}
    for part in ("train", "test"):
        if f"x_{part}" not in paths:
            continue
        x = read_idx(paths[f"x_{part}"])
        y = read_idx(paths[f"y_{part}"])
        out[f"x_{part}"], out[f"y_{part}"] = images_and_labels(x, y, str(paths[f"x_{part}"]))
    return out


def idx_folder_paths(folder: Path) -> dict[str, Path]:
    """The IDX files in a folder in MNIST naming; train files are required."""
    found = {key: find_idx(folder, stem) for key, stem in IDX_NAMES.items()}
    for key in ("x_train", "y_train"):
        if found[key] is None:
            raise DataError(f"{folder}: no {IDX_NAMES[key]}[.gz] in this folder")
    if (found["x_test"] is None) != (found["y_test"] is None):
        raise DataError(f"{folder}: test images and test labels must both be there, or neither")
    return {k: v for k, v in found.items() if v is not None}
