"""Named datasets: what each is, where its files come from, their pinned checksums.

Checksums are SHA-256 of the files as published (torchvision, Keras and TFDS agree on them);
for the MNIST-format sets also of the decompressed IDX content, so a re-compressed copy (as
Debian ships Fashion-MNIST) is verified by what is inside it.
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.data.dataset import Dataset, file_names
from mlplab.data.fetch import RemoteFile, cache_dir, ensure, is_offline, locate
from mlplab.data.split import stratified_split
from mlplab.errors import DataError

# Datasets without their own test split get this fixed, stratified one: the same for every
# run, so test accuracies of different runs compare.
TEST_FRACTION = 0.2
TEST_SPLIT_SEED = 0

Arrays = dict[str, Any]
Reader = Callable[[dict[str, Path]], Arrays]


@dataclass(frozen=True)
class Variant:
    """One set of files a dataset can be read from, and how to read them."""

    files: tuple[RemoteFile, ...]
    read: Reader


@dataclass(frozen=True)
class CatalogEntry:
    """A named dataset. The first variant is downloaded when no variant is found locally."""

    name: str
    summary: str
    image_shape: tuple[int, int, int]
    num_classes: int
    sizes: tuple[int, int]
    homepage: str
    license: str
    variants: tuple[Variant, ...] = ()
    class_names: tuple[str, ...] = ()


def keras_datasets_dir() -> Path:
    """Keras' download cache: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


DEBIAN_DATASETS = Path("/usr/share/datasets")


def _in_keras(*parts: str) -> Callable[[], Path]:
    return lambda: keras_datasets_dir().joinpath(*parts)


def _in_debian(*parts: str) -> Callable[[], Path]:
    return lambda: DEBIAN_DATASETS.joinpath(*parts)


def _idx_files(
    base_urls: tuple[str, ...],
    hashes: dict[str, tuple[str, str]],
    elsewhere: Callable[[str], tuple[Callable[[], Path], ...]] = lambda name: (),
) -> tuple[RemoteFile, ...]:
    files = []
    for stem, (archive, raw) in hashes.items():
        name = f"{stem}.gz"
        urls = tuple(base + name for base in base_urls)
        files.append(RemoteFile(name, archive, urls, raw, elsewhere(name)))
    return tuple(files)


def _read_idx(paths: dict[str, Path]) -> Arrays:
    from mlplab.data.idx import IDX_NAMES, load_idx_arrays

    by_key = {key: paths[f"{stem}.gz"] for key, stem in IDX_NAMES.items()}
    return load_idx_arrays(by_key)


def _read_keras_mnist(paths: dict[str, Path]) -> Arrays:
    from mlplab.data.tabular import read_npz

    return read_npz(paths["mnist.npz"])


def _cifar_reader(coarse: bool) -> Reader:
    def read(paths: dict[str, Path]) -> Arrays:
        from mlplab.data.cifar import load_cifar

        return load_cifar(next(iter(paths.values())), coarse=coarse)

    return read


