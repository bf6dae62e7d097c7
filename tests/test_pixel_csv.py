"""Pixel CSVs in every layout they come in; every bad file refused with one line."""

import gzip
import json

import numpy as np
import pytest

from mlplab import ConfigError, DataError
from mlplab.data import load_dataset
from mlplab.data.pixel_csv import paired_test_csv, read_layout, read_pixel_csv
from mlplab.data.tabular import write_submission

from .datagen import toy_images, write_kaggle_csv
from .test_cli import run_cli, train_on
from .test_datasets_cli import DEBIAN_FASHION, needs_fashion


def write_table(path, images, labels=None, header="pixel{}", start=0, label_at=0, width=0):
    """images uint8 (n, h, w, c) as CSV rows; labels at column label_at (-1: last); header a
    pixel column pattern, or None for no header row."""
    flat = images.reshape(len(images), -1).astype(np.int64)
    numbers = range(start, start + flat.shape[1])
    names = [(header or "").format(f"{i:0{width}d}") for i in numbers]
    if labels is not None:
        at = flat.shape[1] if label_at == -1 else label_at
        flat = np.insert(flat, at, labels, axis=1)
        names.insert(at, "label")
    lines = [",".join(names)] if header is not None else []
    lines += [",".join(map(str, row)) for row in flat]
    path.write_text("\n".join(lines) + "\n")


def one_line(caught, *fragments):
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# --- the layouts -------------------------------------------------------------------------


def test_kaggle_digit_layout_round_trips_and_gets_a_test_split(tmp_path):
    written = write_kaggle_csv(tmp_path / "train.csv")
    table = read_pixel_csv(tmp_path / "train.csv")
    np.testing.assert_array_equal(table.images, written["x"])
    np.testing.assert_array_equal(table.labels, written["y"])
    data = load_dataset(str(tmp_path / "train.csv"))
    assert data.image_shape == (4, 4, 1) and len(data.y_train) + len(data.y_test) == 40
    assert "stratified" in data.test_split


def test_each_image_is_named_by_its_row_whatever_split_it_lands_in(tmp_path):
    written = write_kaggle_csv(tmp_path / "train.csv")
    data = load_dataset(str(tmp_path / "train.csv"))
    for images, names in ((data.x_train, data.files_train), (data.x_test, data.files_test)):
        rows = [int(name.removeprefix("train.csv:")) for name in names]
        np.testing.assert_array_equal(images, written["x"][np.array(rows) - 1])
    assert sorted(rows + [int(n.split(":")[1]) for n in data.files_train]) == list(range(1, 41))


def test_kaggle_fashion_layout_takes_its_test_file_from_beside_it(tmp_path, capsys):
    x, y = toy_images(40, 4, size=4)
    xt, yt = toy_images(12, 4, size=4, seed=1)
    write_table(tmp_path / "fashion-mnist_train.csv", x, y, start=1)
    write_table(tmp_path / "fashion-mnist_test.csv", xt, yt, start=1)
    data = load_dataset(str(tmp_path / "fashion-mnist_train.csv"), verbose=True)
    np.testing.assert_array_equal(data.x_train, x)
    np.testing.assert_array_equal(data.x_test, xt)
    np.testing.assert_array_equal(data.y_test, yt)
    assert data.class_names == ("0", "1", "2", "3") and data.name == "fashion-mnist_train"
    assert data.test_split == "fashion-mnist_test.csv, beside fashion-mnist_train.csv"
    said = capsys.readouterr().err
    assert "40 images 4x4 grayscale, labels from column 'label', 4 classes (labels 0..3)" in said
    assert "test split: 12 images from fashion-mnist_test.csv beside it" in said


def test_no_header_means_the_label_comes_first(tmp_path):
    x, y = toy_images(30, 3, size=5)
    write_table(tmp_path / "mnist_train.csv", x, y, header=None)
    table = read_pixel_csv(tmp_path / "mnist_train.csv")
    np.testing.assert_array_equal(table.images, x)
    np.testing.assert_array_equal(table.labels, y)
    assert table.layout.header == () and table.layout.first_data_line == 1
    assert table.layout.label_text() == "labels from the first column (no header)"


