"""Every dataset form mlplab reads, round-tripped; every bad file refused with one line."""

import dataclasses
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mlplab
from mlplab import DataError
from mlplab.data import load_dataset
from mlplab.data.cifar import safe_unpickle
from mlplab.data.folder import MAX_DEFAULT_SIDE, default_size
from mlplab.data.idx import parse_idx
from mlplab.data.images import decode_image

from .datagen import (
    idx_bytes,
    png_declaring,
    tar_folder,
    toy_images,
    write_cifar10_folder,
    write_idx_folder,
    write_image_folder,
)


def assert_one_line(exc_info, *fragments):
    message = str(exc_info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# --- IDX ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_round_trips(tmp_path, gz):
    written = write_idx_folder(tmp_path / "set", gz=gz)
    data = load_dataset(str(tmp_path / "set"))
    np.testing.assert_array_equal(data.x_train, written["x_train"])
    np.testing.assert_array_equal(data.y_test, written["y_test"])
    assert data.class_names == ("0", "1", "2") and data.test_split == "official"


def test_idx_folder_without_test_gets_a_seeded_stratified_split(tmp_path):
    write_idx_folder(tmp_path / "set", test=False)
    data = load_dataset(str(tmp_path / "set"))
    assert len(data.y_train) + len(data.y_test) == 60 and len(data.y_test) == 12
    assert np.bincount(data.y_test).tolist() == [4, 4, 4]
    assert "no test split of its own" in data.test_split


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x08\x03\x00\x00", "wrong magic number"),
        (bytes([0, 0, 0x0D, 3]) + bytes(12), "is not unsigned bytes"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 2]), "truncated IDX header"),
        (idx_bytes(np.zeros((2, 3, 3), np.uint8))[:-1], "IDX truncated"),
        (idx_bytes(np.zeros((2, 3, 3), np.uint8)) + b"x", "trailing bytes"),
        (bytes([0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0]), "2 dimensions"),
    ],
)
def test_bad_idx_bytes(data, message):
    with pytest.raises(DataError) as caught:
        parse_idx(data, "f.idx")
    assert_one_line(caught, "f.idx", message)


def test_idx_image_and_label_counts_must_match(tmp_path):
    write_idx_folder(tmp_path / "set", gz=False)
    (tmp_path / "set" / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(59, np.uint8)))
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "set"))
    assert_one_line(caught, "60 images but 59 labels")


def test_idx_corrupt_gzip(tmp_path):
    write_idx_folder(tmp_path / "set")
    path = tmp_path / "set" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "set"))
    assert_one_line(caught, str(path), "cannot read")


# --- CIFAR -------------------------------------------------------------------------------


def test_cifar_folder_and_tarball_round_trip_exactly(tmp_path):
    written = write_cifar10_folder(tmp_path / "cifar-10-batches-py")
    for spec in (
        tmp_path / "cifar-10-batches-py",
        tar_folder(tmp_path / "cifar-10-batches-py", tmp_path / "c.tar.gz"),
    ):
        data = load_dataset(str(spec))
        np.testing.assert_array_equal(data.x_train, written["x_train"])
        np.testing.assert_array_equal(data.y_train, written["y_train"])
        np.testing.assert_array_equal(data.x_test, written["x_test"])
        assert data.class_names[0] == "airplane" and data.image_shape == (32, 32, 3)


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_hostile_cifar_pickle_is_refused_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cifar10_folder(tmp_path / "cifar")
    (tmp_path / "cifar" / "test_batch").write_bytes(pickle.dumps({b"data": Exploit()}, 4))
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "cifar"))
    assert_one_line(caught, "test_batch", "unsafe or invalid pickle", "refused to build")
    assert not (tmp_path / "pwned-by-pickle").exists()


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({b"labels": [1]}, "has no 'data'"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "2 images but labels"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}, "must be uint8 (n, 3072)"),
        ([1, 2, 3], "must be a dict"),
    ],
)
def test_malformed_cifar_batches(tmp_path, batch, message):
    write_cifar10_folder(tmp_path / "cifar")
    (tmp_path / "cifar" / "test_batch").write_bytes(pickle.dumps(batch, 4))
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "cifar"))
    assert_one_line(caught, message)


