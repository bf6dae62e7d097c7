"""A CSV listing image files and their labels: every layout, and bad lists in one line."""

import numpy as np
import pytest
from PIL import Image

from mlplab import DataError
from mlplab.data import load_dataset
from mlplab.data.file_list import is_file_list, read_list_layout

from .datagen import write_kaggle_csv
from .test_cli import run_cli, train_on

SHADES = {"cat": 40, "dog": 140, "owl": 240}


def save(path, shade, size=(6, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, shade, np.uint8), "L").save(path)


def write_list(csv_path, rows, header="id,label"):
    csv_path.write_text("\n".join([header, *(",".join(map(str, row)) for row in rows)]) + "\n")


def kaggle_layout(root, per_class=4):
    """train.csv (ids without extension, images in train_images/) and test.csv (file
    names, images in test/), labels as words."""
    rows, test_rows = [], []
    for k, (name, shade) in enumerate(SHADES.items()):
        for i in range(per_class):
            save(root / "train_images" / f"{k}{i:03d}.png", shade)
            rows.append((f"{k}{i:03d}", name))
        save(root / "test" / f"t{k}.png", shade)
        test_rows.append((f"t{k}.png", name))
    write_list(root / "train.csv", rows, "id_code,diagnosis")
    write_list(root / "test.csv", test_rows, "file,label")


def test_a_kaggle_style_list_reads_with_its_test_list(tmp_path, capsys):
    kaggle_layout(tmp_path)
    data = load_dataset(str(tmp_path / "train.csv"), verbose=True)
    assert data.class_names == ("cat", "dog", "owl") and data.image_shape == (6, 5, 1)
    assert len(data.y_train) == 12 and len(data.y_test) == 3
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        shades = np.array(list(SHADES.values()))[y]  # every image has its label's shade
        np.testing.assert_array_equal(x.reshape(len(x), -1).mean(axis=1), shades)
    assert data.files_train[0].endswith("train_images/0000.png")
    assert data.test_split == "test.csv, beside train.csv"
    said = capsys.readouterr().err
    assert "files from column 'id_code' in " in said and "labels from column 'diagnosis'" in said
    assert "3 test images, 12 train images at 6x5x1" in said


def test_a_gzipped_list_reads_as_the_plain_one(tmp_path):
    from .test_pixel_csv import gzip_file

    kaggle_layout(tmp_path)
    plain = load_dataset(str(tmp_path / "train.csv"))
    packed = load_dataset(str(gzip_file(tmp_path / "train.csv")))
    np.testing.assert_array_equal(packed.x_train, plain.x_train)
    np.testing.assert_array_equal(packed.y_train, plain.y_train)
    assert packed.test_split == "test.csv, beside train.csv.gz" and packed.name == "train"


def test_a_named_label_column_among_others_and_files_in_sub_folders(tmp_path):
    save(tmp_path / "photos" / "a" / "rex.png", 40)
    save(tmp_path / "photos" / "b" / "tom.jpg", 140)
    save(tmp_path / "photos" / "b" / "max.png", 40)
    rows = [(1, "photos/a/rex.png", 10), (2, "photos\\b\\tom.jpg", 2), (3, "photos/b/max", 10)]
    write_list(tmp_path / "list.csv", rows, "n,path,Label")
    text = (tmp_path / "list.csv").read_text()
    (tmp_path / "list.csv").write_text(text.replace(",", "\t"))  # tab-separated reads too
    layout = read_list_layout(tmp_path / "list.csv")
    assert (layout.file_column, layout.label_column, layout.folder) == (1, 2, tmp_path)
    data = load_dataset(str(tmp_path / "list.csv"), whole=True)
    assert data.class_names == ("2", "10")  # numbers in numeric order
    assert sorted(data.y_test.tolist()) == [0, 1, 1]


def test_a_missing_file_is_skipped_and_counted_or_stops_with_strict(tmp_path, capsys):
    kaggle_layout(tmp_path)
    (tmp_path / "train_images" / "0001.png").unlink()
    data = load_dataset(str(tmp_path / "train.csv"), verbose=True)
    assert len(data.y_train) == 11
    assert "skipped 1 (first: " in capsys.readouterr().err
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "train.csv"), strict=True)
    assert "0001: no such image file" in str(caught.value)


def test_an_unlabelled_test_list_is_left_for_predict(tmp_path, capsys):
    kaggle_layout(tmp_path)
    write_list(tmp_path / "test.csv", [("t0.png",), ("t1.png",)], "file")
    data = load_dataset(str(tmp_path / "train.csv"), verbose=True)
    assert "stratified" in data.test_split
    assert "test.csv beside it has no labels (for predict)" in capsys.readouterr().err