def test_rgb_rows_with_the_label_last(tmp_path):
    x, y = toy_images(24, 3, size=4, channels=3)
    x[..., 1] //= 2  # channels differ, so a wrong channel order would show
    write_table(tmp_path / "hmnist_4_4_RGB.csv", x, y, label_at=-1, width=4)
    layout = read_layout(tmp_path / "hmnist_4_4_RGB.csv")
    assert layout.label_column == 48 and layout.image_shape == (4, 4, 3)
    data = load_dataset(str(tmp_path / "hmnist_4_4_RGB.csv"))
    assert data.image_shape == (4, 4, 3)
    table = read_pixel_csv(tmp_path / "hmnist_4_4_RGB.csv")
    np.testing.assert_array_equal(table.images, x)


def test_a_header_without_a_label_column_labels_from_the_first(tmp_path):
    x, y = toy_images(20, 2, size=3)
    write_table(tmp_path / "letters.csv", x, y, header="{}", start=1)
    path = tmp_path / "letters.csv"
    path.write_text(path.read_text().replace("label,", "0,", 1))  # pandas wrote "0, 1, ..."
    table = read_pixel_csv(path)
    np.testing.assert_array_equal(table.labels, y)
    assert table.layout.header[0] == "0" and "no column is named 'label'" in (
        table.layout.label_text()
    )


def test_labels_with_a_gap_are_the_classes_that_occur(tmp_path, capsys):
    x, _ = toy_images(30, 3, size=4)
    labels = np.array([0, 1, 4] * 10)  # Sign Language MNIST: no 9 (J)
    write_table(tmp_path / "sign_train.csv", x, labels, start=1)
    data = load_dataset(str(tmp_path / "sign_train.csv"), verbose=True)
    assert data.class_names == ("0", "1", "4")
    assert set(np.unique(data.y_train)) == {0, 1, 2}
    assert "3 classes (labels 0..4; 2, 3 never occur)" in capsys.readouterr().err
    write_table(tmp_path / "sign_test.csv", x[:3], np.array([0, 4, 2]), start=1)
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "sign_train.csv"))
    one_line(caught, "sign_test.csv: label 2 never occurs in sign_train.csv")


def test_an_unlabelled_file_beside_is_left_for_predict(tmp_path, capsys):
    write_kaggle_csv(tmp_path / "train.csv")
    write_kaggle_csv(tmp_path / "test.csv", labeled=False, rows=6)
    data = load_dataset(str(tmp_path / "train.csv"), verbose=True)
    assert "stratified" in data.test_split and len(data.y_test) == 8
    assert "test.csv beside it has no labels (for predict)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "beside"),
    [
        ("train.csv", "test.csv"),
        ("emnist-letters-train.csv", "emnist-letters-test.csv"),
        ("Train.csv", "Test.csv"),
        ("MNIST_TRAIN.csv", "MNIST_TEST.csv"),
        ("digits.csv", None),
    ],
)
def test_which_file_is_the_test_split(tmp_path, name, beside):
    (tmp_path / name).write_text("label,pixel0\n")
    if beside:
        (tmp_path / beside).write_text("label,pixel0\n")
    found = paired_test_csv(tmp_path / name)
    assert (found.name if found else None) == beside


def test_a_spreadsheet_export_reads_the_same(tmp_path):
    written = write_kaggle_csv(tmp_path / "train.csv")
    text = (tmp_path / "train.csv").read_text()
    header, rest = text.split("\n", 1)
    quoted = ",".join(f'"{name}"' for name in header.split(","))
    (tmp_path / "excel.csv").write_bytes(
        ("\ufeff" + quoted + "\n" + rest).replace("\n", "\r\n").encode()
    )
    table = read_pixel_csv(tmp_path / "excel.csv")
    np.testing.assert_array_equal(table.images, written["x"])
    np.testing.assert_array_equal(table.labels, written["y"])
    semicolons = (tmp_path / "excel.csv").read_text(encoding="utf-8-sig").replace(",", ";")
    (tmp_path / "excel.csv").write_text(semicolons)  # where the decimal mark is a comma
    table = read_pixel_csv(tmp_path / "excel.csv")
    np.testing.assert_array_equal(table.images, written["x"])
    assert table.layout.delimiter == ";"