def test_a_zip_says_to_unzip_it_and_what_to_give(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "digit-recognizer.zip", "w") as archive:
        for name in ("train.csv", "test.csv", "sample_submission.csv"):
            archive.writestr(name, "label,pixel0\n")
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "digit-recognizer.zip"))
    inside = tmp_path / "digit-recognizer"
    assert_one_line(caught, "unzip digit-recognizer.zip -d digit-recognizer", f"{inside}/train.csv")
    (tmp_path / "broken.zip").write_bytes(b"junk")
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "broken.zip"))
    assert_one_line(caught, "broken.zip: not a readable .zip")


def test_not_a_tarball(tmp_path):
    path = tmp_path / "fake.tar.gz"
    path.write_bytes(b"nope")
    with pytest.raises(DataError) as caught:
        load_dataset(str(path))
    assert_one_line(caught, "not a readable tar archive")


# --- npz ---------------------------------------------------------------------------------


def test_npz_round_trips(tmp_path):
    x, y = toy_images(30, 3)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x[..., 0], y_train=y, x_test=x[:6], y_test=y[:6])
    data = load_dataset(str(path))
    np.testing.assert_array_equal(data.x_train, x)
    assert data.name == "d" and data.class_names == ("0", "1", "2")


def test_npz_images_are_named_by_their_entry(tmp_path):
    x, y = toy_images(30, 3)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    data = load_dataset(str(tmp_path / "d.npz"))
    entries = [int(name.removeprefix("d.npz:x_train[")[:-1]) for name in data.files_test]
    np.testing.assert_array_equal(data.x_test, x[entries])


def test_npz_labels_with_a_gap_are_the_classes_that_occur(tmp_path):
    x, y = toy_images(30, 3)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=y * 5, x_test=x[:6], y_test=y[:6] * 5)
    data = load_dataset(str(path))
    assert data.class_names == ("0", "5", "10")
    np.testing.assert_array_equal(data.y_train, y)
    np.testing.assert_array_equal(data.y_test, y[:6])
    np.savez(path, x_train=x, y_train=y * 5, x_test=x[:2], y_test=np.array([5, 7]))
    with pytest.raises(DataError) as caught:
        load_dataset(str(path))
    assert_one_line(caught, "d.npz: y_test: label 7 never occurs in", "d.npz: y_train")
    np.savez(path, x_train=x, y_train=y - 1)
    with pytest.raises(DataError) as caught:
        load_dataset(str(path))
    assert_one_line(caught, "y_train: negative label -1")


def test_npz_class_names_name_the_labels(tmp_path):
    x, y = toy_images(30, 3)
    path = tmp_path / "pets.npz"
    names = np.array(["cat", "dog", "T-shirt/top"])
    np.savez(path, x_train=x, y_train=y, x_test=x[:6], y_test=y[:6], class_names=names)
    data = load_dataset(str(path))
    assert data.class_names == ("cat", "dog", "T-shirt/top")
    np.testing.assert_array_equal(data.y_train, y)
    np.savez(path, x_train=x, y_train=y, class_names=names.astype(bytes))  # bytes work too
    assert load_dataset(str(path)).class_names == ("cat", "dog", "T-shirt/top")
    run = mlplab.train(overrides={"data.dataset": str(path), "train.epochs": 1},
                       out=tmp_path / "runs", verbose=False, report=False)  # fmt: skip
    assert run.class_names == ["cat", "dog", "T-shirt/top"]