MNIST_HASHES = {
    "train-images-idx3-ubyte": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train-labels-idx1-ubyte": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "t10k-images-idx3-ubyte": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "t10k-labels-idx1-ubyte": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}
FASHION_HASHES = {
    "train-images-idx3-ubyte": (
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels-idx1-ubyte": (
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "t10k-images-idx3-ubyte": (
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "t10k-labels-idx1-ubyte": (
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}
# KMNIST: archive SHA-256 as pinned by torchvision-ruby's KMNIST dataset (MD5s as in
# torchvision); the decompressed content has no published hash we could confirm.
KMNIST_HASHES = {
    "train-images-idx3-ubyte": (
        "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
        "",
    ),
    "train-labels-idx1-ubyte": (
        "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
        "",
    ),
    "t10k-images-idx3-ubyte": (
        "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
        "",
    ),
    "t10k-labels-idx1-ubyte": (
        "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        "",
    ),
}
CIFAR10_FILE = RemoteFile(
    "cifar-10-python.tar.gz",
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    elsewhere=(_in_keras("cifar-10-batches-py.tar.gz"),),
)
CIFAR100_FILE = RemoteFile(
    "cifar-100-python.tar.gz",
    "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
    elsewhere=(_in_keras("cifar-100-python.tar.gz"),),
)
KERAS_MNIST = RemoteFile(
    "mnist.npz",
    "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",),
    elsewhere=(_in_keras("mnist.npz"),),
)
KERAS_MIRROR = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
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
)

CATALOG: dict[str, CatalogEntry] = {
    "digits": CatalogEntry(
        "digits",
        "8x8 handwritten digits bundled with scikit-learn (no download)",
        (8, 8, 1),
        10,
        (1437, 360),
        "https://archive.ics.uci.edu/dataset/80",
        "CC BY 4.0; Alpaydin & Kaynak, UCI optical recognition of handwritten digits",
        class_names=tuple("0123456789"),
    ),
    "mnist": CatalogEntry(
        "mnist",
        "28x28 handwritten digits",
        (28, 28, 1),
        10,
        (60000, 10000),
        "http://yann.lecun.com/exdb/mnist/",
        "CC BY-SA 3.0; LeCun, Cortes & Burges, The MNIST database",
        variants=(
            Variant(
                _idx_files(
                    (
                        "https://ossci-datasets.s3.amazonaws.com/mnist/",
                        "http://yann.lecun.com/exdb/mnist/",
                    ),
                    MNIST_HASHES,
                ),
                _read_idx,
            ),
            Variant((KERAS_MNIST,), _read_keras_mnist),
        ),
        class_names=tuple("0123456789"),
    ),
    "fashion-mnist": CatalogEntry(
        "fashion-mnist",
        "28x28 Zalando clothing images",
        (28, 28, 1),
        10,
        (60000, 10000),
        "https://github.com/zalandoresearch/fashion-mnist",
        "MIT; Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747",
        variants=(
            Variant(
                _idx_files(
                    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", KERAS_MIRROR),
                    FASHION_HASHES,
                    lambda name: (
                        _in_debian("fashion-mnist", name),
                        _in_keras("fashion-mnist", name),
                    ),
                ),
                _read_idx,
            ),
        ),
        class_names=FASHION_CLASSES,
    ),
    "kmnist": CatalogEntry(
        "kmnist",
        "28x28 Kuzushiji (cursive Japanese) characters",
        (28, 28, 1),
        10,
        (60000, 10000),
        "https://github.com/rois-codh/kmnist",
        "CC BY-SA 4.0; Clanuwat et al. 2018, arXiv:1812.01718 (KMNIST by CODH)",
        variants=(
            Variant(
                _idx_files(("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",), KMNIST_HASHES),
                _read_idx,
            ),
        ),
        class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    ),
    "cifar10": CatalogEntry(
        "cifar10",
        "32x32 colour photos, 10 classes",
        (32, 32, 3),
        10,
        (50000, 10000),
        "https://www.cs.toronto.edu/~kriz/cifar.html",
        "Krizhevsky 2009, Learning Multiple Layers of Features from Tiny Images",
        variants=(Variant((CIFAR10_FILE,), _cifar_reader(coarse=False)),),
        class_names=CIFAR10_CLASSES,
    ),
    "cifar100": CatalogEntry(
        "cifar100",
        "32x32 colour photos, 100 fine classes",
        (32, 32, 3),
        100,
        (50000, 10000),
        "https://www.cs.toronto.edu/~kriz/cifar.html",
        "Krizhevsky 2009, Learning Multiple Layers of Features from Tiny Images",
        variants=(Variant((CIFAR100_FILE,), _cifar_reader(coarse=False)),),
    ),
    "cifar100-coarse": CatalogEntry(
        "cifar100-coarse",
        "CIFAR-100 with its 20 coarse superclasses",
        (32, 32, 3),
        20,
        (50000, 10000),
        "https://www.cs.toronto.edu/~kriz/cifar.html",
        "Krizhevsky 2009, Learning Multiple Layers of Features from Tiny Images",
        variants=(Variant((CIFAR100_FILE,), _cifar_reader(coarse=True)),),
    ),
}


def dataset_names() -> list[str]:
    return list(CATALOG)


def entry(name: str, key: str | None = None) -> CatalogEntry:
    """The catalog entry for ``name``; DataError with a suggestion if there is none, naming
    the config key that gave the name (``key``: "data.dataset"), if one did."""
    found = CATALOG.get(name)
    if found is None:
        close = difflib.get_close_matches(name, CATALOG, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        where = f'{key} = "{name}": unknown dataset' if key else f'unknown dataset "{name}"'
        raise DataError(
            f"{where}{hint}; known: {', '.join(CATALOG)}; "
            "or give a path (IDX or CIFAR folder, .csv, .npz, image folder)"
        )
    return found


def local_variant(item: CatalogEntry) -> tuple[Variant, dict[str, Path]] | None:
    """The first variant whose files are all here and verified, with their paths."""
    for variant in item.variants:
        paths = {}
        for remote in variant.files:
            path = locate(item.name, remote)
            if path is None:
                break
            paths[remote.name] = path
        else:
            return variant, paths
    return None


def fetch(name: str, offline: bool | None = None, progress: bool = True) -> dict[str, Path]:
    """Verified local paths of a named dataset's files, downloading what is missing."""
    item = entry(name)
    if not item.variants:
        return {}
    return _resolve(item, offline, progress)[1]


def _resolve(
    item: CatalogEntry, offline: bool | None, progress: bool
) -> tuple[Variant, dict[str, Path]]:
    """The variant to read and its verified paths: a local one, else the first, fetched."""
    found = local_variant(item)
    if found is not None:
        return found
    if is_offline(offline):
        looked = []
        for variant in item.variants:
            for remote in variant.files:
                places = [cache_dir() / item.name / remote.name]
                places += [locate_copy() for locate_copy in remote.elsewhere]
                looked.append(f"{remote.name} in {', '.join(str(p) for p in places)}")
        raise DataError(
            f"{item.name} is not available offline (looked for {'; '.join(looked)}); run "
            f"`mlplab datasets fetch {item.name}` with network access"
        )
    variant = item.variants[0]
    paths = {remote.name: ensure(item.name, remote, offline, progress) for remote in variant.files}
    return variant, paths


def digits_file() -> Path | None:
    """scikit-learn's ``datasets/data/digits.csv.gz``, found without importing scikit-learn
    (its ``datasets`` package takes ~1.5 s to import; the file is read in ~20 ms)."""
    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def _load_digits() -> Arrays:
    """scikit-learn's bundled 8x8 digits (1,797 images), pixels rescaled from 0..16 to 0..255.

    Read as ``sklearn.datasets.load_digits`` reads it (rows of 64 pixels and the label);
    through that function if the file is not where scikit-learn keeps it."""
    path = digits_file()
    if path is not None:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            rows = np.loadtxt(handle, delimiter=",")
        pixels, labels = rows[:, :-1].reshape(-1, 8, 8), rows[:, -1]
    else:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        pixels, labels = bunch.images, bunch.target
    images = np.rint(pixels * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return {"x_train": images, "y_train": labels.astype(np.int64)}


def from_arrays(
    name: str,
    arrays: Arrays,
    class_names: tuple[str, ...],
    source: str,
    test_split: str = "official",
) -> Dataset:
    """A Dataset from reader output; makes the fixed stratified test split if there is none.

    test_split: what the reader's own test images are, in words."""
    if len(arrays["y_train"]) == 0:
        raise DataError(f"{name}: the dataset is empty")
    files = arrays.get("files_train")
    if "x_test" in arrays:
        return Dataset(
            name,
            arrays["x_train"],
            arrays["y_train"],
            arrays["x_test"],
            arrays["y_test"],
            class_names,
            source,
            test_split=test_split,
            files_train=file_names(files),
            files_test=file_names(arrays.get("files_test")),
        )
    try:
        keep, held = stratified_split(arrays["y_train"], TEST_FRACTION, TEST_SPLIT_SEED)
    except DataError as exc:
        raise DataError(f"{name}: no test split of its own, and {exc} as one") from None
    x, y = arrays["x_train"], arrays["y_train"]
    return Dataset(
        name,
        x[keep],
        y[keep],
        x[held],
        y[held],
        class_names,
        source,
        test_split=f"stratified {TEST_FRACTION:g} of all images, seed {TEST_SPLIT_SEED} "
        "(the dataset has no test split of its own)",
        files_train=file_names(None if files is None else files[keep]),
        files_test=file_names(None if files is None else files[held]),
    )


def load_named(
    name: str, offline: bool | None = None, progress: bool = True, key: str | None = None
) -> Dataset:
    """Read a named dataset: verified local copies first, else downloaded (not offline).
    key: the config key that names it, for the message when there is no such dataset."""
    item = entry(name, key)
    if not item.variants:
        arrays = _load_digits()
        source = "scikit-learn load_digits (bundled)"
    else:
        variant, paths = _resolve(item, offline, progress)
        arrays = variant.read(paths)
        source = ", ".join(str(p) for p in paths.values())
    names = item.class_names or tuple(arrays.get("class_names", ()))
    return from_arrays(name, arrays, names, source)
