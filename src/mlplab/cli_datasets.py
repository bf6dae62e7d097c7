"""``mlplab datasets list|info|fetch|verify|show``: the command's printing, over mlplab.data."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mlplab.config import AugmentConfig
from mlplab.data import load_dataset
from mlplab.data.catalog import CATALOG, entry, fetch, local_variant
from mlplab.data.fetch import cache_dir, verify_cached
from mlplab.errors import DataError


def where_is(name: str) -> str:
    """A catalog dataset's place on this machine: "bundled", "here: FOLDER" or "not here"."""
    item = CATALOG[name]
    if not item.variants:
        return "bundled"
    found = local_variant(item)
    if found is None:
        return "not here"
    folders = sorted({str(path.parent) for path in found[1].values()})
    return "here: " + ", ".join(folders)


def cmd_list(args: argparse.Namespace) -> int:
    width = max(len(name) for name in CATALOG)
    print(f"{'name':<{width}}  {'shape':<9}  {'classes':>7}  {'train/test':<12}  where")
    for name, item in CATALOG.items():
        shape = "x".join(map(str, item.image_shape))
        sizes = f"{item.sizes[0]}/{item.sizes[1]}"
        print(f"{name:<{width}}  {shape:<9}  {item.num_classes:>7}  {sizes:<12}  {where_is(name)}")
    print(f"\ncache: {cache_dir()} (set MLPLAB_DATA to move it)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    name = args.name
    if name in CATALOG:
        item = entry(name)
        print(f"{item.name}: {item.summary}")
        print(f"  source:  {item.homepage}")
        print(f"  license: {item.license}")
        print(f"  where:   {where_is(name)}")
        if item.variants and local_variant(item) is None:
            print(f"  (not here: `mlplab datasets fetch {name}` downloads and verifies it)")
            return 0
    # A path says how it was read (a CSV's columns, a folder's size) on stderr first.
    dataset = load_dataset(name, offline=args.offline, verbose=name not in CATALOG)
    h, w, c = dataset.image_shape
    print(
        f"{dataset.name}: {h}x{w}x{c} images, {dataset.num_classes} classes, "
        f"{len(dataset.y_train)} train / {len(dataset.y_test)} test"
    )
    print(f"  test split: {dataset.test_split}")
    train_counts = np.bincount(dataset.y_train, minlength=dataset.num_classes)
    test_counts = np.bincount(dataset.y_test, minlength=dataset.num_classes)
    width = max(len("class"), *(len(n) for n in dataset.class_names))
    print(f"  {'class':<{width}}  {'train':>6}  {'test':>6}")
    for label, class_name in enumerate(dataset.class_names):
        print(f"  {class_name:<{width}}  {train_counts[label]:>6}  {test_counts[label]:>6}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    for name in args.names:
        paths = fetch(name, offline=False, progress=True)
        where = ", ".join(str(p) for p in paths.values()) or "bundled with scikit-learn"
        print(f"{name}: verified: {where}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    names = args.names or [name for name, item in CATALOG.items() if item.variants]
    corrupt = 0
    for name in names:
        item = entry(name)
        for variant in item.variants:
            for file_name, status in verify_cached(name, variant.files):
                corrupt += status.startswith("corrupt")
                print(f"{name:<16} {file_name:<28} {status}")
    if corrupt:
        raise DataError(
            f"{corrupt} file(s) failed verification; `mlplab datasets fetch` downloads them again"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from mlplab._io import write_named_file
    from mlplab.report.mosaic import samples_png

    if args.per_class < 1:
        raise DataError(f"--per-class {args.per_class}: must be at least 1")
    augment = AugmentConfig(translate=args.translate, flip=args.flip, rotate=args.rotate)
    dataset = load_dataset(args.name, offline=args.offline)
    kind = "augmented" if augment.active else "samples"
    out = Path(args.out or f"{dataset.name}-{kind}.png")
    if out.suffix.lower() != ".png":
        raise DataError(f"{out}: the picture is written as PNG; give a .png file name")
    if augment.active:
        from mlplab.report.build import augmented_sample_png

        data = augmented_sample_png(
            dataset.x_train, dataset.y_train, dataset.class_names, augment, dataset.name
        )
        if data is None:
            raise DataError("--translate/--flip/--rotate draw with JAX's augmentation: install jax")
    else:
        title = f"{dataset.name}: {args.per_class} training samples per class"
        data = samples_png(
            dataset.x_train, dataset.y_train, dataset.class_names, title, args.per_class
        )
    write_named_file(out, data)
    print(f"wrote {out}")
    return 0


ACTIONS = {
    "list": cmd_list,
    "info": cmd_info,
    "fetch": cmd_fetch,
    "verify": cmd_verify,
    "show": cmd_show,
}


def run(args: argparse.Namespace) -> int:
    return ACTIONS[args.action](args)