def test_npz_labels_may_be_names_or_whole_floats(tmp_path):
    x, y = toy_images(30, 3)
    names = np.array(["dog", "cat", "bird"])[y]  # sorted, the classes are bird, cat, dog
    path = tmp_path / "pets.npz"
    np.savez(path, x_train=x, y_train=names, x_test=x[:6], y_test=names[:6].astype(bytes))
    data = load_dataset(str(path))
    assert data.class_names == ("bird", "cat", "dog")
    np.testing.assert_array_equal(np.array(data.class_names)[data.y_train], names)
    np.testing.assert_array_equal(np.array(data.class_names)[data.y_test], names[:6])
    np.savez(path, x_train=x, y_train=y.astype(np.float64))  # a pandas column's floats
    assert load_dataset(str(path)).class_names == ("0", "1", "2")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"y_train": np.full(30, 0.5)}, "y_train must be labels (n,): whole numbers or names"),
        ({"y_train": np.zeros((30, 2), int)}, "got int64 [30, 2]"),
        ({"y_train": np.array(["a", ""] * 15)}, "y_train: an empty label"),
        (
            {"y_train": np.array(["a", "b"] * 15), "class_names": np.array(["a", "b"])},
            "y_train holds names already",
        ),
        (
            {"y_train": np.array(["a", "b"] * 15), "x_test": np.zeros((2, 4, 4)), "y_test": [0, 1]},
            "y_train and y_test must both be numbers, or both names",
        ),
        (
            {"y_train": np.array(["a", "b"] * 15), "x_test": np.zeros((1, 4, 4)), "y_test": ["c"]},
            "y_test: label 'c' never occurs in",
        ),
    ],
)
def test_bad_npz_labels(tmp_path, arrays, message):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((30, 4, 4), np.uint8), **arrays)
    with pytest.raises(DataError) as caught:
        load_dataset(str(path))
    assert_one_line(caught, message)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (np.array(["cat", "dog"]), "2 class_names for labels 0..2: give one name per label"),
        (np.array(["cat", "dog", "cat"]), "class_names must be distinct and not empty"),
        (np.array(["cat", " ", "dog"]), "class_names must be distinct and not empty"),
        (np.array([1, 2, 3]), "class_names must be a 1-D array of strings"),
        (np.array([["a", "b", "c"]]), "class_names must be a 1-D array of strings"),
    ],
)
def test_bad_npz_class_names(tmp_path, names, message):
    x, y = toy_images(30, 3)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=y, class_names=names)
    with pytest.raises(DataError) as caught:
        load_dataset(str(path))
    assert_one_line(caught, message)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": np.full((2, 3, 3), 0.5), "y_train": np.zeros(2, int)}, "whole numbers"),
        ({"x_train": np.zeros((2, 3, 3, 2)), "y_train": np.zeros(2, int)}, "(n, h, w, 1|3)"),
        ({"x_train": np.zeros((2, 3, 3), np.uint8)}, "no 'y_train'"),
        (
            {"x_train": np.zeros((2, 3, 3), np.uint8), "y_train": np.zeros(3, int)},
            "2 train images but 3 labels",
        ),
        ({"x_train": np.full((2, 3, 3), 300), "y_train": np.zeros(2, int)}, "0..255"),
        ({"x_train": np.array([object()] * 2), "y_train": np.zeros(2, int)}, "refused"),
        ({"x_train": np.zeros((0, 3, 3), np.uint8), "y_train": np.zeros(0, int)}, "empty"),
    ],
)
def test_bad_npz(tmp_path, arrays, message):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as caught:
        load_dataset(str(path))
    assert_one_line(caught, message)


# --- image folders -----------------------------------------------------------------------


def test_image_folder_reads_classes_and_infers_size_and_colour(tmp_path):
    write_image_folder(tmp_path / "pets")
    data = load_dataset(str(tmp_path / "pets"))
    assert data.class_names == ("cat", "dog") and data.image_shape == (10, 12, 1)
    assert len(data.y_train) + len(data.y_test) == 12
    rgb = load_dataset(str(tmp_path / "pets"), color="rgb", image_size=(5, 6))
    assert rgb.image_shape == (5, 6, 3)


def test_default_size_is_the_common_or_median_size_at_most_64_a_side():
    assert default_size([(12, 10)] * 4) == ((10, 12), "")  # sizes are (width, height)
    assert default_size([(28, 28)] * 5 + [(30, 30)]) == (
        (28, 28),
        "5 of 6 are 28x28, the most common size",
    )
    # No size that half of them share: the median width and height.
    (height, width), note = default_size([(20 + i, 30 + 2 * i) for i in range(9)])
    assert (height, width) == (38, 24) and note == "they come in 9 sizes: the median is 38x24"
    # Photos: scaled down, keeping their shape, so the network stays a sensible size.
    assert default_size([(1024, 768)] * 3) == (
        (48, 64),
        "they are 768x1024, scaled down to at most 64 pixels a side",
    )
    (height, width), _ = default_size([(3024, 4032)] * 3 + [(4032, 3024)] * 2)  # upright
    assert (height, width) == (64, 48) and max(height, width) == MAX_DEFAULT_SIDE
    assert default_size([(1000, 5)])[0] == (1, 64)  # never a side of 0


