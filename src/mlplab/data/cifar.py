"""CIFAR-10 / CIFAR-100 "python version" batches, unpickled with a restricted unpickler.

The batches are pickles; a pickle can run any code when loaded. Only what the real files
contain may be built here: NumPy arrays and dtypes (plus the builtin containers and numbers
that pickle builds without asking). Anything else is refused with a DataError.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.errors import DataError

ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to build {module}.{name}")


def safe_unpickle(data: bytes, name: str) -> Any:
    """Unpickle CIFAR batch bytes; refuse anything that is not arrays, lists, dicts, numbers."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{name}: unsafe or invalid pickle: {exc}") from None
    except Exception as exc:  # a corrupt pickle raises many kinds; none may escape as a crash
        raise DataError(f"{name}: not a readable CIFAR batch: {type(exc).__name__}") from None


def _get(batch: Any, key: str, name: str) -> Any:
    if not isinstance(batch, dict):
        raise DataError(f"{name}: a CIFAR batch must be a dict")
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise DataError(f"{name}: CIFAR batch has no '{key}'")


def batch_arrays(batch: Any, label_key: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A batch dict -> images uint8 (n, 32, 32, 3) and labels int64 (n,).

    The stored rows are 3072 bytes: 1024 red, 1024 green, 1024 blue, each row-major 32x32.
    """
    data = np.asarray(_get(batch, "data", name))
    labels = np.asarray(_get(batch, label_key, name))
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise DataError(f"{name}: 'data' must be uint8 (n, 3072), got {data.dtype} {data.shape}")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{name}: {len(data)} images but labels of shape {labels.shape}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _names(meta: Any, key: str, name: str) -> tuple[str, ...]:
    values = _get(meta, key, name)
    if not isinstance(values, list):
        raise DataError(f"{name}: '{key}' must be a list of names")
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in values)


class _Source:
    """Reads members of a CIFAR folder or of its .tar.gz by base name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.members: dict[str, bytes] = {}
        if path.is_dir():
            self.folder = path
        else:
            self.folder = None
            try:
                with tarfile.open(path, "r:*") as tar:
                    for member in tar.getmembers():
                        if member.isfile():
                            handle = tar.extractfile(member)
                            if handle is not None:
                                self.members[Path(member.name).name] = handle.read()
            except Exception as exc:  # a damaged archive raises many kinds
                reason = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise DataError(f"{path}: not a readable tar archive: {reason}") from None

    def has(self, name: str) -> bool:
        if self.folder is not None:
            return (self.folder / name).is_file()
        return name in self.members

    def load(self, name: str) -> Any:
        label = f"{self.path}/{name}" if self.folder is None else str(self.folder / name)
        if self.folder is not None:
            try:
                data = (self.folder / name).read_bytes()
            except OSError as exc:
                raise DataError(f"{label}: cannot read: {exc}") from None
        elif name in self.members:
            data = self.members[name]
        else:
            raise DataError(f"{self.path}: no '{name}' in this archive")
        return safe_unpickle(data, label)


def is_cifar(path: Path) -> bool:
    """A cifar-10-batches-py / cifar-100-python folder."""
    if not path.is_dir():
        return False
    cifar100 = (path / "train").is_file() and (path / "meta").is_file()
    return (path / "data_batch_1").is_file() or cifar100


def load_cifar(path: Path, coarse: bool = False) -> dict[str, Any]:
    """x_train, y_train, x_test, y_test, class_names, kind from a CIFAR folder or tarball."""
    source = _Source(path)
    if source.has("data_batch_1"):
        xs, ys = [], []
        for batch_name in CIFAR10_TRAIN:
            if source.has(batch_name):
                x, y = batch_arrays(source.load(batch_name), "labels", batch_name)
                xs.append(x)
                ys.append(y)
        x_test, y_test = batch_arrays(source.load("test_batch"), "labels", "test_batch")
        names = _names(source.load("batches.meta"), "label_names", "batches.meta")
        kind = "cifar10"
        x_train, y_train = np.concatenate(xs), np.concatenate(ys)
    elif source.has("train") and source.has("meta"):
        label_key = "coarse_labels" if coarse else "fine_labels"
        x_train, y_train = batch_arrays(source.load("train"), label_key, "train")
        x_test, y_test = batch_arrays(source.load("test"), label_key, "test")
        names_key = "coarse_label_names" if coarse else "fine_label_names"
        names = _names(source.load("meta"), names_key, "meta")
        kind = "cifar100-coarse" if coarse else "cifar100"
    else:
        raise DataError(
            f"{path}: not a CIFAR python folder or archive (no data_batch_1, nor train + meta)"
        )
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
        "class_names": names,
        "kind": kind,
    }