def test_rows_to_predict_drop_a_label_column(tmp_path):
    x, y = toy_images(6, 2, size=4)
    write_table(tmp_path / "named.csv", x, y, label_at=-1)
    write_table(tmp_path / "first.csv", x, y, header=None)
    write_table(tmp_path / "bare.csv", x)
    for name in ("named.csv", "first.csv", "bare.csv"):
        table = read_pixel_csv(tmp_path / name, labeled=None, image_shape=(4, 4, 1))
        np.testing.assert_array_equal(table.images, x)
    table = read_pixel_csv(tmp_path / "bare.csv", labeled=None, image_shape=(2, 8, 1))
    assert table.images.shape == (6, 2, 8, 1)  # a model's shape need not be square
    with pytest.raises(DataError) as caught:
        read_pixel_csv(tmp_path / "bare.csv", labeled=None, image_shape=(8, 8, 1))
    one_line(caught, "bare.csv: rows of 16 pixel values, but 64 are needed")


def _rectangles(n: int = 30, height: int = 3, width: int = 6, channels: int = 1):
    """Images that are not square: class k lights up column band k; uint8 (n, h, w, c)."""
    images, labels = toy_images(n, 3, size=width, channels=channels)
    images = images[:, :height].copy()
    for i, label in enumerate(labels):
        images[i] = 20
        images[i, :, 2 * label : 2 * label + 2] = 230
    return images, labels


def test_images_that_are_not_square_are_read_at_the_configured_size(tmp_path):
    x, y = _rectangles()
    write_table(tmp_path / "wide.csv", x, y)
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "wide.csv"))
    one_line(caught, "18 pixel columns is not a square image", "set data.image_size")
    data = load_dataset(str(tmp_path / "wide.csv"), image_size=(3, 6))
    assert data.image_shape == (3, 6, 1)
    table = read_pixel_csv(tmp_path / "wide.csv", size=(3, 6))
    np.testing.assert_array_equal(table.images, x)  # row by row: not transposed
    # The same 18 values as 2x3 RGB, when the config says so.
    assert load_dataset(str(tmp_path / "wide.csv"), image_size=(2, 3)).image_shape == (2, 3, 3)
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "wide.csv"), image_size=(3, 3))
    one_line(caught, "rows of 18 pixel values do not make 3x3 images", "9 for grayscale or 27")


def test_data_color_picks_between_grayscale_and_rgb_for_a_csv(tmp_path):
    x, y = toy_images(12, 3, size=4, channels=3)  # 48 values: 4x4 RGB, never square gray
    write_table(tmp_path / "rgb.csv", x, y)
    assert load_dataset(str(tmp_path / "rgb.csv"), color="rgb").image_shape == (4, 4, 3)
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "rgb.csv"), color="grayscale")
    one_line(caught, "48 pixel columns is not a square image (s*s grayscale values per row)")
    # 48 = 4x12 grayscale or 4x4 RGB: data.color decides.
    shaped = load_dataset(str(tmp_path / "rgb.csv"), image_size=(4, 12), color="grayscale")
    assert shaped.image_shape == (4, 12, 1)


def test_a_network_of_images_that_are_not_square_trains_predicts_and_evaluates(capsys, tmp_path):
    x, y = _rectangles(60)
    write_table(tmp_path / "train.csv", x, y)
    run_dir = train_on(capsys, tmp_path, tmp_path / "train.csv", "--set", "data.image_size=[3,6]")
    write_table(tmp_path / "new.csv", x[:4])
    code, out, err = run_cli(capsys, "predict", str(run_dir), str(tmp_path / "new.csv"), "--json")
    assert code == 0, err
    assert [a["label"] for a in json.loads(out)] == [str(label) for label in y[:4]]
    # Another labelled CSV is read at the shape the network takes.
    write_table(tmp_path / "more.csv", x[:30], y[:30])
    code, out, err = run_cli(
        capsys, "evaluate", str(run_dir), "--dataset", str(tmp_path / "more.csv")
    )
    assert code == 0, err