def test_an_image_folder_of_large_photos_is_read_small_and_says_so(tmp_path, capsys):
    write_image_folder(tmp_path / "photos", size=(200, 100), per_class=3)
    data = load_dataset(str(tmp_path / "photos"), verbose=True)
    assert data.image_shape == (32, 64, 1)
    message = capsys.readouterr().err
    assert "at 32x64x1 (they are 100x200, scaled down to at most 64 pixels a side; " in message
    assert "set data.image_size = [h, w] to choose)" in message
    # Asked for, any size is read as it is.
    assert load_dataset(str(tmp_path / "photos"), image_size=(100, 200)).image_shape[:2] == (
        100,
        200,
    )


def test_image_folder_with_train_and_test_inside(tmp_path):
    write_image_folder(tmp_path / "set" / "train", per_class=4)
    write_image_folder(tmp_path / "set" / "test", per_class=2, mode="RGB")
    data = load_dataset(str(tmp_path / "set"))
    assert (len(data.y_train), len(data.y_test)) == (8, 4) and data.test_split == "official"


def test_an_image_folder_knows_each_images_file(tmp_path):
    write_image_folder(tmp_path / "pets")
    (tmp_path / "pets" / "dog" / "notes.txt").write_text("skipped: not an image")

    def check(files, images, labels):
        assert len(files) == len(images)
        for name, image, label in zip(files, images, labels, strict=True):
            assert Path(name).parent.name == ("cat", "dog")[label]
            np.testing.assert_array_equal(decode_image(Path(name), 1), image)

    split = load_dataset(str(tmp_path / "pets"))  # 80/20: the files follow their images
    check(split.files_train, split.x_train, split.y_train)
    check(split.files_test, split.x_test, split.y_test)
    whole = load_dataset(str(tmp_path / "pets"), whole=True)
    assert whole.files_train == () and len(whole.files_test) == 12
    check(whole.files_test, whole.x_test, whole.y_test)
    digits = load_dataset("digits")
    assert digits.files_train == ()  # not read from files of their own
    with pytest.raises(DataError, match="1437 train images but 1 files"):
        dataclasses.replace(digits, files_train=("one.png",))


def test_bad_files_are_skipped_and_counted_or_refused_when_strict(tmp_path, capsys):
    write_image_folder(tmp_path / "pets")
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("hello")
    (tmp_path / "pets" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "pets" / "dog" / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    data = load_dataset(str(tmp_path / "pets"), verbose=True)
    assert len(data.y_train) + len(data.y_test) == 12
    assert "skipped 3" in capsys.readouterr().err
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "pets"), strict=True)
    assert_one_line(caught, "pets/")


def test_decompression_bomb_is_refused_from_its_header(tmp_path):
    write_image_folder(tmp_path / "pets")
    bomb = tmp_path / "pets" / "dog" / "bomb.png"
    bomb.write_bytes(png_declaring(100_000, 100_000))
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "pets"), strict=True)
    assert_one_line(caught, "bomb.png", "declares more than")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: (root / "only").mkdir(parents=True), "at least two classes"),
        (lambda root: root.mkdir(), "at least two classes (found: none)"),
        (lambda root: [(root / c).mkdir(parents=True) for c in "ab"], "no readable images"),
    ],
)
def test_bad_image_folders(tmp_path, setup, message):
    root = tmp_path / "imgs"
    setup(root)
    with pytest.raises(DataError) as caught:
        load_dataset(str(root))
    assert_one_line(caught, message)


def test_folder_where_only_one_class_is_readable(tmp_path):
    write_image_folder(tmp_path / "pets")
    for path in (tmp_path / "pets" / "dog").iterdir():
        path.write_bytes(b"junk")
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "pets"))
    assert_one_line(caught, "only one class")


def test_unknown_paths_and_forms(tmp_path):
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "nope.csv"))
    assert_one_line(caught, "no such file or folder")
    odd = tmp_path / "data.parquet"
    odd.write_bytes(b"x")
    with pytest.raises(DataError) as caught:
        load_dataset(str(odd))
    assert_one_line(caught, "not a dataset mlplab can read")


def test_validation_from_a_path(tmp_path):
    import mlplab

    write_idx_folder(tmp_path / "train")
    write_idx_folder(tmp_path / "val", test=False)
    run = mlplab.train(
        overrides={
            "data.dataset": str(tmp_path / "train"),
            "train.epochs": 1,
            "data.validation": str(tmp_path / "val"),
        },
        out=tmp_path / "runs",
        verbose=False,
    )
    assert run.metrics["dataset"]["validation_samples"] == 60
    assert "val" in run.metrics["dataset"]["validation"]