def test_pixel_csvs_are_not_file_lists(tmp_path):
    write_kaggle_csv(tmp_path / "pixels.csv")
    assert not is_file_list(tmp_path / "pixels.csv")
    kaggle_layout(tmp_path)
    assert is_file_list(tmp_path / "train.csv")


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([("nope.png", "cat")], "file,label", "no column of its first row names an image file"),
        ([("nope.png",)], "file", "looked beside it and in train/, train_images/ and images/"),
        ([("0000", "cat", "x")], "id,a,b", "which column is the label? Name it 'label'"),
        ([("0000", "cat"), ("0001",)], "id,label", "line 3 has 1 cells but the header 2"),
        ([("0000", "cat"), ("0001", "")], "id,label", "line 3 has no label"),
        ([("0000", "cat"), ("0001", "cat")], "id,label", "only one class ('cat')"),
        ([], "id,label", "no rows"),
    ],
)
def test_bad_lists_are_one_line(tmp_path, rows, header, message):
    kaggle_layout(tmp_path)
    (tmp_path / "test.csv").unlink()
    write_list(tmp_path / "train.csv", rows, header)
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "train.csv"))
    text = str(caught.value)
    assert "\n" not in text and "train.csv" in text and message in text, text


def test_a_test_label_not_in_training_is_refused(tmp_path):
    kaggle_layout(tmp_path)
    write_list(tmp_path / "test.csv", [("t0.png", "cat"), ("t1.png", "emu")], "file,label")
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "train.csv"))
    assert "test.csv: label 'emu' never occurs in train.csv" in str(caught.value)


def test_train_and_evaluate_on_a_list_from_the_cli(capsys, tmp_path):
    kaggle_layout(tmp_path, per_class=8)
    code, out, err = run_cli(capsys, "datasets", "info", str(tmp_path / "train.csv"))
    assert code == 0 and "test split: test.csv, beside train.csv" in out
    assert "read files from column 'id_code'" in err  # how it was read, before training
    run_dir = train_on(capsys, tmp_path, tmp_path / "train.csv")
    code, out, err = run_cli(
        capsys, "evaluate", str(run_dir), "--dataset", str(tmp_path / "test.csv")
    )
    assert code == 0 and "owl" in out, err


def test_predict_a_list_answers_each_file_and_writes_its_submission(capsys, tmp_path):
    import json

    import mlplab

    kaggle_layout(tmp_path, per_class=8)
    run_dir = train_on(capsys, tmp_path, tmp_path / "train.csv")
    write_list(tmp_path / "test.csv", [("t2",), ("t0",), ("t1",)], "id")  # Kaggle: no labels
    listed = str(tmp_path / "test.csv")
    code, out, err = run_cli(capsys, "predict", str(run_dir), listed, "--json", "--top", "1")
    assert code == 0, err
    answers = json.loads(out)
    assert [(a["row"], a["id"]) for a in answers] == [(1, "t2"), (2, "t0"), (3, "t1")]
    assert answers[0]["file"].endswith("test/t2.png") and "has labels" not in err
    assert answers == mlplab.predict(run_dir, [listed], top=1)
    submission = tmp_path / "submission.csv"
    run = str(run_dir)
    code, out, err = run_cli(capsys, "predict", run, listed, "--submission", str(submission))
    assert code == 0 and out == f"wrote 3 predictions to {submission} (id,label)\n", err
    lines = submission.read_text().splitlines()
    assert lines == ["id,label", *(f"{a['id']},{a['label']}" for a in answers)]
    code, _, err = run_cli(capsys, "predict", run, listed, "--show", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").is_file(), err  # listed files are images
    write_list(tmp_path / "test.csv", [("t0", "cat"), ("t9", "dog")], "id,label")
    code, out, err = run_cli(capsys, "predict", str(run_dir), listed)
    assert code == 2 and "test.csv: line 3: 't9' not found in " in err and err.count("\n") == 1
    (tmp_path / "test" / "t9.png").write_bytes(b"not a png")
    code, out, err = run_cli(capsys, "predict", str(run_dir), listed)
    assert code == 2 and "t9.png: not a PNG" in err and err.count("\n") == 1
    (tmp_path / "test" / "t9.png").unlink()
    write_list(tmp_path / "test.csv", [("t0", "cat"), ("t1", "dog")], "id,label")
    code, out, err = run_cli(capsys, "predict", str(run_dir), listed)
    assert code == 0 and "test.csv has labels (files from column 'id'" in err


def test_one_hot_label_columns_are_the_classes_in_their_order(tmp_path, capsys):
    """Kaggle's plant pathology: image_id,healthy,multiple_diseases,rust,scab."""
    rows = []
    for i, (shade, marks) in enumerate([(40, (0, 0, 1)), (140, (1, 0, 0)), (240, (0, 1, 0))] * 4):
        save(tmp_path / "images" / f"Train_{i}.jpg", shade)
        rows.append((f"Train_{i}", *marks))
    write_list(tmp_path / "train.csv", rows, "image_id,rust,healthy,scab")
    data = load_dataset(str(tmp_path / "train.csv"), verbose=True, whole=True)
    assert data.class_names == ("rust", "healthy", "scab")  # the columns' order
    shades = np.array([140, 240, 40])[data.y_test]
    np.testing.assert_allclose(data.x_test.reshape(12, -1).mean(axis=1), shades, atol=1)
    assert "labels one-hot in columns rust, healthy, scab" in capsys.readouterr().err
    write_list(tmp_path / "train.csv", [*rows, ("Train_0", 1, 0, 1)], "image_id,rust,healthy,scab")
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "train.csv"))
    assert "line 14 marks 2 classes with 1 in its one-hot columns" in str(caught.value)