def _named_rows(path, images, names, header=True):
    """images uint8 (n, h, w, 1) as CSV rows after their label names, with a header."""
    flat = images.reshape(len(images), -1)
    lines = ["label," + ",".join(f"pixel{i}" for i in range(flat.shape[1]))] if header else []
    lines += [f"{name}," + ",".join(map(str, row)) for name, row in zip(names, flat, strict=True)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("header", [True, False])
def test_labels_may_be_names_and_the_sorted_names_are_the_classes(tmp_path, header):
    images, labels = toy_images(40, 4, seed=4)
    kinds = np.array(["cat", "dog", "bird", "fish"])
    _named_rows(tmp_path / "pets_train.csv", images, kinds[labels % 4], header)
    test_images, test_labels = toy_images(12, 4, seed=5)
    _named_rows(tmp_path / "pets_test.csv", test_images, kinds[test_labels % 4], header)
    data = load_dataset(str(tmp_path / "pets_train.csv"))
    assert data.class_names == ("bird", "cat", "dog", "fish")
    np.testing.assert_array_equal(data.x_train, images)
    # Each image keeps its own name: class index -> name -> the name it was written with.
    np.testing.assert_array_equal(np.array(data.class_names)[data.y_train], kinds[labels % 4])
    np.testing.assert_array_equal(np.array(data.class_names)[data.y_test], kinds[test_labels % 4])


@pytest.mark.parametrize(
    ("rows", "test_rows", "message"),
    [
        (["cat,1,2,3,4", "dog,5,6,7,8"], ["0,1,2,3,4"], "must both be numbers, or both names"),
        (["cat,1,2,3,4", " ,5,6,7,8"], None, "line 3 has an empty label"),
        (["cat,1,2,3,4", "dog,5,x,7,8"], None, "line 3, column 3: pixel 'x' is not a whole"),
        (
            ["cat,1,2,3,4", "1,5,6,7,8"],
            None,
            "line 2, column 1: label 'cat' is not a whole number, but other",
        ),
        (["cat,1,2,3,4", "dog,5,6,7,8"], ["cow,1,2,3,4"], "label 'cow' never occurs in"),
        (["cat,1,2,3,4", "dog,5,6,7,8,9"], None, "line 3 has 6 cells but the rows before it 5"),
    ],
)
def test_bad_name_labels_are_one_line(tmp_path, rows, test_rows, message):
    head = "label,p0,p1,p2,p3\n"
    (tmp_path / "a_train.csv").write_text(head + "\n".join(rows) + "\n")
    if test_rows:
        (tmp_path / "a_test.csv").write_text(head + "\n".join(test_rows) + "\n")
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "a_train.csv"))
    one_line(caught, "a_", message)


# --- bad files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace(",pixel3,", ",pixel9,", 1), "column 5 should be 'pixel3'"),
        (lambda t: t.replace(",pixel15", "", 1), "15 pixel columns is not a square image"),
        (lambda t: t.replace("\n0,", "\n0,abc", 1), "line 2, column 2: pixel 'abc"),
        (lambda t: t.replace("\n1,", "\nx,", 1), "column 1: label 'x' is not a whole number"),
        (lambda t: t.replace("\n2,", "\n2,0.5,", 1), "line 4 has 18 cells but the rows before"),
        (lambda t: t.replace("\n0,", "\n0,0.", 1), "whole number (pixels are 0..255 as stored"),
        (lambda t: t.splitlines()[0] + "\n", "no rows"),
        (lambda t: "", "empty file"),
        (lambda t: t.replace("pixel0,", "label,", 1), "2 columns are named 'label'"),
        (lambda t: t.replace("\n3,", "\n-3,", 1), "line 5 has a negative label -3"),
    ],
)
def test_bad_csv_is_one_line_naming_the_file(tmp_path, edit, message):
    path = tmp_path / "train.csv"
    write_kaggle_csv(path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(DataError) as caught:
        load_dataset(str(path))
    one_line(caught, str(path), message)


def test_a_pixel_outside_0_255_names_its_line(tmp_path):
    path = tmp_path / "train.csv"
    write_kaggle_csv(path)
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[5] = "256"
    path.write_text("\n".join([*lines[:3], ",".join(cells), *lines[4:]]) + "\n")
    with pytest.raises(DataError) as caught:
        load_dataset(str(path))
    one_line(caught, "line 4 has a pixel outside 0..255")


def test_missing_file(tmp_path, monkeypatch):
    with pytest.raises(DataError) as caught:
        read_pixel_csv(tmp_path / "nope.csv")
    one_line(caught, "nope.csv: no such file")
    monkeypatch.chdir(tmp_path)  # a bare file name is a path too, not an unknown dataset
    with pytest.raises(DataError) as caught:
        load_dataset("nope.csv")
    one_line(caught, "nope.csv: no such file")


def test_a_test_file_of_another_size_is_refused(tmp_path):
    x, y = toy_images(20, 2, size=4)
    write_table(tmp_path / "a_train.csv", x, y)
    write_table(tmp_path / "a_test.csv", toy_images(4, 2, size=3)[0], y[:4])
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "a_train.csv"))
    one_line(caught, "a_test.csv: rows of 9 pixel values, but 16 are needed")