def test_a_validation_folder_is_read_at_the_training_images_size(tmp_path):
    import mlplab

    write_image_folder(tmp_path / "train", size=(12, 10))
    write_image_folder(tmp_path / "val", size=(36, 30), per_class=3, mode="RGB")
    run = mlplab.train(
        overrides={
            "data.dataset": str(tmp_path / "train"),
            "train.epochs": 1,
            "data.validation": str(tmp_path / "val"),
            "model.hidden": [8],
        },
        out=tmp_path / "runs",
        verbose=False,
    )
    assert run.image_shape == (10, 12, 1) and run.metrics["dataset"]["validation_samples"] == 6


def test_copying_a_folder_keeps_it_readable(tmp_path):
    written = write_idx_folder(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert Path(tmp_path / "b").is_dir()
    np.testing.assert_array_equal(load_dataset(str(tmp_path / "b")).x_train, written["x_train"])


def test_grayscale_palette_gif_counts_as_grayscale(tmp_path):
    write_image_folder(tmp_path / "pets")
    gif = Image.fromarray(np.full((10, 12), 90, np.uint8), "L").convert("P")
    gif.save(tmp_path / "pets" / "cat" / "extra.gif")
    assert load_dataset(str(tmp_path / "pets")).image_shape[-1] == 1


def test_sixteen_bit_grayscale_keeps_its_gray_levels(tmp_path):
    """Pillow's own conversion clips 16-bit values at 255: the image would read as white."""
    levels = np.arange(120, dtype=np.uint16).reshape(10, 12) * 257  # 0..119 in 16 bits
    write_image_folder(tmp_path / "scans")
    for name in ("cat", "dog"):
        Image.fromarray(levels).save(tmp_path / "scans" / name / "deep.png")
    assert Image.open(tmp_path / "scans" / "cat" / "deep.png").mode.startswith("I")
    data = load_dataset(str(tmp_path / "scans"), color="auto")
    assert data.image_shape == (10, 12, 1)  # still counted as grayscale
    deep = decode_image(tmp_path / "scans" / "cat" / "deep.png", 1)
    np.testing.assert_array_equal(deep[..., 0], np.arange(120).reshape(10, 12))
    # A transparent gray value (PNG tRNS) is put on white, as for 8-bit images.
    Image.fromarray(levels).save(tmp_path / "keyed.png", transparency=int(levels[0, 5]))
    keyed = decode_image(tmp_path / "keyed.png", 3)
    assert keyed[0, 5].tolist() == [255, 255, 255] and keyed[0, 4].tolist() == [4, 4, 4]


def _photo(path: Path, pixels: np.ndarray, orientation: int) -> None:
    """A JPEG as a camera writes it: pixels stored as the sensor saw them, plus the EXIF
    orientation that says how to turn them upright."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels, "L").save(path, exif=exif, quality=100)


def test_exif_orientation_turns_photos_upright(tmp_path):
    upright = np.full((12, 8), 20, np.uint8)  # tall: 12 rows, 8 columns
    upright[:3] = 240  # a bright top band
    # Orientation 6: the stored pixels must turn 90 degrees clockwise to be upright, so the
    # camera stored them turned 90 degrees counter-clockwise: a wide image, band on the left.
    _photo(tmp_path / "turned.jpg", np.rot90(upright, 1), orientation=6)
    decoded = decode_image(tmp_path / "turned.jpg", 1)[..., 0]
    assert decoded.shape == (12, 8)
    assert decoded[:3].min() > 200 and decoded[4:].max() < 60
    # In an image folder, the most common size is the upright one.
    for name in ("cat", "dog"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(3):
            _photo(tmp_path / "photos" / name / f"{i}.jpg", np.rot90(upright, 1), 6)
    data = load_dataset(str(tmp_path / "photos"))
    assert data.image_shape == (12, 8, 1)
    assert data.x_train[0, :3].min() > 200 and data.x_train[0, 4:].max() < 60


def test_safe_unpickle_accepts_plain_containers():
    data = pickle.dumps({b"a": [1, 2.5, "s"], b"b": np.arange(3, dtype=np.uint8)}, 4)
    loaded = safe_unpickle(data, "x")
    assert loaded[b"a"] == [1, 2.5, "s"] and loaded[b"b"].tolist() == [0, 1, 2]