def test_submission_file(tmp_path):
    write_submission(tmp_path / "sub.csv", ["3", "1"])
    assert (tmp_path / "sub.csv").read_text() == "ImageId,Label\n1,3\n2,1\n"


# --- gzipped ------------------------------------------------------------------------------


def gzip_file(path):
    """``path`` compressed to ``path.gz``, the original removed; the new path."""
    packed = path.with_name(path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    path.unlink()
    return packed


@pytest.mark.parametrize("gzipped", ["both", "train", "test"])
def test_gzipped_csvs_read_as_the_plain_ones(tmp_path, gzipped):
    x, y = toy_images(40, 4, size=4)
    xt, yt = toy_images(12, 4, size=4, seed=1)
    train, test = tmp_path / "fashion-mnist_train.csv", tmp_path / "fashion-mnist_test.csv"
    write_table(train, x, y, start=1)
    write_table(test, xt, yt, start=1)
    if gzipped in ("both", "train"):
        train = gzip_file(train)
    if gzipped in ("both", "test"):
        test = gzip_file(test)
    assert paired_test_csv(train) == test  # a plain test file beside a gzipped one too
    data = load_dataset(str(train))
    np.testing.assert_array_equal(data.x_train, x)
    np.testing.assert_array_equal(data.y_train, y)
    np.testing.assert_array_equal(data.x_test, xt)
    assert data.name == "fashion-mnist_train" and data.files_train[0] == f"{train.name}:1"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda packed: packed[:-20], "cannot read CSV: Compressed file ended"),
        (lambda packed: b"plain text, not gzip\n", "cannot read CSV: Not a gzipped file"),
    ],
)
def test_a_broken_gzipped_csv_is_one_line(tmp_path, damage, message):
    write_kaggle_csv(tmp_path / "train.csv")
    packed = gzip_file(tmp_path / "train.csv")
    packed.write_bytes(damage(packed.read_bytes()))
    with pytest.raises(DataError) as caught:
        load_dataset(str(packed))
    one_line(caught, "train.csv.gz", message)


def test_predict_a_gzipped_csv_of_pixel_rows(capsys, tmp_path):
    x, y = toy_images(60, 3, size=4)
    write_table(tmp_path / "train.csv", x, y)
    run_dir = train_on(capsys, tmp_path, gzip_file(tmp_path / "train.csv"))
    assert run_dir.name.endswith("-digits-mlp-train")  # named as for train.csv
    write_table(tmp_path / "new.csv", x[:5])
    code, out, err = run_cli(
        capsys, "predict", str(run_dir), str(gzip_file(tmp_path / "new.csv")), "--json"
    )
    assert code == 0, err
    assert [a["file"] for a in json.loads(out)] == [
        f"{tmp_path / 'new.csv.gz'}:{i}" for i in range(1, 6)
    ]


# --- end to end --------------------------------------------------------------------------


def test_predict_a_labelled_csv_and_refuse_one_of_another_size(capsys, tmp_path):
    x, y = toy_images(60, 3, size=4)
    write_table(tmp_path / "sign_train.csv", x, y * 2, start=1)  # labels 0, 2, 4
    write_table(tmp_path / "sign_test.csv", x[:9], y[:9] * 2, start=1)
    run_dir = train_on(capsys, tmp_path, tmp_path / "sign_train.csv")
    test = str(tmp_path / "sign_test.csv")
    code, out, err = run_cli(capsys, "predict", str(run_dir), test, "--json")
    assert code == 0, err
    answers = json.loads(out)
    assert len(answers) == 9 and {a["label"] for a in answers} <= {"0", "2", "4"}
    write_table(tmp_path / "other.csv", toy_images(3, 3, size=5)[0])
    code, _, err = run_cli(capsys, "predict", str(run_dir), str(tmp_path / "other.csv"))
    assert code == 2 and err.count("\n") == 1
    assert "other.csv: rows of 25 pixel values, but 16 are needed" in err


@needs_fashion
def test_fashion_mnist_as_kaggle_csvs_reads_as_its_idx_files(tmp_path):
    data = load_dataset(str(DEBIAN_FASHION))
    train, test = tmp_path / "fashion-mnist_train.csv", tmp_path / "fashion-mnist_test.csv"
    write_table(train, data.x_train[:600], data.y_train[:600], start=1)
    write_table(test, data.x_test[:200], data.y_test[:200], start=1)
    read = load_dataset(str(tmp_path / "fashion-mnist_train.csv"))
    np.testing.assert_array_equal(read.x_train, data.x_train[:600])
    np.testing.assert_array_equal(read.y_train, data.y_train[:600])
    np.testing.assert_array_equal(read.x_test, data.x_test[:200])
    np.testing.assert_array_equal(read.y_test, data.y_test[:200])


# --- data.class_names --------------------------------------------------------------------


def test_class_names_name_numbered_classes_and_their_validation_file(tmp_path):
    from mlplab.api import read_datasets
    from mlplab.config import DataConfig

    x, y = toy_images(30, 3, size=4)
    write_table(tmp_path / "train.csv", x, y)
    write_table(tmp_path / "valid.csv", x[:6], y[:6])
    data = DataConfig(
        dataset=str(tmp_path / "train.csv"),
        validation=str(tmp_path / "valid.csv"),
        class_names=("cat", " dog ", "owl"),
    )
    dataset, external = read_datasets(data)
    assert dataset.class_names == external.class_names == ("cat", "dog", "owl")


def test_class_names_of_the_wrong_count_or_kind_are_refused(tmp_path):
    from mlplab.api import read_dataset
    from mlplab.config import DataConfig

    write_kaggle_csv(tmp_path / "train.csv")
    with pytest.raises(ConfigError) as caught:
        read_dataset(DataConfig(dataset=str(tmp_path / "train.csv"), class_names=("a", "b")))
    one_line(caught, "data.class_names: 2 names, but train has 4 classes (0, 1, 2, 3)")
    for names, problem in ((("a", "a"), "names must differ"), (("a", " "), "a character")):
        with pytest.raises(ConfigError) as caught:
            DataConfig(class_names=names)
        one_line(caught, "data.class_names", problem)
    with pytest.raises(ConfigError) as caught:
        DataConfig(class_names=("a", 3))
    one_line(caught, "data.class_names", "expected a list of strings")


def test_a_run_trained_with_class_names_answers_with_them(capsys, tmp_path):
    write_kaggle_csv(tmp_path / "train.csv", rows=80)
    write_kaggle_csv(tmp_path / "test.csv", labeled=False, rows=5)
    names = 'data.class_names=["north", "east", "south", "west"]'
    run_dir = train_on(capsys, tmp_path, tmp_path / "train.csv", "--set", names)
    code, out, err = run_cli(capsys, "predict", str(run_dir), str(tmp_path / "test.csv"), "--json")
    assert code == 0, err
    assert {a["label"] for a in json.loads(out)} <= {"north", "east", "south", "west"}
    code, out, err = run_cli(capsys, "evaluate", str(run_dir))
    assert code == 0 and "north" in out, err
